/*
 * sem_iov — scatter/gather and file I/O on shim sockets:
 *   writev/readv and sendmsg/recvmsg with several iovecs (odd sizes, empty
 *   ones, a large one that wraps the ring), msg_flags/msg_namelen results;
 *   sendfile() from a file with an offset pointer (offset advanced, file
 *   position untouched) and with NULL (file position advanced), a count
 *   beyond EOF; recvfrom/sendto on a connected socket;
 *   splice() socket -> pipe and pipe -> socket (3 MiB each way through a
 *   pipe; EAGAIN on an empty O_NONBLOCK socket and on a full pipe, nothing
 *   lost or duplicated), splice socket -> file and
 *   offsets refused as the kernel does (EINVAL; ESPIPE on the pipe); sendmmsg/recvmmsg with three messages (MSG_WAITFORONE).
 * Without the shim's splice the bytes would pass the socketpair: tund's
 * token bytes read as data, or a write around the shim (EIO).
 */
#include <fcntl.h>
#include <sys/sendfile.h>
#include <sys/uio.h>
#include <pthread.h>

#include "tprog.h"

static void gather(void)
{
  int s, k;
  STEP("writev with 5 iovecs (one empty) -> peer");
  mkpair(&s, &k);
  static uint8_t a[1], b[1000], c[70000], e[3], all[71004], got[71004];
  fill_pat(all, sizeof(all), 0, 81);
  memcpy(a, all, 1);
  memcpy(b, all + 1, 1000);
  memcpy(c, all + 1001, 70000);
  memcpy(e, all + 71001, 3);
  struct iovec v[5] = { { a, 1 }, { b, 1000 }, { NULL, 0 }, { c, 70000 }, { e, 3 } };
  size_t done = 0;
  int64_t end = now_ms() + 10000;
  /* a blocking writev writes everything (the ring is larger than 71004) */
  ssize_t w = writev(s, v, 5);
  CHECK(w == (ssize_t)sizeof(all), "writev returned %zd", w);
  read_exact(k, got, sizeof(got), 10000, "peer reads the writev");
  CHECK(!memcmp(got, all, sizeof(all)), "writev content");

  STEP("peer -> readv into 4 iovecs");
  write_all(k, all, sizeof(all), 10000, "peer write");
  uint8_t r1[7], r2[1], r3[50000], r4[30000];
  struct iovec rv[4] = { { r1, 7 }, { r2, 1 }, { r3, 50000 }, { r4, 30000 } };
  done = 0;
  uint8_t *flat = got;
  while (done < sizeof(all)) {
    CHECK(now_ms() < end, "readv: %zu of %zu", done, sizeof(all));
    wait_fd(s, POLLIN, 200);
    ssize_t r = readv(s, rv, 4);
    CHECK(r > 0, "readv");
    /* gather what landed in the iovecs, in order */
    size_t left = (size_t)r;
    for (int i = 0; i < 4 && left; i++) {
      size_t n = rv[i].iov_len < left ? rv[i].iov_len : left;
      memcpy(flat + done, rv[i].iov_base, n);
      done += n;
      left -= n;
    }
  }
  CHECK(!memcmp(got, all, sizeof(all)), "readv content");
  close(s);
  close(k);
}

static void msgs(void)
{
  int s, k;
  STEP("sendmsg / recvmsg with iovecs");
  mkpair_srv(AF_INET, &s, &k);
  char h1[] = "HEAD", h2[] = "-", body[3000];
  memset(body, 'B', sizeof(body));
  struct iovec v[3] = { { h1, 4 }, { h2, 1 }, { body, sizeof(body) } };
  struct msghdr m;
  memset(&m, 0, sizeof(m));
  m.msg_iov = v;
  m.msg_iovlen = 3;
  CHECK(sendmsg(s, &m, 0) == 3005, "sendmsg");
  char got[3005];
  read_exact(k, got, sizeof(got), 5000, "peer reads sendmsg");
  CHECK(!memcmp(got, "HEAD-", 5) && got[5] == 'B' && got[3004] == 'B', "sendmsg content");

  CHECK(write(k, "0123456789", 10) == 10, "peer write");
  char x[4], y[6];
  struct iovec rv[2] = { { x, 4 }, { y, 6 } };
  struct sockaddr_storage from;
  char ctl[64];
  memset(&m, 0, sizeof(m));
  m.msg_iov = rv;
  m.msg_iovlen = 2;
  m.msg_name = &from;
  m.msg_namelen = sizeof(from);
  m.msg_control = ctl;
  m.msg_controllen = sizeof(ctl);
  CHECK(wait_fd(s, POLLIN, 5000) & POLLIN, "not readable");
  msleep(50);
  ssize_t r = recvmsg(s, &m, MSG_WAITALL);
  CHECK(r == 10, "recvmsg(MSG_WAITALL) returned %zd", r);
  CHECK(!memcmp(x, "0123", 4) && !memcmp(y, "456789", 6), "recvmsg scatter");
  CHECK(m.msg_flags == 0, "recvmsg msg_flags 0x%x", m.msg_flags);
  CHECK(m.msg_controllen == 0, "recvmsg msg_controllen %zu", (size_t)m.msg_controllen);

  STEP("sendto/recvfrom on a connected socket");
  CHECK(sendto(s, "st", 2, 0, NULL, 0) == 2, "sendto(NULL)");
  read_exact(k, got, 2, 5000, "sendto data");
  CHECK(write(k, "rf", 2) == 2, "peer write");
  CHECK(wait_fd(s, POLLIN, 5000) & POLLIN, "not readable");
  socklen_t fl = sizeof(from);
  r = recvfrom(s, got, sizeof(got), 0, (struct sockaddr *)&from, &fl);
  CHECK(r == 2 && !memcmp(got, "rf", 2), "recvfrom returned %zd", r);
  close(s);
  close(k);
}

static void files(void)
{
  int s, k;
  STEP("sendfile with an offset pointer and with NULL");
  char path[] = "/tmp/sem_iov.XXXXXX";
  int f = mkstemp(path);
  CHECK(f >= 0, "mkstemp");
  unlink(path);
  size_t fsz = 3 * 1024 * 1024 + 123;
  uint8_t *data = malloc(fsz), *got = malloc(fsz);
  CHECK(data && got, "malloc");
  fill_pat(data, fsz, 0, 91);
  CHECK(write(f, data, fsz) == (ssize_t)fsz, "write file");
  CHECK(lseek(f, 0, SEEK_SET) == 0, "lseek");
  mkpair(&s, &k);

  /* offset pointer: 1 MiB starting at 1000; file position stays 0 */
  off_t off = 1000;
  size_t want = 1 << 20, sent = 0;
  int64_t end = now_ms() + 20000;
  size_t rcvd = 0;
  set_nonblock(k, 1);
  set_nonblock(s, 1);   /* a blocking sendfile would wait for the whole count while nobody reads */
  while (sent < want || rcvd < want) {
    CHECK(now_ms() < end, "sendfile: %zu sent, %zu received of %zu", sent, rcvd, want);
    if (sent < want) {
      ssize_t n = sendfile(s, f, &off, want - sent);
      CHECK(n > 0 || errno == EAGAIN, "sendfile(offset)");
      if (n < 0)
        n = 0;
      sent += (size_t)n;
      CHECK(off == (off_t)(1000 + sent), "sendfile: offset %lld after %zu bytes", (long long)off, sent);
    }
    wait_fd(k, POLLIN, 100);
    ssize_t r;
    while ((r = read(k, got + rcvd, want - rcvd)) > 0)
      rcvd += (size_t)r;
  }
  CHECK(!memcmp(got, data + 1000, want), "sendfile(offset) content");
  CHECK(lseek(f, 0, SEEK_CUR) == 0, "sendfile with an offset pointer moved the file position");

  /* NULL offset: from the file position (set to 2000), which advances */
  CHECK(lseek(f, 2000, SEEK_SET) == 2000, "lseek");
  want = fsz - 2000;     /* to EOF */
  sent = rcvd = 0;
  while (rcvd < want) {
    CHECK(now_ms() < end + 20000, "sendfile(NULL): %zu sent, %zu received of %zu", sent, rcvd, want);
    if (sent < want) {
      ssize_t n = sendfile(s, f, NULL, want - sent + 100000);   /* asks for more than the file has */
      CHECK(n >= 0 || errno == EAGAIN, "sendfile(NULL)");
      if (n < 0)
        n = 0;
      sent += (size_t)n;
      CHECK(lseek(f, 0, SEEK_CUR) == (off_t)(2000 + sent), "file position %lld after %zu bytes",
            (long long)lseek(f, 0, SEEK_CUR), sent);
      CHECK(sent <= want, "sendfile sent past EOF");
    }
    wait_fd(k, POLLIN, 100);
    ssize_t r;
    while ((r = read(k, got + rcvd, fsz - rcvd)) > 0)
      rcvd += (size_t)r;
  }
  CHECK(rcvd == want && !memcmp(got, data + 2000, want), "sendfile(NULL) content");
  CHECK(sendfile(s, f, NULL, 1000) == 0, "sendfile at EOF must return 0");
  close(f);
  close(s);
  set_nonblock(k, 0);
  expect_eof(k, 5000, "peer after close");
  close(k);
  free(data);
  free(got);
}

struct bigw { int fd; size_t n; ssize_t r; int err; };
static void *big_writer(void *arg)
{
  struct bigw *b = arg;
  uint8_t *buf = malloc(b->n);
  CHECK(buf, "malloc");
  fill_pat(buf, b->n, 0, 95);
  b->r = write(b->fd, buf, b->n);
  b->err = errno;
  free(buf);
  return NULL;
}

/* One blocking write() far larger than the ring returns the full count; the
 * peer's MSG_WAITALL read of the same size gets every byte. */
static void huge(void)
{
  int s, k;
  size_t n = 24u << 20;
  STEP("one blocking write() of 24 MiB, read with MSG_WAITALL");
  mkpair(&s, &k);
  struct bigw b = { s, n, 0, 0 };
  pthread_t t;
  CHECK(pthread_create(&t, NULL, big_writer, &b) == 0, "pthread_create");
  uint8_t *got = malloc(n);
  CHECK(got, "malloc");
  ssize_t r = recv(k, got, n, MSG_WAITALL);
  pthread_join(t, NULL);
  errno = b.err;
  CHECK(b.r == (ssize_t)n, "blocking write of %zu bytes returned %zd", n, b.r);
  CHECK(r == (ssize_t)n, "peer MSG_WAITALL got %zd of %zu", r, n);
  CHECK(check_pat(got, n, 0, 95), "24 MiB content");
  free(got);

  STEP("peer writes 24 MiB, one blocking read(MSG_WAITALL) of 24 MiB on ours");
  b.fd = k;
  CHECK(pthread_create(&t, NULL, big_writer, &b) == 0, "pthread_create");
  got = malloc(n);
  CHECK(got, "malloc");
  r = recv(s, got, n, MSG_WAITALL);
  pthread_join(t, NULL);
  CHECK(r == (ssize_t)n, "our MSG_WAITALL got %zd of %zu", r, n);
  CHECK(check_pat(got, n, 0, 95), "24 MiB content (ours)");
  free(got);
  close(s);
  close(k);
}

/* socket -> pipe -> (drained by us) and pipe -> socket, n bytes each way */
static void splices(void)
{
  int s, k, p[2];
  enum { N = 3 << 20 };
  static uint8_t all[N], got[N];
  STEP("splice: peer -> socket -> pipe, 3 MiB (pipe drained alongside)");
  mkpair(&s, &k);
  CHECK(pipe(p) == 0, "pipe");
  fill_pat(all, N, 0, 91);
  /* the peer writes from a thread-free loop interleaved with our splices */
  size_t sent = 0, spliced = 0, drained = 0;
  int64_t end = now_ms() + 30000;
  int fl = fcntl(k, F_GETFL);
  fcntl(k, F_SETFL, fl | O_NONBLOCK);
  fcntl(p[0], F_SETFL, O_NONBLOCK);
  while (drained < N) {
    CHECK(now_ms() < end, "splice out: sent %zu spliced %zu drained %zu", sent, spliced, drained);
    if (sent < N) {
      ssize_t w = write(k, all + sent, N - sent < 65536 ? N - sent : 65536);
      if (w > 0)
        sent += (size_t)w;
    }
    if (spliced < sent) {
      ssize_t r = splice(s, NULL, p[1], NULL, 100000, SPLICE_F_NONBLOCK);
      CHECK(r > 0 || (r < 0 && errno == EAGAIN), "splice socket->pipe: %zd (%s)", r, strerror(errno));
      if (r > 0)
        spliced += (size_t)r;
    }
    ssize_t d = read(p[0], got + drained, N - drained);
    if (d > 0)
      drained += (size_t)d;
  }
  CHECK(spliced == N && !memcmp(got, all, N), "socket->pipe content (%zu spliced)", spliced);
  fcntl(k, F_SETFL, fl);

  STEP("splice: an empty O_NONBLOCK socket: EAGAIN; a full pipe (SPLICE_F_NONBLOCK, O_NONBLOCK): EAGAIN, no byte lost");
  int sfl = fcntl(s, F_GETFL);
  fcntl(s, F_SETFL, sfl | O_NONBLOCK);   /* (SPLICE_F_NONBLOCK alone blocks on an empty socket) */
  errno = 0;
  CHECK(splice(s, NULL, p[1], NULL, 4096, 0) == -1 && errno == EAGAIN, "empty O_NONBLOCK socket: %s",
        strerror(errno));
  fcntl(s, F_SETFL, sfl);
  /* fill the pipe, then let 100 bytes arrive on the socket */
  fcntl(p[1], F_SETFL, O_NONBLOCK);
  static uint8_t junk[65536];
  size_t in_pipe = 0;
  for (;;) {
    ssize_t w = write(p[1], junk, sizeof(junk));
    if (w <= 0)
      break;
    in_pipe += (size_t)w;
  }
  write_all(k, all, 100, 5000, "peer writes 100");
  wait_fd(s, POLLIN, 5000);
  errno = 0;
  CHECK(splice(s, NULL, p[1], NULL, 4096, SPLICE_F_NONBLOCK) == -1 && errno == EAGAIN, "full pipe: %s",
        strerror(errno));
  errno = 0;
  CHECK(splice(s, NULL, p[1], NULL, 4096, 0) == -1 && errno == EAGAIN, "full O_NONBLOCK pipe: %s",
        strerror(errno));
  /* drain the pipe's junk, then the 100 bytes come whole */
  size_t dj = 0;
  while (dj < in_pipe) {
    ssize_t d = read(p[0], junk, sizeof(junk) < in_pipe - dj ? sizeof(junk) : in_pipe - dj);
    CHECK(d > 0, "draining the pipe");
    dj += (size_t)d;
  }
  CHECK(splice(s, NULL, p[1], NULL, 4096, 0) == 100, "the 100 bytes after the pipe has room");
  CHECK(read(p[0], got, 4096) == 100 && !memcmp(got, all, 100), "the 100 bytes, in order");
  fcntl(p[1], F_SETFL, 0);

  STEP("splice: pipe -> socket -> peer, 3 MiB");
  size_t put = 0, moved = 0, rcvd = 0;
  end = now_ms() + 30000;
  fcntl(p[1], F_SETFL, O_NONBLOCK);
  fcntl(k, F_SETFL, fl | O_NONBLOCK);
  while (rcvd < N) {
    CHECK(now_ms() < end, "splice in: put %zu moved %zu rcvd %zu", put, moved, rcvd);
    if (put < N) {
      ssize_t w = write(p[1], all + put, N - put < 65536 ? N - put : 65536);
      if (w > 0)
        put += (size_t)w;
    }
    if (moved < put) {
      ssize_t r = splice(p[0], NULL, s, NULL, 200000, SPLICE_F_NONBLOCK);
      CHECK(r > 0 || (r < 0 && errno == EAGAIN), "splice pipe->socket: %zd (%s)", r, strerror(errno));
      if (r > 0)
        moved += (size_t)r;
    }
    ssize_t d = read(k, got + rcvd, N - rcvd);
    if (d > 0)
      rcvd += (size_t)d;
  }
  CHECK(moved == N && !memcmp(got, all, N), "pipe->socket content (%zu moved)", moved);
  fcntl(k, F_SETFL, fl);

  STEP("splice: socket -> regular file EINVAL; an offset on the socket EINVAL, on the pipe ESPIPE");
  char path[] = "/tmp/sem_iov_spliceXXXXXX";
  int f = mkstemp(path);
  CHECK(f >= 0, "mkstemp");
  unlink(path);
  write_all(k, all, 10, 5000, "peer writes 10");
  wait_fd(s, POLLIN, 5000);
  errno = 0;
  CHECK(splice(s, NULL, f, NULL, 10, 0) == -1 && errno == EINVAL, "socket->file: %s", strerror(errno));
  loff_t off = 0;
  errno = 0;
  CHECK(splice(s, &off, p[1], NULL, 10, 0) == -1 && errno == EINVAL, "offset on the socket: %s", strerror(errno));
  errno = 0;
  CHECK(splice(s, NULL, p[1], &off, 10, 0) == -1 && errno == ESPIPE, "offset on the pipe: %s", strerror(errno));
  CHECK(splice(s, NULL, p[1], NULL, 10, 0) == 10 && read(p[0], got, 10) == 10 && !memcmp(got, all, 10),
        "the 10 bytes are still there, whole");
  close(f);
  close(p[0]);
  close(p[1]);
  close(s);
  close(k);
}

static void mmsgs(void)
{
  int s, k;
  STEP("sendmmsg / recvmmsg, three messages");
  mkpair(&s, &k);
  char a[] = "alpha", b[] = "bravo!", c[] = "charlie";
  struct iovec v[3] = { { a, 5 }, { b, 6 }, { c, 7 } };
  struct mmsghdr mm[3];
  memset(mm, 0, sizeof(mm));
  for (int i = 0; i < 3; i++) {
    mm[i].msg_hdr.msg_iov = &v[i];
    mm[i].msg_hdr.msg_iovlen = 1;
  }
  CHECK(sendmmsg(s, mm, 3, 0) == 3, "sendmmsg");
  CHECK(mm[0].msg_len == 5 && mm[1].msg_len == 6 && mm[2].msg_len == 7, "sendmmsg msg_len");
  char got[18];
  read_exact(k, got, 18, 5000, "peer reads sendmmsg");
  CHECK(!memcmp(got, "alphabravo!charlie", 18), "sendmmsg content in order");
  write_all(k, "0123456789", 10, 5000, "peer writes 10");
  wait_fd(s, POLLIN, 5000);
  usleep(100000);
  char r1[4], r2[4], r3[4];
  struct iovec rv[3] = { { r1, 4 }, { r2, 4 }, { r3, 4 } };
  memset(mm, 0, sizeof(mm));
  for (int i = 0; i < 3; i++) {
    mm[i].msg_hdr.msg_iov = &rv[i];
    mm[i].msg_hdr.msg_iovlen = 1;
  }
  int n = recvmmsg(s, mm, 3, MSG_WAITFORONE, NULL);
  CHECK(n == 3, "recvmmsg: %d (%s)", n, strerror(errno));
  CHECK(mm[0].msg_len == 4 && mm[1].msg_len == 4 && mm[2].msg_len == 2, "recvmmsg msg_len %u %u %u",
        mm[0].msg_len, mm[1].msg_len, mm[2].msg_len);
  CHECK(!memcmp(r1, "0123", 4) && !memcmp(r2, "4567", 4) && !memcmp(r3, "89", 2), "recvmmsg content");
  close(s);
  close(k);
}

int main(void)
{
  tp_init("sem_iov", 120);
  gather();
  msgs();
  files();
  huge();
  splices();
  mmsgs();
  printf("ok\n");
  return 0;
}
