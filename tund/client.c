/*
 * tund/client.c — the control socket: one SOCK_SEQPACKET connection per
 * program process, requests parsed with exact sizes (ctl_req_parse,
 * enoshim/ctlreq.h) then executed, replies queued per client so that a slow
 * or hostile reader never blocks tund.
 *
 * Clients are admitted by their uid (SO_PEERCRED, access.c): tund's own and
 * root always; a host-wide tund (started by root) every local user unless
 * its config names whom it serves.  A client sees in STATUS, and rekeys, only
 * connections its uid made, attached or asked about (root and tund's uid:
 * all); only root and tund's uid stop tund or flush its cache.  Anything
 * malformed drops that client, never tund.
 *
 * The socket's directory must belong to tund's uid and be writable by
 * nobody else (ctl_prepare, before anything else is set up; again at
 * ctl_listen); the socket is 0666 when tund serves other users (access
 * is decided here), 0600 otherwise.
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
#include "conn.h"
#include "enoshim/ctlreq.h"
#include "enoshim/sockpath.h"
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
  gid_t gid;
  struct outmsg *q_head, *q_tail;
  size_t q_bytes;
  struct client *next, *prev;
  uint64_t key;           /* owner key of the spare shm it leaves (spares.c) */
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

/* ---- who has to do with a connection (access.c) ---------------------------- */

/* uid has to do with c: it made, attached or used it (access.c) */
static void conn_add_user(struct conn *c, uid_t uid)
{
  for (int i = 0; i < c->n_users; i++)
    if (c->users[i] == uid)
      return;
  if (c->n_users < CONN_USERS)
    c->users[c->n_users++] = uid;
}

/* May a client of uid see c in STATUS and rekey it? */
static int conn_visible(const struct conn *c, uid_t uid)
{
  if (access_admin(uid))
    return 1;
  for (int i = 0; i < c->n_users; i++)
    if (c->users[i] == uid)
      return 1;
  return 0;
}

/* the socket a request names by its (secret) id */
static struct conn *req_conn(struct client *cl, const struct ctl_req *r)
{
  struct conn *c = conn_find(r->sock);
  if (c) {
    conn_touch_pid(c, cl->pid);
    conn_add_user(c, cl->uid);
  }
  return c;
}

/* a socket just made or attached for cl */
static void conn_given(struct client *cl, uint64_t id)
{
  struct conn *c = conn_find(id);
  if (c)
    conn_add_user(c, cl->uid);
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

/* enoctl's commands, as far as cl's uid may give them */
static int command(struct client *cl, const struct enoipc_command *cmd, char *text, size_t tl)
{
  switch (cmd->cmd) {
  case ENOIPC_CMD_STOP:
  case ENOIPC_CMD_FLUSH_CACHE:
    if (!access_admin(cl->uid)) {
      snprintf(text, tl, "only root or tund's user (uid %u) may %s", (unsigned)access_tund_uid(),
               cmd->cmd == ENOIPC_CMD_STOP ? "stop tund" : "flush its cache");
      return EPERM;
    }
    break;
  case ENOIPC_CMD_REKEY:
    if (access_admin(cl->uid))
      break;
    if (cmd->arg) {
      /* another user's connection is one this client cannot name */
      for (struct conn *c = conn_first(); c; c = c->next)
        if (!c->dead && c->serial == cmd->arg && !conn_visible(c, cl->uid)) {
          snprintf(text, tl, "no connection %llu", (unsigned long long)cmd->arg);
          return ENOENT;
        }
      break;
    } else {
      /* all of this user's */
      unsigned n = 0;
      for (struct conn *c = conn_first(); c; c = c->next)
        if (!c->dead && conn_visible(c, cl->uid) && crypt_rekey(c) == 0)
          n++;
      snprintf(text, tl, "rekey started on %u connection%s", n, n == 1 ? "" : "s");
      return 0;
    }
  default:
    break;                    /* CHECK: counts only; unknown ones: EINVAL */
  }
  return conn_command(cmd->cmd, cmd->arg, text, tl);
}

/* Execute a request that ctl_req_parse() accepted.  Returns 0, or -1 when
 * the client broke the protocol (dropped by the caller).  m still owns its
 * fds unless a handler took them (m->nfds = 0). */
static int handle(struct client *cl, struct enoipc_msg *m)
{
  struct ctl_req rq;
  struct conn *c;
  int err;

  if (ctl_req_parse(m, &rq))
    return -1;
  switch (rq.type) {
  case ENOIPC_HELLO: {
    struct enoipc_hello_ok ok;
    if (rq.u.hello.version != ENOIPC_VERSION) {
      reply_result(cl, m, EPROTONOSUPPORT, NULL, 0, NULL, 0);
      return 0;
    }
    memset(&ok, 0, sizeof(ok));
    ok.version = ENOIPC_VERSION;
    ok.tund_pid = (uint32_t)getpid();
    ok.ring_size = cfg.ring_size;
    ok.flags = cfg.direct_local ? ENOIPC_HELLO_F_DIRECT_LOCAL : 0;
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
    struct enoipc_socket_ok ok;
    uint64_t id = 0;
    int fds[2];
    err = conn_socket(cl, rq.u.socket.domain, rq.u.socket.v6only, &id, fds, &ok.shm_size);
    if (err) {
      reply_result(cl, m, err, NULL, 0, NULL, 0);
      return 0;
    }
    conn_given(cl, id);
    struct enoipc_result r = { .err = 0, .len = sizeof(ok) };
    client_reply(cl, ENOIPC_RESULT, rq.seq, id, &r, sizeof(r), &ok, sizeof(ok), fds, 2);
    return 0;
  }
  case ENOIPC_BIND: {
    struct enoipc_addr bound;
    memset(&bound, 0, sizeof(bound));
    c = req_conn(cl, &rq);
    err = c ? conn_bind(c, &rq.u.bind.addr, rq.u.bind.kernel_bound != 0, &bound) : EBADF;
    reply_result(cl, m, err, &bound, sizeof(bound), NULL, 0);
    return 0;
  }
  case ENOIPC_LISTEN: {
    int kfd = rq.fd;
    m->nfds = 0;                 /* conn_listen owns kfd now */
    c = req_conn(cl, &rq);
    if (!c) {
      if (kfd >= 0)
        close(kfd);
      err = EBADF;
    } else {
      err = conn_listen(c, rq.u.listen.backlog, kfd);
    }
    /* a new listener: copies of our end and its memory for the program to
     * keep, so that it outlives us (shim/relisten.c) */
    int kept[2], nkept = !err && c && c->kind == CK_LISTENER && !c->kept_given ? conn_kept_ends(c, kept) : 0;
    if (nkept)
      c->kept_given = 1;
    reply_result(cl, m, err, NULL, 0, kept, nkept);
    return 0;
  }
  case ENOIPC_RELISTEN: {
    uint64_t id = 0;
    m->nfds = 0;                 /* conn_relisten owns every fd now */
    err = conn_relisten(cl->pid, rq.sock, &rq.u.relisten.hdr, rq.u.relisten.opts, rq.u.relisten.opts_len,
                        rq.u.relisten.pfd, rq.u.relisten.tfd, rq.u.relisten.memfd, rq.u.relisten.kfd, &id);
    if (!err)
      conn_given(cl, id);
    struct enoipc_result r = { .err = err, .len = 0 };
    client_reply(cl, ENOIPC_RESULT, rq.seq, id, &r, sizeof(r), NULL, 0, NULL, 0);
    return 0;
  }
  case ENOIPC_CONNECT:
    c = req_conn(cl, &rq);
    err = c ? conn_connect(c, &rq.u.addr) : EBADF;
    reply_result(cl, m, err, NULL, 0, NULL, 0);
    return 0;
  case ENOIPC_CONNECT_POSTED:
    c = req_conn(cl, &rq);
    if (c && (err = conn_connect(c, &rq.u.addr)))
      conn_connect_posted_failed(c, err);
    return 0;
  case ENOIPC_SETOPT:
  case ENOIPC_SETOPT_POSTED:
    c = req_conn(cl, &rq);
    err = c ? conn_setopt(c, rq.u.opt.hdr.level, rq.u.opt.hdr.name, rq.u.opt.val, rq.u.opt.hdr.len) : EBADF;
    if (rq.type == ENOIPC_SETOPT)
      reply_result(cl, m, err, NULL, 0, NULL, 0);
    else if (err && err != EBADF)   /* EBADF: the connection already ended */
      conn_posted_failed(c, rq.u.opt.hdr.level, rq.u.opt.hdr.name, err);
    return 0;
  case ENOIPC_GETOPT: {
    uint8_t val[ENOIPC_OPT_MAX];
    uint32_t len = rq.u.opt.hdr.len > ENOIPC_OPT_MAX ? ENOIPC_OPT_MAX : rq.u.opt.hdr.len;
    c = req_conn(cl, &rq);
    err = c ? conn_getopt(c, rq.u.opt.hdr.level, rq.u.opt.hdr.name, val, &len) : EBADF;
    reply_result(cl, m, err, val, err ? 0 : len, NULL, 0);
    return 0;
  }
  case ENOIPC_SHUTDOWN:
    c = req_conn(cl, &rq);
    err = c ? conn_shutdown(c, rq.u.how) : EBADF;
    reply_result(cl, m, err, NULL, 0, NULL, 0);
    return 0;
  case ENOIPC_ATTACH: {
    /* the pair end itself proves that cl holds the socket (conn_attach) */
    struct enoipc_attach_ok ok;
    uint64_t id = 0;
    int memfd = -1;
    memset(&ok, 0, sizeof(ok));
    err = conn_attach(rq.fd, &id, &ok.kind, &memfd, &ok.shm_size);
    enoipc_msg_close_fds(m);
    if (err) {
      reply_result(cl, m, err, NULL, 0, NULL, 0);
      return 0;
    }
    conn_given(cl, id);
    struct enoipc_result r = { .err = 0, .len = sizeof(ok) };
    client_reply(cl, ENOIPC_RESULT, rq.seq, id, &r, sizeof(r), &ok, sizeof(ok), &memfd, 1);
    return 0;
  }
  case ENOIPC_KICK:
    /* KICK_REARM came from the one-byte token's shim; with grants (shm.h)
     * a shim taking the flag back keeps the rest of its grant, so either
     * kind is a plain kick (no token bytes the program does not count on) */
    c = conn_find(rq.sock);
    if (c)
      conn_kick(c);
    return 0;
  case ENOIPC_STATUS: {
    struct enoipc_status_entry e;
    uint32_t n = 0;
    for (struct conn *it = conn_status_next(NULL, &e); it; it = conn_status_next(it, &e)) {
      if (!conn_visible(it, cl->uid))
        continue;
      if (it->st.flags & ENOSHM_F_LOCAL_LAZY) {
        conn_local_resolve(it);  /* the address the peer dialed, asked once (tcpcb.c) */
        memcpy(&e.local, &it->st.local, sizeof(e.local));
      }
      client_reply(cl, ENOIPC_STATUS_ENTRY, rq.seq, e.id, &e, sizeof(e), NULL, 0, NULL, 0);
      if (cl->dead)
        return 0;
      n++;
    }
    reply_result(cl, m, 0, &n, sizeof(n), NULL, 0);
    return 0;
  }
  case ENOIPC_FORKED: {
    /* the ids of the sockets a child is about to inherit */
    uint64_t ids[ENOIPC_MAX_MSG / sizeof(uint64_t)];
    for (uint32_t i = 0; i < rq.u.forked.n; i++)
      ids[i] = ctl_req_forked_id(&rq, i);
    conn_forked(ids, rq.u.forked.n);
    reply_result(cl, m, 0, NULL, 0, NULL, 0);
    return 0;
  }
  case ENOIPC_CLOSED:
    c = conn_find(rq.sock);
    if (c)
      conn_closed_hint(c);
    reply_result(cl, m, 0, NULL, 0, NULL, 0);
    return 0;
  case ENOIPC_COMMAND: {
    char text[512];
    text[0] = 0;
    err = command(cl, &rq.u.command, text, sizeof(text));
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
    char why[160] = "no credentials";
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &crl) || crl != sizeof(cr) ||
        !access_client_ok(fd, cr.uid, cr.gid, why, sizeof(why))) {
      tund_log_limited(LOG_WARN_, "refusing control client uid %d pid %d: %s",
                       crl == sizeof(cr) ? (int)cr.uid : -1, crl == sizeof(cr) ? (int)cr.pid : -1, why);
      /* one answer, not waited for, so that the program can say why; what
       * it sent already is read and dropped (closing on unread data would
       * turn the answer into ECONNRESET), and it cannot send more */
      static struct enoipc_msg junk;
      struct enoipc_result r = { .err = EACCES, .len = 0 };
      enoipc_send_flags(fd, ENOIPC_RESULT, 0, 0, &r, sizeof(r), NULL, 0, NULL, 0, MSG_DONTWAIT);
      shutdown(fd, SHUT_RD);
      for (int k = 0; k < 64; k++) {
        int jr = enoipc_recv_flags(fd, &junk, MSG_DONTWAIT);
        if (jr == -EAGAIN || jr == 0)
          break;
        if (jr == 1)
          enoipc_msg_close_fds(&junk);
      }
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
    cl->gid = cr.gid;
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

/* Make the socket's missing directories: those above 0755, its own mode
 * (0755 when tund serves other users, else 0700), handed to uid/gid when
 * root makes it for a tund that will run as another user.  0, or -1. */
static int mkdir_parent(const char *path, mode_t mode, uid_t uid, gid_t gid)
{
  char dir[108];
  sockpath_dirname(path, dir, sizeof(dir));
  if (!strcmp(dir, "/") || !strcmp(dir, "."))
    return 0;
  for (char *p = dir + 1; *p; p++) {
    if (*p == '/') {
      *p = 0;
      mkdir(dir, 0755);
      *p = '/';
    }
  }
  mode_t old = umask(0022);
  int r = mkdir(dir, mode);
  umask(old);
  if (r && errno != EEXIST) {
    log_err("cannot create %s: %s", dir, strerror(errno));
    return -1;
  }
  if (r == 0 && geteuid() == 0 && (uid != 0 || gid != 0) && chown(dir, uid, gid)) {
    log_err("cannot hand %s to uid %u: %s", dir, (unsigned)uid, strerror(errno));
    return -1;
  }
  return 0;
}

/* Before anything is set up (main.c): the path is known and its directory
 * exists, belongs to the uid tund will run as and nobody else can write
 * it; otherwise one line saying why.  0, or -1. */
int ctl_prepare(struct tund_config *c)
{
  char why[400];
  access_start(c);
  if (!c->socket_path[0]) {
    sockpath_server_default(c->socket_path, sizeof(c->socket_path), why, sizeof(why));
    if (!c->socket_path[0]) {
      log_err("%s", why);
      return -1;
    }
  }
  uid_t owner = access_tund_uid();
  if (mkdir_parent(c->socket_path, access_serves_others() ? 0755 : 0700, owner,
                   c->user_set ? c->gid : getegid()))
    return -1;
  if (sockpath_own_dir_check(c->socket_path, owner, why, sizeof(why))) {
    log_err("%s", why[0] ? why : strerror(errno));
    return -1;
  }
  return 0;
}

int ctl_listen(const char *path)
{
  struct sockaddr_un sa;
  char why[400];
  int fd;

  if (strlen(path) >= sizeof(sa.sun_path)) {
    log_err("socket path too long: %s", path);
    return -1;
  }
  /* again, now as the user tund runs as: nobody else can have put a socket
   * there since */
  if (sockpath_own_dir_check(path, geteuid(), why, sizeof(why))) {
    log_err("%s", why[0] ? why : strerror(errno));
    return -1;
  }
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
  /* who may use tund is decided by its uid (access.c), not by the mode */
  mode_t old = umask(0077);
  int r = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
  umask(old);
  if (!r && chmod(path, access_serves_others() ? 0666 : 0600))
    r = -1;
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
