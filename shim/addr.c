/*
 * shim/addr.c — socket addresses: the program's struct sockaddr to the
 * control messages' form and back from what tund published in the status
 * block (v4-mapped for AF_INET6 sockets), and getsockname()/getpeername().
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>

#include "shim.h"

/* A program's address -> a request's (the family must be the socket's). */
int sa_to_ipc(const struct sockaddr *sa, socklen_t len, int domain, struct enoipc_addr *out)
{
  memset(out, 0, sizeof(*out));
  if (!sa || len < sizeof(sa_family_t))
    return EINVAL;
  if (sa->sa_family == AF_INET) {
    if (len < sizeof(struct sockaddr_in))
      return EINVAL;
    if (domain != AF_INET)
      return EAFNOSUPPORT;
    const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
    out->family = AF_INET;
    out->port = ntohs(in->sin_port);
    memcpy(out->addr, &in->sin_addr, 4);
    return 0;
  }
  if (sa->sa_family == AF_INET6) {
    if (len < sizeof(struct sockaddr_in6))
      return EINVAL;
    if (domain != AF_INET6)
      return EAFNOSUPPORT;
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
    out->family = AF_INET6;
    out->port = ntohs(in6->sin6_port);
    out->scope_id = in6->sin6_scope_id;
    out->flowinfo = in6->sin6_flowinfo;
    memcpy(out->addr, &in6->sin6_addr, 16);
    return 0;
  }
  return EAFNOSUPPORT;
}

/* An address tund published -> the program's, v4-mapped on AF_INET6 sockets. */
socklen_t shm_to_sa(const struct enoshm_addr *a, int domain, struct sockaddr_storage *ss)
{
  memset(ss, 0, sizeof(*ss));
  if (domain == AF_INET) {
    struct sockaddr_in *in = (struct sockaddr_in *)ss;
    in->sin_family = AF_INET;
    in->sin_port = htons(a->port);
    if (a->family == AF_INET)
      memcpy(&in->sin_addr, a->addr, 4);
    return sizeof(*in);
  }
  struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
  in6->sin6_family = AF_INET6;
  in6->sin6_port = htons(a->port);
  if (a->family == AF_INET6) {
    memcpy(&in6->sin6_addr, a->addr, 16);
    in6->sin6_scope_id = a->scope_id;
  } else if (a->family == AF_INET) {
    in6->sin6_addr.s6_addr[10] = in6->sin6_addr.s6_addr[11] = 0xff;
    memcpy(&in6->sin6_addr.s6_addr[12], a->addr, 4);
  }
  return sizeof(*in6);
}

/* Into the caller's buffer, cut to its size; *len says the full size. */
void copy_out_addr(const struct sockaddr_storage *ss, socklen_t n, struct sockaddr *a, socklen_t *len)
{
  if (!a || !len)
    return;
  socklen_t k = *len < n ? *len : n;
  memcpy(a, ss, k);
  *len = n;
}

/* A GETOPT whose answer tund puts in the status block, read again after it */
static void status_refresh(struct shim_sock *s, int level, int name, uint32_t vlen, struct enoshm_status *st)
{
  struct enoipc_opt o = { .level = level, .name = name, .len = vlen };
  uint8_t buf[ENOIPC_OPT_MAX];
  size_t bl = sizeof(buf);
  int err;
  ctl_call(ENOIPC_GETOPT, s->id, &o, sizeof(o), NULL, 0, NULL, 0, &err, buf, &bl, NULL, NULL, NULL);
  enoshm_status_read(s->shm, st);
}

int sock_getname(struct shim_sock *s, int peer, struct sockaddr *a, socklen_t *len)
{
  struct enoshm_status st;
  struct sockaddr_storage ss;
  if (!len || (!a && *len)) {
    errno = EFAULT;
    return -1;
  }
  enoshm_status_read(s->shm, &st);
  if (!peer && s->connect_posted && st.state < ENOSHM_S_CONNECTING) {
    /* tund picks the local port when it takes the posted connect; any
     * request it answers is handled after that one (one ordered channel) */
    status_refresh(s, IPPROTO_TCP, TCP_MAXSEG, sizeof(int), &st);
  }
  if (!peer && (st.flags & ENOSHM_F_LOCAL_LAZY))
    /* accepted through a published port: tund asks conntrack for the
     * address the peer dialed only now (ipc.h ENOIPC_SO_DIALED) */
    status_refresh(s, SOL_SOCKET, ENOIPC_SO_DIALED, 0, &st);
  if (peer) {
    if (st.state != ENOSHM_S_ESTABLISHED && st.state != ENOSHM_S_CLOSED) {
      errno = ENOTCONN;
      return -1;
    }
    if (st.remote.family == 0) {
      errno = ENOTCONN;
      return -1;
    }
  }
  socklen_t n = shm_to_sa(peer ? &st.remote : &st.local, s->domain, &ss);
  copy_out_addr(&ss, n, a, len);
  return 0;
}
