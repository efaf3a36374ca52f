#!/usr/bin/env bash
# execve() with inherited shim sockets (stream and listener), CLOEXEC,
# O_NONBLOCK, FIN on the last close: tests/progs/sem_exec.c
. "$(dirname "$0")/lib.sh"
topo_up
sem sem_exec
wait_count "$A_SOCK" 0 10
