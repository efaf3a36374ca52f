/*
 * shim/splice.c — splice(2), recvmmsg(2) and sendmmsg(2) on our sockets.
 *
 * Without these the calls would reach the kernel with our socketpair end:
 * splice() out of it would hand the program tund's token bytes as data
 * (reads around the shim are not detected), and splice() or sendmmsg()
 * into it would be bytes written around the shim (tund resets the
 * connection, EIO).  Proxies use splice() between a socket and a pipe
 * (haproxy, some relays); recvmmsg/sendmmsg are rarer on TCP but legal.
 *
 * splice() is emulated with a bounce buffer: one of the two fds must be a
 * pipe (as the kernel requires; EINVAL otherwise).  The emulation never
 * loses a byte: it takes from one side no more than the other holds now,
 * and what it took it always hands in full to the other.  Blocking follows
 * Linux 6.18 (checked there with a TCP socket): the pipe side waits unless
 * SPLICE_F_NONBLOCK or the pipe's O_NONBLOCK; reading the socket waits per
 * the socket's O_NONBLOCK only (SPLICE_F_NONBLOCK does not make it
 * non-blocking); writing it per its O_NONBLOCK or SPLICE_F_NONBLOCK.
 * Offsets: none on the socket (EINVAL) nor on the pipe (ESPIPE), as the kernel.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shim.h"

#define SPLICE_CHUNK (64u << 10)

static int is_pipe(int fd)
{
  struct stat st;
  return fstat(fd, &st) == 0 && S_ISFIFO(st.st_mode);
}

static int fd_nonblocking(int fd)
{
  int fl = real.fcntl(fd, F_GETFL);
  return fl >= 0 && (fl & O_NONBLOCK);
}

/* bytes a pipe takes now without blocking */
static size_t pipe_room(int fd)
{
  int cap = real.fcntl(fd, F_GETPIPE_SZ);
  int queued = 0;
  if (cap <= 0 || ioctl(fd, FIONREAD, &queued) < 0 || queued < 0)
    return 0;
  return queued < cap ? (size_t)(cap - queued) : 0;
}

/* wait until fd can take more (POLLOUT), retrying on signals */
static void wait_out(int fd)
{
  struct pollfd p = { .fd = fd, .events = POLLOUT };
  while (poll(&p, 1, -1) < 0 && errno == EINTR)
    ;
}

/* all n bytes to the pipe (or file) out, whatever its blocking mode;
 * 0, or -1 with errno when out failed for good (EPIPE...) */
static int pipe_write_all(int out, const char *b, size_t n)
{
  while (n) {
    ssize_t w = real.write(out, b, n);
    if (w > 0) {
      b += w;
      n -= (size_t)w;
    } else if (w < 0 && errno == EAGAIN) {
      wait_out(out);
    } else if (!(w < 0 && errno == EINTR)) {
      return -1;
    }
  }
  return 0;
}

/* all n bytes to our socket; -1 with errno when the connection failed */
static int sock_write_all(int fd, struct shim_sock *s, const char *b, size_t n)
{
  while (n) {
    struct iovec iov = { (void *)b, n };
    ssize_t w = io_send(fd, s, &iov, 1, MSG_NOSIGNAL);
    if (w > 0) {
      b += w;
      n -= (size_t)w;
    } else if (w < 0 && errno == EAGAIN) {
      wait_out(fd);
    } else if (!(w < 0 && errno == EINTR)) {
      if (errno == EPIPE)
        shim_raise_sigpipe();
      return -1;
    }
  }
  return 0;
}

/* free room in our tx ring now */
static size_t ring_room(struct shim_sock *s)
{
  uint64_t prod = atomic_load_explicit(&s->shm->tx_prod, memory_order_relaxed);
  uint64_t cons = atomic_load_explicit(&s->shm->tx_cons, memory_order_acquire);
  uint64_t used = prod - cons;
  return used < s->tx_size ? (size_t)(s->tx_size - used) : 0;
}

/* The checks both directions share: the other fd a pipe, ours a stream,
 * no offset on the pipe.  The byte count to move (at most a buffer), or -1
 * with errno; 0: nothing asked. */
static ssize_t splice_args(struct shim_sock *s, int pipefd, const loff_t *pipe_off, size_t len)
{
  if (!is_pipe(pipefd) || s->kind == SK_LISTENER) {
    errno = EINVAL;
    return -1;
  }
  if (pipe_off) {
    errno = ESPIPE;
    return -1;
  }
  return (ssize_t)(len < SPLICE_CHUNK ? len : SPLICE_CHUNK);
}

/* our socket -> a pipe */
ssize_t io_splice_out(int fd, struct shim_sock *s, int out, loff_t *off_out, size_t len, unsigned flags)
{
  char buf[SPLICE_CHUNK];
  ssize_t want = splice_args(s, out, off_out, len);
  if (want <= 0)
    return want;
  size_t n = (size_t)want;
  /* as the kernel: the pipe's room first, waited for unless
   * SPLICE_F_NONBLOCK or the pipe's O_NONBLOCK */
  size_t room;
  while (!(room = pipe_room(out))) {
    if ((flags & SPLICE_F_NONBLOCK) || fd_nonblocking(out)) {
      errno = EAGAIN;
      return -1;
    }
    struct pollfd p = { .fd = out, .events = POLLOUT };
    if (poll(&p, 1, -1) < 0)
      return -1;               /* EINTR */
    if (p.revents & (POLLERR | POLLHUP)) {
      shim_raise_sigpipe();    /* nobody reads the pipe: as the kernel */
      errno = EPIPE;
      return -1;
    }
  }
  if (n > room)
    n = room;
  struct iovec iov = { buf, n };
  ssize_t r = io_recv(fd, s, &iov, 1, 0);   /* the socket's own O_NONBLOCK only, as the kernel */
  if (r <= 0)
    return r;
  /* taken from the ring: it goes to the pipe whole */
  if (pipe_write_all(out, buf, (size_t)r) < 0) {
    int e = errno;
    shim_log("splice: %zd bytes read from socket fd %d could not be written to fd %d (%s): the "
             "connection's data is cut there", r, fd, out, strerror(e));
    errno = e;
    return -1;
  }
  return r;
}

/* a pipe -> our socket */
ssize_t io_splice_in(int fd, struct shim_sock *s, int in, loff_t *off_in, size_t len, unsigned flags)
{
  char buf[SPLICE_CHUNK];
  ssize_t want = splice_args(s, in, off_in, len);
  if (want <= 0)
    return want;
  size_t n = (size_t)want;
  /* as the kernel: data in the pipe first, waited for unless
   * SPLICE_F_NONBLOCK or the pipe's O_NONBLOCK; none and no writer left: 0 */
  struct pollfd pp = { .fd = in, .events = POLLIN };
  int pipe_nb = (flags & SPLICE_F_NONBLOCK) || fd_nonblocking(in);
  for (;;) {
    int q = poll(&pp, 1, pipe_nb ? 0 : -1);
    if (q < 0)
      return -1;               /* EINTR */
    if (q > 0)
      break;
    errno = EAGAIN;
    return -1;
  }
  if (!(pp.revents & POLLIN))
    return 0;                  /* POLLHUP alone: empty and no writer */
  /* then the socket, per its O_NONBLOCK and SPLICE_F_NONBLOCK: no more than
   * the ring takes now, so that what leaves the pipe goes in whole */
  if ((flags & SPLICE_F_NONBLOCK) || fd_nonblocking(fd)) {
    struct enoshm_status st;
    sock_status(s, &st);
    size_t room = ring_room(s);
    if (st.state != ENOSHM_S_ESTABLISHED || s->shut_wr || (st.flags & ENOSHM_F_TX_SHUT)) {
      struct iovec iov = { buf, 0 };
      return io_send(fd, s, &iov, 1, MSG_DONTWAIT);   /* its error (or EAGAIN while connecting) */
    }
    if (!room) {
      errno = EAGAIN;
      return -1;
    }
    if (n > room)
      n = room;
  }
  ssize_t r = real.read(in, buf, n);   /* EAGAIN: another reader took it first */
  if (r <= 0)
    return r;
  /* taken from the pipe: it goes to the socket whole */
  if (sock_write_all(fd, s, buf, (size_t)r) < 0)
    return -1;
  return r;
}

/* recvmmsg on a TCP socket: one recvmsg per entry; MSG_WAITFORONE makes
 * every one after the first non-blocking; the timeout is ignored (as
 * Linux only checks it between messages, a stream socket's first message
 * decides). */
int io_recvmmsg(int fd, struct shim_sock *s, struct mmsghdr *v, unsigned n, int flags)
{
  unsigned i;
  if (n > UIO_MAXIOV)
    n = UIO_MAXIOV;
  for (i = 0; i < n; i++) {
    struct msghdr *m = &v[i].msg_hdr;
    if (m->msg_iovlen > IOV_MAX) {
      errno = EINVAL;
      break;
    }
    int f = flags & ~MSG_WAITFORONE;
    if (i > 0 && (flags & MSG_WAITFORONE))
      f |= MSG_DONTWAIT;
    ssize_t r = io_recv(fd, s, m->msg_iov, (int)m->msg_iovlen, f);
    if (r < 0)
      break;
    m->msg_namelen = 0;
    m->msg_controllen = 0;
    m->msg_flags = 0;
    v[i].msg_len = (unsigned)r;
    if (r == 0)
      return (int)i + 1;     /* end of stream: nothing more will come */
  }
  return i ? (int)i : -1;
}

int io_sendmmsg(int fd, struct shim_sock *s, struct mmsghdr *v, unsigned n, int flags)
{
  unsigned i;
  if (n > UIO_MAXIOV)
    n = UIO_MAXIOV;
  for (i = 0; i < n; i++) {
    struct msghdr *m = &v[i].msg_hdr;
    if (m->msg_iovlen > IOV_MAX) {
      errno = EINVAL;
      break;
    }
    ssize_t r = io_send(fd, s, m->msg_iov, (int)m->msg_iovlen, flags);
    if (r < 0)
      break;
    v[i].msg_len = (unsigned)r;
  }
  return i ? (int)i : -1;
}
