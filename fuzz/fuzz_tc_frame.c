/*
 * fuzz_tc_frame.c — libFuzzer target for the tcpcrypt frame reader and
 * sealer (stack/tcpcrypt.c, RFC 8548 §3.6, §3.8, §4.2) under a fixed key.
 *
 * FUZZ_SOURCES: stack/tcpcrypt.c stack/tc_crypto.c stack/secmem.c
 * FUZZ_LIBS: -lsodium -lcrypto
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude -Istack \
 *         fuzz/fuzz_tc_frame.c stack/tcpcrypt.c stack/tc_crypto.c \
 *         -lsodium -lcrypto -o build/fuzz/fuzz_tc_frame
 *
 * Every input starts from the same session pair (X25519 with fixed private
 * keys and nonces, so the keys are fixed).  Input layout:
 *   [0]  bit 0: raw mode; bits 1-2: AEAD (AES-128-GCM, AES-256-GCM,
 *        ChaCha20-Poly1305)
 *   [1]  seed of the split pattern in which the reader is fed
 *   raw mode:    the rest is B's incoming byte stream (after Init1),
 *                read into a 64 KiB region
 *   script mode: the rest is a list of operations on host A's sending side
 *        op & 3 == 0  seal a frame: data length = next byte * 37,
 *                     flags = (op >> 2) & 3 (FINp, URGp), urgent = next byte
 *        op & 3 == 1  A initiates a re-key
 *        op & 3 == 2  flip bit (op >> 5) of the byte at offset (next 2 bytes)
 *                     of the unread stream
 *        op & 3 == 3  B reads what A sent so far, then sends the rekey
 *                     frames it owes, which A reads
 * B decrypts into a 16 KiB ring whose free space wraps.
 *
 * Checked (abort() on violation): without bit flips every frame verifies
 * and the plaintext, flags, urgent values and generation numbers are
 * exactly what A sent; with flips the reader fails cleanly (negative code,
 * session failed) and never reports data that was not sent; used never
 * exceeds what was given.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tcpcrypt.h"

#define RING 16384
#define WIRE_MAX (1 << 20)

static uint32_t split_rng;

static size_t next_chunk(size_t left)
{
	split_rng = split_rng * 1103515245u + 12345u;
	size_t c = (split_rng >> 16) % 4 == 0 ? 1 : 1 + (split_rng >> 16) % 3000;
	return c < left ? c : left;
}

static const uint8_t ska[32] = { 0x77, 0x07, 0x6d, 0x0a, 1, 2, 3, 4 };
static const uint8_t skb[32] = { 0x5d, 0xab, 0x08, 0x7e, 5, 6, 7, 8 };
static const uint8_t nonce_a[32] = { 0xa0 }, nonce_b[32] = { 0xb0 };
static const uint8_t transcript[] = { 0x45, 0x04, 0x21, 0x23, 0x45, 0x04, 0x01, 0x23 };

static void pair_new(uint16_t aead, tc_session **a, tc_session **b)
{
	struct tc_config ca, cb;
	tc_kex *ka, *kb;
	const uint8_t *m;
	size_t len, used;

	if (tc_kex_from_private(0x23, ska, 32, &ka) || tc_kex_from_private(0x23, skb, 32, &kb))
		abort();
	memset(&ca, 0, sizeof ca);
	memset(&cb, 0, sizeof cb);
	ca.role = TC_ROLE_A;
	cb.role = TC_ROLE_B;
	ca.tep = cb.tep = 0x23;
	ca.transcript = cb.transcript = transcript;
	ca.transcript_len = cb.transcript_len = sizeof transcript;
	ca.kex = ka;
	cb.kex = kb;
	ca.nonce = nonce_a;
	cb.nonce = nonce_b;
	cb.bconf = &aead;
	cb.nbconf = 1;
	if (tc_session_new(&ca, a) || tc_session_new(&cb, b))
		abort();
	if (tc_session_handshake_out(*a, &m, &len) || tc_session_handshake_in(*b, m, len, &used))
		abort();
	if (tc_session_handshake_out(*b, &m, &len) || tc_session_handshake_in(*a, m, len, &used))
		abort();
}

struct rx {
	uint8_t ring[RING];
	size_t prod;            /* consumer always catches up: free = RING */
	const uint8_t *expect;  /* what A sent, in order (NULL in raw mode) */
	size_t expect_len, got;
	int failed, fin;
};

/* Feed bytes to B, checking every verified frame against what A sent. */
static void rx_feed(tc_session *b, struct rx *r, const uint8_t *in, size_t len, int flips)
{
	size_t off = 0;
	while (off < len && !r->failed) {
		size_t c = next_chunk(len - off), coff = 0;
		while (coff < c && !r->failed) {
			struct tc_iov_mut o[2] = { { r->ring + r->prod, RING - r->prod }, { r->ring, r->prod } };
			struct tc_frame_info fi;
			size_t used;
			int ret = tc_frame_read(b, in + off + coff, c - coff, &used, o, 2, &fi);
			if (used > c - coff)
				abort();
			coff += used;
			if (ret == TC_FRAME_DONE) {
				if (fi.data_len > RING)
					abort();
				if (r->expect) {
					/* verified data must be what A sent */
					for (size_t i = 0; i < fi.data_len; i++) {
						uint8_t v = r->ring[(r->prod + i) % RING];
						if (r->got + i >= r->expect_len || v != r->expect[r->got + i])
							abort();
					}
				}
				r->got += fi.data_len;
				r->prod = (r->prod + fi.data_len) % RING;
				if (fi.flags & TC_FLAG_FIN)
					r->fin = 1;
			} else if (ret == TC_NEED_MORE) {
				if (coff != c)
					abort();
			} else if (ret < 0) {
				if (!flips && r->expect)
					abort();   /* honest stream must verify */
				if (tc_session_state(b) != TC_FAILED)
					abort();
				r->failed = 1;
			} else if (ret == TC_NEED_SPACE && flips) {
				/* a flipped clen can ask for more than the ring holds;
				 * a real receiver would wait, and then fail the tag */
				if (tc_frame_space_needed(b) <= RING)
					abort();
				r->failed = 1;
			} else {
				abort();   /* honest frames carry < 16 KiB */
			}
		}
		off += c;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint16_t aeads[4] = { 0x0001, 0x0002, 0x0010, 0x0001 };
	static uint8_t wire[WIRE_MAX], sent[WIRE_MAX], payload[256 * 37];
	static struct rx r;
	tc_session *a, *b;

	if (size < 2)
		return 0;
	pair_new(aeads[(data[0] >> 1) & 3], &a, &b);
	memset(&r, 0, sizeof r);
	split_rng = data[1];
	if (data[0] & 1) {
		/* raw: B's incoming stream is the input; frames bigger than the
		 * ring cannot be placed — give them space by skipping those */
		size_t off = 2;
		static uint8_t big[TC_FRAME_DATA_MAX];
		size_t cut = data[1] * 251u % sizeof big;
		/* a region as big as any frame, in two pieces */
		struct tc_iov_mut o[2] = { { big + cut, sizeof big - cut }, { big, cut } };
		while (off < size && !r.failed) {
			struct tc_frame_info fi;
			size_t used, c = next_chunk(size - off);
			int ret = tc_frame_read(b, data + off, c, &used, o, 2, &fi);
			if (ret == TC_NEED_SPACE)
				abort();
			if (used > c)
				abort();
			off += used;
			if (ret == TC_FRAME_DONE && fi.data_len > TC_FRAME_DATA_MAX)
				abort();
			if (ret < 0)
				r.failed = 1;
		}
		goto out;
	}

	size_t wl = 0, fed = 0, sl = 0, flips = 0;
	for (size_t i = 0; i < sizeof payload; i++)
		payload[i] = (uint8_t)(i * 7 + (i >> 8));
	r.expect = sent;
	for (size_t i = 2; i < size && !r.failed;) {
		uint8_t op = data[i++];
		switch (op & 3) {
		case 0: {
			size_t dl = (i < size ? data[i++] : 0) * 37u;
			uint8_t flags = (op >> 2) & 3, urg = i < size ? data[i++] : 0;
			size_t fl;
			if (wl + tc_frame_len(dl, flags) > WIRE_MAX || sl + dl > WIRE_MAX)
				goto done;
			struct tc_iov iov[2] = { { payload, dl / 3 }, { payload + dl / 3, dl - dl / 3 } };
			int ret = tc_frame_seal(a, iov, 2, flags, urg, wire + wl, WIRE_MAX - wl, &fl);
			if (ret == TC_ERR_STATE)
				break;      /* after FINp */
			if (ret != 0 || fl != tc_frame_len(dl, flags))
				abort();
			wl += fl;
			memcpy(sent + sl, payload, dl);
			sl += dl;
			r.expect_len = sl;
			break;
		}
		case 1: {
			int ret = tc_session_rekey(a);
			if (ret != 0 && ret != TC_ERR_AGAIN && ret != TC_ERR_STATE)
				abort();
			break;
		}
		case 2: {
			size_t pos = i + 1 < size ? (size_t)(data[i] << 8 | data[i + 1]) : 0;
			i += 2;
			if (wl > fed) {
				wire[fed + pos % (wl - fed)] ^= (uint8_t)(1u << (op >> 5));
				flips++;
			}
			break;
		}
		case 3: {
			rx_feed(b, &r, wire + fed, wl - fed, (int)flips);
			fed = wl;
			if (r.failed)
				break;
			uint64_t lg, rg, alg, arg;
			tc_session_generation(b, &lg, &rg);
			tc_session_generation(a, &alg, &arg);
			if (!flips && rg != alg - tc_session_rekey_pending(a))
				abort();  /* B saw every generation step A sent */
			while (tc_session_rekey_pending(b) > 0) {
				uint8_t f[64], out[8];
				size_t fl, used;
				struct tc_iov_mut o = { out, sizeof out };
				struct tc_frame_info fi;
				if (tc_frame_seal(b, NULL, 0, 0, 0, f, sizeof f, &fl) != 0 || f[0] != TC_CTRL_REKEY)
					abort();
				if (tc_frame_read(a, f, fl, &used, &o, 1, &fi) != TC_FRAME_DONE || !fi.rekey)
					abort();
			}
			break;
		}
		}
	}
done:
	rx_feed(b, &r, wire + fed, wl - fed, (int)flips);
	if (!flips && !r.failed && r.got != sl)
		abort();
out:
	tc_session_free(a);
	tc_session_free(b);
	return 0;
}
