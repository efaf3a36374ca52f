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
#include <getopt.h>
#include <libgen.h>
#include <signal.h>
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


static struct ev sig_ev;

static void sig_event(struct ev *ev, uint32_t events)
{
  struct signalfd_siginfo si;
  (void)events;
  while (read(ev->fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
    if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT || si.ssi_signo == SIGHUP) {
      log_info("signal %u: closing %zu connections and exiting", si.ssi_signo, conn_count());
      loop_stop();
    }
  }
}

static void usage(FILE *f)
{
  fprintf(f,
    "usage: tund [--config FILE] [--KEY=VALUE ...] [--ready-fd N] [-v]\n"
    "  Runs lwIP with TCP-ENO and tcpcrypt on a TUN device and serves programs\n"
    "  started with enorun (libenoshim.so).  Settings (file or command line):\n"
    "    tun=NAME mtu=N txqueuelen=N host_ipv4=A/N lwip_ipv4=A host_ipv6=A/N|none lwip_ipv6=A\n"
    "    tun_attach=yes (persistent TUN owned by you, configured by the admin)\n"
    "    socket=PATH (default $ENOSHIM_SOCKET, $XDG_RUNTIME_DIR/enoshim/tund.sock)\n"
    "    ring_size=N time_wait_max=N direct=PREFIX,... keylog=PATH user=NAME pidfile=PATH\n"
    "    eno_teps=21,24,23 eno_enable_connect=1 eno_enable_listen=1\n"
    "    eno_bad_connect_ports=443,993 eno_bad_listen_ports=... eno_drop_syn_after=N\n"
    "    crypt_aconf=aes128gcm,chacha20poly1305 crypt_bconf=... rekey_bytes=N rekey_seconds=N\n"
    "    resume_cache_size=N resume_lifetime=SECONDS resume_nonce_len=0..8\n"
    "  See docs/tund.conf.example for every setting and its default.\n");
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
  const char *cfgfile = getenv("ENOSHIM_CONFIG");
  for (int i = 1; i < argc; i++)
    if (!strcmp(argv[i], "--config") && i + 1 < argc)
      cfgfile = argv[i + 1];
  if (cfgfile && *cfgfile && config_load_file(&cfg, cfgfile))
    return 2;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--config")) {
      i++;
    } else if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) {
      tund_log_level = LOG_DEBUG_;
    } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
      usage(stdout);
      return 0;
    } else if (!strcmp(a, "--ready-fd") && i + 1 < argc) {
      ready_fd = atoi(argv[++i]);
    } else if (!strncmp(a, "--", 2) && strchr(a, '=')) {
      char key[64];
      const char *eq = strchr(a, '=');
      size_t kl = (size_t)(eq - a - 2);
      if (kl >= sizeof(key)) {
        log_err("unknown option %s", a);
        return 2;
      }
      memcpy(key, a + 2, kl);
      key[kl] = 0;
      for (char *p = key; *p; p++)
        if (*p == '-')
          *p = '_';
      if (config_set(&cfg, key, eq + 1, "command line"))
        return 2;
    } else {
      log_err("unknown argument '%s' (try --help)", a);
      return 2;
    }
  }
  if (cfg.verbose)
    tund_log_level = LOG_DEBUG_;
  /* Loopback destinations are always connected directly by the shim; the
   * list sent to programs starts with them. */
  {
    struct prefix lo4 = { .family = AF_INET, .len = 8, .addr = { 127 } };
    struct prefix lo6 = { .family = AF_INET6, .len = 128, .addr = { [15] = 1 } };
    memmove(&cfg.direct[2], &cfg.direct[0], sizeof(cfg.direct[0]) * (size_t)cfg.n_direct);
    cfg.direct[0] = lo4;
    cfg.direct[1] = lo6;
    cfg.n_direct += 2;
  }

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
