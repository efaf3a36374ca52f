#!/usr/bin/env bash
# A tund given file capabilities (README "Using it": setcap cap_net_admin+ep)
# run by an ordinary user (issue 15 point 2; tund/secure.c):
#   1. network settings of the user's choosing are refused, each in one line
#      and before anything is set up (no TUN appears): --tun=hij0
#      --host_ipv4=1.1.1.1/1 (the issue's case), --host-ipv4 alone,
#      --socket, --keylog, --config FILE, and ENOSHIM_CONFIG / ENOSHIM_SOCKET
#      in the environment; --help still answers;
#   2. without the administrator's file (/etc/enoshim/tund.conf) it does
#      not start, nor with one that others can write;
#   3. with that file (root's, 0644; written here and removed at exit, an
#      existing one kept aside and put back) it starts with exactly its
#      settings: the TUN and address it names, its socket, IPv6 off; it says
#      where its settings came from (pid file too); it then holds no
#      capability; its own
#      user reaches it with enoctl and stops it.
. "$(dirname "$0")/lib.sh"
ip netns add "$NS" || fail "cannot create namespace (need root)"
chmod 711 "$WORK"
CAP=$WORK/cap
mkdir -m 755 "$CAP"
cp "$BUILD/tund" "$CAP/tund" || fail "build first"
ln -s tund "$CAP/enoctl"
setcap cap_net_admin+ep "$CAP/tund" || fail "setcap failed"
AS_USER=(setpriv --reuid=nobody --regid=nogroup --clear-groups --)
CONF=/etc/enoshim/tund.conf
if [ -e "$CONF" ]; then
  mv "$CONF" "$WORK/tund.conf.saved"
  on_exit "mv $WORK/tund.conf.saved $CONF"
else
  on_exit "rm -f $CONF; rmdir /etc/enoshim 2>/dev/null"
fi
mkdir -p /etc/enoshim
# /dev/net/tun must be usable by the user (crw-rw-rw- on Debian/Ubuntu): made
# so for the test, restored at exit
tunmode=$(stat -c %a /dev/net/tun) || fail "no /dev/net/tun"
on_exit "chmod $tunmode /dev/net/tun"
chmod 0666 /dev/net/tun

run() { "$@" >"$WORK/run.out" 2>"$WORK/run.err"; RC=$?; OUT=$(cat "$WORK/run.out"); ERR=$(cat "$WORK/run.err"); }
no_tun() { in_ns ip -o link show | grep -Ev ': lo:' && fail "$1: a link appeared (above)"; return 0; }
refused() {   # refused WHAT REGEX [env...] -- tund args
  local what=$1 re=$2; shift 2
  local envs=()
  while [ "$1" != -- ]; do envs+=("$1"); shift; done
  shift
  run in_ns env "${envs[@]}" "${AS_USER[@]}" "$CAP/tund" "$@"
  [ $RC -eq 2 ] || fail "$what: exit $RC, want 2 ($ERR)"
  [ "$(printf '%s\n' "$ERR" | grep -c .)" -eq 1 ] || fail "$what: want one line, got: $ERR"
  printf '%s' "$ERR" | grep -Eq -- "$re" || fail "$what: '$ERR' does not match '$re'"
  no_tun "$what"
}
REFUSED="refused: tund runs with privileges its user does not have \(file capabilities\), so it takes its settings only from /etc/enoshim/tund.conf \(root's, writable by root only\)$"

# ---- 1. the command line and the environment ----------------------------------------------
printf 'tun = enocap0\n' >"$CONF"; chmod 644 "$CONF"   # a valid file: the refusals are not about it
refused "--tun=hij0 --host_ipv4=1.1.1.1/1" "^tund: --tun: $REFUSED" -- --tun=hij0 --host_ipv4=1.1.1.1/1
note "1. $ERR"
refused "--host-ipv4 alone" "^tund: --host-ipv4: refused" -- --host-ipv4 0.0.0.0/1
refused "--socket" "^tund: --socket: refused" -- --socket "$WORK/x.sock"
refused "--keylog" "^tund: --keylog: refused" -- -v --keylog=/tmp/k
refused "--config" "^tund: --config: refused" -- --config "$CONF"
refused "ENOSHIM_CONFIG" "^tund: ENOSHIM_CONFIG: $REFUSED" ENOSHIM_CONFIG="$CONF" --
refused "ENOSHIM_SOCKET" "^tund: ENOSHIM_SOCKET: refused" ENOSHIM_SOCKET="$WORK/y.sock" --
run in_ns "${AS_USER[@]}" "$CAP/tund" --help
[ $RC -eq 0 ] && printf '%s' "$OUT" | head -1 | grep -q "^usage: tund" || fail "--help with file capabilities: exit $RC $ERR"
note "   also refused: --host-ipv4, --socket, --keylog, --config, ENOSHIM_CONFIG, ENOSHIM_SOCKET (no link appeared); --help answers"

# ---- 2. the administrator's file must be there and be root's alone ------------------------------
rm -f "$CONF"
refused "no $CONF" "^tund: runs with privileges its user does not have \(file capabilities\) and needs the administrator's settings: /etc/enoshim/tund.conf: No such file or directory$" --
printf 'tun = enocap0\n' >"$CONF"; chmod 666 "$CONF"
refused "$CONF mode 0666" "needs the administrator's settings: /etc/enoshim/tund.conf must belong to root and be writable by root only \(it is uid 0, mode 0666\)" --
note "2. no file, or one others can write: refused ($ERR)"

# ---- 3. the administrator's settings, and only those --------------------------------------------------
mkdir -m 700 "$WORK/capsock"; chown nobody "$WORK/capsock"
cat >"$CONF" <<EOF
# written by t_setcap
tun = enocap0
host_ipv4 = 10.99.0.1/24
lwip_ipv4 = 10.99.0.2
host_ipv6 = none
real_hosts = no
socket = $WORK/capsock/tund.sock
pidfile = $WORK/capsock/tund.pid
EOF
chmod 644 "$CONF"
in_ns "${AS_USER[@]}" "$CAP/tund" -v >"$WORK/tund-cap.log" 2>&1 &
tp=$!
on_exit "kill $tp"
wait_log "$WORK/tund-cap.log" "ready:" 10
grep -q "info: file capabilities: settings from /etc/enoshim/tund.conf only" "$WORK/tund-cap.log" ||
  fail "tund did not say where its settings came from: $(cat "$WORK/tund-cap.log")"
grep -q "ready: enocap0 mtu 1500, lwIP 10.99.0.2 / none, socket $WORK/capsock/tund.sock" "$WORK/tund-cap.log" ||
  fail "not the administrator's settings: $(grep ready: "$WORK/tund-cap.log")"
in_ns ip -4 -o addr show dev enocap0 | grep -q "inet 10.99.0.1/24" || fail "enocap0 has not 10.99.0.1/24"
links=$(in_ns ip -o link show | awk -F': ' '{ print $2 }' | grep -v '^lo$' | tr '\n' ' ')
[ "$links" = "enocap0 " ] || fail "links in the namespace: '$links' (want enocap0 only)"
tpid=$(cat "$WORK/capsock/tund.pid") || fail "no pid file"
[ "$(stat -c %U /proc/$tpid)" = nobody ] || fail "tund (pid $tpid) does not run as nobody"
caps=$(grep -E '^(CapPrm|CapEff|NoNewPrivs):' /proc/$tpid/status | tr -s '\t ' ' ' | paste -sd' ')
[ "$caps" = "CapPrm: 0000000000000000 CapEff: 0000000000000000 NoNewPrivs: 1" ] || fail "tund runs with $caps"
run in_ns "${AS_USER[@]}" "$CAP/enoctl" --socket "$WORK/capsock/tund.sock" status
[ $RC -eq 0 ] || fail "its user's enoctl status: $ERR"
run in_ns "${AS_USER[@]}" "$CAP/enoctl" --socket "$WORK/capsock/tund.sock" stop
[ $RC -eq 0 ] && [ "$OUT" = stopping ] || fail "its user's enoctl stop: exit $RC $OUT $ERR"
wait_gone $tpid 10 || fail "tund did not stop"
note "3. with root's $CONF: enocap0 10.99.0.1/24, lwIP 10.99.0.2, no IPv6, socket as written; then $caps"
echo ok
