/*
 * shim/fdtable.c — which fds are the shim's sockets.
 *
 * A two-level table indexed by fd (chunks of 1024 allocated on first use) of
 * atomic pointers.  The fast path for fds that are not ours is one atomic
 * load.  Taking a reference happens under a striped mutex so that a close()
 * racing with a call on another thread cannot free the socket under it.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "shim.h"

#define CHUNK_BITS 10
#define CHUNK (1u << CHUNK_BITS)
#define NCHUNKS 4096u               /* fds up to 4M */
#define NSTRIPES 64u

static _Atomic(struct shim_sock *) *chunks[NCHUNKS];
static pthread_mutex_t chunk_alloc = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t stripes[NSTRIPES];
static _Atomic unsigned n_socks;
static pthread_once_t stripes_once = PTHREAD_ONCE_INIT;

static void stripes_init(void)
{
  for (unsigned i = 0; i < NSTRIPES; i++)
    pthread_mutex_init(&stripes[i], NULL);
}

static _Atomic(struct shim_sock *) *slot(int fd, int create)
{
  if (fd < 0 || (unsigned)fd >= CHUNK * NCHUNKS)
    return NULL;
  unsigned c = (unsigned)fd >> CHUNK_BITS;
  _Atomic(struct shim_sock *) *ch = __atomic_load_n(&chunks[c], __ATOMIC_ACQUIRE);
  if (!ch && create) {
    pthread_mutex_lock(&chunk_alloc);
    ch = chunks[c];
    if (!ch) {
      ch = calloc(CHUNK, sizeof(*ch));
      __atomic_store_n(&chunks[c], ch, __ATOMIC_RELEASE);
    }
    pthread_mutex_unlock(&chunk_alloc);
  }
  return ch ? &ch[(unsigned)fd & (CHUNK - 1)] : NULL;
}

int fdt_maybe(int fd)
{
  if (atomic_load_explicit(&n_socks, memory_order_relaxed) == 0)
    return 0;
  _Atomic(struct shim_sock *) *sl = slot(fd, 0);
  return sl && atomic_load_explicit(sl, memory_order_acquire) != NULL;
}

struct shim_sock *fdt_get(int fd)
{
  _Atomic(struct shim_sock *) *sl = slot(fd, 0);
  struct shim_sock *s;
  if (!sl || !atomic_load_explicit(sl, memory_order_acquire))
    return NULL;
  pthread_once(&stripes_once, stripes_init);
  pthread_mutex_t *m = &stripes[(unsigned)fd % NSTRIPES];
  pthread_mutex_lock(m);
  s = atomic_load_explicit(sl, memory_order_acquire);
  if (s)
    atomic_fetch_add(&s->refs, 1);
  pthread_mutex_unlock(m);
  return s;
}

void fdt_put(struct shim_sock *s)
{
  if (s && atomic_fetch_sub(&s->refs, 1) == 1)
    sock_free(s);
}

void fdt_set(int fd, struct shim_sock *s)
{
  _Atomic(struct shim_sock *) *sl = slot(fd, 1);
  if (!sl)
    return;
  pthread_once(&stripes_once, stripes_init);
  pthread_mutex_t *m = &stripes[(unsigned)fd % NSTRIPES];
  atomic_fetch_add(&s->refs, 1);
  pthread_mutex_lock(m);
  struct shim_sock *old = atomic_exchange(sl, s);
  pthread_mutex_unlock(m);
  if (!old)
    atomic_fetch_add(&n_socks, 1);
  else
    fdt_put(old);
}

struct shim_sock *fdt_take(int fd)
{
  _Atomic(struct shim_sock *) *sl = slot(fd, 0);
  struct shim_sock *s;
  if (!sl || !atomic_load_explicit(sl, memory_order_acquire))
    return NULL;
  pthread_once(&stripes_once, stripes_init);
  pthread_mutex_t *m = &stripes[(unsigned)fd % NSTRIPES];
  pthread_mutex_lock(m);
  s = atomic_exchange(sl, NULL);
  pthread_mutex_unlock(m);
  if (s)
    atomic_fetch_sub(&n_socks, 1);
  return s;
}

void fdt_clear_range(unsigned first, unsigned last)
{
  if (atomic_load(&n_socks) == 0)
    return;
  if (last >= CHUNK * NCHUNKS)
    last = CHUNK * NCHUNKS - 1;
  for (unsigned fd = first; fd <= last; fd++) {
    unsigned c = fd >> CHUNK_BITS;
    if (!__atomic_load_n(&chunks[c], __ATOMIC_ACQUIRE)) {
      fd = (c + 1) * CHUNK - 1;     /* skip the empty chunk */
      if (fd >= last)
        break;
      continue;
    }
    struct shim_sock *s = fdt_take((int)fd);
    if (s)
      fdt_put(s);
    if (fd == last)
      break;
  }
}

/* Every socket in the table, with a reference held during fn (dup'd fds
 * share a socket: fn sees it once per fd). */
void fdt_foreach(void (*fn)(struct shim_sock *s, void *arg), void *arg)
{
  if (atomic_load(&n_socks) == 0)
    return;
  for (unsigned c = 0; c < NCHUNKS; c++) {
    if (!__atomic_load_n(&chunks[c], __ATOMIC_ACQUIRE))
      continue;
    for (unsigned i = 0; i < CHUNK; i++) {
      struct shim_sock *s = fdt_get((int)(c * CHUNK + i));
      if (s) {
        fn(s, arg);
        fdt_put(s);
      }
    }
  }
}

/* An fd that s is installed at (the lowest), or -1.  A scan of the table:
 * for rare uses (relisten.c). */
int fdt_find(struct shim_sock *s)
{
  if (atomic_load(&n_socks) == 0)
    return -1;
  for (unsigned c = 0; c < NCHUNKS; c++) {
    _Atomic(struct shim_sock *) *ch = __atomic_load_n(&chunks[c], __ATOMIC_ACQUIRE);
    if (!ch)
      continue;
    for (unsigned i = 0; i < CHUNK; i++)
      if (atomic_load_explicit(&ch[i], memory_order_acquire) == s)
        return (int)(c * CHUNK + i);
  }
  return -1;
}
