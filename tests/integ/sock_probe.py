#!/usr/bin/env python3
# tests/integ/sock_probe.py — runs under enorun (tund A) and checks what
# socket() gives a program that makes one connection after another, and
# what stays behind when it rests.  One scenario per call; t_inflight.sh
# reads what it prints.
#
#   seq N      N connections one after another (each: 'E', echo, close)
#   lowest     after a few connections: socket() returns the lowest free fd
#   closeall   the program closes every fd from 3 up (closerange), then
#              connects again twice
#   dup2       the program dup2()s /dev/null onto every fd number from 800 up
#              (the shim's own among them), then connects again twice; the
#              dup2'd fds must be /dev/null
#   fork       a child connects 3 times, the parent too; both must work
#   exec       exec this probe with "fds", which prints how many sockets it
#              holds at fds >= 3 (none expected: nothing of the shim's
#              crosses exec)
#   hold SECS  3 connections closed and 3 kept open, print "holding PID",
#              stay alive SECS seconds
#
# HOST PORT come first.
import os
import socket
import sys
import time

from spare_probe import conn   # one connection: 'E', the echo


def warm(host, port):
    """Three connections one after another, and an option that asks tund
    (the shim reads its control connection then)."""
    for _ in range(3):
        conn(host, port).close()
    s = conn(host, port)
    s.getsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG)
    s.close()


def lowest_free():
    fd = os.dup(0)
    os.close(fd)
    return fd


def main():
    host, port, what = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    args = sys.argv[4:]
    if what == "seq":
        for _ in range(int(args[0])):
            conn(host, port).close()
    elif what == "lowest":
        warm(host, port)
        hole = os.open("/dev/null", os.O_RDONLY)
        keep = os.open("/dev/null", os.O_RDONLY)
        os.close(hole)   # a hole below an open fd
        want = lowest_free()
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        got = s.fileno()
        s.connect((host, port))
        s.sendall(b"E")
        ok = s.recv(1) == b"E"
        s.close()
        os.close(keep)
        print("lowest want %d got %d echo %s" % (want, got, ok), flush=True)
    elif what == "closeall":
        warm(host, port)
        sys.stdout.flush()
        os.closerange(3, 4096)
        conn(host, port).close()
        conn(host, port).close()
        print("closeall ok", flush=True)
    elif what == "dup2":
        warm(host, port)
        null = os.open("/dev/null", os.O_RDONLY)
        hit = []
        for fd in range(800, 1024):
            try:
                os.fstat(fd)
            except OSError:
                continue
            os.dup2(null, fd)
            hit.append(fd)
        conn(host, port).close()
        conn(host, port).close()
        bad = [fd for fd in hit if os.readlink("/proc/self/fd/%d" % fd) != "/dev/null"]
        print("dup2 over %d fds, not /dev/null after: %d" % (len(hit), len(bad)), flush=True)
    elif what == "fork":
        warm(host, port)
        pid = os.fork()
        if pid == 0:
            try:
                for _ in range(3):
                    conn(host, port).close()
            except BaseException as e:   # noqa: BLE001 — report, and fail the child
                print("child failed: %r" % e, flush=True)
                os._exit(1)
            os._exit(0)
        for _ in range(3):
            conn(host, port).close()
        _, st = os.waitpid(pid, 0)
        print("fork child %d" % os.waitstatus_to_exitcode(st), flush=True)
    elif what == "exec":
        warm(host, port)
        sys.stdout.flush()
        os.execv(sys.executable, [sys.executable, sys.argv[0], host, str(port), "fds"])
    elif what == "fds":
        n = 0
        for name in os.listdir("/proc/self/fd"):
            fd = int(name)
            if fd < 3:
                continue
            try:
                if os.readlink("/proc/self/fd/%d" % fd).startswith("socket:"):
                    n += 1
            except OSError:
                pass
        print("sockets after exec: %d" % n, flush=True)
    elif what == "hold":
        warm(host, port)
        kept = [conn(host, port) for _ in range(3)]
        print("holding %d" % os.getpid(), flush=True)
        time.sleep(float(args[0]))
        for s in kept:
            s.close()
    else:
        raise SystemExit("unknown scenario " + what)


if __name__ == "__main__":
    main()
