/*
 * enoshim/sockpath.h — where tund's control socket is, and whom a client
 * believes when something answers there (common/sockpath.c: the one
 * implementation behind tund, enoctl and libenoshim.so; enorun asks enoctl).
 *
 * Default paths:
 *   tund (the server)   $ENOSHIM_SOCKET if set (not when tund runs with
 *                       privileges its user does not have: AT_SECURE);
 *                       else, run by root (euid 0): /run/enoshim/tund.sock;
 *                       else $XDG_RUNTIME_DIR/enoshim/tund.sock (AT_SECURE:
 *                       /run/user/UID/enoshim/tund.sock); else none: tund
 *                       asks for --socket.
 *   clients (shim,      $ENOSHIM_SOCKET if set (not under AT_SECURE); else
 *   enoctl)             $XDG_RUNTIME_DIR/enoshim/tund.sock if that exists
 *                       (a per-user tund); else /run/enoshim/tund.sock (the
 *                       host's tund).
 *
 * Whom a client believes: the socket's directory must belong to a trusted
 * uid and be writable by nobody else, and the process serving the socket
 * (SO_PEERCRED) must run as a trusted uid.  Trusted: the client's own uid,
 * root, and the uids an administrator lists in /etc/enoshim/trust.conf
 * ("trusted_uids = 998, 999"; the file counts only when it belongs to root
 * and nobody else can write it).  A client that does not believe the server
 * sends it nothing.
 */
#ifndef ENOSHIM_SOCKPATH_H
#define ENOSHIM_SOCKPATH_H

#include <stddef.h>
#include <sys/types.h>

#define SOCKPATH_MAX          108               /* sizeof(sockaddr_un.sun_path) */
#define SOCKPATH_HOST_DIR     "/run/enoshim"
#define SOCKPATH_HOST         "/run/enoshim/tund.sock"
#define SOCKPATH_USER_SUFFIX  "/enoshim/tund.sock"   /* under $XDG_RUNTIME_DIR */
#define SOCKPATH_TRUST_CONF   "/etc/enoshim/trust.conf"
#define SOCKPATH_TRUST_MAX    32

/* 1 when the process runs with privileges its real user does not have
 * (setuid, setgid, file capabilities: getauxval(AT_SECURE)). */
int sockpath_secure(void);

/* tund's default path into out.  0, or -1 when there is none (an ordinary
 * user without XDG_RUNTIME_DIR): out is then "" and why says what to do. */
int sockpath_server_default(char *out, size_t n, char *why, size_t whylen);

/* The path clients use when none is given. */
void sockpath_client_default(char *out, size_t n);

/* The directory part of path ("." when it has none). */
void sockpath_dirname(const char *path, char *out, size_t n);

/* ---- trust ------------------------------------------------------------------ */

struct sockpath_trust {
  uid_t uids[SOCKPATH_TRUST_MAX];
  int n;
  char note[160];        /* why the file was ignored, or "" */
};

/* The text of a trust file: '#' comments, one "trusted_uids = N, N ..."
 * (numbers separated by commas or spaces) per line; other keys are errors.
 * 0, or -1 with a reason in t->note (and t->n = 0: nothing trusted). */
int sockpath_trust_parse(const char *text, size_t len, struct sockpath_trust *t);

/* Read path (SOCKPATH_TRUST_CONF): a missing file trusts nobody extra
 * without a note; one that root does not own, that others can write, or
 * that does not parse is ignored with a note. */
void sockpath_trust_load(const char *path, struct sockpath_trust *t);

/* uid is self, root, or listed. */
int sockpath_trusted(uid_t uid, uid_t self, const struct sockpath_trust *t);

/* ---- checks a client makes ------------------------------------------------------ */

enum {
  SOCKPATH_OK = 0,
  SOCKPATH_NODIR = 1,        /* the directory does not exist: no tund */
  SOCKPATH_BAD_OWNER = 2,    /* *uid_out: its owner */
  SOCKPATH_BAD_MODE = 3,     /* group or others may write it */
  SOCKPATH_NOT_DIR = 4,
  SOCKPATH_ERROR = 5,        /* stat failed otherwise (errno kept) */
};

/* Before connecting: is the socket's directory owned by a trusted uid and
 * writable by nobody else?  why gets one line on any failure but NODIR. */
int sockpath_dir_check(const char *path, uid_t self, const struct sockpath_trust *t,
                       uid_t *uid_out, char *why, size_t whylen);

/* After connecting, before sending anything: does a trusted uid serve the
 * socket fd?  0 yes; -1 no (why: "served by uid N ..."), or SO_PEERCRED
 * failed. */
int sockpath_peer_check(int fd, const char *path, uid_t self, const struct sockpath_trust *t,
                        uid_t *uid_out, char *why, size_t whylen);

/* ---- checks tund makes on its own directory ---------------------------------------- */

/* The directory of tund's socket must belong to tund's uid (owner) and be
 * writable by nobody else.  0, or -1 with why ("socket directory D belongs
 * to uid N, not to tund's (uid M)" / "... is writable by others (mode
 * 0777)"); a missing directory is -1 with errno ENOENT and no why. */
int sockpath_own_dir_check(const char *path, uid_t owner, char *why, size_t whylen);

#endif
