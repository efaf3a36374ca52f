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
#include "lwip/prot/tcp.h"
#include "lwip/pbuf.h"
#include "lwip/netif.h"
#include "enoshim_lwip_hooks.h"
#include "lwip_glue.h"

static uint8_t isn_key[crypto_shorthash_KEYBYTES];

int glue_init(void)
{
  if (sodium_init() < 0)
    return -1;
  randombytes_buf(isn_key, sizeof(isn_key));
  return 0;
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

err_t enoshim_hook_tcp_inpkt(struct tcp_pcb *pcb, struct tcp_hdr *hdr, u16_t optlen,
                             u16_t opt1len, u8_t *opt2, struct pbuf *p)
{
  (void)pcb; (void)hdr; (void)optlen; (void)opt1len; (void)opt2; (void)p;
  return ERR_OK;
}

u8_t enoshim_hook_tcp_optlen(const struct tcp_pcb *pcb, u8_t internal_len)
{
  (void)pcb;
  return internal_len;
}

u32_t *enoshim_hook_tcp_addopts(struct pbuf *p, struct tcp_hdr *hdr, const struct tcp_pcb *pcb,
                                u32_t *opts)
{
  (void)p; (void)hdr; (void)pcb;
  return opts;
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
  if (icmp[0] != 1 /* destination unreachable */)
    return 0;
  int err;
  switch (icmp[1]) {
  case 0: err = ENETUNREACH; break;
  case 1: case 5: case 6: err = EACCES; break;
  case 3: err = EHOSTUNREACH; break;
  case 4: err = ECONNREFUSED; break;
  default: return 0;
  }
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
  unreach_match(&src, &dst, (u16_t)(th[0] << 8 | th[1]), (u16_t)(th[2] << 8 | th[3]),
                (u32_t)th[4] << 24 | (u32_t)th[5] << 16 | (u32_t)th[6] << 8 | th[7], err);
  return 0;
}
