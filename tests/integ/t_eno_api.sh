#!/usr/bin/env bash
# The per-connection ENO socket options of draft-ietf-tcpinc-api-06 §2.1 and
# their errors (Table 2), through the shim:
#   - read-only options: ENOTCONN before/while negotiating, EINVAL when ENO is
#     disabled, values when encrypting;
#   - read-write options always read back the written value or the default;
#   - settings after the SYN was sent: EISCONN (also while the SYN is out);
#   - bad values: EINVAL (TEPS with 0x05, 0x85, below 0x20, not implemented;
#     SELF_GOPT out of 0..31, ENABLED out of -1..1);
#   - TCP_ENO_SELF_GOPT's b bit is forced to 1 after listen(), and
#     TCP_ENO_ROLE equals its least significant bit;
#   - an accepted socket reads the settings (TEPS) it negotiated with, i.e.
#     its listener's.
. "$(dirname "$0")/lib.sh"
topo_up
P=$PROGS/eno_probe

# ---- 1. an encrypted connection A -> B, options before, during, after ----------------
CLI_OPTS=(--show-before --check-einval --check-after)
SRV_OPTS=(--show-before --check-after --teps 21,23)
eno_conn enc 7801 "$B4"
c=$WORK/enc.cli.out; s=$WORK/enc.srv.out
sed "s/^/    cli| /" "$c"; sed "s/^/    srv| /" "$s"
expect "client connect" "$(eno_val "$c" connect)" ok
expect "encrypted" "$(eno_val "$c" state)/$(eno_val "$s" state)" encrypting/encrypting
for k in sessid negtep transcript; do
  expect "unconnected socket: TCP_ENO_${k^^} (not yet valid)" "$(eno_val "$c" pre-$k)" ENOTCONN
done
expect "unconnected socket: TCP_ENO_ENABLED default" "$(eno_val "$c" pre-enabled)" -1
expect "unconnected socket: TCP_ENO_TEPS default (tund's eno_teps)" "$(eno_val "$c" pre-teps)" 212423
expect "unconnected socket: TCP_ENO_SELF_GOPT default" "$(eno_val "$c" pre-self-gopt)" 0x00
expect "unconnected socket: TCP_ENO_AA_MANDATORY default" "$(eno_val "$c" pre-aa-mandatory)" 0x00
expect "unconnected socket: TCP_ENO_TEP_MANDATORY default" "$(eno_val "$c" pre-tep-mandatory)" 0x00
expect "unconnected socket: TCP_ENO_RAW default" "$(eno_val "$c" pre-raw)" "(empty)"
for k in 05 85 21-85 1f 30; do
  expect "TCP_ENO_TEPS with $k" "$(eno_val "$c" badteps-$k)" EINVAL
done
expect "TCP_ENO_TEPS unchanged after refused settings" "$(eno_val "$c" teps-after-bad)" 212423
expect "TCP_ENO_SELF_GOPT = 32" "$(eno_val "$c" badgopt-32)" EINVAL
expect "TCP_ENO_SELF_GOPT = -1" "$(eno_val "$c" badgopt-neg)" EINVAL
expect "TCP_ENO_ENABLED = 2" "$(eno_val "$c" badenabled-2)" EINVAL
expect "TCP_ENO_AA_MANDATORY = 2" "$(eno_val "$c" badaamand-2)" EINVAL
expect "TCP_CRYPT_ACONF of odd length" "$(eno_val "$c" badaconf-odd)" EINVAL
expect "TCP_CRYPT_ACONF with an unknown AEAD" "$(eno_val "$c" badaconf-unknown)" EINVAL
expect "TCP_CRYPT_ACONF with 17 AEADs" "$(eno_val "$c" badaconf-17)" EINVAL
expect "TCP_CRYPT_BCONF with an unknown AEAD" "$(eno_val "$c" badbconf-unknown)" EINVAL
for f in "$c" "$s"; do
  w=$([ "$f" = "$c" ] && echo connector || echo acceptor)
  expect "$w: TCP_ENO_TEPS after connect" "$(eno_val "$f" after-teps)" EISCONN
  expect "$w: TCP_ENO_SELF_GOPT after connect" "$(eno_val "$f" after-gopt)" EISCONN
  expect "$w: TCP_ENO_ENABLED after connect" "$(eno_val "$f" after-enabled)" EISCONN
  expect "$w: TCP_ENO_AA_MANDATORY after connect" "$(eno_val "$f" after-aa-mandatory)" EISCONN
  expect "$w: TCP_ENO_ENABLED reads back" "$(eno_val "$f" after-enabled-read)" -1
  expect "$w: TCP_ENO_TEP_MANDATORY reads back" "$(eno_val "$f" after-tep-mandatory-read)" 0x00
done
expect "connector: TCP_ENO_TEPS reads back" "$(eno_val "$c" after-teps-read)" 212423
# the accepted socket negotiated with its listener's settings: it reads them
expect "listener: TCP_ENO_TEPS set" "$(eno_val "$s" set-teps)" ok
expect "acceptor: TCP_ENO_NEGTEP" "$(eno_val "$s" negtep)" 0x23
expect "acceptor: TCP_ENO_TEPS reads the listener's list it negotiated with" "$(eno_val "$s" after-teps-read)" 2123
expect "connector: TCP_ENO_SELF_GOPT" "$(eno_val "$c" self-gopt)" 0x00
expect "connector: TCP_ENO_ROLE = SELF_GOPT & 1" "$(eno_val "$c" role)" 0x00
expect "listener before listen(): TCP_ENO_SELF_GOPT" "$(eno_val "$s" pre-self-gopt)" 0x00
expect "listener after listen(): TCP_ENO_SELF_GOPT (b forced to 1)" "$(eno_val "$s" listen-self-gopt)" 0x01
expect "acceptor: TCP_ENO_ROLE" "$(eno_val "$s" role)" 0x01
expect "acceptor: TCP_ENO_SELF_GOPT (its LSB must equal TCP_ENO_ROLE)" "$(eno_val "$s" self-gopt)" 0x01

# ---- 2. while the SYN is out (nobody answers) ------------------------------------
in_ns iptables -A INPUT -p tcp --dport 7999 -j DROP || fail "iptables"
timeout 30 ip netns exec "$NS" "$ENORUN" --socket "$A_SOCK" -- "$P" pending "$HA4" 7999 >"$WORK/pending.out" 2>&1 ||
  fail "pending: $(cat "$WORK/pending.out")"
f=$WORK/pending.out; sed "s/^/    pending| /" "$f"
expect "nonblocking connect" "$(eno_val "$f" pending-connect)" EINPROGRESS
expect "SYN out: TCP_ENO_STATE" "$(eno_val "$f" pending-state)" 0
for k in sessid negtep role transcript; do
  expect "SYN out: TCP_ENO_${k^^} (negotiating)" "$(eno_val "$f" pending-$k)" ENOTCONN
done
for k in teps gopt enabled aa-mandatory; do
  expect "SYN out: setting $k" "$(eno_val "$f" pending-set-$k)" EISCONN
done
expect "SYN out: TCP_ENO_TEPS reads back" "$(eno_val "$f" pending-teps-read)" 212423

# ---- 3. a disabled connection (plain kernel server) -----------------------------
ip netns exec "$NS" timeout 30 "$P" server 7802 >"$WORK/ksrv.out" 2>&1 &
ks=$!
wait_log "$WORK/ksrv.out" '^listening'
timeout 30 ip netns exec "$NS" "$ENORUN" --socket "$A_SOCK" -- "$P" --check-after --send "hello plain" \
  client "$HB4" 7802 >"$WORK/plain.out" 2>&1 || fail "plain client: $(cat "$WORK/plain.out")"
wait "$ks"
f=$WORK/plain.out; sed "s/^/    plain| /" "$f"
expect "plain: reply" "$(eno_val "$f" reply)" "hello plain"
expect "plain: TCP_ENO_STATE" "$(eno_val "$f" state)" disabled
for k in sessid negtep role peer-gopt self-name peer-name transcript aead; do
  expect "disabled: $k" "$(eno_val "$f" "$k")" EINVAL
done
expect "disabled: TCP_ENO_TEPS reads back (RW option)" "$(eno_val "$f" teps)" 212423
expect "disabled: TCP_ENO_SELF_GOPT reads back (RW option)" "$(eno_val "$f" self-gopt)" 0x00
expect "disabled: TCP_ENO_RAW reads back (RW option)" "$(eno_val "$f" raw)" "(empty)"
expect "disabled: TCP_ENO_TEPS after connect" "$(eno_val "$f" after-teps)" EISCONN
expect "disabled: TCP_ENO_ENABLED after connect" "$(eno_val "$f" after-enabled)" EISCONN
expect_done
note "ok"
