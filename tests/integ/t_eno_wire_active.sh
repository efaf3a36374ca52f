#!/usr/bin/env bash
# TCP-ENO on the wire, tund as the ACTIVE opener against a hand-made peer
# (scapy, tests/conformance/wire_active.py) on the kernel's side of the TUN:
#   (a)  SYN-ACK without ENO -> no ENO after the SYN, plaintext, ENO disabled
#        (also over IPv6); (c) this is also a middlebox stripping ENO from
#        the SYN-ACK only
#   (b)  valid ENO SYN-ACK (TEP 0x20, and tcpcrypt 0x23) -> ACK carries exactly
#        45 02, and every segment until the peer's first non-SYN segment; with
#        several TEPs in the SYN-ACK the LAST VALID one is negotiated (§4.5)
#   SYN-ACK ENO options that must disable encryption: b = 0, a TEP A did not
#        offer, ill-formed, two ENO options, vacuous -> plain TCP
#   (f)  SYN retransmissions carry a byte-identical ENO option; with
#        --eno_drop_syn_after=2, retransmissions from #2 on carry none
# RFC 8547 §4.1, §4.6, §4.8; api-06 §2.1.
. "$(dirname "$0")/lib.sh"
topo_one
# a second tund (C) on its own TUN, dropping ENO from SYN retransmission #2 on
start_tund c "$WORK/c.sock" tun-c 10.203.0.1 10.203.0.2 fd00:203::1 fd00:203::2 --eno_drop_syn_after=2
drop_kernel_rst tun-a
drop_kernel_rst tun-c

export ENORUN PROBE=$PROGS/eno_probe
export TUN_A=tun-a SOCK_A=$A_SOCK HOST4_A=$HA4 LWIP4_A=$A4 HOST6_A=$HA6 LWIP6_A=$A6
export TUN_C=tun-c SOCK_C=$WORK/c.sock HOST4_C=10.203.0.1 LWIP4_C=10.203.0.2 HOST6_C=fd00:203::1 LWIP6_C=fd00:203::2
timeout 120 ip netns exec "$NS" "$PY" "$CONF_DIR/wire_active.py" "$@" 2>&1 | tee "$WORK/wire.out"
rc=${PIPESTATUS[0]}
[ "$rc" -eq 0 ] || fail "$(grep -E '^FAIL' "$WORK/wire.out" | tr '\n' ' ')${rc:+ (exit $rc)}"
tund_alive a
note "ok"
