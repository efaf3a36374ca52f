/*
 * shim/ctl.c — this process's control connection to tund.
 *
 * One SOCK_SEQPACKET connection per process, made on first need and re-made
 * in a forked child (the child must never read replies meant for its
 * parent).  Requests are serialised by a mutex; each waits for its RESULT.
 * The socket's path is fixed when the library loads, and nothing is sent to
 * a server that is not this uid's, root's or one the administrator trusts
 * (enoshim/sockpath.h).
 * The shim's own fds (this connection, kernel sockets it holds for bind())
 * sit above the program's usual range and are protected from close(),
 * close_range(), closefrom() and dup2() onto them.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/un.h>
#include <unistd.h>

#include "shim.h"
#include "enoshim/sockpath.h"

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
/* the doorbell connection and the SIGPIPE pipe (see bell_ring) */
static _Atomic int bell_fd = -1;
static _Atomic int bell_dead;          /* tund hung up on it */
static _Atomic int epipe_fd = -1;

/* internal fds: small set, checked on every close/dup2 of a shim-ish fd
 * (the control and doorbell connections, kernel sockets of bind(), three
 * kept ends per listener: relisten.c).  They sit high, so one compare with
 * the lowest of them settles most calls. */
#define MAX_INTERNAL SHIM_MAX_INTERNAL
static _Atomic int internal_fds[MAX_INTERNAL];
static _Atomic int internal_lowest = 1 << 30;   /* no internal fd is below (a bound) */
static pthread_mutex_t internal_lock = PTHREAD_MUTEX_INITIALIZER;

static void internal_add(int fd)
{
  pthread_mutex_lock(&internal_lock);
  for (int i = 0; i < MAX_INTERNAL; i++)
    if (atomic_load(&internal_fds[i]) == 0) {
      if (fd < atomic_load(&internal_lowest))
        atomic_store(&internal_lowest, fd);
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
  if (fd < atomic_load_explicit(&internal_lowest, memory_order_relaxed))
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
  else if (fd == atomic_load(&bell_fd))
    atomic_store(&bell_fd, move_internal(fd));
  else if (fd == atomic_load(&epipe_fd))
    atomic_store(&epipe_fd, move_internal(fd));
  pthread_mutex_unlock(&ctl_lock);
}

/* tund's socket: resolved once, when the library is loaded (ctl_init), and
 * kept whatever the program does to its environment later (nginx's workers
 * clear it); enoshim/sockpath.h says where it is and whom we believe. */
static char shim_path[SOCKPATH_MAX];
static struct sockpath_trust shim_trust;
static int shim_trust_loaded;

static const char *shim_socket_path(void)
{
  if (!shim_path[0])
    sockpath_client_default(shim_path, sizeof(shim_path));
  return shim_path;
}

/* /etc/enoshim/trust.conf, read the first time a server is neither us nor
 * root (under ctl_lock) */
static const struct sockpath_trust *shim_trusted(void)
{
  if (!shim_trust_loaded) {
    sockpath_trust_load(SOCKPATH_TRUST_CONF, &shim_trust);
    shim_trust_loaded = 1;
  }
  return &shim_trust;
}

/* One line, the first time this process fails to reach tund. */
static void ctl_fail_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void ctl_fail_log(const char *fmt, ...)
{
  char buf[480];
  va_list ap;
  if (ctl_failed_logged++)
    return;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof(buf), fmt, ap);
  va_end(ap);
  shim_log("%s", buf);
}

static void ctl_drop_locked(void)
{
  if (shim_ctl_fd >= 0) {
    internal_del(shim_ctl_fd);
    real.close(shim_ctl_fd);
  }
  shim_ctl_fd = -1;
}

/* Connect and greet.  Before a byte goes to the socket, its directory and
 * the process serving it must be ours, root's or trusted by the
 * administrator; any failure fails the program's call as when no tund runs
 * (the caller turns it into ENETDOWN, or a kernel socket with
 * ENOSHIM_FALLBACK=plain) after one line saying which it was: no tund,
 * permission denied, or a server refused and why. */
static int ctl_connect_locked(void)
{
  struct sockaddr_un sa;
  const char *path = shim_socket_path();
  uid_t self = geteuid(), who = 0;
  char why[440];
  int r = sockpath_dir_check(path, self, NULL, &who, why, sizeof(why));
  if (r == SOCKPATH_BAD_OWNER)
    r = sockpath_dir_check(path, self, shim_trusted(), &who, why, sizeof(why));
  if (r == SOCKPATH_NODIR) {
    ctl_fail_log("no tund is running at %s (no such directory); start one, or set "
                 "ENOSHIM_FALLBACK=plain for kernel sockets", path);
    return -ENOENT;
  }
  if (r != SOCKPATH_OK && r != SOCKPATH_ERROR) {   /* ERROR (EACCES...): connect() says it */
    ctl_fail_log("%s", why);
    return -ECONNREFUSED;
  }
  int fd = real.socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -errno;
  memset(&sa, 0, sizeof(sa));
  sa.sun_family = AF_UNIX;
  snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
  do {
    r = real.connect(fd, (struct sockaddr *)&sa, sizeof(sa));
  } while (r < 0 && errno == EINTR);
  if (r < 0) {
    int e = errno;
    real.close(fd);
    if (e == ENOENT || e == ECONNREFUSED || e == ENOTDIR)
      ctl_fail_log("no tund is running at %s (%s); start one, or set ENOSHIM_FALLBACK=plain for "
                   "kernel sockets", path, strerror(e));
    else if (e == EACCES || e == EPERM)
      ctl_fail_log("permission denied: %s is not open to uid %u (another user's tund?); use your own "
                   "tund or the host's (%s)", path, (unsigned)self, SOCKPATH_HOST);
    else
      ctl_fail_log("tund is not reachable at %s: %s", path, strerror(e));
    return -e;
  }
  if (sockpath_peer_check(fd, path, self, NULL, &who, why, sizeof(why)) &&
      sockpath_peer_check(fd, path, self, shim_trusted(), &who, why, sizeof(why))) {
    real.close(fd);                 /* not a byte sent to it */
    ctl_fail_log("%s", why);
    return -ECONNREFUSED;
  }
  fd = shim_move_high(fd);
  struct enoipc_hello h = { .version = ENOIPC_VERSION, .pid = (uint32_t)getpid() };
  static struct enoipc_msg m;     /* under ctl_lock */
  struct enoipc_result res = { 0 };
  /* a tund that refuses our uid answers at once and closes: read its
   * answer even if the greeting could not be sent */
  int sent = enoipc_send(fd, ENOIPC_HELLO, ++ctl_seq, 0, &h, sizeof(h), NULL, 0, NULL, 0);
  int got = enoipc_recv(fd, &m) == 1 && m.hdr.type == ENOIPC_RESULT && m.plen >= sizeof(res);
  if (m.nfds)
    enoipc_msg_close_fds(&m);
  if (got)
    memcpy(&res, m.payload, sizeof(res));
  if (got && res.err) {
    real.close(fd);
    if (res.err == EACCES)
      ctl_fail_log("tund at %s does not serve uid %u (its allow_users / allow_groups)", path, (unsigned)self);
    else
      ctl_fail_log("tund at %s refused us: %s", path, strerror(res.err));
    return -res.err;
  }
  if (sent || !got || m.plen != sizeof(struct enoipc_result) + sizeof(struct enoipc_hello_ok)) {
    real.close(fd);
    ctl_fail_log("tund at %s did not answer the greeting", path);
    return -EPROTO;
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

static void bell_open_locked(void);

static int ctl_ensure_locked(void)
{
  if (ctl_ours_locked())
    return 0;
  if (shim_ctl_fd >= 0) {
    /* inherited through a fork we were not told about (clone): not ours */
    internal_del(shim_ctl_fd);
    real.close(shim_ctl_fd);
    shim_ctl_fd = -1;
  }
  int r = ctl_connect_locked();
  if (r == 0)
    bell_open_locked();
  return r;
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
    if (r == -EMFILE) {
      /* A sound message whose descriptors this process cannot take (its
       * RLIMIT_NOFILE): the kernel closed them, so tund sees that socket
       * end closed and forgets it.  The connection itself is fine. */
      if (m.hdr.type == ENOIPC_RESULT && m.hdr.seq == seq)
        goto out;                 /* the caller says EMFILE, as socket() would */
      continue;
    }
    if (r != 1) {
      ctl_drop_locked();
      r = -ECONNRESET;
      goto out;
    }
    if (m.hdr.type == ENOIPC_RESULT && m.hdr.seq == seq)
      break;
    /* not the reply waited for: tund sends nothing unasked, so a stray
     * (the reply to a request whose caller gave up), dropped */
    enoipc_msg_close_fds(&m);
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

/* The watcher of relisten.c: the control connection (made if need be) and
 * whose it is. */
int ctl_watch(int *fd, uint32_t *tund_pid)
{
  pthread_mutex_lock(&ctl_lock);
  int r = ctl_ensure_locked();
  *fd = shim_ctl_fd;
  *tund_pid = shim_tund_pid;
  pthread_mutex_unlock(&ctl_lock);
  return r ? -1 : 0;
}

/* poll() said fd hung up: tund is gone (or dropped us).  Dropped here if it
 * is still the connection and still hung up: another thread may have made
 * a new connection on the same number meanwhile. */
void ctl_watch_lost(int fd)
{
  pthread_mutex_lock(&ctl_lock);
  if (fd >= 0 && fd == shim_ctl_fd) {
    struct pollfd p = { .fd = fd, .events = 0 };
    if (poll(&p, 1, 0) > 0 && (p.revents & (POLLHUP | POLLERR)))
      ctl_drop_locked();
  }
  pthread_mutex_unlock(&ctl_lock);
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

void ctl_kick(uint64_t sock)
{
  uint32_t what = ENOIPC_KICK_WAKE;
  ctl_post(ENOIPC_KICK, sock, &what, sizeof(what), NULL, 0);
}

/* ---- the doorbell connection -----------------------------------------------------
 *
 * The data path tells tund "a `wants` bit you set is done" (enoshim/shm.h)
 * with an ENOIPC_KICK written to a connection of its own: a second
 * SOCK_SEQPACKET connection to tund, made right after the control
 * connection, non-blocking, carrying nothing else.  Why not the others:
 *   - the control connection is the process's own: a forked child may not
 *     use its parent's and must connect anew (socket() and connect(), which
 *     a sandboxed child such as OpenSSH's pre-authentication process may
 *     not call), it needs its lock (a thread in a round trip holds it), and
 *     sendmsg(MSG_DONTWAIT) is not allowed in such a sandbox either;
 *   - the socket's own pair: a byte tund reads from it wakes the program's
 *     blocking read() for nothing (unix_write_space; t_latency), it can be
 *     full of filler when a reader must ring (then nothing gets through
 *     until the writer's side moves), and a write() there raises SIGPIPE
 *     once tund's end is closed.
 * This one takes write() (allowed wherever the program may write), never
 * blocks (EAGAIN: tund is behind by hundreds of doorbells; we wait for it
 * with poll), never raises SIGPIPE (a SOCK_SEQPACKET send does not), and is
 * inherited by forked children, which share it: a KICK names its socket by
 * id and only makes tund look at that socket's rings, so whichever process
 * rings it does not matter.  It is made only where the control connection
 * was just made, against the same tund (the same peer, SO_PEERCRED), is
 * never closed while the process runs, and is replaced in place (dup3 onto
 * its number) when tund was restarted, so a thread ringing it never writes
 * to a number that meanwhile became something else.
 *
 * Next to it, a pipe whose reading end is closed: a write() there is how
 * shim_raise_sigpipe() raises SIGPIPE the kernel's way (to the calling
 * thread) where tgkill is not allowed. */

static int same_peer(int a, int b)
{
  struct ucred ca, cb;
  socklen_t la = sizeof(ca), lb = sizeof(cb);
  return real.getsockopt(a, SOL_SOCKET, SO_PEERCRED, &ca, &la) == 0 &&
         real.getsockopt(b, SOL_SOCKET, SO_PEERCRED, &cb, &lb) == 0 && ca.pid == cb.pid && ca.uid == cb.uid &&
         ca.pid > 0;
}

static void bell_open_locked(void)
{
  if (atomic_load(&epipe_fd) < 0) {
    int p[2];
    if (pipe2(p, O_CLOEXEC) == 0) {
      real.close(p[0]);
      atomic_store(&epipe_fd, shim_internal_fd(p[1]));
    }
  }
  int old = atomic_load(&bell_fd);
  if (old >= 0 && !atomic_load(&bell_dead) && same_peer(old, shim_ctl_fd))
    return;                   /* ours, or inherited from the parent: both fine */
  /* else dead, or to a tund that died and was started again (whose death
   * no doorbell has noticed yet): a doorbell there would be lost */
  struct sockaddr_un sa;
  memset(&sa, 0, sizeof(sa));
  sa.sun_family = AF_UNIX;
  snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", shim_socket_path());
  int fd = real.socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return;
  int r;
  do {
    r = real.connect(fd, (struct sockaddr *)&sa, sizeof(sa));
  } while (r < 0 && errno == EINTR);
  /* greeted like the control connection (its answer read: a socket closed
   * with unread bytes makes tund's end see a reset), then only KICKs */
  struct enoipc_hello h = { .version = ENOIPC_VERSION, .pid = (uint32_t)getpid() };
  static struct enoipc_msg m;     /* under ctl_lock */
  if (r < 0 || !same_peer(fd, shim_ctl_fd) ||
      enoipc_send(fd, ENOIPC_HELLO, 0, 0, &h, sizeof(h), NULL, 0, NULL, 0) ||
      enoipc_recv(fd, &m) != 1 || m.hdr.type != ENOIPC_RESULT || real.fcntl(fd, F_SETFL, O_NONBLOCK) < 0) {
    real.close(fd);
    return;
  }
  enoipc_msg_close_fds(&m);
  fd = shim_internal_fd(fd);
  if (old >= 0 && real.dup3(fd, old, O_CLOEXEC) == old) {
    shim_internal_close(fd);
  } else {
    if (old >= 0)
      return;                 /* keep the dead one rather than lose its number */
    atomic_store(&bell_fd, fd);
  }
  atomic_store(&bell_dead, 0);
}

int bell_ring(uint64_t sock)
{
  int fd = atomic_load_explicit(&bell_fd, memory_order_relaxed);
  if (fd < 0 || atomic_load_explicit(&bell_dead, memory_order_relaxed))
    return -1;
  /* one ENOIPC_KICK record, as enoipc_send() lays it out */
  struct enoipc_hdr hd = { .len = sizeof(hd) + sizeof(uint32_t), .type = ENOIPC_KICK, .sock = sock };
  uint32_t what = ENOIPC_KICK_WAKE;
  uint8_t buf[sizeof(hd) + sizeof(what)];
  memcpy(buf, &hd, sizeof(hd));
  memcpy(buf + sizeof(hd), &what, sizeof(what));
  int e = errno;
  for (;;) {
    ssize_t n = real.write(fd, buf, sizeof(buf));
    if (n == (ssize_t)sizeof(buf))
      break;
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 && errno == EAGAIN) {
      /* tund is behind by hundreds of doorbells: wait for it to read */
      struct pollfd p = { .fd = fd, .events = POLLOUT };
      poll(&p, 1, 1000);
      continue;
    }
    /* EPIPE, ECONNRESET: that tund hung up (it died; or it was restarted
     * and this is a forked child still holding the old one's doorbell) */
    atomic_store(&bell_dead, 1);
    errno = e;
    return -1;
  }
  errno = e;
  return 0;
}

int shim_epipe_write(void)
{
  int fd = atomic_load_explicit(&epipe_fd, memory_order_relaxed);
  if (fd < 0)
    return -1;
  return real.write(fd, "", 1) < 0 && errno == EPIPE ? 0 : -1;
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
  shim_socket_path();           /* now, from the environment the program started with */
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
