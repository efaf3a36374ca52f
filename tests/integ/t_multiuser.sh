#!/usr/bin/env bash
# One tund for every user of the host, each user's programs isolated
# (issue 14 point 5; tund/access.c, tund/client.c).  Two users made for the
# test (removed at exit) use the root-started tunds A and B of lib.sh's
# topology:
#   1. user 1: an echo server on B and a program holding 3 connections to it
#      from A; user 2: a program holding 1 connection.  enoctl status on A as
#      user 1 lists its 3, as user 2 its 1, as root all 4; on B user 1 sees
#      its listener and the connections accepted from it, user 2 nothing;
#   2. rekey: user 2 cannot rekey user 1's connection ("no connection ID",
#      as for one that does not exist); "rekey all" rekeys only the caller's
#      (1 for user 2, 3 for user 1); root rekeys any;
#   3. stop and flush-cache: refused to user 2 (only root or tund's user),
#      tund keeps running; check is allowed;
#   4. user 2 speaking the control protocol itself: HELLO; STATUS lists only
#      its own connection; ATTACH of 300 socket ends it made, a pipe and a
#      file: refused (ENOENT / EBADF) — the pair end is the proof of holding
#      a socket (its SO_COOKIE, never reused); SHUTDOWN, SETOPT, GETOPT,
#      BIND, CONNECT with 1000 made-up ids: EBADF each; KICK, CLOSED, FORKED
#      with made-up ids change nothing; COMMAND stop/flush-cache: EPERM,
#      rekey of user 1's connection: ENOENT; user 1's connections are intact
#      and echo afterwards;
#   5. a socket user 1 passes to user 2 (SCM_RIGHTS): user 2's shim attaches
#      it, uses it (its echo comes back), and now sees it in enoctl status;
#   6. allow_users / allow_groups: a tund serving user 1 only refuses user 2
#      (its program's socket() fails with ENETDOWN and the shim says "does
#      not serve uid N"; enoctl says the same; tund logs the refusal) and
#      serves user 1 and root; allow_groups = user 2's group serves user 2;
#   7. a tund started by user 1 itself (on a TUN made for it, tun_attach)
#      serves user 1 and root, refuses user 2, and its socket is 0600.
. "$(dirname "$0")/lib.sh"
topo_up
chmod 711 "$WORK"
U1=enou1x$$; U2=enou2x$$
. "$(dirname "$0")/users_lib.sh"   # drop_user
for u in $U1 $U2; do
  useradd --system --no-create-home --shell /usr/sbin/nologin --user-group "$u" || fail "useradd $u"
  on_exit "drop_user $u"
done
UID1=$(id -u $U1); UID2=$(id -u $U2)

# what the users run, where they can read it
mkdir -m 755 "$WORK/bin"
cp "$BUILD/libenoshim.so" "$BUILD/tund" "$PROGS/echo_srv" "$PROGS/sem_many" "$WORK/bin/" || fail "build first"
ln -s tund "$WORK/bin/enoctl"
LIB=$WORK/bin/libenoshim.so PRELOAD=$WORK/bin/libenoshim.so
if asan=$(ldd "$LIB" 2>/dev/null | awk '/libasan/ {print $3; exit}') && [ -n "$asan" ]; then
  ubsan=$(ldd "$LIB" 2>/dev/null | awk '/libubsan/ {print $3; exit}')
  PRELOAD="$asan${ubsan:+:$ubsan}:$LIB"
  export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=0:verify_asan_link_order=0:abort_on_error=1}"
fi
as() { local u=$1; shift; in_ns setpriv --reuid="$u" --regid="$u" --init-groups -- "$@"; }
# under USER SOCK CMD...: a program of USER under the shim, on that tund
under() { local u=$1 s=$2; shift 2; as "$u" env ENOSHIM_SOCKET="$s" LD_PRELOAD="$PRELOAD" "$@"; }
ctl() { local u=$1; shift; if [ "$u" = root ]; then "$WORK/bin/enoctl" "$@"; else as "$u" "$WORK/bin/enoctl" "$@"; fi; }
# streams / listeners WHO SOCK: how many of each WHO sees
count() { ctl "$1" --socket "$2" status --json | "$PY" -c '
import json, sys
st = json.load(sys.stdin)
print(sum(e["kind"] == "stream" for e in st), sum(e["kind"] == "listener" for e in st))'; }

# ---- 1. status ------------------------------------------------------------------------------
under $U1 "$B_SOCK" "$WORK/bin/echo_srv" 7300 >"$WORK/echo.out" 2>"$WORK/echo.log" &
echo_pid=$!
on_exit "kill $echo_pid"
wait_log "$WORK/echo.out" '^listening'
under $U1 "$A_SOCK" "$WORK/bin/sem_many" "$B4" 7300 3 "$WORK/hold1" >"$WORK/m1.out" 2>"$WORK/m1.log" &
m1=$!
under $U2 "$A_SOCK" "$WORK/bin/sem_many" "$B4" 7300 1 "$WORK/hold2" >"$WORK/m2.out" 2>"$WORK/m2.log" &
m2=$!
on_exit "touch $WORK/hold1 $WORK/hold2"
wait_log "$WORK/m1.out" '^echoed' 30
wait_log "$WORK/m2.out" '^echoed' 30
[ "$(count $U1 "$A_SOCK")" = "3 0" ] || fail "A: user 1 sees $(count $U1 "$A_SOCK") (streams listeners), want its 3 streams"
[ "$(count $U2 "$A_SOCK")" = "1 0" ] || fail "A: user 2 sees $(count $U2 "$A_SOCK"), want its 1 stream"
[ "$(count root "$A_SOCK")" = "4 0" ] || fail "A: root sees $(count root "$A_SOCK"), want all 4"
[ "$(count $U1 "$B_SOCK")" = "4 1" ] || fail "B: user 1 sees $(count $U1 "$B_SOCK"), want its listener and the 4 accepted"
[ "$(count $U2 "$B_SOCK")" = "0 0" ] || fail "B: user 2 sees $(count $U2 "$B_SOCK"), want nothing"
ctl $U2 --socket "$A_SOCK" status | sed 's/^/    | /'
note "1. status on A: user 1 sees its 3, user 2 its 1, root 4; on B user 1 its listener and 4 accepted, user 2 none"

# ---- 2. rekey ---------------------------------------------------------------------------------
ids() { ctl "$1" --socket "$A_SOCK" status --json | "$PY" -c 'import json,sys; print(" ".join(str(e["id"]) for e in json.load(sys.stdin)))'; }
ids1=$(ids $U1); id2=$(ids $U2); id1=${ids1%% *}
run() { "$@" >"$WORK/run.out" 2>"$WORK/run.err"; RC=$?; OUT=$(cat "$WORK/run.out"); ERR=$(cat "$WORK/run.err"); }
run ctl $U2 --socket "$A_SOCK" rekey "$id1"
[ $RC -eq 1 ] && [ "$ERR" = "enoctl: no connection $id1" ] || fail "user 2 rekey of user 1's $id1: exit $RC '$OUT' '$ERR'"
run ctl $U2 --socket "$A_SOCK" rekey all
[ $RC -eq 0 ] && [ "$OUT" = "rekey started on 1 connection" ] || fail "user 2 rekey all: exit $RC '$OUT' '$ERR'"
run ctl $U1 --socket "$A_SOCK" rekey all
[ $RC -eq 0 ] && [ "$OUT" = "rekey started on 3 connections" ] || fail "user 1 rekey all: exit $RC '$OUT' '$ERR'"
run ctl $U1 --socket "$A_SOCK" rekey "$id2"
[ $RC -eq 1 ] && [ "$ERR" = "enoctl: no connection $id2" ] || fail "user 1 rekey of user 2's $id2: exit $RC '$ERR'"
run ctl root --socket "$A_SOCK" rekey "$id2"
[ $RC -eq 0 ] && [ "$OUT" = "rekey started on 1 connection" ] || fail "root rekey of $id2: exit $RC '$OUT' '$ERR'"
# every connection rekeyed once, user 2's twice (its own and root's)
rk=$(ctl root --socket "$A_SOCK" status --json | "$PY" -c '
import json, sys
r = sorted(e["rekeys"] for e in json.load(sys.stdin))
print("ok" if r[0] > 0 and r[:3] == [r[0]] * 3 and r[3] == 2 * r[0] else r)')
[ "$rk" = ok ] || fail "rekey counts $rk: want three alike and user 2's twice as many"
note "2. rekey: user 2 gets 'no connection $id1' for user 1's; rekey all = 1 (user 2) / 3 (user 1); root any"

# ---- 3. stop, flush-cache, check ---------------------------------------------------------------------
for c in stop flush-cache; do
  run ctl $U2 --socket "$A_SOCK" $c
  [ $RC -eq 1 ] && printf '%s' "$ERR" | grep -q "^enoctl: only root or tund's user (uid 0) may " || fail "user 2 $c: exit $RC '$OUT' '$ERR'"
  note "   user 2: enoctl $c: $ERR"
done
run ctl $U2 --socket "$A_SOCK" check
[ $RC -eq 0 ] || fail "user 2 check: exit $RC $ERR"
tund_alive a
note "3. stop / flush-cache refused to user 2 (only root or tund's user); check allowed; tund A up"

# ---- 4. the raw protocol as user 2 ---------------------------------------------------------------------
IPC_VERSION=$(sed -n 's/^#define ENOIPC_VERSION *\([0-9]*\)u.*/\1/p' "$TOP/include/enoshim/ipc.h")
cat >"$WORK/raw.py" <<'EOF'
import array, os, random, socket, struct, sys
path, version, other = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
HELLO, SOCKET, BIND, LISTEN, CONNECT, SETOPT, GETOPT, SHUTDOWN, ATTACH, KICK, STATUS, COMMAND, CLOSED = range(1, 14)
SETOPT_POSTED, FORKED, CONNECT_POSTED = 14, 15, 16
RESULT, ENTRY = 100, 101
EBADF, ENOENT, EPERM = 9, 2, 1
rng = random.Random(99)
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
s.settimeout(5)
s.connect(path)
seq = 0
def send(typ, payload=b"", sock=0, fds=()):
    global seq
    seq += 1
    h = struct.pack("<IHHIIQ", 24 + len(payload), typ, len(fds), seq, 0, sock)
    anc = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))] if fds else []
    s.sendmsg([h + payload], anc)
    return seq
def result(want_seq):
    entries = 0
    while True:
        d = s.recv(8192)
        assert d, "tund dropped us"
        length, typ, nfds, rseq, flags, sock = struct.unpack("<IHHIIQ", d[:24])
        if typ == ENTRY:
            entries += 1
            continue
        assert typ == RESULT and rseq == want_seq, (typ, rseq, want_seq)
        err, dlen = struct.unpack("<iI", d[24:32])
        return err, d[32:32 + dlen], entries
def call(typ, payload=b"", sock=0, fds=()):
    return result(send(typ, payload, sock, fds))
err, _, _ = call(HELLO, struct.pack("<II", version, os.getpid()))
assert err == 0, err
err, data, n = call(STATUS)
print("status entries", n)
# ATTACH: ends of pairs we made, a pipe, a file
bad = {}
for i in range(300):
    a, b = socket.socketpair()
    err, _, _ = call(ATTACH, fds=(b.fileno(),))
    bad[err] = bad.get(err, 0) + 1
    a.close(); b.close()
r, w = os.pipe()
err_pipe, _, _ = call(ATTACH, fds=(r,))
f = os.open("/dev/null", os.O_RDONLY)
err_file, _, _ = call(ATTACH, fds=(f,))
print("attach pairs", sorted(bad.items()), "pipe", err_pipe, "file", err_file)
# made-up ids
addr = struct.pack("<HHII", 2, 7300, 0, 0) + bytes([10, 202, 0, 2]) + bytes(12)
got = {}
for i in range(1000):
    sid = rng.getrandbits(63) or 1
    for typ, p in ((SHUTDOWN, struct.pack("<i", 2)), (SETOPT, struct.pack("<iiI", 6, 1, 4) + struct.pack("<i", 1)),
                   (GETOPT, struct.pack("<iiI", 6, 1, 4)), (BIND, addr + struct.pack("<II", 0, 0)), (CONNECT, addr)):
        err, _, _ = call(typ, p, sock=sid)
        got[err] = got.get(err, 0) + 1
    send(KICK, struct.pack("<I", 1), sock=sid)
    send(SETOPT_POSTED, struct.pack("<iiI", 6, 1, 4) + struct.pack("<i", 1), sock=sid)
    send(CONNECT_POSTED, addr, sock=sid)
    call(CLOSED, sock=sid)
err, _, _ = call(FORKED, b"".join(struct.pack("<Q", rng.getrandbits(63)) for _ in range(100)))
print("made-up ids", sorted(got.items()), "forked", err)
stop, text, _ = call(COMMAND, struct.pack("<IIQ", 3, 0, 0))
flush, _, _ = call(COMMAND, struct.pack("<IIQ", 2, 0, 0))
rekey, rtext, _ = call(COMMAND, struct.pack("<IIQ", 1, 0, other))
print("stop", stop, text.decode(), "| flush", flush, "| rekey", rekey, rtext.decode())
EOF
chmod 644 "$WORK/raw.py"
out=$(as $U2 "$PY" "$WORK/raw.py" "$A_SOCK" "$IPC_VERSION" "$id1" 2>&1) || fail "user 2's raw client: $out"
printf '%s\n' "$out" | sed 's/^/    | /'
want() { printf '%s\n' "$out" | grep -Fxq -- "$1" || fail "raw client: no line '$1'"; }
want "status entries 1"
want "attach pairs [(2, 300)] pipe 9 file 9"
want "made-up ids [(9, 5000)] forked 0"
want "stop 1 only root or tund's user (uid 0) may stop tund | flush 1 | rekey 2 no connection $id1"
tund_alive a
[ "$(count root "$A_SOCK")" = "4 0" ] || fail "after user 2's raw client root sees $(count root "$A_SOCK") on A"
kill -0 $m1 && kill -0 $m2 || fail "a holding program ended during user 2's attempts"
note "4. user 2's own client: 300 ATTACHes ENOENT, pipe/file EBADF, 5000 requests on made-up ids EBADF, stop/flush EPERM"

# ---- 5. a socket passed from user 1 to user 2 ----------------------------------------------------------
mkdir -m 777 "$WORK/pass"; chmod 777 "$WORK/pass"
cat >"$WORK/recv.py" <<'EOF'
import array, os, socket, sys
path, hold = sys.argv[1], sys.argv[2]
socket.socket().close()          # this process's control connection first
l = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
l.bind(path); os.chmod(path, 0o777); l.listen(1)
print("waiting", flush=True)
c, _ = l.accept()
msg, anc, flags, addr = c.recvmsg(16, socket.CMSG_SPACE(4))
fd = array.array("i", anc[0][2])[0]
s = socket.socket(fileno=fd)
s.settimeout(10)
s.sendall(b"passed along")
print("echo", s.recv(100).decode(), flush=True)
while not os.path.exists(hold):
    import time; time.sleep(0.05)
EOF
cat >"$WORK/send.py" <<'EOF'
import array, socket, sys
path, host = sys.argv[1], sys.argv[2]
s = socket.create_connection((host, 7300), timeout=10)
s.sendall(b"x"); assert s.recv(10) == b"x"
u = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
u.connect(path)
u.sendmsg([b"f"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [s.fileno()]))])
print("sent", flush=True)
EOF
chmod 644 "$WORK/recv.py" "$WORK/send.py"
under $U2 "$A_SOCK" "$PY" "$WORK/recv.py" "$WORK/pass/p.sock" "$WORK/hold3" >"$WORK/recv.out" 2>&1 &
rp=$!
on_exit "touch $WORK/hold3"
wait_log "$WORK/recv.out" '^waiting'
under $U1 "$A_SOCK" "$PY" "$WORK/send.py" "$WORK/pass/p.sock" "$B4" >"$WORK/send.out" 2>&1 || fail "user 1's sender: $(cat "$WORK/send.out")"
wait_log "$WORK/recv.out" '^echo passed along$'
[ "$(count $U2 "$A_SOCK")" = "2 0" ] || fail "user 2 sees $(count $U2 "$A_SOCK") after the pass, want its own and the passed one"
[ "$(count $U1 "$A_SOCK")" = "4 0" ] || fail "user 1 sees $(count $U1 "$A_SOCK") after the pass, want its 3 and the one it made and passed"
touch "$WORK/hold3"; wait $rp
note "5. a socket passed by user 1 to user 2: attached and used by user 2, who now sees it"
touch "$WORK/hold1" "$WORK/hold2"
wait $m1 || fail "user 1's connections did not end well: $(tail -3 "$WORK/m1.log")"
wait $m2 || fail "user 2's connection did not end well: $(tail -3 "$WORK/m2.log")"

# ---- 6. allow_users, allow_groups ---------------------------------------------------------------------
# stop_tund I: the tund lib.sh's start_tund started as TUND_PIDS[I] (a wrapper shell)
stop_tund() {
  local w=${TUND_PIDS[$1]} p
  p=$(pgrep -P "$w" -x tund || echo "$w")
  kill "$p"
  wait_gone "$p" 10 || fail "tund $1 did not stop"
  wait "$w" 2>/dev/null
}
C_SOCK=$WORK/c.sock
start_tund c "$C_SOCK" tun-c 10.209.0.1 10.209.0.2 fd00:209::1 fd00:209::2 --allow_users="$U1"
PROG='import errno, socket
try:
    socket.socket(); print("socket ok")
except OSError as e:
    print("socket failed:", errno.errorcode.get(e.errno))'
run under $U2 "$C_SOCK" "$PY" -c "$PROG"
[ "$OUT" = "socket failed: ENETDOWN" ] && printf '%s' "$ERR" | grep -q "tund at $C_SOCK does not serve uid $UID2 (its allow_users / allow_groups)" ||
  fail "user 2 on a tund for user 1: '$OUT' $ERR"
run ctl $U2 --socket "$C_SOCK" status
[ $RC -eq 1 ] && [ "$ERR" = "enoctl: tund at $C_SOCK does not serve uid $UID2 (its allow_users / allow_groups)" ] ||
  fail "user 2's enoctl on a tund for user 1: exit $RC $ERR"
grep -q "refusing control client uid $UID2 pid [0-9]*: not in allow_users / allow_groups" "$WORK/tund-c.log" ||
  fail "tund C did not log the refusal: $(tail -3 "$WORK/tund-c.log")"
run under $U1 "$C_SOCK" "$PY" -c "$PROG"
[ "$OUT" = "socket ok" ] || fail "user 1 on its tund: '$OUT' $ERR"
run ctl root --socket "$C_SOCK" status
[ $RC -eq 0 ] || fail "root on a tund for user 1: $ERR"
stop_tund 2
start_tund c2 "$C_SOCK" tun-c 10.209.0.1 10.209.0.2 fd00:209::1 fd00:209::2 --allow_groups="$U2"
run under $U2 "$C_SOCK" "$PY" -c "$PROG"
[ "$OUT" = "socket ok" ] || fail "user 2 with allow_groups=$U2: '$OUT' $ERR"
run under $U1 "$C_SOCK" "$PY" -c "$PROG"
[ "$OUT" = "socket failed: ENETDOWN" ] || fail "user 1 with allow_groups=$U2: '$OUT' $ERR"
stop_tund 3
note "6. allow_users=user 1: user 2 refused (ENETDOWN, 'does not serve uid $UID2'), user 1 and root served; allow_groups works"

# ---- 7. a tund of user 1's own -------------------------------------------------------------------------
# /dev/net/tun must be usable by the user (crw-rw-rw- on Debian/Ubuntu): made
# so for the test, restored at exit
tunmode=$(stat -c %a /dev/net/tun) || fail "no /dev/net/tun"
on_exit "chmod $tunmode /dev/net/tun"
chmod 0666 /dev/net/tun
in_ns ip tuntap add tun-u1 mode tun user "$U1" || fail "ip tuntap"
in_ns ip addr add 10.210.0.1/24 dev tun-u1
in_ns ip link set tun-u1 up
mkdir -m 700 "$WORK/u1"; chown "$U1:" "$WORK/u1"
as $U1 "$WORK/bin/tund" --tun=tun-u1 --tun_attach=yes --real_hosts=no --lwip_ipv4=10.210.0.2 --host_ipv6=none \
  --socket="$WORK/u1/tund.sock" >"$WORK/tund-u1.log" 2>&1 &
up=$!
on_exit "kill $up"
wait_log "$WORK/tund-u1.log" "ready:" 10
[ "$(stat -c %a "$WORK/u1/tund.sock")" = 600 ] || fail "user 1's tund socket is $(stat -c %a "$WORK/u1/tund.sock"), want 600"
run under $U1 "$WORK/u1/tund.sock" "$PY" -c "$PROG"
[ "$OUT" = "socket ok" ] || fail "user 1 on its own tund: '$OUT' $ERR"
# user 2's shim would not even talk to it (a directory and a server of
# another user); tund itself refuses user 2 too: user 2 knocks on its own
chmod 711 "$WORK/u1"; chmod 666 "$WORK/u1/tund.sock"
run under $U2 "$WORK/u1/tund.sock" "$PY" -c "$PROG"
[ "$OUT" = "socket failed: ENETDOWN" ] && printf '%s' "$ERR" | grep -q "refusing tund at $WORK/u1/tund.sock: its directory $WORK/u1 belongs to uid $UID1" ||
  fail "user 2's shim and user 1's tund: '$OUT' $ERR"
run as $U2 "$PY" -c '
import os, socket, struct, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET); s.settimeout(5); s.connect(sys.argv[1])
try:
    s.send(struct.pack("<IHHIIQ", 32, 1, 0, 1, 0, 0) + struct.pack("<II", int(sys.argv[2]), os.getpid()))
except OSError:
    pass
d = s.recv(100)
print("result", struct.unpack("<H", d[4:6])[0], "err", struct.unpack("<i", d[24:28])[0])' "$WORK/u1/tund.sock" "$IPC_VERSION"
[ "$OUT" = "result 100 err 13" ] || fail "user 2's own client on user 1's tund: '$OUT' $ERR (want EACCES)"
grep -q "refusing control client uid $UID2 pid [0-9]*: tund runs as uid $UID1 and serves only it" "$WORK/tund-u1.log" ||
  fail "user 1's tund did not log refusing user 2: $(tail -3 "$WORK/tund-u1.log")"
note "7. user 1's own tund (tun_attach): socket 0600, serves user 1, refuses user 2 ('serves only it')"
echo ok
