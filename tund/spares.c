/*
 * tund/spares.c — a connection's shared memory (the sealed memfd with its
 * header and two rings, include/enoshim/shm.h): made, or taken from the pool
 * of spares, when the connection is made; given back to the pool or
 * unmapped when it is freed.
 *
 * Making a socket's shared memory (memfd_create, ftruncate, seals, mmap, the
 * first touch of three pages) and dropping it again (munmap) costs each side
 * tens of microseconds of page-table work, more than anything else per
 * connection in a paravirtualised guest.  So the memfd of a connection that
 * ended goes back to a small pool, still mapped, and the next connection of
 * the same owner takes it; the shim keeps its mapping too (shim/sockmem.c).
 *
 * Who may see a spare again is the whole question.  Its owner ("key") is the
 * control connection (one process) that made the socket, or, for accepted
 * connections, the listener, whose holders could accept any of its
 * connections anyway.  A memfd is never a spare again once a process outside
 * that circle may have mapped it: ATTACH (the socket crossed an exec or
 * SCM_RIGHTS) and FORKED (the shim's fork handler lists the sockets a child
 * inherits) clear the key.  Spares are dropped with their owner.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tund.h"
#include "conn.h"

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
int spares_drop_all(void)
{
  unsigned n = n_spares;
  while (n_spares)
    spare_free(&spares[--n_spares]);
  return n > 0;
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

/* c's shared memory: a spare of the same owner if there is one, else new. */
int conn_shm_make(struct conn *c, uint32_t ring, uint64_t key)
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

/* The connection is being forgotten (conn_release): may its memory become a
 * spare when it is freed?  A listener's spares go with it. */
void conn_shm_release(struct conn *c)
{
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
}

/* The connection is freed (after the loop turn that released it). */
void conn_shm_free(struct conn *c)
{
  if (c->shm && c->memfd >= 0)      /* kept by conn_shm_release for spare_put */
    spare_put(c->spare_key, c->memfd, c->shm, c->shm_len, c->rx_prod, c->tx_read);
  else if (c->shm)
    munmap(c->shm, c->shm_len);
}
