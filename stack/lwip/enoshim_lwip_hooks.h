/*
 * enoshim_lwip_hooks.h — the lwIP TCP hooks through which ENO (RFC 8547) and
 * tcpcrypt (RFC 8548) attach to lwIP 2.1.3.  Included by lwIP's own tcp*.c
 * (LWIP_HOOK_FILENAME); implemented in stack/lwip_glue.c.
 *
 * Traps of 2.1.3 these hooks are written around (docs/DESIGN.md):
 *  - the option-length hook is called both when a segment is created and
 *    again when it is (re)transmitted, with the pcb only: the length must be
 *    a function of pcb state that cannot change while a segment that was
 *    sized with the old value is still queued;
 *  - header fields are already in host byte order inside the input hook;
 *  - the input hook must not change lwIP state, only ours.
 */
#ifndef ENOSHIM_LWIP_HOOKS_H
#define ENOSHIM_LWIP_HOOKS_H

#include "lwip/arch.h"
#include "lwip/err.h"
#include "lwip/ip_addr.h"

struct tcp_pcb;
struct tcp_hdr;
struct pbuf;
struct netif;

u32_t enoshim_hook_tcp_isn(const ip_addr_t *local_ip, u16_t local_port,
                           const ip_addr_t *remote_ip, u16_t remote_port);
err_t enoshim_hook_tcp_inpkt(struct tcp_pcb *pcb, struct tcp_hdr *hdr,
                             u16_t optlen, u16_t opt1len, u8_t *opt2,
                             struct pbuf *p);
u8_t enoshim_hook_tcp_optlen(const struct tcp_pcb *pcb, u8_t internal_len);
u32_t *enoshim_hook_tcp_addopts(struct pbuf *p, struct tcp_hdr *hdr,
                                const struct tcp_pcb *pcb, u32_t *opts);

int enoshim_hook_ip4_input(struct pbuf *p, struct netif *inp);
int enoshim_hook_ip6_input(struct pbuf *p, struct netif *inp);

/* ICMP "destination unreachable" for a connection attempt (lwIP ignores them):
 * fail the attempt at once, as Linux does (see lwip_glue.c). */
#define LWIP_HOOK_IP4_INPUT(p, inp) enoshim_hook_ip4_input((p), (inp))
#define LWIP_HOOK_IP6_INPUT(p, inp) enoshim_hook_ip6_input((p), (inp))

#define LWIP_HOOK_TCP_ISN(lip, lport, rip, rport) \
  enoshim_hook_tcp_isn((lip), (lport), (rip), (rport))
#define LWIP_HOOK_TCP_INPACKET_PCB(pcb, hdr, optlen, opt1len, opt2, p) \
  enoshim_hook_tcp_inpkt((pcb), (hdr), (optlen), (opt1len), (opt2), (p))
#define LWIP_HOOK_TCP_OUT_TCPOPT_LENGTH(pcb, internal_len) \
  enoshim_hook_tcp_optlen((pcb), (internal_len))
#define LWIP_HOOK_TCP_OUT_ADD_TCPOPTS(p, hdr, pcb, opts) \
  enoshim_hook_tcp_addopts((p), (hdr), (pcb), (opts))

/* tcp_output() calls this with 1 on entry and 0 on return (lwIP patch 0007):
 * the netif may hold the data segments of one call and write them to the
 * kernel as one TCP segmentation-offload packet (tund/tun.c). */
void enoshim_hook_tcp_output_batch(int begin);
#define LWIP_HOOK_TCP_OUTPUT_BATCH(begin) enoshim_hook_tcp_output_batch(begin)

#endif
