/*
 * shim/sock.c — socket(), bind(), listen(), accept(), connect(), options and
 * names for the sockets the shim owns.
 *
 * Routing (DESIGN.md): loopback and configured "direct" destinations become
 * plain kernel sockets in the program (the fd is replaced in place with
 * dup3(), keeping its number, O_NONBLOCK and FD_CLOEXEC); everything else
 * goes through tund.  A listening socket gets both a tund listener (ENO peers
 * arriving through the TUN) and a kernel listener on the same port (kernel
 * clients, e.g. from loopback); tund passes each accepted connection over the
 * listener's pair.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "tcpinc.h"
#include "enoshim/prefix.h"
#include "shim.h"

int shim_move_high(int fd);
static int shim_env_warned;
int shim_internal_fd(int fd);
void shim_internal_close(int fd);

/* ---- shared memory ------------------------------------------------------------ */

static void sock_init_locks(struct enoshm *m)
{
  /* First process to see this socket initialises the cross-process locks;
   * robust so that a program killed while holding one does not wedge others. */
  uint32_t exp = 0;
  if (atomic_compare_exchange_strong(&m->locks_ready, &exp, 1)) {
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
    pthread_mutex_init(&m->rx_lock, &a);
    pthread_mutex_init(&m->tx_lock, &a);
    pthread_mutexattr_destroy(&a);
    atomic_store(&m->locks_ready, 2);
  } else {
    while (atomic_load(&m->locks_ready) != 2)
      ;
  }
}

/* ---- kept mappings ----------------------------------------------------------------
 *
 * tund hands the memfd of an ended socket to the same owner's next socket
 * (tund/conn.c, "spare shared memory"): the same process for sockets it made,
 * the same listener for accepted ones.  Keeping our mapping of it saves the
 * mmap, the page faults and the munmap per connection.  A kept mapping is
 * found again by the memfd's inode.  It is only kept for a socket this
 * process made or accepted itself (not one inherited through fork or exec),
 * it is dropped when the listener it came from is closed, and a forked child
 * drops its copies at once (sock_atfork_child). */

#define KEPT_MAX 16

struct kept {
  void *p;
  size_t len;
  dev_t dev;
  ino_t ino;
  uint64_t tag;
};
static struct kept kept[KEPT_MAX];
static unsigned n_kept;
static pthread_mutex_t kept_lock = PTHREAD_MUTEX_INITIALIZER;
static pid_t kept_pid;

static pid_t self_pid(void)
{
  pid_t p = __atomic_load_n(&kept_pid, __ATOMIC_RELAXED);
  if (!p) {
    p = getpid();
    __atomic_store_n(&kept_pid, p, __ATOMIC_RELAXED);
  }
  return p;
}

static void *kept_take(dev_t dev, ino_t ino, size_t len)
{
  void *p = NULL;
  pthread_mutex_lock(&kept_lock);
  for (unsigned i = 0; i < n_kept; i++) {
    if (kept[i].ino == ino && kept[i].dev == dev && kept[i].len == len) {
      p = kept[i].p;
      kept[i] = kept[--n_kept];
      break;
    }
  }
  pthread_mutex_unlock(&kept_lock);
  return p;
}

/* Returns 1 if kept, 0 if the caller must unmap it.  A full list drops its
 * oldest entry (tund may not have taken that memfd back: a connection that
 * ended before the program closed it is never a spare). */
static int kept_put(const struct shim_sock *s)
{
  void *old = NULL;
  size_t old_len = 0;
  if (s->cache_tag == SHM_NO_CACHE || s->cache_pid != self_pid() || s->kind != SK_STREAM)
    return 0;
  /* a ring that moved a lot holds many pages: not worth keeping them */
  if (atomic_load_explicit(&s->shm->rx_prod, memory_order_relaxed) > ENOSHM_REUSE_TOUCH_MAX ||
      atomic_load_explicit(&s->shm->tx_prod, memory_order_relaxed) > ENOSHM_REUSE_TOUCH_MAX)
    return 0;
  pthread_mutex_lock(&kept_lock);
  if (n_kept == KEPT_MAX) {
    old = kept[0].p;
    old_len = kept[0].len;
    memmove(&kept[0], &kept[1], (KEPT_MAX - 1) * sizeof(kept[0]));
    n_kept--;
  }
  kept[n_kept++] = (struct kept){ .p = s->shm, .len = s->shm_len, .dev = s->shm_dev, .ino = s->shm_ino,
                                  .tag = s->cache_tag };
  pthread_mutex_unlock(&kept_lock);
  if (old)
    munmap(old, old_len);
  return 1;
}

/* The listener is closed here: what came through it is no longer ours to see. */
static void kept_drop_tag(uint64_t tag)
{
  pthread_mutex_lock(&kept_lock);
  for (unsigned i = n_kept; i-- > 0;) {
    if (kept[i].tag == tag) {
      munmap(kept[i].p, kept[i].len);
      kept[i] = kept[--n_kept];
    }
  }
  pthread_mutex_unlock(&kept_lock);
}

/* The ids a fork is about to share, sent to tund a message at a time. */
struct forked_list {
  uint64_t ids[ENOIPC_MAX_MSG / 8 - 4];
  unsigned n;
};

static void forked_flush(struct forked_list *l)
{
  int err;
  if (l->n)
    ctl_call(ENOIPC_FORKED, 0, l->ids, l->n * sizeof(l->ids[0]), NULL, 0, NULL, 0, &err, NULL, NULL, NULL,
             NULL, NULL);
  l->n = 0;
}

static void forked_collect(struct shim_sock *s, void *arg)
{
  struct forked_list *l = arg;
  s->shared = 1;                        /* in the parent, and the child's copy */
  if (s->kind != SK_STREAM || s->cache_tag == SHM_NO_CACHE)
    return;
  if (l->n == sizeof(l->ids) / sizeof(l->ids[0]))
    forked_flush(l);
  l->ids[l->n++] = s->id;
}

/* Before fork: the child will share these sockets' memory, so tund must
 * never give it to anyone else when they end. */
void sock_atfork_prepare(void)
{
  static struct forked_list l;          /* one fork at a time */
  static pthread_mutex_t fl = PTHREAD_MUTEX_INITIALIZER;
  pthread_mutex_lock(&fl);
  l.n = 0;
  fdt_foreach(forked_collect, &l);
  forked_flush(&l);
  pthread_mutex_unlock(&fl);
}

void sock_atfork_child(void)
{
  /* the copies we inherited are the parent's to reuse, not ours */
  for (unsigned i = 0; i < n_kept; i++)
    munmap(kept[i].p, kept[i].len);
  n_kept = 0;
  pthread_mutex_init(&kept_lock, NULL);
  __atomic_store_n(&kept_pid, getpid(), __ATOMIC_RELAXED);
}

/* shm_size 0: take it from the memfd (validated all the same). */
struct shim_sock *sock_from_shm(uint64_t id, int memfd, size_t shm_size, int kind, int domain,
                                uint64_t cache_tag, int *err)
{
  struct stat st;
  if (fstat(memfd, &st) || (shm_size && (size_t)st.st_size != shm_size)) {
    *err = EPROTO;
    return NULL;
  }
  shm_size = (size_t)st.st_size;
  if (shm_size < ENOSHM_HDR_SIZE || shm_size > ENOSHM_HDR_SIZE + 2 * (size_t)ENOSHM_RING_MAX) {
    *err = EPROTO;
    return NULL;
  }
  void *p = cache_tag == SHM_NO_CACHE ? NULL : kept_take(st.st_dev, st.st_ino, shm_size);
  if (!p)
    p = mmap(NULL, shm_size, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
  if (p == MAP_FAILED) {
    *err = ENOBUFS;
    return NULL;
  }
  struct enoshm *m = p;
  if (!enoshm_header_ok(m, shm_size) || m->sock_id != id) {
    munmap(p, shm_size);
    *err = EPROTO;
    return NULL;
  }
  struct shim_sock *s = calloc(1, sizeof(*s));
  if (!s) {
    munmap(p, shm_size);
    *err = ENOBUFS;
    return NULL;
  }
  s->cache_tag = cache_tag;
  s->cache_pid = self_pid();
  s->shm_dev = st.st_dev;
  s->shm_ino = st.st_ino;
  s->id = id;
  s->kind = kind;
  s->domain = domain;
  s->shm = m;
  s->shm_len = shm_size;
  s->rx_base = (uint8_t *)p + m->rx_off;
  s->tx_base = (uint8_t *)p + m->tx_off;
  s->rx_size = m->rx_size;
  s->tx_size = m->tx_size;
  s->kfd = -1;
  s->keep_idle = 7200;
  s->keep_intvl = 75;
  s->keep_cnt = 9;
  pthread_mutex_init(&s->lock, NULL);
  sock_init_locks(m);
  return s;
}

void sock_free(struct shim_sock *s)
{
  if (s->kfd >= 0)
    shim_internal_close(s->kfd);
  if (s->kind == SK_LISTENER && s->cache_pid == self_pid())
    kept_drop_tag(s->id | SHM_TAG_LISTENER);
  if (!kept_put(s))
    munmap(s->shm, s->shm_len);
  pthread_mutex_destroy(&s->lock);
  free(s);
}

/* ---- addresses --------------------------------------------------------------------- */

static int sa_to_ipc(const struct sockaddr *sa, socklen_t len, int domain, struct enoipc_addr *out)
{
  memset(out, 0, sizeof(*out));
  if (!sa || len < sizeof(sa_family_t))
    return EINVAL;
  if (sa->sa_family == AF_INET) {
    if (len < sizeof(struct sockaddr_in))
      return EINVAL;
    if (domain != AF_INET)
      return EAFNOSUPPORT;
    const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
    out->family = AF_INET;
    out->port = ntohs(in->sin_port);
    memcpy(out->addr, &in->sin_addr, 4);
    return 0;
  }
  if (sa->sa_family == AF_INET6) {
    if (len < sizeof(struct sockaddr_in6))
      return EINVAL;
    if (domain != AF_INET6)
      return EAFNOSUPPORT;
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
    out->family = AF_INET6;
    out->port = ntohs(in6->sin6_port);
    out->scope_id = in6->sin6_scope_id;
    out->flowinfo = in6->sin6_flowinfo;
    memcpy(out->addr, &in6->sin6_addr, 16);
    return 0;
  }
  return EAFNOSUPPORT;
}

static socklen_t shm_to_sa(const struct enoshm_addr *a, int domain, struct sockaddr_storage *ss)
{
  memset(ss, 0, sizeof(*ss));
  if (domain == AF_INET) {
    struct sockaddr_in *in = (struct sockaddr_in *)ss;
    in->sin_family = AF_INET;
    in->sin_port = htons(a->port);
    if (a->family == AF_INET)
      memcpy(&in->sin_addr, a->addr, 4);
    return sizeof(*in);
  }
  struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
  in6->sin6_family = AF_INET6;
  in6->sin6_port = htons(a->port);
  if (a->family == AF_INET6) {
    memcpy(&in6->sin6_addr, a->addr, 16);
    in6->sin6_scope_id = a->scope_id;
  } else if (a->family == AF_INET) {
    in6->sin6_addr.s6_addr[10] = in6->sin6_addr.s6_addr[11] = 0xff;
    memcpy(&in6->sin6_addr.s6_addr[12], a->addr, 4);
  }
  return sizeof(*in6);
}

static void copy_out_addr(const struct sockaddr_storage *ss, socklen_t n, struct sockaddr *a, socklen_t *len)
{
  if (!a || !len)
    return;
  socklen_t k = *len < n ? *len : n;
  memcpy(a, ss, k);
  *len = n;
}

int sock_getname(struct shim_sock *s, int peer, struct sockaddr *a, socklen_t *len)
{
  struct enoshm_status st;
  struct sockaddr_storage ss;
  if (!len || (!a && *len)) {
    errno = EFAULT;
    return -1;
  }
  enoshm_status_read(s->shm, &st);
  if (!peer && s->connect_posted && st.state < ENOSHM_S_CONNECTING) {
    /* tund picks the local port when it takes the posted connect; any
     * request it answers is handled after that one (one ordered channel) */
    struct enoipc_opt o = { .level = IPPROTO_TCP, .name = TCP_MAXSEG, .len = sizeof(int) };
    uint8_t buf[ENOIPC_OPT_MAX];
    size_t bl = sizeof(buf);
    int err;
    ctl_call(ENOIPC_GETOPT, s->id, &o, sizeof(o), NULL, 0, NULL, 0, &err, buf, &bl, NULL, NULL, NULL);
    enoshm_status_read(s->shm, &st);
  }
  if (peer) {
    if (st.state != ENOSHM_S_ESTABLISHED && st.state != ENOSHM_S_CLOSED) {
      errno = ENOTCONN;
      return -1;
    }
    if (st.remote.family == 0) {
      errno = ENOTCONN;
      return -1;
    }
  }
  socklen_t n = shm_to_sa(peer ? &st.remote : &st.local, s->domain, &ss);
  copy_out_addr(&ss, n, a, len);
  return 0;
}

/* ---- kernel sockets for direct routes ------------------------------------------------ */

/* Carry the settings the program made onto a kernel socket. */
static void apply_opts(int kfd, int pfd, struct shim_sock *s)
{
  int one = 1;
  if (s->reuseaddr)
    real.setsockopt(kfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (s->reuseport)
    real.setsockopt(kfd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
  if (s->keepalive) {
    real.setsockopt(kfd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
    real.setsockopt(kfd, IPPROTO_TCP, TCP_KEEPIDLE, &s->keep_idle, sizeof(int));
    real.setsockopt(kfd, IPPROTO_TCP, TCP_KEEPINTVL, &s->keep_intvl, sizeof(int));
    real.setsockopt(kfd, IPPROTO_TCP, TCP_KEEPCNT, &s->keep_cnt, sizeof(int));
  }
  if (s->nodelay)
    real.setsockopt(kfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  if (s->cork)
    real.setsockopt(kfd, IPPROTO_TCP, TCP_CORK, &one, sizeof(one));
  if (s->rcvbuf)
    real.setsockopt(kfd, SOL_SOCKET, SO_RCVBUF, &s->rcvbuf, sizeof(int));
  if (s->sndbuf)
    real.setsockopt(kfd, SOL_SOCKET, SO_SNDBUF, &s->sndbuf, sizeof(int));
  if (s->linger_on) {
    struct linger lg = { .l_onoff = 1, .l_linger = s->linger_sec };
    real.setsockopt(kfd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
  }
  if (s->tos)
    real.setsockopt(kfd, IPPROTO_IP, IP_TOS, &s->tos, sizeof(int));
  if (s->domain == AF_INET6) {
    real.setsockopt(kfd, IPPROTO_IPV6, IPV6_V6ONLY, &s->v6only, sizeof(int));
    if (s->tclass)
      real.setsockopt(kfd, IPPROTO_IPV6, IPV6_TCLASS, &s->tclass, sizeof(int));
  }
  if (pfd >= 0) {
    struct timeval tv;
    socklen_t tl = sizeof(tv);
    if (real.getsockopt(pfd, SOL_SOCKET, SO_RCVTIMEO, &tv, &tl) == 0 && (tv.tv_sec || tv.tv_usec))
      real.setsockopt(kfd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    tl = sizeof(tv);
    if (real.getsockopt(pfd, SOL_SOCKET, SO_SNDTIMEO, &tv, &tl) == 0 && (tv.tv_sec || tv.tv_usec))
      real.setsockopt(kfd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  }
}

static int new_kernel_socket(struct shim_sock *s, int pfd)
{
  int k = real.socket(s->domain, SOCK_STREAM | SOCK_CLOEXEC, IPPROTO_TCP);
  if (k < 0)
    return -1;
  apply_opts(k, pfd, s);
  return k;
}

/* Replace the program's fd (our socketpair end) by a kernel TCP socket, in
 * place.  Afterwards the fd is not the shim's any more.  Returns 0 or -1. */
static int go_direct(int fd, struct shim_sock *s)
{
  int k = s->kfd;
  if (k >= 0) {
    s->kfd = -1;
  } else {
    k = new_kernel_socket(s, fd);
    if (k < 0)
      return -1;
    k = shim_internal_fd(k);
  }
  int fl = real.fcntl(fd, F_GETFL);
  int fdfl = real.fcntl(fd, F_GETFD);
  if (fl >= 0 && (fl & O_NONBLOCK))
    real.fcntl(k, F_SETFL, real.fcntl(k, F_GETFL) | O_NONBLOCK);
  struct shim_sock *old = fdt_take(fd);
  if (real.dup3(k, fd, (fdfl >= 0 && (fdfl & FD_CLOEXEC)) ? O_CLOEXEC : 0) < 0) {
    int e = errno;
    if (old)
      fdt_set(fd, old), fdt_put(old);
    shim_internal_close(k);
    errno = e;
    return -1;
  }
  shim_internal_close(k);
  if (old)
    fdt_put(old);
  return 0;
}

static int is_loopback(const struct sockaddr *a)
{
  if (a->sa_family == AF_INET)
    return (ntohl(((const struct sockaddr_in *)a)->sin_addr.s_addr) >> 24) == 127;
  if (a->sa_family == AF_INET6) {
    const struct in6_addr *x = &((const struct sockaddr_in6 *)a)->sin6_addr;
    if (IN6_IS_ADDR_LOOPBACK(x))
      return 1;
    return IN6_IS_ADDR_V4MAPPED(x) && x->s6_addr[12] == 127;
  }
  return 0;
}

/* ENOSHIM_DIRECT=PREFIX,... adds destinations for this program only.  Read
 * once, at the first connect; a value that is not a list of prefixes
 * (enoshim/prefix.h) is reported and ignored as a whole. */
#define ENV_DIRECT_MAX 64
static struct prefix env_direct[ENV_DIRECT_MAX];
static int n_env_direct;
static pthread_once_t env_direct_once = PTHREAD_ONCE_INIT;

static void env_direct_read(void)
{
  const char *env = getenv("ENOSHIM_DIRECT");
  char bad[64];
  if (!env || !*env)
    return;
  int n = prefix_parse_list(env, env_direct, ENV_DIRECT_MAX, bad, sizeof(bad));
  if (n == PREFIX_LIST_TOO_MANY)
    shim_log("ENOSHIM_DIRECT has more than %d prefixes (from '%s' on): ignoring ENOSHIM_DIRECT",
             ENV_DIRECT_MAX, bad);
  else if (n < 0)
    shim_log("ENOSHIM_DIRECT: '%s' is not ADDRESS or ADDRESS/LENGTH (IPv4 0-32, IPv6 0-128): "
             "ignoring ENOSHIM_DIRECT", bad);
  else
    n_env_direct = n;
}

int shim_addr_is_direct(const struct sockaddr *a, socklen_t len)
{
  const uint8_t *addr;
  int fam;
  (void)len;
  pthread_once(&env_direct_once, env_direct_read);
  if (is_loopback(a))
    return 1;
  if (a->sa_family == AF_INET) {
    addr = (const uint8_t *)&((const struct sockaddr_in *)a)->sin_addr;
    fam = AF_INET;
    if (!memcmp(addr, "\0\0\0\0", 4))
      return 1;         /* 0.0.0.0 means this host */
  } else {
    const struct in6_addr *x = &((const struct sockaddr_in6 *)a)->sin6_addr;
    if (IN6_IS_ADDR_UNSPECIFIED(x) || IN6_IS_ADDR_LINKLOCAL(x))
      return 1;
    addr = x->s6_addr;  /* v4-mapped: prefix_match() takes it as IPv4 */
    fam = AF_INET6;
  }
  for (uint32_t i = 0; i < shim_hello.n_direct; i++) {
    const struct enoipc_prefix *e = &shim_hello.direct[i];
    struct prefix p = { .family = e->family, .len = e->prefixlen };
    memcpy(p.addr, e->addr, sizeof(p.addr));
    if (prefix_match(&p, fam, addr))
      return 1;
  }
  for (int i = 0; i < n_env_direct; i++)
    if (prefix_match(&env_direct[i], fam, addr))
      return 1;
  return 0;
}

/* ---- socket() --------------------------------------------------------------------- */

static int forward_setopt(struct shim_sock *s, int level, int name, const void *val, socklen_t len);

/* enorun's per-program ENO settings (ENOSHIM_ENO_*), applied to every new
 * socket as if the program had called setsockopt() itself. */
static void apply_env_overrides(struct shim_sock *s)
{
  const char *e = getenv("ENOSHIM_ENO_ENABLED");
  if (e && *e) {
    int v = atoi(e);
    forward_setopt(s, IPPROTO_TCP, TCP_ENO_ENABLED, &v, sizeof(v));
  }
  e = getenv("ENOSHIM_ENO_MANDATORY");
  if (e && *e) {
    int v = atoi(e) != 0;
    if (forward_setopt(s, IPPROTO_TCP, TCP_ENO_TEP_MANDATORY, &v, sizeof(v)) == 0)
      s->tep_mandatory = v;
  }
  e = getenv("ENOSHIM_ENO_TEPS");
  if (e && *e) {
    uint8_t teps[32];
    size_t n = 0;
    char buf[256];
    snprintf(buf, sizeof(buf), "%s", e);
    char *save = NULL;
    for (char *tok = strtok_r(buf, ", ", &save); tok && n < sizeof(teps); tok = strtok_r(NULL, ", ", &save))
      teps[n++] = (uint8_t)strtoul(tok, NULL, 16);
    if (forward_setopt(s, IPPROTO_TCP, TCP_ENO_TEPS, teps, (socklen_t)n) && !shim_env_warned++)
      shim_log("ENOSHIM_ENO_TEPS=%s refused by tund (%s)", e, strerror(errno));
  }
}

int sock_socket(int domain, int type, int protocol)
{
  int fds[2], nfds = 0, err = 0;
  uint64_t id = 0;
  struct enoipc_socket rq = { .domain = domain, .v6only = 0 };
  struct enoipc_socket_ok ok;
  size_t oklen = sizeof(ok);

  if (domain == AF_INET6) {
    /* the system default for IPV6_V6ONLY */
    int fd = open("/proc/sys/net/ipv6/bindv6only", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
      char c = '0';
      if (real.read(fd, &c, 1) == 1)
        rq.v6only = c == '1';
      real.close(fd);
    }
  }
  int fd = ctl_take_standby(domain, rq.v6only, type & SOCK_CLOEXEC, &id, &fds[1], &ok.shm_size);
  int standby = fd >= 0;
  if (fd < 0) {
    int r = ctl_call(ENOIPC_SOCKET, 0, &rq, sizeof(rq), NULL, 0, NULL, 0, &err, &ok, &oklen, fds, &nfds, &id);
    if (r) {
      if (shim_fallback_plain)
        return real.socket(domain, type, protocol);
      errno = ENETDOWN;
      return -1;
    }
    if (err || nfds != 2 || oklen != sizeof(ok)) {
      for (int i = 0; i < nfds; i++)
        real.close(fds[i]);
      errno = err ? err : EPROTO;
      return -1;
    }
    fd = fds[0];
    if (!(type & SOCK_CLOEXEC))
      real.fcntl(fd, F_SETFD, 0);
  }
  struct shim_sock *s = sock_from_shm(id, fds[1], ok.shm_size, SK_STREAM, domain, SHM_OWN, &err);
  real.close(fds[1]);
  if (!s) {
    real.close(fd);
    errno = err;
    return -1;
  }
  s->v6only = rq.v6only;
  if (type & SOCK_NONBLOCK)
    real.fcntl(fd, F_SETFL, real.fcntl(fd, F_GETFL) | O_NONBLOCK);
  fdt_set(fd, s);
  apply_env_overrides(s);
  if (shim_debug)
    shim_log("socket fd %d = tund socket %llu%s", fd, (unsigned long long)id, standby ? " (standby)" : "");
  return fd;
}

/* ---- bind / listen ------------------------------------------------------------------- */

static int kernel_addr_port(int k, int domain)
{
  struct sockaddr_storage ss;
  socklen_t l = sizeof(ss);
  if (real.getsockname(k, (struct sockaddr *)&ss, &l))
    return -1;
  if (domain == AF_INET)
    return ntohs(((struct sockaddr_in *)&ss)->sin_port);
  return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
}

int sock_bind(int fd, struct shim_sock *s, const struct sockaddr *a, socklen_t len)
{
  struct enoipc_addr ia, bound;
  int err, e;
  if ((e = sa_to_ipc(a, len, s->domain, &ia))) {
    errno = e;
    return -1;
  }
  if (s->bound || s->connect_started || s->kind == SK_LISTENER) {
    errno = EINVAL;
    return -1;
  }
  if (is_loopback(a)) {
    /* bound to loopback: the program wants local peers only — a kernel socket */
    if (go_direct(fd, s))
      return -1;
    return real.bind(fd, a, len);
  }
  /* Port 0: the kernel picks the port, but lwIP may hold it already (an
   * active connection or TIME-WAIT of tund's own): then ask the kernel again,
   * keeping the refused sockets open so it cannot hand the same port back. */
  int want_any = ia.port == 0;
  int refused[8], nrefused = 0, k, r;
  size_t bl;
  for (;;) {
    k = new_kernel_socket(s, fd);
    if (k < 0) {
      r = -1;
      goto out;
    }
    if (real.bind(k, a, len) < 0) {
      e = errno;
      real.close(k);
      if (e != EADDRNOTAVAIL) {
        errno = e;
        r = -1;
        goto out;
      }
      k = -1;            /* presumably lwIP's own address: tund only */
    } else {
      ia.port = (uint16_t)kernel_addr_port(k, s->domain);
    }
    bl = sizeof(bound);
    struct enoipc_bind b = { .addr = ia, .kernel_bound = k >= 0 };
    r = ctl_call(ENOIPC_BIND, s->id, &b, sizeof(b), NULL, 0, NULL, 0, &err, &bound, &bl, NULL, NULL,
                 NULL);
    if (!r && err == EADDRINUSE && want_any && k >= 0 && nrefused < (int)(sizeof(refused) / sizeof(refused[0]))) {
      refused[nrefused++] = k;
      ia.port = 0;
      continue;
    }
    break;
  }
  if (r || err) {
    if (k >= 0)
      real.close(k);
    errno = r ? ENETDOWN : err;
    r = -1;
    goto out;
  }
  if (k >= 0)
    s->kfd = shim_internal_fd(k);
  s->bound = 1;
  r = 0;
out:
  e = errno;
  for (int i = 0; i < nrefused; i++)
    real.close(refused[i]);
  errno = e;
  return r;
}

int sock_listen(int fd, struct shim_sock *s, int backlog)
{
  int err;
  if (s->connect_started) {
    errno = EINVAL;
    return -1;
  }
  if (backlog <= 0)
    backlog = 1;
  if (backlog > 65535)
    backlog = 65535;
  if (!s->bound && s->kind != SK_LISTENER) {
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    ss.ss_family = (sa_family_t)s->domain;
    if (sock_bind(fd, s, (struct sockaddr *)&ss,
                  s->domain == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6)))
      return -1;
  }
  int k = s->kfd;
  if (k >= 0 && real.listen(k, backlog) < 0)
    return -1;
  struct enoipc_listen l = { .backlog = backlog, .has_kernel_fd = k >= 0 };
  int r = ctl_call(ENOIPC_LISTEN, s->id, &l, sizeof(l), NULL, 0, k >= 0 ? &k : NULL, k >= 0 ? 1 : 0,
                   &err, NULL, NULL, NULL, NULL, NULL);
  if (r || err) {
    errno = r ? ENETDOWN : err;
    return -1;
  }
  if (k >= 0) {
    shim_internal_close(k);    /* tund has its own copy now */
    s->kfd = -1;
  }
  s->kind = SK_LISTENER;
  return 0;
}

/* ---- accept ------------------------------------------------------------------------ */

int sock_accept(int fd, struct shim_sock *s, struct sockaddr *a, socklen_t *alen, int flags)
{
  struct enoipc_accept rec;
  int rfds[4];
  if (s->kind != SK_LISTENER) {
    errno = EINVAL;
    return -1;
  }
  if (flags & ~(SOCK_NONBLOCK | SOCK_CLOEXEC)) {
    errno = EINVAL;
    return -1;
  }
  for (;;) {
    struct iovec iov = { .iov_base = &rec, .iov_len = sizeof(rec) };
    union {
      struct cmsghdr align;
      char buf[CMSG_SPACE(sizeof(int) * 4)];
    } cb;
    struct msghdr mh;
    memset(&mh, 0, sizeof(mh));
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = cb.buf;
    mh.msg_controllen = sizeof(cb.buf);
    ssize_t n = real.recvmsg(fd, &mh, MSG_CMSG_CLOEXEC | MSG_WAITALL);
    if (n < 0)
      return -1;            /* EAGAIN, EINTR: as the kernel would */
    if (n == 0) {
      struct enoshm_status st;
      enoshm_status_read(s->shm, &st);
      errno = st.error ? st.error : EINVAL;   /* listener shut down, or tund gone */
      return -1;
    }
    int nf = 0;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
      if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
        int cnt = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
        for (int i = 0; i < cnt && nf < 4; i++)
          memcpy(&rfds[nf++], CMSG_DATA(c) + (size_t)i * sizeof(int), sizeof(int));
      }
    atomic_fetch_add(&s->shm->acc_cons, 1);
    if (atomic_fetch_and(&s->shm->wants, ~ENOSHM_WANT_ACCEPT) & ENOSHM_WANT_ACCEPT) {
      if (real.send(fd, "a", 1, MSG_DONTWAIT | MSG_NOSIGNAL) != 1)
        ctl_kick(s->id, 0);
    }
    if (n != (ssize_t)sizeof(rec) || rec.magic != ENOIPC_ACCEPT_MAGIC || rec.nfds != nf ||
        !((rec.kind == ENOIPC_ACCEPT_TUND && nf == 2) || (rec.kind == ENOIPC_ACCEPT_DIRECT && nf == 1))) {
      for (int i = 0; i < nf; i++)
        real.close(rfds[i]);
      shim_log("malformed accept record on fd %d; skipped", fd);
      continue;
    }
    int nfd = rfds[0];
    if (rec.kind == ENOIPC_ACCEPT_TUND) {
      int err = 0;
      struct shim_sock *c = sock_from_shm(rec.sock, rfds[1], 0, SK_STREAM, s->domain,
                                          s->id | SHM_TAG_LISTENER, &err);
      real.close(rfds[1]);
      if (!c) {
        real.close(nfd);
        continue;
      }
      c->nodelay = s->nodelay;
      c->keepalive = s->keepalive;
      c->v6only = s->v6only;
      c->tep_mandatory = s->tep_mandatory;
      fdt_set(nfd, c);
      if (a && alen) {
        struct enoshm_status cst;
        struct sockaddr_storage ss;
        enoshm_status_read(c->shm, &cst);
        socklen_t sl = shm_to_sa(&cst.remote, c->domain, &ss);
        copy_out_addr(&ss, sl, a, alen);
      }
    } else if (a && alen) {
      real.getpeername(nfd, a, alen);
    }
    if (!(flags & SOCK_CLOEXEC))
      real.fcntl(nfd, F_SETFD, 0);
    if (flags & SOCK_NONBLOCK)
      real.fcntl(nfd, F_SETFL, real.fcntl(nfd, F_GETFL) | O_NONBLOCK);
    return nfd;
  }
}

/* ---- connect ----------------------------------------------------------------------- */

/* A request whose answer is only an errno: 0, or -1 with tund's errno, or
 * with down_errno when tund cannot be reached. */
static int ctl_ask(uint16_t type, uint64_t id, const void *p, size_t n, int down_errno)
{
  int err;
  if (ctl_call(type, id, p, n, NULL, 0, NULL, 0, &err, NULL, NULL, NULL, NULL, NULL)) {
    errno = down_errno;
    return -1;
  }
  if (err) {
    errno = err;
    return -1;
  }
  return 0;
}

/* Make our end unwritable: fill its (tiny) send buffer with filler bytes. */
void io_fill(int fd);
void io_fill(int fd)
{
  /* A non-blocking send on a unix stream socket queues what fits and stops
   * only when no more does, so a short count means full: one call, not a
   * second just to see EAGAIN (our end's buffer is far smaller than this). */
  static const char filler[16384];
  for (int i = 0; i < 16; i++) {
    ssize_t n = real.send(fd, filler, sizeof(filler), MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n <= 0 || (size_t)n < sizeof(filler))
      break;
  }
}

/* Block (per the fd's own O_NONBLOCK and SO_SNDTIMEO) until tund drains the
 * filler.  Returns 0 when woken, -1 with errno (EAGAIN, EINTR, EPIPE). */
int io_wait_writable(int fd, int flags);
int io_wait_writable(int fd, int flags)
{
  ssize_t n = real.send(fd, "w", 1, MSG_NOSIGNAL | (flags & MSG_DONTWAIT));
  return n == 1 ? 0 : -1;
}

/* A blocking connect() can return with bytes of ours that tund has not read
 * yet: the wake-up byte of io_wait_writable(), or filler, when tund
 * established the connection before we first looked.  tund's read of them
 * makes the kernel signal EPOLLOUT on our end once more, so an
 * edge-triggered epoll set up right after connect() would see a second
 * EPOLLOUT edge with nothing changed (kernel TCP gives one).  Only an
 * edge-triggered registration can tell, so connect() just notes it and
 * epoll_ctl() (shim.c) settles: tund is awake (it has just drained the
 * filler, or is about to), so wait, bounded, until it has read everything.
 * Usually that is a yield or two; a loaded machine or a sanitizer build can
 * take milliseconds, so the wait backs off up to half a second, a bound only
 * a stalled tund reaches.  Doing it in every connect() cost a sched_yield
 * spin per connection, on the CPU the peer's side needed. */
void sock_settle(int fd, struct shim_sock *s)
{
  s->wake_queued = 0;
  long sleep_ns = 20000, slept_ns = 0;
  for (int i = 0;; i++) {
    int q = 0;
    if (real.ioctl(fd, SIOCOUTQ, &q) < 0 || q <= 0)
      return;
    if (i < 64) {
      sched_yield();
      continue;
    }
    if (slept_ns >= 500000000L)
      return;
    struct timespec ts = { 0, sleep_ns };
    nanosleep(&ts, NULL);
    slept_ns += sleep_ns;
    if (sleep_ns < 4000000L)
      sleep_ns *= 2;
  }
}

static int connect_result(struct shim_sock *s)
{
  struct enoshm_status st;
  sock_status(s, &st);
  if (st.state == ENOSHM_S_ESTABLISHED)
    return 0;
  if (st.state == ENOSHM_S_CLOSED) {
    s->err_reported = 1;
    errno = st.error ? st.error : ECONNREFUSED;
    return -1;
  }
  return 1;   /* still connecting */
}

int sock_connect(int fd, struct shim_sock *s, const struct sockaddr *a, socklen_t len)
{
  struct enoipc_addr ia;
  int e;
  if (s->kind == SK_LISTENER) {
    errno = EISCONN;
    return -1;
  }
  if (a && len >= sizeof(sa_family_t) && a->sa_family == AF_UNSPEC) {
    errno = EAFNOSUPPORT;      /* disconnect: not supported on shim sockets */
    return -1;
  }
  if ((e = sa_to_ipc(a, len, s->domain, &ia))) {
    errno = e;
    return -1;
  }
  if (s->connect_started) {
    int r = connect_result(s);
    if (r == 0) {
      errno = EISCONN;
      return -1;
    }
    if (r < 0)
      return -1;
    errno = EALREADY;
    return -1;
  }
  if (shim_addr_is_direct(a, len)) {
    if (s->tep_mandatory) {
      /* a direct route is a plain kernel connection: TCP_ENO_TEP_MANDATORY
       * forbids it (api-06 §2.1), before anything is sent */
      errno = EPROTONOSUPPORT;
      return -1;
    }
    if (shim_debug)
      shim_log("connect fd %d: direct kernel socket", fd);
    if (go_direct(fd, s))
      return -1;
    return real.connect(fd, a, len);
  }
  if (s->kfd >= 0) {
    shim_internal_close(s->kfd);   /* bound for a direct route that is not taken */
    s->kfd = -1;
  }
  if (s->kind == SK_STREAM && s->cache_tag == SHM_OWN && !s->shared) {
    /* Made by socket() here, never connected, held by no other process: the
     * CONNECT goes without waiting for tund's answer, one round trip (two
     * wake-ups) fewer per connection.  Every outcome, an error tund finds
     * at once (no route, no free port) included, comes through the status
     * block that the wait below reads anyway; until tund has taken the
     * request, sock_status() shows the socket connecting.  A socket another
     * process may hold waits for the answer: that process's connect() could
     * be the one tund takes first, and this one must then say EALREADY. */
    if (ctl_post(ENOIPC_CONNECT_POSTED, s->id, &ia, sizeof(ia), NULL, 0)) {
      errno = ENETDOWN;
      return -1;
    }
    s->connect_posted = 1;
  } else {
    if (ctl_ask(ENOIPC_CONNECT, s->id, &ia, sizeof(ia), ENETDOWN))
      return -1;
  }
  /* Unwritable until tund says connected or failed: tund drains the fillers
   * then, and never while it sees the socket as new (so a filler cannot
   * overtake a posted CONNECT). */
  io_fill(fd);
  s->connect_started = 1;
  int fl = real.fcntl(fd, F_GETFL);
  if (fl >= 0 && (fl & O_NONBLOCK)) {
    /* Linux: a non-blocking TCP connect always says EINPROGRESS, even when
     * it completes at once; the program learns the outcome from poll and
     * SO_ERROR */
    errno = EINPROGRESS;
    return -1;
  }
  for (;;) {
    int c = connect_result(s);
    if (c == 0)
      s->wake_queued = 1;   /* see sock_settle() */
    if (c <= 0)
      return c;
    if (io_wait_writable(fd, 0) < 0) {
      if (errno == EAGAIN)
        errno = EINPROGRESS;
      else if (errno == EPIPE || errno == ECONNRESET) {
        c = connect_result(s);
        if (c <= 0)
          return c;
        errno = ECONNRESET;
      }
      return -1;
    }
  }
}

int sock_shutdown(int fd, struct shim_sock *s, int how)
{
  (void)fd;
  if (how != SHUT_RD && how != SHUT_WR && how != SHUT_RDWR) {
    errno = EINVAL;
    return -1;
  }
  int32_t h = how;
  if (ctl_ask(ENOIPC_SHUTDOWN, s->id, &h, sizeof(h), ENOTCONN))
    return -1;
  if (how != SHUT_WR)
    s->shut_rd = 1;
  if (how != SHUT_RD)
    s->shut_wr = 1;
  return 0;
}

/* ---- options ------------------------------------------------------------------------- */

static int put_int(void *val, socklen_t *len, int v)
{
  if (!val || !len || *len < (socklen_t)sizeof(int)) {
    errno = EINVAL;
    return -1;
  }
  memcpy(val, &v, sizeof(v));
  *len = sizeof(v);
  return 0;
}

static int get_int(const void *val, socklen_t len, int *out)
{
  if (!val || len < (socklen_t)sizeof(int)) {
    errno = EINVAL;
    return -1;
  }
  memcpy(out, val, sizeof(int));
  return 0;
}

static int forward_setopt(struct shim_sock *s, int level, int name, const void *val, socklen_t len)
{
  struct enoipc_opt o = { .level = level, .name = name, .len = (uint32_t)len };
  int err;
  if (len > ENOIPC_OPT_MAX) {
    errno = EINVAL;
    return -1;
  }
  int r = ctl_call(ENOIPC_SETOPT, s->id, &o, sizeof(o), val, len, NULL, 0, &err, NULL, NULL, NULL, NULL, NULL);
  if (r == 0 && err == EBADF) {
    /* tund already forgot this connection (it ended): like the kernel,
     * accept generic options on a closed socket; ENO options are moot */
    struct enoshm_status st;
    enoshm_status_read(s->shm, &st);
    if (st.state == ENOSHM_S_CLOSED)
      err = (level == IPPROTO_TCP && name >= TCPINC_OPT_BASE) ? EINVAL : 0;
  }
  if (r) {
    errno = ENETDOWN;
    return -1;
  }
  if (err) {
    errno = err;
    return -1;
  }
  return 0;
}

/* An option the shim has already validated and that tund applies without
 * fail (conn_setopt: TCP_NODELAY, keepalive, SO_LINGER, SO_REUSE*): posted
 * without waiting for the answer, as a kernel setsockopt would not block.
 * Servers set TCP_NODELAY on every accepted connection; a round trip to tund
 * there was a sleep and a wake-up per connection. */
static int post_setopt(struct shim_sock *s, int level, int name, const void *val, socklen_t len)
{
  struct enoipc_opt o = { .level = level, .name = name, .len = (uint32_t)len };
  if (len > ENOIPC_OPT_MAX) {
    errno = EINVAL;
    return -1;
  }
  if (ctl_post(ENOIPC_SETOPT_POSTED, s->id, &o, sizeof(o), val, len)) {
    errno = ENETDOWN;
    return -1;
  }
  return 0;
}

/*
 * The ENO options a program sets between socket() and connect() — which
 * TEPs' AEADs to offer, whether to resume, ENO on or off — would each cost a
 * round trip to tund, like a second connect.  tund refuses them only when
 * the SYN is out (EISCONN) or a malformed value (EINVAL); both are known
 * here for a socket this process alone holds, so such an option is checked
 * here and posted.  Options with more to check (TCP_ENO_TEPS, _RAW), with
 * side effects (TCP_ENO_TEP_MANDATORY, _CACHE_FLUSH, _REKEY) and any
 * socket another process may hold still wait for tund's answer: there the
 * order of the two processes' requests at tund, not ours, decides whether
 * the option is in force for a connect the other one makes.
 */
static int eno_opt_postable(const struct shim_sock *s, int name, const void *val, socklen_t len)
{
  int v;
  /* made by socket() here (not accepted, not attached), not yet connecting */
  if (s->kind != SK_STREAM || s->cache_tag != SHM_OWN || s->connect_started || s->shared || !val || len < 1)
    return 0;
  switch (name) {
  case TCP_CRYPT_ACONF:
  case TCP_CRYPT_BCONF:
    return enoipc_aead_list_ok(val, len);
  case TCP_ENO_ENABLED:
  case TCP_ENO_SELF_GOPT:
  case TCP_ENO_AA_MANDATORY:
  case TCP_CRYPT_NORESUME:
  case TCP_CRYPT_NOCACHE:
    if (len < (socklen_t)sizeof(int))
      return 0;
    memcpy(&v, val, sizeof(v));
    return enoipc_eno_int_ok(name, v);
  default:
    return 0;
  }
}

static int forward_getopt(struct shim_sock *s, int level, int name, void *val, socklen_t *len)
{
  struct enoipc_opt o = { .level = level, .name = name, .len = len ? (uint32_t)*len : 0 };
  uint8_t buf[ENOIPC_OPT_MAX];
  size_t bl = sizeof(buf);
  int err;
  if (!len || !val) {
    errno = EFAULT;
    return -1;
  }
  if (o.len > ENOIPC_OPT_MAX)
    o.len = ENOIPC_OPT_MAX;
  int r = ctl_call(ENOIPC_GETOPT, s->id, &o, sizeof(o), NULL, 0, NULL, 0, &err, buf, &bl, NULL, NULL, NULL);
  if (r) {
    errno = ENETDOWN;
    return -1;
  }
  if (err) {
    errno = err;
    return -1;
  }
  if (bl > *len)
    bl = *len;
  memcpy(val, buf, bl);
  *len = (socklen_t)bl;
  return 0;
}

int shim_eno_opt_readonly(int name)
{
  switch (name) {
  case TCP_ENO_SESSID: case TCP_ENO_NEGTEP: case TCP_ENO_PEER_GOPT: case TCP_ENO_ROLE:
  case TCP_ENO_SELF_NAME: case TCP_ENO_PEER_NAME: case TCP_ENO_TRANSCRIPT: case TCP_CRYPT_CONF:
  case TCP_ENO_STATE:
    return 1;
  default:
    return 0;
  }
}

/* The read-only ENO/tcpcrypt options come straight from the shared status
 * block; the draft's errors (api-06 §2.1): ENOTCONN while negotiating,
 * EINVAL when ENO is disabled. */
static int eno_getopt_local(struct shim_sock *s, int name, void *val, socklen_t *len)
{
  struct enoshm_status st;
  uint8_t buf[1 + TCPINC_SESSID_MAX];
  size_t n;
  enoshm_status_read(s->shm, &st);
  if (name == TCP_ENO_STATE)
    return put_int(val, len, st.eno_state);
  if (name == TCP_ENO_TRANSCRIPT) {
    /* available in raw mode as well */
    if (st.transcript_len == 0) {
      errno = st.eno_state == TCPINC_STATE_NEGOTIATING ? ENOTCONN : EINVAL;
      return -1;
    }
    n = st.transcript_len > TCPINC_TRANSCRIPT_MAX ? TCPINC_TRANSCRIPT_MAX : st.transcript_len;
    goto bytes_from_transcript;
  }
  if (st.eno_state == TCPINC_STATE_NEGOTIATING) {
    errno = ENOTCONN;
    return -1;
  }
  if (st.eno_state != TCPINC_STATE_ENCRYPTING || st.raw) {
    errno = EINVAL;
    return -1;
  }
  switch (name) {
  case TCP_ENO_NEGTEP:
    return put_int(val, len, st.negtep);
  case TCP_ENO_PEER_GOPT:
    return put_int(val, len, st.peer_gopt);
  case TCP_ENO_ROLE:
    return put_int(val, len, st.role);
  case TCP_CRYPT_CONF:
    if (!st.aead) {
      errno = EINVAL;
      return -1;
    }
    return put_int(val, len, st.aead);
  case TCP_ENO_SESSID:
  case TCP_ENO_SELF_NAME:
  case TCP_ENO_PEER_NAME: {
    size_t sl = st.sessid_len > TCPINC_SESSID_MAX ? TCPINC_SESSID_MAX : st.sessid_len;
    if (sl == 0) {
      errno = EINVAL;      /* never an empty ID (SPEC-NOTES, RFC 8547 §5.1) */
      return -1;
    }
    if (name == TCP_ENO_SESSID) {
      memcpy(buf, st.sessid, sl);
      n = sl;
    } else {
      /* api-06 §2.1: role byte | session ID; the peer's name negates it */
      buf[0] = (uint8_t)(name == TCP_ENO_SELF_NAME ? st.role : !st.role);
      memcpy(buf + 1, st.sessid, sl);
      n = 1 + sl;
    }
    if (!val || !len) {
      errno = EFAULT;
      return -1;
    }
    if (*len < (socklen_t)n) {
      errno = EINVAL;
      return -1;
    }
    memcpy(val, buf, n);
    *len = (socklen_t)n;
    return 0;
  }
  default:
    return 1;   /* not a local one */
  }
bytes_from_transcript:
  if (!val || !len) {
    errno = EFAULT;
    return -1;
  }
  if (*len < (socklen_t)n) {
    errno = EINVAL;
    return -1;
  }
  memcpy(val, st.transcript, n);
  *len = (socklen_t)n;
  return 0;
}

int sock_getsockopt(int fd, struct shim_sock *s, int level, int name, void *val, socklen_t *len)
{
  if (level == SOL_SOCKET) {
    switch (name) {
    case SO_ERROR: {
      struct enoshm_status st;
      enoshm_status_read(s->shm, &st);
      int e = 0;
      if (st.error && !s->err_reported) {
        e = st.error;
        s->err_reported = 1;
      }
      return put_int(val, len, e);
    }
    case SO_TYPE: return put_int(val, len, SOCK_STREAM);
    case SO_DOMAIN: return put_int(val, len, s->domain);
    case SO_PROTOCOL: return put_int(val, len, IPPROTO_TCP);
    case SO_ACCEPTCONN: return put_int(val, len, s->kind == SK_LISTENER);
    case SO_REUSEADDR: return put_int(val, len, s->reuseaddr);
    case SO_REUSEPORT: return put_int(val, len, s->reuseport);
    case SO_KEEPALIVE: return put_int(val, len, s->keepalive);
    case SO_RCVBUF: return put_int(val, len, (int)s->rx_size);
    case SO_SNDBUF: return put_int(val, len, (int)s->tx_size);
    case SO_LINGER: {
      struct linger lg = { .l_onoff = s->linger_on, .l_linger = s->linger_sec };
      if (!val || !len || *len < (socklen_t)sizeof(lg)) {
        errno = EINVAL;
        return -1;
      }
      memcpy(val, &lg, sizeof(lg));
      *len = sizeof(lg);
      return 0;
    }
    case SO_RCVTIMEO:
    case SO_SNDTIMEO:
    case SO_RCVLOWAT:
    case SO_SNDLOWAT:
      return real.getsockopt(fd, level, name, val, len);
    default:
      errno = ENOPROTOOPT;
      return -1;
    }
  }
  if (level == IPPROTO_TCP) {
    switch (name) {
    case TCP_NODELAY: return put_int(val, len, s->nodelay);
    case TCP_CORK: return put_int(val, len, s->cork);
    case TCP_KEEPIDLE: return put_int(val, len, s->keep_idle);
    case TCP_KEEPINTVL: return put_int(val, len, s->keep_intvl);
    case TCP_KEEPCNT: return put_int(val, len, s->keep_cnt);
    case TCP_CONGESTION: {
      /* lwIP's congestion control is NewReno-like */
      static const char cc[] = "reno";
      if (!val || !len) {
        errno = EFAULT;
        return -1;
      }
      socklen_t n = *len < (socklen_t)sizeof(cc) ? *len : (socklen_t)sizeof(cc);
      memcpy(val, cc, n);
      *len = n;
      return 0;
    }
    case TCP_MAXSEG:
    case TCP_INFO:
      return forward_getopt(s, level, name, val, len);
    default:
      if (name >= TCPINC_OPT_BASE && name < TCPINC_OPT_BASE + 0x100) {
        /* read-only results come from the shared status block; the
         * read-write settings (api-06: "return the previously successfully
         * written value or the default") from tund, in any state */
        if (shim_eno_opt_readonly(name)) {
          int r = eno_getopt_local(s, name, val, len);
          if (r <= 0)
            return r;
        }
        return forward_getopt(s, level, name, val, len);
      }
      errno = ENOPROTOOPT;
      return -1;
    }
  }
  if (level == IPPROTO_IPV6 && s->domain == AF_INET6) {
    if (name == IPV6_V6ONLY) return put_int(val, len, s->v6only);
    if (name == IPV6_TCLASS) return put_int(val, len, s->tclass);
  }
  if (level == IPPROTO_IP && name == IP_TOS)
    return put_int(val, len, s->tos);
  errno = ENOPROTOOPT;
  return -1;
}

int sock_setsockopt(int fd, struct shim_sock *s, int level, int name, const void *val, socklen_t len)
{
  int v = 0;
  if (level == SOL_SOCKET) {
    switch (name) {
    case SO_REUSEADDR:
    case SO_REUSEPORT:
    case SO_KEEPALIVE:
      if (get_int(val, len, &v))
        return -1;
      if (name == SO_REUSEADDR) s->reuseaddr = v != 0;
      if (name == SO_REUSEPORT) s->reuseport = v != 0;
      if (name == SO_KEEPALIVE) s->keepalive = v != 0;
      if (s->kfd >= 0)
        real.setsockopt(s->kfd, level, name, val, len);
      return post_setopt(s, level, name, val, len);
    case SO_LINGER: {
      struct linger lg;
      if (!val || len < (socklen_t)sizeof(lg)) {
        errno = EINVAL;
        return -1;
      }
      memcpy(&lg, val, sizeof(lg));
      s->linger_on = lg.l_onoff != 0;
      s->linger_sec = lg.l_linger;
      return post_setopt(s, level, name, val, len);
    }
    case SO_RCVBUF:
    case SO_SNDBUF:
    case SO_RCVBUFFORCE:
    case SO_SNDBUFFORCE:
      /* The rings are the buffers; their size is tund's ring_size.  Kept to
       * carry over to a kernel socket; getsockopt reports the ring size. */
      if (get_int(val, len, &v))
        return -1;
      if (name == SO_RCVBUF || name == SO_RCVBUFFORCE) s->rcvbuf = v;
      else s->sndbuf = v;
      return 0;
    case SO_RCVTIMEO:
    case SO_SNDTIMEO:
      /* applied to our end of the pair: blocking waits honour them */
      return real.setsockopt(fd, level, name, val, len);
    case SO_PRIORITY:
    case SO_RCVLOWAT:
    case SO_SNDLOWAT:
    case SO_OOBINLINE:
    case SO_BROADCAST:
    case SO_DONTROUTE:
    case SO_TIMESTAMP:
      /* meaningless or inert for a TCP stream carried by tund: accepted */
      if (get_int(val, len, &v))
        return -1;
      return 0;
    default:
      errno = ENOPROTOOPT;
      return -1;
    }
  }
  if (level == IPPROTO_TCP) {
    switch (name) {
    case TCP_NODELAY:
      if (get_int(val, len, &v))
        return -1;
      s->nodelay = v != 0;
      return post_setopt(s, level, name, val, len);
    case TCP_KEEPIDLE:
    case TCP_KEEPINTVL:
    case TCP_KEEPCNT:
      if (get_int(val, len, &v))
        return -1;
      if (v < 1 || v > 32767) {
        errno = EINVAL;
        return -1;
      }
      if (name == TCP_KEEPIDLE) s->keep_idle = v;
      if (name == TCP_KEEPINTVL) s->keep_intvl = v;
      if (name == TCP_KEEPCNT) s->keep_cnt = v;
      return post_setopt(s, level, name, val, len);
    case TCP_CORK:
      /* lwIP has no cork; data is sent as written (Nagle permitting) */
      if (get_int(val, len, &v))
        return -1;
      s->cork = v != 0;
      return 0;
    case TCP_DEFER_ACCEPT:
    case TCP_QUICKACK:
    case TCP_USER_TIMEOUT:
    case TCP_FASTOPEN:
    case TCP_WINDOW_CLAMP:
    case TCP_MAXSEG:
      if (get_int(val, len, &v))
        return -1;
      return 0;
    case TCP_CONGESTION:
      errno = ENOENT;
      return -1;
    default:
      if (name >= TCPINC_OPT_BASE && name < TCPINC_OPT_BASE + 0x100) {
        if (eno_opt_postable(s, name, val, len))
          return post_setopt(s, level, name, val, len);
        int r = forward_setopt(s, level, name, val, len);
        if (r == 0 && name == TCP_ENO_TEP_MANDATORY && get_int(val, len, &v) == 0)
          s->tep_mandatory = v != 0;
        return r;
      }
      errno = ENOPROTOOPT;
      return -1;
    }
  }
  if (level == IPPROTO_IPV6 && s->domain == AF_INET6) {
    if (name == IPV6_V6ONLY) {
      if (get_int(val, len, &v))
        return -1;
      if (s->bound || s->connect_started || s->kind == SK_LISTENER) {
        errno = EINVAL;
        return -1;
      }
      s->v6only = v != 0;
      return forward_setopt(s, level, name, val, len);
    }
    if (name == IPV6_TCLASS) {
      if (get_int(val, len, &v))
        return -1;
      s->tclass = v;
      return 0;
    }
  }
  if (level == IPPROTO_IP && name == IP_TOS) {
    if (get_int(val, len, &v))
      return -1;
    s->tos = v;
    return 0;
  }
  errno = ENOPROTOOPT;
  return -1;
}

int sock_ioctl(int fd, struct shim_sock *s, unsigned long req, void *arg)
{
  switch (req) {
  case FIONREAD: {
    uint64_t prod = atomic_load_explicit(&s->shm->rx_prod, memory_order_acquire);
    uint64_t cons = atomic_load_explicit(&s->shm->rx_cons, memory_order_relaxed);
    int v = 0;
    if (s->kind == SK_LISTENER) {
      errno = EINVAL;
      return -1;
    }
    if (prod - cons <= s->rx_size)
      v = (int)(prod - cons);
    if (!arg) {
      errno = EFAULT;
      return -1;
    }
    memcpy(arg, &v, sizeof(v));
    return 0;
  }
  case SIOCOUTQ: {
    uint64_t prod = atomic_load_explicit(&s->shm->tx_prod, memory_order_relaxed);
    uint64_t cons = atomic_load_explicit(&s->shm->tx_cons, memory_order_acquire);
    int v = prod - cons <= s->tx_size ? (int)(prod - cons) : 0;
    if (!arg) {
      errno = EFAULT;
      return -1;
    }
    memcpy(arg, &v, sizeof(v));
    return 0;
  }
  case SIOCATMARK: {
    int v = 0;
    if (!arg) {
      errno = EFAULT;
      return -1;
    }
    memcpy(arg, &v, sizeof(v));
    return 0;
  }
  default:
    /* FIONBIO, FIOCLEX, FIONCLEX... act on the real fd */
    return real.ioctl(fd, req, arg);
  }
}

/* ---- exec: find the sockets we inherited -------------------------------------------- */

/* Take over fd if it is the program's end of a tund socket (its peer is
 * tund): ATTACH gives us its memfd.  Returns -1 if tund is unreachable. */
static int attach_fd(int fd)
{
  struct ucred cr;
  socklen_t l = sizeof(cr);
  if (real.getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &l) || (uint32_t)cr.pid != shim_tund_pid)
    return 0;
  struct enoipc_attach_ok ok;
  size_t okl = sizeof(ok);
  int rfd[2], nrfd = 0, err = 0;
  uint64_t id = 0;
  if (ctl_call(ENOIPC_ATTACH, 0, NULL, 0, NULL, 0, &fd, 1, &err, &ok, &okl, rfd, &nrfd, &id))
    return -1;
  if (err || nrfd != 1 || okl != sizeof(ok)) {
    for (int k = 0; k < nrfd; k++)
      real.close(rfd[k]);
    return 0;
  }
  struct shim_sock *s = sock_from_shm(id, rfd[0], ok.shm_size,
                                      ok.kind == ENOIPC_KIND_LISTENER ? SK_LISTENER : SK_STREAM,
                                      AF_INET, SHM_NO_CACHE, &err);
  real.close(rfd[0]);
  if (!s)
    return 0;
  struct enoshm_status st;
  enoshm_status_read(s->shm, &st);
  s->domain = st.local.family == AF_INET6 ? AF_INET6 : AF_INET;
  if (st.state >= ENOSHM_S_CONNECTING)
    s->connect_started = s->kind == SK_STREAM;
  s->bound = st.state >= ENOSHM_S_BOUND;
  s->shared = 1;
  fdt_set(fd, s);           /* the table's reference is the only one */
  if (shim_debug)
    shim_log("attached socket fd %d (tund socket %llu)", fd, (unsigned long long)id);
  return 0;
}

/* fd's kernel SOL_SOCKET option `name` has the value want */
static int sockopt_is(int fd, int name, int want)
{
  int v = 0;
  socklen_t l = sizeof(v);
  return real.getsockopt(fd, SOL_SOCKET, name, &v, &l) == 0 && v == want;
}

static int is_unix_stream(int fd)
{
  return sockopt_is(fd, SO_DOMAIN, AF_UNIX) && sockopt_is(fd, SO_TYPE, SOCK_STREAM);
}

/* At start: sockets inherited across exec. */
void sock_attach_inherited(void)
{
  DIR *d = opendir("/proc/self/fd");
  struct dirent *de;
  int candidates[256], nc = 0;
  if (!d)
    return;
  int dfd = dirfd(d);
  while ((de = readdir(d)) && nc < 256) {
    char *end;
    long fd = strtol(de->d_name, &end, 10);
    if (*end || fd < 0 || fd == dfd)
      continue;
    struct stat st;
    if (fstat((int)fd, &st) || !S_ISSOCK(st.st_mode) || !is_unix_stream((int)fd))
      continue;
    candidates[nc++] = (int)fd;
  }
  closedir(d);
  if (nc == 0)
    return;
  if (ctl_ensure())
    return;
  for (int i = 0; i < nc; i++)
    if (attach_fd(candidates[i]))
      return;
}

/* fn(fd) for each descriptor the SCM_RIGHTS parts of m carry, until fn
 * returns nonzero. */
static void passed_fds(const struct msghdr *m, int (*fn)(int fd))
{
  if (!m->msg_control || m->msg_controllen < sizeof(struct cmsghdr))
    return;
  for (struct cmsghdr *c = CMSG_FIRSTHDR((struct msghdr *)m); c; c = CMSG_NXTHDR((struct msghdr *)m, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS || c->cmsg_len < CMSG_LEN(sizeof(int)))
      continue;
    size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < n; i++) {
      int fd;
      memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(fd));
      if (fd >= 0 && fn(fd))
        return;
    }
  }
}

static int attach_passed(int fd)
{
  if (ctl_is_internal_fd(fd) || !is_unix_stream(fd))
    return 0;
  struct shim_sock *stale = fdt_take(fd);   /* the number is new: an entry is stale */
  if (stale)
    fdt_put(stale);
  return ctl_ensure() || attach_fd(fd);
}

/* Sockets another process passed us (SCM_RIGHTS) arrive as bare pair ends:
 * without this the program would write its bytes into tund's wake-up
 * channel.  Called after every recvmsg() that brought control data. */
void sock_attach_received(const struct msghdr *m) { passed_fds(m, attach_passed); }

static int mark_shared(int fd)
{
  struct shim_sock *s = fdt_maybe(fd) ? fdt_get(fd) : NULL;
  if (s) {
    s->shared = 1;
    fdt_put(s);
  }
  return 0;
}

/* The program passes descriptors over a unix socket: any of ours among them
 * is shared with the receiver from now on (see eno_opt_postable). */
void sock_note_sent(const struct msghdr *m) { passed_fds(m, mark_shared); }

/* ---- ENO options on plain kernel TCP sockets ------------------------------------
 * Loopback and "direct" connections, and the connections a listener takes
 * from the kernel side, are plain kernel sockets: ENO is disabled on them
 * (never negotiated).  Answer as api-06 says for a disabled connection rather
 * than the kernel's ENOPROTOOPT. */

static int is_kernel_tcp(int fd)
{
  return sockopt_is(fd, SO_PROTOCOL, IPPROTO_TCP) && sockopt_is(fd, SO_TYPE, SOCK_STREAM);
}

static int kernel_connected(int fd)
{
  struct sockaddr_storage ss;
  socklen_t l = sizeof(ss);
  return real.getpeername(fd, (struct sockaddr *)&ss, &l) == 0;
}

/* 1 when not handled (not a kernel TCP socket): the caller asks the kernel. */
int shim_direct_eno_getopt(int fd, int name, void *val, socklen_t *len)
{
  if (!is_kernel_tcp(fd))
    return 1;
  switch (name) {
  case TCP_ENO_STATE:
    return put_int(val, len, TCPINC_STATE_DISABLED);
  case TCP_ENO_ENABLED:
    return put_int(val, len, -1);
  case TCP_ENO_SELF_GOPT:
  case TCP_ENO_AA_MANDATORY:
  case TCP_ENO_TEP_MANDATORY:
    return put_int(val, len, 0);
  case TCP_ENO_TEPS:
  case TCP_ENO_RAW:
    if (!len) {
      errno = EFAULT;
      return -1;
    }
    *len = 0;
    return 0;
  default:
    errno = EINVAL;    /* ENO is disabled on this connection */
    return -1;
  }
}

int shim_direct_eno_setopt(int fd, int name, const void *val, socklen_t len)
{
  int v = 0;
  if (!is_kernel_tcp(fd))
    return 1;
  if (name == TCP_ENO_TEP_MANDATORY) {
    if (get_int(val, len, &v))
      return -1;
    if (v && kernel_connected(fd)) {
      /* api-06: setting it on an established unencrypted connection aborts
       * it; connect(AF_UNSPEC) makes Linux reset a TCP connection */
      struct sockaddr sa = { .sa_family = AF_UNSPEC };
      real.connect(fd, &sa, sizeof(sa));
    }
    return 0;
  }
  if (kernel_connected(fd)) {
    errno = EISCONN;     /* the SYN has been sent long ago */
    return -1;
  }
  errno = EINVAL;        /* a plain kernel socket cannot negotiate ENO */
  return -1;
}
