#!/usr/bin/env bash
# TCP-ENO on the wire, tund as the PASSIVE opener: a hand-made active opener
# (scapy, tests/conformance/wire_passive.py) on the kernel's side of the TUN
# connects to a program listening under enorun:
#   (c)  ENO stripped from the third segment only -> tund falls back
#   (d)  malformed ENO in the SYN (length byte before 0x00-0x9f, data past the
#        end, two ENO options, equal b bits, option past the header, vacuous)
#        -> SYN-ACK without ENO, a working plain connection
#   (e)  SYN with data: only the ISN is acknowledged, the data never reaches
#        the program
#   global suboption: only the first counts, z bits ignored, the a bit both
#        ways, mandatory application-aware mode (peer a = 0 / a = 1)
#   non-SYN ENO contents ignored; SYN-ACK retransmissions byte-identical
#   and a well-formed negotiation over IPv6 (TEP 0x20) as the control;
#   tw_reopen: a new SYN reopens a 4-tuple tund holds in TIME-WAIT, an old
#   duplicate does not (RFC 1122 §4.2.2.13, lwIP patch 0006).
# RFC 8547 §4.1, §4.2, §4.3, §4.4, §4.6, §4.7, §8.4.
. "$(dirname "$0")/lib.sh"
topo_one
drop_kernel_rst tun-a

export ENORUN ENOCTL=$BUILD/enoctl PROBE=$PROGS/eno_probe
export TUN_A=tun-a SOCK_A=$A_SOCK HOST4_A=$HA4 LWIP4_A=$A4 HOST6_A=$HA6 LWIP6_A=$A6
timeout 120 ip netns exec "$NS" "$PY" "$CONF_DIR/wire_passive.py" "$@" 2>&1 | tee "$WORK/wire.out"
rc=${PIPESTATUS[0]}
[ "$rc" -eq 0 ] || fail "$(grep -E '^FAIL' "$WORK/wire.out" | tr '\n' ' ') (exit $rc)"
tund_alive a
note "ok"
