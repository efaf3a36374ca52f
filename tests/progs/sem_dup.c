/*
 * sem_dup — duplicated shim socket fds: dup, dup2 (onto a non-socket fd and
 * onto another shim socket, which closes that connection), dup3(O_CLOEXEC),
 * fcntl(F_DUPFD_CLOEXEC) and F_DUPFD; data through any copy; closing one
 * copy keeps the connection, closing the last sends FIN.
 */
#include "tprog.h"

static int cloexec(int fd)
{
  int f = fcntl(fd, F_GETFD);
  CHECK(f >= 0, "F_GETFD %d", fd);
  return (f & FD_CLOEXEC) != 0;
}

static void names_equal(int a, int b)
{
  struct sockaddr_storage x, y;
  socklen_t lx = sizeof(x), ly = sizeof(y);
  CHECK(getsockname(a, (struct sockaddr *)&x, &lx) == 0, "getsockname %d", a);
  CHECK(getsockname(b, (struct sockaddr *)&y, &ly) == 0, "getsockname %d", b);
  CHECK(lx == ly && sa_equal(&x, &y), "copies %d and %d report different local addresses", a, b);
  lx = sizeof(x);
  ly = sizeof(y);
  CHECK(getpeername(a, (struct sockaddr *)&x, &lx) == 0, "getpeername %d", a);
  CHECK(getpeername(b, (struct sockaddr *)&y, &ly) == 0, "getpeername %d", b);
  CHECK(sa_equal(&x, &y), "copies %d and %d report different peers", a, b);
}

int main(void)
{
  int s, k, s2, k2;
  tp_init("sem_dup", 120);

  STEP("dup: data via the duplicate; closing one copy keeps the other");
  mkpair(&s, &k);
  int d = dup(s);
  CHECK(d >= 0 && d != s, "dup");
  require_shim(d, "dup()");
  names_equal(s, d);
  xfer_check(d, k, 50000, 41, "dup -> peer");
  xfer_check(k, s, 50000, 42, "peer -> original");
  xfer_check(k, d, 50000, 43, "peer -> dup");
  CHECK(close(s) == 0, "close original");
  CHECK(wait_fd(k, POLLIN, 300) == 0, "closing one copy made the peer readable (FIN or RST?)");
  xfer_check(d, k, 50000, 44, "dup after closing the original");
  xfer_check(k, d, 50000, 45, "peer -> dup after closing the original");
  CHECK(close(d) == 0, "close dup");
  expect_eof(k, 5000, "peer after the last copy closed");
  close(k);

  STEP("dup2 onto a non-socket fd, onto itself");
  mkpair(&s, &k);
  int target = open("/dev/null", O_RDONLY | O_CLOEXEC);
  CHECK(target >= 0, "open");
  CHECK(dup2(s, target) == target, "dup2");
  CHECK(!cloexec(target), "dup2 must clear FD_CLOEXEC");
  require_shim(target, "dup2() target");
  xfer_check(target, k, 30000, 46, "dup2 copy -> peer");
  xfer_check(k, target, 30000, 47, "peer -> dup2 copy");
  CHECK(dup2(s, s) == s, "dup2(fd, fd)");
  xfer_check(s, k, 1000, 48, "after dup2(fd, fd)");

  STEP("dup2 onto another connection's fd closes that connection");
  mkpair(&s2, &k2);
  CHECK(dup2(s, s2) == s2, "dup2 onto a shim socket");
  expect_eof(k2, 5000, "the replaced connection's peer");
  close(k2);
  xfer_check(s2, k, 30000, 49, "the fd now carries the first connection");
  names_equal(s, s2);

  STEP("dup3(O_CLOEXEC), F_DUPFD_CLOEXEC, F_DUPFD");
  int d3 = dup3(s, 200, O_CLOEXEC);
  CHECK(d3 == 200, "dup3");
  CHECK(cloexec(d3), "dup3(O_CLOEXEC) without FD_CLOEXEC");
  CHECK(dup3(s, s, 0) < 0 && errno == EINVAL, "dup3(fd, fd) must fail with EINVAL");
  int dc = fcntl(s, F_DUPFD_CLOEXEC, 300);
  CHECK(dc >= 300, "F_DUPFD_CLOEXEC gave %d", dc);
  CHECK(cloexec(dc), "F_DUPFD_CLOEXEC without FD_CLOEXEC");
  int dd = fcntl(s, F_DUPFD, 400);
  CHECK(dd >= 400, "F_DUPFD gave %d", dd);
  CHECK(!cloexec(dd), "F_DUPFD with FD_CLOEXEC");
  xfer_check(d3, k, 20000, 50, "dup3 copy");
  xfer_check(k, dc, 20000, 51, "F_DUPFD_CLOEXEC copy");
  xfer_check(dd, k, 20000, 52, "F_DUPFD copy");
  /* close all but one, in an odd order */
  CHECK(close(s) == 0 && close(target) == 0 && close(d3) == 0 && close(s2) == 0, "close copies");
  CHECK(wait_fd(k, POLLIN, 300) == 0, "closing some copies made the peer readable");
  xfer_check(k, dd, 20000, 53, "last-but-one copy");
  CHECK(close(dd) == 0, "close");
  xfer_check(dc, k, 20000, 54, "last copy");
  /* O_NONBLOCK is shared by all copies (one open file description) */
  set_nonblock(dc, 1);
  char b;
  CHECK(read(dc, &b, 1) < 0 && errno == EAGAIN, "non-blocking copy must give EAGAIN");
  CHECK(close(dc) == 0, "close last");
  expect_eof(k, 5000, "peer after closing every copy");
  close(k);
  printf("ok\n");
  return 0;
}
