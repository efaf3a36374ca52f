#!/usr/bin/env bash
# Two real hosts (hosts_lib.sh, default settings): nginx (master + 2
# workers) on host 2 and curl on host 1, dialing host 2's real address: a 20 MB
# file with sendfile on; 200 small requests over keep-alive connections
# (writev for headers+body: sendfile off there), in parallel and in sequence;
# IPv6; HEAD and 404; checked by SHA-256 and status codes; a download slowed
# down is seen encrypting, one session ID on both hosts.
. "$(dirname "$0")/hosts_lib.sh"
hosts_up
hosts_no_dns
tund_up 1
tund_up 2
command -v nginx >/dev/null || fail "nginx is not installed (Debian nginx-light)"
mkdir -p "$WORK/www/nosf" "$WORK/ngx/tmp"
head -c 20000000 /dev/urandom >"$WORK/www/big.bin"
for i in $(seq 1 20); do head -c $((1000 + i * 517)) /dev/urandom >"$WORK/www/nosf/f$i"; done
cp "$WORK/www/nosf/f7" "$WORK/www/small.bin"
cat >"$WORK/nginx.conf" <<CONF
daemon off;
master_process on;
worker_processes 2;
user root root;
pid $WORK/ngx/nginx.pid;
error_log $WORK/nginx-error.log info;
events { worker_connections 1024; }
http {
  log_format conn '\$connection \$connection_requests "\$request" \$status \$body_bytes_sent';
  access_log $WORK/nginx-access.log conn;
  client_body_temp_path $WORK/ngx/tmp/body;
  proxy_temp_path $WORK/ngx/tmp/proxy;
  fastcgi_temp_path $WORK/ngx/tmp/fastcgi;
  uwsgi_temp_path $WORK/ngx/tmp/uwsgi;
  scgi_temp_path $WORK/ngx/tmp/scgi;
  default_type application/octet-stream;
  sendfile on;
  tcp_nopush on;
  tcp_nodelay on;
  keepalive_timeout 30;
  keepalive_requests 1000;
  server {
    listen 8080;
    listen [::]:8080;
    root $WORK/www;
    location /nosf/ { sendfile off; output_buffers 2 4k; }
  }
}
CONF
bg2 nginx -p "$WORK/ngx" -c "$WORK/nginx.conf" -e "$WORK/nginx-error.log" >"$WORK/nginx.out" 2>&1; ngx=$!
on_exit "kill -QUIT $ngx"
wait_listen 8080 "$S2"
# both workers up
for _ in $(seq 1 100); do [ "$(pgrep -c -P "$ngx")" -ge 2 ] && break; sleep 0.05; done
[ "$(pgrep -c -P "$ngx")" -ge 2 ] || fail "nginx workers did not start: $(tail -5 "$WORK/nginx-error.log")"

CURL=(timeout 90 ip netns exec "$H1" "$CURL_ENORUN" --socket "$S1" -- curl -sS --no-progress-meter --fail --max-time 80)
sha() { sha256sum <"$1" | cut -d' ' -f1; }

t0=$SECONDS
"${CURL[@]}" -o "$WORK/got.bin" "http://$IP2:8080/big.bin" || fail "curl big.bin failed"
[ "$(sha "$WORK/got.bin")" = "$(sha "$WORK/www/big.bin")" ] || fail "20 MB file (sendfile) corrupt"
note "20 MB with sendfile: ok ($((SECONDS - t0))s)"
"${CURL[@]}" -g -o "$WORK/got6.bin" "http://[$IP2_6]:8080/big.bin" || fail "curl over IPv6 failed"
[ "$(sha "$WORK/got6.bin")" = "$(sha "$WORK/www/big.bin")" ] || fail "20 MB file over IPv6 corrupt"
note "20 MB over IPv6: ok"

# 200 requests: 10 connections in parallel, keep-alive, sendfile off (writev)
args=()
for i in $(seq 1 200); do n=$(( (i % 20) + 1 )); args+=("http://$IP2:8080/nosf/f$n" -o "$WORK/r$i"); done
t0=$SECONDS
"${CURL[@]}" --parallel --parallel-max 10 "${args[@]}" || fail "200 parallel keep-alive requests failed"
for i in $(seq 1 200); do
  n=$(( (i % 20) + 1 ))
  cmp -s "$WORK/r$i" "$WORK/www/nosf/f$n" || fail "request $i (nosf/f$n) corrupt"
done
note "200 parallel keep-alive requests (writev): ok ($((SECONDS - t0))s)"

# 200 sequential requests on one keep-alive connection, small file with sendfile
args=()
for i in $(seq 1 200); do args+=("http://$IP2:8080/small.bin" -o "$WORK/s$i"); done
t0=$SECONDS
"${CURL[@]}" "${args[@]}" || fail "200 sequential requests failed"
note "200 sequential requests took $((SECONDS - t0))s"
for i in $(seq 1 200); do cmp -s "$WORK/s$i" "$WORK/www/small.bin" || fail "sequential request $i corrupt"; done
conns=$(grep 'small.bin' "$WORK/nginx-access.log" | awk '{print $1}' | sort -u | wc -l)
note "200 sequential requests: ok, over $conns connection(s)"
[ "$conns" -le 3 ] || fail "keep-alive did not hold: 200 sequential requests used $conns connections"

# HEAD and 404
code=$("${CURL[@]}" -o /dev/null -w '%{http_code}' -I "http://$IP2:8080/big.bin") || fail "HEAD failed"
[ "$code" = 200 ] || fail "HEAD: $code"
code=$(timeout 30 ip netns exec "$H1" "$CURL_ENORUN" --socket "$S1" -- curl -s -o /dev/null -w '%{http_code}' "http://$IP2:8080/nope") || true
[ "$code" = 404 ] || fail "missing file: HTTP $code, expected 404"
note "HEAD 200, missing 404: ok"

kill -0 "$ngx" || fail "nginx master died"
[ "$(pgrep -c -P "$ngx")" -ge 2 ] || fail "an nginx worker died: $(grep -E 'alert|crit|emerg' "$WORK/nginx-error.log" | tail -5)"
! grep -E '\[(alert|crit|emerg)\]' "$WORK/nginx-error.log" || fail "nginx logged alerts/critical errors (above)"
# encrypted: big.bin at 16 MB/s (~1.2 s), watched in both tunds' status
"${CURL[@]}" --limit-rate 16M -o "$WORK/slow.bin" "http://$IP2:8080/big.bin" 2>"$WORK/curl-slow.err" &
cp=$!
expect_encrypted "curl -> nginx" 8080 $cp
wait $cp || fail "slowed curl failed: $(cat "$WORK/curl-slow.err")"
[ "$(sha "$WORK/slow.bin")" = "$(sha "$WORK/www/big.bin")" ] || fail "slowed download corrupt"

tund_alive 1; tund_alive 2
t0=$SECONDS
wait_count "$S1" 0 40
note "host 1's tund released everything after $((SECONDS - t0))s"
note ok
