#!/usr/bin/env bash
# RFC 8547 §4.6: "Hosts MUST NOT alter SYN-form ENO options in retransmitted
# segments" — also when the SYN carries suboption data that is made per
# connection: a tcpcrypt resumption offer (RFC 8548 §3.5: resume half and a
# fresh nonce).  tund A first gets a cached secret for B (one connection),
# then its next SYN to B is dropped twice (iptables) and retransmitted; every
# SYN must carry the same ENO option, and the connection that finally gets
# through resumes (NEGTEP 0xa3 at both ends, equal session IDs).
. "$(dirname "$0")/lib.sh"
topo_up
capture tun-a "$WORK/a.pcap"

eno_conn first 7951 "$B4"
expect "first: state" "$(eno_val "$WORK/first.cli.out" state)" encrypting

in_ns iptables -I FORWARD -p tcp --dport 7952 --tcp-flags SYN,ACK SYN -j DROP || fail "iptables"
timeout 50 ip netns exec "$NS" "$ENORUN" --socket "$B_SOCK" -- "$PROGS/eno_probe" server 7952 >"$WORK/r.srv.out" 2>&1 &
sp=$!
wait_log "$WORK/r.srv.out" '^listening'
timeout 50 ip netns exec "$NS" "$ENORUN" --socket "$A_SOCK" -- "$PROGS/eno_probe" --send "hello again" \
  client "$B4" 7952 >"$WORK/r.cli.out" 2>&1 &
cp=$!
# until two SYNs were dropped (the first and one retransmission, ~3 s apart)
dropped() { in_ns iptables -L FORWARD -v -x -n | awk '/dpt:7952/ { print $1; exit }'; }
for _ in $(seq 1 300); do [ "$(dropped)" -ge 2 ] 2>/dev/null && break; sleep 0.1; done
[ "$(dropped)" -ge 2 ] || fail "tund A's SYN to port 7952 was not retransmitted within 30 s (dropped: $(dropped))"
in_ns iptables -D FORWARD -p tcp --dport 7952 --tcp-flags SYN,ACK SYN -j DROP
wait "$cp" || fail "client failed: $(cat "$WORK/r.cli.out")"
wait "$sp" || fail "server failed: $(cat "$WORK/r.srv.out")"
sed "s/^/    cli| /" "$WORK/r.cli.out" | grep -E 'connect|state|negtep|sessid|reply'
enos=$(pcap_eno "$WORK/a.pcap" 7952 syn-enos)
note "SYNs' ENO options: $enos"
n=$(echo "$enos" | tr ',' '\n' | grep -c .)
[ "$n" -ge 3 ] || expect "number of SYNs on the wire (2 dropped + 1)" "$n" ">= 3"
expect "every retransmitted SYN carries the same ENO option" "$(echo "$enos" | tr ',' '\n' | sort -u | wc -l)" 1
expect_match "the SYN offers resumption (a3 with data)" "${enos%%,*}" '^45162124a3[0-9a-f]{34}$'
expect "resumed: client NEGTEP" "$(eno_val "$WORK/r.cli.out" negtep)" 0xa3
expect "resumed: server NEGTEP" "$(eno_val "$WORK/r.srv.out" negtep)" 0xa3
expect "resumed: session IDs" "$(eno_val "$WORK/r.srv.out" sessid)" "$(eno_val "$WORK/r.cli.out" sessid)"
expect "resumed: data" "$(eno_val "$WORK/r.cli.out" reply)" "hello again"
expect_done
note "ok"
