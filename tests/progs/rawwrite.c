/*
 * rawwrite — bytes written around the shim on a connected socket.
 *
 *   rawwrite HOST PORT
 *
 * Connects, writes 1000 bytes 'A' with write() (the shim's), 1000 bytes 'B'
 * with syscall(SYS_write) (straight into the socketpair: the shim never
 * sees them), then keeps writing 1000 bytes 'C' with write() every 50 ms
 * for up to 10 s.  The bytes cannot reach the peer in order (they are not
 * in the ring): the connection must fail loudly, never carry A then C.
 * Prints one line:
 *   "error ERRNO-NAME after N writes"   a later write() failed (expected)
 *   "no error after N writes"           it never did (the test then checks
 *                                       that the peer got A, B, C in order)
 * Exit status 0 either way, 2 if the set-up failed.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
  if (argc != 3) {
    fprintf(stderr, "usage: rawwrite HOST PORT\n");
    return 2;
  }
  struct sockaddr_in a;
  memset(&a, 0, sizeof(a));
  a.sin_family = AF_INET;
  a.sin_port = htons((uint16_t)atoi(argv[2]));
  if (inet_pton(AF_INET, argv[1], &a.sin_addr) != 1) {
    fprintf(stderr, "rawwrite: bad address %s\n", argv[1]);
    return 2;
  }
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a))) {
    perror("rawwrite: connect");
    return 2;
  }
  char buf[1000];
  memset(buf, 'A', sizeof(buf));
  if (write(fd, buf, sizeof(buf)) != (ssize_t)sizeof(buf)) {
    perror("rawwrite: write A");
    return 2;
  }
  struct timespec ts = { 0, 100 * 1000 * 1000 };
  nanosleep(&ts, NULL);
  memset(buf, 'B', sizeof(buf));
  long r = syscall(SYS_write, fd, buf, sizeof(buf));
  fprintf(stderr, "rawwrite: syscall(SYS_write) of 1000 bytes returned %ld\n", r);
  memset(buf, 'C', sizeof(buf));
  ts.tv_nsec = 50 * 1000 * 1000;
  int n;
  for (n = 1; n <= 200; n++) {
    nanosleep(&ts, NULL);
    ssize_t w = write(fd, buf, sizeof(buf));
    if (w < 0) {
      int e = errno;
      printf("error %s after %d writes (%s)\n", e == EIO ? "EIO" : e == ECONNRESET ? "ECONNRESET" : e == EPIPE ? "EPIPE" : "other",
             n, strerror(e));
      return 0;
    }
  }
  printf("no error after %d writes\n", n - 1);
  return 0;
}
