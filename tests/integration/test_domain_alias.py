"""The control plane through the CLI: sealpost domain ... and alias ..."""
import glob
import json
import os
import stat

import pytest


def out(proc):
    return proc.stdout.decode()


def err(proc):
    return proc.stderr.decode()


def test_init_creates_encrypted_control_plane(sp):
    path = os.path.join(sp.data_dir, "control.sqlite")
    assert os.path.exists(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    sp.run("domain", "add", "canary-domain.example")
    sp.run("alias", "add", "canary-alias@canary-domain.example", "--mailbox")
    for f in glob.glob(os.path.join(sp.data_dir, "control.sqlite*")):
        with open(f, "rb") as fh:
            data = fh.read()
        assert not data.startswith(b"SQLite format 3"), f
        assert b"canary-alias" not in data, f
        assert b"canary-domain" not in data, f


def test_domain_add_list_show(sp):
    sp.run("domain", "add", "Example.COM")
    sp.run("domain", "add", "bücher.example", "--owner", "bob",
           "--retention-days", "7", "--quota", "10G")
    listing = out(sp.run("domain", "list"))
    assert "example.com" in listing
    assert "xn--bcher-kva.example" in listing

    domains = json.loads(out(sp.run("domain", "list", "--json")))
    assert [d["name"] for d in domains] == ["example.com",
                                           "xn--bcher-kva.example"]
    assert domains[1]["name_unicode"] == "bücher.example"
    assert domains[1]["owner"] == "bob"
    assert domains[1]["retention_days"] == 7
    assert domains[1]["quota_bytes"] == 10 * 1024 ** 3
    assert domains[0]["retention_days"] == 30
    assert domains[0]["owner"] == "default"

    # Either spelling names the same domain.
    shown = json.loads(out(sp.run("--json", "domain", "show",
                                  "XN--BCHER-KVA.example")))
    assert shown["name"] == "xn--bcher-kva.example"
    assert len(shown["verification_token"]) == 32
    assert len(shown["webhook_key"]) == 64
    text = out(sp.run("domain", "show", "bücher.example"))
    assert "verification token: " + shown["verification_token"] in text
    # Each domain has its own key.
    other = json.loads(out(sp.run("domain", "show", "example.com", "--json")))
    assert other["webhook_key"] != shown["webhook_key"]


def test_domain_add_failures(sp):
    sp.run("domain", "add", "example.com")
    proc = sp.run("domain", "add", "EXAMPLE.com", check=False)
    assert proc.returncode == 2
    assert "exists" in err(proc)
    proc = sp.run("domain", "add", "bad_name.example", check=False)
    assert proc.returncode == 2
    assert "not a valid domain" in err(proc)
    assert len(err(proc).strip().splitlines()) == 1


@pytest.mark.parametrize("args", [
    ["domain", "add"],
    ["domain", "add", "a.example", "b.example"],
    ["domain", "add", "a.example", "--bogus"],
    ["domain", "add", "a.example", "--quota", "lots"],
    ["domain", "add", "a.example", "--retention-days", "0"],
    ["domain", "add", "a.example", "--owner"],
    ["domain", "show"],
    ["domain", "remove"],
    ["domain", "dns"],
    ["alias", "add"],
    ["alias", "add", "a@example.com"],
    ["alias", "add", "a@example.com", "--forward"],
    ["alias", "add", "a@example.com", "--mailbox", "--no-such-option"],
    ["alias", "add", "a@example.com", "--mailbox", "--clear-targets"],
    ["alias", "set", "a@example.com", "--quota", "-5"],
    ["alias", "show"],
    ["alias", "remove", "a@example.com", "b@example.com"],
    ["alias", "list", "a.example", "b.example"],
])
def test_usage_errors_exit_1(sp, args):
    proc = sp.run(*args, check=False)
    assert proc.returncode == 1, args
    assert err(proc).startswith("sealpost: ")
    assert "usage: sealpost" in err(proc)


def test_domain_dns(sp):
    sp.run("domain", "add", "example.com")
    token = json.loads(out(sp.run("domain", "show", "example.com",
                                  "--json")))["verification_token"]
    proc = sp.run("domain", "dns", "example.com",
                  env={"SEALPOST_HOSTNAME": "mx.provider.example"})
    lines = [l for l in out(proc).splitlines() if not l.startswith(";")]
    records = [l.split("\t") for l in lines]
    assert ["example.com.", "3600", "IN", "MX",
            "10 mx.provider.example."] in records
    assert any(r[0] == "example.com." and r[3] == "TXT"
               and r[4].startswith('"v=spf1') for r in records)
    assert any(r[0] == "_dmarc.example.com." and "v=DMARC1" in r[4]
               for r in records)
    assert ["_sealpost.example.com.", "3600", "IN", "TXT",
            f'"sealpost-verification={token}"'] in records
    proc = sp.run("domain", "dns", "nowhere.example", check=False)
    assert proc.returncode == 2


def test_alias_add_show_list_set_remove(sp):
    sp.run("domain", "add", "example.com")
    sp.run("alias", "add", "Hello@example.com", "--mailbox",
           "--forward", "copy@dest.example", "--webhook",
           "https://hooks.example/in", "--quota", "100M")
    sp.run("alias", "add", "*@example.com", "--forward", "all@dest.example")
    sp.run("alias", "add", "/^sales-[0-9]+$/@example.com", "--mailbox",
           "--disabled")

    a = json.loads(out(sp.run("alias", "show", "hello@EXAMPLE.com",
                              "--json")))
    assert a["address"] == "Hello@example.com"
    assert a["kind"] == "exact"
    assert a["enabled"] is True
    assert a["quota_bytes"] == 100 * 1024 ** 2
    assert a["has_password"] is False
    assert len(a["mailbox_id"]) == 24
    assert all(c in "0123456789abcdef" for c in a["mailbox_id"])
    assert a["targets"] == [
        {"kind": "mailbox"},
        {"kind": "forward", "value": "copy@dest.example"},
        {"kind": "webhook", "value": "https://hooks.example/in"},
    ]

    aliases = json.loads(out(sp.run("alias", "list", "example.com",
                                    "--json")))
    by_addr = {x["address"]: x for x in aliases}
    assert set(by_addr) == {"Hello@example.com", "*@example.com",
                            "/^sales-[0-9]+$/@example.com"}
    assert by_addr["*@example.com"]["kind"] == "catchall"
    assert by_addr["/^sales-[0-9]+$/@example.com"]["kind"] == "regex"
    assert by_addr["/^sales-[0-9]+$/@example.com"]["enabled"] is False
    assert "Hello@example.com\tenabled\t" in out(sp.run("alias", "list"))

    domains = json.loads(out(sp.run("domain", "list", "--json")))
    assert domains[0]["aliases"] == 3

    # set: replace targets, disable, then enable again
    sp.run("alias", "set", "hello@example.com", "--clear-targets",
           "--forward", "new@dest.example", "--disable")
    a = json.loads(out(sp.run("alias", "show", "hello@example.com",
                              "--json")))
    assert a["targets"] == [{"kind": "forward", "value": "new@dest.example"}]
    assert a["enabled"] is False
    sp.run("alias", "set", "hello@example.com", "--enable", "--mailbox")
    a = json.loads(out(sp.run("alias", "show", "hello@example.com",
                              "--json")))
    assert a["enabled"] is True
    assert {"kind": "mailbox"} in a["targets"]
    # The last target cannot go.
    proc = sp.run("alias", "set", "hello@example.com", "--clear-targets",
                  check=False)
    assert proc.returncode == 2
    assert "at least one target" in err(proc)

    sp.run("alias", "remove", "hello@example.com")
    proc = sp.run("alias", "show", "hello@example.com", check=False)
    assert proc.returncode == 2
    proc = sp.run("alias", "remove", "hello@example.com", check=False)
    assert proc.returncode == 2


def test_alias_pgp_key(sp, tmp_path):
    sp.run("domain", "add", "example.com")
    key = tmp_path / "key.asc"
    key.write_text("-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmQINBGVx\n"
                   "-----END PGP PUBLIC KEY BLOCK-----\n")
    sp.run("alias", "add", "k@example.com", "--mailbox", "--pgp-key",
           str(key))
    a = json.loads(out(sp.run("alias", "show", "k@example.com", "--json")))
    assert a["pgp_key"].startswith("-----BEGIN PGP PUBLIC KEY BLOCK-----")
    sp.run("alias", "set", "k@example.com", "--no-pgp-key")
    a = json.loads(out(sp.run("alias", "show", "k@example.com", "--json")))
    assert a["pgp_key"] is None
    bad = tmp_path / "bad.asc"
    bad.write_text("hello")
    proc = sp.run("alias", "set", "k@example.com", "--pgp-key", str(bad),
                  check=False)
    assert proc.returncode == 2
    proc = sp.run("alias", "set", "k@example.com", "--pgp-key",
                  str(tmp_path / "missing.asc"), check=False)
    assert proc.returncode == 2


@pytest.mark.parametrize("args, message", [
    (["alias", "add", "a@nowhere.example", "--mailbox"], "no domain"),
    (["alias", "add", "a@example.com", "--forward", "not-an-address"],
     "not a valid forward address"),
    (["alias", "add", "a@example.com", "--webhook", "ftp://x.example/"],
     "not a valid webhook URL"),
    (["alias", "add", "a@example.com", "--webhook", "hooks.example/in"],
     "not a valid webhook URL"),
    (["alias", "add", "/(open/@example.com", "--mailbox"],
     "invalid regular expression"),
    (["alias", "add", "//@example.com", "--mailbox"], "not a pattern"),
    (["alias", "add", "/abc@example.com", "--mailbox"], "not a pattern"),
    (["alias", "add", '"quoted"@example.com', "--mailbox"],
     "not a valid local part"),
    (["alias", "add", "no-at-sign", "--mailbox"], "not an address"),
    (["alias", "add", "a@example.com", "--forward", "a@example.com"],
     "itself"),
    (["alias", "set", "nobody@example.com", "--enable"], "no alias"),
    (["alias", "list", "nowhere.example"], "no domain"),
])
def test_alias_failures_exit_2(sp, args, message):
    sp.run("domain", "add", "example.com")
    proc = sp.run(*args, check=False)
    assert proc.returncode == 2, err(proc)
    assert message in err(proc)
    assert len(err(proc).strip().splitlines()) == 1
    assert json.loads(out(sp.run("alias", "list", "--json"))) == []


def test_alias_exists_twice(sp):
    sp.run("domain", "add", "example.com")
    sp.run("alias", "add", "a@example.com", "--mailbox")
    proc = sp.run("alias", "add", "A@Example.com", "--mailbox", check=False)
    assert proc.returncode == 2
    assert "exists" in err(proc)


def test_domain_remove(sp):
    sp.run("domain", "add", "example.com")
    sp.run("domain", "add", "empty.example")
    sp.run("alias", "add", "a@example.com", "--mailbox")
    sp.run("domain", "remove", "empty.example")
    proc = sp.run("domain", "remove", "example.com", check=False)
    assert proc.returncode == 2
    assert "--force" in err(proc)
    sp.run("domain", "remove", "example.com", "--force")
    assert json.loads(out(sp.run("domain", "list", "--json"))) == []
    assert json.loads(out(sp.run("alias", "list", "--json"))) == []
    proc = sp.run("domain", "remove", "example.com", check=False)
    assert proc.returncode == 2


def test_idn_aliases(sp):
    sp.run("domain", "add", "xn--bcher-kva.example")
    sp.run("alias", "add", "jörg@bücher.example", "--mailbox")
    a = json.loads(out(sp.run("alias", "show",
                              "jörg@XN--BCHER-KVA.example", "--json")))
    assert a["address"] == "jörg@xn--bcher-kva.example"
    assert a["domain"] == "xn--bcher-kva.example"
    sp.run("alias", "add", "Ascii@bücher.example", "--mailbox")
    a = json.loads(out(sp.run("alias", "show", "ASCII@BÜCHER.example",
                              "--json")))
    assert a["address"] == "Ascii@xn--bcher-kva.example"


def test_alias_creation_limit_per_domain_per_day(sp):
    sp.run("domain", "add", "example.com")
    sp.run("domain", "add", "other.example")
    for i in range(50):
        sp.run("alias", "add", f"a{i}@example.com", "--mailbox")
    proc = sp.run("alias", "add", "a50@example.com", "--mailbox",
                  check=False)
    assert proc.returncode == 2
    assert "limit of 50 new aliases" in err(proc)
    assert "alias_create_per_day" in err(proc)
    # Another domain is not affected.
    sp.run("alias", "add", "a50@other.example", "--mailbox")
    # A day later there is room again.
    sp.run("alias", "add", "a50@example.com", "--mailbox",
           env={"SEALPOST_CLOCK_OFFSET": str(24 * 3600 + 60)})
    # The setting is honoured.
    sp.run("domain", "add", "small.example")
    sp.run("alias", "add", "x@small.example", "--mailbox",
           env={"SEALPOST_ALIAS_CREATE_PER_DAY": "1"})
    proc = sp.run("alias", "add", "y@small.example", "--mailbox",
                  env={"SEALPOST_ALIAS_CREATE_PER_DAY": "1"}, check=False)
    assert proc.returncode == 2


def test_control_plane_missing(tmp_path):
    from conftest import Sealpost
    instance = Sealpost(tmp_path / "nothing")
    proc = instance.run("domain", "list", check=False)
    assert proc.returncode == 2
    assert "sealpost init" in err(proc)


def test_owner_quota(sp):
    sp.run("domain", "add", "example.com", "--owner", "acme")
    sp.run("domain", "add", "example.org", "--owner", "acme")
    sp.run("domain", "add", "solo.example")
    owners = json.loads(out(sp.run("owner", "list", "--json")))
    assert owners == [
        {"name": "acme", "quota_bytes": 0, "domains": 2},
        {"name": "default", "quota_bytes": 0, "domains": 1},
    ]
    sp.run("owner", "set", "acme", "--quota", "2G")
    shown = json.loads(out(sp.run("domain", "show", "example.org", "--json")))
    assert shown["owner_quota_bytes"] == 2 * 1024 ** 3
    proc = sp.run("owner", "set", "nobody", "--quota", "1", check=False)
    assert proc.returncode == 2
    for bad in (["owner", "set", "acme"], ["owner", "set", "acme", "--quota",
                                           "5 "],
                ["owner", "set", "--quota", "1"]):
        assert sp.run(*bad, check=False).returncode == 1, bad


def find_files(root, name_part):
    found = []
    for dirpath, _, files in os.walk(root):
        found += [os.path.join(dirpath, f) for f in files if name_part in f]
    return found


@pytest.mark.parametrize("how", ["alias", "domain"])
def test_remove_deletes_the_mailbox_file(sp, how):
    sp.run("domain", "add", "example.com")
    sp.run("alias", "add", "box@example.com", "--mailbox")
    mailbox_id = json.loads(out(sp.run("alias", "show", "box@example.com",
                                       "--json")))["mailbox_id"]
    sp.run("alias", "password", "box@example.com")
    assert find_files(sp.data_dir, mailbox_id), "no mailbox file was made"
    if how == "alias":
        sp.run("alias", "remove", "box@example.com")
    else:
        sp.run("domain", "remove", "example.com", "--force")
    assert find_files(sp.data_dir, mailbox_id) == []
