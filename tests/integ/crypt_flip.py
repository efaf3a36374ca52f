#!/usr/bin/python3
"""crypt_flip.py - flip one byte of a TCP segment in flight (an NFQUEUE
userspace verdict program, raw netlink, no library).

Usage: crypt_flip.py QUEUE OFFSET [COUNT]

Binds netfilter queue QUEUE (iptables ... -j NFQUEUE --queue-num QUEUE),
prints "ready", then for the first COUNT (default 1) IPv4/TCP packets that
carry payload beyond OFFSET bytes into the IP packet: inverts that byte,
recomputes the TCP checksum (so the receiving TCP accepts the segment and
hands the altered bytes up), and re-injects the packet with the verdict.
Every other packet is accepted unchanged.  Prints one line per flipped
packet and runs until killed.

Why not tc: the test machine's kernel has no act_pedit / act_csum
(CONFIG_NET_ACT_PEDIT, _CSUM unset); it has xt_NFQUEUE and nfnetlink_queue.
"""
import errno
import socket
import struct
import sys

NETLINK_NETFILTER = 12
NFNL_SUBSYS_QUEUE = 3
NFQNL_MSG_PACKET, NFQNL_MSG_VERDICT, NFQNL_MSG_CONFIG = 0, 1, 2
NFQA_CFG_CMD, NFQA_CFG_PARAMS = 1, 2
NFQNL_CFG_CMD_BIND, NFQNL_CFG_CMD_PF_BIND, NFQNL_CFG_CMD_PF_UNBIND = 1, 3, 4
NFQNL_COPY_PACKET = 2
NFQA_PACKET_HDR, NFQA_VERDICT_HDR, NFQA_PAYLOAD = 1, 2, 10
NF_ACCEPT = 1
NLM_F_REQUEST, NLM_F_ACK = 1, 4
NLMSG_ERROR = 2


def attr(t, data):
    a = struct.pack("=HH", 4 + len(data), t) + data
    return a + b"\0" * ((4 - len(a) % 4) % 4)


def msg(mtype, queue, attrs, flags=NLM_F_REQUEST, family=socket.AF_UNSPEC):
    body = struct.pack("=BBH", family, 0, socket.htons(queue)) + b"".join(attrs)
    return struct.pack("=IHHII", 16 + len(body), (NFNL_SUBSYS_QUEUE << 8) | mtype, flags, 0, 0) + body


def parse_attrs(b):
    out = {}
    i = 0
    while i + 4 <= len(b):
        ln, t = struct.unpack_from("=HH", b, i)
        if ln < 4:
            break
        out[t & 0x7FFF] = b[i + 4:i + ln]
        i += (ln + 3) & ~3
    return out


def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def fix_tcp_checksum(pkt):
    ihl = (pkt[0] & 0x0F) * 4
    tot = struct.unpack_from("!H", pkt, 2)[0]
    tcp = bytearray(pkt[ihl:tot])
    tcp[16:18] = b"\0\0"
    pseudo = pkt[12:20] + struct.pack("!BBH", 0, 6, len(tcp))
    struct.pack_into("!H", tcp, 16, csum(bytes(pseudo) + bytes(tcp)))
    pkt[ihl:tot] = tcp


def config(sock, queue, attrs):
    sock.send(msg(NFQNL_MSG_CONFIG, queue, attrs, NLM_F_REQUEST | NLM_F_ACK))
    r = sock.recv(65536)
    ln, t = struct.unpack_from("=IH", r, 0)
    if t == NLMSG_ERROR:
        err = struct.unpack_from("=i", r, 16)[0]
        if err:
            raise OSError(-err, "nfqueue config: %s" % errno.errorcode.get(-err, str(err)))


def main():
    queue, offset = int(sys.argv[1]), int(sys.argv[2])
    count = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
    s.bind((0, 0))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    config(s, queue, [attr(NFQA_CFG_CMD, struct.pack("!BxH", NFQNL_CFG_CMD_BIND, socket.AF_INET))])
    config(s, queue, [attr(NFQA_CFG_PARAMS, struct.pack("!IB", 0xFFFF, NFQNL_COPY_PACKET))])
    print("ready", flush=True)
    flipped = 0
    while True:
        b = s.recv(1 << 17)
        i = 0
        while i + 16 <= len(b):
            ln, t = struct.unpack_from("=IH", b, i)
            if ln < 16:
                break
            m = b[i:i + ln]
            i += (ln + 3) & ~3
            if t != ((NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET):
                continue
            a = parse_attrs(m[20:])
            pid = struct.unpack_from("!I", a[NFQA_PACKET_HDR], 0)[0]
            pkt = bytearray(a.get(NFQA_PAYLOAD, b""))
            attrs = [attr(NFQA_VERDICT_HDR, struct.pack("!II", NF_ACCEPT, pid))]
            if flipped < count and len(pkt) > offset and pkt[9] == 6:
                ihl = (pkt[0] & 0x0F) * 4
                doff = (pkt[ihl + 12] >> 4) * 4
                if offset >= ihl + doff:
                    seq = struct.unpack_from("!I", pkt, ihl + 4)[0]
                    pkt[offset] ^= 0xFF
                    fix_tcp_checksum(pkt)
                    attrs.append(attr(NFQA_PAYLOAD, bytes(pkt)))
                    flipped += 1
                    print("flipped byte %d of the packet (TCP payload byte %d, seq %d, length %d)"
                          % (offset, offset - ihl - doff, seq, len(pkt)), flush=True)
            s.send(msg(NFQNL_MSG_VERDICT, queue, attrs))


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        pass
