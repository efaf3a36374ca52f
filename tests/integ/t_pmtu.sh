#!/usr/bin/env bash
# A link whose MTU is below the TUN's, on the real-link topology: both hosts'
# ends of the veth at 1400 (then 1280, IPv6's minimum) while each tund keeps
# its default MTU 1500, as on a cloud network, a tunnel or PPPoE.  Both
# lwIPs announce an MSS for 1500-byte packets; host 1's kernel cannot
# forward them and, for IPv6 (routers do not fragment), answers ICMPv6
# Packet Too Big.  tund must take it (stack/lwip_glue.c, tund/tcpcb.c
# on_pmtu): smaller segments from then on, and those already built cut by
# the kernel's segmentation (tund/tun.c pmtu_cap).  Before, the transfer
# stalled for good after the handshake.
#   - 32 MiB each way over IPv6 between two enoshim programs, by SHA-256,
#     within 60 s (kernel TCP needs well under a second here);
#   - host 1's tund logged the path MTU it learned;
#   - the second round (1400 known, 1280 now) also covers the segments that
#     carry ENO option bytes at the start of a connection (written alone,
#     never batched): they must be cut too, or the connection stalls;
#   - the same over IPv4 (the kernel fragments lwIP's packets there: they do
#     not say "don't fragment"), by SHA-256.
. "$(dirname "$0")/hosts_lib.sh"
hosts_up
tund_up 1
tund_up 2

xfer_both() {   # xfer_both NAME DIAL_ADDR
  local n=$1 addr=$2
  bg2 "$PROGS/xfer" serve 9200 --bind :: --send 32M --seed 5 >"$WORK/$n.srv" 2>"$WORK/$n.srvlog"
  local xs=$!
  wait_log "$WORK/$n.srv" '^listening' 10
  local t0=$SECONDS
  timeout 60 ip netns exec "$H1" "$ENORUN" --socket "$S1" -- "$PROGS/xfer" client "$addr" 9200 --send 32M --seed 6 \
    >"$WORK/$n.cli" 2>"$WORK/$n.clilog" ||
    { enoctl1 status >&2; enoctl2 status >&2; kill $xs 2>/dev/null
      fail "$n: the transfer did not finish within 60 s (stalled?): $(cat "$WORK/$n.clilog")"; }
  wait $xs || fail "$n: server: $(cat "$WORK/$n.srvlog")"
  [ "$(awk '$1 == "recv" { print $2, $3 }' "$WORK/$n.srv" | tail -n 1)" = "33554432 $("$PROGS/xfer" sha 32M --seed 6)" ] ||
    fail "$n: host 1 -> 2 data differ"
  [ "$(awk '$1 == "recv" { print $2, $3 }' "$WORK/$n.cli" | tail -n 1)" = "33554432 $("$PROGS/xfer" sha 32M --seed 5)" ] ||
    fail "$n: host 2 -> 1 data differ"
  note "$n: 32 MiB each way intact ($((SECONDS - t0)) s)"
}

for mtu in ${PMTU_LIST:-1400 1280}; do
  on1 ip link set eno-h1 mtu $mtu
  on2 ip link set eno-h2 mtu $mtu
  xfer_both "v6-mtu$mtu" "$IP2_6"
  grep -q "path MTU to port 9200 of a peer: $mtu " "$WORK/tund-1.log" ||
    fail "mtu $mtu: host 1's tund did not log the path MTU it learned: $(grep -i 'path mtu' "$WORK/tund-1.log")"
  note "mtu $mtu: tund 1 learned it from ICMPv6 Packet Too Big"
  xfer_both "v4-mtu$mtu" "$IP2"
done
echo ok
