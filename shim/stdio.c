/*
 * shim/stdio.c — stdio streams on the shim's sockets.
 *
 * glibc's FILE reads and writes with its own internal read()/write(), which
 * LD_PRELOAD cannot interpose: a FILE on a socket of ours would put its
 * bytes into the socketpair (where tund takes them for filler: tund/progend.c
 * conn_bypass_check() resets the connection when that happens) and read
 * tund's token bytes as data.  So a FILE on one of our sockets is made with
 * fopencookie(), whose read, write and close go through the shim:
 *   - fdopen() on one of our sockets returns such a stream;
 *   - at start-up (after the sockets inherited across exec are attached),
 *     stdin, stdout and stderr are replaced by such streams when fds 0, 1, 2
 *     are ours — inetd-style servers (git daemon's upload-pack, socat EXEC,
 *     sshd -i, CGI-like children) get their connection there;
 *   - dup2()/dup3() of one of our sockets onto 0, 1 or 2 does the same for
 *     that stream (shim.c).
 * The streams keep their fd (fileno() answers it; the cookie functions call
 * the interposed read/write/close on that number, which go to libc if the
 * fd is no longer ours) and the buffering the old stream had (glibc's for a
 * socket: stdin and stdout fully buffered, stderr unbuffered).  They are on
 * glibc's list of streams like any other, so exit() flushes them (after
 * atexit handlers, the shim has no destructor that could be in the way).
 *
 * perror() is interposed too: glibc's writes through a FILE it makes itself
 * with its internal fdopen() on a dup of fileno(stderr).  fopen() of
 * /dev/fd/N or /proc/self/fd/N is not needed: Linux refuses to open a
 * socket that way (ENXIO), kernel TCP sockets included.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "shim.h"

/* glibc's FILE flags (libio.h; part of the ABI) */
#define IO_UNBUFFERED 0x0002
#define IO_LINE_BUF   0x0200

static int is_our_stream_fd(int fd)
{
  if (!fdt_maybe(fd))
    return 0;
  struct shim_sock *s = fdt_get(fd);
  if (!s)
    return 0;
  int ok = s->kind == SK_STREAM;
  fdt_put(s);
  return ok;
}

/* ---- the cookie functions: the interposed calls on the stream's fd ----------- */

static ssize_t ck_read(void *c, char *buf, size_t n)
{
  return read((int)(intptr_t)c, buf, n);
}

/* All of it, as glibc's own file write does (it loops on short writes and
 * stops at the first error, with what was written). */
static ssize_t ck_write(void *c, const char *buf, size_t n)
{
  size_t done = 0;
  while (done < n) {
    ssize_t w = write((int)(intptr_t)c, buf + done, n - done);
    if (w <= 0)
      break;
    done += (size_t)w;
  }
  return (ssize_t)done;
}

static int ck_seek(void *c, off64_t *pos, int whence)
{
  (void)c;
  (void)pos;
  (void)whence;
  errno = ESPIPE;             /* a socket, as lseek() says */
  return -1;
}

static int ck_close(void *c)
{
  return close((int)(intptr_t)c);
}

static FILE *stream_make(int fd, const char *mode)
{
  cookie_io_functions_t io = { .read = ck_read, .write = ck_write, .seek = ck_seek, .close = ck_close };
  FILE *f = fopencookie((void *)(intptr_t)fd, mode, io);
  if (f)
    f->_fileno = fd;          /* fileno() and isatty(fileno(f)) as for any FILE on an fd */
  return f;
}

/* ---- fdopen, perror ------------------------------------------------------------ */

SHIM_API FILE *fdopen(int fd, const char *mode)
{
  static FILE *(*real_fdopen)(int, const char *);
  if (!real_fdopen)
    real_fdopen = (FILE * (*)(int, const char *)) dlsym(RTLD_NEXT, "fdopen");
  if (!is_our_stream_fd(fd))
    return real_fdopen ? real_fdopen(fd, mode) : (errno = ENOSYS, (FILE *)NULL);
  if (!mode || !strchr("rwa", mode[0])) {
    errno = EINVAL;
    return NULL;
  }
  if (strchr(mode, 'e') && real.fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
    return NULL;
  /* fopencookie() takes the access part of the mode; 'a' means nothing on a socket */
  char m[3] = { mode[0] == 'a' ? 'w' : mode[0], strchr(mode, '+') ? '+' : 0, 0 };
  return stream_make(fd, m);
}

SHIM_API void perror(const char *s)
{
  int e = errno;
  static void (*real_perror)(const char *);
  if (!real_perror)
    real_perror = (void (*)(const char *))dlsym(RTLD_NEXT, "perror");
  int fd = stderr ? fileno(stderr) : -1;
  if (fd < 0 || !is_our_stream_fd(fd)) {
    errno = e;
    if (real_perror)
      real_perror(s);
    return;
  }
  /* glibc's output, through stderr itself */
  if (s && *s)
    fprintf(stderr, "%s: %s\n", s, strerror(e));
  else
    fprintf(stderr, "%s\n", strerror(e));
  errno = e;
}

/* ---- the standard streams ----------------------------------------------------- */

static FILE *std_ours[3];    /* the streams made here for fds 0, 1, 2 */

/* Replace *slot (stdin, stdout or stderr, on fd) by a stream of ours,
 * keeping its buffering; the old stream is flushed first and left unused. */
static void std_adopt(FILE **slot, int fd, const char *mode, int def_unbuffered)
{
  FILE *old = *slot;
  if (!old || old == std_ours[fd] || !is_our_stream_fd(fd))
    return;
  if (fd != 0)
    fflush(old);
  FILE *f = stream_make(fd, mode);
  if (!f)
    return;
  int fl = old->_flags;
  if ((fl & IO_UNBUFFERED) || (def_unbuffered && !(fl & IO_LINE_BUF)))
    setvbuf(f, NULL, _IONBF, 0);
  else if (fl & IO_LINE_BUF)
    setvbuf(f, NULL, _IOLBF, BUFSIZ);
  std_ours[fd] = f;
  *slot = f;
  if (shim_debug)
    shim_log("%s is socket fd %d: stdio goes through the shim", fd == 0 ? "stdin" : fd == 1 ? "stdout" : "stderr",
             fd);
}

/* At start, after the inherited sockets are attached. */
void stdio_adopt_std(void)
{
  std_adopt(&stdin, 0, "r", 0);
  std_adopt(&stdout, 1, "w", 0);
  std_adopt(&stderr, 2, "w", 1);
}

/* fd (0, 1 or 2) became one of our sockets (dup2, dup3). */
void stdio_adopt_fd(int fd)
{
  if (fd == 0)
    std_adopt(&stdin, 0, "r", 0);
  else if (fd == 1)
    std_adopt(&stdout, 1, "w", 0);
  else if (fd == 2)
    std_adopt(&stderr, 2, "w", 1);
}
