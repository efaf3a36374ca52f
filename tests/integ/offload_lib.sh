# tests/integ/offload_lib.sh — helpers of t_offload*.sh (sourced after
# hosts_lib.sh): bulk transfers between the two real hosts checked by SHA-256,
# and what each tund says about the TUN's offloads.
#
# tund logs, at start, the offloads the kernel accepted:
#   "TUN offloads: checksums; large segments from the kernel: TCPv4 yes, TCPv6 yes; ..."
#   "TUN offloads: off (offload=no ...)"
# and, when it exits, what went through the TUN:
#   "TUN: W packets written, G of them segmentation-offload packets carrying S
#    segments; R read, L of them large segments"

XFER=$BUILD/tests/progs/xfer

# xfer_check NAME HOST2_ADDR PORT UP DOWN [seconds]: an xfer server on host 2
# sends DOWN bytes while a client on host 1 sends UP bytes to HOST2_ADDR:PORT
# (full duplex); both directions checked by SHA-256.
xfer_check() {
  local n=$1 addr=$2 port=$3 up=$4 down=$5 t=${6:-100} t0=$SECONDS
  local bind=0.0.0.0
  case $addr in *:*) bind=::;; esac
  bg2 "$XFER" serve "$port" --bind "$bind" --send "$down" --seed 12 >"$WORK/$n.srv" 2>"$WORK/$n.srvlog"
  local sp=$!
  wait_log "$WORK/$n.srv" '^listening' 10
  timeout "$t" ip netns exec "$H1" "$ENORUN" --socket "$S1" -- "$XFER" client "$addr" "$port" --send "$up" \
    --seed 11 >"$WORK/$n.cli" 2>"$WORK/$n.clilog" ||
    { kill "$sp" 2>/dev/null; fail "$n: client: $(cat "$WORK/$n.cli" "$WORK/$n.clilog")"; }
  wait "$sp" || fail "$n: server: $(cat "$WORK/$n.srv" "$WORK/$n.srvlog")"
  local want_up want_down got_up got_down
  want_up="$("$XFER" sha "$up" --seed 11)"
  want_down="$("$XFER" sha "$down" --seed 12)"
  got_up=$(awk '$1 == "recv" { print $2, $3 }' "$WORK/$n.srv" | tail -n 1)
  got_down=$(awk '$1 == "recv" { print $2, $3 }' "$WORK/$n.cli" | tail -n 1)
  [ "${got_up#* }" = "$want_up" ] || fail "$n: host 1 -> 2 ($up): got '$got_up', want SHA-256 $want_up"
  [ "${got_down#* }" = "$want_down" ] || fail "$n: host 2 -> 1 ($down): got '$got_down', want SHA-256 $want_down"
  note "$n: $up host 1 -> 2 and $down back, SHA-256 match ($((SECONDS - t0)) s)"
}

# tund_stop 1|2: SIGTERM, wait until it has exited (it logs its TUN counters)
tund_stop() {
  local p
  eval "p=\$TUND$1"
  kill "$p" 2>/dev/null
  for _ in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.05; done
  kill -0 "$p" 2>/dev/null && fail "tund $1 did not exit on SIGTERM"
  wait "$p" 2>/dev/null || true
}

# tun_count 1|2 FIELD: from the exit line: written gso segs read large
tun_count() {
  local line
  line=$(grep -h "info: TUN: " "$WORK/tund-$1.log" | tail -n 1)
  [ -n "$line" ] || fail "tund $1 logged no TUN counters: $(tail -n 5 "$WORK/tund-$1.log")"
  case $2 in
    written) sed -E 's/.*TUN: ([0-9]+) packets written.*/\1/' <<<"$line";;
    gso) sed -E 's/.* ([0-9]+) of them segmentation-offload packets.*/\1/' <<<"$line";;
    segs) sed -E 's/.*carrying ([0-9]+) segments.*/\1/' <<<"$line";;
    read) sed -E 's/.*; ([0-9]+) read.*/\1/' <<<"$line";;
    large) sed -E 's/.* ([0-9]+) of them large segments.*/\1/' <<<"$line";;
  esac
}

# veth_tso 1|2 on|off: TCP segmentation offload of that host's end of the
# link (SIOCETHTOOL, as `ethtool -K DEV tso off` does).  Off, the kernel cuts
# every segmentation-offload packet it forwards there into MTU-sized segments
# (software GSO, as for a NIC without TSO), so that the other host sees — and
# a rule there can drop — single wire segments.
veth_tso() {
  local dev=eno-h$1
  ip netns exec "$([ "$1" = 1 ] && echo "$H1" || echo "$H2")" "$PY" - "$dev" "$2" <<'PY' || fail "cannot set TSO of $dev"
import ctypes, fcntl, socket, struct, sys
SIOCETHTOOL, ETHTOOL_GTSO, ETHTOOL_STSO = 0x8946, 0x1e, 0x1f
def ethtool(ifname, cmd, data=0):
    buf = ctypes.create_string_buffer(struct.pack("II", cmd, data))
    ifr = struct.pack("16sP", ifname.encode(), ctypes.addressof(buf)).ljust(40, b"\0")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        fcntl.ioctl(s, SIOCETHTOOL, ifr)
    return struct.unpack("II", buf.raw[:8])[1]
want = sys.argv[2] == "on"
ethtool(sys.argv[1], ETHTOOL_STSO, int(want))
sys.exit(0 if ethtool(sys.argv[1], ETHTOOL_GTSO) == int(want) else 1)
PY
}
