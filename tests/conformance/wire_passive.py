#!/usr/bin/python3
"""tests/conformance/wire_passive.py — tund as the PASSIVE opener, against a
hand-made active opener (RFC 8547 §4.1, §4.2, §4.4, §4.6, §4.7).

A program under enorun (tests/progs/eno_probe server) listens behind tund A;
this script sends it SYNs from the kernel's address of the TUN.  Run inside
the test namespace by tests/integ/t_eno_wire_passive.sh.

Environment: ENORUN, ENOCTL, PROBE, TUN_A, SOCK_A, HOST4_A, LWIP4_A, HOST6_A,
LWIP6_A.

Usage: wire_passive.py CASE...   (no argument: every case)
"""
import json
import os
import random
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from enowire import (ACK, ENO, FIN, PSH, RST, SYN, TCP, Fail, Flow, Prog, Runner, Tun,  # noqa: E402
                     check, describe, eno_opts, hx)

E = os.environ
MSS = b"\x02\x04\x05\xb4"
WS = b"\x01\x03\x03\x07"     # NOP + window scale 7, as Linux and lwIP send it


def payload(p):
    return bytes(p[TCP].payload)


class Server:
    """eno_probe server PORT under enorun (one connection, echo)"""

    def __init__(self, r, enorun_args=(), probe_args=()):
        self.r = r
        self.port = random.randrange(20000, 30000)
        argv = [E["ENORUN"], "--socket", E["SOCK_A"], *enorun_args, "--", E["PROBE"], *probe_args,
                "server", str(self.port)]
        self.prog = Prog(argv, r.log, "server")
        self.prog.wait_line("listening", 20)

    def status(self):
        """tund's status entry of the accepted connection"""
        out = subprocess.run([E["ENOCTL"], "--socket", E["SOCK_A"], "status", "--json"], capture_output=True,
                             timeout=15).stdout.decode()
        for e in json.loads(out):
            if e["kind"] == "stream" and e["local"].endswith(":%d" % self.port):
                self.r.log("  enoctl: %s" % e)
                return e
        raise Fail("no connection to port %d in enoctl status: %s" % (self.port, out))

    def finish(self, timeout=20):
        return self.prog.finish(timeout)

    def kill(self):
        self.prog.kill()

    def value(self, k):
        return self.prog.value(k)


def connect(r, srv, syn_opts, syn_payload=b"", v6=False):
    """send our SYN (exact option bytes), return (flow, tund's SYN-ACK)"""
    me, them = (E["HOST6_A"], E["LWIP6_A"]) if v6 else (E["HOST4_A"], E["LWIP4_A"])
    f = Flow(Tun(E["TUN_A"]), me, them, random.randrange(40000, 60000), srv.port, r.log)
    f.send(SYN, opts=syn_opts, payload=syn_payload, ack=0, advance=False)
    f.snd_nxt = (f.iss + 1) & 0xffffffff         # SYN data (if any) is not ours to count
    p = f.recv(10, "SYN-ACK")
    check(int(p[TCP].flags) & (SYN | ACK | RST) == SYN | ACK, "expected a SYN-ACK, got %s" % describe(p))
    check(p[TCP].ack == f.snd_nxt, "SYN-ACK acknowledges %d, expected our ISN+1 = %d%s" %
          (p[TCP].ack, f.snd_nxt, " (SYN data must not be acknowledged, RFC 8547 §4.7)" if syn_payload else ""))
    f.rcv_nxt = (p[TCP].seq + 1) & 0xffffffff
    return f, p


def talk(f, text, ack_opts=b"", data_opts=b"", srv=None):
    """third segment (pure ACK, with ack_opts), our data; once tund has
    acknowledged the data, its status entry of the connection (if srv); then
    our FIN, tund's echo and FIN, which we acknowledge.
    Returns (tund's segments, status entry)."""
    f.send(ACK, opts=ack_opts)
    f.send(ACK | PSH, opts=data_opts, payload=text)
    segs = []
    end = time.monotonic() + 15
    while True:
        left = end - time.monotonic()
        check(left > 0, "tund did not acknowledge our data within 15 s")
        p = f.recv(left, "ACK of our data")
        segs.append(p)
        check(not int(p[TCP].flags) & RST, "tund reset the connection: %s" % describe(p))
        check(not payload(p) and not int(p[TCP].flags) & FIN, "tund sent data or FIN before our FIN: %s" %
              describe(p))
        if p[TCP].ack == f.snd_nxt:
            break
    st = srv.status() if srv else None
    f.send(ACK | FIN, opts=data_opts)
    got = recv_until_fin(f, "echo", segs)
    check(got == text, "tund echoed %r, expected %r" % (got, text))
    return segs, st


def recv_until_fin(f, what, segs=None):
    """tund's in-order data up to its FIN, each segment acknowledged; every
    segment seen is appended to segs"""
    got = b""
    end = time.monotonic() + 15
    fin = False
    while not fin:
        left = end - time.monotonic()
        check(left > 0, "no %s + FIN from tund within 15 s (got %r)" % (what, got))
        p = f.recv(left, what)
        if segs is not None:
            segs.append(p)
        t = p[TCP]
        check(not int(t.flags) & RST, "%s: tund reset the connection: %s" % (what, describe(p)))
        pl = payload(p)
        if t.seq == f.rcv_nxt and (pl or int(t.flags) & FIN):
            got += pl
            f.rcv_nxt = (f.rcv_nxt + len(pl) + (1 if int(t.flags) & FIN else 0)) & 0xffffffff
            fin = bool(int(t.flags) & FIN)
            f.send(ACK)
    return got


def plain_outcome(srv, st, text, reason_part):
    rc = srv.finish()
    check(rc == 0, "server program failed (exit %d): %s" % (rc, srv.prog.text()))
    check(srv.value("state") == "disabled", "accepted socket's TCP_ENO_STATE: %s, expected disabled" %
          srv.value("state"))
    check(srv.value("sessid") == "EINVAL", "TCP_ENO_SESSID: %s, expected EINVAL" % srv.value("sessid"))
    check(srv.value("recv") == text.decode(), "program received %r, expected %r" % (srv.value("recv"), text))
    check(st["eno"] == "disabled", "enoctl status says ENO %s, expected disabled" % st["eno"])
    if reason_part:
        check(reason_part in st["reason"], "enoctl status reason %r, expected it to mention %r" %
              (st["reason"], reason_part))


# ---- cases -----------------------------------------------------------------------------

def case_c_strip_third(r):
    """(c2): a middlebox strips ENO from the third segment: SYN with ENO, tund's
    SYN-ACK with ENO (b=1, one TEP), our ACK without ENO -> tund falls back:
    no ENO in its later segments, the program sees plaintext and ENO disabled"""
    srv = Server(r)
    try:
        f, sa = connect(r, srv, MSS + b"\x45\x04\x21\x23")
        enos = eno_opts(sa)
        check(enos == [b"\x45\x04\x01\x23"], "SYN-ACK ENO %s, expected exactly 45 04 01 23 (b=1, the TEP "
              "tund prefers among those we offered)" % [hx(o) for o in enos])
        text = b"stripped third segment"
        segs, st = talk(f, text, srv=srv)
        for i, p in enumerate(segs):
            check(not eno_opts(p), "tund's segment #%d after our ACK without ENO carries ENO: %s" %
                  (i + 1, describe(p)))
        plain_outcome(srv, st, text, "ACK without ENO")
    finally:
        srv.kill()


def malformed(r, syn_opts, reason_part, two=False):
    """(d): tund must ignore the ENO option and disable encryption: SYN-ACK
    without ENO, plain TCP that works"""
    srv = Server(r)
    try:
        f, sa = connect(r, srv, syn_opts)
        enos = eno_opts(sa)
        check(not enos, "SYN-ACK to a SYN with %s carries ENO %s; expected none (§4.1/§4.4/§4.6: ignore "
              "the option, disable encryption)" % (hx(syn_opts), [hx(o) for o in enos]))
        text = b"plain after malformed ENO"
        segs, st = talk(f, text, srv=srv)
        for i, p in enumerate(segs):
            check(not eno_opts(p), "tund's segment #%d carries ENO: %s" % (i + 1, describe(p)))
        plain_outcome(srv, st, text, reason_part)
    finally:
        srv.kill()


def case_d_len_then_low(r):
    # 23 (X25519), then a length byte 0x80 followed by 0x21 (v = 0): §4.4 rule 2
    malformed(r, MSS + b"\x45\x05\x23\x80\x21", "ill-formed")


def case_d_len_then_global(r):
    # a length byte followed by 0x00..0x1f (a global suboption): §4.4 rule 2
    malformed(r, MSS + b"\x45\x06\x23\x81\x00\xaa", "ill-formed")


def case_d_past_end(r):
    # length byte 0x83 (4 data bytes) before a3 with only 1 byte left: §4.4 rule 1
    malformed(r, MSS + b"\x45\x06\x23\x83\xa3\xaa", "ill-formed")


def case_d_len_last(r):
    # a length byte as the option's last byte: its suboption lies past the end
    malformed(r, MSS + b"\x45\x04\x23\x81", "ill-formed")


def case_d_two_eno(r):
    # §4.1: more than one ENO option in a SYN = no ENO option
    malformed(r, MSS + b"\x45\x03\x23\x45\x03\x21", "several ENO")


def case_d_same_b(r):
    # §4.3/§4.6: an active opener with b = 1 meets a passive opener (b = 1)
    malformed(r, MSS + b"\x45\x04\x01\x23", "role conflict")


def case_d_opt_past_header(r):
    # the ENO option's TCP length runs past the TCP header
    malformed(r, MSS + b"\x45\x0a\x21\x23", None)


def case_d_vacuous(r):
    """a vacuous ENO option (no TEP): fall back; tund may answer with a
    vacuous ENO option (b = 1) or none (§4.6)"""
    srv = Server(r)
    try:
        f, sa = connect(r, srv, MSS + b"\x45\x02")
        enos = eno_opts(sa)
        check(not enos or (len(enos) == 1 and enos[0][2:3] == b"\x01" and
                           all(b < 0x20 for b in enos[0][2:])),
              "SYN-ACK to a vacuous ENO SYN carries %s; expected none or a vacuous option with b=1" %
              [hx(o) for o in enos])
        text = b"plain after vacuous ENO"
        segs, st = talk(f, text, srv=srv)
        plain_outcome(srv, st, text, None)
    finally:
        srv.kill()


def case_e_syn_data_eno(r):
    """(e): SYN+ENO with data, TEP 0x20 negotiated (it defines no SYN data):
    the SYN-ACK acknowledges the ISN only, the program never sees the SYN data"""
    srv = Server(r, enorun_args=("--eno-teps", "20"))
    try:
        f, sa = connect(r, srv, MSS + b"\x45\x03\x20", syn_payload=b"SYN-DATA-MUST-NOT-ARRIVE")
        enos = eno_opts(sa)
        check(enos == [b"\x45\x04\x01\x20"], "SYN-ACK ENO %s, expected 45 04 01 20" % [hx(o) for o in enos])
        text = b"real data"
        segs, st = talk(f, text, ack_opts=b"\x45\x02\x01\x01", data_opts=b"\x45\x02\x01\x01", srv=srv)
        rc = srv.finish()
        check(rc == 0, "server program failed (exit %d): %s" % (rc, srv.prog.text()))
        check(srv.value("recv") == text.decode(), "program received %r, expected only %r" %
              (srv.value("recv"), text))
        check(srv.value("state") == "encrypting" and srv.value("negtep") == "0x20",
              "state %s negtep %s, expected encrypting 0x20" % (srv.value("state"), srv.value("negtep")))
        check(srv.value("role") == "0x01", "TCP_ENO_ROLE %s, expected 1 (B)" % srv.value("role"))
    finally:
        srv.kill()


def case_e_syn_data_eno_fallback(r):
    """(e): SYN+ENO with data, then ENO fails (our ACK lacks ENO): the data is
    discarded, only the ISN is acknowledged"""
    srv = Server(r)
    try:
        f, sa = connect(r, srv, MSS + b"\x45\x03\x23", syn_payload=b"SYN-DATA-MUST-NOT-ARRIVE")
        text = b"plain real data"
        segs, st = talk(f, text, srv=srv)
        plain_outcome(srv, st, text, None)
    finally:
        srv.kill()


def case_e_syn_data_plain(r):
    """(e): a SYN with data and no ENO: only the ISN is acknowledged"""
    srv = Server(r)
    try:
        f, sa = connect(r, srv, MSS, syn_payload=b"SYN-DATA-MUST-NOT-ARRIVE")
        check(not eno_opts(sa), "SYN-ACK to a SYN without ENO carries ENO: %s" % describe(sa))
        text = b"plain real data"
        segs, st = talk(f, text, srv=srv)
        plain_outcome(srv, st, text, None)
    finally:
        srv.kill()


def negotiate_exp(r, syn_eno, want_synack, probe_args=(), ack_eno=b"\x45\x02\x01\x01", want="encrypting"):
    """a SYN offering 0x20 (experimental) to a listener with TEPS 20; checks
    tund's SYN-ACK ENO option and the accepted socket's state"""
    srv = Server(r, enorun_args=("--eno-teps", "20"), probe_args=probe_args)
    try:
        f, sa = connect(r, srv, MSS + syn_eno)
        enos = eno_opts(sa)
        got = enos[0] if len(enos) == 1 else None if not enos else b"|".join(enos)
        check(got == want_synack, "SYN-ACK to ENO %s carries %s, expected %s" %
              (hx(syn_eno), [hx(o) for o in enos], hx(want_synack) if want_synack else "no ENO"))
        text = b"gopt text"
        opts = ack_eno if want_synack else b""
        segs, st = talk(f, text, ack_opts=opts, data_opts=opts, srv=srv)
        srv.finish()
        check(srv.value("state") == want, "accepted socket's TCP_ENO_STATE %s, expected %s" %
              (srv.value("state"), want))
        check(srv.value("recv") == text.decode(), "received %r" % srv.value("recv"))
        return srv
    finally:
        srv.kill()


def case_g_first_global_only(r):
    """§4.2: only the first global suboption counts: 00 (b = 0) then 01 -> A"""
    srv = negotiate_exp(r, b"\x45\x05\x00\x01\x20", b"\x45\x04\x01\x20")
    check(srv.value("peer-gopt") == "0x00", "TCP_ENO_PEER_GOPT %s, expected 0 (the first global suboption)"
          % srv.value("peer-gopt"))


def case_g_zbits_ignored(r):
    """§4.2: z bits are ignored on receipt (negotiation proceeds); api-06:
    TCP_ENO_PEER_GOPT reports the peer's global suboption"""
    srv = negotiate_exp(r, b"\x45\x04\x1c\x20", b"\x45\x04\x01\x20")
    check(srv.value("peer-gopt") in ("0x1c", "0x00"), "TCP_ENO_PEER_GOPT %s, expected 0x1c" %
          srv.value("peer-gopt"))


def case_g_a_bit(r):
    """§4.2 a bit: the listener's TCP_ENO_SELF_GOPT = 2 shows in its SYN-ACK
    (03 = a | b); the peer's a = 1 shows in TCP_ENO_PEER_GOPT"""
    srv = negotiate_exp(r, b"\x45\x04\x02\x20", b"\x45\x04\x03\x20", probe_args=("--gopt", "2"))
    check(srv.value("peer-gopt") == "0x02", "TCP_ENO_PEER_GOPT %s, expected 0x02" % srv.value("peer-gopt"))
    check(srv.value("self-gopt") == "0x03", "accepted socket's TCP_ENO_SELF_GOPT %s, expected 0x03" %
          srv.value("self-gopt"))


def case_g_aa_mandatory_a0(r):
    """§4.2/§4.6: mandatory application-aware mode and the peer's a = 0:
    encryption disabled, the SYN-ACK carries no ENO, plain TCP"""
    negotiate_exp(r, b"\x45\x03\x20", None, probe_args=("--aa-mandatory",), want="disabled")


def case_g_aa_mandatory_a1(r):
    """mandatory application-aware mode and the peer's a = 1: encrypted; the
    mode sets a = 1 in our own global suboption (§8.4): SYN-ACK 45 04 03 20"""
    negotiate_exp(r, b"\x45\x04\x02\x20", b"\x45\x04\x03\x20", probe_args=("--aa-mandatory",))


def case_nonsyn_contents_ignored(r):
    """§4.1: the contents of a non-SYN ENO option are ignored on receipt: an
    ACK with 45 04 ff ff still acknowledges ENO"""
    negotiate_exp(r, b"\x45\x03\x20", b"\x45\x04\x01\x20", ack_eno=b"\x45\x04\xff\xff")


def case_synack_rtx(r):
    """§4.6: SYN-form ENO options MUST NOT change in retransmissions: we do
    not acknowledge the SYN-ACK, tund retransmits it byte-identically; a
    retransmission of our SYN gets the same answer"""
    srv = Server(r)
    try:
        f, sa = connect(r, srv, MSS + b"\x45\x04\x21\x23")
        again = f.recv(15, "retransmitted SYN-ACK")
        check(int(again[TCP].flags) & (SYN | ACK) == SYN | ACK and again[TCP].seq == sa[TCP].seq,
              "expected the SYN-ACK again, got %s" % describe(again))
        check(eno_opts(again) == eno_opts(sa) and eno_opts(sa) == [b"\x45\x04\x01\x23"],
              "retransmitted SYN-ACK ENO %s, first %s" % ([hx(o) for o in eno_opts(again)],
                                                          [hx(o) for o in eno_opts(sa)]))
        # our SYN again (as if the SYN-ACK was lost): the same SYN-ACK
        f.send(SYN, seq=f.iss, ack=0, opts=MSS + b"\x45\x04\x21\x23", advance=False)
        third = f.recv(15, "SYN-ACK to our retransmitted SYN")
        check(int(third[TCP].flags) & (SYN | ACK) == SYN | ACK and eno_opts(third) == eno_opts(sa),
              "answer to our retransmitted SYN: %s" % describe(third))
        f.send(RST | ACK, advance=False)
    finally:
        srv.kill()


def case_ok_v6(r):
    """control: a well-formed ENO SYN over IPv6 (TEP 0x20) negotiates"""
    srv = Server(r, enorun_args=("--eno-teps", "20"))
    try:
        f, sa = connect(r, srv, MSS + b"\x45\x04\x21\x20", v6=True)
        enos = eno_opts(sa)
        check(enos == [b"\x45\x04\x01\x20"], "SYN-ACK ENO %s, expected 45 04 01 20" % [hx(o) for o in enos])
        text = b"v6 experimental"
        segs, st = talk(f, text, ack_opts=b"\x45\x02\x01\x01", data_opts=b"\x45\x02\x01\x01", srv=srv)
        rc = srv.finish()
        check(srv.value("state") == "encrypting" and srv.value("negtep") == "0x20",
              "state %s negtep %s, expected encrypting 0x20" % (srv.value("state"), srv.value("negtep")))
        check(srv.value("transcript") == "4504212045040120", "transcript %s" % srv.value("transcript"))
        check(srv.value("recv") == text.decode(), "received %r" % srv.value("recv"))
        check("NOT encrypted" in st["reason"], "enoctl status reason %r should say NOT encrypted" % st["reason"])
    finally:
        srv.kill()


def collect_answers(tun, port, secs):
    """tund's segments from port within secs: ({peer port: SYN-ACK seq}, RST count)"""
    answered, resets = {}, 0
    end = time.monotonic() + secs
    while True:
        left = end - time.monotonic()
        p = tun.recv(left) if left > 0 else None
        if p is None:
            return answered, resets
        t = p[TCP]
        if t.sport != port:
            continue
        if int(t.flags) & RST:
            resets += 1
        elif int(t.flags) & (SYN | ACK) == SYN | ACK:
            answered.setdefault(t.dport, t.seq)


def case_q_syn_flood(r):
    """half-open connections are bounded: SYNs that are never completed get
    255 SYN-ACKs (lwIP TCP_LISTEN_BACKLOG, the cap tund sets per listener),
    the rest are dropped silently (no RST, as Linux without SYN cookies); once
    the half-open ones are reset the listener takes connections again"""
    srv = Server(r)
    tun = Tun(E["TUN_A"])
    flows = []
    try:
        base = random.randrange(20000, 40000)
        flows = [Flow(tun, E["HOST4_A"], E["LWIP4_A"], base + i, srv.port, r.log) for i in range(400)]
        for f in flows:
            tun.send(f.build(SYN, ack=0, opts=MSS))
        answered, resets = collect_answers(tun, srv.port, 4)
        r.log("  400 SYNs: %d SYN-ACKs, %d RSTs" % (len(answered), resets))
        check(resets == 0, "tund reset %d of the flood's SYNs (expected silent drops)" % resets)
        check(len(answered) == 255, "%d of 400 never-completed SYNs got a SYN-ACK, expected 255 "
              "(the half-open cap)" % len(answered))
        late = Flow(tun, E["HOST4_A"], E["LWIP4_A"], base + 400, srv.port, r.log)
        tun.send(late.build(SYN, ack=0, opts=MSS))
        a2, _ = collect_answers(tun, srv.port, 2)
        check(late.myport not in a2, "a SYN beyond the half-open cap got a SYN-ACK")
        for f in flows:
            if f.myport in answered:
                tun.send(f.build(RST, seq=(f.iss + 1) & 0xffffffff, ack=0))
        time.sleep(0.5)
        f, _ = connect(r, srv, MSS)
        text = b"after the flood"
        talk(f, text)
        srv.finish()
        check(srv.value("recv") == text.decode(), "received %r" % srv.value("recv"))
    finally:
        for f in flows:
            tun.send(f.build(RST, seq=(f.iss + 1) & 0xffffffff, ack=0))
        srv.kill()


ACCEPT_LATER = r"""
import os, socket, sys, time
port, go = int(sys.argv[1]), sys.argv[2]
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", port))
s.listen(2)
print("listening", flush=True)
while not os.path.exists(go):
    time.sleep(0.02)
s.settimeout(10)
conns = []
try:
    while len(conns) < 4:
        conns.append(s.accept()[0])
        print("accepted %d" % len(conns), flush=True)
except OSError as e:
    print("accept: %s" % e, flush=True)
time.sleep(1)
"""


def case_q_accept_full(r):
    """a listener whose accept queue is full (more than its backlog waiting,
    as Linux counts it) drops new SYNs silently; the peer's retransmission
    gets through once the program accepts"""
    port = random.randrange(20000, 30000)
    go = "/tmp/enowire-go-%d-%d" % (os.getpid(), port)
    prog = Prog([E["ENORUN"], "--socket", E["SOCK_A"], "--", sys.executable, "-c", ACCEPT_LATER, str(port), go],
                r.log, "listener")
    tun = Tun(E["TUN_A"])
    flows = []
    try:
        prog.wait_line("listening", 20)
        base = random.randrange(40000, 60000)
        for i in range(4):
            f = Flow(tun, E["HOST4_A"], E["LWIP4_A"], base + i, port, r.log)
            flows.append(f)
            f.send(SYN, ack=0, opts=MSS)
            if i < 3:
                p = f.recv(10, "SYN-ACK")
                check(int(p[TCP].flags) & (SYN | ACK | RST) == SYN | ACK, "connection %d: %s" % (i + 1, describe(p)))
                f.rcv_nxt = (p[TCP].seq + 1) & 0xffffffff
                f.send(ACK)
        p = flows[3].recv_opt(2)
        check(p is None, "backlog 2 and 3 connections waiting: the 4th SYN was answered: %s" %
              (describe(p) if p is not None else ""))
        open(go, "w").close()
        prog.wait_line("accepted 1", 10)
        f = flows[3]
        f.send(SYN, seq=f.iss, ack=0, opts=MSS, advance=False)
        p = f.recv(10, "SYN-ACK to the retransmitted SYN")
        check(int(p[TCP].flags) & (SYN | ACK | RST) == SYN | ACK, "retransmitted SYN: %s" % describe(p))
        f.rcv_nxt = (p[TCP].seq + 1) & 0xffffffff
        f.send(ACK)
        prog.wait_line("accepted 4", 10)
    finally:
        for f in flows:
            f.send(RST | ACK, advance=False)
        prog.kill()
        try:
            os.unlink(go)
        except OSError:
            pass


def case_tw_reopen(r):
    """tund closes first and holds the connection in TIME-WAIT.  An old
    duplicate SYN from the peer's port (sequence number below what the old
    connection received) is answered with an ACK and changes nothing; a new
    SYN beyond it reopens the 4-tuple: SYN-ACK, and the listener accepts the
    next connection (RFC 1122 §4.2.2.13, lwIP patch 0006).  Twice: the new
    ISN inside the old receive window (2.1.3 answered RST: the peer saw
    ECONNREFUSED) and beyond it (2.1.3 answered with an ACK, and a peer in
    SYN-SENT answered that with RST and a new SYN, six times, then gave up)."""
    class Srv:
        port = random.randrange(20000, 30000)
    srv = Srv()
    prog = Prog([E["ENORUN"], "--socket", E["SOCK_A"], "--", E["PROBE"], "closefirst", str(srv.port), "3"],
                r.log, "server")
    try:
        prog.wait_line("listening", 20)
        f, _ = connect(r, srv, MSS + WS)
        f.send(ACK)
        tw_exchange(f, "connection 1")
        prog.wait_line("conn 1: peer sent 0 bytes", 10)
        for k, ahead in ((2, 100000), (3, 50000000)):
            # an old duplicate: below rcv_nxt, so TIME-WAIT answers it with an ACK
            old = Flow(f.tun, f.me, f.them, f.myport, srv.port, r.log)
            old.iss = old.snd_nxt = (f.iss - 100000) & 0xffffffff
            old.send(SYN, opts=MSS + WS, ack=0)
            p = old.recv(5, "answer to an old duplicate SYN")
            check(int(p[TCP].flags) & (SYN | ACK | RST) == ACK and p[TCP].ack == f.snd_nxt,
                  "TIME-WAIT answered an old duplicate SYN with %s, expected an ACK of %d" %
                  (describe(p), f.snd_nxt))
            # a new incarnation: its ISN beyond what the old connection used
            new = Flow(f.tun, f.me, f.them, f.myport, srv.port, r.log)
            new.iss = new.snd_nxt = (f.snd_nxt + ahead) & 0xffffffff
            new.send(SYN, opts=MSS + WS, ack=0)
            p = new.recv(5, "SYN-ACK to a new SYN in TIME-WAIT")
            check(int(p[TCP].flags) & (SYN | ACK | RST) == SYN | ACK and p[TCP].ack == new.snd_nxt,
                  "a new SYN (ISN %d beyond the old connection) in TIME-WAIT got %s, expected a SYN-ACK of %d"
                  % (ahead, describe(p), new.snd_nxt))
            new.rcv_nxt = (p[TCP].seq + 1) & 0xffffffff
            new.send(ACK)
            tw_exchange(new, "connection %d" % k)
            prog.wait_line("conn %d: peer sent 0 bytes" % k, 10)
            f = new
        rc = prog.finish(15)
        check(rc == 0, "server program failed (exit %d): %s" % (rc, prog.text()))
    finally:
        prog.kill()


def tw_exchange(f, what):
    """tund sends "bye\n" and FIN first; we acknowledge, send our FIN and wait
    for its ACK: tund's side is in TIME-WAIT then"""
    got = recv_until_fin(f, what + ": data")
    check(got == b"bye\n", "%s: tund sent %r, expected 'bye\\n'" % (what, got))
    f.send(ACK | FIN)
    end = time.monotonic() + 15
    while True:
        left = end - time.monotonic()
        check(left > 0, "%s: tund did not acknowledge our FIN within 15 s" % what)
        p = f.recv(left, "ACK of our FIN")
        check(not int(p[TCP].flags) & RST, "%s: tund reset the connection: %s" % (what, describe(p)))
        if p[TCP].ack == f.snd_nxt:
            return


CASES = {
    "c_strip_third": case_c_strip_third,
    "d_len_then_low": case_d_len_then_low,
    "d_len_then_global": case_d_len_then_global,
    "d_past_end": case_d_past_end,
    "d_len_last": case_d_len_last,
    "d_two_eno": case_d_two_eno,
    "d_same_b": case_d_same_b,
    "d_opt_past_header": case_d_opt_past_header,
    "d_vacuous": case_d_vacuous,
    "e_syn_data_eno": case_e_syn_data_eno,
    "e_syn_data_eno_fallback": case_e_syn_data_eno_fallback,
    "e_syn_data_plain": case_e_syn_data_plain,
    "ok_v6": case_ok_v6,
    "g_first_global_only": case_g_first_global_only,
    "g_zbits_ignored": case_g_zbits_ignored,
    "g_a_bit": case_g_a_bit,
    "g_aa_mandatory_a0": case_g_aa_mandatory_a0,
    "g_aa_mandatory_a1": case_g_aa_mandatory_a1,
    "nonsyn_contents_ignored": case_nonsyn_contents_ignored,
    "synack_rtx": case_synack_rtx,
    "q_syn_flood": case_q_syn_flood,
    "q_accept_full": case_q_accept_full,
    "tw_reopen": case_tw_reopen,
}

if __name__ == "__main__":
    names = sys.argv[1:] or list(CASES)
    r = Runner()
    for n in names:
        r.run(n, CASES[n])
    r.exit()
