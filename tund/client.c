/*
 * tund/client.c — the control socket: one SOCK_SEQPACKET connection per
 * program process, requests parsed with exact sizes (enoshim/ipc.h), replies
 * queued per client so that a slow or hostile reader never blocks tund.
 *
 * Only clients with tund's own uid are accepted (SO_PEERCRED).  Anything
 * malformed drops that client, never tund.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "tund.h"
#include "lwip/timeouts.h"

#define CLIENT_OUTQ_MAX (32u << 20)   /* bytes queued to one client before we drop it */

struct outmsg {
  struct outmsg *next;
  size_t len;
  int fds[ENOIPC_MAX_FDS];
  int nfds;
  uint8_t data[];
};

struct client {
  struct ev ev;
  int dead;
  pid_t pid;
  uid_t uid;
  struct outmsg *q_head, *q_tail;
  size_t q_bytes;
  struct client *next, *prev;
  uint64_t key;           /* owner key of the spare shm it leaves (spares.c) */
  uint64_t standby_id;    /* the standby socket sent and not yet taken, or 0 */
  int standby_wanted;     /* make one when the loop is idle (client_idle) */
  unsigned single;        /* evidence that messages come one at a time */
};

static struct ev listen_ev;
/* One descriptor held back so that a control client (enoctl status above
 * all) can still be taken when tund is at its RLIMIT_NOFILE; given up for an
 * accept that failed with EMFILE, taken again when a client leaves.  With
 * none left the control socket is not polled for half a second: it is
 * level-triggered, and a pending connection tund cannot accept would make
 * the loop spin. */
static int accept_reserve = -1;
static int listen_paused;

static void accept_reserve_fill(void)
{
  if (accept_reserve < 0)
    accept_reserve = eventfd(0, EFD_CLOEXEC);
}
static char listen_path[108];
static struct client *clients;
static unsigned n_clients;

static void client_drop(struct client *cl, const char *why);
static uint64_t next_client_key = 1;

uint64_t client_spare_key(const struct client *cl)
{
  return cl ? cl->key : 0;
}

int client_spare_key_alive(uint64_t key)
{
  for (struct client *cl = clients; cl; cl = cl->next)
    if (cl->key == key)
      return !cl->dead;
  return 0;
}

static void outmsg_free(struct outmsg *m)
{
  for (int i = 0; i < m->nfds; i++)
    if (m->fds[i] >= 0)
      close(m->fds[i]);
  free(m);
}

/* Try to send queued messages; 0 ok, -1 if the client must be dropped. */
static int client_flush(struct client *cl)
{
  while (cl->q_head) {
    struct outmsg *m = cl->q_head;
    struct enoipc_hdr h;
    memcpy(&h, m->data, sizeof(h));
    int r = enoipc_send(cl->ev.fd, h.type, h.seq, h.sock, m->data + sizeof(h), m->len - sizeof(h),
                        NULL, 0, m->fds, m->nfds);
    if (r == -EAGAIN) {
      loop_mod(&cl->ev, EPOLLIN | EPOLLOUT);
      return 0;
    }
    if (r < 0)
      return -1;
    cl->q_head = m->next;
    if (!cl->q_head)
      cl->q_tail = NULL;
    cl->q_bytes -= m->len;
    outmsg_free(m);
  }
  loop_mod(&cl->ev, EPOLLIN);
  return 0;
}

/* Queue a reply; takes ownership of fds (closed once sent or on failure). */
static void client_reply(struct client *cl, uint16_t type, uint32_t seq, uint64_t sock,
                         const void *p1, size_t n1, const void *p2, size_t n2,
                         const int *fds, int nfds)
{
  size_t len = sizeof(struct enoipc_hdr) + n1 + n2;
  struct outmsg *m;
  if (cl->dead || len > ENOIPC_MAX_MSG || cl->q_bytes + len > CLIENT_OUTQ_MAX ||
      !(m = malloc(sizeof(*m) + len))) {
    for (int i = 0; i < nfds; i++)
      close(fds[i]);
    if (!cl->dead)
      client_drop(cl, "reply queue overflow");
    return;
  }
  struct enoipc_hdr h = { .len = (uint32_t)len, .type = type, .nfds = (uint16_t)nfds,
                          .seq = seq, .sock = sock };
  memcpy(m->data, &h, sizeof(h));
  if (n1)
    memcpy(m->data + sizeof(h), p1, n1);
  if (n2)
    memcpy(m->data + sizeof(h) + n1, p2, n2);
  m->len = len;
  m->nfds = nfds;
  for (int i = 0; i < nfds; i++)
    m->fds[i] = fds[i];
  m->next = NULL;
  if (cl->q_tail)
    cl->q_tail->next = m;
  else
    cl->q_head = m;
  cl->q_tail = m;
  cl->q_bytes += len;
  if (cl->q_head == m && client_flush(cl))
    client_drop(cl, "send failed");
}

/* ---- standby sockets -------------------------------------------------------------
 *
 * A program that makes one socket after another (a client's connection loop)
 * would wait for a round trip to tund in every socket().  Once a process has
 * made a second socket, the shim asks for one ahead (STANDBY_WANT); tund
 * makes a NEW socket and sends it unasked (STANDBY).  socket() takes it with
 * no wait and posts STANDBY_TAKE with the domain, and tund makes the next.
 * At most one per control connection is out; only that connection can take
 * it; status listings do not show it.  If the process never takes it, it
 * ends like any socket: when the process closes its end (exit, or the shim
 * dropping the control connection). */
static unsigned standby_wanted_n;

static void want_standby(struct client *cl)
{
  if (!cl->standby_wanted && !cl->dead) {
    cl->standby_wanted = 1;
    standby_wanted_n++;
  }
}

static void client_standby(struct client *cl)
{
  struct enoipc_socket_ok ok;
  uint64_t id = 0;
  int fds[2];
  cl->standby_id = 0;
  if (conn_standby_new(cl, &id, fds, &ok.shm_size))
    return;                      /* out of fds or memory: socket() asks the usual way */
  cl->standby_id = id;
  client_reply(cl, ENOIPC_STANDBY, 0, id, &ok, sizeof(ok), NULL, 0, fds, 2);
}

/* Made while the loop is idle, not while the program's requests wait: the
 * TAKE is followed at once by the new socket's CONNECT, which comes first. */
int client_idle(void)
{
  if (!standby_wanted_n)
    return 0;
  for (struct client *cl = clients; cl; cl = cl->next)
    if (cl->standby_wanted) {
      cl->standby_wanted = 0;
      standby_wanted_n--;
      if (!cl->dead)
        client_standby(cl);
      return 1;
    }
  standby_wanted_n = 0;
  return 0;
}

static void reply_result(struct client *cl, const struct enoipc_msg *rq, int err,
                         const void *data, size_t len, const int *fds, int nfds)
{
  struct enoipc_result r = { .err = err, .len = (uint32_t)len };
  client_reply(cl, ENOIPC_RESULT, rq->hdr.seq, rq->hdr.sock, &r, sizeof(r), data, len, fds, nfds);
}

static void client_free(void *p)
{
  struct client *cl = p;
  while (cl->q_head) {
    struct outmsg *m = cl->q_head;
    cl->q_head = m->next;
    outmsg_free(m);
  }
  free(cl);
}

static void client_drop(struct client *cl, const char *why)
{
  if (cl->dead)
    return;
  if (why)
    tund_log_limited(LOG_WARN_, "dropping client pid %d: %s", (int)cl->pid, why);
  cl->dead = 1;
  if (cl->standby_wanted) {
    cl->standby_wanted = 0;
    standby_wanted_n--;
  }
  conn_spares_drop(cl->key);
  loop_del(&cl->ev);
  close(cl->ev.fd);
  cl->ev.fd = -1;
  accept_reserve_fill();
  if (cl->prev)
    cl->prev->next = cl->next;
  else
    clients = cl->next;
  if (cl->next)
    cl->next->prev = cl->prev;
  n_clients--;
  loop_defer_free(client_free, cl);
}

/* ---- request handlers ----------------------------------------------------- */

static int expect(const struct enoipc_msg *m, size_t plen, int nfds)
{
  return m->plen == plen && m->nfds == nfds;
}

static struct conn *req_conn(struct client *cl, const struct enoipc_msg *m)
{
  struct conn *c = conn_find(m->hdr.sock);
  if (c)
    conn_touch_pid(c, cl->pid);
  return c;
}

/* Returns 0, or -1 when the message is malformed (client dropped by caller). */
static int handle(struct client *cl, struct enoipc_msg *m)
{
  struct conn *c;
  int err;

  switch (m->hdr.type) {
  case ENOIPC_HELLO: {
    struct enoipc_hello h;
    struct enoipc_hello_ok ok;
    if (!expect(m, sizeof(h), 0))
      return -1;
    memcpy(&h, m->payload, sizeof(h));
    if (h.version != ENOIPC_VERSION) {
      reply_result(cl, m, EPROTONOSUPPORT, NULL, 0, NULL, 0);
      return 0;
    }
    memset(&ok, 0, sizeof(ok));
    ok.version = ENOIPC_VERSION;
    ok.tund_pid = (uint32_t)getpid();
    ok.ring_size = cfg.ring_size;
    for (int i = 0; i < cfg.n_direct && i < ENOIPC_MAX_DIRECT; i++) {
      ok.direct[i].family = (uint16_t)cfg.direct[i].family;
      ok.direct[i].prefixlen = (uint8_t)cfg.direct[i].len;
      memcpy(ok.direct[i].addr, cfg.direct[i].addr, 16);
      ok.n_direct++;
    }
    reply_result(cl, m, 0, &ok, sizeof(ok), NULL, 0);
    return 0;
  }
  case ENOIPC_SOCKET: {
    struct enoipc_socket s;
    struct enoipc_socket_ok ok;
    uint64_t id = 0;
    int fds[2];
    if (!expect(m, sizeof(s), 0))
      return -1;
    memcpy(&s, m->payload, sizeof(s));
    err = conn_socket(cl, s.domain, s.v6only, &id, fds, &ok.shm_size);
    if (err) {
      reply_result(cl, m, err, NULL, 0, NULL, 0);
      return 0;
    }
    struct enoipc_result r = { .err = 0, .len = sizeof(ok) };
    client_reply(cl, ENOIPC_RESULT, m->hdr.seq, id, &r, sizeof(r), &ok, sizeof(ok), fds, 2);
    return 0;
  }
  case ENOIPC_BIND: {
    struct enoipc_bind b;
    struct enoipc_addr bound;
    if (!expect(m, sizeof(b), 0))
      return -1;
    memcpy(&b, m->payload, sizeof(b));
    memset(&bound, 0, sizeof(bound));
    c = req_conn(cl, m);
    err = c ? conn_bind(c, &b.addr, b.kernel_bound != 0, &bound) : EBADF;
    reply_result(cl, m, err, &bound, sizeof(bound), NULL, 0);
    return 0;
  }
  case ENOIPC_LISTEN: {
    struct enoipc_listen l;
    if (m->plen != sizeof(l))
      return -1;
    memcpy(&l, m->payload, sizeof(l));
    if ((l.has_kernel_fd ? 1 : 0) != m->nfds)
      return -1;
    c = req_conn(cl, m);
    int kfd = m->nfds ? m->fds[0] : -1;
    m->nfds = 0;                 /* conn_listen owns kfd now */
    if (!c) {
      if (kfd >= 0)
        close(kfd);
      err = EBADF;
    } else {
      err = conn_listen(c, l.backlog, kfd);
    }
    reply_result(cl, m, err, NULL, 0, NULL, 0);
    return 0;
  }
  case ENOIPC_CONNECT: {
    struct enoipc_addr a;
    if (!expect(m, sizeof(a), 0))
      return -1;
    memcpy(&a, m->payload, sizeof(a));
    c = req_conn(cl, m);
    err = c ? conn_connect(c, &a) : EBADF;
    reply_result(cl, m, err, NULL, 0, NULL, 0);
    return 0;
  }
  case ENOIPC_CONNECT_POSTED: {
    struct enoipc_addr a;
    if (!expect(m, sizeof(a), 0))
      return -1;
    memcpy(&a, m->payload, sizeof(a));
    c = req_conn(cl, m);
    if (c && (err = conn_connect(c, &a)))
      conn_connect_posted_failed(c, err);
    return 0;
  }
  case ENOIPC_STANDBY_WANT:
    if (!expect(m, 0, 0))
      return -1;
    if (!cl->standby_id || !conn_find(cl->standby_id))
      want_standby(cl);
    return 0;
  case ENOIPC_STANDBY_TAKE: {
    struct enoipc_socket s;
    if (!expect(m, sizeof(s), 0))
      return -1;
    memcpy(&s, m->payload, sizeof(s));
    if (!cl->standby_id || m->hdr.sock != cl->standby_id)
      return -1;                 /* not the one we sent: a confused or hostile client */
    c = conn_find(cl->standby_id);
    cl->standby_id = 0;
    if (c && conn_standby_take(c, s.domain, s.v6only))
      return -1;
    want_standby(cl);
    return 0;
  }
  case ENOIPC_SETOPT:
  case ENOIPC_SETOPT_POSTED: {
    struct enoipc_opt o;
    if (m->nfds || m->plen < sizeof(o))
      return -1;
    memcpy(&o, m->payload, sizeof(o));
    if (o.len > ENOIPC_OPT_MAX || m->plen != sizeof(o) + o.len)
      return -1;
    c = req_conn(cl, m);
    err = c ? conn_setopt(c, o.level, o.name, m->payload + sizeof(o), o.len) : EBADF;
    if (m->hdr.type == ENOIPC_SETOPT)
      reply_result(cl, m, err, NULL, 0, NULL, 0);
    else if (err && err != EBADF)   /* EBADF: the connection already ended */
      conn_posted_failed(c, o.level, o.name, err);
    return 0;
  }
  case ENOIPC_GETOPT: {
    struct enoipc_opt o;
    uint8_t val[ENOIPC_OPT_MAX];
    if (!expect(m, sizeof(o), 0))
      return -1;
    memcpy(&o, m->payload, sizeof(o));
    uint32_t len = o.len > ENOIPC_OPT_MAX ? ENOIPC_OPT_MAX : o.len;
    c = req_conn(cl, m);
    err = c ? conn_getopt(c, o.level, o.name, val, &len) : EBADF;
    reply_result(cl, m, err, val, err ? 0 : len, NULL, 0);
    return 0;
  }
  case ENOIPC_SHUTDOWN: {
    int32_t how;
    if (!expect(m, sizeof(how), 0))
      return -1;
    memcpy(&how, m->payload, sizeof(how));
    c = req_conn(cl, m);
    err = c ? conn_shutdown(c, how) : EBADF;
    reply_result(cl, m, err, NULL, 0, NULL, 0);
    return 0;
  }
  case ENOIPC_ATTACH: {
    struct enoipc_attach_ok ok;
    uint64_t id = 0;
    int memfd = -1;
    if (!expect(m, 0, 1))
      return -1;
    memset(&ok, 0, sizeof(ok));
    err = conn_attach(m->fds[0], &id, &ok.kind, &memfd, &ok.shm_size);
    enoipc_msg_close_fds(m);
    if (err) {
      reply_result(cl, m, err, NULL, 0, NULL, 0);
      return 0;
    }
    struct enoipc_result r = { .err = 0, .len = sizeof(ok) };
    client_reply(cl, ENOIPC_RESULT, m->hdr.seq, id, &r, sizeof(r), &ok, sizeof(ok), &memfd, 1);
    return 0;
  }
  case ENOIPC_KICK: {
    uint32_t what;
    if (!expect(m, sizeof(what), 0))
      return -1;
    memcpy(&what, m->payload, sizeof(what));
    if (what != ENOIPC_KICK_WAKE && what != ENOIPC_KICK_REARM)
      return -1;
    c = conn_find(m->hdr.sock);
    if (c) {
      if (what == ENOIPC_KICK_REARM)
        conn_kick_rearm(c);
      else
        conn_kick(c);
    }
    return 0;
  }
  case ENOIPC_STATUS: {
    struct enoipc_status_entry e;
    if (!expect(m, 0, 0))
      return -1;
    uint32_t n = 0;
    for (struct conn *it = conn_status_next(NULL, &e); it; it = conn_status_next(it, &e)) {
      client_reply(cl, ENOIPC_STATUS_ENTRY, m->hdr.seq, e.id, &e, sizeof(e), NULL, 0, NULL, 0);
      if (cl->dead)
        return 0;
      n++;
    }
    reply_result(cl, m, 0, &n, sizeof(n), NULL, 0);
    return 0;
  }
  case ENOIPC_FORKED: {
    /* p: the ids of the sockets a child is about to inherit */
    if (m->nfds || m->plen % sizeof(uint64_t) || m->plen > ENOIPC_MAX_MSG)
      return -1;
    uint64_t ids[ENOIPC_MAX_MSG / sizeof(uint64_t)];
    memcpy(ids, m->payload, m->plen);
    conn_forked(ids, m->plen / sizeof(uint64_t));
    reply_result(cl, m, 0, NULL, 0, NULL, 0);
    return 0;
  }
  case ENOIPC_CLOSED:
    if (!expect(m, 0, 0))
      return -1;
    c = conn_find(m->hdr.sock);
    if (c)
      conn_closed_hint(c);
    reply_result(cl, m, 0, NULL, 0, NULL, 0);
    return 0;
  case ENOIPC_COMMAND: {
    struct enoipc_command cmd;
    char text[512];
    if (!expect(m, sizeof(cmd), 0))
      return -1;
    memcpy(&cmd, m->payload, sizeof(cmd));
    text[0] = 0;
    err = conn_command(cmd.cmd, cmd.arg, text, sizeof(text));
    reply_result(cl, m, err, text, strlen(text), NULL, 0);
    return 0;
  }
  default:
    return -1;
  }
}

static void client_event(struct ev *ev, uint32_t events)
{
  struct client *cl = (struct client *)ev;
  struct enoipc_msg *m;
  static struct enoipc_msg msgbuf;

  if (cl->dead)
    return;
  if ((events & EPOLLOUT) && client_flush(cl)) {
    client_drop(cl, "send failed");
    return;
  }
  if (!(events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
    return;
  m = &msgbuf;
  /* Most wake-ups bring one message (a doorbell, ENOIPC_KICK): read one
   * while they come singly (tund.h); batches otherwise - strictly one per
   * turn starved a program opening thousands of sockets of its accepts. */
  int limit = single_read_limit(&cl->single, 64), got = 0, empty = 0;
  /* A bounded batch per wakeup keeps one busy client from starving others. */
  for (int i = 0; i < limit && !cl->dead; i++) {
    int r = enoipc_recv(cl->ev.fd, m);
    if (r == -EAGAIN) {
      empty = 1;
      break;
    }
    if (r == 0) {
      client_drop(cl, NULL);
      return;
    }
    if (r < 0) {
      client_drop(cl, r == -EPROTO ? "malformed message" : strerror(-r));
      return;
    }
    got++;
    if (handle(cl, m)) {
      enoipc_msg_close_fds(m);
      client_drop(cl, "malformed message");
      return;
    }
    enoipc_msg_close_fds(m);
  }
  if (empty && !cl->dead)
    single_read_note(&cl->single, got);
}

static void listen_resume(void *arg)
{
  (void)arg;
  listen_paused = 0;
  accept_reserve_fill();
  if (listen_ev.fd >= 0 && loop_add(&listen_ev, EPOLLIN))
    tund_log(LOG_ERR_, "control socket: epoll: %s", strerror(errno));
}

static void listen_event(struct ev *ev, uint32_t events)
{
  (void)events;
  for (int i = 0; i < 64; i++) {
    int fd = accept4(ev->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0 && (errno == EMFILE || errno == ENFILE) && accept_reserve >= 0) {
      close(accept_reserve);
      accept_reserve = -1;
      fd = accept4(ev->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    }
    if (fd < 0) {
      if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
        tund_log_limited(LOG_WARN_, "accept on control socket: %s", strerror(errno));
      if ((errno == EMFILE || errno == ENFILE) && !listen_paused) {
        listen_paused = 1;
        loop_del(&listen_ev);
        sys_timeout(500, listen_resume, NULL);
      }
      return;
    }
    struct ucred cr;
    socklen_t crl = sizeof(cr);
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &crl) || cr.uid != geteuid()) {
      tund_log_limited(LOG_WARN_, "refusing control client uid %d (tund runs as uid %d)",
                       crl == sizeof(cr) ? (int)cr.uid : -1, (int)geteuid());
      close(fd);
      continue;
    }
    int sb = 1 << 20;
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sb, sizeof(sb));
    struct client *cl = calloc(1, sizeof(*cl));
    if (!cl) {
      close(fd);
      continue;
    }
    cl->ev.fd = fd;
    cl->ev.fn = client_event;
    cl->key = next_client_key++;
    cl->pid = cr.pid;
    cl->uid = cr.uid;
    if (loop_add(&cl->ev, EPOLLIN)) {
      close(fd);
      free(cl);
      continue;
    }
    cl->next = clients;
    if (clients)
      clients->prev = cl;
    clients = cl;
    n_clients++;
  }
}

static int mkdir_parent(const char *path)
{
  char dir[108];
  snprintf(dir, sizeof(dir), "%s", path);
  char *slash = strrchr(dir, '/');
  if (!slash || slash == dir)
    return 0;
  *slash = 0;
  /* create missing components, the last one 0700 */
  for (char *p = dir + 1; *p; p++) {
    if (*p == '/') {
      *p = 0;
      mkdir(dir, 0755);
      *p = '/';
    }
  }
  if (mkdir(dir, 0700) && errno != EEXIST) {
    log_err("cannot create %s: %s", dir, strerror(errno));
    return -1;
  }
  return 0;
}

int ctl_listen(const char *path)
{
  struct sockaddr_un sa;
  int fd;

  if (strlen(path) >= sizeof(sa.sun_path)) {
    log_err("socket path too long: %s", path);
    return -1;
  }
  if (mkdir_parent(path))
    return -1;
  memset(&sa, 0, sizeof(sa));
  sa.sun_family = AF_UNIX;
  snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);

  /* Another tund already serving this path?  Then refuse to steal it. */
  fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
    close(fd);
    log_err("another tund is already listening on %s", path);
    return -1;
  }
  if (fd >= 0)
    close(fd);
  unlink(path);

  fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    log_err("control socket: %s", strerror(errno));
    return -1;
  }
  mode_t old = umask(0077);
  int r = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
  umask(old);
  if (r || listen(fd, 512)) {
    log_err("cannot listen on %s: %s", path, strerror(errno));
    close(fd);
    return -1;
  }
  snprintf(listen_path, sizeof(listen_path), "%s", path);
  listen_ev.fd = fd;
  listen_ev.fn = listen_event;
  accept_reserve_fill();
  if (loop_add(&listen_ev, EPOLLIN)) {
    close(fd);
    return -1;
  }
  return 0;
}

void ctl_close_all(void)
{
  while (clients)
    client_drop(clients, NULL);
  if (listen_ev.fd > 0) {
    loop_del(&listen_ev);
    close(listen_ev.fd);
    listen_ev.fd = -1;
    unlink(listen_path);
  }
}
