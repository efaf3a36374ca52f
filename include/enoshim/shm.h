/*
 * enoshim/shm.h — the per-socket shared memory (one memfd per socket) that
 * tund and libenoshim.so share, and the ring operations both sides use.
 *
 *   offset 0            struct enoshm (one page): header, ring indices on
 *                       their own cache lines, hand-shake flags, status
 *   rx_off, rx_size     receive ring: tund produces, the program consumes
 *   tx_off, tx_size     send ring: the program produces, tund consumes
 *
 * tund creates the memfd, sizes it, seals it against shrinking and growing
 * (so a program can never make tund fault on a truncated mapping), and passes
 * it with the program's socket fd.  Everything in the mapping that the program
 * can write is untrusted by tund: tund reads rx_cons and tx_prod through
 * enoshm_*_checked() below, which reject indices that would move outside the
 * ring, and it never reads back the status block (it keeps its own copy).
 *
 * A memfd outlives its socket when both sides can keep it private: once the
 * program has closed every copy of the socket, tund keeps the memfd mapped as
 * a spare for the same owner's next socket (the same control connection, or
 * the same listener) and zeroes this header; the shim keeps its mapping and
 * finds it again by inode.  Sockets that crossed fork, exec or SCM_RIGHTS are
 * never reused (tund/spares.c).
 *
 * Indices are free-running 64-bit byte counters; position = index & (size-1).
 *
 * Readiness hand-shake with the socketpair (DESIGN.md "One real fd per
 * socket"; model in tests/spin/readiness.pml).  The program's side uses only
 * read(), write() and poll() on its end (and write() on its doorbell
 * connection): system calls that sandboxes such as OpenSSH's seccomp filter
 * leave to a sandboxed child, so an established socket works there.
 *   rx: after publishing bytes (or EOF/error) tund does CAS(rx_tok, 0 -> 1)
 *       and, if it won, writes a grant of ENOSHM_GRANT token bytes in one
 *       send to its end of the pair, so the program's fd is readable.  A
 *       program thread waiting for data blocks in read() of ONE byte (the
 *       kernel's blocking, O_NONBLOCK, SO_RCVTIMEO and SA_RESTART rules
 *       apply as they are): it takes one byte of the grant (tok_taken = 1),
 *       and the other keeps the fd readable for everyone else.  When the
 *       program finds the ring empty it gives the grant back: it stores
 *       rx_tok = 0, re-checks the ring (and EOF); if bytes slipped in it
 *       takes the grant back by CAS(0 -> 1) (the bytes still in the pair
 *       stand for it), otherwise — or if tund won that CAS and is writing a
 *       new grant — it reads the rest of the old grant (ENOSHM_GRANT -
 *       tok_taken bytes, which come before any newer grant in the stream)
 *       and sets tok_taken = 0.  So the program never asks tund for a token.
 *   tx: when the ring is full (or a connect is in progress) the program fills
 *       its end's small send buffer with filler bytes so that its fd stops
 *       being writable; a blocking writer then blocks in one more write()
 *       of the filler until tund drains (reads) the pair, which it does when
 *       the ring has room again and the connection can take data.  Every
 *       filler byte is declared in p2t_decl before it is written (see
 *       tund/progend.c conn_drain_t: bytes tund drains beyond what was
 *       declared were written around the shim, and the connection fails).
 *   wakeups of tund: tund sets bits in `wants` when it waits for something
 *       the program does (new tx bytes, rx space, accepts); the program clears
 *       a bit with an atomic exchange and, if it was set, rings the doorbell:
 *       an ENOIPC_KICK written to its doorbell connection (shim/ctl.c
 *       bell_ring), a non-blocking SOCK_SEQPACKET connection to tund of its
 *       own, never the socket's pair: a byte tund reads from the pair wakes
 *       the program's own blocking read() for nothing (unix_write_space),
 *       and the pair may be full of filler.
 */
#ifndef ENOSHIM_SHM_H
#define ENOSHIM_SHM_H

#include <stdatomic.h>
#include <stdint.h>
#include <stddef.h>
#include <string.h>
#include <pthread.h>
#include <time.h>

#include "tcpinc.h"

#define ENOSHM_MAGIC        0x4d534e45u   /* "ENSM" */
#define ENOSHM_VERSION      2u    /* 2: two-byte grants, p2t_decl, tok_taken */
#define ENOSHM_GRANT        2u    /* token bytes tund writes per grant (see above) */
#define ENOSHM_HDR_SIZE     4096u
#define ENOSHM_RING_MIN     4096u
#define ENOSHM_RING_MAX     (64u << 20)
#define ENOSHM_REUSE_TOUCH_MAX (64u * 1024u)  /* ring bytes past which reused memory is not worth its pages */
/* Each direction's ring is the socket's buffer that way (SO_SNDBUF/SO_RCVBUF
 * report it).  1 MiB: in scripts/bench (2 vCPU, MTU 65000) 256 KiB rings gave
 * plain 1-stream 9.0-11.3 Gbit/s, 1 MiB 15.3-17.3 (the writer and tund each
 * wake half as often or less); AES-128-GCM 7.6-10.3 vs 8.7-10.1.  Pages are
 * touched only as data passes (an idle connection costs a few), and a spare
 * that carried more than ENOSHM_REUSE_TOUCH_MAX has its pages given back;
 * Linux lets one TCP socket buffer up to 4-6 MiB (tcp_wmem/tcp_rmem). */
#define ENOSHM_RING_DEFAULT (1u << 20)

/* Socket states, published by tund in st.state. */
enum enoshm_state {
  ENOSHM_S_NEW = 0,       /* created, not connected */
  ENOSHM_S_BOUND,
  ENOSHM_S_LISTENING,
  ENOSHM_S_CONNECTING,    /* SYN sent / ENO + TEP handshake running */
  ENOSHM_S_ESTABLISHED,   /* data may flow */
  ENOSHM_S_CLOSED,        /* finished; st.error says why if it failed */
};

/* st.flags */
#define ENOSHM_F_RX_EOF     0x01u  /* peer finished sending; rx ring holds the rest */
#define ENOSHM_F_TX_SHUT    0x02u  /* our FIN queued (shutdown(SHUT_WR) done) */
#define ENOSHM_F_DEAD       0x04u  /* tund released the connection */
#define ENOSHM_F_TCPCRYPT   0x08u  /* tcpcrypt frames protect the stream */
#define ENOSHM_F_LOCAL_LAZY 0x10u  /* accepted through a published port: st.local is lwIP's
                                      address until asked (GETOPT ENOIPC_SO_DIALED, ipc.h),
                                      which makes it the one the peer dialed */

/* wants bits (tund sets, program clears) */
#define ENOSHM_WANT_TX      0x01u  /* tund waits for bytes in the tx ring */
#define ENOSHM_WANT_RXSPACE 0x02u  /* tund holds received bytes, rx ring full */
#define ENOSHM_WANT_ACCEPT  0x04u  /* listener: accept queue full, tell me when it drains */

struct enoshm_addr {
  uint16_t family;     /* AF_INET, AF_INET6 or 0 */
  uint16_t port;       /* host order */
  uint32_t scope_id;
  uint32_t flowinfo;
  uint8_t  addr[16];   /* 4 or 16 bytes used */
};

/* Written by tund only, under the seqlock `seq` (odd while writing). */
struct enoshm_status {
  uint32_t state;            /* enum enoshm_state */
  int32_t  error;            /* errno of a failure, 0 if none */
  uint32_t flags;            /* ENOSHM_F_* */
  uint32_t accepted;         /* listener: records sent to the accept queue */
  struct enoshm_addr local;
  struct enoshm_addr remote;
  /* ENO (RFC 8547) results, api-06 §2.1 */
  uint8_t  eno_state;        /* TCPINC_STATE_* */
  uint8_t  eno_reason;       /* why disabled (stack/eno.h reason code) */
  uint8_t  role;             /* 0 = A, 1 = B */
  uint8_t  negtep;           /* TEP id | 0x80 if B sent v=1 */
  uint8_t  self_gopt;
  uint8_t  peer_gopt;
  uint16_t aead;             /* tcpcrypt AEAD id in use, 0 if none */
  uint8_t  sessid_len;
  uint8_t  transcript_len;
  uint8_t  raw;              /* TCP_ENO_RAW mode */
  uint8_t  resumed;
  uint8_t  sessid[TCPINC_SESSID_MAX];
  uint8_t  transcript[TCPINC_TRANSCRIPT_MAX];
};

struct enoshm {
  /* immutable after creation (set by tund before the fd is passed) */
  uint32_t magic;
  uint32_t version;
  uint32_t total_size;
  uint32_t rx_off, rx_size;
  uint32_t tx_off, tx_size;
  uint32_t pad0;
  uint64_t sock_id;

  _Alignas(64) _Atomic uint64_t rx_prod;   /* tund */
  _Alignas(64) _Atomic uint64_t rx_cons;   /* program */
  _Alignas(64) _Atomic uint64_t tx_prod;   /* program */
  _Alignas(64) _Atomic uint64_t tx_cons;   /* tund */
  _Alignas(64) _Atomic uint32_t rx_tok;    /* rx token hand-shake */
  _Atomic uint32_t wants;                  /* ENOSHM_WANT_* */
  _Atomic uint32_t acc_cons;               /* listener: records the program took */
  _Atomic uint64_t p2t_decl;               /* bytes the shim wrote (or is writing) to its end */
  _Alignas(64) _Atomic uint32_t seq;       /* status seqlock */
  struct enoshm_status st;

  /* Program-only area (tund never reads it): serialises readers and writers
   * of one socket across threads and processes sharing it. */
  _Alignas(64) pthread_mutex_t rx_lock;
  pthread_mutex_t tx_lock;
  _Atomic uint32_t locks_ready;
  uint32_t tok_taken;        /* under rx_lock: bytes of the current grant a wait took */
};

_Static_assert(sizeof(struct enoshm) <= ENOSHM_HDR_SIZE, "enoshm header must fit its page");

static inline int enoshm_is_pow2(uint32_t v) { return v && !(v & (v - 1)); }

/* Validate the immutable header against the mapping length (both sides). */
static inline int enoshm_header_ok(const struct enoshm *m, size_t maplen)
{
  if (maplen < ENOSHM_HDR_SIZE || m->magic != ENOSHM_MAGIC || m->version != ENOSHM_VERSION)
    return 0;
  if (m->total_size != maplen)
    return 0;
  if (!enoshm_is_pow2(m->rx_size) || !enoshm_is_pow2(m->tx_size))
    return 0;
  if (m->rx_size < ENOSHM_RING_MIN || m->rx_size > ENOSHM_RING_MAX ||
      m->tx_size < ENOSHM_RING_MIN || m->tx_size > ENOSHM_RING_MAX)
    return 0;
  if (m->rx_off < ENOSHM_HDR_SIZE || m->tx_off < ENOSHM_HDR_SIZE)
    return 0;
  if ((uint64_t)m->rx_off + m->rx_size > maplen || (uint64_t)m->tx_off + m->tx_size > maplen)
    return 0;
  if (m->rx_off < m->tx_off ? (uint64_t)m->rx_off + m->rx_size > m->tx_off
                            : (uint64_t)m->tx_off + m->tx_size > m->rx_off)
    return 0;
  return 1;
}

static inline uint8_t *enoshm_rx_base(struct enoshm *m) { return (uint8_t *)m + m->rx_off; }
static inline uint8_t *enoshm_tx_base(struct enoshm *m) { return (uint8_t *)m + m->tx_off; }

/* A run of ring bytes in at most two pieces (the ring wraps once at most). */
struct enoshm_span {
  uint8_t *p[2];
  size_t   n[2];
};

static inline size_t enoshm_span_len(const struct enoshm_span *s) { return s->n[0] + s->n[1]; }

static inline void enoshm_span_make(struct enoshm_span *s, uint8_t *base, uint32_t size,
                                    uint64_t idx, size_t len)
{
  size_t pos = (size_t)(idx & (size - 1));
  size_t first = size - pos;
  if (first > len)
    first = len;
  s->p[0] = base + pos;
  s->n[0] = first;
  s->p[1] = base;
  s->n[1] = len - first;
}

/* Copy out of / into a span at byte offset `off` within it. */
static inline void enoshm_span_read(const struct enoshm_span *s, size_t off, void *dst, size_t len)
{
  uint8_t *d = dst;
  if (off < s->n[0]) {
    size_t k = s->n[0] - off;
    if (k > len) k = len;
    memcpy(d, s->p[0] + off, k);
    d += k; len -= k; off = 0;
  } else {
    off -= s->n[0];
  }
  if (len)
    memcpy(d, s->p[1] + off, len);
}

static inline void enoshm_span_write(const struct enoshm_span *s, size_t off, const void *src, size_t len)
{
  const uint8_t *q = src;
  if (off < s->n[0]) {
    size_t k = s->n[0] - off;
    if (k > len) k = len;
    memcpy(s->p[0] + off, q, k);
    q += k; len -= k; off = 0;
  } else {
    off -= s->n[0];
  }
  if (len)
    memcpy(s->p[1] + off, q, len);
}

/* ---- tund side: every index the program writes is checked --------------- */

/* Free space in the rx ring, or -1 if the program's rx_cons is impossible
 * (before what it could have seen, or after what was produced).  `prod` is
 * tund's own copy of rx_prod: the shared one is the program's to scribble. */
static inline int64_t enoshm_rx_space_checked(struct enoshm *m, uint32_t size, uint64_t prod)
{
  uint64_t cons = atomic_load_explicit(&m->rx_cons, memory_order_acquire);
  uint64_t used = prod - cons;
  if (used > size)
    return -1;
  return (int64_t)(size - used);
}

/* Bytes the program has published in the tx ring beyond `read` (the index up
 * to which tund has already taken bytes), or -1 if tx_prod is impossible. */
static inline int64_t enoshm_tx_avail_checked(struct enoshm *m, uint32_t size, uint64_t read,
                                              uint64_t cons)
{
  uint64_t prod = atomic_load_explicit(&m->tx_prod, memory_order_acquire);
  if (prod - cons > size || prod - read > size || read - cons > size)
    return -1;
  if ((int64_t)(prod - read) < 0)
    return -1;
  return (int64_t)(prod - read);
}

/* Status seqlock: tund brackets every update of m->st. */
/* The status block's aead (and enoctl's status entries'): its name as
 * users read it, NULL for none or an id we do not know */
static inline const char *enoshm_aead_name(unsigned aead)
{
  switch (aead) {
  case TCPINC_AEAD_AES_128_GCM: return "AES-128-GCM";
  case TCPINC_AEAD_AES_256_GCM: return "AES-256-GCM";
  case TCPINC_AEAD_CHACHA20_POLY1305: return "ChaCha20-Poly1305";
  default: return NULL;
  }
}

static inline void enoshm_status_begin(struct enoshm *m)
{
  atomic_fetch_add_explicit(&m->seq, 1, memory_order_relaxed);
  atomic_thread_fence(memory_order_release);
}

static inline void enoshm_status_end(struct enoshm *m)
{
  atomic_thread_fence(memory_order_release);
  atomic_fetch_add_explicit(&m->seq, 1, memory_order_release);
}

/* Program side: consistent snapshot of the status block.  A writer can be
 * preempted inside an update for a scheduler time slice or more, so the
 * reader waits for it rather than give up after a short spin: it spins a
 * little, then sleeps (nanosleep: sandboxes that allow little else allow
 * it, sched_yield they often do not), and returns the last bytes only after
 * ~1 s of one unchanging odd sequence number — when tund died in the middle
 * of an update (the program then also sees its socket hang up). */
static inline void enoshm_status_read(struct enoshm *m, struct enoshm_status *out)
{
  uint32_t stuck_at = 0;        /* odd value seen on the previous look */
  unsigned tries = 0;           /* looks at that same odd value */
  for (;;) {
    uint32_t s1 = atomic_load_explicit(&m->seq, memory_order_acquire);
    /* A writer that moves on is alive: only ~1 s at one odd value means
     * it died inside an update. */
    if (!(s1 & 1) || s1 != stuck_at)
      tries = 0;
    stuck_at = s1;
    int give_up = tries >= 1000 + 20000;
    if ((s1 & 1) && !give_up) {
      if (tries >= 1000) {
        struct timespec ts = { 0, 50000 };      /* 50 us */
        nanosleep(&ts, NULL);
      }
      tries++;
      continue;
    }
    memcpy(out, (const void *)&m->st, sizeof(*out));
    atomic_thread_fence(memory_order_acquire);
    uint32_t s2 = atomic_load_explicit(&m->seq, memory_order_relaxed);
    if (s1 == s2 || give_up)
      return;
  }
}

#endif
