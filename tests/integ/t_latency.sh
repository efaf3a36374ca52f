#!/usr/bin/env bash
# Request/response latency between programs behind tund A and tund B
# (pingpong -> echo_srv, IPv4 and IPv6; echo_srv does not set TCP_NODELAY):
# no systematic stalls (see tests/progs/pingpong.c for the bounds).
. "$(dirname "$0")/lib.sh"
topo_up
bg_b "$PROGS/echo_srv" 7950 :: >"$WORK/echo.out" 2>"$WORK/echo.log"; srv=$!
on_exit "kill $srv"
wait_log "$WORK/echo.out" '^listening'
SEM_TIMEOUT=100 sem pingpong "$B4" 7950 30
SEM_TIMEOUT=100 sem pingpong "$B6" 7950 20
