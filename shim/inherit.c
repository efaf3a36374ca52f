/*
 * shim/inherit.c — sockets that come to this process without socket() or
 * accept(): inherited across exec (found at start among the open fds) or
 * received with SCM_RIGHTS (after each recvmsg() that brought descriptors).
 * tund recognises its pair end (ATTACH) and hands over the memfd.  Sockets
 * this process sends away are marked shared.
 */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "shim.h"

/* Take over fd if it is the program's end of a tund socket (its peer is
 * tund): ATTACH gives us its memfd.  Returns -1 if tund is unreachable. */
static int attach_fd(int fd)
{
  struct ucred cr;
  socklen_t l = sizeof(cr);
  if (real.getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &l))
    return 0;
  /* made by our tund; or by one that died, whose listener this one may
   * have taken over (relisten.c): it says ENOENT if not */
  if ((uint32_t)cr.pid != shim_tund_pid && !(cr.pid > 0 && kill(cr.pid, 0) < 0 && errno == ESRCH))
    return 0;
  struct enoipc_attach_ok ok;
  size_t okl = sizeof(ok);
  int rfd[ENOIPC_MAX_FDS], nrfd = 0, err = 0;
  uint64_t id = 0;
  int r = ctl_call(ENOIPC_ATTACH, 0, NULL, 0, NULL, 0, &fd, 1, &err, &ok, &okl, rfd, &nrfd, &id);
  if (r)
    return r == -EMFILE ? 0 : -1;   /* no room for the memfd: this one stays unattached */
  if (err || nrfd != 1 || okl != sizeof(ok)) {
    for (int k = 0; k < nrfd; k++)
      real.close(rfd[k]);
    return 0;
  }
  struct shim_sock *s = sock_from_shm(id, rfd[0], ok.shm_size,
                                      ok.kind == ENOIPC_KIND_LISTENER ? SK_LISTENER : SK_STREAM,
                                      AF_INET, SHM_NO_CACHE, &err);
  real.close(rfd[0]);
  if (!s)
    return 0;
  struct enoshm_status st;
  enoshm_status_read(s->shm, &st);
  s->domain = st.local.family == AF_INET6 ? AF_INET6 : AF_INET;
  if (st.state >= ENOSHM_S_CONNECTING)
    s->connect_started = s->kind == SK_STREAM;
  s->bound = st.state >= ENOSHM_S_BOUND;
  s->shared = 1;
  fdt_set(fd, s);           /* the table's reference is the only one */
  if (shim_debug)
    shim_log("attached socket fd %d (tund socket %llu)", fd, (unsigned long long)id);
  return 0;
}

static int is_unix_stream(int fd)
{
  return sockopt_is(fd, SO_DOMAIN, AF_UNIX) && sockopt_is(fd, SO_TYPE, SOCK_STREAM);
}

/* At start: sockets inherited across exec. */
void sock_attach_inherited(void)
{
  DIR *d = opendir("/proc/self/fd");
  struct dirent *de;
  int candidates[256], nc = 0;
  if (!d)
    return;
  int dfd = dirfd(d);
  while ((de = readdir(d)) && nc < 256) {
    char *end;
    long fd = strtol(de->d_name, &end, 10);
    if (*end || fd < 0 || fd == dfd)
      continue;
    struct stat st;
    if (fstat((int)fd, &st) || !S_ISSOCK(st.st_mode) || !is_unix_stream((int)fd))
      continue;
    candidates[nc++] = (int)fd;
  }
  closedir(d);
  if (nc == 0)
    return;
  if (ctl_ensure())
    return;
  for (int i = 0; i < nc; i++)
    if (attach_fd(candidates[i]))
      return;
}

/* fn(fd) for each descriptor the SCM_RIGHTS parts of m carry, until fn
 * returns nonzero. */
static void passed_fds(const struct msghdr *m, int (*fn)(int fd))
{
  if (!m->msg_control || m->msg_controllen < sizeof(struct cmsghdr))
    return;
  for (struct cmsghdr *c = CMSG_FIRSTHDR((struct msghdr *)m); c; c = CMSG_NXTHDR((struct msghdr *)m, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS || c->cmsg_len < CMSG_LEN(sizeof(int)))
      continue;
    size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < n; i++) {
      int fd;
      memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(fd));
      if (fd >= 0 && fn(fd))
        return;
    }
  }
}

static int attach_passed(int fd)
{
  if (ctl_is_internal_fd(fd) || !is_unix_stream(fd))
    return 0;
  struct shim_sock *stale = fdt_take(fd);   /* the number is new: an entry is stale */
  if (stale)
    fdt_put(stale);
  return ctl_ensure() || attach_fd(fd);
}

/* Sockets another process passed us (SCM_RIGHTS) arrive as bare pair ends:
 * without this the program would write its bytes into tund's wake-up
 * channel.  Called after every recvmsg() that brought control data. */
void sock_attach_received(const struct msghdr *m) { passed_fds(m, attach_passed); }

static int mark_shared(int fd)
{
  struct shim_sock *s = fdt_maybe(fd) ? fdt_get(fd) : NULL;
  if (s) {
    s->shared = 1;
    fdt_put(s);
  }
  return 0;
}

/* The program passes descriptors over a unix socket: any of ours among them
 * is shared with the receiver from now on (see eno_opt_postable). */
void sock_note_sent(const struct msghdr *m) { passed_fds(m, mark_shared); }
