"""The encrypted mailbox store through the CLI: alias password, mailbox
import/export/stats/delete, deliver -- and what the foundation issue's
"Must show" asks of it: no plaintext on disk, wrong passwords change
nothing, a killed re-key loses nothing, MBOX round-trips byte for byte."""
import hashlib
import imaplib
import json
import os
import re
import signal
import subprocess
import time

import pytest

from conftest import SEALPOST

CANARY = b"canary-7d41e0b9-store"
PASSWORD_RE = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)+$")


def setup_alias(sp, address="owner@example.org", mailbox=True):
    domain = address.split("@", 1)[1]
    if sp.run("domain", "show", domain, check=False).returncode != 0:
        sp.run("domain", "add", domain)
    args = ["alias", "add", address]
    args += ["--mailbox"] if mailbox else ["--forward", "x@example.net"]
    sp.run(*args)
    if not mailbox:
        return None
    proc = sp.run("alias", "password", address)
    lines = proc.stdout.decode().splitlines()
    assert len(lines) == 1, proc.stdout
    assert PASSWORD_RE.match(lines[0]), lines[0]
    return lines[0]


def message(i, extra=b"", crlf=False):
    nl = b"\r\n" if crlf else b"\n"
    body = nl.join([
        b"From: Sender <sender%d@example.net>" % i,
        b"To: owner@example.org",
        b"Subject: message %d" % i,
        b"Date: Mon, 23 Nov 2026 10:%02d:00 +0000" % (i % 60),
        b"",
        b"Hello %d, this carries %s." % (i, CANARY),
        b"From the start of a line",
        b">From an already quoted line",
        extra,
    ])
    return body + nl


def mboxrd(messages):
    """mboxrd: '>' added to lines matching ^>*From , blank line after."""
    out = []
    for m in messages:
        out.append(b"From MAILER-DAEMON Mon Nov 23 10:00:00 2026\n")
        for line in m.splitlines(keepends=True):
            if re.match(rb"^>*From ", line):
                line = b">" + line
            out.append(line)
        out.append(b"\n")
    return b"".join(out)


def stats(sp, address, password, check=True):
    proc = sp.run("--json", "mailbox", "stats", address,
                  env={"SEALPOST_PASSWORD": password}, check=check)
    if proc.returncode != 0:
        return None
    return json.loads(proc.stdout)


def inbox_count(st):
    return next(f["messages"] for f in st["folders"] if f["name"] == "INBOX")


def data_files(sp):
    for root, _, files in os.walk(sp.data_dir):
        for name in files:
            yield os.path.join(root, name)


def mailbox_file(sp):
    files = [f for f in data_files(sp) if f.endswith(".sqlite")
             and "/mailboxes/" in f]
    assert len(files) == 1, files
    return files[0]


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def test_import_leaves_no_plaintext(sp, tmp_path):
    password = setup_alias(sp)
    attachment = b"Content-Transfer-Encoding: 8bit\n\n" + CANARY * 40
    msgs = [message(i) for i in range(20)]
    msgs.append(b"Subject: with attachment\nMIME-Version: 1.0\n"
                b"Content-Type: multipart/mixed; boundary=zz\n\n--zz\n"
                b"Content-Type: text/plain\n\n" + CANARY + b"\n--zz\n"
                b"Content-Type: application/octet-stream\n" + attachment +
                b"\n--zz--\n")
    src = tmp_path / "in.mbox"
    src.write_bytes(mboxrd(msgs))
    sp.run("mailbox", "import", "owner@example.org", str(src),
           env={"SEALPOST_PASSWORD": password})
    st = stats(sp, "owner@example.org", password)
    assert inbox_count(st) == 21

    grep = subprocess.run(["grep", "-a", "-r", "-l", CANARY.decode(),
                           sp.data_dir], capture_output=True)
    assert grep.returncode == 1, grep.stdout  # 1: no line matched
    for path in data_files(sp):
        with open(path, "rb") as f:
            data = f.read()
        assert CANARY not in data, path
        assert not data.startswith(b"SQLite format 3"), path

    for path in data_files(sp):
        if "/mailboxes/" in path or "/spool/" in path:
            assert os.stat(path).st_mode & 0o077 == 0, path

    shell = subprocess.run(["sqlite3", mailbox_file(sp),
                            "SELECT count(*) FROM sqlite_master;"],
                           capture_output=True, timeout=30)
    assert shell.returncode != 0
    assert b"not a database" in shell.stderr or b"encrypted" in shell.stderr


def test_wrong_password_changes_nothing(sp):
    password = setup_alias(sp)
    path = mailbox_file(sp)
    before = sha256(path)
    for bad in ("wrong", password[:-1] + ("x" if password[-1] != "x" else "y")):
        proc = sp.run("mailbox", "stats", "owner@example.org",
                      env={"SEALPOST_PASSWORD": bad}, check=False)
        assert proc.returncode == 2
        msg = proc.stderr.decode().strip()
        assert msg == "sealpost: wrong password for owner@example.org", msg
        assert sha256(path) == before
    proc = sp.run("alias", "password", "owner@example.org",
                  env={"SEALPOST_OLD_PASSWORD": "wrong"}, check=False)
    assert proc.returncode == 2
    assert proc.stdout == b""
    assert b"wrong password" in proc.stderr
    assert sha256(path) == before
    assert stats(sp, "owner@example.org", password) is not None


def test_password_change_rekeys(sp, tmp_path):
    password = setup_alias(sp)
    src = tmp_path / "in.mbox"
    src.write_bytes(mboxrd([message(i) for i in range(5)]))
    sp.run("mailbox", "import", "owner@example.org", str(src),
           env={"SEALPOST_PASSWORD": password})
    proc = sp.run("alias", "password", "owner@example.org",
                  env={"SEALPOST_OLD_PASSWORD": password})
    new = proc.stdout.decode().strip()
    assert PASSWORD_RE.match(new) and new != password
    assert stats(sp, "owner@example.org", password, check=False) is None
    assert inbox_count(stats(sp, "owner@example.org", new)) == 5
    assert os.stat(mailbox_file(sp)).st_mode & 0o077 == 0


def test_mbox_export_import_roundtrip(sp, tmp_path):
    password = setup_alias(sp)
    other = setup_alias(sp, "copy@example.org")
    msgs = [message(i) for i in range(3)]
    msgs.append(message(3, extra=b">>From deep quoting", crlf=True))
    msgs.append(b"Subject: no final newline\n\nlast line without one")
    src = tmp_path / "in.mbox"
    src.write_bytes(mboxrd(msgs))
    env = {"SEALPOST_PASSWORD": password}
    sp.run("mailbox", "import", "owner@example.org", str(src), env=env)
    out = tmp_path / "out.mbox"
    sp.run("mailbox", "export", "owner@example.org", "-o", str(out), "--folder",
           "INBOX", env=env)
    data = out.read_bytes()
    # Every message except the last one ends with a newline, so the files
    # are identical; the last one gains the newline mbox cannot leave out.
    assert data == mboxrd(msgs[:-1] + [msgs[-1] + b"\n"])

    sp.run("mailbox", "import", "copy@example.org", str(out),
           env={"SEALPOST_PASSWORD": other})
    again = tmp_path / "again.mbox"
    sp.run("mailbox", "export", "copy@example.org", "-o", str(again),
           env={"SEALPOST_PASSWORD": other})
    assert again.read_bytes() == data

    eml = tmp_path / "eml"
    sp.run("mailbox", "export", "owner@example.org", "--format", "eml", "-o",
           str(eml), env=env)
    files = sorted(os.listdir(eml / "INBOX"), key=lambda n: int(n.split(".")[0]))
    assert len(files) == 5
    assert (eml / "INBOX" / files[3]).read_bytes() == msgs[3]


def tree(path):
    """{relative path: bytes} of every file below path."""
    files = {}
    for root, _, names in os.walk(path):
        for name in names:
            full = os.path.join(root, name)
            with open(full, "rb") as f:
                files[os.path.relpath(full, path)] = f.read()
    return files


def undate(mbox):
    return re.sub(rb"(?m)^From MAILER-DAEMON .*$", b"From -", mbox)


def folder_counts(st):
    return {f["name"]: f["messages"] for f in st["folders"]}


def test_whole_mailbox_export_keeps_folders(sp, tmp_path):
    password = setup_alias(sp)
    other = setup_alias(sp, "copy@example.org")
    env = {"SEALPOST_PASSWORD": password}
    # A message that starts with the folder line itself must survive too.
    tricky = b"X-Sealpost-Folder: Fake\nSubject: tricky\n\nbody\n"
    placed = {"INBOX": [message(i) for i in range(3)] + [tricky],
              "Sent": [message(30)],
              "Work": [message(10), message(11, crlf=True)],
              "Work/2026 \u00e9t\u00e9": [message(20, extra=b">>From deep"),
                                   tricky]}
    for folder, msgs in placed.items():
        for m in msgs:  # one .eml each: taken as it is
            src = tmp_path / "in.eml"
            src.write_bytes(m)
            sp.run("mailbox", "import", "owner@example.org", str(src),
                   "--folder", folder, env=env)
    before = folder_counts(stats(sp, "owner@example.org", password))
    assert before["Work/2026 \u00e9t\u00e9"] == 2

    out = tmp_path / "all.mbox"
    sp.run("mailbox", "export", "owner@example.org", "-o", str(out), env=env)
    data = out.read_bytes()

    def line(folder, crlf=False):
        return (b"X-Sealpost-Folder: " + folder.encode()
                + (b"\r\n" if crlf else b"\n"))
    expected = []
    for folder, msgs in placed.items():  # the export's folder order
        for m in msgs:
            if folder != "INBOX":
                m = line(folder, m.endswith(b"\r\n")) + m
            elif m.startswith(b"X-Sealpost-Folder:"):
                m = line("INBOX") + m
            expected.append(m)
    # .eml imports take the import time as internal date: compare all but
    # the "From " lines' dates.
    assert undate(data) == undate(mboxrd(expected))

    # Import puts every message back in its folder (creating the missing
    # ones), and export -> import -> export is byte for byte.
    sp.run("mailbox", "import", "copy@example.org", str(out),
           env={"SEALPOST_PASSWORD": other})
    assert folder_counts(stats(sp, "copy@example.org", other)) == before
    again = tmp_path / "again.mbox"
    sp.run("mailbox", "export", "copy@example.org", "-o", str(again),
           env={"SEALPOST_PASSWORD": other})
    assert again.read_bytes() == data
    # Each folder holds the original bytes.
    for folder, msgs in placed.items():
        single = tmp_path / "single.mbox"
        sp.run("mailbox", "export", "copy@example.org", "-o", str(single),
               "--folder", folder, env={"SEALPOST_PASSWORD": other})
        want = [line(folder) + m if m.startswith(b"X-Sealpost-Folder:")
                else m for m in msgs]
        assert undate(single.read_bytes()) == undate(mboxrd(want)), folder

    # The EML layout imports back into the same folders.
    third = setup_alias(sp, "third@example.org")
    eml = tmp_path / "eml"
    sp.run("mailbox", "export", "owner@example.org", "--format", "eml", "-o",
           str(eml), env=env)
    sp.run("mailbox", "import", "third@example.org", str(eml),
           env={"SEALPOST_PASSWORD": third})
    assert folder_counts(stats(sp, "third@example.org", third)) == before


def test_deliver_seals_then_drains(sp, tmp_path):
    password = setup_alias(sp)
    raw = message(1)
    proc = sp.run("deliver", "owner+news@example.org", input=raw)
    assert proc.stdout == b""
    spool = [f for f in data_files(sp) if "/spool/" in f]
    assert len(spool) == 1
    with open(spool[0], "rb") as f:
        sealed = f.read()
    assert CANARY not in sealed and b"message 1" not in sealed
    assert oct(os.stat(spool[0]).st_mode & 0o777) == "0o600"

    st = stats(sp, "owner@example.org", password)  # drains on open
    assert inbox_count(st) == 1
    assert not [f for f in data_files(sp) if "/spool/" in f]
    out = tmp_path / "inbox.mbox"
    sp.run("mailbox", "export", "owner@example.org", "-o", str(out),
           env={"SEALPOST_PASSWORD": password})
    exported = out.read_bytes()
    # The "From " line carries the delivery time as internal date.
    assert exported.split(b"\n", 1)[1] == mboxrd([raw]).split(b"\n", 1)[1]


def test_deliver_errors(sp):
    setup_alias(sp)
    setup_alias(sp, "fwd@example.org", mailbox=False)
    sp.run("alias", "add", "nopw@example.org", "--mailbox")
    sp.run("alias", "add", "off@example.org", "--mailbox", "--disabled")
    cases = {
        "nobody@nowhere.example": "no such alias",
        "fwd@example.org": "no mailbox",
        "nopw@example.org": "no password",
        "off@example.org": "disabled",
        "not-an-address": "not a valid address",
    }
    for address, text in cases.items():
        proc = sp.run("deliver", address, input=b"Subject: x\n\nx\n",
                      check=False)
        assert proc.returncode == 2, address
        line = proc.stderr.decode().strip()
        assert "\n" not in line and text in line, (address, line)
    assert not [f for f in data_files(sp) if "/spool/" in f]


def test_mailbox_delete_is_gone(sp):
    password = setup_alias(sp)
    sp.run("deliver", "owner@example.org", input=message(1))
    path = mailbox_file(sp)
    sp.run("mailbox", "delete", "owner@example.org")
    assert not os.path.exists(path)
    assert not [f for f in data_files(sp)
                if "/mailboxes/" in f or "/spool/" in f]
    # The alias keeps its password; the next login starts an empty box.
    assert inbox_count(stats(sp, "owner@example.org", password)) == 0


def test_kill_during_rekey_loses_nothing(sp, tmp_path):
    password = setup_alias(sp)
    src = tmp_path / "in.mbox"
    src.write_bytes(mboxrd([message(i) for i in range(1000)]))
    sp.run("mailbox", "import", "owner@example.org", str(src),
           env={"SEALPOST_PASSWORD": password})
    current = password
    # Kills before the new password is shown (Argon2id, login), then at
    # growing delays after it is shown, i.e. inside the re-key itself
    # (copy, re-key, verify, rename, control plane).
    plans = [("before", 0.05), ("before", 0.3)] + [
        ("after", d) for d in (0.0, 0.01, 0.03, 0.06, 0.1, 0.15, 0.25, 0.4,
                               0.6, 1.0)]
    outcomes = set()
    for when, delay in plans:
        env = dict(sp.env)
        env["SEALPOST_OLD_PASSWORD"] = current
        proc = subprocess.Popen([SEALPOST, "--data", sp.data_dir, "alias",
                                 "password", "owner@example.org"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env=env)
        new = ""
        if when == "after":
            new = proc.stdout.readline().decode().strip()
        time.sleep(delay)
        killed = proc.poll() is None
        if killed:
            os.kill(proc.pid, signal.SIGKILL)
        stdout, _ = proc.communicate(timeout=60)
        new = new or stdout.decode().strip()
        opened = []
        for candidate in [current, new] if new else [current]:
            st = stats(sp, "owner@example.org", candidate, check=False)
            if st is not None:
                assert inbox_count(st) == 1000, (delay, candidate)
                opened.append(candidate)
        assert len(opened) == 1, (when, delay, killed, new)
        outcomes.add((killed, opened[0] == current))
        current = opened[0]
        for path in data_files(sp):
            with open(path, "rb") as f:
                assert not f.read(16).startswith(b"SQLite format 3"), path
    # Some kills happened inside the re-key; where exactly each one landed
    # depends on the machine, the assertions above hold for all.
    assert (True, True) in outcomes, outcomes


def test_crash_between_file_and_control_plane_recovers(sp, tmp_path):
    """The one window timing cannot aim at: the file is re-keyed, the
    control plane still has the old verifier. The new password must open
    the mailbox (and finish the change); the old one must not."""
    password = setup_alias(sp)
    src = tmp_path / "in.mbox"
    src.write_bytes(mboxrd([message(i) for i in range(10)]))
    sp.run("mailbox", "import", "owner@example.org", str(src),
           env={"SEALPOST_PASSWORD": password})
    proc = sp.run("alias", "password", "owner@example.org", check=False,
                  env={"SEALPOST_OLD_PASSWORD": password,
                       "SEALPOST_TEST_CRASH_AFTER_REKEY": "1"})
    assert proc.returncode == 2
    new = proc.stdout.decode().strip()
    assert PASSWORD_RE.match(new)
    pending = [f for f in data_files(sp) if f.endswith(".pending")]
    assert len(pending) == 1
    assert stats(sp, "owner@example.org", password, check=False) is None
    assert inbox_count(stats(sp, "owner@example.org", new)) == 10
    assert not [f for f in data_files(sp) if f.endswith(".pending")]
    assert stats(sp, "owner@example.org", password, check=False) is None
    # The re-key completed: a further change starts from the new password.
    proc = sp.run("alias", "password", "owner@example.org",
                  env={"SEALPOST_OLD_PASSWORD": new})
    newer = proc.stdout.decode().strip()
    assert inbox_count(stats(sp, "owner@example.org", newer)) == 10


def imap_login(server, address, password):
    """An IMAP session logged in, or None when the login is refused."""
    import imaplib
    import ssl
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    m = imaplib.IMAP4_SSL("127.0.0.1", server.ports["imaps"],
                          ssl_context=ctx, timeout=60)
    try:
        m.login(address, password)
    except imaplib.IMAP4.error as e:
        assert "AUTHENTICATIONFAILED" in str(e), e
        m.logout()
        return None
    return m


def imap_inbox_count(m):
    typ, data = m.select("INBOX", readonly=True)
    assert typ == "OK", data
    count = int(data[0])
    typ, data = m.uid("SEARCH", "ALL")
    assert typ == "OK" and len(data[0].split()) == count
    return count


def test_kill_during_rekey_then_imap_login_finds_everything(served_sp,
                                                           serve, tmp_path):
    """The server runs while `alias password` is killed at several points;
    the next IMAP login (not the CLI) settles the change: exactly one of
    the two passwords logs in and sees every message, and no re-key
    leftover or pending change stays behind."""
    sp = served_sp
    address = "owner@example.org"
    password = setup_alias(sp, address)
    src = tmp_path / "in.mbox"
    src.write_bytes(mboxrd([message(i) for i in range(1000)]))
    sp.run("mailbox", "import", address, str(src),
           env={"SEALPOST_PASSWORD": password})
    server = serve(sp, ["imaps"],
                   env={"SEALPOST_LOGIN_FAILURES_PER_ALIAS": "0",
                        "SEALPOST_LOGIN_FAILURES_PER_IP": "0"})
    current = password
    outcomes = set()
    plans = [("after", d) for d in (0.0, 0.02, 0.05, 0.1, 0.2, 0.4, 0.8)]
    plans.append(("crash-after-rekey", 0))
    for when, delay in plans:
        env = dict(sp.env)
        env["SEALPOST_OLD_PASSWORD"] = current
        if when == "crash-after-rekey":
            env["SEALPOST_TEST_CRASH_AFTER_REKEY"] = "1"
        proc = subprocess.Popen([SEALPOST, "--data", sp.data_dir, "alias",
                                 "password", address],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env=env)
        new = proc.stdout.readline().decode().strip()
        assert PASSWORD_RE.match(new), new
        time.sleep(delay)
        killed = when == "after" and proc.poll() is None
        if killed:
            os.kill(proc.pid, signal.SIGKILL)
        _, stderr = proc.communicate(timeout=60)
        assert killed or proc.returncode == (0 if when == "after" else 2), \
            stderr
        opened = []
        # The old password first: a login with it must not undo a change
        # that reached the file.
        for candidate in (current, new):
            m = imap_login(server, address, candidate)
            if m is not None:
                assert imap_inbox_count(m) == 1000, (when, delay, candidate)
                m.logout()
                opened.append(candidate)
        assert len(opened) == 1, (when, delay, killed, stderr)
        assert when == "after" or opened[0] == new, stderr
        outcomes.add((killed, opened[0] == new))
        other = new if opened[0] == current else current
        current = opened[0]
        # Settled: the same password again, and the other still refused.
        m = imap_login(server, address, current)
        assert m is not None and imap_inbox_count(m) == 1000
        m.logout()
        assert imap_login(server, address, other) is None
        leftovers = [f for f in data_files(sp)
                     if f.endswith((".pending", ".rekey", ".rekey-journal"))]
        assert not leftovers, (when, delay, leftovers)
    # Some kills landed inside the change (where exactly depends on the
    # machine); the assertions above hold for all.
    assert (True, False) in outcomes or (True, True) in outcomes, outcomes
    print(outcomes)
    # The CLI agrees with what IMAP settled.
    assert inbox_count(stats(sp, address, current)) == 1000


def test_password_change_logs_out_open_sessions(served_sp, serve, tmp_path):
    """A change while an IMAP session is open asks the server to close it
    (`* BYE`) instead of copying a file the session still writes to: what
    the session appended is in the re-keyed mailbox, and only the new
    password logs in."""
    sp = served_sp
    address = "owner@example.org"
    password = setup_alias(sp, address)
    server = serve(sp, ["imaps"])
    m = imap_login(server, address, password)
    assert m is not None
    assert m.append("INBOX", None, None, message(1))[0] == "OK"
    assert m.select("INBOX")[0] == "OK"
    proc = sp.run("alias", "password", address,
                  env={"SEALPOST_OLD_PASSWORD": password})
    new = proc.stdout.decode().strip()
    # The session was closed by the server.
    with pytest.raises((imaplib.IMAP4.abort, OSError)):
        for _ in range(3):
            m.noop()
    m = imap_login(server, address, new)
    assert m is not None and imap_inbox_count(m) == 1
    m.logout()
    assert imap_login(server, address, password) is None
