#!/usr/bin/env bash
# san: skip  (1 GiB through ASan-built tunds takes minutes; t_realhosts covers the paths on the sanitizer build)
# The TUN offloads on the real-link topology (two hosts on a 1500-MTU veth,
# each with its own tund at MTU 1500, default settings: offload=yes):
#   - each tund says which offloads the kernel accepted: checksums, large
#     segments from the kernel (TCPv4, TCPv6), segmentation of its own;
#   - 1 GiB host 1 -> host 2 with 64 MiB back at the same time, and 256 MiB
#     each way over IPv6, by SHA-256 (xfer, tcpcrypt);
#   - 20 kB responses on 40 fresh connections take well under 20 ms each
#     (a first window sent as one packet and received as one large segment
#     is acknowledged at once);
#   - the offloads were used: host 1's tund wrote segmentation-offload
#     packets (several wire segments each) and host 2's read large segments
#     (the kernel forwarded them whole across the veth), and the other way.
. "$(dirname "$0")/hosts_lib.sh"
. "$(dirname "$0")/offload_lib.sh"
hosts_up
tund_up 1
tund_up 2
for h in 1 2; do
  grep -q "TUN offloads: checksums; large segments from the kernel: TCPv4 yes, TCPv6 yes; segmentation of ours: TCPv4 and TCPv6" \
    "$WORK/tund-$h.log" || fail "host $h: offloads not all on: $(grep 'TUN offloads' "$WORK/tund-$h.log")"
done
note "both tunds: checksum offload, large segments from the kernel, segmentation of their own"

xfer_check v4 $IP2 9100 1G 64M
xfer_check v6 $IP2_6 9101 256M 256M

# Short responses on fresh connections: the first window leaves as one
# segmentation-offload packet and arrives as one large segment, which lwIP
# must acknowledge at once (lwIP patch 0008), not after its delayed-ACK
# timer: without that, every 20 kB response took 80 ms (two 40 ms ticks).
cat >"$WORK/resp_srv.py" <<'PY'
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1])))
s.listen(64)
print("listening", flush=True)
data = b"r" * 20000
for _ in range(int(sys.argv[2])):
    c, _ = s.accept()
    c.recv(100)
    c.sendall(data)
    c.close()
PY
cat >"$WORK/resp_cli.py" <<'PY'
import socket, sys, time
ts = []
for _ in range(int(sys.argv[3])):
    t0 = time.monotonic()
    c = socket.create_connection((sys.argv[1], int(sys.argv[2])))
    c.sendall(b"get")
    got = 0
    while True:
        b = c.recv(65536)
        if not b:
            break
        got += len(b)
    c.close()
    assert got == 20000, got
    ts.append(time.monotonic() - t0)
ts.sort()
print("median_ms %.2f" % (ts[len(ts) // 2] * 1e3))
PY
bg2 "$PY" "$WORK/resp_srv.py" 9102 40 >"$WORK/resp.srv" 2>&1
rs=$!
wait_log "$WORK/resp.srv" '^listening' 10
med=$(timeout 60 ip netns exec "$H1" "$ENORUN" --socket "$S1" -- "$PY" "$WORK/resp_cli.py" $IP2 9102 40 2>&1) ||
  fail "short responses: $med"
wait $rs || fail "short-response server: $(cat "$WORK/resp.srv")"
med=${med#median_ms }
note "40 fresh connections each fetching 20 kB: median $med ms"
awk -v m="$med" 'BEGIN { exit !(m < 20) }' || fail "a 20 kB response on a fresh connection takes $med ms (a delayed ACK?)"

tund_stop 1
tund_stop 2
gso1=$(tun_count 1 gso) segs1=$(tun_count 1 segs) large2=$(tun_count 2 large)
gso2=$(tun_count 2 gso) large1=$(tun_count 1 large)
note "host 1 wrote $gso1 segmentation-offload packets ($segs1 segments), host 2 read $large2 large segments"
note "host 2 wrote $gso2 segmentation-offload packets, host 1 read $large1 large segments"
# 1 GiB + 256 MiB in MTU-sized segments would be ~900,000 of them
[ "$gso1" -ge 1000 ] || fail "host 1's tund wrote only $gso1 segmentation-offload packets"
[ "$segs1" -ge $((gso1 * 4)) ] || fail "host 1's segmentation-offload packets carry only $segs1 segments in all"
[ "$large2" -ge 1000 ] || fail "host 2's tund read only $large2 large segments"
[ "$gso2" -ge 1000 ] && [ "$large1" -ge 1000 ] || fail "host 2 -> 1: $gso2 written, $large1 read as large segments"
note ok
