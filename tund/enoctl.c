/*
 * tund/enoctl.c — `enoctl`: ask a running tund about its connections.
 *
 *   enoctl [--socket PATH] status [--json]   list connections and listeners
 *   enoctl [--socket PATH] rekey ID|all       start a tcpcrypt rekey
 *   enoctl [--socket PATH] flush-cache        drop resumption secrets
 *   enoctl [--socket PATH] stop               make tund exit (like SIGTERM)
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "tund.h"

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

static const char *tep_name(unsigned t)
{
  switch (t & 0x7f) {
  case 0x20: return "experimental(0x20)";
  case 0x21: return "tcpcrypt-P256";
  case 0x22: return "tcpcrypt-P521";
  case 0x23: return "tcpcrypt-X25519";
  case 0x24: return "tcpcrypt-X448";
  default: return "-";
  }
}

static const char *aead_name(unsigned a)
{
  switch (a) {
  case TCPINC_AEAD_AES_128_GCM: return "AES-128-GCM";
  case TCPINC_AEAD_AES_256_GCM: return "AES-256-GCM";
  case TCPINC_AEAD_CHACHA20_POLY1305: return "ChaCha20-Poly1305";
  default: return "-";
  }
}

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

static int ctl_connect(const char *path)
{
  struct sockaddr_un sa;
  int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -1;
  memset(&sa, 0, sizeof(sa));
  sa.sun_family = AF_UNIX;
  snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
  if (connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
    int e = errno;
    close(fd);
    errno = e;
    return -1;
  }
  struct enoipc_hello h = { .version = ENOIPC_VERSION, .pid = (uint32_t)getpid() };
  static struct enoipc_msg m;
  if (enoipc_send(fd, ENOIPC_HELLO, 1, 0, &h, sizeof(h), NULL, 0, NULL, 0) || enoipc_recv(fd, &m) != 1) {
    close(fd);
    errno = EPROTO;
    return -1;
  }
  enoipc_msg_close_fds(&m);
  return fd;
}

static int do_status(int fd, int json)
{
  static struct enoipc_msg m;
  unsigned n = 0;
  if (enoipc_send(fd, ENOIPC_STATUS, 2, 0, NULL, 0, NULL, 0, NULL, 0))
    return 1;
  if (!json)
    printf("%-6s %-7s %-11s %-24s %-24s %-11s %-4s %-16s %-17s %s\n", "ID", "PID", "STATE",
           "LOCAL", "REMOTE", "ENO", "ROLE", "TEP", "AEAD", "SESSION ID / REASON");
  else
    printf("[");
  for (;;) {
    int r = enoipc_recv(fd, &m);
    if (r != 1) {
      fprintf(stderr, "enoctl: lost tund while reading status\n");
      return 1;
    }
    enoipc_msg_close_fds(&m);
    if (m.hdr.type == ENOIPC_RESULT)
      break;
    if (m.hdr.type != ENOIPC_STATUS_ENTRY || m.plen != sizeof(struct enoipc_status_entry))
      continue;
    struct enoipc_status_entry e;
    memcpy(&e, m.payload, sizeof(e));
    char la[64], ra[64], sid[2 * 64 + 1] = "";
    fmt_addr(&e.local, la, sizeof(la));
    fmt_addr(&e.remote, ra, sizeof(ra));
    e.reason[sizeof(e.reason) - 1] = 0;
    unsigned sl = e.sessid_len > 64 ? 64 : e.sessid_len;
    for (unsigned i = 0; i < sl; i++)
      snprintf(sid + 2 * i, 3, "%02x", e.sessid[i]);
    int listener = e.kind == ENOIPC_KIND_LISTENER;
    if (json) {
      printf("%s\n {\"id\": %llu, \"pid\": %u, \"kind\": \"%s\", \"state\": \"%s\", \"local\": \"%s\", "
             "\"remote\": \"%s\", \"eno\": \"%s\", \"reason\": \"%s\", \"role\": \"%s\", \"tep\": %u, "
             "\"aead\": %u, \"resumed\": %s, \"session_id\": \"%s\", \"rx_bytes\": %llu, "
             "\"tx_bytes\": %llu, \"rekeys\": %u}",
             n ? "," : "", (unsigned long long)e.id, e.pid, listener ? "listener" : "stream",
             state_name(e.state), la, ra, eno_name(e.eno_state), e.reason,
             e.eno_state == TCPINC_STATE_ENCRYPTING ? (e.role ? "B" : "A") : "-", e.negtep, e.aead,
             e.resumed ? "true" : "false", sid, (unsigned long long)e.rx_bytes,
             (unsigned long long)e.tx_bytes, e.rekeys);
    } else {
      const char *detail = e.eno_state == TCPINC_STATE_ENCRYPTING ? sid : e.reason;
      printf("%-6llu %-7u %-11s %-24s %-24s %-11s %-4s %-16s %-17s %s\n", (unsigned long long)e.id,
             e.pid, state_name(e.state), la, listener ? "*" : ra,
             listener ? "-" : eno_name(e.eno_state),
             e.eno_state == TCPINC_STATE_ENCRYPTING ? (e.role ? "B" : "A") : "-",
             e.eno_state == TCPINC_STATE_ENCRYPTING ? tep_name(e.negtep) : "-",
             aead_name(e.aead), listener ? "" : detail);
    }
    n++;
  }
  if (json)
    printf("%s]\n", n ? "\n" : "");
  return 0;
}

static int do_command(int fd, uint32_t cmd, uint64_t arg)
{
  static struct enoipc_msg m;
  struct enoipc_command c = { .cmd = cmd, .arg = arg };
  if (enoipc_send(fd, ENOIPC_COMMAND, 3, 0, &c, sizeof(c), NULL, 0, NULL, 0) || enoipc_recv(fd, &m) != 1)
    return 1;
  enoipc_msg_close_fds(&m);
  struct enoipc_result r;
  if (m.plen < sizeof(r))
    return 1;
  memcpy(&r, m.payload, sizeof(r));
  if (r.len && r.len <= m.plen - sizeof(r))
    printf("%.*s\n", (int)r.len, (const char *)m.payload + sizeof(r));
  if (r.err) {
    fprintf(stderr, "enoctl: %s\n", strerror(r.err));
    return 1;
  }
  return 0;
}

int enoctl_main(int argc, char **argv)
{
  char path[108];
  int i = 1, json = 0;
  config_default_socket_path(path, sizeof(path));
  if (i + 1 < argc && !strcmp(argv[i], "--socket")) {
    snprintf(path, sizeof(path), "%s", argv[i + 1]);
    i += 2;
  }
  if (i >= argc) {
    fprintf(stderr, "usage: enoctl [--socket PATH] status [--json] | rekey ID|all | flush-cache | check | stop\n");
    return 2;
  }
  int fd = ctl_connect(path);
  if (fd < 0) {
    fprintf(stderr, "enoctl: no tund at %s: %s\n", path, strerror(errno));
    return 1;
  }
  const char *cmd = argv[i++];
  if (!strcmp(cmd, "status")) {
    if (i < argc && !strcmp(argv[i], "--json"))
      json = 1;
    return do_status(fd, json);
  }
  if (!strcmp(cmd, "rekey")) {
    uint64_t id = 0;
    if (i < argc && strcmp(argv[i], "all"))
      id = strtoull(argv[i], NULL, 10);
    return do_command(fd, ENOIPC_CMD_REKEY, id);
  }
  if (!strcmp(cmd, "flush-cache"))
    return do_command(fd, ENOIPC_CMD_FLUSH_CACHE, 0);
  if (!strcmp(cmd, "stop"))
    return do_command(fd, ENOIPC_CMD_STOP, 0);
  if (!strcmp(cmd, "check"))
    return do_command(fd, ENOIPC_CMD_CHECK, 0);
  fprintf(stderr, "enoctl: unknown command %s\n", cmd);
  return 2;
}
