#!/usr/bin/env bash
# The unprivileged path: an ordinary user (nobody) runs `enorun --sandbox`,
# which makes a user + network namespace with its own tund on a TUN inside
# and runs the program there.  Inside, under the shim:
#   1. a kernel client (no shim) reaches a shim'd server through lwIP
#      (the server sees lwIP's address as its own, the TUN's as the peer);
#   2. a shim'd client reaches a kernel server through lwIP (the server sees
#      lwIP's address as the peer);
#   3. two programs of the sandbox talk encrypted: a server, and a client that
#      dials the address enorun prints for it ("sandbox ready: ... at A"):
#      both read the same session ID; dialing that address on a port nobody
#      listens on fails at once (ECONNREFUSED), it never hangs.
# /dev/net/tun must be usable by the user (crw-rw-rw- on Debian/Ubuntu); the
# test makes it so for its duration and restores the mode.
set -u
TOP=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD:-build}
case "$BUILD" in /*) ;; *) BUILD=$TOP/$BUILD;; esac
fail() { echo "FAIL: $*" >&2; exit 1; }
USER_=${SANDBOX_USER:-nobody}
id "$USER_" >/dev/null 2>&1 || fail "no user $USER_"
mode=$(stat -c %a /dev/net/tun) || fail "no /dev/net/tun"
WORK=$(mktemp -d /tmp/enoshim-sandbox.XXXXXX)
chmod 0755 "$WORK"
trap 'chmod "$mode" /dev/net/tun; rm -rf "$WORK"' EXIT
chmod 0666 /dev/net/tun

# the user may not be able to read this checkout (a clone under /root):
# enorun finds tund and libenoshim.so next to itself, so copy the three
mkdir -p "$WORK/bin"
cp "$BUILD/enorun" "$BUILD/tund" "$BUILD/libenoshim.so" "$BUILD/examples/eno-hello" "$WORK/bin/" ||
  fail "build first (make)"
chmod -R a+rX "$WORK/bin"

cat >"$WORK/inner.sh" <<'INNER'
set -u
echo "uid_map: $(cat /proc/self/uid_map | tr -s ' ' | sed 's/^ //')"
python3 - <<'PY' &
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 7000)); s.listen(5)
print("listening", flush=True)
c, a = s.accept()
print("shim server: local", c.getsockname()[0], "peer", a[0], flush=True)
c.sendall(c.recv(100).upper()); c.close()
PY
srv=$!
for _ in $(seq 1 100); do ss -ltn 2>/dev/null | grep -q ':7000 ' && break; sleep 0.05; done
env -u LD_PRELOAD python3 -c '
import socket
c = socket.create_connection(("10.77.0.2", 7000), timeout=10); c.sendall(b"hello")
print("kernel client got", c.recv(100).decode(), flush=True)'
wait $srv
env -u LD_PRELOAD python3 - <<'PY' &
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("10.77.0.1", 7001)); s.listen(5)
c, a = s.accept()
print("kernel server: peer", a[0], flush=True)
c.sendall(c.recv(100)[::-1]); c.close()
PY
ksrv=$!
for _ in $(seq 1 100); do ss -ltn 2>/dev/null | grep -q ':7001 ' && break; sleep 0.05; done
python3 -c '
import socket
c = socket.create_connection(("10.77.0.1", 7001), timeout=10); c.sendall(b"abc")
print("shim client got", c.recv(100).decode(), flush=True)'
wait $ksrv
INNER
chmod 0644 "$WORK/inner.sh"

out=$(cd "$WORK" && timeout 60 runuser -u "$USER_" -- "$WORK/bin/enorun" --sandbox -- bash "$WORK/inner.sh" 2>&1) ||
  fail "the sandbox run failed: $out"
echo "$out" | sed 's/^/  /'
uid=$(id -u "$USER_")
echo "$out" | grep -q "^uid_map: 0 $uid 1$" || fail "not an unprivileged user namespace (uid_map)"
echo "$out" | grep -q "^shim server: local 10.77.0.2 peer 10.77.0.1$" ||
  fail "kernel client -> shim'd server did not go through lwIP"
echo "$out" | grep -q "^kernel client got HELLO$" || fail "kernel client -> shim'd server: wrong reply"
echo "$out" | grep -q "^kernel server: peer 10.77.0.2$" || fail "shim'd client -> kernel server did not go through lwIP"
echo "$out" | grep -q "^shim client got cba$" || fail "shim'd client -> kernel server: wrong reply"

# 3. encrypted between two programs of one sandbox
cat >"$WORK/pair.sh" <<'PAIR'
set -u
addr=$1; bin=$(dirname "$0")/bin
"$bin/eno-hello" server 9000 >srv.out 2>&1 &
for _ in $(seq 1 100); do grep -q listening srv.out 2>/dev/null && break; sleep 0.05; done
"$bin/eno-hello" client "$addr" 9000 "sandbox pair" >cli.out 2>&1
wait
sed 's/^/srv| /' srv.out; sed 's/^/cli| /' cli.out
python3 - "$addr" <<'PY'
import socket, sys, time
t = time.monotonic()
try:
    socket.create_connection((sys.argv[1], 9999), timeout=20)
    print("refused-port: connected?!")
except OSError as e:
    print("refused-port: %s after %.1fs" % (e.__class__.__name__, time.monotonic() - t))
PY
PAIR
chmod 0644 "$WORK/pair.sh"
banner=$(cd "$WORK" && timeout 20 runuser -u "$USER_" -- "$WORK/bin/enorun" --sandbox -- true 2>&1)
addr=$(echo "$banner" | sed -n 's/.*sandbox ready: .* at \([0-9.]*\) .*/\1/p' | head -n 1)
[ -n "$addr" ] || fail "enorun --sandbox did not print the address to dial: $banner"
chmod 0777 "$WORK"
out=$(cd "$WORK" && timeout 60 runuser -u "$USER_" -- "$WORK/bin/enorun" --sandbox -- bash "$WORK/pair.sh" "$addr" 2>&1) ||
  fail "the sandbox pair failed: $out"
echo "$out" | sed 's/^/  /'
v() { echo "$out" | awk -v p="$1| $2:" '$1" "$2 == p { print $3; exit }'; }
[ "$(v srv eno)" = encrypting ] && [ "$(v cli eno)" = encrypting ] || fail "the sandbox pair is not encrypted"
sid=$(v cli session-id)
[ -n "$sid" ] && [ "$sid" = "$(v srv session-id)" ] || fail "session IDs differ or are missing"
echo "$out" | grep -q "^cli| reply: sandbox pair$" || fail "the pair's reply is wrong"
echo "$out" | grep -qE "^refused-port: ConnectionRefusedError after 0\.[0-9]s$" ||
  fail "dialing $addr on a closed port did not fail at once: $(echo "$out" | grep refused-port)"
echo "  ok"
