/*
 * tund/listener.c — listening sockets: the accept queue (records with the
 * new connection's descriptors written to the listener's own pair, and
 * those waiting in tund while the program's backlog is full), admitting a
 * SYN (backlog, descriptors), and the program's kernel listener on the same
 * port, whose connections come out of the same accept().
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
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
