#!/usr/bin/env bash
# A program that makes connection after connection, then rests.
#
# While any AF_UNIX socket sits in flight anywhere on the host (sent with
# SCM_RIGHTS and not yet received), every close of a unix socket by any
# process queues a run of the kernel's unix garbage collector (af_unix
# unix_release_sock -> unix_gc; measured on 6.x kernels, PERFORMANCE.md).
# enoshim passes a socketpair end for every socket, so it must never leave
# one in flight at rest (it once did: a "standby" socket made ahead).
#  1. ten connections in a row, each its own tund socket;
#  2. socket() returns the lowest free fd;
#  3. a program that closes every fd (closerange) or dup2()s over the shim's
#     own fd numbers keeps working;
#  4. fork: parent and child both connect; exec: no socket of the shim's
#     crosses it (none left at fds >= 3 in the new image);
#  5. a program resting with three connections open leaves nothing in
#     flight: an unrelated process closing 300 socketpairs meanwhile queues
#     (almost) no GC run (tracefs, workqueue_queue_work with function
#     __unix_gc), where the same closes next to one socket really in flight
#     (the control) queue many; tund forgets everything when the program
#     exits (its fd count back where it was).
. "$(dirname "$0")/lib.sh"
topo_up
BENCH="$BUILD/bench/enobench"
PROBE="$TOP/tests/integ/sock_probe.py"
bg_b "$BENCH" server --bind 0.0.0.0 --port 7971 --threads 1 >"$WORK/srv.out" 2>&1; srv=$!
on_exit "kill $srv"
wait_port 7971

# probe NAME ARGS...: run a scenario with the shim's log on; out in $WORK/NAME.out, log in NAME.err
probe() {
  local name=$1; shift
  in_ns env ENOSHIM_DEBUG=1 "$ENORUN" --socket "$A_SOCK" -- python3 "$PROBE" "$B4" 7971 "$@" \
    >"$WORK/$name.out" 2>"$WORK/$name.err" || fail "$name: probe failed: $(tail -3 "$WORK/$name.out" "$WORK/$name.err")"
}
tund_a_fds() { ls "/proc/${TUND_PIDS[0]}/fd" | wc -l; }

fds0=$(tund_a_fds)

# 1.
probe seq seq 10
n=$(grep -c 'socket fd [0-9]* = tund socket [0-9]*$' "$WORK/seq.err")
ids=$(grep -o 'socket fd [0-9]* = tund socket [0-9]*$' "$WORK/seq.err" | awk '{ print $NF }' | sort -u | wc -l)
expect "1: tund sockets made for 10 connections" "$n" 10
expect "1: distinct socket ids" "$ids" 10
note "1. 10 connections: $n tund sockets, $ids ids"

# 2.
probe lowest lowest
expect_match "2: fd of socket()" "$(cat "$WORK/lowest.out")" '^lowest want ([0-9]+) got \1 echo True$'
note "2. $(cat "$WORK/lowest.out")"

# 3.
probe closeall closeall
expect "3: closerange(3, 4096), then two connections" "$(cat "$WORK/closeall.out")" "closeall ok"
probe dup2 dup2
expect_match "3: dup2 over the shim's fds" "$(cat "$WORK/dup2.out")" '^dup2 over [1-9][0-9]* fds, not /dev/null after: 0$'
note "3. $(cat "$WORK/closeall.out"); $(cat "$WORK/dup2.out")"

# 4.
probe fork fork
expect "4: child's three connections" "$(cat "$WORK/fork.out")" "fork child 0"
probe exec exec
expect "4: sockets held after exec" "$(cat "$WORK/exec.out")" "sockets after exec: 0"
note "4. $(cat "$WORK/fork.out"); $(cat "$WORK/exec.out")"

# 5.
TR=/sys/kernel/tracing
[ -d "$TR/instances" ] || mount -t tracefs nodev "$TR" 2>/dev/null
[ -d "$TR/instances" ] || fail "5: tracefs is not available at $TR (needed to count the kernel's unix GC runs)"
INST="$TR/instances/enoshim-inflight-$$"
mkdir "$INST" || fail "5: cannot make a tracefs instance"
on_exit "echo 0 > '$INST/events/workqueue/workqueue_queue_work/enable' 2>/dev/null; rmdir '$INST'"
echo 'function.function == __unix_gc' >"$INST/events/workqueue/workqueue_queue_work/filter" ||
  fail "5: this kernel's tracefs does not filter on a work item's function"
cat >"$WORK/closer.py" <<'PY'
import socket, sys, time
held = None
if sys.argv[1] == "control":
    # one unix socket really in flight: sent, never received
    a, b = socket.socketpair()
    x, y = socket.socketpair()
    socket.send_fds(a, [b"x"], [x.fileno()])
    held = (a, b, y)
    x.close()
for _ in range(300):
    p, q = socket.socketpair()
    p.close()
    q.close()
    time.sleep(0.001)
PY
# gc_runs WHAT: GC runs queued while the closer runs beside WHAT
gc_runs() {
  echo > "$INST/trace"
  echo 1 > "$INST/events/workqueue/workqueue_queue_work/enable"
  python3 "$WORK/closer.py" "$1"
  echo 0 > "$INST/events/workqueue/workqueue_queue_work/enable"
  grep -c 'function=__unix_gc' "$INST/trace"
}
in_ns "$ENORUN" --socket "$A_SOCK" -- python3 "$PROBE" "$B4" 7971 hold 4 >"$WORK/hold.out" 2>&1 & holder=$!
on_exit "kill $holder"
for _ in $(seq 1 100); do grep -q holding "$WORK/hold.out" && break; sleep 0.05; done
hp=$(awk '/holding/ { print $2 }' "$WORK/hold.out")
[ -n "$hp" ] || fail "5: the holder did not start: $(cat "$WORK/hold.out")"
sleep 0.3
rest=$(gc_runs rest)
control=$(gc_runs control)
[ "$control" -ge 30 ] ||
  fail "5: the control (one socket in flight) queued only $control GC runs for 300 closes: this kernel does not show the effect, so the test cannot tell"
[ "$rest" -le 5 ] ||
  fail "5: $rest GC runs queued for 300 socketpair closes while an enoshim program rests with 3 connections (control: $control): something is left in flight"
kill -0 "$holder" 2>/dev/null || fail "5: the holder ended before the measurement did"
wait $holder
for _ in $(seq 1 40); do [ "$(tund_a_fds)" -le "$fds0" ] && break; sleep 0.1; done
expect "5: tund A's fds after every probe exited (before: $fds0)" "$(tund_a_fds)" "$fds0"
note "5. GC runs for 300 closes: $rest beside a resting enoshim program, $control beside one socket in flight; tund A holds $(tund_a_fds) fds again ($fds0 before)"

tund_alive a || fail "tund A died"
