/*
 * tests/progs/crypt_peer.c — one end of a tcpcrypt test connection (the
 * acceptance tests tests/integ/t_crypt_*.sh).  An ordinary sockets program:
 * run it under enorun.
 *
 *   crypt_peer server PORT [OPTIONS]        accept --conns K connections, one after the other
 *   crypt_peer client HOST PORT [OPTIONS]   connect once
 *   crypt_peer gen BYTES [--seed S | --marker TEXT]   the test stream, to stdout
 *   crypt_peer sha BYTES [--seed S | --marker TEXT]   its SHA-256
 *
 * Each connection sends --send BYTES of a deterministic stream (--seed S, or
 * --marker TEXT repeated) from a writer thread, then shutdown(SHUT_WR)
 * (tcpcrypt sends FINp), while the main thread reads to EOF.  With --verify S
 * (or --verify-marker TEXT) every received byte is compared with the peer's
 * stream as it arrives: corrupted data is reported, never just hashed.
 *
 * Output, one line per fact (the shell scripts parse it):
 *   listening PORT
 *   conn N local=IP:PORT peer=IP:PORT state=S role=A|B negtep=0xNN resumed=0|1
 *        aead=0xNNNN sessid=HEX|none(errno)
 *   rekey N at=BYTES rc=0|errno-name      (TCP_CRYPT_REKEY; EAGAIN is retried
 *                                          after each further chunk)
 *   rekey-eagain N COUNT                  (how many times tund said EAGAIN)
 *   cache-flush N rc=0|errno-name         (--flush-after)
 *   paused N at=BYTES                     (--pause-at: the writer waits for FILE)
 *   rpaused N at=BYTES                    (--rpause-at: the reader waits for FILE)
 *   progress N recv=BYTES                 (--progress-at: received that much)
 *   sent N BYTES SHA256
 *   recv N BYTES SHA256
 *   end N eof | end N recv-error ERRNO NAME | mismatch N at=OFFSET
 *   send-error N ERRNO NAME at=BYTES
 *
 * Exit status: 0 all connections ended with EOF, everything sent and nothing
 * mismatched; 5 a read error; 6 a write error; 7 mismatched data; 1 other
 * errors; 2 usage.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "tcpinc.h"

/* ---- SHA-256 (FIPS 180-4), small and slow enough ---------------------------- */

struct cp_sha {
  uint32_t h[8];
  uint64_t len;
  uint8_t buf[64];
  size_t n;
};

static const uint32_t cp_k[64] = {
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

static uint32_t ror32(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }

static void cp_sha_init(struct cp_sha *s)
{
  static const uint32_t iv[8] = { 0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                  0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19 };
  memcpy(s->h, iv, sizeof(iv));
  s->len = 0;
  s->n = 0;
}

static void cp_sha_block(struct cp_sha *s, const uint8_t *p)
{
  uint32_t w[64], a, b, c, d, e, f, g, h;
  for (int i = 0; i < 16; i++)
    w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
  for (int i = 16; i < 64; i++) {
    uint32_t s0 = ror32(w[i - 15], 7) ^ ror32(w[i - 15], 18) ^ (w[i - 15] >> 3);
    uint32_t s1 = ror32(w[i - 2], 17) ^ ror32(w[i - 2], 19) ^ (w[i - 2] >> 10);
    w[i] = w[i - 16] + s0 + w[i - 7] + s1;
  }
  a = s->h[0]; b = s->h[1]; c = s->h[2]; d = s->h[3];
  e = s->h[4]; f = s->h[5]; g = s->h[6]; h = s->h[7];
  for (int i = 0; i < 64; i++) {
    uint32_t t1 = h + (ror32(e, 6) ^ ror32(e, 11) ^ ror32(e, 25)) + ((e & f) ^ (~e & g)) + cp_k[i] + w[i];
    uint32_t t2 = (ror32(a, 2) ^ ror32(a, 13) ^ ror32(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
    h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2;
  }
  s->h[0] += a; s->h[1] += b; s->h[2] += c; s->h[3] += d;
  s->h[4] += e; s->h[5] += f; s->h[6] += g; s->h[7] += h;
}

static void cp_sha_update(struct cp_sha *s, const uint8_t *p, size_t n)
{
  s->len += n;
  if (s->n) {
    size_t k = 64 - s->n < n ? 64 - s->n : n;
    memcpy(s->buf + s->n, p, k);
    s->n += k;
    p += k;
    n -= k;
    if (s->n < 64)
      return;
    cp_sha_block(s, s->buf);
    s->n = 0;
  }
  for (; n >= 64; p += 64, n -= 64)
    cp_sha_block(s, p);
  memcpy(s->buf, p, n);
  s->n = n;
}

static void cp_sha_hex(struct cp_sha *s, char out[65])
{
  uint64_t bits = s->len * 8;
  uint8_t pad = 0x80, z = 0, lb[8];
  cp_sha_update(s, &pad, 1);
  while (s->n != 56)
    cp_sha_update(s, &z, 1);
  for (int i = 0; i < 8; i++)
    lb[i] = (uint8_t)(bits >> (56 - 8 * i));
  cp_sha_update(s, lb, 8);
  for (int i = 0; i < 8; i++)
    snprintf(out + 8 * i, 9, "%08x", s->h[i]);
}

/* ---- the test stream --------------------------------------------------------- */

struct stream {
  uint64_t seed;
  const char *marker;         /* NULL: pseudo-random bytes from seed */
  size_t mlen;
};

static uint64_t splitmix(uint64_t x)
{
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

/* bytes [off, off + n) of the stream */
static void stream_fill(const struct stream *st, uint64_t off, uint8_t *p, size_t n)
{
  if (st->marker) {
    for (size_t i = 0; i < n; i++)
      p[i] = (uint8_t)st->marker[(off + i) % st->mlen];
    return;
  }
  size_t i = 0;
  while (i < n) {
    uint64_t blk = (off + i) / 8, v = splitmix(st->seed * 0x100000001b3ull ^ blk);
    for (unsigned b = (unsigned)((off + i) % 8); b < 8 && i < n; b++, i++)
      p[i] = (uint8_t)(v >> (8 * b));
  }
}

/* ---- options ------------------------------------------------------------------ */

#define MAX_REKEYS 256

static struct {
  uint64_t send;
  struct stream out;
  int verify;
  struct stream in;
  int conns;
  uint8_t teps[32];
  int nteps;
  uint8_t aconf[16], bconf[16];
  int naconf, nbconf;
  int noresume, nocache, flush_before, flush_after, aware;
  uint64_t rekey_at[MAX_REKEYS];
  int nrekey;
  uint64_t rekey_every;
  uint64_t pause_at;
  const char *pause_file;
  uint64_t progress_at;
  uint64_t rpause_at;
  const char *rpause_file;
  size_t chunk;
  int v6;
  int hold;                   /* do not shutdown(SHUT_WR) after sending */
} opt = { .conns = 1, .chunk = 65536 };

static int parse_size(const char *s, uint64_t *v)
{
  char *end;
  errno = 0;
  unsigned long long x = strtoull(s, &end, 0);
  if (errno || end == s)
    return -1;
  switch (*end) {
  case 'K': case 'k': x <<= 10; end++; break;
  case 'M': case 'm': x <<= 20; end++; break;
  case 'G': case 'g': x <<= 30; end++; break;
  default: break;
  }
  if (*end)
    return -1;
  *v = x;
  return 0;
}

/* "21,23" -> bytes; wide=1: "0001,0010" -> 2-byte big-endian ids */
static int parse_hex_list(const char *s, uint8_t *out, int cap, int wide)
{
  int n = 0;
  char *dup = strdup(s), *save = NULL;
  for (char *t = strtok_r(dup, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
    unsigned long v = strtoul(t, NULL, 16);
    if (wide) {
      if (n + 2 > cap)
        break;
      out[n++] = (uint8_t)(v >> 8);
      out[n++] = (uint8_t)v;
    } else {
      if (n + 1 > cap)
        break;
      out[n++] = (uint8_t)v;
    }
  }
  free(dup);
  return n;
}

static void usage(void)
{
  fprintf(stderr,
          "usage: crypt_peer server PORT [opts] | client HOST PORT [opts] | gen|sha BYTES [--seed S|--marker T]\n"
          "opts: --send N --seed S --marker T --verify S --verify-marker T --conns K --teps 21,23\n"
          "      --aconf 0001,0010 --bconf ... --noresume --nocache --flush-before --flush-after\n"
          "      --aware --rekey-at N[,N..] --rekey-every N --pause-at N FILE --rpause-at N FILE\n"
          "      --progress-at N"
          "      --chunk N --hold -6\n");
  exit(2);
}

static void parse_opts(int argc, char **argv, int i)
{
  for (; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define NEED() do { if (!v) usage(); i++; } while (0)
    if (!strcmp(a, "--send")) { NEED(); if (parse_size(v, &opt.send)) usage(); }
    else if (!strcmp(a, "--seed")) { NEED(); opt.out.seed = strtoull(v, NULL, 0); }
    else if (!strcmp(a, "--marker")) { NEED(); opt.out.marker = v; opt.out.mlen = strlen(v); }
    else if (!strcmp(a, "--verify")) { NEED(); opt.verify = 1; opt.in.seed = strtoull(v, NULL, 0); }
    else if (!strcmp(a, "--verify-marker")) { NEED(); opt.verify = 1; opt.in.marker = v; opt.in.mlen = strlen(v); }
    else if (!strcmp(a, "--conns")) { NEED(); opt.conns = atoi(v); }
    else if (!strcmp(a, "--teps")) { NEED(); opt.nteps = parse_hex_list(v, opt.teps, 32, 0); }
    else if (!strcmp(a, "--aconf")) { NEED(); opt.naconf = parse_hex_list(v, opt.aconf, 16, 1); }
    else if (!strcmp(a, "--bconf")) { NEED(); opt.nbconf = parse_hex_list(v, opt.bconf, 16, 1); }
    else if (!strcmp(a, "--noresume")) opt.noresume = 1;
    else if (!strcmp(a, "--nocache")) opt.nocache = 1;
    else if (!strcmp(a, "--flush-before")) opt.flush_before = 1;
    else if (!strcmp(a, "--flush-after")) opt.flush_after = 1;
    else if (!strcmp(a, "--aware")) opt.aware = 1;
    else if (!strcmp(a, "--hold")) opt.hold = 1;
    else if (!strcmp(a, "-6")) opt.v6 = 1;
    else if (!strcmp(a, "--rekey-at")) {
      NEED();
      char *dup = strdup(v), *save = NULL;
      for (char *t = strtok_r(dup, ",", &save); t && opt.nrekey < MAX_REKEYS; t = strtok_r(NULL, ",", &save))
        if (parse_size(t, &opt.rekey_at[opt.nrekey++]))
          usage();
      free(dup);
    }
    else if (!strcmp(a, "--rekey-every")) { NEED(); if (parse_size(v, &opt.rekey_every)) usage(); }
    else if (!strcmp(a, "--pause-at")) {
      if (i + 2 >= argc || parse_size(argv[i + 1], &opt.pause_at))
        usage();
      opt.pause_file = argv[i + 2];
      i += 2;
    }
    else if (!strcmp(a, "--rpause-at")) {
      if (i + 2 >= argc || parse_size(argv[i + 1], &opt.rpause_at))
        usage();
      opt.rpause_file = argv[i + 2];
      i += 2;
    }
    else if (!strcmp(a, "--progress-at")) { NEED(); if (parse_size(v, &opt.progress_at)) usage(); }
    else if (!strcmp(a, "--chunk")) {
      uint64_t c;
      NEED();
      if (parse_size(v, &c) || c == 0 || c > (16u << 20))
        usage();
      opt.chunk = (size_t)c;
    }
    else usage();
#undef NEED
  }
}

/* ---- one connection -------------------------------------------------------------- */

static const char *errname(int e)
{
  switch (e) {
  case EBADMSG: return "EBADMSG";
  case EPROTO: return "EPROTO";
  case ECONNABORTED: return "ECONNABORTED";
  case ECONNRESET: return "ECONNRESET";
  case EPIPE: return "EPIPE";
  case EPROTONOSUPPORT: return "EPROTONOSUPPORT";
  case ETIMEDOUT: return "ETIMEDOUT";
  case ENOTCONN: return "ENOTCONN";
  case EINVAL: return "EINVAL";
  case EAGAIN: return "EAGAIN";
  case EIO: return "EIO";
  case ENOPROTOOPT: return "ENOPROTOOPT";
  case EISCONN: return "EISCONN";
  default: return "E?";
  }
}

static void fmt_sa(const struct sockaddr_storage *ss, char *out, size_t n)
{
  char ip[INET6_ADDRSTRLEN] = "?";
  unsigned port = 0;
  if (ss->ss_family == AF_INET) {
    const struct sockaddr_in *s = (const struct sockaddr_in *)ss;
    inet_ntop(AF_INET, &s->sin_addr, ip, sizeof(ip));
    port = ntohs(s->sin_port);
    snprintf(out, n, "%s:%u", ip, port);
  } else if (ss->ss_family == AF_INET6) {
    const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)ss;
    inet_ntop(AF_INET6, &s->sin6_addr, ip, sizeof(ip));
    port = ntohs(s->sin6_port);
    snprintf(out, n, "[%s]:%u", ip, port);
  } else {
    snprintf(out, n, "?");
  }
}

static void report(int n, int fd)
{
  struct sockaddr_storage l, p;
  socklen_t ll = sizeof(l), pl = sizeof(p);
  char ls[80] = "?", ps[80] = "?", sid[2 * TCPINC_SESSID_MAX + 32] = "";
  memset(&l, 0, sizeof(l));
  memset(&p, 0, sizeof(p));
  if (getsockname(fd, (struct sockaddr *)&l, &ll) == 0)
    fmt_sa(&l, ls, sizeof(ls));
  if (getpeername(fd, (struct sockaddr *)&p, &pl) == 0)
    fmt_sa(&p, ps, sizeof(ps));
  int state = -1, role = -1, negtep = -1, aead = -1;
  socklen_t il = sizeof(int);
  if (getsockopt(fd, IPPROTO_TCP, TCP_ENO_STATE, &state, &il))
    state = -errno;
  il = sizeof(int);
  if (getsockopt(fd, IPPROTO_TCP, TCP_ENO_ROLE, &role, &il))
    role = -1;
  il = sizeof(int);
  if (getsockopt(fd, IPPROTO_TCP, TCP_ENO_NEGTEP, &negtep, &il))
    negtep = -1;
  il = sizeof(int);
  if (getsockopt(fd, IPPROTO_TCP, TCP_CRYPT_CONF, &aead, &il))
    aead = -1;
  uint8_t b[TCPINC_SESSID_MAX];
  socklen_t bl = sizeof(b);
  if (getsockopt(fd, IPPROTO_TCP, TCP_ENO_SESSID, b, &bl) == 0 && bl > 0) {
    for (socklen_t i = 0; i < bl; i++)
      snprintf(sid + 2 * i, 3, "%02x", b[i]);
  } else {
    snprintf(sid, sizeof(sid), "none(%s)", errname(errno));
  }
  printf("conn %d local=%s peer=%s state=%d role=%s negtep=0x%02x resumed=%d aead=0x%04x sessid=%s\n",
         n, ls, ps, state, role == 0 ? "A" : role == 1 ? "B" : "-", negtep < 0 ? 0 : negtep,
         negtep >= 0 && (negtep & 0x80) ? 1 : 0, aead < 0 ? 0 : aead, sid);
}

struct xfer {
  int fd, n;
  uint64_t sent;
  int err;
  char sha[65];
};

/* TCP_CRYPT_REKEY; 1 when it should be tried again later (EAGAIN: tund
 * lets a host have one re-key in progress at a time, RFC 8548 §3.8) */
static int do_rekey(int fd, int n, uint64_t at)
{
  int one = 1;
  int r = setsockopt(fd, IPPROTO_TCP, TCP_CRYPT_REKEY, &one, sizeof(one));
  if (r != 0 && errno == EAGAIN)
    return 1;
  printf("rekey %d at=%llu rc=%s\n", n, (unsigned long long)at, r == 0 ? "0" : errname(errno));
  return 0;
}

static void wait_file(const char *path)
{
  struct stat st;
  while (stat(path, &st) != 0) {
    struct timespec ts = { 0, 20 * 1000 * 1000 };
    nanosleep(&ts, NULL);
  }
}

static void *writer(void *arg)
{
  struct xfer *x = arg;
  struct cp_sha sh;
  cp_sha_init(&sh);
  uint8_t *buf = malloc(opt.chunk);
  int rk = 0, want_rekey = 0;
  unsigned again = 0;
  uint64_t next_every = opt.rekey_every;
  int paused = 0;
  while (buf && x->sent < opt.send) {
    size_t n = opt.send - x->sent < opt.chunk ? (size_t)(opt.send - x->sent) : opt.chunk;
    if (opt.pause_file && !paused && x->sent < opt.pause_at && x->sent + n > opt.pause_at)
      n = (size_t)(opt.pause_at - x->sent);
    if (opt.pause_file && !paused && x->sent == opt.pause_at) {
      printf("paused %d at=%llu\n", x->n, (unsigned long long)x->sent);
      wait_file(opt.pause_file);
      paused = 1;
      continue;
    }
    stream_fill(&opt.out, x->sent, buf, n);
    size_t done = 0;
    while (done < n) {
      ssize_t w = write(x->fd, buf + done, n - done);
      if (w < 0 && errno == EINTR)
        continue;
      if (w <= 0) {
        x->err = w < 0 ? errno : EIO;
        printf("send-error %d %d %s at=%llu\n", x->n, x->err, errname(x->err),
               (unsigned long long)(x->sent + done));
        cp_sha_update(&sh, buf, done);
        x->sent += done;
        goto out;
      }
      done += (size_t)w;
    }
    cp_sha_update(&sh, buf, n);
    x->sent += n;
    /* a re-key due (--rekey-at / --rekey-every); while tund answers EAGAIN
     * it is retried after each further chunk (several due ones merge) */
    while (rk < opt.nrekey && x->sent >= opt.rekey_at[rk]) {
      want_rekey = 1;
      rk++;
    }
    while (opt.rekey_every && x->sent >= next_every && x->sent < opt.send) {
      want_rekey = 1;
      next_every += opt.rekey_every;
    }
    if (want_rekey && x->sent < opt.send) {
      want_rekey = do_rekey(x->fd, x->n, x->sent);
      again += (unsigned)want_rekey;
    }
  }
  if (again)
    printf("rekey-eagain %d %u\n", x->n, again);
  if (!opt.hold && shutdown(x->fd, SHUT_WR) != 0) {
    x->err = errno;
    printf("send-error %d %d %s at=%llu (shutdown)\n", x->n, x->err, errname(x->err),
           (unsigned long long)x->sent);
  }
out:
  cp_sha_hex(&sh, x->sha);
  free(buf);
  return NULL;
}

/* 0 ok; 5 read error; 6 write error; 7 mismatch */
static int run_conn(int fd, int n)
{
  int rc = 0;
  report(n, fd);
  if (opt.flush_after) {
    int one = 1;
    int r = setsockopt(fd, IPPROTO_TCP, TCP_CRYPT_CACHE_FLUSH, &one, sizeof(one));
    printf("cache-flush %d rc=%s\n", n, r == 0 ? "0" : errname(errno));
    if (r)
      rc = 1;
  }
  struct xfer x = { .fd = fd, .n = n };
  pthread_t th;
  if (pthread_create(&th, NULL, writer, &x)) {
    perror("pthread_create");
    return 1;
  }
  struct cp_sha sh;
  cp_sha_init(&sh);
  static uint8_t buf[1 << 16], ref[1 << 16];
  uint64_t got = 0;
  int progressed = 0, rpaused = 0;
  for (;;) {
    size_t want = sizeof(buf);
    if (opt.rpause_file && !rpaused) {
      if (got == opt.rpause_at) {
        printf("rpaused %d at=%llu\n", n, (unsigned long long)got);
        wait_file(opt.rpause_file);
        rpaused = 1;
      } else if (opt.rpause_at - got < want) {
        want = (size_t)(opt.rpause_at - got);
      }
    }
    ssize_t r = read(fd, buf, want);
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0) {
      int e = errno;
      printf("end %d recv-error %d %s\n", n, e, errname(e));
      rc = 5;
      break;
    }
    if (r == 0) {
      printf("end %d eof\n", n);
      break;
    }
    if (opt.verify) {
      stream_fill(&opt.in, got, ref, (size_t)r);
      if (memcmp(ref, buf, (size_t)r)) {
        size_t k = 0;
        while (buf[k] == ref[k])
          k++;
        printf("mismatch %d at=%llu\n", n, (unsigned long long)(got + k));
        rc = 7;
        cp_sha_update(&sh, buf, (size_t)r);
        got += (uint64_t)r;
        break;
      }
    }
    cp_sha_update(&sh, buf, (size_t)r);
    got += (uint64_t)r;
    if (opt.progress_at && !progressed && got >= opt.progress_at) {
      printf("progress %d recv=%llu\n", n, (unsigned long long)got);
      progressed = 1;
    }
  }
  if (rc)
    shutdown(fd, SHUT_RDWR);    /* unblock a writer stuck on a dead connection */
  pthread_join(th, NULL);
  char hex[65];
  cp_sha_hex(&sh, hex);
  printf("sent %d %llu %s\n", n, (unsigned long long)x.sent, x.sha);
  printf("recv %d %llu %s\n", n, (unsigned long long)got, hex);
  if (!rc && (x.err || x.sent != opt.send))
    rc = 6;
  return rc;
}

static int set_opts(int fd)
{
  int one = 1;
  if (opt.nteps && setsockopt(fd, IPPROTO_TCP, TCP_ENO_TEPS, opt.teps, (socklen_t)opt.nteps)) {
    perror("TCP_ENO_TEPS");
    return -1;
  }
  if (opt.naconf && setsockopt(fd, IPPROTO_TCP, TCP_CRYPT_ACONF, opt.aconf, (socklen_t)opt.naconf)) {
    perror("TCP_CRYPT_ACONF");
    return -1;
  }
  if (opt.nbconf && setsockopt(fd, IPPROTO_TCP, TCP_CRYPT_BCONF, opt.bconf, (socklen_t)opt.nbconf)) {
    perror("TCP_CRYPT_BCONF");
    return -1;
  }
  if (opt.noresume && setsockopt(fd, IPPROTO_TCP, TCP_CRYPT_NORESUME, &one, sizeof(one))) {
    perror("TCP_CRYPT_NORESUME");
    return -1;
  }
  if (opt.nocache && setsockopt(fd, IPPROTO_TCP, TCP_CRYPT_NOCACHE, &one, sizeof(one))) {
    perror("TCP_CRYPT_NOCACHE");
    return -1;
  }
  if (opt.flush_before && setsockopt(fd, IPPROTO_TCP, TCP_CRYPT_CACHE_FLUSH, &one, sizeof(one))) {
    perror("TCP_CRYPT_CACHE_FLUSH");
    return -1;
  }
  if (opt.aware) {
    int g = 2;
    if (setsockopt(fd, IPPROTO_TCP, TCP_ENO_SELF_GOPT, &g, sizeof(g))) {
      perror("TCP_ENO_SELF_GOPT");
      return -1;
    }
  }
  return 0;
}

static int cmd_gen(int sha_only)
{
  static uint8_t buf[1 << 16];
  struct cp_sha sh;
  cp_sha_init(&sh);
  uint64_t off = 0;
  while (off < opt.send) {
    size_t n = opt.send - off < sizeof(buf) ? (size_t)(opt.send - off) : sizeof(buf);
    stream_fill(&opt.out, off, buf, n);
    if (sha_only) {
      cp_sha_update(&sh, buf, n);
    } else if (fwrite(buf, 1, n, stdout) != n) {
      return 1;
    }
    off += n;
  }
  if (sha_only) {
    char hex[65];
    cp_sha_hex(&sh, hex);
    printf("%s\n", hex);
  }
  return 0;
}

int main(int argc, char **argv)
{
  setvbuf(stdout, NULL, _IOLBF, 0);
  signal(SIGPIPE, SIG_IGN);
  if (argc < 3)
    usage();
  if (!strcmp(argv[1], "gen") || !strcmp(argv[1], "sha")) {
    if (parse_size(argv[2], &opt.send))
      usage();
    parse_opts(argc, argv, 3);
    return cmd_gen(argv[1][0] == 's');
  }
  if (!strcmp(argv[1], "server")) {
    int port = atoi(argv[2]);
    parse_opts(argc, argv, 3);
    int fam = opt.v6 ? AF_INET6 : AF_INET, one = 1;
    int s = socket(fam, SOCK_STREAM, 0);
    if (s < 0) {
      perror("socket");
      return 1;
    }
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_storage ss;
    socklen_t sl;
    memset(&ss, 0, sizeof(ss));
    if (opt.v6) {
      struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
      a->sin6_family = AF_INET6;
      a->sin6_port = htons((uint16_t)port);
      sl = sizeof(*a);
    } else {
      struct sockaddr_in *a = (struct sockaddr_in *)&ss;
      a->sin_family = AF_INET;
      a->sin_port = htons((uint16_t)port);
      sl = sizeof(*a);
    }
    if (set_opts(s) || bind(s, (struct sockaddr *)&ss, sl) || listen(s, 16)) {
      perror("server");
      return 1;
    }
    printf("listening %d\n", port);
    int worst = 0;
    for (int i = 1; i <= opt.conns; i++) {
      int c = accept(s, NULL, NULL);
      if (c < 0) {
        perror("accept");
        return 1;
      }
      int r = run_conn(c, i);
      close(c);
      if (r > worst)
        worst = r;
    }
    close(s);
    return worst;
  }
  if (!strcmp(argv[1], "client") && argc >= 4) {
    parse_opts(argc, argv, 4);
    struct addrinfo hints, *res;
    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICHOST;
    if (getaddrinfo(argv[2], argv[3], &hints, &res)) {
      fprintf(stderr, "bad address %s\n", argv[2]);
      return 2;
    }
    int s = socket(res->ai_family, SOCK_STREAM, 0);
    if (s < 0 || set_opts(s)) {
      perror("client");
      return 1;
    }
    if (connect(s, res->ai_addr, res->ai_addrlen)) {
      printf("connect-error %d %s\n", errno, errname(errno));
      return 1;
    }
    freeaddrinfo(res);
    int r = run_conn(s, 1);
    close(s);
    return r;
  }
  usage();
  return 2;
}
