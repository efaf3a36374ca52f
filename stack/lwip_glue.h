/*
 * stack/lwip_glue.h — what tund needs from the lwIP hook layer.
 */
#ifndef ENOSHIM_LWIP_GLUE_H
#define ENOSHIM_LWIP_GLUE_H

#include <stdint.h>

#include "eno.h"

struct tcp_pcb;

/* Call once after lwip_init(): ISN secret, ext-arg slot. */
int glue_init(void);

/* Keep at most `max` connections in TIME-WAIT (0: no limit), freeing the
 * oldest beyond it every 250 ms — as Linux's tcp_max_tw_buckets.  lwIP looks
 * pcbs up by walking lists, and lwIP ports are taken per port, not per
 * 4-tuple: two minutes of TIME-WAIT after a burst of short connections would
 * make every SYN walk tens of thousands of pcbs and could use up all 16384
 * ephemeral ports. */
void glue_set_time_wait_max(unsigned max);

/* Connections freed early from TIME-WAIT so far. */
uint64_t glue_time_wait_trimmed(void);
int glue_check_ports(char *out, size_t outlen);

/* ---- ENO on lwIP pcbs -------------------------------------------------------
 * Each pcb that speaks ENO carries a struct glue_pcb in its ext-arg slot; the
 * hooks drive its struct eno_conn.  The hooks never change lwIP state: what a
 * connection must do (start the TEP, fall back, abort) is read by tund from
 * glue_eno() when lwIP reports the connection established. */
struct glue_pcb {
  struct eno_conn eno;
  struct eno_config cfg;       /* this connection's settings (ops_ctx = ctx) */
  void *ctx;                   /* the TEP's per-connection context (tund) */
  uint8_t syn_len;             /* option bytes reserved in our SYN (fixed) */
  uint8_t nonsyn_len;          /* option bytes reserved in non-SYN segments */
  uint8_t syn_len_set;
  uint8_t drop_syn_after;      /* drop ENO from SYN retransmission n (0 = never) */
  uint8_t syn_had_data;        /* passive: the SYN carried data (§4.7: dropped) */
  uint8_t admitted;            /* passive: admit() said yes, not yet redeemed */
  enum eno_action last;        /* last action the hooks saw (ABORT sticks) */
};

/* tund's side: build a passive connection's settings when a SYN arrives on a
 * listener (listener_arg = what glue_eno_listen got).  Fill cfg (a copy of the
 * listener's, ops_ctx included) and optionally *ctx (freed with ctx_free). */
struct glue_eno_ops {
  void (*passive_config)(void *listener_arg, struct tcp_pcb *npcb,
                         struct eno_config *cfg, void **ctx);
  void (*ctx_free)(void *ctx);
  /* 0: drop this SYN silently (the listener's queue is full; the peer
   * retransmits).  Optional. */
  int (*admit)(void *listener_arg);
  /* An admitted half-open connection died before tund redeemed its
   * admission (glue_admission_redeem).  Optional. */
  void (*admit_release)(void);
};
extern const struct glue_eno_ops *glue_eno_ops;

/* Active opener: before tcp_connect().  0 or -1 (out of memory). */
int glue_eno_connect(struct tcp_pcb *pcb, const struct eno_config *cfg, void *ctx,
                     int drop_syn_after);
/* Listener: after tcp_listen() (the ext args of a pcb are copied by
 * tcp_listen() and would be freed with the old pcb). */
int glue_eno_listen(struct tcp_pcb *lpcb, void *listener_arg);
/* On lwIP's accept callback: 1 if admit() admitted npcb's SYN (the caller
 * now owns what it promised then; admit_release will not be called). */
int glue_admission_redeem(struct tcp_pcb *npcb);
/* The pcb's ENO state, or NULL (no ENO configured). */
struct glue_pcb *glue_eno(const struct tcp_pcb *pcb);

/* Called when an ICMP error says a connection attempt (pcb in SYN_SENT) cannot
 * succeed; err is the errno Linux would report.  The callee may abort pcb. */
extern void (*glue_on_unreachable)(struct tcp_pcb *pcb, int err);

/* Called when an ICMPv6 Packet Too Big quotes a segment of pcb's that is
 * in flight: mtu is the path's MTU the router announced (RFC 8201). */
extern void (*glue_on_pmtu)(struct tcp_pcb *pcb, u32_t mtu);

/* Called with 1 when tcp_output() starts and 0 when it returns
 * (LWIP_HOOK_TCP_OUTPUT_BATCH): the netif may hold the segments sent in
 * between and must have written them all by the time it returns from the 0
 * call.  NULL: no batching. */
extern void (*glue_output_batch)(int begin);

#endif
