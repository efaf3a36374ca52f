/*
 * fuzz_ctlreq.c — libFuzzer target for tund's control-request parser, the
 * surface every local program (of every user, for a host-wide tund) reaches:
 * the framing of common/ipc.c (enoipc_recv) and the request shapes of
 * common/ctlreq.c (ctl_req_parse).
 *
 * FUZZ_SOURCES: common/ctlreq.c common/ipc.c
 * FUZZ_LIBS:
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -Iinclude \
 *         fuzz/fuzz_ctlreq.c common/ctlreq.c common/ipc.c -o build/fuzz/fuzz_ctlreq
 *
 * Input: byte 0 chooses how the rest is used, the rest is one datagram.
 *   bit 3 clear: the datagram is sent as one message on a SOCK_SEQPACKET
 *     pair, with (byte 0 & 7) descriptors attached (copies of /dev/null;
 *     5..7 are more than a message may carry), and read back by enoipc_recv
 *     as tund reads it.  Every descriptor received is closed again (the
 *     process must end each input with the descriptors it started with).
 *   bit 3 set: the datagram is taken as a message already received (the
 *     header's first 24 bytes, the rest as payload) with (byte 0 & 7)
 *     made-up descriptors, so that the parser sees counts and lengths
 *     enoipc_recv would not let through.
 * Whatever enoipc_recv accepts, and every message of the second kind, goes
 * to ctl_req_parse; its verdict is compared with an independent reading of
 * enoshim/ipc.h's rules (abort() on any difference), and what it accepts
 * must come back field for field from the message bytes.
 *
 * Seeds in fuzz/corpus/ctlreq/: a well-formed request of every type (sent
 * and direct), and near misses (one byte more or less, an fd more or less,
 * SETOPT lengths, LISTEN's declared fd, KICK kinds, FORKED with half an id,
 * RELISTEN's options and descriptors, replies and unknown types), made by
 * fuzz/mkcorpus_ctlreq.py.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "enoshim/ctlreq.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x) do { if (!(x)) abort(); } while (0)

static int pair[2] = { -1, -1 };
static int devnull = -1;

static void setup(void)
{
  if (pair[0] >= 0)
    return;
  CHECK(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) == 0);
  int big = 1 << 20;
  setsockopt(pair[0], SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
  CHECK(fcntl(pair[1], F_SETFL, O_NONBLOCK) == 0);
  devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
  CHECK(devnull >= 0);
}

/* enoshim/ipc.h, read independently: the payload size and fd count each
 * request type takes (-1: depends on the fields, handled below) */
static bool expected_ok(const struct enoipc_msg *m)
{
  size_t pl = m->plen;
  int nf = m->nfds;
  if (nf < 0 || nf > 4 || pl > ENOIPC_MAX_MSG || (pl && !m->payload))
    return false;
  switch (m->hdr.type) {
  case 1:  return pl == 8 && nf == 0;                   /* HELLO: version, pid */
  case 2:  return pl == 8 && nf == 0;                   /* SOCKET: domain, v6only */
  case 3:  return pl == 36 && nf == 0;                  /* BIND: addr(28), kernel_bound, pad */
  case 4: {                                             /* LISTEN: backlog, has_kernel_fd */
    if (pl != 8)
      return false;
    int32_t has;
    memcpy(&has, m->payload + 4, 4);
    return nf == (has != 0);
  }
  case 5:  return pl == 28 && nf == 0;                  /* CONNECT: addr */
  case 6:                                               /* SETOPT: level, name, len, value */
  case 14: {                                            /* SETOPT_POSTED */
    if (nf || pl < 12)
      return false;
    uint32_t len;
    memcpy(&len, m->payload + 8, 4);
    return len <= 256 && pl == 12 + (size_t)len;
  }
  case 7:  return pl == 12 && nf == 0;                  /* GETOPT */
  case 8:  return pl == 4 && nf == 0;                   /* SHUTDOWN */
  case 9:  return pl == 0 && nf == 1;                   /* ATTACH */
  case 10: {                                            /* KICK: 1 or 2 */
    if (pl != 4 || nf)
      return false;
    uint32_t k;
    memcpy(&k, m->payload, 4);
    return k == 1 || k == 2;
  }
  case 11: return pl == 0 && nf == 0;                   /* STATUS */
  case 12: return pl == 16 && nf == 0;                  /* COMMAND: cmd, pad, arg */
  case 13: return pl == 0 && nf == 0;                   /* CLOSED */
  case 15: return pl % 8 == 0 && nf == 0;               /* FORKED: ids */
  case 16: return pl == 28 && nf == 0;                  /* CONNECT_POSTED */
  /* 17, 18: retired (STANDBY_WANT, STANDBY_TAKE until ipc version 3): unknown */
  case 19: {                                            /* RELISTEN: 56 bytes of settings, */
    if (pl < 56)                                        /* n_opts at 52, has_kernel_fd at 38, */
      return false;                                     /* then the options, then nothing */
    uint8_t kfd = m->payload[38];
    uint32_t n;
    memcpy(&n, m->payload + 52, 4);
    if (kfd > 1 || nf != 3 + kfd || n > ENOIPC_MAX_MSG / 12)
      return false;
    size_t off = 56;
    for (uint32_t i = 0; i < n; i++) {
      uint32_t len;
      if (pl - off < 12)
        return false;
      memcpy(&len, m->payload + off + 8, 4);
      off += 12;
      if (len > 256 || pl - off < len)
        return false;
      off += len;
    }
    return off == pl;
  }
  default: return false;                                /* replies (100..102), unknown */
  }
}

/* what an accepted request carries, against the bytes it came from */
static void check_fields(const struct enoipc_msg *m, const struct ctl_req *r)
{
  CHECK(r->type == m->hdr.type && r->seq == m->hdr.seq && r->sock == m->hdr.sock);
  const void *u = &r->u;
  switch (m->hdr.type) {
  case 4:
    CHECK(!memcmp(u, m->payload, 8));
    CHECK(r->fd == (m->nfds ? m->fds[0] : -1));
    return;
  case 6:
  case 14:
    CHECK(!memcmp(&r->u.opt.hdr, m->payload, 12));
    CHECK(r->u.opt.val == m->payload + 12);
    CHECK(r->u.opt.val + r->u.opt.hdr.len == m->payload + m->plen);
    CHECK(r->fd == -1);
    return;
  case 9:
    CHECK(r->fd == m->fds[0]);
    return;
  case 19:
    CHECK(!memcmp(&r->u.relisten.hdr, m->payload, 56));
    CHECK(r->u.relisten.opts == m->payload + 56 && r->u.relisten.opts_len == m->plen - 56);
    CHECK(r->u.relisten.pfd == m->fds[0] && r->u.relisten.tfd == m->fds[1] && r->u.relisten.memfd == m->fds[2]);
    CHECK(r->u.relisten.kfd == (m->nfds == 4 ? m->fds[3] : -1));
    return;
  case 15:
    CHECK((size_t)r->u.forked.n * 8 == m->plen);
    for (uint32_t i = 0; i < r->u.forked.n; i++) {
      uint64_t id;
      memcpy(&id, m->payload + 8 * i, 8);
      CHECK(ctl_req_forked_id(r, i) == id);
    }
    CHECK(r->fd == -1);
    return;
  default:
    CHECK(m->plen <= sizeof(r->u));
    CHECK(!memcmp(u, m->payload, m->plen));
    CHECK(r->fd == -1);
    return;
  }
}

static void parse_and_check(const struct enoipc_msg *m)
{
  struct ctl_req r;
  int got = ctl_req_parse(m, &r);
  CHECK(got == 0 || got == -1);
  CHECK((got == 0) == expected_ok(m));
  if (got == 0)
    check_fields(m, &r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  static struct enoipc_msg m;
  if (size < 1)
    return 0;
  uint8_t mode = data[0];
  data++;
  size--;
  int nfds = mode & 7;

  if (mode & 8) {
    /* a message as received, lengths as they come */
    memset(&m, 0, sizeof(m));
    memcpy(&m.hdr, data, size < sizeof(m.hdr) ? size : sizeof(m.hdr));
    size_t pl = size > sizeof(m.hdr) ? size - sizeof(m.hdr) : 0;
    if (pl > sizeof(m.buf))
      pl = sizeof(m.buf);
    memcpy(m.buf, data + sizeof(m.hdr) * (size > sizeof(m.hdr)), pl);
    m.payload = m.buf;
    m.plen = pl;
    m.nfds = nfds;
    for (int i = 0; i < nfds && i < (int)ENOIPC_MAX_FDS; i++)
      m.fds[i] = 1000 + i;
    parse_and_check(&m);
    return 0;
  }

  /* through the socket, as tund reads it */
  setup();
  if (size > ENOIPC_MAX_MSG + 64)
    size = ENOIPC_MAX_MSG + 64;
  struct iovec iov = { .iov_base = (void *)data, .iov_len = size };
  union {
    struct cmsghdr align;
    char buf[CMSG_SPACE(sizeof(int) * 7)];
  } cb;
  struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
  int fds[7] = { devnull, devnull, devnull, devnull, devnull, devnull, devnull };
  if (nfds) {
    memset(&cb, 0, sizeof(cb));
    mh.msg_control = cb.buf;
    mh.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
    struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
    memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t)nfds);
  }
  if (sendmsg(pair[0], &mh, MSG_NOSIGNAL) < 0)
    return 0;                    /* an empty datagram without fds: nothing sent */
  int r = enoipc_recv_flags(pair[1], &m, MSG_DONTWAIT);
  CHECK(r != -EAGAIN);
  if (r == 1) {
    /* enoipc_recv's own promises: the header's length is the datagram's,
     * its fd count the fds that came */
    CHECK(m.hdr.len == size && size >= sizeof(m.hdr));
    CHECK(m.hdr.nfds == (uint16_t)m.nfds && m.nfds <= (int)ENOIPC_MAX_FDS);
    CHECK(m.plen == size - sizeof(m.hdr) && m.payload == m.buf + sizeof(m.hdr));
    parse_and_check(&m);
    enoipc_msg_close_fds(&m);
  } else {
    CHECK(r == 0 || r == -EPROTO);
    CHECK(m.nfds == 0);          /* fds of a refused message are closed */
  }
  /* nothing left behind for the next input */
  CHECK(enoipc_recv_flags(pair[1], &m, MSG_DONTWAIT) == -EAGAIN);
  return 0;
}
