/*
 * tcpcrypt.h — I/O-free tcpcrypt engine (RFC 8548 = draft-ietf-tcpinc-
 * tcpcrypt-15), in the style of BearSSL/picotls: bytes in, bytes out.
 *
 * The engine sits above a TCP byte stream once TCP-ENO (stack/eno.*) has
 * negotiated a tcpcrypt TEP and the roles A/B:
 *
 *   fresh:    A: tc_session_new -> tc_session_handshake_out (Init1, send it)
 *                -> tc_session_handshake_in (Init2 bytes) -> established
 *             B: tc_session_new -> tc_session_handshake_in (Init1 bytes)
 *                -> established -> tc_session_handshake_out (Init2, send it)
 *   resumed:  tc_resume_propose / tc_resume_answer (+ tc_resume_check_reply)
 *             during the SYN exchange -> tc_session_new_resumed (no Init)
 *   then:     tc_frame_seal (outgoing data) / tc_frame_read (incoming bytes)
 *
 * Every error is final for the session (it enters TC_FAILED): the caller
 * aborts the connection with an error distinct from EOF (§3.3, §3.6, §8),
 * except the positive "need more"/"need space" codes and TC_ERR_NO_ENTRY /
 * TC_ERR_AGAIN / TC_ERR_SPACE, which leave the session as it was.
 */
#ifndef TCPCRYPT_H
#define TCPCRYPT_H

#include <stddef.h>
#include <stdint.h>

#include "tc_crypto.h"

/* ---- constants (§4.3, §5, §6) ------------------------------------------------------ */

#define TC_CONST_NEXTK   0x01
#define TC_CONST_SESSID  0x02
#define TC_CONST_REKEY   0x03
#define TC_CONST_KEY_A   0x04
#define TC_CONST_KEY_B   0x05
#define TC_CONST_RESUME  0x06
#define TC_INIT1_MAGIC   0x15101a0eu
#define TC_INIT2_MAGIC   0x097105e0u

#define TC_ROLE_A 0
#define TC_ROLE_B 1

/* Session ID = TEP-byte | CPRF(ss[i], CONST_SESSID | sn[i], K_LEN) (§3.4). */
#define TC_SESSID_LEN    (1 + TC_K_LEN)

/* Init messages (§4.1).  Fixed part = everything up to the end of Pub; the
 * largest possible is Init1 with 255 ciphers and a P-521 key.  Bytes after
 * the fixed part ("ignored") are never buffered: they are streamed into the
 * PRK's HMAC, so any message_len up to 2^32-1 is accepted as §4.1 requires
 * ("MUST permit and ignore any bytes following Pub_A") in bounded memory. */
#define TC_INIT1_MIN_HDR 9      /* magic, message_len, nciphers */
#define TC_INIT2_MIN_HDR 10     /* magic, message_len, sym_cipher */
#define TC_INIT_FIXED_MAX (TC_INIT1_MIN_HDR + 2 * 255 + TC_NONCE_LEN + TC_PUB_MAX)
/* Our own AEAD lists (ACONF/BCONF) are limited to this many entries. */
#define TC_AEAD_LIST_MAX 16
#define TC_INIT_OWN_MAX  (TC_INIT1_MIN_HDR + 2 * TC_AEAD_LIST_MAX + TC_NONCE_LEN + TC_PUB_MAX)

/* Frames (§4.2). */
#define TC_FRAME_HDR_LEN 3                      /* control | clen */
#define TC_CTRL_REKEY    0x01
#define TC_FLAG_FIN      0x01                   /* FINp */
#define TC_FLAG_URG      0x02                   /* URGp */
#define TC_CLEN_MAX      0xffff                 /* "length less than 2^16" */
#define TC_CLEN_MIN      (1 + TC_AEAD_TAG_LEN)  /* flags byte + tag */
/* Largest data part of one frame (without URGp). */
#define TC_FRAME_DATA_MAX (TC_CLEN_MAX - TC_CLEN_MIN)
#define TC_FRAME_MAX     (TC_FRAME_HDR_LEN + TC_CLEN_MAX)

/* Resumption (§3.5). */
#define TC_RESUME_ID_LEN   18
#define TC_RESUME_HALF_LEN 9
#define TC_RESUME_NONCE_MAX 8
#define TC_RESUME_NONCE_DEFAULT 8   /* "MUST default to eight bytes" */
#define TC_RESUME_SUBOPT_MAX (TC_RESUME_HALF_LEN + TC_RESUME_NONCE_MAX)
#define TC_PEER_MAX        32       /* cache key: peer address bytes */

/* Keylog lines: "TCPCRYPT_ES <64 hex> <<=132 hex>" / "TCPCRYPT_SS <36 hex> <64 hex>" */
#define TC_KEYLOG_MAX      256

/* ---- return codes (tc_crypto.h has -1..-6) ------------------------------------------- */

#define TC_NEED_MORE      1    /* all input consumed; feed more bytes */
#define TC_FRAME_DONE     2    /* one frame verified; see tc_frame_info */
#define TC_NEED_SPACE     3    /* header known; supply tc_frame_space_needed() bytes */
#define TC_INIT_FIXED     4    /* parser only: fixed part complete and valid */

#define TC_ERR_STATE      (-10)  /* call not valid in this state / session failed */
#define TC_ERR_MAGIC      (-11)  /* Init magic wrong */
#define TC_ERR_LENGTH     (-12)  /* message_len shorter than the fields it must hold */
#define TC_ERR_NCIPHERS   (-13)  /* Init1 nciphers = 0 */
#define TC_ERR_NO_AEAD    (-14)  /* B: no AEAD of Init1 is in our preference list */
#define TC_ERR_AEAD_NOT_OFFERED (-15) /* A: Init2 chose an AEAD A did not offer (§3.3) */
#define TC_ERR_CLEN       (-16)  /* frame clen < 17 (no room for flags + tag) */
#define TC_ERR_URGENT     (-17)  /* URGp set but plaintext shorter than 3 bytes */
#define TC_ERR_AFTER_FIN  (-18)  /* bytes after the FINp frame (§3.7) */
#define TC_ERR_OFFSET     (-19)  /* the 64-bit stream offset would wrap (§3.6) */
#define TC_ERR_SPACE      (-20)  /* caller's output buffer too small (non-fatal) */
#define TC_ERR_AGAIN      (-21)  /* rekey already in progress (non-fatal) */
#define TC_ERR_NO_ENTRY   (-22)  /* resumption impossible: do fresh key exchange (non-fatal) */
#define TC_ERR_RESUME_MISMATCH (-23) /* peer's identifier half does not match (§3.5) */

const char *tc_strerror(int err);

/* ---- Init1 / Init2 encodings (§4.1) ------------------------------------------------- */

/* Encoders never emit ignored bytes. */
TC_WUR int tc_init1_encode(uint8_t *out, size_t cap, size_t *len,
                           const uint16_t *ciphers, size_t nciphers,
                           const uint8_t n_a[static TC_NONCE_LEN],
                           const uint8_t *pub, size_t pub_len);
TC_WUR int tc_init2_encode(uint8_t *out, size_t cap, size_t *len, uint16_t cipher,
                           const uint8_t n_b[static TC_NONCE_LEN],
                           const uint8_t *pub, size_t pub_len);

/* Streaming parser for one Init message of a given TEP.  Feed bytes in any
 * split.  Returns TC_NEED_MORE (all consumed), TC_INIT_FIXED (stopped right
 * after the fixed part, which is now validated — call again for the rest),
 * 0 (message complete: *used bytes of in belonged to it; the rest is frame
 * data), or an error (TC_ERR_MAGIC, _LENGTH, _NCIPHERS, _PUBKEY).  A magic
 * byte is checked as soon as it arrives.  Never reads past message_len. */
struct tc_init_parser {
	uint8_t which;          /* 1 or 2 */
	uint8_t tep;
	uint8_t fixed_reported;
	uint32_t max_len;       /* 0: any message_len (§4.1); else a local limit */
	uint32_t have;          /* bytes of the message consumed */
	uint32_t msg_len;       /* message_len, valid once have >= 8 */
	uint32_t fixed_len;     /* 0 until known */
	uint8_t buf[TC_INIT_FIXED_MAX];
};

struct tc_init_msg {
	uint32_t msg_len;
	uint32_t fixed_len;
	size_t nciphers;              /* Init1 */
	const uint8_t *ciphers;       /* Init1: nciphers big-endian u16 */
	uint16_t cipher;              /* Init2 */
	const uint8_t *nonce;         /* N_A or N_B, 32 bytes */
	const uint8_t *pub;
	size_t pub_len;
};

void tc_init_parser_start(struct tc_init_parser *p, int which, uint8_t tep);
TC_WUR int tc_init_parser_feed(struct tc_init_parser *p, const uint8_t *in, size_t len, size_t *used);
/* Fields of the fixed part (pointers into p); valid after TC_INIT_FIXED. */
TC_WUR int tc_init_parser_get(const struct tc_init_parser *p, struct tc_init_msg *m);
/* Whole-buffer convenience: 0 if buf holds exactly one complete message. */
TC_WUR int tc_init_parse(struct tc_init_parser *p, int which, uint8_t tep,
                         const uint8_t *buf, size_t len, struct tc_init_msg *m);

/* ---- resumption cache (§3.5) ------------------------------------------------------------ */

typedef struct tc_cache tc_cache;
typedef struct tc_resume tc_resume;

/* Per-connection policy knobs (§3.5: "MUST have a way to specify two
 * policies"); tund keeps one value per connection and passes it to both the
 * resumption calls and tc_config.policy. */
#define TC_POLICY_NO_RESUME 0x1   /* ignore/make no resumption requests */
#define TC_POLICY_NO_CACHE  0x2   /* cache no session secret from this connection */

/* A bounded cache of session secrets ss[i+1], one entry per chain (each
 * fresh session starts a chain).  Secrets live in one sodium_malloc'd block
 * and are wiped on every removal.  Times are in the caller's units. */
TC_WUR int tc_cache_new(size_t max_entries, tc_cache **out);
void tc_cache_free(tc_cache *c);
size_t tc_cache_count(const tc_cache *c);
/* Remove (and wipe) entries with expiry <= now. */
void tc_cache_expire(tc_cache *c, uint64_t now);

/* Active opener, before sending the SYN: take the newest unexpired entry
 * for (peer, tep) out of the cache — ss[i] is used at most once, whether
 * the resumption then succeeds or not (§3.5).  nonce_len 0..8 (default 8).
 * TC_ERR_NO_ENTRY if there is none or policy has TC_POLICY_NO_RESUME. */
TC_WUR int tc_resume_propose(tc_cache *c, unsigned policy, const uint8_t *peer, size_t peer_len,
                             uint8_t tep, uint64_t now, size_t nonce_len, tc_resume **out);
/* Passive opener, on a resumption suboption for tep carrying data
 * (identifier half + nonce_a/b): take the entry whose resume id has that
 * half in the peer's position out of the cache.  TC_ERR_NO_ENTRY (answer
 * with fresh key exchange) when unknown, malformed (< 9 or > 17 bytes) or
 * the policy ignores resumption. */
TC_WUR int tc_resume_answer(tc_cache *c, unsigned policy, uint8_t tep,
                            const uint8_t *data, size_t len, uint64_t now,
                            size_t nonce_len, tc_resume **out);
/* Suboption data to send after the TEP|0x80 byte (Figure 2/3): our half
 * of resume[i] followed by our nonce.  Returns the length (9..17). */
size_t tc_resume_suboption(const tc_resume *r, uint8_t out[static TC_RESUME_SUBOPT_MAX]);
/* Active opener: check the passive opener's suboption data.  0 if its half
 * matches; TC_ERR_RESUME_MISMATCH otherwise (ENO must ignore the
 * suboption, §3.5). */
TC_WUR int tc_resume_check_reply(tc_resume *r, const uint8_t *data, size_t len);
uint8_t tc_resume_tep(const tc_resume *r);
/* Wipe and free an attempt that did not lead to a session.  The secret is
 * NOT returned to the cache. */
void tc_resume_free(tc_resume *r);

/* ---- sessions ---------------------------------------------------------------------------- */

typedef struct tc_session tc_session;

struct tc_config {
	int role;                        /* TC_ROLE_A / TC_ROLE_B in this connection */
	uint8_t tep;                     /* negotiated TEP (v bit ignored) */
	const uint8_t *transcript;       /* ENO transcript (tcpeno §4.8) */
	size_t transcript_len;
	/* A: AEADs offered in Init1 (ACONF).  NULL ⇒ all supported. */
	const uint16_t *aconf;
	size_t naconf;
	/* B: preference list in INCREASING order of preference (api-06
	 * TCP_CRYPT_BCONF); B picks the last one A offered.  NULL ⇒ default. */
	const uint16_t *bconf;
	size_t nbconf;
	/* Optional pre-generated ephemeral key pair for tep (tc_kex_generate
	 * ahead of time).  The session takes ownership, also on failure. */
	tc_kex *kex;
	/* Test hook: fixed N_A/N_B (32 bytes) instead of random. */
	const uint8_t *nonce;
	int keylog;                      /* keep a keylog line (tc_session_keylog) */
	unsigned policy;                 /* TC_POLICY_* */
	tc_cache *cache;                 /* where ss[i+1] goes; NULL ⇒ nowhere */
	const uint8_t *peer;             /* cache key (peer address bytes) */
	size_t peer_len;
	uint64_t cache_expiry;           /* expiry of the produced entry */
	/* Largest message_len accepted for the peer's Init (TC_ERR_LENGTH
	 * beyond).  0 = no limit: §4.1 requires accepting any amount of
	 * ignored bytes, and they cost no memory here (streamed into the
	 * PRK); a daemon may still cap it, with a handshake timeout. */
	uint32_t init_max;
};

/* Default lists: ACONF = { AES-128-GCM, AES-256-GCM, ChaCha20-Poly1305 };
 * BCONF (increasing preference) = { ChaCha20-Poly1305, AES-256-GCM,
 * AES-128-GCM }: the REQUIRED and (here) fastest AEAD wins. */
extern const uint16_t tc_default_aconf[3];
extern const uint16_t tc_default_bconf[3];

enum tc_state {
	TC_INIT1_PENDING,   /* B: waiting for Init1 */
	TC_INIT1_SENT,      /* A: Init1 built, waiting for Init2 */
	TC_ESTABLISHED,     /* keys ready */
	TC_FAILED,
};

/* Fresh session.  A builds Init1 here. */
TC_WUR int tc_session_new(const struct tc_config *cfg, tc_session **out);
/* Resumed session (§3.5); consumes r (also on failure).  r must have been
 * answered (passive) or checked (active).  cfg->tep/kex/aconf/bconf/nonce
 * are unused. */
TC_WUR int tc_session_new_resumed(const struct tc_config *cfg, tc_resume *r, tc_session **out);
void tc_session_free(tc_session *s);

/* The Init message this host sends (A: Init1 from creation on; B: Init2
 * once Init1 was consumed).  The bytes stay valid until tc_session_free. */
TC_WUR int tc_session_handshake_out(const tc_session *s, const uint8_t **msg, size_t *len);
/* Feed the peer's stream while the session is not established.  Returns
 * TC_NEED_MORE, 0 (peer's Init complete; *used bytes were part of it, the
 * rest of in is frame data), or an error. */
TC_WUR int tc_session_handshake_in(tc_session *s, const uint8_t *in, size_t len, size_t *used);

enum tc_state tc_session_state(const tc_session *s);
int tc_session_resumed(const tc_session *s);
uint8_t tc_session_tep(const tc_session *s);
uint16_t tc_session_aead(const tc_session *s);   /* 0 until known */
/* Session ID (§3.4), TC_SESSID_LEN bytes, once established; NULL before. */
const uint8_t *tc_session_id(const tc_session *s);
/* Local (= generation this host must be using, §3.8) and remote generation. */
void tc_session_generation(const tc_session *s, uint64_t *local, uint64_t *remote);
/* Number of frames with rekey=1 this host still owes (§3.8: send them
 * now, with empty data if there is none). */
uint64_t tc_session_rekey_pending(const tc_session *s);
/* Initiate re-keying: the next frame sealed carries rekey=1 under the next
 * key-set.  TC_ERR_AGAIN while an earlier re-key is unanswered (§3.8:
 * at most one concurrent re-key initiated with an empty frame). */
TC_WUR int tc_session_rekey(tc_session *s);
/* The same when the next frame sealed carries data (§3.8 restricts only
 * re-keying with empty frames): allowed while the previous step is still
 * unanswered, once a frame went out under it. */
TC_WUR int tc_session_rekey_data(tc_session *s);
/* Byte offsets (§3.6) of the next frame sent / received. */
uint64_t tc_session_tx_offset(const tc_session *s);
uint64_t tc_session_rx_offset(const tc_session *s);

/* Keylog (like SSLKEYLOGFILE), only with cfg->keylog: copies the line
 * (no newline, NUL-terminated) and wipes the session's copy.  Formats:
 *   fresh:   TCPCRYPT_ES <N_A, 64 hex> <ES, hex>
 *   resumed: TCPCRYPT_SS <resume[i], 36 hex> <ss[i], 64 hex>
 * Returns the length or a negative error. */
TC_WUR int tc_session_keylog(tc_session *s, char *out, size_t cap);

/* TCP_CRYPT_CACHE_FLUSH on an established connection: remove the cache
 * entry this connection produced (the one it used was already taken). */
void tc_session_cache_flush(tc_session *s);

/* ---- frames (§3.6, §4.2) ---------------------------------------------------------------- */

/* Size of a sealed frame carrying data_len bytes. */
size_t tc_frame_len(size_t data_len, uint8_t flags);

/* Seal one frame: data given as n pieces (n <= 4; a wrapping ring is 2),
 * flags TC_FLAG_FIN / TC_FLAG_URG (urgent used only with URG), written to
 * out (cap >= tc_frame_len).  Uses and advances the send offset; carries
 * rekey=1 if a generation step is owed.  After a FINp frame nothing more
 * can be sealed. */
TC_WUR int tc_frame_seal(tc_session *s, const struct tc_iov *data, size_t n,
                         uint8_t flags, uint16_t urgent,
                         uint8_t *out, size_t cap, size_t *out_len);

struct tc_frame_info {
	size_t data_len;        /* data bytes written at out[0 .. data_len) */
	uint8_t flags;          /* TC_FLAG_FIN | TC_FLAG_URG (fres ignored) */
	uint16_t urgent;        /* valid with TC_FLAG_URG */
	uint8_t rekey;          /* the frame had rekey=1 */
};

/* Streaming frame reader.  Consumes bytes of the peer's stream (any split)
 * but never past the end of the current frame.  The current frame's data
 * goes to the output region (n pieces, e.g. the free part of a ring
 * starting at its unpublished producer index): its ciphertext is copied
 * there as it arrives and decrypted in place when the frame is complete.
 * So pass the SAME memory (same logical start; the pieces may grow) on
 * every call of one frame, and do not read it before TC_FRAME_DONE.
 * Returns:
 *   TC_NEED_MORE   all input consumed, frame not complete;
 *   TC_NEED_SPACE  the region is smaller than tc_frame_space_needed(); the
 *                  bytes before *used were consumed; call again with room;
 *   TC_FRAME_DONE  the frame's tag verified: info says what was committed;
 *                  only now may the data be published;
 *   < 0            TC_ERR_AUTH, _CLEN, _URGENT, _AFTER_FIN, _OFFSET, ...
 * After TC_FRAME_DONE check tc_session_rekey_pending(). */
TC_WUR int tc_frame_read(tc_session *s, const uint8_t *in, size_t len, size_t *used,
                         const struct tc_iov_mut *out, size_t n, struct tc_frame_info *info);
/* Output space the current frame needs (clen - 17, an upper bound of its
 * data), 0 while its header is incomplete. */
size_t tc_frame_space_needed(const tc_session *s);

#endif
