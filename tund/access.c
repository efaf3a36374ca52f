/*
 * tund/access.c — who may use this tund, and who may see and act on what.
 *
 *   - Clients: tund's own uid and root always.  A tund started by root (a
 *     host-wide tund) also serves every other local user unless its config
 *     names the users and groups it serves (allow_users, allow_groups); a
 *     tund started by an ordinary user serves that user only, unless its
 *     config names others.  "allow_users = *" serves everybody.
 *   - Administrators (enoctl stop, flush-cache; status and rekey of every
 *     connection): root and tund's own uid.
 *   - Everybody else sees and rekeys only the connections its uid made,
 *     attached or asked about (struct conn's users, client.c); acting on a
 *     socket takes its id, which only its holders know (conn.c).
 *
 * The control socket is 0666 when tund serves anyone but its own uid and
 * root (access is decided here, by SO_PEERCRED), 0600 otherwise.
 */
#include <errno.h>
#include <grp.h>
#include <arpa/inet.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "tund.h"

static int host_wide;          /* started by root */
static uid_t tund_uid;         /* the uid tund runs as once privileges are dropped */

/* A list of names or numbers ("alice, 1002 staff"); '*' alone (users only)
 * means everybody.  0, or -1 with why. */
int access_parse(struct tund_config *c, const char *key, const char *val, char *why, size_t whylen)
{
  int users = !strcmp(key, "allow_users");
  char buf[1024];
  int n = 0, all = 0;
  uint32_t ids[TUND_MAX_ALLOW];
  snprintf(buf, sizeof(buf), "%s", val);
  for (char *save = NULL, *tok = strtok_r(buf, ", \t", &save); tok; tok = strtok_r(NULL, ", \t", &save)) {
    char *end;
    unsigned long v;
    if (users && !strcmp(tok, "*")) {
      all = 1;
      continue;
    }
    if (n >= TUND_MAX_ALLOW) {
      snprintf(why, whylen, "more than %d %s", TUND_MAX_ALLOW, users ? "users" : "groups");
      return -1;
    }
    errno = 0;
    v = strtoul(tok, &end, 10);
    if (*tok >= '0' && *tok <= '9' && !*end && !errno && v < 0xffffffffUL) {
      ids[n++] = (uint32_t)v;
    } else if (users) {
      struct passwd *pw = getpwnam(tok);
      if (!pw) {
        snprintf(why, whylen, "no user named '%.64s' (names or uids, or * for everybody)", tok);
        return -1;
      }
      ids[n++] = pw->pw_uid;
    } else {
      struct group *gr = getgrnam(tok);
      if (!gr) {
        snprintf(why, whylen, "no group named '%.64s' (names or gids)", tok);
        return -1;
      }
      ids[n++] = gr->gr_gid;
    }
  }
  if (users) {
    c->allow_all_users = all;
    c->n_allow_uids = n;
    for (int i = 0; i < n; i++)
      c->allow_uids[i] = ids[i];
  } else {
    c->n_allow_gids = n;
    for (int i = 0; i < n; i++)
      c->allow_gids[i] = ids[i];
  }
  return 0;
}

/* Before privileges are dropped: who started tund, whom it will run as. */
void access_start(const struct tund_config *c)
{
  host_wide = getuid() == 0 && geteuid() == 0;
  tund_uid = c->user_set ? c->uid : geteuid();
}

uid_t access_tund_uid(void)
{
  return tund_uid;
}

int access_admin(uid_t uid)
{
  return uid == 0 || uid == tund_uid;
}

static int explicit_policy(void)
{
  return cfg.allow_all_users || cfg.n_allow_uids || cfg.n_allow_gids;
}

int access_serves_others(void)
{
  return explicit_policy() || host_wide;
}

static int gid_allowed(gid_t g)
{
  for (int i = 0; i < cfg.n_allow_gids; i++)
    if (cfg.allow_gids[i] == g)
      return 1;
  return 0;
}

int access_client_ok(int fd, uid_t uid, gid_t gid, char *why, size_t whylen)
{
  if (access_admin(uid))
    return 1;
  if (!explicit_policy()) {
    if (host_wide)
      return 1;
    snprintf(why, whylen, "tund runs as uid %u and serves only it (allow_users / allow_groups name others)",
             (unsigned)tund_uid);
    return 0;
  }
  if (cfg.allow_all_users)
    return 1;
  for (int i = 0; i < cfg.n_allow_uids; i++)
    if (cfg.allow_uids[i] == uid)
      return 1;
  if (cfg.n_allow_gids) {
    if (gid_allowed(gid))
      return 1;
    /* the client's supplementary groups, as they were when it connected */
    gid_t groups[256];
    socklen_t l = sizeof(groups);
    if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &l) == 0)
      for (size_t i = 0; i < l / sizeof(gid_t); i++)
        if (gid_allowed(groups[i]))
          return 1;
  }
  snprintf(why, whylen, "not in allow_users / allow_groups");
  return 0;
}

/* Every TCP listener of this network namespace on `port` (IPv4 and IPv6,
 * any address; NETLINK_SOCK_DIAG, as ss(8) reads them) belongs to uid: 1
 * yes, 0 no (*other: one that does not), -1 cannot tell. */
static int listeners_all_of(uint16_t port, uid_t uid, uid_t *other)
{
  static const int families[] = { AF_INET, AF_INET6 };
  static uint8_t buf[32768];
  for (size_t f = 0; f < sizeof(families) / sizeof(families[0]); f++) {
    int nl = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
    if (nl < 0)
      return -1;
    struct {
      struct nlmsghdr nlh;
      struct inet_diag_req_v2 r;
    } req;
    memset(&req, 0, sizeof(req));
    req.nlh.nlmsg_len = sizeof(req);
    req.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
    req.nlh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
    req.r.sdiag_family = (uint8_t)families[f];
    req.r.sdiag_protocol = IPPROTO_TCP;
    req.r.idiag_states = 1u << 10;       /* TCP_LISTEN */
    struct timeval tv = { .tv_sec = 1 };
    setsockopt(nl, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (send(nl, &req, sizeof(req), 0) != (ssize_t)sizeof(req)) {
      close(nl);
      return -1;
    }
    int done = 0, rc = 1;
    while (!done) {
      ssize_t n = recv(nl, buf, sizeof(buf), 0);
      if (n <= 0) {
        rc = -1;
        break;
      }
      for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n)) {
        if (h->nlmsg_type == NLMSG_DONE) {
          done = 1;
          break;
        }
        if (h->nlmsg_type == NLMSG_ERROR || h->nlmsg_len < NLMSG_LENGTH(sizeof(struct inet_diag_msg))) {
          rc = -1;
          done = 1;
          break;
        }
        const struct inet_diag_msg *d = NLMSG_DATA(h);
        if (ntohs(d->id.idiag_sport) == port && d->idiag_uid != uid && rc == 1) {
          *other = d->idiag_uid;
          rc = 0;                        /* read on to the end of the dump */
        }
      }
    }
    close(nl);
    if (rc != 1)
      return rc;
  }
  return 1;
}

/* Does kfd prove that the program holds the host's TCP port `port`?  It
 * must be a listening TCP socket on that port (the kernel let its owner
 * bind the port: privileged ports, other servers' addresses), and every
 * listener of the host on the port, of either family and on any address,
 * must belong to the same uid as it: nobody else's server is reached on
 * that port, so steering the port into lwIP takes nothing from anybody. */
int access_kfd_holds_port(int kfd, uint16_t port, char *why, size_t whylen)
{
  struct sockaddr_storage ss;
  socklen_t l = sizeof(ss);
  struct stat st;
  int v;
  socklen_t vl = sizeof(v);
  uid_t other = 0;
  snprintf(why, whylen, "the program holds no kernel listener on port %u", (unsigned)port);
  if (kfd < 0 || !port || fstat(kfd, &st) || !S_ISSOCK(st.st_mode))
    return 0;
  if (getsockopt(kfd, SOL_SOCKET, SO_ACCEPTCONN, &v, &vl) || !v)
    return 0;
  vl = sizeof(v);
  if (getsockopt(kfd, SOL_SOCKET, SO_PROTOCOL, &v, &vl) || v != IPPROTO_TCP)
    return 0;
  if (getsockname(kfd, (struct sockaddr *)&ss, &l))
    return 0;
  if (!((ss.ss_family == AF_INET && ntohs(((struct sockaddr_in *)&ss)->sin_port) == port) ||
        (ss.ss_family == AF_INET6 && ntohs(((struct sockaddr_in6 *)&ss)->sin6_port) == port)))
    return 0;
  int r = listeners_all_of(port, st.st_uid, &other);
  if (r < 0)
    snprintf(why, whylen, "cannot list the host's listeners on port %u", (unsigned)port);
  else if (r == 0)
    snprintf(why, whylen, "uid %u also listens on port %u of the host", (unsigned)other, (unsigned)port);
  return r == 1;
}
