#!/usr/bin/env bash
# Two real hosts (hosts_lib.sh, default settings): `git daemon` under enorun
# on host 2 serving a repository made here (4 branches, 3 tags of which 2
# annotated, a few hundred commits and some larger files); `git clone
# git://...` under enorun on host 1 dialing host 2's real address, with
# protocol v2 and with v0: every branch and tag of the server is in the
# clone with the same object id, HEAD's tree is there, `git fsck --full` is
# clean.  git daemon runs git upload-pack for each connection with the
# socket on its stdin and stdout (inetd-style), so this is stdio and fds 0/1
# on a shim socket; a clone that says it cloned "an empty repository" or
# hangs is the bug this catches.  The v2 clone is shown encrypted by both
# programs' outcome lines (enorun --debug), with one session ID.
. "$(dirname "$0")/hosts_lib.sh"
command -v git >/dev/null || fail "git is not installed (scripts/setup)"
hosts_up
hosts_no_dns
tund_up 1
tund_up 2

export GIT_CONFIG_NOSYSTEM=1 HOME=$WORK/home GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@e GIT_COMMITTER_NAME=t \
  GIT_COMMITTER_EMAIL=t@e GIT_TERMINAL_PROMPT=0
mkdir -p "$HOME"
R=$WORK/srv/repo.git
git init -q -b main "$WORK/src" || fail "git init"
(
  cd "$WORK/src" || exit 1
  for i in $(seq 1 120); do
    echo "line $i $RANDOM" >>file.txt
    [ $((i % 40)) -eq 0 ] && head -c $((300 << 10)) /dev/urandom >"blob$i.bin"
    git add -A && git commit -q -m "commit $i" || exit 1
  done
  git tag v1.0 HEAD~50 && git tag -a -m "release 1.1" v1.1 HEAD~20 && git tag -a -m "release 2" v2.0 || exit 1
  for b in feature-a feature-b old; do
    git checkout -q -b "$b" "HEAD~$((RANDOM % 30))" || exit 1
    for j in 1 2 3; do echo "$b $j" >"$b.txt"; git add -A; git commit -q -m "$b $j" || exit 1; done
    git checkout -q main || exit 1
  done
) || fail "making the repository"
git clone -q --bare "$WORK/src" "$R" || fail "git clone --bare"
git -C "$R" for-each-ref --format='%(objectname) %(refname)' 'refs/heads/*' 'refs/tags/*' | sort >"$WORK/refs.want"
[ "$(wc -l <"$WORK/refs.want")" -eq 7 ] || fail "the server repository has $(wc -l <"$WORK/refs.want") refs, expected 7"

ip netns exec "$H2" "$ENORUN" --socket "$S2" --debug -- git daemon --reuseaddr --listen=0.0.0.0 --port=9418 --base-path="$WORK/srv" --export-all \
  --verbose --informative-errors >"$WORK/daemon.log" 2>&1 &
srv=$!
on_exit "kill $srv"
wait_listen 9418 "$S2"

for v in 2 0; do
  d=$WORK/clone-v$v
  dbg=(); [ $v = 2 ] && dbg=(--debug)
  timeout 120 ip netns exec "$H1" "$ENORUN" --socket "$S1" "${dbg[@]}" -- \
    git -c protocol.version=$v clone -q --mirror "git://$IP2/repo.git" "$d" >"$WORK/clone-v$v.log" 2>&1 &
  cp=$!
  wait $cp || fail "git clone (protocol v$v) failed: $(tail -5 "$WORK/clone-v$v.log"); daemon: $(tail -3 "$WORK/daemon.log")"
  grep -qi "empty repository" "$WORK/clone-v$v.log" && fail "git clone (protocol v$v) cloned an empty repository"
  git -C "$d" for-each-ref --format='%(objectname) %(refname)' 'refs/heads/*' 'refs/tags/*' | sort >"$WORK/refs.v$v"
  cmp -s "$WORK/refs.want" "$WORK/refs.v$v" ||
    fail "git clone (protocol v$v): refs differ: $(diff "$WORK/refs.want" "$WORK/refs.v$v" | head -5 | tr '\n' ' ')"
  git -C "$d" fsck --full --no-progress >"$WORK/fsck-v$v.log" 2>&1 || fail "git fsck (protocol v$v): $(tail -3 "$WORK/fsck-v$v.log")"
  [ "$(git -C "$d" rev-parse main^{tree})" = "$(git -C "$R" rev-parse main^{tree})" ] || fail "main's tree differs (v$v)"
  [ $v = 2 ] && expect_encrypted_outcome "git clone (protocol v2) -> git daemon" "$WORK/clone-v2.log" "$WORK/daemon.log" 9418
  note "git clone, protocol v$v: 7 refs (4 branches, 3 tags) as on the server, git fsck --full clean"
done

no_bypass_resets
tund_alive 1; tund_alive 2
wait_count "$S1" 0 20
note ok
