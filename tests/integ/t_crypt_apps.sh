#!/usr/bin/env bash
# Unmodified programs under enorun with tcpcrypt negotiated, and captures on
# tun-a that show no plaintext:
#   1. curl <- python3 -m http.server   a 2 MiB file of a repeated marker
#   2. curl <- nginx (sendfile on)      a 20 MB file
#   3. redis-benchmark / redis-cli -> redis-server
#   4. iperf3 -t 2, both directions (-R)
#   5. socat, 1 GiB with SHA-256 (only the first 20000 packets captured)
# For each: the transfer is right (SHA-256 / the program's own result); every
# connection in the capture negotiated ENO and tcpcrypt, and with A's key log
# enodump verifies every frame (so nothing travelled in the clear); the
# marker appears in the decrypted streams but never in the raw capture.
. "$(dirname "$0")/crypt_lib.sh"

KEYLOG=$WORK/keylog
keylog_new "$KEYLOG"
TUND_A_ARGS="--keylog=$KEYLOG"
topo_up
MARK="enoshim-PLAINTEXT-marker-7f3a"

# encrypted NAME MIN-CONNS MARKER: checks on $WORK/NAME.pcap
encrypted() {
  local name=$1 min=$2 marker=$3 n bad hits
  dump "$name" "$KEYLOG" --write-streams "$WORK/streams-$name"
  [ $DUMP_RC -eq 0 ] || fail "$name: enodump reports errors: $(head -c 1500 "$WORK/enodump-$name.log")"
  n=$(grep -c . "$WORK/$name.q")
  [ "$n" -ge "$min" ] || fail "$name: $n TCP connections in the capture, expected at least $min"
  bad=$(grep -v ' eno_ok=1 ' "$WORK/$name.q" | head -n 3)
  [ -z "$bad" ] || fail "$name: a connection without ENO: $bad"
  bad=$(grep -E ' pt=1 | sessid=- | errors=[1-9]' "$WORK/$name.q" | head -n 3)
  [ -z "$bad" ] || fail "$name: a connection that is not a verified tcpcrypt session: $bad"
  hits=$(grep -c -a -F "$marker" "$WORK/$name.pcap" || true)
  [ "$hits" -eq 0 ] || fail "$name: the marker '$marker' appears $hits times in the raw capture"
  grep -q -a -F "$marker" "$WORK/streams-$name"/* 2>/dev/null ||
    fail "$name: the marker is not in enodump's decrypted streams either: the check above proves nothing"
  note "$name: $n connections, all ENO + tcpcrypt, every frame verified; '$marker' only in the decrypted streams"
}

mkdir -p "$WORK/www"
"$CP" gen 2M --marker "$MARK-http
" >"$WORK/www/file.txt"
"$CP" gen 20000000 --marker "$MARK-nginx
" >"$WORK/www/big.bin"
sum_http=$(sha256sum <"$WORK/www/file.txt" | cut -d' ' -f1)
sum_big=$(sha256sum <"$WORK/www/big.bin" | cut -d' ' -f1)

cap_start web tun-a "tcp port 8000 or tcp port 8081 or tcp port 6390"

# ---- 1. python3 http.server + curl
( cd "$WORK/www" && exec timeout 120 ip netns exec "$NS" "$ENORUN" --socket "$B_SOCK" -- \
    /usr/bin/python3 -m http.server 8000 >"$WORK/http.log" 2>&1 ) &
on_exit "kill $!"
wait_listen 8000 "$B_SOCK" 30
run_a_curl timeout 60 curl -sS --fail -o "$WORK/got-http" "http://$B4:8000/file.txt" 2>"$WORK/curl1.log" ||
  fail "curl from http.server failed: $(cat "$WORK/curl1.log")"
[ "$(sha256sum <"$WORK/got-http" | cut -d' ' -f1)" = "$sum_http" ] || fail "http.server: the file curl got differs"
note "1. http.server -> curl: 2 MiB, SHA-256 equal"

# ---- 2. nginx (sendfile on, as Debian's default configuration has it)
mkdir -p "$WORK/nginx"
cat >"$WORK/nginx/nginx.conf" <<EOF
daemon off;
master_process off;
worker_processes 1;
user root;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log;
events { worker_connections 64; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  client_body_temp_path $WORK/nginx/body;
  proxy_temp_path $WORK/nginx/proxy;
  fastcgi_temp_path $WORK/nginx/fastcgi;
  uwsgi_temp_path $WORK/nginx/uwsgi;
  scgi_temp_path $WORK/nginx/scgi;
  server { listen 8081; root $WORK/www; }
}
EOF
timeout 120 ip netns exec "$NS" "$ENORUN" --socket "$B_SOCK" -- nginx -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" \
  >"$WORK/nginx.log" 2>&1 &
on_exit "kill $!"
wait_listen 8081 "$B_SOCK" 30
run_a_curl timeout 60 curl -sS --fail -o "$WORK/got-big" "http://$B4:8081/big.bin" 2>"$WORK/curl2.log" ||
  fail "curl from nginx failed: $(cat "$WORK/curl2.log") $(tail -n 5 "$WORK/nginx/error.log")"
[ "$(sha256sum <"$WORK/got-big" | cut -d' ' -f1)" = "$sum_big" ] ||
  fail "nginx: the 20 MB file curl got differs ($(stat -c %s "$WORK/got-big") bytes)"
note "2. nginx -> curl: 20 MB, SHA-256 equal"

# ---- 3. redis
timeout 120 ip netns exec "$NS" "$ENORUN" --socket "$B_SOCK" -- redis-server --port 6390 --bind 0.0.0.0 \
  --protected-mode no --save '' --appendonly no --dir "$WORK" --daemonize no >"$WORK/redis.log" 2>&1 &
on_exit "kill $!"
wait_listen 6390 "$B_SOCK" 30
run_a timeout 60 redis-cli -h "$B4" -p 6390 set enoshim:marker "$MARK-redis" >"$WORK/redis-cli.out" 2>&1 ||
  fail "redis-cli set: $(cat "$WORK/redis-cli.out")"
[ "$(run_a timeout 60 redis-cli -h "$B4" -p 6390 get enoshim:marker)" = "$MARK-redis" ] || fail "redis-cli get: wrong value"
run_a timeout 90 redis-benchmark -h "$B4" -p 6390 -n 2000 -c 4 -t set,get -q >"$WORK/redis-bench.out" 2>&1 ||
  fail "redis-benchmark failed: $(tail -n 5 "$WORK/redis-bench.out")"
tr '\r' '\n' <"$WORK/redis-bench.out" >"$WORK/redis-bench.txt"
grep -qE '^SET: .*requests per second' "$WORK/redis-bench.txt" && grep -qE '^GET: .*requests per second' "$WORK/redis-bench.txt" ||
  fail "redis-benchmark: no results: $(tr '\r' '\n' <"$WORK/redis-bench.out" | tail -n 5)"
note "3. redis: $(grep -E '^(SET|GET): [0-9.]+ requests per second' "$WORK/redis-bench.txt" | tr '\n' ' ')"
cap_stop web
encrypted web 5 "$MARK"
grep -q -a -F "key:__rand_int__" "$WORK/web.pcap" && fail "redis-benchmark's key name appears in the capture"

# ---- 4. iperf3, both directions (-b keeps the capture small)
cap_start iperf tun-a "tcp port 5201"
timeout 120 ip netns exec "$NS" "$ENORUN" --socket "$B_SOCK" -- iperf3 -s -p 5201 >"$WORK/iperf-s.log" 2>&1 &
on_exit "kill $!"
wait_listen 5201 "$B_SOCK" 30
for dir in "" -R; do
  run_a timeout 60 iperf3 -c "$B4" -p 5201 -t 2 -b 100M $dir -J >"$WORK/iperf$dir.json" 2>&1 ||
    fail "iperf3 $dir failed: $(head -c 600 "$WORK/iperf$dir.json")"
  r=$("$PY" -c 'import json,sys
d = json.load(open(sys.argv[1]))
print(int(d["end"]["sum_received"]["bytes"]), round(d["end"]["sum_received"]["bits_per_second"] / 1e6, 1))' "$WORK/iperf$dir.json") ||
    fail "iperf3 $dir: no result"
  [ "${r%% *}" -gt 1000000 ] || fail "iperf3 $dir: received only ${r%% *} bytes"
  note "4. iperf3 ${dir:-(A -> B)}: ${r%% *} bytes received, ${r##* } Mbit/s"
done
cap_stop iperf
# the marker: a key of the JSON results the iperf3 client and server exchange
encrypted iperf 4 "cpu_util_total"

# ---- 5. socat, 1 GiB, SHA-256 (only the first packets captured)
MARK5="$MARK-socat"
cap_start big tun-a -c 20000 "tcp port 7700"
timeout 200 ip netns exec "$NS" "$ENORUN" --socket "$B_SOCK" -- sh -c \
  "socat -u TCP-LISTEN:7700,reuseaddr - | sha256sum >'$WORK/socat.sum'" 2>"$WORK/socat-b.log" &
srv=$!
on_exit "kill $srv"
wait_listen 7700 "$B_SOCK" 30
t0=$SECONDS
( "$CP" gen 1G --marker "$MARK5
" | timeout 200 ip netns exec "$NS" "$ENORUN" --socket "$A_SOCK" -- socat -u - "TCP:$B4:7700" ) 2>"$WORK/socat-a.log" &
cli=$!
on_exit "kill $cli"
# while it runs: tund A reports the connection encrypting with tcpcrypt
st=
for _ in $(seq 1 100); do
  st=$(enoctl_a status --json | "$PY" -c 'import json,sys
for e in json.load(sys.stdin):
    if e["kind"] == "stream" and e["remote"] == sys.argv[1]:
        print(e["eno"], e["tep"], e["aead"], len(e["session_id"])); break' "$B4:7700")
  [ -n "$st" ] && break
  sleep 0.05
done
[ -n "$st" ] || fail "socat: the connection never showed in enoctl status"
set -- $st
[ "$1" = encrypting ] && [ $(($2 & 0x7f)) -ge 33 ] && [ $(($2 & 0x7f)) -le 36 ] && [ "$3" -gt 0 ] && [ "$4" -eq 66 ] ||
  fail "socat: enoctl status says eno=$1 tep=$2 aead=$3 session-id-hex-length=$4"
wait $cli || fail "socat client failed: $(cat "$WORK/socat-a.log")"
wait $srv || fail "socat server failed: $(cat "$WORK/socat-b.log")"
[ "$(cut -d' ' -f1 "$WORK/socat.sum")" = "$("$CP" sha 1G --marker "$MARK5
")" ] || fail "socat: 1 GiB arrived with SHA-256 $(cat "$WORK/socat.sum")"
note "5. socat: 1 GiB in $((SECONDS - t0)) s, SHA-256 equal; enoctl status: $1, TEP $(printf 0x%02x "$2")$( [ $(($2 & 0x80)) -ne 0 ] && echo " (resumed)"), AEAD $(printf 0x%04x "$3")"
cap_stop big
encrypted big 1 "$MARK5"

wait_count "$A_SOCK" 0
note "ok ($SECONDS s)"
