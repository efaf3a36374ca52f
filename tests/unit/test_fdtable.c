/*
 * test_fdtable.c — the shim's fd table (shim/fdtable.c), included directly
 * (STYLE.md 15) so that it links without the rest of the shim.
 *
 * Reference-counting rules under test (shim.h):
 *   fdt_set(fd, s)   the table takes a reference; a replaced entry's
 *                    reference is dropped;
 *   fdt_get(fd)      +1 reference, or NULL;
 *   fdt_take(fd)     removes the entry; the caller owns that reference;
 *   fdt_put(s)       -1; sock_free() exactly when the count reaches 0.
 * sock_free() is stubbed here: it counts calls per socket and records a
 * violation if the socket is still referenced (refs != 0, or a thread of the
 * test still marks it in use).  Sockets are never really freed before the end
 * of a test, so a use after "free" is seen (a poisoned id), not a crash.
 */
#include <criterion/criterion.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../shim/fdtable.c"

/* ---- the sock_free() stub and test sockets ----------------------------------------------- */

#define POISON 0xdeadbeefdeadbeefull

struct tsock {
  struct shim_sock s;        /* first: container_of by cast */
  _Atomic int frees;
  _Atomic int users;         /* threads of the test currently using it */
  uint64_t id;
  struct tsock *all_next;
};

static _Atomic long n_free_calls;
static _Atomic long n_violations;
static char violation[256];
static pthread_mutex_t all_lock = PTHREAD_MUTEX_INITIALIZER;
static struct tsock *all_socks;
static _Atomic uint64_t next_id = 1;

static void violate(const char *what, uint64_t id)
{
  if (atomic_fetch_add(&n_violations, 1) == 0)
    snprintf(violation, sizeof(violation), "%s (socket %llu)", what, (unsigned long long)id);
}

void sock_free(struct shim_sock *s)
{
  struct tsock *t = (struct tsock *)s;
  atomic_fetch_add(&n_free_calls, 1);
  if (atomic_fetch_add(&t->frees, 1) != 0)
    violate("freed twice", t->id);
  if (atomic_load(&s->refs) != 0)
    violate("freed with refs != 0", t->id);
  if (atomic_load(&t->users) != 0)
    violate("freed while a thread uses it", t->id);
  s->id = POISON;
}

static struct tsock *tsock_new(void)
{
  struct tsock *t = calloc(1, sizeof(*t));
  cr_assert(t);
  t->id = atomic_fetch_add(&next_id, 1);
  t->s.id = t->id;
  pthread_mutex_lock(&all_lock);
  t->all_next = all_socks;
  all_socks = t;
  pthread_mutex_unlock(&all_lock);
  return t;
}

static int refs(struct tsock *t) { return atomic_load(&t->s.refs); }
static int frees(struct tsock *t) { return atomic_load(&t->frees); }

/* Every socket made was freed exactly once and no rule was broken. */
static void check_all_freed_once(void)
{
  cr_assert_eq(atomic_load(&n_violations), 0, "%s", violation);
  long made = 0;
  for (struct tsock *t = all_socks; t; t = t->all_next) {
    made++;
    cr_assert_eq(frees(t), 1, "socket %llu freed %d times (refs %d)", (unsigned long long)t->id,
                 frees(t), refs(t));
  }
  cr_assert_eq(atomic_load(&n_free_calls), made);
}

static void free_all(void)
{
  while (all_socks) {
    struct tsock *t = all_socks;
    all_socks = t->all_next;
    free(t);
  }
}

#define FD_LIMIT ((int)(CHUNK * NCHUNKS))   /* first fd the table cannot hold */

/* ---- single-threaded rules ---------------------------------------------------------------- */

Test(fdtable, set_get_take_put)
{
  struct tsock *t = tsock_new();
  cr_assert_eq(fdt_maybe(5), 0, "empty table");
  cr_assert_null(fdt_get(5));
  fdt_set(5, &t->s);
  cr_assert_eq(refs(t), 1, "the table holds one reference");
  cr_assert(fdt_maybe(5));
  cr_assert_eq(fdt_maybe(4), 0);
  cr_assert_eq(fdt_maybe(6), 0);
  struct shim_sock *g = fdt_get(5);
  cr_assert_eq(g, &t->s);
  cr_assert_eq(refs(t), 2);
  struct shim_sock *g2 = fdt_get(5);
  cr_assert_eq(g2, &t->s);
  cr_assert_eq(refs(t), 3);
  fdt_put(g2);
  fdt_put(g);
  cr_assert_eq(refs(t), 1);
  cr_assert_eq(frees(t), 0);
  struct shim_sock *k = fdt_take(5);
  cr_assert_eq(k, &t->s);
  cr_assert_eq(refs(t), 1, "take hands the table's reference to the caller");
  cr_assert_eq(fdt_maybe(5), 0);
  cr_assert_null(fdt_get(5));
  cr_assert_null(fdt_take(5), "a second take finds nothing");
  cr_assert_eq(frees(t), 0);
  fdt_put(k);
  cr_assert_eq(frees(t), 1);
  fdt_put(NULL);       /* allowed, no effect */
  check_all_freed_once();
  free_all();
}

/* A reference taken with get outlives the entry. */
Test(fdtable, get_outlives_take)
{
  struct tsock *t = tsock_new();
  fdt_set(9, &t->s);
  struct shim_sock *g = fdt_get(9);
  fdt_put(fdt_take(9));       /* close(9) */
  cr_assert_eq(frees(t), 0, "freed while a call still holds it");
  cr_assert_eq(refs(t), 1);
  cr_assert_eq(g->id, t->id);
  fdt_put(g);
  cr_assert_eq(frees(t), 1);
  check_all_freed_once();
  free_all();
}

/* fdt_set over an entry drops the old entry's reference; over the same
 * socket it keeps exactly one. */
Test(fdtable, set_replaces)
{
  struct tsock *a = tsock_new(), *b = tsock_new();
  fdt_set(7, &a->s);
  fdt_set(7, &a->s);
  cr_assert_eq(refs(a), 1, "same socket set twice: still one entry, one reference");
  fdt_set(7, &b->s);
  cr_assert_eq(frees(a), 1, "the replaced socket's last reference was dropped");
  cr_assert_eq(refs(b), 1);
  cr_assert_eq(fdt_get(7), &b->s);
  fdt_put(&b->s);
  /* the count of sockets in the table followed: taking the only entry
   * makes the fast path say "not ours" for every fd again */
  fdt_put(fdt_take(7));
  cr_assert_eq(atomic_load(&n_socks), 0);
  cr_assert_eq(fdt_maybe(7), 0);
  check_all_freed_once();
  free_all();
}

/* One socket in several fds (dup): freed only when the last entry goes. */
Test(fdtable, dup_entries)
{
  struct tsock *t = tsock_new();
  static const int fds[] = { 3, 1023, 1024, 70000, 4000000 };
  const int n = (int)(sizeof(fds) / sizeof(fds[0]));
  fdt_set(fds[0], &t->s);
  for (int i = 1; i < n; i++) {
    struct shim_sock *g = fdt_get(fds[i - 1]);       /* copy_entry() in shim.c */
    fdt_set(fds[i], g);
    fdt_put(g);
  }
  cr_assert_eq(refs(t), n);
  cr_assert_eq(atomic_load(&n_socks), (unsigned)n);
  for (int i = 0; i < n; i++) {
    cr_assert_eq(frees(t), 0, "freed with %d entries left", n - i);
    fdt_put(fdt_take(fds[i]));
  }
  cr_assert_eq(frees(t), 1);
  check_all_freed_once();
  free_all();
}

/* Entries on both sides of every chunk boundary are independent. */
Test(fdtable, chunk_boundaries)
{
  static const int edges[] = { 0, 1023, 1024, 1025, 2047, 2048, 4095, 4096, 1048575, 1048576 };
  const int n = (int)(sizeof(edges) / sizeof(edges[0]));
  struct tsock *t[16];
  for (int i = 0; i < n; i++) {
    t[i] = tsock_new();
    fdt_set(edges[i], &t[i]->s);
  }
  for (int i = 0; i < n; i++) {
    struct shim_sock *g = fdt_get(edges[i]);
    cr_assert_eq(g, &t[i]->s, "fd %d", edges[i]);
    fdt_put(g);
    /* neighbours that were not set are empty */
    for (int d = -1; d <= 1; d += 2) {
      int nb = edges[i] + d;
      int set = 0;
      for (int j = 0; j < n; j++)
        set |= edges[j] == nb;
      if (nb >= 0 && !set)
        cr_assert_null(fdt_get(nb), "fd %d (next to %d) is empty", nb, edges[i]);
    }
  }
  /* removing one leaves the others */
  fdt_put(fdt_take(1024));
  cr_assert_null(fdt_get(1024));
  cr_assert_eq(fdt_get(1023), &t[1]->s);
  fdt_put(&t[1]->s);
  cr_assert_eq(fdt_get(1025), &t[3]->s);
  fdt_put(&t[3]->s);
  fdt_clear_range(0, UINT_MAX);
  check_all_freed_once();
  free_all();
}

/* The last fd the table holds, and everything it cannot hold. */
Test(fdtable, limits_and_out_of_range)
{
  struct tsock *t = tsock_new(), *u = tsock_new();
  fdt_set(FD_LIMIT - 1, &t->s);
  cr_assert(fdt_maybe(FD_LIMIT - 1));
  cr_assert_eq(fdt_get(FD_LIMIT - 1), &t->s);
  fdt_put(&t->s);
  static const int bad[] = { -1, -2, INT_MIN, FD_LIMIT, FD_LIMIT + 1, INT_MAX };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    int fd = bad[i];
    fdt_set(fd, &u->s);
    cr_assert_eq(refs(u), 0, "fd %d: set out of range took a reference", fd);
    cr_assert_eq(fdt_maybe(fd), 0, "fd %d", fd);
    cr_assert_null(fdt_get(fd), "fd %d", fd);
    cr_assert_null(fdt_take(fd), "fd %d", fd);
  }
  cr_assert_eq(refs(t), 1, "out-of-range calls did not touch the real entry");
  cr_assert_eq(atomic_load(&n_socks), 1);
  fdt_put(fdt_take(FD_LIMIT - 1));
  cr_assert_eq(frees(t), 1);
  cr_assert_eq(frees(u), 0);
  fdt_set(10, &u->s);                 /* u is an ordinary socket after all that */
  cr_assert_eq(refs(u), 1);
  fdt_put(fdt_take(10));
  check_all_freed_once();
  free_all();
}

/* fdt_clear_range over a sparse table: exactly the entries in [first, last]
 * go, including at chunk edges and across unallocated chunks. */
Test(fdtable, clear_range_sparse)
{
  static const int fds[] = { 0, 3, 1023, 1024, 3000, 5000, 5001, 8192, 70000, 2097151, 2097152,
                             FD_LIMIT - 1 };
  const int n = (int)(sizeof(fds) / sizeof(fds[0]));
  static const struct { unsigned first, last; } ranges[] = {
    { 5, 2 },                       /* empty range */
    { 4, 1022 },                    /* nothing in it */
    { 1023, 1023 },                 /* a single fd at a chunk's end */
    { 1025, 4999 },                 /* 3000, crossing an unallocated chunk */
    { 5000, 5000 },
    { 6500, 8200 },                 /* 8192: first fd of a chunk right after empty ones */
    { 6000, 2097151 },              /* many unallocated chunks, ends at a chunk end */
    { 2097152, 2097152 },
    { 4194302, 4194302 },           /* empty slot next to the last */
    { 5001, UINT_MAX },             /* clamps to the table */
    { 0, 2 },
    { 0, UINT_MAX },
  };
  struct tsock *t[16];
  for (int i = 0; i < n; i++) {
    t[i] = tsock_new();
    fdt_set(fds[i], &t[i]->s);
  }
  /* a call holds an extra reference to the socket at 3000 */
  struct shim_sock *held = fdt_get(3000);
  int present[16];
  for (int i = 0; i < n; i++)
    present[i] = 1;
  for (size_t r = 0; r < sizeof(ranges) / sizeof(ranges[0]); r++) {
    fdt_clear_range(ranges[r].first, ranges[r].last);
    for (int i = 0; i < n; i++) {
      if ((unsigned)fds[i] >= ranges[r].first && (unsigned)fds[i] <= ranges[r].last)
        present[i] = 0;
      struct shim_sock *g = fdt_get(fds[i]);
      cr_assert_eq(g != NULL, present[i], "after clearing [%u, %u]: fd %d %s", ranges[r].first,
                   ranges[r].last, fds[i], present[i] ? "lost" : "still there");
      fdt_put(g);
      int want_frees = !present[i] && fds[i] != 3000;
      cr_assert_eq(frees(t[i]), want_frees, "after clearing [%u, %u]: fd %d freed %d times",
                   ranges[r].first, ranges[r].last, fds[i], frees(t[i]));
    }
  }
  cr_assert_eq(atomic_load(&n_socks), 0);
  cr_assert_eq(frees(t[4]), 0, "a socket still referenced by a call survives clear_range");
  fdt_put(held);
  check_all_freed_once();
  free_all();
}

/* Clearing an empty table, and a table whose chunks exist but are empty. */
Test(fdtable, clear_range_empty)
{
  fdt_clear_range(0, UINT_MAX);
  struct tsock *t = tsock_new();
  fdt_set(2000, &t->s);
  fdt_put(fdt_take(2000));
  fdt_clear_range(0, UINT_MAX);       /* n_socks == 0: fast exit */
  struct tsock *u = tsock_new();
  fdt_set(10, &u->s);
  fdt_clear_range(11, UINT_MAX);       /* allocated chunk 1, empty; chunk 0 has fd 10 */
  cr_assert_eq(fdt_get(10), &u->s);
  fdt_put(&u->s);
  fdt_clear_range(10, 10);
  check_all_freed_once();
  free_all();
}

/* ---- concurrency --------------------------------------------------------------------------- */

#define MT_FDS 48
static const int mt_fd_list[MT_FDS] = {
  0, 1, 2, 3, 4, 5, 63, 64, 65, 127, 128, 129, 1020, 1021, 1022, 1023, 1024, 1025, 1026,
  1087, 1088, 2047, 2048, 2049, 3071, 3072, 4095, 4096, 4097, 5000, 6000, 7000, 9999,
  10000, 65535, 65536, 100000, 131071, 131072, 1000000, 2097151, 2097152, 3000000,
  4194240, 4194241, 4194302, 4194303, 64 * 1024 + 64,
};

struct mt {
  _Atomic int stop;
  _Atomic long gets, hits, sets, takes, copies;
  unsigned seed;
};

static unsigned lcg(unsigned *s)
{
  *s = *s * 1103515245u + 12345u;
  return *s >> 8;
}

/* A call in progress: get, use, put. */
static void *mt_reader(void *p)
{
  struct mt *m = p;
  unsigned seed = (unsigned)(uintptr_t)&seed;
  long gets = 0, hits = 0;
  while (!atomic_load_explicit(&m->stop, memory_order_relaxed)) {
    int fd = mt_fd_list[lcg(&seed) % MT_FDS];
    struct shim_sock *s = fdt_get(fd);
    gets++;
    if (!s)
      continue;
    hits++;
    struct tsock *t = (struct tsock *)s;
    atomic_fetch_add(&t->users, 1);
    if (atomic_load(&t->frees) != 0 || s->id != t->id)
      violate("a socket got from the table was already freed", t->id);
    if (atomic_load(&s->refs) < 1)
      violate("a socket in use has refs < 1", t->id);
    for (volatile int k = 0; k < (int)(lcg(&seed) % 64); k++)
      ;
    if (s->id != t->id)
      violate("freed while in use", t->id);
    atomic_fetch_sub(&t->users, 1);
    fdt_put(s);
  }
  atomic_fetch_add(&m->gets, gets);
  atomic_fetch_add(&m->hits, hits);
  return NULL;
}

/* socket()/accept() (set a new socket), close() (take + put), dup2()
 * (take the target, copy the source), racing the readers. */
static void *mt_mutator(void *p)
{
  struct mt *m = p;
  unsigned seed = m->seed;
  long sets = 0, takes = 0, copies = 0;
  while (!atomic_load_explicit(&m->stop, memory_order_relaxed)) {
    int fd = mt_fd_list[lcg(&seed) % MT_FDS];
    unsigned op = lcg(&seed) % 3;
    if (op == 0 && sets >= 60000)
      op = 1;                     /* bound the sockets made (each stays allocated) */
    switch (op) {
    case 0: {
      struct tsock *t = tsock_new();
      fdt_set(fd, &t->s);
      sets++;
      break;
    }
    case 1:
      fdt_put(fdt_take(fd));
      takes++;
      break;
    default: {
      int from = mt_fd_list[lcg(&seed) % MT_FDS];
      struct shim_sock *gone = fdt_take(fd);
      struct shim_sock *s = fdt_get(from);
      if (s) {
        fdt_set(fd, s);
        fdt_put(s);
      }
      fdt_put(gone);
      copies++;
      break;
    }
    }
  }
  atomic_fetch_add(&m->sets, sets);
  atomic_fetch_add(&m->takes, takes);
  atomic_fetch_add(&m->copies, copies);
  return NULL;
}

static void mt_run(int readers, int mutators, double seconds)
{
  struct mt m = { .seed = 12345 };
  pthread_t th[16];
  int n = 0;
  for (int i = 0; i < readers; i++)
    cr_assert_eq(pthread_create(&th[n++], NULL, mt_reader, &m), 0);
  struct mt mm[4];
  for (int i = 0; i < mutators; i++) {
    mm[i] = (struct mt){ .seed = 777u + 31u * (unsigned)i };
    cr_assert_eq(pthread_create(&th[n++], NULL, mt_mutator, &mm[i]), 0);
  }
  struct timespec ts = { .tv_sec = (time_t)seconds,
                         .tv_nsec = (long)((seconds - (double)(time_t)seconds) * 1e9) };
  nanosleep(&ts, NULL);
  atomic_store(&m.stop, 1);
  for (int i = 0; i < mutators; i++)
    atomic_store(&mm[i].stop, 1);
  for (int i = 0; i < n; i++)
    pthread_join(th[i], NULL);
  long sets = 0, takes = 0, copies = 0;
  for (int i = 0; i < mutators; i++) {
    sets += mm[i].sets;
    takes += mm[i].takes;
    copies += mm[i].copies;
  }
  cr_log_info("fdtable mt: %d readers %d mutators: %ld gets (%ld hits), %ld sets, %ld takes, "
              "%ld copies", readers, mutators, (long)m.gets, (long)m.hits, sets, takes, copies);
  cr_assert_eq(atomic_load(&n_violations), 0, "%s", violation);
  cr_assert_gt(m.hits, 1000, "readers rarely found a socket (%ld)", (long)m.hits);
  cr_assert_gt(sets, 1000);
  cr_assert_gt(takes, 1000);
  cr_assert_gt(copies, 1000);
  /* What is left: every socket not freed is in the table, and its count is
   * exactly its number of entries (no reference leaked or lost). */
  long alive = 0;
  for (struct tsock *t = all_socks; t; t = t->all_next) {
    int entries = 0;
    for (int i = 0; i < MT_FDS; i++) {
      _Atomic(struct shim_sock *) *sl = slot(mt_fd_list[i], 0);
      entries += sl && atomic_load(sl) == &t->s;
    }
    if (frees(t)) {
      cr_assert_eq(entries, 0, "socket %llu freed but still in the table", (unsigned long long)t->id);
      continue;
    }
    alive++;
    cr_assert_gt(entries, 0, "socket %llu leaked: not freed, in no entry (refs %d)",
                 (unsigned long long)t->id, refs(t));
    cr_assert_eq(refs(t), entries, "socket %llu: refs %d for %d entries", (unsigned long long)t->id,
                 refs(t), entries);
  }
  /* n_socks counts entries (the fast path's "could any fd be ours") */
  unsigned used = 0;
  for (int i = 0; i < MT_FDS; i++) {
    _Atomic(struct shim_sock *) *sl = slot(mt_fd_list[i], 0);
    used += sl && atomic_load(sl);
  }
  cr_assert_eq(atomic_load(&n_socks), used, "n_socks %u, entries %u", atomic_load(&n_socks), used);
  cr_log_info("fdtable mt: %ld sockets alive in %u entries at the end", alive, used);
  fdt_clear_range(0, UINT_MAX);
  cr_assert_eq(atomic_load(&n_socks), 0);
  check_all_freed_once();
  free_all();
}

Test(fdtable_mt, readers_vs_one_mutator, .timeout = 60)
{
  mt_run(3, 1, 1.0);
}

Test(fdtable_mt, readers_vs_racing_mutators, .timeout = 60)
{
  mt_run(2, 3, 1.0);
}
