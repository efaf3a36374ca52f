/*
 * tund/config.c — defaults, the config file and command-line settings.
 *
 * File format (docs/tund.conf.example lists every key, its default and its
 * meaning): one `key = value` per line; '#' starts a comment; white space
 * around keys and values is ignored.  An empty value means the key's
 * default.  `$NAME` and `${NAME}` in a value are replaced by the environment
 * variable NAME (an unset variable is an error naming it; `$$` is one '$').
 * The same keys are accepted on the command line as --key=value or
 * --key value (main.c), taken literally (the shell has expanded them).
 *
 * config_set() reports a bad value in one line that names the allowed range
 * or values ("mtu: 99 is out of range 1280..65535").
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tund.h"
#include "enoshim/sockpath.h"

struct tund_config cfg;

/* tund's default (enoshim/sockpath.h); "" when there is none (ctl_prepare
 * says what to do) */
void config_default_socket_path(char *out, size_t n)
{
  sockpath_server_default(out, n, NULL, 0);
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
  c->poll_us = 100;
  c->direct_local = 1;
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

/* Why the value config_set() is looking at is bad: set by the parsers
 * below (or BADF), printed after "key: ". */
static char why[200];

static int bad(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int bad(const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(why, sizeof(why), fmt, ap);
  va_end(ap);
  return -1;
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
    return bad("'%s' is not yes or no (also true/false, on/off, 1/0)", v);
  return 0;
}

/* A number in min..max: decimal (or 0x hex), optionally with a size suffix
 * k/M/G (x 1024^n). */
static int parse_range(const char *v, uint64_t min, uint64_t max, uint64_t *out)
{
  char *end;
  errno = 0;
  unsigned long long x = strtoull(v, &end, 0);
  unsigned shift = 0;
  if (errno == ERANGE)
    return bad("%s is out of range %llu..%llu", v, (unsigned long long)min, (unsigned long long)max);
  if (errno || end == v || *v == '-' || *v == '+' || isspace((unsigned char)*v))
    return bad("'%s' is not a number (%llu..%llu)", v, (unsigned long long)min, (unsigned long long)max);
  /* size suffixes */
  if (*end == 'k' || *end == 'K') { shift = 10; end++; }
  else if (*end == 'm' || *end == 'M') { shift = 20; end++; }
  else if (*end == 'g' || *end == 'G') { shift = 30; end++; }
  if (*end)
    return bad("'%s' is not a number (%llu..%llu)", v, (unsigned long long)min, (unsigned long long)max);
  if ((shift && x > (UINT64_MAX >> shift)) || (x << shift) > max || (x << shift) < min)
    return bad("%s is out of range %llu..%llu", v, (unsigned long long)min, (unsigned long long)max);
  *out = x << shift;
  return 0;
}

/* 0..max (kept for settings that have no lower bound) */
__attribute__((unused)) static int parse_u64(const char *v, uint64_t max, uint64_t *out)
{
  return parse_range(v, 0, max, out);
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
    if (*end || x > 0xff)
      return bad("'%s' is not a byte in hex", tok);
    if (k >= max)
      return bad("more than %d entries", max);
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
    if (*end || end == tok || *tok == '-' || x == 0 || x > 65535)
      return bad("'%s' is not a port (1..65535)", tok);
    if (k >= max)
      return bad("more than %d ports", max);
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
        if (k >= max) return bad("more than %d AEADs", max);
        out[k++] = aead_names[i].id;
        found = 1;
        break;
      }
    if (!found) {
      char *end;
      unsigned long x = strtoul(tok, &end, 0);
      if (*end || end == tok || x > 0xffff || !enoipc_aead_supported((unsigned)x))
        return bad("'%s' is not one of aes128gcm, aes256gcm, chacha20poly1305 (or 0x1, 0x2, 0x10)", tok);
      if (k >= max)
        return bad("more than %d AEADs", max);
      out[k++] = (uint16_t)x;
    }
  }
  if (k == 0)
    return bad("no AEAD given (aes128gcm, aes256gcm, chacha20poly1305)");
  *n = k;
  return 0;
}

static int parse_cidr4(const char *v, struct in_addr *a, int *plen)
{
  struct prefix p;
  if (prefix_parse(v, &p) || p.family != AF_INET)
    return bad(plen ? "'%s' is not an IPv4 address with an optional /length 0..32 (e.g. 10.77.0.1/24)"
                    : "'%s' is not an IPv4 address (e.g. 10.77.0.2)", v);
  memcpy(a, p.addr, 4);
  if (plen)
    *plen = strchr(v, '/') ? p.len : *plen;
  return 0;
}

static int parse_cidr6(const char *v, struct in6_addr *a, int *plen)
{
  struct prefix p;
  if (prefix_parse(v, &p) || p.family != AF_INET6)
    return bad(plen ? "'%s' is not an IPv6 address with an optional /length 0..128 (e.g. fd7e:e0::1/64) or none"
                    : "'%s' is not an IPv6 address (e.g. fd7e:e0::2)", v);
  memcpy(a, p.addr, 16);
  if (plen)
    *plen = strchr(v, '/') ? p.len : *plen;
  return 0;
}

static int quiet;            /* config_key_known(): no messages */

int config_key_known(const char *key)
{
  static struct tund_config scratch;
  config_defaults(&scratch);
  quiet = 1;
  int r = config_set(&scratch, key, "\x01", NULL);
  quiet = 0;
  return r != CONFIG_UNKNOWN;
}

/* An empty value means the key's default (as if the line were absent, but
 * also undoing an earlier setting): returns 1 if key is one of those. */
static int set_default(struct tund_config *c, const char *key)
{
  static struct tund_config d;
  config_defaults(&d);
#define RESET(f) memcpy(&c->f, &d.f, sizeof(c->f))
  if (!strcmp(key, "tun")) RESET(tun_name);
  else if (!strcmp(key, "tun_attach")) RESET(tun_attach);
  else if (!strcmp(key, "offload")) RESET(offload);
  else if (!strcmp(key, "real_hosts")) RESET(real_hosts);
  else if (!strcmp(key, "txqueuelen")) RESET(txqueuelen);
  else if (!strcmp(key, "mtu")) RESET(mtu);
  else if (!strcmp(key, "host_ipv4")) { RESET(host4); RESET(prefix4); }
  else if (!strcmp(key, "lwip_ipv4")) RESET(lwip4);
  else if (!strcmp(key, "host_ipv6")) { RESET(host6); RESET(prefix6); RESET(have_v6); }
  else if (!strcmp(key, "lwip_ipv6")) RESET(lwip6);
  else if (!strcmp(key, "socket")) RESET(socket_path);
  else if (!strcmp(key, "keylog")) RESET(keylog_path);
  else if (!strcmp(key, "pidfile")) RESET(pidfile);
  else if (!strcmp(key, "ring_size")) RESET(ring_size);
  else if (!strcmp(key, "time_wait_max")) RESET(time_wait_max);
  else if (!strcmp(key, "poll_us")) RESET(poll_us);
  else if (!strcmp(key, "direct")) { RESET(direct); RESET(n_direct); }
  else if (!strcmp(key, "direct_local")) RESET(direct_local);
  else if (!strcmp(key, "eno_teps")) { RESET(eno_teps); RESET(n_eno_teps); }
  else if (!strcmp(key, "eno_enable_connect")) RESET(eno_enable_connect);
  else if (!strcmp(key, "eno_enable_listen")) RESET(eno_enable_listen);
  else if (!strcmp(key, "eno_bad_connect_ports")) { RESET(bad_connect_ports); RESET(n_bad_connect_ports); }
  else if (!strcmp(key, "eno_bad_listen_ports")) { RESET(bad_listen_ports); RESET(n_bad_listen_ports); }
  else if (!strcmp(key, "eno_drop_syn_after")) RESET(eno_drop_syn_after);
  else if (!strcmp(key, "crypt_aconf")) { RESET(crypt_aconf); RESET(n_crypt_aconf); }
  else if (!strcmp(key, "crypt_bconf")) { RESET(crypt_bconf); RESET(n_crypt_bconf); }
  else if (!strcmp(key, "rekey_bytes")) RESET(rekey_bytes);
  else if (!strcmp(key, "rekey_seconds")) RESET(rekey_seconds);
  else if (!strcmp(key, "resume_cache_size")) RESET(resume_cache_size);
  else if (!strcmp(key, "resume_lifetime")) RESET(resume_lifetime);
  else if (!strcmp(key, "resume_nonce_len")) RESET(resume_nonce_len);
  else if (!strcmp(key, "user")) { RESET(user_set); RESET(uid); RESET(gid); }
  else if (!strcmp(key, "verbose")) RESET(verbose);
  else if (!strcmp(key, "allow_users")) { RESET(allow_all_users); RESET(n_allow_uids); RESET(allow_uids); }
  else if (!strcmp(key, "allow_groups")) { RESET(n_allow_gids); RESET(allow_gids); }
  else return 0;
#undef RESET
  return 1;
}

/* Returns 0, -1 for a bad value, CONFIG_UNKNOWN for a key that does not
 * exist.  Errors are logged ("WHERE: key: why"; where NULL: "key: why"),
 * except an unknown key when where is NULL (the command line says it its
 * own way). */
int config_set(struct tund_config *c, const char *key, const char *val, const char *where)
{
  uint64_t u;
  int b, rc = 0;

  why[0] = 0;
  if (!*val && set_default(c, key))
    return 0;
#define BAD() do { rc = -1; goto out; } while (0)
#define BADF(...) do { bad(__VA_ARGS__); rc = -1; goto out; } while (0)
  if (!strcmp(key, "tun")) {
    if (!*val || strlen(val) >= IFNAMSIZ || strchr(val, '/') || strpbrk(val, " \t:"))
      BADF("'%s' is not an interface name (1..%d characters, no '/', ':' or spaces)", val, IFNAMSIZ - 1);
    snprintf(c->tun_name, sizeof(c->tun_name), "%s", val);
  } else if (!strcmp(key, "tun_attach")) {
    if (parse_bool(val, &c->tun_attach)) BAD();
  } else if (!strcmp(key, "offload")) {
    if (parse_bool(val, &c->offload)) BAD();
  } else if (!strcmp(key, "real_hosts")) {
    if (parse_bool(val, &c->real_hosts)) BAD();
  } else if (!strcmp(key, "txqueuelen")) {
    if (parse_range(val, 0, 1000000, &u)) BAD();
    c->txqueuelen = (int)u;
  } else if (!strcmp(key, "mtu")) {
    if (parse_range(val, 1280, 65535, &u)) BAD();
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
    if (strlen(val) >= sizeof(c->socket_path))
      BADF("the path is longer than %zu characters (a unix socket's limit)", sizeof(c->socket_path) - 1);
    snprintf(c->socket_path, sizeof(c->socket_path), "%s", val);
  } else if (!strcmp(key, "keylog")) {
    if (strlen(val) >= sizeof(c->keylog_path))
      BADF("the path is longer than %zu characters", sizeof(c->keylog_path) - 1);
    snprintf(c->keylog_path, sizeof(c->keylog_path), "%s", val);
  } else if (!strcmp(key, "pidfile")) {
    if (strlen(val) >= sizeof(c->pidfile))
      BADF("the path is longer than %zu characters", sizeof(c->pidfile) - 1);
    snprintf(c->pidfile, sizeof(c->pidfile), "%s", val);
  } else if (!strcmp(key, "ring_size")) {
    if (parse_range(val, ENOSHM_RING_MIN, ENOSHM_RING_MAX, &u) || !enoshm_is_pow2((uint32_t)u))
      BADF("%s is not a power of two in %u..%u (4k..64M)", val, ENOSHM_RING_MIN, ENOSHM_RING_MAX);
    c->ring_size = (uint32_t)u;
  } else if (!strcmp(key, "time_wait_max")) {
    if (parse_range(val, 0, 1000000, &u)) BAD();
    c->time_wait_max = (uint32_t)u;
  } else if (!strcmp(key, "poll_us")) {
    if (parse_range(val, 0, 10000, &u)) BAD();
    c->poll_us = (uint32_t)u;
  } else if (!strcmp(key, "direct")) {
    /* two places are kept for loopback (main.c) */
    char tok[64];
    int n = prefix_parse_list(val, c->direct, ENOIPC_MAX_DIRECT - 2, tok, sizeof(tok));
    if (n == PREFIX_LIST_TOO_MANY)
      BADF("more than %d prefixes", ENOIPC_MAX_DIRECT - 2);
    if (n < 0)
      BADF("'%s' is not an address prefix (e.g. 192.168.0.0/16 or fd00::/8)", tok);
    c->n_direct = n;
  } else if (!strcmp(key, "direct_local")) {
    if (parse_bool(val, &c->direct_local)) BAD();
  } else if (!strcmp(key, "eno_teps")) {
    if (parse_byte_list(val, c->eno_teps, 32, &c->n_eno_teps)) BAD();
    for (int i = 0; i < c->n_eno_teps; i++)
      if (c->eno_teps[i] < 0x20 || c->eno_teps[i] >= 0x80)
        BADF("TEP %x is out of range 20..7f (hex)", c->eno_teps[i]);
  } else if (!strcmp(key, "eno_enable_connect")) {
    if (parse_bool(val, &c->eno_enable_connect)) BAD();
  } else if (!strcmp(key, "eno_enable_listen")) {
    if (parse_bool(val, &c->eno_enable_listen)) BAD();
  } else if (!strcmp(key, "eno_bad_connect_ports")) {
    if (parse_port_list(val, c->bad_connect_ports, TUND_MAX_PORTS, &c->n_bad_connect_ports)) BAD();
  } else if (!strcmp(key, "eno_bad_listen_ports")) {
    if (parse_port_list(val, c->bad_listen_ports, TUND_MAX_PORTS, &c->n_bad_listen_ports)) BAD();
  } else if (!strcmp(key, "eno_drop_syn_after")) {
    if (parse_range(val, 0, 16, &u)) BAD();
    c->eno_drop_syn_after = (int)u;
  } else if (!strcmp(key, "crypt_aconf")) {
    if (parse_aead_list(val, c->crypt_aconf, 8, &c->n_crypt_aconf)) BAD();
  } else if (!strcmp(key, "crypt_bconf")) {
    if (parse_aead_list(val, c->crypt_bconf, 8, &c->n_crypt_bconf)) BAD();
  } else if (!strcmp(key, "rekey_bytes")) {
    if (parse_range(val, 0, UINT64_MAX >> 1, &c->rekey_bytes)) BAD();
  } else if (!strcmp(key, "rekey_seconds")) {
    if (parse_range(val, 0, 86400 * 365, &u)) BAD();
    c->rekey_seconds = (uint32_t)u;
  } else if (!strcmp(key, "resume_cache_size")) {
    if (parse_range(val, 0, 1 << 20, &u)) BAD();
    c->resume_cache_size = (uint32_t)u;
  } else if (!strcmp(key, "resume_lifetime")) {
    if (parse_range(val, 0, 86400 * 7, &u)) BAD();
    c->resume_lifetime = (uint32_t)u;
  } else if (!strcmp(key, "resume_nonce_len")) {
    if (parse_range(val, 0, 8, &u)) BAD();
    c->resume_nonce_len = (int)u;
  } else if (!strcmp(key, "user")) {
    struct passwd *pw = getpwnam(val);
    if (!pw) BADF("no user named '%s'", val);
    c->uid = pw->pw_uid;
    c->gid = pw->pw_gid;
    c->user_set = 1;
  } else if (!strcmp(key, "verbose")) {
    if (parse_bool(val, &b)) BAD();
    c->verbose = b;
  } else if (!strcmp(key, "allow_users") || !strcmp(key, "allow_groups")) {
    char w[200];
    if (access_parse(c, key, val, w, sizeof(w)))
      BADF("%s", w);
  } else {
    if (where && !quiet)
      log_err("%s: unknown setting '%s' (docs/tund.conf.example lists them)", where, key);
    return CONFIG_UNKNOWN;
  }
out:
  if (rc && !quiet) {
    if (!why[0])
      bad("'%s' is not a valid value", val);
    if (where)
      log_err("%s: %s: %s", where, key, why);
    else
      log_err("%s: %s", key, why);
  }
  return rc;
#undef BAD
#undef BADF
}

/* $NAME, ${NAME} and $$ in a config file's value (see the top of this file).
 * 0, or -1 with why[] set. */
static int expand_vars(const char *in, char *out, size_t n)
{
  size_t k = 0;
  for (const char *p = in; *p;) {
    const char *val;
    size_t vl;
    if (*p != '$') {
      val = p++;
      vl = 1;
    } else if (p[1] == '$') {
      val = "$";
      vl = 1;
      p += 2;
    } else {
      char name[128];
      size_t nl = 0;
      int braced = p[1] == '{';
      const char *q = p + 1 + braced;
      if (!(isalpha((unsigned char)*q) || *q == '_'))
        return bad("'$' not followed by a variable name: write $NAME or ${NAME}, or $$ for '$'");
      while (isalnum((unsigned char)*q) || *q == '_') {
        if (nl + 1 >= sizeof(name))
          return bad("variable name too long");
        name[nl++] = *q++;
      }
      name[nl] = 0;
      if (braced && *q++ != '}')
        return bad("'${%s' has no closing '}'", name);
      /* tund started with privileges its user did not have (file
       * capabilities): the environment is that user's, not the file's
       * owner's, so it does not get into the settings */
      if (getauxval(AT_SECURE))
        return bad("$%s: environment variables are not expanded when tund runs with privileges "
                   "its user does not have (file capabilities)", name);
      val = getenv(name);
      if (!val)
        return bad("environment variable %s is not set", name);
      vl = strlen(val);
      p = q;
    }
    if (k + vl >= n)
      return bad("the value is longer than %zu characters once variables are expanded", n - 1);
    memcpy(out + k, val, vl);
    k += vl;
  }
  out[k] = 0;
  return 0;
}

int config_load_file(struct tund_config *c, const char *path)
{
  FILE *f = fopen(path, "re");
  char line[1024], val[1024];
  int lineno = 0, rc = 0;
  struct stat st;
  if (!f) {
    log_err("cannot read config %s: %s", path, strerror(errno));
    return -1;
  }
  if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
    log_err("cannot read config %s: it is a directory", path);
    fclose(f);
    return -1;
  }
  while (fgets(line, sizeof(line), f)) {
    lineno++;
    char where[300];
    snprintf(where, sizeof(where), "%s:%d", path, lineno);
    if (!strchr(line, '\n') && !feof(f)) {
      log_err("%s: line longer than %zu characters", where, sizeof(line) - 2);
      fclose(f);
      return -1;
    }
    char *hash = strchr(line, '#');
    if (hash)
      *hash = 0;
    char *s = trim(line);
    if (!*s)
      continue;
    char *eq = strchr(s, '=');
    if (!eq) {
      log_err("%s: expected key = value", where);
      rc = -1;
      continue;
    }
    *eq = 0;
    char *key = trim(s);
    if (expand_vars(trim(eq + 1), val, sizeof(val))) {
      log_err("%s: %s: %s", where, key, why);
      rc = -1;
      continue;
    }
    if (config_set(c, key, val, where))
      rc = -1;
  }
  if (ferror(f)) {
    log_err("cannot read config %s: %s", path, strerror(errno));
    rc = -1;
  }
  fclose(f);
  return rc;
}
