/*
 * sem_msgflags — recv/send flags and SIGPIPE on shim sockets:
 *   MSG_PEEK (leaves data; blocks on an empty blocking socket until data),
 *   MSG_DONTWAIT (on a blocking socket: EAGAIN instead of blocking, both
 *   ways), MSG_WAITALL (waits for everything, stops at EOF),
 *   SIGPIPE on writing after the peer closed (counted by a handler; with the
 *   default action the process dies of it), EPIPE without a signal with
 *   MSG_NOSIGNAL;
 *   MSG_FASTOPEN (connect and send in one call; Linux's answers with no Fast
 *   Open cookie for the peer: EINVAL without an address, the data sent by a
 *   blocking call, EINPROGRESS and nothing sent by a non-blocking one, whose
 *   next MSG_FASTOPEN send sends, EISCONN on a socket connected otherwise,
 *   ECONNREFUSED from a closed port; no SIGPIPE anywhere).
 */
#include <pthread.h>
#include <sys/wait.h>

#include "tprog.h"

static volatile sig_atomic_t n_sigpipe;
static void on_sigpipe(int sig) { (void)sig; n_sigpipe++; }

struct delayed { int fd; int delay_ms; int chunks; size_t chunk; };

static void *delayed_writer(void *arg)
{
  struct delayed *d = arg;
  uint8_t buf[4096];
  for (int i = 0; i < d->chunks; i++) {
    msleep(d->delay_ms);
    fill_pat(buf, d->chunk, (uint64_t)i * d->chunk, 61);
    CHECK(write(d->fd, buf, d->chunk) == (ssize_t)d->chunk, "delayed writer");
  }
  return NULL;
}

static void peek(void)
{
  int s, k;
  char buf[64];
  STEP("MSG_PEEK");
  mkpair(&s, &k);
  CHECK(recv(s, buf, 3, MSG_PEEK | MSG_DONTWAIT) < 0 && errno == EAGAIN, "MSG_PEEK|MSG_DONTWAIT without data");
  CHECK(write(k, "abcdef", 6) == 6, "peer write");
  int64_t end = now_ms() + 5000;
  ssize_t r;
  for (;;) {
    wait_fd(s, POLLIN, 200);
    r = recv(s, buf, 6, MSG_PEEK);
    CHECK(r > 0, "MSG_PEEK");
    if (r == 6)
      break;
    CHECK(now_ms() < end, "MSG_PEEK: only %zd of 6 bytes", r);
  }
  CHECK(!memcmp(buf, "abcdef", 6), "MSG_PEEK content");
  memset(buf, 0, sizeof(buf));
  CHECK(recv(s, buf, 3, MSG_PEEK) == 3 && !memcmp(buf, "abc", 3), "second MSG_PEEK");
  CHECK(recv(s, buf, 2, 0) == 2 && !memcmp(buf, "ab", 2), "read after peek");
  CHECK(recv(s, buf, 10, MSG_PEEK) == 4 && !memcmp(buf, "cdef", 4), "peek after a partial read");
  int n = -1;
  CHECK(ioctl(s, FIONREAD, &n) == 0 && n == 4, "FIONREAD after peeking: %d", n);
  CHECK(recv(s, buf, 10, 0) == 4 && !memcmp(buf, "cdef", 4), "read the rest");

  STEP("MSG_PEEK blocks until data on a blocking socket");
  struct delayed d = { k, 300, 1, 100 };
  pthread_t t;
  pthread_create(&t, NULL, delayed_writer, &d);
  int64_t t0 = now_ms();
  r = recv(s, buf, 50, MSG_PEEK);
  int64_t dt = now_ms() - t0;
  CHECK(r > 0, "blocking MSG_PEEK");
  CHECK(dt >= 200, "blocking MSG_PEEK returned after %lld ms, before the data was written", (long long)dt);
  pthread_join(t, NULL);
  uint8_t big[100];
  read_exact(s, big, 100, 5000, "data after blocking peek");
  CHECK(check_pat(big, 100, 0, 61), "content after blocking peek");
  close(s);
  close(k);
}

static void dontwait(void)
{
  int s, k;
  char buf[64];
  STEP("MSG_DONTWAIT on a blocking socket");
  mkpair_fam(AF_INET, 16384, &s, &k);
  int64_t t0 = now_ms();
  CHECK(recv(s, buf, sizeof(buf), MSG_DONTWAIT) < 0 && errno == EAGAIN, "recv(MSG_DONTWAIT) without data");
  CHECK(now_ms() - t0 < 500, "recv(MSG_DONTWAIT) blocked");
  CHECK(write(k, "x", 1) == 1, "peer write");
  CHECK(wait_fd(s, POLLIN, 5000) & POLLIN, "not readable");
  CHECK(recv(s, buf, sizeof(buf), MSG_DONTWAIT) == 1, "recv(MSG_DONTWAIT) with data");
  /* sending: fill with MSG_DONTWAIT until EAGAIN, never blocking */
  static uint8_t blob[65536];
  size_t total = 0;
  int64_t end = now_ms() + 20000;
  alarm(30);   /* a blocking send would hang here: the watchdog ends it */
  for (;;) {
    ssize_t w = send(s, blob, sizeof(blob), MSG_DONTWAIT);
    if (w < 0) {
      CHECK(errno == EAGAIN, "send(MSG_DONTWAIT) after %zu bytes", total);
      if (wait_fd(s, POLLOUT, 700) & POLLOUT)
        continue;      /* still draining into the network */
      break;
    }
    total += (size_t)w;
    CHECK(now_ms() < end, "send(MSG_DONTWAIT) never reported EAGAIN (%zu bytes)", total);
  }
  int fl = fcntl(s, F_GETFL);
  CHECK(!(fl & O_NONBLOCK), "MSG_DONTWAIT changed the fd's flags");
  size_t got = 0;
  end = now_ms() + 10000;
  while (got < total) {
    CHECK(now_ms() < end, "peer got %zu of %zu", got, total);
    wait_fd(k, POLLIN, 100);
    got += drain_now(k);
  }
  close(s);
  close(k);
}

static void waitall(void)
{
  int s, k;
  uint8_t buf[8192];
  STEP("MSG_WAITALL collects 4 chunks written 150 ms apart");
  mkpair(&s, &k);
  struct delayed d = { k, 150, 4, 1000 };
  pthread_t t;
  pthread_create(&t, NULL, delayed_writer, &d);
  int64_t t0 = now_ms();
  ssize_t r = recv(s, buf, 4000, MSG_WAITALL);
  int64_t dt = now_ms() - t0;
  pthread_join(t, NULL);
  CHECK(r == 4000, "MSG_WAITALL returned %zd of 4000", r);
  CHECK(dt >= 400, "MSG_WAITALL returned after %lld ms", (long long)dt);
  CHECK(check_pat(buf, 4000, 0, 61), "MSG_WAITALL content");
  STEP("MSG_WAITALL stops at EOF");
  CHECK(write(k, buf, 100) == 100, "peer write");
  CHECK(shutdown(k, SHUT_WR) == 0, "peer shutdown");
  r = recv(s, buf, 1000, MSG_WAITALL);
  CHECK(r == 100, "MSG_WAITALL at EOF returned %zd, expected 100", r);
  CHECK(recv(s, buf, 1000, MSG_WAITALL) == 0, "MSG_WAITALL after EOF");
  close(s);
  close(k);
}

/* Write until a write fails; returns its errno.  Bounded. */
static int write_until_error(int s, int flags, const char *what)
{
  char buf[1024];
  memset(buf, 'p', sizeof(buf));
  int64_t end = now_ms() + 10000;
  for (;;) {
    ssize_t w = flags < 0 ? write(s, buf, sizeof(buf)) : send(s, buf, sizeof(buf), flags);
    if (w < 0)
      return errno;
    CHECK(now_ms() < end, "%s: writes kept succeeding for 10 s after the peer closed", what);
    msleep(20);
  }
}

static void sigpipe(void)
{
  int s, k;
  STEP("SIGPIPE after the peer closed");
  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = on_sigpipe;
  sigaction(SIGPIPE, &sa, NULL);
  mkpair(&s, &k);
  close(k);
  expect_eof(s, 5000, "EOF after the peer's close");
  int e = write_until_error(s, 0, "send");
  errno = e;
  CHECK(e == EPIPE, "first failing send after the peer closed: errno %d, expected EPIPE (Linux: the RST "
        "answering data in CLOSE_WAIT is reported as EPIPE)", e);
  CHECK(n_sigpipe >= 1, "no SIGPIPE with the EPIPE");
  int before = n_sigpipe;
  ssize_t w = send(s, "x", 1, MSG_NOSIGNAL);
  CHECK(w < 0 && errno == EPIPE, "send(MSG_NOSIGNAL) afterwards: %zd, expected EPIPE", w);
  CHECK(n_sigpipe == before, "SIGPIPE despite MSG_NOSIGNAL");
  w = write(s, "x", 1);
  CHECK(w < 0 && errno == EPIPE, "write() afterwards: %zd, expected EPIPE", w);
  CHECK(n_sigpipe == before + 1, "write() afterwards: %d SIGPIPEs, expected one more", (int)(n_sigpipe - before));
  close(s);

  STEP("MSG_NOSIGNAL from the start: EPIPE and no signal at all");
  mkpair(&s, &k);
  close(k);
  expect_eof(s, 5000, "EOF");
  before = n_sigpipe;
  e = write_until_error(s, MSG_NOSIGNAL, "send(MSG_NOSIGNAL)");
  errno = e;
  CHECK(e == EPIPE, "send(MSG_NOSIGNAL) after the peer closed: errno %d, expected EPIPE", e);
  CHECK(n_sigpipe == before, "SIGPIPE despite MSG_NOSIGNAL");
  close(s);

  STEP("default SIGPIPE action kills the writer");
  mkpair(&s, &k);
  pid_t pid = fork();
  CHECK(pid >= 0, "fork");
  if (pid == 0) {
    signal(SIGPIPE, SIG_DFL);
    close(k);
    msleep(100);
    int err = write_until_error(s, -1, "child write");
    fprintf(stderr, "FAIL sem_msgflags(child): write failed with errno %d and SIGPIPE did not kill me\n", err);
    _exit(3);
  }
  close(s);
  close(k);
  int st;
  CHECK(waitpid(pid, &st, 0) == pid, "waitpid");
  CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGPIPE, "writer not killed by SIGPIPE (status 0x%x)", st);
}

/* one byte from the kernel's side of the pair, within 5 s */
static void expect_byte(int k, char want, const char *what)
{
  char c = 0;
  CHECK(wait_fd(k, POLLIN, 5000) & POLLIN, "%s: nothing arrived", what);
  CHECK(read(k, &c, 1) == 1 && c == want, "%s: got '%c', want '%c'", what, c, want);
}

static void fastopen(void)
{
  struct sockaddr_storage ss;
  int port = 0, s, k;
  int l = k_listen(AF_INET, HOST4, &port, 0);
  socklen_t al = mkaddr(AF_INET, HOST4, port, &ss);
  int before = n_sigpipe;

  STEP("MSG_FASTOPEN without an address on a new socket: EINVAL");
  s = socket(AF_INET, SOCK_STREAM, 0);
  require_shim(s, "socket()");
  CHECK(send(s, "x", 1, MSG_FASTOPEN) < 0 && errno == EINVAL, "send(MSG_FASTOPEN): errno %d, want EINVAL", errno);
  CHECK(sendto(s, "x", 1, MSG_FASTOPEN, NULL, 0) < 0 && errno == EINVAL, "sendto(MSG_FASTOPEN, no address)");

  STEP("MSG_FASTOPEN, blocking: connects, sends, says the count");
  CHECK(sendto(s, "a", 1, MSG_FASTOPEN, (struct sockaddr *)&ss, al) == 1, "sendto(MSG_FASTOPEN): errno %d", errno);
  k = k_accept(l, 10000);
  expect_byte(k, 'a', "blocking MSG_FASTOPEN");
  CHECK(sendto(s, "b", 1, MSG_FASTOPEN, (struct sockaddr *)&ss, al) < 0 && errno == EISCONN,
        "MSG_FASTOPEN again on the connected socket: errno %d, want EISCONN", errno);
  CHECK(send(s, "b", 1, MSG_FASTOPEN) < 0 && errno == EISCONN, "send(MSG_FASTOPEN) on the connected socket");
  CHECK(send(s, "c", 1, 0) == 1, "plain send afterwards");
  expect_byte(k, 'c', "send after MSG_FASTOPEN");
  close(s);
  close(k);

  STEP("MSG_FASTOPEN|MSG_DONTWAIT: EINPROGRESS, nothing sent; once connected the next one sends");
  s = socket(AF_INET, SOCK_STREAM, 0);
  CHECK(sendto(s, "d", 1, MSG_FASTOPEN | MSG_DONTWAIT, (struct sockaddr *)&ss, al) < 0 && errno == EINPROGRESS,
        "non-blocking MSG_FASTOPEN: errno %d, want EINPROGRESS", errno);
  CHECK(wait_fd(s, POLLOUT, 10000) & POLLOUT, "not writable once connected");
  k = k_accept(l, 10000);
  char c;
  CHECK(recv(k, &c, 1, MSG_DONTWAIT) < 0 && errno == EAGAIN, "the EINPROGRESS call sent data");
  struct iovec iov = { "e", 1 };
  struct msghdr m = { .msg_name = &ss, .msg_namelen = al, .msg_iov = &iov, .msg_iovlen = 1 };
  CHECK(sendmsg(s, &m, MSG_FASTOPEN) == 1, "sendmsg(MSG_FASTOPEN) once connected: errno %d", errno);
  expect_byte(k, 'e', "MSG_FASTOPEN after EINPROGRESS");
  close(s);
  close(k);
  close(l);

  STEP("MSG_FASTOPEN to a closed port: ECONNREFUSED");
  s = socket(AF_INET, SOCK_STREAM, 0);
  CHECK(sendto(s, "f", 1, MSG_FASTOPEN, (struct sockaddr *)&ss, al) < 0 && errno == ECONNREFUSED,
        "MSG_FASTOPEN to a closed port: errno %d, want ECONNREFUSED", errno);
  close(s);
  CHECK(n_sigpipe == before, "SIGPIPE from MSG_FASTOPEN");
}

int main(void)
{
  tp_init("sem_msgflags", 120);
  peek();
  dontwait();
  alarm(120);
  waitall();
  sigpipe();
  fastopen();
  printf("ok\n");
  return 0;
}
