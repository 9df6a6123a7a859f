"""Inbound SMTP (issue 6): the MX of `sealpost serve` with real clients
(smtplib, swaks, raw sockets), an aiosmtpd sink as the destination of
forwards (reached through SEALPOST_OUTBOUND_RELAYHOST) and a Python HTTP
server as webhook receiver that checks the signature."""
import hashlib
import hmac
import http.server
import json
import os
import shutil
import smtplib
import socket
import ssl
import subprocess
import threading
import time
from email.message import EmailMessage

import pytest
from aiosmtpd.controller import Controller

from conftest import SEALPOST, Sealpost

DOMAIN = "ex.test"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, seconds=20):
    deadline = time.monotonic() + seconds
    for _ in range(400):
        if proc.poll() is not None:
            raise AssertionError(f"sealpost serve exited {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                break
            time.sleep(0.05)
    raise AssertionError(f"nothing listens on port {port}")


class SinkHandler:
    """The destination MX: accepts, defers or rejects per recipient local
    part (mode table), and records every message it accepted."""

    def __init__(self):
        self.modes = {}
        self.messages = []  # (mail_from, [rcpts], bytes)
        self.lock = threading.Lock()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        mode = self.modes.get(address.split("@")[0].split("+")[0], "accept")
        if mode == "defer":
            return "451 4.7.1 Greylisted, please try again later"
        if mode == "reject":
            return "550 5.1.1 <%s>: Recipient address rejected: User unknown" % address
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.messages.append(
                (envelope.mail_from, list(envelope.rcpt_tos), bytes(envelope.original_content or envelope.content))
            )
        return "250 2.0.0 OK queued"

    def for_rcpt(self, rcpt):
        with self.lock:
            return [m for m in self.messages if rcpt in m[1]]


class WebhookReceiver:
    """HTTP server that checks X-Webhook-Signature and records bodies."""

    def __init__(self, key_hex):
        self.key = bytes.fromhex(key_hex)
        self.requests = []  # (signature_ok, json)
        self.status = 200
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(n)
                ts = self.headers.get("X-Webhook-Timestamp", "")
                sig = self.headers.get("X-Webhook-Signature", "")
                want = hmac.new(receiver.key, ts.encode() + b"." + body, hashlib.sha256).hexdigest()
                ok = hmac.compare_digest(want, sig) and abs(int(ts) - time.time()) < 600
                receiver.requests.append((ok, json.loads(body), self.path))
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class Mx:
    """A running `sealpost serve` with only the MX listener, a sink and a
    log file."""

    def __init__(self, tmp_path, extra_env=None):
        self.tmp_path = tmp_path
        self.sp = Sealpost(tmp_path / "data")
        self.sp.run("init")
        self.sp.run("domain", "add", DOMAIN)
        self.sink = SinkHandler()
        self.sink_port = free_port()
        self.controller = Controller(
            self.sink, hostname="127.0.0.1", port=self.sink_port,
            server_kwargs={"enable_SMTPUTF8": True},
        )
        self.controller.start()
        self.port = free_port()
        self.tmpdir = tmp_path / "tmp"
        self.tmpdir.mkdir()
        # Started as root, serve drops to an unprivileged user: it must be
        # able to reach the data directory under pytest's 0700 folders, and
        # to write the temporary directory we then search for the canary.
        if os.geteuid() == 0:
            for p in (tmp_path, tmp_path.parent, tmp_path.parent.parent):
                if p.stat().st_uid == 0:
                    os.chmod(p, 0o711)
            os.chmod(self.tmpdir, 0o1777)
        self.log_path = tmp_path / "serve.log"
        # Inbound checks (SPF, DKIM, DMARC, ARC) resolve through this
        # local server, never the machine's resolver; tests add records.
        from dnsserver import LocalDNS
        self.dns = LocalDNS()
        self.extra_env = dict(extra_env or {})
        self.proc = None
        self.stopped = False

    def env(self):
        env = dict(self.sp.env)
        for name in ("IMAP", "IMAPS", "POP3", "POP3S", "SUBMISSION", "SUBMISSIONS", "HTTP"):
            env[f"SEALPOST_{name}_LISTEN"] = ""
        env["SEALPOST_SMTP_LISTEN"] = f"127.0.0.1:{self.port}"
        env["SEALPOST_OUTBOUND_RELAYHOST"] = f"127.0.0.1:{self.sink_port}"
        env["SEALPOST_WEBHOOK_ALLOW_PRIVATE"] = "true"
        env["SEALPOST_HOSTNAME"] = "mx.ex.test"
        env["SEALPOST_LOG_LEVEL"] = "debug"
        env["TMPDIR"] = str(self.tmpdir)
        env["SEALPOST_DNS_RESOLVER"] = self.dns.forwarder
        env.update(self.extra_env)
        return env

    def start(self):
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [SEALPOST, "--data", self.sp.data_dir, "serve"],
            env=self.env(), stdout=self.log, stderr=self.log,
        )
        wait_port(self.port, self.proc)
        return self

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc is not None:
            self.log.close()
        if not self.stopped:
            self.controller.stop()
            self.dns.close()
            self.stopped = True

    def alias(self, address, *targets):
        self.sp.run("alias", "add", address, *targets)

    def smtp(self):
        return smtplib.SMTP("127.0.0.1", self.port, timeout=60)

    def logs(self):
        return self.log_path.read_bytes()


@pytest.fixture
def mx(tmp_path):
    instance = Mx(tmp_path)
    yield instance
    instance.stop()


def simple_message(subject="hello", body="body text\n", frm="alice@sender.test", to="a@ex.test"):
    msg = EmailMessage()
    msg["From"] = frm
    msg["To"] = to
    msg["Subject"] = subject
    msg["Message-ID"] = "<%s@sender.test>" % os.urandom(6).hex()
    msg.set_content(body)
    return msg


def raw_dialogue(port, payload, timeout=30):
    """Sends raw bytes and returns everything the server said until it
    closed the connection (bounded by a deadline)."""
    out = b""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(payload)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                break
            out += chunk
    return out


def wait_for(predicate, seconds=20):
    deadline = time.monotonic() + seconds
    for _ in range(2000):
        if predicate():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return False


# ---- protocol -----------------------------------------------------------


def test_ehlo_extensions_vrfy_help(mx):
    mx.alias("a@ex.test", "--forward", "x@dest.test")
    mx.start()
    with mx.smtp() as c:
        code, text = c.ehlo("client.test")
        assert code == 250
        for ext in ("pipelining", "size", "8bitmime", "smtputf8", "enhancedstatuscodes", "starttls"):
            assert c.has_extn(ext), ext
        assert c.esmtp_features["size"] == "52428800"
        assert c.verify("a@ex.test")[0] == 252
        assert c.docmd("HELP")[0] == 214
        assert c.docmd("RCPT TO:<a@ex.test>")[0] == 503
        assert c.docmd("DATA")[0] == 503
        assert c.docmd("FOO")[0] == 500
        assert c.docmd("MAIL FROM:<a@b> BAD=1")[0] == 555


def test_routing_answers(mx):
    mx.alias("a@ex.test", "--forward", "x@dest.test")
    mx.alias("off@ex.test", "--forward", "x@dest.test", "--disabled")
    mx.start()
    with mx.smtp() as c:
        c.ehlo("client.test")
        assert c.mail("s@sender.test")[0] == 250
        code, text = c.rcpt("nobody@ex.test")
        assert (code, text[:5]) == (550, b"5.1.1")
        code, text = c.rcpt("off@ex.test")
        assert (code, text[:5]) == (550, b"5.2.1")
        code, text = c.rcpt("someone@elsewhere.test")
        assert (code, text[:5]) == (550, b"5.7.1")
        assert c.docmd("DATA")[0] == 554  # no valid recipients
        assert c.rcpt("a@ex.test")[0] == 250


def test_bare_lf_command_refused(mx):
    mx.start()
    out = raw_dialogue(mx.port, b"EHLO x\nQUIT\r\n")
    assert b"500 5.5.2" in out
    assert b"221" in out


def test_pipelining_and_size(mx):
    mx.alias("a@ex.test", "--forward", "x@dest.test")
    mx.extra_env["SEALPOST_SMTP_MAX_MESSAGE_SIZE"] = "2000"
    mx.start()
    big = b"Subject: big\r\n\r\n" + b"y" * 3000 + b"\r\n"
    out = raw_dialogue(
        mx.port,
        b"EHLO x\r\nMAIL FROM:<s@sender.test>\r\nRCPT TO:<a@ex.test>\r\nDATA\r\n"
        + big + b".\r\n"
        + b"MAIL FROM:<s@sender.test> SIZE=5000\r\nQUIT\r\n",
    )
    lines = out.split(b"\r\n")
    assert any(l.startswith(b"552 5.3.4") for l in lines)
    assert sum(1 for l in lines if l.startswith(b"552")) == 2
    assert lines[-2].startswith(b"221")
    assert mx.sink.messages == []


def test_limits_as_settings(mx):
    mx.alias("a@ex.test", "--forward", "x@dest.test")
    mx.alias("b@ex.test", "--forward", "x@dest.test")
    mx.alias("c@ex.test", "--forward", "x@dest.test")
    mx.extra_env.update({
        "SEALPOST_SMTP_MAX_RECIPIENTS": "2",
        "SEALPOST_SMTP_MAX_LINE_LENGTH": "100",
        "SEALPOST_SMTP_MAX_MESSAGES_PER_IP_HOUR": "2",
        "SEALPOST_SMTP_MAX_CONNECTIONS_PER_IP": "2",
    })
    mx.start()

    def greeted():
        # The probe connection of wait_port may still be counted for a
        # moment after it closed: retry a bounded number of times.
        for _ in range(200):
            s = socket.create_connection(("127.0.0.1", mx.port), timeout=30)
            if s.recv(1024).startswith(b"220"):
                return s
            s.close()
            time.sleep(0.05)
        raise AssertionError("never greeted")

    first = greeted()
    second = greeted()
    with socket.create_connection(("127.0.0.1", mx.port), timeout=30) as third:
        assert third.recv(1024).startswith(b"421 4.7.0")
    second.close()
    first.close()
    c = None
    for _ in range(200):
        try:
            c = mx.smtp()
            break
        except smtplib.SMTPConnectError:
            time.sleep(0.05)
    assert c is not None
    with c:
        c.ehlo("client.test")
        assert c.docmd("NOOP " + "x" * 200)[0] == 500
        assert c.docmd("NOOP")[0] == 250
        assert c.mail("s@sender.test")[0] == 250
        assert c.rcpt("a@ex.test")[0] == 250
        assert c.rcpt("b@ex.test")[0] == 250
        code, text = c.rcpt("c@ex.test")
        assert (code, text[:5]) == (452, b"4.5.3")
        assert c.data(b"Subject: one\r\n\r\nx\r\n")[0] == 250
        assert c.sendmail("s@sender.test", ["a@ex.test"], b"Subject: two\r\n\r\nx\r\n") == {}
        code, text = c.mail("s@sender.test")
        assert (code, text[:5]) == (451, b"4.7.1")
    # the first message went to x once (a and b share the target)
    assert len(mx.sink.messages) == 2


def test_header_block_cap(mx):
    mx.alias("a@ex.test", "--forward", "x@dest.test")
    mx.start()
    header = b"".join(b"X-Filler-%06d: %s\r\n" % (i, b"y" * 60) for i in range(15000))
    assert len(header) > 1024 * 1024
    with mx.smtp() as c:
        with pytest.raises(smtplib.SMTPDataError) as err:
            c.sendmail("s@sender.test", ["a@ex.test"], header + b"\r\nbody\r\n")
        assert err.value.smtp_code == 552
        # the session goes on
        assert c.sendmail("s@sender.test", ["a@ex.test"], b"Subject: ok\r\n\r\nx\r\n") == {}
    assert len(mx.sink.messages) == 1


# ---- forwarding ----------------------------------------------------------


def test_forward_smtplib_with_tag_and_srs(mx):
    mx.alias("a@ex.test", "--forward", "x@dest.test", "--forward", "y@dest.test", "--forward", "x@dest.test")
    mx.start()
    msg = simple_message(to="a+news@ex.test")
    with mx.smtp() as c:
        refused = c.send_message(msg, from_addr="alice@sender.test", to_addrs=["a+news@ex.test"])
        assert refused == {}
    assert len(mx.sink.messages) == 2
    got = {m[1][0]: m for m in mx.sink.messages}
    assert set(got) == {"x+news@dest.test", "y+news@dest.test"}
    mail_from, _, data = got["x+news@dest.test"]
    assert mail_from.upper().startswith("SRS0=") and mail_from.endswith("@ex.test")
    assert b"X-Original-To: a+news@ex.test" in data
    # Our ARC set first (test_smtp_arc.py verifies it), then our Received.
    assert data.startswith(b"ARC-Seal: i=1;")
    assert b"\r\nReceived: from " in data
    assert msg["Message-ID"].encode() in data


def test_forward_swaks(mx):
    if shutil.which("swaks") is None:
        pytest.fail("swaks is not installed (scripts/deps.sh installs it)")
    mx.alias("a@ex.test", "--forward", "x@dest.test")
    mx.start()
    proc = subprocess.run(
        ["swaks", "--server", "127.0.0.1", "--port", str(mx.port), "--from", "bob@sender.test",
         "--to", "a@ex.test", "--header", "Subject: via swaks", "--body", "swaks body", "--pipeline"],
        capture_output=True, timeout=60,
    )
    assert proc.returncode == 0, proc.stdout.decode() + proc.stderr.decode()
    assert len(mx.sink.for_rcpt("x@dest.test")) == 1
    assert b"swaks body" in mx.sink.for_rcpt("x@dest.test")[0][2]


def test_forward_over_starttls(mx):
    mx.alias("a@ex.test", "--forward", "x@dest.test")
    mx.start()
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with mx.smtp() as c:
        c.ehlo("client.test")
        assert c.starttls(context=ctx)[0] == 220
        c.ehlo("client.test")
        assert not c.has_extn("starttls")
        c.sendmail("s@sender.test", ["a@ex.test"], b"Subject: tls\r\n\r\nover tls\r\n")
    assert len(mx.sink.for_rcpt("x@dest.test")) == 1


def test_remote_reject_is_550_with_reason(mx):
    mx.alias("a@ex.test", "--forward", "gone@dest.test")
    mx.sink.modes["gone"] = "reject"
    mx.start()
    with mx.smtp() as c:
        with pytest.raises(smtplib.SMTPDataError) as err:
            c.sendmail("s@sender.test", ["a@ex.test"], b"Subject: x\r\n\r\nbody\r\n")
    assert err.value.smtp_code == 550
    assert b"5.1.1" in err.value.smtp_error and b"User unknown" in err.value.smtp_error
    # the private forward address is not told to the sender
    assert b"gone@dest.test" not in err.value.smtp_error
    assert b"a@ex.test" in err.value.smtp_error


def test_partial_failure_retry_no_duplicate(mx):
    mx.alias("a@ex.test", "--forward", "ok@dest.test", "--forward", "later@dest.test")
    mx.sink.modes["later"] = "defer"
    mx.start()
    data = b"Subject: retry\r\nMessage-ID: <retry-1@sender.test>\r\n\r\nretry body\r\n"
    with mx.smtp() as c:
        with pytest.raises(smtplib.SMTPDataError) as err:
            c.sendmail("s@sender.test", ["a@ex.test"], data)
    assert err.value.smtp_code == 451
    assert len(mx.sink.for_rcpt("ok@dest.test")) == 1
    assert mx.sink.for_rcpt("later@dest.test") == []
    # The sender's queue retries the same message later.
    mx.sink.modes["later"] = "accept"
    with mx.smtp() as c:
        assert c.sendmail("s@sender.test", ["a@ex.test"], data) == {}
    assert len(mx.sink.for_rcpt("ok@dest.test")) == 1
    assert len(mx.sink.for_rcpt("later@dest.test")) == 1


def test_relay_down_is_451(mx):
    mx.alias("a@ex.test", "--forward", "x@dest.test")
    mx.extra_env["SEALPOST_OUTBOUND_RELAYHOST"] = f"127.0.0.1:{free_port()}"
    mx.start()
    with mx.smtp() as c:
        with pytest.raises(smtplib.SMTPDataError) as err:
            c.sendmail("s@sender.test", ["a@ex.test"], b"Subject: x\r\n\r\nbody\r\n")
    assert err.value.smtp_code == 451


def test_smtputf8_forward(mx):
    mx.alias("a@ex.test", "--forward", "x@dest.test")
    mx.start()
    data = "Subject: caf\u00e9\r\nFrom: j\u00f6rg@sender.test\r\n\r\nGr\u00fc\u00dfe\r\n".encode()
    with mx.smtp() as c:
        c.ehlo("client.test")
        c.command_encoding = "utf-8"
        assert c.docmd("MAIL FROM:<j\u00f6rg@sender.test> SMTPUTF8 BODY=8BITMIME")[0] == 250
        assert c.docmd("RCPT TO:<a@ex.test>")[0] == 250
        code, _ = c.data(data)
        assert code == 250
        # Without SMTPUTF8 a UTF-8 sender is refused.
        assert c.docmd("MAIL FROM:<j\u00f6rg@sender.test>")[0] == 553
    assert len(mx.sink.messages) == 1
    assert "Gr\u00fc\u00dfe".encode() in mx.sink.messages[0][2]


def test_log_addresses_only_when_asked(tmp_path):
    mx = Mx(tmp_path, {"SEALPOST_LOG_ADDRESSES": "true"})
    try:
        mx.alias("a@ex.test", "--forward", "x@dest.test")
        mx.start()
        with mx.smtp() as c:
            assert c.sendmail("s@sender.test", ["a@ex.test"], b"Subject: x\r\n\r\nx\r\n") == {}
        mx.stop()
        assert b"from=<s@sender.test> to=<a@ex.test>" in mx.logs()
    finally:
        mx.stop()


# ---- smuggling ---------------------------------------------------------------

SMUGGLING_VARIANTS = [
    b"\n.\n", b"\n.\r\n", b"\r.\r", b"\r\n.\r", b"\r.\r\n", b"\r\n.\n", b"\n.\r", b"\r.\n",
]


@pytest.mark.parametrize("fake_end", SMUGGLING_VARIANTS, ids=lambda v: v.hex())
def test_smuggling_variant_delivers_exactly_one(mx, fake_end):
    mx.alias("a@ex.test", "--forward", "x@dest.test")
    mx.alias("victim@ex.test", "--forward", "v@dest.test")
    mx.start()
    payload = (
        b"EHLO attacker.test\r\nMAIL FROM:<s@sender.test>\r\nRCPT TO:<a@ex.test>\r\nDATA\r\n"
        b"Subject: outer\r\n\r\nfirst part" + fake_end
        + b"MAIL FROM:<admin@ex.test>\r\nRCPT TO:<victim@ex.test>\r\nDATA\r\n"
        b"Subject: smuggled\r\n\r\nevil\r\n.\r\nQUIT\r\n"
    )
    out = raw_dialogue(mx.port, payload)
    codes = [l[:3] for l in out.split(b"\r\n") if l]
    # greeting, EHLO, MAIL, RCPT, 354, one answer for one message, QUIT
    assert codes.count(b"354") == 1, out
    assert codes[-1] == b"221", out
    assert len(mx.sink.messages) == 1
    assert mx.sink.for_rcpt("v@dest.test") == []
    assert b"Subject: smuggled" in mx.sink.messages[0][2]


# ---- webhooks -------------------------------------------------------------------


def domain_webhook_key(sp):
    out = sp.run("--json", "domain", "show", DOMAIN).stdout
    return json.loads(out)["webhook_key"]


def test_webhook_signed_json(mx):
    hook = WebhookReceiver(domain_webhook_key(mx.sp))
    try:
        mx.alias("h@ex.test", "--webhook", f"http://127.0.0.1:{hook.port}/in")
        mx.start()
        msg = simple_message(subject="Webhook s\u00fcbject", frm="Alice <alice@sender.test>", to="h@ex.test",
                             body="plain body\n")
        msg.add_alternative("<p>html body</p>", subtype="html")
        msg.add_attachment(b"\x00\x01attachment-bytes", maintype="application", subtype="octet-stream",
                           filename="a.bin")
        with mx.smtp() as c:
            assert c.send_message(msg, from_addr="alice@sender.test", to_addrs=["h@ex.test"]) == {}
        assert len(hook.requests) == 1
        ok, doc, path = hook.requests[0]
        assert ok, "signature did not verify"
        assert path == "/in"
        assert doc["envelope"]["mail_from"] == "alice@sender.test"
        assert doc["envelope"]["recipients"] == ["h@ex.test"]
        assert doc["envelope"]["remote_ip"] == "127.0.0.1"
        assert doc["envelope"]["helo"]
        assert doc["subject"] == "Webhook s\u00fcbject"
        assert doc["from"] == [{"name": "Alice", "address": "alice@sender.test"}]
        assert doc["to"][0]["address"] == "h@ex.test"
        assert doc["message_id"] == msg["Message-ID"].strip("<>")
        assert "plain body" in doc["text"]
        assert "<p>html body</p>" in doc["html"]
        att = doc["attachments"]
        assert len(att) == 1 and att[0]["filename"] == "a.bin" and att[0]["size"] == 18
        import base64
        assert base64.b64decode(att[0]["content"]) == b"\x00\x01attachment-bytes"
        assert base64.b64decode(doc["raw"]).startswith(b"Content-Type") or b"Subject:" in base64.b64decode(doc["raw"])
        assert any(h["name"] == "Subject" for h in doc["headers"])
    finally:
        hook.close()


def test_webhook_options_and_failure(mx):
    hook = WebhookReceiver(domain_webhook_key(mx.sp))
    try:
        mx.alias("h@ex.test", "--webhook", f"http://127.0.0.1:{hook.port}/in?attachments=false&raw=false")
        mx.start()
        with mx.smtp() as c:
            assert c.sendmail("s@sender.test", ["h@ex.test"], b"Subject: opts\r\n\r\nx\r\n") == {}
        doc = hook.requests[0][1]
        assert "raw" not in doc and "attachments" not in doc
        hook.status = 500
        with mx.smtp() as c:
            with pytest.raises(smtplib.SMTPDataError) as err:
                c.sendmail("s@sender.test", ["h@ex.test"], b"Subject: fail\r\n\r\nx\r\n")
        assert err.value.smtp_code == 451
    finally:
        hook.close()


def test_webhook_private_address_refused_by_default(tmp_path):
    mx = Mx(tmp_path, {"SEALPOST_WEBHOOK_ALLOW_PRIVATE": "false"})
    hook = WebhookReceiver(domain_webhook_key(mx.sp))
    try:
        mx.alias("h@ex.test", "--webhook", f"http://127.0.0.1:{hook.port}/in")
        mx.start()
        with mx.smtp() as c:
            with pytest.raises(smtplib.SMTPDataError) as err:
                c.sendmail("s@sender.test", ["h@ex.test"], b"Subject: x\r\n\r\nx\r\n")
        assert err.value.smtp_code == 451
        assert hook.requests == []
    finally:
        hook.close()
        mx.stop()


# ---- mailboxes ------------------------------------------------------------------


def mailbox_password(mx, address):
    return mx.sp.run("alias", "password", address).stdout.decode().strip()


def export_mailbox(mx, address, password):
    # The CLI acts as the owner of the data directory (the unprivileged
    # service user once serve ran), so the export goes to a folder it may
    # write: neither the data directory nor the server's temporary one.
    folder = mx.tmp_path / "export"
    folder.mkdir(exist_ok=True)
    os.chmod(folder, 0o1777)
    out = folder / ("export-%s.mbox" % os.urandom(4).hex())
    mx.sp.run("mailbox", "export", address, "--format", "mbox", "-o", str(out),
              env={"SEALPOST_PASSWORD": password})
    data = out.read_bytes()
    out.unlink()
    return data


def test_mailbox_delivery_sealed_then_exported(mx):
    mx.alias("m@ex.test", "--mailbox")
    password = mailbox_password(mx, "m@ex.test")
    mx.start()
    with mx.smtp() as c:
        assert c.sendmail("s@sender.test", ["m+tag@ex.test"],
                          b"Subject: to the mailbox\r\n\r\nstored body\r\n") == {}
    exported = export_mailbox(mx, "m@ex.test", password)
    assert b"Subject: to the mailbox" in exported
    assert b"stored body" in exported
    assert exported.count(b"Subject: to the mailbox") == 1


def test_mailbox_without_password_is_deferred(mx):
    mx.alias("m@ex.test", "--mailbox")
    mx.start()
    with mx.smtp() as c:
        with pytest.raises(smtplib.SMTPDataError) as err:
            c.sendmail("s@sender.test", ["m@ex.test"], b"Subject: x\r\n\r\nx\r\n")
    assert err.value.smtp_code == 451


# ---- privacy ---------------------------------------------------------------------


def grep_tree(root, needle):
    hits = []
    for dirpath, _, files in os.walk(root):
        for name in files:
            path = os.path.join(dirpath, name)
            try:
                with open(path, "rb") as f:
                    if needle in f.read():
                        hits.append(path)
            except OSError:
                pass
    return hits


def test_canary_nowhere_on_disk_or_in_logs(mx):
    canary = "canary-" + os.urandom(8).hex()
    hook = WebhookReceiver(domain_webhook_key(mx.sp))
    try:
        mx.alias("a@ex.test", "--forward", "x@dest.test")
        mx.alias("h@ex.test", "--webhook", f"http://127.0.0.1:{hook.port}/in")
        mx.alias("m@ex.test", "--mailbox")
        password = mailbox_password(mx, "m@ex.test")
        mx.start()
        with mx.smtp() as c:
            msg = simple_message(subject=canary, body=canary + "\n", frm=f"{canary}@sender.test",
                                 to="a@ex.test")
            assert c.send_message(msg, from_addr=f"{canary}@sender.test",
                                  to_addrs=["a@ex.test", "h@ex.test", "m@ex.test"]) == {}
        assert canary.encode() in mx.sink.messages[0][2]
        assert len(hook.requests) == 1
        mx.stop()
        # The stored copy is there, sealed: only the password opens it.
        assert canary.encode() in export_mailbox(mx, "m@ex.test", password)
        needle = canary.encode()
        assert grep_tree(mx.sp.data_dir, needle) == []
        assert grep_tree(str(mx.tmpdir), needle) == []
        assert needle not in mx.logs()
        # Nor the recipient addresses.
        assert b"a@ex.test" not in mx.logs() and b"x@dest.test" not in mx.logs()
    finally:
        hook.close()


# ---- storage limits -------------------------------------------------------------


def mailbox_disk_usage(mx):
    """What the MX counts for the only mailbox of the data directory: its
    database file and -wal, plus the messages sealed in its spool (each
    file is the message plus 49 bytes of sealing)."""
    total = 0
    mailboxes = os.path.join(mx.sp.data_dir, "mailboxes")
    for name in os.listdir(mailboxes) if os.path.isdir(mailboxes) else []:
        if name.endswith(".sqlite") or name.endswith(".sqlite-wal"):
            total += os.path.getsize(os.path.join(mailboxes, name))
    spool = os.path.join(mx.sp.data_dir, "spool")
    for dirpath, _, files in os.walk(spool):
        for name in files:
            if name.endswith(".msg"):
                total += os.path.getsize(os.path.join(dirpath, name)) - 49
    return total


@pytest.mark.parametrize("permanent", [False, True])
def test_mailbox_over_quota(mx, permanent):
    mx.alias("m@ex.test", "--mailbox")
    password = mailbox_password(mx, "m@ex.test")
    base = mailbox_disk_usage(mx)  # the empty mailbox, before any mail
    mx.alias("other@ex.test", "--mailbox")
    mailbox_password(mx, "other@ex.test")
    # Room for one 2,000-byte message but not two.
    mx.sp.run("alias", "set", "m@ex.test", "--quota", str(base + 3000))
    if permanent:
        mx.extra_env["SEALPOST_SMTP_QUOTA_PERMANENT"] = "true"
    mx.start()
    code, enhanced = (552, b"5.2.2") if permanent else (452, b"4.2.2")

    def message(subject):
        head = b"Subject: " + subject + b"\r\n\r\n"
        return head + b"x" * (1998 - len(head)) + b"\r\n"

    with mx.smtp() as c:
        assert c.sendmail("s@sender.test", ["m@ex.test"], message(b"first")) == {}
        # The recipient still fits; the message, once its size is known,
        # does not: refused after DATA, nothing sealed.
        with pytest.raises(smtplib.SMTPDataError) as err:
            c.sendmail("s@sender.test", ["m@ex.test"], message(b"second"))
        assert (err.value.smtp_code, err.value.smtp_error[:5]) == (code, enhanced)

    # Past the limit (the operator lowers it below what the mailbox holds):
    # refused at RCPT, while another mailbox still takes mail.
    mx.sp.run("alias", "set", "m@ex.test", "--quota", str(base + 1000))
    with mx.smtp() as c:
        c.ehlo("client.test")
        assert c.mail("s@sender.test")[0] == 250
        rcpt_code, text = c.rcpt("m+tag@ex.test")
        assert (rcpt_code, text[:5]) == (code, enhanced)
        assert c.rcpt("other@ex.test")[0] == 250
        assert c.data(message(b"third"))[0] == 250

    exported = export_mailbox(mx, "m@ex.test", password)
    assert exported.count(b"Subject: first") == 1
    assert b"Subject: second" not in exported and b"Subject: third" not in exported


def test_owner_quota_shared_by_aliases(mx):
    mx.alias("m@ex.test", "--mailbox")
    mailbox_password(mx, "m@ex.test")
    base = mailbox_disk_usage(mx)
    mx.alias("n@ex.test", "--mailbox")
    mailbox_password(mx, "n@ex.test")
    both = mailbox_disk_usage(mx)
    mx.start()
    body = b"Subject: shared\r\n\r\n" + b"y" * 2500 + b"\r\n"
    with mx.smtp() as c:
        assert c.sendmail("s@sender.test", ["m@ex.test"], body) == {}
    # n has no limit of its own; m's mail counts against the owner's.
    assert mailbox_disk_usage(mx) >= both + 2500 > base
    mx.sp.run("owner", "set", "default", "--quota", str(both + 2000))
    with mx.smtp() as c:
        c.ehlo("client.test")
        assert c.mail("s@sender.test")[0] == 250
        code, text = c.rcpt("n@ex.test")
        assert (code, text[:5]) == (452, b"4.2.2")
    mx.sp.run("owner", "set", "default", "--quota", "0")
    with mx.smtp() as c:
        assert c.sendmail("s@sender.test", ["n@ex.test"], body) == {}
