/*
 * sem_close_range — a program that closes "everything" (close_range(3, ~0U,
 * 0), as daemons and fork-exec helpers do) keeps working with the shim: the
 * old sockets are gone (EBADF) and their peers see the connection end, and
 * a new socket connects and carries data afterwards.  The same with
 * closefrom(3) and with close_range(CLOSE_RANGE_CLOEXEC).
 */
#include <linux/close_range.h>

#include "tprog.h"

static void fresh_connection(const char *after)
{
  int s, k;
  STEP("new connection after %s", after);
  mkpair(&s, &k);
  xfer_check(s, k, 100000, 111, after);
  xfer_check(k, s, 100000, 112, after);
  int one = 1;
  CHECK(setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) == 0, "setsockopt after %s", after);
  /* a listener too */
  int s2, k2;
  mkpair_srv(AF_INET, &s2, &k2);
  xfer_check(s2, k2, 10000, 113, after);
  close(s2);
  close(k2);
  close(s);
  close(k);
}

/* Peer k of a socket that close_range() closed sees EOF.  k is a kernel fd
 * that must survive the range: we move it to a number below 3 first. */
int main(void)
{
  int s, k, s2, k2;
  tp_init("sem_close_range", 120);
  fresh_connection("start");

  STEP("close_range(3, ~0U, 0)");
  mkpair(&s, &k);
  mkpair_srv(AF_INET, &s2, &k2);
  int l = 0;
  int lport = 0;
  l = s_listen(AF_INET, NULL, &lport);
  /* keep the kernel peer below 3: fd 0 (stdin) is expendable here */
  CHECK(dup2(k, 0) == 0, "dup2 peer to 0");
  close(k);
  k = 0;
  CHECK(close_range(3, ~0U, 0) == 0, "close_range");
  CHECK(fcntl(s, F_GETFD) < 0 && errno == EBADF, "socket survived close_range");
  CHECK(fcntl(s2, F_GETFD) < 0 && errno == EBADF, "accepted socket survived close_range");
  CHECK(fcntl(l, F_GETFD) < 0 && errno == EBADF, "listener survived close_range");
  expect_eof(k, 5000, "peer of a socket closed by close_range");
  fresh_connection("close_range(3, ~0U, 0)");

  STEP("closefrom(3)");
  mkpair(&s, &k);
  CHECK(dup2(k, 0) == 0, "dup2 peer to 0");
  close(k);
  k = 0;
  closefrom(3);
  CHECK(fcntl(s, F_GETFD) < 0 && errno == EBADF, "socket survived closefrom");
  expect_eof(k, 5000, "peer of a socket closed by closefrom");
  fresh_connection("closefrom(3)");

  STEP("close_range(CLOSE_RANGE_CLOEXEC)");
  mkpair(&s, &k);
  CHECK(close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) == 0, "close_range CLOEXEC");
  CHECK(fcntl(s, F_GETFD) & FD_CLOEXEC, "CLOSE_RANGE_CLOEXEC not applied");
  xfer_check(s, k, 10000, 114, "after CLOSE_RANGE_CLOEXEC");
  close(s);
  close(k);
  fresh_connection("close_range(CLOSE_RANGE_CLOEXEC)");
  printf("ok\n");
  return 0;
}
