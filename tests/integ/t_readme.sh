#!/usr/bin/env bash
# san: skip  (the README's commands run build/, the regular build, whatever
#             BUILD says; sanitizer runs test build/san with the other tests)
# The README's "Using it" block, as written (issue 16): the ```sh blocks of
# README.md's "Using it" section (its own text, before its first ###
# subsection; "Two machines" starts with a build and names a placeholder
# address, and is what `make demo` / t_demo.sh and t_realhosts.sh run) are
# read from the file when the test runs, and every command line is run
# verbatim (eval of the README's text) from the repository root, in a shell
# of the user, once as root and once as an ordinary user made for the test
# (sudo allowed through a drop-in in /etc/sudoers.d), each time in fresh
# namespaces:
#   - host "this machine": a network namespace with a veth to the second
#     one (10.1.2.1/24, no default route) and a private mount namespace:
#     tmpfs on /run (tund's /run/enoshim/tund.sock, nginx's /run/nginx.pid,
#     sudo's time stamps, /run/user/UID as XDG_RUNTIME_DIR of the user's
#     "login"), and test directories bound on /var/log/nginx, /var/lib/nginx
#     and /var/www/html, so that the host is untouched;
#   - host 10.1.2.3: the second namespace, with its own root tund (default
#     network settings) and, under enorun, an HTTP server that sends the
#     first half of a file, holds the connection until the test releases it,
#     then sends the rest; two clients there fetch nginx's index (one under
#     enorun, one with plain kernel sockets) and keep their connections open.
# What the README promises and the test asserts:
#   1. `sudo build/tund &`: tund runs as root and serves on
#      /run/enoshim/tund.sock (0666);
#   2. `build/enorun -- curl http://10.1.2.3/`: the file arrives intact
#      (SHA-256); the peer speaks ENO, so the connection is encrypted:
#      both tunds list it encrypting with one session ID;
#   3. `... nginx -g 'daemon off;'` (Debian's default config: workers as
#      www-data, sendfile on): nginx starts, its pid file is /run/nginx.pid,
#      it serves its index intact to both clients of 10.1.2.3, logs their
#      real address, and its error log has no line of the shim's ("not
#      reachable", "no tund", "refusing tund": nginx's workers clear their
#      environment);
#   4. `build/enoctl status` while all of that is open: as root, curl's
#      connection (established, peer 10.1.2.3:80, X25519 ... fresh|resumed),
#      nginx's listener on *:80 and its two connections (one encrypted, one
#      "plain: ..." by design: that client does not speak ENO); as the
#      ordinary user, only the user's own connection (curl's) — nginx is
#      root's.  The JSON view of both tunds matches the session IDs.
# A command line the test does not know, or one of the four missing, fails
# the test (the README changed: teach this test).  At the end: every process
# stopped, no nftables table enoshim* left in any namespace, tund "exited
# cleanly", the host's /var/lib/nginx, nginx logs and /run untouched, the
# user and the sudoers drop-in removed.
set -u
SELF=$(readlink -f "${BASH_SOURCE[0]}")
TOP=$(cd "$(dirname "$SELF")/../.." && pwd)
SRV=10.1.2.3          # the README's server
HERE=10.1.2.1         # this machine's address on the link
PY=/usr/bin/python3
# PATH of a login shell, as Debian's /etc/profile sets it
ROOT_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
USER_PATH=/usr/local/bin:/usr/bin:/bin:/usr/local/games:/usr/games

fail() { echo "FAIL: $*" >&2; exit 1; }
note() { echo "  $*"; }
# wait_for SECONDS CMD...: until CMD succeeds
wait_for() {
  local t=$1; shift
  for _ in $(seq 1 $((t * 20))); do "$@" && return 0; sleep 0.05; done
  return 1
}
gone() { ! kill -0 "$1" 2>/dev/null; }
sha() { sha256sum <"$1" | cut -d' ' -f1; }

# ============================================================================
# --driver RUNDIR WORK: the user's shell (as root or as the test user, in
# the namespaces of the session below): the README's lines, one by one.
# ============================================================================
driver() {
  local R=$1 W=$2 line n=0 curl_job="" seen=""
  dfail() { echo "FAIL: $*" >>"$R/driver.log"; exit 1; }
  dnote() { echo "$*" >>"$R/driver.log"; }
  cd "$TOP" || dfail "cd $TOP"
  dnote "driver: uid $(id -u), cwd $PWD, PATH=$PATH, XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-}"
  while IFS= read -r line; do
    n=$((n + 1))
    local cmd=${line%%#*}
    cmd=$(printf '%s' "$cmd" | sed 's/[[:space:]]*$//')
    [ -z "$cmd" ] && continue
    dnote "\$ $line"
    case $cmd in
      "sudo build/tund &")
        { eval "$line"; } >"$R/tund.log" 2>&1
        echo $! >"$R/tund.job"
        wait_for 20 grep -q "ready:" "$R/tund.log" ||
          dfail "tund did not start: $(cat "$R/tund.log")"
        seen="$seen tund";;
      "build/enorun -- curl http://$SRV/")
        # runs until the server at 10.1.2.3 is released (end of the block)
        { eval "$line"; } >"$R/curl.out" 2>"$R/curl.err" &
        curl_job=$!
        for _ in $(seq 1 300); do
          [ -e "$R/held" ] && break
          gone $curl_job && dfail "curl ended early: $(cat "$R/curl.err")"
          sleep 0.05
        done
        [ -e "$R/held" ] || dfail "curl's request did not reach $SRV: $(cat "$R/curl.err")"
        seen="$seen curl";;
      *"build/enorun -- nginx -g 'daemon off;'")
        { eval "$line"; } >"$R/nginx.out" 2>&1 &
        local ngx_job=$!
        for _ in $(seq 1 300); do
          [ -s /run/nginx.pid ] && [ -n "$(ss -Hltn 'sport = :80' 2>/dev/null)" ] && break
          gone $ngx_job && dfail "nginx ended: $(cat "$R/nginx.out")"
          sleep 0.05
        done
        [ -s /run/nginx.pid ] && [ -n "$(ss -Hltn 'sport = :80' 2>/dev/null)" ] ||
          dfail "nginx did not listen on port 80 with /run/nginx.pid: $(cat "$R/nginx.out")"
        touch "$R/nginx-up"
        # the session sees it published, lets the clients of 10.1.2.3 in and
        # says when both got their answer
        wait_for 30 test -e "$R/clients-done" || dfail "the clients of nginx did not finish"
        seen="$seen nginx";;
      "build/enoctl status")
        { eval "$line"; } >"$R/status.out" 2>"$R/status.err"
        echo $? >"$R/status.rc"
        touch "$R/status-done"
        seen="$seen status";;
      *)
        dfail "README.md's 'Using it' block has a command line this test does not know (teach tests/integ/t_readme.sh): $line";;
    esac
  done <"$W/block.txt"
  dnote "ran:$seen"
  [ "$seen" = " tund curl nginx status" ] ||
    dfail "the block's commands were, in order,$seen (want tund curl nginx status: teach tests/integ/t_readme.sh)"
  # the session looks at both tunds while the connections are open
  wait_for 30 test -e "$R/checked" || dfail "the session did not finish its checks"
  touch "$R/release"
  local rc=0
  for _ in $(seq 1 400); do gone $curl_job && break; sleep 0.05; done
  gone $curl_job || dfail "curl did not finish within 20 s of the release"
  wait $curl_job || rc=$?
  echo $rc >"$R/curl.rc"
  dnote "driver: done"
  exit 0
}

# ============================================================================
# --session: root, in this machine's network namespace and a private mount
# namespace; runs the driver as WHO and checks what only root can see.
# ============================================================================
session() {
  local WHO=$T_WHO R=$T_R W=$T_WORK SS=$T_SS
  mount -t tmpfs -o mode=755 tmpfs /run || fail "no private /run"
  mkdir -m 755 "$R/ngx-log" "$R/ngx-lib"
  mount --bind "$R/ngx-log" /var/log/nginx && mount --bind "$R/ngx-lib" /var/lib/nginx &&
    mount --bind "$R/www" /var/www/html || fail "bind mounts for nginx"
  local uid; uid=$(id -u "$WHO")
  mkdir -m 755 /run/user; mkdir -m 700 "/run/user/$uid"; chown "$WHO:" "/run/user/$uid"
  local pre=() home=/root path=$ROOT_PATH
  if [ "$WHO" != root ]; then
    pre=(setpriv --reuid="$WHO" --regid="$WHO" --init-groups --)
    home=$W/home path=$USER_PATH
  fi
  "${pre[@]}" env -i HOME="$home" USER="$WHO" LOGNAME="$WHO" SHELL=/bin/bash PATH="$path" \
    XDG_RUNTIME_DIR="/run/user/$uid" LANG=C.UTF-8 bash "$SELF" --driver "$R" "$W" </dev/null &
  local drv=$!
  # driver_alive: else its failure
  drv_ok() { kill -0 $drv 2>/dev/null || { wait $drv; fail "the $WHO shell stopped: $(cat "$R/driver.log")"; }; }

  # --- nginx up: published, then its clients ---
  for _ in $(seq 1 600); do [ -e "$R/nginx-up" ] && break; drv_ok; sleep 0.05; done
  [ -e "$R/nginx-up" ] || fail "nginx not up within 30 s: $(cat "$R/driver.log")"
  local ngx_pid; ngx_pid=$(cat /run/nginx.pid)
  published() { nft list set inet enoshim-enotun0 ports 2>/dev/null | grep -Eq '(^|[^0-9])80([^0-9]|$)'; }
  wait_for 15 published || fail "nginx's port 80 was not published: $(nft list set inet enoshim-enotun0 ports 2>&1)"
  touch "$R/go-nginx"
  wait_for 20 test -e "$R/ngx-eno.done" -a -e "$R/ngx-plain.done" ||
    fail "nginx's clients on $SRV got no answer: $(cat "$R"/ngx-*.log 2>/dev/null)"
  touch "$R/clients-done"

  # --- the README's `build/enoctl status`, run by the driver; then root's look ---
  for _ in $(seq 1 600); do [ -e "$R/status-done" ] && break; drv_ok; sleep 0.05; done
  [ -e "$R/status-done" ] || fail "the block did not reach enoctl status: $(cat "$R/driver.log")"
  "$TOP/build/enoctl" status --json >"$R/c.json" 2>"$R/c.json.err" || fail "root's enoctl status --json: $(cat "$R/c.json.err")"
  "$TOP/build/enoctl" --socket "$SS" status --json >"$R/s.json" 2>&1 || fail "enoctl on $SRV: $(cat "$R/s.json")"
  "$TOP/build/enoctl" status >"$R/root-status.out" 2>&1
  touch "$R/checked"
  for _ in $(seq 1 800); do kill -0 $drv 2>/dev/null || break; sleep 0.05; done
  kill -0 $drv 2>/dev/null && fail "the $WHO shell did not finish: $(cat "$R/driver.log")"
  wait $drv || fail "the $WHO shell: $(grep FAIL "$R/driver.log")"
  sed 's/^/    | /' "$R/driver.log"

  # 1. tund
  local tpid hpid
  tpid=$(grep -o 'tund\[[0-9]*\]' "$R/tund.log" | head -1 | tr -dc 0-9)
  hpid=$(grep -o 'helper pid [0-9]*' "$R/tund.log" | head -1 | tr -dc 0-9)
  [ -n "$tpid" ] || fail "no tund pid in its log"
  grep -q "ready: .*socket /run/enoshim/tund.sock$" "$R/tund.log" || fail "tund: $(grep ready: "$R/tund.log")"
  [ "$(stat -c '%a %U' /run/enoshim/tund.sock)" = "666 root" ] || fail "socket: $(stat -c '%a %U' /run/enoshim/tund.sock)"
  note "tund (pid $tpid, uid $(ps -o uid= -p "$tpid" | tr -d ' ')): $(grep -o 'ready: .*' "$R/tund.log")"

  # 2. curl: intact, and encrypted on both tunds with one session ID
  [ "$(cat "$R/curl.rc")" = 0 ] || fail "curl exit $(cat "$R/curl.rc"): $(cat "$R/curl.err")"
  [ "$(sha "$R/curl.out")" = "$(sha "$R/srv.bin")" ] || fail "curl: the file from $SRV is not intact ($(stat -c %s "$R/curl.out") bytes)"
  ! grep -a 'enoshim' "$R/curl.err" || fail "curl: the shim said something (above)"
  grep -q "^GET / HTTP/1.1" "$R/srv-request" && grep -qi "^Host: $SRV" "$R/srv-request" || fail "the server got: $(head -3 "$R/srv-request")"
  # 3, 4. the JSON of both tunds: curl's stream, nginx's listener and connections
  local js
  js=$("$PY" - "$R/c.json" "$R/s.json" <<'PYEOF'
import json, sys
c, s = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
def die(m):
    print("ERR", m); sys.exit(1)
srv = {e["session_id"]: e for e in s if e["kind"] == "stream" and e["eno"] == "encrypting"}
cu = [e for e in c if e["program"] == "curl" and e["kind"] == "stream"]
if len(cu) != 1: die("curl's streams in this machine's tund: %s" % cu)
e = cu[0]
if e["remote"] != "10.1.2.3:80" or e["eno"] != "encrypting" or e["session_id"] not in srv:
    die("curl's stream is not encrypting with a session ID of 10.1.2.3's tund: %s" % e)
if not srv[e["session_id"]]["local"].endswith(":80"):
    die("10.1.2.3's side of curl's session: %s" % srv[e["session_id"]])
print("curl: encrypting, %s %s, session %s..., the same in 10.1.2.3's tund" % (e["tep"], e["aead"], e["session_id"][:16]))
ls = [e for e in c if e["program"] == "nginx" and e["kind"] == "listener" and e["local"].endswith(":80")]
if not ls: die("no nginx listener on port 80: %s" % c)
ng = [e for e in c if e["program"] == "nginx" and e["kind"] == "stream"]
enc = [e for e in ng if e["eno"] == "encrypting" and e["session_id"] in srv and e["remote"].startswith("10.1.2.3:")
       and srv[e["session_id"]]["remote"] == "10.1.2.1:80"]
pl = [e for e in ng if e["eno"] == "disabled" and e["remote"].startswith("10.1.2.3:")]
if len(ng) != 2 or len(enc) != 1 or len(pl) != 1:
    die("nginx's connections: want one encrypting (same session ID as 10.1.2.3's client) and one plain from 10.1.2.3, got %s" % ng)
print("nginx: %d listeners on :80; from 10.1.2.3 one connection encrypting (session %s..., the same in 10.1.2.3's tund), one plain (%s)"
      % (len(ls), enc[0]["session_id"][:16], pl[0]["reason"]))
PYEOF
) || fail "$(echo "$js" | grep ERR)"
  note "root's enoctl status --json:"
  echo "$js" | sed 's/^/    /'

  # the README's enoctl status, as WHO, while all of that was open
  [ "$(cat "$R/status.rc")" = 0 ] && [ ! -s "$R/status.err" ] || fail "enoctl status: exit $(cat "$R/status.rc"): $(cat "$R/status.err")"
  note "\`build/enoctl status\` as $WHO:"
  sed 's/^/    | /' "$R/status.out"
  local st=$R/status.out
  head -1 "$st" | grep -Eq '^ID +PROGRAM +STATE +LOCAL +PEER +AGE +RX/TX +ENCRYPTION$' || fail "status: header $(head -1 "$st")"
  grep -Eq "^[0-9]+ +curl +established +:[0-9]+ +$SRV:80 +[0-9]+s +[^ ]+ +X25519 [A-Za-z0-9-]+ (fresh|resumed)$" "$st" ||
    fail "status as $WHO: no line of curl's connection encrypting to $SRV:80"
  if [ "$WHO" = root ]; then
    grep -Eq '^[0-9]+ +nginx +listening +\*:80 +\* ' "$st" || fail "status as root: no nginx listener on *:80"
    grep -Eq "^[0-9]+ +nginx +established +:80 +$SRV:[0-9]+ .* X25519 [A-Za-z0-9-]+ (fresh|resumed)$" "$st" ||
      fail "status as root: no encrypted nginx connection from $SRV"
    grep -Eq "^[0-9]+ +nginx +established +:80 +$SRV:[0-9]+ .* plain: [a-zA-Z]" "$st" ||
      fail "status as root: no plain nginx connection from $SRV (its client does not speak ENO)"
  else
    [ "$(tail -n +2 "$st" | wc -l)" = 1 ] || fail "status as $WHO: want only the user's own connection (curl's)"
    grep -Eq '^[0-9]+ +nginx ' "$R/root-status.out" || fail "root's status has no nginx line either"
    note "(nginx is root's: root's status lists it)"
  fi

  # 3. nginx: its answer, its logs
  local want; want=$(sha "$R/www/index.html")
  for k in eno plain; do
    [ "$(cat "$R/ngx-$k.status")" = 200 ] || fail "nginx answered the $k client: $(cat "$R/ngx-$k.status")"
    [ "$(sha "$R/ngx-$k.body")" = "$want" ] || fail "nginx's index to the $k client is not intact"
  done
  local users; users=$(ps -o user= --ppid "$ngx_pid" | sort -u | paste -sd,)
  kill -QUIT "$ngx_pid"
  wait_for 15 gone "$ngx_pid" || fail "nginx did not stop"
  local n; n=$(grep -c "^$SRV - .*\"GET / HTTP/1.1\" 200 .*\"t_readme-$T_TAG-" /var/log/nginx/access.log)
  [ "$n" = 2 ] || fail "nginx's access log: $n requests from $SRV (want 2): $(cat /var/log/nginx/access.log)"
  ! grep -E "not reachable|no tund|refusing tund|enoshim\[" /var/log/nginx/error.log "$R/nginx.out" ||
    fail "the shim complained in nginx's error log or output (above)"
  ! grep -E '\[(alert|crit|emerg)\]' /var/log/nginx/error.log || fail "nginx's error log (above)"
  note "nginx (master $ngx_pid as root, workers as $users): index intact to both clients, access log: $n requests from $SRV; error log: nothing of the shim's; stopped"

  # stop tund: it and its helper end, its tables go
  kill -TERM "$tpid"
  wait_for 15 gone "$tpid" || fail "tund did not exit on SIGTERM"
  [ -z "$hpid" ] || wait_for 10 gone "$hpid" || fail "tund's helper $hpid did not exit"
  wait_for 10 grep -q "exited cleanly" "$R/tund.log" || fail "tund: $(tail -3 "$R/tund.log")"
  local job; job=$(cat "$R/tund.job")
  wait_for 10 gone "$job" || fail "sudo ($job) did not end with tund"
  [ -z "$(nft list tables 2>/dev/null | grep enoshim)" ] || fail "tables left: $(nft list tables)"
  note "tund exited cleanly, no enoshim table left on this machine"
  exit 0
}

case ${1:-} in
  --driver) shift; driver "$@";;
  --session) session;;
esac

# ============================================================================
# main (root, host namespace)
# ============================================================================
[ "$(id -u)" = 0 ] || fail "run as root"
cd "$TOP" || fail "cd $TOP"
for f in build/tund build/tund-nat build/enoctl build/enorun build/libenoshim.so; do
  [ -x "$f" ] || [ -f "$f" ] || fail "$f missing (make)"
done
for c in sudo nginx nft setpriv unshare ss; do command -v $c >/dev/null || fail "$c is not installed (scripts/setup)"; done
[ -x "$PY" ] || fail "$PY missing"

T0=$SECONDS
WORK=$(mktemp -d /tmp/enoshim-test.XXXXXX)
chmod 755 "$WORK"
TAG=$$
TUSER=enordm$$
SUDOERS=/etc/sudoers.d/enoshim-treadme-$$
NSS=()
PIDS=()
made_user=0

. "$TOP/tests/integ/users_lib.sh"   # drop_user
teardown() {
  local rc=$? ns p
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
  for ns in "${NSS[@]}"; do
    for p in $(ip netns pids "$ns" 2>/dev/null); do kill "$p" 2>/dev/null; done
  done
  sleep 0.3
  for ns in "${NSS[@]}"; do
    for p in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
    ip netns del "$ns" 2>/dev/null
  done
  rm -f "$SUDOERS"
  [ $made_user = 1 ] && drop_user "$TUSER"
  if [ $rc -ne 0 ] && [ -z "${KEEP_WORK:-}" ]; then
    for f in "$WORK"/run-*/*.log "$WORK"/run-*/nginx.out "$WORK"/run-*/*status.out "$WORK"/run-*/*.err; do
      [ -s "$f" ] && { echo "---- $f"; tail -n 20 "$f"; }
    done >&2
  fi
  [ -n "${KEEP_WORK:-}" ] || rm -rf "$WORK"
  exit $rc
}
trap teardown EXIT

# ---- the block, from the README as it is now ----
awk '
  /^## / { insec = ($0 == "## Using it"); next }
  /^### / { insec = 0; next }
  insec && /^```sh[[:space:]]*$/ { inblk = 1; next }
  inblk && /^```/ { inblk = 0; next }
  inblk { print }
' README.md >"$WORK/block.txt"
chmod 644 "$WORK/block.txt"
grep -qv '^[[:space:]]*\(#.*\)\?$' "$WORK/block.txt" || fail "no command in README.md's 'Using it' section"
note "README.md, 'Using it':"
grep -v '^[[:space:]]*#' "$WORK/block.txt" | grep . | sed 's/^/    $ /'

# ---- the host, before ----
host_state() {
  echo "tables: $(nft list tables 2>/dev/null | grep enoshim | sort | tr '\n' ' ')"
  echo "lib: $(ls -A /var/lib/nginx | tr '\n' ' ')"
  echo "pid: $(cat /run/nginx.pid 2>/dev/null || echo none)"
  echo "sudoers.d: $(find /etc/sudoers.d -mindepth 1 ! -name "enoshim-treadme-$$*" -printf '%f ' | tr ' ' '\n' | sort | tr '\n' ' ')"
}
host_state >"$WORK/host.before"

# ---- the ordinary user, allowed sudo ----
useradd -M -d "$WORK/home" -s /bin/bash -U "$TUSER" || fail "useradd"
made_user=1
mkdir -m 700 "$WORK/home"; chown "$TUSER:" "$WORK/home"
[ "$(id -u "$TUSER")" -ge 1000 ] || fail "$TUSER is not an ordinary user (uid $(id -u "$TUSER"))"
printf '%s ALL=(ALL:ALL) NOPASSWD: ALL\n' "$TUSER" >"$SUDOERS.tmp"
chmod 440 "$SUDOERS.tmp"
visudo -cqf "$SUDOERS.tmp" || { rm -f "$SUDOERS.tmp"; fail "visudo refuses the drop-in"; }
mv "$SUDOERS.tmp" "$SUDOERS"

# ---- the programs of host 10.1.2.3 ----
cat >"$WORK/held_server.py" <<'EOF'
# one HTTP answer: headers and the first half of the file, then (once
# RUNDIR/release exists) the rest
import os, socket, sys, time
data, d = open(sys.argv[1], "rb").read(), sys.argv[2]
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 80))
s.listen(8)
open(d + "/srv-listening", "w").close()
c, _ = s.accept()
req = b""
while b"\r\n\r\n" not in req:
    x = c.recv(4096)
    if not x:
        sys.exit("end of stream before the request's end")
    req += x
open(d + "/srv-request", "wb").write(req)
half = len(data) // 2
c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\n"
          b"Connection: close\r\n\r\n" % len(data) + data[:half])
open(d + "/held", "w").close()
end = time.time() + 60
while not os.path.exists(d + "/release") and time.time() < end:
    time.sleep(0.05)
c.sendall(data[half:])
c.close()
EOF
cat >"$WORK/ngx_client.py" <<'EOF'
# once RUNDIR/go-nginx exists: GET / from nginx on HOST (HTTP/1.1 keep-alive),
# the answer saved; the connection kept open until RUNDIR/release exists
import os, socket, sys, time
kind, d, host, tag = sys.argv[1:5]
def wait(f):
    end = time.time() + 60
    while not os.path.exists(f):
        if time.time() > end:
            sys.exit("no " + f)
        time.sleep(0.05)
wait(d + "/go-nginx")
s = socket.create_connection((host, 80), timeout=20)
s.sendall(b"GET / HTTP/1.1\r\nHost: %s\r\nUser-Agent: t_readme-%s-%s\r\n\r\n" % (host.encode(), tag.encode(), kind.encode()))
buf = b""
while b"\r\n\r\n" not in buf:
    x = s.recv(65536)
    if not x:
        sys.exit("end of stream in the headers")
    buf += x
head, body = buf.split(b"\r\n\r\n", 1)
lines = head.decode("latin-1").split("\r\n")
n = [int(l.split(":", 1)[1]) for l in lines if l.lower().startswith("content-length:")][0]
while len(body) < n:
    x = s.recv(65536)
    if not x:
        sys.exit("end of stream after %d of %d bytes" % (len(body), n))
    body += x
open(d + "/ngx-%s.body" % kind, "wb").write(body)
open(d + "/ngx-%s.status" % kind, "w").write(lines[0].split()[1])
open(d + "/ngx-%s.done" % kind, "w").close()
wait(d + "/release")
s.close()
EOF
chmod 644 "$WORK"/*.py

# run_one WHO: the block as WHO in fresh namespaces
RUN=0
run_one() {
  local who=$1 t0=$SECONDS
  RUN=$((RUN + 1))
  local R=$WORK/run-$who NC=enoshim-rc$$-$RUN NS=enoshim-rs$$-$RUN SD=$WORK/s$RUN
  local SS=$SD/tund.sock
  echo "== as $who ($( [ "$who" = root ] && echo root || echo "ordinary user, uid $(id -u "$who")"))"
  mkdir -m 755 "$R" "$R/www" "$SD"
  head -c 300000 /dev/urandom >"$R/srv.bin"
  head -c 150000 /dev/urandom | base64 >"$R/www/index.html"
  chmod 644 "$R/srv.bin" "$R/www/index.html"
  chown "$who:" "$R"
  # the link
  ip netns add "$NC" || fail "cannot create namespaces (need root)"
  NSS+=("$NC")
  ip netns add "$NS" || fail "netns"
  NSS+=("$NS")
  ip link add eno-rc netns "$NC" type veth peer name eno-rs netns "$NS" || fail "veth"
  ip -n "$NC" addr add $HERE/24 dev eno-rc
  ip -n "$NS" addr add $SRV/24 dev eno-rs
  for n in $NC $NS; do ip -n "$n" link set lo up; done
  ip -n "$NC" link set eno-rc up; ip -n "$NS" link set eno-rs up
  wait_for 10 ip netns exec "$NC" ping -c1 -W1 -q $SRV >/dev/null 2>&1 || fail "the link does not carry pings"
  # host 10.1.2.3: tund with default network settings, the held server, nginx's two clients
  ip netns exec "$NS" build/tund --socket="$SS" >"$R/tund-s.log" 2>&1 &
  local stund=$!
  PIDS+=("$stund")
  wait_for 15 grep -q "ready:" "$R/tund-s.log" || fail "tund on $SRV did not start: $(cat "$R/tund-s.log")"
  ip netns exec "$NS" build/enorun --socket "$SS" -- "$PY" "$WORK/held_server.py" "$R/srv.bin" "$R" >"$R/server.log" 2>&1 &
  local srv=$!
  PIDS+=("$srv")
  wait_for 15 sh -c "build/enoctl --socket '$SS' status 2>/dev/null | grep -Eq 'listening +[^ ]*:80 '" ||
    fail "the server on $SRV does not listen: $(cat "$R/server.log")"
  ip netns exec "$NS" build/enorun --socket "$SS" -- "$PY" "$WORK/ngx_client.py" eno "$R" $HERE $TAG >"$R/ngx-eno.log" 2>&1 &
  local c1=$!
  ip netns exec "$NS" "$PY" "$WORK/ngx_client.py" plain "$R" $HERE $TAG >"$R/ngx-plain.log" 2>&1 &
  local c2=$!
  PIDS+=("$c1" "$c2")

  # this machine: the user's shell
  T_WHO=$who T_R=$R T_WORK=$WORK T_SS=$SS T_TAG=$TAG \
    timeout 120 ip netns exec "$NC" unshare -m --propagation private bash "$SELF" --session ||
    fail "as $who (above)"
  wait_for 5 sh -c "[ -z \"\$(ip netns pids '$NC')\" ]" || fail "processes left on this machine: $(ps -o pid,user,args -p "$(ip netns pids "$NC" | tr '\n' ',' | sed 's/,$//')")"

  # host 10.1.2.3 ends
  for p in $srv $c1 $c2; do
    wait_for 15 gone $p || fail "a program on $SRV did not end ($(ps -o args= -p $p))"
    wait $p || fail "a program on $SRV failed: $(cat "$R"/server.log "$R"/ngx-*.log)"
  done
  kill -TERM $stund
  wait_for 15 gone $stund || fail "tund on $SRV did not exit"
  grep -q "exited cleanly" "$R/tund-s.log" || fail "tund on $SRV: $(tail -3 "$R/tund-s.log")"
  wait_for 10 sh -c "[ -z \"\$(ip netns exec '$NS' nft list tables 2>/dev/null | grep enoshim)\" ]" ||
    fail "tables left on $SRV: $(ip netns exec "$NS" nft list tables)"
  wait_for 10 sh -c "[ -z \"\$(ip netns pids '$NS')\" ]" || fail "processes left on $SRV"
  ip netns del "$NC"; ip netns del "$NS"
  note "as $who: ok ($((SECONDS - t0)) s)"
}

run_one root
run_one "$TUSER"

# ---- the host, after ----
rm -f "$SUDOERS"
drop_user "$TUSER"; made_user=0
getent passwd "$TUSER" >/dev/null && fail "user $TUSER still exists"
host_state >"$WORK/host.after"
diff "$WORK/host.before" "$WORK/host.after" >&2 || fail "the host changed (above)"
! grep -qs "t_readme-$TAG" /var/log/nginx/*.log || fail "the host's nginx logs have this test's requests"
note "host untouched: nftables, /var/lib/nginx, /run/nginx.pid, nginx's logs, /etc/sudoers.d; user removed"
note "ok ($((SECONDS - T0)) s)"
