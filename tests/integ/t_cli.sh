#!/usr/bin/env bash
# The command lines of tund and enoctl (issue 16 point 3 and 4, issue 15
# point 3):
#   1. --help, -h, --version of both answer without a tund (exit 0, stdout,
#      one version string: include/enoshim/version.h);
#   2. usage errors exit 2 with one line on stderr (unknown option, command,
#      operand, missing value, rekey xyz ...), nothing on stdout;
#   3. a bad value names the allowed range or values, the same for --key VALUE,
#      --key=VALUE and --key-with-dashes; --config FILE = --config=FILE; a
#      directory, a missing or an unreadable --config is an error naming it;
#      $VAR in a config file is the environment's, an unset one is an error
#      naming it;
#   4. docs/tund.conf.example loads as shipped (in a namespace of its own,
#      its socket at $ENOSHIM_SOCKET), settings given as --key VALUE take effect;
#   5. enoctl: "no tund" (no socket, nothing listening), "permission denied",
#      "did not answer within S s" on a socket that accepts and never answers
#      (the default bound 5 s and --timeout), each exit 1;
#   6. enoctl runs with no capability at all (CapEff/CapPrm/CapAmb 0,
#      NoNewPrivs 1, read in /proc while it waits on the silent socket), also
#      from a copy of tund given cap_net_admin+ep and run by an ordinary user
#      (the same copy run as tund refuses --config and expands no $VAR of its
#      user's environment in the administrator's /etc/enoshim/tund.conf);
#   7. enoctl status with connections open: fits 100 columns, program name,
#      state, peer, encryption, age, bytes; --wide has the session ID; --json
#      is valid JSON (python3 -m json.tool) with names and numbers, and a
#      program name full of quotes, backslashes and control characters
#      survives the escaping; rekey 99999 says "no connection 99999";
#   8. tund's log: every line starts with a readable timestamp, and no
#      "failed: Success" (tund -v, connections and listeners closed).
. "$(dirname "$0")/lib.sh"
TUND=$BUILD/tund
ENOCTL=$BUILD/enoctl
VERSION=$(sed -n 's/^#define ENOSHIM_VERSION "\(.*\)"/\1/p' "$TOP/include/enoshim/version.h")
[ -n "$VERSION" ] || fail "no ENOSHIM_VERSION in include/enoshim/version.h"
export ENOSHIM_SOCKET=$WORK/nothing-here.sock    # no tund anywhere for parts 1-3

# run CMD...: RC, OUT, ERR
run() { "$@" >"$WORK/run.out" 2>"$WORK/run.err"; RC=$?; OUT=$(cat "$WORK/run.out"); ERR=$(cat "$WORK/run.err"); }
lines() { [ -z "$1" ] && echo 0 || printf '%s\n' "$1" | wc -l; }
# no script or program internals in what a user reads
clean_text() {
  ! printf '%s' "$1" | grep -Eq 'line [0-9]+:|unbound variable|Success|Segmentation|Assertion|\(null\)'
}
NOBODY=(setpriv --reuid=nobody --regid=nogroup --clear-groups --)   # exec's the command: $! is its pid

# ---- 1. help and version --------------------------------------------------
for p in tund enoctl; do
  for a in --help -h; do
    run "$BUILD/$p" $a
    [ $RC -eq 0 ] || fail "$p $a: exit $RC (stderr: $ERR)"
    printf '%s\n' "$OUT" | head -1 | grep -q "^usage: $p " || fail "$p $a: no usage line: $OUT"
    [ -z "$ERR" ] || fail "$p $a wrote to stderr: $ERR"
    clean_text "$OUT" || fail "$p $a: internals in the text: $OUT"
  done
  run "$BUILD/$p" --version
  [ $RC -eq 0 ] && [ "$OUT" = "$p (enoshim) $VERSION" ] && [ -z "$ERR" ] ||
    fail "$p --version: exit $RC, '$OUT' (want '$p (enoshim) $VERSION'), stderr '$ERR'"
done
run "$ENOCTL" status --help
[ $RC -eq 0 ] && printf '%s' "$OUT" | grep -q "^usage: enoctl" || fail "enoctl status --help: exit $RC: $ERR"
note "1. --help, -h, --version of tund and enoctl: exit 0 without a tund ($VERSION)"

# ---- 2. usage errors ------------------------------------------------------
usage_err() {   # usage_err DESCRIPTION-REGEX CMD...
  local re=$1; shift
  run "$@"
  [ $RC -eq 2 ] || fail "'${*#"$BUILD/"}': exit $RC, want 2 (stdout '$OUT', stderr '$ERR')"
  [ -z "$OUT" ] || fail "'${*#"$BUILD/"}': wrote to stdout: $OUT"
  [ "$(lines "$ERR")" -eq 1 ] || fail "'${*#"$BUILD/"}': want one line on stderr, got: $ERR"
  printf '%s' "$ERR" | grep -Eq -- "$re" || fail "'${*#"$BUILD/"}': '$ERR' does not match '$re'"
  clean_text "$ERR" || fail "'${*#"$BUILD/"}': internals in: $ERR"
}
usage_err "unknown option '--bogus'" "$TUND" --bogus
usage_err "unknown option '--bogus'" "$TUND" --bogus=1
usage_err "unknown option '--bogus'" "$TUND" --bogus 1 --mtu 1500
usage_err "unknown option '-x'" "$TUND" -x
usage_err "unexpected argument 'foo'" "$TUND" foo
usage_err "unexpected argument 'foo'" "$TUND" -- foo
usage_err "'--mtu' needs a value" "$TUND" --mtu
usage_err "'--config' needs a value" "$TUND" --config
usage_err "takes no value" "$TUND" --help=yes
usage_err "ready-fd: 'x' is not a descriptor" "$TUND" --ready-fd x
usage_err "no command given" "$ENOCTL"
usage_err "unknown command 'bogus'" "$ENOCTL" bogus
usage_err "unknown option '--bogus'" "$ENOCTL" --bogus status
usage_err "unknown option '--bogus'" "$ENOCTL" status --bogus
usage_err "unknown option '-q'" "$ENOCTL" -q status
usage_err "rekey: 'xyz' is not a connection ID" "$ENOCTL" rekey xyz
usage_err "rekey: '-1' is not|unknown option" "$ENOCTL" rekey -- -1
usage_err "rekey needs a connection ID" "$ENOCTL" rekey
usage_err "unexpected argument '2'" "$ENOCTL" rekey 1 2
usage_err "unexpected argument 'now'" "$ENOCTL" stop now
usage_err "unexpected argument 'x'" "$ENOCTL" status x
usage_err "--json applies to status only" "$ENOCTL" --json stop
usage_err "exclude each other" "$ENOCTL" status --json --wide
usage_err "'--socket' needs a value" "$ENOCTL" status --socket
usage_err "--timeout: 'soon' is not a number of seconds in 0.1..3600" "$ENOCTL" --timeout soon status
usage_err "--timeout: '0' is not" "$ENOCTL" --timeout=0 status
note "2. usage errors: exit 2, one line on stderr (tund: 10 cases, enoctl: 16)"

# ---- 3. bad values, both forms ------------------------------------------------
badval() {   # badval KEY VALUE REGEX
  local k=$1 v=$2 re=$3 e1 e2 e3
  usage_err "$re" "$TUND" "--$k" "$v"; e1=$ERR
  usage_err "$re" "$TUND" "--$k=$v"; e2=$ERR
  usage_err "$re" "$TUND" "--${k//_/-}=$v"; e3=$ERR
  [ "$e1" = "$e2" ] && [ "$e2" = "$e3" ] || fail "--$k: the forms say different things: '$e1' / '$e2' / '$e3'"
}
badval mtu 99 "^tund: mtu: 99 is out of range 1280\.\.65535$"
badval mtu 70000 "mtu: 70000 is out of range 1280\.\.65535"
badval mtu big "mtu: 'big' is not a number \(1280\.\.65535\)"
badval txqueuelen 2000000 "out of range 0\.\.1000000"
badval resume_nonce_len 9 "resume_nonce_len: 9 is out of range 0\.\.8"
badval eno_drop_syn_after 17 "out of range 0\.\.16"
badval ring_size 5000 "not a power of two in 4096\.\.67108864"
badval poll_us 20000 "poll_us: 20000 is out of range 0\.\.10000"
badval eno_teps zz "'zz' is not a byte in hex"
badval eno_teps 99 "TEP 99 is out of range 20\.\.7f"
badval crypt_aconf rot13 "'rot13' is not one of aes128gcm, aes256gcm, chacha20poly1305"
badval host_ipv4 1.2.3 "'1\.2\.3' is not an IPv4 address"
badval host_ipv6 nope "'nope' is not an IPv6 address.* or none"
badval real_hosts maybe "'maybe' is not yes or no"
badval eno_bad_connect_ports 0 "'0' is not a port \(1\.\.65535\)"
badval direct foo/99 "'foo/99' is not an address prefix"
badval user no-such-user-here "no user named 'no-such-user-here'"
badval tun a/b "not an interface name"
# --config: the same file both ways; directory, missing, unreadable
printf 'mtu = 1500\n# a comment\nmtu = 99   # too small\n' >"$WORK/bad.conf"
usage_err "bad\.conf:3: mtu: 99 is out of range 1280\.\.65535" "$TUND" --config "$WORK/bad.conf"; e1=$ERR
usage_err "bad\.conf:3: mtu: 99 is out of range 1280\.\.65535" "$TUND" --config="$WORK/bad.conf"; e2=$ERR
[ "${e1#* error: }" = "${e2#* error: }" ] || fail "--config FILE / --config=FILE differ: '$e1' / '$e2'"
usage_err "config $WORK: it is a directory" "$TUND" --config "$WORK"
usage_err "config $WORK/missing\.conf: No such file" "$TUND" --config="$WORK/missing.conf"
printf 'mtu = 1500\n' >"$WORK/secret.conf"; chmod 600 "$WORK/secret.conf"; chmod 711 "$WORK"
usage_err "config $WORK/secret\.conf: Permission denied" "${NOBODY[@]}" "$TUND" --config "$WORK/secret.conf"
chmod 700 "$WORK"
usage_err "unknown setting 'colour'" "$TUND" --config <(printf 'colour = blue\n')
# environment variables in the file
printf 'mtu = ${T_CLI_MTU}\n' >"$WORK/var.conf"
usage_err "var\.conf:1: mtu: environment variable T_CLI_MTU is not set" "$TUND" --config "$WORK/var.conf"
T_CLI_MTU=99 usage_err "var\.conf:1: mtu: 99 is out of range" "$TUND" --config "$WORK/var.conf"
printf 'mtu = $T_CLI_MTU\n' >"$WORK/var2.conf"
T_CLI_MTU=1 usage_err "var2\.conf:1: mtu: 1 is out of range" "$TUND" --config "$WORK/var2.conf"
printf 'mtu = 1${T_CLI_MTU\n' >"$WORK/var3.conf"
usage_err "no closing '}'" "$TUND" --config "$WORK/var3.conf"
printf 'pidfile = /tmp/$\n' >"$WORK/var4.conf"
usage_err "write .NAME or .\{NAME\}, or .. for '.'" "$TUND" --config "$WORK/var4.conf"
note "3. bad values name their range (17 keys, 3 forms alike); --config errors name the file; \$VAR in files"

# ---- 4. the example configuration, as shipped ------------------------------------
NSX=$NS-x
ip netns add "$NSX" || fail "cannot create namespace (need root)"
on_exit "ip netns pids $NSX | xargs -r kill -9; ip netns del $NSX"
ip netns exec "$NSX" ip link set lo up
mkdir -m 700 "$WORK/xdg"
# socket empty = the default: $ENOSHIM_SOCKET here (root's own default,
# /run/enoshim/tund.sock, is the host's: t_ctl_trust looks at it in a /run
# of its own)
EXSOCK=$WORK/xdg/enoshim/tund.sock
ip netns exec "$NSX" env -u ENOSHIM_CONFIG ENOSHIM_SOCKET="$EXSOCK" XDG_RUNTIME_DIR="$WORK/xdg" \
  "$TUND" --config "$TOP/docs/tund.conf.example" --pidfile "$WORK/ex.pid" >"$WORK/tund-ex.log" 2>&1 &
expid=$!
wait_log "$WORK/tund-ex.log" "ready:" 10
[ -S "$EXSOCK" ] || fail "the example's socket is not at \$ENOSHIM_SOCKET: $(cat "$WORK/tund-ex.log")"
grep -q "ready: enotun0 mtu 1500, lwIP 10.77.0.2 / fd7e:e0::2, socket $EXSOCK" "$WORK/tund-ex.log" ||
  fail "the example's settings are not the ones in effect: $(grep ready: "$WORK/tund-ex.log")"
[ "$(cat "$WORK/ex.pid" 2>/dev/null)" = "$expid" ] || fail "--pidfile FILE (space form) not in effect"
ip netns exec "$NSX" ip -4 addr show dev enotun0 | grep -q "10.77.0.1/24" || fail "enotun0 has not 10.77.0.1/24"
run "$ENOCTL" --socket "$EXSOCK" status
[ $RC -eq 0 ] || fail "enoctl status on the example's tund: $ERR"
# an ordinary user reaches neither the socket nor its directory: permission denied
chmod 711 "$WORK"
run "${NOBODY[@]}" "$ENOCTL" --socket "$EXSOCK" status
chmod 700 "$WORK"
[ $RC -eq 1 ] && printf '%s' "$ERR" | grep -q "permission denied" || fail "enoctl as nobody: exit $RC, '$ERR' (want permission denied)"
run "$ENOCTL" --socket "$EXSOCK" stop
[ $RC -eq 0 ] && [ "$OUT" = stopping ] || fail "enoctl stop: exit $RC: $OUT $ERR"
wait_gone "$expid" 10 || fail "the example's tund did not stop"
wait "$expid"; rc=$?
[ $rc -eq 0 ] || fail "the example's tund exited $rc: $(tail -5 "$WORK/tund-ex.log")"
grep "tund\[" "$WORK/tund-ex.log" | grep -Ev '^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3} tund\[[0-9]+\]: (error|warning|info|debug): ' &&
  fail "tund log lines without a timestamp (above)"
note "4. docs/tund.conf.example loads as shipped: enotun0, 10.77.0.1/24, socket at \$ENOSHIM_SOCKET; nobody: permission denied"

# ---- 5. enoctl: no tund, nothing listening, a silent tund -----------------------------
run "$ENOCTL" --socket "$WORK/absent.sock" status
[ $RC -eq 1 ] && printf '%s' "$ERR" | grep -q "no tund is running at $WORK/absent.sock" ||
  fail "enoctl without a socket: exit $RC: $ERR"
"$PY" -c 'import socket,sys; s=socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET); s.bind(sys.argv[1])' "$WORK/dead.sock"
run "$ENOCTL" --socket "$WORK/dead.sock" rekey all
[ $RC -eq 1 ] && printf '%s' "$ERR" | grep -q "no tund is running at $WORK/dead.sock" ||
  fail "enoctl on a socket nobody listens on: exit $RC: $ERR"
# the silent one: accepts every connection and never answers
mkdir -m 755 "$WORK/silent"
"$PY" - "$WORK/silent/tund.sock" >"$WORK/silent.log" 2>&1 <<'EOF' &
import os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
s.bind(sys.argv[1]); os.chmod(sys.argv[1], 0o777); s.listen(16)
print("listening", flush=True)
held = []
while True:
    c, _ = s.accept(); held.append(c)
EOF
silent=$!
on_exit "kill $silent"
wait_log "$WORK/silent.log" listening 10
SILENT=$WORK/silent/tund.sock
t0=$(date +%s%N)
run "$ENOCTL" --socket "$SILENT" status
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
[ $RC -eq 1 ] && printf '%s' "$ERR" | grep -q "tund at $SILENT did not answer within 5 s" ||
  fail "enoctl on a silent socket: exit $RC: '$ERR'"
[ $ms -ge 4500 ] && [ $ms -le 8000 ] || fail "enoctl gave up after $ms ms, want 5 s"
t0=$(date +%s%N)
run "$ENOCTL" --timeout 0.5 --socket="$SILENT" check
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
[ $RC -eq 1 ] && printf '%s' "$ERR" | grep -q "did not answer within 0.5 s" && [ $ms -le 2500 ] ||
  fail "enoctl --timeout 0.5: exit $RC after $ms ms: '$ERR'"
note "5. enoctl: no tund / nothing listening / silent socket (5 s, --timeout 0.5: $ms ms), exit 1"

# ---- 6. no capability in enoctl -------------------------------------------------------
# /proc/PID/status fields of a process, "Cap...: hex" lines and NoNewPrivs
caps_of() { grep -E '^(CapInh|CapPrm|CapEff|CapAmb|NoNewPrivs):' "/proc/$1/status" | tr -s '\t ' ' ' | paste -sd' '; }
watch_caps() {   # watch_caps WHO CMD...: CMD runs enoctl against the silent socket
  local who=$1; shift
  "$@" --timeout 3 --socket "$SILENT" status >/dev/null 2>"$WORK/caps.err" &
  local p=$! st=
  sleep 0.5
  st=$(caps_of $p) || fail "$who: enoctl already ended: $(cat "$WORK/caps.err")"
  grep -q "did not answer" "$WORK/caps.err" && fail "$who: enoctl ended early"
  wait $p
  [ "$st" = "CapInh: 0000000000000000 CapPrm: 0000000000000000 CapEff: 0000000000000000 CapAmb: 0000000000000000 NoNewPrivs: 1" ] ||
    fail "$who: enoctl runs with $st"
}
watch_caps "root" "$ENOCTL"
capdir=$WORK/capbin
mkdir -m 755 "$capdir"
cp "$TUND" "$capdir/tund"
ln -s tund "$capdir/enoctl"
setcap cap_net_admin+ep "$capdir/tund" || fail "setcap failed"
getcap "$capdir/tund" | grep -q cap_net_admin || fail "the copy carries no capability: $(getcap "$capdir/tund")"
chmod 711 "$WORK"
# the copy does confer privilege on an ordinary user (the kernel runs it
# AT_SECURE): it then takes no --config of that user's (tund/secure.c;
# t_setcap shows it making its TUN and the rest) ...
printf 'mtu = 1500\n' >"$WORK/user.conf"
run env -u ENOSHIM_SOCKET T_CLI_MTU=1500 "${NOBODY[@]}" "$capdir/tund" --config "$WORK/user.conf"
[ $RC -eq 2 ] && printf '%s' "$ERR" | grep -q "^tund: --config: refused: tund runs with privileges its user does not have" ||
  fail "the setcap copy run by nobody took --config: exit $RC: $ERR"
# ... and takes nothing from its user's environment through $VAR in the
# administrator's file either
if [ -e /etc/enoshim/tund.conf ]; then
  mv /etc/enoshim/tund.conf "$WORK/tund.conf.saved"
  on_exit "mv $WORK/tund.conf.saved /etc/enoshim/tund.conf"
else
  on_exit "rm -f /etc/enoshim/tund.conf; rmdir /etc/enoshim"
fi
mkdir -p /etc/enoshim
printf 'mtu = ${T_CLI_MTU}\n' >/etc/enoshim/tund.conf
chmod 644 /etc/enoshim/tund.conf
run env -u ENOSHIM_SOCKET T_CLI_MTU=1500 "${NOBODY[@]}" "$capdir/tund"
[ $RC -eq 2 ] && printf '%s' "$ERR" | grep -q '/etc/enoshim/tund.conf:1: mtu: $T_CLI_MTU: environment variables are not expanded when tund runs with privileges' ||
  fail "the setcap copy expanded \$T_CLI_MTU from its user's environment (exit $RC): $ERR"
rm -f /etc/enoshim/tund.conf
watch_caps "nobody, setcap copy" "${NOBODY[@]}" "$capdir/enoctl"
watch_caps "root, setcap copy" "$capdir/enoctl"
chmod 700 "$WORK"
note "6. enoctl: CapInh/Prm/Eff/Amb 0 and NoNewPrivs 1 as root and from a cap_net_admin+ep copy run by nobody"
note "   (that copy as tund: --config refused, and \$VAR in the administrator's file not expanded)"

# ---- 7. enoctl status, --wide, --json with connections open ------------------------------
topo_up -v
bg_b "$PROGS/echo_srv" 7300 >"$WORK/echo.out" 2>"$WORK/echo.log"
echo_pid=$!
wait_log "$WORK/echo.out" '^listening'
# the client program's name is full of what JSON must escape
odd=$'q"b\\s\x01t'
ln -s "$PROGS/sem_many" "$WORK/$odd"
timeout 60 ip netns exec "$NS" "$ENORUN" --socket "$A_SOCK" -- \
  "$WORK/$odd" "$B4" 7300 3 "$WORK/hold" >"$WORK/many.out" 2>"$WORK/many.log" &
cli=$!
wait_log "$WORK/many.out" '^echoed' 30
sleep 1.1    # an age of at least 1 s
enoctl_a status >"$WORK/st-a.txt" || fail "enoctl status A"
enoctl_b status >"$WORK/st-b.txt" || fail "enoctl status B"
sed 's/^/    | /' "$WORK/st-a.txt" "$WORK/st-b.txt"
for f in st-a st-b; do
  w=$(awk '{ if (length($0) > m) m = length($0) } END { print m }' "$WORK/$f.txt")
  [ "$w" -le 100 ] || fail "$f: enoctl status is $w columns wide (want <= 100)"
done
head -1 "$WORK/st-a.txt" | grep -Eq '^ID +PROGRAM +STATE +LOCAL +PEER +AGE +RX/TX +ENCRYPTION$' ||
  fail "status header: $(head -1 "$WORK/st-a.txt")"
n=$(grep -Ec "^[0-9]+ +q.b.s.t +established +:[0-9]+ +$B4:7300 +[0-9]+s +1\.0K/1\.0K +X25519 AES-128-GCM (fresh|resumed)$" "$WORK/st-a.txt")
[ "$n" -eq 3 ] || fail "tund A: $n lines of the form 'ID q?b?s?t established :PORT $B4:7300 AGE 1.0K/1.0K X25519 AES-128-GCM fresh|resumed', want 3"
grep -Eq "^[0-9]+ +echo_srv +listening +\*:7300 +\* +[0-9]+s +- +-$" "$WORK/st-b.txt" ||
  fail "tund B: no 'echo_srv listening *:7300' line"
[ "$(grep -Ec "^[0-9]+ +echo_srv +established +:7300 +$A4:[0-9]+ .* X25519 AES-128-GCM (fresh|resumed)$" "$WORK/st-b.txt")" -eq 3 ] ||
  fail "tund B: not 3 established echo_srv connections"
enoctl_a status --wide >"$WORK/wide-a.txt" || fail "enoctl status --wide"
head -1 "$WORK/wide-a.txt" | grep -Eq '^ID +PID +PROGRAM +STATE +LOCAL +REMOTE +ENO +ROLE +TEP +AEAD +RESUMED +AGE +RX +TX +REKEYS +SESSION ID / REASON$' ||
  fail "--wide header: $(head -1 "$WORK/wide-a.txt")"
[ "$(grep -Ec " $A4:[0-9]+ +$B4:7300 +encrypting +A +tcpcrypt-X25519 +AES-128-GCM +(no|yes) +[0-9]+s +1024 +1024 +0 +[2a]3[0-9a-f]{64}$" "$WORK/wide-a.txt")" -eq 3 ] ||
  fail "--wide: not 3 full lines: $(cat "$WORK/wide-a.txt")"
enoctl_a status --json >"$WORK/st-a.json" || fail "enoctl status --json"
"$PY" -m json.tool "$WORK/st-a.json" >/dev/null || fail "enoctl status --json is not valid JSON: $(cat "$WORK/st-a.json")"
"$PY" - "$WORK/st-a.json" "$odd" "$B4:7300" <<'EOF' || fail "enoctl status --json: fields (above)"
import json, sys
st = json.load(open(sys.argv[1]))
odd, peer = sys.argv[2], sys.argv[3]
conns = [e for e in st if e["kind"] == "stream" and e["remote"] == peer]
assert len(conns) == 3, "want 3 connections to %s: %s" % (peer, st)
for e in conns:
    r = e["resumed"]
    assert type(r) is bool, e
    want = {"program": odd, "state": "established", "eno": "encrypting", "role": "A",
            "tep": "tcpcrypt-X25519", "tep_id": 0x23, "negtep": 0xa3 if r else 0x23,
            "aead": "AES-128-GCM", "aead_id": 1, "rx_bytes": 1024, "tx_bytes": 1024, "rekeys": 0,
            "reason": "", "encryption": "X25519 AES-128-GCM " + ("resumed" if r else "fresh")}
    for k, v in want.items():
        assert e[k] == v and type(e[k]) is type(v), "%s: %r, want %r" % (k, e[k], v)
    assert isinstance(e["id"], int) and isinstance(e["pid"], int) and e["pid"] > 0, e
    assert isinstance(e["age_s"], int) and e["age_s"] >= 1, e
    assert len(e["session_id"]) == 66 and e["session_id"][:2] in ("23", "a3"), e
    assert e["local"].startswith("10.201.0.2:"), e
print("json ok")
EOF
id=$("$PY" -c 'import json,sys; print([e["id"] for e in json.load(open(sys.argv[1])) if e["kind"] == "stream"][0])' "$WORK/st-a.json")
run enoctl_a rekey "$id"
[ $RC -eq 0 ] && [ "$OUT" = "rekey started on 1 connection" ] || fail "enoctl rekey $id: exit $RC: $OUT $ERR"
run enoctl_a rekey 99999
[ $RC -eq 1 ] && [ "$ERR" = "enoctl: no connection 99999" ] || fail "enoctl rekey 99999: exit $RC: '$ERR'"
lid=$(awk '$3 == "listening" { print $1; exit }' "$WORK/st-b.txt")
run enoctl_b rekey "$lid"
[ $RC -eq 1 ] && printf '%s' "$ERR" | grep -q "connection $lid is not encrypting" || fail "enoctl rekey of a listener: exit $RC: '$ERR'"
touch "$WORK/hold"
wait $cli || fail "sem_many failed: $(tail -3 "$WORK/many.log")"
note "7. status: <= 100 columns, program/state/peer/encryption/age/bytes; --wide; --json valid with names and ids; rekey"

# ---- 8. tund's log ---------------------------------------------------------------------------
kill "$echo_pid"; wait "$echo_pid" 2>/dev/null   # its listener ends without an error
wait_count "$B_SOCK" 0 10
for f in tund-a tund-b; do
  [ -s "$WORK/$f.log" ] || fail "$f.log is empty"
  grep -Ev '^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3} tund\[[0-9]+\]: (error|warning|info|debug): ' \
    "$WORK/$f.log" && fail "$f: log lines without a timestamp (above)"
  grep -n "Success" "$WORK/$f.log" && fail "$f: 'Success' in the log (above)"
done
grep -Eq "conn [0-9]+ closed" "$WORK/tund-b.log" || fail "tund B -v logged no 'conn N closed'"
note "8. tund's log: timestamps on every line, no 'Success'"
echo ok
