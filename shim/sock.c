/*
 * shim/sock.c — socket(), bind(), listen(), accept(), connect() and
 * shutdown() for the sockets the shim owns, and the filler that makes the
 * program's end of the pair unwritable until tund says more (used by
 * connect() here and by io.c).
 *
 * A listening socket gets both a tund listener (ENO peers arriving through
 * the TUN) and a kernel listener on the same port (kernel clients, e.g.
 * from loopback); tund passes each accepted connection over the listener's
 * pair.  Destinations that go direct get a plain kernel socket (direct.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "shim.h"

/* ---- socket() ---------------------------------------------------------------- */

int sock_socket(int domain, int type, int protocol)
{
  int fds[ENOIPC_MAX_FDS], nfds = 0, err = 0;
  uint64_t id = 0;
  struct enoipc_socket rq = { .domain = domain, .v6only = 0 };
  struct enoipc_socket_ok ok;
  size_t oklen = sizeof(ok);

  if (domain == AF_INET6) {
    /* the system default for IPV6_V6ONLY */
    int fd = open("/proc/sys/net/ipv6/bindv6only", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
      char c = '0';
      if (real.read(fd, &c, 1) == 1)
        rq.v6only = c == '1';
      real.close(fd);
    }
  }
  /* One round trip: the reply brings the pair end (at the lowest free
   * number, which socket() must return) and the memfd.  tund does not make
   * sockets ahead: a descriptor it sent before being asked would sit in
   * flight, and while any unix socket is in flight on the host, every close
   * of a unix socket anywhere queues a run of the kernel's garbage collector
   * (PERFORMANCE.md, "No socket is sent ahead any more"). */
  int r = ctl_call(ENOIPC_SOCKET, 0, &rq, sizeof(rq), NULL, 0, NULL, 0, &err, &ok, &oklen, fds, &nfds, &id);
  if (r == -EMFILE || r == -ENFILE) {
    /* The program is at its descriptor limit (the control connection
     * could not be made, or the reply's two descriptors not taken): the
     * kernel's socket() would fail the same way, so no plain socket with
     * ENOSHIM_FALLBACK=plain either. */
    errno = -r;
    return -1;
  }
  if (r) {
    if (shim_fallback_plain)
      return real.socket(domain, type, protocol);
    errno = ENETDOWN;
    return -1;
  }
  if (err || nfds != 2 || oklen != sizeof(ok)) {
    for (int i = 0; i < nfds; i++)
      real.close(fds[i]);
    errno = err ? err : EPROTO;
    return -1;
  }
  int fd = fds[0];
  if (!(type & SOCK_CLOEXEC))
    real.fcntl(fd, F_SETFD, 0);
  struct shim_sock *s = sock_from_shm(id, fds[1], ok.shm_size, SK_STREAM, domain, SHM_OWN, &err);
  real.close(fds[1]);
  if (!s) {
    real.close(fd);
    errno = err;
    return -1;
  }
  s->v6only = rq.v6only;
  if (type & SOCK_NONBLOCK)
    real.fcntl(fd, F_SETFL, real.fcntl(fd, F_GETFL) | O_NONBLOCK);
  fdt_set(fd, s);
  sock_apply_env_opts(s);
  if (shim_debug)
    shim_log("socket fd %d = tund socket %llu", fd, (unsigned long long)id);
  return fd;
}

/* ---- bind / listen ----------------------------------------------------------- */

static int kernel_addr_port(int k, int domain)
{
  struct sockaddr_storage ss;
  socklen_t l = sizeof(ss);
  if (real.getsockname(k, (struct sockaddr *)&ss, &l))
    return -1;
  if (domain == AF_INET)
    return ntohs(((struct sockaddr_in *)&ss)->sin_port);
  return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
}

int sock_bind(int fd, struct shim_sock *s, const struct sockaddr *a, socklen_t len)
{
  struct enoipc_addr ia, bound;
  int err, e;
  if ((e = sa_to_ipc(a, len, s->domain, &ia))) {
    errno = e;
    return -1;
  }
  if (s->bound || s->connect_started || s->kind == SK_LISTENER) {
    errno = EINVAL;
    return -1;
  }
  if (is_loopback(a)) {
    /* bound to loopback: the program wants local peers only — a kernel socket */
    if (go_direct(fd, s))
      return -1;
    return real.bind(fd, a, len);
  }
  /* Port 0: the kernel picks the port, but lwIP may hold it already (an
   * active connection or TIME-WAIT of tund's own): then ask the kernel again,
   * keeping the refused sockets open so it cannot hand the same port back. */
  int want_any = ia.port == 0;
  int refused[8], nrefused = 0, k, r;
  size_t bl;
  for (;;) {
    k = new_kernel_socket(s, fd);
    if (k < 0) {
      r = -1;
      goto out;
    }
    if (real.bind(k, a, len) < 0) {
      e = errno;
      real.close(k);
      if (e != EADDRNOTAVAIL) {
        errno = e;
        r = -1;
        goto out;
      }
      k = -1;            /* presumably lwIP's own address: tund only */
    } else {
      ia.port = (uint16_t)kernel_addr_port(k, s->domain);
    }
    bl = sizeof(bound);
    struct enoipc_bind b = { .addr = ia, .kernel_bound = k >= 0 };
    r = ctl_call(ENOIPC_BIND, s->id, &b, sizeof(b), NULL, 0, NULL, 0, &err, &bound, &bl, NULL, NULL,
                 NULL);
    if (!r && err == EADDRINUSE && want_any && k >= 0 && nrefused < (int)(sizeof(refused) / sizeof(refused[0]))) {
      refused[nrefused++] = k;
      ia.port = 0;
      continue;
    }
    break;
  }
  if (r || err) {
    if (k >= 0)
      real.close(k);
    errno = r ? ENETDOWN : err;
    r = -1;
    goto out;
  }
  if (k >= 0)
    s->kfd = shim_internal_fd(k);
  s->bound_addr = ia;
  s->bound_addr.port = bound.port;   /* the one the kernel or tund chose */
  s->bound = 1;
  r = 0;
out:
  e = errno;
  for (int i = 0; i < nrefused; i++)
    real.close(refused[i]);
  errno = e;
  return r;
}

int sock_listen(int fd, struct shim_sock *s, int backlog)
{
  int err;
  if (s->connect_started) {
    errno = EINVAL;
    return -1;
  }
  if (backlog <= 0)
    backlog = 1;
  if (backlog > 65535)
    backlog = 65535;
  if (!s->bound && s->kind != SK_LISTENER) {
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    ss.ss_family = (sa_family_t)s->domain;
    if (sock_bind(fd, s, (struct sockaddr *)&ss,
                  s->domain == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6)))
      return -1;
  }
  int k = s->kfd;
  if (k >= 0 && real.listen(k, backlog) < 0)
    return -1;
  struct enoipc_listen l = { .backlog = backlog, .has_kernel_fd = k >= 0 };
  int rfds[ENOIPC_MAX_FDS], nrfds = 0;
  int r = ctl_call(ENOIPC_LISTEN, s->id, &l, sizeof(l), NULL, 0, k >= 0 ? &k : NULL, k >= 0 ? 1 : 0,
                   &err, NULL, NULL, rfds, &nrfds, NULL);
  if (r || err) {
    for (int i = 0; i < nrfds; i++)
      real.close(rfds[i]);
    errno = r ? ENETDOWN : err;
    return -1;
  }
  if (s->kind == SK_LISTENER) {
    for (int i = 0; i < nrfds; i++)
      real.close(rfds[i]);
    relisten_backlog(s, backlog);   /* listen() again: only the backlog changes */
    return 0;
  }
  s->kfd = -1;
  if (nrfds == 2) {
    /* tund's end and the memory, with our kernel listener: kept, so that
     * the listener comes back if tund restarts (relisten.c) */
    relisten_keep(fd, s, rfds[0], rfds[1], k, backlog);
  } else {
    for (int i = 0; i < nrfds; i++)
      real.close(rfds[i]);
    if (k >= 0)
      shim_internal_close(k);    /* tund has its own copy now */
  }
  s->kind = SK_LISTENER;
  return 0;
}

/* ---- accept ------------------------------------------------------------------ */

/* The accept queue (shm.h, tund/listener.c): one record per connection on
 * the listener's pair, with its descriptors (the socket's end and its
 * memfd, or a kernel socket).  Receiving a record installs them, so a
 * process at its RLIMIT_NOFILE would lose the connection with its
 * descriptors (the kernel drops what it cannot install, MSG_CTRUNC).  The
 * kernel's accept() fails with EMFILE instead and leaves the connection
 * queued.  So the record is first PEEKed with its descriptors: a peek
 * installs copies and leaves the record where it is; if they cannot all be
 * installed, the copies that were go and accept() says EMFILE, the record
 * still first in the queue for a later accept().  Otherwise the record is
 * taken off the queue without its descriptors (the queue's references go;
 * the peeked copies are the connection's now).  Peek and take are one step
 * under the listener's cross-process lock (the header's rx_lock, which
 * nothing else uses on a listener): processes sharing a listener (a fork,
 * nginx's workers) never take a record another one peeked.  Nothing waits
 * under the lock: with the queue empty the wait is a peek without
 * descriptors (the fd's own O_NONBLOCK, SO_RCVTIMEO and signal rules), and
 * before it, as the kernel's accept() takes its descriptor before waiting,
 * one dup() tells whether the process has one free.  One system call more
 * than a plain receive per connection, three more when the queue is empty.
 * A connection through tund needs two descriptors for an instant (its
 * memfd is mapped and closed at once): with exactly one free, accept()
 * says EMFILE where the kernel would succeed; a kernel-side one needs one. */
#define ACC_MAXFDS 16                 /* room for more than a record carries */

static void acc_lock(struct enoshm *m)
{
  if (pthread_mutex_lock(&m->rx_lock) == EOWNERDEAD)
    pthread_mutex_consistent(&m->rx_lock);   /* a holder died: the queue is the kernel's */
}

/* A descriptor is free in this process (the kernel's accept() needs one). */
static int fd_room(int fd)
{
  int d = real.fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (d < 0)
    return errno != EMFILE;
  real.close(d);
  return 1;
}

/* One record off the queue with its descriptors installed: its length (and
 * rfds[0..*nf)), 0 at EOF, or -1 with errno (EAGAIN, EINTR, EMFILE...). */
static ssize_t acc_take(int fd, struct shim_sock *s, struct enoipc_accept *rec, int *rfds, int *nf)
{
  struct enoshm *m = s->shm;
  for (;;) {
    struct iovec iov = { .iov_base = rec, .iov_len = sizeof(*rec) };
    union {
      struct cmsghdr align;
      char buf[CMSG_SPACE(sizeof(int) * ACC_MAXFDS)];
    } cb;
    struct msghdr mh;
    memset(&mh, 0, sizeof(mh));
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = cb.buf;
    mh.msg_controllen = sizeof(cb.buf);
    *nf = 0;
    acc_lock(m);
    ssize_t n = real.recvmsg(fd, &mh, MSG_PEEK | MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    if (n > 0) {
      for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
          int cnt = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
          for (int i = 0; i < cnt && *nf < ACC_MAXFDS; i++)
            memcpy(&rfds[(*nf)++], CMSG_DATA(c) + (size_t)i * sizeof(int), sizeof(int));
        }
      if ((mh.msg_flags & MSG_CTRUNC) && *nf < ACC_MAXFDS) {
        /* not all installed: no room (a record never has this many) */
        for (int i = 0; i < *nf; i++)
          real.close(rfds[i]);
        *nf = 0;
        pthread_mutex_unlock(&m->rx_lock);
        errno = EMFILE;
        return -1;
      }
      /* ours: off the queue, without its descriptors (we hold copies) */
      char junk[sizeof(*rec)];
      ssize_t t = real.recv(fd, junk, (size_t)n, MSG_DONTWAIT);
      pthread_mutex_unlock(&m->rx_lock);
      if (t == n)
        return n;
      for (int i = 0; i < *nf; i++)   /* taken by a reader outside the shim */
        real.close(rfds[i]);
      *nf = 0;
      continue;
    }
    int e = errno;
    pthread_mutex_unlock(&m->rx_lock);
    if (n == 0)
      return 0;
    if (e != EAGAIN) {
      errno = e;
      return -1;
    }
    if (!fd_room(fd)) {
      errno = EMFILE;
      return -1;
    }
    /* nothing queued: wait for a record, per the fd's own flags */
    char b;
    struct iovec wiov = { .iov_base = &b, .iov_len = 1 };
    struct msghdr wmh;
    memset(&wmh, 0, sizeof(wmh));
    wmh.msg_iov = &wiov;
    wmh.msg_iovlen = 1;
    n = real.recvmsg(fd, &wmh, MSG_PEEK);
    if (n <= 0)
      return n;               /* EAGAIN, EINTR, a timeout: as the kernel would */
  }
}

int sock_accept(int fd, struct shim_sock *s, struct sockaddr *a, socklen_t *alen, int flags)
{
  struct enoipc_accept rec;
  int rfds[ACC_MAXFDS];
  if (s->kind != SK_LISTENER) {
    errno = EINVAL;
    return -1;
  }
  if (flags & ~(SOCK_NONBLOCK | SOCK_CLOEXEC)) {
    errno = EINVAL;
    return -1;
  }
  relisten_check_watcher();
  for (;;) {
    int nf = 0;
    ssize_t n = acc_take(fd, s, &rec, rfds, &nf);
    if (n < 0)
      return -1;
    if (n == 0) {
      struct enoshm_status st;
      enoshm_status_read(s->shm, &st);
      errno = st.error ? st.error : EINVAL;   /* listener shut down, or tund gone */
      return -1;
    }
    atomic_fetch_add(&s->shm->acc_cons, 1);
    if (atomic_fetch_and(&s->shm->wants, ~ENOSHM_WANT_ACCEPT) & ENOSHM_WANT_ACCEPT)
      sock_doorbell(fd, s);
    if (n != (ssize_t)sizeof(rec) || rec.magic != ENOIPC_ACCEPT_MAGIC || rec.nfds != nf ||
        !((rec.kind == ENOIPC_ACCEPT_TUND && nf == 2) || (rec.kind == ENOIPC_ACCEPT_DIRECT && nf == 1))) {
      for (int i = 0; i < nf; i++)
        real.close(rfds[i]);
      shim_log("malformed accept record on fd %d; skipped", fd);
      continue;
    }
    int nfd = rfds[0];
    if (rec.kind == ENOIPC_ACCEPT_TUND) {
      int err = 0;
      struct shim_sock *c = sock_from_shm(rec.sock, rfds[1], 0, SK_STREAM, s->domain,
                                          s->id | SHM_TAG_LISTENER, &err);
      real.close(rfds[1]);
      if (!c) {
        real.close(nfd);
        continue;
      }
      c->nodelay = s->nodelay;
      c->keepalive = s->keepalive;
      c->v6only = s->v6only;
      c->tep_mandatory = s->tep_mandatory;
      fdt_set(nfd, c);
      if (a && alen) {
        struct enoshm_status cst;
        struct sockaddr_storage ss;
        enoshm_status_read(c->shm, &cst);
        socklen_t sl = shm_to_sa(&cst.remote, c->domain, &ss);
        copy_out_addr(&ss, sl, a, alen);
      }
    } else if (a && alen) {
      real.getpeername(nfd, a, alen);
    }
    if (!(flags & SOCK_CLOEXEC))
      real.fcntl(nfd, F_SETFD, 0);
    if (flags & SOCK_NONBLOCK)
      real.fcntl(nfd, F_SETFL, real.fcntl(nfd, F_GETFL) | O_NONBLOCK);
    return nfd;
  }
}

/* ---- connect ----------------------------------------------------------------- */

/* A request whose answer is only an errno: 0, or -1 with tund's errno, or
 * with down_errno when tund cannot be reached. */
static int ctl_ask(uint16_t type, uint64_t id, const void *p, size_t n, int down_errno)
{
  int err;
  if (ctl_call(type, id, p, n, NULL, 0, NULL, 0, &err, NULL, NULL, NULL, NULL, NULL)) {
    errno = down_errno;
    return -1;
  }
  if (err) {
    errno = err;
    return -1;
  }
  return 0;
}

/* A blocking connect() can return with bytes of ours that tund has not read
 * yet: the wake-up byte of io_wait_writable(), or filler, when tund
 * established the connection before we first looked.  tund's read of them
 * makes the kernel signal EPOLLOUT on our end once more, so an
 * edge-triggered epoll set up right after connect() would see a second
 * EPOLLOUT edge with nothing changed (kernel TCP gives one).  Only an
 * edge-triggered registration can tell, so connect() just notes it and
 * epoll_ctl() (shim.c) settles: tund is awake (it has just drained the
 * filler, or is about to), so wait, bounded, until it has read everything.
 * Usually that is a yield or two; a loaded machine or a sanitizer build can
 * take milliseconds, so the wait backs off up to half a second, a bound only
 * a stalled tund reaches.  Doing it in every connect() cost a sched_yield
 * spin per connection, on the CPU the peer's side needed. */
void sock_settle(int fd, struct shim_sock *s)
{
  s->wake_queued = 0;
  long sleep_ns = 20000, slept_ns = 0;
  for (int i = 0;; i++) {
    int q = 0;
    if (real.ioctl(fd, SIOCOUTQ, &q) < 0 || q <= 0)
      return;
    if (i < 64) {
      sched_yield();
      continue;
    }
    if (slept_ns >= 500000000L)
      return;
    struct timespec ts = { 0, sleep_ns };
    nanosleep(&ts, NULL);
    slept_ns += sleep_ns;
    if (sleep_ns < 4000000L)
      sleep_ns *= 2;
  }
}

static int connect_result(struct shim_sock *s)
{
  struct enoshm_status st;
  sock_status(s, &st);
  if (st.state == ENOSHM_S_ESTABLISHED)
    return 0;
  if (st.state == ENOSHM_S_CLOSED) {
    s->err_reported = 1;
    errno = st.error ? st.error : ECONNREFUSED;
    return -1;
  }
  return 1;   /* still connecting */
}

/* Destinations Linux's TCP refuses with ENETUNREACH before sending
 * anything: multicast and the limited broadcast (tcp_v4_connect: a route
 * flagged RTCF_MULTICAST or RTCF_BROADCAST; tcp_v6_connect:
 * ipv6_addr_is_multicast), and a v4-mapped address on an IPV6_V6ONLY
 * socket.  Through tund they would wait for a SYN-ACK that cannot come.
 * (A subnet's directed broadcast is not recognised here: it gets the
 * usual timeout or reset.) */
static int unroutable(const struct shim_sock *s, const struct enoipc_addr *ia)
{
  const uint8_t *v4 = NULL;
  if (ia->family == AF_INET)
    v4 = ia->addr;
  else if (IN6_IS_ADDR_V4MAPPED((const struct in6_addr *)ia->addr)) {
    if (s->v6only)
      return 1;
    v4 = ia->addr + 12;
  } else
    return ia->addr[0] == 0xff;                        /* ff00::/8 */
  return (v4[0] & 0xf0) == 0xe0 ||                     /* 224/4 */
         (v4[0] == 255 && v4[1] == 255 && v4[2] == 255 && v4[3] == 255);
}

int sock_connect(int fd, struct shim_sock *s, const struct sockaddr *a, socklen_t len)
{
  return sock_connect_ex(fd, s, a, len, 0);
}

int sock_connect_ex(int fd, struct shim_sock *s, const struct sockaddr *a, socklen_t len, int dontwait)
{
  struct enoipc_addr ia;
  int e;
  if (s->kind == SK_LISTENER) {
    errno = EISCONN;
    return -1;
  }
  if (a && len >= sizeof(sa_family_t) && a->sa_family == AF_UNSPEC) {
    errno = EAFNOSUPPORT;      /* disconnect: not supported on shim sockets */
    return -1;
  }
  if ((e = sa_to_ipc(a, len, s->domain, &ia))) {
    errno = e;
    return -1;
  }
  if (s->connect_started) {
    int r = connect_result(s);
    if (r == 0) {
      /* Linux: the first connect() after a non-blocking (or interrupted)
       * one has completed says 0 (the socket becomes SS_CONNECTED then,
       * __inet_stream_connect); every later one EISCONN.  Programs poll
       * completion this way and some take only 0 for success. */
      if (s->connect_unreaped) {
        s->connect_unreaped = 0;
        return 0;
      }
      errno = EISCONN;
      return -1;
    }
    if (r < 0)
      return -1;
    errno = EALREADY;
    return -1;
  }
  if (unroutable(s, &ia)) {
    errno = ENETUNREACH;
    return -1;
  }
  if (shim_addr_is_direct(a, len)) {
    if (s->tep_mandatory) {
      /* a direct route is a plain kernel connection: TCP_ENO_TEP_MANDATORY
       * forbids it (api-06 §2.1), before anything is sent */
      errno = EPROTONOSUPPORT;
      return -1;
    }
    if (go_direct(fd, s))     /* the outcome line says it (outcome.c) */
      return -1;
    return real.connect(fd, a, len);
  }
  if (s->kfd >= 0) {
    shim_internal_close(s->kfd);   /* bound for a direct route that is not taken */
    s->kfd = -1;
  }
  if (s->kind == SK_STREAM && s->cache_tag == SHM_OWN && !s->shared) {
    /* Made by socket() here, never connected, held by no other process: the
     * CONNECT goes without waiting for tund's answer, one round trip (two
     * wake-ups) fewer per connection.  Every outcome, an error tund finds
     * at once (no route, no free port) included, comes through the status
     * block that the wait below reads anyway; until tund has taken the
     * request, sock_status() shows the socket connecting.  A socket another
     * process may hold waits for the answer: that process's connect() could
     * be the one tund takes first, and this one must then say EALREADY. */
    if (ctl_post(ENOIPC_CONNECT_POSTED, s->id, &ia, sizeof(ia), NULL, 0)) {
      errno = ENETDOWN;
      return -1;
    }
    s->connect_posted = 1;
  } else {
    if (ctl_ask(ENOIPC_CONNECT, s->id, &ia, sizeof(ia), ENETDOWN))
      return -1;
  }
  /* Unwritable until tund says connected or failed: tund drains the fillers
   * then, and never while it sees the socket as new (so a filler cannot
   * overtake a posted CONNECT). */
  io_fill(fd, s);
  s->connect_started = 1;
  int fl = real.fcntl(fd, F_GETFL);
  if (dontwait || (fl >= 0 && (fl & O_NONBLOCK))) {
    /* Linux: a non-blocking TCP connect always says EINPROGRESS, even when
     * it completes at once; the program learns the outcome from poll and
     * SO_ERROR */
    s->connect_unreaped = 1;
    errno = EINPROGRESS;
    return -1;
  }
  for (;;) {
    int c = connect_result(s);
    if (c == 0)
      s->wake_queued = 1;   /* see sock_settle() */
    if (c <= 0)
      return c;
    if (io_wait_writable(fd, s, 0) < 0) {
      if (errno == EAGAIN || errno == EINTR)
        s->connect_unreaped = 1;     /* still connecting: see above */
      if (errno == EAGAIN)
        errno = EINPROGRESS;
      else if (errno == EPIPE || errno == ECONNRESET) {
        c = connect_result(s);
        if (c <= 0)
          return c;
        errno = ECONNRESET;
      }
      return -1;
    }
  }
}

int sock_shutdown(int fd, struct shim_sock *s, int how)
{
  (void)fd;
  if (how != SHUT_RD && how != SHUT_WR && how != SHUT_RDWR) {
    errno = EINVAL;
    return -1;
  }
  int32_t h = how;
  if (ctl_ask(ENOIPC_SHUTDOWN, s->id, &h, sizeof(h), ENOTCONN))
    return -1;
  if (s->kind == SK_LISTENER)
    relisten_drop(s);           /* a listener shut down stays down */
  if (how != SHUT_WR)
    s->shut_rd = 1;
  if (how != SHUT_RD)
    s->shut_wr = 1;
  return 0;
}
