/*
 * test_ipc.c — control-message framing (include/enoshim/ipc.h, common/ipc.c)
 * over a real socketpair(AF_UNIX, SOCK_SEQPACKET), as tund and the shim use
 * it.  Rules under test (ipc.h, STYLE.md 7): header `len` equals the datagram
 * length; the header's nfds equals the fds attached; at most ENOIPC_MAX_FDS
 * fds; no other control message; a malformed message gives -EPROTO and every
 * fd that came with it is closed (no leak on any path).
 *
 * Leaks are checked two ways: the number of entries in /proc/self/fd, and for
 * pipes, that the read end sees EOF once the test closed its own write end
 * (so no copy survives anywhere in the process).
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "enoshim/ipc.h"

/* ---- helpers ---------------------------------------------------------------------------- */

static int open_fds(void)
{
  DIR *d = opendir("/proc/self/fd");
  int n = 0;
  cr_assert(d, "opendir /proc/self/fd");
  while (readdir(d))
    n++;
  closedir(d);
  return n;
}

static void pair(int sv[2])
{
  cr_assert_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0, "socketpair: %s",
               strerror(errno));
}

/* Any datagram with any fds and, optionally, extra raw control data. */
static ssize_t raw_send(int fd, const void *buf, size_t n, const int *fds, int nfds)
{
  struct iovec iov = { .iov_base = (void *)buf, .iov_len = n };
  struct msghdr mh;
  size_t clen = nfds > 0 ? CMSG_SPACE(sizeof(int) * (size_t)nfds) : 0;
  char *cbuf = clen ? calloc(1, clen) : NULL;
  memset(&mh, 0, sizeof(mh));
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  if (nfds > 0) {
    mh.msg_control = cbuf;
    mh.msg_controllen = clen;
    struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
    memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t)nfds);
  }
  ssize_t r = sendmsg(fd, &mh, MSG_NOSIGNAL);
  free(cbuf);
  return r;
}

/* A header followed by `plen` payload bytes, with the header fields given. */
static size_t build(uint8_t *buf, uint32_t len, uint16_t type, uint16_t nfds, uint32_t seq,
                    uint64_t sock, size_t plen)
{
  struct enoipc_hdr h = { .len = len, .type = type, .nfds = nfds, .seq = seq, .sock = sock };
  memcpy(buf, &h, sizeof(h));
  for (size_t i = 0; i < plen; i++)
    buf[sizeof(h) + i] = (uint8_t)(i * 7 + 1);
  return sizeof(h) + plen;
}

/* n pipes; the test keeps the read ends, the write ends are what travels. */
struct pipes {
  int n;
  int rd[64], wr[64];
};

static void pipes_open(struct pipes *p, int n)
{
  cr_assert(n <= 64);
  p->n = n;
  for (int i = 0; i < n; i++) {
    int fds[2];
    cr_assert_eq(pipe2(fds, O_CLOEXEC), 0);
    p->rd[i] = fds[0];
    p->wr[i] = fds[1];
  }
}

/* Close our write ends; every read end must then be at EOF: no copy of any
 * write end is left open in this process (the receiver closed all of them). */
static void pipes_expect_all_closed(struct pipes *p, const char *what)
{
  for (int i = 0; i < p->n; i++) {
    close(p->wr[i]);
    int fl = fcntl(p->rd[i], F_GETFL);
    fcntl(p->rd[i], F_SETFL, fl | O_NONBLOCK);
    char b;
    ssize_t r = read(p->rd[i], &b, 1);
    cr_assert_eq(r, 0, "%s: pipe %d still has a writer (read gave %zd, %s)", what, i, r,
                 r < 0 ? strerror(errno) : "data");
    close(p->rd[i]);
  }
}

static int same_file(int a, int b)
{
  struct stat sa, sb;
  if (fstat(a, &sa) || fstat(b, &sb))
    return 0;
  return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

/* ---- round trips ------------------------------------------------------------------------ */

Test(ipc, round_trip_no_fd)
{
  int sv[2];
  pair(sv);
  struct enoipc_hello h = { .version = ENOIPC_VERSION, .pid = 4242 };
  cr_assert_eq(enoipc_send(sv[0], ENOIPC_HELLO, 77, 0x1122334455667788ull, &h, sizeof(h), NULL, 0,
                           NULL, 0), 0);
  struct enoipc_msg *m = calloc(1, sizeof(*m));
  cr_assert_eq(enoipc_recv(sv[1], m), 1);
  cr_assert_eq(m->hdr.len, sizeof(struct enoipc_hdr) + sizeof(h));
  cr_assert_eq(m->hdr.type, ENOIPC_HELLO);
  cr_assert_eq(m->hdr.seq, 77);
  cr_assert_eq(m->hdr.sock, 0x1122334455667788ull);
  cr_assert_eq(m->hdr.nfds, 0);
  cr_assert_eq(m->hdr.flags, 0);
  cr_assert_eq(m->nfds, 0);
  cr_assert_eq(m->plen, sizeof(h));
  cr_assert_eq(m->payload, m->buf + sizeof(struct enoipc_hdr));
  cr_assert(memcmp(m->payload, &h, sizeof(h)) == 0);
  free(m);
}

/* Payload given in two parts arrives as one, in order; an empty payload works. */
Test(ipc, two_part_payload_and_empty)
{
  int sv[2];
  pair(sv);
  struct enoipc_msg *m = calloc(1, sizeof(*m));
  const char a[] = "abc", b[] = "defgh";
  cr_assert_eq(enoipc_send(sv[0], ENOIPC_SETOPT, 1, 2, a, 3, b, 5, NULL, 0), 0);
  cr_assert_eq(enoipc_send(sv[0], ENOIPC_STATUS, 2, 0, NULL, 0, NULL, 0, NULL, 0), 0);
  cr_assert_eq(enoipc_send(sv[0], ENOIPC_STATUS, 3, 0, NULL, 0, b, 5, NULL, 0), 0);
  cr_assert_eq(enoipc_recv(sv[1], m), 1);
  cr_assert_eq(m->plen, 8);
  cr_assert(memcmp(m->payload, "abcdefgh", 8) == 0);
  cr_assert_eq(enoipc_recv(sv[1], m), 1);
  cr_assert_eq(m->hdr.seq, 2);
  cr_assert_eq(m->plen, 0);
  cr_assert_eq(m->hdr.len, sizeof(struct enoipc_hdr));
  cr_assert_eq(enoipc_recv(sv[1], m), 1);
  cr_assert_eq(m->hdr.seq, 3);
  cr_assert_eq(m->plen, 5);
  cr_assert(memcmp(m->payload, "defgh", 5) == 0);
  free(m);
}

static void fd_round_trip(int nfds)
{
  int sv[2];
  pair(sv);
  /* fd 0: a memfd with known contents; fd 1: a pipe's write end */
  int files[2];
  files[0] = memfd_create("ipc-test", MFD_CLOEXEC);
  cr_assert(files[0] >= 0);
  cr_assert_eq(write(files[0], "hello", 5), 5);
  int pp[2];
  cr_assert_eq(pipe2(pp, O_CLOEXEC), 0);
  files[1] = pp[1];
  int before = open_fds();

  uint32_t what = 9;
  cr_assert_eq(enoipc_send(sv[0], ENOIPC_SOCKET, 5, 6, &what, sizeof(what), NULL, 0, files, nfds), 0);
  struct enoipc_msg *m = calloc(1, sizeof(*m));
  cr_assert_eq(enoipc_recv(sv[1], m), 1);
  cr_assert_eq(m->nfds, nfds);
  cr_assert_eq(m->hdr.nfds, nfds);
  cr_assert_eq(open_fds(), before + nfds, "received fds are new entries");
  for (int i = 0; i < nfds; i++) {
    cr_assert_neq(m->fds[i], files[i], "a received fd is a new descriptor");
    cr_assert(same_file(m->fds[i], files[i]), "fd %d refers to the file that was sent", i);
    cr_assert(fcntl(m->fds[i], F_GETFD) & FD_CLOEXEC, "received fd %d is close-on-exec", i);
  }
  if (nfds >= 1) {
    /* the same open file description: the memfd's offset is shared */
    char buf[8] = { 0 };
    cr_assert_eq(pread(m->fds[0], buf, 5, 0), 5);
    cr_assert_str_eq(buf, "hello");
    cr_assert_eq(lseek(m->fds[0], 0, SEEK_CUR), 5, "offset shared with the sender's fd");
  }
  if (nfds >= 2) {
    cr_assert_eq(write(m->fds[1], "x", 1), 1);
    char c = 0;
    cr_assert_eq(read(pp[0], &c, 1), 1);
    cr_assert_eq(c, 'x');
  }
  enoipc_msg_close_fds(m);
  cr_assert_eq(m->nfds, 0);
  cr_assert_eq(open_fds(), before, "close_fds closed what the message owned");
  free(m);
}

Test(ipc, round_trip_one_fd) { fd_round_trip(1); }
Test(ipc, round_trip_two_fds) { fd_round_trip(2); }
Test(ipc, round_trip_zero_fds_counted) { fd_round_trip(0); }

/* The largest message: header + payload == ENOIPC_MAX_MSG, with two fds. */
Test(ipc, max_size_message)
{
  int sv[2];
  pair(sv);
  size_t plen = ENOIPC_MAX_MSG - sizeof(struct enoipc_hdr);
  uint8_t *p = malloc(plen);
  for (size_t i = 0; i < plen; i++)
    p[i] = (uint8_t)(i * 13);
  struct pipes pp;
  pipes_open(&pp, 2);
  cr_assert_eq(enoipc_send(sv[0], ENOIPC_RESULT, 1, 1, p, 100, p + 100, plen - 100, pp.wr, 2), 0);
  struct enoipc_msg *m = calloc(1, sizeof(*m));
  cr_assert_eq(enoipc_recv(sv[1], m), 1);
  cr_assert_eq(m->hdr.len, ENOIPC_MAX_MSG);
  cr_assert_eq(m->plen, plen);
  cr_assert(memcmp(m->payload, p, plen) == 0);
  cr_assert_eq(m->nfds, 2);
  enoipc_msg_close_fds(m);
  pipes_expect_all_closed(&pp, "max size");
  free(p);
  free(m);
}

/* ---- send-side limits -------------------------------------------------------------------- */

Test(ipc, send_refuses_oversize_and_bad_fd_counts)
{
  int sv[2];
  pair(sv);
  static uint8_t big[ENOIPC_MAX_MSG];
  size_t room = ENOIPC_MAX_MSG - sizeof(struct enoipc_hdr);
  int fds[ENOIPC_MAX_FDS + 1];
  for (int i = 0; i <= (int)ENOIPC_MAX_FDS; i++)
    fds[i] = i % 3;
  cr_assert_eq(enoipc_send(sv[0], 1, 0, 0, big, room + 1, NULL, 0, NULL, 0), -EMSGSIZE);
  cr_assert_eq(enoipc_send(sv[0], 1, 0, 0, big, room, big, 1, NULL, 0), -EMSGSIZE,
               "the two parts together are too big");
  cr_assert_eq(enoipc_send(sv[0], 1, 0, 0, big, 1, big, room, NULL, 0), -EMSGSIZE);
  /* n1 + n2 wrapping size_t: refused one way or another, never sent */
  cr_assert_lt(enoipc_send(sv[0], 1, 0, 0, big, SIZE_MAX - 10, big, 20, NULL, 0), 0);
  cr_assert_eq(enoipc_send(sv[0], 1, 0, 0, NULL, 0, NULL, 0, fds, ENOIPC_MAX_FDS + 1), -EMSGSIZE);
  cr_assert_eq(enoipc_send(sv[0], 1, 0, 0, NULL, 0, NULL, 0, fds, -1), -EMSGSIZE);
  /* nothing was sent by any of those */
  int fl = fcntl(sv[1], F_GETFL);
  fcntl(sv[1], F_SETFL, fl | O_NONBLOCK);
  struct enoipc_msg *m = calloc(1, sizeof(*m));
  cr_assert_eq(enoipc_recv(sv[1], m), -EAGAIN);
  /* the boundary itself is fine */
  cr_assert_eq(enoipc_send(sv[0], 1, 0, 0, big, room, NULL, 0, NULL, 0), 0);
  cr_assert_eq(enoipc_recv(sv[1], m), 1);
  free(m);
}

/* Bad fds on send fail the call (EBADF from the kernel), nothing is sent. */
Test(ipc, send_bad_fd)
{
  int sv[2];
  pair(sv);
  int bad[1] = { 999 };
  cr_assert_eq(enoipc_send(sv[0], 1, 0, 0, NULL, 0, NULL, 0, bad, 1), -EBADF);
}

Test(ipc, send_to_closed_peer_is_epipe_without_sigpipe)
{
  int sv[2];
  pair(sv);
  close(sv[1]);
  /* default SIGPIPE disposition: if enoipc_send raised it the test would die */
  signal(SIGPIPE, SIG_DFL);
  cr_assert_eq(enoipc_send(sv[0], 1, 0, 0, NULL, 0, NULL, 0, NULL, 0), -EPIPE);
}

Test(ipc, send_nonblocking_full_is_eagain)
{
  int sv[2];
  pair(sv);
  int fl = fcntl(sv[0], F_GETFL);
  fcntl(sv[0], F_SETFL, fl | O_NONBLOCK);
  static uint8_t p[1000];
  int r, n = 0;
  while ((r = enoipc_send(sv[0], 1, (uint32_t)n, 0, p, sizeof(p), NULL, 0, NULL, 0)) == 0)
    cr_assert(++n < 1000000);
  cr_assert_eq(r, -EAGAIN);
  cr_assert_gt(n, 0);
  /* and every message that was accepted arrives intact, in order */
  struct enoipc_msg *m = calloc(1, sizeof(*m));
  for (int i = 0; i < n; i++) {
    cr_assert_eq(enoipc_recv(sv[1], m), 1);
    cr_assert_eq(m->hdr.seq, (uint32_t)i);
    cr_assert_eq(m->plen, sizeof(p));
  }
  free(m);
}

/* ---- receive-side validation ------------------------------------------------------------- */

/* Send `n` raw bytes with `nfds` pipe write ends attached; expect -EPROTO,
 * no fd left behind, and the connection still usable for the next message. */
static void expect_rejected(const uint8_t *buf, size_t n, int nfds, const char *what)
{
  int sv[2];
  pair(sv);
  struct pipes pp;
  pipes_open(&pp, nfds);
  int before = open_fds();
  cr_assert_eq(raw_send(sv[0], buf, n, pp.wr, nfds), (ssize_t)n, "%s: raw send: %s", what,
               strerror(errno));
  struct enoipc_msg *m = calloc(1, sizeof(*m));
  int r = enoipc_recv(sv[1], m);
  cr_assert_eq(r, -EPROTO, "%s: enoipc_recv gave %d", what, r);
  cr_assert_eq(m->nfds, 0, "%s: a rejected message owns no fds", what);
  cr_assert_eq(open_fds(), before, "%s: fds leaked (%d -> %d)", what, before, open_fds());
  pipes_expect_all_closed(&pp, what);
  /* the next, good message is read whole */
  cr_assert_eq(enoipc_send(sv[0], ENOIPC_KICK, 31, 32, "abcd", 4, NULL, 0, NULL, 0), 0);
  cr_assert_eq(enoipc_recv(sv[1], m), 1, "%s: next message", what);
  cr_assert_eq(m->hdr.seq, 31);
  cr_assert_eq(m->plen, 4);
  free(m);
  close(sv[0]);
  close(sv[1]);
}

Test(ipc, truncated_shorter_than_header)
{
  uint8_t buf[64];
  build(buf, 23, ENOIPC_HELLO, 0, 1, 0, 0);
  for (size_t n = 1; n < sizeof(struct enoipc_hdr); n++) {
    char what[64];
    snprintf(what, sizeof(what), "%zu-byte datagram", n);
    /* len field set to what was sent, so only the size rule can reject it */
    uint32_t l = (uint32_t)n;
    memcpy(buf, &l, n < 4 ? n : 4);
    expect_rejected(buf, n, 0, what);
  }
  /* with fds attached (declared or not) */
  struct enoipc_hdr h = { .len = 10, .nfds = 1 };
  memcpy(buf, &h, sizeof(h));
  expect_rejected(buf, 10, 1, "short datagram with one fd");
  expect_rejected(buf, 10, 2, "short datagram with two fds");
}

Test(ipc, zero_length_datagram_with_fds)
{
  expect_rejected((const uint8_t *)"", 0, 1, "empty datagram with one fd");
  expect_rejected((const uint8_t *)"", 0, 2, "empty datagram with two fds");
}

Test(ipc, header_len_disagrees)
{
  uint8_t buf[256];
  static const struct { uint32_t len; size_t plen; } cases[] = {
    { 0, 8 }, { 23, 0 }, { 24 + 7, 8 }, { 24 + 9, 8 }, { 24 + 8 + 4096, 8 },
    { 0xffffffffu, 8 }, { 24, 8 }, { 24 + 8 + 0x10000u, 8 },
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    size_t n = build(buf, cases[i].len, ENOIPC_BIND, 0, 1, 0, cases[i].plen);
    char what[64];
    snprintf(what, sizeof(what), "len %u for a %zu-byte datagram", cases[i].len, n);
    expect_rejected(buf, n, 0, what);
    build(buf, cases[i].len, ENOIPC_BIND, 1, 1, 0, cases[i].plen);
    expect_rejected(buf, n, 1, what);
  }
}

Test(ipc, oversized_datagram_on_receive)
{
  static uint8_t buf[3 * ENOIPC_MAX_MSG];
  static const size_t sizes[] = { ENOIPC_MAX_MSG + 1, ENOIPC_MAX_MSG + 24, 2 * ENOIPC_MAX_MSG,
                                  3 * ENOIPC_MAX_MSG };
  for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
    size_t n = build(buf, (uint32_t)sizes[i], ENOIPC_RESULT, 0, 1, 0,
                     sizes[i] - sizeof(struct enoipc_hdr));
    char what[64];
    snprintf(what, sizeof(what), "%zu-byte datagram", n);
    expect_rejected(buf, n, 0, what);
    build(buf, (uint32_t)sizes[i], ENOIPC_RESULT, 2, 1, 0, sizes[i] - sizeof(struct enoipc_hdr));
    expect_rejected(buf, n, 2, what);
  }
}

/* A datagram longer than the receive buffer whose header claims exactly the
 * largest size: what is read looks consistent, only the kernel's MSG_TRUNC
 * tells that bytes were cut off. */
Test(ipc, oversized_datagram_claiming_max_size)
{
  static uint8_t buf[2 * ENOIPC_MAX_MSG];
  static const size_t sizes[] = { ENOIPC_MAX_MSG + 1, ENOIPC_MAX_MSG + 100, 2 * ENOIPC_MAX_MSG };
  for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
    size_t n = build(buf, ENOIPC_MAX_MSG, ENOIPC_RESULT, 0, 1, 0, sizes[i] - sizeof(struct enoipc_hdr));
    char what[80];
    snprintf(what, sizeof(what), "%zu-byte datagram with len %u", n, ENOIPC_MAX_MSG);
    expect_rejected(buf, n, 0, what);
    build(buf, ENOIPC_MAX_MSG, ENOIPC_RESULT, 1, 1, 0, sizes[i] - sizeof(struct enoipc_hdr));
    expect_rejected(buf, n, 1, what);
  }
}

Test(ipc, nfds_header_disagrees_with_attached)
{
  uint8_t buf[64];
  static const struct { uint16_t declared; int attached; } cases[] = {
    { 1, 0 }, { 2, 0 }, { 2, 1 }, { 0, 1 }, { 0, 2 }, { 1, 2 }, { 0xffff, 2 }, { 3, 2 },
    { ENOIPC_MAX_FDS + 1, ENOIPC_MAX_FDS }, { ENOIPC_MAX_FDS, ENOIPC_MAX_FDS - 1 },
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    size_t n = build(buf, 24 + 4, ENOIPC_ATTACH, cases[i].declared, 1, 0, 4);
    char what[64];
    snprintf(what, sizeof(what), "header says %u fds, %d attached", cases[i].declared,
             cases[i].attached);
    expect_rejected(buf, n, cases[i].attached, what);
  }
}

Test(ipc, too_many_fds_all_closed)
{
  uint8_t buf[64];
  static const int counts[] = { ENOIPC_MAX_FDS + 1, ENOIPC_MAX_FDS + 2, 15, 16, 17, 40, 64 };
  for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
    char what[64];
    snprintf(what, sizeof(what), "%d fds attached", counts[i]);
    /* declared honestly: still more than ENOIPC_MAX_FDS */
    size_t n = build(buf, 24 + 4, ENOIPC_SOCKET, (uint16_t)counts[i], 1, 0, 4);
    expect_rejected(buf, n, counts[i], what);
    /* declared as 2: the first two fit, the rest must still go */
    n = build(buf, 24 + 4, ENOIPC_SOCKET, 2, 1, 0, 4);
    expect_rejected(buf, n, counts[i], what);
  }
}

/* Credentials are not part of the protocol: with SO_PASSCRED on the receiver,
 * the kernel adds SCM_CREDENTIALS to every message, which must be refused
 * (and the fds that came along closed). */
Test(ipc, credentials_rejected)
{
  for (int nfds = 0; nfds <= 2; nfds++) {
    int sv[2];
    pair(sv);
    int one = 1;
    cr_assert_eq(setsockopt(sv[1], SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)), 0);
    struct pipes pp;
    pipes_open(&pp, nfds);
    int before = open_fds();
    cr_assert_eq(enoipc_send(sv[0], ENOIPC_HELLO, 1, 0, "abcd", 4, NULL, 0, pp.wr, nfds), 0);
    struct enoipc_msg *m = calloc(1, sizeof(*m));
    cr_assert_eq(enoipc_recv(sv[1], m), -EPROTO, "message with SCM_CREDENTIALS, %d fds", nfds);
    cr_assert_eq(open_fds(), before, "%d fds: leak", nfds);
    pipes_expect_all_closed(&pp, "credentials");
    free(m);
    close(sv[0]);
    close(sv[1]);
  }
}

/* Explicit SCM_CREDENTIALS from the sender, receiver without SO_PASSCRED:
 * the kernel drops them, and the message is an ordinary good one. */
Test(ipc, explicit_credentials_without_passcred)
{
  int sv[2];
  pair(sv);
  uint8_t buf[64];
  size_t n = build(buf, 24, ENOIPC_STATUS, 0, 9, 0, 0);
  struct iovec iov = { .iov_base = buf, .iov_len = n };
  union {
    struct cmsghdr align;
    char b[CMSG_SPACE(sizeof(struct ucred))];
  } cb;
  struct msghdr mh;
  memset(&mh, 0, sizeof(mh));
  memset(&cb, 0, sizeof(cb));
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  mh.msg_control = cb.b;
  mh.msg_controllen = sizeof(cb.b);
  struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_CREDENTIALS;
  c->cmsg_len = CMSG_LEN(sizeof(struct ucred));
  struct ucred uc = { .pid = getpid(), .uid = getuid(), .gid = getgid() };
  memcpy(CMSG_DATA(c), &uc, sizeof(uc));
  cr_assert_eq(sendmsg(sv[0], &mh, 0), (ssize_t)n);
  struct enoipc_msg *m = calloc(1, sizeof(*m));
  cr_assert_eq(enoipc_recv(sv[1], m), 1);
  cr_assert_eq(m->hdr.seq, 9);
  free(m);
}

Test(ipc, eof)
{
  int sv[2];
  pair(sv);
  cr_assert_eq(enoipc_send(sv[0], ENOIPC_HELLO, 1, 0, "x", 1, NULL, 0, NULL, 0), 0);
  close(sv[0]);
  struct enoipc_msg *m = calloc(1, sizeof(*m));
  cr_assert_eq(enoipc_recv(sv[1], m), 1, "queued message still delivered before EOF");
  cr_assert_eq(enoipc_recv(sv[1], m), 0);
  cr_assert_eq(enoipc_recv(sv[1], m), 0, "EOF is sticky");
  cr_assert_eq(m->nfds, 0);
  free(m);
}

Test(ipc, eagain_nonblocking)
{
  int sv[2];
  pair(sv);
  int fl = fcntl(sv[1], F_GETFL);
  cr_assert_eq(fcntl(sv[1], F_SETFL, fl | O_NONBLOCK), 0);
  struct enoipc_msg *m = calloc(1, sizeof(*m));
  cr_assert_eq(enoipc_recv(sv[1], m), -EAGAIN);
  cr_assert_eq(m->nfds, 0);
  cr_assert_eq(enoipc_send(sv[0], ENOIPC_HELLO, 3, 0, NULL, 0, NULL, 0, NULL, 0), 0);
  cr_assert_eq(enoipc_recv(sv[1], m), 1);
  cr_assert_eq(enoipc_recv(sv[1], m), -EAGAIN);
  free(m);
}

Test(ipc, recv_on_bad_socket)
{
  struct enoipc_msg *m = calloc(1, sizeof(*m));
  cr_assert_eq(enoipc_recv(-1, m), -EBADF);
  int pp[2];
  cr_assert_eq(pipe(pp), 0);
  cr_assert_eq(enoipc_recv(pp[0], m), -ENOTSOCK);
  free(m);
}

/* Looking without waiting (tund/client.c drains a client it refuses). */
Test(ipc, recv_dontwait)
{
  int sv[2];
  pair(sv);
  struct enoipc_msg *m = calloc(1, sizeof(*m));
  cr_assert_eq(enoipc_recv_flags(sv[1], m, MSG_DONTWAIT), -EAGAIN, "empty: EAGAIN, not a wait");
  uint32_t v = 7;
  cr_assert_eq(enoipc_send(sv[0], ENOIPC_KICK, 3, 0, &v, sizeof(v), NULL, 0, NULL, 0), 0);
  cr_assert_eq(enoipc_recv_flags(sv[1], m, MSG_DONTWAIT), 1);
  cr_assert_eq(m->hdr.type, ENOIPC_KICK);
  cr_assert_eq(m->hdr.seq, 3);
  cr_assert_eq(m->plen, sizeof(v));
  cr_assert_eq(enoipc_recv_flags(sv[1], m, MSG_DONTWAIT), -EAGAIN);
  close(sv[0]);
  cr_assert_eq(enoipc_recv_flags(sv[1], m, MSG_DONTWAIT), 0, "peer gone: EOF");
  close(sv[1]);
  free(m);
}

/* A storm of malformed messages with fds, then a count: nothing leaks. */
Test(ipc, no_leak_under_many_bad_messages)
{
  int sv[2];
  pair(sv);
  int before = open_fds();
  uint8_t buf[ENOIPC_MAX_MSG + 64];
  struct enoipc_msg *m = calloc(1, sizeof(*m));
  unsigned seed = 1;
  for (int i = 0; i < 300; i++) {
    seed = seed * 1103515245u + 12345u;
    int nf = (int)(seed >> 16) % 6;
    size_t n = (seed >> 8) % 3 == 0 ? 10 : 24 + (seed >> 4) % 16;
    if ((seed >> 20) % 7 == 0)
      n = ENOIPC_MAX_MSG + 8;
    uint32_t len = (uint32_t)n + ((seed >> 12) % 2);   /* half of them lie about len */
    build(buf, len, ENOIPC_CONNECT, (uint16_t)((seed >> 24) % 3), 1, 0, n > 24 ? n - 24 : 0);
    int fds[6];
    for (int k = 0; k < nf; k++)
      fds[k] = memfd_create("storm", MFD_CLOEXEC);
    cr_assert_eq(raw_send(sv[0], buf, n, fds, nf), (ssize_t)n);
    for (int k = 0; k < nf; k++)
      close(fds[k]);
    int r = enoipc_recv(sv[1], m);
    struct enoipc_hdr h;
    memcpy(&h, buf, sizeof(h));
    int good = n >= 24 && n <= ENOIPC_MAX_MSG && len == n && nf <= 2 && h.nfds == nf;
    cr_assert_eq(r, good ? 1 : -EPROTO, "message %d: n %zu len %u nf %d declared %u: got %d", i, n,
                 len, nf, h.nfds, r);
    enoipc_msg_close_fds(m);
  }
  cr_assert_eq(open_fds(), before);
  free(m);
}

/* ---- payload cursor --------------------------------------------------------------------- */

static void msg_with_payload(struct enoipc_msg *m, const void *p, size_t n)
{
  memset(m, 0, sizeof(*m));
  memcpy(m->buf + sizeof(struct enoipc_hdr), p, n);
  m->payload = m->buf + sizeof(struct enoipc_hdr);
  m->plen = n;
}

Test(ipc_rd, exact)
{
  struct enoipc_msg *m = calloc(1, sizeof(*m));
  struct { uint32_t a; uint16_t b; uint8_t c[6]; } in = { 0xdeadbeef, 0x1234, "hello" }, out;
  msg_with_payload(m, &in, sizeof(in));
  struct enoipc_rd r;
  enoipc_rd_init(&r, m);
  cr_assert(!enoipc_rd_end(&r), "not consumed yet");
  cr_assert_eq(enoipc_rd_bytes(&r, &out.a, 4), 0);
  cr_assert_eq(enoipc_rd_bytes(&r, &out.b, 2), 0);
  const uint8_t *v = enoipc_rd_view(&r, 2);
  cr_assert(v);
  cr_assert_eq(v, m->payload + 6, "a view points into the payload");
  cr_assert(v[0] == 'h' && v[1] == 'e');
  cr_assert(!enoipc_rd_end(&r));
  cr_assert_eq(enoipc_rd_bytes(&r, out.c, 4), 0);
  cr_assert(enoipc_rd_end(&r));
  cr_assert_eq(out.a, 0xdeadbeef);
  cr_assert_eq(out.b, 0x1234);
  cr_assert_str_eq((char *)out.c, "llo");
  /* zero-length reads at the end are fine and keep it exact */
  cr_assert_eq(enoipc_rd_bytes(&r, &out, 0), 0);
  cr_assert(enoipc_rd_view(&r, 0) != NULL);
  cr_assert(enoipc_rd_end(&r));
  free(m);
}

Test(ipc_rd, short_payload)
{
  struct enoipc_msg *m = calloc(1, sizeof(*m));
  uint8_t in[5] = { 1, 2, 3, 4, 5 }, out[8];
  msg_with_payload(m, in, sizeof(in));
  struct enoipc_rd r;
  enoipc_rd_init(&r, m);
  cr_assert_eq(enoipc_rd_bytes(&r, out, 4), 0);
  memset(out, 0xaa, sizeof(out));
  cr_assert_eq(enoipc_rd_bytes(&r, out, 2), -1, "one byte left, two asked");
  cr_assert_eq(out[0], 0xaa, "a failed read copies nothing");
  cr_assert(r.bad);
  cr_assert(!enoipc_rd_end(&r));
  /* sticky: even a read that would fit now fails */
  cr_assert_eq(enoipc_rd_bytes(&r, out, 1), -1);
  cr_assert(enoipc_rd_view(&r, 1) == NULL);
  cr_assert_eq(enoipc_rd_bytes(&r, out, 0), -1);
  cr_assert(!enoipc_rd_end(&r));

  /* view past the end */
  enoipc_rd_init(&r, m);
  cr_assert(enoipc_rd_view(&r, 6) == NULL);
  cr_assert(!enoipc_rd_end(&r));
  /* a huge length must not wrap the pointer arithmetic */
  enoipc_rd_init(&r, m);
  cr_assert_eq(enoipc_rd_bytes(&r, out, SIZE_MAX), -1);
  enoipc_rd_init(&r, m);
  cr_assert(enoipc_rd_view(&r, SIZE_MAX - 2) == NULL);
  /* empty payload */
  msg_with_payload(m, in, 0);
  enoipc_rd_init(&r, m);
  cr_assert(enoipc_rd_end(&r));
  cr_assert_eq(enoipc_rd_bytes(&r, out, 1), -1);
  cr_assert(!enoipc_rd_end(&r));
  free(m);
}

Test(ipc_rd, long_payload)
{
  struct enoipc_msg *m = calloc(1, sizeof(*m));
  uint8_t in[12] = { 0 }, out[12];
  msg_with_payload(m, in, sizeof(in));
  struct enoipc_rd r;
  enoipc_rd_init(&r, m);
  cr_assert_eq(enoipc_rd_bytes(&r, out, 8), 0);
  cr_assert(!enoipc_rd_end(&r), "4 bytes left over: not exact");
  cr_assert_eq(enoipc_rd_bytes(&r, out, 3), 0);
  cr_assert(!enoipc_rd_end(&r), "1 byte left over");
  cr_assert(enoipc_rd_view(&r, 1) != NULL);
  cr_assert(enoipc_rd_end(&r));
  free(m);
}

/* The cursor over a message that came off the wire, each size from 0 to 40
 * read as a 16-byte struct: only 16 is exact. */
Test(ipc_rd, received_sizes)
{
  int sv[2];
  pair(sv);
  struct enoipc_msg *m = calloc(1, sizeof(*m));
  uint8_t p[40] = { 0 };
  for (size_t n = 0; n <= sizeof(p); n++) {
    cr_assert_eq(enoipc_send(sv[0], ENOIPC_COMMAND, (uint32_t)n, 0, p, n, NULL, 0, NULL, 0), 0);
    cr_assert_eq(enoipc_recv(sv[1], m), 1);
    struct enoipc_rd r;
    struct enoipc_command cmd;
    enoipc_rd_init(&r, m);
    int ok = enoipc_rd_bytes(&r, &cmd, sizeof(cmd)) == 0 && enoipc_rd_end(&r);
    cr_assert_eq(ok, n == sizeof(cmd), "payload of %zu bytes", n);
  }
  free(m);
}

/* The receiver at its RLIMIT_NOFILE: the kernel cannot install the fds
 * (MSG_CTRUNC).  The message is well formed and must be said apart from a
 * malformed one (-EMFILE, header and payload valid), with nothing leaked:
 * none, or one of the two fds, could be installed. */
Test(ipc, fds_beyond_rlimit_emfile)
{
  for (int room = 0; room <= 1; room++) {
    int sv[2];
    pair(sv);
    struct pipes pp;
    pipes_open(&pp, 2);
    cr_assert_eq(enoipc_send(sv[0], ENOIPC_SOCKET, 7, 42, "abcd", 4, NULL, 0, pp.wr, 2), 0);
    struct enoipc_msg *m = calloc(1, sizeof(*m));
    struct rlimit old, rl;
    cr_assert_eq(getrlimit(RLIMIT_NOFILE, &old), 0);
    /* the lowest free descriptor, plus `room` */
    int probe = dup(0);
    cr_assert(probe >= 0);
    close(probe);
    /* every descriptor below the limit in use but `room` of them */
    int fill[64], nfill = 0;
    for (int fd = probe; fd < probe + 64; fd++) {
      int d = fcntl(0, F_DUPFD, fd);
      if (d != fd) {
        if (d >= 0)
          close(d);
        break;
      }
      fill[nfill++] = d;
    }
    int highest = fill[nfill - 1];
    for (int k = 0; k < room; k++)
      close(fill[--nfill]);
    rl = old;
    rl.rlim_cur = (rlim_t)highest + 1;
    int before = open_fds();
    cr_assert_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
    int r = enoipc_recv(sv[1], m);
    cr_assert_eq(setrlimit(RLIMIT_NOFILE, &old), 0);
    int after = open_fds();
    cr_assert_eq(r, -EMFILE, "room for %d: enoipc_recv gave %d", room, r);
    cr_assert_eq(m->hdr.seq, 7);
    cr_assert_eq(m->hdr.sock, 42);
    cr_assert_eq(m->plen, 4);
    cr_assert_eq(m->nfds, 0);
    cr_assert_eq(after, before, "room for %d: leaked %d fds", room, after - before);
    for (int k = 0; k < nfill; k++)
      close(fill[k]);
    pipes_expect_all_closed(&pp, "beyond the limit");
    free(m);
    close(sv[0]);
    close(sv[1]);
  }
}
