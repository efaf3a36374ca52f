# tests/integ/lib.sh — shared helpers for integration tests (sourced).
#
# Topology "two hosts in one namespace" (docs/DESIGN.md):
#
#     program A --enorun--> tund A  [lwIP 10.201.0.2 | fd00:201::2]
#                              | tun-a  (kernel side 10.201.0.1 | fd00:201::1)
#                         netns $NS: kernel routing, ip_forward=1
#                              | tun-b  (kernel side 10.202.0.1 | fd00:202::1)
#     program B --enorun--> tund B  [lwIP 10.202.0.2 | fd00:202::2]
#
# A plain (kernel) program in $NS is the legacy peer.  Everything lives in a
# namespace made here and removed by the EXIT trap; no packet leaves it.
#
# Usage:   . tests/integ/lib.sh; topo_up [tund options...]; run_a CMD...; run_b CMD...
set -u
TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${BUILD:-build}
case "$BUILD" in /*) ;; *) BUILD=$TOP/$BUILD;; esac
NS=enoshim-t$$
WORK=$(mktemp -d /tmp/enoshim-test.XXXXXX)
A_SOCK=$WORK/a.sock
B_SOCK=$WORK/b.sock
A4=10.201.0.2; B4=10.202.0.2; HA4=10.201.0.1; HB4=10.202.0.1
A6=fd00:201::2; B6=fd00:202::2; HA6=fd00:201::1; HB6=fd00:202::1
TUND_PIDS=()
_cleanups=()

fail() { echo "FAIL: $*" >&2; exit 1; }
note() { echo "  $*"; }
on_exit() { _cleanups+=("$1"); }

_teardown() {
  local rc=$?
  for c in "${_cleanups[@]}"; do eval "$c" >/dev/null 2>&1 || true; done
  for p in "${TUND_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${TUND_PIDS[@]}"; do
    for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.05; done
    kill -9 "$p" 2>/dev/null || true
  done
  # anything still running in the namespace
  for p in $(ip netns pids "$NS" 2>/dev/null); do kill -9 "$p" 2>/dev/null || true; done
  ip netns del "$NS" 2>/dev/null || true
  if [ $rc -ne 0 ] && [ -z "${KEEP_WORK:-}" ]; then
    for f in "$WORK"/*.log; do [ -f "$f" ] && { echo "---- $f"; tail -n 30 "$f"; }; done >&2
  fi
  [ -n "${KEEP_WORK:-}" ] || rm -rf "$WORK"
  exit $rc
}
trap _teardown EXIT

in_ns() { ip netns exec "$NS" "$@"; }

# start_tund NAME SOCK TUN HOST4 LWIP4 HOST6 LWIP6 [extra tund args...]
start_tund() {
  local name=$1 sock=$2 tun=$3 h4=$4 l4=$5 h6=$6 l6=$7; shift 7
  local tund=$BUILD/tund
  # real_hosts=no: both tunds share one namespace and reach each other by
  # routing, without masquerade (the real-host topology is hosts_lib.sh).
  # direct_local=no: the kernel's ends of the two TUNs stand for other
  # hosts' kernels here (plain peers, the wire tests' SYNs), though they are
  # this namespace's own addresses, which programs would reach directly
  in_ns $TUND_WRAP "$tund" --socket="$sock" --tun="$tun" --real_hosts=no --direct_local=no \
    --host_ipv4="$h4/24" --lwip_ipv4="$l4" \
    --host_ipv6="$h6/64" --lwip_ipv6="$l6" "$@" >"$WORK/tund-$name.log" 2>&1 &
  TUND_PIDS+=($!)
  for _ in $(seq 1 200); do
    grep -q "ready:" "$WORK/tund-$name.log" 2>/dev/null && return 0
    kill -0 $! 2>/dev/null || break
    sleep 0.02
  done
  cat "$WORK/tund-$name.log" >&2
  fail "tund $name did not start"
}
TUND_WRAP=${TUND_WRAP:-}

# topo_up [common tund args...]; per-host extras in TUND_A_ARGS / TUND_B_ARGS
topo_up() {
  ip netns add "$NS" || fail "cannot create namespace (need root)"
  in_ns ip link set lo up
  in_ns sysctl -qw net.ipv4.ip_forward=1
  in_ns sysctl -qw net.ipv6.conf.all.forwarding=1
  # shellcheck disable=SC2086
  start_tund a "$A_SOCK" tun-a $HA4 $A4 $HA6 $A6 "$@" ${TUND_A_ARGS:-}
  # shellcheck disable=SC2086
  start_tund b "$B_SOCK" tun-b $HB4 $B4 $HB6 $B6 "$@" ${TUND_B_ARGS:-}
}

ENORUN=$BUILD/enorun
# curl hangs in glibc's setlocale() whenever libasan is preloaded — with or
# without enoshim (an ASan runtime problem, llvm-project#49223).  In
# sanitizer runs curl therefore goes through the regular build's shim; the
# tunds and the servers stay sanitized.
CURL_ENORUN=$ENORUN
if [ "$BUILD" = "$TOP/build/san" ]; then
  CURL_ENORUN=$TOP/build/enorun
  [ -x "$CURL_ENORUN" ] || { echo "FAIL: $CURL_ENORUN missing (make)" >&2; exit 1; }
fi
run_a_curl() { in_ns "$CURL_ENORUN" --socket "$A_SOCK" -- "$@"; }
run_a() { in_ns "$ENORUN" --socket "$A_SOCK" -- "$@"; }
run_b() { in_ns "$ENORUN" --socket "$B_SOCK" -- "$@"; }
enoctl_a() { "$BUILD/enoctl" --socket "$A_SOCK" "$@"; }
enoctl_b() { "$BUILD/enoctl" --socket "$B_SOCK" "$@"; }

# wait_port PORT: until a TCP socket listens on PORT inside $NS (without
# connecting to it: a probe would use up a one-shot server's accept)
wait_port() {
  local port=$1
  for _ in $(seq 1 250); do
    in_ns ss -Hltn "sport = :$port" 2>/dev/null | grep -q . && return 0
    sleep 0.02
  done
  fail "nothing listening on port $port"
}

# wait_gone PID [seconds]
wait_gone() {
  local p=$1 t=${2:-10}
  for _ in $(seq 1 $((t * 20))); do kill -0 "$p" 2>/dev/null || return 0; sleep 0.05; done
  return 1
}

# status_count SOCK: connections tund still tracks
status_count() { "$BUILD/enoctl" --socket "$1" status | tail -n +2 | wc -l; }

# capture IFACE FILE [FILTER...]: tcpdump in the background until exit.  Returns
# once tcpdump says "listening on": a fixed sleep lost the first connection of
# the demo on a loaded CI machine (tcpdump was not yet capturing).
capture() {
  local err; err=$(mktemp "$WORK/tcpdump-err.XXXXXX")
  in_ns tcpdump --immediate-mode -Z root -B 131072 -i "$1" -U -s 65600 -w "$2" "${@:3}" >/dev/null 2>"$err" &
  local p=$!
  on_exit "kill $p; sleep 0.2"
  for _ in $(seq 1 200); do
    grep -q "listening on" "$err" && return 0
    kill -0 "$p" 2>/dev/null || break
    sleep 0.05
  done
  cat "$err" >&2
  fail "tcpdump on $1 did not start capturing"
}

# ---- helpers added for the integration/semantics tests ----------------------

PROGS=$BUILD/tests/progs

# wait_log FILE REGEX [seconds]: until FILE has a line matching REGEX
wait_log() {
  local f=$1 re=$2 t=${3:-15}
  for _ in $(seq 1 $((t * 20))); do
    grep -qE -- "$re" "$f" 2>/dev/null && return 0
    sleep 0.05
  done
  echo "---- $f:" >&2; tail -n 20 "$f" >&2 2>/dev/null
  fail "no line matching '$re' in $(basename "$f") within ${t}s"
}

# wait_listen PORT [SOCK] [seconds]: until something listens on PORT, without
# connecting to it (wait_port's probe connection would be accepted by one-shot
# servers).  With SOCK: a listener in that tund's status; without: a kernel
# listener in $NS.
wait_listen() {
  local port=$1 sock=${2:-} t=${3:-15}
  for _ in $(seq 1 $((t * 20))); do
    if [ -n "$sock" ]; then
      "$BUILD/enoctl" --socket "$sock" status 2>/dev/null |
        awk -v p=":$port" '$3 == "listening" && substr($4, length($4) - length(p) + 1) == p { f = 1 } END { exit !f }' &&
        return 0
    else
      [ -n "$(in_ns ss -Hltn "sport = :$port" 2>/dev/null)" ] && return 0
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

# tund_alive NAME: tund A or B still running and answering enoctl status
tund_alive() {
  local i sock
  case $1 in a) i=0; sock=$A_SOCK;; b) i=1; sock=$B_SOCK;; esac
  kill -0 "${TUND_PIDS[$i]}" 2>/dev/null || fail "tund $1 died (see tund-$1.log)"
  timeout 10 "$BUILD/enoctl" --socket "$sock" status >/dev/null || fail "tund $1 does not answer enoctl status"
}

# sha_line FILE KIND: "BYTES SHA" from an xfer output line "KIND BYTES SHA"
sha_line() { awk -v k="$2" '$1 == k { print $2, $3 }' "$1" | tail -n 1; }

# elapsed: seconds since the test started (bash SECONDS)

# sem PROG [ARGS...]: run a semantics test program (tests/progs) under enorun
# on host A, bounded; it must exit 0 and print "ok" last.  T_KERNEL=1 runs it
# with plain kernel sockets instead (to check the test itself against Linux).
sem() {
  local p=$1; shift
  local out=$WORK/$p.out rc=0 t0=$SECONDS
  if [ -n "${T_KERNEL:-}" ]; then
    timeout "${SEM_TIMEOUT:-150}" ip netns exec "$NS" env T_KERNEL=1 T_LWIP4=$HA4 T_LWIP6=$HA6 \
      "$PROGS/$p" "$@" >"$out" 2>&1 || rc=$?
  else
    timeout "${SEM_TIMEOUT:-150}" ip netns exec "$NS" "$ENORUN" --socket "$A_SOCK" -- \
      "$PROGS/$p" "$@" >"$out" 2>&1 || rc=$?
  fi
  sed 's/^/    | /' "$out"
  [ $rc -eq 0 ] && [ "$(tail -n 1 "$out")" = ok ] ||
    fail "$p${*:+ $*} failed (exit $rc after $((SECONDS - t0))s): $(grep -m3 -E '^FAIL|rror:' "$out" | tr '\n' ' ')"
  note "$p${*:+ $*}: ok ($((SECONDS - t0))s)"
}

# ---- helpers added for the TCP-ENO conformance tests (t_eno_*.sh) ------------

# topo_one [tund args...]: the namespace with tund A only (tun-a, TUND_A_ARGS
# appended).  The kernel's side of tun-a (10.201.0.1 / fd00:201::1) is then
# free to play a hand-made peer (tests/conformance/*.py).
topo_one() {
  ip netns add "$NS" || fail "cannot create namespace (need root)"
  in_ns ip link set lo up
  # shellcheck disable=SC2086
  start_tund a "$A_SOCK" tun-a $HA4 $A4 $HA6 $A6 "$@" ${TUND_A_ARGS:-}
}

# drop_kernel_rst IFACE: the namespace's kernel sends no TCP RST out of IFACE
# (a scapy peer that uses the kernel's address must not be disturbed by it).
drop_kernel_rst() {
  in_ns iptables -A OUTPUT -o "$1" -p tcp --tcp-flags RST RST -j DROP || fail "iptables failed"
  in_ns ip6tables -A OUTPUT -o "$1" -p tcp --tcp-flags RST RST -j DROP || fail "ip6tables failed"
}

PY=${PY:-/usr/bin/python3}
CONF_DIR=$TOP/tests/conformance

# eno_val FILE KEY: the value of a "KEY: value" line of an eno_probe output
eno_val() { awk -v k="$2:" '$1 == k { sub(/^[^ ]+ /, ""); print; exit }' "$1"; }

# eno_status FILE PORT FIELD: FIELD of the stream entry whose local or remote
# port is PORT in an `enoctl status --json` output
eno_status() {
  "$PY" - "$@" <<'PYEOF'
import json, sys
f, port, field = sys.argv[1], sys.argv[2], sys.argv[3]
for e in json.load(open(f)):
    if e["kind"] == "stream" and (e["local"].endswith(":" + port) or e["remote"].endswith(":" + port)):
        print(e[field])
        break
else:
    print("(no connection with port %s)" % port)
PYEOF
}

# eno_conn NAME PORT DEST: one connection between two eno_probe programs under
# enorun: a server on port PORT behind the tund of $ESRV_SOCK (default B) and a
# client behind $ECLI_SOCK (default A) connecting to DEST.  Extra eno_probe
# options in the arrays SRV_OPTS / CLI_OPTS, enorun options in SRV_ENORUN /
# CLI_ENORUN.  Both stop once connected (options printed) while both tunds'
# `enoctl status --json` is saved to $WORK/NAME.{srv,cli}.status; then they
# exchange "hello NAME".  Outputs: $WORK/NAME.{srv,cli}.out.
SRV_OPTS=(); CLI_OPTS=(); SRV_ENORUN=(); CLI_ENORUN=()
eno_conn() {
  local n=$1 port=$2 dest=$3 pause=$WORK/$1.pause
  local ss=${ESRV_SOCK:-$B_SOCK} cs=${ECLI_SOCK:-$A_SOCK}
  local so=$WORK/$n.srv.out co=$WORK/$n.cli.out
  timeout 50 ip netns exec "$NS" "$ENORUN" --socket "$ss" "${SRV_ENORUN[@]}" -- "$PROGS/eno_probe" \
    "${SRV_OPTS[@]}" --pause-file "$pause" server "$port" >"$so" 2>&1 &
  local sp=$!
  wait_log "$so" '^listening'
  timeout 50 ip netns exec "$NS" "$ENORUN" --socket "$cs" "${CLI_ENORUN[@]}" -- "$PROGS/eno_probe" \
    "${CLI_OPTS[@]}" --pause-file "$pause" --send "hello $n" client "$dest" "$port" >"$co" 2>&1 &
  local cp=$!
  wait_log "$co" '^(paused|done)' 30
  grep -q '^paused' "$co" && wait_log "$so" '^paused' 30
  "$BUILD/enoctl" --socket "$ss" status --json >"$WORK/$n.srv.status" 2>&1
  "$BUILD/enoctl" --socket "$cs" status --json >"$WORK/$n.cli.status" 2>&1
  touch "$pause"
  wait "$cp" || echo "client exit $?" >>"$co"
  if grep -q '^paused' "$co"; then
    wait "$sp" || echo "server exit $?" >>"$so"
  else
    kill "$sp" 2>/dev/null; wait "$sp" 2>/dev/null
  fi
  SRV_OPTS=(); CLI_OPTS=(); SRV_ENORUN=(); CLI_ENORUN=()
}

# expectations that do not stop the test: every mismatch is reported at the end
ENO_BAD=()
expect() {   # expect DESCRIPTION ACTUAL WANTED
  if [ "$2" != "$3" ]; then
    ENO_BAD+=("$1: got '$2', expected '$3'")
    echo "  MISMATCH $1: got '$2', expected '$3'"
  fi
}
expect_match() {   # expect_match DESCRIPTION ACTUAL REGEX
  if ! [[ $2 =~ $3 ]]; then
    ENO_BAD+=("$1: got '$2', expected /$3/")
    echo "  MISMATCH $1: got '$2', expected /$3/"
  fi
}
expect_done() {
  [ ${#ENO_BAD[@]} -eq 0 ] || fail "${#ENO_BAD[@]} mismatch(es): $(printf '%s; ' "${ENO_BAD[@]}")"
}

# pcap_eno PCAP PORT [NEEDLE] KEY: a line of tests/conformance/pcap_eno.py
pcap_eno() {
  local k=${*: -1}
  "$PY" "$CONF_DIR/pcap_eno.py" "${@:1:$#-1}" | awk -v k="$k:" '$1 == k { print $2 }'
}

# bg_a / bg_b CMD...: run_a / run_b in the background without a wrapper
# shell, so that $! is the program's own pid (ip netns exec and enorun exec
# it), e.g. for kill -9.  Redirections given to the call apply.
bg_a() { ip netns exec "$NS" "$ENORUN" --socket "$A_SOCK" -- "$@" & }
bg_b() { ip netns exec "$NS" "$ENORUN" --socket "$B_SOCK" -- "$@" & }

# ongoing_start PORT: a paced transfer A -> B (xfer, ~20 MiB at 4 MiB/s, with
# 2 MiB back) that runs while a test misbehaves; ongoing_check: it finished
# and both ends agree on the SHA-256.
ongoing_start() {
  local port=$1
  bg_b "$PROGS/xfer" serve "$port" --send 2M --seed 8 >"$WORK/ongoing-srv.out" 2>"$WORK/ongoing-srv.log"
  ONGOING_SRV=$!
  wait_log "$WORK/ongoing-srv.out" '^listening'
  bg_a "$PROGS/xfer" client "$B4" "$port" --send 20M --pace 4M --seed 7 >"$WORK/ongoing-cli.out" 2>"$WORK/ongoing-cli.log"
  ONGOING_CLI=$!
  on_exit "kill -9 $ONGOING_CLI $ONGOING_SRV"
}
ongoing_check() {
  local rc=0
  for _ in $(seq 1 600); do kill -0 "$ONGOING_CLI" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$ONGOING_CLI" 2>/dev/null && fail "the ongoing transfer did not finish within 60 s"
  wait "$ONGOING_CLI" || rc=$?
  [ $rc -eq 0 ] || fail "ongoing transfer client failed ($rc): $(cat "$WORK/ongoing-cli.out" "$WORK/ongoing-cli.log")"
  wait "$ONGOING_SRV" || fail "ongoing transfer server failed: $(cat "$WORK/ongoing-srv.out")"
  local want back
  want="20971520 $("$PROGS/xfer" sha 20M --seed 7)"
  back="2097152 $("$PROGS/xfer" sha 2M --seed 8)"
  [ "$(sha_line "$WORK/ongoing-srv.out" recv)" = "$want" ] ||
    fail "ongoing transfer: B received '$(sha_line "$WORK/ongoing-srv.out" recv)', expected '$want'"
  [ "$(sha_line "$WORK/ongoing-cli.out" recv)" = "$back" ] ||
    fail "ongoing transfer: A received '$(sha_line "$WORK/ongoing-cli.out" recv)', expected '$back'"
  note "ongoing transfer completed intact"
}

# wait_rx SOCK BYTES [seconds]: until tund's streams together received BYTES
wait_rx() {
  local sock=$1 want=$2 t=${3:-20} got=0
  for _ in $(seq 1 $((t * 10))); do
    got=$("$BUILD/enoctl" --socket "$sock" status --json 2>/dev/null |
          python3 -c 'import json,sys; print(sum(e.get("rx_bytes", 0) for e in json.load(sys.stdin)))' 2>/dev/null) || got=0
    [ "${got:-0}" -ge "$want" ] && return 0
    sleep 0.1
  done
  fail "tund ($(basename "$sock")) received only ${got:-0} of $want bytes within ${t}s"
}

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

# tund_pid a|b: the tund process itself (TUND_PIDS holds its wrapper shell)
tund_pid() {
  local i; case $1 in a) i=0;; b) i=1;; esac
  pgrep -P "${TUND_PIDS[$i]}" -x tund || echo "${TUND_PIDS[$i]}"
}

# kill9 PID: SIGKILL a background program of this test and reap it quietly
kill9() { kill -9 "$1" 2>/dev/null; wait "$1" 2>/dev/null || true; }
# ongoing_n a|b: entries the ongoing transfer holds in that tund's table while
# it runs (A: the connection; B: the connection and xfer's listener)
ongoing_n() {
  case $1 in
    a) kill -0 "${ONGOING_CLI:-0}" 2>/dev/null && echo 1 || echo 0;;
    b) kill -0 "${ONGOING_SRV:-0}" 2>/dev/null && echo 2 || echo 0;;
  esac
}
