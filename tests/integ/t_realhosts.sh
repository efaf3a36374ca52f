#!/usr/bin/env bash
# Two real hosts (tests/integ/hosts_lib.sh): each with its own address on a
# link and its own tund with default network settings; programs dial each
# other's *real* addresses and nothing is configured by hand.
#   - eno-hello both ways over IPv4 and host 1 -> 2 over IPv6: encrypting,
#     one session ID; the server's getpeername is the client host's real
#     address and its getsockname the address the client dialed; the client
#     sees the server's real address (its own local address is lwIP's:
#     masquerade, README "Two machines");
#   - a 100 MiB transfer checked by SHA-256 both ways, and curl against
#     nginx, encrypted;
#   - a client dialing its own host's real address: both ends see that
#     address, as with the kernel; getsockname() of a dual-stack :: is ::;
#   - a kernel client against an enoshim server: plain, works; an enoshim
#     client against a kernel server: plain fallback, works; a kernel-only
#     server on another port of host 2 is untouched, and its port is not
#     published; the published set follows listen() and close();
#   - a third namespace routed through host 1 cannot reach host 2 (tund
#     switched forwarding on, its guard drops what is not enoshim's).
. "$(dirname "$0")/hosts_lib.sh"
command -v nft >/dev/null || fail "nft not installed (nftables)"
hosts_up
stranger_up
on3 ping -c1 -W1 -q $IP2 >/dev/null 2>&1 && fail "the stranger reaches host 2 before any tund runs?"
tund_up 1
tund_up 2
grep -q "real hosts: lwIP's traffic masqueraded" "$WORK/tund-1.log" || fail "host 1: real hosts not set up"
grep -q "real hosts: lwIP's traffic masqueraded" "$WORK/tund-2.log" || fail "host 2: real hosts not set up"

hello() {   # hello NAME SERVER_HOST(1|2) DIAL_ADDR PORT
  local n=$1 sh=$2 addr=$3 port=$4 ch
  [ "$sh" = 2 ] && ch=1 || ch=2
  "bg$sh" "$BUILD/examples/eno-hello" server "$port" >"$WORK/$n.srv" 2>&1
  local sp=$!
  wait_log "$WORK/$n.srv" '^listening' 10
  timeout 20 ip netns exec "$([ $ch = 1 ] && echo $H1 || echo $H2)" "$ENORUN" \
    --socket "$([ $ch = 1 ] && echo $S1 || echo $S2)" -- "$BUILD/examples/eno-hello" client "$addr" "$port" \
    "hello $n" >"$WORK/$n.cli" 2>&1 || fail "$n: client failed: $(cat "$WORK/$n.cli")"
  wait $sp || fail "$n: server failed: $(cat "$WORK/$n.srv")"
  sed "s/^/    $n srv| /" "$WORK/$n.srv"; sed "s/^/    $n cli| /" "$WORK/$n.cli"
  [ "$(val "$WORK/$n.cli" eno)" = encrypting ] || fail "$n: client not encrypting"
  [ "$(val "$WORK/$n.srv" eno)" = encrypting ] || fail "$n: server not encrypting"
  local sid; sid=$(val "$WORK/$n.cli" session-id)
  [ -n "$sid" ] && [ "$sid" = "$(val "$WORK/$n.srv" session-id)" ] || fail "$n: session IDs differ"
  [ "$(val "$WORK/$n.cli" reply)" = "hello $n" ] || fail "$n: wrong reply"
}

# ---- 1. eno-hello, IPv4, host 1 -> host 2 ------------------------------------
hello h12 2 $IP2 9000
[[ $(val "$WORK/h12.srv" peer) == $IP1:* ]] || fail "server's getpeername: $(val "$WORK/h12.srv" peer), want $IP1:*"
[ "$(val "$WORK/h12.srv" local)" = "$IP2:9000" ] ||
  fail "server's getsockname: $(val "$WORK/h12.srv" local), want the dialed $IP2:9000"
[ "$(val "$WORK/h12.cli" peer)" = "$IP2:9000" ] || fail "client's getpeername: $(val "$WORK/h12.cli" peer)"
note "host 1 -> host 2 (IPv4): encrypting, one session ID, addresses as dialed"
on2 nft list set inet enoshim-enotun0 ports | grep -qw 9000 &&
  fail "port 9000 still published after the server closed its listener"

# ---- 1b. enoctl status: the dialed address without the program asking -------
# (tund asks conntrack lazily: on getsockname(), or when status lists it)
bg2 /usr/bin/python3 -c 'import socket,time
l=socket.socket(); l.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1); l.bind(("",9003)); l.listen(1)
c,_=l.accept(); c.recv(1); time.sleep(2)' >"$WORK/lazy.srv" 2>&1
lsp=$!
wait_listen 9003 "$S2"
bg1 /usr/bin/python3 -c 'import socket,sys,time
s=socket.create_connection((sys.argv[1],9003)); s.send(b"x"); time.sleep(2)' "$IP2" >"$WORK/lazy.cli" 2>&1
lcp=$!
loc=
for _ in $(seq 1 50); do
  loc=$(enoctl2 status --json | /usr/bin/python3 -c 'import json,sys
print(" ".join(e["local"] for e in json.load(sys.stdin) if e["kind"] == "stream" and e["local"].endswith(":9003")))')
  [ -n "$loc" ] && break
  sleep 0.1
done
[ "$loc" = "$IP2:9003" ] || fail "enoctl status on host 2: an accepted connection's local address is '$loc', want the dialed $IP2:9003"
wait $lcp; wait $lsp
note "enoctl status lists an accepted connection at the address its peer dialed ($loc), the program never having asked"

# ---- 2. the other direction ---------------------------------------------------
hello h21 1 $IP1 9001
[[ $(val "$WORK/h21.srv" peer) == $IP2:* ]] || fail "host 1's server sees peer $(val "$WORK/h21.srv" peer)"
[ "$(val "$WORK/h21.srv" local)" = "$IP1:9001" ] || fail "host 1's server getsockname $(val "$WORK/h21.srv" local)"
note "host 2 -> host 1 (IPv4): encrypting"

# ---- 3. IPv6 ------------------------------------------------------------------
hello v6 2 $IP2_6 9002
[[ $(val "$WORK/v6.srv" peer) == "[$IP1_6]:"* ]] || fail "IPv6 server's getpeername: $(val "$WORK/v6.srv" peer)"
[ "$(val "$WORK/v6.srv" local)" = "[$IP2_6]:9002" ] || fail "IPv6 server's getsockname: $(val "$WORK/v6.srv" local)"
note "host 1 -> host 2 (IPv6): encrypting"

# ---- 4. 100 MiB each way, SHA-256 --------------------------------------------
bg2 "$PROGS/xfer" serve 9100 --send 100M --seed 3 >"$WORK/x.srv" 2>"$WORK/x.srvlog"
xs=$!
wait_log "$WORK/x.srv" '^listening' 10
timeout 120 ip netns exec "$H1" "$ENORUN" --socket "$S1" -- "$PROGS/xfer" client $IP2 9100 --send 100M --seed 4 \
  >"$WORK/x.cli" 2>"$WORK/x.clilog" || fail "xfer client: $(cat "$WORK/x.cli" "$WORK/x.clilog")"
wait $xs || fail "xfer server: $(cat "$WORK/x.srv" "$WORK/x.srvlog")"
want_up="104857600 $("$PROGS/xfer" sha 100M --seed 4)"
want_down="104857600 $("$PROGS/xfer" sha 100M --seed 3)"
got_up=$(awk '$1 == "recv" { print $2, $3 }' "$WORK/x.srv" | tail -n 1)
got_down=$(awk '$1 == "recv" { print $2, $3 }' "$WORK/x.cli" | tail -n 1)
[ "$got_up" = "$want_up" ] || fail "100 MiB host 1 -> 2: got '$got_up', want '$want_up'"
[ "$got_down" = "$want_down" ] || fail "100 MiB host 2 -> 1: got '$got_down', want '$want_down'"
note "100 MiB each way: SHA-256 match"

# ---- 5. curl against nginx ------------------------------------------------------
if command -v nginx >/dev/null; then
  mkdir -p "$WORK/www" "$WORK/ngx/tmp"
  head -c 8000000 /dev/urandom >"$WORK/www/big.bin"
  cat >"$WORK/nginx.conf" <<CONF
daemon off; master_process on; worker_processes 1; user root root;
pid $WORK/ngx/nginx.pid; error_log $WORK/nginx-error.log info;
events { worker_connections 256; }
http {
  access_log off; client_body_temp_path $WORK/ngx/tmp/body; proxy_temp_path $WORK/ngx/tmp/proxy;
  fastcgi_temp_path $WORK/ngx/tmp/fastcgi; uwsgi_temp_path $WORK/ngx/tmp/uwsgi; scgi_temp_path $WORK/ngx/tmp/scgi;
  default_type application/octet-stream; sendfile on;
  server { listen 8080; listen [::]:8080; root $WORK/www; }
}
CONF
  bg2 nginx -p "$WORK/ngx" -c "$WORK/nginx.conf" -e "$WORK/nginx-error.log" >"$WORK/nginx.out" 2>&1
  ngx=$!
  on_exit "kill -QUIT $ngx"
  wait_listen_sock "$S2" 8080
  # slow enough to be seen in enoctl status while it runs
  timeout 60 ip netns exec "$H1" "$CURL_ENORUN" --socket "$S1" -- curl -sS --fail --limit-rate 2M \
    -o "$WORK/got.bin" "http://$IP2:8080/big.bin" 2>"$WORK/curl.err" &
  cp=$!
  enc=
  # looked at until it is seen or curl ends (about 4 s at 2 MB/s)
  while kill -0 "$cp" 2>/dev/null; do
    enc=$(enoctl2 status --json 2>/dev/null | "$PY" -c '
import json, sys
for e in json.load(sys.stdin):
    if e["kind"] == "stream" and e["local"].endswith(":8080"):
        print(e["eno"]); break' 2>/dev/null)
    [ -n "$enc" ] && break
    sleep 0.05
  done
  wait $cp || fail "curl failed: $(cat "$WORK/curl.err")"
  cmp -s "$WORK/got.bin" "$WORK/www/big.bin" || fail "curl: the body differs"
  [ "$enc" = encrypting ] || fail "nginx's connection from curl: eno '$enc', want encrypting"
  note "curl -> nginx: 8 MB intact, connection encrypting"
else
  fail "nginx not installed (scripts/setup installs nginx-light)"
fi

# ---- 6. kernel client -> enoshim server (plain) --------------------------------
bg2 "$BUILD/examples/eno-hello" server 9003 >"$WORK/k.srv" 2>&1
ks=$!
wait_log "$WORK/k.srv" '^listening' 10
out=$(echo -n "from the kernel" | timeout 10 ip netns exec "$H1" socat -t 3 - TCP:$IP2:9003 2>&1) ||
  fail "kernel client -> enoshim server: $out"
wait $ks
[ "$out" = "from the kernel" ] || fail "kernel client got '$out'"
[[ $(val "$WORK/k.srv" eno) == disabled* ]] || fail "enoshim server with a kernel client: eno $(val "$WORK/k.srv" eno)"
[[ $(val "$WORK/k.srv" peer) == $IP1:* ]] || fail "kernel client seen as $(val "$WORK/k.srv" peer)"
note "kernel client -> enoshim server: plain, works"

# ---- 6b. a client on host 2 dialing host 2's own real address -----------------
# The connection stays in the host, as the kernel's would: both ends see the
# host's address (not lwIP's private one), plain like loopback.  And a
# dual-stack listener bound to :: says "::" from getsockname(), as the
# kernel does (not ::ffff:0.0.0.0).
for fam in 4 6; do
  [ $fam = 4 ] && { dial=$IP2; want="$IP2"; } || { dial=$IP2_6; want="[$IP2_6]"; }
  bg2 "$BUILD/examples/eno-hello" server 9005 >"$WORK/own$fam.srv" 2>&1
  os=$!
  wait_log "$WORK/own$fam.srv" '^listening' 10
  timeout 10 ip netns exec "$H2" "$ENORUN" --socket "$S2" --debug -- "$BUILD/examples/eno-hello" client "$dial" 9005 \
    "own $fam" >"$WORK/own$fam.cli" 2>&1 || fail "host 2 -> its own address (IPv$fam): $(cat "$WORK/own$fam.cli")"
  wait $os || fail "own address server (IPv$fam): $(cat "$WORK/own$fam.srv")"
  [ "$(val "$WORK/own$fam.cli" reply)" = "own $fam" ] || fail "own address (IPv$fam): wrong reply"
  grep -q "$dial\]*:9005: plain TCP: direct route (this host's own address)$" "$WORK/own$fam.cli" ||
    fail "own address (IPv$fam): no 'direct route (this host's own address)' line: $(grep 'enoshim\[' "$WORK/own$fam.cli")"
  [[ $(val "$WORK/own$fam.srv" peer) == "$want":* ]] ||
    fail "own address (IPv$fam): server sees peer $(val "$WORK/own$fam.srv" peer), want $want:* (the kernel's answer)"
  [[ $(val "$WORK/own$fam.cli" local) == "$want":* ]] ||
    fail "own address (IPv$fam): client's getsockname $(val "$WORK/own$fam.cli" local), want $want:*"
  [ "$(val "$WORK/own$fam.srv" local)" = "$want:9005" ] ||
    fail "own address (IPv$fam): server's getsockname $(val "$WORK/own$fam.srv" local)"
done
note "host 2 -> its own real address (IPv4, IPv6): both ends see the host's address"
ip netns exec "$H2" "$ENORUN" --socket "$S2" -- "$PY" -c 'import socket
s=socket.socket(socket.AF_INET6); s.bind(("::",9006)); s.listen(); print(s.getsockname()[0])
t=socket.socket(socket.AF_INET6); t.bind(("::",0)); print(t.getsockname()[0])' >"$WORK/any6.out" 2>&1
[ "$(cat "$WORK/any6.out")" = "$(printf '::\n::')" ] ||
  fail "a dual-stack socket bound to :: says $(tr '\n' ' ' <"$WORK/any6.out")from getsockname(), want :: (the kernel's)"
note "dual-stack wildcard: getsockname() says ::"

# ---- 7. enoshim client -> kernel server; 8. kernel-only server untouched -------
on2 socat TCP-LISTEN:7100,reuseaddr,fork EXEC:cat >/dev/null 2>&1 &
on_exit "kill $!"
for _ in $(seq 1 100); do on2 ss -Hltn 'sport = :7100' | grep -q . && break; sleep 0.05; done
timeout 10 ip netns exec "$H1" "$ENORUN" --socket "$S1" -- "$BUILD/examples/eno-hello" client $IP2 7100 "to a kernel server" \
  >"$WORK/kc.cli" 2>&1 || fail "enoshim client -> kernel server: $(cat "$WORK/kc.cli")"
[[ $(val "$WORK/kc.cli" eno) == disabled* ]] || fail "with a kernel server: eno $(val "$WORK/kc.cli" eno)"
note "enoshim client -> kernel server: plain fallback, works"
# an enoshim server listens on 9004 meanwhile; the kernel's port 7100 stays the kernel's
bg2 "$BUILD/examples/eno-hello" server 9004 >"$WORK/hold.srv" 2>&1
hs=$!
on_exit "kill $hs"
wait_log "$WORK/hold.srv" '^listening' 10
on2 nft list set inet enoshim-enotun0 ports | grep -qw 9004 || fail "port 9004 not published while listening"
on2 nft list set inet enoshim-enotun0 ports | grep -qw 7100 && fail "the kernel-only port 7100 is published"
out=$(echo -n ping | timeout 10 ip netns exec "$H1" socat -t 2 - TCP:$IP2:7100 2>&1)
[ "$out" = ping ] || fail "kernel client -> kernel-only server on host 2: '$out'"
note "kernel-only server on host 2 untouched; only listening enoshim ports published"

# ---- 9. no routing through host 1 for strangers -------------------------------
[ "$(on1 sysctl -n net.ipv4.conf.eno-h1s.forwarding)" = 1 ] ||
  fail "host 1's tund did not switch forwarding on the interface replies can arrive on"
on3 ping -c1 -W1 -q $IP2 >/dev/null 2>&1 && fail "a third namespace routes through host 1 to host 2"
timeout 5 ip netns exec "$H3" socat -T2 - TCP:$IP2:7100,connect-timeout=2 </dev/null >/dev/null 2>&1 &&
  fail "a third namespace's TCP reaches host 2 through host 1"
note "a third namespace cannot route through host 1"
kill $hs 2>/dev/null; wait $hs 2>/dev/null
echo ok
