#!/usr/bin/env bash
# half-close: SHUT_WR both ways (client and accepted sockets, v4/v6),
# SHUT_RD, errors: tests/progs/sem_shutdown.c
. "$(dirname "$0")/lib.sh"
topo_up
sem sem_shutdown
wait_count "$A_SOCK" 0 10
