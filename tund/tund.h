/*
 * tund/tund.h — internal interfaces of the tund daemon.
 */
#ifndef TUND_H
#define TUND_H

#include <stdint.h>
#include <stddef.h>
#include <netinet/in.h>
#include <net/if.h>
#include <sys/types.h>

#include "enoshim/shm.h"
#include "enoshim/ipc.h"
#include "enoshim/prefix.h"

/* ---- log.c ---------------------------------------------------------------- */
enum { LOG_ERR_ = 0, LOG_WARN_ = 1, LOG_INFO_ = 2, LOG_DEBUG_ = 3 };
extern int tund_log_level;
extern int tund_log_plain;     /* 1 while the command line is read: "tund: text" */
void tund_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define log_err(...)   tund_log(LOG_ERR_, __VA_ARGS__)
#define log_warn(...)  tund_log(LOG_WARN_, __VA_ARGS__)
#define log_info(...)  tund_log(LOG_INFO_, __VA_ARGS__)
#define log_debug(...) do { if (tund_log_level >= LOG_DEBUG_) tund_log(LOG_DEBUG_, __VA_ARGS__); } while (0)
/* Rate-limited variant for things a peer or a program can trigger at will. */
void tund_log_limited(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- loop.c: epoll + timerfd + signalfd ------------------------------------
 * Order of one turn (redis ae style, written down because it matters):
 *   1. epoll_wait: 0 if work is pending; otherwise a look without sleeping
 *      for as long as the adaptive polling window says (poll_us=, loop.c
 *      wait_events), then a sleep until an event or lwIP's next timer;
 *   2. handlers of ready fds run in the order epoll returned them;
 *   3. lwIP timers (sys_check_timeouts) if due, then the segments lwIP sent
 *      to its own addresses (tun_loopback_poll);
 *   4. deferred work: connections marked dirty get their rings pumped once;
 *   5. objects released during the turn are freed (so that no handler of
 *      this turn can touch freed memory). */
struct ev {
  void (*fn)(struct ev *ev, uint32_t events);
  int fd;
};
int  loop_init(void);
int  loop_add(struct ev *ev, uint32_t events);
int  loop_mod(struct ev *ev, uint32_t events);
void loop_del(struct ev *ev);
void loop_run(void);
void loop_stop(void);
int  loop_poll_info(char *out, size_t outlen);   /* the polling window and its counts, for enoctl check */
int  loop_stopping(void);
/* A packet crossed the TUN (the heap is given back after a quiet second). */
void loop_note_traffic(void);
/* Free `p` with `fn` after the current turn. */
void loop_defer_free(void (*fn)(void *), void *p);

/* ---- config.c --------------------------------------------------------------- */

#define TUND_MAX_PORTS 64
#define TUND_MAX_ALLOW 64
struct tund_config {
  char tun_name[IFNAMSIZ];
  int  tun_attach;            /* persistent TUN owned by the user: no configuration */
  int  mtu;
  int  txqueuelen;            /* the TUN's queue towards tund, packets */
  int  offload;               /* TUN checksum offload (virtio-net header) */
  int  real_hosts;            /* masquerade lwIP, publish listening ports (tund/nat.h) */
  struct in_addr host4, lwip4;
  int  prefix4;
  int  have_v6;
  struct in6_addr host6, lwip6;
  int  prefix6;
  char socket_path[108];
  char keylog_path[256];
  char config_path[256];
  uint32_t ring_size;
  uint32_t time_wait_max;      /* connections kept in TIME-WAIT at most (0: all) */
  uint32_t poll_us;            /* adaptive polling before the event loop sleeps, at most (0: off) */
  int  n_direct;
  struct prefix direct[ENOIPC_MAX_DIRECT];
  int  direct_local;           /* this host's own addresses are direct (shim/direct.c) */
  /* api-06 §2.2 system-wide ENO options */
  uint8_t eno_teps[32];
  int  n_eno_teps;
  int  eno_enable_connect;
  int  eno_enable_listen;
  uint16_t bad_connect_ports[TUND_MAX_PORTS];
  int  n_bad_connect_ports;
  uint16_t bad_listen_ports[TUND_MAX_PORTS];
  int  n_bad_listen_ports;
  int  eno_drop_syn_after;    /* drop ENO from SYN retransmission n and later (0 = never) */
  /* api-06 §3.2 tcpcrypt */
  uint16_t crypt_aconf[8];
  int  n_crypt_aconf;
  uint16_t crypt_bconf[8];
  int  n_crypt_bconf;
  uint64_t rekey_bytes;       /* rekey after this many bytes sent under one key (0 = never) */
  uint32_t rekey_seconds;     /* ... or this many seconds (0 = never) */
  uint32_t resume_cache_size;
  uint32_t resume_lifetime;   /* seconds */
  int  resume_nonce_len;
  int  verbose;
  int  user_set;
  uid_t uid;
  gid_t gid;
  char pidfile[256];
  /* access.c: whom tund serves besides its own uid and root */
  int  allow_all_users;       /* allow_users = * */
  int  n_allow_uids, n_allow_gids;
  uid_t allow_uids[TUND_MAX_ALLOW];
  gid_t allow_gids[TUND_MAX_ALLOW];
};
extern struct tund_config cfg;
void config_defaults(struct tund_config *c);
int  config_load_file(struct tund_config *c, const char *path);   /* 0 or -1 (logged) */
/* 0, -1 (bad value, logged) or CONFIG_UNKNOWN; where: "FILE:LINE", or NULL
 * for the command line */
#define CONFIG_UNKNOWN (-2)
int  config_set(struct tund_config *c, const char *key, const char *val, const char *where);
int  config_key_known(const char *key);
void config_default_socket_path(char *out, size_t n);

/* ---- tun.c ------------------------------------------------------------------ */
int  tun_open(const struct tund_config *c);          /* fd, or -1 with a message */
int  tun_netif_start(int fd, const struct tund_config *c);
void tun_close(void);
/* packets lwIP sent to its own addresses, delivered once per loop turn */
int  tun_loopback_pending(void);
/* A path MTU learned for dst (an ICMPv6 Packet Too Big): TCP segments to it
 * that are larger leave split by the kernel's segmentation (tund/tun.c).
 * 1 if that is news (unknown, or smaller than known), else 0. */
int  tun_pmtu_note(const uint8_t dst6[16], unsigned mtu);
void tun_loopback_poll(void);

/* ---- priv.c ------------------------------------------------------------------- */
int  priv_drop(const struct tund_config *c);          /* 0 or -1 (logged) */

/* ---- access.c: who may use tund, see and act on what ------------------------------ */
int  access_parse(struct tund_config *c, const char *key, const char *val, char *why, size_t whylen);
void access_start(const struct tund_config *c);   /* before the privilege drop */
uid_t access_tund_uid(void);
int  access_admin(uid_t uid);                      /* root or tund's own uid */
int  access_serves_others(void);
int  access_client_ok(int fd, uid_t uid, gid_t gid, char *why, size_t whylen);
int  access_kfd_holds_port(int kfd, uint16_t port, char *why, size_t whylen);  /* publishing (request.c) */

/* ---- secure.c: tund with privileges its user does not have (file capabilities) -- */
#define TUND_SECURE_CONF "/etc/enoshim/tund.conf"
int  secure_settings(struct tund_config *c, int argc, char **argv);   /* -1 go on, else exit status */

/* ---- client.c: control connections -------------------------------------------- */
int  ctl_prepare(struct tund_config *c);   /* before the TUN: the socket's path and directory */
int  ctl_listen(const char *path);
void ctl_close_all(void);

/* ---- connections: sockets of programs, lwIP pcbs, rings ----------------------
 * conn.c lists the files; tund/conn.h is their internal interface. */
struct conn;
struct client;
/* conn.c: the table */
void conn_module_init(void);
void conn_close_all(void);
size_t conn_count(void);
struct conn *conn_find(uint64_t id);
void conn_touch_pid(struct conn *c, pid_t pid);
/* request.c: requests (client.c parses, request.c executes).  Each returns 0
 * or a positive errno for the program. */
int  conn_socket(struct client *cl, int domain, int v6only, uint64_t *id, int fds[2], uint32_t *shm_size);
int  conn_bind(struct conn *c, const struct enoipc_addr *a, int kernel_bound, struct enoipc_addr *bound);
int  conn_listen(struct conn *c, int backlog, int kfd);
int  conn_connect(struct conn *c, const struct enoipc_addr *a);
void conn_connect_posted_failed(struct conn *c, int err);
int  conn_setopt(struct conn *c, int level, int name, const uint8_t *val, uint32_t len);
void conn_posted_failed(struct conn *c, int level, int name, int err);
int  conn_getopt(struct conn *c, int level, int name, uint8_t *val, uint32_t *len);
int  conn_shutdown(struct conn *c, int how);
void conn_forked(const uint64_t *ids, size_t n);
int  conn_attach(int pairfd, uint64_t *id, uint32_t *kind, int *memfd, uint32_t *shm_size);
/* listener.c: a listener made by a tund that died, handed over (shim/relisten.c).
 * Takes every fd; *id: the listener's id (0 on failure). */
int  conn_relisten(pid_t pid, uint64_t want_id, const struct enoipc_relisten *rq, const uint8_t *opts,
                   uint32_t opts_len, int pfd, int tfd, int memfd, int kfd, uint64_t *id);
/* request.c: after a listen() that made c a listener, copies of tund's end of
 * its pair and of its memfd for the program to keep: 2, or 0 */
int  conn_kept_ends(struct conn *c, int fds[2]);
/* Fill a status entry; iterate with conn_status_next (NULL starts). */
struct conn *conn_status_next(struct conn *prev, struct enoipc_status_entry *e);
int  conn_command(uint32_t cmd, uint64_t arg, char *out, size_t outlen);
/* progend.c: the program's end of the pair */
void conn_closed_hint(struct conn *c);
void conn_kick(struct conn *c);
/* Called once per loop turn: pump connections with pending work. */
void conn_run_pending(void);
int  conn_have_pending(void);
/* spares.c: spare shared memory, owned by a control connection's key
 * (client.c) or a listener */
void conn_spares_drop(uint64_t key);
int  conn_spares_check(char *out, size_t outlen);
uint64_t client_spare_key(const struct client *cl);
int  client_spare_key_alive(uint64_t key);
/* Work for a loop that would otherwise sleep (ephemeral keys ahead of time);
 * 1 if it did some.  And the keys' release at exit. */
int  crypt_idle(void);
void crypt_module_free(void);

/* ---- keylog.c ------------------------------------------------------------------- */
/* ---- enoctl.c ---- */
int  enoctl_main(int argc, char **argv);

int  keylog_open(const char *path);
int  keylog_reopen(const char *path);      /* SIGHUP: 0, or -1 (the old file stays) */
void keylog_write(const char *line);

/* ---- reload.c: SIGHUP reads the settings again --------------------------------- */
/* what main.c did at start: the file read ("" none; secure: the
 * administrator's file of a tund with file capabilities), each command-line
 * setting applied over it, -v */
void reload_note_file(const char *path, int secure);
void reload_note_setting(const char *key, const char *val);
void reload_note_verbose(void);
void config_add_loopback_direct(struct tund_config *c);
void tund_reload(void);

/* Reading a level-triggered fd until EAGAIN costs a read that finds nothing
 * on every wake-up.  While wake-ups keep bringing one item each (packets on
 * the TUN, messages on a control connection), read just one and let epoll
 * report any other; a full read now and then notices when batches come
 * back.  *evidence is per fd, 0 at start. */
static inline int single_read_limit(unsigned *evidence, int batch)
{
  if (*evidence < 4)
    return batch;
  (*evidence)--;
  return 1;
}
/* after a read that reached EAGAIN having found `got` items */
static inline void single_read_note(unsigned *evidence, int got)
{
  *evidence = got == 1 ? (*evidence + 4 > 16 ? 16 : *evidence + 4) : 0;
}

#endif
