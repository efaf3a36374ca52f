/*
 * stack/secmem.h — small blocks for per-connection secrets.
 *
 * sodium_malloc() gives every block its own guard and canary pages: about
 * four mappings and eight system calls (mmap, mprotect, mlock, madvise, and
 * back) per block.  tcpcrypt needs two or three such blocks per connection,
 * which at 10,000 connections is more than 30,000 mappings (the kernel's
 * default vm.max_map_count is 65,530) and a large share of the cost of
 * opening a connection.
 *
 * secmem keeps the properties that matter for key material — pages locked
 * in memory where the limit allows (never swapped), left out of core dumps
 * (MADV_DONTDUMP), every block wiped when it is freed — and gives up the
 * per-block guard pages.  Blocks come from 64 KiB slabs in size classes of
 * 64 bytes; slabs are kept for reuse, so the memory held is the peak.
 * Thread-safe (one mutex; tund is single-threaded).  Blocks larger than
 * SECMEM_MAX come from sodium_malloc().
 */
#ifndef ENOSHIM_SECMEM_H
#define ENOSHIM_SECMEM_H

#include <stddef.h>

#define SECMEM_MAX 4096

/* A zeroed block of n bytes (n > 0), 64-byte aligned, or NULL. */
void *secmem_alloc(size_t n);

/* Wipe and release a block from secmem_alloc(n), same n.  NULL is fine. */
void secmem_free(void *p, size_t n);

/* Bytes in slabs (held, whether in use or free) — for tests and status. */
size_t secmem_held(void);

#endif
