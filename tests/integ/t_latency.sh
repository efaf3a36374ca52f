#!/usr/bin/env bash
# Request/response latency between programs behind tund A and tund B
# (pingpong -> echo_srv, IPv4 and IPv6; echo_srv does not set TCP_NODELAY):
# no systematic stalls (see tests/progs/pingpong.c for the bounds).
. "$(dirname "$0")/lib.sh"
topo_up
bg_b "$PROGS/echo_srv" 7950 :: >"$WORK/echo.out" 2>"$WORK/echo.log"; srv=$!
on_exit "kill $srv"
wait_log "$WORK/echo.out" '^listening'
SEM_TIMEOUT=100 sem pingpong "$B4" 7950 30
SEM_TIMEOUT=100 sem pingpong "$B6" 7950 20

# A blocking program sleeps once per request-reply, not twice.  The doorbell
# it rings for tund used to be a byte on its own end of the socketpair; tund
# reading that byte made the kernel wake every task asleep on that end
# (unix_write_space), and the program's blocking recv() waiting for the
# answer woke for nothing and slept again: 1.9 voluntary switches per round
# trip instead of 1.0 (shim/io.c: ring_doorbell).
bg_b "$BUILD/bench/enobench" server --port 7951 >"$WORK/eb.out" 2>&1; ebs=$!
on_exit "kill $ebs"
wait_listen 7951 "$B_SOCK"
timeout 60 ip netns exec "$NS" "$ENORUN" --socket "$A_SOCK" -- \
  "$BUILD/bench/enobench" pingpong --host "$B4" --port 7951 --time 2 >"$WORK/pp.json" 2>&1 ||
  fail "enobench pingpong: $(cat "$WORK/pp.json")"
read -r n v iv < <(python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(r["n"], r["vcsw_per_rt"], r["ivcsw_per_rt"])' "$WORK/pp.json") ||
  fail "enobench pingpong output: $(cat "$WORK/pp.json")"
note "blocking ping-pong: $n round trips, the client slept $v times per round trip (preempted $iv)"
[ "$n" -ge 200 ] || fail "only $n round trips in 2 s"
python3 -c 'import sys; sys.exit(0 if float(sys.argv[1]) <= 1.4 else 1)' "$v" ||
  fail "the client slept $v times per round trip (want <= 1.4: woken for nothing by its own doorbell?)"
echo ok
