/*
 * tund/config.c — defaults, the config file and command-line settings.
 *
 * File format: one `key = value` per line, '#' starts a comment.  The same
 * keys are accepted on the command line as --key=value.  Every key, its
 * default and its meaning are listed in docs/tund.conf.example.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tund.h"

struct tund_config cfg;

void config_default_socket_path(char *out, size_t n)
{
  const char *env = getenv("ENOSHIM_SOCKET");
  const char *xdg = getenv("XDG_RUNTIME_DIR");
  if (env && *env)
    snprintf(out, n, "%s", env);
  else if (xdg && *xdg)
    snprintf(out, n, "%s/enoshim/tund.sock", xdg);
  else
    snprintf(out, n, "/tmp/enoshim-%u/tund.sock", (unsigned)getuid());
}

void config_defaults(struct tund_config *c)
{
  memset(c, 0, sizeof(*c));
  snprintf(c->tun_name, sizeof(c->tun_name), "enotun0");
  c->mtu = 1500;
  c->offload = 1;
  c->real_hosts = 1;
  c->txqueuelen = 10000;
  inet_pton(AF_INET, "10.77.0.1", &c->host4);
  inet_pton(AF_INET, "10.77.0.2", &c->lwip4);
  c->prefix4 = 24;
  c->have_v6 = 1;
  inet_pton(AF_INET6, "fd7e:e0::1", &c->host6);
  inet_pton(AF_INET6, "fd7e:e0::2", &c->lwip6);
  c->prefix6 = 64;
  config_default_socket_path(c->socket_path, sizeof(c->socket_path));
  c->ring_size = ENOSHM_RING_DEFAULT;
  c->time_wait_max = 4096;
  /* api-06 §2.2: the default TEP list.  The order matters only when this host
   * is B: increasing preference, so X25519 (0x23) wins over X448 and P-256.
   * The experimental TEP 0x20 is never in the default list. */
  c->eno_teps[0] = TCPINC_TEP_TCPCRYPT_P256;
  c->eno_teps[1] = TCPINC_TEP_TCPCRYPT_X448;
  c->eno_teps[2] = TCPINC_TEP_TCPCRYPT_X25519;
  c->n_eno_teps = 3;
  c->eno_enable_connect = 1;
  c->eno_enable_listen = 1;
  c->eno_drop_syn_after = 0;
  /* api-06 §3.2: AEADs offered (A) and preferred (B, increasing). */
  c->crypt_aconf[0] = TCPINC_AEAD_AES_128_GCM;
  c->crypt_aconf[1] = TCPINC_AEAD_CHACHA20_POLY1305;
  c->n_crypt_aconf = 2;
  c->crypt_bconf[0] = TCPINC_AEAD_CHACHA20_POLY1305;
  c->crypt_bconf[1] = TCPINC_AEAD_AES_128_GCM;
  c->n_crypt_bconf = 2;
  c->rekey_bytes = 0;
  c->rekey_seconds = 0;
  c->resume_cache_size = 1024;
  c->resume_lifetime = 3600;
  c->resume_nonce_len = 8;
}

static char *trim(char *s)
{
  while (isspace((unsigned char)*s))
    s++;
  char *e = s + strlen(s);
  while (e > s && isspace((unsigned char)e[-1]))
    *--e = 0;
  return s;
}

static int parse_bool(const char *v, int *out)
{
  if (!strcmp(v, "1") || !strcasecmp(v, "yes") || !strcasecmp(v, "true") || !strcasecmp(v, "on"))
    *out = 1;
  else if (!strcmp(v, "0") || !strcasecmp(v, "no") || !strcasecmp(v, "false") || !strcasecmp(v, "off"))
    *out = 0;
  else
    return -1;
  return 0;
}

static int parse_u64(const char *v, uint64_t max, uint64_t *out)
{
  char *end;
  errno = 0;
  unsigned long long x = strtoull(v, &end, 0);
  if (errno || end == v)
    return -1;
  /* size suffixes */
  if (*end == 'k' || *end == 'K') { x <<= 10; end++; }
  else if (*end == 'm' || *end == 'M') { x <<= 20; end++; }
  else if (*end == 'g' || *end == 'G') { x <<= 30; end++; }
  if (*end || x > max)
    return -1;
  *out = x;
  return 0;
}

/* A list of bytes: "0x21,0x23" or "21 23" (hex) */
static int parse_byte_list(const char *v, uint8_t *out, int max, int *n)
{
  char buf[512];
  int k = 0;
  snprintf(buf, sizeof(buf), "%s", v);
  for (char *tok = strtok(buf, ", \t"); tok; tok = strtok(NULL, ", \t")) {
    char *end;
    unsigned long x = strtoul(tok, &end, 16);
    if (*end || x > 0xff || k >= max)
      return -1;
    out[k++] = (uint8_t)x;
  }
  *n = k;
  return 0;
}

static int parse_port_list(const char *v, uint16_t *out, int max, int *n)
{
  char buf[1024];
  int k = 0;
  snprintf(buf, sizeof(buf), "%s", v);
  for (char *tok = strtok(buf, ", \t"); tok; tok = strtok(NULL, ", \t")) {
    char *end;
    unsigned long x = strtoul(tok, &end, 10);
    if (*end || x == 0 || x > 65535 || k >= max)
      return -1;
    out[k++] = (uint16_t)x;
  }
  *n = k;
  return 0;
}

static const struct {
  const char *name;
  uint16_t id;
} aead_names[] = {
  { "aes128gcm", TCPINC_AEAD_AES_128_GCM },
  { "aes-128-gcm", TCPINC_AEAD_AES_128_GCM },
  { "aes256gcm", TCPINC_AEAD_AES_256_GCM },
  { "aes-256-gcm", TCPINC_AEAD_AES_256_GCM },
  { "chacha20poly1305", TCPINC_AEAD_CHACHA20_POLY1305 },
  { "chacha20-poly1305", TCPINC_AEAD_CHACHA20_POLY1305 },
};

static int parse_aead_list(const char *v, uint16_t *out, int max, int *n)
{
  char buf[512];
  int k = 0;
  snprintf(buf, sizeof(buf), "%s", v);
  for (char *tok = strtok(buf, ", \t"); tok; tok = strtok(NULL, ", \t")) {
    int found = 0;
    for (size_t i = 0; i < sizeof(aead_names) / sizeof(aead_names[0]); i++)
      if (!strcasecmp(tok, aead_names[i].name)) {
        if (k >= max) return -1;
        out[k++] = aead_names[i].id;
        found = 1;
        break;
      }
    if (!found) {
      char *end;
      unsigned long x = strtoul(tok, &end, 0);
      if (*end || x > 0xffff || !enoipc_aead_supported((unsigned)x) || k >= max)
        return -1;
      out[k++] = (uint16_t)x;
    }
  }
  if (k == 0)
    return -1;
  *n = k;
  return 0;
}

static int parse_cidr4(const char *v, struct in_addr *a, int *plen)
{
  struct prefix p;
  if (prefix_parse(v, &p) || p.family != AF_INET)
    return -1;
  memcpy(a, p.addr, 4);
  if (plen)
    *plen = strchr(v, '/') ? p.len : *plen;
  return 0;
}

static int parse_cidr6(const char *v, struct in6_addr *a, int *plen)
{
  struct prefix p;
  if (prefix_parse(v, &p) || p.family != AF_INET6)
    return -1;
  memcpy(a, p.addr, 16);
  if (plen)
    *plen = strchr(v, '/') ? p.len : *plen;
  return 0;
}

int config_set(struct tund_config *c, const char *key, const char *val, const char *where)
{
  uint64_t u;
  int b, rc = 0;

#define BAD() do { rc = -1; goto out; } while (0)
  if (!strcmp(key, "tun")) {
    if (!*val || strlen(val) >= IFNAMSIZ) BAD();
    snprintf(c->tun_name, sizeof(c->tun_name), "%s", val);
  } else if (!strcmp(key, "tun_attach")) {
    if (parse_bool(val, &c->tun_attach)) BAD();
  } else if (!strcmp(key, "offload")) {
    if (parse_bool(val, &c->offload)) BAD();
  } else if (!strcmp(key, "real_hosts")) {
    if (parse_bool(val, &c->real_hosts)) BAD();
  } else if (!strcmp(key, "txqueuelen")) {
    if (parse_u64(val, 1000000, &u)) BAD();
    c->txqueuelen = (int)u;
  } else if (!strcmp(key, "mtu")) {
    if (parse_u64(val, 65535, &u) || u < 1280) BAD();
    c->mtu = (int)u;
  } else if (!strcmp(key, "host_ipv4")) {
    if (parse_cidr4(val, &c->host4, &c->prefix4)) BAD();
  } else if (!strcmp(key, "lwip_ipv4")) {
    if (parse_cidr4(val, &c->lwip4, NULL)) BAD();
  } else if (!strcmp(key, "host_ipv6")) {
    if (!strcmp(val, "none")) { c->have_v6 = 0; goto out; }
    if (parse_cidr6(val, &c->host6, &c->prefix6)) BAD();
    c->have_v6 = 1;
  } else if (!strcmp(key, "lwip_ipv6")) {
    if (parse_cidr6(val, &c->lwip6, NULL)) BAD();
  } else if (!strcmp(key, "socket")) {
    if (!*val || strlen(val) >= sizeof(c->socket_path)) BAD();
    snprintf(c->socket_path, sizeof(c->socket_path), "%s", val);
  } else if (!strcmp(key, "keylog")) {
    if (strlen(val) >= sizeof(c->keylog_path)) BAD();
    snprintf(c->keylog_path, sizeof(c->keylog_path), "%s", val);
  } else if (!strcmp(key, "pidfile")) {
    if (strlen(val) >= sizeof(c->pidfile)) BAD();
    snprintf(c->pidfile, sizeof(c->pidfile), "%s", val);
  } else if (!strcmp(key, "ring_size")) {
    if (parse_u64(val, ENOSHM_RING_MAX, &u) || u < ENOSHM_RING_MIN || !enoshm_is_pow2((uint32_t)u)) BAD();
    c->ring_size = (uint32_t)u;
  } else if (!strcmp(key, "time_wait_max")) {
    if (parse_u64(val, 1000000, &u)) BAD();
    c->time_wait_max = (uint32_t)u;
  } else if (!strcmp(key, "direct")) {
    /* two places are kept for loopback (main.c) */
    int n = prefix_parse_list(val, c->direct, ENOIPC_MAX_DIRECT - 2, NULL, 0);
    if (n < 0) BAD();
    c->n_direct = n;
  } else if (!strcmp(key, "eno_teps")) {
    if (parse_byte_list(val, c->eno_teps, 32, &c->n_eno_teps)) BAD();
    for (int i = 0; i < c->n_eno_teps; i++)
      if (c->eno_teps[i] < 0x20 || c->eno_teps[i] >= 0x80) BAD();
  } else if (!strcmp(key, "eno_enable_connect")) {
    if (parse_bool(val, &c->eno_enable_connect)) BAD();
  } else if (!strcmp(key, "eno_enable_listen")) {
    if (parse_bool(val, &c->eno_enable_listen)) BAD();
  } else if (!strcmp(key, "eno_bad_connect_ports")) {
    if (parse_port_list(val, c->bad_connect_ports, TUND_MAX_PORTS, &c->n_bad_connect_ports)) BAD();
  } else if (!strcmp(key, "eno_bad_listen_ports")) {
    if (parse_port_list(val, c->bad_listen_ports, TUND_MAX_PORTS, &c->n_bad_listen_ports)) BAD();
  } else if (!strcmp(key, "eno_drop_syn_after")) {
    if (parse_u64(val, 16, &u)) BAD();
    c->eno_drop_syn_after = (int)u;
  } else if (!strcmp(key, "crypt_aconf")) {
    if (parse_aead_list(val, c->crypt_aconf, 8, &c->n_crypt_aconf)) BAD();
  } else if (!strcmp(key, "crypt_bconf")) {
    if (parse_aead_list(val, c->crypt_bconf, 8, &c->n_crypt_bconf)) BAD();
  } else if (!strcmp(key, "rekey_bytes")) {
    if (parse_u64(val, UINT64_MAX >> 1, &c->rekey_bytes)) BAD();
  } else if (!strcmp(key, "rekey_seconds")) {
    if (parse_u64(val, 86400 * 365, &u)) BAD();
    c->rekey_seconds = (uint32_t)u;
  } else if (!strcmp(key, "resume_cache_size")) {
    if (parse_u64(val, 1 << 20, &u)) BAD();
    c->resume_cache_size = (uint32_t)u;
  } else if (!strcmp(key, "resume_lifetime")) {
    if (parse_u64(val, 86400 * 7, &u)) BAD();
    c->resume_lifetime = (uint32_t)u;
  } else if (!strcmp(key, "resume_nonce_len")) {
    if (parse_u64(val, 8, &u)) BAD();
    c->resume_nonce_len = (int)u;
  } else if (!strcmp(key, "user")) {
    struct passwd *pw = getpwnam(val);
    if (!pw) BAD();
    c->uid = pw->pw_uid;
    c->gid = pw->pw_gid;
    c->user_set = 1;
  } else if (!strcmp(key, "verbose")) {
    if (parse_bool(val, &b)) BAD();
    c->verbose = b;
  } else {
    log_err("%s: unknown setting '%s'", where, key);
    return -1;
  }
out:
  if (rc)
    log_err("%s: bad value for %s: '%s'", where, key, val);
  return rc;
#undef BAD
}

int config_load_file(struct tund_config *c, const char *path)
{
  FILE *f = fopen(path, "re");
  char line[1024];
  int lineno = 0, rc = 0;
  if (!f) {
    log_err("cannot read config %s: %s", path, strerror(errno));
    return -1;
  }
  while (fgets(line, sizeof(line), f)) {
    lineno++;
    char *hash = strchr(line, '#');
    if (hash)
      *hash = 0;
    char *s = trim(line);
    if (!*s)
      continue;
    char *eq = strchr(s, '=');
    char where[300];
    snprintf(where, sizeof(where), "%s:%d", path, lineno);
    if (!eq) {
      log_err("%s: expected key = value", where);
      rc = -1;
      continue;
    }
    *eq = 0;
    if (config_set(c, trim(s), trim(eq + 1), where))
      rc = -1;
  }
  fclose(f);
  return rc;
}
