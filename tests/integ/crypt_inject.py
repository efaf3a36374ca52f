#!/usr/bin/python3
"""crypt_inject.py - inject a TCP FIN into a tcpcrypt connection (RFC 8548
§3.7: a FIN without a FINp frame is truncation, not end of file).

Usage: crypt_inject.py PCAP SRC SPORT DST DPORT [HEX]

Reads the capture of the (idle) connection SRC:SPORT -> DST:DPORT, takes the
next sequence number SRC would send (the highest seq + payload length it has
sent) and the last acknowledgment number and window it sent, and sends one
FIN|ACK segment with exactly those values (with HEX: a PSH|ACK segment
carrying those bytes instead, e.g. a malformed frame), from SRC's address, through this
namespace's routing towards DST.  The real SRC knows nothing of it; DST's TCP
accepts it as in-order.  Prints the segment it sent.  Run inside the test's
network namespace, as root (raw socket).
"""
import logging
import sys

logging.getLogger("scapy").setLevel(logging.ERROR)   # before scapy loads: no link-type warnings
from scapy.all import IP, TCP, Raw, rdpcap, send  # python3-scapy


def main():
    pcap, src, sport, dst, dport = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], int(sys.argv[5])
    data = bytes.fromhex(sys.argv[6]) if len(sys.argv) > 6 else None
    isn = None
    nxt = None           # relative to the ISN, so that wrap-around does not matter
    last = None
    for p in rdpcap(pcap):
        if IP not in p or TCP not in p:
            continue
        ip, t = p[IP], p[TCP]
        if ip.src != src or ip.dst != dst or t.sport != sport or t.dport != dport:
            continue
        if t.flags & 0x02:                      # SYN
            isn = t.seq
        if isn is None:
            continue
        plen = ip.len - ip.ihl * 4 - t.dataofs * 4
        end = (t.seq - isn + plen + (1 if t.flags & 0x02 else 0)) % 2**32
        if nxt is None or end > nxt:
            nxt = end
        if t.flags & 0x10:                      # ACK
            last = t
    if isn is None or last is None:
        print("no handshake of %s:%d -> %s:%d in %s" % (src, sport, dst, dport, pcap), file=sys.stderr)
        return 1
    seg = IP(src=src, dst=dst) / TCP(sport=sport, dport=dport, flags="PA" if data else "FA",
                                     seq=(isn + nxt) % 2**32, ack=last.ack, window=last.window)
    if data:
        seg = seg / Raw(data)
    send(seg, verbose=0)
    print("injected %s %s:%d -> %s:%d seq=%d ack=%d win=%d%s"
          % ("PSH|ACK" if data else "FIN|ACK", src, sport, dst, dport, seg[TCP].seq, seg[TCP].ack,
             seg[TCP].window, " data " + data.hex() if data else " (no FINp frame)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
