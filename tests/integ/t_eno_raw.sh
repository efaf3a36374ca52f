#!/usr/bin/env bash
# TCP_ENO_RAW (draft-ietf-tcpinc-api-06 §2.1): two programs that implement a
# TEP themselves set the raw ENO option contents; the stack negotiates on the
# TEP id (here 0x30, which tund does not implement), sends the minimal 45 02
# in A's third segment, and then carries the data unmodified.  Only
# TCP_ENO_TRANSCRIPT works in raw mode: both ends read the same transcript,
# equal to the SYN and SYN-ACK ENO options on the wire; NEGTEP and SESSID
# fail.  TCP_ENO_ENABLED = 0 does not turn raw mode off.  Mismatched raw
# TEPs: negotiation fails, plain TCP.
. "$(dirname "$0")/lib.sh"
topo_up
capture tun-a "$WORK/a.pcap"

# ---- same TEP id --------------------------------------------------------------------
CLI_OPTS=(--raw 30); SRV_OPTS=(--raw 0130); eno_conn raw 7851 "$B4"
c=$WORK/raw.cli.out s=$WORK/raw.srv.out
sed "s/^/    cli| /" "$c"; sed "s/^/    srv| /" "$s"
expect "raw: setting TCP_ENO_RAW" "$(eno_val "$c" set-raw)/$(eno_val "$s" set-raw)" ok/ok
expect "raw: data A->B unmodified" "$(eno_val "$s" recv)" "hello raw"
expect "raw: data B->A unmodified" "$(eno_val "$c" reply)" "hello raw"
syn=$(pcap_eno "$WORK/a.pcap" 7851 syn-eno); synack=$(pcap_eno "$WORK/a.pcap" 7851 synack-eno)
expect "raw: A's SYN carries the raw option" "$syn" 450330
expect "raw: B's SYN-ACK carries the raw option" "$synack" 45040130
expect "raw: A's third segment carries the minimal ENO option" "$(pcap_eno "$WORK/a.pcap" 7851 ack-eno)" 4502
expect "raw: the data is on the wire as the programs wrote it" "$(pcap_eno "$WORK/a.pcap" 7851 "hello raw" needle)" found
expect "raw: client TCP_ENO_TRANSCRIPT" "$(eno_val "$c" transcript)" "$syn$synack"
expect "raw: server TCP_ENO_TRANSCRIPT" "$(eno_val "$s" transcript)" "$syn$synack"
for f in "$c" "$s"; do
  w=$([ "$f" = "$c" ] && echo client || echo server)
  expect "raw: $w TCP_ENO_NEGTEP (raw mode)" "$(eno_val "$f" negtep)" EINVAL
  expect "raw: $w TCP_ENO_SESSID (raw mode)" "$(eno_val "$f" sessid)" EINVAL
done
expect_match "raw: enoctl A reason" "$(eno_status "$WORK/raw.cli.status" 7851 reason)" "raw"
expect_match "raw: enoctl B reason" "$(eno_status "$WORK/raw.srv.status" 7851 reason)" "raw"

# ---- TCP_ENO_ENABLED = 0 disables ENO "regardless of any other socket option
# settings except TCP_ENO_RAW" (api-06): raw mode still negotiates
CLI_OPTS=(--enabled 0 --raw 30); SRV_OPTS=(--enabled 0 --raw 0130); eno_conn rawoff 7853 "$B4"
c=$WORK/rawoff.cli.out s=$WORK/rawoff.srv.out
sed "s/^/    cli| /" "$c" | grep -E 'set-|state|transcript|reply'
expect "rawoff: data" "$(eno_val "$s" recv)/$(eno_val "$c" reply)" "hello rawoff/hello rawoff"
expect "rawoff: A's SYN carries the raw option" "$(pcap_eno "$WORK/a.pcap" 7853 syn-eno)" 450330
expect "rawoff: client transcript" "$(eno_val "$c" transcript)" 45033045040130
expect "rawoff: server transcript" "$(eno_val "$s" transcript)" 45033045040130

# ---- different TEP ids ------------------------------------------------------------------
CLI_OPTS=(--raw 30); SRV_OPTS=(--raw 0131); eno_conn rawmis 7852 "$B4"
c=$WORK/rawmis.cli.out s=$WORK/rawmis.srv.out
sed "s/^/    cli| /" "$c"; sed "s/^/    srv| /" "$s"
expect "rawmis: data" "$(eno_val "$s" recv)/$(eno_val "$c" reply)" "hello rawmis/hello rawmis"
expect "rawmis: states" "$(eno_val "$c" state)/$(eno_val "$s" state)" disabled/disabled
expect "rawmis: A's third segment carries no ENO" "$(pcap_eno "$WORK/a.pcap" 7852 ack-eno)" none
expect_done
note "ok"
