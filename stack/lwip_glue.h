/*
 * stack/lwip_glue.h — what tund needs from the lwIP hook layer.
 */
#ifndef ENOSHIM_LWIP_GLUE_H
#define ENOSHIM_LWIP_GLUE_H

#include <stdint.h>

struct tcp_pcb;

/* Call once after lwip_init(): ISN secret, ext-arg slot. */
int glue_init(void);

/* Called when an ICMP error says a connection attempt (pcb in SYN_SENT) cannot
 * succeed; err is the errno Linux would report.  The callee may abort pcb. */
extern void (*glue_on_unreachable)(struct tcp_pcb *pcb, int err);

#endif
