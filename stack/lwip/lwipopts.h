/*
 * lwipopts.h — lwIP 2.1.3 configuration for tund.
 *
 * One event-loop thread drives lwIP (NO_SYS=1, raw API); timers come from
 * tund's timerfd.  Memory comes from libc malloc so that pools grow with the
 * number of connections (10,000+ per tund) instead of being sized at compile
 * time.  ENO and tcpcrypt attach through the TCP hooks in enoshim_lwip_hooks.h.
 */
#ifndef ENOSHIM_LWIPOPTS_H
#define ENOSHIM_LWIPOPTS_H

#define NO_SYS                          1
#define LWIP_TIMERS                     1
#define SYS_LIGHTWEIGHT_PROT            0
#define LWIP_NETCONN                    0
#define LWIP_SOCKET                     0
#define LWIP_ALTCP                      0
#define LWIP_CALLBACK_API               1
#define LWIP_SINGLE_NETIF               1
#define LWIP_NETIF_API                  0
#define LWIP_NETIF_STATUS_CALLBACK      0
#define LWIP_NETIF_LINK_CALLBACK        0
#define LWIP_HAVE_LOOPIF                0
/* Packets lwIP sends to its own addresses are delivered inside lwIP (two
 * programs behind one tund, e.g. in enorun --sandbox, talk through it and
 * negotiate ENO); tund/tun.c polls the queue every loop turn. */
#define LWIP_NETIF_LOOPBACK             1
#define LWIP_LOOPBACK_MAX_PBUFS         0

/* Memory: libc malloc for the heap and for every pool. */
#define MEM_LIBC_MALLOC                 1
#define MEMP_MEM_MALLOC                 1
#define MEM_ALIGNMENT                   8
#define MEM_USE_POOLS                   0
#define LWIP_SUPPORT_CUSTOM_PBUF        1
#define PBUF_POOL_SIZE                  64
#define PBUF_POOL_BUFSIZE               2048

/* Protocols */
#define LWIP_IPV4                       1
#define LWIP_IPV6                       1
#define LWIP_ARP                        0
#define LWIP_ETHERNET                   0
#define LWIP_ICMP                       1
#define LWIP_RAW                        0
#define LWIP_UDP                        0
#define LWIP_DNS                        0
#define LWIP_DHCP                       0
#define LWIP_AUTOIP                     0
#define LWIP_IGMP                       0
#define LWIP_IPV6_MLD                   0
#define LWIP_IPV6_AUTOCONFIG            0
#define LWIP_IPV6_DHCP6                 0
#define LWIP_IPV6_SEND_ROUTER_SOLICIT   0
#define LWIP_IPV6_DUP_DETECT_ATTEMPTS   0
#define LWIP_IPV6_NUM_ADDRESSES         3
#define LWIP_IPV6_FORWARD               0
#define LWIP_IPV6_FRAG                  1
#define LWIP_IPV6_REASS                 1
#define IPV6_FRAG_COPYHEADER            1   /* 64-bit pointers do not fit the fragment header */
#define LWIP_ND6_QUEUEING               0
#define LWIP_ND6_ALLOW_RA_UPDATES       0
#define IP_FORWARD                      0
#define IP_REASSEMBLY                   1
#define IP_FRAG                         1
#define IP_DEFAULT_TTL                  64
#define IP_SOF_BROADCAST                0

/* TCP */
#define LWIP_TCP                        1
#define TCP_TTL                         64
/* Largest MSS we may use; the effective MSS follows the TUN MTU
 * (TCP_CALCULATE_EFF_SEND_MSS) and the peer's MSS option. */
#define TCP_MSS                         65000
#define TCP_CALCULATE_EFF_SEND_MSS      1
#define LWIP_WND_SCALE                  1
#define TCP_RCV_SCALE                   7
/* Receive window: rx ring space is what really limits it (tund only calls
 * tcp_recved() once bytes reached the ring), this is the ceiling. */
#define TCP_WND                         (1024 * 1024)
#define TCP_SND_BUF                     (2 * 1024 * 1024)
#define TCP_SND_QUEUELEN                8192
/* Only the socket API uses the low-water marks; lwIP checks them against a
 * 16-bit select() threshold that large MSSes cannot meet. */
#define LWIP_DISABLE_TCP_SANITY_CHECKS  1
#define TCP_SNDLOWAT                    (TCP_SND_BUF / 4)
#define TCP_SNDQUEUELOWAT               (TCP_SND_QUEUELEN / 2)
/* Send a window update as soon as the window grew by this much: with large
 * MSSes the default (min(TCP_WND/4, 4*MSS)) stalls a sender whose next
 * segment is bigger than the small window left (RFC 1122 4.2.3.3: update when
 * the increase reaches min(RCV.BUFF/2, MSS)). */
#define TCP_WND_UPDATE_THRESHOLD        16384
#define TCP_QUEUE_OOSEQ                 1
#define TCP_OOSEQ_MAX_BYTES             (4 * 1024 * 1024)
#define TCP_OOSEQ_MAX_PBUFS             1024
#define LWIP_TCP_SACK_OUT               0
#define LWIP_TCP_TIMESTAMPS             0
/* Half-open connections (SYN-RCVD) per listener are capped at the lwIP
 * backlog tund passes (255; lwIP's backlog is a u8_t): further SYNs are
 * dropped until some complete or time out (TCP_SYN_RCVD_TIMEOUT), as Linux
 * without SYN cookies does.  tund's own accept-queue limit (the program's
 * backlog) is applied to each SYN by the passive_open ext-arg callback. */
#define TCP_LISTEN_BACKLOG              1
#define LWIP_TCP_KEEPALIVE              1
#define TCP_OVERSIZE                    TCP_MSS
#define LWIP_TCP_PCB_NUM_EXT_ARGS       1
/* lwIP's fast timer (delayed ACKs) runs every TCP_TMR_INTERVAL ms, its slow
 * timer (retransmissions, keep-alive) every 2x.  The default 250 ms makes
 * delayed ACKs six times slower than Linux's 40 ms, which request/response
 * programs feel on every message. */
#define TCP_TMR_INTERVAL                40
#define TCP_MAXRTX                      12
#define TCP_SYNMAXRTX                   6
#define SO_REUSE                        1
#define LWIP_TCP_CLOSE_TIMEOUT_MS_DEFAULT 20000
#define LWIP_CHECKSUM_ON_COPY           0

/* Counts are unlimited with MEMP_MEM_MALLOC; these only keep lwIP's
 * compile-time checks happy. */
#define MEMP_NUM_TCP_PCB                65535
/* TIME-WAIT lasts 2*MSL: 60 s, as on Linux (lwIP's default MSL is 60 s) */
#define TCP_MSL                         30000UL
#define MEMP_NUM_TCP_PCB_LISTEN         4096
#define MEMP_NUM_TCP_SEG                65535
#define MEMP_NUM_PBUF                   65535
#define MEMP_NUM_REASSDATA              64
#define MEMP_NUM_FRAG_PBUF              256
#define MEMP_NUM_SYS_TIMEOUT            (LWIP_NUM_SYS_TIMEOUT_INTERNAL + 8)

/* Checksums: computed and checked in software (see PERFORMANCE.md). */
#define LWIP_CHECKSUM_CTRL_PER_NETIF    1

/* No statistics or debug output in the data path. */
#define LWIP_STATS                      0
#define LWIP_STATS_DISPLAY              0
#define MIB2_STATS                      0
#define LWIP_PERF                       0

/* Hooks: ENO, tcpcrypt and RFC 6528 ISNs. */
#define LWIP_HOOK_FILENAME              "enoshim_lwip_hooks.h"

/* The C library provides htons() and friends. */
#define LWIP_DONT_PROVIDE_BYTEORDER_FUNCTIONS 1

#endif
