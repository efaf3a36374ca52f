#!/usr/bin/env bash
# An established shim socket in a child sandboxed like OpenSSH's
# pre-authentication process (seccomp: read/write/poll and little else),
# blocking and non-blocking, connected and accepted: tests/progs/sem_sandbox.c
. "$(dirname "$0")/lib.sh"
topo_up
sem sem_sandbox
