/*
 * tund/conn.c — the connection table: a program's socket (its socketpair end
 * and shared memory) joined to an lwIP pcb.
 *
 * Data path, plain TCP (tcpcrypt adds frames in tund/crypt.c):
 *   tx: the program writes into the tx ring; tund hands ring bytes to
 *       tcp_write() WITHOUT copying and advances tx_cons only when lwIP
 *       reports them acknowledged (sent callback): the ring is the send
 *       buffer, and retransmissions resend the very same bytes.
 *   rx: lwIP's pbufs are copied into the rx ring; tcp_recved() opens the
 *       window only for bytes that reached the ring, so a program that stops
 *       reading closes the window like a kernel socket would.
 *
 * Lifetime: tund learns that the last copy of the program's fd was closed
 * (or the program died) from EPOLLRDHUP on its end of the pair.  A closed
 * connection with unread data gets RST (as the kernel does); otherwise tund
 * keeps sending what the ring still holds, then FIN.  After tcp_close() the
 * pcb belongs to lwIP: tund only waits, in the sent/err callbacks, until no
 * queued segment references the ring any more, then unmaps it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <linux/tcp.h>
#include <arpa/inet.h>
#include <unistd.h>
#include <sodium.h>

#include "lwip/ip_addr.h"
#include "lwip/tcp.h"
#include "lwip/priv/tcp_priv.h"
#include "lwip/timeouts.h"
#include "lwip/sys.h"
#include "tund.h"
#include "conn.h"
#include "lwip_glue.h"

static struct conn *all_conns;
static size_t n_conns;
static uint64_t next_serial = 1;

/* spare-memory owner keys: a listener's id with this bit (a client key without) */
#define SPARE_KEY_LISTENER (1ull << 63)

#define HASH_SIZE 16384u
static struct conn *id_hash[HASH_SIZE];

static struct conn *pending_head;   /* connections with work for the end of the turn */

/* ---- small helpers ------------------------------------------------------------ */

/*
 * A socket's id is its capability.  Every client of tund runs as tund's uid,
 * but a request names its socket only by id, so a sequential id would let
 * any program of the user shut down, reconnect or re-option another's
 * sockets by counting.  Ids are therefore 63 unpredictable bits (bit 63
 * marks listener keys in the spare table) that reach only the socket's
 * holders: the SOCKET and ATTACH replies, the accept record on the
 * listener's own pair, and the shared header of the socket's memory.
 * enoctl status and the logs show the sequential `serial` instead.
 */
static uint8_t id_key[crypto_shorthash_KEYBYTES];
static uint64_t id_ctr;

/* SipHash of a counter under a key drawn at start: as unpredictable as
 * fresh random bits to anyone without the key, and no getrandom() per
 * socket (the same construction as the ISNs in stack/lwip_glue.c). */
static uint64_t new_id(void)
{
  uint64_t id;
  do {
    uint8_t h[crypto_shorthash_BYTES];
    id_ctr++;
    crypto_shorthash(h, (const uint8_t *)&id_ctr, sizeof(id_ctr), id_key);
    memcpy(&id, h, sizeof(id));
    id &= ~SPARE_KEY_LISTENER;
  } while (id == 0 || conn_find(id));
  return id;
}

static unsigned hash_id(uint64_t id) { return (unsigned)(id * 0x9e3779b97f4a7c15ull >> 50) & (HASH_SIZE - 1); }

struct conn *conn_find(uint64_t id)
{
  for (struct conn *c = id_hash[hash_id(id)]; c; c = c->hnext)
    if (c->id == id && !c->dead)
      return c;
  return NULL;
}

size_t conn_count(void) { return n_conns; }

void conn_touch_pid(struct conn *c, pid_t pid) { c->pid = pid; }

void conn_mark_pending(struct conn *c)
{
  if (c->pending || c->dead)
    return;
  c->pending = 1;
  c->pend_next = pending_head;
  pending_head = c;
}

int ipaddr_from_ipc(const struct enoipc_addr *a, int domain, ip_addr_t *ip)
{
  if (a->family == AF_INET) {
    if (domain != AF_INET)
      return EAFNOSUPPORT;
    IP_ADDR4(ip, a->addr[0], a->addr[1], a->addr[2], a->addr[3]);
    return 0;
  }
  if (a->family == AF_INET6) {
    if (domain != AF_INET6)
      return EAFNOSUPPORT;
    static const uint8_t mapped[12] = { 0,0,0,0,0,0,0,0,0,0,0xff,0xff };
    if (!memcmp(a->addr, mapped, 12)) {
      IP_ADDR4(ip, a->addr[12], a->addr[13], a->addr[14], a->addr[15]);
      return 0;
    }
    ip_addr_t t;
    memset(&t, 0, sizeof(t));
    IP_SET_TYPE_VAL(t, IPADDR_TYPE_V6);
    memcpy(ip_2_ip6(&t)->addr, a->addr, 16);
    ip6_addr_clear_zone(ip_2_ip6(&t));
    *ip = t;
    return 0;
  }
  return EAFNOSUPPORT;
}

/* lwIP address -> what the program expects: v4-mapped for AF_INET6 sockets. */
void ipaddr_to_shm(const ip_addr_t *ip, u16_t port, int domain, struct enoshm_addr *out)
{
  memset(out, 0, sizeof(*out));
  out->port = port;
  if (IP_IS_V6(ip)) {
    out->family = AF_INET6;
    memcpy(out->addr, ip_2_ip6(ip)->addr, 16);
  } else if (domain == AF_INET6) {
    out->family = AF_INET6;
    out->addr[10] = out->addr[11] = 0xff;
    memcpy(out->addr + 12, &ip_2_ip4(ip)->addr, 4);
  } else {
    out->family = AF_INET;
    memcpy(out->addr, &ip_2_ip4(ip)->addr, 4);
  }
}

static int lwip_err_to_errno(err_t e)
{
  switch (e) {
  case ERR_OK: return 0;
  case ERR_MEM: return ENOBUFS;
  case ERR_BUF: return ENOBUFS;
  case ERR_TIMEOUT: return ETIMEDOUT;
  case ERR_RTE: return ENETUNREACH;
  case ERR_INPROGRESS: return EINPROGRESS;
  case ERR_VAL: return EINVAL;
  case ERR_WOULDBLOCK: return EWOULDBLOCK;
  case ERR_USE: return EADDRINUSE;
  case ERR_ALREADY: return EALREADY;
  case ERR_ISCONN: return EISCONN;
  case ERR_CONN: return ENOTCONN;
  case ERR_IF: return ENETDOWN;
  case ERR_ABRT: return ECONNABORTED;
  case ERR_RST: return ECONNRESET;
  case ERR_CLSD: return ENOTCONN;
  case ERR_ARG: return EINVAL;
  default: return EIO;
  }
}

/* ---- publishing to the program ---------------------------------------------- */

void conn_publish(struct conn *c)
{
  if (!c->shm)
    return;
  enoshm_status_begin(c->shm);
  memcpy((void *)&c->shm->st, &c->st, sizeof(c->st));
  enoshm_status_end(c->shm);
}

/* rx readiness: one token byte while the ring has something to report. */
void conn_rx_notify(struct conn *c)
{
  uint32_t exp = 0;
  if (c->tfd < 0 || c->t_wr_shut || c->t_eof || c->prog_closed)
    return;                    /* nobody left to read a token */
  atomic_thread_fence(memory_order_seq_cst);   /* rx_prod before rx_tok (shm.h) */
  if (atomic_compare_exchange_strong(&c->shm->rx_tok, &exp, 1)) {
    ssize_t w = send(c->tfd, "r", 1, MSG_DONTWAIT | MSG_NOSIGNAL);
    (void)w;
  }
}

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
  if (can && conn_drain_t(c) > 0)
    conn_mark_pending(c);    /* look at the rings again: see conn_drain_t() */
}

/* ---- creation and release ------------------------------------------------------ */

static void conn_t_event(struct ev *ev, uint32_t events);

/* EMFILE/ENFILE while making a socket: say which limit, once in a while */
static void fd_limit_warn(int e)
{
  if (e == EMFILE) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
      tund_log_limited(LOG_WARN_, "out of file descriptors (limit %llu, 2 per connection): raise "
                       "tund's RLIMIT_NOFILE (ulimit -Hn, LimitNOFILE=)", (unsigned long long)rl.rlim_cur);
  } else if (e == ENFILE) {
    tund_log_limited(LOG_WARN_, "the system is out of file descriptors (fs.file-max)");
  }
}

static int fd_limit_err(int e)
{
  fd_limit_warn(e);
  return e == EMFILE || e == ENFILE ? ENOBUFS : e;
}

/* ---- spare shared memory ---------------------------------------------------------
 *
 * Making a socket's shared memory (memfd_create, ftruncate, seals, mmap, the
 * first touch of three pages) and dropping it again (munmap) costs each side
 * tens of microseconds of page-table work, more than anything else per
 * connection in a paravirtualised guest.  So the memfd of a connection that
 * ended goes back to a small pool, still mapped, and the next connection of
 * the same owner takes it; the shim keeps its mapping too (shim/sock.c).
 *
 * Who may see a spare again is the whole question.  Its owner ("key") is the
 * control connection (one process) that made the socket, or, for accepted
 * connections, the listener, whose holders could accept any of its
 * connections anyway.  A memfd is never a spare again once a process outside
 * that circle may have mapped it: ATTACH (the socket crossed an exec or
 * SCM_RIGHTS) and FORKED (the shim's fork handler lists the sockets a child
 * inherits) clear the key.  Spares are dropped with their owner. */

#define SPARES_MAX         128u       /* in all; each holds a descriptor */
#define SPARES_PER_KEY     32u

struct spare {
  uint64_t key;
  int memfd;
  void *p;
  size_t len;
};
static struct spare spares[SPARES_MAX];
static unsigned n_spares;
static uint64_t spares_reused, spares_made;

static void spare_free(struct spare *sp)
{
  munmap(sp->p, sp->len);
  close(sp->memfd);
}

static int spare_key_alive(uint64_t key)
{
  if (key & SPARE_KEY_LISTENER) {
    struct conn *l = conn_find(key & ~SPARE_KEY_LISTENER);
    return l && !l->dead && l->kind == CK_LISTENER;
  }
  return client_spare_key_alive(key);
}

static void spare_put(uint64_t key, int memfd, void *p, size_t len, uint64_t rx_used, uint64_t tx_used)
{
  unsigned same = 0;
  for (unsigned i = 0; i < n_spares; i++)
    same += spares[i].key == key;
  if (!key || same >= SPARES_PER_KEY || n_spares >= SPARES_MAX || !spare_key_alive(key)) {
    munmap(p, len);
    close(memfd);
    return;
  }
  /* a connection that moved a lot leaves its ring pages resident: give them
   * back (in every mapping of the file) so that a spare costs a few pages */
  size_t ring = (len - ENOSHM_HDR_SIZE) / 2;
  if ((rx_used > ENOSHM_REUSE_TOUCH_MAX || tx_used > ENOSHM_REUSE_TOUCH_MAX) &&
      fallocate(memfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, ENOSHM_HDR_SIZE, (off_t)(2 * ring))) {
    munmap(p, len);
    close(memfd);
    return;
  }
  spares[n_spares++] = (struct spare){ .key = key, .memfd = memfd, .p = p, .len = len };
}

static int spare_take(uint64_t key, size_t len, struct spare *out)
{
  if (!key)
    return 0;
  for (unsigned i = n_spares; i-- > 0;) {
    if (spares[i].key == key && spares[i].len == len) {
      *out = spares[i];
      spares[i] = spares[--n_spares];
      return 1;
    }
  }
  return 0;
}

/* The owner is gone (its control connection, or the listener). */
void conn_spares_drop(uint64_t key)
{
  for (unsigned i = n_spares; i-- > 0;) {
    if (spares[i].key == key) {
      spare_free(&spares[i]);
      spares[i] = spares[--n_spares];
    }
  }
}

/* Out of descriptors: every spare holds one. */
static int spares_drop_all(void)
{
  unsigned n = n_spares;
  while (n_spares)
    spare_free(&spares[--n_spares]);
  return n > 0;
}

/* ---- the descriptor reserve ---------------------------------------------------
 *
 * At its RLIMIT_NOFILE tund would find out only when it makes the socket of a
 * connection whose handshake is over: on_accept() runs after the peer's ACK,
 * and a resumed tcpcrypt peer already counts itself connected after our
 * SYN-ACK, so a failure there resets a connection the peer's program was told
 * is up.  So a SYN is admitted only against real headroom: listener_admit()
 * promises the connection FDS_PER_CONN descriptors and holds that many in the
 * reserve (duplicates of one eventfd) until on_accept() makes its socket or
 * lwIP drops the half-open pcb (glue_eno_ops.admit_release).  When the
 * reserve cannot grow to cover a new promise, the SYN is dropped and the
 * peer retransmits, as with a full accept queue.  Every other consumer of
 * descriptors (a program's socket(), a control client, a kernel-side accept)
 * may take the reserve's unpromised slack, never the promised part.
 *
 * Invariant: n_fd_reserve >= FDS_PER_CONN * fd_promised between calls. */
#define FDS_PER_CONN    3          /* memfd + both ends of the pair until delivered */
#define FD_SLACK        (FDS_PER_CONN * 8)   /* grown in steps, trimmed to this */
#define FD_PROMISE_MAX  4096u      /* half-open connections holding a promise */
#define FD_RESERVE_MAX  (FDS_PER_CONN * FD_PROMISE_MAX + FD_SLACK)
static int *fd_reserve;
static unsigned n_fd_reserve, cap_fd_reserve;
static unsigned fd_promised;       /* admitted SYNs whose socket is not made yet */
static int fd_short;               /* the last admission failed for descriptors */
static uint64_t fd_short_drops;

/* Grow the reserve to `want` descriptors; 0, or the errno that stopped it. */
static int fd_reserve_grow(unsigned want)
{
  if (want > cap_fd_reserve) {
    unsigned nc = cap_fd_reserve ? cap_fd_reserve : 64;
    while (nc < want)
      nc *= 2;
    int *v = realloc(fd_reserve, nc * sizeof(*v));
    if (!v)
      return ENOMEM;
    fd_reserve = v;
    cap_fd_reserve = nc;
  }
  while (n_fd_reserve < want) {
    int fd = n_fd_reserve ? fcntl(fd_reserve[0], F_DUPFD_CLOEXEC, 0) : eventfd(0, EFD_CLOEXEC);
    if (fd < 0)
      return errno;
    fd_reserve[n_fd_reserve++] = fd;
  }
  return 0;
}

static void fd_reserve_shrink(unsigned keep)
{
  while (n_fd_reserve > keep)
    close(fd_reserve[--n_fd_reserve]);
}

/* EMFILE/ENFILE while making a socket: give up the spares and the reserve's
 * unpromised slack (a connection whose promise was just redeemed counts as
 * slack now).  1 = something was freed: retry. */
static int fds_exhausted(void)
{
  int e = errno;
  unsigned before = n_fd_reserve;
  int freed = spares_drop_all();
  fd_reserve_shrink(FDS_PER_CONN * fd_promised);
  if (!freed && n_fd_reserve == before)
    fd_limit_warn(e);
  errno = e;
  return freed || n_fd_reserve < before;
}

/* A SYN may become a connection: promise it its descriptors.  0: refused. */
static int fd_promise_take(void)
{
  unsigned need = FDS_PER_CONN * (fd_promised + 1);
  if (n_fd_reserve < need) {
    unsigned want = need + FD_SLACK;
    if (want > FD_RESERVE_MAX)
      want = FD_RESERVE_MAX;
    int e = fd_promised >= FD_PROMISE_MAX ? EMFILE : fd_reserve_grow(want);
    if (n_fd_reserve < need) {
      if (!fd_short && fd_promised < FD_PROMISE_MAX) {
        spares_drop_all();
        if (fd_reserve_grow(need) == 0)
          goto ok;
        fd_limit_warn(e == ENOMEM ? EMFILE : e);
        fd_short = 1;
      }
      fd_short_drops++;
      return 0;
    }
  }
ok:
  if (fd_short) {
    tund_log(LOG_INFO_, "file descriptors available again (%llu connections open; %llu SYNs dropped meanwhile)",
             (unsigned long long)n_conns, (unsigned long long)fd_short_drops);
    fd_short = 0;
    fd_short_drops = 0;
  }
  fd_promised++;
  return 1;
}

/* The promise ends: the socket is being made (its descriptors come from the
 * slack, see fds_exhausted) or the half-open connection died. */
static void fd_promise_release(void)
{
  if (fd_promised)
    fd_promised--;
}

/* glue_eno_ops.admit_release: a half-open connection admitted by
 * listener_admit() died before on_accept(). */
void listener_admit_release(void)
{
  fd_promise_release();
}

/* From conn_tick: give back slack beyond a few connections' worth. */
static void fd_reserve_trim(void)
{
  unsigned keep = FDS_PER_CONN * fd_promised + FD_SLACK;
  if (n_fd_reserve > keep)
    fd_reserve_shrink(keep);
}

int conn_spares_check(char *out, size_t outlen)
{
  unsigned bad = 0;
  for (unsigned i = 0; i < n_spares; i++) {
    struct stat st;
    if (!spares[i].key || fstat(spares[i].memfd, &st) || (size_t)st.st_size != spares[i].len)
      bad++;
  }
  snprintf(out, outlen, "spares: %u held, %llu reused of %llu made%s", n_spares,
           (unsigned long long)spares_reused, (unsigned long long)(spares_reused + spares_made),
           bad ? ", some invalid" : "");
  return bad ? -1 : 0;
}

static int make_shm(struct conn *c, uint32_t ring, uint64_t key)
{
  size_t total = ENOSHM_HDR_SIZE + 2 * (size_t)ring;
  struct spare sp;
  void *p;
  int fd;
  if (spare_take(key, total, &sp)) {
    fd = sp.memfd;
    p = sp.p;
    memset(p, 0, ENOSHM_HDR_SIZE);      /* rings keep the same owner's old bytes */
    spares_reused++;
  } else {
    fd = memfd_create("enoshim-socket", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0 && (errno == EMFILE || errno == ENFILE) && fds_exhausted())
      fd = memfd_create("enoshim-socket", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0)
      return fd_limit_err(errno);
    if (ftruncate(fd, (off_t)total) ||
        fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)) {
      int e = errno;
      close(fd);
      return e;
    }
    p = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
      int e = errno;
      close(fd);
      return e == ENOMEM ? ENOBUFS : e;
    }
    spares_made++;
  }
  c->spare_key = key;
  c->shm = p;
  c->shm_len = total;
  c->memfd = fd;
  c->shm->magic = ENOSHM_MAGIC;
  c->shm->version = ENOSHM_VERSION;
  c->shm->total_size = (uint32_t)total;
  c->shm->rx_off = ENOSHM_HDR_SIZE;
  c->shm->rx_size = ring;
  c->shm->tx_off = ENOSHM_HDR_SIZE + ring;
  c->shm->tx_size = ring;
  c->shm->sock_id = c->id;
  c->rx_size = ring;
  c->tx_size = ring;
  c->rx_base = (uint8_t *)p + ENOSHM_HDR_SIZE;
  c->tx_base = (uint8_t *)p + ENOSHM_HDR_SIZE + ring;
  return 0;
}

/* A new conn with its shared memory and socketpair.  *pfd gets the program's
 * end (the caller passes it on and closes it). */
static struct conn *conn_new(int domain, uint64_t spare_key, int *err, int *pfd)
{
  struct conn *c = calloc(1, sizeof(*c));
  int sv[2];
  if (!c) {
    *err = ENOBUFS;
    return NULL;
  }
  c->id = new_id();
  c->serial = next_serial++;
  c->domain = domain;
  c->tfd = -1;
  c->memfd = -1;
  c->kfd = -1;
  *err = make_shm(c, cfg.ring_size, spare_key);
  if (*err) {
    free(c);
    return NULL;
  }
  int sp = socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv);
  if (sp && (errno == EMFILE || errno == ENFILE) && fds_exhausted())
    sp = socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv);
  if (sp) {
    *err = fd_limit_err(errno);
    munmap(c->shm, c->shm_len);
    close(c->memfd);
    free(c);
    return NULL;
  }
  /* sv[0] is ours.  The program's end gets the smallest send buffer so that a
   * few filler bytes make it unwritable (see shm.h). */
  int one = 1;
  setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &one, sizeof(one));
  fcntl(sv[0], F_SETFL, O_NONBLOCK);
  struct stat st;
  if (fstat(sv[1], &st) == 0)
    c->p_ino = st.st_ino;
  c->tfd = sv[0];
  c->ev.fd = sv[0];
  c->ev.fn = conn_t_event;
  if (loop_add(&c->ev, EPOLLIN | EPOLLET | EPOLLRDHUP)) {
    *err = errno;
    close(sv[0]);
    close(sv[1]);
    munmap(c->shm, c->shm_len);
    close(c->memfd);
    free(c);
    return NULL;
  }
  unsigned h = hash_id(c->id);
  c->hnext = id_hash[h];
  id_hash[h] = c;
  c->next = all_conns;
  if (all_conns)
    all_conns->prev = c;
  all_conns = c;
  n_conns++;
  c->st.state = ENOSHM_S_NEW;
  c->st.eno_state = TCPINC_STATE_NEGOTIATING;
  c->created = sys_now();
  *pfd = sv[1];
  return c;
}

static void conn_free(void *p)
{
  struct conn *c = p;
  crypt_conn_free(c);
  rxq_free_all(c);
  if (c->shm && c->memfd >= 0)      /* kept by conn_release for spare_put */
    spare_put(c->spare_key, c->memfd, c->shm, c->shm_len, c->rx_prod, c->tx_read);
  else if (c->shm)
    munmap(c->shm, c->shm_len);
  free(c);
}

/* Drop every pcb callback that points at c (within or outside a callback). */
static void pcb_detach(struct tcp_pcb *pcb)
{
  if (!pcb)
    return;
  tcp_arg(pcb, NULL);
  if (pcb->state == LISTEN) {
    tcp_accept(pcb, NULL);
    return;
  }
  tcp_recv(pcb, NULL);
  tcp_sent(pcb, NULL);
  tcp_err(pcb, NULL);
  tcp_poll(pcb, NULL, 0);
}

/* Forget c: its pcb must already be gone or detached. */
void conn_release(struct conn *c)
{
  if (c->dead)
    return;
  c->dead = 1;
  if (c->listener) {          /* died in its TEP handshake */
    c->listener->n_embryonic--;
    c->listener = NULL;
  }
  if (c->tfd >= 0) {
    loop_del(&c->ev);
    close(c->tfd);
    c->tfd = -1;
  }
  if (c->pfd >= 0 && c->pfd_valid)
    close(c->pfd);
  if (c->kind == CK_LISTENER) {
    conn_spares_drop(c->id | SPARE_KEY_LISTENER);
    c->spare_key = 0;
  }
  /* Only memory no program uses any more can be a spare: a connection can
   * end while the program still reads what is left in the ring (draining,
   * a reset), and its mapping stays valid until it closes. */
  if (!c->prog_closed)
    c->spare_key = 0;
  if (c->memfd >= 0 && !c->spare_key) {
    close(c->memfd);
    c->memfd = -1;
  }
  if (c->kfd >= 0) {
    loop_del(&c->kev);
    close(c->kfd);
    c->kfd = -1;
  }
  while (c->acc_q) {
    struct acc_pending *a = c->acc_q;
    c->acc_q = a->next;
    if (a->child) {
      a->child->listener = NULL;
      conn_abort(a->child, ECONNABORTED);
    }
    if (a->kfd >= 0)
      close(a->kfd);
    free(a);
  }
  /* children still in their TEP handshake */
  for (struct conn *o = all_conns; o; o = o->next)
    if (o->listener == c) {
      o->listener = NULL;
      conn_abort(o, ECONNABORTED);
    }
  struct conn **pp = &id_hash[hash_id(c->id)];
  while (*pp && *pp != c)
    pp = &(*pp)->hnext;
  if (*pp)
    *pp = c->hnext;
  if (c->prev)
    c->prev->next = c->next;
  else
    all_conns = c->next;
  if (c->next)
    c->next->prev = c->prev;
  n_conns--;
  loop_defer_free(conn_free, c);
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
  log_debug("conn %llu failed: %s", (unsigned long long)c->serial, strerror(err));
  conn_release(c);
}

/* The pcb the last tcp_abort() freed.  An lwIP callback must return
 * ERR_ABRT exactly when it freed its pcb that way, not whenever the conn
 * died: a conn that ends inside a callback by tcp_close() (the peer's FIN
 * completing a close the program started) leaves lwIP a live pcb, and
 * ERR_ABRT would make tcp_input() skip the ACK of that FIN — the peer then
 * held the connection for a retransmission timeout (~1 s) on every
 * encrypted connection the client closed first. */
static struct tcp_pcb *cb_aborted;

static err_t cb_ret(const struct tcp_pcb *pcb)
{
  if (pcb && cb_aborted == pcb) {
    cb_aborted = NULL;
    return ERR_ABRT;
  }
  return ERR_OK;
}

/* Abort (RST) and fail. */
void conn_abort(struct conn *c, int err)
{
  struct tcp_pcb *pcb = c->pcb;
  c->pcb = NULL;
  if (pcb) {
    pcb_detach(pcb);
    if (pcb->state == LISTEN) {
      tcp_close(pcb);
    } else {
      tcp_abort(pcb);
      cb_aborted = pcb;
    }
  }
  conn_fail(c, err);
}

/* ---- lwIP callbacks ------------------------------------------------------------ */

static void conn_check_finished(struct conn *c);
static void conn_setup_pcb(struct conn *c, struct tcp_pcb *pcb);

static void on_err(void *arg, err_t err)
{
  struct conn *c = arg;
  if (!c || c->dead)
    return;
  c->pcb = NULL;           /* lwIP freed it */
  int e = lwip_err_to_errno(err);
  if (c->st.state == ENOSHM_S_CONNECTING && err == ERR_RST)
    e = ECONNREFUSED;
  if (c->st.state == ENOSHM_S_CONNECTING && err == ERR_ABRT)
    e = c->connect_errno ? c->connect_errno : ETIMEDOUT;
  if (c->closing) {
    /* the program already closed: nobody to tell */
    conn_release(c);
    return;
  }
  if (err == ERR_CLSD) {
    /* An orderly end of TCP (both FINs acknowledged).  What the program has
     * not read yet is still delivered: tund keeps the connection until the
     * queue is in the ring and EOF is published (conn_rx_pump). */
    c->fin_in = 1;
    c->draining = 1;
    conn_rx_pump(c);
    return;
  }
  if (err == ERR_RST && c->fin_in)
    e = EPIPE;    /* like Linux: a reset answering our data in CLOSE-WAIT */
  conn_fail(c, e);
}

static err_t on_sent(void *arg, struct tcp_pcb *pcb, u16_t len)
{
  struct conn *c = arg;
  if (!c || c->dead)
    return ERR_OK;
  cb_aborted = NULL;
  crypt_on_acked(c, len);
  if (!c->crypt) {
    uint64_t n = len;
    if (n > c->tx_read - c->tx_cons)
      n = c->tx_read - c->tx_cons;
    c->tx_cons += n;
    atomic_store_explicit(&c->shm->tx_cons, c->tx_cons, memory_order_release);
  }
  if (c->closing) {
    if (conn_tx_all_acked(c)) {
      pcb_detach(pcb);
      conn_release(c);
    }
    return ERR_OK;
  }
  conn_update_writable(c);
  conn_tx_pump(c);
  return cb_ret(pcb);
}

static err_t on_recv(void *arg, struct tcp_pcb *pcb, struct pbuf *p, err_t err)
{
  struct conn *c = arg;
  (void)err;
  if (!c || c->dead) {
    if (p) {
      tcp_recved(pcb, p->tot_len);
      pbuf_free(p);
    }
    return ERR_OK;
  }
  if (!p) {
    c->fin_in = 1;
  } else if (rxq_push(c, p)) {
    return ERR_MEM;      /* lwIP keeps it as refused data and retries */
  }
  cb_aborted = NULL;
  conn_rx_pump(c);
  return cb_ret(pcb);
}

static void conn_setup_pcb(struct conn *c, struct tcp_pcb *pcb)
{
  c->pcb = pcb;
  tcp_arg(pcb, c);
  tcp_recv(pcb, on_recv);
  tcp_sent(pcb, on_sent);
  tcp_err(pcb, on_err);
  if (c->nodelay)
    tcp_nagle_disable(pcb);
  if (c->keepalive) {
    ip_set_option(pcb, SOF_KEEPALIVE);
    if (c->keep_idle)
      pcb->keep_idle = c->keep_idle;
    if (c->keep_intvl)
      pcb->keep_intvl = c->keep_intvl;
    if (c->keep_cnt)
      pcb->keep_cnt = c->keep_cnt;
  }
}

static void conn_set_addrs(struct conn *c)
{
  if (!c->pcb)
    return;
  ipaddr_to_shm(&c->pcb->local_ip, c->pcb->local_port, c->domain, &c->st.local);
  ipaddr_to_shm(&c->pcb->remote_ip, c->pcb->remote_port, c->domain, &c->st.remote);
}

/* The TCP connection exists (both opens); the TEP may still have work. */
void conn_established(struct conn *c)
{
  c->st.state = ENOSHM_S_ESTABLISHED;
  if (c->pcb)
    c->snd_sml = c->pcb->lastack;
  conn_publish(c);
  conn_update_writable(c);
  if (c->listener) {
    struct conn *l = c->listener;
    c->listener = NULL;
    l->n_embryonic--;
    listener_deliver(l, c);
  }
  conn_tx_pump(c);
  conn_rx_pump(c);
}

static err_t on_connected(void *arg, struct tcp_pcb *pcb, err_t err)
{
  struct conn *c = arg;
  if (!c || c->dead)
    return ERR_OK;
  (void)err;
  cb_aborted = NULL;
  conn_set_addrs(c);
  c->st.local.port = pcb->local_port;
  if (crypt_start(c))
    return cb_ret(pcb);   /* TEP handshake first */
  conn_established(c);
  return cb_ret(pcb);
}

static err_t on_accept(void *arg, struct tcp_pcb *npcb, err_t err)
{
  struct conn *l = arg;
  int e, pfd;
  if (!l || l->dead || err != ERR_OK || !npcb)
    return ERR_VAL;
  /* its descriptors were promised at the SYN (listener_admit): they are
   * slack of the reserve from here on, which conn_new() may take */
  if (glue_admission_redeem(npcb))
    fd_promise_release();
  struct conn *c = conn_new(l->domain, l->id | SPARE_KEY_LISTENER, &e, &pfd);
  if (!c) {
    tund_log_limited(LOG_WARN_, "cannot take an incoming connection: %s", strerror(e));
    tcp_abort(npcb);
    return ERR_ABRT;
  }
  c->kind = CK_STREAM;
  c->pfd = pfd;
  c->pfd_valid = 1;
  c->pid = l->pid;
  c->nodelay = l->nodelay;
  c->keepalive = l->keepalive;
  c->keep_idle = l->keep_idle;
  c->keep_intvl = l->keep_intvl;
  c->keep_cnt = l->keep_cnt;
  c->linger0 = l->linger0;
  c->listener = l;
  l->n_embryonic++;
  c->accepted = 1;
  crypt_inherit_opts(c, l);
  conn_setup_pcb(c, npcb);
  conn_set_addrs(c);
  c->st.state = ENOSHM_S_CONNECTING;
  cb_aborted = NULL;
  if (crypt_start(c))
    return cb_ret(npcb);
  conn_established(c);
  return cb_ret(npcb);
}

/* ---- data pumps ------------------------------------------------------------------ */

int conn_tx_all_acked(const struct conn *c)
{
  if (c->crypt)
    return crypt_tx_all_acked(c);
  return c->tx_cons == c->tx_read;
}

/* Nagle as Linux does it (Minshall's variant): a partial segment may leave
 * while no earlier partial segment is unacknowledged.  lwIP 2.1.3 keeps the
 * classic rule (hold it while anything at all is unacknowledged), which costs
 * request/response programs a delayed-ACK period per message.  snd_sml is
 * the end of the last segment that may have been partial. */
void conn_output(struct conn *c)
{
  struct tcp_pcb *pcb = c->pcb;
  if (!pcb)
    return;
  if (c->nodelay || !pcb->unsent || !TCP_SEQ_GEQ(pcb->lastack, c->snd_sml)) {
    tcp_output(pcb);
    return;
  }
  u32_t before = pcb->snd_nxt;
  tcp_nagle_disable(pcb);
  tcp_output(pcb);
  tcp_nagle_enable(pcb);
  if (pcb->snd_nxt != before && !pcb->unsent)
    c->snd_sml = pcb->snd_nxt;      /* the last one out may have been short */
}

/* Bytes the program published beyond tx_read, or -1 if it lied about tx_prod. */
int64_t conn_tx_avail(struct conn *c)
{
  int64_t a = enoshm_tx_avail_checked(c->shm, c->tx_size, c->tx_read, c->tx_cons);
  if (a < 0) {
    tund_log_limited(LOG_WARN_, "conn %llu: program wrote an impossible tx index; resetting",
                     (unsigned long long)c->serial);
    conn_abort(c, EIO);
  }
  return a;
}

static void conn_tx_pump_plain(struct conn *c)
{
  int wrote = 0;
  for (int round = 0; round < 2; round++) {
    int64_t avail = conn_tx_avail(c);
    if (avail < 0)
      return;
    while (avail > 0) {
      struct tcp_pcb *pcb = c->pcb;
      uint32_t room = pcb->snd_buf;
      if (pcb->snd_queuelen >= TCP_SND_QUEUELEN - 4 || room == 0)
        break;
      size_t pos = (size_t)(c->tx_read & (c->tx_size - 1));
      size_t n = (size_t)avail;
      if (n > c->tx_size - pos)
        n = c->tx_size - pos;
      if (n > room)
        n = room;
      if (n > 0xffff)
        n = 0xffff;
      u8_t flags = (n < (size_t)avail) ? TCP_WRITE_FLAG_MORE : 0;
      err_t e = tcp_write(pcb, c->tx_base + pos, (u16_t)n, flags);
      if (e == ERR_MEM)
        break;
      if (e != ERR_OK) {
        conn_abort(c, lwip_err_to_errno(e));
        return;
      }
      c->tx_read += n;
      c->tx_bytes += n;
      avail -= (int64_t)n;
      wrote = 1;
    }
    if (avail > 0)
      break;          /* lwIP is full: the sent callback resumes */
    /* Ring empty: ask for a wake-up, then look once more (the program may
     * have written after our check but before seeing the flag). */
    atomic_fetch_or(&c->shm->wants, ENOSHM_WANT_TX);
    atomic_thread_fence(memory_order_seq_cst);   /* flag, then look again */
  }
  if (wrote || c->pcb->unsent)
    conn_output(c);
}

void conn_tx_pump(struct conn *c)
{
  if (c->dead || !c->pcb || c->st.state != ENOSHM_S_ESTABLISHED || c->tx_shut_done)
    goto finish;
  if (c->crypt)
    crypt_tx_pump(c);
  else
    conn_tx_pump_plain(c);
  if (c->dead)
    return;
finish:
  if (!c->dead)
    conn_check_finished(c);
}

/* FIN after the ring's last byte, for shutdown(SHUT_WR) and for close().
 * After close() the pcb is handed to lwIP (tcp_close) and we only wait until
 * no queued segment references our ring. */
static void conn_check_finished(struct conn *c)
{
  if (!c->pcb || c->st.state != ENOSHM_S_ESTABLISHED)
    return;
  if (!c->shut_wr_req && !c->prog_closed)
    return;
  if (!c->tx_shut_done) {
    if (!c->crypt) {
      int64_t avail = enoshm_tx_avail_checked(c->shm, c->tx_size, c->tx_read, c->tx_cons);
      if (avail != 0)
        return;        /* still sending (or the index is bogus: the pump handles it) */
    } else if (!crypt_tx_fin_ready(c) || crypt_send_fin(c)) {
      return;          /* FINp frame pending; TCP FIN follows once it is written */
    }
    /* a FINp frame just queued is not output yet: the FIN below joins its
     * segment, and every path below outputs */
  }
  if (c->prog_closed && c->crypt && !c->fin_in) {
    /* tcpcrypt: the peer still owes its FINp frame, which is TCP data; a
     * tcp_close() now would answer it with RST.  Send our FIN and keep
     * reading (crypt.c resets if real data arrives, as the kernel would)
     * until the peer's FIN, bounded by crypt_tick(). */
    if (!c->tx_shut_done && tcp_shutdown(c->pcb, 0, 1) == ERR_OK) {
      c->tx_shut_done = 1;
      c->linger_since = sys_now();
    }
    tcp_output(c->pcb);
    return;
  }
  if (c->prog_closed) {
    struct tcp_pcb *pcb = c->pcb;
    int acked = conn_tx_all_acked(c);
    if (acked)
      pcb_detach(pcb);
    err_t e = tcp_close(pcb);     /* outputs the FIN (and a queued FINp) */
    if (e != ERR_OK) {
      if (acked)
        conn_setup_pcb(c, pcb);
      tcp_output(pcb);
      return;          /* out of memory: retried from the tick */
    }
    c->pcb = NULL;
    c->tx_shut_done = 1;
    c->closing = 1;
    if (acked)
      conn_release(c);
    return;
  }
  if (!c->tx_shut_done && tcp_shutdown(c->pcb, 0, 1) == ERR_OK) {
    c->tx_shut_done = 1;
    c->st.flags |= ENOSHM_F_TX_SHUT;
    conn_publish(c);
  }
  tcp_output(c->pcb);
}

/* ---- rx queue: pbuf chains as lwIP delivered them (each under 64 KiB, so
 * lwIP's 16-bit lengths hold), oldest first. */
int rxq_push(struct conn *c, struct pbuf *p)
{
  if (c->rxq_n == c->rxq_cap) {
    unsigned nc = c->rxq_cap ? c->rxq_cap * 2 : 8;
    struct pbuf **v = malloc(nc * sizeof(*v));
    if (!v)
      return -1;
    for (unsigned i = 0; i < c->rxq_n; i++)
      v[i] = c->rxq[(c->rxq_head + i) % c->rxq_cap];
    free(c->rxq);
    c->rxq = v;
    c->rxq_cap = nc;
    c->rxq_head = 0;
  }
  c->rxq[(c->rxq_head + c->rxq_n) % c->rxq_cap] = p;
  c->rxq_n++;
  c->rxq_bytes += p->tot_len;
  return 0;
}

struct pbuf *rxq_front(struct conn *c)
{
  return c->rxq_n ? c->rxq[c->rxq_head] : NULL;
}

/* Mark n bytes of the front chain consumed (n <= what is left of it). */
void rxq_consume(struct conn *c, size_t n)
{
  struct pbuf *p = c->rxq[c->rxq_head];
  c->rxq_off += n;
  c->rxq_bytes -= n;
  if (c->rxq_off >= p->tot_len) {
    pbuf_free(p);
    c->rxq_head = (c->rxq_head + 1) % c->rxq_cap;
    c->rxq_n--;
    c->rxq_off = 0;
  }
}

void rxq_free_all(struct conn *c)
{
  while (c->rxq_n) {
    pbuf_free(c->rxq[c->rxq_head]);
    c->rxq_head = (c->rxq_head + 1) % c->rxq_cap;
    c->rxq_n--;
  }
  free(c->rxq);
  c->rxq = NULL;
  c->rxq_cap = 0;
  c->rxq_off = 0;
  c->rxq_bytes = 0;
}

/* Plain rx: copy queued pbufs into the ring as space allows. */
static void conn_rx_pump_plain(struct conn *c)
{
  uint64_t copied_total = 0;
  for (int round = 0; round < 2 && c->rxq_n; round++) {
    int64_t space = enoshm_rx_space_checked(c->shm, c->rx_size, c->rx_prod);
    if (space < 0) {
      tund_log_limited(LOG_WARN_, "conn %llu: program wrote an impossible rx index; resetting",
                       (unsigned long long)c->serial);
      conn_abort(c, EIO);
      return;
    }
    while (c->rxq_n && space > 0) {
      struct pbuf *p = rxq_front(c);
      size_t left = p->tot_len - c->rxq_off;
      size_t n = left < (uint64_t)space ? left : (size_t)space;
      struct enoshm_span sp;
      enoshm_span_make(&sp, c->rx_base, c->rx_size, c->rx_prod, n);
      size_t done = 0, off = c->rxq_off;
      for (struct pbuf *q = p; q && done < n; q = q->next) {
        if (off >= q->len) {
          off -= q->len;
          continue;
        }
        size_t k = q->len - off;
        if (k > n - done)
          k = n - done;
        enoshm_span_write(&sp, done, (const uint8_t *)q->payload + off, k);
        done += k;
        off = 0;
      }
      c->rx_prod += n;
      space -= (int64_t)n;
      copied_total += n;
      rxq_consume(c, n);
    }
    if (copied_total)
      atomic_store_explicit(&c->shm->rx_prod, c->rx_prod, memory_order_release);
    if (!c->rxq_n)
      break;
    /* Ring full: ask for a wake-up, then look once more. */
    atomic_fetch_or(&c->shm->wants, ENOSHM_WANT_RXSPACE);
    atomic_thread_fence(memory_order_seq_cst);
  }
  if (copied_total) {
    for (uint64_t left = copied_total; left > 0;) {
      u16_t k = left > 0xffff ? 0xffff : (u16_t)left;
      if (c->pcb)
        tcp_recved(c->pcb, k);
      left -= k;
    }
    c->rx_bytes += copied_total;
    conn_rx_notify(c);
  }
}

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

void conn_rx_pump(struct conn *c)
{
  if (c->dead || c->st.state < ENOSHM_S_CONNECTING)
    return;
  if (c->st.state != ENOSHM_S_ESTABLISHED && !c->crypt)
    return;
  if (c->crypt)
    crypt_rx_pump(c);
  else if (c->rxq_n)
    conn_rx_pump_plain(c);
  if (c->dead)
    return;
  if (!c->rxq_n && c->fin_in && c->st.state == ENOSHM_S_ESTABLISHED && !c->eof_published) {
    if (c->crypt && crypt_rx_fin_without_finp(c))
      return;
    conn_publish_eof(c);
  }
  if (c->prog_closed && c->fin_in && !c->closing && !c->dead)
    conn_check_finished(c);        /* the lingering close can finish now */
  if (c->draining && c->eof_published && !c->dead) {
    /* TCP ended earlier (on_err ERR_CLSD) and everything is in the ring */
    c->st.state = ENOSHM_S_CLOSED;
    c->st.flags |= ENOSHM_F_DEAD;
    conn_publish(c);
    conn_release(c);
  }
}

/* ---- the program's end of the pair ---------------------------------------------- */

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

/* The program set rx_tok back to 1 itself (it raced our publication, see
 * shm.h) and asks for the one token that flag now stands for. */
void conn_kick_rearm(struct conn *c)
{
  if (c->dead)
    return;
  if (c->tfd >= 0 && !c->t_wr_shut) {
    ssize_t w = send(c->tfd, "r", 1, MSG_DONTWAIT | MSG_NOSIGNAL);
    (void)w;
  }
  conn_kick(c);
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

/* ---- listeners ------------------------------------------------------------------ */

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
    l->syn_dropped++;
    if ((fd_short_drops & (fd_short_drops - 1)) == 0)
      tund_log_limited(LOG_WARN_, "listener on port %u: out of file descriptors: SYN dropped (%llu so far), "
                       "the peer will retry", (unsigned)l->st.local.port, (unsigned long long)fd_short_drops);
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

/* ---- requests ------------------------------------------------------------------- */

int conn_socket(struct client *cl, int domain, int v6only, uint64_t *id, int fds[2], uint32_t *shm_size)
{
  int err, pfd;
  if (domain != AF_INET && domain != AF_INET6)
    return EAFNOSUPPORT;
  struct conn *c = conn_new(domain, client_spare_key(cl), &err, &pfd);
  if (!c)
    return err;
  c->v6only = v6only;
  c->kind = CK_NEW;
  conn_publish(c);
  *id = c->id;
  fds[0] = pfd;
  fds[1] = dup(c->memfd);
  if (fds[1] < 0) {
    close(pfd);
    conn_release(c);
    return ENOBUFS;
  }
  *shm_size = (uint32_t)c->shm_len;
  return 0;
}

/* A socket made ahead for a control connection (client.c: client_standby);
 * AF_INET until taken. */
int conn_standby_new(struct client *cl, uint64_t *id, int fds[2], uint32_t *shm_size)
{
  int err = conn_socket(cl, AF_INET, 0, id, fds, shm_size);
  if (err)
    return err;
  struct conn *c = conn_find(*id);
  if (c)
    c->standby = 1;
  return 0;
}

int conn_standby_take(struct conn *c, int domain, int v6only)
{
  if (!c->standby || (domain != AF_INET && domain != AF_INET6))
    return EINVAL;
  c->standby = 0;
  c->domain = domain;
  c->v6only = v6only != 0;
  return 0;
}

static int conn_ensure_pcb(struct conn *c, u8_t type)
{
  if (c->pcb)
    return 0;
  struct tcp_pcb *pcb = tcp_new_ip_type(type);
  if (!pcb)
    return ENOBUFS;
  if (c->reuseaddr)
    ip_set_option(pcb, SOF_REUSEADDR);
  c->pcb = pcb;
  tcp_arg(pcb, c);
  tcp_err(pcb, on_err);
  return 0;
}

static int addr_is_lwip_local(const ip_addr_t *ip)
{
  if (ip_addr_isany(ip))
    return 1;
  if (IP_IS_V4(ip))
    return !memcmp(&ip_2_ip4(ip)->addr, &cfg.lwip4, 4);
  return cfg.have_v6 && !memcmp(ip_2_ip6(ip)->addr, &cfg.lwip6, 16);
}

int conn_bind(struct conn *c, const struct enoipc_addr *a, int kernel_bound, struct enoipc_addr *bound)
{
  ip_addr_t ip;
  int e;
  if (c->kind != CK_NEW || c->st.state != ENOSHM_S_NEW)
    return EINVAL;
  if ((e = ipaddr_from_ipc(a, c->domain, &ip)))
    return e;
  /* neither the kernel nor lwIP owns this address */
  if (!kernel_bound && !addr_is_lwip_local(&ip))
    return EADDRNOTAVAIL;
  /* An address that is not lwIP's (the host's own, which the program's kernel
   * listener covers) binds lwIP to "any" of the family. */
  u8_t type = IP_IS_V6(&ip) ? IPADDR_TYPE_V6 : IPADDR_TYPE_V4;
  if (c->domain == AF_INET6 && !c->v6only && ip_addr_isany(&ip))
    type = IPADDR_TYPE_ANY;
  if (!addr_is_lwip_local(&ip)) {
    if (IP_IS_V6(&ip))
      ip = *IP6_ADDR_ANY;
    else
      ip = *IP4_ADDR_ANY;
  }
  if (type == IPADDR_TYPE_ANY)
    ip = *IP_ANY_TYPE;
  if ((e = conn_ensure_pcb(c, type)))
    return e;
  err_t le = tcp_bind(c->pcb, &ip, a->port);
  if (le != ERR_OK)
    return lwip_err_to_errno(le);
  c->st.state = ENOSHM_S_BOUND;
  ipaddr_to_shm(&c->pcb->local_ip, c->pcb->local_port, c->domain, &c->st.local);
  conn_publish(c);
  memset(bound, 0, sizeof(*bound));
  bound->family = c->st.local.family;
  bound->port = c->pcb->local_port;
  memcpy(bound->addr, c->st.local.addr, 16);
  return 0;
}

int conn_listen(struct conn *c, int backlog, int kfd)
{
  int e;
  if (c->kind == CK_LISTENER) {
    /* listen() again only changes the backlog */
    c->backlog = backlog > 0 ? backlog : 1;
    if (kfd >= 0)
      close(kfd);
    return 0;
  }
  if (c->kind != CK_NEW) {
    if (kfd >= 0)
      close(kfd);
    return EINVAL;
  }
  if (!c->pcb) {
    u8_t type = c->domain == AF_INET ? IPADDR_TYPE_V4 : (c->v6only ? IPADDR_TYPE_V6 : IPADDR_TYPE_ANY);
    if ((e = conn_ensure_pcb(c, type))) {
      if (kfd >= 0) close(kfd);
      return e;
    }
    if (tcp_bind(c->pcb, IP_IS_ANY_TYPE_VAL(c->pcb->local_ip) ? IP_ANY_TYPE : &c->pcb->local_ip, 0) != ERR_OK) {
      if (kfd >= 0) close(kfd);
      return EADDRINUSE;
    }
  }
  err_t le;
  struct tcp_pcb *lpcb = tcp_listen_with_backlog_and_err(c->pcb, 255, &le);
  if (!lpcb) {
    if (kfd >= 0)
      close(kfd);
    return lwip_err_to_errno(le);
  }
  c->pcb = lpcb;
  tcp_arg(lpcb, c);
  tcp_accept(lpcb, on_accept);
  crypt_listen_setup(c);
  c->kind = CK_LISTENER;
  c->backlog = backlog > 0 ? (backlog > 65535 ? 65535 : backlog) : 1;
  c->st.state = ENOSHM_S_LISTENING;
  ipaddr_to_shm(&lpcb->local_ip, lpcb->local_port, c->domain, &c->st.local);
  conn_publish(c);
  if (kfd >= 0) {
    fcntl(kfd, F_SETFL, O_NONBLOCK);
    c->kfd = kfd;
    c->kev.fd = kfd;
    c->kev.fn = listener_kernel_event;
    if (loop_add(&c->kev, EPOLLIN)) {
      close(kfd);
      c->kfd = -1;
    } else {
      c->kfd_armed = 1;
    }
  }
  return 0;
}

int conn_connect(struct conn *c, const struct enoipc_addr *a)
{
  ip_addr_t ip;
  int e;
  if (c->kind == CK_LISTENER)
    return EINVAL;
  if (c->kind == CK_STREAM)
    return c->st.state == ENOSHM_S_CONNECTING ? EALREADY : EISCONN;
  if ((e = ipaddr_from_ipc(a, c->domain, &ip)))
    return e;
  if (ip_addr_isany(&ip))
    return ECONNREFUSED;
  if (c->pcb && !IP_IS_ANY_TYPE_VAL(c->pcb->local_ip) &&
      IP_GET_TYPE(&c->pcb->local_ip) != IP_GET_TYPE(&ip)) {
    /* bound to the other family's "any": lwIP wants matching types */
    if (!ip_addr_isany(&c->pcb->local_ip))
      return EINVAL;
    IP_SET_TYPE_VAL(c->pcb->local_ip, IP_GET_TYPE(&ip));
  }
  if ((e = conn_ensure_pcb(c, IP_GET_TYPE(&ip))))
    return e;
  conn_setup_pcb(c, c->pcb);
  c->kind = CK_STREAM;
  c->st.state = ENOSHM_S_CONNECTING;
  ipaddr_to_shm(&ip, a->port, c->domain, &c->st.remote);
  if ((e = crypt_connect_setup(c, a->port))) {
    c->kind = CK_NEW;
    c->st.state = ENOSHM_S_NEW;
    return e;
  }
  int had_port = c->pcb->local_port != 0;
  err_t le = tcp_connect(c->pcb, &ip, a->port, on_connected);
  if (le != ERR_OK) {
    c->kind = CK_NEW;
    c->st.state = ENOSHM_S_NEW;
    /* tcp_connect() says ERR_BUF when tcp_new_port() found no free
     * ephemeral port: the kernel's EADDRNOTAVAIL */
    if (le == ERR_BUF && !had_port) {
      tund_log_limited(LOG_WARN_, "no free local port for an outgoing connection (%u in TIME-WAIT "
                       "at most: time_wait_max)", (unsigned)cfg.time_wait_max);
      return EADDRNOTAVAIL;
    }
    return lwip_err_to_errno(le);
  }
  /* lwIP's pcb is created with the full TCP_WND; our ring is the real limit. */
  conn_set_addrs(c);
  conn_publish(c);
  return 0;
}

int conn_setopt(struct conn *c, int level, int name, const uint8_t *val, uint32_t len)
{
  int iv = 0;
  if (len >= sizeof(int))
    memcpy(&iv, val, sizeof(int));
  if (level == SOL_SOCKET) {
    switch (name) {
    case SO_REUSEADDR:
    case SO_REUSEPORT:
      if (len < sizeof(int)) return EINVAL;
      c->reuseaddr = iv != 0;
      if (c->pcb && c->pcb->state != LISTEN) {
        if (iv) ip_set_option(c->pcb, SOF_REUSEADDR);
        else ip_reset_option(c->pcb, SOF_REUSEADDR);
      }
      return 0;
    case SO_KEEPALIVE:
      if (len < sizeof(int)) return EINVAL;
      c->keepalive = iv != 0;
      if (c->pcb && c->pcb->state != LISTEN) {
        if (iv) ip_set_option(c->pcb, SOF_KEEPALIVE);
        else ip_reset_option(c->pcb, SOF_KEEPALIVE);
      }
      return 0;
    case SO_LINGER: {
      struct linger lg;
      if (len < sizeof(lg)) return EINVAL;
      memcpy(&lg, val, sizeof(lg));
      c->linger0 = lg.l_onoff && lg.l_linger == 0;
      return 0;
    }
    default:
      return ENOPROTOOPT;
    }
  }
  if (level == IPPROTO_IPV6 && name == IPV6_V6ONLY) {
    if (len < sizeof(int)) return EINVAL;
    if (c->kind != CK_NEW || c->st.state != ENOSHM_S_NEW) return EINVAL;
    c->v6only = iv != 0;
    return 0;
  }
  if (level == IPPROTO_TCP) {
    switch (name) {
    case TCP_NODELAY:
      if (len < sizeof(int)) return EINVAL;
      c->nodelay = iv != 0;
      if (c->pcb && c->pcb->state != LISTEN) {
        if (iv) tcp_nagle_disable(c->pcb);
        else tcp_nagle_enable(c->pcb);
        if (iv && c->st.state == ENOSHM_S_ESTABLISHED)
          tcp_output(c->pcb);
      }
      return 0;
    case TCP_KEEPIDLE:
    case TCP_KEEPINTVL:
    case TCP_KEEPCNT:
      if (len < sizeof(int) || iv < 1 || iv > 32767) return EINVAL;
      if (name == TCP_KEEPIDLE) c->keep_idle = (u32_t)iv * 1000u;
      if (name == TCP_KEEPINTVL) c->keep_intvl = (u32_t)iv * 1000u;
      if (name == TCP_KEEPCNT) c->keep_cnt = (u32_t)iv;
      if (c->pcb && c->pcb->state != LISTEN) {
        if (c->keep_idle) c->pcb->keep_idle = c->keep_idle;
        if (c->keep_intvl) c->pcb->keep_intvl = c->keep_intvl;
        if (c->keep_cnt) c->pcb->keep_cnt = c->keep_cnt;
      }
      return 0;
    default:
      return crypt_setopt(c, name, val, len);
    }
  }
  return ENOPROTOOPT;
}

/* A posted connect (the shim does not wait for the answer: shim/sock.c)
 * that tund refuses at once — no route, no free port, out of memory — ends
 * the socket with that error, as a connect that failed on the wire would:
 * the program's blocking connect(), SO_ERROR and poll learn it from the
 * status block.  A posted connect on a listener or on a socket already
 * connecting comes only from a program that did not follow the shim's rules
 * (it posts on a new socket nobody else holds): it must not end what may be
 * another process's listener or connection. */
void conn_connect_posted_failed(struct conn *c, int err)
{
  if (c->kind != CK_NEW) {     /* a listener (EINVAL), connecting or connected */
    tund_log_limited(LOG_WARN_, "posted connect on connection %llu: %s; ignored", (unsigned long long)c->serial,
                     strerror(err));
    return;
  }
  log_debug("posted connect on conn %llu refused: %s", (unsigned long long)c->serial, strerror(err));
  conn_abort(c, err);
}

/* The shim posts only options it checked would succeed (shim/sock.c).  One
 * that fails all the same (out of memory) is an option the program believes
 * in force: end the socket rather than let it connect without. */
void conn_posted_failed(struct conn *c, int level, int name, int err)
{
  tund_log_limited(LOG_WARN_, "posted option %d/%d on connection %llu failed: %s; aborting it", level, name,
                   (unsigned long long)c->serial, strerror(err));
  conn_abort(c, err);
}

int conn_getopt(struct conn *c, int level, int name, uint8_t *val, uint32_t *len)
{
  if (level == IPPROTO_TCP) {
    if (name == TCP_MAXSEG) {
      int v = c->pcb && c->pcb->state != LISTEN ? c->pcb->mss : TCP_MSS;
      if (*len < sizeof(v)) return EINVAL;
      memcpy(val, &v, sizeof(v));
      *len = sizeof(v);
      return 0;
    }
    if (name == TCP_INFO) {
      struct tcp_info ti;
      memset(&ti, 0, sizeof(ti));
      if (c->pcb && c->pcb->state != LISTEN) {
        struct tcp_pcb *p = c->pcb;
        /* lwIP's enum tcp_state -> Linux's tcpi_state numbers */
        static const uint8_t map[] = { 7 /* CLOSE */, 10 /* LISTEN */, 2 /* SYN_SENT */,
                                       3 /* SYN_RECV */, 1 /* ESTABLISHED */, 4 /* FIN_WAIT1 */,
                                       5 /* FIN_WAIT2 */, 8 /* CLOSE_WAIT */, 11 /* CLOSING */,
                                       9 /* LAST_ACK */, 6 /* TIME_WAIT */ };
        ti.tcpi_state = p->state < sizeof(map) ? map[p->state] : 7;
        ti.tcpi_snd_mss = p->mss;
        ti.tcpi_rcv_mss = p->mss;
        ti.tcpi_rtt = (uint32_t)(p->sa >> 3) * TCP_SLOW_INTERVAL * 1000u;
        ti.tcpi_rttvar = (uint32_t)p->sv * TCP_SLOW_INTERVAL * 1000u;
        ti.tcpi_snd_cwnd = p->mss ? p->cwnd / p->mss : 0;
        ti.tcpi_snd_ssthresh = p->mss ? p->ssthresh / p->mss : 0;
        ti.tcpi_retransmits = p->nrtx;
      } else {
        ti.tcpi_state = c->kind == CK_LISTENER ? 10 : 7;
      }
      uint32_t n = *len < sizeof(ti) ? *len : (uint32_t)sizeof(ti);
      memcpy(val, &ti, n);
      *len = n;
      return 0;
    }
    return crypt_getopt(c, name, val, len);
  }
  return ENOPROTOOPT;
}

int conn_shutdown(struct conn *c, int how)
{
  if (how != SHUT_RD && how != SHUT_WR && how != SHUT_RDWR)
    return EINVAL;
  if (c->kind == CK_LISTENER) {
    /* like Linux: shutting down a listener stops it; accept() then fails */
    conn_abort(c, EINVAL);
    return 0;
  }
  if (c->kind != CK_STREAM || c->st.state == ENOSHM_S_CONNECTING)
    return ENOTCONN;
  if (c->st.state != ENOSHM_S_ESTABLISHED)
    return 0;
  if (how == SHUT_RD || how == SHUT_RDWR) {
    /* Linux: after SHUT_RD the socket polls readable (read() returns 0) */
    if (c->tfd >= 0 && !c->t_wr_shut) {
      shutdown(c->tfd, SHUT_WR);
      c->t_wr_shut = 1;
    }
  }
  if (how == SHUT_WR || how == SHUT_RDWR) {
    c->shut_wr_req = 1;
    conn_tx_pump(c);
  }
  return 0;
}

/* The shim's fork handler: a child is about to inherit these sockets. */
void conn_forked(const uint64_t *ids, size_t n)
{
  for (size_t i = 0; i < n; i++) {
    struct conn *c = conn_find(ids[i]);
    if (c)
      c->spare_key = 0;
  }
}

int conn_attach(int pairfd, uint64_t *id, uint32_t *kind, int *memfd, uint32_t *shm_size)
{
  struct stat st;
  if (fstat(pairfd, &st) || !S_ISSOCK(st.st_mode))
    return EBADF;
  for (struct conn *c = all_conns; c; c = c->next) {
    if (c->dead || c->p_ino != st.st_ino || c->memfd < 0)
      continue;
    *id = c->id;
    *kind = c->kind == CK_LISTENER ? ENOIPC_KIND_LISTENER : ENOIPC_KIND_STREAM;
    c->spare_key = 0;         /* mapped by a process we cannot vouch for */
    *memfd = dup(c->memfd);
    *shm_size = (uint32_t)c->shm_len;
    return *memfd < 0 ? ENOBUFS : 0;
  }
  return ENOENT;
}

struct conn *conn_status_next(struct conn *prev, struct enoipc_status_entry *e)
{
  struct conn *c = prev ? prev->next : all_conns;
  while (c && (c->dead || c->standby))
    c = c->next;
  if (!c)
    return NULL;
  memset(e, 0, sizeof(*e));
  e->id = c->serial;
  e->pid = (uint32_t)c->pid;
  e->kind = c->kind == CK_LISTENER ? ENOIPC_KIND_LISTENER : ENOIPC_KIND_STREAM;
  e->state = (uint8_t)c->st.state;
  e->eno_state = c->st.eno_state;
  e->eno_reason = c->st.eno_reason;
  e->role = c->st.role;
  e->negtep = c->st.negtep;
  e->aead = c->st.aead;
  e->sessid_len = c->st.sessid_len;
  e->resumed = c->st.resumed;
  memcpy(e->sessid, c->st.sessid, sizeof(e->sessid));
  e->tcp_state = c->pcb ? (uint8_t)c->pcb->state : 0;
  memcpy(&e->local, &c->st.local, sizeof(e->local));
  memcpy(&e->remote, &c->st.remote, sizeof(e->remote));
  e->rx_bytes = c->rx_bytes;
  e->tx_bytes = c->tx_bytes;
  crypt_status(c, e);
  return c;
}

int conn_command(uint32_t cmd, uint64_t arg, char *out, size_t outlen)
{
  switch (cmd) {
  case ENOIPC_CMD_STOP:
    snprintf(out, outlen, "stopping");
    loop_stop();
    return 0;
  case ENOIPC_CMD_REKEY:
  case ENOIPC_CMD_FLUSH_CACHE:
    return crypt_command(cmd, arg, out, outlen);
  case ENOIPC_CMD_CHECK: {
    int bad = glue_check_ports(out, outlen);
    size_t n = strlen(out);
    if (n + 2 < outlen) {
      out[n++] = ';';
      out[n++] = ' ';
      bad |= conn_spares_check(out + n, outlen - n);
    }
    return bad ? EPROTO : 0;
  }
  default:
    return EINVAL;
  }
}

static void conn_tick(void *arg)
{
  (void)arg;
  for (struct conn *c = all_conns; c; c = c->next) {
    if (c->dead)
      continue;
    if (c->kind == CK_LISTENER && (c->acc_q || c->kfd >= 0))
      listener_flush(c);
    else if (c->kind == CK_STREAM)
      crypt_tick(c);
  }
  fd_reserve_trim();
  sys_timeout(200, conn_tick, NULL);
}

/* An ICMP error ended a connection attempt (stack/lwip_glue.c). */
static void on_unreachable(struct tcp_pcb *pcb, int err)
{
  struct conn *c = pcb->callback_arg;
  if (!c || c->dead || c->pcb != pcb)
    return;
  c->connect_errno = err;
  conn_abort(c, err);
}

void conn_module_init(void)
{
  glue_on_unreachable = on_unreachable;
  randombytes_buf(id_key, sizeof(id_key));
  fd_reserve_grow(FD_SLACK);
  crypt_module_init();
  sys_timeout(200, conn_tick, NULL);
}

void conn_close_all(void)
{
  /* RST every connection so that peers do not wait; programs see their fd
   * hang up (reads fail with ECONNABORTED). */
  while (all_conns) {
    struct conn *c = all_conns;
    if (c->closing && !c->pcb) {
      conn_release(c);
      continue;
    }
    conn_abort(c, ECONNABORTED);
  }
}
