/*
 * echo_srv PORT [BIND_ADDR] — an epoll (level-triggered) echo server for many
 * concurrent connections: echoes every byte back, closes after the client's
 * EOF once everything is echoed.  Prints "listening PORT" when ready; runs
 * until SIGTERM/SIGINT, then prints "served N connections, B bytes".
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

struct conn {
  int fd;
  size_t len, off;
  int eof;
  unsigned char buf[16384];
};

static volatile sig_atomic_t stop;
static void on_term(int sig) { (void)sig; stop = 1; }

static void drop(int ep, struct conn *c)
{
  epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
  close(c->fd);
  free(c);
}

int main(int argc, char **argv)
{
  if (argc < 2) {
    fprintf(stderr, "usage: echo_srv PORT [BIND_ADDR]\n");
    return 1;
  }
  setvbuf(stdout, NULL, _IOLBF, 0);
  signal(SIGPIPE, SIG_IGN);
  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = on_term;
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
    rl.rlim_cur = rl.rlim_max > 65536 ? 65536 : rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  const char *bind_addr = argc > 2 ? argv[2] : "0.0.0.0";
  int v6 = strchr(bind_addr, ':') != NULL;
  struct sockaddr_storage ss;
  socklen_t sl;
  memset(&ss, 0, sizeof(ss));
  if (v6) {
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
    a->sin6_family = AF_INET6;
    a->sin6_port = htons((uint16_t)atoi(argv[1]));
    inet_pton(AF_INET6, bind_addr, &a->sin6_addr);
    sl = sizeof(*a);
  } else {
    struct sockaddr_in *a = (struct sockaddr_in *)&ss;
    a->sin_family = AF_INET;
    a->sin_port = htons((uint16_t)atoi(argv[1]));
    inet_pton(AF_INET, bind_addr, &a->sin_addr);
    sl = sizeof(*a);
  }
  int l = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK, 0);
  int one = 1;
  if (l < 0 || setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
      bind(l, (struct sockaddr *)&ss, sl) || listen(l, 4096)) {
    perror("echo_srv: listen");
    return 1;
  }
  int ep = epoll_create1(EPOLL_CLOEXEC);
  struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };
  epoll_ctl(ep, EPOLL_CTL_ADD, l, &ev);
  printf("listening %s\n", argv[1]);
  unsigned long long served = 0, bytes = 0;
  struct epoll_event evs[256];
  while (!stop) {
    int n = epoll_wait(ep, evs, 256, 500);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      perror("echo_srv: epoll_wait");
      return 1;
    }
    for (int i = 0; i < n; i++) {
      struct conn *c = evs[i].data.ptr;
      if (!c) {
        for (;;) {
          int fd = accept4(l, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
          if (fd < 0) {
            if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
              perror("echo_srv: accept");
            break;
          }
          c = calloc(1, sizeof(*c));
          if (!c) {
            close(fd);
            continue;
          }
          c->fd = fd;
          struct epoll_event e = { .events = EPOLLIN, .data.ptr = c };
          if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e)) {
            perror("echo_srv: epoll_ctl");
            close(fd);
            free(c);
            continue;
          }
          served++;
        }
        continue;
      }
      if (c->len == 0 && !c->eof) {
        ssize_t r = read(c->fd, c->buf, sizeof(c->buf));
        if (r < 0) {
          if (errno == EAGAIN || errno == EINTR)
            continue;
          drop(ep, c);
          continue;
        }
        if (r == 0) {
          drop(ep, c);
          continue;
        }
        c->len = (size_t)r;
        c->off = 0;
        bytes += (unsigned long long)r;
      }
      while (c->off < c->len) {
        ssize_t w = write(c->fd, c->buf + c->off, c->len - c->off);
        if (w < 0) {
          if (errno == EAGAIN || errno == EINTR)
            break;
          c->len = 0;
          c->eof = 1;
          break;
        }
        c->off += (size_t)w;
      }
      if (c->eof) {
        drop(ep, c);
        continue;
      }
      struct epoll_event e = { .events = c->off < c->len ? EPOLLOUT : EPOLLIN, .data.ptr = c };
      if (c->off >= c->len)
        c->len = c->off = 0;
      epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &e);
    }
  }
  printf("served %llu connections, %llu bytes\n", served, bytes);
  return 0;
}
