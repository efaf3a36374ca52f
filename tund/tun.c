/*
 * tund/tun.c — the TUN device and lwIP's netif on top of it.
 *
 * The kernel side of the TUN gets host_ipv4/host_ipv6 (the routes to lwIP's
 * addresses come from their prefixes); lwIP's netif gets lwip_ipv4/lwip_ipv6
 * with the kernel side as gateway.  Packets are plain IP (IFF_NO_PI).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <linux/virtio_net.h>
#include <linux/ipv6.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "lwip/init.h"
#include "lwip/ip.h"
#include "lwip/ip4_addr.h"
#include "lwip/ip6_addr.h"
#include "lwip/netif.h"
#include "lwip/pbuf.h"
#include "lwip/sys.h"
#include "lwip/inet_chksum.h"
#include "lwip_glue.h"
#include "tund.h"

static int tun_fd = -1;
static struct netif tun_nif;
static struct ev tun_ev;
static uint64_t tun_tx_drops;

/*
 * Offloads, through the TUN's virtio-net header (IFF_VNET_HDR: a struct
 * virtio_net_hdr before every packet, both ways).  Probed at start
 * (tun_open), each one used only if the kernel accepts it, logged once:
 *
 *  - checksums (TUN_F_CSUM): TCP segments leave with a partial checksum
 *    that the kernel completes only if the packet really leaves the machine,
 *    and segments from this machine arrive marked valid: neither tund nor the
 *    kernel sums every byte twice on local paths.  Segments that arrive
 *    without such a mark are checked by lwIP as usual.
 *  - kernel -> tund, large segments (TUN_F_TSO4, TUN_F_TSO6): the kernel
 *    hands us TCP segments of up to 64 KiB as one packet (its own TSO
 *    segments, coalesced GRO packets, and the super-packets another tund sent
 *    us) instead of cutting them to the MTU first.  tun_readable reads into a
 *    64 KiB buffer and gives lwIP each one whole: lwIP's TCP accepts a
 *    segment of any length that fits its window (the MSS bounds what it
 *    sends, not what it takes).
 *  - tund -> kernel, segmentation (gso_type/gso_size on our writes): the
 *    data segments one tcp_output() call sends for a connection — each at
 *    most the wire MSS, consecutive in sequence — are held and written as
 *    ONE packet with gso_size = the first one's payload; the kernel cuts it
 *    back into exactly those segments (its TSO/GSO engine, in software or
 *    in a NIC) where it must, and forwards it whole where it may (veth, a
 *    TUN with TSO).  See "GSO batches" below for why lwIP's TCP is unchanged
 *    by this.
 *
 * offload=no leaves the header off altogether: the kernel then completes
 * checksums and cuts segments to the MTU before they reach us, and takes
 * ours one by one. */
static int tun_vnet;          /* every packet carries a struct virtio_net_hdr */
static int tun_csum_offload;  /* the kernel accepts partial checksums from us */
static unsigned tun_rx_tso;   /* TUN_F_TSO4/TUN_F_TSO6 the kernel may send us */
static int tun_tx_gso;        /* we write segmentation-offload packets */
static size_t tun_rx_size;    /* what one read takes: the MTU, or 64 KiB with rx TSO */
static uint64_t tun_rx_gso_pkts, tun_tx_gso_pkts, tun_tx_gso_segs, tun_tx_pkts, tun_rx_pkts, tun_rx_dropped_gso;

static int tun_setiff(int fd, const char *name, short flags)
{
  struct ifreq ifr;
  memset(&ifr, 0, sizeof(ifr));
  ifr.ifr_flags = flags;
  snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
  return ioctl(fd, TUNSETIFF, &ifr);
}

/* The offloads this kernel accepts, best first; the checksum one is the base
 * of the others (segmentation needs partial checksums). */
static void tun_probe_offloads(int fd)
{
  static const unsigned tries[] = { TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6, TUN_F_CSUM | TUN_F_TSO4, TUN_F_CSUM };
  int hdrsz = (int)sizeof(struct virtio_net_hdr);
  unsigned got = 0;
  int have = 0;
  if (ioctl(fd, TUNSETVNETHDRSZ, &hdrsz) == 0) {
    for (size_t i = 0; i < sizeof(tries) / sizeof(tries[0]); i++)
      if (ioctl(fd, TUNSETOFFLOAD, (unsigned long)tries[i]) == 0) {
        got = tries[i];
        have = 1;
        break;
      }
  }
  if (!have) {
    log_warn("TUN checksum offload unavailable: checksums computed in software, one packet per MTU each way");
    return;
  }
  tun_csum_offload = 1;
  tun_rx_tso = got & (TUN_F_TSO4 | TUN_F_TSO6);
  /* The kernel takes segmentation-offload packets from any TUN with a
   * virtio-net header (virtio_net_hdr_to_skb); should one be refused all the
   * same, gso_flush falls back to single packets and says so. */
  tun_tx_gso = 1;
  log_info("TUN offloads: checksums; large segments from the kernel: TCPv4 %s, TCPv6 %s; "
           "segmentation of ours: TCPv4 and TCPv6",
           (got & TUN_F_TSO4) ? "yes" : "no", (got & TUN_F_TSO6) ? "yes" : "no");
}

int tun_open(const struct tund_config *c)
{
  int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    log_err("cannot open /dev/net/tun: %s%s", strerror(errno),
            errno == EACCES ? " (it must be accessible to this user: crw-rw-rw- as on Debian)" : "");
    return -1;
  }
  int r = tun_setiff(fd, c->tun_name, IFF_TUN | IFF_NO_PI | (c->offload ? IFF_VNET_HDR : 0));
  if (r < 0 && c->offload && errno == EINVAL)
    r = tun_setiff(fd, c->tun_name, IFF_TUN | IFF_NO_PI);   /* persistent device without vnet */
  else if (r == 0 && c->offload)
    tun_vnet = 1;
  if (r < 0) {
    int e = errno;
    if (e == EPERM || e == EACCES)
      log_err("creating TUN device %s needs CAP_NET_ADMIN: run tund inside an unprivileged "
              "namespace (enorun --sandbox, or unshare -Urn), give it the capability "
              "(setcap cap_net_admin+ep build/tund), or attach to a persistent TUN owned by "
              "you (ip tuntap add %s mode tun user $USER, then tund --tun_attach=yes)",
              c->tun_name, c->tun_name);
    else
      log_err("TUNSETIFF %s: %s", c->tun_name, strerror(e));
    close(fd);
    return -1;
  }
  if (tun_vnet)
    tun_probe_offloads(fd);
  else
    log_info("TUN offloads: off (offload=no or a persistent TUN without a virtio-net header): "
             "checksums in software, one packet per MTU each way");
  tun_rx_size = tun_rx_tso ? 65535 : (size_t)c->mtu;
  tun_fd = fd;
  return fd;
}

static int ifreq_sock_ioctl(int family, unsigned long req, void *arg, const char *what, const char *ifname)
{
  int s = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) {
    log_err("socket for %s: %s", what, strerror(errno));
    return -1;
  }
  int r = ioctl(s, req, arg);
  int e = errno;
  close(s);
  if (r < 0) {
    log_err("%s on %s: %s", what, ifname, strerror(e));
    return -1;
  }
  return 0;
}

static void write_sysctl(const char *path, const char *val)
{
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0)
    return;
  ssize_t w = write(fd, val, strlen(val));
  (void)w;
  close(fd);
}

/* Kernel side: addresses, MTU, up.  Skipped for a persistent TUN the admin
 * configured (tun_attach). */
static int tun_configure(const struct tund_config *c)
{
  struct ifreq ifr;
  struct sockaddr_in *sin = (struct sockaddr_in *)&ifr.ifr_addr;
  char path[128];

  if (c->have_v6) {
    /* No duplicate address detection on a point-to-point TUN: the address
     * is usable at once. */
    snprintf(path, sizeof(path), "/proc/sys/net/ipv6/conf/%s/accept_dad", c->tun_name);
    write_sysctl(path, "0");
    snprintf(path, sizeof(path), "/proc/sys/net/ipv6/conf/%s/disable_ipv6", c->tun_name);
    write_sysctl(path, "0");
  }

  memset(&ifr, 0, sizeof(ifr));
  snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", c->tun_name);
  ifr.ifr_mtu = c->mtu;
  if (ifreq_sock_ioctl(AF_INET, SIOCSIFMTU, &ifr, "set MTU", c->tun_name))
    return -1;

  /* The kernel queues packets for tund here while tund is busy; a TUN gets
   * 500 by default, and a burst from thousands of connections at once would
   * be dropped and wait for lwIP's retransmission timers. */
  if (c->txqueuelen > 0) {
    memset(&ifr, 0, sizeof(ifr));
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", c->tun_name);
    ifr.ifr_qlen = c->txqueuelen;
    /* not allowed inside an unprivileged user namespace (the sandbox): the
     * default queue works, bursts just drop sooner */
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0 || ioctl(s, SIOCSIFTXQLEN, &ifr) < 0)
      log_info("%s: transmit queue length left at the default (%s)", c->tun_name, strerror(errno));
    if (s >= 0)
      close(s);
  }

  memset(&ifr, 0, sizeof(ifr));
  snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", c->tun_name);
  sin->sin_family = AF_INET;
  sin->sin_addr = c->host4;
  if (ifreq_sock_ioctl(AF_INET, SIOCSIFADDR, &ifr, "set IPv4 address", c->tun_name))
    return -1;
  memset(&ifr, 0, sizeof(ifr));
  snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", c->tun_name);
  sin->sin_family = AF_INET;
  sin->sin_addr.s_addr = c->prefix4 ? htonl(~0u << (32 - c->prefix4)) : 0;
  if (ifreq_sock_ioctl(AF_INET, SIOCSIFNETMASK, &ifr, "set IPv4 netmask", c->tun_name))
    return -1;

  memset(&ifr, 0, sizeof(ifr));
  snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", c->tun_name);
  if (ifreq_sock_ioctl(AF_INET, SIOCGIFFLAGS, &ifr, "get flags", c->tun_name))
    return -1;
  ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
  if (ifreq_sock_ioctl(AF_INET, SIOCSIFFLAGS, &ifr, "bring up", c->tun_name))
    return -1;

  if (c->have_v6) {
    struct in6_ifreq r6;
    memset(&ifr, 0, sizeof(ifr));
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", c->tun_name);
    if (ifreq_sock_ioctl(AF_INET, SIOCGIFINDEX, &ifr, "get ifindex", c->tun_name))
      return -1;
    memset(&r6, 0, sizeof(r6));
    r6.ifr6_addr = c->host6;
    r6.ifr6_prefixlen = (uint32_t)c->prefix6;
    r6.ifr6_ifindex = ifr.ifr_ifindex;
    if (ifreq_sock_ioctl(AF_INET6, SIOCSIFADDR, &r6, "set IPv6 address", c->tun_name))
      return -1;
  }
  return 0;
}

/* The sum TCP's checksum field holds for CHECKSUM_PARTIAL: the pseudo
 * header (addresses, protocol, TCP length) folded, not complemented. */
static u16_t pseudo_sum(const u8_t *src, const u8_t *dst, size_t alen, u32_t tcplen)
{
  u32_t sum = 6u /* IPPROTO_TCP */ + (tcplen >> 16) + (tcplen & 0xffffu);
  for (size_t i = 0; i < alen; i += 2)
    sum += (u32_t)(src[i] << 8 | src[i + 1]) + (u32_t)(dst[i] << 8 | dst[i + 1]);
  while (sum >> 16)
    sum = (sum & 0xffffu) + (sum >> 16);
  return (u16_t)sum;
}

/* Fill the virtio-net header of an outgoing packet; for TCP with offload,
 * leave the checksum to the kernel (it is never computed on a local path). */
static void vnet_out(struct pbuf *p, struct virtio_net_hdr *vh)
{
  memset(vh, 0, sizeof(*vh));
  if (!tun_csum_offload || p->len < 40)
    return;
  u8_t *ip = p->payload;
  size_t ihl, tcpoff;
  u32_t tcplen;
  if ((ip[0] >> 4) == 4 && ip[9] == 6) {
    ihl = (size_t)(ip[0] & 0x0f) * 4;
    tcplen = (u32_t)(ip[2] << 8 | ip[3]) - (u32_t)ihl;
    tcpoff = ihl;
    if (p->len < tcpoff + 20)
      return;
    u16_t ps = pseudo_sum(ip + 12, ip + 16, 4, tcplen);
    ip[tcpoff + 16] = (u8_t)(ps >> 8);
    ip[tcpoff + 17] = (u8_t)ps;
  } else if ((ip[0] >> 4) == 6 && ip[6] == 6) {
    tcpoff = 40;
    tcplen = (u32_t)(ip[4] << 8 | ip[5]);
    if (p->len < tcpoff + 20)
      return;
    u16_t ps = pseudo_sum(ip + 8, ip + 24, 16, tcplen);
    ip[tcpoff + 16] = (u8_t)(ps >> 8);
    ip[tcpoff + 17] = (u8_t)ps;
  } else {
    return;          /* ICMP and the rest: lwIP computed their checksums */
  }
  vh->flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
  vh->csum_start = (u16_t)tcpoff;
  vh->csum_offset = 16;
}

/* lwIP -> kernel: one writev per IP packet, no copy. */
static void tun_write_pkt(struct pbuf *p)
{
  struct iovec iov[33];
  struct virtio_net_hdr vh;
  int n = 0;
  if (tun_vnet) {
    vnet_out(p, &vh);
    iov[n].iov_base = &vh;
    iov[n].iov_len = sizeof(vh);
    n++;
  }
  int first = n;
  for (struct pbuf *q = p; q; q = q->next) {
    if (q->len == 0)
      continue;
    if (n == 33) {
      /* very fragmented chain: flatten it */
      static uint8_t flat[65536];
      pbuf_copy_partial(p, flat, p->tot_len, 0);
      iov[first].iov_base = flat;
      iov[first].iov_len = p->tot_len;
      n = first + 1;
      break;
    }
    iov[n].iov_base = q->payload;
    iov[n].iov_len = q->len;
    n++;
  }
  ssize_t w;
  loop_note_traffic();
  tun_tx_pkts++;
  do {
    w = writev(tun_fd, iov, n);
  } while (w < 0 && errno == EINTR);
  if (w < 0) {
    /* The packet is lost like on a congested link; TCP retransmits. */
    tun_tx_drops++;
    tund_log_limited(LOG_WARN_, "TUN write: %s (%llu packets dropped so far)", strerror(errno),
                     (unsigned long long)tun_tx_drops);
  }
}

/*
 * GSO batches (tund -> kernel segmentation offload).
 *
 * Design.  lwIP's TCP is left as it is: pcb->mss stays the wire MSS (what
 * the peer announced, bounded by the TUN's MTU), and every segment lwIP
 * queues, sends, counts against the windows, times, retransmits (RTO, fast
 * retransmit, SACK-less recovery) or probes (persist, keep-alive) is a
 * wire-sized segment exactly as before.  Only the last step changes: while
 * one tcp_output() call runs (lwIP patch 0007 brackets it with
 * LWIP_HOOK_TCP_OUTPUT_BATCH), the data segments it sends are held here
 * instead of written one by one, and when the call returns they leave as one
 * write: the first segment's IP and TCP header (copied, lengths and
 * checksums fixed up) followed by every segment's payload, with
 * gso_type = TCPV4/TCPV6 and gso_size = the first segment's payload.  The
 * kernel's segmentation produces the very segments lwIP built: the same
 * sequence numbers, sizes, ACK number and window; PSH and FIN on the last.
 * One call of tcp_output() sends at most what the congestion and peer
 * windows allow, so nothing leaves earlier or in larger bursts than before.
 *
 * A segment joins the batch only if it is the plain continuation of the
 * ones held: same connection, the next sequence number, ACK set and no SYN,
 * RST or URG, no TCP option but NOP padding (the ENO length hook keeps the
 * option length of a connection's segments while any is queued and fills
 * what ENO no longer needs with NOPs, so a busy tcpcrypt connection's data
 * segments keep 4 NOPs; a segment carrying ENO option bytes is always
 * written alone, never copied onto others' headers), the same header
 * length, ACK number and
 * window, a payload no larger than the first's; a shorter one or a FIN ends
 * the batch.  Anything else (pure ACKs, SYNs, RSTs, probes, segments with
 * options, ICMP) first flushes what is held, so the order on the wire is the
 * order lwIP sent in.  Holding needs no reference on the pbufs: inside
 * tcp_output() lwIP neither frees nor rewrites a segment it has sent (it
 * moves it to the unacked queue; an ACK that could free it is only processed
 * after the call).  A kernel that refuses a GSO write (EINVAL) gets the same
 * segments one by one and no more batches.
 */
/* Path MTUs learned from ICMPv6 Packet Too Big (tun_pmtu_note), per peer
 * address, kept ten minutes like Linux's (net.ipv6.route.mtu_expires). */
#define PMTU_SLOTS 16
#define PMTU_TTL_MS (10u * 60u * 1000u)
static struct {
  u8_t addr[16];
  u16_t mtu;
  u32_t until;                 /* sys_now() */
} pmtu[PMTU_SLOTS];
static int pmtu_used;          /* slots ever filled: 0 keeps the fast path a test */
static unsigned pmtu_next;

int tun_pmtu_note(const uint8_t dst6[16], unsigned mtu)
{
  if (mtu > 0xffff)
    return 0;
  const u8_t *a = dst6;
  u32_t now = sys_now();
  int i;
  for (i = 0; i < pmtu_used; i++)
    if (!memcmp(pmtu[i].addr, a, 16))
      break;
  if (i < pmtu_used && (s32_t)(pmtu[i].until - now) > 0 && pmtu[i].mtu <= mtu)
    return 0;
  if (i == pmtu_used) {
    if (pmtu_used < PMTU_SLOTS)
      pmtu_used++;
    else
      i = (int)(pmtu_next++ % PMTU_SLOTS);
  }
  memcpy(pmtu[i].addr, a, 16);
  pmtu[i].mtu = (u16_t)mtu;
  pmtu[i].until = now + PMTU_TTL_MS;
  return 1;
}

/* The largest TCP payload an IPv6 packet with this header (hlen bytes of IP
 * and TCP) may carry to its destination, or 0xffff if no MTU is known. */
static u16_t pmtu_cap(const u8_t *ip, u16_t hlen)
{
  if (!pmtu_used || (ip[0] >> 4) != 6)
    return 0xffff;
  u32_t now = sys_now();
  for (int i = 0; i < pmtu_used; i++)
    if (!memcmp(pmtu[i].addr, ip + 24, 16) && (s32_t)(pmtu[i].until - now) > 0)
      return pmtu[i].mtu > hlen ? (u16_t)(pmtu[i].mtu - hlen) : 0xffff;
  return 0xffff;
}

/* Is p a TCP segment larger than its destination's known path MTU? */
static int pmtu_exceeds(const struct pbuf *p)
{
  if (!pmtu_used || p->len < 60)
    return 0;
  const u8_t *ip = p->payload;
  return (ip[0] >> 4) == 6 && p->tot_len > 40 && pmtu_cap(ip, 0) < p->tot_len;
}

#define GSO_MAX_PKTS 64
#define GSO_MAX_IOV  256
static struct {
  int depth;                   /* inside tcp_output() */
  int n;                       /* segments held */
  struct pbuf *pk[GSO_MAX_PKTS];
  u8_t hdr[100];               /* the first one's IP + TCP header, to be fixed up */
  u16_t iphl, hlen;            /* IP header length; IP + TCP */
  u16_t seg_max;               /* the first one's payload: no continuation is larger */
  u16_t gso_size;              /* that, or less to fit the path MTU (pmtu_cap) */
  u32_t next_seq;              /* the sequence number a continuation carries */
  u32_t bytes;                 /* payload held */
  u8_t flags;                  /* PSH and FIN seen */
  u8_t closed;                 /* a short segment or a FIN ended the batch */
  int niov;
  struct iovec iov[GSO_MAX_IOV];
} gb;

#define TH_FIN 0x01
#define TH_SYN 0x02
#define TH_RST 0x04
#define TH_PSH 0x08
#define TH_ACK 0x10
#define TH_URG 0x20

static u32_t be32(const u8_t *b) { return (u32_t)b[0] << 24 | (u32_t)b[1] << 16 | (u32_t)b[2] << 8 | b[3]; }

/* Add p to the batch (starting one if none is held): 1, or 0 if p cannot
 * continue it (nothing changed then).  alone: p is a batch of its own, with
 * whatever TCP options it has (a segment larger than its path's MTU, to be
 * cut by the kernel, which copies the options onto every piece). */
static int gso_add(struct pbuf *p, int alone)
{
  const u8_t *ip = p->payload;
  u16_t iphl;
  u32_t tot;
  if (p->len < 40)
    return 0;
  if (ip[0] == 0x45 && ip[9] == 6) {
    if ((ip[6] & 0x3f) || ip[7])
      return 0;                              /* a fragment */
    iphl = 20;
    tot = (u32_t)(ip[2] << 8 | ip[3]);
  } else if ((ip[0] >> 4) == 6 && ip[6] == 6) {
    iphl = 40;
    tot = 40u + (u32_t)(ip[4] << 8 | ip[5]);
  } else {
    return 0;
  }
  const u8_t *th = ip + iphl;
  u16_t thl = (u16_t)((th[12] >> 4) * 4), hlen = (u16_t)(iphl + thl);
  if (thl < 20 || p->len < hlen || tot != p->tot_len || tot <= hlen)
    return 0;                                /* no payload */
  for (u16_t i = 20; i < thl && !alone; i++)
    if (th[i] != 1)
      return 0;                              /* an option other than NOP (ENO's) */
  u8_t fl = th[13];
  if ((fl & (TH_SYN | TH_RST | TH_URG)) || !(fl & TH_ACK))
    return 0;
  u32_t pay = tot - hlen, seq = be32(th + 4);
  int nio = 0;
  for (struct pbuf *q = p; q; q = q->next)
    nio++;
  if (alone && gb.n)
    return 0;
  if (gb.n == 0) {
    if (nio + 2 > GSO_MAX_IOV)
      return 0;
    memcpy(gb.hdr, ip, hlen);
    gb.iphl = iphl;
    gb.hlen = hlen;
    gb.seg_max = (u16_t)pay;
    u16_t cap = pmtu_cap(ip, hlen);
    gb.gso_size = pay > cap ? cap : (u16_t)pay;
    gb.bytes = 0;
    gb.flags = 0;
    gb.closed = 0;
    gb.niov = 2;
  } else {
    const u8_t *h = gb.hdr, *hth = gb.hdr + gb.iphl;
    if (gb.closed || gb.n == GSO_MAX_PKTS || hlen != gb.hlen || iphl != gb.iphl || pay > gb.seg_max ||
        seq != gb.next_seq ||
        gb.hlen + gb.bytes + pay > 65535 || gb.niov + nio > GSO_MAX_IOV)
      return 0;
    /* same addresses, ports, ACK number and window (and TTL, TOS, ...
     * which one connection's segments share) */
    if (iphl == 20 ? memcmp(h + 12, ip + 12, 8) : memcmp(h + 8, ip + 8, 32))
      return 0;
    if (memcmp(hth, th, 4) || memcmp(hth + 8, th + 8, 4) || memcmp(hth + 14, th + 14, 2))
      return 0;
  }
  gb.pk[gb.n++] = p;
  gb.next_seq = seq + pay;
  gb.bytes += pay;
  gb.flags |= fl & (TH_PSH | TH_FIN);
  if (pay < gb.seg_max || (fl & TH_FIN) || alone)
    gb.closed = 1;
  for (struct pbuf *q = p; q; q = q->next) {
    size_t off = q == p ? hlen : 0;
    if (q->len > off) {
      gb.iov[gb.niov].iov_base = (u8_t *)q->payload + off;
      gb.iov[gb.niov].iov_len = q->len - off;
      gb.niov++;
    }
  }
  return 1;
}

static void gso_flush(void)
{
  int n = gb.n;
  if (n == 0)
    return;
  gb.n = 0;
  if (n == 1 && gb.bytes <= gb.gso_size) {
    tun_write_pkt(gb.pk[0]);
    return;
  }
  u8_t *h = gb.hdr, *th = gb.hdr + gb.iphl;
  u32_t tcplen = (u32_t)(gb.hlen - gb.iphl) + gb.bytes;
  struct virtio_net_hdr vh;
  memset(&vh, 0, sizeof(vh));
  if (gb.iphl == 20) {
    u32_t tot = gb.iphl + tcplen;
    h[2] = (u8_t)(tot >> 8);
    h[3] = (u8_t)tot;
    h[10] = h[11] = 0;
    u16_t c = inet_chksum(h, gb.iphl);          /* network order, as lwIP stores it */
    memcpy(h + 10, &c, 2);
    u16_t ps = pseudo_sum(h + 12, h + 16, 4, tcplen);
    th[16] = (u8_t)(ps >> 8);
    th[17] = (u8_t)ps;
    vh.gso_type = VIRTIO_NET_HDR_GSO_TCPV4;
  } else {
    h[4] = (u8_t)(tcplen >> 8);
    h[5] = (u8_t)tcplen;
    u16_t ps = pseudo_sum(h + 8, h + 24, 16, tcplen);
    th[16] = (u8_t)(ps >> 8);
    th[17] = (u8_t)ps;
    vh.gso_type = VIRTIO_NET_HDR_GSO_TCPV6;
  }
  th[13] = (u8_t)((th[13] & ~(TH_PSH | TH_FIN)) | gb.flags);
  vh.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
  vh.hdr_len = gb.hlen;
  vh.gso_size = gb.gso_size;
  vh.csum_start = gb.iphl;
  vh.csum_offset = 16;
  gb.iov[0].iov_base = &vh;
  gb.iov[0].iov_len = sizeof(vh);
  gb.iov[1].iov_base = h;
  gb.iov[1].iov_len = gb.hlen;
  ssize_t w;
  loop_note_traffic();
  do {
    w = writev(tun_fd, gb.iov, gb.niov);
  } while (w < 0 && errno == EINTR);
  if (w >= 0) {
    tun_tx_gso_pkts++;
    tun_tx_gso_segs += (uint64_t)n;
    return;
  }
  if (errno == EINVAL) {
    log_warn("TUN: the kernel refused a segmentation-offload packet (%s); sending single segments from now on",
             strerror(errno));
    tun_tx_gso = 0;
    for (int i = 0; i < n; i++)
      tun_write_pkt(gb.pk[i]);
    return;
  }
  tun_tx_drops += (uint64_t)n;
  tund_log_limited(LOG_WARN_, "TUN write: %s (%llu packets dropped so far)", strerror(errno),
                   (unsigned long long)tun_tx_drops);
}

/* LWIP_HOOK_TCP_OUTPUT_BATCH (glue_output_batch) */
static void tun_output_batch(int begin)
{
  if (begin) {
    gb.depth++;
  } else if (gb.depth > 0 && --gb.depth == 0) {
    gso_flush();
  }
}

static err_t tun_send(struct pbuf *p)
{
  if (tun_tx_gso && gb.depth > 0) {
    if (gso_add(p, 0))
      return ERR_OK;
    gso_flush();
    if (gso_add(p, 0))
      return ERR_OK;
  } else {
    gso_flush();
  }
  /* written alone (sent outside tcp_output(), or with ENO option bytes) and
   * larger than its path's MTU: cut by the kernel as a batch of one */
  if (tun_tx_gso && pmtu_exceeds(p) && gso_add(p, 1)) {
    gso_flush();
    return ERR_OK;
  }
  tun_write_pkt(p);
  return ERR_OK;
}

static err_t tun_output4(struct netif *nif, struct pbuf *p, const ip4_addr_t *dst)
{
  (void)nif;
  (void)dst;
  return tun_send(p);
}

static err_t tun_output6(struct netif *nif, struct pbuf *p, const ip6_addr_t *dst)
{
  (void)nif;
  (void)dst;
  return tun_send(p);
}

static err_t tun_netif_init(struct netif *nif)
{
  nif->name[0] = 't';
  nif->name[1] = 'n';
  nif->output = tun_output4;
  nif->output_ip6 = tun_output6;
  nif->mtu = (u16_t)cfg.mtu;
  nif->flags = NETIF_FLAG_LINK_UP;
  return ERR_OK;
}

/* kernel -> lwIP: read a batch of packets per wakeup, or one while they come
 * singly (single_read_limit in tund.h: with request/response traffic the read
 * that finds nothing was one system call in three of a round trip). */
static unsigned tun_single;           /* evidence that packets come singly */

/* The next packet is read into a pbuf of tun_rx_size bytes (the MTU; 64 KiB
 * with large segments from the kernel or on local paths).  With lwIP on libc
 * malloc, pbuf_realloc() does not give the tail back, so a pure ACK handed
 * over in such a buffer would cost a 64 KiB malloc and free each — and those
 * sizes make glibc grow and trim the heap (brk, then page faults) over and
 * over — and a 1500-byte segment would hold 64 KiB while it waits in a
 * queue.  Packets up to an eighth of the buffer (at least TUN_RX_COPY_MAX)
 * are copied into a pbuf of their size instead, and the big buffer is read
 * into again. */
#define TUN_RX_COPY_MAX 1024
static struct pbuf *tun_rxbuf;

static void tun_readable(struct ev *ev, uint32_t events)
{
  (void)events;
  int limit = single_read_limit(&tun_single, 128), got = 0, empty = 0;
  size_t copy_max = tun_rx_size / 8 > TUN_RX_COPY_MAX ? tun_rx_size / 8 : TUN_RX_COPY_MAX;
  for (int i = 0; i < limit; i++) {
    struct pbuf *p = tun_rxbuf;
    struct virtio_net_hdr vh;
    if (!p)
      p = tun_rxbuf = pbuf_alloc(PBUF_RAW, (u16_t)tun_rx_size, PBUF_RAM);
    if (!p) {
      tund_log_limited(LOG_WARN_, "out of memory for an incoming packet");
      return;
    }
    struct iovec iov[2] = { { &vh, sizeof(vh) }, { p->payload, tun_rx_size } };
    ssize_t n = tun_vnet ? readv(ev->fd, iov, 2) : read(ev->fd, p->payload, tun_rx_size);
    if (n <= 0) {
      if (n < 0 && errno != EAGAIN && errno != EINTR)
        tund_log_limited(LOG_WARN_, "TUN read: %s", strerror(errno));
      empty = 1;
      break;
    }
    got++;
    tun_rx_pkts++;
    if (tun_vnet) {
      n -= (ssize_t)sizeof(vh);
      if (n <= 0)
        continue;                          /* the buffer is read into again */
      if (vh.gso_type != VIRTIO_NET_HDR_GSO_NONE) {
        /* A large TCP segment (rx TSO): lwIP takes it whole.  Anything else
         * the kernel should not have sent us (we asked only for these). */
        unsigned t = vh.gso_type & (unsigned)~VIRTIO_NET_HDR_GSO_ECN;
        if (!((t == VIRTIO_NET_HDR_GSO_TCPV4 && (tun_rx_tso & TUN_F_TSO4)) ||
              (t == VIRTIO_NET_HDR_GSO_TCPV6 && (tun_rx_tso & TUN_F_TSO6)))) {
          tun_rx_dropped_gso++;
          tund_log_limited(LOG_WARN_, "TUN: dropped a segmentation-offload packet of type %u (%llu so far)",
                           (unsigned)vh.gso_type, (unsigned long long)tun_rx_dropped_gso);
          continue;
        }
        tun_rx_gso_pkts++;
      }
      /* A segment the kernel marks as locally made (partial checksum) or
       * already verified needs no second sum; anything else is checked. */
      int trusted = tun_csum_offload &&
                    (vh.flags & (VIRTIO_NET_HDR_F_NEEDS_CSUM | VIRTIO_NET_HDR_F_DATA_VALID));
      u16_t ctrl = NETIF_CHECKSUM_ENABLE_ALL & ~NETIF_CHECKSUM_GEN_TCP;   /* the kernel completes ours */
      if (!tun_csum_offload)
        ctrl = NETIF_CHECKSUM_ENABLE_ALL;
      if (trusted)
        ctrl &= (u16_t)~NETIF_CHECKSUM_CHECK_TCP;
      NETIF_SET_CHECKSUM_CTRL(&tun_nif, ctrl);
    }
    if ((size_t)n <= copy_max) {
      /* an ACK or a small segment: copy it out and keep the big buffer */
      struct pbuf *q = pbuf_alloc(PBUF_RAW, (u16_t)n, PBUF_RAM);
      if (!q) {
        tund_log_limited(LOG_WARN_, "out of memory for an incoming packet");
        continue;
      }
      memcpy(q->payload, p->payload, (size_t)n);
      p = q;
    } else {
      tun_rxbuf = NULL;                    /* lwIP owns it now */
      pbuf_realloc(p, (u16_t)n);
    }
    if (tun_nif.input(p, &tun_nif) != ERR_OK)
      pbuf_free(p);
  }
  if (got)
    loop_note_traffic();
  if (empty)
    single_read_note(&tun_single, got);
}

/* lwIP to its own address (LWIP_NETIF_LOOPBACK): the segments never left
 * memory, so their TCP checksums (left to the kernel with offload) are not
 * checked. */
int tun_loopback_pending(void)
{
  return tun_nif.loop_first != NULL;
}

void tun_loopback_poll(void)
{
  if (!tun_nif.loop_first)
    return;
  NETIF_SET_CHECKSUM_CTRL(&tun_nif, NETIF_CHECKSUM_ENABLE_ALL & ~(NETIF_CHECKSUM_GEN_TCP | NETIF_CHECKSUM_CHECK_TCP));
  netif_poll(&tun_nif);
  NETIF_SET_CHECKSUM_CTRL(&tun_nif, tun_csum_offload ? NETIF_CHECKSUM_ENABLE_ALL & ~NETIF_CHECKSUM_GEN_TCP
                                                     : NETIF_CHECKSUM_ENABLE_ALL);
}

int tun_netif_start(int fd, const struct tund_config *c)
{
  ip4_addr_t a4, m4, g4;
  if (!c->tun_attach && tun_configure(c))
    return -1;
  memcpy(&a4.addr, &c->lwip4, 4);
  memcpy(&g4.addr, &c->host4, 4);
  m4.addr = c->prefix4 ? htonl(~0u << (32 - c->prefix4)) : 0;
  if (!netif_add(&tun_nif, &a4, &m4, &g4, NULL, tun_netif_init, ip_input)) {
    log_err("lwIP netif_add failed");
    return -1;
  }
  if (c->have_v6) {
    ip6_addr_t a6;
    memcpy(a6.addr, &c->lwip6, 16);
    ip6_addr_clear_zone(&a6);
    netif_ip6_addr_set(&tun_nif, 0, &a6);
    netif_ip6_addr_set_state(&tun_nif, 0, IP6_ADDR_PREFERRED);
  }
  if (tun_csum_offload)
    NETIF_SET_CHECKSUM_CTRL(&tun_nif, NETIF_CHECKSUM_ENABLE_ALL & ~NETIF_CHECKSUM_GEN_TCP);
  if (tun_tx_gso)
    glue_output_batch = tun_output_batch;
  netif_set_default(&tun_nif);
  netif_set_up(&tun_nif);
  netif_set_link_up(&tun_nif);
  tun_ev.fd = fd;
  tun_ev.fn = tun_readable;
  if (loop_add(&tun_ev, EPOLLIN)) {
    log_err("epoll add TUN: %s", strerror(errno));
    return -1;
  }
  return 0;
}

void tun_close(void)
{
  glue_output_batch = NULL;
  gb.n = 0;
  if (tun_fd >= 0)
    log_info("TUN: %llu packets written, %llu of them segmentation-offload packets carrying %llu segments; "
             "%llu read, %llu of them large segments",
             (unsigned long long)(tun_tx_pkts + tun_tx_gso_pkts), (unsigned long long)tun_tx_gso_pkts,
             (unsigned long long)tun_tx_gso_segs, (unsigned long long)tun_rx_pkts,
             (unsigned long long)tun_rx_gso_pkts);
  if (tun_fd >= 0) {
    loop_del(&tun_ev);
    netif_remove(&tun_nif);
    close(tun_fd);
    tun_fd = -1;
  }
  if (tun_rxbuf) {
    pbuf_free(tun_rxbuf);
    tun_rxbuf = NULL;
  }
}
