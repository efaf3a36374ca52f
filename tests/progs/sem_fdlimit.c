/*
 * sem_fdlimit — socket() and accept() at the program's RLIMIT_NOFILE, as on
 * Linux:
 *   socket() with no descriptor free: EMFILE (several times), never
 *   ENETDOWN, and with ENOSHIM_FALLBACK=plain never a plain kernel socket;
 *   once two descriptors are free again socket() works and is the shim's
 *   (the control connection survived);
 *   accept() with a connection queued but no descriptor free: EMFILE, the
 *   listener still readable, again EMFILE; once descriptors are free the
 *   same connection is accepted intact — the bytes its client sent before
 *   and after — with the client's address; both kinds: a connection through
 *   tund (lwIP's address) and one from the kernel side (127.0.0.1);
 *   accept() on a non-blocking listener with nothing queued and no
 *   descriptor free: EMFILE (the kernel takes the descriptor first);
 *   no descriptor is left behind (the fd count before and after).
 * tund keeps nothing of the sockets it made and could not hand over (the
 * script checks tund's table afterwards).
 */
#include <dirent.h>

#include "tprog.h"

#define MAXFILL 4096
static int fill[MAXFILL], nfill;

/* The program's descriptors: those below 512 (the shim keeps its own high,
 * at 900 and up: the control and doorbell connections) */
static int count_fds(void)
{
  DIR *d = opendir("/proc/self/fd");
  struct dirent *de;
  int n = 0;
  CHECK(d != NULL, "opendir /proc/self/fd");
  while ((de = readdir(d)))
    if (de->d_name[0] != '.' && atoi(de->d_name) < 512)
      n++;
  closedir(d);
  return n;
}

/* Take every free descriptor below the (lowered) limit. */
static void fill_up(void)
{
  for (;;) {
    CHECK(nfill < MAXFILL, "more than %d free descriptors under the limit", MAXFILL);
    int d = fcntl(0, F_DUPFD_CLOEXEC, 0);
    if (d < 0) {
      CHECK(errno == EMFILE, "filling the descriptor table");
      return;
    }
    fill[nfill++] = d;
  }
}

/* Free n descriptors (the highest-numbered ones we took). */
static void free_some(int n)
{
  for (int i = 0; i < n; i++) {
    CHECK(nfill > 0, "nothing left to free");
    close(fill[--nfill]);
  }
}

static void free_all(void)
{
  while (nfill > 0)
    close(fill[--nfill]);
}

static void expect_emfile_socket(const char *what)
{
  errno = 0;
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  CHECK(fd < 0, "%s: socket() at the limit succeeded (fd %d%s)", what, fd,
        fd >= 0 && !is_shim_fd(fd) ? ", a plain kernel socket" : "");
  CHECK(errno == EMFILE, "%s: socket() at the limit: expected EMFILE", what);
}

static void expect_emfile_accept(int l, const char *what)
{
  errno = 0;
  int fd = accept(l, NULL, NULL);
  CHECK(fd < 0, "%s: accept() at the limit succeeded (fd %d)", what, fd);
  CHECK(errno == EMFILE, "%s: accept() at the limit: expected EMFILE", what);
  errno = 0;
  fd = accept4(l, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
  CHECK(fd < 0 && errno == EMFILE, "%s: accept4() at the limit: expected EMFILE", what);
}

/* A connected raw kernel socket fd (made before the limit) to ip:port. */
static void k_connect_fd(int fd, const char *ip, int port)
{
  struct sockaddr_storage ss;
  socklen_t l = mkaddr(AF_INET, ip, port, &ss);
  CHECK(syscall(SYS_connect, fd, &ss, l) == 0, "kernel connect to %s:%d", ip, port);
}

/* Queue a connection from kclient (bytes `before` sent), hit EMFILE on
 * accept, free `room` descriptors, accept it, check it whole. */
static void accept_case(int l, int kclient, const char *ip, int port, int room, uint32_t seed, const char *what)
{
  static uint8_t out[8192], in[8192];
  k_connect_fd(kclient, ip, port);
  fill_pat(out, sizeof(out), 0, seed);
  CHECK(syscall(SYS_write, kclient, out, 4096) == 4096, "%s: client write", what);
  CHECK(wait_fd(l, POLLIN, 10000) & POLLIN, "%s: listener not readable within 10 s", what);
  expect_emfile_accept(l, what);
  CHECK(wait_fd(l, POLLIN, 0) & POLLIN, "%s: listener no longer readable after EMFILE: connection lost", what);
  expect_emfile_accept(l, what);
  free_some(room);
  struct sockaddr_storage peer, mine;
  socklen_t pl = sizeof(peer), ml = sizeof(mine);
  int a = accept(l, (struct sockaddr *)&peer, &pl);
  CHECK(a >= 0, "%s: accept with %d descriptor(s) free", what, room);
  CHECK(syscall(SYS_getsockname, kclient, &mine, &ml) == 0, "getsockname(client)");
  char b1[80], b2[80];
  CHECK(sa_equal(&peer, &mine), "%s: accept() says the peer is %s, the client is %s", what,
        sa_str(&peer, b1, sizeof(b1)), sa_str(&mine, b2, sizeof(b2)));
  read_exact(a, in, 4096, 10000, what);
  CHECK(check_pat(in, 4096, 0, seed), "%s: bytes sent before accept() differ", what);
  CHECK(syscall(SYS_write, kclient, out + 4096, 4096) == 4096, "%s: client write", what);
  read_exact(a, in, 4096, 10000, what);
  CHECK(check_pat(in, 4096, 4096, seed), "%s: bytes sent after accept() differ", what);
  write_all(a, "pong", 4, 10000, what);
  char pong[4];
  int64_t end = now_ms() + 10000;
  size_t got = 0;
  while (got < 4 && now_ms() < end) {
    wait_fd(kclient, POLLIN, 200);
    ssize_t r = syscall(SYS_read, kclient, pong + got, 4 - got);
    CHECK(r > 0, "%s: client read", what);
    got += (size_t)r;
  }
  CHECK(got == 4 && !memcmp(pong, "pong", 4), "%s: the reply did not reach the client", what);
  close(a);
  close(kclient);
}

int main(void)
{
  tp_init("sem_fdlimit", 120);
  struct rlimit rl0, rl;
  CHECK(getrlimit(RLIMIT_NOFILE, &rl0) == 0, "getrlimit");

  STEP("a listener on any address; a few sockets made and closed");
  int port = 0;
  int l = s_listen(AF_INET, NULL, &port);
  for (int i = 0; i < 3; i++) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(fd >= 0, "socket");
    require_shim(fd, "socket()");
    close(fd);
  }
  msleep(100);
  /* clients made before the limit: their connect() needs no new descriptor */
  int kc_tund = k_socket(AF_INET, SOCK_STREAM);
  int kc_kernel = k_socket(AF_INET, SOCK_STREAM);
  int kc_third = k_socket(AF_INET, SOCK_STREAM);
  CHECK(kc_tund >= 0 && kc_kernel >= 0 && kc_third >= 0, "kernel sockets");
  int fds_before = count_fds();

  /* the limit: a little above what is open, then every free one taken */
  int low = fcntl(0, F_DUPFD_CLOEXEC, 0);
  CHECK(low >= 0, "dup");
  close(low);
  rl = rl0;
  rl.rlim_cur = (rlim_t)low + 16;
  CHECK(setrlimit(RLIMIT_NOFILE, &rl) == 0, "setrlimit(%d)", low + 16);
  fill_up();
  STEP("at the limit (%d descriptors taken): socket()", nfill);
  for (int i = 0; i < 4; i++)
    expect_emfile_socket("socket()");
  STEP("two descriptors free: socket() works and is the shim's");
  free_some(2);
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  CHECK(fd >= 0, "socket() with two descriptors free");
  require_shim(fd, "socket() after EMFILE");
  close(fd);
  fill_up();
  expect_emfile_socket("socket() again");

  STEP("non-blocking listener, nothing queued, no descriptor free: accept() says EMFILE");
  set_nonblock(l, 1);
  errno = 0;
  CHECK(accept(l, NULL, NULL) < 0 && errno == EMFILE, "accept() on an empty listener at the limit: expected EMFILE");
  set_nonblock(l, 0);

  STEP("a connection through lwIP's address queued at the limit: EMFILE, then accepted intact");
  accept_case(l, kc_tund, LWIP4, port, 2, 11, "lwIP's address");
  fill_up();
  STEP("a connection from the kernel side (127.0.0.1) queued at the limit");
  accept_case(l, kc_kernel, "127.0.0.1", port, 1, 12, "127.0.0.1");
  fill_up();
  STEP("once more through lwIP, with two descriptors freed");
  accept_case(l, kc_third, LWIP4, port, 2, 13, "lwIP's address, again");

  free_all();
  CHECK(setrlimit(RLIMIT_NOFILE, &rl0) == 0, "setrlimit (restore)");
  int fds_after = count_fds();
  /* the three client sockets were closed by accept_case */
  CHECK(fds_after == fds_before - 3, "descriptors: %d before, %d after (3 clients closed): a leak",
        fds_before, fds_after);
  STEP("afterwards: a connection round trip");
  int port2 = port;
  int k = k_connect(AF_INET, LWIP4, port2);
  CHECK(wait_fd(l, POLLIN, 10000) & POLLIN, "listener not readable");
  int a = accept(l, NULL, NULL);
  CHECK(a >= 0, "accept");
  xfer_check(a, k, 100000, 5, "after the limit");
  close(a);
  close(k);
  close(l);
  printf("ok\n");
  return 0;
}
