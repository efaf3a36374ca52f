#!/usr/bin/python3
"""tests/conformance/simopen_check.py PCAP ADDR1 PORT1 ADDR2 PORT2 [--expect-eno|--expect-plain]

Checks, in a capture of one TUN (tests/integ/t_eno_simopen.sh), that the
connection between ADDR1:PORT1 and ADDR2:PORT2 began with a real simultaneous
open (RFC 9293 §3.5): each side's first segment is a SYN without ACK, and
neither side's SYN was answered by a plain SYN-ACK of the other before it
sent its own SYN.  RFC 8547 §4.6: each side's SYN-ACK carries the same
SYN-form ENO option as its SYN (byte-identical), or (only when the received
SYN made it disable ENO) none.

With --expect-eno: both SYNs carry ENO and exactly one of them b = 1;
with --expect-plain: every segment after the SYN/SYN-ACK carries no ENO.
Prints one line per segment and exits 1 with "FAIL ..." on a violation.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from enowire import ACK, SYN, TCP, Fail, check, describe, eno_opts, hx  # noqa: E402
from scapy.all import IP, IPv6, rdpcap  # noqa: E402


def main(argv):
    pcap, a1, p1, a2, p2 = argv[1], argv[2], int(argv[3]), argv[4], int(argv[5])
    mode = argv[6] if len(argv) > 6 else ""
    segs = []
    for p in rdpcap(pcap):
        if TCP not in p:
            continue
        ip = p[IPv6] if IPv6 in p else p[IP]
        t = p[TCP]
        if (ip.src, t.sport, ip.dst, t.dport) == (a1, p1, a2, p2):
            segs.append((1, p))
        elif (ip.src, t.sport, ip.dst, t.dport) == (a2, p2, a1, p1):
            segs.append((2, p))
    for side, p in segs:
        print("  %s %s" % ("1->2" if side == 1 else "2->1", describe(p)))
    check(segs, "no segment between %s:%d and %s:%d in the capture" % (a1, p1, a2, p2))
    # earlier attempts (a SYN answered by RST, then both retried): the last one counts
    rsts = [i for i, (s, p) in enumerate(segs) if int(p[TCP].flags) & 0x04]
    if rsts:
        print("  (%d earlier attempt(s) ended by RST; looking at the last one)" % len(rsts))
        segs = segs[rsts[-1] + 1:]
    first = {}
    for side, p in segs:
        first.setdefault(side, p)
    check(1 in first and 2 in first, "only one side sent anything")
    for side in (1, 2):
        f = int(first[side][TCP].flags)
        check(f & (SYN | ACK) == SYN, "side %d's first segment is %s, not a SYN without ACK: no simultaneous open"
              % (side, describe(first[side])))
    # each side's SYN-ACK repeats its SYN's ENO option
    enos = {}
    for side in (1, 2):
        syn = first[side]
        synacks = [p for s, p in segs if s == side and int(p[TCP].flags) & (SYN | ACK) == SYN | ACK]
        check(synacks, "side %d sent no SYN-ACK (simultaneous open answers a SYN with a SYN-ACK)" % side)
        check(synacks[0][TCP].seq == syn[TCP].seq, "side %d's SYN-ACK has another ISN" % side)
        e_syn, e_sa = eno_opts(syn), eno_opts(synacks[0])
        check(e_sa == e_syn or not e_sa,
              "side %d changed its SYN-form ENO option between SYN %s and SYN-ACK %s (RFC 8547 §4.6)" %
              (side, [hx(o) for o in e_syn], [hx(o) for o in e_sa]))
        enos[side] = (e_syn, e_sa)
    if mode == "--expect-eno":
        for side in (1, 2):
            check(len(enos[side][0]) == 1, "side %d's SYN has ENO %s" % (side, [hx(o) for o in enos[side][0]]))
        bs = []
        for side in (1, 2):
            o = enos[side][0][0]
            g = [b for b in o[2:] if b < 0x20 or 0x80 <= b < 0xa0]
            bs.append(1 if g and g[0] < 0x20 and g[0] & 1 else 0)
        check(sorted(bs) == [0, 1], "b bits of the two SYNs: %s, expected exactly one b=1" % bs)
        print("b bits: side1=%d side2=%d" % tuple(bs))
        print("syn-eno-1: %s" % enos[1][0][0].hex())
        print("syn-eno-2: %s" % enos[2][0][0].hex())
    elif mode == "--expect-plain":
        for side, p in segs:
            if not int(p[TCP].flags) & SYN:
                check(not eno_opts(p), "ENO after a failed simultaneous-open negotiation: %s" % describe(p))
    print("simultaneous open: ok")


if __name__ == "__main__":
    try:
        main(sys.argv)
    except Fail as e:
        print("FAIL %s" % e)
        sys.exit(1)
