/*
 * shim/shim.h — internals of libenoshim.so.
 *
 * The shim owns a socket when the program created it with socket(AF_INET or
 * AF_INET6, SOCK_STREAM, 0 or IPPROTO_TCP) (or accepted it from such a
 * listener).  The program's fd is then one end of a socketpair whose other end
 * tund holds; data moves through the rings in shared memory (enoshim/shm.h).
 * Every other fd goes to libc untouched, errno preserved.
 */
#ifndef SHIM_H
#define SHIM_H

#include <stdatomic.h>
#include <stdint.h>
#include <stddef.h>
#include <pthread.h>
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <poll.h>

#include "enoshim/shm.h"
#include "enoshim/ipc.h"

#define SHIM_API __attribute__((visibility("default")))

/* ---- the real functions (sys.c), resolved once with dlsym(RTLD_NEXT) ------ */
#define SHIM_SYSCALLS(X) \
  X(int, socket, (int, int, int)) \
  X(int, bind, (int, const struct sockaddr *, socklen_t)) \
  X(int, listen, (int, int)) \
  X(int, accept, (int, struct sockaddr *, socklen_t *)) \
  X(int, accept4, (int, struct sockaddr *, socklen_t *, int)) \
  X(int, connect, (int, const struct sockaddr *, socklen_t)) \
  X(ssize_t, read, (int, void *, size_t)) \
  X(ssize_t, write, (int, const void *, size_t)) \
  X(ssize_t, readv, (int, const struct iovec *, int)) \
  X(ssize_t, writev, (int, const struct iovec *, int)) \
  X(ssize_t, recv, (int, void *, size_t, int)) \
  X(ssize_t, send, (int, const void *, size_t, int)) \
  X(ssize_t, recvfrom, (int, void *, size_t, int, struct sockaddr *, socklen_t *)) \
  X(ssize_t, sendto, (int, const void *, size_t, int, const struct sockaddr *, socklen_t)) \
  X(ssize_t, recvmsg, (int, struct msghdr *, int)) \
  X(ssize_t, sendmsg, (int, const struct msghdr *, int)) \
  X(ssize_t, sendfile, (int, int, off_t *, size_t)) \
  X(ssize_t, sendfile64, (int, int, off_t *, size_t)) \
  X(ssize_t, splice, (int, loff_t *, int, loff_t *, size_t, unsigned int)) \
  X(int, recvmmsg, (int, struct mmsghdr *, unsigned int, int, struct timespec *)) \
  X(int, sendmmsg, (int, struct mmsghdr *, unsigned int, int)) \
  X(int, shutdown, (int, int)) \
  X(int, close, (int)) \
  X(int, dup, (int)) \
  X(int, dup2, (int, int)) \
  X(int, dup3, (int, int, int)) \
  X(int, fcntl, (int, int, ...)) \
  X(int, fcntl64, (int, int, ...)) \
  X(int, ioctl, (int, unsigned long, ...)) \
  X(int, getsockname, (int, struct sockaddr *, socklen_t *)) \
  X(int, getpeername, (int, struct sockaddr *, socklen_t *)) \
  X(int, getsockopt, (int, int, int, void *, socklen_t *)) \
  X(int, setsockopt, (int, int, int, const void *, socklen_t)) \
  X(int, close_range, (unsigned int, unsigned int, int)) \
  X(int, epoll_ctl, (int, int, int, struct epoll_event *)) \
  X(void, closefrom, (int)) \
  X(ssize_t, __read_chk, (int, void *, size_t, size_t)) \
  X(ssize_t, __recv_chk, (int, void *, size_t, size_t, int)) \
  X(ssize_t, __recvfrom_chk, (int, void *, size_t, size_t, int, struct sockaddr *, socklen_t *))

struct shim_real {
#define X(ret, name, args) ret (*name) args;
  SHIM_SYSCALLS(X)
#undef X
};
extern struct shim_real real;
void shim_resolve(void);

/* fd's kernel SOL_SOCKET option `name` has the value want */
static inline int sockopt_is(int fd, int name, int want)
{
  int v = 0;
  socklen_t l = sizeof(v);
  return real.getsockopt(fd, SOL_SOCKET, name, &v, &l) == 0 && v == want;
}

/* ---- one socket the shim owns ----------------------------------------------- */
enum { SK_STREAM = 1, SK_LISTENER = 2 };

struct shim_sock {
  _Atomic int refs;          /* fd-table entries + calls in progress */
  uint64_t id;
  int kind;                  /* SK_STREAM (also before connect) or SK_LISTENER */
  int domain;
  struct enoshm *shm;
  size_t shm_len;
  uint8_t *rx_base, *tx_base;
  uint32_t rx_size, tx_size;

  /* settings the program made, kept to answer getsockopt and to carry over
   * to a kernel socket if the connection goes direct */
  int reuseaddr, reuseport, keepalive, nodelay, v6only, cork;
  int keep_idle, keep_intvl, keep_cnt;
  int rcvbuf, sndbuf;
  int tos, tclass;
  int linger_on, linger_sec;
  uint64_t inert_set;        /* sockopt.c inert_opts[i] set by the program: inert_val[i] */
  int inert_val[40];
  int bound;
  struct enoipc_addr bound_addr; /* what bind() gave tund (the port made definite) */
  int kfd;                   /* kernel socket bound for this socket (bind/listen), or -1 */
  struct keep *keep;         /* a listener's ends kept for a tund restart (relisten.c), or NULL */
  struct optlog *optlog;     /* TCP-ENO options the program set, for RELISTEN (relisten.c) */
  int connect_started;
  int connect_posted;        /* the CONNECT went without waiting (sock_connect) */
  int wake_queued;           /* connected: bytes tund has not read may be queued (sock_settle) */
  int user_mss;              /* TCP_MAXSEG set before connecting (0: none) */
  int connect_unreaped;      /* connect() (or a MSG_FASTOPEN send) said EINPROGRESS or EINTR:
                                the next connect() once connected says 0, the next
                                MSG_FASTOPEN send sends (sock_connect_ex, shim.c) */
  int shut_rd;
  int shut_wr;
  int err_reported;          /* SO_ERROR / a read already returned st.error */
  int tund_gone;             /* tund died under the connection; ECONNRESET was reported */
  int tep_mandatory;         /* TCP_ENO_TEP_MANDATORY: no plain connection, ever */
  int eno_off;               /* TCP_ENO_ENABLED=0 was set (said by the outcome line) */
  _Atomic int outcome_pending; /* a connect's outcome is still to be said (outcome.c) */
  int shared;                /* another process may hold it (fork, exec, SCM_RIGHTS) */
  pthread_mutex_t lock;      /* per-process: serialises option changes */

  /* the mapping may be kept for reuse when the socket ends (sockmem.c) */
  uint64_t cache_tag;        /* SHM_NO_CACHE, SHM_OWN, or the listener's id | SHM_TAG_LISTENER */
  pid_t cache_pid;           /* the process that mapped it */
  dev_t shm_dev;
  ino_t shm_ino;
};

/* The status block as the program must see it.  After a posted connect
 * that tund has not taken yet, tund still says NEW (or BOUND): to the
 * program the socket is connecting from the moment connect() returned. */
static inline void sock_status(const struct shim_sock *s, struct enoshm_status *st)
{
  enoshm_status_read(s->shm, st);
  if (s->connect_posted && st->state < ENOSHM_S_CONNECTING)
    st->state = ENOSHM_S_CONNECTING;
}

#define SHM_NO_CACHE     (~0ull)
#define SHM_OWN          0ull
#define SHM_TAG_LISTENER (1ull << 63)

/* ---- fd table (fdtable.c) ---------------------------------------------------- */
struct shim_sock *fdt_get(int fd);                 /* +1 ref, or NULL */
void fdt_put(struct shim_sock *s);                 /* -1 ref, frees at 0 */
void fdt_set(int fd, struct shim_sock *s);         /* takes a ref */
struct shim_sock *fdt_take(int fd);                /* removes; caller owns that ref */
int  fdt_maybe(int fd);                            /* cheap: could fd be ours? */
void fdt_clear_range(unsigned first, unsigned last);
void fdt_foreach(void (*fn)(struct shim_sock *s, void *arg), void *arg);

/* ---- control connection (ctl.c) ----------------------------------------------- */
extern int shim_ctl_fd;
extern uint32_t shim_tund_pid;
extern struct enoipc_hello_ok shim_hello;
int  ctl_ensure(void);                              /* 0 or -errno */
/* Send a request, wait for its RESULT.  Returns 0 and fills *err (the
 * program's errno, 0 ok) and data/fds (rfds: room for ENOIPC_MAX_FDS), or
 * -errno if tund is unreachable (-EMFILE: the reply's descriptors could not
 * be taken, RLIMIT_NOFILE). */
int  ctl_call(uint16_t type, uint64_t sock, const void *p1, size_t n1, const void *p2, size_t n2,
              const int *fds, int nfds, int *err, void *data, size_t *datalen,
              int *rfds, int *nrfds, uint64_t *rsock);
int  ctl_post(uint16_t type, uint64_t sock, const void *p1, size_t n1, const void *p2, size_t n2);
int  ctl_try_doorbell(uint64_t sock);
void ctl_kick(uint64_t sock);                      /* ENOIPC_KICK_WAKE, posted */
/* The doorbell connection (a second, non-blocking connection to tund that
 * only carries ENOIPC_KICK, written with write(): usable in a sandbox, and
 * inherited by forked children) and the pipe SIGPIPE comes from. */
int  bell_ring(uint64_t sock);                      /* 0 rung, -1 no doorbell connection */
int  shim_epipe_write(void);                        /* raises SIGPIPE; -1 if there is no such pipe */
#define SHIM_MAX_INTERNAL 256
int  ctl_is_internal_fd(int fd);
int  ctl_internal_list(int *out, int max);
void ctl_protect_fd(int fd);                        /* move out of the way of dup2(x, fd) */
/* The shim's own fds (kernel sockets it holds): moved high, protected from
 * the program's close()/dup2(), closed with shim_internal_close(). */
int  shim_internal_fd(int fd);
void shim_internal_close(int fd);

/* ---- sockets ------------------------------------------------------------------------ */
/* sock.c: socket, bind, listen, accept, connect, shutdown; the filler */
int  sock_socket(int domain, int type, int protocol);
int  sock_bind(int fd, struct shim_sock *s, const struct sockaddr *a, socklen_t len);
int  sock_listen(int fd, struct shim_sock *s, int backlog);
int  sock_accept(int fd, struct shim_sock *s, struct sockaddr *a, socklen_t *len, int flags);
int  sock_connect(int fd, struct shim_sock *s, const struct sockaddr *a, socklen_t len);
/* the same, not waiting when dontwait (MSG_DONTWAIT of a MSG_FASTOPEN send) */
int  sock_connect_ex(int fd, struct shim_sock *s, const struct sockaddr *a, socklen_t len, int dontwait);
void sock_settle(int fd, struct shim_sock *s);
int  sock_shutdown(int fd, struct shim_sock *s, int how);
void io_fill(int fd, struct shim_sock *s);                 /* io.c */
int  io_wait_writable(int fd, struct shim_sock *s, int flags);
void sock_doorbell(int fd, struct shim_sock *s);           /* io.c: a `wants` bit was set */

/* sockopt.c: options and ioctls */
int  sock_getsockopt(int fd, struct shim_sock *s, int level, int name, void *val, socklen_t *len);
int  sock_setsockopt(int fd, struct shim_sock *s, int level, int name, const void *val, socklen_t len);
int  sock_ioctl(int fd, struct shim_sock *s, unsigned long req, void *arg);
void sock_apply_env_opts(struct shim_sock *s);
int  shim_eno_opt_readonly(int name);
int  put_int(void *val, socklen_t *len, int v);
int  get_int(const void *val, socklen_t len, int *out);

/* sockmem.c: a socket's shared memory, kept mappings */
struct shim_sock *sock_from_shm(uint64_t id, int memfd, size_t shm_size, int kind, int domain,
                                uint64_t cache_tag, int *err);
void sock_free(struct shim_sock *s);
void sock_atfork_prepare(void);
void sock_atfork_child(void);

/* addr.c: addresses */
int  sa_to_ipc(const struct sockaddr *sa, socklen_t len, int domain, struct enoipc_addr *out);
socklen_t shm_to_sa(const struct enoshm_addr *a, int domain, struct sockaddr_storage *ss);
void copy_out_addr(const struct sockaddr_storage *ss, socklen_t n, struct sockaddr *a, socklen_t *len);
int  sock_getname(struct shim_sock *s, int peer, struct sockaddr *a, socklen_t *len);

/* direct.c: destinations that get a plain kernel socket */
int  shim_addr_is_direct(const struct sockaddr *a, socklen_t len);
const char *shim_direct_reason(const struct sockaddr *a, socklen_t len);   /* NULL: through tund */
int  is_loopback(const struct sockaddr *a);
int  new_kernel_socket(struct shim_sock *s, int pfd);
int  go_direct(int fd, struct shim_sock *s);      /* 0, or -1 with errno */

/* inherit.c: sockets inherited across exec or received with SCM_RIGHTS */
void sock_attach_inherited(void);
void sock_attach_received(const struct msghdr *m);
void sock_note_sent(const struct msghdr *m);

/* direct_eno.c: ENO options on plain kernel TCP sockets (1: not one) */
int  shim_direct_eno_getopt(int fd, int name, void *val, socklen_t *len);
int  shim_direct_eno_setopt(int fd, int name, const void *val, socklen_t len);

/* relisten.c: listeners come back when tund restarts (the design is there) */
struct keep;
struct optlog;
void relisten_keep(int fd, struct shim_sock *s, int tfd, int memfd, int kfd, int backlog);
void relisten_backlog(struct shim_sock *s, int backlog);
void relisten_forget(struct shim_sock *s);
void relisten_drop(struct shim_sock *s);
void relisten_note_opt(struct shim_sock *s, int name, const void *val, socklen_t len);
void relisten_check_watcher(void);
void relisten_atfork_child(void);
int  fdt_find(struct shim_sock *s);                 /* fdtable.c: an fd of s, or -1 */
/* ctl.c, for the watcher: connect if need be; 0 with the connection's fd
 * and tund's pid, or -1.  ctl_watch_lost: fd hung up (dropped if it is
 * still the connection and still hung up). */
int  ctl_watch(int *fd, uint32_t *tund_pid);
void ctl_watch_lost(int fd);

/* outcome.c: the line that says how a connection ended up (encrypted or
 * plain and why; a TCP_ENO_TEP_MANDATORY abort always) */
#define OUTCOME_PENDING 1    /* shim_sock.outcome_pending: 0 nothing to say, 1 pending, 2 said */
void outcome_connect(int fd, struct shim_sock *s, const struct sockaddr *a, socklen_t len, int r, int err);
void outcome_check(int fd, struct shim_sock *s);    /* after a non-blocking connect */
void outcome_accept(int nfd);

/* stdio.c: FILE streams on our sockets (fopencookie) */
void stdio_adopt_std(void);                        /* at start: stdin/stdout/stderr on our sockets */
void stdio_adopt_fd(int fd);                       /* fd 0, 1 or 2 just became one of ours */

/* splice.c: splice(2) between our socket and a pipe, recvmmsg/sendmmsg */
ssize_t io_splice_out(int fd, struct shim_sock *s, int out, loff_t *off_out, size_t len, unsigned flags);
ssize_t io_splice_in(int fd, struct shim_sock *s, int in, loff_t *off_in, size_t len, unsigned flags);
int io_recvmmsg(int fd, struct shim_sock *s, struct mmsghdr *v, unsigned n, int flags);
int io_sendmmsg(int fd, struct shim_sock *s, struct mmsghdr *v, unsigned n, int flags);

/* io.c: reading and writing through the rings */
ssize_t io_recv(int fd, struct shim_sock *s, const struct iovec *iov, int iovcnt, int flags);
ssize_t io_send(int fd, struct shim_sock *s, const struct iovec *iov, int iovcnt, int flags);
ssize_t io_sendfile(int fd, struct shim_sock *s, int in_fd, off_t *off, size_t count);

/* glibc's fortify entry points (declared only under _FORTIFY_SOURCE) */
ssize_t __read_chk(int fd, void *buf, size_t n, size_t buflen);
ssize_t __recv_chk(int fd, void *buf, size_t n, size_t buflen, int flags);
ssize_t __recvfrom_chk(int fd, void *buf, size_t n, size_t buflen, int flags,
                       struct sockaddr *a, socklen_t *l);

/* ---- misc (shim.c) ---------------------------------------------------------------- */
extern int shim_debug;
extern int shim_fallback_plain;
void shim_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void shim_init(void);
void shim_raise_sigpipe(void);

#endif
