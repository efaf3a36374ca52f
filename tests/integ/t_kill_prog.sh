#!/usr/bin/env bash
# Programs killed with SIGKILL mid-transfer: the peer gets EOF or a reset
# (not a hang), tund frees the connections (status returns to the baseline),
# tund stays up.  Sender killed, receiver killed, a program holding 50
# established connections killed.
. "$(dirname "$0")/lib.sh"
topo_up
X=$PROGS/xfer
ongoing_start 7710      # another program pair's transfer must not notice anything

# 1. the sender on A dies
bg_b "$X" serve 7700 >"$WORK/s1.out" 2>"$WORK/s1.log"; srv=$!
wait_log "$WORK/s1.out" '^listening'
bg_a "$X" client "$B4" 7700 --send inf >"$WORK/c1.out" 2>"$WORK/c1.log"; cli=$!
wait_rx "$B_SOCK" 2000000
kill9 "$cli"
exits_within "$srv" 10 || fail "receiver on B still running 10 s after its sender was killed"
note "sender killed: receiver exited $EXIT_RC after ${EXIT_T}s: $(cat "$WORK/s1.out" | tail -n 1)"
[ $EXIT_RC -eq 0 ] || [ $EXIT_RC -eq 2 ] || fail "receiver failed oddly ($EXIT_RC): $(cat "$WORK/s1.out" "$WORK/s1.log")"
grep -qE '^recv [0-9]+|^aborted: read: (Connection reset|Software caused)' "$WORK/s1.out" ||
  fail "receiver saw neither EOF nor a reset: $(cat "$WORK/s1.out")"
wait_count "$A_SOCK" "$(ongoing_n a)" 15
wait_count "$B_SOCK" "$(ongoing_n b)" 15

# 2. the receiver on B dies (with unread data: the sender must get an error)
bg_b "$X" serve 7701 >"$WORK/s2.out" 2>"$WORK/s2.log"; srv=$!
wait_log "$WORK/s2.out" '^listening'
bg_a "$X" client "$B4" 7701 --send inf >"$WORK/c2.out" 2>"$WORK/c2.log"; cli=$!
wait_rx "$B_SOCK" 2000000
kill9 "$srv"
exits_within "$cli" 10 || fail "sender on A still running 10 s after its receiver was killed"
note "receiver killed: sender exited $EXIT_RC after ${EXIT_T}s: $(tail -n 1 "$WORK/c2.out")"
[ $EXIT_RC -eq 2 ] && grep -qE '^aborted: write: (Connection reset by peer|Broken pipe)' "$WORK/c2.out" ||
  fail "sender did not get ECONNRESET/EPIPE (exit $EXIT_RC): $(cat "$WORK/c2.out" "$WORK/c2.log")"
wait_count "$A_SOCK" "$(ongoing_n a)" 15
wait_count "$B_SOCK" "$(ongoing_n b)" 15

# 3. a program holding 50 established connections dies
bg_b "$PROGS/echo_srv" 7702 >"$WORK/echo.out" 2>"$WORK/echo.log"; echo_pid=$!
wait_log "$WORK/echo.out" '^listening'
bg_a "$PROGS/sem_many" "$B4" 7702 50 "$WORK/never" >"$WORK/many.out" 2>"$WORK/many.log"; many=$!
wait_log "$WORK/many.out" '^echoed' 60
[ "$(status_count "$A_SOCK")" -ge 50 ] || fail "tund A does not list the 50 connections"
kill9 "$many"
wait_count "$A_SOCK" "$(ongoing_n a)" 15
wait_count "$B_SOCK" $(( $(ongoing_n b) + 1 )) 15      # + echo_srv's listener
kill -0 "$echo_pid" || fail "echo server died"
kill "$echo_pid"
tund_alive a; tund_alive b
ongoing_check
note ok
