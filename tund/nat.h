/*
 * tund/nat.h — real hosts: how lwIP's private addresses reach other machines.
 *
 * lwIP's addresses (10.77.0.2, fd7e:e0::2 by default) are private to this
 * host; peers know it only by its real addresses.  So the host carries
 * lwIP's traffic the way container runtimes carry a container's (Docker and
 * Podman published ports):
 *   - outbound: lwIP's source addresses are masqueraded out of every
 *     interface but the TUN;
 *   - inbound: TCP ports that programs under enoshim listen on are
 *     "published": a SYN for one of the host's own addresses and such a port,
 *     arriving from the network, is steered into lwIP (DNAT), so ENO peers get
 *     tcpcrypt and legacy peers lwIP's plain fallback, while every other port
 *     stays the kernel's;
 *   - forwarding is switched on only on the interfaces that need it, and a
 *     guard drops any forwarded packet that does not belong to an enoshim
 *     TUN, so the host does not become a router for anything else.
 *
 * All of it lives in nftables: tund's own table "inet enoshim-<tun>" and a
 * table "inet enoshim" that every tund of the host shares (the guard, and
 * which interfaces' forwarding enoshim switched on, so that the last tund
 * to leave restores them).  The set of published ports changes at run time,
 * so the part that edits it keeps CAP_NET_ADMIN: a separate small process
 * (tund/nathelper.c, privilege separation as in OpenSSH's monitor or
 * OpenBSD's privsep daemons) forked before tund drops every capability.  It
 * speaks the fixed-size protocol below with tund and nothing else; it makes
 * the rules at start and removes them when tund's end of the socketpair
 * closes (exit, crash, kill -9).
 */
#ifndef TUND_NAT_H
#define TUND_NAT_H

#include <stddef.h>
#include <stdint.h>

/* ---- the helper's protocol (one SOCK_SEQPACKET message each way) ----------- */
#define NATP_MAGIC   0x454e4e41u      /* "ENNA" */
#define NATP_REQ_LEN 32
#define NATP_REP_LEN 36

enum natp_op {
  NATP_PUBLISH = 1,       /* add TCP port `port` to the published set */
  NATP_UNPUBLISH = 2,     /* remove it */
  NATP_ORIGDST = 3,       /* the address a peer dialed: the DNAT'd flow from
                           * raddr:rport to lwIP's port `port` */
};

/* Wire layout (host byte order: both ends are one machine):
 *   u32 magic | u32 seq | u8 op | u8 proto (6) | u8 family (0, or 4 / 6 for
 *   ORIGDST) | u8 zero | u16 port | u16 rport | u8 raddr[16]
 * PUBLISH/UNPUBLISH: family, rport and raddr zero; port 1..65535.
 * ORIGDST: family 4 (raddr[0..3], the rest zero) or 6; port, rport nonzero. */
struct natp_req {
  uint32_t seq;
  uint8_t op;
  uint8_t family;         /* 4 or 6 (ORIGDST only) */
  uint16_t port;
  uint16_t rport;
  uint8_t raddr[16];
};

/* Reply: u32 magic | u32 seq | i32 err (0 or an errno) | u8 family | u8 zero
 * | u16 port | u8 addr[16] | u32 zero.  ORIGDST fills family/port/addr. */
struct natp_rep {
  uint32_t seq;
  int32_t err;
  uint8_t family;
  uint16_t port;
  uint8_t addr[16];
};

/* 0, or -1: malformed (wrong size, magic, op, protocol, range, nonzero
 * padding).  Pure: no I/O, fuzzed (fuzz/fuzz_natp.c). */
int natp_req_parse(const uint8_t *buf, size_t len, struct natp_req *out);
void natp_req_encode(const struct natp_req *rq, uint8_t out[NATP_REQ_LEN]);
int natp_rep_parse(const uint8_t *buf, size_t len, struct natp_rep *out);
void natp_rep_encode(const struct natp_rep *rp, uint8_t out[NATP_REP_LEN]);

/* ---- tund's side (tund/nat.c) --------------------------------------------- */
struct tund_config;
/* Before the privilege drop: start the helper, which sets up the host.
 * Never fatal: when the host cannot be set up, one line says what is missing
 * and what still works, and tund runs without it. */
void nat_start(const struct tund_config *c);
int  nat_active(void);
/* A program listens on / stops listening on TCP port `port` (refcounted). */
void nat_publish(uint16_t port);
void nat_unpublish(uint16_t port);
/* The address the peer raddr:rport dialed to reach lwIP's port `port`, if
 * the flow was steered in by a published port: 0 and *family (4/6), addr.
 * Otherwise an errno (the caller keeps lwIP's address). */
int  nat_origdst(int family, const uint8_t raddr[16], uint16_t rport, uint16_t port, uint8_t addr[16]);
/* At exit: close the helper's socket and wait (bounded) until it restored the
 * host. */
void nat_stop(void);

/* ---- the helper (tund/nathelper.c, its own executable tund-nat) ------------- */
#include <net/if.h>
#include <netinet/in.h>
struct nat_params {
  char tun_name[IFNAMSIZ];
  struct in_addr lwip4;
  int have_v6;
  struct in6_addr lwip6;
};
/* tund-nat --tun NAME --lwip4 ADDR --lwip6 ADDR|none: each exactly once,
 * nothing else.  0 or -1.  Pure (tests/unit/test_natproto.c). */
int natp_args_parse(int argc, char **argv, struct nat_params *out);

#endif
