/*
 * sem_many HOST PORT N [HOLD_FILE] — N concurrent connections from one
 * program to an echo server (echo_srv behind the other tund): all are opened
 * at once (non-blocking connects), each sends 1 KiB of its own pattern and
 * must get exactly that back.  Prints "echoed N"; with HOLD_FILE, keeps the
 * connections open until that file exists (so the shell can look at tund's
 * table), then closes them all and prints "ok".  While holding it polls the
 * idle connections: if one ends (EOF or error) it prints "aborted: ..." and
 * exits 2.
 */
#include <sys/stat.h>

#include "tprog.h"

#define MSG 1024

struct c {
  int fd;
  int connected;
  size_t sent, rcvd;
  uint8_t in[MSG];
};

int main(int argc, char **argv)
{
  tp_init("sem_many", 170);
  CHECK(argc >= 4, "usage: sem_many HOST PORT N [HOLD_FILE]");
  const char *host = argv[1];
  int port = atoi(argv[2]);
  int n = atoi(argv[3]);
  int fam = strchr(host, ':') ? AF_INET6 : AF_INET;
  struct c *cs = calloc((size_t)n, sizeof(*cs));
  struct pollfd *p = calloc((size_t)n, sizeof(*p));
  CHECK(cs && p, "calloc");
  struct sockaddr_storage ss;
  socklen_t sl = mkaddr(fam, host, port, &ss);
  int64_t t0 = now_ms();

  STEP("opening %d connections", n);
  for (int i = 0; i < n; i++) {
    int fd = socket(fam, SOCK_STREAM | SOCK_NONBLOCK, 0);
    CHECK(fd >= 0, "socket #%d", i);
    if (i == 0)
      require_shim(fd, "socket()");
    int r = connect(fd, (struct sockaddr *)&ss, sl);
    CHECK(r == 0 || errno == EINPROGRESS, "connect #%d", i);
    cs[i].fd = fd;
  }
  STEP("exchanging 1 KiB on each");
  int done = 0, connected = 0;
  uint8_t out[MSG];
  int64_t end = now_ms() + 90000;
  while (done < n) {
    CHECK(now_ms() < end, "after 90 s: %d of %d connected, %d of %d echoed", connected, n, done, n);
    for (int i = 0; i < n; i++) {
      p[i].fd = cs[i].rcvd == MSG ? -1 : cs[i].fd;
      p[i].events = (short)(!cs[i].connected || cs[i].sent < MSG ? POLLOUT : 0) | (cs[i].connected ? POLLIN : 0);
      p[i].revents = 0;
    }
    int r = poll(p, (nfds_t)n, 1000);
    CHECK(r >= 0, "poll");
    for (int i = 0; i < n; i++) {
      struct c *c = &cs[i];
      if (!p[i].revents)
        continue;
      if (!c->connected) {
        int err = 0;
        socklen_t el = sizeof(err);
        CHECK(getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el) == 0, "SO_ERROR #%d", i);
        errno = err;
        CHECK(err == 0, "connection #%d failed (after %d connected)", i, connected);
        c->connected = 1;
        connected++;
      }
      if (c->sent < MSG && (p[i].revents & POLLOUT)) {
        fill_pat(out, MSG, 0, (uint32_t)i);
        ssize_t w = write(c->fd, out + c->sent, MSG - c->sent);
        CHECK(w > 0 || errno == EAGAIN, "write #%d", i);
        if (w > 0)
          c->sent += (size_t)w;
      }
      if (p[i].revents & (POLLIN | POLLHUP | POLLERR)) {
        ssize_t rd = read(c->fd, c->in + c->rcvd, MSG - c->rcvd);
        CHECK(rd > 0 || (rd < 0 && errno == EAGAIN), "read #%d (%zu of %d echoed so far)", i, c->rcvd, MSG);
        if (rd > 0) {
          c->rcvd += (size_t)rd;
          if (c->rcvd == MSG) {
            CHECK(check_pat(c->in, MSG, 0, (uint32_t)i), "connection #%d: echo differs from what it sent", i);
            done++;
          }
        }
      }
    }
  }
  printf("echoed %d in %.1f s\n", n, (double)(now_ms() - t0) / 1000.0);
  fflush(stdout);
  if (argc > 4) {
    /* hold the idle connections, watching them (a program blocked in poll) */
    struct stat st;
    end = now_ms() + 120000;
    while (stat(argv[4], &st) != 0) {
      CHECK(now_ms() < end, "hold file %s did not appear", argv[4]);
      for (int i = 0; i < n; i++) {
        p[i].fd = cs[i].fd;
        p[i].events = POLLIN;
        p[i].revents = 0;
      }
      int r = poll(p, (nfds_t)n, 50);
      CHECK(r >= 0, "poll while holding");
      for (int i = 0; i < n && r > 0; i++) {
        if (!p[i].revents)
          continue;
        char b[16];
        ssize_t rd = read(cs[i].fd, b, sizeof(b));
        if (rd > 0)
          FAIL("connection #%d: unexpected data while idle", i);
        if (rd < 0 && errno == EAGAIN)
          continue;
        printf("aborted: idle connection #%d ended: %s\n", i, rd == 0 ? "EOF" : strerror(errno));
        return 2;
      }
    }
  }
  STEP("closing");
  for (int i = 0; i < n; i++) {
    set_nonblock(cs[i].fd, 0);
    CHECK(shutdown(cs[i].fd, SHUT_WR) == 0, "shutdown #%d", i);
  }
  for (int i = 0; i < n; i++) {
    expect_eof(cs[i].fd, 20000, "echo server closes after our FIN");
    CHECK(close(cs[i].fd) == 0, "close #%d", i);
  }
  free(cs);
  free(p);
  printf("ok\n");
  return 0;
}
