/*
 * tund/conn.h — the connection object, and the interfaces between the files
 * that handle it (conn.c lists them: the table, the program's end, shared
 * memory, the descriptor reserve, lwIP's callbacks, the data pumps,
 * listeners, requests) and crypt.c (ENO options and tcpcrypt frames).
 * tund.h holds what the rest of the daemon calls.
 */
#ifndef TUND_CONN_H
#define TUND_CONN_H

#include "lwip/tcp.h"
#include "tund.h"

enum conn_kind { CK_NEW = 0, CK_STREAM, CK_LISTENER };

/* A connection waiting in a listener's accept queue (not yet written to the
 * program's pair because the queue is full). */
struct acc_pending {
  struct acc_pending *next;
  int kind;               /* ENOIPC_ACCEPT_* */
  struct conn *child;     /* TUND */
  int kfd;                /* DIRECT */
};

struct crypt_conn;        /* crypt.c */

struct conn {
  struct ev ev;           /* our end of the pair: EPOLLIN|EPOLLET|EPOLLRDHUP */
  uint64_t id;            /* secret: holding it is the right to act on the socket */
  uint64_t serial;        /* public: shown by enoctl status, used in logs */
  int kind;               /* enum conn_kind */
  int dead;
  int domain;
  int v6only;
  pid_t pid;
  uint32_t created;
  /* who may see it in enoctl status and rekey it (access.c): the uids that
   * made it (an accepted connection: its listener's), attached it, or made
   * requests on it; the first CONN_USERS of them */
#define CONN_USERS 4
  uid_t users[CONN_USERS];
  int n_users;

  /* shared memory and our trusted copies of what we published */
  struct enoshm *shm;
  size_t shm_len;
  int memfd;
  uint64_t spare_key;     /* whose spare shm this may become when it ends (0: none) */
  uint32_t rx_size, tx_size;
  uint8_t *rx_base, *tx_base;
  uint64_t rx_prod;       /* published to the program */
  uint64_t tx_cons;       /* released to the program */
  uint64_t tx_read;       /* taken from the ring (handed to lwIP / sealed) */
  struct enoshm_status st;

  /* the pair */
  int tfd;
  int pfd;                /* program's end, held until delivered by accept */
  int pfd_valid;
  int kept_given;         /* listener: copies of tfd/memfd went to the program (conn_kept_ends) */
  ino_t p_ino;            /* to recognise the program's end on ATTACH ... */
  uint64_t p_cookie;      /* ... for certain: its SO_COOKIE (never reused; 0 if unknown) */
  int t_pending;          /* program wrote bytes we have not read */
  uint64_t t_drained;     /* bytes read from the program's end (checked against shm p2t_decl) */
  int t_wr_shut;          /* we shut our end for writing (EOF published) */
  int prog_closed;        /* every copy of the program's fd is closed (handled) */
  int t_eof;              /* read() on our end returned 0 */

  /* lwIP */
  struct tcp_pcb *pcb;
  struct pbuf **rxq;      /* received chains not yet in the ring (or not yet decrypted) */
  unsigned rxq_head, rxq_n, rxq_cap;
  size_t rxq_off;         /* bytes of the front chain already consumed */
  size_t rxq_bytes;
  int fin_in;             /* lwIP reported the peer's FIN */
  int eof_published;
  int shut_wr_req;
  int tx_shut_done;
  int closing;            /* tcp_close() done, waiting for acks */
  int draining;           /* TCP is over; the rest of rxq still goes to the ring */
  uint32_t linger_since;  /* program closed; waiting for the peer's FINp (tcpcrypt) */
  int connect_errno;
  int tcp_up;             /* TCP's handshake completed (a TEP handshake may still run) */
  /* accepted through a published port: the address the peer dialed is
   * asked of conntrack only when wanted (tcpcb.c conn_local_resolve) */
  uint8_t dial_fam;       /* (pending while st.flags has ENOSHM_F_LOCAL_LAZY) */
  uint16_t dial_rport, dial_lport;
  uint8_t dial_raddr[16];
  u32_t snd_sml;          /* Minshall's Nagle: end of the last possibly short segment */

  /* options */
  int reuseaddr, keepalive, nodelay, linger0;
  u32_t keep_idle, keep_intvl, keep_cnt;

  /* listener */
  struct ev kev;          /* the program's kernel listener */
  int kfd;
  int kfd_armed;
  int backlog;
  uint32_t acc_sent;
  struct acc_pending *acc_q, *acc_q_tail;
  int acc_q_len;
  int n_embryonic;        /* accepted by lwIP, TEP handshake still running */
  uint64_t syn_dropped;   /* SYNs refused: accept queue full */
  struct conn *listener;  /* accepted, not yet delivered to this listener */
  int in_acc_q;
  int accepted;           /* came from a listener (passive open) */
  uint16_t published;     /* listener: the port published to other hosts (tund/nat.h), or 0 */

  /* ENO + tcpcrypt (crypt.c) */
  struct crypt_conn *crypt;     /* non-NULL once tcpcrypt protects the stream */
  struct crypt_opts *copts;     /* per-socket ENO/tcpcrypt settings (NULL = defaults) */

  /* accounting */
  uint64_t rx_bytes, tx_bytes;

  int pending;
  struct conn *pend_next;
  struct conn *hnext;
  struct conn *next, *prev;
};

/* spare-memory owner keys: a listener's id with this bit (a client key without) */
#define SPARE_KEY_LISTENER (1ull << 63)

/* conn.c: the table, making and forgetting connections */
struct conn *conn_new(int domain, uint64_t spare_key, int *err, int *pfd);
struct conn *conn_first(void);
struct conn *conn_adopt(int domain, uint64_t want_id, int tfd, int memfd, struct enoshm *p, size_t len,
                        const struct enoshm *lay, int *err);
void conn_release(struct conn *c);
/* tcpcb.c: st.local becomes the address the peer dialed, if that is still
 * to be asked (ENOSHM_F_LOCAL_LAZY); publishes */
void conn_local_resolve(struct conn *c);

/* progend.c: publishing to the program, the program's end of the pair */
void conn_publish(struct conn *c);
void conn_rx_notify(struct conn *c);
void conn_publish_eof(struct conn *c);
void conn_update_writable(struct conn *c);
void conn_fail(struct conn *c, int err);
int  conn_t_watch(struct conn *c);
void conn_mark_pending(struct conn *c);

/* spares.c: a connection's shared memory, the pool of spares */
int  conn_shm_make(struct conn *c, uint32_t ring, uint64_t key);
void conn_shm_release(struct conn *c);
void conn_shm_free(struct conn *c);
int  spares_drop_all(void);

/* fdres.c: the descriptor reserve */
void fd_reserve_init(void);
void fd_reserve_trim(void);
int  fds_exhausted(void);
int  fd_limit_err(int e);
int  fd_promise_take(void);
uint64_t fd_promise_drops(void);
void fd_promise_release(void);
void listener_admit_release(void);

/* tcpcb.c: lwIP's side: callbacks, pcbs, lwIP's types and errors */
int  ipaddr_from_ipc(const struct enoipc_addr *a, int domain, ip_addr_t *ip);
void ipaddr_to_shm(const ip_addr_t *ip, u16_t port, int domain, struct enoshm_addr *out);
int  lwip_err_to_errno(err_t e);
void pcb_detach(struct tcp_pcb *pcb);
void conn_abort(struct conn *c, int err);
void conn_setup_pcb(struct conn *c, struct tcp_pcb *pcb);
void conn_set_addrs(struct conn *c);
void conn_established(struct conn *c);
int  conn_ensure_pcb(struct conn *c, u8_t type);
err_t conn_pcb_connect(struct conn *c, const ip_addr_t *ip, u16_t port);
int  conn_pcb_listen(struct conn *c);
void conn_pcb_init(void);

/* pump.c: data between the rings and lwIP; the rx queue */
void conn_tx_pump(struct conn *c);
void conn_rx_pump(struct conn *c);
int  conn_tx_all_acked(const struct conn *c);
int64_t conn_tx_avail(struct conn *c);
void conn_output(struct conn *c);
int  rxq_push(struct conn *c, struct pbuf *p);
struct pbuf *rxq_front(struct conn *c);
void rxq_consume(struct conn *c, size_t n);
void rxq_free_all(struct conn *c);

/* listener.c */
void listener_deliver(struct conn *l, struct conn *c);
void listener_flush(struct conn *l);
int  listener_admit(struct conn *l);
void listener_add_kernel(struct conn *l, int kfd);

/* crypt.c: ENO options and tcpcrypt, called from the files above at fixed points */
void crypt_module_init(void);
void crypt_conn_free(struct conn *c);
void crypt_inherit_opts(struct conn *c, const struct conn *l);
int  crypt_tep_mandatory(const struct conn *c);
int  crypt_connect_setup(struct conn *c, u16_t port);     /* before tcp_connect */
void crypt_listen_setup(struct conn *l);                   /* after tcp_listen */
int  crypt_start(struct conn *c);     /* TCP is up: 1 if a TEP handshake now runs */
void crypt_on_acked(struct conn *c, u16_t len);
void crypt_tx_pump(struct conn *c);
void crypt_rx_pump(struct conn *c);
int  crypt_tx_all_acked(const struct conn *c);
int  crypt_tx_fin_ready(struct conn *c);
int  crypt_send_fin(struct conn *c);  /* 1 while the FINp frame is still pending */
int  crypt_rx_fin_without_finp(struct conn *c);
int  crypt_setopt(struct conn *c, int name, const uint8_t *val, uint32_t len);
int  crypt_getopt(struct conn *c, int name, uint8_t *val, uint32_t *len);
void crypt_status(struct conn *c, struct enoipc_status_entry *e);
int  crypt_command(uint32_t cmd, uint64_t arg, char *out, size_t outlen);
int  crypt_rekey(struct conn *c);     /* 0, or -1: not encrypting with tcpcrypt */
void crypt_tick(struct conn *c);

#endif
