/*
 * common/sockpath.c — tund's control socket: the default paths, the trust
 * file, and the checks on who serves a socket (enoshim/sockpath.h).  Linked
 * into tund (and enoctl, the same program) and libenoshim.so, so that every
 * side computes the same path and believes the same servers.  No
 * allocation; the only I/O is stat, reading the trust file and SO_PEERCRED.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "enoshim/sockpath.h"

int sockpath_secure(void)
{
  return getauxval(AT_SECURE) != 0;
}

/* $NAME unless the process runs with privileges its user lacks */
static const char *env(const char *name)
{
  const char *v = sockpath_secure() ? NULL : getenv(name);
  return v && *v ? v : NULL;
}

int sockpath_server_default(char *out, size_t n, char *why, size_t whylen)
{
  const char *sock = env("ENOSHIM_SOCKET"), *xdg = env("XDG_RUNTIME_DIR");
  if (why && whylen)
    why[0] = 0;
  if (sock) {
    snprintf(out, n, "%s", sock);
  } else if (geteuid() == 0) {
    snprintf(out, n, "%s", SOCKPATH_HOST);
  } else if (sockpath_secure()) {
    /* what XDG_RUNTIME_DIR is where a login manager sets it, without
     * taking it from an environment tund must not trust */
    snprintf(out, n, "/run/user/%u%s", (unsigned)getuid(), SOCKPATH_USER_SUFFIX);
  } else if (xdg) {
    snprintf(out, n, "%s%s", xdg, SOCKPATH_USER_SUFFIX);
  } else {
    if (n)
      out[0] = 0;
    if (why && whylen)
      snprintf(why, whylen, "no socket path: XDG_RUNTIME_DIR is not set; give one with --socket=PATH "
               "(a tund run by root listens on %s)", SOCKPATH_HOST);
    return -1;
  }
  return 0;
}

void sockpath_client_default(char *out, size_t n)
{
  const char *sock = env("ENOSHIM_SOCKET"), *xdg = env("XDG_RUNTIME_DIR");
  struct stat st;
  if (sock) {
    snprintf(out, n, "%s", sock);
    return;
  }
  if (xdg) {
    snprintf(out, n, "%s%s", xdg, SOCKPATH_USER_SUFFIX);
    if (stat(out, &st) == 0)
      return;
  }
  snprintf(out, n, "%s", SOCKPATH_HOST);
}

void sockpath_dirname(const char *path, char *out, size_t n)
{
  const char *slash = strrchr(path, '/');
  if (!slash)
    snprintf(out, n, ".");
  else if (slash == path)
    snprintf(out, n, "/");
  else
    snprintf(out, n, "%.*s", (int)(slash - path), path);
}

/* ---- trust ------------------------------------------------------------------ */

static int bad(struct sockpath_trust *t, int line, const char *what)
{
  t->n = 0;
  snprintf(t->note, sizeof(t->note), "line %d: %s", line, what);
  return -1;
}

int sockpath_trust_parse(const char *text, size_t len, struct sockpath_trust *t)
{
  const char *p = text, *end = text + len;
  int line = 0;
  t->n = 0;
  t->note[0] = 0;
  while (p < end) {
    const char *eol = memchr(p, '\n', (size_t)(end - p));
    const char *le = eol ? eol : end;
    const char *hash = memchr(p, '#', (size_t)(le - p));
    const char *q = p, *e = hash ? hash : le;
    line++;
    p = eol ? eol + 1 : end;
    while (q < e && isspace((unsigned char)*q))
      q++;
    while (e > q && isspace((unsigned char)e[-1]))
      e--;
    if (q == e)
      continue;
    static const char key[] = "trusted_uids";
    size_t kl = sizeof(key) - 1;
    if ((size_t)(e - q) < kl || memcmp(q, key, kl))
      return bad(t, line, "expected trusted_uids = UID, ...");
    q += kl;
    while (q < e && isspace((unsigned char)*q))
      q++;
    if (q == e || *q != '=')
      return bad(t, line, "expected trusted_uids = UID, ...");
    q++;
    for (;;) {
      while (q < e && (isspace((unsigned char)*q) || *q == ','))
        q++;
      if (q == e)
        break;
      unsigned long long v = 0;
      const char *d = q;
      while (q < e && *q >= '0' && *q <= '9') {
        v = v * 10 + (unsigned)(*q - '0');
        if (v > 0xfffffffeull)
          return bad(t, line, "a uid is out of range");
        q++;
      }
      if (q == d || (q < e && !isspace((unsigned char)*q) && *q != ','))
        return bad(t, line, "a uid is not a number");
      if (t->n >= SOCKPATH_TRUST_MAX)
        return bad(t, line, "more than 32 uids");
      t->uids[t->n++] = (uid_t)v;
    }
  }
  return 0;
}

void sockpath_trust_load(const char *path, struct sockpath_trust *t)
{
  char buf[4096];
  struct stat st;
  t->n = 0;
  t->note[0] = 0;
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) {
    if (errno != ENOENT)
      snprintf(t->note, sizeof(t->note), "%s ignored: %s", path, strerror(errno));
    return;
  }
  if (fstat(fd, &st) || !S_ISREG(st.st_mode) || st.st_uid != 0 || (st.st_mode & (S_IWGRP | S_IWOTH))) {
    snprintf(t->note, sizeof(t->note), "%s ignored: it must be a file of root's that nobody else can write",
             path);
    close(fd);
    return;
  }
  size_t len = 0;
  for (;;) {
    ssize_t r = read(fd, buf + len, sizeof(buf) - len);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      break;
    len += (size_t)r;
    if (len == sizeof(buf))
      break;
  }
  close(fd);
  if (len == sizeof(buf)) {
    snprintf(t->note, sizeof(t->note), "%s ignored: longer than %zu bytes", path, sizeof(buf) - 1);
    return;
  }
  if (sockpath_trust_parse(buf, len, t)) {
    char why[sizeof(t->note)];
    memcpy(why, t->note, sizeof(why));
    int k = snprintf(t->note, sizeof(t->note), "%s ignored: ", path);
    if (k > 0 && (size_t)k < sizeof(t->note)) {
      size_t room = sizeof(t->note) - (size_t)k - 1, wl = strnlen(why, room);
      memcpy(t->note + k, why, wl);
      t->note[(size_t)k + wl] = 0;
    }
  }
}

int sockpath_trusted(uid_t uid, uid_t self, const struct sockpath_trust *t)
{
  if (uid == self || uid == 0)
    return 1;
  for (int i = 0; t && i < t->n; i++)
    if (t->uids[i] == uid)
      return 1;
  return 0;
}

/* ", not you (uid M) or root" + how to trust it */
static void not_trusted(char *out, size_t n, uid_t uid, uid_t self, const struct sockpath_trust *t)
{
  snprintf(out, n, "uid %u, not you (uid %u) or root; an administrator can trust uid %u in %s%s%s",
           (unsigned)uid, (unsigned)self, (unsigned)uid, SOCKPATH_TRUST_CONF, t && t->note[0] ? " — " : "",
           t && t->note[0] ? t->note : "");
}

int sockpath_dir_check(const char *path, uid_t self, const struct sockpath_trust *t,
                       uid_t *uid_out, char *why, size_t whylen)
{
  char dir[SOCKPATH_MAX + 8], who[400];
  struct stat st;
  sockpath_dirname(path, dir, sizeof(dir));
  if (why && whylen)
    why[0] = 0;
  if (stat(dir, &st)) {
    if (errno == ENOENT || errno == ENOTDIR)
      return SOCKPATH_NODIR;
    int e = errno;
    if (why && whylen)
      snprintf(why, whylen, "cannot look at %s: %s", dir, strerror(e));
    errno = e;
    return SOCKPATH_ERROR;
  }
  if (uid_out)
    *uid_out = st.st_uid;
  if (!S_ISDIR(st.st_mode)) {
    if (why && whylen)
      snprintf(why, whylen, "refusing tund at %s: %s is not a directory", path, dir);
    return SOCKPATH_NOT_DIR;
  }
  if (!sockpath_trusted(st.st_uid, self, t)) {
    not_trusted(who, sizeof(who), st.st_uid, self, t);
    if (why && whylen)
      snprintf(why, whylen, "refusing tund at %s: its directory %s belongs to %s", path, dir, who);
    return SOCKPATH_BAD_OWNER;
  }
  if (st.st_mode & (S_IWGRP | S_IWOTH)) {
    if (why && whylen)
      snprintf(why, whylen, "refusing tund at %s: its directory %s is writable by others (mode %04o)", path,
               dir, (unsigned)(st.st_mode & 07777));
    return SOCKPATH_BAD_MODE;
  }
  return SOCKPATH_OK;
}

int sockpath_peer_check(int fd, const char *path, uid_t self, const struct sockpath_trust *t,
                        uid_t *uid_out, char *why, size_t whylen)
{
  struct ucred cr;
  socklen_t l = sizeof(cr);
  char who[400];
  if (why && whylen)
    why[0] = 0;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &l) || l != sizeof(cr)) {
    if (why && whylen)
      snprintf(why, whylen, "refusing tund at %s: cannot tell who serves it (SO_PEERCRED: %s)", path,
               strerror(errno));
    return -1;
  }
  if (uid_out)
    *uid_out = cr.uid;
  if (!sockpath_trusted(cr.uid, self, t)) {
    not_trusted(who, sizeof(who), cr.uid, self, t);
    if (why && whylen)
      snprintf(why, whylen, "refusing tund at %s: served by %s", path, who);
    return -1;
  }
  return 0;
}

int sockpath_own_dir_check(const char *path, uid_t owner, char *why, size_t whylen)
{
  char dir[SOCKPATH_MAX + 8];
  struct stat st;
  sockpath_dirname(path, dir, sizeof(dir));
  if (why && whylen)
    why[0] = 0;
  if (stat(dir, &st)) {
    int e = errno;
    if (e != ENOENT && why && whylen)
      snprintf(why, whylen, "cannot look at socket directory %s: %s", dir, strerror(e));
    errno = e;
    return -1;
  }
  if (!S_ISDIR(st.st_mode)) {
    if (why && whylen)
      snprintf(why, whylen, "socket directory %s is not a directory", dir);
    errno = ENOTDIR;
    return -1;
  }
  if (st.st_uid != owner) {
    if (why && whylen)
      snprintf(why, whylen, "refusing socket directory %s: it belongs to uid %u, not to tund's (uid %u); "
               "use a directory of tund's user that nobody else can write", dir, (unsigned)st.st_uid,
               (unsigned)owner);
    errno = EPERM;
    return -1;
  }
  if (st.st_mode & (S_IWGRP | S_IWOTH)) {
    if (why && whylen)
      snprintf(why, whylen, "refusing socket directory %s: it is writable by others (mode %04o); "
               "use a directory of tund's user that nobody else can write", dir, (unsigned)(st.st_mode & 07777));
    errno = EPERM;
    return -1;
  }
  return 0;
}
