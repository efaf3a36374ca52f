/*
 * tund/enoctl.c — `enoctl`: ask a running tund about its connections.
 *
 *   enoctl [--socket PATH] [--timeout S] status [--json | --wide]
 *   enoctl [--socket PATH] [--timeout S] rekey ID | all
 *   enoctl [--socket PATH] [--timeout S] flush-cache | check | stop
 *   enoctl -h | --help | --version
 *
 * enoctl is the same file as tund (a symlink), so it may start with the file
 * capabilities an administrator gave tund (setcap cap_net_admin+ep): the
 * first thing it does is to give up every capability and set no_new_privs.
 * Every wait for tund is bounded (--timeout, 5 s by default), and the reasons
 * it cannot talk to tund are told apart: no tund, permission, no answer.
 *
 * Exit status: 0 done, 1 tund missing, unreachable or refusing, 2 usage.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "tund.h"
#include "enoshim/sockpath.h"
#include "enoshim/version.h"

static int timeout_ms = 5000;
static const char *sock_path;

/* ---- privilege ------------------------------------------------------------ */

/* No capability at all, in any set, and none to be had through exec. */
static int drop_capabilities(void)
{
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) && errno != EINVAL)
    return -1;
  cap_t caps = cap_init();        /* every set clear */
  if (!caps)
    return -1;
  if (cap_clear(caps) || cap_set_proc(caps)) {
    int e = errno;
    cap_free(caps);
    errno = e;
    return -1;
  }
  cap_free(caps);
  return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
}

/* ---- messages --------------------------------------------------------------- */

static void usage(FILE *f, const char *path)
{
  fprintf(f,
    "usage: enoctl [--socket PATH] [--timeout S] COMMAND\n"
    "       enoctl -h | --help | --version\n"
    "Asks a running tund about the connections of the programs it serves.\n"
    "\n"
    "Commands:\n"
    "  status           one line per connection and listener: program, state,\n"
    "                   peer, encryption, age, bytes received/sent\n"
    "  status --wide    every field (addresses, role, TEP, AEAD, session ID, pid)\n"
    "  status --json    every field, as a JSON array\n"
    "  rekey ID | all   start a tcpcrypt rekey on connection ID (from status)\n"
    "  flush-cache      forget the session secrets kept for resumption\n"
    "  check            tund's internal consistency checks\n"
    "  stop             make tund exit (as SIGTERM does)\n"
    "\n"
    "Options:\n"
    "  --socket PATH    tund's socket; default $ENOSHIM_SOCKET, else\n"
    "                   $XDG_RUNTIME_DIR/enoshim/tund.sock if it exists, else\n"
    "                   /run/enoshim/tund.sock (here: %s)\n"
    "  --timeout S      give up when tund does not answer within S seconds (5)\n"
    "  -h, --help       this text\n"
    "  --version        the version\n"
    "Exit status: 0 done, 1 no tund / no answer / refused, 2 usage error.\n",
    path);
}

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...)
{
  va_list ap;
  fputs("enoctl: ", stderr);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputs(" (see 'enoctl --help')\n", stderr);
  return 2;
}

static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int fail(const char *fmt, ...)
{
  va_list ap;
  fputs("enoctl: ", stderr);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  return 1;
}

static int no_answer(void)
{
  return fail("tund at %s did not answer within %g s", sock_path, timeout_ms / 1000.0);
}

/* ---- talking to tund ---------------------------------------------------------- */

/* One message from tund, waiting at most timeout_ms for it.  1, or 0 after
 * saying why not. */
static int recv_bounded(int fd, struct enoipc_msg *m)
{
  struct pollfd p = { .fd = fd, .events = POLLIN };
  int r;
  do
    r = poll(&p, 1, timeout_ms);
  while (r < 0 && errno == EINTR);
  if (r == 0) {
    no_answer();
    return 0;
  }
  if (r < 0) {
    fail("waiting for tund: %s", strerror(errno));
    return 0;
  }
  r = enoipc_recv(fd, m);
  if (r == 1)
    return 1;
  if (r == 0)
    fail("tund at %s closed the connection", sock_path);
  else if (r == -EPROTO)
    fail("tund at %s sent a malformed message", sock_path);
  else
    fail("reading from tund at %s: %s", sock_path, strerror(-r));
  return 0;
}

static int send_bounded(int fd, uint16_t type, uint32_t seq, const void *p, size_t n)
{
  int r = enoipc_send(fd, type, seq, 0, p, n, NULL, 0, NULL, 0);
  if (r == -EAGAIN || r == -EWOULDBLOCK)
    no_answer();
  else if (r)
    fail("writing to tund at %s: %s", sock_path, strerror(-r));
  return r;
}

/* Connect and say hello.  The fd, or -1 after one line that tells "no tund"
 * from "permission denied" from "no answer". */
static int ctl_connect(void)
{
  struct sockaddr_un sa;
  struct timeval tv = { .tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000 };
  int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    fail("socket: %s", strerror(errno));
    return -1;
  }
  /* bounds connect() (a full backlog) and every send */
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  memset(&sa, 0, sizeof(sa));
  sa.sun_family = AF_UNIX;
  snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock_path);
  if (connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
    int e = errno;
    struct stat st;
    close(fd);
    switch (e) {
    case ENOENT:
    case ENOTDIR:
      fail("no tund is running at %s (no such socket)", sock_path);
      break;
    case ECONNREFUSED:
      if (stat(sock_path, &st) == 0 && !S_ISSOCK(st.st_mode)) {
        fail("%s is not a socket", sock_path);
        break;
      }
      fail("no tund is running at %s (the socket exists, nothing listens on it)", sock_path);
      break;
    case EACCES:
    case EPERM:
      fail("permission denied: %s (or a directory above it) is not yours; "
           "run enoctl as tund's user or as root", sock_path);
      break;
    case EAGAIN:
    case EINPROGRESS:
    case ETIMEDOUT:
      no_answer();
      break;
    case EPROTOTYPE:
    case ENOTSOCK:
      fail("%s is not tund's socket (%s)", sock_path, strerror(e));
      break;
    default:
      fail("cannot connect to tund at %s: %s", sock_path, strerror(e));
    }
    return -1;
  }
  /* whom we believe (enoshim/sockpath.h): nothing is sent to a socket
   * served by another user or in a directory another user controls */
  {
    struct sockpath_trust trust;
    char why[440];
    uid_t self = geteuid();
    sockpath_trust_load(SOCKPATH_TRUST_CONF, &trust);
    int dr = sockpath_dir_check(sock_path, self, &trust, NULL, why, sizeof(why));
    if ((dr != SOCKPATH_OK && dr != SOCKPATH_NODIR) ||
        sockpath_peer_check(fd, sock_path, self, &trust, NULL, why, sizeof(why))) {
      fail("%s", why);
      close(fd);
      return -1;
    }
  }
  struct enoipc_hello h = { .version = ENOIPC_VERSION, .pid = (uint32_t)getpid() };
  static struct enoipc_msg m;
  /* a tund that does not serve our uid answers at once and closes: its
   * answer is read even when the greeting could not be sent */
  int sent = enoipc_send(fd, ENOIPC_HELLO, 1, 0, &h, sizeof(h), NULL, 0, NULL, 0);
  if (sent == -EAGAIN || sent == -EWOULDBLOCK) {
    no_answer();
    close(fd);
    return -1;
  }
  if (sent && sent != -EPIPE && sent != -ECONNRESET) {
    fail("writing to tund at %s: %s", sock_path, strerror(-sent));
    close(fd);
    return -1;
  }
  if (!recv_bounded(fd, &m)) {
    close(fd);
    return -1;
  }
  enoipc_msg_close_fds(&m);
  struct enoipc_result r;
  if (m.hdr.type != ENOIPC_RESULT || m.plen < sizeof(r)) {
    fail("%s answered, but not as tund does", sock_path);
    close(fd);
    return -1;
  }
  memcpy(&r, m.payload, sizeof(r));
  if (r.err == EPROTONOSUPPORT) {
    fail("tund at %s is another version of enoshim (this enoctl speaks protocol %u); "
         "use the enoctl installed with that tund", sock_path, ENOIPC_VERSION);
    close(fd);
    return -1;
  }
  if (r.err == EACCES) {
    fail("tund at %s does not serve uid %u (its allow_users / allow_groups)", sock_path, (unsigned)geteuid());
    close(fd);
    return -1;
  }
  if (r.err) {
    fail("tund at %s refused: %s", sock_path, strerror(r.err));
    close(fd);
    return -1;
  }
  return fd;
}

/* ---- names ---------------------------------------------------------------------- */

static const char *state_name(unsigned s)
{
  static const char *const n[] = { "new", "bound", "listening", "connecting", "established", "closed" };
  return s < sizeof(n) / sizeof(n[0]) ? n[s] : "?";
}

static const char *eno_name(unsigned s)
{
  static const char *const n[] = { "negotiating", "encrypting", "disabled" };
  return s < 3 ? n[s] : "?";
}

/* the TEP's name (without the v bit), NULL if unknown */
static const char *tep_name(unsigned t)
{
  switch (t & 0x7f) {
  case 0x20: return "experimental";
  case 0x21: return "tcpcrypt-P256";
  case 0x22: return "tcpcrypt-P521";
  case 0x23: return "tcpcrypt-X25519";
  case 0x24: return "tcpcrypt-X448";
  default: return NULL;
  }
}

static const char *tep_short(unsigned t)
{
  switch (t & 0x7f) {
  case 0x21: return "P-256";
  case 0x22: return "P-521";
  case 0x23: return "X25519";
  case 0x24: return "X448";
  default: return "TEP?";
  }
}

/* ---- formatting ------------------------------------------------------------------- */

static void fmt_addr(const struct enoipc_addr *a, char *out, size_t n)
{
  char ip[INET6_ADDRSTRLEN];
  if (a->family == AF_INET) {
    inet_ntop(AF_INET, a->addr, ip, sizeof(ip));
    snprintf(out, n, "%s:%u", ip, a->port);
  } else if (a->family == AF_INET6) {
    inet_ntop(AF_INET6, a->addr, ip, sizeof(ip));
    snprintf(out, n, "[%s]:%u", ip, a->port);
  } else {
    snprintf(out, n, "-");
  }
}

static int addr_is_any(const struct enoipc_addr *a)
{
  static const uint8_t zero[16];
  return a->family == AF_INET ? !memcmp(a->addr, zero, 4) : !memcmp(a->addr, zero, 16);
}

/* a printable copy for a table cell: no control characters, no spaces
 * (one word, so that columns stay columns), never empty */
static void cell_word(const char *in, size_t inlen, char *out, size_t n)
{
  size_t k = 0;
  for (size_t i = 0; i < inlen && in[i] && k + 1 < n; i++) {
    unsigned char ch = (unsigned char)in[i];
    out[k++] = ch == ' ' ? '_' : (ch < 0x21 || ch >= 0x7f) ? '?' : (char)ch;
  }
  if (!k && n > 1)
    out[k++] = '-';
  out[k] = 0;
}

/* printable text (spaces kept) */
static void cell_text(const char *in, size_t inlen, char *out, size_t n)
{
  size_t k = 0;
  for (size_t i = 0; i < inlen && in[i] && k + 1 < n; i++) {
    unsigned char ch = (unsigned char)in[i];
    out[k++] = (ch < 0x20 || ch >= 0x7f) ? '?' : (char)ch;
  }
  out[k] = 0;
}

/* 1023, 1.2K, 34K, 999K, 1.0M ... (binary units, at most 4 characters) */
static void fmt_bytes(uint64_t v, char *out, size_t n)
{
  static const char unit[] = "KMGTPE";
  if (v < 1000) {
    snprintf(out, n, "%llu", (unsigned long long)v);
    return;
  }
  double x = (double)v;
  int u = -1;
  do {
    x /= 1024.0;
    u++;
  } while (x >= 999.5 && u < 5);
  if (x < 9.95)
    snprintf(out, n, "%.1f%c", x, unit[u]);
  else
    snprintf(out, n, "%.0f%c", x, unit[u]);
}

/* 42s, 17m, 5h, 3d */
static void fmt_age(uint32_t s, char *out, size_t n)
{
  if (s < 100)
    snprintf(out, n, "%us", s);
  else if (s < 100 * 60)
    snprintf(out, n, "%um", s / 60);
  else if (s < 48 * 3600)
    snprintf(out, n, "%uh", s / 3600);
  else
    snprintf(out, n, "%ud", s / 86400);
}

/* the ENCRYPTION column: what protects the connection, in a few words */
static void fmt_encryption(const struct enoipc_status_entry *e, const char *reason, char *out, size_t n)
{
  int listener = e->kind == ENOIPC_KIND_LISTENER;
  if (e->eno_state == TCPINC_STATE_DISABLED) {
    snprintf(out, n, "plain%s%s", *reason ? ": " : "", reason);
  } else if (listener) {
    snprintf(out, n, "-");
  } else if (e->eno_state == TCPINC_STATE_ENCRYPTING) {
    const char *aead = enoshm_aead_name(e->aead);
    if ((e->negtep & 0x7f) == 0x20)
      snprintf(out, n, "NONE: experimental TEP, not encrypted");
    else if (!aead)
      snprintf(out, n, "raw: %s in the program", tep_name(e->negtep) ? tep_name(e->negtep) : "TEP");
    else
      snprintf(out, n, "%s %s %s", tep_short(e->negtep), aead, e->resumed ? "resumed" : "fresh");
  } else if (e->state == ENOSHM_S_CONNECTING || e->state == ENOSHM_S_ESTABLISHED) {
    snprintf(out, n, "negotiating");
  } else {
    snprintf(out, n, "-");
  }
}

/* JSON string: quotes, backslash and control characters escaped; valid
 * UTF-8 kept, any other byte becomes U+FFFD, so the output is always valid
 * JSON (RFC 8259). */
static void json_str(FILE *f, const char *s, size_t len)
{
  const unsigned char *p = (const unsigned char *)s, *end = p + len;
  fputc('"', f);
  while (p < end && *p) {
    unsigned c = *p;
    if (c == '"' || c == '\\') {
      fputc('\\', f);
      fputc((int)c, f);
      p++;
    } else if (c < 0x20 || c == 0x7f) {
      switch (c) {
      case '\n': fputs("\\n", f); break;
      case '\t': fputs("\\t", f); break;
      case '\r': fputs("\\r", f); break;
      default: fprintf(f, "\\u%04x", c);
      }
      p++;
    } else if (c < 0x80) {
      fputc((int)c, f);
      p++;
    } else {
      /* a UTF-8 sequence: lead byte, continuation bytes, no overlong
       * forms, no surrogates, at most U+10FFFF */
      int k = c >= 0xc2 && c <= 0xdf ? 1 : c >= 0xe0 && c <= 0xef ? 2 : c >= 0xf0 && c <= 0xf4 ? 3 : -1;
      int ok = k > 0 && end - p > k;
      for (int i = 1; ok && i <= k; i++)
        ok = (p[i] & 0xc0) == 0x80;
      if (ok && c == 0xe0 && p[1] < 0xa0) ok = 0;
      if (ok && c == 0xed && p[1] > 0x9f) ok = 0;
      if (ok && c == 0xf0 && p[1] < 0x90) ok = 0;
      if (ok && c == 0xf4 && p[1] > 0x8f) ok = 0;
      if (ok) {
        fwrite(p, 1, (size_t)k + 1, f);
        p += k + 1;
      } else {
        fputs("\\ufffd", f);
        p++;
      }
    }
  }
  fputc('"', f);
}

/* ---- status ------------------------------------------------------------------------ */

enum { C_ID, C_PID, C_PROG, C_STATE, C_LOCAL, C_REMOTE, C_ENO, C_ROLE, C_TEP, C_AEAD, C_RESUMED,
       C_AGE, C_RX, C_TX, C_REKEYS, C_ENC, C_RXTX, C_DETAIL, C_N };
static const char *const col_head[C_N] = {
  "ID", "PID", "PROGRAM", "STATE", "LOCAL", "REMOTE", "ENO", "ROLE", "TEP", "AEAD", "RESUMED",
  "AGE", "RX", "TX", "REKEYS", "ENCRYPTION", "RX/TX", "SESSION ID / REASON",
};
/* the default view fits 100 columns; --wide shows everything */
static const int cols_default[] = { C_ID, C_PROG, C_STATE, C_LOCAL, C_REMOTE, C_AGE, C_RXTX, C_ENC, -1 };
static const int cols_wide[] = { C_ID, C_PID, C_PROG, C_STATE, C_LOCAL, C_REMOTE, C_ENO, C_ROLE, C_TEP,
                                 C_AEAD, C_RESUMED, C_AGE, C_RX, C_TX, C_REKEYS, C_DETAIL, -1 };

struct row {
  char cell[C_N][200];
};

static void make_row(const struct enoipc_status_entry *e, int wide, struct row *r)
{
  int listener = e->kind == ENOIPC_KIND_LISTENER;
  int enc = e->eno_state == TCPINC_STATE_ENCRYPTING;
  char reason[sizeof(e->reason) + 1], sid[2 * 64 + 1] = "", la[64];
  cell_text(e->reason, sizeof(e->reason), reason, sizeof(reason));
  unsigned sl = e->sessid_len > 64 ? 64 : e->sessid_len;
  for (unsigned i = 0; i < sl; i++)
    snprintf(sid + 2 * i, 3, "%02x", e->sessid[i]);

  memset(r, 0, sizeof(*r));
  snprintf(r->cell[C_ID], sizeof(r->cell[0]), "%llu", (unsigned long long)e->id);
  snprintf(r->cell[C_PID], sizeof(r->cell[0]), "%u", e->pid);
  cell_word(e->program, sizeof(e->program), r->cell[C_PROG], sizeof(r->cell[0]));
  snprintf(r->cell[C_STATE], sizeof(r->cell[0]), "%s", state_name(e->state));
  fmt_addr(&e->local, la, sizeof(la));
  if (wide)
    snprintf(r->cell[C_LOCAL], sizeof(r->cell[0]), "%s", la);
  else if (e->local.family && (addr_is_any(&e->local) || !listener))
    /* a connection's local address is lwIP's or the one the peer dialed:
     * the port tells which service it is; a listener's wildcard is "*" */
    snprintf(r->cell[C_LOCAL], sizeof(r->cell[0]), "%s:%u", listener ? "*" : "", e->local.port);
  else
    snprintf(r->cell[C_LOCAL], sizeof(r->cell[0]), "%s", la);
  if (listener)
    snprintf(r->cell[C_REMOTE], sizeof(r->cell[0]), "*");
  else
    fmt_addr(&e->remote, r->cell[C_REMOTE], sizeof(r->cell[0]));
  snprintf(r->cell[C_ENO], sizeof(r->cell[0]), "%s", listener && !enc ? "-" : eno_name(e->eno_state));
  snprintf(r->cell[C_ROLE], sizeof(r->cell[0]), "%s", enc ? (e->role ? "B" : "A") : "-");
  snprintf(r->cell[C_TEP], sizeof(r->cell[0]), "%s", enc && tep_name(e->negtep) ? tep_name(e->negtep) : "-");
  snprintf(r->cell[C_AEAD], sizeof(r->cell[0]), "%s", enc && enoshm_aead_name(e->aead) ? enoshm_aead_name(e->aead) : "-");
  snprintf(r->cell[C_RESUMED], sizeof(r->cell[0]), "%s", !enc ? "-" : e->resumed ? "yes" : "no");
  fmt_age(e->age_s, r->cell[C_AGE], sizeof(r->cell[0]));
  snprintf(r->cell[C_RX], sizeof(r->cell[0]), "%llu", (unsigned long long)e->rx_bytes);
  snprintf(r->cell[C_TX], sizeof(r->cell[0]), "%llu", (unsigned long long)e->tx_bytes);
  snprintf(r->cell[C_REKEYS], sizeof(r->cell[0]), "%u", e->rekeys);
  fmt_encryption(e, reason, r->cell[C_ENC], sizeof(r->cell[0]));
  if (listener) {
    snprintf(r->cell[C_RXTX], sizeof(r->cell[0]), "-");
  } else {
    char rx[16], tx[16];
    fmt_bytes(e->rx_bytes, rx, sizeof(rx));
    fmt_bytes(e->tx_bytes, tx, sizeof(tx));
    snprintf(r->cell[C_RXTX], sizeof(r->cell[0]), "%s/%s", rx, tx);
  }
  if (enc && *sid)
    snprintf(r->cell[C_DETAIL], sizeof(r->cell[0]), "%s%s%s", sid, *reason ? " " : "", reason);
  else
    snprintf(r->cell[C_DETAIL], sizeof(r->cell[0]), "%s", reason);
}

static void print_json_entry(const struct enoipc_status_entry *e, int first)
{
  int listener = e->kind == ENOIPC_KIND_LISTENER;
  int enc = e->eno_state == TCPINC_STATE_ENCRYPTING;
  char la[64], ra[64], sid[2 * 64 + 1] = "", encs[200], reason[sizeof(e->reason) + 1];
  fmt_addr(&e->local, la, sizeof(la));
  fmt_addr(&e->remote, ra, sizeof(ra));
  unsigned sl = e->sessid_len > 64 ? 64 : e->sessid_len;
  for (unsigned i = 0; i < sl; i++)
    snprintf(sid + 2 * i, 3, "%02x", e->sessid[i]);
  memcpy(reason, e->reason, sizeof(e->reason));
  reason[sizeof(e->reason)] = 0;
  fmt_encryption(e, reason, encs, sizeof(encs));
  const char *tep = enc ? tep_name(e->negtep) : NULL;
  const char *aead = enc ? enoshm_aead_name(e->aead) : NULL;

  printf("%s\n {\"id\": %llu, \"pid\": %u, \"program\": ", first ? "" : ",", (unsigned long long)e->id, e->pid);
  json_str(stdout, e->program, sizeof(e->program));
  printf(", \"kind\": \"%s\", \"state\": \"%s\", \"local\": ", listener ? "listener" : "stream", state_name(e->state));
  json_str(stdout, la, sizeof(la));
  printf(", \"remote\": ");
  json_str(stdout, ra, sizeof(ra));
  printf(", \"eno\": \"%s\", \"reason\": ", eno_name(e->eno_state));
  json_str(stdout, reason, sizeof(reason));
  printf(", \"encryption\": ");
  json_str(stdout, encs, sizeof(encs));
  printf(", \"role\": \"%s\", \"tep\": ", enc ? (e->role ? "B" : "A") : "-");
  if (tep)
    json_str(stdout, tep, strlen(tep));
  else if (enc)
    printf("\"0x%02x\"", e->negtep & 0x7f);
  else
    printf("null");
  if (enc)
    printf(", \"tep_id\": %u, \"negtep\": %u", e->negtep & 0x7fu, e->negtep);
  else
    printf(", \"tep_id\": null, \"negtep\": null");
  printf(", \"aead\": ");
  if (aead)
    json_str(stdout, aead, strlen(aead));
  else
    printf("null");
  if (aead)
    printf(", \"aead_id\": %u", e->aead);
  else
    printf(", \"aead_id\": null");
  printf(", \"resumed\": %s, \"session_id\": \"%s\", \"rx_bytes\": %llu, \"tx_bytes\": %llu, "
         "\"rekeys\": %u, \"age_s\": %u}",
         e->resumed ? "true" : "false", sid, (unsigned long long)e->rx_bytes,
         (unsigned long long)e->tx_bytes, e->rekeys, e->age_s);
}

static int do_status(int fd, int json, int wide)
{
  static struct enoipc_msg m;
  static struct row r;
  struct enoipc_status_entry *ents = NULL;
  size_t n = 0, cap = 0;
  if (send_bounded(fd, ENOIPC_STATUS, 2, NULL, 0))
    return 1;
  if (json)
    printf("[");
  for (;;) {
    if (!recv_bounded(fd, &m)) {
      free(ents);
      return 1;
    }
    enoipc_msg_close_fds(&m);
    if (m.hdr.type == ENOIPC_RESULT)
      break;
    if (m.hdr.type != ENOIPC_STATUS_ENTRY || m.plen != sizeof(struct enoipc_status_entry))
      continue;
    if (json) {                            /* printed as they come */
      struct enoipc_status_entry e;
      memcpy(&e, m.payload, sizeof(e));
      print_json_entry(&e, n++ == 0);
      continue;
    }
    if (n == cap) {
      size_t nc = cap ? cap * 2 : 64;
      struct enoipc_status_entry *ne = realloc(ents, nc * sizeof(*ents));
      if (!ne) {
        free(ents);
        return fail("out of memory");
      }
      ents = ne;
      cap = nc;
    }
    memcpy(&ents[n++], m.payload, sizeof(ents[0]));
  }
  if (json) {
    printf("%s]\n", n ? "\n" : "");
    return fflush(stdout) ? 1 : 0;
  }
  /* columns as wide as their widest cell (a first pass over the rows); the
   * last one is not padded */
  const int *cols = wide ? cols_wide : cols_default;
  int w[C_N] = { 0 };
  for (int k = 0; cols[k] >= 0; k++)
    w[cols[k]] = (int)strlen(cols[k] == C_REMOTE && !wide ? "PEER" : col_head[cols[k]]);
  for (size_t i = 0; i < n; i++) {
    make_row(&ents[i], wide, &r);
    for (int k = 0; cols[k] >= 0; k++)
      if ((int)strlen(r.cell[cols[k]]) > w[cols[k]])
        w[cols[k]] = (int)strlen(r.cell[cols[k]]);
  }
  for (size_t i = 0; i <= n; i++) {
    if (i)
      make_row(&ents[i - 1], wide, &r);
    for (int k = 0; cols[k] >= 0; k++) {
      int c = cols[k];
      const char *head = c == C_REMOTE && !wide ? "PEER" : col_head[c];
      const char *s = i == 0 ? head : r.cell[c];
      if (cols[k + 1] < 0)
        printf("%s\n", s);
      else
        printf("%-*s ", w[c], s);
    }
  }
  free(ents);
  return fflush(stdout) ? 1 : 0;
}

/* ---- commands ------------------------------------------------------------------------ */

static int do_command(int fd, uint32_t cmd, uint64_t arg)
{
  static struct enoipc_msg m;
  struct enoipc_command c = { .cmd = cmd, .arg = arg };
  if (send_bounded(fd, ENOIPC_COMMAND, 3, &c, sizeof(c)) || !recv_bounded(fd, &m))
    return 1;
  enoipc_msg_close_fds(&m);
  struct enoipc_result r;
  if (m.hdr.type != ENOIPC_RESULT || m.plen < sizeof(r))
    return fail("tund at %s answered something else", sock_path);
  memcpy(&r, m.payload, sizeof(r));
  char text[ENOIPC_MAX_MSG];
  size_t tl = r.len <= m.plen - sizeof(r) ? r.len : 0;
  cell_text((const char *)m.payload + sizeof(r), tl, text, sizeof(text));
  if (r.err) {
    if (cmd == ENOIPC_CMD_CHECK && *text)
      return fail("check failed: %s", text);
    return fail("%s", *text ? text : strerror(r.err));
  }
  if (*text)
    printf("%s\n", text);
  return 0;
}

/* ---- main ---------------------------------------------------------------------------- */

int enoctl_main(int argc, char **argv)
{
  static char path[sizeof(((struct sockaddr_un *)0)->sun_path) + 64];
  int json = 0, wide = 0, opt;
  enum { O_SOCKET = 256, O_TIMEOUT, O_JSON, O_WIDE, O_VERSION };
  static const struct option longopts[] = {
    { "socket", required_argument, NULL, O_SOCKET },
    { "timeout", required_argument, NULL, O_TIMEOUT },
    { "json", no_argument, NULL, O_JSON },
    { "wide", no_argument, NULL, O_WIDE },
    { "help", no_argument, NULL, 'h' },
    { "version", no_argument, NULL, O_VERSION },
    { NULL, 0, NULL, 0 },
  };

  /* before anything else: no capability, whatever the file carries */
  if (drop_capabilities())
    return fail("cannot give up capabilities: %s", strerror(errno));

  sockpath_client_default(path, sizeof(path));   /* as the shim does */
  opterr = 0;
  while ((opt = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
    switch (opt) {
    case O_SOCKET:
      if (!*optarg)
        return usage_error("--socket needs a path");
      snprintf(path, sizeof(path), "%s", optarg);
      break;
    case O_TIMEOUT: {
      char *end;
      errno = 0;
      double t = strtod(optarg, &end);
      if (errno || end == optarg || *end || !isfinite(t) || t < 0.1 || t > 3600)
        return usage_error("--timeout: '%s' is not a number of seconds in 0.1..3600", optarg);
      timeout_ms = (int)(t * 1000 + 0.5);
      break;
    }
    case O_JSON:
      json = 1;
      break;
    case O_WIDE:
      wide = 1;
      break;
    case 'h':
      usage(stdout, path);
      return 0;
    case O_VERSION:
      printf("enoctl (enoshim) %s\n", ENOSHIM_VERSION);
      return 0;
    case ':':
      return usage_error("option '%s' needs a value", argv[optind - 1]);
    default:
      if (optopt)
        return usage_error("unknown option '-%c'", optopt);
      return usage_error("unknown option '%s'", argv[optind - 1]);
    }
  }
  if (optind >= argc)
    return usage_error("no command given (status, rekey, flush-cache, check, stop)");
  const char *cmd = argv[optind++];
  int nargs = argc - optind;
  uint32_t code = 0;
  uint64_t id = 0;
  if (!strcmp(cmd, "status")) {
    if (json && wide)
      return usage_error("status: --json and --wide exclude each other");
  } else if (json || wide) {
    return usage_error("%s applies to status only", json ? "--json" : "--wide");
  }
  if (!strcmp(cmd, "status")) {
    /* below */
  } else if (!strcmp(cmd, "rekey")) {
    code = ENOIPC_CMD_REKEY;
    if (nargs < 1)
      return usage_error("rekey needs a connection ID (from enoctl status) or 'all'");
    const char *a = argv[optind++];
    nargs--;
    if (strcmp(a, "all")) {
      char *end;
      errno = 0;
      unsigned long long v = strtoull(a, &end, 10);
      if (errno || end == a || *end || *a < '0' || *a > '9' || v == 0)
        return usage_error("rekey: '%s' is not a connection ID (a number from enoctl status) or 'all'", a);
      id = v;
    }
  } else if (!strcmp(cmd, "flush-cache")) {
    code = ENOIPC_CMD_FLUSH_CACHE;
  } else if (!strcmp(cmd, "check")) {
    code = ENOIPC_CMD_CHECK;
  } else if (!strcmp(cmd, "stop")) {
    code = ENOIPC_CMD_STOP;
  } else {
    return usage_error("unknown command '%s' (status, rekey, flush-cache, check, stop)", cmd);
  }
  if (nargs > 0)
    return usage_error("%s: unexpected argument '%s'", cmd, argv[optind]);
  if (strlen(path) >= sizeof(((struct sockaddr_un *)0)->sun_path))
    return usage_error("--socket: the path is longer than %zu characters",
                       sizeof(((struct sockaddr_un *)0)->sun_path) - 1);
  sock_path = path;
  signal(SIGPIPE, SIG_IGN);

  int fd = ctl_connect();
  if (fd < 0)
    return 1;
  int rc = code ? do_command(fd, code, id) : do_status(fd, json, wide);
  close(fd);
  return rc;
}
