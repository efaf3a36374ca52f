#!/usr/bin/env bash
# tund A killed with SIGKILL while its programs are busy: a sender (blocked on
# a full ring), a receiver (blocked waiting for data) and one blocked in
# poll() on an idle connection all get an error (ECONNRESET) and exit
# non-zero within 5 s — no hang.  A program blocked in accept() keeps
# waiting: its listener outlives tund (shim/relisten.c).  A new program then
# fails cleanly; tund B is unaffected: a transfer through it alone completes
# intact.  Then tund A is started again on the same socket: the waiting
# program's listener is back by itself and it accepts a connection intact.
. "$(dirname "$0")/lib.sh"
topo_up
X=$PROGS/xfer

# a transfer that involves only tund B (plain kernel client -> shim'd server
# at lwIP B's address) must not notice tund A's death
bg_b "$X" serve 7810 --send 2M --seed 8 >"$WORK/bonly-s.out" 2>"$WORK/bonly-s.log"; bs=$!
wait_log "$WORK/bonly-s.out" '^listening'
in_ns "$X" client "$B4" 7810 --send 20M --pace 4M --seed 7 >"$WORK/bonly-c.out" 2>"$WORK/bonly-c.log" &
bc=$!

bg_b "$X" serve 7800 >"$WORK/sink.out" 2>"$WORK/sink.log"
wait_log "$WORK/sink.out" '^listening'
bg_b "$X" serve 7801 --send inf --pace 64K >"$WORK/src.out" 2>"$WORK/src.log"
wait_log "$WORK/src.out" '^listening'
bg_b "$PROGS/echo_srv" 7802 >"$WORK/echo.out" 2>"$WORK/echo.log"
wait_log "$WORK/echo.out" '^listening'

bg_a "$X" client "$B4" 7800 --send inf >"$WORK/sender.out" 2>"$WORK/sender.log"; sender=$!
bg_a "$X" client "$B4" 7801 >"$WORK/reader.out" 2>"$WORK/reader.log"; reader=$!
bg_a "$X" serve 7803 >"$WORK/acceptor.out" 2>"$WORK/acceptor.log"; acceptor=$!
wait_log "$WORK/acceptor.out" '^listening'
bg_a "$PROGS/sem_many" "$B4" 7802 3 "$WORK/never" >"$WORK/idle.out" 2>"$WORK/idle.log"; idle=$!
wait_log "$WORK/idle.out" '^echoed' 30
wait_rx "$B_SOCK" 4000000
wait_rx "$A_SOCK" 100000

tp=$(tund_pid a)
note "killing tund A (pid $tp) with SIGKILL"
kill -9 "$tp"
bad=
for v in sender reader idle; do
  if exits_within "${!v}" 5; then
    note "$v exited $EXIT_RC after ${EXIT_T}s: $(tail -n 1 "$WORK/$v.out" 2>/dev/null) $(tail -n 1 "$WORK/$v.log" 2>/dev/null)"
    [ "$EXIT_RC" -ne 0 ] || bad="$bad $v(exit 0 as if nothing happened)"
  else
    bad="$bad $v(still running after 5 s)"
  fi
done
[ -z "$bad" ] || fail "after tund A was killed:$bad"
grep -q "Connection reset" "$WORK/reader.out" || fail "the reader did not see ECONNRESET: $(cat "$WORK/reader.out")"
kill -0 "$acceptor" 2>/dev/null || fail "the program in accept() ended when tund died: $(cat "$WORK/acceptor.out" "$WORK/acceptor.log")"
note "acceptor still waiting in accept()"

rc=0; timeout 20 ip netns exec "$NS" "$ENORUN" --socket "$A_SOCK" -- "$X" client "$B4" 7800 --send 1M \
  >"$WORK/late.out" 2>&1 || rc=$?
[ $rc -ne 0 ] || fail "a program started after tund A died succeeded?"
note "program started after tund died: exit $rc: $(head -n 1 "$WORK/late.out")"
tund_alive b
exits_within "$bc" 30 && [ "$EXIT_RC" -eq 0 ] || fail "transfer through tund B alone failed: $(cat "$WORK/bonly-c.out" "$WORK/bonly-c.log")"
exits_within "$bs" 10 && [ "$EXIT_RC" -eq 0 ] || fail "its server failed: $(cat "$WORK/bonly-s.out")"
[ "$(sha_line "$WORK/bonly-s.out" recv)" = "20971520 $("$X" sha 20M --seed 7)" ] || fail "transfer through tund B alone: data differs"
[ "$(sha_line "$WORK/bonly-c.out" recv)" = "2097152 $("$X" sha 2M --seed 8)" ] || fail "transfer through tund B alone: data back differs"
note "a transfer through tund B alone completed intact"

# tund A again, same socket: the acceptor's listener comes back by itself
start_tund a "$A_SOCK" tun-a $HA4 $A4 $HA6 $A6
wait_listen 7803 "$A_SOCK" 10
in_ns "$X" client "$A4" 7803 --send 3M --seed 5 >"$WORK/back-c.out" 2>"$WORK/back-c.log" ||
  fail "connecting to the listener after tund A's restart: $(cat "$WORK/back-c.out" "$WORK/back-c.log")"
exits_within "$acceptor" 10 && [ "$EXIT_RC" -eq 0 ] ||
  fail "the acceptor did not finish its connection after tund A came back: $(cat "$WORK/acceptor.out" "$WORK/acceptor.log")"
[ "$(sha_line "$WORK/acceptor.out" recv)" = "3145728 $("$X" sha 3M --seed 5)" ] ||
  fail "the connection accepted after the restart: data differs"
grep -q "registered again" "$WORK/acceptor.log" || fail "the acceptor's shim did not say its listener was back"
note "after tund A's restart the same acceptor accepted a connection intact (it ended ${EXIT_T}s after its client)"
note ok
