/*
 * test_natproto.c — the messages between tund and its privileged helper
 * tund-nat, and the helper's command line (tund/nat.h, tund/natproto.c).
 * natproto.c is part of the helper's executable, not of libstack.a, so it is
 * included directly (as test_fdtable.c includes shim/fdtable.c).
 *
 * Table-driven: requests and replies are written byte by byte here (the wire
 * layout of nat.h, host byte order), independently of natp_*_encode, so that
 * every field can be set to a value the encoders never produce.
 *
 *   request (32): magic 0..3 | seq 4..7 | op 8 | proto 9 | family 10 |
 *                 zero 11 | port 12..13 | rport 14..15 | raddr 16..31
 *   reply   (36): magic 0..3 | seq 4..7 | err 8..11 | family 12 | zero 13 |
 *                 port 14..15 | addr 16..31 | zero 32..35
 */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "../../tund/natproto.c"

/* ---- raw requests ------------------------------------------------------------------------- */

struct raw_req {
  uint32_t magic;
  uint32_t seq;
  uint8_t op, proto, family, pad;
  uint16_t port, rport;
  uint8_t raddr[16];
};

static void raw_req_bytes(const struct raw_req *r, uint8_t out[NATP_REQ_LEN])
{
  memcpy(out + 0, &r->magic, 4);
  memcpy(out + 4, &r->seq, 4);
  out[8] = r->op;
  out[9] = r->proto;
  out[10] = r->family;
  out[11] = r->pad;
  memcpy(out + 12, &r->port, 2);
  memcpy(out + 14, &r->rport, 2);
  memcpy(out + 16, r->raddr, 16);
}

#define V4(a, b, c, d) { a, b, c, d }
#define V6_DOC1 { 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1 }
#define ONES16 { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff }

struct req_case {
  const char *name;
  struct raw_req r;
  int ok;
};

#define M NATP_MAGIC
static const struct req_case req_cases[] = {
  /* accepted */
  { "publish port 1", { M, 1, NATP_PUBLISH, 6, 0, 0, 1, 0, { 0 } }, 1 },
  { "publish port 80", { M, 7, NATP_PUBLISH, 6, 0, 0, 80, 0, { 0 } }, 1 },
  { "publish port 65535", { M, 0xffffffffu, NATP_PUBLISH, 6, 0, 0, 65535, 0, { 0 } }, 1 },
  { "publish seq 0", { M, 0, NATP_PUBLISH, 6, 0, 0, 443, 0, { 0 } }, 1 },
  { "unpublish port 443", { M, 2, NATP_UNPUBLISH, 6, 0, 0, 443, 0, { 0 } }, 1 },
  { "unpublish port 65535", { M, 3, NATP_UNPUBLISH, 6, 0, 0, 65535, 0, { 0 } }, 1 },
  { "origdst v4", { M, 4, NATP_ORIGDST, 6, 4, 0, 8080, 54321, V4(192, 0, 2, 7) }, 1 },
  { "origdst v4 255.255.255.255", { M, 5, NATP_ORIGDST, 6, 4, 0, 1, 1, V4(255, 255, 255, 255) }, 1 },
  { "origdst v6", { M, 6, NATP_ORIGDST, 6, 6, 0, 443, 40000, V6_DOC1 }, 1 },
  { "origdst v6 all ones", { M, 8, NATP_ORIGDST, 6, 6, 0, 65535, 65535, ONES16 }, 1 },

  /* magic */
  { "magic 0", { 0, 1, NATP_PUBLISH, 6, 0, 0, 80, 0, { 0 } }, 0 },
  { "magic byte-swapped", { 0x414e4e45u, 1, NATP_PUBLISH, 6, 0, 0, 80, 0, { 0 } }, 0 },
  { "magic off by one", { M + 1, 1, NATP_PUBLISH, 6, 0, 0, 80, 0, { 0 } }, 0 },
  { "magic high bit", { M | 0x80000000u, 1, NATP_PUBLISH, 6, 0, 0, 80, 0, { 0 } }, 0 },
  /* op */
  { "op 0", { M, 1, 0, 6, 0, 0, 80, 0, { 0 } }, 0 },
  { "op 4", { M, 1, 4, 6, 0, 0, 80, 0, { 0 } }, 0 },
  { "op 9", { M, 1, 9, 6, 0, 0, 80, 0, { 0 } }, 0 },
  { "op 255", { M, 1, 255, 6, 0, 0, 80, 0, { 0 } }, 0 },
  { "op 4 looking like origdst", { M, 1, 4, 6, 4, 0, 80, 1, V4(10, 0, 0, 1) }, 0 },
  /* proto */
  { "proto 0", { M, 1, NATP_PUBLISH, 0, 0, 0, 80, 0, { 0 } }, 0 },
  { "proto 17 (UDP)", { M, 1, NATP_PUBLISH, 17, 0, 0, 80, 0, { 0 } }, 0 },
  { "proto 132 (SCTP)", { M, 1, NATP_UNPUBLISH, 132, 0, 0, 80, 0, { 0 } }, 0 },
  { "proto 17 origdst", { M, 1, NATP_ORIGDST, 17, 4, 0, 80, 1, V4(10, 0, 0, 1) }, 0 },
  { "proto 255", { M, 1, NATP_PUBLISH, 255, 0, 0, 80, 0, { 0 } }, 0 },
  /* padding byte */
  { "pad 1 publish", { M, 1, NATP_PUBLISH, 6, 0, 1, 80, 0, { 0 } }, 0 },
  { "pad 0x80 unpublish", { M, 1, NATP_UNPUBLISH, 6, 0, 0x80, 80, 0, { 0 } }, 0 },
  { "pad 0xff origdst", { M, 1, NATP_ORIGDST, 6, 6, 0xff, 80, 1, V6_DOC1 }, 0 },
  /* port 0 */
  { "publish port 0", { M, 1, NATP_PUBLISH, 6, 0, 0, 0, 0, { 0 } }, 0 },
  { "unpublish port 0", { M, 1, NATP_UNPUBLISH, 6, 0, 0, 0, 0, { 0 } }, 0 },
  { "origdst port 0", { M, 1, NATP_ORIGDST, 6, 4, 0, 0, 1, V4(10, 0, 0, 1) }, 0 },
  /* publish / unpublish with origdst's fields */
  { "publish family 4", { M, 1, NATP_PUBLISH, 6, 4, 0, 80, 0, { 0 } }, 0 },
  { "publish family 6", { M, 1, NATP_PUBLISH, 6, 6, 0, 80, 0, { 0 } }, 0 },
  { "publish rport 1", { M, 1, NATP_PUBLISH, 6, 0, 0, 80, 1, { 0 } }, 0 },
  { "publish raddr[0]", { M, 1, NATP_PUBLISH, 6, 0, 0, 80, 0, { 1 } }, 0 },
  { "publish raddr[15]", { M, 1, NATP_PUBLISH, 6, 0, 0, 80, 0, { [15] = 1 } }, 0 },
  { "unpublish family 4", { M, 1, NATP_UNPUBLISH, 6, 4, 0, 80, 0, { 0 } }, 0 },
  { "unpublish rport 65535", { M, 1, NATP_UNPUBLISH, 6, 0, 0, 80, 65535, { 0 } }, 0 },
  { "unpublish raddr[7]", { M, 1, NATP_UNPUBLISH, 6, 0, 0, 80, 0, { [7] = 0x40 } }, 0 },
  /* origdst */
  { "origdst family 0", { M, 1, NATP_ORIGDST, 6, 0, 0, 80, 1, V4(10, 0, 0, 1) }, 0 },
  { "origdst family 5", { M, 1, NATP_ORIGDST, 6, 5, 0, 80, 1, V4(10, 0, 0, 1) }, 0 },
  { "origdst family 7", { M, 1, NATP_ORIGDST, 6, 7, 0, 80, 1, V6_DOC1 }, 0 },
  { "origdst family AF_INET", { M, 1, NATP_ORIGDST, 6, AF_INET, 0, 80, 1, V4(10, 0, 0, 1) }, 0 },
  { "origdst family AF_INET6", { M, 1, NATP_ORIGDST, 6, AF_INET6, 0, 80, 1, V6_DOC1 }, 0 },
  { "origdst family 255", { M, 1, NATP_ORIGDST, 6, 255, 0, 80, 1, V6_DOC1 }, 0 },
  { "origdst v4 rport 0", { M, 1, NATP_ORIGDST, 6, 4, 0, 80, 0, V4(10, 0, 0, 1) }, 0 },
  { "origdst v6 rport 0", { M, 1, NATP_ORIGDST, 6, 6, 0, 80, 0, V6_DOC1 }, 0 },
  { "origdst v4 raddr[4]", { M, 1, NATP_ORIGDST, 6, 4, 0, 80, 1, { 10, 0, 0, 1, 1 } }, 0 },
  { "origdst v4 raddr[10..11] (v4-mapped)",
    { M, 1, NATP_ORIGDST, 6, 4, 0, 80, 1, { 10, 0, 0, 1, [10] = 0xff, [11] = 0xff } }, 0 },
  { "origdst v4 raddr[15]", { M, 1, NATP_ORIGDST, 6, 4, 0, 80, 1, { 10, 0, 0, 1, [15] = 1 } }, 0 },
  { "origdst v4 given as v6 bytes", { M, 1, NATP_ORIGDST, 6, 4, 0, 80, 1, V6_DOC1 }, 0 },
};
#undef M

static void expect_same_req(const struct natp_req *a, const struct raw_req *r, const char *name)
{
  cr_expect_eq(a->seq, r->seq, "%s: seq", name);
  cr_expect_eq(a->op, r->op, "%s: op", name);
  cr_expect_eq(a->family, r->family, "%s: family", name);
  cr_expect_eq(a->port, r->port, "%s: port", name);
  cr_expect_eq(a->rport, r->rport, "%s: rport", name);
  cr_expect_arr_eq(a->raddr, r->raddr, 16, "%s: raddr", name);
}

Test(natp_req, table)
{
  for (size_t i = 0; i < sizeof(req_cases) / sizeof(req_cases[0]); i++) {
    const struct req_case *t = &req_cases[i];
    uint8_t buf[NATP_REQ_LEN];
    struct natp_req rq;
    raw_req_bytes(&t->r, buf);
    memset(&rq, 0xaa, sizeof(rq));
    int r = natp_req_parse(buf, sizeof(buf), &rq);
    if (!t->ok) {
      cr_expect_eq(r, -1, "'%s' must be refused", t->name);
      continue;
    }
    cr_expect_eq(r, 0, "'%s' must parse", t->name);
    if (r)
      continue;
    expect_same_req(&rq, &t->r, t->name);
    /* and back: the encoder writes exactly the bytes that were parsed */
    uint8_t again[NATP_REQ_LEN];
    memset(again, 0x55, sizeof(again));
    natp_req_encode(&rq, again);
    cr_expect_arr_eq(again, buf, NATP_REQ_LEN, "'%s': re-encoding differs", t->name);
  }
}

/* natp_req_encode -> natp_req_parse keeps every field, for each valid row */
Test(natp_req, encode_round_trip)
{
  int n = 0;
  for (size_t i = 0; i < sizeof(req_cases) / sizeof(req_cases[0]); i++) {
    const struct req_case *t = &req_cases[i];
    if (!t->ok)
      continue;
    struct natp_req in = { .seq = t->r.seq, .op = t->r.op, .family = t->r.family, .port = t->r.port,
                           .rport = t->r.rport };
    memcpy(in.raddr, t->r.raddr, 16);
    uint8_t buf[NATP_REQ_LEN], want[NATP_REQ_LEN];
    natp_req_encode(&in, buf);
    raw_req_bytes(&t->r, want);
    cr_expect_arr_eq(buf, want, NATP_REQ_LEN, "'%s': encoder's layout", t->name);
    struct natp_req out;
    memset(&out, 0xaa, sizeof(out));
    cr_expect_eq(natp_req_parse(buf, sizeof(buf), &out), 0, "'%s' must parse after encoding", t->name);
    expect_same_req(&out, &t->r, t->name);
    n++;
  }
  cr_expect_eq(n, 10, "valid rows: %d", n);
}

/* The encoder fills in magic, proto and the pad byte itself. */
Test(natp_req, encoder_fixed_fields)
{
  struct natp_req in = { .seq = 0x01020304u, .op = NATP_UNPUBLISH, .port = 0x1234 };
  uint8_t buf[NATP_REQ_LEN];
  memset(buf, 0xee, sizeof(buf));
  natp_req_encode(&in, buf);
  uint32_t magic, seq;
  memcpy(&magic, buf, 4);
  memcpy(&seq, buf + 4, 4);
  cr_expect_eq(magic, NATP_MAGIC);
  cr_expect_eq(seq, 0x01020304u);
  cr_expect_eq(buf[8], NATP_UNPUBLISH);
  cr_expect_eq(buf[9], IPPROTO_TCP);
  cr_expect_eq(buf[10], 0);
  cr_expect_eq(buf[11], 0);
}

/* A valid message at every wrong length (truncated, or with bytes after it). */
Test(natp_req, wrong_lengths)
{
  struct raw_req good = { NATP_MAGIC, 9, NATP_ORIGDST, 6, 6, 0, 443, 40000, V6_DOC1 };
  uint8_t buf[NATP_REQ_LEN * 3];
  struct natp_req rq;
  memset(buf, 0, sizeof(buf));
  raw_req_bytes(&good, buf);
  cr_assert_eq(natp_req_parse(buf, NATP_REQ_LEN, &rq), 0, "the base message must parse");
  static const size_t named[] = { 0, 1, 4, 31, 33, 36, 64 };
  for (size_t i = 0; i < sizeof(named) / sizeof(named[0]); i++)
    cr_expect_eq(natp_req_parse(buf, named[i], &rq), -1, "length %zu must be refused", named[i]);
  for (size_t len = 0; len <= sizeof(buf); len++)
    if (len != NATP_REQ_LEN)
      cr_expect_eq(natp_req_parse(buf, len, &rq), -1, "length %zu must be refused", len);
  cr_expect_eq(natp_req_parse(NULL, NATP_REQ_LEN, &rq), -1, "NULL buffer");
  cr_expect_eq(natp_req_parse(NULL, 0, &rq), -1, "NULL buffer, length 0");
}

/* Every single-bit flip of a valid PUBLISH is refused, except in seq (any
 * value) and in port (refused only if it became 0).  One flip cannot turn op
 * 1 into 2; 1 -> 3 is an ORIGDST without family and rport. */
Test(natp_req, bit_flips)
{
  struct raw_req good = { NATP_MAGIC, 77, NATP_PUBLISH, 6, 0, 0, 8443, 0, { 0 } };
  uint8_t base[NATP_REQ_LEN];
  raw_req_bytes(&good, base);
  for (int bit = 0; bit < NATP_REQ_LEN * 8; bit++) {
    uint8_t buf[NATP_REQ_LEN];
    struct natp_req rq;
    memcpy(buf, base, sizeof(buf));
    buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    int byte = bit / 8;
    int r = natp_req_parse(buf, sizeof(buf), &rq);
    if (byte >= 4 && byte < 8) {
      cr_expect_eq(r, 0, "bit %d (seq) must not matter", bit);
    } else if (byte == 12 || byte == 13) {
      uint16_t port;
      memcpy(&port, buf + 12, 2);
      cr_expect_eq(r, port ? 0 : -1, "bit %d (port -> %u)", bit, port);
    } else {
      cr_expect_eq(r, -1, "bit %d (byte %d) must be refused", bit, byte);
    }
  }
}

/* ---- replies ------------------------------------------------------------------------------ */

struct raw_rep {
  uint32_t magic;
  uint32_t seq;
  int32_t err;
  uint8_t family, pad;
  uint16_t port;
  uint8_t addr[16];
  uint32_t tail;
};

static void raw_rep_bytes(const struct raw_rep *r, uint8_t out[NATP_REP_LEN])
{
  memcpy(out + 0, &r->magic, 4);
  memcpy(out + 4, &r->seq, 4);
  memcpy(out + 8, &r->err, 4);
  out[12] = r->family;
  out[13] = r->pad;
  memcpy(out + 14, &r->port, 2);
  memcpy(out + 16, r->addr, 16);
  memcpy(out + 32, &r->tail, 4);
}

struct rep_case {
  const char *name;
  struct raw_rep r;
  int ok;
};

#define M NATP_MAGIC
static const struct rep_case rep_cases[] = {
  { "ready", { M, 0, 0, 0, 0, 0, { 0 }, 0 }, 1 },
  { "EPERM (setup failed)", { M, 0, EPERM, 0, 0, 0, { 0 }, 0 }, 1 },
  { "publish ok", { M, 12, 0, 0, 0, 0, { 0 }, 0 }, 1 },
  { "publish EIO", { M, 13, EIO, 0, 0, 0, { 0 }, 0 }, 1 },
  { "origdst ENOENT", { M, 14, ENOENT, 0, 0, 0, { 0 }, 0 }, 1 },
  { "origdst EOPNOTSUPP", { M, 0xffffffffu, EOPNOTSUPP, 0, 0, 0, { 0 }, 0 }, 1 },
  { "origdst v4", { M, 15, 0, 4, 0, 443, V4(198, 51, 100, 9), 0 }, 1 },
  { "origdst v6", { M, 16, 0, 6, 0, 65535, V6_DOC1, 0 }, 1 },
  { "err INT32_MAX", { M, 17, INT32_MAX, 0, 0, 0, { 0 }, 0 }, 1 },

  { "magic 0", { 0, 1, 0, 0, 0, 0, { 0 }, 0 }, 0 },
  { "request's magic byte-swapped", { 0x414e4e45u, 1, 0, 0, 0, 0, { 0 }, 0 }, 0 },
  { "magic + 1", { M + 1, 1, 0, 0, 0, 0, { 0 }, 0 }, 0 },
  { "pad 1", { M, 1, 0, 0, 1, 0, { 0 }, 0 }, 0 },
  { "pad 0xff with v4", { M, 1, 0, 4, 0xff, 80, V4(10, 0, 0, 1), 0 }, 0 },
  { "tail 1", { M, 1, 0, 0, 0, 0, { 0 }, 1 }, 0 },
  { "tail 0x01000000", { M, 1, 0, 0, 0, 0, { 0 }, 0x01000000u }, 0 },
  { "tail all ones", { M, 1, 0, 0, 0, 0, { 0 }, 0xffffffffu }, 0 },
  { "err -1", { M, 1, -1, 0, 0, 0, { 0 }, 0 }, 0 },
  { "err -EPERM", { M, 1, -EPERM, 0, 0, 0, { 0 }, 0 }, 0 },
  { "err INT32_MIN", { M, 1, INT32_MIN, 0, 0, 0, { 0 }, 0 }, 0 },
  { "family 1", { M, 1, 0, 1, 0, 0, { 0 }, 0 }, 0 },
  { "family 2 (AF_INET)", { M, 1, 0, AF_INET, 0, 80, V4(10, 0, 0, 1), 0 }, 0 },
  { "family 5", { M, 1, 0, 5, 0, 80, V4(10, 0, 0, 1), 0 }, 0 },
  { "family 7", { M, 1, 0, 7, 0, 80, V6_DOC1, 0 }, 0 },
  { "family 10 (AF_INET6)", { M, 1, 0, AF_INET6, 0, 80, V6_DOC1, 0 }, 0 },
  { "family 255", { M, 1, 0, 255, 0, 80, V6_DOC1, 0 }, 0 },
};
#undef M

Test(natp_rep, table)
{
  for (size_t i = 0; i < sizeof(rep_cases) / sizeof(rep_cases[0]); i++) {
    const struct rep_case *t = &rep_cases[i];
    uint8_t buf[NATP_REP_LEN];
    struct natp_rep rp;
    raw_rep_bytes(&t->r, buf);
    memset(&rp, 0xaa, sizeof(rp));
    int r = natp_rep_parse(buf, sizeof(buf), &rp);
    if (!t->ok) {
      cr_expect_eq(r, -1, "'%s' must be refused", t->name);
      continue;
    }
    cr_expect_eq(r, 0, "'%s' must parse", t->name);
    if (r)
      continue;
    cr_expect_eq(rp.seq, t->r.seq, "%s: seq", t->name);
    cr_expect_eq(rp.err, t->r.err, "%s: err", t->name);
    cr_expect_eq(rp.family, t->r.family, "%s: family", t->name);
    cr_expect_eq(rp.port, t->r.port, "%s: port", t->name);
    cr_expect_arr_eq(rp.addr, t->r.addr, 16, "%s: addr", t->name);
    uint8_t again[NATP_REP_LEN];
    memset(again, 0x55, sizeof(again));
    natp_rep_encode(&rp, again);
    cr_expect_arr_eq(again, buf, NATP_REP_LEN, "'%s': re-encoding differs", t->name);
  }
}

Test(natp_rep, encode_round_trip)
{
  struct natp_rep in = { .seq = 99, .err = 0, .family = 6, .port = 8443, .addr = V6_DOC1 }, out;
  uint8_t buf[NATP_REP_LEN];
  memset(buf, 0xee, sizeof(buf));
  natp_rep_encode(&in, buf);
  memset(&out, 0xaa, sizeof(out));
  cr_assert_eq(natp_rep_parse(buf, sizeof(buf), &out), 0);
  cr_expect_eq(out.seq, 99u);
  cr_expect_eq(out.err, 0);
  cr_expect_eq(out.family, 6);
  cr_expect_eq(out.port, 8443);
  cr_expect_arr_eq(out.addr, in.addr, 16);
  cr_expect_eq(buf[13], 0, "pad written as 0");
  cr_expect_arr_eq(buf + 32, ((uint8_t[4]){ 0, 0, 0, 0 }), 4, "tail written as 0");
}

Test(natp_rep, wrong_lengths)
{
  struct raw_rep good = { NATP_MAGIC, 3, 0, 4, 0, 80, V4(10, 0, 0, 1), 0 };
  uint8_t buf[NATP_REP_LEN * 3];
  struct natp_rep rp;
  memset(buf, 0, sizeof(buf));
  raw_rep_bytes(&good, buf);
  cr_assert_eq(natp_rep_parse(buf, NATP_REP_LEN, &rp), 0, "the base message must parse");
  for (size_t len = 0; len <= sizeof(buf); len++)
    if (len != NATP_REP_LEN)
      cr_expect_eq(natp_rep_parse(buf, len, &rp), -1, "length %zu must be refused", len);
  cr_expect_eq(natp_rep_parse(buf, NATP_REQ_LEN, &rp), -1, "a request's length");
  cr_expect_eq(natp_rep_parse(NULL, NATP_REP_LEN, &rp), -1, "NULL buffer");
}

/* ---- the helper's command line ------------------------------------------------------------- */

#define MAXARGS 10
struct args_case {
  const char *name;
  const char *argv[MAXARGS];   /* NULL-terminated; argv[0] is the program */
  int ok;
  const char *tun;             /* ok rows */
  const char *lwip4;
  const char *lwip6;           /* NULL: "none" */
};

#define P "tund-nat"
static const struct args_case args_cases[] = {
  { "defaults", { P, "--tun", "enotun0", "--lwip4", "10.77.0.2", "--lwip6", "fd7e:e0::2" }, 1,
    "enotun0", "10.77.0.2", "fd7e:e0::2" },
  { "no IPv6", { P, "--tun", "tun-a", "--lwip4", "10.201.0.2", "--lwip6", "none" }, 1, "tun-a", "10.201.0.2",
    NULL },
  { "any order", { P, "--lwip6", "::1", "--tun", "t", "--lwip4", "0.0.0.0" }, 1, "t", "0.0.0.0", "::1" },
  { "reversed", { P, "--lwip6", "none", "--lwip4", "255.255.255.255", "--tun", "x.y_z@1" }, 1, "x.y_z@1",
    "255.255.255.255", NULL },
  { "15-character name", { P, "--tun", "abcdefghijklmno", "--lwip4", "10.0.0.1", "--lwip6", "2001:db8::1" }, 1,
    "abcdefghijklmno", "10.0.0.1", "2001:db8::1" },
  { "v4-mapped lwip6", { P, "--tun", "t0", "--lwip4", "10.0.0.1", "--lwip6", "::ffff:10.0.0.1" }, 1, "t0",
    "10.0.0.1", "::ffff:10.0.0.1" },
  { "argv[0] is not looked at", { "anything", "--tun", "t0", "--lwip4", "10.0.0.1", "--lwip6", "none" }, 1,
    "t0", "10.0.0.1", NULL },

  /* argc */
  { "no arguments", { P }, 0, NULL, NULL, NULL },
  { "argc 0", { NULL }, 0, NULL, NULL, NULL },
  { "missing --tun", { P, "--lwip4", "10.0.0.1", "--lwip6", "none" }, 0, NULL, NULL, NULL },
  { "missing --lwip4", { P, "--tun", "t0", "--lwip6", "none" }, 0, NULL, NULL, NULL },
  { "missing --lwip6", { P, "--tun", "t0", "--lwip4", "10.0.0.1" }, 0, NULL, NULL, NULL },
  { "missing a value (argc 6)", { P, "--tun", "t0", "--lwip4", "10.0.0.1", "--lwip6" }, 0, NULL, NULL, NULL },
  { "one extra (argc 8)", { P, "--tun", "t0", "--lwip4", "10.0.0.1", "--lwip6", "none", "x" }, 0, NULL, NULL, NULL },
  { "extra option (argc 9)", { P, "--tun", "t0", "--lwip4", "10.0.0.1", "--lwip6", "none", "--tun", "t1" }, 0, NULL, NULL, NULL },
  /* duplicates / unknown, with argc 7 (so one required option is missing) */
  { "--tun twice", { P, "--tun", "t0", "--tun", "t1", "--lwip6", "none" }, 0, NULL, NULL, NULL },
  { "--lwip4 twice", { P, "--lwip4", "10.0.0.1", "--tun", "t0", "--lwip4", "10.0.0.1" }, 0, NULL, NULL, NULL },
  { "--lwip6 twice", { P, "--lwip6", "none", "--tun", "t0", "--lwip6", "none" }, 0, NULL, NULL, NULL },
  { "unknown option", { P, "--tun", "t0", "--lwip4", "10.0.0.1", "--lwip5", "none" }, 0, NULL, NULL, NULL },
  { "--key=value form", { P, "--tun=t0", "x", "--lwip4", "10.0.0.1", "--lwip6", "none" }, 0, NULL, NULL, NULL },
  { "single dash", { P, "-tun", "t0", "--lwip4", "10.0.0.1", "--lwip6", "none" }, 0, NULL, NULL, NULL },
  { "upper case", { P, "--TUN", "t0", "--lwip4", "10.0.0.1", "--lwip6", "none" }, 0, NULL, NULL, NULL },
  { "option as value, shifted", { P, "--tun", "--lwip4", "10.0.0.1", "--lwip6", "none", "x" }, 0, NULL, NULL, NULL },
  { "empty option", { P, "", "t0", "--lwip4", "10.0.0.1", "--lwip6", "none" }, 0, NULL, NULL, NULL },
  /* addresses */
  { "lwip4 three parts", { P, "--tun", "t0", "--lwip4", "10.77.0", "--lwip6", "none" }, 0, NULL, NULL, NULL },
  { "lwip4 256", { P, "--tun", "t0", "--lwip4", "10.77.0.256", "--lwip6", "none" }, 0, NULL, NULL, NULL },
  { "lwip4 with prefix", { P, "--tun", "t0", "--lwip4", "10.77.0.2/24", "--lwip6", "none" }, 0, NULL, NULL, NULL },
  { "lwip4 trailing space", { P, "--tun", "t0", "--lwip4", "10.77.0.2 ", "--lwip6", "none" }, 0, NULL, NULL, NULL },
  { "lwip4 empty", { P, "--tun", "t0", "--lwip4", "", "--lwip6", "none" }, 0, NULL, NULL, NULL },
  { "lwip4 none", { P, "--tun", "t0", "--lwip4", "none", "--lwip6", "none" }, 0, NULL, NULL, NULL },
  { "lwip4 IPv6", { P, "--tun", "t0", "--lwip4", "fd7e:e0::2", "--lwip6", "none" }, 0, NULL, NULL, NULL },
  { "lwip4 hostname", { P, "--tun", "t0", "--lwip4", "localhost", "--lwip6", "none" }, 0, NULL, NULL, NULL },
  { "lwip6 IPv4", { P, "--tun", "t0", "--lwip4", "10.0.0.1", "--lwip6", "10.0.0.1" }, 0, NULL, NULL, NULL },
  { "lwip6 with prefix", { P, "--tun", "t0", "--lwip4", "10.0.0.1", "--lwip6", "fd7e:e0::2/64" }, 0, NULL, NULL, NULL },
  { "lwip6 scoped", { P, "--tun", "t0", "--lwip4", "10.0.0.1", "--lwip6", "fe80::1%t0" }, 0, NULL, NULL, NULL },
  { "lwip6 bracketed", { P, "--tun", "t0", "--lwip4", "10.0.0.1", "--lwip6", "[::1]" }, 0, NULL, NULL, NULL },
  { "lwip6 empty", { P, "--tun", "t0", "--lwip4", "10.0.0.1", "--lwip6", "" }, 0, NULL, NULL, NULL },
  { "lwip6 None", { P, "--tun", "t0", "--lwip4", "10.0.0.1", "--lwip6", "None" }, 0, NULL, NULL, NULL },
  { "lwip6 none with space", { P, "--tun", "t0", "--lwip4", "10.0.0.1", "--lwip6", "none " }, 0, NULL, NULL, NULL },
  { "lwip6 three colons", { P, "--tun", "t0", "--lwip4", "10.0.0.1", "--lwip6", "fd7e:::2" }, 0, NULL, NULL, NULL },
  /* interface names */
  { "tun 16 characters", { P, "--tun", "abcdefghijklmnop", "--lwip4", "10.0.0.1", "--lwip6", "none" }, 0, NULL, NULL, NULL },
  { "tun 40 characters",
    { P, "--tun", "abcdefghijklmnopqrstuvwxyzabcdefghijklmn", "--lwip4", "10.0.0.1", "--lwip6", "none" }, 0, NULL, NULL, NULL },
  { "tun empty", { P, "--tun", "", "--lwip4", "10.0.0.1", "--lwip6", "none" }, 0, NULL, NULL, NULL },
  { "tun space", { P, "--tun", "tun 0", "--lwip4", "10.0.0.1", "--lwip6", "none" }, 0, NULL, NULL, NULL },
  { "tun leading space", { P, "--tun", " tun0", "--lwip4", "10.0.0.1", "--lwip6", "none" }, 0, NULL, NULL, NULL },
  { "tun tab", { P, "--tun", "tun\t0", "--lwip4", "10.0.0.1", "--lwip6", "none" }, 0, NULL, NULL, NULL },
  { "tun newline", { P, "--tun", "tun0\n", "--lwip4", "10.0.0.1", "--lwip6", "none" }, 0, NULL, NULL, NULL },
  { "tun double quote", { P, "--tun", "tun\"0", "--lwip4", "10.0.0.1", "--lwip6", "none" }, 0, NULL, NULL, NULL },
  { "tun nft injection", { P, "--tun", "x\";flush", "--lwip4", "10.0.0.1", "--lwip6", "none" }, 0, NULL, NULL, NULL },
  { "tun backslash", { P, "--tun", "tun\\0", "--lwip4", "10.0.0.1", "--lwip6", "none" }, 0, NULL, NULL, NULL },
  { "tun slash", { P, "--tun", "tun/0", "--lwip4", "10.0.0.1", "--lwip6", "none" }, 0, NULL, NULL, NULL },
  { "tun dot-dot slash", { P, "--tun", "../all", "--lwip4", "10.0.0.1", "--lwip6", "none" }, 0, NULL, NULL, NULL },
  { "tun colon", { P, "--tun", "eth0:1", "--lwip4", "10.0.0.1", "--lwip6", "none" }, 0, NULL, NULL, NULL },
  { "tun DEL", { P, "--tun", "tun\x7f", "--lwip4", "10.0.0.1", "--lwip6", "none" }, 0, NULL, NULL, NULL },
  { "tun non-ASCII", { P, "--tun", "t\xc3\xbcn", "--lwip4", "10.0.0.1", "--lwip6", "none" }, 0, NULL, NULL, NULL },
  { "tun control character", { P, "--tun", "tun\x01", "--lwip4", "10.0.0.1", "--lwip6", "none" }, 0, NULL, NULL, NULL },
};
#undef P

static int count_args(const char *const *argv)
{
  int n = 0;
  while (n < MAXARGS && argv[n])
    n++;
  return n;
}

Test(natp_args, table)
{
  for (size_t i = 0; i < sizeof(args_cases) / sizeof(args_cases[0]); i++) {
    const struct args_case *t = &args_cases[i];
    int argc = count_args(t->argv);
    char *argv[MAXARGS + 1];
    for (int k = 0; k < argc; k++)
      argv[k] = (char *)t->argv[k];
    argv[argc] = NULL;
    struct nat_params p;
    memset(&p, 0xaa, sizeof(p));
    int r = natp_args_parse(argc, argv, &p);
    if (!t->ok) {
      cr_expect_eq(r, -1, "'%s' must be refused", t->name);
      continue;
    }
    cr_expect_eq(r, 0, "'%s' must parse", t->name);
    if (r)
      continue;
    cr_expect_str_eq(p.tun_name, t->tun, "%s: tun", t->name);
    struct in_addr a4;
    cr_assert_eq(inet_pton(AF_INET, t->lwip4, &a4), 1);
    cr_expect_eq(p.lwip4.s_addr, a4.s_addr, "%s: lwip4", t->name);
    if (t->lwip6) {
      struct in6_addr a6;
      cr_assert_eq(inet_pton(AF_INET6, t->lwip6, &a6), 1);
      cr_expect_eq(p.have_v6, 1, "%s: have_v6", t->name);
      cr_expect_arr_eq(p.lwip6.s6_addr, a6.s6_addr, 16, "%s: lwip6", t->name);
    } else {
      cr_expect_eq(p.have_v6, 0, "%s: have_v6", t->name);
    }
  }
}

/* Every printable ASCII character in a name: accepted exactly when it is
 * neither a space nor one of " \ / : (nftables strings, sysctl paths,
 * ip-link's alias syntax). */
Test(natp_args, name_characters)
{
  for (int c = 1; c < 256; c++) {
    char name[4] = { 't', (char)c, '0', 0 };
    char *argv[] = { "tund-nat", "--tun", name, "--lwip4", "10.0.0.1", "--lwip6", "none", NULL };
    struct nat_params p;
    int want = c > ' ' && c < 0x7f && c != '"' && c != '\\' && c != '/' && c != ':';
    int r = natp_args_parse(7, argv, &p);
    cr_expect_eq(r, want ? 0 : -1, "character 0x%02x in a name: %s expected", c, want ? "accepted" : "refused");
    if (want && r == 0)
      cr_expect_str_eq(p.tun_name, name);
  }
}

/* Names of every length: 1..15 accepted, 16 (IFNAMSIZ) and more refused. */
Test(natp_args, name_lengths)
{
  char name[40];
  for (size_t n = 0; n < sizeof(name); n++) {
    memset(name, 'a', n);
    name[n] = 0;
    char *argv[] = { "tund-nat", "--tun", name, "--lwip4", "10.0.0.1", "--lwip6", "none", NULL };
    struct nat_params p;
    int want = n >= 1 && n < IFNAMSIZ;
    cr_expect_eq(natp_args_parse(7, argv, &p), want ? 0 : -1, "name of %zu characters", n);
  }
}
