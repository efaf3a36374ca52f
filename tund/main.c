/*
 * tund/main.c — start-up, privilege drop, the loop, clean exit; and the
 * `enoctl` front end (same binary, chosen by argv[0]) that talks to a running
 * tund: status, rekey, flush-cache, stop.
 *
 * Start-up is one straight sequence: settings; TUN device and its addresses
 * (the only step that needs CAP_NET_ADMIN); drop every capability and set
 * no_new_privs; then everything else with the user's own rights.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <libgen.h>
#include <signal.h>
#include <stdarg.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/epoll.h>
#include <sys/un.h>
#include <unistd.h>

#include "lwip/init.h"
#include "lwip/tcp.h"
#include "lwip/timeouts.h"
#include "lwip_glue.h"
#include "tund.h"
#include "nat.h"
#include "enoshim/version.h"


static struct ev sig_ev;

static void sig_event(struct ev *ev, uint32_t events)
{
  struct signalfd_siginfo si;
  (void)events;
  while (read(ev->fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
    if (si.ssi_signo == SIGHUP) {
      tund_reload();           /* reload.c: never exits */
    } else if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT) {
      log_info("signal %u: closing %zu connections and exiting", si.ssi_signo, conn_count());
      loop_stop();
    }
  }
}

static void usage(FILE *f)
{
  fprintf(f,
    "usage: tund [--config FILE] [--KEY VALUE | --KEY=VALUE ...] [--ready-fd N] [-v]\n"
    "       tund -h | --help | --version\n"
    "Runs lwIP with TCP-ENO and tcpcrypt on a TUN device and serves the programs\n"
    "started with enorun (libenoshim.so); `enoctl` (the same program) asks it.\n"
    "\n"
    "  --config FILE   settings file (default $ENOSHIM_CONFIG); the command line\n"
    "                  overrides it\n"
    "  --ready-fd N    write \"ready\\n\" to descriptor N once serving, then close it\n"
    "  -v, --verbose   debug log\n"
    "  -h, --help      this text;  --version  the version\n"
    "\n"
    "Settings (in FILE as `key = value`; '-' and '_' are the same on the command line):\n"
    "  tun=NAME mtu=1280..65535 txqueuelen=N host_ipv4=A/N lwip_ipv4=A\n"
    "  host_ipv6=A/N|none lwip_ipv6=A tun_attach=yes|no offload=yes|no real_hosts=yes|no\n"
    "  socket=PATH (default $ENOSHIM_SOCKET; run by root /run/enoshim/tund.sock,\n"
    "    else $XDG_RUNTIME_DIR/enoshim/tund.sock)  user=NAME pidfile=PATH keylog=PATH\n"
    "  allow_users=NAME,...|* allow_groups=NAME,... (whom tund serves besides its\n"
    "    own user and root; default: everybody when run by root, else nobody)\n"
    "  ring_size=4k..64M time_wait_max=N poll_us=0..10000 direct=PREFIX,...\n"
    "  eno_teps=21,24,23 eno_enable_connect=yes eno_enable_listen=yes\n"
    "  eno_bad_connect_ports=443,993 eno_bad_listen_ports=... eno_drop_syn_after=0..16\n"
    "  crypt_aconf=aes128gcm,chacha20poly1305 crypt_bconf=... rekey_bytes=N rekey_seconds=N\n"
    "  resume_cache_size=N resume_lifetime=SECONDS resume_nonce_len=0..8 verbose=yes|no\n"
    "docs/tund.conf.example describes every setting and its default.\n");
}

/* A usage error: one line on stderr, exit status 2. */
static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...)
{
  va_list ap;
  fputs("tund: ", stderr);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputs(" (see 'tund --help')\n", stderr);
  return 2;
}

/* The command line, getopt_long's conventions: --name=value or --name value
 * (every setting key is an option taking a value), flags -h/--help,
 * --version, -v/--verbose (short flags may be grouped: -vh), "--" ends the
 * options.  tund takes no operands.  The keys are config.c's, so the
 * options are read here instead of from a fixed getopt_long table.  Returns
 * -1 to go on, else the exit status. */
struct cl_opt {
  char name[64];          /* '-' turned into '_' */
  const char *val;        /* NULL for a flag */
};

static int parse_command_line(int argc, char **argv, int *ready_fd)
{
  struct cl_opt *opts = calloc((size_t)argc + 1, sizeof(*opts));
  int n = 0, rc = -1;
  const char *cfgfile = getenv("ENOSHIM_CONFIG");
  if (!opts)
    return 1;
  for (int i = 1; i < argc && rc < 0; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--")) {
      if (i + 1 < argc)
        rc = usage_error("unexpected argument '%s'", argv[i + 1]);
      break;
    }
    if (a[0] == '-' && a[1] == '-') {
      const char *body = a + 2, *eq = strchr(body, '=');
      size_t nl = eq ? (size_t)(eq - body) : strlen(body);
      struct cl_opt *o = &opts[n];
      if (nl == 0 || nl >= sizeof(o->name)) {
        rc = usage_error("unknown option '%s'", a);
        break;
      }
      memcpy(o->name, body, nl);
      for (char *p = o->name; *p; p++)
        if (*p == '-')
          *p = '_';
      int flag = !strcmp(o->name, "help") || !strcmp(o->name, "version") || !strcmp(o->name, "verbose");
      if (!flag && strcmp(o->name, "config") && strcmp(o->name, "ready_fd") && !config_key_known(o->name)) {
        rc = usage_error("unknown option '--%.*s'", (int)nl, body);
        break;
      }
      if (eq)
        o->val = eq + 1;
      else if (!flag) {
        if (i + 1 >= argc) {
          rc = usage_error("option '%s' needs a value", a);
          break;
        }
        o->val = argv[++i];
      }
      if (o->val && (!strcmp(o->name, "help") || !strcmp(o->name, "version"))) {
        rc = usage_error("option '--%s' takes no value", o->name);
        break;
      }
      n++;
    } else if (a[0] == '-' && a[1]) {
      for (const char *p = a + 1; *p && rc < 0; p++) {
        const char *name = *p == 'h' ? "help" : *p == 'v' ? "verbose" : *p == 'V' ? "version" : NULL;
        if (!name)
          rc = usage_error("unknown option '-%c'", *p);
        else
          snprintf(opts[n++].name, sizeof(opts[0].name), "%s", name);
      }
    } else {
      rc = usage_error("unexpected argument '%s'", a);
    }
  }
  /* --help and --version answer without looking at anything else */
  for (int k = 0; k < n && rc < 0; k++) {
    if (!strcmp(opts[k].name, "help")) {
      usage(stdout);
      rc = 0;
    } else if (!strcmp(opts[k].name, "version")) {
      printf("tund (enoshim) %s\n", ENOSHIM_VERSION);
      rc = 0;
    }
  }
  if (rc >= 0)
    goto out;
  /* the file first, the command line over it */
  for (int k = 0; k < n; k++)
    if (!strcmp(opts[k].name, "config")) {
      if (!*opts[k].val) {
        rc = usage_error("option '--config' needs a file name");
        goto out;
      }
      cfgfile = opts[k].val;
    }
  if (cfgfile && *cfgfile && config_load_file(&cfg, cfgfile)) {
    rc = 2;
    goto out;
  }
  if (cfgfile && *cfgfile)
    reload_note_file(cfgfile, 0);   /* SIGHUP reads it again (reload.c) */
  tund_log_plain = 1;
  for (int k = 0; k < n && rc < 0; k++) {
    struct cl_opt *o = &opts[k];
    if (!strcmp(o->name, "config"))
      continue;
    if (!strcmp(o->name, "verbose") && !o->val) {
      tund_log_level = LOG_DEBUG_;
      reload_note_verbose();
    } else if (!strcmp(o->name, "ready_fd")) {
      char *end;
      errno = 0;
      long v = strtol(o->val, &end, 10);
      if (errno || end == o->val || *end || v < 0 || v > INT_MAX)
        rc = usage_error("ready-fd: '%s' is not a descriptor number (0..%d)", o->val, INT_MAX);
      else
        *ready_fd = (int)v;
    } else {
      if (config_set(&cfg, o->name, o->val, NULL))
        rc = 2;
      else
        reload_note_setting(o->name, o->val);
    }
  }
  tund_log_plain = 0;
out:
  free(opts);
  return rc;
}

static void raise_nofile(void)
{
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

int main(int argc, char **argv)
{
  const char *prog = basename(argv[0]);
  int ready_fd = -1;
  sigset_t mask;

  if (!strcmp(prog, "enoctl"))
    return enoctl_main(argc, argv);

  config_defaults(&cfg);
  /* file capabilities: settings only from the administrator's file (secure.c) */
  int src = secure_settings(&cfg, argc, argv);
  if (src >= 0)
    return src;
  int rc = parse_command_line(argc, argv, &ready_fd);
  if (rc >= 0)
    return rc;
  if (cfg.verbose)
    tund_log_level = LOG_DEBUG_;
  /* Loopback destinations are always connected directly by the shim; the
   * list sent to programs starts with them. */
  config_add_loopback_direct(&cfg);
  /* the control socket's path and directory, before anything is set up:
   * tund refuses a directory it does not own or others can write (client.c) */
  if (ctl_prepare(&cfg))
    return 1;

  if (sodium_init() < 0) {
    log_err("libsodium failed to initialise");
    return 1;
  }
  raise_nofile();
  signal(SIGPIPE, SIG_IGN);
  sigemptyset(&mask);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
  sigaddset(&mask, SIGHUP);
  sigprocmask(SIG_BLOCK, &mask, NULL);

  /* 1. privileged: the TUN device */
  int tunfd = tun_open(&cfg);
  if (tunfd < 0)
    return 1;
  if (loop_init()) {
    log_err("event loop: %s", strerror(errno));
    return 1;
  }
  lwip_init();
  if (glue_init()) {
    log_err("lwIP glue initialisation failed");
    return 1;
  }
  glue_set_time_wait_max(cfg.time_wait_max);
  if (tun_netif_start(tunfd, &cfg))
    return 1;

  /* The one part that keeps a capability (CAP_NET_ADMIN, for nftables): a
   * separate process, forked before the drop (tund/nat.h). */
  nat_start(&cfg);

  /* 2. drop privilege */
  if (priv_drop(&cfg))
    return 1;

  /* 3. the rest, unprivileged */
  if (keylog_open(cfg.keylog_path))
    return 1;
  sig_ev.fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
  sig_ev.fn = sig_event;
  if (sig_ev.fd < 0 || loop_add(&sig_ev, EPOLLIN)) {
    log_err("signalfd: %s", strerror(errno));
    return 1;
  }
  if (ctl_listen(cfg.socket_path))
    return 1;
  conn_module_init();
  if (cfg.pidfile[0]) {
    FILE *pf = fopen(cfg.pidfile, "we");
    if (pf) {
      fprintf(pf, "%d\n", (int)getpid());
      fclose(pf);
    }
  }
  {
    char a4[INET_ADDRSTRLEN], a6[INET6_ADDRSTRLEN] = "none";
    inet_ntop(AF_INET, &cfg.lwip4, a4, sizeof(a4));
    if (cfg.have_v6)
      inet_ntop(AF_INET6, &cfg.lwip6, a6, sizeof(a6));
    log_info("ready: %s mtu %d, lwIP %s / %s, socket %s", cfg.tun_name, cfg.mtu, a4, a6,
             cfg.socket_path);
  }
  if (ready_fd >= 0) {
    ssize_t w = write(ready_fd, "ready\n", 6);
    (void)w;
    close(ready_fd);
  }

  loop_run();

  conn_close_all();
  crypt_module_free();
  ctl_close_all();
  nat_stop();
  tun_close();
  if (cfg.pidfile[0])
    unlink(cfg.pidfile);
  log_info("exited cleanly");
  return 0;
}
