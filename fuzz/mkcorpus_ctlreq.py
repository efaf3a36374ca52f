#!/usr/bin/env python3
"""fuzz/mkcorpus_ctlreq.py — writes the seed corpus of fuzz/fuzz_ctlreq.c
into fuzz/corpus/ctlreq/ (run from the repository root; the files are
committed, this only documents and repeats how they were made).

Each seed: one mode byte (bits 0-2: descriptors attached, bit 3: "already
received" instead of sent through a socket), then one datagram in the
layout of include/enoshim/ipc.h (little-endian header: len u32, type u16,
nfds u16, seq u32, flags u32, sock u64; then the payload)."""
import os, struct

OUT = "fuzz/corpus/ctlreq"
(HELLO, SOCKET, BIND, LISTEN, CONNECT, SETOPT, GETOPT, SHUTDOWN, ATTACH, KICK, STATUS, COMMAND, CLOSED,
 SETOPT_POSTED, FORKED, CONNECT_POSTED, STANDBY_WANT, STANDBY_TAKE, RELISTEN) = range(1, 20)
SOCK = 0x2f1e3d4c5b6a7988

def msg(typ, payload=b"", nfds=0, seq=7, sock=SOCK, length=None):
    n = 24 + len(payload) if length is None else length
    return struct.pack("<IHHIIQ", n, typ, nfds, seq, 0, sock) + payload

def addr4(port=80):
    return struct.pack("<HHII", 2, port, 0, 0) + bytes([10, 203, 0, 2]) + bytes(12)

def opt(level, name, val):
    return struct.pack("<iiI", level, name, len(val)) + val

def relisten(has_kfd, opts=b"", n=0, port=8080):
    """struct enoipc_relisten (56 bytes, n_opts = n), then the options"""
    return (addr4(port) + struct.pack("<i", 128) + bytes([2, 0, 1, 0, 1, 0, has_kfd, 0]) +
            struct.pack("<IIII", 60, 10, 5, n) + opts)

seeds = {
    "hello": msg(HELLO, struct.pack("<II", 2, 4242), sock=0),
    "socket-v4": msg(SOCKET, struct.pack("<ii", 2, 0), sock=0),
    "socket-v6only": msg(SOCKET, struct.pack("<ii", 10, 1), sock=0),
    "bind": msg(BIND, addr4(8080) + struct.pack("<II", 1, 0)),
    "listen": msg(LISTEN, struct.pack("<ii", 128, 0)),
    "connect": msg(CONNECT, addr4(443)),
    "connect-posted": msg(CONNECT_POSTED, addr4(443)),
    "setopt-nodelay": msg(SETOPT, opt(6, 1, struct.pack("<i", 1))),
    "setopt-posted-teps": msg(SETOPT_POSTED, opt(6, 0x454e03, bytes([0x23, 0x24]))),
    "setopt-aconf": msg(SETOPT, opt(6, 0x454e10, bytes([0, 1, 0, 0x10]))),
    "setopt-max": msg(SETOPT, opt(6, 0x454e0b, bytes(256))),
    "getopt-sessid": msg(GETOPT, struct.pack("<iiI", 6, 0x454e02, 64)),
    "shutdown": msg(SHUTDOWN, struct.pack("<i", 1)),
    "kick-wake": msg(KICK, struct.pack("<I", 1)),
    "kick-rearm": msg(KICK, struct.pack("<I", 2)),
    "status": msg(STATUS, sock=0),
    "command-rekey": msg(COMMAND, struct.pack("<IIQ", 1, 0, 3), sock=0),
    "command-stop": msg(COMMAND, struct.pack("<IIQ", 3, 0, 0), sock=0),
    "closed": msg(CLOSED),
    "forked": msg(FORKED, struct.pack("<QQQ", SOCK, SOCK + 1, 5), sock=0),
    "forked-none": msg(FORKED, sock=0),
    # 17 and 18 are retired (ipc.h version 4): kept as inputs of unknown type
    "standby-want": msg(STANDBY_WANT, sock=0),
    "standby-take": msg(STANDBY_TAKE, struct.pack("<ii", 10, 0)),
    # near misses
    "bad-hello-long": msg(HELLO, struct.pack("<III", 2, 1, 0), sock=0),
    "bad-hello-short": msg(HELLO, struct.pack("<I", 2), sock=0),
    "bad-len-mismatch": msg(STATUS, length=30),
    "bad-setopt-len-past": msg(SETOPT, struct.pack("<iiI", 6, 1, 8) + bytes(4)),
    "bad-setopt-len-huge": msg(SETOPT, struct.pack("<iiI", 6, 1, 0xffffffff) + bytes(4)),
    "bad-setopt-257": msg(SETOPT, opt(6, 1, bytes(257))),
    "bad-kick-3": msg(KICK, struct.pack("<I", 3)),
    "bad-forked-half": msg(FORKED, struct.pack("<QI", 1, 2), sock=0),
    "bad-result": msg(100, struct.pack("<iI", 0, 0)),
    "bad-type-0": msg(0),
    "bad-type-19": msg(19, bytes(8)),
    "bad-header-only-23": msg(STATUS)[:23],
}
TEPS = opt(6, 0x454e03, bytes([0x23, 0x24]))
NODELAY = opt(6, 1, struct.pack("<i", 1))
fd_seeds = {
    "relisten": (3, msg(RELISTEN, relisten(0, n=0))),
    "relisten-kfd-opts": (4, msg(RELISTEN, relisten(1, TEPS + NODELAY, n=2))),
    "bad-relisten-n-past": (3, msg(RELISTEN, relisten(0, TEPS, n=2))),
    "bad-relisten-bytes-after": (3, msg(RELISTEN, relisten(0, TEPS + b"x", n=1))),
    "bad-relisten-kfd-missing": (3, msg(RELISTEN, relisten(1, n=0))),
    "bad-relisten-kfd-2": (4, msg(RELISTEN, relisten(2, n=0))),
    "bad-relisten-two-fds": (2, msg(RELISTEN, relisten(0, n=0))),
    "bad-relisten-short": (3, msg(RELISTEN, relisten(0, n=0)[:55])),
    "bad-five-fds": (5, msg(ATTACH, nfds=5)),
    "attach": (1, msg(ATTACH, nfds=1, sock=0)),
    "listen-kfd": (1, msg(LISTEN, struct.pack("<ii", 511, 1), nfds=1)),
    "bad-listen-undeclared": (1, msg(LISTEN, struct.pack("<ii", 5, 0), nfds=1)),
    "bad-listen-missing": (0, msg(LISTEN, struct.pack("<ii", 5, 1), nfds=0)),
    "bad-attach-none": (0, msg(ATTACH, nfds=0)),
    "bad-attach-two": (2, msg(ATTACH, nfds=2)),
    "bad-attach-three": (3, msg(ATTACH, nfds=3)),
    "bad-status-fd": (1, msg(STATUS, nfds=1)),
    "bad-nfds-lie": (1, msg(ATTACH, nfds=2)),
}
os.makedirs(OUT, exist_ok=True)
for name, data in seeds.items():
    for mode, tag in ((0, "sent"), (8, "direct")):
        open(os.path.join(OUT, "%s-%s" % (tag, name)), "wb").write(bytes([mode]) + data)
for name, (nfds, data) in fd_seeds.items():
    for mode, tag in ((0, "sent"), (8, "direct")):
        open(os.path.join(OUT, "%s-%s" % (tag, name)), "wb").write(bytes([mode | nfds]) + data)
