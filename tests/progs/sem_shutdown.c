/*
 * sem_shutdown — half-close on shim sockets (client and accepted side):
 *   shutdown(SHUT_WR): the peer reads our data then EOF; the peer keeps
 *   sending and we keep receiving; our writes then fail with EPIPE; the
 *   final close() ends the connection cleanly (the peer sees EOF, no RST).
 *   The peer's SHUT_WR: we read EOF (again and again), can still write.
 *   shutdown(SHUT_RD): read() returns 0 at once (no blocking), writing still
 *   works, and the socket polls readable (POLLIN|POLLRDHUP), as on Linux.
 *   close() with unread data and SO_LINGER {1,0} reset the connection; a
 *   reset from the peer reads as ECONNRESET once, then EOF, and writes EPIPE;
 *   SHUT_RDWR; shutdown() on an unconnected socket: ENOTCONN; bad `how`: EINVAL.
 */
#include "tprog.h"
#include <pthread.h>
#include <signal.h>

static void our_shut_wr(int s, int k, const char *side)
{
  char buf[4096];
  STEP("%s: shutdown(SHUT_WR) after sending", side);
  xfer_check(s, k, 70000, 11, "before SHUT_WR");
  CHECK(write(s, "last words", 10) == 10, "%s: write", side);
  CHECK(shutdown(s, SHUT_WR) == 0, "%s: shutdown(SHUT_WR)", side);
  read_exact(k, buf, 10, 5000, "peer reads our last data");
  CHECK(!memcmp(buf, "last words", 10), "%s: last data", side);
  expect_eof(k, 5000, "peer after our SHUT_WR");
  /* the other direction still works, in volume */
  xfer_check(k, s, 300000, 12, "peer -> us after our SHUT_WR");
  /* writing after SHUT_WR: EPIPE (MSG_NOSIGNAL: no signal) */
  ssize_t w = send(s, "x", 1, MSG_NOSIGNAL);
  CHECK(w < 0 && errno == EPIPE, "%s: send after SHUT_WR returned %zd, expected EPIPE", side, w);
  /* a second SHUT_WR is harmless */
  CHECK(shutdown(s, SHUT_WR) == 0, "%s: second shutdown(SHUT_WR)", side);
  /* peer finishes: we see EOF */
  CHECK(shutdown(k, SHUT_WR) == 0, "peer shutdown");
  expect_eof(s, 5000, "us after the peer's SHUT_WR");
  CHECK(read(s, buf, sizeof(buf)) == 0, "%s: EOF must repeat", side);
  close(s);
  /* no RST: the peer's read gives EOF again, not ECONNRESET */
  msleep(100);
  ssize_t r = read(k, buf, sizeof(buf));
  CHECK(r == 0, "%s: peer read after our close: %zd (a reset?)", side, r);
  close(k);
}

static void peer_shut_wr(int s, int k, const char *side)
{
  char buf[4096];
  STEP("%s: the peer's shutdown(SHUT_WR)", side);
  CHECK(write(k, "bye", 3) == 3, "peer write");
  CHECK(shutdown(k, SHUT_WR) == 0, "peer shutdown");
  read_exact(s, buf, 3, 5000, "data before the peer's FIN");
  CHECK(!memcmp(buf, "bye", 3), "%s: data before FIN", side);
  expect_eof(s, 5000, "after the peer's FIN");
  CHECK(read(s, buf, sizeof(buf)) == 0, "%s: EOF must repeat", side);
  CHECK(recv(s, buf, sizeof(buf), MSG_DONTWAIT) == 0, "%s: EOF with MSG_DONTWAIT", side);
  /* we still send, in volume */
  xfer_check(s, k, 300000, 13, "us -> peer after the peer's SHUT_WR");
  CHECK(shutdown(s, SHUT_WR) == 0, "%s: our SHUT_WR", side);
  expect_eof(k, 5000, "peer after both FINs");
  close(s);
  close(k);
}

static void shut_rd(int s, int k, const char *side)
{
  char buf[64];
  STEP("%s: shutdown(SHUT_RD)", side);
  CHECK(shutdown(s, SHUT_RD) == 0, "%s: shutdown(SHUT_RD)", side);
  int64_t t0 = now_ms();
  ssize_t r = read(s, buf, sizeof(buf));
  CHECK(r == 0, "%s: read after SHUT_RD returned %zd", side, r);
  CHECK(now_ms() - t0 < 1000, "%s: read after SHUT_RD blocked", side);
  /* writing still works */
  xfer_check(s, k, 100000, 14, "write after SHUT_RD");
  CHECK(shutdown(s, SHUT_WR) == 0, "%s: SHUT_WR after SHUT_RD", side);
  expect_eof(k, 5000, "peer after SHUT_RD + SHUT_WR");
  /* Linux: a socket shut for reading polls readable (read() would not block) */
  int re = wait_fd(s, POLLIN | POLLRDHUP, 1000);
  CHECK(re & POLLIN, "%s: after SHUT_RD poll() reports 0x%x, Linux reports POLLIN|POLLRDHUP (read() returns 0 "
        "without blocking, so a poll loop waiting for POLLIN hangs)", side, re);
  close(s);
  close(k);
}

/* close() with unread data, SO_LINGER {1, 0}, SHUT_RDWR */
static volatile sig_atomic_t sigpipes;
static void on_sigpipe(int sig) { (void)sig; sigpipes++; }

static void *reset_later(void *arg)
{
  msleep(400);
  close(*(int *)arg);          /* SO_LINGER {1, 0}: RST */
  return NULL;
}

/* Linux's tcp_sendmsg reports an error only when it copied nothing: a write
 * that had written some bytes when the reset came returns their count, and
 * the error (ECONNRESET) goes to the next call. */
static void reset_during_write(void)
{
  int s, k;
  struct linger lg = { 1, 0 };
  STEP("peer resets while our blocking write waits: it returns what it wrote, the next write ECONNRESET");
  mkpair_fam(AF_INET, 16384, &s, &k);
  CHECK(syscall(SYS_setsockopt, k, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)) == 0, "peer SO_LINGER");
  struct sigaction sa = { .sa_handler = on_sigpipe }, old;
  sigemptyset(&sa.sa_mask);
  CHECK(sigaction(SIGPIPE, &sa, &old) == 0, "sigaction");
  const size_t total = 64u << 20;
  char *big = calloc(1, total);
  CHECK(big, "calloc");
  pthread_t th;
  CHECK(pthread_create(&th, NULL, reset_later, &k) == 0, "pthread_create");
  ssize_t r = send(s, big, total, 0);
  int e = errno;
  pthread_join(th, NULL);
  CHECK(r > 0 && (size_t)r < total, "blocking send across the peer's RST: %zd (errno %d), expected a partial count", r, e);
  CHECK(sigpipes == 0, "SIGPIPE raised by a write that returned a count");
  r = send(s, "x", 1, 0);
  CHECK(r < 0 && errno == ECONNRESET, "next send: %zd errno %d, expected ECONNRESET", r, errno);
  r = send(s, "x", 1, 0);
  CHECK(r < 0 && errno == EPIPE && sigpipes == 1, "third send: %zd errno %d, %d SIGPIPEs: expected EPIPE and one SIGPIPE",
        r, errno, (int)sigpipes);
  sigaction(SIGPIPE, &old, NULL);
  free(big);
  close(s);
}

static void resets(void)
{
  int s, k;
  char buf[256];
  STEP("close() with unread data sends RST (Linux)");
  mkpair(&s, &k);
  CHECK(write(k, "unread", 6) == 6, "peer write");
  CHECK(wait_fd(s, POLLIN, 5000) & POLLIN, "not readable");
  msleep(50);
  close(s);
  CHECK(wait_fd(k, POLLIN, 5000), "peer saw nothing after our close");
  ssize_t r = read(k, buf, sizeof(buf));
  CHECK(r < 0 && errno == ECONNRESET, "peer read after close-with-unread-data: %zd, expected ECONNRESET", r);
  close(k);

  STEP("SO_LINGER {1, 0}: close() sends RST");
  mkpair_srv(AF_INET, &s, &k);
  struct linger lg = { 1, 0 };
  CHECK(setsockopt(s, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)) == 0, "SO_LINGER");
  struct linger got;
  socklen_t gl = sizeof(got);
  CHECK(getsockopt(s, SOL_SOCKET, SO_LINGER, &got, &gl) == 0 && got.l_onoff == 1 && got.l_linger == 0,
        "SO_LINGER round trip");
  xfer_check(s, k, 1000, 15, "before linger close");
  close(s);
  CHECK(wait_fd(k, POLLIN, 5000), "peer saw nothing after the linger-0 close");
  r = read(k, buf, sizeof(buf));
  CHECK(r < 0 && errno == ECONNRESET, "peer read after SO_LINGER 0 close: %zd, expected ECONNRESET", r);
  close(k);

  STEP("peer resets: our read gives ECONNRESET once, SO_ERROR, then EOF/EPIPE");
  mkpair(&s, &k);
  CHECK(syscall(SYS_setsockopt, k, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)) == 0, "peer SO_LINGER");
  close(k);
  CHECK(wait_fd(s, POLLIN, 5000) & (POLLIN | POLLHUP | POLLERR), "no event after the peer's RST");
  r = read(s, buf, sizeof(buf));
  CHECK(r < 0 && errno == ECONNRESET, "read after the peer's RST: %zd, expected ECONNRESET", r);
  r = read(s, buf, sizeof(buf));
  CHECK(r == 0, "second read after the peer's RST: %zd, expected 0 (EOF)", r);
  r = send(s, "x", 1, MSG_NOSIGNAL);
  CHECK(r < 0 && errno == EPIPE, "send after the peer's RST: %zd, expected EPIPE", r);
  close(s);

  STEP("peer resets: SO_ERROR says ECONNRESET (and clears it)");
  mkpair(&s, &k);
  CHECK(syscall(SYS_setsockopt, k, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)) == 0, "peer SO_LINGER");
  close(k);
  CHECK(wait_fd(s, POLLIN, 5000) & (POLLIN | POLLHUP | POLLERR), "no event after the peer's RST");
  int e = -1;
  socklen_t el = sizeof(e);
  CHECK(getsockopt(s, SOL_SOCKET, SO_ERROR, &e, &el) == 0, "SO_ERROR");
  CHECK(e == ECONNRESET, "SO_ERROR after the peer's RST: %d, expected ECONNRESET", e);
  el = sizeof(e);
  CHECK(getsockopt(s, SOL_SOCKET, SO_ERROR, &e, &el) == 0 && e == 0, "SO_ERROR not cleared: %d", e);
  close(s);

  reset_during_write();

  STEP("shutdown(SHUT_RDWR)");
  mkpair(&s, &k);
  CHECK(shutdown(s, SHUT_RDWR) == 0, "SHUT_RDWR");
  expect_eof(k, 5000, "peer after our SHUT_RDWR");
  CHECK(read(s, buf, sizeof(buf)) == 0, "read after SHUT_RDWR");
  r = send(s, "x", 1, MSG_NOSIGNAL);
  CHECK(r < 0 && errno == EPIPE, "send after SHUT_RDWR: %zd, expected EPIPE", r);
  close(s);
  close(k);
}

int main(void)
{
  int s, k;
  tp_init("sem_shutdown", 120);

  STEP("errors");
  s = socket(AF_INET, SOCK_STREAM, 0);
  CHECK(s >= 0, "socket");
  require_shim(s, "socket()");
  CHECK(shutdown(s, SHUT_WR) < 0 && errno == ENOTCONN, "shutdown on an unconnected socket: expected ENOTCONN");
  close(s);
  mkpair(&s, &k);
  CHECK(shutdown(s, 7) < 0 && errno == EINVAL, "shutdown(how=7): expected EINVAL");
  close(s);
  close(k);

  mkpair(&s, &k);
  our_shut_wr(s, k, "client");
  mkpair_srv(AF_INET, &s, &k);
  our_shut_wr(s, k, "accepted");
  mkpair(&s, &k);
  peer_shut_wr(s, k, "client");
  mkpair_srv(AF_INET6, &s, &k);
  peer_shut_wr(s, k, "accepted v6");
  resets();
  mkpair(&s, &k);
  shut_rd(s, k, "client");
  printf("ok\n");
  return 0;
}
