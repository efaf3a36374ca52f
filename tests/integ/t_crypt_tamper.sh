#!/usr/bin/env bash
# Tampering with tcpcrypt connections in flight (RFC 8548 §3.6, §3.7): the
# receiving program gets the error tund/crypt.c documents, never corrupted
# data and never a false end of file; the other end gets a reset.
#   1. one byte of A's ciphertext flipped on its way to B       -> B: EBADMSG
#   2. one byte of B's ciphertext flipped on its way to A       -> A: EBADMSG
#   3. a TCP FIN injected from A's address without a FINp frame -> B: ECONNABORTED
#   4. a malformed frame (clen 5 < 17) injected from A          -> B: EPROTO
#   5. the contrast: a real end (FINp, then FIN) that reaches B while B's
#      program has not read 900 KiB yet: B reads everything, then EOF.
#
# How the byte is flipped (1, 2): an iptables rule in the namespace's FORWARD
# chain (A -> B: in tun-a, out tun-b; the packet went tund A -> tun-a ->
# kernel routing -> tun-b -> tund B) sends the connection's full-size data
# segments (IP length 1024..2047) to NFQUEUE, where crypt_flip.py inverts the
# byte 200 bytes into the first such packet (160 bytes into the TCP payload:
# ciphertext; a frame's 3-byte header only with probability ~3/16403),
# recomputes the TCP checksum so that the receiving TCP accepts the segment
# and hands it to tcpcrypt, and lets every other packet pass.  (tc pedit +
# csum would do the same; this machine's kernel lacks act_pedit/act_csum.)
# The rule goes in only after the programs paused mid-stream, so the
# handshake and the first 128 KiB pass untouched.
# How the FIN / frame is injected (3, 4): the connection idles (the client
# paused, the server silent); the capture on tun-a gives A's next sequence
# number and last ACK; crypt_inject.py (scapy) sends the segment from A's
# address into the namespace's routing, which delivers it through tun-b to B.
. "$(dirname "$0")/crypt_lib.sh"
topo_up

errline() { grep -E "^end 1 recv-error" "$WORK/$1.out" | head -n 1; }

# ---- 1 and 2: a flipped byte
flip_case() {   # flip_case N PORT DIR(a2b|b2a)
  local n=$1 port=$2 dir=$3 rx tx rule
  rm -f "$WORK/go$n"
  if [ "$dir" = a2b ]; then
    peer_bg s$n b server "$port" --hold --verify 1 --progress-at 128K
    peer_bg c$n a client "$B4" "$port" --send 4M --seed 1 --pause-at 128K "$WORK/go$n"
    wait_log "$WORK/c$n.out" '^paused' 30
    wait_log "$WORK/s$n.out" '^progress' 30
    rx=s$n tx=c$n rule="-i tun-a -o tun-b -p tcp --dport $port"
  else
    peer_bg s$n b server "$port" --send 4M --seed 2 --pause-at 128K "$WORK/go$n"
    peer_bg c$n a client "$B4" "$port" --hold --verify 2 --progress-at 128K
    wait_log "$WORK/s$n.out" '^paused' 30
    wait_log "$WORK/c$n.out" '^progress' 30
    rx=c$n tx=s$n rule="-i tun-b -o tun-a -p tcp --sport $port"
  fi
  ip netns exec "$NS" "$PY" "$TOP/tests/integ/crypt_flip.py" $((40 + n)) 200 1 >"$WORK/flip$n.log" 2>&1 &
  local fpid=$!
  on_exit "kill $fpid"
  wait_log "$WORK/flip$n.log" '^ready' 15
  # shellcheck disable=SC2086
  in_ns iptables -I FORWARD $rule -m length --length 1024:2047 -j NFQUEUE --queue-num $((40 + n)) --queue-bypass ||
    fail "cannot install the NFQUEUE rule"
  touch "$WORK/go$n"
  peer_wait $rx
  local rrc=$RC
  peer_wait $tx
  local trc=$RC
  # shellcheck disable=SC2086
  in_ns iptables -D FORWARD $rule -m length --length 1024:2047 -j NFQUEUE --queue-num $((40 + n)) --queue-bypass
  kill $fpid 2>/dev/null
  local hits
  hits=$(grep -c '^flipped' "$WORK/flip$n.log")
  grep -q '^mismatch' "$WORK/$rx.out" && fail "$n: the receiver got corrupted data: $(grep '^mismatch' "$WORK/$rx.out")"
  [ "$(errline $rx)" = "end 1 recv-error 74 EBADMSG" ] ||
    fail "$n: the receiver ($rx, exit $rrc) should fail with EBADMSG; it got: $(grep -E '^(end|recv|mismatch)' "$WORK/$rx.out" | tr '\n' ' ') ($(cat "$WORK/flip$n.log"))"
  [ $rrc -eq 5 ] || fail "$n: receiver exit $rrc"
  local got
  got=$(xfer_line "$WORK/$rx.out" recv 1 | cut -d' ' -f1)
  [ "$got" -ge 131072 ] && [ "$got" -lt 4194304 ] || fail "$n: the receiver read $got bytes"
  [ $trc -ne 0 ] || fail "$n: the sender ($tx) finished without an error: $(tr '\n' ' ' <"$WORK/$tx.out")"
  grep -qE "(recv-error|send-error 1) 104 ECONNRESET" "$WORK/$tx.out" ||
    fail "$n: the sender should see the reset (ECONNRESET): $(grep -E 'error' "$WORK/$tx.out" | tr '\n' ' ')"
  [ "$hits" = 1 ] || fail "$n: crypt_flip.py flipped $hits packets, expected 1"
  note "$n. $(grep '^flipped' "$WORK/flip$n.log") $dir: receiver EBADMSG after $got verified bytes, sender ECONNRESET"
}
flip_case 1 7601 a2b
flip_case 2 7602 b2a

# ---- 3 and 4: a segment injected from A's address
inject_case() {   # inject_case N PORT [HEX]
  local n=$1 port=$2 hex=${3:-}
  rm -f "$WORK/go$n"
  cap_start i$n tun-a "tcp port $port"
  peer_bg s$n b server "$port" --hold --verify 1 --progress-at 64K
  peer_bg c$n a client "$B4" "$port" --send 1M --seed 1 --pause-at 64K "$WORK/go$n"
  wait_log "$WORK/c$n.out" '^paused' 30
  wait_log "$WORK/s$n.out" '^progress' 30
  cap_stop i$n                               # the connection idles: A's next seq is final
  local cl cport
  cl=$(conn_line "$WORK/c$n.out" 1) || exit 1
  cport=$(port_of "$(kv "$cl" local)")
  in_ns "$PY" "$TOP/tests/integ/crypt_inject.py" "$WORK/i$n.pcap" "$A4" "$cport" "$B4" "$port" $hex \
    >"$WORK/inject$n.log" 2>&1 || fail "$n: injection failed: $(cat "$WORK/inject$n.log")"
  peer_wait s$n
  SRC_RC=$RC
  touch "$WORK/go$n"
  peer_wait c$n
  CLI_RC=$RC
  grep -q '^mismatch' "$WORK/s$n.out" && fail "$n: the server got corrupted data"
  [ "$(xfer_line "$WORK/s$n.out" recv 1)" = "65536 $("$CP" sha 64K --seed 1)" ] ||
    fail "$n: the server read $(xfer_line "$WORK/s$n.out" recv 1) before the injected segment, expected the client's 64 KiB"
  note "$n. $(cat "$WORK/inject$n.log")"
}
inject_case 3 7603
grep -q "^end 1 eof" "$WORK/s3.out" && fail "3: a FIN without FINp was reported as end of file (RFC 8548 §3.7: truncation)"
[ "$(errline s3)" = "end 1 recv-error 103 ECONNABORTED" ] ||
  fail "3: injected FIN without FINp: the server should fail with ECONNABORTED; it got: $(grep -E '^(end|recv)' "$WORK/s3.out" | tr '\n' ' ')"
[ $SRC_RC -eq 5 ] || fail "3: server exit $SRC_RC"
[ $CLI_RC -ne 0 ] && grep -qE "(recv-error|send-error 1) 104 ECONNRESET" "$WORK/c3.out" ||
  fail "3: the client should see the reset: exit $CLI_RC $(grep -E 'error|^end' "$WORK/c3.out" | tr '\n' ' ')"
note "3. server ECONNABORTED (not EOF), client ECONNRESET"

inject_case 4 7604 000005a1a2a3a4a5
[ "$(errline s4)" = "end 1 recv-error 71 EPROTO" ] ||
  fail "4: injected frame with clen 5: the server should fail with EPROTO; it got: $(grep -E '^(end|recv)' "$WORK/s4.out" | tr '\n' ' ')"
[ $SRC_RC -eq 5 ] || fail "4: server exit $SRC_RC"
[ $CLI_RC -ne 0 ] || fail "4: the client finished without an error"
note "4. server EPROTO, client exit $CLI_RC"

# ---- 5. a real end while the reader lags: all the data, then EOF
rm -f "$WORK/go5" "$WORK/go5r"
cap_start fa tun-a -c 1 "src host $A4 and tcp port 7605 and tcp[tcpflags] & tcp-fin != 0"
cap_start fb tun-a -c 1 "src host $B4 and tcp port 7605 and tcp[tcpflags] & tcp-fin != 0"
peer_bg s5 b server 7605 --send 16K --seed 2 --verify 1 --pause-at 0 "$WORK/go5" --rpause-at 64K "$WORK/go5r"
peer_bg c5 a client "$B4" 7605 --send 1M --seed 1 --verify 2
wait_gone "${CAP_PIDS[fa]}" 30 || fail "5: A's FIN not seen on tun-a"
touch "$WORK/go5"                         # now B sends 16 KiB, FINp, FIN
wait_gone "${CAP_PIDS[fb]}" 30 || fail "5: B's FIN not seen on tun-a"
peer_wait c5
expect_rc c5 0
# A acknowledged B's FIN: B's TCP connection is over (LAST-ACK -> CLOSED)
# while 900 KiB of A's frames and its FINp still wait for B's program
for _ in $(seq 1 40); do
  "$BUILD/enoctl" --socket "$B_SOCK" status | grep ":7605" | grep -q established || break
  sleep 0.05
done
touch "$WORK/go5r"
peer_wait s5
[ "$(xfer_line "$WORK/s5.out" recv 1)" = "1048576 $("$CP" sha 1M --seed 1)" ] && grep -q "^end 1 eof" "$WORK/s5.out" ||
  fail "5: the client sent 1 MiB and closed (FINp, FIN); the server, reading late, got $(xfer_line "$WORK/s5.out" recv 1 | cut -d' ' -f1) bytes and: $(grep -E '^end' "$WORK/s5.out") (expected all of it, then EOF)"
expect_rc s5 0
note "5. late reader: 1 MiB then EOF after the peer's FINp and FIN"

for s in a b; do tund_alive $s; done
wait_count "$A_SOCK" 0
wait_count "$B_SOCK" 0
note "ok ($SECONDS s)"
