#!/usr/bin/env bash
# The experimental TEP 0x20 (RFC 8547 §11), configured on both ends: tund B's
# eno_teps=20 and `enorun --eno-teps 20` on A.  NEGTEP 0x20 at both ends, the
# session ID is 0x20 | SHA-256(transcript) (checked here with Python's
# hashlib), the data is NOT encrypted (visible on the wire) and `enoctl
# status` says so on both tunds.  IPv4 and IPv6.  A default program (21,24,23)
# shares no TEP with B (20 is never a default): plain TCP.
. "$(dirname "$0")/lib.sh"
TUND_B_ARGS="--eno_teps=20" topo_up
capture tun-a "$WORK/a.pcap"

for v in 4 6; do
  n=exp$v port=780$v dest=$B4; [ $v = 6 ] && dest=$B6
  CLI_ENORUN=(--eno-teps 20); eno_conn $n $port "$dest"
  c=$WORK/$n.cli.out s=$WORK/$n.srv.out
  sed "s/^/    cli| /" "$c"; sed "s/^/    srv| /" "$s"
  expect "$n: data" "$(eno_val "$s" recv)/$(eno_val "$c" reply)" "hello $n/hello $n"
  expect "$n: states" "$(eno_val "$c" state)/$(eno_val "$s" state)" encrypting/encrypting
  expect "$n: NEGTEP" "$(eno_val "$c" negtep)/$(eno_val "$s" negtep)" 0x20/0x20
  expect "$n: roles" "$(eno_val "$c" role)/$(eno_val "$s" role)" 0x00/0x01
  tr=$(eno_val "$c" transcript)
  expect "$n: transcript" "$tr" 45032045040120
  expect "$n: transcripts equal" "$(eno_val "$s" transcript)" "$tr"
  expect "$n: transcript = wire" "$tr" "$(pcap_eno "$WORK/a.pcap" $port syn-eno)$(pcap_eno "$WORK/a.pcap" $port synack-eno)"
  want=20$("$PY" -c 'import hashlib,sys; print(hashlib.sha256(bytes.fromhex(sys.argv[1])).hexdigest())' "$tr")
  expect "$n: session ID = 0x20 | SHA-256(transcript)" "$(eno_val "$c" sessid)" "$want"
  expect "$n: session IDs equal" "$(eno_val "$s" sessid)" "$want"
  expect "$n: SELF_NAME/PEER_NAME" "$(eno_val "$c" self-name)/$(eno_val "$s" peer-name)" "00$want/00$want"
  expect "$n: TCP_CRYPT_CONF (no AEAD)" "$(eno_val "$c" aead)" EINVAL
  expect "$n: the data is plaintext on the wire" "$(pcap_eno "$WORK/a.pcap" $port "hello $n" needle)" found
  for side in cli srv; do
    expect "$n: enoctl ($side) eno" "$(eno_status "$WORK/$n.$side.status" $port eno)" encrypting
    expect "$n: enoctl ($side) tep" "$(eno_status "$WORK/$n.$side.status" $port tep_id)" 32
    expect_match "$n: enoctl ($side) says it is NOT encrypted" "$(eno_status "$WORK/$n.$side.status" $port reason)" "NOT encrypted"
  done
done
grep -q "NOT encrypted" "$WORK/tund-a.log" || expect "tund A logs the unencrypted TEP" no yes

eno_conn default 7810 "$B4"
expect "default TEPs vs eno_teps=20: states" \
  "$(eno_val "$WORK/default.cli.out" state)/$(eno_val "$WORK/default.srv.out" state)" disabled/disabled
expect "default TEPs vs eno_teps=20: data" "$(eno_val "$WORK/default.cli.out" reply)" "hello default"
expect_done
note "ok"
