#!/usr/bin/env bash
# Two real hosts (hosts_lib.sh, default settings): Debian's OpenSSH sshd
# under enorun on host 2 — privilege separation and its seccomp sandbox for
# the pre-authentication child as shipped (the child is killed at the first
# system call the filter does not allow) — with a private configuration in
# the test's work directory (its own host key, a key for root made here,
# port 2222, `sshd -D -e -f CONFIG`); ssh and scp under enorun on host 1,
# dialing host 2's real address:
#   - login: `echo hello` runs remotely;
#   - 50 MiB up and 50 MiB down with scp (SFTP, as scp of OpenSSH 9 does),
#     SHA-256 equal, the upload seen encrypting in both tunds' `enoctl
#     status` with one session ID;
#   - sshd logs no refused or failed socket option, and no child killed.
# Nothing of the host's own ssh is used or touched (no /etc/ssh file, no
# ~/.ssh; the namespace's port 2222); /run/sshd is made if missing (sshd
# needs it) and removed again.
. "$(dirname "$0")/hosts_lib.sh"
SSHD=/usr/sbin/sshd
[ -x "$SSHD" ] && command -v ssh >/dev/null && command -v scp >/dev/null ||
  fail "openssh-server and openssh-client are not installed (scripts/setup)"
hosts_up
hosts_no_dns
tund_up 1
tund_up 2

K=$WORK/ssh
mkdir -p "$K" && chmod 700 "$K"
ssh-keygen -q -t ed25519 -N '' -C enoshim-test-host -f "$K/hostkey" || fail "ssh-keygen (host key)"
ssh-keygen -q -t ed25519 -N '' -C enoshim-test-client -f "$K/id" || fail "ssh-keygen (client key)"
cp "$K/id.pub" "$K/authorized_keys"
echo "[$IP2]:2222 $(cat "$K/hostkey.pub")" >"$K/known_hosts"
sftp_server=/usr/lib/openssh/sftp-server
[ -x "$sftp_server" ] || sftp_server=internal-sftp
cat >"$K/sshd_config" <<EOF
Port 2222
ListenAddress 0.0.0.0
HostKey $K/hostkey
PidFile $K/sshd.pid
AuthorizedKeysFile $K/authorized_keys
StrictModes no
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
Subsystem sftp $sftp_server
LogLevel VERBOSE
EOF
if [ ! -d /run/sshd ]; then
  mkdir -p -m 755 /run/sshd
  on_exit "rmdir /run/sshd"
fi
"$SSHD" -t -f "$K/sshd_config" || fail "sshd -t refuses the test's configuration"

bg2 "$SSHD" -D -e -f "$K/sshd_config" 2>"$WORK/sshd.log"; srv=$!
on_exit "kill $srv"
wait_listen 2222 "$S2"

SSH_OPTS=(-F /dev/null -i "$K/id" -o IdentitiesOnly=yes -o BatchMode=yes -o UserKnownHostsFile="$K/known_hosts"
  -o StrictHostKeyChecking=yes -o ConnectTimeout=20)
A=(timeout 120 ip netns exec "$H1" "$ENORUN" --socket "$S1" --)

out=$("${A[@]}" ssh "${SSH_OPTS[@]}" -p 2222 "root@$IP2" echo hello 2>"$WORK/ssh.err") ||
  fail "ssh login failed: $(tail -5 "$WORK/ssh.err"); sshd: $(tail -5 "$WORK/sshd.log")"
[ "$out" = hello ] || fail "ssh: 'echo hello' printed '$out'"
note "ssh root@$IP2 echo hello: hello"

head -c $((50 << 20)) /dev/urandom >"$WORK/up.bin"
want=$(sha256sum <"$WORK/up.bin" | cut -d' ' -f1)
# 8 MB/s (scp -l counts Kbit/s): a few seconds to be watched in both tunds
"${A[@]}" scp "${SSH_OPTS[@]}" -q -l 64000 -P 2222 "$WORK/up.bin" "root@$IP2:$WORK/up.copy" \
  2>"$WORK/scp-up.err" &
cp=$!
expect_encrypted "scp 50 MiB -> sshd" 2222 $cp
enoctl2 status | awk 'NR == 1 || /:2222 /' | sed 's/^/    /'
wait $cp || fail "scp upload failed: $(tail -5 "$WORK/scp-up.err"); sshd: $(tail -5 "$WORK/sshd.log")"
got=$(sha256sum <"$WORK/up.copy" | cut -d' ' -f1)
[ "$got" = "$want" ] || fail "scp upload: SHA-256 $got, sent $want"
note "scp 50 MiB up: SHA-256 equal"

"${A[@]}" scp "${SSH_OPTS[@]}" -q -P 2222 "root@$IP2:$WORK/up.copy" "$WORK/down.bin" 2>"$WORK/scp-down.err" ||
  fail "scp download failed: $(tail -5 "$WORK/scp-down.err")"
got=$(sha256sum <"$WORK/down.bin" | cut -d' ' -f1)
[ "$got" = "$want" ] || fail "scp download: SHA-256 $got, expected $want"
note "scp 50 MiB down: SHA-256 equal"

kill -0 "$srv" || fail "sshd died: $(tail -5 "$WORK/sshd.log")"
if grep -E "VRF|getsockopt|setsockopt|signal 31|killed by signal|terminated by signal|Bad system call" \
     "$WORK/sshd.log" >"$WORK/sshd.bad"; then
  fail "sshd logged: $(head -3 "$WORK/sshd.bad")"
fi
grep -q "Accepted publickey for root" "$WORK/sshd.log" || fail "sshd did not log the login"
tund_alive 1; tund_alive 2
wait_count "$S1" 0 20
note ok
