#!/usr/bin/env bash
# san: skip  (1 GiB through ASan-built tunds takes minutes)
# The fallback when the TUN offloads are refused (offload=no: no virtio-net
# header, as on a persistent TUN made without one), on the real-link
# topology (two hosts on a 1500-MTU veth, each with its own tund at MTU 1500):
#   - both tunds off: each says so, 1 GiB host 1 -> host 2 with 64 MiB back
#     by SHA-256, and neither wrote nor read a segmentation-offload packet;
#   - mixed (host 1 on, host 2 off): 128 MiB host 1 -> 2, 64 MiB back, by SHA-256; host 1's
#     segmentation-offload packets reach host 2 cut to the MTU by the kernel,
#     with their checksums completed, and host 2's single segments reach host 1.
. "$(dirname "$0")/hosts_lib.sh"
. "$(dirname "$0")/offload_lib.sh"
hosts_up
tund_up 1 --offload=no
tund_up 2 --offload=no
for h in 1 2; do
  grep -q "TUN offloads: off" "$WORK/tund-$h.log" || fail "host $h: $(grep 'TUN offloads' "$WORK/tund-$h.log")"
done
xfer_check off $IP2 9100 1G 64M
tund_stop 1
tund_stop 2
for h in 1 2; do
  [ "$(tun_count $h gso)" = 0 ] && [ "$(tun_count $h large)" = 0 ] ||
    fail "host $h with offload=no: $(grep -h 'info: TUN: ' "$WORK/tund-$h.log")"
done
note "offload=no on both hosts: no segmentation-offload packet either way"

mv "$WORK/tund-1.log" "$WORK/tund-1-off.log"; mv "$WORK/tund-2.log" "$WORK/tund-2-off.log"
tund_up 1
tund_up 2 --offload=no
xfer_check mixed $IP2 9101 128M 64M
tund_stop 1
tund_stop 2
[ "$(tun_count 1 gso)" -ge 100 ] || fail "host 1 (offload on) wrote $(tun_count 1 gso) segmentation-offload packets"
[ "$(tun_count 2 large)" = 0 ] || fail "host 2 (offload=no) read $(tun_count 2 large) large segments"
note "mixed: host 1 wrote $(tun_count 1 gso) segmentation-offload packets, host 2 read them as $(tun_count 2 read) packets"
note ok
