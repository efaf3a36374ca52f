#!/usr/bin/env bash
# PostgreSQL through one root-started tund per host, two users (issue 14
# point 5): on the two-real-hosts topology (hosts_lib.sh) each host runs ONE
# tund started by root (default policy: it serves every local user).  Host
# 2: the PostgreSQL server runs as user postgres under the shim, listening
# on the host's real address (initdb as postgres, data directory in the
# test's work directory, trust for the test network).  Host 1: pgbench runs
# as another user (made for the test, removed at exit) under the shim:
#   - pgbench -i, then pgbench -c 8 -T 5: transactions done, none failed;
#   - while it runs, both tunds list its connections encrypting with one
#     session ID on both ends (root's view);
#   - each user sees its own: the pgbench user lists its connections to 5432
#     on host 1, postgres its listener and the accepted connections on host
#     2; the pgbench user sees nothing on host 2 and nobody sees nothing on
#     host 1;
#   - a port is published to other hosts only for a listener whose program
#     holds that port of the host (its kernel listener on the port, and no
#     other uid's listener there): the pgbench user's own client listening
#     in lwIP on 22 with no kernel listener, or on 2223 where root listens
#     too, publishes nothing; on 2224, its alone, it does.
. "$(dirname "$0")/hosts_lib.sh"
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
[ -x "$PGBIN/postgres" ] && [ -x "$PGBIN/pgbench" ] || fail "PostgreSQL is not installed (scripts/setup installs it)"
id postgres >/dev/null 2>&1 || fail "no user postgres (the postgresql package makes it)"
chmod 711 "$WORK"
# each host's socket in a directory every user can reach (tund makes the socket 0666)
mkdir -m 755 "$WORK/h1" "$WORK/h2"
S1=$WORK/h1/tund.sock; S2=$WORK/h2/tund.sock
PGU=enopgb$$
. "$(dirname "$0")/users_lib.sh"   # drop_user
useradd --system --no-create-home --shell /usr/sbin/nologin --user-group "$PGU" || fail "useradd"
on_exit "drop_user $PGU"

mkdir -m 755 "$WORK/bin"
# postgres and pgbench hang at start whenever libasan is preloaded (with or
# without enoshim, as curl does: lib.sh): in sanitizer runs they use the
# regular build's shim; the tunds and enoctl stay sanitized
SHIMLIB=$BUILD/libenoshim.so
[ "$BUILD" = "$TOP/build/san" ] && SHIMLIB=$TOP/build/libenoshim.so
cp "$SHIMLIB" "$BUILD/tund" "$WORK/bin/" || fail "build first (make; make SAN=1 for the sanitizer run)"
ln -s tund "$WORK/bin/enoctl"
PRELOAD=$WORK/bin/libenoshim.so
# on HOST USER CMD...: a program of USER on host 1 or 2, under the shim with that host's tund
on() {
  local h=$1 u=$2 ns=$H1 s=$S1; shift 2
  [ "$h" = 2 ] && { ns=$H2; s=$S2; }
  ip netns exec "$ns" setpriv --reuid="$u" --regid="$(id -g "$u")" --init-groups -- \
    env -i PATH=/usr/bin:/bin HOME=/ ENOSHIM_SOCKET="$s" LD_PRELOAD="$PRELOAD" "$@"
}
ctl() {   # ctl HOST USER args...
  local h=$1 u=$2 s=$S1; shift 2
  [ "$h" = 2 ] && s=$S2
  if [ "$u" = root ]; then "$WORK/bin/enoctl" --socket "$s" "$@"
  else setpriv --reuid="$u" --regid="$(id -g "$u")" --init-groups -- "$WORK/bin/enoctl" --socket "$s" "$@"; fi
}

declare -F wait_gone >/dev/null || wait_gone() {
  local p=$1 t=${2:-10}
  for _ in $(seq 1 $((t * 20))); do kill -0 "$p" 2>/dev/null || return 0; sleep 0.05; done
  return 1
}

hosts_up
declare -F hosts_no_dns >/dev/null && hosts_no_dns
tund_up 1
tund_up 2

# ---- the server on host 2, as postgres --------------------------------------------------------------
PGDATA=$WORK/pgdata
mkdir -m 700 "$PGDATA" "$WORK/pgsock"
chown postgres: "$PGDATA" "$WORK/pgsock"
setpriv --reuid=postgres --regid="$(id -g postgres)" --init-groups -- env -i PATH=/usr/bin:/bin HOME=/ \
  "$PGBIN/initdb" -D "$PGDATA" -U postgres -A trust --no-sync --locale=C -E UTF8 >"$WORK/initdb.log" 2>&1 ||
  fail "initdb as postgres: $(tail -5 "$WORK/initdb.log")"
cat >"$PGDATA/pg_hba.conf" <<EOF
# the test network only (host 1's real address arrives as itself)
local all all trust
host all all $IP1/32 trust
host all all 10.203.0.0/24 md5
EOF
chown postgres: "$PGDATA/pg_hba.conf"
on 2 postgres "$PGBIN/postgres" -D "$PGDATA" -c listen_addresses="$IP2" -c port=5432 \
  -c unix_socket_directories="$WORK/pgsock" -c fsync=off -c synchronous_commit=off -c max_connections=40 \
  -c shared_buffers=32MB >"$WORK/postgres.log" 2>&1 &
pgw=$!
wait_listen_sock "$S2" 5432
wait_log "$WORK/postgres.log" "database system is ready to accept connections" 30
pg=$(head -n 1 "$PGDATA/postmaster.pid") || fail "no postmaster.pid"
on_exit "kill -INT $pg; sleep 1"
note "postgres (uid $(id -u postgres)) listens on $IP2:5432 under the shim of host 2's tund"

# ---- pgbench on host 1, as another user ----------------------------------------------------------------
on 1 "$PGU" "$PGBIN/pgbench" -i -s 2 -h "$IP2" -p 5432 -U postgres postgres >"$WORK/init.out" 2>&1 ||
  fail "pgbench -i: $(tail -5 "$WORK/init.out")"
grep -q "done in" "$WORK/init.out" || fail "pgbench -i did not finish: $(tail -3 "$WORK/init.out")"
note "pgbench -i as $PGU (uid $(id -u $PGU)): $(grep 'done in' "$WORK/init.out")"
on 1 "$PGU" "$PGBIN/pgbench" -c 8 -j 2 -T 5 -h "$IP2" -p 5432 -U postgres postgres >"$WORK/bench.out" 2>&1 &
bp=$!
# encrypting, one session ID on both ends; every user sees only its own
seen= iso=
for _ in $(seq 1 80); do
  j1=$(ctl 1 root status --json) && j2=$(ctl 2 root status --json) || fail "enoctl as root"
  if r=$("$PY" - "$j1" "$j2" "$IP2" <<'EOF'
import json, sys
h1, h2, ip2 = json.loads(sys.argv[1]), json.loads(sys.argv[2]), sys.argv[3]
cli = [e for e in h1 if e["kind"] == "stream" and e["remote"] == ip2 + ":5432" and e["eno"] == "encrypting"]
srv = {e["session_id"] for e in h2 if e["kind"] == "stream" and e["local"].endswith(":5432") and e["eno"] == "encrypting"}
both = [e for e in cli if e["session_id"] in srv]
if len(both) >= 8:
    print(len(both), both[0]["tep"], both[0]["aead"], both[0]["session_id"][:16])
else:
    sys.exit(1)
EOF
  ); then seen=$r; break; fi
  kill -0 $bp 2>/dev/null || break
  sleep 0.1
done
[ -n "$seen" ] || fail "pgbench's connections were not seen encrypting on both hosts while it ran"
note "while pgbench runs: $(echo "$seen" | cut -d' ' -f1) connections encrypting on both hosts ($(echo "$seen" | cut -d' ' -f2-3), e.g. session ${seen##* }...)"
n_streams() {   # n_streams HOST USER: streams to or on port 5432 that USER sees
  ctl "$1" "$2" status --json | "$PY" -c '
import json, sys
print(sum(e["kind"] == "stream" and (e["remote"].endswith(":5432") or e["local"].endswith(":5432")) for e in json.load(sys.stdin)))'
}
a=$(n_streams 1 "$PGU"); b=$(n_streams 2 postgres); c=$(n_streams 2 "$PGU"); d=$(n_streams 1 nobody)
l=$(ctl 2 postgres status --json | "$PY" -c 'import json,sys; print(sum(e["kind"] == "listener" for e in json.load(sys.stdin)))')
kill -0 $bp 2>/dev/null || fail "pgbench ended before the views were taken"
[ "$a" -ge 8 ] && [ "$b" -ge 8 ] && [ "$l" -ge 1 ] && [ "$c" = 0 ] && [ "$d" = 0 ] ||
  fail "views: $PGU on host 1 sees $a, postgres on host 2 sees $b streams and $l listeners, $PGU on host 2 sees $c, nobody on host 1 sees $d"
note "views: $PGU sees its $a on host 1, postgres its listener and $b on host 2; $PGU on host 2 and nobody on host 1: none"
wait $bp || fail "pgbench -c 8 -T 5 failed: $(tail -5 "$WORK/bench.out")"
sed 's/^/    | /' "$WORK/bench.out" | grep -E "clients|processed|failed|tps" || true
grep -q "^number of clients: 8$" "$WORK/bench.out" || fail "pgbench: not 8 clients"
grep -Eq "^number of failed transactions: 0 " "$WORK/bench.out" || fail "pgbench: failed transactions: $(grep failed "$WORK/bench.out")"
tx=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$WORK/bench.out")
[ "${tx:-0}" -gt 0 ] || fail "pgbench processed no transaction"
tps=$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' "$WORK/bench.out" | head -1)
note "pgbench -c 8 -T 5: $tx transactions, 0 failed, tps $tps"

# ---- a port is published only for a program that holds it on the host ---------------------------------
on2 nft list set inet enoshim-enotun0 ports | grep -qw 5432 || fail "postgres's port 5432 is not published"
IPC_VERSION=$(sed -n 's/^#define ENOIPC_VERSION *\([0-9]*\)u.*/\1/p' "$TOP/include/enoshim/ipc.h")
cat >"$WORK/squat.py" <<'EOF'
# the pgbench user's own client on host 2's tund, listeners on "any" for
# port 22 with no kernel listener, for 2223 with a kernel listener on
# 127.0.0.2 (root listens on 127.0.0.1:2223), for 2224 with one on
# 127.0.0.1 (nobody else there)
import os, socket, struct, sys
path, version = sys.argv[1], int(sys.argv[2])
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET); s.settimeout(5); s.connect(path)
seq = 0
def call(typ, payload=b"", sock=0, fds=()):
    global seq
    seq += 1
    anc = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, struct.pack("%di" % len(fds), *fds))] if fds else []
    s.sendmsg([struct.pack("<IHHIIQ", 24 + len(payload), typ, len(fds), seq, 0, sock) + payload], anc)
    while True:
        d, anc2, _, _ = s.recvmsg(8192, socket.CMSG_SPACE(64))
        if struct.unpack("<H", d[4:6])[0] == 100 and struct.unpack("<I", d[8:12])[0] == seq:
            return struct.unpack("<i", d[24:28])[0], struct.unpack("<Q", d[16:24])[0]
assert call(1, struct.pack("<II", version, os.getpid()))[0] == 0
keep = []
for port, kaddr in ((22, None), (2223, "127.0.0.2"), (2224, "127.0.0.1")):
    err, sid = call(2, struct.pack("<ii", 2, 0))
    assert err == 0, err
    addr = struct.pack("<HHII", 2, port, 0, 0) + bytes(16)
    err, _ = call(3, addr + struct.pack("<II", 1, 0), sock=sid)     # BIND any:port, "kernel bound"
    fds = ()
    if kaddr:
        k = socket.socket(); k.bind((kaddr, port)); k.listen(); keep.append(k); fds = (k.fileno(),)
    err2, _ = call(4, struct.pack("<ii", 16, len(fds)), sock=sid, fds=fds)   # LISTEN
    print("port", port, "bind", err, "listen", err2, flush=True)
sys.stdin.read()
EOF
chmod 644 "$WORK/squat.py"
mkfifo "$WORK/squat.in" "$WORK/root.in"
on2 "$PY" -c 'import socket,sys; s=socket.socket(); s.bind(("127.0.0.1", 2223)); s.listen(); print("up", flush=True); sys.stdin.read()' \
  <"$WORK/root.in" >"$WORK/root2223.out" 2>&1 &
rl=$!
exec 9>"$WORK/root.in"
wait_log "$WORK/root2223.out" "^up"
ip netns exec "$H2" setpriv --reuid="$PGU" --regid="$(id -g "$PGU")" --init-groups -- \
  "$PY" "$WORK/squat.py" "$S2" "$IPC_VERSION" <"$WORK/squat.in" >"$WORK/squat.out" 2>&1 &
sq=$!
exec 8>"$WORK/squat.in"
wait_log "$WORK/squat.out" "^port 2224 "
for p in 22 2223 2224; do
  grep -q "^port $p bind 0 listen 0$" "$WORK/squat.out" || fail "the user's listeners: $(cat "$WORK/squat.out")"
done
set=$(on2 nft list set inet enoshim-enotun0 ports)
printf '%s' "$set" | grep -qw 22 && fail "port 22 published for a user's listener without a kernel listener: $set"
printf '%s' "$set" | grep -qw 2223 && fail "port 2223 published though root listens on it too: $set"
printf '%s' "$set" | grep -qw 2224 || fail "port 2224, the user's alone, not published: $set"
grep -q "listener [0-9]*: port 2223 not published to other hosts: uid 0 also listens on port 2223 of the host" "$WORK/tund-2.log" ||
  fail "tund did not say why 2223 is not published: $(grep 'not published' "$WORK/tund-2.log")"
exec 8>&- 9>&-
wait $sq $rl
note "publishing: 5432 (postgres's) and 2224 (the user's alone) yes; 22 (no kernel listener) and 2223 (root listens there too) no"

kill -INT $pg
wait_gone $pg 20 || fail "postgres did not stop"
wait $pgw 2>/dev/null
for h in 1 2; do
  kill -0 "$(eval echo "\$TUND$h")" && ctl $h root status >/dev/null || fail "host $h's tund is gone"
done
echo ok
