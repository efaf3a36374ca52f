#!/usr/bin/env bash
# Ring memory reused between connections (tund/spares.c "spare shared memory",
# shim/sockmem.c "kept mappings"), and who may see it again.  tund's counters
# (`enoctl check`: "spares: H held, R reused of M made") tell what it reused.
#  1. one process, ten connections in a row: nine reuse the first one's memory,
#     on both sides (tund A: the process's own; tund B: the listener's);
#  2. isolation: a second process never gets the first one's spare, and a
#     process's spares go with it;
#  3. fork: a socket a child inherited is never reused (FORKED), and a child
#     keeps none of its parent's idle mappings;
#  4. SCM_RIGHTS: a socket another process attached to is never reused.
. "$(dirname "$0")/lib.sh"
topo_up
BENCH="$BUILD/bench/enobench"
PROBE="$TOP/tests/integ/spare_probe.py"
bg_b "$BENCH" server --bind 0.0.0.0 --port 7970 --threads 1 >"$WORK/srv.out" 2>&1; srv=$!
on_exit "kill $srv"
wait_port 7970

# spares_of SOCK FIELD: held | reused | made
spares_of() {
  local out
  out=$("$BUILD/enoctl" --socket "$1" check 2>&1) || fail "enoctl check: $out"
  python3 - "$out" "$2" <<'P'
import re, sys
m = re.search(r"spares: (\d+) held, (\d+) reused of (\d+) made", sys.argv[1])
if not m:
    sys.exit("unexpected check output: " + sys.argv[1])
print({"held": m[1], "reused": m[2], "made": m[3]}[sys.argv[2]])
P
}
probe() { run_a python3 "$PROBE" "$B4" 7970 "$@"; }

# 1. reuse within one process
a0=$(spares_of "$A_SOCK" reused); b0=$(spares_of "$B_SOCK" reused)
probe seq 10 >"$WORK/p1.out" 2>&1 || fail "1: probe failed: $(tail -3 "$WORK/p1.out")"
a1=$(spares_of "$A_SOCK" reused); b1=$(spares_of "$B_SOCK" reused)
expect "1: connections of one process that reused its memory (tund A)" $((a1 - a0)) 9
[ $((b1 - b0)) -ge 8 ] || fail "1: tund B reused the listener's memory for only $((b1 - b0)) of 10 connections"
note "1. 10 connections: tund A reused 9, tund B $((b1 - b0))"

# 2. another process never gets this one's spare; spares go with their owner
run_a python3 "$PROBE" "$B4" 7970 hold 4 >"$WORK/p2h.out" 2>&1 & holder=$!
on_exit "kill $holder"
for _ in $(seq 1 100); do grep -q holding "$WORK/p2h.out" && break; sleep 0.05; done
grep -q holding "$WORK/p2h.out" || fail "2: the holder did not start: $(cat "$WORK/p2h.out")"
h=$(spares_of "$A_SOCK" held)
[ "$h" -ge 1 ] || fail "2: the holder's closed connection left no spare (held $h)"
a0=$(spares_of "$A_SOCK" reused)
probe seq 3 >"$WORK/p2.out" 2>&1 || fail "2: probe failed: $(tail -3 "$WORK/p2.out")"
a1=$(spares_of "$A_SOCK" reused)
expect "2: reused by a second process making 3 connections (its own 2; none of the holder's)" $((a1 - a0)) 2
wait $holder
sleep 0.3
expect "2: spares held once both processes are gone" "$(spares_of "$A_SOCK" held)" 0
note "2. a second process reused only its own; spares dropped with their owners"

# 3. fork
a0=$(spares_of "$A_SOCK" reused)
probe fork >"$WORK/p3.out" 2>&1 || fail "3: probe failed: $(tail -3 "$WORK/p3.out")"
a1=$(spares_of "$A_SOCK" reused)
expect "3: reused after a socket a child inherited was closed" $((a1 - a0)) 0
probe forkmaps >"$WORK/p3m.out" 2>&1 || fail "3: forkmaps failed: $(tail -3 "$WORK/p3m.out")"
pm=$(awk '$1 == "parent" { print $2 }' "$WORK/p3m.out"); cm=$(awk '$1 == "child" { print $2 }' "$WORK/p3m.out")
[ -n "$pm" ] && [ "$pm" -ge 1 ] || fail "3: the parent kept no mapping after closing 3 connections: $(cat "$WORK/p3m.out")"
expect "3: socket memory mappings in a child forked with $pm kept ones" "$cm" 0
note "3. fork: inherited socket not reused; child had $cm of the parent's $pm kept mappings"

# 4. SCM_RIGHTS: the receiving process attaches; the memory is never reused
run_a python3 "$PROBE" "$B4" 7970 recv "$WORK/pass.sock" >"$WORK/p4r.out" 2>&1 & rcv=$!
on_exit "kill $rcv"
a0=$(spares_of "$A_SOCK" reused)
probe pass "$WORK/pass.sock" >"$WORK/p4.out" 2>&1 || fail "4: probe failed: $(tail -3 "$WORK/p4.out") $(cat "$WORK/p4r.out")"
wait $rcv || fail "4: receiver failed: $(cat "$WORK/p4r.out")"
a1=$(spares_of "$A_SOCK" reused)
expect "4: reused after a socket another process attached to was closed" $((a1 - a0)) 0
note "4. a socket passed with SCM_RIGHTS is not reused"

for side in A B; do
  sock=$A_SOCK; [ $side = B ] && sock=$B_SOCK
  out=$("$BUILD/enoctl" --socket "$sock" check 2>&1) || fail "tund $side: enoctl check: $out"
done
tund_alive a || fail "tund A died"
tund_alive b || fail "tund B died"
expect_done
