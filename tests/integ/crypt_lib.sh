# tests/integ/crypt_lib.sh — helpers of the tcpcrypt acceptance tests
# (t_crypt_*.sh), on top of lib.sh's namespace topology (sourced).
#
#   crypt_peer (tests/progs/crypt_peer.c)   the test program of both ends
#   scripts/enodump --json                  the independent decoder (oracle)
#   crypt_q.py                              enodump's JSON, one line per connection
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

CP=$PROGS/crypt_peer
ENODUMP=$TOP/scripts/enodump
CQ=$TOP/tests/integ/crypt_q.py
PY=/usr/bin/python3            # Debian's python3: python3-scapy, python3-cryptography
[ -x "$CP" ] || fail "$CP missing: run make"

# keylog_new FILE: tund refuses a key log that is not a 0600 regular file
keylog_new() { install -m 600 /dev/null "$1"; }

# cap_start NAME IFACE [tcpdump args / filter...]: capture into $WORK/NAME.pcap
# until cap_stop NAME (which lets tcpdump flush: a capture read while tcpdump
# still runs can miss the last packets).  tcpdump is started directly, not
# through a shell function, so that $! is tcpdump itself and SIGTERM reaches it.
# The snap length covers a whole packet as tund writes it to the TUN: up to
# 64 KiB with segmentation offload (tund/tun.c: the data segments of one
# lwIP output call leave as one packet, cut to the MTU by the kernel where
# it must), so 65600.  With --immediate-mode libpcap gives every packet a
# ring slot of the snap length, and with -s 0 (256 KiB slots) even a large
# -B holds so few packets that the kernel drops some of a bulk transfer:
# 128 MiB holds 2,000 such slots.
declare -A CAP_PIDS=()
cap_start() {
  local name=$1 ifc=$2; shift 2
  ip netns exec "$NS" tcpdump --immediate-mode -Z root -i "$ifc" -U -s "${CAP_SNAPLEN:-65600}" -B 131072 -w "$WORK/$name.pcap" "$@" \
    2>"$WORK/tcpdump-$name.err" &
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
cap_stop() {
  local p=${CAP_PIDS[$1]} last=-1 size same=0
  # SIGTERM ends tcpdump without draining its ring: first let it write what
  # the kernel already handed it (-U: the file grows packet by packet) —
  # until the file has not grown for 0.5 s (at most 20 s)
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
  "$PY" "$CQ" "$WORK/$name.json" >"$WORK/$name.q" || fail "crypt_q.py cannot read $name.json"
}

# q_line NAME SRC: the flattened enodump line of the connection from SRC (ip:port)
q_line() {
  local l
  l=$(grep -F "src=$2 " "$WORK/$1.q" | head -n 1)
  [ -n "$l" ] || fail "enodump ($1) has no connection from $2; it saw: $(cut -d' ' -f1-2 "$WORK/$1.q" | tr '\n' ';')"
  printf '%s\n' "$l"
}

# kv LINE KEY: value of key=value in LINE
kv() { printf '%s\n' "$1" | tr ' ' '\n' | sed -n "s/^$2=//p" | head -n 1; }

# conn_line OUTFILE N: the "conn N ..." line a crypt_peer printed
conn_line() {
  local l
  l=$(awk -v n="$2" '$1 == "conn" && $2 == n' "$1" | head -n 1)
  [ -n "$l" ] || fail "no 'conn $2' line in $(basename "$1"): $(head -c 600 "$1")"
  printf '%s\n' "$l"
}

# xfer_line OUTFILE sent|recv N: "BYTES SHA"
xfer_line() { awk -v k="$2" -v n="$3" '$1 == k && $2 == n { print $3, $4 }' "$1" | tail -n 1; }

# port_of IP:PORT
port_of() { printf '%s\n' "${1##*:}"; }

# peer_bg NAME a|b ARGS...: crypt_peer in the background (bounded), output in
# $WORK/NAME.out; PIDS[NAME] holds its pid.  A server waits for "listening".
declare -A PIDS=()
peer_bg() {
  local name=$1 host=$2; shift 2
  local sock=$A_SOCK
  [ "$host" = b ] && sock=$B_SOCK
  timeout "${PEER_TIMEOUT:-120}" ip netns exec "$NS" "$ENORUN" --socket "$sock" -- "$CP" "$@" \
    >"$WORK/$name.out" 2>"$WORK/$name.log" &
  PIDS[$name]=$!
  on_exit "kill ${PIDS[$name]}"
  [ "$1" = server ] && wait_log "$WORK/$name.out" '^listening' 30
  return 0
}

# peer_wait NAME: its exit status in RC
peer_wait() {
  RC=0
  wait "${PIDS[$1]}" || RC=$?
}

# peer_run NAME a|b ARGS...: in the foreground; exit status in RC
peer_run() {
  peer_bg "$@"
  peer_wait "$1"
}

# expect_rc NAME WANT: crypt_peer NAME must have exited with WANT
expect_rc() {
  [ "$RC" -eq "$2" ] || fail "$1 exited $RC (expected $2): $(tr '\n' '|' <"$WORK/$1.out" | head -c 900) $(tail -n 3 "$WORK/$1.log" | tr '\n' '|')"
}

# restart_tunds [tund args...]: stop both tunds and start them again with new
# settings (same addresses, sockets, TUN names; TUND_A_ARGS / TUND_B_ARGS apply)
restart_tunds() {
  # enoctl stop: TUND_PIDS hold the subshells start_tund ran tund in, not tund
  enoctl_a stop >/dev/null 2>&1 || true
  enoctl_b stop >/dev/null 2>&1 || true
  for _ in $(seq 1 200); do
    in_ns ip link show tun-a >/dev/null 2>&1 || in_ns ip link show tun-b >/dev/null 2>&1 || break
    sleep 0.05
  done
  in_ns ip link show tun-a >/dev/null 2>&1 && fail "tund A did not stop (enoctl stop)"
  in_ns ip link show tun-b >/dev/null 2>&1 && fail "tund B did not stop (enoctl stop)"
  local p
  for p in "${TUND_PIDS[@]}"; do wait_gone "$p" 10 || true; done
  TUND_PIDS=()
  rm -f "$A_SOCK" "$B_SOCK"
  # shellcheck disable=SC2086
  start_tund a "$A_SOCK" tun-a $HA4 $A4 $HA6 $A6 "$@" ${TUND_A_ARGS:-}
  # shellcheck disable=SC2086
  start_tund b "$B_SOCK" tun-b $HB4 $B4 $HB6 $B6 "$@" ${TUND_B_ARGS:-}
}
