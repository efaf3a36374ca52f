/*
 * tund/listener.c — listening sockets: the accept queue (records with the
 * new connection's descriptors written to the listener's own pair, and
 * those waiting in tund while the program's backlog is full), admitting a
 * SYN (backlog, descriptors), and the program's kernel listener on the same
 * port, whose connections come out of the same accept(); and a listener a
 * tund before us made, handed over by the program's shim (RELISTEN).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tund.h"
#include "conn.h"

static int listener_send(struct conn *l, struct acc_pending *a)
{
  struct enoipc_accept rec = { .magic = ENOIPC_ACCEPT_MAGIC, .kind = a->kind };
  int fds[2];
  int nfds;
  if (a->kind == ENOIPC_ACCEPT_TUND) {
    fds[0] = a->child->pfd;
    fds[1] = a->child->memfd;
    nfds = 2;
    rec.sock = a->child->id;
  } else {
    fds[0] = a->kfd;
    nfds = 1;
  }
  rec.nfds = (uint16_t)nfds;
  struct iovec iov = { .iov_base = &rec, .iov_len = sizeof(rec) };
  union {
    struct cmsghdr align;
    char buf[CMSG_SPACE(sizeof(int) * 2)];
  } cb;
  struct msghdr mh;
  memset(&mh, 0, sizeof(mh));
  memset(&cb, 0, sizeof(cb));
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  mh.msg_control = cb.buf;
  mh.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
  struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
  cm->cmsg_level = SOL_SOCKET;
  cm->cmsg_type = SCM_RIGHTS;
  cm->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
  memcpy(CMSG_DATA(cm), fds, sizeof(int) * (size_t)nfds);
  ssize_t n = sendmsg(l->tfd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
  if (n == (ssize_t)sizeof(rec))
    return 0;
  if (n < 0 && (errno == EAGAIN || errno == ETOOMANYREFS || errno == ENOBUFS))
    return 1;   /* queue full: keep it */
  return -1;
}

static uint32_t listener_queued(struct conn *l)
{
  uint32_t took = atomic_load_explicit(&l->shm->acc_cons, memory_order_acquire);
  uint32_t q = l->acc_sent - took;
  return q > l->acc_sent ? l->acc_sent : q;   /* a bogus acc_cons cannot make it huge */
}

/* Connections the program has not taken: handed to its fd or queued in tund. */
static uint64_t listener_waiting(struct conn *l)
{
  return (uint64_t)listener_queued(l) + (uint64_t)l->acc_q_len;
}

/* May a new SYN start a connection for this listener?  Like Linux
 * (tcp_conn_request: "if (sk_acceptq_is_full(sk)) goto drop"), a listener
 * whose accept queue holds more than its backlog drops new SYNs silently and
 * the peer retransmits.  The queue here is what the program has not taken:
 * connections handed to its fd, waiting in tund, or still in their TEP
 * handshake (each holds a socketpair, a memfd and ring pages, so without this
 * a peer could make tund hold any number of them).  Half-open connections
 * (SYN-RCVD) are bounded separately by lwIP (TCP_LISTEN_BACKLOG, 255 per
 * listener). */
int listener_admit(struct conn *l)
{
  if (l->dead || l->kind != CK_LISTENER)
    return 0;
  uint64_t q = listener_waiting(l) + (uint64_t)l->n_embryonic;
  if (q > (uint64_t)l->backlog) {
    l->syn_dropped++;
    if ((l->syn_dropped & (l->syn_dropped - 1)) == 0)   /* 1st, 2nd, 4th, 8th ... */
      tund_log_limited(LOG_WARN_, "listener on port %u: accept queue full (%llu waiting, backlog %d): "
                       "SYN dropped (%llu so far), the peer will retry", (unsigned)l->st.local.port,
                       (unsigned long long)q, l->backlog, (unsigned long long)l->syn_dropped);
    return 0;
  }
  if (!fd_promise_take()) {
    uint64_t drops = fd_promise_drops();
    l->syn_dropped++;
    if ((drops & (drops - 1)) == 0)
      tund_log_limited(LOG_WARN_, "listener on port %u: out of file descriptors: SYN dropped (%llu so far), "
                       "the peer will retry", (unsigned)l->st.local.port, (unsigned long long)drops);
    return 0;
  }
  return 1;
}

void listener_flush(struct conn *l)
{
  while (l->acc_q) {
    struct acc_pending *a = l->acc_q;
    if (listener_queued(l) >= (uint32_t)l->backlog) {
      atomic_fetch_or(&l->shm->wants, ENOSHM_WANT_ACCEPT);
      atomic_thread_fence(memory_order_seq_cst);
      if (listener_queued(l) >= (uint32_t)l->backlog)
        break;
    }
    int r = listener_send(l, a);
    if (r > 0)
      break;
    l->acc_q = a->next;
    if (!l->acc_q)
      l->acc_q_tail = NULL;
    l->acc_q_len--;
    if (r == 0) {
      l->acc_sent++;
      l->st.accepted = l->acc_sent;
      if (a->kind == ENOIPC_ACCEPT_TUND) {
        close(a->child->pfd);
        a->child->pfd_valid = 0;
        a->child->in_acc_q = 0;
      } else {
        close(a->kfd);
      }
    } else {
      if (a->kind == ENOIPC_ACCEPT_TUND) {
        a->child->in_acc_q = 0;
        conn_abort(a->child, ECONNABORTED);
      } else {
        close(a->kfd);
      }
    }
    free(a);
  }
  /* kernel listener: take more only while the queue has room */
  if (l->kfd >= 0) {
    int want = !l->acc_q && listener_queued(l) < (uint32_t)l->backlog;
    if (want != l->kfd_armed) {
      loop_mod(&l->kev, want ? EPOLLIN : 0);
      l->kfd_armed = want;
    }
  }
}

static void listener_enqueue(struct conn *l, struct acc_pending *a)
{
  a->next = NULL;
  if (l->acc_q_tail)
    l->acc_q_tail->next = a;
  else
    l->acc_q = a;
  l->acc_q_tail = a;
  l->acc_q_len++;
  listener_flush(l);
}

void listener_deliver(struct conn *l, struct conn *c)
{
  struct acc_pending *a = calloc(1, sizeof(*a));
  if (!a) {
    conn_abort(c, ENOBUFS);
    return;
  }
  a->kind = ENOIPC_ACCEPT_TUND;
  a->child = c;
  a->kfd = -1;
  c->in_acc_q = 1;
  listener_enqueue(l, a);
}

static void listener_kernel_event(struct ev *ev, uint32_t events)
{
  struct conn *l = (struct conn *)((char *)ev - offsetof(struct conn, kev));
  (void)events;
  if (l->dead)
    return;
  for (int i = 0; i < 64; i++) {
    if (listener_waiting(l) >= (uint64_t)l->backlog)
      break;
    int fd = accept4(l->kfd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EMFILE || errno == ENFILE)
        tund_log_limited(LOG_WARN_, "accept on a program's kernel listener: %s", strerror(errno));
      break;
    }
    if (crypt_tep_mandatory(l)) {
      /* a kernel-side client is plain TCP: TCP_ENO_TEP_MANDATORY on the
       * listener refuses it (reset, nothing delivered) */
      struct linger lg = { .l_onoff = 1, .l_linger = 0 };
      setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
      close(fd);
      continue;
    }
    struct acc_pending *a = calloc(1, sizeof(*a));
    if (!a) {
      close(fd);
      break;
    }
    a->kind = ENOIPC_ACCEPT_DIRECT;
    a->kfd = fd;
    listener_enqueue(l, a);
    if (l->dead)
      return;
  }
  listener_flush(l);
}

/* The program's kernel listener on the same port (listen() in the shim made
 * it): its connections come out of the same accept queue. */
void listener_add_kernel(struct conn *l, int kfd)
{
  fcntl(kfd, F_SETFL, O_NONBLOCK);
  l->kfd = kfd;
  l->kev.fd = kfd;
  l->kev.fn = listener_kernel_event;
  if (loop_add(&l->kev, EPOLLIN)) {
    close(kfd);
    l->kfd = -1;
  } else {
    l->kfd_armed = 1;
  }
}

/* ---- a listener made by a tund before us (RELISTEN) ----------------------------
 *
 * shim/relisten.c has the design: when tund died, the shim of the program
 * that listens kept copies of its end of the listener's pair, of the
 * listener's shared memory and of the kernel listener, and now hands them
 * to us.  Nothing in the request is believed that can be checked: the
 * program's end and tund's end are unix stream sockets made by a process of
 * tund's uid (SO_PEERCRED: the tund that made the pair); the memory is a
 * memfd sealed against shrinking and growing (we map it and the program may
 * not make us fault) with a sound header; the kernel listener is a
 * listening TCP socket of the family on the port asked for.  The listener is
 * then bound and listens as a new one would (conn_bind, conn_listen), with
 * the program's options applied first; any of them failing fails it all
 * (the shim then shuts the listener down rather than let it run without,
 * say, TCP_ENO_TEP_MANDATORY).  The program's end is only looked at (ATTACH
 * finds the listener by it later) and closed. */

static int fd_is_sock(int fd, int domain, int type)
{
  struct stat st;
  int v = 0;
  socklen_t l = sizeof(v);
  if (fd < 0 || fstat(fd, &st) || !S_ISSOCK(st.st_mode))
    return 0;
  if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &v, &l) || v != domain)
    return 0;
  l = sizeof(v);
  return !getsockopt(fd, SOL_SOCKET, SO_TYPE, &v, &l) && v == type;
}

/* one end of a pair a tund made: a unix stream socket whose creator had our uid */
static int fd_is_tund_pair(int fd)
{
  struct ucred cr;
  socklen_t l = sizeof(cr);
  return fd_is_sock(fd, AF_UNIX, SOCK_STREAM) && !getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &l) &&
         l == sizeof(cr) && cr.uid == geteuid();
}

/* a memfd a tund made for a socket: sealed, sized, mapped; NULL or the
 * mapping.  The program can write the header at any time, so the layout is
 * checked on a copy (*lay), and only the copy's values are used after. */
static struct enoshm *relisten_map(int memfd, size_t *len, struct enoshm *lay)
{
  struct stat st;
  int seals = fcntl(memfd, F_GET_SEALS);
  if (fstat(memfd, &st) || !S_ISREG(st.st_mode) || seals < 0 ||
      (seals & (F_SEAL_SHRINK | F_SEAL_GROW)) != (F_SEAL_SHRINK | F_SEAL_GROW))
    return NULL;
  if ((uint64_t)st.st_size < ENOSHM_HDR_SIZE + 2ull * ENOSHM_RING_MIN ||
      (uint64_t)st.st_size > ENOSHM_HDR_SIZE + 2ull * ENOSHM_RING_MAX)
    return NULL;
  void *p = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
  if (p == MAP_FAILED)
    return NULL;
  memcpy(lay, p, sizeof(*lay));
  if (!enoshm_header_ok(lay, (size_t)st.st_size)) {
    munmap(p, (size_t)st.st_size);
    return NULL;
  }
  *len = (size_t)st.st_size;
  return p;
}

/* the kernel listener: listening TCP of the family, on port */
static int kfd_ok(int kfd, int domain, uint16_t port)
{
  int v = 0;
  socklen_t l = sizeof(v);
  struct sockaddr_storage ss;
  socklen_t sl = sizeof(ss);
  if (!fd_is_sock(kfd, domain, SOCK_STREAM))
    return 0;
  if (getsockopt(kfd, SOL_SOCKET, SO_PROTOCOL, &v, &l) || v != IPPROTO_TCP)
    return 0;
  l = sizeof(v);
  if (getsockopt(kfd, SOL_SOCKET, SO_ACCEPTCONN, &v, &l) || v != 1)
    return 0;
  if (getsockname(kfd, (struct sockaddr *)&ss, &sl) || ss.ss_family != domain)
    return 0;
  uint16_t p = domain == AF_INET ? ntohs(((struct sockaddr_in *)&ss)->sin_port)
                                 : ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
  return p == port;
}

int conn_relisten(pid_t pid, uint64_t want_id, const struct enoipc_relisten *rq, const uint8_t *opts,
                  uint32_t opts_len, int pfd, int tfd, int memfd, int kfd, uint64_t *id)
{
  int err = EINVAL;
  struct enoshm *shm = NULL;
  size_t len = 0;
  struct stat pst;
  uint64_t cookie = 0;
  socklen_t cl = sizeof(cookie);
  *id = 0;
  const char *bad = (rq->domain != AF_INET && rq->domain != AF_INET6) || rq->addr.port == 0
                        ? "no address family or port"
                    : !fd_is_tund_pair(pfd) || fstat(pfd, &pst) ? "the program's end is not a pair end tund made"
                    : !fd_is_tund_pair(tfd)                     ? "tund's end is not a pair end tund made"
                    : kfd >= 0 && !kfd_ok(kfd, rq->domain, rq->addr.port)
                        ? "the kernel socket is not a TCP listener on the port"
                        : NULL;
  if (bad) {
    tund_log_limited(LOG_WARN_, "RELISTEN from pid %d refused: %s", (int)pid, bad);
    goto fail;
  }
  if (getsockopt(pfd, SOL_SOCKET, SO_COOKIE, &cookie, &cl) || cl != sizeof(cookie))
    cookie = 0;
  /* already back (another process that holds it asked first) */
  for (struct conn *c = conn_first(); c; c = c->next)
    if (!c->dead && c->kind == CK_LISTENER && c->p_ino == pst.st_ino && c->p_cookie == cookie) {
      *id = c->id;
      err = 0;
      goto fail;               /* (closes what we were given) */
    }
  static struct enoshm lay;    /* the header as checked (relisten_map) */
  if (!(shm = relisten_map(memfd, &len, &lay))) {
    tund_log_limited(LOG_WARN_, "RELISTEN from pid %d refused: the memory is not a sealed memfd of a "
                     "socket's size with a sound header", (int)pid);
    goto fail;
  }
  uint32_t queued_sent = shm->st.accepted;   /* records the old tund wrote */
  struct conn *c = conn_adopt(rq->domain, want_id, tfd, memfd, shm, len, &lay, &err);
  if (!c)
    goto fail;
  tfd = memfd = -1;            /* c's now */
  shm = NULL;
  err = 0;
  c->p_ino = pst.st_ino;
  c->p_cookie = cookie;
  c->pid = pid;
  c->kind = CK_NEW;
  c->v6only = rq->v6only != 0;
  c->reuseaddr = rq->reuseaddr != 0;
  c->keepalive = rq->keepalive != 0;
  c->nodelay = rq->nodelay != 0;
  c->linger0 = rq->linger0 != 0;
  if (rq->keep_idle >= 1 && rq->keep_idle <= 32767)
    c->keep_idle = rq->keep_idle * 1000u;
  if (rq->keep_intvl >= 1 && rq->keep_intvl <= 32767)
    c->keep_intvl = rq->keep_intvl * 1000u;
  if (rq->keep_cnt >= 1 && rq->keep_cnt <= 32767)
    c->keep_cnt = rq->keep_cnt;
  /* the program's options (ctl_req_parse checked their shape) */
  for (uint32_t off = 0; off < opts_len;) {
    struct enoipc_opt o;
    memcpy(&o, opts + off, sizeof(o));
    if ((err = conn_setopt(c, o.level, o.name, opts + off + sizeof(o), o.len)))
      break;
    off += (uint32_t)sizeof(o) + o.len;
  }
  struct enoipc_addr bound;
  const char *step = "an option";
  if (!err) {
    step = "bind";
    err = conn_bind(c, &rq->addr, kfd >= 0, &bound);
  }
  if (!err) {
    step = "listen";
    err = conn_listen(c, rq->backlog, kfd);
    kfd = -1;                  /* conn_listen's now, whatever it said */
  }
  if (err) {
    tund_log_limited(LOG_WARN_, "listener on port %u of pid %d could not be made again: %s (at %s)",
                     (unsigned)rq->addr.port, (int)pid, strerror(err), step);
    conn_abort(c, err);
    goto fail;
  }
  /* what the old tund handed to the program's end and it has not taken
   * counts against the backlog (listener_queued) */
  c->acc_sent = queued_sent;
  c->st.accepted = queued_sent;
  conn_publish(c);
  *id = c->id;
  log_info("listener on port %u of pid %d taken over from a tund before us (connection %llu)",
           (unsigned)rq->addr.port, (int)pid, (unsigned long long)c->serial);
  close(pfd);
  return 0;
fail:
  if (shm)
    munmap(shm, len);
  close(pfd);
  if (tfd >= 0)
    close(tfd);
  if (memfd >= 0)
    close(memfd);
  if (kfd >= 0)
    close(kfd);
  return err;
}
