"""Encrypted mailbox backups (issue 4) against a real S3-compatible server,
s3rver from the npm registry (installed into tests/s3rver by
scripts/deps.sh), run on 127.0.0.1 for each test."""
import fcntl
import hashlib
import imaplib
import json
import os
import poplib
import shutil
import socket
import ssl
import subprocess
import tempfile
import time

import pytest

from conftest import free_port

S3RVER = os.path.join(os.path.dirname(__file__), "..", "s3rver", "node_modules", ".bin", "s3rver")
BUCKET = "sealpost-backups"
OTHER_BUCKET = "other-domain-backups"
ADDRESS = "owner@example.test"
CANARY = b"CANARY-7f3a9c-backup-must-never-show-this"


def message(n, extra=b""):
    return (b"From: Sender <sender@remote.test>\r\n"
            b"To: owner@example.test\r\n"
            b"Subject: note " + str(n).encode() + b"\r\n"
            b"Message-ID: <n" + str(n).encode() + b"@remote.test>\r\n"
            b"\r\n"
            b"Body " + str(n).encode() + b" " + CANARY + b"\r\n" + extra)


class S3:
    """s3rver on a free 127.0.0.1 port with two buckets (BUCKET, the
    s3_bucket setting, and OTHER_BUCKET for a domain of its own), in a temp
    dir."""

    def __init__(self):
        if not os.path.exists(S3RVER):
            pytest.fail("s3rver is not installed: run scripts/deps.sh")
        self.dir = tempfile.mkdtemp(prefix="sealpost-s3-")
        self.port = free_port()
        self.log = open(os.path.join(self.dir, "s3rver.log"), "wb")
        self.proc = subprocess.Popen(
            [S3RVER, "-d", os.path.join(self.dir, "data"), "-a", "127.0.0.1",
             "-p", str(self.port), "--silent", "--configure-bucket", BUCKET,
             "--configure-bucket", OTHER_BUCKET],
            stdout=self.log, stderr=self.log)
        deadline = time.monotonic() + 30
        while True:
            if self.proc.poll() is not None:
                raise AssertionError("s3rver exited " + str(self.proc.returncode))
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise AssertionError("s3rver never listened")
                time.sleep(0.1)
        self.endpoint = f"http://127.0.0.1:{self.port}"

    def objects(self, bucket=BUCKET):
        """Object key -> bytes, straight from s3rver's files."""
        root = os.path.join(self.dir, "data", bucket)
        found = {}
        for base, _, files in os.walk(root):
            for name in files:
                if name.endswith("._S3rver_object"):
                    path = os.path.join(base, name)
                    key = os.path.relpath(path, root)[:-len("._S3rver_object")]
                    with open(path, "rb") as f:
                        found[key] = f.read()
        return found

    def object_path(self, key):
        return os.path.join(self.dir, "data", BUCKET, key + "._S3rver_object")

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def s3():
    server = S3()
    yield server
    server.stop()


def s3_env(s3, **extra):
    env = {
        "SEALPOST_S3_ENDPOINT": s3.endpoint,
        "SEALPOST_S3_BUCKET": BUCKET,
        "SEALPOST_S3_ACCESS_KEY_ID": "S3RVER",
        "SEALPOST_S3_SECRET_ACCESS_KEY": "S3RVER",
        "SEALPOST_S3_PATH_STYLE": "true",
    }
    env.update({k: str(v) for k, v in extra.items()})
    return env


class Box:
    """One alias with a mailbox, its password and the backup settings."""

    def __init__(self, sp, s3):
        self.sp = sp
        sp.run("domain", "add", "example.test")
        sp.run("alias", "add", ADDRESS, "--mailbox")
        self.password = sp.run("alias", "password", ADDRESS).stdout.decode().strip()
        sp.env.update(s3_env(s3))
        sp.env["SEALPOST_PASSWORD"] = self.password

    def deliver(self, n):
        self.sp.run("deliver", ADDRESS, input=message(n))

    def cli(self, *args, check=True, env=None):
        return self.sp.run(*args, check=check, env=env)

    def backup(self, env=None):
        out = self.cli("--json", "mailbox", "backup", ADDRESS, env=env).stdout
        return json.loads(out)

    def backups(self, env=None):
        out = self.cli("--json", "mailbox", "backups", ADDRESS, env=env).stdout
        return json.loads(out)

    def mailbox_file(self):
        d = os.path.join(self.sp.data_dir, "mailboxes")
        files = [f for f in os.listdir(d) if f.endswith(".sqlite")]
        assert len(files) == 1
        return os.path.join(d, files[0])

    def live_sha256(self):
        h = hashlib.sha256()
        for suffix in ("", "-wal"):
            path = self.mailbox_file() + suffix
            if os.path.exists(path):
                with open(path, "rb") as f:
                    h.update(f.read())
        return h.hexdigest()

    def export(self, tmp_path, name):
        out = tmp_path / name
        self.cli("mailbox", "export", ADDRESS, "--format", "mbox", "-o", str(out))
        return out.read_bytes()


@pytest.fixture
def box(sp, s3):
    return Box(sp, s3)


def test_first_backup_uploads_then_unchanged_uploads_nothing(box, s3):
    box.deliver(1)
    first = box.backup()
    assert first["uploaded"] is True
    assert first["messages"] == 1
    objects = s3.objects()
    mailbox_id = os.path.basename(box.mailbox_file())[:-len(".sqlite")]
    # Named by the mailbox id, never by the address.
    assert list(objects) == [mailbox_id + ".sqlite"]
    data = objects[mailbox_id + ".sqlite"]
    assert hashlib.sha256(data).hexdigest() == first["sha256"]
    assert len(data) == first["size"]
    assert b"example.test" not in json.dumps(box.backups()).encode()

    again = box.backup()
    assert again["uploaded"] is False
    # The change marker matched: not even a copy was made.
    assert again["copied"] is False
    assert s3.objects()[mailbox_id + ".sqlite"] == data

    box.deliver(2)
    changed = box.backup()
    assert changed["uploaded"] is True
    assert changed["copied"] is True
    assert changed["messages"] == 2
    assert s3.objects()[mailbox_id + ".sqlite"] != data
    listed = box.backups()
    assert len(listed) == 1
    assert listed[0]["sha256"] == changed["sha256"]


def test_object_bytes_hold_no_canary(box, s3, tmp_path):
    for n in range(3):
        box.deliver(n)
    box.backup()
    objects = s3.objects()
    assert objects
    for data in objects.values():
        assert CANARY not in data
        assert b"Subject: note" not in data
        assert not data.startswith(b"SQLite format 3")
    out = tmp_path / "copy.sqlite"
    box.cli("mailbox", "download", ADDRESS, "-o", str(out))
    assert CANARY not in out.read_bytes()
    # The temporary copy next to the mailbox is gone.
    assert not [f for f in os.listdir(os.path.dirname(box.mailbox_file()))
                if f.endswith((".backup", ".restore", ".pre-restore", ".lock"))]


def test_restore_brings_back_that_moment(box, s3, tmp_path):
    for n in range(3):
        box.deliver(n)
    box.backup()
    then = box.export(tmp_path, "then.mbox")
    assert then.count(CANARY) == 3

    for n in range(3, 6):
        box.deliver(n)
    box.backup()
    assert box.export(tmp_path, "later.mbox").count(CANARY) == 6
    versions = box.backups()
    assert len(versions) == 1  # backup_keep = 1: the newest replaced it

    # Mail that reached the file after the backup is gone after the
    # restore: the mailbox is exactly the backup.
    box.deliver(99)
    box.export(tmp_path, "drain.mbox")
    proc = box.cli("mailbox", "restore", ADDRESS)
    assert b"restored 6 messages" in proc.stdout
    restored = box.export(tmp_path, "restored.mbox")
    assert restored.count(CANARY) == 6
    assert b"Body 99 " not in restored

    # The restored file is a new file, so its change marker differs from
    # the newest backup's even though the messages are the same: the copy
    # is made and the fingerprint decides. The run after it is cheap again.
    again = box.backup()
    assert again["copied"] is True
    assert again["messages"] == 6
    assert box.backup()["copied"] is False


def test_restore_from_file_and_keep_two_versions(box, s3, tmp_path):
    env1 = {"SEALPOST_BACKUP_KEEP": "2", "SEALPOST_CLOCK_OFFSET": "0"}
    box.deliver(1)
    first = box.backup(env=env1)
    then = box.export(tmp_path, "then.mbox")
    box.deliver(2)
    second = box.backup(env=dict(env1, SEALPOST_CLOCK_OFFSET="3600"))
    box.deliver(3)
    third = box.backup(env=dict(env1, SEALPOST_CLOCK_OFFSET="7200"))
    assert first["uploaded"] and second["uploaded"] and third["uploaded"]
    listed = box.backups(env=env1)
    assert [v["version"] for v in listed] == [third["version"], second["version"]]
    keys = sorted(s3.objects())
    assert len(keys) == 2
    assert all("/" in k for k in keys)

    # The oldest is gone from storage, so take "then" from a download of
    # the second version and check VERSION selection on the way.
    out = tmp_path / "second.sqlite"
    box.cli("mailbox", "download", ADDRESS, second["version"], "-o", str(out), env=env1)
    proc = box.cli("mailbox", "restore", ADDRESS, "--file", str(out))
    assert b"restored 2 messages" in proc.stdout
    restored = box.export(tmp_path, "restored.mbox")
    assert restored.count(CANARY) == 2
    assert then.count(CANARY) == 1
    proc = box.cli("mailbox", "restore", ADDRESS, "19990101T000000Z", check=False, env=env1)
    assert proc.returncode == 2
    assert b"no backup of version" in proc.stderr


def test_corrupted_object_is_refused_and_live_mailbox_untouched(box, s3, tmp_path):
    box.deliver(1)
    first = box.backup()
    box.deliver(2)
    box.export(tmp_path, "drain.mbox")
    before = box.live_sha256()
    (key,) = s3.objects()
    path = s3.object_path(key)
    data = bytearray(open(path, "rb").read())
    data[len(data) // 2] ^= 0x40
    open(path, "wb").write(bytes(data))

    proc = box.cli("mailbox", "restore", ADDRESS, check=False)
    assert proc.returncode == 2
    assert b"corrupt" in proc.stderr
    assert first["sha256"].encode() in proc.stderr
    assert box.live_sha256() == before
    out = tmp_path / "bad.sqlite"
    proc = box.cli("mailbox", "download", ADDRESS, "-o", str(out), check=False)
    assert proc.returncode == 2 and b"corrupt" in proc.stderr
    assert not out.exists()

    # A damaged local file (--file has no recorded SHA-256) is refused by
    # the page MACs and the integrity check.
    data[len(data) // 2] ^= 0x40
    open(path, "wb").write(bytes(data))
    good = tmp_path / "good.sqlite"
    box.cli("mailbox", "download", ADDRESS, "-o", str(good))
    damaged = bytearray(good.read_bytes())
    damaged[len(damaged) - 100] ^= 0x01
    good.write_bytes(bytes(damaged))
    proc = box.cli("mailbox", "restore", ADDRESS, "--file", str(good), check=False)
    assert proc.returncode == 2
    assert box.live_sha256() == before


def test_wrong_password_and_old_key_are_refused(box, s3, tmp_path):
    box.deliver(1)
    box.backup()
    before = box.live_sha256()
    for args in (("mailbox", "backup", ADDRESS), ("mailbox", "backups", ADDRESS),
                 ("mailbox", "restore", ADDRESS),
                 ("mailbox", "download", ADDRESS, "-o", str(tmp_path / "x"))):
        proc = box.cli(*args, check=False, env={"SEALPOST_PASSWORD": "not-the-password"})
        assert proc.returncode == 2
        assert b"wrong password" in proc.stderr
    assert box.live_sha256() == before
    assert not (tmp_path / "x").exists()

    # After a password change the old backup no longer opens with the
    # (new) key: refused, live mailbox untouched.
    new = box.cli("alias", "password", ADDRESS,
                  env={"SEALPOST_OLD_PASSWORD": box.password}).stdout.decode().strip()
    box.sp.env["SEALPOST_PASSWORD"] = new
    box.export(tmp_path, "after.mbox")
    before = box.live_sha256()
    proc = box.cli("mailbox", "restore", ADDRESS, check=False)
    assert proc.returncode == 2
    assert b"does not open with this password" in proc.stderr
    assert box.live_sha256() == before


def test_failures_are_clear_and_touch_nothing(box, s3, tmp_path):
    box.deliver(1)
    box.export(tmp_path, "drain.mbox")
    before = box.live_sha256()
    cases = [
        ({"SEALPOST_S3_ACCESS_KEY_ID": ""}, b"no S3 credentials"),
        ({"SEALPOST_S3_ENDPOINT": ""}, b"not configured"),
        ({"SEALPOST_S3_ENDPOINT": f"http://127.0.0.1:{free_port()}"}, b"cannot reach"),
        ({"SEALPOST_S3_BUCKET": "no-such-bucket"}, b"does not exist"),
        ({"SEALPOST_S3_ACCESS_KEY_ID": "UNKNOWN"}, b"refused the credentials"),
    ]
    for env, text in cases:
        for args in (("mailbox", "backup", ADDRESS), ("mailbox", "restore", ADDRESS),
                     ("mailbox", "backups", ADDRESS)):
            proc = box.cli(*args, check=False, env=env)
            assert proc.returncode == 2, (args, env)
            assert text in proc.stderr, (args, env, proc.stderr)
    assert box.live_sha256() == before
    assert s3.objects() == {}
    proc = box.cli("mailbox", "restore", ADDRESS, check=False)
    assert proc.returncode == 2 and b"has no backup" in proc.stderr


# ---- With the IMAP server: flags, and sessions that hold the mailbox ----

def tls_context():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def imap_state(port, password):
    m = imaplib.IMAP4_SSL("127.0.0.1", port, ssl_context=tls_context(), timeout=30)
    m.login(ADDRESS, password)
    m.select("INBOX")
    typ, data = m.uid("FETCH", "1:*", "(FLAGS BODY.PEEK[])")
    assert typ == "OK"
    state = []
    for item in data:
        if isinstance(item, tuple):
            meta = item[0].decode()
            flags = meta[meta.index("FLAGS (") + 7:].split(")")[0].split()
            state.append((sorted(flags), item[1]))
    m.logout()
    return state


def test_restore_closes_live_sessions_first(served_sp, serve, s3):
    box = Box(served_sp, s3)
    for n in range(3):
        box.deliver(n)
    server = serve(served_sp, ["imaps", "pop3s"])
    port = server.ports["imaps"]
    m = imaplib.IMAP4_SSL("127.0.0.1", port, ssl_context=tls_context(), timeout=30)
    m.login(ADDRESS, box.password)
    m.select("INBOX")
    m.store("1", "+FLAGS", "(\\Flagged \\Seen)")
    m.store("2", "+FLAGS", "(\\Answered $Work)")
    m.logout()
    then = imap_state(port, box.password)
    assert len(then) == 3
    box.backup()

    # Changes after the backup, made by a session that stays SELECTed,
    # and a POP3 session that is logged in.
    m = imaplib.IMAP4_SSL("127.0.0.1", port, ssl_context=tls_context(), timeout=30)
    m.login(ADDRESS, box.password)
    m.select("INBOX")
    m.store("1", "-FLAGS", "(\\Flagged)")
    m.store("3", "+FLAGS", "(\\Deleted)")
    m.expunge()
    box.deliver(10)
    m.noop()
    p = poplib.POP3_SSL("127.0.0.1", server.ports["pop3s"], context=tls_context(), timeout=30)
    p.user(ADDRESS)
    p.pass_(box.password)
    assert p.stat()[0] == 3

    proc = box.cli("--json", "mailbox", "restore", ADDRESS)
    result = json.loads(proc.stdout)
    assert result["messages"] == 3
    assert result["sessions_closed"] == 2

    # The IMAP session got "* BYE" and the connection closed.
    with pytest.raises(imaplib.IMAP4.abort):
        m.noop()
    bye = m.untagged_responses.get("BYE")
    assert bye and b"restored from a backup" in bye[-1]
    # POP3 has no unsolicited responses: the -ERR line is what the next
    # command reads (unless the closed connection refuses the command).
    with pytest.raises((poplib.error_proto, OSError)) as err:
        p.stat()
    if isinstance(err.value, poplib.error_proto):
        assert b"restored from a backup" in err.value.args[0]
    with pytest.raises((poplib.error_proto, OSError)):
        p.stat()

    # A new login sees the backup's messages and flags, on the same
    # server (the hold ended with the restore).
    assert imap_state(port, box.password) == then
    p = poplib.POP3_SSL("127.0.0.1", server.ports["pop3s"], context=tls_context(), timeout=30)
    p.user(ADDRESS)
    p.pass_(box.password)
    assert p.stat()[0] == 3
    p.quit()
    control = [line for line in server.logs().splitlines() if b"control:" in line]
    assert control and not [line for line in control if b"@" in line]


def test_restore_without_a_server_refuses_a_mailbox_held_open(box, s3, tmp_path):
    """No server runs (no control socket): a process that holds the
    mailbox open (SQLite's shared-memory lock, taken here by hand) makes the
    restore refuse and change nothing."""
    box.deliver(1)
    box.backup()
    box.deliver(2)
    box.cli("mailbox", "stats", ADDRESS)  # drains the spool into the file
    before = box.live_sha256()
    shm = box.mailbox_file() + "-shm"
    with open(shm, "a+b") as f:
        if os.path.getsize(shm) < 256:
            f.truncate(256)
        # In a child process: F_GETLK reports other processes' locks only.
        ready_r, ready_w = os.pipe()
        pid = os.fork()
        if pid == 0:
            try:
                fcntl.lockf(f, fcntl.LOCK_SH, 1, 128)
                os.write(ready_w, b"x")
                time.sleep(60)
            finally:
                os._exit(0)
        try:
            os.close(ready_w)
            assert os.read(ready_r, 1) == b"x"
            proc = box.cli("mailbox", "restore", ADDRESS, check=False)
            assert proc.returncode == 2
            assert b"mailbox is open" in proc.stderr
            assert box.live_sha256() == before
        finally:
            os.close(ready_r)
            os.kill(pid, 9)
            os.waitpid(pid, 0)
    proc = box.cli("mailbox", "restore", ADDRESS)
    assert b"restored 1 messages" in proc.stdout


def test_domain_with_its_own_bucket(sp, s3, served_sp, serve):
    box = Box(sp, s3)
    sp.run("domain", "add", "own.test")
    sp.run("alias", "add", "x@own.test", "--mailbox")
    own_password = sp.run("alias", "password", "x@own.test").stdout.decode().strip()
    proc = sp.run("domain", "set", "own.test", "--backup-bucket", "Bad_Name", check=False)
    assert proc.returncode != 0 and b"bucket name" in proc.stderr
    sp.run("domain", "set", "own.test", "--backup-bucket", OTHER_BUCKET)
    shown = json.loads(sp.run("--json", "domain", "show", "own.test").stdout)
    assert shown["backup_bucket"] == OTHER_BUCKET
    assert json.loads(sp.run("--json", "domain", "show", "example.test").stdout)[
        "backup_bucket"] is None

    box.deliver(1)
    sp.run("deliver", "x@own.test", input=message(2))
    assert box.backup()["uploaded"] is True
    own = json.loads(sp.run("--json", "mailbox", "backup", "x@own.test",
                            env={"SEALPOST_PASSWORD": own_password}).stdout)
    assert own["uploaded"] is True
    default_keys = set(s3.objects(BUCKET))
    own_keys = set(s3.objects(OTHER_BUCKET))
    assert len(default_keys) == 1 and len(own_keys) == 1
    assert not default_keys & own_keys
    listed = json.loads(sp.run("--json", "mailbox", "backups", "x@own.test",
                               env={"SEALPOST_PASSWORD": own_password}).stdout)
    assert [v["key"] for v in listed] == list(own_keys)
    # Without s3_bucket, the domain with its own bucket still backs up.
    again = json.loads(sp.run("--json", "mailbox", "backup", "x@own.test",
                              env={"SEALPOST_PASSWORD": own_password,
                                   "SEALPOST_S3_BUCKET": ""}).stdout)
    assert again["uploaded"] is False
    proc = box.cli("mailbox", "backup", ADDRESS, check=False, env={"SEALPOST_S3_BUCKET": ""})
    assert proc.returncode == 2 and b"not configured" in proc.stderr
    # Back to the setting.
    sp.run("domain", "set", "own.test", "--backup-bucket", "")
    assert json.loads(sp.run("--json", "domain", "show", "own.test").stdout)[
        "backup_bucket"] is None

    # The daily backup of a server session goes to the domain's bucket.
    served_sp.run("domain", "add", "own.test")
    served_sp.run("alias", "add", "y@own.test", "--mailbox")
    pw = served_sp.run("alias", "password", "y@own.test").stdout.decode().strip()
    served_sp.run("domain", "set", "own.test", "--backup-bucket", OTHER_BUCKET)
    served_sp.env.update(s3_env(s3))
    served_sp.run("deliver", "y@own.test", input=message(3))
    server = serve(served_sp, ["imaps"])
    m = imaplib.IMAP4_SSL("127.0.0.1", server.ports["imaps"], ssl_context=tls_context(),
                          timeout=30)
    m.login("y@own.test", pw)
    m.select("INBOX")
    deadline = time.monotonic() + 60
    while len(s3.objects(OTHER_BUCKET)) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    m.logout()
    assert len(s3.objects(OTHER_BUCKET)) == 2
    assert len(s3.objects(BUCKET)) == 1


def wait_for_objects(s3, count, seconds=60):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = s3.objects()
        if len(found) >= count:
            return found
        time.sleep(0.2)
    raise AssertionError(f"expected {count} backup objects, found {len(s3.objects())}")


def test_daily_backup_runs_from_a_logged_in_session(served_sp, serve, s3):
    box = Box(served_sp, s3)
    box.deliver(1)
    served_sp.env["SEALPOST_BACKUP_KEEP"] = "2"
    assert s3.objects() == {}
    server = serve(served_sp, ["imaps"])
    assert len(imap_state(server.ports["imaps"], box.password)) == 1
    first = wait_for_objects(s3, 1)
    assert len(first) == 1
    server.stop()

    # A day later (the clock moved), with new mail, the next login backs
    # the mailbox up again; the old version is kept (backup_keep=2).
    box.deliver(2)
    server = serve(served_sp, ["imaps"], env={"SEALPOST_CLOCK_OFFSET": str(25 * 3600)})
    assert len(imap_state(server.ports["imaps"], box.password)) == 2
    second = wait_for_objects(s3, 2)
    assert set(first) < set(second)
    server.stop()
