"""The command line itself: init, help, usage errors, exit codes."""
import os
import stat
import subprocess

from conftest import SEALPOST


def test_init_creates_private_data_dir(sp):
    mode = os.stat(sp.data_dir).st_mode
    assert stat.S_IMODE(mode) == 0o700
    key = os.path.join(sp.data_dir, "server.key")
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
    assert os.path.getsize(key) == 32
    assert stat.S_IMODE(os.stat(os.path.join(sp.data_dir, "tls", "key.pem")).st_mode) == 0o600
    with open(os.path.join(sp.data_dir, "sealpost.conf")) as f:
        conf = f.read()
    assert "#imaps_listen = 0.0.0.0:993" in conf


def test_init_is_idempotent_and_keeps_the_key(sp):
    key = os.path.join(sp.data_dir, "server.key")
    before = open(key, "rb").read()
    sp.run("init")
    assert open(key, "rb").read() == before


def test_data_dir_from_environment(tmp_path):
    env = dict(os.environ, SEALPOST_DATA=str(tmp_path / "envdata"))
    subprocess.run([SEALPOST, "init"], env=env, check=True, capture_output=True)
    assert os.path.exists(tmp_path / "envdata" / "server.key")


def test_unknown_command_is_usage_error(sp):
    proc = sp.run("frobnicate", check=False)
    assert proc.returncode == 1
    assert b"unknown command" in proc.stderr


def test_help_on_every_command(sp):
    top = sp.run("--help").stdout.decode()
    commands = [line.split("  ")[1].strip() for line in top.splitlines()
                if line.startswith("  ") and line.strip()]
    commands = [" ".join(c.split()[:2]) for c in commands]
    assert "init" in " ".join(commands)
    for line in top.splitlines():
        if not line.startswith("  "):
            continue
        words = [w for w in line.split("  ") if w][0].split()
        proc = sp.run(*words, "--help")
        assert proc.stdout.startswith(b"usage: sealpost")


def test_bad_config_value_fails_clearly(sp):
    proc = sp.run("serve", env={"SEALPOST_BACKUP_KEEP": "lots"}, check=False)
    assert proc.returncode == 2
    assert b"backup_keep" in proc.stderr


def test_configuration_doc_lists_every_setting(sp):
    table = sp.run("config", "markdown").stdout.decode()
    doc = open(os.path.join(os.path.dirname(__file__), "..", "..", "docs",
                            "configuration.md")).read()
    for row in table.splitlines()[2:]:
        name = row.split("|")[1].strip()
        assert name in doc, f"docs/configuration.md does not list {name}"
