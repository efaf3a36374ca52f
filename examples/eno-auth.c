/*
 * eno-auth — authenticate a TCP-ENO session ID with a pre-shared cookie, as
 * draft-ietf-tcpinc-api-06 §5.1 describes, so that TCP-level encryption also
 * resists active (man-in-the-middle) attackers.
 *
 *   eno-auth server PORT COOKIEFILE
 *   eno-auth client HOST PORT COOKIEFILE
 *
 * Protocol (both directions, after connect/accept):
 *   1. §5: set the application-aware bit (TCP_ENO_SELF_GOPT |= 2) before the
 *      SYN, and authenticate only if the peer set it too (TCP_ENO_PEER_GOPT);
 *   2. authenticator = HMAC-SHA-256(cookie, "eno-auth v1" | TCP_ENO_SELF_NAME)
 *      — the prefix is the domain separation §5.1 asks for;
 *   3. send ours, read the peer's, compare (constant time) with
 *      HMAC-SHA-256(cookie, "eno-auth v1" | TCP_ENO_PEER_NAME).
 * A man in the middle terminates two ENO connections with different session
 * IDs, so the authenticators computed over names it cannot choose do not
 * match: both ends print "auth: FAILED" and exit 3.
 *
 * Exit status: 0 authenticated, 3 authentication failed, 4 no ENO (or the
 * peer is not application-aware), 1 other errors.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tcpinc.h"

#define TAG "eno-auth v1"

static int read_cookie(const char *path, unsigned char *key, size_t *len)
{
  FILE *f = fopen(path, "rb");
  if (!f) {
    perror(path);
    return -1;
  }
  *len = fread(key, 1, 64, f);
  fclose(f);
  if (*len < 16) {
    fprintf(stderr, "%s: a cookie needs at least 128 bits\n", path);
    return -1;
  }
  return 0;
}

static int full_io(int fd, void *buf, size_t n, int wr)
{
  size_t done = 0;
  while (done < n) {
    ssize_t r = wr ? write(fd, (char *)buf + done, n - done) : read(fd, (char *)buf + done, n - done);
    if (r <= 0)
      return -1;
    done += (size_t)r;
  }
  return 0;
}

static void authenticator(const unsigned char *key, size_t klen, const unsigned char *name,
                          socklen_t nlen, unsigned char out[crypto_auth_hmacsha256_BYTES])
{
  crypto_auth_hmacsha256_state st;
  crypto_auth_hmacsha256_init(&st, key, klen);
  crypto_auth_hmacsha256_update(&st, (const unsigned char *)TAG, sizeof(TAG) - 1);
  crypto_auth_hmacsha256_update(&st, name, nlen);
  crypto_auth_hmacsha256_final(&st, out);
  sodium_memzero(&st, sizeof(st));
}

static int authenticate(int fd, const unsigned char *key, size_t klen)
{
  int v = 0;
  socklen_t l = sizeof(v);
  unsigned char self[TCPINC_NAME_MAX], peer[TCPINC_NAME_MAX];
  socklen_t sl = sizeof(self), pl = sizeof(peer);
  unsigned char mine[crypto_auth_hmacsha256_BYTES], theirs[crypto_auth_hmacsha256_BYTES],
      expect[crypto_auth_hmacsha256_BYTES];

  if (getsockopt(fd, IPPROTO_TCP, TCP_ENO_PEER_GOPT, &v, &l) < 0) {
    printf("auth: no ENO on this connection (%s)\n", strerror(errno));
    return 4;
  }
  if (!(v & 2)) {
    printf("auth: peer is not application-aware; not sending authenticators\n");
    return 4;
  }
  if (getsockopt(fd, IPPROTO_TCP, TCP_ENO_SELF_NAME, self, &sl) < 0 ||
      getsockopt(fd, IPPROTO_TCP, TCP_ENO_PEER_NAME, peer, &pl) < 0) {
    printf("auth: no session names (%s)\n", strerror(errno));
    return 4;
  }
  authenticator(key, klen, self, sl, mine);
  authenticator(key, klen, peer, pl, expect);
  if (full_io(fd, mine, sizeof(mine), 1) || full_io(fd, theirs, sizeof(theirs), 0)) {
    printf("auth: connection lost\n");
    return 1;
  }
  int ok = sodium_memcmp(theirs, expect, sizeof(expect)) == 0;
  printf("session-id: ");
  for (socklen_t i = 1; i < sl; i++)
    printf("%02x", self[i]);
  printf("\nauth: %s\n", ok ? "ok (session ID authenticated)" : "FAILED (man in the middle?)");
  return ok ? 0 : 3;
}

static int set_aware(int fd)
{
  int g = 2;   /* a bit (api-06 §5) */
  if (setsockopt(fd, IPPROTO_TCP, TCP_ENO_SELF_GOPT, &g, sizeof(g)) < 0) {
    printf("auth: cannot set the application-aware bit (%s): run under enorun\n", strerror(errno));
    return -1;
  }
  return 0;
}

int main(int argc, char **argv)
{
  unsigned char key[64];
  size_t klen = 0;
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (sodium_init() < 0)
    return 1;
  if (argc == 4 && !strcmp(argv[1], "server")) {
    if (read_cookie(argv[3], key, &klen))
      return 1;
    int s = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)atoi(argv[2]));
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (set_aware(s) || bind(s, (struct sockaddr *)&a, sizeof(a)) || listen(s, 4)) {
      perror("server");
      return 1;
    }
    printf("listening: %s\n", argv[2]);
    int c = accept(s, NULL, NULL);
    if (c < 0)
      return 1;
    int r = authenticate(c, key, klen);
    if (r == 0) {
      const char msg[] = "secret payload for an authenticated peer\n";
      full_io(c, (void *)msg, sizeof(msg) - 1, 1);
    }
    close(c);
    sodium_memzero(key, sizeof(key));
    return r;
  }
  if (argc == 5 && !strcmp(argv[1], "client")) {
    if (read_cookie(argv[4], key, &klen))
      return 1;
    struct addrinfo hints, *res;
    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(argv[2], argv[3], &hints, &res))
      return 1;
    int s = socket(res->ai_family, SOCK_STREAM, 0);
    if (s < 0 || set_aware(s) || connect(s, res->ai_addr, res->ai_addrlen)) {
      printf("connect: %s\n", strerror(errno));
      return 1;
    }
    freeaddrinfo(res);
    int r = authenticate(s, key, klen);
    if (r == 0) {
      char buf[256];
      ssize_t n = read(s, buf, sizeof(buf) - 1);
      if (n > 0)
        printf("received: %.*s", (int)n, buf);
    }
    close(s);
    sodium_memzero(key, sizeof(key));
    return r;
  }
  fprintf(stderr, "usage: eno-auth server PORT COOKIEFILE | client HOST PORT COOKIEFILE\n");
  return 2;
}
