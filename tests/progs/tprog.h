/*
 * tests/progs/tprog.h — helpers shared by the semantics test programs.
 *
 * The programs run under enorun on host A of tests/integ/lib.sh's topology.
 * Their peer is usually a plain KERNEL socket inside the same process, made
 * with raw syscalls so that libenoshim.so does not take it over:
 *
 *   mkpair():      shim client  --lwIP A--tun-a-->  kernel listener on 10.201.0.1
 *   mkpair_srv():  kernel client --tun-a--lwIP A-->  shim listener, accepted shim fd
 *
 * so the test controls both ends synchronously.  Addresses come from the
 * environment (T_HOST4, T_LWIP4, T_HOST6, T_LWIP6) with lib.sh's defaults.
 *
 * Every check failure prints "FAIL <prog>:<line>: message (errno ...)" and
 * exits 1; success prints "ok".  T_KERNEL=1 lets a program run without the
 * shim (plain kernel sockets on both ends) to validate the test itself
 * against Linux.
 */
#ifndef TPROG_H
#define TPROG_H

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#define TP_FN static __attribute__((unused))

static const char *tp_prog __attribute__((unused)) = "prog";
static int tp_verbose __attribute__((unused));

#define FAIL(...)                                                              \
  do {                                                                         \
    int e_ = errno;                                                            \
    fprintf(stderr, "FAIL %s:%d: ", tp_prog, __LINE__);                        \
    fprintf(stderr, __VA_ARGS__);                                              \
    fprintf(stderr, " (errno %d %s)\n", e_, strerror(e_));                     \
    fflush(stderr);                                                            \
    _exit(1);                                                                  \
  } while (0)

#define CHECK(c, ...)                                                          \
  do {                                                                         \
    if (!(c))                                                                  \
      FAIL(__VA_ARGS__);                                                       \
  } while (0)

#define STEP(...)                                                              \
  do {                                                                         \
    if (tp_verbose) {                                                          \
      fprintf(stderr, "  [%s] ", tp_prog);                                     \
      fprintf(stderr, __VA_ARGS__);                                            \
      fprintf(stderr, "\n");                                                   \
    }                                                                          \
  } while (0)

TP_FN int64_t now_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

TP_FN void msleep(int ms)
{
  struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
  while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
    ;
}

TP_FN void tp_watchdog(int sig)
{
  static const char m[] = "FAIL: watchdog: the test program hung (a call blocked for too long)\n";
  ssize_t w = syscall(SYS_write, 2, m, sizeof(m) - 1);
  (void)w;
  (void)sig;
  _exit(3);
}

/* Start-up: name, a watchdog (SIGALRM after `secs`; programs that use
 * SIGALRM themselves pass 0 and rely on the shell's timeout), rlimit. */
TP_FN void tp_init(const char *name, int secs)
{
  tp_prog = name;
  const char *v = getenv("T_VERBOSE");
  tp_verbose = v && *v && strcmp(v, "0");
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (secs > 0) {
    signal(SIGALRM, tp_watchdog);
    alarm((unsigned)secs);
  }
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max > 65536 ? 65536 : rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

TP_FN const char *envor(const char *k, const char *d)
{
  const char *v = getenv(k);
  return v && *v ? v : d;
}
#define HOST4 envor("T_HOST4", "10.201.0.1")
#define LWIP4 envor("T_LWIP4", "10.201.0.2")
#define HOST6 envor("T_HOST6", "fd00:201::1")
#define LWIP6 envor("T_LWIP6", "fd00:201::2")

TP_FN int kernel_mode(void)
{
  const char *v = getenv("T_KERNEL");
  return v && *v && strcmp(v, "0");
}

/* ---- addresses ------------------------------------------------------------- */

TP_FN socklen_t mkaddr(int fam, const char *ip, int port, struct sockaddr_storage *ss)
{
  memset(ss, 0, sizeof(*ss));
  if (fam == AF_INET) {
    struct sockaddr_in *a = (struct sockaddr_in *)ss;
    a->sin_family = AF_INET;
    a->sin_port = htons((uint16_t)port);
    CHECK(inet_pton(AF_INET, ip, &a->sin_addr) == 1, "bad IPv4 address %s", ip);
    return sizeof(*a);
  }
  struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
  a->sin6_family = AF_INET6;
  a->sin6_port = htons((uint16_t)port);
  CHECK(inet_pton(AF_INET6, ip, &a->sin6_addr) == 1, "bad IPv6 address %s", ip);
  return sizeof(*a);
}

TP_FN int sa_port(const struct sockaddr_storage *ss)
{
  if (ss->ss_family == AF_INET)
    return ntohs(((const struct sockaddr_in *)ss)->sin_port);
  return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
}

TP_FN const char *sa_str(const struct sockaddr_storage *ss, char *buf, size_t n)
{
  char ip[INET6_ADDRSTRLEN] = "?";
  if (ss->ss_family == AF_INET) {
    inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr, ip, sizeof(ip));
    snprintf(buf, n, "%s:%d", ip, sa_port(ss));
  } else if (ss->ss_family == AF_INET6) {
    inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ss)->sin6_addr, ip, sizeof(ip));
    snprintf(buf, n, "[%s]:%d", ip, sa_port(ss));
  } else {
    snprintf(buf, n, "family-%d", ss->ss_family);
  }
  return buf;
}

/* Same family, address and port? */
TP_FN int sa_equal(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
  if (a->ss_family != b->ss_family)
    return 0;
  if (a->ss_family == AF_INET) {
    const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
    return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
  }
  const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
  return x->sin6_port == y->sin6_port && !memcmp(&x->sin6_addr, &y->sin6_addr, 16);
}

/* ---- raw kernel sockets (never the shim's) --------------------------------- */

TP_FN int k_socket(int fam, int type)
{
  return (int)syscall(SYS_socket, fam, type | SOCK_CLOEXEC, 0);
}

/* A kernel listener on ip (port 0 = ephemeral, returned in *port).  rcvbuf>0
 * is set before listen() so accepted sockets inherit a small window. */
TP_FN int k_listen(int fam, const char *ip, int *port, int rcvbuf)
{
  struct sockaddr_storage ss;
  socklen_t l = mkaddr(fam, ip, *port, &ss);
  int fd = k_socket(fam, SOCK_STREAM);
  CHECK(fd >= 0, "kernel socket()");
  int one = 1;
  CHECK(syscall(SYS_setsockopt, fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == 0, "SO_REUSEADDR");
  if (rcvbuf > 0)
    CHECK(syscall(SYS_setsockopt, fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf)) == 0, "SO_RCVBUF");
  CHECK(syscall(SYS_bind, fd, &ss, l) == 0, "kernel bind(%s)", ip);
  CHECK(syscall(SYS_listen, fd, 128) == 0, "kernel listen");
  socklen_t sl = sizeof(ss);
  CHECK(syscall(SYS_getsockname, fd, &ss, &sl) == 0, "kernel getsockname");
  *port = sa_port(&ss);
  return fd;
}

TP_FN int wait_fd(int fd, short ev, int ms)
{
  struct pollfd p = { .fd = fd, .events = ev };
  int r;
  do {
    r = poll(&p, 1, ms);
  } while (r < 0 && errno == EINTR);
  return r > 0 ? p.revents : 0;
}

TP_FN int k_accept(int lfd, int ms)
{
  CHECK(wait_fd(lfd, POLLIN, ms) & POLLIN, "kernel listener: no connection within %d ms", ms);
  int fd = (int)syscall(SYS_accept4, lfd, NULL, NULL, SOCK_CLOEXEC);
  CHECK(fd >= 0, "kernel accept4");
  return fd;
}

TP_FN int k_connect(int fam, const char *ip, int port)
{
  struct sockaddr_storage ss;
  socklen_t l = mkaddr(fam, ip, port, &ss);
  int fd = k_socket(fam, SOCK_STREAM | SOCK_NONBLOCK);
  CHECK(fd >= 0, "kernel socket()");
  int r = (int)syscall(SYS_connect, fd, &ss, l);
  CHECK(r == 0 || errno == EINPROGRESS, "kernel connect to %s:%d", ip, port);
  CHECK(wait_fd(fd, POLLOUT, 10000) & POLLOUT, "kernel connect to %s:%d: not connected in 10 s", ip, port);
  int err = 0;
  socklen_t el = sizeof(err);
  CHECK(syscall(SYS_getsockopt, fd, SOL_SOCKET, SO_ERROR, &err, &el) == 0, "SO_ERROR");
  errno = err;
  CHECK(err == 0, "kernel connect to %s:%d failed", ip, port);
  int fl = fcntl(fd, F_GETFL);
  CHECK(fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) == 0, "fcntl");
  return fd;
}

/* Is fd one of the shim's sockets?  (Its real kind is an AF_UNIX stream.) */
TP_FN int is_shim_fd(int fd)
{
  int dom = 0;
  socklen_t l = sizeof(dom);
  if (syscall(SYS_getsockopt, fd, SOL_SOCKET, SO_DOMAIN, &dom, &l))
    return 0;
  return dom == AF_UNIX;
}

TP_FN void require_shim(int fd, const char *what)
{
  if (kernel_mode())
    return;
  CHECK(is_shim_fd(fd), "%s (fd %d) is not a libenoshim socket: run me under enorun "
        "(or set T_KERNEL=1 to test plain kernel sockets)", what, fd);
}

/* ---- shim (interposed) sockets ----------------------------------------------- */

TP_FN int s_connect(int fam, const char *ip, int port)
{
  struct sockaddr_storage ss;
  socklen_t l = mkaddr(fam, ip, port, &ss);
  int fd = socket(fam, SOCK_STREAM, 0);
  CHECK(fd >= 0, "socket()");
  require_shim(fd, "socket()");
  CHECK(connect(fd, (struct sockaddr *)&ss, l) == 0, "connect to %s:%d", ip, port);
  return fd;
}

/* Shim listener bound to ip (NULL = any of the family). */
TP_FN int s_listen(int fam, const char *ip, int *port)
{
  struct sockaddr_storage ss;
  socklen_t l = mkaddr(fam, ip ? ip : (fam == AF_INET ? "0.0.0.0" : "::"), *port, &ss);
  int fd = socket(fam, SOCK_STREAM, 0);
  CHECK(fd >= 0, "socket()");
  require_shim(fd, "socket()");
  int one = 1;
  CHECK(setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == 0, "SO_REUSEADDR");
  CHECK(bind(fd, (struct sockaddr *)&ss, l) == 0, "bind");
  CHECK(listen(fd, 128) == 0, "listen");
  socklen_t sl = sizeof(ss);
  CHECK(getsockname(fd, (struct sockaddr *)&ss, &sl) == 0, "getsockname(listener)");
  *port = sa_port(&ss);
  CHECK(*port != 0, "listener has no port");
  return fd;
}

/* shim client <-> kernel server on the host side of tun-a */
TP_FN void mkpair_fam(int fam, int rcvbuf, int *sfd, int *kfd)
{
  int port = 0;
  const char *host = fam == AF_INET ? HOST4 : HOST6;
  int l = k_listen(fam, host, &port, rcvbuf);
  *sfd = s_connect(fam, host, port);
  *kfd = k_accept(l, 10000);
  close(l);
}

TP_FN void mkpair(int *sfd, int *kfd) { mkpair_fam(AF_INET, 0, sfd, kfd); }

/* kernel client -> shim listener on lwIP A's address: accepted shim fd */
TP_FN void mkpair_srv(int fam, int *sfd, int *kfd)
{
  int port = 0;
  int l = s_listen(fam, NULL, &port);
  *kfd = k_connect(fam, fam == AF_INET ? LWIP4 : LWIP6, port);
  CHECK(wait_fd(l, POLLIN, 10000) & POLLIN, "shim listener: no connection within 10 s");
  *sfd = accept(l, NULL, NULL);
  CHECK(*sfd >= 0, "accept");
  require_shim(*sfd, "accept()");
  close(l);
}

/* ---- data ----------------------------------------------------------------------- */

TP_FN uint8_t pat(uint64_t i, uint32_t seed) { return (uint8_t)((i * 131u + seed * 7u + (i >> 9)) & 0xff); }

TP_FN void fill_pat(uint8_t *b, size_t n, uint64_t off, uint32_t seed)
{
  for (size_t i = 0; i < n; i++)
    b[i] = pat(off + i, seed);
}

TP_FN int check_pat(const uint8_t *b, size_t n, uint64_t off, uint32_t seed)
{
  for (size_t i = 0; i < n; i++)
    if (b[i] != pat(off + i, seed))
      return 0;
  return 1;
}

/* Write everything (blocking fd, or poll on EAGAIN), bounded by ms. */
TP_FN void write_all(int fd, const void *buf, size_t n, int ms, const char *what)
{
  const uint8_t *p = buf;
  int64_t end = now_ms() + ms;
  while (n) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
      CHECK(now_ms() < end, "%s: write blocked for %d ms", what, ms);
      wait_fd(fd, POLLOUT, 100);
      continue;
    }
    CHECK(w > 0, "%s: write", what);
    p += w;
    n -= (size_t)w;
  }
}

/* Read exactly n bytes, bounded by ms (the fd may be blocking: we poll first). */
TP_FN void read_exact(int fd, void *buf, size_t n, int ms, const char *what)
{
  uint8_t *p = buf;
  size_t got = 0;
  int64_t end = now_ms() + ms;
  while (got < n) {
    int64_t left = end - now_ms();
    CHECK(left > 0, "%s: only %zu of %zu bytes within %d ms", what, got, n, ms);
    if (!(wait_fd(fd, POLLIN, (int)(left > 200 ? 200 : left)) & (POLLIN | POLLHUP | POLLERR)))
      continue;
    ssize_t r = read(fd, p + got, n - got);
    if (r < 0 && (errno == EAGAIN || errno == EINTR))
      continue;
    CHECK(r >= 0, "%s: read after %zu of %zu bytes", what, got, n);
    CHECK(r > 0, "%s: EOF after %zu of %zu bytes", what, got, n);
    got += (size_t)r;
  }
}

/* Expect EOF (read returns 0) within ms; data before it is an error. */
TP_FN void expect_eof(int fd, int ms, const char *what)
{
  int64_t end = now_ms() + ms;
  for (;;) {
    int64_t left = end - now_ms();
    CHECK(left > 0, "%s: no EOF within %d ms", what, ms);
    if (!(wait_fd(fd, POLLIN, (int)(left > 200 ? 200 : left)) & (POLLIN | POLLHUP | POLLERR)))
      continue;
    char b[64];
    ssize_t r = read(fd, b, sizeof(b));
    if (r < 0 && (errno == EAGAIN || errno == EINTR))
      continue;
    CHECK(r == 0, "%s: expected EOF, read returned %zd", what, r);
    return;
  }
}

/* Send n pattern bytes from a shim fd and check them on the other end. */
TP_FN void xfer_check(int from, int to, size_t n, uint32_t seed, const char *what)
{
  uint8_t *b = malloc(n), *r = malloc(n);
  CHECK(b && r, "malloc");
  fill_pat(b, n, 0, seed);
  size_t sent = 0, got = 0;
  int64_t end = now_ms() + 20000;
  int fl_from = fcntl(from, F_GETFL), fl_to = fcntl(to, F_GETFL);
  fcntl(from, F_SETFL, fl_from | O_NONBLOCK);
  fcntl(to, F_SETFL, fl_to | O_NONBLOCK);
  while (got < n) {
    CHECK(now_ms() < end, "%s: transfer stalled at %zu sent, %zu received of %zu", what, sent, got, n);
    struct pollfd p[2] = { { .fd = from, .events = sent < n ? POLLOUT : 0 }, { .fd = to, .events = POLLIN } };
    poll(p, 2, 200);
    if (sent < n) {
      ssize_t w = write(from, b + sent, n - sent);
      if (w > 0)
        sent += (size_t)w;
      else
        CHECK(errno == EAGAIN || errno == EINTR, "%s: write", what);
    }
    ssize_t rd = read(to, r + got, n - got);
    if (rd > 0)
      got += (size_t)rd;
    else if (rd == 0)
      FAIL("%s: EOF after %zu of %zu bytes", what, got, n);
    else
      CHECK(errno == EAGAIN || errno == EINTR, "%s: read", what);
  }
  fcntl(from, F_SETFL, fl_from);
  fcntl(to, F_SETFL, fl_to);
  CHECK(!memcmp(b, r, n), "%s: received bytes differ from sent ones", what);
  free(b);
  free(r);
}

/* Drain whatever is readable now (non-blocking), return bytes read. */
TP_FN size_t drain_now(int fd)
{
  char buf[65536];
  size_t t = 0;
  for (;;) {
    ssize_t r = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
    if (r <= 0)
      return t;
    t += (size_t)r;
  }
}

TP_FN void set_nonblock(int fd, int on)
{
  int fl = fcntl(fd, F_GETFL);
  CHECK(fl >= 0, "F_GETFL");
  CHECK(fcntl(fd, F_SETFL, on ? fl | O_NONBLOCK : fl & ~O_NONBLOCK) == 0, "F_SETFL");
}

/* Write (non-blocking) until EAGAIN, then keep topping up until the socket
 * stays unwritable for `quiet_ms` (the peer's window is closed and nothing
 * is in flight any more).  Returns bytes written. */
TP_FN size_t fill_until_stuck(int fd, int quiet_ms, int limit_ms)
{
  static uint8_t buf[65536];
  size_t total = 0;
  int64_t end = now_ms() + limit_ms;
  set_nonblock(fd, 1);
  for (;;) {
    for (;;) {
      ssize_t w = write(fd, buf, sizeof(buf));
      if (w > 0) {
        total += (size_t)w;
        continue;
      }
      CHECK(errno == EAGAIN, "fill: write (after %zu bytes)", total);
      break;
    }
    CHECK(now_ms() < end, "fill: socket kept becoming writable for %d ms (%zu bytes)", limit_ms, total);
    if (!(wait_fd(fd, POLLOUT, quiet_ms) & POLLOUT))
      return total;
  }
}

#endif
