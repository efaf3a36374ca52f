/*
 * test_tc_crypto.c — known-answer tests of the tcpcrypt crypto backend
 * (stack/tc_crypto.c) and the AEAD benchmark that chose its implementation.
 *
 * Vector sources (each also re-checked with python3's `cryptography` 48 and
 * hashlib/hmac before pasting, as an independent second path):
 *   HKDF-SHA256: RFC 5869 Appendix A, test cases 1-3.
 *   AES-GCM:     McGrew & Viega, "The Galois/Counter Mode of Operation (GCM)",
 *                revised 2005, Appendix B test cases 2, 3, 4 (AES-128) and
 *                13, 14, 16 (AES-256).
 *   ChaCha20-Poly1305: RFC 8439 §2.8.2.
 *   X25519:      RFC 7748 §5.2 (both single-step vectors) and §6.1.
 *   X448:        RFC 7748 §6.2.
 *
 * The benchmark: TC_BENCH=1 build/tests/test_tc_crypto --filter 'aead_bench/ *' (no space)
 */
#include <criterion/criterion.h>
#include <openssl/evp.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tc_crypto.h"
#include "tcpinc.h"

static size_t unhex(uint8_t *out, size_t cap, const char *hex)
{
	size_t n = strlen(hex) / 2, i;
	cr_assert(n <= cap, "hex too long");
	for (i = 0; i < n; i++) {
		unsigned v;
		cr_assert(sscanf(hex + 2 * i, "%2x", &v) == 1);
		out[i] = (uint8_t)v;
	}
	return n;
}

#define ASSERT_HEX(buf, len, hex) do { \
		uint8_t exp_[512]; size_t el_ = unhex(exp_, sizeof exp_, hex); \
		cr_assert_eq((size_t)(len), el_, "length %zu != %zu", (size_t)(len), el_); \
		cr_assert(memcmp((buf), exp_, el_) == 0, "value mismatch"); \
	} while (0)

/* ---- HKDF: RFC 5869 Appendix A.1-A.3 ------------------------------------------------ */

struct hkdf_case {
	const char *ikm, *salt, *info, *prk, *okm;
};

static const struct hkdf_case hkdf_cases[] = {
	{ "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b", "000102030405060708090a0b0c",
	  "f0f1f2f3f4f5f6f7f8f9",
	  "077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5",
	  "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865" },
	{ "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
	  "202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f"
	  "404142434445464748494a4b4c4d4e4f",
	  "606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f"
	  "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f"
	  "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf",
	  "b0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0c1c2c3c4c5c6c7c8c9cacbcccdcecf"
	  "d0d1d2d3d4d5d6d7d8d9dadbdcdddedfe0e1e2e3e4e5e6e7e8e9eaebecedeeef"
	  "f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff",
	  "06a6b88c5853361a06104c9ceb35b45cef760014904671014a193f40c15fc244",
	  "b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c"
	  "59045a99cac7827271cb41c65e590e09da3275600c2f09b8367793a9aca3db71"
	  "cc30c58179ec3e87c14c01d5c1f3434f1d87" },
	{ "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b", "", "",
	  "19ef24a32c717b167f33a91d6f648bdf96596776afdb6377ac434c1c293ccb04",
	  "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8" },
};

Test(hkdf, rfc5869_sha256)
{
	for (size_t c = 0; c < sizeof hkdf_cases / sizeof hkdf_cases[0]; c++) {
		const struct hkdf_case *t = &hkdf_cases[c];
		uint8_t ikm[128], salt[128], info[128], prk[32], okm[128];
		size_t ikm_len = unhex(ikm, sizeof ikm, t->ikm);
		size_t salt_len = unhex(salt, sizeof salt, t->salt);
		size_t info_len = unhex(info, sizeof info, t->info);
		size_t okm_len = strlen(t->okm) / 2;
		/* IKM split in two pieces to exercise the scatter interface. */
		struct tc_iov iov[2] = { { ikm, ikm_len / 3 }, { ikm + ikm_len / 3, ikm_len - ikm_len / 3 } };

		tc_hkdf_extract(prk, salt, salt_len, iov, 2);
		ASSERT_HEX(prk, 32, t->prk);
		cr_assert_eq(tc_cprf(okm, okm_len, prk, 32, info, info_len), 0);
		ASSERT_HEX(okm, okm_len, t->okm);
	}
}

Test(hkdf, cprf_prefix_and_limit)
{
	/* CPRF(K, C, L) is the first L bytes of the OKM: shorter outputs are
	 * prefixes of longer ones (§3.1 "the first L bytes"). */
	uint8_t k[32] = { 7 }, a[100], b[18], big[1];
	const uint8_t c = 0x06;
	cr_assert_eq(tc_cprf(a, sizeof a, k, 32, &c, 1), 0);
	cr_assert_eq(tc_cprf(b, sizeof b, k, 32, &c, 1), 0);
	cr_assert(memcmp(a, b, sizeof b) == 0);
	cr_assert_neq(tc_cprf(big, 255 * 32 + 1, k, 32, &c, 1), 0);
}

/* ---- AEAD KATs ------------------------------------------------------------------------ */

struct aead_case {
	const char *name;
	uint16_t id;
	const char *key, *nonce, *ad, *pt, *ct, *tag;
};

#define GCM_P "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72" \
              "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255"
#define GCM_P60 "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72" \
                "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39"

static const struct aead_case aead_cases[] = {
	{ "gcm-tc2", TCPINC_AEAD_AES_128_GCM, "00000000000000000000000000000000",
	  "000000000000000000000000", "", "00000000000000000000000000000000",
	  "0388dace60b6a392f328c2b971b2fe78", "ab6e47d42cec13bdf53a67b21257bddf" },
	{ "gcm-tc3", TCPINC_AEAD_AES_128_GCM, "feffe9928665731c6d6a8f9467308308",
	  "cafebabefacedbaddecaf888", "", GCM_P,
	  "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e"
	  "21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091473f5985",
	  "4d5c2af327cd64a62cf35abd2ba6fab4" },
	{ "gcm-tc4", TCPINC_AEAD_AES_128_GCM, "feffe9928665731c6d6a8f9467308308",
	  "cafebabefacedbaddecaf888", "feedfacedeadbeeffeedfacedeadbeefabaddad2", GCM_P60,
	  "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e"
	  "21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091",
	  "5bc94fbc3221a5db94fae95ae7121a47" },
	{ "gcm-tc13", TCPINC_AEAD_AES_256_GCM,
	  "0000000000000000000000000000000000000000000000000000000000000000",
	  "000000000000000000000000", "", "", "", "530f8afbc74536b9a963b4f1c4cb738b" },
	{ "gcm-tc14", TCPINC_AEAD_AES_256_GCM,
	  "0000000000000000000000000000000000000000000000000000000000000000",
	  "000000000000000000000000", "", "00000000000000000000000000000000",
	  "cea7403d4d606b6e074ec5d3baf39d18", "d0d1c8a799996bf0265b98b5d48ab919" },
	{ "gcm-tc16", TCPINC_AEAD_AES_256_GCM,
	  "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308",
	  "cafebabefacedbaddecaf888", "feedfacedeadbeeffeedfacedeadbeefabaddad2", GCM_P60,
	  "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
	  "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662",
	  "76fc6ece0f4e1768cddf8853bb2d551b" },
	{ "rfc8439-2.8.2", TCPINC_AEAD_CHACHA20_POLY1305,
	  "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f",
	  "070000004041424344454647", "50515253c0c1c2c3c4c5c6c7",
	  /* "Ladies and Gentlemen of the class of '99: If I could offer you
	   *  only one tip for the future, sunscreen would be it." */
	  "4c616469657320616e642047656e746c656d656e206f662074686520636c6173"
	  "73206f66202739393a204966204920636f756c64206f6666657220796f75206f"
	  "6e6c79206f6e652074697020666f7220746865206675747572652c2073756e73"
	  "637265656e20776f756c642062652069742e",
	  "d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d6"
	  "3dbea45e8ca9671282fafb69da92728b1a71de0a9e060b2905d6a5b67ecd3b36"
	  "92ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc"
	  "3ff4def08e4b7a9de576d26586cec64b6116",
	  "1ae10b594f09e26a7e902ecbd0600691" },
};

Test(aead, known_answers_all_splits)
{
	for (size_t c = 0; c < sizeof aead_cases / sizeof aead_cases[0]; c++) {
		const struct aead_case *t = &aead_cases[c];
		uint8_t key[32], nonce[12], ad[64], pt[256], ct[256], tag[16], out[256 + 16], dec[256];
		size_t kl = unhex(key, sizeof key, t->key);
		unhex(nonce, sizeof nonce, t->nonce);
		size_t adl = unhex(ad, sizeof ad, t->ad), pl = unhex(pt, sizeof pt, t->pt);
		size_t cl = unhex(ct, sizeof ct, t->ct);
		unhex(tag, sizeof tag, t->tag);
		tc_aead *enc, *de;

		cr_assert_eq(cl, pl);
		cr_assert_eq(tc_aead_new(t->id, 1, &enc), 0);
		cr_assert_eq(tc_aead_new(t->id, 0, &de), 0);
		cr_assert_eq(tc_aead_setkey(enc, key, kl), 0);
		cr_assert_eq(tc_aead_setkey(de, key, kl), 0);
		/* every split of the plaintext into two pieces (a wrapping ring) */
		for (size_t s = 0; s <= pl; s++) {
			struct tc_iov in[2] = { { pt, s }, { pt + s, pl - s } };
			cr_assert_eq(tc_aead_seal(enc, nonce, ad, adl, in, 2, out), 0);
			cr_assert(memcmp(out, ct, cl) == 0, "%s: ct split %zu", t->name, s);
			cr_assert(memcmp(out + cl, tag, 16) == 0, "%s: tag split %zu", t->name, s);
			/* multi-piece ciphertext into a two-piece output, split elsewhere */
			size_t s2 = pl - s;
			struct tc_iov cin[3] = { { ct, s / 2 }, { ct + s / 2, s - s / 2 }, { ct + s, pl - s } };
			struct tc_iov_mut po[2] = { { dec, s2 }, { dec + s2, pl - s2 } };
			memset(dec, 0, sizeof dec);
			cr_assert_eq(tc_aead_open(de, nonce, ad, adl, cin, 3, tag, po, 2), 0, "%s: open", t->name);
			cr_assert(memcmp(dec, pt, pl) == 0);
		}
		/* any flipped bit fails: ciphertext, tag, AD */
		struct tc_iov_mut po1 = { dec, pl };
		tag[3] ^= 0x10;
		struct tc_iov cin1 = { ct, cl };
		cr_assert_eq(tc_aead_open(de, nonce, ad, adl, &cin1, 1, tag, &po1, 1), TC_ERR_AUTH);
		tag[3] ^= 0x10;
		if (cl) {
			ct[cl - 1] ^= 1;
			cr_assert_eq(tc_aead_open(de, nonce, ad, adl, &cin1, 1, tag, &po1, 1), TC_ERR_AUTH);
			ct[cl - 1] ^= 1;
		}
		uint8_t ad2[64];
		memcpy(ad2, ad, adl);
		ad2[0] ^= 0x80;
		cr_assert_eq(tc_aead_open(de, nonce, ad2, adl ? adl : 1, &cin1, 1, tag, &po1, 1), TC_ERR_AUTH);
		/* and the context is still usable after a failure */
		cr_assert_eq(tc_aead_open(de, nonce, ad, adl, &cin1, 1, tag, &po1, 1), 0);
		tc_aead_free(enc);
		tc_aead_free(de);
	}
}

Test(aead, rejects_bad_use)
{
	tc_aead *a;
	uint8_t k[32] = { 0 };
	cr_assert_eq(tc_aead_new(0x0003, 1, &a), TC_ERR_UNSUPPORTED);
	cr_assert_eq(tc_aead_new(TCPINC_AEAD_AES_128_GCM, 1, &a), 0);
	cr_assert_eq(tc_aead_setkey(a, k, 32), TC_ERR_ARG);
	uint8_t n[12] = { 0 }, o[16];
	cr_assert_eq(tc_aead_seal(a, n, NULL, 0, NULL, 0, o), TC_ERR_ARG, "unkeyed");
	tc_aead_free(a);
	cr_assert_eq(tc_aead_key_len(TCPINC_AEAD_AES_128_GCM), 16);
	cr_assert_eq(tc_aead_key_len(TCPINC_AEAD_AES_256_GCM), 32);
	cr_assert_eq(tc_aead_key_len(TCPINC_AEAD_CHACHA20_POLY1305), 32);
}

/* Cross-check against libsodium's independent implementation over many
 * random messages and nonces (ChaCha20-Poly1305 IETF and AES-256-GCM). */
Test(aead, matches_libsodium)
{
	cr_assert(sodium_init() >= 0);
	uint8_t key[32], nonce[12], ad[3], m[1200], c1[1216], c2[1216];
	tc_aead *ch, *gc;
	cr_assert_eq(tc_aead_new(TCPINC_AEAD_CHACHA20_POLY1305, 1, &ch), 0);
	cr_assert_eq(tc_aead_new(TCPINC_AEAD_AES_256_GCM, 1, &gc), 0);
	for (int i = 0; i < 200; i++) {
		size_t len = randombytes_uniform(sizeof m);
		unsigned long long cl;
		randombytes_buf(key, sizeof key);
		randombytes_buf(nonce, sizeof nonce);
		randombytes_buf(ad, sizeof ad);
		randombytes_buf(m, len);
		struct tc_iov in = { m, len };
		cr_assert_eq(tc_aead_setkey(ch, key, 32), 0);
		cr_assert_eq(tc_aead_seal(ch, nonce, ad, 3, &in, 1, c1), 0);
		crypto_aead_chacha20poly1305_ietf_encrypt(c2, &cl, m, len, ad, 3, NULL, nonce, key);
		cr_assert_eq(cl, len + 16);
		cr_assert(memcmp(c1, c2, cl) == 0);
		if (crypto_aead_aes256gcm_is_available()) {
			cr_assert_eq(tc_aead_setkey(gc, key, 32), 0);
			cr_assert_eq(tc_aead_seal(gc, nonce, ad, 3, &in, 1, c1), 0);
			crypto_aead_aes256gcm_encrypt(c2, &cl, m, len, ad, 3, NULL, nonce, key);
			cr_assert(memcmp(c1, c2, cl) == 0);
		}
	}
	tc_aead_free(ch);
	tc_aead_free(gc);
}

/* ---- key agreement ----------------------------------------------------------------------- */

Test(kex, x25519_rfc7748)
{
	/* §5.2: X25519(scalar, u) through the generic derive path. */
	static const char *v[][3] = {
		{ "a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4",
		  "e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c",
		  "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552" },
		{ "4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d",
		  "e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493",
		  "95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957" },
	};
	for (size_t i = 0; i < 2; i++) {
		uint8_t sk[32], u[32], es[TC_ES_MAX];
		size_t esl;
		tc_kex *k;
		unhex(sk, 32, v[i][0]);
		unhex(u, 32, v[i][1]);
		cr_assert_eq(tc_kex_from_private(TCPINC_TEP_TCPCRYPT_X25519, sk, 32, &k), 0);
		cr_assert_eq(tc_kex_derive(k, u, 32, es, &esl), 0);
		ASSERT_HEX(es, esl, v[i][2]);
		tc_kex_free(k);
	}
	/* §6.1 */
	uint8_t ska[32], skb[32], es[TC_ES_MAX];
	size_t esl;
	tc_kex *a, *b;
	unhex(ska, 32, "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
	unhex(skb, 32, "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb");
	cr_assert_eq(tc_kex_from_private(0x23, ska, 32, &a), 0);
	cr_assert_eq(tc_kex_from_private(0x23, skb, 32, &b), 0);
	ASSERT_HEX(tc_kex_pub(a), 32, "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
	ASSERT_HEX(tc_kex_pub(b), 32, "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f");
	cr_assert_eq(tc_kex_derive(a, tc_kex_pub(b), 32, es, &esl), 0);
	ASSERT_HEX(es, esl, "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742");
	cr_assert_eq(tc_kex_derive(b, tc_kex_pub(a), 32, es, &esl), 0);
	ASSERT_HEX(es, esl, "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742");
	/* all-zero public key ⇒ all-zero secret ⇒ rejected (§5, RFC 7748 §6.1) */
	uint8_t zero[32] = { 0 };
	cr_assert_eq(tc_kex_check_pub(0x23, zero, 32), 0, "encoding is fine");
	cr_assert_eq(tc_kex_derive(a, zero, 32, es, &esl), TC_ERR_KEX);
	cr_assert(sodium_is_zero(es, sizeof es), "ES wiped on failure");
	/* u = 1 (order-1 point on the twist... small order): also zero output */
	zero[0] = 1;
	cr_assert_eq(tc_kex_derive(a, zero, 32, es, &esl), TC_ERR_KEX);
	tc_kex_free(a);
	tc_kex_free(b);
}

Test(kex, x448_rfc7748)
{
	uint8_t ska[56], skb[56], es[TC_ES_MAX], zero[56] = { 0 };
	size_t esl;
	tc_kex *a, *b;
	unhex(ska, 56, "9a8f4925d1519f5775cf46b04b5800d4ee9ee8bae8bc5565d498c28dd9c9baf5"
	               "74a9419744897391006382a6f127ab1d9ac2d8c0a598726b");
	unhex(skb, 56, "1c306a7ac2a0e2e0990b294470cba339e6453772b075811d8fad0d1d6927c120"
	               "bb5ee8972b0d3e21374c9c921b09d1b0366f10b65173992d");
	cr_assert_eq(tc_kex_from_private(0x24, ska, 56, &a), 0);
	cr_assert_eq(tc_kex_from_private(0x24, skb, 56, &b), 0);
	ASSERT_HEX(tc_kex_pub(a), 56, "9b08f7cc31b7e3e67d22d5aea121074a273bd2b83de09c63faa73d2c"
	                              "22c5d9bbc836647241d953d40c5b12da88120d53177f80e532c41fa0");
	cr_assert_eq(tc_kex_derive(a, tc_kex_pub(b), 56, es, &esl), 0);
	ASSERT_HEX(es, esl, "07fff4181ac6cc95ec1c16a94a0f74d12da232ce40a77552281d282b"
	                    "b60c0b56fd2464c335543936521c24403085d59a449a5037514a879d");
	cr_assert_eq(tc_kex_derive(b, tc_kex_pub(a), 56, es, &esl), 0);
	ASSERT_HEX(es, esl, "07fff4181ac6cc95ec1c16a94a0f74d12da232ce40a77552281d282b"
	                    "b60c0b56fd2464c335543936521c24403085d59a449a5037514a879d");
	cr_assert_eq(tc_kex_derive(a, zero, 56, es, &esl), TC_ERR_KEX);
	tc_kex_free(a);
	tc_kex_free(b);
}

/* Both sides agree for every TEP; encodings have the §5 form. */
Test(kex, generate_and_agree_all_teps)
{
	static const uint8_t teps[] = { 0x21, 0x22, 0x23, 0x24 };
	static const size_t pl[] = { 35, 69, 32, 56 }, el[] = { 32, 66, 32, 56 };
	for (size_t i = 0; i < 4; i++) {
		tc_kex *a, *b;
		uint8_t e1[TC_ES_MAX], e2[TC_ES_MAX];
		size_t l1, l2;
		cr_assert_eq(tc_kex_pub_len(teps[i]), pl[i]);
		cr_assert_eq(tc_kex_secret_len(teps[i]), el[i]);
		cr_assert_eq(tc_kex_generate(teps[i], &a), 0);
		cr_assert_eq(tc_kex_generate(teps[i], &b), 0);
		if (pl[i] == 35 || pl[i] == 69) {
			const uint8_t *p = tc_kex_pub(a);
			cr_assert_eq((size_t)(p[0] << 8 | p[1]), pl[i], "pubkey_len = whole structure");
			cr_assert(p[2] == 2 || p[2] == 3, "compressed");
		}
		cr_assert_eq(tc_kex_check_pub(teps[i], tc_kex_pub(a), pl[i]), 0);
		cr_assert_eq(tc_kex_derive(a, tc_kex_pub(b), pl[i], e1, &l1), 0);
		cr_assert_eq(tc_kex_derive(b, tc_kex_pub(a), pl[i], e2, &l2), 0);
		cr_assert_eq(l1, el[i]);
		cr_assert_eq(l2, el[i]);
		cr_assert(memcmp(e1, e2, l1) == 0);
		cr_assert_eq(tc_kex_check_pub(teps[i], tc_kex_pub(a), pl[i] - 1), TC_ERR_PUBKEY);
		tc_kex_free(a);
		tc_kex_free(b);
	}
	tc_kex *k;
	cr_assert_eq(tc_kex_generate(0x25, &k), TC_ERR_UNSUPPORTED);
}

/* Invalid EC points (§5: validate per IEEE 1363 A.16.10). */
Test(kex, ec_point_validation)
{
	tc_kex *a, *b;
	uint8_t p[TC_PUB_MAX], es[TC_ES_MAX];
	size_t esl;
	for (int tep = 0x21; tep <= 0x22; tep++) {
		size_t L = tc_kex_pub_len((uint8_t)tep), clen = L - 3;
		cr_assert_eq(tc_kex_generate((uint8_t)tep, &a), 0);
		cr_assert_eq(tc_kex_generate((uint8_t)tep, &b), 0);
		memcpy(p, tc_kex_pub(b), L);
		/* pubkey_len variants: the point's length (33/67) or 0 */
		p[1] = (uint8_t)(L - 2);
		cr_assert_eq(tc_kex_check_pub((uint8_t)tep, p, L), TC_ERR_PUBKEY, "len=point only");
		p[0] = 1; p[1] = (uint8_t)L;
		cr_assert_eq(tc_kex_check_pub((uint8_t)tep, p, L), TC_ERR_PUBKEY, "len high byte");
		p[0] = 0;
		/* prefixes: infinity 00, uncompressed 04, hybrid 06/07, junk 05 */
		static const uint8_t bad_prefix[] = { 0x00, 0x01, 0x04, 0x05, 0x06, 0x07, 0xff };
		for (size_t i = 0; i < sizeof bad_prefix; i++) {
			uint8_t q[TC_PUB_MAX];
			memcpy(q, p, L);
			q[2] = bad_prefix[i];
			cr_assert_eq(tc_kex_check_pub((uint8_t)tep, q, L), TC_ERR_PUBKEY, "prefix %02x", bad_prefix[i]);
			cr_assert_eq(tc_kex_derive(a, q, L, es, &esl), TC_ERR_PUBKEY);
		}
		/* x >= p: all-ones x (p < 2^256 resp. 2^521 with top bits) */
		memset(p + 3, 0xff, clen);
		if (tep == 0x22)
			p[3] = 0x01;   /* 521-bit field: 0x01ff..ff = p itself */
		cr_assert_eq(tc_kex_check_pub((uint8_t)tep, p, L), TC_ERR_PUBKEY, "x >= p");
		/* an x with no point on the curve: search small x values until
		 * the library rejects one (about half of all x are off-curve) */
		int off_curve = 0;
		for (uint8_t x = 1; x < 40 && !off_curve; x++) {
			memset(p + 3, 0, clen);
			p[2 + clen] = x;
			p[2] = 0x02;
			if (tc_kex_check_pub((uint8_t)tep, p, L) == TC_ERR_PUBKEY) {
				off_curve = 1;
				cr_assert_eq(tc_kex_derive(a, p, L, es, &esl), TC_ERR_PUBKEY);
			}
		}
		cr_assert(off_curve, "found an off-curve x");
		/* the uncompressed encoding of a valid key is refused even if it
		 * fits: a 65-byte 04|x|y is not a valid P-256 wire key */
		tc_kex_free(a);
		tc_kex_free(b);
	}
	/* P-256: x = 0 has no square root? check against python: it is on the
	 * curve iff b is a QR mod p; regardless, 02|0..0 must not crash. */
	uint8_t z[35] = { 0, 35, 2 };
	int r = tc_kex_check_pub(0x21, z, 35);
	cr_assert(r == 0 || r == TC_ERR_PUBKEY);
}

/* ---- benchmark: which implementation for each AEAD -------------------------------- */

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

#define BENCH_MSG 16384
#define BENCH_BYTES (512u << 20)

static double bench_evp(const char *name, size_t klen)
{
	EVP_CIPHER *c = EVP_CIPHER_fetch(NULL, name, NULL);
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	static uint8_t m[BENCH_MSG], out[BENCH_MSG + 16];
	uint8_t key[32] = { 1 }, nonce[12] = { 2 }, ad[3] = { 0 }, tag[16];
	int ol;
	cr_assert(c && ctx);
	cr_assert(EVP_EncryptInit_ex(ctx, c, NULL, key, NULL) == 1);
	(void)klen;
	double t0 = now_s();
	for (size_t done = 0; done < BENCH_BYTES; done += BENCH_MSG) {
		nonce[11]++;
		EVP_EncryptInit_ex(ctx, NULL, NULL, NULL, nonce);
		EVP_EncryptUpdate(ctx, NULL, &ol, ad, 3);
		EVP_EncryptUpdate(ctx, out, &ol, m, BENCH_MSG);
		EVP_EncryptFinal_ex(ctx, out + ol, &ol);
		EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, 16, tag);
	}
	double t = now_s() - t0;
	EVP_CIPHER_CTX_free(ctx);
	EVP_CIPHER_free(c);
	return BENCH_BYTES / t / 1e6;
}

static double bench_sodium(int which)
{
	static uint8_t m[BENCH_MSG], out[BENCH_MSG + 16];
	uint8_t key[32] = { 1 }, nonce[12] = { 2 }, ad[3] = { 0 }, tag[16];
	unsigned long long tl;
	crypto_aead_aes256gcm_state st;
	if (which == 1)
		crypto_aead_aes256gcm_beforenm(&st, key);
	double t0 = now_s();
	for (size_t done = 0; done < BENCH_BYTES; done += BENCH_MSG) {
		nonce[11]++;
		if (which == 0)
			crypto_aead_chacha20poly1305_ietf_encrypt_detached(out, tag, &tl, m, BENCH_MSG, ad, 3,
			                                                   NULL, nonce, key);
		else
			crypto_aead_aes256gcm_encrypt_detached_afternm(out, tag, &tl, m, BENCH_MSG, ad, 3,
			                                               NULL, nonce, &st);
	}
	double t = now_s() - t0;
	return BENCH_BYTES / t / 1e6;
}

/* Our own interface (two plaintext pieces, as from a wrapping ring). */
static double bench_tc(uint16_t id)
{
	static uint8_t m[BENCH_MSG], out[BENCH_MSG + 16];
	uint8_t key[32] = { 1 }, nonce[12] = { 2 }, ad[3] = { 0 };
	tc_aead *a;
	cr_assert_eq(tc_aead_new(id, 1, &a), 0);
	cr_assert_eq(tc_aead_setkey(a, key, tc_aead_key_len(id)), 0);
	struct tc_iov in[2] = { { m, 5000 }, { m + 5000, BENCH_MSG - 5000 } };
	double t0 = now_s();
	for (size_t done = 0; done < BENCH_BYTES; done += BENCH_MSG) {
		nonce[11]++;
		cr_assert_eq(tc_aead_seal(a, nonce, ad, 3, in, 2, out), 0);
	}
	double t = now_s() - t0;
	tc_aead_free(a);
	return BENCH_BYTES / t / 1e6;
}

Test(aead_bench, evp_vs_libsodium_16k)
{
	if (!getenv("TC_BENCH"))
		cr_skip_test("set TC_BENCH=1 to run the AEAD benchmark");
	cr_assert(sodium_init() >= 0);
	printf("AEAD encrypt throughput, 16 KiB messages, %u MiB each (MB/s):\n", BENCH_BYTES >> 20);
	printf("  AES-128-GCM        OpenSSL EVP %8.0f   libsodium   (none in 1.0.18)   tc_aead %8.0f\n",
	       bench_evp("AES-128-GCM", 16), bench_tc(TCPINC_AEAD_AES_128_GCM));
	printf("  AES-256-GCM        OpenSSL EVP %8.0f   libsodium %8.0f   tc_aead %8.0f\n",
	       bench_evp("AES-256-GCM", 32),
	       crypto_aead_aes256gcm_is_available() ? bench_sodium(1) : 0.0,
	       bench_tc(TCPINC_AEAD_AES_256_GCM));
	printf("  ChaCha20-Poly1305  OpenSSL EVP %8.0f   libsodium %8.0f   tc_aead %8.0f\n",
	       bench_evp("ChaCha20-Poly1305", 32), bench_sodium(0),
	       bench_tc(TCPINC_AEAD_CHACHA20_POLY1305));
	fflush(stdout);
}
