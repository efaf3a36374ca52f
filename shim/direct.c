/*
 * shim/direct.c — destinations that get a plain kernel socket instead of
 * tund (docs/DESIGN.md, Routing): loopback, this host, link-local, the prefixes tund lists
 * (`direct=` and loopback) and ENOSHIM_DIRECT.  The program's fd is replaced
 * in place with dup3(), keeping its number, O_NONBLOCK and FD_CLOEXEC, and
 * carries over the settings the program made.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "enoshim/prefix.h"
#include "shim.h"

/* ---- kernel sockets ---------------------------------------------------------- */

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

/* A kernel TCP socket with the settings the program made on s (and on its
 * end of the pair, pfd, if not -1). */
int new_kernel_socket(struct shim_sock *s, int pfd)
{
  int k = real.socket(s->domain, SOCK_STREAM | SOCK_CLOEXEC, IPPROTO_TCP);
  if (k < 0)
    return -1;
  apply_opts(k, pfd, s);
  return k;
}

/* Replace the program's fd (our socketpair end) by a kernel TCP socket, in
 * place.  Afterwards the fd is not the shim's any more.  Returns 0 or -1. */
int go_direct(int fd, struct shim_sock *s)
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

/* ---- which destinations ------------------------------------------------------ */

/* 127/8, ::1 and ::ffff:127/104 */
int is_loopback(const struct sockaddr *a)
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

/* ---- this host's own addresses ------------------------------------------------ */

/* Is a one of this host's own addresses (any interface's, as the kernel's
 * routing says: a local route)?  A client on this host that dials the host's
 * real address must get what the kernel gives it: the connection stays in
 * the host, getsockname() is the dialed address and the server's accept()
 * and getpeername() say the same (an address the server may check, as
 * pg_hba.conf or an allow list do).  Through tund both ends would see
 * lwIP's private address instead.
 *
 * Asked of the kernel without netlink: a UDP socket connect()ed to the
 * address takes the source address the route gives, and only for a local
 * route is that the destination itself.  Unlike a bind() probe this does
 * not depend on ip_nonlocal_bind/IP_FREEBIND, which would make any address
 * look local and send a remote peer's connection around tund in the clear.
 * Any failure (no fd left, a sandbox) answers "not local": through tund,
 * as before.  Answers are kept for a second per address (a few slots), so
 * a program that opens many connections to one peer asks once a second
 * (per thread: no lock, nothing for fork() to catch held). */
#define LOCAL_SLOTS 8
#define LOCAL_TTL_NS 1000000000ull
static _Thread_local struct {
  int family;
  uint8_t addr[16];
  uint64_t until;
  int local;
} local_cache[LOCAL_SLOTS];
static _Thread_local unsigned local_next;

static uint64_t now_ns(void)
{
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

static int local_probe(int fam, const uint8_t *addr)
{
  struct enoshm_addr ea = { .family = (uint16_t)fam, .port = 9 };   /* any port: a UDP connect sends nothing */
  memcpy(ea.addr, addr, fam == AF_INET ? 4 : 16);
  struct sockaddr_storage ss, got;
  socklen_t len = shm_to_sa(&ea, fam, &ss);
  int e = errno, local = 0;
  int u = real.socket(fam, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (u >= 0) {
    socklen_t gl = sizeof(got);
    if (real.connect(u, (struct sockaddr *)&ss, len) == 0 &&
        real.getsockname(u, (struct sockaddr *)&got, &gl) == 0 && got.ss_family == fam)
      local = fam == AF_INET
                  ? !memcmp(&((struct sockaddr_in *)&got)->sin_addr, addr, 4)
                  : !memcmp(&((struct sockaddr_in6 *)&got)->sin6_addr, addr, 16);
    real.close(u);
  }
  errno = e;
  return local;
}

static int addr_is_this_host(int fam, const uint8_t *addr)
{
  size_t n = fam == AF_INET ? 4 : 16;
  uint64_t now = now_ns();
  for (int i = 0; i < LOCAL_SLOTS; i++)
    if (local_cache[i].family == fam && local_cache[i].until > now &&
        !memcmp(local_cache[i].addr, addr, n))
      return local_cache[i].local;
  int r = local_probe(fam, addr);
  unsigned i = local_next++ % LOCAL_SLOTS;
  local_cache[i].family = fam;
  memcpy(local_cache[i].addr, addr, n);
  local_cache[i].until = now + LOCAL_TTL_NS;
  local_cache[i].local = r;
  return r;
}

/* Why a connect() to a gets a plain kernel socket, or NULL: through tund. */
const char *shim_direct_reason(const struct sockaddr *a, socklen_t len)
{
  const uint8_t *addr;
  int fam;
  (void)len;
  pthread_once(&env_direct_once, env_direct_read);
  if (is_loopback(a))
    return "loopback";
  if (a->sa_family == AF_INET) {
    addr = (const uint8_t *)&((const struct sockaddr_in *)a)->sin_addr;
    fam = AF_INET;
    if (!memcmp(addr, "\0\0\0\0", 4))
      return "this host";         /* 0.0.0.0 means this host */
  } else {
    const struct in6_addr *x = &((const struct sockaddr_in6 *)a)->sin6_addr;
    if (IN6_IS_ADDR_UNSPECIFIED(x))
      return "this host";
    if (IN6_IS_ADDR_LINKLOCAL(x))
      return "link-local";
    addr = x->s6_addr;  /* v4-mapped: prefix_match() takes it as IPv4 */
    fam = AF_INET6;
  }
  for (uint32_t i = 0; i < shim_hello.n_direct; i++) {
    const struct enoipc_prefix *e = &shim_hello.direct[i];
    struct prefix p = { .family = e->family, .len = e->prefixlen };
    memcpy(p.addr, e->addr, sizeof(p.addr));
    if (prefix_match(&p, fam, addr))
      return i < 2 ? "loopback" : "tund's direct=";
  }
  for (int i = 0; i < n_env_direct; i++)
    if (prefix_match(&env_direct[i], fam, addr))
      return "ENOSHIM_DIRECT (enorun --direct)";
  if (!(shim_hello.flags & ENOIPC_HELLO_F_DIRECT_LOCAL))
    return NULL;
  if (fam == AF_INET6 && IN6_IS_ADDR_V4MAPPED((const struct in6_addr *)addr))
    fam = AF_INET, addr += 12;
  return addr_is_this_host(fam, addr) ? "this host's own address" : NULL;
}

int shim_addr_is_direct(const struct sockaddr *a, socklen_t len)
{
  return shim_direct_reason(a, len) != NULL;
}
