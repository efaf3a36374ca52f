#!/usr/bin/env bash
# Which TEP TCP-ENO negotiates (RFC 8547 §4.5: the last TEP in B's SYN-form
# option that A also offered; B lists in increasing preference, A's order does
# not matter) with TCP_ENO_TEPS per socket (api-06 §2.1) and eno_teps in
# tund's configuration (§2.2).  Both ends must read the same NEGTEP, the
# session ID begins with it, and the passive opener answers with one TEP.
. "$(dirname "$0")/lib.sh"
topo_up
# tund C: system-wide eno_teps = 21
C_SOCK=$WORK/c.sock C4=10.203.0.2
start_tund c "$C_SOCK" tun-c 10.203.0.1 $C4 fd00:203::1 fd00:203::2 --eno_teps=21
capture tun-a "$WORK/a.pcap"

port=7700
# tep NAME WANT(0x.. | disabled) [SYN-ACK ENO on the wire]: after eno_conn
tep_case() {
  local n=$1 want=$2 wire=${3:-} c=$WORK/$1.cli.out s=$WORK/$1.srv.out
  sed "s/^/    cli| /" "$c"; sed "s/^/    srv| /" "$s"
  expect "$n: data A->B" "$(eno_val "$s" recv)" "hello $n"
  expect "$n: data B->A" "$(eno_val "$c" reply)" "hello $n"
  if [ "$want" = disabled ]; then
    expect "$n: client TCP_ENO_STATE" "$(eno_val "$c" state)" disabled
    expect "$n: server TCP_ENO_STATE" "$(eno_val "$s" state)" disabled
    expect "$n: client TCP_ENO_NEGTEP" "$(eno_val "$c" negtep)" EINVAL
  else
    expect "$n: client TCP_ENO_STATE" "$(eno_val "$c" state)" encrypting
    expect "$n: server TCP_ENO_STATE" "$(eno_val "$s" state)" encrypting
    expect "$n: client TCP_ENO_NEGTEP" "$(eno_val "$c" negtep)" "$want"
    expect "$n: server TCP_ENO_NEGTEP" "$(eno_val "$s" negtep)" "$want"
    expect "$n: session ID's first byte" "$(eno_val "$c" sessid | cut -c1-2)" "${want#0x}"
    expect "$n: session IDs equal" "$(eno_val "$s" sessid)" "$(eno_val "$c" sessid)"
  fi
  [ -n "$wire" ] && expect "$n: SYN-ACK's ENO option on the wire" "$(pcap_eno "$WORK/a.pcap" "$PORT" synack-eno)" "$wire"
  # no resumption between the cases: every SYN offers a fresh key exchange
  enoctl_a flush-cache >/dev/null; enoctl_b flush-cache >/dev/null
  "$BUILD/enoctl" --socket "$C_SOCK" flush-cache >/dev/null
}
next() { port=$((port + 1)); PORT=$port; }

next; SRV_OPTS=(--teps 21,23,24); eno_conn b_prefers_24 $PORT "$B4"
tep_case b_prefers_24 0x24 45040124
next; SRV_OPTS=(--teps 21); eno_conn b_only_21 $PORT "$B4"
tep_case b_only_21 0x21 45040121
next; ESRV_SOCK=$C_SOCK eno_conn cfg_21 $PORT "$C4"
tep_case cfg_21 0x21 45040121
expect "cfg_21: TCP_ENO_TEPS of the accepted socket (tund C's eno_teps)" "$(eno_val "$WORK/cfg_21.srv.out" teps)" 21
next; SRV_ENORUN=(--eno-teps 24); eno_conn enorun_24 $PORT "$B4"
tep_case enorun_24 0x24 45040124
next; CLI_OPTS=(--teps 23); eno_conn a_only_23 $PORT "$B4"
tep_case a_only_23 0x23 45040123
expect "a_only_23: A's SYN ENO option" "$(pcap_eno "$WORK/a.pcap" "$PORT" syn-eno)" 450323
next; CLI_OPTS=(--teps 21,22); eno_conn a_21_22 $PORT "$B4"
tep_case a_21_22 0x21 45040121
# A's order does not matter: B's preference decides (default 21,24,23 -> 24 over 21)
next; CLI_OPTS=(--teps 24,21); eno_conn a_24_21 $PORT "$B4"
tep_case a_24_21 0x24 45040124
next; CLI_OPTS=(--teps 21,24); eno_conn a_21_24 $PORT "$B4"
tep_case a_21_24 0x24 45040124
# no common TEP: plain TCP, both ends disabled
next; SRV_OPTS=(--teps 22); eno_conn none_common $PORT "$B4"
tep_case none_common disabled
expect_match "none_common: B's enoctl reason" "$(eno_status "$WORK/none_common.srv.status" $PORT reason)" "no common"
expect "none_common: A's enoctl eno" "$(eno_status "$WORK/none_common.cli.status" $PORT eno)" disabled
sa=$(pcap_eno "$WORK/a.pcap" "$PORT" synack-eno)
expect_match "none_common: SYN-ACK carries no ENO or a vacuous one with b=1" "$sa" '^(none|4503(01|03))$'
expect "none_common: data is plaintext on the wire" "$(pcap_eno "$WORK/a.pcap" "$PORT" "hello none_common" needle)" found
expect_done
note "ok"
