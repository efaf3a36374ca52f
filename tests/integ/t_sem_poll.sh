#!/usr/bin/env bash
# poll, ppoll, select, pselect on shim sockets (timeouts, transitions, EOF,
# listener, POLLRDHUP, signal masks): tests/progs/sem_poll.c
. "$(dirname "$0")/lib.sh"
topo_up
sem sem_poll
