#!/usr/bin/env bash
# examples/eno-auth (api-06 §5.1: authenticate the session ID with a
# pre-shared cookie) against a man in the middle.
#
#   program A --tund A--tun-a--+                       +--tun-b--tund B-- program B
#                              |  netns: routing, NAT  |
#                              +--tun-m--tund M--------+
#                                  crypt_relay (under enorun on M)
#
# 1. no MITM: eno-auth client on A -> server on B: both "auth: ok", exit 0,
#    the same session ID on both ends.
# 2. MITM: an iptables DNAT rule in the namespace sends A's connections to
#    B's address and port 7802 to M's lwIP address instead (A still believes
#    it talks to B: the replies are translated back); crypt_relay on M
#    terminates ENO + tcpcrypt on both sides, sets the application-aware bit
#    on both legs, and relays the bytes.  Two tcpcrypt sessions with two
#    session IDs: both eno-auth ends print "auth: FAILED" and exit 3.
# 3. the same with socat as the relay (no application-aware bit): both ends
#    notice the peer is not application-aware, exit 4, never "auth: ok".
. "$(dirname "$0")/crypt_lib.sh"
topo_up
M_SOCK=$WORK/m.sock
M4=10.203.0.2
start_tund m "$M_SOCK" tun-m 10.203.0.1 $M4 fd00:203::1 fd00:203::2
AUTH=$BUILD/examples/eno-auth
[ -x "$AUTH" ] || fail "$AUTH missing: run make"
head -c 32 /dev/urandom >"$WORK/cookie"

# auth_pair NAME PORT: eno-auth server on B, client on A (to B's address)
auth_pair() {
  local name=$1 port=$2
  timeout 60 ip netns exec "$NS" "$ENORUN" --socket "$B_SOCK" -- "$AUTH" server "$port" "$WORK/cookie" \
    >"$WORK/$name-srv.out" 2>&1 &
  local srv=$!
  on_exit "kill $srv"
  wait_log "$WORK/$name-srv.out" '^listening' 30
  SRC=0
  CRC=0
  timeout 60 ip netns exec "$NS" "$ENORUN" --socket "$A_SOCK" -- "$AUTH" client "$B4" "$port" "$WORK/cookie" \
    >"$WORK/$name-cli.out" 2>&1 || CRC=$?
  wait $srv || SRC=$?
}
sid() { sed -n 's/^session-id: //p' "$1"; }

# ---- 1. no MITM
auth_pair direct 7801
grep -q "^auth: ok" "$WORK/direct-cli.out" && [ $CRC -eq 0 ] ||
  fail "1: client (exit $CRC): $(tr '\n' '|' <"$WORK/direct-cli.out")"
grep -q "^auth: ok" "$WORK/direct-srv.out" && [ $SRC -eq 0 ] ||
  fail "1: server (exit $SRC): $(tr '\n' '|' <"$WORK/direct-srv.out")"
[ -n "$(sid "$WORK/direct-cli.out")" ] && [ "$(sid "$WORK/direct-cli.out")" = "$(sid "$WORK/direct-srv.out")" ] ||
  fail "1: session IDs: client $(sid "$WORK/direct-cli.out"), server $(sid "$WORK/direct-srv.out")"
grep -q "^received: secret payload" "$WORK/direct-cli.out" || fail "1: the client did not get the payload"
note "1. direct: both ends 'auth: ok', exit 0, one session ID"

# ---- 2. MITM that sets the application-aware bit
# mitm PORT RPORT RELAY-COMMAND...: A's connections to B4:PORT go to M4:RPORT
# (another port: every tund also listens on the kernel side of the one
# namespace, so M cannot take B's port)
mitm() {
  local port=$1 rport=$2; shift 2
  in_ns iptables -t nat -A PREROUTING -i tun-a -p tcp -d "$B4" --dport "$port" -j DNAT --to-destination "$M4:$rport" ||
    fail "cannot install the DNAT rule"
  on_exit "ip netns exec $NS iptables -t nat -D PREROUTING -i tun-a -p tcp -d $B4 --dport $port -j DNAT --to-destination $M4:$rport"
  timeout 60 ip netns exec "$NS" "$ENORUN" --socket "$M_SOCK" -- "$@" >"$WORK/relay$port.out" 2>&1 &
  RELAY=$!
  on_exit "kill $RELAY"
  wait_listen "$rport" "$M_SOCK" 30
}
mitm 7802 7902 "$PROGS/crypt_relay" 7902 "$B4" 7802 --aware
auth_pair mitm 7802
wait $RELAY || true
grep -q '^leg client sessid=2' "$WORK/relay7802.out" && grep -q '^leg server sessid=2' "$WORK/relay7802.out" ||
  fail "2: the relay did not get tcpcrypt on both legs: $(tr '\n' '|' <"$WORK/relay7802.out")"
grep -q "^auth: ok" "$WORK/mitm-cli.out" "$WORK/mitm-srv.out" && fail "2: eno-auth accepted a man in the middle"
grep -q "^auth: FAILED" "$WORK/mitm-cli.out" && [ $CRC -eq 3 ] ||
  fail "2: client should print 'auth: FAILED' and exit 3; exit $CRC: $(tr '\n' '|' <"$WORK/mitm-cli.out")"
grep -q "^auth: FAILED" "$WORK/mitm-srv.out" && [ $SRC -eq 3 ] ||
  fail "2: server should print 'auth: FAILED' and exit 3; exit $SRC: $(tr '\n' '|' <"$WORK/mitm-srv.out")"
c=$(sid "$WORK/mitm-cli.out") s=$(sid "$WORK/mitm-srv.out")
[ -n "$c" ] && [ -n "$s" ] && [ "$c" != "$s" ] || fail "2: session IDs: client '$c', server '$s' (must differ)"
grep -q "sessid=$c" "$WORK/relay7802.out" && grep -q "sessid=$s" "$WORK/relay7802.out" ||
  fail "2: the relay's legs do not carry the two ends' session IDs: $(tr '\n' '|' <"$WORK/relay7802.out")"
grep -q "^received:" "$WORK/mitm-cli.out" && fail "2: the server sent its payload through the MITM"
note "2. MITM (aware relay on M): both ends 'auth: FAILED', exit 3; session IDs ${c:0:12}... vs ${s:0:12}..."

# ---- 3. socat as the MITM: no application-aware bit
mitm 7803 7903 socat TCP-LISTEN:7903,reuseaddr "TCP:$B4:7803"
auth_pair socat 7803
grep -q "^auth: ok" "$WORK/socat-cli.out" "$WORK/socat-srv.out" && fail "3: eno-auth accepted a man in the middle"
[ $CRC -eq 4 ] && grep -q "not application-aware" "$WORK/socat-cli.out" ||
  fail "3: client should refuse a peer that is not application-aware (exit 4); exit $CRC: $(tr '\n' '|' <"$WORK/socat-cli.out")"
[ $SRC -eq 4 ] && grep -q "not application-aware" "$WORK/socat-srv.out" ||
  fail "3: server should refuse a peer that is not application-aware (exit 4); exit $SRC: $(tr '\n' '|' <"$WORK/socat-srv.out")"
note "3. MITM (socat on M): both ends see a peer that is not application-aware, exit 4"
note "ok ($SECONDS s)"
