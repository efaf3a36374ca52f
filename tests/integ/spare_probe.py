#!/usr/bin/env python3
# tests/integ/spare_probe.py — runs under enorun (tund A) and drives the
# reuse of ring memory between connections (tund/spares.c "spare shared
# memory", shim/sockmem.c "kept mappings") through one scenario per call, printing
# what a test can check:
#
#   seq N            N connections one after another (each: 'E', echo, close)
#   hold SECS        one connection closed, then stay alive SECS seconds
#   fork             a connection is inherited by a child that exits; the
#                    parent closes it, then opens one more
#   forkmaps         after closing a few connections (kept mappings), fork: the
#                    child prints how many socket memory mappings it has
#   pass PATH        a connection goes to another process (SCM_RIGHTS over the
#                    unix socket PATH, where `recv PATH` waits); once that one
#                    has used and closed it, and we closed ours, one more
#   recv PATH        the other end of `pass`: use the socket, close it, answer
#
# HOST PORT come first.  Each connection sends 'E' and waits for the echo
# (enobench server's echo mode), so it went through the whole path.
import os
import socket
import sys
import time


def conn(host, port):
    s = socket.create_connection((host, port), timeout=10)
    s.sendall(b"E")
    if s.recv(1) != b"E":
        raise SystemExit("no echo")
    return s


def shm_maps():
    n = 0
    with open("/proc/self/maps") as f:
        for line in f:
            if "memfd:enoshim-socket" in line:
                n += 1
    return n


def settle():
    time.sleep(0.3)   # tund sees the close, the FINs go both ways


def main():
    host, port, what = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    args = sys.argv[4:]
    if what == "seq":
        for _ in range(int(args[0])):
            conn(host, port).close()
            settle()
    elif what == "hold":
        conn(host, port).close()
        settle()
        print("holding", flush=True)
        time.sleep(float(args[0]))
    elif what == "fork":
        s = conn(host, port)
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        os.waitpid(pid, 0)
        s.close()
        settle()
        conn(host, port).close()
        settle()
    elif what == "forkmaps":
        for _ in range(3):
            conn(host, port).close()
            settle()
        print("parent", shm_maps(), flush=True)
        pid = os.fork()
        if pid == 0:
            print("child", shm_maps(), flush=True)
            os._exit(0)
        os.waitpid(pid, 0)
    elif what == "pass":
        s = conn(host, port)
        u = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        for _ in range(100):
            try:
                u.connect(args[0])
                break
            except OSError:
                time.sleep(0.05)
        socket.send_fds(u, [b"x"], [s.fileno()])
        if u.recv(1) != b"k":
            raise SystemExit("no answer from the receiver")
        s.close()
        settle()
        conn(host, port).close()
        settle()
        print("passed", flush=True)
    elif what == "recv":
        lsn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        lsn.bind(args[0])
        lsn.listen(1)
        u, _ = lsn.accept()
        _, fds, _, _ = socket.recv_fds(u, 1, 1)
        s = socket.socket(fileno=fds[0])
        s.settimeout(10)      # the sender's timeout left the fd non-blocking
        s.sendall(b"E")
        if s.recv(1) != b"E":
            raise SystemExit("no echo on the passed socket")
        s.close()
        u.sendall(b"k")
        print("received", flush=True)
    else:
        raise SystemExit("unknown scenario " + what)


if __name__ == "__main__":
    main()
