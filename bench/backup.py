#!/usr/bin/env python3
"""Backup of a large mailbox versus a plain copy of its file.

Builds a mailbox of about SIZE MB (default 1024) with `sealpost mailbox
import` (messages of ~100 KB with random, hence incompressible and never
de-duplicated, attachments), starts s3rver (tests/s3rver) on 127.0.0.1,
then measures:
  - `cp` of the mailbox file (what a naive file-level backup costs);
  - `sealpost mailbox backup`: the copy under the write lock (VACUUM
    INTO), the verification (integrity check, SHA-256, fingerprint) and the
    upload, with the bytes uploaded;
  - the same backup again (unchanged: nothing uploaded; since the change
    marker, not even copied), three times, the median reported.
Usage: bench/backup.py BUILD_DIR [SIZE_MB]. Prints Markdown rows.
"""
import base64
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    build = sys.argv[1] if len(sys.argv) > 1 else "build"
    size_mb = int(sys.argv[2]) if len(sys.argv) > 2 else 1024
    binary = os.path.join(ROOT, build, "src", "bin", "sealpost")
    s3rver = os.path.join(ROOT, "tests", "s3rver", "node_modules", ".bin", "s3rver")
    work = tempfile.mkdtemp(prefix="sealpost-bench-backup-")
    data = os.path.join(work, "data")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEALPOST_")}

    def run(*args, extra=None, **kw):
        e = dict(env)
        e.update(extra or {})
        proc = subprocess.run([binary, "--data", data, *args], env=e,
                              capture_output=True, **kw)
        if proc.returncode != 0:
            sys.exit(f"sealpost {' '.join(args)}: {proc.stderr.decode(errors='replace')}")
        return proc

    port = free_port()
    s3 = subprocess.Popen([s3rver, "-d", os.path.join(work, "s3"), "-a", "127.0.0.1",
                           "-p", str(port), "--silent", "--configure-bucket", "bench"],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        run("init")
        run("domain", "add", "bench.test")
        run("alias", "add", "big@bench.test", "--mailbox")
        env["SEALPOST_PASSWORD"] = run("alias", "password", "big@bench.test").stdout.decode().strip()
        env.update({
            "SEALPOST_S3_ENDPOINT": f"http://127.0.0.1:{port}",
            "SEALPOST_S3_BUCKET": "bench",
            "SEALPOST_S3_ACCESS_KEY_ID": "S3RVER",
            "SEALPOST_S3_SECRET_ACCESS_KEY": "S3RVER",
            "SEALPOST_S3_PATH_STYLE": "true",
        })

        # Import in batches so no single mbox file is huge.
        per_message = 100 * 1024
        count = size_mb * 1024 * 1024 // per_message
        t0 = time.monotonic()
        batch = 500
        for start in range(0, count, batch):
            mbox = os.path.join(work, "in.mbox")
            with open(mbox, "wb") as f:
                for i in range(start, min(count, start + batch)):
                    blob = base64.encodebytes(os.urandom(per_message * 3 // 4))
                    f.write(b"From bench@bench.test Mon Nov 23 10:00:00 2026\n"
                            b"From: bench@bench.test\nTo: big@bench.test\n"
                            b"Subject: message %d\nMIME-Version: 1.0\n"
                            b"Content-Type: multipart/mixed; boundary=B\n\n"
                            b"--B\nContent-Type: text/plain\n\nbody %d\n"
                            b"--B\nContent-Type: application/octet-stream\n"
                            b"Content-Transfer-Encoding: base64\n\n" % (i, i))
                    f.write(blob)
                    f.write(b"--B--\n\n")
            run("mailbox", "import", "big@bench.test", mbox)
            os.unlink(mbox)
        import_s = time.monotonic() - t0
        mailboxes = os.path.join(data, "mailboxes")
        (name,) = [f for f in os.listdir(mailboxes) if f.endswith(".sqlite")]
        path = os.path.join(mailboxes, name)
        # Fold the WAL in first so `cp` of the one file is a whole copy.
        run("mailbox", "stats", "big@bench.test")
        file_bytes = os.path.getsize(path)

        subprocess.run(["sync"], check=True)
        t0 = time.monotonic()
        shutil.copyfile(path, os.path.join(work, "plain-copy.sqlite"))
        os.sync()
        cp_s = time.monotonic() - t0
        os.unlink(os.path.join(work, "plain-copy.sqlite"))

        t0 = time.monotonic()
        first = json.loads(run("--json", "mailbox", "backup", "big@bench.test").stdout)
        first_s = time.monotonic() - t0
        runs = []
        for _ in range(3):
            t0 = time.monotonic()
            again = json.loads(run("--json", "mailbox", "backup", "big@bench.test").stdout)
            runs.append(time.monotonic() - t0)
        again_s = sorted(runs)[1]

        print(f"Mailbox: {count} messages, file {file_bytes / 1e6:.0f} MB "
              f"(import {import_s:.0f} s)\n")
        print("| operation | time (s) | bytes written/uploaded | vs cp |")
        print("| --- | ---: | ---: | ---: |")
        print(f"| `cp` of the file (+ sync) | {cp_s:.1f} | {file_bytes} | 1.0x |")
        print(f"| backup: copy under write lock (VACUUM INTO) | {first['copy_seconds']:.1f} "
              f"| {first['size']} | {first['copy_seconds'] / cp_s:.1f}x |")
        print(f"| backup: verify (integrity, SHA-256, fingerprint) | "
              f"{first['verify_seconds']:.1f} | 0 | |")
        print(f"| backup: upload to s3rver on 127.0.0.1 | {first['upload_seconds']:.1f} "
              f"| {first['size']} | |")
        print(f"| backup, whole command (incl. Argon2id login) | {first_s:.1f} | "
              f"{first['size']} | {first_s / cp_s:.1f}x |")
        print(f"| backup again, unchanged (nothing uploaded: {not again['uploaded']}, "
              f"copied: {again.get('copied', True)}; median of 3) | "
              f"{again_s:.1f} | 0 | {again_s / cp_s:.1f}x |")
    finally:
        s3.terminate()
        s3.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
