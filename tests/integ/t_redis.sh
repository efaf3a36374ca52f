#!/usr/bin/env bash
# Two real hosts (hosts_lib.sh, default settings): redis-server on host 2;
# redis-benchmark and redis-cli on host 1, dialing host 2's real address:
# benchmark SET/GET with 20 clients reports non-zero rates, and a value
# written with redis-cli (v4 and v6) reads back identically; a redis-cli
# session of 4 PINGs is seen encrypting, one session ID on both hosts.
. "$(dirname "$0")/hosts_lib.sh"
hosts_up
hosts_no_dns
tund_up 1
tund_up 2
command -v redis-server >/dev/null || fail "redis-server is not installed"
bg2 redis-server --port 6379 --bind 0.0.0.0 ::  --save '' --appendonly no --dir "$WORK" \
  --protected-mode no --daemonize no --logfile "$WORK/redis.log"; srv=$!
on_exit "kill $srv"
wait_listen 6379 "$S2"
A=(timeout 120 ip netns exec "$H1" "$ENORUN" --socket "$S1" --)

t0=$SECONDS
"${A[@]}" redis-benchmark -h "$IP2" -p 6379 -q -n 20000 -c 20 -t set,get >"$WORK/bench.out" 2>&1 ||
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
[ "$("${A[@]}" redis-cli -h "$IP2" -p 6379 SET enoshim:k "$val")" = OK ] || fail "redis-cli SET failed"
[ "$("${A[@]}" redis-cli -h "$IP2" -p 6379 GET enoshim:k)" = "$val" ] || fail "redis-cli GET returned something else"
[ "$("${A[@]}" redis-cli -h "$IP2_6" -p 6379 GET enoshim:k)" = "$val" ] || fail "redis-cli GET over IPv6 returned something else"
[ "$("${A[@]}" redis-cli -h "$IP2" -p 6379 DBSIZE)" -ge 1 ] || fail "DBSIZE"
note "redis-cli SET/GET (v4, v6): ok"
kill -0 "$srv" || fail "redis-server died: $(tail -5 "$WORK/redis.log")"

# encrypted: one redis-cli connection, 4 PINGs 0.4 s apart, watched in both
# tunds' status
"${A[@]}" redis-cli -h "$IP2" -p 6379 -r 4 -i 0.4 PING >"$WORK/ping.out" 2>&1 &
cp=$!
expect_encrypted "redis-cli -> redis-server" 6379 $cp
wait $cp || fail "redis-cli PING failed: $(cat "$WORK/ping.out")"
[ "$(grep -c '^PONG$' "$WORK/ping.out")" = 4 ] || fail "redis-cli PING: $(cat "$WORK/ping.out")"
tund_alive 1; tund_alive 2
wait_count "$S1" 0 20
note ok
