/*
 * tcpinc.h — socket options of TCP-ENO (RFC 8547) and tcpcrypt (RFC 8548)
 * as suggested by draft-ietf-tcpinc-api-06, for programs that run under
 * enoshim (libenoshim.so) and want to read session IDs or steer negotiation.
 *
 * All options live at level IPPROTO_TCP (api-06 §4.1).  Their numbers start at
 * 0x454e00 ("EN" << 8), far above Linux's own TCP options (< 256), so a program
 * that runs without the shim gets ENOPROTOOPT from the kernel rather than a
 * different option.
 *
 * Errors (api-06 §2.1, Table 2):
 *   EINVAL    bad value, or ENO is disabled on this connection
 *   EISCONN   the option can no longer be set: the SYN has been sent
 *   ENOTCONN  not valid yet: the connection is still negotiating
 * Read-only options succeed only in the encrypting state.
 */
#ifndef TCPINC_H
#define TCPINC_H

#define TCPINC_OPT_BASE            0x454e00

/* api-06 §2.1, Table 1 */
#define TCP_ENO_ENABLED            (TCPINC_OPT_BASE + 0x01) /* RW int -1, 0, 1 */
#define TCP_ENO_SESSID             (TCPINC_OPT_BASE + 0x02) /* R  bytes */
#define TCP_ENO_NEGTEP             (TCPINC_OPT_BASE + 0x03) /* R  int 32-127, 160-255 */
#define TCP_ENO_TEPS               (TCPINC_OPT_BASE + 0x04) /* RW bytes */
#define TCP_ENO_SELF_GOPT          (TCPINC_OPT_BASE + 0x05) /* RW int 0-31 */
#define TCP_ENO_PEER_GOPT          (TCPINC_OPT_BASE + 0x06) /* R  int 0-31 */
#define TCP_ENO_AA_MANDATORY       (TCPINC_OPT_BASE + 0x07) /* RW int 0, 1 */
#define TCP_ENO_TEP_MANDATORY      (TCPINC_OPT_BASE + 0x08) /* RW int 0, 1 */
#define TCP_ENO_ROLE               (TCPINC_OPT_BASE + 0x09) /* R  int 0 (A), 1 (B) */
#define TCP_ENO_SELF_NAME          (TCPINC_OPT_BASE + 0x0a) /* R  bytes: role | sessid */
#define TCP_ENO_PEER_NAME          (TCPINC_OPT_BASE + 0x0b) /* R  bytes: !role | sessid */
#define TCP_ENO_RAW                (TCPINC_OPT_BASE + 0x0c) /* RW bytes */
#define TCP_ENO_TRANSCRIPT         (TCPINC_OPT_BASE + 0x0d) /* R  bytes */

/* api-06 §3.1, Table 4.  tcpcrypt-15 names AEADs with 2-byte identifiers
 * (§6); TCP_CRYPT_CONF returns that identifier as an int, and the ACONF/BCONF
 * lists are sequences of 2-byte big-endian identifiers, encoded as in Init1. */
#define TCP_CRYPT_CONF             (TCPINC_OPT_BASE + 0x21) /* R  int (AEAD id) */
#define TCP_CRYPT_CACHE_FLUSH      (TCPINC_OPT_BASE + 0x22) /* W  int 1 */
#define TCP_CRYPT_ACONF            (TCPINC_OPT_BASE + 0x23) /* RW bytes */
#define TCP_CRYPT_BCONF            (TCPINC_OPT_BASE + 0x24) /* RW bytes */

/* enoshim extensions (not in api-06) */
/* RW int 0/1: do not cache session secrets from this connection
 * (tcpcrypt-15 §3.5, policy 2). */
#define TCP_CRYPT_NOCACHE          (TCPINC_OPT_BASE + 0x31)
/* RW int 0/1: ignore resumption requests, force fresh key exchange
 * (tcpcrypt-15 §3.5, policy 1). */
#define TCP_CRYPT_NORESUME         (TCPINC_OPT_BASE + 0x32)
/* W int 1: start a rekey (tcpcrypt-15 §3.8) on an encrypting connection. */
#define TCP_CRYPT_REKEY            (TCPINC_OPT_BASE + 0x33)
/* R int: ENO state, one of TCPINC_STATE_* below (any state, never fails on a
 * shim socket). */
#define TCP_ENO_STATE              (TCPINC_OPT_BASE + 0x34)

#define TCPINC_STATE_NEGOTIATING   0
#define TCPINC_STATE_ENCRYPTING    1
#define TCPINC_STATE_DISABLED      2

/* TEP identifiers (RFC 8547 §11, RFC 8548 §7) */
#define TCPINC_TEP_EXPERIMENTAL    0x20
#define TCPINC_TEP_TCPCRYPT_P256   0x21
#define TCPINC_TEP_TCPCRYPT_P521   0x22
#define TCPINC_TEP_TCPCRYPT_X25519 0x23
#define TCPINC_TEP_TCPCRYPT_X448   0x24

/* AEAD identifiers (RFC 8548 §6) */
#define TCPINC_AEAD_AES_128_GCM    0x0001
#define TCPINC_AEAD_AES_256_GCM    0x0002
#define TCPINC_AEAD_CHACHA20_POLY1305 0x0010

/* Longest values the read-only options can return. */
#define TCPINC_SESSID_MAX          64
#define TCPINC_NAME_MAX            (1 + TCPINC_SESSID_MAX)
#define TCPINC_TRANSCRIPT_MAX      80

#endif
