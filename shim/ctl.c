/*
 * shim/ctl.c — this process's control connection to tund.
 *
 * One SOCK_SEQPACKET connection per process, made on first need and re-made
 * in a forked child (the child must never read replies meant for its
 * parent).  Requests are serialised by a mutex; each waits for its RESULT.
 * The shim's own fds (this connection, kernel sockets it holds for bind())
 * sit above the program's usual range and are protected from close(),
 * close_range(), closefrom() and dup2() onto them.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/un.h>
#include <unistd.h>

#include "shim.h"

int shim_ctl_fd = -1;
uint32_t shim_tund_pid;
struct enoipc_hello_ok shim_hello;

static pthread_mutex_t ctl_lock = PTHREAD_MUTEX_INITIALIZER;
static pid_t ctl_owner;
/* Is the connection ours, or inherited through a clone() that pthread_atfork
 * did not see?  Asked on every control message, so without a getpid() system
 * call where the kernel allows: a page marked MADV_WIPEONFORK (Linux 4.14)
 * reads as zero in any child that got a copy of our memory, fork() or raw
 * clone() alike; it holds 1 while the connection is ours.  NULL: getpid(). */
static volatile int *ctl_owned;
static uint32_t ctl_seq;
static int ctl_failed_logged;

/* internal fds: small set, checked on every close/dup2 of a shim-ish fd */
#define MAX_INTERNAL 64
static _Atomic int internal_fds[MAX_INTERNAL];
static pthread_mutex_t internal_lock = PTHREAD_MUTEX_INITIALIZER;

static void internal_add(int fd)
{
  pthread_mutex_lock(&internal_lock);
  for (int i = 0; i < MAX_INTERNAL; i++)
    if (atomic_load(&internal_fds[i]) == 0) {
      atomic_store(&internal_fds[i], fd + 1);
      break;
    }
  pthread_mutex_unlock(&internal_lock);
}

static void internal_del(int fd)
{
  pthread_mutex_lock(&internal_lock);
  for (int i = 0; i < MAX_INTERNAL; i++)
    if (atomic_load(&internal_fds[i]) == fd + 1)
      atomic_store(&internal_fds[i], 0);
  pthread_mutex_unlock(&internal_lock);
}

int ctl_is_internal_fd(int fd)
{
  if (fd < 0)
    return 0;
  for (int i = 0; i < MAX_INTERNAL; i++)
    if (atomic_load_explicit(&internal_fds[i], memory_order_relaxed) == fd + 1)
      return 1;
  return 0;
}

/* The shim's own fds, sorted ascending; returns how many. */
int ctl_internal_list(int *out, int max)
{
  int n = 0;
  for (int i = 0; i < MAX_INTERNAL && n < max; i++) {
    int v = atomic_load(&internal_fds[i]);
    if (v)
      out[n++] = v - 1;
  }
  for (int i = 1; i < n; i++)
    for (int j = i; j > 0 && out[j - 1] > out[j]; j--) {
      int t = out[j];
      out[j] = out[j - 1];
      out[j - 1] = t;
    }
  return n;
}

/* Move an internal fd high, out of the range programs pick for themselves. */
static int shim_move_high(int fd)
{
  static _Atomic int cached_base;
  int base = atomic_load_explicit(&cached_base, memory_order_relaxed);
  if (!base) {
    struct rlimit rl;
    base = 900;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 1024 && rl.rlim_cur > 64)
      base = (int)rl.rlim_cur - 64;
    atomic_store_explicit(&cached_base, base, memory_order_relaxed);
  }
  int nfd = real.fcntl(fd, F_DUPFD_CLOEXEC, base);
  if (nfd < 0)
    return fd;
  real.close(fd);
  return nfd;
}

int shim_internal_fd(int fd)
{
  fd = shim_move_high(fd);
  internal_add(fd);
  return fd;
}

void shim_internal_close(int fd)
{
  if (fd < 0)
    return;
  internal_del(fd);
  real.close(fd);
}

/* ---- the standby socket (tund/client.c: client_standby) ------------------------------
 *
 * A socket tund made ahead for this process: socket() takes it without a
 * round trip.  Until then both its fds are the shim's own (moved high,
 * protected like the control connection).  Under ctl_lock. */
static struct {
  uint64_t id;
  int pfd, memfd;
  uint32_t shm_size;
} standby = { 0, -1, -1, 0 };
static int standby_asked;        /* a WANT or TAKE went out; its STANDBY may be on the way */
static unsigned sockets_made;    /* socket() calls that asked tund the usual way */

static void standby_drop_locked(void)
{
  if (standby.pfd >= 0) {
    internal_del(standby.pfd);
    real.close(standby.pfd);   /* tund sees the end close and forgets the socket */
  }
  if (standby.memfd >= 0) {
    internal_del(standby.memfd);
    real.close(standby.memfd);
  }
  standby.pfd = standby.memfd = -1;
  standby.id = 0;
  standby_asked = 0;
}

/* tund's STANDBY, one we asked for, while we hold none? */
static int standby_msg_ok(const struct enoipc_msg *m)
{
  return m->hdr.type == ENOIPC_STANDBY && m->nfds == 2 && m->plen == sizeof(struct enoipc_socket_ok) &&
         m->hdr.sock && standby_asked && standby.pfd < 0;
}

/* A message on the control connection other than the reply waited for: a
 * standby socket we asked for, or a stray to drop. */
static void ctl_unasked_locked(struct enoipc_msg *m)
{
  struct enoipc_socket_ok ok;
  if (!standby_msg_ok(m)) {
    enoipc_msg_close_fds(m);
    return;
  }
  memcpy(&ok, m->payload, sizeof(ok));
  standby.id = m->hdr.sock;
  standby.pfd = shim_internal_fd(m->fds[0]);
  standby.memfd = shim_internal_fd(m->fds[1]);
  standby.shm_size = ok.shm_size;
  standby_asked = 0;
  m->nfds = 0;
}

static int move_internal(int fd)
{
  int nfd = real.fcntl(fd, F_DUPFD_CLOEXEC, fd + 1);
  if (nfd < 0)
    return fd;
  internal_del(fd);
  internal_add(nfd);
  real.close(fd);
  return nfd;
}

/* The program wants this fd number (dup2 onto it): move ours away. */
void ctl_protect_fd(int fd)
{
  if (!ctl_is_internal_fd(fd))
    return;
  pthread_mutex_lock(&ctl_lock);
  if (fd == shim_ctl_fd)
    shim_ctl_fd = move_internal(fd);
  else if (fd == standby.pfd)
    standby.pfd = move_internal(fd);
  else if (fd == standby.memfd)
    standby.memfd = move_internal(fd);
  pthread_mutex_unlock(&ctl_lock);
}

static const char *shim_socket_path(void)
{
  static char path[108];
  const char *env = getenv("ENOSHIM_SOCKET");
  const char *xdg = getenv("XDG_RUNTIME_DIR");
  if (env && *env)
    snprintf(path, sizeof(path), "%s", env);
  else if (xdg && *xdg)
    snprintf(path, sizeof(path), "%s/enoshim/tund.sock", xdg);
  else
    snprintf(path, sizeof(path), "/tmp/enoshim-%u/tund.sock", (unsigned)getuid());
  return path;
}

static void ctl_drop_locked(void)
{
  standby_drop_locked();
  if (shim_ctl_fd >= 0) {
    internal_del(shim_ctl_fd);
    real.close(shim_ctl_fd);
  }
  shim_ctl_fd = -1;
}

static int ctl_connect_locked(void)
{
  struct sockaddr_un sa;
  const char *path = shim_socket_path();
  int fd = real.socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -errno;
  memset(&sa, 0, sizeof(sa));
  sa.sun_family = AF_UNIX;
  snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
  int r;
  do {
    r = real.connect(fd, (struct sockaddr *)&sa, sizeof(sa));
  } while (r < 0 && errno == EINTR);
  if (r < 0) {
    int e = errno;
    real.close(fd);
    if (!ctl_failed_logged++)
      shim_log("tund is not reachable at %s (%s); start it (enorun does) or set "
               "ENOSHIM_FALLBACK=plain to use kernel sockets", path, strerror(e));
    return -e;
  }
  fd = shim_move_high(fd);
  struct enoipc_hello h = { .version = ENOIPC_VERSION, .pid = (uint32_t)getpid() };
  static struct enoipc_msg m;     /* under ctl_lock */
  if (enoipc_send(fd, ENOIPC_HELLO, ++ctl_seq, 0, &h, sizeof(h), NULL, 0, NULL, 0) ||
      enoipc_recv(fd, &m) != 1 || m.hdr.type != ENOIPC_RESULT ||
      m.plen != sizeof(struct enoipc_result) + sizeof(struct enoipc_hello_ok)) {
    if (m.nfds)
      enoipc_msg_close_fds(&m);
    real.close(fd);
    shim_log("tund at %s did not answer the greeting", path);
    return -EPROTO;
  }
  struct enoipc_result res;
  memcpy(&res, m.payload, sizeof(res));
  if (res.err) {
    real.close(fd);
    shim_log("tund refused us: %s", strerror(res.err));
    return -res.err;
  }
  memcpy(&shim_hello, m.payload + sizeof(res), sizeof(shim_hello));
  if (shim_hello.n_direct > ENOIPC_MAX_DIRECT)
    shim_hello.n_direct = ENOIPC_MAX_DIRECT;
  shim_tund_pid = shim_hello.tund_pid;
  shim_ctl_fd = fd;
  internal_add(fd);
  ctl_owner = getpid();
  if (ctl_owned)
    *ctl_owned = 1;
  return 0;
}

static int ctl_ours_locked(void)
{
  if (shim_ctl_fd < 0)
    return 0;
  return ctl_owned ? *ctl_owned : ctl_owner == getpid();
}

static int ctl_ensure_locked(void)
{
  if (ctl_ours_locked())
    return 0;
  if (shim_ctl_fd >= 0) {
    /* inherited through a fork we were not told about (clone): not ours */
    standby_drop_locked();
    sockets_made = 0;
    internal_del(shim_ctl_fd);
    real.close(shim_ctl_fd);
    shim_ctl_fd = -1;
  }
  return ctl_connect_locked();
}

int ctl_ensure(void)
{
  pthread_mutex_lock(&ctl_lock);
  int r = ctl_ensure_locked();
  pthread_mutex_unlock(&ctl_lock);
  return r;
}

int ctl_call(uint16_t type, uint64_t sock, const void *p1, size_t n1, const void *p2, size_t n2,
             const int *fds, int nfds, int *err, void *data, size_t *datalen,
             int *rfds, int *nrfds, uint64_t *rsock)
{
  static struct enoipc_msg m;     /* under ctl_lock */
  int r;
  size_t cap = datalen ? *datalen : 0;
  if (datalen)
    *datalen = 0;
  if (nrfds)
    *nrfds = 0;
  pthread_mutex_lock(&ctl_lock);
  r = ctl_ensure_locked();
  if (r)
    goto out;
  uint32_t seq = ++ctl_seq;
  r = enoipc_send(shim_ctl_fd, type, seq, sock, p1, n1, p2, n2, fds, nfds);
  if (r) {
    ctl_drop_locked();
    r = -ECONNRESET;
    goto out;
  }
  for (;;) {
    r = enoipc_recv(shim_ctl_fd, &m);
    if (r != 1) {
      ctl_drop_locked();
      r = -ECONNRESET;
      goto out;
    }
    if (m.hdr.type == ENOIPC_RESULT && m.hdr.seq == seq)
      break;
    ctl_unasked_locked(&m);
  }
  struct enoipc_result res;
  if (m.plen < sizeof(res)) {
    enoipc_msg_close_fds(&m);
    ctl_drop_locked();
    r = -EPROTO;
    goto out;
  }
  memcpy(&res, m.payload, sizeof(res));
  if (res.len > m.plen - sizeof(res)) {
    enoipc_msg_close_fds(&m);
    ctl_drop_locked();
    r = -EPROTO;
    goto out;
  }
  *err = res.err;
  if (data && datalen) {
    size_t n = res.len < cap ? res.len : cap;
    memcpy(data, m.payload + sizeof(res), n);
    *datalen = n;
  }
  if (rsock)
    *rsock = m.hdr.sock;
  if (rfds && nrfds) {
    for (int i = 0; i < m.nfds; i++)
      rfds[i] = m.fds[i];
    *nrfds = m.nfds;
    m.nfds = 0;
  } else {
    enoipc_msg_close_fds(&m);
  }
  r = 0;
out:
  pthread_mutex_unlock(&ctl_lock);
  return r;
}

/* socket(): take the standby socket if one is here.  Returns the program's
 * fd (the lowest free number, as socket() gives; close-on-exec if asked)
 * with the socket's id and memfd (the caller maps and closes it), or -1:
 * ask tund the usual way.  A process on its second socket() asks for a
 * standby; taking one asks for the next. */
int ctl_take_standby(int domain, int v6only, int cloexec, uint64_t *id, int *memfd, uint32_t *shm_size)
{
  static struct enoipc_msg m;     /* under ctl_lock */
  int fd = -1;
  uint64_t sid;
  pthread_mutex_lock(&ctl_lock);
  if (ctl_ensure_locked())
    goto out;
  /* Not read yet: look without waiting.  Read here, it is taken at once,
   * where recvmsg put it: the socket's end got the lowest free number, the
   * one socket() is to return, and the memfd is the caller's to map and
   * close - four fcntl/close calls fewer than moving both out of the way
   * and back. */
  while (standby.pfd < 0 && standby_asked && enoipc_recv_flags(shim_ctl_fd, &m, MSG_DONTWAIT) == 1) {
    if (!standby_msg_ok(&m)) {
      ctl_unasked_locked(&m);
      continue;
    }
    struct enoipc_socket_ok ok;
    memcpy(&ok, m.payload, sizeof(ok));
    fd = m.fds[0];
    m.nfds = 0;
    if (!cloexec)
      real.fcntl(fd, F_SETFD, 0);   /* received close-on-exec */
    sid = m.hdr.sock;
    *memfd = m.fds[1];
    *shm_size = ok.shm_size;
    goto take;
  }
  if (standby.pfd < 0) {
    if (!standby_asked && ++sockets_made >= 2 &&
        enoipc_send(shim_ctl_fd, ENOIPC_STANDBY_WANT, ++ctl_seq, 0, NULL, 0, NULL, 0, NULL, 0) == 0)
      standby_asked = 1;
    goto out;
  }
  fd = real.fcntl(standby.pfd, cloexec ? F_DUPFD_CLOEXEC : F_DUPFD, 0);
  if (fd < 0)
    goto out;                     /* EMFILE: the usual way says so */
  sid = standby.id;
  *shm_size = standby.shm_size;
  internal_del(standby.memfd);
  *memfd = standby.memfd;
  internal_del(standby.pfd);
  real.close(standby.pfd);
  standby.pfd = standby.memfd = -1;
  standby.id = 0;
take:;
  struct enoipc_socket rq = { .domain = domain, .v6only = v6only };
  if (enoipc_send(shim_ctl_fd, ENOIPC_STANDBY_TAKE, ++ctl_seq, sid, &rq, sizeof(rq), NULL, 0, NULL, 0)) {
    real.close(fd);
    real.close(*memfd);
    *memfd = -1;
    fd = -1;
    ctl_drop_locked();
    goto out;
  }
  *id = sid;
  standby_asked = 1;              /* the TAKE asks for the next */
out:
  pthread_mutex_unlock(&ctl_lock);
  return fd;
}

/* A message tund does not answer.  Messages on the control connection are
 * handled in order, so a later ctl_call() sees its effect. */
int ctl_post(uint16_t type, uint64_t sock, const void *p1, size_t n1, const void *p2, size_t n2)
{
  pthread_mutex_lock(&ctl_lock);
  int r = ctl_ensure_locked();
  if (r == 0 && (r = enoipc_send(shim_ctl_fd, type, ++ctl_seq, sock, p1, n1, p2, n2, NULL, 0)) != 0) {
    ctl_drop_locked();
    r = -ECONNRESET;
  }
  pthread_mutex_unlock(&ctl_lock);
  return r;
}

/* A doorbell for tund on the control connection (see ring_doorbell), only if
 * it is up, ours and free this instant: never a connect, never a wait behind
 * another thread's request.  0 = sent; -1 = use the socket's own end. */
int ctl_try_doorbell(uint64_t sock)
{
  uint32_t what = ENOIPC_KICK_WAKE;
  if (pthread_mutex_trylock(&ctl_lock))
    return -1;
  int r = -1;
  if (ctl_ours_locked()) {
    /* never blocks: a program's non-blocking send() must not wait for tund */
    int e = enoipc_send_flags(shim_ctl_fd, ENOIPC_KICK, ++ctl_seq, sock, &what, sizeof(what), NULL, 0,
                              NULL, 0, MSG_DONTWAIT);
    if (e == 0)
      r = 0;
    else if (e != -EAGAIN)
      ctl_drop_locked();
  }
  pthread_mutex_unlock(&ctl_lock);
  return r;
}

void ctl_kick(uint64_t sock, int rearm)
{
  uint32_t what = rearm ? ENOIPC_KICK_REARM : ENOIPC_KICK_WAKE;
  ctl_post(ENOIPC_KICK, sock, &what, sizeof(what), NULL, 0);
}

static void atfork_prepare(void)
{
  sock_atfork_prepare();        /* a round trip to tund, before we hold ctl_lock */
  pthread_mutex_lock(&ctl_lock);
}
static void atfork_parent(void) { pthread_mutex_unlock(&ctl_lock); }
static void atfork_child(void)
{
  /* The inherited connection belongs to the parent: forget it without
   * disturbing the parent (closing our copy only drops a reference). */
  standby_drop_locked();        /* our copies only: the parent keeps its standby */
  sockets_made = 0;
  if (shim_ctl_fd >= 0) {
    internal_del(shim_ctl_fd);
    real.close(shim_ctl_fd);
  }
  shim_ctl_fd = -1;
  pthread_mutex_unlock(&ctl_lock);
  sock_atfork_child();
}

__attribute__((constructor(101))) static void ctl_init(void)
{
  shim_resolve();
  long pg = sysconf(_SC_PAGESIZE);
  void *p = mmap(NULL, (size_t)pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p != MAP_FAILED) {
    if (madvise(p, (size_t)pg, MADV_WIPEONFORK) == 0)
      ctl_owned = p;
    else
      munmap(p, (size_t)pg);
  }
  pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
}
