/*
 * bench/enobench.c — one network benchmark tool for every case of scripts/bench.
 *
 * Plain BSD sockets only, so it runs unmodified on kernel TCP, behind stunnel,
 * and under enorun (libenoshim.so).  With --aead/--no-eno/--noresume it sets
 * the enoshim socket options of include/tcpinc.h; without the shim the kernel
 * answers ENOPROTOOPT and the option is ignored (reported as "eno":"none").
 *
 *   enobench server   --port P [--bind ADDR] [--threads N]
 *   enobench bulk     --host H --port P [--time S] [--streams N] [--size BYTES]
 *   enobench pingpong --host H --port P [--time S]
 *   enobench conn     --host H --port P [--time S] [--count N] [--hold S]
 *   enobench scale    --host H --port P --conns N [--inflight K] [--hold-stdin] [--verify-timeout S]
 *                    (opens N connections, K at a time; checks that every one echoes, K at a
 *                    time; with --hold-stdin waits for stdin to close, checks again K at a
 *                    time and then all N at once, then closes them)
 *
 * Client options: --aead 0x0001|0x0002|0x0010 (TCP_CRYPT_ACONF with that one
 * AEAD), --no-eno (TCP_ENO_ENABLED=0), --noresume (TCP_CRYPT_NORESUME=1),
 * --timeout S (watchdog, default time + 60 s).
 *
 * Wire protocol (server side decides per connection from the first byte):
 *   'B'  bulk sink: the server counts every byte (the 'B' included) until EOF,
 *        then sends the count as 8 bytes big-endian and closes.
 *   'E'  echo: every byte (the 'E' included) is sent back; EOF closes.
 * ping-pong = 1-byte echo; conn = 32-byte echo request/reply; scale = 8-byte
 * echo on every held connection.
 *
 * Every client run prints one line of JSON on stdout (scale prints one per
 * phase).  Exit status 0 only if the run completed without error.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "tcpinc.h"

/* ---- options --------------------------------------------------------------- */

static const char *o_host = "127.0.0.1";
static const char *o_bind = "0.0.0.0";
static int o_port = 5001;
static double o_time = 5.0;
static int o_streams = 1;
static size_t o_size = 128 * 1024;
static int o_threads = 2;
static long o_count = 0;
static double o_hold = 0;
static int o_conns = 1000;
static int o_inflight = 256;
static int o_hold_stdin = 0;
static double o_verify_timeout = 60;
static unsigned o_aead = 0;
static int o_no_eno = 0;
static int o_noresume = 0;
static double o_timeout = 0;
static const char *o_label = "";

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
  va_list ap;
  char msg[512];
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  fprintf(stderr, "enobench: %s\n", msg);
  printf("{\"error\": \"%s\"}\n", msg);
  fflush(stdout);
  exit(1);
}

static double now(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint64_t now_ns(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void cpu_self(double *user, double *sys)
{
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  *user = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6;
  *sys = (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6;
}

/* voluntary (slept) and involuntary (preempted) context switches so far */
static void ctxsw_self(long *vol, long *invol)
{
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  *vol = ru.ru_nvcsw;
  *invol = ru.ru_nivcsw;
}

static void raise_nofile(void)
{
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

/* ---- addresses and enoshim options ----------------------------------------- */

static struct sockaddr_storage g_addr;
static socklen_t g_addrlen;

static void resolve(const char *host, int port, struct sockaddr_storage *ss, socklen_t *len)
{
  memset(ss, 0, sizeof(*ss));
  struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
  struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
  if (inet_pton(AF_INET, host, &s4->sin_addr) == 1) {
    s4->sin_family = AF_INET;
    s4->sin_port = htons((uint16_t)port);
    *len = sizeof(*s4);
  } else if (inet_pton(AF_INET6, host, &s6->sin6_addr) == 1) {
    s6->sin6_family = AF_INET6;
    s6->sin6_port = htons((uint16_t)port);
    *len = sizeof(*s6);
  } else {
    die("bad address %s (numeric IPv4/IPv6 only)", host);
  }
}

/* Apply the enoshim options asked for.  ENOPROTOOPT (no shim) is ignored. */
static int g_shim_seen = -1; /* -1 unknown, 0 kernel refused the options, 1 shim took them */

static void set_eno_opt(int fd, int name, const void *v, socklen_t l, const char *what)
{
  if (setsockopt(fd, IPPROTO_TCP, name, v, l) == 0) {
    g_shim_seen = 1;
    return;
  }
  if (errno == ENOPROTOOPT) {
    g_shim_seen = 0;
    return;
  }
  die("setsockopt(%s): %s", what, strerror(errno));
}

static void apply_opts(int fd)
{
  if (o_no_eno) {
    int zero = 0;
    set_eno_opt(fd, TCP_ENO_ENABLED, &zero, sizeof(zero), "TCP_ENO_ENABLED");
  }
  if (o_aead) {
    uint8_t b[2] = { (uint8_t)(o_aead >> 8), (uint8_t)o_aead };
    set_eno_opt(fd, TCP_CRYPT_ACONF, b, sizeof(b), "TCP_CRYPT_ACONF");
  }
  if (o_noresume) {
    int one = 1;
    set_eno_opt(fd, TCP_CRYPT_NORESUME, &one, sizeof(one), "TCP_CRYPT_NORESUME");
  }
}

/* What the connection negotiated, as JSON ("none" without the shim). */
static void eno_info(int fd, char *out, size_t n)
{
  int st = -1, tep = 0, aead = 0;
  socklen_t l = sizeof(st);
  if (getsockopt(fd, IPPROTO_TCP, TCP_ENO_STATE, &st, &l) != 0) {
    snprintf(out, n, "\"none\"");
    return;
  }
  const char *sn = st == TCPINC_STATE_ENCRYPTING ? "encrypting"
                   : st == TCPINC_STATE_DISABLED ? "disabled" : "negotiating";
  if (st == TCPINC_STATE_ENCRYPTING) {
    l = sizeof(tep);
    if (getsockopt(fd, IPPROTO_TCP, TCP_ENO_NEGTEP, &tep, &l) != 0)
      tep = 0;
    l = sizeof(aead);
    if (getsockopt(fd, IPPROTO_TCP, TCP_CRYPT_CONF, &aead, &l) != 0)
      aead = 0;
  }
  snprintf(out, n, "{\"state\": \"%s\", \"tep\": \"0x%02x\", \"aead\": \"0x%04x\"}", sn, tep & 0xff,
           aead & 0xffff);
}

/* 0 = not encrypting (or no shim), 1 = tcpcrypt with a fresh key exchange,
 * 2 = tcpcrypt resumed (B's TEP suboption has v=1: negtep | 0x80). */
static int eno_encrypting(int fd)
{
  int st = -1, tep = 0;
  socklen_t l = sizeof(st);
  if (getsockopt(fd, IPPROTO_TCP, TCP_ENO_STATE, &st, &l) != 0 || st != TCPINC_STATE_ENCRYPTING)
    return 0;
  l = sizeof(tep);
  if (getsockopt(fd, IPPROTO_TCP, TCP_ENO_NEGTEP, &tep, &l) == 0 && (tep & 0x80))
    return 2;
  return 1;
}

static int connect_blocking(void)
{
  int fd = socket(g_addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    die("socket: %s", strerror(errno));
  apply_opts(fd);
  if (connect(fd, (struct sockaddr *)&g_addr, g_addrlen) != 0) {
    int e = errno;
    close(fd);
    errno = e;
    return -1;
  }
  return fd;
}

static int write_full(int fd, const void *buf, size_t n)
{
  const char *p = buf;
  while (n) {
    ssize_t w = write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR)
        continue;
      return -1;
    }
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

/* 1 = got n bytes, 0 = EOF first, -1 = error */
static int read_full(int fd, void *buf, size_t n)
{
  char *p = buf;
  while (n) {
    ssize_t r = read(fd, p, n);
    if (r < 0) {
      if (errno == EINTR)
        continue;
      return -1;
    }
    if (r == 0)
      return 0;
    p += r;
    n -= (size_t)r;
  }
  return 1;
}

static void watchdog(double secs)
{
  double t = o_timeout > 0 ? o_timeout : secs + 60;
  alarm((unsigned)t + 1);
}

static int cmp_u64(const void *a, const void *b)
{
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

/* ---- server --------------------------------------------------------------- */

struct sconn {
  int fd;
  char mode;            /* 0 until the first byte */
  uint64_t count;       /* bulk: bytes received */
  size_t pend_off, pend_len;
  char pend[4096];      /* echo bytes not yet written back */
};

struct worker {
  pthread_t th;
  int ep;
};

static struct worker *g_workers;

static void sconn_close(int ep, struct sconn *c)
{
  epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
  close(c->fd);
  free(c);
}

static void set_events(int ep, struct sconn *c, uint32_t ev)
{
  struct epoll_event e = { .events = ev, .data.ptr = c };
  epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &e);
}

/* Echo: flush pending bytes; 0 = all written, 1 = still pending, -1 = error. */
static int echo_flush(struct sconn *c)
{
  while (c->pend_len) {
    ssize_t w = write(c->fd, c->pend + c->pend_off, c->pend_len);
    if (w < 0) {
      if (errno == EINTR)
        continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK)
        return 1;
      return -1;
    }
    c->pend_off += (size_t)w;
    c->pend_len -= (size_t)w;
  }
  c->pend_off = 0;
  return 0;
}

static void handle(int ep, struct sconn *c, uint32_t ev, char *buf, size_t bufsz)
{
  if (c->mode == 'E' && c->pend_len) {
    int r = echo_flush(c);
    if (r < 0) {
      sconn_close(ep, c);
      return;
    }
    if (r > 0)
      return;
    set_events(ep, c, EPOLLIN);
  }
  if (!(ev & (EPOLLIN | EPOLLHUP | EPOLLERR)))
    return;
  for (int rounds = 0; rounds < 16; rounds++) {
    /* until the mode is known, read into the echo buffer (small) */
    size_t want = c->mode == 'B' ? bufsz : sizeof(c->pend);
    char *dst = c->mode == 'B' ? buf : c->pend;
    ssize_t r = read(c->fd, dst, want);
    if (r < 0) {
      if (errno == EINTR)
        continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK)
        return;
      sconn_close(ep, c);
      return;
    }
    if (r == 0) {
      if (c->mode == 'B') {
        uint8_t cnt[8];
        for (int i = 0; i < 8; i++)
          cnt[i] = (uint8_t)(c->count >> (56 - 8 * i));
        /* 8 bytes into an empty send buffer: a non-blocking write succeeds */
        if (write(c->fd, cnt, sizeof(cnt)) != (ssize_t)sizeof(cnt)) {
          /* fall back to a short blocking wait */
          struct pollfd p = { .fd = c->fd, .events = POLLOUT };
          poll(&p, 1, 5000);
          if (write(c->fd, cnt, sizeof(cnt)) < 0)
            fprintf(stderr, "enobench server: count write: %s\n", strerror(errno));
        }
      }
      sconn_close(ep, c);
      return;
    }
    if (!c->mode) {
      char m = dst[0];
      if (m != 'B' && m != 'E') {
        fprintf(stderr, "enobench server: unknown mode byte 0x%02x\n", (unsigned char)m);
        sconn_close(ep, c);
        return;
      }
      c->mode = m;
    }
    if (c->mode == 'B') {
      c->count += (uint64_t)r;
      if ((size_t)r < want)
        return; /* drained (level-triggered epoll calls again) */
    } else {
      c->pend_off = 0;
      c->pend_len = (size_t)r;
      int f = echo_flush(c);
      if (f < 0) {
        sconn_close(ep, c);
        return;
      }
      if (f > 0) {
        set_events(ep, c, EPOLLOUT);
        return;
      }
      if ((size_t)r < want)
        return;
    }
  }
}

static void *worker_main(void *arg)
{
  struct worker *w = arg;
  size_t bufsz = 256 * 1024;
  char *buf = malloc(bufsz);
  struct epoll_event ev[256];
  if (!buf)
    die("out of memory");
  for (;;) {
    int n = epoll_wait(w->ep, ev, 256, -1);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      die("epoll_wait: %s", strerror(errno));
    }
    for (int i = 0; i < n; i++)
      handle(w->ep, ev[i].data.ptr, ev[i].events, buf, bufsz);
  }
  return NULL;
}

static int run_server(void)
{
  struct sockaddr_storage ss;
  socklen_t sl;
  raise_nofile();
  signal(SIGPIPE, SIG_IGN);
  resolve(o_bind, o_port, &ss, &sl);
  int lfd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (lfd < 0)
    die("socket: %s", strerror(errno));
  int one = 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (bind(lfd, (struct sockaddr *)&ss, sl) != 0)
    die("bind %s:%d: %s", o_bind, o_port, strerror(errno));
  if (listen(lfd, 4096) != 0)
    die("listen: %s", strerror(errno));
  g_workers = calloc((size_t)o_threads, sizeof(*g_workers));
  if (!g_workers)
    die("out of memory");
  for (int i = 0; i < o_threads; i++) {
    g_workers[i].ep = epoll_create1(EPOLL_CLOEXEC);
    if (g_workers[i].ep < 0)
      die("epoll_create1: %s", strerror(errno));
    if (pthread_create(&g_workers[i].th, NULL, worker_main, &g_workers[i]))
      die("pthread_create failed");
  }
  printf("{\"listening\": %d, \"pid\": %d, \"threads\": %d}\n", o_port, (int)getpid(), o_threads);
  fflush(stdout);
  unsigned long next = 0;
  for (;;) {
    int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED || errno == EAGAIN)
        continue;
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        fprintf(stderr, "enobench server: accept: %s\n", strerror(errno));
        usleep(10000);
        continue;
      }
      die("accept: %s", strerror(errno));
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    struct sconn *c = calloc(1, sizeof(*c));
    if (!c)
      die("out of memory");
    c->fd = fd;
    struct worker *w = &g_workers[next++ % (unsigned long)o_threads];
    struct epoll_event e = { .events = EPOLLIN, .data.ptr = c };
    if (epoll_ctl(w->ep, EPOLL_CTL_ADD, fd, &e) != 0) {
      fprintf(stderr, "enobench server: epoll_ctl: %s\n", strerror(errno));
      close(fd);
      free(c);
    }
  }
}

/* ---- bulk ----------------------------------------------------------------- */

struct stream {
  pthread_t th;
  int fd;
  uint64_t sent, acked;
  double t_end;
  int err;
  char errmsg[128];
};

static pthread_barrier_t g_barrier;
static double g_t0, g_deadline;

static void *stream_main(void *arg)
{
  struct stream *s = arg;
  char *buf = malloc(o_size);
  if (!buf) {
    s->err = 1;
    snprintf(s->errmsg, sizeof(s->errmsg), "out of memory");
    pthread_barrier_wait(&g_barrier);
    return NULL;
  }
  for (size_t i = 0; i < o_size; i++)
    buf[i] = (char)(i * 131 + 7);
  buf[0] = 'B';
  pthread_barrier_wait(&g_barrier);   /* all connected */
  pthread_barrier_wait(&g_barrier);   /* main set g_t0 */
  int first = 1;
  while (now() < g_deadline) {
    ssize_t w = write(s->fd, buf, o_size);
    if (w < 0) {
      if (errno == EINTR)
        continue;
      s->err = 1;
      snprintf(s->errmsg, sizeof(s->errmsg), "write: %s", strerror(errno));
      break;
    }
    if (first) {
      buf[0] = (char)7;
      first = 0;
    }
    s->sent += (uint64_t)w;
  }
  if (!s->err) {
    shutdown(s->fd, SHUT_WR);
    uint8_t cnt[8];
    int r = read_full(s->fd, cnt, sizeof(cnt));
    if (r != 1) {
      s->err = 1;
      snprintf(s->errmsg, sizeof(s->errmsg), "no byte count from the server (%s)",
               r == 0 ? "EOF" : strerror(errno));
    } else {
      for (int i = 0; i < 8; i++)
        s->acked = (s->acked << 8) | cnt[i];
      if (s->acked != s->sent) {
        s->err = 1;
        snprintf(s->errmsg, sizeof(s->errmsg), "server counted %llu bytes, client sent %llu",
                 (unsigned long long)s->acked, (unsigned long long)s->sent);
      }
    }
  }
  s->t_end = now();
  free(buf);
  return NULL;
}

static int run_bulk(void)
{
  watchdog(o_time);
  signal(SIGPIPE, SIG_IGN);
  struct stream *st = calloc((size_t)o_streams, sizeof(*st));
  if (!st)
    die("out of memory");
  char info[200] = "\"none\"";
  double tc0 = now();
  for (int i = 0; i < o_streams; i++) {
    st[i].fd = connect_blocking();
    if (st[i].fd < 0)
      die("connect %s:%d: %s", o_host, o_port, strerror(errno));
    if (i == 0)
      eno_info(st[i].fd, info, sizeof(info));
  }
  double connect_s = now() - tc0;
  pthread_barrier_init(&g_barrier, NULL, (unsigned)o_streams + 1);
  for (int i = 0; i < o_streams; i++)
    if (pthread_create(&st[i].th, NULL, stream_main, &st[i]))
      die("pthread_create failed");
  pthread_barrier_wait(&g_barrier);
  double cu0, cs0;
  cpu_self(&cu0, &cs0);
  g_t0 = now();
  g_deadline = g_t0 + o_time;
  pthread_barrier_wait(&g_barrier);
  uint64_t total = 0;
  double t_end = g_t0;
  int err = 0;
  const char *emsg = "";
  for (int i = 0; i < o_streams; i++) {
    pthread_join(st[i].th, NULL);
    total += st[i].acked;
    if (st[i].t_end > t_end)
      t_end = st[i].t_end;
    if (st[i].err && !err) {
      err = 1;
      emsg = st[i].errmsg;
    }
  }
  double cu1, cs1;
  cpu_self(&cu1, &cs1);
  double secs = t_end - g_t0;
  printf("{\"mode\": \"bulk\", \"label\": \"%s\", \"streams\": %d, \"bytes\": %llu, \"secs\": %.6f, "
         "\"gbps\": %.4f, \"connect_s\": %.6f, \"cpu_user\": %.4f, \"cpu_sys\": %.4f, \"eno\": %s%s%s%s}\n",
         o_label, o_streams, (unsigned long long)total, secs, secs > 0 ? (double)total * 8 / secs / 1e9 : 0,
         connect_s, cu1 - cu0, cs1 - cs0, info, err ? ", \"error\": \"" : "", err ? emsg : "", err ? "\"" : "");
  for (int i = 0; i < o_streams; i++)
    close(st[i].fd);
  return err;
}

/* ---- ping-pong ------------------------------------------------------------ */

static int run_pingpong(void)
{
  watchdog(o_time);
  signal(SIGPIPE, SIG_IGN);
  int fd = connect_blocking();
  if (fd < 0)
    die("connect %s:%d: %s", o_host, o_port, strerror(errno));
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  char info[200];
  eno_info(fd, info, sizeof(info));
  char b = 'E';
  /* warm-up: the mode byte and a few round trips are not measured */
  for (int i = 0; i < 100; i++)
    if (write_full(fd, &b, 1) || read_full(fd, &b, 1) != 1)
      die("ping-pong warm-up failed: %s", strerror(errno));
  size_t cap = 1 << 16, n = 0;
  uint64_t *lat = malloc(cap * sizeof(*lat));
  if (!lat)
    die("out of memory");
  double cu0, cs0;
  long vcs0, ics0;
  cpu_self(&cu0, &cs0);
  ctxsw_self(&vcs0, &ics0);
  uint64_t t_start = now_ns(), deadline = t_start + (uint64_t)(o_time * 1e9), t = t_start;
  while (t < deadline) {
    uint64_t t1 = t;
    if (write_full(fd, &b, 1))
      die("ping-pong write: %s", strerror(errno));
    int r = read_full(fd, &b, 1);
    if (r != 1)
      die("ping-pong read: %s", r == 0 ? "EOF" : strerror(errno));
    t = now_ns();
    if (n == cap) {
      cap *= 2;
      lat = realloc(lat, cap * sizeof(*lat));
      if (!lat)
        die("out of memory");
    }
    lat[n++] = t - t1;
  }
  double cu1, cs1;
  long vcs1, ics1;
  cpu_self(&cu1, &cs1);
  ctxsw_self(&vcs1, &ics1);
  close(fd);
  double sum = 0;
  for (size_t i = 0; i < n; i++)
    sum += (double)lat[i];
  qsort(lat, n, sizeof(*lat), cmp_u64);
  double mean = n ? sum / (double)n / 1e3 : 0;
  double p50 = n ? (double)lat[n / 2] / 1e3 : 0;
  double p99 = n ? (double)lat[(size_t)((double)(n - 1) * 0.99)] / 1e3 : 0;
  double p999 = n ? (double)lat[(size_t)((double)(n - 1) * 0.999)] / 1e3 : 0;
  printf("{\"mode\": \"pingpong\", \"label\": \"%s\", \"n\": %zu, \"secs\": %.6f, \"mean_us\": %.3f, "
         "\"p50_us\": %.3f, \"p99_us\": %.3f, \"p999_us\": %.3f, \"min_us\": %.3f, \"max_us\": %.3f, "
         "\"cpu_user\": %.4f, \"cpu_sys\": %.4f, \"vcsw_per_rt\": %.3f, \"ivcsw_per_rt\": %.3f, "
         "\"eno\": %s}\n",
         o_label, n, (double)(t - t_start) / 1e9, mean, p50, p99, p999, n ? (double)lat[0] / 1e3 : 0,
         n ? (double)lat[n - 1] / 1e3 : 0, cu1 - cu0, cs1 - cs0, n ? (double)(vcs1 - vcs0) / (double)n : 0,
         n ? (double)(ics1 - ics0) / (double)n : 0, info);
  free(lat);
  return 0;
}

/* ---- connection rate ------------------------------------------------------ */

static int run_conn(void)
{
  watchdog(o_time + o_hold);
  signal(SIGPIPE, SIG_IGN);
  char req[32], rep[32];
  memset(req, 'r', sizeof(req));
  req[0] = 'E';
  char info_first[200] = "\"none\"", info_last[200] = "\"none\"";
  long n = 0, errors = 0, encrypting = 0, resumed = 0;
  static long per_sec[3600];
  char lasterr[160] = "";
  size_t cap = 1 << 14;
  uint64_t *lat = malloc(cap * sizeof(*lat));
  if (!lat)
    die("out of memory");
  double cu0, cs0;
  cpu_self(&cu0, &cs0);
  double t0 = now(), deadline = t0 + o_time, t = t0;
  while ((o_count ? n < o_count : t < deadline) && errors < 50) {
    uint64_t s0 = now_ns();
    int fd = connect_blocking();
    if (fd < 0) {
      errors++;
      snprintf(lasterr, sizeof(lasterr), "connect: %s", strerror(errno));
      usleep(1000);
      t = now();
      continue;
    }
    int ok = write_full(fd, req, sizeof(req)) == 0 && read_full(fd, rep, sizeof(rep)) == 1 &&
             memcmp(req, rep, sizeof(req)) == 0;
    if (!ok) {
      errors++;
      snprintf(lasterr, sizeof(lasterr), "request/reply: %s", strerror(errno));
      close(fd);
      t = now();
      continue;
    }
    if (n == 0)
      eno_info(fd, info_first, sizeof(info_first));
    int e = eno_encrypting(fd);
    encrypting += e > 0;
    resumed += e == 2;
    close(fd);
    uint64_t s1 = now_ns();
    if ((size_t)n == cap) {
      cap *= 2;
      lat = realloc(lat, cap * sizeof(*lat));
      if (!lat)
        die("out of memory");
    }
    lat[n++] = s1 - s0;
    t = now();
    size_t sec = (size_t)(t - t0);
    if (sec < sizeof(per_sec) / sizeof(per_sec[0]))
      per_sec[sec]++;
  }
  double secs = t - t0;
  double cu1, cs1;
  cpu_self(&cu1, &cs1);
  if (o_hold > 0) {
    /* one more connection, held open so that the caller can look at it (enoctl status) */
    int fd = connect_blocking();
    if (fd >= 0 && write_full(fd, req, sizeof(req)) == 0 && read_full(fd, rep, sizeof(rep)) == 1) {
      eno_info(fd, info_last, sizeof(info_last));
      fprintf(stderr, "enobench: holding one connection for %.1f s\n", o_hold);
      usleep((useconds_t)(o_hold * 1e6));
    } else {
      errors++;
      snprintf(lasterr, sizeof(lasterr), "held connection failed: %s", strerror(errno));
    }
    if (fd >= 0)
      close(fd);
  }
  double sum = 0;
  for (long i = 0; i < n; i++)
    sum += (double)lat[i];
  qsort(lat, (size_t)n, sizeof(*lat), cmp_u64);
  char tl[4096];
  size_t tlen = 0, nsec = (size_t)secs + 1;
  for (size_t i = 0; i < nsec && i < sizeof(per_sec) / sizeof(per_sec[0]) && tlen < sizeof(tl) - 32; i++)
    tlen += (size_t)snprintf(tl + tlen, sizeof(tl) - tlen, "%s%ld", i ? ", " : "", per_sec[i]);
  tl[tlen] = 0;
  printf("{\"mode\": \"conn\", \"label\": \"%s\", \"conns\": %ld, \"secs\": %.6f, \"rate\": %.2f, "
         "\"mean_us\": %.2f, \"p99_us\": %.2f, \"max_us\": %.2f, \"per_sec\": [%s], \"errors\": %ld, \"encrypting\": %ld, \"resumed\": %ld, \"cpu_user\": %.4f, "
         "\"cpu_sys\": %.4f, \"eno\": %s, \"eno_held\": %s%s%s%s}\n",
         o_label, n, secs, secs > 0 ? (double)n / secs : 0, n ? sum / (double)n / 1e3 : 0,
         n ? (double)lat[(size_t)((double)(n - 1) * 0.99)] / 1e3 : 0, n ? (double)lat[n - 1] / 1e3 : 0, tl,
         errors, encrypting, resumed, cu1 - cu0,
         cs1 - cs0, info_first, info_last, errors ? ", \"last_error\": \"" : "", errors ? lasterr : "",
         errors ? "\"" : "");
  free(lat);
  return errors ? 1 : 0;
}

/* ---- scale ---------------------------------------------------------------- */

/* Send 8 bytes on every connection and read them back; returns how many echoed.
 * window > 0: at most that many connections have an echo outstanding at a time
 * (a paced check); window 0: all at once (a burst of n small segments). */
static int verify_all(int *fds, int n, int ep, double timeout_s, int window, char tag, double *secs, int *wrong)
{
  double t0 = now();
  /* the tag makes each round's message different: a late echo of an earlier
   * round is not counted as this round's */
  char msg[8] = { 'E', 'c', 'h', 'o', '.', '.', '.', tag };
  unsigned char *got = calloc((size_t)n, 1);
  char (*buf)[8] = calloc((size_t)n, 8);
  unsigned char *active = calloc((size_t)n, 1);
  int ok = 0, pending = 0, next = 0;
  *wrong = 0;
  if (!got || !buf || !active)
    die("out of memory");
  struct epoll_event ev[512];
  for (;;) {
    while (next < n && (window <= 0 || pending < window)) {
      int i = next++;
      if (fds[i] < 0)
        continue;
      if (write_full(fds[i], msg, sizeof(msg)) == 0) {
        struct epoll_event e = { .events = EPOLLIN, .data.u32 = (uint32_t)i };
        if (epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &e) == 0) {
          active[i] = 1;
          pending++;
        }
      }
    }
    if ((pending == 0 && next >= n) || now() - t0 >= timeout_s)
      break;
    int k = epoll_wait(ep, ev, 512, 200);
    for (int j = 0; j < k; j++) {
      int i = (int)ev[j].data.u32;
      ssize_t r = read(fds[i], buf[i] + got[i], sizeof(msg) - got[i]);
      if (r > 0)
        got[i] = (unsigned char)(got[i] + r);
      if (r > 0 && got[i] < sizeof(msg))
        continue;
      if (r < 0 && (errno == EAGAIN || errno == EINTR))
        continue;
      epoll_ctl(ep, EPOLL_CTL_DEL, fds[i], NULL);
      active[i] = 0;
      pending--;
      if (r > 0 && got[i] == sizeof(msg)) {
        if (memcmp(buf[i], msg, sizeof(msg)) == 0)
          ok++;
        else
          (*wrong)++;
      }
    }
  }
  for (int i = 0; i < n; i++)
    if (active[i])
      epoll_ctl(ep, EPOLL_CTL_DEL, fds[i], NULL);
  free(got);
  free(buf);
  free(active);
  *secs = now() - t0;
  return ok;
}

static int run_scale(void)
{
  raise_nofile();
  signal(SIGPIPE, SIG_IGN);
  int n = o_conns;
  int *fds = malloc((size_t)n * sizeof(int));
  if (!fds)
    die("out of memory");
  for (int i = 0; i < n; i++)
    fds[i] = -1;
  int ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0)
    die("epoll_create1: %s", strerror(errno));
  double t0 = now();
  int next = 0, inflight = 0, connected = 0, failed = 0;
  char lasterr[160] = "";
  struct epoll_event ev[512];
  alarm(600);
  while (connected + failed < n) {
    while (next < n && inflight < o_inflight) {
      int fd = socket(g_addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      if (fd < 0) {
        snprintf(lasterr, sizeof(lasterr), "socket #%d: %s", next, strerror(errno));
        failed++;
        next++;
        continue;
      }
      apply_opts(fd);
      int r = connect(fd, (struct sockaddr *)&g_addr, g_addrlen);
      if (r == 0) {
        fds[next++] = fd;
        connected++;
        continue;
      }
      if (errno != EINPROGRESS) {
        snprintf(lasterr, sizeof(lasterr), "connect #%d: %s", next, strerror(errno));
        close(fd);
        failed++;
        next++;
        continue;
      }
      fds[next] = fd;
      struct epoll_event e = { .events = EPOLLOUT, .data.u32 = (uint32_t)next };
      epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e);
      next++;
      inflight++;
    }
    if (inflight == 0)
      continue;
    int k = epoll_wait(ep, ev, 512, 1000);
    for (int j = 0; j < k; j++) {
      int i = (int)ev[j].data.u32;
      int err = 0;
      socklen_t el = sizeof(err);
      getsockopt(fds[i], SOL_SOCKET, SO_ERROR, &err, &el);
      epoll_ctl(ep, EPOLL_CTL_DEL, fds[i], NULL);
      inflight--;
      if (err) {
        snprintf(lasterr, sizeof(lasterr), "connect #%d: %s", i, strerror(err));
        close(fds[i]);
        fds[i] = -1;
        failed++;
      } else {
        connected++;
      }
    }
  }
  double open_s = now() - t0;
  int encrypting = 0, resumed = 0;
  char info[200] = "\"none\"";
  for (int i = 0; i < n; i++)
    if (fds[i] >= 0) {
      if (encrypting == 0)
        eno_info(fds[i], info, sizeof(info));
      int e = eno_encrypting(fds[i]);
      encrypting += e > 0;
      resumed += e == 2;
    }
  double vs;
  int wrong;
  int echoed = verify_all(fds, n, ep, o_verify_timeout, o_inflight, '1', &vs, &wrong);
  printf("{\"mode\": \"scale\", \"phase\": \"open\", \"label\": \"%s\", \"conns\": %d, \"connected\": %d, "
         "\"failed\": %d, \"open_s\": %.4f, \"rate\": %.1f, \"encrypting\": %d, \"resumed\": %d, \"echoed\": %d, "
         "\"wrong\": %d, \"verify_s\": %.4f, \"eno\": %s%s%s%s}\n",
         o_label, n, connected, failed, open_s, open_s > 0 ? connected / open_s : 0, encrypting, resumed, echoed, wrong, vs,
         info, failed ? ", \"last_error\": \"" : "", failed ? lasterr : "", failed ? "\"" : "");
  fflush(stdout);
  if (o_hold_stdin) {
    alarm(0);
    char b[64];
    while (read(0, b, sizeof(b)) > 0)
      ;
    alarm(600);
    int echoed2 = verify_all(fds, n, ep, o_verify_timeout, o_inflight, '2', &vs, &wrong);
    double bs;
    int bwrong;
    int burst = verify_all(fds, n, ep, o_verify_timeout, 0, '3', &bs, &bwrong);
    printf("{\"mode\": \"scale\", \"phase\": \"after_hold\", \"label\": \"%s\", \"conns\": %d, "
           "\"echoed\": %d, \"wrong\": %d, \"verify_s\": %.4f, \"burst_echoed\": %d, \"burst_wrong\": %d, "
           "\"burst_s\": %.4f}\n", o_label, n, echoed2, wrong, vs, burst, bwrong, bs);
    fflush(stdout);
    if (echoed2 != n)
      failed += n - echoed2;
  }
  double tc = now();
  for (int i = 0; i < n; i++)
    if (fds[i] >= 0)
      close(fds[i]);
  fprintf(stderr, "enobench: closed %d connections in %.3f s\n", connected, now() - tc);
  free(fds);
  return (failed || echoed != n) ? 1 : 0;
}

/* ---- main ----------------------------------------------------------------- */

static void usage(void)
{
  fprintf(stderr,
          "usage: enobench server|bulk|pingpong|conn|scale [options]\n"
          "  --host H --port P --bind ADDR --time S --streams N --size BYTES --threads N\n"
          "  --count N --hold S --conns N --inflight K --hold-stdin --verify-timeout S --label TEXT\n"
          "  --aead 0x0001|0x0002|0x0010 --no-eno --noresume --timeout S\n");
  exit(2);
}

int main(int argc, char **argv)
{
  if (argc < 2)
    usage();
  const char *mode = argv[1];
  for (int i = 2; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define ARG(name) (!strcmp(a, name) && v && (i++, 1))
    if (ARG("--host"))
      o_host = v;
    else if (ARG("--bind"))
      o_bind = v;
    else if (ARG("--port"))
      o_port = atoi(v);
    else if (ARG("--time"))
      o_time = atof(v);
    else if (ARG("--streams"))
      o_streams = atoi(v);
    else if (ARG("--size"))
      o_size = (size_t)strtoul(v, NULL, 0);
    else if (ARG("--threads"))
      o_threads = atoi(v);
    else if (ARG("--count"))
      o_count = atol(v);
    else if (ARG("--hold"))
      o_hold = atof(v);
    else if (ARG("--conns"))
      o_conns = atoi(v);
    else if (ARG("--inflight"))
      o_inflight = atoi(v);
    else if (ARG("--aead"))
      o_aead = (unsigned)strtoul(v, NULL, 0);
    else if (ARG("--verify-timeout"))
      o_verify_timeout = atof(v);
    else if (ARG("--timeout"))
      o_timeout = atof(v);
    else if (ARG("--label"))
      o_label = v;
    else if (!strcmp(a, "--no-eno"))
      o_no_eno = 1;
    else if (!strcmp(a, "--noresume"))
      o_noresume = 1;
    else if (!strcmp(a, "--hold-stdin"))
      o_hold_stdin = 1;
    else
      usage();
#undef ARG
  }
  if (o_streams < 1 || o_threads < 1 || o_size < 1 || o_conns < 1 || o_inflight < 1)
    usage();
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (!strcmp(mode, "server"))
    return run_server();
  resolve(o_host, o_port, &g_addr, &g_addrlen);
  if (!strcmp(mode, "bulk"))
    return run_bulk();
  if (!strcmp(mode, "pingpong"))
    return run_pingpong();
  if (!strcmp(mode, "conn"))
    return run_conn();
  if (!strcmp(mode, "scale"))
    return run_scale();
  usage();
  return 2;
}
