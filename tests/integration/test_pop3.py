"""POP3 (issue 5) against `sealpost serve`: Python's poplib over implicit
TLS and STLS for every command, raw transcripts for malformed input and
pipelining, the maildrop semantics (DELE/RSET/QUIT, a dropped connection
removes nothing, UIDL stable across sessions), dot-stuffing, the login
limits, and fetchmail end to end."""
import base64
import os
import poplib
import socket
import ssl
import subprocess

import pytest

ADDRESS = "user@example.test"
OTHER = "other@example.test"


def message(subject, body=b"Hello.\r\n"):
    return (b"From: Alice <alice@sender.test>\r\n"
            b"To: user@example.test\r\n"
            b"Subject: " + subject.encode() + b"\r\n"
            b"Date: Mon, 02 Nov 2026 10:00:00 +0000\r\n"
            b"\r\n" + body)


# Lines that only survive RETR if the server dot-stuffs them.
DOTTED_BODY = b"first\r\n.\r\n..\r\n.leading dot\r\n...\r\nlast\r\n"
LONG_BODY = b"".join(b"line %d\r\n" % i for i in range(1, 21))


def tls_context():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


class Env:
    def __init__(self, sp, server, passwords):
        self.sp = sp
        self.server = server
        self.passwords = passwords

    def connect(self):
        return poplib.POP3_SSL("127.0.0.1", self.server.ports["pop3s"],
                               context=tls_context(), timeout=30)

    def connect_plain(self):
        return poplib.POP3("127.0.0.1", self.server.ports["pop3"], timeout=30)

    def login(self, address=ADDRESS):
        p = self.connect()
        assert p.user(address) == b"+OK"
        assert p.pass_(self.passwords[address]) == b"+OK Logged in."
        return p

    def deliver(self, msg, address=ADDRESS):
        self.sp.run("deliver", address, input=msg)


def setup_aliases(sp):
    sp.run("domain", "add", "example.test")
    passwords = {}
    for address in (ADDRESS, OTHER):
        sp.run("alias", "add", address, "--mailbox")
        passwords[address] = sp.run("alias", "password", address).stdout.decode().strip()
    return passwords


@pytest.fixture
def env(served_sp, serve):
    passwords = setup_aliases(served_sp)
    server = serve(served_sp, ["pop3", "pop3s"])
    return Env(served_sp, server, passwords)


def err(p, line):
    """Sends one command that must fail; returns the -ERR line."""
    with pytest.raises(poplib.error_proto) as exc:
        p._shortcmd(line)
    resp = exc.value.args[0]
    assert resp.startswith(b"-ERR")
    return resp


class Raw:
    """A line-level client for transcripts."""

    def __init__(self, port, tls=True):
        sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.sock = tls_context().wrap_socket(sock) if tls else sock
        self.buf = b""
        self.greeting = self.line()

    def send(self, data):
        self.sock.sendall(data)

    def line(self):
        for _ in range(100000):
            if b"\r\n" in self.buf:
                break
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError(self.buf)
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def multiline(self):
        """The lines of a multi-line body, up to the lone '.', raw."""
        lines = []
        for _ in range(100000):
            line = self.line()
            if line == b".":
                return lines
            lines.append(line)
        raise AssertionError("no end of the multi-line reply")

    def close(self):
        self.sock.close()


def raw_login(env, address=ADDRESS):
    raw = Raw(env.server.ports["pop3s"])
    raw.send(b"USER %s\r\nPASS %s\r\n" % (address.encode(), env.passwords[address].encode()))
    assert raw.line() == b"+OK"
    assert raw.line() == b"+OK Logged in."
    return raw


# ---- connection, capabilities, TLS ----

def test_greeting_and_capa_over_implicit_tls(env):
    p = env.connect()
    assert p.getwelcome() == b"+OK Sealpost POP3 ready."
    caps = p.capa()
    for cap in ("TOP", "UIDL", "USER", "RESP-CODES", "PIPELINING", "AUTH-RESP-CODE"):
        assert cap in caps
    assert caps["SASL"] == ["PLAIN"]
    assert caps["IMPLEMENTATION"] == ["Sealpost"]
    assert "STLS" not in caps  # already TLS
    assert err(p, "STLS") == b"-ERR TLS is already active."
    p.quit()


def test_stls_refused_when_tls_active(env):
    raw = Raw(env.server.ports["pop3s"])
    raw.send(b"STLS\r\n")
    assert raw.line() == b"-ERR TLS is already active."
    raw.send(b"NOOP\r\n")
    assert raw.line() == b"-ERR Not logged in."
    raw.close()


def test_plaintext_login_refused_then_stls(env):
    p = env.connect_plain()
    caps = p.capa()
    assert "STLS" in caps
    # No USER or SASL before TLS (RFC 2595 4).
    assert "USER" not in caps and "SASL" not in caps
    assert err(p, "USER " + ADDRESS).startswith(b"-ERR [AUTH] Plaintext authentication disallowed")
    assert err(p, "AUTH PLAIN").startswith(b"-ERR [AUTH] Plaintext authentication disallowed")
    assert p.stls(context=tls_context()).startswith(b"+OK")
    caps = p.capa()
    assert "USER" in caps and caps["SASL"] == ["PLAIN"] and "STLS" not in caps
    assert err(p, "STLS") == b"-ERR TLS is already active."
    assert p.user(ADDRESS) == b"+OK"
    assert p.pass_(env.passwords[ADDRESS]) == b"+OK Logged in."
    assert p.stat() == (0, 0)
    assert p.quit().startswith(b"+OK")


def test_stls_discards_pipelined_plaintext(env):
    raw = Raw(env.server.ports["pop3"], tls=False)
    # Everything after STLS in the same packet must be thrown away
    # (CVE-2011-0411): the USER would otherwise be answered after TLS.
    raw.send(b"STLS\r\nUSER " + ADDRESS.encode() + b"\r\n")
    assert raw.line() == b"+OK Begin TLS negotiation now."
    assert raw.buf == b""
    raw.sock = tls_context().wrap_socket(raw.sock)
    raw.send(b"PASS " + env.passwords[ADDRESS].encode() + b"\r\n")
    assert raw.line() == b"-ERR No username given."
    raw.send(b"CAPA\r\n")
    assert raw.line() == b"+OK Capability list follows"
    assert b"STLS" not in raw.multiline()
    raw.close()


def test_plaintext_login_on_loopback_when_allowed(served_sp, serve):
    passwords = setup_aliases(served_sp)
    server = serve(served_sp, ["pop3"], env={"SEALPOST_POP3_ALLOW_PLAINTEXT_LOOPBACK": "true"})
    p = poplib.POP3("127.0.0.1", server.ports["pop3"], timeout=30)
    caps = p.capa()
    assert "USER" in caps and "STLS" in caps
    p.user(ADDRESS)
    assert p.pass_(passwords[ADDRESS]) == b"+OK Logged in."
    p.quit()


# ---- authentication ----

def test_user_pass_and_bad_credentials(env):
    p = env.connect()
    assert err(p, "PASS x") == b"-ERR No username given."
    assert err(p, "USER") == b"-ERR USER takes one argument."
    assert p.user(ADDRESS) == b"+OK"
    bad = err(p, "PASS wrong-password")
    assert bad == b"-ERR [AUTH] Authentication failed."
    # Unknown user: the very same answer.
    p.user("nobody@example.test")
    assert err(p, "PASS " + env.passwords[ADDRESS]) == bad
    # PASS consumed the USER.
    assert err(p, "PASS " + env.passwords[ADDRESS]) == b"-ERR No username given."
    # Case of the address does not matter.
    p.user(ADDRESS.upper())
    assert p.pass_(env.passwords[ADDRESS]) == b"+OK Logged in."
    # Wrong state now.
    assert err(p, "USER " + ADDRESS) == b"-ERR Already logged in."
    assert err(p, "AUTH PLAIN") == b"-ERR Already logged in."
    p.quit()


def plain(address, password, authzid=""):
    return base64.b64encode(f"{authzid}\0{address}\0{password}".encode()).decode()


def test_auth_plain(env):
    raw = Raw(env.server.ports["pop3s"])
    raw.send(b"AUTH\r\n")
    assert raw.line() == b"+OK"
    assert raw.multiline() == [b"PLAIN"]
    raw.send(b"AUTH CRAM-MD5\r\n")
    assert raw.line() == b"-ERR Unsupported authentication mechanism."
    # Without initial response: continuation, then "*" aborts.
    raw.send(b"AUTH PLAIN\r\n")
    assert raw.line() == b"+ "
    raw.send(b"*\r\n")
    assert raw.line() == b"-ERR Authentication aborted."
    raw.send(b"AUTH PLAIN !!!notbase64\r\n")
    assert raw.line() == b"-ERR Invalid base64 data."
    raw.send(b"AUTH PLAIN " + plain(ADDRESS, "wrong").encode() + b"\r\n")
    assert raw.line() == b"-ERR [AUTH] Authentication failed."
    # authzid other than authcid is refused.
    raw.send(b"AUTH PLAIN " + plain(ADDRESS, env.passwords[ADDRESS], OTHER).encode() + b"\r\n")
    assert raw.line() == b"-ERR [AUTH] Authentication failed."
    # Continuation with the response on its own line (longer than any
    # keyword).
    raw.send(b"AUTH PLAIN\r\n")
    assert raw.line() == b"+ "
    raw.send(plain(ADDRESS, env.passwords[ADDRESS]).encode() + b"\r\n")
    assert raw.line() == b"+OK Logged in."
    raw.send(b"STAT\r\n")
    assert raw.line() == b"+OK 0 0"
    raw.close()

    # Initial response (RFC 5034), through poplib's raw command.
    p = env.connect()
    assert p._shortcmd("AUTH PLAIN " + plain(ADDRESS, env.passwords[ADDRESS], ADDRESS)) == b"+OK Logged in."
    p.quit()


def test_failed_logins_per_alias_are_limited(served_sp, serve):
    passwords = setup_aliases(served_sp)
    server = serve(served_sp, ["pop3s"], env={"SEALPOST_LOGIN_FAILURES_PER_ALIAS": "2",
                                             "SEALPOST_LOGIN_FAILURES_PER_IP": "100"})
    e = Env(served_sp, server, passwords)
    p = e.connect()
    for _ in range(2):
        p.user(ADDRESS)
        assert err(p, "PASS wrong") == b"-ERR [AUTH] Authentication failed."
    # The right password no longer helps for this alias, with the same
    # answer ...
    p.user(ADDRESS)
    assert err(p, "PASS " + passwords[ADDRESS]) == b"-ERR [AUTH] Authentication failed."
    # ... while another alias from the same IP still logs in.
    p.user(OTHER)
    assert p.pass_(passwords[OTHER]) == b"+OK Logged in."
    p.quit()


def test_failed_logins_per_ip_are_limited(served_sp, serve):
    passwords = setup_aliases(served_sp)
    server = serve(served_sp, ["pop3s"], env={"SEALPOST_LOGIN_FAILURES_PER_IP": "3"})
    e = Env(served_sp, server, passwords)
    p = e.connect()
    for address in (ADDRESS, OTHER, "ghost@example.test"):
        p.user(address)
        assert err(p, "PASS wrong") == b"-ERR [AUTH] Authentication failed."
    p.user(OTHER)
    assert err(p, "PASS " + passwords[OTHER]) == b"-ERR [AUTH] Authentication failed."
    p.quit()


def test_control_plane_failure_is_sys_temp(served_sp, serve):
    passwords = setup_aliases(served_sp)
    server = serve(served_sp, ["pop3s"])
    e = Env(served_sp, server, passwords)
    control = os.path.join(served_sp.data_dir, "control.sqlite")
    os.chmod(control, 0)  # the server runs unprivileged: it cannot open it
    try:
        p = e.connect()
        p.user(ADDRESS)
        assert err(p, "PASS " + passwords[ADDRESS]) == \
            b"-ERR [SYS/TEMP] Temporary failure; try again later."
        p.quit()
    finally:
        os.chmod(control, 0o600)
    # Not counted as a failed login, and fine again once it opens.
    e.login().quit()


def test_maildrop_lock_in_use(env):
    first = env.login()
    p = env.connect()
    p.user(ADDRESS)
    assert err(p, "PASS " + env.passwords[ADDRESS]) == \
        b"-ERR [IN-USE] Mailbox is locked by another POP3 session."
    # Another alias is not affected.
    p.user(OTHER)
    assert p.pass_(env.passwords[OTHER]) == b"+OK Logged in."
    p.quit()
    first.quit()
    # Released by QUIT.
    env.login().quit()


# ---- the TRANSACTION state ----

def fill(env, count=3):
    for i in range(1, count + 1):
        env.deliver(message(f"Message {i}", LONG_BODY if i == 2 else b"Body %d.\r\n" % i))


def test_stat_list_uidl_retr_top_noop(env):
    fill(env)
    sizes = [len(message(f"Message {i}", LONG_BODY if i == 2 else b"Body %d.\r\n" % i))
             for i in (1, 2, 3)]
    p = env.login()
    assert p.stat() == (3, sum(sizes))
    resp, lines, _ = p.list()
    assert resp == b"+OK Scan listing follows"
    assert lines == [b"%d %d" % (i + 1, s) for i, s in enumerate(sizes)]
    assert p.list(2) == b"+OK 2 %d" % sizes[1]
    resp, uids, _ = p.uidl()
    assert resp == b"+OK Unique-ID listing follows"
    assert [u.split()[0] for u in uids] == [b"1", b"2", b"3"]
    ids = [u.split()[1] for u in uids]
    assert len(set(ids)) == 3
    for uid in ids:
        assert 1 <= len(uid) <= 70 and all(0x21 <= c <= 0x7e for c in uid)
    assert p.uidl(3) == b"+OK 3 " + ids[2]
    resp, lines, octets = p.retr(2)
    assert resp == b"+OK %d octets" % sizes[1]
    expect = message("Message 2", LONG_BODY)
    assert b"\r\n".join(lines) + b"\r\n" == expect
    # TOP: the header, the empty line, then n body lines.
    resp, lines, _ = p.top(2, 3)
    assert resp.startswith(b"+OK")
    header = expect.split(b"\r\n\r\n")[0].split(b"\r\n")
    assert lines == header + [b"", b"line 1", b"line 2", b"line 3"]
    assert p.top(2, 0)[1] == header + [b""]
    assert p.top(2, 1000)[1] == expect.rstrip(b"\r\n").split(b"\r\n")
    assert p.noop() == b"+OK"
    assert p.quit() == b"+OK Logging out."


def test_malformed_input_and_wrong_state(env):
    fill(env, 2)
    raw = Raw(env.server.ports["pop3s"])
    for line, answer in [
        (b"STAT", b"-ERR Not logged in."),
        (b"RETR 1", b"-ERR Not logged in."),
        (b"XYZZY", b"-ERR Unknown command."),
        (b"", b"-ERR Empty command."),
    ]:
        raw.send(line + b"\r\n")
        assert raw.line() == answer, line
    raw.send(b"USER " + ADDRESS.encode() + b"\r\nPASS " + env.passwords[ADDRESS].encode() + b"\r\n")
    assert raw.line() == b"+OK"
    assert raw.line() == b"+OK Logged in."
    for line, answer in [
        (b"FOO bar", b"-ERR Unknown command."),
        (b"RETR", b"-ERR RETR takes one message number."),
        (b"RETR 1 2", b"-ERR RETR takes one message number."),
        (b"RETR 0", b"-ERR Invalid message number."),
        (b"RETR -1", b"-ERR Invalid message number."),
        (b"RETR abc", b"-ERR Invalid message number."),
        (b"RETR 99999999999", b"-ERR Invalid message number."),
        (b"RETR 3", b"-ERR There is no message 3."),
        (b"TOP 1", b"-ERR TOP takes a message number and a line count."),
        (b"TOP 1 x", b"-ERR Invalid number of lines."),
        (b"TOP 9 1", b"-ERR There is no message 9."),
        (b"DELE", b"-ERR DELE takes one message number."),
        (b"DELE 7", b"-ERR There is no message 7."),
        (b"LIST 1 2", b"-ERR Too many arguments."),
        (b"LIST 5", b"-ERR There is no message 5."),
        (b"UIDL x", b"-ERR Invalid message number."),
        (b"STAT 1", b"-ERR STAT takes no arguments."),
        (b"NOOP 1", b"-ERR NOOP takes no arguments."),
        (b"RSET 1", b"-ERR RSET takes no arguments."),
        (b"USER x", b"-ERR Already logged in."),
        (b"PASS x", b"-ERR Already logged in."),
        (b"STLS", b"-ERR Already logged in."),
        (b"stat", b"+OK 2 %d" % (len(message("Message 1", b"Body 1.\r\n")) +
                                 len(message("Message 2", LONG_BODY)))),
    ]:
        raw.send(line + b"\r\n")
        assert raw.line() == answer, line
    # An overlong line: -ERR, and the session goes on.
    raw.send(b"NOOP " + b"x" * 5000 + b"\r\n")
    assert raw.line() == b"-ERR Line too long."
    raw.send(b"NOOP\r\n")
    assert raw.line() == b"+OK"
    # A NUL byte in a command.
    raw.send(b"NO\0OP\r\n")
    assert raw.line() == b"-ERR NUL byte in command."
    raw.send(b"NOOP\r\n")
    assert raw.line() == b"+OK"
    raw.send(b"QUIT\r\n")
    assert raw.line() == b"+OK Logging out."
    raw.close()


def test_pipelining(env):
    fill(env, 2)
    raw = Raw(env.server.ports["pop3s"])
    # RFC 2449 6.6: many commands in one write, answered in order, with
    # store work (login, RETR) in between.
    raw.send(b"USER " + ADDRESS.encode() + b"\r\nPASS " + env.passwords[ADDRESS].encode() +
             b"\r\nSTAT\r\nRETR 1\r\nDELE 1\r\nLIST\r\nNOOP\r\nRSET\r\nQUIT\r\n")
    assert raw.line() == b"+OK"
    assert raw.line() == b"+OK Logged in."
    assert raw.line().startswith(b"+OK 2 ")
    assert raw.line().startswith(b"+OK ")
    assert b"Subject: Message 1" in raw.multiline()
    assert raw.line() == b"+OK Marked to be deleted."
    assert raw.line() == b"+OK Scan listing follows"
    assert [l.split()[0] for l in raw.multiline()] == [b"2"]
    assert raw.line() == b"+OK"
    assert raw.line() == b"+OK"
    assert raw.line() == b"+OK Logging out."
    raw.close()
    assert env.login().stat()[0] == 2


# ---- the maildrop: DELE, RSET, QUIT, dropped connections ----

def test_dele_then_rset_keeps_everything(env):
    fill(env)
    p = env.login()
    assert p.dele(1) == b"+OK Marked to be deleted."
    assert p.dele(3) == b"+OK Marked to be deleted."
    assert err(p, "DELE 1") == b"-ERR Message 1 is deleted."
    assert err(p, "RETR 1") == b"-ERR Message 1 is deleted."
    assert err(p, "TOP 3 0") == b"-ERR Message 3 is deleted."
    assert err(p, "LIST 1") == b"-ERR Message 1 is deleted."
    assert err(p, "UIDL 3") == b"-ERR Message 3 is deleted."
    assert p.stat()[0] == 1
    assert [l.split()[0] for l in p.list()[1]] == [b"2"]
    assert [l.split()[0] for l in p.uidl()[1]] == [b"2"]
    assert p.rset() == b"+OK"
    assert p.stat()[0] == 3
    assert p.quit() == b"+OK Logging out."
    p = env.login()
    assert p.stat()[0] == 3
    p.quit()


def test_dele_then_quit_removes(env):
    fill(env)
    p = env.login()
    uids = [u.split()[1] for u in p.uidl()[1]]
    p.dele(2)
    assert p.quit() == b"+OK Logging out, messages deleted."
    p = env.login()
    assert p.stat()[0] == 2
    # The others keep their unique ids; numbers are re-assigned.
    assert [u.split()[1] for u in p.uidl()[1]] == [uids[0], uids[2]]
    assert b"Subject: Message 3" in p.retr(2)[1]
    p.quit()


def test_dele_then_drop_removes_nothing(env):
    fill(env)
    raw = raw_login(env)
    raw.send(b"DELE 1\r\nDELE 2\r\n")
    assert raw.line() == b"+OK Marked to be deleted."
    assert raw.line() == b"+OK Marked to be deleted."
    # No QUIT: the connection just goes away.
    raw.sock.close()
    for _ in range(200):
        # The lock is released once the server has seen the close.
        p = env.connect()
        p.user(ADDRESS)
        try:
            p.pass_(env.passwords[ADDRESS])
            break
        except poplib.error_proto as e:
            assert b"[IN-USE]" in e.args[0]
            p.quit()
    else:
        raise AssertionError("the dropped session kept its lock")
    assert p.stat()[0] == 3
    p.quit()


def test_uidl_stable_across_sessions(env):
    fill(env, 2)
    p = env.login()
    first = p.uidl()[1]
    p.quit()
    p = env.login()
    assert p.uidl()[1] == first
    p.quit()
    env.deliver(message("Message 3"))
    p = env.login()
    again = p.uidl()[1]
    assert again[:2] == first
    assert again[2].split()[1] not in [u.split()[1] for u in first]
    p.quit()


def test_mail_delivered_during_session_waits_for_next(env):
    fill(env, 1)
    p = env.login()
    env.deliver(message("Late"))
    # RFC 1939: the maildrop is fixed for the session.
    assert p.stat()[0] == 1
    p.quit()
    p = env.login()
    assert p.stat()[0] == 2
    p.quit()


def test_dot_stuffing_round_trip(env):
    msg = message("Dots", DOTTED_BODY)
    env.deliver(msg)
    raw = raw_login(env)
    raw.send(b"RETR 1\r\n")
    assert raw.line() == b"+OK %d octets" % len(msg)
    body = raw.multiline()
    # On the wire every line starting with '.' has one more.
    assert body[-6:] == [b"first", b"..", b"...", b"..leading dot", b"....", b"last"]
    raw.send(b"TOP 1 2\r\n")
    raw.line()
    assert raw.multiline()[-3:] == [b"", b"first", b".."]
    raw.close()
    # poplib undoes it: the message comes back byte for byte.
    p = env.login()
    assert b"\r\n".join(p.retr(1)[1]) + b"\r\n" == msg
    p.quit()


def test_bare_lf_message_is_sent_with_crlf(env):
    msg = b"Subject: lf\n\nalpha\n.beta\n"
    env.deliver(msg)
    raw = raw_login(env)
    raw.send(b"RETR 1\r\n")
    raw.line()
    assert raw.multiline() == [b"Subject: lf", b"", b"alpha", b"..beta"]
    raw.close()


def test_idle_timeout_ends_session_without_update(served_sp, serve):
    passwords = setup_aliases(served_sp)
    server = serve(served_sp, ["pop3s"], env={"SEALPOST_POP3_TIMEOUT_SECONDS": "1"})
    e = Env(served_sp, server, passwords)
    e.deliver(message("Kept"))
    raw = raw_login(e)
    raw.send(b"DELE 1\r\n")
    assert raw.line() == b"+OK Marked to be deleted."
    # Silence: the server ends the session (the socket's own timeout of
    # 30 s bounds the wait), and the DELE is not applied.
    assert raw.line() == b"-ERR Disconnected for inactivity."
    with pytest.raises(EOFError):
        raw.line()
    raw.close()
    p = e.login()
    assert p.stat()[0] == 1
    p.quit()


def test_alongside_imap(served_sp, serve):
    passwords = setup_aliases(served_sp)
    server = serve(served_sp, ["pop3s", "imaps"])
    e = Env(served_sp, server, passwords)
    fill(e, 3)
    import imaplib
    p = e.login()
    m = imaplib.IMAP4_SSL("127.0.0.1", server.ports["imaps"], ssl_context=tls_context(), timeout=30)
    m.login(ADDRESS, passwords[ADDRESS])
    assert m.select("INBOX")[1] == [b"3"]
    # IMAP expunges message 1 under POP3's feet: RETR says so, the
    # session goes on.
    m.store("1", "+FLAGS", "\\Deleted")
    m.expunge()
    assert err(p, "RETR 1") == b"-ERR Message no longer exists."
    assert p.retr(2)[0].startswith(b"+OK")
    # POP3's QUIT removes message 3; IMAP sees it go.
    p.dele(3)
    assert p.quit() == b"+OK Logging out, messages deleted."
    typ, data = m.noop()
    assert typ == "OK"
    typ, data = m.search(None, "ALL")
    assert data == [b"1"]
    typ, data = m.fetch("1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert b"Message 2" in data[0][1]
    m.logout()


# ---- fetchmail, end to end ----

def run_fetchmail(tmp_path, env, port, ssl_line, keep=False):
    home = tmp_path / "fm"
    home.mkdir(exist_ok=True)
    out = home / "mbox"
    rc = home / "fetchmailrc"
    cert = os.path.join(env.sp.data_dir, "tls", "cert.pem")
    rc.write_text(
        f'poll 127.0.0.1 service {port} protocol pop3 auth password\n'
        f'  user "{ADDRESS}" there with password "{env.passwords[ADDRESS]}" is "root" here\n'
        f'  {ssl_line} sslcertck sslcertfile "{cert}" sslcommonname "localhost"\n'
        f'  {"keep" if keep else "nokeep"} mda "cat >> {out}"\n')
    rc.chmod(0o600)
    proc = subprocess.run(
        ["fetchmail", "-f", str(rc), "--nodetach", "--idfile", str(home / "ids"),
         "--pidfile", str(home / "pid"), "-v"],
        env={**os.environ, "HOME": str(home), "FETCHMAILHOME": str(home)},
        capture_output=True, timeout=120)
    return proc, out


def test_fetchmail_implicit_tls(env, tmp_path):
    fill(env)
    env.deliver(message("Dots", DOTTED_BODY))
    proc, out = run_fetchmail(tmp_path, env, env.server.ports["pop3s"], "ssl")
    log = proc.stderr.decode(errors="replace") + proc.stdout.decode(errors="replace")
    assert proc.returncode == 0, log
    assert "4 messages" in log, log
    got = out.read_bytes()
    for i in (1, 2, 3):
        assert b"Subject: Message %d" % i in got
    # The dotted lines arrive unstuffed (fetchmail hands the MDA LF lines).
    assert b"\n.\n..\n.leading dot\n...\nlast\n" in got.replace(b"\r\n", b"\n")
    # fetchmail deleted what it fetched: DELE + QUIT worked.
    p = env.login()
    assert p.stat() == (0, 0)
    p.quit()


def test_fetchmail_stls_keep(env, tmp_path):
    fill(env, 2)
    proc, out = run_fetchmail(tmp_path, env, env.server.ports["pop3"], "sslproto tls1.2+", keep=True)
    log = proc.stderr.decode(errors="replace") + proc.stdout.decode(errors="replace")
    assert proc.returncode == 0, log
    assert "STLS" in log, log
    got = out.read_bytes()
    assert got.count(b"Subject: Message") == 2
    # keep: the messages stay, and the UIDL-based idfile makes a second
    # run fetch nothing new (fetchmail's "uidl" tracking).
    p = env.login()
    assert p.stat()[0] == 2
    p.quit()
