#!/usr/bin/env python3
"""IMAP: Sealpost versus Dovecot (plain and with mail_crypt), one run.

Builds the same mailboxes for three servers on 127.0.0.1:
  - Sealpost (`sealpost serve`, data directory made with init, domain add,
    alias add --mailbox, alias password; messages with `mailbox import`);
  - Debian's Dovecot 2.3 (`dovecot-imapd`, installed with apt when missing),
    run from a config this script writes into a temp dir, maildir storage,
    static passdb/userdb; once plain, once with the mail_crypt plugin
    (global EC keys made with openssl) so that it encrypts at rest too.
Then measures, against each, with an asyncio client (many concurrent
connections, plaintext LOGIN on loopback for every server, so TLS costs
neither side):
  1. a mix of N clients looping LOGIN, SELECT, FETCH (flags, headers, full
     bodies), STORE, SEARCH (header, body), APPEND, STORE \\Deleted,
     EXPUNGE, LOGOUT: commands/s, p50/p99 latency, per command too;
  2. logins/s of reconnect-heavy clients (Sealpost with the login key
     cache on, and off: login_key_cache_seconds=0);
  3. memory per idle connection: 1,000 connections logged in and in IDLE
     (RSS and PSS delta of all server processes / connections);
  4. SEARCH BODY latency on a large mailbox (--big messages);
  5. NOOP latency on one connection while another runs that big SEARCH.
It watches the CPU of the machine and of itself so one can tell whether the
client is the bottleneck. Prints Markdown; docs/performance.md keeps results.

Usage: bench/imap.py [--build build] [options]   (run as root: Dovecot and
`sealpost serve` drop privileges themselves; see --help)
"""
import argparse
import asyncio
import base64
import os
import random
import re
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOMAIN = "bench.test"
NOBODY = 65534

# ---------------------------------------------------------------- messages

SYLLABLES = ["ka", "lo", "mi", "ne", "tor", "van", "el", "ri", "so", "pu",
             "den", "gra", "sch", "ul", "bi", "fa", "qui", "ost", "har", "ment"]


def make_corpus(rng):
    words = sorted({"".join(rng.choice(SYLLABLES) for _ in range(rng.randint(1, 4)))
                    for _ in range(4000)})
    paragraphs = []
    for _ in range(600):
        lines, line = [], []
        for _ in range(rng.randint(40, 120)):
            line.append(rng.choice(words))
            if sum(len(w) + 1 for w in line) > 68:
                lines.append(" ".join(line))
                line = []
        lines.append(" ".join(line))
        paragraphs.append("\r\n".join(lines).encode())
    return words, paragraphs


def make_message(rng, corpus, i, to):
    """A realistic message of 2-50 KB: text, sometimes an attachment. Body
    token `tokenNN` (i % 97) and subject `topicNN` (i % 53) make searches
    with known selectivity; `zebracorn` is in 1 message of 1,000."""
    words, paragraphs = corpus
    target = int(rng.choice([2, 3, 4, 5, 6, 8, 10, 12, 16, 20]) * 1024)
    body = []
    size = 0
    while size < target:
        p = rng.choice(paragraphs)
        body.append(p)
        size += len(p) + 4
    body.insert(rng.randrange(len(body) + 1), b"see token%d for details" % (i % 97))
    if i % 1000 == 7:
        body.insert(rng.randrange(len(body) + 1), b"the zebracorn report")
    text = b"\r\n\r\n".join(body) + b"\r\n"
    subject = "topic%d %s %s" % (i % 53, rng.choice(words), rng.choice(words))
    head = ("From: Sender %d <sender%d@example.org>\r\n"
            "To: <%s>\r\n"
            "Subject: %s\r\n"
            "Date: Mon, 02 Nov 2026 %02d:%02d:%02d +0000\r\n"
            "Message-ID: <m%d.%d@example.org>\r\n"
            "MIME-Version: 1.0\r\n" % (i % 300, i % 300, to, subject, i % 24,
                                        i % 60, (i * 7) % 60, i, rng.randrange(1 << 30))).encode()
    if rng.random() < 0.3:
        raw = rng.randbytes(rng.randint(4, 28) * 1024)
        att = base64.encodebytes(raw).replace(b"\n", b"\r\n")
        return (head + b"Content-Type: multipart/mixed; boundary=\"b%d\"\r\n\r\n"
                b"--b%d\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" % (i, i)
                + text + b"--b%d\r\nContent-Type: application/pdf; name=\"r%d.pdf\"\r\n"
                b"Content-Disposition: attachment; filename=\"r%d.pdf\"\r\n"
                b"Content-Transfer-Encoding: base64\r\n\r\n" % (i, i, i)
                + att + b"--b%d--\r\n" % i)
    return head + b"Content-Type: text/plain; charset=utf-8\r\n\r\n" + text


def write_sources(path_mbox, path_maildir, messages):
    """The same messages as an mbox (CRLF kept, for `sealpost mailbox
    import`) and as a maildir (LF, as Dovecot stores them) for `doveadm
    import`."""
    os.makedirs(os.path.join(path_maildir, "cur"), exist_ok=True)
    os.makedirs(os.path.join(path_maildir, "new"), exist_ok=True)
    os.makedirs(os.path.join(path_maildir, "tmp"), exist_ok=True)
    with open(path_mbox, "ab") as mbox:
        for n, msg in messages:
            mbox.write(b"From sender@example.org Mon Nov 23 10:00:00 2026\n")
            mbox.write(msg)
            mbox.write(b"\n")
            with open(os.path.join(path_maildir, "cur", "%d.bench:2," % n), "wb") as f:
                f.write(msg.replace(b"\r\n", b"\n"))


# ---------------------------------------------------------------- client

LITERAL = re.compile(rb"\{(\d+)\}\r\n$")


class Imap:
    """A minimal IMAP client: one command at a time, literals handled."""

    def __init__(self):
        self.n = 0

    async def open(self, port):
        self.r, self.w = await asyncio.open_connection("127.0.0.1", port, limit=1 << 20)
        await self.r.readuntil(b"\r\n")
        return self

    async def _response(self, tag):
        lines = []
        while True:
            line = await self.r.readuntil(b"\r\n")
            m = LITERAL.search(line)
            while m:
                await self.r.readexactly(int(m.group(1)))
                line = await self.r.readuntil(b"\r\n")
                m = LITERAL.search(line)
            if line.startswith(tag):
                return line, lines
            lines.append(line)

    async def cmd(self, text, literal=None):
        self.n += 1
        tag = b"a%d " % self.n
        if literal is None:
            self.w.write(tag + text + b"\r\n")
        else:
            self.w.write(tag + text + b" {%d}\r\n" % len(literal))
            line = await self.r.readuntil(b"\r\n")
            if not line.startswith(b"+"):
                raise RuntimeError(line)
            self.w.write(literal + b"\r\n")
        line, lines = await self._response(tag)
        if not line[len(tag):].startswith(b"OK"):
            raise RuntimeError(b"%s -> %s" % (text[:60], line))
        return line, lines

    def close(self):
        self.w.close()


class Cpu:
    """Busy share of the machine and of this process over a phase."""

    def __init__(self):
        self.t0 = time.monotonic()
        self.sys0 = self._stat()
        self.me0 = self._me()

    @staticmethod
    def _stat():
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        return sum(v), v[3] + v[4]

    @staticmethod
    def _me():
        u = resource.getrusage(resource.RUSAGE_SELF)
        return u.ru_utime + u.ru_stime

    def done(self):
        wall = time.monotonic() - self.t0
        total, idle = self._stat()
        dt = total - self.sys0[0]
        busy = 100.0 * (1 - (idle - self.sys0[1]) / dt) if dt else 0
        me = 100.0 * (self._me() - self.me0) / wall
        return busy, me


def pct(values, p):
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(p / 100 * len(values)))]


async def mix(target, clients, duration, count, corpus_rng, appends):
    """Sessions in a loop; every command's latency is recorded by name."""
    lat = {}
    sessions = 0
    errors = []
    stop = time.monotonic() + duration

    async def timed(name, conn, text, literal=None):
        t = time.monotonic()
        line, lines = await conn.cmd(text, literal)
        lat.setdefault(name, []).append(time.monotonic() - t)
        return line, lines

    async def client(k):
        nonlocal sessions
        rng = random.Random(k)
        user, password = target.users[k % len(target.users)]
        while time.monotonic() < stop:
            try:
                c = await Imap().open(target.port)
                await timed("LOGIN", c, b'LOGIN "%s" "%s"' % (user.encode(), password.encode()))
                await timed("SELECT", c, b"SELECT INBOX")
                await timed("FETCH flags", c, b"UID FETCH 1:* (FLAGS)")
                a = rng.randint(1, count - 20)
                await timed("FETCH headers", c, b"UID FETCH %d:%d (UID RFC822.SIZE "
                            b"BODY.PEEK[HEADER.FIELDS (FROM TO SUBJECT DATE)])" % (a, a + 19))
                for _ in range(2):
                    await timed("FETCH body", c, b"UID FETCH %d (BODY.PEEK[])"
                                % rng.randint(1, count))
                await timed("STORE", c, b"UID STORE %d %sFLAGS (\\Seen)" % (
                    rng.randint(1, count), rng.choice([b"+", b"-"])))
                await timed("SEARCH header", c, b"UID SEARCH SUBJECT topic%d"
                            % rng.randrange(53))
                await timed("SEARCH body", c, b"UID SEARCH BODY token%d" % rng.randrange(97))
                line, _ = await timed("APPEND", c, b"APPEND INBOX (\\Seen)",
                                      rng.choice(appends))
                m = re.search(rb"APPENDUID \d+ (\d+)", line)
                if m:
                    await timed("STORE", c, b"UID STORE %s +FLAGS.SILENT (\\Deleted)"
                                % m.group(1))
                await timed("EXPUNGE", c, b"EXPUNGE")
                await timed("LOGOUT", c, b"LOGOUT")
                c.close()
                sessions += 1
            except (RuntimeError, OSError, asyncio.IncompleteReadError) as e:
                errors.append(repr(e)[:200])
                await asyncio.sleep(0.05)

    cpu = Cpu()
    t0 = time.monotonic()
    await asyncio.gather(*(client(k) for k in range(clients)))
    wall = time.monotonic() - t0
    busy, me = cpu.done()
    allv = [v for vs in lat.values() for v in vs]
    return {"ops": len(allv) / wall, "sessions": sessions / wall,
            "p50": pct(allv, 50), "p99": pct(allv, 99), "per": lat,
            "errors": errors, "busy": busy, "client": me}


async def logins(target, clients, duration):
    n = 0
    errors = []
    lat = []
    stop = time.monotonic() + duration

    async def client(k):
        nonlocal n
        user, password = target.users[k % len(target.users)]
        while time.monotonic() < stop:
            try:
                c = await Imap().open(target.port)
                t = time.monotonic()
                await c.cmd(b'LOGIN "%s" "%s"' % (user.encode(), password.encode()))
                lat.append(time.monotonic() - t)
                await c.cmd(b"LOGOUT")
                c.close()
                n += 1
            except (RuntimeError, OSError, asyncio.IncompleteReadError) as e:
                errors.append(repr(e)[:200])
                await asyncio.sleep(0.05)

    cpu = Cpu()
    t0 = time.monotonic()
    await asyncio.gather(*(client(k) for k in range(clients)))
    wall = time.monotonic() - t0
    busy, me = cpu.done()
    return {"rate": n / wall, "p50": pct(lat, 50), "p99": pct(lat, 99),
            "errors": errors, "busy": busy, "client": me}


def proc_tree(root):
    pids = {root}
    changed = True
    stat = {}
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                with open(f"/proc/{p}/stat") as f:
                    stat[int(p)] = int(f.read().rsplit(")", 1)[1].split()[1])
            except OSError:
                pass
    while changed:
        changed = False
        for pid, ppid in stat.items():
            if ppid in pids and pid not in pids:
                pids.add(pid)
                changed = True
    return pids


def memory(root):
    """(RSS, PSS) in bytes, summed over the server's process tree."""
    rss = pss = 0
    for pid in proc_tree(root):
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Rss:"):
                        rss += int(line.split()[1]) * 1024
                    elif line.startswith("Pss:"):
                        pss += int(line.split()[1]) * 1024
        except OSError:
            pass
    return rss, pss


async def idle_memory(target, count):
    conns = []
    errors = []
    before = memory(target.pid)

    async def one(k):
        user, password = target.users[k % len(target.users)]
        try:
            c = await Imap().open(target.port)
            await c.cmd(b'LOGIN "%s" "%s"' % (user.encode(), password.encode()))
            await c.cmd(b"SELECT INBOX")
            c.n += 1
            c.w.write(b"a%d IDLE\r\n" % c.n)
            line = await c.r.readuntil(b"\r\n")
            if not line.startswith(b"+"):
                raise RuntimeError(line)
            conns.append(c)
        except (RuntimeError, OSError, asyncio.IncompleteReadError) as e:
            errors.append(repr(e)[:200])

    for start in range(0, count, 50):
        await asyncio.gather(*(one(k) for k in range(start, min(count, start + 50))))
    await asyncio.sleep(3)
    after = memory(target.pid)
    n = len(conns)
    for c in conns:
        c.w.write(b"DONE\r\n")
        c.close()
    await asyncio.sleep(1)
    return {"n": n, "rss": (after[0] - before[0]) / max(n, 1),
            "pss": (after[1] - before[1]) / max(n, 1), "errors": errors}


async def big_search(target, big_user, other_user, repeat):
    """SEARCH BODY on the big mailbox (a rare word, then a common one),
    then NOOP latency on another connection while that search runs."""
    a = await Imap().open(target.port)
    await a.cmd(b'LOGIN "%s" "%s"' % (big_user[0].encode(), big_user[1].encode()))
    t = time.monotonic()
    await a.cmd(b"SELECT INBOX")
    select = time.monotonic() - t
    rare, common = [], []
    hits = {}
    for _ in range(repeat):
        t = time.monotonic()
        _, lines = await a.cmd(b"UID SEARCH BODY zebracorn")
        rare.append(time.monotonic() - t)
        hits["rare"] = sum(len(x.split()) - 2 for x in lines if x.startswith(b"* SEARCH"))
        t = time.monotonic()
        _, lines = await a.cmd(b"UID SEARCH BODY token42")
        common.append(time.monotonic() - t)
        hits["common"] = sum(len(x.split()) - 2 for x in lines if x.startswith(b"* SEARCH"))

    b = await Imap().open(target.port)
    await b.cmd(b'LOGIN "%s" "%s"' % (other_user[0].encode(), other_user[1].encode()))
    await b.cmd(b"SELECT INBOX")
    quiet = []
    for _ in range(50):
        t = time.monotonic()
        await b.cmd(b"NOOP")
        quiet.append(time.monotonic() - t)
        await asyncio.sleep(0.005)
    busy = []
    searching = True

    async def searcher():
        nonlocal searching
        t_end = time.monotonic() + 3
        # At least two searches and at least 3 s of searching.
        k = 0
        while k < 2 or time.monotonic() < t_end:
            await a.cmd(b"UID SEARCH BODY token%d" % (k % 97))
            await a.cmd(b"UID SEARCH BODY zebracorn%d" % k)
            k += 1
        searching = False

    async def nooper():
        while searching:
            t = time.monotonic()
            await b.cmd(b"NOOP")
            busy.append(time.monotonic() - t)
            await asyncio.sleep(0.01)

    await asyncio.gather(searcher(), nooper())
    for c in (a, b):
        await c.cmd(b"LOGOUT")
        c.close()
    return {"select": select, "rare": statistics.median(rare),
            "common": statistics.median(common), "hits": hits,
            "noop_quiet_p50": pct(quiet, 50), "noop_busy_p50": pct(busy, 50),
            "noop_busy_p99": pct(busy, 99), "noop_busy_max": max(busy),
            "noop_n": len(busy)}


# ---------------------------------------------------------------- servers

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, what):
    deadline = time.monotonic() + 30
    while True:
        if proc.poll() is not None:
            sys.exit(f"{what} exited {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                sys.exit(f"{what}: port {port} never opened")
            time.sleep(0.05)


class Sealpost:
    def __init__(self, binary, work):
        self.binary = binary
        self.data = os.path.join(work, "sealpost")
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("SEALPOST_")}
        self.proc = None
        self.users = []
        self.passwords = {}

    def run(self, *args, extra=None):
        env = dict(self.env)
        env.update(extra or {})
        p = subprocess.run([self.binary, "--data", self.data, *args], env=env,
                           capture_output=True)
        if p.returncode:
            sys.exit(f"sealpost {' '.join(args)}: {p.stderr.decode(errors='replace')}")
        return p.stdout.decode()

    def setup(self, names):
        self.run("init")
        self.run("domain", "add", DOMAIN)
        for name in names:
            address = f"{name}@{DOMAIN}"
            self.run("alias", "add", address, "--mailbox")
            self.passwords[name] = self.run("alias", "password", address).strip()

    def user(self, name):
        return (f"{name}@{DOMAIN}", self.passwords[name])

    def load(self, name, mbox):
        self.run("mailbox", "import", f"{name}@{DOMAIN}", mbox,
                 extra={"SEALPOST_PASSWORD": self.passwords[name]})

    def start(self, cache_seconds=300):
        self.port = free_port()
        env = dict(self.env)
        for name in ("imap", "imaps", "pop3", "pop3s", "smtp", "submission",
                     "submissions", "http"):
            env[f"SEALPOST_{name.upper()}_LISTEN"] = ""
        env.update({
            "SEALPOST_IMAP_LISTEN": f"127.0.0.1:{self.port}",
            "SEALPOST_IMAP_ALLOW_PLAINTEXT_LOOPBACK": "true",
            "SEALPOST_IMAP_MAX_CONNECTIONS_PER_IP": "0",
            "SEALPOST_IMAP_MAX_CONNECTIONS_PER_ALIAS": "0",
            "SEALPOST_IMAP_COMMANDS_PER_SECOND": "0",
            "SEALPOST_LOGIN_KEY_CACHE_SECONDS": str(cache_seconds),
            "SEALPOST_LOG_LEVEL": "warn",
        })
        self.log = open(os.path.join(os.path.dirname(self.data), "sealpost.log"), "ab")
        self.proc = subprocess.Popen([self.binary, "--data", self.data, "serve"],
                                     env=env, stdout=self.log, stderr=self.log)
        wait_port(self.port, self.proc, "sealpost serve")
        self.pid = self.proc.pid

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


DOVECOT_CONF = """\
protocols = imap
listen = 127.0.0.1
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
default_process_limit = 3000
default_client_limit = 10000
mail_location = maildir:~/Maildir
mail_plugins = $mail_plugins {plugins}
first_valid_uid = 1
passdb {{
  driver = static
  args = password={password}
}}
userdb {{
  driver = static
  args = uid={uid} gid={uid} home={d}/home/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
protocol imap {{
  mail_max_userip_connections = 3000
}}
{plugin}
"""


class Dovecot:
    def __init__(self, work, crypt):
        self.d = os.path.join(work, "dovecot-crypt" if crypt else "dovecot-plain")
        self.crypt = crypt
        self.password = "bench-password"
        self.proc = None
        for sub in ("run", "state", "home"):
            os.makedirs(os.path.join(self.d, sub), exist_ok=True)
        os.chown(os.path.join(self.d, "home"), NOBODY, NOBODY)
        self.conf = os.path.join(self.d, "dovecot.conf")
        self.port = free_port()
        plugin = ""
        if crypt:
            priv = os.path.join(self.d, "ecprivkey.pem")
            pub = os.path.join(self.d, "ecpubkey.pem")
            subprocess.run(f"openssl ecparam -name prime256v1 -genkey | "
                           f"openssl pkey -out {priv} && openssl pkey -in {priv} "
                           f"-pubout -out {pub}", shell=True, check=True,
                           capture_output=True)
            plugin = ("plugin {\n"
                      f"  mail_crypt_global_private_key = <{priv}\n"
                      f"  mail_crypt_global_public_key = <{pub}\n"
                      "  mail_crypt_save_version = 2\n}\n")
        with open(self.conf, "w") as f:
            f.write(DOVECOT_CONF.format(d=self.d, password=self.password, uid=NOBODY,
                                        port=self.port, plugin=plugin,
                                        plugins="mail_crypt" if crypt else ""))
        self.users = []

    def user(self, name):
        return (name, self.password)

    def start(self):
        self.proc = subprocess.Popen(["dovecot", "-F", "-c", self.conf],
                                     stdout=subprocess.DEVNULL,
                                     stderr=open(os.path.join(self.d, "stderr.log"), "ab"))
        wait_port(self.port, self.proc, "dovecot")
        self.pid = self.proc.pid

    def load(self, name, maildir):
        p = subprocess.run(["doveadm", "-c", self.conf, "import", "-u", name,
                            f"maildir:{maildir}", "", "all"], capture_output=True)
        if p.returncode or p.stderr:
            sys.exit(f"doveadm import: {p.stderr.decode(errors='replace')}")

    def check(self, name, count):
        p = subprocess.run(["doveadm", "-c", self.conf, "mailbox", "status", "-u", name,
                            "messages", "INBOX"], capture_output=True, text=True)
        if p.stdout.strip() != f"INBOX messages={count}":
            sys.exit(f"doveadm import of {name}: {p.stdout} {p.stderr}")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


def ensure_dovecot():
    if shutil.which("dovecot") and os.path.exists("/usr/lib/dovecot/imap"):
        pass
    else:
        print("installing dovecot-imapd with apt ...", file=sys.stderr)
        subprocess.run(["apt-get", "install", "-y", "dovecot-imapd"], check=True,
                       env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"),
                       stdout=subprocess.DEVNULL)
    # A system Dovecot would hold memory and CPU; ours runs from its own
    # config on other ports.
    subprocess.run(["service", "dovecot", "stop"], capture_output=True)
    out = subprocess.run(["dovecot", "--version"], capture_output=True, text=True)
    return out.stdout.strip()


# ---------------------------------------------------------------- main

def fmt_ms(s):
    return f"{s * 1000:.1f}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default="build")
    ap.add_argument("--users", type=int, default=4, help="mailboxes of the mix")
    ap.add_argument("--messages", type=int, default=1000, help="messages per mix mailbox")
    ap.add_argument("--clients", type=int, default=16, help="concurrent mix clients")
    ap.add_argument("--duration", type=float, default=30, help="seconds per mix run")
    ap.add_argument("--login-clients", type=int, default=8)
    ap.add_argument("--login-duration", type=float, default=10)
    ap.add_argument("--idle", type=int, default=1000, help="idle connections")
    ap.add_argument("--big", type=int, default=100000, help="messages of the big mailbox")
    ap.add_argument("--repeat", type=int, default=3, help="big SEARCHes per kind")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir")
    ap.add_argument("--big-only", action="store_true",
                    help="Sealpost alone: only measures 4 and 5 on the big mailbox "
                         "(no Dovecot, no mix), for --big 100000 in reasonable time")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root (Dovecot and sealpost serve drop privileges)")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    binary = os.path.join(ROOT, args.build, "src", "bin", "sealpost")
    if args.big_only:
        big_only(args, binary)
        return
    version = ensure_dovecot()

    work = tempfile.mkdtemp(prefix="sealpost-bench-imap-")
    os.chmod(work, 0o755)
    t_setup = time.monotonic()
    sp = Sealpost(binary, work)
    dovecots = [Dovecot(work, False), Dovecot(work, True)]
    names = [f"u{k}" for k in range(args.users)]
    try:
        sp.setup(names + ["big"])
        for dv in dovecots:
            dv.start()
        rng = random.Random(1)
        corpus = make_corpus(rng)
        src = os.path.join(work, "src")
        for name in names + ["big"]:
            count = args.big if name == "big" else args.messages
            step = 5000
            for start in range(0, count, step):
                t0 = time.monotonic()
                mbox = os.path.join(src, f"{name}.mbox")
                maildir = os.path.join(src, f"{name}.maildir")
                os.makedirs(src, exist_ok=True)
                if os.path.exists(mbox):
                    os.unlink(mbox)
                shutil.rmtree(maildir, ignore_errors=True)
                write_sources(mbox, maildir, ((i, make_message(rng, corpus, i, f"{name}@{DOMAIN}"))
                                              for i in range(start, min(count, start + step))))
                # doveadm import runs as the mail user and writes index
                # files into the source maildir.
                subprocess.run(["chown", "-R", f"{NOBODY}:{NOBODY}", src], check=True)
                t1 = time.monotonic()
                sp.load(name, mbox)
                t2 = time.monotonic()
                for dv in dovecots:
                    dv.load(name, maildir)
                print(f"   {name}: {min(count, start + step)}/{count} generated "
                      f"{t1 - t0:.1f} s, sealpost import {t2 - t1:.1f} s, doveadm "
                      f"imports {time.monotonic() - t2:.1f} s", file=sys.stderr, flush=True)
            os.unlink(mbox)
            shutil.rmtree(maildir)
            for dv in dovecots:
                dv.check(name, count)
        for dv in dovecots:
            dv.stop()
        appends = [make_message(rng, corpus, 100000000 + k, "u0@bench.test") for k in range(50)]
        setup_s = time.monotonic() - t_setup

        results = {}
        targets = [("Sealpost", sp), ("Dovecot", dovecots[0]),
                   ("Dovecot+mail_crypt", dovecots[1])]
        for label, t in targets:
            t.users = [t.user(n) for n in names]
            print(f"== {label}", file=sys.stderr, flush=True)
            r = results[label] = {}
            t.start()
            r["mix"] = asyncio.run(mix(t, args.clients, args.duration, args.messages,
                                       rng, appends))
            print(f"   mix {r['mix']['ops']:.0f} ops/s", file=sys.stderr, flush=True)
            r["login"] = asyncio.run(logins(t, args.login_clients, args.login_duration))
            # Idle memory on a fresh server: heap the mix left behind
            # would otherwise hide the cost of new connections.
            t.stop()
            t.start()
            time.sleep(1)
            r["idle"] = asyncio.run(idle_memory(t, args.idle))
            r["big"] = asyncio.run(big_search(t, t.user("big"), t.user("u0"), args.repeat))
            t.stop()
        sp.start(cache_seconds=0)
        sp.users = [sp.user(n) for n in names]
        results["Sealpost"]["login_nocache"] = asyncio.run(
            logins(sp, args.login_clients, args.login_duration))
        sp.stop()
        report(args, version, setup_s, results)
    finally:
        sp.stop()
        for dv in dovecots:
            dv.stop()
        if args.keep:
            print(f"kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


def big_only(args, binary):
    """Measures 4 and 5 against Sealpost alone: the big mailbox imported in
    steps of 5,000 (the same messages as a full run), SELECT, SEARCH BODY
    (rare word, word in 1%), NOOP beside big searches."""
    work = tempfile.mkdtemp(prefix="sealpost-bench-imap-")
    os.chmod(work, 0o755)
    sp = Sealpost(binary, work)
    try:
        sp.setup(["big", "u0"])
        rng = random.Random(1)
        corpus = make_corpus(rng)
        src = os.path.join(work, "src")
        os.makedirs(src)
        imported = 0.0
        for start in range(0, args.big, 5000):
            mbox = os.path.join(src, "big.mbox")
            maildir = os.path.join(src, "big.maildir")
            if os.path.exists(mbox):
                os.unlink(mbox)
            shutil.rmtree(maildir, ignore_errors=True)
            write_sources(mbox, maildir, ((i, make_message(rng, corpus, i, f"big@{DOMAIN}"))
                                          for i in range(start, min(args.big, start + 5000))))
            t = time.monotonic()
            sp.load("big", mbox)
            imported += time.monotonic() - t
            print(f"   big: {min(args.big, start + 5000)}/{args.big} imported "
                  f"({imported:.0f} s so far)", file=sys.stderr, flush=True)
        shutil.rmtree(src)
        size = sum(os.path.getsize(os.path.join(d, f))
                   for d, _, files in os.walk(sp.data) for f in files)
        sp.start()
        r = asyncio.run(big_search(sp, sp.user("big"), sp.user("u0"), args.repeat))
        sp.stop()
        print(f"Sealpost alone, big mailbox of {args.big} messages "
              f"(data directory {size / 1e6:.0f} MB, import {imported:.0f} s), "
              f"median of {args.repeat}:\n")
        print("| figure | Sealpost |\n| --- | ---: |")
        print(f"| SELECT of the big mailbox (ms) | {fmt_ms(r['select'])} |")
        print(f"| SEARCH BODY, rare word ({r['hits'].get('rare')} hits) (ms) "
              f"| {fmt_ms(r['rare'])} |")
        print(f"| SEARCH BODY, word in 1% ({r['hits'].get('common')} hits) (ms) "
              f"| {fmt_ms(r['common'])} |")
        print(f"| NOOP p50, quiet (ms) | {fmt_ms(r['noop_quiet_p50'])} |")
        print(f"| NOOP p50 during big SEARCH (ms) | {fmt_ms(r['noop_busy_p50'])} |")
        print(f"| NOOP p99 during big SEARCH (ms) | {fmt_ms(r['noop_busy_p99'])} |")
        print(f"| NOOP max during big SEARCH (ms) | {fmt_ms(r['noop_busy_max'])} |")
    finally:
        sp.stop()
        if args.keep:
            print(f"kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


def report(args, version, setup_s, results):
    s, d, c = (results[k] for k in ("Sealpost", "Dovecot", "Dovecot+mail_crypt"))

    def row(name, f, unit_better_high=True, fmt="{:.0f}"):
        vs, vd, vc = f(s), f(d), f(c)
        rd = vs / vd if vd else float("nan")
        rc = vs / vc if vc else float("nan")
        print(f"| {name} | {fmt.format(vs)} | {fmt.format(vd)} | {fmt.format(vc)} "
              f"| {rd:.2f}x | {rc:.2f}x |")

    print(f"Dovecot {version}; {args.users} mailboxes x {args.messages} messages "
          f"(2-50 KB, 30% with an attachment) for the mix; big mailbox {args.big} "
          f"messages; setup (generate + import into 3 servers) {setup_s:.0f} s.\n")
    print("| figure | Sealpost | Dovecot | Dovecot+mail_crypt | Sealpost / Dovecot "
          "| Sealpost / Dovecot+mail_crypt |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    row(f"mix, {args.clients} clients: commands/s", lambda r: r["mix"]["ops"])
    row("mix: sessions/s", lambda r: r["mix"]["sessions"], fmt="{:.1f}")
    row("mix: p50 latency (ms)", lambda r: r["mix"]["p50"] * 1000, fmt="{:.2f}")
    row("mix: p99 latency (ms)", lambda r: r["mix"]["p99"] * 1000, fmt="{:.1f}")
    row(f"logins/s ({args.login_clients} reconnecting clients)", lambda r: r["login"]["rate"])
    row("LOGIN p50 (ms)", lambda r: r["login"]["p50"] * 1000, fmt="{:.2f}")
    row(f"memory per idle connection, RSS (KiB; {args.idle} in IDLE)",
        lambda r: r["idle"]["rss"] / 1024)
    row("memory per idle connection, PSS (KiB)", lambda r: r["idle"]["pss"] / 1024)
    row(f"SELECT of the big mailbox ({args.big}) (ms)", lambda r: r["big"]["select"] * 1000,
        fmt="{:.1f}")
    row("SEARCH BODY, rare word, big mailbox (ms)", lambda r: r["big"]["rare"] * 1000,
        fmt="{:.1f}")
    row("SEARCH BODY, word in 1% (ms)", lambda r: r["big"]["common"] * 1000, fmt="{:.1f}")
    row("NOOP p50, quiet (ms)", lambda r: r["big"]["noop_quiet_p50"] * 1000, fmt="{:.2f}")
    row("NOOP p50 during big SEARCH (ms)", lambda r: r["big"]["noop_busy_p50"] * 1000,
        fmt="{:.2f}")
    row("NOOP p99 during big SEARCH (ms)", lambda r: r["big"]["noop_busy_p99"] * 1000,
        fmt="{:.2f}")
    row("NOOP max during big SEARCH (ms)", lambda r: r["big"]["noop_busy_max"] * 1000,
        fmt="{:.2f}")
    nc = s["login_nocache"]
    print(f"\nSealpost logins/s with login_key_cache_seconds=0 (Argon2id every "
          f"login): {nc['rate']:.1f} (LOGIN p50 {fmt_ms(nc['p50'])} ms, p99 "
          f"{fmt_ms(nc['p99'])} ms; machine {nc['busy']:.0f}% busy); with the cache "
          f"(default 300 s): {s['login']['rate']:.0f}.\n")

    print("Per command, p50 / p99 latency in ms (mix):\n")
    print("| command | Sealpost | Dovecot | Dovecot+mail_crypt |")
    print("| --- | ---: | ---: | ---: |")
    for name in s["mix"]["per"]:
        cells = []
        for r in (s, d, c):
            v = r["mix"]["per"].get(name, [])
            cells.append(f"{fmt_ms(pct(v, 50))} / {fmt_ms(pct(v, 99))}")
        print(f"| {name} | " + " | ".join(cells) + " |")
    print("\nLoad: machine busy % / client (this script) CPU % of one core, "
          "and errors:\n")
    for label, r in results.items():
        for phase in ("mix", "login", "login_nocache"):
            if phase in r:
                x = r[phase]
                print(f"- {label} {phase}: machine {x['busy']:.0f}% busy, client "
                      f"{x['client']:.0f}% of a core, {len(x['errors'])} errors"
                      + (f" (first: {x['errors'][0]})" if x["errors"] else ""))
        print(f"- {label} idle: {r['idle']['n']} connections in IDLE, "
              f"{len(r['idle']['errors'])} errors"
              + (f" (first: {r['idle']['errors'][0]})" if r["idle"]["errors"] else ""))
        print(f"- {label} big SEARCH hits: {r['big']['hits']}; NOOPs during "
              f"searches: {r['big']['noop_n']}")


if __name__ == "__main__":
    main()
