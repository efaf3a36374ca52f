/*
 * tund/conn.h — the connection object shared by conn.c (sockets, rings,
 * lwIP callbacks) and crypt.c (ENO options and tcpcrypt frames).
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

  /* shared memory and our trusted copies of what we published */
  struct enoshm *shm;
  size_t shm_len;
  int memfd;
  int standby;            /* made ahead for a control connection, not taken yet */
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
  ino_t p_ino;            /* to recognise the program's end on ATTACH */
  int t_pending;          /* program wrote bytes we have not read */
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

/* conn.c */
void conn_publish(struct conn *c);
void conn_rx_notify(struct conn *c);
void conn_update_writable(struct conn *c);
void conn_release(struct conn *c);
void conn_fail(struct conn *c, int err);
void conn_abort(struct conn *c, int err);
void conn_established(struct conn *c);
void conn_tx_pump(struct conn *c);
void conn_rx_pump(struct conn *c);
void conn_publish_eof(struct conn *c);
int  conn_tx_all_acked(const struct conn *c);
int64_t conn_tx_avail(struct conn *c);
void conn_mark_pending(struct conn *c);
void conn_output(struct conn *c);
void listener_deliver(struct conn *l, struct conn *c);
void listener_flush(struct conn *l);
int listener_admit(struct conn *l);
void listener_admit_release(void);
int  ipaddr_from_ipc(const struct enoipc_addr *a, int domain, ip_addr_t *ip);
void ipaddr_to_shm(const ip_addr_t *ip, u16_t port, int domain, struct enoshm_addr *out);
int  rxq_push(struct conn *c, struct pbuf *p);
struct pbuf *rxq_front(struct conn *c);
void rxq_consume(struct conn *c, size_t n);
void rxq_free_all(struct conn *c);

/* crypt.c: ENO options and tcpcrypt, called by conn.c at fixed points */
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
void crypt_tick(struct conn *c);

#endif
