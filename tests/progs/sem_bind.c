/*
 * sem_bind — bind()/listen() rules on shim sockets, as on Linux:
 *   a port in use by a listener: EADDRINUSE (with or without SO_REUSEADDR);
 *   close() of the listener frees the port AT ONCE: a new socket with
 *   SO_REUSEADDR binds and listens on it immediately (servers like iperf3
 *   re-create their listener between tests) — 30 rounds, each also
 *   accepting a connection;
 *   bind twice: EINVAL; bind to an address that is not ours:
 *   EADDRNOTAVAIL; bind to lwIP's own address (10.201.0.2) and accept there;
 *   port 0 gives an ephemeral port that getsockname reports.
 */
#include "tprog.h"

static int bound_listener(int fam, const char *ip, int port, int reuse, int *err)
{
  struct sockaddr_storage ss;
  socklen_t l = mkaddr(fam, ip, port, &ss);
  int fd = socket(fam, SOCK_STREAM, 0);
  CHECK(fd >= 0, "socket");
  require_shim(fd, "socket()");
  int one = 1;
  if (reuse)
    CHECK(setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == 0, "SO_REUSEADDR");
  if (bind(fd, (struct sockaddr *)&ss, l) < 0 || listen(fd, 16) < 0) {
    *err = errno;
    close(fd);
    return -1;
  }
  *err = 0;
  return fd;
}

int main(void)
{
  int err;
  tp_init("sem_bind", 120);

  STEP("port 0: ephemeral port");
  int port = 0;
  int l = s_listen(AF_INET, NULL, &port);
  CHECK(port > 0, "no ephemeral port");

  STEP("the same port while the listener lives: EADDRINUSE");
  int l2 = bound_listener(AF_INET, "0.0.0.0", port, 1, &err);
  errno = err;
  CHECK(l2 < 0 && err == EADDRINUSE, "second listener on port %d with SO_REUSEADDR: %s", port,
        l2 >= 0 ? "succeeded" : "wrong error");
  l2 = bound_listener(AF_INET, "0.0.0.0", port, 0, &err);
  errno = err;
  CHECK(l2 < 0 && err == EADDRINUSE, "second listener on port %d: %s", port, l2 >= 0 ? "succeeded" : "wrong error");

  STEP("close frees the port at once (30 rounds of close + re-bind with SO_REUSEADDR)");
  for (int round = 0; round < 30; round++) {
    int k = k_connect(AF_INET, LWIP4, port);
    CHECK(wait_fd(l, POLLIN, 10000) & POLLIN, "round %d: listener not readable", round);
    int a = accept(l, NULL, NULL);
    CHECK(a >= 0, "round %d: accept", round);
    xfer_check(a, k, 2000, (uint32_t)round, "round trip");
    close(a);
    close(k);
    CHECK(close(l) == 0, "close listener");
    l = bound_listener(AF_INET, "0.0.0.0", port, 1, &err);
    errno = err;
    CHECK(l >= 0, "round %d: re-bind port %d right after closing its listener failed (Linux allows it with "
          "SO_REUSEADDR)", round, port);
  }
  for (int round = 0; round < 100; round++) {
    CHECK(close(l) == 0, "close listener");
    l = bound_listener(AF_INET, "0.0.0.0", port, 1, &err);
    errno = err;
    CHECK(l >= 0, "quick round %d: re-bind port %d right after closing its listener failed (Linux allows it "
          "with SO_REUSEADDR)", round, port);
  }
  close(l);

  STEP("a socket only bound frees its port at close (100 rounds of bind + close + re-bind)");
  /* a fresh port: the listener's has TIME-WAIT connections, which make a
   * bind without SO_REUSEADDR fail on Linux too */
  int bport0;
  {
    int b = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_storage bs;
    socklen_t bsl = mkaddr(AF_INET, "0.0.0.0", 0, &bs);
    CHECK(b >= 0 && bind(b, (struct sockaddr *)&bs, bsl) == 0, "bind to port 0");
    bsl = sizeof(bs);
    CHECK(getsockname(b, (struct sockaddr *)&bs, &bsl) == 0, "getsockname");
    bport0 = ntohs(((struct sockaddr_in *)&bs)->sin_port);
    close(b);
  }
  for (int round = 0; round < 100; round++) {
    int b = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_storage bs;
    socklen_t bsl = mkaddr(AF_INET, "0.0.0.0", bport0, &bs);
    CHECK(b >= 0 && bind(b, (struct sockaddr *)&bs, bsl) == 0, "round %d: bind port %d after close", round,
          bport0);
    CHECK(close(b) == 0, "close bound socket");
  }

  STEP("500 sockets bound to port 0 at once get 500 distinct ports");
  {
    enum { NB = 500 };
    static int bfd[NB], bport[NB];
    for (int i = 0; i < NB; i++) {
      bfd[i] = socket(AF_INET, SOCK_STREAM, 0);
      struct sockaddr_storage bs;
      socklen_t bsl = mkaddr(AF_INET, "0.0.0.0", 0, &bs);
      CHECK(bfd[i] >= 0 && bind(bfd[i], (struct sockaddr *)&bs, bsl) == 0, "bind #%d to port 0", i);
      bsl = sizeof(bs);
      CHECK(getsockname(bfd[i], (struct sockaddr *)&bs, &bsl) == 0, "getsockname #%d", i);
      bport[i] = ntohs(((struct sockaddr_in *)&bs)->sin_port);
      CHECK(bport[i] > 0, "#%d: port 0 after bind", i);
      for (int j = 0; j < i; j++)
        CHECK(bport[j] != bport[i], "#%d and #%d both got port %d", j, i, bport[i]);
    }
    for (int i = 0; i < NB; i++)
      close(bfd[i]);
  }

  STEP("bind twice: EINVAL; foreign address: EADDRNOTAVAIL");
  int s = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_storage ss;
  socklen_t sl = mkaddr(AF_INET, "0.0.0.0", 0, &ss);
  CHECK(bind(s, (struct sockaddr *)&ss, sl) == 0, "bind");
  CHECK(bind(s, (struct sockaddr *)&ss, sl) < 0 && errno == EINVAL, "second bind: expected EINVAL");
  close(s);
  s = socket(AF_INET, SOCK_STREAM, 0);
  sl = mkaddr(AF_INET, "10.209.9.9", 0, &ss);
  CHECK(bind(s, (struct sockaddr *)&ss, sl) < 0 && errno == EADDRNOTAVAIL, "bind to a foreign address: "
        "expected EADDRNOTAVAIL");
  close(s);

  if (!kernel_mode()) {
    STEP("bind to lwIP's own address %s, accept a kernel client there", LWIP4);
    l = bound_listener(AF_INET, LWIP4, 0, 1, &err);
    errno = err;
    CHECK(l >= 0, "bind/listen on %s", LWIP4);
    sl = sizeof(ss);
    CHECK(getsockname(l, (struct sockaddr *)&ss, &sl) == 0, "getsockname");
    char b[64];
    CHECK(!strncmp(sa_str(&ss, b, sizeof(b)), LWIP4, strlen(LWIP4)) && sa_port(&ss) > 0,
          "listener on %s reports %s", LWIP4, b);
    int k = k_connect(AF_INET, LWIP4, sa_port(&ss));
    CHECK(wait_fd(l, POLLIN, 10000) & POLLIN, "not readable");
    int a = accept(l, NULL, NULL);
    CHECK(a >= 0, "accept");
    xfer_check(k, a, 5000, 5, "lwIP-address listener");
    close(a);
    close(k);
    close(l);
  }
  printf("ok\n");
  return 0;
}
