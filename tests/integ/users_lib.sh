# tests/integ/users_lib.sh — sourced by the tests that make users of their
# own (t_ctl_trust, t_multiuser, t_pgbench, t_readme); not a test itself.

# drop_user U: the test user's processes ended (by pid), then the user and
# its group removed.  Always succeeds (it runs from exit handlers).
drop_user() {
  local p
  p=$(ps -o pid= -u "$1" 2>/dev/null)
  [ -n "$p" ] && kill -9 $p 2>/dev/null
  for _ in $(seq 1 100); do [ -z "$(ps -o pid= -u "$1" 2>/dev/null)" ] && break; sleep 0.05; done
  userdel "$1" 2>/dev/null
  getent group "$1" >/dev/null && groupdel "$1" 2>/dev/null
  return 0
}
