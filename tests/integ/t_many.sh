#!/usr/bin/env bash
# 1000 concurrent connections through one tund pair: sem_many on A opens them
# all to echo_srv on B, each echoes 1 KiB (verified); while they are open both
# tunds list them; after close both tables return to their baseline.  Then
# 200 lwIP clients and 200 kernel clients (127.0.0.1) on the same listener at once.
. "$(dirname "$0")/lib.sh"
topo_up
N=${MANY_N:-1000}
bg_b "$PROGS/echo_srv" 7300 >"$WORK/echo.out" 2>"$WORK/echo.log"
srv=$!
wait_log "$WORK/echo.out" '^listening'
base_a=$(status_count "$A_SOCK"); base_b=$(status_count "$B_SOCK")
note "baseline: A $base_a, B $base_b connections"

timeout 150 ip netns exec "$NS" "$ENORUN" --socket "$A_SOCK" -- \
  "$PROGS/sem_many" "$B4" 7300 "$N" "$WORK/hold" >"$WORK/many.out" 2>"$WORK/many.log" &
cli=$!
wait_log "$WORK/many.out" '^echoed' 120
note "$(grep echoed "$WORK/many.out")"
est_a=$(enoctl_a status | awk '$3 == "established"' | wc -l)
est_b=$(enoctl_b status | awk '$3 == "established"' | wc -l)
note "established while open: A $est_a, B $est_b"
[ "$est_a" -ge "$N" ] || fail "tund A lists $est_a established connections, expected >= $N"
[ "$est_b" -ge "$N" ] || fail "tund B lists $est_b established connections, expected >= $N"
touch "$WORK/hold"
rc=0; wait "$cli" || rc=$?
[ $rc -eq 0 ] && [ "$(tail -n 1 "$WORK/many.out")" = ok ] ||
  fail "sem_many failed (exit $rc): $(grep -m3 FAIL "$WORK/many.log" "$WORK/many.out")"
wait_count "$A_SOCK" "$base_a" 30
wait_count "$B_SOCK" "$base_b" 30
tund_alive a; tund_alive b

# the same listener, at the same time: 200 shim'd clients through lwIP and
# 200 plain kernel clients through tund B's kernel listener (127.0.0.1)
rm -f "$WORK/hold2"
timeout 120 ip netns exec "$NS" "$ENORUN" --socket "$A_SOCK" -- \
  "$PROGS/sem_many" "$B4" 7300 200 >"$WORK/mix-a.out" 2>"$WORK/mix-a.log" &
ma=$!
timeout 120 ip netns exec "$NS" env T_KERNEL=1 "$PROGS/sem_many" 127.0.0.1 7300 200 >"$WORK/mix-k.out" 2>"$WORK/mix-k.log" &
mk=$!
rc=0; wait "$ma" || rc=$?
[ $rc -eq 0 ] || fail "200 shim'd clients alongside kernel clients failed ($rc): $(grep -m2 FAIL "$WORK/mix-a.log")"
rc=0; wait "$mk" || rc=$?
[ $rc -eq 0 ] || fail "200 kernel clients (via 127.0.0.1) alongside shim'd ones failed ($rc): $(grep -m2 FAIL "$WORK/mix-k.log")"
note "200 lwIP + 200 kernel clients on one listener at once: ok"
wait_count "$A_SOCK" "$base_a" 30
wait_count "$B_SOCK" "$base_b" 30
kill -0 "$srv" 2>/dev/null || fail "echo server died: $(cat "$WORK/echo.log")"
kill "$srv"; wait "$srv" || true
grep -q "served $((N + 400)) connections" "$WORK/echo.out" || fail "echo server: $(tail -n 1 "$WORK/echo.out")"
note "ok"
