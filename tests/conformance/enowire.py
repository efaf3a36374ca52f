"""tests/conformance/enowire.py — a hand-made TCP peer for tund, on the wire.

The peer lives on the kernel's side of a tund's TUN device (tests/integ/lib.sh,
topo_one): it reads the IP packets tund writes to the TUN with an AF_PACKET
socket bound to the device, and writes its own packets (built with scapy) to
the same device, so they go straight to tund, past the kernel's routing and
firewall.  The test drops the kernel's own RSTs out of the TUN (iptables), so
the kernel, which owns the peer's address, does not interfere.

Everything here is bounded by timeouts; failures raise Fail with a message.
"""
import os
import random
import select
import struct
import socket
import subprocess
import sys
import threading
import time

from scapy.all import IP, IPv6, TCP, Raw, conf  # noqa: E402
from scapy.layers.inet import in4_chksum  # noqa: E402
from scapy.layers.inet6 import in6_chksum  # noqa: E402

conf.verb = 0

ETH_P_ALL = 0x0003
ETH_P_IP = 0x0800
ETH_P_IPV6 = 0x86DD
PACKET_HOST = 0            # sll_pkttype of a packet tund wrote (kernel receives it)

ENO = 69
FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10


class Fail(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise Fail(msg)


def hx(b):
    return b.hex(" ") if b else "(none)"


# ---- TCP options, from the exact bytes on the wire ----------------------------------

def tcp_raw(pkt):
    """the TCP header + payload bytes of a scapy packet, as received"""
    return bytes(pkt[TCP])


def tcp_opt_bytes(pkt):
    t = pkt[TCP]
    raw = tcp_raw(pkt)
    return raw[20:t.dataofs * 4]


def parse_opts(b):
    """list of (kind, full option bytes); NOP and EOL appear as one byte.
    Raises Fail on an option that runs past the header."""
    out = []
    i = 0
    while i < len(b):
        k = b[i]
        if k in (0, 1):
            out.append((k, b[i:i + 1]))
            i += 1
            if k == 0:
                # EOL: the rest must be padding
                out.append((-1, b[i:]))
                break
            continue
        check(i + 1 < len(b), "TCP option kind %d without a length byte: %s" % (k, hx(b)))
        n = b[i + 1]
        check(n >= 2 and i + n <= len(b), "TCP option kind %d with bad length %d: %s" % (k, n, hx(b)))
        out.append((k, b[i:i + n]))
        i += n
    return out


def eno_opts(pkt):
    """every ENO option (kind, length and contents) in the segment"""
    return [o for k, o in parse_opts(tcp_opt_bytes(pkt)) if k == ENO]


def non_eno_kinds(pkt):
    return [k for k, o in parse_opts(tcp_opt_bytes(pkt)) if k not in (ENO, 0, 1, -1)]


def flags_str(pkt):
    f = int(pkt[TCP].flags)
    s = "".join(c for bit, c in ((SYN, "S"), (ACK, "A"), (PSH, "P"), (FIN, "F"), (RST, "R")) if f & bit)
    return s or "."


def describe(pkt):
    t = pkt[TCP]
    return "%s seq=%d ack=%d len=%d opts=[%s]" % (flags_str(pkt), t.seq, t.ack, len(bytes(t.payload)),
                                                  hx(tcp_opt_bytes(pkt)))


# ---- the TUN device ---------------------------------------------------------------------

class Tun:
    def __init__(self, ifname):
        self.ifname = ifname
        self.s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        self.s.bind((ifname, 0))
        self.s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)

    def send(self, pkt):
        raw = bytes(pkt)
        self.s.sendto(raw, (self.ifname, ETH_P_IPV6 if raw[0] >> 4 == 6 else ETH_P_IP))

    def recv(self, timeout):
        """next TCP packet tund wrote, or None at the deadline"""
        end = time.monotonic() + timeout
        while True:
            left = end - time.monotonic()
            if left <= 0:
                return None
            r, _, _ = select.select([self.s], [], [], left)
            if not r:
                return None
            data, addr = self.s.recvfrom(65535)
            if addr[2] != PACKET_HOST or not data:
                continue
            v = data[0] >> 4
            p = IP(data) if v == 4 else IPv6(data) if v == 6 else None
            if p is not None and TCP in p:
                return p


# ---- a TCP connection played by hand ---------------------------------------------------

class Flow:
    """One connection between the peer (me) and tund's lwIP (them)."""

    def __init__(self, tun, me, them, myport, theirport, log):
        self.tun = tun
        self.me, self.them = me, them
        self.myport, self.theirport = myport, theirport
        self.v6 = ":" in me
        self.iss = random.randrange(1 << 32)
        self.snd_nxt = self.iss
        self.rcv_nxt = None
        self.log = log
        self.seen = []            # every segment tund sent on this flow
        self.sent = []            # every segment we sent
        self.pending = []         # received but not consumed yet

    def build(self, flags, seq=None, ack=None, opts=(), payload=b"", window=65535):
        """a segment from us; opts is a scapy option list, or the exact option
        bytes (padded with EOL to a multiple of 4, lengths NOT checked)"""
        ip = IPv6(src=self.me, dst=self.them) if self.v6 else IP(src=self.me, dst=self.them)
        seq = self.snd_nxt if seq is None else seq
        ack = (self.rcv_nxt or 0) if ack is None else ack
        if isinstance(opts, (bytes, bytearray)):
            ob = bytes(opts) + b"\x00" * (-len(opts) % 4)
            check(len(ob) <= 40, "more than 40 bytes of TCP options")
            hdr = struct.pack("!HHIIBBHHH", self.myport, self.theirport, seq, ack,
                              (20 + len(ob)) // 4 << 4, flags, window, 0, 0) + ob
            seg = hdr + payload
            ck = in6_chksum(socket.IPPROTO_TCP, ip, seg) if self.v6 else \
                in4_chksum(socket.IPPROTO_TCP, ip, seg)
            seg = seg[:16] + struct.pack("!H", ck) + seg[18:]
            if self.v6:
                ip.nh = socket.IPPROTO_TCP
            else:
                ip.proto = socket.IPPROTO_TCP
            p = ip / Raw(seg)
        else:
            p = ip / TCP(sport=self.myport, dport=self.theirport, flags=flags, seq=seq, ack=ack,
                         window=window, options=list(opts))
            if payload:
                p = p / Raw(payload)
        return p.__class__(bytes(p))       # checksums and lengths filled in

    def send(self, flags, seq=None, ack=None, opts=(), payload=b"", advance=True):
        p = self.build(flags, seq, ack, opts, payload)
        self.tun.send(p)
        self.sent.append(p)
        self.log("  -> %s%s" % (describe(p), (" data=%r" % payload[:40]) if payload else ""))
        if advance and seq is None:
            n = len(payload) + (1 if flags & (SYN | FIN) else 0)
            self.snd_nxt = (self.snd_nxt + n) & 0xffffffff
        return p

    def mine(self, p):
        t = p[TCP]
        src = p[IPv6].src if self.v6 and IPv6 in p else p[IP].src if IP in p else None
        return (t.sport == self.theirport and t.dport == self.myport and src is not None
                and socket.inet_pton(socket.AF_INET6 if self.v6 else socket.AF_INET, src)
                == socket.inet_pton(socket.AF_INET6 if self.v6 else socket.AF_INET, self.them))

    def recv(self, timeout, what="a segment"):
        """next segment tund sent on this flow; Fail at the deadline"""
        if self.pending:
            return self.pending.pop(0)
        end = time.monotonic() + timeout
        while True:
            left = end - time.monotonic()
            p = self.tun.recv(max(left, 0)) if left > 0 else None
            if p is None:
                raise Fail("no %s from tund within %.0f s" % (what, timeout))
            if self.mine(p):
                self.seen.append(p)
                payload = bytes(p[TCP].payload)
                self.log("  <- %s%s" % (describe(p), (" data=%r" % payload[:40]) if payload else ""))
                return p

    def recv_opt(self, timeout):
        try:
            return self.recv(timeout)
        except Fail:
            return None


def wait_syn(tun, them, theirport_any, myport, timeout, log):
    """the first SYN tund sends to (me, myport): returns the packet"""
    end = time.monotonic() + timeout
    while True:
        left = end - time.monotonic()
        check(left > 0, "no SYN from tund to port %d within %.0f s" % (myport, timeout))
        p = tun.recv(left)
        if p is None:
            continue
        t = p[TCP]
        if t.dport == myport and int(t.flags) & (SYN | ACK) == SYN:
            log("  <- %s" % describe(p))
            return p


# ---- the program under test -------------------------------------------------------------

class Prog:
    """A program under enorun; its stdout is collected as 'key: value' lines."""

    def __init__(self, argv, log, name="prog"):
        self.argv = argv
        self.log = log
        self.name = name
        self.lines = []
        self.cv = threading.Condition()
        self.p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.t = threading.Thread(target=self._reader, daemon=True)
        self.t.start()

    def _reader(self):
        for raw in self.p.stdout:
            line = raw.decode(errors="replace").rstrip("\n")
            with self.cv:
                self.lines.append(line)
                self.cv.notify_all()
        with self.cv:
            self.lines.append(None)      # EOF marker
            self.cv.notify_all()

    def wait_line(self, prefix, timeout):
        end = time.monotonic() + timeout
        with self.cv:
            while True:
                for ln in self.lines:
                    if ln is not None and ln.startswith(prefix):
                        return ln
                if None in self.lines:
                    raise Fail("%s ended without a line '%s...': %s" % (self.name, prefix, self.text()))
                left = end - time.monotonic()
                if left <= 0:
                    raise Fail("%s printed no line '%s...' within %.0f s: %s" % (self.name, prefix, timeout,
                                                                                 self.text()))
                self.cv.wait(left)

    def finish(self, timeout):
        try:
            rc = self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
            raise Fail("%s did not finish within %.0f s: %s" % (self.name, timeout, self.text()))
        self.t.join(5)
        self.log("  %s exited %d:\n%s" % (self.name, rc, "\n".join("    | " + ln for ln in self.lines
                                                                  if ln is not None)))
        return rc

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()

    def text(self):
        return " / ".join(ln for ln in self.lines if ln is not None)

    def value(self, key):
        for ln in self.lines:
            if ln is not None and ln.startswith(key + ": "):
                return ln[len(key) + 2:]
        return None


# ---- running cases ----------------------------------------------------------------------

class Runner:
    def __init__(self):
        self.verbose = bool(os.environ.get("ENOWIRE_VERBOSE"))
        self.buf = []
        self.failed = []

    def log(self, msg):
        self.buf.append(msg)
        if self.verbose:
            print(msg, flush=True)

    def run(self, name, fn, *args):
        self.buf = []
        t0 = time.monotonic()
        print("case %s ..." % name, flush=True)
        try:
            fn(self, *args)
        except Exception as e:      # noqa: BLE001 — a crash in a case fails that case
            if not isinstance(e, Fail):
                import traceback
                self.buf.append(traceback.format_exc())
            if not self.verbose:
                print("\n".join(self.buf), flush=True)
            print("FAIL case %s: %s" % (name, e), flush=True)
            self.failed.append("%s: %s" % (name, e))
            return False
        print("  ok (%.1f s)" % (time.monotonic() - t0), flush=True)
        return True

    def exit(self):
        if self.failed:
            print("FAILED: " + " | ".join(self.failed), flush=True)
            sys.exit(1)
        print("all cases passed", flush=True)
        sys.exit(0)


def lines_of(text):
    return text.splitlines()
