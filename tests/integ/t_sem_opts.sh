#!/usr/bin/env bash
# ioctl FIONREAD/FIONBIO, getsockname/getpeername (v4, v6, v4-mapped),
# getsockopt/setsockopt round trips: tests/progs/sem_opts.c
. "$(dirname "$0")/lib.sh"
topo_up
sem sem_opts
wait_count "$A_SOCK" 0 10
