#!/usr/bin/env bash
# Mixed peers (plain kernel programs in the namespace, without enorun):
#  1. shim'd client on A -> kernel server on the host addresses 10.202.0.1 /
#     fd00:202::1 (socat writing a file; xfer both ways);
#  2. kernel client -> shim'd server on B via 127.0.0.1 / ::1 (tund's kernel
#     listener bridge);
#  3. kernel client -> shim'd server on B via 10.202.0.2 / fd00:202::2 (lwIP's
#     address, through the kernel's routing and tun-b).
# Every transfer is checked by SHA-256 in both directions.
. "$(dirname "$0")/lib.sh"
topo_up
X=$PROGS/xfer
plain() { timeout 60 ip netns exec "$NS" "$@"; }

# 1a. socat as a plain kernel server on 10.202.0.1, shim'd client on A
head -c 3000000 /dev/urandom >"$WORK/in.bin"
in_ns socat -u TCP-LISTEN:7900,bind=10.202.0.1,reuseaddr OPEN:"$WORK/out.bin",creat,trunc >"$WORK/socat.log" 2>&1 &
sp=$!
wait_listen 7900
timeout 60 ip netns exec "$NS" "$ENORUN" --socket "$A_SOCK" -- socat -u OPEN:"$WORK/in.bin" TCP:10.202.0.1:7900 ||
  fail "shim'd socat client -> kernel socat server failed"
exits_within "$sp" 10 || fail "kernel socat server did not finish"
cmp -s "$WORK/in.bin" "$WORK/out.bin" || fail "shim'd client -> kernel server (socat): file differs"
note "shim'd socat -> kernel socat on 10.202.0.1: ok"

# xfer between a shim'd side and a plain side; both directions checked
pair() {   # pair NAME SERVER_SIDE(shim|plain) BIND CONNECT_ADDR PORT
  local name=$1 side=$2 bind=$3 addr=$4 port=$5
  if [ "$side" = shim ]; then
    bg_b "$X" serve "$port" --bind "$bind" --send 3M --seed 21 >"$WORK/$name-s.out" 2>"$WORK/$name-s.log"
  else
    in_ns "$X" serve "$port" --bind "$bind" --send 3M --seed 21 >"$WORK/$name-s.out" 2>"$WORK/$name-s.log" &
  fi
  local srv=$!
  wait_log "$WORK/$name-s.out" '^listening'
  local rc=0
  if [ "$side" = shim ]; then
    plain "$X" client "$addr" "$port" --send 5M --seed 22 >"$WORK/$name-c.out" 2>"$WORK/$name-c.log" || rc=$?
  else
    timeout 60 ip netns exec "$NS" "$ENORUN" --socket "$A_SOCK" -- "$X" client "$addr" "$port" --send 5M --seed 22 \
      >"$WORK/$name-c.out" 2>"$WORK/$name-c.log" || rc=$?
  fi
  [ $rc -eq 0 ] || fail "$name: client failed ($rc): $(cat "$WORK/$name-c.out" "$WORK/$name-c.log")"
  exits_within "$srv" 20 || fail "$name: server did not finish"
  [ "$EXIT_RC" -eq 0 ] || fail "$name: server failed: $(cat "$WORK/$name-s.out")"
  [ "$(sha_line "$WORK/$name-s.out" recv)" = "5242880 $("$X" sha 5M --seed 22)" ] || fail "$name: server received wrong data"
  [ "$(sha_line "$WORK/$name-c.out" recv)" = "3145728 $("$X" sha 3M --seed 21)" ] || fail "$name: client received wrong data"
  note "$name: ok"
}
# 1b. shim'd client -> plain kernel server on the host addresses
pair "shim client -> kernel server 10.202.0.1" plain 10.202.0.1 10.202.0.1 7901
pair "shim client -> kernel server [fd00:202::1]" plain fd00:202::1 fd00:202::1 7902
# 2. plain client -> shim'd server through tund B's kernel listener (loopback)
pair "kernel client -> shim server via 127.0.0.1" shim 0.0.0.0 127.0.0.1 7903
pair "kernel client -> shim server via [::1]" shim :: ::1 7904
# 3. plain client -> shim'd server at lwIP's address, routed through tun-b
pair "kernel client -> shim server via 10.202.0.2" shim 0.0.0.0 10.202.0.2 7905
pair "kernel client -> shim server via [fd00:202::2]" shim :: fd00:202::2 7906
# 2+3 on one dual-stack listener: v4 via loopback and v6 via lwIP, one after the other
bg_b "$X" serve 7907 --bind :: --count 2 --send 1M --seed 23 >"$WORK/dual.out" 2>"$WORK/dual.log"; dual=$!
wait_log "$WORK/dual.out" '^listening'
plain "$X" client 127.0.0.1 7907 --send 1M --seed 24 >"$WORK/dual-c1.out" 2>&1 || fail "dual-stack listener via 127.0.0.1"
plain "$X" client "$B6" 7907 --send 1M --seed 24 >"$WORK/dual-c2.out" 2>&1 || fail "dual-stack listener via [$B6]"
exits_within "$dual" 20 && [ "$EXIT_RC" -eq 0 ] || fail "dual-stack server failed: $(cat "$WORK/dual.out")"
[ "$(grep -c "^recv 1048576 $("$X" sha 1M --seed 24)" "$WORK/dual.out")" = 2 ] || fail "dual-stack server got wrong data"
note "one dual-stack listener, kernel client via 127.0.0.1 then via [$B6]: ok"
tund_alive a; tund_alive b
wait_count "$A_SOCK" 0 15
wait_count "$B_SOCK" 0 15
note ok
