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

# ---- helpers of the real-program tests (t_http, t_nginx, t_redis, t_iperf3,
# t_bulk, t_crypt_apps): client programs on host 1 dial host 2's real
# address.  Same names and behaviour as lib.sh's / crypt_lib.sh's, with
# host 1 in place of A and host 2 in place of B. -----------------------------

# curl hangs in glibc's setlocale() whenever libasan is preloaded (an ASan
# runtime problem, llvm-project#49223, see lib.sh): in sanitizer runs curl
# goes through the regular build's shim; tunds and servers stay sanitized.
CURL_ENORUN=$ENORUN
if [ "$BUILD" = "$TOP/build/san" ]; then
  CURL_ENORUN=$TOP/build/enorun
  [ -x "$CURL_ENORUN" ] || { echo "FAIL: $CURL_ENORUN missing (make)" >&2; exit 1; }
fi
run1_curl() { ip netns exec "$H1" "$CURL_ENORUN" --socket "$S1" -- "$@"; }

# hosts_no_dns: neither host can reach the machine's nameservers
# (/etc/resolv.conf): a lookup fails at once instead of waiting for answers
# that cannot come (the hosts' default routes lead only to each other; e.g.
# python's http.server looks up the name of its bound address).
hosts_no_dns() {
  local a
  for a in $(awk '$1 == "nameserver" { print $2 }' /etc/resolv.conf 2>/dev/null); do
    case $a in
      127.*|::1) ;;
      *:*) on1 ip -6 route add unreachable "$a/128"; on2 ip -6 route add unreachable "$a/128";;
      *) on1 ip route add unreachable "$a/32"; on2 ip route add unreachable "$a/32";;
    esac
  done
}

# wait_gone PID [seconds]
wait_gone() {
  local p=$1 t=${2:-10}
  for _ in $(seq 1 $((t * 20))); do kill -0 "$p" 2>/dev/null || return 0; sleep 0.05; done
  return 1
}

# status_count SOCK: connections (and listeners) that tund still tracks
status_count() { "$BUILD/enoctl" --socket "$1" status | tail -n +2 | wc -l; }

# wait_listen PORT [SOCK] [seconds]: until something listens on PORT, without
# connecting to it.  With SOCK: a listener in that tund's status; without: a
# kernel listener on host 2 (the servers' host).
wait_listen() {
  local port=$1 sock=${2:-} t=${3:-15}
  for _ in $(seq 1 $((t * 20))); do
    if [ -n "$sock" ]; then
      "$BUILD/enoctl" --socket "$sock" status 2>/dev/null |
        awk -v p=":$port" '$3 == "listening" && substr($4, length($4) - length(p) + 1) == p { f = 1 } END { exit !f }' &&
        return 0
    else
      [ -n "$(on2 ss -Hltn "sport = :$port" 2>/dev/null)" ] && return 0
    fi
    sleep 0.05
  done
  fail "nothing listening on port $port within ${t}s"
}

# wait_count SOCK N [seconds]: until tund tracks at most N connections
wait_count() {
  local sock=$1 n=$2 t=${3:-15} c=
  for _ in $(seq 1 $((t * 10))); do
    c=$(status_count "$sock" 2>/dev/null) || c=
    [ -n "$c" ] && [ "$c" -le "$n" ] && return 0
    sleep 0.1
  done
  "$BUILD/enoctl" --socket "$sock" status >&2 || true
  fail "tund ($(basename "$sock")) still tracks ${c:-?} connections after ${t}s (expected <= $n)"
}

# tund_pid 1|2: the tund process of that host (tund_up's $! is tund itself)
tund_pid() { eval "echo \${TUND$1}"; }

# tund_alive 1|2: that host's tund still running and answering enoctl status
tund_alive() {
  local sock=$S1; [ "$1" = 2 ] && sock=$S2
  kill -0 "$(tund_pid "$1")" 2>/dev/null || fail "tund of host $1 died (see tund-$1.log)"
  timeout 10 "$BUILD/enoctl" --socket "$sock" status >/dev/null || fail "tund of host $1 does not answer enoctl status"
}

# sha_line FILE KIND: "BYTES SHA" from an xfer output line "KIND BYTES SHA"
sha_line() { awk -v k="$2" '$1 == k { print $2, $3 }' "$1" | tail -n 1; }

# exits_within PID SECONDS: the process ends within SECONDS (else it is killed
# and the test fails); sets EXIT_RC to its exit status and EXIT_T to the time
exits_within() {
  local p=$1 t=$2 s=$EPOCHREALTIME
  for _ in $(seq 1 $((t * 20))); do kill -0 "$p" 2>/dev/null || break; sleep 0.05; done
  if kill -0 "$p" 2>/dev/null; then
    kill -9 "$p" 2>/dev/null
    return 1
  fi
  EXIT_RC=0; wait "$p" || EXIT_RC=$?
  EXIT_T=$(awk -v a="$EPOCHREALTIME" -v b="$s" 'BEGIN{printf "%.1f", a-b}')
  return 0
}

# enc_seen PORT: one look at both tunds' `enoctl status --json`.  Succeeds and
# prints "encrypting SESSION-ID TEP AEAD" when a stream of host 1 to port PORT
# is encrypting and host 2 has an encrypting stream on its port PORT with the
# same session ID; otherwise prints "no" and what host 1's streams to PORT say.
enc_seen() {
  local j1 j2
  j1=$("$BUILD/enoctl" --socket "$S1" status --json 2>/dev/null) || { echo "no (enoctl on host 1 failed)"; return 1; }
  j2=$("$BUILD/enoctl" --socket "$S2" status --json 2>/dev/null) || { echo "no (enoctl on host 2 failed)"; return 1; }
  /usr/bin/python3 - "$1" "$j1" "$j2" <<'PYEOF'
import json, sys
port, h1, h2 = ":" + sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
srv = {e["session_id"] for e in h2
       if e["kind"] == "stream" and e["local"].endswith(port) and e["eno"] == "encrypting" and e["session_id"]}
seen = []
for e in h1:
    if e["kind"] == "stream" and e["remote"].endswith(port):
        if e["eno"] == "encrypting" and e["session_id"] in srv:
            print("encrypting", e["session_id"], e["tep"], e["aead"])
            sys.exit(0)
        seen.append("%s %s %s" % (e["remote"], e["state"], e["eno"]))
print("no", "; ".join(seen) or "(no stream)")
sys.exit(1)
PYEOF
}

# expect_encrypted NAME PORT PID [seconds]: while PID (a client on host 1
# connected to host 2's PORT) runs, both tunds list its connection as
# encrypting with one session ID; fails if that is not seen before PID ends.
# ENC_SID: the session ID.
expect_encrypted() {
  local name=$1 port=$2 pid=$3 t=${4:-30} r=
  for _ in $(seq 1 $((t * 10))); do
    if r=$(enc_seen "$port"); then
      ENC_SID=$(echo "$r" | cut -d' ' -f2)
      note "$name: encrypting on both hosts, one session ID (${ENC_SID:0:16}...)"
      return 0
    fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  fail "$name: its connection was not seen encrypting on both hosts while it ran (host 1's streams to port $port: ${r#no })"
}

# no_bypass_resets: neither tund reset a connection for bytes written around
# the shim (tund/progend.c conn_bypass_check)
no_bypass_resets() {
  ! grep -q "around libenoshim" "$WORK/tund-1.log" "$WORK/tund-2.log" ||
    fail "a connection was reset for bytes written around the shim: $(grep -h 'around libenoshim' "$WORK"/tund-*.log | head -2)"
}

# expect_encrypted_outcome NAME CLIENT_LOG SERVER_LOG PORT: for clients too
# short-lived to be watched in enoctl status.  Both sides ran with the shim's
# outcome lines on (enorun --debug, shim/outcome.c): the client's log has
# "-> IP2:PORT: encrypted (..., session S, ...)" and the server's a line
# "<- ...: encrypted (..., session S, ...)" with the same (short) session ID.
expect_encrypted_outcome() {
  local name=$1 clog=$2 slog=$3 port=$4 sids sid
  sids=$(grep -ho -- "-> $IP2:$port: encrypted ([^)]*session [0-9a-f]*" "$clog" | sed 's/.*session //' | sort -u)
  [ -n "$sids" ] || fail "$name: the client said no encrypted connection to $IP2:$port: $(grep -h 'enoshim\[' "$clog" | head -3)"
  for sid in $sids; do
    if grep -q -- "<- .*: encrypted ([^)]*session $sid" "$slog"; then
      ENC_SID=$sid
      note "$name: encrypted on both hosts, one session ID ($sid, from both programs' outcome lines)"
      return 0
    fi
  done
  fail "$name: client's session IDs ($sids) not among the server's encrypted connections: $(grep -h '<- ' "$slog" | head -3)"
}

# --- captures and the tcpcrypt oracle (crypt_lib.sh's, on host 1's side of
# the link: CAP_NS, default host 1) ---
CP=$PROGS/crypt_peer
ENODUMP=$TOP/scripts/enodump
CQ=$TOP/tests/integ/crypt_q.py

# keylog_new FILE: tund refuses a key log that is not a 0600 regular file
keylog_new() { install -m 600 /dev/null "$1"; }

# cap_start NAME IFACE [tcpdump args / filter...]: capture in ${CAP_NS:-$H1}
# into $WORK/NAME.pcap until cap_stop NAME (see crypt_lib.sh for the snap
# length and the ring)
declare -A CAP_PIDS=()
cap_start() {
  local name=$1 ifc=$2; shift 2
  ip netns exec "${CAP_NS:-$H1}" tcpdump --immediate-mode -Z root -i "$ifc" -U -s "${CAP_SNAPLEN:-65600}" -B 131072 \
    -w "$WORK/$name.pcap" "$@" 2>"$WORK/tcpdump-$name.err" &
  CAP_PIDS[$name]=$!
  on_exit "kill ${CAP_PIDS[$name]}"
  for _ in $(seq 1 200); do
    grep -q "listening on" "$WORK/tcpdump-$name.err" 2>/dev/null && return 0
    kill -0 "${CAP_PIDS[$name]}" 2>/dev/null || break
    sleep 0.05
  done
  cat "$WORK/tcpdump-$name.err" >&2
  fail "tcpdump on $ifc did not start"
}
# cap_stop NAME: let tcpdump write what it has (until the file stops growing
# for 0.5 s, at most 20 s), then stop it
cap_stop() {
  local p=${CAP_PIDS[$1]} last=-1 size same=0
  for _ in $(seq 1 200); do
    kill -0 "$p" 2>/dev/null || break
    size=$(stat -c %s "$WORK/$1.pcap" 2>/dev/null || echo 0)
    if [ "$size" = "$last" ]; then
      same=$((same + 1))
      [ $same -ge 5 ] && break
    else
      same=0
      last=$size
    fi
    sleep 0.1
  done
  kill -TERM "$p" 2>/dev/null || true
  wait_gone "$p" 20 || { kill -9 "$p" 2>/dev/null; fail "tcpdump ($1) did not stop"; }
  wait "$p" 2>/dev/null || true
  grep -E "dropped by kernel" "$WORK/tcpdump-$1.err" | grep -qv "^0 " &&
    note "tcpdump $1: $(grep 'dropped by kernel' "$WORK/tcpdump-$1.err")"
  return 0
}

# dump NAME KEYLOG [enodump args]: enodump --json of $WORK/NAME.pcap ->
# $WORK/NAME.json, flattened to $WORK/NAME.q; DUMP_RC = enodump's exit status
dump() {
  local name=$1 keylog=$2
  shift 2
  DUMP_RC=0
  timeout 300 "$ENODUMP" --keylog "$keylog" --json "$@" "$WORK/$name.pcap" >"$WORK/$name.json" \
    2>"$WORK/enodump-$name.log" || DUMP_RC=$?
  [ $DUMP_RC -le 1 ] || { cat "$WORK/enodump-$name.log" >&2; fail "enodump failed on $name.pcap (exit $DUMP_RC)"; }
  /usr/bin/python3 "$CQ" "$WORK/$name.json" >"$WORK/$name.q" || fail "crypt_q.py cannot read $name.json"
}
# ---- end of the real-program tests' helpers ----------------------------------
