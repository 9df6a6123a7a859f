"""Cross-checks of src/mailauth against independent implementations:
dkimpy (Debian python3-dkim: DKIM and ARC) and pyspf (python3-spf).

The C side runs through build-*/tests/unit/mailauth/mailauth-tool, found
next to SEALPOST_BIN; DNS on both sides comes from the same records (a
table file for ours, a patched lookup for theirs)."""
import base64
import os
import subprocess

import pytest

dkim = pytest.importorskip("dkim")
spf = pytest.importorskip("spf")
nacl_signing = pytest.importorskip("nacl.signing")

from conftest import SEALPOST  # noqa: E402

BUILD = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(SEALPOST))))
TOOL = os.path.join(BUILD, "tests", "unit", "mailauth", "mailauth-tool")

pytestmark = pytest.mark.skipif(not os.path.exists(TOOL), reason="mailauth-tool not built")


def tool(*args, input=None, check=True):
    proc = subprocess.run([TOOL, *args], input=input, capture_output=True, timeout=60)
    if check and proc.returncode != 0:
        raise AssertionError(f"mailauth-tool {args[0]}: {proc.stderr.decode()}")
    return proc


MESSAGES = {
    "plain": b"From: Alice <alice@example.org>\r\nTo: bob@example.net\r\n"
    b"Subject: hello\r\nDate: Mon, 23 Nov 2026 18:00:00 +0000\r\n"
    b"Message-ID: <m1@example.org>\r\n\r\nHi Bob,\r\nsee you.\r\n",
    "folded": b"From: Alice\r\n <alice@example.org>\r\nTo: bob@example.net,\r\n"
    b"\tcarol@example.net\r\nSubject: a very\r\n   folded\t subject  \r\n"
    b"Message-ID: <m2@example.org>\r\n\r\nbody\r\n",
    "trailing_ws": b"From: alice@example.org \r\nSubject:  spaces   \r\n\r\n"
    b"line with trailing space   \r\n\t\r\n  indented\t\tline \r\n\r\n\r\n",
    "empty_body": b"From: alice@example.org\r\nSubject: nothing\r\n\r\n",
    "no_final_crlf": b"From: alice@example.org\r\nSubject: x\r\n\r\nno end",
    "long_lines": b"From: alice@example.org\r\nSubject: "
    + b"s" * 300
    + b"\r\nX-Long: "
    + b"v " * 400
    + b"\r\n\r\n"
    + (b"x" * 990 + b"\r\n") * 5,
    "repeated": b"Received: a\r\nReceived: b\r\nFrom: alice@example.org\r\n"
    b"To: a@example.net\r\nTo: b@example.net\r\n\r\nbody\r\n",
}


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    """Key files and their DNS records: ours (tool keygen) and dkimpy's
    formats (PKCS#1 RSA PEM; Ed25519 as a base64 seed)."""
    d = tmp_path_factory.mktemp("keys")
    out = {}
    for alg in ("rsa", "ed25519"):
        pem = tool("keygen", alg).stdout
        path = d / f"ours-{alg}.pem"
        path.write_bytes(pem)
        out[f"ours-{alg}"] = (str(path), tool("dnsrecord", str(path)).stdout.decode().strip())
    # dkimpy signs with PKCS#1 RSA keys; ours must load them too.
    rsa_path = d / "py-rsa.pem"
    subprocess.run(["openssl", "genrsa", "-traditional", "-out", str(rsa_path), "2048"],
                   check=True, capture_output=True)
    out["py-rsa"] = (str(rsa_path), tool("dnsrecord", str(rsa_path)).stdout.decode().strip())
    sk = nacl_signing.SigningKey.generate()
    out["py-ed25519"] = (
        base64.b64encode(bytes(sk)),
        "v=DKIM1; k=ed25519; p=" + base64.b64encode(bytes(sk.verify_key)).decode(),
    )
    return out


def dns_records(keys):
    return {
        f"{name}._domainkey.example.org": rec for name, (_, rec) in keys.items()
    }


def dnsfunc_for(records):
    def dnsfunc(name, timeout=5):
        name = name.decode() if isinstance(name, bytes) else name
        rec = records.get(name.rstrip("."))
        return rec.encode() if rec is not None else None
    return dnsfunc


def table_file(tmp_path, records, extra=""):
    path = tmp_path / "dns.txt"
    lines = [f"{name} TXT {value}" for name, value in records.items()]
    path.write_text("\n".join(lines) + "\n" + extra)
    return str(path)


def our_verify(tmp_path, records, msg):
    out = tool("verify", table_file(tmp_path, records), input=msg).stdout.decode()
    return out.split()[0], out


@pytest.mark.parametrize("alg", ["rsa", "ed25519"])
@pytest.mark.parametrize("canon", ["relaxed/relaxed", "simple/simple", "relaxed/simple"])
@pytest.mark.parametrize("name", sorted(MESSAGES))
def test_our_dkim_signature_verifies_with_dkimpy(tmp_path, keys, alg, canon, name):
    key_path, _ = keys[f"ours-{alg}"]
    signed = tool("sign", key_path, "example.org", f"ours-{alg}", canon,
                  input=MESSAGES[name]).stdout
    records = dns_records(keys)
    assert dkim.verify(signed, dnsfunc=dnsfunc_for(records)), signed[:600]
    assert our_verify(tmp_path, records, signed)[0] == "pass"
    # Tampering is noticed by both.
    tampered = signed.replace(b"alice@example.org", b"mallory@example.org", 1)
    assert not dkim.verify(tampered, dnsfunc=dnsfunc_for(records))
    assert our_verify(tmp_path, records, tampered)[0] == "fail"


@pytest.mark.parametrize("alg", ["rsa", "ed25519"])
@pytest.mark.parametrize("canon", [b"relaxed/relaxed", b"simple/simple", b"simple/relaxed"])
@pytest.mark.parametrize("name", sorted(MESSAGES))
def test_dkimpy_signature_verifies_with_ours(tmp_path, keys, alg, canon, name):
    key, _ = keys[f"py-{alg}"]
    if alg == "rsa":
        with open(key, "rb") as f:
            key = f.read()
    hc, bc = canon.split(b"/")
    sig = dkim.sign(MESSAGES[name], f"py-{alg}".encode(), b"example.org", key,
                    canonicalize=(hc, bc),
                    signature_algorithm=b"rsa-sha256" if alg == "rsa" else b"ed25519-sha256")
    signed = sig + MESSAGES[name]
    records = dns_records(keys)
    result, detail = our_verify(tmp_path, records, signed)
    assert result == "pass", detail
    tampered = signed.replace(b"From:", b"From: x", 1)
    assert our_verify(tmp_path, records, tampered)[0] == "fail"


def test_dkim_missing_key_is_not_pass(tmp_path, keys):
    key_path, _ = keys["ours-rsa"]
    signed = tool("sign", key_path, "example.org", "nosuchkey",
                  input=MESSAGES["plain"]).stdout
    result, _ = our_verify(tmp_path, dns_records(keys), signed)
    assert result == "permerror"
    assert not dkim.verify(signed, dnsfunc=dnsfunc_for(dns_records(keys)))


# ARC


def arc_seal(tmp_path, keys, key_name, domain, msg):
    records = arc_records(keys, "fwd1.test", "fwd2.test", "py1.test")
    dns = table_file(tmp_path, records, "example.org TXT v=spf1 ip4:192.0.2.0/24 -all\n")
    key_path, _ = keys[key_name]
    return tool("arc-seal", key_path, domain, key_name, f"mx.{domain}", dns,
                "192.0.2.10", "mail.example.org", "alice@example.org", input=msg).stdout


def arc_records(keys, *domains):
    records = dns_records(keys)
    for d in domains:
        records.update({f"{k}._domainkey.{d}": v for k, (_, v) in keys.items()})
    return records


# ARC seals with RSA only: RFC 8617 receivers (and dkimpy) know no other
# algorithm, and mailauth_arc_seal refuses an Ed25519 key.
def test_arc_refuses_ed25519(tmp_path, keys):
    records = arc_records(keys, "fwd1.test")
    dns = table_file(tmp_path, records)
    proc = tool("arc-seal", keys["ours-ed25519"][0], "fwd1.test", "s", "mx", dns,
                "192.0.2.10", "h", "a@example.org", input=MESSAGES["plain"], check=False)
    assert proc.returncode == 2 and b"rsa-sha256" in proc.stderr


@pytest.mark.parametrize("alg", ["rsa"])
@pytest.mark.parametrize("name", ["plain", "folded", "trailing_ws", "empty_body", "long_lines"])
def test_our_arc_chain_verifies_with_dkimpy(tmp_path, keys, alg, name):
    records = arc_records(keys, "fwd1.test", "fwd2.test")
    once = arc_seal(tmp_path, keys, f"ours-{alg}", "fwd1.test", MESSAGES[name])
    cv, results, reason = dkim.arc_verify(once, dnsfunc=dnsfunc_for(records))
    assert cv == b"pass", reason
    twice = arc_seal(tmp_path, keys, "ours-rsa", "fwd2.test", once)
    assert twice.startswith(b"ARC-Seal: i=2; cv=pass;")
    cv, results, reason = dkim.arc_verify(twice, dnsfunc=dnsfunc_for(records))
    assert cv == b"pass", reason
    out = tool("arc-verify", table_file(tmp_path, records), input=twice).stdout.decode()
    assert out.startswith("pass i=2"), out
    # A changed body breaks the newest AMS for both.
    broken = twice.replace(b"\r\n\r\n", b"\r\n\r\nextra\r\n", 1)
    cv, _, _ = dkim.arc_verify(broken, dnsfunc=dnsfunc_for(records))
    assert cv == b"fail"
    out = tool("arc-verify", table_file(tmp_path, records), input=broken).stdout.decode()
    assert out.startswith("fail"), out


@pytest.mark.parametrize("alg", ["rsa"])
def test_dkimpy_arc_chain_verifies_with_ours_and_extends(tmp_path, keys, alg):
    records = arc_records(keys, "py1.test", "fwd2.test")
    key, _ = keys[f"py-{alg}"]
    if alg == "rsa":
        with open(key, "rb") as f:
            key = f.read()
    msg = (b"Authentication-Results: mx.py1.test; spf=pass smtp.mailfrom=example.org\r\n"
           + MESSAGES["folded"])
    arc_set = dkim.arc_sign(msg, f"py-{alg}".encode(), b"py1.test", key, b"mx.py1.test",
                            signature_algorithm=b"rsa-sha256" if alg == "rsa" else b"ed25519-sha256")
    assert len(arc_set) == 3
    sealed = b"".join(arc_set) + msg
    out = tool("arc-verify", table_file(tmp_path, records), input=sealed).stdout.decode()
    assert out.startswith("pass i=1"), out
    # Our seal on top of dkimpy's: dkimpy accepts the two-set chain.
    ours = arc_seal(tmp_path, keys, f"ours-{alg}", "fwd2.test", sealed)
    assert ours.startswith(b"ARC-Seal: i=2; cv=pass;")
    cv, _, reason = dkim.arc_verify(ours, dnsfunc=dnsfunc_for(records))
    assert cv == b"pass", reason


# SPF


ZONE = {
    "example.org": {"TXT": ["v=spf1 ip4:192.0.2.0/24 include:_spf.example.net -all", "unrelated"]},
    "_spf.example.net": {"TXT": ["v=spf1 ip6:2001:db8::/32 a:mail.example.net ~all"]},
    "mail.example.net": {"A": ["198.51.100.7"]},
    "mx.example.com": {"TXT": ["v=spf1 mx/24 mx:other.example.com -all"], "MX": [(10, "mx1.example.com"), (20, "mx2.example.com")]},
    "mx1.example.com": {"A": ["203.0.113.10"]},
    "mx2.example.com": {"A": ["203.0.115.10"], "AAAA": ["2001:db8:2::10"]},
    "other.example.com": {"MX": [(5, "mx3.example.com")]},
    "mx3.example.com": {"A": ["203.0.116.1"]},
    "macro.test": {"TXT": ["v=spf1 exists:%{ir}.%{l1r-}.lp._spf.%{d} exists:%{i}.%{v}.%{h}.ip.macro.test -all"]},
    "5.2.0.192.strong.lp._spf.macro.test": {"A": ["127.0.0.2"]},
    "192.0.2.9.in-addr.helo.example.ip.macro.test": {"A": ["127.0.0.2"]},
    "loop-a.test": {"TXT": ["v=spf1 include:loop-b.test -all"]},
    "loop-b.test": {"TXT": ["v=spf1 include:loop-a.test -all"]},
    "two.test": {"TXT": ["v=spf1 -all", "v=spf1 +all"]},
    "redir.test": {"TXT": ["v=spf1 redirect=example.org"]},
    "redir-none.test": {"TXT": ["v=spf1 redirect=nowhere.test"]},
    "ptr.test": {"TXT": ["v=spf1 ptr -all"]},
    "void.test": {"TXT": ["v=spf1 a:n1.void.test a:n2.void.test a:n3.void.test +all"]},
    "void2.test": {"TXT": ["v=spf1 a:n1.void.test a:n2.void.test ?all"]},
    "bad.test": {"TXT": ["v=spf1 foo:bar -all"]},
    "badcidr.test": {"TXT": ["v=spf1 ip4:192.0.2.0/33 -all"]},
    "soft.test": {"TXT": ["v=spf1 ~all"]},
    "neutral.test": {"TXT": ["v=spf1 ?all"]},
    "nomatch.test": {"TXT": ["v=spf1 ip4:10.0.0.1"]},
    "incl-none.test": {"TXT": ["v=spf1 include:nowhere.test -all"]},
    "a-dual.test": {"TXT": ["v=spf1 a/24//64 -all"], "A": ["192.0.2.200"], "AAAA": ["2001:db8:5::1"]},
    "exists6.test": {"TXT": ["v=spf1 exists:%{ir}.x.exists6.test -all"]},
    "upper.test": {"TXT": ["v=spf1 exists:%{L}.up.upper.test -all"]},
    "Strong-Bad.up.upper.test": {"A": ["127.0.0.2"]},
    "mx-many.test": {"TXT": ["v=spf1 mx -all"], "MX": [(i, f"m{i}.mx-many.test") for i in range(11)]},
}
ZONE["192.0.2.77"] = {"PTR": ["host.ptr.test"]}
ZONE["host.ptr.test"] = {"A": ["192.0.2.77"]}
# Outside the names and reverse zones that unbound answers locally
# (.test, the documentation networks), for the libunbound tests.
ZONE["ptr.example.com"] = {"TXT": ["v=spf1 ptr -all"]}
ZONE["5.6.7.8"] = {"PTR": ["other.example.net", "host.ptr.example.com"]}
ZONE["host.ptr.example.com"] = {"A": ["5.6.7.8"]}
ZONE["macro.example.com"] = {"TXT": ["v=spf1 exists:%{ir}.%{l1r-}.lp._spf.%{d} -all"]}
ZONE["8.7.6.5.strong.lp._spf.macro.example.com"] = {"A": ["127.0.0.2"]}
ZONE["two.example.com"] = {"TXT": ["v=spf1 -all", "v=spf1 +all"]}

# Eleven includes: one more than the limit.
ZONE["limit.test"] = {"TXT": ["v=spf1 " + " ".join(f"include:j{i}.limit.test" for i in range(11)) + " -all"]}
for i in range(11):
    ZONE[f"j{i}.limit.test"] = {"TXT": ["v=spf1 ip4:192.0.2.250 ?all" if i < 10 else "v=spf1 +all"]}
ZONE["limit10.test"] = {"TXT": ["v=spf1 " + " ".join(f"include:i{i}.limit.test" for i in range(10)) + " -all"]}
for i in range(11):
    ZONE[f"i{i}.limit.test"] = {"TXT": ["v=spf1 ip4:192.0.2.250 ?all" if i < 9 else "v=spf1 +all"]}

SPF_CASES = [
    ("192.0.2.9", "a@example.org"),
    ("192.0.2.9", "strong-bad@macro.test"),
    ("192.0.2.5", "strong-bad@macro.test"),
    ("192.0.2.6", "strong-bad@macro.test"),
    ("2001:db8::5", "a@example.org"),
    ("198.51.100.7", "a@example.org"),
    ("198.51.100.8", "a@example.org"),
    ("203.0.113.99", "x@mx.example.com"),
    ("203.0.115.1", "x@mx.example.com"),
    ("203.0.116.1", "x@mx.example.com"),
    ("2001:db8:2::10", "x@mx.example.com"),
    ("203.0.114.1", "x@mx.example.com"),
    ("192.0.2.5", "x@loop-a.test"),
    ("192.0.2.5", "x@two.test"),
    ("192.0.2.5", "x@redir.test"),
    ("198.51.100.99", "x@redir.test"),
    ("192.0.2.5", "x@redir-none.test"),
    ("192.0.2.77", "x@ptr.test"),
    ("192.0.2.78", "x@ptr.test"),
    ("192.0.2.5", "x@void.test"),
    ("192.0.2.5", "x@void2.test"),
    ("192.0.2.5", "x@bad.test"),
    ("192.0.2.5", "x@badcidr.test"),
    ("192.0.2.5", "x@soft.test"),
    ("192.0.2.5", "x@neutral.test"),
    ("192.0.2.5", "x@nomatch.test"),
    ("192.0.2.5", "x@incl-none.test"),
    ("192.0.2.5", "x@nowhere.test"),
    ("192.0.2.1", "x@a-dual.test"),
    ("192.0.3.1", "x@a-dual.test"),
    ("2001:db8:5::ffff", "x@a-dual.test"),
    ("2001:db8:6::1", "x@a-dual.test"),
    ("2001:db8::1", "x@exists6.test"),
    ("192.0.2.5", "Strong-Bad@upper.test"),
    ("192.0.2.5", "x@limit.test"),
    ("192.0.2.5", "x@limit10.test"),
    ("192.0.2.5", "x@mx-many.test"),
    ("5.6.7.8", "x@ptr.example.com"),
    ("5.6.7.9", "x@ptr.example.com"),
    ("5.6.7.8", "strong-bad@macro.example.com"),
    ("5.6.7.8", "weak@macro.example.com"),
    ("5.6.7.8", "x@two.example.com"),
]


def zone_table(tmp_path):
    lines = []
    for name, rrs in ZONE.items():
        for rtype, values in rrs.items():
            for v in values:
                if rtype == "MX":
                    lines.append(f"{name} MX {v[0]} {v[1]}")
                else:
                    lines.append(f"{name} {rtype} {v}")
    path = tmp_path / "zone.txt"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def pyspf_lookup(name, qtype, strict=True, timeout=None):
    name = name.rstrip(".")
    if qtype == "PTR":
        # x.y.z.w.in-addr.arpa -> w.z.y.x
        labels = name.split(".")
        if name.endswith(".in-addr.arpa"):
            key = ".".join(reversed(labels[:4]))
        else:
            import ipaddress
            nibbles = "".join(reversed(labels[:32]))
            key = str(ipaddress.IPv6Address(int(nibbles, 16)))
        return [((name, "PTR"), v) for v in ZONE.get(key, {}).get("PTR", [])]
    for zname, rrs in ZONE.items():
        if zname.lower() == name.lower():
            out = []
            for v in rrs.get(qtype, []):
                if qtype == "TXT":
                    out.append(((name, qtype), [v.encode()]))
                else:
                    out.append(((name, qtype), v))
            return out
    return []


@pytest.mark.parametrize("ip,sender", SPF_CASES)
def test_spf_agrees_with_pyspf(tmp_path, monkeypatch, ip, sender):
    monkeypatch.setattr(spf, "DNSLookup", pyspf_lookup)
    theirs = spf.query(i=ip, s=sender, h="helo.example").check()[0]
    out = tool("spf", zone_table(tmp_path), ip, "helo.example", sender).stdout.decode()
    ours = out.split()[0]
    assert ours == theirs, f"ours: {out} pyspf: {theirs}"


def test_spf_limits_are_real(tmp_path):
    """The limit cases fail for the reason the RFC gives, not by chance."""
    table = zone_table(tmp_path)
    out = tool("spf", table, "192.0.2.5", "h", "x@limit.test").stdout.decode()
    assert out.startswith("permerror terms=11 ") and "too many DNS lookups" in out
    out = tool("spf", table, "192.0.2.5", "h", "x@limit10.test").stdout.decode()
    assert out.startswith("pass terms=10 ")
    out = tool("spf", table, "192.0.2.5", "h", "x@void.test").stdout.decode()
    assert "voids=3" in out and "too many void lookups" in out
    out = tool("spf", table, "192.0.2.5", "h", "x@void2.test").stdout.decode()
    assert out.startswith("neutral") and "voids=2" in out


# SRS


def test_srs_roundtrip_and_tamper():
    key = "11" * 32
    fwd = tool("srs-forward", key, "Alice@Example.org", "fwd.test").stdout.decode().strip()
    assert fwd.startswith("SRS0=") and fwd.endswith("=Example.org=Alice@fwd.test")
    back = tool("srs-reverse", key, fwd).stdout.decode().strip()
    assert back == "Alice@Example.org"
    bad = fwd.replace("Alice", "Mallory")
    proc = tool("srs-reverse", key, bad, check=False)
    assert proc.returncode == 2 and b"hash" in proc.stderr
    proc = tool("srs-reverse", "22" * 32, fwd, check=False)
    assert proc.returncode == 2
    env_old = dict(os.environ)
    try:
        os.environ["SEALPOST_CLOCK_OFFSET"] = str(11 * 86400)
        proc = tool("srs-reverse", key, fwd, check=False)
    finally:
        os.environ.clear()
        os.environ.update(env_old)
    assert proc.returncode == 2 and b"expired" in proc.stderr


# The production resolver (libunbound) against a small DNS server that
# serves the same records over UDP on loopback.


@pytest.fixture(scope="module")
def dns_server(keys):
    pytest.importorskip("dns.message")
    from dnsserver import LocalDNS

    records = {}
    for name, rrs in ZONE.items():
        for rtype, values in rrs.items():
            for v in values:
                records.setdefault((name.lower(), rtype), []).append(v)
    for name, value in arc_records(keys, "fwd1.example.net").items():
        records.setdefault((name.lower(), "TXT"), []).append(value)
    server = LocalDNS(records)
    yield f"unbound:{server.forwarder}"
    server.close()


UNBOUND_SPF_CASES = [
    ("192.0.2.9", "a@example.org", "pass"),
    ("198.51.100.7", "a@example.org", "pass"),
    ("2001:db8::5", "a@example.org", "pass"),
    ("198.51.100.8", "a@example.org", "fail"),
    ("203.0.113.99", "x@mx.example.com", "pass"),
    ("2001:db8:2::10", "x@mx.example.com", "pass"),
    ("5.6.7.8", "x@ptr.example.com", "pass"),
    ("5.6.7.9", "x@ptr.example.com", "fail"),
    ("192.0.2.5", "x@nowhere.example.com", "none"),
    ("5.6.7.8", "x@two.example.com", "permerror"),
    ("5.6.7.8", "strong-bad@macro.example.com", "pass"),
    ("5.6.7.8", "weak@macro.example.com", "fail"),
]


@pytest.mark.parametrize("ip,sender,want", UNBOUND_SPF_CASES)
def test_spf_through_unbound(dns_server, ip, sender, want):
    out = tool("spf", dns_server, ip, "helo.example", sender).stdout.decode()
    assert out.split()[0] == want, out


@pytest.mark.parametrize("alg", ["rsa", "ed25519"])
def test_dkim_and_arc_through_unbound(dns_server, keys, alg):
    key_path, _ = keys[f"ours-{alg}"]
    signed = tool("sign", key_path, "example.org", f"ours-{alg}",
                  input=MESSAGES["long_lines"]).stdout
    out = tool("verify", dns_server, input=signed).stdout.decode()
    assert out.startswith("pass d=example.org"), out
    sealed = tool("arc-seal", keys["ours-rsa"][0], "fwd1.example.net", "ours-rsa",
                  "mx.fwd1.example.net",
                  dns_server, "192.0.2.10", "mail.example.org", "alice@example.org",
                  input=signed).stdout
    # The AAR records what was verified through the real resolver.
    assert b"spf=pass smtp.mailfrom=example.org" in sealed
    assert b"dkim=pass header.d=example.org" in sealed
    out = tool("arc-verify", dns_server, input=sealed).stdout.decode()
    assert out.startswith("pass i=1"), out
