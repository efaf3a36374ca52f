#!/usr/bin/env bash
# What tund leaves on a host (tund/nat.h): its nftables tables and the
# forwarding switches it turned on exist only while it runs.
#   - an administrator's own table (with rules in the same hooks) is the same,
#     byte for byte, before, during and after;
#   - SIGTERM: no enoshim table left, forwarding back to what it was;
#   - kill -9 of tund: its helper sees tund's socket close and cleans up;
#   - kill -9 of tund and helper together: the next tund replaces the stale
#     table, and stopping that one leaves nothing;
#   - two tunds on one host (two TUNs, two addresses): each has its own
#     table; stopping one leaves the other's table and traffic alone, and
#     forwarding stays on until the last one stops.
. "$(dirname "$0")/hosts_lib.sh"
command -v nft >/dev/null || fail "nft not installed (nftables)"
hosts_up

# an administrator's firewall, in the same hooks as tund's chains
on1 nft -f - <<'NFT' || fail "cannot load the admin's ruleset"
table inet admin {
  set allowed { type ipv4_addr; elements = { 10.203.0.2 } }
  chain input { type filter hook input priority 0; policy accept; ip saddr @allowed counter accept; }
  chain forward { type filter hook forward priority 0; policy accept; ct state invalid counter drop; }
  chain post { type nat hook postrouting priority 100; policy accept; }
}
NFT
before=$(ruleset_others $H1)
fwd() { on1 sysctl -n net.ipv4.conf.eno-h1.forwarding; }
fwd6() { on1 sysctl -n net.ipv6.conf.eno-h1.force_forwarding 2>/dev/null || on1 sysctl -n net.ipv6.conf.all.forwarding; }
f0=$(fwd); f60=$(fwd6)
[ "$f0" = 0 ] || fail "test set-up: forwarding already on"

check_clean() {   # check_clean WHAT
  local t
  for _ in $(seq 1 100); do [ "$(enoshim_tables $H1)" = 0 ] && break; sleep 0.05; done
  t=$(on1 nft list tables | grep enoshim)
  [ -z "$t" ] || fail "$1: enoshim tables left: $t"
  [ "$(ruleset_others $H1)" = "$before" ] || fail "$1: the admin's rules changed:
$(diff <(echo "$before") <(ruleset_others $H1))"
  [ "$(fwd)" = "$f0" ] && [ "$(fwd6)" = "$f60" ] || fail "$1: forwarding not restored ($(fwd)/$(fwd6))"
  note "$1: no enoshim table, admin's rules identical, forwarding restored"
}

# ---- SIGTERM -------------------------------------------------------------------
tund_up 1
[ "$(enoshim_tables $H1)" = 2 ] || fail "expected 2 enoshim tables while tund runs"
[ "$(fwd)" = 1 ] || fail "forwarding not switched on"
[ "$(ruleset_others $H1)" = "$before" ] || fail "tund changed the admin's rules"
helper=$(pgrep -P "$TUND1" -x tund-nat) || fail "no tund-nat helper"
grep -q "^CapEff:.*0000000000001000$" /proc/$helper/status || fail "helper's CapEff: $(grep CapEff /proc/$helper/status)"
grep -q "^NoNewPrivs:.*1" /proc/$helper/status || fail "helper without no_new_privs"
grep -q "^CapEff:.*0000000000000000$" /proc/$TUND1/status || fail "tund kept capabilities: $(grep CapEff /proc/$TUND1/status)"
kill -TERM "$TUND1"; wait "$TUND1" 2>/dev/null
check_clean "SIGTERM"

# ---- kill -9 of tund alone -------------------------------------------------------
tund_up 1
helper=$(pgrep -P "$TUND1" -x tund-nat) || fail "no tund-nat helper"
kill -9 "$TUND1"; wait "$TUND1" 2>/dev/null
for _ in $(seq 1 100); do kill -0 "$helper" 2>/dev/null || break; sleep 0.05; done
kill -0 "$helper" 2>/dev/null && fail "the helper outlived tund's kill -9"
check_clean "kill -9 of tund"

# ---- kill -9 of both: the next start replaces the stale state ---------------------
tund_up 1
helper=$(pgrep -P "$TUND1" -x tund-nat) || fail "no tund-nat helper"
kill -9 "$helper" "$TUND1"; wait "$TUND1" 2>/dev/null
[ "$(enoshim_tables $H1)" = 2 ] || fail "expected the stale tables after kill -9 of both"
stale=$(on1 nft list table inet enoshim-enotun0 | grep -o 'tund pid [0-9]*')
tund_up 1
now=$(on1 nft list table inet enoshim-enotun0 | grep -o 'tund pid [0-9]*')
[ "$now" = "tund pid $TUND1" ] && [ "$now" != "$stale" ] || fail "stale table not replaced ($stale -> $now)"
[ "$(on1 nft list set inet enoshim tuns | grep -c enotun0)" = 1 ] || fail "the TUN is listed twice"
kill -TERM "$TUND1"; wait "$TUND1" 2>/dev/null
check_clean "restart after kill -9 of tund and helper, then SIGTERM"

# ---- two tunds on one host ---------------------------------------------------------
tund_up 1
S1b=$WORK/h1b.sock
ip netns exec "$H1" "$BUILD/tund" --socket="$S1b" --tun=enotun1 --host_ipv4=10.78.0.1/24 --lwip_ipv4=10.78.0.2 \
  --host_ipv6=fd7e:e1::1/64 --lwip_ipv6=fd7e:e1::2 >"$WORK/tund-1b.log" 2>&1 &
t1b=$!
HOST_PIDS+=($t1b)
wait_log "$WORK/tund-1b.log" "ready:" 10
[ "$(enoshim_tables $H1)" = 3 ] || fail "two tunds: expected 3 enoshim tables, $(on1 nft list tables)"
tund_up 2
on2 socat TCP-LISTEN:7300,reuseaddr,fork EXEC:cat >/dev/null 2>&1 &
on_exit "kill $!"
for _ in $(seq 1 100); do on2 ss -Hltn 'sport = :7300' | grep -q . && break; sleep 0.05; done
out=$(echo -n second | timeout 10 ip netns exec "$H1" "$ENORUN" --socket "$S1b" -- socat -t 2 - TCP:$IP2:7300 2>&1)
[ "$out" = second ] || fail "the second tund of host 1 does not reach host 2: '$out'"
kill -TERM "$TUND1"; wait "$TUND1" 2>/dev/null
on1 nft list table inet enoshim-enotun1 >/dev/null 2>&1 || fail "stopping tund 1 removed the other tund's table"
[ "$(fwd)" = 1 ] || fail "forwarding switched off while another tund still runs"
out=$(echo -n still | timeout 10 ip netns exec "$H1" "$ENORUN" --socket "$S1b" -- socat -t 2 - TCP:$IP2:7300 2>&1)
[ "$out" = still ] || fail "the second tund's traffic broke when the first stopped: '$out'"
note "two tunds on host 1: separate tables, one stopping leaves the other working"
kill -TERM "$t1b"; wait "$t1b" 2>/dev/null
check_clean "last of two tunds stopped"
echo ok
