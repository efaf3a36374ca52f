/*
 * enoshim/prefix.h — address prefixes ("10.0.0.0/8", "fd00::/8", "192.0.2.1"):
 * the one parser and matcher behind tund's `direct=` (and its host_ipv4 /
 * lwip_ipv6 ... settings) and the shim's ENOSHIM_DIRECT (common/prefix.c,
 * linked into both).
 *
 * Strict: an entry is an IPv4 or IPv6 address as inet_pton() reads it,
 * optionally followed by '/' and a decimal length of 0..32 (IPv4) or 0..128
 * (IPv6); nothing else, not even white space, belongs to it.  A missing
 * length means the whole address (/32, /128).  Host bits beyond the length
 * are allowed (and ignored by matching).
 */
#ifndef ENOSHIM_PREFIX_H
#define ENOSHIM_PREFIX_H

#include <stddef.h>
#include <stdint.h>

struct prefix {
  int family;            /* AF_INET or AF_INET6 */
  int len;               /* leading bits that count */
  uint8_t addr[16];      /* network byte order; IPv4 in the first 4 bytes */
};

/* One entry.  0, or -1 (and *p untouched) if s is not exactly a prefix. */
int prefix_parse(const char *s, struct prefix *p);

/* A list of entries separated by commas, spaces or tabs (a run of them is
 * one separator; an empty list is fine).  Returns how many were stored in
 * out[0..max-1], or
 *   PREFIX_LIST_BAD:      an entry is not a prefix,
 *   PREFIX_LIST_TOO_MANY: there are more than max entries;
 * then, if bad is not NULL, bad[] gets that entry (the first extra one for
 * TOO_MANY), cut to badlen - 1 characters. */
#define PREFIX_LIST_BAD      (-1)
#define PREFIX_LIST_TOO_MANY (-2)
int prefix_parse_list(const char *s, struct prefix *out, int max, char *bad, size_t badlen);

/* Does addr (4 bytes for AF_INET, 16 for AF_INET6) lie in p?  An IPv4-mapped
 * IPv6 address (::ffff:a.b.c.d) is the IPv4 address a.b.c.d here: it lies in
 * IPv4 prefixes only.  A prefix whose length does not fit its family matches
 * nothing. */
int prefix_match(const struct prefix *p, int family, const uint8_t *addr);

#endif
