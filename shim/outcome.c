/*
 * shim/outcome.c — "is this connection encrypted?", answered on stderr.
 *
 * With ENOSHIM_DEBUG (enorun --debug), one line per connection once its
 * outcome is known:
 *
 *   enoshim[PID]: fd 5 -> 10.203.0.2:9000: encrypted (tcpcrypt-X25519, AES-128-GCM, session 23a1b2c3d4e5f607, fresh)
 *   enoshim[PID]: fd 7 <- 10.203.0.1:41234: plain TCP: the peer does not speak TCP-ENO
 *   enoshim[PID]: fd 5 -> 127.0.0.1:8080: plain TCP: direct route (loopback)
 *   enoshim[PID]: fd 5 -> 10.203.0.2:9000: failed: Connection refused
 *
 * ("->" a connection the program made, "<-" one it accepted).  And always,
 * debug or not, when TCP_ENO_TEP_MANDATORY aborted a connection — the
 * program itself usually only says "Couldn't connect":
 *
 *   enoshim: connection to 10.203.0.2:9000 aborted: peer does not speak TCP-ENO (TCP_ENO_TEP_MANDATORY)
 *
 * The facts come from the socket's status block (enoshim/shm.h), which tund
 * completes before it reports a connection established: ENO state and
 * reason, negotiated TEP, AEAD, session ID, resumed.  The outcome is known
 * when connect() returns (blocking), when accept() returns, and, after a
 * non-blocking connect(), at the program's next call on the socket
 * (getsockopt(SO_ERROR), read, write, close...): shim.c looks at
 * s->outcome_pending there, one load of a field of a socket it already
 * holds, and nothing is done when it is clear — it is set only when there
 * is something to say (debug on, or TCP_ENO_TEP_MANDATORY).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "eno.h"
#include "tcpinc.h"
#include "shim.h"

/* ---- names ----------------------------------------------------------------- */

static const char *tep_name(unsigned t)
{
  switch (t & 0x7f) {
  case TCPINC_TEP_EXPERIMENTAL: return "experimental TEP";
  case TCPINC_TEP_TCPCRYPT_P256: return "tcpcrypt-P256";
  case TCPINC_TEP_TCPCRYPT_P521: return "tcpcrypt-P521";
  case TCPINC_TEP_TCPCRYPT_X25519: return "tcpcrypt-X25519";
  case TCPINC_TEP_TCPCRYPT_X448: return "tcpcrypt-X448";
  default: return NULL;
  }
}

/* Why ENO is off (stack/eno.h enum eno_reason), in a user's words. */
static const char *reason_text(const struct shim_sock *s, const struct enoshm_status *st, int accepted)
{
  switch (st->eno_reason) {
  case ENO_R_NO_ENO_SYN:
  case ENO_R_NO_ENO_ACK:
    return "peer does not speak TCP-ENO";
  case ENO_R_LOCAL_DROP:
    return "no answer to SYNs with ENO; ENO dropped from the retransmitted SYN";
  case ENO_R_ROLE_CONFLICT:
    return "role conflict: both ends asked for the same TCP-ENO role (b bit)";
  case ENO_R_NO_VALID_TEP:
    return "no TEP in common with the peer";
  case ENO_R_AA_REQUIRED:
    return "peer is not application-aware (TCP_ENO_AA_MANDATORY)";
  case ENO_R_MULTIPLE_ENO:
  case ENO_R_BAD_OPTIONS:
  case ENO_R_ILL_FORMED:
  case ENO_R_SYN_CHANGED:
    return "peer sent a malformed or changing TCP-ENO option";
  case ENO_R_CONFIG:
    if (s->eno_off)
      return "ENO disabled for this socket (TCP_ENO_ENABLED=0, enorun --no-eno)";
    return accepted ? "ENO disabled for this port by tund's settings (eno_enable_listen, "
                      "eno_bad_listen_ports, eno_teps)"
                    : "ENO disabled for this port by tund's settings (eno_enable_connect, "
                      "eno_bad_connect_ports, eno_teps)";
  case ENO_R_INTERNAL:
    return "internal error in ENO (a bug: please report it)";
  default:
    return "ENO was not negotiated";
  }
}

static void fmt_sa(const struct sockaddr *sa, char *out, size_t n)
{
  char ip[INET6_ADDRSTRLEN] = "?";
  if (sa->sa_family == AF_INET) {
    const struct sockaddr_in *a = (const struct sockaddr_in *)sa;
    inet_ntop(AF_INET, &a->sin_addr, ip, sizeof(ip));
    snprintf(out, n, "%s:%u", ip, ntohs(a->sin_port));
  } else if (sa->sa_family == AF_INET6) {
    const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)sa;
    if (IN6_IS_ADDR_V4MAPPED(&a->sin6_addr)) {
      inet_ntop(AF_INET, &a->sin6_addr.s6_addr[12], ip, sizeof(ip));
      snprintf(out, n, "%s:%u", ip, ntohs(a->sin6_port));
    } else {
      inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof(ip));
      snprintf(out, n, "[%s]:%u", ip, ntohs(a->sin6_port));
    }
  } else {
    snprintf(out, n, "?");
  }
}

static void fmt_remote(const struct shim_sock *s, const struct enoshm_status *st, char *out, size_t n)
{
  struct sockaddr_storage ss;
  if (!st->remote.family) {
    snprintf(out, n, "?");
    return;
  }
  shm_to_sa(&st->remote, s->domain, &ss);
  fmt_sa((struct sockaddr *)&ss, out, n);
}

/* The always-on line (no pid: it is for the user, not a debug trace). */
static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
  char buf[512];
  int saved = errno;
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, sizeof(buf) - 1, fmt, ap);
  va_end(ap);
  if (n < 0)
    n = 0;
  if ((size_t)n > sizeof(buf) - 2)
    n = (int)sizeof(buf) - 2;
  buf[n++] = '\n';
  ssize_t w = real.write ? real.write(2, buf, (size_t)n) : (ssize_t)syscall(SYS_write, 2, buf, (size_t)n);
  (void)w;
  errno = saved;
}

/* ---- the line ------------------------------------------------------------------ */

/* Say the outcome (the caller knows it is known). */
static void report(int fd, struct shim_sock *s, int accepted)
{
  struct enoshm_status st;
  char peer[INET6_ADDRSTRLEN + 16];
  const char *dir = accepted ? "<-" : "->";
  sock_status(s, &st);
  if (st.state == ENOSHM_S_CLOSED) {
    fmt_remote(s, &st, peer, sizeof(peer));
    if (st.error == EPROTONOSUPPORT && s->tep_mandatory) {
      say("enoshim: connection to %s aborted: %s (TCP_ENO_TEP_MANDATORY)", peer,
          st.eno_state == TCPINC_STATE_DISABLED ? reason_text(s, &st, accepted)
                                                : "it could not be encrypted");
    } else if (shim_debug) {
      shim_log("fd %d %s %s: failed: %s", fd, dir, peer, st.error ? strerror(st.error) : "closed");
    }
    return;
  }
  if (st.state != ENOSHM_S_ESTABLISHED || st.eno_state == TCPINC_STATE_NEGOTIATING)
    return;
  if (!shim_debug)
    return;
  fmt_remote(s, &st, peer, sizeof(peer));
  if (st.eno_state == TCPINC_STATE_DISABLED) {
    shim_log("fd %d %s %s: plain TCP: %s", fd, dir, peer, reason_text(s, &st, accepted));
    return;
  }
  /* encrypting */
  if (st.raw) {
    shim_log("fd %d %s %s: TCP-ENO raw mode (TEP 0x%02x): the program's own TEP encrypts, "
             "or nothing does", fd, dir, peer, st.negtep & 0x7f);
    return;
  }
  if ((st.negtep & 0x7f) == TCPINC_TEP_EXPERIMENTAL) {
    shim_log("fd %d %s %s: NOT encrypted: experimental TEP 0x20 negotiated (the stream is carried "
             "unchanged)", fd, dir, peer);
    return;
  }
  char sid[2 * 8 + 1] = "";
  size_t sl = st.sessid_len < 8 ? st.sessid_len : 8;
  for (size_t i = 0; i < sl; i++)
    snprintf(sid + 2 * i, 3, "%02x", st.sessid[i]);
  const char *tn = tep_name(st.negtep), *an = enoshm_aead_name(st.aead);
  char tbuf[16], abuf[16];
  if (!tn) {
    snprintf(tbuf, sizeof(tbuf), "TEP 0x%02x", st.negtep & 0x7f);
    tn = tbuf;
  }
  if (!an) {
    snprintf(abuf, sizeof(abuf), "AEAD 0x%04x", st.aead);
    an = abuf;
  }
  shim_log("fd %d %s %s: encrypted (%s, %s, session %s, %s)", fd, dir, peer, tn, an,
           sid[0] ? sid : "?", st.resumed ? "resumed" : "fresh");
  return;
}

/* ---- the moments ---------------------------------------------------------------- */

enum { OUTCOME_NONE = 0, OUTCOME_SAID = 2 };   /* and OUTCOME_PENDING (shim.h) */

void outcome_connect(int fd, struct shim_sock *s, const struct sockaddr *a, socklen_t len, int r, int err)
{
  if (!shim_debug && !s->tep_mandatory)
    return;
  if (!s->connect_started) {
    /* nothing went to tund: a direct route (the fd is a kernel socket now),
     * or refused before anything was sent */
    const char *why;
    if (!a || len < sizeof(sa_family_t) || (a->sa_family != AF_INET && a->sa_family != AF_INET6) ||
        !(why = shim_direct_reason(a, len)))
      return;
    char peer[INET6_ADDRSTRLEN + 16];
    fmt_sa(a, peer, sizeof(peer));
    if (s->tep_mandatory && r < 0 && err == EPROTONOSUPPORT)
      say("enoshim: connection to %s refused: its route is direct (%s), plain kernel TCP "
          "(TCP_ENO_TEP_MANDATORY)", peer, why);
    else if (shim_debug && (r == 0 || err == EINPROGRESS))
      shim_log("fd %d -> %s: plain TCP: direct route (%s)", fd, peer, why);
    else if (shim_debug)
      shim_log("fd %d -> %s: plain TCP: direct route (%s): failed: %s", fd, peer, why, strerror(err));
    return;
  }
  int none = OUTCOME_NONE;
  switch (r == 0 ? 0 : err) {
  case EINPROGRESS:
  case EINTR:
  case EAGAIN:
    /* the connection goes on: said at the program's next call on it */
    atomic_compare_exchange_strong(&s->outcome_pending, &none, OUTCOME_PENDING);
    return;
  case EALREADY:
    return;
  case EISCONN:
    outcome_check(fd, s);       /* a program that calls connect() until EISCONN */
    return;
  default:                      /* connected, or failed: known now */
    if (atomic_exchange(&s->outcome_pending, OUTCOME_SAID) != OUTCOME_SAID)
      report(fd, s, 0);
  }
}

void outcome_check(int fd, struct shim_sock *s)
{
  if (atomic_load_explicit(&s->outcome_pending, memory_order_relaxed) != OUTCOME_PENDING)
    return;
  struct enoshm_status st;
  sock_status(s, &st);
  if (st.state != ENOSHM_S_CLOSED &&
      (st.state != ENOSHM_S_ESTABLISHED || st.eno_state == TCPINC_STATE_NEGOTIATING))
    return;
  int pending = OUTCOME_PENDING;
  if (atomic_compare_exchange_strong(&s->outcome_pending, &pending, OUTCOME_SAID))
    report(fd, s, 0);
}

void outcome_accept(int nfd)
{
  if (!shim_debug || nfd < 0)
    return;
  struct shim_sock *c = fdt_get(nfd);
  if (c) {
    report(nfd, c, 1);
    fdt_put(c);
    return;
  }
  /* a kernel connection from the kernel-side listener (a local client) */
  struct sockaddr_storage ss;
  socklen_t l = sizeof(ss);
  char peer[INET6_ADDRSTRLEN + 16] = "?";
  if (real.getpeername(nfd, (struct sockaddr *)&ss, &l) == 0)
    fmt_sa((struct sockaddr *)&ss, peer, sizeof(peer));
  shim_log("fd %d <- %s: plain TCP: a local client, through the kernel listener", nfd, peer);
}
