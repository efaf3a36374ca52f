/*
 * tund/fdres.c — tund at its RLIMIT_NOFILE: the descriptor reserve that SYNs
 * are admitted against, and what to do (and say) when making a socket runs
 * out of descriptors.
 *
 * At its RLIMIT_NOFILE tund would find out only when it makes the socket of a
 * connection whose handshake is over: on_accept() runs after the peer's ACK,
 * and a resumed tcpcrypt peer already counts itself connected after our
 * SYN-ACK, so a failure there resets a connection the peer's program was told
 * is up.  So a SYN is admitted only against real headroom: listener_admit()
 * promises the connection FDS_PER_CONN descriptors and holds that many in the
 * reserve (duplicates of one eventfd) until on_accept() makes its socket or
 * lwIP drops the half-open pcb (glue_eno_ops.admit_release).  When the
 * reserve cannot grow to cover a new promise, the SYN is dropped and the
 * peer retransmits, as with a full accept queue.  Every other consumer of
 * descriptors (a program's socket(), a control client, a kernel-side accept)
 * may take the reserve's unpromised slack, never the promised part.
 *
 * Invariant: n_fd_reserve >= FDS_PER_CONN * fd_promised between calls.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <unistd.h>

#include "tund.h"
#include "conn.h"

#define FDS_PER_CONN    3          /* memfd + both ends of the pair until delivered */
#define FD_SLACK        (FDS_PER_CONN * 8)   /* grown in steps, trimmed to this */
#define FD_PROMISE_MAX  4096u      /* half-open connections holding a promise */
#define FD_RESERVE_MAX  (FDS_PER_CONN * FD_PROMISE_MAX + FD_SLACK)
static int *fd_reserve;
static unsigned n_fd_reserve, cap_fd_reserve;
static unsigned fd_promised;       /* admitted SYNs whose socket is not made yet */
static int fd_short;               /* the last admission failed for descriptors */
static uint64_t fd_short_drops;

/* EMFILE/ENFILE while making a socket: say which limit, once in a while */
static void fd_limit_warn(int e)
{
  if (e == EMFILE) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
      tund_log_limited(LOG_WARN_, "out of file descriptors (limit %llu, 2 per connection): raise "
                       "tund's RLIMIT_NOFILE (ulimit -Hn, LimitNOFILE=)", (unsigned long long)rl.rlim_cur);
  } else if (e == ENFILE) {
    tund_log_limited(LOG_WARN_, "the system is out of file descriptors (fs.file-max)");
  }
}

/* ... and the errno to give the program: tund's own limit is not the
 * program's, so EMFILE becomes ENOBUFS (as a kernel short of socket memory
 * says); the system-wide one is the program's too, and its socket() would
 * say ENFILE */
int fd_limit_err(int e)
{
  fd_limit_warn(e);
  return e == EMFILE ? ENOBUFS : e;
}

/* Grow the reserve to `want` descriptors; 0, or the errno that stopped it. */
static int fd_reserve_grow(unsigned want)
{
  if (want > cap_fd_reserve) {
    unsigned nc = cap_fd_reserve ? cap_fd_reserve : 64;
    while (nc < want)
      nc *= 2;
    int *v = realloc(fd_reserve, nc * sizeof(*v));
    if (!v)
      return ENOMEM;
    fd_reserve = v;
    cap_fd_reserve = nc;
  }
  while (n_fd_reserve < want) {
    int fd = n_fd_reserve ? fcntl(fd_reserve[0], F_DUPFD_CLOEXEC, 0) : eventfd(0, EFD_CLOEXEC);
    if (fd < 0)
      return errno;
    fd_reserve[n_fd_reserve++] = fd;
  }
  return 0;
}

static void fd_reserve_shrink(unsigned keep)
{
  while (n_fd_reserve > keep)
    close(fd_reserve[--n_fd_reserve]);
}

/* At start: the slack, so that the first SYNs need no system call. */
void fd_reserve_init(void)
{
  fd_reserve_grow(FD_SLACK);
}

/* EMFILE/ENFILE while making a socket: give up the spares and the reserve's
 * unpromised slack (a connection whose promise was just redeemed counts as
 * slack now).  1 = something was freed: retry. */
int fds_exhausted(void)
{
  int e = errno;
  unsigned before = n_fd_reserve;
  int freed = spares_drop_all();
  fd_reserve_shrink(FDS_PER_CONN * fd_promised);
  if (!freed && n_fd_reserve == before)
    fd_limit_warn(e);
  errno = e;
  return freed || n_fd_reserve < before;
}

/* A SYN may become a connection: promise it its descriptors.  0: refused. */
int fd_promise_take(void)
{
  unsigned need = FDS_PER_CONN * (fd_promised + 1);
  if (n_fd_reserve < need) {
    unsigned want = need + FD_SLACK;
    if (want > FD_RESERVE_MAX)
      want = FD_RESERVE_MAX;
    int e = fd_promised >= FD_PROMISE_MAX ? EMFILE : fd_reserve_grow(want);
    if (n_fd_reserve < need) {
      if (!fd_short && fd_promised < FD_PROMISE_MAX) {
        spares_drop_all();
        if (fd_reserve_grow(need) == 0)
          goto ok;
        fd_limit_warn(e == ENOMEM ? EMFILE : e);
        fd_short = 1;
      }
      fd_short_drops++;
      return 0;
    }
  }
ok:
  if (fd_short) {
    tund_log(LOG_INFO_, "file descriptors available again (%llu connections open; %llu SYNs dropped meanwhile)",
             (unsigned long long)conn_count(), (unsigned long long)fd_short_drops);
    fd_short = 0;
    fd_short_drops = 0;
  }
  fd_promised++;
  return 1;
}

/* SYNs dropped for want of descriptors since they last ran short. */
uint64_t fd_promise_drops(void)
{
  return fd_short_drops;
}

/* The promise ends: the socket is being made (its descriptors come from the
 * slack, see fds_exhausted) or the half-open connection died. */
void fd_promise_release(void)
{
  if (fd_promised)
    fd_promised--;
}

/* glue_eno_ops.admit_release: a half-open connection admitted by
 * listener_admit() died before on_accept(). */
void listener_admit_release(void)
{
  fd_promise_release();
}

/* From conn_tick: give back slack beyond a few connections' worth. */
void fd_reserve_trim(void)
{
  unsigned keep = FDS_PER_CONN * fd_promised + FD_SLACK;
  if (n_fd_reserve > keep)
    fd_reserve_shrink(keep);
}
