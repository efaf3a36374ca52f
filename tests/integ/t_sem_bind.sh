#!/usr/bin/env bash
# bind/listen rules: EADDRINUSE, immediate re-bind after close, EINVAL,
# EADDRNOTAVAIL, lwIP's address: tests/progs/sem_bind.c
. "$(dirname "$0")/lib.sh"
topo_up
sem sem_bind
wait_count "$A_SOCK" 0 10
