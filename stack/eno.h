/*
 * eno.h — TCP-ENO (RFC 8547 = draft-ietf-tcpinc-tcpeno-19), pure and I/O-free.
 *
 * What lives here:
 *   - the constants of the ENO option and the TEP identifiers (§4.1, §11);
 *   - a scanner for a raw TCP options area (§4.1: how many ENO options);
 *   - a parser and an encoder for the SYN form of the option (§4.1–§4.4);
 *   - the per-connection negotiation state machine of §4.6, with TEP
 *     selection (§4.5), roles (§4.3), the transcript (§4.8), SYN-data policy
 *     (§4.7) and the raw mode of draft-ietf-tcpinc-api-06 §2.1.
 *
 * No lwIP types, no allocation, no I/O: the lwIP glue gathers the TCP option
 * bytes of a segment into a buffer and calls eno_conn_input(); it asks
 * eno_conn_output() which ENO bytes to put into a segment it is about to send
 * and reports the transmission with eno_conn_sent().
 *
 * Typical life of a connection (glue's point of view):
 *
 *   active opener (connect):
 *     eno_conn_init_active(c, cfg)                     -> SYN-form cached
 *     SYN out:     eno_conn_output(c, SYN) / eno_conn_sent(c, SYN, n)
 *     SYN-ACK in:  eno_conn_input(c, SYN|ACK, opts)    -> ENO_ACT_NEGOTIATED
 *     ACK out:     eno_conn_output(c, ACK) = 45 02 / eno_conn_sent(c, ACK, 2)
 *                                                      -> ENO_ACT_ENCRYPTING
 *     data out:    45 02 until the first non-SYN segment from the peer arrives
 *
 *   passive opener (listen):
 *     SYN in:      eno_conn_init_passive(c, cfg, opts) -> ENO_ACT_NEGOTIATED
 *     SYN-ACK out: eno_conn_output(c, SYN|ACK) / eno_conn_sent(c, SYN|ACK, n)
 *     ACK in:      eno_conn_input(c, ACK, opts)        -> ENO_ACT_ENCRYPTING
 *
 * Any call may instead return ENO_ACT_FALLBACK (plain TCP from now on) or
 * ENO_ACT_ABORT (TEP_MANDATORY was set and ENO failed: reset the connection).
 *
 * Default TEP list: the caller's business.  The experimental TEP 0x20 must
 * never be part of a default list (RFC 8547 §11 allots it for experiments);
 * this module offers or accepts a TEP only when it is in the connection's
 * configured list, so 0x20 is negotiated only where it is configured
 * explicitly.
 *
 * Session IDs (§5.1) are defined by each TEP, not here.  For the experimental
 * TEP 0x20 the tests of this project use
 *     session_id = 0x20 (with B's v bit) | SHA-256(transcript)
 * which is NOT a secret and NOT unique over time (the same two SYN options give
 * the same ID): it exists only so that tests can drive ENO end to end.  It is
 * computed by the caller (libsodium crypto_hash_sha256) to keep this module
 * free of crypto; see tests/unit/test_eno.c.
 */
#ifndef ENOSHIM_ENO_H
#define ENOSHIM_ENO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- constants (RFC 8547) ------------------------------------------------ */

#define ENO_OPT_KIND            69   /* §4.1, §11 (TBD in the draft; IANA: 69) */
#define ENO_TCP_OPTS_MAX        40   /* RFC 9293: data offset <= 15 words */
#define ENO_SYN_OPT_MAX         40   /* §4.4: a SYN-form option, kind+len incl. */
#define ENO_SYN_CONTENTS_MAX    (ENO_SYN_OPT_MAX - 2)
/* lwIP 2.1.3 puts MSS (4) and window scale (NOP + 3) into its SYNs: 32 of the
 * 40 option bytes are left for ENO. */
#define ENO_SYN_OPT_LWIP        32
#define ENO_NONSYN_OPT_LEN      2    /* §4.1 Fig. 3, §4.6: 45 02 */
#define ENO_TRANSCRIPT_MAX      (2 * ENO_SYN_OPT_MAX)  /* §4.8 */

/* Suboption byte `v | glt` (§4.1 Figure 4, Table 1). */
#define ENO_SUB_V               0x80
#define ENO_SUB_GLT             0x7f
#define ENO_GLT_TEP_MIN         0x20 /* glt >= 0x20: TEP identifier */
#define ENO_LENBYTE_MIN         0x80 /* §4.4: 0x80-0x9f = length byte */
#define ENO_LENBYTE_MAX         0x9f
#define ENO_LENBYTE_NNNNN       0x1f
#define ENO_LENBYTE_DATA_MAX    32   /* §4.4: nnnnn + 1 <= 32 */
/* Longest suboption data one SYN-form option can hold: kind, len, TEP byte. */
#define ENO_SUBDATA_MAX         (ENO_SYN_OPT_MAX - 3)

/* Global suboption `0 0 0 z1 z2 z3 a b` (§4.2 Figure 5). */
#define ENO_GOPT_B              0x01 /* passive role bit */
#define ENO_GOPT_A              0x02 /* application-aware bit */
#define ENO_GOPT_Z              0x1c /* sent as zero, ignored on receipt */
#define ENO_GOPT_MASK           0x1f

/* TEP identifiers (RFC 8547 §11, RFC 8548 §7). */
#define ENO_TEP_EXPERIMENTAL    0x20
#define ENO_TEP_TCPCRYPT_P256   0x21
#define ENO_TEP_TCPCRYPT_P521   0x22
#define ENO_TEP_TCPCRYPT_X25519 0x23
#define ENO_TEP_TCPCRYPT_X448   0x24
#define ENO_TEP_RESERVED_MIN    0x70 /* §11: 0x70-0x7f reserved (extensions) */
#define ENO_TEP_MAX             0x7f

/* A TEP list can name at most as many TEPs as fit into one SYN option. */
#define ENO_TEPS_MAX            ENO_SYN_CONTENTS_MAX

/* TCP header flag bits, as in the header (so TCPH_FLAGS() can be passed). */
#define ENO_TCP_FIN             0x01
#define ENO_TCP_SYN             0x02
#define ENO_TCP_RST             0x04
#define ENO_TCP_PSH             0x08
#define ENO_TCP_ACK             0x10

#define ENO_ROLE_A              0    /* §4.3; api-06 TCP_ENO_ROLE */
#define ENO_ROLE_B              1

/* Return codes of the functions that return int; each says what happens next. */
enum eno_err {
    ENO_OK           = 0,
    ENO_E_ILL_FORMED = -1, /* §4.4: ignore the ENO option, disable ENO (plain TCP) */
    ENO_E_NOSPACE    = -2, /* does not fit: offer less (drop data or TEPs) */
    ENO_E_INVAL      = -3, /* bad argument: reject the setting (EINVAL at the API) */
    ENO_E_STATE      = -4, /* not allowed in this state: nothing was changed */
    ENO_E_MANDATORY  = -5, /* refused because TEP_MANDATORY is set: keep ENO */
};

/* ---- scanning a TCP options area (§4.1) ----------------------------------- */

struct eno_scan {
    unsigned count;      /* well-formed ENO options before any malformation */
    size_t   first_off;  /* offset of the first one's kind byte (if count) */
    size_t   first_len;  /* its length including kind and length bytes */
    bool     malformed;  /* the option list is malformed (scan stopped there) */
};

/* Scan the raw TCP options area (the bytes after the 20-byte header).  EOL
 * ends the list, NOP is one byte; any other option needs a length byte >= 2
 * that stays within the area.  An area longer than 40 bytes is malformed. */
void eno_scan_options(const uint8_t *opts, size_t len, struct eno_scan *out);

/* ---- the SYN form (§4.1–§4.4) --------------------------------------------- */

struct eno_subopt {
    uint8_t glt;       /* TEP identifier, 0x20-0x7f */
    uint8_t v;         /* 1 if the v bit was set */
    uint8_t lenbyte;   /* 1 if introduced by a length byte (§4.4) */
    uint8_t data_off;  /* offset of the data in the option bytes (kind = 0) */
    uint8_t data_len;  /* bytes of suboption data */
};

struct eno_synopt {
    uint8_t len;                      /* option length incl. kind+len; 0 = none */
    uint8_t bytes[ENO_SYN_OPT_MAX];   /* exactly as sent / received (§4.8) */
    uint8_t gopt;                     /* first global suboption, 0x00 if none (§4.2) */
    uint8_t ngopt;                    /* global suboptions present (0 = implicit) */
    uint8_t nsub;                     /* TEP suboptions */
    struct eno_subopt sub[ENO_SYN_CONTENTS_MAX];
};

/* Parse a SYN-form ENO option.  `opt` starts at the kind byte and `len` is the
 * whole option (must equal opt[1], 2..40).  0, or ENO_E_ILL_FORMED when the
 * option must be ignored and ENO disabled (§4.4), or ENO_E_INVAL when the
 * bytes are not an ENO option at all. */
int eno_synopt_parse(struct eno_synopt *out, const uint8_t *opt, size_t len);

/* One TEP to encode.  data_len > 0 implies v = 1; v = 1 with no data is
 * possible only for the last suboption (a length byte cannot say 0). */
struct eno_tep_offer {
    uint8_t        tep;       /* 0x20-0x7f */
    bool           v;
    uint8_t        data_len;
    const uint8_t *data;
};

#define ENO_GOPT_IMPLICIT (-1)  /* omit the global suboption (implicit 0x00) */

/* Build a SYN-form option (kind and length included) into out[0..max_len).
 * gopt is 0x00-0x1f or ENO_GOPT_IMPLICIT.  A suboption with data that is not
 * the last one gets a length byte (§4.4), so data > 32 bytes only fits last.
 * Returns the option length, ENO_E_NOSPACE if it needs more than max_len
 * (max_len <= 40), or ENO_E_INVAL for values the format cannot express. */
int eno_synopt_encode(uint8_t *out, size_t max_len, int gopt,
                      const struct eno_tep_offer *teps, size_t n);

/* ---- TEP callbacks --------------------------------------------------------- */

/* A suboption as the callbacks see it: data points into the option bytes. */
struct eno_subopt_view {
    uint8_t        tep;          /* glt, 0x20-0x7f */
    bool           v;
    bool           data_ignored; /* a check verdict said: treat as v = 0 */
    size_t         data_len;
    const uint8_t *data;
};

enum eno_answer {               /* passive opener's answer to A's suboption */
    ENO_ANSWER_REFUSE = 0,      /* do not select this TEP */
    ENO_ANSWER_PLAIN  = 1,      /* select it, suboption without data (v = 0) */
    ENO_ANSWER_DATA   = 2,      /* select it, with the data written to buf */
};

enum eno_verdict {              /* §4.5 condition 2: is the TEP valid? */
    ENO_VERDICT_INVALID     = 0, /* ignore it (e.g. tcpcrypt-15 §3.5: A gets
                                    a resumption id-half that does not match) */
    ENO_VERDICT_VALID       = 1,
    ENO_VERDICT_IGNORE_DATA = 2, /* valid, but the peer's data is to be read as
                                    absent (tcpcrypt-15 §3.5: v = 1 with fewer
                                    than 9 bytes counts as v = 0) */
};

/* All callbacks are optional (NULL).  ctx is eno_config.ops_ctx. */
struct eno_tep_ops {
    /* api-06 §2.1 TCP_ENO_TEPS: setting unimplemented TEPs is EINVAL.  NULL:
     * every non-reserved identifier 0x20-0x6f counts as implemented. */
    bool (*implemented)(void *ctx, uint8_t tep);
    /* (a) active opener: data to attach to `tep` in its SYN (e.g. a tcpcrypt
     * resumption offer).  Return the number of bytes written to buf (<= cap),
     * 0 for a plain suboption.  If the whole option does not fit, the module
     * retries with no data on any suboption. */
    size_t (*syn_data)(void *ctx, uint8_t tep, uint8_t *buf, size_t cap);
    /* (b) passive opener: A offered `a` (v ignored for matching, §4.5).  For
     * ENO_ANSWER_DATA write 1..cap bytes to buf and set *len. */
    enum eno_answer (*answer)(void *ctx, const struct eno_subopt_view *a,
                              uint8_t *buf, size_t cap, size_t *len);
    /* (c) validity of the TEP given both suboptions, called by either host
     * (self_role says which) while selecting the negotiated TEP (§4.5).  NULL:
     * valid.  A passive opener's own answer must pass this check too. */
    enum eno_verdict (*check)(void *ctx, int self_role,
                              const struct eno_subopt_view *a,
                              const struct eno_subopt_view *b);
    /* §4.7: does this TEP define data in SYN segments?  NULL: no (true of
     * every TEP this project implements). */
    bool (*defines_syn_data)(void *ctx, uint8_t tep);
};

/* ---- configuration (api-06 §2.1) ----------------------------------------- */

struct eno_config {
    bool    enabled;                 /* TCP_ENO_ENABLED resolved to 0/1 */
    uint8_t nteps;                   /* TCP_ENO_TEPS; empty = ENO disabled */
    uint8_t teps[ENO_TEPS_MAX];      /* app order; B: increasing preference */
    uint8_t self_gopt;               /* TCP_ENO_SELF_GOPT, 5 bits */
    bool    aa_mandatory;            /* TCP_ENO_AA_MANDATORY (§4.2, §8.4) */
    bool    tep_mandatory;           /* TCP_ENO_TEP_MANDATORY */
    bool    vacuous;                 /* §4.6 MAY: answer a SYN that had ENO but
                                        leads nowhere with a vacuous option
                                        (b = 1, no TEP) instead of none */
    uint8_t raw_len;                 /* TCP_ENO_RAW; 0 = not raw mode */
    uint8_t raw[ENO_SYN_CONTENTS_MAX];
    uint8_t syn_opt_max;             /* room for ENO in our SYN, 4..40 */
    const struct eno_tep_ops *ops;
    void   *ops_ctx;
};

/* Defaults of api-06 §2.1: enabled, no TEP (the caller fills its list), self
 * global suboption 0, nothing mandatory, not raw, syn_opt_max = 32 (lwIP). */
void eno_config_init(struct eno_config *cfg);
/* TCP_ENO_TEPS (api-06 §2.1): ENO_E_INVAL for bytes 0x00-0x1f or 0x80-0x9f,
 * unimplemented or reserved TEPs, duplicates (§4.5 condition 3), or a list
 * that cannot fit into syn_opt_max; the v bit of 0xa0-0xff is ignored. */
int eno_config_set_teps(struct eno_config *cfg, const uint8_t *teps, size_t n);
/* TCP_ENO_RAW (api-06 §2.1): option contents without kind and length; must
 * be a well-formed SYN form (§4.4) that fits; n = 0 leaves raw mode. */
int eno_config_set_raw(struct eno_config *cfg, const uint8_t *raw, size_t n);
/* Whole-config check, the same rules; done again at connection start. */
int eno_config_validate(const struct eno_config *cfg);
bool eno_tep_implemented(const struct eno_config *cfg, uint8_t tep);

/* ---- the connection (§4.6) ------------------------------------------------ */

enum eno_state {
    ENO_ST_IDLE = 0,     /* not initialised */
    ENO_ST_SYN_SENT,     /* active opener: our SYN-form is cached, peer's unknown */
    ENO_ST_NEGOTIATED,   /* both SYN-forms known, TEP and roles chosen; waiting
                            until an ACK with ENO is both sent and received */
    ENO_ST_ENCRYPTING,   /* §4.6: ACK with ENO sent and received */
    ENO_ST_DISABLED,     /* plain TCP (see reason; aborted if TEP_MANDATORY) */
};

enum eno_status {        /* api-06 §2.1: the three high-level states */
    ENO_STATUS_NEGOTIATING = 0,
    ENO_STATUS_ENCRYPTING  = 1,
    ENO_STATUS_DISABLED    = 2,
};

enum eno_reason {
    ENO_R_NONE = 0,
    ENO_R_CONFIG,        /* disabled or unusable by configuration */
    ENO_R_LOCAL_DROP,    /* we removed ENO from a SYN retransmission (§4.6) */
    ENO_R_NO_ENO_SYN,    /* peer's SYN had no ENO option (§4.6 rule 1) */
    ENO_R_NO_ENO_ACK,    /* first ACK received lacked ENO (§4.6 rule 1) */
    ENO_R_MULTIPLE_ENO,  /* more than one ENO option in a SYN (§4.1) */
    ENO_R_BAD_OPTIONS,   /* malformed TCP option list in a SYN */
    ENO_R_ILL_FORMED,    /* ill-formed SYN-form ENO option (§4.4, §4.6 rule 1) */
    ENO_R_NO_VALID_TEP,  /* no valid TEP, vacuous ENO included (§4.6 rule 2) */
    ENO_R_ROLE_CONFLICT, /* both hosts sent the same b bit (§4.3, §4.6 rule 3) */
    ENO_R_AA_REQUIRED,   /* mandatory application-aware mode, peer a = 0 (§4.2) */
    ENO_R_SYN_CHANGED,   /* peer's SYN-form changed between its SYNs (§4.6) */
    ENO_R_INTERNAL,      /* our own re-check failed (a bug) */
    ENO_R_COUNT_
};

enum eno_action {        /* what the caller must do now */
    ENO_ACT_NONE = 0,    /* nothing */
    ENO_ACT_NEGOTIATED,  /* TEP and roles chosen: start the TEP's handshake */
    ENO_ACT_ENCRYPTING,  /* encryption on (§4.6): no plaintext from now on */
    ENO_ACT_FALLBACK,    /* ENO disabled: plain TCP, no more ENO options */
    ENO_ACT_ABORT,       /* ENO failed with TEP_MANDATORY: abort (RST) */
};

struct eno_conn {
    enum eno_state  state;
    enum eno_reason reason;
    uint8_t passive;          /* 1: we answered a SYN-only segment */
    uint8_t raw;              /* api-06 raw mode */
    uint8_t aa_mandatory;
    uint8_t tep_mandatory;
    uint8_t syn_opt_send;     /* our cached SYN-form goes into SYN segments */
    uint8_t syn_sent;         /* one of our SYNs has been sent */
    uint8_t ack_sent;         /* we sent an ACK segment with ENO (§4.6) */
    uint8_t ack_rcvd;         /* we received an ACK segment with ENO */
    uint8_t nonsyn_rcvd;      /* we received a non-SYN segment (§4.6) */
    uint8_t aborted;
    uint8_t role;             /* ENO_ROLE_A / ENO_ROLE_B once negotiated */
    uint8_t negtep;           /* TEP | 0x80 if B's suboption had v = 1 */
    uint8_t self_idx;         /* negotiated suboption in self / peer option */
    uint8_t peer_idx;
    uint8_t self_ignored;     /* verdict IGNORE_DATA on that suboption */
    uint8_t peer_ignored;
    struct eno_synopt self;   /* our SYN-form exactly as sent */
    struct eno_synopt peer;   /* the peer's exactly as received */
    const struct eno_tep_ops *ops;
    void *ops_ctx;
};

/* Active opener (§4.6): build and cache our SYN-form, byte-identical for every
 * retransmission and for a simultaneous-open SYN-ACK.  ENO_ACT_NONE when
 * negotiating, ENO_ACT_FALLBACK when ENO is off by configuration (or the config
 * is invalid), ENO_ACT_ABORT if that happens with TEP_MANDATORY. */
enum eno_action eno_conn_init_active(struct eno_conn *c,
                                     const struct eno_config *cfg);

/* Passive opener: decide from the received SYN's TCP options area what the
 * SYN-ACK carries (§4.5, §4.6).  ENO_ACT_NEGOTIATED, _FALLBACK or _ABORT. */
enum eno_action eno_conn_init_passive(struct eno_conn *c,
                                      const struct eno_config *cfg,
                                      const uint8_t *opts, size_t optlen);

/* Every received segment (flags as in the TCP header, raw options area),
 * including SYNs of a simultaneous open.  RST segments are ignored. */
enum eno_action eno_conn_input(struct eno_conn *c, unsigned tcp_flags,
                               const uint8_t *opts, size_t optlen);

/* ENO bytes for a segment about to be sent with these flags: the cached
 * SYN-form for SYN and SYN-ACK segments, 45 02 for non-SYN segments while
 * §4.6 requires it, nothing once disabled.  The caller pads to 4 bytes with
 * NOPs outside the option.  _len gives the length without writing.
 *
 * The non-SYN answer changes when a segment is received (the peer's first
 * non-SYN segment, or ENO being disabled).  lwIP 2.1.3 sizes a segment's
 * options when it is queued and fills them when it is (re)transmitted, so the
 * glue must latch the length per connection while segments sized with it are
 * queued (sending 45 02 longer than required is harmless: its contents are
 * ignored, §4.1), and only ever call eno_conn_sent() with what it sent. */
size_t eno_conn_output_len(const struct eno_conn *c, unsigned tcp_flags);
size_t eno_conn_output(const struct eno_conn *c, unsigned tcp_flags,
                       uint8_t out[static ENO_SYN_OPT_MAX]);
/* A segment with these flags left carrying eno_len ENO bytes. */
enum eno_action eno_conn_sent(struct eno_conn *c, unsigned tcp_flags,
                              size_t eno_len);

/* §4.6 first exception: the active opener may drop ENO from a SYN
 * retransmission (middleboxes that drop SYNs with unknown options).  0, or
 * ENO_E_MANDATORY (TEP_MANDATORY set), or ENO_E_STATE (not in SYN_SENT). */
int eno_conn_drop_syn_option(struct eno_conn *c);
/* api-06 TCP_ENO_TEP_MANDATORY set later: ENO_ACT_ABORT if ENO is already
 * disabled (and not raw), else ENO_ACT_NONE (remembered). */
enum eno_action eno_conn_set_tep_mandatory(struct eno_conn *c);

/* §4.7: may data carried by the peer's SYN be delivered?  Only when the
 * peer's SYN TEP (its last TEP suboption) is the negotiated TEP, that TEP
 * defines SYN data, and no non-empty TFO option came with it. */
bool eno_conn_syn_data_acceptable(const struct eno_conn *c, bool tfo_nonempty);

/* ---- results --------------------------------------------------------------- */

enum eno_status eno_conn_status(const struct eno_conn *c);
bool eno_conn_negotiated(const struct eno_conn *c);  /* NEGOTIATED or ENCRYPTING */
bool eno_conn_encrypting(const struct eno_conn *c);
/* §4.6: does a non-SYN segment sent now need 45 02? */
bool eno_conn_nonsyn_required(const struct eno_conn *c);
enum eno_reason eno_conn_reason(const struct eno_conn *c);
const char *eno_reason_str(enum eno_reason r);
/* api-06 errors for the read-only options: 0 encrypting, ENOTCONN while
 * negotiating, EINVAL when disabled. */
int eno_conn_api_errno(const struct eno_conn *c);
/* The following return -1 until negotiated. */
int eno_conn_role(const struct eno_conn *c);        /* TCP_ENO_ROLE */
int eno_conn_negtep(const struct eno_conn *c);      /* TCP_ENO_NEGTEP */
int eno_conn_peer_gopt(const struct eno_conn *c);   /* TCP_ENO_PEER_GOPT */
/* TCP_ENO_SELF_GOPT as sent (z bits cleared, b forced for passive openers);
 * -1 before a SYN-form was built. */
int eno_conn_self_gopt(const struct eno_conn *c);
/* The negotiated TEP's suboption sent by host A or B (tcpcrypt resumption
 * needs both nonces).  false until negotiated. */
bool eno_conn_subopt(const struct eno_conn *c, int role,
                     struct eno_subopt_view *out);
/* §4.8 transcript: A's SYN-form | B's SYN-form, kind and length included.
 * Returns its length, 0 until negotiated (raw mode included). */
size_t eno_conn_transcript(const struct eno_conn *c,
                           uint8_t out[static ENO_TRANSCRIPT_MAX]);

#endif
