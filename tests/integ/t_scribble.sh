#!/usr/bin/env bash
# A program that writes garbage into its rings' shared memory (rx_cons,
# tx_prod, the whole header, hand-shake words): tund resets that connection
# only, stays up, and an ongoing transfer of another program completes intact.
. "$(dirname "$0")/lib.sh"
topo_up
ongoing_start 7500
sem scribble
tund_alive a; tund_alive b
ongoing_check
wait_count "$A_SOCK" 0 15
grep -q "impossible" "$WORK/tund-a.log" || note "(tund A logged no 'impossible index' warning)"
