/*
 * tests/progs/eno_probe.c — a small sockets program for the TCP-ENO
 * acceptance tests (tests/integ/t_eno_*.sh).  It sets api-06 socket options
 * before connect()/listen(), makes one connection, prints every read-only
 * option (or the errno it failed with), exchanges one line of text, and
 * exits.  Run it under enorun.
 *
 *   eno_probe [OPTIONS] client HOST PORT
 *   eno_probe [OPTIONS] server PORT            accept one connection
 *   eno_probe [OPTIONS] pending HOST PORT      nonblocking connect to a peer
 *        that does not answer; print the options while the SYN is out
 *   eno_probe [OPTIONS] closefirst PORT N     accept N connections one after
 *        the other; on each, send "bye\n" and FIN at once (we close first:
 *        TIME-WAIT on our side), then read until EOF ("conn K: peer sent ...")
 *   eno_probe [OPTIONS] simopen LPORT HOST PORT
 *        bind LPORT, connect to HOST:PORT, retry on ECONNREFUSED (simultaneous
 *        open when the peer does the same at the same moment)
 *
 * OPTIONS (socket options are set before connect()/listen()):
 *   --teps LIST        TCP_ENO_TEPS, hex bytes: "21,24,23" ("" = empty list)
 *   --gopt N           TCP_ENO_SELF_GOPT
 *   --enabled N        TCP_ENO_ENABLED (-1, 0, 1)
 *   --mandatory        TCP_ENO_TEP_MANDATORY = 1
 *   --aa-mandatory     TCP_ENO_AA_MANDATORY = 1
 *   --mandatory-after  client: TCP_ENO_TEP_MANDATORY = 1 once connected (before
 *                      sending), then print SO_ERROR
 *   --raw HEX          TCP_ENO_RAW, hex string of the option contents ("20")
 *   --send TEXT        what the client sends (default "hello eno")
 *   --check-einval     before connect: try TCP_ENO_TEPS {21,05} and {85} and
 *                      print the results ("badteps-05: EINVAL")
 *   --show-before      print the options of the unconnected socket
 *                      ("pre-sessid: ENOTCONN", "pre-teps: 212423", ...)
 *   --check-after      after the connection is up: try setting TCP_ENO_TEPS,
 *                      TCP_ENO_SELF_GOPT, TCP_ENO_ENABLED, TCP_ENO_RAW and
 *                      TCP_ENO_AA_MANDATORY and print the results
 *                      ("after-teps: EISCONN"), then read RW options back
 *   --go-file PATH     print "ready", then wait until PATH exists before
 *                      connecting
 *   --pause-file PATH  once connected (options printed), print "paused" and
 *                      wait until PATH exists before the exchange
 *   --hold-file PATH   after the exchange, print "holding" and keep the
 *                      connection open until PATH exists
 *   --bind ADDR        client: bind to ADDR (port 0) first
 *   --deadline S       give up after S seconds (default 40)
 *
 * Output: one "key: value" line per fact, then "done".  Values of options
 * that failed are the errno name (EINVAL, ENOTCONN, ...).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "tcpinc.h"

static const char *o_teps;
static int o_gopt = -1000, o_enabled = -1000, o_mandatory, o_check_einval, o_check_after;
static const char *o_raw, *o_send = "hello eno", *o_go, *o_hold, *o_pause, *o_bind;
static int o_deadline = 40, o_show_before, o_mandatory_after, o_aa_mandatory;
static int quiet;

static const char *ename(int e)
{
  const char *n = strerrorname_np(e);
  return n ? n : "E?";
}

static int64_t now_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void msleep(int ms)
{
  struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
  nanosleep(&ts, NULL);
}

static void wait_file(const char *path)
{
  struct stat st;
  int64_t t0 = now_ms();
  while (stat(path, &st) != 0) {
    if (now_ms() - t0 > (int64_t)o_deadline * 1000) {
      printf("error: %s did not appear\n", path);
      exit(3);
    }
    msleep(10);
  }
}

static size_t parse_hexlist(const char *s, unsigned char *out, size_t cap)
{
  size_t n = 0;
  char buf[256];
  snprintf(buf, sizeof(buf), "%s", s);
  char *save = NULL;
  for (char *t = strtok_r(buf, ", ", &save); t && n < cap; t = strtok_r(NULL, ", ", &save))
    out[n++] = (unsigned char)strtoul(t, NULL, 16);
  return n;
}

static size_t parse_hexstr(const char *s, unsigned char *out, size_t cap)
{
  size_t n = 0;
  while (s[0] && s[1] && n < cap) {
    unsigned v;
    if (sscanf(s, "%2x", &v) != 1)
      break;
    out[n++] = (unsigned char)v;
    s += 2;
  }
  return n;
}

static void set_int(int fd, const char *label, int name, int v)
{
  int r = setsockopt(fd, IPPROTO_TCP, name, &v, sizeof(v));
  if (!quiet)
    printf("%s: %s\n", label, r == 0 ? "ok" : ename(errno));
}

static void set_bytes(int fd, const char *label, int name, const unsigned char *b, size_t n)
{
  int r = setsockopt(fd, IPPROTO_TCP, name, b, (socklen_t)n);
  if (!quiet)
    printf("%s: %s\n", label, r == 0 ? "ok" : ename(errno));
}

static void get_int(int fd, const char *label, int name);
static void get_bytes(int fd, const char *label, int name);

static void pre_opts(int fd)
{
  unsigned char b[64];
  size_t n;
  if (o_check_einval) {
    unsigned char bad1[] = { 0x21, 0x05 }, bad2[] = { 0x85 }, bad3[] = { 0x21, 0x85 };
    set_bytes(fd, "badteps-05", TCP_ENO_TEPS, bad1, sizeof(bad1));
    set_bytes(fd, "badteps-85", TCP_ENO_TEPS, bad2, sizeof(bad2));
    set_bytes(fd, "badteps-21-85", TCP_ENO_TEPS, bad3, sizeof(bad3));
    unsigned char bad4[] = { 0x1f }, bad5[] = { 0x23, 0x30 };
    set_bytes(fd, "badteps-1f", TCP_ENO_TEPS, bad4, sizeof(bad4));
    set_bytes(fd, "badteps-30", TCP_ENO_TEPS, bad5, sizeof(bad5));
    get_bytes(fd, "teps-after-bad", TCP_ENO_TEPS);
    set_int(fd, "badgopt-32", TCP_ENO_SELF_GOPT, 32);
    set_int(fd, "badgopt-neg", TCP_ENO_SELF_GOPT, -1);
    set_int(fd, "badenabled-2", TCP_ENO_ENABLED, 2);
    set_int(fd, "badaamand-2", TCP_ENO_AA_MANDATORY, 2);
    /* AEAD lists (checked in the shim before it posts them to tund) */
    unsigned char odd[] = { 0x00 }, unk[] = { 0x00, 0x01, 0x00, 0x05 }, many[34];
    for (size_t i = 0; i < sizeof(many); i += 2) {
      many[i] = 0x00;
      many[i + 1] = 0x01;
    }
    set_bytes(fd, "badaconf-odd", TCP_CRYPT_ACONF, odd, sizeof(odd));
    set_bytes(fd, "badaconf-unknown", TCP_CRYPT_ACONF, unk, sizeof(unk));
    set_bytes(fd, "badaconf-17", TCP_CRYPT_ACONF, many, sizeof(many));
    set_bytes(fd, "badbconf-unknown", TCP_CRYPT_BCONF, unk, sizeof(unk));
  }
  if (o_teps) {
    n = parse_hexlist(o_teps, b, sizeof(b));
    set_bytes(fd, "set-teps", TCP_ENO_TEPS, b, n);
  }
  if (o_gopt != -1000)
    set_int(fd, "set-gopt", TCP_ENO_SELF_GOPT, o_gopt);
  if (o_enabled != -1000)
    set_int(fd, "set-enabled", TCP_ENO_ENABLED, o_enabled);
  if (o_mandatory)
    set_int(fd, "set-mandatory", TCP_ENO_TEP_MANDATORY, 1);
  if (o_aa_mandatory)
    set_int(fd, "set-aa-mandatory", TCP_ENO_AA_MANDATORY, 1);
  if (o_raw) {
    n = parse_hexstr(o_raw, b, sizeof(b));
    set_bytes(fd, "set-raw", TCP_ENO_RAW, b, n);
  }
}

static void get_int(int fd, const char *label, int name)
{
  int v = -1;
  socklen_t l = sizeof(v);
  errno = 0;
  int r = getsockopt(fd, IPPROTO_TCP, name, &v, &l);
  if (r == 0 && v < 0)
    printf("%s: %d\n", label, v);
  else if (r == 0)
    printf("%s: 0x%02x\n", label, v);
  else
    printf("%s: %s\n", label, ename(errno));
}

static void get_bytes(int fd, const char *label, int name)
{
  unsigned char b[256];
  socklen_t l = sizeof(b);
  if (getsockopt(fd, IPPROTO_TCP, name, b, &l) == 0) {
    printf("%s: ", label);
    for (socklen_t i = 0; i < l; i++)
      printf("%02x", b[i]);
    printf("%s\n", l ? "" : "(empty)");
  } else {
    printf("%s: %s\n", label, ename(errno));
  }
}

static void show(int fd)
{
  int v = -1;
  socklen_t l = sizeof(v);
  if (getsockopt(fd, IPPROTO_TCP, TCP_ENO_STATE, &v, &l) < 0)
    printf("state: %s\n", ename(errno));
  else
    printf("state: %s\n", v == TCPINC_STATE_ENCRYPTING  ? "encrypting"
                          : v == TCPINC_STATE_DISABLED  ? "disabled"
                          : v == TCPINC_STATE_NEGOTIATING ? "negotiating"
                                                          : "?");
  get_int(fd, "negtep", TCP_ENO_NEGTEP);
  get_int(fd, "role", TCP_ENO_ROLE);
  get_int(fd, "peer-gopt", TCP_ENO_PEER_GOPT);
  get_int(fd, "self-gopt", TCP_ENO_SELF_GOPT);
  get_int(fd, "aead", TCP_CRYPT_CONF);
  get_bytes(fd, "sessid", TCP_ENO_SESSID);
  get_bytes(fd, "self-name", TCP_ENO_SELF_NAME);
  get_bytes(fd, "peer-name", TCP_ENO_PEER_NAME);
  get_bytes(fd, "transcript", TCP_ENO_TRANSCRIPT);
  get_bytes(fd, "teps", TCP_ENO_TEPS);
  get_bytes(fd, "raw", TCP_ENO_RAW);
}

/* the options of a socket that has not connected yet ("pre-" lines) */
static void show_before(int fd)
{
  int v = -1;
  socklen_t l = sizeof(v);
  if (!o_show_before)
    return;
  if (getsockopt(fd, IPPROTO_TCP, TCP_ENO_STATE, &v, &l) < 0)
    printf("pre-state: %s\n", ename(errno));
  else
    printf("pre-state: %d\n", v);
  get_bytes(fd, "pre-sessid", TCP_ENO_SESSID);
  get_int(fd, "pre-negtep", TCP_ENO_NEGTEP);
  get_bytes(fd, "pre-transcript", TCP_ENO_TRANSCRIPT);
  get_int(fd, "pre-enabled", TCP_ENO_ENABLED);
  get_bytes(fd, "pre-teps", TCP_ENO_TEPS);
  get_int(fd, "pre-self-gopt", TCP_ENO_SELF_GOPT);
  get_int(fd, "pre-aa-mandatory", TCP_ENO_AA_MANDATORY);
  get_int(fd, "pre-tep-mandatory", TCP_ENO_TEP_MANDATORY);
  get_bytes(fd, "pre-raw", TCP_ENO_RAW);
}

static void post_checks(int fd)
{
  if (!o_check_after)
    return;
  unsigned char t[] = { 0x23 };
  set_bytes(fd, "after-teps", TCP_ENO_TEPS, t, sizeof(t));
  set_int(fd, "after-gopt", TCP_ENO_SELF_GOPT, 1);
  set_int(fd, "after-enabled", TCP_ENO_ENABLED, 1);
  set_bytes(fd, "after-raw", TCP_ENO_RAW, t, sizeof(t));
  set_int(fd, "after-aa-mandatory", TCP_ENO_AA_MANDATORY, 1);
  get_bytes(fd, "after-teps-read", TCP_ENO_TEPS);
  get_int(fd, "after-enabled-read", TCP_ENO_ENABLED);
  get_int(fd, "after-tep-mandatory-read", TCP_ENO_TEP_MANDATORY);
}

static void pause_here(void)
{
  if (!o_pause)
    return;
  printf("paused\n");
  fflush(stdout);
  wait_file(o_pause);
}

static void hold(void)
{
  if (!o_hold)
    return;
  printf("holding\n");
  fflush(stdout);
  wait_file(o_hold);
}

/* read until EOF (or error); returns bytes, -errno on error */
static ssize_t read_all(int fd, char *buf, size_t cap)
{
  size_t got = 0;
  for (;;) {
    ssize_t n = read(fd, buf + got, cap - 1 - got);
    if (n == 0)
      break;
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return -errno;
    }
    got += (size_t)n;
    if (got >= cap - 1)
      break;
  }
  buf[got] = 0;
  return (ssize_t)got;
}

static int resolve(const char *host, const char *port, struct sockaddr_storage *ss, socklen_t *sl)
{
  struct addrinfo hints, *res;
  memset(&hints, 0, sizeof(hints));
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICHOST;
  if (getaddrinfo(host, port, &hints, &res) != 0)
    return -1;
  memcpy(ss, res->ai_addr, res->ai_addrlen);
  *sl = res->ai_addrlen;
  freeaddrinfo(res);
  return 0;
}

static int exchange_client(int s)
{
  show(s);
  post_checks(s);
  pause_here();
  if (o_mandatory_after) {
    /* api-06: "immediately aborts the connection if set to 1 on an
     * established unencrypted connection" */
    set_int(s, "after-mandatory", TCP_ENO_TEP_MANDATORY, 1);
    int e = 0;
    socklen_t el = sizeof(e);
    getsockopt(s, SOL_SOCKET, SO_ERROR, &e, &el);
    printf("after-mandatory-so-error: %s\n", e ? ename(e) : "0");
  }
  size_t len = strlen(o_send);
  if (write(s, o_send, len) != (ssize_t)len) {
    printf("write: %s\n", ename(errno));
    return 1;
  }
  shutdown(s, SHUT_WR);
  char buf[8192];
  ssize_t n = read_all(s, buf, sizeof(buf));
  if (n < 0) {
    printf("read: %s\n", ename((int)-n));
    return 1;
  }
  printf("reply: %s\n", buf);
  hold();
  close(s);
  return 0;
}

static int client(const char *host, const char *port)
{
  struct sockaddr_storage ss;
  socklen_t sl;
  if (resolve(host, port, &ss, &sl)) {
    printf("error: cannot parse %s\n", host);
    return 2;
  }
  int s = socket(ss.ss_family, SOCK_STREAM, 0);
  if (s < 0) {
    printf("socket: %s\n", ename(errno));
    return 1;
  }
  show_before(s);
  pre_opts(s);
  if (o_bind) {
    struct sockaddr_storage bs;
    socklen_t bl;
    if (resolve(o_bind, "0", &bs, &bl) || bind(s, (struct sockaddr *)&bs, bl)) {
      printf("bind: %s\n", ename(errno));
      return 1;
    }
  }
  if (o_go) {
    printf("ready\n");
    fflush(stdout);
    wait_file(o_go);
  }
  if (connect(s, (struct sockaddr *)&ss, sl) < 0) {
    printf("connect: %s\n", ename(errno));
    /* the option state after a failed connect */
    show(s);
    printf("done\n");
    return 0;
  }
  printf("connect: ok\n");
  int r = exchange_client(s);
  printf("done\n");
  return r;
}

/* accept n connections in turn, closing each first (TIME-WAIT here) */
static int closefirst(const char *port, int n)
{
  int s = socket(AF_INET, SOCK_STREAM, 0), one = 1;
  struct sockaddr_in a;
  if (s < 0) {
    printf("socket: %s\n", ename(errno));
    return 1;
  }
  setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  memset(&a, 0, sizeof(a));
  a.sin_family = AF_INET;
  a.sin_port = htons((uint16_t)atoi(port));
  if (bind(s, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(s, 8) < 0) {
    printf("bind/listen: %s\n", ename(errno));
    return 1;
  }
  printf("listening: %s\n", port);
  fflush(stdout);
  for (int k = 1; k <= n; k++) {
    int c = accept(s, NULL, NULL);
    if (c < 0) {
      printf("accept: %s\n", ename(errno));
      return 1;
    }
    printf("conn %d: accepted\n", k);
    fflush(stdout);
    if (write(c, "bye\n", 4) != 4)
      printf("conn %d: write: %s\n", k, ename(errno));
    shutdown(c, SHUT_WR);
    char buf[512];
    ssize_t r = read_all(c, buf, sizeof(buf));
    if (r < 0)
      printf("conn %d: read: %s\n", k, ename((int)-r));
    else
      printf("conn %d: peer sent %zd bytes\n", k, r);
    fflush(stdout);
    close(c);
  }
  close(s);
  printf("done\n");
  return 0;
}

static int server(const char *port)
{
  int s = socket(AF_INET6, SOCK_STREAM, 0), one = 1, zero = 0;
  struct sockaddr_in6 a;
  if (s < 0) {
    printf("socket: %s\n", ename(errno));
    return 1;
  }
  setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
  show_before(s);
  pre_opts(s);
  memset(&a, 0, sizeof(a));
  a.sin6_family = AF_INET6;
  a.sin6_port = htons((uint16_t)atoi(port));
  if (bind(s, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(s, 8) < 0) {
    printf("bind/listen: %s\n", ename(errno));
    return 1;
  }
  get_int(s, "listen-self-gopt", TCP_ENO_SELF_GOPT);
  printf("listening: %s\n", port);
  fflush(stdout);
  int c = accept(s, NULL, NULL);
  if (c < 0) {
    printf("accept: %s\n", ename(errno));
    return 1;
  }
  printf("accept: ok\n");
  show(c);
  post_checks(c);
  pause_here();
  char buf[8192];
  ssize_t n = read_all(c, buf, sizeof(buf));
  if (n < 0) {
    printf("read: %s\n", ename((int)-n));
    printf("done\n");
    return 1;
  }
  printf("recv: %s\n", buf);
  if (n > 0 && write(c, buf, (size_t)n) != n)
    printf("write: %s\n", ename(errno));
  shutdown(c, SHUT_WR);
  hold();
  close(c);
  close(s);
  printf("done\n");
  return 0;
}

static int simopen(const char *lport, const char *host, const char *port)
{
  struct sockaddr_storage ss, bs;
  socklen_t sl, bl;
  if (resolve(host, port, &ss, &sl)) {
    printf("error: cannot parse %s\n", host);
    return 2;
  }
  memset(&bs, 0, sizeof(bs));
  bs.ss_family = ss.ss_family;
  if (ss.ss_family == AF_INET) {
    ((struct sockaddr_in *)&bs)->sin_port = htons((uint16_t)atoi(lport));
    bl = sizeof(struct sockaddr_in);
  } else {
    ((struct sockaddr_in6 *)&bs)->sin6_port = htons((uint16_t)atoi(lport));
    bl = sizeof(struct sockaddr_in6);
  }
  if (o_go) {
    printf("ready\n");
    fflush(stdout);
    wait_file(o_go);
  }
  int64_t t0 = now_ms();
  for (int attempt = 1;; attempt++) {
    int s = socket(ss.ss_family, SOCK_STREAM, 0), one = 1;
    if (s < 0) {
      printf("socket: %s\n", ename(errno));
      return 1;
    }
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    quiet = attempt > 1;           /* the same settings, printed once */
    pre_opts(s);
    quiet = 0;
    if (bind(s, (struct sockaddr *)&bs, bl) < 0) {
      printf("bind: %s\n", ename(errno));
      close(s);
      if (now_ms() - t0 > (int64_t)o_deadline * 1000)
        return 1;
      msleep(50);
      continue;
    }
    if (connect(s, (struct sockaddr *)&ss, sl) == 0) {
      printf("connect: ok (attempt %d)\n", attempt);
      int r = exchange_client(s);
      printf("done\n");
      return r;
    }
    int e = errno;
    close(s);
    if ((e != ECONNREFUSED && e != ECONNRESET && e != ETIMEDOUT) ||
        now_ms() - t0 > (int64_t)o_deadline * 1000) {
      printf("connect: %s (attempt %d)\n", ename(e), attempt);
      printf("done\n");
      return 1;
    }
    msleep(20);
  }
}

/* nonblocking connect to a peer that does not answer: the options while the
 * SYN is out (api-06: ENOTCONN for read-only options, EISCONN for settings) */
static int pending(const char *host, const char *port)
{
  struct sockaddr_storage ss;
  socklen_t sl;
  if (resolve(host, port, &ss, &sl)) {
    printf("error: cannot parse %s\n", host);
    return 2;
  }
  int s = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK, 0);
  if (s < 0) {
    printf("socket: %s\n", ename(errno));
    return 1;
  }
  pre_opts(s);
  int r = connect(s, (struct sockaddr *)&ss, sl);
  printf("pending-connect: %s\n", r == 0 ? "ok" : ename(errno));
  /* connect() returned EINPROGRESS: tund has sent (or is sending) the SYN,
   * which nobody answers, so the state stays "negotiating" */
  int v = -1;
  socklen_t l = sizeof(v);
  if (getsockopt(s, IPPROTO_TCP, TCP_ENO_STATE, &v, &l) < 0)
    printf("pending-state: %s\n", ename(errno));
  else
    printf("pending-state: %d\n", v);
  get_bytes(s, "pending-sessid", TCP_ENO_SESSID);
  get_int(s, "pending-negtep", TCP_ENO_NEGTEP);
  get_int(s, "pending-role", TCP_ENO_ROLE);
  get_bytes(s, "pending-transcript", TCP_ENO_TRANSCRIPT);
  unsigned char t[] = { 0x23 };
  set_bytes(s, "pending-set-teps", TCP_ENO_TEPS, t, sizeof(t));
  set_int(s, "pending-set-gopt", TCP_ENO_SELF_GOPT, 1);
  set_int(s, "pending-set-enabled", TCP_ENO_ENABLED, 0);
  set_int(s, "pending-set-aa-mandatory", TCP_ENO_AA_MANDATORY, 1);
  get_bytes(s, "pending-teps-read", TCP_ENO_TEPS);
  close(s);
  printf("done\n");
  return 0;
}

static void on_alarm(int sig)
{
  (void)sig;
  static const char m[] = "error: deadline\n";
  if (write(1, m, sizeof(m) - 1) < 0) {
    /* nothing to do */
  }
  _exit(4);
}

int main(int argc, char **argv)
{
  setvbuf(stdout, NULL, _IOLBF, 0);
  int i = 1;
  for (; i < argc && argv[i][0] == '-' && argv[i][1] == '-'; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define ARG(name) (!strcmp(a, name) && v && ++i)
    if (ARG("--teps"))
      o_teps = v;
    else if (ARG("--gopt"))
      o_gopt = atoi(v);
    else if (ARG("--enabled"))
      o_enabled = atoi(v);
    else if (!strcmp(a, "--mandatory"))
      o_mandatory = 1;
    else if (ARG("--raw"))
      o_raw = v;
    else if (ARG("--send"))
      o_send = v;
    else if (!strcmp(a, "--check-einval"))
      o_check_einval = 1;
    else if (!strcmp(a, "--aa-mandatory"))
      o_aa_mandatory = 1;
    else if (!strcmp(a, "--mandatory-after"))
      o_mandatory_after = 1;
    else if (!strcmp(a, "--show-before"))
      o_show_before = 1;
    else if (!strcmp(a, "--check-after"))
      o_check_after = 1;
    else if (ARG("--go-file"))
      o_go = v;
    else if (ARG("--pause-file"))
      o_pause = v;
    else if (ARG("--hold-file"))
      o_hold = v;
    else if (ARG("--bind"))
      o_bind = v;
    else if (ARG("--deadline"))
      o_deadline = atoi(v);
    else {
      fprintf(stderr, "eno_probe: bad option %s\n", a);
      return 2;
    }
#undef ARG
  }
  signal(SIGALRM, on_alarm);
  signal(SIGPIPE, SIG_IGN);
  alarm((unsigned)o_deadline + 5);
  if (argc - i == 3 && !strcmp(argv[i], "client"))
    return client(argv[i + 1], argv[i + 2]);
  if (argc - i == 2 && !strcmp(argv[i], "server"))
    return server(argv[i + 1]);
  if (argc - i == 3 && !strcmp(argv[i], "closefirst"))
    return closefirst(argv[i + 1], atoi(argv[i + 2]));
  if (argc - i == 3 && !strcmp(argv[i], "pending"))
    return pending(argv[i + 1], argv[i + 2]);
  if (argc - i == 4 && !strcmp(argv[i], "simopen"))
    return simopen(argv[i + 1], argv[i + 2], argv[i + 3]);
  fprintf(stderr, "usage: eno_probe [OPTIONS] client HOST PORT | server PORT | pending HOST PORT |"
                  " closefirst PORT N | simopen LPORT HOST PORT\n");
  return 2;
}
