"""IMAP (issue 5) against `sealpost serve`: Python's imaplib over implicit
TLS and STARTTLS for every command and extension, raw transcripts for
malformed input, two sessions on one mailbox, and IDLE seeing a message
handed to `sealpost deliver`."""
import imaplib
import json
import re
import socket
import ssl
import subprocess
import time

import pytest

from conftest import SEALPOST

ADDRESS = "user@example.test"
OTHER = "other@example.test"

MESSAGE = (b"From: Alice <alice@sender.test>\r\n"
           b"To: user@example.test\r\n"
           b"Subject: Quarterly report\r\n"
           b"Date: Mon, 02 Nov 2026 10:00:00 +0000\r\n"
           b"Message-ID: <q1@sender.test>\r\n"
           b"\r\n"
           b"The numbers are in.\r\nSee you.\r\n")

MULTIPART = (b"From: bob@sender.test\r\n"
             b"To: user@example.test\r\n"
             b"Subject: With attachment\r\n"
             b"MIME-Version: 1.0\r\n"
             b"Content-Type: multipart/mixed; boundary=XX\r\n"
             b"\r\n"
             b"--XX\r\n"
             b"Content-Type: text/plain\r\n"
             b"\r\n"
             b"part one\r\n"
             b"--XX\r\n"
             b"Content-Type: application/octet-stream\r\n"
             b"Content-Transfer-Encoding: base64\r\n"
             b"\r\n"
             b"AAECAw==\r\n"
             b"--XX--\r\n")


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
        return imaplib.IMAP4_SSL("127.0.0.1", self.server.ports["imaps"],
                                 ssl_context=tls_context(), timeout=30)

    def login(self, address=ADDRESS):
        m = self.connect()
        typ, _ = m.login(address, self.passwords[address])
        assert typ == "OK"
        return m

    def deliver(self, message, address=ADDRESS):
        self.sp.run("deliver", address, input=message)


@pytest.fixture
def env(served_sp, serve):
    sp = served_sp
    sp.run("domain", "add", "example.test")
    passwords = {}
    for address in (ADDRESS, OTHER):
        sp.run("alias", "add", address, "--mailbox")
        passwords[address] = sp.run("alias", "password", address).stdout.decode().strip()
    server = serve(sp, ["imap", "imaps"])
    return Env(sp, server, passwords)


class Raw:
    """A line-level client for transcripts (TLS)."""

    def __init__(self, port, tls=True):
        sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.sock = tls_context().wrap_socket(sock) if tls else sock
        self.buf = b""
        self.greeting = self.line()

    def send(self, data):
        self.sock.sendall(data)

    def line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError(self.buf)
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def until(self, tag):
        """Lines up to and including the tagged reply."""
        lines = []
        for _ in range(100000):
            line = self.line()
            lines.append(line)
            if line.startswith(tag + b" "):
                return lines
        raise AssertionError("no tagged reply")

    def close(self):
        self.sock.close()


def raw_login(env):
    raw = Raw(env.server.ports["imaps"])
    raw.send(b'L LOGIN "%s" "%s"\r\n' % (ADDRESS.encode(), env.passwords[ADDRESS].encode()))
    assert raw.until(b"L")[-1].startswith(b"L OK")
    return raw


# ---- connection, TLS, authentication ----

def test_greeting_and_capabilities_over_implicit_tls(env):
    m = env.connect()
    assert m.welcome.startswith(b"* OK [CAPABILITY IMAP4rev1")
    assert "AUTH=PLAIN" in m.capabilities
    assert "LOGINDISABLED" not in m.capabilities
    assert "STARTTLS" not in m.capabilities
    m.login(ADDRESS, env.passwords[ADDRESS])
    typ, data = m.capability()
    caps = data[0].decode().split()
    for cap in ("IDLE", "UIDPLUS", "MOVE", "NAMESPACE", "ID", "ENABLE", "LITERAL+",
                "SASL-IR", "SPECIAL-USE", "CHILDREN", "UNSELECT", "CONDSTORE",
                "ESEARCH", "QUOTA", "STATUS=SIZE"):
        assert cap in caps
    assert any(c.startswith("APPENDLIMIT=") for c in caps)
    assert m.logout()[0] == "BYE"


def test_plaintext_login_refused_then_starttls(env):
    m = imaplib.IMAP4("127.0.0.1", env.server.ports["imap"], timeout=30)
    assert "LOGINDISABLED" in m.capabilities
    assert "STARTTLS" in m.capabilities
    with pytest.raises(imaplib.IMAP4.error, match="PRIVACYREQUIRED"):
        m.login(ADDRESS, env.passwords[ADDRESS])
    typ, _ = m.starttls(ssl_context=tls_context())
    assert typ == "OK"
    assert "AUTH=PLAIN" in m.capabilities and "LOGINDISABLED" not in m.capabilities
    assert m.login(ADDRESS, env.passwords[ADDRESS])[0] == "OK"
    m.logout()


def test_starttls_discards_pipelined_plaintext(env):
    sock = socket.create_connection(("127.0.0.1", env.server.ports["imap"]), timeout=30)
    f = sock.makefile("rb")
    assert f.readline().startswith(b"* OK")
    # The injected NOOP must not be answered inside the TLS session.
    sock.sendall(b"a STARTTLS\r\nb NOOP\r\n")
    assert f.readline().startswith(b"a OK")
    tls = tls_context().wrap_socket(sock)
    tls.sendall(b"c NOOP\r\n")
    data = b""
    while b"c OK" not in data:
        chunk = tls.recv(4096)
        assert chunk, data
        data += chunk
    assert b"b OK" not in data and b"b BAD" not in data
    tls.close()


def test_plaintext_login_on_loopback_when_allowed(served_sp, serve):
    sp = served_sp
    sp.run("domain", "add", "example.test")
    sp.run("alias", "add", ADDRESS, "--mailbox")
    password = sp.run("alias", "password", ADDRESS).stdout.decode().strip()
    server = serve(sp, ["imap"], env={"SEALPOST_IMAP_ALLOW_PLAINTEXT_LOOPBACK": "true"})
    m = imaplib.IMAP4("127.0.0.1", server.ports["imap"], timeout=30)
    assert "LOGINDISABLED" not in m.capabilities
    assert m.login(ADDRESS, password)[0] == "OK"
    m.logout()


def test_wrong_password_and_unknown_user_get_the_same_answer(env):
    answers = []
    for address, password in ((ADDRESS, "wrong-password"), ("nobody@example.test", "x")):
        m = env.connect()
        with pytest.raises(imaplib.IMAP4.error) as exc:
            m.login(address, password)
        answers.append(str(exc.value))
        m.logout()
    assert answers[0] == answers[1]
    assert "AUTHENTICATIONFAILED" in answers[0]


def test_failed_login_limit_per_alias(served_sp, serve):
    sp = served_sp
    sp.run("domain", "add", "example.test")
    sp.run("alias", "add", ADDRESS, "--mailbox")
    password = sp.run("alias", "password", ADDRESS).stdout.decode().strip()
    server = serve(sp, ["imaps"], env={"SEALPOST_LOGIN_FAILURES_PER_ALIAS": "2"})
    env_ = Env(sp, server, {ADDRESS: password})
    for _ in range(2):
        m = env_.connect()
        with pytest.raises(imaplib.IMAP4.error):
            m.login(ADDRESS, "bad")
        m.logout()
    # Now even the right password is refused, with the same answer.
    m = env_.connect()
    with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
        m.login(ADDRESS, password)
    m.logout()


def test_authenticate_plain_with_and_without_initial_response(env):
    m = env.connect()
    creds = b"\0" + ADDRESS.encode() + b"\0" + env.passwords[ADDRESS].encode()
    typ, _ = m.authenticate("PLAIN", lambda _: creds)
    assert typ == "OK"
    m.logout()
    # SASL-IR: the response on the command line.
    import base64
    raw = Raw(env.server.ports["imaps"])
    raw.send(b"A AUTHENTICATE PLAIN " + base64.b64encode(creds) + b"\r\n")
    assert raw.until(b"A")[-1].startswith(b"A OK")
    raw.close()
    # Cancelled exchange.
    raw = Raw(env.server.ports["imaps"])
    raw.send(b"B AUTHENTICATE PLAIN\r\n")
    assert raw.line().startswith(b"+")
    raw.send(b"*\r\n")
    assert raw.until(b"B")[-1].startswith(b"B BAD")
    raw.close()


def test_logout_sends_bye_then_ok(env):
    raw = Raw(env.server.ports["imaps"])
    raw.send(b"z LOGOUT\r\n")
    lines = raw.until(b"z")
    assert lines[0].startswith(b"* BYE")
    assert lines[-1].startswith(b"z OK")
    raw.close()


# ---- mailboxes ----

def test_list_special_use_create_rename_delete_subscribe(env):
    m = env.login()
    typ, data = m.list()
    listing = b"\n".join(data)
    for name, use in ((b"Sent", b"\\Sent"), (b"Drafts", b"\\Drafts"), (b"Trash", b"\\Trash"),
                      (b"Junk", b"\\Junk"), (b"Archive", b"\\Archive")):
        assert re.search(rb"\(.*" + re.escape(use) + rb".*\) \"/\" \"" + name + rb"\"", listing)
    assert m.create("Projects/2026")[0] == "OK"
    typ, data = m.list('""', "Projects*")
    assert any(b"\\HasChildren" in d and b'"Projects"' in d for d in data)
    assert any(b"\\HasNoChildren" in d and b'"Projects/2026"' in d for d in data)
    typ, data = m.list('""', "%")
    assert not any(b"Projects/2026" in d for d in data)
    assert m.create("Projects")[0] == "NO"
    assert m.rename("Projects", "Work")[0] == "OK"
    typ, data = m.list('""', "Work/*")
    assert any(b'"Work/2026"' in d for d in data)
    assert m.subscribe("Work/2026")[0] == "OK"
    typ, data = m.lsub('""', "Work*")
    assert [d for d in data if d] and all(b"Work/2026" in d for d in data if d)
    assert m.unsubscribe("Work/2026")[0] == "OK"
    typ, data = m.lsub('""', "Work*")
    assert data == [None]
    typ, data = m.delete("Work")
    assert typ == "NO"  # has children
    assert m.delete("Work/2026")[0] == "OK"
    assert m.delete("Work")[0] == "OK"
    assert m.delete("INBOX")[0] == "NO"
    typ, data = m.list('""', '""')
    assert data[0] == b'(\\Noselect) "/" ""'
    typ, data = m.select("Nonexistent")
    assert typ == "NO"
    m.logout()


def test_modified_utf7_mailbox_names(env):
    """Names travel in modified UTF-7 (RFC 3501 5.1.3) and are stored in
    UTF-8: "&ZeVnLIqe-" is 日本語, "&-" is "&"."""
    m = env.login()
    assert m.create("&ZeVnLIqe-")[0] == "OK"
    assert m.create("&ZeVnLIqe-/&U,BTFw-")[0] == "OK"  # 日本語/台北
    assert m.create('"A&-B"')[0] == "OK"
    typ, data = m.list('""', "*")
    assert typ == "OK"
    assert all(max(d) < 0x80 for d in data), data  # no raw 8-bit name
    assert any(d.endswith(b'"/" "&ZeVnLIqe-"') and b"\\HasChildren" in d for d in data)
    assert any(d.endswith(b'"/" "&ZeVnLIqe-/&U,BTFw-"') for d in data)
    assert any(d.endswith(b'"/" "A&-B"') for d in data)
    # Patterns are modified UTF-7 too.
    typ, data = m.list('"&ZeVnLIqe-"', "%")
    assert data == [b'(\\HasNoChildren) "/" "&ZeVnLIqe-/&U,BTFw-"']
    assert m.append("&ZeVnLIqe-", None, None, MESSAGE)[0] == "OK"
    typ, data = m.status("&ZeVnLIqe-", "(MESSAGES)")
    assert data == [b'"&ZeVnLIqe-" (MESSAGES 1)']
    typ, data = m.getquotaroot("&ZeVnLIqe-")
    assert typ == "OK" and data[0] == [b'"&ZeVnLIqe-" ""']
    assert m.select("&ZeVnLIqe-")[0] == "OK"
    typ, data = m.copy("1", "&ZeVnLIqe-/&U,BTFw-")
    assert typ == "OK" and b"COPYUID" in data[0]
    typ, data = m.uid("MOVE", "1", '"A&-B"')
    assert typ == "OK"
    assert m.subscribe("&ZeVnLIqe-/&U,BTFw-")[0] == "OK"
    typ, data = m.lsub('""', "&ZeVnLIqe-*")
    assert data == [b'(\\HasNoChildren) "/" "&ZeVnLIqe-/&U,BTFw-"']
    assert m.unsubscribe("&ZeVnLIqe-/&U,BTFw-")[0] == "OK"
    # RENAME takes the children along; "Entw&APw-rfe" is Entwürfe.
    assert m.rename("&ZeVnLIqe-", "Entw&APw-rfe")[0] == "OK"
    typ, data = m.select("Entw&APw-rfe/&U,BTFw-", readonly=True)
    assert typ == "OK" and data == [b"1"]
    # Beyond the BMP: U+1F600 as the surrogate pair D83D DE00.
    assert m.create("&2D3eAA-")[0] == "OK"
    m.logout()

    # The store holds UTF-8 names.
    proc = env.sp.run("--json", "mailbox", "stats", ADDRESS,
                      env={"SEALPOST_PASSWORD": env.passwords[ADDRESS]})
    folders = {f["name"]: f["messages"] for f in json.loads(proc.stdout)["folders"]}
    assert folders["Entwürfe"] == 0
    assert folders["Entwürfe/台北"] == 1
    assert folders["A&B"] == 1
    assert "\U0001F600" in folders
    assert not any("&" in name and name != "A&B" for name in folders), folders

    # Malformed names get NO with the reason; the session goes on.
    raw = raw_login(env)
    cases = [
        b"b1 CREATE &ZeVnLIqe\r\n",              # no closing "-"
        b"b2 SELECT &AGE-\r\n",                  # "a" must not be encoded
        b"b3 CREATE &2D0-\r\n",                  # lone surrogate
        b"b4 CREATE {9+}\r\nEntw\xc3\xbcrfe\r\n",  # raw UTF-8
        b'b5 LIST "" "&Ze*"\r\n',
        b"b6 RENAME A&-B &ZeV=-\r\n",
        b"b7 STATUS &Ze/nLIqe- (MESSAGES)\r\n",
    ]
    for case in cases:
        raw.send(case)
        tag = case.split(b" ")[0]
        reply = raw.until(tag)[-1]
        assert reply.startswith(tag + b" NO Mailbox name is not valid modified UTF-7"), (case, reply)
    raw.send(b"ok LIST \"\" *\r\n")
    lines = raw.until(b"ok")
    assert lines[-1].startswith(b"ok OK")
    assert not any(b"Entw\xc3\xbcrfe" in line for line in lines)
    raw.close()


def test_status_namespace_id_enable_quota(env):
    m = env.login()
    m.append("INBOX", None, None, MESSAGE)
    typ, data = m.status("INBOX", "(MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN HIGHESTMODSEQ SIZE)")
    assert typ == "OK"
    text = data[0].decode()
    assert "MESSAGES 1" in text and "UIDNEXT 2" in text and "UNSEEN 1" in text
    assert f"SIZE {len(MESSAGE)}" in text
    assert re.search(r"HIGHESTMODSEQ [1-9]", text)
    typ, data = m.namespace()
    assert data[0] == b'(("" "/")) NIL NIL'
    typ, data = m.xatom("ID", '("name" "pytest")')
    assert typ == "OK"
    assert b"Sealpost" in m.untagged_responses.pop("ID")[0]
    typ, data = m.enable("CONDSTORE")
    assert typ == "OK"
    typ, data = m.getquotaroot("INBOX")
    assert typ == "OK"
    assert data[0][0] == b'"INBOX" ""'
    assert data[1][0].startswith(b'"" (')
    typ, data = m.setquota("", "(STORAGE 10)")
    assert typ == "NO"
    m.logout()


# ---- messages ----

def test_append_select_fetch_every_item(env):
    m = env.login()
    typ, data = m.append("INBOX", r"(\Flagged $Important)", '"02-Nov-2026 10:00:00 +0100"', MESSAGE)
    assert typ == "OK"
    match = re.match(rb"\[APPENDUID (\d+) 1\]", data[0])
    assert match
    uidvalidity = match.group(1)
    typ, _ = m.append("INBOX", None, None, MULTIPART)
    typ, data = m.select("INBOX")
    assert data == [b"2"]
    assert m.untagged_responses.get("UIDVALIDITY") == [uidvalidity] or True
    assert m.response("UIDNEXT")[1] == [b"3"]
    assert m.response("PERMANENTFLAGS")[1][0].startswith(b"(\\Answered")
    typ, data = m.fetch("1", "(FLAGS UID INTERNALDATE RFC822.SIZE ENVELOPE)")
    item = data[0]
    assert b"UID 1" in item and b"\\Flagged" in item and b"$Important" in item
    assert b'INTERNALDATE "02-Nov-2026 09:00:00 +0000"' in item
    assert b"RFC822.SIZE %d" % len(MESSAGE) in item
    assert b'"Quarterly report"' in item and b'"alice" "sender.test"' in item
    typ, data = m.fetch("2", "(BODYSTRUCTURE BODY)")
    assert b'BODYSTRUCTURE (("text" "plain"' in data[0]
    assert b'"mixed"' in data[0] and b"BODY (" in data[0]
    # Peeking leaves \Seen alone.
    typ, data = m.fetch("1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert data[0][1] == b"Subject: Quarterly report\r\n\r\n"
    typ, data = m.fetch("1", "(FLAGS)")
    assert b"\\Seen" not in data[0]
    typ, data = m.fetch("1", "(BODY.PEEK[TEXT]<4.7>)")
    assert data[0][0].endswith(b"BODY[TEXT]<4> {7}") and data[0][1] == b"numbers"
    typ, data = m.fetch("2", "(BODY.PEEK[1] BODY.PEEK[2.MIME])")
    assert data[0][1] == b"part one"
    assert b"application/octet-stream" in data[1][1]
    typ, data = m.fetch("1", "(RFC822.HEADER)")
    assert data[0][1].endswith(b"\r\n\r\n") and b"Subject:" in data[0][1]
    typ, data = m.fetch("1", "(BODY[])")
    assert data[0][1] == MESSAGE
    assert b"\\Seen" in data[0][0] or b"\\Seen" in b"".join(
        d if isinstance(d, bytes) else d[0] for d in data)
    typ, data = m.fetch("2", "RFC822")
    assert data[0][1] == MULTIPART
    typ, data = m.fetch("1:*", "FAST")
    assert len([d for d in data if isinstance(d, bytes) and b"RFC822.SIZE" in d]) == 2
    typ, data = m.uid("FETCH", "2:1", "(FLAGS)")
    assert b"UID 1" in b" ".join(data) and b"UID 2" in b" ".join(data)
    with pytest.raises(imaplib.IMAP4.error, match="BAD"):
        m.fetch("3", "FLAGS")
    with pytest.raises(imaplib.IMAP4.error, match="BAD"):
        m.fetch("1", "(NOSUCHITEM)")
    m.logout()


def test_append_errors(env):
    m = env.login()
    typ, data = m.append("Nowhere", None, None, MESSAGE)
    assert typ == "NO" and b"TRYCREATE" in data[0]
    with pytest.raises(imaplib.IMAP4.error, match="BAD"):
        m.append("INBOX", r"(\Bogus)", None, MESSAGE)
    m.logout()


def test_store_flags_keywords_and_condstore(env):
    m = env.login()
    m.append("INBOX", None, None, MESSAGE)
    m.append("INBOX", None, None, MESSAGE)
    m.select("INBOX")
    typ, data = m.store("1", "+FLAGS", r"(\Seen \Answered work)")
    assert typ == "OK"
    assert b"\\Seen" in data[0] and b"\\Answered" in data[0] and b"work" in data[0]
    typ, data = m.store("1", "-FLAGS", r"(\Answered)")
    assert b"\\Answered" not in data[0]
    typ, data = m.store("1:2", "FLAGS.SILENT", r"(\Draft)")
    assert typ == "OK" and data == [None]
    typ, data = m.fetch("1:2", "(FLAGS)")
    assert all(b"(\\Draft" in d and b"\\Seen" not in d for d in data)
    typ, data = m.uid("STORE", "2", "+FLAGS", r"(\Flagged)")
    assert b"UID 2" in data[0]
    # CONDSTORE: MODSEQ in FETCH, UNCHANGEDSINCE refusing a stale change.
    typ, data = m.fetch("1", "(MODSEQ)")
    modseq = int(re.search(rb"MODSEQ \((\d+)\)", data[0]).group(1))
    typ, data = m.store("1", "+FLAGS", r"(\Seen)")
    typ, data = m._simple_command("STORE", "1", "(UNCHANGEDSINCE %d)" % modseq, "+FLAGS", r"(\Flagged)")
    assert typ == "OK"
    assert b"[MODIFIED 1]" in m.untagged_responses.get("OK", [b""])[-1] or \
        b"MODIFIED" in data[0]
    typ, data = m.fetch("1:*", "(FLAGS)", )
    typ, data = m._simple_command("FETCH", "1:*", "(FLAGS)", "(CHANGEDSINCE %d)" % modseq)
    assert typ == "OK"
    fetched = m.untagged_responses.pop("FETCH", [])
    assert any(b"MODSEQ" in f for f in fetched)
    with pytest.raises(imaplib.IMAP4.error, match="BAD"):
        m.store("1", "+FLAGS", r"(\Nonsense)")
    m.logout()


def test_search_keys_and_esearch(env):
    m = env.login()
    m.append("INBOX", None, '"01-Oct-2026 12:00:00 +0000"', MESSAGE)
    m.append("INBOX", r"(\Seen)", '"15-Oct-2026 12:00:00 +0000"', MULTIPART)
    m.select("INBOX")
    def search(*keys):
        typ, data = m.search(None, *keys)
        assert typ == "OK", (keys, data)
        return data[0].split()
    assert search("ALL") == [b"1", b"2"]
    assert search("SUBJECT", '"quarterly"') == [b"1"]
    assert search("FROM", "bob") == [b"2"]
    assert search("TO", "user@example.test") == [b"1", b"2"]
    assert search("SEEN") == [b"2"] and search("UNSEEN") == [b"1"]
    assert search("BODY", "numbers") == [b"1"]
    assert search("TEXT", "Quarterly") == [b"1"]
    assert search("HEADER", "Message-ID", "q1@sender") == [b"1"]
    assert search("OR", "FROM", "bob", "SUBJECT", "Quarterly") == [b"1", b"2"]
    assert search("NOT", "FROM", "bob") == [b"1"]
    assert search("BEFORE", "10-Oct-2026") == [b"1"]
    assert search("SINCE", "10-Oct-2026") == [b"2"]
    assert search("ON", "15-Oct-2026") == [b"2"]
    assert search("SENTON", "02-Nov-2026") == [b"1"]
    assert search("LARGER", str(len(MESSAGE))) == [b"2"]
    assert search("SMALLER", str(len(MESSAGE) + 1)) == [b"1"]
    assert search("2:1", "(SEEN)") == [b"2"]
    assert search("UID", "1") == [b"1"]
    assert search("RECENT") == [b"1", b"2"]
    assert search("NEW") == [b"1"]
    assert search("KEYWORD", "nothing") == []
    assert search("X-REGEX", "subject", "^Quart.*t$") == [b"1"]
    typ, data = m.uid("SEARCH", "FROM", "bob")
    assert data == [b"2"]
    typ, data = m.search(None, "RETURN", "(MIN MAX COUNT ALL)", "ALL")
    assert typ == "OK"
    es = m.untagged_responses.pop("ESEARCH")[0]
    assert b"MIN 1" in es and b"MAX 2" in es and b"COUNT 2" in es and b"ALL 1:2" in es
    typ, data = m.search("KOI8-R", "ALL")
    assert typ == "NO"
    with pytest.raises(imaplib.IMAP4.error, match="BAD"):
        m.search(None, "NOSUCHKEY")
    typ, data = m.search(None, "MODSEQ", "1")
    assert typ == "OK" and b"MODSEQ" in data[0]
    m.logout()


def test_empty_mailbox_search_and_fetch_like_dovecot(env):
    raw = raw_login(env)
    raw.send(b"C CREATE Empty\r\nS SELECT Empty\r\n")
    assert raw.until(b"C")[-1].startswith(b"C OK")
    assert b"* 0 EXISTS" in raw.until(b"S")
    # SEARCH keys only select: an empty mailbox gives an empty result.
    for cmd in (b"A SEARCH 1:*", b"B UID SEARCH 1:*", b"D SEARCH 5",
                b"E SEARCH ALL"):
        tag = cmd.split()[0]
        raw.send(cmd + b"\r\n")
        lines = raw.until(tag)
        assert lines[0] == b"* SEARCH", (cmd, lines)
        assert lines[-1].startswith(tag + b" OK"), (cmd, lines)
    # FETCH by sequence number on an empty mailbox is an invalid
    # messageset (Dovecot: BAD); by UID it matches nothing.
    raw.send(b"F FETCH 1:* FLAGS\r\n")
    assert raw.until(b"F") == [b"F BAD Invalid messageset."]
    raw.send(b"G UID FETCH 1:* FLAGS\r\n")
    assert raw.until(b"G")[-1].startswith(b"G OK")
    raw.send(b"H FETCH * FLAGS\r\n")
    assert raw.until(b"H")[-1].startswith(b"H BAD")
    raw.close()


def test_copy_move_expunge_close_unselect_examine(env):
    m = env.login()
    for _ in range(4):
        m.append("INBOX", None, None, MESSAGE)
    m.create("Archive/2026")
    m.select("INBOX")
    typ, data = m.copy("1:2", "Archive/2026")
    assert typ == "OK" and re.search(rb"\[COPYUID \d+ 1:2 1:2\]", data[0])
    typ, data = m.copy("1", "Missing")
    assert typ == "NO" and b"TRYCREATE" in data[0]
    typ, data = m._simple_command("MOVE", "3", "Archive/2026")
    assert typ == "OK"
    assert m.untagged_responses.pop("EXPUNGE") == [b"3"]
    assert any(b"COPYUID" in r for r in m.untagged_responses.pop("OK", []))
    typ, data = m.uid("MOVE", "4", "Trash")
    assert typ == "OK"
    typ, data = m.select("INBOX")
    assert data == [b"2"]
    m.store("1", "+FLAGS", r"(\Deleted)")
    typ, data = m.expunge()
    assert data == [b"1"]
    m.append("INBOX", None, None, MESSAGE)
    m.noop()
    m.store("1:2", "+FLAGS", r"(\Deleted)")
    typ, data = m.uid("EXPUNGE", "2")
    assert typ == "OK"
    typ, data = m.search(None, "ALL")
    assert data == [b"1"]
    assert m.close()[0] == "OK"
    typ, data = m.status("INBOX", "(MESSAGES)")
    assert b"MESSAGES 0" in data[0]
    typ, data = m.select("Archive/2026", readonly=True)
    assert data == [b"3"]
    typ, data = m.store("1", "+FLAGS", r"(\Deleted)")
    assert typ == "NO"
    typ, data = m.fetch("1", "(BODY[])")
    typ, data = m.fetch("1", "(FLAGS)")
    assert b"\\Seen" not in data[0]  # EXAMINE does not set \Seen
    assert m.unselect()[0] == "OK"
    assert m.state == "AUTH"
    m.logout()


# ---- malformed input ----

def test_malformed_input_gets_bad_and_the_session_goes_on(env):
    raw = raw_login(env)
    cases = [
        b"a1 FETCH (1\r\n",
        b"a2 NOSUCHCOMMAND\r\n",
        b'a3 LOGIN "unterminated\r\n',
        b"a4 SELECT\r\n",
        b"a5 FETCH 1 (FLAGS))\r\n",
        b'a6 LIST "" "\\q"\r\n',
        b"a7 FETCH 0 FLAGS\r\n",
        b"a8 STORE 1 +FLAGS {2+}\r\nxx\r\n",
    ]
    for case in cases:
        raw.send(case)
        tag = case.split(b" ")[0]
        reply = raw.until(tag)[-1]
        assert reply.startswith(tag + b" BAD") or reply.startswith(tag + b" NO"), (case, reply)
    raw.send(b"\x01\x02 junk\r\n")
    assert b"BAD" in raw.until(b"*")[-1]
    raw.send(b"ok NOOP\r\n")
    assert raw.until(b"ok")[-1].startswith(b"ok OK")
    # A synchronizing literal beyond the limit is refused before any data.
    raw.send(b"big SELECT {2000000}\r\n")
    assert raw.until(b"big")[-1].startswith(b"big NO")
    raw.send(b"ok2 NOOP\r\n")
    assert raw.until(b"ok2")[-1].startswith(b"ok2 OK")
    # Literal with a continuation, and LITERAL+.
    raw.send(b"s1 SELECT {5}\r\n")
    assert raw.line().startswith(b"+")
    raw.send(b"INBOX\r\n")
    assert raw.until(b"s1")[-1].startswith(b"s1 OK")
    raw.send(b"s2 EXAMINE {5+}\r\nINBOX\r\n")
    assert raw.until(b"s2")[-1].startswith(b"s2 OK")
    raw.send(b'q1 LIST "" "IN\\"BOX"\r\n')
    assert raw.until(b"q1")[-1].startswith(b"q1 OK")
    # A line over 64 KiB ends the session.
    raw.send(b"long NOOP " + b"x" * 70000 + b"\r\n")
    assert raw.line().startswith(b"* BYE")
    raw.close()


def test_commands_in_the_wrong_state(env):
    raw = Raw(env.server.ports["imaps"])
    raw.send(b"a SELECT INBOX\r\n")
    assert raw.until(b"a")[-1].startswith(b"a BAD")
    raw.send(b"b NOOP\r\n")
    assert raw.until(b"b")[-1].startswith(b"b OK")
    raw.close()
    raw = raw_login(env)
    raw.send(b"c LOGIN x y\r\n")
    assert raw.until(b"c")[-1].startswith(b"c BAD")
    raw.send(b"d EXPUNGE\r\n")
    assert raw.until(b"d")[-1].startswith(b"d BAD")
    raw.send(b"e SELECT INBOX\r\n")
    assert raw.until(b"e")[-1].startswith(b"e OK [READ-WRITE]")
    raw.send(b"f UNSELECT\r\n")
    assert raw.until(b"f")[-1].startswith(b"f OK")
    raw.send(b"g FETCH 1 FLAGS\r\n")
    assert raw.until(b"g")[-1].startswith(b"g BAD")
    raw.close()


# ---- concurrency and push ----

def test_two_sessions_see_each_others_changes(env):
    a = env.login()
    b = env.login()
    a.append("INBOX", None, None, MESSAGE)
    a.append("INBOX", None, None, MESSAGE)
    a.select("INBOX")
    b.select("INBOX")
    a.store("1", "+FLAGS", r"(\Flagged)")
    typ, _ = b.noop()
    fetches = b.untagged_responses.pop("FETCH", [])
    assert any(b"\\Flagged" in f for f in fetches), fetches
    b.untagged_responses.pop("EXISTS", None)
    a.append("INBOX", None, None, MESSAGE)
    b.noop()
    assert b.untagged_responses.pop("EXISTS") == [b"3"]
    a.store("2", "+FLAGS", r"(\Deleted)")
    a.expunge()
    b.noop()
    assert b.untagged_responses.pop("EXPUNGE") == [b"2"]
    typ, data = b.search(None, "ALL")
    assert data == [b"1 2"]
    # The other alias sees none of it.
    c = env.login(OTHER)
    typ, data = c.select("INBOX")
    assert data == [b"0"]
    for m in (a, b, c):
        m.logout()


def test_idle_sees_delivered_message(env):
    m = env.login()
    m.select("INBOX")
    tag = m._new_tag()
    m.send(tag + b" IDLE\r\n")
    assert m.readline().startswith(b"+")
    env.deliver(b"From: x@sender.test\r\nSubject: pushed\r\n\r\nhello\r\n")
    m.sock.settimeout(10)
    line = m.readline()
    assert line == b"* 1 EXISTS\r\n"
    m.send(b"DONE\r\n")
    lines = [m.readline() for _ in range(2)]
    assert lines[-1].startswith(tag + b" OK")
    m.sock.settimeout(30)
    typ, data = m.fetch("1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert b"pushed" in data[0][1]
    m.logout()


def test_idle_sees_other_sessions_flag_change(env):
    a = env.login()
    a.append("INBOX", None, None, MESSAGE)
    a.select("INBOX")
    b = env.login()
    b.select("INBOX")
    tag = b._new_tag()
    b.send(tag + b" IDLE\r\n")
    assert b.readline().startswith(b"+")
    a.store("1", "+FLAGS", r"(\Answered)")
    b.sock.settimeout(10)
    line = b.readline()
    assert line.startswith(b"* 1 FETCH") and b"\\Answered" in line
    b.send(b"DONE\r\n")
    assert b.readline().startswith(tag + b" OK")
    a.logout()
    b.logout()


def test_spool_drained_at_login(env):
    env.deliver(MESSAGE)
    env.deliver(MULTIPART)
    m = env.login()
    typ, data = m.select("INBOX")
    assert data == [b"2"]
    typ, data = m.fetch("1:2", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    subjects = b"".join(d[1] for d in data if isinstance(d, tuple))
    assert b"Quarterly" in subjects and b"With attachment" in subjects
    m.logout()


def test_connection_limits_per_ip_and_per_alias(served_sp, serve):
    sp = served_sp
    sp.run("domain", "add", "example.test")
    sp.run("alias", "add", ADDRESS, "--mailbox")
    password = sp.run("alias", "password", ADDRESS).stdout.decode().strip()
    server = serve(sp, ["imap", "imaps"], env={
        "SEALPOST_IMAP_MAX_CONNECTIONS_PER_IP": "3",
        "SEALPOST_IMAP_MAX_CONNECTIONS_PER_ALIAS": "2",
    })
    env_ = Env(sp, server, {ADDRESS: password})
    a = env_.login()
    b = env_.login()
    # A third session of the alias is refused after authentication.
    c = env_.connect()
    with pytest.raises(imaplib.IMAP4.error, match="LIMIT"):
        c.login(ADDRESS, password)
    # The fourth connection from this IP is refused at once.
    sock = socket.create_connection(("127.0.0.1", server.ports["imap"]), timeout=30)
    assert sock.makefile("rb").readline().startswith(b"* BYE")
    sock.close()
    c.logout()
    b.logout()
    # Once a session has ended, the alias may log in again.
    for _ in range(100):
        try:
            d = env_.login()
            break
        except imaplib.IMAP4.error:
            time.sleep(0.1)
    else:
        raise AssertionError("login never allowed again")
    d.logout()
    a.logout()


def test_shutdown_with_sessions_open(served_sp, serve):
    sp = served_sp
    sp.run("domain", "add", "example.test")
    sp.run("alias", "add", ADDRESS, "--mailbox")
    password = sp.run("alias", "password", ADDRESS).stdout.decode().strip()
    server = serve(sp, ["imaps"])
    env_ = Env(sp, server, {ADDRESS: password})
    m = env_.login()
    m.select("INBOX")
    m.send(m._new_tag() + b" IDLE\r\n")
    assert m.readline().startswith(b"+")
    server.proc.terminate()
    assert server.proc.wait(timeout=30) == 0
