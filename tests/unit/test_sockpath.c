/*
 * test_sockpath.c — tund's control socket path and whom a client believes
 * (common/sockpath.c, include/enoshim/sockpath.h): the default paths of the
 * server (root, an ordinary user with and without XDG_RUNTIME_DIR) and of
 * clients ($ENOSHIM_SOCKET, a per-user socket that exists, the host's);
 * the trust file's grammar and the rule that only a root-owned file that
 * nobody else can write counts; the directory checks (owner, group- and
 * world-writable, missing); SO_PEERCRED of a socket served by another uid.
 *
 * Runs as root (as `make test` does); the ordinary user is uid 65534.
 * Criterion runs each test in its own process, so the tests that change uid
 * or the environment change nothing for the others.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "enoshim/sockpath.h"

#define NOBODY 65534

static char tmp[64];

static void mktmp(void)
{
  snprintf(tmp, sizeof(tmp), "/tmp/enoshim-sockpath.XXXXXX");
  cr_assert_not_null(mkdtemp(tmp));
  chmod(tmp, 0755);
}

static void rmtmp(void)
{
  char cmd[128];
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
  cr_expect_eq(system(cmd), 0);
}

/* ---- paths ---------------------------------------------------------------------- */

Test(sockpath, server_root)
{
  char p[SOCKPATH_MAX], why[200];
  cr_assert_eq(geteuid(), 0u, "run as root");
  unsetenv("ENOSHIM_SOCKET");
  setenv("XDG_RUNTIME_DIR", "/run/user/0", 1);
  cr_expect_eq(sockpath_server_default(p, sizeof(p), why, sizeof(why)), 0);
  cr_expect_str_eq(p, "/run/enoshim/tund.sock", "root's tund ignores XDG_RUNTIME_DIR");
  setenv("ENOSHIM_SOCKET", "/srv/x/t.sock", 1);
  cr_expect_eq(sockpath_server_default(p, sizeof(p), why, sizeof(why)), 0);
  cr_expect_str_eq(p, "/srv/x/t.sock");
  setenv("ENOSHIM_SOCKET", "", 1);
  cr_expect_eq(sockpath_server_default(p, sizeof(p), why, sizeof(why)), 0);
  cr_expect_str_eq(p, "/run/enoshim/tund.sock", "an empty ENOSHIM_SOCKET is none");
}

Test(sockpath, server_user)
{
  char p[SOCKPATH_MAX], why[200];
  unsetenv("ENOSHIM_SOCKET");
  cr_assert_eq(setresuid(NOBODY, NOBODY, NOBODY), 0);
  setenv("XDG_RUNTIME_DIR", "/run/user/65534", 1);
  cr_expect_eq(sockpath_server_default(p, sizeof(p), why, sizeof(why)), 0);
  cr_expect_str_eq(p, "/run/user/65534/enoshim/tund.sock");
  unsetenv("XDG_RUNTIME_DIR");
  cr_expect_eq(sockpath_server_default(p, sizeof(p), why, sizeof(why)), -1);
  cr_expect_str_eq(p, "");
  cr_expect(strstr(why, "XDG_RUNTIME_DIR is not set") && strstr(why, "--socket"), "%s", why);
}

Test(sockpath, client, .init = mktmp, .fini = rmtmp)
{
  char p[SOCKPATH_MAX], want[SOCKPATH_MAX];
  unsetenv("ENOSHIM_SOCKET");
  unsetenv("XDG_RUNTIME_DIR");
  sockpath_client_default(p, sizeof(p));
  cr_expect_str_eq(p, "/run/enoshim/tund.sock", "no XDG: the host's tund (never /tmp)");
  setenv("XDG_RUNTIME_DIR", tmp, 1);
  sockpath_client_default(p, sizeof(p));
  cr_expect_str_eq(p, "/run/enoshim/tund.sock", "no per-user socket: the host's");
  snprintf(want, sizeof(want), "%s/enoshim", tmp);
  cr_assert_eq(mkdir(want, 0700), 0);
  snprintf(want, sizeof(want), "%s/enoshim/tund.sock", tmp);
  int fd = open(want, O_CREAT | O_WRONLY, 0600);
  cr_assert_geq(fd, 0);
  close(fd);
  sockpath_client_default(p, sizeof(p));
  cr_expect_str_eq(p, want, "a per-user socket is preferred");
  setenv("ENOSHIM_SOCKET", "/elsewhere/s", 1);
  sockpath_client_default(p, sizeof(p));
  cr_expect_str_eq(p, "/elsewhere/s");
}

Test(sockpath, dirname)
{
  char d[SOCKPATH_MAX];
  sockpath_dirname("/run/enoshim/tund.sock", d, sizeof(d));
  cr_expect_str_eq(d, "/run/enoshim");
  sockpath_dirname("/tund.sock", d, sizeof(d));
  cr_expect_str_eq(d, "/");
  sockpath_dirname("tund.sock", d, sizeof(d));
  cr_expect_str_eq(d, ".");
}

/* ---- trust ---------------------------------------------------------------------------- */

struct trust_case {
  const char *text;
  int ok;
  int n;
  uid_t uid0, uid1;
};

static const struct trust_case trust_cases[] = {
  { "", 1, 0, 0, 0 },
  { "# nothing\n\n   \n", 1, 0, 0, 0 },
  { "trusted_uids = 998\n", 1, 1, 998, 0 },
  { "trusted_uids=998,999", 1, 2, 998, 999 },
  { "  trusted_uids = 998 , 999   # the enoshim user and a service\n", 1, 2, 998, 999 },
  { "trusted_uids = 5\ntrusted_uids = 7\n", 1, 2, 5, 7 },
  { "trusted_uids =\n", 1, 0, 0, 0 },
  { "trusted_uids = 4294967294\n", 1, 1, 4294967294u, 0 },
  { "trusted_uids = 4294967295\n", 0, 0, 0, 0 },        /* (uid_t)-1 */
  { "trusted_uids = 99999999999999999999\n", 0, 0, 0, 0 },
  { "trusted_uids = alice\n", 0, 0, 0, 0 },
  { "trusted_uids = 12x\n", 0, 0, 0, 0 },
  { "trusted_uids = -1\n", 0, 0, 0, 0 },
  { "trusted_uid = 5\n", 0, 0, 0, 0 },
  { "trusted_uids 5\n", 0, 0, 0, 0 },
  { "trusted_uidsx = 5\n", 0, 0, 0, 0 },
  { "5\n", 0, 0, 0, 0 },
};

Test(sockpath, trust_parse)
{
  for (size_t i = 0; i < sizeof(trust_cases) / sizeof(trust_cases[0]); i++) {
    const struct trust_case *c = &trust_cases[i];
    struct sockpath_trust t;
    int r = sockpath_trust_parse(c->text, strlen(c->text), &t);
    cr_expect_eq(r, c->ok ? 0 : -1, "'%s': %d", c->text, r);
    cr_expect_eq(t.n, c->n, "'%s': %d uids", c->text, t.n);
    if (c->ok && c->n > 0)
      cr_expect_eq(t.uids[0], c->uid0, "'%s'", c->text);
    if (c->ok && c->n > 1)
      cr_expect_eq(t.uids[1], c->uid1, "'%s'", c->text);
    if (!c->ok)
      cr_expect(t.note[0], "'%s': no reason given", c->text);
  }
  char many[512] = "trusted_uids =";
  for (int i = 0; i < SOCKPATH_TRUST_MAX + 1; i++)
    snprintf(many + strlen(many), sizeof(many) - strlen(many), " %d", 1000 + i);
  struct sockpath_trust t;
  cr_expect_eq(sockpath_trust_parse(many, strlen(many), &t), -1, "33 uids");
}

Test(sockpath, trusted)
{
  struct sockpath_trust t = { .uids = { 998 }, .n = 1 };
  cr_expect(sockpath_trusted(1000, 1000, NULL), "self");
  cr_expect(sockpath_trusted(0, 1000, NULL), "root");
  cr_expect(!sockpath_trusted(998, 1000, NULL), "not listed");
  cr_expect(sockpath_trusted(998, 1000, &t), "listed");
  cr_expect(!sockpath_trusted(999, 1000, &t), "another");
}

static void write_file(const char *p, const char *text, mode_t mode, uid_t uid)
{
  int fd = open(p, O_CREAT | O_TRUNC | O_WRONLY, mode);
  cr_assert_geq(fd, 0);
  cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
  close(fd);
  cr_assert_eq(chmod(p, mode), 0);
  cr_assert_eq(chown(p, uid, 0), 0);
}

Test(sockpath, trust_load, .init = mktmp, .fini = rmtmp)
{
  char p[128];
  struct sockpath_trust t;
  snprintf(p, sizeof(p), "%s/trust.conf", tmp);
  sockpath_trust_load(p, &t);
  cr_expect_eq(t.n, 0);
  cr_expect_str_eq(t.note, "", "a missing file is no news");
  write_file(p, "trusted_uids = 998\n", 0644, 0);
  sockpath_trust_load(p, &t);
  cr_expect_eq(t.n, 1, "root's 0644 file counts: %s", t.note);
  write_file(p, "trusted_uids = 998\n", 0664, 0);
  sockpath_trust_load(p, &t);
  cr_expect_eq(t.n, 0, "group-writable: ignored");
  cr_expect(strstr(t.note, "ignored"), "%s", t.note);
  write_file(p, "trusted_uids = 998\n", 0646, 0);
  sockpath_trust_load(p, &t);
  cr_expect_eq(t.n, 0, "world-writable: ignored");
  write_file(p, "trusted_uids = 998\n", 0644, NOBODY);
  sockpath_trust_load(p, &t);
  cr_expect_eq(t.n, 0, "not root's: ignored");
  write_file(p, "trusted_uids = x\n", 0644, 0);
  sockpath_trust_load(p, &t);
  cr_expect_eq(t.n, 0);
  cr_expect(strstr(t.note, "line 1"), "%s", t.note);
}

/* ---- directories ------------------------------------------------------------------------- */

static void mkdir_as(const char *name, mode_t mode, uid_t uid, char *path, size_t n)
{
  snprintf(path, n, "%s/%s", tmp, name);
  cr_assert_eq(mkdir(path, mode), 0);
  cr_assert_eq(chmod(path, mode), 0);
  cr_assert_eq(chown(path, uid, 0), 0);
  strncat(path, "/tund.sock", n - strlen(path) - 1);
}

Test(sockpath, dir_check, .init = mktmp, .fini = rmtmp)
{
  char p[128], why[400];
  uid_t who = 12345;
  struct sockpath_trust t = { .uids = { NOBODY }, .n = 1 };
  mkdir_as("root755", 0755, 0, p, sizeof(p));
  cr_expect_eq(sockpath_dir_check(p, 1000, NULL, &who, why, sizeof(why)), SOCKPATH_OK, "%s", why);
  cr_expect_eq(who, 0u);
  mkdir_as("nobody700", 0700, NOBODY, p, sizeof(p));
  cr_expect_eq(sockpath_dir_check(p, 1000, NULL, &who, why, sizeof(why)), SOCKPATH_BAD_OWNER);
  cr_expect_eq(who, (uid_t)NOBODY);
  cr_expect(strstr(why, "belongs to uid 65534, not you (uid 1000) or root") && strstr(why, SOCKPATH_TRUST_CONF),
            "%s", why);
  cr_expect_eq(sockpath_dir_check(p, NOBODY, NULL, &who, why, sizeof(why)), SOCKPATH_OK, "its owner's own");
  cr_expect_eq(sockpath_dir_check(p, 1000, &t, &who, why, sizeof(why)), SOCKPATH_OK, "trusted");
  mkdir_as("root777", 0777, 0, p, sizeof(p));
  cr_expect_eq(sockpath_dir_check(p, 1000, NULL, &who, why, sizeof(why)), SOCKPATH_BAD_MODE);
  cr_expect(strstr(why, "writable by others (mode 0777)"), "%s", why);
  mkdir_as("root1777", 01777, 0, p, sizeof(p));
  cr_expect_eq(sockpath_dir_check(p, 1000, NULL, &who, why, sizeof(why)), SOCKPATH_BAD_MODE, "/tmp-like");
  mkdir_as("root775", 0775, 0, p, sizeof(p));
  cr_expect_eq(sockpath_dir_check(p, 1000, NULL, &who, why, sizeof(why)), SOCKPATH_BAD_MODE, "group-writable");
  snprintf(p, sizeof(p), "%s/absent/tund.sock", tmp);
  cr_expect_eq(sockpath_dir_check(p, 1000, NULL, &who, why, sizeof(why)), SOCKPATH_NODIR);
}

Test(sockpath, own_dir_check, .init = mktmp, .fini = rmtmp)
{
  char p[128], why[400];
  mkdir_as("mine", 0700, 0, p, sizeof(p));
  cr_expect_eq(sockpath_own_dir_check(p, 0, why, sizeof(why)), 0, "%s", why);
  mkdir_as("theirs", 0755, NOBODY, p, sizeof(p));
  cr_expect_eq(sockpath_own_dir_check(p, 0, why, sizeof(why)), -1);
  cr_expect(strstr(why, "belongs to uid 65534, not to tund's (uid 0)"), "%s", why);
  mkdir_as("open", 0777, 0, p, sizeof(p));
  cr_expect_eq(sockpath_own_dir_check(p, 0, why, sizeof(why)), -1);
  cr_expect(strstr(why, "writable by others (mode 0777)"), "%s", why);
  snprintf(p, sizeof(p), "%s/none/tund.sock", tmp);
  cr_expect_eq(sockpath_own_dir_check(p, 0, why, sizeof(why)), -1);
  cr_expect_eq(errno, ENOENT);
}

/* ---- who serves ----------------------------------------------------------------------------- */

Test(sockpath, peer_check, .init = mktmp, .fini = rmtmp)
{
  char p[128], why[400];
  uid_t who = 1;
  struct sockpath_trust t = { .uids = { NOBODY }, .n = 1 };
  int sv[2];
  cr_assert_eq(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
  cr_expect_eq(sockpath_peer_check(sv[0], "pair", 0, NULL, &who, why, sizeof(why)), 0, "root serves root");
  cr_expect_eq(who, 0u);
  cr_expect_eq(sockpath_peer_check(sv[0], "pair", 1000, NULL, &who, why, sizeof(why)), 0, "root serves anyone");
  close(sv[0]);
  close(sv[1]);

  /* a server run by uid 65534 */
  mkdir_as("srv", 0755, NOBODY, p, sizeof(p));
  int ready[2];
  cr_assert_eq(pipe(ready), 0);
  pid_t pid = fork();
  cr_assert_geq(pid, 0);
  if (pid == 0) {
    if (setresgid(NOBODY, NOBODY, NOBODY) || setresuid(NOBODY, NOBODY, NOBODY))
      _exit(1);
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%.100s", p);
    int s = socket(AF_UNIX, SOCK_SEQPACKET, 0);
    if (s < 0 || bind(s, (struct sockaddr *)&sa, sizeof(sa)) || listen(s, 4))
      _exit(2);
    if (write(ready[1], "r", 1) != 1)
      _exit(3);
    int c = accept(s, NULL, NULL);
    char b[8];
    _exit(c >= 0 && read(c, b, sizeof(b)) == 0 ? 0 : 4);   /* nothing may arrive */
  }
  char b;
  cr_assert_eq(read(ready[0], &b, 1), 1);
  int fd = socket(AF_UNIX, SOCK_SEQPACKET, 0);
  struct sockaddr_un sa = { .sun_family = AF_UNIX };
  snprintf(sa.sun_path, sizeof(sa.sun_path), "%.100s", p);
  cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
  cr_expect_eq(sockpath_peer_check(fd, p, 0, NULL, &who, why, sizeof(why)), -1, "root refuses uid 65534");
  cr_expect_eq(who, (uid_t)NOBODY);
  cr_expect(strstr(why, "served by uid 65534, not you (uid 0) or root"), "%s", why);
  cr_expect_eq(sockpath_peer_check(fd, p, 0, &t, &who, why, sizeof(why)), 0, "unless trusted");
  cr_expect_eq(sockpath_peer_check(fd, p, NOBODY, NULL, &who, why, sizeof(why)), 0, "its own user's");
  close(fd);
  int st;
  cr_assert_eq(waitpid(pid, &st, 0), pid);
  cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0, "server: %d", st);
}
