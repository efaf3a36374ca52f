/*
 * enorun/enorun.c — run an unmodified program with its TCP through enoshim.
 *
 *   enorun [OPTIONS] [--] PROGRAM [ARGS...]
 *   enorun -h | --help | --version
 *
 * What it does, in order:
 *   1. reads its options (getopt_long: --opt value and --opt=value; a usage
 *      error is one line on stderr and exit status 2) and checks their
 *      values (--direct as common/prefix.c reads prefixes, --eno-teps as TEP
 *      bytes 0x20..0x7f);
 *   2. finds PROGRAM through PATH (127 "command not found", 126 not
 *      executable) and libenoshim.so (next to itself, the installed layout
 *      ../lib/enoshim, or the library directory given when it was built);
 *   3. warns in one line when PROGRAM will not load the library — statically
 *      linked, set-user-ID, another ELF class, a Go program — and with
 *      --eno-mandatory refuses to run it (exit status 1);
 *   4. unless --fallback=plain, asks enoctl whether a tund answers (enoctl
 *      and the shim compute the default socket path; enorun passes --socket
 *      on as ENOSHIM_SOCKET and computes no path itself);
 *   5. sets LD_PRELOAD and the shim's ENOSHIM_* variables and execs PROGRAM.
 *
 * --sandbox instead makes an unprivileged user + network namespace (what
 * `unshare -Urn` does), starts a private tund in it (real_hosts=no: there
 * are no other hosts; direct_local=no: the sandbox's kernel stands for
 * them, reached through lwIP), says "sandbox ready" with the address programs of
 * the sandbox reach each other at, runs PROGRAM as its child and stops
 * tund when PROGRAM ends, with PROGRAM's exit status.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <limits.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "enoshim/prefix.h"
#include "enoshim/version.h"
#include "enoshim-paths.h"
#include "elfcheck.h"

#define DIRECT_MAX 64          /* the shim's limit for ENOSHIM_DIRECT */
#define TEPS_MAX   32          /* the shim's limit for ENOSHIM_ENO_TEPS */

static const char *prog_name = "enorun";

static struct {
  const char *socket;        /* --socket, or NULL: enoctl and the shim decide */
  int fallback_plain;
  int sandbox;
  int debug;
  int no_eno;
  int mandatory;
  const char *teps;          /* checked --eno-teps value */
  const char *direct;        /* checked --direct value */
  const char **tund_args;
  int n_tund_args;
} opt;

/* ---- messages ------------------------------------------------------------------ */

static void usage(void)
{
  printf(
    "usage: enorun [OPTIONS] [--] PROGRAM [ARGS...]\n"
    "       enorun -h | --help | --version\n"
    "Runs PROGRAM with its TCP connections through enoshim: TCP-ENO (RFC 8547)\n"
    "and tcpcrypt (RFC 8548) with every peer that speaks them, plain TCP with\n"
    "the others.  PROGRAM must be dynamically linked against libc.\n"
    "\n"
    "Options (--opt VALUE or --opt=VALUE):\n"
    "  --socket PATH       tund's socket (default: $ENOSHIM_SOCKET, else the\n"
    "                      default path enoctl and the shim use; see enoctl --help)\n"
    "  --fallback plain    if no tund answers, run with plain kernel sockets\n"
    "                      instead of refusing to start (also --plain-fallback)\n"
    "  --sandbox           run in a new unprivileged user + network namespace with\n"
    "                      a private tund (needs read/write access to /dev/net/tun)\n"
    "  --tund-arg ARG      a setting for the sandbox's tund, e.g.\n"
    "                      --tund-arg --keylog=/tmp/keys (repeatable)\n"
    "  --eno-teps LIST     the TEPs to offer, in hex, e.g. 23,24 (each 20..7f, at\n"
    "                      most %d; the default list is tund's eno_teps)\n"
    "  --no-eno            ENO off for this program's sockets (plain TCP)\n"
    "  --eno-mandatory     abort connections that cannot be encrypted\n"
    "                      (TCP_ENO_TEP_MANDATORY), and refuse to run a PROGRAM\n"
    "                      that would not load libenoshim.so\n"
    "  --direct PREFIXES   plain kernel sockets for these destinations too\n"
    "                      (ADDRESS or ADDRESS/LENGTH, IPv4 0..32, IPv6 0..128,\n"
    "                      separated by commas), besides loopback\n"
    "  --debug             the shim logs its decisions and each connection's\n"
    "                      outcome (encrypted or plain and why) on stderr\n"
    "  -h, --help          this text\n"
    "  --version           the version\n"
    "\n"
    "Exit status: PROGRAM's; 1 if enorun could not start it (no tund, a program\n"
    "refused by --eno-mandatory, the sandbox failed), 2 usage error, 126 PROGRAM\n"
    "not executable, 127 PROGRAM not found.\n",
    TEPS_MAX);
}

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...)
{
  va_list ap;
  fprintf(stderr, "%s: ", prog_name);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputs(" (see 'enorun --help')\n", stderr);
  return 2;
}

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
  va_list ap;
  fprintf(stderr, "%s: ", prog_name);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
}

/* ---- option values ------------------------------------------------------------- */

static int check_direct(const char *v)
{
  struct prefix p[DIRECT_MAX];
  char bad[64];
  int n = prefix_parse_list(v, p, DIRECT_MAX, bad, sizeof(bad));
  if (n == PREFIX_LIST_TOO_MANY)
    return usage_error("--direct: more than %d prefixes (from '%s' on)", DIRECT_MAX, bad);
  if (n < 0)
    return usage_error("--direct: '%s' is not ADDRESS or ADDRESS/LENGTH (IPv4 length 0..32, "
                       "IPv6 0..128)", bad);
  if (n == 0)
    return usage_error("--direct: no prefix given (e.g. --direct 192.168.0.0/16,fd00::/8)");
  return 0;
}

static int check_teps(const char *v)
{
  int n = 0;
  unsigned char seen[128] = { 0 };
  const char *p = v;
  for (;;) {
    while (*p == ',' || *p == ' ')
      p++;
    if (!*p)
      break;
    size_t len = strcspn(p, ", ");
    char tok[16];
    snprintf(tok, sizeof(tok), "%.*s", (int)(len < sizeof(tok) - 1 ? len : sizeof(tok) - 1), p);
    const char *h = tok;
    if (h[0] == '0' && (h[1] == 'x' || h[1] == 'X'))
      h += 2;
    char *end;
    unsigned long b = strtoul(h, &end, 16);
    if (len >= sizeof(tok) - 1 || !*h || *end || strlen(h) > 2 || h[0] == '-' || h[0] == '+' ||
        h[0] == ' ')
      return usage_error("--eno-teps: '%.*s' is not a TEP identifier (a hex byte 20..7f, e.g. 23,24)",
                         (int)len, p);
    if (b < 0x20 || b > 0x7f)
      return usage_error("--eno-teps: %02lx is out of range 20..7f (hex)", b);
    if (seen[b]++)
      return usage_error("--eno-teps: %02lx is listed twice", b);
    if (++n > TEPS_MAX)
      return usage_error("--eno-teps: more than %d TEPs", TEPS_MAX);
    p += len;
  }
  if (!n)
    return usage_error("--eno-teps: no TEP given (hex bytes 20..7f, e.g. 23,24)");
  return 0;
}

/* ---- finding files -------------------------------------------------------------- */

static char self_dir[PATH_MAX];

static void find_self(void)
{
  ssize_t n = readlink("/proc/self/exe", self_dir, sizeof(self_dir) - 1);
  if (n <= 0) {
    self_dir[0] = 0;
    return;
  }
  self_dir[n] = 0;
  char *s = strrchr(self_dir, '/');
  if (s)
    *s = 0;
}

/* out names a regular file (executable if want_exec): made canonical */
static int usable(char *out, size_t len, int want_exec)
{
  struct stat st;
  char real_path[PATH_MAX];
  if (stat(out, &st) || !S_ISREG(st.st_mode) || (want_exec && access(out, X_OK)))
    return 0;
  if (realpath(out, real_path) && strlen(real_path) < len)
    memcpy(out, real_path, strlen(real_path) + 1);
  return 1;
}

/* The first of self_dir/REL... (then the built-in directory) holding name. */
static int find_near(const char *name, int want_exec, const char *const *rels, const char *builtin,
                     char *out, size_t len)
{
  for (int i = 0; rels[i]; i++) {
    if (!self_dir[0])
      break;
    if (snprintf(out, len, "%s%s/%s", self_dir, rels[i], name) < (int)len && usable(out, len, want_exec))
      return 0;
  }
  if (builtin && *builtin && snprintf(out, len, "%s/%s", builtin, name) < (int)len &&
      usable(out, len, want_exec))
    return 0;
  return -1;
}

static int find_lib(char *out, size_t len)
{
  /* build/ (next to it), installed (bin/ -> lib/enoshim/ or lib/) */
  static const char *const rels[] = { "", "/../lib/enoshim", "/../lib", NULL };
  return find_near("libenoshim.so", 0, rels, ENOSHIM_PKGLIBDIR, out, len);
}

static int find_daemon(const char *name, char *out, size_t len)
{
  static const char *const rels[] = { "", "/../sbin", "/../bin", NULL };
  return find_near(name, 1, rels, ENOSHIM_SBINDIR, out, len);
}

/* PROGRAM through PATH, as execvp looks for it.  0, or the exit status to
 * give up with (126, 127) after saying why (unless quiet). */
static int find_program(const char *name, char *out, size_t len, int quiet)
{
  struct stat st;
  if (strchr(name, '/')) {
    snprintf(out, len, "%s", name);
    if (stat(out, &st)) {
      if (!quiet)
        say("%s: %s", name, strerror(errno));
      return 127;
    }
    if (S_ISDIR(st.st_mode)) {
      if (!quiet)
        say("%s: is a directory", name);
      return 126;
    }
    if (access(out, X_OK)) {
      if (!quiet)
        say("%s: %s", name, strerror(errno));
      return 126;
    }
    return 0;
  }
  const char *path = getenv("PATH");
  if (!path || !*path)
    path = "/usr/local/bin:/usr/bin:/bin";
  int denied = 0;
  for (const char *p = path;;) {
    size_t n = strcspn(p, ":");
    if (n == 0)
      snprintf(out, len, "%s", name);                 /* an empty entry: the current directory */
    else
      snprintf(out, len, "%.*s/%s", (int)n, p, name);
    if (stat(out, &st) == 0 && S_ISREG(st.st_mode)) {
      if (access(out, X_OK) == 0)
        return 0;
      denied = 1;
    }
    if (!p[n])
      break;
    p += n + 1;
  }
  if (denied) {
    if (!quiet)
      say("%s: Permission denied", name);
    return 126;
  }
  if (!quiet)
    say("%s: command not found", name);
  return 127;
}

/* ---- will PROGRAM load libenoshim.so? -------------------------------------------- */

/* Why not, in buf, or NULL.  Follows a script's "#!" (and `env NAME`) to
 * the ELF file the kernel will run. */
static const char *why_not_preloaded(const char *path, const struct elf_facts *lib, char *buf, size_t len)
{
  char cur[PATH_MAX], via[PATH_MAX] = "";
  snprintf(cur, sizeof(cur), "%s", path);
  for (int depth = 0; depth < 4; depth++) {
    struct stat st;
    struct elf_facts f;
    char why[200];
    if (stat(cur, &st) || elf_inspect_path(cur, &f))
      return NULL;                 /* exec will say what is wrong */
    const char *w = f.elf ? elf_why_not(&f, lib, why, sizeof(why)) : NULL;
    if (!w && f.elf)
      w = exec_is_secure(cur, &st, why, sizeof(why));
    if (w) {
      if (via[0])
        snprintf(buf, len, "runs through %s, which %s", via, w);
      else
        snprintf(buf, len, "%s", w);
      return buf;
    }
    if (f.elf)
      return NULL;
    char interp[PATH_MAX], arg[PATH_MAX];
    if (script_interp(cur, interp, sizeof(interp), arg, sizeof(arg)) != 1)
      return NULL;                 /* neither ELF nor a script: exec decides */
    const char *base = strrchr(interp, '/');
    base = base ? base + 1 : interp;
    if (!strcmp(base, "env") && arg[0]) {
      /* #!/usr/bin/env [-S] NAME ...: NAME through PATH */
      char *a = arg;
      if (!strncmp(a, "-S", 2))
        a += 2;
      while (*a == ' ' || *a == '\t')
        a++;
      a[strcspn(a, " \t")] = 0;
      if (!*a || *a == '-')
        return NULL;
      char found[PATH_MAX];
      if (find_program(a, found, sizeof(found), 1))
        return NULL;
      snprintf(interp, sizeof(interp), "%s", found);
    }
    snprintf(via, sizeof(via), "%s", interp);
    snprintf(cur, sizeof(cur), "%s", interp);
  }
  return NULL;
}

/* ---- is a tund there? -------------------------------------------------------------- */

/* Ask `enoctl status` (bounded by its --timeout).  0 if tund answers, else
 * 1 after one line saying why (enoctl's own words). */
static int check_tund(void)
{
  char enoctl[PATH_MAX];
  if (find_daemon("enoctl", enoctl, sizeof(enoctl))) {
    if (opt.debug)
      say("enoctl not found next to enorun: not checking that a tund answers");
    return 0;
  }
  int pfd[2];
  if (pipe2(pfd, O_CLOEXEC))
    return 0;
  pid_t pid = fork();
  if (pid < 0) {
    close(pfd[0]);
    close(pfd[1]);
    return 0;
  }
  if (pid == 0) {
    int null = open("/dev/null", O_RDWR);
    if (null >= 0) {
      dup2(null, 0);
      dup2(null, 1);
    }
    dup2(pfd[1], 2);
    const char *argv[8];
    int k = 0;
    argv[k++] = "enoctl";
    if (opt.socket) {
      argv[k++] = "--socket";
      argv[k++] = opt.socket;
    }
    argv[k++] = "--timeout";
    argv[k++] = "5";
    argv[k++] = "status";
    argv[k] = NULL;
    execv(enoctl, (char *const *)argv);
    _exit(127);
  }
  close(pfd[1]);
  char msg[1024];
  size_t got = 0;
  for (;;) {
    ssize_t n = read(pfd[0], msg + got, sizeof(msg) - 1 - got);
    if (n > 0 && (got += (size_t)n) < sizeof(msg) - 1)
      continue;
    if (n < 0 && errno == EINTR)
      continue;
    break;
  }
  close(pfd[0]);
  msg[got] = 0;
  int status;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
    ;
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
    return 0;
  msg[strcspn(msg, "\n")] = 0;
  const char *m = msg;
  if (!strncmp(m, "enoctl: ", 8))
    m += 8;
  if (!*m)
    m = "no tund answers";
  say("%s — start one (tund, as root or with CAP_NET_ADMIN), use --sandbox, or --fallback=plain "
      "for plain kernel sockets", m);
  return 1;
}

/* ---- the program's environment ------------------------------------------------------ */

static int set_env(const char *lib, const struct elf_facts *libf)
{
  char preload[3 * PATH_MAX];
  const char *old = getenv("LD_PRELOAD");
  int n;
  /* a sanitizer build of the shim (make SAN=1) needs its runtime loaded first */
  if (libf->needs_asan || libf->needs_ubsan) {
    n = snprintf(preload, sizeof(preload), "%s%s%s%s%s", libf->asan, libf->needs_asan ? ":" : "",
                 libf->ubsan, libf->needs_ubsan ? ":" : "", lib);
    if (!getenv("ASAN_OPTIONS"))
      setenv("ASAN_OPTIONS", "detect_leaks=0:verify_asan_link_order=0:abort_on_error=1", 1);
  } else {
    n = snprintf(preload, sizeof(preload), "%s", lib);
  }
  if (old && *old)
    n = snprintf(preload + n, sizeof(preload) - (size_t)n, ":%s", old);
  if (setenv("LD_PRELOAD", preload, 1))
    return -1;
  if (opt.socket && setenv("ENOSHIM_SOCKET", opt.socket, 1))
    return -1;
  if (opt.fallback_plain)
    setenv("ENOSHIM_FALLBACK", "plain", 1);
  if (opt.debug)
    setenv("ENOSHIM_DEBUG", "1", 1);
  if (opt.teps)
    setenv("ENOSHIM_ENO_TEPS", opt.teps, 1);
  if (opt.no_eno)
    setenv("ENOSHIM_ENO_ENABLED", "0", 1);
  if (opt.mandatory)
    setenv("ENOSHIM_ENO_MANDATORY", "1", 1);
  if (opt.direct)
    setenv("ENOSHIM_DIRECT", opt.direct, 1);
  return 0;
}

/* exec PROGRAM; returns only on failure, with the exit status to give */
static int exec_program(const char *path, char **argv)
{
  execv(path, argv);
  int e = errno;
  if (e == ENOEXEC) {
    /* no "#!": a shell script, as execvp runs it */
    int n = 0;
    while (argv[n])
      n++;
    char **sh = calloc((size_t)n + 2, sizeof(*sh));
    if (sh) {
      sh[0] = "sh";
      sh[1] = (char *)path;
      for (int i = 1; i < n; i++)
        sh[i + 1] = argv[i];
      execv("/bin/sh", sh);
    }
  }
  say("%s: %s", argv[0], strerror(e));
  return e == ENOENT ? 127 : 126;
}

/* ---- --sandbox ------------------------------------------------------------------------ */

static int write_file(const char *path, const char *text)
{
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0)
    return -1;
  ssize_t n = write(fd, text, strlen(text));
  int e = errno;
  close(fd);
  errno = e;
  return n == (ssize_t)strlen(text) ? 0 : -1;
}

/* unshare -Urn: a user namespace where we are root, and a network namespace */
static int make_namespaces(void)
{
  char map[64];
  uid_t uid = getuid();
  gid_t gid = getgid();
  if (unshare(CLONE_NEWUSER | CLONE_NEWNET)) {
    say("--sandbox: cannot make a user and network namespace: %s%s", strerror(errno),
        errno == EPERM || errno == ENOSPC
            ? " (unprivileged user namespaces may be off: sysctl user.max_user_namespaces, "
              "kernel.unprivileged_userns_clone)"
            : "");
    return -1;
  }
  snprintf(map, sizeof(map), "0 %u 1", (unsigned)uid);
  if ((write_file("/proc/self/setgroups", "deny") && errno != ENOENT) ||
      write_file("/proc/self/uid_map", map)) {
    say("--sandbox: cannot map user %u in the namespace: %s", (unsigned)uid, strerror(errno));
    return -1;
  }
  snprintf(map, sizeof(map), "0 %u 1", (unsigned)gid);
  if (write_file("/proc/self/gid_map", map)) {
    say("--sandbox: cannot map group %u in the namespace: %s", (unsigned)gid, strerror(errno));
    return -1;
  }
  /* lo up (ip link set lo up) */
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s >= 0) {
    struct ifreq ifr;
    memset(&ifr, 0, sizeof(ifr));
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
    if (ioctl(s, SIOCGIFFLAGS, &ifr) == 0) {
      ifr.ifr_flags |= IFF_UP;
      (void)ioctl(s, SIOCSIFFLAGS, &ifr);
    }
    close(s);
  }
  return 0;
}

static char sb_dir[64];
static pid_t tund_pid = -1;
static volatile sig_atomic_t child_pid = -1;

static int rm_entry(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
  (void)st, (void)flag, (void)ftw;
  remove(p);
  return 0;
}

static void sandbox_cleanup(void)
{
  if (tund_pid > 0) {
    kill(tund_pid, SIGTERM);
    for (int i = 0; i < 100; i++) {        /* 5 s, then kill -9 */
      if (waitpid(tund_pid, NULL, WNOHANG) == tund_pid) {
        tund_pid = -1;
        break;
      }
      struct timespec ts = { 0, 50000000 };
      nanosleep(&ts, NULL);
    }
    if (tund_pid > 0) {
      kill(tund_pid, SIGKILL);
      waitpid(tund_pid, NULL, 0);
      tund_pid = -1;
    }
  }
  if (sb_dir[0])
    nftw(sb_dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
  sb_dir[0] = 0;
}

static void forward_signal(int sig)
{
  if (child_pid > 0)
    kill(child_pid, sig);
}

/* "lwIP A / B," of tund's ready line -> "A and B" */
static void lwip_addresses(const char *log, char *out, size_t len)
{
  char buf[8192];
  snprintf(out, len, "the lwIP address");
  int fd = open(log, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return;
  ssize_t n = read(fd, buf, sizeof(buf) - 1);
  close(fd);
  if (n <= 0)
    return;
  buf[n] = 0;
  const char *r = strstr(buf, "ready: ");
  const char *l = r ? strstr(r, " lwIP ") : NULL;
  if (!l)
    return;
  l += 6;
  char a4[64], a6[64];
  if (sscanf(l, "%63s / %63[^, \n]", a4, a6) == 2)
    snprintf(out, len, "%s and %s", a4, a6);
}

static int run_sandbox(const char *tund, const char *path, char **argv, const char *lib,
                       const struct elf_facts *libf)
{
  if (access("/dev/net/tun", R_OK | W_OK)) {
    say("--sandbox: /dev/net/tun must be readable and writable by you (%s; it is crw-rw-rw- on "
        "Debian and Ubuntu)", strerror(errno));
    return 1;
  }
  if (make_namespaces())
    return 1;
  snprintf(sb_dir, sizeof(sb_dir), "/tmp/enorun.XXXXXX");
  if (!mkdtemp(sb_dir)) {
    say("--sandbox: cannot make a directory in /tmp: %s", strerror(errno));
    sb_dir[0] = 0;
    return 1;
  }
  char sock[128], logf[128], sockopt[160];
  snprintf(sock, sizeof(sock), "%s/tund.sock", sb_dir);
  snprintf(logf, sizeof(logf), "%s/tund.log", sb_dir);
  snprintf(sockopt, sizeof(sockopt), "--socket=%s", sock);

  int rp[2];
  if (pipe2(rp, O_CLOEXEC)) {
    say("--sandbox: pipe: %s", strerror(errno));
    sandbox_cleanup();
    return 1;
  }
  tund_pid = fork();
  if (tund_pid < 0) {
    say("--sandbox: fork: %s", strerror(errno));
    sandbox_cleanup();
    return 1;
  }
  if (tund_pid == 0) {
    /* its own process group: a ^C at the terminal is for PROGRAM; tund
     * stops when PROGRAM has ended */
    setpgid(0, 0);
    int lf = open(logf, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    int null = open("/dev/null", O_RDONLY);
    if (lf < 0 || null < 0)
      _exit(127);
    dup2(null, 0);
    dup2(lf, 1);
    dup2(lf, 2);
    dup2(rp[1], 3);              /* --ready-fd 3, without O_CLOEXEC */
    const char **a = calloc((size_t)opt.n_tund_args + 8, sizeof(*a));
    if (!a)
      _exit(127);
    int k = 0;
    a[k++] = "tund";
    a[k++] = sockopt;
    a[k++] = "--tun=enosb0";
    a[k++] = "--real_hosts=no";  /* the sandbox has no other hosts: nothing to masquerade or publish */
    /* its kernel (10.77.0.1) stands for the other hosts: programs reach it
     * through lwIP, as a plain peer, not directly as this host's own */
    a[k++] = "--direct_local=no";
    a[k++] = "--ready-fd=3";
    for (int i = 0; i < opt.n_tund_args; i++)
      a[k++] = opt.tund_args[i];
    a[k] = NULL;
    execv(tund, (char *const *)a);
    dprintf(2, "enorun: cannot run %s: %s\n", tund, strerror(errno));
    _exit(127);
  }
  close(rp[1]);
  char ready[8] = "";
  struct pollfd p = { .fd = rp[0], .events = POLLIN };
  int pr;
  do
    pr = poll(&p, 1, 20000);
  while (pr < 0 && errno == EINTR);
  ssize_t rn = pr > 0 ? read(rp[0], ready, sizeof(ready) - 1) : -1;
  close(rp[0]);
  if (rn < 5 || strncmp(ready, "ready", 5)) {
    say("the sandbox's tund did not start%s:", pr == 0 ? " within 20 s" : "");
    char buf[4096];
    int fd = open(logf, O_RDONLY | O_CLOEXEC);
    ssize_t n;
    while (fd >= 0 && (n = read(fd, buf, sizeof(buf))) > 0)
      fwrite(buf, 1, (size_t)n, stderr);
    if (fd >= 0)
      close(fd);
    sandbox_cleanup();
    return 1;
  }
  /* programs in this sandbox reach each other's listeners through lwIP's
   * own addresses, encrypted (lwIP delivers those packets to itself) */
  char lw[160];
  lwip_addresses(logf, lw, sizeof(lw));
  say("sandbox ready: servers here are reached encrypted at %s (same ports)", lw);

  opt.socket = sock;
  struct sigaction sa, old_int, old_quit;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = SIG_IGN;
  sigaction(SIGINT, &sa, &old_int);     /* PROGRAM decides what ^C means, as with system() */
  sigaction(SIGQUIT, &sa, &old_quit);
  sa.sa_handler = forward_signal;
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGHUP, &sa, NULL);
  pid_t c = fork();
  if (c < 0) {
    say("fork: %s", strerror(errno));
    sandbox_cleanup();
    return 1;
  }
  if (c == 0) {
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGQUIT, &old_quit, NULL);
    signal(SIGTERM, SIG_DFL);
    signal(SIGHUP, SIG_DFL);
    if (set_env(lib, libf)) {
      say("environment: %s", strerror(errno));
      _exit(1);
    }
    _exit(exec_program(path, argv));
  }
  child_pid = c;
  int status = 0;
  while (waitpid(c, &status, 0) < 0 && errno == EINTR)
    ;
  child_pid = -1;
  sandbox_cleanup();
  if (WIFSIGNALED(status)) {
    /* die the way PROGRAM died, so that a shell sees it */
    int sig = WTERMSIG(status);
    signal(sig, SIG_DFL);
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, sig);
    sigprocmask(SIG_UNBLOCK, &s, NULL);
    raise(sig);
    return 128 + sig;
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}

/* ---- main ------------------------------------------------------------------------------- */

int main(int argc, char **argv)
{
  enum { OPT_SOCKET = 256, OPT_FALLBACK, OPT_PLAIN_FALLBACK, OPT_SANDBOX, OPT_TUND_ARG, OPT_TEPS, OPT_NO_ENO,
         OPT_MANDATORY, OPT_DIRECT, OPT_DEBUG, OPT_VERSION };
  static const struct option longopts[] = {
    { "socket", required_argument, NULL, OPT_SOCKET },
    { "fallback", required_argument, NULL, OPT_FALLBACK },
    { "plain-fallback", no_argument, NULL, OPT_PLAIN_FALLBACK },
    { "sandbox", no_argument, NULL, OPT_SANDBOX },
    { "tund-arg", required_argument, NULL, OPT_TUND_ARG },
    { "eno-teps", required_argument, NULL, OPT_TEPS },
    { "no-eno", no_argument, NULL, OPT_NO_ENO },
    { "eno-mandatory", no_argument, NULL, OPT_MANDATORY },
    { "direct", required_argument, NULL, OPT_DIRECT },
    { "debug", no_argument, NULL, OPT_DEBUG },
    { "help", no_argument, NULL, 'h' },
    { "version", no_argument, NULL, OPT_VERSION },
    { NULL, 0, NULL, 0 },
  };
  int c, rc;

  opt.tund_args = calloc((size_t)argc, sizeof(*opt.tund_args));
  if (!opt.tund_args)
    return 1;
  opterr = 0;
  /* '+': options end at PROGRAM (its own options are its own); ':': a
   * missing value is told from an unknown option */
  while ((c = getopt_long(argc, argv, "+:h", longopts, NULL)) != -1) {
    switch (c) {
    case OPT_SOCKET:
      if (!*optarg)
        return usage_error("--socket needs a path");
      opt.socket = optarg;
      break;
    case OPT_FALLBACK:
      if (strcmp(optarg, "plain"))
        return usage_error("--fallback: '%s' is not allowed (the one fallback is 'plain')", optarg);
      opt.fallback_plain = 1;
      break;
    case OPT_PLAIN_FALLBACK:
      opt.fallback_plain = 1;
      break;
    case OPT_SANDBOX:
      opt.sandbox = 1;
      break;
    case OPT_TUND_ARG:
      if (!*optarg)
        return usage_error("--tund-arg needs a value (e.g. --tund-arg --keylog=/tmp/keys)");
      opt.tund_args[opt.n_tund_args++] = optarg;
      break;
    case OPT_TEPS:
      if ((rc = check_teps(optarg)))
        return rc;
      opt.teps = optarg;
      break;
    case OPT_NO_ENO:
      opt.no_eno = 1;
      break;
    case OPT_MANDATORY:
      opt.mandatory = 1;
      break;
    case OPT_DIRECT:
      if ((rc = check_direct(optarg)))
        return rc;
      opt.direct = optarg;
      break;
    case OPT_DEBUG:
      opt.debug = 1;
      break;
    case 'h':
      usage();
      return 0;
    case OPT_VERSION:
      printf("enorun (enoshim) %s\n", ENOSHIM_VERSION);
      return 0;
    case ':':
      return usage_error("option '%s' needs a value", argv[optind - 1]);
    default: {
      const char *a = argv[optind - 1];
      if (optopt && a[0] == '-' && a[1] == '-' && strchr(a, '='))
        return usage_error("option '%.*s' takes no value", (int)(strchr(a, '=') - a), a);
      if (optopt && optopt < 256)
        return usage_error("unknown option '-%c'", optopt);
      return usage_error("unknown option '%s'", a);
    }
    }
  }
  if (optind >= argc)
    return usage_error("no program given (enorun [OPTIONS] [--] PROGRAM [ARGS...])");
  if (opt.sandbox && opt.socket)
    return usage_error("--socket and --sandbox exclude each other (the sandbox has its own tund)");
  if (opt.n_tund_args && !opt.sandbox)
    return usage_error("--tund-arg applies to --sandbox only");
  if (opt.no_eno && opt.mandatory)
    return usage_error("--no-eno and --eno-mandatory exclude each other (no connection could be made)");
  char **pargv = argv + optind;

  char path[PATH_MAX], lib[PATH_MAX], tund[PATH_MAX];
  if ((rc = find_program(pargv[0], path, sizeof(path), 0)))
    return rc;
  find_self();
  if (find_lib(lib, sizeof(lib))) {
    say("libenoshim.so not found (looked next to enorun, in ../lib/enoshim, ../lib and %s)",
        ENOSHIM_PKGLIBDIR);
    return 1;
  }
  struct elf_facts libf;
  if (elf_inspect_path(lib, &libf) || !libf.elf) {
    say("%s: %s", lib, libf.elf ? strerror(errno) : "not an ELF shared library");
    return 1;
  }
  char why[PATH_MAX + 300];
  if (why_not_preloaded(path, &libf, why, sizeof(why))) {
    if (opt.mandatory) {
      say("%s %s: libenoshim.so would not load into it and its TCP would be plain kernel TCP; "
          "not running it (--eno-mandatory)", pargv[0], why);
      return 1;
    }
    say("warning: %s %s: its TCP will NOT go through enoshim (plain kernel TCP)", pargv[0], why);
  }
  if (opt.sandbox) {
    if (find_daemon("tund", tund, sizeof(tund))) {
      say("--sandbox: tund not found (looked next to enorun, in ../sbin, ../bin and %s)",
          ENOSHIM_SBINDIR);
      return 1;
    }
    fflush(stdout);
    return run_sandbox(tund, path, pargv, lib, &libf);
  }
  if (!opt.fallback_plain && check_tund())
    return 1;
  if (set_env(lib, &libf)) {
    say("environment: %s", strerror(errno));
    return 1;
  }
  return exec_program(path, pargv);
}
