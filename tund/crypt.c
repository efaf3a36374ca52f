/*
 * tund/crypt.c — TCP-ENO (RFC 8547) settings and results for a connection,
 * and tcpcrypt (RFC 8548) above lwIP's byte stream once ENO chose it.
 *
 *   connect/listen   the socket's settings (api-06 §2.1) and the system-wide
 *                    defaults (§2.2, tund's config) become an eno_config that
 *                    the lwIP hooks (stack/lwip_glue.c) negotiate with;
 *   established      crypt_start() reads the outcome: plain TCP, raw mode, the
 *                    experimental TEP 0x20 (no encryption, reported as such),
 *                    or tcpcrypt: Init1/Init2 (or resumption) then frames;
 *   data             frames are sealed from the tx ring into tund-owned
 *                    buffers that lwIP sends without copying (retransmissions
 *                    resend the same bytes), and opened from lwIP's pbufs
 *                    straight into the rx ring, published only after the tag
 *                    verified.
 *
 * Errors the program sees (distinct from EOF, RFC 8548 §3.3, §3.6):
 *   EBADMSG          a frame failed authentication (tampering or a wrong key)
 *   EPROTO           malformed Init message or frame, invalid public key,
 *                    an AEAD we did not offer, bytes after FINp
 *   ECONNABORTED     TCP FIN without a FINp frame (truncation), or no Init
 *                    message within the handshake timeout
 *   EPROTONOSUPPORT  TCP_ENO_TEP_MANDATORY and the peer does not do ENO
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>
#include <sys/socket.h>
#include <time.h>

#include "lwip/tcp.h"
#include "lwip/priv/tcp_priv.h"
#include "lwip/sys.h"
#include "conn.h"
#include "eno.h"
#include "lwip_glue.h"
#include "tcpcrypt.h"

#define FRAME_DATA_MAX   16384u          /* data per frame we send (bulk) */
#define CBUF_SIZE        (512u << 10)    /* ciphertext in flight per connection */
#define HANDSHAKE_MS     30000u

/* ---- per-socket settings (api-06 §2.1, §3.1) ------------------------------------ */

struct crypt_opts {
  int eno_enabled;            /* -1: system default */
  int teps_set;
  uint8_t teps[ENO_TEPS_MAX];
  int nteps;
  int self_gopt;
  int aa_mandatory;
  int tep_mandatory;
  uint8_t raw[ENO_SYN_CONTENTS_MAX];
  int raw_len;
  uint16_t aconf[TC_AEAD_LIST_MAX];
  int naconf;                 /* 0: system default */
  uint16_t bconf[TC_AEAD_LIST_MAX];
  int nbconf;
  unsigned policy;            /* TC_POLICY_* */
};

/* The TEP's context during the SYN exchange (eno_config.ops_ctx). */
struct crypt_pre {
  uint8_t peer[17];           /* resumption cache key: family | address */
  size_t peer_len;
  unsigned policy;
  tc_resume *resume;          /* the secret proposed (A) or accepted (B) */
  uint8_t resume_tep;
};

/* A run of ciphertext handed to lwIP (one frame), oldest first. */
struct cchunk {
  uint32_t off, len;
};

struct crypt_conn {
  tc_session *s;
  int established;
  uint32_t started;           /* sys_now() at crypt_start */
  uint64_t init_unacked;      /* Init bytes sent (copied by lwIP) not yet acked */
  uint8_t *cbuf;              /* sealed frames; lwIP references them */
  struct cchunk *chunks;
  unsigned ch_head, ch_n, ch_cap;
  uint32_t ch_acked;          /* bytes of the head chunk already acked */
  int finp_sent;
  int finp_seen;
  uint64_t key_bytes;         /* sent under the current key (rekey policy) */
  uint32_t key_since;         /* sys_now() of the last key change */
  uint32_t rekeys;
};

static tc_cache *resume_cache;
static const struct glue_eno_ops eno_ops;

static uint64_t now_s(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec;
}

/* ---- TEP callbacks for ENO (tcpcrypt-15 §3.5 resumption in suboptions) ---------- */

static int tep_is_tcpcrypt(uint8_t tep)
{
  tep &= ENO_SUB_GLT;
  return tep >= ENO_TEP_TCPCRYPT_P256 && tep <= ENO_TEP_TCPCRYPT_X448;
}

static bool tep_implemented(void *ctx, uint8_t tep)
{
  (void)ctx;
  tep &= ENO_SUB_GLT;
  return tep == ENO_TEP_EXPERIMENTAL || tep_is_tcpcrypt(tep);
}

/* A's SYN: offer resumption with the first TEP we hold a secret for. */
static size_t tep_syn_data(void *ctx, uint8_t tep, uint8_t *buf, size_t cap)
{
  struct crypt_pre *pre = ctx;
  if (!pre || !resume_cache || pre->resume || !tep_is_tcpcrypt(tep) || cap < TC_RESUME_SUBOPT_MAX)
    return 0;
  tc_resume *r = NULL;
  if (tc_resume_propose(resume_cache, pre->policy, pre->peer, pre->peer_len, tep, now_s(),
                        (size_t)cfg.resume_nonce_len, &r) != 0)
    return 0;
  pre->resume = r;
  pre->resume_tep = tep;
  return tc_resume_suboption(r, buf);
}

/* B's SYN-ACK: resume if A named a secret we hold, else fresh key exchange. */
static enum eno_answer tep_answer(void *ctx, const struct eno_subopt_view *a, uint8_t *buf,
                                  size_t cap, size_t *len)
{
  struct crypt_pre *pre = ctx;
  if (!tep_implemented(NULL, a->tep))
    return ENO_ANSWER_REFUSE;
  if (!tep_is_tcpcrypt(a->tep) || !pre || !resume_cache)
    return ENO_ANSWER_PLAIN;
  /* tcpcrypt-15 §3.5: v = 1 with fewer than 9 data bytes is a fresh offer */
  if (!a->v || a->data_ignored || a->data_len < TC_RESUME_HALF_LEN || pre->resume ||
      cap < TC_RESUME_SUBOPT_MAX)
    return ENO_ANSWER_PLAIN;
  tc_resume *r = NULL;
  if (tc_resume_answer(resume_cache, pre->policy, a->tep, a->data, a->data_len, now_s(),
                       (size_t)cfg.resume_nonce_len, &r) != 0)
    return ENO_ANSWER_PLAIN;       /* MUST NOT agree: fresh key exchange instead */
  pre->resume = r;
  pre->resume_tep = a->tep;
  *len = tc_resume_suboption(r, buf);
  return ENO_ANSWER_DATA;
}

/* §4.5 validity of a tcpcrypt suboption pair (tcpcrypt-15 §3.5). */
static enum eno_verdict tep_check(void *ctx, int self_role, const struct eno_subopt_view *a,
                                  const struct eno_subopt_view *b)
{
  struct crypt_pre *pre = ctx;
  if (!tep_is_tcpcrypt(b->tep))
    return ENO_VERDICT_VALID;
  if (b->v && b->data_len > 0 && b->data_len < TC_RESUME_HALF_LEN)
    return ENO_VERDICT_IGNORE_DATA;
  if (!b->v || b->data_len == 0)
    return ENO_VERDICT_VALID;       /* fresh key exchange */
  if (b->data_len > TC_RESUME_SUBOPT_MAX)
    return ENO_VERDICT_INVALID;
  if (self_role == ENO_ROLE_B)
    return ENO_VERDICT_VALID;       /* our own answer */
  /* A: B's resumption suboption must complete the identifier we proposed */
  (void)a;
  if (!pre || !pre->resume || (pre->resume_tep & ENO_SUB_GLT) != (b->tep & ENO_SUB_GLT))
    return ENO_VERDICT_INVALID;
  return tc_resume_check_reply(pre->resume, b->data, b->data_len) == 0 ? ENO_VERDICT_VALID
                                                                        : ENO_VERDICT_INVALID;
}

static const struct eno_tep_ops tep_ops = {
  .implemented = tep_implemented,
  .syn_data = tep_syn_data,
  .answer = tep_answer,
  .check = tep_check,
  .defines_syn_data = NULL,
};

static void pre_free(void *p)
{
  struct crypt_pre *pre = p;
  if (!pre)
    return;
  if (pre->resume)
    tc_resume_free(pre->resume);
  sodium_memzero(pre, sizeof(*pre));
  free(pre);
}

static struct crypt_pre *pre_new(const ip_addr_t *peer, unsigned policy)
{
  struct crypt_pre *pre = calloc(1, sizeof(*pre));
  if (!pre)
    return NULL;
  pre->policy = policy;
  if (IP_IS_V6(peer)) {
    pre->peer[0] = 6;
    memcpy(pre->peer + 1, ip_2_ip6(peer)->addr, 16);
    pre->peer_len = 17;
  } else {
    pre->peer[0] = 4;
    memcpy(pre->peer + 1, &ip_2_ip4(peer)->addr, 4);
    pre->peer_len = 5;
  }
  return pre;
}

/* ---- settings -> eno_config --------------------------------------------------------- */

static int port_in(const uint16_t *ports, int n, u16_t port)
{
  for (int i = 0; i < n; i++)
    if (ports[i] == port)
      return 1;
  return 0;
}

static void build_config(const struct crypt_opts *o, int passive, u16_t port, struct eno_config *ec)
{
  eno_config_init(ec);
  ec->ops = &tep_ops;
  int enabled;
  if (o && o->eno_enabled >= 0)
    enabled = o->eno_enabled;           /* api-06 §2.2: the socket overrides */
  else if (passive)
    enabled = cfg.eno_enable_listen && !port_in(cfg.bad_listen_ports, cfg.n_bad_listen_ports, port);
  else
    enabled = cfg.eno_enable_connect && !port_in(cfg.bad_connect_ports, cfg.n_bad_connect_ports, port);
  const uint8_t *teps = o && o->teps_set ? o->teps : cfg.eno_teps;
  int nteps = o && o->teps_set ? o->nteps : cfg.n_eno_teps;
  ec->enabled = enabled && nteps > 0;
  if (eno_config_set_teps(ec, teps, (size_t)nteps) != ENO_OK)
    ec->enabled = false;
  if (o) {
    ec->self_gopt = (uint8_t)(o->self_gopt & ENO_GOPT_MASK);
    ec->aa_mandatory = o->aa_mandatory;
    ec->tep_mandatory = o->tep_mandatory;
    if (o->raw_len) {
      eno_config_set_raw(ec, o->raw, (size_t)o->raw_len);
      ec->enabled = true;               /* api-06: raw mode works on its own */
    }
  }
}

static unsigned opts_policy(const struct crypt_opts *o)
{
  return o ? o->policy : 0;
}

int crypt_connect_setup(struct conn *c, u16_t port)
{
  struct eno_config ec;
  build_config(c->copts, 0, port, &ec);
  ip_addr_t dst;
  struct enoipc_addr a;
  memset(&a, 0, sizeof(a));
  a.family = c->st.remote.family;
  memcpy(a.addr, c->st.remote.addr, 16);
  if (ipaddr_from_ipc(&a, c->domain, &dst))
    return EINVAL;
  struct crypt_pre *pre = pre_new(&dst, opts_policy(c->copts));
  if (!pre)
    return ENOBUFS;
  if (glue_eno_connect(c->pcb, &ec, pre, cfg.eno_drop_syn_after)) {
    pre_free(pre);
    return ENOBUFS;
  }
  return 0;
}

/* A SYN reached a listener: this connection's settings (glue_eno_ops). */
static void passive_config(void *listener_arg, struct tcp_pcb *npcb, struct eno_config *ec, void **ctx)
{
  struct conn *l = listener_arg;
  build_config(l->copts, 1, npcb->local_port, ec);
  *ctx = pre_new(&npcb->remote_ip, opts_policy(l->copts));
}

static int passive_admit(void *listener_arg)
{
  return listener_admit(listener_arg);
}

static const struct glue_eno_ops eno_ops = {
  .passive_config = passive_config,
  .ctx_free = pre_free,
  .admit = passive_admit,
  .admit_release = listener_admit_release,
};

void crypt_listen_setup(struct conn *l)
{
  if (glue_eno_listen(l->pcb, l))
    log_warn("conn %llu: out of memory: listener without ENO", (unsigned long long)l->serial);
}

/* ---- ephemeral keys made ahead of time --------------------------------------------------
 * A fresh tcpcrypt handshake needs a new ephemeral key pair on each side
 * (RFC 8548 §3.3).  tund makes a few for every TEP it has used while its loop
 * is idle, so that a handshake only does the key agreement.  Each pair is
 * used once; pairs waiting here live in secmem (locked, wiped on free). */
#define KEX_POOL 4
static struct kex_pool {
  tc_kex *k[KEX_POOL];
  int n;
  int used;                  /* this TEP was negotiated: keep pairs for it */
} kex_pools[TCPINC_TEP_TCPCRYPT_X448 - TCPINC_TEP_TCPCRYPT_P256 + 1];

static tc_kex *kex_take(uint8_t tep)
{
  unsigned i = (unsigned)(tep - TCPINC_TEP_TCPCRYPT_P256);
  if (i >= sizeof(kex_pools) / sizeof(kex_pools[0]))
    return NULL;
  struct kex_pool *p = &kex_pools[i];
  p->used = 1;
  return p->n ? p->k[--p->n] : NULL;
}

int crypt_idle(void)
{
  for (unsigned i = 0; i < sizeof(kex_pools) / sizeof(kex_pools[0]); i++) {
    struct kex_pool *p = &kex_pools[i];
    if (!p->used || p->n == KEX_POOL)
      continue;
    tc_kex *k;
    if (tc_kex_generate((uint8_t)(TCPINC_TEP_TCPCRYPT_P256 + i), &k) != 0) {
      p->used = 0;            /* do not retry on every turn */
      return 0;
    }
    p->k[p->n++] = k;
    return 1;                 /* one per turn: events come first */
  }
  return 0;
}

void crypt_module_free(void)
{
  for (unsigned i = 0; i < sizeof(kex_pools) / sizeof(kex_pools[0]); i++)
    while (kex_pools[i].n)
      tc_kex_free(kex_pools[i].k[--kex_pools[i].n]);
}

void crypt_module_init(void)
{
  glue_eno_ops = &eno_ops;
  if (cfg.resume_cache_size && tc_cache_new(cfg.resume_cache_size, &resume_cache) != 0) {
    log_warn("no memory for the resumption cache: resumption disabled");
    resume_cache = NULL;
  }
}

/* ---- outcome of the negotiation ------------------------------------------------------ */

static void publish_eno(struct conn *c, const struct eno_conn *e)
{
  uint8_t t[ENO_TRANSCRIPT_MAX];
  size_t tl = eno_conn_transcript(e, t);
  c->st.eno_state = (uint8_t)eno_conn_status(e);
  c->st.eno_reason = (uint8_t)eno_conn_reason(e);
  int r = eno_conn_role(e);
  c->st.role = r < 0 ? 0 : (uint8_t)r;
  int n = eno_conn_negtep(e);
  c->st.negtep = n < 0 ? 0 : (uint8_t)n;
  int g = eno_conn_peer_gopt(e);
  c->st.peer_gopt = g < 0 ? 0 : (uint8_t)g;
  g = eno_conn_self_gopt(e);
  c->st.self_gopt = g < 0 ? 0 : (uint8_t)g;
  c->st.transcript_len = (uint8_t)tl;
  memcpy(c->st.transcript, t, tl);
  c->st.raw = e->raw;
}

static void cc_free(struct crypt_conn *cc)
{
  if (!cc)
    return;
  if (cc->s)
    tc_session_free(cc->s);
  free(cc->cbuf);
  free(cc->chunks);
  free(cc);
}

/* An accepted connection starts with its listener's settings (api-06: the
 * options set on the listening socket are what it negotiated with). */
void crypt_inherit_opts(struct conn *c, const struct conn *l)
{
  if (!l->copts || c->copts)
    return;
  c->copts = malloc(sizeof(*c->copts));
  if (c->copts)
    *c->copts = *l->copts;
}

int crypt_tep_mandatory(const struct conn *c)
{
  return c->copts && c->copts->tep_mandatory;
}

void crypt_conn_free(struct conn *c)
{
  cc_free(c->crypt);
  c->crypt = NULL;
  free(c->copts);
  c->copts = NULL;
}

static void crypt_fail(struct conn *c, int tc_err)
{
  int e;
  switch (tc_err) {
  case TC_ERR_AUTH: e = EBADMSG; break;
  default: e = EPROTO; break;
  }
  tund_log_limited(LOG_WARN_, "conn %llu: tcpcrypt: %s; resetting", (unsigned long long)c->serial,
                   tc_strerror(tc_err));
  conn_abort(c, e);
}

/* Write bytes the session owns (Init messages): lwIP copies them. */
static int write_copy(struct conn *c, const uint8_t *p, size_t n)
{
  while (n) {
    u16_t k = n > 0xffff ? 0xffff : (u16_t)n;
    if (tcp_write(c->pcb, p, k, TCP_WRITE_FLAG_COPY | (n > k ? TCP_WRITE_FLAG_MORE : 0)) != ERR_OK)
      return -1;
    c->crypt->init_unacked += k;
    p += k;
    n -= k;
  }
  tcp_output(c->pcb);
  return 0;
}

static void crypt_established(struct conn *c)
{
  struct crypt_conn *cc = c->crypt;
  cc->established = 1;
  cc->key_since = sys_now();
  const uint8_t *sid = tc_session_id(cc->s);
  memcpy(c->st.sessid, sid, TC_SESSID_LEN);
  c->st.sessid_len = TC_SESSID_LEN;
  c->st.aead = tc_session_aead(cc->s);
  c->st.resumed = (uint8_t)tc_session_resumed(cc->s);
  c->st.eno_state = TCPINC_STATE_ENCRYPTING;
  c->st.flags |= ENOSHM_F_TCPCRYPT;
  if (cfg.keylog_path[0]) {
    char line[TC_KEYLOG_MAX + 2];
    int n = tc_session_keylog(cc->s, line, sizeof(line) - 1);
    if (n > 0) {
      line[n] = '\n';
      line[n + 1] = 0;
      keylog_write(line);
      sodium_memzero(line, sizeof(line));
    }
  }
  conn_established(c);
}

/* Called when lwIP reports the TCP connection established (both roles). */
int crypt_start(struct conn *c)
{
  struct glue_pcb *g = glue_eno(c->pcb);
  if (!g) {
    c->st.eno_state = TCPINC_STATE_DISABLED;
    c->st.eno_reason = ENO_R_CONFIG;
    return 0;
  }
  struct eno_conn *e = &g->eno;
  if (g->last == ENO_ACT_ABORT || e->aborted) {
    publish_eno(c, e);
    tund_log_limited(LOG_INFO_, "conn %llu: ENO failed (%s) and TCP_ENO_TEP_MANDATORY is set: reset",
                     (unsigned long long)c->serial, eno_reason_str(eno_conn_reason(e)));
    conn_abort(c, EPROTONOSUPPORT);
    return 1;
  }
  publish_eno(c, e);
  if (!eno_conn_negotiated(e)) {
    c->st.eno_state = TCPINC_STATE_DISABLED;
    return 0;                          /* plain TCP (§4.6 fallback) */
  }
  /* A reaches here before its ACK (with 45 02) has left; it is queued. */
  c->st.eno_state = TCPINC_STATE_ENCRYPTING;
  if (e->raw)
    return 0;                          /* api-06 raw mode: the program's own TEP */
  uint8_t tep = c->st.negtep & ENO_SUB_GLT;
  if (tep == ENO_TEP_EXPERIMENTAL) {
    /* The experimental TEP carries the stream unchanged.  It is never in a
     * default list; its session ID is SHA-256 of the transcript (public). */
    c->st.sessid[0] = c->st.negtep;
    crypto_hash_sha256(c->st.sessid + 1, c->st.transcript, c->st.transcript_len);
    c->st.sessid_len = 1 + crypto_hash_sha256_BYTES;
    tund_log_limited(LOG_WARN_, "conn %llu: experimental TEP 0x20 negotiated: NOT encrypted",
                     (unsigned long long)c->serial);
    return 0;
  }
  if (!tep_is_tcpcrypt(tep)) {
    conn_abort(c, EPROTO);             /* cannot happen: we offer only what we have */
    return 1;
  }

  /* tcpcrypt */
  struct crypt_conn *cc = calloc(1, sizeof(*cc));
  if (!cc) {
    conn_abort(c, ENOBUFS);
    return 1;
  }
  c->crypt = cc;
  cc->started = sys_now();
  struct crypt_pre *pre = g->ctx;
  struct tc_config tcfg;
  memset(&tcfg, 0, sizeof(tcfg));
  tcfg.role = c->st.role;
  tcfg.tep = tep;
  tcfg.transcript = c->st.transcript;
  tcfg.transcript_len = c->st.transcript_len;
  const struct crypt_opts *o = c->copts ? c->copts : (c->listener ? c->listener->copts : NULL);
  if (o && o->naconf) {
    tcfg.aconf = o->aconf;
    tcfg.naconf = (size_t)o->naconf;
  } else {
    tcfg.aconf = cfg.crypt_aconf;
    tcfg.naconf = (size_t)cfg.n_crypt_aconf;
  }
  if (o && o->nbconf) {
    tcfg.bconf = o->bconf;
    tcfg.nbconf = (size_t)o->nbconf;
  } else {
    tcfg.bconf = cfg.crypt_bconf;
    tcfg.nbconf = (size_t)cfg.n_crypt_bconf;
  }
  tcfg.keylog = cfg.keylog_path[0] != 0;
  tcfg.policy = pre ? pre->policy : 0;
  tcfg.cache = resume_cache;
  tcfg.peer = pre ? pre->peer : NULL;
  tcfg.peer_len = pre ? pre->peer_len : 0;
  tcfg.cache_expiry = now_s() + cfg.resume_lifetime;
  tcfg.init_max = 64 * 1024;           /* our cap on Init ignored bytes */
  int r;
  if ((c->st.negtep & ENO_SUB_V) && pre && pre->resume &&
      (pre->resume_tep & ENO_SUB_GLT) == tep) {
    tc_resume *res = pre->resume;
    pre->resume = NULL;
    r = tc_session_new_resumed(&tcfg, res, &cc->s);
  } else {
    if (pre && pre->resume) {
      /* proposed but not taken: the secret is spent anyway (§3.5) */
      tc_resume_free(pre->resume);
      pre->resume = NULL;
    }
    tcfg.kex = kex_take(tep);          /* NULL: the session makes its own */
    r = tc_session_new(&tcfg, &cc->s);
  }
  if (r != 0) {
    crypt_fail(c, r);
    return 1;
  }
  /* api-06: "negotiating" (ENOTCONN) until the TEP has keys */
  c->st.eno_state = TCPINC_STATE_NEGOTIATING;
  conn_publish(c);
  if (tc_session_state(cc->s) == TC_ESTABLISHED) {
    crypt_established(c);              /* resumed: no Init messages */
    return 1;
  }
  if (c->st.role == ENO_ROLE_A) {
    const uint8_t *msg;
    size_t len;
    if (tc_session_handshake_out(cc->s, &msg, &len) != 0 || write_copy(c, msg, len)) {
      conn_abort(c, ENOBUFS);
      return 1;
    }
  }
  /* now wait for the peer's Init (crypt_rx_pump) */
  return 1;
}

/* ---- tx: frames from the tx ring ------------------------------------------------------ */

static uint64_t cbuf_used(const struct crypt_conn *cc, uint32_t *head, uint32_t *tail)
{
  if (!cc->ch_n) {
    *head = *tail = 0;
    return 0;
  }
  const struct cchunk *f = &cc->chunks[cc->ch_head];
  const struct cchunk *l = &cc->chunks[(cc->ch_head + cc->ch_n - 1) % cc->ch_cap];
  *head = f->off;
  *tail = l->off + l->len;
  return 1;
}

/* Room for a frame of n bytes in the cipher buffer: offset, or -1. */
static int64_t cbuf_alloc(struct crypt_conn *cc, uint32_t n)
{
  uint32_t head, tail;
  if (!cc->cbuf) {
    cc->cbuf = malloc(CBUF_SIZE);
    if (!cc->cbuf)
      return -1;
  }
  if (cc->ch_n == cc->ch_cap) {
    unsigned nc = cc->ch_cap ? cc->ch_cap * 2 : 64;
    struct cchunk *v = malloc(nc * sizeof(*v));
    if (!v)
      return -1;
    for (unsigned i = 0; i < cc->ch_n; i++)
      v[i] = cc->chunks[(cc->ch_head + i) % cc->ch_cap];
    free(cc->chunks);
    cc->chunks = v;
    cc->ch_cap = nc;
    cc->ch_head = 0;
  }
  if (!cbuf_used(cc, &head, &tail))
    return n <= CBUF_SIZE ? 0 : -1;
  if (tail > head) {                   /* used = [head, tail) */
    if (CBUF_SIZE - tail >= n)
      return tail;
    if (head >= n)
      return 0;                         /* wrap; the end stays unused */
    return -1;
  }
  /* wrapped: used = [head, end) + [0, tail) */
  if (head - tail >= n)
    return tail;
  return -1;
}

static void cbuf_push(struct crypt_conn *cc, uint32_t off, uint32_t len)
{
  cc->chunks[(cc->ch_head + cc->ch_n) % cc->ch_cap] = (struct cchunk){ off, len };
  cc->ch_n++;
}

int crypt_tx_all_acked(const struct conn *c)
{
  const struct crypt_conn *cc = c->crypt;
  return !cc || (cc->ch_n == 0 && cc->init_unacked == 0);
}

void crypt_on_acked(struct conn *c, u16_t len)
{
  struct crypt_conn *cc = c->crypt;
  if (!cc)
    return;
  uint64_t n = len;
  uint64_t k = n < cc->init_unacked ? n : cc->init_unacked;
  cc->init_unacked -= k;
  n -= k;
  while (n && cc->ch_n) {
    struct cchunk *f = &cc->chunks[cc->ch_head];
    uint32_t left = f->len - cc->ch_acked;
    if (n < left) {
      cc->ch_acked += (uint32_t)n;
      break;
    }
    n -= left;
    cc->ch_acked = 0;
    cc->ch_head = (cc->ch_head + 1) % cc->ch_cap;
    cc->ch_n--;
  }
  if (cc->ch_n == 0 && cc->cbuf && c->st.state == ENOSHM_S_ESTABLISHED) {
    /* idle: give the memory back (10,000 idle connections must stay small) */
    free(cc->cbuf);
    cc->cbuf = NULL;
  }
}

/* Seal one frame and hand it to lwIP.  0 ok, 1 no room now, -1 failed. */
static int send_frame(struct conn *c, const struct tc_iov *d, size_t nd, size_t dlen, uint8_t flags)
{
  struct crypt_conn *cc = c->crypt;
  size_t flen = tc_frame_len(dlen, flags);
  if (flen > c->pcb->snd_buf || c->pcb->snd_queuelen >= TCP_SND_QUEUELEN - 8)
    return 1;
  int64_t off = cbuf_alloc(cc, (uint32_t)flen);
  if (off < 0)
    return 1;
  size_t outlen = 0;
  int r = tc_frame_seal(cc->s, d, nd, flags, 0, cc->cbuf + off, flen, &outlen);
  if (r != 0) {
    crypt_fail(c, r);
    return -1;
  }
  /* lwIP references the bytes until they are acknowledged: no copy */
  err_t e = tcp_write(c->pcb, cc->cbuf + off, (u16_t)outlen, 0);
  if (e != ERR_OK) {
    /* cannot happen after the snd_buf check; the frame's nonce is spent */
    conn_abort(c, ENOBUFS);
    return -1;
  }
  cbuf_push(cc, (uint32_t)off, (uint32_t)outlen);
  cc->key_bytes += dlen;
  return 0;
}

/* The rekey policy (rekey_bytes / rekey_seconds).  With data about to be
 * sealed a new step may start before the peer answered the last one; without
 * data only one empty-frame step may be outstanding (RFC 8548 §3.8). */
static void maybe_rekey_policy(struct conn *c, int have_data)
{
  struct crypt_conn *cc = c->crypt;
  int due = (cfg.rekey_bytes && cc->key_bytes >= cfg.rekey_bytes) ||
            (cfg.rekey_seconds && sys_now() - cc->key_since >= cfg.rekey_seconds * 1000u);
  if (!due)
    return;
  int r = have_data ? tc_session_rekey_data(cc->s) : tc_session_rekey(cc->s);
  if (r == 0) {
    cc->key_bytes = 0;
    cc->key_since = sys_now();
    cc->rekeys++;
  }
}

void crypt_tx_pump(struct conn *c)
{
  struct crypt_conn *cc = c->crypt;
  int wrote = 0;
  if (!cc || !cc->established || cc->finp_sent)
    return;
  for (int round = 0; round < 2; round++) {
    int64_t avail = conn_tx_avail(c);
    if (avail < 0)
      return;
    /* §3.8: a frame with rekey=1 is owed (peer stepped, or we started one) */
    if (avail == 0 && tc_session_rekey_pending(cc->s)) {
      if (send_frame(c, NULL, 0, 0, 0))
        break;
      wrote = 1;
    }
    while (avail > 0) {
      maybe_rekey_policy(c, 1);
      size_t n = (size_t)avail < FRAME_DATA_MAX ? (size_t)avail : FRAME_DATA_MAX;
      struct enoshm_span sp;
      enoshm_span_make(&sp, c->tx_base, c->tx_size, c->tx_read, n);
      struct tc_iov d[2] = { { sp.p[0], sp.n[0] }, { sp.p[1], sp.n[1] } };
      int r = send_frame(c, d, sp.n[1] ? 2 : 1, n, 0);
      if (r < 0)
        return;
      if (r > 0)
        break;
      c->tx_read += n;
      c->tx_cons = c->tx_read;         /* sealed: the ring space is the program's again */
      atomic_store_explicit(&c->shm->tx_cons, c->tx_cons, memory_order_release);
      c->tx_bytes += n;
      avail -= (int64_t)n;
      wrote = 1;
    }
    if (avail > 0)
      break;
    atomic_fetch_or(&c->shm->wants, ENOSHM_WANT_TX);
    atomic_thread_fence(memory_order_seq_cst);
  }
  if (wrote || c->pcb->unsent)
    conn_output(c);
  if (wrote)
    conn_update_writable(c);
}

int crypt_tx_fin_ready(struct conn *c)
{
  struct crypt_conn *cc = c->crypt;
  if (!cc)
    return 1;
  if (!cc->established)
    return 0;
  int64_t avail = enoshm_tx_avail_checked(c->shm, c->tx_size, c->tx_read, c->tx_cons);
  return avail == 0;
}

/* RFC 8548 §3.7: the last frame carries FINp.  1 while it could not be
 * queued.  Not output here: the caller queues the TCP FIN next, which lwIP
 * puts on the same segment (one segment fewer per close, and the peer, whose
 * program closes as soon as it reads the FINp, no longer sends its FIN
 * before ours has arrived - a simultaneous close, TIME-WAIT on both sides);
 * the caller outputs. */
int crypt_send_fin(struct conn *c)
{
  struct crypt_conn *cc = c->crypt;
  if (!cc || cc->finp_sent)
    return 0;
  int r = send_frame(c, NULL, 0, 0, TC_FLAG_FIN);
  if (r != 0)
    return 1;
  cc->finp_sent = 1;
  return 0;
}

/* ---- rx: Init message, then frames into the rx ring ---------------------------------- */

static void rx_recved(struct conn *c, size_t n)
{
  while (n && c->pcb) {
    u16_t k = n > 0xffff ? 0xffff : (u16_t)n;
    tcp_recved(c->pcb, k);
    n -= k;
  }
}

/* The next unread bytes of the rx queue, within one pbuf of the front
 * chain; NULL when that chain is used up (it is released: look again). */
static const uint8_t *rxq_peek(struct conn *c, size_t *len)
{
  size_t off = c->rxq_off;
  struct pbuf *q = rxq_front(c);
  while (q && off >= q->len) {
    off -= q->len;
    q = q->next;
  }
  if (!q) {
    rxq_consume(c, 0);
    return NULL;
  }
  *len = (size_t)q->len - off;
  return (const uint8_t *)q->payload + off;
}

/* Feed the handshake; returns 1 when the session just became established. */
static int rx_handshake(struct conn *c)
{
  struct crypt_conn *cc = c->crypt;
  size_t consumed = 0;
  while (c->rxq_n) {
    size_t avail;
    const uint8_t *in = rxq_peek(c, &avail);
    if (!in)
      continue;
    size_t used = 0;
    int r = tc_session_handshake_in(cc->s, in, avail, &used);
    rxq_consume(c, used);
    consumed += used;
    if (r == TC_NEED_MORE)
      continue;
    rx_recved(c, consumed);
    if (r != 0) {
      crypt_fail(c, r);
      return -1;
    }
    /* peer's Init complete */
    if (c->st.role == ENO_ROLE_B) {
      const uint8_t *msg;
      size_t len;
      if (tc_session_handshake_out(cc->s, &msg, &len) != 0 || write_copy(c, msg, len)) {
        conn_abort(c, ENOBUFS);
        return -1;
      }
    }
    crypt_established(c);
    return c->dead ? -1 : 1;
  }
  rx_recved(c, consumed);
  return 0;
}

void crypt_rx_pump(struct conn *c)
{
  struct crypt_conn *cc = c->crypt;
  if (!cc)
    return;
  if (!cc->established) {
    if (rx_handshake(c) <= 0)
      return;
  }
  uint64_t published = 0;
  size_t consumed = 0;
  int need_rekey_frame = 0;
  while (c->rxq_n && !c->dead) {
    int64_t space = enoshm_rx_space_checked(c->shm, c->rx_size, c->rx_prod);
    if (space < 0) {
      conn_abort(c, EIO);
      return;
    }
    /* the frame being read is decrypted at rx_prod, published when verified */
    struct enoshm_span sp;
    enoshm_span_make(&sp, c->rx_base, c->rx_size, c->rx_prod, (size_t)space);
    struct tc_iov_mut out[2] = { { sp.p[0], sp.n[0] }, { sp.p[1], sp.n[1] } };
    size_t avail;
    const uint8_t *in = rxq_peek(c, &avail);
    if (!in)
      continue;
    size_t used = 0;
    struct tc_frame_info info;
    int r = tc_frame_read(cc->s, in, avail, &used, out, sp.n[1] ? 2 : 1, &info);
    rxq_consume(c, used);
    consumed += used;
    if (r == TC_NEED_MORE)
      continue;
    if (r == TC_NEED_SPACE) {
      /* the next frame needs more room than the program left us */
      atomic_fetch_or(&c->shm->wants, ENOSHM_WANT_RXSPACE);
      atomic_thread_fence(memory_order_seq_cst);
      if (enoshm_rx_space_checked(c->shm, c->rx_size, c->rx_prod) > space)
        continue;
      break;
    }
    if (r == TC_FRAME_DONE) {
      if (c->prog_closed && info.data_len) {
        /* data for a program that closed its socket: reset, as the kernel does */
        rx_recved(c, consumed);
        conn_abort(c, 0);
        return;
      }
      c->rx_prod += info.data_len;
      published += info.data_len;
      atomic_store_explicit(&c->shm->rx_prod, c->rx_prod, memory_order_release);
      if (info.rekey)
        cc->rekeys++;
      if (tc_session_rekey_pending(cc->s))
        need_rekey_frame = 1;
      if (info.flags & TC_FLAG_FIN)
        cc->finp_seen = 1;
      /* URGp: the urgent pointer is verified but not signalled (data inline) */
      continue;
    }
    rx_recved(c, consumed);
    if (published)
      conn_rx_notify(c);
    log_debug("conn %llu: frame error at stream offset %llu", (unsigned long long)c->serial,
              (unsigned long long)tc_session_rx_offset(cc->s));
    crypt_fail(c, r);
    return;
  }
  rx_recved(c, consumed);
  if (published) {
    c->rx_bytes += published;
    conn_rx_notify(c);
  }
  if (cc->finp_seen && !c->eof_published && !c->rxq_n)
    conn_publish_eof(c);               /* EOF only on FINp (§3.7) */
  if (need_rekey_frame && !c->dead)
    conn_tx_pump(c);
}

/* RFC 8548 §3.7: a TCP FIN without a FINp frame is truncation, not EOF. */
int crypt_rx_fin_without_finp(struct conn *c)
{
  struct crypt_conn *cc = c->crypt;
  if (!cc || cc->finp_seen)
    return 0;
  tund_log_limited(LOG_WARN_, "conn %llu: TCP FIN without a FINp frame: resetting",
                   (unsigned long long)c->serial);
  conn_abort(c, ECONNABORTED);
  return 1;
}

/* ---- options (api-06 §2.1, §3.1) -------------------------------------------------------- */

static struct crypt_opts *opts_of(struct conn *c)
{
  if (!c->copts) {
    c->copts = calloc(1, sizeof(*c->copts));
    if (c->copts)
      c->copts->eno_enabled = -1;
  }
  return c->copts;
}

/* "after the SYN segment has been sent" */
static int syn_sent(const struct conn *c)
{
  return c->kind == CK_STREAM;
}

static int get_int(const uint8_t *val, uint32_t len, int *v)
{
  if (len < sizeof(int))
    return EINVAL;
  memcpy(v, val, sizeof(int));
  return 0;
}

_Static_assert(ENOIPC_AEAD_LIST_MAX == TC_AEAD_LIST_MAX, "one limit for AEAD lists");

static int parse_aead_list(const uint8_t *val, uint32_t len, uint16_t *out, int *n)
{
  if (!enoipc_aead_list_ok(val, len))
    return EINVAL;
  for (uint32_t i = 0; i < len / 2; i++)
    out[i] = (uint16_t)(val[2 * i] << 8 | val[2 * i + 1]);
  *n = (int)(len / 2);
  return 0;
}

int crypt_setopt(struct conn *c, int name, const uint8_t *val, uint32_t len)
{
  struct crypt_opts *o;
  int v = 0, e;
  switch (name) {
  case TCP_ENO_ENABLED:
    if ((e = get_int(val, len, &v)))
      return e;
    if (!enoipc_eno_int_ok(name, v))
      return EINVAL;
    if (syn_sent(c))
      return EISCONN;
    if (!(o = opts_of(c)))
      return ENOBUFS;
    o->eno_enabled = v;
    return 0;
  case TCP_ENO_TEPS: {
    if (syn_sent(c))
      return EISCONN;
    struct eno_config t;
    eno_config_init(&t);
    t.ops = &tep_ops;
    if (eno_config_set_teps(&t, val, len) != ENO_OK)
      return EINVAL;
    if (!(o = opts_of(c)))
      return ENOBUFS;
    o->nteps = t.nteps;
    memcpy(o->teps, t.teps, t.nteps);
    o->teps_set = 1;
    return 0;
  }
  case TCP_ENO_SELF_GOPT:
    if ((e = get_int(val, len, &v)))
      return e;
    if (!enoipc_eno_int_ok(name, v))
      return EINVAL;
    if (syn_sent(c))
      return EISCONN;
    if (!(o = opts_of(c)))
      return ENOBUFS;
    o->self_gopt = v;
    return 0;
  case TCP_ENO_AA_MANDATORY:
    if ((e = get_int(val, len, &v)))
      return e;
    if (!enoipc_eno_int_ok(name, v))
      return EINVAL;
    if (syn_sent(c))
      return EISCONN;
    if (!(o = opts_of(c)))
      return ENOBUFS;
    o->aa_mandatory = v;
    return 0;
  case TCP_ENO_TEP_MANDATORY:
    if ((e = get_int(val, len, &v)))
      return e;
    if (!enoipc_eno_int_ok(name, v))
      return EINVAL;
    if (!(o = opts_of(c)))
      return ENOBUFS;
    o->tep_mandatory = v;
    if (v && c->kind == CK_STREAM && c->st.state == ENOSHM_S_ESTABLISHED &&
        c->st.eno_state == TCPINC_STATE_DISABLED && !c->st.raw) {
      /* api-06: "immediately aborts the connection if set to 1 on an
       * established unencrypted connection" */
      conn_abort(c, EPROTONOSUPPORT);
      return 0;
    }
    if (v) {
      struct glue_pcb *g = glue_eno(c->pcb);
      if (g)
        (void)eno_conn_set_tep_mandatory(&g->eno);
    }
    return 0;
  case TCP_ENO_RAW: {
    if (syn_sent(c))
      return EISCONN;
    struct eno_config t;
    eno_config_init(&t);
    if (len > ENO_SYN_CONTENTS_MAX || eno_config_set_raw(&t, val, len) != ENO_OK)
      return EINVAL;
    if (!(o = opts_of(c)))
      return ENOBUFS;
    memcpy(o->raw, val, len);
    o->raw_len = (int)len;
    return 0;
  }
  case TCP_CRYPT_ACONF:
  case TCP_CRYPT_BCONF:
    if (syn_sent(c))
      return EISCONN;
    if (!(o = opts_of(c)))
      return ENOBUFS;
    return name == TCP_CRYPT_ACONF ? parse_aead_list(val, len, o->aconf, &o->naconf)
                                   : parse_aead_list(val, len, o->bconf, &o->nbconf);
  case TCP_CRYPT_CACHE_FLUSH:
    if ((e = get_int(val, len, &v)))
      return e;
    if (v != 1)
      return EINVAL;
    if (c->crypt && c->crypt->s) {
      tc_session_cache_flush(c->crypt->s);   /* what this connection produced */
      return 0;
    }
    if (syn_sent(c))
      return 0;                              /* nothing cached from it */
    /* unconnected: use no cached secret for this connection */
    if (!(o = opts_of(c)))
      return ENOBUFS;
    o->policy |= TC_POLICY_NO_RESUME;
    return 0;
  case TCP_CRYPT_NOCACHE:
  case TCP_CRYPT_NORESUME: {
    if ((e = get_int(val, len, &v)))
      return e;
    if (syn_sent(c))
      return EISCONN;
    if (!(o = opts_of(c)))
      return ENOBUFS;
    unsigned bit = name == TCP_CRYPT_NOCACHE ? TC_POLICY_NO_CACHE : TC_POLICY_NO_RESUME;
    if (v)
      o->policy |= bit;
    else
      o->policy &= ~bit;
    return 0;
  }
  case TCP_CRYPT_REKEY:
    if ((e = get_int(val, len, &v)))
      return e;
    if (!c->crypt || !c->crypt->established)
      return c->st.eno_state == TCPINC_STATE_NEGOTIATING ? ENOTCONN : EINVAL;
    if (tc_session_rekey(c->crypt->s) != 0)
      return EAGAIN;
    c->crypt->rekeys++;
    c->crypt->key_bytes = 0;
    c->crypt->key_since = sys_now();
    conn_tx_pump(c);
    return 0;
  default:
    return ENOPROTOOPT;
  }
}

static int put_int(uint8_t *val, uint32_t *len, int v)
{
  if (*len < sizeof(int))
    return EINVAL;
  memcpy(val, &v, sizeof(v));
  *len = sizeof(v);
  return 0;
}

static int put_bytes(uint8_t *val, uint32_t *len, const void *p, size_t n)
{
  if (*len < n)
    return EINVAL;
  if (n)
    memcpy(val, p, n);    /* p may be NULL when there is nothing (n == 0) */
  *len = (uint32_t)n;
  return 0;
}

int crypt_getopt(struct conn *c, int name, uint8_t *val, uint32_t *len)
{
  const struct crypt_opts *o = c->copts;
  switch (name) {
  case TCP_ENO_ENABLED:
    return put_int(val, len, o ? o->eno_enabled : -1);
  case TCP_ENO_TEPS:
    if (o && o->teps_set)
      return put_bytes(val, len, o->teps, (size_t)o->nteps);
    return put_bytes(val, len, cfg.eno_teps, (size_t)cfg.n_eno_teps);
  case TCP_ENO_SELF_GOPT: {
    int g = o ? o->self_gopt : 0;
    if (c->kind == CK_LISTENER || (c->kind == CK_STREAM && c->accepted))
      g |= ENO_GOPT_B;           /* api-06: forced to 1 after listen */
    if (c->kind == CK_STREAM && c->st.eno_state == TCPINC_STATE_ENCRYPTING)
      g = c->st.self_gopt;       /* what our SYN-form actually said */
    return put_int(val, len, g);
  }
  case TCP_ENO_AA_MANDATORY:
    return put_int(val, len, o ? o->aa_mandatory : 0);
  case TCP_ENO_TEP_MANDATORY:
    return put_int(val, len, o ? o->tep_mandatory : 0);
  case TCP_ENO_RAW:
    return put_bytes(val, len, o ? o->raw : NULL, o ? (size_t)o->raw_len : 0);
  case TCP_CRYPT_ACONF:
  case TCP_CRYPT_BCONF: {
    const uint16_t *l;
    int n;
    if (name == TCP_CRYPT_ACONF) {
      l = o && o->naconf ? o->aconf : cfg.crypt_aconf;
      n = o && o->naconf ? o->naconf : cfg.n_crypt_aconf;
    } else {
      l = o && o->nbconf ? o->bconf : cfg.crypt_bconf;
      n = o && o->nbconf ? o->nbconf : cfg.n_crypt_bconf;
    }
    uint8_t b[2 * TC_AEAD_LIST_MAX];
    for (int i = 0; i < n; i++) {
      b[2 * i] = (uint8_t)(l[i] >> 8);
      b[2 * i + 1] = (uint8_t)l[i];
    }
    return put_bytes(val, len, b, (size_t)(2 * n));
  }
  case TCP_CRYPT_NOCACHE:
    return put_int(val, len, o && (o->policy & TC_POLICY_NO_CACHE));
  case TCP_CRYPT_NORESUME:
    return put_int(val, len, o && (o->policy & TC_POLICY_NO_RESUME));
  default:
    return ENOPROTOOPT;
  }
}

/* ---- status, commands, timers -------------------------------------------------------------- */

void crypt_status(struct conn *c, struct enoipc_status_entry *e)
{
  if (c->crypt)
    e->rekeys = c->crypt->rekeys;
  if (c->st.eno_state == TCPINC_STATE_DISABLED) {
    snprintf(e->reason, sizeof(e->reason), "%s", eno_reason_str((enum eno_reason)c->st.eno_reason));
  } else if (c->st.eno_state == TCPINC_STATE_ENCRYPTING && c->st.raw) {
    snprintf(e->reason, sizeof(e->reason), "raw mode (TEP in the program)");
  } else if (c->st.eno_state == TCPINC_STATE_ENCRYPTING &&
             (c->st.negtep & ENO_SUB_GLT) == ENO_TEP_EXPERIMENTAL) {
    snprintf(e->reason, sizeof(e->reason), "experimental TEP: NOT encrypted");
  }
}

/* Start a tcpcrypt rekey on c: 0, or -1 if c is not encrypting with tcpcrypt. */
int crypt_rekey(struct conn *c)
{
  if (!c->crypt || !c->crypt->established || tc_session_rekey(c->crypt->s) != 0)
    return -1;
  c->crypt->rekeys++;
  c->crypt->key_bytes = 0;
  c->crypt->key_since = sys_now();
  conn_tx_pump(c);
  return 0;
}

int crypt_command(uint32_t cmd, uint64_t arg, char *out, size_t outlen)
{
  if (cmd == ENOIPC_CMD_FLUSH_CACHE) {
    size_t n = resume_cache ? tc_cache_count(resume_cache) : 0;
    if (resume_cache) {
      tc_cache_free(resume_cache);
      resume_cache = NULL;
      if (cfg.resume_cache_size && tc_cache_new(cfg.resume_cache_size, &resume_cache) != 0)
        resume_cache = NULL;
    }
    snprintf(out, outlen, "flushed %zu cached session secrets", n);
    return 0;
  }
  if (cmd == ENOIPC_CMD_REKEY) {
    /* arg 0: every connection encrypting with tcpcrypt; else the one whose
     * serial (enoctl status's ID) is arg, and an error that says why not */
    unsigned n = 0;
    int found = 0;
    for (struct conn *it = conn_first(); it; it = it->next) {
      if (it->dead || (arg && it->serial != arg))
        continue;
      found = 1;
      if (crypt_rekey(it) == 0)
        n++;
    }
    if (arg && !found) {
      snprintf(out, outlen, "no connection %llu", (unsigned long long)arg);
      return ENOENT;
    }
    if (arg && !n) {
      snprintf(out, outlen, "connection %llu is not encrypting with tcpcrypt: nothing to rekey",
               (unsigned long long)arg);
      return EINVAL;
    }
    snprintf(out, outlen, "rekey started on %u connection%s", n, n == 1 ? "" : "s");
    return 0;
  }
  return EINVAL;
}

void crypt_tick(struct conn *c)
{
  struct crypt_conn *cc = c->crypt;
  if (!cc)
    return;
  if (c->linger_since && !c->closing && sys_now() - c->linger_since > HANDSHAKE_MS) {
    conn_abort(c, 0);       /* the peer never finished after our close */
    return;
  }
  if (!cc->established && sys_now() - cc->started > HANDSHAKE_MS) {
    tund_log_limited(LOG_WARN_, "conn %llu: no tcpcrypt Init message from the peer in %u s",
                     (unsigned long long)c->serial, HANDSHAKE_MS / 1000);
    conn_abort(c, ECONNABORTED);
    return;
  }
  if (cc->established && cfg.rekey_seconds && c->st.state == ENOSHM_S_ESTABLISHED &&
      sys_now() - cc->key_since >= cfg.rekey_seconds * 1000u) {
    maybe_rekey_policy(c, 0);
    conn_tx_pump(c);
  }
  if (resume_cache)
    tc_cache_expire(resume_cache, now_s());
}
