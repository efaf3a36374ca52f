#!/usr/bin/env bash
# close_range()/closefrom() in a shim'd program, then new sockets still work:
# tests/progs/sem_close_range.c
. "$(dirname "$0")/lib.sh"
topo_up
sem sem_close_range
wait_count "$A_SOCK" 0 10
