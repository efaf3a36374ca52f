/*
 * test_eno.c — unit tests of stack/eno.c against RFC 8547 (tcpeno-19) §4 and
 * draft-ietf-tcpinc-api-06 §2.1.  Byte strings are written as hex, exactly as
 * they appear on the wire; expected values are derived by hand from the text.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "eno.h"

/* ---- helpers ------------------------------------------------------------- */

/* "45 04 21 23" -> bytes; returns the count. */
static size_t hex(const char *s, uint8_t *out, size_t cap)
{
    size_t n = 0;
    while (*s) {
        unsigned v;
        int used;
        if (*s == ' ') {
            s++;
            continue;
        }
        cr_assert(sscanf(s, "%2x%n", &v, &used) == 1 && used == 2, "bad hex %s", s);
        cr_assert(n < cap);
        out[n++] = (uint8_t)v;
        s += 2;
    }
    return n;
}

static void assert_bytes(const uint8_t *got, size_t got_len, const char *want_hex,
                         const char *what)
{
    uint8_t want[128];
    size_t n = hex(want_hex, want, sizeof(want));
    char buf[400] = "";
    for (size_t i = 0; i < got_len && i < 120; i++)
        snprintf(buf + strlen(buf), sizeof(buf) - strlen(buf), "%02x ", got[i]);
    cr_assert(got_len == n && (n == 0 || memcmp(got, want, n) == 0),
              "%s: got [%s] want [%s]", what, buf, want_hex);
}

/* A TCP options area as lwIP would send it: MSS, NOP+window scale, then the
 * ENO bytes, padded with NOPs to a multiple of 4. */
static size_t area_with(uint8_t area[ENO_TCP_OPTS_MAX], const uint8_t *eno, size_t n)
{
    static const uint8_t mss_ws[] = { 0x02, 0x04, 0x05, 0xb4, 0x01, 0x03, 0x03, 0x07 };
    size_t len = 0;
    memcpy(area, mss_ws, sizeof(mss_ws));
    len += sizeof(mss_ws);
    cr_assert(len + n <= ENO_TCP_OPTS_MAX);
    if (n > 0)
        memcpy(area + len, eno, n);
    len += n;
    while (len % 4 != 0)
        area[len++] = 0x01;
    return len;
}

static size_t area_hex(uint8_t area[ENO_TCP_OPTS_MAX], const char *eno_hex)
{
    uint8_t eno[64];
    size_t n = hex(eno_hex, eno, sizeof(eno));
    return area_with(area, eno, n);
}

/* The options area of a segment `c` sends now with these flags; also tells
 * the connection it was sent (as the lwIP glue does). */
static size_t send_seg(struct eno_conn *c, unsigned flags, uint8_t area[ENO_TCP_OPTS_MAX],
                       enum eno_action *act)
{
    uint8_t eno[ENO_SYN_OPT_MAX];
    size_t n = eno_conn_output(c, flags, eno);
    cr_assert_eq(n, eno_conn_output_len(c, flags));
    enum eno_action a = eno_conn_sent(c, flags, n);
    if (act != NULL)
        *act = a;
    return area_with(area, eno, n);
}

static size_t out_bytes(const struct eno_conn *c, unsigned flags, uint8_t out[ENO_SYN_OPT_MAX])
{
    return eno_conn_output(c, flags, out);
}

#define SYN     ENO_TCP_SYN
#define ACK     ENO_TCP_ACK
#define SYNACK  (ENO_TCP_SYN | ENO_TCP_ACK)

/* ---- a configurable TEP for the callbacks -------------------------------- */

struct tctx {
    uint8_t  syn_data[128][ENO_SUBDATA_MAX];
    uint8_t  syn_data_len[128];
    bool     syn_data_vary;          /* return a different byte each call */
    unsigned syn_data_calls;
    bool     answer_set[128];
    bool     answer_lies;            /* claim more data than cap */
    enum eno_answer answer[128];
    uint8_t  answer_data[128][ENO_SUBDATA_MAX];
    uint8_t  answer_len[128];
    bool     verdict_set[128];
    enum eno_verdict verdict[128];
    bool     unimplemented[128];
    bool     syn_data_defined[128];
    unsigned check_calls;
    bool     tcpcrypt_check;         /* tcpcrypt-15 §3.5-like validity */
};

static bool t_implemented(void *ctx, uint8_t tep)
{
    struct tctx *t = ctx;
    return !t->unimplemented[tep];
}

static size_t t_syn_data(void *ctx, uint8_t tep, uint8_t *buf, size_t cap)
{
    struct tctx *t = ctx;
    size_t n = t->syn_data_len[tep];
    t->syn_data_calls++;
    if (n > cap)
        return 0;
    memcpy(buf, t->syn_data[tep], n);
    if (t->syn_data_vary && n > 0)
        buf[0] = (uint8_t)t->syn_data_calls;
    return n;
}

static enum eno_answer t_answer(void *ctx, const struct eno_subopt_view *a,
                                uint8_t *buf, size_t cap, size_t *len)
{
    struct tctx *t = ctx;
    if (!t->answer_set[a->tep])
        return ENO_ANSWER_PLAIN;
    if (t->answer[a->tep] == ENO_ANSWER_DATA) {
        if (t->answer_len[a->tep] > cap) {
            if (!t->answer_lies)
                return ENO_ANSWER_PLAIN;        /* a TEP that cannot fit: fresh */
            *len = t->answer_len[a->tep];       /* a broken TEP: must be refused */
            return ENO_ANSWER_DATA;
        }
        memcpy(buf, t->answer_data[a->tep], t->answer_len[a->tep]);
        *len = t->answer_len[a->tep];
    }
    return t->answer[a->tep];
}

/* tcpcrypt-15 §3.5 shaped check: resumption data is 9 id bytes + nonce; the
 * id-half A expects back is A's own id-half with every byte XOR 0xff. */
static enum eno_verdict t_check(void *ctx, int self_role, const struct eno_subopt_view *a,
                                const struct eno_subopt_view *b)
{
    struct tctx *t = ctx;
    t->check_calls++;
    if (t->verdict_set[a->tep])
        return t->verdict[a->tep];
    if (!t->tcpcrypt_check)
        return ENO_VERDICT_VALID;
    const struct eno_subopt_view *peer = self_role == ENO_ROLE_A ? b : a;
    if (peer->v && peer->data_len < 9)
        return ENO_VERDICT_IGNORE_DATA;         /* "treat as v = 0" */
    if (self_role == ENO_ROLE_A && a->v && a->data_len >= 9 && b->v && b->data_len >= 9) {
        for (int i = 0; i < 9; i++)
            if ((b->data[i] ^ a->data[i]) != 0xff)
                return ENO_VERDICT_INVALID;     /* A ignores that suboption */
    }
    return ENO_VERDICT_VALID;
}

static bool t_syn_data_defined(void *ctx, uint8_t tep)
{
    struct tctx *t = ctx;
    return t->syn_data_defined[tep];
}

static const struct eno_tep_ops t_ops = {
    .implemented = t_implemented,
    .syn_data = t_syn_data,
    .answer = t_answer,
    .check = t_check,
    .defines_syn_data = t_syn_data_defined,
};

static void cfg_make(struct eno_config *cfg, struct tctx *t, const char *teps_hex)
{
    uint8_t teps[64];
    size_t n = hex(teps_hex, teps, sizeof(teps));
    eno_config_init(cfg);
    cfg->ops = &t_ops;
    cfg->ops_ctx = t;
    cr_assert_eq(eno_config_set_teps(cfg, teps, n), ENO_OK, "teps %s", teps_hex);
}

/* Run SYN, SYN-ACK, ACK between an active opener a and a passive opener b,
 * then one data segment each way (A first, as tcpcrypt's Init1 would). */
struct hs_result {
    enum eno_action a_init, b_init, a_synack, a_ack_sent, b_ack, a_data_in;
};

static struct hs_result handshake(struct eno_conn *a, const struct eno_config *ca,
                                  struct eno_conn *b, const struct eno_config *cb)
{
    struct hs_result r;
    uint8_t area[ENO_TCP_OPTS_MAX];
    size_t n;

    memset(&r, 0, sizeof(r));
    r.a_init = eno_conn_init_active(a, ca);
    n = send_seg(a, SYN, area, NULL);
    r.b_init = eno_conn_init_passive(b, cb, area, n);
    n = send_seg(b, SYNACK, area, NULL);
    r.a_synack = eno_conn_input(a, SYNACK, area, n);
    n = send_seg(a, ACK, area, &r.a_ack_sent);
    r.b_ack = eno_conn_input(b, ACK, area, n);
    n = send_seg(a, ACK | ENO_TCP_PSH, area, NULL);      /* A's first data */
    (void)eno_conn_input(b, ACK | ENO_TCP_PSH, area, n);
    n = send_seg(b, ACK | ENO_TCP_PSH, area, NULL);      /* B's first data */
    r.a_data_in = eno_conn_input(a, ACK | ENO_TCP_PSH, area, n);
    return r;
}

/* Both ends encrypting and in agreement (§4.3, §4.5, §4.8). */
static void assert_agree(const struct eno_conn *a, const struct eno_conn *b)
{
    uint8_t ta[ENO_TRANSCRIPT_MAX], tb[ENO_TRANSCRIPT_MAX];
    struct eno_subopt_view va, vb;

    cr_assert(eno_conn_encrypting(a), "A not encrypting (%s)", eno_reason_str(eno_conn_reason(a)));
    cr_assert(eno_conn_encrypting(b), "B not encrypting (%s)", eno_reason_str(eno_conn_reason(b)));
    cr_assert_eq(eno_conn_role(a) ^ eno_conn_role(b), 1, "roles must be opposite");
    cr_assert_eq(eno_conn_negtep(a), eno_conn_negtep(b));
    size_t la = eno_conn_transcript(a, ta);
    size_t lb = eno_conn_transcript(b, tb);
    cr_assert(la > 0 && la == lb && memcmp(ta, tb, la) == 0, "transcripts differ");
    for (int role = ENO_ROLE_A; role <= ENO_ROLE_B; role++) {
        cr_assert(eno_conn_subopt(a, role, &va));
        cr_assert(eno_conn_subopt(b, role, &vb));
        cr_assert_eq(va.tep, vb.tep);
        cr_assert_eq(va.v, vb.v);
        cr_assert_eq(va.data_len, vb.data_len);
        if (va.data_len > 0)
            cr_assert_eq(memcmp(va.data, vb.data, va.data_len), 0);
        cr_assert_eq(va.tep, eno_conn_negtep(a) & 0x7f);
    }
    cr_assert(eno_conn_subopt(a, ENO_ROLE_B, &vb));
    cr_assert_eq(vb.v, (eno_conn_negtep(a) & 0x80) != 0, "NEGTEP v = B's v");
    cr_assert_eq(eno_conn_peer_gopt(a), eno_conn_self_gopt(b));
    cr_assert_eq(eno_conn_peer_gopt(b), eno_conn_self_gopt(a));
    cr_assert_eq(eno_conn_role(a), eno_conn_self_gopt(a) & 1, "api-06: ROLE = b bit");
    cr_assert_eq(eno_conn_api_errno(a), 0);
}

/* ---- §4.1: scanning the TCP options area --------------------------------- */

Test(eno_scan, table)
{
    static const struct {
        const char *name, *area;
        unsigned count;
        size_t off, len;
        bool malformed;
    } cases[] = {
        { "empty", "", 0, 0, 0, false },
        { "mss ws only", "02 04 05 b4 01 03 03 07", 0, 0, 0, false },
        { "one eno", "02 04 05 b4 01 03 03 07 45 04 21 23", 1, 8, 4, false },
        { "nops before", "01 01 45 02", 1, 2, 2, false },
        { "two eno", "45 03 21 01 45 02", 2, 0, 3, false },
        { "eno after eol", "00 45 02", 0, 0, 0, false },
        { "eol padding", "45 02 00 00", 1, 0, 2, false },
        { "len 0", "45 00", 0, 0, 0, true },
        { "len 1", "02 01 45 02", 0, 0, 0, true },
        { "past end", "45 05 21 23", 0, 0, 0, true },
        { "kind at end", "45 02 45", 1, 0, 2, true },
        { "other past end", "45 02 08 0a 00", 1, 0, 2, true },
        { "eno 40", "45 28 21 21 21 21 21 21 21 21 21 21 21 21 21 21 21 21 21 21"
                    " 21 21 21 21 21 21 21 21 21 21 21 21 21 21 21 21 21 21 21 21", 1, 0, 40, false },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint8_t a[64];
        struct eno_scan s;
        size_t n = hex(cases[i].area, a, sizeof(a));
        eno_scan_options(a, n, &s);
        cr_assert_eq(s.count, cases[i].count, "%s: count", cases[i].name);
        cr_assert_eq(s.malformed, cases[i].malformed, "%s: malformed", cases[i].name);
        if (s.count > 0) {
            cr_assert_eq(s.first_off, cases[i].off, "%s: off", cases[i].name);
            cr_assert_eq(s.first_len, cases[i].len, "%s: len", cases[i].name);
        }
    }
    /* An area longer than TCP allows is malformed. */
    uint8_t big[41];
    struct eno_scan s;
    memset(big, 0x01, sizeof(big));
    eno_scan_options(big, sizeof(big), &s);
    cr_assert(s.malformed);
}

/* ---- §4.1–§4.4: parsing the SYN form ------------------------------------- */

/* subs: "glt:v:lenbyte:data" separated by ',' e.g. "21:0:0:,23:1:1:0102" */
static void assert_subs(const struct eno_synopt *o, const char *subs, const char *name)
{
    char copy[256];
    unsigned k = 0;
    snprintf(copy, sizeof(copy), "%s", subs);
    for (char *save = NULL, *tok = strtok_r(copy, ",", &save); tok != NULL;
         tok = strtok_r(NULL, ",", &save), k++) {
        unsigned glt, v, lb;
        char data[128] = "";
        int f = sscanf(tok, "%x:%u:%u:%127s", &glt, &v, &lb, data);
        cr_assert(f >= 3, "%s: bad expectation %s", name, tok);
        cr_assert(k < o->nsub, "%s: too few suboptions", name);
        cr_assert_eq(o->sub[k].glt, glt, "%s: sub %u glt", name, k);
        cr_assert_eq(o->sub[k].v, v, "%s: sub %u v", name, k);
        cr_assert_eq(o->sub[k].lenbyte, lb, "%s: sub %u lenbyte", name, k);
        assert_bytes(o->bytes + o->sub[k].data_off, o->sub[k].data_len, data, name);
    }
    cr_assert_eq(o->nsub, k, "%s: suboption count", name);
}

Test(eno_parse, table)
{
    static const struct {
        const char *name, *opt;
        int rc;
        uint8_t gopt, ngopt;
        const char *subs;
    } cases[] = {
        { "vacuous implicit", "45 02", ENO_OK, 0x00, 0, "" },
        { "vacuous b=1", "45 03 01", ENO_OK, 0x01, 1, "" },
        { "figure 9 A", "45 04 21 23", ENO_OK, 0x00, 0, "21:0:0:,23:0:0:" },
        { "B answer", "45 04 01 23", ENO_OK, 0x01, 1, "23:0:0:" },
        /* §4.2: only the first global suboption counts */
        { "two gopts", "45 05 01 03 21", ENO_OK, 0x01, 2, "21:0:0:" },
        { "two gopts rev", "45 05 00 01 21", ENO_OK, 0x00, 2, "21:0:0:" },
        { "gopt after tep", "45 05 21 02 01", ENO_OK, 0x02, 2, "21:0:0:" },
        /* §4.2: z bits kept in the value, ignored by negotiation */
        { "z bits", "45 04 1d 21", ENO_OK, 0x1d, 1, "21:0:0:" },
        /* §4.1: v = 1 without a length byte runs to the end */
        { "v data to end", "45 05 a1 01 02", ENO_OK, 0, 0, "21:1:0:0102" },
        { "v no data", "45 03 a1", ENO_OK, 0, 0, "21:1:0:" },
        { "v data swallows", "45 07 21 a3 01 02 23", ENO_OK, 0, 0, "21:0:0:,23:1:0:010223" },
        /* §4.4: length bytes */
        { "lenbyte 1", "45 06 81 a1 01 02", ENO_OK, 0, 0, "21:1:1:0102" },
        { "lenbyte then more", "45 0a 80 a1 05 23 81 a2 07 08", ENO_OK, 0, 0,
          "21:1:1:05,23:0:0:,22:1:1:0708" },
        { "lenbyte 0x20", "45 05 80 a0 ff", ENO_OK, 0, 0, "20:1:1:ff" },
        { "lenbyte then tail v", "45 08 80 a1 05 a3 09 0a", ENO_OK, 0, 0,
          "21:1:1:05,23:1:0:090a" },
        { "repeated tep", "45 04 21 21", ENO_OK, 0, 0, "21:0:0:,21:0:0:" },
        { "lenbyte 32 exact", "45 24 9f a1 00 01 02 03 04 05 06 07 08 09 0a 0b 0c 0d 0e 0f"
                              " 10 11 12 13 14 15 16 17 18 19 1a 1b 1c 1d 1e 1f", ENO_OK, 0, 0,
          "21:1:1:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f" },
        /* §4.4 (1): data would extend beyond the option */
        { "lenbyte last", "45 03 80", ENO_E_ILL_FORMED, 0, 0, "" },
        { "lenbyte + tep last", "45 04 80 a1", ENO_E_ILL_FORMED, 0, 0, "" },
        { "data past end", "45 05 81 a1 01", ENO_E_ILL_FORMED, 0, 0, "" },
        { "lenbyte 32 short", "45 05 9f a1 00", ENO_E_ILL_FORMED, 0, 0, "" },
        /* §4.4 (2): followed by 0x00-0x9f */
        { "lenbyte + v0 tep", "45 05 80 21 00", ENO_E_ILL_FORMED, 0, 0, "" },
        { "lenbyte + gopt", "45 05 80 01 21", ENO_E_ILL_FORMED, 0, 0, "" },
        { "lenbyte + lenbyte", "45 06 80 80 a1 00", ENO_E_ILL_FORMED, 0, 0, "" },
        { "ill after good", "45 06 01 21 85 21", ENO_E_ILL_FORMED, 0, 0, "" },
        /* not an ENO option at all */
        { "wrong kind", "44 02", ENO_E_INVAL, 0, 0, "" },
        { "len mismatch", "45 05 21 23", ENO_E_INVAL, 0, 0, "" },
        { "len 1", "45", ENO_E_INVAL, 0, 0, "" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint8_t b[64];
        struct eno_synopt o;
        size_t n = hex(cases[i].opt, b, sizeof(b));
        int rc = eno_synopt_parse(&o, b, n);
        cr_assert_eq(rc, cases[i].rc, "%s: rc %d", cases[i].name, rc);
        if (rc != ENO_OK) {
            cr_assert_eq(o.len, 0, "%s: nothing kept", cases[i].name);
            cr_assert_eq(o.nsub, 0, "%s: nothing kept", cases[i].name);
            continue;
        }
        cr_assert_eq(o.len, n, "%s", cases[i].name);
        cr_assert_eq(memcmp(o.bytes, b, n), 0, "%s: bytes kept", cases[i].name);
        cr_assert_eq(o.gopt, cases[i].gopt, "%s: gopt", cases[i].name);
        cr_assert_eq(o.ngopt, cases[i].ngopt, "%s: ngopt", cases[i].name);
        assert_subs(&o, cases[i].subs, cases[i].name);
    }
}

/* §4.4 (2): every byte 0x00-0x9f after a length byte is fatal, 0xa0-0xff is
 * fine; for every length byte. */
Test(eno_parse, lenbyte_followers_exhaustive)
{
    for (unsigned lb = 0x80; lb <= 0x9f; lb++) {
        for (unsigned f = 0x00; f <= 0xff; f++) {
            uint8_t b[ENO_SYN_OPT_MAX] = { 0x45, 0, (uint8_t)lb, (uint8_t)f };
            size_t datalen = (lb & 0x1f) + 1;
            size_t n = 4 + datalen;
            memset(b + 4, 0x77, datalen);
            b[1] = (uint8_t)n;
            struct eno_synopt o;
            int rc = eno_synopt_parse(&o, b, n);
            if (f < 0xa0) {
                cr_assert_eq(rc, ENO_E_ILL_FORMED, "lb %02x follower %02x", lb, f);
            } else {
                cr_assert_eq(rc, ENO_OK, "lb %02x follower %02x", lb, f);
                cr_assert_eq(o.nsub, 1);
                cr_assert_eq(o.sub[0].glt, f & 0x7f);
                cr_assert_eq(o.sub[0].data_len, datalen);
                /* one byte short: data past the end, §4.4 (1) */
                b[1] = (uint8_t)(n - 1);
                cr_assert_eq(eno_synopt_parse(&o, b, n - 1), ENO_E_ILL_FORMED);
            }
        }
    }
}

/* ---- encoder -------------------------------------------------------------------- */

Test(eno_encode, table)
{
    static const uint8_t d2[] = { 0x01, 0x02 };
    static const uint8_t d33[33] = { 0 };
    static const struct {
        const char *name;
        int gopt;
        struct eno_tep_offer t[4];
        size_t n, max;
        int rc;
        const char *want;
    } cases[] = {
        { "section 4.8 A", ENO_GOPT_IMPLICIT, { { 0x21, 0, 0, NULL }, { 0x23, 0, 0, NULL } }, 2, 40, 4, "45 04 21 23" },
        { "section 4.8 B", 0x01, { { 0x23, 0, 0, NULL } }, 1, 40, 4, "45 04 01 23" },
        { "vacuous", ENO_GOPT_IMPLICIT, { { 0 } }, 0, 40, 2, "45 02" },
        { "vacuous b", 0x01, { { 0 } }, 0, 40, 3, "45 03 01" },
        { "data last", ENO_GOPT_IMPLICIT, { { 0x21, 0, 0, NULL }, { 0x23, 1, 2, d2 } }, 2, 40, 6, "45 06 21 a3 01 02" },
        { "data first", ENO_GOPT_IMPLICIT, { { 0x21, 1, 2, d2 }, { 0x23, 0, 0, NULL } }, 2, 40, 7, "45 07 81 a1 01 02 23" },
        { "data implies v", 0x02, { { 0x22, 0, 2, d2 } }, 1, 40, 6, "45 06 02 a2 01 02" },
        { "v no data last", ENO_GOPT_IMPLICIT, { { 0x21, 1, 0, NULL } }, 1, 40, 3, "45 03 a1" },
        { "v no data not last", ENO_GOPT_IMPLICIT, { { 0x21, 1, 0, NULL }, { 0x23, 0, 0, NULL } }, 2, 40, ENO_E_INVAL, "" },
        { "33 bytes not last", ENO_GOPT_IMPLICIT, { { 0x21, 1, 33, d33 }, { 0x23, 0, 0, NULL } }, 2, 40, ENO_E_INVAL, "" },
        { "33 bytes last", ENO_GOPT_IMPLICIT, { { 0x21, 1, 33, d33 } }, 1, 40, 36, NULL },
        { "tep too small", ENO_GOPT_IMPLICIT, { { 0x1f, 0, 0, NULL } }, 1, 40, ENO_E_INVAL, "" },
        { "tep with v", ENO_GOPT_IMPLICIT, { { 0xa1, 0, 0, NULL } }, 1, 40, ENO_E_INVAL, "" },
        { "gopt too big", 0x20, { { 0x21, 0, 0, NULL } }, 1, 40, ENO_E_INVAL, "" },
        { "no space", 0x01, { { 0x21, 0, 0, NULL }, { 0x22, 0, 0, NULL } }, 2, 4, ENO_E_NOSPACE, "" },
        { "exact space", 0x01, { { 0x21, 0, 0, NULL }, { 0x22, 0, 0, NULL } }, 2, 5, 5, "45 05 01 21 22" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint8_t out[ENO_SYN_OPT_MAX];
        int rc = eno_synopt_encode(out, cases[i].max, cases[i].gopt, cases[i].t, cases[i].n);
        cr_assert_eq(rc, cases[i].rc, "%s: rc %d", cases[i].name, rc);
        if (rc <= 0)
            continue;
        if (cases[i].want != NULL)
            assert_bytes(out, (size_t)rc, cases[i].want, cases[i].name);
        /* what we encode parses back to the same offers */
        struct eno_synopt o;
        cr_assert_eq(eno_synopt_parse(&o, out, (size_t)rc), ENO_OK, "%s: reparse", cases[i].name);
        cr_assert_eq(o.nsub, cases[i].n, "%s", cases[i].name);
        cr_assert_eq(o.gopt, cases[i].gopt == ENO_GOPT_IMPLICIT ? 0 : cases[i].gopt);
        for (size_t k = 0; k < cases[i].n; k++) {
            cr_assert_eq(o.sub[k].glt, cases[i].t[k].tep);
            cr_assert_eq(o.sub[k].data_len, cases[i].t[k].data_len);
            cr_assert_eq(o.sub[k].v, cases[i].t[k].v || cases[i].t[k].data_len > 0);
        }
    }
}

/* ---- api-06 configuration -------------------------------------------------- */

Test(eno_config, set_teps_rules)
{
    struct tctx t;
    struct eno_config cfg;
    memset(&t, 0, sizeof(t));
    t.unimplemented[0x22] = true;
    eno_config_init(&cfg);
    cfg.ops = &t_ops;
    cfg.ops_ctx = &t;

    static const struct {
        const char *teps;
        int rc;
        const char *stored;
    } cases[] = {
        { "21 23", ENO_OK, "21 23" },
        { "a1 a3", ENO_OK, "21 23" },    /* v ignored */
        { "", ENO_OK, "" },              /* empty list: ENO off */
        { "1f", ENO_E_INVAL, NULL },
        { "00", ENO_E_INVAL, NULL },
        { "80", ENO_E_INVAL, NULL },
        { "9f", ENO_E_INVAL, NULL },
        { "22", ENO_E_INVAL, NULL },     /* not implemented */
        { "70", ENO_E_INVAL, NULL },     /* §11 reserved */
        { "7f", ENO_E_INVAL, NULL },
        { "21 a1", ENO_E_INVAL, NULL },  /* duplicate */
        { "20", ENO_OK, "20" },          /* experimental: only when asked for */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint8_t b[64];
        size_t n = hex(cases[i].teps, b, sizeof(b));
        cfg.nteps = 0;
        int rc = eno_config_set_teps(&cfg, b, n);
        cr_assert_eq(rc, cases[i].rc, "%s", cases[i].teps);
        if (rc == ENO_OK)
            assert_bytes(cfg.teps, cfg.nteps, cases[i].stored, cases[i].teps);
        else
            cr_assert_eq(cfg.nteps, 0, "failed set leaves the list alone");
    }
    /* too many TEPs for the SYN room */
    uint8_t many[30];
    for (size_t i = 0; i < sizeof(many); i++)
        many[i] = (uint8_t)(0x30 + i);
    cr_assert_eq(eno_config_set_teps(&cfg, many, 29), ENO_OK);        /* 3 + 29 = 32 */
    cr_assert_eq(eno_config_set_teps(&cfg, many, 30), ENO_E_INVAL);
    cr_assert_eq(eno_config_validate(&cfg), ENO_OK);
    cfg.self_gopt = 32;
    cr_assert_eq(eno_config_validate(&cfg), ENO_E_INVAL);
    cfg.self_gopt = 0;
    cfg.syn_opt_max = 3;
    cr_assert_eq(eno_config_validate(&cfg), ENO_E_INVAL);
    /* raw contents must be a well-formed SYN form */
    eno_config_init(&cfg);
    uint8_t raw[8];
    cr_assert_eq(eno_config_set_raw(&cfg, raw, hex("01 23", raw, sizeof(raw))), ENO_OK);
    cr_assert_eq(cfg.raw_len, 2);
    cr_assert_eq(eno_config_set_raw(&cfg, raw, hex("80 21", raw, sizeof(raw))), ENO_E_INVAL);
    cr_assert_eq(cfg.raw_len, 2);
    cr_assert_eq(eno_config_set_raw(&cfg, NULL, 0), ENO_OK);
    cr_assert_eq(cfg.raw_len, 0);
}

Test(eno_config, defaults_and_disabled)
{
    struct eno_config cfg;
    struct eno_conn c;
    uint8_t out[ENO_SYN_OPT_MAX];
    eno_config_init(&cfg);
    cr_assert(cfg.enabled);
    cr_assert_eq(cfg.nteps, 0);
    cr_assert_eq(cfg.self_gopt, 0);
    cr_assert(!cfg.aa_mandatory && !cfg.tep_mandatory);
    cr_assert_eq(cfg.syn_opt_max, ENO_SYN_OPT_LWIP);
    /* api-06: an empty TEP list disables ENO */
    cr_assert_eq(eno_conn_init_active(&c, &cfg), ENO_ACT_FALLBACK);
    cr_assert_eq(eno_conn_reason(&c), ENO_R_CONFIG);
    cr_assert_eq(out_bytes(&c, SYN, out), 0);
    cr_assert_eq(eno_conn_api_errno(&c), EINVAL);
    /* TCP_ENO_ENABLED = 0 */
    uint8_t t = 0x23;
    cr_assert_eq(eno_config_set_teps(&cfg, &t, 1), ENO_OK);
    cfg.enabled = false;
    cr_assert_eq(eno_conn_init_active(&c, &cfg), ENO_ACT_FALLBACK);
    cfg.tep_mandatory = true;
    cr_assert_eq(eno_conn_init_active(&c, &cfg), ENO_ACT_ABORT);
    cfg.enabled = true;
    cfg.tep_mandatory = false;
    cr_assert_eq(eno_conn_init_active(&c, &cfg), ENO_ACT_NONE);
    cr_assert_eq(eno_conn_api_errno(&c), ENOTCONN);
    cr_assert_eq(eno_conn_status(&c), ENO_STATUS_NEGOTIATING);
    assert_bytes(out, out_bytes(&c, SYN, out), "45 03 23", "default SYN");
}

Test(eno_config, reason_strings)
{
    for (int r = ENO_R_NONE; r < ENO_R_COUNT_; r++) {
        const char *s = eno_reason_str((enum eno_reason)r);
        cr_assert(s != NULL && s[0] != '\0' && strcmp(s, "unknown") != 0);
        for (int q = ENO_R_NONE; q < r; q++)
            cr_assert_str_neq(s, eno_reason_str((enum eno_reason)q));
    }
    cr_assert_str_eq(eno_reason_str(ENO_R_COUNT_), "unknown");
}

/* ---- §4.8 transcript, §4.6 handshake, api-06 NEGTEP ------------------------ */

Test(eno_handshake, section_4_8_example)
{
    struct tctx ta, tb;
    struct eno_config ca, cb;
    struct eno_conn a, b;
    uint8_t area[ENO_TCP_OPTS_MAX], out[ENO_SYN_OPT_MAX], tr[ENO_TRANSCRIPT_MAX];
    size_t n;

    memset(&ta, 0, sizeof(ta));
    memset(&tb, 0, sizeof(tb));
    cfg_make(&ca, &ta, "21 23");
    cfg_make(&cb, &tb, "23");

    cr_assert_eq(eno_conn_init_active(&a, &ca), ENO_ACT_NONE);
    assert_bytes(out, out_bytes(&a, SYN, out), "45 04 21 23", "A's SYN");
    cr_assert_eq(eno_conn_output_len(&a, ACK), 2, "A: ENO in any segment before");
    n = send_seg(&a, SYN, area, NULL);
    cr_assert(a.syn_sent);

    cr_assert_eq(eno_conn_init_passive(&b, &cb, area, n), ENO_ACT_NEGOTIATED);
    cr_assert(eno_conn_negotiated(&b) && !eno_conn_encrypting(&b));
    assert_bytes(out, out_bytes(&b, SYNACK, out), "45 04 01 23", "B's SYN-ACK");
    cr_assert_eq(eno_conn_api_errno(&b), ENOTCONN, "api-06: negotiating");
    n = send_seg(&b, SYNACK, area, NULL);
    cr_assert(!eno_conn_encrypting(&b), "B has sent but not received an ACK with ENO");

    cr_assert_eq(eno_conn_input(&a, SYNACK, area, n), ENO_ACT_NEGOTIATED);
    cr_assert(eno_conn_negotiated(&a) && !eno_conn_encrypting(&a),
              "A has received but not sent an ACK with ENO");
    assert_bytes(out, out_bytes(&a, ACK, out), "45 02", "A's ACK (third segment)");
    enum eno_action act;
    n = send_seg(&a, ACK, area, &act);
    cr_assert_eq(act, ENO_ACT_ENCRYPTING);
    cr_assert(eno_conn_encrypting(&a));

    cr_assert_eq(eno_conn_input(&b, ACK, area, n), ENO_ACT_ENCRYPTING);
    cr_assert(eno_conn_encrypting(&b));

    assert_bytes(tr, eno_conn_transcript(&a, tr), "45 04 21 23 45 04 01 23", "A transcript");
    assert_bytes(tr, eno_conn_transcript(&b, tr), "45 04 21 23 45 04 01 23", "B transcript");
    cr_assert_eq(eno_conn_role(&a), ENO_ROLE_A);
    cr_assert_eq(eno_conn_role(&b), ENO_ROLE_B);
    cr_assert_eq(eno_conn_negtep(&a), 0x23);
    cr_assert_eq(eno_conn_negtep(&b), 0x23);
    cr_assert_eq(eno_conn_peer_gopt(&a), 0x01);
    cr_assert_eq(eno_conn_peer_gopt(&b), 0x00);
    cr_assert_eq(eno_conn_status(&a), ENO_STATUS_ENCRYPTING);
    assert_agree(&a, &b);
}

/* Transcripts for layouts with explicit global suboptions, data and length
 * bytes (derived by hand from §4.1, §4.4, §4.8). */
Test(eno_handshake, transcript_layouts)
{
    static const struct {
        const char *name;
        const char *a_teps, *b_teps;
        uint8_t a_gopt;
        bool a_aa;
        uint8_t a_data_tep;  const char *a_data;
        uint8_t b_ans_tep;   const char *b_data;
        const char *transcript;
        int negtep;
    } cases[] = {
        { "4.8", "21 23", "23", 0, false, 0, "", 0, "",
          "45 04 21 23 45 04 01 23", 0x23 },
        { "B prefers 21", "21 23", "23 21", 0, false, 0, "", 0, "",
          "45 04 21 23 45 04 01 21", 0x21 },
        { "A gopt a", "21 23", "23", 0x02, false, 0, "", 0, "",
          "45 05 02 21 23 45 04 01 23", 0x23 },
        { "A aa mandatory", "23", "23", 0x00, true, 0, "", 0, "",
          "45 04 02 23 45 04 01 23", 0x23 },
        { "A data not last: length byte", "21 23", "21", 0, false, 0x21, "01 02", 0, "",
          "45 07 81 a1 01 02 23 45 04 01 21", 0x21 },
        { "A data last: to the end", "21 23", "23", 0, false, 0x23, "0a 0b 0c", 0, "",
          "45 07 21 a3 0a 0b 0c 45 04 01 23", 0x23 },
        { "B answers with data", "21 23", "23", 0, false, 0x23, "0a 0b", 0x23, "ee ff",
          "45 06 21 a3 0a 0b 45 06 01 a3 ee ff", 0xa3 },
        { "B data, A plain", "21 23", "23", 0, false, 0, "", 0x23, "ee",
          "45 04 21 23 45 05 01 a3 ee", 0xa3 },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct tctx ta, tb;
        struct eno_config ca, cb;
        struct eno_conn a, b;
        uint8_t tr[ENO_TRANSCRIPT_MAX];
        memset(&ta, 0, sizeof(ta));
        memset(&tb, 0, sizeof(tb));
        cfg_make(&ca, &ta, cases[i].a_teps);
        cfg_make(&cb, &tb, cases[i].b_teps);
        ca.self_gopt = cases[i].a_gopt;
        ca.aa_mandatory = cases[i].a_aa;
        cb.self_gopt = cases[i].a_aa ? 0x02 : 0;   /* B must set a = 1 then */
        if (cases[i].a_data_tep)
            ta.syn_data_len[cases[i].a_data_tep] = (uint8_t)hex(
                cases[i].a_data, ta.syn_data[cases[i].a_data_tep], ENO_SUBDATA_MAX);
        if (cases[i].b_ans_tep) {
            uint8_t tep = cases[i].b_ans_tep;
            tb.answer_set[tep] = true;
            tb.answer[tep] = ENO_ANSWER_DATA;
            tb.answer_len[tep] = (uint8_t)hex(cases[i].b_data, tb.answer_data[tep], ENO_SUBDATA_MAX);
        }
        handshake(&a, &ca, &b, &cb);
        if (cases[i].a_aa) {
            /* B's a bit is 1 here (0x03), the transcript bytes must show it */
            assert_bytes(tr, eno_conn_transcript(&a, tr), "45 04 02 23 45 04 03 23", cases[i].name);
        } else {
            assert_bytes(tr, eno_conn_transcript(&a, tr), cases[i].transcript, cases[i].name);
        }
        cr_assert_eq(eno_conn_negtep(&a), cases[i].negtep, "%s: negtep", cases[i].name);
        assert_agree(&a, &b);
    }
}

/* Full A/B negotiation for many configurations: both ends agree. */
Test(eno_handshake, agreement_matrix)
{
    static const char *lists[] = { "21", "23", "21 23", "23 21", "21 22 23 24", "24 23",
                                   "20 23", "22" };
    const size_t nl = sizeof(lists) / sizeof(lists[0]);
    unsigned ok = 0, fail = 0;
    for (size_t i = 0; i < nl; i++) {
        for (size_t j = 0; j < nl; j++) {
            for (int data = 0; data < 4; data++) {
                struct tctx ta, tb;
                struct eno_config ca, cb;
                struct eno_conn a, b;
                memset(&ta, 0, sizeof(ta));
                memset(&tb, 0, sizeof(tb));
                cfg_make(&ca, &ta, lists[i]);
                cfg_make(&cb, &tb, lists[j]);
                if (data & 1) {      /* A resumption-like offers on 0x23 and 0x21 */
                    ta.syn_data_len[0x23] = 3;
                    ta.syn_data_len[0x21] = 2;
                }
                if (data & 2) {      /* B answers 0x23 with data */
                    tb.answer_set[0x23] = true;
                    tb.answer[0x23] = ENO_ANSWER_DATA;
                    tb.answer_len[0x23] = 4;
                    memset(tb.answer_data[0x23], 0x5a, 4);
                }
                struct hs_result r = handshake(&a, &ca, &b, &cb);
                /* expected TEP: B's most preferred one that A offered */
                uint8_t al[8], bl[8];
                size_t an = hex(lists[i], al, 8), bn = hex(lists[j], bl, 8);
                int want = -1;
                for (size_t k = bn; k-- > 0 && want < 0;)
                    for (size_t m = 0; m < an; m++)
                        if (al[m] == bl[k])
                            want = bl[k];
                if (want < 0) {
                    cr_assert_eq(r.b_init, ENO_ACT_FALLBACK);
                    cr_assert_eq(r.a_synack, ENO_ACT_FALLBACK);
                    cr_assert_eq(eno_conn_reason(&b), ENO_R_NO_VALID_TEP);
                    cr_assert_eq(eno_conn_reason(&a), ENO_R_NO_ENO_SYN);
                    fail++;
                    continue;
                }
                cr_assert_eq(r.b_init, ENO_ACT_NEGOTIATED);
                cr_assert_eq(r.a_synack, ENO_ACT_NEGOTIATED);
                cr_assert_eq(r.a_ack_sent, ENO_ACT_ENCRYPTING);
                cr_assert_eq(r.b_ack, ENO_ACT_ENCRYPTING);
                cr_assert_eq(eno_conn_negtep(&a) & 0x7f, want, "%s / %s", lists[i], lists[j]);
                cr_assert_eq((eno_conn_negtep(&a) & 0x80) != 0, (data & 2) && want == 0x23);
                assert_agree(&a, &b);
                ok++;
            }
        }
    }
    cr_assert(ok > 100 && fail > 10, "ok %u fail %u", ok, fail);
}

/* ---- §4.1: more than one ENO option in a SYN ------------------------------ */

Test(eno_must, multiple_eno_in_syn)
{
    struct tctx t;
    struct eno_config cfg;
    struct eno_conn c;
    uint8_t area[ENO_TCP_OPTS_MAX], out[ENO_SYN_OPT_MAX];

    memset(&t, 0, sizeof(t));
    cfg_make(&cfg, &t, "21 23");
    cfg.vacuous = true;     /* must not matter: "as though no ENO options" */
    size_t n = area_hex(area, "45 03 23 45 03 21");
    cr_assert_eq(eno_conn_init_passive(&c, &cfg, area, n), ENO_ACT_FALLBACK);
    cr_assert_eq(eno_conn_reason(&c), ENO_R_MULTIPLE_ENO);
    cr_assert_eq(out_bytes(&c, SYNACK, out), 0, "no ENO (not even vacuous) in the SYN-ACK");
    cr_assert_eq(out_bytes(&c, ACK, out), 0);

    /* Active side: a SYN-ACK with two ENO options */
    struct eno_conn a;
    cr_assert_eq(eno_conn_init_active(&a, &cfg), ENO_ACT_NONE);
    n = area_hex(area, "45 04 01 23 45 04 01 23");
    cr_assert_eq(eno_conn_input(&a, SYNACK, area, n), ENO_ACT_FALLBACK);
    cr_assert_eq(eno_conn_reason(&a), ENO_R_MULTIPLE_ENO);
    cr_assert_eq(out_bytes(&a, ACK, out), 0, "no 45 02 once disabled");

    /* Malformed option list in a SYN: treated as no usable ENO */
    uint8_t bad[] = { 0x45, 0x03, 0x23, 0x08, 0x00 };
    cr_assert_eq(eno_conn_init_passive(&c, &cfg, bad, sizeof(bad)), ENO_ACT_FALLBACK);
    cr_assert_eq(eno_conn_reason(&c), ENO_R_BAD_OPTIONS);
    cr_assert_eq(out_bytes(&c, SYNACK, out), 0);
}

/* ---- §4.2: global suboptions --------------------------------------------- */

Test(eno_must, global_suboptions)
{
    static const struct {
        const char *name, *syn;
        enum eno_action act;
        enum eno_reason why;
        int peer_gopt;
    } cases[] = {
        { "implicit", "45 03 23", ENO_ACT_NEGOTIATED, ENO_R_NONE, 0x00 },
        { "explicit 0", "45 04 00 23", ENO_ACT_NEGOTIATED, ENO_R_NONE, 0x00 },
        { "first 0 then b", "45 05 00 01 23", ENO_ACT_NEGOTIATED, ENO_R_NONE, 0x00 },
        { "first b then 0", "45 05 01 00 23", ENO_ACT_FALLBACK, ENO_R_ROLE_CONFLICT, -1 },
        { "gopt after tep", "45 05 23 00 01", ENO_ACT_NEGOTIATED, ENO_R_NONE, 0x00 },
        { "z bits ignored", "45 04 1c 23", ENO_ACT_NEGOTIATED, ENO_R_NONE, 0x1c },
        { "z + a", "45 04 1e 23", ENO_ACT_NEGOTIATED, ENO_R_NONE, 0x1e },
        { "z + b", "45 04 1d 23", ENO_ACT_FALLBACK, ENO_R_ROLE_CONFLICT, -1 },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct tctx t;
        struct eno_config cfg;
        struct eno_conn c;
        uint8_t area[ENO_TCP_OPTS_MAX];
        memset(&t, 0, sizeof(t));
        cfg_make(&cfg, &t, "23");
        size_t n = area_hex(area, cases[i].syn);
        cr_assert_eq(eno_conn_init_passive(&c, &cfg, area, n), cases[i].act, "%s", cases[i].name);
        cr_assert_eq(eno_conn_reason(&c), cases[i].why, "%s", cases[i].name);
        cr_assert_eq(eno_conn_peer_gopt(&c), cases[i].peer_gopt, "%s", cases[i].name);
    }
}

/* §4.2: z bits are sent as zero whatever the app set; the passive opener
 * always sends an explicit b = 1. */
Test(eno_must, z_bits_sent_zero_and_b_forced)
{
    struct tctx t;
    struct eno_config cfg;
    struct eno_conn c;
    uint8_t area[ENO_TCP_OPTS_MAX], out[ENO_SYN_OPT_MAX];

    memset(&t, 0, sizeof(t));
    cfg_make(&cfg, &t, "23");
    cfg.self_gopt = 0x1c;
    cr_assert_eq(eno_conn_init_active(&c, &cfg), ENO_ACT_NONE);
    assert_bytes(out, out_bytes(&c, SYN, out), "45 03 23", "z bits dropped, implicit 0");
    cr_assert_eq(eno_conn_self_gopt(&c), 0);
    cfg.self_gopt = 0x1e;
    cr_assert_eq(eno_conn_init_active(&c, &cfg), ENO_ACT_NONE);
    assert_bytes(out, out_bytes(&c, SYN, out), "45 04 02 23", "a kept");

    cfg.self_gopt = 0x00;
    size_t n = area_hex(area, "45 03 23");
    cr_assert_eq(eno_conn_init_passive(&c, &cfg, area, n), ENO_ACT_NEGOTIATED);
    assert_bytes(out, out_bytes(&c, SYNACK, out), "45 04 01 23", "b = 1 forced");
    cfg.self_gopt = 0x1e;
    cr_assert_eq(eno_conn_init_passive(&c, &cfg, area, n), ENO_ACT_NEGOTIATED);
    assert_bytes(out, out_bytes(&c, SYNACK, out), "45 04 03 23", "a kept, z dropped");
    cr_assert_eq(eno_conn_self_gopt(&c), 0x03);
}

/* ---- §4.4: ill-formed SYN option ⇒ ignore and disable ------------------- */

Test(eno_must, ill_formed_syn_disables)
{
    static const char *bad[] = {
        "45 04 80 21", "45 04 9f 00", "45 04 80 9f", "45 03 80", "45 05 81 a1 01",
        "45 06 01 23 82 a1", "45 04 85 a3",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct tctx t;
        struct eno_config cfg;
        struct eno_conn b, a;
        uint8_t area[ENO_TCP_OPTS_MAX], out[ENO_SYN_OPT_MAX];
        memset(&t, 0, sizeof(t));
        cfg_make(&cfg, &t, "21 23");
        cfg.vacuous = true;   /* an ignored option is no ENO: no vacuous answer */
        size_t n = area_hex(area, bad[i]);
        cr_assert_eq(eno_conn_init_passive(&b, &cfg, area, n), ENO_ACT_FALLBACK, "%s", bad[i]);
        cr_assert_eq(eno_conn_reason(&b), ENO_R_ILL_FORMED, "%s", bad[i]);
        cr_assert_eq(out_bytes(&b, SYNACK, out), 0, "%s", bad[i]);
        /* the same in a SYN-ACK at the active opener */
        cr_assert_eq(eno_conn_init_active(&a, &cfg), ENO_ACT_NONE);
        cr_assert_eq(eno_conn_input(&a, SYNACK, area, n), ENO_ACT_FALLBACK, "%s", bad[i]);
        cr_assert_eq(eno_conn_reason(&a), ENO_R_ILL_FORMED);
        cr_assert_eq(out_bytes(&a, ACK, out), 0);
    }
}

/* ---- v bit, data, NEGTEP ---------------------------------------------------- */

Test(eno_must, v_bit_data_and_negtep)
{
    static const struct {
        const char *name, *syn;       /* A's SYN (hand-built) */
        bool b_data;                  /* B answers 0x23 with data 77 */
        const char *synack;           /* expected B's SYN-ACK */
        int negtep;
        const char *a_data;           /* A's data for 0x23 seen by B */
        bool a_v;
    } cases[] = {
        { "plain/plain", "45 03 23", false, "45 04 01 23", 0x23, "", false },
        { "A v=1 data to end", "45 06 21 a3 01 02", false, "45 04 01 23", 0x23, "01 02", true },
        { "A v=1 long data to end", "45 0f 21 a3 01 02 03 04 05 06 07 08 09 0a 0b", false,
          "45 04 01 23", 0x23, "01 02 03 04 05 06 07 08 09 0a 0b", true },
        { "A v=1 no data", "45 03 a3", false, "45 04 01 23", 0x23, "", true },
        { "A lenbyte data", "45 07 81 a3 01 02 21", false, "45 04 01 23", 0x23, "01 02", true },
        { "B data", "45 03 23", true, "45 05 01 a3 77", 0xa3, "", false },
        { "both data", "45 05 a3 01 02", true, "45 05 01 a3 77", 0xa3, "01 02", true },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct tctx t;
        struct eno_config cfg;
        struct eno_conn b;
        struct eno_subopt_view v;
        uint8_t area[ENO_TCP_OPTS_MAX], out[ENO_SYN_OPT_MAX];
        memset(&t, 0, sizeof(t));
        cfg_make(&cfg, &t, "21 23");
        if (cases[i].b_data) {
            t.answer_set[0x23] = true;
            t.answer[0x23] = ENO_ANSWER_DATA;
            t.answer_len[0x23] = 1;
            t.answer_data[0x23][0] = 0x77;
        }
        size_t n = area_hex(area, cases[i].syn);
        cr_assert_eq(eno_conn_init_passive(&b, &cfg, area, n), ENO_ACT_NEGOTIATED, "%s", cases[i].name);
        assert_bytes(out, out_bytes(&b, SYNACK, out), cases[i].synack, cases[i].name);
        cr_assert_eq(eno_conn_negtep(&b), cases[i].negtep, "%s", cases[i].name);
        cr_assert(eno_conn_subopt(&b, ENO_ROLE_A, &v));
        cr_assert_eq(v.tep, 0x23);
        cr_assert_eq(v.v, cases[i].a_v, "%s: A's v", cases[i].name);
        assert_bytes(v.data, v.data_len, cases[i].a_data, cases[i].name);
        cr_assert(eno_conn_subopt(&b, ENO_ROLE_B, &v));
        cr_assert_eq(v.v, cases[i].b_data);
        cr_assert_eq(v.data_len, cases[i].b_data ? 1 : 0);
    }
}

/* ---- §4.6 vacuous ENO --------------------------------------------------------- */

Test(eno_must, vacuous)
{
    struct tctx t;
    struct eno_config cfg;
    struct eno_conn c;
    uint8_t area[ENO_TCP_OPTS_MAX], out[ENO_SYN_OPT_MAX];
    size_t n;

    memset(&t, 0, sizeof(t));
    cfg_make(&cfg, &t, "21 23");

    /* A vacuous SYN: no valid TEP; B answers nothing by default ... */
    n = area_hex(area, "45 02");
    cr_assert_eq(eno_conn_init_passive(&c, &cfg, area, n), ENO_ACT_FALLBACK);
    cr_assert_eq(eno_conn_reason(&c), ENO_R_NO_VALID_TEP);
    cr_assert_eq(out_bytes(&c, SYNACK, out), 0);
    /* ... or a vacuous option with b = 1 when configured to (SYN had ENO) */
    cfg.vacuous = true;
    cr_assert_eq(eno_conn_init_passive(&c, &cfg, area, n), ENO_ACT_FALLBACK);
    assert_bytes(out, out_bytes(&c, SYNACK, out), "45 03 01", "vacuous SYN-ACK, b = 1");
    assert_bytes(out, out_bytes(&c, SYNACK, out), "45 03 01", "retransmitted identically");
    cr_assert_eq(out_bytes(&c, ACK, out), 0, "no non-SYN ENO: disabled");
    cr_assert_eq(eno_conn_status(&c), ENO_STATUS_DISABLED);
    /* no common TEP: vacuous answer too */
    n = area_hex(area, "45 03 24");
    cr_assert_eq(eno_conn_init_passive(&c, &cfg, area, n), ENO_ACT_FALLBACK);
    assert_bytes(out, out_bytes(&c, SYNACK, out), "45 03 01", "vacuous, no common TEP");
    /* but never when the SYN had no ENO option */
    n = area_hex(area, "");
    cr_assert_eq(eno_conn_init_passive(&c, &cfg, area, n), ENO_ACT_FALLBACK);
    cr_assert_eq(eno_conn_reason(&c), ENO_R_NO_ENO_SYN);
    cr_assert_eq(out_bytes(&c, SYNACK, out), 0, "MUST NOT send vacuous without ENO in SYN");
    cr_assert_eq(eno_conn_init_passive(&c, &cfg, NULL, 0), ENO_ACT_FALLBACK);
    cr_assert_eq(out_bytes(&c, SYNACK, out), 0);
    /* vacuous answer with the a bit when application-aware */
    cfg.self_gopt = ENO_GOPT_A;
    n = area_hex(area, "45 03 25");
    cr_assert_eq(eno_conn_init_passive(&c, &cfg, area, n), ENO_ACT_FALLBACK);
    assert_bytes(out, out_bytes(&c, SYNACK, out), "45 03 03", "vacuous a|b");

    /* Active opener receiving a vacuous SYN-ACK falls back, no 45 02 in ACK */
    cfg.self_gopt = 0;
    cr_assert_eq(eno_conn_init_active(&c, &cfg), ENO_ACT_NONE);
    n = area_hex(area, "45 03 01");
    cr_assert_eq(eno_conn_input(&c, SYNACK, area, n), ENO_ACT_FALLBACK);
    cr_assert_eq(eno_conn_reason(&c), ENO_R_NO_VALID_TEP);
    cr_assert_eq(out_bytes(&c, ACK, out), 0);
}

/* ---- §4.3 / §4.6 rule 3: roles ------------------------------------------------ */

Test(eno_must, equal_b_bits)
{
    struct tctx t;
    struct eno_config cfg;
    struct eno_conn c;
    uint8_t area[ENO_TCP_OPTS_MAX], out[ENO_SYN_OPT_MAX];
    size_t n;

    memset(&t, 0, sizeof(t));
    cfg_make(&cfg, &t, "21 23");

    /* both b = 0: a middlebox echoing A's SYN option back (§8.1) */
    cr_assert_eq(eno_conn_init_active(&c, &cfg), ENO_ACT_NONE);
    n = area_hex(area, "45 04 21 23");
    cr_assert_eq(eno_conn_input(&c, SYNACK, area, n), ENO_ACT_FALLBACK);
    cr_assert_eq(eno_conn_reason(&c), ENO_R_ROLE_CONFLICT);
    cr_assert_eq(out_bytes(&c, ACK, out), 0);

    /* both b = 1: A configured b = 1, connecting to a passive opener */
    cfg.self_gopt = ENO_GOPT_B;
    cr_assert_eq(eno_conn_init_active(&c, &cfg), ENO_ACT_NONE);
    assert_bytes(out, out_bytes(&c, SYN, out), "45 05 01 21 23", "A with b = 1");
    n = area_hex(area, "45 04 01 23");
    cr_assert_eq(eno_conn_input(&c, SYNACK, area, n), ENO_ACT_FALLBACK);
    cr_assert_eq(eno_conn_reason(&c), ENO_R_ROLE_CONFLICT);

    /* the passive opener receiving b = 1 */
    cfg.self_gopt = 0;
    n = area_hex(area, "45 05 01 21 23");
    cr_assert_eq(eno_conn_init_passive(&c, &cfg, area, n), ENO_ACT_FALLBACK);
    cr_assert_eq(eno_conn_reason(&c), ENO_R_ROLE_CONFLICT);
    cr_assert_eq(out_bytes(&c, SYNACK, out), 0);
    cfg.vacuous = true;
    cr_assert_eq(eno_conn_init_passive(&c, &cfg, area, n), ENO_ACT_FALLBACK);
    assert_bytes(out, out_bytes(&c, SYNACK, out), "45 03 01", "SYN had ENO: vacuous allowed");
}

/* ---- §4.2 mandatory application-aware mode ----------------------------------- */

Test(eno_must, aa_mandatory)
{
    static const struct {
        const char *name;
        bool b_mand, a_mand;
        uint8_t a_gopt, b_gopt;
        bool ok;
        enum eno_reason why_b, why_a;
    } cases[] = {
        { "B mand, A a=0", true, false, 0x00, 0x00, false, ENO_R_AA_REQUIRED, ENO_R_NO_ENO_SYN },
        { "B mand, A a=1", true, false, 0x02, 0x00, true, ENO_R_NONE, ENO_R_NONE },
        { "A mand, B a=0", false, true, 0x00, 0x00, false, ENO_R_NO_ENO_ACK, ENO_R_AA_REQUIRED },
        { "A mand, B a=1", false, true, 0x00, 0x02, true, ENO_R_NONE, ENO_R_NONE },
        { "both mand", true, true, 0x00, 0x00, true, ENO_R_NONE, ENO_R_NONE },
        { "neither, a=0", false, false, 0x00, 0x00, true, ENO_R_NONE, ENO_R_NONE },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct tctx ta, tb;
        struct eno_config ca, cb;
        struct eno_conn a, b;
        memset(&ta, 0, sizeof(ta));
        memset(&tb, 0, sizeof(tb));
        cfg_make(&ca, &ta, "23");
        cfg_make(&cb, &tb, "23");
        ca.aa_mandatory = cases[i].a_mand;
        ca.self_gopt = cases[i].a_gopt;
        cb.aa_mandatory = cases[i].b_mand;
        cb.self_gopt = cases[i].b_gopt;
        handshake(&a, &ca, &b, &cb);
        if (cases[i].ok) {
            assert_agree(&a, &b);
            if (cases[i].a_mand)
                cr_assert(eno_conn_self_gopt(&a) & ENO_GOPT_A, "§8.4: mandatory mode sets a = 1");
            if (cases[i].b_mand)
                cr_assert(eno_conn_self_gopt(&b) & ENO_GOPT_A);
        } else {
            cr_assert_eq(eno_conn_status(&a), ENO_STATUS_DISABLED, "%s", cases[i].name);
            cr_assert_eq(eno_conn_status(&b), ENO_STATUS_DISABLED, "%s", cases[i].name);
            cr_assert_eq(eno_conn_reason(&b), cases[i].why_b, "%s: B %s", cases[i].name,
                         eno_reason_str(eno_conn_reason(&b)));
            cr_assert_eq(eno_conn_reason(&a), cases[i].why_a, "%s: A %s", cases[i].name,
                         eno_reason_str(eno_conn_reason(&a)));
        }
    }
}

/* ---- api-06 TCP_ENO_TEP_MANDATORY ---------------------------------------------- */

Test(eno_must, tep_mandatory_aborts)
{
    struct tctx t;
    struct eno_config cfg;
    struct eno_conn c;
    uint8_t area[ENO_TCP_OPTS_MAX];
    size_t n;

    memset(&t, 0, sizeof(t));
    cfg_make(&cfg, &t, "23");
    cfg.tep_mandatory = true;

    cr_assert_eq(eno_conn_init_active(&c, &cfg), ENO_ACT_NONE);
    n = area_hex(area, "");
    cr_assert_eq(eno_conn_input(&c, SYNACK, area, n), ENO_ACT_ABORT);
    cr_assert(c.aborted);
    cr_assert_eq(eno_conn_status(&c), ENO_STATUS_DISABLED);

    cr_assert_eq(eno_conn_init_passive(&c, &cfg, area, n), ENO_ACT_ABORT);
    n = area_hex(area, "45 03 21");
    cr_assert_eq(eno_conn_init_passive(&c, &cfg, area, n), ENO_ACT_ABORT, "no valid TEP");
    n = area_hex(area, "45 03 23");
    cr_assert_eq(eno_conn_init_passive(&c, &cfg, area, n), ENO_ACT_NEGOTIATED);
    (void)send_seg(&c, SYNACK, area, NULL);
    n = area_hex(area, "");
    cr_assert_eq(eno_conn_input(&c, ACK, area, n), ENO_ACT_ABORT, "third segment without ENO");

    /* the drop workaround is refused while mandatory */
    cr_assert_eq(eno_conn_init_active(&c, &cfg), ENO_ACT_NONE);
    cr_assert_eq(eno_conn_drop_syn_option(&c), ENO_E_MANDATORY);
    cr_assert_eq(c.state, ENO_ST_SYN_SENT);

    /* set later on a connection that fell back: abort now */
    cfg.tep_mandatory = false;
    cr_assert_eq(eno_conn_init_active(&c, &cfg), ENO_ACT_NONE);
    cr_assert_eq(eno_conn_set_tep_mandatory(&c), ENO_ACT_NONE);
    cr_assert_eq(eno_conn_init_active(&c, &cfg), ENO_ACT_NONE);
    n = area_hex(area, "");
    cr_assert_eq(eno_conn_input(&c, SYNACK, area, n), ENO_ACT_FALLBACK);
    cr_assert_eq(eno_conn_set_tep_mandatory(&c), ENO_ACT_ABORT);
}

/* ---- §4.6 rule 1: a segment up to the first ACK without ENO ----------------- */

Test(eno_must, segment_without_eno)
{
    struct tctx ta, tb;
    struct eno_config ca, cb;
    struct eno_conn a, b;
    uint8_t area[ENO_TCP_OPTS_MAX], out[ENO_SYN_OPT_MAX];
    size_t n;

    memset(&ta, 0, sizeof(ta));
    memset(&tb, 0, sizeof(tb));
    cfg_make(&ca, &ta, "21 23");
    cfg_make(&cb, &tb, "23");

    /* SYN-ACK without ENO at A (Figure 10/11) */
    cr_assert_eq(eno_conn_init_active(&a, &ca), ENO_ACT_NONE);
    n = area_hex(area, "");
    cr_assert_eq(eno_conn_input(&a, ACK, area, n), ENO_ACT_NONE, "stray non-SYN in SYN-SENT");
    cr_assert_eq(a.state, ENO_ST_SYN_SENT);
    cr_assert_eq(eno_conn_input(&a, SYNACK, area, n), ENO_ACT_FALLBACK);
    cr_assert_eq(eno_conn_reason(&a), ENO_R_NO_ENO_SYN);
    cr_assert_eq(out_bytes(&a, ACK, out), 0, "Figure 11: segment 3 without ENO");
    cr_assert_eq(out_bytes(&a, SYN, out), 0, "no ENO in any later SYN either");

    /* third segment without ENO at B */
    cr_assert_eq(eno_conn_init_active(&a, &ca), ENO_ACT_NONE);
    n = send_seg(&a, SYN, area, NULL);
    cr_assert_eq(eno_conn_init_passive(&b, &cb, area, n), ENO_ACT_NEGOTIATED);
    n = send_seg(&b, SYNACK, area, NULL);
    n = area_hex(area, "");
    cr_assert_eq(eno_conn_input(&b, ACK, area, n), ENO_ACT_FALLBACK);
    cr_assert_eq(eno_conn_reason(&b), ENO_R_NO_ENO_ACK);
    cr_assert_eq(eno_conn_api_errno(&b), EINVAL);
    cr_assert_eq(eno_conn_role(&b), -1);
    cr_assert_eq(eno_conn_transcript(&b, (uint8_t[ENO_TRANSCRIPT_MAX]){ 0 }), 0);

    /* a non-SYN ENO option with contents counts (contents ignored, §4.1),
     * and several count as one */
    static const char *acks[] = { "45 02", "45 04 de ad", "45 02 45 02", "01 45 03 00" };
    for (size_t i = 0; i < sizeof(acks) / sizeof(acks[0]); i++) {
        cr_assert_eq(eno_conn_init_active(&a, &ca), ENO_ACT_NONE);
        n = send_seg(&a, SYN, area, NULL);
        cr_assert_eq(eno_conn_init_passive(&b, &cb, area, n), ENO_ACT_NEGOTIATED);
        n = send_seg(&b, SYNACK, area, NULL);
        n = area_hex(area, acks[i]);
        cr_assert_eq(eno_conn_input(&b, ACK, area, n), ENO_ACT_ENCRYPTING, "%s", acks[i]);
    }

    /* a RST never changes ENO state; a non-ACK non-SYN segment is ignored */
    cr_assert_eq(eno_conn_init_active(&a, &ca), ENO_ACT_NONE);
    n = send_seg(&a, SYN, area, NULL);
    cr_assert_eq(eno_conn_init_passive(&b, &cb, area, n), ENO_ACT_NEGOTIATED);
    n = area_hex(area, "");
    cr_assert_eq(eno_conn_input(&b, ENO_TCP_RST | ACK, area, n), ENO_ACT_NONE);
    cr_assert_eq(eno_conn_input(&b, ENO_TCP_FIN, area, n), ENO_ACT_NONE);
    cr_assert_eq(b.state, ENO_ST_NEGOTIATED);
}

/* A retransmitted SYN reaching the passive opener before A's ACK. */
Test(eno_must, retransmitted_syn_at_passive)
{
    static const struct {
        const char *name, *resyn;
        enum eno_action act;
        enum eno_reason why;
    } cases[] = {
        { "identical", "45 04 21 23", ENO_ACT_NONE, ENO_R_NONE },
        { "ENO dropped by A", "", ENO_ACT_FALLBACK, ENO_R_NO_ENO_SYN },
        { "altered", "45 04 23 21", ENO_ACT_FALLBACK, ENO_R_SYN_CHANGED },
        { "doubled", "45 04 21 23 45 02", ENO_ACT_FALLBACK, ENO_R_MULTIPLE_ENO },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct tctx t;
        struct eno_config cfg;
        struct eno_conn b;
        uint8_t area[ENO_TCP_OPTS_MAX], out[ENO_SYN_OPT_MAX];
        memset(&t, 0, sizeof(t));
        cfg_make(&cfg, &t, "23");
        size_t n = area_hex(area, "45 04 21 23");
        cr_assert_eq(eno_conn_init_passive(&b, &cfg, area, n), ENO_ACT_NEGOTIATED);
        (void)send_seg(&b, SYNACK, area, NULL);
        n = area_hex(area, cases[i].resyn);
        cr_assert_eq(eno_conn_input(&b, SYN, area, n), cases[i].act, "%s", cases[i].name);
        cr_assert_eq(eno_conn_reason(&b), cases[i].why, "%s", cases[i].name);
        if (cases[i].act == ENO_ACT_NONE)
            assert_bytes(out, out_bytes(&b, SYNACK, out), "45 04 01 23", "SYN-ACK unchanged");
        else
            cr_assert_eq(out_bytes(&b, SYNACK, out), 0, "%s: disabled: SYN-ACK without ENO", cases[i].name);
    }
}

/* ---- §4.5 TEP selection ---------------------------------------------------------- */

Test(eno_must, selection_last_valid_of_b)
{
    static const struct {
        const char *name, *a_teps, *synack;
        uint8_t reject;            /* check callback rejects this TEP */
        int negtep;                /* -1: no valid TEP */
    } cases[] = {
        { "single", "21 22 23", "45 04 01 23", 0, 0x23 },
        { "B order 21 23", "21 22 23", "45 05 01 21 23", 0, 0x23 },
        { "B order 23 21", "21 22 23", "45 05 01 23 21", 0, 0x21 },
        { "last not offered by A", "21 23", "45 05 01 23 24", 0, 0x23 },
        { "only unoffered", "21 23", "45 04 01 24", 0, -1 },
        { "repeated last", "21 23", "45 06 01 21 23 23", 0, 0x21 },
        { "repeated, with data", "21 23", "45 08 01 21 80 a3 00 23", 0, 0x21 },
        { "check rejects last", "21 23", "45 05 01 21 23", 0x23, 0x21 },
        { "check rejects only", "21 23", "45 04 01 23", 0x23, -1 },
        { "gopts in between", "21 23 24", "45 07 01 24 02 23 00", 0, 0x23 },
        { "Figure 12 B list", "22 21", "45 06 01 21 22 24", 0, 0x22 },
        { "v ignored: B v=1", "21 23", "45 06 01 21 a3 09", 0, 0xa3 },
        { "v ignored: lenbyte", "21 23", "45 08 01 80 a3 09 21 24", 0, 0x21 },
        { "vacuous", "21 23", "45 03 01", 0, -1 },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct tctx t;
        struct eno_config cfg;
        struct eno_conn a;
        uint8_t area[ENO_TCP_OPTS_MAX];
        memset(&t, 0, sizeof(t));
        cfg_make(&cfg, &t, cases[i].a_teps);
        if (cases[i].reject) {
            t.verdict_set[cases[i].reject] = true;
            t.verdict[cases[i].reject] = ENO_VERDICT_INVALID;
        }
        cr_assert_eq(eno_conn_init_active(&a, &cfg), ENO_ACT_NONE);
        size_t n = area_hex(area, cases[i].synack);
        enum eno_action act = eno_conn_input(&a, SYNACK, area, n);
        if (cases[i].negtep < 0) {
            cr_assert_eq(act, ENO_ACT_FALLBACK, "%s", cases[i].name);
            cr_assert_eq(eno_conn_reason(&a), ENO_R_NO_VALID_TEP, "%s", cases[i].name);
        } else {
            cr_assert_eq(act, ENO_ACT_NEGOTIATED, "%s: %s", cases[i].name,
                         eno_reason_str(eno_conn_reason(&a)));
            cr_assert_eq(eno_conn_negtep(&a), cases[i].negtep, "%s: negtep %02x", cases[i].name,
                         eno_conn_negtep(&a));
        }
    }
}

/* A's repeated TEP (hand-built SYN) is not valid either (§4.5 (3)). */
Test(eno_must, selection_repeat_in_a)
{
    struct tctx t;
    struct eno_config cfg;
    struct eno_conn b;
    uint8_t area[ENO_TCP_OPTS_MAX], out[ENO_SYN_OPT_MAX];
    memset(&t, 0, sizeof(t));
    cfg_make(&cfg, &t, "21 23");
    size_t n = area_hex(area, "45 05 21 23 23");
    cr_assert_eq(eno_conn_init_passive(&b, &cfg, area, n), ENO_ACT_NEGOTIATED);
    assert_bytes(out, out_bytes(&b, SYNACK, out), "45 04 01 21", "23 repeated by A: skip");
}

/* ---- TEP callbacks --------------------------------------------------------------- */

Test(eno_callbacks, answer_refuse_plain_data)
{
    static const struct {
        const char *name;
        enum eno_answer ans23, ans21;
        const char *synack;
    } cases[] = {
        { "default plain", ENO_ANSWER_PLAIN, ENO_ANSWER_PLAIN, "45 04 01 23" },
        { "refuse 23", ENO_ANSWER_REFUSE, ENO_ANSWER_PLAIN, "45 04 01 21" },
        { "refuse all", ENO_ANSWER_REFUSE, ENO_ANSWER_REFUSE, NULL },
        { "data 23", ENO_ANSWER_DATA, ENO_ANSWER_PLAIN, "45 0f 01 a3 10 11 12 13 14 15 16 17 18 19 1a" },
        { "refuse 23, data 21", ENO_ANSWER_REFUSE, ENO_ANSWER_DATA, "45 0f 01 a1 10 11 12 13 14 15 16 17 18 19 1a" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct tctx t;
        struct eno_config cfg;
        struct eno_conn b;
        uint8_t area[ENO_TCP_OPTS_MAX], out[ENO_SYN_OPT_MAX];
        memset(&t, 0, sizeof(t));
        cfg_make(&cfg, &t, "21 23");
        t.answer_set[0x23] = t.answer_set[0x21] = true;
        t.answer[0x23] = cases[i].ans23;
        t.answer[0x21] = cases[i].ans21;
        for (int k = 0; k < 11; k++)
            t.answer_data[0x23][k] = t.answer_data[0x21][k] = (uint8_t)(0x10 + k);
        t.answer_len[0x23] = t.answer_len[0x21] = 11;
        size_t n = area_hex(area, "45 04 21 a3");    /* A: plain 21, 23 with empty data */
        enum eno_action act = eno_conn_init_passive(&b, &cfg, area, n);
        if (cases[i].synack == NULL) {
            cr_assert_eq(act, ENO_ACT_FALLBACK, "%s", cases[i].name);
            cr_assert_eq(eno_conn_reason(&b), ENO_R_NO_VALID_TEP);
            cr_assert_eq(out_bytes(&b, SYNACK, out), 0);
            continue;
        }
        cr_assert_eq(act, ENO_ACT_NEGOTIATED, "%s", cases[i].name);
        assert_bytes(out, out_bytes(&b, SYNACK, out), cases[i].synack, cases[i].name);
    }
}

/* Answer data that does not fit the SYN room: that TEP is skipped. */
Test(eno_callbacks, answer_too_big)
{
    struct tctx t;
    struct eno_config cfg;
    struct eno_conn b;
    uint8_t area[ENO_TCP_OPTS_MAX], out[ENO_SYN_OPT_MAX];
    memset(&t, 0, sizeof(t));
    cfg_make(&cfg, &t, "21 23");
    cfg.syn_opt_max = 10;
    t.answer_set[0x23] = true;
    t.answer[0x23] = ENO_ANSWER_DATA;
    t.answer_len[0x23] = 6;            /* 45 0a 01 a3 + 6 = 10: fits */
    size_t n = area_hex(area, "45 04 21 23");
    cr_assert_eq(eno_conn_init_passive(&b, &cfg, area, n), ENO_ACT_NEGOTIATED);
    cr_assert_eq(out_bytes(&b, SYNACK, out), 10);
    cfg.syn_opt_max = 9;                /* callback gets cap 5 */
    cr_assert_eq(eno_conn_init_passive(&b, &cfg, area, n), ENO_ACT_NEGOTIATED);
    assert_bytes(out, out_bytes(&b, SYNACK, out), "45 04 01 23", "TEP answered plain");
    t.answer_lies = true;               /* says 6 > cap: the module skips the TEP */
    cr_assert_eq(eno_conn_init_passive(&b, &cfg, area, n), ENO_ACT_NEGOTIATED);
    assert_bytes(out, out_bytes(&b, SYNACK, out), "45 04 01 21", "fell to 21");
}

/* tcpcrypt-15 §3.5 shapes: A ignores a resumption answer whose id-half does
 * not match; v = 1 with fewer than 9 bytes is read as v = 0. */
Test(eno_callbacks, tcpcrypt_like_check)
{
    struct tctx ta, tb;
    struct eno_config ca, cb;
    struct eno_conn a, b;
    struct eno_subopt_view v;

    for (int variant = 0; variant < 4; variant++) {
        memset(&ta, 0, sizeof(ta));
        memset(&tb, 0, sizeof(tb));
        cfg_make(&ca, &ta, "23");
        cfg_make(&cb, &tb, "23");
        ta.tcpcrypt_check = tb.tcpcrypt_check = true;
        /* A: resume offer = id-half 9 bytes + nonce 8 bytes */
        ta.syn_data_len[0x23] = 17;
        for (int k = 0; k < 17; k++)
            ta.syn_data[0x23][k] = (uint8_t)(0x40 + k);
        tb.answer_set[0x23] = true;
        tb.answer[0x23] = ENO_ANSWER_DATA;
        tb.answer_len[0x23] = 17;
        for (int k = 0; k < 17; k++)
            tb.answer_data[0x23][k] = (uint8_t)((0x40 + k) ^ (k < 9 ? 0xff : 0x00));
        if (variant == 1)
            tb.answer_data[0x23][3] ^= 1;       /* wrong id-half */
        if (variant == 2)
            tb.answer_len[0x23] = 5;           /* short: as v = 0 */
        if (variant == 3)
            ta.syn_data_len[0x23] = 4;         /* A short: B reads it as v = 0 */

        struct hs_result r = handshake(&a, &ca, &b, &cb);
        switch (variant) {
        case 0:
            assert_agree(&a, &b);
            cr_assert_eq(eno_conn_negtep(&a), 0xa3);
            cr_assert(eno_conn_subopt(&a, ENO_ROLE_B, &v));
            cr_assert_eq(v.data_len, 17);
            cr_assert(!v.data_ignored);
            break;
        case 1:
            cr_assert_eq(r.b_init, ENO_ACT_NEGOTIATED);
            cr_assert_eq(r.a_synack, ENO_ACT_FALLBACK, "A ignores the only suboption");
            cr_assert_eq(eno_conn_reason(&a), ENO_R_NO_VALID_TEP);
            cr_assert_eq(eno_conn_reason(&b), ENO_R_NO_ENO_ACK, "B learns from the ACK");
            break;
        case 2:
            assert_agree(&a, &b);
            cr_assert(eno_conn_subopt(&a, ENO_ROLE_B, &v));
            cr_assert(v.data_ignored, "A reads B's short data as v = 0");
            cr_assert(eno_conn_subopt(&b, ENO_ROLE_B, &v));
            cr_assert(!v.data_ignored, "B's own view of its data");
            break;
        case 3:
            assert_agree(&a, &b);
            cr_assert(eno_conn_subopt(&b, ENO_ROLE_A, &v));
            cr_assert(v.data_ignored, "B reads A's short data as v = 0");
            break;
        }
        cr_assert(ta.check_calls > 0 && tb.check_calls > 0, "check consulted at both ends");
    }
}

/* api-06 TCP_ENO_TEPS: unimplemented TEPs are EINVAL; a config that got them
 * anyway (written directly) does not start ENO. */
Test(eno_callbacks, implemented_predicate)
{
    struct tctx t;
    struct eno_config cfg;
    struct eno_conn c;
    memset(&t, 0, sizeof(t));
    cfg_make(&cfg, &t, "21 23");
    cr_assert(eno_tep_implemented(&cfg, 0x23));
    cr_assert(!eno_tep_implemented(&cfg, 0x70));
    cr_assert(!eno_tep_implemented(&cfg, 0x1f));
    t.unimplemented[0x23] = true;
    cr_assert(!eno_tep_implemented(&cfg, 0x23));
    cr_assert_eq(eno_config_validate(&cfg), ENO_E_INVAL);
    cr_assert_eq(eno_conn_init_active(&c, &cfg), ENO_ACT_FALLBACK);
    cr_assert_eq(eno_conn_reason(&c), ENO_R_CONFIG);
    cr_assert(eno_tep_implemented(NULL, 0x23), "no ops: every non-reserved id");
}

/* ---- §4.6 SYN retransmissions and the drop-ENO workaround -------------------- */

Test(eno_must, syn_retransmission_identical_and_drop)
{
    struct tctx t;
    struct eno_config cfg;
    struct eno_conn a;
    uint8_t first[ENO_SYN_OPT_MAX], again[ENO_SYN_OPT_MAX], area[ENO_TCP_OPTS_MAX];

    memset(&t, 0, sizeof(t));
    cfg_make(&cfg, &t, "21 23");
    t.syn_data_len[0x23] = 4;
    t.syn_data_vary = true;      /* the callback would give new bytes each call */
    cr_assert_eq(eno_conn_init_active(&a, &cfg), ENO_ACT_NONE);
    unsigned calls = t.syn_data_calls;
    size_t n1 = out_bytes(&a, SYN, first);
    (void)eno_conn_sent(&a, SYN, n1);
    for (int i = 0; i < 5; i++) {
        size_t n2 = out_bytes(&a, SYN, again);
        cr_assert(n1 == n2 && memcmp(first, again, n1) == 0, "retransmission %d differs", i);
        (void)eno_conn_sent(&a, SYN, n2);
    }
    cr_assert_eq(t.syn_data_calls, calls, "no callback on retransmission");

    /* drop ENO from later SYN retransmissions */
    cr_assert_eq(eno_conn_drop_syn_option(&a), ENO_OK);
    cr_assert_eq(eno_conn_output_len(&a, SYN), 0);
    cr_assert_eq(eno_conn_output_len(&a, ACK), 0);
    cr_assert_eq(eno_conn_reason(&a), ENO_R_LOCAL_DROP);
    cr_assert_eq(eno_conn_drop_syn_option(&a), ENO_E_STATE);
    /* a late SYN-ACK answering the first SYN changes nothing */
    size_t n = area_hex(area, "45 04 01 23");
    cr_assert_eq(eno_conn_input(&a, SYNACK, area, n), ENO_ACT_NONE);
    cr_assert_eq(eno_conn_output_len(&a, ACK), 0, "B will fall back on our ACK");

    /* only an active opener in SYN-SENT may drop */
    struct eno_conn b;
    n = area_hex(area, "45 03 23");
    cr_assert_eq(eno_conn_init_passive(&b, &cfg, area, n), ENO_ACT_NEGOTIATED);
    cr_assert_eq(eno_conn_drop_syn_option(&b), ENO_E_STATE);
}

/* ---- §4.6 non-SYN ENO until a non-SYN segment arrives ------------------------ */

Test(eno_must, nonsyn_eno_until_nonsyn_received)
{
    struct tctx ta, tb;
    struct eno_config ca, cb;
    struct eno_conn a, b;
    uint8_t area[ENO_TCP_OPTS_MAX], out[ENO_SYN_OPT_MAX];
    size_t n;

    memset(&ta, 0, sizeof(ta));
    memset(&tb, 0, sizeof(tb));
    cfg_make(&ca, &ta, "23");
    cfg_make(&cb, &tb, "23");
    cr_assert_eq(eno_conn_init_active(&a, &ca), ENO_ACT_NONE);
    n = send_seg(&a, SYN, area, NULL);
    cr_assert_eq(eno_conn_init_passive(&b, &cb, area, n), ENO_ACT_NEGOTIATED);
    cr_assert(eno_conn_nonsyn_required(&b), "B: nothing non-SYN received yet");
    n = send_seg(&b, SYNACK, area, NULL);
    cr_assert_eq(eno_conn_input(&a, SYNACK, area, n), ENO_ACT_NEGOTIATED);
    /* A's third segment and its first data segments carry 45 02 */
    for (int i = 0; i < 3; i++) {
        assert_bytes(out, out_bytes(&a, ACK | ENO_TCP_PSH, out), "45 02", "A data");
        n = send_seg(&a, ACK | ENO_TCP_PSH, area, NULL);
        (void)eno_conn_input(&b, ACK | ENO_TCP_PSH, area, n);
    }
    cr_assert(eno_conn_encrypting(&a) && eno_conn_encrypting(&b));
    /* B has received non-SYN segments: its segments need no ENO */
    cr_assert(!eno_conn_nonsyn_required(&b));
    cr_assert_eq(out_bytes(&b, ACK, out), 0);
    /* retransmitted SYN-ACK still carries the SYN-form */
    assert_bytes(out, out_bytes(&b, SYNACK, out), "45 04 01 23", "B SYN-ACK again");
    /* B's first non-SYN segment arrives at A: A stops too */
    n = send_seg(&b, ACK, area, NULL);
    cr_assert_eq(eno_conn_input(&a, ACK, area, n), ENO_ACT_NONE);
    cr_assert(!eno_conn_nonsyn_required(&a));
    cr_assert_eq(out_bytes(&a, ACK, out), 0);
    cr_assert(eno_conn_encrypting(&a), "still encrypting");
    /* after the first ACK, a segment without ENO changes nothing */
    n = area_hex(area, "");
    cr_assert_eq(eno_conn_input(&a, ACK, area, n), ENO_ACT_NONE);
    cr_assert_eq(eno_conn_input(&b, ACK, area, n), ENO_ACT_NONE);
    cr_assert_eq(eno_conn_input(&a, SYNACK, area, n), ENO_ACT_NONE, "late SYN-ACK dup");
    cr_assert(eno_conn_encrypting(&a) && eno_conn_encrypting(&b));
}

/* §4.6: the active opener's third segment carries ENO even if (abnormally) a
 * non-SYN segment arrived first. */
Test(eno_must, third_segment_always_has_eno)
{
    struct tctx t;
    struct eno_config cfg;
    struct eno_conn a;
    uint8_t area[ENO_TCP_OPTS_MAX], out[ENO_SYN_OPT_MAX];
    memset(&t, 0, sizeof(t));
    cfg_make(&cfg, &t, "23");
    cr_assert_eq(eno_conn_init_active(&a, &cfg), ENO_ACT_NONE);
    size_t n = area_hex(area, "45 04 01 23");
    cr_assert_eq(eno_conn_input(&a, SYNACK, area, n), ENO_ACT_NEGOTIATED);
    n = area_hex(area, "");
    cr_assert_eq(eno_conn_input(&a, ACK, area, n), ENO_ACT_NONE);
    assert_bytes(out, out_bytes(&a, ACK, out), "45 02", "third segment");
    cr_assert_eq(eno_conn_sent(&a, ACK, 2), ENO_ACT_ENCRYPTING);
    cr_assert_eq(out_bytes(&a, ACK, out), 0);
}

/* ---- §4.6 encryption only after ACK with ENO sent AND received -------------- */

Test(eno_must, encrypting_needs_both_directions)
{
    struct tctx t;
    struct eno_config cfg;
    struct eno_conn a, b;
    uint8_t area[ENO_TCP_OPTS_MAX];
    size_t n;

    memset(&t, 0, sizeof(t));
    cfg_make(&cfg, &t, "23");
    /* A: received (SYN-ACK), then a sent ACK without ENO bytes does not count */
    cr_assert_eq(eno_conn_init_active(&a, &cfg), ENO_ACT_NONE);
    cr_assert_eq(eno_conn_sent(&a, SYN, 3), ENO_ACT_NONE);
    n = area_hex(area, "45 04 01 23");
    cr_assert_eq(eno_conn_input(&a, SYNACK, area, n), ENO_ACT_NEGOTIATED);
    cr_assert_eq(eno_conn_api_errno(&a), ENOTCONN);
    cr_assert_eq(eno_conn_sent(&a, ACK, 0), ENO_ACT_NONE);
    cr_assert(!eno_conn_encrypting(&a));
    cr_assert_eq(eno_conn_sent(&a, ENO_TCP_FIN, 2), ENO_ACT_NONE, "not an ACK segment");
    cr_assert(!eno_conn_encrypting(&a));
    cr_assert_eq(eno_conn_sent(&a, ACK, 2), ENO_ACT_ENCRYPTING);
    cr_assert_eq(eno_conn_sent(&a, ACK, 2), ENO_ACT_NONE, "reported once");

    /* B: received an ACK with ENO before its SYN-ACK was reported sent */
    n = area_hex(area, "45 03 23");
    cr_assert_eq(eno_conn_init_passive(&b, &cfg, area, n), ENO_ACT_NEGOTIATED);
    n = area_hex(area, "45 02");
    cr_assert_eq(eno_conn_input(&b, ACK, area, n), ENO_ACT_NONE);
    cr_assert(!eno_conn_encrypting(&b));
    cr_assert_eq(eno_conn_sent(&b, SYNACK, 4), ENO_ACT_ENCRYPTING);
}

/* ---- simultaneous open (§4.3, §4.6, Figure 12) --------------------------------- */

static void simopen(struct eno_conn *x, const struct eno_config *cx, struct eno_conn *y,
                    const struct eno_config *cy, enum eno_action *ax, enum eno_action *ay)
{
    uint8_t sx[ENO_TCP_OPTS_MAX], sy[ENO_TCP_OPTS_MAX], area[ENO_TCP_OPTS_MAX];
    uint8_t o1[ENO_SYN_OPT_MAX], o2[ENO_SYN_OPT_MAX];
    cr_assert_eq(eno_conn_init_active(x, cx), ENO_ACT_NONE);
    cr_assert_eq(eno_conn_init_active(y, cy), ENO_ACT_NONE);
    size_t nx = send_seg(x, SYN, sx, NULL);
    size_t ny = send_seg(y, SYN, sy, NULL);
    /* SYNs cross */
    *ax = eno_conn_input(x, SYN, sy, ny);
    *ay = eno_conn_input(y, SYN, sx, nx);
    /* each SYN-ACK carries the same SYN-form as its SYN (§4.6) */
    size_t l1 = out_bytes(x, SYN, o1), l2 = out_bytes(x, SYNACK, o2);
    cr_assert(l1 == l2 && (l1 == 0 || memcmp(o1, o2, l1) == 0));
    nx = send_seg(x, SYNACK, sx, NULL);
    ny = send_seg(y, SYNACK, sy, NULL);
    enum eno_action bx = eno_conn_input(x, SYNACK, sy, ny);
    enum eno_action by = eno_conn_input(y, SYNACK, sx, nx);
    if (*ax == ENO_ACT_NEGOTIATED)
        *ax = bx;
    if (*ay == ENO_ACT_NEGOTIATED)
        *ay = by;
    size_t n = send_seg(x, ACK, area, NULL);
    (void)eno_conn_input(y, ACK, area, n);
    n = send_seg(y, ACK, area, NULL);
    (void)eno_conn_input(x, ACK, area, n);
}

Test(eno_simopen, roles_from_b_bit)
{
    struct tctx tx, ty;
    struct eno_config cx, cy;
    struct eno_conn x, y;
    enum eno_action ax, ay;
    uint8_t tr[ENO_TRANSCRIPT_MAX];

    memset(&tx, 0, sizeof(tx));
    memset(&ty, 0, sizeof(ty));
    /* Figure 12 with X = 21, Y = 22, Z = 24: A sends <Y,X>, B <b=1,X,Y,Z> */
    cfg_make(&cx, &tx, "22 21");
    cfg_make(&cy, &ty, "21 22 24");
    cy.self_gopt = ENO_GOPT_B;
    simopen(&x, &cx, &y, &cy, &ax, &ay);
    cr_assert_eq(ax, ENO_ACT_ENCRYPTING);
    cr_assert_eq(ay, ENO_ACT_ENCRYPTING);
    cr_assert_eq(eno_conn_role(&x), ENO_ROLE_A);
    cr_assert_eq(eno_conn_role(&y), ENO_ROLE_B);
    cr_assert_eq(eno_conn_negtep(&x), 0x22, "Y = last valid TEP in B's option");
    assert_bytes(tr, eno_conn_transcript(&y, tr), "45 04 22 21 45 06 01 21 22 24", "simopen transcript");
    assert_agree(&x, &y);

    /* the b = 1 host may be either one */
    simopen(&y, &cy, &x, &cx, &ay, &ax);
    assert_agree(&x, &y);
    cr_assert_eq(eno_conn_role(&y), ENO_ROLE_B);
}

Test(eno_simopen, equal_b_falls_back)
{
    for (int b = 0; b <= 1; b++) {
        struct tctx tx, ty;
        struct eno_config cx, cy;
        struct eno_conn x, y;
        enum eno_action ax, ay;
        uint8_t out[ENO_SYN_OPT_MAX];
        memset(&tx, 0, sizeof(tx));
        memset(&ty, 0, sizeof(ty));
        cfg_make(&cx, &tx, "21 23");
        cfg_make(&cy, &ty, "23");
        cx.self_gopt = cy.self_gopt = (uint8_t)b;
        simopen(&x, &cx, &y, &cy, &ax, &ay);
        cr_assert_eq(ax, ENO_ACT_FALLBACK, "b = %d", b);
        cr_assert_eq(ay, ENO_ACT_FALLBACK, "b = %d", b);
        cr_assert_eq(eno_conn_reason(&x), ENO_R_ROLE_CONFLICT);
        cr_assert_eq(eno_conn_reason(&y), ENO_R_ROLE_CONFLICT);
        cr_assert_eq(out_bytes(&x, SYNACK, out), 0, "§4.6: SYN-ACK may omit ENO");
    }
}

Test(eno_simopen, peer_synack_must_match_syn)
{
    struct tctx tx;
    struct eno_config cx;
    struct eno_conn x;
    uint8_t area[ENO_TCP_OPTS_MAX];
    memset(&tx, 0, sizeof(tx));
    cfg_make(&cx, &tx, "21 23");
    cr_assert_eq(eno_conn_init_active(&x, &cx), ENO_ACT_NONE);
    size_t n = area_hex(area, "45 05 01 21 23");
    cr_assert_eq(eno_conn_input(&x, SYN, area, n), ENO_ACT_NEGOTIATED);
    cr_assert(!x.ack_rcvd, "a SYN-only segment is not an ACK");
    cr_assert_eq(eno_conn_sent(&x, SYNACK, 4), ENO_ACT_NONE);
    n = area_hex(area, "45 04 01 23");
    cr_assert_eq(eno_conn_input(&x, SYNACK, area, n), ENO_ACT_FALLBACK);
    cr_assert_eq(eno_conn_reason(&x), ENO_R_SYN_CHANGED);
}

/* The SYN of the peer is lost: its SYN-ACK is what we see first. */
Test(eno_simopen, synack_first)
{
    struct tctx tx, ty;
    struct eno_config cx, cy;
    struct eno_conn x, y;
    uint8_t sx[ENO_TCP_OPTS_MAX], sy[ENO_TCP_OPTS_MAX];
    memset(&tx, 0, sizeof(tx));
    memset(&ty, 0, sizeof(ty));
    cfg_make(&cx, &tx, "23");
    cfg_make(&cy, &ty, "23");
    cx.self_gopt = ENO_GOPT_B;   /* x plays B although it called connect */
    cr_assert_eq(eno_conn_init_active(&x, &cx), ENO_ACT_NONE);
    cr_assert_eq(eno_conn_init_active(&y, &cy), ENO_ACT_NONE);
    size_t nx = send_seg(&x, SYN, sx, NULL);
    cr_assert_eq(eno_conn_input(&y, SYN, sx, nx), ENO_ACT_NEGOTIATED);
    size_t ny = send_seg(&y, SYNACK, sy, NULL);
    cr_assert_eq(eno_conn_input(&x, SYNACK, sy, ny), ENO_ACT_NEGOTIATED);
    nx = send_seg(&x, ACK, sx, NULL);
    cr_assert(eno_conn_encrypting(&x));
    cr_assert_eq(eno_conn_input(&y, ACK, sx, nx), ENO_ACT_ENCRYPTING);
    assert_agree(&x, &y);
    cr_assert_eq(eno_conn_role(&x), ENO_ROLE_B);
}

/* ---- api-06 raw mode ------------------------------------------------------------ */

Test(eno_raw, raw_mode)
{
    static const struct {
        const char *name, *a_raw, *b_raw;
        bool ok;
        const char *transcript;
        int negtep;
    } cases[] = {
        { "4.8", "21 23", "01 23", true, "45 04 21 23 45 04 01 23", 0x23 },
        { "data ignored", "a3 01 02", "01 23", true, "45 05 a3 01 02 45 04 01 23", 0x23 },
        { "repeats allowed", "23 23", "01 23 23", true, "45 04 23 23 45 05 01 23 23", 0x23 },
        { "private tep", "55", "01 55", true, "45 03 55 45 04 01 55", 0x55 },
        { "no match", "21", "01 23", false, NULL, -1 },
        { "B without b", "23", "23", false, NULL, -1 },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct eno_config ca, cb;
        struct eno_conn a, b;
        uint8_t raw[40], tr[ENO_TRANSCRIPT_MAX], out[ENO_SYN_OPT_MAX];
        eno_config_init(&ca);
        eno_config_init(&cb);
        /* raw mode ignores ENABLED, TEPS and the mandatory options */
        ca.enabled = false;
        ca.tep_mandatory = true;
        cb.aa_mandatory = true;
        cr_assert_eq(eno_config_set_raw(&ca, raw, hex(cases[i].a_raw, raw, sizeof(raw))), ENO_OK);
        cr_assert_eq(eno_config_set_raw(&cb, raw, hex(cases[i].b_raw, raw, sizeof(raw))), ENO_OK);
        struct hs_result r = handshake(&a, &ca, &b, &cb);
        if (!cases[i].ok) {
            cr_assert_eq(r.b_init, ENO_ACT_FALLBACK, "%s", cases[i].name);
            cr_assert_eq(r.a_synack, ENO_ACT_FALLBACK, "%s: not ABORT in raw mode", cases[i].name);
            cr_assert_eq(eno_conn_transcript(&a, tr), 0);
            continue;
        }
        cr_assert_eq(r.a_ack_sent, ENO_ACT_ENCRYPTING, "%s", cases[i].name);
        assert_bytes(tr, eno_conn_transcript(&a, tr), cases[i].transcript, cases[i].name);
        assert_bytes(tr, eno_conn_transcript(&b, tr), cases[i].transcript, cases[i].name);
        cr_assert_eq(eno_conn_negtep(&a) & 0x7f, cases[i].negtep);
        cr_assert(eno_conn_encrypting(&b));
        /* the active opener sent the minimal 45 02 */
        cr_assert_eq(eno_conn_init_active(&a, &ca), ENO_ACT_NONE);
        uint8_t area[ENO_TCP_OPTS_MAX];
        size_t n = send_seg(&b, SYNACK, area, NULL);
        cr_assert_eq(eno_conn_input(&a, SYNACK, area, n), ENO_ACT_NEGOTIATED);
        assert_bytes(out, out_bytes(&a, ACK, out), "45 02", cases[i].name);
    }
}

/* ---- §4.7 data in SYN segments ------------------------------------------------- */

Test(eno_must, syn_data_policy)
{
    struct tctx t;
    struct eno_config cfg;
    struct eno_conn b;
    uint8_t area[ENO_TCP_OPTS_MAX];
    memset(&t, 0, sizeof(t));
    cfg_make(&cfg, &t, "21 23");

    size_t n = area_hex(area, "45 04 21 23");   /* SYN TEP = 23 */
    cr_assert_eq(eno_conn_init_passive(&b, &cfg, area, n), ENO_ACT_NEGOTIATED);
    cr_assert(!eno_conn_syn_data_acceptable(&b, false), "no TEP of ours defines SYN data");
    t.syn_data_defined[0x23] = true;
    cr_assert(eno_conn_syn_data_acceptable(&b, false));
    cr_assert(!eno_conn_syn_data_acceptable(&b, true), "non-empty TFO option");
    /* SYN TEP differs from the negotiated TEP */
    n = area_hex(area, "45 04 23 21");
    cfg_make(&cfg, &t, "23");
    cr_assert_eq(eno_conn_init_passive(&b, &cfg, area, n), ENO_ACT_NEGOTIATED);
    cr_assert(!eno_conn_syn_data_acceptable(&b, false), "SYN TEP 21 != 23");
    /* ENO failed */
    n = area_hex(area, "45 03 24");
    cr_assert_eq(eno_conn_init_passive(&b, &cfg, area, n), ENO_ACT_FALLBACK);
    cr_assert(!eno_conn_syn_data_acceptable(&b, false));
}

/* ---- experimental TEP 0x20 end to end, with a test session ID ------------------ */

/* session ID = 0x20 (B's v bit) | SHA-256(transcript): NOT secret, test only */
static size_t exp_session_id(const struct eno_conn *c, uint8_t out[33])
{
    uint8_t tr[ENO_TRANSCRIPT_MAX];
    size_t n = eno_conn_transcript(c, tr);
    if (n == 0 || (eno_conn_negtep(c) & 0x7f) != ENO_TEP_EXPERIMENTAL)
        return 0;
    out[0] = (uint8_t)eno_conn_negtep(c);
    crypto_hash_sha256(out + 1, tr, n);
    return 33;
}

Test(eno_handshake, experimental_tep)
{
    struct tctx ta, tb;
    struct eno_config ca, cb;
    struct eno_conn a, b;
    uint8_t ida[33], idb[33];

    cr_assert(sodium_init() >= 0);
    memset(&ta, 0, sizeof(ta));
    memset(&tb, 0, sizeof(tb));
    /* not in B's list: never chosen */
    cfg_make(&ca, &ta, "20 23");
    cfg_make(&cb, &tb, "23");
    handshake(&a, &ca, &b, &cb);
    cr_assert_eq(eno_conn_negtep(&a), 0x23);
    cr_assert_eq(exp_session_id(&a, ida), 0);
    /* configured on both ends: negotiated */
    cfg_make(&cb, &tb, "23 20");
    handshake(&a, &ca, &b, &cb);
    assert_agree(&a, &b);
    cr_assert_eq(eno_conn_negtep(&a), 0x20);
    cr_assert_eq(exp_session_id(&a, ida), 33);
    cr_assert_eq(exp_session_id(&b, idb), 33);
    cr_assert_eq(memcmp(ida, idb, 33), 0);
    cr_assert_eq(ida[0], 0x20);
    /* hand-computed: SHA-256(45 04 20 23 45 04 01 20) */
    uint8_t tr[] = { 0x45, 0x04, 0x20, 0x23, 0x45, 0x04, 0x01, 0x20 }, h[32];
    crypto_hash_sha256(h, tr, sizeof(tr));
    cr_assert_eq(memcmp(ida + 1, h, 32), 0);
}

/* ---- lwIP's 32-byte SYN room and the data fallback ----------------------------- */

Test(eno_handshake, syn_room_drops_data)
{
    struct tctx t;
    struct eno_config cfg;
    struct eno_conn a;
    uint8_t out[ENO_SYN_OPT_MAX];
    memset(&t, 0, sizeof(t));
    cfg_make(&cfg, &t, "21 22 23 24");
    t.syn_data_len[0x23] = 17;       /* 45 18 21 22 90 a3 <17> 24: 24 bytes fit */
    cr_assert_eq(eno_conn_init_active(&a, &cfg), ENO_ACT_NONE);
    cr_assert_eq(out_bytes(&a, SYN, out), 24);
    cr_assert_eq(out[4], 0x90, "length byte for 17 bytes");
    t.syn_data_len[0x24] = 17;       /* both: 2 + 4 + 2 + 34 + 1 > 32: no data */
    cr_assert_eq(eno_conn_init_active(&a, &cfg), ENO_ACT_NONE);
    assert_bytes(out, out_bytes(&a, SYN, out), "45 06 21 22 23 24", "data dropped");
}
