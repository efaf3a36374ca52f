#!/usr/bin/env bash
# The shim's outcome lines (issue 16 point 4), lib.sh's one-namespace
# topology: with enorun --debug (ENOSHIM_DEBUG=1) one line per connection
# once its outcome is known — encrypted (TEP, AEAD, the session ID's first
# 8 bytes as eno-hello reads it, fresh, then resumed) on both ends, for
# blocking and non-blocking (curl) connects; plain TCP and why against a
# kernel server, with --no-eno, on a direct route — and the
# TCP_ENO_TEP_MANDATORY abort said on stderr without --debug (blocking and
# non-blocking); without --debug nothing else is said.
. "$(dirname "$0")/lib.sh"
X=$BUILD/examples/eno-hello
# outcome FILE: the outcome lines in an output
outcome() { grep -E '^enoshim(\[[0-9]+\])?: (fd [0-9]+ (->|<-) |connection to )' "$1" || true; }

topo_up

# encrypted, both ends; fresh then resumed
for k in 1 2; do
  in_ns "$ENORUN" --socket "$B_SOCK" --debug -- "$X" server 7100 >"$WORK/enc$k.srv" 2>&1 &
  sp=$!
  wait_listen 7100 "$B_SOCK"
  in_ns "$ENORUN" --socket "$A_SOCK" --debug -- "$X" client $B4 7100 "hello $k" >"$WORK/enc$k.cli" 2>&1 ||
    fail "eno-hello client $k failed: $(cat "$WORK/enc$k.cli")"
  wait $sp
  sid=$(eno_val "$WORK/enc$k.cli" session-id)
  [ -n "$sid" ] || fail "eno-hello printed no session ID: $(cat "$WORK/enc$k.cli")"
  fr=fresh; [ $k = 2 ] && fr=resumed
  c=$(outcome "$WORK/enc$k.cli"); s=$(outcome "$WORK/enc$k.srv")
  expect_match "encrypted $k: client line" "$c" \
    "^enoshim\[[0-9]+\]: fd [0-9]+ -> $B4:7100: encrypted \(tcpcrypt-X25519, AES-128-GCM, session ${sid:0:16}, $fr\)$"
  expect_match "encrypted $k: server line" "$s" \
    "^enoshim\[[0-9]+\]: fd [0-9]+ <- $A4:[0-9]+: encrypted \(tcpcrypt-X25519, AES-128-GCM, session ${sid:0:16}, $fr\)$"
  note "client: $c"
  note "server: $s"
done

# non-blocking connect (curl): one line, once the connection is up
in_ns "$ENORUN" --socket "$B_SOCK" -- python3 -m http.server --bind $B4 7101 >"$WORK/http.log" 2>&1 &
wait_listen 7101 "$B_SOCK"
in_ns "$CURL_ENORUN" --socket "$A_SOCK" --debug -- curl -sS -m 10 -o /dev/null http://$B4:7101/ >"$WORK/curl.out" 2>&1 ||
  fail "curl failed: $(cat "$WORK/curl.out")"
c=$(outcome "$WORK/curl.out")
expect_match "curl (non-blocking): one encrypted line" "$c" \
  "^enoshim\[[0-9]+\]: fd [0-9]+ -> $B4:7101: encrypted \(tcpcrypt-X25519, AES-128-GCM, session [0-9a-f]{16}, (fresh|resumed)\)$"
note "curl: $c"

# plain fallback: a kernel server (no ENO)
in_ns socat TCP-LISTEN:7200,bind=$HB4,reuseaddr,fork EXEC:cat >/dev/null 2>&1 &
on_exit "kill $!"
wait_port 7200
in_ns "$ENORUN" --socket "$A_SOCK" --debug -- "$X" client $HB4 7200 plain >"$WORK/plain.cli" 2>&1 ||
  fail "client -> kernel server failed: $(cat "$WORK/plain.cli")"
c=$(outcome "$WORK/plain.cli")
expect_match "fallback: client line" "$c" \
  "^enoshim\[[0-9]+\]: fd [0-9]+ -> $HB4:7200: plain TCP: peer does not speak TCP-ENO$"
note "fallback: $c"
in_ns "$ENORUN" --socket "$A_SOCK" --debug --no-eno -- "$X" client $HB4 7200 noeno >"$WORK/noeno.cli" 2>&1
c=$(outcome "$WORK/noeno.cli")
expect_match "--no-eno: client line" "$c" "-> $HB4:7200: plain TCP: ENO disabled for this socket \(TCP_ENO_ENABLED=0"
note "--no-eno: $c"
# a direct route (loopback)
in_ns socat TCP-LISTEN:7201,bind=127.0.0.1,reuseaddr,fork EXEC:cat >/dev/null 2>&1 &
on_exit "kill $!"
wait_port 7201
in_ns "$ENORUN" --socket "$A_SOCK" --debug -- "$X" client 127.0.0.1 7201 direct >"$WORK/direct.cli" 2>&1
c=$(outcome "$WORK/direct.cli")
expect_match "direct: client line" "$c" "^enoshim\[[0-9]+\]: fd [0-9]+ -> 127.0.0.1:7201: plain TCP: direct route \(loopback\)$"
note "direct: $c"

# TCP_ENO_TEP_MANDATORY abort, without --debug: one line on stderr
abort_re="^enoshim: connection to $HB4:7200 aborted: peer does not speak TCP-ENO \(TCP_ENO_TEP_MANDATORY\)$"
rc=0
in_ns "$ENORUN" --socket "$A_SOCK" --eno-mandatory -- "$X" client $HB4 7200 m >"$WORK/mand.out" 2>"$WORK/mand.err" || rc=$?
expect "mandatory (blocking): connect fails" "$(eno_val "$WORK/mand.out" connect)" "Protocol not supported"
expect_match "mandatory (blocking): stderr" "$(cat "$WORK/mand.err")" "$abort_re"
note "mandatory: $(cat "$WORK/mand.err")"
rc=0
in_ns "$CURL_ENORUN" --socket "$A_SOCK" --eno-mandatory -- curl -sS -m 10 http://$HB4:7200/ >"$WORK/mandc.out" 2>"$WORK/mandc.err" || rc=$?
expect "mandatory (curl): curl fails" "$rc" 7
expect_match "mandatory (curl): the line" "$(grep '^enoshim' "$WORK/mandc.err")" "$abort_re"
expect "mandatory (curl): said once" "$(grep -c '^enoshim' "$WORK/mandc.err")" 1
note "mandatory (curl): $(cat "$WORK/mandc.err" | tr '\n' ' ')"

# without --debug an encrypted or plain connection says nothing
in_ns "$ENORUN" --socket "$A_SOCK" -- "$X" client $HB4 7200 quiet >"$WORK/quiet.out" 2>"$WORK/quiet.err"
in_ns "$CURL_ENORUN" --socket "$A_SOCK" -- curl -sS -m 10 -o /dev/null http://$B4:7101/ 2>>"$WORK/quiet.err"
expect "no --debug: nothing on stderr" "$(cat "$WORK/quiet.err")" ""
expect_done
echo "  ok"
