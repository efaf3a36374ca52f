#!/usr/bin/env bash
# enorun's command line, and what it tells the user (issue 16, points 3
# and 5; the shim's outcome lines, point 4, are t_outcome.sh):
#   1. -h/--help and --version without a tund (exit 0, no script internals),
#      the version of include/enoshim/version.h; usage errors exit 2 in one
#      line (missing value, unknown option, no program); bad --direct,
#      --eno-teps and --fallback values are refused with the allowed range;
#      a missing program is "command not found" (127), a file that is not
#      executable 126; no tund: one line and exit 1, --fallback=plain runs
#   2. programs that will not load libenoshim.so (statically linked — built
#      here with gcc -static —, set-user-ID, a 32-bit ELF file, a Go program,
#      a script whose interpreter is static): one warning line that the TCP
#      will NOT go through enoshim; with --eno-mandatory not run (exit 1)
. "$(dirname "$0")/lib.sh"
V=$(sed -n 's/^#define ENOSHIM_VERSION *"\(.*\)".*/\1/p' "$TOP/include/enoshim/version.h")
[ -n "$V" ] || fail "no ENOSHIM_VERSION in include/enoshim/version.h"

# run_cli NAME ARGS...: enorun ARGS with no tund anywhere (an empty
# namespace is not needed: the socket given does not exist) -> $WORK/NAME.{out,err,rc}
run_cli() {
  local n=$1; shift
  local rc=0
  ENOSHIM_SOCKET=$WORK/no-tund.sock "$ENORUN" "$@" >"$WORK/$n.out" 2>"$WORK/$n.err" </dev/null || rc=$?
  echo $rc >"$WORK/$n.rc"
}
rc_of() { cat "$WORK/$1.rc"; }
err_of() { cat "$WORK/$1.err"; }
# no shell internals in anything enorun says
no_internals() {
  local n=$1
  if grep -qE 'line [0-9]+:|unbound variable|\$[0-9@*]|syntax error|bash|set -e|^#!' "$WORK/$n.out" "$WORK/$n.err"; then
    expect "$n: no script internals" "$(cat "$WORK/$n.out" "$WORK/$n.err")" "(none)"
  fi
}
usage_err() {   # usage_err NAME REGEX ARGS...: exit 2, one line matching REGEX
  local n=$1 re=$2; shift 2
  run_cli "$n" "$@"
  expect "$n: exit status" "$(rc_of "$n")" 2
  expect "$n: stderr lines" "$(wc -l <"$WORK/$n.err")" 1
  expect_match "$n: message" "$(err_of "$n")" "^enorun: .*$re"
  no_internals "$n"
  note "$n: $(err_of "$n")"
}

# ---- 1. command line -------------------------------------------------------------
run_cli help --help
expect "--help: exit status" "$(rc_of help)" 0
expect_match "--help: usage line" "$(head -n 1 "$WORK/help.out")" '^usage: enorun \[OPTIONS\] \[--\] PROGRAM'
for o in --socket --fallback --sandbox --tund-arg --eno-teps --no-eno --eno-mandatory --direct --debug --version; do
  grep -q -- "$o" "$WORK/help.out" || expect "--help lists $o" missing listed
done
expect "--help: stderr" "$(err_of help)" ""
no_internals help
run_cli h -h
expect "-h: exit status" "$(rc_of h)" 0
expect "-h = --help" "$(cat "$WORK/h.out")" "$(cat "$WORK/help.out")"
run_cli version --version
expect "--version: exit status" "$(rc_of version)" 0
expect "--version" "$(cat "$WORK/version.out")" "enorun (enoshim) $V"
note "--help, -h, --version: exit 0; $(cat "$WORK/version.out")"

usage_err socket_noval "option '--socket' needs a value" --socket
usage_err unknown "unknown option '--bogus'" --bogus -- true
usage_err unknown_short "unknown option '-x'" -x true
usage_err noprog "no program given" --debug
usage_err help_val "option '--help' takes no value" --help=yes
usage_err fallback_bad "'foo' is not allowed \(the one fallback is 'plain'\)" --fallback=foo -- true
usage_err direct_bad "'foo/99' is not ADDRESS or ADDRESS/LENGTH \(IPv4 length 0\.\.32, IPv6 0\.\.128\)" --direct foo/99 -- true
usage_err direct_len4 "'10\.0\.0\.0/33' .*IPv4 length 0\.\.32" --direct=10.0.0.0/33 -- true
usage_err direct_len6 "'fd00::/129' .*IPv6 0\.\.128" --direct 10.0.0.0/8,fd00::/129 -- true
usage_err teps_bad "'zz' is not a TEP identifier \(a hex byte 20\.\.7f" --eno-teps zz -- true
usage_err teps_range "10 is out of range 20\.\.7f" --eno-teps=23,10 -- true
usage_err teps_twice "23 is listed twice" --eno-teps 23,24,23 -- true
usage_err sandbox_socket "--socket and --sandbox exclude each other" --sandbox --socket /x -- true
usage_err tund_arg "--tund-arg applies to --sandbox only" --tund-arg -v -- true

# good values pass (and reach the program's environment); both value forms
run_cli good --fallback plain --direct=10.0.0.0/8,fd00::/8 --eno-teps 0x23,24 --eno-mandatory --debug \
  --socket "$WORK/some.sock" -- sh -c 'env | grep -E "^ENOSHIM_" | sort; echo "LD_PRELOAD=${LD_PRELOAD##*:}"'
expect "good values: exit status" "$(rc_of good)" 0
# (a sanitizer build preloads its runtime before the library: the last entry counts)
expect "good values: environment" "$(cat "$WORK/good.out")" "ENOSHIM_DEBUG=1
ENOSHIM_DIRECT=10.0.0.0/8,fd00::/8
ENOSHIM_ENO_MANDATORY=1
ENOSHIM_ENO_TEPS=0x23,24
ENOSHIM_FALLBACK=plain
ENOSHIM_SOCKET=$WORK/some.sock
LD_PRELOAD=$BUILD/libenoshim.so"
# without --socket enorun sets no path of its own
run_cli nosock --fallback=plain -- sh -c 'echo "${ENOSHIM_SOCKET-unset}"'
expect "no --socket: ENOSHIM_SOCKET as it was" "$(cat "$WORK/nosock.out")" "$WORK/no-tund.sock"
# the program's own options are its own
run_cli progopts --fallback=plain -- sh -c 'echo "$@"' sh --socket --bogus
expect "options after PROGRAM are PROGRAM's" "$(cat "$WORK/progopts.out")" "--socket --bogus"
run_cli progopts2 --fallback=plain sh -c 'echo "$1"' sh --debug
expect "options after PROGRAM (no --) are PROGRAM's" "$(cat "$WORK/progopts2.out")" "--debug"

run_cli missing -- no-such-program-enoshim
expect "missing program: exit status" "$(rc_of missing)" 127
expect "missing program: message" "$(err_of missing)" "enorun: no-such-program-enoshim: command not found"
run_cli missing_path -- "$WORK/nope"
expect "missing path: exit status" "$(rc_of missing_path)" 127
expect "missing path: message" "$(err_of missing_path)" "enorun: $WORK/nope: No such file or directory"
printf 'echo hi\n' >"$WORK/noexec"; chmod 644 "$WORK/noexec"
run_cli noexec -- "$WORK/noexec"
expect "not executable: exit status" "$(rc_of noexec)" 126
no_internals missing
note "missing program: $(err_of missing) (exit 127); not executable: exit 126"

# no tund: one line, exit 1, naming the path; --fallback=plain runs
run_cli notund --socket "$WORK/absent.sock" -- true
expect "no tund: exit status" "$(rc_of notund)" 1
expect "no tund: stderr lines" "$(wc -l <"$WORK/notund.err")" 1
expect_match "no tund: message" "$(err_of notund)" "^enorun: no tund is running at $WORK/absent.sock .*--sandbox.*--fallback=plain"
run_cli fallback --socket "$WORK/absent.sock" --fallback=plain -- echo ran
expect "no tund, --fallback=plain: runs" "$(cat "$WORK/fallback.out") $(rc_of fallback)" "ran 0"
note "no tund: $(err_of notund)"

# ---- 2. programs that will not load libenoshim.so ---------------------------------------
cat >"$WORK/static.c" <<'EOF'
#include <stdio.h>
int main(int argc, char **argv) { printf("static ran %s\n", argc > 1 ? argv[1] : ""); return 0; }
EOF
gcc -static -O1 -o "$WORK/static" "$WORK/static.c" 2>"$WORK/gcc.err" ||
  fail "gcc -static failed (libc6-dev's static libc, scripts/setup): $(cat "$WORK/gcc.err")"
warn_tail=": its TCP will NOT go through enoshim \(plain kernel TCP\)$"
warn_re="^enorun: warning: .*$warn_tail"
run_cli static --fallback=plain -- "$WORK/static" x
expect "static: runs" "$(cat "$WORK/static.out") $(rc_of static)" "static ran x 0"
expect "static: one warning line" "$(wc -l <"$WORK/static.err")" 1
expect_match "static: warning" "$(err_of static)" "$warn_re"
expect_match "static: why" "$(err_of static)" "static is statically linked"
run_cli static_m --fallback=plain --eno-mandatory -- "$WORK/static" x
expect "static, --eno-mandatory: exit status" "$(rc_of static_m)" 1
expect "static, --eno-mandatory: not run" "$(cat "$WORK/static_m.out")" ""
expect_match "static, --eno-mandatory: refusal" "$(err_of static_m)" \
  "^enorun: .*static is statically linked: .*not running it \(--eno-mandatory\)$"
note "static: $(err_of static)"
note "static, --eno-mandatory: $(err_of static_m) (exit $(rc_of static_m))"

# the same program through PATH, and as the interpreter of a script
PATH="$WORK:$PATH" "$ENORUN" --fallback=plain static y >"$WORK/static_path.out" 2>"$WORK/static_path.err" ||
  fail "static through PATH did not run: $(cat "$WORK/static_path.err")"
expect_match "static through PATH: warning" "$(err_of static_path)" "^enorun: warning: static is statically linked"
printf '#!%s\n' "$WORK/static" >"$WORK/script"; chmod 755 "$WORK/script"
run_cli script --fallback=plain -- "$WORK/script"
expect_match "script with a static interpreter" "$(err_of script)" "script runs through $WORK/static, which is statically linked"

# set-user-ID to someone else (unless the file system ignores it)
cp /bin/true "$WORK/suid"; chown nobody "$WORK/suid"; chmod 4755 "$WORK/suid"
run_cli suid --fallback=plain -- "$WORK/suid"
if findmnt -no OPTIONS -T "$WORK" | grep -qw nosuid; then
  expect "set-user-ID on a nosuid mount: no warning" "$(err_of suid)" ""
else
  # (the dynamic loader may add its own lines about LD_PRELOAD: enorun's is the first)
  expect_match "set-user-ID: warning" "$(head -n 1 "$WORK/suid.err")" "^enorun: warning: .*suid is set-user-ID.*$warn_tail"
  run_cli suid_m --fallback=plain --eno-mandatory -- "$WORK/suid"
  expect "set-user-ID, --eno-mandatory: exit status" "$(rc_of suid_m)" 1
fi

# another ELF class: a 32-bit header (never run: --eno-mandatory refuses it)
python3 - "$WORK/elf32" <<'EOF'
import struct, sys
# ELF32, little-endian, ET_EXEC, EM_386, no program headers
h = b"\x7fELF" + bytes([1, 1, 1]) + bytes(9)
h += struct.pack("<HHIIIIIHHHHHH", 2, 3, 1, 0x8048000, 0, 0, 0, 52, 32, 0, 40, 0, 0)
open(sys.argv[1], "wb").write(h)
EOF
chmod 755 "$WORK/elf32"
run_cli elf32 --fallback=plain --eno-mandatory -- "$WORK/elf32"
expect "32-bit, --eno-mandatory: exit status" "$(rc_of elf32)" 1
expect_match "32-bit: why" "$(err_of elf32)" "elf32 is a 32-bit program \(libenoshim.so is 64-bit\)"

# a Go program (its section names), dynamically linked all the same
if command -v objcopy >/dev/null; then
  : >"$WORK/empty"
  objcopy --add-section .go.buildinfo="$WORK/empty" /bin/true "$WORK/goprog"
  run_cli goprog --fallback=plain -- "$WORK/goprog"
  expect_match "Go program: warning" "$(err_of goprog)" "^enorun: warning: .*goprog is a Go program .*$warn_tail"
fi
# and a dynamically linked C program: no word
run_cli dynamic --fallback=plain -- /bin/true
expect "dynamic program: nothing said" "$(err_of dynamic)$(rc_of dynamic)" "0"
expect_done
echo "  ok"
