#!/usr/bin/env bash
# The privileged helper tund-nat (tund/nathelper.c) on its own, with no tund:
# a small Python driver plays tund's part (a SOCK_SEQPACKET socketpair, one
# end on the helper's descriptor 3) in a fresh network namespace that has a
# TUN and a veth pair.
#   - while it runs it keeps exactly CAP_NET_ADMIN (effective, permitted,
#     bounding; nothing inheritable or ambient), no_new_privs is set, and no
#     inherited descriptor beyond 3 survives; SIGINT/SIGTERM/SIGHUP do not end it;
#   - PUBLISH / UNPUBLISH show in `nft list set inet enoshim-<tun> ports`,
#     a second UNPUBLISH and an ORIGDST for an unknown flow get errors and
#     the helper carries on;
#   - garbage (random bytes, 31 / 33 / 4096-byte messages, bad magic, op 9,
#     proto 17, port 0, nonzero padding), each in a fresh helper: no reply,
#     "malformed request" on stderr, exit;
#   - EOF on its socket, and an empty message: exit 0;
#   - a setup that fails half-way (one interface's forwarding read-only):
#     an EPERM reply with the reason, exit 1;
#   after each run no enoshim table is left and every interface's
#   forwarding sysctls are back to what they were (one that was already on
#   stays on);
#   - bad command lines (missing --tun, a quote or a slash in the name, a
#     name too long, an unknown option) and a descriptor 3 that is not a
#     SOCK_SEQPACKET socket (closed, a pipe, /dev/null, a stream socket):
#     exit status 2, nftables untouched (a stale table stays as it was).
# Self-contained (no tund, no lib.sh topology); the namespace is removed on exit.
set -u
TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${BUILD:-build}
case "$BUILD" in /*) ;; *) BUILD=$TOP/$BUILD;; esac
HELPER=$BUILD/tund-nat
PY=/usr/bin/python3
NS=enoshim-nat-$$
TUN=enonat0
WORK=$(mktemp -d /tmp/enoshim-test.XXXXXX)

fail() { echo "FAIL: $*" >&2; exit 1; }
note() { echo "  $*"; }

_teardown() {
  local rc=$?
  for p in $(ip netns pids "$NS" 2>/dev/null); do kill -9 "$p" 2>/dev/null || true; done
  ip netns del "$NS" 2>/dev/null || true
  if [ $rc -ne 0 ] && [ -z "${KEEP_WORK:-}" ]; then
    for f in "$WORK"/*.err; do [ -s "$f" ] && { echo "---- $f"; tail -n 20 "$f"; }; done >&2
  fi
  [ -n "${KEEP_WORK:-}" ] || rm -rf "$WORK"
  exit $rc
}
trap _teardown EXIT

in_ns() { ip netns exec "$NS" "$@"; }

[ "$(id -u)" -eq 0 ] || fail "needs root (network namespaces, nftables)"
[ -x "$HELPER" ] || fail "$HELPER missing (make)"
[ -x "$PY" ] || fail "$PY missing"
command -v nft >/dev/null || fail "nft missing (scripts/setup installs nftables)"

ip netns add "$NS" || fail "cannot create namespace"
in_ns ip link set lo up
in_ns ip tuntap add "$TUN" mode tun || fail "cannot create TUN $TUN"
in_ns ip link add enodum0 type veth peer name enodum1 || fail "cannot create a veth pair"
in_ns ip link set enodum0 up
in_ns ip link set enodum1 up
# Known starting values: forwarding off, except on enodum1 where it was
# already on (the helper must leave that one on when it goes).
for i in "$TUN" enodum0; do in_ns sysctl -qw "net.ipv4.conf.$i.forwarding=0"; done
in_ns sysctl -qw net.ipv4.conf.enodum1.forwarding=1
in_ns sysctl -qw net.ipv6.conf.all.forwarding=0
if in_ns test -e "/proc/sys/net/ipv6/conf/$TUN/force_forwarding"; then
  for i in "$TUN" enodum0; do in_ns sysctl -qw "net.ipv6.conf.$i.force_forwarding=0"; done
  in_ns sysctl -qw net.ipv6.conf.enodum1.force_forwarding=1
fi

# every forwarding-related sysctl of the namespace, one "path:value" a line
sysctls() {
  in_ns sh -c 'cd /proc/sys/net && grep -H . ipv4/ip_forward ipv4/conf/*/forwarding \
    ipv6/conf/*/forwarding ipv6/conf/*/accept_ra ipv6/conf/*/force_forwarding 2>/dev/null' | sort
}
BASE_SYSCTLS=$(sysctls)
[ -n "$BASE_SYSCTLS" ] || fail "cannot read the namespace's sysctls"

# the state after every run of the helper: no enoshim table, sysctls as before
check_clean() {
  local what=$1 t now
  t=$(in_ns nft list tables 2>&1) || fail "$what: nft list tables: $t"
  if grep -q enoshim <<<"$t"; then
    fail "$what: enoshim tables left behind: $(tr '\n' ' ' <<<"$t")"
  fi
  now=$(sysctls)
  if [ "$now" != "$BASE_SYSCTLS" ]; then
    diff <(echo "$BASE_SYSCTLS") <(echo "$now") >&2
    fail "$what: forwarding sysctls not restored"
  fi
}

cat >"$WORK/natdrv.py" <<'EOF'
# natdrv.py — plays tund's side of tund-nat's protocol (tund/nat.h).
#   natdrv.py HELPER TUN LWIP4 LWIP6 ERRFILE SCENARIO [ARG]
# SCENARIO: publish | eof | empty | garbage NAME | args FD3KIND ARGV...
# Prints FAIL: ... and exits 1 on any deviation.
import errno, fcntl, os, random, re, signal, socket, struct, subprocess, sys, time

HELPER, TUN, LWIP4, LWIP6, ERRFILE, SCEN = sys.argv[1:7]
REST = sys.argv[7:]
MAGIC = 0x454E4E41
REQ = struct.Struct('=IIBBBBHH16s')        # 32 bytes
REP = struct.Struct('=IIiBBH16sI')         # 36 bytes
PUBLISH, UNPUBLISH, ORIGDST = 1, 2, 3
NET_ADMIN = 1 << 12

def fail(msg):
    print('FAIL: ' + msg, file=sys.stderr)
    sys.exit(1)

def req(seq, op, port, family=0, rport=0, raddr=b'', proto=6, pad=0, magic=MAGIC):
    return REQ.pack(magic, seq, op, proto, family, pad, port, rport, raddr.ljust(16, b'\0'))

class Helper:
    def __init__(self, argv=None, fd3='sock'):
        self.sock = None
        child = None
        if fd3 == 'sock':
            self.sock, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            child = b
        elif fd3 == 'stream':
            self.sock, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            child = b
        elif fd3 == 'pipe':
            r, w = os.pipe()
            self.pipe_w = w
            child = r
        elif fd3 == 'devnull':
            child = os.open('/dev/null', os.O_RDONLY | os.O_CLOEXEC)
        elif fd3 != 'closed':
            fail('unknown fd3 kind ' + fd3)
        cfd = child.fileno() if isinstance(child, socket.socket) else child
        # a descriptor the helper must not keep (it closes everything above 3)
        canary_path = ERRFILE + '.canary'
        open(canary_path, 'w').close()
        tmp = os.open(canary_path, os.O_RDONLY)
        self.canary = fcntl.fcntl(tmp, fcntl.F_DUPFD, 20)   # inheritable, > 3
        os.close(tmp)
        self.canary_path = os.path.realpath(canary_path)

        def pre():
            if cfd is None:
                try:
                    os.close(3)
                except OSError:
                    pass
            elif cfd == 3:
                os.set_inheritable(3, True)
            else:
                os.dup2(cfd, 3)            # the copy is inheritable
        if argv is None:
            argv = [HELPER, '--tun', TUN, '--lwip4', LWIP4, '--lwip6', LWIP6]
        self.errf = open(ERRFILE, 'w')
        self.p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self.errf, stderr=self.errf,
                                  close_fds=False, preexec_fn=pre)
        os.close(self.canary)
        if isinstance(child, socket.socket):
            child.close()
        elif child is not None:
            os.close(child)
        if self.sock:
            self.sock.settimeout(10)

    def stderr(self):
        self.errf.flush()
        with open(ERRFILE) as f:
            return f.read()

    def wait_ready(self):
        try:
            m = self.sock.recv(64)
        except socket.timeout:
            fail('no ready reply within 10 s; stderr: ' + self.stderr())
        if len(m) != REP.size:
            fail('ready reply of %d bytes; stderr: %s' % (len(m), self.stderr()))
        magic, seq, err, fam, z, port, addr, tail = REP.unpack(m)
        if magic != MAGIC or seq != 0 or err != 0 or fam or z or port or any(addr) or tail:
            fail('bad ready reply (err %d); stderr: %s' % (err, self.stderr()))

    def call(self, seq, msg):
        self.sock.send(msg)
        try:
            m = self.sock.recv(64)
        except socket.timeout:
            fail('no reply to request %d' % seq)
        if len(m) != REP.size:
            fail('reply of %d bytes to request %d' % (len(m), seq))
        magic, rseq, err, fam, z, port, addr, tail = REP.unpack(m)
        if magic != MAGIC or rseq != seq or z or tail:
            fail('malformed reply to request %d: %r' % (seq, m))
        return err, fam, port, addr

    def expect_exit(self, status, what):
        try:
            rc = self.p.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.p.kill()
            fail('%s: the helper did not exit within 15 s' % what)
        if rc != status:
            fail('%s: exit status %d, expected %d; stderr: %s' % (what, rc, status, self.stderr()))

    def expect_eof(self, what):
        """No reply, only the end of the helper's socket."""
        try:
            m = self.sock.recv(64)
        except socket.timeout:
            fail('%s: the helper did not close its socket within 10 s' % what)
        if m:
            fail('%s: got a %d-byte reply instead of EOF' % (what, len(m)))

def status_fields(pid):
    out = {}
    with open('/proc/%d/status' % pid) as f:
        for line in f:
            k, _, v = line.partition(':')
            out[k] = v.strip()
    return out

def check_privileges(h):
    pid = h.p.pid
    st = status_fields(pid)
    want = {'CapEff': '%016x' % NET_ADMIN, 'CapPrm': '%016x' % NET_ADMIN, 'CapBnd': '%016x' % NET_ADMIN,
            'CapInh': '0' * 16, 'CapAmb': '0' * 16, 'NoNewPrivs': '1'}
    for k, v in want.items():
        if st.get(k) != v:
            fail('/proc/%d/status %s: %s, expected %s' % (pid, k, st.get(k), v))
    for fd in os.listdir('/proc/%d/fd' % pid):
        try:
            target = os.readlink('/proc/%d/fd/%s' % (pid, fd))
        except OSError:
            continue
        if target == h.canary_path:
            fail('the helper kept inherited descriptor %s (%s)' % (fd, target))
        if int(fd) == 3 and not target.startswith('socket:'):
            fail('descriptor 3 is %s' % target)

def nft(*args):
    r = subprocess.run(['nft'] + list(args), capture_output=True, text=True)
    if r.returncode:
        fail('nft %s: %s' % (' '.join(args), r.stderr.strip()))
    return r.stdout

def tables():
    return set(re.findall(r'^table inet (\S+)', nft('list', 'tables'), re.M))

def ports():
    out = nft('list', 'set', 'inet', 'enoshim-' + TUN, 'ports')
    m = re.search(r'elements = \{([^}]*)\}', out)
    return set(int(x) for x in re.findall(r'\d+', m.group(1))) if m else set()

def sysctl(path):
    with open('/proc/sys/net/' + path) as f:
        return f.read().strip()

def check_running(h):
    """Set up as nat.h says: both tables, forwarding switched on."""
    t = tables()
    if t != {'enoshim', 'enoshim-' + TUN}:
        fail('tables while running: %s' % sorted(t))
    for i in (TUN, 'enodum0', 'enodum1'):
        if sysctl('ipv4/conf/%s/forwarding' % i) != '1':
            fail('IPv4 forwarding not switched on on %s' % i)
    if LWIP6 != 'none' and os.path.exists('/proc/sys/net/ipv6/conf/%s/force_forwarding' % TUN):
        if sysctl('ipv6/conf/%s/force_forwarding' % TUN) != '1':
            fail('IPv6 force_forwarding not switched on on %s' % TUN)
    check_privileges(h)

def publish_one(h, seq, port):
    err, *_ = h.call(seq, req(seq, PUBLISH, port))
    if err:
        fail('PUBLISH %d: error %d' % (port, err))
    if port not in ports():
        fail('port %d not in the set after PUBLISH: %s' % (port, sorted(ports())))

def scen_publish():
    h = Helper()
    h.wait_ready()
    check_running(h)
    if ports():
        fail('ports published at start: %s' % sorted(ports()))
    publish_one(h, 1, 8443)
    publish_one(h, 2, 443)
    publish_one(h, 3, 65535)
    err, *_ = h.call(4, req(4, UNPUBLISH, 8443))
    if err:
        fail('UNPUBLISH 8443: error %d' % err)
    if ports() != {443, 65535}:
        fail('after UNPUBLISH 8443 the set is %s' % sorted(ports()))
    err, *_ = h.call(5, req(5, UNPUBLISH, 8443))
    if err != errno.EIO:
        fail('UNPUBLISH of a port not published: error %d, expected EIO' % err)
    # ORIGDST of flows conntrack does not know (v6 too when there is no
    # IPv6): an error, no address
    for seq, fam, addr in ((6, 4, socket.inet_pton(socket.AF_INET, '192.0.2.9')),
                           (7, 6, socket.inet_pton(socket.AF_INET6, '2001:db8::9'))):
        err, rfam, rport, raddr = h.call(seq, req(seq, ORIGDST, 8443, fam, 40000, addr))
        if err == 0 or rfam or rport or any(raddr):
            fail('ORIGDST of an unknown v%d flow: err %d family %d port %d' % (fam, err, rfam, rport))
    err, *_ = h.call(8, req(8, UNPUBLISH, 443))
    if err or ports() != {65535}:
        fail('UNPUBLISH 443: error %d, set %s' % (err, sorted(ports())))
    # signals to the process group (^C) must not end it before it cleaned up
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        h.p.send_signal(sig)
    publish_one(h, 9, 1)
    if h.p.poll() is not None:
        fail('the helper died of a signal')
    h.sock.close()
    h.expect_exit(0, 'EOF after publishing')
    if 'malformed' in h.stderr() or re.search(r'\]: error: ', h.stderr()):
        fail('unexpected stderr: ' + h.stderr())

def scen_eof():
    h = Helper()
    h.wait_ready()
    check_running(h)
    publish_one(h, 1, 8080)
    h.sock.shutdown(socket.SHUT_RDWR)
    h.expect_exit(0, 'EOF')
    h.sock.close()
    if re.search(r'\]: (error|warning): ', h.stderr()):
        fail('unexpected stderr: ' + h.stderr())

def scen_empty():
    """A zero-length message reads as EOF: teardown and exit."""
    h = Helper()
    h.wait_ready()
    publish_one(h, 1, 8080)
    h.sock.send(b'')
    h.expect_eof('empty message')
    h.expect_exit(0, 'empty message')

def scen_setupfail():
    """Setup fails half-way (an interface's forwarding cannot be written):
    an error reply, the reason, exit 1."""
    h = Helper()
    try:
        m = h.sock.recv(64)
    except socket.timeout:
        fail('no reply within 10 s')
    if len(m) != REP.size or REP.unpack(m)[2] != errno.EPERM:
        fail('expected an EPERM reply, got %r; stderr: %s' % (m, h.stderr()))
    why = h.sock.recv(1024).decode(errors='replace')
    if 'forwarding' not in why:
        fail('reason %r does not name forwarding' % why)
    h.expect_exit(1, 'failed setup')

def garbage(name):
    rng = random.Random(name)
    good = req(7, PUBLISH, 9000)
    return {
        'random': bytes(rng.getrandbits(8) for _ in range(32)),
        'random-long': bytes(rng.getrandbits(8) for _ in range(200)),
        'len31': good[:31],
        'len33': good + b'\0',
        'len4096': good + bytes(4096 - 32),
        'len1': b'\x41',
        'magic': req(7, PUBLISH, 9000, magic=0x414E4E45),
        'op9': req(7, 9, 9000),
        'op0': req(7, 0, 9000),
        'proto17': req(7, PUBLISH, 9000, proto=17),
        'port0': req(7, PUBLISH, 0),
        'pad': req(7, UNPUBLISH, 9000, pad=1),
        'origdst-family5': req(7, ORIGDST, 9000, 5, 1, b'\xc0\x00\x02\x01'),
    }[name]

def scen_garbage(name):
    msg = garbage(name)
    h = Helper()
    h.wait_ready()
    publish_one(h, 1, 8443)          # something to tear down
    h.sock.send(msg)
    h.expect_eof('garbage %s' % name)
    h.expect_exit(0, 'garbage %s' % name)
    if 'malformed request' not in h.stderr():
        fail('garbage %s: no "malformed request" on stderr: %r' % (name, h.stderr()))

def scen_args(kind, argv):
    h = Helper([HELPER] + argv, fd3=kind)
    if h.sock and kind == 'sock':
        h.expect_eof('bad command line')
    h.expect_exit(2, 'command line %r, fd 3 %s' % (argv, kind))
    err = h.stderr()
    want = 'usage:' if kind == 'sock' else 'descriptor 3'
    if want not in err:
        fail('command line %r, fd 3 %s: stderr %r lacks %r' % (argv, kind, err, want))

if SCEN == 'publish':
    scen_publish()
elif SCEN == 'eof':
    scen_eof()
elif SCEN == 'empty':
    scen_empty()
elif SCEN == 'setupfail':
    scen_setupfail()
elif SCEN == 'garbage':
    scen_garbage(REST[0])
elif SCEN == 'args':
    scen_args(REST[0], REST[1:])
else:
    fail('unknown scenario ' + SCEN)
EOF

drv() {   # drv LWIP6 SCENARIO [ARGS...]
  local v6=$1; shift
  in_ns timeout 25 "$PY" "$WORK/natdrv.py" "$HELPER" "$TUN" 10.77.0.2 "$v6" "$WORK/$1.err" "$@"
}

# ---- (d) bad command lines and descriptors: exit 2, nftables untouched ----------
# A stale table of this TUN's name, as a crashed tund would leave: a helper
# that got past its checks would delete it at setup.
in_ns nft add table inet "enoshim-$TUN" '{ comment "stale"; }' || fail "cannot make the stale table"
in_ns nft add set inet "enoshim-$TUN" ports '{ type inet_service; elements = { 4242 }; }'
RULES0=$(in_ns nft list ruleset)
bad=0
refused() {   # refused FD3KIND ARGS...: exit 2, nothing in nftables or sysctls changed
  drv none args "$@" || fail "refused start: $*"
  [ "$(in_ns nft list ruleset)" = "$RULES0" ] || fail "nftables changed by a refused start ($*)"
  [ "$(sysctls)" = "$BASE_SYSCTLS" ] || fail "sysctls changed by a refused start ($*)"
  bad=$((bad + 1))
}
okargs=(--tun "$TUN" --lwip4 10.77.0.2 --lwip6 fd7e:e0::2)
refused sock --lwip4 10.77.0.2 --lwip6 none                           # no --tun (argc 5)
refused sock --lwip6 none --lwip4 10.77.0.2 --lwip6 none              # no --tun (argc 7)
refused sock --tun 'eno"x' --lwip4 10.77.0.2 --lwip6 none             # a quote in the name
refused sock --tun 'x";flush' --lwip4 10.77.0.2 --lwip6 none
refused sock --tun 'a\b' --lwip4 10.77.0.2 --lwip6 none
refused sock --tun ../all --lwip4 10.77.0.2 --lwip6 none
refused sock --tun 'eno x' --lwip4 10.77.0.2 --lwip6 none
refused sock --tun eth0:1 --lwip4 10.77.0.2 --lwip6 none
refused sock --tun abcdefghijklmnop --lwip4 10.77.0.2 --lwip6 none   # 16 characters
refused sock --tun "$TUN" --lwip4 10.77.0.2 --lwip6 none --debug 1
refused sock --tun "$TUN" --tun "$TUN" --lwip6 none
refused sock --tun "$TUN" --lwip4 10.77.0.256 --lwip6 none
refused sock --tun "$TUN" --lwip4 10.77.0.2 --lwip6 10.77.0.2
refused sock
refused closed "${okargs[@]}"                                         # fd 3 is not a socket
refused pipe "${okargs[@]}"
refused devnull "${okargs[@]}"
refused stream "${okargs[@]}"                                         # a socket, not SEQPACKET
[ "$(in_ns nft list set inet "enoshim-$TUN" ports | grep -c 4242)" = 1 ] || fail "the stale table lost its element"
in_ns nft delete table inet "enoshim-$TUN"
check_clean "refused starts"
note "$bad refused starts: exit 2, nftables and sysctls untouched"

# ---- (a) publish / unpublish, privileges, signals; then EOF ----------------------
drv fd7e:e0::2 publish || fail "publish scenario"
check_clean "publish + EOF"
drv none publish || fail "publish scenario without IPv6"
check_clean "publish + EOF (no IPv6)"
note "PUBLISH/UNPUBLISH/ORIGDST answered; CapEff = CAP_NET_ADMIN, NoNewPrivs 1; torn down on EOF"

# ---- (c) EOF, and an empty message ------------------------------------------------
drv fd7e:e0::2 eof || fail "EOF scenario"
check_clean "EOF"
drv fd7e:e0::2 empty || fail "empty-message scenario"
check_clean "empty message"
note "EOF and an empty message: exit 0, torn down"

# ---- a setup that fails half-way leaves nothing behind ---------------------------------
# The last interface's IPv4 forwarding is read-only (a bind mount, in this
# run's own mount namespace): the TUN's was switched on before that failed.
last=$(in_ns ip -o link show | tail -n 1 | awk -F': ' '{ print $2 }' | cut -d@ -f1)
case $last in "$TUN"|lo|"") fail "unexpected interface order (last: '$last')";; esac
echo 0 >"$WORK/ro-forwarding"
# shellcheck disable=SC2016  # expanded by the inner sh
in_ns sh -c 'f=/proc/sys/net/ipv4/conf/$1/forwarding; shift
  mount --bind "$0" "$f" && mount -o remount,bind,ro "$f" || exit 3
  exec "$@"' "$WORK/ro-forwarding" "$last" \
  timeout 25 "$PY" "$WORK/natdrv.py" "$HELPER" "$TUN" 10.77.0.2 fd7e:e0::2 "$WORK/setupfail.err" setupfail ||
  fail "setup failing on $last"
check_clean "failed setup"
note "setup failing half-way (read-only forwarding on $last): exit 1, nothing left behind"

# ---- (b) garbage, each in a fresh helper --------------------------------------------
n=0
for g in random random-long len31 len33 len4096 len1 magic op9 op0 proto17 port0 pad origdst-family5; do
  drv fd7e:e0::2 garbage "$g" || fail "garbage '$g'"
  check_clean "garbage '$g'"
  n=$((n + 1))
done
note "$n malformed requests: \"malformed request\", exit, torn down"

echo ok
