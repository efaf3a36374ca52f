#!/usr/bin/env bash
# EINTR / SA_RESTART / SO_RCVTIMEO on blocking shim calls: tests/progs/sem_eintr.c
. "$(dirname "$0")/lib.sh"
topo_up
sem sem_eintr
wait_count "$A_SOCK" 0 10
