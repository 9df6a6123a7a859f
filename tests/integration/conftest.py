"""Fixtures shared by the integration tests: the real `sealpost` binary and
a fresh data directory per test."""
import os
import subprocess

import pytest

SEALPOST = os.environ.get(
    "SEALPOST_BIN",
    os.path.join(os.path.dirname(__file__), "..", "..", "build", "src", "bin", "sealpost"),
)


class Sealpost:
    """Runs the sealpost CLI against one data directory."""

    def __init__(self, data_dir):
        self.data_dir = str(data_dir)
        self.env = dict(os.environ)
        self.env.pop("SEALPOST_DATA", None)
        for key in list(self.env):
            if key.startswith("SEALPOST_") and key != "SEALPOST_BIN":
                del self.env[key]

    def run(self, *args, input=None, env=None, check=True, timeout=120):
        full_env = dict(self.env)
        if env:
            full_env.update(env)
        proc = subprocess.run(
            [SEALPOST, "--data", self.data_dir, *args],
            input=input,
            capture_output=True,
            env=full_env,
            timeout=timeout,
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"sealpost {' '.join(args)} exited {proc.returncode}: "
                f"{proc.stderr.decode(errors='replace')}"
            )
        return proc


@pytest.fixture
def sp(tmp_path):
    instance = Sealpost(tmp_path / "data")
    instance.run("init")
    return instance


# ---- A running `sealpost serve` (IMAP now; POP3 and SMTP reuse it) ----

LISTENERS = ("imap", "imaps", "pop3", "pop3s", "smtp", "submission",
             "submissions", "http")


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`sealpost serve` with the named listeners on free 127.0.0.1 ports
    (self.ports["imaps"]) and every other listener off (empty value)."""

    def __init__(self, sp, listeners, env=None, log_path=None):
        import time
        self.sp = sp
        self.ports = {name: free_port() for name in listeners}
        full_env = dict(sp.env)
        for name in LISTENERS:
            full_env[f"SEALPOST_{name.upper()}_LISTEN"] = (
                f"127.0.0.1:{self.ports[name]}" if name in self.ports else "")
        full_env.update(env or {})
        self.log_path = log_path or os.path.join(os.path.dirname(sp.data_dir), "serve.log")
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([SEALPOST, "--data", sp.data_dir, "serve"],
                                     env=full_env, stdout=self.log, stderr=self.log)
        deadline = time.monotonic() + 20
        for port in self.ports.values():
            while True:
                if self.proc.poll() is not None:
                    raise AssertionError(f"sealpost serve exited {self.proc.returncode}: "
                                         f"{self.logs().decode(errors='replace')}")
                try:
                    import socket
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise AssertionError(f"port {port} never opened")
                    time.sleep(0.05)

    def logs(self):
        self.log.flush()
        with open(self.log_path, "rb") as f:
            return f.read()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


@pytest.fixture
def served_sp():
    """Like `sp`, but in a directory the unprivileged user can reach:
    started as root, serve drops to `user` (or nobody) after binding and
    hands the data directory to it."""
    import shutil
    import tempfile
    base = tempfile.mkdtemp(prefix="sealpost-test-")
    os.chmod(base, 0o711)
    instance = Sealpost(os.path.join(base, "data"))
    instance.run("init")
    yield instance
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def serve():
    """Factory: serve(sp, ["imap", "imaps"], env={...}) -> Server. Every
    server started is stopped after the test."""
    servers = []

    def start(sp, listeners, env=None):
        server = Server(sp, listeners, env)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()
    for server in servers:
        # Under the ASan build, a sanitizer report fails the test.
        logs = server.logs() if not server.log.closed else open(server.log_path, "rb").read()
        assert b"ERROR: AddressSanitizer" not in logs and b"runtime error:" not in logs, \
            logs.decode(errors="replace")[-4000:]
