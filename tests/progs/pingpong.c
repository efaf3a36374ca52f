/*
 * pingpong HOST PORT [ROUNDS] — request/response latency through an echo
 * server (echo_srv, which does not set TCP_NODELAY, like most servers):
 * for message sizes 10 B, 1000 B, 5000 B, 20000 B and 60000 B, with and
 * without TCP_NODELAY on our side, ROUNDS (default 40) round trips each.
 * Linux (kernel sockets, same path) answers in well under a millisecond up
 * to 5000 B; larger messages, which echo_srv writes back in 16 KiB pieces,
 * wait for Linux's 40 ms delayed ACK under Nagle (median ~44 ms).  We allow
 * a median of 100 ms and 6 s per series, so only a stall that is
 * systematically worse than Linux's fails (e.g. Nagle holding a message's
 * last partial segment until a 250 ms delayed-ACK timer).
 */
#include "tprog.h"

static int cmp64(const void *a, const void *b)
{
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
  tp_init("pingpong", 170);
  CHECK(argc >= 3, "usage: pingpong HOST PORT [ROUNDS]");
  const char *host = argv[1];
  int port = atoi(argv[2]);
  int rounds = argc > 3 ? atoi(argv[3]) : 40;
  int fam = strchr(host, ':') ? AF_INET6 : AF_INET;
  static const size_t sizes[] = { 10, 1000, 5000, 20000, 60000 };
  static uint8_t out[60000], in[60000];
  int64_t lat[200];
  int bad = 0;
  for (int nodelay = 0; nodelay < 2; nodelay++) {
    int s = s_connect(fam, host, port);
    CHECK(setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &nodelay, sizeof(nodelay)) == 0, "TCP_NODELAY");
    for (size_t z = 0; z < sizeof(sizes) / sizeof(sizes[0]); z++) {
      size_t n = sizes[z];
      int64_t t0 = now_ms();
      int done = 0;
      for (int r = 0; r < rounds && r < 200; r++) {
        if (now_ms() - t0 > 6000)
          break;       /* already too slow: do not spend the test's time */
        fill_pat(out, n, (uint64_t)r * n, (uint32_t)n);
        struct timespec a, b;
        clock_gettime(CLOCK_MONOTONIC, &a);
        write_all(s, out, n, 10000, "request");
        read_exact(s, in, n, 10000, "response");
        clock_gettime(CLOCK_MONOTONIC, &b);
        CHECK(!memcmp(in, out, n), "echo differs");
        lat[r] = (b.tv_sec - a.tv_sec) * 1000000 + (b.tv_nsec - a.tv_nsec) / 1000;
        done++;
      }
      int64_t total = now_ms() - t0;
      qsort(lat, (size_t)done, sizeof(lat[0]), cmp64);
      int64_t med = lat[done / 2], max = lat[done - 1];
      int fail = med > 100000 || total > 6000 || done < rounds;
      printf("%s nodelay=%d size=%6zu: median %7.2f ms, max %7.2f ms, %d rounds in %lld ms\n",
             fail ? "SLOW" : "ok  ", nodelay, n, med / 1000.0, max / 1000.0, done, (long long)total);
      bad += fail;
    }
    close(s);
  }
  errno = 0;
  CHECK(!bad, "%d series with systematic request/response stalls (see SLOW lines)", bad);
  printf("ok\n");
  return 0;
}
