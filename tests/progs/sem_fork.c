/*
 * sem_fork — fork() with shim sockets:
 *   1. parent and child both use one connection (child reads what the peer
 *      sent after the fork and answers; parent goes on using it afterwards);
 *      the child makes a new connection of its own; parent and child then
 *      hammer their control connections concurrently (socket, setsockopt,
 *      getsockopt, close): each process must have its own, or replies mix up;
 *   2. parent closes its copy, the child keeps using the connection; the
 *      child's close() is the last one: the peer sees EOF;
 *   3. the child exits without closing, the parent closed first: EOF;
 *   4. a listener inherited by the child: the child accepts and uses the
 *      accepted socket, including calls that need tund.
 */
#include <sys/wait.h>

#include "tprog.h"

static void control_storm(const char *who, int n)
{
  for (int i = 0; i < n; i++) {
    int s = socket(i & 1 ? AF_INET6 : AF_INET, SOCK_STREAM, 0);
    CHECK(s >= 0, "%s: socket #%d", who, i);
    require_shim(s, "socket()");
    int one = 1, v = -1;
    socklen_t l = sizeof(v);
    CHECK(setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) == 0, "%s: setsockopt #%d", who, i);
    CHECK(getsockopt(s, IPPROTO_TCP, TCP_NODELAY, &v, &l) == 0 && v == 1, "%s: getsockopt #%d", who, i);
    CHECK(setsockopt(s, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one)) == 0, "%s: SO_KEEPALIVE #%d", who, i);
    struct sockaddr_storage ss;
    socklen_t sl = mkaddr(i & 1 ? AF_INET6 : AF_INET, i & 1 ? "::" : "0.0.0.0", 0, &ss);
    CHECK(bind(s, (struct sockaddr *)&ss, sl) == 0, "%s: bind #%d", who, i);
    sl = sizeof(ss);
    CHECK(getsockname(s, (struct sockaddr *)&ss, &sl) == 0, "%s: getsockname #%d", who, i);
    CHECK(close(s) == 0, "%s: close #%d", who, i);
  }
}

static int wait_child(pid_t pid, const char *what)
{
  int st;
  int64_t end = now_ms() + 60000;
  for (;;) {
    pid_t r = waitpid(pid, &st, WNOHANG);
    CHECK(r >= 0, "waitpid");
    if (r == pid)
      break;
    CHECK(now_ms() < end, "%s: child did not finish within 60 s", what);
    msleep(10);
  }
  CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s: child failed (status 0x%x)", what, st);
  return 0;
}

static void shared_connection(void)
{
  int s, k, port2 = 0;
  char buf[64];
  STEP("1: parent and child share a connection");
  mkpair(&s, &k);
  CHECK(write(s, "parent1", 7) == 7, "parent write");
  read_exact(k, buf, 7, 5000, "peer reads parent");
  CHECK(!memcmp(buf, "parent1", 7), "content");
  int lk2 = k_listen(AF_INET, HOST4, &port2, 0);
  pid_t pid = fork();
  CHECK(pid >= 0, "fork");
  if (pid == 0) {
    tp_prog = "sem_fork(child)";
    close(k);
    close(lk2);
    read_exact(s, buf, 7, 10000, "child reads the peer");
    CHECK(!memcmp(buf, "to-chld", 7), "child: content");
    CHECK(write(s, "from-ch", 7) == 7, "child: write");
    int c = s_connect(AF_INET, HOST4, port2);
    CHECK(write(c, "child-conn", 10) == 10, "child: write on its own connection");
    read_exact(c, buf, 3, 10000, "child: its own connection");
    CHECK(!memcmp(buf, "ack", 3), "child: ack");
    close(c);
    control_storm("child", 150);
    _exit(0);
  }
  CHECK(write(k, "to-chld", 7) == 7, "peer write");
  read_exact(k, buf, 7, 10000, "peer reads the child");
  CHECK(!memcmp(buf, "from-ch", 7), "content from the child");
  int c = k_accept(lk2, 10000);
  read_exact(c, buf, 10, 10000, "child's own connection");
  CHECK(!memcmp(buf, "child-conn", 10), "child's connection content");
  CHECK(write(c, "ack", 3) == 3, "ack");
  control_storm("parent", 150);
  wait_child(pid, "shared connection");
  expect_eof(c, 5000, "child's own connection after its close");
  close(c);
  close(lk2);
  /* the parent still has the connection, both ways */
  xfer_check(s, k, 200000, 21, "parent -> peer after the child exited");
  xfer_check(k, s, 200000, 22, "peer -> parent after the child exited");
  close(s);
  expect_eof(k, 5000, "peer after the parent's close");
  close(k);
}

static void child_keeps_it(int explicit_close)
{
  int s, k;
  STEP("%d: parent closes, the child keeps the connection", explicit_close ? 2 : 3);
  mkpair(&s, &k);
  pid_t pid = fork();
  CHECK(pid >= 0, "fork");
  if (pid == 0) {
    tp_prog = "sem_fork(child)";
    xfer_check(s, k, 100000, 23, "child -> peer");
    xfer_check(k, s, 100000, 24, "peer -> child");
    if (explicit_close) {
      close(s);
      expect_eof(k, 5000, "peer after the child's close (the last copy)");
    }
    _exit(0);
  }
  close(s);      /* not the last copy: no FIN */
  wait_child(pid, explicit_close ? "child closes" : "child exits");
  if (!explicit_close)
    expect_eof(k, 5000, "peer after the child exited holding the last copy");
  close(k);
}

static void inherited_listener(void)
{
  int port = 0;
  STEP("4: the child accepts on an inherited listener");
  int l = s_listen(AF_INET, NULL, &port);
  pid_t pid = fork();
  CHECK(pid >= 0, "fork");
  if (pid == 0) {
    tp_prog = "sem_fork(child)";
    CHECK(wait_fd(l, POLLIN, 10000) & POLLIN, "child: listener not readable");
    int a = accept(l, NULL, NULL);
    CHECK(a >= 0, "child: accept");
    require_shim(a, "child's accept()");
    int one = 1;
    CHECK(setsockopt(a, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) == 0, "child: setsockopt on accepted");
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    CHECK(getpeername(a, (struct sockaddr *)&ss, &sl) == 0, "child: getpeername");
    char buf[16];
    read_exact(a, buf, 5, 10000, "child: accepted socket");
    CHECK(!memcmp(buf, "hello", 5), "child: content");
    CHECK(write(a, "world", 5) == 5, "child: write");
    close(a);
    _exit(0);
  }
  int k = k_connect(AF_INET, LWIP4, port);
  CHECK(write(k, "hello", 5) == 5, "peer write");
  char buf[16];
  read_exact(k, buf, 5, 10000, "peer reads the child's answer");
  CHECK(!memcmp(buf, "world", 5), "content");
  expect_eof(k, 5000, "peer after the child's close");
  wait_child(pid, "inherited listener");
  close(k);
  /* the parent's listener still works */
  k = k_connect(AF_INET, LWIP4, port);
  CHECK(wait_fd(l, POLLIN, 10000) & POLLIN, "parent: listener not readable");
  int a = accept(l, NULL, NULL);
  CHECK(a >= 0, "parent: accept");
  xfer_check(a, k, 10000, 25, "parent's accepted socket");
  close(a);
  close(k);
  close(l);
}

int main(void)
{
  tp_init("sem_fork", 150);
  shared_connection();
  child_keeps_it(1);
  child_keeps_it(0);
  inherited_listener();
  printf("ok\n");
  return 0;
}
