/*
 * tests/progs/crypt_relay.c — a man in the middle for tests/integ/t_crypt_mitm.sh:
 * run under enorun on a third host, it terminates ENO/tcpcrypt on both sides
 * (accepts the victim client's connection, opens its own to the real server)
 * and copies bytes both ways.  With --aware it sets the application-aware bit
 * (TCP_ENO_SELF_GOPT = 2, api-06 §5) on both legs, as an active attacker who
 * controls its own stack would, so that programs relying only on that bit
 * would be fooled; session-ID authentication (examples/eno-auth.c) is not.
 *
 *   crypt_relay LISTEN_PORT DST_HOST DST_PORT [--aware]
 *
 * Prints "listening PORT", then "leg client|server sessid=HEX" for each leg,
 * and "done A_TO_B B_TO_A" (bytes relayed) when both directions ended.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tcpinc.h"

static void leg(const char *name, int fd)
{
  unsigned char b[TCPINC_SESSID_MAX];
  socklen_t l = sizeof(b);
  printf("leg %s sessid=", name);
  if (getsockopt(fd, IPPROTO_TCP, TCP_ENO_SESSID, b, &l) == 0) {
    for (socklen_t i = 0; i < l; i++)
      printf("%02x", b[i]);
  } else {
    printf("none(%s)", strerror(errno));
  }
  printf("\n");
}

static int aware(int fd, int on)
{
  int g = 2;
  if (on && setsockopt(fd, IPPROTO_TCP, TCP_ENO_SELF_GOPT, &g, sizeof(g)) < 0) {
    perror("TCP_ENO_SELF_GOPT");
    return -1;
  }
  return 0;
}

int main(int argc, char **argv)
{
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (argc < 4) {
    fprintf(stderr, "usage: crypt_relay LISTEN_PORT DST_HOST DST_PORT [--aware]\n");
    return 2;
  }
  int on = argc > 4 && !strcmp(argv[4], "--aware"), one = 1;
  int s = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a;
  memset(&a, 0, sizeof(a));
  a.sin_family = AF_INET;
  a.sin_port = htons((uint16_t)atoi(argv[1]));
  setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (s < 0 || aware(s, on) || bind(s, (struct sockaddr *)&a, sizeof(a)) || listen(s, 4)) {
    perror("listen");
    return 1;
  }
  printf("listening %s\n", argv[1]);
  int c = accept(s, NULL, NULL);
  if (c < 0) {
    perror("accept");
    return 1;
  }
  leg("client", c);
  struct addrinfo hints, *res;
  memset(&hints, 0, sizeof(hints));
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICHOST;
  if (getaddrinfo(argv[2], argv[3], &hints, &res)) {
    fprintf(stderr, "bad address\n");
    return 1;
  }
  int d = socket(res->ai_family, SOCK_STREAM, 0);
  if (d < 0 || aware(d, on) || connect(d, res->ai_addr, res->ai_addrlen)) {
    perror("connect");
    return 1;
  }
  freeaddrinfo(res);
  leg("server", d);
  /* copy both ways; an EOF on one side becomes shutdown(SHUT_WR) on the other */
  int fds[2] = { c, d }, open_[2] = { 1, 1 };
  unsigned long long moved[2] = { 0, 0 };
  char buf[65536];
  while (open_[0] || open_[1]) {
    struct pollfd p[2];
    int n = 0, idx[2];
    for (int i = 0; i < 2; i++)
      if (open_[i]) {
        p[n].fd = fds[i];
        p[n].events = POLLIN;
        idx[n++] = i;
      }
    if (poll(p, (nfds_t)n, 60000) <= 0)
      break;
    for (int k = 0; k < n; k++) {
      if (!p[k].revents)
        continue;
      int i = idx[k];
      ssize_t r = read(fds[i], buf, sizeof(buf));
      if (r <= 0) {
        open_[i] = 0;
        shutdown(fds[1 - i], SHUT_WR);
        continue;
      }
      for (ssize_t off = 0; off < r;) {
        ssize_t w = write(fds[1 - i], buf + off, (size_t)(r - off));
        if (w <= 0) {
          open_[0] = open_[1] = 0;
          break;
        }
        off += w;
      }
      moved[i] += (unsigned long long)r;
    }
  }
  printf("done %llu %llu\n", moved[0], moved[1]);
  close(c);
  close(d);
  return 0;
}
