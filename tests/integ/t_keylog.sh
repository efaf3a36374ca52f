#!/usr/bin/env bash
# The key log (tund/keylog.c; SECURITY.md "the key log"): whoever reads it
# can decrypt captured traffic, so tund writes it only where nobody else can
# read it:
#   1. a new key log is created 0600, and tund warns that it is on;
#   2. an existing one that others can read (0644, 0640), a symbolic link to
#      a 0600 file, a directory and a fifo are refused: tund does not start,
#      one line says why, nothing is written.
. "$(dirname "$0")/lib.sh"
ip netns add "$NS" || fail "cannot create namespace (need root)"
start() {   # start KEYLOG: tund with that key log; RC, ERR
  ip netns exec "$NS" "$BUILD/tund" --socket="$WORK/k.sock" --tun=enokl0 --real_hosts=no --keylog="$1" \
    --ready-fd=3 3>"$WORK/ready" >"$WORK/kl.out" 2>"$WORK/kl.err" &
  local p=$!
  for _ in $(seq 1 100); do [ -s "$WORK/ready" ] && break; kill -0 $p 2>/dev/null || break; sleep 0.05; done
  if [ -s "$WORK/ready" ]; then
    RC=ready
    kill $p; wait $p; wait_gone $p 5
  else
    wait $p; RC=$?
  fi
  ERR=$(cat "$WORK/kl.err"); : >"$WORK/ready"
}

# ---- 1. a new key log ------------------------------------------------------------------
start "$WORK/new.keys"
[ "$RC" = ready ] || fail "tund with a new key log: exit $RC: $ERR"
[ "$(stat -c %a "$WORK/new.keys")" = 600 ] || fail "new key log mode $(stat -c %a "$WORK/new.keys"), want 600"
printf '%s' "$ERR" | grep -q "warning: keylog enabled: session secrets are written to $WORK/new.keys" ||
  fail "no warning that the key log is on: $ERR"
note "1. a new key log: created 0600, tund warns that it is on"

# ---- 2. key logs others could read ---------------------------------------------------------------
refused() {   # refused WHAT PATH REGEX
  start "$2"
  [ "$RC" = 1 ] || fail "$1: tund $RC (want exit 1): $ERR"
  [ "$(printf '%s\n' "$ERR" | grep -c 'error:')" -eq 1 ] || fail "$1: want one error line: $ERR"
  printf '%s' "$ERR" | grep -Eq -- "$3" || fail "$1: '$ERR' does not match '$3'"
  note "2. $1: $(printf '%s' "$ERR" | grep 'error:' | sed 's/.*error: //')"
}
MODE_RE="must be a regular file readable only by its owner \(mode 0600\)"
install -m 644 /dev/null "$WORK/open.keys"
refused "mode 0644" "$WORK/open.keys" "keylog $WORK/open.keys $MODE_RE"
install -m 640 /dev/null "$WORK/group.keys"
refused "mode 0640" "$WORK/group.keys" "$MODE_RE"
[ -s "$WORK/open.keys" ] || [ -s "$WORK/group.keys" ] && fail "something was written to a refused key log"
install -m 600 /dev/null "$WORK/target.keys"
ln -s "$WORK/target.keys" "$WORK/link.keys"
refused "a symbolic link" "$WORK/link.keys" "cannot open keylog $WORK/link.keys: Too many levels of symbolic links"
mkdir -m 700 "$WORK/dir.keys"
refused "a directory" "$WORK/dir.keys" "cannot open keylog $WORK/dir.keys: Is a directory"
mkfifo -m 600 "$WORK/fifo.keys"
exec 7<>"$WORK/fifo.keys"      # a reader, so that opening it for writing does not wait
refused "a fifo" "$WORK/fifo.keys" "$MODE_RE"
exec 7>&-
echo ok
