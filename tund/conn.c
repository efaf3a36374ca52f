/*
 * tund/conn.c — the connection table: a program's socket (its socketpair end
 * and shared memory) joined to an lwIP pcb.  This file holds the table
 * itself (ids, lookup, the list), making a connection and forgetting it, the
 * periodic tick, and the module's start and end.  The rest of a
 * connection's life has a file each; conn.h declares what crosses them:
 *
 *   progend.c   publishing to the program; the program's end of the pair
 *   spares.c    a connection's shared memory and the pool of spare memfds
 *   fdres.c     the descriptor reserve: admitting SYNs at the fd limit
 *   tcpcb.c     lwIP's side: pcb callbacks, aborting, lwIP's types and errors
 *   pump.c      the data pumps between the rings and lwIP; the rx queue
 *   listener.c  listeners: the accept queue, SYN admission, the kernel side
 *   request.c   what programs ask: socket, bind, listen, connect, options...
 *   crypt.c     ENO options and tcpcrypt frames
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
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <sodium.h>

#include "lwip/tcp.h"
#include "lwip/timeouts.h"
#include "lwip/sys.h"
#include "tund.h"
#include "conn.h"
#include "nat.h"

static struct conn *all_conns;
static size_t n_conns;
static uint64_t next_serial = 1;

#define HASH_SIZE 16384u
static struct conn *id_hash[HASH_SIZE];

/* ---- ids --------------------------------------------------------------------- */

/*
 * A socket's id is its capability.  A request names its socket only by id
 * (a host-wide tund serves every local user, access.c), so a sequential id
 * would let any program shut down, reconnect or re-option another's sockets
 * by counting.  Ids are therefore 63 unpredictable bits (bit 63
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

/* ---- the table --------------------------------------------------------------- */

struct conn *conn_find(uint64_t id)
{
  for (struct conn *c = id_hash[hash_id(id)]; c; c = c->hnext)
    if (c->id == id && !c->dead)
      return c;
  return NULL;
}

/* The table, newest first: continue with c->next. */
struct conn *conn_first(void) { return all_conns; }

size_t conn_count(void) { return n_conns; }

void conn_touch_pid(struct conn *c, pid_t pid) { c->pid = pid; }

/* ---- creation and release ---------------------------------------------------- */

/* A new conn with its shared memory and socketpair.  *pfd gets the program's
 * end (the caller passes it on and closes it). */
/* A new conn into the table (by id and in the list), as a NEW socket. */
static void conn_link(struct conn *c)
{
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
}

struct conn *conn_new(int domain, uint64_t spare_key, int *err, int *pfd)
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
  *err = conn_shm_make(c, cfg.ring_size, spare_key);
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
  socklen_t cl = sizeof(c->p_cookie);
  if (getsockopt(sv[1], SOL_SOCKET, SO_COOKIE, &c->p_cookie, &cl) || cl != sizeof(c->p_cookie))
    c->p_cookie = 0;
  c->tfd = sv[0];
  if (conn_t_watch(c)) {
    *err = errno;
    close(sv[0]);
    close(sv[1]);
    munmap(c->shm, c->shm_len);
    close(c->memfd);
    free(c);
    return NULL;
  }
  conn_link(c);
  *pfd = sv[1];
  return c;
}

/* A conn for a listener a tund before us made (listener.c conn_relisten):
 * tfd is tund's end of its pair and p (len bytes, memfd) its shared memory,
 * checked by the caller on the copy lay of its header.  It keeps want_id, the id the program knows it by,
 * when that is free (and a valid id); else it gets a new one.  NULL with
 * *err, nothing taken. */
struct conn *conn_adopt(int domain, uint64_t want_id, int tfd, int memfd, struct enoshm *p, size_t len,
                        const struct enoshm *lay, int *err)
{
  struct conn *c = calloc(1, sizeof(*c));
  if (!c) {
    *err = ENOBUFS;
    return NULL;
  }
  c->id = want_id && !(want_id & SPARE_KEY_LISTENER) && !conn_find(want_id) ? want_id : new_id();
  c->serial = next_serial++;
  c->domain = domain;
  c->tfd = tfd;
  c->memfd = memfd;
  c->kfd = -1;
  c->spare_key = 0;            /* other processes map it: never a spare */
  c->shm = p;
  c->shm_len = len;
  c->rx_size = lay->rx_size;  /* the checked copy's: p is the program's to scribble on */
  c->tx_size = lay->tx_size;
  c->rx_base = (uint8_t *)p + lay->rx_off;
  c->tx_base = (uint8_t *)p + lay->tx_off;
  fcntl(tfd, F_SETFL, O_NONBLOCK);
  if (conn_t_watch(c)) {
    *err = errno;
    free(c);
    return NULL;
  }
  /* the old tund may have died inside a status update: even again */
  if (atomic_load(&p->seq) & 1)
    atomic_fetch_add(&p->seq, 1);
  atomic_store(&p->rx_tok, 0);
  p->sock_id = c->id;
  conn_link(c);
  return c;
}

static void conn_free(void *p)
{
  struct conn *c = p;
  crypt_conn_free(c);
  rxq_free_all(c);
  conn_shm_free(c);
  free(c);
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
  if (c->published) {
    nat_unpublish(c->published);
    c->published = 0;
  }
  conn_shm_release(c);
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

/* ---- the module -------------------------------------------------------------- */

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

void conn_module_init(void)
{
  conn_pcb_init();
  randombytes_buf(id_key, sizeof(id_key));
  fd_reserve_init();
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
