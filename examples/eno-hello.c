/*
 * eno-hello — a tiny client/server that shows what TCP-ENO negotiated on its
 * connection, through the socket options of draft-ietf-tcpinc-api-06.  It is
 * an ordinary sockets program: run it under enorun.
 *
 *   eno-hello server PORT              accept one connection, print, echo
 *   eno-hello client HOST PORT [TEXT]  connect, print, send TEXT, print reply
 *
 * Output (one "key: value" per line, easy to grep):
 *   local: ADDR:PORT   peer: ADDR:PORT   (getsockname / getpeername)
 *   eno: encrypting | disabled (why) | negotiating
 *   role: A | B        tep: 0x23        aead: 0x0001
 *   session-id: 23....  self-name: 00 23...  peer-name: 01 23...
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tcpinc.h"

static void hex(const char *label, const unsigned char *p, socklen_t n)
{
  printf("%s: ", label);
  for (socklen_t i = 0; i < n; i++)
    printf("%02x", p[i]);
  printf("\n");
}

static void addr(const char *label, int fd, int (*get)(int, struct sockaddr *, socklen_t *))
{
  struct sockaddr_storage ss;
  socklen_t l = sizeof(ss);
  char h[NI_MAXHOST], p[NI_MAXSERV];
  if (get(fd, (struct sockaddr *)&ss, &l) < 0 ||
      getnameinfo((struct sockaddr *)&ss, l, h, sizeof(h), p, sizeof(p), NI_NUMERICHOST | NI_NUMERICSERV)) {
    printf("%s: ? (%s)\n", label, strerror(errno));
    return;
  }
  /* a v4-mapped address of a dual-stack socket is shown as IPv4 */
  const char *v4 = strncmp(h, "::ffff:", 7) == 0 && strchr(h, '.') ? h + 7 : NULL;
  if (v4 || !strchr(h, ':'))
    printf("%s: %s:%s\n", label, v4 ? v4 : h, p);
  else
    printf("%s: [%s]:%s\n", label, h, p);
}

static void show(int fd)
{
  int v = 0;
  addr("local", fd, getsockname);
  addr("peer", fd, getpeername);
  socklen_t l = sizeof(v);
  unsigned char buf[128];
  if (getsockopt(fd, IPPROTO_TCP, TCP_ENO_STATE, &v, &l) < 0) {
    printf("eno: unavailable (%s) — not running under enorun?\n", strerror(errno));
    return;
  }
  if (v != TCPINC_STATE_ENCRYPTING) {
    l = sizeof(buf);
    /* api-06: read-only options fail with EINVAL when ENO is disabled */
    int r = getsockopt(fd, IPPROTO_TCP, TCP_ENO_SESSID, buf, &l);
    printf("eno: %s (TCP_ENO_SESSID: %s)\n", v == TCPINC_STATE_DISABLED ? "disabled" : "negotiating",
           r < 0 ? strerror(errno) : "?");
    return;
  }
  printf("eno: encrypting\n");
  l = sizeof(v);
  if (getsockopt(fd, IPPROTO_TCP, TCP_ENO_ROLE, &v, &l) == 0)
    printf("role: %s\n", v ? "B" : "A");
  l = sizeof(v);
  if (getsockopt(fd, IPPROTO_TCP, TCP_ENO_NEGTEP, &v, &l) == 0)
    printf("tep: 0x%02x%s\n", v, (v & 0x7f) == 0x20 ? " (experimental: NOT encrypted)" : "");
  l = sizeof(v);
  if (getsockopt(fd, IPPROTO_TCP, TCP_CRYPT_CONF, &v, &l) == 0)
    printf("aead: 0x%04x\n", v);
  l = sizeof(buf);
  if (getsockopt(fd, IPPROTO_TCP, TCP_ENO_SESSID, buf, &l) == 0)
    hex("session-id", buf, l);
  l = sizeof(buf);
  if (getsockopt(fd, IPPROTO_TCP, TCP_ENO_SELF_NAME, buf, &l) == 0)
    hex("self-name", buf, l);
  l = sizeof(buf);
  if (getsockopt(fd, IPPROTO_TCP, TCP_ENO_PEER_NAME, buf, &l) == 0)
    hex("peer-name", buf, l);
  l = sizeof(buf);
  if (getsockopt(fd, IPPROTO_TCP, TCP_ENO_TRANSCRIPT, buf, &l) == 0)
    hex("transcript", buf, l);
}

static int server(const char *port)
{
  int s = socket(AF_INET6, SOCK_STREAM, 0), one = 1, zero = 0;
  struct sockaddr_in6 a;
  if (s < 0) {
    perror("socket");
    return 1;
  }
  setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
  memset(&a, 0, sizeof(a));
  a.sin6_family = AF_INET6;
  a.sin6_port = htons((uint16_t)atoi(port));
  if (bind(s, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(s, 8) < 0) {
    perror("bind/listen");
    return 1;
  }
  printf("listening: %s\n", port);
  fflush(stdout);
  int c = accept(s, NULL, NULL);
  if (c < 0) {
    perror("accept");
    return 1;
  }
  show(c);
  char buf[4096];
  ssize_t n;
  while ((n = read(c, buf, sizeof(buf))) > 0) {
    printf("received: %.*s\n", (int)(n > 200 ? 200 : n), buf);
    if (write(c, buf, (size_t)n) != n)
      break;
  }
  if (n < 0)
    printf("read error: %s\n", strerror(errno));
  close(c);
  close(s);
  return 0;
}

static int client(const char *host, const char *port, const char *text)
{
  struct addrinfo hints, *res;
  memset(&hints, 0, sizeof(hints));
  hints.ai_socktype = SOCK_STREAM;
  if (getaddrinfo(host, port, &hints, &res) != 0) {
    fprintf(stderr, "cannot resolve %s\n", host);
    return 1;
  }
  int s = socket(res->ai_family, SOCK_STREAM, 0);
  if (s < 0 || connect(s, res->ai_addr, res->ai_addrlen) < 0) {
    printf("connect: %s\n", strerror(errno));
    return 1;
  }
  freeaddrinfo(res);
  show(s);
  size_t len = strlen(text);
  if (write(s, text, len) != (ssize_t)len) {
    perror("write");
    return 1;
  }
  shutdown(s, SHUT_WR);
  char buf[4096];
  ssize_t n, got = 0;
  while ((n = read(s, buf + got, sizeof(buf) - 1 - (size_t)got)) > 0)
    got += n;
  buf[got] = 0;
  printf("reply: %s\n", buf);
  close(s);
  return got == (ssize_t)len && memcmp(buf, text, len) == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (argc >= 3 && !strcmp(argv[1], "server"))
    return server(argv[2]);
  if (argc >= 4 && !strcmp(argv[1], "client"))
    return client(argv[2], argv[3], argc > 4 ? argv[4] : "hello over TCP-ENO");
  fprintf(stderr, "usage: eno-hello server PORT | client HOST PORT [TEXT]\n");
  return 2;
}
