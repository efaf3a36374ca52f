/*
 * tund/natproto.c — the fixed-size messages between tund and its privileged
 * helper (tund/nat.h).  Read through a cursor, every field checked; anything
 * else is malformed.  The helper drops tund's connection on a malformed
 * request (a bug or a compromised tund: either way no more requests).
 */
#include <arpa/inet.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>

#include "nat.h"

struct rd {
  const uint8_t *p, *end;
};

static int rd_bytes(struct rd *r, void *out, size_t n)
{
  if ((size_t)(r->end - r->p) < n)
    return -1;
  memcpy(out, r->p, n);
  r->p += n;
  return 0;
}

static int rd_u8(struct rd *r, uint8_t *v) { return rd_bytes(r, v, 1); }
static int rd_u16(struct rd *r, uint16_t *v) { return rd_bytes(r, v, 2); }
static int rd_u32(struct rd *r, uint32_t *v) { return rd_bytes(r, v, 4); }

static int all_zero(const uint8_t *p, size_t n)
{
  uint8_t acc = 0;
  for (size_t i = 0; i < n; i++)
    acc |= p[i];
  return acc == 0;
}

int natp_req_parse(const uint8_t *buf, size_t len, struct natp_req *out)
{
  struct rd r = { buf, buf + len };
  uint32_t magic;
  uint8_t proto, zero;
  if (!buf || len != NATP_REQ_LEN)
    return -1;
  memset(out, 0, sizeof(*out));
  if (rd_u32(&r, &magic) || magic != NATP_MAGIC || rd_u32(&r, &out->seq) || rd_u8(&r, &out->op) ||
      rd_u8(&r, &proto) || rd_u8(&r, &out->family) || rd_u8(&r, &zero) || rd_u16(&r, &out->port) ||
      rd_u16(&r, &out->rport) || rd_bytes(&r, out->raddr, sizeof(out->raddr)) || r.p != r.end)
    return -1;
  if (proto != IPPROTO_TCP || zero != 0 || out->port == 0)
    return -1;
  switch (out->op) {
  case NATP_PUBLISH:
  case NATP_UNPUBLISH:
    if (out->family || out->rport || !all_zero(out->raddr, sizeof(out->raddr)))
      return -1;
    return 0;
  case NATP_ORIGDST:
    if (out->rport == 0)
      return -1;
    if (out->family == 4)
      return all_zero(out->raddr + 4, 12) ? 0 : -1;
    return out->family == 6 ? 0 : -1;
  default:
    return -1;
  }
}

void natp_req_encode(const struct natp_req *rq, uint8_t out[NATP_REQ_LEN])
{
  uint32_t magic = NATP_MAGIC;
  uint8_t proto = IPPROTO_TCP, zero = 0;
  uint8_t *p = out;
  memcpy(p, &magic, 4), p += 4;
  memcpy(p, &rq->seq, 4), p += 4;
  *p++ = rq->op;
  *p++ = proto;
  *p++ = rq->family;
  *p++ = zero;
  memcpy(p, &rq->port, 2), p += 2;
  memcpy(p, &rq->rport, 2), p += 2;
  memcpy(p, rq->raddr, 16);
}

int natp_rep_parse(const uint8_t *buf, size_t len, struct natp_rep *out)
{
  struct rd r = { buf, buf + len };
  uint32_t magic, tail;
  uint8_t zero;
  if (!buf || len != NATP_REP_LEN)
    return -1;
  memset(out, 0, sizeof(*out));
  if (rd_u32(&r, &magic) || magic != NATP_MAGIC || rd_u32(&r, &out->seq) ||
      rd_bytes(&r, &out->err, 4) || rd_u8(&r, &out->family) || rd_u8(&r, &zero) ||
      rd_u16(&r, &out->port) || rd_bytes(&r, out->addr, 16) || rd_u32(&r, &tail) || r.p != r.end)
    return -1;
  if (zero || tail || out->err < 0 || (out->family != 0 && out->family != 4 && out->family != 6))
    return -1;
  return 0;
}

void natp_rep_encode(const struct natp_rep *rp, uint8_t out[NATP_REP_LEN])
{
  uint32_t magic = NATP_MAGIC, tail = 0;
  uint8_t *p = out;
  memcpy(p, &magic, 4), p += 4;
  memcpy(p, &rp->seq, 4), p += 4;
  memcpy(p, &rp->err, 4), p += 4;
  *p++ = rp->family;
  *p++ = 0;
  memcpy(p, &rp->port, 2), p += 2;
  memcpy(p, rp->addr, 16), p += 16;
  memcpy(p, &tail, 4);
}

static int valid_ifname(const char *s)
{
  size_t n = strlen(s);
  if (n == 0 || n >= IFNAMSIZ)
    return 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    /* what ip-link accepts, less what could break out of an nft string */
    if (c <= ' ' || c >= 0x7f || c == '/' || c == '"' || c == '\\' || c == ':')
      return 0;
  }
  return 1;
}

int natp_args_parse(int argc, char **argv, struct nat_params *out)
{
  int have_tun = 0, have4 = 0, have6 = 0;
  memset(out, 0, sizeof(*out));
  if (argc != 7)
    return -1;
  for (int i = 1; i + 1 < argc; i += 2) {
    const char *k = argv[i], *v = argv[i + 1];
    if (!strcmp(k, "--tun") && !have_tun++) {
      if (!valid_ifname(v))
        return -1;
      memcpy(out->tun_name, v, strlen(v) + 1);
    } else if (!strcmp(k, "--lwip4") && !have4++) {
      if (inet_pton(AF_INET, v, &out->lwip4) != 1)
        return -1;
    } else if (!strcmp(k, "--lwip6") && !have6++) {
      if (!strcmp(v, "none"))
        out->have_v6 = 0;
      else if (inet_pton(AF_INET6, v, &out->lwip6) == 1)
        out->have_v6 = 1;
      else
        return -1;
    } else {
      return -1;
    }
  }
  return have_tun && have4 && have6 ? 0 : -1;
}
