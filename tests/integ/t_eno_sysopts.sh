#!/usr/bin/env bash
# The system-wide TCP-ENO settings of draft-ietf-tcpinc-api-06 §2.2 (tund's
# configuration) and the per-socket TCP_ENO_ENABLED that overrides them:
#   tund A: eno_bad_connect_ports=7401    tund B: eno_bad_listen_ports=7402
#   tund C: eno_enable_connect=0, eno_enable_listen=0
# A disabled side sends no ENO option (or a vacuous one), the other side falls
# back, the connection works as plain TCP; `enoctl status` gives the reason.
. "$(dirname "$0")/lib.sh"
TUND_A_ARGS="--eno_bad_connect_ports=7401" TUND_B_ARGS="--eno_bad_listen_ports=7402" topo_up
C_SOCK=$WORK/c.sock C4=10.203.0.2
start_tund c "$C_SOCK" tun-c 10.203.0.1 $C4 fd00:203::1 fd00:203::2 --eno_enable_connect=0 --eno_enable_listen=0
capture tun-a "$WORK/a.pcap"
capture tun-c "$WORK/c.pcap"

outcome() {   # outcome NAME PORT encrypting|disabled [CLIENT_REASON_RE SERVER_REASON_RE]
  local n=$1 port=$2 want=$3 c=$WORK/$1.cli.out s=$WORK/$1.srv.out
  sed "s/^/    $n cli| /" "$c" | grep -E 'set-|connect|state|negtep|reply'
  sed "s/^/    $n srv| /" "$s" | grep -E 'set-|state|negtep|recv'
  expect "$n: data" "$(eno_val "$s" recv)/$(eno_val "$c" reply)" "hello $n/hello $n"
  expect "$n: client TCP_ENO_STATE" "$(eno_val "$c" state)" "$want"
  expect "$n: server TCP_ENO_STATE" "$(eno_val "$s" state)" "$want"
  if [ $# -ge 4 ]; then
    expect_match "$n: client's enoctl reason" "$(eno_status "$WORK/$n.cli.status" "$port" reason)" "$4"
    expect_match "$n: server's enoctl reason" "$(eno_status "$WORK/$n.srv.status" "$port" reason)" "$5"
  fi
}
NOENO='^(none|45020?1?)$'   # no ENO option, or a vacuous one (45 02 / 45 03 01)

# ---- eno_bad_connect_ports (tund A) ----------------------------------------------
eno_conn badc 7401 "$B4"
outcome badc 7401 disabled "configuration" "SYN without ENO"
expect_match "badc: A's SYN (bad connect port)" "$(pcap_eno "$WORK/a.pcap" 7401 syn-eno)" "$NOENO"
CLI_OPTS=(--enabled 1); eno_conn badc_override 7401 "$B4"
outcome badc_override 7401 encrypting
eno_conn goodc 7400 "$B4"
outcome goodc 7400 encrypting

# ---- eno_bad_listen_ports (tund B) -----------------------------------------------
eno_conn badl 7402 "$B4"
outcome badl 7402 disabled "without ENO" "configuration"
expect_match "badl: A's SYN offers TEPs (maybe resumption)" "$(pcap_eno "$WORK/a.pcap" 7402 syn-eno)" '^45(0521242|162124a3)'
expect "badl: B's SYN-ACK (bad listen port)" "$(pcap_eno "$WORK/a.pcap" 7402 synack-eno)" none
SRV_OPTS=(--enabled 1); eno_conn badl_override 7402 "$B4"
outcome badl_override 7402 encrypting

# ---- eno_enable_connect=0 / eno_enable_listen=0 (tund C) --------------------------
ECLI_SOCK=$C_SOCK eno_conn noconnect 7403 "$B4"
outcome noconnect 7403 disabled "configuration" "SYN without ENO"
expect_match "noconnect: C's SYN" "$(pcap_eno "$WORK/c.pcap" 7403 syn-eno)" "$NOENO"
CLI_OPTS=(--enabled 1); ECLI_SOCK=$C_SOCK eno_conn noconnect_override 7404 "$B4"
outcome noconnect_override 7404 encrypting
ESRV_SOCK=$C_SOCK eno_conn nolisten 7405 "$C4"
outcome nolisten 7405 disabled "without ENO" "configuration"
expect "nolisten: C's SYN-ACK" "$(pcap_eno "$WORK/a.pcap" 7405 synack-eno)" none
SRV_OPTS=(--enabled 1); ESRV_SOCK=$C_SOCK eno_conn nolisten_override 7406 "$C4"
outcome nolisten_override 7406 encrypting

# ---- per socket: TCP_ENO_ENABLED=0, enorun --no-eno, an empty TCP_ENO_TEPS ----------
CLI_OPTS=(--enabled 0); eno_conn sock_off 7407 "$B4"
outcome sock_off 7407 disabled "configuration" "SYN without ENO"
expect_match "sock_off: A's SYN" "$(pcap_eno "$WORK/a.pcap" 7407 syn-eno)" "$NOENO"
CLI_ENORUN=(--no-eno); eno_conn noeno 7408 "$B4"
outcome noeno 7408 disabled "configuration" "SYN without ENO"
SRV_ENORUN=(--no-eno); eno_conn noeno_srv 7409 "$B4"
outcome noeno_srv 7409 disabled "without ENO" "configuration"
CLI_OPTS=(--teps ""); eno_conn emptyteps 7410 "$B4"
expect "emptyteps: setting an empty TCP_ENO_TEPS" "$(eno_val "$WORK/emptyteps.cli.out" set-teps)" ok
outcome emptyteps 7410 disabled
expect_match "emptyteps: A's SYN" "$(pcap_eno "$WORK/a.pcap" 7410 syn-eno)" "$NOENO"
expect_done
note "ok"
