/*
 * shim/shim.c — the interposed libc calls.  Each checks whether the fd is one
 * of the shim's sockets (one atomic load when it is not) and otherwise goes
 * straight to libc with errno untouched.
 *
 * Not covered, and said so in README.md: statically linked programs and Go
 * binaries (they do not call libc), and stdio streams opened on a socket with
 * fdopen() (glibc's stdio reads with internal calls that cannot be
 * interposed).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/sendfile.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/close_range.h>
#include <limits.h>
#include <netinet/in.h>

#include "tcpinc.h"
#include "shim.h"

int shim_debug;
int shim_fallback_plain;

void shim_log(const char *fmt, ...)
{
  char buf[512];
  int saved = errno;
  int n = snprintf(buf, sizeof(buf), "enoshim[%d]: ", (int)getpid());
  va_list ap;
  va_start(ap, fmt);
  int m = vsnprintf(buf + n, sizeof(buf) - (size_t)n - 1, fmt, ap);
  va_end(ap);
  if (m < 0)
    m = 0;
  size_t len = (size_t)n + (size_t)m;
  if (len > sizeof(buf) - 2)
    len = sizeof(buf) - 2;
  buf[len++] = '\n';
  ssize_t w = real.write ? real.write(2, buf, len) : (ssize_t)syscall(SYS_write, 2, buf, len);
  (void)w;
  errno = saved;
}

__attribute__((constructor(102))) void shim_init(void)
{
  shim_resolve();
  const char *d = getenv("ENOSHIM_DEBUG");
  shim_debug = d && *d && strcmp(d, "0");
  const char *f = getenv("ENOSHIM_FALLBACK");
  shim_fallback_plain = f && !strcmp(f, "plain");
  sock_attach_inherited();
  stdio_adopt_std();          /* inetd-style: the connection on stdin/stdout (stdio.c) */
}

static inline void ensure(void)
{
  if (__builtin_expect(!real.read, 0))
    shim_resolve();
}

static void put_keep_errno(struct shim_sock *s)
{
  int e = errno;
  fdt_put(s);
  errno = e;
}

/* ---- sockets ---------------------------------------------------------------- */

SHIM_API int socket(int domain, int type, int protocol)
{
  ensure();
  int base = type & ~(SOCK_NONBLOCK | SOCK_CLOEXEC);
  if ((domain == AF_INET || domain == AF_INET6) && base == SOCK_STREAM &&
      (protocol == 0 || protocol == IPPROTO_TCP))
    return sock_socket(domain, type, protocol);
  return real.socket(domain, type, protocol);
}

/* A connection whose outcome line is still to be said (outcome.c: a
 * non-blocking connect, with ENOSHIM_DEBUG or TCP_ENO_TEP_MANDATORY) says
 * it at the program's next call on it.  Otherwise one load of a field. */
static inline void outcome_due(int fd, struct shim_sock *s)
{
  if (__builtin_expect(atomic_load_explicit(&s->outcome_pending, memory_order_relaxed) == OUTCOME_PENDING, 0))
    outcome_check(fd, s);
}

#define WITH_SOCK(fd, call_ours, call_real)       \
  do {                                            \
    ensure();                                     \
    struct shim_sock *s_;                         \
    if (!fdt_maybe(fd) || !(s_ = fdt_get(fd)))    \
      return call_real;                           \
    struct shim_sock *s = s_;                     \
    outcome_due(fd, s);                           \
    __typeof__(call_real) r_ = call_ours;         \
    put_keep_errno(s);                            \
    return r_;                                    \
  } while (0)

SHIM_API int bind(int fd, const struct sockaddr *a, socklen_t l)
{
  WITH_SOCK(fd, sock_bind(fd, s, a, l), real.bind(fd, a, l));
}

SHIM_API int listen(int fd, int backlog)
{
  WITH_SOCK(fd, sock_listen(fd, s, backlog), real.listen(fd, backlog));
}

static int accept_ours(int fd, struct shim_sock *s, struct sockaddr *a, socklen_t *l, int flags)
{
  int r = sock_accept(fd, s, a, l, flags);
  if (__builtin_expect(shim_debug, 0) && r >= 0) {
    int e = errno;
    outcome_accept(r);
    errno = e;
  }
  return r;
}

SHIM_API int accept(int fd, struct sockaddr *a, socklen_t *l)
{
  WITH_SOCK(fd, accept_ours(fd, s, a, l, 0), real.accept(fd, a, l));
}

SHIM_API int accept4(int fd, struct sockaddr *a, socklen_t *l, int flags)
{
  WITH_SOCK(fd, accept_ours(fd, s, a, l, flags), real.accept4(fd, a, l, flags));
}

static int connect_ours_ex(int fd, struct shim_sock *s, const struct sockaddr *a, socklen_t l, int dontwait)
{
  int r = sock_connect_ex(fd, s, a, l, dontwait);
  if (__builtin_expect(shim_debug || s->tep_mandatory, 0)) {
    int e = errno;
    outcome_connect(fd, s, a, l, r, r < 0 ? e : 0);
    errno = e;
  }
  return r;
}

static int connect_ours(int fd, struct shim_sock *s, const struct sockaddr *a, socklen_t l)
{
  return connect_ours_ex(fd, s, a, l, 0);
}

SHIM_API int connect(int fd, const struct sockaddr *a, socklen_t l)
{
  WITH_SOCK(fd, connect_ours(fd, s, a, l), real.connect(fd, a, l));
}

/* Watched for one thing: an edge-triggered registration of a socket whose
 * blocking connect() may have left its wake-up byte queued (sock_settle). */
SHIM_API int epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev)
{
  ensure();
  if ((op == EPOLL_CTL_ADD || op == EPOLL_CTL_MOD) && ev && (ev->events & EPOLLET) && fdt_maybe(fd)) {
    struct shim_sock *s = fdt_get(fd);
    if (s) {
      if (s->wake_queued)
        sock_settle(fd, s);
      fdt_put(s);
    }
  }
  return real.epoll_ctl(epfd, op, fd, ev);
}

SHIM_API int shutdown(int fd, int how)
{
  WITH_SOCK(fd, sock_shutdown(fd, s, how), real.shutdown(fd, how));
}

SHIM_API int getsockname(int fd, struct sockaddr *a, socklen_t *l)
{
  WITH_SOCK(fd, sock_getname(s, 0, a, l), real.getsockname(fd, a, l));
}

SHIM_API int getpeername(int fd, struct sockaddr *a, socklen_t *l)
{
  WITH_SOCK(fd, sock_getname(s, 1, a, l), real.getpeername(fd, a, l));
}

static int is_tcpinc_opt(int level, int name)
{
  return level == IPPROTO_TCP && name >= TCPINC_OPT_BASE && name < TCPINC_OPT_BASE + 0x100;
}

static int getsockopt_other(int fd, int level, int name, void *v, socklen_t *l)
{
  if (is_tcpinc_opt(level, name)) {
    int r = shim_direct_eno_getopt(fd, name, v, l);
    if (r <= 0)
      return r;
  }
  return real.getsockopt(fd, level, name, v, l);
}

static int setsockopt_other(int fd, int level, int name, const void *v, socklen_t l)
{
  if (is_tcpinc_opt(level, name)) {
    int r = shim_direct_eno_setopt(fd, name, v, l);
    if (r <= 0)
      return r;
  }
  return real.setsockopt(fd, level, name, v, l);
}

SHIM_API int getsockopt(int fd, int level, int name, void *v, socklen_t *l)
{
  WITH_SOCK(fd, sock_getsockopt(fd, s, level, name, v, l), getsockopt_other(fd, level, name, v, l));
}

SHIM_API int setsockopt(int fd, int level, int name, const void *v, socklen_t l)
{
  WITH_SOCK(fd, sock_setsockopt(fd, s, level, name, v, l), setsockopt_other(fd, level, name, v, l));
}

/* ---- data ---------------------------------------------------------------------- */

SHIM_API ssize_t read(int fd, void *buf, size_t n)
{
  struct iovec iov = { buf, n };
  WITH_SOCK(fd, io_recv(fd, s, &iov, 1, 0), real.read(fd, buf, n));
}

SHIM_API ssize_t __read_chk(int fd, void *buf, size_t n, size_t buflen)
{
  if (n > buflen) {
    static const char msg[] = "*** buffer overflow detected ***: terminated\n";
    ssize_t w = syscall(SYS_write, 2, msg, sizeof(msg) - 1);
    (void)w;
    abort();
  }
  return read(fd, buf, n);
}

SHIM_API ssize_t write(int fd, const void *buf, size_t n)
{
  struct iovec iov = { (void *)buf, n };
  WITH_SOCK(fd, io_send(fd, s, &iov, 1, 0), real.write(fd, buf, n));
}

SHIM_API ssize_t readv(int fd, const struct iovec *iov, int cnt)
{
  if (cnt < 0 || cnt > IOV_MAX) {
    errno = EINVAL;
    return -1;
  }
  WITH_SOCK(fd, io_recv(fd, s, iov, cnt, 0), real.readv(fd, iov, cnt));
}

SHIM_API ssize_t writev(int fd, const struct iovec *iov, int cnt)
{
  if (cnt < 0 || cnt > IOV_MAX) {
    errno = EINVAL;
    return -1;
  }
  WITH_SOCK(fd, io_send(fd, s, iov, cnt, 0), real.writev(fd, iov, cnt));
}

SHIM_API ssize_t recv(int fd, void *buf, size_t n, int flags)
{
  struct iovec iov = { buf, n };
  WITH_SOCK(fd, io_recv(fd, s, &iov, 1, flags), real.recv(fd, buf, n, flags));
}

SHIM_API ssize_t __recv_chk(int fd, void *buf, size_t n, size_t buflen, int flags)
{
  if (n > buflen) {
    static const char msg[] = "*** buffer overflow detected ***: terminated\n";
    ssize_t w = syscall(SYS_write, 2, msg, sizeof(msg) - 1);
    (void)w;
    abort();
  }
  return recv(fd, buf, n, flags);
}

static ssize_t send_fastopen(int fd, struct shim_sock *s, const struct msghdr *m, int flags);

SHIM_API ssize_t send(int fd, const void *buf, size_t n, int flags)
{
  struct iovec iov = { (void *)buf, n };
  struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };
  WITH_SOCK(fd, (flags & MSG_FASTOPEN) ? send_fastopen(fd, s, &m, flags) : io_send(fd, s, &iov, 1, flags),
            real.send(fd, buf, n, flags));
}

static ssize_t recvfrom_ours(int fd, struct shim_sock *s, void *buf, size_t n, int flags,
                             socklen_t *alen)
{
  struct iovec iov = { buf, n };
  ssize_t r = io_recv(fd, s, &iov, 1, flags);
  if (r >= 0 && alen)
    *alen = 0;        /* a connected TCP socket reports no source address */
  return r;
}

SHIM_API ssize_t recvfrom(int fd, void *buf, size_t n, int flags, struct sockaddr *a, socklen_t *l)
{
  WITH_SOCK(fd, recvfrom_ours(fd, s, buf, n, flags, l), real.recvfrom(fd, buf, n, flags, a, l));
}

SHIM_API ssize_t __recvfrom_chk(int fd, void *buf, size_t n, size_t buflen, int flags,
                                struct sockaddr *a, socklen_t *l)
{
  if (n > buflen) {
    static const char msg[] = "*** buffer overflow detected ***: terminated\n";
    ssize_t w = syscall(SYS_write, 2, msg, sizeof(msg) - 1);
    (void)w;
    abort();
  }
  return recvfrom(fd, buf, n, flags, a, l);
}

/* MSG_FASTOPEN (curl --tcp-fastopen, and other clients): connect and send
 * in one call.  tund puts no data in a SYN (the ENO and tcpcrypt handshakes
 * come first), so this is what Linux does for a peer it has no Fast Open
 * cookie for (tcp_sendmsg_fastopen): connect; a non-blocking call
 * (O_NONBLOCK or MSG_DONTWAIT) says EINPROGRESS with nothing sent and the
 * next MSG_FASTOPEN send, once connected, sends; a blocking one waits for
 * the connection and sends.  Without an address: EINVAL; on a socket
 * connected otherwise: EISCONN.  A direct route is a kernel socket: the
 * kernel does it all. */
static ssize_t send_fastopen(int fd, struct shim_sock *s, const struct msghdr *m, int flags)
{
  const struct sockaddr *a = m->msg_name;
  socklen_t l = m->msg_namelen;
  if (s->connect_started && s->connect_unreaped) {
    /* Linux's socket is still SS_CONNECTING: EALREADY until the connection
     * is up, then it becomes SS_CONNECTED and this send sends */
    struct enoshm_status st;
    sock_status(s, &st);
    if (st.state == ENOSHM_S_CONNECTING) {
      errno = EALREADY;
      return -1;
    }
    s->connect_unreaped = 0;
    return io_send(fd, s, m->msg_iov, (int)m->msg_iovlen, flags & ~MSG_FASTOPEN);
  }
  if (!a || l < sizeof(sa_family_t)) {
    errno = s->connect_started ? EISCONN : EINVAL;
    return -1;
  }
  if (a->sa_family == AF_UNSPEC) {
    errno = EOPNOTSUPP;
    return -1;
  }
  if (!s->connect_started && s->kind == SK_STREAM && !s->tep_mandatory && shim_addr_is_direct(a, l)) {
    if (go_direct(fd, s))
      return -1;
    if (shim_debug)
      outcome_connect(fd, s, a, l, 0, 0);
    return real.sendmsg(fd, m, flags);
  }
  if (connect_ours_ex(fd, s, a, l, (flags & MSG_DONTWAIT) != 0) < 0)
    return -1;            /* EINPROGRESS left connect_unreaped set: see above */
  return io_send(fd, s, m->msg_iov, (int)m->msg_iovlen, flags & ~MSG_FASTOPEN);
}

SHIM_API ssize_t sendto(int fd, const void *buf, size_t n, int flags, const struct sockaddr *a, socklen_t l)
{
  struct iovec iov = { (void *)buf, n };
  struct msghdr m = { .msg_name = (void *)a, .msg_namelen = l, .msg_iov = &iov, .msg_iovlen = 1 };
  /* the destination of a connected TCP socket is ignored, as Linux does */
  WITH_SOCK(fd, (flags & MSG_FASTOPEN) ? send_fastopen(fd, s, &m, flags) : io_send(fd, s, &iov, 1, flags),
            real.sendto(fd, buf, n, flags, a, l));
}

static ssize_t recvmsg_ours(int fd, struct shim_sock *s, struct msghdr *m, int flags)
{
  if (!m || m->msg_iovlen > IOV_MAX) {
    errno = EINVAL;
    return -1;
  }
  ssize_t r = io_recv(fd, s, m->msg_iov, (int)m->msg_iovlen, flags);
  if (r >= 0) {
    m->msg_namelen = 0;
    m->msg_controllen = 0;
    m->msg_flags = 0;
  }
  return r;
}

static ssize_t recvmsg_real(int fd, struct msghdr *m, int flags)
{
  ssize_t r = real.recvmsg(fd, m, flags);
  /* (the shim's own control connection comes through here too: its fds are
   * ours to place, and attaching under its lock would deadlock) */
  if (r >= 0 && m && m->msg_controllen && !ctl_is_internal_fd(fd))
    sock_attach_received(m);
  return r;
}

SHIM_API ssize_t recvmsg(int fd, struct msghdr *m, int flags)
{
  WITH_SOCK(fd, recvmsg_ours(fd, s, m, flags), recvmsg_real(fd, m, flags));
}

static ssize_t sendmsg_ours(int fd, struct shim_sock *s, const struct msghdr *m, int flags)
{
  if (!m || m->msg_iovlen > IOV_MAX) {
    errno = EINVAL;
    return -1;
  }
  if (flags & MSG_FASTOPEN)
    return send_fastopen(fd, s, m, flags);
  return io_send(fd, s, m->msg_iov, (int)m->msg_iovlen, flags);
}

static ssize_t sendmsg_real(int fd, const struct msghdr *m, int flags)
{
  if (m && m->msg_controllen)
    sock_note_sent(m);
  return real.sendmsg(fd, m, flags);
}

SHIM_API ssize_t sendmsg(int fd, const struct msghdr *m, int flags)
{
  WITH_SOCK(fd, sendmsg_ours(fd, s, m, flags), sendmsg_real(fd, m, flags));
}

SHIM_API ssize_t sendfile(int out, int in, off_t *off, size_t count)
{
  WITH_SOCK(out, io_sendfile(out, s, in, off, count), real.sendfile(out, in, off, count));
}

SHIM_API ssize_t sendfile64(int out, int in, off_t *off, size_t count)
{
  WITH_SOCK(out, io_sendfile(out, s, in, off, count), real.sendfile64(out, in, off, count));
}

/* splice between a pipe and our socket (splice.c); the kernel's for anything else.
 * Socket to socket is EINVAL there too (one end must be a pipe). */
SHIM_API ssize_t splice(int in, loff_t *off_in, int out, loff_t *off_out, size_t len, unsigned int flags)
{
  struct shim_sock *si;
  ensure();
  if (fdt_maybe(in) && (si = fdt_get(in))) {
    outcome_due(in, si);
    ssize_t r = off_in ? (errno = EINVAL, -1) : io_splice_out(in, si, out, off_out, len, flags);
    put_keep_errno(si);
    return r;
  }
  WITH_SOCK(out, off_out ? (errno = EINVAL, -1) : io_splice_in(out, s, in, off_in, len, flags), real.splice(in, off_in, out, off_out, len, flags));
}

SHIM_API int recvmmsg(int fd, struct mmsghdr *v, unsigned int n, int flags, struct timespec *t)
{
  WITH_SOCK(fd, io_recvmmsg(fd, s, v, n, flags), real.recvmmsg(fd, v, n, flags, t));
}

SHIM_API int sendmmsg(int fd, struct mmsghdr *v, unsigned int n, int flags)
{
  WITH_SOCK(fd, io_sendmmsg(fd, s, v, n, flags), real.sendmmsg(fd, v, n, flags));
}

/* ---- fd lifetime ------------------------------------------------------------------ */

SHIM_API int close(int fd)
{
  ensure();
  if (ctl_is_internal_fd(fd))
    return 0;     /* the shim's own fd: a program closing "everything" leaves it */
  struct shim_sock *s = fdt_maybe(fd) ? fdt_take(fd) : NULL;
  int r = real.close(fd);
  if (s) {
    int e = errno;
    outcome_due(fd, s);
    if (s->kind == SK_LISTENER || (s->bound && !s->connect_started)) {
      /* let tund free the port now if this was the last copy */
      int err;
      ctl_call(ENOIPC_CLOSED, s->id, NULL, 0, NULL, 0, NULL, 0, &err, NULL, NULL, NULL, NULL, NULL);
    }
    fdt_put(s);
    errno = e;
  }
  return r;
}

static void copy_entry(int from, int to)
{
  struct shim_sock *s = fdt_get(from);
  if (s) {
    fdt_set(to, s);
    fdt_put(s);
  }
}

SHIM_API int dup(int fd)
{
  ensure();
  int r = real.dup(fd);
  if (r >= 0 && fdt_maybe(fd)) {
    int e = errno;
    copy_entry(fd, r);
    errno = e;
  }
  return r;
}

static int dup23(int oldfd, int newfd, int flags, int three)
{
  ensure();
  if (oldfd == newfd)
    return three ? (errno = EINVAL, -1) : real.dup2(oldfd, newfd);
  ctl_protect_fd(newfd);
  struct shim_sock *gone = fdt_maybe(newfd) ? fdt_take(newfd) : NULL;
  int r = three ? real.dup3(oldfd, newfd, flags) : real.dup2(oldfd, newfd);
  int e = errno;
  if (r < 0) {
    if (gone) {
      fdt_set(newfd, gone);
      fdt_put(gone);
    }
  } else {
    if (gone)
      fdt_put(gone);
    if (fdt_maybe(oldfd)) {
      copy_entry(oldfd, newfd);
      if (newfd <= 2)
        stdio_adopt_fd(newfd);   /* stdio on the connection goes through the shim (stdio.c) */
    }
  }
  errno = e;
  return r;
}

SHIM_API int dup2(int oldfd, int newfd) { return dup23(oldfd, newfd, 0, 0); }
SHIM_API int dup3(int oldfd, int newfd, int flags) { return dup23(oldfd, newfd, flags, 1); }

static int fcntl_common(int (*fn)(int, int, ...), int fd, int cmd, void *arg)
{
  ensure();
  int r = fn(fd, cmd, arg);
  if (r >= 0 && (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC) && fdt_maybe(fd)) {
    int e = errno;
    copy_entry(fd, r);
    errno = e;
  }
  return r;
}

SHIM_API int fcntl(int fd, int cmd, ...)
{
  va_list ap;
  va_start(ap, cmd);
  void *arg = va_arg(ap, void *);
  va_end(ap);
  ensure();
  return fcntl_common(real.fcntl, fd, cmd, arg);
}

SHIM_API int fcntl64(int fd, int cmd, ...)
{
  va_list ap;
  va_start(ap, cmd);
  void *arg = va_arg(ap, void *);
  va_end(ap);
  ensure();
  return fcntl_common(real.fcntl64 ? real.fcntl64 : real.fcntl, fd, cmd, arg);
}

SHIM_API int ioctl(int fd, unsigned long req, ...)
{
  va_list ap;
  va_start(ap, req);
  void *arg = va_arg(ap, void *);
  va_end(ap);
  WITH_SOCK(fd, sock_ioctl(fd, s, req, arg), real.ioctl(fd, req, arg));
}

static int real_close_range(unsigned lo, unsigned hi, int flags)
{
  return real.close_range ? real.close_range(lo, hi, flags)
                          : (int)syscall(SYS_close_range, lo, hi, flags);
}

static int do_close_range(unsigned first, unsigned last, int flags)
{
  if (flags & CLOSE_RANGE_CLOEXEC)
    return real_close_range(first, last, flags);
  if (first > last) {
    errno = EINVAL;
    return -1;
  }
  /* close everything in [first, last] except the shim's own fds */
  int internal[SHIM_MAX_INTERNAL];
  int n = ctl_internal_list(internal, SHIM_MAX_INTERNAL);
  unsigned lo = first;
  int r = 0;
  for (int i = 0; i <= n; i++) {
    unsigned hi;
    if (i < n) {
      unsigned fd = (unsigned)internal[i];
      if (fd < lo || fd > last)
        continue;
      if (fd == lo) {
        lo = fd + 1;
        continue;
      }
      hi = fd - 1;
    } else {
      hi = last;
    }
    if (lo > hi || lo > last)
      break;
    fdt_clear_range(lo, hi);
    if (real_close_range(lo, hi, flags) < 0)
      r = -1;
    if (i < n)
      lo = (unsigned)internal[i] + 1;
    else
      break;
  }
  return r;
}

SHIM_API int close_range(unsigned int first, unsigned int last, int flags)
{
  ensure();
  return do_close_range(first, last, flags);
}

SHIM_API void closefrom(int lowfd)
{
  ensure();
  if (lowfd < 0)
    lowfd = 0;
  int e = errno;
  do_close_range((unsigned)lowfd, ~0u, 0);
  errno = e;
}
