/*
 * test_prefix.c — address prefixes (include/enoshim/prefix.h, common/prefix.c),
 * the one parser behind tund's `direct=` and the shim's ENOSHIM_DIRECT.
 * Table-driven: each row is an input and what must come of it.
 */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <string.h>
#include <sys/socket.h>

#include "enoshim/prefix.h"

/* ---- one prefix ----------------------------------------------------------------------- */

struct parse_case {
  const char *in;
  int ok;
  int family;
  int len;
  const char *addr;      /* as inet_pton reads it (ok rows) */
};

static const struct parse_case parse_cases[] = {
  /* IPv4 */
  { "10.0.0.0/8", 1, AF_INET, 8, "10.0.0.0" },
  { "192.0.2.1", 1, AF_INET, 32, "192.0.2.1" },
  { "0.0.0.0/0", 1, AF_INET, 0, "0.0.0.0" },
  { "192.0.2.1/32", 1, AF_INET, 32, "192.0.2.1" },
  { "10.1.2.3/8", 1, AF_INET, 8, "10.1.2.3" },       /* host bits: kept, ignored by matching */
  { "10.0.0.0/08", 1, AF_INET, 8, "10.0.0.0" },
  { "10.0.0.0/33", 0, 0, 0, NULL },
  { "10.0.0.0/100", 0, 0, 0, NULL },
  { "10.0.0.0/0008", 0, 0, 0, NULL },
  { "10.0.0.0/-1", 0, 0, 0, NULL },
  { "10.0.0.0/+8", 0, 0, 0, NULL },
  { "10.0.0.0/ 8", 0, 0, 0, NULL },
  { "10.0.0.0/8 ", 0, 0, 0, NULL },
  { " 10.0.0.0/8", 0, 0, 0, NULL },
  { "10.0.0.0/", 0, 0, 0, NULL },
  { "10.0.0.0/8x", 0, 0, 0, NULL },
  { "10.0.0.0/8/8", 0, 0, 0, NULL },
  { "10.0.0.0x", 0, 0, 0, NULL },
  { "10.0.0", 0, 0, 0, NULL },
  { "10.0.0.256", 0, 0, 0, NULL },
  { "/8", 0, 0, 0, NULL },
  { "", 0, 0, 0, NULL },
  { "all", 0, 0, 0, NULL },                           /* never documented; dropped */
  /* IPv6 */
  { "fd00::/8", 1, AF_INET6, 8, "fd00::" },
  { "::1", 1, AF_INET6, 128, "::1" },
  { "::/0", 1, AF_INET6, 0, "::" },
  { "2001:db8::/128", 1, AF_INET6, 128, "2001:db8::" },
  { "2001:db8::/33", 1, AF_INET6, 33, "2001:db8::" },
  { "::ffff:10.0.0.0/104", 1, AF_INET6, 104, "::ffff:10.0.0.0" },
  { "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255/128", 1, AF_INET6, 128,
    "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255" },
  { "2001:db8::/129", 0, 0, 0, NULL },
  { "2001:db8::/1280", 0, 0, 0, NULL },
  { "2001:db8::/64trailing", 0, 0, 0, NULL },
  { "2001:db8:::/64", 0, 0, 0, NULL },
  { "fe80::1%eth0", 0, 0, 0, NULL },
  { "[::1]", 0, 0, 0, NULL },
  { "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255:1/64", 0, 0, 0, NULL },   /* too long */
};

Test(prefix, parse_table)
{
  for (size_t i = 0; i < sizeof(parse_cases) / sizeof(parse_cases[0]); i++) {
    const struct parse_case *t = &parse_cases[i];
    struct prefix p;
    memset(&p, 0xaa, sizeof(p));
    int r = prefix_parse(t->in, &p);
    if (!t->ok) {
      cr_expect_eq(r, -1, "'%s' must be refused", t->in);
      continue;
    }
    cr_expect_eq(r, 0, "'%s' must parse", t->in);
    if (r)
      continue;
    uint8_t want[16] = { 0 };
    cr_assert_eq(inet_pton(t->family, t->addr, want), 1);
    cr_expect_eq(p.family, t->family, "'%s': family", t->in);
    cr_expect_eq(p.len, t->len, "'%s': length %d", t->in, p.len);
    cr_expect_eq(memcmp(p.addr, want, 16), 0, "'%s': address", t->in);
  }
}

Test(prefix, refused_leaves_output_alone)
{
  struct prefix p = { .family = AF_INET, .len = 7, .addr = { 1, 2, 3, 4 } };
  cr_assert_eq(prefix_parse("10.0.0.0/33", &p), -1);
  cr_expect_eq(p.family, AF_INET);
  cr_expect_eq(p.len, 7);
  cr_expect_eq(p.addr[0], 1);
}

/* ---- lists ----------------------------------------------------------------------------------- */

struct list_case {
  const char *in;
  int max;
  int want;              /* count, or PREFIX_LIST_BAD / _TOO_MANY */
  const char *bad;       /* the entry named for an error */
};

static const struct list_case list_cases[] = {
  { "", 4, 0, NULL },
  { " ,\t, ", 4, 0, NULL },
  { "10.0.0.0/8", 4, 1, NULL },
  { "10.0.0.0/8,fd00::/8", 4, 2, NULL },
  { "10.0.0.0/8, fd00::/8\t192.0.2.1", 4, 3, NULL },
  { ",,10.0.0.0/8,,", 4, 1, NULL },
  { "10.0.0.0/8,fd00::/8", 2, 2, NULL },
  { "10.0.0.0/8,fd00::/8,192.0.2.1", 2, PREFIX_LIST_TOO_MANY, "192.0.2.1" },
  { "10.0.0.0/8,bogus,fd00::/8", 4, PREFIX_LIST_BAD, "bogus" },
  { "10.0.0.0/8,10.0.0.0/40", 4, PREFIX_LIST_BAD, "10.0.0.0/40" },
  { "10.0.0.0/8;fd00::/8", 4, PREFIX_LIST_BAD, "10.0.0.0/8;fd00::/8" },
  { "all", 4, PREFIX_LIST_BAD, "all" },
  { "10.0.0.0 /8", 4, PREFIX_LIST_BAD, "/8" },
  { "10.0.0.0/8", 0, PREFIX_LIST_TOO_MANY, "10.0.0.0/8" },
};

Test(prefix, list_table)
{
  for (size_t i = 0; i < sizeof(list_cases) / sizeof(list_cases[0]); i++) {
    const struct list_case *t = &list_cases[i];
    struct prefix v[4];
    char bad[64] = "untouched";
    int n = prefix_parse_list(t->in, v, t->max, bad, sizeof(bad));
    cr_expect_eq(n, t->want, "'%s' (max %d): got %d, want %d", t->in, t->max, n, t->want);
    if (t->bad)
      cr_expect_str_eq(bad, t->bad, "'%s': names '%s'", t->in, bad);
  }
}

Test(prefix, list_entries_in_order)
{
  struct prefix v[3];
  cr_assert_eq(prefix_parse_list("10.0.0.0/8 fd00::/8,192.0.2.1", v, 3, NULL, 0), 3);
  cr_expect_eq(v[0].family, AF_INET);
  cr_expect_eq(v[0].len, 8);
  cr_expect_eq(v[0].addr[0], 10);
  cr_expect_eq(v[1].family, AF_INET6);
  cr_expect_eq(v[1].len, 8);
  cr_expect_eq(v[1].addr[0], 0xfd);
  cr_expect_eq(v[2].family, AF_INET);
  cr_expect_eq(v[2].len, 32);
  cr_expect_eq(v[2].addr[3], 1);
}

Test(prefix, list_bad_entry_cut_to_buffer)
{
  struct prefix v[2];
  char bad[5];
  cr_assert_eq(prefix_parse_list("nonsense", v, 2, bad, sizeof(bad)), PREFIX_LIST_BAD);
  cr_expect_str_eq(bad, "nons");
}

/* ---- matching ---------------------------------------------------------------------------------- */

struct match_case {
  const char *prefix;
  const char *addr;
  int match;
};

static const struct match_case match_cases[] = {
  { "10.0.0.0/8", "10.255.1.2", 1 },
  { "10.0.0.0/8", "11.0.0.1", 0 },
  { "10.1.2.3/8", "10.9.9.9", 1 },              /* host bits of the prefix do not count */
  { "192.0.2.1", "192.0.2.1", 1 },
  { "192.0.2.1", "192.0.2.2", 0 },
  { "0.0.0.0/0", "203.0.113.9", 1 },
  { "0.0.0.0/0", "2001:db8::1", 0 },           /* the other family never */
  { "::/0", "2001:db8::1", 1 },
  { "::/0", "10.0.0.1", 0 },
  /* lengths that end inside a byte */
  { "172.16.0.0/12", "172.31.255.255", 1 },
  { "172.16.0.0/12", "172.32.0.0", 0 },
  { "172.16.0.0/12", "172.15.255.255", 0 },
  { "192.0.2.128/25", "192.0.2.200", 1 },
  { "192.0.2.128/25", "192.0.2.127", 0 },
  { "10.0.0.0/1", "127.0.0.1", 1 },
  { "10.0.0.0/1", "128.0.0.1", 0 },
  { "192.0.2.0/31", "192.0.2.1", 1 },
  { "192.0.2.0/31", "192.0.2.2", 0 },
  { "2001:db8::/33", "2001:db8:7fff::1", 1 },
  { "2001:db8::/33", "2001:db8:8000::1", 0 },
  { "fe80::/10", "febf::1", 1 },
  { "fe80::/10", "fec0::1", 0 },
  { "2001:db8::1/127", "2001:db8::0", 1 },
  { "2001:db8::1/127", "2001:db8::2", 0 },
  { "fd00::/8", "fd12:3456::1", 1 },
  { "fd00::/8", "fc00::1", 0 },
  /* IPv4-mapped IPv6 addresses are their IPv4 address */
  { "10.0.0.0/8", "::ffff:10.1.2.3", 1 },
  { "10.0.0.0/8", "::ffff:11.1.2.3", 0 },
  { "172.16.0.0/12", "::ffff:172.20.0.1", 1 },
  { "::ffff:0:0/96", "::ffff:10.1.2.3", 0 },
  { "::/0", "::ffff:10.1.2.3", 0 },
  { "0.0.0.0/0", "::ffff:10.1.2.3", 1 },
  { "::/0", "::10.1.2.3", 1 },                 /* v4-compatible is plain IPv6 */
  { "10.0.0.0/8", "::10.1.2.3", 0 },
};

static int addr_of(const char *s, uint8_t out[16])
{
  memset(out, 0, 16);
  if (inet_pton(AF_INET, s, out) == 1)
    return AF_INET;
  cr_assert_eq(inet_pton(AF_INET6, s, out), 1, "bad test address %s", s);
  return AF_INET6;
}

Test(prefix, match_table)
{
  for (size_t i = 0; i < sizeof(match_cases) / sizeof(match_cases[0]); i++) {
    const struct match_case *t = &match_cases[i];
    struct prefix p;
    uint8_t a[16];
    cr_assert_eq(prefix_parse(t->prefix, &p), 0, "%s", t->prefix);
    int fam = addr_of(t->addr, a);
    cr_expect_eq(prefix_match(&p, fam, a), t->match, "%s in %s: want %d", t->addr, t->prefix, t->match);
  }
}

/* Every length of both families: the addresses just inside and just outside. */
Test(prefix, match_every_length)
{
  for (int fam = 0; fam < 2; fam++) {
    int bits = fam ? 128 : 32;
    for (int len = 0; len <= bits; len++) {
      struct prefix p = { .family = fam ? AF_INET6 : AF_INET, .len = len };
      memset(p.addr, 0x5a, (size_t)bits / 8);
      uint8_t a[16];      /* 0x5a...: never an IPv4-mapped address */
      memcpy(a, p.addr, 16);
      cr_expect(prefix_match(&p, p.family, a), "len %d/%d: the same address", len, bits);
      if (len > 0) {
        uint8_t b[16];
        memcpy(b, p.addr, 16);
        b[(len - 1) / 8] ^= (uint8_t)(0x80 >> ((len - 1) % 8));   /* the last bit that counts */
        cr_expect(!prefix_match(&p, p.family, b), "len %d/%d: last counted bit differs", len, bits);
      }
      if (len < bits) {
        uint8_t c[16];
        memcpy(c, p.addr, 16);
        c[len / 8] ^= (uint8_t)(0x80 >> (len % 8));               /* the first bit that does not */
        cr_expect(prefix_match(&p, p.family, c), "len %d/%d: first free bit differs", len, bits);
      }
    }
  }
}

Test(prefix, bad_lengths_match_nothing)
{
  uint8_t a[16] = { 10 };
  struct prefix p = { .family = AF_INET, .len = 33, .addr = { 10 } };
  cr_expect(!prefix_match(&p, AF_INET, a));
  p.len = -1;
  cr_expect(!prefix_match(&p, AF_INET, a));
  struct prefix q = { .family = AF_INET6, .len = 129 };
  uint8_t z[16] = { 0x20 };
  cr_expect(!prefix_match(&q, AF_INET6, z));
  struct prefix u = { .family = 0, .len = 0 };
  cr_expect(!prefix_match(&u, AF_INET, a));
}
