#!/usr/bin/env bash
# epoll (level/edge-triggered, EPOLLOUT after the peer reads, EPOLLRDHUP,
# EPOLLONESHOT, listener) on shim sockets: tests/progs/sem_epoll.c
. "$(dirname "$0")/lib.sh"
topo_up
sem sem_epoll
