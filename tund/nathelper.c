/*
 * tund/nathelper.c — the privileged helper of tund (tund/nat.h): the one
 * process of enoshim that keeps a capability, CAP_NET_ADMIN, and only to
 * edit nftables and the forwarding sysctls for lwIP's traffic.
 *
 * Privilege separation as in OpenSSH's monitor / OpenBSD's privsep daemons:
 * tund starts it (fork + exec of build/tund-nat, next to tund, its socket
 * on descriptor 3) before dropping every capability; it keeps CAP_NET_ADMIN and
 * nothing else (bounding set too, no_new_privs), holds no descriptor but its
 * socketpair end and stderr, and accepts exactly three fixed-size requests
 * (tund/natproto.c): publish a TCP port, withdraw it, and look up the
 * address a DNAT'd peer dialed.  A malformed request ends it (and with it
 * the published ports).  When tund's end closes — exit, crash or kill -9 —
 * it removes everything it made and exits.
 *
 * Rules (nftables, through libnftables):
 *
 *   table inet enoshim-<tun>            this tund's; deleted at exit, and at
 *     set ports                          start if a crashed tund left it
 *     chain prerouting  (nat, dstnat)   SYNs from the network for one of the
 *                                       host's own addresses and a published
 *                                       port: DNAT to lwIP
 *     chain postrouting (nat, srcnat)   lwIP's source addresses leaving by
 *                                       any other interface: masquerade
 *     chain forward     (filter)        into the TUN only replies and
 *                                       published flows
 *   table inet enoshim                  shared by the tunds of the host
 *     set tuns                          live enoshim TUNs
 *     set fwd4, fwd6, ra2               interfaces whose forwarding (or
 *                                       accept_ra) enoshim changed: restored
 *                                       when the last tund leaves
 *     chain forward     (filter)        forwarding that enoshim switched on
 *                                       carries only traffic of enoshim TUNs
 *
 * Forwarding.  IPv4 decides per *ingress* interface (net.ipv4.conf.X.
 * forwarding): lwIP's packets enter by the TUN, but the replies to its
 * masqueraded connections and the SYNs to published ports enter by the
 * host's other interfaces, so those need it too.  IPv6 forwarding is
 * host-wide (conf.all.forwarding), which also makes every interface ignore
 * router advertisements; where the kernel has the per-interface
 * force_forwarding switch (Linux 6.17) that is used instead, else interfaces
 * with accept_ra=1 get accept_ra=2 while enoshim runs.  Interfaces that
 * appear after tund started are not switched on (README, "Two machines").
 */
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <nftables/libnftables.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <libnetfilter_conntrack/libnetfilter_conntrack.h>

#include "nat.h"
#include "enoshim/version.h"

static struct nft_ctx *nft;
static struct mnl_socket *ct_nl;
static uint32_t ct_seq;
static struct nat_params P;
static char table[IFNAMSIZ + 16];       /* "enoshim-<tun>" */

static void hlog(const char *level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void hlog(const char *level, const char *fmt, ...)
{
  char buf[768];
  int n = snprintf(buf, sizeof(buf), "tund-nat[%d]: %s: ", (int)getpid(), level);
  va_list ap;
  va_start(ap, fmt);
  int m = vsnprintf(buf + n, sizeof(buf) - (size_t)n - 1, fmt, ap);
  va_end(ap);
  if (m < 0)
    m = 0;
  size_t len = (size_t)n + (size_t)m;
  if (len > sizeof(buf) - 2)
    len = sizeof(buf) - 2;
  for (size_t i = (size_t)n; i < len; i++)
    if (buf[i] == '\n')
      buf[i] = ' ';
  buf[len++] = '\n';
  ssize_t w = write(STDERR_FILENO, buf, len);
  (void)w;
}

/* ---- nftables ------------------------------------------------------------- */

/* Run nft commands; 0, or -1 with the first line of nft's error in err. */
static int nft_run(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int nft_run(char *err, size_t errlen, const char *fmt, ...)
{
  char cmd[4096];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(cmd, sizeof(cmd), fmt, ap);
  va_end(ap);
  if (n < 0 || (size_t)n >= sizeof(cmd)) {
    snprintf(err, errlen, "command too long");
    return -1;
  }
  int r = nft_run_cmd_from_buffer(nft, cmd);
  const char *e = nft_ctx_get_error_buffer(nft);
  if (r && err) {
    /* nft's message: the first line is the reason */
    const char *nl = e ? strchr(e, '\n') : NULL;
    snprintf(err, errlen, "%.*s", e ? (int)(nl ? nl - e : (long)strlen(e)) : 0, e ? e : "");
  }
  return r ? -1 : 0;
}

/* The quoted names of a set's elements, each handed to fn. */
static int nft_set_names(const char *set, void (*fn)(const char *name))
{
  char err[256];
  if (nft_run(err, sizeof(err), "list set inet enoshim %s", set))
    return -1;
  const char *out = nft_ctx_get_output_buffer(nft);
  const char *p = out ? strstr(out, "elements = {") : NULL;
  int n = 0;
  if (!p)
    return 0;
  const char *end = strchr(p, '}');
  for (p = strchr(p, '"'); p && (!end || p < end); p = strchr(p, '"')) {
    const char *q = strchr(p + 1, '"');
    if (!q)
      break;
    char name[IFNAMSIZ + 8];
    snprintf(name, sizeof(name), "%.*s", (int)(q - p - 1), p + 1);
    if (fn)
      fn(name);
    n++;
    p = q + 1;
  }
  return n;
}

/* ---- sysctls ---------------------------------------------------------------- */

/* /proc/sys/net/<proto>/conf/<ifname>/<leaf> */
struct sysctl_key {
  const char *proto, *leaf;
};
static const struct sysctl_key V4FWD = { "ipv4", "forwarding" }, V6FWD = { "ipv6", "forwarding" },
                               V6FORCE = { "ipv6", "force_forwarding" }, V6RA = { "ipv6", "accept_ra" };

static int sysctl_read(struct sysctl_key k, const char *ifname, int *v)
{
  char path[160], buf[16];
  snprintf(path, sizeof(path), "/proc/sys/net/%s/conf/%s/%s", k.proto, ifname, k.leaf);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return -1;
  ssize_t n = read(fd, buf, sizeof(buf) - 1);
  close(fd);
  if (n <= 0)
    return -1;
  buf[n] = 0;
  *v = atoi(buf);
  return 0;
}

static int sysctl_write(struct sysctl_key k, const char *ifname, int v)
{
  char path[160], buf[16];
  snprintf(path, sizeof(path), "/proc/sys/net/%s/conf/%s/%s", k.proto, ifname, k.leaf);
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0)
    return -1;
  int n = snprintf(buf, sizeof(buf), "%d", v);
  ssize_t w = write(fd, buf, (size_t)n);
  close(fd);
  return w == n ? 0 : -1;
}

static void restore_fwd4(const char *ifname) { sysctl_write(V4FWD, ifname, 0); }
static void restore_fwd6(const char *ifname)
{
  if (!strcmp(ifname, "all"))
    sysctl_write(V6FWD, "all", 0);
  else
    sysctl_write(V6FORCE, ifname, 0);
}
static void restore_ra2(const char *ifname) { sysctl_write(V6RA, ifname, 1); }

static int add_elem(const char *set, const char *ifname)
{
  char err[256];
  if (nft_run(err, sizeof(err), "add element inet enoshim %s { \"%s\" }", set, ifname)) {
    hlog("warning", "recording %s in set %s: %s", ifname, set, err);
    return -1;
  }
  return 0;
}

/* Switch forwarding on where lwIP's traffic needs it; each change recorded
 * in the shared table, to be undone by the last tund. */
static int forwarding_on(char *why, size_t whylen)
{
  struct if_nameindex *ifs = if_nameindex();
  int v;
  if (!ifs) {
    snprintf(why, whylen, "listing interfaces: %s", strerror(errno));
    return -1;
  }
  for (struct if_nameindex *i = ifs; i->if_index; i++) {
    if (!strcmp(i->if_name, "lo"))
      continue;
    if (sysctl_read(V4FWD, i->if_name, &v) == 0 && v == 0) {
      if (sysctl_write(V4FWD, i->if_name, 1)) {
        snprintf(why, whylen, "cannot switch on IPv4 forwarding on %s: %s", i->if_name, strerror(errno));
        if_freenameindex(ifs);
        return -1;
      }
      add_elem("fwd4", i->if_name);
    }
  }
  int all6 = 0;
  if (P.have_v6 && sysctl_read(V6FWD, "all", &all6) == 0 && all6 == 0) {
    int force_ok = sysctl_read(V6FORCE, P.tun_name, &v) == 0;
    if (!force_ok) {
      /* host-wide switch: keep interfaces that took router advertisements
       * taking them (accept_ra=1 stops doing so on a router; 2 does not) */
      for (struct if_nameindex *i = ifs; i->if_index; i++)
        if (strcmp(i->if_name, "lo") && sysctl_read(V6RA, i->if_name, &v) == 0 && v == 1 &&
            sysctl_write(V6RA, i->if_name, 2) == 0)
          add_elem("ra2", i->if_name);
      if (sysctl_write(V6FWD, "all", 1) == 0)
        add_elem("fwd6", "all");
      else
        hlog("warning", "cannot switch on IPv6 forwarding (%s): IPv6 to other hosts will not work",
             strerror(errno));
    }
    for (struct if_nameindex *i = ifs; i->if_index; i++) {
      if (!strcmp(i->if_name, "lo"))
        continue;
      if (force_ok) {
        if (sysctl_read(V6FORCE, i->if_name, &v) == 0 && v == 0 && sysctl_write(V6FORCE, i->if_name, 1) == 0)
          add_elem("fwd6", i->if_name);
      } else {
        add_elem("fwd6", i->if_name);      /* the guard covers every interface */
      }
    }
  }
  if_freenameindex(ifs);
  return 0;
}

/* ---- the lock: one tund at a time edits the shared table -------------------
 * An abstract unix socket name: no file, scoped to the network namespace
 * like the nftables state it protects, released by the kernel if we die. */
static int lock_fd = -1;

static int shared_lock(void)
{
  struct sockaddr_un sa = { .sun_family = AF_UNIX };
  static const char name[] = "enoshim-nat-lock";
  memcpy(sa.sun_path + 1, name, sizeof(name) - 1);
  socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + sizeof(name) - 1);
  for (int i = 0; i < 500; i++) {
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
      return -1;
    if (bind(fd, (struct sockaddr *)&sa, len) == 0) {
      lock_fd = fd;
      return 0;
    }
    close(fd);
    if (errno != EADDRINUSE)
      return -1;
    struct timespec ts = { 0, 10 * 1000 * 1000 };
    nanosleep(&ts, NULL);
  }
  errno = ETIMEDOUT;
  return -1;
}

static void shared_unlock(void)
{
  if (lock_fd >= 0)
    close(lock_fd);
  lock_fd = -1;
}

/* ---- set-up and tear-down ---------------------------------------------------- */

static void stale_tun(const char *ifname)
{
  char err[256];
  if (if_nametoindex(ifname) == 0)   /* its tund died and the TUN went with it */
    nft_run(err, sizeof(err), "delete element inet enoshim tuns { \"%s\" }", ifname);
}

/* Our TUN leaves the shared table (the shared lock held); the last one puts
 * back what enoshim switched on and removes the table.  Also after a failed
 * setup: by then the TUN may be in the set and forwarding switched on. */
static void leave_shared(void)
{
  char err[256];
  nft_run(NULL, 0, "delete element inet enoshim tuns { \"%s\" }", P.tun_name);
  nft_set_names("tuns", stale_tun);
  if (nft_set_names("tuns", NULL) == 0) {
    /* the last tund of the host: put back what enoshim switched on */
    nft_set_names("fwd4", restore_fwd4);
    nft_set_names("fwd6", restore_fwd6);
    nft_set_names("ra2", restore_ra2);
    if (nft_run(err, sizeof(err), "delete table inet enoshim"))
      hlog("warning", "removing table enoshim: %s", err);
  }
}

static int setup(char *why, size_t whylen)
{
  char err[256], a4[INET_ADDRSTRLEN], a6[INET6_ADDRSTRLEN];
  const char *tun = P.tun_name;
  inet_ntop(AF_INET, &P.lwip4, a4, sizeof(a4));
  inet_ntop(AF_INET6, &P.lwip6, a6, sizeof(a6));

  if (shared_lock()) {
    snprintf(why, whylen, "cannot take the shared lock: %s", strerror(errno));
    return -1;
  }
  /* a table of this TUN's name can only be a crashed tund's: we hold the TUN */
  nft_run(NULL, 0, "delete table inet %s", table);
  if (nft_run(err, sizeof(err),
              "add table inet enoshim { comment \"enoshim: forwarding guard shared by every tund of this host\"; }\n"
              "add set inet enoshim tuns { type ifname; comment \"live enoshim TUN devices\"; }\n"
              "add set inet enoshim fwd4 { type ifname; comment \"IPv4 forwarding switched on by enoshim\"; }\n"
              "add set inet enoshim fwd6 { type ifname; comment \"IPv6 forwarding switched on by enoshim\"; }\n"
              "add set inet enoshim ra2 { type ifname; comment \"accept_ra 1 -> 2 by enoshim\"; }\n")) {
    snprintf(why, whylen, "nftables: %s", err);
    goto fail;
  }
  nft_set_names("tuns", stale_tun);
  if (nft_run(NULL, 0, "list chain inet enoshim forward") &&
      nft_run(err, sizeof(err),
              "add chain inet enoshim forward { type filter hook forward priority filter - 5; policy accept; }\n"
              "add rule inet enoshim forward iifname @tuns accept\n"
              "add rule inet enoshim forward oifname @tuns accept\n"
              "add rule inet enoshim forward meta nfproto ipv4 iifname @fwd4 drop\n"
              "add rule inet enoshim forward meta nfproto ipv6 iifname @fwd6 drop\n")) {
    snprintf(why, whylen, "nftables: %s", err);
    goto fail;
  }
  char v6pre[256] = "", v6post[256] = "";
  if (P.have_v6) {
    snprintf(v6pre, sizeof(v6pre),
             "add rule inet %s prerouting iifname != { \"%s\", \"lo\" } fib daddr type local "
             "meta nfproto ipv6 tcp dport @ports dnat ip6 to %s\n", table, tun, a6);
    snprintf(v6post, sizeof(v6post),
             "add rule inet %s postrouting oifname != \"%s\" ip6 saddr %s masquerade\n", table, tun, a6);
  }
  if (nft_run(err, sizeof(err),
              "add table inet %s { comment \"enoshim: tund pid %d on %s (lwIP %s): published ports and "
              "masquerade; removed when tund exits\"; }\n"
              "add set inet %s ports { type inet_service; comment \"TCP ports programs under enoshim listen on\"; }\n"
              "add chain inet %s prerouting { type nat hook prerouting priority dstnat; policy accept; }\n"
              "add chain inet %s postrouting { type nat hook postrouting priority srcnat; policy accept; }\n"
              "add chain inet %s forward { type filter hook forward priority filter; policy accept; }\n"
              "add rule inet %s prerouting iifname != { \"%s\", \"lo\" } fib daddr type local "
              "meta nfproto ipv4 tcp dport @ports dnat ip to %s\n"
              "%s"
              "add rule inet %s postrouting oifname != \"%s\" ip saddr %s masquerade\n"
              "%s"
              "add rule inet %s forward oifname \"%s\" ct status dnat accept\n"
              "add rule inet %s forward oifname \"%s\" ct state established,related accept\n"
              "add rule inet %s forward oifname \"%s\" drop\n"
              "add element inet enoshim tuns { \"%s\" }\n",
              table, (int)getppid(), tun, a4, table, table, table, table, table, tun, a4, v6pre, table, tun, a4,
              v6post, table, tun, table, tun, table, tun, tun)) {
    snprintf(why, whylen, "nftables: %s", err);
    goto fail;
  }
  if (forwarding_on(why, whylen))
    goto fail;
  shared_unlock();
  return 0;
fail:
  nft_run(NULL, 0, "delete table inet %s", table);
  leave_shared();
  shared_unlock();
  return -1;
}

static void teardown(void)
{
  char err[256];
  if (shared_lock())
    hlog("warning", "tearing down without the shared lock: %s", strerror(errno));
  if (nft_run(err, sizeof(err), "delete table inet %s", table))
    hlog("warning", "removing table %s: %s", table, err);
  leave_shared();
  shared_unlock();
}

/* ---- requests ---------------------------------------------------------------- */

/* The flow raddr:rport <-> lwIP:port, looked up in conntrack by its reply
 * tuple (lwIP is the reply's source): the original tuple's destination is
 * what the peer dialed.  libnetfilter_conntrack builds the request and parses
 * the answer; libmnl carries it (nfct_query() insists on an original tuple). */
static int origdst(const struct natp_req *rq, struct natp_rep *rp)
{
  char buf[MNL_SOCKET_BUFFER_SIZE];
  int err = ENOENT;
  if (!ct_nl)
    return EOPNOTSUPP;
  struct nf_conntrack *ct = nfct_new();
  if (!ct)
    return ENOMEM;
  int fam = rq->family == 4 ? AF_INET : AF_INET6;
  struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
  nlh->nlmsg_type = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_GET;
  nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
  nlh->nlmsg_seq = ++ct_seq;
  struct nfgenmsg *nfh = mnl_nlmsg_put_extra_header(nlh, sizeof(*nfh));
  nfh->nfgen_family = (uint8_t)fam;
  nfh->version = NFNETLINK_V0;
  nfh->res_id = 0;
  /* the original tuple's family is mandatory to the library (it does not
   * make an original tuple of it alone); the rest is the reply tuple's */
  nfct_set_attr_u8(ct, ATTR_ORIG_L3PROTO, (uint8_t)fam);
  nfct_set_attr_u8(ct, ATTR_REPL_L3PROTO, (uint8_t)fam);
  if (fam == AF_INET) {
    uint32_t d;
    memcpy(&d, rq->raddr, 4);
    nfct_set_attr_u32(ct, ATTR_REPL_IPV4_SRC, P.lwip4.s_addr);
    nfct_set_attr_u32(ct, ATTR_REPL_IPV4_DST, d);
  } else {
    nfct_set_attr(ct, ATTR_REPL_IPV6_SRC, &P.lwip6);
    nfct_set_attr(ct, ATTR_REPL_IPV6_DST, rq->raddr);
  }
  nfct_set_attr_u8(ct, ATTR_REPL_L4PROTO, IPPROTO_TCP);
  nfct_set_attr_u16(ct, ATTR_REPL_PORT_SRC, htons(rq->port));
  nfct_set_attr_u16(ct, ATTR_REPL_PORT_DST, htons(rq->rport));
  /* The library always adds an original tuple (all zeros here), and the
   * kernel looks an entry up by the original tuple when there is one: build
   * into a scratch message, then keep every attribute but that one. */
  char scratch[MNL_SOCKET_BUFFER_SIZE];
  struct nlmsghdr *tmp = mnl_nlmsg_put_header(scratch);
  mnl_nlmsg_put_extra_header(tmp, sizeof(struct nfgenmsg));
  nfct_nlmsg_build(tmp, ct);
  nfct_destroy(ct);
  const struct nlattr *a;
  mnl_attr_for_each(a, tmp, sizeof(struct nfgenmsg)) {
    if (mnl_attr_get_type(a) == CTA_TUPLE_ORIG)
      continue;
    size_t al = MNL_ALIGN(a->nla_len);
    if (nlh->nlmsg_len + al > sizeof(buf))
      return EMSGSIZE;
    memcpy((char *)nlh + nlh->nlmsg_len, a, a->nla_len);
    nlh->nlmsg_len += (uint32_t)al;
  }
  uint32_t seq = nlh->nlmsg_seq;
  if (mnl_socket_sendto(ct_nl, nlh, nlh->nlmsg_len) < 0)
    return errno;
  /* The kernel answers in the sender's context: the entry (if any), then
   * the ack, are queued when sendto returns.  Read until the ack. */
  for (;;) {
    ssize_t n = recv(mnl_socket_get_fd(ct_nl), buf, sizeof(buf), MSG_DONTWAIT);
    if (n < 0)
      return errno == EAGAIN ? (err ? err : ENOENT) : errno;
    int left = (int)n;
    for (const struct nlmsghdr *h = (const struct nlmsghdr *)buf; mnl_nlmsg_ok(h, left);
         h = mnl_nlmsg_next(h, &left)) {
      if (h->nlmsg_seq != seq)
        continue;                         /* a stale answer: skip it */
      if (h->nlmsg_type == NLMSG_ERROR) {
        const struct nlmsgerr *e = mnl_nlmsg_get_payload(h);
        return e->error ? -e->error : err;   /* the ack ends the answer */
      }
      struct nf_conntrack *got = nfct_new();
      if (!got)
        return ENOMEM;
      if (nfct_nlmsg_parse(h, got) == 0 && (nfct_get_attr_u32(got, ATTR_STATUS) & IPS_DST_NAT)) {
        if (fam == AF_INET) {
          uint32_t v4 = nfct_get_attr_u32(got, ATTR_ORIG_IPV4_DST);
          memcpy(rp->addr, &v4, 4);
        } else {
          memcpy(rp->addr, nfct_get_attr(got, ATTR_ORIG_IPV6_DST), 16);
        }
        rp->family = rq->family;
        rp->port = ntohs(nfct_get_attr_u16(got, ATTR_ORIG_PORT_DST));
        err = 0;
      }
      nfct_destroy(got);
    }
  }
}

static int handle(const struct natp_req *rq, struct natp_rep *rp)
{
  char err[256];
  switch (rq->op) {
  case NATP_PUBLISH:
    if (nft_run(err, sizeof(err), "add element inet %s ports { %u }", table, (unsigned)rq->port)) {
      hlog("warning", "publishing port %u: %s", (unsigned)rq->port, err);
      return EIO;
    }
    return 0;
  case NATP_UNPUBLISH:
    if (nft_run(err, sizeof(err), "delete element inet %s ports { %u }", table, (unsigned)rq->port)) {
      hlog("warning", "withdrawing port %u: %s", (unsigned)rq->port, err);
      return EIO;
    }
    return 0;
  case NATP_ORIGDST:
    return origdst(rq, rp);
  default:
    return EINVAL;      /* natp_req_parse lets no other op through */
  }
}

/* ---- privileges ---------------------------------------------------------------- */

/* Keep CAP_NET_ADMIN in the effective and permitted sets and nothing else,
 * bounding set included, then no_new_privs. */
static int keep_net_admin(char *why, size_t whylen)
{
  for (int cap = 0; cap <= CAP_LAST_CAP; cap++)
    if (cap != CAP_NET_ADMIN && prctl(PR_CAPBSET_READ, cap, 0, 0, 0) == 1)
      (void)prctl(PR_CAPBSET_DROP, cap, 0, 0, 0);   /* needs CAP_SETPCAP; no_new_privs covers it */
  (void)prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
  cap_t caps = cap_init();
  cap_value_t keep[] = { CAP_NET_ADMIN };
  if (!caps || cap_set_flag(caps, CAP_EFFECTIVE, 1, keep, CAP_SET) ||
      cap_set_flag(caps, CAP_PERMITTED, 1, keep, CAP_SET) || cap_set_proc(caps)) {
    if (errno == EPERM)
      snprintf(why, whylen, "no CAP_NET_ADMIN: tund runs without it (a persistent TUN?), and nftables needs it");
    else
      snprintf(why, whylen, "keeping only CAP_NET_ADMIN: %s", strerror(errno));
    if (caps)
      cap_free(caps);
    return -1;
  }
  cap_free(caps);
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)) {
    snprintf(why, whylen, "no_new_privs: %s", strerror(errno));
    return -1;
  }
  return 0;
}

static void reply(int fd, const struct natp_rep *rp)
{
  uint8_t buf[NATP_REP_LEN];
  natp_rep_encode(rp, buf);
  ssize_t w = send(fd, buf, sizeof(buf), MSG_NOSIGNAL);
  (void)w;
}

int main(int argc, char **argv)
{
  char why[512] = "";
  struct natp_rep rp = { 0 };
  int fd = 3, type = 0;
  socklen_t tl = sizeof(type);
  /* the one version string, and a word for whoever runs it by hand */
  if (argc == 2 && !strcmp(argv[1], "--version")) {
    printf("tund-nat (enoshim) %s\n", ENOSHIM_VERSION);
    return 0;
  }
  if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
    printf("usage: tund-nat --tun NAME --lwip4 ADDR --lwip6 ADDR|none\n"
           "tund's helper: tund starts it, with its socket on descriptor 3, and it keeps\n"
           "CAP_NET_ADMIN alone for the host's nftables table and forwarding (tund(8)).\n");
    return 0;
  }
  if (natp_args_parse(argc, argv, &P)) {
    hlog("error", "usage: tund-nat --tun NAME --lwip4 ADDR --lwip6 ADDR|none (started by tund, "
                  "its socket on descriptor 3)");
    return 2;
  }
  if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) || type != SOCK_SEQPACKET) {
    hlog("error", "descriptor 3 is not tund's socket: tund-nat is started by tund");
    return 2;
  }
  prctl(PR_SET_NAME, "tund-nat");
  /* Only the end of tund's socket ends us (tund's exit, crash or kill -9
   * closes it): a signal to the whole process group (^C, kill -- -PGID)
   * must not kill us before we have put the host back. */
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  signal(SIGPIPE, SIG_IGN);
  signal(SIGHUP, SIG_IGN);
  signal(SIGINT, SIG_IGN);
  signal(SIGTERM, SIG_IGN);
  /* nothing of tund's but our socket and stderr */
  syscall(SYS_close_range, 4u, ~0u, 0u);
  snprintf(table, sizeof(table), "enoshim-%s", P.tun_name);

  int ok = keep_net_admin(why, sizeof(why)) == 0;
  if (ok && !(nft = nft_ctx_new(NFT_CTX_DEFAULT))) {
    snprintf(why, sizeof(why), "libnftables: cannot make a context");
    ok = 0;
  }
  if (ok) {
    nft_ctx_buffer_output(nft);
    nft_ctx_buffer_error(nft);
    ok = setup(why, sizeof(why)) == 0;
  }
  if (ok) {
    ct_nl = mnl_socket_open(NETLINK_NETFILTER);
    if (ct_nl && mnl_socket_bind(ct_nl, 0, MNL_SOCKET_AUTOPID) < 0) {
      mnl_socket_close(ct_nl);
      ct_nl = NULL;
    }
    if (!ct_nl)
      hlog("warning", "conntrack: %s: accepted connections will show lwIP's address as their local one",
           strerror(errno));
  }
  rp.err = ok ? 0 : EPERM;
  reply(fd, &rp);
  if (!ok) {
    /* the reason, for tund's one line about it */
    ssize_t w = send(fd, why, strnlen(why, sizeof(why)), MSG_NOSIGNAL);
    (void)w;
    _exit(1);
  }

  for (;;) {
    uint8_t buf[NATP_REQ_LEN + 1];
    struct natp_req rq;
    ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break;                              /* tund is gone */
    if (natp_req_parse(buf, (size_t)n, &rq)) {
      hlog("error", "malformed request (%zd bytes) from tund: stopping", n);
      break;
    }
    memset(&rp, 0, sizeof(rp));
    rp.seq = rq.seq;
    rp.err = handle(&rq, &rp);
    reply(fd, &rp);
  }
  teardown();
  if (ct_nl)
    mnl_socket_close(ct_nl);
  nft_ctx_free(nft);
  _exit(0);
}
