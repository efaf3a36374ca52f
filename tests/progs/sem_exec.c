/*
 * sem_exec — a shim socket inherited across execve():
 *   the exec'd program (this binary with "child ...") finds the socket again
 *   (getsockname/getpeername/getsockopt answer for the TCP connection, not
 *   for the underlying AF_UNIX fd), reads and writes it, sees the O_NONBLOCK
 *   flag it inherited, does not have the SOCK_CLOEXEC socket, accepts on an
 *   inherited listener, makes a new connection of its own, and its close()
 *   of the last copy sends FIN.
 */
#include <sys/wait.h>

#include "tprog.h"

static void names(int fd, char *loc, char *peer, size_t n)
{
  struct sockaddr_storage a;
  socklen_t l = sizeof(a);
  CHECK(getsockname(fd, (struct sockaddr *)&a, &l) == 0, "getsockname");
  sa_str(&a, loc, n);
  l = sizeof(a);
  CHECK(getpeername(fd, (struct sockaddr *)&a, &l) == 0, "getpeername");
  sa_str(&a, peer, n);
}

static int child(int argc, char **argv)
{
  tp_prog = "sem_exec(exec'd)";
  CHECK(argc == 8, "child: %d args", argc);
  int fd = atoi(argv[2]), cfd = atoi(argv[5]), lfd = atoi(argv[6]), lport = atoi(argv[7]);
  char loc[128], peer[128], buf[64];
  STEP("exec'd: names and options of inherited fd %d", fd);
  int v = 0;
  socklen_t vl = sizeof(v);
  CHECK(getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &v, &vl) == 0 && v == AF_INET,
        "SO_DOMAIN of the inherited socket is %d, expected AF_INET (the shim did not take it back?)", v);
  vl = sizeof(v);
  CHECK(getsockopt(fd, SOL_SOCKET, SO_TYPE, &v, &vl) == 0 && v == SOCK_STREAM, "SO_TYPE %d", v);
  names(fd, loc, peer, sizeof(loc));
  CHECK(!strcmp(loc, argv[3]), "getsockname after exec: %s, before: %s", loc, argv[3]);
  CHECK(!strcmp(peer, argv[4]), "getpeername after exec: %s, before: %s", peer, argv[4]);

  STEP("exec'd: O_NONBLOCK survived, no data yet -> EAGAIN");
  int fl = fcntl(fd, F_GETFL);
  CHECK(fl >= 0 && (fl & O_NONBLOCK), "O_NONBLOCK lost across exec (flags 0x%x)", fl);
  ssize_t r = read(fd, buf, sizeof(buf));
  CHECK(r < 0 && errno == EAGAIN, "read without data: %zd", r);
  set_nonblock(fd, 0);

  STEP("exec'd: SOCK_CLOEXEC socket %d is gone", cfd);
  CHECK(fcntl(cfd, F_GETFD) < 0 && errno == EBADF, "the SOCK_CLOEXEC socket survived exec");

  STEP("exec'd: data");
  CHECK(write(fd, "ready", 5) == 5, "write after exec");
  read_exact(fd, buf, 5, 10000, "read after exec");
  CHECK(!memcmp(buf, "hello", 5), "content after exec");
  CHECK(write(fd, "world", 5) == 5, "write 2 after exec");

  STEP("exec'd: accept on the inherited listener %d", lfd);
  int lport_now = 0;
  struct sockaddr_storage ss;
  socklen_t sl = sizeof(ss);
  CHECK(getsockname(lfd, (struct sockaddr *)&ss, &sl) == 0, "listener getsockname");
  lport_now = sa_port(&ss);
  CHECK(lport_now == lport, "listener port %d after exec, %d before", lport_now, lport);
  vl = sizeof(v);
  CHECK(getsockopt(lfd, SOL_SOCKET, SO_ACCEPTCONN, &v, &vl) == 0 && v == 1, "SO_ACCEPTCONN %d after exec", v);
  CHECK(wait_fd(lfd, POLLIN, 10000) & POLLIN, "inherited listener not readable");
  int a = accept(lfd, NULL, NULL);
  CHECK(a >= 0, "accept on the inherited listener");
  require_shim(a, "accept() after exec");
  read_exact(a, buf, 4, 10000, "accepted after exec");
  CHECK(!memcmp(buf, "ping", 4), "accepted content");
  CHECK(write(a, "pong", 4) == 4, "accepted write");
  close(a);
  close(lfd);

  STEP("exec'd: a new connection of its own");
  int port = 0;
  int l = k_listen(AF_INET, HOST4, &port, 0);
  int s2 = s_connect(AF_INET, HOST4, port);
  int k2 = k_accept(l, 10000);
  xfer_check(s2, k2, 50000, 31, "new connection after exec");
  close(s2);
  close(k2);
  close(l);

  STEP("exec'd: close sends FIN");
  CHECK(close(fd) == 0, "close");
  return 0;
}

int main(int argc, char **argv)
{
  if (argc > 1 && !strcmp(argv[1], "child")) {
    tp_init("sem_exec(exec'd)", 60);
    int r = child(argc, argv);
    printf("child ok\n");
    return r;
  }
  tp_init("sem_exec", 120);
  int s, k, cs, ck, lport = 0;
  char loc[128], peer[128], a2[16], a5[16], a6[16], a7[16], buf[64];
  mkpair(&s, &k);
  mkpair(&cs, &ck);
  CHECK(fcntl(cs, F_SETFD, FD_CLOEXEC) == 0, "FD_CLOEXEC");
  CHECK(fcntl(s, F_SETFD, 0) == 0, "clear FD_CLOEXEC");
  set_nonblock(s, 1);
  int l = s_listen(AF_INET, NULL, &lport);
  CHECK(fcntl(l, F_SETFD, 0) == 0, "clear FD_CLOEXEC on the listener");
  names(s, loc, peer, sizeof(loc));
  snprintf(a2, sizeof(a2), "%d", s);
  snprintf(a5, sizeof(a5), "%d", cs);
  snprintf(a6, sizeof(a6), "%d", l);
  snprintf(a7, sizeof(a7), "%d", lport);
  STEP("parent: exec with fd %d (%s -> %s)", s, loc, peer);
  fflush(stdout);
  pid_t pid = fork();
  CHECK(pid >= 0, "fork");
  if (pid == 0) {
    char *av[] = { argv[0], "child", a2, loc, peer, a5, a6, a7, NULL };
    execv("/proc/self/exe", av);
    FAIL("execv");
  }
  close(s);
  close(l);
  read_exact(k, buf, 5, 20000, "peer waits for the exec'd program");
  CHECK(!memcmp(buf, "ready", 5), "ready");
  CHECK(write(k, "hello", 5) == 5, "peer write");
  read_exact(k, buf, 5, 10000, "peer reads the exec'd program");
  CHECK(!memcmp(buf, "world", 5), "world");
  int kk = k_connect(AF_INET, LWIP4, lport);
  CHECK(write(kk, "ping", 4) == 4, "ping");
  read_exact(kk, buf, 4, 10000, "pong from the exec'd program");
  CHECK(!memcmp(buf, "pong", 4), "pong");
  close(kk);
  expect_eof(k, 20000, "peer: FIN when the exec'd program closed the last copy");
  int st;
  CHECK(waitpid(pid, &st, 0) == pid, "waitpid");
  CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "exec'd program failed (status 0x%x)", st);
  /* the SOCK_CLOEXEC socket is still the parent's */
  xfer_check(cs, ck, 20000, 32, "parent's CLOEXEC socket after the child's exec");
  close(cs);
  expect_eof(ck, 5000, "CLOEXEC socket's peer after the parent's close");
  close(k);
  close(ck);
  printf("ok\n");
  return 0;
}
