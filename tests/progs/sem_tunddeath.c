/*
 * sem_tunddeath — what a program sees on its connections when tund dies
 * (SIGKILL), checked against what Linux gives for a connection reset by the
 * peer (T_KERNEL=1: the peer resets with SO_LINGER 0 instead):
 *   a thread blocked in read(): -1 ECONNRESET;
 *   poll(): POLLIN and POLLHUP (Linux adds POLLERR; the shim cannot, see
 *   README "Errors a program can see");
 *   read(): ECONNRESET once, then 0 (end of file), never a clean 0 first;
 *   bytes that had arrived before the death: read first, then ECONNRESET;
 *   getsockopt(SO_ERROR): ECONNRESET once, then 0, and read() then says 0;
 *   write() after the error was reported: EPIPE (and SIGPIPE unless
 *   MSG_NOSIGNAL).
 * Usage: sem_tunddeath READY_FILE GO_FILE — with the shim it writes
 * READY_FILE once its connections are up and waits for GO_FILE (the script
 * kills tund A in between); with T_KERNEL=1 it resets the peers itself.
 */
#include <pthread.h>
#include <sys/stat.h>

#include "tprog.h"

#define NS 5
static int sfd[NS], kfd[NS];

static void *blocked_reader(void *arg)
{
  int fd = *(int *)arg;
  char b[256];
  errno = 0;
  ssize_t r = read(fd, b, sizeof(b));
  static int result[2];
  result[0] = (int)r;
  result[1] = errno;
  return result;
}

static void reset_peer(int k)
{
  struct linger lg = { .l_onoff = 1, .l_linger = 0 };
  CHECK(syscall(SYS_setsockopt, k, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)) == 0, "SO_LINGER");
  close(k);
}

int main(int argc, char **argv)
{
  tp_init("sem_tunddeath", 60);
  signal(SIGPIPE, SIG_IGN);
  CHECK(argc == 3 || kernel_mode(), "usage: sem_tunddeath READY_FILE GO_FILE");
  for (int i = 0; i < NS; i++)
    mkpair(&sfd[i], &kfd[i]);
  /* S3 (bytes pending): the peer's bytes are in our ring before the death */
  CHECK(syscall(SYS_write, kfd[3], "0123456789", 10) == 10, "peer write");
  CHECK(wait_fd(sfd[3], POLLIN, 10000) & POLLIN, "S3: the peer's bytes did not arrive");
  pthread_t th;
  CHECK(pthread_create(&th, NULL, blocked_reader, &sfd[0]) == 0, "pthread_create");
  msleep(200);                 /* the reader is blocked in read() */

  STEP("the death");
  if (kernel_mode()) {
    for (int i = 0; i < NS; i++)
      reset_peer(kfd[i]);
  } else {
    FILE *f = fopen(argv[1], "w");
    CHECK(f != NULL, "ready file");
    fclose(f);
    struct stat st;
    int64_t end = now_ms() + 30000;
    while (stat(argv[2], &st) != 0) {
      CHECK(now_ms() < end, "no go file within 30 s");
      msleep(20);
    }
  }

  STEP("S0: a thread blocked in read()");
  void *res;
  CHECK(pthread_join(th, &res) == 0, "pthread_join");
  errno = ((int *)res)[1];
  CHECK(((int *)res)[0] == -1 && errno == ECONNRESET, "S0: blocked read() returned %d, expected -1 ECONNRESET",
        ((int *)res)[0]);

  STEP("S1: poll, then read twice, then write");
  int ev = wait_fd(sfd[1], POLLIN | POLLOUT | POLLRDHUP, 5000);
  CHECK((ev & (POLLIN | POLLHUP)) == (POLLIN | POLLHUP), "S1: poll gave %#x, expected POLLIN|POLLHUP in it", ev);
  if (tp_verbose)
    fprintf(stderr, "  poll revents %#x (POLLERR %s)\n", ev, ev & POLLERR ? "yes" : "no");
  char b[64];
  errno = 0;
  ssize_t r = read(sfd[1], b, sizeof(b));
  CHECK(r == -1 && errno == ECONNRESET, "S1: first read returned %zd, expected -1 ECONNRESET", r);
  r = read(sfd[1], b, sizeof(b));
  CHECK(r == 0, "S1: second read returned %zd, expected 0 (end of file)", r);
  errno = 0;
  r = send(sfd[1], "x", 1, MSG_NOSIGNAL);
  CHECK(r == -1 && errno == EPIPE, "S1: send after the reset returned %zd, expected -1 EPIPE", r);

  STEP("S2: SO_ERROR first");
  int e = -1;
  socklen_t el = sizeof(e);
  CHECK(getsockopt(sfd[2], SOL_SOCKET, SO_ERROR, &e, &el) == 0, "S2: SO_ERROR");
  errno = e;
  CHECK(e == ECONNRESET, "S2: SO_ERROR gave %d, expected ECONNRESET", e);
  el = sizeof(e);
  CHECK(getsockopt(sfd[2], SOL_SOCKET, SO_ERROR, &e, &el) == 0 && e == 0, "S2: SO_ERROR again gave %d, expected 0", e);
  r = read(sfd[2], b, sizeof(b));
  CHECK(r == 0, "S2: read after SO_ERROR returned %zd, expected 0", r);

  STEP("S3: bytes that arrived before, then the error");
  r = read(sfd[3], b, sizeof(b));
  CHECK(r == 10 && !memcmp(b, "0123456789", 10), "S3: read returned %zd, expected the 10 bytes", r);
  errno = 0;
  r = read(sfd[3], b, sizeof(b));
  CHECK(r == -1 && errno == ECONNRESET, "S3: read after the bytes returned %zd, expected -1 ECONNRESET", r);

  STEP("S4: non-blocking read");
  set_nonblock(sfd[4], 1);
  errno = 0;
  r = read(sfd[4], b, sizeof(b));
  CHECK(r == -1 && errno == ECONNRESET, "S4: non-blocking read returned %zd, expected -1 ECONNRESET", r);
  for (int i = 0; i < NS; i++)
    close(sfd[i]);
  if (!kernel_mode())
    for (int i = 0; i < NS; i++)
      close(kfd[i]);
  printf("ok\n");
  return 0;
}
