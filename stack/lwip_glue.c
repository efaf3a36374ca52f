/*
 * stack/lwip_glue.c — lwIP hooks: RFC 6528 initial sequence numbers, and the
 * TCP option hooks through which ENO (RFC 8547) runs.  See
 * stack/lwip/enoshim_lwip_hooks.h for the traps of lwIP 2.1.3 these follow.
 */
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
