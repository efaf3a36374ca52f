#!/usr/bin/env bash
# Two real hosts (hosts_lib.sh, default settings): curl on host 1 against
# python3 -m http.server on host 2, dialing host 2's real address: a 5 MB
# file and a small one, bodies checked by SHA-256; IPv4 and IPv6; several
# downloads in parallel; keep-alive (several URLs on one connection); a
# download slowed down is seen encrypting, one session ID on both hosts.
. "$(dirname "$0")/hosts_lib.sh"
hosts_up
hosts_no_dns
tund_up 1
tund_up 2
PY=$(command -v python3.11 || command -v python3)
mkdir -p "$WORK/www"
head -c 5000000 /dev/urandom >"$WORK/www/big.bin"
echo "hello from host 2" >"$WORK/www/small.txt"
big=$(sha256sum <"$WORK/www/big.bin" | cut -d' ' -f1)
small=$(sha256sum <"$WORK/www/small.txt" | cut -d' ' -f1)

# --bind ::  : http.server listens dual-stack (IPV6_V6ONLY off) on [::]:8000
bg2 "$PY" -m http.server 8000 --bind :: --directory "$WORK/www" >"$WORK/http.log" 2>&1; srv=$!
on_exit "kill $srv"
wait_listen 8000 "$S2"

CURL=(timeout 60 ip netns exec "$H1" "$CURL_ENORUN" --socket "$S1" -- curl -sS --no-progress-meter --fail --max-time 50)
check() {  # check URL SHA
  local got
  got=$("${CURL[@]}" "$1" | sha256sum | cut -d' ' -f1) || fail "curl $1 failed"
  [ "$got" = "$2" ] || fail "curl $1: body sha256 $got, expected $2"
  note "curl $1: ok"
}
check "http://$IP2:8000/big.bin" "$big"
check "http://$IP2:8000/small.txt" "$small"
check "http://[$IP2_6]:8000/big.bin" "$big"
check "http://[$IP2_6]:8000/small.txt" "$small"

# 6 parallel downloads from one curl
"${CURL[@]}" --parallel --parallel-max 6 $(for i in 1 2 3 4 5 6; do echo "http://$IP2:8000/big.bin" -o "$WORK/p$i"; done) ||
  fail "parallel curl failed"
for i in 1 2 3 4 5 6; do
  [ "$(sha256sum <"$WORK/p$i" | cut -d' ' -f1)" = "$big" ] || fail "parallel download $i corrupt"
done
note "6 parallel downloads: ok"

# keep-alive: 20 requests on one connection (http.server speaks HTTP/1.0 by
# default and closes; curl then reconnects: both paths are exercised)
"${CURL[@]}" $(for i in $(seq 1 20); do echo "http://$IP2:8000/small.txt" -o "$WORK/k$i"; done) || fail "sequential curl failed"
for i in $(seq 1 20); do
  [ "$(sha256sum <"$WORK/k$i" | cut -d' ' -f1)" = "$small" ] || fail "request $i corrupt"
done
note "20 sequential requests: ok"

# encrypted: big.bin at 4 MB/s (~1.2 s), watched in both tunds' status
"${CURL[@]}" --limit-rate 4M -o "$WORK/slow.bin" "http://$IP2:8000/big.bin" 2>"$WORK/curl-slow.err" &
cp=$!
expect_encrypted "curl -> http.server" 8000 $cp
wait $cp || fail "slowed curl failed: $(cat "$WORK/curl-slow.err")"
[ "$(sha256sum <"$WORK/slow.bin" | cut -d' ' -f1)" = "$big" ] || fail "slowed download corrupt"

kill -0 "$srv" || fail "http.server died: $(tail -5 "$WORK/http.log")"
tund_alive 1; tund_alive 2
wait_count "$S1" 0 15
