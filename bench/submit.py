#!/usr/bin/env python3
"""Submission throughput: Sealpost's submission + outbound queue versus
Postfix's, both relaying to one local smtp-sink, in one run.

The load generator is in this script (smtp-source speaks neither TLS nor
AUTH): S client threads, each on its own connection, send M messages in
all. Two figures per server:
  accepted   messages / seconds until the last 250 (each 250 means the
             message is durable: Sealpost fsyncs its encrypted queue,
             Postfix its queue file);
  delivered  messages / seconds until smtp-sink has counted every one.

What each side does per message is not the same, and the difference is
Sealpost's cost: Sealpost is reached over implicit TLS (465) with AUTH
PLAIN as a real client would, checks the sender, adds Message-ID and Date,
DKIM-signs (RSA 2048) and seals a Sent copy into the sender's spool;
Postfix's smtpd takes the mail in plaintext from mynetworks (no TLS, no
SASL, no signing milter) into its queue, and relays it to the sink.

Usage: bench/submit.py [BUILD_DIR] [--messages N] [--sessions S]
                       [--size B] [--rounds R]
Installs Debian's postfix when missing (smtp.py does the set-up).
"""
import argparse
import os
import smtplib
import ssl
import statistics
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import smtp as smtpbench  # noqa: E402

SENDER = "alice@submit.test"
RCPT = "dest@relay.test"


class SealpostSubmission(smtpbench.Sealpost):
    def setup(self):
        self.run("init")
        self.run("domain", "add", "submit.test")
        self.run("alias", "add", SENDER, "--mailbox")
        self.password = self.run("alias", "password", SENDER).strip()

    def start(self):
        env = dict(self.env)
        for name in ("IMAP", "IMAPS", "POP3", "POP3S", "SMTP", "SUBMISSION", "HTTP"):
            env[f"SEALPOST_{name}_LISTEN"] = ""
        env.update({
            "SEALPOST_SUBMISSIONS_LISTEN": f"127.0.0.1:{self.port}",
            "SEALPOST_OUTBOUND_RELAYHOST": f"127.0.0.1:{self.sink_port}",
            "SEALPOST_HOSTNAME": "mail.submit.test",
            "SEALPOST_SMTP_MAX_CONNECTIONS_PER_IP": "0",
            "SEALPOST_SUBMISSION_MAX_MESSAGES_PER_DAY": "0",
            "SEALPOST_SUBMISSION_MAX_MESSAGES_PER_DOMAIN_DAY": "0",
        })
        self.log = open(self.log_path, "ab")
        import subprocess
        self.proc = subprocess.Popen([self.binary, "--data", self.data, "serve"], env=env,
                                     stdout=self.log, stderr=self.log)
        smtpbench.wait_port(self.port, self.proc)


def message(i, size):
    filler = ("X" * 78 + "\r\n") * max(1, size // 80)
    return (f"From: <{SENDER}>\r\nTo: <{RCPT}>\r\nSubject: bench {i}\r\n\r\n"
            + filler).encode()


def load(port, tls_login, args):
    """Sends args.messages over args.sessions connections; returns the
    seconds until the last 250."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    counter = iter(range(args.messages))
    lock = threading.Lock()
    errors = []

    def client():
        try:
            if tls_login:
                s = smtplib.SMTP_SSL("127.0.0.1", port, context=ctx, timeout=120)
                s.login(SENDER, tls_login)
            else:
                s = smtplib.SMTP("127.0.0.1", port, timeout=120)
                s.ehlo("bench.test")
            while True:
                with lock:
                    i = next(counter, None)
                if i is None:
                    break
                s.sendmail(SENDER, [RCPT], message(i, args.size))
            s.quit()
        except (smtplib.SMTPException, OSError) as e:
            errors.append(repr(e))

    t0 = time.monotonic()
    threads = [threading.Thread(target=client) for _ in range(args.sessions)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(3600)
    if errors:
        sys.exit(f"load failed: {errors[0]}")
    return time.monotonic() - t0, t0


def wait_delivered(sink, base, total, t0):
    deadline = time.monotonic() + 900
    while sink.messages() < base + total:
        if time.monotonic() > deadline:
            sys.exit(f"only {sink.messages() - base} of {total} delivered")
        time.sleep(0.01)
    return time.monotonic() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("build", nargs="?", default="build")
    ap.add_argument("--messages", type=int, default=2000)
    ap.add_argument("--sessions", type=int, default=8)
    ap.add_argument("--size", type=int, default=4096)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root (Postfix's own instance needs it)")
    smtpbench.ensure_postfix()
    smtpbench.stop_system_postfix()
    work = tempfile.mkdtemp(prefix="sealpost-bench-submit-")
    os.chmod(work, 0o755)
    sink = smtpbench.Sink(work)
    results = {"sealpost": [], "postfix": []}
    try:
        sp = SealpostSubmission(args.build, work, sink.port)
        sp.setup()
        pf = smtpbench.Postfix(work, sink.port, smtpbench.free_port())
        pf.setup()
        print(f"machine: {smtpbench.machine()}")
        print(f"load: {args.messages} messages of {args.size} bytes over "
              f"{args.sessions} connections, {args.rounds} rounds")
        for r in range(args.rounds):
            order = ("sealpost", "postfix") if r % 2 == 0 else ("postfix", "sealpost")
            for name in order:
                base = sink.messages()
                if name == "sealpost":
                    sp.start()
                    acc, t0 = load(sp.port, sp.password, args)
                    done = wait_delivered(sink, base, args.messages, t0)
                    sp.stop()
                else:
                    pf.start()
                    acc, t0 = load(pf.port, None, args)
                    done = wait_delivered(sink, base, args.messages, t0)
                    pf.stop()
                results[name].append((args.messages / acc, args.messages / done))
                print(f"round {r + 1} {name:8s} accepted {args.messages / acc:8.1f} msg/s"
                      f"  delivered {args.messages / done:8.1f} msg/s")
    finally:
        sink.stop()
    med = {n: (statistics.median(a for a, _ in v), statistics.median(d for _, d in v))
           for n, v in results.items()}
    print()
    print(f"{'':10s} {'accepted msg/s':>15s} {'delivered msg/s':>16s}")
    for n in ("sealpost", "postfix"):
        print(f"{n:10s} {med[n][0]:15.1f} {med[n][1]:16.1f}")
    print(f"{'ratio':10s} {med['sealpost'][0] / med['postfix'][0]:15.2f} "
          f"{med['sealpost'][1] / med['postfix'][1]:16.2f}")


if __name__ == "__main__":
    main()
