/*
 * common/ctlreq.c — the shape of tund's control requests (enoshim/ctlreq.h):
 * exact payload sizes, the descriptors each type carries, the fields whose
 * range decides the shape.  Pure: no I/O, no allocation.
 */
#include <string.h>

#include "enoshim/ctlreq.h"

/* exactly plen payload bytes and nfds descriptors */
static int shape(const struct enoipc_msg *m, size_t plen, int nfds)
{
  return m->plen == plen && m->nfds == nfds ? 0 : -1;
}

/* a fixed-size payload, copied out */
static int fixed(const struct enoipc_msg *m, void *out, size_t n)
{
  if (shape(m, n, 0))
    return -1;
  memcpy(out, m->payload, n);
  return 0;
}

int ctl_req_parse(const struct enoipc_msg *m, struct ctl_req *r)
{
  memset(r, 0, sizeof(*r));
  r->type = m->hdr.type;
  r->seq = m->hdr.seq;
  r->sock = m->hdr.sock;
  r->fd = -1;
  if (m->nfds < 0 || m->nfds > (int)ENOIPC_MAX_FDS || m->plen > ENOIPC_MAX_MSG ||
      (m->plen && !m->payload))
    return -1;

  switch (m->hdr.type) {
  case ENOIPC_HELLO:
    return fixed(m, &r->u.hello, sizeof(r->u.hello));
  case ENOIPC_SOCKET:
    return fixed(m, &r->u.socket, sizeof(r->u.socket));
  case ENOIPC_BIND:
    return fixed(m, &r->u.bind, sizeof(r->u.bind));
  case ENOIPC_LISTEN:
    /* the kernel listener comes along exactly when has_kernel_fd says so */
    if (m->plen != sizeof(r->u.listen))
      return -1;
    memcpy(&r->u.listen, m->payload, sizeof(r->u.listen));
    if ((r->u.listen.has_kernel_fd ? 1 : 0) != m->nfds)
      return -1;
    r->fd = m->nfds ? m->fds[0] : -1;
    return 0;
  case ENOIPC_CONNECT:
  case ENOIPC_CONNECT_POSTED:
    return fixed(m, &r->u.addr, sizeof(r->u.addr));
  case ENOIPC_STATUS:
  case ENOIPC_CLOSED:
    return shape(m, 0, 0);
  case ENOIPC_SETOPT:
  case ENOIPC_SETOPT_POSTED:
    /* the header, then exactly the value it announces (at most OPT_MAX) */
    if (m->nfds || m->plen < sizeof(r->u.opt.hdr))
      return -1;
    memcpy(&r->u.opt.hdr, m->payload, sizeof(r->u.opt.hdr));
    if (r->u.opt.hdr.len > ENOIPC_OPT_MAX || m->plen != sizeof(r->u.opt.hdr) + r->u.opt.hdr.len)
      return -1;
    r->u.opt.val = m->payload + sizeof(r->u.opt.hdr);
    return 0;
  case ENOIPC_GETOPT:
    return fixed(m, &r->u.opt.hdr, sizeof(r->u.opt.hdr));
  case ENOIPC_SHUTDOWN:
    return fixed(m, &r->u.how, sizeof(r->u.how));
  case ENOIPC_ATTACH:
    if (shape(m, 0, 1))
      return -1;
    r->fd = m->fds[0];
    return 0;
  case ENOIPC_KICK:
    if (fixed(m, &r->u.kick, sizeof(r->u.kick)))
      return -1;
    return r->u.kick == ENOIPC_KICK_WAKE || r->u.kick == ENOIPC_KICK_REARM ? 0 : -1;
  case ENOIPC_COMMAND:
    return fixed(m, &r->u.command, sizeof(r->u.command));
  case ENOIPC_FORKED:
    /* the ids of the sockets a child is about to inherit: whole ids only */
    if (m->nfds || m->plen % sizeof(uint64_t))
      return -1;
    r->u.forked.ids = m->payload;
    r->u.forked.n = (uint32_t)(m->plen / sizeof(uint64_t));
    return 0;
  case ENOIPC_RELISTEN: {
    /* the settings, then exactly n_opts options (each its header and the
     * value it announces, at most OPT_MAX), then nothing; three descriptors,
     * a fourth exactly when has_kernel_fd says so */
    struct enoipc_relisten *h = &r->u.relisten.hdr;
    if (m->plen < sizeof(*h))
      return -1;
    memcpy(h, m->payload, sizeof(*h));
    if (h->has_kernel_fd > 1 || m->nfds != 3 + h->has_kernel_fd || h->n_opts > ENOIPC_MAX_MSG / sizeof(struct enoipc_opt))
      return -1;
    size_t off = sizeof(*h);
    for (uint32_t i = 0; i < h->n_opts; i++) {
      struct enoipc_opt o;
      if (m->plen - off < sizeof(o))
        return -1;
      memcpy(&o, m->payload + off, sizeof(o));
      off += sizeof(o);
      if (o.len > ENOIPC_OPT_MAX || m->plen - off < o.len)
        return -1;
      off += o.len;
    }
    if (off != m->plen)
      return -1;
    r->u.relisten.opts = m->payload + sizeof(*h);
    r->u.relisten.opts_len = (uint32_t)(m->plen - sizeof(*h));
    r->u.relisten.pfd = m->fds[0];
    r->u.relisten.tfd = m->fds[1];
    r->u.relisten.memfd = m->fds[2];
    r->u.relisten.kfd = h->has_kernel_fd ? m->fds[3] : -1;
    return 0;
  }
  default:
    return -1;
  }
}

uint64_t ctl_req_forked_id(const struct ctl_req *r, uint32_t i)
{
  uint64_t id;
  memcpy(&id, r->u.forked.ids + (size_t)i * sizeof(id), sizeof(id));
  return id;
}
