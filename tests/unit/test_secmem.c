/*
 * tests/unit/test_secmem.c — the slab for per-connection secrets
 * (stack/secmem.c): zeroed, aligned, wiped on free, reused, no overlap,
 * large blocks, concurrent use, and bounded mappings.
 */
#include <criterion/criterion.h>

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "secmem.h"

static int all_zero(const uint8_t *p, size_t n)
{
  for (size_t i = 0; i < n; i++)
    if (p[i])
      return 0;
  return 1;
}

Test(secmem, zeroed_aligned_and_wiped)
{
  for (size_t n = 1; n <= SECMEM_MAX; n += 37) {
    uint8_t *p = secmem_alloc(n);
    cr_assert(p, "alloc %zu", n);
    cr_assert_eq((uintptr_t)p % 64, 0, "block of %zu not 64-byte aligned", n);
    cr_assert(all_zero(p, n), "block of %zu not zeroed", n);
    memset(p, 0xA5, n);
    secmem_free(p, n);
#if !defined(__SANITIZE_ADDRESS__)
    /* freed memory is wiped (apart from the free-list link in the first
     * 8 bytes); ASan builds poison it, so it is not read there */
    cr_assert(n <= 8 || all_zero(p + 8, n - 8), "block of %zu not wiped on free", n);
#endif
  }
  cr_assert_null(secmem_alloc(0));
  secmem_free(NULL, 10);
}

Test(secmem, reuse_and_no_overlap)
{
  enum { N = 3000 };
  static uint8_t *p[N];
  size_t held0 = secmem_held();
  for (int i = 0; i < N; i++) {
    size_t n = 100 + (size_t)(i % 7) * 150;
    p[i] = secmem_alloc(n);
    cr_assert(p[i]);
    memset(p[i], (uint8_t)i, n);
  }
  for (int i = 0; i < N; i++) {
    size_t n = 100 + (size_t)(i % 7) * 150;
    for (size_t j = 0; j < n; j++)
      cr_assert_eq(p[i][j], (uint8_t)i, "block %d byte %zu overwritten by another block", i, j);
  }
  size_t held1 = secmem_held();
  for (int i = 0; i < N; i++)
    secmem_free(p[i], 100 + (size_t)(i % 7) * 150);
  /* the same pattern again is served from the free lists: no new slab */
  for (int i = 0; i < N; i++)
    cr_assert((p[i] = secmem_alloc(100 + (size_t)(i % 7) * 150)));
  cr_assert_eq(secmem_held(), held1, "freed blocks were not reused (%zu -> %zu bytes held)", held1,
               secmem_held());
  cr_assert_gt(held1, held0);
  for (int i = 0; i < N; i++)
    secmem_free(p[i], 100 + (size_t)(i % 7) * 150);
}

Test(secmem, large_blocks_fall_back)
{
  uint8_t *p = secmem_alloc(SECMEM_MAX + 1);
  cr_assert(p);
  cr_assert(all_zero(p, SECMEM_MAX + 1));
  memset(p, 1, SECMEM_MAX + 1);
  secmem_free(p, SECMEM_MAX + 1);
}

/* 10,000 connections' worth of secrets must not cost 10,000s of mappings
 * (sodium_malloc takes about four per block; vm.max_map_count is 65,530). */
static int count_maps(void)
{
  FILE *f = fopen("/proc/self/maps", "r");
  int n = 0, ch;
  cr_assert(f);
  while ((ch = fgetc(f)) != EOF)
    n += ch == '\n';
  fclose(f);
  return n;
}

Test(secmem, few_mappings)
{
  enum { N = 20000 };
  static void *p[N];
  int m0 = count_maps();
  for (int i = 0; i < N; i++)
    cr_assert((p[i] = secmem_alloc(i & 1 ? 320 : 200)));
  int m1 = count_maps();
  for (int i = 0; i < N; i++)
    secmem_free(p[i], i & 1 ? 320 : 200);
  /* 20,000 blocks of ~260 bytes: about 80 slabs of 64 KiB; adjacent slabs
   * with the same protection may even merge */
  cr_assert_lt(m1 - m0, 200, "%d new mappings for %d blocks", m1 - m0, N);
}

static void *worker(void *arg)
{
  uintptr_t id = (uintptr_t)arg;
  for (int round = 0; round < 2000; round++) {
    uint8_t *a = secmem_alloc(96), *b = secmem_alloc(700);
    if (!a || !b)
      return (void *)1;
    memset(a, (int)id, 96);
    memset(b, (int)id, 700);
    for (int i = 0; i < 96; i++)
      if (a[i] != (uint8_t)id)
        return (void *)2;
    for (int i = 0; i < 700; i++)
      if (b[i] != (uint8_t)id)
        return (void *)2;
    secmem_free(a, 96);
    secmem_free(b, 700);
  }
  return NULL;
}

Test(secmem, threads)
{
  pthread_t t[4];
  for (uintptr_t i = 0; i < 4; i++)
    cr_assert_eq(pthread_create(&t[i], NULL, worker, (void *)(i + 1)), 0);
  for (int i = 0; i < 4; i++) {
    void *r;
    pthread_join(t[i], &r);
    cr_assert_null(r, "thread %d: %s", i, (uintptr_t)r == 1 ? "allocation failed" : "blocks shared");
  }
}
