#!/usr/bin/env bash
# Standby sockets (tund/client.c "standby sockets", shim/ctl.c): from a
# process's second socket() on, tund makes the next socket ahead and sends
# it unasked; socket() takes it without a round trip.  The shim's debug log
# marks such sockets "(standby)".
#  1. ten connections in a row: the first two ask tund, the other eight take
#     a standby;
#  2. a standby socket() still returns the lowest free fd;
#  3. a program that closes every fd (closerange) or dup2()s over the shim's
#     own fd numbers loses neither its standby nor its control connection;
#  4. fork: parent and child each take only their own; exec: no standby
#     crosses it (no socket left at fds >= 3 in the new image);
#  5. enoctl status does not list a waiting standby, and tund forgets it when
#     its process exits (tund's fd count back where it was).
. "$(dirname "$0")/lib.sh"
topo_up
BENCH="$BUILD/bench/enobench"
PROBE="$TOP/tests/integ/standby_probe.py"
bg_b "$BENCH" server --bind 0.0.0.0 --port 7971 --threads 1 >"$WORK/srv.out" 2>&1; srv=$!
on_exit "kill $srv"
wait_port 7971

# probe NAME ARGS...: run a scenario with the shim's log on; out in $WORK/NAME.out, log in NAME.err
probe() {
  local name=$1; shift
  in_ns env ENOSHIM_DEBUG=1 "$ENORUN" --socket "$A_SOCK" -- python3 "$PROBE" "$B4" 7971 "$@" \
    >"$WORK/$name.out" 2>"$WORK/$name.err" || fail "$name: probe failed: $(tail -3 "$WORK/$name.out" "$WORK/$name.err")"
}
standbys() { grep -c 'tund socket [0-9]* (standby)' "$WORK/$1.err"; }
asked() { grep 'socket fd [0-9]* = tund socket' "$WORK/$1.err" | grep -vc '(standby)'; }
tund_a_fds() { ls "/proc/${TUND_PIDS[0]}/fd" | wc -l; }

fds0=$(tund_a_fds)

# 1.
probe seq seq 10
expect "1: sockets that asked tund" "$(asked seq)" 2
expect "1: sockets taken from a standby" "$(standbys seq)" 8
note "1. 10 connections: $(asked seq) asked tund, $(standbys seq) took a standby"

# 2.
probe lowest lowest
expect_match "2: fd of a standby socket()" "$(cat "$WORK/lowest.out")" '^lowest want ([0-9]+) got \1 echo True$'
expect "2: that socket came from a standby" "$(standbys lowest)" 2
note "2. $(cat "$WORK/lowest.out")"

# 3.
probe closeall closeall
expect "3: closerange(3, 4096), then two connections" "$(cat "$WORK/closeall.out")" "closeall ok"
expect "3: standbys taken, two of them after the closerange" "$(standbys closeall)" 3
probe dup2 dup2
expect_match "3: dup2 over the shim's fds" "$(cat "$WORK/dup2.out")" '^dup2 over [1-9][0-9]* fds, not /dev/null after: 0$'
expect "3: standbys taken, two of them after the dup2s" "$(standbys dup2)" 3
note "3. $(cat "$WORK/closeall.out"); $(cat "$WORK/dup2.out")"

# 4.
probe fork fork
expect "4: child's three connections" "$(cat "$WORK/fork.out")" "fork child 0"
# parent: 3 + 1 + 3 sockets (5 standbys); child: 3 (its own, 1 standby)
expect "4: standbys taken by parent and child" "$(standbys fork)" 6
probe exec exec
expect "4: sockets held after exec" "$(cat "$WORK/exec.out")" "sockets after exec: 0"
note "4. $(cat "$WORK/fork.out"); $(cat "$WORK/exec.out")"

# 5.
in_ns "$ENORUN" --socket "$A_SOCK" -- python3 "$PROBE" "$B4" 7971 hold 3 >"$WORK/hold.out" 2>&1 & holder=$!
on_exit "kill $holder"
for _ in $(seq 1 100); do grep -q holding "$WORK/hold.out" && break; sleep 0.05; done
hp=$(awk '/holding/ { print $2 }' "$WORK/hold.out")
[ -n "$hp" ] || fail "5: the holder did not start: $(cat "$WORK/hold.out")"
sleep 0.3
st=$(enoctl_a status --json) || fail "5: enoctl status"
n=$(python3 -c 'import json, sys; print(sum(1 for e in json.loads(sys.argv[1]) if e["pid"] == int(sys.argv[2]) and e["state"] in ("new", "NEW")))' "$st" "$hp")
expect "5: new sockets listed for a process holding only a standby" "$n" 0
wait $holder
for _ in $(seq 1 40); do [ "$(tund_a_fds)" -le "$fds0" ] && break; sleep 0.1; done
expect "5: tund A's fds after every probe exited (before: $fds0)" "$(tund_a_fds)" "$fds0"
note "5. status hides the standby; tund A holds $(tund_a_fds) fds again ($fds0 before)"

tund_alive a || fail "tund A died"
tund_alive b || fail "tund B died"
expect_done
