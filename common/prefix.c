/*
 * common/prefix.c — parse and match address prefixes (enoshim/prefix.h).
 * Linked into both tund (the `direct=` list and its address settings) and
 * libenoshim.so (ENOSHIM_DIRECT), so that both read a prefix the same way.
 * No allocation, no locks, no I/O.
 */
#include <arpa/inet.h>
#include <string.h>
#include <sys/socket.h>

#include "enoshim/prefix.h"

/* The n characters at s are exactly one prefix. */
static int parse_n(const char *s, size_t n, struct prefix *p)
{
  char buf[INET6_ADDRSTRLEN];
  const char *slash = memchr(s, '/', n);
  size_t alen = slash ? (size_t)(slash - s) : n;
  int len = -1, max;
  struct prefix t;

  if (alen == 0 || alen >= sizeof(buf))
    return -1;
  if (slash) {
    const char *d = slash + 1, *end = s + n;
    if (d == end || end - d > 3)      /* no digits, or more than "128" can take */
      return -1;
    for (len = 0; d < end; d++) {
      if (*d < '0' || *d > '9')
        return -1;
      len = len * 10 + (*d - '0');
    }
  }
  memcpy(buf, s, alen);
  buf[alen] = 0;
  memset(&t, 0, sizeof(t));
  if (inet_pton(AF_INET, buf, t.addr) == 1) {
    t.family = AF_INET;
    max = 32;
  } else if (inet_pton(AF_INET6, buf, t.addr) == 1) {
    t.family = AF_INET6;
    max = 128;
  } else {
    return -1;
  }
  if (len < 0)
    len = max;
  else if (len > max)
    return -1;
  t.len = len;
  *p = t;
  return 0;
}

int prefix_parse(const char *s, struct prefix *p)
{
  return parse_n(s, strlen(s), p);
}

static int is_sep(char c) { return c == ',' || c == ' ' || c == '\t'; }

static void name_bad(char *bad, size_t badlen, const char *s, size_t n)
{
  if (!bad || !badlen)
    return;
  if (n > badlen - 1)
    n = badlen - 1;
  memcpy(bad, s, n);
  bad[n] = 0;
}

int prefix_parse_list(const char *s, struct prefix *out, int max, char *bad, size_t badlen)
{
  int k = 0;
  for (;;) {
    while (is_sep(*s))
      s++;
    if (!*s)
      return k;
    size_t n = 0;
    while (s[n] && !is_sep(s[n]))
      n++;
    if (k >= max) {
      name_bad(bad, badlen, s, n);
      return PREFIX_LIST_TOO_MANY;
    }
    if (parse_n(s, n, &out[k])) {
      name_bad(bad, badlen, s, n);
      return PREFIX_LIST_BAD;
    }
    k++;
    s += n;
  }
}

int prefix_match(const struct prefix *p, int family, const uint8_t *addr)
{
  static const uint8_t v4mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
  if (family == AF_INET6 && !memcmp(addr, v4mapped, sizeof(v4mapped))) {
    family = AF_INET;
    addr += sizeof(v4mapped);
  }
  int max = p->family == AF_INET ? 32 : p->family == AF_INET6 ? 128 : -1;
  if (p->family != family || p->len < 0 || p->len > max)
    return 0;
  size_t full = (size_t)p->len / 8;
  int rest = p->len % 8;
  if (memcmp(addr, p->addr, full))
    return 0;
  if (rest) {
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    if ((addr[full] ^ p->addr[full]) & mask)
      return 0;
  }
  return 1;
}
