#!/usr/bin/env bash
# The unprivileged path: an ordinary user (nobody) runs `enorun --sandbox`,
# which makes a user + network namespace with its own tund on a TUN inside
# and runs the program there.  Inside, under the shim:
#   1. a kernel client (no shim) reaches a shim'd server through lwIP
#      (the server sees lwIP's address as its own, the TUN's as the peer);
#   2. a shim'd client reaches a kernel server through lwIP (the server sees
#      lwIP's address as the peer).
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
cp "$BUILD/enorun" "$BUILD/tund" "$BUILD/libenoshim.so" "$WORK/bin/" || fail "build first (make)"
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
echo "  ok"
