#!/usr/bin/env bash
# Garbage on tund's control socket (SOCK_SEQPACKET, enoshim/ipc.h framing):
# random bytes, a truncated header, wrong and huge declared lengths, an
# oversized datagram, too many / undeclared / missing fds, unknown types,
# wrong payload sizes, requests about sockets that do not exist, ATTACH and
# LISTEN with the wrong kind of fd, a reply-queue flood.  Each malformed
# message must drop only that client; well-formed requests about bad things
# must get an error reply; so must requests on socket ids the client was never
# given (guessed by counting).  Posted CONNECTs (no answer) and the retired
# STANDBY_WANT/TAKE are abused too.  tund stays up, answers enoctl status,
# and an ongoing transfer completes intact.
. "$(dirname "$0")/lib.sh"
topo_up
ongoing_start 7600
base=$(status_count "$A_SOCK")

# the protocol version the build speaks (include/enoshim/ipc.h)
IPC_VERSION=$(sed -n 's/^#define ENOIPC_VERSION *\([0-9]*\)u.*/\1/p' "$TOP/include/enoshim/ipc.h")
[ -n "$IPC_VERSION" ] || fail "no ENOIPC_VERSION in include/enoshim/ipc.h"
timeout 120 python3 - "$A_SOCK" "$BUILD/enoctl" "$IPC_VERSION" "$(tund_pid a)" <<'EOF' || fail "control-socket abuse: see above"
import errno, os, random, socket, struct, sys, time

path = sys.argv[1]
VERSION = int(sys.argv[3])
HELLO, SOCKET, BIND, LISTEN, CONNECT, SETOPT, GETOPT, SHUTDOWN, ATTACH, KICK, STATUS, COMMAND, CLOSED = range(1, 14)
SETOPT_POSTED, FORKED, CONNECT_POSTED, STANDBY_WANT, STANDBY_TAKE = range(14, 19)
RESULT = 100
rng = random.Random(1234)
failures = []

def hdr(length, typ, nfds=0, seq=1, flags=0, sock=0):
    return struct.pack('<IHHIIQ', length, typ, nfds, seq, flags, sock)

def msg(typ, payload=b'', nfds=0, seq=1, sock=0, length=None):
    n = 24 + len(payload) if length is None else length
    return hdr(n, typ, nfds, seq, 0, sock) + payload

def conn():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.settimeout(5)
    s.connect(path)
    return s

def hello(s, seq=1):
    s.send(msg(HELLO, struct.pack('<II', VERSION, os.getpid()), seq=seq))
    r = s.recv(8192)
    length, typ, nfds, rseq, flags, sock = struct.unpack('<IHHIIQ', r[:24])
    err, dlen = struct.unpack('<iI', r[24:32])
    assert typ == RESULT and rseq == seq and err == 0 and length == len(r), (typ, rseq, err)

def alive(what):
    # a fresh, well-formed client still gets served
    try:
        s = conn(); hello(s); s.close()
    except Exception as e:
        print(f"FAIL: after '{what}' tund no longer serves a well-formed client: {e!r}")
        sys.exit(1)

def expect_dropped(s, what):
    """tund must close a client that sent a malformed message."""
    s.settimeout(3)
    try:
        while True:
            d = s.recv(8192)
            if not d:
                return
            # a reply to an earlier valid request may still come first
    except socket.timeout:
        failures.append(f"{what}: tund did not drop the client (no EOF within 3 s)")
    except (ConnectionResetError, BrokenPipeError):
        return
    finally:
        s.close()

def expect_error_reply(s, seq, want, what):
    r = s.recv(8192)
    if not r:
        failures.append(f"{what}: tund dropped the client instead of replying")
        return None
    length, typ, nfds, rseq, flags, sock = struct.unpack('<IHHIIQ', r[:24])
    err, dlen = struct.unpack('<iI', r[24:32])
    if typ != RESULT or rseq != seq:
        failures.append(f"{what}: unexpected reply type {typ} seq {rseq}")
    elif want is not None and err not in want:
        failures.append(f"{what}: error {err} ({os.strerror(err) if err else 'none'}), expected one of {want}")
    return r

def send_raw(data, fds=None, what=''):
    s = conn()
    try:
        if fds is not None:
            socket.send_fds(s, [data], fds)
        else:
            s.send(data)
    except OSError as e:
        print(f"  ({what}: send: {e})")
    return s

def case(what, data, fds=None, hello_first=True):
    s = conn()
    if hello_first:
        hello(s)
    try:
        if fds is not None:
            socket.send_fds(s, [data], fds)
        else:
            s.send(data)
    except OSError as e:
        print(f"  ({what}: send: {e})")
    expect_dropped(s, what)
    alive(what)
    print(f"  ok: {what}")

# 1. random garbage, with and without a greeting first
for i in range(40):
    n = rng.choice([1, 2, 7, 23, 24, 25, 31, 100, 1000, 4095, 4096])
    case(f"random {n} bytes #{i}", rng.randbytes(n), hello_first=(i % 2 == 0))
# random garbage that happens to carry a plausible header
for i in range(20):
    payload = rng.randbytes(rng.randrange(0, 64))
    case(f"random payload with type {i}", msg(rng.randrange(1, 13), payload, length=24 + len(payload) + rng.choice([-1, 1, 8])))

# 2. truncated header
case("truncated header (10 bytes)", hdr(24, HELLO)[:10])
case("empty datagram", b'')
# 3. wrong length field
p = struct.pack('<II', 1, 1)
case("len larger than the datagram", msg(HELLO, p, length=24 + len(p) + 4), hello_first=False)
case("len smaller than the datagram", msg(HELLO, p, length=24 + len(p) - 4), hello_first=False)
case("len 0", msg(HELLO, p, length=0), hello_first=False)
# 4. huge declared length
case("huge declared len 0xffffffff", msg(STATUS, b'', length=0xffffffff))
case("huge declared len 0x7fffffff", msg(SOCKET, struct.pack('<ii', 2, 0), length=0x7fffffff))
# 5. datagram larger than ENOIPC_MAX_MSG
big = rng.randbytes(10000)
case("oversized datagram (10000 bytes)", msg(STATUS, big))
# 6. too many fds
r1, w1 = os.pipe(); r2, w2 = os.pipe()
case("3 fds (max is 2), declared", msg(STATUS, b'', nfds=3), fds=[r1, w1, r2])
case("3 fds, declared as 0", msg(STATUS, b'', nfds=0), fds=[r1, w1, r2])
# 7. undeclared fds / declared but missing
case("1 undeclared fd with HELLO", msg(HELLO, struct.pack('<II', 1, 1)), fds=[r1], hello_first=False)
case("1 undeclared fd with STATUS", msg(STATUS, b''), fds=[w2])
case("declared 1 fd, none attached", msg(STATUS, b'', nfds=1))
case("ATTACH without its fd", msg(ATTACH, b'', nfds=0))
case("SOCKET with 2 unexpected fds", msg(SOCKET, struct.pack('<ii', 2, 0), nfds=2), fds=[r1, w1])
for fd in (r1, w1, r2, w2):
    os.close(fd)
# 8. unknown / reply types sent as requests
case("unknown type 9999", msg(9999, b'xyz'))
case("RESULT sent to tund", msg(RESULT, struct.pack('<iI', 0, 0)))
case("type 0", msg(0, b''))
# 9. wrong payload sizes for each request type
for t, good in [(HELLO, 8), (SOCKET, 8), (BIND, 36), (LISTEN, 8), (CONNECT, 28), (SHUTDOWN, 4),
                (KICK, 4), (STATUS, 0), (COMMAND, 16), (GETOPT, 12)]:
    for n in {0, good - 1, good + 1, good + 100} - {good}:
        if n < 0:
            continue
        case(f"type {t} with {n} payload bytes (wants {good})", msg(t, rng.randbytes(n)))
case("SETOPT with len beyond its payload", msg(SETOPT, struct.pack('<iiI', 6, 1, 200) + b'\0' * 4))
case("SETOPT with len 0xffffffff", msg(SETOPT, struct.pack('<iiI', 6, 1, 0xffffffff)))
case("KICK with an unknown kind", msg(KICK, struct.pack('<I', 77), sock=1))

# 10. well-formed requests about things that do not exist: error replies, client kept
s = conn(); hello(s)
seq = 10
for what, t, payload in [("BIND", BIND, bytes(36)), ("CONNECT", CONNECT, struct.pack('<HHII16s', 2, 80, 0, 0, bytes([10, 202, 0, 2]) + bytes(12))),
                         ("SHUTDOWN", SHUTDOWN, struct.pack('<i', 1)), ("SETOPT", SETOPT, struct.pack('<iiI', 6, 1, 4) + struct.pack('<i', 1)),
                         ("GETOPT", GETOPT, struct.pack('<iiI', 6, 1, 4)), ("LISTEN", LISTEN, struct.pack('<ii', 5, 0))]:
    for sock in (0, 0xffffffffffffffff, 123456789):
        seq += 1
        s.send(msg(t, payload, seq=seq, sock=sock))
        expect_error_reply(s, seq, (errno.EBADF, errno.ENOTSOCK, errno.EINVAL, errno.ENOENT), f"{what} on socket id {sock:#x}")
seq += 1
s.send(msg(KICK, struct.pack('<I', 1), seq=seq, sock=987654321))   # no reply expected
seq += 1
s.send(msg(COMMAND, struct.pack('<IIQ', 77, 0, 0), seq=seq))
expect_error_reply(s, seq, (errno.EINVAL,), "unknown COMMAND")
seq += 1
s.send(msg(HELLO, struct.pack('<II', 99, 1), seq=seq))
expect_error_reply(s, seq, None, "HELLO with version 99")
print("  ok: requests about nonexistent sockets get error replies")

# ATTACH with the wrong kind of fd
for what, fdmaker in [("a pipe", lambda: os.pipe()), ("a socketpair of ours", lambda: socket.socketpair()),
                      ("/dev/null", lambda: (os.open('/dev/null', os.O_RDONLY), None))]:
    objs = fdmaker()
    fd = objs[0] if isinstance(objs[0], int) else objs[0].fileno()
    seq += 1
    socket.send_fds(s, [msg(ATTACH, b'', nfds=1, seq=seq)], [fd])
    r = expect_error_reply(s, seq, (errno.EBADF, errno.ENOENT, errno.ENOTSOCK, errno.EINVAL), f"ATTACH with {what}")
print("  ok: ATTACH with foreign fds refused")

# LISTEN on a real new socket, handing a bogus "kernel listener" fd
for what, mk in [("a pipe", lambda: os.pipe()[0]), ("an unbound TCP socket", lambda: socket.socket().detach()),
                 ("a UDP socket", lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM).detach())]:
    seq += 1
    s.send(msg(SOCKET, struct.pack('<ii', socket.AF_INET, 0), seq=seq))
    data, fds, flags, addr = socket.recv_fds(s, 8192, 4)
    length, typ, nfds, rseq, fl, sockid = struct.unpack('<IHHIIQ', data[:24])
    err, = struct.unpack('<i', data[24:28])
    assert err == 0 and len(fds) == 2, (err, fds)
    fd = mk()
    seq += 1
    socket.send_fds(s, [msg(LISTEN, struct.pack('<ii', 5, 1), nfds=1, seq=seq, sock=sockid)], [fd])
    os.close(fd)
    expect_error_reply(s, seq, None, f"LISTEN with {what}")
    for f in fds:
        os.close(f)
print("  ok: LISTEN with bogus kernel listener fds")
s.close()
alive("error-reply requests")

# 11. reply-queue flood: many SOCKET requests, never reading the replies
s = conn(); hello(s)
s.setblocking(False)
sent = 0
t0 = time.time()
for i in range(3000):
    try:
        s.send(msg(SOCKET, struct.pack('<ii', socket.AF_INET, 0), seq=1000 + i))
        sent += 1
    except BlockingIOError:
        time.sleep(0.01)
    except OSError:
        break
time.sleep(0.5)
s.close()
alive("reply flood")
print(f"  ok: flood of {sent} SOCKET requests without reading replies")

# 12. many clients at once, each sending one bad message
socks = []
for i in range(200):
    c = conn()
    c.send(rng.randbytes(rng.randrange(1, 200)))
    socks.append(c)
for c in socks:
    expect_dropped(c, "one of 200 simultaneous garbage clients")
alive("200 simultaneous garbage clients")
print("  ok: 200 simultaneous garbage clients")

# 13. another program cannot act on a socket it does not hold: ids are
# capabilities, not counters.  Every id a counter would have handed out so
# far (the ongoing transfer's among them) gets SHUTDOWN(SHUT_RDWR) and
# SETOPT(SO_LINGER 0) from a fresh client; each must be refused, and the
# transfer (checked after this script) must not notice.
s = conn(); hello(s)
accepted = 0
for sock in range(1, 6001):
    seq += 2
    s.send(msg(SHUTDOWN, struct.pack('<i', 2), seq=seq, sock=sock))
    s.send(msg(SETOPT, struct.pack('<iiI', socket.SOL_SOCKET, socket.SO_LINGER, 8) + struct.pack('<ii', 1, 0),
               seq=seq + 1, sock=sock))
    for q in (seq, seq + 1):
        r = s.recv(8192)
        length, typ, nfds, rseq, fl, _ = struct.unpack('<IHHIIQ', r[:24])
        err, = struct.unpack('<i', r[24:28])
        if typ != RESULT or rseq != q:
            failures.append(f"guessed id {sock}: unexpected reply type {typ} seq {rseq}")
        elif err == 0:
            accepted += 1
if accepted:
    failures.append(f"{accepted} requests on guessed socket ids 1..6000 were carried out")
s.close()
print("  ok: requests on guessed socket ids refused")

# 14. the messages that get no answer.  A posted CONNECT that tund refuses
# must not end a connection already under way (a second connect from a
# program that broke the shim's rules); the retired STANDBY_WANT and
# STANDBY_TAKE (17, 18) drop the client like any unknown type.
import json, subprocess
enoctl = sys.argv[2]
def mine(remote):
    st = json.loads(subprocess.run([enoctl, "--socket", path, "status", "--json"], capture_output=True,
                                   text=True, timeout=30).stdout)
    return [e["state"] for e in st if e["pid"] == os.getpid() and e["remote"] == remote]
s = conn(); hello(s)
seq += 1
s.send(msg(SOCKET, struct.pack('<ii', socket.AF_INET, 0), seq=seq))
data, fds, flags, addr = socket.recv_fds(s, 8192, 4)
sockid = struct.unpack('<IHHIIQ', data[:24])[5]
# 10.201.0.77 is on tund A's own TUN subnet and nobody's: the SYN loops back
# to lwIP, which drops it; the connection stays in SYN-SENT
dst = struct.pack('<HHII16s', socket.AF_INET, 9, 0, 0, socket.inet_aton("10.201.0.77"))
s.send(msg(CONNECT_POSTED, dst, sock=sockid, seq=seq + 1))
s.send(msg(CONNECT_POSTED, dst, sock=sockid, seq=seq + 2))
seq += 2
time.sleep(0.5)
states = mine("10.201.0.77:9")
if states != ["connecting"]:
    failures.append(f"a second posted CONNECT on a connecting socket: its status is {states}, expected ['connecting']")
for f in fds:
    os.close(f)
s.close()
# the retired standby messages (ipc.h version 4): unknown requests now, so
# the client is dropped
for typ, body in ((STANDBY_WANT, b''), (STANDBY_TAKE, struct.pack('<ii', socket.AF_INET, 0))):
    s = conn(); hello(s)
    s.send(msg(typ, body, seq=5000))
    expect_dropped(s, f"retired message type {typ}")
alive("retired-message and posted-connect abuse")
print("  ok: posted CONNECT twice; the retired STANDBY_WANT and STANDBY_TAKE drop their client")

# 15. RELISTEN (a listener handed over after a tund restart, shim/relisten.c)
# with descriptors that are not what they claim: tund checks each one
# (tund/listener.c conn_relisten) and answers EINVAL, keeps none of them,
# and stays up.  Cases: /dev/null for every end; an unsealed memfd (with a
# pair of our own: made by root, as tund here, it passes as tund's); a sealed memfd of the right size with a garbage
# header; a "kernel listener" that is a connected-nowhere TCP socket.
RELISTEN = 19
tund_pid = int(sys.argv[4])
def tund_fds():
    return len(os.listdir(f"/proc/{tund_pid}/fd"))
def relisten_req(port=9876, has_kfd=0):
    addr = struct.pack('<HHII16s', socket.AF_INET, port, 0, 0, b"")
    body = addr + struct.pack('<iBBBBBBBBIIII', 16, socket.AF_INET, 0, 1, 0, 0, 0, has_kfd, 0, 0, 0, 0, 0)
    assert len(body) == 56, len(body)
    return body
def memfd(seal, header=b""):
    fd = os.memfd_create("enoshim-test", os.MFD_ALLOW_SEALING)
    os.ftruncate(fd, 4096 + 2 * 4096)
    if header:
        os.pwrite(fd, header, 0)
    if seal:
        import fcntl
        fcntl.fcntl(fd, 1033, 0x0002 | 0x0004)   # F_ADD_SEALS: F_SEAL_SHRINK | F_SEAL_GROW
    return fd
before = tund_fds()
cases = []
dn = [os.open("/dev/null", os.O_RDWR) for _ in range(4)]
cases.append(("/dev/null for every end", dn[:3], 0))
a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
cases.append(("unsealed memory", [a.fileno(), b.fileno(), memfd(False)], 0))
c, d = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
cases.append(("sealed memory with a garbage header", [c.fileno(), d.fileno(), memfd(True, os.urandom(4096))], 0))
e1, e2 = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
k = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
cases.append(("a kernel socket that does not listen", [e1.fileno(), e2.fileno(), memfd(True), k.fileno()], 1))
for i, (what, fds, has_kfd) in enumerate(cases):
    s = conn(); hello(s)
    p = relisten_req(has_kfd=has_kfd)
    socket.send_fds(s, [msg(RELISTEN, p, nfds=len(fds), seq=7000 + i, sock=0x1234)], fds)
    r = s.recv(8192)
    if not r:
        failures.append(f"RELISTEN with {what}: tund dropped the client instead of answering")
    else:
        typ, = struct.unpack('<H', r[4:6])
        err, = struct.unpack('<i', r[24:28])
        if typ != RESULT or err != errno.EINVAL:
            failures.append(f"RELISTEN with {what}: reply type {typ} err {err}, expected RESULT EINVAL")
    s.close()
time.sleep(0.3)
after = tund_fds()
if after > before:
    failures.append(f"RELISTEN refusals left tund with {after - before} more descriptors ({before} -> {after})")
alive("RELISTEN with bad descriptors")
print(f"  ok: RELISTEN refused 4 kinds of bad descriptors with EINVAL; tund holds {after} fds as before ({before})")

if failures:
    for f in failures[:20]:
        print("FAIL:", f)
    sys.exit(1)
print("all cases done")
EOF
tund_alive a
enoctl_a status >/dev/null || fail "enoctl status does not answer"
ongoing_check
wait_count "$A_SOCK" 0 20
tund_alive a
note "ok"
