/*
 * shim/direct_eno.c — the ENO socket options on plain kernel TCP sockets.
 * Loopback and "direct" connections, and the connections a listener takes
 * from the kernel side, are plain kernel sockets: ENO is disabled on them
 * (never negotiated).  Answer as api-06 says for a disabled connection rather
 * than the kernel's ENOPROTOOPT.
 */
#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "tcpinc.h"
#include "shim.h"

static int is_kernel_tcp(int fd)
{
  return sockopt_is(fd, SO_PROTOCOL, IPPROTO_TCP) && sockopt_is(fd, SO_TYPE, SOCK_STREAM);
}

static int kernel_connected(int fd)
{
  struct sockaddr_storage ss;
  socklen_t l = sizeof(ss);
  return real.getpeername(fd, (struct sockaddr *)&ss, &l) == 0;
}

/* 1 when not handled (not a kernel TCP socket): the caller asks the kernel. */
int shim_direct_eno_getopt(int fd, int name, void *val, socklen_t *len)
{
  if (!is_kernel_tcp(fd))
    return 1;
  switch (name) {
  case TCP_ENO_STATE:
    return put_int(val, len, TCPINC_STATE_DISABLED);
  case TCP_ENO_ENABLED:
    return put_int(val, len, -1);
  case TCP_ENO_SELF_GOPT:
  case TCP_ENO_AA_MANDATORY:
  case TCP_ENO_TEP_MANDATORY:
    return put_int(val, len, 0);
  case TCP_ENO_TEPS:
  case TCP_ENO_RAW:
    if (!len) {
      errno = EFAULT;
      return -1;
    }
    *len = 0;
    return 0;
  default:
    errno = EINVAL;    /* ENO is disabled on this connection */
    return -1;
  }
}

int shim_direct_eno_setopt(int fd, int name, const void *val, socklen_t len)
{
  int v = 0;
  if (!is_kernel_tcp(fd))
    return 1;
  if (name == TCP_ENO_TEP_MANDATORY) {
    if (get_int(val, len, &v))
      return -1;
    if (v && kernel_connected(fd)) {
      /* api-06: setting it on an established unencrypted connection aborts
       * it; connect(AF_UNSPEC) makes Linux reset a TCP connection */
      struct sockaddr sa = { .sa_family = AF_UNSPEC };
      real.connect(fd, &sa, sizeof(sa));
    }
    return 0;
  }
  if (kernel_connected(fd)) {
    errno = EISCONN;     /* the SYN has been sent long ago */
    return -1;
  }
  errno = EINVAL;        /* a plain kernel socket cannot negotiate ENO */
  return -1;
}
