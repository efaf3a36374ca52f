#!/usr/bin/env bash
# TCP-ENO end to end between two tunds (RFC 8547 §4.3, §4.5, §4.8, §5.1;
# api-06 §2.1): a program behind tund A connects to one behind tund B, over
# IPv4 and IPv6.  Both ends read the same TCP_ENO_TRANSCRIPT (= the SYN and
# SYN-ACK ENO options on the wire), the same session ID, SELF_NAME at one end
# = PEER_NAME at the other, ROLE A at the connector and B at the acceptor, the
# same NEGTEP; `enoctl status` on both tunds agrees; no plaintext on the wire.
# A third connection resumes the first one's session (RFC 8548 §3.5): B's TEP
# suboption then has v = 1, so NEGTEP and the session ID's first byte carry it
# (api-06 TCP_ENO_NEGTEP; RFC 8547 §5.1).
. "$(dirname "$0")/lib.sh"
topo_up
capture tun-a "$WORK/a.pcap"

check_pair() {   # check_pair NAME PORT [resumed]
  local n=$1 port=$2 c=$WORK/$1.cli.out s=$WORK/$1.srv.out res=${3:-}
  local tep=0x23 tb=23 tn=35
  [ -n "$res" ] && { tep=0xa3; tb=a3; tn=163; }
  sed "s/^/    cli| /" "$c"; sed "s/^/    srv| /" "$s"
  expect "$n: client connect" "$(eno_val "$c" connect)" ok
  expect "$n: client TCP_ENO_STATE" "$(eno_val "$c" state)" encrypting
  expect "$n: server TCP_ENO_STATE" "$(eno_val "$s" state)" encrypting
  expect "$n: connector's TCP_ENO_ROLE (A)" "$(eno_val "$c" role)" 0x00
  expect "$n: acceptor's TCP_ENO_ROLE (B)" "$(eno_val "$s" role)" 0x01
  expect "$n: connector's TCP_ENO_PEER_GOPT" "$(eno_val "$c" peer-gopt)" 0x01
  expect "$n: acceptor's TCP_ENO_PEER_GOPT" "$(eno_val "$s" peer-gopt)" 0x00
  expect "$n: NEGTEP at client" "$(eno_val "$c" negtep)" $tep
  expect "$n: NEGTEP at server" "$(eno_val "$s" negtep)" $tep
  local sid; sid=$(eno_val "$c" sessid)
  expect_match "$n: session ID (TEP byte $tb, then >= 32 bytes)" "$sid" "^$tb([0-9a-f]{2}){32,}\$"
  expect "$n: session IDs equal" "$(eno_val "$s" sessid)" "$sid"
  expect "$n: client SELF_NAME = 00|sessid" "$(eno_val "$c" self-name)" "00$sid"
  expect "$n: server SELF_NAME = 01|sessid" "$(eno_val "$s" self-name)" "01$sid"
  expect "$n: client SELF_NAME = server PEER_NAME" "$(eno_val "$s" peer-name)" "$(eno_val "$c" self-name)"
  expect "$n: server SELF_NAME = client PEER_NAME" "$(eno_val "$c" peer-name)" "$(eno_val "$s" self-name)"
  local tr; tr=$(eno_val "$c" transcript)
  expect "$n: transcripts equal" "$(eno_val "$s" transcript)" "$tr"
  # §4.8: A's SYN ENO option | B's SYN ENO option, exactly as on the wire
  local syn synack ack
  syn=$(pcap_eno "$WORK/a.pcap" "$port" syn-eno)
  synack=$(pcap_eno "$WORK/a.pcap" "$port" synack-eno)
  ack=$(pcap_eno "$WORK/a.pcap" "$port" ack-eno)
  if [ -z "$res" ]; then
    expect "$n: SYN's ENO option on the wire" "$syn" 4505212423
    expect "$n: SYN-ACK's ENO option on the wire (b=1, one TEP)" "$synack" 45040123
  else
    # A: 21 24, then a3 (v = 1) + resume half (9) + nonce (8), last as its data runs
    # to the end of the option; B: 01 a3 + 9 + 8
    expect_match "$n: SYN's ENO option on the wire (resumption offer)" "$syn" '^45162124a3[0-9a-f]{34}$'
    expect_match "$n: SYN-ACK's ENO option on the wire (resumption answer)" "$synack" '^451501a3[0-9a-f]{34}$'
  fi
  expect "$n: third segment's ENO option" "$ack" 4502
  expect "$n: transcript = SYN ENO | SYN-ACK ENO from the wire" "$tr" "$syn$synack"
  expect "$n: plaintext on the wire" "$(pcap_eno "$WORK/a.pcap" "$port" "hello $n" needle)" absent
  expect "$n: server received" "$(eno_val "$s" recv)" "hello $n"
  expect "$n: client received" "$(eno_val "$c" reply)" "hello $n"
  # tund's view
  local sc=$WORK/$n.cli.status ssv=$WORK/$n.srv.status
  expect "$n: enoctl A eno" "$(eno_status "$sc" "$port" eno)" encrypting
  expect "$n: enoctl B eno" "$(eno_status "$ssv" "$port" eno)" encrypting
  expect "$n: enoctl A role" "$(eno_status "$sc" "$port" role)" A
  expect "$n: enoctl B role" "$(eno_status "$ssv" "$port" role)" B
  expect "$n: enoctl A session ID" "$(eno_status "$sc" "$port" session_id)" "$sid"
  expect "$n: enoctl B session ID" "$(eno_status "$ssv" "$port" session_id)" "$sid"
  expect "$n: enoctl A negtep" "$(eno_status "$sc" "$port" negtep)" $tn
  expect "$n: enoctl A tep" "$(eno_status "$sc" "$port" tep)" tcpcrypt-X25519
  expect "$n: enoctl A resumed" "$(eno_status "$sc" "$port" resumed)" "$([ -n "$res" ] && echo True || echo False)"
  expect "$n: enoctl B resumed" "$(eno_status "$ssv" "$port" resumed)" "$([ -n "$res" ] && echo True || echo False)"
}

eno_conn v4 7601 "$B4"
check_pair v4 7601
eno_conn v6 7602 "$B6"
check_pair v6 7602
eno_conn resumed 7603 "$B4"
check_pair resumed 7603 resumed
# every connection has its own session ID
for x in v6 resumed; do
  [ "$(eno_val "$WORK/v4.cli.out" sessid)" != "$(eno_val "$WORK/$x.cli.out" sessid)" ] ||
    expect "v4 and $x connections have different session IDs" same different
done
expect_done
note "ok"
