#!/usr/bin/env bash
# connect() outcomes: EINPROGRESS/POLLOUT/SO_ERROR, ECONNREFUSED (kernel and
# lwIP peers), unreachable (no route: ICMP), blackhole (SO_SNDTIMEO,
# poll timeout): tests/progs/sem_connect.c.  Afterwards tund A holds nothing.
. "$(dirname "$0")/lib.sh"
topo_up
in_ns ip route add blackhole 10.204.0.0/24
in_ns ip -6 route add blackhole fd00:204::/64
if [ -n "${T_KERNEL:-}" ]; then export T_NO_BLACKHOLE=1; fi
sem sem_connect "$B4" "$B6"
wait_count "$A_SOCK" 0 10
tund_alive a
