/*
 * stack/secmem.c — see secmem.h.
 */
#include "secmem.h"

#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#include <sodium.h>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define POISON(p, n)   ASAN_POISON_MEMORY_REGION(p, n)
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#else
#define POISON(p, n)   ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#define CLASS_SIZE 64
#define N_CLASSES  (SECMEM_MAX / CLASS_SIZE)
#define SLAB_SIZE  (64 * 1024)

struct free_block {
  struct free_block *next;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct free_block *free_list[N_CLASSES];
static uint8_t *bump, *bump_end;    /* the unused tail of the newest slab */
static size_t held;

static size_t class_of(size_t n)
{
  return (n + CLASS_SIZE - 1) / CLASS_SIZE - 1;
}

static int new_slab(void)
{
  void *p = mmap(NULL, SLAB_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED)
    return -1;
#ifdef MADV_DONTDUMP
  (void)madvise(p, SLAB_SIZE, MADV_DONTDUMP);
#endif
  (void)mlock(p, SLAB_SIZE);    /* best effort: RLIMIT_MEMLOCK may say no */
  /* the old slab's tail (less than one block of the asked class) is lost */
  bump = p;
  bump_end = bump + SLAB_SIZE;
  held += SLAB_SIZE;
  POISON(p, SLAB_SIZE);
  return 0;
}

void *secmem_alloc(size_t n)
{
  if (n == 0)
    return NULL;
  if (n > SECMEM_MAX) {
    if (sodium_init() < 0)    /* idempotent; sodium_malloc needs it */
      return NULL;
    void *p = sodium_malloc(n);
    if (p)
      memset(p, 0, n);
    return p;
  }
  size_t k = class_of(n), sz = (k + 1) * CLASS_SIZE;
  void *p = NULL;
  pthread_mutex_lock(&lock);
  if (free_list[k]) {
    struct free_block *b = free_list[k];
    UNPOISON(b, sz);
    free_list[k] = b->next;
    p = b;
  } else if ((size_t)(bump_end - bump) >= sz || new_slab() == 0) {
    p = bump;
    bump += sz;
    UNPOISON(p, sz);
  }
  pthread_mutex_unlock(&lock);
  if (p)
    memset(p, 0, sz);     /* free blocks were wiped; this clears the list link */
  return p;
}

void secmem_free(void *p, size_t n)
{
  if (!p || n == 0)
    return;
  if (n > SECMEM_MAX) {
    sodium_free(p);       /* wipes */
    return;
  }
  size_t k = class_of(n), sz = (k + 1) * CLASS_SIZE;
  sodium_memzero(p, sz);
  pthread_mutex_lock(&lock);
  struct free_block *b = p;
  b->next = free_list[k];
  free_list[k] = b;
  POISON((uint8_t *)p, sz);
  pthread_mutex_unlock(&lock);
}

size_t secmem_held(void)
{
  pthread_mutex_lock(&lock);
  size_t h = held;
  pthread_mutex_unlock(&lock);
  return h;
}
