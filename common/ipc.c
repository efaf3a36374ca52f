/*
 * common/ipc.c — send and receive enoshim control messages (enoshim/ipc.h).
 * Linked into both tund and libenoshim.so; uses only raw syscalls through
 * libc, which the shim never interposes for its own fds.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "enoshim/ipc.h"

int enoipc_send(int fd, uint16_t type, uint32_t seq, uint64_t sock,
                const void *p1, size_t n1, const void *p2, size_t n2,
                const int *fds, int nfds)
{
  return enoipc_send_flags(fd, type, seq, sock, p1, n1, p2, n2, fds, nfds, 0);
}

int enoipc_send_flags(int fd, uint16_t type, uint32_t seq, uint64_t sock,
                      const void *p1, size_t n1, const void *p2, size_t n2,
                      const int *fds, int nfds, int flags)
{
  struct enoipc_hdr h;
  struct iovec iov[3];
  struct msghdr mh;
  union {
    struct cmsghdr align;
    char buf[CMSG_SPACE(sizeof(int) * ENOIPC_MAX_FDS)];
  } cbuf;
  size_t total = sizeof(h) + n1 + n2;
  ssize_t n;

  if (total > ENOIPC_MAX_MSG || nfds < 0 || nfds > (int)ENOIPC_MAX_FDS)
    return -EMSGSIZE;
  memset(&h, 0, sizeof(h));
  h.len = (uint32_t)total;
  h.type = type;
  h.nfds = (uint16_t)nfds;
  h.seq = seq;
  h.sock = sock;

  iov[0].iov_base = &h;
  iov[0].iov_len = sizeof(h);
  iov[1].iov_base = (void *)p1;
  iov[1].iov_len = n1;
  iov[2].iov_base = (void *)p2;
  iov[2].iov_len = n2;
  memset(&mh, 0, sizeof(mh));
  mh.msg_iov = iov;
  mh.msg_iovlen = 3;
  if (nfds > 0) {
    struct cmsghdr *c;
    memset(&cbuf, 0, sizeof(cbuf));
    mh.msg_control = cbuf.buf;
    mh.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
    c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
    memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t)nfds);
  }
  do {
    n = sendmsg(fd, &mh, MSG_NOSIGNAL | flags);
  } while (n < 0 && errno == EINTR);
  if (n < 0)
    return -errno;
  if ((size_t)n != total)
    return -EPROTO;    /* SOCK_SEQPACKET: all or nothing */
  return 0;
}

void enoipc_msg_close_fds(struct enoipc_msg *msg)
{
  for (int i = 0; i < msg->nfds; i++)
    if (msg->fds[i] >= 0)
      close(msg->fds[i]);
  msg->nfds = 0;
}

int enoipc_recv(int fd, struct enoipc_msg *msg)
{
  return enoipc_recv_flags(fd, msg, 0);
}

int enoipc_recv_flags(int fd, struct enoipc_msg *msg, int flags)
{
  struct iovec iov;
  struct msghdr mh;
  union {
    struct cmsghdr align;
    /* room for more fds than allowed, so that excess is seen and closed */
    char buf[CMSG_SPACE(sizeof(int) * 16)];
  } cbuf;
  ssize_t n;
  int bad = 0;

  msg->nfds = 0;
  iov.iov_base = msg->buf;
  iov.iov_len = sizeof(msg->buf);
  memset(&mh, 0, sizeof(mh));
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  mh.msg_control = cbuf.buf;
  mh.msg_controllen = sizeof(cbuf.buf);
  do {
    n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC | flags);
  } while (n < 0 && errno == EINTR);
  if (n < 0)
    return -errno;

  /* Collect every fd first so that none leaks whatever else is wrong. */
  for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
      size_t cnt = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      int tmp[16];
      if (cnt > 16)
        cnt = 16;
      memcpy(tmp, CMSG_DATA(c), cnt * sizeof(int));
      for (size_t i = 0; i < cnt; i++) {
        if (msg->nfds < (int)ENOIPC_MAX_FDS)
          msg->fds[msg->nfds++] = tmp[i];
        else {
          close(tmp[i]);
          bad = 1;
        }
      }
    } else {
      bad = 1;   /* credentials or anything else are not part of the protocol */
    }
  }
  /* MSG_CTRUNC with room for 16 fds: the kernel could not install the
   * declared ones (the receiver's RLIMIT_NOFILE, EMFILE; it closed those it
   * could not give us).  The message itself is intact: say so apart. */
  int ctrunc = (mh.msg_flags & MSG_CTRUNC) != 0;
  if (mh.msg_flags & MSG_TRUNC)
    bad = 1;
  if (n == 0 && msg->nfds == 0 && !ctrunc)
    return 0;
  if (!bad && (size_t)n < sizeof(struct enoipc_hdr))
    bad = 1;
  if (!bad) {
    memcpy(&msg->hdr, msg->buf, sizeof(msg->hdr));
    if (msg->hdr.len != (uint32_t)n)
      bad = 1;
    else if (ctrunc ? msg->hdr.nfds <= (uint16_t)msg->nfds || msg->hdr.nfds > ENOIPC_MAX_FDS
                    : msg->hdr.nfds != (uint16_t)msg->nfds)
      bad = 1;
  }
  if (bad || ctrunc)
    enoipc_msg_close_fds(msg);
  if (bad)
    return -EPROTO;
  msg->payload = msg->buf + sizeof(struct enoipc_hdr);
  msg->plen = (size_t)n - sizeof(struct enoipc_hdr);
  return ctrunc ? -EMFILE : 1;
}

int enoipc_rd_bytes(struct enoipc_rd *r, void *out, size_t n)
{
  if (r->bad || (size_t)(r->end - r->p) < n) {
    r->bad = 1;
    return -1;
  }
  memcpy(out, r->p, n);
  r->p += n;
  return 0;
}

const uint8_t *enoipc_rd_view(struct enoipc_rd *r, size_t n)
{
  const uint8_t *v;
  if (r->bad || (size_t)(r->end - r->p) < n) {
    r->bad = 1;
    return NULL;
  }
  v = r->p;
  r->p += n;
  return v;
}

int enoipc_rd_end(const struct enoipc_rd *r)
{
  return !r->bad && r->p == r->end;
}
