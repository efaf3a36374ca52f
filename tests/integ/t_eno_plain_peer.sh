#!/usr/bin/env bash
# TCP-ENO against legacy (plain kernel) peers (RFC 8547 §4.6 fallback;
# api-06 §2.1 TCP_ENO_TEP_MANDATORY):
#   1. shim client -> kernel server (IPv4, IPv6): a working plain connection,
#      TCP_ENO_STATE disabled, TCP_ENO_SESSID EINVAL, `enoctl status` gives the
#      reason; on the wire: ENO in the SYN only, the data in plaintext
#   2. kernel client -> shim server (through the TUN, and over loopback)
#   3. TCP_ENO_TEP_MANDATORY (socket option, and enorun --eno-mandatory)
#      against the kernel server: connect fails with EPROTONOSUPPORT and
#      nothing is delivered; against an ENO peer it connects, encrypted
#      and on a listener: plain kernel clients are refused
#   4. TCP_ENO_TEP_MANDATORY set on an established plain connection aborts it
. "$(dirname "$0")/lib.sh"
topo_up
capture tun-a "$WORK/a.pcap"
P=$PROGS/eno_probe

kserver() {   # kserver NAME PORT: a plain kernel eno_probe server in $NS
  ip netns exec "$NS" timeout 40 "$P" server "$2" >"$WORK/$1.ksrv.out" 2>&1 &
  KS=$!
  wait_log "$WORK/$1.ksrv.out" '^listening'
}
shim_client() {   # shim_client NAME DEST PORT [eno_probe options...]: on tund A, paused once connected
  local n=$1 dest=$2 port=$3; shift 3
  timeout 40 ip netns exec "$NS" "$ENORUN" --socket "$A_SOCK" "${CLI_ENORUN[@]}" -- "$P" "$@" \
    --pause-file "$WORK/$n.pause" --send "hello $n" client "$dest" "$port" >"$WORK/$n.cli.out" 2>&1 &
  local cp=$!
  wait_log "$WORK/$n.cli.out" '^(paused|done)' 30
  enoctl_a status --json >"$WORK/$n.cli.status"
  touch "$WORK/$n.pause"
  wait "$cp" || echo "client exit $?" >>"$WORK/$n.cli.out"
  sed "s/^/    $n| /" "$WORK/$n.cli.out"
  CLI_ENORUN=()
}

# ---- 1. shim client -> plain kernel server -------------------------------------------
for v in 4 6; do
  n=plain$v port=790$v
  dest=$HB4; [ $v = 6 ] && dest=$HB6
  kserver $n $port
  shim_client $n "$dest" $port
  wait "$KS"
  c=$WORK/$n.cli.out
  expect "$n: connect" "$(eno_val "$c" connect)" ok
  expect "$n: reply" "$(eno_val "$c" reply)" "hello $n"
  expect "$n: kernel server received" "$(eno_val "$WORK/$n.ksrv.out" recv)" "hello $n"
  expect "$n: TCP_ENO_STATE" "$(eno_val "$c" state)" disabled
  expect "$n: TCP_ENO_SESSID" "$(eno_val "$c" sessid)" EINVAL
  expect "$n: TCP_ENO_NEGTEP" "$(eno_val "$c" negtep)" EINVAL
  expect "$n: enoctl eno" "$(eno_status "$WORK/$n.cli.status" $port eno)" disabled
  expect_match "$n: enoctl reason" "$(eno_status "$WORK/$n.cli.status" $port reason)" "without ENO"
  expect "$n: SYN's ENO option" "$(pcap_eno "$WORK/a.pcap" $port syn-eno)" 4505212423
  expect "$n: SYN-ACK's ENO option" "$(pcap_eno "$WORK/a.pcap" $port synack-eno)" none
  expect "$n: third segment's ENO option" "$(pcap_eno "$WORK/a.pcap" $port ack-eno)" none
  expect "$n: plaintext on the wire" "$(pcap_eno "$WORK/a.pcap" $port "hello $n" needle)" found
done

# ---- 2. plain kernel client -> shim server --------------------------------------------
for how in tun loop; do
  n=kcli_$how port=7910; [ $how = loop ] && port=7911
  dest=$B4; [ $how = loop ] && dest=127.0.0.1
  timeout 40 ip netns exec "$NS" "$ENORUN" --socket "$B_SOCK" -- "$P" --pause-file "$WORK/$n.pause" \
    server $port >"$WORK/$n.srv.out" 2>&1 &
  sp=$!
  wait_log "$WORK/$n.srv.out" '^listening'
  ip netns exec "$NS" timeout 40 "$P" --send "hello $n" client "$dest" $port >"$WORK/$n.kcli.out" 2>&1 &
  kc=$!
  wait_log "$WORK/$n.srv.out" '^paused' 30
  enoctl_b status --json >"$WORK/$n.srv.status"
  touch "$WORK/$n.pause"
  wait "$sp"; wait "$kc"
  sed "s/^/    $n| /" "$WORK/$n.srv.out"
  expect "$n: shim server received" "$(eno_val "$WORK/$n.srv.out" recv)" "hello $n"
  expect "$n: kernel client got" "$(eno_val "$WORK/$n.kcli.out" reply)" "hello $n"
  expect "$n: accepted socket's TCP_ENO_STATE" "$(eno_val "$WORK/$n.srv.out" state)" disabled
  expect "$n: accepted socket's TCP_ENO_SESSID" "$(eno_val "$WORK/$n.srv.out" sessid)" EINVAL
  [ $how = tun ] &&
    expect_match "$n: enoctl B reason" "$(eno_status "$WORK/$n.srv.status" $port reason)" "SYN without ENO"
done

# ---- 3. TCP_ENO_TEP_MANDATORY -----------------------------------------------------------
for how in opt enorun; do
  n=mand_$how port=7920; [ $how = enorun ] && port=7921
  kserver $n $port
  if [ $how = opt ]; then shim_client $n "$HB4" $port --mandatory
  else CLI_ENORUN=(--eno-mandatory); shim_client $n "$HB4" $port; fi
  # the kernel never completes the handshake (tund resets it first): no accept
  kill "$KS" 2>/dev/null; wait "$KS" 2>/dev/null
  sed "s/^/    $n-kernel| /" "$WORK/$n.ksrv.out"
  c=$WORK/$n.cli.out
  [ $how = opt ] && expect "$n: setting TCP_ENO_TEP_MANDATORY" "$(eno_val "$c" set-mandatory)" ok
  expect "$n: connect to a plain peer" "$(eno_val "$c" connect)" EPROTONOSUPPORT
  expect "$n: no data delivered to the plain peer" "$(grep -c "hello $n" "$WORK/$n.ksrv.out")" 0
  expect "$n: the text is not on the wire" "$(pcap_eno "$WORK/a.pcap" $port "hello $n" needle)" absent
done
# a direct (loopback) destination is reached with a plain kernel socket: with
# TCP_ENO_TEP_MANDATORY the connection cannot be encrypted and must fail too
n=mand_loop port=7923
kserver $n $port
shim_client $n 127.0.0.1 $port --mandatory
kill "$KS" 2>/dev/null; wait "$KS" 2>/dev/null
expect "$n: connect to a loopback (plain) peer" "$(eno_val "$WORK/$n.cli.out" connect)" EPROTONOSUPPORT
expect "$n: no data delivered to the plain peer" "$(grep -c "hello $n" "$WORK/$n.ksrv.out")" 0
SRV_OPTS=(); CLI_OPTS=(--mandatory); eno_conn mand_eno 7922 "$B4"
expect "mand_eno: mandatory against an ENO peer" "$(eno_val "$WORK/mand_eno.cli.out" state)" encrypting
expect "mand_eno: reply" "$(eno_val "$WORK/mand_eno.cli.out" reply)" "hello mand_eno"

# a listener with TCP_ENO_TEP_MANDATORY: plain kernel clients (through the TUN,
# and over loopback) are refused; the program never receives their data
for how in tun loop; do
  n=mandsrv_$how port=7925; [ $how = loop ] && port=7926
  dest=$B4; [ $how = loop ] && dest=127.0.0.1
  timeout 40 ip netns exec "$NS" "$ENORUN" --socket "$B_SOCK" -- "$P" --mandatory server $port \
    >"$WORK/$n.srv.out" 2>&1 &
  sp=$!
  wait_log "$WORK/$n.srv.out" '^listening'
  ip netns exec "$NS" timeout 20 "$P" --send "hello $n" client "$dest" $port >"$WORK/$n.kcli.out" 2>&1
  sed "s/^/    $n-kernel-client| /" "$WORK/$n.kcli.out" | grep -E 'connect|read|write|reply'
  kill "$sp" 2>/dev/null; wait "$sp" 2>/dev/null
  sed "s/^/    $n-server| /" "$WORK/$n.srv.out" | grep -E 'set-|accept|state|recv|read'
  expect "$n: setting TCP_ENO_TEP_MANDATORY on the listener" "$(eno_val "$WORK/$n.srv.out" set-mandatory)" ok
  expect "$n: the program received nothing from a plain client" "$(grep -c "^recv: hello" "$WORK/$n.srv.out")" 0
  expect "$n: the plain client got no reply" "$(eno_val "$WORK/$n.kcli.out" reply)" ""
done

# ---- 4. TCP_ENO_TEP_MANDATORY on an established plain connection -----------------------
n=mand_after port=7930
kserver $n $port
shim_client $n "$HB4" $port --mandatory-after
wait "$KS"
sed "s/^/    $n-kernel| /" "$WORK/$n.ksrv.out"
c=$WORK/$n.cli.out
expect "$n: connect" "$(eno_val "$c" connect)" ok
expect "$n: connection aborted (no reply)" "$(eno_val "$c" reply)" ""
expect "$n: nothing delivered after the abort" "$(grep -c "hello $n" "$WORK/$n.ksrv.out")" 0
expect_match "$n: the program sees an error" "$(grep -E '^(write|read|after-mandatory-so-error):' "$c" | tr '\n' ' ')" 'E[A-Z]+'
expect_done
note "ok"
