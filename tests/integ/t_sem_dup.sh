#!/usr/bin/env bash
# dup/dup2/dup3/F_DUPFD(_CLOEXEC) of shim sockets: tests/progs/sem_dup.c
. "$(dirname "$0")/lib.sh"
topo_up
sem sem_dup
wait_count "$A_SOCK" 0 10
