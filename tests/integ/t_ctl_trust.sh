#!/usr/bin/env bash
# Who serves the control socket, and where it is (issue 15 point 1, issue 16
# points 1 and 6; include/enoshim/sockpath.h):
#   1. a fake control socket served by another user (a python3 SOCK_SEQPACKET
#      server run as a user made for the test, answering the greeting as
#      tund would): a program under the shim (root, then nobody) refuses it
#      with one line naming the serving uid — first because the socket's
#      directory is that user's, then (the socket moved into a directory of
#      root's) because of SO_PEERCRED; socket() fails with ENETDOWN exactly
#      as without a tund (a kernel socket with ENOSHIM_FALLBACK=plain), and
#      the fake receives not one byte; enoctl refuses it the same way.  A
#      socket in a directory others can write is refused too.  With the
#      fake's uid in /etc/enoshim/trust.conf (root's, 0644) the shim does
#      talk to it (its requests arrive; socket() gets the fake's error), and
#      a trust.conf others can write is ignored;
#   2. tund refuses, in one line and before it touches the network, a socket
#      directory that belongs to another user, one others can write (0777,
#      /tmp itself), and an ordinary user's start without XDG_RUNTIME_DIR
#      and --socket;
#   3. default paths, in a mount namespace with its own /run: tund started by
#      root listens on /run/enoshim/tund.sock (directory 0755 root, socket
#      0666); enoctl and the shim find it with no --socket or ENOSHIM_SOCKET,
#      as root and as nobody, with or without an XDG_RUNTIME_DIR (never
#      /tmp/enoshim-$UID/, which anybody could have made in advance); with no
#      tund the shim says "no tund is running at /run/enoshim/tund.sock";
#   4. the socket path is fixed when the program starts: a program that
#      clears its whole environment (as nginx's workers do) still reaches
#      the tund of its ENOSHIM_SOCKET.
. "$(dirname "$0")/lib.sh"
TUND=$BUILD/tund
ENOCTL=$BUILD/enoctl
LIB=$BUILD/libenoshim.so
chmod 711 "$WORK"

FAKE_USER=enofk$$
. "$(dirname "$0")/users_lib.sh"   # drop_user
useradd --system --no-create-home --shell /usr/sbin/nologin --user-group "$FAKE_USER" || fail "useradd"
on_exit "drop_user $FAKE_USER"
FUID=$(id -u "$FAKE_USER")
AS_FAKE=(setpriv --reuid="$FAKE_USER" --regid="$FAKE_USER" --clear-groups --)
AS_NOBODY=(setpriv --reuid=nobody --regid=nogroup --clear-groups --)

# the shim's binaries where every user can read them
mkdir -m 755 "$WORK/bin"
cp "$LIB" "$ENOCTL" "$TUND" "$WORK/bin/" 2>/dev/null || cp "$LIB" "$TUND" "$WORK/bin/"
ln -sf tund "$WORK/bin/enoctl"
LIB=$WORK/bin/libenoshim.so
PRELOAD=$LIB
# a sanitizer build of the shim needs its runtime loaded first (as enorun does)
if asan=$(ldd "$LIB" 2>/dev/null | awk '/libasan/ {print $3; exit}') && [ -n "$asan" ]; then
  ubsan=$(ldd "$LIB" 2>/dev/null | awk '/libubsan/ {print $3; exit}')
  PRELOAD="$asan${ubsan:+:$ubsan}:$LIB"
  export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=0:verify_asan_link_order=0:abort_on_error=1}"
fi

# the program: one socket(), then a connect if it got one; prints what happened
PROG='
import errno, os, socket, sys
if len(sys.argv) > 1 and sys.argv[1] == "clear":
    os.environ.clear()
    print("environment cleared:", len(os.environ), flush=True)
try:
    s = socket.socket()
    print("socket ok", flush=True)
except OSError as e:
    print("socket failed:", errno.errorcode.get(e.errno, e.errno), flush=True)
'
# shim WHO SOCKET [VAR=VALUE...] [-- ARG]: the program under the shim, as WHO
# (root|nobody); OUT its output, ERR its stderr
shim() {
  local who=$1 sock=$2; shift 2
  local pre=() envs=()
  [ "$who" = nobody ] && pre=("${AS_NOBODY[@]}")
  while [ $# -gt 0 ] && [ "$1" != -- ]; do envs+=("$1"); shift; done
  [ "${1:-}" = -- ] && shift
  "${pre[@]}" env -u XDG_RUNTIME_DIR ${sock:+ENOSHIM_SOCKET=$sock} LD_PRELOAD="$PRELOAD" "${envs[@]}" \
    "$PY" -c "$PROG" "$@" >"$WORK/prog.out" 2>"$WORK/prog.err"
  OUT=$(cat "$WORK/prog.out"); ERR=$(grep -v '^==' "$WORK/prog.err" || true)
}

# ---- 1. a fake tund of another user ----------------------------------------------------------
FAKE_PY=$WORK/fake.py
cat >"$FAKE_PY" <<'EOF'
import os, socket, struct, sys, threading
path, log = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
s.bind(path); os.chmod(path, 0o777); s.listen(16)
lock = threading.Lock()
conns = total = 0
def note():
    with open(log + ".tmp", "w") as f:
        f.write("%d %d\n" % (conns, total))
    os.rename(log + ".tmp", log)
def serve(c):
    # one thread per connection, as tund serves many at once
    global total
    while True:
        try:
            d = c.recv(8192)
        except OSError:
            break
        if not d:
            break
        with lock:
            total += len(d)
            note()
        if len(d) < 24:
            continue
        length, typ, nfds, seq, flags, sock = struct.unpack("<IHHIIQ", d[:24])
        if typ == 1:      # HELLO: answered as tund does (no direct prefixes, no flags)
            data = struct.pack("<iI", 0, 340) + struct.pack("<IIII", 5, os.getpid(), 1 << 20, 0) + bytes(324)
        elif typ in (10, 14, 16, 17, 18):   # requests tund does not answer
            continue
        else:             # anything else: ENOSYS
            data = struct.pack("<iI", 38, 0)
        try:
            c.send(struct.pack("<IHHIIQ", 24 + len(data), 100, 0, seq, 0, 0) + data)
        except OSError:
            break
    c.close()
note()
while True:
    c, _ = s.accept()
    with lock:
        conns += 1
        note()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
EOF
chmod 644 "$FAKE_PY"
FAKE_DIR=$WORK/fake
mkdir -m 755 "$FAKE_DIR"; chown "$FAKE_USER:" "$FAKE_DIR"
"${AS_FAKE[@]}" "$PY" "$FAKE_PY" "$FAKE_DIR/tund.sock" "$FAKE_DIR/log" >"$WORK/fake.log" 2>&1 &
fake=$!
on_exit "kill $fake"
for _ in $(seq 1 100); do [ -s "$FAKE_DIR/log" ] && break; sleep 0.05; done
[ -S "$FAKE_DIR/tund.sock" ] || fail "the fake did not start: $(cat "$WORK/fake.log")"
fake_bytes() { awk '{ print $2 }' "$FAKE_DIR/log"; }
fake_conns() { awk '{ print $1 }' "$FAKE_DIR/log"; }

# 1a. its directory is the fake user's
shim root "$FAKE_DIR/tund.sock"
[ "$OUT" = "socket failed: ENETDOWN" ] || fail "root's program behind the fake's socket: '$OUT' (want ENETDOWN): $ERR"
[ "$(printf '%s\n' "$ERR" | grep -c .)" -eq 1 ] || fail "want one line on stderr, got: $ERR"
printf '%s' "$ERR" | grep -Eq "^enoshim\[[0-9]+\]: refusing tund at $FAKE_DIR/tund.sock: its directory $FAKE_DIR belongs to uid $FUID, not you \(uid 0\) or root; an administrator can trust uid $FUID in /etc/enoshim/trust.conf$" ||
  fail "the shim's line: $ERR"
[ "$(fake_bytes)" = 0 ] && [ "$(fake_conns)" = 0 ] || fail "the fake heard from the shim: $(cat "$FAKE_DIR/log")"
note "1a. socket in a directory of uid $FUID: refused before connecting ($ERR)"

# 1b. the same socket moved into a directory of root's: SO_PEERCRED decides
ROOT_DIR=$WORK/rootdir
mkdir -m 755 "$ROOT_DIR"
mv "$FAKE_DIR/tund.sock" "$ROOT_DIR/tund.sock"
for who in root nobody; do
  shim $who "$ROOT_DIR/tund.sock"
  uid=$(id -u $who)
  [ "$OUT" = "socket failed: ENETDOWN" ] || fail "$who's program behind the fake: '$OUT' (want ENETDOWN): $ERR"
  printf '%s' "$ERR" | grep -Eq "^enoshim\[[0-9]+\]: refusing tund at $ROOT_DIR/tund.sock: served by uid $FUID, not you \(uid $uid\) or root; an administrator can trust uid $FUID in /etc/enoshim/trust.conf$" ||
    fail "$who: the shim's line: $ERR"
  [ "$(printf '%s\n' "$ERR" | grep -c .)" -eq 1 ] || fail "$who: want one line on stderr, got: $ERR"
done
sleep 0.2
[ "$(fake_conns)" -ge 2 ] || fail "the fake saw $(fake_conns) connections (want root's and nobody's)"
[ "$(fake_bytes)" = 0 ] || fail "the fake received $(fake_bytes) bytes from programs that refused it"
note "1b. served by uid $FUID (SO_PEERCRED): root's and nobody's programs refuse it; $(fake_conns) connections, 0 bytes received"
shim root "$ROOT_DIR/tund.sock" ENOSHIM_FALLBACK=plain
[ "$OUT" = "socket ok" ] || fail "with ENOSHIM_FALLBACK=plain: '$OUT' (want a kernel socket): $ERR"
# ... exactly as with no tund at all
shim root "$WORK/absent/tund.sock"
[ "$OUT" = "socket failed: ENETDOWN" ] || fail "no tund: '$OUT'"
printf '%s' "$ERR" | grep -q "no tund is running at $WORK/absent/tund.sock" || fail "no tund: the shim's line: $ERR"
run_enoctl() { "$@" >"$WORK/ctl.out" 2>"$WORK/ctl.err"; RC=$?; ERR=$(cat "$WORK/ctl.err"); }
run_enoctl "$ENOCTL" --socket "$ROOT_DIR/tund.sock" status
[ $RC -eq 1 ] && printf '%s' "$ERR" | grep -q "^enoctl: refusing tund at $ROOT_DIR/tund.sock: served by uid $FUID, not you (uid 0) or root" ||
  fail "enoctl on the fake: exit $RC: $ERR"
[ "$(fake_bytes)" = 0 ] || fail "the fake received $(fake_bytes) bytes from enoctl"
note "    fallback=plain gives a kernel socket; with no tund: ENETDOWN, 'no tund is running'; enoctl refuses it too"

# 1c. a directory others can write
OPEN_DIR=$WORK/open
mkdir -m 777 "$OPEN_DIR"; chmod 777 "$OPEN_DIR"
mv "$ROOT_DIR/tund.sock" "$OPEN_DIR/tund.sock"
shim root "$OPEN_DIR/tund.sock"
[ "$OUT" = "socket failed: ENETDOWN" ] && printf '%s' "$ERR" | grep -q "refusing tund at $OPEN_DIR/tund.sock: its directory $OPEN_DIR is writable by others (mode 0777)" ||
  fail "socket in a 0777 directory: '$OUT' $ERR"
mv "$OPEN_DIR/tund.sock" "$ROOT_DIR/tund.sock"
note "1c. a directory others can write: refused ($ERR)"

# 1d. trusted by the administrator
mkdir -p /etc/enoshim
[ -e /etc/enoshim/trust.conf ] && { cp -a /etc/enoshim/trust.conf "$WORK/trust.conf.saved"; on_exit "cp -a $WORK/trust.conf.saved /etc/enoshim/trust.conf"; } ||
  on_exit "rm -f /etc/enoshim/trust.conf; rmdir /etc/enoshim 2>/dev/null"
printf '# t_ctl_trust\ntrusted_uids = %s\n' "$FUID" >/etc/enoshim/trust.conf
chmod 666 /etc/enoshim/trust.conf
shim root "$ROOT_DIR/tund.sock"
[ "$OUT" = "socket failed: ENETDOWN" ] && printf '%s' "$ERR" | grep -q "served by uid $FUID.*trust.conf ignored: it must be a file of root's that nobody else can write" ||
  fail "a trust.conf others can write was not ignored: '$OUT' $ERR"
[ "$(fake_bytes)" = 0 ] || fail "the fake received bytes under a writable trust.conf"
chmod 644 /etc/enoshim/trust.conf
shim root "$ROOT_DIR/tund.sock"
[ "$OUT" = "socket failed: ENOSYS" ] || fail "with uid $FUID trusted: '$OUT' (want the fake's ENOSYS): $ERR"
[ "$(fake_bytes)" -gt 0 ] || fail "with uid $FUID trusted the fake received nothing"
note "1d. trusted_uids = $FUID in /etc/enoshim/trust.conf: the program talks to it ($(fake_bytes) bytes); mode 0666: ignored"
printf 'trusted_uids =\n' >/etc/enoshim/trust.conf
kill $fake; wait $fake 2>/dev/null

# ---- 2. tund refuses directories it cannot trust --------------------------------------------------
ip netns add "$NS" || fail "cannot create namespace (need root)"
PRE=()
tund_refuses() {   # tund_refuses WHAT REGEX tund-args...; run as "${PRE[@]}"
  local what=$1 re=$2; shift 2
  in_ns "${PRE[@]}" "$WORK/bin/tund" --tun=enotr0 --real_hosts=no "$@" >"$WORK/tr.out" 2>"$WORK/tr.err"
  local rc=$? err; err=$(cat "$WORK/tr.err")
  [ $rc -eq 1 ] || fail "$what: tund exit $rc (want 1): $err"
  [ "$(printf '%s\n' "$err" | grep -c .)" -eq 1 ] || fail "$what: want one line, got: $err"
  printf '%s' "$err" | grep -Eq -- "$re" || fail "$what: '$err' does not match '$re'"
  in_ns ip link show enotr0 >/dev/null 2>&1 && fail "$what: tund made its TUN before refusing"
  note "2. $what: $(printf '%s' "$err" | sed 's/^.*error: //')"
}
OTHER=$WORK/other; mkdir -m 755 "$OTHER"; chown "$FAKE_USER:" "$OTHER"
tund_refuses "a directory of another user" \
  "error: refusing socket directory $OTHER: it belongs to uid $FUID, not to tund's \(uid 0\)" --socket="$OTHER/tund.sock"
tund_refuses "a directory others can write" \
  "error: refusing socket directory $OPEN_DIR: it is writable by others \(mode 0777\)" --socket="$OPEN_DIR/tund.sock"
tund_refuses "/tmp itself" "error: refusing socket directory /tmp: it is writable by others \(mode 1777\)" --socket=/tmp/t$$.sock
[ -e /tmp/t$$.sock ] && fail "tund left /tmp/t$$.sock"
PRE=(env -u XDG_RUNTIME_DIR -u ENOSHIM_SOCKET "${AS_NOBODY[@]}")
tund_refuses "an ordinary user without XDG_RUNTIME_DIR" \
  "error: no socket path: XDG_RUNTIME_DIR is not set; give one with --socket=PATH"
PRE=()

# ---- 3. default paths -------------------------------------------------------------------------
cat >"$WORK/defaults.sh" <<'EOF'
set -u
W=$1; BIN=$W/bin; PRELOAD=$2
mount -t tmpfs -o mode=755 tmpfs /run || { echo "no private /run"; exit 1; }
NOBODY="setpriv --reuid=nobody --regid=nogroup --clear-groups --"
say() { echo "$*"; }
prog() { /usr/bin/python3 -c '
import errno, socket
try:
    socket.socket(); print("socket ok")
except OSError as e:
    print("socket failed:", errno.errorcode.get(e.errno))'; }
export -f prog
# no tund yet: the shim names the host's path
say "notund: $(env -u ENOSHIM_SOCKET -u XDG_RUNTIME_DIR LD_PRELOAD=$PRELOAD bash -c prog 2>&1 | tr '\n' ' ')"
"$BIN/tund" --tun=enodf0 --real_hosts=no >"$W/tund-df.log" 2>&1 &
tp=$!
for _ in $(seq 1 200); do grep -q "ready:" "$W/tund-df.log" && break; kill -0 $tp 2>/dev/null || break; sleep 0.02; done
say "ready: $(grep -o 'socket .*' "$W/tund-df.log")"
say "dir: $(stat -c '%a %U' /run/enoshim)"
say "sock: $(stat -c '%a %U %F' /run/enoshim/tund.sock)"
say "root-enoctl: $(env -u ENOSHIM_SOCKET -u XDG_RUNTIME_DIR "$BIN/enoctl" status 2>&1 | head -1)"
say "nobody-enoctl: $(env -u ENOSHIM_SOCKET -u XDG_RUNTIME_DIR $NOBODY "$BIN/enoctl" status 2>&1 | head -1)"
mkdir -m 700 "$W/xdg-nobody"; chown nobody "$W/xdg-nobody"
say "nobody-xdg-enoctl: $(env -u ENOSHIM_SOCKET XDG_RUNTIME_DIR=$W/xdg-nobody $NOBODY "$BIN/enoctl" status 2>&1 | head -1)"
say "root-shim: $(env -u ENOSHIM_SOCKET -u XDG_RUNTIME_DIR LD_PRELOAD=$PRELOAD bash -c prog 2>&1 | tr '\n' ' ')"
say "nobody-shim: $(env -u ENOSHIM_SOCKET XDG_RUNTIME_DIR=$W/xdg-nobody $NOBODY env LD_PRELOAD=$PRELOAD bash -c prog 2>&1 | tr '\n' ' ')"
kill $tp; wait $tp
say "tund exit: $?"
EOF
out=$(in_ns unshare -m --propagation private bash "$WORK/defaults.sh" "$WORK" "$PRELOAD" 2>&1) || fail "part 3: $out"
printf '%s\n' "$out" | sed 's/^/    | /'
want() { printf '%s\n' "$out" | grep -Fxq -- "$1" || fail "part 3: no line '$1'"; }
printf '%s\n' "$out" | grep -Eq "^notund: enoshim\[[0-9]+\]: no tund is running at /run/enoshim/tund.sock \(no such directory\); start one, or set ENOSHIM_FALLBACK=plain for kernel sockets socket failed: ENETDOWN $" ||
  fail "part 3: with no tund the shim does not name /run/enoshim/tund.sock"
want "ready: socket /run/enoshim/tund.sock"
want "dir: 755 root"
want "sock: 666 root socket"
for w in root-enoctl nobody-enoctl nobody-xdg-enoctl; do
  printf '%s\n' "$out" | grep -Eq "^$w: ID +PROGRAM" || fail "part 3: $w did not reach the host's tund"
done
want "root-shim: socket ok "
want "nobody-shim: socket ok "
want "tund exit: 0"
note "3. root's tund on /run/enoshim/tund.sock (755 root, socket 666); enoctl and the shim find it as root and nobody"

# ---- 4. the path is fixed when the program starts ------------------------------------------------------
ip netns del "$NS"
topo_one
shim root "$A_SOCK" -- clear
[ "$OUT" = "$(printf 'environment cleared: 0\nsocket ok')" ] ||
  fail "after clearing its environment the program lost tund: '$OUT' $ERR"
shim nobody "$A_SOCK" -- clear
[ "$OUT" = "$(printf 'environment cleared: 0\nsocket ok')" ] ||
  fail "nobody, after clearing its environment: '$OUT' $ERR"
note "4. a program that clears its environment still reaches the tund of its ENOSHIM_SOCKET (root, nobody)"
echo ok
