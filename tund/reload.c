/*
 * tund/reload.c — SIGHUP: read the settings again and apply what can change
 * while tund runs; say what cannot.  tund never exits on SIGHUP.
 *
 * The settings are read as at start: the same config file (the one given
 * with --config or ENOSHIM_CONFIG, or the administrator's file of a tund
 * with file capabilities), then the same command-line settings over it.  A
 * file that no longer loads (a bad line, a missing variable, unreadable)
 * changes nothing: every setting stays as it was, and the log says so.
 * Otherwise, setting by setting:
 *
 *   applied at once
 *     eno_teps, eno_enable_connect, eno_enable_listen, eno_bad_connect_ports,
 *     eno_bad_listen_ports, eno_drop_syn_after, crypt_aconf, crypt_bconf:
 *       the system-wide options of api-06 §2.2 / §3.2, for every connection
 *       made from now on, including those existing listeners accept (a
 *       socket's own options still win over them);
 *     rekey_bytes, rekey_seconds: every encrypting connection, from its
 *       next check;
 *     resume_cache_size: the cache is made anew at the new size (what it
 *       held is forgotten, like `enoctl flush-cache`); resume_lifetime,
 *       resume_nonce_len: sessions cached and resumed from now on;
 *     time_wait_max: lwIP's TIME-WAIT bound, at once;
 *     poll_us: the event loop's polling bound, from its next turn;
 *     ring_size: sockets made from now on;
 *     direct, direct_local: programs that connect to tund from now on (a
 *       running process keeps what it got);
 *     verbose: the log level (unless -v was given);
 *     keylog: reopened on every SIGHUP (log rotation: the old file may have
 *       been moved away), at the new path if it changed, closed if emptied;
 *       if the new file cannot be opened the old one stays;
 *   needs a restart (logged, the running value stays)
 *     tun, tun_attach, mtu, txqueuelen, offload, real_hosts, host_ipv4,
 *     lwip_ipv4, host_ipv6, lwip_ipv6, socket, user, pidfile, allow_users,
 *     allow_groups — the TUN device, the addresses and the host's rules
 *     made for them, the control socket, the privileges given up at start,
 *     whom tund serves — and any other setting this file does not name.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tund.h"
#include "conn.h"
#include "lwip_glue.h"

static char reload_file[256];
static int reload_verbose_flag;       /* -v on the command line */
static int reload_file_secure;        /* the administrator's file (file capabilities) */
#define RELOAD_CL_MAX 128
static struct {
  char key[64];
  const char *val;                    /* in argv: lives as long as tund */
} cl[RELOAD_CL_MAX];
static int n_cl;

void reload_note_file(const char *path, int secure)
{
  snprintf(reload_file, sizeof(reload_file), "%s", path ? path : "");
  reload_file_secure = secure;
}

void reload_note_setting(const char *key, const char *val)
{
  if (n_cl < RELOAD_CL_MAX) {
    snprintf(cl[n_cl].key, sizeof(cl[n_cl].key), "%s", key);
    cl[n_cl].val = val;
    n_cl++;
  }
}

void reload_note_verbose(void) { reload_verbose_flag = 1; }

/* Destinations on loopback always go direct: the list sent to programs
 * starts with them (main.c at start, and here on reload). */
void config_add_loopback_direct(struct tund_config *c)
{
  struct prefix lo4 = { .family = AF_INET, .len = 8, .addr = { 127 } };
  struct prefix lo6 = { .family = AF_INET6, .len = 128, .addr = { [15] = 1 } };
  if (c->n_direct > ENOIPC_MAX_DIRECT - 2)
    c->n_direct = ENOIPC_MAX_DIRECT - 2;
  memmove(&c->direct[2], &c->direct[0], sizeof(c->direct[0]) * (size_t)c->n_direct);
  c->direct[0] = lo4;
  c->direct[1] = lo6;
  c->n_direct += 2;
}

/* names of settings, joined for one log line */
struct names {
  char buf[600];
  int n;
};

static void names_add(struct names *l, const char *name)
{
  size_t len = strlen(l->buf);
  snprintf(l->buf + len, sizeof(l->buf) - len, "%s%s", l->n ? ", " : "", name);
  l->n++;
}

static struct tund_config next, scratch;

void tund_reload(void)
{
  struct tund_config *n = &next;
  struct names applied = { .n = 0 }, restart = { .n = 0 };
  if (!reload_file[0]) {
    log_info("SIGHUP: tund was started without a config file, so there are no settings to read again "
             "(--config FILE or ENOSHIM_CONFIG); the key log is reopened");
    keylog_reopen(cfg.keylog_path);
    return;
  }
  struct stat st;
  if (reload_file_secure &&
      (lstat(reload_file, &st) || !S_ISREG(st.st_mode) || st.st_uid != 0 || (st.st_mode & (S_IWGRP | S_IWOTH)))) {
    log_err("SIGHUP: %s is no longer a regular file of root's that only root can write: every setting "
            "stays as it was", reload_file);
    return;
  }
  config_defaults(n);
  if (config_load_file(n, reload_file)) {
    log_err("SIGHUP: %s did not load (see above): every setting stays as it was", reload_file);
    return;
  }
  for (int i = 0; i < n_cl; i++)
    if (config_set(n, cl[i].key, cl[i].val, NULL)) {
      log_err("SIGHUP: the command line's %s=%s no longer applies: every setting stays as it was", cl[i].key,
              cl[i].val);
      return;
    }
  config_add_loopback_direct(n);

#define SAME(f) (!memcmp(&n->f, &cfg.f, sizeof(cfg.f)))
  /* ---- needs a restart: name it, keep the running value ---- */
#define RESTART1(name, f) do { if (!SAME(f)) names_add(&restart, name); } while (0)
  RESTART1("tun", tun_name);
  RESTART1("tun_attach", tun_attach);
  RESTART1("mtu", mtu);
  RESTART1("txqueuelen", txqueuelen);
  RESTART1("offload", offload);
  RESTART1("real_hosts", real_hosts);
  if (!SAME(host4) || !SAME(prefix4))
    names_add(&restart, "host_ipv4");
  RESTART1("lwip_ipv4", lwip4);
  if (!SAME(have_v6) || (n->have_v6 && (!SAME(host6) || !SAME(prefix6))))
    names_add(&restart, "host_ipv6");
  if (n->have_v6 && !SAME(lwip6))
    names_add(&restart, "lwip_ipv6");
  RESTART1("socket", socket_path);
  if (!SAME(user_set) || (n->user_set && (!SAME(uid) || !SAME(gid))))
    names_add(&restart, "user");
  RESTART1("pidfile", pidfile);
  if (!SAME(allow_all_users) || !SAME(n_allow_uids) || !SAME(allow_uids))
    names_add(&restart, "allow_users");
  if (!SAME(n_allow_gids) || !SAME(allow_gids))
    names_add(&restart, "allow_groups");
  /* ---- applied: copied into the running settings ---- */
#define APPLY(name, ...) do {                                                      \
    int changed_ = 0;                                                              \
    const char *name_ = name;                                                      \
    __VA_ARGS__                                                                    \
    if (changed_)                                                                  \
      names_add(&applied, name_);                                                  \
  } while (0)
#define TAKE(f) do { if (!SAME(f)) { memcpy(&cfg.f, &n->f, sizeof(cfg.f)); changed_ = 1; } } while (0)
  APPLY("eno_teps", TAKE(eno_teps); TAKE(n_eno_teps););
  APPLY("eno_enable_connect", TAKE(eno_enable_connect););
  APPLY("eno_enable_listen", TAKE(eno_enable_listen););
  APPLY("eno_bad_connect_ports", TAKE(bad_connect_ports); TAKE(n_bad_connect_ports););
  APPLY("eno_bad_listen_ports", TAKE(bad_listen_ports); TAKE(n_bad_listen_ports););
  APPLY("eno_drop_syn_after", TAKE(eno_drop_syn_after););
  APPLY("crypt_aconf", TAKE(crypt_aconf); TAKE(n_crypt_aconf););
  APPLY("crypt_bconf", TAKE(crypt_bconf); TAKE(n_crypt_bconf););
  APPLY("rekey_bytes", TAKE(rekey_bytes););
  APPLY("rekey_seconds", TAKE(rekey_seconds););
  APPLY("resume_lifetime", TAKE(resume_lifetime););
  APPLY("resume_nonce_len", TAKE(resume_nonce_len););
  APPLY("ring_size", TAKE(ring_size););
  APPLY("direct", TAKE(direct); TAKE(n_direct););
  APPLY("direct_local", TAKE(direct_local););
  APPLY("time_wait_max", TAKE(time_wait_max); if (changed_) glue_set_time_wait_max(cfg.time_wait_max););
  APPLY("poll_us", TAKE(poll_us););   /* tund/loop.c reads it every turn */
  APPLY("resume_cache_size", TAKE(resume_cache_size);
        if (changed_) {
          char out[160];
          crypt_command(ENOIPC_CMD_FLUSH_CACHE, 0, out, sizeof(out));   /* made anew at the new size */
        });
  APPLY("verbose", TAKE(verbose);
        if (changed_ && !reload_verbose_flag)
          tund_log_level = cfg.verbose ? LOG_DEBUG_ : LOG_INFO_;);
  /* the key log: reopened whatever changed */
  if (!SAME(keylog_path)) {
    if (keylog_reopen(n->keylog_path) == 0) {
      memcpy(cfg.keylog_path, n->keylog_path, sizeof(cfg.keylog_path));
      names_add(&applied, "keylog");
    } else {
      log_err("SIGHUP: keylog: the new file cannot be opened (above): the old one stays");
    }
  } else {
    keylog_reopen(cfg.keylog_path);
  }
  /* settings this file does not know of: if any differs, it waits for a
   * restart too (cfg keeps the running value) */
  scratch = cfg;
#define KEEP(f) memcpy(&scratch.f, &n->f, sizeof(scratch.f))
  KEEP(tun_name); KEEP(tun_attach); KEEP(mtu); KEEP(txqueuelen); KEEP(offload); KEEP(real_hosts);
  KEEP(host4); KEEP(prefix4); KEEP(lwip4); KEEP(have_v6); KEEP(host6); KEEP(prefix6); KEEP(lwip6);
  KEEP(socket_path); KEEP(user_set); KEEP(uid); KEEP(gid); KEEP(pidfile); KEEP(keylog_path);
  KEEP(allow_all_users); KEEP(n_allow_uids); KEEP(allow_uids); KEEP(n_allow_gids); KEEP(allow_gids);
  KEEP(config_path);
  if (memcmp(&scratch, n, sizeof(scratch)))
    names_add(&restart, "other settings");
#undef KEEP
#undef TAKE
#undef APPLY
#undef RESTART1
#undef SAME
  log_info("SIGHUP: settings read again from %s: %s%s", reload_file,
           applied.n ? "applied: " : "nothing to apply", applied.n ? applied.buf : "");
  if (restart.n)
    log_warn("SIGHUP: changed in %s but needs a restart of tund (the running value stays): %s", reload_file,
             restart.buf);
}
