/*
 * tc_crypto.h — crypto backend of tcpcrypt (RFC 8548 = draft-ietf-tcpinc-
 * tcpcrypt-15): key agreement for the four TEPs (§5), HKDF-Extract/CPRF with
 * SHA-256 (§3.1, Figure 1), and the three AEADs (§6) behind one interface.
 *
 * Implementations (chosen by measurement, tests/unit/test_tc_crypto.c,
 * suite aead_bench; run it with TC_BENCH=1):
 *   X25519            libsodium crypto_scalarmult (RFC 7748)
 *   X448, P-256/P-521 OpenSSL 3 EVP_PKEY
 *   HKDF / CPRF       libsodium crypto_auth_hmacsha256 (streaming state)
 *   all three AEADs   OpenSSL EVP_CIPHER_CTX, one per key, streaming
 *
 * Nothing here allocates per frame.  Secrets live in secmem blocks (tc_kex;
 * locked, not dumped, wiped on free, see secmem.h) or inside OpenSSL objects that cleanse themselves when freed.
 */
#ifndef TC_CRYPTO_H
#define TC_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#define TC_WUR __attribute__((warn_unused_result))

/* §5: N_A_LEN = N_B_LEN = K_LEN = 32 for all four TEPs. */
#define TC_K_LEN          32
#define TC_NONCE_LEN      32
#define TC_HASH_LEN       32   /* SHA-256 output = PRK length */

/* §6, Table 3: every AEAD has a 12-byte nonce; all three have 16-byte tags. */
#define TC_AEAD_NONCE_LEN 12
#define TC_AEAD_TAG_LEN   16
#define TC_AEAD_KEY_MAX   32
#define TC_TRAFFIC_KEY_MAX (TC_AEAD_KEY_MAX + TC_AEAD_NONCE_LEN)

/* Wire sizes of Pub_A/Pub_B (§5).  P-256/P-521: pubkey_len(2) | compressed
 * point; docs/DESIGN.md (Readings): "this project reads L as the length of the whole
 * structure including the two length bytes (35 for P-256, 69 for P-521)". */
#define TC_PUB_P256_LEN   35
#define TC_PUB_P521_LEN   69
#define TC_PUB_X25519_LEN 32
#define TC_PUB_X448_LEN   56
#define TC_PUB_MAX        69
/* Largest ES: P-521 x-coordinate (66 bytes). */
#define TC_ES_MAX         66

/* Return codes shared by tc_crypto and tcpcrypt (tcpcrypt.h adds more).
 * 0 is success; negative values are errors. */
#define TC_ERR_INTERNAL   (-1)   /* library failure, allocation failure */
#define TC_ERR_ARG        (-2)   /* caller passed something invalid */
#define TC_ERR_UNSUPPORTED (-3)  /* unknown TEP or AEAD id */
#define TC_ERR_PUBKEY     (-4)   /* peer public key malformed or invalid point */
#define TC_ERR_KEX        (-5)   /* key agreement failed (e.g. all-zero secret) */
#define TC_ERR_AUTH       (-6)   /* AEAD tag did not verify */

/* A piece of a scattered buffer. */
struct tc_iov {
	const uint8_t *p;
	size_t len;
};
struct tc_iov_mut {
	uint8_t *p;
	size_t len;
};

/* ---- key agreement (§5) ---------------------------------------------------- */

/* Wire length of a public key for a TEP id (v bit ignored), 0 if unknown. */
size_t tc_kex_pub_len(uint8_t tep);
/* Length of ES for a TEP, 0 if unknown. */
size_t tc_kex_secret_len(uint8_t tep);

/* An ephemeral key pair.  Opaque; lives in a secmem block. */
typedef struct tc_kex tc_kex;

/* Generate a fresh ephemeral key pair for tep.  tund may call this ahead of
 * time (off the connection's critical path) and hand the pair to a session. */
TC_WUR int tc_kex_generate(uint8_t tep, tc_kex **out);
uint8_t tc_kex_tep(const tc_kex *k);
/* Public key in wire form (§5), tc_kex_pub_len(tep) bytes. */
const uint8_t *tc_kex_pub(const tc_kex *k);
/* Validate a received public key in wire form: exact length, for P-256/P-521
 * the pubkey_len field, compressed form (§5 "MUST encode ... compressed"),
 * and the IEEE 1363 A.16.10 checks (x < p, point on the curve, not the point
 * at infinity, order n·Q = O).  X25519/X448 keys are any 32/56 bytes; the
 * all-zero shared secret check happens in tc_kex_derive (§5, RFC 7748 §6). */
TC_WUR int tc_kex_check_pub(uint8_t tep, const uint8_t *pub, size_t len);
/* ES = key agreement of our private key with the peer's wire public key.
 * es must hold tc_kex_secret_len(tep) bytes; *es_len receives it. */
TC_WUR int tc_kex_derive(const tc_kex *k, const uint8_t *peer, size_t peer_len,
                         uint8_t es[static TC_ES_MAX], size_t *es_len);
/* Wipes and frees (NULL is fine). */
void tc_kex_free(tc_kex *k);

/* Test hook: a key pair from a given private scalar (X25519: 32 bytes,
 * X448: 56 bytes; P-256/P-521: big-endian scalar of 32/66 bytes). */
TC_WUR int tc_kex_from_private(uint8_t tep, const uint8_t *priv, size_t len, tc_kex **out);

/* ---- HKDF-SHA256 (§3.1 Figure 1, RFC 5869) --------------------------------- */

/* PRK = HMAC-SHA256(salt, IKM) with IKM given as n pieces. */
void tc_hkdf_extract(uint8_t prk[static TC_HASH_LEN], const uint8_t *salt, size_t salt_len,
                     const struct tc_iov *ikm, size_t n);
/* CPRF(K, CONST, L) = HKDF-Expand-SHA256(K, info = CONST, L):
 * T(n) = HMAC(K, T(n-1) | CONST | n).  key_len is the PRK length (32 for all
 * tcpcrypt uses; RFC 5869 allows any).  Fails if L > 255*32. */
TC_WUR int tc_cprf(uint8_t *out, size_t out_len, const uint8_t *key, size_t key_len,
                   const uint8_t *info, size_t info_len);

/* ---- AEAD (§6) ---------------------------------------------------------------- */

/* ae_key_len for an AEAD id (16, 32, 32), 0 if unsupported. */
size_t tc_aead_key_len(uint16_t id);
int tc_aead_supported(uint16_t id);

/* One direction of one AEAD: an EVP_CIPHER_CTX set up once per key. */
typedef struct tc_aead tc_aead;

TC_WUR int tc_aead_new(uint16_t id, int encrypt, tc_aead **out);
/* (Re)key: key_len must equal tc_aead_key_len(id).  No allocation. */
TC_WUR int tc_aead_setkey(tc_aead *a, const uint8_t *key, size_t key_len);
void tc_aead_free(tc_aead *a);
uint16_t tc_aead_id(const tc_aead *a);

/* Encrypt the concatenation of n plaintext pieces into out (contiguous):
 * sum(len) ciphertext bytes followed by the 16-byte tag.  out may not
 * overlap the input pieces (except exactly in place, piece by piece). */
TC_WUR int tc_aead_seal(tc_aead *a, const uint8_t nonce[static TC_AEAD_NONCE_LEN],
                        const uint8_t *ad, size_t ad_len,
                        const struct tc_iov *pt, size_t n, uint8_t *out);

/* Streaming decryption: init (nonce, AD), any number of updates (each
 * writes exactly len plaintext bytes; the plaintext is NOT authentic until
 * final returns 0), final (tag check).  */
TC_WUR int tc_aead_open_init(tc_aead *a, const uint8_t nonce[static TC_AEAD_NONCE_LEN],
                             const uint8_t *ad, size_t ad_len);
TC_WUR int tc_aead_open_update(tc_aead *a, const uint8_t *ct, size_t len, uint8_t *pt);
TC_WUR int tc_aead_open_final(tc_aead *a, const uint8_t tag[static TC_AEAD_TAG_LEN]);

/* One shot: ciphertext as nct pieces (tag excluded), plaintext scattered
 * into npt pieces whose total length must be >= the ciphertext length.
 * Returns 0 or TC_ERR_AUTH (the output then holds unauthenticated bytes the
 * caller must not use). */
TC_WUR int tc_aead_open(tc_aead *a, const uint8_t nonce[static TC_AEAD_NONCE_LEN],
                        const uint8_t *ad, size_t ad_len,
                        const struct tc_iov *ct, size_t nct,
                        const uint8_t tag[static TC_AEAD_TAG_LEN],
                        const struct tc_iov_mut *pt, size_t npt);

/* Library initialisation (sodium_init, cipher fetches).  Idempotent and
 * thread-safe; every constructor above calls it. */
TC_WUR int tc_crypto_init(void);

#endif
