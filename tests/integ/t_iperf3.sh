#!/usr/bin/env bash
# Two real hosts (hosts_lib.sh, default settings): iperf3 server on host 2,
# client on host 1 dialing host 2's real address: 3 s each way (normal and
# -R), JSON parsed: bytes transferred > 0 both ends, no error; plus an IPv6
# run and -P 4; every run is seen encrypting while it lasts, one session ID on
# both hosts.
. "$(dirname "$0")/hosts_lib.sh"
hosts_up
hosts_no_dns
tund_up 1
tund_up 2
command -v iperf3 >/dev/null || fail "iperf3 is not installed"
bg2 iperf3 -s -p 5201 >"$WORK/iperf-srv.log" 2>&1; srv=$!
on_exit "kill $srv"
wait_listen 5201 "$S2"

run() {   # run NAME ARGS...
  local name=$1; shift
  local out=$WORK/iperf-$name.json rc=0
  timeout 60 ip netns exec "$H1" "$ENORUN" --socket "$S1" -- iperf3 -J "$@" >"$out" 2>"$WORK/iperf-$name.err" &
  local p=$!
  expect_encrypted "iperf3 $name" 5201 $p
  wait $p || rc=$?
  python3 - "$out" "$name" "$rc" <<'PY' || fail "iperf3 $name: see above"
import json, sys
path, name, rc = sys.argv[1], sys.argv[2], int(sys.argv[3])
try:
    j = json.load(open(path))
except Exception as e:
    print(f"FAIL: iperf3 {name}: no JSON ({e}); exit {rc}: {open(path).read()[-500:]}"); sys.exit(1)
if "error" in j:
    print(f"FAIL: iperf3 {name}: error: {j['error']}"); sys.exit(1)
if rc != 0:
    print(f"FAIL: iperf3 {name}: exit status {rc}"); sys.exit(1)
end = j["end"]
sent, recv = end["sum_sent"]["bytes"], end["sum_received"]["bytes"]
if not (sent > 0 and recv > 0):
    print(f"FAIL: iperf3 {name}: sent {sent} received {recv}"); sys.exit(1)
print(f"  iperf3 {name}: sent {sent} B, received {recv} B, {end['sum_received']['bits_per_second']/1e6:.0f} Mbit/s")
PY
}
run a-to-b -c "$IP2" -p 5201 -t 3
run b-to-a -c "$IP2" -p 5201 -t 3 -R
run ipv6 -c "$IP2_6" -p 5201 -t 2
run parallel -c "$IP2" -p 5201 -t 2 -P 4
kill -0 "$srv" || fail "iperf3 server died: $(tail -5 "$WORK/iperf-srv.log")"
tund_alive 1; tund_alive 2
wait_count "$S1" 0 20
note ok
