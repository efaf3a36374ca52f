/*
 * test_ring.c — the shared-memory ring helpers of include/enoshim/shm.h:
 * header validation, spans across the wrap point, the tund-side index checks
 * with hostile values, the status seqlock, and a two-thread SPSC stress test
 * over a real memfd mapped twice (as tund and the program map it).
 *
 * Expected values are computed here from the definitions in shm.h's comment
 * (free-running 64-bit indices, position = index & (size - 1)), never by
 * calling the function under test.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "enoshim/shm.h"

/* ---- helpers ---------------------------------------------------------------------------- */

static uint64_t splitmix64(uint64_t x)
{
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

struct rng { uint64_t s; };
static uint64_t rng_next(struct rng *r) { return splitmix64(r->s++); }

static double now_s(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A header as tund's make_shm() lays it out: page, rx ring, tx ring. */
static void hdr_init(struct enoshm *m, uint32_t ring)
{
  memset(m, 0, sizeof(*m));
  m->magic = ENOSHM_MAGIC;
  m->version = ENOSHM_VERSION;
  m->rx_off = ENOSHM_HDR_SIZE;
  m->rx_size = ring;
  m->tx_off = ENOSHM_HDR_SIZE + ring;
  m->tx_size = ring;
  m->total_size = ENOSHM_HDR_SIZE + 2 * ring;
}

/* ---- enoshm_header_ok --------------------------------------------------------------------- */

enum { F_MAGIC, F_VERSION, F_TOTAL, F_RXOFF, F_RXSIZE, F_TXOFF, F_TXSIZE, F_MAPLEN, F_NONE };

struct hdr_case {
  const char *what;
  int field;          /* which field to overwrite (F_NONE: just the layout below) */
  uint64_t value;
  int ok;
};

static void hdr_set(struct enoshm *m, size_t *maplen, int field, uint64_t v)
{
  switch (field) {
  case F_MAGIC: m->magic = (uint32_t)v; break;
  case F_VERSION: m->version = (uint32_t)v; break;
  case F_TOTAL: m->total_size = (uint32_t)v; break;
  case F_RXOFF: m->rx_off = (uint32_t)v; break;
  case F_RXSIZE: m->rx_size = (uint32_t)v; break;
  case F_TXOFF: m->tx_off = (uint32_t)v; break;
  case F_TXSIZE: m->tx_size = (uint32_t)v; break;
  case F_MAPLEN: *maplen = (size_t)v; m->total_size = (uint32_t)v; break;
  default: break;
  }
}

Test(ring_header, one_field_at_a_time)
{
  /* base layout: 4096 header + 4096 rx + 4096 tx = 12288 */
  const uint32_t R = 4096, H = ENOSHM_HDR_SIZE, T = H + 2 * R;
  static const struct hdr_case cases[] = {
    { "valid as tund makes it", F_NONE, 0, 1 },
    { "magic 0", F_MAGIC, 0, 0 },
    { "magic byte-swapped", F_MAGIC, 0x454e534du, 0 },
    { "magic off by one", F_MAGIC, ENOSHM_MAGIC + 1, 0 },
    { "version 0", F_VERSION, 0, 0 },
    { "version 2", F_VERSION, ENOSHM_VERSION + 1, 0 },
    { "version all ones", F_VERSION, 0xffffffffu, 0 },
    { "total_size one short of the mapping", F_TOTAL, T - 1, 0 },
    { "total_size one past the mapping", F_TOTAL, T + 1, 0 },
    { "total_size 0", F_TOTAL, 0, 0 },
    { "total_size huge", F_TOTAL, 0xfffff000u, 0 },
    { "mapping shorter than a header page", F_MAPLEN, H - 1, 0 },
    { "mapping exactly one header page", F_MAPLEN, H, 0 },
    { "rx_size 0", F_RXSIZE, 0, 0 },
    { "rx_size 3", F_RXSIZE, 3, 0 },
    { "rx_size 4095", F_RXSIZE, 4095, 0 },
    { "rx_size 4097", F_RXSIZE, 4097, 0 },
    { "rx_size 6144", F_RXSIZE, 6144, 0 },
    { "rx_size 2^31+1", F_RXSIZE, 0x80000001u, 0 },
    { "rx_size all ones", F_RXSIZE, 0xffffffffu, 0 },
    { "tx_size 0", F_TXSIZE, 0, 0 },
    { "tx_size 12", F_TXSIZE, 12, 0 },
    { "tx_size 4095", F_TXSIZE, 4095, 0 },
    { "tx_size 2^31 (pow2, out of the mapping)", F_TXSIZE, 0x80000000u, 0 },
    { "rx_size 8192 runs over tx", F_RXSIZE, 8192, 0 },
    { "rx_size 2048 (inside, below ENOSHM_RING_MIN)", F_RXSIZE, 2048, 0 },
    { "tx_size 2048 (inside, below ENOSHM_RING_MIN)", F_TXSIZE, 2048, 0 },
    { "rx_size 1 (inside, below ENOSHM_RING_MIN)", F_RXSIZE, 1, 0 },
    { "rx_off 0 (over the header)", F_RXOFF, 0, 0 },
    { "rx_off 4095 (one byte of header)", F_RXOFF, H - 1, 0 },
    { "rx_off 4097 overlaps tx by one", F_RXOFF, H + 1, 0 },
    { "rx_off == tx_off", F_RXOFF, H + R, 0 },
    { "rx_off past the end", F_RXOFF, T, 0 },
    { "rx_off one past the last fitting place", F_RXOFF, T - R + 1, 0 },
    { "rx_off wraps 32 bits with its size", F_RXOFF, 0xfffff000u, 0 },
    { "rx_off all ones", F_RXOFF, 0xffffffffu, 0 },
    { "tx_off 0", F_TXOFF, 0, 0 },
    { "tx_off 4095", F_TXOFF, H - 1, 0 },
    { "tx_off == rx_off", F_TXOFF, H, 0 },
    { "tx_off overlaps rx by one", F_TXOFF, H + R - 1, 0 },
    { "tx_off one past the end", F_TXOFF, T - R + 1, 0 },
    { "tx_off wraps 32 bits with its size", F_TXOFF, 0xfffff000u, 0 },
  };
  /* the header is read through a buffer large enough for every case */
  uint8_t *buf = aligned_alloc(64, T + 64);
  cr_assert(buf);
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    struct enoshm *m = (struct enoshm *)buf;
    size_t maplen = T;
    hdr_init(m, R);
    hdr_set(m, &maplen, cases[i].field, cases[i].value);
    cr_expect_eq(enoshm_header_ok(m, maplen), cases[i].ok, "case %zu \"%s\": header_ok %d, want %d",
                 i, cases[i].what, enoshm_header_ok(m, maplen), cases[i].ok);
  }
  free(buf);
}

/* Layouts with both offsets and sizes chosen together. */
Test(ring_header, layouts)
{
  static const struct {
    const char *what;
    uint32_t total, rx_off, rx_size, tx_off, tx_size;
    int ok;
  } cases[] = {
    { "tx before rx", 4096 + 8192, 4096 + 4096, 4096, 4096, 4096, 1 },
    { "tx before rx, rx overlaps tx end by one", 4096 + 8192, 4096 + 4095, 4096, 4096, 4096, 0 },
    { "gap between the rings", 4096 + 16384, 4096, 4096, 4096 + 8192, 4096, 1 },
    { "rings end exactly at the mapping", 4096 + 4096 + 65536, 4096, 4096, 8192, 65536, 1 },
    { "tx ring one byte past the mapping", 4096 + 4096 + 65536 - 1, 4096, 4096, 8192, 65536, 0 },
    { "rx inside tx", 4096 + 16384, 4096 + 4096, 4096, 4096, 16384, 0 },
    { "tx inside rx", 4096 + 16384, 4096, 16384, 4096 + 8192, 4096, 0 },
    { "both rings the same", 4096 + 4096, 4096, 4096, 4096, 4096, 0 },
    { "one-byte rings on the same byte", 4096 + 2, 4096, 1, 4096, 1, 0 },
    { "largest rings", 4096 + 2 * ENOSHM_RING_MAX, 4096, ENOSHM_RING_MAX, 4096 + ENOSHM_RING_MAX,
      ENOSHM_RING_MAX, 1 },
    { "rx ring twice ENOSHM_RING_MAX", 4096 + 3 * ENOSHM_RING_MAX, 4096, 2 * ENOSHM_RING_MAX,
      4096 + 2 * ENOSHM_RING_MAX, ENOSHM_RING_MAX, 0 },
    { "tx ring twice ENOSHM_RING_MAX", 4096 + 3 * ENOSHM_RING_MAX, 4096, ENOSHM_RING_MAX,
      4096 + ENOSHM_RING_MAX, 2 * ENOSHM_RING_MAX, 0 },
    { "rx_off + rx_size wraps to a small value", 4096 + 8192, 0xfffff000u, 0x2000, 4096, 4096, 0 },
    { "tx_off + tx_size wraps (in 32 bits) to rx_off", 4096 + 8192, 4096, 4096, 0xfffff000u, 0x2000,
      0 },
  };
  /* only the header is read: a header-sized buffer stands for the mapping */
  struct enoshm *m = aligned_alloc(64, ENOSHM_HDR_SIZE);
  cr_assert(m);
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    hdr_init(m, 4096);
    m->total_size = cases[i].total;
    m->rx_off = cases[i].rx_off;
    m->rx_size = cases[i].rx_size;
    m->tx_off = cases[i].tx_off;
    m->tx_size = cases[i].tx_size;
    cr_expect_eq(enoshm_header_ok(m, cases[i].total), cases[i].ok, "layout %zu \"%s\"", i,
                 cases[i].what);
  }
  free(m);
}

/* Every single-bit flip of a valid header's immutable fields is rejected,
 * except flips that leave a still-consistent layout (checked by hand). */
Test(ring_header, bit_flips)
{
  const uint32_t R = 4096, T = ENOSHM_HDR_SIZE + 2 * R;
  struct enoshm *m = aligned_alloc(64, ENOSHM_HDR_SIZE);
  cr_assert(m);
  size_t accepted = 0;
  for (int field = F_MAGIC; field <= F_TXSIZE; field++) {
    for (int bit = 0; bit < 32; bit++) {
      hdr_init(m, R);
      uint32_t *f = field == F_MAGIC ? &m->magic : field == F_VERSION ? &m->version
                  : field == F_TOTAL ? &m->total_size : field == F_RXOFF ? &m->rx_off
                  : field == F_RXSIZE ? &m->rx_size : field == F_TXOFF ? &m->tx_off : &m->tx_size;
      *f ^= 1u << bit;
      /* Reference: what a consistent header is (shm.h layout rules). */
      int ref = m->magic == ENOSHM_MAGIC && m->version == ENOSHM_VERSION && m->total_size == T &&
                m->rx_size && !(m->rx_size & (m->rx_size - 1)) && m->tx_size &&
                !(m->tx_size & (m->tx_size - 1)) && m->rx_size >= ENOSHM_RING_MIN &&
                m->rx_size <= ENOSHM_RING_MAX && m->tx_size >= ENOSHM_RING_MIN &&
                m->tx_size <= ENOSHM_RING_MAX && m->rx_off >= ENOSHM_HDR_SIZE &&
                m->tx_off >= ENOSHM_HDR_SIZE && (uint64_t)m->rx_off + m->rx_size <= T &&
                (uint64_t)m->tx_off + m->tx_size <= T &&
                ((uint64_t)m->rx_off + m->rx_size <= m->tx_off ||
                 (uint64_t)m->tx_off + m->tx_size <= m->rx_off);
      int got = enoshm_header_ok(m, T);
      cr_expect_eq(got, ref, "field %d bit %d: header_ok %d, reference %d", field, bit, got, ref);
      accepted += (size_t)got;
    }
  }
  /* no single bit flip of this layout is another consistent layout (a size
   * flip is never a power of two or 0; an offset flip lands in the header,
   * on the other ring or past the end) */
  cr_expect_eq(accepted, 0, "%zu flipped headers accepted", accepted);
  free(m);
}

/* ---- spans ------------------------------------------------------------------------------------- */

/* For every start position (several laps, and near 2^64) and every length of
 * a 16-byte ring: the span's pieces, then write/read through it at every
 * (offset, length) split, checked against a byte-by-byte reference ring. */
Test(ring_span, all_offsets_small_ring)
{
  enum { SZ = 16, GUARD = 32 };
  uint8_t mem[GUARD + SZ + GUARD];
  uint8_t ref[SZ];
  uint8_t *base = mem + GUARD;
  static const uint64_t laps[] = { 0, SZ, 7 * SZ, UINT64_MAX - 2 * SZ + 1, UINT64_MAX - SZ + 1 };
  size_t checked = 0;

  for (size_t l = 0; l < sizeof(laps) / sizeof(laps[0]); l++) {
    for (uint64_t pos = 0; pos < SZ; pos++) {
      uint64_t idx = laps[l] + pos;
      for (size_t len = 0; len <= SZ; len++) {
        struct enoshm_span sp;
        enoshm_span_make(&sp, base, SZ, idx, len);
        size_t p = (size_t)(idx & (SZ - 1));
        size_t first = SZ - p < len ? SZ - p : len;
        cr_assert_eq(sp.p[0], base + p, "idx %llu len %zu: p[0]", (unsigned long long)idx, len);
        cr_assert_eq(sp.n[0], first, "idx %llu len %zu: n[0] %zu want %zu", (unsigned long long)idx,
                     len, sp.n[0], first);
        cr_assert_eq(sp.p[1], base);
        cr_assert_eq(sp.n[1], len - first);
        cr_assert_eq(enoshm_span_len(&sp), len);

        /* write the span in two pieces split at every offset */
        for (size_t cut = 0; cut <= len; cut++) {
          uint8_t src[SZ], dst[SZ + 1];
          memset(mem, 0xee, sizeof(mem));
          memset(ref, 0xee, sizeof(ref));
          for (size_t i = 0; i < len; i++) {
            src[i] = (uint8_t)(0x40 + i + 3 * cut);
            ref[(p + i) & (SZ - 1)] = src[i];
          }
          enoshm_span_write(&sp, 0, src, cut);
          enoshm_span_write(&sp, cut, src + cut, len - cut);
          cr_assert(memcmp(base, ref, SZ) == 0, "idx %llu len %zu cut %zu: ring contents",
                    (unsigned long long)idx, len, cut);
          for (size_t g = 0; g < GUARD; g++)
            cr_assert(mem[g] == 0xee && mem[GUARD + SZ + g] == 0xee,
                      "idx %llu len %zu cut %zu: wrote outside the ring", (unsigned long long)idx,
                      len, cut);
          /* read every (off, n) window back */
          for (size_t off = 0; off <= len; off++) {
            for (size_t n = 0; off + n <= len; n++) {
              dst[n] = 0x5a;
              enoshm_span_read(&sp, off, dst, n);
              cr_assert(memcmp(dst, src + off, n) == 0, "idx %llu len %zu read off %zu n %zu",
                            (unsigned long long)idx, len, off, n);
              cr_assert_eq(dst[n], 0x5a, "read past n");
              checked++;
            }
          }
        }
      }
    }
  }
  cr_assert_gt(checked, 100000);
}

/* A span over a larger ring, written with random offsets/lengths. */
Test(ring_span, random_pieces_4k)
{
  enum { SZ = 4096 };
  uint8_t *base = malloc(SZ), *ref = malloc(SZ), *src = malloc(SZ), *dst = malloc(SZ);
  struct rng r = { 42 };
  cr_assert(base && ref && src && dst);
  for (int it = 0; it < 20000; it++) {
    uint64_t idx = rng_next(&r);
    size_t len = (size_t)(rng_next(&r) % (SZ + 1));
    struct enoshm_span sp;
    enoshm_span_make(&sp, base, SZ, idx, len);
    memcpy(ref, base, SZ);
    for (size_t i = 0; i < len; i++) {
      src[i] = (uint8_t)rng_next(&r);
      ref[(idx + i) & (SZ - 1)] = src[i];
    }
    size_t done = 0;
    while (done < len) {
      size_t k = 1 + (size_t)(rng_next(&r) % (len - done));
      enoshm_span_write(&sp, done, src + done, k);
      done += k;
    }
    cr_assert(memcmp(base, ref, SZ) == 0, "iteration %d", it);
    size_t off = len ? (size_t)(rng_next(&r) % len) : 0;
    size_t n = len - off;
    enoshm_span_read(&sp, off, dst, n);
    cr_assert(memcmp(dst, src + off, n) == 0, "iteration %d read", it);
  }
  free(base); free(ref); free(src); free(dst);
}

/* ---- tund-side index checks -------------------------------------------------------------------- */

/* Reference for enoshm_rx_space_checked: tund published `prod`; the program's
 * rx_cons is legal iff prod - size <= cons <= prod (in 2^64 arithmetic, i.e.
 * the program consumed at most what was produced and is not behind by more
 * than a ring). */
static int64_t ref_rx_space(uint64_t prod, uint64_t cons, uint32_t size)
{
  uint64_t behind = prod - cons;      /* how far cons is behind prod */
  if (behind > size)
    return -1;
  return (int64_t)size - (int64_t)behind;
}

Test(ring_checked, rx_space_table)
{
  struct enoshm *m = aligned_alloc(64, ENOSHM_HDR_SIZE);
  cr_assert(m);
  hdr_init(m, 4096);
  const uint32_t S = 4096;
  const uint64_t MAX = UINT64_MAX;
  static const struct { uint64_t prod, cons; int64_t want; const char *what; } cases[] = {
    { 0, 0, 4096, "fresh" },
    { 4096, 0, 0, "full" },
    { 4095, 0, 1, "one free" },
    { 4097, 0, -1, "cons more than a ring behind" },
    { 0, 1, -1, "cons one past prod" },
    { 100, 50, 4046, "partly used" },
    { 100, 100, 4096, "consumed all" },
    { 100, 101, -1, "consumed one more than produced" },
    { 0, UINT64_MAX, 4095, "cons one behind prod across the wrap" },
    { 5, UINT64_MAX, 4090, "prod wrapped past 2^64, cons just before" },
    { 10, MAX - 9, 4076, "20 used across the 2^64 wrap" },
    { 4095, MAX, 0, "full across the wrap" },
    { 4096, MAX, -1, "one too many across the wrap" },
    { MAX, MAX - 4096, 0, "full at the top" },
    { MAX, MAX - 4097, -1, "overfull at the top" },
    { MAX, 0, -1, "cons ahead of prod by one across the wrap" },
    { 1ull << 63, 0, -1, "cons 2^63 behind" },
    { 0, 1ull << 63, -1, "cons 2^63 ahead" },
    { 123456, 123456 + (1ull << 32), -1, "cons ahead by 2^32 (would look small in 32 bits)" },
    { 123456 + (1ull << 32), 123456, -1, "cons behind by 2^32" },
    { 4096 + (1ull << 32), 1ull << 32, 0, "full, high bits set" },
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    atomic_store(&m->rx_prod, cases[i].prod);
    atomic_store(&m->rx_cons, cases[i].cons);
    int64_t got = enoshm_rx_space_checked(m, S, cases[i].prod);
    cr_expect_eq(got, cases[i].want, "case %zu (%s): prod %llu cons %llu: got %lld want %lld", i,
                 cases[i].what, (unsigned long long)cases[i].prod,
                 (unsigned long long)cases[i].cons, (long long)got, (long long)cases[i].want);
    cr_expect_eq(ref_rx_space(cases[i].prod, cases[i].cons, S), cases[i].want, "reference, case %zu",
                 i);
    /* the shared rx_prod is the program's to overwrite: a forged one that
     * would make its rx_cons look possible changes nothing */
    atomic_store(&m->rx_prod, cases[i].cons + 1);
    cr_expect_eq(enoshm_rx_space_checked(m, S, cases[i].prod), cases[i].want,
                 "case %zu with a forged shared rx_prod", i);
  }
  free(m);
}

/* Exhaustive around several base points: cons = prod + d for d in
 * [-(size+3), size+3], for ring sizes from 1 to the largest. */
Test(ring_checked, rx_space_exhaustive)
{
  struct enoshm *m = aligned_alloc(64, ENOSHM_HDR_SIZE);
  cr_assert(m);
  static const uint64_t bases[] = { 0, 1, 4096, 1ull << 32, (1ull << 63) - 1, 1ull << 63,
                                    UINT64_MAX - 5, UINT64_MAX };
  static const uint32_t sizes[] = { 1, 2, 8, 4096, 65536, ENOSHM_RING_MAX, 1u << 31 };
  size_t legal = 0, illegal = 0;
  for (size_t b = 0; b < sizeof(bases) / sizeof(bases[0]); b++) {
    for (size_t z = 0; z < sizeof(sizes) / sizeof(sizes[0]); z++) {
      uint32_t S = sizes[z];
      /* all d for small rings; the edges and a sample of the middle for big ones */
      int64_t ds[400];
      size_t nd = 0;
      if (S <= 64) {
        for (int64_t d = -(int64_t)S - 3; d <= 3; d++)
          ds[nd++] = d;
      } else {
        for (int64_t d = -(int64_t)S - 3; d <= -(int64_t)S + 3; d++)
          ds[nd++] = d;
        for (int64_t d = -3; d <= 3; d++)
          ds[nd++] = d;
        for (int k = 1; k < 100; k++)
          ds[nd++] = -(int64_t)(((uint64_t)S * (uint64_t)k) / 100u);
      }
      static const int64_t far[] = { 1ll << 31, 1ll << 32, (1ll << 32) + 1, -(1ll << 32),
                                     -(1ll << 33) + 1, INT64_MAX, INT64_MIN };
      for (size_t k = 0; k < sizeof(far) / sizeof(far[0]); k++)
        ds[nd++] = far[k];
      for (size_t k = 0; k < nd; k++) {
        int64_t d = ds[k];
        uint64_t prod = bases[b], cons = prod + (uint64_t)d;
        atomic_store(&m->rx_prod, prod);
        atomic_store(&m->rx_cons, cons);
        /* legal iff prod - size <= cons <= prod, computed without wrap */
        int64_t want = d > 0 || d < -(int64_t)S ? -1 : (int64_t)S + d;
        int64_t got = enoshm_rx_space_checked(m, S, prod);
        cr_assert_eq(got, want, "size %u prod %llu d %lld: got %lld want %lld", S,
                     (unsigned long long)prod, (long long)d, (long long)got, (long long)want);
        if (want < 0) illegal++; else legal++;
      }
    }
  }
  cr_assert(legal > 1000 && illegal > 100);
  free(m);
}

/* Reference for enoshm_tx_avail_checked(m, size, read, cons): tund has
 * released the ring up to cons and taken bytes up to read (cons <= read,
 * read - cons <= size, both trusted); the program's tx_prod is legal iff
 * read <= prod <= cons + size.  Written as offsets from cons so that no
 * modular subtlety can hide in the reference. */
static int64_t ref_tx_avail(int64_t read_off, int64_t prod_off, uint32_t size)
{
  if (read_off < 0 || read_off > (int64_t)size)
    return -1;          /* tund's own state impossible: refuse too */
  if (prod_off < read_off || prod_off > (int64_t)size)
    return -1;
  return prod_off - read_off;
}

Test(ring_checked, tx_avail_exhaustive)
{
  struct enoshm *m = aligned_alloc(64, ENOSHM_HDR_SIZE);
  cr_assert(m);
  static const uint64_t bases[] = { 0, 3, 1ull << 32, (1ull << 63) - 2, UINT64_MAX - 4, UINT64_MAX };
  static const uint32_t sizes[] = { 1, 2, 4, 8, 16 };
  size_t legal = 0, illegal = 0;
  for (size_t b = 0; b < sizeof(bases) / sizeof(bases[0]); b++) {
    for (size_t z = 0; z < sizeof(sizes) / sizeof(sizes[0]); z++) {
      uint32_t S = sizes[z];
      for (int64_t r = -(int64_t)S - 2; r <= 2 * (int64_t)S + 2; r++) {
        for (int64_t p = -2 * (int64_t)S - 2; p <= 2 * (int64_t)S + 2; p++) {
          uint64_t cons = bases[b];
          uint64_t read = cons + (uint64_t)r, prod = cons + (uint64_t)p;
          atomic_store(&m->tx_prod, prod);
          int64_t want = ref_tx_avail(r, p, S);
          int64_t got = enoshm_tx_avail_checked(m, S, read, cons);
          cr_assert_eq(got, want, "size %u cons %llu read %+lld prod %+lld: got %lld want %lld", S,
                       (unsigned long long)cons, (long long)r, (long long)p, (long long)got,
                       (long long)want);
          if (want < 0) illegal++; else legal++;
        }
      }
    }
  }
  cr_assert(legal > 500 && illegal > 500);
  free(m);
}

Test(ring_checked, tx_avail_hostile_table)
{
  struct enoshm *m = aligned_alloc(64, ENOSHM_HDR_SIZE);
  cr_assert(m);
  const uint32_t S = 65536;
  const uint64_t MAX = UINT64_MAX;
  static const struct { uint64_t cons, read, prod; int64_t want; const char *what; } cases[] = {
    { 0, 0, 0, 0, "nothing" },
    { 0, 0, 65536, 65536, "a full ring" },
    { 0, 0, 65537, -1, "prod a ring and one ahead" },
    { 100, 200, 150, -1, "prod behind what tund already read" },
    { 100, 200, 99, -1, "prod behind tund's released cons" },
    { 100, 200, 200, 0, "prod == read" },
    { 100, 200, 100 + 65536, 65436, "full, partly read" },
    { 100, 200, 101 + 65536, -1, "one past full, partly read" },
    { MAX - 10, MAX - 10, 20, 31, "31 bytes across 2^64" },
    { MAX - 10, 5, 20, 15, "read and prod both wrapped" },
    { MAX - 10, 5, 4, -1, "prod wrapped but behind read" },
    { MAX - 10, MAX - 10, MAX - 10 + 65536, 65536, "full across the wrap" },
    { MAX - 10, MAX - 10, MAX - 9 + 65536, -1, "overfull across the wrap" },
    { 0, 0, MAX, -1, "prod = -1" },
    { 0, 0, 1ull << 63, -1, "prod 2^63 ahead" },
    { 1ull << 40, 1ull << 40, (1ull << 40) + (1ull << 32), -1, "prod 2^32 ahead" },
    { 5, 5, 5 - (1ull << 32) + 10, -1, "prod behind by about 2^32" },
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    atomic_store(&m->tx_prod, cases[i].prod);
    int64_t got = enoshm_tx_avail_checked(m, S, cases[i].read, cases[i].cons);
    cr_expect_eq(got, cases[i].want, "case %zu (%s): got %lld want %lld", i, cases[i].what,
                 (long long)got, (long long)cases[i].want);
  }
  free(m);
}

/* ---- status seqlock ---------------------------------------------------------------------------- */

/* Every byte of the status block carries the same generation byte; a torn
 * snapshot shows two different bytes. */
static void st_fill(struct enoshm *m, uint8_t g, size_t upto)
{
  volatile uint8_t *p = (volatile uint8_t *)&m->st;
  for (size_t i = 0; i < upto; i++)
    p[i] = g;
}

static int st_torn(const struct enoshm_status *s, uint8_t *gen)
{
  const uint8_t *p = (const uint8_t *)s;
  for (size_t i = 1; i < sizeof(*s); i++)
    if (p[i] != p[0])
      return 1;
  *gen = p[0];
  return 0;
}

struct sl_arg {
  struct enoshm *m;
  _Atomic int stop;
  _Atomic unsigned long writes;
  unsigned pause_every;     /* writer: every n-th update stalls mid-way */
  unsigned pause_us;
  unsigned gap_us;          /* writer: rest between updates (0: none) */
};

static void *sl_writer(void *p)
{
  struct sl_arg *a = p;
  unsigned long k = 0;
  while (!atomic_load_explicit(&a->stop, memory_order_relaxed)) {
    k++;
    enoshm_status_begin(a->m);
    st_fill(a->m, (uint8_t)k, sizeof(struct enoshm_status) / 2);
    if (a->pause_every && k % a->pause_every == 0)
      usleep(a->pause_us);       /* a writer descheduled in the middle of an update */
    st_fill(a->m, (uint8_t)k, sizeof(struct enoshm_status));
    enoshm_status_end(a->m);
    atomic_store_explicit(&a->writes, k, memory_order_relaxed);
    if (a->gap_us)
      usleep(a->gap_us);
    if (k % 64 == 0)
      sched_yield();
  }
  return NULL;
}

/* Reader thread against a writer that updates continuously: no snapshot may
 * be torn, whether the read was fast (a broken seqlock) or slow (the reader
 * waited out a descheduled writer and must still get a whole snapshot). */
Test(ring_seqlock, no_torn_snapshot_busy_writer, .timeout = 60)
{
  struct enoshm *m = aligned_alloc(64, ENOSHM_HDR_SIZE);
  cr_assert(m);
  memset(m, 0, ENOSHM_HDR_SIZE);
  struct sl_arg a = { .m = m };
  pthread_t w;
  cr_assert_eq(pthread_create(&w, NULL, sl_writer, &a), 0);
  unsigned long reads = 0, torn_fast = 0, torn_slow = 0, changes = 0, odd_seen = 0;
  uint8_t last = 0;
  /* At least a second, and until the two threads really ran at the same
   * time: the reader must have caught the writer inside an update (seq odd)
   * many times.  On a loaded machine the two threads may share a CPU and
   * never overlap for a while: at most 20 s. */
  double t_start = now_s();
  for (;;) {
    struct enoshm_status s;
    uint8_t g;
    double t0 = now_s();
    if (t0 - t_start >= 20.0 ||
        (t0 - t_start >= 1.0 && odd_seen >= 500 && changes >= 200))
      break;
    odd_seen += atomic_load_explicit(&m->seq, memory_order_relaxed) & 1;
    enoshm_status_read(m, &s);
    double dt = now_s() - t0;
    if (st_torn(&s, &g)) {
      if (dt < 5e-6)
        torn_fast++;
      else
        torn_slow++;
    } else if (g != last) {
      changes++;
      last = g;
    }
    reads++;
  }
  atomic_store(&a.stop, 1);
  pthread_join(w, NULL);
  unsigned long writes = atomic_load(&a.writes);
  cr_log_info("seqlock busy writer: %lu reads, %lu writes, %lu changes seen, %lu reads began "
              "inside an update; torn: %lu fast, %lu after the spin bound", reads, writes, changes,
              odd_seen, torn_fast, torn_slow);
  cr_assert_geq(odd_seen, 500, "the reader rarely overlapped the writer (%lu)", odd_seen);
  cr_assert_geq(changes, 200, "the reader rarely saw an update (%lu changes)", changes);
  cr_assert_eq(torn_fast, 0, "%lu of %lu snapshots torn (seqlock broken)", torn_fast, reads);
  cr_assert_eq(torn_slow, 0, "%lu of %lu snapshots torn after the spin bound gave up on a live "
               "writer", torn_slow, reads);
  free(m);
}

/* A writer descheduled in the middle of an update (seq odd for a few
 * milliseconds, as tund is when the kernel preempts it inside
 * conn_publish()) must not make the reader return a mixed snapshot: a live
 * writer always finishes, and enoshm_status_read() waits for it (spinning,
 * then yielding, then sleeping) for about a second. */
Test(ring_seqlock, no_torn_snapshot_preempted_writer, .timeout = 60)
{
  struct enoshm *m = aligned_alloc(64, ENOSHM_HDR_SIZE);
  cr_assert(m);
  memset(m, 0, ENOSHM_HDR_SIZE);
  /* every other update stalls 5 ms mid-way; between updates the writer
   * rests a little, as tund does (a writer that is inside an update all the
   * time starves any seqlock reader, which is not what is tested here) */
  struct sl_arg a = { .m = m, .pause_every = 2, .pause_us = 5000, .gap_us = 200 };
  pthread_t w;
  cr_assert_eq(pthread_create(&w, NULL, sl_writer, &a), 0);
  unsigned long reads = 0, torn = 0;
  double t_end = now_s() + 0.5;
  while (now_s() < t_end) {
    struct enoshm_status s;
    uint8_t g;
    enoshm_status_read(m, &s);
    torn += (unsigned long)st_torn(&s, &g);
    reads++;
  }
  atomic_store(&a.stop, 1);
  pthread_join(w, NULL);
  cr_assert_gt(atomic_load(&a.writes), 10);
  cr_assert_eq(torn, 0, "%lu of %lu snapshots torn while the writer was alive but descheduled",
               torn, reads);
  free(m);
}

/* tund died between enoshm_status_begin() and _end(): seq stays odd for
 * ever.  The reader must still return, with the bytes as they were left. */
Test(ring_seqlock, dead_writer_reader_returns, .timeout = 60)
{
  struct enoshm *m = aligned_alloc(64, ENOSHM_HDR_SIZE);
  cr_assert(m);
  memset(m, 0, ENOSHM_HDR_SIZE);
  enoshm_status_begin(m);
  st_fill(m, 7, sizeof(struct enoshm_status));
  enoshm_status_end(m);
  enoshm_status_begin(m);
  st_fill(m, 9, 10);                     /* died after ten bytes */
  cr_assert(atomic_load(&m->seq) & 1);
  for (int k = 0; k < 2; k++) {
    struct enoshm_status s;
    memset(&s, 0x55, sizeof(s));
    double t0 = now_s();
    enoshm_status_read(m, &s);
    double dt = now_s() - t0;
    const uint8_t *p = (const uint8_t *)&s;
    for (size_t i = 0; i < sizeof(s); i++)
      cr_assert_eq(p[i], i < 10 ? 9 : 7, "read %d byte %zu", k, i);
    /* it waits (about a second) for a writer that might only be
     * descheduled, but it does return */
    cr_assert_lt(dt, 20.0, "reading a dead writer's status took %.3fs", dt);
  }
  free(m);
}

/* Sequential sanity: begin/end move seq by two, even at rest, and a read
 * after an update returns exactly the update. */
Test(ring_seqlock, sequential)
{
  struct enoshm *m = aligned_alloc(64, ENOSHM_HDR_SIZE);
  cr_assert(m);
  memset(m, 0, ENOSHM_HDR_SIZE);
  for (uint32_t k = 1; k < 600; k++) {
    uint32_t s0 = atomic_load(&m->seq);
    enoshm_status_begin(m);
    cr_assert_eq(atomic_load(&m->seq), s0 + 1);
    m->st.state = k;
    m->st.error = -(int32_t)k;
    m->st.flags = k * 3;
    enoshm_status_end(m);
    cr_assert_eq(atomic_load(&m->seq), s0 + 2);
    struct enoshm_status s;
    enoshm_status_read(m, &s);
    cr_assert(s.state == k && s.error == -(int32_t)k && s.flags == k * 3);
  }
  free(m);
}

/* ---- SPSC stress over a real memfd mapped twice ---------------------------------------------- */

/* Byte i of each stream is a function of i and the stream's seed, so that a
 * lost, duplicated, reordered or stale byte is seen at its position. */
static inline uint8_t stream_byte(uint64_t seed, uint64_t i)
{
  return (uint8_t)(splitmix64(seed ^ (i >> 3)) >> ((i & 7) * 8));
}

static void stream_fill(uint64_t seed, uint64_t pos, uint8_t *out, size_t n)
{
  size_t i = 0;
  while (i < n) {
    uint64_t w = splitmix64(seed ^ ((pos + i) >> 3));
    for (unsigned b = (unsigned)((pos + i) & 7); b < 8 && i < n; b++, i++)
      out[i] = (uint8_t)(w >> (b * 8));
  }
}

struct stress {
  int memfd;
  size_t maplen;
  uint32_t ring;
  uint64_t bytes;            /* per direction */
  uint64_t start;            /* initial index (to cross 2^64) */
  _Atomic int failed;
  char why[256];
};

#define STRESS_FAIL(st, ...)                                               \
  do {                                                                     \
    int exp_ = 0;                                                          \
    if (atomic_compare_exchange_strong(&(st)->failed, &exp_, 1))           \
      snprintf((st)->why, sizeof((st)->why), __VA_ARGS__);                 \
  } while (0)

static void spin_pause(unsigned *n)
{
  if (++*n % 64 == 0)
    sched_yield();
#if defined(__x86_64__) || defined(__i386__)
  else
    __builtin_ia32_pause();
#endif
}

/* tund's side: produce into rx (checking rx_cons with enoshm_rx_space_checked),
 * consume from tx (checking tx_prod with enoshm_tx_avail_checked). */
static void *stress_tund(void *p)
{
  struct stress *st = p;
  struct enoshm *m = mmap(NULL, st->maplen, PROT_READ | PROT_WRITE, MAP_SHARED, st->memfd, 0);
  if (m == MAP_FAILED) {
    STRESS_FAIL(st, "tund mmap: %s", strerror(errno));
    return NULL;
  }
  const uint64_t seed_rx = 0x1111, seed_tx = 0x2222;
  uint32_t size = m->rx_size;
  uint64_t rx_prod = st->start, rx_done = 0;           /* trusted copies */
  uint64_t tx_cons = st->start, tx_done = 0;
  struct rng r = { 7 };
  uint8_t *buf = malloc(size), *want = malloc(size);
  unsigned spins = 0;
  while (!atomic_load_explicit(&st->failed, memory_order_relaxed) &&
         (rx_done < st->bytes || tx_done < st->bytes)) {
    int moved = 0;
    if (rx_done < st->bytes) {
      int64_t space = enoshm_rx_space_checked(m, size, rx_prod);
      if (space < 0) {
        STRESS_FAIL(st, "rx_space_checked -1 at prod %llu (cons %llu)", (unsigned long long)rx_prod,
                    (unsigned long long)atomic_load(&m->rx_cons));
        break;
      }
      if (space > 0) {
        uint64_t n = 1 + rng_next(&r) % (uint64_t)space;
        if (n > st->bytes - rx_done)
          n = st->bytes - rx_done;
        struct enoshm_span sp;
        stream_fill(seed_rx, rx_done, buf, (size_t)n);
        enoshm_span_make(&sp, enoshm_rx_base(m), size, rx_prod, (size_t)n);
        enoshm_span_write(&sp, 0, buf, (size_t)n);
        rx_prod += n;
        rx_done += n;
        atomic_store_explicit(&m->rx_prod, rx_prod, memory_order_release);
        moved = 1;
      }
    }
    if (tx_done < st->bytes) {
      int64_t avail = enoshm_tx_avail_checked(m, size, tx_cons, tx_cons);
      if (avail < 0) {
        STRESS_FAIL(st, "tx_avail_checked -1 at cons %llu (prod %llu)", (unsigned long long)tx_cons,
                    (unsigned long long)atomic_load(&m->tx_prod));
        break;
      }
      if (avail > 0) {
        uint64_t n = 1 + rng_next(&r) % (uint64_t)avail;
        struct enoshm_span sp;
        enoshm_span_make(&sp, enoshm_tx_base(m), size, tx_cons, (size_t)n);
        enoshm_span_read(&sp, 0, buf, (size_t)n);
        stream_fill(seed_tx, tx_done, want, (size_t)n);
        if (memcmp(buf, want, (size_t)n) != 0) {
          size_t i = 0;
          while (buf[i] == want[i]) i++;
          STRESS_FAIL(st, "tx stream wrong at byte %llu (chunk of %llu)", (unsigned long long)(tx_done + i),
                      (unsigned long long)n);
          break;
        }
        tx_cons += n;
        tx_done += n;
        atomic_store_explicit(&m->tx_cons, tx_cons, memory_order_release);
        moved = 1;
      }
    }
    if (!moved)
      spin_pause(&spins);
  }
  free(buf);
  free(want);
  munmap(m, st->maplen);
  return NULL;
}

/* The program's side: consume rx, produce tx, with its own (untrusted by
 * tund) index arithmetic as shim/io.c does it. */
static void *stress_prog(void *p)
{
  struct stress *st = p;
  struct enoshm *m = mmap(NULL, st->maplen, PROT_READ | PROT_WRITE, MAP_SHARED, st->memfd, 0);
  if (m == MAP_FAILED) {
    STRESS_FAIL(st, "program mmap: %s", strerror(errno));
    return NULL;
  }
  if (!enoshm_header_ok(m, st->maplen)) {
    STRESS_FAIL(st, "program: header rejected");
    munmap(m, st->maplen);
    return NULL;
  }
  const uint64_t seed_rx = 0x1111, seed_tx = 0x2222;
  uint32_t size = m->tx_size;
  uint64_t rx_done = 0, tx_done = 0;
  struct rng r = { 99 };
  uint8_t *buf = malloc(size), *want = malloc(size);
  unsigned spins = 0;
  while (!atomic_load_explicit(&st->failed, memory_order_relaxed) &&
         (rx_done < st->bytes || tx_done < st->bytes)) {
    int moved = 0;
    if (rx_done < st->bytes) {
      uint64_t prod = atomic_load_explicit(&m->rx_prod, memory_order_acquire);
      uint64_t cons = atomic_load_explicit(&m->rx_cons, memory_order_relaxed);
      uint64_t avail = prod - cons;
      if (avail > size) {
        STRESS_FAIL(st, "program sees rx avail %llu > ring (cons %llu)", (unsigned long long)avail,
                    (unsigned long long)cons);
        break;
      }
      if (avail > 0) {
        uint64_t n = 1 + rng_next(&r) % avail;
        struct enoshm_span sp;
        enoshm_span_make(&sp, enoshm_rx_base(m), size, cons, (size_t)n);
        enoshm_span_read(&sp, 0, buf, (size_t)n);
        stream_fill(seed_rx, rx_done, want, (size_t)n);
        if (memcmp(buf, want, (size_t)n) != 0) {
          size_t i = 0;
          while (buf[i] == want[i]) i++;
          STRESS_FAIL(st, "rx stream wrong at byte %llu (chunk of %llu)", (unsigned long long)(rx_done + i),
                      (unsigned long long)n);
          break;
        }
        atomic_store_explicit(&m->rx_cons, cons + n, memory_order_release);
        rx_done += n;
        moved = 1;
      }
    }
    if (tx_done < st->bytes) {
      uint64_t prod = atomic_load_explicit(&m->tx_prod, memory_order_relaxed);
      uint64_t cons = atomic_load_explicit(&m->tx_cons, memory_order_acquire);
      uint64_t used = prod - cons;
      if (used > size) {
        STRESS_FAIL(st, "program sees tx used %llu > ring (prod %llu)", (unsigned long long)used,
                    (unsigned long long)prod);
        break;
      }
      if (used < size) {
        uint64_t n = 1 + rng_next(&r) % (size - used);
        if (n > st->bytes - tx_done)
          n = st->bytes - tx_done;
        struct enoshm_span sp;
        stream_fill(seed_tx, tx_done, buf, (size_t)n);
        enoshm_span_make(&sp, enoshm_tx_base(m), size, prod, (size_t)n);
        enoshm_span_write(&sp, 0, buf, (size_t)n);
        atomic_store_explicit(&m->tx_prod, prod + n, memory_order_release);
        tx_done += n;
        moved = 1;
      }
    }
    if (!moved)
      spin_pause(&spins);
  }
  free(buf);
  free(want);
  munmap(m, st->maplen);
  return NULL;
}

static void stress_run(uint32_t ring, uint64_t bytes, uint64_t start)
{
  struct stress st = { .ring = ring, .bytes = bytes, .start = start };
  st.maplen = ENOSHM_HDR_SIZE + 2 * (size_t)ring;
  st.memfd = memfd_create("test_ring", MFD_CLOEXEC);
  cr_assert(st.memfd >= 0, "memfd_create: %s", strerror(errno));
  cr_assert_eq(ftruncate(st.memfd, (off_t)st.maplen), 0);
  struct enoshm *m = mmap(NULL, st.maplen, PROT_READ | PROT_WRITE, MAP_SHARED, st.memfd, 0);
  cr_assert(m != MAP_FAILED);
  hdr_init(m, ring);
  atomic_store(&m->rx_prod, start);
  atomic_store(&m->rx_cons, start);
  atomic_store(&m->tx_prod, start);
  atomic_store(&m->tx_cons, start);
  munmap(m, st.maplen);

  double t0 = now_s();
  pthread_t a, b;
  cr_assert_eq(pthread_create(&a, NULL, stress_tund, &st), 0);
  cr_assert_eq(pthread_create(&b, NULL, stress_prog, &st), 0);
  pthread_join(a, NULL);
  pthread_join(b, NULL);
  double dt = now_s() - t0;
  cr_assert_eq(atomic_load(&st.failed), 0, "ring %u start %llu: %s", ring, (unsigned long long)start,
               st.why);

  /* both indices ended exactly where the byte counts say */
  m = mmap(NULL, st.maplen, PROT_READ, MAP_SHARED, st.memfd, 0);
  cr_assert(m != MAP_FAILED);
  cr_assert_eq(atomic_load(&m->rx_prod), start + bytes);
  cr_assert_eq(atomic_load(&m->rx_cons), start + bytes);
  cr_assert_eq(atomic_load(&m->tx_prod), start + bytes);
  cr_assert_eq(atomic_load(&m->tx_cons), start + bytes);
  munmap(m, st.maplen);
  close(st.memfd);
  cr_log_info("ring %6u: 2 x %llu MiB in %.2fs (%.0f MiB/s)", ring,
              (unsigned long long)(bytes >> 20), dt, 2.0 * (double)bytes / 1048576.0 / dt);
}

/* 512 MiB in all: 64 MiB each way through each ring size of 4..64 KiB (and
 * the last one starting 1 MiB before the 2^64 index wrap). */
Test(ring_spsc, stress_4k_to_64k, .timeout = 240)
{
  const uint64_t per = 64ull << 20, wrap = UINT64_MAX - (1ull << 20) + 1;
  stress_run(4096, per / 2, 0);
  stress_run(4096, per / 2, wrap);
  stress_run(8192, per, 12345);
  stress_run(16384, per, wrap - 3);
  stress_run(65536, per, wrap);
}
