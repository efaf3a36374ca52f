/*
 * tund/log.c — one line per event on stderr:
 *   "2026-12-07 13:05:02.123 tund[pid]: level: text"
 * (local time with milliseconds).  While the command line is read
 * (tund_log_plain) lines are "tund: text", like any command's usage errors.
 * Secrets never pass through here (keys go to the keylog only, when asked).
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tund.h"

int tund_log_level = LOG_INFO_;
int tund_log_plain;

static const char *const level_name[] = { "error", "warning", "info", "debug" };

static void vlog(int level, const char *fmt, va_list ap)
{
  char buf[1024];
  int n;
  if (tund_log_plain) {
    n = snprintf(buf, sizeof(buf), "tund: %s", level == LOG_ERR_ ? "" : level == LOG_WARN_ ? "warning: " : "");
  } else {
    struct timespec ts;
    struct tm tm;
    char when[32];
    clock_gettime(CLOCK_REALTIME, &ts);
    if (!localtime_r(&ts.tv_sec, &tm) || !strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm))
      snprintf(when, sizeof(when), "%lld", (long long)ts.tv_sec);
    n = snprintf(buf, sizeof(buf), "%s.%03ld tund[%d]: %s: ", when, ts.tv_nsec / 1000000, (int)getpid(),
                 level_name[level & 3]);
  }
  if (n < 0)
    return;
  int m = vsnprintf(buf + n, sizeof(buf) - (size_t)n - 1, fmt, ap);
  if (m < 0)
    return;
  size_t len = (size_t)n + (size_t)m;
  if (len > sizeof(buf) - 2)
    len = sizeof(buf) - 2;
  /* one line: replace control characters a peer could have smuggled in */
  for (size_t i = (size_t)n; i < len; i++)
    if ((unsigned char)buf[i] < 0x20)
      buf[i] = '?';
  buf[len++] = '\n';
  ssize_t w = write(STDERR_FILENO, buf, len);
  (void)w;
}

void tund_log(int level, const char *fmt, ...)
{
  if (level > tund_log_level)
    return;
  va_list ap;
  va_start(ap, fmt);
  vlog(level, fmt, ap);
  va_end(ap);
}

/* At most 10 such lines per second; the rest are counted and summarised. */
void tund_log_limited(int level, const char *fmt, ...)
{
  static time_t window;
  static unsigned in_window, suppressed;
  time_t now = time(NULL);
  if (level > tund_log_level)
    return;
  if (now != window) {
    if (suppressed)
      tund_log(LOG_WARN_, "%u similar messages suppressed", suppressed);
    window = now;
    in_window = 0;
    suppressed = 0;
  }
  if (++in_window > 10) {
    suppressed++;
    return;
  }
  va_list ap;
  va_start(ap, fmt);
  vlog(level, fmt, ap);
  va_end(ap);
}
