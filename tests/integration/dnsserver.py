"""A small authoritative DNS server on 127.0.0.1 (UDP, dnspython) for the
tests: libunbound (mailauth's production resolver, setting dns_resolver)
forwards to it, so nothing leaves the machine.

records: {(name, type): [value, ...]} with lower-case names without the
trailing dot; TXT values as plain text (split into 200-byte strings), MX
values (pref, host), A/AAAA/PTR as text (a PTR is keyed by the address).
Names not in the table answer NXDOMAIN; records may be added while it
runs (server.records[...] = [...])."""
import ipaddress
import socket
import threading


class LocalDNS:
    def __init__(self, records=None):
        import dns.message
        import dns.rcode
        import dns.rdatatype
        import dns.rrset
        self._dns = dns
        self.records = dict(records or {})
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.5)
        self.port = self.sock.getsockname()[1]
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @property
    def forwarder(self):
        """The value for dns_resolver (and mailauth-tool's unbound:)."""
        return f"127.0.0.1@{self.port}"

    @staticmethod
    def _rdata_text(rtype, v):
        if rtype == "TXT":
            chunks = [v[i:i + 200] for i in range(0, len(v), 200)] or [""]
            return " ".join('"' + c.replace("\\", "\\\\").replace('"', '\\"') + '"' for c in chunks)
        if rtype == "MX":
            return f"{v[0]} {v[1]}."
        if rtype == "PTR":
            return v + "."
        return v

    def _serve(self):
        dns = self._dns
        while not self.stop_event.is_set():
            try:
                data, addr = self.sock.recvfrom(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            try:
                q = dns.message.from_wire(data)
            except Exception:
                continue
            r = dns.message.make_response(q)
            question = q.question[0]
            name = question.name.to_text(omit_final_dot=True).lower()
            rtype = dns.rdatatype.to_text(question.rdtype)
            if rtype == "PTR":
                labels = name.split(".")
                if name.endswith(".in-addr.arpa"):
                    name = ".".join(reversed(labels[:4]))
                elif name.endswith(".ip6.arpa"):
                    name = str(ipaddress.IPv6Address(int("".join(reversed(labels[:32])), 16)))
            values = self.records.get((name, rtype), [])
            if values:
                r.answer.append(dns.rrset.from_text(
                    question.name, 60, "IN", rtype,
                    *[self._rdata_text(rtype, v) for v in values]))
            elif not any(k[0] == name for k in self.records):
                r.set_rcode(dns.rcode.NXDOMAIN)
            try:
                self.sock.sendto(r.to_wire(), addr)
            except OSError:
                return

    def close(self):
        self.stop_event.set()
        self.thread.join(timeout=5)
        self.sock.close()
