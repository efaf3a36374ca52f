/*
 * eno.c — TCP-ENO (RFC 8547) option parsing, encoding and negotiation.
 *
 * Pure: no I/O, no allocation, no lwIP.  Section numbers (§) refer to
 * draft-ietf-tcpinc-tcpeno-19 (= RFC 8547) unless another document is named
 * (api-06 = draft-ietf-tcpinc-api-06, tcpcrypt-15 = RFC 8548).
 *
 * Layout: byte cursor; TCP options scan; SYN-form parse and encode;
 * configuration; negotiation (§4.3, §4.5); the connection state machine
 * (§4.6); results.  Every state change follows "compute, re-check, commit":
 * a received SYN-form is parsed and negotiated into locals and copied into the
 * connection only once the outcome is known.
 */
#include "eno.h"

#include <errno.h>
#include <string.h>

#include "tcpinc.h"

/* The public API (include/tcpinc.h) and this module must agree. */
_Static_assert(ENO_TEP_EXPERIMENTAL == TCPINC_TEP_EXPERIMENTAL, "TEP 0x20");
_Static_assert(ENO_TEP_TCPCRYPT_P256 == TCPINC_TEP_TCPCRYPT_P256, "TEP 0x21");
_Static_assert(ENO_TEP_TCPCRYPT_P521 == TCPINC_TEP_TCPCRYPT_P521, "TEP 0x22");
_Static_assert(ENO_TEP_TCPCRYPT_X25519 == TCPINC_TEP_TCPCRYPT_X25519, "TEP 0x23");
_Static_assert(ENO_TEP_TCPCRYPT_X448 == TCPINC_TEP_TCPCRYPT_X448, "TEP 0x24");
_Static_assert(ENO_TRANSCRIPT_MAX <= TCPINC_TRANSCRIPT_MAX, "transcript size");
_Static_assert((int)ENO_STATUS_NEGOTIATING == TCPINC_STATE_NEGOTIATING, "state");
_Static_assert((int)ENO_STATUS_ENCRYPTING == TCPINC_STATE_ENCRYPTING, "state");
_Static_assert((int)ENO_STATUS_DISABLED == TCPINC_STATE_DISABLED, "state");
/* Offsets and lengths inside one option are kept in uint8_t. */
_Static_assert(ENO_SYN_OPT_MAX <= 255, "option offsets fit in a byte");

/* ---- byte cursor (STYLE.md 1) --------------------------------------------- */

struct eno_rd {
    const uint8_t *p;
    const uint8_t *end;
};

static size_t rd_left(const struct eno_rd *r)
{
    return (size_t)(r->end - r->p);
}

static bool rd_u8(struct eno_rd *r, uint8_t *v)
{
    if (r->p >= r->end)
        return false;
    *v = *r->p++;
    return true;
}

static bool rd_skip(struct eno_rd *r, size_t n)
{
    if (rd_left(r) < n)
        return false;
    r->p += n;
    return true;
}

struct eno_wr {
    uint8_t *p;
    uint8_t *end;
};

static bool wr_u8(struct eno_wr *w, uint8_t v)
{
    if (w->p >= w->end)
        return false;
    *w->p++ = v;
    return true;
}

static bool wr_bytes(struct eno_wr *w, const uint8_t *src, size_t n)
{
    if ((size_t)(w->end - w->p) < n)
        return false;
    if (n > 0)
        memcpy(w->p, src, n);
    w->p += n;
    return true;
}

/* ---- TCP options area (§4.1) ---------------------------------------------- */

#define TCPOPT_EOL 0
#define TCPOPT_NOP 1

void eno_scan_options(const uint8_t *opts, size_t len, struct eno_scan *out)
{
    memset(out, 0, sizeof(*out));
    if (len == 0)
        return;
    /* RFC 9293 §3.1: at most 40 option bytes fit behind the header. */
    if (opts == NULL || len > ENO_TCP_OPTS_MAX) {
        out->malformed = true;
        return;
    }

    struct eno_rd r = { opts, opts + len };
    uint8_t kind, olen;
    while (rd_u8(&r, &kind)) {
        if (kind == TCPOPT_EOL)
            break;             /* the rest is padding */
        if (kind == TCPOPT_NOP)
            continue;
        /* Every other option is kind, length (>= 2, counting both), data. */
        if (!rd_u8(&r, &olen) || olen < 2 || !rd_skip(&r, (size_t)olen - 2)) {
            out->malformed = true;
            return;
        }
        if (kind == ENO_OPT_KIND) {
            if (out->count == 0) {
                out->first_off = (size_t)(r.p - opts) - olen;
                out->first_len = olen;
            }
            out->count++;
        }
    }
}

/* ---- SYN form (§4.1–§4.4) ------------------------------------------------- */

int eno_synopt_parse(struct eno_synopt *o, const uint8_t *opt, size_t len)
{
    memset(o, 0, sizeof(*o));
    if (opt == NULL || len < 2 || len > ENO_SYN_OPT_MAX)
        return ENO_E_INVAL;
    if (opt[0] != ENO_OPT_KIND || opt[1] != len)
        return ENO_E_INVAL;

    memcpy(o->bytes, opt, len);
    o->len = (uint8_t)len;

    struct eno_rd r = { o->bytes + 2, o->bytes + len };
    uint8_t b;
    while (rd_u8(&r, &b)) {
        if (b < ENO_GLT_TEP_MIN) {
            /* §4.2: a global suboption; only the first one counts, the rest
             * are ignored (they may gain meaning in later updates). */
            if (o->ngopt == 0)
                o->gopt = b;
            o->ngopt++;
            continue;
        }

        struct eno_subopt *s = &o->sub[o->nsub];
        if (b <= ENO_SUB_GLT) {
            /* Table 1: a TEP identifier without data (v = 0). */
            s->glt = b;
            o->nsub++;
            continue;
        }

        if (b <= ENO_LENBYTE_MAX) {
            /* §4.4: length byte 100nnnnn, nnnnn + 1 bytes of data for the
             * next suboption, which MUST be a TEP identifier with v = 1. */
            size_t n = (size_t)(b & ENO_LENBYTE_NNNNN) + 1;
            uint8_t t;
            if (!rd_u8(&r, &t))
                goto ill_formed;     /* §4.4 (1): nothing after it */
            if (t < (ENO_SUB_V | ENO_GLT_TEP_MIN))
                goto ill_formed;     /* §4.4 (2): followed by 0x00-0x9f */
            size_t off = (size_t)(r.p - o->bytes);
            if (!rd_skip(&r, n))
                goto ill_formed;     /* §4.4 (1): data past the end */
            s->glt = t & ENO_SUB_GLT;
            s->v = 1;
            s->lenbyte = 1;
            s->data_off = (uint8_t)off;
            s->data_len = (uint8_t)n;
            o->nsub++;
            continue;
        }

        /* §4.1/§4.4: TEP with v = 1 and no length byte before it: its data
         * runs to the end of the option (possibly zero bytes). */
        size_t off = (size_t)(r.p - o->bytes);
        size_t n = rd_left(&r);
        (void)rd_skip(&r, n);
        s->glt = b & ENO_SUB_GLT;
        s->v = 1;
        s->data_off = (uint8_t)off;
        s->data_len = (uint8_t)n;
        o->nsub++;
    }
    return ENO_OK;

ill_formed:
    memset(o, 0, sizeof(*o));
    return ENO_E_ILL_FORMED;
}

int eno_synopt_encode(uint8_t *out, size_t max_len, int gopt,
                      const struct eno_tep_offer *teps, size_t n)
{
    if (out == NULL || (n > 0 && teps == NULL))
        return ENO_E_INVAL;
    if (gopt != ENO_GOPT_IMPLICIT && (gopt < 0 || gopt > ENO_GOPT_MASK))
        return ENO_E_INVAL;
    if (max_len > ENO_SYN_OPT_MAX)
        max_len = ENO_SYN_OPT_MAX;   /* §4.4: 40 bytes is all TCP has */

    /* Check every value before writing anything. */
    for (size_t i = 0; i < n; i++) {
        const struct eno_tep_offer *t = &teps[i];
        bool v = t->v || t->data_len > 0;
        bool last = (i + 1 == n);
        if (t->tep < ENO_GLT_TEP_MIN || t->tep > ENO_TEP_MAX)
            return ENO_E_INVAL;
        if (t->data_len > 0 && t->data == NULL)
            return ENO_E_INVAL;
        /* §4.4: a suboption with data that is not last needs a length byte,
         * which can say 1..32 bytes only. */
        if (v && !last && (t->data_len == 0 || t->data_len > ENO_LENBYTE_DATA_MAX))
            return ENO_E_INVAL;
    }

    struct eno_wr w = { out, out + max_len };
    if (!wr_u8(&w, ENO_OPT_KIND) || !wr_u8(&w, 0))
        return ENO_E_NOSPACE;
    /* §4.2: no explicit global suboption means 0x00. */
    if (gopt != ENO_GOPT_IMPLICIT && !wr_u8(&w, (uint8_t)gopt))
        return ENO_E_NOSPACE;
    for (size_t i = 0; i < n; i++) {
        const struct eno_tep_offer *t = &teps[i];
        bool v = t->v || t->data_len > 0;
        bool last = (i + 1 == n);
        if (v && !last &&
            !wr_u8(&w, (uint8_t)(ENO_LENBYTE_MIN | (t->data_len - 1))))
            return ENO_E_NOSPACE;
        if (!wr_u8(&w, (uint8_t)(t->tep | (v ? ENO_SUB_V : 0))))
            return ENO_E_NOSPACE;
        if (!wr_bytes(&w, t->data, t->data_len))
            return ENO_E_NOSPACE;
    }
    size_t len = (size_t)(w.p - out);
    out[1] = (uint8_t)len;
    return (int)len;
}

/* Index of the first suboption for `glt` (v ignored, §4.5) and how many. */
static int synopt_find(const struct eno_synopt *o, uint8_t glt, unsigned *count)
{
    int first = -1;
    unsigned k = 0;
    for (unsigned i = 0; i < o->nsub; i++) {
        if (o->sub[i].glt != glt)
            continue;
        if (first < 0)
            first = (int)i;
        k++;
    }
    *count = k;
    return first;
}

static void synopt_view(const struct eno_synopt *o, unsigned idx, bool ignored,
                        struct eno_subopt_view *v)
{
    const struct eno_subopt *s = &o->sub[idx];
    v->tep = s->glt;
    v->v = s->v != 0;
    v->data_ignored = ignored;
    v->data_len = s->data_len;
    v->data = s->data_len > 0 ? &o->bytes[s->data_off] : NULL;
}

/* ---- configuration (api-06 §2.1) ----------------------------------------- */

void eno_config_init(struct eno_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->enabled = true;
    cfg->syn_opt_max = ENO_SYN_OPT_LWIP;
}

bool eno_tep_implemented(const struct eno_config *cfg, uint8_t tep)
{
    /* §11: 0x70-0x7f are reserved for extended identifiers, not TEPs. */
    if (tep < ENO_GLT_TEP_MIN || tep >= ENO_TEP_RESERVED_MIN)
        return false;
    if (cfg != NULL && cfg->ops != NULL && cfg->ops->implemented != NULL)
        return cfg->ops->implemented(cfg->ops_ctx, tep);
    return true;
}

/* api-06 TCP_ENO_TEPS rules; writes the identifiers with v cleared to norm. */
static int teps_check(const struct eno_config *cfg, const uint8_t *teps,
                      size_t n, uint8_t *norm)
{
    uint8_t seen[16] = { 0 };

    if (n > ENO_TEPS_MAX || (n > 0 && teps == NULL))
        return ENO_E_INVAL;
    for (size_t i = 0; i < n; i++) {
        uint8_t b = teps[i];
        /* api-06: bytes below 0x20 or 0x80-0x9f are errors; the v bit of the
         * others is ignored. */
        if (b < ENO_GLT_TEP_MIN ||
            (b >= ENO_LENBYTE_MIN && b <= ENO_LENBYTE_MAX))
            return ENO_E_INVAL;
        uint8_t t = b & ENO_SUB_GLT;
        if (!eno_tep_implemented(cfg, t))
            return ENO_E_INVAL;
        /* §4.5 (3): repeating a TEP makes it invalid unless the TEP defines
         * repetition; none of ours does, so never send one twice. */
        if (seen[t >> 3] & (1u << (t & 7)))
            return ENO_E_INVAL;
        seen[t >> 3] |= (uint8_t)(1u << (t & 7));
        if (norm != NULL)
            norm[i] = t;
    }
    /* The list must fit without data: kind, len, global suboption, TEPs. */
    if (n > 0 && 3 + n > cfg->syn_opt_max)
        return ENO_E_INVAL;
    return ENO_OK;
}

static int raw_check(const struct eno_config *cfg, const uint8_t *raw, size_t n)
{
    uint8_t buf[ENO_SYN_OPT_MAX];
    struct eno_synopt tmp;

    if (n > ENO_SYN_CONTENTS_MAX || 2 + n > cfg->syn_opt_max)
        return ENO_E_INVAL;
    buf[0] = ENO_OPT_KIND;
    buf[1] = (uint8_t)(2 + n);
    if (n > 0)
        memcpy(buf + 2, raw, n);
    /* api-06: raw mode checks nothing of v bits or data, but the option must
     * be a SYN form we can delimit ourselves (§4.4) to find its TEPs. */
    if (eno_synopt_parse(&tmp, buf, 2 + n) != ENO_OK)
        return ENO_E_INVAL;
    return ENO_OK;
}

int eno_config_set_teps(struct eno_config *cfg, const uint8_t *teps, size_t n)
{
    uint8_t norm[ENO_TEPS_MAX];

    if (cfg == NULL)
        return ENO_E_INVAL;
    int rc = teps_check(cfg, teps, n, norm);
    if (rc != ENO_OK)
        return rc;
    if (n > 0)
        memcpy(cfg->teps, norm, n);
    cfg->nteps = (uint8_t)n;
    return ENO_OK;
}

int eno_config_set_raw(struct eno_config *cfg, const uint8_t *raw, size_t n)
{
    if (cfg == NULL || (n > 0 && raw == NULL))
        return ENO_E_INVAL;
    if (n > 0) {
        int rc = raw_check(cfg, raw, n);
        if (rc != ENO_OK)
            return rc;
        memcpy(cfg->raw, raw, n);
    }
    cfg->raw_len = (uint8_t)n;
    return ENO_OK;
}

int eno_config_validate(const struct eno_config *cfg)
{
    if (cfg == NULL)
        return ENO_E_INVAL;
    /* Smallest useful SYN-form: 45 04 gopt tep (a passive opener's answer). */
    if (cfg->syn_opt_max < 4 || cfg->syn_opt_max > ENO_SYN_OPT_MAX)
        return ENO_E_INVAL;
    if (cfg->self_gopt > ENO_GOPT_MASK)         /* api-06: int 0-31 */
        return ENO_E_INVAL;
    if (cfg->raw_len > 0)
        return raw_check(cfg, cfg->raw, cfg->raw_len);
    for (size_t i = 0; i < cfg->nteps && i < ENO_TEPS_MAX; i++)
        if (cfg->teps[i] > ENO_TEP_MAX)         /* stored with v cleared */
            return ENO_E_INVAL;
    return teps_check(cfg, cfg->teps, cfg->nteps, NULL);
}

/* ---- negotiation (§4.3, §4.5) ---------------------------------------------- */

struct eno_outcome {
    uint8_t role;
    uint8_t negtep;
    uint8_t self_idx, peer_idx;
    uint8_t self_ignored, peer_ignored;
};

/* Decide the outcome of two SYN-forms.  ENO_R_NONE on success. */
static enum eno_reason eno_negotiate(const struct eno_conn *c,
                                     const struct eno_synopt *self,
                                     const struct eno_synopt *peer,
                                     struct eno_outcome *o)
{
    memset(o, 0, sizeof(*o));

    /* §4.3: the host that sent b = 0 (explicitly or by the implicit 0x00 of
     * §4.2) is A, the one with b = 1 is B; equal b bits fail (§4.6 rule 3).
     * z bits play no part (§4.2: ignored on receipt). */
    uint8_t self_b = self->gopt & ENO_GOPT_B;
    uint8_t peer_b = peer->gopt & ENO_GOPT_B;
    if (self_b == peer_b)
        return ENO_R_ROLE_CONFLICT;
    o->role = self_b ? ENO_ROLE_B : ENO_ROLE_A;

    /* §4.2, §4.6 rule 3: mandatory application-aware mode needs a = 1 from the
     * peer.  (api-06: raw mode switches this option off.) */
    if (!c->raw && c->aa_mandatory && !(peer->gopt & ENO_GOPT_A))
        return ENO_R_AA_REQUIRED;

    bool self_is_a = (o->role == ENO_ROLE_A);
    const struct eno_synopt *a = self_is_a ? self : peer;
    const struct eno_synopt *b = self_is_a ? peer : self;

    /* §4.5: the negotiated TEP is the LAST valid TEP in B's SYN-form; valid
     * means both sides sent it (v bits ignored), its data is acceptable to the
     * TEP, and it is not repeated (no TEP of ours defines repetition).
     * A vacuous option on either side leaves nothing to find (§4.6). */
    for (unsigned i = b->nsub; i-- > 0;) {
        uint8_t glt = b->sub[i].glt;
        unsigned na, nb;
        int ai = synopt_find(a, glt, &na);
        if (ai < 0)
            continue;
        bool a_ign = false, b_ign = false;

        if (!c->raw) {
            (void)synopt_find(b, glt, &nb);
            if (na > 1 || nb > 1)
                continue;                       /* §4.5 condition 3 */
            if (c->ops != NULL && c->ops->check != NULL) {
                struct eno_subopt_view va, vb;
                synopt_view(a, (unsigned)ai, false, &va);
                synopt_view(b, i, false, &vb);
                enum eno_verdict v = c->ops->check(c->ops_ctx, o->role, &va, &vb);
                if (v == ENO_VERDICT_IGNORE_DATA) {
                    /* the verdict is about the peer's suboption */
                    if (self_is_a)
                        b_ign = true;
                    else
                        a_ign = true;
                } else if (v != ENO_VERDICT_VALID) {
                    continue;                   /* §4.5 condition 2 */
                }
            }
        }
        /* api-06 TCP_ENO_NEGTEP and §5.1: the TEP with B's v bit. */
        o->negtep = (uint8_t)(glt | (b->sub[i].v ? ENO_SUB_V : 0));
        o->self_idx = (uint8_t)(self_is_a ? (unsigned)ai : i);
        o->peer_idx = (uint8_t)(self_is_a ? i : (unsigned)ai);
        o->self_ignored = self_is_a ? a_ign : b_ign;
        o->peer_ignored = self_is_a ? b_ign : a_ign;
        return ENO_R_NONE;
    }
    return ENO_R_NO_VALID_TEP;                  /* §4.6 rule 2 */
}

/* Find and parse the single ENO option of a received SYN segment. */
static enum eno_reason syn_collect(const uint8_t *opts, size_t optlen,
                                   struct eno_synopt *out)
{
    struct eno_scan s;

    memset(out, 0, sizeof(*out));
    eno_scan_options(opts, optlen, &s);
    /* An option list we cannot walk to its end may hide a second ENO option:
     * treat the SYN as carrying none (the conservative reading of §4.1). */
    if (s.malformed)
        return ENO_R_BAD_OPTIONS;
    if (s.count == 0)
        return ENO_R_NO_ENO_SYN;                /* §4.6 rule 1 */
    if (s.count > 1)
        return ENO_R_MULTIPLE_ENO;              /* §4.1: as if none */
    if (eno_synopt_parse(out, opts + s.first_off, s.first_len) != ENO_OK)
        return ENO_R_ILL_FORMED;                /* §4.4, §4.6 rule 1 */
    return ENO_R_NONE;
}

/* ---- the connection (§4.6) ------------------------------------------------ */

static void conn_reset(struct eno_conn *c, const struct eno_config *cfg)
{
    memset(c, 0, sizeof(*c));
    c->state = ENO_ST_IDLE;
    if (cfg == NULL)
        return;
    c->raw = cfg->raw_len > 0;
    /* api-06: a non-empty TCP_ENO_RAW disables the other options. */
    c->aa_mandatory = !c->raw && cfg->aa_mandatory;
    c->tep_mandatory = !c->raw && cfg->tep_mandatory;
    c->ops = cfg->ops;
    c->ops_ctx = cfg->ops_ctx;
}

/* §4.6: disable encryption and send no further ENO option; api-06
 * TCP_ENO_TEP_MANDATORY turns that into an abort. */
static enum eno_action conn_disable(struct eno_conn *c, enum eno_reason why)
{
    c->state = ENO_ST_DISABLED;
    c->reason = why;
    c->syn_opt_send = 0;
    if (c->tep_mandatory) {
        c->aborted = 1;
        return ENO_ACT_ABORT;
    }
    return ENO_ACT_FALLBACK;
}

static void conn_commit_outcome(struct eno_conn *c, const struct eno_outcome *o)
{
    c->state = ENO_ST_NEGOTIATED;
    c->reason = ENO_R_NONE;
    c->role = o->role;
    c->negtep = o->negtep;
    c->self_idx = o->self_idx;
    c->peer_idx = o->peer_idx;
    c->self_ignored = o->self_ignored;
    c->peer_ignored = o->peer_ignored;
}

/* §4.6: encryption is on once an ACK with ENO was both sent and received. */
static enum eno_action conn_maybe_encrypt(struct eno_conn *c)
{
    if (c->state == ENO_ST_NEGOTIATED && c->ack_sent && c->ack_rcvd) {
        c->state = ENO_ST_ENCRYPTING;
        return ENO_ACT_ENCRYPTING;
    }
    return ENO_ACT_NONE;
}

/* Our SYN-form from api-06 raw contents (passed validation before). */
static bool raw_build(struct eno_synopt *self, const struct eno_config *cfg)
{
    uint8_t buf[ENO_SYN_OPT_MAX];

    if (raw_check(cfg, cfg->raw, cfg->raw_len) != ENO_OK)
        return false;
    buf[0] = ENO_OPT_KIND;
    buf[1] = (uint8_t)(2 + cfg->raw_len);
    memcpy(buf + 2, cfg->raw, cfg->raw_len);
    return eno_synopt_parse(self, buf, 2u + cfg->raw_len) == ENO_OK;
}

/* The active opener's SYN-form: app's TEP order, optional data from the
 * TEP callbacks; if that does not fit, the same without any data. */
static bool active_build(struct eno_synopt *self, const struct eno_config *cfg)
{
    struct eno_tep_offer offers[ENO_TEPS_MAX];
    uint8_t scratch[ENO_SUBDATA_MAX];
    uint8_t buf[ENO_SYN_OPT_MAX];
    size_t used = 0;

    /* §4.2: z bits are sent as zero; §8.4: mandatory application-aware mode
     * sets a = 1 in our own global suboption.  b stays as configured (0 by
     * default; 1 only for a planned simultaneous open, §4.3). */
    uint8_t g = cfg->self_gopt & (ENO_GOPT_A | ENO_GOPT_B);
    if (cfg->aa_mandatory)
        g |= ENO_GOPT_A;
    int gopt = g != 0 ? g : ENO_GOPT_IMPLICIT;   /* implicit 0x00, §4.2 */

    for (size_t i = 0; i < cfg->nteps; i++) {
        struct eno_tep_offer *t = &offers[i];
        memset(t, 0, sizeof(*t));
        t->tep = cfg->teps[i];
        if (cfg->ops == NULL || cfg->ops->syn_data == NULL)
            continue;
        size_t room = sizeof(scratch) - used;
        size_t k = cfg->ops->syn_data(cfg->ops_ctx, t->tep, scratch + used, room);
        if (k == 0 || k > room)
            continue;                 /* none, or a callback that overran */
        t->v = true;
        t->data = scratch + used;
        t->data_len = (uint8_t)k;
        used += k;
    }

    int n = eno_synopt_encode(buf, cfg->syn_opt_max, gopt, offers, cfg->nteps);
    if (n < 0) {
        for (size_t i = 0; i < cfg->nteps; i++) {
            offers[i].v = false;
            offers[i].data = NULL;
            offers[i].data_len = 0;
        }
        n = eno_synopt_encode(buf, cfg->syn_opt_max, gopt, offers, cfg->nteps);
    }
    if (n < 0)
        return false;
    /* Re-check: what we send must parse back to what we meant. */
    if (eno_synopt_parse(self, buf, (size_t)n) != ENO_OK || self->nsub != cfg->nteps)
        return false;
    return true;
}

enum eno_action eno_conn_init_active(struct eno_conn *c,
                                     const struct eno_config *cfg)
{
    struct eno_synopt self;

    conn_reset(c, cfg);
    if (cfg == NULL)
        return conn_disable(c, ENO_R_CONFIG);

    if (c->raw) {
        /* api-06: raw mode works even with TCP_ENO_ENABLED = 0. */
        if (!raw_build(&self, cfg))
            return conn_disable(c, ENO_R_CONFIG);
    } else {
        /* api-06: an empty TEP list disables ENO. */
        if (!cfg->enabled || cfg->nteps == 0 || eno_config_validate(cfg) != ENO_OK)
            return conn_disable(c, ENO_R_CONFIG);
        if (!active_build(&self, cfg))
            return conn_disable(c, ENO_R_CONFIG);
    }

    /* §4.6: cached, so that every retransmission (and a simultaneous-open
     * SYN-ACK) carries the same bytes. */
    c->self = self;
    c->state = ENO_ST_SYN_SENT;
    c->syn_opt_send = 1;
    return ENO_ACT_NONE;
}

/* Passive opener's failure after a SYN with a usable ENO option: §4.6 allows a
 * vacuous answer (b = 1, no TEP) only in this case. */
static enum eno_action passive_fail(struct eno_conn *c,
                                    const struct eno_config *cfg,
                                    uint8_t gopt, enum eno_reason why)
{
    enum eno_action act = conn_disable(c, why);
    if (!cfg->vacuous || c->raw)
        return act;

    uint8_t buf[ENO_SYN_OPT_MAX];
    struct eno_synopt vac;
    int n = eno_synopt_encode(buf, cfg->syn_opt_max, gopt, NULL, 0);
    if (n > 0 && eno_synopt_parse(&vac, buf, (size_t)n) == ENO_OK) {
        c->self = vac;
        c->syn_opt_send = 1;      /* in the SYN-ACK only: ENO stays disabled */
    }
    return act;
}

enum eno_action eno_conn_init_passive(struct eno_conn *c,
                                      const struct eno_config *cfg,
                                      const uint8_t *opts, size_t optlen)
{
    struct eno_synopt peer, cand;
    struct eno_outcome o;
    enum eno_reason why;

    conn_reset(c, cfg);
    if (cfg == NULL)
        return conn_disable(c, ENO_R_CONFIG);
    c->passive = 1;
    if (!c->raw &&
        (!cfg->enabled || cfg->nteps == 0 || eno_config_validate(cfg) != ENO_OK))
        return conn_disable(c, ENO_R_CONFIG);

    /* §4.1, §4.4, §4.6 rule 1: one well-formed ENO option or none at all. */
    why = syn_collect(opts, optlen, &peer);
    if (why != ENO_R_NONE)
        return conn_disable(c, why);
    c->peer = peer;

    if (c->raw) {
        /* api-06 raw mode: the app's bytes go out as they are; §4.2 demands
         * b = 1 from a passive opener, so without it ENO stays off. */
        if (!raw_build(&cand, cfg) || cand.ngopt == 0 || !(cand.gopt & ENO_GOPT_B))
            return conn_disable(c, ENO_R_CONFIG);
        why = eno_negotiate(c, &cand, &c->peer, &o);
        if (why != ENO_R_NONE)
            return conn_disable(c, why);
        c->self = cand;
        conn_commit_outcome(c, &o);
        c->syn_opt_send = 1;
        return ENO_ACT_NEGOTIATED;
    }

    /* §4.2/§4.3: a passive opener MUST send an explicit b = 1; z bits zero;
     * §8.4: mandatory application-aware mode sets our a = 1. */
    uint8_t gopt = (uint8_t)((cfg->self_gopt & ENO_GOPT_A) | ENO_GOPT_B);
    if (cfg->aa_mandatory)
        gopt |= ENO_GOPT_A;

    /* §4.6 rule 3, checked before asking any TEP for an answer. */
    if (peer.gopt & ENO_GOPT_B)
        return passive_fail(c, cfg, gopt, ENO_R_ROLE_CONFLICT);
    if (c->aa_mandatory && !(peer.gopt & ENO_GOPT_A))
        return passive_fail(c, cfg, gopt, ENO_R_AA_REQUIRED);

    /* §4.5: a passive opener SHOULD answer with exactly one valid TEP: our
     * list is in increasing preference, so try the most preferred first. */
    for (size_t i = cfg->nteps; i-- > 0;) {
        uint8_t tep = cfg->teps[i];
        unsigned na;
        int ai = synopt_find(&peer, tep, &na);
        if (ai < 0 || na > 1)
            continue;                           /* not offered, §4.5 (1)/(3) */

        uint8_t data[ENO_SUBDATA_MAX];
        size_t cap = (size_t)cfg->syn_opt_max - 4;   /* kind len gopt tep */
        size_t dlen = 0;
        enum eno_answer ans = ENO_ANSWER_PLAIN;
        if (cfg->ops != NULL && cfg->ops->answer != NULL) {
            struct eno_subopt_view va;
            synopt_view(&peer, (unsigned)ai, false, &va);
            ans = cfg->ops->answer(cfg->ops_ctx, &va, data, cap, &dlen);
        }
        if (ans == ENO_ANSWER_REFUSE)
            continue;
        if (ans != ENO_ANSWER_DATA)
            dlen = 0;
        else if (dlen > cap)
            continue;                           /* callback overran: refuse */

        /* The one TEP goes last, so its data needs no length byte (§4.4). */
        struct eno_tep_offer off = {
            .tep = tep, .v = (ans == ENO_ANSWER_DATA),
            .data_len = (uint8_t)dlen, .data = data,
        };
        uint8_t buf[ENO_SYN_OPT_MAX];
        int n = eno_synopt_encode(buf, cfg->syn_opt_max, gopt, &off, 1);
        if (n < 0 || eno_synopt_parse(&cand, buf, (size_t)n) != ENO_OK)
            continue;
        /* Re-check: our answer must win the §4.5 selection like any other. */
        why = eno_negotiate(c, &cand, &c->peer, &o);
        if (why != ENO_R_NONE || (o.negtep & ENO_SUB_GLT) != tep ||
            o.role != ENO_ROLE_B)
            continue;

        c->self = cand;
        conn_commit_outcome(c, &o);
        c->syn_opt_send = 1;
        return ENO_ACT_NEGOTIATED;
    }
    return passive_fail(c, cfg, gopt, ENO_R_NO_VALID_TEP);
}

/* SYN_SENT: the peer's SYN-form arrives in a SYN-ACK (normal open) or in a
 * SYN-only segment (simultaneous open, §3, Figure 12).  Either way the outcome
 * follows from our cached option and the peer's. */
static enum eno_action conn_input_first_syn(struct eno_conn *c, unsigned flags,
                                            const uint8_t *opts, size_t optlen)
{
    struct eno_synopt peer;
    struct eno_outcome o;

    enum eno_reason why = syn_collect(opts, optlen, &peer);
    if (why != ENO_R_NONE)
        return conn_disable(c, why);
    why = eno_negotiate(c, &c->self, &peer, &o);
    if (why != ENO_R_NONE) {
        c->peer = peer;
        return conn_disable(c, why);
    }
    c->peer = peer;
    conn_commit_outcome(c, &o);
    /* A SYN-ACK is an ACK segment with ENO (§3, §4.6). */
    if (flags & ENO_TCP_ACK)
        c->ack_rcvd = 1;
    return ENO_ACT_NEGOTIATED;
}

/* A further SYN from the peer before its first ACK: a retransmission, or its
 * SYN-ACK in a simultaneous open.  §4.6: it must carry ENO (rule 1) and the
 * peer MUST NOT alter its SYN-form, so anything else disables ENO. */
static enum eno_reason syn_same(const struct eno_conn *c,
                                const uint8_t *opts, size_t optlen)
{
    struct eno_scan s;

    eno_scan_options(opts, optlen, &s);
    if (s.malformed)
        return ENO_R_BAD_OPTIONS;
    if (s.count == 0)
        return ENO_R_NO_ENO_SYN;
    if (s.count > 1)
        return ENO_R_MULTIPLE_ENO;
    if (s.first_len != c->peer.len ||
        memcmp(opts + s.first_off, c->peer.bytes, s.first_len) != 0)
        return ENO_R_SYN_CHANGED;
    return ENO_R_NONE;
}

enum eno_action eno_conn_input(struct eno_conn *c, unsigned tcp_flags,
                               const uint8_t *opts, size_t optlen)
{
    /* A RST is TCP's business: an acceptable one ends the connection, an
     * unacceptable one must not be able to turn ENO off. */
    if (tcp_flags & ENO_TCP_RST)
        return ENO_ACT_NONE;

    switch (c->state) {
    case ENO_ST_IDLE:
    case ENO_ST_DISABLED:
        return ENO_ACT_NONE;
    case ENO_ST_SYN_SENT:
        /* RFC 9293 §3.10.7.3: in SYN-SENT only a SYN can move TCP on. */
        if (!(tcp_flags & ENO_TCP_SYN))
            return ENO_ACT_NONE;
        return conn_input_first_syn(c, tcp_flags, opts, optlen);
    case ENO_ST_NEGOTIATED:
    case ENO_ST_ENCRYPTING:
        break;
    }

    if (tcp_flags & ENO_TCP_SYN) {
        /* After the first ACK, §4.6 rule 1 no longer applies and both
         * SYN-forms are settled: retransmitted SYN-ACKs change nothing. */
        if (c->ack_rcvd)
            return ENO_ACT_NONE;
        enum eno_reason why = syn_same(c, opts, optlen);
        if (why != ENO_R_NONE)
            return conn_disable(c, why);
        if (tcp_flags & ENO_TCP_ACK) {
            c->ack_rcvd = 1;
            return conn_maybe_encrypt(c);
        }
        return ENO_ACT_NONE;
    }

    /* RFC 9293 §3.10.7.4: a non-SYN segment without ACK is dropped by TCP. */
    if (!(tcp_flags & ENO_TCP_ACK))
        return ENO_ACT_NONE;

    if (!c->ack_rcvd) {
        /* §4.6 rule 1: the first ACK must carry ENO (non-SYN form: presence
         * is all that counts, §4.1; several count as one). */
        struct eno_scan s;
        eno_scan_options(opts, optlen, &s);
        if (s.count == 0)
            return conn_disable(c, ENO_R_NO_ENO_ACK);
        c->ack_rcvd = 1;
    }
    /* §4.6: from now on we need not send ENO in non-SYN segments. */
    c->nonsyn_rcvd = 1;
    return conn_maybe_encrypt(c);
}

bool eno_conn_nonsyn_required(const struct eno_conn *c)
{
    switch (c->state) {
    case ENO_ST_SYN_SENT:
    case ENO_ST_NEGOTIATED:
    case ENO_ST_ENCRYPTING:
        /* §4.6: every segment until a non-SYN segment was received; and the
         * active opener's third segment in any case (our first ACK). */
        if (c->state == ENO_ST_NEGOTIATED && !c->ack_sent)
            return true;
        return !c->nonsyn_rcvd;
    case ENO_ST_IDLE:
    case ENO_ST_DISABLED:
        break;
    }
    return false;
}

size_t eno_conn_output_len(const struct eno_conn *c, unsigned tcp_flags)
{
    if (tcp_flags & ENO_TCP_SYN)
        return c->syn_opt_send ? c->self.len : 0;
    return eno_conn_nonsyn_required(c) ? ENO_NONSYN_OPT_LEN : 0;
}

size_t eno_conn_output(const struct eno_conn *c, unsigned tcp_flags,
                       uint8_t out[static ENO_SYN_OPT_MAX])
{
    size_t n = eno_conn_output_len(c, tcp_flags);
    if (n == 0)
        return 0;
    if (tcp_flags & ENO_TCP_SYN) {
        /* §4.6: byte-identical SYN-form in every SYN and SYN-ACK. */
        memcpy(out, c->self.bytes, n);
        return n;
    }
    /* §4.1 Figure 3: non-SYN form with no contents (N = 0). */
    out[0] = ENO_OPT_KIND;
    out[1] = ENO_NONSYN_OPT_LEN;
    return n;
}

enum eno_action eno_conn_sent(struct eno_conn *c, unsigned tcp_flags,
                              size_t eno_len)
{
    if (tcp_flags & ENO_TCP_SYN)
        c->syn_sent = 1;
    if (c->state != ENO_ST_NEGOTIATED || !(tcp_flags & ENO_TCP_ACK) || eno_len == 0)
        return ENO_ACT_NONE;
    c->ack_sent = 1;
    return conn_maybe_encrypt(c);
}

int eno_conn_drop_syn_option(struct eno_conn *c)
{
    /* §4.6 first exception: only an active opener, only between
     * retransmissions of its SYN-only segment. */
    if (c->state != ENO_ST_SYN_SENT || c->passive)
        return ENO_E_STATE;
    if (c->tep_mandatory)
        return ENO_E_MANDATORY;
    (void)conn_disable(c, ENO_R_LOCAL_DROP);
    return ENO_OK;
}

enum eno_action eno_conn_set_tep_mandatory(struct eno_conn *c)
{
    if (c->raw)
        return ENO_ACT_NONE;                    /* api-06: off in raw mode */
    c->tep_mandatory = 1;
    /* api-06: setting it on an established unencrypted connection aborts. */
    if (c->state == ENO_ST_DISABLED) {
        c->aborted = 1;
        return ENO_ACT_ABORT;
    }
    return ENO_ACT_NONE;
}

bool eno_conn_syn_data_acceptable(const struct eno_conn *c, bool tfo_nonempty)
{
    /* §4.7: discard SYN data with a non-empty TFO option, when ENO failed,
     * when the SYN TEP (last TEP of the peer's SYN) is not the negotiated TEP,
     * or when that TEP does not define SYN data. */
    if (tfo_nonempty || !eno_conn_negotiated(c) || c->peer.nsub == 0)
        return false;
    uint8_t syn_tep = c->peer.sub[c->peer.nsub - 1].glt;
    if (syn_tep != (c->negtep & ENO_SUB_GLT))
        return false;
    if (c->ops == NULL || c->ops->defines_syn_data == NULL)
        return false;
    return c->ops->defines_syn_data(c->ops_ctx, syn_tep);
}

/* ---- results ----------------------------------------------------------------- */

enum eno_status eno_conn_status(const struct eno_conn *c)
{
    switch (c->state) {
    case ENO_ST_ENCRYPTING:
        return ENO_STATUS_ENCRYPTING;
    case ENO_ST_DISABLED:
        return ENO_STATUS_DISABLED;
    case ENO_ST_IDLE:
    case ENO_ST_SYN_SENT:
    case ENO_ST_NEGOTIATED:
        break;
    }
    return ENO_STATUS_NEGOTIATING;
}

bool eno_conn_negotiated(const struct eno_conn *c)
{
    return c->state == ENO_ST_NEGOTIATED || c->state == ENO_ST_ENCRYPTING;
}

bool eno_conn_encrypting(const struct eno_conn *c)
{
    return c->state == ENO_ST_ENCRYPTING;
}

enum eno_reason eno_conn_reason(const struct eno_conn *c)
{
    return c->reason;
}

const char *eno_reason_str(enum eno_reason r)
{
    switch (r) {
    case ENO_R_NONE:          return "none";
    case ENO_R_CONFIG:        return "disabled by configuration";
    case ENO_R_LOCAL_DROP:    return "ENO dropped from SYN retransmission";
    case ENO_R_NO_ENO_SYN:    return "peer SYN without ENO";
    case ENO_R_NO_ENO_ACK:    return "first ACK without ENO";
    case ENO_R_MULTIPLE_ENO:  return "several ENO options in SYN";
    case ENO_R_BAD_OPTIONS:   return "malformed TCP options in SYN";
    case ENO_R_ILL_FORMED:    return "ill-formed ENO option";
    case ENO_R_NO_VALID_TEP:  return "no common valid TEP";
    case ENO_R_ROLE_CONFLICT: return "role conflict (same b bit)";
    case ENO_R_AA_REQUIRED:   return "peer not application-aware (a=0)";
    case ENO_R_SYN_CHANGED:   return "peer changed its SYN ENO option";
    case ENO_R_INTERNAL:      return "internal error";
    case ENO_R_COUNT_:        break;
    }
    return "unknown";
}

int eno_conn_api_errno(const struct eno_conn *c)
{
    switch (eno_conn_status(c)) {
    case ENO_STATUS_ENCRYPTING:
        return 0;
    case ENO_STATUS_DISABLED:
        return EINVAL;
    case ENO_STATUS_NEGOTIATING:
        break;
    }
    return ENOTCONN;
}

int eno_conn_role(const struct eno_conn *c)
{
    return eno_conn_negotiated(c) ? c->role : -1;
}

int eno_conn_negtep(const struct eno_conn *c)
{
    return eno_conn_negotiated(c) ? c->negtep : -1;
}

int eno_conn_peer_gopt(const struct eno_conn *c)
{
    /* api-06: the 5-bit value as the peer sent it (z bits included; §4.2
     * only says to ignore them, which this module does). */
    return eno_conn_negotiated(c) ? (c->peer.gopt & ENO_GOPT_MASK) : -1;
}

int eno_conn_self_gopt(const struct eno_conn *c)
{
    return c->self.len > 0 ? (c->self.gopt & ENO_GOPT_MASK) : -1;
}

bool eno_conn_subopt(const struct eno_conn *c, int role,
                     struct eno_subopt_view *out)
{
    memset(out, 0, sizeof(*out));
    if (!eno_conn_negotiated(c) || (role != ENO_ROLE_A && role != ENO_ROLE_B))
        return false;
    if (role == c->role)
        synopt_view(&c->self, c->self_idx, c->self_ignored != 0, out);
    else
        synopt_view(&c->peer, c->peer_idx, c->peer_ignored != 0, out);
    return true;
}

size_t eno_conn_transcript(const struct eno_conn *c,
                           uint8_t out[static ENO_TRANSCRIPT_MAX])
{
    if (!eno_conn_negotiated(c))
        return 0;
    /* §4.8: A's SYN-form then B's, each with kind and length bytes. */
    const struct eno_synopt *a = c->role == ENO_ROLE_A ? &c->self : &c->peer;
    const struct eno_synopt *b = c->role == ENO_ROLE_A ? &c->peer : &c->self;
    memcpy(out, a->bytes, a->len);
    memcpy(out + a->len, b->bytes, b->len);
    return (size_t)a->len + b->len;
}
