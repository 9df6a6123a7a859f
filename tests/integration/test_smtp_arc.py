"""ARC on forwarded copies (issue 6): the MX checks SPF, DKIM and DMARC of
an inbound message through libunbound against a local DNS server, seals
each forwarded copy with the domain's RSA key (made by `domain add`,
published by `domain dns`), and dkimpy (Debian python3-dkim) verifies the
chain at the destination. SRS reversal is checked end to end."""
import re
import subprocess

import pytest

dkim = pytest.importorskip("dkim")
pytest.importorskip("dns.message")

from test_smtp import DOMAIN, Mx, free_port, wait_for  # noqa: E402

# Not under .test: unbound answers the special-use names of RFC 6761
# itself (NXDOMAIN) without asking the forwarder.
SENDER_DOMAIN = "sender.example.com"


def domain_dns_records(sp, domain=DOMAIN):
    """{selector: record} of the DKIM lines `sealpost domain dns` prints."""
    out = sp.run("domain", "dns", domain).stdout.decode()
    records = {}
    for line in out.splitlines():
        m = re.match(r"^(\S+)\._domainkey\.%s\.\s+3600\s+IN\s+TXT\s+(.*)$" % re.escape(domain), line)
        if m:
            records[m.group(1)] = "".join(re.findall(r'"([^"]*)"', m.group(2)))
    return records


@pytest.fixture(scope="module")
def sender_key(tmp_path_factory):
    """An RSA key of the sending domain (PKCS#1 PEM for dkimpy) and its
    DKIM record."""
    d = tmp_path_factory.mktemp("senderkey")
    path = d / "sender.pem"
    subprocess.run(["openssl", "genrsa", "-traditional", "-out", str(path), "2048"],
                   check=True, capture_output=True)
    pub = subprocess.run(["openssl", "rsa", "-in", str(path), "-pubout"],
                         check=True, capture_output=True).stdout.decode()
    b64 = "".join(l for l in pub.splitlines() if not l.startswith("-----"))
    return path.read_bytes(), f"v=DKIM1; k=rsa; p={b64}"


def signed_message(key, body=b"Hello through the forwarder.\r\n"):
    msg = (b"From: Alice <alice@sender.example.com>\r\nTo: a@ex.test\r\n"
           b"Subject: arc test\r\nDate: Mon, 23 Nov 2026 18:00:00 +0000\r\n"
           b"Message-ID: <arc-1@sender.example.com>\r\n\r\n" + body)
    sig = dkim.sign(msg, b"s1", SENDER_DOMAIN.encode(), key,
                    include_headers=[b"from", b"to", b"subject", b"date", b"message-id"])
    return sig + msg


def dnsfunc_for(records):
    def dnsfunc(name, timeout=5):
        name = name.decode() if isinstance(name, bytes) else name
        rec = records.get(name.rstrip(".").lower())
        return rec.encode() if rec is not None else None
    return dnsfunc


def aar_of(data):
    m = re.search(rb"^ARC-Authentication-Results:(.*?)\r\n(?![ \t])", data, re.S | re.M)
    assert m, data[:2000]
    return re.sub(rb"\s+", b" ", m.group(1)).decode()


@pytest.fixture
def mx(tmp_path, sender_key):
    instance = Mx(tmp_path)
    _, record = sender_key
    instance.dns.records.update({
        (f"s1._domainkey.{SENDER_DOMAIN}", "TXT"): [record],
        (SENDER_DOMAIN, "TXT"): ["v=spf1 ip4:127.0.0.1 -all"],
        (f"_dmarc.{SENDER_DOMAIN}", "TXT"): ["v=DMARC1; p=reject"],
    })
    yield instance
    instance.stop()


def test_domain_add_makes_keys_and_dns_prints_them(mx):
    records = domain_dns_records(mx.sp)
    rsa = [s for s, r in records.items() if "k=rsa" in r]
    ed = [s for s, r in records.items() if "k=ed25519" in r]
    assert len(rsa) == 1 and len(ed) == 1, records
    assert re.fullmatch(r"sp\d{6}", rsa[0]) and ed[0] == rsa[0] + "e"
    # Stable across calls; rotation gives new selectors and keys.
    assert domain_dns_records(mx.sp) == records
    mx.sp.run("domain", "rotate-dkim", DOMAIN)
    rotated = domain_dns_records(mx.sp)
    assert set(rotated) == {rsa[0] + "-2", ed[0] + "-2"}
    assert set(rotated.values()).isdisjoint(records.values())


def test_forward_is_arc_sealed_and_verifies_with_dkimpy(mx, sender_key):
    key, sender_record = sender_key
    mx.alias("a@ex.test", "--forward", "x@dest.test")
    mx.start()
    with mx.smtp() as c:
        assert c.sendmail("alice@sender.example.com", ["a@ex.test"], signed_message(key)) == {}
    got = mx.sink.for_rcpt("x@dest.test")
    assert len(got) == 1
    mail_from, _, data = got[0]
    assert data.startswith(b"ARC-Seal: i=1; cv=none;"), data[:400]
    ours = domain_dns_records(mx.sp)
    records = {f"{sel}._domainkey.{DOMAIN}": rec for sel, rec in ours.items()}
    records[f"s1._domainkey.{SENDER_DOMAIN}"] = sender_record
    cv, results, reason = dkim.arc_verify(data, dnsfunc=dnsfunc_for(records))
    assert cv == b"pass", reason
    aar = aar_of(data)
    assert aar.startswith(" i=1; mx.ex.test;"), aar
    assert "spf=pass smtp.mailfrom=sender.example.com" in aar
    assert "dkim=pass header.d=sender.example.com header.s=s1" in aar
    assert "dmarc=pass header.from=sender.example.com" in aar
    assert "arc=none" in aar
    # The sender's own signature survives the forward.
    assert dkim.verify(data, dnsfunc=dnsfunc_for(records))
    # A changed body breaks the seal for dkimpy.
    broken = data.replace(b"Hello through", b"Hello around", 1)
    cv, _, _ = dkim.arc_verify(broken, dnsfunc=dnsfunc_for(records))
    assert cv == b"fail"
    # And a key that is not ours does not verify it.
    other = dict(records)
    other.update({f"{sel}._domainkey.{DOMAIN}": sender_record for sel in ours})
    cv, _, _ = dkim.arc_verify(data, dnsfunc=dnsfunc_for(other))
    assert cv == b"fail"
    assert mail_from.upper().startswith("SRS0=")


def test_failing_dkim_and_spf_are_recorded(mx, sender_key):
    key, _ = sender_key
    mx.alias("a@ex.test", "--forward", "x@dest.test")
    mx.dns.records[(SENDER_DOMAIN, "TXT")] = ["v=spf1 ip4:192.0.2.1 -all"]
    mx.start()
    tampered = signed_message(key).replace(b"through the", b"past the", 1)
    with mx.smtp() as c:
        assert c.sendmail("alice@sender.example.com", ["a@ex.test"], tampered) == {}
    data = mx.sink.for_rcpt("x@dest.test")[0][2]
    aar = aar_of(data)
    assert "spf=fail smtp.mailfrom=sender.example.com" in aar
    assert "dkim=fail header.d=sender.example.com" in aar
    assert "dmarc=fail" in aar


def test_srs_bounce_reaches_the_original_sender(mx, sender_key):
    key, _ = sender_key
    mx.alias("a@ex.test", "--forward", "x@dest.test")
    mx.start()
    with mx.smtp() as c:
        assert c.sendmail("alice@sender.example.com", ["a@ex.test"], signed_message(key)) == {}
    srs_address = mx.sink.for_rcpt("x@dest.test")[0][0]
    assert srs_address.upper().startswith("SRS0=") and srs_address.endswith("@ex.test")
    bounce = (b"From: MAILER-DAEMON@dest.test\r\nTo: " + srs_address.encode() +
              b"\r\nSubject: Undelivered Mail Returned to Sender\r\n\r\nbounced\r\n")
    with mx.smtp() as c:
        assert c.sendmail("", [srs_address], bounce) == {}
    back = mx.sink.for_rcpt("alice@sender.example.com")
    assert len(back) == 1
    assert back[0][0] in ("", "<>")  # aiosmtpd writes the null sender "<>"
    assert b"bounced" in back[0][2]
    # A forged SRS address (bad hash) is nobody's.
    forged = "SRS0=AAAA" + srs_address[9:]
    with mx.smtp() as c:
        c.ehlo("bounce.test")
        code, _ = c.docmd("MAIL FROM:<>")
        assert code == 250
        code, _ = c.docmd(f"RCPT TO:<{forged}>")
        assert code == 550


def test_forward_sealed_when_dns_is_unavailable(tmp_path, sender_key):
    key, _ = sender_key
    mx = Mx(tmp_path)
    # A closed port on loopback: every look-up fails (libunbound retries
    # before it gives up, so this one message takes a while).
    mx.extra_env["SEALPOST_DNS_RESOLVER"] = f"127.0.0.1@{free_port()}"
    try:
        mx.alias("a@ex.test", "--forward", "x@dest.test")
        mx.start()
        with mx.smtp() as c:
            assert c.sendmail("alice@sender.example.com", ["a@ex.test"], signed_message(key)) == {}
        assert wait_for(lambda: len(mx.sink.for_rcpt("x@dest.test")) == 1)
        data = mx.sink.for_rcpt("x@dest.test")[0][2]
        assert data.startswith(b"ARC-Seal: i=1; cv=none;")
        aar = aar_of(data)
        assert "spf=temperror" in aar and "dkim=temperror" in aar, aar
        records = {f"{sel}._domainkey.{DOMAIN}": rec
                   for sel, rec in domain_dns_records(mx.sp).items()}
        cv, _, reason = dkim.arc_verify(data, dnsfunc=dnsfunc_for(records))
        assert cv == b"pass", reason
    finally:
        mx.stop()
