#!/usr/bin/env python3
"""SMTP throughput and latency: Sealpost's MX versus Postfix.

One run, Postfix's `smtp-source` as the load generator for both servers,
two cases:
  (a) store: accept and store into a mailbox.
      Sealpost: an alias with a mailbox target (sealed spool, durable before
      the 250). Postfix: virtual(8) delivery into a Maildir (the message is
      queued, fsync'ed, then delivered by a separate process), and
      Postfix handing the message to Dovecot over LMTP (Dovecot's lmtp
      service writes it into a Maildir; server "postfix-lmtp").
  (b) relay: forward to a local `smtp-sink`.
      Sealpost: an alias with a forward target and outbound_relayhost set to
      the sink. Postfix: relay_domains for the test domain and
      relayhost = [127.0.0.1]:<sink port>.

Both servers listen on 127.0.0.1 high ports; Postfix runs as its own
instance (config_directory, queue_directory, data_directory in a temporary
directory), never the system's. Sealpost's inbound checks (SPF, DMARC)
ask a small DNS server inside this script on 127.0.0.1, so no query
leaves the machine.

Rate: messages / seconds, where the time runs from the start of
smtp-source until the last message has reached its destination (Sealpost
answers 250 only once delivered, so that is when smtp-source ends; Postfix
answers once queued, so we also wait until the Maildir holds every message
or the sink has counted every message). The accept-only rate (until
smtp-source ends) is printed too.

Latency: smtp-source reports no per-message times, so a probe client in
this script sends messages one after another over fresh connections while
smtp-source runs and times each transaction (connect to the answer after
the final "."). p50 and p99 are over those probes; for Postfix this is the
time to queue, not to deliver.

Every case runs --rounds times (default 3), the two servers' order
alternating, and the medians are printed with the ratios Sealpost/Postfix.

Usage: bench/smtp.py [BUILD_DIR] [--messages N] [--sessions S] [--size B]
                     [--rounds R] [--cases store,relay]
                     [--servers sealpost,postfix,postfix-lmtp] [--keep]
Installs Debian's postfix (for smtp-source, smtp-sink and postfix itself)
and dovecot-lmtpd when missing, and stops the system instances the
packages would start.
"""
import argparse
import os
import platform
import pwd
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SENDER = "sender@source.test"
STORE_RCPT = "box@store.test"
RELAY_RCPT = "fwd@relay.test"
LMTP_RCPT = "box@lmtp.test"
FORWARD_TO = "dest@sink.test"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc=None, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            sys.exit(f"server on port {port} exited {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"port {port} never opened")


def ensure_postfix():
    """Installs the postfix package when smtp-source is missing. The
    package's own instance (port 25) is stopped and disabled again: we run
    a private instance."""
    if shutil.which("smtp-source") and shutil.which("smtp-sink") \
            and os.path.exists("/usr/sbin/postfix"):
        return
    if os.geteuid() != 0:
        sys.exit("postfix is not installed (apt-get install postfix)")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["debconf-set-selections"], check=True, env=env,
                   input=b"postfix postfix/main_mailer_type select No configuration\n")
    if subprocess.run(["apt-get", "install", "-y", "-q", "postfix"],
                      env=env, stdout=subprocess.DEVNULL).returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], env=env,
                       stdout=subprocess.DEVNULL, check=True)
        subprocess.run(["apt-get", "install", "-y", "-q", "postfix"],
                       env=env, stdout=subprocess.DEVNULL, check=True)
    stop_system_postfix()


def stop_system_postfix():
    for cmd in (["systemctl", "disable", "--now", "postfix"],
                ["service", "postfix", "stop"]):
        if shutil.which(cmd[0]):
            subprocess.run(cmd, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    if os.path.exists("/etc/postfix/main.cf") and subprocess.run(
            ["postfix", "status"], stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL).returncode == 0:
        subprocess.run(["postfix", "stop"], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)


# ---- DNS ---------------------------------------------------------------------


def dns_serve(port, ready):
    """A tiny authoritative DNS server on 127.0.0.1:port for Sealpost's
    inbound checks (SPF, DMARC of the test sender), so that no query
    leaves the machine: SPF and DMARC records for the sending domains,
    NXDOMAIN with a cacheable SOA for everything else."""
    import struct
    records = {
        "source.test": "v=spf1 ip4:127.0.0.0/8 -all",
        "probe.test": "v=spf1 ip4:127.0.0.0/8 -all",
        "_dmarc.source.test": "v=DMARC1; p=none",
    }
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", port))
    ready.set()

    def name(labels):
        return b"".join(bytes([len(x)]) + x for x in labels) + b"\0"

    soa = (name([b"test"]) + struct.pack("!HHIH", 6, 1, 3600, 0))
    soa_rdata = (name([b"ns", b"test"]) + name([b"root", b"test"])
                 + struct.pack("!IIIII", 1, 3600, 600, 86400, 3600))
    soa = soa[:-2] + struct.pack("!H", len(soa_rdata)) + soa_rdata
    while True:
        try:
            q, addr = sock.recvfrom(4096)
            qid, flags = struct.unpack("!HH", q[:4])
            i, labels = 12, []
            while q[i]:
                labels.append(q[i + 1:i + 1 + q[i]])
                i += 1 + q[i]
            qtype = struct.unpack("!H", q[i + 1:i + 3])[0]
            question = q[12:i + 5]
        except (OSError, IndexError, struct.error):
            continue
        qname = b".".join(labels).decode(errors="replace").lower()
        rflags = 0x8400 | (flags & 0x0100) | 0x0080
        txt = records.get(qname)
        if qtype == 16 and txt is not None:
            data = txt.encode()
            rdata = bytes([len(data)]) + data
            answer = (b"\xc0\x0c" + struct.pack("!HHIH", 16, 1, 3600,
                                                 len(rdata)) + rdata)
            msg = (struct.pack("!HHHHHH", qid, rflags, 1, 1, 0, 0)
                   + question + answer)
        elif txt is not None:
            msg = (struct.pack("!HHHHHH", qid, rflags, 1, 0, 1, 0)
                   + question + soa)  # the name exists, no such type
        else:
            msg = (struct.pack("!HHHHHH", qid, rflags | 3, 1, 0, 1, 0)
                   + question + soa)
        sock.sendto(msg, addr)


# ---- Dovecot LMTP -------------------------------------------------------------


def ensure_dovecot_lmtp():
    if not os.path.exists("/usr/lib/dovecot/lmtp"):
        print("installing dovecot-lmtpd with apt ...", file=sys.stderr)
        subprocess.run(["apt-get", "install", "-y", "dovecot-lmtpd"],
                       check=True, stdout=subprocess.DEVNULL,
                       env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
    # The package starts a system instance; ours has its own config.
    subprocess.run(["service", "dovecot", "stop"], capture_output=True)


DOVECOT_LMTP_CONF = """\
protocols = lmtp
listen = 127.0.0.1
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
ssl = no
first_valid_uid = 1
mail_location = maildir:~/Maildir
passdb {{
  driver = static
  args = nopassword=y
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={d}/home/%n
}}
service lmtp {{
  inet_listener lmtp {{
    address = 127.0.0.1
    port = {port}
  }}
}}
"""


class DovecotLmtp:
    """Dovecot's lmtp service on a 127.0.0.1 high port, its own config
    and Maildirs (defaults otherwise: fsync on delivery), for Postfix's
    (a) case through LMTP."""

    def __init__(self, work):
        self.d = os.path.join(work, "dovecot")
        self.port = free_port()
        self.proc = None

    def setup(self):
        nobody = pwd.getpwnam("nobody")
        for sub in ("run", "state", "home"):
            os.makedirs(os.path.join(self.d, sub), exist_ok=True)
        os.chown(os.path.join(self.d, "home"), nobody.pw_uid, nobody.pw_gid)
        self.conf = os.path.join(self.d, "dovecot.conf")
        with open(self.conf, "w") as f:
            f.write(DOVECOT_LMTP_CONF.format(d=self.d, uid=nobody.pw_uid,
                                             gid=nobody.pw_gid,
                                             port=self.port))

    def start(self):
        self.proc = subprocess.Popen(
            ["dovecot", "-F", "-c", self.conf], stdout=subprocess.DEVNULL,
            stderr=open(os.path.join(self.d, "stderr.log"), "ab"))
        wait_port(self.port, self.proc)

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def stored(self):
        count = 0
        for sub in ("new", "cur"):
            try:
                count += len(os.listdir(os.path.join(
                    self.d, "home", "box", "Maildir", sub)))
            except FileNotFoundError:
                pass
        return count


# ---- the sink ---------------------------------------------------------------


class Sink:
    """smtp-sink on 127.0.0.1; counts messages from its -c output."""

    def __init__(self, work):
        self.port = free_port()
        self.out_path = os.path.join(work, "sink.out")
        self.out = open(self.out_path, "wb")
        self.proc = subprocess.Popen(
            ["smtp-sink", "-c", "-u", "nobody", "-h", "sink.test",
             f"127.0.0.1:{self.port}", "1024"],
            stdout=self.out, stderr=subprocess.STDOUT)
        wait_port(self.port, self.proc)
        # The port probe is a session; count messages, not sessions.

    def messages(self):
        with open(self.out_path, "rb") as f:
            data = f.read()
        found = re.findall(rb"mesg=(\d+)", data)
        return int(found[-1]) if found else 0

    def stop(self):
        self.proc.terminate()
        self.proc.wait()
        self.out.close()


# ---- Sealpost ---------------------------------------------------------------


class Sealpost:
    def __init__(self, build, work, sink_port):
        self.binary = os.path.join(ROOT, build, "src", "bin", "sealpost")
        if not os.access(self.binary, os.X_OK):
            sys.exit(f"{self.binary}: not built (make build)")
        self.data = os.path.join(work, "sealpost")
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith("SEALPOST_")}
        self.port = free_port()
        self.dns_port = free_port()
        self.sink_port = sink_port
        self.log_path = os.path.join(work, "sealpost.log")
        self.proc = None

    def run(self, *args, extra=None):
        env = dict(self.env, **(extra or {}))
        proc = subprocess.run([self.binary, "--data", self.data, *args],
                              env=env, capture_output=True)
        if proc.returncode != 0:
            sys.exit(f"sealpost {' '.join(args)}: "
                     f"{proc.stderr.decode(errors='replace')}")
        return proc.stdout.decode()

    def setup(self):
        self.run("init")
        self.run("domain", "add", "store.test")
        self.run("domain", "add", "relay.test")
        self.run("alias", "add", STORE_RCPT, "--mailbox")
        # Gives the alias its key pair, so mail can be sealed to it.
        self.run("alias", "password", STORE_RCPT)
        self.run("alias", "add", RELAY_RCPT, "--forward", FORWARD_TO)

    def start(self):
        ready = threading.Event()
        threading.Thread(target=dns_serve, args=(self.dns_port, ready),
                         daemon=True).start()
        ready.wait(10)
        env = dict(self.env)
        for name in ("IMAP", "IMAPS", "POP3", "POP3S", "SUBMISSION",
                     "SUBMISSIONS", "HTTP"):
            env[f"SEALPOST_{name}_LISTEN"] = ""
        env.update({
            "SEALPOST_SMTP_LISTEN": f"127.0.0.1:{self.port}",
            "SEALPOST_OUTBOUND_RELAYHOST": f"127.0.0.1:{self.sink_port}",
            "SEALPOST_HOSTNAME": "mx.sealpost.test",
            # Inbound SPF/DKIM/DMARC checks ask our local server only.
            "SEALPOST_DNS_RESOLVER": f"127.0.0.1@{self.dns_port}",
            # The benchmark is one client IP sending many messages.
            "SEALPOST_SMTP_MAX_CONNECTIONS_PER_IP": "0",
            "SEALPOST_SMTP_MAX_MESSAGES_PER_IP_HOUR": "0",
        })
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [self.binary, "--data", self.data, "serve"], env=env,
            stdout=self.log, stderr=self.log)
        wait_port(self.port, self.proc)

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.log.close()


# ---- Postfix ----------------------------------------------------------------


class Postfix:
    """A private Postfix instance: its own config, queue and data
    directories under `work`, smtpd on a 127.0.0.1 high port, nothing
    chrooted."""

    def __init__(self, work, sink_port, lmtp_port):
        self.lmtp_port = lmtp_port
        self.base = os.path.join(work, "postfix")
        self.etc = os.path.join(self.base, "etc")
        self.queue = os.path.join(self.base, "queue")
        self.mail = os.path.join(self.base, "mail")
        self.port = free_port()
        self.sink_port = sink_port
        self.started = False

    def setup(self):
        nobody = pwd.getpwnam("nobody")
        for d in (self.etc, self.queue, os.path.join(self.base, "data"),
                  self.mail):
            os.makedirs(d, exist_ok=True)
        os.chown(self.mail, nobody.pw_uid, nobody.pw_gid)
        owner = pwd.getpwnam("postfix")
        os.chown(os.path.join(self.base, "data"), owner.pw_uid,
                 owner.pw_gid)
        main = f"""\
compatibility_level = 3.6
config_directory = {self.etc}
queue_directory = {self.queue}
data_directory = {self.base}/data
mail_owner = postfix
setgid_group = postdrop
myhostname = mx.postfix.test
mydomain = postfix.test
myorigin = $myhostname
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
alias_maps =
alias_database =
local_recipient_maps =
smtpd_banner = $myhostname ESMTP
biff = no
maillog_file = {self.base}/maillog
maillog_file_prefixes = {self.base}
# (a) store: virtual(8) into a Maildir owned by nobody.
virtual_mailbox_domains = store.test
virtual_mailbox_base = {self.mail}
virtual_mailbox_maps = static:box/
virtual_uid_maps = static:{nobody.pw_uid}
virtual_gid_maps = static:{nobody.pw_gid}
virtual_minimum_uid = 1
# (b) relay: the test domain is relayed to the sink.
relay_domains = relay.test, lmtp.test
relayhost = [127.0.0.1]:{self.sink_port}
# (a) through LMTP: lmtp.test goes to Dovecot's lmtp service.
transport_maps = inline:{{ lmtp.test=lmtp:inet:127.0.0.1:{self.lmtp_port} }}
smtp_tls_security_level = none
smtpd_tls_security_level = none
default_process_limit = 200
"""
        with open(os.path.join(self.etc, "main.cf"), "w") as f:
            f.write(main)
        lines = []
        with open("/etc/postfix/master.cf") as f:
            for line in f:
                if line[:1].strip() and not line.startswith("#"):
                    fields = line.split()
                    if fields[0] == "smtp" and fields[1] == "inet":
                        fields[0] = f"127.0.0.1:{self.port}"
                    if len(fields) >= 8:
                        fields[4] = "n"  # no chroot: nothing copied in
                        line = " ".join(fields) + "\n"
                lines.append(line)
        with open(os.path.join(self.etc, "master.cf"), "w") as f:
            f.writelines(lines)

    def postfix(self, *args, check=True):
        proc = subprocess.run(["postfix", "-c", self.etc, *args],
                              capture_output=True)
        if check and proc.returncode != 0:
            sys.exit(f"postfix {' '.join(args)}: "
                     f"{(proc.stdout + proc.stderr).decode(errors='replace')}")
        return proc

    def start(self):
        self.postfix("start")
        self.started = True
        wait_port(self.port)

    def stop(self):
        if self.started:
            self.postfix("stop", check=False)
            self.started = False

    def stored(self):
        count = 0
        for sub in ("new", "cur"):
            try:
                count += len(os.listdir(os.path.join(self.mail, "box", sub)))
            except FileNotFoundError:
                pass
        return count


# ---- load and probe ---------------------------------------------------------


def probe_transaction(port, rcpt, body):
    """One transaction on a fresh connection; returns its duration."""
    t0 = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port), timeout=60) as s:
        f = s.makefile("rb")

        def expect(prefix):
            while True:
                line = f.readline()
                if not line:
                    raise OSError("connection closed")
                if line[3:4] != b"-":
                    break
            if not line.startswith(prefix):
                raise OSError(f"unexpected reply {line!r}")

        expect(b"220")
        s.sendall(b"EHLO probe.test\r\n")
        expect(b"250")
        s.sendall(f"MAIL FROM:<{SENDER}>\r\n".encode())
        expect(b"250")
        s.sendall(f"RCPT TO:<{rcpt}>\r\n".encode())
        expect(b"250")
        s.sendall(b"DATA\r\n")
        expect(b"354")
        s.sendall(body)
        expect(b"250")
        elapsed = time.perf_counter() - t0
        s.sendall(b"QUIT\r\n")
        f.readline()
    return elapsed


def percentile(samples, p):
    if not samples:
        return float("nan")
    s = sorted(samples)
    k = min(len(s) - 1, max(0, int(round(p / 100.0 * len(s) + 0.5)) - 1))
    return s[k]


def run_case(port, rcpt, delivered, args, label):
    """Runs smtp-source against `port` with the probe alongside; waits
    until delivered() reaches the expected count. Returns figures."""
    if delivered is None:
        # Sealpost answers 250 only once the message is stored.
        delivered = lambda: 0
        answered_is_delivered = True
    else:
        answered_is_delivered = False
    base = delivered()
    size = args.size
    body_text = ("From: <%s>\r\nTo: <%s>\r\nSubject: probe\r\n"
                 "Message-Id: <%%d.%s@probe.test>\r\n\r\n" % (SENDER, rcpt, label))
    filler = ("X" * 78 + "\r\n") * max(1, size // 80)
    probes = []
    stop = threading.Event()
    errors = []

    def probe():
        n = 0
        while not stop.is_set() and n < 100000:
            body = (body_text % (n + 1000000 * os.getpid()) + filler
                    + ".\r\n").encode()
            try:
                probes.append(probe_transaction(port, rcpt, body))
            except OSError as e:
                errors.append(str(e))
                return
            n += 1

    cmd = ["smtp-source", "-s", str(args.sessions), "-m", str(args.messages),
           "-l", str(size), "-f", SENDER, "-t", rcpt, "-M", "source.test",
           f"127.0.0.1:{port}"]
    t0 = time.monotonic()
    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    src = subprocess.run(cmd, capture_output=True, timeout=3600)
    t_accept = time.monotonic() - t0
    stop.set()
    thread.join(120)
    if src.returncode != 0:
        sys.exit(f"{label}: smtp-source failed: "
                 f"{(src.stdout + src.stderr).decode(errors='replace')}")
    if errors:
        sys.exit(f"{label}: probe failed: {errors[0]}")
    # Every probe is a message too.
    total = args.messages + len(probes)
    deadline = time.monotonic() + 600
    while not answered_is_delivered and delivered() < base + total:
        if time.monotonic() > deadline:
            sys.exit(f"{label}: only {delivered() - base} of "
                     f"{total} messages arrived")
        time.sleep(0.01)
    t_done = time.monotonic() - t0
    return {
        "accept_rate": total / t_accept,
        "rate": total / t_done,
        "p50": percentile(probes, 50) * 1000,
        "p99": percentile(probes, 99) * 1000,
        "probes": len(probes),
        "total": total,
        "seconds": t_done,
    }


def machine():
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    pf = subprocess.run(["postconf", "-d", "-h", "mail_version"],
                        capture_output=True).stdout.decode().strip()
    return (f"{os.cpu_count()} CPU ({cpu}), {mem:.0f} GiB RAM, "
            f"Linux {platform.release()}, Postfix {pf}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("build", nargs="?", default="build")
    ap.add_argument("--messages", type=int, default=5000)
    ap.add_argument("--sessions", type=int, default=20)
    ap.add_argument("--size", type=int, default=4096,
                    help="message body bytes (smtp-source -l)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--cases", type=lambda v: v.split(","),
                    default=["store", "relay"],
                    help="comma-separated: store, relay (for profiling)")
    ap.add_argument("--servers", type=lambda v: v.split(","),
                    default=["sealpost", "postfix", "postfix-lmtp"],
                    help="comma-separated: sealpost, postfix, "
                    "postfix-lmtp (Postfix to Dovecot LMTP, store only)")
    ap.add_argument("--keep", action="store_true",
                    help="keep the work directory (logs) and print it")
    args = ap.parse_args()
    ensure_postfix()
    lmtp = "postfix-lmtp" in args.servers and "store" in args.cases
    if lmtp:
        ensure_dovecot_lmtp()
    work = tempfile.mkdtemp(prefix="sealpost-bench-smtp-")
    # serve drops privileges: the data directory must stay reachable.
    os.chmod(work, 0o711)
    sink = Sink(work)
    sp = Sealpost(args.build, work, sink.port)
    dv = DovecotLmtp(work)
    pf = Postfix(work, sink.port, dv.port)
    try:
        sp.setup()
        pf.setup()
        sp.start()
        pf.start()
        if lmtp:
            dv.setup()
            dv.start()
        print(f"machine: {machine()}")
        print(f"load: smtp-source -s {args.sessions} -m {args.messages} "
              f"-l {args.size} (one message per connection), plus the "
              f"serial latency probe")
        spool = os.path.join(sp.data, "spool")

        def sp_stored():
            n = 0
            for _, _, files in os.walk(spool):
                n += len(files)
            return n

        # Sealpost answers after delivery; its "delivered" counters are the
        # answers themselves, so for it the accept time is the delivery time
        # (the spool count is checked at the end).
        spool_before = sp_stored()
        cases = {
            ("store", "sealpost"): (sp.port, STORE_RCPT, None),
            ("store", "postfix"): (pf.port, STORE_RCPT, pf.stored),
            ("store", "postfix-lmtp"): (pf.port, LMTP_RCPT, dv.stored),
            ("relay", "sealpost"): (sp.port, RELAY_RCPT, sink.messages),
            ("relay", "postfix"): (pf.port, RELAY_RCPT, sink.messages),
        }
        results = {key: [] for key in cases}
        # Other work on the machine comes and goes: rounds, with the order
        # of the two servers alternating, and the median of each figure.
        for rnd in range(args.rounds):
            load = os.getloadavg()[0]
            for case in args.cases:
                servers = args.servers
                if rnd % 2:
                    servers = servers[::-1]
                for server in servers:
                    if (case, server) not in cases:
                        continue  # Postfix to LMTP is a store case only
                    port, rcpt, delivered = cases[case, server]
                    r = run_case(port, rcpt, delivered, args,
                                 f"{server}-{case}-{rnd}")
                    results[case, server].append(r)
                    print(f"round {rnd + 1} {case} {server}: "
                          f"{r['rate']:.0f} msg/s, p99 {r['p99']:.1f} ms "
                          f"(load average {load:.1f})", flush=True)
        stored = sp_stored() - spool_before
        sp_total = sum(r["total"] for r in results.get(("store", "sealpost"), []))
        if stored < sp_total:
            sys.exit(f"the Sealpost spool holds {stored} files for "
                     f"{sp_total} messages answered 250")
    finally:
        sp.stop()
        pf.stop()
        dv.stop()
        sink.stop()
        if args.keep:
            print(f"work directory kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)

    def med(case, server, key):
        return statistics.median(r[key] for r in results[case, server])

    print()
    print(f"median of {args.rounds} rounds:")
    print("| case | server | msg/s (delivered) | msg/s (accepted) "
          "| p50 ms | p99 ms |")
    print("| --- | --- | --- | --- | --- | --- |")
    for case in args.cases:
        for server in args.servers:
            if not results.get((case, server)):
                continue
            print(f"| {case} | {server} "
                  f"| {med(case, server, 'rate'):.0f} "
                  f"| {med(case, server, 'accept_rate'):.0f} "
                  f"| {med(case, server, 'p50'):.1f} "
                  f"| {med(case, server, 'p99'):.1f} |")
    print()
    for case in args.cases:
        for other in ("postfix", "postfix-lmtp"):
            if (not results.get((case, "sealpost"))
                    or not results.get((case, other))):
                continue
            ratio = med(case, "sealpost", "rate") / med(case, other, "rate")
            acc = (med(case, "sealpost", "accept_rate")
                   / med(case, other, "accept_rate"))
            p99 = med(case, "sealpost", "p99") / med(case, other, "p99")
            print(f"{case}: Sealpost/{other} rate {ratio:.2f} (delivered), "
                  f"{acc:.2f} (accepted); p99 Sealpost/{other} {p99:.2f}")

if __name__ == "__main__":
    main()
