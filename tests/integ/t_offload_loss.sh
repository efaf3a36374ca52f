#!/usr/bin/env bash
# san: skip  (long transfers through ASan-built tunds take minutes)
# Loss inside segmentation-offload packets, on the real-link topology (two
# hosts on a 1500-MTU veth, each with its own tund at MTU 1500, offloads on).
# There is no netem here (no sch_netem in this kernel): nftables drops
# packets by count (numgen).  lwIP's TCP works on wire-sized segments only
# (tund/tun.c "GSO batches"): what it must recover is what the wire lost.
#   1. one wire segment inside a super-packet: host 1's end of the link cuts
#      tund 1's segmentation-offload packets into MTU-sized segments (as a
#      NIC without TSO would) and host 2 drops one data segment in 500 of
#      host 1's transfer; 1 GiB host 1 -> 2 (and 64 MiB back) by SHA-256;
#   2. whole super-packets (40-odd consecutive wire segments, a burst): host
#      1 drops one segmentation-offload packet in 200 of tund 1's before
#      forwarding them; 128 MiB host 1 -> 2 (and 32 MiB back) by SHA-256;
#   3. the reverse direction: host 1 drops one in 200 of host 2's data
#      segments and ACKs on their way in; 128 MiB each way by SHA-256.
# Each rule's counter shows that packets were dropped.
. "$(dirname "$0")/hosts_lib.sh"
. "$(dirname "$0")/offload_lib.sh"
hosts_up
tund_up 1
tund_up 2

# drop_rule HOST(1|2) HOOK RULE...: a table of this test's own on that host
drop_rule() {
  local h=$1 hook=$2; shift 2
  "on$h" nft add table inet t_loss
  "on$h" nft add chain inet t_loss "$hook" "{ type filter hook $hook priority -10; }"
  "on$h" nft add rule inet t_loss "$hook" "$@" counter drop
}
dropped() {   # dropped HOST HOOK
  "on$1" nft list chain inet t_loss "$2" | sed -nE 's/.*counter packets ([0-9]+) .*/\1/p' | head -n 1
}
drop_clear() { "on$1" nft delete table inet t_loss; }

# ---- 1. single wire segments ------------------------------------------------------
veth_tso 1 off
drop_rule 2 prerouting ip saddr $IP1 tcp dport 9100 meta length '>' 1000 numgen inc mod 500 == 0
xfer_check seg $IP2 9100 1G 64M
d=$(dropped 2 prerouting)
[ "${d:-0}" -ge 100 ] || fail "1: only ${d:-0} segments dropped"
note "1: $d wire segments of super-packets dropped (1 in 500), every byte arrived"
drop_clear 2
veth_tso 1 on

# ---- 2. whole super-packets -----------------------------------------------------
drop_rule 1 forward iifname enotun0 tcp dport 9101 meta length '>' 10000 numgen inc mod 200 == 0
xfer_check burst $IP2 9101 128M 32M
d=$(dropped 1 forward)
[ "${d:-0}" -ge 3 ] || fail "2: only ${d:-0} super-packets dropped"
note "2: $d segmentation-offload packets dropped whole (1 in 200), every byte arrived"
drop_clear 1

# ---- 3. the other direction, data and ACKs ---------------------------------------
veth_tso 2 off
drop_rule 1 prerouting ip saddr $IP2 tcp sport 9102 numgen inc mod 200 == 0
xfer_check back $IP2 9102 128M 128M
d=$(dropped 1 prerouting)
[ "${d:-0}" -ge 20 ] || fail "3: only ${d:-0} packets dropped"
note "3: $d of host 2's segments and ACKs dropped (1 in 200), every byte arrived"
note ok
