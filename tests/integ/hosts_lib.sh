# tests/integ/hosts_lib.sh — the "two real hosts" topology (sourced).
#
#      namespace $H1 ("host 1")                namespace $H2 ("host 2")
#   programs --enorun--> tund 1                programs --enorun--> tund 2
#     [lwIP 10.77.0.2 | fd7e:e0::2]              [lwIP 10.77.0.2 | fd7e:e0::2]
#        enotun0 (default settings)                 enotun0 (default settings)
#   veth eno-h1  10.203.0.1 / fd00:203::1 ==== eno-h2  10.203.0.2 / fd00:203::2
#   default routes over the veth               default routes over the veth
#
# Each host has its own address on the link and its own tund with default
# network settings (only the control socket differs: both hosts share this
# file system).  Programs dial each other's real addresses; tund's helper
# masquerades and publishes (tund/nat.h).  A third namespace $H3 ("a
# stranger"), on a second link to host 1 (10.204.0.0/24), tries to route
# through it.  Everything lives in namespaces made here and removed on exit.
set -u
TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${BUILD:-build}
case "$BUILD" in /*) ;; *) BUILD=$TOP/$BUILD;; esac
H1=enoshim-h1-$$; H2=enoshim-h2-$$; H3=enoshim-h3-$$
WORK=$(mktemp -d /tmp/enoshim-test.XXXXXX)
S1=$WORK/h1.sock; S2=$WORK/h2.sock
IP1=10.203.0.1; IP2=10.203.0.2; IP1_6=fd00:203::1; IP2_6=fd00:203::2
IP3=10.204.0.3; IP1_3=10.204.0.1
LWIP4=10.77.0.2; LWIP6=fd7e:e0::2
ENORUN=$BUILD/enorun
PROGS=$BUILD/tests/progs
PY=${PY:-/usr/bin/python3}
HOST_PIDS=()
_cleanups=()

fail() { echo "FAIL: $*" >&2; exit 1; }
note() { echo "  $*"; }
on_exit() { _cleanups+=("$1"); }

_hosts_teardown() {
  local rc=$?
  for c in "${_cleanups[@]}"; do eval "$c" >/dev/null 2>&1 || true; done
  for p in "${HOST_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${HOST_PIDS[@]}"; do
    for _ in $(seq 1 60); do kill -0 "$p" 2>/dev/null || break; sleep 0.05; done
    kill -9 "$p" 2>/dev/null || true
  done
  for ns in $H1 $H2 $H3; do
    for p in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$p" 2>/dev/null || true; done
    ip netns del "$ns" 2>/dev/null || true
  done
  if [ $rc -ne 0 ] && [ -z "${KEEP_WORK:-}" ]; then
    for f in "$WORK"/*.log; do [ -f "$f" ] && { echo "---- $f"; tail -n 30 "$f"; }; done >&2
  fi
  [ -n "${KEEP_WORK:-}" ] || rm -rf "$WORK"
  exit $rc
}
trap _hosts_teardown EXIT

on1() { ip netns exec "$H1" "$@"; }
on2() { ip netns exec "$H2" "$@"; }
on3() { ip netns exec "$H3" "$@"; }
# run1 / run2 CMD...: a program under enorun on host 1 / host 2
run1() { ip netns exec "$H1" "$ENORUN" --socket "$S1" -- "$@"; }
run2() { ip netns exec "$H2" "$ENORUN" --socket "$S2" -- "$@"; }
# bg1 / bg2 CMD...: the same in the background, $! is the program itself
bg1() { ip netns exec "$H1" "$ENORUN" --socket "$S1" -- "$@" & }
bg2() { ip netns exec "$H2" "$ENORUN" --socket "$S2" -- "$@" & }
enoctl1() { "$BUILD/enoctl" --socket "$S1" "$@"; }
enoctl2() { "$BUILD/enoctl" --socket "$S2" "$@"; }

# hosts_up: the two hosts and their link (no tund yet)
hosts_up() {
  ip netns add "$H1" && ip netns add "$H2" || fail "cannot create namespaces (need root)"
  ip link add eno-h1 netns "$H1" type veth peer name eno-h2 netns "$H2" || fail "veth"
  on1 ip addr add $IP1/24 dev eno-h1
  on2 ip addr add $IP2/24 dev eno-h2
  on1 ip addr add $IP1_6/64 dev eno-h1 nodad
  on2 ip addr add $IP2_6/64 dev eno-h2 nodad
  for h in $H1 $H2; do ip -n "$h" link set lo up; done
  on1 ip link set eno-h1 up; on2 ip link set eno-h2 up
  on1 ip route add default via $IP2; on2 ip route add default via $IP1
  on1 ip -6 route add default via $IP2_6; on2 ip -6 route add default via $IP1_6
  for _ in $(seq 1 100); do
    on1 ping -c1 -W1 -q $IP2 >/dev/null 2>&1 && on1 ping -6 -c1 -W1 -q $IP2_6 >/dev/null 2>&1 && return 0
    sleep 0.05
  done
  fail "the link between the hosts does not carry pings"
}

# stranger_up: a third namespace on a second link to host 1, with host 1 as
# its default gateway
stranger_up() {
  ip netns add "$H3" || fail "namespace"
  ip link add eno-h1s netns "$H1" type veth peer name eno-h3 netns "$H3" || fail "veth"
  on1 ip addr add $IP1_3/24 dev eno-h1s; on3 ip addr add $IP3/24 dev eno-h3
  ip -n "$H3" link set lo up; on1 ip link set eno-h1s up; on3 ip link set eno-h3 up
  on3 ip route add default via $IP1_3
}

# tund_up 1|2 [extra tund args...]: tund with default network settings on that host
tund_up() {
  local h=$1; shift
  local ns sock; [ "$h" = 1 ] && { ns=$H1; sock=$S1; } || { ns=$H2; sock=$S2; }
  : >"$WORK/tund-$h.log"
  ip netns exec "$ns" "$BUILD/tund" --socket="$sock" "$@" >>"$WORK/tund-$h.log" 2>&1 &
  local p=$!
  HOST_PIDS+=($p)
  eval "TUND$h=$p"
  for _ in $(seq 1 300); do
    grep -q "ready:" "$WORK/tund-$h.log" 2>/dev/null && return 0
    kill -0 $p 2>/dev/null || break
    sleep 0.02
  done
  cat "$WORK/tund-$h.log" >&2
  fail "tund on host $h did not start"
}

# ruleset NS: nft list ruleset without enoshim's tables
ruleset_others() {
  ip netns exec "$1" nft list ruleset 2>/dev/null | "$PY" -c '
import sys
out, skip = [], 0
for line in sys.stdin:
    if line.startswith("table ") :
        skip = line.split()[2].startswith("enoshim")
    if not skip:
        out.append(line)
    if line.startswith("}"):
        skip = 0
sys.stdout.write("".join(out))'
}
enoshim_tables() { ip netns exec "$1" nft list tables 2>/dev/null | grep -c enoshim || true; }

wait_log() {
  local f=$1 re=$2 t=${3:-15}
  for _ in $(seq 1 $((t * 20))); do
    grep -qE -- "$re" "$f" 2>/dev/null && return 0
    sleep 0.05
  done
  echo "---- $f:" >&2; tail -n 20 "$f" >&2 2>/dev/null
  fail "no line matching '$re' in $(basename "$f") within ${t}s"
}

# wait_listen2 SOCK PORT: until that tund lists a listener on PORT
wait_listen_sock() {
  local sock=$1 port=$2
  for _ in $(seq 1 300); do
    "$BUILD/enoctl" --socket "$sock" status 2>/dev/null | grep -q "listening.*:$port\b" && return 0
    sleep 0.05
  done
  fail "no listener on port $port in $(basename "$sock")"
}

# val FILE KEY: the value of a "KEY: value" line (eno-hello, eno_probe)
val() { awk -v k="$2:" '$1 == k { sub(/^[^ ]+ /, ""); print; exit }' "$1"; }
