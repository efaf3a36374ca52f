/*
 * stack/lwip_glue.c — lwIP hooks: RFC 6528 initial sequence numbers, and the
 * TCP option hooks through which ENO (RFC 8547) runs.  See
 * stack/lwip/enoshim_lwip_hooks.h for the traps of lwIP 2.1.3 these follow.
 */
#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lwip/opt.h"
#include "lwip/sys.h"
#include "lwip/tcp.h"
#include "lwip/priv/tcp_priv.h"
#include "lwip/timeouts.h"
#include "lwip/prot/tcp.h"
#include "lwip/pbuf.h"
#include "lwip/netif.h"
#include "enoshim_lwip_hooks.h"
#include "lwip_glue.h"

static uint8_t isn_key[crypto_shorthash_KEYBYTES];
static u8_t eno_ext_id;

int glue_init(void)
{
  if (sodium_init() < 0)
    return -1;
  randombytes_buf(isn_key, sizeof(isn_key));
  eno_ext_id = tcp_ext_arg_alloc_id();
  return 0;
}

static unsigned tw_max;
static uint64_t tw_trimmed;

static void tw_trim(void *arg)
{
  (void)arg;
  /* TCP_REG() pushes at the head: the list runs newest to oldest */
  unsigned n = 0;
  struct tcp_pcb *p = tcp_tw_pcbs, *last = NULL;
  while (p && n < tw_max) {
    last = p;
    p = p->next;
    n++;
  }
  if (p && last) {
    last->next = NULL;
    while (p) {
      struct tcp_pcb *next = p->next;
      tcp_port_users[p->local_port]--;   /* off the list: patch 0004's count */
      tcp_free(p);            /* TIME-WAIT pcbs hold no data or callbacks */
      tw_trimmed++;
      p = next;
    }
  }
  sys_timeout(250, tw_trim, NULL);
}

void glue_set_time_wait_max(unsigned max)
{
  if (tw_max == 0 && max)
    sys_timeout(250, tw_trim, NULL);
  else if (tw_max && max == 0)
    sys_untimeout(tw_trim, NULL);
  tw_max = max;
}

uint64_t glue_time_wait_trimmed(void)
{
  return tw_trimmed;
}

/* Patch 0004 keeps tcp_port_users[] (how many listed pcbs hold each local
 * port) so that picking an ephemeral port is O(1) instead of a walk over
 * every pcb, the TIME-WAIT ones included.  This recounts from the lists and
 * reports the ports whose count differs: a wrong count would hand out a port
 * in use, or never again one that is free. */
int glue_check_ports(char *out, size_t outlen)
{
  u32_t *count = calloc(0x10000, sizeof(*count));
  unsigned pcbs = 0, bad = 0;
  if (!count) {
    snprintf(out, outlen, "ports: out of memory");
    return -1;
  }
  for (unsigned i = 0; i < NUM_TCP_PCB_LISTS; i++)
    for (struct tcp_pcb *p = *tcp_pcb_lists[i]; p; p = p->next, pcbs++)
      count[p->local_port]++;
  int first = -1;
  for (unsigned port = 0; port < 0x10000; port++)
    if (count[port] != tcp_port_users[port]) {
      if (first < 0)
        first = (int)port;
      bad++;
    }
  if (bad)
    snprintf(out, outlen, "ports: %u pcbs listed, %u ports counted wrong (first %d: %u counted, %u listed)",
             pcbs, bad, first, (unsigned)tcp_port_users[first], (unsigned)count[first]);
  else
    snprintf(out, outlen, "ports: %u pcbs listed, every port's count right", pcbs);
  free(count);
  return bad ? -1 : 0;
}

uint32_t enoshim_lwip_rand(void)
{
  return randombytes_random();
}

void enoshim_lwip_assert(const char *msg, const char *file, int line)
{
  fprintf(stderr, "tund: lwIP assertion \"%s\" failed at %s:%d\n", msg, file, line);
  abort();
}

u32_t sys_now(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (u32_t)((uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u);
}

/* RFC 6528 §3: ISN = M + F(localip, localport, remoteip, remoteport, secretkey)
 * with M a timer ticking every 4 microseconds and F a keyed hash (SipHash). */
u32_t enoshim_hook_tcp_isn(const ip_addr_t *local_ip, u16_t local_port,
                           const ip_addr_t *remote_ip, u16_t remote_port)
{
  uint8_t in[2 * 16 + 2 * 2 + 2];
  uint8_t h[crypto_shorthash_BYTES];
  size_t n = 0;
  struct timespec ts;
  uint32_t f, m;

  in[n++] = (uint8_t)IP_GET_TYPE(local_ip);
  if (IP_IS_V6(local_ip)) {
    memcpy(in + n, ip_2_ip6(local_ip)->addr, 16); n += 16;
    memcpy(in + n, ip_2_ip6(remote_ip)->addr, 16); n += 16;
  } else {
    memcpy(in + n, &ip_2_ip4(local_ip)->addr, 4); n += 4;
    memcpy(in + n, &ip_2_ip4(remote_ip)->addr, 4); n += 4;
  }
  in[n++] = (uint8_t)(local_port >> 8);
  in[n++] = (uint8_t)local_port;
  in[n++] = (uint8_t)(remote_port >> 8);
  in[n++] = (uint8_t)remote_port;
  crypto_shorthash(h, in, n, isn_key);
  memcpy(&f, h, sizeof(f));
  clock_gettime(CLOCK_MONOTONIC, &ts);
  m = (uint32_t)(((uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u) / 4u);
  return m + f;
}

/* ---- ENO through the TCP hooks ----------------------------------------------- */

const struct glue_eno_ops *glue_eno_ops;

/* The listener's hook stashes the SYN's options for the passive_open
 * callback, which runs later in the same tcp_input() call. */
static struct {
  u8_t opts[40];
  u16_t len;
  u8_t valid;
  u8_t had_data;
} pending_syn;

static void glue_pcb_free(u8_t id, void *data)
{
  struct glue_pcb *g = data;
  (void)id;
  if (!g)
    return;
  if (g->admitted && glue_eno_ops && glue_eno_ops->admit_release)
    glue_eno_ops->admit_release();
  if (g->ctx && glue_eno_ops && glue_eno_ops->ctx_free)
    glue_eno_ops->ctx_free(g->ctx);
  free(g);
}

struct glue_listen {
  void *arg;
};

static void glue_listen_free(u8_t id, void *data)
{
  (void)id;
  free(data);
}

static err_t glue_passive_open(u8_t id, struct tcp_pcb_listen *lpcb, struct tcp_pcb *npcb);

static const struct tcp_ext_arg_callbacks eno_conn_cbs = { glue_pcb_free, NULL };
static const struct tcp_ext_arg_callbacks eno_listen_cbs = { glue_listen_free, glue_passive_open };

int glue_admission_redeem(struct tcp_pcb *npcb)
{
  struct glue_pcb *g = glue_eno(npcb);
  if (!g || !g->admitted)
    return 0;
  g->admitted = 0;
  return 1;
}

struct glue_pcb *glue_eno(const struct tcp_pcb *pcb)
{
  if (!pcb || pcb->state == LISTEN || pcb->ext_args[eno_ext_id].callbacks != &eno_conn_cbs)
    return NULL;
  return pcb->ext_args[eno_ext_id].data;
}

/* bytes reserved for an ENO option of n bytes: lwIP writes options in words */
static u8_t pad4(size_t n)
{
  return (u8_t)((n + 3u) & ~3u);
}

int glue_eno_connect(struct tcp_pcb *pcb, const struct eno_config *cfg, void *ctx,
                     int drop_syn_after)
{
  struct glue_pcb *g = calloc(1, sizeof(*g));
  if (!g)
    return -1;
  g->cfg = *cfg;
  g->cfg.ops_ctx = ctx;
  g->ctx = ctx;
  g->drop_syn_after = (uint8_t)drop_syn_after;
  g->last = eno_conn_init_active(&g->eno, &g->cfg);
  g->nonsyn_len = eno_conn_nonsyn_required(&g->eno) ? pad4(ENO_NONSYN_OPT_LEN) : 0;
  tcp_ext_arg_set_callbacks(pcb, eno_ext_id, &eno_conn_cbs);
  tcp_ext_arg_set(pcb, eno_ext_id, g);
  return 0;
}

int glue_eno_listen(struct tcp_pcb *lpcb, void *listener_arg)
{
  struct glue_listen *l = calloc(1, sizeof(*l));
  if (!l)
    return -1;
  l->arg = listener_arg;
  tcp_ext_arg_set_callbacks(lpcb, eno_ext_id, &eno_listen_cbs);
  tcp_ext_arg_set(lpcb, eno_ext_id, l);
  return 0;
}

/* §4.6 passive opener: the SYN's ENO option decides what our SYN-ACK says.
 * Runs inside tcp_listen_input(), before the SYN-ACK is queued. */
static err_t glue_passive_open(u8_t id, struct tcp_pcb_listen *lpcb, struct tcp_pcb *npcb)
{
  struct glue_listen *l = lpcb->ext_args[id].data;
  struct glue_pcb *g;
  if (!l || !glue_eno_ops)
    return ERR_OK;
  /* any error here makes lwIP abandon npcb without a RST: the SYN is dropped */
  if (glue_eno_ops->admit && !glue_eno_ops->admit(l->arg)) {
    pending_syn.valid = 0;
    return ERR_MEM;
  }
  int admitted = glue_eno_ops->admit != NULL;
  g = glue_eno_ops->passive_config ? calloc(1, sizeof(*g)) : NULL;
  if (!g) {
    if (admitted && glue_eno_ops->admit_release)
      glue_eno_ops->admit_release();    /* nothing to carry the admission */
    return glue_eno_ops->passive_config ? ERR_MEM : ERR_OK;   /* ERR_MEM: the SYN is dropped */
  }
  g->admitted = (uint8_t)admitted;
  eno_config_init(&g->cfg);
  glue_eno_ops->passive_config(l->arg, npcb, &g->cfg, &g->ctx);
  g->cfg.ops_ctx = g->ctx;
  g->last = eno_conn_init_passive(&g->eno, &g->cfg, pending_syn.valid ? pending_syn.opts : NULL,
                                  pending_syn.valid ? pending_syn.len : 0);
  g->syn_had_data = pending_syn.had_data;
  g->nonsyn_len = eno_conn_nonsyn_required(&g->eno) ? pad4(ENO_NONSYN_OPT_LEN) : 0;
  pending_syn.valid = 0;
  tcp_ext_arg_set_callbacks(npcb, id, &eno_conn_cbs);
  tcp_ext_arg_set(npcb, id, g);
  return ERR_OK;
}

/* Gather the TCP options of the segment being input (they may be split over
 * two pbufs) into one buffer. */
static u16_t gather_opts(struct tcp_hdr *hdr, u16_t optlen, u16_t opt1len, const u8_t *opt2,
                         u8_t out[40])
{
  if (optlen > 40)
    optlen = 40;
  u16_t first = opt2 ? opt1len : optlen;
  if (first > optlen)
    first = optlen;
  memcpy(out, (const u8_t *)(hdr + 1), first);
  if (opt2 && optlen > first)
    memcpy(out + first, opt2, (size_t)(optlen - first));
  return optlen;
}

/* LWIP_HOOK_TCP_INPACKET_PCB: every segment for a pcb (or listener).  Header
 * fields are in host order here.  Only ENO state changes; lwIP's are left to
 * lwIP (a segment is never dropped here). */
err_t enoshim_hook_tcp_inpkt(struct tcp_pcb *pcb, struct tcp_hdr *hdr, u16_t optlen,
                             u16_t opt1len, u8_t *opt2, struct pbuf *p)
{
  u8_t opts[40];
  unsigned flags = TCPH_FLAGS(hdr);
  u16_t n = gather_opts(hdr, optlen, opt1len, opt2, opts);

  if (pcb->state == LISTEN) {
    /* keep the SYN's options for glue_passive_open() */
    pending_syn.valid = 0;
    if ((flags & (TCP_SYN | TCP_ACK | TCP_RST)) == TCP_SYN) {
      memcpy(pending_syn.opts, opts, n);
      pending_syn.len = n;
      pending_syn.valid = 1;
      /* §4.7: lwIP never delivers data carried by a SYN (it acknowledges the
       * ISN only), which is what ENO requires unless a TEP defines SYN data. */
      pending_syn.had_data = p->tot_len > 0;
    }
    return ERR_OK;
  }
  struct glue_pcb *g = glue_eno(pcb);
  if (!g)
    return ERR_OK;
  /* Only segments TCP will accept may move ENO: while the handshake runs, an
   * ACK must acknowledge exactly what we sent (RFC 9293 3.10.7.3/4), so a
   * blind forged ACK without ENO cannot turn encryption off. */
  if ((flags & TCP_ACK) && (pcb->state == SYN_SENT || pcb->state == SYN_RCVD) &&
      !TCP_SEQ_BETWEEN(hdr->ackno, pcb->lastack + 1, pcb->snd_nxt))
    return ERR_OK;
  if (pcb->state == SYN_RCVD && !(flags & TCP_SYN) && hdr->seqno != pcb->rcv_nxt)
    return ERR_OK;
  enum eno_action a = eno_conn_input(&g->eno, flags, opts, n);
  if (a != ENO_ACT_NONE && g->last != ENO_ACT_ABORT)
    g->last = a;
  return ERR_OK;
}

/* LWIP_HOOK_TCP_OUT_TCPOPT_LENGTH: the option bytes of a segment, called when
 * it is created and again when it is (re)sent.  lwIP puts the MSS option in
 * every SYN and no option in other segments (timestamps and SACK are off), so
 * internal_len > 0 means SYN.  The answer must not change while a segment
 * sized with the previous answer is still queued: the SYN length is fixed at
 * the first call, and the non-SYN length only shrinks (ENO no longer needed)
 * when nothing is queued. */
u8_t enoshim_hook_tcp_optlen(const struct tcp_pcb *pcb, u8_t internal_len)
{
  struct glue_pcb *g = glue_eno(pcb);
  if (!g)
    return internal_len;
  if (internal_len > 0) {
    if (!g->syn_len_set) {
      g->syn_len = pad4(eno_conn_output_len(&g->eno, ENO_TCP_SYN));
      g->syn_len_set = 1;
    }
    return (u8_t)(internal_len + g->syn_len);
  }
  u8_t want = eno_conn_nonsyn_required(&g->eno) ? pad4(ENO_NONSYN_OPT_LEN) : 0;
  if (want != g->nonsyn_len && pcb->unsent == NULL && pcb->unacked == NULL)
    g->nonsyn_len = want;
  return (u8_t)(internal_len + g->nonsyn_len);
}

/* LWIP_HOOK_TCP_OUT_ADD_TCPOPTS: fill the bytes reserved above — the ENO
 * option as eno_conn_output() says for this segment now, padded with NOPs (a
 * segment sized when ENO was still required but sent after ENO was disabled
 * carries NOPs only, §4.6 "refrain from sending any further ENO options"). */
u32_t *enoshim_hook_tcp_addopts(struct pbuf *p, struct tcp_hdr *hdr, const struct tcp_pcb *pcb,
                                u32_t *opts)
{
  (void)p;
  struct glue_pcb *g = glue_eno(pcb);
  if (!g)
    return opts;
  size_t used = (size_t)((u8_t *)opts - (u8_t *)(hdr + 1));
  size_t total = (size_t)TCPH_HDRLEN_BYTES(hdr) - TCP_HLEN;
  if (total <= used)
    return opts;
  size_t room = total - used;
  unsigned flags = TCPH_FLAGS(hdr);
  u8_t buf[ENO_SYN_OPT_MAX];
  u8_t *out = (u8_t *)opts;

  if ((flags & TCP_SYN) && g->drop_syn_after && pcb->nrtx >= g->drop_syn_after &&
      !(flags & TCP_ACK))
    (void)eno_conn_drop_syn_option(&g->eno);   /* §4.6 first exception */
  size_t n = eno_conn_output(&g->eno, flags, buf);
  if (n > room)
    n = 0;                     /* cannot happen: the length hook reserved it */
  memcpy(out, buf, n);
  memset(out + n, 0x01 /* NOP */, room - n);
  enum eno_action a = eno_conn_sent(&g->eno, flags, n);
  if (a != ENO_ACT_NONE && g->last != ENO_ACT_ABORT)
    g->last = a;
  return (u32_t *)(void *)(out + room);
}

/* ---- ICMP errors for connection attempts ----------------------------------
 * lwIP 2.1.3 drops ICMP destination-unreachable messages; a connect() to a
 * host nobody can route to would then wait for every SYN retransmission
 * (over a minute).  Linux fails such an attempt at once (RFC 1122 4.2.3.9
 * lets a host abort on "hard" errors; Linux treats all of them as hard in
 * SYN-SENT).  We do the same, after checking that the quoted segment is our
 * SYN (addresses, ports, and the sequence number of our SYN), so that a
 * forged ICMP cannot kill an unrelated connection. */
void (*glue_on_unreachable)(struct tcp_pcb *pcb, int err);
void (*glue_on_pmtu)(struct tcp_pcb *pcb, u32_t mtu);

/* An ICMPv6 Packet Too Big for one of our segments.  lwIP has no path MTU
 * discovery, and IPv6 routers do not fragment: a link on the way with an
 * MTU below the TUN's (a tunnel, PPPoE, a cloud network, or simply this
 * host's own interface) would drop every full-sized segment for ever.  The
 * quoted segment must be a connection's, with a sequence number it has in
 * flight (lastack .. snd_nxt, as Linux checks in tcp_v6_err), so that a
 * forged message cannot shrink an unrelated connection. */
static void pmtu_match(const ip_addr_t *src, const ip_addr_t *dst, u16_t sport, u16_t dport, u32_t seq,
                       u32_t mtu)
{
  for (struct tcp_pcb *pcb = tcp_active_pcbs; pcb; pcb = pcb->next) {
    if (pcb->local_port != sport || pcb->remote_port != dport)
      continue;
    if (!ip_addr_cmp(&pcb->local_ip, src) || !ip_addr_cmp(&pcb->remote_ip, dst))
      continue;
    if (TCP_SEQ_LT(seq, pcb->lastack) || TCP_SEQ_GT(seq, pcb->snd_nxt))
      return;
    if (glue_on_pmtu)
      glue_on_pmtu(pcb, mtu);
    return;
  }
}

/* LWIP_HOOK_TCP_OUTPUT_BATCH (lwIP patch 0007) */
void (*glue_output_batch)(int begin);

void enoshim_hook_tcp_output_batch(int begin)
{
  if (glue_output_batch)
    glue_output_batch(begin);
}

static void unreach_match(const ip_addr_t *src, const ip_addr_t *dst, u16_t sport, u16_t dport,
                          u32_t seq, int err)
{
  for (struct tcp_pcb *pcb = tcp_active_pcbs; pcb; pcb = pcb->next) {
    if (pcb->state != SYN_SENT || pcb->local_port != sport || pcb->remote_port != dport)
      continue;
    if (!ip_addr_cmp(&pcb->local_ip, src) || !ip_addr_cmp(&pcb->remote_ip, dst))
      continue;
    if (seq != pcb->lastack)       /* lastack = our ISS while in SYN-SENT */
      return;
    if (glue_on_unreachable)
      glue_on_unreachable(pcb, err);
    return;
  }
}

int enoshim_hook_ip4_input(struct pbuf *p, struct netif *inp)
{
  u8_t b[20 + 8 + 60 + 8];
  (void)inp;
  u16_t n = pbuf_copy_partial(p, b, sizeof(b), 0);
  if (n < 20 || (b[0] >> 4) != 4 || b[9] != 1 /* ICMP */)
    return 0;
  unsigned ihl = (unsigned)(b[0] & 0x0f) * 4u;
  if (ihl < 20 || n < ihl + 8u + 20u)
    return 0;
  const u8_t *icmp = b + ihl;
  if (icmp[0] != 3 /* destination unreachable */)
    return 0;
  int err;
  switch (icmp[1]) {
  case 0: case 6: case 11: err = ENETUNREACH; break;
  case 1: case 7: case 12: err = EHOSTUNREACH; break;
  case 2: err = ENOPROTOOPT; break;
  case 3: err = ECONNREFUSED; break;
  case 9: case 10: case 13: err = EHOSTUNREACH; break;
  default: return 0;     /* 4 = fragmentation needed etc.: not fatal */
  }
  const u8_t *in = icmp + 8;
  unsigned iihl = (unsigned)(in[0] & 0x0f) * 4u;
  if ((in[0] >> 4) != 4 || in[9] != 6 /* TCP */ || iihl < 20 || n < ihl + 8u + iihl + 8u)
    return 0;
  const u8_t *th = in + iihl;
  ip_addr_t src, dst;
  IP_ADDR4(&src, in[12], in[13], in[14], in[15]);
  IP_ADDR4(&dst, in[16], in[17], in[18], in[19]);
  unreach_match(&src, &dst, (u16_t)(th[0] << 8 | th[1]), (u16_t)(th[2] << 8 | th[3]),
                (u32_t)th[4] << 24 | (u32_t)th[5] << 16 | (u32_t)th[6] << 8 | th[7], err);
  return 0;              /* lwIP still sees it (and drops it) */
}

int enoshim_hook_ip6_input(struct pbuf *p, struct netif *inp)
{
  u8_t b[40 + 8 + 40 + 8];
  (void)inp;
  u16_t n = pbuf_copy_partial(p, b, sizeof(b), 0);
  if (n < sizeof(b) || (b[0] >> 4) != 6 || b[6] != 58 /* ICMPv6, no extension headers */)
    return 0;
  const u8_t *icmp = b + 40;
  int err = 0;
  if (icmp[0] == 1) {            /* destination unreachable */
    switch (icmp[1]) {
    case 0: err = ENETUNREACH; break;
    case 1: case 5: case 6: err = EACCES; break;
    case 3: err = EHOSTUNREACH; break;
    case 4: err = ECONNREFUSED; break;
    default: return 0;
    }
  } else if (icmp[0] != 2) {     /* nor packet too big */
    return 0;
  }
  /* the quoted segment: ours, from src to dst */
  const u8_t *in = icmp + 8;
  if ((in[0] >> 4) != 6 || in[6] != 6 /* TCP */)
    return 0;
  const u8_t *th = in + 40;
  ip_addr_t src, dst;
  memset(&src, 0, sizeof(src));
  memset(&dst, 0, sizeof(dst));
  IP_SET_TYPE_VAL(src, IPADDR_TYPE_V6);
  IP_SET_TYPE_VAL(dst, IPADDR_TYPE_V6);
  memcpy(ip_2_ip6(&src)->addr, in + 8, 16);
  memcpy(ip_2_ip6(&dst)->addr, in + 24, 16);
  u16_t sport = (u16_t)(th[0] << 8 | th[1]), dport = (u16_t)(th[2] << 8 | th[3]);
  u32_t seq = (u32_t)th[4] << 24 | (u32_t)th[5] << 16 | (u32_t)th[6] << 8 | th[7];
  if (err)
    unreach_match(&src, &dst, sport, dport, seq, err);
  else
    pmtu_match(&src, &dst, sport, dport, seq,
               (u32_t)icmp[4] << 24 | (u32_t)icmp[5] << 16 | (u32_t)icmp[6] << 8 | icmp[7]);
  return 0;
}
