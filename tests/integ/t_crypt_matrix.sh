#!/usr/bin/env bash
# tcpcrypt cross-check matrix (RFC 8548): every key agreement TEP
# (0x21 P-256, 0x22 P-521, 0x23 X25519, 0x24 X448) x every AEAD (AES-128-GCM
# 0x0001, AES-256-GCM 0x0002, ChaCha20-Poly1305 0x0010) on a real connection
# between tund A and tund B, 256 KiB each way, captured on tun-a.  The
# independent decoder (scripts/enodump with A's key log) must recover exactly
# the bytes both programs sent and derive the session ID both programs read
# with TCP_ENO_SESSID; its AEAD must be TCP_CRYPT_CONF's.
#
# One topology for all twelve: the TEP and AEAD are chosen per socket, half
# of the cases on A's side (A offers only that TEP / AEAD, B accepts all),
# half on B's side (A offers all; the listener's TCP_ENO_TEPS holds one TEP
# and its TCP_CRYPT_BCONF puts the AEAD last, B's preference, §3.3).  The
# resumption cache is off (every connection is a fresh key exchange).  One
# more connection over IPv6.
. "$(dirname "$0")/crypt_lib.sh"

KEYLOG=$WORK/keylog
keylog_new "$KEYLOG"
ALL_AEADS=aes128gcm,aes256gcm,chacha20poly1305
TUND_A_ARGS="--keylog=$KEYLOG" topo_up --eno_teps=21,22,23,24 --crypt_aconf=$ALL_AEADS \
  --crypt_bconf=$ALL_AEADS --resume_cache_size=0
cap_start m tun-a tcp

SIZE=256K
want_ab=$("$CP" sha $SIZE --seed 11)
want_ba=$("$CP" sha $SIZE --seed 22)

cases=()
for tep in 21 22 23 24; do
  for aead in 0001 0002 0010; do cases+=("$tep:$aead"); done
done

# servers first (one per case: the listener carries the case's B settings)
i=0
for c in "${cases[@]}"; do
  tep=${c%%:*} aead=${c##*:}
  if [ $((i % 2)) -eq 0 ]; then
    peer_bg srv$i b server $((7100 + i)) --send $SIZE --seed 22 --verify 11
  else
    others=$(printf '%s\n' 0001 0002 0010 | grep -v "^$aead$" | paste -sd,)
    peer_bg srv$i b server $((7100 + i)) --send $SIZE --seed 22 --verify 11 --teps "$tep" \
      --bconf "$others,$aead"
  fi
  i=$((i + 1))
done
peer_bg srvv6 b server 7199 -6 --send $SIZE --seed 22 --verify 11

i=0
for c in "${cases[@]}"; do
  tep=${c%%:*} aead=${c##*:}
  if [ $((i % 2)) -eq 0 ]; then
    peer_run cli$i a client "$B4" $((7100 + i)) --send $SIZE --seed 11 --verify 22 --teps "$tep" --aconf "$aead"
  else
    peer_run cli$i a client "$B4" $((7100 + i)) --send $SIZE --seed 11 --verify 22 --noresume
  fi
  expect_rc cli$i 0
  peer_wait srv$i
  expect_rc srv$i 0
  i=$((i + 1))
done
peer_run cliv6 a client "$B6" 7199 --send $SIZE --seed 11 --verify 22 --teps 23 --aconf 0010
expect_rc cliv6 0
peer_wait srvv6
expect_rc srvv6 0
cap_stop m
dump m "$KEYLOG"
[ $DUMP_RC -eq 0 ] || fail "enodump reports errors: $(head -c 1500 "$WORK/enodump-m.log")"

check() {   # check NAME TEP AEAD
  local n=$1 tep=$2 aead=$3 cl sl q src sid
  cl=$(conn_line "$WORK/cli$n.out" 1) || exit 1
  sl=$(conn_line "$WORK/srv$n.out" 1) || exit 1
  src=$(kv "$cl" local)
  q=$(q_line m "$src") || exit 1
  sid=$(kv "$cl" sessid)
  [ "$(kv "$cl" state)" = 1 ] || fail "$n: client not encrypting: $cl"
  [ "$(kv "$cl" role)/$(kv "$sl" role)" = A/B ] || fail "$n: roles: $cl / $sl"
  [ "$(kv "$cl" negtep)" = "0x$tep" ] || fail "$n: client TCP_ENO_NEGTEP $(kv "$cl" negtep), expected 0x$tep"
  [ "$(kv "$sl" negtep)" = "0x$tep" ] || fail "$n: server TCP_ENO_NEGTEP $(kv "$sl" negtep), expected 0x$tep"
  [ "$(kv "$cl" aead)" = "0x$aead" ] || fail "$n: client TCP_CRYPT_CONF $(kv "$cl" aead), expected 0x$aead"
  [ "$(kv "$sl" aead)" = "0x$aead" ] || fail "$n: server TCP_CRYPT_CONF $(kv "$sl" aead), expected 0x$aead"
  [ ${#sid} -eq 66 ] && [ "${sid:0:2}" = "$tep" ] || fail "$n: client session ID '$sid' (want TEP byte + 32 bytes)"
  [ "$(kv "$sl" sessid)" = "$sid" ] || fail "$n: session IDs differ: client $sid server $(kv "$sl" sessid)"
  [ "$(kv "$q" sessid)" = "$sid" ] || fail "$n: enodump derives session ID $(kv "$q" sessid), programs read $sid"
  [ "$(kv "$q" tep)" = "$tep" ] || fail "$n: enodump TEP $(kv "$q" tep), expected $tep"
  [ "$(kv "$q" aead)" = "$aead" ] || fail "$n: enodump AEAD $(kv "$q" aead), TCP_CRYPT_CONF 0x$aead"
  [ "$(kv "$q" resumed)/$(kv "$q" init1)/$(kv "$q" init2)" = 0/1/1 ] ||
    fail "$n: expected a fresh key exchange with Init1/Init2: $q"
  [ "$(xfer_line "$WORK/cli$n.out" sent 1)" = "262144 $want_ab" ] || fail "$n: client sent $(xfer_line "$WORK/cli$n.out" sent 1)"
  [ "$(xfer_line "$WORK/srv$n.out" recv 1)" = "262144 $want_ab" ] || fail "$n: server received $(xfer_line "$WORK/srv$n.out" recv 1)"
  [ "$(xfer_line "$WORK/srv$n.out" sent 1)" = "262144 $want_ba" ] || fail "$n: server sent $(xfer_line "$WORK/srv$n.out" sent 1)"
  [ "$(xfer_line "$WORK/cli$n.out" recv 1)" = "262144 $want_ba" ] || fail "$n: client received $(xfer_line "$WORK/cli$n.out" recv 1)"
  [ "$(kv "$q" a2b_bytes) $(kv "$q" a2b_sha)" = "262144 $want_ab" ] ||
    fail "$n: enodump A->B plaintext $(kv "$q" a2b_bytes) $(kv "$q" a2b_sha), the client sent 262144 $want_ab"
  [ "$(kv "$q" b2a_bytes) $(kv "$q" b2a_sha)" = "262144 $want_ba" ] ||
    fail "$n: enodump B->A plaintext $(kv "$q" b2a_bytes) $(kv "$q" b2a_sha), the server sent 262144 $want_ba"
  [ "$(kv "$q" a2b_fin)/$(kv "$q" b2a_fin)" = 1/1 ] || fail "$n: FINp not seen in both directions: $q"
  [ "$(kv "$q" errors)" = 0 ] || fail "$n: enodump errors on this connection: $q"
}

i=0
for c in "${cases[@]}"; do
  check $i "${c%%:*}" "${c##*:}"
  note "TEP 0x${c%%:*} AEAD 0x${c##*:} ($([ $((i % 2)) -eq 0 ] && echo "chosen by A" || echo "chosen by B")): ok"
  i=$((i + 1))
done
check v6 23 0010
note "IPv6, TEP 0x23 AEAD 0x0010: ok"
[ "$(grep -c . "$WORK/m.q")" -eq 13 ] || fail "expected 13 connections in the capture, enodump saw $(grep -c . "$WORK/m.q")"
wait_count "$A_SOCK" 0
wait_count "$B_SOCK" 0
note "ok ($SECONDS s)"
