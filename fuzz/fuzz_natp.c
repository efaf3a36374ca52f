/*
 * fuzz_natp.c — libFuzzer target for the messages between tund and its
 * privileged helper tund-nat, and for the helper's command line
 * (tund/natproto.c, tund/nat.h).  A malformed request must never get past
 * natp_req_parse: the helper holds CAP_NET_ADMIN.
 *
 * FUZZ_SOURCES: tund/natproto.c
 * FUZZ_LIBS:
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE \
 *         fuzz/fuzz_natp.c tund/natproto.c -o build/fuzz/fuzz_natp
 *
 * Every input is used three ways; each result is compared with an
 * independent reading of the rules of nat.h (abort() on any difference):
 *   1. the whole input as a request (natp_req_parse) and as a reply
 *      (natp_rep_parse): accepted exactly when the bytes obey the rules, and
 *      what is accepted re-encodes to the same bytes (the parsers accept
 *      only canonical messages);
 *   2. the input's first 34 bytes as the fields of a request and a reply
 *      (missing bytes read as 0): encode, then parse — accepted exactly when
 *      the fields obey the rules, and the fields come back unchanged;
 *   3. the input split on NUL bytes into argv[1..] (argv[0] "tund-nat", at
 *      most 15 arguments, each in its own allocation): natp_args_parse
 *      accepts exactly argc 7 with --tun, --lwip4 and --lwip6 once each, a
 *      name of 1..15 bytes in 0x21..0x7e other than " \ / :, and addresses
 *      inet_pton reads ("none" for no IPv6), and returns them.
 *
 * Seeds in fuzz/corpus/natp/: req-* (32-byte requests of each op, valid and
 * refused: bad magic, op 9, proto 17, port 0, pad, v4 with bytes after the
 * address, 31 and 33 bytes), rep-* (36-byte replies), args-* (NUL-separated
 * command lines).
 */
#include <arpa/inet.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../tund/nat.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x) do { if (!(x)) abort(); } while (0)

static uint32_t ld32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint16_t ld16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }

static bool zeros(const uint8_t *p, size_t n)
{
  for (size_t i = 0; i < n; i++)
    if (p[i])
      return false;
  return true;
}

/* nat.h's request rules, on the fields */
static bool req_fields_ok(uint8_t op, uint8_t family, uint16_t port, uint16_t rport, const uint8_t raddr[16])
{
  if (port == 0)
    return false;
  if (op == NATP_PUBLISH || op == NATP_UNPUBLISH)
    return family == 0 && rport == 0 && zeros(raddr, 16);
  if (op == NATP_ORIGDST)
    return rport != 0 && ((family == 4 && zeros(raddr + 4, 12)) || family == 6);
  return false;
}

/* ... and on the wire: magic | seq | op | proto | family | zero | port | rport | raddr */
static bool req_bytes_ok(const uint8_t *b, size_t n)
{
  return n == NATP_REQ_LEN && ld32(b) == NATP_MAGIC && b[9] == 6 && b[11] == 0 &&
         req_fields_ok(b[8], b[10], ld16(b + 12), ld16(b + 14), b + 16);
}

static bool rep_fields_ok(int32_t err, uint8_t family)
{
  return err >= 0 && (family == 0 || family == 4 || family == 6);
}

/* magic | seq | err | family | zero | port | addr | zero32 */
static bool rep_bytes_ok(const uint8_t *b, size_t n)
{
  return n == NATP_REP_LEN && ld32(b) == NATP_MAGIC && b[13] == 0 && ld32(b + 32) == 0 &&
         rep_fields_ok((int32_t)ld32(b + 8), b[12]);
}

static void whole_input(const uint8_t *data, size_t size)
{
  struct natp_req rq;
  struct natp_rep rp;
  int r = natp_req_parse(data, size, &rq);
  CHECK(r == 0 || r == -1);
  CHECK((r == 0) == req_bytes_ok(data, size));
  if (r == 0) {
    uint8_t again[NATP_REQ_LEN];
    natp_req_encode(&rq, again);
    CHECK(memcmp(again, data, NATP_REQ_LEN) == 0);
    CHECK(rq.op >= NATP_PUBLISH && rq.op <= NATP_ORIGDST && rq.port != 0);
  }
  r = natp_rep_parse(data, size, &rp);
  CHECK(r == 0 || r == -1);
  CHECK((r == 0) == rep_bytes_ok(data, size));
  if (r == 0) {
    uint8_t again[NATP_REP_LEN];
    natp_rep_encode(&rp, again);
    CHECK(memcmp(again, data, NATP_REP_LEN) == 0);
    CHECK(rp.err >= 0);
  }
}

struct in {
  const uint8_t *p;
  size_t left;
};

static void in_bytes(struct in *r, void *out, size_t n)
{
  size_t k = n < r->left ? n : r->left;
  memset(out, 0, n);
  memcpy(out, r->p, k);
  r->p += k;
  r->left -= k;
}

static void as_fields(const uint8_t *data, size_t size)
{
  struct in r = { data, size };
  struct natp_req rq = { 0 }, rq2;
  struct natp_rep rp = { 0 }, rp2;
  uint8_t buf[NATP_REP_LEN];

  in_bytes(&r, &rq.seq, 4);
  in_bytes(&r, &rq.op, 1);
  in_bytes(&r, &rq.family, 1);
  in_bytes(&r, &rq.port, 2);
  in_bytes(&r, &rq.rport, 2);
  in_bytes(&r, rq.raddr, 16);
  natp_req_encode(&rq, buf);
  int ok = natp_req_parse(buf, NATP_REQ_LEN, &rq2) == 0;
  CHECK(ok == req_fields_ok(rq.op, rq.family, rq.port, rq.rport, rq.raddr));
  if (ok)
    CHECK(rq2.seq == rq.seq && rq2.op == rq.op && rq2.family == rq.family && rq2.port == rq.port &&
          rq2.rport == rq.rport && memcmp(rq2.raddr, rq.raddr, 16) == 0);

  /* the reply from the same bytes, plus err */
  rp.seq = rq.seq;
  rp.family = rq.family;
  rp.port = rq.port;
  memcpy(rp.addr, rq.raddr, 16);
  in_bytes(&r, &rp.err, 4);
  natp_rep_encode(&rp, buf);
  ok = natp_rep_parse(buf, NATP_REP_LEN, &rp2) == 0;
  CHECK(ok == rep_fields_ok(rp.err, rp.family));
  if (ok)
    CHECK(rp2.seq == rp.seq && rp2.err == rp.err && rp2.family == rp.family && rp2.port == rp.port &&
          memcmp(rp2.addr, rp.addr, 16) == 0);
}

static bool name_ok(const char *s)
{
  size_t n = strlen(s);
  if (n < 1 || n > 15)
    return false;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c < 0x21 || c > 0x7e || c == '"' || c == '\\' || c == '/' || c == ':')
      return false;
  }
  return true;
}

#define MAX_ARGS 16

static void as_argv(const uint8_t *data, size_t size)
{
  char *argv[MAX_ARGS + 1];
  int argc = 0;
  argv[argc++] = strdup("tund-nat");
  CHECK(argv[0]);
  size_t start = 0;
  for (size_t i = 0; i <= size && argc < MAX_ARGS; i++) {
    if (i < size && data[i] != 0)
      continue;
    size_t n = i - start;
    char *a = malloc(n + 1);
    CHECK(a);
    memcpy(a, data + start, n);
    a[n] = 0;
    argv[argc++] = a;
    start = i + 1;
  }
  argv[argc] = NULL;

  /* the independent reading */
  bool want = argc == 7;
  const char *tun = NULL, *v4 = NULL, *v6 = NULL;
  for (int i = 1; want && i + 1 < argc; i += 2) {
    const char *k = argv[i], *v = argv[i + 1];
    const char **slot = !strcmp(k, "--tun") ? &tun : !strcmp(k, "--lwip4") ? &v4 : !strcmp(k, "--lwip6") ? &v6 : NULL;
    if (!slot || *slot)
      want = false;
    else
      *slot = v;
  }
  struct in_addr a4;
  struct in6_addr a6;
  want = want && tun && v4 && v6 && name_ok(tun) && inet_pton(AF_INET, v4, &a4) == 1 &&
         (!strcmp(v6, "none") || inet_pton(AF_INET6, v6, &a6) == 1);

  struct nat_params p;
  int r = natp_args_parse(argc, argv, &p);
  CHECK(r == 0 || r == -1);
  CHECK((r == 0) == want);
  if (r == 0) {
    CHECK(strcmp(p.tun_name, tun) == 0);
    CHECK(p.lwip4.s_addr == a4.s_addr);
    if (!strcmp(v6, "none"))
      CHECK(p.have_v6 == 0);
    else
      CHECK(p.have_v6 == 1 && memcmp(&p.lwip6, &a6, sizeof(a6)) == 0);
  }
  for (int i = 0; i < argc; i++)
    free(argv[i]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  whole_input(data, size);
  as_fields(data, size);
  as_argv(data, size);
  return 0;
}
