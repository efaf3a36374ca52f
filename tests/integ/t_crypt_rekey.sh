#!/usr/bin/env bash
# tcpcrypt re-keying (RFC 8548 §3.8) between tund A and tund B:
#   1. TCP_CRYPT_REKEY from both ends mid-stream, data both ways;
#   2. §3.8's answer: a host that receives a rekey=1 frame whose generation
#      passes its own steps and sends a rekey=1 frame (empty if it has no
#      data) — a silent server answers every one of the client's rekeys;
#   3. `enoctl rekey ID` on either host while both programs are paused: the
#      exact number of rekey frames each way is known (2 and 2);
#   4. tund's --rekey_bytes policy (both tunds restarted with it): many
#      re-keys, mixed with explicit ones, over 64 MiB + 16 MiB, SHA-256 checked.
# Everything but the 64 MiB run is captured on tun-a and decoded by enodump
# with A's key log: every tag verifies across the key changes, its rekey
# counts are the ones expected, its plaintext is what the programs sent.
. "$(dirname "$0")/crypt_lib.sh"

KEYLOG=$WORK/keylog
keylog_new "$KEYLOG"
TUND_A_ARGS="--keylog=$KEYLOG"
topo_up --resume_cache_size=0
cap_start r tun-a "tcp port 7401 or tcp port 7402 or tcp port 7403 or tcp port 7404"

rekeys_ok() { grep -c '^rekey .* rc=0$' "$WORK/$1.out" || true; }

# ---- 1. explicit rekeys from both programs, 8 MiB each way
peer_bg s1 b server 7401 --send 8M --seed 2 --verify 1 --rekey-at 1M,3M,5M,7M
peer_run c1 a client "$B4" 7401 --send 8M --seed 1 --verify 2 --rekey-every 512K
expect_rc c1 0
peer_wait s1
expect_rc s1 0
c1_rk=$(rekeys_ok c1)
s1_rk=$(rekeys_ok s1)
# tund answers EAGAIN while a re-key of this host is still unanswered (one at
# a time, a stricter reading of §3.8's limit); crypt_peer retries those
[ "$c1_rk" -ge 4 ] || fail "client: only $c1_rk TCP_CRYPT_REKEY calls succeeded: $(grep rekey "$WORK/c1.out" | tr '\n' ' ')"
[ "$s1_rk" -ge 2 ] || fail "server: only $s1_rk TCP_CRYPT_REKEY calls succeeded: $(grep rekey "$WORK/s1.out" | tr '\n' ' ')"
note "1. TCP_CRYPT_REKEY: client $c1_rk, server $s1_rk mid-stream"

# ---- 2. a silent server answers each of the client's rekeys (§3.8)
peer_bg s2 b server 7402 --hold --verify 3
peer_run c2 a client "$B4" 7402 --send 4M --seed 3 --rekey-every 256K
expect_rc c2 0
peer_wait s2
expect_rc s2 0
c2_rk=$(rekeys_ok c2)
[ "$c2_rk" -ge 4 ] || fail "client: only $c2_rk TCP_CRYPT_REKEY calls succeeded: $(grep rekey "$WORK/c2.out" | tr '\n' ' ')"

# ---- 3. enoctl rekey ID on both hosts, programs paused
rm -f "$WORK/go3"
peer_bg s3 b server 7403 --send 2M --seed 5 --verify 4 --pause-at 1M "$WORK/go3"
peer_bg c3 a client "$B4" 7403 --send 2M --seed 4 --verify 5 --pause-at 1M "$WORK/go3"
wait_log "$WORK/c3.out" '^paused' 30
wait_log "$WORK/s3.out" '^paused' 30
# tund's connection ID and its rekey count (sent + received rekey frames)
conn_info() {   # conn_info SOCK REMOTE-SUFFIX -> "ID REKEYS"
  "$BUILD/enoctl" --socket "$1" status --json |
    "$PY" -c 'import json,sys
for e in json.load(sys.stdin):
    if e["kind"] == "stream" and (e["remote"].endswith(sys.argv[1]) or e["local"].endswith(sys.argv[1])):
        print(e["id"], e["rekeys"]); break' "$2"
}
ida=$(conn_info "$A_SOCK" "$B4:7403" | cut -d' ' -f1)
idb=$(conn_info "$B_SOCK" "$B4:7403" | cut -d' ' -f1)
[ -n "$ida" ] && [ -n "$idb" ] || fail "connection 3 not in enoctl status: $(enoctl_a status) $(enoctl_b status)"
out=$(enoctl_a rekey "$ida" 2>&1) || fail "enoctl rekey $ida on A: $out"
note "3. enoctl rekey $ida (A): $out"
# B must have seen A's rekey (and answered it) before B starts its own, or
# the two would cross and the counts below would differ
for _ in $(seq 1 100); do
  rb=$(conn_info "$B_SOCK" "$B4:7403" | cut -d' ' -f2)
  [ "${rb:-0}" -ge 1 ] && break
  sleep 0.05
done
[ "${rb:-0}" -ge 1 ] || fail "tund B does not count A's rekey (enoctl status rekeys=${rb:-?})"
ra=
for _ in $(seq 1 100); do
  ra=$(conn_info "$A_SOCK" "$B4:7403" | cut -d' ' -f2)
  [ "${ra:-0}" -ge 2 ] && break     # its own + B's answer
  sleep 0.05
done
out=$(enoctl_b rekey "$idb" 2>&1) || fail "enoctl rekey $idb on B: $out"
note "   enoctl rekey $idb (B): $out"
out=$(enoctl_a rekey 999999 2>&1) && fail "enoctl rekey of an unknown ID succeeded: $out"
touch "$WORK/go3"
peer_wait c3
expect_rc c3 0
peer_wait s3
expect_rc s3 0

cap_stop r
dump r "$KEYLOG"
[ $DUMP_RC -eq 0 ] || fail "enodump reports errors: $(head -c 1500 "$WORK/enodump-r.log")"

check_xfer() {   # check_xfer N CLIENT SERVER A2B-BYTES A2B-SEED B2A-BYTES B2A-SEED -> sets Q
  local n=$1 c=$2 s=$3 ab ba cl src cap=r
  [ "$n" = 4 ] && cap=p
  ab="$(numfmt --from=iec "$4") $("$CP" sha "$4" --seed "$5")"
  ba="$(numfmt --from=iec "$6") $("$CP" sha "$6" --seed "$7")"
  cl=$(conn_line "$WORK/$c.out" 1) || exit 1
  src=$(kv "$cl" local)
  Q=$(q_line $cap "$src") || exit 1
  [ "$(xfer_line "$WORK/$s.out" recv 1)" = "$ab" ] || fail "$n: server received $(xfer_line "$WORK/$s.out" recv 1), expected $ab"
  [ "$(xfer_line "$WORK/$c.out" recv 1)" = "$ba" ] || fail "$n: client received $(xfer_line "$WORK/$c.out" recv 1), expected $ba"
  [ "$(kv "$Q" a2b_bytes) $(kv "$Q" a2b_sha)" = "$ab" ] || fail "$n: enodump A->B $(kv "$Q" a2b_bytes) $(kv "$Q" a2b_sha), expected $ab"
  [ "$(kv "$Q" b2a_bytes) $(kv "$Q" b2a_sha)" = "$ba" ] || fail "$n: enodump B->A $(kv "$Q" b2a_bytes) $(kv "$Q" b2a_sha), expected $ba"
  [ "$(kv "$Q" errors)" = 0 ] || fail "$n: enodump errors: $Q"
  [ "$(kv "$Q" sessid)" = "$(kv "$cl" sessid)" ] || fail "$n: session ID $(kv "$cl" sessid), enodump $(kv "$Q" sessid)"
  [ "$(xfer_line "$WORK/$c.out" sent 1)" = "$ab" ] || fail "$n: client sent $(xfer_line "$WORK/$c.out" sent 1), expected $ab"
}

check_xfer 1 c1 s1 8388608 1 8388608 2
ab=$(kv "$Q" a2b_rekeys) ba=$(kv "$Q" b2a_rekeys)
# A's key generation is at least its own rekeys; B's at least its own, and
# B follows each of A's (and A each of B's) while it still sends frames
[ "$ab" -ge "$c1_rk" ] || fail "1: enodump counts $ab rekey frames A->B; the client made $c1_rk TCP_CRYPT_REKEY calls"
[ "$ba" -ge "$s1_rk" ] || fail "1: enodump counts $ba rekey frames B->A; the server made $s1_rk TCP_CRYPT_REKEY calls"
note "1. enodump: $ab rekeys A->B, $ba B->A, every tag verified, plaintext = sent"

check_xfer 2 c2 s2 4194304 3 0 0
ab=$(kv "$Q" a2b_rekeys) ba=$(kv "$Q" b2a_rekeys)
[ "$ab" -eq "$c2_rk" ] || fail "2: enodump counts $ab rekey frames A->B, the client made $c2_rk TCP_CRYPT_REKEY calls"
[ "$ba" -eq "$ab" ] ||
  fail "2: the silent server sent $ba rekey frames for the client's $ab (RFC 8548 §3.8: it must step and send a rekey=1 frame for each)"
note "2. enodump: $ab rekeys A->B answered by $ba empty rekey frames B->A"

check_xfer 3 c3 s3 2097152 4 2097152 5
ab=$(kv "$Q" a2b_rekeys) ba=$(kv "$Q" b2a_rekeys)
[ "$ab/$ba" = 2/2 ] ||
  fail "3: enoctl rekey on A then on B: expected 2 rekey frames each way (own + answer), enodump counts A->B $ab, B->A $ba"
note "3. enodump: enoctl rekeys: 2 frames each way (own + answer)"

# ---- 4. --rekey_bytes policy, 64 MiB + 16 MiB with explicit rekeys mixed in
restart_tunds --resume_cache_size=0 --rekey_bytes=1048576
cap_start p tun-a "tcp port 7404"
t0=$SECONDS
peer_bg s4 b server 7404 --send 16M --seed 7 --verify 6 --rekey-every 4M
PEER_TIMEOUT=180 peer_run c4 a client "$B4" 7404 --send 64M --seed 6 --verify 7 --rekey-every 8M
expect_rc c4 0
peer_wait s4
expect_rc s4 0
note "4. 64 MiB + 16 MiB in $((SECONDS - t0)) s"
cap_stop p
dump p "$KEYLOG" -v
[ $DUMP_RC -eq 0 ] || fail "4: enodump reports errors: $(head -c 1500 "$WORK/enodump-p.log")"
check_xfer 4 c4 s4 64M 6 16M 7
ab=$(kv "$Q" a2b_rekeys) ba=$(kv "$Q" b2a_rekeys)
note "4. enodump: $ab rekeys A->B, $ba B->A; most bytes under one key: A->B $(kv "$Q" a2b_key_max), B->A $(kv "$Q" b2a_key_max)"
# the policy: no key encrypts more than rekey_bytes (+ the frame that
# reached the limit: tund checks before each frame of at most 16 KiB)
lim=$((1048576 + 16384))
[ "$(kv "$Q" a2b_key_max)" -le $lim ] && [ "$(kv "$Q" b2a_key_max)" -le $lim ] ||
  fail "4: --rekey_bytes=1048576 but a key encrypted up to $(kv "$Q" a2b_key_max) bytes A->B, $(kv "$Q" b2a_key_max) B->A ($ab / $ba rekey frames for 64 / 16 MiB)"
note "4. every tag verified, plaintext = sent"
wait_count "$A_SOCK" 0
wait_count "$B_SOCK" 0
note "ok ($SECONDS s)"
