"""mbsync (isync, from Debian) syncing a mailbox both ways against
`sealpost serve` over implicit TLS: messages, flags, new folders and
deletions."""
import imaplib
import os
import shutil
import ssl
import subprocess

import pytest

ADDRESS = "sync@example.test"

pytestmark = pytest.mark.skipif(shutil.which("mbsync") is None,
                                reason="isync is not installed")


def message(subject):
    return (f"From: a@sender.test\r\nTo: {ADDRESS}\r\nSubject: {subject}\r\n"
            f"Message-ID: <{subject.replace(' ', '.')}@sender.test>\r\n\r\n"
            f"body of {subject}\r\n").encode()


def maildir_files(path):
    out = []
    for sub in ("cur", "new"):
        d = os.path.join(path, sub)
        if os.path.isdir(d):
            out += [os.path.join(d, f) for f in os.listdir(d)]
    return sorted(out)


def test_mbsync_both_ways(served_sp, serve, tmp_path):
    sp = served_sp
    sp.run("domain", "add", "example.test")
    sp.run("alias", "add", ADDRESS, "--mailbox")
    password = sp.run("alias", "password", ADDRESS).stdout.decode().strip()
    server = serve(sp, ["imaps"])
    port = server.ports["imaps"]
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    m = imaplib.IMAP4_SSL("127.0.0.1", port, ssl_context=ctx, timeout=30)
    m.login(ADDRESS, password)
    m.append("INBOX", None, None, message("first"))
    m.append("INBOX", r"(\Seen)", None, message("second"))

    local = tmp_path / "mail"
    local.mkdir()
    config = tmp_path / "mbsyncrc"
    config.write_text(f"""IMAPAccount sp
Host 127.0.0.1
Port {port}
User {ADDRESS}
Pass {password}
SSLType IMAPS
CertificateFile {os.path.join(sp.data_dir, 'tls', 'cert.pem')}

IMAPStore remote
Account sp

MaildirStore local
Path {local}/
Inbox {local}/INBOX
SubFolders Verbatim

Channel sync
Far :remote:
Near :local:
Patterns *
Create Both
Remove None
Expunge Both
SyncState *
""")

    def mbsync():
        proc = subprocess.run(["mbsync", "-c", str(config), "sync"],
                              capture_output=True, timeout=120)
        assert proc.returncode == 0, proc.stderr.decode(errors="replace")

    # Server -> local: both messages, the \Seen flag as maildir "S".
    mbsync()
    files = maildir_files(local / "INBOX")
    assert len(files) == 2
    bodies = {open(f, "rb").read().split(b"Subject: ")[1].split(b"\n")[0].strip(): f for f in files}
    assert set(bodies) == {b"first", b"second"}
    assert bodies[b"second"].endswith("S")
    assert not bodies[b"first"].split(":2,")[-1].count("S")
    # Special-use folders came down too.
    assert (local / "Sent").is_dir() and (local / "Trash").is_dir()

    # Local -> server: a flag, a new folder with a message, a deletion.
    first = bodies[b"first"]
    flagged = first.split(":2,")[0] + ":2,F"
    os.rename(first, flagged)
    newbox = local / "Projects"
    for sub in ("cur", "new", "tmp"):
        (newbox / sub).mkdir(parents=True)
    (newbox / "new" / "1.local.host").write_bytes(message("from local"))
    os.unlink(bodies[b"second"])
    mbsync()

    m.select("INBOX")
    typ, data = m.search(None, "ALL")
    assert len(data[0].split()) == 1
    typ, data = m.fetch("1", "(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert b"\\Flagged" in data[0][0] and b"first" in data[0][1]
    typ, data = m.select("Projects")
    assert typ == "OK" and data == [b"1"]

    # Server -> local: a deletion and a flag made on the server.
    m.select("INBOX")
    m.store("1", "+FLAGS", r"(\Answered)")
    m.append("INBOX", None, None, message("third"))
    mbsync()
    files = maildir_files(local / "INBOX")
    assert len(files) == 2
    answered = [f for f in files if "first" in open(f, "rb").read().decode()]
    assert answered and "R" in answered[0].split(":2,")[-1]
    m.store("1", "+FLAGS", r"(\Deleted)")
    m.expunge()
    mbsync()
    files = maildir_files(local / "INBOX")
    assert len(files) == 1 and b"third" in open(files[0], "rb").read()
    m.logout()
