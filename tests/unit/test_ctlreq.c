/*
 * test_ctlreq.c — the shape of tund's control requests (ctl_req_parse,
 * common/ctlreq.c, include/enoshim/ctlreq.h): for every request type, the
 * one payload size and descriptor count it takes is accepted and every
 * neighbour is refused; SETOPT's announced length, LISTEN's declared kernel
 * fd, KICK's kinds, FORKED's whole ids and RELISTEN's options and
 * descriptors are checked; replies and unknown types are never requests;
 * accepted fields come out as they went in.
 *
 * Messages are built here field by field (struct enoipc_msg as enoipc_recv
 * leaves it), independently of the parser's own structures.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "enoshim/ctlreq.h"

static struct enoipc_msg M;

/* a message of type with plen payload bytes (pattern) and nfds fake fds */
static const struct enoipc_msg *mk(uint16_t type, size_t plen, int nfds)
{
  memset(&M, 0, sizeof(M));
  M.hdr.type = type;
  M.hdr.len = (uint32_t)(sizeof(M.hdr) + plen);
  M.hdr.nfds = (uint16_t)nfds;
  M.hdr.seq = 77;
  M.hdr.sock = 0x1234567890abcdefull;
  for (size_t i = 0; i < plen && i < sizeof(M.buf); i++)
    M.buf[i] = (uint8_t)(i * 7 + 1);
  M.payload = M.buf;
  M.plen = plen;
  M.nfds = nfds;
  for (int i = 0; i < nfds; i++)
    M.fds[i] = 40 + i;
  return &M;
}

struct size_case {
  const char *name;
  uint16_t type;
  size_t plen;
  int nfds;
};

/* the one shape each fixed-size request takes */
static const struct size_case fixed[] = {
  { "HELLO", ENOIPC_HELLO, sizeof(struct enoipc_hello), 0 },
  { "SOCKET", ENOIPC_SOCKET, sizeof(struct enoipc_socket), 0 },
  { "BIND", ENOIPC_BIND, sizeof(struct enoipc_bind), 0 },
  { "CONNECT", ENOIPC_CONNECT, sizeof(struct enoipc_addr), 0 },
  { "CONNECT_POSTED", ENOIPC_CONNECT_POSTED, sizeof(struct enoipc_addr), 0 },
  { "GETOPT", ENOIPC_GETOPT, sizeof(struct enoipc_opt), 0 },
  { "SHUTDOWN", ENOIPC_SHUTDOWN, 4, 0 },
  { "ATTACH", ENOIPC_ATTACH, 0, 1 },
  { "STATUS", ENOIPC_STATUS, 0, 0 },
  { "COMMAND", ENOIPC_COMMAND, sizeof(struct enoipc_command), 0 },
  { "CLOSED", ENOIPC_CLOSED, 0, 0 },
};

Test(ctlreq, fixed_sizes_exact)
{
  struct ctl_req r;
  for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
    const struct size_case *c = &fixed[i];
    cr_expect_eq(ctl_req_parse(mk(c->type, c->plen, c->nfds), &r), 0, "%s: its own shape refused", c->name);
    cr_expect_eq(r.type, c->type, "%s: type", c->name);
    cr_expect_eq(r.seq, 77u, "%s: seq", c->name);
    cr_expect_eq(r.sock, 0x1234567890abcdefull, "%s: sock", c->name);
    /* one byte more or less, one fd more or less: refused */
    cr_expect_eq(ctl_req_parse(mk(c->type, c->plen + 1, c->nfds), &r), -1, "%s: +1 byte accepted", c->name);
    if (c->plen)
      cr_expect_eq(ctl_req_parse(mk(c->type, c->plen - 1, c->nfds), &r), -1, "%s: -1 byte accepted", c->name);
    cr_expect_eq(ctl_req_parse(mk(c->type, c->plen, c->nfds + 1), &r), -1, "%s: +1 fd accepted", c->name);
    if (c->nfds)
      cr_expect_eq(ctl_req_parse(mk(c->type, c->plen, c->nfds - 1), &r), -1, "%s: -1 fd accepted", c->name);
    cr_expect_eq(ctl_req_parse(mk(c->type, 4096, c->nfds), &r), -1, "%s: 4096 bytes accepted", c->name);
  }
}

Test(ctlreq, fields_copied)
{
  struct ctl_req r;
  const struct enoipc_msg *m = mk(ENOIPC_BIND, sizeof(struct enoipc_bind), 0);
  cr_assert_eq(ctl_req_parse(m, &r), 0);
  cr_expect_eq(memcmp(&r.u.bind, m->payload, sizeof(r.u.bind)), 0);
  cr_expect_eq(r.fd, -1);
  m = mk(ENOIPC_ATTACH, 0, 1);
  cr_assert_eq(ctl_req_parse(m, &r), 0);
  cr_expect_eq(r.fd, 40, "ATTACH's fd");
  m = mk(ENOIPC_COMMAND, sizeof(struct enoipc_command), 0);
  cr_assert_eq(ctl_req_parse(m, &r), 0);
  cr_expect_eq(memcmp(&r.u.command, m->payload, sizeof(r.u.command)), 0);
}

static const struct enoipc_msg *listen_msg(int32_t has_kfd, int nfds)
{
  struct enoipc_listen l = { .backlog = 128, .has_kernel_fd = has_kfd };
  mk(ENOIPC_LISTEN, sizeof(l), nfds);
  memcpy(M.buf, &l, sizeof(l));
  return &M;
}

Test(ctlreq, listen_kernel_fd_as_declared)
{
  struct ctl_req r;
  cr_expect_eq(ctl_req_parse(listen_msg(0, 0), &r), 0);
  cr_expect_eq(r.fd, -1);
  cr_expect_eq(r.u.listen.backlog, 128);
  cr_expect_eq(ctl_req_parse(listen_msg(1, 1), &r), 0);
  cr_expect_eq(r.fd, 40);
  cr_expect_eq(ctl_req_parse(listen_msg(7, 1), &r), 0, "any non-zero has_kernel_fd means one fd");
  cr_expect_eq(ctl_req_parse(listen_msg(1, 0), &r), -1, "declared, not sent");
  cr_expect_eq(ctl_req_parse(listen_msg(0, 1), &r), -1, "sent, not declared");
  cr_expect_eq(ctl_req_parse(listen_msg(1, 2), &r), -1, "two fds");
  mk(ENOIPC_LISTEN, sizeof(struct enoipc_listen) + 1, 0);
  cr_expect_eq(ctl_req_parse(&M, &r), -1, "one byte too many");
}

static const struct enoipc_msg *opt_msg(uint16_t type, uint32_t len, size_t vlen)
{
  struct enoipc_opt o = { .level = 6, .name = 0x454e01, .len = len };
  mk(type, sizeof(o) + vlen, 0);
  memcpy(M.buf, &o, sizeof(o));
  return &M;
}

Test(ctlreq, setopt_length_announced)
{
  struct ctl_req r;
  uint16_t types[] = { ENOIPC_SETOPT, ENOIPC_SETOPT_POSTED };
  for (int t = 0; t < 2; t++) {
    cr_expect_eq(ctl_req_parse(opt_msg(types[t], 4, 4), &r), 0);
    cr_expect_eq(r.u.opt.hdr.len, 4u);
    cr_expect_eq(r.u.opt.val, M.payload + sizeof(struct enoipc_opt), "the value follows the header");
    cr_expect_eq(ctl_req_parse(opt_msg(types[t], 0, 0), &r), 0, "an empty value");
    cr_expect_eq(ctl_req_parse(opt_msg(types[t], ENOIPC_OPT_MAX, ENOIPC_OPT_MAX), &r), 0, "the longest value");
    cr_expect_eq(ctl_req_parse(opt_msg(types[t], ENOIPC_OPT_MAX + 1, ENOIPC_OPT_MAX + 1), &r), -1, "too long");
    cr_expect_eq(ctl_req_parse(opt_msg(types[t], 5, 4), &r), -1, "len beyond the payload");
    cr_expect_eq(ctl_req_parse(opt_msg(types[t], 3, 4), &r), -1, "bytes after the value");
    cr_expect_eq(ctl_req_parse(opt_msg(types[t], 0xffffffffu, 4), &r), -1, "len 0xffffffff");
    mk(types[t], sizeof(struct enoipc_opt) - 1, 0);
    cr_expect_eq(ctl_req_parse(&M, &r), -1, "shorter than the header");
    opt_msg(types[t], 4, 4);
    M.nfds = 1;
    cr_expect_eq(ctl_req_parse(&M, &r), -1, "with an fd");
  }
  /* GETOPT: the header alone, len = the buffer the program has */
  cr_expect_eq(ctl_req_parse(opt_msg(ENOIPC_GETOPT, 0xffffffffu, 0), &r), 0);
  cr_expect_eq(ctl_req_parse(opt_msg(ENOIPC_GETOPT, 4, 4), &r), -1, "GETOPT with a value");
}

Test(ctlreq, kick_kinds)
{
  struct ctl_req r;
  for (uint32_t k = 0; k < 5; k++) {
    mk(ENOIPC_KICK, 4, 0);
    memcpy(M.buf, &k, 4);
    int want = k == ENOIPC_KICK_WAKE || k == ENOIPC_KICK_REARM ? 0 : -1;
    cr_expect_eq(ctl_req_parse(&M, &r), want, "KICK %u", k);
    if (!want)
      cr_expect_eq(r.u.kick, k);
  }
}

Test(ctlreq, forked_whole_ids)
{
  struct ctl_req r;
  cr_expect_eq(ctl_req_parse(mk(ENOIPC_FORKED, 0, 0), &r), 0, "no ids");
  cr_expect_eq(r.u.forked.n, 0u);
  cr_assert_eq(ctl_req_parse(mk(ENOIPC_FORKED, 24, 0), &r), 0);
  cr_expect_eq(r.u.forked.n, 3u);
  uint64_t id;
  memcpy(&id, M.buf + 8, 8);
  cr_expect_eq(ctl_req_forked_id(&r, 1), id);
  cr_expect_eq(ctl_req_parse(mk(ENOIPC_FORKED, 4096, 0), &r), 0, "a whole message of ids");
  cr_expect_eq(r.u.forked.n, 512u);
  cr_expect_eq(ctl_req_parse(mk(ENOIPC_FORKED, 12, 0), &r), -1, "half an id");
  cr_expect_eq(ctl_req_parse(mk(ENOIPC_FORKED, 8, 1), &r), -1, "with an fd");
}

/* RELISTEN: the settings, n_opts options (header + value), three fds and a
 * fourth exactly when has_kernel_fd is 1 */
static const struct enoipc_msg *relisten_msg(uint8_t has_kfd, uint32_t n_opts, const uint32_t *lens, int nlens,
                                             size_t extra, int nfds)
{
  struct enoipc_relisten h;
  memset(&h, 0, sizeof(h));
  h.domain = 2;
  h.backlog = 16;
  h.has_kernel_fd = has_kfd;
  h.n_opts = n_opts;
  size_t plen = sizeof(h) + extra;
  for (int i = 0; i < nlens; i++)
    plen += sizeof(struct enoipc_opt) + lens[i];
  mk(ENOIPC_RELISTEN, plen, nfds);
  memcpy(M.buf, &h, sizeof(h));
  size_t off = sizeof(h);
  for (int i = 0; i < nlens; i++) {
    struct enoipc_opt o = { .level = 6, .name = 1, .len = lens[i] };
    memcpy(M.buf + off, &o, sizeof(o));
    off += sizeof(o) + lens[i];
  }
  return &M;
}

Test(ctlreq, relisten)
{
  struct ctl_req r;
  uint32_t two[] = { 4, 2 }, big[] = { ENOIPC_OPT_MAX + 1 };
  cr_assert_eq(ctl_req_parse(relisten_msg(0, 0, NULL, 0, 0, 3), &r), 0, "no options, three fds");
  cr_expect_eq(r.u.relisten.kfd, -1);
  cr_expect_eq(r.u.relisten.pfd, 40);
  cr_expect_eq(r.u.relisten.memfd, 42);
  cr_assert_eq(ctl_req_parse(relisten_msg(1, 2, two, 2, 0, 4), &r), 0, "two options and the kernel listener");
  cr_expect_eq(r.u.relisten.kfd, 43);
  cr_expect_eq(r.u.relisten.opts, M.payload + sizeof(struct enoipc_relisten));
  cr_expect_eq(r.u.relisten.opts_len, 2 * sizeof(struct enoipc_opt) + 6);
  cr_expect_eq(ctl_req_parse(relisten_msg(1, 0, NULL, 0, 0, 3), &r), -1, "kernel listener declared, not sent");
  cr_expect_eq(ctl_req_parse(relisten_msg(0, 0, NULL, 0, 0, 4), &r), -1, "a fourth fd not declared");
  cr_expect_eq(ctl_req_parse(relisten_msg(2, 0, NULL, 0, 0, 4), &r), -1, "has_kernel_fd 2");
  cr_expect_eq(ctl_req_parse(relisten_msg(0, 0, NULL, 0, 0, 2), &r), -1, "two fds");
  cr_expect_eq(ctl_req_parse(relisten_msg(0, 3, two, 2, 0, 3), &r), -1, "n_opts beyond the options");
  cr_expect_eq(ctl_req_parse(relisten_msg(0, 1, two, 2, 0, 3), &r), -1, "an option after n_opts");
  cr_expect_eq(ctl_req_parse(relisten_msg(0, 2, two, 2, 1, 3), &r), -1, "a byte after the options");
  cr_expect_eq(ctl_req_parse(relisten_msg(0, 1, big, 1, 0, 3), &r), -1, "an option longer than OPT_MAX");
  cr_expect_eq(ctl_req_parse(relisten_msg(0, 0xffffffffu, NULL, 0, 0, 3), &r), -1, "n_opts 0xffffffff");
  mk(ENOIPC_RELISTEN, sizeof(struct enoipc_relisten) - 1, 3);
  cr_expect_eq(ctl_req_parse(&M, &r), -1, "shorter than the settings");
}

Test(ctlreq, not_requests)
{
  struct ctl_req r;
  /* 17, 18 and 102: the retired standby messages (ipc.h) */
  uint16_t types[] = { 0, 17, 18, ENOIPC_RELISTEN + 1, 99, ENOIPC_RESULT, ENOIPC_STATUS_ENTRY, 102, 103, 0xffff };
  for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
    for (size_t plen = 0; plen <= 40; plen += 4)
      cr_expect_eq(ctl_req_parse(mk(types[i], plen, 0), &r), -1, "type %u accepted", types[i]);
}

Test(ctlreq, impossible_messages)
{
  struct ctl_req r;
  mk(ENOIPC_ATTACH, 0, 1);
  M.nfds = ENOIPC_MAX_FDS + 1;
  cr_expect_eq(ctl_req_parse(&M, &r), -1, "more fds than a message holds");
  mk(ENOIPC_STATUS, 0, 0);
  M.nfds = -1;
  cr_expect_eq(ctl_req_parse(&M, &r), -1, "a negative fd count");
  mk(ENOIPC_FORKED, 8, 0);
  M.plen = ENOIPC_MAX_MSG + 8;
  cr_expect_eq(ctl_req_parse(&M, &r), -1, "a payload longer than a message");
  mk(ENOIPC_HELLO, sizeof(struct enoipc_hello), 0);
  M.payload = NULL;
  cr_expect_eq(ctl_req_parse(&M, &r), -1, "no payload");
}
