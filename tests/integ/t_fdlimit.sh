#!/usr/bin/env bash
# tund at its descriptor limit loses no connection a program was told is up.
# tund B gets an RLIMIT_NOFILE with room for about 40 connections; a program
# behind tund A opens 80 at once (resumed tcpcrypt: the client counts itself
# connected after the SYN-ACK, before tund B has made the socket).  tund B
# admits a SYN only when it holds the descriptors that connection will need
# (the descriptor reserve, tund/fdres.c) and drops the others instead of
# completing connections it would have to reset;
# once its limit is raised the dropped SYNs' retransmissions get in.  Every
# connection the client opened must echo.
. "$(dirname "$0")/lib.sh"
command -v prlimit >/dev/null || fail "prlimit (util-linux) not found"
topo_up
bg_b "$BUILD/bench/enobench" server --port 7960 >"$WORK/srv.out" 2>&1; srv=$!
on_exit "kill $srv"
wait_listen 7960 "$B_SOCK"
# one connection first, so that the rest resume its session
run_a "$BUILD/bench/enobench" conn --host "$B4" --port 7960 --count 1 >"$WORK/warm.out" 2>&1 ||
  fail "warm-up connection: $(cat "$WORK/warm.out")"
tb=$(tund_pid b)
open_fds=$(ls "/proc/$tb/fd" | wc -l)
lim=$((open_fds + 80))
soft0=$(prlimit --pid "$tb" --nofile --output SOFT --noheadings | tr -d ' ')
prlimit --pid "$tb" --nofile=$lim: || fail "prlimit on tund B"
note "tund B: $open_fds descriptors open, soft limit lowered from $soft0 to $lim"

# --hold-stdin: the client keeps its connections until its stdin ends (a
# FIFO this shell holds open)
mkfifo "$WORK/hold" && exec 9<>"$WORK/hold" || fail "mkfifo"
ip netns exec "$NS" "$ENORUN" --socket "$A_SOCK" -- "$BUILD/bench/enobench" scale --host "$B4" \
  --port 7960 --conns 80 --inflight 80 --hold-stdin --verify-timeout 20 <"$WORK/hold" >"$WORK/scale.out" 2>&1 &
cli=$!
on_exit "kill $cli"
wait_log "$WORK/tund-b.log" "out of file descriptors" 30
# tund answers its control socket even now (a descriptor is held back for it)
timeout 10 "$BUILD/enoctl" --socket "$B_SOCK" status >"$WORK/status.txt" 2>&1 ||
  fail "enoctl status did not answer while tund B was out of descriptors: $(head -3 "$WORK/status.txt")"
note "tund B ran out of descriptors, enoctl status answers ($(($(wc -l <"$WORK/status.txt") - 1)) connections); raising its limit"
prlimit --pid "$tb" --nofile="$soft0": || fail "prlimit (raise) on tund B"
wait_log "$WORK/scale.out" '"phase": "open"' 90
read -r conns connected failed echoed wrong < <(python3 -c '
import json, sys
r = json.loads(open(sys.argv[1]).readline())
print(r["conns"], r["connected"], r["failed"], r["echoed"], r["wrong"])' "$WORK/scale.out") ||
  fail "scale output: $(head -c 400 "$WORK/scale.out")"
note "asked $conns, connected $connected, failed $failed, echoed $echoed (wrong $wrong)"
grep -E "out of file descriptors|available again|cannot take" "$WORK/tund-b.log" | sed 's/^/    | /' | head -6
[ "$connected" -eq "$conns" ] || fail "only $connected of $conns connected ($failed failed)"
[ "$echoed" -eq "$connected" ] && [ "$wrong" -eq 0 ] ||
  fail "$((connected - echoed)) of $connected connections the client saw open do not echo"
wait_log "$WORK/tund-b.log" "file descriptors available again" 10
echo ok
