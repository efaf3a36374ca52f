/*
 * sem_connect B_ADDR — connect() outcomes on shim sockets:
 *   - non-blocking connect to a listening port: EINPROGRESS, then POLLOUT,
 *     SO_ERROR 0, getpeername, a second connect() gives EISCONN;
 *   - to a closed port (kernel RST on the host side, lwIP RST at B_ADDR):
 *     non-blocking: EINPROGRESS then SO_ERROR ECONNREFUSED (then 0);
 *     blocking: ECONNREFUSED;
 *   - to an address without a route in the namespace (10.203.0.9,
 *     fd00:203::9): the router answers ICMP unreachable, so we assert
 *     ENETUNREACH or EHOSTUNREACH within 10 s (non-blocking via SO_ERROR, and
 *     blocking, bounded by SO_SNDTIMEO 10 s);
 *   - to a blackholed prefix (10.204.0.0/24, fd00:204::/64; set up by the
 *     shell): no answer at all, so a blocking connect with SO_SNDTIMEO 1 s
 *     must return EINPROGRESS (socket(7)) within 4 s, and a non-blocking
 *     connect polled for 1.5 s stays pending (no event) and can be closed.
 *   - to multicast (224.0.0.1, ff02::1), the limited broadcast, and a
 *     v4-mapped address from an IPV6_V6ONLY socket: ENETUNREACH at once,
 *     blocking or not, as Linux refuses them before sending anything;
 *   - connect() after a non-blocking connect completed: 0 once, then EISCONN.
 * Set T_NO_BLACKHOLE=1 to skip the blackhole part (kernel-mode check).
 */
#include "tprog.h"

static int nb_socket(int fam)
{
  int s = socket(fam, SOCK_STREAM | SOCK_NONBLOCK, 0);
  CHECK(s >= 0, "socket");
  require_shim(s, "socket()");
  return s;
}

static int so_error(int s)
{
  int e = -1;
  socklen_t l = sizeof(e);
  CHECK(getsockopt(s, SOL_SOCKET, SO_ERROR, &e, &l) == 0, "getsockopt SO_ERROR");
  CHECK(l == sizeof(int), "SO_ERROR length %u", (unsigned)l);
  return e;
}

static void nb_to_listener(int fam)
{
  int port = 0;
  const char *host = fam == AF_INET ? HOST4 : HOST6;
  STEP("non-blocking connect to a listening port (%s)", host);
  int l = k_listen(fam, host, &port, 0);
  int s = nb_socket(fam);
  struct sockaddr_storage ss, peer;
  socklen_t sl = mkaddr(fam, host, port, &ss);
  int sent_early = 0;
  int r = connect(s, (struct sockaddr *)&ss, sl);
  /* 0 is tolerated here; nb_always_inprogress() below insists on Linux's EINPROGRESS */
  CHECK(r == 0 || errno == EINPROGRESS, "non-blocking connect returned %d, expected EINPROGRESS", r);
  if (r < 0) {
    /* at once, before the connection is up (the shim posts the connect to
     * tund and does not wait): the local port is already chosen, and a
     * send or recv says EAGAIN, as on a kernel socket in SYN-SENT */
    char b = 0;
    ssize_t n = recv(s, &b, 1, 0);
    if (n < 0 && errno == EAGAIN) {
      n = send(s, &b, 1, MSG_NOSIGNAL);
      /* the connection may be up by now: 1 byte sent is fine too (read below) */
      CHECK(n == 1 || (n < 0 && errno == EAGAIN), "send while connecting: %zd (errno %d), expected EAGAIN",
            n, errno);
      sent_early = n == 1;
    } else {
      CHECK(n < 0 && errno == EAGAIN, "recv while connecting: %zd (errno %d), expected EAGAIN", n, errno);
    }
    struct sockaddr_storage me;
    socklen_t ml = sizeof(me);
    CHECK(getsockname(s, (struct sockaddr *)&me, &ml) == 0, "getsockname while connecting");
    int lport = me.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&me)->sin6_port)
                                         : ntohs(((struct sockaddr_in *)&me)->sin_port);
    CHECK(me.ss_family == fam && lport != 0, "getsockname right after connect: family %d port %d",
          me.ss_family, lport);
  }
  int re = wait_fd(s, POLLOUT, 10000);
  CHECK(re & POLLOUT, "no POLLOUT within 10 s (revents 0x%x)", re);
  CHECK(!(re & (POLLERR | POLLHUP)), "POLLERR/POLLHUP on a good connect (0x%x)", re);
  CHECK(so_error(s) == 0, "SO_ERROR after a good connect");
  socklen_t pl = sizeof(peer);
  CHECK(getpeername(s, (struct sockaddr *)&peer, &pl) == 0, "getpeername");
  CHECK(sa_equal(&peer, &ss), "getpeername is not the address we connected to");
  /* Linux reports the completed asynchronous connect once with 0 (the
   * socket becomes SS_CONNECTED then), then EISCONN; some programs take only
   * 0 for success */
  r = connect(s, (struct sockaddr *)&ss, sl);
  CHECK(r == 0, "second connect: %d (errno %d), expected 0", r, errno);
  r = connect(s, (struct sockaddr *)&ss, sl);
  CHECK(r < 0 && errno == EISCONN, "third connect: %d, expected EISCONN", r);
  int k = k_accept(l, 5000);
  if (sent_early) {
    char b = 1;
    CHECK(wait_fd(k, POLLIN, 5000) & POLLIN, "the byte sent while connecting did not arrive");
    CHECK(recv(k, &b, 1, 0) == 1 && b == 0, "the byte sent while connecting");
  }
  xfer_check(s, k, 5000, 1, "after non-blocking connect");
  close(s);
  close(k);
  close(l);
}

/* A port with nothing listening: bind a kernel listener, note its port, close it. */
static int free_port(int fam, const char *host)
{
  int port = 0;
  int l = k_listen(fam, host, &port, 0);
  close(l);
  return port;
}

static void refused(int fam, const char *host, int port)
{
  struct sockaddr_storage ss;
  socklen_t sl = mkaddr(fam, host, port, &ss);
  STEP("refused: non-blocking connect to %s port %d", host, port);
  int s = nb_socket(fam);
  int r = connect(s, (struct sockaddr *)&ss, sl);
  if (r < 0 && errno == ECONNREFUSED) {
    /* Linux may report it at once for a local destination */
  } else {
    CHECK(r < 0 && errno == EINPROGRESS, "non-blocking connect to a closed port returned %d", r);
    int re = wait_fd(s, POLLOUT, 10000);
    CHECK(re & (POLLOUT | POLLERR | POLLHUP), "refused connect: no poll event within 10 s");
    errno = so_error(s);
    CHECK(errno == ECONNREFUSED, "SO_ERROR %d after a refused connect, expected ECONNREFUSED", errno);
    CHECK(so_error(s) == 0, "SO_ERROR not cleared by reading it");
  }
  close(s);

  STEP("refused: blocking connect to %s port %d", host, port);
  s = socket(fam, SOCK_STREAM, 0);
  CHECK(s >= 0, "socket");
  int64_t t0 = now_ms();
  r = connect(s, (struct sockaddr *)&ss, sl);
  CHECK(r < 0 && errno == ECONNREFUSED, "blocking connect to a closed port returned %d", r);
  CHECK(now_ms() - t0 < 10000, "refusal took %lld ms", (long long)(now_ms() - t0));
  close(s);
}

static int is_unreach(int e) { return e == ENETUNREACH || e == EHOSTUNREACH; }

static void unreachable(int fam, const char *host)
{
  struct sockaddr_storage ss;
  socklen_t sl = mkaddr(fam, host, 80, &ss);
  STEP("unreachable: non-blocking connect to %s", host);
  int s = nb_socket(fam);
  int r = connect(s, (struct sockaddr *)&ss, sl);
  if (!(r < 0 && is_unreach(errno))) {
    CHECK(r < 0 && errno == EINPROGRESS, "non-blocking connect to %s returned %d", host, r);
    int re = wait_fd(s, POLLOUT, 10000);
    CHECK(re, "connect to unreachable %s: no error within 10 s", host);
    errno = so_error(s);
    CHECK(is_unreach(errno), "connect to unreachable %s: SO_ERROR %d, expected ENETUNREACH or EHOSTUNREACH",
          host, errno);
  }
  close(s);

  STEP("unreachable: blocking connect to %s (SO_SNDTIMEO 10 s)", host);
  s = socket(fam, SOCK_STREAM, 0);
  CHECK(s >= 0, "socket");
  struct timeval tv = { 10, 0 };
  CHECK(setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) == 0, "SO_SNDTIMEO");
  int64_t t0 = now_ms();
  r = connect(s, (struct sockaddr *)&ss, sl);
  CHECK(r < 0 && is_unreach(errno), "blocking connect to unreachable %s returned %d after %lld ms, "
        "expected ENETUNREACH or EHOSTUNREACH", host, r, (long long)(now_ms() - t0));
  close(s);
}

static void blackhole(int fam, const char *host)
{
  struct sockaddr_storage ss;
  socklen_t sl = mkaddr(fam, host, 80, &ss);
  STEP("blackhole: blocking connect to %s with SO_SNDTIMEO 1 s", host);
  int s = socket(fam, SOCK_STREAM, 0);
  CHECK(s >= 0, "socket");
  struct timeval tv = { 1, 0 };
  CHECK(setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) == 0, "SO_SNDTIMEO");
  int64_t t0 = now_ms();
  int r = connect(s, (struct sockaddr *)&ss, sl);
  int64_t dt = now_ms() - t0;
  CHECK(r < 0 && errno == EINPROGRESS, "blocking connect into a blackhole with SO_SNDTIMEO 1 s: %d after "
        "%lld ms, expected EINPROGRESS (socket(7))", r, (long long)dt);
  CHECK(dt >= 800 && dt < 4000, "SO_SNDTIMEO 1 s: connect returned after %lld ms", (long long)dt);
  close(s);

  STEP("blackhole: non-blocking connect to %s, poll 1.5 s", host);
  s = nb_socket(fam);
  r = connect(s, (struct sockaddr *)&ss, sl);
  CHECK(r < 0 && errno == EINPROGRESS, "non-blocking connect into a blackhole returned %d", r);
  int re = wait_fd(s, POLLOUT, 1500);
  CHECK(re == 0, "blackhole: poll event 0x%x (SO_ERROR %d) although nothing answers", re, so_error(s));
  CHECK(so_error(s) == 0, "blackhole: SO_ERROR while pending");
  r = connect(s, (struct sockaddr *)&ss, sl);
  CHECK(r < 0 && errno == EALREADY, "second connect while pending: %d, expected EALREADY", r);
  close(s);
}

/* Linux never completes a non-blocking TCP connect inside connect(): it
 * returns EINPROGRESS even when the peer is a local address that answers at
 * once.  Programs written for Linux may rely on it; try it 20 times. */
static void nb_always_inprogress(void)
{
  int port = 0;
  STEP("non-blocking connect returns EINPROGRESS, never 0 (20 tries)");
  int l = k_listen(AF_INET, HOST4, &port, 0);
  struct sockaddr_storage ss;
  socklen_t sl = mkaddr(AF_INET, HOST4, port, &ss);
  int zero = 0;
  for (int i = 0; i < 20; i++) {
    int s = nb_socket(AF_INET);
    int r = connect(s, (struct sockaddr *)&ss, sl);
    if (r == 0)
      zero++;
    else
      CHECK(errno == EINPROGRESS, "non-blocking connect: %d", r);
    CHECK(wait_fd(s, POLLOUT, 10000) & POLLOUT, "no POLLOUT");
    close(k_accept(l, 5000));
    close(s);
  }
  close(l);
  errno = 0;
  CHECK(zero == 0, "non-blocking connect() returned 0 (connected at once) in %d of 20 tries; Linux always "
        "returns -1/EINPROGRESS for a non-blocking TCP connect", zero);
}

/* An AF_INET6 socket connecting to a v4-mapped address reaches the IPv4 peer. */
static void v4mapped(void)
{
  int port = 0;
  char mapped[64], b[128];
  STEP("AF_INET6 socket -> ::ffff:%s", HOST4);
  int l = k_listen(AF_INET, HOST4, &port, 0);
  snprintf(mapped, sizeof(mapped), "::ffff:%s", HOST4);
  int s = s_connect(AF_INET6, mapped, port);
  int k = k_accept(l, 10000);
  struct sockaddr_storage ss;
  socklen_t sl = sizeof(ss);
  CHECK(getpeername(s, (struct sockaddr *)&ss, &sl) == 0, "getpeername");
  CHECK(ss.ss_family == AF_INET6 && IN6_IS_ADDR_V4MAPPED(&((struct sockaddr_in6 *)&ss)->sin6_addr) &&
        sa_port(&ss) == port, "getpeername of a v4-mapped connection: %s", sa_str(&ss, b, sizeof(b)));
  xfer_check(s, k, 20000, 5, "v4-mapped connection");
  close(s);
  close(k);
  close(l);
}

static void no_route_at_once(int fam, const char *host, int v6only)
{
  struct sockaddr_storage ss;
  socklen_t sl = mkaddr(fam, host, 80, &ss);
  for (int nb = 0; nb < 2; nb++) {
    STEP("%s connect to %s%s: ENETUNREACH at once", nb ? "non-blocking" : "blocking", host,
         v6only ? " (IPV6_V6ONLY)" : "");
    int s = nb ? nb_socket(fam) : socket(fam, SOCK_STREAM, 0);
    CHECK(s >= 0, "socket");
    if (v6only)
      CHECK(setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof(v6only)) == 0, "IPV6_V6ONLY");
    int64_t t0 = now_ms();
    int r = connect(s, (struct sockaddr *)&ss, sl);
    CHECK(r < 0 && errno == ENETUNREACH, "connect to %s: %d, want ENETUNREACH", host, r);
    CHECK(now_ms() - t0 < 1000, "connect to %s took %lld ms", host, (long long)(now_ms() - t0));
    close(s);
  }
}

int main(int argc, char **argv)
{
  tp_init("sem_connect", 120);
  const char *b4 = argc > 1 ? argv[1] : "10.202.0.2";
  const char *b6 = argc > 2 ? argv[2] : "fd00:202::2";
  nb_to_listener(AF_INET);
  nb_to_listener(AF_INET6);
  v4mapped();
  refused(AF_INET, HOST4, free_port(AF_INET, HOST4));
  refused(AF_INET6, HOST6, free_port(AF_INET6, HOST6));
  refused(AF_INET, b4, 9);       /* lwIP B answers RST */
  refused(AF_INET6, b6, 9);
  unreachable(AF_INET, "10.203.0.9");
  unreachable(AF_INET6, "fd00:203::9");
  if (!getenv("T_NO_BLACKHOLE")) {
    blackhole(AF_INET, "10.204.0.9");
    blackhole(AF_INET6, "fd00:204::9");
  }
  nb_always_inprogress();
  no_route_at_once(AF_INET, "224.0.0.1", 0);
  no_route_at_once(AF_INET, "255.255.255.255", 0);
  no_route_at_once(AF_INET6, "ff02::1", 0);
  char mapped[64];
  snprintf(mapped, sizeof(mapped), "::ffff:%s", HOST4);
  no_route_at_once(AF_INET6, mapped, 1);
  printf("ok\n");
  return 0;
}
