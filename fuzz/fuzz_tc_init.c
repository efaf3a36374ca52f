/*
 * fuzz_tc_init.c — libFuzzer target for the tcpcrypt Init1/Init2 parser
 * (stack/tcpcrypt.c, RFC 8548 §4.1) fed as a TCP byte stream in random
 * splits, and for the session that consumes it.
 *
 * FUZZ_SOURCES: stack/tcpcrypt.c stack/tc_crypto.c stack/secmem.c
 * FUZZ_LIBS: -lsodium -lcrypto
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude -Istack \
 *         fuzz/fuzz_tc_init.c stack/tcpcrypt.c stack/tc_crypto.c \
 *         -lsodium -lcrypto -o build/fuzz/fuzz_tc_init
 *
 * Input layout:
 *   [0]  bits 0-1: TEP (0x21 + n); bit 2: Init2 (else Init1);
 *        bit 3: also drive a session (B for Init1, A for Init2)
 *   [1]  seed of the split pattern
 *   rest the peer's byte stream
 *
 * Checked (abort() on violation): the streamed parse and the one-shot parse
 * agree on the outcome and on message_len; the parser never consumes more
 * than message_len nor more than it was given; once complete it stays
 * complete and consumes nothing more; the session consumes exactly the
 * same bytes and ends established or failed accordingly.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tcpcrypt.h"

static uint32_t split_rng;

static size_t next_chunk(size_t left)
{
	split_rng = split_rng * 1103515245u + 12345u;
	size_t c = 1 + (split_rng >> 16) % 97;
	return c < left ? c : left;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct tc_init_parser p1, p2;
	struct tc_init_msg m;

	if (size < 2)
		return 0;
	uint8_t tep = (uint8_t)(0x21 + (data[0] & 3));
	int which = (data[0] & 4) ? 2 : 1;
	int with_session = (data[0] & 8) != 0;
	const uint8_t *in = data + 2;
	size_t len = size - 2;

	/* one shot over a prefix-free view: feed everything, note where it ended */
	tc_init_parser_start(&p1, which, tep);
	size_t off1 = 0, u;
	int r1;
	do {
		r1 = tc_init_parser_feed(&p1, in + off1, len - off1, &u);
		if (u > len - off1)
			abort();
		off1 += u;
	} while (r1 == TC_INIT_FIXED);

	/* streamed in random splits */
	split_rng = data[1];
	tc_init_parser_start(&p2, which, tep);
	size_t off2 = 0;
	int r2 = TC_NEED_MORE;
	while (off2 < len || r2 == TC_INIT_FIXED) {
		size_t c = r2 == TC_INIT_FIXED ? 0 : next_chunk(len - off2);
		r2 = tc_init_parser_feed(&p2, in + off2, c, &u);
		if (u > c && r2 != TC_INIT_FIXED)
			abort();
		if (r2 == TC_INIT_FIXED && u > c)
			abort();
		off2 += u;
		if (r2 != TC_NEED_MORE && r2 != TC_INIT_FIXED)
			break;
	}
	if (r1 != r2)
		abort();
	if (r1 == 0) {
		if (off1 != off2 || off1 != p1.msg_len || p1.msg_len != p2.msg_len)
			abort();
		if (tc_init_parser_get(&p1, &m) != 0 || m.fixed_len > m.msg_len)
			abort();
		if (m.pub + m.pub_len != p1.buf + m.fixed_len)
			abort();
		/* complete stays complete */
		if (tc_init_parser_feed(&p1, in, len, &u) != 0 || u != 0)
			abort();
	} else if (r1 == TC_NEED_MORE) {
		if (off1 != len || off2 != len)
			abort();
	} else if (r1 >= 0) {
		abort();
	}

	if (!with_session)
		return 0;
	struct tc_config cfg;
	memset(&cfg, 0, sizeof cfg);
	cfg.role = which == 1 ? TC_ROLE_B : TC_ROLE_A;
	cfg.tep = tep;
	cfg.transcript = data;
	cfg.transcript_len = size < 8 ? size : 8;
	tc_session *s;
	if (tc_session_new(&cfg, &s) != 0)
		abort();
	split_rng = data[1] ^ 0x5a;
	size_t off = 0;
	int r = TC_NEED_MORE;
	while (off < len && r == TC_NEED_MORE) {
		size_t c = next_chunk(len - off);
		r = tc_session_handshake_in(s, in + off, c, &u);
		if (u > c)
			abort();
		off += u;
	}
	if (r == 0) {
		/* the parser said complete; the session may still fail on the
		 * key agreement (zero secret) or AEAD choice, never succeed
		 * where the parser did not */
		if (r1 != 0 || off != off1 || tc_session_state(s) != TC_ESTABLISHED)
			abort();
		if (!tc_session_id(s) || tc_session_rx_offset(s) != off1)
			abort();
		if (which == 1) {
			const uint8_t *msg;
			size_t ml;
			if (tc_session_handshake_out(s, &msg, &ml) != 0)
				abort();
		}
	} else if (r < 0) {
		if (tc_session_state(s) != TC_FAILED)
			abort();
		/* a parser error is the session's error; otherwise only the
		 * session's own checks (AEAD choice, key agreement) can fail */
		if (r1 < 0 && r != r1)
			abort();
		if (r1 >= 0 && r != TC_ERR_NO_AEAD && r != TC_ERR_AEAD_NOT_OFFERED && r != TC_ERR_KEX)
			abort();
	} else if (r1 != TC_NEED_MORE) {
		abort();
	}
	tc_session_free(s);
	return 0;
}
