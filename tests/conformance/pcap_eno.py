#!/usr/bin/python3
"""tests/conformance/pcap_eno.py PCAP PORT [NEEDLE]

The ENO options on the wire of the first connection to TCP port PORT in a
capture (tests/integ/t_eno_*.sh), as "key: value" lines:

  syn-eno:    the ENO option of the SYN (hex, kind and length included) | none
  synack-eno: the ENO option of the SYN-ACK                             | none
  ack-eno:    the ENO option of the active opener's third segment       | none
  syn-count:  number of ENO options in the SYN
  syn-enos:   the ENO options of every SYN (retransmissions) of that
              connection, comma-separated ("none" for a SYN without)
  needle:     found | absent   (NEEDLE, a text, in any payload of the connection)
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from enowire import ACK, SYN, TCP, eno_opts  # noqa: E402
from scapy.all import IP, IPv6, rdpcap  # noqa: E402


def main():
    pcap, port = sys.argv[1], int(sys.argv[2])
    needle = sys.argv[3].encode() if len(sys.argv) > 3 else None
    syn = synack = third = None
    syns = []
    client = None            # (addr, port) of the active opener
    found = False
    for p in rdpcap(pcap):
        if TCP not in p:
            continue
        t = p[TCP]
        ip = p[IPv6] if IPv6 in p else p[IP]
        f = int(t.flags)
        if syn is None:
            if t.dport == port and f & (SYN | ACK) == SYN:
                syn, client = p, (ip.src, t.sport)
                syns.append(p)
            continue
        fwd = (ip.src, t.sport) == client and t.dport == port
        back = (ip.dst, t.dport) == client and t.sport == port
        if not (fwd or back):
            continue
        if fwd and f & (SYN | ACK) == SYN:
            syns.append(p)
        if back and synack is None and f & (SYN | ACK) == SYN | ACK:
            synack = p
        elif fwd and synack is not None and third is None and not f & SYN:
            third = p
        if needle and needle in bytes(t.payload):
            found = True

    def one(p):
        if p is None:
            return "missing"
        e = eno_opts(p)
        return e[0].hex() if e else "none"

    print("syn-eno: %s" % one(syn))
    print("synack-eno: %s" % one(synack))
    print("ack-eno: %s" % one(third))
    print("syn-count: %d" % (len(eno_opts(syn)) if syn is not None else 0))
    print("syn-enos: %s" % ",".join(one(p) for p in syns))
    if needle:
        print("needle: %s" % ("found" if found else "absent"))


if __name__ == "__main__":
    main()
