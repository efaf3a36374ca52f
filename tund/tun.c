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
 *    segments, and coalesced GRO packets) instead of cutting them to the
 *    MTU first.  tun_readable reads into a 64 KiB buffer and gives lwIP each
 *    one whole: lwIP's TCP accepts a segment of any length that fits its
 *    window (the MSS bounds what it sends, not what it takes).
 *
 * offload=no leaves the header off altogether: the kernel then completes
 * checksums and cuts segments to the MTU before they reach us, and takes
 * ours one by one. */
static int tun_vnet;          /* every packet carries a struct virtio_net_hdr */
static int tun_csum_offload;  /* the kernel accepts partial checksums from us */
static unsigned tun_rx_tso;   /* TUN_F_TSO4/TUN_F_TSO6 the kernel may send us */
static size_t tun_rx_size;    /* what one read takes: the MTU, or 64 KiB with rx TSO */
static uint64_t tun_rx_gso_pkts, tun_tx_pkts, tun_rx_pkts, tun_rx_dropped_gso;

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
  log_info("TUN offloads: checksums; large segments from the kernel: TCPv4 %s, TCPv6 %s",
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

static err_t tun_send(struct pbuf *p)
{
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
  if (tun_fd >= 0 && tun_vnet)
    log_info("TUN: %llu packets written; %llu read, %llu of them large segments",
             (unsigned long long)tun_tx_pkts, (unsigned long long)tun_rx_pkts,
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
