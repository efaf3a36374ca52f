#!/usr/bin/env bash
# TCP-ENO and a simultaneous open (RFC 8547 §4.3, §4.6; api-06 §2.1
# TCP_ENO_SELF_GOPT): programs behind tund A and tund B bind fixed ports and
# connect to each other.  To make the SYNs cross for certain, the namespace's
# kernel does not forward segments with SYN set; tests/conformance/syn_cross.py
# holds both tunds' SYNs and delivers each to the other, then carries the
# SYN-ACKs across (netem is not available here).  The capture proves both sides sent a SYN without ACK first.
#   1. defaults (both b = 0): plain TCP that works, ENO disabled (role conflict)
#   2. TCP_ENO_SELF_GOPT = 1 on A's side: encrypted, A's side plays role B,
#      both ends read the same session ID, transcript and matching names
#   3. the same over IPv6, with b = 1 on B's side
#   4. b = 1 on both sides: plain TCP again (role conflict)
. "$(dirname "$0")/lib.sh"
topo_up
in_ns iptables -I FORWARD -p tcp --tcp-flags SYN SYN -j DROP || fail "iptables"
in_ns ip6tables -I FORWARD -p tcp --tcp-flags SYN SYN -j DROP || fail "ip6tables"
capture tun-a "$WORK/a.pcap"
P=$PROGS/eno_probe

val() { awk -v k="$2:" '$1 == k { sub(/^[^ ]+ /, ""); print; exit }' "$1"; }

# simopen NAME PORT_A PORT_B [extra eno_probe options for A's side]
# (B_OPTS: extra options for B's side; SIM6=1: over IPv6)
B_OPTS=()
simopen() {
  local n=$1 pa=$2 pb=$3; shift 3
  local da=$A4 db=$B4
  [ -n "${SIM6:-}" ] && { da=$A6; db=$B6; }
  local go=$WORK/go.$n pause=$WORK/pause.$n
  timeout 40 ip netns exec "$NS" "$PY" "$CONF_DIR/syn_cross.py" tun-a tun-b "$pa" "$pb" 30 >"$WORK/$n.cross" 2>&1 &
  local pidx=$!
  wait_log "$WORK/$n.cross" '^ready'
  timeout 50 ip netns exec "$NS" "$ENORUN" --socket "$A_SOCK" -- "$P" "$@" --go-file "$go" --pause-file "$pause" \
    --send "from A $n" simopen "$pa" "$db" "$pb" >"$WORK/$n.a.out" 2>&1 &
  local pida=$!
  timeout 50 ip netns exec "$NS" "$ENORUN" --socket "$B_SOCK" -- "$P" "${B_OPTS[@]}" --go-file "$go" \
    --pause-file "$pause" --send "from B $n" simopen "$pb" "$da" "$pa" >"$WORK/$n.b.out" 2>&1 &
  local pidb=$!
  wait_log "$WORK/$n.a.out" '^ready'
  wait_log "$WORK/$n.b.out" '^ready'
  touch "$go"
  wait_log "$WORK/$n.cross" '^relayed' 30
  wait "$pidx" || fail "$n: the SYNs did not cross: $(cat "$WORK/$n.cross")"
  wait_log "$WORK/$n.a.out" '^paused' 40
  wait_log "$WORK/$n.b.out" '^paused' 40
  enoctl_a status --json >"$WORK/$n.a.status"
  enoctl_b status --json >"$WORK/$n.b.status"
  touch "$pause"
  wait "$pida" || fail "$n: A's program failed: $(cat "$WORK/$n.a.out")"
  wait "$pidb" || fail "$n: B's program failed: $(cat "$WORK/$n.b.out")"
  sed "s/^/    A| /" "$WORK/$n.a.out"; sed "s/^/    B| /" "$WORK/$n.b.out"
  [ "$(val "$WORK/$n.a.out" reply)" = "from B $n" ] || fail "$n: A read '$(val "$WORK/$n.a.out" reply)'"
  [ "$(val "$WORK/$n.b.out" reply)" = "from A $n" ] || fail "$n: B read '$(val "$WORK/$n.b.out" reply)'"
}

# status_field FILE PORT FIELD: a field of the stream entry with local port PORT
status_field() {
  "$PY" -c 'import json,sys
for e in json.load(open(sys.argv[1])):
    if e["kind"] == "stream" and e["local"].endswith(":" + sys.argv[2]):
        print(e[sys.argv[3]]); break' "$1" "$2" "$3"
}

# ---- 1. both b = 0 ------------------------------------------------------------------
simopen plain 7101 7102
"$PY" "$CONF_DIR/simopen_check.py" "$WORK/a.pcap" "$A4" 7101 "$B4" 7102 --expect-plain >"$WORK/plain.chk" 2>&1 ||
  { cat "$WORK/plain.chk"; fail "plain: $(grep FAIL "$WORK/plain.chk")"; }
sed 's/^/    /' "$WORK/plain.chk"
for s in a b; do
  [ "$(val "$WORK/plain.$s.out" state)" = disabled ] || fail "plain: $s's TCP_ENO_STATE is $(val "$WORK/plain.$s.out" state), expected disabled (both b=0)"
  [ "$(val "$WORK/plain.$s.out" sessid)" = EINVAL ] || fail "plain: $s's TCP_ENO_SESSID: $(val "$WORK/plain.$s.out" sessid), expected EINVAL"
done
r=$(status_field "$WORK/plain.a.status" 7101 reason)
case $r in *"role conflict"*) ;; *) fail "plain: enoctl status reason at A is '$r', expected a role conflict";; esac
r=$(status_field "$WORK/plain.b.status" 7102 reason)
case $r in *"role conflict"*) ;; *) fail "plain: enoctl status reason at B is '$r', expected a role conflict";; esac
note "both b=0: plain TCP, ENO disabled (role conflict)"

# ---- 2. b = 1 on A's side -----------------------------------------------------------
simopen enc 7201 7202 --gopt 1
"$PY" "$CONF_DIR/simopen_check.py" "$WORK/a.pcap" "$A4" 7201 "$B4" 7202 --expect-eno >"$WORK/enc.chk" 2>&1 ||
  { cat "$WORK/enc.chk"; fail "enc: $(grep FAIL "$WORK/enc.chk")"; }
sed 's/^/    /' "$WORK/enc.chk"
A=$WORK/enc.a.out; B=$WORK/enc.b.out
[ "$(val "$A" set-gopt)" = ok ] || fail "enc: setting TCP_ENO_SELF_GOPT=1 before connect: $(val "$A" set-gopt)"
for f in "$A" "$B"; do
  [ "$(val "$f" state)" = encrypting ] || fail "enc: TCP_ENO_STATE $(val "$f" state) at $(basename "$f"), expected encrypting"
done
[ "$(val "$A" role)" = 0x01 ] || fail "enc: A's side (b=1) has TCP_ENO_ROLE $(val "$A" role), expected 1 (B)"
[ "$(val "$B" role)" = 0x00 ] || fail "enc: B's side (b=0) has TCP_ENO_ROLE $(val "$B" role), expected 0 (A)"
[ "$(val "$A" self-gopt)" = 0x01 ] || fail "enc: A's side TCP_ENO_SELF_GOPT reads $(val "$A" self-gopt), expected 1"
[ "$(val "$A" peer-gopt)" = 0x00 ] || fail "enc: A's side TCP_ENO_PEER_GOPT $(val "$A" peer-gopt), expected 0"
[ "$(val "$B" peer-gopt)" = 0x01 ] || fail "enc: B's side TCP_ENO_PEER_GOPT $(val "$B" peer-gopt), expected 1"
sa=$(val "$A" sessid); sb=$(val "$B" sessid)
[ ${#sa} -ge 66 ] && [ "$sa" = "$sb" ] || fail "enc: session IDs differ or are short: A $sa, B $sb"
[ "$(val "$A" negtep)" = "$(val "$B" negtep)" ] || fail "enc: NEGTEP differs: $(val "$A" negtep) vs $(val "$B" negtep)"
[ "$(val "$A" negtep)" = 0x23 ] || fail "enc: NEGTEP $(val "$A" negtep), expected 0x23 (last of 21,24,23 in role B's SYN)"
[ "$(val "$A" self-name)" = "$(val "$B" peer-name)" ] || fail "enc: SELF_NAME at A's side != PEER_NAME at B's side"
[ "$(val "$B" self-name)" = "$(val "$A" peer-name)" ] || fail "enc: SELF_NAME at B's side != PEER_NAME at A's side"
[ "$(val "$A" self-name)" = "01$sa" ] || fail "enc: A's side SELF_NAME $(val "$A" self-name), expected 01|sessid"
ta=$(val "$A" transcript); tb=$(val "$B" transcript)
[ "$ta" = "$tb" ] || fail "enc: transcripts differ: $ta vs $tb"
# transcript = role A's SYN ENO option | role B's (RFC 8547 §4.8); on the wire
# side 1 = tund A (role B here), side 2 = tund B (role A)
want=$(awk '/^syn-eno-2:/{a=$2} /^syn-eno-1:/{b=$2} END{print a b}' "$WORK/enc.chk")
[ "$ta" = "$want" ] || fail "enc: transcript $ta, expected role A's then role B's SYN ENO option from the wire: $want"
note "b=1 on one side: encrypted, roles resolved, same session ID"

# ---- 3. IPv6, b = 1 on B's side ---------------------------------------------------
B_OPTS=(--gopt 1); SIM6=1 simopen enc6 7301 7302
B_OPTS=()
"$PY" "$CONF_DIR/simopen_check.py" "$WORK/a.pcap" "$A6" 7301 "$B6" 7302 --expect-eno >"$WORK/enc6.chk" 2>&1 ||
  { cat "$WORK/enc6.chk"; fail "enc6: $(grep FAIL "$WORK/enc6.chk")"; }
A=$WORK/enc6.a.out; B=$WORK/enc6.b.out
for f in "$A" "$B"; do
  [ "$(val "$f" state)" = encrypting ] || fail "enc6: TCP_ENO_STATE $(val "$f" state) at $(basename "$f"), expected encrypting"
done
[ "$(val "$A" role)/$(val "$B" role)" = 0x00/0x01 ] || fail "enc6: roles $(val "$A" role)/$(val "$B" role), expected 0x00/0x01 (b=1 on B's side)"
[ "$(val "$A" sessid)" = "$(val "$B" sessid)" ] || fail "enc6: session IDs differ"
[ "$(val "$A" transcript)" = "$(val "$B" transcript)" ] || fail "enc6: transcripts differ"
want=$(awk '/^syn-eno-1:/{a=$2} /^syn-eno-2:/{b=$2} END{print a b}' "$WORK/enc6.chk")
[ "$(val "$A" transcript)" = "$want" ] || fail "enc6: transcript $(val "$A" transcript), expected $want from the wire"
note "IPv6, b=1 on the other side: encrypted"

# ---- 4. b = 1 on both sides -------------------------------------------------------
B_OPTS=(--gopt 1); simopen bothb 7401 7402 --gopt 1
B_OPTS=()
"$PY" "$CONF_DIR/simopen_check.py" "$WORK/a.pcap" "$A4" 7401 "$B4" 7402 --expect-plain >"$WORK/bothb.chk" 2>&1 ||
  { cat "$WORK/bothb.chk"; fail "bothb: $(grep FAIL "$WORK/bothb.chk")"; }
for s in a b; do
  [ "$(val "$WORK/bothb.$s.out" state)" = disabled ] || fail "bothb: $s's TCP_ENO_STATE is $(val "$WORK/bothb.$s.out" state), expected disabled (both b=1)"
done
r=$(status_field "$WORK/bothb.a.status" 7401 reason)
case $r in *"role conflict"*) ;; *) fail "bothb: enoctl status reason at A is '$r', expected a role conflict";; esac
note "both b=1: plain TCP, ENO disabled (role conflict)"
