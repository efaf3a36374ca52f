#!/usr/bin/env bash
# readv/writev, sendmsg/recvmsg, sendto/recvfrom, sendfile, splice, sendmmsg/recvmmsg: tests/progs/sem_iov.c
. "$(dirname "$0")/lib.sh"
topo_up
sem sem_iov
wait_count "$A_SOCK" 0 10
