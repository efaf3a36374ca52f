/*
 * tund/progend.c — the program's side of a connection as tund sees it: what
 * tund publishes to the program (the status block, the rx token, EOF, the
 * end of a failed connection) and what it reads from the program's end of
 * the socketpair (filler and wake-up bytes, the hang-up when the program
 * closed its last copy).  The readiness hand-shake itself is described in
 * include/enoshim/shm.h (model: tests/spin/readiness.pml).
 *
 * Work found here that is better done once per loop turn (the program's end
 * hung up, bytes drained that may stand for a change in the rings) is queued
 * on the pending list, run by conn_run_pending() at the end of the turn.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include "tund.h"
#include "conn.h"

/* ---- publishing to the program ----------------------------------------------- */

void conn_publish(struct conn *c)
{
  if (!c->shm)
    return;
  enoshm_status_begin(c->shm);
  memcpy((void *)&c->shm->st, &c->st, sizeof(c->st));
  enoshm_status_end(c->shm);
}

/* The token bytes of one grant, in one send (shm.h): a program thread
 * waiting in read() takes one, the other keeps the fd readable. */
static void conn_send_grant(struct conn *c)
{
  static const char grant[ENOSHM_GRANT] = { 'r', 'r' };
  ssize_t w = send(c->tfd, grant, sizeof(grant), MSG_DONTWAIT | MSG_NOSIGNAL);
  (void)w;
}

/* rx readiness: one grant while the ring has something to report. */
void conn_rx_notify(struct conn *c)
{
  uint32_t exp = 0;
  if (c->tfd < 0 || c->t_wr_shut || c->t_eof || c->prog_closed)
    return;                    /* nobody left to read a token */
  if (c->kind == CK_LISTENER)
    return;                    /* its pair carries accept records only (it may outlive us: RELISTEN) */
  atomic_thread_fence(memory_order_seq_cst);   /* rx_prod before rx_tok (shm.h) */
  if (atomic_compare_exchange_strong(&c->shm->rx_tok, &exp, 1))
    conn_send_grant(c);
}

/* EOF for the program: the flag, a token, and our end shut for writing. */
void conn_publish_eof(struct conn *c)
{
  if (c->eof_published)
    return;
  c->eof_published = 1;
  c->st.flags |= ENOSHM_F_RX_EOF;
  conn_publish(c);
  conn_rx_notify(c);
  if (c->tfd >= 0) {
    shutdown(c->tfd, SHUT_WR);     /* EPOLLRDHUP / read() == 0 for the program */
    c->t_wr_shut = 1;
  }
}

/* ---- the program's end of the pair ------------------------------------------- */

/* Read everything the program wrote to its end (filler and wake-up bytes).
 * Returns how many bytes were read, or -1 if the program's end is closed.
 * A wake-up byte read here may be the only notice of something the program
 * did after our last look: every caller that reads something must look at
 * the rings again (conn_update_writable() schedules that). */
static ssize_t conn_drain_t(struct conn *c)
{
  char buf[4096];
  ssize_t total = 0;
  /* At most 64 KiB per call: a program that writes to its end as fast as
   * tund reads would otherwise keep tund's one thread here for ever.  What
   * is left stays t_pending; the caller looks again on the next turn. */
  for (int reads = 0;; reads++) {
    if (reads == 16)
      return total;
    ssize_t n = recv(c->tfd, buf, sizeof(buf), MSG_DONTWAIT);
    if (n > 0)
      c->t_drained += (uint64_t)n;
    if (n > 0 && (size_t)n < sizeof(buf)) {
      /* a unix stream recv takes everything queued up to the buffer's size:
       * less means empty now (no second call just to see EAGAIN) */
      c->t_pending = 0;
      return total + n;
    }
    if (n > 0) {
      total += n;
      continue;
    }
    if (n == 0) {
      c->t_pending = 0;
      c->t_eof = 1;
      conn_mark_pending(c);    /* conn_prog_closed() at the end of the turn */
      return -1;
    }
    if (errno == EINTR)
      continue;
    c->t_pending = 0;
    return total;
  }
}

/* The name of process pid (/proc/PID/comm), "?" if it cannot be read. */
static void comm_of(pid_t pid, char out[16])
{
  char path[40];
  snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
  snprintf(out, 16, "?");
  int fd = pid > 0 ? open(path, O_RDONLY | O_CLOEXEC) : -1;
  if (fd < 0)
    return;
  ssize_t n = read(fd, out, 15);
  close(fd);
  if (n > 0) {
    out[n] = 0;
    char *nl = strchr(out, '\n');
    if (nl)
      *nl = 0;
  }
}

/* Bytes written around the shim: every byte the shim writes to its end of
 * the pair (filler, wait bytes) it first declares in p2t_decl (shim/io.c
 * pair_write); what we drained beyond that came from a write() the shim did
 * not see — glibc's stdio on a FILE the shim did not make, syscall(SYS_write),
 * a static program that inherited the socket.  Those bytes were meant for the
 * peer and cannot reach it in order any more: fail the connection loudly
 * rather than let the program's write() have "succeeded" (README, errors).
 *
 * No false alarm: a shim write raises p2t_decl (an atomic RMW) before its
 * write() system call, and lowers it after a short write only by the bytes
 * that did not go in, so at every instant p2t_decl >= the bytes the shim has
 * put in the pair; we read p2t_decl after our recv() returned the bytes, and
 * the kernel orders their write() before that recv(), so the value we load
 * counts every shim byte we hold (t_drained <= bytes written <= p2t_decl).
 * The program can raise p2t_decl as it likes (it is its memory): that only
 * hides its own bypass from this check.  Returns 1 if the connection was
 * failed. */
static int conn_bypass_check(struct conn *c)
{
  if (c->kind == CK_LISTENER || c->dead || !c->shm)
    return 0;
  uint64_t decl = atomic_load_explicit(&c->shm->p2t_decl, memory_order_acquire);
  if (c->t_drained <= decl)
    return 0;
  char comm[16];
  comm_of(c->pid, comm);
  log_warn("conn %llu: %s[%d] wrote %llu bytes to its socket around libenoshim (a raw write system "
           "call, stdio the shim did not wrap, or a program without the shim); they cannot reach the "
           "peer in order: connection reset, the program gets EIO",
           (unsigned long long)c->serial, comm, (int)c->pid,
           (unsigned long long)(c->t_drained - decl));
  conn_abort(c, EIO);
  return 1;
}

/* Room in the tx ring as the program sees it (for writability). */
static uint64_t conn_tx_free(struct conn *c)
{
  uint64_t prod = atomic_load_explicit(&c->shm->tx_prod, memory_order_acquire);
  uint64_t used = prod - c->tx_cons;
  return used > c->tx_size ? 0 : c->tx_size - used;
}

/* Make the program's fd writable again if it filled it and there is room. */
void conn_update_writable(struct conn *c)
{
  if (!c->t_pending || c->tfd < 0 || c->t_eof)
    return;
  int can = 0;
  if (c->kind == CK_LISTENER || c->st.state == ENOSHM_S_CLOSED)
    can = 1;
  else if (c->st.state == ENOSHM_S_ESTABLISHED)
    can = conn_tx_free(c) >= c->tx_size / 4 || (c->st.flags & ENOSHM_F_TX_SHUT);
  /* NEW/BOUND: not drained.  The shim fills its end only once it has asked
   * for a connect; a posted CONNECT may reach us after the filler does, and
   * draining then would wake a blocking connect() before anything happened. */
  if (can && conn_drain_t(c) > 0) {
    if (conn_bypass_check(c))
      return;
    conn_mark_pending(c);    /* look at the rings again: see conn_drain_t() */
  }
}

/* The connection failed or was reset: publish, wake the program, forget it.
 * The pcb is gone (err callback) or must be aborted by the caller first. */
void conn_fail(struct conn *c, int err)
{
  if (c->dead)
    return;
  c->st.state = ENOSHM_S_CLOSED;
  if (!c->st.error)
    c->st.error = err;
  c->st.flags |= ENOSHM_F_DEAD;
  conn_publish(c);
  conn_rx_notify(c);
  if (c->tfd >= 0 && !c->prog_closed && !c->t_eof)
    conn_drain_t(c);
  if (err)
    log_debug("conn %llu failed: %s", (unsigned long long)c->serial, strerror(err));
  else
    log_debug("conn %llu closed", (unsigned long long)c->serial);
  conn_release(c);
}

static void conn_prog_closed(struct conn *c)
{
  if (c->dead || c->closing || c->prog_closed)
    return;
  log_debug("conn %llu: program closed its socket (state %u)", (unsigned long long)c->serial, c->st.state);
  c->prog_closed = 1;
  switch (c->kind) {
  case CK_LISTENER:
    conn_abort(c, 0);
    return;
  case CK_NEW:
    conn_abort(c, 0);
    return;
  default:
    break;
  }
  if (!c->pcb) {
    conn_release(c);
    return;
  }
  if (c->st.state != ENOSHM_S_ESTABLISHED) {
    conn_abort(c, 0);
    return;
  }
  /* Unread data or SO_LINGER 0: reset, as the kernel does on close(). */
  int64_t space = enoshm_rx_space_checked(c->shm, c->rx_size, c->rx_prod);
  if (c->linger0 || c->rxq_n || space != (int64_t)c->rx_size) {
    conn_abort(c, 0);
    return;
  }
  conn_tx_pump(c);
}

/* The program closed a listener's fd.  If that was the last copy the pair is
 * hung up already: release now rather than when the event loop gets to the
 * hang-up, so that the port is free when close() returns (a program that
 * closes and binds again at once must not see EADDRINUSE). */
void conn_closed_hint(struct conn *c)
{
  struct pollfd p = { .fd = c->tfd, .events = POLLIN | POLLRDHUP };
  if (c->dead || c->tfd < 0)
    return;
  /* listeners and sockets only bound: their port must be free when close()
   * returns, as in the kernel */
  if (c->kind != CK_LISTENER && !(c->kind == CK_NEW && c->st.state == ENOSHM_S_BOUND))
    return;
  if (poll(&p, 1, 0) == 1 && (p.revents & (POLLHUP | POLLRDHUP)))
    conn_prog_closed(c);
}

static void conn_t_event(struct ev *ev, uint32_t events)
{
  struct conn *c = (struct conn *)ev;
  if (c->dead)
    return;
  if (events & EPOLLIN)
    c->t_pending = 1;
  if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
    conn_prog_closed(c);
    return;
  }
  conn_kick(c);
}

/* Watch our end of a new connection's pair (conn_new): 0, or -1 with errno. */
int conn_t_watch(struct conn *c)
{
  c->ev.fd = c->tfd;
  c->ev.fn = conn_t_event;
  return loop_add(&c->ev, EPOLLIN | EPOLLET | EPOLLRDHUP);
}

/* Something changed on the program's side: look at everything once. */
void conn_kick(struct conn *c)
{
  if (c->dead)
    return;
  if (c->kind == CK_LISTENER) {
    listener_flush(c);
    if (!c->dead)
      conn_update_writable(c);
    return;
  }
  conn_rx_pump(c);
  if (c->dead)
    return;
  conn_tx_pump(c);
  if (c->dead)
    return;
  conn_update_writable(c);
}

/* ---- work for the end of the turn -------------------------------------------- */

static struct conn *pending_head;   /* connections with work for the end of the turn */

void conn_mark_pending(struct conn *c)
{
  if (c->pending || c->dead)
    return;
  c->pending = 1;
  c->pend_next = pending_head;
  pending_head = c;
}

int conn_have_pending(void)
{
  return pending_head != NULL;
}

/* Once per loop turn.  A connection marked again while being handled waits
 * for the next turn (which then does not block: see loop.c). */
void conn_run_pending(void)
{
  struct conn *list = pending_head;
  pending_head = NULL;
  while (list) {
    struct conn *c = list;
    list = c->pend_next;
    c->pending = 0;
    if (c->dead)
      continue;
    if (c->t_eof)
      conn_prog_closed(c);
    else
      conn_kick(c);
  }
}
