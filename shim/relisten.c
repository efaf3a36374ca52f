/*
 * shim/relisten.c — listening sockets outlive tund: when tund dies and
 * comes back on the same socket path, every listener comes back by itself,
 * without the program doing anything.
 *
 * The problem.  A listener's fd in the program is its end of a socketpair
 * whose other end tund holds; its connections arrive as records on that
 * pair (sock.c sock_accept).  When tund dies, its end goes, and the
 * program's end hangs up for good.  The program may be blocked in accept()
 * on that fd number, or have it in an epoll set, so the fd cannot be
 * replaced (dup3 onto it would drop the epoll registration): the fd itself
 * must stay valid and start delivering connections again.
 *
 * The design.  When listen() succeeds, tund hands the shim a copy of its end
 * of the listener's pair and of the listener's shared memory (the LISTEN
 * reply's descriptors), and the shim keeps, besides, the kernel listener it
 * made for the port (bind/listen in sock.c), instead of closing its copy.
 * These "kept ends" are the shim's own descriptors (ctl.c: moved high,
 * close-on-exec, protected from the program's close/dup2/closefrom).  So
 * when tund dies nothing the listener needs dies with it: its pair does not
 * hang up (our copy of tund's end holds it open), its memory is held, and
 * the kernel listener keeps the port bound and listening.
 *
 * A watcher thread (started by the process's first listen(), with every
 * signal blocked so that it never takes a signal meant for the program;
 * also started by accept() in a forked child, which inherits the kept ends
 * but not the thread) sleeps in poll() on the control connection.  When
 * that connection ends it tries to reach tund again (100 ms, backing off to
 * 500 ms), and once it reaches a tund other than the one the listeners were
 * registered with, it hands each kept listener to it in a RELISTEN request:
 * the program's end (to identify the socket later, like ATTACH), tund's end,
 * the memory, the kernel listener, the address it was bound to, the
 * backlog and the options the program set (SO_REUSEADDR, keep-alive,
 * TCP_NODELAY, linger, IPV6_V6ONLY and every TCP-ENO / tcpcrypt option).
 * The request proposes the listener's old id, which tund keeps if it is
 * free: other processes holding the listener (a fork, nginx's workers) go
 * on using it.  tund checks every descriptor (tund/listener.c
 * conn_relisten) and makes the listener anew on the same port, in lwIP and
 * on the kernel listener; connections are encrypted again.  A process that
 * holds the same listener and relistens too finds it done (tund knows the
 * program's end).
 *
 * What happens to what existed when tund died.  Connections established
 * through it are gone: their rings are no longer served, and the program
 * sees ECONNRESET on them (io.c: read and write on a pair whose other end
 * is gone).  Accept records already queued on the listener's pair stay:
 * those of tund's connections give sockets whose first read says
 * ECONNRESET; kernel-side ones (127.0.0.1) are whole kernel connections.
 * During the gap, clients of the kernel listener queue in its backlog as
 * with any kernel listener, and are accepted once the listener is back;
 * other hosts dialing the port reach the kernel listener too (tund's
 * nftables rules went with it), so they connect in plain TCP until it is
 * back.  accept() in the gap waits (blocking) or says EAGAIN, as on a
 * listener with nothing queued.  A listener tund refuses to make again
 * (the port taken in lwIP meanwhile) is shut down: accept() then fails,
 * as after shutdown(), and one line says why.
 *
 * Not covered: a listener inherited across exec or received with
 * SCM_RIGHTS has no kept ends in that process (it comes back only if the
 * process that made it still holds them); a forked child relistens only
 * once it has called accept() (nginx's workers do).  Each kept listener
 * costs the process three descriptors of its RLIMIT_NOFILE.  The watcher
 * makes system calls of its own (poll, and after tund's death connect,
 * socket, nanosleep): a process that confines itself with a seccomp filter
 * after listen() must allow those, or lose its listeners with tund (a
 * sandboxed child forked from it has no watcher: threads do not survive
 * fork, and a child starts one only in accept()).
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "shim.h"
#include "tcpinc.h"

struct keep {
  struct keep *next;
  struct shim_sock *s;
  int tfd, memfd, kfd;        /* the shim's own descriptors; kfd may be -1 */
  uint64_t p_cookie;          /* the program's end (SO_COOKIE), to find its fd again */
  struct enoipc_addr addr;    /* as bound */
  int backlog;
  uint32_t tund_pid;          /* the tund it is registered with ... */
  unsigned gen;               /* ... as of this hang-up count (watcher) */
  int dead;                   /* given up: tund refused it, or shut down */
};

static struct keep *keeps;
static pthread_mutex_t keep_lock = PTHREAD_MUTEX_INITIALIZER;
/* Hang-ups of the control connection the watcher saw.  A tund that comes
 * back may have the same pid (a container's tund restarted by its
 * supervisor): after a hang-up every listener is handed over again, which
 * is harmless when tund still knows it (conn_relisten finds it and says
 * so). */
static _Atomic unsigned hup_gen;
static _Atomic int watcher_on;   /* a watcher thread runs in this process */

/* ---- options set on a socket, replayed by RELISTEN ----------------------------- */

/* TCP-ENO / tcpcrypt options as the program set them before it connected
 * or while it listens (the last value per name), in a list. */
struct optlog {
  struct optlog *next;
  int name;
  uint32_t len;
  uint8_t val[];
};

void relisten_note_opt(struct shim_sock *s, int name, const void *val, socklen_t len)
{
  if (len > ENOIPC_OPT_MAX)
    return;
  struct optlog *o = malloc(sizeof(*o) + len);
  if (!o)
    return;
  o->name = name;
  o->len = (uint32_t)len;
  if (len)
    memcpy(o->val, val, len);
  pthread_mutex_lock(&s->lock);
  for (struct optlog **pp = &s->optlog; *pp; pp = &(*pp)->next)
    if ((*pp)->name == name) {
      struct optlog *old = *pp;
      *pp = old->next;
      free(old);
      break;
    }
  o->next = s->optlog;
  s->optlog = o;
  pthread_mutex_unlock(&s->lock);
}

static void optlog_free(struct shim_sock *s)
{
  while (s->optlog) {
    struct optlog *o = s->optlog;
    s->optlog = o->next;
    free(o);
  }
}

/* ---- keeping a listener's ends ------------------------------------------------- */

static void watcher_start(void);

/* listen() succeeded on fd (s): tund sent its end tfd and the memory memfd;
 * kfd is the kernel listener (or -1).  Takes the three descriptors. */
void relisten_keep(int fd, struct shim_sock *s, int tfd, int memfd, int kfd, int backlog)
{
  struct keep *k = calloc(1, sizeof(*k));
  uint64_t cookie = 0;
  socklen_t cl = sizeof(cookie);
  if (!k || real.getsockopt(fd, SOL_SOCKET, SO_COOKIE, &cookie, &cl) || !cookie) {
    free(k);
    real.close(tfd);
    real.close(memfd);
    if (kfd >= 0)
      shim_internal_close(kfd);
    return;
  }
  k->s = s;
  k->tfd = shim_internal_fd(tfd);
  k->memfd = shim_internal_fd(memfd);
  k->kfd = kfd;               /* already one of ours (sock.c) */
  k->p_cookie = cookie;
  k->addr = s->bound_addr;
  k->backlog = backlog;
  k->tund_pid = shim_tund_pid;
  k->gen = atomic_load(&hup_gen);
  pthread_mutex_lock(&keep_lock);
  s->keep = k;
  k->next = keeps;
  keeps = k;
  pthread_mutex_unlock(&keep_lock);
  watcher_start();
}

void relisten_backlog(struct shim_sock *s, int backlog)
{
  pthread_mutex_lock(&keep_lock);
  if (s->keep) {
    s->keep->backlog = backlog;
    if (s->keep->kfd >= 0)
      real.listen(s->keep->kfd, backlog);   /* the kernel listener's too */
  }
  pthread_mutex_unlock(&keep_lock);
}

static void keep_close(struct keep *k)
{
  shim_internal_close(k->tfd);
  shim_internal_close(k->memfd);
  if (k->kfd >= 0)
    shim_internal_close(k->kfd);
  k->tfd = k->memfd = k->kfd = -1;
}

/* shutdown() of the listener: it stays down.  Nothing is freed here (the
 * watcher may be using the entry; sock_free does it): it is only left out
 * of RELISTEN, and our kernel listener stops listening like tund's. */
void relisten_drop(struct shim_sock *s)
{
  pthread_mutex_lock(&keep_lock);
  if (s->keep) {
    s->keep->dead = 1;
    if (s->keep->kfd >= 0)
      real.shutdown(s->keep->kfd, SHUT_RDWR);
  }
  pthread_mutex_unlock(&keep_lock);
}

/* The socket ends in this process (sock_free): its kept ends go. */
void relisten_forget(struct shim_sock *s)
{
  struct keep *k = NULL;
  pthread_mutex_lock(&keep_lock);
  for (struct keep **pp = &keeps; *pp; pp = &(*pp)->next)
    if ((*pp)->s == s) {
      k = *pp;
      *pp = k->next;
      break;
    }
  s->keep = NULL;
  pthread_mutex_unlock(&keep_lock);
  if (k) {
    keep_close(k);
    free(k);
  }
  optlog_free(s);
}

/* ---- RELISTEN ------------------------------------------------------------------ */

/* +1 ref on s unless it is already being freed */
static int sock_ref(struct shim_sock *s)
{
  int r = atomic_load(&s->refs);
  while (r > 0)
    if (atomic_compare_exchange_weak(&s->refs, &r, r + 1))
      return 1;
  return 0;
}

/* Register k's listener with the tund we are connected to (pid).  0 done
 * (or nothing to do), -1 try again later (tund not reachable). */
static int relisten_one(struct keep *k, uint32_t pid, unsigned gen)
{
  struct shim_sock *s = k->s;
  /* the program's end: one of its fds, found and checked by its cookie */
  int fd = fdt_find(s), pd = -1;
  if (fd >= 0) {
    pd = real.fcntl(fd, F_DUPFD_CLOEXEC, 0);
    uint64_t cookie = 0;
    socklen_t cl = sizeof(cookie);
    if (pd >= 0 && (real.getsockopt(pd, SOL_SOCKET, SO_COOKIE, &cookie, &cl) || cookie != k->p_cookie)) {
      real.close(pd);
      pd = -1;
    }
  }
  if (pd < 0)
    return fd < 0 ? 0 : -1;   /* closed meanwhile (sock_free follows), or no descriptor free now */
  struct enoipc_relisten rq;
  memset(&rq, 0, sizeof(rq));
  rq.addr = k->addr;
  rq.backlog = k->backlog;
  rq.domain = (uint8_t)s->domain;
  rq.v6only = (uint8_t)s->v6only;
  rq.reuseaddr = (uint8_t)(s->reuseaddr || s->reuseport);
  rq.keepalive = (uint8_t)s->keepalive;
  rq.nodelay = (uint8_t)s->nodelay;
  rq.linger0 = (uint8_t)(s->linger_on && s->linger_sec == 0);
  rq.keep_idle = (uint32_t)s->keep_idle;
  rq.keep_intvl = (uint32_t)s->keep_intvl;
  rq.keep_cnt = (uint32_t)s->keep_cnt;
  rq.has_kernel_fd = k->kfd >= 0;
  /* the TCP-ENO options, each an enoipc_opt and its value */
  static uint8_t opts[ENOIPC_MAX_MSG];
  size_t olen = 0;
  pthread_mutex_lock(&s->lock);
  /* in the order the program set them (the list is newest first) */
  struct optlog *order[64];
  int no = 0;
  for (struct optlog *l = s->optlog; l && no < 64; l = l->next)
    order[no++] = l;
  while (no > 0) {
    struct optlog *l = order[--no];
    struct enoipc_opt o = { .level = IPPROTO_TCP, .name = l->name, .len = l->len };
    if (sizeof(struct enoipc_hdr) + sizeof(rq) + olen + sizeof(o) + o.len > ENOIPC_MAX_MSG)
      break;
    memcpy(opts + olen, &o, sizeof(o));
    memcpy(opts + olen + sizeof(o), l->val, o.len);
    olen += sizeof(o) + o.len;
    rq.n_opts++;
  }
  pthread_mutex_unlock(&s->lock);
  int fds[4] = { pd, k->tfd, k->memfd, k->kfd };
  int err = 0;
  uint64_t id = 0;
  int r = ctl_call(ENOIPC_RELISTEN, s->id, &rq, sizeof(rq), opts, olen, fds, k->kfd >= 0 ? 4 : 3, &err, NULL,
                   NULL, NULL, NULL, &id);
  real.close(pd);
  if (r)
    return -1;
  if (err) {
    shim_log("listening socket on port %u could not be registered with the restarted tund (%s): it is "
             "shut down", (unsigned)k->addr.port, strerror(err));
    /* accept() fails from now on, as after shutdown(); the kernel
     * listener stops taking clients it would never hand over */
    real.shutdown(k->tfd, SHUT_RDWR);
    if (k->kfd >= 0)
      real.shutdown(k->kfd, SHUT_RDWR);
    k->dead = 1;
    return 0;
  }
  if (id)
    s->id = id;
  k->tund_pid = pid;
  k->gen = gen;
  return 0;
}

/* Every kept listener not registered with tund pid since the last
 * hang-up: register it.  0, or -1: tund went away again. */
static int relisten_all(uint32_t pid)
{
  unsigned done = 0, failed = 0, gen = atomic_load(&hup_gen);
  for (;;) {
    struct keep *k;
    pthread_mutex_lock(&keep_lock);
    for (k = keeps; k; k = k->next)
      if (!k->dead && (k->tund_pid != pid || k->gen != gen) && sock_ref(k->s))
        break;
    pthread_mutex_unlock(&keep_lock);
    if (!k)
      break;
    struct shim_sock *s = k->s;
    int moved = k->tund_pid != pid;   /* else the same tund: only checked */
    int r = relisten_one(k, pid, gen);
    fdt_put(s);
    if (r) {
      failed = 1;
      break;                  /* tund went away again: the watcher comes back */
    }
    done += (unsigned)moved;
  }
  if (done && !failed)
    shim_log("tund (pid %u) is back: %u listening socket%s registered again", (unsigned)pid, done,
             done == 1 ? "" : "s");
  return failed ? -1 : 0;
}

/* ---- the watcher thread ---------------------------------------------------------- */

static int keeps_left(void)
{
  pthread_mutex_lock(&keep_lock);
  int n = keeps != NULL;
  pthread_mutex_unlock(&keep_lock);
  return n;
}

static void *watcher(void *arg)
{
  (void)arg;
  long backoff_ms = 100;
  while (keeps_left()) {
    int fd = -1;
    uint32_t pid = 0;
    if (ctl_watch(&fd, &pid) == 0 && relisten_all(pid) == 0) {
      backoff_ms = 100;
      /* tund's death (or any end of this connection) hangs it up */
      struct pollfd p = { .fd = fd, .events = 0 };
      int n = poll(&p, 1, 30000);
      if (n > 0 && (p.revents & (POLLHUP | POLLERR | POLLNVAL))) {
        atomic_fetch_add(&hup_gen, 1);
        ctl_watch_lost(fd);
      }
      continue;
    }
    struct timespec ts = { backoff_ms / 1000, (backoff_ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
    if (backoff_ms < 500)
      backoff_ms *= 2;
  }
  atomic_store(&watcher_on, 0);
  if (keeps_left())
    watcher_start();          /* a listen() raced the exit */
  return NULL;
}

static void watcher_start(void)
{
  int exp = 0;
  if (!atomic_compare_exchange_strong(&watcher_on, &exp, 1))
    return;
  pthread_attr_t a;
  pthread_t t;
  sigset_t all, old;
  pthread_attr_init(&a);
  pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize(&a, 256 * 1024);
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);   /* the thread inherits: no signal of the program's */
  if (pthread_create(&t, &a, watcher, NULL))
    atomic_store(&watcher_on, 0);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  pthread_attr_destroy(&a);
}

/* accept(): a forked child holds kept ends but no watcher (threads do not
 * survive fork) — one load when there is nothing to do. */
void relisten_check_watcher(void)
{
  if (__builtin_expect(!atomic_load_explicit(&watcher_on, memory_order_relaxed), 0) && keeps_left())
    watcher_start();
}

/* fork: the child's copies of the kept ends are its own; no thread runs */
void relisten_atfork_child(void)
{
  pthread_mutex_init(&keep_lock, NULL);
  atomic_store(&watcher_on, 0);
}
