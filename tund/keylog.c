/*
 * tund/keylog.c — the opt-in key log (like SSLKEYLOGFILE): off unless the
 * user names a path; created 0600, appended to, never truncated; lines only
 * hold what a decoder needs (see scripts/enodump).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tund.h"

static int keylog_fd = -1;
static char keylog_at[256];          /* the path keylog_fd was opened at */

static int keylog_open_fd(const char *path)
{
  int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    log_err("cannot open keylog %s: %s", path, strerror(errno));
    return -1;
  }
  struct stat st;
  if (fstat(fd, &st) || !S_ISREG(st.st_mode) || (st.st_mode & 077)) {
    log_err("keylog %s must be a regular file readable only by its owner (mode 0600)", path);
    close(fd);
    return -1;
  }
  return fd;
}

int keylog_open(const char *path)
{
  if (!path || !*path)
    return 0;
  int fd = keylog_open_fd(path);
  if (fd < 0)
    return -1;
  keylog_fd = fd;
  snprintf(keylog_at, sizeof(keylog_at), "%s", path);
  log_warn("keylog enabled: session secrets are written to %s", path);
  return 0;
}

/* SIGHUP (reload.c): open path again (the old file may have been moved
 * away), or another path, or none ("").  The old file stays if the new one
 * cannot be opened: 0, or -1. */
int keylog_reopen(const char *path)
{
  if (!path || !*path) {
    if (keylog_fd >= 0) {
      close(keylog_fd);
      keylog_fd = -1;
      log_info("keylog closed (%s)", keylog_at);
      keylog_at[0] = 0;
    }
    return 0;
  }
  int fd = keylog_open_fd(path);
  if (fd < 0)
    return -1;
  if (keylog_fd >= 0)
    close(keylog_fd);
  keylog_fd = fd;
  if (strcmp(keylog_at, path))
    log_warn("keylog enabled: session secrets are written to %s", path);
  else
    log_info("keylog reopened: %s", path);
  snprintf(keylog_at, sizeof(keylog_at), "%s", path);
  return 0;
}

void keylog_write(const char *line)
{
  if (keylog_fd < 0)
    return;
  size_t n = strlen(line);
  ssize_t w = write(keylog_fd, line, n);
  (void)w;
}
