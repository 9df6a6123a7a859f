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
