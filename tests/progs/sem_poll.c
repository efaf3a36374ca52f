/*
 * sem_poll — poll, ppoll, select and pselect on shim sockets: readable and
 * writable transitions, timeouts honoured, EOF and POLLRDHUP, a listener,
 * ppoll/pselect with a signal mask (a blocked signal does not interrupt them).
 * Peer: a kernel socket in this process.
 */
#include <sys/select.h>

#include "tprog.h"

static int poll1(int fd, short ev, int ms)
{
  struct pollfd p = { .fd = fd, .events = ev };
  int r = poll(&p, 1, ms);
  CHECK(r >= 0, "poll");
  return r ? p.revents : 0;
}

static int ppoll1(int fd, short ev, int ms, const sigset_t *mask)
{
  struct pollfd p = { .fd = fd, .events = ev };
  struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
  int r = ppoll(&p, 1, &ts, mask);
  CHECK(r >= 0, "ppoll");
  return r ? p.revents : 0;
}

/* select / pselect: returns bit 1 readable, bit 2 writable */
static int select1(int fd, int rd, int wr, int ms, int use_pselect, const sigset_t *mask)
{
  fd_set r, w;
  FD_ZERO(&r);
  FD_ZERO(&w);
  if (rd)
    FD_SET(fd, &r);
  if (wr)
    FD_SET(fd, &w);
  int n;
  if (use_pselect) {
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    n = pselect(fd + 1, &r, &w, NULL, &ts, mask);
  } else {
    struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
    n = select(fd + 1, &r, &w, NULL, &tv);
  }
  CHECK(n >= 0, "%s", use_pselect ? "pselect" : "select");
  return (FD_ISSET(fd, &r) ? 1 : 0) | (FD_ISSET(fd, &w) ? 2 : 0);
}

typedef int (*waitfn)(int fd, int rd, int wr, int ms);

static sigset_t usr1_blocked;
static volatile sig_atomic_t got_usr1;
static void on_usr1(int sig) { (void)sig; got_usr1++; }

static int w_poll(int fd, int rd, int wr, int ms)
{
  int re = poll1(fd, (short)((rd ? POLLIN : 0) | (wr ? POLLOUT : 0)), ms);
  return ((re & (POLLIN | POLLHUP | POLLERR)) && rd ? 1 : 0) | ((re & POLLOUT) ? 2 : 0);
}
static int w_ppoll(int fd, int rd, int wr, int ms)
{
  int re = ppoll1(fd, (short)((rd ? POLLIN : 0) | (wr ? POLLOUT : 0)), ms, &usr1_blocked);
  return ((re & (POLLIN | POLLHUP | POLLERR)) && rd ? 1 : 0) | ((re & POLLOUT) ? 2 : 0);
}
static int w_select(int fd, int rd, int wr, int ms) { return select1(fd, rd, wr, ms, 0, NULL); }
static int w_pselect(int fd, int rd, int wr, int ms) { return select1(fd, rd, wr, ms, 1, &usr1_blocked); }

static int wait_for(waitfn f, int fd, int rd, int wr, int bit, int ms)
{
  int64_t end = now_ms() + ms;
  do {
    int r = f(fd, rd, wr, 200);
    if (r & bit)
      return r;
  } while (now_ms() < end);
  return 0;
}

static void one_api(const char *name, waitfn f)
{
  int s, k;
  char buf[128];
  STEP("%s", name);
  mkpair_fam(AF_INET, 16384, &s, &k);

  CHECK(wait_for(f, s, 0, 1, 2, 5000), "%s: connected socket not writable", name);
  int64_t t0 = now_ms();
  int r = f(s, 1, 0, 300);
  int64_t dt = now_ms() - t0;
  CHECK(r == 0, "%s: readable without data", name);
  CHECK(dt >= 250, "%s: a 300 ms timeout returned after %lld ms", name, (long long)dt);

  CHECK(write(k, "hello", 5) == 5, "peer write");
  CHECK(wait_for(f, s, 1, 0, 1, 5000), "%s: not readable after the peer wrote", name);
  CHECK(f(s, 1, 0, 0) & 1, "%s: readability went away before reading", name);
  read_exact(s, buf, 5, 5000, name);
  CHECK(!memcmp(buf, "hello", 5), "%s: content", name);
  CHECK(f(s, 1, 0, 300) == 0, "%s: readable after draining", name);

  /* not writable while the peer does not read, writable after it reads */
  size_t filled = fill_until_stuck(s, 700, 20000);
  CHECK(!(f(s, 0, 1, 400) & 2), "%s: writable although the peer reads nothing", name);
  size_t drained = 0;
  int64_t end = now_ms() + 10000;
  for (;;) {
    drained += drain_now(k);
    if (f(s, 0, 1, 100) & 2)
      break;
    CHECK(now_ms() < end, "%s: not writable within 10 s after the peer read %zu bytes", name, drained);
  }
  end = now_ms() + 10000;
  while (drained < filled) {
    CHECK(now_ms() < end, "%s: peer got %zu of %zu bytes", name, drained, filled);
    wait_fd(k, POLLIN, 100);
    drained += drain_now(k);
  }
  CHECK(drained == filled, "%s: peer got %zu bytes, %zu were written", name, drained, filled);
  set_nonblock(s, 0);

  /* EOF is readable */
  CHECK(shutdown(k, SHUT_WR) == 0, "peer shutdown");
  CHECK(wait_for(f, s, 1, 0, 1, 5000), "%s: not readable after the peer's FIN", name);
  CHECK(read(s, buf, sizeof(buf)) == 0, "%s: read at EOF", name);
  CHECK(f(s, 1, 0, 0) & 1, "%s: EOF must stay readable", name);
  close(s);
  close(k);
}

static void signals_and_masks(void)
{
  int s, k;
  STEP("ppoll/pselect: a signal blocked by the mask waits; unblocked interrupts");
  mkpair(&s, &k);
  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = on_usr1;
  sigaction(SIGUSR1, &sa, NULL);
  sigset_t block_usr1;
  sigemptyset(&block_usr1);
  sigaddset(&block_usr1, SIGUSR1);
  /* block SIGUSR1 normally; ppoll's mask (empty) unblocks it while waiting */
  sigprocmask(SIG_BLOCK, &block_usr1, NULL);
  sigset_t empty;
  sigemptyset(&empty);
  kill(getpid(), SIGUSR1);        /* pending */
  struct pollfd p = { .fd = s, .events = POLLIN };
  struct timespec ts = { 2, 0 };
  int64_t t0 = now_ms();
  int r = ppoll(&p, 1, &ts, &empty);
  CHECK(r < 0 && errno == EINTR, "ppoll with the signal unblocked by its mask: r=%d", r);
  CHECK(now_ms() - t0 < 1500, "ppoll: EINTR came late");
  CHECK(got_usr1 == 1, "handler ran %d times", (int)got_usr1);
  kill(getpid(), SIGUSR1);
  fd_set rs;
  FD_ZERO(&rs);
  FD_SET(s, &rs);
  r = pselect(s + 1, &rs, NULL, NULL, &ts, &empty);
  CHECK(r < 0 && errno == EINTR, "pselect with the signal unblocked by its mask: r=%d", r);
  CHECK(got_usr1 == 2, "handler ran %d times", (int)got_usr1);
  /* data still works after the interruptions */
  CHECK(write(k, "z", 1) == 1, "peer write");
  ts.tv_sec = 5;
  r = ppoll(&p, 1, &ts, &block_usr1);
  CHECK(r == 1 && (p.revents & POLLIN), "ppoll after EINTR");
  sigprocmask(SIG_UNBLOCK, &block_usr1, NULL);
  close(s);
  close(k);
}

static void listener_and_rdhup(void)
{
  int port = 0;
  STEP("poll/select on a listener; POLLRDHUP");
  int l = s_listen(AF_INET, NULL, &port);
  CHECK(poll1(l, POLLIN, 300) == 0, "listener readable without a client");
  set_nonblock(l, 1);
  CHECK(accept4(l, NULL, NULL, SOCK_NONBLOCK) < 0 && (errno == EAGAIN || errno == EWOULDBLOCK),
        "accept on an empty non-blocking listener: expected EAGAIN");
  set_nonblock(l, 0);
  CHECK(select1(l, 1, 0, 100, 0, NULL) == 0, "select: listener readable without a client");
  int k = k_connect(AF_INET, LWIP4, port);
  CHECK(poll1(l, POLLIN, 5000) & POLLIN, "listener not readable with a client waiting");
  CHECK(select1(l, 1, 0, 1000, 0, NULL) & 1, "select: listener not readable with a client waiting");
  int s = accept(l, NULL, NULL);
  CHECK(s >= 0, "accept");
  CHECK(poll1(l, POLLIN, 300) == 0, "listener still readable after accept");
  CHECK(poll1(s, POLLRDHUP, 300) == 0, "POLLRDHUP before the peer's FIN");
  CHECK(shutdown(k, SHUT_WR) == 0, "peer shutdown");
  CHECK(poll1(s, POLLRDHUP, 5000) & POLLRDHUP, "no POLLRDHUP after the peer's FIN");
  close(s);
  close(k);
  close(l);
}

int main(void)
{
  tp_init("sem_poll", 120);
  sigemptyset(&usr1_blocked);
  sigaddset(&usr1_blocked, SIGUSR1);
  one_api("poll", w_poll);
  one_api("ppoll", w_ppoll);
  one_api("select", w_select);
  one_api("pselect", w_pselect);
  signals_and_masks();
  listener_and_rdhup();
  printf("ok\n");
  return 0;
}
