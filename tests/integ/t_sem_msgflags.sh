#!/usr/bin/env bash
# MSG_PEEK, MSG_DONTWAIT, MSG_WAITALL, MSG_NOSIGNAL, SIGPIPE/EPIPE:
# tests/progs/sem_msgflags.c
. "$(dirname "$0")/lib.sh"
topo_up
sem sem_msgflags
wait_count "$A_SOCK" 0 10
