/*
 * scribble — a hostile program under enorun: it finds the shared memory of
 * its own sockets (the shim keeps each mapped; /proc/self/maps names them
 * "memfd:enoshim-socket"; the status block's ports tell which is which) and
 * writes garbage where tund reads (see
 * include/enoshim/shm.h): rx_cons, tx_prod, the whole header page, the
 * hand-shake words.  tund must reset just that connection (the kernel peer
 * gets RST or at least the end of the stream), never crash, and another
 * connection of the same program keeps working.  The shell checks tund.
 */
#include "enoshim/shm.h"
#include "tprog.h"

#define MAXM 64

static int list_mappings(uintptr_t *out)
{
  FILE *f = fopen("/proc/self/maps", "r");
  CHECK(f, "open /proc/self/maps");
  char line[512];
  int n = 0;
  while (fgets(line, sizeof(line), f)) {
    if (!strstr(line, "enoshim-socket"))
      continue;
    unsigned long a = 0, b = 0;
    CHECK(sscanf(line, "%lx-%lx", &a, &b) == 2, "maps line: %s", line);
    CHECK(n < MAXM, "too many mappings");
    out[n++] = a;
  }
  fclose(f);
  return n;
}

static int port_of(int fd, int peer)
{
  struct sockaddr_storage ss;
  socklen_t l = sizeof(ss);
  if ((peer ? getpeername(fd, (struct sockaddr *)&ss, &l) : getsockname(fd, (struct sockaddr *)&ss, &l)))
    return 0;
  return ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                  : ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

/* The mapping of socket fd: the shim may map a socket's memory anywhere,
 * reusing the mapping of one that ended (shim/sockmem.c "kept mappings"), so it
 * is found by the ports tund published in its status block. */
static struct enoshm *mapping_of(int fd, const char *what)
{
  uintptr_t now[MAXM], found = 0;
  int n = list_mappings(now), hits = 0;
  int lport = port_of(fd, 0), rport = port_of(fd, 1);
  CHECK(lport, "%s: getsockname", what);
  for (int j = 0; j < n; j++) {
    struct enoshm *m = (struct enoshm *)now[j];
    struct enoshm_status st;
    if (m->magic != ENOSHM_MAGIC)
      continue;
    enoshm_status_read(m, &st);
    if (st.local.port == lport && st.remote.port == rport && st.state != ENOSHM_S_CLOSED) {
      found = now[j];
      hits++;
    }
  }
  CHECK(hits == 1, "%s: %d enoshim-socket mappings with ports %d/%d in /proc/self/maps, expected 1",
        what, hits, lport, rport);
  return (struct enoshm *)found;
}

static uint64_t rnd64(void)
{
  static uint64_t x = 0x9e3779b97f4a7c15ull;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  return x;
}

/* Poke tund: a byte straight into our end of the pair (any byte wakes it). */
static void kick(int s)
{
  if (kernel_mode())
    return;
  ssize_t w = syscall(SYS_write, s, "k", 1);
  (void)w;
}

/* The kernel peer must see the connection end (RST, or EOF) within 10 s,
 * while it keeps offering data.  Returns 1 for a reset. */
static int peer_sees_end(int k, const char *what)
{
  char buf[4096];
  memset(buf, 'd', sizeof(buf));
  set_nonblock(k, 1);
  int64_t end = now_ms() + 10000;
  for (;;) {
    CHECK(now_ms() < end, "%s: tund did not end the connection within 10 s", what);
    ssize_t w = write(k, buf, sizeof(buf));
    if (w < 0 && (errno == ECONNRESET || errno == EPIPE))
      return 1;
    ssize_t r = read(k, buf, sizeof(buf));
    if (r < 0 && errno == ECONNRESET)
      return 1;
    if (r == 0)
      return 0;
    wait_fd(k, POLLIN, 100);
  }
}

/* Our own end must report trouble, not hang: read gives an error or EOF. */
static void we_see_end(int s, const char *what)
{
  int re = wait_fd(s, POLLIN, 10000);
  CHECK(re, "%s: our socket never became readable after the reset", what);
  char b[256];
  set_nonblock(s, 1);
  int64_t end = now_ms() + 10000;
  for (;;) {
    ssize_t r = read(s, b, sizeof(b));
    if (r <= 0 && !(r < 0 && errno == EAGAIN))
      return;    /* error (EIO, ECONNRESET) or EOF */
    CHECK(now_ms() < end, "%s: our socket still delivers data after the reset", what);
    msleep(20);
  }
}

int main(void)
{
  int s1, k1, s2, k2, s, k;
  tp_init("scribble", 120);
  if (kernel_mode()) {
    printf("ok\n");     /* nothing to scribble on */
    return 0;
  }

  mkpair(&s1, &k1);
  struct enoshm *m1 = mapping_of(s1, "first connection");
  mkpair(&s2, &k2);
  (void)mapping_of(s2, "second connection");
  xfer_check(s1, k1, 10000, 1, "first connection before");
  xfer_check(s2, k2, 10000, 2, "survivor before");

  STEP("garbage rx_cons, then the peer sends");
  atomic_store(&m1->rx_cons, 0xdeadbeefcafef00dull);
  kick(s1);
  int reset = peer_sees_end(k1, "garbage rx_cons");
  STEP("  peer saw %s", reset ? "a reset" : "EOF");
  we_see_end(s1, "garbage rx_cons");
  close(s1);
  close(k1);
  xfer_check(s2, k2, 200000, 3, "survivor after rx_cons");

  STEP("garbage tx_prod, then a wake-up");
  mkpair(&s, &k);
  struct enoshm *m = mapping_of(s, "third connection");
  xfer_check(s, k, 10000, 4, "third before");
  atomic_store(&m->tx_prod, atomic_load(&m->tx_cons) + ((uint64_t)m->tx_size << 3) + 12345);
  kick(s);
  reset = peer_sees_end(k, "garbage tx_prod");
  STEP("  peer saw %s", reset ? "a reset" : "EOF");
  close(s);
  close(k);
  xfer_check(k2, s2, 200000, 5, "survivor after tx_prod");

  STEP("tx_prod behind tx_cons (rewound)");
  mkpair(&s, &k);
  m = mapping_of(s, "fourth connection");
  xfer_check(s, k, 100000, 6, "fourth before");
  atomic_store(&m->tx_prod, 7);
  kick(s);
  peer_sees_end(k, "rewound tx_prod");
  close(s);
  close(k);

  STEP("random bytes over the whole header page (immutable fields included)");
  mkpair(&s, &k);
  m = mapping_of(s, "fifth connection");
  xfer_check(s, k, 10000, 7, "fifth before");
  uint8_t *page = (uint8_t *)m;
  size_t upto = offsetof(struct enoshm, rx_lock);   /* leave the program-only locks alone */
  for (size_t i = 0; i < upto; i += 8) {
    uint64_t r = rnd64();
    memcpy(page + i, &r, upto - i < 8 ? upto - i : 8);
  }
  kick(s);
  peer_sees_end(k, "random header page");
  close(s);
  close(k);

  STEP("garbage hand-shake words (rx_tok, wants, acc_cons), then close");
  mkpair(&s, &k);
  m = mapping_of(s, "sixth connection");
  atomic_store(&m->rx_tok, 0x12345678u);
  atomic_store(&m->wants, 0xffffffffu);
  atomic_store(&m->acc_cons, 0x87654321u);
  CHECK(write(k, "data", 4) == 4, "peer write");
  kick(s);
  msleep(100);
  close(s);
  peer_sees_end(k, "garbage hand-shake words then close");
  close(k);

  STEP("garbage in a listener's accept counter");
  int port = 0;
  int l = s_listen(AF_INET, NULL, &port);
  m = mapping_of(l, "listener");
  atomic_store(&m->acc_cons, 0xfffffff0u);
  atomic_store(&m->wants, 0xffffffffu);
  kick(l);
  int kc = k_connect(AF_INET, LWIP4, port);
  msleep(200);
  close(kc);
  close(l);

  STEP("the survivor is unharmed");
  xfer_check(s2, k2, 1 << 20, 8, "survivor at the end (to peer)");
  xfer_check(k2, s2, 1 << 20, 9, "survivor at the end (from peer)");
  close(s2);
  expect_eof(k2, 5000, "survivor's orderly close");
  close(k2);
  printf("ok\n");
  return 0;
}
