#!/usr/bin/env bash
# tund killed, started again, and told to read its settings again (SIGHUP),
# with programs running, on the two-real-hosts topology (hosts_lib.sh):
#
#  1. kill -9 of host 2's tund during transfers from host 1: the programs
#     reading them on host 2 get ECONNRESET (xfer: "Connection reset by
#     peer", exit 2), never a clean end; nc.openbsd, reading one too, ends
#     as it ends when a kernel TCP connection is reset (its exit status is
#     0 there too: nc does not turn a read error into one; compared here
#     against a kernel reset), and what it wrote is cut short;
#  2. during the gap the listening servers keep waiting (an epoll server,
#     echo_srv, and one blocked in accept(), xfer serve); a kernel client on
#     host 2 (127.0.0.1) connects meanwhile and is queued by the kernel;
#  3. tund started again on the same socket: without being restarted, both
#     servers' listeners are back (their shims say so), the queued kernel
#     client gets its echo, and host 1's clients connect again, encrypted
#     (both tunds list the connection encrypting with one session ID) and
#     intact (SHA-256);
#  4. SIGHUP: tund 2 (started with --config) stays up; a changed
#     eno_enable_listen (no) is applied at once — a new connection to the
#     same server is plain — and rekey_bytes too (the connection rekeys);
#     tun, changed as well, is logged as needing a restart; a file with an
#     error changes nothing (logged); fixed again, connections are encrypted
#     again.  tund 1 (no config file) stays up on SIGHUP too.
. "$(dirname "$0")/hosts_lib.sh"
command -v nc.openbsd >/dev/null || fail "nc.openbsd missing (scripts/setup installs netcat-openbsd)"
X=$PROGS/xfer
hosts_up
hosts_no_dns
CONF=$WORK/tund2.conf
cat >"$CONF" <<EOF
# tund 2's settings (t_tund_restart)
eno_enable_listen = yes
rekey_bytes = 0
EOF
tund_up 1
tund_up 2 --config "$CONF"

# ---- the servers, under enorun on host 2 ----------------------------------
bg2 "$PROGS/echo_srv" 7100 >"$WORK/echo.out" 2>"$WORK/echo.log"; echo_pid=$!
bg2 "$X" serve 7101 --count 0 >"$WORK/xs.out" 2>"$WORK/xs.log"; xs_pid=$!
bg2 "$X" serve 7103 >"$WORK/reader.out" 2>"$WORK/reader.log"; reader=$!
ip netns exec "$H2" "$ENORUN" --socket "$S2" -- nc.openbsd -l 7102 >"$WORK/nc.bin" 2>"$WORK/nc.err" </dev/null &
nc_pid=$!
# a listener with TCP_ENO_TEP_MANDATORY: the option must come back with it
bg2 "$PROGS/eno_probe" --mandatory --deadline 120 server 7104 >"$WORK/mand.out" 2>"$WORK/mand.log"; mand=$!
on_exit "kill -9 $echo_pid $xs_pid $reader $nc_pid $mand"
for p in 7100 7101 7102 7103 7104; do wait_listen "$p" "$S2"; done

# one connection to each server before anything happens
run1 "$X" client "$IP2" 7101 --send 1M --seed 1 >"$WORK/before.out" 2>&1 || fail "xfer before: $(cat "$WORK/before.out")"
echo before | timeout 10 ip netns exec "$H1" "$ENORUN" --socket "$S1" -- nc.openbsd -q1 "$IP2" 7100 \
  >"$WORK/echo-before.out" 2>&1
[ "$(cat "$WORK/echo-before.out")" = before ] || fail "echo before: $(cat "$WORK/echo-before.out")"

# ---- 1. transfers being read on host 2 when its tund is killed -------------
bg1 "$X" client "$IP2" 7103 --send inf --pace 4M >"$WORK/sender.out" 2>&1; sender=$!
bg1 "$X" client "$IP2" 7102 --send inf --pace 4M >"$WORK/ncsender.out" 2>&1; ncsender=$!
on_exit "kill -9 $sender $ncsender"
wait_rx_bytes() {   # until host 2's tund received BYTES on its streams
  local got=0
  for _ in $(seq 1 200); do
    got=$(enoctl2 status --json 2>/dev/null | "$PY" -c 'import json,sys
print(min([e["rx_bytes"] for e in json.load(sys.stdin) if e["kind"] == "stream"] or [0]))' 2>/dev/null) || got=0
    [ "${got:-0}" -ge "$1" ] && return 0
    sleep 0.1
  done
  fail "host 2's streams received only ${got:-0} bytes, expected $1 each"
}
wait_rx_bytes 2000000
note "killing host 2's tund (pid $TUND2) during two transfers"
kill -9 "$TUND2"
exits_within "$reader" 5 || fail "the reading program (xfer) did not end within 5 s of tund's death"
[ "$EXIT_RC" -eq 2 ] && grep -q "read: Connection reset by peer" "$WORK/reader.out" ||
  fail "the reading program did not see ECONNRESET (exit $EXIT_RC): $(cat "$WORK/reader.out" "$WORK/reader.log")"
note "xfer reading on host 2: $(grep aborted "$WORK/reader.out")"
exits_within "$nc_pid" 5 || fail "nc.openbsd reading on host 2 did not end within 5 s of tund's death"
nc_rc=$EXIT_RC
nc_bytes=$(stat -c %s "$WORK/nc.bin")
# the same nc, reading a kernel TCP connection that the peer resets
on2 nc.openbsd -l 127.0.0.1 7202 >"$WORK/nck.bin" 2>/dev/null </dev/null &
nck=$!
for _ in $(seq 1 100); do [ -n "$(on2 ss -Hltn 'sport = :7202')" ] && break; sleep 0.05; done
on2 "$PY" - <<'PYEOF'
import socket, struct, time
s = socket.create_connection(("127.0.0.1", 7202))
s.sendall(b"x" * 200000)
time.sleep(0.5)
s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
s.close()
PYEOF
exits_within "$nck" 5 || fail "nc on a kernel connection did not end after the reset"
nck_rc=$EXIT_RC
note "nc.openbsd: exit $nc_rc after tund's death ($nc_bytes bytes written), exit $nck_rc after a kernel TCP reset"
[ "$nc_rc" -eq "$nck_rc" ] || fail "nc.openbsd ends with $nc_rc when tund dies, $nck_rc when a kernel connection is reset"
[ "$nc_bytes" -gt 0 ] || fail "nc received nothing before tund died"
for v in sender ncsender; do
  exits_within "${!v}" 20 && [ "$EXIT_RC" -ne 0 ] || fail "host 1's $v did not fail after host 2's tund died"
done
note "host 1's senders failed: $(tail -n 1 "$WORK/sender.out")"

# ---- 2. the gap --------------------------------------------------------------
kill -0 "$echo_pid" && kill -0 "$xs_pid" || fail "a listening server ended when tund died"
on2 "$PY" - >"$WORK/gap.out" 2>&1 <<'PYEOF' &
import socket
s = socket.create_connection(("127.0.0.1", 7100), timeout=30)
s.sendall(b"gap\n")
s.settimeout(30)
print(s.recv(100).decode().strip())
PYEOF
gap=$!
sleep 1
kill -0 "$gap" 2>/dev/null || fail "the kernel client in the gap ended early: $(cat "$WORK/gap.out")"
note "during the gap: both servers wait, a kernel client on 127.0.0.1 is queued"

# ---- 3. tund again, same socket: the same servers, encrypted ---------------
tund_up 2 --config "$CONF"
wait_log "$WORK/echo.log" "registered again" 10
wait_log "$WORK/xs.log" "registered again" 10
wait_listen 7100 "$S2"
wait_listen 7101 "$S2"
exits_within "$gap" 15 && [ "$EXIT_RC" -eq 0 ] && [ "$(cat "$WORK/gap.out")" = gap ] ||
  fail "the kernel client queued in the gap got no echo: $(cat "$WORK/gap.out")"
note "tund 2 back: echo_srv and xfer serve listen again; the client queued in the gap got its echo"
bg1 "$X" client "$IP2" 7101 --send 6M --pace 2M --seed 3 >"$WORK/after.out" 2>&1; after=$!
expect_encrypted "xfer serve (same process) after the restart" 7101 "$after"
exits_within "$after" 30 && [ "$EXIT_RC" -eq 0 ] || fail "xfer after the restart: $(cat "$WORK/after.out")"
[ "$(sha_line "$WORK/xs.out" recv)" = "6291456 $("$X" sha 6M --seed 3)" ] ||
  fail "xfer after the restart: host 2 received $(sha_line "$WORK/xs.out" recv)"
echo after | timeout 10 ip netns exec "$H1" "$ENORUN" --socket "$S1" -- nc.openbsd -q1 "$IP2" 7100 \
  >"$WORK/echo-after.out" 2>&1
[ "$(cat "$WORK/echo-after.out")" = after ] || fail "echo_srv after the restart: $(cat "$WORK/echo-after.out")"
note "after the restart: xfer serve took an encrypted 6 MiB intact, echo_srv echoes"
# the TCP_ENO_TEP_MANDATORY listener: a plain client (no enorun) is turned
# away, an encrypting one is the connection it accepts
wait_log "$WORK/mand.log" "registered again" 10
on1 timeout 10 nc.openbsd -w 3 "$IP2" 7104 </dev/null >/dev/null 2>&1 || true
run1 "$PROGS/eno_probe" --send "mandatory after restart" client "$IP2" 7104 >"$WORK/mandc.out" 2>&1 ||
  fail "encrypting client to the TCP_ENO_TEP_MANDATORY listener: $(cat "$WORK/mandc.out")"
exits_within "$mand" 20 && [ "$EXIT_RC" -eq 0 ] || fail "the TCP_ENO_TEP_MANDATORY server: $(cat "$WORK/mand.out")"
[ "$(val "$WORK/mand.out" state)" = encrypting ] ||
  fail "the TCP_ENO_TEP_MANDATORY listener accepted a connection that is '$(val "$WORK/mand.out" state)' after the restart"
note "TCP_ENO_TEP_MANDATORY came back with its listener: the plain client was turned away, the encrypted one accepted"

# ---- 4. SIGHUP -----------------------------------------------------------------
# eno_enable_listen = no, rekey_bytes = 64K, tun changed (needs a restart)
cat >"$CONF" <<EOF
eno_enable_listen = no
rekey_bytes = 64K
tun = enotun9
EOF
kill -HUP "$TUND2"
wait_log "$WORK/tund-2.log" "applied: .*eno_enable_listen.*rekey_bytes|applied: .*rekey_bytes.*eno_enable_listen" 5
wait_log "$WORK/tund-2.log" "needs a restart .*: tun" 5
sleep 0.2
kill -0 "$TUND2" || fail "tund 2 ended on SIGHUP"
bg1 "$X" client "$IP2" 7101 --send 2M --pace 1M --seed 4 >"$WORK/plain.out" 2>&1; plainc=$!
for _ in $(seq 1 100); do
  st=$(enoctl2 status --json | "$PY" -c 'import json,sys
print(" ".join(e["eno"] for e in json.load(sys.stdin) if e["kind"] == "stream" and e["local"].endswith(":7101")))')
  [ -n "$st" ] && break
  sleep 0.1
done
case "$st" in *encrypting*|"") fail "after SIGHUP with eno_enable_listen = no a new connection is '$st', expected plain";; esac
exits_within "$plainc" 30 && [ "$EXIT_RC" -eq 0 ] || fail "plain xfer after SIGHUP: $(cat "$WORK/plain.out")"
note "SIGHUP: eno_enable_listen = no applied (a new connection to the same server: eno $st); tun logged as needing a restart"
# a file with an error: nothing changes
echo "mtu = lots" >>"$CONF"
kill -HUP "$TUND2"
wait_log "$WORK/tund-2.log" "did not load .*every setting stays" 5
kill -0 "$TUND2" || fail "tund 2 ended on SIGHUP with a bad file"
# fixed: encrypted again, and rekeyed every 64 KiB
cat >"$CONF" <<EOF
eno_enable_listen = yes
rekey_bytes = 64K
EOF
kill -HUP "$TUND2"
wait_log "$WORK/tund-2.log" "applied: eno_enable_listen$" 5   # this HUP's line, not the first one
# through echo_srv: host 2 sends what it gets back, and rekeys as the sender
bg1 "$X" client "$IP2" 7100 --send 4M --pace 1M --seed 5 >"$WORK/again.out" 2>&1; again=$!
expect_encrypted "echo_srv after SIGHUP (eno_enable_listen = yes)" 7100 "$again"
rk=0
for _ in $(seq 1 50); do
  rk=$(enoctl2 status --json | "$PY" -c 'import json,sys
print(max([e["rekeys"] for e in json.load(sys.stdin) if e["kind"] == "stream" and e["local"].endswith(":7100")] or [0]))')
  [ "$rk" -gt 0 ] && break
  sleep 0.1
done
[ "$rk" -gt 0 ] || fail "rekey_bytes = 64K applied by SIGHUP, but host 2's side of the connection did not rekey"
exits_within "$again" 30 && [ "$EXIT_RC" -eq 0 ] || fail "xfer after the second SIGHUP: $(cat "$WORK/again.out")"
[ "$(sha_line "$WORK/again.out" recv)" = "4194304 $("$X" sha 4M --seed 5)" ] ||
  fail "the echo after the second SIGHUP differs: $(sha_line "$WORK/again.out" recv)"
note "SIGHUP again: a bad file changed nothing; fixed, connections are encrypted again and rekey ($rk so far)"
kill -HUP "$TUND1"
wait_log "$WORK/tund-1.log" "without a config file" 5
sleep 0.2
kill -0 "$TUND1" || fail "tund 1 (no config file) ended on SIGHUP"
tund_alive 1
tund_alive 2
echo ok
