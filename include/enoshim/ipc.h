/*
 * enoshim/ipc.h — control messages between libenoshim.so and tund.
 *
 * Transport: one AF_UNIX SOCK_SEQPACKET connection per process (re-made in a
 * forked child), so one recvmsg() is one message.  Framing follows OpenBSD's
 * imsg: a fixed header whose `len` must equal the datagram length, a payload
 * whose size is exact for its type, and the fds the type declares (SCM_RIGHTS,
 * owned by the receiver).  A message that breaks any rule drops the client
 * that sent it (tund) or fails the call that waited for it (shim); it never
 * stops tund.
 *
 * Every request gets exactly one reply carrying the request's seq, except
 * ENOIPC_KICK (none) and ENOIPC_STATUS (a series of STATUS_ENTRY then one
 * RESULT).
 *
 * The accept queue of a listening socket is the program's end of the
 * listener's socketpair: tund writes one struct enoipc_accept record per
 * connection, with its fds attached (see below).
 */
#ifndef ENOSHIM_IPC_H
#define ENOSHIM_IPC_H

#include <stdint.h>
#include <stddef.h>
#include <sys/types.h>

#include "tcpinc.h"

#define ENOIPC_VERSION     5u    /* 2: status entries carry age_s and program; 3: RELISTEN,
                                    LISTEN's reply carries tund's end and the memfd; 4: no
                                    standby sockets (17, 18 and 102 retired); 5: HELLO's
                                    reply carries flags (direct_local) */
#define ENOIPC_MAX_MSG     4096u
#define ENOIPC_MAX_FDS     4u
#define ENOIPC_OPT_MAX     256u     /* longest socket option value carried */
/* GETOPT at level SOL_SOCKET, no value: tund's internal "make st.local the
 * address the peer dialed" (shm.h ENOSHM_F_LOCAL_LAZY; far from Linux's
 * SO_* numbers, never passed to a kernel) */
#define ENOIPC_SO_DIALED   0x454eff01

enum enoipc_type {
  /* requests, program -> tund */
  ENOIPC_HELLO = 1,      /* p: hello                 r: RESULT + hello_ok */
  ENOIPC_SOCKET,         /* p: socket                r: RESULT + socket_ok, fds [pair end, memfd] */
  ENOIPC_BIND,           /* p: bind                  r: RESULT + addr (bound) */
  ENOIPC_LISTEN,         /* p: listen, fd [kernel listener] optional  r: RESULT, fds [tund's
                            end of the pair, memfd] when it starts listening (the shim keeps
                            them for a tund restart: shim/relisten.c) */
  ENOIPC_CONNECT,        /* p: addr                  r: RESULT */
  ENOIPC_SETOPT,         /* p: opt                   r: RESULT */
  ENOIPC_GETOPT,         /* p: opt (len = max)       r: RESULT + value */
  ENOIPC_SHUTDOWN,       /* p: i32 how               r: RESULT */
  ENOIPC_ATTACH,         /* p: none, fd [pair end]   r: RESULT + attach_ok, fd [memfd] */
  ENOIPC_KICK,           /* p: u32 what (below)      no reply */
  ENOIPC_STATUS,         /* p: none                  r: STATUS_ENTRY..., RESULT */
  ENOIPC_COMMAND,        /* p: command               r: RESULT + text */
  ENOIPC_CLOSED,         /* p: none                  r: RESULT (the program closed a
                            listener's fd: release it now if that was the last copy) */
  ENOIPC_SETOPT_POSTED,  /* p: opt                   no reply: an option the shim
                            has validated and tund cannot refuse (TCP_NODELAY,
                            keepalive, linger, reuse); saves the round trip */
  ENOIPC_FORKED,         /* p: u64 socket ids        r: RESULT (a child is about to
                            inherit these: their shm must never be reused) */
  ENOIPC_CONNECT_POSTED, /* p: addr                  no reply: a connect on a socket
                            only this process holds; the outcome (or an error
                            tund finds at once) comes through the status block */
  /* 17, 18: retired (STANDBY_WANT, STANDBY_TAKE until version 3); tund drops a
     client that sends them, as any unknown type */
  ENOIPC_RELISTEN = 19,  /* p: relisten + n_opts (opt + value); sock: the id proposed;
                            fds [program's end, tund's end, memfd, kernel listener if
                            has_kernel_fd]   r: RESULT, sock: the listener's id.  A
                            listener made with a tund that died, handed to this one
                            (shim/relisten.c, tund/listener.c conn_relisten) */
  /* replies, tund -> program */
  ENOIPC_RESULT = 100,   /* p: result + type-specific data */
  ENOIPC_STATUS_ENTRY,   /* p: status_entry */
  /* 102: retired (STANDBY until version 3).  tund sends nothing unasked: a
     descriptor sent ahead would stay in flight (shim/sock.c sock_socket) */
};

struct enoipc_hdr {
  uint32_t len;          /* whole message, header included */
  uint16_t type;         /* enum enoipc_type */
  uint16_t nfds;         /* fds attached to this message */
  uint32_t seq;          /* request id, echoed in replies */
  uint32_t flags;
  uint64_t sock;         /* socket id, 0 when not about a socket */
};
_Static_assert(sizeof(struct enoipc_hdr) == 24, "ipc header layout");

struct enoipc_addr {
  uint16_t family;
  uint16_t port;         /* host order */
  uint32_t scope_id;
  uint32_t flowinfo;
  uint8_t  addr[16];
};
_Static_assert(sizeof(struct enoipc_addr) == 28, "ipc addr layout");

struct enoipc_bind {
  struct enoipc_addr addr;
  uint32_t kernel_bound;  /* the program's kernel socket took this address */
  uint32_t pad;
};

struct enoipc_hello {
  uint32_t version;
  uint32_t pid;
};

#define ENOIPC_MAX_DIRECT 16
struct enoipc_prefix {
  uint16_t family;
  uint8_t  prefixlen;
  uint8_t  pad;
  uint8_t  addr[16];
};

struct enoipc_hello_ok {
  uint32_t version;
  uint32_t tund_pid;
  uint32_t ring_size;
  uint32_t n_direct;
  struct enoipc_prefix direct[ENOIPC_MAX_DIRECT];   /* destinations the shim connects to directly */
  uint32_t flags;                                   /* ENOIPC_HELLO_F_* */
};
#define ENOIPC_HELLO_F_DIRECT_LOCAL 0x1u   /* this host's own addresses are direct (direct_local=) */

struct enoipc_socket {
  int32_t domain;        /* AF_INET or AF_INET6 */
  int32_t v6only;
};

struct enoipc_socket_ok {
  uint32_t shm_size;
};

struct enoipc_listen {
  int32_t backlog;
  int32_t has_kernel_fd;  /* 1: one fd attached, the program's kernel listener */
};

/* RELISTEN: a listener's settings (its options follow as enoipc_opt + value) */
struct enoipc_relisten {
  struct enoipc_addr addr;     /* as bound; port: the listener's */
  int32_t backlog;
  uint8_t domain;              /* AF_INET or AF_INET6 */
  uint8_t v6only, reuseaddr, keepalive, nodelay, linger0;
  uint8_t has_kernel_fd;       /* 1: the fourth fd is the program's kernel listener */
  uint8_t pad;
  uint32_t keep_idle, keep_intvl, keep_cnt;   /* TCP_KEEPIDLE / INTVL (s), TCP_KEEPCNT */
  uint32_t n_opts;             /* IPPROTO_TCP options (TCP-ENO, tcpcrypt) that follow */
};
_Static_assert(sizeof(struct enoipc_relisten) == 56, "relisten layout");

struct enoipc_opt {
  int32_t  level;
  int32_t  name;
  uint32_t len;           /* SETOPT: bytes that follow; GETOPT: buffer size */
  /* uint8_t value[len] follows for SETOPT */
};

struct enoipc_result {
  int32_t  err;           /* 0 or a positive errno */
  uint32_t len;           /* bytes of data that follow */
};

struct enoipc_attach_ok {
  uint32_t kind;          /* ENOIPC_KIND_* */
  uint32_t shm_size;
};

enum enoipc_kind {
  ENOIPC_KIND_STREAM = 1,
  ENOIPC_KIND_LISTENER = 2,
};

/* ENOIPC_KICK payload */
enum {
  ENOIPC_KICK_WAKE = 1,   /* look at the rings (the wake-up byte could not be written) */
  ENOIPC_KICK_REARM = 2,  /* the one-byte token's shim (ENOSHM_VERSION 1) asked for a token back;
                             accepted, and handled as WAKE (grants never need it) */
};

struct enoipc_command {
  uint32_t cmd;           /* ENOIPC_CMD_* */
  uint32_t pad;
  uint64_t arg;           /* connection id, 0 = all */
};

enum enoipc_cmd {
  ENOIPC_CMD_REKEY = 1,   /* start a tcpcrypt rekey on connection arg */
  ENOIPC_CMD_FLUSH_CACHE, /* drop the tcpcrypt resumption cache */
  ENOIPC_CMD_STOP,        /* ask tund to exit (same as SIGTERM) */
  ENOIPC_CMD_CHECK,       /* internal consistency checks; EPROTO if one fails */
};

/* One connection or listener, as the status command shows it. */
struct enoipc_status_entry {
  uint64_t id;            /* the public serial (enoctl), not the request id */
  uint32_t pid;           /* last process that used it */
  uint8_t  kind;          /* ENOIPC_KIND_* */
  uint8_t  state;         /* enum enoshm_state */
  uint8_t  eno_state;     /* TCPINC_STATE_* */
  uint8_t  eno_reason;
  uint8_t  role;
  uint8_t  negtep;
  uint16_t aead;
  uint8_t  sessid_len;
  uint8_t  resumed;
  uint8_t  tcp_state;     /* lwIP's enum tcp_state */
  uint8_t  pad;
  struct enoipc_addr local;
  struct enoipc_addr remote;
  uint64_t rx_bytes;      /* application bytes delivered */
  uint64_t tx_bytes;      /* application bytes sent */
  uint32_t rekeys;
  uint32_t age_s;         /* seconds since the socket was made */
  uint8_t  sessid[64];
  char     reason[48];    /* why ENO is disabled, or "" */
  char     program[16];   /* name of process `pid` (its /proc comm), or "" */
};
_Static_assert(sizeof(struct enoipc_status_entry) == 232, "status entry layout");

/* Accept-queue record on a listener's pair. */
#define ENOIPC_ACCEPT_MAGIC 0x41434350u   /* "ACCP" */
struct enoipc_accept {
  uint32_t magic;
  uint16_t kind;          /* ENOIPC_ACCEPT_TUND: fds [pair end, memfd];
                             ENOIPC_ACCEPT_DIRECT: fd [kernel socket] */
  uint16_t nfds;
  uint64_t sock;
};
_Static_assert(sizeof(struct enoipc_accept) == 16, "accept record layout");
enum { ENOIPC_ACCEPT_TUND = 1, ENOIPC_ACCEPT_DIRECT = 2 };

/* ---- transport (common/ipc.c) ------------------------------------------- */

/* A received message: header, payload view into buf, owned fds. */
struct enoipc_msg {
  struct enoipc_hdr hdr;
  const uint8_t *payload;
  size_t plen;
  int fds[ENOIPC_MAX_FDS];
  int nfds;
  uint8_t buf[ENOIPC_MAX_MSG];
};

/* Send one message: header fields type/seq/sock, payload in up to two parts,
 * and nfds fds.  Returns 0 or -errno.  Blocks unless the socket is
 * non-blocking; never raises SIGPIPE. */
int enoipc_send(int fd, uint16_t type, uint32_t seq, uint64_t sock,
                const void *p1, size_t n1, const void *p2, size_t n2,
                const int *fds, int nfds);
/* The same with extra sendmsg() flags (MSG_DONTWAIT: -EAGAIN when full). */
int enoipc_send_flags(int fd, uint16_t type, uint32_t seq, uint64_t sock,
                      const void *p1, size_t n1, const void *p2, size_t n2,
                      const int *fds, int nfds, int flags);

/* Receive and validate one message.  Returns 1 on success, 0 on orderly EOF,
 * -EAGAIN when nothing is queued on a non-blocking socket, and -EPROTO for a
 * malformed message (truncated, length mismatch, too many fds, fds not
 * declared in the header) — in which case any fds that came with it are
 * closed.  -EMFILE: a well-formed message whose fds this process could not
 * take (its RLIMIT_NOFILE): hdr and payload are valid, no fd is held (the
 * kernel closed the ones it could not install, we closed the others).  On
 * success the caller owns msg->fds[0..nfds). */
int enoipc_recv(int fd, struct enoipc_msg *msg);
int enoipc_recv_flags(int fd, struct enoipc_msg *msg, int flags);   /* e.g. MSG_DONTWAIT */

/* Close the fds a message still owns. */
void enoipc_msg_close_fds(struct enoipc_msg *msg);

/* Payload reader (picotls/imsg style cursor): every getter fails on short
 * input; enoipc_rd_end() checks that the payload was consumed exactly. */
struct enoipc_rd {
  const uint8_t *p, *end;
  int bad;
};
static inline void enoipc_rd_init(struct enoipc_rd *r, const struct enoipc_msg *m)
{
  r->p = m->payload;
  r->end = m->payload + m->plen;
  r->bad = 0;
}
int enoipc_rd_bytes(struct enoipc_rd *r, void *out, size_t n);
const uint8_t *enoipc_rd_view(struct enoipc_rd *r, size_t n);
int enoipc_rd_end(const struct enoipc_rd *r);

/* ---- option values ----------------------------------------------------------
 * tund checks these on ENOIPC_SETOPT; the shim checks the same before it
 * posts an ENO option (ENOIPC_SETOPT_POSTED), so one set of rules serves both. */
#define ENOIPC_AEAD_LIST_MAX 16u    /* AEADs in TCP_CRYPT_ACONF/BCONF (TC_AEAD_LIST_MAX) */

static inline int enoipc_aead_supported(unsigned id)
{
  return id == TCPINC_AEAD_AES_128_GCM || id == TCPINC_AEAD_AES_256_GCM ||
         id == TCPINC_AEAD_CHACHA20_POLY1305;
}

/* a TCP_CRYPT_ACONF/BCONF value: 2-byte big-endian ids, each supported */
static inline int enoipc_aead_list_ok(const uint8_t *v, size_t len)
{
  if (len % 2 || len / 2 > ENOIPC_AEAD_LIST_MAX)
    return 0;
  for (size_t i = 0; i < len; i += 2)
    if (!enoipc_aead_supported((unsigned)v[i] << 8 | v[i + 1]))
      return 0;
  return 1;
}

/* the integer ENO options with a fixed range (api-06 §2.1) */
static inline int enoipc_eno_int_ok(int name, int v)
{
  switch (name) {
  case TCP_ENO_ENABLED:      return v >= -1 && v <= 1;
  case TCP_ENO_SELF_GOPT:    return v >= 0 && v <= 31;
  case TCP_ENO_AA_MANDATORY:
  case TCP_ENO_TEP_MANDATORY: return v == 0 || v == 1;
  default:                   return 1;
  }
}

#endif
