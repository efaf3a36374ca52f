/*
 * tund/keylog.c — the opt-in key log (like SSLKEYLOGFILE): off unless the
 * user names a path; created 0600, appended to, never truncated; lines only
 * hold what a decoder needs (see scripts/enodump).
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tund.h"

static int keylog_fd = -1;

int keylog_open(const char *path)
{
  if (!path || !*path)
    return 0;
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
  keylog_fd = fd;
  log_warn("keylog enabled: session secrets are written to %s", path);
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
