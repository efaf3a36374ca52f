/*
 * sem_threads HOST PORT — threads and shim sockets, against echo_srv:
 *   8 threads start together, each makes its own connection (concurrent
 *   control requests) and streams 4 MiB through the echo server, checking
 *   every byte that comes back;
 *   then one connection shared by two threads: one blocks in write() while
 *   the other blocks in read() (a proxy's usual shape), 8 MiB.
 */
#include <pthread.h>

#include "tprog.h"

#define NT 8
#define PER (4u << 20)

static const char *host;
static int port, fam;
static pthread_barrier_t start;

static void *worker(void *arg)
{
  int id = (int)(intptr_t)arg;
  pthread_barrier_wait(&start);
  int s = s_connect(fam, host, port);
  int one = 1;
  CHECK(setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) == 0, "thread %d: setsockopt", id);
  set_nonblock(s, 1);
  static __thread uint8_t out[65536], in[65536];
  size_t sent = 0, rcvd = 0;
  int64_t end = now_ms() + 90000;
  while (rcvd < PER) {
    CHECK(now_ms() < end, "thread %d: %zu sent, %zu echoed of %u after 90 s", id, sent, rcvd, PER);
    struct pollfd p = { s, (short)(POLLIN | (sent < PER ? POLLOUT : 0)), 0 };
    poll(&p, 1, 500);
    if (sent < PER && (p.revents & POLLOUT)) {
      size_t n = PER - sent < sizeof(out) ? PER - sent : sizeof(out);
      fill_pat(out, n, sent, (uint32_t)id + 200);
      ssize_t w = write(s, out, n);
      CHECK(w > 0 || errno == EAGAIN, "thread %d: write", id);
      if (w > 0)
        sent += (size_t)w;
    }
    if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
      ssize_t r = read(s, in, sizeof(in));
      CHECK(r > 0 || (r < 0 && errno == EAGAIN), "thread %d: read after %zu bytes", id, rcvd);
      if (r > 0) {
        CHECK(check_pat(in, (size_t)r, rcvd, (uint32_t)id + 200), "thread %d: echo differs at %zu", id, rcvd);
        rcvd += (size_t)r;
      }
    }
  }
  CHECK(shutdown(s, SHUT_WR) == 0, "thread %d: shutdown", id);
  set_nonblock(s, 0);
  expect_eof(s, 20000, "echo server's EOF");
  close(s);
  return NULL;
}

struct shared { int s; size_t n; };

static void *shared_writer(void *arg)
{
  struct shared *sh = arg;
  static uint8_t out[100000];
  size_t sent = 0;
  while (sent < sh->n) {
    size_t n = sh->n - sent < sizeof(out) ? sh->n - sent : sizeof(out);
    fill_pat(out, n, sent, 300);
    ssize_t w = write(sh->s, out, n);       /* blocking: the ring fills */
    CHECK(w > 0, "shared writer after %zu bytes", sent);
    sent += (size_t)w;
  }
  CHECK(shutdown(sh->s, SHUT_WR) == 0, "shared writer: shutdown");
  return NULL;
}

int main(int argc, char **argv)
{
  tp_init("sem_threads", 170);
  CHECK(argc == 3, "usage: sem_threads HOST PORT");
  host = argv[1];
  port = atoi(argv[2]);
  fam = strchr(host, ':') ? AF_INET6 : AF_INET;

  STEP("%d threads x %u bytes", NT, PER);
  pthread_t t[NT];
  pthread_barrier_init(&start, NULL, NT);
  int64_t t0 = now_ms();
  for (int i = 0; i < NT; i++)
    CHECK(pthread_create(&t[i], NULL, worker, (void *)(intptr_t)i) == 0, "pthread_create");
  for (int i = 0; i < NT; i++)
    pthread_join(t[i], NULL);
  STEP("threads done in %lld ms", (long long)(now_ms() - t0));

  STEP("one socket, a writer thread and a reader thread, both blocking");
  struct shared sh = { s_connect(fam, host, port), 8u << 20 };
  pthread_t w;
  CHECK(pthread_create(&w, NULL, shared_writer, &sh) == 0, "pthread_create");
  static uint8_t in[65536];
  size_t rcvd = 0;
  for (;;) {
    ssize_t r = read(sh.s, in, sizeof(in));   /* blocking, concurrent with the writer's write() */
    CHECK(r >= 0, "shared reader after %zu bytes", rcvd);
    if (r == 0)
      break;
    CHECK(check_pat(in, (size_t)r, rcvd, 300), "shared: echo differs at %zu", rcvd);
    rcvd += (size_t)r;
  }
  pthread_join(w, NULL);
  CHECK(rcvd == sh.n, "shared: %zu of %zu bytes echoed before EOF", rcvd, sh.n);
  close(sh.s);
  printf("ok\n");
  return 0;
}
