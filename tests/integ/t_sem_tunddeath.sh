#!/usr/bin/env bash
# What a program sees on its connections when tund dies (SIGKILL), against
# what Linux gives for a connection the peer resets (tests/progs/
# sem_tunddeath.c; T_KERNEL=1 runs it with kernel sockets, the peer
# resetting): a blocked read() and a first read() say ECONNRESET, then end
# of file; bytes that had arrived come first; SO_ERROR says it once; a write
# after that says EPIPE; poll() reports POLLIN and POLLHUP.
. "$(dirname "$0")/lib.sh"
topo_up
if [ -n "${T_KERNEL:-}" ]; then
  sem sem_tunddeath
  echo ok
  exit 0
fi
out=$WORK/sem_tunddeath.out
timeout 60 ip netns exec "$NS" "$ENORUN" --socket "$A_SOCK" -- "$PROGS/sem_tunddeath" "$WORK/ready" "$WORK/go" \
  >"$out" 2>&1 &
p=$!
for _ in $(seq 1 400); do [ -e "$WORK/ready" ] && break; kill -0 "$p" 2>/dev/null || break; sleep 0.05; done
[ -e "$WORK/ready" ] || fail "sem_tunddeath did not get ready: $(cat "$out")"
kill -9 "$(tund_pid a)"
sleep 0.3
touch "$WORK/go"
rc=0; wait "$p" || rc=$?
sed 's/^/    | /' "$out"
[ $rc -eq 0 ] && [ "$(tail -n 1 "$out")" = ok ] || fail "sem_tunddeath failed (exit $rc): $(grep -m3 '^FAIL' "$out")"
note "sem_tunddeath: ok"
tund_alive b
echo ok
