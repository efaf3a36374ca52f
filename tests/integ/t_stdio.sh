#!/usr/bin/env bash
# Two real hosts (hosts_lib.sh, default settings): programs that talk to
# their connection with stdio, inetd-style (the socket is their stdin and
# stdout), started per connection by socat EXEC:...,nofork (socat forks,
# puts the connection on fds 0 and 1 and execs them) under enorun on host 2;
# clients under enorun on host 1 dialing host 2's real address:
#   - sha256sum: 20 MiB in, its digest line back, equal to the local one;
#   - tests/progs/inetd_echo (fgets/fputs on stdin/stdout, a greeting with
#     printf, a last line from an atexit handler): 6 MiB of text lines echoed,
#     the whole answer compared by SHA-256 with what it must be; once with
#     stdout's default buffering, once flushed per line, once through its own
#     FILEs made with fdopen();
#   - no connection was reset for bytes written around the shim (tund's log).
. "$(dirname "$0")/hosts_lib.sh"
hosts_up
hosts_no_dns
tund_up 1
tund_up 2

C=(timeout 120 ip netns exec "$H1" "$ENORUN" --socket "$S1" -- socat -t 60)

# sha256sum
bg2 socat TCP-LISTEN:7101,reuseaddr,fork EXEC:sha256sum,nofork 2>"$WORK/socat-sha.log"; srv=$!
on_exit "kill $srv"
wait_listen 7101 "$S2"
head -c $((20 << 20)) /dev/urandom >"$WORK/in.bin"
want="$(sha256sum <"$WORK/in.bin" | cut -d' ' -f1)  -"
"${C[@]}" - "TCP:$IP2:7101" <"$WORK/in.bin" >"$WORK/sha.out" 2>"$WORK/sha.err" ||
  fail "socat client (sha256sum): $(tail -3 "$WORK/sha.err")"
[ "$(cat "$WORK/sha.out")" = "$want" ] ||
  fail "sha256sum over the connection said '$(head -c 200 "$WORK/sha.out")', expected '$want'"
note "socat EXEC:sha256sum,nofork: 20 MiB in, the right digest back"

# inetd_echo
head -c $((4500 << 10)) /dev/urandom | base64 -w 76 >"$WORK/in.txt"
lines=$(wc -l <"$WORK/in.txt"); bytes=$(wc -c <"$WORK/in.txt")
{ echo "hello from inetd_echo"; cat "$WORK/in.txt"; echo "bye: $lines lines, $bytes bytes"; } >"$WORK/want.txt"
want=$(sha256sum <"$WORK/want.txt" | cut -d' ' -f1)
port=7102
for args in "" "-l" "-f" "-l -f"; do
  bg2 socat TCP-LISTEN:$port,reuseaddr,fork "EXEC:$PROGS/inetd_echo $args,nofork" 2>"$WORK/socat-echo$port.log"
  srv=$!
  on_exit "kill $srv"
  wait_listen $port "$S2"
  "${C[@]}" - "TCP:$IP2:$port" <"$WORK/in.txt" >"$WORK/echo$port.out" 2>"$WORK/echo$port.err" ||
    fail "socat client (inetd_echo $args): $(tail -3 "$WORK/echo$port.err")"
  got=$(sha256sum <"$WORK/echo$port.out" | cut -d' ' -f1)
  [ "$got" = "$want" ] || fail "inetd_echo $args: $(wc -c <"$WORK/echo$port.out") bytes back (want $(wc -c <"$WORK/want.txt")), \
first line '$(head -n 1 "$WORK/echo$port.out" | head -c 80)', last '$(tail -n 1 "$WORK/echo$port.out" | head -c 80)'"
  note "inetd_echo ${args:-(default buffering)}: $bytes bytes of lines echoed, greeting and atexit line, SHA-256 equal"
  port=$((port + 1))
done

no_bypass_resets
tund_alive 1; tund_alive 2
wait_count "$S1" 0 20
note ok
