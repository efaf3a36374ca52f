#!/usr/bin/env bash
# san: skip
# make install / make uninstall (issue 16 points 7 and 8):
#   1. `make install DESTDIR=D PREFIX=/usr` puts exactly the files of the
#      layout (binaries, enoctl -> tund, libenoshim.so under lib/enoshim,
#      tcpinc.h, tcpinc.pc, the example config under /etc/enoshim, the
#      systemd unit, five man pages) and a manifest that lists them all;
#   2. one version string: --version of every command, the .pc file, the
#      man pages' headers = include/enoshim/version.h;
#   3. each man page renders without a warning (man --warnings -l, groff -ww);
#      pkg-config --cflags tcpinc names D's include directory, and a program
#      that includes <tcpinc.h> compiles with it;
#   4. systemd-analyze verify of the unit (in a copy of D with the system's
#      units, and the man pages it names); its hardening as far as it can be
#      checked without systemd as init: the installed tund runs in a namespace
#      under no_new_privs with CAP_NET_ADMIN as its only bounding capability
#      (CapabilityBoundingSet=, NoNewPrivileges=), its helper still sets up the
#      host (real hosts), every system call tund and the helper make is in the
#      unit's SystemCallFilter=, every socket() family in
#      RestrictAddressFamilies=;
#   5. the installed enorun, against that tund, runs the installed eno-hello
#      server and client (encrypted, one session ID) with the installed
#      library, and --sandbox finds the installed tund;
#   6. make uninstall leaves D empty;
#   7. the repository stands alone: no absolute path of a build machine, no
#      link that leaves the repository (git grep).
. "$(dirname "$0")/lib.sh"
V=$(sed -n 's/^#define ENOSHIM_VERSION *"\(.*\)".*/\1/p' "$TOP/include/enoshim/version.h")
[ -n "$V" ] || fail "no ENOSHIM_VERSION in include/enoshim/version.h"
D=$WORK/dest
REL_BUILD=${BUILD#"$TOP"/}

# ---- 1. install ------------------------------------------------------------------
make -C "$TOP" --no-print-directory install DESTDIR="$D" PREFIX=/usr BUILD="$REL_BUILD" >"$WORK/install.log" 2>&1 ||
  { tail -n 30 "$WORK/install.log" >&2; fail "make install failed"; }
want="etc/enoshim/tund.conf.example 644
usr/bin/enodump 755
usr/bin/enorun 755
usr/include/tcpinc.h 644
usr/lib/enoshim/libenoshim.so 644
usr/lib/systemd/system/tund.service 644
usr/libexec/enoshim/eno-auth 755
usr/libexec/enoshim/eno-hello 755
usr/sbin/enoctl link
usr/sbin/tund 755
usr/sbin/tund-nat 755
usr/share/enoshim/install-manifest 644
usr/share/man/man1/enodump.1 644
usr/share/man/man1/enorun.1 644
usr/share/man/man7/tcpinc.7 644
usr/share/man/man8/enoctl.8 644
usr/share/man/man8/tund.8 644
usr/share/pkgconfig/tcpinc.pc 644"
got=$(cd "$D" && find . \( -type f -o -type l \) | sed 's|^\./||' | sort | while read -r f; do
  if [ -L "$f" ]; then echo "$f link"; else echo "$f $(stat -c %a "$f")"; fi; done)
expect "installed files and modes" "$got" "$want"
expect "enoctl -> tund" "$(readlink "$D/usr/sbin/enoctl")" tund
man_files=$(grep -E '^[fl] ' "$D/usr/share/enoshim/install-manifest" | cut -d' ' -f2 | sed 's|^/||' | sort)
expect "the manifest lists every file" "$man_files" "$(echo "$want" | cut -d' ' -f1)"
note "installed: $(echo "$want" | wc -l) files under $D"

# ---- 2. one version --------------------------------------------------------------
for c in usr/bin/enorun usr/bin/enodump usr/sbin/tund usr/sbin/enoctl usr/sbin/tund-nat; do
  out=$("$D/$c" --version 2>&1) || expect "$c --version: exit status" "$?" 0
  expect "$c --version" "$out" "$(basename "$c") (enoshim) $V"
done
expect "tcpinc.pc Version" "$(PKG_CONFIG_PATH=$D/usr/share/pkgconfig pkg-config --modversion tcpinc)" "$V"
for p in "$D"/usr/share/man/man*/*; do
  expect_match "$(basename "$p"): header" "$(grep -m1 '^\.TH' "$p")" "\"enoshim $V\""
done
note "version $V everywhere"

# ---- 3. man pages, pkg-config ------------------------------------------------------
for p in "$D"/usr/share/man/man*/*; do
  n=$(basename "$p")
  MANWIDTH=80 man --warnings -l "$p" >"$WORK/$n.txt" 2>"$WORK/$n.warn" || expect "man -l $n: exit status" "$?" 0
  expect "man --warnings -l $n: warnings" "$(cat "$WORK/$n.warn")" ""
  expect "groff -ww $n: warnings" "$(groff -man -ww -z -Tutf8 "$p" 2>&1)" ""
  grep -q '^NAME' "$WORK/$n.txt" || expect "$n renders a NAME section" no yes
done
note "man pages: $(cd "$D/usr/share/man" && ls man*/* | tr '\n' ' ')render without warnings"
cflags=$(PKG_CONFIG_PATH=$D/usr/share/pkgconfig PKG_CONFIG_SYSROOT_DIR=$D pkg-config --cflags tcpinc) ||
  fail "pkg-config --cflags tcpinc failed"
expect "pkg-config --cflags tcpinc" "$(echo $cflags)" "-I$D/usr/include"
printf '#include <netinet/in.h>\n#include <tcpinc.h>\nint main(void) { return TCP_ENO_SESSID > 0 ? 0 : 1; }\n' >"$WORK/pc.c"
# shellcheck disable=SC2086
cc $cflags -o "$WORK/pc" "$WORK/pc.c" 2>"$WORK/pc.err" || expect "compile with tcpinc's cflags" "$(cat "$WORK/pc.err")" ""
note "pkg-config --cflags tcpinc: $cflags (a program including <tcpinc.h> compiles)"

# ---- 4. the systemd unit -------------------------------------------------------------
command -v systemd-analyze >/dev/null || fail "systemd-analyze missing (scripts/setup installs systemd)"
vroot=$WORK/vroot
mkdir -p "$vroot/etc/systemd/system"
cp -a "$D/." "$vroot/"
cp -rn /usr/lib/systemd/system/. "$vroot/usr/lib/systemd/system/"
MANPATH=$vroot/usr/share/man systemd-analyze verify --root="$vroot" /usr/lib/systemd/system/tund.service \
  >"$WORK/verify.out" 2>&1 || expect "systemd-analyze verify tund.service" "$(cat "$WORK/verify.out")" "(passes)"
expect "systemd-analyze verify: nothing said" "$(cat "$WORK/verify.out")" ""
score=$(systemd-analyze security --offline=yes --root="$vroot" /usr/lib/systemd/system/tund.service 2>/dev/null |
  sed -n 's/.*Overall exposure level for tund.service: \([0-9.]*\).*/\1/p')
note "systemd-analyze verify tund.service: ok; security exposure ${score:-?} (offline)"
unit=$D/usr/lib/systemd/system/tund.service
expect "unit: ExecStart" "$(sed -n 's/^ExecStart=//p' "$unit")" "/usr/sbin/tund --socket=/run/enoshim/tund.sock"
expect "unit: CapabilityBoundingSet" "$(sed -n 's/^CapabilityBoundingSet=//p' "$unit")" CAP_NET_ADMIN
expect "unit: NoNewPrivileges" "$(sed -n 's/^NoNewPrivileges=//p' "$unit")" yes
expect "unit: RuntimeDirectory" "$(sed -n 's/^RuntimeDirectory=//p' "$unit")" enoshim
families=$(sed -n 's/^RestrictAddressFamilies=//p' "$unit")

# the unit's syscall allow list: @system-service, less the groups it removes
expand() {   # expand @GROUP...: the system calls, one per line
  local g
  for g in "$@"; do
    systemd-analyze syscall-filter "$g" 2>/dev/null | tail -n +2 | sed 's/^ *//; /^#/d; /^$/d' |
      while read -r s; do case "$s" in @*) expand "$s";; *) echo "$s";; esac; done
  done
}
allow=$(expand $(sed -n 's/^SystemCallFilter=\([^~].*\)/\1/p' "$unit") | sort -u)
deny=$(expand $(sed -n 's/^SystemCallFilter=~//p' "$unit") | sort -u)
[ -n "$allow" ] || fail "systemd-analyze syscall-filter listed nothing"

ip netns add "$NS" || fail "cannot create a namespace (need root)"
in_ns ip link set lo up
SOCK=$WORK/tund.sock
command -v strace >/dev/null || fail "strace missing (scripts/setup)"
# as the unit has it: no_new_privs, CAP_NET_ADMIN the only capability left
in_ns strace -f -qq -o "$WORK/strace.out" \
  setpriv --nnp --bounding-set=-all,+net_admin --inh-caps=-all -- \
  "$D/usr/sbin/tund" --socket="$SOCK" --pidfile="$WORK/tund.pid" >"$WORK/tund.log" 2>&1 &
TUND_PIDS+=($!)
wait_log "$WORK/tund.log" 'ready:' 30
grep -q "real hosts: lwIP's traffic masqueraded" "$WORK/tund.log" ||
  fail "the helper did not set up the host under the unit's hardening: $(grep -i 'real hosts' "$WORK/tund.log")"
note "installed tund under no_new_privs + bounding set {CAP_NET_ADMIN}: ready, helper set up the host"

# ---- 5. the installed enorun and examples ---------------------------------------------------
ER=$D/usr/bin/enorun
EX=$D/usr/libexec/enoshim
out=$(in_ns "$ER" --socket "$SOCK" -- sh -c 'echo "$LD_PRELOAD"') || fail "installed enorun failed: $out"
expect "installed enorun preloads the installed library" "$out" "$D/usr/lib/enoshim/libenoshim.so"
in_ns "$ER" --socket "$SOCK" -- "$EX/eno-hello" server 9000 >"$WORK/srv.out" 2>&1 &
sp=$!
wait_log "$WORK/srv.out" '^listening' 15
in_ns "$ER" --socket "$SOCK" -- "$EX/eno-hello" client 10.77.0.2 9000 "installed" >"$WORK/cli.out" 2>&1 ||
  fail "installed eno-hello client failed: $(cat "$WORK/cli.out")"
wait $sp || fail "installed eno-hello server failed: $(cat "$WORK/srv.out")"
expect "installed eno-hello: client eno" "$(eno_val "$WORK/cli.out" eno)" encrypting
expect "installed eno-hello: server eno" "$(eno_val "$WORK/srv.out" eno)" encrypting
sid=$(eno_val "$WORK/cli.out" session-id)
expect_match "installed eno-hello: session ID" "$sid" '^23[0-9a-f]{64}$'
expect "installed eno-hello: one session ID" "$(eno_val "$WORK/srv.out" session-id)" "$sid"
expect "installed eno-hello: reply" "$(eno_val "$WORK/cli.out" reply)" installed
note "installed eno-hello pair: encrypting, session ${sid:0:16}..."
st=$("$D/usr/sbin/enoctl" --socket "$SOCK" status 2>&1) || fail "installed enoctl status failed: $st"
out=$(timeout 30 "$ER" --sandbox -- true 2>&1) || fail "installed enorun --sandbox failed: $out"
expect_match "installed enorun --sandbox" "$out" "sandbox ready"

# stop tund, then its system calls and socket families
kill -TERM "$(cat "$WORK/tund.pid")" || fail "no pid file of tund"
wait_gone "${TUND_PIDS[-1]}" 10 || fail "tund did not exit on SIGTERM"
used=$(awk -v t="$D/usr/sbin/tund" 'index($0, "execve(\"" t "\"") { on = 1 } on' "$WORK/strace.out" |
  sed -n 's/^[0-9]* *\([a-z0-9_]*\)(.*/\1/p' | sort -u)
[ -n "$used" ] || fail "strace recorded no system call of tund"
bad=$(comm -23 <(echo "$used") <(echo "$allow"))
expect "system calls outside SystemCallFilter=@system-service" "$(echo $bad)" ""
bad=$(comm -12 <(echo "$used") <(echo "$deny"))
expect "system calls the unit's SystemCallFilter=~ removes" "$(echo $bad)" ""
fams=$(sed -n 's/^[0-9]* *socket(\(AF_[A-Z0-9]*\).*/\1/p; s/^[0-9]* *socketpair(\(AF_[A-Z0-9]*\).*/\1/p' "$WORK/strace.out" | sort -u)
for f in $fams; do
  [[ " $families " == *" $f "* ]] || expect "socket family $f in RestrictAddressFamilies=" no yes
done
note "tund and tund-nat: $(echo "$used" | wc -l) distinct system calls, all in the unit's filter; families: $(echo $fams)"
note "(ProtectSystem=, ProtectHome=, PrivateTmp=, DevicePolicy= ... need systemd as init: checked by systemd-analyze verify only)"

# ---- 6. uninstall --------------------------------------------------------------------------
make -C "$TOP" --no-print-directory uninstall DESTDIR="$D" PREFIX=/usr BUILD="$REL_BUILD" >"$WORK/uninstall.log" 2>&1 ||
  { cat "$WORK/uninstall.log" >&2; fail "make uninstall failed"; }
expect "after make uninstall" "$(cd "$D" && find . -mindepth 1 | sort | tr '\n' ' ')" ""
note "make uninstall: $D is empty"

# ---- 7. the repository stands alone ---------------------------------------------------------
cd "$TOP"
abs=$(git grep -nIE '(/w[o]rk/|/f[a]rm/|/home/[a-z]|/Users/|/root/[A-Za-z])' -- . ':!third_party' ':!tests/integ/t_install.sh' || true)
expect "absolute paths of a build machine" "$abs" ""
out=$(git grep -nIE '\.\./shared|shared/(specs|DESIGN|SPEC-NOTES)' -- . ':!tests/integ/t_install.sh' || true)
expect "links to ../shared" "$out" ""
# every relative link of the Markdown files resolves inside the repository
badlinks=$(git ls-files '*.md' | while read -r f; do
  grep -oE '\]\([^)#]+' "$f" | sed 's/^](//' | while read -r l; do
    case "$l" in http://*|https://*|mailto:*) continue;; esac
    t=$(realpath -m "$(dirname "$f")/$l")
    case "$t" in "$TOP"/*) [ -e "$t" ] || echo "$f: $l (missing)";; *) echo "$f: $l (outside)";; esac
  done
done)
expect "Markdown links" "$badlinks" ""
[ -f docs/DESIGN.md ] || expect "docs/DESIGN.md" missing present
note "no machine paths, no links out of the repository"
expect_done
echo "  ok"
