#!/usr/bin/env bash
# SECURITY.md names, for every claim, the test that checks it: every test it
# names (t_* in tests/integ/, test_* in tests/unit/, fuzz_* in fuzz/) exists,
# and it names at least the tests of the boundaries issue 15 asks about.
set -u
TOP=$(cd "$(dirname "$0")/../.." && pwd)
fail() { echo "FAIL: $*" >&2; exit 1; }
doc=$TOP/SECURITY.md
[ -f "$doc" ] || fail "no SECURITY.md"
names=$(grep -oE '\b(t|test|fuzz)_[a-z0-9_]+\b' "$doc" | sort -u)
n=0
for t in $names; do
  case $t in
    t_*) f=$TOP/tests/integ/$t.sh;;
    test_*) f=$TOP/tests/unit/$t.c;;
    fuzz_*) f=$TOP/fuzz/$t.c;;
  esac
  [ -f "$f" ] || fail "SECURITY.md names $t, but ${f#"$TOP"/} does not exist"
  n=$((n + 1))
done
for must in t_ctl_trust t_multiuser t_setcap t_keylog t_crypt_mitm t_eno_plain_peer t_crypt_tamper fuzz_ctlreq t_badctl; do
  printf '%s\n' "$names" | grep -qx "$must" || fail "SECURITY.md does not name $must"
done
echo "  $n tests named in SECURITY.md, each exists"
echo ok
