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

int tun_open(const struct tund_config *c)
{
  struct ifreq ifr;
  int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    log_err("cannot open /dev/net/tun: %s%s", strerror(errno),
            errno == EACCES ? " (it must be accessible to this user: crw-rw-rw- as on Debian)" : "");
    return -1;
  }
  memset(&ifr, 0, sizeof(ifr));
  ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
  snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", c->tun_name);
  if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
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

/* lwIP -> kernel: one writev per IP packet, no copy. */
static err_t tun_send(struct pbuf *p)
{
  struct iovec iov[32];
  int n = 0;
  for (struct pbuf *q = p; q; q = q->next) {
    if (q->len == 0)
      continue;
    if (n == 32) {
      /* very fragmented chain: flatten it */
      static uint8_t flat[65536];
      pbuf_copy_partial(p, flat, p->tot_len, 0);
      iov[0].iov_base = flat;
      iov[0].iov_len = p->tot_len;
      n = 1;
      break;
    }
    iov[n].iov_base = q->payload;
    iov[n].iov_len = q->len;
    n++;
  }
  ssize_t w;
  do {
    w = writev(tun_fd, iov, n);
  } while (w < 0 && errno == EINTR);
  if (w < 0) {
    /* The packet is lost like on a congested link; TCP retransmits. */
    tun_tx_drops++;
    tund_log_limited(LOG_WARN_, "TUN write: %s (%llu packets dropped so far)", strerror(errno),
                     (unsigned long long)tun_tx_drops);
  }
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

/* kernel -> lwIP: read a batch of packets per wakeup. */
static void tun_readable(struct ev *ev, uint32_t events)
{
  (void)events;
  for (int i = 0; i < 128; i++) {
    struct pbuf *p = pbuf_alloc(PBUF_RAW, (u16_t)cfg.mtu, PBUF_RAM);
    if (!p) {
      tund_log_limited(LOG_WARN_, "out of memory for an incoming packet");
      return;
    }
    ssize_t n = read(ev->fd, p->payload, cfg.mtu);
    if (n <= 0) {
      pbuf_free(p);
      if (n < 0 && errno != EAGAIN && errno != EINTR)
        tund_log_limited(LOG_WARN_, "TUN read: %s", strerror(errno));
      return;
    }
    pbuf_realloc(p, (u16_t)n);
    if (tun_nif.input(p, &tun_nif) != ERR_OK)
      pbuf_free(p);
  }
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
  if (tun_fd >= 0) {
    loop_del(&tun_ev);
    netif_remove(&tun_nif);
    close(tun_fd);
    tun_fd = -1;
  }
}
