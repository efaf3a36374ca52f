#!/usr/bin/env bash
# 20,000 short connections in a row from behind tund A, each closed by the
# client first (TIME-WAIT on A's side): more than lwIP's 16,384 ephemeral
# ports.  With every TIME-WAIT pcb kept for 60 s the ports run out after
# 16,384 connections; tund's time_wait_max (default 4096, as Linux's
# tcp_max_tw_buckets) frees the oldest so that every connect succeeds.
# Plain TCP (ENO off) keeps it quick; the encrypted path is the same pcb code.
# Ephemeral ports come from lwIP patch 0004's per-port count of listed pcbs
# (no walk over the 4096 TIME-WAIT pcbs per connect): `enoctl check`
# recounts from the lists afterwards, on both tunds.
. "$(dirname "$0")/lib.sh"
topo_up
BENCH="$BUILD/bench/enobench"
[ -x "$BENCH" ] || fail "missing $BENCH (make)"
bg_b "$BENCH" server --bind 0.0.0.0 --port 7960 --threads 1 >"$WORK/srv.out" 2>&1; srv=$!
on_exit "kill $srv"
wait_port 7960
N=20000
in_ns "$ENORUN" --socket "$A_SOCK" --no-eno -- \
  "$BENCH" conn --host "$B4" --port 7960 --count $N --time 600 --no-eno >"$WORK/conn.json" 2>"$WORK/conn.log" ||
  fail "connection loop failed: $(cat "$WORK/conn.json" "$WORK/conn.log" | tail -n 3)"
conns=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["conns"], d["errors"], round(d["rate"]))' "$WORK/conn.json")
set -- $conns
expect "connections made" "$1" "$N"
expect "errors" "$2" 0
note "$1 connections at $3/s"
tund_alive a || fail "tund A died"
for side in A B; do
  sock=$A_SOCK; [ $side = B ] && sock=$B_SOCK
  out=$("$BUILD/enoctl" --socket "$sock" check 2>&1) || fail "tund $side: enoctl check: $out"
  note "tund $side: $out"
  case $out in *"every port's count right"*) ;; *) fail "tund $side: unexpected check output: $out";; esac
done
expect_done
