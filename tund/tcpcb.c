/*
 * tund/tcpcb.c — lwIP's side of a connection: the pcb callbacks (error,
 * sent, received, connected, accepted, ICMP unreachable), attaching a pcb to
 * a connection and detaching it, aborting, and the translation between
 * lwIP's types (addresses, err_t) and the program's.  The callbacks stay
 * here; other files reach lwIP's connect and listen through
 * conn_pcb_connect() and conn_pcb_listen().
 */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include "lwip/priv/tcp_priv.h"
#include "lwip/ip_addr.h"
#include "lwip/tcp.h"
#include "tund.h"
#include "conn.h"
#include "nat.h"
#include "lwip_glue.h"

/* ---- lwIP's types and the program's ------------------------------------------ */

/* A request's address -> lwIP's (a v4-mapped address is IPv4 to lwIP). */
int ipaddr_from_ipc(const struct enoipc_addr *a, int domain, ip_addr_t *ip)
{
  if (a->family == AF_INET) {
    if (domain != AF_INET)
      return EAFNOSUPPORT;
    IP_ADDR4(ip, a->addr[0], a->addr[1], a->addr[2], a->addr[3]);
    return 0;
  }
  if (a->family == AF_INET6) {
    if (domain != AF_INET6)
      return EAFNOSUPPORT;
    static const uint8_t mapped[12] = { 0,0,0,0,0,0,0,0,0,0,0xff,0xff };
    if (!memcmp(a->addr, mapped, 12)) {
      IP_ADDR4(ip, a->addr[12], a->addr[13], a->addr[14], a->addr[15]);
      return 0;
    }
    ip_addr_t t;
    memset(&t, 0, sizeof(t));
    IP_SET_TYPE_VAL(t, IPADDR_TYPE_V6);
    memcpy(ip_2_ip6(&t)->addr, a->addr, 16);
    ip6_addr_clear_zone(ip_2_ip6(&t));
    *ip = t;
    return 0;
  }
  return EAFNOSUPPORT;
}

/* lwIP address -> what the program expects: v4-mapped for AF_INET6 sockets. */
void ipaddr_to_shm(const ip_addr_t *ip, u16_t port, int domain, struct enoshm_addr *out)
{
  memset(out, 0, sizeof(*out));
  out->port = port;
  if (IP_IS_ANY_TYPE_VAL(*ip)) {
    /* a dual-stack socket bound to the wildcard (IPV6_V6ONLY off): lwIP's
     * "any type" is "::" to the program, as the kernel says it, not the
     * v4-mapped 0.0.0.0 the branch below would make of it */
    out->family = (uint16_t)domain;
    return;
  }
  if (IP_IS_V6(ip)) {
    out->family = AF_INET6;
    memcpy(out->addr, ip_2_ip6(ip)->addr, 16);
  } else if (domain == AF_INET6) {
    out->family = AF_INET6;
    out->addr[10] = out->addr[11] = 0xff;
    memcpy(out->addr + 12, &ip_2_ip4(ip)->addr, 4);
  } else {
    out->family = AF_INET;
    memcpy(out->addr, &ip_2_ip4(ip)->addr, 4);
  }
}

/* lwIP's err_t -> the errno a program expects */
int lwip_err_to_errno(err_t e)
{
  switch (e) {
  case ERR_OK: return 0;
  case ERR_MEM: return ENOBUFS;
  case ERR_BUF: return ENOBUFS;
  case ERR_TIMEOUT: return ETIMEDOUT;
  case ERR_RTE: return ENETUNREACH;
  case ERR_INPROGRESS: return EINPROGRESS;
  case ERR_VAL: return EINVAL;
  case ERR_WOULDBLOCK: return EWOULDBLOCK;
  case ERR_USE: return EADDRINUSE;
  case ERR_ALREADY: return EALREADY;
  case ERR_ISCONN: return EISCONN;
  case ERR_CONN: return ENOTCONN;
  case ERR_IF: return ENETDOWN;
  case ERR_ABRT: return ECONNABORTED;
  case ERR_RST: return ECONNRESET;
  case ERR_CLSD: return ENOTCONN;
  case ERR_ARG: return EINVAL;
  default: return EIO;
  }
}

/* ---- attaching, detaching, aborting ------------------------------------------ */

/* Drop every pcb callback that points at c (within or outside a callback). */
void pcb_detach(struct tcp_pcb *pcb)
{
  if (!pcb)
    return;
  tcp_arg(pcb, NULL);
  if (pcb->state == LISTEN) {
    tcp_accept(pcb, NULL);
    return;
  }
  tcp_recv(pcb, NULL);
  tcp_sent(pcb, NULL);
  tcp_err(pcb, NULL);
  tcp_poll(pcb, NULL, 0);
}

/* The pcb the last tcp_abort() freed.  An lwIP callback must return
 * ERR_ABRT exactly when it freed its pcb that way, not whenever the conn
 * died: a conn that ends inside a callback by tcp_close() (the peer's FIN
 * completing a close the program started) leaves lwIP a live pcb, and
 * ERR_ABRT would make tcp_input() skip the ACK of that FIN — the peer then
 * held the connection for a retransmission timeout (~1 s) on every
 * encrypted connection the client closed first. */
static struct tcp_pcb *cb_aborted;

static err_t cb_ret(const struct tcp_pcb *pcb)
{
  if (pcb && cb_aborted == pcb) {
    cb_aborted = NULL;
    return ERR_ABRT;
  }
  return ERR_OK;
}

/* Abort (RST) and fail. */
void conn_abort(struct conn *c, int err)
{
  struct tcp_pcb *pcb = c->pcb;
  c->pcb = NULL;
  if (pcb) {
    pcb_detach(pcb);
    if (pcb->state == LISTEN) {
      tcp_close(pcb);
    } else {
      tcp_abort(pcb);
      cb_aborted = pcb;
    }
  }
  conn_fail(c, err);
}

/* ---- lwIP callbacks ---------------------------------------------------------- */

static void on_err(void *arg, err_t err)
{
  struct conn *c = arg;
  if (!c || c->dead)
    return;
  c->pcb = NULL;           /* lwIP freed it */
  int e = lwip_err_to_errno(err);
  /* A reset while connect() waits: answering the SYN, the kernel's
   * ECONNREFUSED; after TCP's handshake (the TEP's still running), the
   * connection had been accepted and is reset: ECONNRESET. */
  if (c->st.state == ENOSHM_S_CONNECTING && err == ERR_RST)
    e = c->tcp_up ? ECONNRESET : ECONNREFUSED;
  if (c->st.state == ENOSHM_S_CONNECTING && err == ERR_ABRT)
    e = c->connect_errno ? c->connect_errno : ETIMEDOUT;
  if (c->closing) {
    /* the program already closed: nobody to tell */
    conn_release(c);
    return;
  }
  if (err == ERR_CLSD) {
    /* An orderly end of TCP (both FINs acknowledged).  What the program has
     * not read yet is still delivered: tund keeps the connection until the
     * queue is in the ring and EOF is published (conn_rx_pump). */
    c->fin_in = 1;
    c->draining = 1;
    conn_rx_pump(c);
    return;
  }
  if (err == ERR_RST && c->fin_in)
    e = EPIPE;    /* like Linux: a reset answering our data in CLOSE-WAIT */
  conn_fail(c, e);
}

static err_t on_sent(void *arg, struct tcp_pcb *pcb, u16_t len)
{
  struct conn *c = arg;
  if (!c || c->dead)
    return ERR_OK;
  cb_aborted = NULL;
  crypt_on_acked(c, len);
  if (!c->crypt) {
    uint64_t n = len;
    if (n > c->tx_read - c->tx_cons)
      n = c->tx_read - c->tx_cons;
    c->tx_cons += n;
    atomic_store_explicit(&c->shm->tx_cons, c->tx_cons, memory_order_release);
  }
  if (c->closing) {
    if (conn_tx_all_acked(c)) {
      pcb_detach(pcb);
      conn_release(c);
    }
    return ERR_OK;
  }
  conn_update_writable(c);
  conn_tx_pump(c);
  return cb_ret(pcb);
}

static err_t on_recv(void *arg, struct tcp_pcb *pcb, struct pbuf *p, err_t err)
{
  struct conn *c = arg;
  (void)err;
  if (!c || c->dead) {
    if (p) {
      tcp_recved(pcb, p->tot_len);
      pbuf_free(p);
    }
    return ERR_OK;
  }
  if (!p) {
    c->fin_in = 1;
  } else if (rxq_push(c, p)) {
    return ERR_MEM;      /* lwIP keeps it as refused data and retries */
  }
  cb_aborted = NULL;
  conn_rx_pump(c);
  return cb_ret(pcb);
}

/* c takes pcb: its callbacks and the options the program set. */
void conn_setup_pcb(struct conn *c, struct tcp_pcb *pcb)
{
  c->pcb = pcb;
  tcp_arg(pcb, c);
  tcp_recv(pcb, on_recv);
  tcp_sent(pcb, on_sent);
  tcp_err(pcb, on_err);
  if (c->nodelay)
    tcp_nagle_disable(pcb);
  if (c->keepalive) {
    ip_set_option(pcb, SOF_KEEPALIVE);
    if (c->keep_idle)
      pcb->keep_idle = c->keep_idle;
    if (c->keep_intvl)
      pcb->keep_intvl = c->keep_intvl;
    if (c->keep_cnt)
      pcb->keep_cnt = c->keep_cnt;
  }
}

/* The pcb's addresses into c's status (conn_publish() shows them). */
void conn_set_addrs(struct conn *c)
{
  if (!c->pcb)
    return;
  ipaddr_to_shm(&c->pcb->local_ip, c->pcb->local_port, c->domain, &c->st.local);
  ipaddr_to_shm(&c->pcb->remote_ip, c->pcb->remote_port, c->domain, &c->st.remote);
}

/* The TCP connection exists (both opens); the TEP may still have work. */
void conn_established(struct conn *c)
{
  c->st.state = ENOSHM_S_ESTABLISHED;
  if (c->pcb)
    c->snd_sml = c->pcb->lastack;
  conn_publish(c);
  conn_update_writable(c);
  if (c->listener) {
    struct conn *l = c->listener;
    c->listener = NULL;
    l->n_embryonic--;
    listener_deliver(l, c);
  }
  conn_tx_pump(c);
  conn_rx_pump(c);
}

static err_t on_connected(void *arg, struct tcp_pcb *pcb, err_t err)
{
  struct conn *c = arg;
  if (!c || c->dead)
    return ERR_OK;
  (void)err;
  cb_aborted = NULL;
  c->tcp_up = 1;
  conn_set_addrs(c);
  c->st.local.port = pcb->local_port;
  if (crypt_start(c))
    return cb_ret(pcb);   /* TEP handshake first */
  conn_established(c);
  return cb_ret(pcb);
}

/* A connection from another host that a published port steered into lwIP:
 * its local address is the one the peer dialed (the host's own), not lwIP's
 * private one, as getsockname() on a kernel socket would say.  The helper
 * reads it from conntrack (tund/nat.h) — a round trip to another process,
 * so not for every connection: only when the program asks getsockname()
 * (the shim sees ENOSHM_F_LOCAL_LAZY and sends GETOPT ENOIPC_SO_DIALED) or
 * enoctl status lists it.  Without an answer lwIP's address stays. */
static void conn_local_later(struct conn *c, const struct tcp_pcb *pcb)
{
  c->dial_fam = IP_IS_V6(&pcb->remote_ip) ? 6 : 4;
  memset(c->dial_raddr, 0, sizeof(c->dial_raddr));
  if (c->dial_fam == 6)
    memcpy(c->dial_raddr, ip_2_ip6(&pcb->remote_ip)->addr, 16);
  else
    memcpy(c->dial_raddr, &ip_2_ip4(&pcb->remote_ip)->addr, 4);
  c->dial_rport = pcb->remote_port;
  c->dial_lport = pcb->local_port;
  c->st.flags |= ENOSHM_F_LOCAL_LAZY;
}

void conn_local_resolve(struct conn *c)
{
  uint8_t la[16];
  if (!(c->st.flags & ENOSHM_F_LOCAL_LAZY))
    return;
  c->st.flags &= ~ENOSHM_F_LOCAL_LAZY;
  int e = nat_origdst(c->dial_fam, c->dial_raddr, c->dial_rport, c->dial_lport, la);
  if (e) {
    log_debug("conn %llu: the address the peer dialed is unknown (%s): getsockname says lwIP's",
              (unsigned long long)c->serial, strerror(e));
  } else {
    ip_addr_t ip;
    if (c->dial_fam == 6) {
      memset(&ip, 0, sizeof(ip));
      IP_SET_TYPE_VAL(ip, IPADDR_TYPE_V6);
      memcpy(ip_2_ip6(&ip)->addr, la, 16);
      ip6_addr_clear_zone(ip_2_ip6(&ip));
    } else {
      IP_ADDR4(&ip, la[0], la[1], la[2], la[3]);
    }
    ipaddr_to_shm(&ip, c->dial_lport, c->domain, &c->st.local);
  }
  if (c->shm)
    conn_publish(c);
}

static err_t on_accept(void *arg, struct tcp_pcb *npcb, err_t err)
{
  struct conn *l = arg;
  int e, pfd;
  if (!l || l->dead || err != ERR_OK || !npcb)
    return ERR_VAL;
  /* its descriptors were promised at the SYN (listener_admit): they are
   * slack of the reserve from here on, which conn_new() may take */
  if (glue_admission_redeem(npcb))
    fd_promise_release();
  struct conn *c = conn_new(l->domain, l->id | SPARE_KEY_LISTENER, &e, &pfd);
  if (!c) {
    tund_log_limited(LOG_WARN_, "cannot take an incoming connection: %s", strerror(e));
    tcp_abort(npcb);
    return ERR_ABRT;
  }
  c->kind = CK_STREAM;
  c->pfd = pfd;
  c->pfd_valid = 1;
  c->pid = l->pid;
  memcpy(c->users, l->users, sizeof(c->users));   /* the listener's holders see it */
  c->n_users = l->n_users;
  c->nodelay = l->nodelay;
  c->keepalive = l->keepalive;
  c->keep_idle = l->keep_idle;
  c->keep_intvl = l->keep_intvl;
  c->keep_cnt = l->keep_cnt;
  c->linger0 = l->linger0;
  c->listener = l;
  l->n_embryonic++;
  c->accepted = 1;
  c->tcp_up = 1;
  crypt_inherit_opts(c, l);
  conn_setup_pcb(c, npcb);
  conn_set_addrs(c);
  if (l->published)
    conn_local_later(c, npcb);
  c->st.state = ENOSHM_S_CONNECTING;
  cb_aborted = NULL;
  if (crypt_start(c))
    return cb_ret(npcb);
  conn_established(c);
  return cb_ret(npcb);
}

/* An ICMP error ended a connection attempt (stack/lwip_glue.c). */
static void on_unreachable(struct tcp_pcb *pcb, int err)
{
  struct conn *c = pcb->callback_arg;
  if (!c || c->dead || c->pcb != pcb)
    return;
  c->connect_errno = err;
  conn_abort(c, err);
}

/* A router on the way to the peer cannot carry our segments (ICMPv6 Packet
 * Too Big, stack/lwip_glue.c), what Linux handles in tcp_v6_mtu_reduced and
 * tcp_simple_retransmit.  lwIP keeps its segments and its MSS (its windows,
 * retransmissions and congestion window are counted in them; a segment
 * larger than a congestion window cut to a smaller MSS would never leave):
 * the kernel's segmentation cuts every TCP packet to this peer to the path
 * MTU as it leaves the TUN (tun_pmtu_note, tund/tun.c), and everything
 * unacknowledged goes again now rather than after a retransmission
 * timeout.  IPv6's minimum MTU (1280) bounds what a message can ask (RFC
 * 8201 section 4). */
static void on_pmtu(struct tcp_pcb *pcb, u32_t mtu)
{
  if (mtu < 1280)
    mtu = 1280;
  if (!IP_IS_V6(&pcb->remote_ip) || mtu >= (u32_t)pcb->mss + 60u)
    return;
  if (!tun_pmtu_note((const uint8_t *)ip_2_ip6(&pcb->remote_ip)->addr, mtu))
    return;                        /* known already: its retransmission is under way */
  tund_log_limited(LOG_INFO_, "path MTU to port %u of a peer: %u (ICMPv6 Packet Too Big): packets cut to it",
                   (unsigned)pcb->remote_port, (unsigned)mtu);
  if (pcb->unacked)
    tcp_rexmit_rto(pcb);
}

/* ---- making a pcb, connecting, listening ------------------------------------- */

/* A pcb for c (bind, listen, connect before either): 0 or an errno. */
int conn_ensure_pcb(struct conn *c, u8_t type)
{
  if (c->pcb)
    return 0;
  struct tcp_pcb *pcb = tcp_new_ip_type(type);
  if (!pcb)
    return ENOBUFS;
  if (c->reuseaddr)
    ip_set_option(pcb, SOF_REUSEADDR);
  c->pcb = pcb;
  tcp_arg(pcb, c);
  tcp_err(pcb, on_err);
  return 0;
}

/* The SYN (conn_connect): on_connected() follows, or on_err(). */
err_t conn_pcb_connect(struct conn *c, const ip_addr_t *ip, u16_t port)
{
  return tcp_connect(c->pcb, ip, port, on_connected);
}

/* c's pcb listens (conn_listen); lwIP's accept callback takes what
 * arrives.  0 or an errno. */
int conn_pcb_listen(struct conn *c)
{
  err_t le;
  struct tcp_pcb *lpcb = tcp_listen_with_backlog_and_err(c->pcb, 255, &le);
  if (!lpcb)
    return lwip_err_to_errno(le);
  c->pcb = lpcb;
  tcp_arg(lpcb, c);
  tcp_accept(lpcb, on_accept);
  return 0;
}

/* At start: lwIP's glue reports ICMP errors for connection attempts here. */
void conn_pcb_init(void)
{
  glue_on_unreachable = on_unreachable;
  glue_on_pmtu = on_pmtu;
}
