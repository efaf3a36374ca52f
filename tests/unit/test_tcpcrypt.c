/*
 * test_tcpcrypt.c — the tcpcrypt engine (stack/tcpcrypt.c), shaped like
 * RFC 8548 (draft-ietf-tcpinc-tcpcrypt-15): Init1/Init2 (§4.1), key schedule
 * (§3.3-3.5), frames (§4.2), re-keying (§3.8), resumption (§3.5).
 *
 * Independent paths: the key-schedule known-answer test was computed with
 * python3 (hashlib/hmac + `cryptography` for X25519 and ChaCha20-Poly1305;
 * script in the comment above kat_*), and the resumption/ignored-bytes
 * checks recompute HKDF with OpenSSL's HMAC() here in the test, not with the
 * engine's libsodium-based HKDF.
 */
#include <criterion/criterion.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tc_crypto.h"
#include "tcpcrypt.h"
#include "tcpinc.h"

/* ---- helpers ------------------------------------------------------------------------------ */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint32_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (uint32_t)(rng_state >> 11);
}

static size_t unhex(uint8_t *out, size_t cap, const char *hex)
{
	size_t n = strlen(hex) / 2;
	cr_assert(n <= cap);
	for (size_t i = 0; i < n; i++) {
		unsigned v;
		cr_assert(sscanf(hex + 2 * i, "%2x", &v) == 1);
		out[i] = (uint8_t)v;
	}
	return n;
}

/* exactly n bytes from the start of a longer hex string */
static void unhexn(uint8_t *out, size_t n, const char *hex)
{
	cr_assert(strlen(hex) >= 2 * n);
	for (size_t i = 0; i < n; i++) {
		unsigned v;
		cr_assert(sscanf(hex + 2 * i, "%2x", &v) == 1);
		out[i] = (uint8_t)v;
	}
}

static void assert_hex(const uint8_t *buf, size_t len, const char *hex, const char *what)
{
	uint8_t exp[512];
	size_t n = unhex(exp, sizeof exp, hex);
	cr_assert_eq(len, n, "%s: length %zu, expected %zu", what, len, n);
	cr_assert(memcmp(buf, exp, n) == 0, "%s differs", what);
}

/* Independent HKDF-Expand with OpenSSL HMAC() (RFC 5869 §2.3). */
static void ref_cprf(uint8_t *out, size_t L, const uint8_t *key, size_t klen,
                     const uint8_t *info, size_t ilen)
{
	uint8_t t[32], buf[32 + 64 + 1];
	size_t tl = 0, done = 0;
	for (uint8_t n = 1; done < L; n++) {
		unsigned ol = 32;
		memcpy(buf, t, tl);
		memcpy(buf + tl, info, ilen);
		buf[tl + ilen] = n;
		cr_assert(HMAC(EVP_sha256(), key, (int)klen, buf, tl + ilen + 1, t, &ol));
		tl = 32;
		size_t take = L - done < 32 ? L - done : 32;
		memcpy(out + done, t, take);
		done += take;
	}
}

static const uint8_t transcript[] = { 0x45, 0x04, 0x21, 0x23, 0x45, 0x04, 0x01, 0x23 };
static const uint8_t teps[] = { TCPINC_TEP_TCPCRYPT_P256, TCPINC_TEP_TCPCRYPT_P521,
                                TCPINC_TEP_TCPCRYPT_X25519, TCPINC_TEP_TCPCRYPT_X448 };
static const uint16_t aeads[] = { TCPINC_AEAD_AES_128_GCM, TCPINC_AEAD_AES_256_GCM,
                                  TCPINC_AEAD_CHACHA20_POLY1305 };

struct pair {
	tc_session *a, *b;
	uint8_t init1[1024], init2[1024];
	size_t init1_len, init2_len;
};

static struct tc_config cfg_base(int role, uint8_t tep)
{
	struct tc_config c;
	memset(&c, 0, sizeof c);
	c.role = role;
	c.tep = tep;
	c.transcript = transcript;
	c.transcript_len = sizeof transcript;
	return c;
}

/* Run the handshake in memory; the Init messages are fed in random splits. */
static void handshake(struct pair *p, struct tc_config *ca, struct tc_config *cb)
{
	const uint8_t *m;
	size_t len, off, used;
	int r = TC_NEED_MORE;

	memset(p, 0, sizeof *p);
	cr_assert_eq(tc_session_new(ca, &p->a), 0);
	cr_assert_eq(tc_session_new(cb, &p->b), 0);
	cr_assert_eq(tc_session_state(p->a), TC_INIT1_SENT);
	cr_assert_eq(tc_session_state(p->b), TC_INIT1_PENDING);
	cr_assert_eq(tc_session_handshake_out(p->b, &m, &len), TC_ERR_STATE, "no Init2 yet");
	cr_assert_eq(tc_session_handshake_out(p->a, &m, &len), 0);
	memcpy(p->init1, m, len);
	p->init1_len = len;
	for (off = 0; off < len;) {
		size_t chunk = 1 + rnd() % 40;
		if (chunk > len - off)
			chunk = len - off;
		r = tc_session_handshake_in(p->b, m + off, chunk, &used);
		cr_assert(r == 0 || r == TC_NEED_MORE, "B: %s", tc_strerror(r));
		cr_assert_eq(used, chunk);
		off += chunk;
	}
	cr_assert_eq(r, 0);
	cr_assert_eq(tc_session_state(p->b), TC_ESTABLISHED);
	cr_assert_eq(tc_session_handshake_out(p->b, &m, &len), 0);
	memcpy(p->init2, m, len);
	p->init2_len = len;
	for (off = 0; off < len;) {
		size_t chunk = 1 + rnd() % 40;
		if (chunk > len - off)
			chunk = len - off;
		r = tc_session_handshake_in(p->a, m + off, chunk, &used);
		cr_assert(r == 0 || r == TC_NEED_MORE, "A: %s", tc_strerror(r));
		off += chunk;
	}
	cr_assert_eq(r, 0);
	cr_assert_eq(tc_session_state(p->a), TC_ESTABLISHED);
}

static void pair_free(struct pair *p)
{
	tc_session_free(p->a);
	tc_session_free(p->b);
}

/* Feed a byte stream to the reader in a given split pattern (0: all at
 * once, 1: byte by byte, 2: random), decrypting into a two-piece region
 * that wraps at `wrap`.  Returns the data of all frames concatenated. */
static size_t read_stream(tc_session *s, const uint8_t *in, size_t len, int mode,
                          uint8_t *out, size_t cap, struct tc_frame_info *last, int *nframes)
{
	size_t off = 0, total = 0;
	*nframes = 0;
	while (off < len) {
		size_t chunk = mode == 0 ? len - off : mode == 1 ? 1 : 1 + rnd() % 700;
		if (chunk > len - off)
			chunk = len - off;
		size_t coff = 0;
		while (coff < chunk) {
			size_t used, space = cap - total, wrap = space / 3;
			/* region = out[total .. total+wrap) + out[total+wrap .. cap):
			 * two pieces, like a ring's free space that wraps */
			struct tc_iov_mut o[2] = { { out + total, wrap }, { out + total + wrap, space - wrap } };
			struct tc_frame_info fi;
			int r = tc_frame_read(s, in + off + coff, chunk - coff, &used, o, 2, &fi);
			coff += used;
			if (r == TC_FRAME_DONE) {
				total += fi.data_len;
				*last = fi;
				(*nframes)++;
				continue;
			}
			cr_assert_eq(r, TC_NEED_MORE, "reader: %s", tc_strerror(r));
			cr_assert_eq(coff, chunk);
		}
		off += chunk;
	}
	return total;
}

/* Seal data as frames of random size (pieces split at random, like a ring). */
static size_t seal_stream(tc_session *s, const uint8_t *data, size_t len, uint8_t last_flags,
                          uint8_t *out, size_t cap)
{
	size_t off = 0, o = 0;
	do {
		size_t d = len - off, fl, lim = 1 + rnd() % 3000;
		if (d > lim)
			d = lim;
		size_t split = d ? rnd() % (d + 1) : 0;
		struct tc_iov iov[2] = { { data + off, split }, { data + off + split, d - split } };
		uint8_t flags = off + d == len ? last_flags : 0;
		cr_assert_eq(tc_frame_seal(s, iov, 2, flags, 0, out + o, cap - o, &fl), 0);
		cr_assert_eq(fl, tc_frame_len(d, flags));
		o += fl;
		off += d;
	} while (off < len);
	return o;
}

static void transfer(tc_session *from, tc_session *to, size_t len, int mode)
{
	uint8_t *data = malloc(len + 1), *wire = malloc(len * 2 + 4096), *got = malloc(len + 70000);
	struct tc_frame_info fi;
	int nf;
	for (size_t i = 0; i < len; i++)
		data[i] = (uint8_t)rnd();
	size_t wl = seal_stream(from, data, len, 0, wire, len * 2 + 4096);
	size_t gl = read_stream(to, wire, wl, mode, got, len + 70000, &fi, &nf);
	cr_assert_eq(gl, len, "got %zu of %zu bytes (mode %d)", gl, len, mode);
	cr_assert(memcmp(got, data, len) == 0, "data corrupted (mode %d)", mode);
	free(data);
	free(wire);
	free(got);
}

/* ---- Init1/Init2 codec (§4.1) ------------------------------------------------------------- */

static size_t make_init1(uint8_t *buf, uint8_t tep, tc_kex **kex)
{
	static const uint16_t c[] = { 1, 2, 16 };
	uint8_t na[32];
	size_t len;
	randombytes_buf(na, 32);
	cr_assert_eq(tc_kex_generate(tep, kex), 0);
	cr_assert_eq(tc_init1_encode(buf, 1024, &len, c, 3, na, tc_kex_pub(*kex), tc_kex_pub_len(tep)), 0);
	return len;
}

static size_t make_init2(uint8_t *buf, uint8_t tep, tc_kex **kex)
{
	uint8_t nb[32];
	size_t len;
	randombytes_buf(nb, 32);
	cr_assert_eq(tc_kex_generate(tep, kex), 0);
	cr_assert_eq(tc_init2_encode(buf, 1024, &len, 2, nb, tc_kex_pub(*kex), tc_kex_pub_len(tep)), 0);
	return len;
}

Test(init, round_trip_every_tep)
{
	for (size_t t = 0; t < 4; t++) {
		uint8_t buf[1024];
		struct tc_init_parser p;
		struct tc_init_msg m;
		tc_kex *k;
		size_t pl = tc_kex_pub_len(teps[t]);

		size_t len = make_init1(buf, teps[t], &k);
		cr_assert_eq(len, 9 + 6 + 32 + pl);
		cr_assert_eq(tc_init_parse(&p, 1, teps[t], buf, len, &m), 0);
		cr_assert_eq(m.msg_len, len);
		cr_assert_eq(m.nciphers, 3);
		cr_assert_eq(m.ciphers[1], 1);
		cr_assert_eq(m.ciphers[5], 0x10);
		cr_assert(memcmp(m.nonce, buf + 15, 32) == 0);
		cr_assert_eq(m.pub_len, pl);
		cr_assert(memcmp(m.pub, tc_kex_pub(k), pl) == 0);
		tc_kex_free(k);

		len = make_init2(buf, teps[t], &k);
		cr_assert_eq(len, 10 + 32 + pl);
		cr_assert_eq(tc_init_parse(&p, 2, teps[t], buf, len, &m), 0);
		cr_assert_eq(m.cipher, 2);
		cr_assert(memcmp(m.pub, tc_kex_pub(k), pl) == 0);
		tc_kex_free(k);
	}
}

/* Every truncation point is "need more", never an error; fed in one byte
 * at a time the parser consumes exactly message_len bytes. */
Test(init, truncation_points_and_byte_stream)
{
	for (size_t t = 0; t < 4; t++)
		for (int which = 1; which <= 2; which++) {
			uint8_t buf[1024 + 16];
			struct tc_init_parser p;
			tc_kex *k;
			size_t len = which == 1 ? make_init1(buf, teps[t], &k) : make_init2(buf, teps[t], &k);
			tc_kex_free(k);
			for (size_t cut = 0; cut < len; cut++) {
				cr_assert_eq(tc_init_parse(&p, which, teps[t], buf, cut, &(struct tc_init_msg){ 0 }),
				             TC_NEED_MORE, "tep %02x Init%d cut %zu", teps[t], which, cut);
			}
			/* byte by byte, followed by frame bytes that must not be eaten */
			memset(buf + len, 0xee, 16);
			tc_init_parser_start(&p, which, teps[t]);
			size_t off = 0;
			int r = TC_NEED_MORE, fixed = 0;
			while (r != 0) {
				size_t u;
				r = tc_init_parser_feed(&p, buf + off, 1, &u);
				off += u;
				if (r == TC_INIT_FIXED)
					fixed++;
				else
					cr_assert(r == 0 || r == TC_NEED_MORE);
			}
			cr_assert_eq(fixed, 1);
			cr_assert_eq(off, len);
			size_t u;
			cr_assert_eq(tc_init_parser_feed(&p, buf + off, 16, &u), 0, "complete stays complete");
			cr_assert_eq(u, 0);
		}
}

/* Malformed messages: a table of edits applied to a valid message. */
struct bad_case {
	const char *name;
	int which;            /* 1, 2 */
	int edit;             /* see apply_edit */
	int expect;
};

enum { E_MAGIC0, E_MAGIC3, E_LEN0, E_LEN8, E_LEN_SHORT1, E_NCIPHERS0, E_NCIPHERS_BIG,
       E_PUB_INFINITY, E_PUB_UNCOMPRESSED, E_PUB_OFFCURVE, E_PUB_LENFIELD, E_PUB_X_GE_P,
       E_LEN_LONG_IGNORED };

static const struct bad_case bad_cases[] = {
	{ "magic byte 0", 1, E_MAGIC0, TC_ERR_MAGIC },
	{ "magic byte 3", 1, E_MAGIC3, TC_ERR_MAGIC },
	{ "Init2 magic byte 0", 2, E_MAGIC0, TC_ERR_MAGIC },
	{ "Init2 magic byte 3", 2, E_MAGIC3, TC_ERR_MAGIC },
	{ "Init2 sent as Init1", 1, -1, TC_ERR_MAGIC },
	{ "length 0", 1, E_LEN0, TC_ERR_LENGTH },
	{ "length 8", 2, E_LEN8, TC_ERR_LENGTH },
	{ "length one short", 1, E_LEN_SHORT1, TC_ERR_LENGTH },
	{ "Init2 length one short", 2, E_LEN_SHORT1, TC_ERR_LENGTH },
	{ "nciphers 0", 1, E_NCIPHERS0, TC_ERR_NCIPHERS },
	{ "nciphers > fits", 1, E_NCIPHERS_BIG, TC_ERR_LENGTH },
	{ "pubkey infinity", 1, E_PUB_INFINITY, TC_ERR_PUBKEY },
	{ "pubkey uncompressed prefix", 2, E_PUB_UNCOMPRESSED, TC_ERR_PUBKEY },
	{ "pubkey off curve", 1, E_PUB_OFFCURVE, TC_ERR_PUBKEY },
	{ "pubkey x >= p", 2, E_PUB_X_GE_P, TC_ERR_PUBKEY },
	{ "pubkey_len field", 1, E_PUB_LENFIELD, TC_ERR_PUBKEY },
	{ "pubkey_len field Init2", 2, E_PUB_LENFIELD, TC_ERR_PUBKEY },
	{ "long length + ignored bytes", 1, E_LEN_LONG_IGNORED, 0 },
	{ "long length + ignored bytes Init2", 2, E_LEN_LONG_IGNORED, 0 },
};

/* an x with no P-256/P-521 point: x = 0..0 03? found by search below */
static int off_curve_x(uint8_t tep, uint8_t *pub)
{
	size_t L = tc_kex_pub_len(tep);
	for (int x = 1; x < 64; x++) {
		memset(pub + 3, 0, L - 3);
		pub[L - 1] = (uint8_t)x;
		pub[2] = 2;
		if (tc_kex_check_pub(tep, pub, L) == TC_ERR_PUBKEY)
			return 1;
	}
	return 0;
}

Test(init, malformed_table)
{
	for (size_t c = 0; c < sizeof bad_cases / sizeof bad_cases[0]; c++) {
		const struct bad_case *bc = &bad_cases[c];
		for (size_t t = 0; t < 4; t++) {
			uint8_t buf[2048];
			struct tc_init_parser p;
			struct tc_init_msg m;
			tc_kex *k;
			uint8_t tep = teps[t];
			int ec = tep == 0x21 || tep == 0x22;
			int which = bc->which;
			size_t len;
			if (bc->edit == -1)
				len = make_init2(buf, tep, &k);
			else
				len = which == 1 ? make_init1(buf, tep, &k) : make_init2(buf, tep, &k);
			tc_kex_free(k);
			size_t pl = tc_kex_pub_len(tep), pub = len - pl;
			switch (bc->edit) {
			case E_MAGIC0: buf[0] ^= 1; break;
			case E_MAGIC3: buf[3] ^= 0x80; break;
			case E_LEN0: memset(buf + 4, 0, 4); break;
			case E_LEN8: memset(buf + 4, 0, 4); buf[7] = 8; break;
			case E_LEN_SHORT1: buf[7]--; break;
			case E_NCIPHERS0: buf[8] = 0; break;
			case E_NCIPHERS_BIG: buf[8] = 4; break;
			case E_PUB_INFINITY: if (!ec) continue; buf[pub + 2] = 0; break;
			case E_PUB_UNCOMPRESSED: if (!ec) continue; buf[pub + 2] = 4; break;
			case E_PUB_OFFCURVE: if (!ec) continue; cr_assert(off_curve_x(tep, buf + pub)); break;
			case E_PUB_X_GE_P:
				if (!ec) continue;
				memset(buf + pub + 3, 0xff, pl - 3);
				if (tep == 0x22) buf[pub + 3] = 1;
				break;
			case E_PUB_LENFIELD: if (!ec) continue; buf[pub + 1] -= 2; break;
			case E_LEN_LONG_IGNORED: {
				/* message_len covers 100 extra "ignored" bytes (§4.1) */
				uint32_t m2 = (uint32_t)len + 100;
				buf[4] = (uint8_t)(m2 >> 24); buf[5] = (uint8_t)(m2 >> 16);
				buf[6] = (uint8_t)(m2 >> 8); buf[7] = (uint8_t)m2;
				memset(buf + len, 0x5a, 100);
				/* without the ignored bytes: need more */
				cr_assert_eq(tc_init_parse(&p, which, tep, buf, len, &m), TC_NEED_MORE);
				len += 100;
				break;
			}
			}
			int r = tc_init_parse(&p, which, tep, buf, len, &m);
			cr_assert_eq(r, bc->expect, "%s, TEP %02x: got %s", bc->name, tep, tc_strerror(r));
			if (bc->expect == 0)
				cr_assert_eq(m.msg_len, len);
			/* the error shows up the same way in a byte-by-byte stream */
			tc_init_parser_start(&p, which, tep);
			size_t off = 0, u;
			do {
				r = tc_init_parser_feed(&p, buf + off, 1, &u);
				off += u;
			} while ((r == TC_NEED_MORE || r == TC_INIT_FIXED) && off < len);
			if (r == TC_INIT_FIXED)
				r = tc_init_parser_feed(&p, buf + off, 0, &u);
			cr_assert_eq(r, bc->expect, "%s (stream), TEP %02x: got %s", bc->name, tep, tc_strerror(r));
		}
	}
}

/* The optional local limit on message_len (tc_config.init_max). */
Test(init, local_length_limit)
{
	struct tc_config cb = cfg_base(TC_ROLE_B, 0x23);
	tc_session *b;
	uint8_t buf[1024];
	tc_kex *k;
	size_t len = make_init1(buf, 0x23, &k), used;
	tc_kex_free(k);
	cb.init_max = (uint32_t)len;
	cr_assert_eq(tc_session_new(&cb, &b), 0);
	cr_assert_eq(tc_session_handshake_in(b, buf, len, &used), 0, "exactly at the limit");
	tc_session_free(b);
	buf[7]++;   /* one ignored byte */
	buf[len] = 0;
	cr_assert_eq(tc_session_new(&cb, &b), 0);
	cr_assert_eq(tc_session_handshake_in(b, buf, len + 1, &used), TC_ERR_LENGTH);
	cr_assert_eq(used, 8);
	tc_session_free(b);
	cb.init_max = 0;
	cr_assert_eq(tc_session_new(&cb, &b), 0);
	cr_assert_eq(tc_session_handshake_in(b, buf, len + 1, &used), 0, "no limit by default");
	tc_session_free(b);
}

/* A session fed a malformed Init aborts and stays failed. */
Test(init, session_rejects_and_fails)
{
	struct tc_config cb = cfg_base(TC_ROLE_B, 0x23);
	tc_session *b;
	uint8_t buf[1024];
	tc_kex *k;
	size_t len = make_init1(buf, 0x23, &k), used;
	tc_kex_free(k);
	buf[2] ^= 0xff;
	cr_assert_eq(tc_session_new(&cb, &b), 0);
	cr_assert_eq(tc_session_handshake_in(b, buf, len, &used), TC_ERR_MAGIC);
	cr_assert_eq(used, 2, "stopped at the first bad byte");
	cr_assert_eq(tc_session_state(b), TC_FAILED);
	cr_assert_eq(tc_session_handshake_in(b, buf, len, &used), TC_ERR_STATE);
	tc_session_free(b);
}

/* X25519: an all-zero Pub_B gives an all-zero secret: A aborts (§5). */
Test(init, x25519_zero_pubkey_rejected)
{
	struct tc_config ca = cfg_base(TC_ROLE_A, 0x23);
	tc_session *a;
	const uint8_t *m;
	uint8_t buf[1024], nb[32] = { 0 }, zero[32] = { 0 };
	size_t len, used;
	cr_assert_eq(tc_session_new(&ca, &a), 0);
	cr_assert_eq(tc_session_handshake_out(a, &m, &len), 0);
	cr_assert_eq(tc_init2_encode(buf, sizeof buf, &len, 1, nb, zero, 32), 0);
	cr_assert_eq(tc_session_handshake_in(a, buf, len, &used), TC_ERR_KEX);
	cr_assert_eq(tc_session_state(a), TC_FAILED);
	tc_session_free(a);
	/* and B for Init1 */
	struct tc_config cb = cfg_base(TC_ROLE_B, 0x24);
	tc_session *b;
	static const uint16_t c1[] = { 1 };
	uint8_t z56[56] = { 0 };
	cr_assert_eq(tc_init1_encode(buf, sizeof buf, &len, c1, 1, nb, z56, 56), 0);
	cr_assert_eq(tc_session_new(&cb, &b), 0);
	cr_assert_eq(tc_session_handshake_in(b, buf, len, &used), TC_ERR_KEX);
	tc_session_free(b);
}

/* §3.3: A MUST abort if B picks an AEAD A did not offer. */
Test(init, a_rejects_unoffered_aead)
{
	static const uint16_t offer[] = { TCPINC_AEAD_AES_128_GCM };
	static const uint16_t picks[] = { TCPINC_AEAD_AES_256_GCM, TCPINC_AEAD_CHACHA20_POLY1305, 0x0003, 0 };
	for (size_t i = 0; i < 4; i++) {
		struct tc_config ca = cfg_base(TC_ROLE_A, 0x23);
		ca.aconf = offer;
		ca.naconf = 1;
		tc_session *a;
		tc_kex *k;
		uint8_t buf[256], nb[32] = { 1 };
		size_t len, used;
		cr_assert_eq(tc_session_new(&ca, &a), 0);
		cr_assert_eq(tc_kex_generate(0x23, &k), 0);
		cr_assert_eq(tc_init2_encode(buf, sizeof buf, &len, picks[i], nb, tc_kex_pub(k), 32), 0);
		cr_assert_eq(tc_session_handshake_in(a, buf, len, &used), TC_ERR_AEAD_NOT_OFFERED);
		tc_kex_free(k);
		tc_session_free(a);
	}
}

/* B: BCONF in increasing order of preference (api-06), intersected with
 * A's offer; no intersection ⇒ abort. */
Test(init, b_picks_by_preference)
{
	struct {
		uint16_t aconf[3]; size_t na;
		uint16_t bconf[3]; size_t nb;
		int expect;     /* AEAD id or error */
	} t[] = {
		{ { 1, 2, 16 }, 3, { 16, 1 }, 2, 1 },
		{ { 1, 2, 16 }, 3, { 1, 16 }, 2, 16 },
		{ { 16, 1 }, 2, { 2, 1, 16 }, 3, 16 },
		{ { 2 }, 1, { 2, 1, 16 }, 3, 2 },
		{ { 1 }, 1, { 2, 16 }, 2, TC_ERR_NO_AEAD },
	};
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		struct tc_config ca = cfg_base(TC_ROLE_A, 0x23), cb = cfg_base(TC_ROLE_B, 0x23);
		ca.aconf = t[i].aconf;
		ca.naconf = t[i].na;
		cb.bconf = t[i].bconf;
		cb.nbconf = t[i].nb;
		tc_session *a, *b;
		const uint8_t *m;
		size_t len, used;
		cr_assert_eq(tc_session_new(&ca, &a), 0);
		cr_assert_eq(tc_session_new(&cb, &b), 0);
		cr_assert_eq(tc_session_handshake_out(a, &m, &len), 0);
		int r = tc_session_handshake_in(b, m, len, &used);
		if (t[i].expect < 0) {
			cr_assert_eq(r, t[i].expect);
		} else {
			cr_assert_eq(r, 0);
			cr_assert_eq(tc_session_aead(b), t[i].expect, "case %zu", i);
			cr_assert_eq(tc_session_handshake_out(b, &m, &len), 0);
			cr_assert_eq(tc_session_handshake_in(a, m, len, &used), 0);
			cr_assert_eq(tc_session_aead(a), t[i].expect);
		}
		tc_session_free(a);
		tc_session_free(b);
	}
	/* an unsupported id in our own lists is a configuration error */
	struct tc_config ca = cfg_base(TC_ROLE_A, 0x23);
	static const uint16_t bad[] = { 1, 7 };
	ca.aconf = bad;
	ca.naconf = 2;
	tc_session *a;
	cr_assert_eq(tc_session_new(&ca, &a), TC_ERR_UNSUPPORTED);
}

/* ---- sessions: both roles agree, all TEPs × AEADs --------------------------------------- */

Test(session, all_teps_all_aeads_agree)
{
	for (size_t t = 0; t < 4; t++)
		for (size_t a = 0; a < 3; a++) {
			struct tc_config ca = cfg_base(TC_ROLE_A, teps[t]), cb = cfg_base(TC_ROLE_B, teps[t]);
			cb.bconf = &aeads[a];
			cb.nbconf = 1;
			struct pair p;
			handshake(&p, &ca, &cb);
			cr_assert_eq(tc_session_aead(p.a), aeads[a]);
			cr_assert_eq(tc_session_aead(p.b), aeads[a]);
			const uint8_t *ia = tc_session_id(p.a), *ib = tc_session_id(p.b);
			cr_assert(ia && ib);
			cr_assert(memcmp(ia, ib, TC_SESSID_LEN) == 0, "session IDs differ");
			cr_assert_eq(ia[0], teps[t], "first byte = TEP with v = 0");
			/* offsets include the Init messages (docs/DESIGN.md, Readings) */
			cr_assert_eq(tc_session_tx_offset(p.a), p.init1_len);
			cr_assert_eq(tc_session_rx_offset(p.b), p.init1_len);
			cr_assert_eq(tc_session_tx_offset(p.b), p.init2_len);
			cr_assert_eq(tc_session_rx_offset(p.a), p.init2_len);
			for (int mode = 0; mode < 3; mode++) {
				transfer(p.a, p.b, mode == 1 ? 3000 : 20000, mode);
				transfer(p.b, p.a, mode == 1 ? 3000 : 20000, mode);
			}
			pair_free(&p);
		}
}

/* Two sessions never share keys: fresh ephemeral keys and nonces. */
Test(session, distinct_sessions_distinct_ids)
{
	struct tc_config ca = cfg_base(TC_ROLE_A, 0x23), cb = cfg_base(TC_ROLE_B, 0x23);
	struct pair p, q;
	handshake(&p, &ca, &cb);
	handshake(&q, &ca, &cb);
	cr_assert(memcmp(tc_session_id(p.a), tc_session_id(q.a), TC_SESSID_LEN) != 0);
	/* q.b cannot read p.a's frames */
	uint8_t f[64], out[64];
	size_t fl, used;
	struct tc_iov d = { (const uint8_t *)"x", 1 };
	struct tc_iov_mut o = { out, sizeof out };
	struct tc_frame_info fi;
	cr_assert_eq(tc_frame_seal(p.a, &d, 1, 0, 0, f, sizeof f, &fl), 0);
	cr_assert_eq(tc_frame_read(q.b, f, fl, &used, &o, 1, &fi), TC_ERR_AUTH);
	pair_free(&p);
	pair_free(&q);
}

/* Init and frames in one buffer: handshake_in stops at the message end. */
Test(session, init_followed_by_frames_in_one_buffer)
{
	struct tc_config ca = cfg_base(TC_ROLE_A, 0x23), cb = cfg_base(TC_ROLE_B, 0x23);
	tc_session *a, *b;
	const uint8_t *m;
	size_t len, used, fl;
	uint8_t buf[512], out[64];
	cr_assert_eq(tc_session_new(&ca, &a), 0);
	cr_assert_eq(tc_session_new(&cb, &b), 0);
	cr_assert_eq(tc_session_handshake_out(a, &m, &len), 0);
	cr_assert_eq(tc_session_handshake_in(b, m, len, &used), 0);
	cr_assert_eq(tc_session_handshake_out(b, &m, &len), 0);
	memcpy(buf, m, len);
	/* B may send data right after Init2 (§3.3) */
	struct tc_iov d = { (const uint8_t *)"early", 5 };
	cr_assert_eq(tc_frame_seal(b, &d, 1, 0, 0, buf + len, sizeof buf - len, &fl), 0);
	cr_assert_eq(tc_session_handshake_in(a, buf, len + fl, &used), 0);
	cr_assert_eq(used, len);
	struct tc_iov_mut o = { out, sizeof out };
	struct tc_frame_info fi;
	cr_assert_eq(tc_frame_read(a, buf + used, fl, &used, &o, 1, &fi), TC_FRAME_DONE);
	cr_assert_eq(fi.data_len, 5);
	cr_assert(memcmp(out, "early", 5) == 0);
	tc_session_free(a);
	tc_session_free(b);
}

/* Trailing "ignored" bytes are accepted, skipped, count in the offset, and
 * are part of the PRK input (they are in the transmitted encoding).
 * Checked against an independent PRK computation from the keylog. */
Test(session, ignored_bytes_in_prk_and_offset)
{
	struct tc_config ca = cfg_base(TC_ROLE_A, 0x23), cb = cfg_base(TC_ROLE_B, 0x23);
	cb.keylog = 1;
	tc_session *a, *b;
	const uint8_t *m;
	uint8_t i1[1024], frame[64];
	size_t len, used, l2;
	cr_assert_eq(tc_session_new(&ca, &a), 0);
	cr_assert_eq(tc_session_new(&cb, &b), 0);
	cr_assert_eq(tc_session_handshake_out(a, &m, &len), 0);
	memcpy(i1, m, len);
	uint32_t m2 = (uint32_t)len + 300;
	i1[4] = (uint8_t)(m2 >> 24); i1[5] = (uint8_t)(m2 >> 16); i1[6] = (uint8_t)(m2 >> 8); i1[7] = (uint8_t)m2;
	for (size_t i = 0; i < 300; i++)
		i1[len + i] = (uint8_t)i;
	/* feed in odd splits */
	size_t off = 0;
	int r = TC_NEED_MORE;
	while (off < m2) {
		size_t c = 1 + rnd() % 77;
		if (c > m2 - off)
			c = m2 - off;
		r = tc_session_handshake_in(b, i1 + off, c, &used);
		off += used;
	}
	cr_assert_eq(r, 0);
	cr_assert_eq(tc_session_rx_offset(b), m2);
	/* independent: PRK = HMAC(N_A, transcript | Init1(with ignored) | Init2 | ES) */
	char kl[TC_KEYLOG_MAX];
	cr_assert_gt(tc_session_keylog(b, kl, sizeof kl), 0);
	cr_assert_eq(tc_session_keylog(b, kl, sizeof kl), TC_ERR_STATE, "keylog line handed out once");
	uint8_t na[32], es[32], prk[32], sid[33];
	cr_assert_eq(strncmp(kl, "TCPCRYPT_ES ", 12), 0);
	unhexn(na, 32, kl + 12);
	cr_assert_eq(kl[12 + 64], ' ');
	unhexn(es, 32, kl + 12 + 65);
	cr_assert(memcmp(na, i1 + 15, 32) == 0, "keylog N_A");
	cr_assert_eq(tc_session_handshake_out(b, &m, &l2), 0);
	uint8_t ikm[2048];
	size_t il = 0;
	memcpy(ikm, transcript, sizeof transcript); il += sizeof transcript;
	memcpy(ikm + il, i1, m2); il += m2;
	memcpy(ikm + il, m, l2); il += l2;
	memcpy(ikm + il, es, 32); il += 32;
	unsigned ol = 32;
	cr_assert(HMAC(EVP_sha256(), na, 32, ikm, il, prk, &ol));
	sid[0] = 0x23;
	const uint8_t c2 = 2;
	ref_cprf(sid + 1, 32, prk, 32, &c2, 1);
	cr_assert(memcmp(sid, tc_session_id(b), 33) == 0, "session ID from independent PRK");
	/* A hashed Init1 without the ignored bytes: keys differ, frames fail */
	cr_assert_eq(tc_session_handshake_in(a, m, l2, &used), 0);
	cr_assert(memcmp(tc_session_id(a), tc_session_id(b), 33) != 0);
	struct tc_iov d = { (const uint8_t *)"x", 1 };
	size_t fl;
	cr_assert_eq(tc_frame_seal(b, &d, 1, 0, 0, frame, sizeof frame, &fl), 0);
	uint8_t out[8];
	struct tc_iov_mut o = { out, 8 };
	struct tc_frame_info fi;
	cr_assert_eq(tc_frame_read(a, frame, fl, &used, &o, 1, &fi), TC_ERR_AUTH);
	tc_session_free(a);
	tc_session_free(b);
}

/* ---- key-schedule known-answer test ----------------------------------------------------
 *
 * Computed independently with this python3 script (hashlib/hmac for HKDF,
 * `cryptography` 48 for X25519 and ChaCha20-Poly1305), inputs: RFC 7748
 * §6.1 private keys (A = Alice, B = Bob), N_A = a0..bf, N_B = b0..cf, ENO
 * transcript 45 04 21 23 45 04 01 23, A offers {0x0001, 0x0010}, B prefers
 * (increasing) {0x0001, 0x0010} ⇒ ChaCha20-Poly1305:
 *
 *   def H(k, m): return hmac.new(k, m, hashlib.sha256).digest()
 *   def cprf(k, c, L):
 *       t = b''; o = b''; n = 1
 *       while len(o) < L: t = H(k, t + c + bytes([n])); o += t; n += 1
 *       return o[:L]
 *   body1 = bytes([2]) + h('00010010') + NA + pa
 *   init1 = h('15101a0e') + (8 + len(body1)).to_bytes(4, 'big') + body1
 *   body2 = h('0010') + NB + pb
 *   init2 = h('097105e0') + (8 + len(body2)).to_bytes(4, 'big') + body2
 *   es = a.exchange(b.public_key())
 *   prk = H(NA, tr + init1 + init2 + es)
 *   sid = b'\x23' + cprf(prk, b'\x02', 32)
 *   mk0 = cprf(prk, b'\x03', 32); mk1 = cprf(mk0, b'\x03', 32)
 *   kab0 = cprf(mk0, b'\x04', 44); kba0 = cprf(mk0, b'\x05', 44); kab1 = cprf(mk1, b'\x04', 44)
 *   ss1 = cprf(prk, b'\x01', 32); res1 = cprf(ss1, b'\x06', 18)
 *   def frame(k, off, ctl, pt):
 *       nonce = xor(k[32:], bytes(4) + off.to_bytes(8, 'big'))
 *       ad = bytes([ctl]) + (len(pt) + 16).to_bytes(2, 'big')
 *       return ad + ChaCha20Poly1305(k[:32]).encrypt(nonce, pt, ad)
 *   f1 = frame(kab0, len(init1), 0, b'\x00hello')            # A -> B
 *   f2 = frame(kba0, len(init2), 0, b'\x01world!')           # B -> A, FINp
 *   f3 = frame(kab1, len(init1) + len(f1), 1, b'\x02\x00\x07rk')  # rekey, URGp 7
 */
#define KAT_SK_A "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"
#define KAT_SK_B "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb"
#define KAT_INIT1 "15101a0e0000004d0200010010a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf" \
                  "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"
#define KAT_INIT2 "097105e00000004a0010b0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0c1c2c3c4c5c6c7c8c9cacbcccdcecf" \
                  "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f"
#define KAT_ES "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742"
#define KAT_SESSID "23695f97eb475f3c50360b6440b8fd381da196cc9b43eb917a47540f00e67094f3"
#define KAT_KAB0 "f38096e426aed7de36ea145bf83dc20a7680d573ba0cbe1a79f8b004f8cec2be318238404bc3f13b96a5bacd"
#define KAT_SS1 "7f27cb44b00dafdc57c3140c843356047cd199f7cd5c2a66509622a0f5df5a8c"
#define KAT_RESUME1 "b46b299c6a58cabaee6820eda45a8620de3d"
#define KAT_F1 "0000166f7a097d9bb6d0aa99c906b72b51a8b47c7649fbaf78"
#define KAT_F2 "000017c273747586bef291ceac904f53740119fb07480688eb29"
#define KAT_F3 "010015befcda40d6b4e354be13a165c41c473fdd906e9c52"

static void kat_pair(struct pair *p, tc_cache *ca_cache, tc_cache *cb_cache)
{
	static const uint16_t offer[] = { 0x0001, 0x0010 }, pref[] = { 0x0001, 0x0010 };
	uint8_t ska[32], skb[32], na[32], nb[32];
	tc_kex *ka, *kb;
	for (int i = 0; i < 32; i++) {
		na[i] = (uint8_t)(0xa0 + i);
		nb[i] = (uint8_t)(0xb0 + i);
	}
	unhex(ska, 32, KAT_SK_A);
	unhex(skb, 32, KAT_SK_B);
	cr_assert_eq(tc_kex_from_private(0x23, ska, 32, &ka), 0);
	cr_assert_eq(tc_kex_from_private(0x23, skb, 32, &kb), 0);
	struct tc_config ca = cfg_base(TC_ROLE_A, 0x23), cb = cfg_base(TC_ROLE_B, 0x23);
	ca.aconf = offer; ca.naconf = 2; ca.kex = ka; ca.nonce = na; ca.keylog = 1;
	cb.bconf = pref; cb.nbconf = 2; cb.kex = kb; cb.nonce = nb; cb.keylog = 1;
	ca.cache = ca_cache; ca.peer = (const uint8_t *)"hostB"; ca.peer_len = 5; ca.cache_expiry = 1000;
	cb.cache = cb_cache; cb.peer = (const uint8_t *)"hostA"; cb.peer_len = 5; cb.cache_expiry = 1000;
	handshake(p, &ca, &cb);
}

Test(kat, fresh_session_python_derived)
{
	struct pair p;
	tc_cache *cache;
	cr_assert_eq(tc_cache_new(8, &cache), 0);
	kat_pair(&p, cache, NULL);
	assert_hex(p.init1, p.init1_len, KAT_INIT1, "Init1");
	assert_hex(p.init2, p.init2_len, KAT_INIT2, "Init2");
	assert_hex(tc_session_id(p.a), TC_SESSID_LEN, KAT_SESSID, "session ID (A)");
	assert_hex(tc_session_id(p.b), TC_SESSID_LEN, KAT_SESSID, "session ID (B)");
	cr_assert_eq(tc_session_aead(p.a), TCPINC_AEAD_CHACHA20_POLY1305);

	/* keylog: TCPCRYPT_ES <N_A> <ES> */
	char kl[TC_KEYLOG_MAX];
	cr_assert_eq(tc_session_keylog(p.a, kl, sizeof kl), 12 + 64 + 1 + 64);
	cr_assert_str_eq(kl, "TCPCRYPT_ES a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf " KAT_ES);

	/* frames: nonce = offset (counting Init1/Init2) XOR NR */
	uint8_t f[128], out[64];
	size_t fl, used;
	struct tc_iov d = { (const uint8_t *)"hello", 5 };
	cr_assert_eq(tc_frame_seal(p.a, &d, 1, 0, 0, f, sizeof f, &fl), 0);
	assert_hex(f, fl, KAT_F1, "frame 1 (A->B at offset 77)");
	struct tc_iov_mut o = { out, sizeof out };
	struct tc_frame_info fi;
	cr_assert_eq(tc_frame_read(p.b, f, fl, &used, &o, 1, &fi), TC_FRAME_DONE);
	cr_assert_eq(fi.data_len, 5);
	cr_assert(memcmp(out, "hello", 5) == 0);

	d.p = (const uint8_t *)"world!";
	d.len = 6;
	cr_assert_eq(tc_frame_seal(p.b, &d, 1, TC_FLAG_FIN, 0, f, sizeof f, &fl), 0);
	assert_hex(f, fl, KAT_F2, "frame 2 (B->A at offset 74, FINp)");
	cr_assert_eq(tc_frame_read(p.a, f, fl, &used, &o, 1, &fi), TC_FRAME_DONE);
	cr_assert_eq(fi.flags, TC_FLAG_FIN);
	cr_assert(memcmp(out, "world!", 6) == 0);

	/* A re-keys: rekey = 1, k_ab[1], URGp with urgent = 7 */
	cr_assert_eq(tc_session_rekey(p.a), 0);
	d.p = (const uint8_t *)"rk";
	d.len = 2;
	cr_assert_eq(tc_frame_seal(p.a, &d, 1, TC_FLAG_URG, 7, f, sizeof f, &fl), 0);
	assert_hex(f, fl, KAT_F3, "frame 3 (rekey, URGp)");
	cr_assert_eq(tc_frame_read(p.b, f, fl, &used, &o, 1, &fi), TC_FRAME_DONE);
	cr_assert_eq(fi.rekey, 1);
	cr_assert_eq(fi.flags, TC_FLAG_URG);
	cr_assert_eq(fi.urgent, 7);
	cr_assert_eq(fi.data_len, 2);
	cr_assert(memcmp(out, "rk", 2) == 0);
	/* B has sent FIN: it owes no rekey frame any more */
	cr_assert_eq(tc_session_rekey_pending(p.b), 0);

	/* A's cache holds ss[1] under the resumption id resume[1] */
	tc_resume *r;
	uint8_t sub[TC_RESUME_SUBOPT_MAX];
	cr_assert_eq(tc_cache_count(cache), 1);
	cr_assert_eq(tc_resume_propose(cache, 0, (const uint8_t *)"hostB", 5, 0x23, 10, 0, &r), 0);
	cr_assert_eq(tc_resume_suboption(r, sub), 9);
	assert_hex(sub, 9, "b46b299c6a58cabaee", "A's half resume[1]{0..8}");
	uint8_t half_b[9];
	unhex(half_b, 9, "6820eda45a8620de3d");
	cr_assert_eq(tc_resume_check_reply(r, half_b, 9), 0);
	struct tc_config cr = cfg_base(TC_ROLE_A, 0x23);
	cr.keylog = 1;
	tc_session *s;
	cr_assert_eq(tc_session_new_resumed(&cr, r, &s), 0);
	cr_assert_eq(tc_session_keylog(s, kl, sizeof kl), 12 + 36 + 1 + 64);
	cr_assert_str_eq(kl, "TCPCRYPT_SS " KAT_RESUME1 " " KAT_SS1);
	/* resumed, empty nonces: session ID = 0xa3 | CPRF(ss1, 02, 32) */
	uint8_t ss1[32], sid[33];
	const uint8_t c2 = 2;
	unhex(ss1, 32, KAT_SS1);
	sid[0] = 0xa3;
	ref_cprf(sid + 1, 32, ss1, 32, &c2, 1);
	cr_assert(memcmp(sid, tc_session_id(s), 33) == 0);
	cr_assert_eq(tc_session_tx_offset(s), 0, "resumed sessions start at offset 0");
	tc_session_free(s);
	pair_free(&p);
	tc_cache_free(cache);
}

/* Frames built by hand with the KAT traffic key k_ab[0]: reserved control
 * bits are ignored on receipt (§4.2), URGp without room for urgent is an
 * error, and any bit flipped in the header fails authentication. */
static size_t hand_frame(uint8_t *out, uint8_t control, const uint8_t *pt, size_t ptlen, uint64_t off)
{
	uint8_t k[44], nonce[12];
	tc_aead *a;
	unhex(k, 44, KAT_KAB0);
	memcpy(nonce, k + 32, 12);
	for (int i = 0; i < 8; i++)
		nonce[11 - i] ^= (uint8_t)(off >> (8 * i));
	size_t clen = ptlen + 16;
	out[0] = control;
	out[1] = (uint8_t)(clen >> 8);
	out[2] = (uint8_t)clen;
	struct tc_iov in = { pt, ptlen };
	cr_assert_eq(tc_aead_new(0x0010, 1, &a), 0);
	cr_assert_eq(tc_aead_setkey(a, k, 32), 0);
	cr_assert_eq(tc_aead_seal(a, nonce, out, 3, &in, 1, out + 3), 0);
	tc_aead_free(a);
	return 3 + clen;
}

Test(kat, hand_built_frames)
{
	struct pair p;
	uint8_t f[128], out[64];
	size_t fl, used;
	struct tc_iov_mut o = { out, sizeof out };
	struct tc_frame_info fi;

	/* cres bits set: accepted (and authenticated as AD) */
	kat_pair(&p, NULL, NULL);
	fl = hand_frame(f, 0xfe, (const uint8_t *)"\xfc" "abc", 4, 77);
	cr_assert_eq(tc_frame_read(p.b, f, fl, &used, &o, 1, &fi), TC_FRAME_DONE);
	cr_assert_eq(fi.flags, 0, "fres bits ignored");
	cr_assert_eq(fi.data_len, 3);
	cr_assert_eq(fi.rekey, 0);
	/* the same frame at the wrong offset fails: the offset is in the nonce */
	fl = hand_frame(f, 0, (const uint8_t *)"\0abc", 4, 77);
	cr_assert_eq(tc_frame_read(p.b, f, fl, &used, &o, 1, &fi), TC_ERR_AUTH);
	pair_free(&p);

	/* URGp with a 2-byte plaintext: authentic but malformed */
	kat_pair(&p, NULL, NULL);
	fl = hand_frame(f, 0, (const uint8_t *)"\x02\x00", 2, 77);
	cr_assert_eq(tc_frame_read(p.b, f, fl, &used, &o, 1, &fi), TC_ERR_URGENT);
	pair_free(&p);

	/* flipped bits: control (rekey and a cres bit), clen, ciphertext, tag */
	for (int which = 0; which < 5; which++) {
		kat_pair(&p, NULL, NULL);
		fl = hand_frame(f, 0, (const uint8_t *)"\0abcdef", 7, 77);
		switch (which) {
		case 0: f[0] ^= 0x40; break;
		case 1: f[0] ^= 0x01; break;     /* rekey: decrypts with k_ab[1] */
		case 2: f[2] ^= 0x01; break;     /* clen 23 -> 22 */
		case 3: f[5] ^= 0x20; break;
		case 4: f[fl - 1] ^= 0x01; break;
		}
		int r = tc_frame_read(p.b, f, fl, &used, &o, 1, &fi);
		cr_assert_eq(r, TC_ERR_AUTH, "flip %d: %s", which, tc_strerror(r));
		cr_assert_eq(tc_session_state(p.b), TC_FAILED);
		cr_assert_eq(tc_frame_read(p.b, f, fl, &used, &o, 1, &fi), TC_ERR_STATE);
		pair_free(&p);
	}
	/* clen grown by one: the reader waits for one more byte, then fails */
	kat_pair(&p, NULL, NULL);
	fl = hand_frame(f, 0, (const uint8_t *)"\0abcdef", 7, 77);
	f[2]++;
	cr_assert_eq(tc_frame_read(p.b, f, fl, &used, &o, 1, &fi), TC_NEED_MORE);
	cr_assert_eq(used, fl);
	f[fl] = 0;
	cr_assert_eq(tc_frame_read(p.b, f + fl, 1, &used, &o, 1, &fi), TC_ERR_AUTH);
	pair_free(&p);
}

/* ---- frames ------------------------------------------------------------------------------------ */

static void fresh_pair(struct pair *p, uint8_t tep, uint16_t aead)
{
	struct tc_config ca = cfg_base(TC_ROLE_A, tep), cb = cfg_base(TC_ROLE_B, tep);
	cb.bconf = &aead;
	cb.nbconf = 1;
	handshake(p, &ca, &cb);
}

Test(frame, truncated_never_commits)
{
	struct pair p;
	fresh_pair(&p, 0x23, 1);
	uint8_t f[256], out[256];
	size_t fl, used;
	uint8_t data[100];
	memset(data, 0x42, sizeof data);
	struct tc_iov d = { data, sizeof data };
	cr_assert_eq(tc_frame_seal(p.a, &d, 1, 0, 0, f, sizeof f, &fl), 0);
	struct tc_iov_mut o = { out, sizeof out };
	struct tc_frame_info fi;
	cr_assert_eq(tc_frame_space_needed(p.b), 0);
	/* every prefix: need more, nothing reported */
	cr_assert_eq(tc_frame_read(p.b, f, 2, &used, &o, 1, &fi), TC_NEED_MORE);
	cr_assert_eq(tc_frame_space_needed(p.b), 0, "header incomplete");
	cr_assert_eq(tc_frame_read(p.b, f + 2, 1, &used, &o, 1, &fi), TC_NEED_MORE);
	cr_assert_eq(tc_frame_space_needed(p.b), 100, "clen - 17");
	cr_assert_eq(tc_frame_read(p.b, f + 3, fl - 4, &used, &o, 1, &fi), TC_NEED_MORE);
	cr_assert_eq(fi.data_len, 0);
	cr_assert_eq(tc_frame_read(p.b, f + fl - 1, 1, &used, &o, 1, &fi), TC_FRAME_DONE);
	cr_assert_eq(fi.data_len, 100);
	pair_free(&p);
}

Test(frame, need_space_then_continue)
{
	struct pair p;
	fresh_pair(&p, 0x23, 2);
	uint8_t f[256], out[256];
	size_t fl, used;
	uint8_t data[100];
	memset(data, 0x17, sizeof data);
	struct tc_iov d = { data, sizeof data };
	cr_assert_eq(tc_frame_seal(p.a, &d, 1, 0, 0, f, sizeof f, &fl), 0);
	struct tc_iov_mut small = { out, 99 }, two[2] = { { out, 60 }, { out + 128, 40 } };
	struct tc_frame_info fi;
	cr_assert_eq(tc_frame_read(p.b, f, fl, &used, &small, 1, &fi), TC_NEED_SPACE);
	cr_assert_eq(used, 3, "header consumed");
	cr_assert_eq(tc_frame_space_needed(p.b), 100);
	cr_assert_eq(tc_frame_read(p.b, f + 3, fl - 3, &used, two, 2, &fi), TC_FRAME_DONE);
	cr_assert_eq(fi.data_len, 100);
	cr_assert(memcmp(out, data, 60) == 0);
	cr_assert(memcmp(out + 128, data, 40) == 0);
	pair_free(&p);
}

/* A ring's free space grows while a frame is in flight (the consumer
 * frees room at the ring start): same memory, longer second piece. */
Test(frame, region_grows_mid_frame)
{
	struct pair p;
	fresh_pair(&p, 0x23, 0x10);
	uint8_t f[2048], ring[1024], data[600];
	size_t fl, used, prod = 900;
	for (size_t i = 0; i < sizeof data; i++)
		data[i] = (uint8_t)(i * 13);
	struct tc_iov d = { data, sizeof data };
	cr_assert_eq(tc_frame_seal(p.a, &d, 1, 0, 0, f, sizeof f, &fl), 0);
	struct tc_frame_info fi;
	/* free: [900, 1024) + [0, 100): too small for 600 bytes */
	struct tc_iov_mut o[2] = { { ring + prod, 124 }, { ring, 100 } };
	cr_assert_eq(tc_frame_read(p.b, f, 200, &used, o, 2, &fi), TC_NEED_SPACE);
	cr_assert_eq(used, 3);
	cr_assert_eq(tc_frame_space_needed(p.b), 600);
	size_t off = used;
	o[1].len = 500;     /* consumer freed room: exactly enough */
	cr_assert_eq(tc_frame_read(p.b, f + off, 300, &used, o, 2, &fi), TC_NEED_MORE);
	off += used;
	o[1].len = 800;     /* more room appears mid-frame */
	cr_assert_eq(tc_frame_read(p.b, f + off, fl - off, &used, o, 2, &fi), TC_FRAME_DONE);
	cr_assert_eq(fi.data_len, 600);
	cr_assert(memcmp(ring + prod, data, 124) == 0);
	cr_assert(memcmp(ring, data + 124, 476) == 0);
	pair_free(&p);
}

Test(frame, short_clen_rejected)
{
	struct pair p;
	fresh_pair(&p, 0x23, 1);
	uint8_t f[3] = { 0, 0, 16 }, out[8];
	size_t used;
	struct tc_iov_mut o = { out, 8 };
	struct tc_frame_info fi;
	cr_assert_eq(tc_frame_read(p.b, f, 3, &used, &o, 1, &fi), TC_ERR_CLEN);
	pair_free(&p);
}

Test(frame, empty_and_maximal_frames)
{
	struct pair p;
	fresh_pair(&p, 0x23, 0x10);
	static uint8_t data[TC_FRAME_DATA_MAX + 1], f[TC_FRAME_MAX + 8], out[TC_FRAME_DATA_MAX];
	size_t fl, used;
	struct tc_frame_info fi;
	randombytes_buf(data, sizeof data);
	struct tc_iov d = { data, TC_FRAME_DATA_MAX + 1 };
	cr_assert_eq(tc_frame_seal(p.a, &d, 1, 0, 0, f, sizeof f, &fl), TC_ERR_ARG, "clen would be 2^16");
	d.len = TC_FRAME_DATA_MAX;
	cr_assert_eq(tc_frame_seal(p.a, &d, 1, 0, 0, f, sizeof f, &fl), 0);
	cr_assert_eq(fl, TC_FRAME_MAX);
	struct tc_iov_mut o = { out, sizeof out };
	cr_assert_eq(tc_frame_read(p.b, f, fl, &used, &o, 1, &fi), TC_FRAME_DONE);
	cr_assert_eq(fi.data_len, TC_FRAME_DATA_MAX);
	cr_assert(memcmp(out, data, TC_FRAME_DATA_MAX) == 0);
	cr_assert_eq(tc_frame_seal(p.a, NULL, 0, 0, 0, f, sizeof f, &fl), 0);
	cr_assert_eq(fl, 20);
	cr_assert_eq(tc_frame_read(p.b, f, fl, &used, &o, 1, &fi), TC_FRAME_DONE);
	cr_assert_eq(fi.data_len, 0);
	cr_assert_eq(tc_frame_seal(p.a, NULL, 0, 0, 0, f, 19, &fl), TC_ERR_SPACE);
	cr_assert_eq(tc_frame_seal(p.a, NULL, 0, 0x04, 0, f, sizeof f, &fl), TC_ERR_ARG, "fres must be 0");
	pair_free(&p);
}

Test(frame, finp_and_urgp)
{
	struct pair p;
	fresh_pair(&p, 0x24, 1);
	uint8_t f[256], out[64];
	size_t fl, used;
	struct tc_frame_info fi;
	struct tc_iov_mut o = { out, sizeof out };
	struct tc_iov d = { (const uint8_t *)"urgent!", 7 };
	cr_assert_eq(tc_frame_seal(p.a, &d, 1, TC_FLAG_URG, 0xbeef, f, sizeof f, &fl), 0);
	cr_assert_eq(fl, 3 + 1 + 2 + 7 + 16);
	cr_assert_eq(tc_frame_read(p.b, f, fl, &used, &o, 1, &fi), TC_FRAME_DONE);
	cr_assert_eq(fi.flags, TC_FLAG_URG);
	cr_assert_eq(fi.urgent, 0xbeef);
	cr_assert_eq(fi.data_len, 7);
	cr_assert(memcmp(out, "urgent!", 7) == 0);
	/* FINp on the last frame; nothing can follow it */
	d.p = (const uint8_t *)"bye";
	d.len = 3;
	cr_assert_eq(tc_frame_seal(p.a, &d, 1, TC_FLAG_FIN | TC_FLAG_URG, 1, f, sizeof f, &fl), 0);
	size_t fl2;
	cr_assert_eq(tc_frame_seal(p.a, &d, 1, 0, 0, f + fl, sizeof f - fl, &fl2), TC_ERR_STATE);
	cr_assert_eq(tc_session_rekey(p.a), TC_ERR_STATE);
	cr_assert_eq(tc_frame_read(p.b, f, fl, &used, &o, 1, &fi), TC_FRAME_DONE);
	cr_assert_eq(fi.flags, TC_FLAG_FIN | TC_FLAG_URG);
	/* a byte after the FINp frame is a protocol error */
	f[fl] = 0;
	cr_assert_eq(tc_frame_read(p.b, f + fl, 1, &used, &o, 1, &fi), TC_ERR_AFTER_FIN);
	pair_free(&p);
}

/* ---- re-keying (§3.8) ----------------------------------------------------------------------- */

static void one_frame(tc_session *from, tc_session *to, const char *msg, int expect_rekey)
{
	uint8_t f[256], out[256];
	size_t fl, used;
	struct tc_iov d = { (const uint8_t *)msg, strlen(msg) };
	struct tc_iov_mut o = { out, sizeof out };
	struct tc_frame_info fi;
	cr_assert_eq(tc_frame_seal(from, &d, 1, 0, 0, f, sizeof f, &fl), 0);
	cr_assert_eq(f[0] & 1, expect_rekey, "rekey bit on the wire");
	/* byte by byte */
	int r = TC_NEED_MORE;
	for (size_t i = 0; i < fl; i++) {
		r = tc_frame_read(to, f + i, 1, &used, &o, 1, &fi);
		cr_assert_eq(used, 1);
		if (i + 1 < fl)
			cr_assert_eq(r, TC_NEED_MORE);
	}
	cr_assert_eq(r, TC_FRAME_DONE, "%s", tc_strerror(r));
	cr_assert_eq(fi.rekey, expect_rekey);
	cr_assert_eq(fi.data_len, strlen(msg));
	cr_assert(memcmp(out, msg, fi.data_len) == 0);
}

static void gens(tc_session *s, uint64_t l, uint64_t r)
{
	uint64_t gl, gr;
	tc_session_generation(s, &gl, &gr);
	cr_assert_eq(gl, l, "local generation %lu, expected %lu", (unsigned long)gl, (unsigned long)l);
	cr_assert_eq(gr, r, "remote generation %lu, expected %lu", (unsigned long)gr, (unsigned long)r);
}

Test(rekey, both_directions_mid_stream)
{
	for (size_t a = 0; a < 3; a++) {
		struct pair p;
		fresh_pair(&p, 0x23, aeads[a]);
		transfer(p.a, p.b, 5000, 2);
		/* A initiates */
		cr_assert_eq(tc_session_rekey(p.a), 0);
		cr_assert_eq(tc_session_rekey(p.a), TC_ERR_AGAIN, "one at a time");
		gens(p.a, 1, 0);
		one_frame(p.a, p.b, "first under gen 1", 1);
		gens(p.b, 1, 1);
		cr_assert_eq(tc_session_rekey_pending(p.b), 1, "B must answer with rekey = 1");
		cr_assert_eq(tc_session_rekey(p.a), TC_ERR_AGAIN, "unanswered");
		one_frame(p.a, p.b, "second under gen 1", 0);
		/* B's answer: an empty frame with rekey = 1 */
		uint8_t f[64];
		size_t fl, used;
		uint8_t out[8];
		struct tc_iov_mut o = { out, 8 };
		struct tc_frame_info fi;
		cr_assert_eq(tc_frame_seal(p.b, NULL, 0, 0, 0, f, sizeof f, &fl), 0);
		cr_assert_eq(f[0], TC_CTRL_REKEY);
		cr_assert_eq(tc_session_rekey_pending(p.b), 0);
		cr_assert_eq(tc_frame_read(p.a, f, fl, &used, &o, 1, &fi), TC_FRAME_DONE);
		cr_assert_eq(fi.rekey, 1);
		cr_assert_eq(tc_session_rekey_pending(p.a), 0, "A was ahead: nothing owed");
		gens(p.a, 1, 1);
		transfer(p.a, p.b, 7000, 2);
		transfer(p.b, p.a, 7000, 1);
		/* B initiates, several times in a row */
		for (uint64_t g = 2; g < 6; g++) {
			cr_assert_eq(tc_session_rekey(p.b), 0);
			one_frame(p.b, p.a, "b rekeys", 1);
			gens(p.a, g, g);
			cr_assert_eq(tc_session_rekey_pending(p.a), 1);
			one_frame(p.a, p.b, "a answers with data", 1);
			gens(p.b, g, g);
			transfer(p.b, p.a, 3000, 2);
		}
		pair_free(&p);
	}
}

Test(rekey, simultaneous)
{
	struct pair p;
	fresh_pair(&p, 0x21, 1);
	cr_assert_eq(tc_session_rekey(p.a), 0);
	cr_assert_eq(tc_session_rekey(p.b), 0);
	uint8_t fa[64], fb[64], out[64];
	size_t la, lb, used;
	struct tc_iov d = { (const uint8_t *)"x", 1 };
	struct tc_iov_mut o = { out, sizeof out };
	struct tc_frame_info fi;
	cr_assert_eq(tc_frame_seal(p.a, &d, 1, 0, 0, fa, sizeof fa, &la), 0);
	cr_assert_eq(tc_frame_seal(p.b, &d, 1, 0, 0, fb, sizeof fb, &lb), 0);
	cr_assert_eq(tc_frame_read(p.a, fb, lb, &used, &o, 1, &fi), TC_FRAME_DONE);
	cr_assert_eq(tc_frame_read(p.b, fa, la, &used, &o, 1, &fi), TC_FRAME_DONE);
	gens(p.a, 1, 1);
	gens(p.b, 1, 1);
	cr_assert_eq(tc_session_rekey_pending(p.a), 0);
	cr_assert_eq(tc_session_rekey_pending(p.b), 0);
	transfer(p.a, p.b, 1000, 0);
	transfer(p.b, p.a, 1000, 0);
	pair_free(&p);
}

/* ---- resumption (§3.5) --------------------------------------------------------------------- */

struct hosts {
	tc_cache *ca, *cb;     /* host A's and host B's caches */
};

static void hosts_fresh(struct hosts *h, struct pair *p, uint8_t tep, unsigned pol_a, unsigned pol_b,
                        uint64_t expiry)
{
	struct tc_config ca = cfg_base(TC_ROLE_A, tep), cb = cfg_base(TC_ROLE_B, tep);
	ca.cache = h->ca; ca.peer = (const uint8_t *)"B"; ca.peer_len = 1; ca.policy = pol_a;
	cb.cache = h->cb; cb.peer = (const uint8_t *)"A"; cb.peer_len = 1; cb.policy = pol_b;
	ca.cache_expiry = cb.cache_expiry = expiry;
	ca.keylog = cb.keylog = 1;
	handshake(p, &ca, &cb);
}

/* One resumption: `active` is the host that proposes (0 = host A, 1 = host
 * B of the original session), role A in the new connection. Returns 0 and
 * the two sessions, or the failing code. */
static int resume_once(struct hosts *h, int active, uint8_t tep, size_t nla, size_t nlb,
                       tc_session **act, tc_session **pas, uint8_t sn_out[16], size_t *sn_len)
{
	tc_cache *cact = active ? h->cb : h->ca, *cpas = active ? h->ca : h->cb;
	const uint8_t *peer = (const uint8_t *)(active ? "A" : "B");
	tc_resume *ra, *rb;
	uint8_t sa[TC_RESUME_SUBOPT_MAX], sb[TC_RESUME_SUBOPT_MAX];
	int r;
	if ((r = tc_resume_propose(cact, 0, peer, 1, tep, 10, nla, &ra)) != 0)
		return r;
	size_t la = tc_resume_suboption(ra, sa);
	cr_assert_eq(la, 9 + nla);
	if ((r = tc_resume_answer(cpas, 0, tep, sa, la, 10, nlb, &rb)) != 0) {
		tc_resume_free(ra);
		return r;
	}
	size_t lb = tc_resume_suboption(rb, sb);
	cr_assert_eq(lb, 9 + nlb);
	cr_assert_eq(tc_resume_check_reply(ra, sb, lb), 0);
	/* sn = nonce of the original A | nonce of the original B */
	const uint8_t *na = active ? sb : sa, *nb = active ? sa : sb;
	size_t nal = (active ? lb : la) - 9, nbl = (active ? la : lb) - 9;
	memcpy(sn_out, na + 9, nal);
	memcpy(sn_out + nal, nb + 9, nbl);
	*sn_len = nal + nbl;
	struct tc_config c1 = cfg_base(TC_ROLE_A, 0), c2 = cfg_base(TC_ROLE_B, 0);
	c1.cache = cact; c1.peer = peer; c1.peer_len = 1; c1.cache_expiry = 1000; c1.keylog = 1;
	c2.cache = cpas; c2.peer = (const uint8_t *)(active ? "B" : "A"); c2.peer_len = 1;
	c2.cache_expiry = 1000; c2.keylog = 1;
	cr_assert_eq(tc_session_new_resumed(&c1, ra, act), 0);
	cr_assert_eq(tc_session_new_resumed(&c2, rb, pas), 0);
	return 0;
}

static void check_resumed(tc_session *x, tc_session *y, uint8_t tep, const uint8_t *ss_expect,
                          const uint8_t *sn, size_t sn_len)
{
	cr_assert_eq(tc_session_state(x), TC_ESTABLISHED);
	cr_assert(tc_session_resumed(x));
	cr_assert(memcmp(tc_session_id(x), tc_session_id(y), TC_SESSID_LEN) == 0);
	cr_assert_eq(tc_session_id(x)[0], tep | 0x80, "v = 1 in a resumed session ID");
	/* independent: session ID from ss[i] and sn[i]; keylog carries ss[i] */
	char kl[TC_KEYLOG_MAX];
	uint8_t ss[32], sid[33], info[17], res[18];
	cr_assert_eq(tc_session_keylog(x, kl, sizeof kl), 12 + 36 + 1 + 64);
	cr_assert_eq(strncmp(kl, "TCPCRYPT_SS ", 12), 0);
	unhexn(res, 18, kl + 12);
	unhexn(ss, 32, kl + 12 + 37);
	if (ss_expect)
		cr_assert(memcmp(ss, ss_expect, 32) == 0, "ss[i] is the expected (lowest unused) one");
	const uint8_t c6 = 6;
	uint8_t res2[18];
	ref_cprf(res2, 18, ss, 32, &c6, 1);
	cr_assert(memcmp(res, res2, 18) == 0, "keylog resume id = CPRF(ss, 06, 18)");
	info[0] = 2;
	memcpy(info + 1, sn, sn_len);
	sid[0] = tep | 0x80;
	ref_cprf(sid + 1, 32, ss, 32, info, 1 + sn_len);
	cr_assert(memcmp(sid, tc_session_id(x), 33) == 0, "resumed session ID, independent path");
	cr_assert_eq(tc_session_tx_offset(x), 0);
	transfer(x, y, 4000, 2);
	transfer(y, x, 4000, 2);
}

Test(resume, success_both_directions_and_chain)
{
	for (size_t t = 0; t < 4; t++) {
		struct hosts h;
		struct pair p;
		cr_assert_eq(tc_cache_new(16, &h.ca), 0);
		cr_assert_eq(tc_cache_new(16, &h.cb), 0);
		hosts_fresh(&h, &p, teps[t], 0, 0, 1000);
		cr_assert_eq(tc_cache_count(h.ca), 1);
		cr_assert_eq(tc_cache_count(h.cb), 1);
		/* ss[1] from the fresh session's PRK, via its keylog ES */
		char kl[TC_KEYLOG_MAX];
		cr_assert_gt(tc_session_keylog(p.a, kl, sizeof kl), 0);
		uint8_t es[66], na[32], prk[32], ss[4][32];
		size_t esl = (strlen(kl) - 12 - 65) / 2;
		unhexn(na, 32, kl + 12);
		unhexn(es, esl, kl + 12 + 65);
		uint8_t ikm[1400];
		size_t il = 0;
		memcpy(ikm, transcript, sizeof transcript); il += sizeof transcript;
		memcpy(ikm + il, p.init1, p.init1_len); il += p.init1_len;
		memcpy(ikm + il, p.init2, p.init2_len); il += p.init2_len;
		memcpy(ikm + il, es, esl); il += esl;
		unsigned ol = 32;
		cr_assert(HMAC(EVP_sha256(), na, 32, ikm, il, prk, &ol));
		const uint8_t c1 = 1;
		ref_cprf(ss[1], 32, prk, 32, &c1, 1);
		ref_cprf(ss[2], 32, ss[1], 32, &c1, 1);
		ref_cprf(ss[3], 32, ss[2], 32, &c1, 1);
		transfer(p.a, p.b, 1000, 0);

		tc_session *x, *y;
		uint8_t sn[16];
		size_t snl;
		/* i = 1: original A proposes, nonces 8 + 8 */
		cr_assert_eq(resume_once(&h, 0, teps[t], 8, 8, &x, &y, sn, &snl), 0);
		check_resumed(x, y, teps[t], ss[1], sn, snl);
		/* k_ab stays with the original A: a frame from x (orig A) reads
		 * with p.b's direction keys? No — different ss: just check the
		 * new connection works both ways (done) and that the roles of
		 * the new connection did not matter for the next one. */
		tc_session_free(x);
		tc_session_free(y);
		/* i = 2: original B proposes this time, nonces 0 + 5 */
		cr_assert_eq(resume_once(&h, 1, teps[t], 0, 5, &x, &y, sn, &snl), 0);
		check_resumed(x, y, teps[t], ss[2], sn, snl);
		tc_session_free(x);
		tc_session_free(y);
		/* i = 3 */
		cr_assert_eq(resume_once(&h, 0, teps[t], 3, 0, &x, &y, sn, &snl), 0);
		check_resumed(x, y, teps[t], ss[3], sn, snl);
		tc_session_free(x);
		tc_session_free(y);
		pair_free(&p);
		tc_cache_free(h.ca);
		tc_cache_free(h.cb);
	}
}

Test(resume, refusal_mismatch_and_reuse)
{
	struct hosts h;
	struct pair p;
	tc_resume *r, *r2;
	uint8_t sub[TC_RESUME_SUBOPT_MAX];
	cr_assert_eq(tc_cache_new(16, &h.ca), 0);
	cr_assert_eq(tc_cache_new(16, &h.cb), 0);
	/* no entry at all */
	cr_assert_eq(tc_resume_propose(h.ca, 0, (const uint8_t *)"B", 1, 0x23, 0, 8, &r), TC_ERR_NO_ENTRY);
	hosts_fresh(&h, &p, 0x23, 0, 0, 1000);
	/* other peer, other TEP: no entry */
	cr_assert_eq(tc_resume_propose(h.ca, 0, (const uint8_t *)"C", 1, 0x23, 0, 8, &r), TC_ERR_NO_ENTRY);
	cr_assert_eq(tc_resume_propose(h.ca, 0, (const uint8_t *)"B", 1, 0x24, 0, 8, &r), TC_ERR_NO_ENTRY);
	/* ignore-resumption policy: refused, entry untouched */
	cr_assert_eq(tc_resume_propose(h.ca, TC_POLICY_NO_RESUME, (const uint8_t *)"B", 1, 0x23, 0, 8, &r),
	             TC_ERR_NO_ENTRY);
	cr_assert_eq(tc_cache_count(h.ca), 1);
	cr_assert_eq(tc_resume_propose(h.ca, 0, (const uint8_t *)"B", 1, 0x23, 0, 8, &r), 0);
	size_t l = tc_resume_suboption(r, sub);
	/* reuse prevention: the entry left the cache when it was proposed */
	cr_assert_eq(tc_cache_count(h.ca), 0);
	cr_assert_eq(tc_resume_propose(h.ca, 0, (const uint8_t *)"B", 1, 0x23, 0, 8, &r2), TC_ERR_NO_ENTRY);
	/* passive side: policy, wrong TEP, short data, wrong half */
	cr_assert_eq(tc_resume_answer(h.cb, TC_POLICY_NO_RESUME, 0x23, sub, l, 0, 8, &r2), TC_ERR_NO_ENTRY);
	cr_assert_eq(tc_resume_answer(h.cb, 0, 0x24, sub, l, 0, 8, &r2), TC_ERR_NO_ENTRY);
	cr_assert_eq(tc_resume_answer(h.cb, 0, 0x23, sub, 8, 0, 8, &r2), TC_ERR_NO_ENTRY);
	sub[4] ^= 1;
	cr_assert_eq(tc_resume_answer(h.cb, 0, 0x23, sub, l, 0, 8, &r2), TC_ERR_NO_ENTRY);
	sub[4] ^= 1;
	cr_assert_eq(tc_cache_count(h.cb), 1, "failed lookups leave the entry");
	/* A's own half sent back is not B's half */
	uint8_t mine[TC_RESUME_SUBOPT_MAX];
	size_t ml = tc_resume_suboption(r, mine);
	cr_assert_eq(tc_resume_check_reply(r, mine, ml), TC_ERR_RESUME_MISMATCH);
	cr_assert_eq(tc_resume_check_reply(r, mine, 5), TC_ERR_RESUME_MISMATCH);
	/* an unchecked attempt cannot make a session */
	tc_session *s;
	struct tc_config cfg = cfg_base(TC_ROLE_A, 0);
	cr_assert_eq(tc_session_new_resumed(&cfg, r, &s), TC_ERR_STATE);   /* frees r */
	/* B answers the genuine half once; a replay of the same SYN cannot
	 * resume a second connection (use once) */
	cr_assert_eq(tc_resume_answer(h.cb, 0, 0x23, sub, l, 0, 8, &r2), 0);
	tc_resume *r3;
	cr_assert_eq(tc_resume_answer(h.cb, 0, 0x23, sub, l, 0, 8, &r3), TC_ERR_NO_ENTRY);
	tc_resume_free(r2);   /* the connection failed: the secret is gone too */
	cr_assert_eq(tc_cache_count(h.cb), 0);
	pair_free(&p);
	tc_cache_free(h.ca);
	tc_cache_free(h.cb);
}

Test(resume, flush_expiry_eviction_nocache)
{
	struct hosts h;
	struct pair p;
	tc_resume *r;
	cr_assert_eq(tc_cache_new(2, &h.ca), 0);
	cr_assert_eq(tc_cache_new(2, &h.cb), 0);
	/* flush: TCP_CRYPT_CACHE_FLUSH removes what the connection produced */
	hosts_fresh(&h, &p, 0x23, 0, 0, 1000);
	cr_assert_eq(tc_cache_count(h.ca), 1);
	tc_session_cache_flush(p.a);
	tc_session_cache_flush(p.b);
	cr_assert_eq(tc_cache_count(h.ca), 0);
	cr_assert_eq(tc_cache_count(h.cb), 0);
	pair_free(&p);
	/* a resumed connection's flush removes its ss[i+1] */
	hosts_fresh(&h, &p, 0x23, 0, 0, 1000);
	tc_session *x, *y;
	uint8_t sn[16];
	size_t snl;
	cr_assert_eq(resume_once(&h, 0, 0x23, 8, 8, &x, &y, sn, &snl), 0);
	cr_assert_eq(tc_cache_count(h.ca), 1);
	tc_session_cache_flush(x);
	cr_assert_eq(tc_cache_count(h.ca), 0);
	cr_assert_eq(tc_resume_propose(h.ca, 0, (const uint8_t *)"B", 1, 0x23, 10, 8, &r), TC_ERR_NO_ENTRY);
	tc_session_free(x);
	tc_session_free(y);
	pair_free(&p);
	tc_cache_expire(h.cb, UINT64_MAX);
	/* expiry: entries expire at cache_expiry */
	hosts_fresh(&h, &p, 0x23, 0, 0, 100);
	cr_assert_eq(tc_resume_propose(h.ca, 0, (const uint8_t *)"B", 1, 0x23, 100, 8, &r), TC_ERR_NO_ENTRY);
	cr_assert_eq(tc_cache_count(h.ca), 0, "expired entry removed on lookup");
	cr_assert_eq(tc_cache_count(h.cb), 1);
	tc_cache_expire(h.cb, 99);
	cr_assert_eq(tc_cache_count(h.cb), 1);
	tc_cache_expire(h.cb, 100);
	cr_assert_eq(tc_cache_count(h.cb), 0);
	pair_free(&p);
	/* do-not-cache policy */
	hosts_fresh(&h, &p, 0x23, TC_POLICY_NO_CACHE, TC_POLICY_NO_CACHE, 1000);
	cr_assert_eq(tc_cache_count(h.ca), 0);
	cr_assert_eq(tc_cache_count(h.cb), 0);
	pair_free(&p);
	/* eviction of the oldest when full (capacity 2) */
	static const char *peers[] = { "P", "Q", "R" };
	for (int i = 0; i < 3; i++) {
		struct tc_config ca = cfg_base(TC_ROLE_A, 0x23), cb = cfg_base(TC_ROLE_B, 0x23);
		ca.cache = h.ca; ca.peer = (const uint8_t *)peers[i]; ca.peer_len = 1; ca.cache_expiry = 1000;
		handshake(&p, &ca, &cb);
		pair_free(&p);
	}
	cr_assert_eq(tc_cache_count(h.ca), 2);
	cr_assert_eq(tc_resume_propose(h.ca, 0, (const uint8_t *)"P", 1, 0x23, 0, 8, &r), TC_ERR_NO_ENTRY, "evicted");
	cr_assert_eq(tc_resume_propose(h.ca, 0, (const uint8_t *)"R", 1, 0x23, 0, 8, &r), 0);
	tc_resume_free(r);
	cr_assert_eq(tc_resume_propose(h.ca, 0, (const uint8_t *)"Q", 1, 0x23, 0, 8, &r), 0);
	tc_resume_free(r);
	cr_assert_eq(tc_cache_count(h.ca), 0);
	tc_cache_free(h.ca);
	tc_cache_free(h.cb);
}

/* The lookups stop at the highest slot in use (tc_cache.hi): entries above
 * holes, a slot reused below the top, and the top given back must all be
 * found exactly as before. */
Test(resume, lookups_across_holes)
{
	struct hosts h;
	struct pair p;
	tc_resume *r;
	static const char *peers[] = { "0", "1", "2", "3", "4", "5", "6" };
	cr_assert_eq(tc_cache_new(8, &h.ca), 0);
	cr_assert_eq(tc_cache_new(8, &h.cb), 0);
	for (int i = 0; i < 6; i++) {   /* slots 0..5 */
		struct tc_config ca = cfg_base(TC_ROLE_A, 0x23), cb = cfg_base(TC_ROLE_B, 0x23);
		ca.cache = h.ca; ca.peer = (const uint8_t *)peers[i]; ca.peer_len = 1; ca.cache_expiry = 1000;
		handshake(&p, &ca, &cb);
		pair_free(&p);
	}
	cr_assert_eq(tc_cache_count(h.ca), 6);
	/* the top (5) and the bottom (0) leave, then 1..3: 4 is alone above holes */
	static const int gone[] = { 5, 0, 1, 2, 3 };
	for (size_t g = 0; g < sizeof gone / sizeof gone[0]; g++) {
		cr_assert_eq(tc_resume_propose(h.ca, 0, (const uint8_t *)peers[gone[g]], 1, 0x23, 0, 8, &r), 0,
		             "peer %d", gone[g]);
		tc_resume_free(r);
	}
	cr_assert_eq(tc_cache_count(h.ca), 1);
	/* a new entry takes the lowest free slot (0), below 4 */
	struct tc_config ca = cfg_base(TC_ROLE_A, 0x23), cb = cfg_base(TC_ROLE_B, 0x23);
	ca.cache = h.ca; ca.peer = (const uint8_t *)peers[6]; ca.peer_len = 1; ca.cache_expiry = 1000;
	handshake(&p, &ca, &cb);
	pair_free(&p);
	cr_assert_eq(tc_resume_propose(h.ca, 0, (const uint8_t *)"5", 1, 0x23, 0, 8, &r), TC_ERR_NO_ENTRY);
	cr_assert_eq(tc_resume_propose(h.ca, 0, (const uint8_t *)"4", 1, 0x23, 0, 8, &r), 0, "above the holes");
	tc_resume_free(r);
	/* expiry reaches an entry whatever the slot */
	tc_cache_expire(h.ca, 1000);
	cr_assert_eq(tc_cache_count(h.ca), 0);
	cr_assert_eq(tc_resume_propose(h.ca, 0, (const uint8_t *)"6", 1, 0x23, 0, 8, &r), TC_ERR_NO_ENTRY);
	tc_cache_free(h.ca);
	tc_cache_free(h.cb);
}

/* A resumed session uses the same key directions as the original one:
 * the original A encrypts with k_ab even when it is B now (§3.5).  Checked
 * by building the original A's first frame by hand from ss[1]. */
Test(resume, key_direction_follows_original_role)
{
	struct hosts h;
	struct pair p;
	cr_assert_eq(tc_cache_new(4, &h.ca), 0);
	cr_assert_eq(tc_cache_new(4, &h.cb), 0);
	hosts_fresh(&h, &p, 0x23, 0, 0, 1000);
	tc_session *x, *y;     /* x: original B, active = role A now */
	uint8_t sn[16];
	size_t snl;
	cr_assert_eq(resume_once(&h, 1, 0x23, 4, 4, &x, &y, sn, &snl), 0);
	char kl[TC_KEYLOG_MAX];
	uint8_t ss[32], mk[32], kab[44], info[17];
	cr_assert_gt(tc_session_keylog(y, kl, sizeof kl), 0);
	unhexn(ss, 32, kl + 12 + 37);
	info[0] = 3;
	memcpy(info + 1, sn, snl);
	ref_cprf(mk, 32, ss, 32, info, 1 + snl);
	const uint8_t c4 = 4;
	uint16_t aead = tc_session_aead(y);
	size_t kl2 = tc_aead_key_len(aead);
	ref_cprf(kab, kl2 + 12, mk, 32, &c4, 1);
	/* y is the original A (passive now): its frame at offset 0 under k_ab */
	uint8_t f[64], g[64];
	size_t fl;
	struct tc_iov d = { (const uint8_t *)"\0dir", 4 };
	cr_assert_eq(tc_frame_seal(y, &(struct tc_iov){ (const uint8_t *)"dir", 3 }, 1, 0, 0, f, sizeof f, &fl), 0);
	tc_aead *a;
	uint8_t nonce[12];
	memcpy(nonce, kab + kl2, 12);
	cr_assert_eq(tc_aead_new(aead, 1, &a), 0);
	cr_assert_eq(tc_aead_setkey(a, kab, kl2), 0);
	g[0] = 0; g[1] = 0; g[2] = 20;
	cr_assert_eq(tc_aead_seal(a, nonce, g, 3, &d, 1, g + 3), 0);
	tc_aead_free(a);
	cr_assert_eq(fl, 23);
	cr_assert(memcmp(f, g, 23) == 0, "original A seals with k_ab[0]");
	tc_session_free(x);
	tc_session_free(y);
	pair_free(&p);
	tc_cache_free(h.ca);
	tc_cache_free(h.cb);
}

Test(session, precomputed_kex_and_misuse)
{
	tc_kex *k;
	tc_session *s;
	struct tc_config c = cfg_base(TC_ROLE_A, 0x23);
	/* a key pair of the wrong TEP is refused (and freed) */
	cr_assert_eq(tc_kex_generate(0x24, &k), 0);
	c.kex = k;
	cr_assert_eq(tc_session_new(&c, &s), TC_ERR_UNSUPPORTED);
	/* the right one is used: Init1 carries its public key */
	cr_assert_eq(tc_kex_generate(0x23, &k), 0);
	uint8_t pub[32];
	memcpy(pub, tc_kex_pub(k), 32);
	c.kex = k;
	cr_assert_eq(tc_session_new(&c, &s), 0);
	const uint8_t *m;
	size_t len;
	cr_assert_eq(tc_session_handshake_out(s, &m, &len), 0);
	cr_assert(memcmp(m + len - 32, pub, 32) == 0);
	cr_assert_null(tc_session_id(s));
	uint8_t f[64];
	size_t fl;
	cr_assert_eq(tc_frame_seal(s, NULL, 0, 0, 0, f, sizeof f, &fl), TC_ERR_STATE, "no keys yet");
	cr_assert_eq(tc_session_rekey(s), TC_ERR_STATE);
	tc_session_free(s);
	c.tep = 0x25;
	c.kex = NULL;
	cr_assert_eq(tc_session_new(&c, &s), TC_ERR_UNSUPPORTED);
}
