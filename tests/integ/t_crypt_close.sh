#!/usr/bin/env bash
# An encrypted connection the client closes first ends in one exchange:
# A sends its FINp frame and FIN, B answers with its FINp frame and FIN, and
# A acknowledges B's FIN at once (A is in TIME-WAIT by then).  tund once told
# lwIP that callback had aborted the pcb when it had only closed it, so A's
# ACK was never sent: B retransmitted its FIN after a retransmission timeout
# (~1 s), held the connection all that time and then reset it.  Here three
# such connections must show exactly three FINs from B, no RST, and tund B
# must have forgotten them within a second.  Each side's FIN rides on the
# segment of its FINp frame (one segment fewer; and B, whose program closes
# as soon as it reads A's FINp, does not send its FIN before A's has arrived:
# no simultaneous close, so no TIME-WAIT on B's side).
. "$(dirname "$0")/crypt_lib.sh"
topo_up
BENCH="$BUILD/bench/enobench"
bg_b "$BENCH" server --bind 0.0.0.0 --port 7975 --threads 1 >"$WORK/srv.out" 2>&1; srv=$!
on_exit "kill $srv"
wait_port 7975
cap_start close tun-b "tcp port 7975 and tcp[tcpflags] & (tcp-fin|tcp-rst) != 0"
run_a "$BENCH" conn --host "$B4" --port 7975 --count 3 >"$WORK/conn.json" 2>"$WORK/conn.log" ||
  fail "connections failed: $(cat "$WORK/conn.json" "$WORK/conn.log" | tail -n 3)"
enc=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["conns"], d["encrypting"])' "$WORK/conn.json")
expect "connections made, encrypting" "$enc" "3 3"
sleep 1
left=$("$BUILD/enoctl" --socket "$B_SOCK" status | grep -c ":7975 .*10.201" || true)
expect "connections tund B still holds 1 s after the last close" "$left" 0
sleep 2            # a retransmitted FIN would have come by now
cap_stop close
fins=$(tcpdump -nr "$WORK/close.pcap" "src host $B4 and tcp[tcpflags] & tcp-fin != 0" 2>/dev/null | wc -l)
rsts=$(tcpdump -nr "$WORK/close.pcap" "src host $B4 and tcp[tcpflags] & tcp-rst != 0" 2>/dev/null | wc -l)
afins=$(tcpdump -nr "$WORK/close.pcap" "src host $A4 and tcp[tcpflags] & tcp-fin != 0" 2>/dev/null | wc -l)
expect "FINs from A" "$afins" 3
expect "FINs from B (one per connection: none retransmitted)" "$fins" 3
withdata="tcp[tcpflags] & tcp-fin != 0 and ip[2:2] - ((ip[0] & 0xf) << 2) - ((tcp[12] & 0xf0) >> 2) > 0"
afp=$(tcpdump -nr "$WORK/close.pcap" "src host $A4 and $withdata" 2>/dev/null | wc -l)
bfp=$(tcpdump -nr "$WORK/close.pcap" "src host $B4 and $withdata" 2>/dev/null | wc -l)
expect "FINs from A on the segment of the FINp frame" "$afp" 3
expect "FINs from B on the segment of the FINp frame" "$bfp" 3
expect "RSTs from B" "$rsts" 0
note "3 encrypted connections closed client-first: $afins FINs from A, $fins from B, $rsts RST"
expect_done
