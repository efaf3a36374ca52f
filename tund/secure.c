/*
 * tund/secure.c — a tund that runs with privileges its user does not have.
 *
 * After `setcap cap_net_admin+ep tund` any user who runs tund holds
 * CAP_NET_ADMIN until the drop (priv.c), long enough to make a TUN and set
 * addresses and routes of the user's choosing (0.0.0.0/1 + 128.0.0.0/1
 * would pull the host's traffic into it).  The kernel marks such a start
 * AT_SECURE (as it does setuid and setgid programs).  Then tund takes its
 * settings only from the administrator's file TUND_SECURE_CONF
 * (/etc/enoshim/tund.conf: a regular file of root's that nobody else can
 * write, in root's directories), refuses every setting on the command line
 * (only -v, --ready-fd, --help, --version remain) and the environment
 * variables it would otherwise read (ENOSHIM_CONFIG, ENOSHIM_SOCKET), each
 * with one line saying why, and expands no $VAR in the file (config.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tund.h"
#include "enoshim/sockpath.h"

static int refuse(const char *what)
{
  fprintf(stderr, "tund: %s: refused: tund runs with privileges its user does not have (file capabilities), "
          "so it takes its settings only from %s (root's, writable by root only)\n", what, TUND_SECURE_CONF);
  return 2;
}

/* path and each directory above it belong to root and nobody else can
 * write them; 0, or -1 with why */
static int root_only(const char *path, char *why, size_t whylen)
{
  char p[256];
  struct stat st;
  snprintf(p, sizeof(p), "%s", path);
  for (;;) {
    if (lstat(p, &st)) {
      snprintf(why, whylen, "%s: %s", p, strerror(errno));
      return -1;
    }
    if (st.st_uid != 0 || (st.st_mode & (S_IWGRP | S_IWOTH)) || S_ISLNK(st.st_mode) ||
        (p[1] && !S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode))) {
      snprintf(why, whylen, "%s must belong to root and be writable by root only (it is uid %u, mode %04o%s)", p,
               (unsigned)st.st_uid, (unsigned)(st.st_mode & 07777), S_ISLNK(st.st_mode) ? ", a symbolic link" : "");
      return -1;
    }
    char *slash = strrchr(p, '/');
    if (!slash || slash == p) {
      if (!slash || !p[1])
        return 0;
      p[1] = 0;                 /* then "/" itself */
    } else {
      *slash = 0;
    }
  }
}

int secure_settings(struct tund_config *c, int argc, char **argv)
{
  char why[400];
  if (!sockpath_secure())
    return -1;
  /* --help and --version answer as always (main.c) */
  for (int i = 1; i < argc && strcmp(argv[i], "--"); i++)
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "--version") ||
        (argv[i][0] == '-' && argv[i][1] != '-' && strpbrk(argv[i] + 1, "hV")))
      return -1;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--"))
      break;
    if (a[0] == '-' && a[1] == '-') {
      char name[64];
      const char *eq = strchr(a + 2, '=');
      size_t nl = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
      snprintf(name, sizeof(name), "%.*s", (int)(nl < sizeof(name) ? nl : sizeof(name) - 1), a + 2);
      for (char *p = name; *p; p++)
        if (*p == '_')
          *p = '-';
      if (!strcmp(name, "verbose"))
        continue;
      if (!strcmp(name, "ready-fd")) {
        if (!eq)
          i++;                   /* its value */
        continue;
      }
      snprintf(why, sizeof(why), "--%s", name);
      return refuse(why);
    }
    /* -v and operands: main.c's parser says what is wrong with them */
  }
  if (getenv("ENOSHIM_CONFIG"))
    return refuse("ENOSHIM_CONFIG");
  if (getenv("ENOSHIM_SOCKET"))
    return refuse("ENOSHIM_SOCKET");
  if (root_only(TUND_SECURE_CONF, why, sizeof(why))) {
    fprintf(stderr, "tund: runs with privileges its user does not have (file capabilities) and needs the "
            "administrator's settings: %s\n", why);
    return 2;
  }
  if (config_load_file(c, TUND_SECURE_CONF))
    return 2;
  reload_note_file(TUND_SECURE_CONF, 1);   /* SIGHUP reads it again (reload.c) */
  log_info("file capabilities: settings from %s only", TUND_SECURE_CONF);
  return -1;
}
