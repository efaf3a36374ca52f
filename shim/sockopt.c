/*
 * shim/sockopt.c — getsockopt(), setsockopt() and ioctl() on the sockets the
 * shim owns: what the shim answers itself (settings it keeps, the ENO
 * results in the shared status block), what it posts to tund without
 * waiting (options it has checked), what waits for tund's answer; and
 * enorun's per-program ENO settings (ENOSHIM_ENO_*) applied to each new
 * socket.
 */
#include <errno.h>
#include <poll.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "tcpinc.h"
#include "shim.h"

/* ---- option values, and the way to tund -------------------------------------- */

/* An int option value out: EINVAL if it does not fit. */
int put_int(void *val, socklen_t *len, int v)
{
  if (!val || !len || *len < (socklen_t)sizeof(int)) {
    errno = EINVAL;
    return -1;
  }
  memcpy(val, &v, sizeof(v));
  *len = sizeof(v);
  return 0;
}

/* An int option value in: EINVAL if there is none. */
int get_int(const void *val, socklen_t len, int *out)
{
  if (!val || len < (socklen_t)sizeof(int)) {
    errno = EINVAL;
    return -1;
  }
  memcpy(out, val, sizeof(int));
  return 0;
}

static int forward_setopt(struct shim_sock *s, int level, int name, const void *val, socklen_t len)
{
  struct enoipc_opt o = { .level = level, .name = name, .len = (uint32_t)len };
  int err;
  if (len > ENOIPC_OPT_MAX) {
    errno = EINVAL;
    return -1;
  }
  int r = ctl_call(ENOIPC_SETOPT, s->id, &o, sizeof(o), val, len, NULL, 0, &err, NULL, NULL, NULL, NULL, NULL);
  if (r == 0 && err == EBADF) {
    /* tund already forgot this connection (it ended): like the kernel,
     * accept generic options on a closed socket; ENO options are moot */
    struct enoshm_status st;
    enoshm_status_read(s->shm, &st);
    if (st.state == ENOSHM_S_CLOSED)
      err = (level == IPPROTO_TCP && name >= TCPINC_OPT_BASE) ? EINVAL : 0;
  }
  if (r) {
    errno = ENETDOWN;
    return -1;
  }
  if (err) {
    errno = err;
    return -1;
  }
  return 0;
}

/* An option the shim has already validated and that tund applies without
 * fail (conn_setopt: TCP_NODELAY, keepalive, SO_LINGER, SO_REUSE*): posted
 * without waiting for the answer, as a kernel setsockopt would not block.
 * Servers set TCP_NODELAY on every accepted connection; a round trip to tund
 * there was a sleep and a wake-up per connection. */
static int post_setopt(struct shim_sock *s, int level, int name, const void *val, socklen_t len)
{
  struct enoipc_opt o = { .level = level, .name = name, .len = (uint32_t)len };
  if (len > ENOIPC_OPT_MAX) {
    errno = EINVAL;
    return -1;
  }
  if (ctl_post(ENOIPC_SETOPT_POSTED, s->id, &o, sizeof(o), val, len)) {
    errno = ENETDOWN;
    return -1;
  }
  return 0;
}

/*
 * The ENO options a program sets between socket() and connect() — which
 * TEPs' AEADs to offer, whether to resume, ENO on or off — would each cost a
 * round trip to tund, like a second connect.  tund refuses them only when
 * the SYN is out (EISCONN) or a malformed value (EINVAL); both are known
 * here for a socket this process alone holds, so such an option is checked
 * here and posted.  Options with more to check (TCP_ENO_TEPS, _RAW), with
 * side effects (TCP_ENO_TEP_MANDATORY, _CACHE_FLUSH, _REKEY) and any
 * socket another process may hold still wait for tund's answer: there the
 * order of the two processes' requests at tund, not ours, decides whether
 * the option is in force for a connect the other one makes.
 */
static int eno_opt_postable(const struct shim_sock *s, int name, const void *val, socklen_t len)
{
  int v;
  /* made by socket() here (not accepted, not attached), not yet connecting */
  if (s->kind != SK_STREAM || s->cache_tag != SHM_OWN || s->connect_started || s->shared || !val || len < 1)
    return 0;
  switch (name) {
  case TCP_CRYPT_ACONF:
  case TCP_CRYPT_BCONF:
    return enoipc_aead_list_ok(val, len);
  case TCP_ENO_ENABLED:
  case TCP_ENO_SELF_GOPT:
  case TCP_ENO_AA_MANDATORY:
  case TCP_CRYPT_NORESUME:
  case TCP_CRYPT_NOCACHE:
    if (len < (socklen_t)sizeof(int))
      return 0;
    memcpy(&v, val, sizeof(v));
    return enoipc_eno_int_ok(name, v);
  default:
    return 0;
  }
}

static int forward_getopt(struct shim_sock *s, int level, int name, void *val, socklen_t *len)
{
  struct enoipc_opt o = { .level = level, .name = name, .len = len ? (uint32_t)*len : 0 };
  uint8_t buf[ENOIPC_OPT_MAX];
  size_t bl = sizeof(buf);
  int err;
  if (!len || !val) {
    errno = EFAULT;
    return -1;
  }
  if (o.len > ENOIPC_OPT_MAX)
    o.len = ENOIPC_OPT_MAX;
  int r = ctl_call(ENOIPC_GETOPT, s->id, &o, sizeof(o), NULL, 0, NULL, 0, &err, buf, &bl, NULL, NULL, NULL);
  if (r) {
    errno = ENETDOWN;
    return -1;
  }
  if (err) {
    errno = err;
    return -1;
  }
  if (bl > *len)
    bl = *len;
  memcpy(val, buf, bl);
  *len = (socklen_t)bl;
  return 0;
}

/* ---- enorun's ENO settings --------------------------------------------------- */

static int shim_env_warned;

/* enorun's per-program ENO settings (ENOSHIM_ENO_*), applied to every new
 * socket as if the program had called setsockopt() itself. */
void sock_apply_env_opts(struct shim_sock *s)
{
  const char *e = getenv("ENOSHIM_ENO_ENABLED");
  if (e && *e) {
    int v = atoi(e);
    if (forward_setopt(s, IPPROTO_TCP, TCP_ENO_ENABLED, &v, sizeof(v)) == 0)
      s->eno_off = v == 0;
  }
  e = getenv("ENOSHIM_ENO_MANDATORY");
  if (e && *e) {
    int v = atoi(e) != 0;
    if (forward_setopt(s, IPPROTO_TCP, TCP_ENO_TEP_MANDATORY, &v, sizeof(v)) == 0)
      s->tep_mandatory = v;
  }
  e = getenv("ENOSHIM_ENO_TEPS");
  if (e && *e) {
    uint8_t teps[32];
    size_t n = 0;
    char buf[256];
    snprintf(buf, sizeof(buf), "%s", e);
    char *save = NULL;
    for (char *tok = strtok_r(buf, ", ", &save); tok && n < sizeof(teps); tok = strtok_r(NULL, ", ", &save))
      teps[n++] = (uint8_t)strtoul(tok, NULL, 16);
    if (forward_setopt(s, IPPROTO_TCP, TCP_ENO_TEPS, teps, (socklen_t)n) && !shim_env_warned++)
      shim_log("ENOSHIM_ENO_TEPS=%s refused by tund (%s)", e, strerror(errno));
  }
}

/* ---- options that change nothing here ------------------------------------------
 *
 * Options the kernel keeps per TCP socket that mean nothing for a stream
 * tund carries, or that tund does not apply: setsockopt accepts and
 * remembers them, getsockopt answers what was set, else the kernel's
 * default for a connected TCP socket (Linux 6.x, default sysctls).  Programs
 * read them to decide things (sshd: IP_OPTIONS to refuse source routing,
 * SO_BINDTODEVICE for its routing domain); an error where the kernel
 * answers made them log or give up. */
static const struct inert_opt {
  int level, name, def, settable;
} inert_opts[] = {
  { SOL_SOCKET, SO_PRIORITY, 0, 1 },        { SOL_SOCKET, SO_OOBINLINE, 0, 1 },
  { SOL_SOCKET, SO_BROADCAST, 0, 1 },       { SOL_SOCKET, SO_DONTROUTE, 0, 1 },
  { SOL_SOCKET, SO_TIMESTAMP, 0, 1 },       { SOL_SOCKET, SO_TIMESTAMPNS, 0, 1 },
  { SOL_SOCKET, SO_BUSY_POLL, 0, 0 },       { SOL_SOCKET, SO_ZEROCOPY, 0, 0 },
  { SOL_SOCKET, SO_NO_CHECK, 0, 0 },        { SOL_SOCKET, SO_MARK, 0, 0 },
  { SOL_SOCKET, SO_INCOMING_CPU, 0, 0 },    { SOL_SOCKET, SO_BINDTOIFINDEX, 0, 0 },
  { SOL_SOCKET, SO_PEEK_OFF, -1, 0 },       { IPPROTO_IP, IP_TRANSPARENT, 0, 0 },
  { IPPROTO_IP, IP_MULTICAST_TTL, 1, 1 },   { IPPROTO_IP, IP_HDRINCL, 0, 0 },
  { IPPROTO_IP, IP_TTL, 64, 1 },            { IPPROTO_IP, IP_RECVTOS, 0, 1 },
  { IPPROTO_IP, IP_FREEBIND, 0, 1 },        { IPPROTO_IP, IP_PKTINFO, 0, 1 },
  { IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 0, 1 }, { IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_WANT, 1 },
  { IPPROTO_IPV6, IPV6_UNICAST_HOPS, 64, 1 },
  { IPPROTO_TCP, TCP_DEFER_ACCEPT, 0, 1 },  { IPPROTO_TCP, TCP_QUICKACK, 1, 1 },
  { IPPROTO_TCP, TCP_USER_TIMEOUT, 0, 1 },  { IPPROTO_TCP, TCP_FASTOPEN, 0, 1 },
  { IPPROTO_TCP, TCP_NOTSENT_LOWAT, 0, 1 }, { IPPROTO_TCP, TCP_SYNCNT, 6, 1 },
  { IPPROTO_TCP, TCP_LINGER2, 60, 1 },      { IPPROTO_TCP, TCP_THIN_LINEAR_TIMEOUTS, 0, 1 },
  { IPPROTO_TCP, TCP_INQ, 0, 1 },           { IPPROTO_TCP, TCP_FASTOPEN_CONNECT, 0, 1 },
  { IPPROTO_TCP, TCP_TX_DELAY, 0, 1 },      { IPPROTO_TCP, TCP_WINDOW_CLAMP, 65536, 1 },
};
_Static_assert(sizeof(inert_opts) / sizeof(inert_opts[0]) <= 40, "inert_set, inert_val: 40 options");

static int inert_find(int level, int name)
{
  for (size_t i = 0; i < sizeof(inert_opts) / sizeof(inert_opts[0]); i++)
    if (inert_opts[i].level == level && inert_opts[i].name == name)
      return (int)i;
  return -1;
}

/* 0 answered, 1 not one of them, -1 with errno */
static int inert_get(struct shim_sock *s, int level, int name, void *val, socklen_t *len)
{
  int i = inert_find(level, name);
  if (i < 0)
    return 1;
  if (level == IPPROTO_IPV6 && s->domain != AF_INET6)
    return 1;
  return put_int(val, len, (s->inert_set >> i) & 1 ? s->inert_val[i] : inert_opts[i].def);
}

static int inert_set(struct shim_sock *s, int level, int name, const void *val, socklen_t len)
{
  int v, i = inert_find(level, name);
  if (i < 0 || !inert_opts[i].settable || (level == IPPROTO_IPV6 && s->domain != AF_INET6))
    return 1;
  if (get_int(val, len, &v))
    return -1;
  pthread_mutex_lock(&s->lock);
  s->inert_val[i] = v;
  s->inert_set |= 1ull << i;
  pthread_mutex_unlock(&s->lock);
  return 0;
}

/* Bytes out as the kernel copies them: at most *len, *len set to what was. */
static int put_bytes(void *val, socklen_t *len, const void *p, size_t n)
{
  if (!val || !len) {
    errno = EFAULT;
    return -1;
  }
  if ((size_t)*len < n)
    n = *len;
  memcpy(val, p, n);
  *len = (socklen_t)n;
  return 0;
}

/* ---- getsockopt -------------------------------------------------------------- */

int shim_eno_opt_readonly(int name)
{
  switch (name) {
  case TCP_ENO_SESSID: case TCP_ENO_NEGTEP: case TCP_ENO_PEER_GOPT: case TCP_ENO_ROLE:
  case TCP_ENO_SELF_NAME: case TCP_ENO_PEER_NAME: case TCP_ENO_TRANSCRIPT: case TCP_CRYPT_CONF:
  case TCP_ENO_STATE:
    return 1;
  default:
    return 0;
  }
}

/* The read-only ENO/tcpcrypt options come straight from the shared status
 * block; the draft's errors (api-06 §2.1): ENOTCONN while negotiating,
 * EINVAL when ENO is disabled. */
static int eno_getopt_local(struct shim_sock *s, int name, void *val, socklen_t *len)
{
  struct enoshm_status st;
  uint8_t buf[1 + TCPINC_SESSID_MAX];
  size_t n;
  enoshm_status_read(s->shm, &st);
  if (name == TCP_ENO_STATE)
    return put_int(val, len, st.eno_state);
  if (name == TCP_ENO_TRANSCRIPT) {
    /* available in raw mode as well */
    if (st.transcript_len == 0) {
      errno = st.eno_state == TCPINC_STATE_NEGOTIATING ? ENOTCONN : EINVAL;
      return -1;
    }
    n = st.transcript_len > TCPINC_TRANSCRIPT_MAX ? TCPINC_TRANSCRIPT_MAX : st.transcript_len;
    goto bytes_from_transcript;
  }
  if (st.eno_state == TCPINC_STATE_NEGOTIATING) {
    errno = ENOTCONN;
    return -1;
  }
  if (st.eno_state != TCPINC_STATE_ENCRYPTING || st.raw) {
    errno = EINVAL;
    return -1;
  }
  switch (name) {
  case TCP_ENO_NEGTEP:
    return put_int(val, len, st.negtep);
  case TCP_ENO_PEER_GOPT:
    return put_int(val, len, st.peer_gopt);
  case TCP_ENO_ROLE:
    return put_int(val, len, st.role);
  case TCP_CRYPT_CONF:
    if (!st.aead) {
      errno = EINVAL;
      return -1;
    }
    return put_int(val, len, st.aead);
  case TCP_ENO_SESSID:
  case TCP_ENO_SELF_NAME:
  case TCP_ENO_PEER_NAME: {
    size_t sl = st.sessid_len > TCPINC_SESSID_MAX ? TCPINC_SESSID_MAX : st.sessid_len;
    if (sl == 0) {
      errno = EINVAL;      /* never an empty ID (RFC 8547 §5.1; docs/DESIGN.md) */
      return -1;
    }
    if (name == TCP_ENO_SESSID) {
      memcpy(buf, st.sessid, sl);
      n = sl;
    } else {
      /* api-06 §2.1: role byte | session ID; the peer's name negates it */
      buf[0] = (uint8_t)(name == TCP_ENO_SELF_NAME ? st.role : !st.role);
      memcpy(buf + 1, st.sessid, sl);
      n = 1 + sl;
    }
    if (!val || !len) {
      errno = EFAULT;
      return -1;
    }
    if (*len < (socklen_t)n) {
      errno = EINVAL;
      return -1;
    }
    memcpy(val, buf, n);
    *len = (socklen_t)n;
    return 0;
  }
  default:
    return 1;   /* not a local one */
  }
bytes_from_transcript:
  if (!val || !len) {
    errno = EFAULT;
    return -1;
  }
  if (*len < (socklen_t)n) {
    errno = EINVAL;
    return -1;
  }
  memcpy(val, st.transcript, n);
  *len = (socklen_t)n;
  return 0;
}

int sock_getsockopt(int fd, struct shim_sock *s, int level, int name, void *val, socklen_t *len)
{
  if (level == SOL_SOCKET) {
    switch (name) {
    case SO_ERROR: {
      struct enoshm_status st;
      enoshm_status_read(s->shm, &st);
      int e = 0;
      if (st.error && !s->err_reported) {
        e = st.error;
        s->err_reported = 1;
      } else if (!st.error && !s->tund_gone && s->kind == SK_STREAM && st.state != ENOSHM_S_CLOSED &&
                 !(st.flags & ENOSHM_F_DEAD)) {
        /* tund died under the connection (its end of the pair is gone
         * while the status says nothing ended): a reset, said once */
        struct pollfd p = { .fd = fd, .events = 0 };
        if (poll(&p, 1, 0) == 1 && (p.revents & POLLHUP)) {
          s->tund_gone = 1;
          e = ECONNRESET;
        }
      }
      return put_int(val, len, e);
    }
    case SO_TYPE: return put_int(val, len, SOCK_STREAM);
    case SO_DOMAIN: return put_int(val, len, s->domain);
    case SO_PROTOCOL: return put_int(val, len, IPPROTO_TCP);
    case SO_ACCEPTCONN: return put_int(val, len, s->kind == SK_LISTENER);
    case SO_REUSEADDR: return put_int(val, len, s->reuseaddr);
    case SO_REUSEPORT: return put_int(val, len, s->reuseport);
    case SO_KEEPALIVE: return put_int(val, len, s->keepalive);
    case SO_RCVBUF: return put_int(val, len, (int)s->rx_size);
    case SO_SNDBUF: return put_int(val, len, (int)s->tx_size);
    case SO_LINGER: {
      struct linger lg = { .l_onoff = s->linger_on, .l_linger = s->linger_sec };
      if (!val || !len || *len < (socklen_t)sizeof(lg)) {
        errno = EINVAL;
        return -1;
      }
      memcpy(val, &lg, sizeof(lg));
      *len = sizeof(lg);
      return 0;
    }
    case SO_RCVTIMEO:
    case SO_SNDTIMEO:
    case SO_RCVLOWAT:
    case SO_SNDLOWAT:
      return real.getsockopt(fd, level, name, val, len);
    case SO_BINDTODEVICE:
      return put_bytes(val, len, "", 0);     /* bound to no device: an empty name */
    case SO_PEERCRED: {
      /* what Linux gives for a socket that is not AF_UNIX */
      struct ucred cr = { .pid = 0, .uid = (uid_t)-1, .gid = (gid_t)-1 };
      return put_bytes(val, len, &cr, sizeof(cr));
    }
    case SO_COOKIE:
      return real.getsockopt(fd, level, name, val, len);   /* our end's: unique as well */
    case SO_MAX_PACING_RATE: {
      uint64_t v = ~0ull;              /* unlimited; an int's worth if that is all the room */
      return put_bytes(val, len, &v, len && *len >= (socklen_t)sizeof(v) ? sizeof(v) : sizeof(int));
    }
    default: {
      int r = inert_get(s, level, name, val, len);
      if (r <= 0)
        return r;
      errno = ENOPROTOOPT;
      return -1;
    }
    }
  }
  if (level == IPPROTO_TCP) {
    switch (name) {
    case TCP_NODELAY: return put_int(val, len, s->nodelay);
    case TCP_CORK: return put_int(val, len, s->cork);
    case TCP_KEEPIDLE: return put_int(val, len, s->keep_idle);
    case TCP_KEEPINTVL: return put_int(val, len, s->keep_intvl);
    case TCP_KEEPCNT: return put_int(val, len, s->keep_cnt);
    case TCP_CONGESTION: {
      /* lwIP's congestion control is NewReno-like; the kernel copies its
       * whole TCP_CA_NAME_MAX (16) bytes, zero-padded */
      static const char cc[16] = "reno";
      return put_bytes(val, len, cc, sizeof(cc));
    }
    case TCP_ULP:
      return put_bytes(val, len, "", 0);     /* no upper-layer protocol */
    case TCP_MAXSEG: {
      /* Linux, before a connection has one: the value set, else
       * TCP_MSS_DEFAULT (536) */
      struct enoshm_status st;
      sock_status(s, &st);
      if (s->kind == SK_LISTENER || st.state < ENOSHM_S_ESTABLISHED)
        return put_int(val, len, s->user_mss ? s->user_mss : 536);
      return forward_getopt(s, level, name, val, len);
    }
    case TCP_INFO:
      return forward_getopt(s, level, name, val, len);
    default:
      int ri = inert_get(s, level, name, val, len);
      if (ri <= 0)
        return ri;
      if (name >= TCPINC_OPT_BASE && name < TCPINC_OPT_BASE + 0x100) {
        /* read-only results come from the shared status block; the
         * read-write settings (api-06: "return the previously successfully
         * written value or the default") from tund, in any state */
        if (shim_eno_opt_readonly(name)) {
          int r = eno_getopt_local(s, name, val, len);
          if (r <= 0)
            return r;
        }
        return forward_getopt(s, level, name, val, len);
      }
      errno = ENOPROTOOPT;
      return -1;
    }
  }
  if (level == IPPROTO_IPV6 && s->domain == AF_INET6) {
    if (name == IPV6_V6ONLY) return put_int(val, len, s->v6only);
    if (name == IPV6_TCLASS) return put_int(val, len, s->tclass);
  }
  if (level == IPPROTO_IP && name == IP_TOS)
    return put_int(val, len, s->tos);
  if (level == IPPROTO_IP && name == IP_OPTIONS)
    return put_bytes(val, len, "", 0);       /* none (sshd refuses source-routed clients by this) */
  if ((level == IPPROTO_IP && name == IP_MTU) || (level == IPPROTO_IPV6 && name == IPV6_MTU && s->domain == AF_INET6)) {
    /* the path MTU lwIP uses: its MSS and the headers it leaves out */
    int mss = 0;
    socklen_t ml = sizeof(mss);
    if (forward_getopt(s, IPPROTO_TCP, TCP_MAXSEG, &mss, &ml))
      return -1;
    struct enoshm_status st;
    sock_status(s, &st);
    if (st.state != ENOSHM_S_ESTABLISHED) {
      errno = ENOTCONN;
      return -1;
    }
    return put_int(val, len, mss + (st.remote.family == AF_INET6 ? 60 : 40));
  }
  if (level == IPPROTO_IP || level == IPPROTO_IPV6) {
    int r = inert_get(s, level, name, val, len);
    if (r <= 0)
      return r;
  }
  errno = ENOPROTOOPT;
  return -1;
}

/* ---- setsockopt -------------------------------------------------------------- */

int sock_setsockopt(int fd, struct shim_sock *s, int level, int name, const void *val, socklen_t len)
{
  int v = 0;
  if (level == SOL_SOCKET) {
    switch (name) {
    case SO_REUSEADDR:
    case SO_REUSEPORT:
    case SO_KEEPALIVE:
      if (get_int(val, len, &v))
        return -1;
      if (name == SO_REUSEADDR) s->reuseaddr = v != 0;
      if (name == SO_REUSEPORT) s->reuseport = v != 0;
      if (name == SO_KEEPALIVE) s->keepalive = v != 0;
      if (s->kfd >= 0)
        real.setsockopt(s->kfd, level, name, val, len);
      return post_setopt(s, level, name, val, len);
    case SO_LINGER: {
      struct linger lg;
      if (!val || len < (socklen_t)sizeof(lg)) {
        errno = EINVAL;
        return -1;
      }
      memcpy(&lg, val, sizeof(lg));
      s->linger_on = lg.l_onoff != 0;
      s->linger_sec = lg.l_linger;
      return post_setopt(s, level, name, val, len);
    }
    case SO_RCVBUF:
    case SO_SNDBUF:
    case SO_RCVBUFFORCE:
    case SO_SNDBUFFORCE:
      /* The rings are the buffers; their size is tund's ring_size.  Kept to
       * carry over to a kernel socket; getsockopt reports the ring size. */
      if (get_int(val, len, &v))
        return -1;
      if (name == SO_RCVBUF || name == SO_RCVBUFFORCE) s->rcvbuf = v;
      else s->sndbuf = v;
      return 0;
    case SO_RCVTIMEO:
    case SO_SNDTIMEO:
      /* applied to our end of the pair: blocking waits honour them */
      return real.setsockopt(fd, level, name, val, len);
    case SO_RCVLOWAT:
    case SO_SNDLOWAT:
      /* meaningless or inert for a TCP stream carried by tund: accepted */
      if (get_int(val, len, &v))
        return -1;
      return 0;
    default: {
      int r = inert_set(s, level, name, val, len);   /* SO_PRIORITY, SO_OOBINLINE, ... */
      if (r <= 0)
        return r;
      errno = ENOPROTOOPT;
      return -1;
    }
    }
  }
  if (level == IPPROTO_TCP) {
    switch (name) {
    case TCP_NODELAY:
      if (get_int(val, len, &v))
        return -1;
      s->nodelay = v != 0;
      return post_setopt(s, level, name, val, len);
    case TCP_KEEPIDLE:
    case TCP_KEEPINTVL:
    case TCP_KEEPCNT:
      if (get_int(val, len, &v))
        return -1;
      if (v < 1 || v > 32767) {
        errno = EINVAL;
        return -1;
      }
      if (name == TCP_KEEPIDLE) s->keep_idle = v;
      if (name == TCP_KEEPINTVL) s->keep_intvl = v;
      if (name == TCP_KEEPCNT) s->keep_cnt = v;
      return post_setopt(s, level, name, val, len);
    case TCP_CORK:
      /* lwIP has no cork; data is sent as written (Nagle permitting) */
      if (get_int(val, len, &v))
        return -1;
      s->cork = v != 0;
      return 0;
    case TCP_MAXSEG:
      /* kept to answer getsockopt before a connection (lwIP takes the
       * path's MSS); Linux's bounds: 0, or TCP_MIN_MSS (88) .. 65535 */
      if (get_int(val, len, &v))
        return -1;
      if (v && (v < 88 || v > 65535)) {
        errno = EINVAL;
        return -1;
      }
      s->user_mss = v;
      return 0;
    case TCP_CONGESTION:
      errno = ENOENT;
      return -1;
    default:
      {
        int ri = inert_set(s, level, name, val, len);   /* TCP_DEFER_ACCEPT, TCP_QUICKACK, ... */
        if (ri <= 0)
          return ri;
      }
      if (name >= TCPINC_OPT_BASE && name < TCPINC_OPT_BASE + 0x100) {
        int r = eno_opt_postable(s, name, val, len) ? post_setopt(s, level, name, val, len)
                                                    : forward_setopt(s, level, name, val, len);
        if (r == 0 && !s->connect_started && name != TCP_CRYPT_CACHE_FLUSH && name != TCP_CRYPT_REKEY)
          relisten_note_opt(s, name, val, len);      /* a listener's are given again by RELISTEN */
        if (r == 0 && (name == TCP_ENO_TEP_MANDATORY || name == TCP_ENO_ENABLED) &&
            get_int(val, len, &v) == 0) {
          if (name == TCP_ENO_TEP_MANDATORY)
            s->tep_mandatory = v != 0;
          else
            s->eno_off = v == 0;       /* for the outcome line (outcome.c) */
        }
        return r;
      }
      errno = ENOPROTOOPT;
      return -1;
    }
  }
  if (level == IPPROTO_IPV6 && s->domain == AF_INET6) {
    if (name == IPV6_V6ONLY) {
      if (get_int(val, len, &v))
        return -1;
      if (s->bound || s->connect_started || s->kind == SK_LISTENER) {
        errno = EINVAL;
        return -1;
      }
      s->v6only = v != 0;
      return forward_setopt(s, level, name, val, len);
    }
    if (name == IPV6_TCLASS) {
      if (get_int(val, len, &v))
        return -1;
      s->tclass = v;
      return 0;
    }
  }
  if (level == IPPROTO_IP && name == IP_TOS) {
    if (get_int(val, len, &v))
      return -1;
    s->tos = v;
    return 0;
  }
  if (level == IPPROTO_IP || level == IPPROTO_IPV6) {
    int r = inert_set(s, level, name, val, len);    /* IP_TTL, IP_RECVTOS, ... */
    if (r <= 0)
      return r;
  }
  errno = ENOPROTOOPT;
  return -1;
}

/* ---- ioctl ------------------------------------------------------------------- */

int sock_ioctl(int fd, struct shim_sock *s, unsigned long req, void *arg)
{
  switch (req) {
  case FIONREAD: {
    uint64_t prod = atomic_load_explicit(&s->shm->rx_prod, memory_order_acquire);
    uint64_t cons = atomic_load_explicit(&s->shm->rx_cons, memory_order_relaxed);
    int v = 0;
    if (s->kind == SK_LISTENER) {
      errno = EINVAL;
      return -1;
    }
    if (prod - cons <= s->rx_size)
      v = (int)(prod - cons);
    if (!arg) {
      errno = EFAULT;
      return -1;
    }
    memcpy(arg, &v, sizeof(v));
    return 0;
  }
  case SIOCOUTQ: {
    uint64_t prod = atomic_load_explicit(&s->shm->tx_prod, memory_order_relaxed);
    uint64_t cons = atomic_load_explicit(&s->shm->tx_cons, memory_order_acquire);
    int v = prod - cons <= s->tx_size ? (int)(prod - cons) : 0;
    if (!arg) {
      errno = EFAULT;
      return -1;
    }
    memcpy(arg, &v, sizeof(v));
    return 0;
  }
  case SIOCATMARK: {
    int v = 0;
    if (!arg) {
      errno = EFAULT;
      return -1;
    }
    memcpy(arg, &v, sizeof(v));
    return 0;
  }
  default:
    /* FIONBIO, FIOCLEX, FIONCLEX... act on the real fd */
    return real.ioctl(fd, req, arg);
  }
}
