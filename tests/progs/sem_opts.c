/*
 * sem_opts — ioctl, names and options of shim sockets:
 *   FIONREAD counts buffered bytes; FIONBIO switches O_NONBLOCK both ways;
 *   getsockname/getpeername give AF_INET / AF_INET6 addresses and ports that
 *   match the kernel peer's own view (client, accepted, v4, v6, v4 client on
 *   a dual-stack v6 listener = v4-mapped), of an unbound and a listening
 *   socket; getpeername before connect: ENOTCONN;
 *   read/send on a never-connected socket: ENOTCONN / EPIPE; TCP_INFO
 *   (state ESTABLISHED) and TCP_MAXSEG;
 *   getsockopt SO_TYPE, SO_DOMAIN, SO_PROTOCOL, SO_ERROR, SO_ACCEPTCONN,
 *   and round trips of TCP_NODELAY, SO_KEEPALIVE, SO_REUSEADDR, TCP_KEEPIDLE,
 *   IPV6_V6ONLY; what Linux answers for SO_BINDTODEVICE (no device: length
 *   0), IP_OPTIONS (none), SO_PEERCRED on TCP, IP_TTL, IP_TOS,
 *   TCP_USER_TIMEOUT, TCP_CONGESTION (16 bytes); an unknown option:
 *   ENOPROTOOPT.
 */
#include <sys/wait.h>

#include "tprog.h"

static int geti(int fd, int level, int name, const char *what)
{
  int v = -12345;
  socklen_t l = sizeof(v);
  CHECK(getsockopt(fd, level, name, &v, &l) == 0, "getsockopt %s", what);
  CHECK(l == sizeof(int), "getsockopt %s: length %u", what, (unsigned)l);
  return v;
}

static void seti(int fd, int level, int name, int v, const char *what)
{
  CHECK(setsockopt(fd, level, name, &v, sizeof(v)) == 0, "setsockopt %s = %d", what, v);
}

static void k_names(int k, struct sockaddr_storage *loc, struct sockaddr_storage *peer)
{
  socklen_t l = sizeof(*loc);
  CHECK(syscall(SYS_getsockname, k, loc, &l) == 0, "kernel getsockname");
  l = sizeof(*peer);
  CHECK(syscall(SYS_getpeername, k, peer, &l) == 0, "kernel getpeername");
}

/* our names must be the mirror of the kernel peer's */
static void mirror(int s, int k, int fam, const char *what)
{
  struct sockaddr_storage sl, sp, kl, kp;
  char b1[128], b2[128];
  memset(&sl, 0xee, sizeof(sl));
  socklen_t l = sizeof(sl);
  CHECK(getsockname(s, (struct sockaddr *)&sl, &l) == 0, "%s: getsockname", what);
  CHECK(sl.ss_family == fam, "%s: getsockname family %d, expected %d", what, sl.ss_family, fam);
  CHECK(l == (fam == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6)),
        "%s: getsockname length %u", what, (unsigned)l);
  l = sizeof(sp);
  CHECK(getpeername(s, (struct sockaddr *)&sp, &l) == 0, "%s: getpeername", what);
  CHECK(sp.ss_family == fam, "%s: getpeername family %d", what, sp.ss_family);
  k_names(k, &kl, &kp);
  {
    CHECK(sa_equal(&sl, &kp), "%s: our local %s != the peer's view of us %s", what,
          sa_str(&sl, b1, sizeof(b1)), sa_str(&kp, b2, sizeof(b2)));
    CHECK(sa_equal(&sp, &kl), "%s: our peer %s != the peer's own address %s", what,
          sa_str(&sp, b1, sizeof(b1)), sa_str(&kl, b2, sizeof(b2)));
  }
  /* short buffer: truncated, length reports the full size */
  struct sockaddr_storage tiny;
  l = 4;
  CHECK(getsockname(s, (struct sockaddr *)&tiny, &l) == 0, "%s: getsockname into 4 bytes", what);
  CHECK(l == (fam == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6)),
        "%s: truncated getsockname length %u", what, (unsigned)l);
}

static void mapped(void)
{
  int port = 0;
  STEP("v4 client on a dual-stack AF_INET6 listener: v4-mapped names");
  int l = s_listen(AF_INET6, NULL, &port);
  CHECK(geti(l, IPPROTO_IPV6, IPV6_V6ONLY, "IPV6_V6ONLY") == 0, "listener is v6only");
  int k = k_connect(AF_INET, LWIP4, port);
  CHECK(wait_fd(l, POLLIN, 10000) & POLLIN, "listener not readable");
  struct sockaddr_storage from;
  socklen_t fl = sizeof(from);
  int s = accept(l, (struct sockaddr *)&from, &fl);
  CHECK(s >= 0, "accept");
  CHECK(from.ss_family == AF_INET6 && fl == sizeof(struct sockaddr_in6), "accept address family %d len %u",
        from.ss_family, (unsigned)fl);
  struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&from;
  CHECK(IN6_IS_ADDR_V4MAPPED(&a6->sin6_addr), "accept: address is not v4-mapped");
  struct sockaddr_storage kl, kp;
  k_names(k, &kl, &kp);
  CHECK(!memcmp(&a6->sin6_addr.s6_addr[12], &((struct sockaddr_in *)&kl)->sin_addr, 4) &&
        a6->sin6_port == ((struct sockaddr_in *)&kl)->sin_port, "accept: wrong client address");
  struct sockaddr_storage sl;
  socklen_t l2 = sizeof(sl);
  CHECK(getsockname(s, (struct sockaddr *)&sl, &l2) == 0 && sl.ss_family == AF_INET6, "getsockname mapped");
  CHECK(IN6_IS_ADDR_V4MAPPED(&((struct sockaddr_in6 *)&sl)->sin6_addr), "getsockname not v4-mapped");
  CHECK(geti(s, SOL_SOCKET, SO_DOMAIN, "SO_DOMAIN") == AF_INET6, "SO_DOMAIN of a mapped connection");
  xfer_check(s, k, 1000, 101, "mapped");
  close(s);
  close(k);
  close(l);
}

int main(void)
{
  int s, k;
  char buf[4096];
  tp_init("sem_opts", 120);

  STEP("unconnected socket: names, options, errors");
  s = socket(AF_INET, SOCK_STREAM, 0);
  CHECK(s >= 0, "socket");
  require_shim(s, "socket()");
  struct sockaddr_storage ss;
  socklen_t sl = sizeof(ss);
  CHECK(getsockname(s, (struct sockaddr *)&ss, &sl) == 0, "getsockname unbound");
  CHECK(ss.ss_family == AF_INET && sa_port(&ss) == 0 &&
        ((struct sockaddr_in *)&ss)->sin_addr.s_addr == 0, "unbound getsockname is not 0.0.0.0:0");
  sl = sizeof(ss);
  CHECK(getpeername(s, (struct sockaddr *)&ss, &sl) < 0 && errno == ENOTCONN, "getpeername unconnected: ENOTCONN");
  CHECK(geti(s, SOL_SOCKET, SO_TYPE, "SO_TYPE") == SOCK_STREAM, "SO_TYPE");
  CHECK(geti(s, SOL_SOCKET, SO_DOMAIN, "SO_DOMAIN") == AF_INET, "SO_DOMAIN");
  CHECK(geti(s, SOL_SOCKET, SO_PROTOCOL, "SO_PROTOCOL") == IPPROTO_TCP, "SO_PROTOCOL");
  CHECK(geti(s, SOL_SOCKET, SO_ACCEPTCONN, "SO_ACCEPTCONN") == 0, "SO_ACCEPTCONN on a fresh socket");
  CHECK(geti(s, SOL_SOCKET, SO_ERROR, "SO_ERROR") == 0, "SO_ERROR on a fresh socket");
  int v;
  socklen_t vl = sizeof(v);
  CHECK(getsockopt(s, SOL_SOCKET, 0x7777, &v, &vl) < 0 && errno == ENOPROTOOPT, "unknown option: ENOPROTOOPT");
  /* Linux before a connection: TCP_MSS_DEFAULT, or the value set (0 or 88..65535) */
  CHECK(geti(s, IPPROTO_TCP, TCP_MAXSEG, "TCP_MAXSEG") == 536, "TCP_MAXSEG of a fresh socket (Linux: 536)");
  v = 40;
  CHECK(setsockopt(s, IPPROTO_TCP, TCP_MAXSEG, &v, sizeof(v)) < 0 && errno == EINVAL, "TCP_MAXSEG 40: EINVAL");
  seti(s, IPPROTO_TCP, TCP_MAXSEG, 1200, "TCP_MAXSEG 1200");
  CHECK(geti(s, IPPROTO_TCP, TCP_MAXSEG, "TCP_MAXSEG") == 1200, "TCP_MAXSEG after setting 1200");
  close(s);

  STEP("a listening socket: send and write are EPIPE (SIGPIPE without MSG_NOSIGNAL), recv ENOTCONN");
  {
    int port = 0;
    int l = s_listen(AF_INET, NULL, &port);
    signal(SIGPIPE, SIG_IGN);
    CHECK(send(l, "x", 1, MSG_NOSIGNAL) < 0 && errno == EPIPE, "send on a listener: errno %d, want EPIPE", errno);
    CHECK(write(l, "x", 1) < 0 && errno == EPIPE, "write on a listener: errno %d, want EPIPE", errno);
    CHECK(recv(l, buf, 1, MSG_DONTWAIT) < 0 && errno == ENOTCONN, "recv on a listener: errno %d", errno);
    CHECK(geti(l, SOL_SOCKET, SO_ACCEPTCONN, "SO_ACCEPTCONN") == 1, "SO_ACCEPTCONN on a listener");
    pid_t pid = fork();
    CHECK(pid >= 0, "fork");
    if (pid == 0) {
      signal(SIGPIPE, SIG_DFL);
      ssize_t w = send(l, "x", 1, 0);
      fprintf(stderr, "FAIL sem_opts(child): send on a listener returned %zd (errno %d), no SIGPIPE\n", w, errno);
      _exit(3);
    }
    int st;
    CHECK(waitpid(pid, &st, 0) == pid, "waitpid");
    CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGPIPE, "send on a listener did not raise SIGPIPE (status 0x%x)", st);
    signal(SIGPIPE, SIG_DFL);
    close(l);
  }

  STEP("AF_INET client: names mirror the peer's, options");
  mkpair(&s, &k);
  mirror(s, k, AF_INET, "v4 client");
  CHECK(geti(s, SOL_SOCKET, SO_TYPE, "SO_TYPE") == SOCK_STREAM, "SO_TYPE");
  CHECK(geti(s, SOL_SOCKET, SO_DOMAIN, "SO_DOMAIN") == AF_INET, "SO_DOMAIN");
  CHECK(geti(s, SOL_SOCKET, SO_ERROR, "SO_ERROR") == 0, "SO_ERROR");
  CHECK(geti(s, SOL_SOCKET, SO_ACCEPTCONN, "SO_ACCEPTCONN") == 0, "SO_ACCEPTCONN on a stream");
  CHECK(geti(s, IPPROTO_TCP, TCP_NODELAY, "TCP_NODELAY") == 0, "TCP_NODELAY default");
  seti(s, IPPROTO_TCP, TCP_NODELAY, 1, "TCP_NODELAY");
  CHECK(geti(s, IPPROTO_TCP, TCP_NODELAY, "TCP_NODELAY") == 1, "TCP_NODELAY after set 1");
  seti(s, IPPROTO_TCP, TCP_NODELAY, 0, "TCP_NODELAY");
  CHECK(geti(s, IPPROTO_TCP, TCP_NODELAY, "TCP_NODELAY") == 0, "TCP_NODELAY after set 0");
  seti(s, SOL_SOCKET, SO_KEEPALIVE, 1, "SO_KEEPALIVE");
  CHECK(geti(s, SOL_SOCKET, SO_KEEPALIVE, "SO_KEEPALIVE") == 1, "SO_KEEPALIVE");
  seti(s, IPPROTO_TCP, TCP_KEEPIDLE, 77, "TCP_KEEPIDLE");
  CHECK(geti(s, IPPROTO_TCP, TCP_KEEPIDLE, "TCP_KEEPIDLE") == 77, "TCP_KEEPIDLE");
  CHECK(geti(s, SOL_SOCKET, SO_RCVBUF, "SO_RCVBUF") > 0, "SO_RCVBUF");
  CHECK(geti(s, SOL_SOCKET, SO_SNDBUF, "SO_SNDBUF") > 0, "SO_SNDBUF");

  STEP("options servers read, answered as Linux answers them");
  {
    char dev[32];
    socklen_t dl = sizeof(dev);
    memset(dev, 'x', sizeof(dev));
    CHECK(getsockopt(s, SOL_SOCKET, SO_BINDTODEVICE, dev, &dl) == 0, "SO_BINDTODEVICE");
    CHECK(dl == 0, "SO_BINDTODEVICE: length %u, Linux gives 0 (no device)", (unsigned)dl);
    unsigned char ipo[40];
    socklen_t il = sizeof(ipo);
    CHECK(getsockopt(s, IPPROTO_IP, IP_OPTIONS, ipo, &il) == 0 && il == 0, "IP_OPTIONS: none (length %u)",
          (unsigned)il);
    struct ucred cr;
    socklen_t cl = sizeof(cr);
    CHECK(getsockopt(s, SOL_SOCKET, SO_PEERCRED, &cr, &cl) == 0 && cl == sizeof(cr), "SO_PEERCRED");
    CHECK(cr.pid == 0 && cr.uid == (uid_t)-1 && cr.gid == (gid_t)-1, "SO_PEERCRED on TCP: %d %d %d", (int)cr.pid,
          (int)cr.uid, (int)cr.gid);
    CHECK(geti(s, IPPROTO_IP, IP_TTL, "IP_TTL") > 0, "IP_TTL");
    seti(s, IPPROTO_IP, IP_TTL, 33, "IP_TTL");
    CHECK(geti(s, IPPROTO_IP, IP_TTL, "IP_TTL") == 33, "IP_TTL after set 33");
    CHECK(geti(s, SOL_SOCKET, SO_PRIORITY, "SO_PRIORITY") == 0, "SO_PRIORITY default");
    seti(s, IPPROTO_IP, IP_TOS, 0x10, "IP_TOS");    /* (Linux derives SO_PRIORITY from it) */
    CHECK(geti(s, IPPROTO_IP, IP_TOS, "IP_TOS") == 0x10, "IP_TOS after set 0x10");
    CHECK(geti(s, IPPROTO_TCP, TCP_USER_TIMEOUT, "TCP_USER_TIMEOUT") == 0, "TCP_USER_TIMEOUT default");
    seti(s, IPPROTO_TCP, TCP_USER_TIMEOUT, 5000, "TCP_USER_TIMEOUT");
    CHECK(geti(s, IPPROTO_TCP, TCP_USER_TIMEOUT, "TCP_USER_TIMEOUT") == 5000, "TCP_USER_TIMEOUT after set");
    char cc[64];
    socklen_t ccl = sizeof(cc);
    CHECK(getsockopt(s, IPPROTO_TCP, TCP_CONGESTION, cc, &ccl) == 0 && ccl == 16 && cc[0],
          "TCP_CONGESTION: %u bytes (Linux copies 16)", (unsigned)ccl);
  }

  STEP("TCP_INFO and TCP_MAXSEG");
  struct tcp_info ti;
  socklen_t til = sizeof(ti);
  memset(&ti, 0xff, sizeof(ti));
  CHECK(getsockopt(s, IPPROTO_TCP, TCP_INFO, &ti, &til) == 0, "TCP_INFO");
  CHECK(til > 0 && til <= sizeof(ti), "TCP_INFO length %u", (unsigned)til);
  CHECK(ti.tcpi_state == TCP_ESTABLISHED, "TCP_INFO state %u, expected TCP_ESTABLISHED", ti.tcpi_state);
  int mss = geti(s, IPPROTO_TCP, TCP_MAXSEG, "TCP_MAXSEG");
  CHECK(mss >= 500 && mss <= 65535, "TCP_MAXSEG %d", mss);

  STEP("FIONREAD");
  int n = -1;
  CHECK(ioctl(s, FIONREAD, &n) == 0 && n == 0, "FIONREAD without data: %d", n);
  memset(buf, 'r', sizeof(buf));
  CHECK(write(k, buf, 1234) == 1234, "peer write");
  int64_t end = now_ms() + 5000;
  do {
    CHECK(ioctl(s, FIONREAD, &n) == 0, "FIONREAD");
    if (n == 1234)
      break;
    CHECK(n >= 0 && n < 1234, "FIONREAD %d", n);
    msleep(10);
  } while (now_ms() < end);
  CHECK(n == 1234, "FIONREAD %d, expected 1234", n);
  CHECK(read(s, buf, 1000) == 1000, "read");
  CHECK(ioctl(s, FIONREAD, &n) == 0 && n == 234, "FIONREAD after reading 1000: %d", n);
  CHECK(read(s, buf, 1000) == 234, "read rest");

  STEP("FIONBIO");
  int on = 1;
  CHECK(ioctl(s, FIONBIO, &on) == 0, "FIONBIO on");
  CHECK(fcntl(s, F_GETFL) & O_NONBLOCK, "FIONBIO did not set O_NONBLOCK");
  CHECK(read(s, buf, 10) < 0 && errno == EAGAIN, "read after FIONBIO: expected EAGAIN");
  on = 0;
  CHECK(ioctl(s, FIONBIO, &on) == 0, "FIONBIO off");
  CHECK(!(fcntl(s, F_GETFL) & O_NONBLOCK), "FIONBIO 0 did not clear O_NONBLOCK");
  CHECK(write(k, "z", 1) == 1, "peer write");
  CHECK(read(s, buf, 10) == 1, "blocking read after FIONBIO 0");
  close(s);
  close(k);

  STEP("AF_INET6 client and accepted sockets");
  mkpair_fam(AF_INET6, 0, &s, &k);
  mirror(s, k, AF_INET6, "v6 client");
  CHECK(geti(s, SOL_SOCKET, SO_DOMAIN, "SO_DOMAIN") == AF_INET6, "SO_DOMAIN v6");
  close(s);
  close(k);
  mkpair_srv(AF_INET, &s, &k);
  mirror(s, k, AF_INET, "v4 accepted");
  close(s);
  close(k);
  mkpair_srv(AF_INET6, &s, &k);
  mirror(s, k, AF_INET6, "v6 accepted");
  close(s);
  close(k);

  STEP("listener: names and options");
  int port = 0;
  int l = s_listen(AF_INET, NULL, &port);
  CHECK(geti(l, SOL_SOCKET, SO_ACCEPTCONN, "SO_ACCEPTCONN") == 1, "SO_ACCEPTCONN on a listener");
  CHECK(geti(l, SOL_SOCKET, SO_REUSEADDR, "SO_REUSEADDR") == 1, "SO_REUSEADDR on the listener");
  sl = sizeof(ss);
  CHECK(getsockname(l, (struct sockaddr *)&ss, &sl) == 0 && ss.ss_family == AF_INET && sa_port(&ss) == port &&
        ((struct sockaddr_in *)&ss)->sin_addr.s_addr == 0, "listener getsockname is not 0.0.0.0:%d", port);
  sl = sizeof(ss);
  CHECK(getpeername(l, (struct sockaddr *)&ss, &sl) < 0 && errno == ENOTCONN, "listener getpeername: ENOTCONN");
  close(l);
  int l6 = socket(AF_INET6, SOCK_STREAM, 0);
  CHECK(l6 >= 0, "socket v6");
  seti(l6, IPPROTO_IPV6, IPV6_V6ONLY, 1, "IPV6_V6ONLY");
  CHECK(geti(l6, IPPROTO_IPV6, IPV6_V6ONLY, "IPV6_V6ONLY") == 1, "IPV6_V6ONLY round trip");
  close(l6);

  mapped();

  STEP("I/O on a socket that never connected: Linux reads ENOTCONN, writes EPIPE");
  s = socket(AF_INET, SOCK_STREAM, 0);
  CHECK(s >= 0, "socket");
  CHECK(read(s, buf, 10) < 0 && errno == ENOTCONN, "read on an unconnected socket: expected ENOTCONN");
  ssize_t w = send(s, "x", 1, MSG_NOSIGNAL);
  CHECK(w < 0 && errno == EPIPE, "send on an unconnected socket: %zd, expected EPIPE (Linux)", w);
  close(s);
  printf("ok\n");
  return 0;
}
