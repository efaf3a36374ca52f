#!/usr/bin/env bash
# tcpcrypt session resumption (RFC 8548 §3.5) between tund A and tund B, each
# connection checked by the programs (TCP_ENO_NEGTEP's 0x80 bit, session IDs)
# and by enodump on the capture (resumed, no Init messages, the resumption
# identifier, A's SYN offer):
#   1. a second connection between the same hosts resumes, a third resumes
#      with another identifier (ss[i] is used once);
#   2. refusal: TCP_CRYPT_NORESUME on the client (no offer) or on the
#      listener (offer refused), `enoctl flush-cache` on B (offer refused)
#      -> fresh key exchange;
#   3. TCP_CRYPT_CACHE_FLUSH on an established connection (client or server)
#      keeps the next connection from resuming with what it produced;
#   4. TCP_CRYPT_NOCACHE (client or server): nothing cached, next is fresh;
#   5. expiry: tunds restarted with --resume_lifetime=3: a connection right
#      after resumes, one 4 s later is fresh;
#   6. across the whole capture every resumption identifier and every session
#      ID is distinct;
#   7. a SYN (scapy) offering resumption with an identifier half B does not
#      hold, or with under 9 bytes: B answers with a fresh offer (v = 0).
. "$(dirname "$0")/crypt_lib.sh"

KEYLOG=$WORK/keylog
keylog_new "$KEYLOG"
TUND_A_ARGS="--keylog=$KEYLOG"
topo_up
cap_start s tun-a "tcp portrange 7500-7599"

N=0
# conn [client options] [-- server options]: one connection to a fresh
# server on port 7500+N, 64 KiB each way; CL / SL: the programs' conn lines
conn() {
  local copts=() sopts=()
  while [ $# -gt 0 ] && [ "$1" != -- ]; do copts+=("$1"); shift; done
  [ $# -gt 0 ] && shift
  sopts=("$@")
  N=$((N + 1))
  peer_bg s$N b server $((7500 + N)) --send 64K --seed 2 --verify 1 "${sopts[@]}"
  peer_run c$N a client "$B4" $((7500 + N)) --send 64K --seed 1 --verify 2 "${copts[@]}"
  expect_rc c$N 0
  peer_wait s$N
  expect_rc s$N 0
  CL=$(conn_line "$WORK/c$N.out" 1) || exit 1
  SL=$(conn_line "$WORK/s$N.out" 1) || exit 1
  [ "$(kv "$CL" sessid)" = "$(kv "$SL" sessid)" ] || fail "conn $N: session IDs differ: $CL / $SL"
  [ "$(kv "$CL" resumed)" = "$(kv "$SL" resumed)" ] || fail "conn $N: client and server disagree on resumption: $CL / $SL"
  [ "$(kv "$CL" aead)" = "$(kv "$SL" aead)" ] || fail "conn $N: TCP_CRYPT_CONF differs: $CL / $SL"
  SRC[$N]=$(kv "$CL" local)
  WHAT[$N]=$WHY
}
declare -A SRC=() WHAT=() EXPECT=()
# expect N resumed|fresh: what the programs read (checked against the capture later)
expect() {
  local r
  r=$(kv "$(conn_line "$WORK/c$1.out" 1)" resumed) || exit 1
  [ "$2" = resumed ] && [ "$r" != 1 ] && fail "conn $1 (${WHAT[$1]}): not resumed (TCP_ENO_NEGTEP without 0x80): $(conn_line "$WORK/c$1.out" 1)"
  [ "$2" = fresh ] && [ "$r" != 0 ] && fail "conn $1 (${WHAT[$1]}): resumed, expected a fresh key exchange: $(conn_line "$WORK/c$1.out" 1)"
  EXPECT[$1]=$2
  note "conn $1 (${WHAT[$1]}): $2"
}
flush_both() { enoctl_a flush-cache >/dev/null || fail "enoctl flush-cache A"; enoctl_b flush-cache >/dev/null || fail "enoctl flush-cache B"; }

# ---- 1. resume, resume again
WHY="first" conn;                         expect 1 fresh
WHY="second, same hosts" conn;            expect 2 resumed
[ "$(kv "$(conn_line "$WORK/c2.out" 1)" sessid)" != "$(kv "$(conn_line "$WORK/c1.out" 1)" sessid)" ] ||
  fail "resumed connection 2 has connection 1's session ID"
[ "$(kv "$(conn_line "$WORK/c2.out" 1)" aead)" = "$(kv "$(conn_line "$WORK/c1.out" 1)" aead)" ] ||
  fail "resumed connection 2 uses another AEAD than connection 1"
WHY="third" conn;                         expect 3 resumed

# ---- 2. refusal
WHY="client TCP_CRYPT_NORESUME" conn --noresume;   expect 4 fresh
WHY="after a refusal" conn;                        expect 5 resumed
WHY="listener TCP_CRYPT_NORESUME" conn -- --noresume; expect 6 fresh
out=$(enoctl_b flush-cache) || fail "enoctl flush-cache on B: $out"
note "enoctl flush-cache (B): $out"
WHY="B's cache flushed" conn;                      expect 7 fresh

# ---- 3. TCP_CRYPT_CACHE_FLUSH on an established connection
flush_both
WHY="client flushes its state" conn --flush-after; expect 8 fresh
WHY="after client's CACHE_FLUSH" conn;            expect 9 fresh
flush_both
WHY="server flushes its state" conn -- --flush-after; expect 10 fresh
WHY="after server's CACHE_FLUSH" conn;            expect 11 fresh
WHY="and the one after" conn;                     expect 12 resumed

# ---- 4. TCP_CRYPT_NOCACHE
flush_both
WHY="client TCP_CRYPT_NOCACHE" conn --nocache;    expect 13 fresh
WHY="after client's NOCACHE" conn;                expect 14 fresh
flush_both
WHY="listener TCP_CRYPT_NOCACHE" conn -- --nocache; expect 15 fresh
WHY="after server's NOCACHE" conn;                expect 16 fresh
grep -q "^cache-flush .* rc=0$" "$WORK/c8.out" || fail "TCP_CRYPT_CACHE_FLUSH failed: $(grep cache-flush "$WORK/c8.out")"

cap_stop s
dump s "$KEYLOG"
[ $DUMP_RC -eq 0 ] || fail "enodump reports errors: $(head -c 1500 "$WORK/enodump-s.log")"

# ---- 5. expiry (new tunds, empty caches)
restart_tunds --resume_lifetime=3
cap_start x tun-a "tcp portrange 7500-7599"
WHY="lifetime 3 s: first" conn;          expect 17 fresh
WHY="right after" conn;                  expect 18 resumed
sleep 4                                  # let the secret cached by 18 expire
WHY="4 s later" conn;                    expect 19 fresh
cap_stop x
dump x "$KEYLOG"
[ $DUMP_RC -eq 0 ] || fail "enodump reports errors: $(head -c 1500 "$WORK/enodump-x.log")"

# ---- the capture's view of every connection
# offer: whether A's SYN must (1) / must not (0) / may (-) offer resumption
declare -A OFFER=([1]=0 [2]=1 [3]=1 [4]=0 [5]=1 [6]=1 [7]=1 [8]=0 [9]=0 [10]=0 [11]=1 [12]=1
                  [13]=0 [14]=0 [15]=0 [16]=1 [17]=0 [18]=1 [19]=0)
ids=() sids=()
for n in $(seq 1 $N); do
  cap=s
  [ "$n" -ge 17 ] && cap=x
  q=$(q_line $cap "${SRC[$n]}") || exit 1
  cl=$(conn_line "$WORK/c$n.out" 1) || exit 1
  w="conn $n (${WHAT[$n]})"
  [ "$(kv "$q" errors)" = 0 ] || fail "$w: enodump errors: $q"
  [ "$(kv "$q" sessid)" = "$(kv "$cl" sessid)" ] || fail "$w: enodump session ID $(kv "$q" sessid), the programs read $(kv "$cl" sessid)"
  [ "$(kv "$q" a2b_bytes)/$(kv "$q" b2a_bytes)" = 65536/65536 ] || fail "$w: enodump decoded $(kv "$q" a2b_bytes)/$(kv "$q" b2a_bytes) bytes"
  [ "$(kv "$q" a2b_sha)" = "$(xfer_line "$WORK/c$n.out" sent 1 | cut -d' ' -f2)" ] || fail "$w: enodump A->B plaintext differs from what the client sent"
  [ "$(kv "$q" b2a_sha)" = "$(xfer_line "$WORK/s$n.out" sent 1 | cut -d' ' -f2)" ] || fail "$w: enodump B->A plaintext differs from what the server sent"
  [ "$(kv "$q" aead)" = "$(kv "$cl" aead | sed 's/^0x//')" ] || fail "$w: enodump AEAD $(kv "$q" aead), TCP_CRYPT_CONF $(kv "$cl" aead)"
  if [ "${EXPECT[$n]}" = resumed ]; then
    [ "$(kv "$q" resumed)/$(kv "$q" init1)/$(kv "$q" init2)" = 1/0/0 ] ||
      fail "$w: enodump: resumed=$(kv "$q" resumed) init1=$(kv "$q" init1) init2=$(kv "$q" init2), expected a resumed session without Init messages"
    [ "$(kv "$q" resume_id)" != - ] || fail "$w: enodump found no resumption identifier"
    [ $((0x$(kv "$q" tep) & 0x80)) -ne 0 ] || fail "$w: B's SYN-ACK TEP suboption $(kv "$q" tep) lacks the v bit"
    ids+=("$(kv "$q" resume_id)")
  else
    [ "$(kv "$q" resumed)/$(kv "$q" init1)/$(kv "$q" init2)" = 0/1/1 ] ||
      fail "$w: enodump: resumed=$(kv "$q" resumed) init1=$(kv "$q" init1) init2=$(kv "$q" init2), expected a fresh key exchange"
  fi
  [ "${OFFER[$n]}" = - ] || [ "$(kv "$q" a_offer)" = "${OFFER[$n]}" ] ||
    fail "$w: A's SYN $([ "${OFFER[$n]}" = 1 ] && echo "offers no resumption" || echo "offers resumption"), expected the opposite (enodump: syn $(kv "$q" a_offer))"
  sids+=("$(kv "$q" sessid)")
done
note "enodump agrees on all $N connections (resumed ones without Init, A's SYN offers as expected)"
[ "$(printf '%s\n' "${ids[@]}" | sort | uniq -d | wc -l)" -eq 0 ] ||
  fail "a resumption identifier was used twice (§3.5: each ss[i] at most once): $(printf '%s\n' "${ids[@]}" | sort | uniq -d)"
[ "$(printf '%s\n' "${sids[@]}" | sort | uniq -d | wc -l)" -eq 0 ] || fail "two connections share a session ID"
note "${#ids[@]} resumption identifiers, all distinct; ${#sids[@]} session IDs, all distinct"

# The chain of secrets (§3.5: ss[i] = CPRF(ss[i-1], CONST_NEXTK), resume[i]
# from ss[i], the lowest unused i first): decoded again with only the fresh
# sessions' TCPCRYPT_ES lines, enodump must derive every resumed session from
# the session it continues, and name the index.
grep '^TCPCRYPT_ES ' "$KEYLOG" >"$WORK/keylog.es"
ln -s s.pcap "$WORK/s_es.pcap"
ln -s x.pcap "$WORK/x_es.pcap"
dump s_es "$WORK/keylog.es"
[ $DUMP_RC -eq 0 ] || fail "enodump with ES lines only: $(head -c 1500 "$WORK/enodump-s_es.log")"
dump x_es "$WORK/keylog.es"
[ $DUMP_RC -eq 0 ] || fail "enodump with ES lines only: $(head -c 1500 "$WORK/enodump-x_es.log")"
declare -A IDX=([2]=1 [3]=2 [5]=1 [12]=1 [18]=1)
for n in "${!IDX[@]}"; do
  cap=s_es
  [ "$n" -ge 17 ] && cap=x_es
  q=$(q_line $cap "${SRC[$n]}") || exit 1
  [ "$(kv "$q" resume_i)" = "${IDX[$n]}" ] && [ "$(kv "$q" errors)" = 0 ] ||
    fail "conn $n (${WHAT[$n]}): expected to resume with ss[${IDX[$n]}] of the session before it; enodump (ES lines only): resume_i=$(kv "$q" resume_i) $q"
done
note "resumed sessions use ss[1], ss[2], ... of the chain they continue (derived by enodump from the fresh sessions alone)"

# ---- 7. B never agrees to an identifier it does not hold (§3.5)
peer_bg sp b server 7599
for offer in "a3$(head -c 17 /dev/urandom | od -An -tx1 | tr -d ' \n')" a31122 23; do
  ans=$(in_ns "$PY" "$TOP/tests/integ/crypt_synprobe.py" "$HA4" "$B4" 7599 "$offer") || fail "SYN probe failed: $ans"
  [ "$ans" = 45040123 ] ||
    fail "SYN with ENO contents $offer: B's SYN-ACK carries ENO $ans, expected 45040123 (b=1, TEP 0x23 with v=0: fresh key exchange)"
done
note "SYN offering an unknown identifier / a short one: B answers 45 04 01 23 (fresh)"
kill "${PIDS[sp]}" 2>/dev/null
wait "${PIDS[sp]}" 2>/dev/null
wait_count "$A_SOCK" 0
wait_count "$B_SOCK" 0
note "ok ($SECONDS s)"
