#!/usr/bin/env bash
# Two real hosts (hosts_lib.sh, default settings; host 1's tund keeps a key
# log): unmodified programs under enorun, clients on host 1 dialing host 2's
# real address, with tcpcrypt negotiated, and captures on the link between
# the hosts (host 1's veth eno-h1) that show no plaintext:
#   1. curl <- python3 -m http.server   a 2 MiB file of a repeated marker
#   2. curl <- nginx (sendfile on)      a 20 MB file
#   3. redis-benchmark / redis-cli -> redis-server
#   4. iperf3 -t 2, both directions (-R)
#   5. socat, 1 GiB with SHA-256 (only the first 20000 packets captured)
# For each: the transfer is right (SHA-256 / the program's own result); every
# connection in the capture is between the hosts' real addresses (host 1 ->
# host 2: masqueraded) and negotiated ENO and tcpcrypt, and with host 1's
# key log enodump verifies every frame (so nothing travelled in the clear);
# the marker appears in the decrypted streams but never in the raw capture.
# The key log is keyed by N_A: the masqueraded addresses change nothing.
. "$(dirname "$0")/hosts_lib.sh"
[ -x "$CP" ] || fail "$CP missing: run make"

hosts_up
hosts_no_dns
KEYLOG=$WORK/keylog
keylog_new "$KEYLOG"
tund_up 1 --keylog="$KEYLOG"
tund_up 2
LINK=eno-h1     # host 1's side of the link (cap_start captures on host 1)
MARK="enoshim-PLAINTEXT-marker-7f3a"

# encrypted NAME MIN-CONNS MARKER: checks on $WORK/NAME.pcap
encrypted() {
  local name=$1 min=$2 marker=$3 n bad hits
  dump "$name" "$KEYLOG" --write-streams "$WORK/streams-$name"
  [ $DUMP_RC -eq 0 ] || fail "$name: enodump reports errors: $(head -c 1500 "$WORK/enodump-$name.log")"
  n=$(grep -c . "$WORK/$name.q")
  [ "$n" -ge "$min" ] || fail "$name: $n TCP connections in the capture, expected at least $min"
  bad=$(grep -v "^src=${IP1//./\\.}:[0-9]* dst=${IP2//./\\.}:[0-9]* " "$WORK/$name.q" | head -n 3)
  [ -z "$bad" ] || fail "$name: a connection on the link not between the hosts' real addresses: $bad"
  bad=$(grep -v ' eno_ok=1 ' "$WORK/$name.q" | head -n 3)
  [ -z "$bad" ] || fail "$name: a connection without ENO: $bad"
  bad=$(grep -E ' pt=1 | sessid=- | errors=[1-9]' "$WORK/$name.q" | head -n 3)
  [ -z "$bad" ] || fail "$name: a connection that is not a verified tcpcrypt session: $bad"
  hits=$(grep -c -a -F "$marker" "$WORK/$name.pcap" || true)
  [ "$hits" -eq 0 ] || fail "$name: the marker '$marker' appears $hits times in the raw capture"
  grep -q -a -F "$marker" "$WORK/streams-$name"/* 2>/dev/null ||
    fail "$name: the marker is not in enodump's decrypted streams either: the check above proves nothing"
  note "$name: $n connections $IP1 -> $IP2, all ENO + tcpcrypt, every frame verified; '$marker' only in the decrypted streams"
}

mkdir -p "$WORK/www"
"$CP" gen 2M --marker "$MARK-http
" >"$WORK/www/file.txt"
"$CP" gen 20000000 --marker "$MARK-nginx
" >"$WORK/www/big.bin"
sum_http=$(sha256sum <"$WORK/www/file.txt" | cut -d' ' -f1)
sum_big=$(sha256sum <"$WORK/www/big.bin" | cut -d' ' -f1)

cap_start web $LINK "tcp port 8000 or tcp port 8081 or tcp port 6390"

# ---- 1. python3 http.server + curl
( cd "$WORK/www" && exec timeout 120 ip netns exec "$H2" "$ENORUN" --socket "$S2" -- \
    /usr/bin/python3 -m http.server 8000 >"$WORK/http.log" 2>&1 ) &
on_exit "kill $!"
wait_listen 8000 "$S2" 30
run1_curl timeout 60 curl -sS --fail -o "$WORK/got-http" "http://$IP2:8000/file.txt" 2>"$WORK/curl1.log" ||
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
timeout 120 ip netns exec "$H2" "$ENORUN" --socket "$S2" -- nginx -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" \
  >"$WORK/nginx.log" 2>&1 &
on_exit "kill $!"
wait_listen 8081 "$S2" 30
run1_curl timeout 60 curl -sS --fail -o "$WORK/got-big" "http://$IP2:8081/big.bin" 2>"$WORK/curl2.log" ||
  fail "curl from nginx failed: $(cat "$WORK/curl2.log") $(tail -n 5 "$WORK/nginx/error.log")"
[ "$(sha256sum <"$WORK/got-big" | cut -d' ' -f1)" = "$sum_big" ] ||
  fail "nginx: the 20 MB file curl got differs ($(stat -c %s "$WORK/got-big") bytes)"
note "2. nginx -> curl: 20 MB, SHA-256 equal"

# ---- 3. redis
timeout 120 ip netns exec "$H2" "$ENORUN" --socket "$S2" -- redis-server --port 6390 --bind 0.0.0.0 \
  --protected-mode no --save '' --appendonly no --dir "$WORK" --daemonize no >"$WORK/redis.log" 2>&1 &
on_exit "kill $!"
wait_listen 6390 "$S2" 30
run1 timeout 60 redis-cli -h "$IP2" -p 6390 set enoshim:marker "$MARK-redis" >"$WORK/redis-cli.out" 2>&1 ||
  fail "redis-cli set: $(cat "$WORK/redis-cli.out")"
[ "$(run1 timeout 60 redis-cli -h "$IP2" -p 6390 get enoshim:marker)" = "$MARK-redis" ] || fail "redis-cli get: wrong value"
run1 timeout 90 redis-benchmark -h "$IP2" -p 6390 -n 2000 -c 4 -t set,get -q >"$WORK/redis-bench.out" 2>&1 ||
  fail "redis-benchmark failed: $(tail -n 5 "$WORK/redis-bench.out")"
tr '\r' '\n' <"$WORK/redis-bench.out" >"$WORK/redis-bench.txt"
grep -qE '^SET: .*requests per second' "$WORK/redis-bench.txt" && grep -qE '^GET: .*requests per second' "$WORK/redis-bench.txt" ||
  fail "redis-benchmark: no results: $(tr '\r' '\n' <"$WORK/redis-bench.out" | tail -n 5)"
note "3. redis: $(grep -E '^(SET|GET): [0-9.]+ requests per second' "$WORK/redis-bench.txt" | tr '\n' ' ')"
cap_stop web
encrypted web 5 "$MARK"
grep -q -a -F "key:__rand_int__" "$WORK/web.pcap" && fail "redis-benchmark's key name appears in the capture"

# ---- 4. iperf3, both directions (-b keeps the capture small)
cap_start iperf $LINK "tcp port 5201"
timeout 120 ip netns exec "$H2" "$ENORUN" --socket "$S2" -- iperf3 -s -p 5201 >"$WORK/iperf-s.log" 2>&1 &
on_exit "kill $!"
wait_listen 5201 "$S2" 30
for dir in "" -R; do
  run1 timeout 60 iperf3 -c "$IP2" -p 5201 -t 2 -b 100M $dir -J >"$WORK/iperf$dir.json" 2>&1 ||
    fail "iperf3 $dir failed: $(head -c 600 "$WORK/iperf$dir.json")"
  r=$("$PY" -c 'import json,sys
d = json.load(open(sys.argv[1]))
print(int(d["end"]["sum_received"]["bytes"]), round(d["end"]["sum_received"]["bits_per_second"] / 1e6, 1))' "$WORK/iperf$dir.json") ||
    fail "iperf3 $dir: no result"
  [ "${r%% *}" -gt 1000000 ] || fail "iperf3 $dir: received only ${r%% *} bytes"
  note "4. iperf3 ${dir:-(host 1 -> 2)}: ${r%% *} bytes received, ${r##* } Mbit/s"
done
cap_stop iperf
# the marker: a key of the JSON results the iperf3 client and server exchange
encrypted iperf 4 "cpu_util_total"

# ---- 5. socat, 1 GiB, SHA-256 (only the first packets captured)
MARK5="$MARK-socat"
cap_start big $LINK -c 20000 "tcp port 7700"
timeout 200 ip netns exec "$H2" "$ENORUN" --socket "$S2" -- sh -c \
  "socat -u TCP-LISTEN:7700,reuseaddr - | sha256sum >'$WORK/socat.sum'" 2>"$WORK/socat-b.log" &
srv=$!
on_exit "kill $srv"
wait_listen 7700 "$S2" 30
t0=$SECONDS
( "$CP" gen 1G --marker "$MARK5
" | timeout 200 ip netns exec "$H1" "$ENORUN" --socket "$S1" -- socat -u - "TCP:$IP2:7700" ) 2>"$WORK/socat-a.log" &
cli=$!
on_exit "kill $cli"
# while it runs: tund A reports the connection encrypting with tcpcrypt
st=
for _ in $(seq 1 100); do
  st=$(enoctl1 status --json | "$PY" -c 'import json,sys
for e in json.load(sys.stdin):
    if e["kind"] == "stream" and e["remote"] == sys.argv[1]:
        print(e["eno"], e["negtep"], e["aead_id"], len(e["session_id"])); break' "$IP2:7700")
  [ -n "$st" ] && break
  sleep 0.05
done
[ -n "$st" ] || fail "socat: the connection never showed in enoctl status"
set -- $st
[ "$1" = encrypting ] && [ $(($2 & 0x7f)) -ge 33 ] && [ $(($2 & 0x7f)) -le 36 ] && [ "$3" -gt 0 ] && [ "$4" -eq 66 ] ||
  fail "socat: enoctl status says eno=$1 tep=$2 aead=$3 session-id-hex-length=$4"
expect_encrypted "socat 1 GiB" 7700 $cli
wait $cli || fail "socat client failed: $(cat "$WORK/socat-a.log")"
wait $srv || fail "socat server failed: $(cat "$WORK/socat-b.log")"
[ "$(cut -d' ' -f1 "$WORK/socat.sum")" = "$("$CP" sha 1G --marker "$MARK5
")" ] || fail "socat: 1 GiB arrived with SHA-256 $(cat "$WORK/socat.sum")"
note "5. socat: 1 GiB in $((SECONDS - t0)) s, SHA-256 equal; enoctl status: $1, TEP $(printf 0x%02x "$2")$( [ $(($2 & 0x80)) -ne 0 ] && echo " (resumed)"), AEAD $(printf 0x%04x "$3")"
cap_stop big
encrypted big 1 "$MARK5"

wait_count "$S1" 0
note "ok ($SECONDS s)"
