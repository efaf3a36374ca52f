/*
 * shim/io.c — reading and writing through the rings, with the readiness
 * hand-shake of enoshim/shm.h (model: tests/spin/readiness.pml).
 *
 * Blocking is done with the kernel on our socketpair end, so that the fd's own
 * O_NONBLOCK, SO_RCVTIMEO/SO_SNDTIMEO and the signal rules (EINTR, SA_RESTART)
 * are exactly the kernel's:
 *   read side:  read() of one byte of tund's grant waits for it;
 *   write side: the end's tiny send buffer is filled, and one more write()
 *               of the filler blocks until tund drains it (when the ring has
 *               room).
 * On an established socket read(), write(), readv(), writev(), recv() and
 * send() without flags, and the program's own poll/select/epoll waits, make
 * no other system calls than read, write, poll and futex (the shared locks):
 * the ones a sandboxed child keeps (OpenSSH's seccomp filter allows nothing
 * else of the kind: no recvfrom, sendto, sendmsg, fcntl, ioctl, tgkill).  A
 * flag the program asked for (MSG_DONTWAIT, MSG_NOSIGNAL) is honoured with
 * send() where write() cannot say it.
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

/* ---- the program's end of the pair ---------------------------------------------- */

/* Write filler to our end of the pair, declared first (shm.h p2t_decl): tund
 * treats bytes it drains beyond the declared count as written around the
 * shim and fails the connection (tund/progend.c conn_drain_t).  The count is
 * raised before the write and lowered after a short one, so it is never
 * below what the pair received.  flags: the program's MSG_DONTWAIT and
 * MSG_NOSIGNAL, which only send() can say; without them a plain write(). */
static ssize_t pair_write(int fd, struct shim_sock *s, const void *buf, size_t n, int flags)
{
  struct enoshm *m = s->shm;
  ssize_t r;
  atomic_fetch_add(&m->p2t_decl, n);
  flags &= MSG_DONTWAIT | MSG_NOSIGNAL;
  r = flags ? real.send(fd, buf, n, flags) : real.write(fd, buf, n);
  if (r < (ssize_t)n) {
    int e = errno;
    atomic_fetch_sub(&m->p2t_decl, n - (size_t)(r > 0 ? r : 0));
    errno = e;
  }
  return r;
}

/* Filler comes in pieces of at most FILL_CHUNK bytes, each one sk_buff (a
 * unix stream send takes up to sk_sndbuf/2 - 64 bytes per buffer, and our
 * end's send buffer is the smallest, SOCK_MIN_SNDBUF >= 4608 bytes): a write
 * of one piece either goes in at once or, the buffer being full, blocks
 * until tund drains and then goes in whole.  It is never cut short by a
 * signal, which a write of several buffers would be (returning a count, not
 * EINTR). */
#define FILL_CHUNK 2048
static const char filler[16384];    /* FILL_CHUNK, or all of it where nothing blocks */

/* Make our end unwritable without waiting (connect): fill its send buffer.
 * A non-blocking send on a unix stream socket queues what fits and stops
 * only when no more does, so a short count means full: one call, not a
 * second just to see EAGAIN (our end's buffer is far smaller than this). */
void io_fill(int fd, struct shim_sock *s)
{
  for (int i = 0; i < 16; i++) {
    ssize_t n = pair_write(fd, s, filler, sizeof(filler), MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n < (ssize_t)sizeof(filler))
      break;
  }
}

/* Block (per the fd's own O_NONBLOCK and SO_SNDTIMEO) until tund drains the
 * filler.  Returns 0 when woken, -1 with errno (EAGAIN, EINTR, EPIPE). */
int io_wait_writable(int fd, struct shim_sock *s, int flags)
{
  ssize_t n = pair_write(fd, s, "w", 1, MSG_NOSIGNAL | (flags & MSG_DONTWAIT));
  return n == 1 ? 0 : -1;
}

/* Tell tund something it asked for happened (a `wants` bit was set): on the
 * doorbell connection (ctl.c bell_ring), never on the socket's own end (see
 * shm.h).  Without a usable one (none could be made, or it reaches a tund
 * that is gone): nothing if the socket's tund is gone too (its end hung up:
 * no one to wake, and in a sandbox the calls below are not allowed), else
 * the old ways: the control connection when it is free, else a byte on our
 * end, else a blocking control message (which connects anew if need be). */
static void ring_doorbell(int fd, struct shim_sock *s)
{
  if (bell_ring(s->id) == 0)
    return;
  struct pollfd p = { .fd = fd, .events = 0 };
  if (poll(&p, 1, 0) == 1 && (p.revents & (POLLHUP | POLLERR)))
    return;
  if (ctl_try_doorbell(s->id) == 0)
    return;
  if (pair_write(fd, s, "k", 1, MSG_DONTWAIT | MSG_NOSIGNAL) != 1)
    ctl_kick(s->id);       /* our end is full of filler: use the control socket */
}

void sock_doorbell(int fd, struct shim_sock *s) { ring_doorbell(fd, s); }

/* ---- tund's grant --------------------------------------------------------------- */

/* Wait for tund's grant and take one byte of it: read() blocks per the fd's
 * own flags, timeouts and signal rules; MSG_DONTWAIT looks with poll() first
 * (under rx_lock only tund adds bytes to our end, so a readable end makes
 * the read not block).  1: taken; 0: tund shut its end (EOF published, or
 * tund is gone); -1 with errno. */
static ssize_t tok_wait(int fd, struct shim_sock *s, int flags)
{
  char b;
  if (flags & MSG_DONTWAIT) {
    struct pollfd p = { .fd = fd, .events = POLLIN };
    int r = poll(&p, 1, 0);
    if (r < 0)
      return -1;
    if (r == 0) {
      errno = EAGAIN;
      return -1;
    }
  }
  /* counted before the read: a process killed in between leaves the count
   * one too high (the fd may stay readable for nothing), never one too low
   * (tok_drain would wait for a byte that is not coming) */
  s->shm->tok_taken++;
  ssize_t n = real.read(fd, &b, 1);
  if (n != 1)
    s->shm->tok_taken--;
  return n;
}

/* Read the k bytes of a grant still in our end.  They were written (or are
 * being written: tund won its CAS and sends next) before anything newer, so
 * exactly these come out first.  Short waits only: EAGAIN (O_NONBLOCK, a
 * timeout) and EINTR just look again; a grant that does not come within
 * seconds (tund stopped; a header scribbled on) is given up rather than
 * waited for under rx_lock for ever (at worst the fd is readable for
 * nothing later). */
static void tok_drain(int fd, unsigned k)
{
  char b[ENOSHM_GRANT];
  int idle = 0;
  if (k > sizeof(b))
    k = sizeof(b);
  while (k > 0 && idle < 3) {
    ssize_t n = real.read(fd, b, k);
    if (n > 0) {
      k -= (unsigned)n;
      continue;
    }
    if (n == 0)
      return;          /* tund shut its end (EOF) or is gone: readable anyway */
    if (errno == EINTR)
      continue;
    if (errno != EAGAIN)
      return;
    struct pollfd p = { .fd = fd, .events = POLLIN };
    if (poll(&p, 1, 1000) == 0)
      idle++;
  }
}

/* The ring is empty (under rx_lock): give back the grant that made the fd
 * readable, if there is one (shm.h).  Leaves the fd readable exactly when
 * the ring has bytes, EOF or an error to report.  Returns 1 when it kept the
 * grant because something came meanwhile (the caller looks again before any
 * wait: a wait takes a byte of a grant only while tok_taken is 0), else 0. */
static int rx_settle(int fd, struct shim_sock *s)
{
  struct enoshm *m = s->shm;
  if (atomic_load(&m->rx_tok) != 1)
    return 0;
  /* Bytes that came in since the caller saw the ring empty still have the
   * grant standing for them: keep it (giving it back and taking it again
   * would cost tund a wake-up). */
  if (atomic_load_explicit(&m->rx_prod, memory_order_acquire) !=
      atomic_load_explicit(&m->rx_cons, memory_order_relaxed))
    return 1;
  atomic_store(&m->rx_tok, 0);
  atomic_thread_fence(memory_order_seq_cst);
  uint64_t prod = atomic_load_explicit(&m->rx_prod, memory_order_acquire);
  uint64_t cons = atomic_load_explicit(&m->rx_cons, memory_order_relaxed);
  struct enoshm_status st;
  enoshm_status_read(m, &st);
  if (prod != cons || (st.flags & (ENOSHM_F_RX_EOF | ENOSHM_F_DEAD))) {
    uint32_t exp = 0;
    if (atomic_compare_exchange_strong(&m->rx_tok, &exp, 1))
      return 1;     /* tund saw the old flag and sent nothing: the rest of our grant stands for it */
  }
  /* Not needed any more, or tund won the flag and sends a new grant (after
   * the rest of ours). */
  unsigned taken = m->tok_taken < ENOSHM_GRANT ? m->tok_taken : ENOSHM_GRANT - 1;
  tok_drain(fd, ENOSHM_GRANT - taken);
  m->tok_taken = 0;
  return 0;
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
          (void)rx_settle(fd, s);
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
    if (rx_settle(fd, s) || atomic_load_explicit(&m->rx_prod, memory_order_acquire) != prod)
      continue;       /* bytes (or EOF) came while we settled: look again */
    /* wait for the grant: blocking per the fd's flags, timeouts and signals */
    ssize_t n = tok_wait(fd, s, flags);
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
      /* tund died: a reset, said once (then end of file, as the kernel) */
      if (got) {
        ret = (ssize_t)got;
      } else if (s->tund_gone) {
        ret = 0;
      } else {
        s->tund_gone = 1;
        errno = ECONNRESET;
        ret = -1;
      }
      goto out;
    }
  }
out:
  pthread_mutex_unlock(&m->rx_lock);
  return ret;
}

/* SIGPIPE as the kernel raises it for a write on a broken TCP connection:
 * to the calling thread, by a write() on a pipe nobody reads (ctl.c), which
 * works where tgkill is not allowed (a sandbox). */
void shim_raise_sigpipe(void)
{
  int e = errno;
  if (shim_epipe_write() < 0)
    pthread_kill(pthread_self(), SIGPIPE);
  errno = e;
}

/* Why writing is impossible now: 0 = go ahead, 1 = wait (connecting), or -1
 * with errno set.  sent > 0: this call already wrote bytes and will return
 * their count, so, as Linux's tcp_sendmsg (which reports an error only when
 * it copied nothing), leave the connection's error pending for the next call
 * and raise no SIGPIPE. */
static int tx_state(struct shim_sock *s, int flags, size_t sent)
{
  struct enoshm_status st;
  if (__builtin_expect(s->tund_gone, 0) && !sent) {
    if (!(flags & MSG_NOSIGNAL))
      shim_raise_sigpipe();      /* tund died and that was reported: EPIPE */
    errno = EPIPE;
    return -1;
  }
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

/* The ring is full, or a connect is under way: one piece of filler.  The
 * first pieces of an episode fill our end's send buffer at once; the piece
 * that finds it full blocks, per the fd's own O_NONBLOCK, SO_SNDTIMEO and
 * signal rules (or not at all with MSG_DONTWAIT), until tund drains it —
 * that is the wait.  Either way the caller looks at the ring again.
 * 0, or -1 with errno: EAGAIN (non-blocking, or the timeout), EINTR, EPIPE
 * or ECONNRESET (tund's end is gone: see tx_fill_failed). */
static int tx_fill_step(int fd, struct shim_sock *s, int flags, unsigned *step)
{
  size_t n = (flags & MSG_DONTWAIT) ? sizeof(filler) : *step < 2 ? FILL_CHUNK : 1;
  (*step)++;
  return pair_write(fd, s, filler, n, flags) > 0 ? 0 : -1;
}

/* After a failed filler write: 1 if the connection ended (tund released it
 * and closed its end; the caller reports the connection's own error), 0
 * otherwise, with errno ECONNRESET if tund died (that is what a reset
 * connection says; the write may have raised SIGPIPE, as the kernel does
 * for a write on a connection already known broken). */
static int tx_fill_failed(struct shim_sock *s)
{
  if (errno != EPIPE && errno != ECONNRESET)
    return 0;
  struct enoshm_status st;
  enoshm_status_read(s->shm, &st);
  if (st.state == ENOSHM_S_CLOSED || (st.flags & ENOSHM_F_DEAD))
    return 1;
  s->tund_gone = 1;            /* reported now: EPIPE from here on */
  errno = ECONNRESET;
  return 0;
}

ssize_t io_send(int fd, struct shim_sock *s, const struct iovec *iov, int iovcnt, int flags)
{
  struct enoshm *m = s->shm;
  size_t want = iov_total(iov, iovcnt);
  size_t put = 0;
  unsigned step = 0;
  ssize_t ret;

  if (s->kind == SK_LISTENER) {
    /* Linux: a send on a listening TCP socket is EPIPE, with SIGPIPE
     * (sk_stream_wait_connect) */
    if (!(flags & MSG_NOSIGNAL))
      shim_raise_sigpipe();
    errno = EPIPE;
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
        step = 0;
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
    /* ring full (or connect in progress): fill our end, then wait */
    if (tx_fill_step(fd, s, flags, &step) < 0) {
      if (tx_fill_failed(s))
        continue;      /* report the connection's own error next turn */
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
  unsigned step = 0;
  ssize_t ret;
  off_t pos = off ? *off : 0;

  if (s->kind == SK_LISTENER) {
    shim_raise_sigpipe();    /* as a send (io_send) */
    errno = EPIPE;
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
          step = 0;
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
    if (tx_fill_step(fd, s, 0, &step) < 0) {
      if (tx_fill_failed(s))
        continue;
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
