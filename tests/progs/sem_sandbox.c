/*
 * sem_sandbox — an established shim socket used by a child under a seccomp
 * filter that allows what OpenSSH's pre-authentication sandbox allows
 * (sandbox-seccomp-filter.c of OpenSSH 9.2, Debian 12's, x86_64): read,
 * write, writev, poll/ppoll/select/pselect6, futex, clock and sleep calls,
 * memory calls, rt_sigprocmask, shutdown, close, exit; open/stat-like calls
 * fail with EACCES; anything else — recvfrom, sendto, sendmsg, recvmsg,
 * fcntl, ioctl, getsockopt, tgkill, sched_yield, socket, connect — kills.
 * Here "kills" is SIGSYS to a handler that prints the system call's number.
 *
 * As in sshd, the socket is made (connected, or accepted) in the parent, the
 * child is forked (it has no control connection of its own and may not make
 * one), SIGPIPE is ignored, and the child runs the connection:
 *   1. a blocking read waits for the peer's bytes;
 *   2. 8 MiB written while the peer does not read yet (the tx ring fills:
 *      filler and the wait for tund's drain);
 *   3. 8 MiB read slowly (the rx ring fills: tund waits for room, the
 *      program rings its doorbell);
 *   4. 300 request/response round trips; readv/writev;
 *   5. the peer's FIN: read returns 0;
 *   6. the peer closes: writes end in ECONNRESET/EPIPE (SIGPIPE ignored);
 * once with a blocking socket and read/write, once with O_NONBLOCK (set
 * before the sandbox, as sshd does) and poll.
 */
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/uio.h>
#include <sys/wait.h>

#include "tprog.h"

#define ALLOW(nr) BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (nr), 0, 1), BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)
#define EACCES_(nr) BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (nr), 0, 1), \
                    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EACCES & SECCOMP_RET_DATA))

static void on_sigsys(int sig, siginfo_t *si, void *ctx)
{
  (void)sig;
  (void)ctx;
  char m[120];
  int n = snprintf(m, sizeof(m), "FAIL sem_sandbox: system call %d is not allowed in the sandbox\n",
                   si->si_syscall);
  ssize_t w = write(2, m, (size_t)n);
  (void)w;
  syscall(SYS_exit_group, 97);    /* not _exit(): a sanitizer's exit path makes calls of its own */
}

static void sandbox(void)
{
  struct sock_filter f[] = {
    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_TRAP),
    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
    EACCES_(SYS_open), EACCES_(SYS_openat), EACCES_(SYS_stat), EACCES_(SYS_lstat), EACCES_(SYS_fstat),
    EACCES_(SYS_newfstatat), EACCES_(SYS_statx), EACCES_(SYS_shmget), EACCES_(SYS_shmat), EACCES_(SYS_shmdt),
    ALLOW(SYS_brk), ALLOW(SYS_clock_gettime), ALLOW(SYS_close), ALLOW(SYS_exit), ALLOW(SYS_exit_group),
    ALLOW(SYS_futex), ALLOW(SYS_geteuid), ALLOW(SYS_getpgid), ALLOW(SYS_getpid), ALLOW(SYS_getrandom),
    ALLOW(SYS_gettid), ALLOW(SYS_gettimeofday), ALLOW(SYS_getuid), ALLOW(SYS_madvise), ALLOW(SYS_mmap),
    ALLOW(SYS_mprotect), ALLOW(SYS_mremap), ALLOW(SYS_munmap), ALLOW(SYS_nanosleep),
    ALLOW(SYS_clock_nanosleep), ALLOW(SYS_select), ALLOW(SYS_poll), ALLOW(SYS_ppoll), ALLOW(SYS_pselect6),
    ALLOW(SYS_read), ALLOW(SYS_rt_sigprocmask), ALLOW(SYS_shutdown), ALLOW(SYS_time), ALLOW(SYS_write),
    ALLOW(SYS_writev),
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_TRAP),
  };
  struct sock_fprog prog = { .len = (unsigned short)(sizeof(f) / sizeof(f[0])), .filter = f };
  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_sigaction = on_sigsys;
  sa.sa_flags = SA_SIGINFO;
  CHECK(sigaction(SIGSYS, &sa, NULL) == 0, "sigaction(SIGSYS)");
  CHECK(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0, "PR_SET_NO_NEW_PRIVS");
  CHECK(prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) == 0, "PR_SET_SECCOMP");
}

#define BIG (8u << 20)
static uint8_t bigbuf[BIG];

/* the child's reads and writes: plain read()/write(), with poll() first when
 * the socket is non-blocking */
static void c_write(int fd, int nb, const void *buf, size_t n, const char *what)
{
  const uint8_t *p = buf;
  while (n) {
    if (nb)
      wait_fd(fd, POLLOUT, 1000);
    ssize_t w = write(fd, p, n);
    if (w < 0 && (errno == EAGAIN || errno == EINTR))
      continue;
    CHECK(w > 0, "child %s: write", what);
    p += w;
    n -= (size_t)w;
  }
}

static void c_read(int fd, int nb, void *buf, size_t n, const char *what)
{
  uint8_t *p = buf;
  while (n) {
    if (nb)
      wait_fd(fd, POLLIN, 1000);
    ssize_t r = read(fd, p, n);
    if (r < 0 && (errno == EAGAIN || errno == EINTR))
      continue;
    CHECK(r >= 0, "child %s: read", what);
    CHECK(r > 0, "child %s: early EOF", what);
    p += r;
    n -= (size_t)r;
  }
}

static void child(int fd, int nb)
{
  uint8_t b[1000];
  sandbox();

  /* 1 */
  c_read(fd, nb, b, sizeof(b), "first read");
  CHECK(check_pat(b, sizeof(b), 0, 1), "child: first bytes differ");
  /* 2 */
  fill_pat(bigbuf, BIG, 0, 2);
  c_write(fd, nb, bigbuf, BIG, "8 MiB out");
  /* 3 */
  msleep(300);
  memset(bigbuf, 0, BIG);
  for (size_t got = 0; got < BIG;) {
    size_t n = BIG - got < 4096 ? BIG - got : 4096;   /* small reads: the ring stays full long */
    c_read(fd, nb, bigbuf + got, n, "8 MiB in");
    got += n;
  }
  CHECK(check_pat(bigbuf, BIG, 0, 3), "child: the 8 MiB read differ");
  /* 4 */
  for (int i = 0; i < 300; i++) {
    c_read(fd, nb, b, 100, "ping");
    CHECK(check_pat(b, 100, (uint64_t)i, 4), "child: ping %d differs", i);
    fill_pat(b, 100, (uint64_t)i, 5);
    c_write(fd, nb, b, 100, "pong");
  }
  uint8_t v1[300], v2[700];
  struct iovec iv[2] = { { v1, sizeof(v1) }, { v2, sizeof(v2) } };
  fill_pat(v1, sizeof(v1), 0, 6);
  fill_pat(v2, sizeof(v2), sizeof(v1), 6);
  for (;;) {
    if (nb)
      wait_fd(fd, POLLOUT, 1000);
    ssize_t w = writev(fd, iv, 2);
    if (w < 0 && (errno == EAGAIN || errno == EINTR))
      continue;
    CHECK(w == 1000, "child: writev returned %zd", w);
    break;
  }
  /* 5 */
  for (;;) {
    if (nb)
      wait_fd(fd, POLLIN, 1000);
    ssize_t r = read(fd, b, sizeof(b));
    if (r < 0 && (errno == EAGAIN || errno == EINTR))
      continue;
    CHECK(r == 0, "child: expected EOF after the peer's FIN, read returned %zd", r);
    break;
  }
  /* 6: the peer closed; our writes find out */
  int errs = 0;
  for (int i = 0; i < 2000 && errs < 2; i++) {
    if (nb)
      wait_fd(fd, POLLOUT, 100);
    ssize_t w = write(fd, b, sizeof(b));
    if (w < 0 && (errno == EAGAIN || errno == EINTR))
      continue;
    if (w < 0) {
      CHECK(errno == ECONNRESET || errno == EPIPE, "child: write after the peer closed");
      errs++;
      continue;
    }
    msleep(5);
  }
  CHECK(errs == 2, "child: writes after the peer closed never failed");
  syscall(SYS_exit_group, 0);
}

static void parent(int k)
{
  uint8_t b[1000];
  msleep(200);                        /* the child is blocked in read by now */
  fill_pat(b, sizeof(b), 0, 1);
  write_all(k, b, sizeof(b), 10000, "parent: first bytes");
  msleep(300);                        /* let the child's 8 MiB fill the rings */
  read_exact(k, bigbuf, BIG, 30000, "parent: 8 MiB in");
  CHECK(check_pat(bigbuf, BIG, 0, 2), "parent: the 8 MiB received differ");
  fill_pat(bigbuf, BIG, 0, 3);
  write_all(k, bigbuf, BIG, 30000, "parent: 8 MiB out");
  for (int i = 0; i < 300; i++) {
    fill_pat(b, 100, (uint64_t)i, 4);
    write_all(k, b, 100, 10000, "parent: ping");
    read_exact(k, b, 100, 10000, "parent: pong");
    CHECK(check_pat(b, 100, (uint64_t)i, 5), "parent: pong %d differs", i);
  }
  read_exact(k, b, 1000, 10000, "parent: writev's bytes");
  CHECK(check_pat(b, 1000, 0, 6), "parent: writev's bytes differ");
  CHECK(shutdown(k, SHUT_WR) == 0, "parent: shutdown");
  msleep(200);
  close(k);
}

static void run(const char *what, int s, int k, int nb)
{
  STEP("%s, %s", what, nb ? "non-blocking with poll" : "blocking");
  if (nb)
    set_nonblock(s, 1);
  pid_t p = fork();
  CHECK(p >= 0, "fork");
  if (p == 0) {
    close(k);                         /* the peer's close must reach the peer */
    child(s, nb);
  }
  close(s);
  parent(k);
  int st = 0;
  int64_t end = now_ms() + 30000;
  while (waitpid(p, &st, WNOHANG) == 0) {
    CHECK(now_ms() < end, "%s: the sandboxed child did not finish within 30 s", what);
    msleep(20);
  }
  CHECK(!WIFSIGNALED(st), "%s (%s): the sandboxed child was killed by signal %d", what,
        nb ? "non-blocking" : "blocking", WTERMSIG(st));
  CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s (%s): the sandboxed child failed (exit %d)", what,
        nb ? "non-blocking" : "blocking", WEXITSTATUS(st));
}

int main(void)
{
  int s, k;
  tp_init("sem_sandbox", 150);
  signal(SIGPIPE, SIG_IGN);
  for (int nb = 0; nb < 2; nb++) {
    mkpair_fam(AF_INET, 0, &s, &k);
    run("connected socket", s, k, nb);
    mkpair_srv(AF_INET, &s, &k);
    run("accepted socket", s, k, nb);
  }
  printf("ok\n");
  return 0;
}
