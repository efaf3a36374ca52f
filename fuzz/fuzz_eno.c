/*
 * fuzz_eno.c — libFuzzer target for stack/eno.c (TCP-ENO, RFC 8547).
 *
 * FUZZ_SOURCES: stack/eno.c
 * FUZZ_LIBS:
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude -Istack \
 *         fuzz/fuzz_eno.c stack/eno.c -o build/fuzz/fuzz_eno
 *
 * Input layout (every field optional: missing bytes read as 0):
 *   [0..7]    configuration of host A (see cfg_from)
 *   [8..15]   configuration of host B
 *   [16]      length of X (mod 41)
 *   X         a TCP options area (<= 40 bytes)
 *   Y         the rest: a TCP options area, and also a list of segments
 *             (flags, length mod 41, options area bytes) for the state-machine
 *             walk
 *
 * What is checked (abort() on violation):
 *   1. parser: scan/parse never read out of bounds (ASan); a parsed SYN-form
 *      re-encodes to an option that parses back to the same suboptions;
 *   2. an honest A/B handshake with fuzzed configurations: both ends encrypt or
 *      neither does, and when they do they agree (TEP, transcript, opposite
 *      roles, suboption data);
 *   3. the same handshake with X and Y substituted for the SYN and SYN-ACK
 *      option areas by a "middlebox": no crash, each end internally
 *      consistent;
 *   4. a simultaneous open with the same configurations: agreement as in 2;
 *   5. a walk through arbitrary segments: states only move forward
 *      (ENCRYPTING and DISABLED are final), output sizes are sane.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "eno.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x) do { if (!(x)) abort(); } while (0)

/* ---- input reader ------------------------------------------------------------ */

struct in {
    const uint8_t *p, *end;
};

static uint8_t in_u8(struct in *r)
{
    if (r->p >= r->end)
        return 0;
    return *r->p++;
}

static size_t in_bytes(struct in *r, uint8_t *out, size_t want)
{
    size_t n = (size_t)(r->end - r->p);
    if (n > want)
        n = want;
    if (n > 0)
        memcpy(out, r->p, n);
    r->p += n;
    return n;
}

/* ---- fuzzed TEP behaviour (symmetric validity so that both ends of an honest
 * exchange must agree) ---------------------------------------------------------- */

struct fctx {
    uint8_t syn_len23, syn_len21;
    uint8_t answer_mode;      /* 0 plain, 1 refuse, 2 data */
    uint8_t answer_len;
    uint8_t check_mode;       /* bit0 reject 0x21, bit1 ignore short data */
    uint8_t seed;
};

static bool f_implemented(void *ctx, uint8_t tep)
{
    (void)ctx;
    return tep != 0x6e;
}

static size_t f_syn_data(void *ctx, uint8_t tep, uint8_t *buf, size_t cap)
{
    struct fctx *f = ctx;
    size_t n = tep == 0x23 ? f->syn_len23 : tep == 0x21 ? f->syn_len21 : 0;
    if (n > cap)
        n = cap;
    for (size_t i = 0; i < n; i++)
        buf[i] = (uint8_t)(f->seed + i);
    return n;
}

static enum eno_answer f_answer(void *ctx, const struct eno_subopt_view *a,
                                uint8_t *buf, size_t cap, size_t *len)
{
    struct fctx *f = ctx;
    CHECK(a->tep >= 0x20 && a->tep <= 0x7f);
    CHECK(a->data_len == 0 || a->data != NULL);
    if (a->tep != 0x23)
        return ENO_ANSWER_PLAIN;
    if (f->answer_mode == 1)
        return ENO_ANSWER_REFUSE;
    if (f->answer_mode == 2) {
        size_t n = f->answer_len;
        if (n > cap)
            return ENO_ANSWER_PLAIN;
        memset(buf, 0xb0, n);
        *len = n;
        return ENO_ANSWER_DATA;
    }
    return ENO_ANSWER_PLAIN;
}

static enum eno_verdict f_check(void *ctx, int self_role, const struct eno_subopt_view *a,
                                const struct eno_subopt_view *b)
{
    struct fctx *f = ctx;
    CHECK(self_role == ENO_ROLE_A || self_role == ENO_ROLE_B);
    CHECK(a->tep == b->tep);
    if ((f->check_mode & 1) && a->tep == 0x21)
        return ENO_VERDICT_INVALID;
    if ((f->check_mode & 2) && (a->data_len + b->data_len) % 3 == 1)
        return ENO_VERDICT_IGNORE_DATA;
    return ENO_VERDICT_VALID;
}

static const struct eno_tep_ops f_ops = {
    .implemented = f_implemented,
    .syn_data = f_syn_data,
    .answer = f_answer,
    .check = f_check,
};

static const uint8_t tep_pool[8] = { 0x20, 0x21, 0x22, 0x23, 0x24, 0x30, 0x55, 0x6f };

/* 8 bytes -> a configuration; the check mode is shared by both hosts (the TEP
 * specification, unlike local policy, is the same at both ends). */
static void cfg_from(struct in *r, struct eno_config *cfg, struct fctx *f,
                     uint8_t check_mode, const uint8_t *raw, size_t raw_len)
{
    uint8_t c[8];
    for (int i = 0; i < 8; i++)
        c[i] = in_u8(r);

    memset(f, 0, sizeof(*f));
    eno_config_init(cfg);
    cfg->ops = &f_ops;
    cfg->ops_ctx = f;

    uint8_t list[8];
    size_t n = 0;
    for (int i = 0; i < 8; i++)
        if (c[0] & (1u << i))
            list[n++] = tep_pool[i];
    if (n > 0 && (c[1] & 1)) {
        for (size_t i = 0; i < n / 2; i++) {
            uint8_t t = list[i];
            list[i] = list[n - 1 - i];
            list[n - 1 - i] = t;
        }
    }
    size_t rot = n > 0 ? (size_t)(c[1] >> 1) % n : 0;
    uint8_t rotated[8];
    for (size_t i = 0; i < n; i++)
        rotated[i] = list[(i + rot) % n];
    cfg->syn_opt_max = (uint8_t)(4 + c[3] % 37);
    /* set_teps may refuse (room); that leaves an empty list: ENO off */
    (void)eno_config_set_teps(cfg, rotated, n);
    cfg->self_gopt = c[2] & 0x1f;
    cfg->aa_mandatory = (c[2] & 0x20) != 0;
    cfg->tep_mandatory = (c[2] & 0x40) != 0;
    cfg->vacuous = (c[2] & 0x80) != 0;
    f->syn_len23 = c[4] % 20;
    f->syn_len21 = c[5] % 8;
    f->answer_mode = c[6] % 3;
    f->answer_len = (uint8_t)((c[6] >> 2) % 20);
    f->check_mode = check_mode;
    f->seed = c[7];
    if (c[7] & 0x40)
        cfg->enabled = false;
    if ((c[7] & 0x80) && raw_len > 0)
        (void)eno_config_set_raw(cfg, raw, raw_len);
}

/* ---- invariants --------------------------------------------------------------- */

static bool synopt_has(const struct eno_synopt *o, uint8_t glt)
{
    for (unsigned i = 0; i < o->nsub; i++)
        if (o->sub[i].glt == glt)
            return true;
    return false;
}

/* What must hold for one connection at any time. */
static void conn_sane(const struct eno_conn *c)
{
    uint8_t out[ENO_SYN_OPT_MAX], tr[ENO_TRANSCRIPT_MAX];

    CHECK(c->state >= ENO_ST_IDLE && c->state <= ENO_ST_DISABLED);
    CHECK((unsigned)c->reason < (unsigned)ENO_R_COUNT_);
    CHECK(eno_reason_str(c->reason)[0] != '\0');
    size_t ls = eno_conn_output_len(c, ENO_TCP_SYN);
    size_t la = eno_conn_output_len(c, ENO_TCP_ACK);
    CHECK(ls == 0 || (ls >= 2 && ls <= ENO_SYN_OPT_MAX));
    CHECK(la == 0 || la == 2);
    CHECK(eno_conn_output(c, ENO_TCP_SYN | ENO_TCP_ACK, out) == ls);
    if (ls > 0) {
        struct eno_synopt o;
        CHECK(out[0] == ENO_OPT_KIND && out[1] == ls);
        CHECK(eno_synopt_parse(&o, out, ls) == ENO_OK);   /* we never send junk */
    }
    if (eno_conn_output(c, ENO_TCP_ACK, out) == 2)
        CHECK(out[0] == ENO_OPT_KIND && out[1] == 2);
    if (c->aborted)
        CHECK(c->state == ENO_ST_DISABLED);
    switch (c->state) {
    case ENO_ST_DISABLED:
        CHECK(la == 0);
        CHECK(c->reason != ENO_R_NONE);
        CHECK(eno_conn_api_errno(c) != 0);
        CHECK(eno_conn_transcript(c, tr) == 0);
        CHECK(eno_conn_role(c) == -1);
        break;
    case ENO_ST_ENCRYPTING:
        CHECK(c->ack_sent && c->ack_rcvd);
        CHECK(eno_conn_api_errno(c) == 0);
        /* fall through */
    case ENO_ST_NEGOTIATED: {
        int role = eno_conn_role(c);
        CHECK(role == (c->self.gopt & 1));
        CHECK(((c->peer.gopt ^ c->self.gopt) & 1) == 1);
        int negtep = eno_conn_negtep(c);
        CHECK(negtep >= 0x20 && negtep <= 0xff && (negtep & 0x7f) >= 0x20);
        CHECK(synopt_has(&c->self, (uint8_t)(negtep & 0x7f)));
        CHECK(synopt_has(&c->peer, (uint8_t)(negtep & 0x7f)));
        size_t n = eno_conn_transcript(c, tr);
        CHECK(n == (size_t)c->self.len + c->peer.len);
        CHECK(tr[0] == ENO_OPT_KIND && tr[tr[1]] == ENO_OPT_KIND);
        struct eno_subopt_view va, vb;
        CHECK(eno_conn_subopt(c, ENO_ROLE_A, &va) && eno_conn_subopt(c, ENO_ROLE_B, &vb));
        CHECK(va.tep == (negtep & 0x7f) && vb.tep == va.tep);
        CHECK(vb.v == ((negtep & 0x80) != 0));
        CHECK(eno_conn_peer_gopt(c) >= 0 && eno_conn_peer_gopt(c) <= 0x1f);
        break;
    }
    case ENO_ST_IDLE:
    case ENO_ST_SYN_SENT:
        CHECK(eno_conn_role(c) == -1);
        CHECK(eno_conn_transcript(c, tr) == 0);
        break;
    }
}

static void agree(const struct eno_conn *a, const struct eno_conn *b)
{
    uint8_t ta[ENO_TRANSCRIPT_MAX], tb[ENO_TRANSCRIPT_MAX];

    CHECK(eno_conn_encrypting(a) == eno_conn_encrypting(b));
    if (!eno_conn_encrypting(a))
        return;
    CHECK((eno_conn_role(a) ^ eno_conn_role(b)) == 1);
    CHECK(eno_conn_negtep(a) == eno_conn_negtep(b));
    size_t la = eno_conn_transcript(a, ta), lb = eno_conn_transcript(b, tb);
    CHECK(la > 0 && la == lb && memcmp(ta, tb, la) == 0);
    CHECK(eno_conn_peer_gopt(a) == eno_conn_self_gopt(b));
    CHECK(eno_conn_peer_gopt(b) == eno_conn_self_gopt(a));
    for (int role = 0; role <= 1; role++) {
        struct eno_subopt_view va, vb;
        CHECK(eno_conn_subopt(a, role, &va) && eno_conn_subopt(b, role, &vb));
        CHECK(va.tep == vb.tep && va.v == vb.v && va.data_len == vb.data_len);
        CHECK(va.data_len == 0 || memcmp(va.data, vb.data, va.data_len) == 0);
    }
}

/* ---- scenarios ------------------------------------------------------------------ */

static size_t pad_area(uint8_t area[ENO_TCP_OPTS_MAX], const uint8_t *eno, size_t n)
{
    static const uint8_t mss_ws[8] = { 0x02, 0x04, 0x05, 0xb4, 0x01, 0x03, 0x03, 0x07 };
    memcpy(area, mss_ws, sizeof(mss_ws));
    size_t len = sizeof(mss_ws);
    CHECK(len + n <= ENO_TCP_OPTS_MAX);
    if (n > 0)
        memcpy(area + len, eno, n);
    len += n;
    while (len % 4 != 0 && len < ENO_TCP_OPTS_MAX)
        area[len++] = 0x01;
    return len;
}

/* Build the area of a segment c sends (room permitting) and report it sent. */
static size_t send_seg(struct eno_conn *c, unsigned flags, uint8_t area[ENO_TCP_OPTS_MAX])
{
    uint8_t eno[ENO_SYN_OPT_MAX];
    size_t n = eno_conn_output(c, flags, eno);
    CHECK(n == eno_conn_output_len(c, flags));
    if (n > ENO_TCP_OPTS_MAX - 8) {
        (void)eno_conn_sent(c, flags, n);
        memcpy(area, eno, n);          /* no room for MSS/WS: ENO alone */
        return n;
    }
    (void)eno_conn_sent(c, flags, n);
    return pad_area(area, eno, n);
}

/* 1. parser and encoder */
static void fuzz_parser(const uint8_t *x, size_t n)
{
    struct eno_scan s;
    struct eno_synopt o, o2;
    uint8_t opt[ENO_SYN_OPT_MAX], enc[ENO_SYN_OPT_MAX];

    eno_scan_options(x, n, &s);
    CHECK(s.count == 0 || (s.first_off + s.first_len <= n && s.first_len >= 2));
    if (s.count > 0)
        CHECK(x[s.first_off] == ENO_OPT_KIND && x[s.first_off + 1] == s.first_len);

    /* the bytes as the contents of one ENO option */
    if (n > ENO_SYN_CONTENTS_MAX)
        n = ENO_SYN_CONTENTS_MAX;
    opt[0] = ENO_OPT_KIND;
    opt[1] = (uint8_t)(n + 2);
    if (n > 0)
        memcpy(opt + 2, x, n);
    int rc = eno_synopt_parse(&o, opt, n + 2);
    if (rc != ENO_OK) {
        CHECK(rc == ENO_E_ILL_FORMED && o.len == 0 && o.nsub == 0);
        return;
    }
    CHECK(o.len == n + 2 && o.gopt <= 0x1f);
    struct eno_tep_offer offers[ENO_SYN_CONTENTS_MAX];
    for (unsigned i = 0; i < o.nsub; i++) {
        const struct eno_subopt *sub = &o.sub[i];
        CHECK(sub->glt >= 0x20 && sub->glt <= 0x7f);
        CHECK((size_t)sub->data_off + sub->data_len <= o.len);
        CHECK(sub->data_len == 0 || sub->v);
        CHECK(!sub->lenbyte || (sub->data_len >= 1 && sub->data_len <= 32));
        offers[i].tep = sub->glt;
        offers[i].v = sub->v != 0;
        offers[i].data_len = sub->data_len;
        offers[i].data = o.bytes + sub->data_off;
    }
    /* canonical re-encoding: only the first global suboption, length bytes
     * only where needed; never longer than the original */
    int len = eno_synopt_encode(enc, ENO_SYN_OPT_MAX, o.ngopt ? o.gopt : ENO_GOPT_IMPLICIT,
                                offers, o.nsub);
    CHECK(len >= 2 && (size_t)len <= o.len);
    CHECK(eno_synopt_parse(&o2, enc, (size_t)len) == ENO_OK);
    CHECK(o2.nsub == o.nsub && o2.gopt == o.gopt && o2.ngopt == (o.ngopt ? 1 : 0));
    for (unsigned i = 0; i < o.nsub; i++) {
        CHECK(o2.sub[i].glt == o.sub[i].glt && o2.sub[i].v == o.sub[i].v);
        CHECK(o2.sub[i].data_len == o.sub[i].data_len);
        CHECK(memcmp(o2.bytes + o2.sub[i].data_off, o.bytes + o.sub[i].data_off,
                     o.sub[i].data_len) == 0);
    }
}

/* 2./3. handshake; tamper: replace the SYN area with x, the SYN-ACK area with y */
static void fuzz_handshake(const struct eno_config *ca, const struct eno_config *cb,
                           const uint8_t *x, size_t nx, const uint8_t *y, size_t ny,
                           bool tamper)
{
    struct eno_conn a, b;
    uint8_t area[ENO_TCP_OPTS_MAX];
    size_t n;

    (void)eno_conn_init_active(&a, ca);
    conn_sane(&a);
    n = send_seg(&a, ENO_TCP_SYN, area);
    (void)eno_conn_init_passive(&b, cb, tamper ? x : area, tamper ? nx : n);
    conn_sane(&b);
    n = send_seg(&b, ENO_TCP_SYN | ENO_TCP_ACK, area);
    (void)eno_conn_input(&a, ENO_TCP_SYN | ENO_TCP_ACK, tamper ? y : area, tamper ? ny : n);
    conn_sane(&a);
    n = send_seg(&a, ENO_TCP_ACK, area);
    conn_sane(&a);
    (void)eno_conn_input(&b, ENO_TCP_ACK, area, n);
    conn_sane(&b);
    n = send_seg(&a, ENO_TCP_ACK | ENO_TCP_PSH, area);
    (void)eno_conn_input(&b, ENO_TCP_ACK | ENO_TCP_PSH, area, n);
    n = send_seg(&b, ENO_TCP_ACK | ENO_TCP_PSH, area);
    (void)eno_conn_input(&a, ENO_TCP_ACK | ENO_TCP_PSH, area, n);
    conn_sane(&a);
    conn_sane(&b);
    CHECK(!eno_conn_nonsyn_required(&a) || !eno_conn_encrypting(&a));
    CHECK(!eno_conn_nonsyn_required(&b) || !eno_conn_encrypting(&b));
    if (!tamper) {
        /* raw mode skips §4.5's checks (api-06), so only like meets like */
        if ((ca->raw_len > 0) == (cb->raw_len > 0))
            agree(&a, &b);
        /* an honest exchange never aborts unless someone asked for it */
        if (a.aborted)
            CHECK(ca->tep_mandatory);
        if (b.aborted)
            CHECK(cb->tep_mandatory);
    }
}

/* 4. simultaneous open */
static void fuzz_simopen(const struct eno_config *cx, const struct eno_config *cy)
{
    struct eno_conn x, y;
    uint8_t ax[ENO_TCP_OPTS_MAX], ay[ENO_TCP_OPTS_MAX];

    (void)eno_conn_init_active(&x, cx);
    (void)eno_conn_init_active(&y, cy);
    size_t nx = send_seg(&x, ENO_TCP_SYN, ax);
    size_t ny = send_seg(&y, ENO_TCP_SYN, ay);
    (void)eno_conn_input(&x, ENO_TCP_SYN, ay, ny);
    (void)eno_conn_input(&y, ENO_TCP_SYN, ax, nx);
    conn_sane(&x);
    conn_sane(&y);
    nx = send_seg(&x, ENO_TCP_SYN | ENO_TCP_ACK, ax);
    ny = send_seg(&y, ENO_TCP_SYN | ENO_TCP_ACK, ay);
    (void)eno_conn_input(&x, ENO_TCP_SYN | ENO_TCP_ACK, ay, ny);
    (void)eno_conn_input(&y, ENO_TCP_SYN | ENO_TCP_ACK, ax, nx);
    nx = send_seg(&x, ENO_TCP_ACK, ax);
    ny = send_seg(&y, ENO_TCP_ACK, ay);
    (void)eno_conn_input(&x, ENO_TCP_ACK, ay, ny);
    (void)eno_conn_input(&y, ENO_TCP_ACK, ax, nx);
    conn_sane(&x);
    conn_sane(&y);
    if ((cx->raw_len > 0) == (cy->raw_len > 0))
        agree(&x, &y);
}

/* 5. arbitrary segments into one connection */
static void fuzz_walk(const struct eno_config *cfg, struct in *r, bool passive,
                      const uint8_t *first, size_t nfirst)
{
    struct eno_conn c;
    uint8_t area[ENO_TCP_OPTS_MAX], out[ENO_SYN_OPT_MAX];

    if (passive)
        (void)eno_conn_init_passive(&c, cfg, first, nfirst);
    else
        (void)eno_conn_init_active(&c, cfg);
    conn_sane(&c);
    for (int step = 0; step < 32 && r->p < r->end; step++) {
        uint8_t op = in_u8(r);
        enum eno_state before = c.state;
        unsigned flags = op & 0x1f;
        enum eno_action act = ENO_ACT_NONE;
        bool dropped = false;
        if (op & 0x80) {
            /* we send */
            size_t n = eno_conn_output(&c, flags, out);
            act = eno_conn_sent(&c, flags, (op & 0x40) ? 0 : n);
        } else if (op & 0x40) {
            int rc = eno_conn_drop_syn_option(&c);
            CHECK(rc == ENO_OK || rc == ENO_E_STATE || rc == ENO_E_MANDATORY);
            dropped = (rc == ENO_OK);
            if (dropped)
                CHECK(c.state == ENO_ST_DISABLED && c.reason == ENO_R_LOCAL_DROP &&
                      eno_conn_output_len(&c, ENO_TCP_SYN) == 0);
            else if (op & 0x20)
                act = eno_conn_set_tep_mandatory(&c);
        } else {
            size_t n = in_u8(r) % (ENO_TCP_OPTS_MAX + 1);
            n = in_bytes(r, area, n);
            act = eno_conn_input(&c, flags, area, n);
        }
        conn_sane(&c);
        (void)eno_conn_syn_data_acceptable(&c, op & 1);
        /* states only move forward; final states stay final */
        if (before == ENO_ST_DISABLED)
            CHECK(c.state == ENO_ST_DISABLED);
        if (before == ENO_ST_ENCRYPTING)
            CHECK(c.state == ENO_ST_ENCRYPTING);
        if (before == ENO_ST_NEGOTIATED)
            CHECK(c.state != ENO_ST_SYN_SENT && c.state != ENO_ST_IDLE);
        switch (act) {
        case ENO_ACT_NONE:
            CHECK(c.state == before || dropped);
            break;
        case ENO_ACT_NEGOTIATED:
            CHECK(c.state == ENO_ST_NEGOTIATED && before == ENO_ST_SYN_SENT);
            break;
        case ENO_ACT_ENCRYPTING:
            CHECK(c.state == ENO_ST_ENCRYPTING && before == ENO_ST_NEGOTIATED);
            break;
        case ENO_ACT_FALLBACK:
            CHECK(c.state == ENO_ST_DISABLED && !c.aborted);
            break;
        case ENO_ACT_ABORT:
            CHECK(c.state == ENO_ST_DISABLED && c.aborted);
            break;
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct in r = { data, data + size };
    struct eno_config ca, cb;
    struct fctx fa, fb;
    uint8_t cfgbytes[16], x[ENO_TCP_OPTS_MAX], y[ENO_TCP_OPTS_MAX];

    size_t ncfg = in_bytes(&r, cfgbytes, sizeof(cfgbytes));
    memset(cfgbytes + ncfg, 0, sizeof(cfgbytes) - ncfg);
    size_t nx = in_u8(&r) % (ENO_TCP_OPTS_MAX + 1);
    nx = in_bytes(&r, x, nx);
    const uint8_t *rest = r.p;
    size_t nrest = (size_t)(r.end - r.p);
    size_t ny = nrest < ENO_TCP_OPTS_MAX ? nrest : ENO_TCP_OPTS_MAX;
    memcpy(y, rest, ny);

    /* 1 */
    fuzz_parser(x, nx);
    fuzz_parser(y, ny);
    fuzz_parser(data, size < ENO_TCP_OPTS_MAX ? size : ENO_TCP_OPTS_MAX);

    /* configurations: A's raw contents come from X, B's from Y */
    uint8_t check_mode = cfgbytes[15] & 3;
    struct in rc = { cfgbytes, cfgbytes + 16 };
    cfg_from(&rc, &ca, &fa, check_mode, x, nx);
    cfg_from(&rc, &cb, &fb, check_mode, y, ny);

    /* 2, 3 */
    fuzz_handshake(&ca, &cb, x, nx, y, ny, false);
    fuzz_handshake(&ca, &cb, x, nx, y, ny, true);
    /* 4 (simultaneous open needs b = 1 on exactly one side to succeed) */
    fuzz_simopen(&ca, &cb);

    /* 5 */
    struct in w = { rest, rest + nrest };
    fuzz_walk(&ca, &w, false, NULL, 0);
    w.p = rest;
    fuzz_walk(&cb, &w, true, x, nx);
    return 0;
}
