#!/usr/bin/python3
"""tests/conformance/wire_active.py — tund as the ACTIVE opener, against a
hand-made peer (RFC 8547 §4.1, §4.3, §4.6, §4.8; api-06 §2.1).

A program under enorun (tests/progs/eno_probe) connects to the kernel's
address of the TUN; this script plays that address.  Run inside the test
namespace by tests/integ/t_eno_wire_active.sh, which sets up the topology.

Environment: ENORUN, PROBE, and per tund: TUN_<X>, SOCK_<X>, HOST4_<X>,
LWIP4_<X>, HOST6_<X>, LWIP6_<X> for X in A (default settings) and C
(--eno_drop_syn_after=2).

Usage: wire_active.py CASE...   (no argument: every case)
"""
import hashlib
import os
import random
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from enowire import (ACK, ENO, FIN, PSH, RST, SYN, TCP, Fail, Flow, Prog, Runner, Tun,  # noqa: E402
                     check, eno_opts, hx, parse_opts, tcp_opt_bytes, wait_syn, describe)

E = os.environ
DEFAULT_TEPS = bytes([0x21, 0x24, 0x23])
MSS = ("MSS", 1460)
MSS_RAW = b"\x02\x04\x05\xb4"


def host(x):
    return dict(tun=E["TUN_" + x], sock=E["SOCK_" + x], h4=E["HOST4_" + x], l4=E["LWIP4_" + x],
                h6=E["HOST6_" + x], l6=E["LWIP6_" + x])


def probe(h, *args, enorun_args=()):
    return [E["ENORUN"], "--socket", h["sock"], *enorun_args, "--", E["PROBE"], *args]


def new_port():
    return random.randrange(20000, 30000)


def only_eno_and_nops(p, want, what):
    """the segment's options are exactly the ENO option `want` plus NOP padding
    (and, in a SYN, lwIP's MSS / window-scale options)"""
    opts = parse_opts(tcp_opt_bytes(p))
    enos = [o for k, o in opts if k == ENO]
    check(enos == [want], "%s: ENO options %s, expected exactly %s (%s)" %
          (what, [hx(o) for o in enos], hx(want), describe(p)))
    others = [k for k, o in opts if k not in (ENO, 1)]
    if not (int(p[TCP].flags) & SYN):
        check(not others, "%s: unexpected options %s besides ENO and NOPs (%s)" % (what, others, describe(p)))


def no_eno(p, what):
    enos = eno_opts(p)
    check(not enos, "%s carries ENO %s; expected none (%s)" % (what, [hx(o) for o in enos], describe(p)))


def payload(p):
    return bytes(p[TCP].payload)


def collect_until_fin(f, ack_each, timeout=15):
    """tund's segments after the handshake until its FIN.  Data is taken in
    order; with ack_each every new data segment is acknowledged at once, else
    nothing is sent.  Returns (data, segments)."""
    data = b""
    segs = []
    end = time.monotonic() + timeout
    while True:
        left = end - time.monotonic()
        check(left > 0, "no FIN from tund within %d s (data so far %r)" % (timeout, data))
        p = f.recv(left, "FIN")
        segs.append(p)
        t = p[TCP]
        check(not (int(t.flags) & RST), "tund reset the connection: %s" % describe(p))
        pl = payload(p)
        if t.seq == f.rcv_nxt:
            data += pl
            f.rcv_nxt = (f.rcv_nxt + len(pl)) & 0xffffffff
            if int(t.flags) & FIN:
                f.rcv_nxt = (f.rcv_nxt + 1) & 0xffffffff
                return data, segs
            if pl and ack_each:
                f.send(ACK)


def close_with_echo(f, data, timeout=15):
    """send `data` back with FIN, then wait until tund acknowledged the FIN"""
    f.send(ACK | PSH | FIN, payload=data)
    end = time.monotonic() + timeout
    after = []
    while True:
        left = end - time.monotonic()
        check(left > 0, "tund did not acknowledge our FIN within %d s" % timeout)
        p = f.recv(left, "ACK of our FIN")
        after.append(p)
        if int(p[TCP].flags) & ACK and p[TCP].ack == f.snd_nxt:
            return after


def answer(f, syn, opts):
    f.rcv_nxt = (syn[TCP].seq + 1) & 0xffffffff
    return f.send(SYN | ACK, opts=opts)


# ---- cases -----------------------------------------------------------------------------

def case_a_fallback(r, v6=False, synack_opts=MSS_RAW, why="a SYN-ACK without ENO", teps=None):
    """(a)/(c1): SYN-ACK without ENO (or ENO stripped from it by a middlebox):
    plain TCP, no ENO after the SYN, plaintext data, TCP_ENO_STATE disabled.
    With synack_opts: a SYN-ACK whose ENO option must make tund fall back."""
    h = host("A")
    tun = Tun(h["tun"])
    port = new_port()
    me, them = (h["h6"], h["l6"]) if v6 else (h["h4"], h["l4"])
    text = "plain hello %d" % port
    ea = ("--eno-teps", ",".join("%02x" % b for b in teps)) if teps else ()
    prog = Prog(probe(h, "--send", text, "client", me, str(port), enorun_args=ea), r.log)
    try:
        syn = wait_syn(tun, them, None, port, 15, r.log)
        only_eno_and_nops(syn, bytes([0x45, 2 + len(teps or DEFAULT_TEPS)]) + (teps or DEFAULT_TEPS), "SYN")
        f = Flow(tun, me, them, port, syn[TCP].sport, r.log)
        answer(f, syn, synack_opts)
        data, segs = collect_until_fin(f, ack_each=True)
        for i, p in enumerate(segs):
            no_eno(p, "tund's segment #%d after %s" % (i + 1, why))
        check(data == text.encode(), "tund sent %r, expected the plaintext %r" % (data, text))
        for p in close_with_echo(f, data):
            no_eno(p, "tund's segment after our FIN")
        rc = prog.finish(20)
    finally:
        prog.kill()
    check(rc == 0, "program failed (exit %d): %s" % (rc, prog.text()))
    check(prog.value("connect") == "ok", "connect: %s" % prog.value("connect"))
    check(prog.value("state") == "disabled", "TCP_ENO_STATE: %s, expected disabled" % prog.value("state"))
    check(prog.value("sessid") == "EINVAL", "TCP_ENO_SESSID on a disabled connection: %s, expected EINVAL"
          % prog.value("sessid"))
    check(prog.value("reply") == text, "program read %r, expected %r" % (prog.value("reply"), text))


def case_a6_fallback(r):
    case_a_fallback(r, v6=True)


# §4.6 on the active side: a SYN-ACK ENO option that must disable encryption

def case_a_synack_b0(r):
    # no global suboption = implicit 0x00: b = 0 like tund's own (role conflict)
    case_a_fallback(r, synack_opts=MSS_RAW + b"\x45\x03\x23", why="a SYN-ACK with b = 0")


def case_a_synack_not_offered(r):
    # B picks 0x22, which A did not offer: no valid TEP
    case_a_fallback(r, synack_opts=MSS_RAW + b"\x45\x04\x01\x22", why="a SYN-ACK with a TEP A did not offer")


def case_a_synack_malformed(r):
    # a length byte followed by 0x23 (v = 0): ill-formed (§4.4)
    case_a_fallback(r, synack_opts=MSS_RAW + b"\x45\x05\x01\x80\x23", why="an ill-formed SYN-ACK ENO option")


def case_a_synack_two_eno(r):
    case_a_fallback(r, synack_opts=MSS_RAW + b"\x45\x04\x01\x23\x45\x04\x01\x23",
                    why="a SYN-ACK with two ENO options")


def case_a_synack_vacuous(r):
    case_a_fallback(r, synack_opts=MSS_RAW + b"\x45\x03\x01", why="a vacuous SYN-ACK ENO option")


def case_b_experimental(r):
    """(b): a valid ENO SYN-ACK (b=1, TEP 0x20): tund's ACK carries exactly
    45 02 (NOP-padded), so does every later segment until our first non-SYN
    segment; the data is plaintext (0x20 does not encrypt); the program sees
    NEGTEP 0x20, role A, session ID 0x20 | SHA-256(transcript)"""
    h = host("A")
    tun = Tun(h["tun"])
    port = new_port()
    text = "exp hello %d" % port
    prog = Prog(probe(h, "--send", text, "client", h["h4"], str(port), enorun_args=("--eno-teps", "20")), r.log)
    try:
        syn = wait_syn(tun, h["l4"], None, port, 15, r.log)
        a_eno = b"\x45\x03\x20"
        only_eno_and_nops(syn, a_eno, "SYN of a program with TCP_ENO_TEPS=20")
        f = Flow(tun, h["h4"], h["l4"], port, syn[TCP].sport, r.log)
        b_eno = b"\x45\x04\x01\x20"
        answer(f, syn, [MSS, (ENO, b_eno[2:])])
        # we send nothing until tund's FIN: everything before it must carry 45 02
        data, segs = collect_until_fin(f, ack_each=False)
        check(segs and not int(segs[0][TCP].flags) & SYN, "no third segment from tund")
        for i, p in enumerate(segs):
            only_eno_and_nops(p, b"\x45\x02", "tund's segment #%d before our first non-SYN segment" % (i + 1))
        check(data == text.encode(), "tund sent %r, expected the plaintext %r (TEP 0x20 does not encrypt)"
              % (data, text))
        after = close_with_echo(f, data)
        rc = prog.finish(20)
    finally:
        prog.kill()
    extra = [hx(o) for p in after for o in eno_opts(p)]
    if extra:
        r.log("  note: tund still sent ENO after our first non-SYN segment: %s" % extra)
    check(rc == 0, "program failed (exit %d): %s" % (rc, prog.text()))
    check(prog.value("state") == "encrypting", "TCP_ENO_STATE: %s, expected encrypting" % prog.value("state"))
    check(prog.value("negtep") == "0x20", "TCP_ENO_NEGTEP: %s, expected 0x20" % prog.value("negtep"))
    check(prog.value("role") == "0x00", "TCP_ENO_ROLE: %s, expected 0 (A)" % prog.value("role"))
    check(prog.value("peer-gopt") == "0x01", "TCP_ENO_PEER_GOPT: %s, expected 1" % prog.value("peer-gopt"))
    transcript = a_eno + b_eno
    check(prog.value("transcript") == transcript.hex(), "TCP_ENO_TRANSCRIPT: %s, expected %s" %
          (prog.value("transcript"), transcript.hex()))
    sid = bytes([0x20]) + hashlib.sha256(transcript).digest()
    check(prog.value("sessid") == sid.hex(), "TCP_ENO_SESSID: %s, expected 0x20|SHA-256(transcript) = %s" %
          (prog.value("sessid"), sid.hex()))
    check(prog.value("reply") == text, "program read %r, expected %r" % (prog.value("reply"), text))


def case_b_last_valid_tep(r):
    """§4.5: B may list several TEPs; the negotiated one is the LAST VALID one
    in B's option: 45 06 01 21 20 7e (A offered 21,20; 7e not offered) -> 0x20"""
    h = host("A")
    tun = Tun(h["tun"])
    port = new_port()
    text = "multi hello %d" % port
    prog = Prog(probe(h, "--send", text, "client", h["h4"], str(port), enorun_args=("--eno-teps", "21,20")),
                r.log)
    try:
        syn = wait_syn(tun, h["l4"], None, port, 15, r.log)
        a_eno = b"\x45\x04\x21\x20"
        only_eno_and_nops(syn, a_eno, "SYN of a program with TCP_ENO_TEPS=21,20")
        f = Flow(tun, h["h4"], h["l4"], port, syn[TCP].sport, r.log)
        b_eno = b"\x45\x06\x01\x21\x20\x7e"
        answer(f, syn, MSS_RAW + b_eno)
        data, segs = collect_until_fin(f, ack_each=False)
        for i, p in enumerate(segs):
            only_eno_and_nops(p, b"\x45\x02", "tund's segment #%d before our first non-SYN segment" % (i + 1))
        check(data == text.encode(), "tund sent %r, expected the plaintext %r (0x20 negotiated)" % (data, text))
        close_with_echo(f, data)
        rc = prog.finish(20)
    finally:
        prog.kill()
    check(rc == 0 and prog.value("reply") == text, "program: %s" % prog.text())
    check(prog.value("negtep") == "0x20", "TCP_ENO_NEGTEP %s, expected 0x20 (the last valid TEP in B's SYN)" %
          prog.value("negtep"))
    check(prog.value("transcript") == (a_eno + b_eno).hex(), "transcript %s, expected %s" %
          (prog.value("transcript"), (a_eno + b_eno).hex()))


def case_b_last_valid_tcpcrypt(r):
    """§4.5: 45 05 01 20 21 (A offered 20,21) -> 0x21 is the last valid TEP:
    tund starts tcpcrypt (Init1) instead of sending plaintext"""
    h = host("A")
    tun = Tun(h["tun"])
    port = new_port()
    prog = Prog(probe(h, "client", h["h4"], str(port), enorun_args=("--eno-teps", "20,21")), r.log)
    try:
        syn = wait_syn(tun, h["l4"], None, port, 15, r.log)
        only_eno_and_nops(syn, b"\x45\x04\x20\x21", "SYN of a program with TCP_ENO_TEPS=20,21")
        f = Flow(tun, h["h4"], h["l4"], port, syn[TCP].sport, r.log)
        answer(f, syn, MSS_RAW + b"\x45\x05\x01\x20\x21")
        end = time.monotonic() + 15
        while True:
            left = end - time.monotonic()
            check(left > 0, "no data from tund within 15 s")
            p = f.recv(left, "Init1")
            if payload(p):
                break
        check(payload(p)[:4] == bytes.fromhex("15101a0e"),
              "tund's first data is not tcpcrypt's Init1 (0x21 negotiated): %s" % hx(payload(p)[:16]))
        f.send(RST, seq=f.snd_nxt, advance=False)
        prog.finish(20)
    finally:
        prog.kill()


def case_b_tcpcrypt(r):
    """(b) with a tcpcrypt TEP: SYN-ACK 45 04 01 23 -> tund's ACK carries 45 02,
    and so does its Init1 segment (and Init1's retransmission, identical),
    since we send no non-SYN segment; then we reset: connect() says
    ECONNRESET (the TCP connection was up), not ECONNREFUSED"""
    h = host("A")
    tun = Tun(h["tun"])
    port = new_port()
    prog = Prog(probe(h, "client", h["h4"], str(port)), r.log)
    try:
        syn = wait_syn(tun, h["l4"], None, port, 15, r.log)
        only_eno_and_nops(syn, b"\x45\x05" + DEFAULT_TEPS, "SYN")
        f = Flow(tun, h["h4"], h["l4"], port, syn[TCP].sport, r.log)
        answer(f, syn, [MSS, (ENO, b"\x01\x23")])
        got = []
        init1 = None
        end = time.monotonic() + 15
        # the ACK, Init1, then Init1 again (retransmission: we acknowledge nothing)
        while True:
            left = end - time.monotonic()
            check(left > 0, "tund did not send its ACK, Init1 and a retransmission of Init1 within 15 s "
                  "(got %d segments)" % len(got))
            p = f.recv(left, "ACK / Init1")
            got.append(p)
            check(not (int(p[TCP].flags) & (RST | SYN)), "unexpected segment %s" % describe(p))
            only_eno_and_nops(p, b"\x45\x02", "tund's segment #%d (no non-SYN segment from us yet)" % len(got))
            pl = payload(p)
            if pl:
                if init1 is None:
                    init1 = p
                    check(p[TCP].seq == f.rcv_nxt, "Init1 at seq %d, expected %d" % (p[TCP].seq, f.rcv_nxt))
                    check(pl[:4] == bytes.fromhex("15101a0e"),
                          "tund's first data does not start with Init1's magic 15 10 1a 0e: %s" % hx(pl[:16]))
                elif p[TCP].seq == init1[TCP].seq:
                    check(pl == payload(init1)[:len(pl)] or payload(init1) == pl[:len(payload(init1))],
                          "Init1 retransmitted with different bytes")
                    break
        f.send(RST, seq=f.snd_nxt, advance=False)
        rc = prog.finish(20)
    finally:
        prog.kill()
    check(prog.value("connect") not in (None, "ok"),
          "connect() succeeded although the tcpcrypt handshake never completed: %s" % prog.text())
    # TCP's handshake had completed: a reset, not a refusal (that is a RST
    # answering the SYN)
    check(prog.value("connect") == "ECONNRESET",
          "connect() reset during the tcpcrypt handshake said %s, expected ECONNRESET" % prog.value("connect"))


def syn_rtx(r, x, want_drop):
    """(f): we do not answer tund's SYN; its retransmissions must carry a
    byte-identical ENO option (§4.6) — or, with --eno_drop_syn_after=2, none
    from retransmission #2 on.  Then a plain SYN-ACK: plain TCP."""
    h = host(x)
    tun = Tun(h["tun"])
    port = new_port()
    text = "rtx hello %d" % port
    prog = Prog(probe(h, "--send", text, "client", h["h4"], str(port)), r.log)
    try:
        syns = []
        end = time.monotonic() + 25
        n = 3 if want_drop else 2
        while len(syns) < n:
            left = end - time.monotonic()
            check(left > 0, "only %d SYN(s) from tund within 25 s, expected %d" % (len(syns), n))
            p = tun.recv(left)
            if p is None or p[TCP].dport != port:
                continue
            r.log("  <- %s  (t=%.1f s)" % (describe(p), time.monotonic()))
            check(int(p[TCP].flags) & (SYN | ACK) == SYN, "expected a SYN, got %s" % describe(p))
            if syns:
                check(p[TCP].seq == syns[0][TCP].seq and p[TCP].sport == syns[0][TCP].sport,
                      "retransmitted SYN with another seq/port: %s" % describe(p))
            syns.append(p)
        e0, e1 = eno_opts(syns[0]), eno_opts(syns[1])
        check(e0 == [b"\x45\x05" + DEFAULT_TEPS], "first SYN's ENO: %s" % [hx(o) for o in e0])
        check(e1 == e0, "retransmitted SYN #1 has ENO %s, the first SYN %s: not byte-identical" %
              ([hx(o) for o in e1], [hx(o) for o in e0]))
        check(tcp_opt_bytes(syns[1]) == tcp_opt_bytes(syns[0]),
              "SYN retransmission #1 options %s differ from the first SYN's %s" %
              (hx(tcp_opt_bytes(syns[1])), hx(tcp_opt_bytes(syns[0]))))
        if want_drop:
            check(not eno_opts(syns[2]), "--eno_drop_syn_after=2: SYN retransmission #2 still carries ENO %s" %
                  [hx(o) for o in eno_opts(syns[2])])
        last = syns[-1]
        f = Flow(tun, h["h4"], h["l4"], port, last[TCP].sport, r.log)
        answer(f, last, [MSS])
        data, segs = collect_until_fin(f, ack_each=True)
        for i, p in enumerate(segs):
            no_eno(p, "segment #%d after a SYN-ACK without ENO" % (i + 1))
        check(data == text.encode(), "tund sent %r, expected %r" % (data, text))
        close_with_echo(f, data)
        rc = prog.finish(20)
    finally:
        prog.kill()
    check(rc == 0 and prog.value("reply") == text, "program: %s" % prog.text())
    check(prog.value("state") == "disabled", "TCP_ENO_STATE %s, expected disabled" % prog.value("state"))


def case_f_rtx_identical(r):
    syn_rtx(r, "A", False)


def case_f_drop_after_2(r):
    syn_rtx(r, "C", True)


CASES = {
    "a_fallback": case_a_fallback,
    "a6_fallback": case_a6_fallback,
    "b_experimental": case_b_experimental,
    "b_tcpcrypt": case_b_tcpcrypt,
    "b_last_valid_tep": case_b_last_valid_tep,
    "b_last_valid_tcpcrypt": case_b_last_valid_tcpcrypt,
    "a_synack_b0": case_a_synack_b0,
    "a_synack_not_offered": case_a_synack_not_offered,
    "a_synack_malformed": case_a_synack_malformed,
    "a_synack_two_eno": case_a_synack_two_eno,
    "a_synack_vacuous": case_a_synack_vacuous,
    "f_rtx_identical": case_f_rtx_identical,
    "f_drop_after_2": case_f_drop_after_2,
}

if __name__ == "__main__":
    names = sys.argv[1:] or list(CASES)
    r = Runner()
    for n in names:
        r.run(n, CASES[n])
    r.exit()
