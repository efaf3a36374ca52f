#!/usr/bin/env bash
# san: skip  (1 GiB through ASan-built tunds takes minutes; the semantics tests cover the paths)
# Two real hosts (hosts_lib.sh, default settings): 1 GiB from a program on
# host 1 to a program on host 2, dialing host 2's real address (and 64 MiB
# back at the same time), SHA-256 checked on both ends; the connection is seen
# encrypting while it runs, one session ID on both hosts; both tunds give
# back the heap the transfer grew.
. "$(dirname "$0")/hosts_lib.sh"
hosts_up
hosts_no_dns
tund_up 1
tund_up 2

X=$PROGS/xfer
# the test program's own SHA-256 agrees with sha256sum
[ "$("$X" sha 3M --seed 5)" = "$("$X" gen 3M --seed 5 | sha256sum | cut -d' ' -f1)" ] ||
  fail "xfer's SHA-256 disagrees with sha256sum"

run2 timeout 120 "$X" serve 7001 --send 64M --seed 2 >"$WORK/srv.out" 2>"$WORK/srv.log" &
srv=$!
wait_log "$WORK/srv.out" '^listening'
t0=$SECONDS
timeout 120 ip netns exec "$H1" "$ENORUN" --socket "$S1" -- "$X" client "$IP2" 7001 --send 1G --seed 1 \
  >"$WORK/cli.out" 2>"$WORK/cli.log" &
cli=$!
expect_encrypted "xfer 1 GiB" 7001 $cli
wait $cli || fail "client failed: $(cat "$WORK/cli.out" "$WORK/cli.log")"
wait "$srv" || fail "server failed: $(cat "$WORK/srv.out" "$WORK/srv.log")"
note "1 GiB + 64 MiB in $((SECONDS - t0)) s"

want=$("$X" sha 1G --seed 1)
[ "$(sha_line "$WORK/cli.out" sent)" = "1073741824 $want" ] || fail "client sent: $(cat "$WORK/cli.out")"
[ "$(sha_line "$WORK/srv.out" recv)" = "1073741824 $want" ] ||
  fail "server received $(sha_line "$WORK/srv.out" recv), expected 1073741824 $want"
back=$("$X" sha 64M --seed 2)
[ "$(sha_line "$WORK/srv.out" sent)" = "67108864 $back" ] || fail "server sent: $(cat "$WORK/srv.out")"
[ "$(sha_line "$WORK/cli.out" recv)" = "67108864 $back" ] ||
  fail "client received $(sha_line "$WORK/cli.out" recv), expected 67108864 $back"
wait_count "$S1" 0
wait_count "$S2" 0

# A quiet tund gives back the heap the transfer grew (tund/loop.c keeps the
# heap top while packets flow and trims it after a quiet second).
anon_kib() { awk '/^RssAnon:/ { print $2 }' "/proc/$1/status"; }
for side in 1 2; do
  pid=$(tund_pid $side)
  kib=
  for _ in $(seq 30); do
    kib=$(anon_kib "$pid")
    [ "$kib" -le 2048 ] && break
    sleep 0.2
  done
  note "tund of host $side: ${kib} KiB anonymous memory once idle"
  [ "$kib" -le 2048 ] || fail "tund of host $side kept ${kib} KiB of anonymous memory after the transfer"
done
note "ok"
