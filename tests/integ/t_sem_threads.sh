#!/usr/bin/env bash
# 8 threads with a connection each, and one socket shared by a reader and a
# writer thread, through tund A and B to echo_srv: tests/progs/sem_threads.c
. "$(dirname "$0")/lib.sh"
topo_up
bg_b "$PROGS/echo_srv" 7400 >"$WORK/echo.out" 2>"$WORK/echo.log"
srv=$!
wait_log "$WORK/echo.out" '^listening'
sem sem_threads "$B4" 7400
wait_count "$A_SOCK" 0 15
kill "$srv"
