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

# tund polls for events a short while before it sleeps (poll_us=, default
# 100 µs; tund/loop.c), but only while events come that soon: right after
# a burst of connections, with one of them held open and idle and lwIP's timers
# running, both tunds must be back to sleeping — a polling window that did
# not shrink would burn a CPU here.
# poll_state a|b: "WINDOW FOUND SLEPT" from `enoctl check` ("polling: window W
# us of B, F found polling, S slept after polling")
poll_state() {
  local sock; [ "$1" = a ] && sock=$A_SOCK || sock=$B_SOCK
  "$BUILD/enoctl" --socket "$sock" check 2>&1 | sed -n 's/.*polling: window \([0-9]*\) us of [0-9]*, \([0-9]*\) found polling, \([0-9]*\) slept.*/\1 \2 \3/p'
}
for t in a b; do
  read -r w f _ < <(poll_state $t) || fail "tund $t: no polling line in enoctl check"
  note "tund $t after the ping-pongs: polling window $w us, $f events found by polling"
  [ "$f" -gt 0 ] || fail "tund $t never found an event by polling during tens of thousands of round trips"
done
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
pa=$(tund_pid a); pb=$(tund_pid b)
timeout 60 ip netns exec "$NS" "$ENORUN" --socket "$A_SOCK" -- \
  "$BUILD/bench/enobench" conn --host "$B4" --port 7951 --time 0.5 --hold 3 >"$WORK/cr.json" 2>&1 &
hold=$!
on_exit "kill $hold 2>/dev/null"
sleep 1
read -r _ _ sa0 < <(poll_state a); read -r _ _ sb0 < <(poll_state b)
a0=$(cpu_ticks "$pa"); b0=$(cpu_ticks "$pb"); t0=$EPOCHREALTIME
sleep 2
a1=$(cpu_ticks "$pa"); b1=$(cpu_ticks "$pb"); t1=$EPOCHREALTIME
hz=$(getconf CLK_TCK)
read -r ua ub < <(awk -v a=$((a1 - a0)) -v b=$((b1 - b0)) -v hz="$hz" -v s="$t0" -v e="$t1" \
  'BEGIN { printf "%.1f %.1f", 100 * a / hz / (e - s), 100 * b / hz / (e - s) }')
note "idle after a burst of connections, one held: tund A used ${ua}% of a CPU, tund B ${ub}%"
awk -v a="$ua" -v b="$ub" 'BEGIN { exit !(a < 5 && b < 5) }' ||
  fail "an idle tund kept polling: A ${ua}%, B ${ub}% of a CPU over 2 s (want < 5 %)"
# lwIP's timers wake each tund tens of times in those 2 s; a window that did
# not shrink would poll, and then sleep, before every one of them (~70 here
# when shrinking was broken on purpose).  One that shrinks polls only before
# the first few: each enoctl visit (above, and the one that reads the count)
# grows it by a step or two, which the next long sleeps take back.
read -r _ _ sa1 < <(poll_state a); read -r _ _ sb1 < <(poll_state b)
note "sleeps after an empty poll in those 2 s: tund A $((sa1 - sa0)), tund B $((sb1 - sb0))"
[ $((sa1 - sa0)) -le 12 ] && [ $((sb1 - sb0)) -le 12 ] ||
  fail "a tund kept polling while idle: $((sa1 - sa0)) / $((sb1 - sb0)) sleeps after an empty poll in 2 s (want <= 12)"
wait $hold || fail "enobench conn --hold: $(cat "$WORK/cr.json")"
echo ok
