#!/usr/bin/python3
"""tests/conformance/syn_cross.py TUN1 TUN2 PORT1 PORT2 [TIMEOUT]

Makes two SYNs cross (a simultaneous open, RFC 9293 §3.5) between the tunds
on TUN1 and TUN2 (tests/integ/t_eno_simopen.sh).  The namespace's kernel does
not forward segments with SYN set (iptables, set by the test), so each tund's
SYN from PORT1 to PORT2 (or back) stays in the air; this script reads both
from the TUN devices and, once it holds both, writes each into the other TUN:
both tunds are in SYN-SENT when the other's SYN arrives.  Then it carries
each side's first SYN-ACK across the same way (only after both SYNs were
delivered, so no SYN-ACK can overtake a SYN).  Everything else (ACKs, data)
goes through the kernel as usual.

Prints "ready" once it listens, the two SYNs, "crossed", the two SYN-ACKs,
"relayed"; exit 1 after TIMEOUT seconds (default 30) without them.
"""
import os
import select
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from enowire import ACK, SYN, TCP, Tun, describe  # noqa: E402


def main():
    t1, t2 = Tun(sys.argv[1]), Tun(sys.argv[2])
    p1, p2 = int(sys.argv[3]), int(sys.argv[4])
    timeout = float(sys.argv[5]) if len(sys.argv) > 5 else 30
    print("ready", flush=True)
    end = time.monotonic() + timeout
    syns = collect(t1, t2, p1, p2, SYN, end, "SYN")
    deliver(t1, t2, syns)
    print("crossed", flush=True)
    synacks = collect(t1, t2, p1, p2, SYN | ACK, end, "SYN-ACK")
    deliver(t1, t2, synacks)
    print("relayed", flush=True)


def collect(t1, t2, p1, p2, want, end, what):
    """the first segment with flags SYN/ACK = want from each side"""
    held = {}
    while len(held) < 2:
        left = end - time.monotonic()
        if left <= 0:
            print("FAIL: %ss seen only from %s" % (what, sorted(held) or "nobody"), flush=True)
            sys.exit(1)
        r, _, _ = select.select([t1.s, t2.s], [], [], left)
        for tun, name in ((t1, 1), (t2, 2)):
            if tun.s not in r:
                continue
            p = tun.recv(0.001)
            if p is None:
                continue
            t = p[TCP]
            if int(t.flags) & (SYN | ACK) != want or name in held:
                continue
            if (name == 1 and (t.sport, t.dport) == (p1, p2)) or (name == 2 and (t.sport, t.dport) == (p2, p1)):
                held[name] = p
                print("held %s from tun %d: %s" % (what, name, describe(p)), flush=True)
    return held


def deliver(t1, t2, held):
    """each held segment into the other TUN.  tund writes its segments with
    checksum offload (a partial checksum in the TCP header, which the kernel
    completes when it forwards): complete it first"""
    for k in held:
        del held[k][TCP].chksum
        held[k] = held[k].__class__(bytes(held[k]))
    t2.send(held[1])
    t1.send(held[2])


if __name__ == "__main__":
    main()
