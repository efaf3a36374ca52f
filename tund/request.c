/*
 * tund/request.c — what a program asks of its sockets (client.c parses the
 * control messages, these execute them): socket, bind, listen, connect,
 * options, shutdown, the sockets a fork shares, ATTACH after exec or
 * SCM_RIGHTS, enoctl's status and commands.  Each returns 0 or
 * a positive errno for the program.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <linux/tcp.h>
#include <unistd.h>

#include "lwip/ip_addr.h"
#include "lwip/tcp.h"
#include "lwip/priv/tcp_priv.h"
#include "lwip/sys.h"
#include "tund.h"
#include "conn.h"
#include "nat.h"
#include "lwip_glue.h"

/* ---- socket ------------------------------------------------------------------ */

int conn_socket(struct client *cl, int domain, int v6only, uint64_t *id, int fds[2], uint32_t *shm_size)
{
  int err, pfd;
  if (domain != AF_INET && domain != AF_INET6)
    return EAFNOSUPPORT;
  struct conn *c = conn_new(domain, client_spare_key(cl), &err, &pfd);
  if (!c)
    return err;
  c->v6only = v6only;
  c->kind = CK_NEW;
  conn_publish(c);
  *id = c->id;
  fds[0] = pfd;
  fds[1] = dup(c->memfd);
  if (fds[1] < 0) {
    close(pfd);
    conn_release(c);
    return ENOBUFS;
  }
  *shm_size = (uint32_t)c->shm_len;
  return 0;
}

/* ---- bind, listen, connect --------------------------------------------------- */

static int addr_is_lwip_local(const ip_addr_t *ip)
{
  if (ip_addr_isany(ip))
    return 1;
  if (IP_IS_V4(ip))
    return !memcmp(&ip_2_ip4(ip)->addr, &cfg.lwip4, 4);
  return cfg.have_v6 && !memcmp(ip_2_ip6(ip)->addr, &cfg.lwip6, 16);
}

int conn_bind(struct conn *c, const struct enoipc_addr *a, int kernel_bound, struct enoipc_addr *bound)
{
  ip_addr_t ip;
  int e;
  if (c->kind != CK_NEW || c->st.state != ENOSHM_S_NEW)
    return EINVAL;
  if ((e = ipaddr_from_ipc(a, c->domain, &ip)))
    return e;
  /* neither the kernel nor lwIP owns this address */
  if (!kernel_bound && !addr_is_lwip_local(&ip))
    return EADDRNOTAVAIL;
  /* An address that is not lwIP's (the host's own, which the program's kernel
   * listener covers) binds lwIP to "any" of the family. */
  u8_t type = IP_IS_V6(&ip) ? IPADDR_TYPE_V6 : IPADDR_TYPE_V4;
  if (c->domain == AF_INET6 && !c->v6only && ip_addr_isany(&ip))
    type = IPADDR_TYPE_ANY;
  if (!addr_is_lwip_local(&ip)) {
    if (IP_IS_V6(&ip))
      ip = *IP6_ADDR_ANY;
    else
      ip = *IP4_ADDR_ANY;
  }
  if (type == IPADDR_TYPE_ANY)
    ip = *IP_ANY_TYPE;
  if ((e = conn_ensure_pcb(c, type)))
    return e;
  err_t le = tcp_bind(c->pcb, &ip, a->port);
  if (le != ERR_OK)
    return lwip_err_to_errno(le);
  c->st.state = ENOSHM_S_BOUND;
  ipaddr_to_shm(&c->pcb->local_ip, c->pcb->local_port, c->domain, &c->st.local);
  conn_publish(c);
  memset(bound, 0, sizeof(*bound));
  bound->family = c->st.local.family;
  bound->port = c->pcb->local_port;
  memcpy(bound->addr, c->st.local.addr, 16);
  return 0;
}

int conn_listen(struct conn *c, int backlog, int kfd)
{
  int e;
  if (c->kind == CK_LISTENER) {
    /* listen() again only changes the backlog */
    c->backlog = backlog > 0 ? backlog : 1;
    if (kfd >= 0)
      close(kfd);
    return 0;
  }
  if (c->kind != CK_NEW) {
    if (kfd >= 0)
      close(kfd);
    return EINVAL;
  }
  if (!c->pcb) {
    u8_t type = c->domain == AF_INET ? IPADDR_TYPE_V4 : (c->v6only ? IPADDR_TYPE_V6 : IPADDR_TYPE_ANY);
    if ((e = conn_ensure_pcb(c, type))) {
      if (kfd >= 0) close(kfd);
      return e;
    }
    if (tcp_bind(c->pcb, IP_IS_ANY_TYPE_VAL(c->pcb->local_ip) ? IP_ANY_TYPE : &c->pcb->local_ip, 0) != ERR_OK) {
      if (kfd >= 0) close(kfd);
      return EADDRINUSE;
    }
  }
  if ((e = conn_pcb_listen(c))) {
    if (kfd >= 0)
      close(kfd);
    return e;
  }
  crypt_listen_setup(c);
  c->kind = CK_LISTENER;
  c->backlog = backlog > 0 ? (backlog > 65535 ? 65535 : backlog) : 1;
  c->st.state = ENOSHM_S_LISTENING;
  ipaddr_to_shm(&c->pcb->local_ip, c->pcb->local_port, c->domain, &c->st.local);
  conn_publish(c);
  /* Listening on "any" (not on lwIP's own address only): other hosts
   * dialing this host's real addresses on the port reach it (tund/nat.h),
   * if the program holds that port of the host (access.c) */
  char why[120];
  int publish = ip_addr_isany(&c->pcb->local_ip) && c->pcb->local_port;
  if (publish && !access_kfd_holds_port(kfd, c->pcb->local_port, why, sizeof(why))) {
    tund_log_limited(LOG_WARN_, "listener %llu: port %u not published to other hosts: %s",
                     (unsigned long long)c->serial, c->pcb->local_port, why);
    publish = 0;
  }
  if (kfd >= 0)
    listener_add_kernel(c, kfd);
  if (publish) {
    c->published = c->pcb->local_port;
    nat_publish(c->published);
  }
  return 0;
}

/* The program keeps copies of tund's end of a listener's pair and of its
 * memory, so that the listener can be handed to the next tund if this one
 * dies (shim/relisten.c, listener.c conn_relisten).  Copies only: the
 * program holds its own end anyway, and this end lets it write nothing we
 * read but its own doorbells and accept records to itself. */
int conn_kept_ends(struct conn *c, int fds[2])
{
  if (c->kind != CK_LISTENER || c->tfd < 0 || c->memfd < 0)
    return 0;
  fds[0] = fcntl(c->tfd, F_DUPFD_CLOEXEC, 0);
  fds[1] = fcntl(c->memfd, F_DUPFD_CLOEXEC, 0);
  if (fds[0] >= 0 && fds[1] >= 0)
    return 2;
  if (fds[0] >= 0)
    close(fds[0]);
  if (fds[1] >= 0)
    close(fds[1]);
  return 0;                    /* out of descriptors: the listener just will not outlive us */
}

int conn_connect(struct conn *c, const struct enoipc_addr *a)
{
  ip_addr_t ip;
  int e;
  if (c->kind == CK_LISTENER)
    return EINVAL;
  if (c->kind == CK_STREAM)
    return c->st.state == ENOSHM_S_CONNECTING ? EALREADY : EISCONN;
  if ((e = ipaddr_from_ipc(a, c->domain, &ip)))
    return e;
  if (ip_addr_isany(&ip))
    return ECONNREFUSED;
  if (c->pcb && !IP_IS_ANY_TYPE_VAL(c->pcb->local_ip) &&
      IP_GET_TYPE(&c->pcb->local_ip) != IP_GET_TYPE(&ip)) {
    /* bound to the other family's "any": lwIP wants matching types */
    if (!ip_addr_isany(&c->pcb->local_ip))
      return EINVAL;
    IP_SET_TYPE_VAL(c->pcb->local_ip, IP_GET_TYPE(&ip));
  }
  if ((e = conn_ensure_pcb(c, IP_GET_TYPE(&ip))))
    return e;
  conn_setup_pcb(c, c->pcb);
  c->kind = CK_STREAM;
  c->st.state = ENOSHM_S_CONNECTING;
  ipaddr_to_shm(&ip, a->port, c->domain, &c->st.remote);
  if ((e = crypt_connect_setup(c, a->port))) {
    c->kind = CK_NEW;
    c->st.state = ENOSHM_S_NEW;
    return e;
  }
  int had_port = c->pcb->local_port != 0;
  err_t le = conn_pcb_connect(c, &ip, a->port);
  if (le != ERR_OK) {
    c->kind = CK_NEW;
    c->st.state = ENOSHM_S_NEW;
    /* tcp_connect() says ERR_BUF when tcp_new_port() found no free
     * ephemeral port: the kernel's EADDRNOTAVAIL */
    if (le == ERR_BUF && !had_port) {
      tund_log_limited(LOG_WARN_, "no free local port for an outgoing connection (%u in TIME-WAIT "
                       "at most: time_wait_max)", (unsigned)cfg.time_wait_max);
      return EADDRNOTAVAIL;
    }
    return lwip_err_to_errno(le);
  }
  /* lwIP's pcb is created with the full TCP_WND; our ring is the real limit. */
  conn_set_addrs(c);
  conn_publish(c);
  return 0;
}

/* ---- options ----------------------------------------------------------------- */

int conn_setopt(struct conn *c, int level, int name, const uint8_t *val, uint32_t len)
{
  int iv = 0;
  if (len >= sizeof(int))
    memcpy(&iv, val, sizeof(int));
  if (level == SOL_SOCKET) {
    switch (name) {
    case SO_REUSEADDR:
    case SO_REUSEPORT:
      if (len < sizeof(int)) return EINVAL;
      c->reuseaddr = iv != 0;
      if (c->pcb && c->pcb->state != LISTEN) {
        if (iv) ip_set_option(c->pcb, SOF_REUSEADDR);
        else ip_reset_option(c->pcb, SOF_REUSEADDR);
      }
      return 0;
    case SO_KEEPALIVE:
      if (len < sizeof(int)) return EINVAL;
      c->keepalive = iv != 0;
      if (c->pcb && c->pcb->state != LISTEN) {
        if (iv) ip_set_option(c->pcb, SOF_KEEPALIVE);
        else ip_reset_option(c->pcb, SOF_KEEPALIVE);
      }
      return 0;
    case SO_LINGER: {
      struct linger lg;
      if (len < sizeof(lg)) return EINVAL;
      memcpy(&lg, val, sizeof(lg));
      c->linger0 = lg.l_onoff && lg.l_linger == 0;
      return 0;
    }
    default:
      return ENOPROTOOPT;
    }
  }
  if (level == IPPROTO_IPV6 && name == IPV6_V6ONLY) {
    if (len < sizeof(int)) return EINVAL;
    if (c->kind != CK_NEW || c->st.state != ENOSHM_S_NEW) return EINVAL;
    c->v6only = iv != 0;
    return 0;
  }
  if (level == IPPROTO_TCP) {
    switch (name) {
    case TCP_NODELAY:
      if (len < sizeof(int)) return EINVAL;
      c->nodelay = iv != 0;
      if (c->pcb && c->pcb->state != LISTEN) {
        if (iv) tcp_nagle_disable(c->pcb);
        else tcp_nagle_enable(c->pcb);
        if (iv && c->st.state == ENOSHM_S_ESTABLISHED)
          tcp_output(c->pcb);
      }
      return 0;
    case TCP_KEEPIDLE:
    case TCP_KEEPINTVL:
    case TCP_KEEPCNT:
      if (len < sizeof(int) || iv < 1 || iv > 32767) return EINVAL;
      if (name == TCP_KEEPIDLE) c->keep_idle = (u32_t)iv * 1000u;
      if (name == TCP_KEEPINTVL) c->keep_intvl = (u32_t)iv * 1000u;
      if (name == TCP_KEEPCNT) c->keep_cnt = (u32_t)iv;
      if (c->pcb && c->pcb->state != LISTEN) {
        if (c->keep_idle) c->pcb->keep_idle = c->keep_idle;
        if (c->keep_intvl) c->pcb->keep_intvl = c->keep_intvl;
        if (c->keep_cnt) c->pcb->keep_cnt = c->keep_cnt;
      }
      return 0;
    default:
      return crypt_setopt(c, name, val, len);
    }
  }
  return ENOPROTOOPT;
}

/* A posted connect (the shim does not wait for the answer: shim/sock.c)
 * that tund refuses at once — no route, no free port, out of memory — ends
 * the socket with that error, as a connect that failed on the wire would:
 * the program's blocking connect(), SO_ERROR and poll learn it from the
 * status block.  A posted connect on a listener or on a socket already
 * connecting comes only from a program that did not follow the shim's rules
 * (it posts on a new socket nobody else holds): it must not end what may be
 * another process's listener or connection. */
void conn_connect_posted_failed(struct conn *c, int err)
{
  if (c->kind != CK_NEW) {     /* a listener (EINVAL), connecting or connected */
    tund_log_limited(LOG_WARN_, "posted connect on connection %llu: %s; ignored", (unsigned long long)c->serial,
                     strerror(err));
    return;
  }
  log_debug("posted connect on conn %llu refused: %s", (unsigned long long)c->serial, strerror(err));
  conn_abort(c, err);
}

/* The shim posts only options it checked would succeed (shim/sockopt.c).  One
 * that fails all the same (out of memory) is an option the program believes
 * in force: end the socket rather than let it connect without. */
void conn_posted_failed(struct conn *c, int level, int name, int err)
{
  tund_log_limited(LOG_WARN_, "posted option %d/%d on connection %llu failed: %s; aborting it", level, name,
                   (unsigned long long)c->serial, strerror(err));
  conn_abort(c, err);
}

int conn_getopt(struct conn *c, int level, int name, uint8_t *val, uint32_t *len)
{
  if (level == SOL_SOCKET && name == ENOIPC_SO_DIALED) {
    conn_local_resolve(c);     /* getsockname() of an accepted connection (tcpcb.c) */
    *len = 0;
    return 0;
  }
  if (level == IPPROTO_TCP) {
    if (name == TCP_MAXSEG) {
      int v = c->pcb && c->pcb->state != LISTEN ? c->pcb->mss : TCP_MSS;
      if (*len < sizeof(v)) return EINVAL;
      memcpy(val, &v, sizeof(v));
      *len = sizeof(v);
      return 0;
    }
    if (name == TCP_INFO) {
      struct tcp_info ti;
      memset(&ti, 0, sizeof(ti));
      if (c->pcb && c->pcb->state != LISTEN) {
        struct tcp_pcb *p = c->pcb;
        /* lwIP's enum tcp_state -> Linux's tcpi_state numbers */
        static const uint8_t map[] = { 7 /* CLOSE */, 10 /* LISTEN */, 2 /* SYN_SENT */,
                                       3 /* SYN_RECV */, 1 /* ESTABLISHED */, 4 /* FIN_WAIT1 */,
                                       5 /* FIN_WAIT2 */, 8 /* CLOSE_WAIT */, 11 /* CLOSING */,
                                       9 /* LAST_ACK */, 6 /* TIME_WAIT */ };
        ti.tcpi_state = p->state < sizeof(map) ? map[p->state] : 7;
        ti.tcpi_snd_mss = p->mss;
        ti.tcpi_rcv_mss = p->mss;
        ti.tcpi_rtt = (uint32_t)(p->sa >> 3) * TCP_SLOW_INTERVAL * 1000u;
        ti.tcpi_rttvar = (uint32_t)p->sv * TCP_SLOW_INTERVAL * 1000u;
        ti.tcpi_snd_cwnd = p->mss ? p->cwnd / p->mss : 0;
        ti.tcpi_snd_ssthresh = p->mss ? p->ssthresh / p->mss : 0;
        ti.tcpi_retransmits = p->nrtx;
      } else {
        ti.tcpi_state = c->kind == CK_LISTENER ? 10 : 7;
      }
      uint32_t n = *len < sizeof(ti) ? *len : (uint32_t)sizeof(ti);
      memcpy(val, &ti, n);
      *len = n;
      return 0;
    }
    return crypt_getopt(c, name, val, len);
  }
  return ENOPROTOOPT;
}

/* ---- shutdown, fork, attach -------------------------------------------------- */

int conn_shutdown(struct conn *c, int how)
{
  if (how != SHUT_RD && how != SHUT_WR && how != SHUT_RDWR)
    return EINVAL;
  if (c->kind == CK_LISTENER) {
    /* like Linux: shutting down a listener stops it; accept() then fails.
     * The pair is shut down first: the program's shim holds a copy of our
     * end (conn_kept_ends), so closing ours would not end its accept(). */
    if (c->tfd >= 0)
      shutdown(c->tfd, SHUT_RDWR);
    conn_abort(c, EINVAL);
    return 0;
  }
  if (c->kind != CK_STREAM || c->st.state == ENOSHM_S_CONNECTING)
    return ENOTCONN;
  if (c->st.state != ENOSHM_S_ESTABLISHED)
    return 0;
  if (how == SHUT_RD || how == SHUT_RDWR) {
    /* Linux: after SHUT_RD the socket polls readable (read() returns 0) */
    if (c->tfd >= 0 && !c->t_wr_shut) {
      shutdown(c->tfd, SHUT_WR);
      c->t_wr_shut = 1;
    }
  }
  if (how == SHUT_WR || how == SHUT_RDWR) {
    c->shut_wr_req = 1;
    conn_tx_pump(c);
  }
  return 0;
}

/* The shim's fork handler: a child is about to inherit these sockets. */
void conn_forked(const uint64_t *ids, size_t n)
{
  for (size_t i = 0; i < n; i++) {
    struct conn *c = conn_find(ids[i]);
    if (c)
      c->spare_key = 0;
  }
}

/* The fd sent is the program's end of a pair: holding it is the right to
 * the socket.  It is recognised by its socket cookie, which the kernel never
 * gives twice (inode numbers of sockets can come round again); by its inode
 * only where the kernel has no SO_COOKIE. */
int conn_attach(int pairfd, uint64_t *id, uint32_t *kind, int *memfd, uint32_t *shm_size)
{
  struct stat st;
  uint64_t cookie = 0;
  socklen_t cl = sizeof(cookie);
  if (fstat(pairfd, &st) || !S_ISSOCK(st.st_mode))
    return EBADF;
  if (getsockopt(pairfd, SOL_SOCKET, SO_COOKIE, &cookie, &cl) || cl != sizeof(cookie))
    cookie = 0;
  for (struct conn *c = conn_first(); c; c = c->next) {
    if (c->dead || c->p_ino != st.st_ino || c->p_cookie != cookie || c->memfd < 0)
      continue;
    *id = c->id;
    *kind = c->kind == CK_LISTENER ? ENOIPC_KIND_LISTENER : ENOIPC_KIND_STREAM;
    c->spare_key = 0;         /* mapped by a process we cannot vouch for */
    *memfd = dup(c->memfd);
    *shm_size = (uint32_t)c->shm_len;
    return *memfd < 0 ? ENOBUFS : 0;
  }
  return ENOENT;
}

/* ---- enoctl ------------------------------------------------------------------ */

/* The name of process pid (/proc/PID/comm, as ps shows it), "" if it cannot
 * be read (gone, or /proc hides it).  One listing asks for the same pid over
 * and over: the last answer is kept for the listing (fresh = a new one). */
static void program_name(pid_t pid, char out[16], int fresh)
{
  static pid_t last_pid;
  static char last[16];
  if (fresh || pid != last_pid) {
    char path[40];
    last_pid = pid;
    memset(last, 0, sizeof(last));
    snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
    int fd = pid > 0 ? open(path, O_RDONLY | O_CLOEXEC) : -1;
    if (fd >= 0) {
      ssize_t n = read(fd, last, sizeof(last) - 1);
      close(fd);
      if (n < 0)
        n = 0;
      last[n] = 0;
      char *nl = strchr(last, '\n');
      if (nl)
        *nl = 0;
    }
  }
  memcpy(out, last, 16);
}

struct conn *conn_status_next(struct conn *prev, struct enoipc_status_entry *e)
{
  struct conn *c = prev ? prev->next : conn_first();
  while (c && c->dead)
    c = c->next;
  if (!c)
    return NULL;
  memset(e, 0, sizeof(*e));
  e->id = c->serial;
  e->pid = (uint32_t)c->pid;
  program_name(c->pid, e->program, prev == NULL);
  e->age_s = (uint32_t)(sys_now() - c->created) / 1000u;
  e->kind = c->kind == CK_LISTENER ? ENOIPC_KIND_LISTENER : ENOIPC_KIND_STREAM;
  e->state = (uint8_t)c->st.state;
  e->eno_state = c->st.eno_state;
  e->eno_reason = c->st.eno_reason;
  e->role = c->st.role;
  e->negtep = c->st.negtep;
  e->aead = c->st.aead;
  e->sessid_len = c->st.sessid_len;
  e->resumed = c->st.resumed;
  memcpy(e->sessid, c->st.sessid, sizeof(e->sessid));
  e->tcp_state = c->pcb ? (uint8_t)c->pcb->state : 0;
  memcpy(&e->local, &c->st.local, sizeof(e->local));
  memcpy(&e->remote, &c->st.remote, sizeof(e->remote));
  e->rx_bytes = c->rx_bytes;
  e->tx_bytes = c->tx_bytes;
  crypt_status(c, e);
  return c;
}

/* enoctl check's answer is parts separated by "; ": where the next part
 * goes and how much room it has (NULL: none left) */
static char *check_part(char *out, size_t outlen, size_t *room)
{
  size_t n = strlen(out);
  if (n + 2 >= outlen)
    return NULL;
  out[n++] = ';';
  out[n++] = ' ';
  out[n] = 0;
  *room = outlen - n;
  return out + n;
}

int conn_command(uint32_t cmd, uint64_t arg, char *out, size_t outlen)
{
  switch (cmd) {
  case ENOIPC_CMD_STOP:
    snprintf(out, outlen, "stopping");
    loop_stop();
    return 0;
  case ENOIPC_CMD_REKEY:
  case ENOIPC_CMD_FLUSH_CACHE:
    return crypt_command(cmd, arg, out, outlen);
  case ENOIPC_CMD_CHECK: {
    int bad = glue_check_ports(out, outlen);
    size_t room;
    char *part = check_part(out, outlen, &room);
    if (part)
      bad |= conn_spares_check(part, room);
    if ((part = check_part(out, outlen, &room)))
      loop_poll_info(part, room);
    return bad ? EPROTO : 0;
  }
  default:
    return EINVAL;
  }
}
