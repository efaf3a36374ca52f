/*
 * enoshim/ctlreq.h — tund's control requests, parsed (common/ctlreq.c).
 *
 * ctl_req_parse() is the whole of what tund believes about a request's
 * shape before it acts on it: the type is a request type, the payload has
 * exactly the size that type has (or, for SETOPT and FORKED, a size that
 * its own fields determine), and exactly the descriptors that type carries
 * came with it.  It reads only the message (no descriptor is touched, no
 * state of tund is consulted), so a fuzz target (fuzz/fuzz_ctlreq.c) and the
 * unit tests run it alone.  What the fields mean (a known socket id, a valid
 * address family) is for the handlers in tund/client.c and request.c.
 */
#ifndef ENOSHIM_CTLREQ_H
#define ENOSHIM_CTLREQ_H

#include <stdint.h>

#include "enoshim/ipc.h"

struct ctl_req {
  uint16_t type;             /* enum enoipc_type, a request */
  uint32_t seq;
  uint64_t sock;             /* the header's socket id */
  int fd;                    /* ATTACH: the pair end; LISTEN: the kernel listener; else -1
                                (still owned by the message) */
  union {
    struct enoipc_hello hello;           /* HELLO */
    struct enoipc_socket socket;         /* SOCKET */
    struct enoipc_bind bind;             /* BIND */
    struct enoipc_listen listen;         /* LISTEN */
    struct enoipc_addr addr;             /* CONNECT, CONNECT_POSTED */
    struct {
      struct enoipc_opt hdr;             /* SETOPT, SETOPT_POSTED, GETOPT */
      const uint8_t *val;                /* SETOPT*: hdr.len bytes in the message */
    } opt;
    int32_t how;                         /* SHUTDOWN */
    uint32_t kick;                       /* KICK: ENOIPC_KICK_WAKE or _REARM */
    struct enoipc_command command;       /* COMMAND */
    struct {
      const uint8_t *ids;                /* FORKED: n socket ids, 8 bytes each, unaligned */
      uint32_t n;
    } forked;
    struct {
      struct enoipc_relisten hdr;        /* RELISTEN */
      const uint8_t *opts;               /* hdr.n_opts times enoipc_opt + value, in the message */
      uint32_t opts_len;
      int pfd, tfd, memfd, kfd;          /* the program's end, tund's end, the memfd, the kernel
                                            listener or -1 (still owned by the message) */
    } relisten;
  } u;
};

/* 0, or -1 when the message is malformed (tund drops the client). */
int ctl_req_parse(const struct enoipc_msg *m, struct ctl_req *r);

/* FORKED: the i-th id (i < r->u.forked.n) */
uint64_t ctl_req_forked_id(const struct ctl_req *r, uint32_t i);

#endif
