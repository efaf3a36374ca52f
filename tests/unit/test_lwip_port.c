/*
 * test_lwip_port — lwIP's ephemeral ports, whatever port lwIP starts from.
 *
 * tcp_init() starts the counter at TCP_ENSURE_LOCAL_PORT_RANGE(LWIP_RAND()),
 * 0xc000..0xffff.  Started at 0xffff, unpatched 2.1.3 wrapped the counter
 * to 0 on the first tcp_new_port(): the first connect failed (ERR_BUF, which
 * tund reports as EADDRNOTAVAIL) and the next ports counted up from 1
 * (stack/lwip/patches/0005).  Each Test runs in its own process (Criterion),
 * so each starts lwIP afresh from the start value it sets.
 *
 * Linked with lwIP alone: the hooks tund adds (stack/) are stubbed here.
 */
#include <criterion/criterion.h>

#include "lwip/init.h"
#include "lwip/ip.h"
#include "lwip/netif.h"
#include "lwip/tcp.h"
#include "lwip/timeouts.h"

#include "enoshim_lwip_hooks.h"

static uint32_t start_value;

uint32_t enoshim_lwip_rand(void) { return start_value; }
u32_t sys_now(void) { return 0; }
void enoshim_lwip_assert(const char *msg, const char *file, int line)
{
  cr_assert_fail("lwIP assertion \"%s\" at %s:%d", msg, file, line);
}
u32_t enoshim_hook_tcp_isn(const ip_addr_t *lip, u16_t lport, const ip_addr_t *rip, u16_t rport)
{
  (void)lip; (void)lport; (void)rip; (void)rport;
  return 0x12345678;
}
err_t enoshim_hook_tcp_inpkt(struct tcp_pcb *pcb, struct tcp_hdr *hdr, u16_t optlen, u16_t opt1len, u8_t *opt2,
                             struct pbuf *p)
{
  (void)pcb; (void)hdr; (void)optlen; (void)opt1len; (void)opt2; (void)p;
  return ERR_OK;
}
u8_t enoshim_hook_tcp_optlen(const struct tcp_pcb *pcb, u8_t internal_len) { (void)pcb; return internal_len; }
u32_t *enoshim_hook_tcp_addopts(struct pbuf *p, struct tcp_hdr *hdr, const struct tcp_pcb *pcb, u32_t *opts)
{
  (void)p; (void)hdr; (void)pcb;
  return opts;
}
int enoshim_hook_ip4_input(struct pbuf *p, struct netif *inp) { (void)p; (void)inp; return 0; }
int enoshim_hook_ip6_input(struct pbuf *p, struct netif *inp) { (void)p; (void)inp; return 0; }
void enoshim_hook_tcp_output_batch(int begin) { (void)begin; }

static unsigned sent;
static err_t out4(struct netif *n, struct pbuf *p, const ip4_addr_t *a)
{
  (void)n; (void)p; (void)a;
  sent++;
  return ERR_OK;
}
static err_t nif_init(struct netif *n)
{
  n->output = out4;
  n->mtu = 1500;
  return ERR_OK;
}

/* lwIP up from start value v, then n connects: each must succeed with a
 * distinct port in the ephemeral range (RANGE_END itself is never given) */
static void connects_from(uint32_t v, int n)
{
  static struct netif nif;
  ip4_addr_t a, m, g;
  start_value = v;
  lwip_init();
  IP4_ADDR(&a, 10, 9, 0, 2);
  IP4_ADDR(&m, 255, 255, 255, 0);
  IP4_ADDR(&g, 10, 9, 0, 1);
  cr_assert(netif_add(&nif, &a, &m, &g, NULL, nif_init, ip_input) != NULL, "netif_add");
  netif_set_default(&nif);
  netif_set_link_up(&nif);
  netif_set_up(&nif);
  u16_t seen[8] = { 0 };
  for (int i = 0; i < n; i++) {
    struct tcp_pcb *pcb = tcp_new_ip_type(IPADDR_TYPE_V4);
    cr_assert(pcb != NULL, "tcp_new");
    ip_addr_t dst;
    IP_ADDR4(&dst, 10, 9, 0, 1);
    err_t e = tcp_connect(pcb, &dst, 80, NULL);
    cr_assert_eq(e, ERR_OK, "start 0x%x, connect %d: err %d", (unsigned)v, i, (int)e);
    cr_assert(pcb->local_port >= 0xc000 && pcb->local_port < 0xffff,
              "start 0x%x, connect %d: local port %u outside 49152..65534", (unsigned)v, i, pcb->local_port);
    for (int j = 0; j < i; j++)
      cr_assert_neq(seen[j], pcb->local_port, "start 0x%x: port %u given twice", (unsigned)v, pcb->local_port);
    seen[i] = pcb->local_port;
  }
  cr_assert_eq(sent, (unsigned)n, "one SYN per connect");
}

Test(lwip_port, start_at_range_end) { connects_from(0x3fff, 4); }          /* 0xffff */
Test(lwip_port, start_at_range_end_high_bits) { connects_from(0xffffffffu, 4); }
Test(lwip_port, start_below_range_end) { connects_from(0x3ffe, 4); }       /* 0xfffe: wraps */
Test(lwip_port, start_at_range_start) { connects_from(0, 4); }             /* 0xc000 */
Test(lwip_port, start_in_range) { connects_from(0x1234, 4); }
