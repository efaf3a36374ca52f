/*
 * shim/io.c — reading and writing through the rings, with the readiness
 * hand-shake of enoshim/shm.h (model: tests/spin/readiness.pml).
 *
 * Blocking is done with the kernel on our socketpair end, so that the fd's own
 * O_NONBLOCK, SO_RCVTIMEO/SO_SNDTIMEO and the signal rules (EINTR, SA_RESTART)
 * are exactly the kernel's:
 *   read side:  recv(fd, 1 byte, MSG_PEEK) waits for tund's token;
 *   write side: the end's tiny send buffer is filled, and one more blocking
 *               send() waits until tund drains it (when the ring has room).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "shim.h"

static void lock_robust(pthread_mutex_t *m)
{
  int r = pthread_mutex_lock(m);
  if (r == EOWNERDEAD)
    pthread_mutex_consistent(m);   /* a process died holding it: the ring is still consistent */
}

/* Tell tund something it asked for happened (a `wants` bit was set).
 *
 * On the control connection when we can, not on the socket's own end: a
 * byte sent on our end is charged to it, and when tund reads the byte the
 * kernel's unix_write_space() wakes every task asleep on that end.  A
 * blocking recv() waiting for tund's token (below) sleeps there with no
 * event filter, so each doorbell woke it for nothing: two context switches
 * per request-reply on this guest, where a switch is the dearest thing on
 * the path.  Nobody sleeps on the control connection between requests. */
static void ring_doorbell(int fd, struct shim_sock *s)
{
  if (ctl_try_doorbell(s->id) == 0)
    return;
  if (real.send(fd, "k", 1, MSG_DONTWAIT | MSG_NOSIGNAL) != 1)
    ctl_kick(s->id, 0);    /* our end is full of filler: use the control socket */
}

/* The ring is empty: consume the token that made the fd readable (exactly one
 * byte), then re-check; if bytes slipped in meanwhile, restore readability. */
static void rx_settle(int fd, struct shim_sock *s)
{
  struct enoshm *m = s->shm;
  if (atomic_load(&m->rx_tok) != 1)
    return;
  /* Bytes that came in since the caller saw the ring empty still have the
   * token standing for them: keep it.  Taking it now would mean asking tund
   * for another one (a control message and a wake-up of tund), which with
   * many busy streams happened hundreds of times a second. */
  if (atomic_load_explicit(&m->rx_prod, memory_order_acquire) !=
      atomic_load_explicit(&m->rx_cons, memory_order_relaxed))
    return;
  char b;
  for (;;) {
    ssize_t n = real.recv(fd, &b, 1, MSG_DONTWAIT);
    if (n == 1)
      break;
    if (n == 0)
      return;          /* tund shut its end: EOF or gone; readable anyway */
    if (errno == EINTR)
      continue;
    if (errno != EAGAIN)
      return;
    /* tund set the flag and is about to write the token: wait for it */
    struct pollfd p = { .fd = fd, .events = POLLIN };
    if (poll(&p, 1, 1000) == 0 && atomic_load(&m->rx_tok) != 1)
      return;
  }
  atomic_store(&m->rx_tok, 0);
  atomic_thread_fence(memory_order_seq_cst);
  uint64_t prod = atomic_load_explicit(&m->rx_prod, memory_order_acquire);
  uint64_t cons = atomic_load_explicit(&m->rx_cons, memory_order_relaxed);
  struct enoshm_status st;
  enoshm_status_read(m, &st);
  if (prod != cons || (st.flags & (ENOSHM_F_RX_EOF | ENOSHM_F_DEAD))) {
    uint32_t exp = 0;
    if (atomic_compare_exchange_strong(&m->rx_tok, &exp, 1))
      ctl_kick(s->id, 1);   /* tund saw the old flag and sent nothing */
  }
}

static size_t iov_total(const struct iovec *iov, int n)
{
  size_t t = 0;
  for (int i = 0; i < n; i++)
    t += iov[i].iov_len;
  return t;
}

/* Copy `len` bytes out of the ring span starting at offset `off` into the iovec
 * array, starting at iovec byte position `pos`. */
static void span_to_iov(const struct enoshm_span *sp, size_t len, const struct iovec *iov, int iovcnt,
                        size_t pos)
{
  size_t soff = 0;
  for (int i = 0; i < iovcnt && len; i++) {
    if (pos >= iov[i].iov_len) {
      pos -= iov[i].iov_len;
      continue;
    }
    size_t k = iov[i].iov_len - pos;
    if (k > len)
      k = len;
    enoshm_span_read(sp, soff, (uint8_t *)iov[i].iov_base + pos, k);
    soff += k;
    len -= k;
    pos = 0;
  }
}

static void iov_to_span(const struct enoshm_span *sp, size_t len, const struct iovec *iov, int iovcnt,
                        size_t pos)
{
  size_t soff = 0;
  for (int i = 0; i < iovcnt && len; i++) {
    if (pos >= iov[i].iov_len) {
      pos -= iov[i].iov_len;
      continue;
    }
    size_t k = iov[i].iov_len - pos;
    if (k > len)
      k = len;
    enoshm_span_write(sp, soff, (const uint8_t *)iov[i].iov_base + pos, k);
    soff += k;
    len -= k;
    pos = 0;
  }
}

ssize_t io_recv(int fd, struct shim_sock *s, const struct iovec *iov, int iovcnt, int flags)
{
  struct enoshm *m = s->shm;
  size_t want = iov_total(iov, iovcnt);
  size_t got = 0;
  ssize_t ret;

  if (s->kind == SK_LISTENER) {
    errno = ENOTCONN;
    return -1;
  }
  if (flags & MSG_OOB) {
    errno = EINVAL;     /* urgent data is not delivered out of band */
    return -1;
  }
  if (want == 0)
    return 0;
  lock_robust(&m->rx_lock);
  for (;;) {
    uint64_t prod = atomic_load_explicit(&m->rx_prod, memory_order_acquire);
    uint64_t cons = atomic_load_explicit(&m->rx_cons, memory_order_relaxed);
    uint64_t avail = prod - cons;
    if (avail > s->rx_size) {
      errno = EIO;       /* cannot happen unless the mapping was scribbled on */
      ret = -1;
      goto out;
    }
    if (s->shut_rd) {
      ret = (ssize_t)got;
      goto out;
    }
    if (avail > 0) {
      size_t n = want - got < avail ? want - got : (size_t)avail;
      struct enoshm_span sp;
      enoshm_span_make(&sp, s->rx_base, s->rx_size, cons, n);
      span_to_iov(&sp, n, iov, iovcnt, got);
      if (!(flags & MSG_PEEK)) {
        atomic_store_explicit(&m->rx_cons, cons + n, memory_order_release);
        got += n;
        /* Store-load pair with tund (it sets WANT_RXSPACE, then reads
         * rx_cons): without a full fence each side may miss the other's
         * store and tund waits for a wake-up nobody sends. */
        atomic_thread_fence(memory_order_seq_cst);
        if (atomic_load_explicit(&m->wants, memory_order_relaxed) & ENOSHM_WANT_RXSPACE &&
            (atomic_fetch_and(&m->wants, ~ENOSHM_WANT_RXSPACE) & ENOSHM_WANT_RXSPACE))
          ring_doorbell(fd, s);
        if (cons + n == prod)
          rx_settle(fd, s);
      } else {
        ret = (ssize_t)n;
        goto out;
      }
      if (got == want || !(flags & MSG_WAITALL)) {
        ret = (ssize_t)got;
        goto out;
      }
      continue;
    }
    /* nothing buffered */
    struct enoshm_status st;
    sock_status(s, &st);
    if (atomic_load_explicit(&m->rx_prod, memory_order_acquire) != prod)
      continue;       /* bytes arrived while we looked */
    if (st.flags & ENOSHM_F_RX_EOF) {
      ret = (ssize_t)got;
      goto out;
    }
    if (st.state == ENOSHM_S_CLOSED) {
      if (got) {
        ret = (ssize_t)got;
        goto out;
      }
      if (st.error && !s->err_reported) {
        s->err_reported = 1;
        errno = st.error;
        ret = -1;
      } else {
        ret = 0;
      }
      goto out;
    }
    if (st.state < ENOSHM_S_CONNECTING) {
      errno = ENOTCONN;
      ret = -1;
      goto out;
    }
    if (got && (flags & MSG_DONTWAIT)) {
      ret = (ssize_t)got;
      goto out;
    }
    rx_settle(fd, s);
    /* wait for the token: blocking per the fd's flags, timeouts and signals */
    char b;
    ssize_t n = real.recv(fd, &b, 1, MSG_PEEK | (flags & MSG_DONTWAIT));
    if (n < 0) {
      if (got) {
        ret = (ssize_t)got;
        goto out;
      }
      ret = -1;
      goto out;
    }
    if (n == 0) {
      /* our end says EOF: either tund published EOF (checked next turn) or
       * tund is gone */
      enoshm_status_read(m, &st);
      if (atomic_load_explicit(&m->rx_prod, memory_order_acquire) != prod ||
          (st.flags & ENOSHM_F_RX_EOF) || st.state == ENOSHM_S_CLOSED)
        continue;
      errno = ECONNRESET;    /* tund died */
      ret = got ? (ssize_t)got : -1;
      goto out;
    }
  }
out:
  pthread_mutex_unlock(&m->rx_lock);
  return ret;
}

void shim_raise_sigpipe(void)
{
  pthread_kill(pthread_self(), SIGPIPE);
}

/* Why writing is impossible now: 0 = go ahead, 1 = wait (connecting), or -1
 * with errno set.  sent > 0: this call already wrote bytes and will return
 * their count, so, as Linux's tcp_sendmsg (which reports an error only when
 * it copied nothing), leave the connection's error pending for the next call
 * and raise no SIGPIPE. */
static int tx_state(struct shim_sock *s, int flags, size_t sent)
{
  struct enoshm_status st;
  sock_status(s, &st);
  if (st.state == ENOSHM_S_ESTABLISHED && !(st.flags & ENOSHM_F_TX_SHUT) && !s->shut_wr)
    return 0;
  if (st.state == ENOSHM_S_CONNECTING)
    return 1;
  if (sent)
    return -1;
  if (st.state == ENOSHM_S_CLOSED && st.error && !s->err_reported) {
    s->err_reported = 1;
    errno = st.error;
    if (st.error == EPIPE && !(flags & MSG_NOSIGNAL))
      shim_raise_sigpipe();      /* Linux raises it with every EPIPE */
    return -1;
  }
  /* never connected, closed, or shut down for writing: Linux says EPIPE
   * (and SIGPIPE) for all of them on a TCP socket */
  if (!(flags & MSG_NOSIGNAL))
    shim_raise_sigpipe();
  errno = EPIPE;
  return -1;
}

ssize_t io_send(int fd, struct shim_sock *s, const struct iovec *iov, int iovcnt, int flags)
{
  struct enoshm *m = s->shm;
  size_t want = iov_total(iov, iovcnt);
  size_t put = 0;
  ssize_t ret;

  if (s->kind == SK_LISTENER) {
    errno = ENOTCONN;
    return -1;
  }
  if (flags & MSG_OOB) {
    errno = EOPNOTSUPP;
    return -1;
  }
  lock_robust(&m->tx_lock);
  for (;;) {
    int t = tx_state(s, flags, put);
    if (t < 0) {
      ret = put ? (ssize_t)put : -1;
      goto out;
    }
    if (t == 0) {
      if (want == 0) {
        ret = 0;
        goto out;
      }
      uint64_t prod = atomic_load_explicit(&m->tx_prod, memory_order_relaxed);
      uint64_t cons = atomic_load_explicit(&m->tx_cons, memory_order_acquire);
      uint64_t used = prod - cons;
      uint64_t room = used <= s->tx_size ? s->tx_size - used : 0;
      if (room > 0) {
        size_t n = want - put < room ? want - put : (size_t)room;
        struct enoshm_span sp;
        enoshm_span_make(&sp, s->tx_base, s->tx_size, prod, n);
        iov_to_span(&sp, n, iov, iovcnt, put);
        atomic_store_explicit(&m->tx_prod, prod + n, memory_order_release);
        put += n;
        atomic_thread_fence(memory_order_seq_cst);   /* store-load pair, see io_recv */
        if (atomic_fetch_and(&m->wants, ~ENOSHM_WANT_TX) & ENOSHM_WANT_TX)
          ring_doorbell(fd, s);
        if (put == want) {
          ret = (ssize_t)put;
          goto out;
        }
        continue;
      }
    }
    /* ring full (or connect in progress): become unwritable, then wait */
    io_fill(fd);
    if (t == 0) {
      uint64_t prod = atomic_load_explicit(&m->tx_prod, memory_order_relaxed);
      uint64_t cons = atomic_load_explicit(&m->tx_cons, memory_order_acquire);
      if (prod - cons < s->tx_size)
        continue;      /* tund freed room meanwhile */
    }
    if (put && (flags & MSG_DONTWAIT)) {
      ret = (ssize_t)put;
      goto out;
    }
    if (io_wait_writable(fd, flags) < 0) {
      if (errno == EPIPE || errno == ECONNRESET) {
        struct enoshm_status st;
        enoshm_status_read(m, &st);
        if (st.state == ENOSHM_S_CLOSED || (st.flags & ENOSHM_F_DEAD))
          continue;    /* report the connection's own error next turn */
        errno = ECONNRESET;  /* tund died */
        if (!put && !(flags & MSG_NOSIGNAL))
          shim_raise_sigpipe();
      }
      ret = put ? (ssize_t)put : -1;
      goto out;
    }
  }
out:
  pthread_mutex_unlock(&m->tx_lock);
  return ret;
}

/* sendfile(): read the file straight into the tx ring. */
ssize_t io_sendfile(int fd, struct shim_sock *s, int in_fd, off_t *off, size_t count)
{
  struct enoshm *m = s->shm;
  size_t put = 0;
  ssize_t ret;
  off_t pos = off ? *off : 0;

  if (s->kind == SK_LISTENER) {
    errno = ENOTCONN;
    return -1;
  }
  lock_robust(&m->tx_lock);
  for (;;) {
    int t = tx_state(s, 0, put);
    if (t < 0) {
      ret = put ? (ssize_t)put : -1;
      goto out;
    }
    if (t == 0) {
      if (put == count) {
        ret = (ssize_t)put;
        goto out;
      }
      uint64_t prod = atomic_load_explicit(&m->tx_prod, memory_order_relaxed);
      uint64_t cons = atomic_load_explicit(&m->tx_cons, memory_order_acquire);
      uint64_t used = prod - cons;
      uint64_t room = used <= s->tx_size ? s->tx_size - used : 0;
      if (room > 0) {
        size_t n = count - put < room ? count - put : (size_t)room;
        struct enoshm_span sp;
        enoshm_span_make(&sp, s->tx_base, s->tx_size, prod, n);
        size_t done = 0;
        for (int piece = 0; piece < 2 && done < n; piece++) {
          size_t k = sp.n[piece];
          if (!k)
            continue;
          ssize_t r = off ? pread(in_fd, sp.p[piece], k, pos + (off_t)done)
                          : real.read(in_fd, sp.p[piece], k);
          if (r < 0) {
            if (done == 0 && put == 0) {
              ret = -1;
              goto out;
            }
            break;
          }
          done += (size_t)r;
          if ((size_t)r < k)
            break;     /* end of file */
        }
        if (done) {
          atomic_store_explicit(&m->tx_prod, prod + done, memory_order_release);
          put += done;
          pos += (off_t)done;
          atomic_thread_fence(memory_order_seq_cst);
          if (atomic_fetch_and(&m->wants, ~ENOSHM_WANT_TX) & ENOSHM_WANT_TX)
            ring_doorbell(fd, s);
        }
        if (done < n) {     /* EOF or short read */
          ret = (ssize_t)put;
          goto out;
        }
        continue;
      }
    }
    io_fill(fd);
    if (t == 0) {
      uint64_t prod = atomic_load_explicit(&m->tx_prod, memory_order_relaxed);
      uint64_t cons = atomic_load_explicit(&m->tx_cons, memory_order_acquire);
      if (prod - cons < s->tx_size)
        continue;
    }
    if (io_wait_writable(fd, 0) < 0) {
      ret = put ? (ssize_t)put : -1;
      goto out;
    }
  }
out:
  pthread_mutex_unlock(&m->tx_lock);
  if (off && ret > 0)
    *off = pos;
  return ret;
}
