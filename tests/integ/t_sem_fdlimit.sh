#!/usr/bin/env bash
# socket() and accept() at the program's RLIMIT_NOFILE give the kernel's
# EMFILE, and a connection that found accept() at the limit stays queued and
# is accepted intact later (tests/progs/sem_fdlimit.c), also with
# ENOSHIM_FALLBACK=plain (no plain socket instead of EMFILE).  Afterwards
# tund A holds nothing: the sockets it made for replies the program could
# not take (its limit) were released.
. "$(dirname "$0")/lib.sh"
topo_up
sem sem_fdlimit
if [ -z "${T_KERNEL:-}" ]; then
  wait_count "$A_SOCK" 0 10
  out=$WORK/fallback.out
  rc=0
  timeout 150 ip netns exec "$NS" env ENOSHIM_FALLBACK=plain "$ENORUN" --socket "$A_SOCK" -- \
    "$PROGS/sem_fdlimit" >"$out" 2>&1 || rc=$?
  sed 's/^/    | /' "$out"
  [ $rc -eq 0 ] && [ "$(tail -n 1 "$out")" = ok ] || fail "sem_fdlimit with ENOSHIM_FALLBACK=plain failed (exit $rc)"
  note "sem_fdlimit with ENOSHIM_FALLBACK=plain: ok"
  wait_count "$A_SOCK" 0 10
  grep -q "malformed accept record" "$WORK"/*.out && fail "the shim skipped an accept record"
fi
tund_alive a
echo ok
