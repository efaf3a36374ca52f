#!/usr/bin/env bash
# fork(): shared connections, per-process control connections, last-close
# semantics, inherited listener: tests/progs/sem_fork.c
. "$(dirname "$0")/lib.sh"
topo_up
sem sem_fork
wait_count "$A_SOCK" 0 10
