/*
 * shim/sockmem.c — a socket's shared memory in this process: mapping it
 * when the socket comes to us (socket(), accept(), ATTACH), with the
 * cross-process locks of its header; freeing it; and keeping the mapping
 * for the same owner's next socket.
 *
 * tund hands the memfd of an ended socket to the same owner's next socket
 * (tund/spares.c): the same process for sockets it made, the same listener
 * for accepted ones.  Keeping our mapping of it saves the mmap, the page
 * faults and the munmap per connection.  A kept mapping is found again by
 * the memfd's inode.  It is only kept for a socket this process made or
 * accepted itself (not one inherited through fork or exec), it is dropped
 * when the listener it came from is closed, and a forked child drops its
 * copies at once (sock_atfork_child).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "shim.h"

#define KEPT_MAX 16

struct kept {
  void *p;
  size_t len;
  dev_t dev;
  ino_t ino;
  uint64_t tag;
};
static struct kept kept[KEPT_MAX];
static unsigned n_kept;
static pthread_mutex_t kept_lock = PTHREAD_MUTEX_INITIALIZER;
static pid_t kept_pid;

static pid_t self_pid(void)
{
  pid_t p = __atomic_load_n(&kept_pid, __ATOMIC_RELAXED);
  if (!p) {
    p = getpid();
    __atomic_store_n(&kept_pid, p, __ATOMIC_RELAXED);
  }
  return p;
}

static void *kept_take(dev_t dev, ino_t ino, size_t len)
{
  void *p = NULL;
  pthread_mutex_lock(&kept_lock);
  for (unsigned i = 0; i < n_kept; i++) {
    if (kept[i].ino == ino && kept[i].dev == dev && kept[i].len == len) {
      p = kept[i].p;
      kept[i] = kept[--n_kept];
      break;
    }
  }
  pthread_mutex_unlock(&kept_lock);
  return p;
}

/* Returns 1 if kept, 0 if the caller must unmap it.  A full list drops its
 * oldest entry (tund may not have taken that memfd back: a connection that
 * ended before the program closed it is never a spare). */
static int kept_put(const struct shim_sock *s)
{
  void *old = NULL;
  size_t old_len = 0;
  if (s->cache_tag == SHM_NO_CACHE || s->cache_pid != self_pid() || s->kind != SK_STREAM)
    return 0;
  /* a ring that moved a lot holds many pages: not worth keeping them */
  if (atomic_load_explicit(&s->shm->rx_prod, memory_order_relaxed) > ENOSHM_REUSE_TOUCH_MAX ||
      atomic_load_explicit(&s->shm->tx_prod, memory_order_relaxed) > ENOSHM_REUSE_TOUCH_MAX)
    return 0;
  pthread_mutex_lock(&kept_lock);
  if (n_kept == KEPT_MAX) {
    old = kept[0].p;
    old_len = kept[0].len;
    memmove(&kept[0], &kept[1], (KEPT_MAX - 1) * sizeof(kept[0]));
    n_kept--;
  }
  kept[n_kept++] = (struct kept){ .p = s->shm, .len = s->shm_len, .dev = s->shm_dev, .ino = s->shm_ino,
                                  .tag = s->cache_tag };
  pthread_mutex_unlock(&kept_lock);
  if (old)
    munmap(old, old_len);
  return 1;
}

/* The listener is closed here: what came through it is no longer ours to see. */
static void kept_drop_tag(uint64_t tag)
{
  pthread_mutex_lock(&kept_lock);
  for (unsigned i = n_kept; i-- > 0;) {
    if (kept[i].tag == tag) {
      munmap(kept[i].p, kept[i].len);
      kept[i] = kept[--n_kept];
    }
  }
  pthread_mutex_unlock(&kept_lock);
}

/* ---- fork -------------------------------------------------------------------- */

/* The ids a fork is about to share, sent to tund a message at a time. */
struct forked_list {
  uint64_t ids[ENOIPC_MAX_MSG / 8 - 4];
  unsigned n;
};

static void forked_flush(struct forked_list *l)
{
  int err;
  if (l->n)
    ctl_call(ENOIPC_FORKED, 0, l->ids, l->n * sizeof(l->ids[0]), NULL, 0, NULL, 0, &err, NULL, NULL, NULL,
             NULL, NULL);
  l->n = 0;
}

static void forked_collect(struct shim_sock *s, void *arg)
{
  struct forked_list *l = arg;
  s->shared = 1;                        /* in the parent, and the child's copy */
  if (s->kind != SK_STREAM || s->cache_tag == SHM_NO_CACHE)
    return;
  if (l->n == sizeof(l->ids) / sizeof(l->ids[0]))
    forked_flush(l);
  l->ids[l->n++] = s->id;
}

/* Before fork: the child will share these sockets' memory, so tund must
 * never give it to anyone else when they end. */
void sock_atfork_prepare(void)
{
  static struct forked_list l;          /* one fork at a time */
  static pthread_mutex_t fl = PTHREAD_MUTEX_INITIALIZER;
  pthread_mutex_lock(&fl);
  l.n = 0;
  fdt_foreach(forked_collect, &l);
  forked_flush(&l);
  pthread_mutex_unlock(&fl);
}

void sock_atfork_child(void)
{
  /* the copies we inherited are the parent's to reuse, not ours */
  for (unsigned i = 0; i < n_kept; i++)
    munmap(kept[i].p, kept[i].len);
  n_kept = 0;
  pthread_mutex_init(&kept_lock, NULL);
  __atomic_store_n(&kept_pid, getpid(), __ATOMIC_RELAXED);
  relisten_atfork_child();
}

/* ---- a socket's memory ------------------------------------------------------- */

static void sock_init_locks(struct enoshm *m)
{
  /* First process to see this socket initialises the cross-process locks;
   * robust so that a program killed while holding one does not wedge others. */
  uint32_t exp = 0;
  if (atomic_compare_exchange_strong(&m->locks_ready, &exp, 1)) {
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
    pthread_mutex_init(&m->rx_lock, &a);
    pthread_mutex_init(&m->tx_lock, &a);
    pthread_mutexattr_destroy(&a);
    atomic_store(&m->locks_ready, 2);
  } else {
    while (atomic_load(&m->locks_ready) != 2)
      ;
  }
}

/* shm_size 0: take it from the memfd (validated all the same). */
struct shim_sock *sock_from_shm(uint64_t id, int memfd, size_t shm_size, int kind, int domain,
                                uint64_t cache_tag, int *err)
{
  struct stat st;
  if (fstat(memfd, &st) || (shm_size && (size_t)st.st_size != shm_size)) {
    *err = EPROTO;
    return NULL;
  }
  shm_size = (size_t)st.st_size;
  if (shm_size < ENOSHM_HDR_SIZE || shm_size > ENOSHM_HDR_SIZE + 2 * (size_t)ENOSHM_RING_MAX) {
    *err = EPROTO;
    return NULL;
  }
  void *p = cache_tag == SHM_NO_CACHE ? NULL : kept_take(st.st_dev, st.st_ino, shm_size);
  if (!p)
    p = mmap(NULL, shm_size, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
  if (p == MAP_FAILED) {
    *err = ENOBUFS;
    return NULL;
  }
  struct enoshm *m = p;
  if (!enoshm_header_ok(m, shm_size) || m->sock_id != id) {
    munmap(p, shm_size);
    *err = EPROTO;
    return NULL;
  }
  struct shim_sock *s = calloc(1, sizeof(*s));
  if (!s) {
    munmap(p, shm_size);
    *err = ENOBUFS;
    return NULL;
  }
  s->cache_tag = cache_tag;
  s->cache_pid = self_pid();
  s->shm_dev = st.st_dev;
  s->shm_ino = st.st_ino;
  s->id = id;
  s->kind = kind;
  s->domain = domain;
  s->shm = m;
  s->shm_len = shm_size;
  s->rx_base = (uint8_t *)p + m->rx_off;
  s->tx_base = (uint8_t *)p + m->tx_off;
  s->rx_size = m->rx_size;
  s->tx_size = m->tx_size;
  s->kfd = -1;
  s->keep_idle = 7200;
  s->keep_intvl = 75;
  s->keep_cnt = 9;
  pthread_mutex_init(&s->lock, NULL);
  sock_init_locks(m);
  return s;
}

void sock_free(struct shim_sock *s)
{
  if (s->kfd >= 0)
    shim_internal_close(s->kfd);
  if (s->keep || s->optlog)
    relisten_forget(s);
  if (s->kind == SK_LISTENER && s->cache_pid == self_pid())
    kept_drop_tag(s->id | SHM_TAG_LISTENER);
  if (!kept_put(s))
    munmap(s->shm, s->shm_len);
  pthread_mutex_destroy(&s->lock);
  free(s);
}
