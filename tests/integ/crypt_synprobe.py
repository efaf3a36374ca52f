#!/usr/bin/python3
"""crypt_synprobe.py - send one SYN with a given ENO option (kind 69) and print
the ENO option of the SYN-ACK (hex, "none" without one, "no-answer").

Usage: crypt_synprobe.py SRC DST DPORT ENO-CONTENTS-HEX

ENO-CONTENTS-HEX is the option's contents (without kind and length).  The
kernel of this namespace owns SRC, so it resets the half-open connection
after the SYN-ACK.  Run inside the test's network namespace, as root.
"""
import logging
import random
import sys

logging.getLogger("scapy").setLevel(logging.ERROR)
from scapy.all import IP, TCP, conf, sr1  # python3-scapy


def main():
    src, dst, dport, contents = sys.argv[1], sys.argv[2], int(sys.argv[3]), bytes.fromhex(sys.argv[4])
    conf.verb = 0
    syn = IP(src=src, dst=dst) / TCP(sport=random.randint(20000, 60000), dport=dport, flags="S",
                                     seq=random.getrandbits(32), window=65535,
                                     options=[("MSS", 1460), (69, contents)])
    ans = sr1(syn, timeout=5, retry=2)
    if ans is None or TCP not in ans:
        print("no-answer")
        return 1
    for o in ans[TCP].options:
        if o[0] == 69 or o[0] == "69":
            data = o[1] if isinstance(o[1], bytes) else bytes(o[1])
            print((bytes([69, 2 + len(data)]) + data).hex())
            return 0
    print("none")
    return 0


if __name__ == "__main__":
    sys.exit(main())
