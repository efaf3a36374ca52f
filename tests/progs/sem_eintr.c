/*
 * sem_eintr — signals and blocking shim calls:
 *   without SA_RESTART a signal interrupts a blocking read, write (ring
 *   full), accept and connect-less waits with EINTR; with SA_RESTART the
 *   read and accept are restarted transparently and return the data / the
 *   connection that came after the signal.  SO_RCVTIMEO makes a blocking
 *   read return EAGAIN after the timeout.
 * The signal comes from a helper thread (pthread_kill to the main thread),
 * the data from another one later.
 */
#include <pthread.h>

#include "tprog.h"

static volatile sig_atomic_t hits;
static void on_sig(int sig) { (void)sig; hits++; }
static pthread_t main_thread;

static void handler(int restart)
{
  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = on_sig;
  sa.sa_flags = restart ? SA_RESTART : 0;
  CHECK(sigaction(SIGUSR1, &sa, NULL) == 0, "sigaction");
}

struct later { int delay_sig; int delay_act; int fd; int what; int port; };

/* what: 0 nothing, 1 write "data!" to fd, 2 connect to LWIP4:port (kernel) */
static void *later_thread(void *arg)
{
  struct later *l = arg;
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, NULL);
  msleep(l->delay_sig);
  pthread_kill(main_thread, SIGUSR1);
  if (l->what) {
    msleep(l->delay_act);
    if (l->what == 1)
      CHECK(write(l->fd, "data!", 5) == 5, "later: write");
    else
      l->fd = k_connect(AF_INET, LWIP4, l->port);
  }
  return NULL;
}

static pthread_t start_later(struct later *l)
{
  pthread_t t;
  CHECK(pthread_create(&t, NULL, later_thread, l) == 0, "pthread_create");
  return t;
}

int main(void)
{
  int s, k;
  char buf[64];
  tp_init("sem_eintr", 120);
  main_thread = pthread_self();
  mkpair_fam(AF_INET, 16384, &s, &k);

  STEP("read interrupted without SA_RESTART: EINTR");
  handler(0);
  struct later l1 = { 200, 0, k, 0, 0 };
  pthread_t t = start_later(&l1);
  int64_t t0 = now_ms();
  ssize_t r = read(s, buf, sizeof(buf));
  int e = errno;
  pthread_join(t, NULL);
  errno = e;
  CHECK(r < 0 && e == EINTR, "blocking read + signal without SA_RESTART: returned %zd", r);
  CHECK(hits == 1, "handler ran %d times", (int)hits);
  CHECK(now_ms() - t0 >= 150, "read returned too early");

  STEP("read with SA_RESTART: restarted, returns the data sent after the signal");
  handler(1);
  struct later l2 = { 200, 300, k, 1, 0 };
  t = start_later(&l2);
  t0 = now_ms();
  r = read(s, buf, sizeof(buf));
  e = errno;
  pthread_join(t, NULL);
  errno = e;
  CHECK(r == 5 && !memcmp(buf, "data!", 5), "read with SA_RESTART returned %zd", r);
  CHECK(hits == 2, "handler ran %d times", (int)hits);
  CHECK(now_ms() - t0 >= 400, "read returned before the data was sent");

  STEP("recv with SO_RCVTIMEO: EAGAIN after the timeout");
  struct timeval tv = { 0, 300000 };
  CHECK(setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) == 0, "SO_RCVTIMEO");
  t0 = now_ms();
  r = recv(s, buf, sizeof(buf), 0);
  int64_t dt = now_ms() - t0;
  CHECK(r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK), "recv with SO_RCVTIMEO: %zd", r);
  CHECK(dt >= 250 && dt < 3000, "SO_RCVTIMEO 300 ms: returned after %lld ms", (long long)dt);
  tv.tv_usec = 0;
  CHECK(setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) == 0, "SO_RCVTIMEO off");

  STEP("write blocked on a full socket, interrupted without SA_RESTART: EINTR");
  handler(0);
  size_t filled = fill_until_stuck(s, 700, 20000);
  set_nonblock(s, 0);
  struct later l3 = { 300, 0, k, 0, 0 };
  t = start_later(&l3);
  static uint8_t blob[1 << 20];
  t0 = now_ms();
  r = write(s, blob, sizeof(blob));
  e = errno;
  pthread_join(t, NULL);
  errno = e;
  CHECK((r < 0 && e == EINTR) || (r > 0 && r < (ssize_t)sizeof(blob)),
        "blocked write + signal: returned %zd (expected EINTR or a partial count)", r);
  CHECK(hits == 3, "handler ran %d times", (int)hits);
  if (r > 0)
    filled += (size_t)r;
  size_t got = 0;
  int64_t end = now_ms() + 10000;
  while (got < filled) {
    CHECK(now_ms() < end, "peer got %zu of %zu", got, filled);
    wait_fd(k, POLLIN, 100);
    got += drain_now(k);
  }
  CHECK(got == filled, "peer got %zu, %zu written", got, filled);

  STEP("accept interrupted without SA_RESTART: EINTR; with SA_RESTART: the later client");
  int port = 0;
  int l = s_listen(AF_INET, NULL, &port);
  struct later l4 = { 200, 0, -1, 0, 0 };
  t = start_later(&l4);
  int a = accept(l, NULL, NULL);
  e = errno;
  pthread_join(t, NULL);
  errno = e;
  CHECK(a < 0 && e == EINTR, "blocking accept + signal without SA_RESTART: returned %d", a);
  handler(1);
  struct later l5 = { 200, 300, -1, 2, port };
  t = start_later(&l5);
  t0 = now_ms();
  a = accept(l, NULL, NULL);
  e = errno;
  pthread_join(t, NULL);
  errno = e;
  CHECK(a >= 0, "accept with SA_RESTART");
  CHECK(now_ms() - t0 >= 400, "accept returned before the client came");
  CHECK(hits == 5, "handler ran %d times", (int)hits);
  xfer_check(a, l5.fd, 10000, 71, "accepted after a restarted accept");
  close(a);
  close(l5.fd);
  close(l);
  close(s);
  close(k);
  printf("ok\n");
  return 0;
}
