/*
 * tund/nat.c — tund's side of real-host publishing (tund/nat.h): starts the
 * privileged helper (tund-nat) before the privilege drop and asks it, one fixed-size
 * message at a time, to publish and withdraw the ports programs listen on
 * and to name the address a steered-in peer dialed.
 *
 * Requests are synchronous: the helper answers in well under a millisecond
 * (one libnftables command or one conntrack lookup), and they come at
 * listen(), at a listener's end, and once per connection accepted from
 * another host.  A helper that does not answer within a second is taken as
 * gone: publishing stops (one log line) and tund carries on.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tund.h"
#include "nat.h"

static int nat_fd = -1;
static pid_t nat_pid = -1;
static uint32_t nat_seq;
static uint16_t published[65536];      /* listeners per port */

int nat_active(void) { return nat_fd >= 0; }

static void nat_lost(const char *why)
{
  log_warn("real-host helper %s: ports are no longer published (connections from other hosts to "
           "programs under enoshim now reach their kernel listeners, in plain TCP)", why);
  close(nat_fd);
  nat_fd = -1;
}

static int nat_recv(struct natp_rep *rp, int timeout_ms)
{
  uint8_t buf[NATP_REP_LEN + 1];
  struct pollfd p = { .fd = nat_fd, .events = POLLIN };
  int r;
  do
    r = poll(&p, 1, timeout_ms);
  while (r < 0 && errno == EINTR);
  if (r <= 0)
    return -1;
  ssize_t n = recv(nat_fd, buf, sizeof(buf), MSG_DONTWAIT);
  if (n <= 0 || natp_rep_parse(buf, (size_t)n, rp))
    return -1;
  return 0;
}

void nat_start(const struct tund_config *c)
{
  int sv[2];
  struct natp_rep rp = { 0 };
  if (!c->real_hosts)
    return;
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv)) {
    log_warn("real hosts: socketpair: %s", strerror(errno));
    return;
  }
  pid_t pid = fork();
  if (pid < 0) {
    log_warn("real hosts: fork: %s", strerror(errno));
    close(sv[0]);
    close(sv[1]);
    return;
  }
  if (pid == 0) {
    /* the helper is its own small executable, next to tund, with its
     * socket on descriptor 3; CAP_NET_ADMIN crosses the exec as an ambient
     * capability when tund has it from file capabilities (root's exec gets
     * it anyway, and the helper then drops everything else) */
    char self[4096], path[4200], a4[INET_ADDRSTRLEN], a6[INET6_ADDRSTRLEN] = "none";
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n <= 0 || dup2(sv[1], 3) < 0)
      _exit(127);
    self[n] = 0;
    char *slash = strrchr(self, '/');
    if (slash)
      *slash = 0;
    snprintf(path, sizeof(path), "%s/tund-nat", self);
    inet_ntop(AF_INET, &c->lwip4, a4, sizeof(a4));
    if (c->have_v6)
      inet_ntop(AF_INET6, &c->lwip6, a6, sizeof(a6));
    cap_t caps = cap_get_proc();
    cap_value_t na = CAP_NET_ADMIN;
    if (caps && cap_set_flag(caps, CAP_INHERITABLE, 1, &na, CAP_SET) == 0 && cap_set_proc(caps) == 0)
      (void)prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_NET_ADMIN, 0, 0);
    if (caps)
      cap_free(caps);
    char tun[IFNAMSIZ];
    snprintf(tun, sizeof(tun), "%s", c->tun_name);
    char *argv[] = { "tund-nat", "--tun", tun, "--lwip4", a4, "--lwip6", a6, NULL };
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    execv(path, argv);
    fprintf(stderr, "tund: cannot run %s: %s\n", path, strerror(errno));
    _exit(127);
  }
  close(sv[1]);
  nat_fd = sv[0];
  nat_pid = pid;
  if (nat_recv(&rp, 10000) || rp.err) {
    char why[512] = "the helper tund-nat did not start (see above)";
    struct pollfd pf = { .fd = nat_fd, .events = POLLIN };
    if (rp.err == EPERM && poll(&pf, 1, 1000) == 1) {
      ssize_t n = recv(nat_fd, why, sizeof(why) - 1, MSG_DONTWAIT);
      why[n > 0 ? n : 0] = 0;
    }
    close(nat_fd);
    nat_fd = -1;
    waitpid(pid, NULL, 0);
    nat_pid = -1;
    log_warn("real hosts: not set up (%s): programs reach other hosts only if the network routes "
             "%s's prefix back here, and other hosts reach programs here only through their kernel "
             "listeners, in plain TCP; lwIP's own addresses and loopback work", why, c->tun_name);
    return;
  }
  log_info("real hosts: lwIP's traffic masqueraded, listening ports published (nftables table "
           "inet enoshim-%s, helper pid %d)", c->tun_name, (int)pid);
}

static int nat_call(struct natp_req *rq, struct natp_rep *rp)
{
  uint8_t buf[NATP_REQ_LEN];
  if (nat_fd < 0)
    return ENOTCONN;
  rq->seq = ++nat_seq;
  natp_req_encode(rq, buf);
  if (send(nat_fd, buf, sizeof(buf), MSG_NOSIGNAL) != (ssize_t)sizeof(buf)) {
    nat_lost("gone");
    return ENOTCONN;
  }
  if (nat_recv(rp, 1000) || rp->seq != rq->seq) {
    nat_lost("did not answer");
    return ENOTCONN;
  }
  return rp->err;
}

static void nat_port(uint8_t op, uint16_t port)
{
  struct natp_req rq = { .op = op, .port = port };
  struct natp_rep rp;
  int e = nat_call(&rq, &rp);
  if (e && e != ENOTCONN)
    log_warn("real hosts: %s port %u: %s", op == NATP_PUBLISH ? "publishing" : "withdrawing",
             (unsigned)port, strerror(e));
}

void nat_publish(uint16_t port)
{
  if (port == 0 || published[port]++ || nat_fd < 0)
    return;
  nat_port(NATP_PUBLISH, port);
}

void nat_unpublish(uint16_t port)
{
  if (port == 0 || published[port] == 0 || --published[port] || nat_fd < 0)
    return;
  nat_port(NATP_UNPUBLISH, port);
}

int nat_origdst(int family, const uint8_t raddr[16], uint16_t rport, uint16_t port, uint8_t addr[16])
{
  struct natp_req rq = { .op = NATP_ORIGDST, .family = (uint8_t)family, .port = port, .rport = rport };
  struct natp_rep rp;
  if (nat_fd < 0 || !published[port])
    return ENOENT;
  memcpy(rq.raddr, raddr, family == 4 ? 4 : 16);
  int e = nat_call(&rq, &rp);
  if (e)
    return e;
  if (rp.family != family)
    return ENOENT;
  memcpy(addr, rp.addr, 16);
  return 0;
}

void nat_stop(void)
{
  if (nat_fd >= 0) {
    close(nat_fd);            /* the helper tears down on EOF */
    nat_fd = -1;
  }
  if (nat_pid > 0) {
    for (int i = 0; i < 300; i++) {          /* up to 3 s */
      if (waitpid(nat_pid, NULL, WNOHANG) == nat_pid) {
        nat_pid = -1;
        return;
      }
      struct timespec ts = { 0, 10 * 1000 * 1000 };
      nanosleep(&ts, NULL);
    }
    log_warn("real-host helper pid %d did not finish restoring the host within 3 s", (int)nat_pid);
  }
}
