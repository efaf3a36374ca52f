/*
 * shim/sockopt.c — getsockopt(), setsockopt() and ioctl() on the sockets the
 * shim owns: what the shim answers itself (settings it keeps, the ENO
 * results in the shared status block), what it posts to tund without
 * waiting (options it has checked), what waits for tund's answer; and
 * enorun's per-program ENO settings (ENOSHIM_ENO_*) applied to each new
 * socket.
 */
#include <errno.h>
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
    forward_setopt(s, IPPROTO_TCP, TCP_ENO_ENABLED, &v, sizeof(v));
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
      errno = EINVAL;      /* never an empty ID (SPEC-NOTES, RFC 8547 §5.1) */
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
    default:
      errno = ENOPROTOOPT;
      return -1;
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
      /* lwIP's congestion control is NewReno-like */
      static const char cc[] = "reno";
      if (!val || !len) {
        errno = EFAULT;
        return -1;
      }
      socklen_t n = *len < (socklen_t)sizeof(cc) ? *len : (socklen_t)sizeof(cc);
      memcpy(val, cc, n);
      *len = n;
      return 0;
    }
    case TCP_MAXSEG:
    case TCP_INFO:
      return forward_getopt(s, level, name, val, len);
    default:
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
    case SO_PRIORITY:
    case SO_RCVLOWAT:
    case SO_SNDLOWAT:
    case SO_OOBINLINE:
    case SO_BROADCAST:
    case SO_DONTROUTE:
    case SO_TIMESTAMP:
      /* meaningless or inert for a TCP stream carried by tund: accepted */
      if (get_int(val, len, &v))
        return -1;
      return 0;
    default:
      errno = ENOPROTOOPT;
      return -1;
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
    case TCP_DEFER_ACCEPT:
    case TCP_QUICKACK:
    case TCP_USER_TIMEOUT:
    case TCP_FASTOPEN:
    case TCP_WINDOW_CLAMP:
    case TCP_MAXSEG:
      if (get_int(val, len, &v))
        return -1;
      return 0;
    case TCP_CONGESTION:
      errno = ENOENT;
      return -1;
    default:
      if (name >= TCPINC_OPT_BASE && name < TCPINC_OPT_BASE + 0x100) {
        if (eno_opt_postable(s, name, val, len))
          return post_setopt(s, level, name, val, len);
        int r = forward_setopt(s, level, name, val, len);
        if (r == 0 && name == TCP_ENO_TEP_MANDATORY && get_int(val, len, &v) == 0)
          s->tep_mandatory = v != 0;
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
