#!/usr/bin/env bash
# redis-server behind tund B; redis-benchmark and redis-cli behind tund A:
# benchmark SET/GET with 20 clients reports non-zero rates, and a value
# written with redis-cli (v4 and v6) reads back identically.
. "$(dirname "$0")/lib.sh"
topo_up
command -v redis-server >/dev/null || fail "redis-server is not installed"
bg_b redis-server --port 6379 --bind 0.0.0.0 ::  --save '' --appendonly no --dir "$WORK" \
  --protected-mode no --daemonize no --logfile "$WORK/redis.log"; srv=$!
on_exit "kill $srv"
wait_listen 6379 "$B_SOCK"
A=(timeout 120 ip netns exec "$NS" "$ENORUN" --socket "$A_SOCK" --)

t0=$SECONDS
"${A[@]}" redis-benchmark -h "$B4" -p 6379 -q -n 20000 -c 20 -t set,get >"$WORK/bench.out" 2>&1 ||
  fail "redis-benchmark failed: $(tail -5 "$WORK/bench.out")"
tr '\r' '\n' <"$WORK/bench.out" | grep -E '^(SET|GET): [0-9.]+ requests per second' | sed 's/^/  /' >"$WORK/bench.sum"
cat "$WORK/bench.sum"
note "benchmark took $((SECONDS - t0))s"
for op in SET GET; do
  rps=$(awk -v op="$op:" '$1 == op { print $2 }' "$WORK/bench.sum" | tail -n 1)
  [ -n "$rps" ] || fail "no $op result from redis-benchmark: $(tail -c 500 "$WORK/bench.out")"
  awk -v r="$rps" 'BEGIN { exit !(r + 0 > 0) }' || fail "$op: $rps requests per second"
done

val="value-$RANDOM-$(head -c 600 /dev/urandom | base64 -w0)"
[ "$("${A[@]}" redis-cli -h "$B4" -p 6379 SET enoshim:k "$val")" = OK ] || fail "redis-cli SET failed"
[ "$("${A[@]}" redis-cli -h "$B4" -p 6379 GET enoshim:k)" = "$val" ] || fail "redis-cli GET returned something else"
[ "$("${A[@]}" redis-cli -h "$B6" -p 6379 GET enoshim:k)" = "$val" ] || fail "redis-cli GET over IPv6 returned something else"
[ "$("${A[@]}" redis-cli -h "$B4" -p 6379 DBSIZE)" -ge 1 ] || fail "DBSIZE"
note "redis-cli SET/GET (v4, v6): ok"
kill -0 "$srv" || fail "redis-server died: $(tail -5 "$WORK/redis.log")"
tund_alive a; tund_alive b
wait_count "$A_SOCK" 0 20
note ok
