/* netframe — permessage-deflate (RFC 7692): negotiation and zlib streams.
 * A build without zlib (NF_WITH_ZLIB=OFF: NF_HAVE_DEFLATE 0) keeps the
 * parser but declines every offer, and its streams report -ENOTSUP. */
#include "netframe/config.h"
#include "base/export.h"
#include "netframe/ws_codec.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if NF_HAVE_DEFLATE
#include <zlib.h>
#endif

#define NF__PMD_CHUNK      16384
#define NF__PMD_MAX_PARAMS 8

#if NF_HAVE_DEFLATE
struct nf_ws_pmd {
    int role;
    nf_ws_pmd_params_t prm;
    int level, mem_level;
    size_t threshold;
    int tx_bits, rx_bits; /* windows of our compressor / the peer's */
    int tx_reset, rx_reset;
    int tx_ready, rx_ready;
    int rx_ended; /* the peer ended its deflate stream (BFINAL) in this message:
                   * 1 = a 0x00 octet may still follow, 2 = it did */
    z_stream tx, rx;
    uint8_t *cbuf; /* compressed output, reused */
    size_t ccap;
    uint64_t rx_total; /* bytes inflated in the current message */
    uint64_t rx_fed;   /* compressed bytes received in the current message */
    uint8_t chunk[NF__PMD_CHUNK];
};
#endif

/* ------------------------------------------------------------------------ */
/* Sec-WebSocket-Extensions parsing (RFC 6455 9.1):
 *   extension-list = 1#( token *( ";" token [ "=" ( token | quoted-string ) ] ) ) */

typedef struct {
    const char *name;
    size_t name_len;
    const char *value; /* NULL when the parameter has no value */
    size_t value_len;
    int quoted; /* value came as a quoted-string (still escaped) */
} ext_param_t;

typedef struct {
    const char *name;
    size_t name_len;
    ext_param_t params[NF__PMD_MAX_PARAMS];
    int nparams;
    int overflow; /* more parameters than we store: the offer is invalid */
} ext_t;

typedef struct {
    const char *s;
    size_t n, i;
} lex_t;

static int is_tchar(unsigned char c)
{
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
        return 1;
    return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static void skip_ows(lex_t *l)
{
    while (l->i < l->n && (l->s[l->i] == ' ' || l->s[l->i] == '\t'))
        l->i++;
}

static size_t token(lex_t *l)
{
    size_t st = l->i;
    while (l->i < l->n && is_tchar((unsigned char)l->s[l->i]))
        l->i++;
    return l->i - st;
}

/* Reads the next extension. Returns 1, 0 at the end, -1 on a syntax error. */
static int next_ext(lex_t *l, ext_t *e)
{
    e->nparams = 0;
    e->overflow = 0;
    /* Skip empty list elements. */
    for (;;) {
        skip_ows(l);
        if (l->i < l->n && l->s[l->i] == ',') {
            l->i++;
            continue;
        }
        break;
    }
    if (l->i >= l->n)
        return 0;
    e->name = l->s + l->i;
    e->name_len = token(l);
    if (!e->name_len)
        return -1;
    for (;;) {
        skip_ows(l);
        if (l->i >= l->n)
            return 1;
        if (l->s[l->i] == ',') {
            l->i++;
            return 1;
        }
        if (l->s[l->i] != ';')
            return -1;
        l->i++;
        skip_ows(l);
        ext_param_t p = {0};
        p.name = l->s + l->i;
        p.name_len = token(l);
        if (!p.name_len)
            return -1;
        skip_ows(l);
        if (l->i < l->n && l->s[l->i] == '=') {
            l->i++;
            skip_ows(l);
            if (l->i < l->n && l->s[l->i] == '"') {
                l->i++;
                p.value = l->s + l->i;
                p.quoted = 1;
                while (l->i < l->n && l->s[l->i] != '"') {
                    if (l->s[l->i] == '\\')
                        l->i++;
                    l->i++;
                }
                if (l->i >= l->n)
                    return -1;
                p.value_len = (size_t)(l->s + l->i - p.value);
                l->i++;
            } else {
                p.value = l->s + l->i;
                p.value_len = token(l);
                if (!p.value_len)
                    return -1;
            }
        }
        if (e->nparams < NF__PMD_MAX_PARAMS)
            e->params[e->nparams++] = p;
        else
            e->overflow = 1;
    }
}

static int ieq(const char *a, size_t n, const char *lit)
{
    size_t m = strlen(lit);
    if (n != m)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)a[i];
        if (c >= 'A' && c <= 'Z')
            c = (unsigned char)(c + 32);
        if (c != (unsigned char)lit[i])
            return 0;
    }
    return 1;
}

/* Window bits value: 8..15, decimal, no leading zero. A quoted value must
 * be the same digits (escapes are not accepted). Returns -1 when invalid. */
static int window_bits(const ext_param_t *p)
{
    if (!p->value || p->value_len < 1 || p->value_len > 2)
        return -1;
    const char *v = p->value;
    if (v[0] < '1' || v[0] > '9')
        return -1;
    int n = v[0] - '0';
    if (p->value_len == 2) {
        if (v[1] < '0' || v[1] > '9')
            return -1;
        n = n * 10 + (v[1] - '0');
    }
    return (n >= 8 && n <= 15) ? n : -1;
}

enum { P_SNCT = 1, P_CNCT = 2, P_SMWB = 4, P_CMWB = 8 };

typedef struct {
    unsigned seen;
    int smwb; /* value of server_max_window_bits */
    int cmwb; /* value of client_max_window_bits, 0 when given without */
} pmd_offer_t;

/* Validates the parameters of one permessage-deflate element. `response`
 * requires a value for client_max_window_bits. Returns 0 or -1. */
static int read_params(const ext_t *e, pmd_offer_t *o, int response)
{
    memset(o, 0, sizeof *o);
    if (e->overflow)
        return -1;
    for (int i = 0; i < e->nparams; i++) {
        const ext_param_t *p = &e->params[i];
        unsigned bit;
        if (ieq(p->name, p->name_len, "server_no_context_takeover"))
            bit = P_SNCT;
        else if (ieq(p->name, p->name_len, "client_no_context_takeover"))
            bit = P_CNCT;
        else if (ieq(p->name, p->name_len, "server_max_window_bits"))
            bit = P_SMWB;
        else if (ieq(p->name, p->name_len, "client_max_window_bits"))
            bit = P_CMWB;
        else
            return -1; /* unknown parameter */
        if (o->seen & bit)
            return -1; /* duplicate */
        o->seen |= bit;
        switch (bit) {
        case P_SNCT:
        case P_CNCT:
            if (p->value)
                return -1;
            break;
        case P_SMWB:
            if ((o->smwb = window_bits(p)) < 0)
                return -1;
            break;
        case P_CMWB:
            if (p->value) {
                if ((o->cmwb = window_bits(p)) < 0)
                    return -1;
            } else if (response) {
                return -1;
            }
            break;
        }
    }
    return 0;
}

/* Configured window: 0 -> 15, 8 -> 9, clamped to 9..15. */
static int cfg_bits(int v)
{
    if (v <= 0 || v > 15)
        return 15;
    return v < 9 ? 9 : v;
}

typedef struct {
    char *out;
    size_t cap, len;
    int err;
} sb_t;

static void sb_add(sb_t *b, const char *s)
{
    size_t n = strlen(s);
    if (b->err || b->cap - b->len < n) {
        b->err = 1;
        return;
    }
    memcpy(b->out + b->len, s, n);
    b->len += n;
}

static void sb_bits(sb_t *b, const char *name, int bits)
{
    char tmp[48];
    snprintf(tmp, sizeof tmp, "; %s=%d", name, bits);
    sb_add(b, tmp);
}

NF__EXPORT int nf_ws_pmd_negotiate(const nf_ws_pmd_config_t *cfg, const char *offers, size_t len,
                                   nf_ws_pmd_params_t *agreed, char *resp, size_t cap)
{
    static const nf_ws_pmd_config_t defaults;
    if (!NF_HAVE_DEFLATE) /* no zlib in this build: answer without the extension */
        return 0;
    lex_t l = {offers, len, 0};
    ext_t e;
    int rc;
    if (!cfg)
        cfg = &defaults;
    while ((rc = next_ext(&l, &e)) == 1) {
        pmd_offer_t o;
        if (!ieq(e.name, e.name_len, "permessage-deflate"))
            continue;
        if (read_params(&e, &o, 0) < 0)
            continue; /* decline this offer, try the next */
        nf_ws_pmd_params_t a;
        a.server_no_context_takeover = (o.seen & P_SNCT) || cfg->server_no_context_takeover;
        a.client_no_context_takeover = (o.seen & P_CNCT) || cfg->client_no_context_takeover;
        int sb = cfg_bits(cfg->server_max_window_bits);
        /* An offered 8 stays 8: we answer it, and never compress (zlib
         * cannot), see nf_ws_pmd_should_compress. */
        if ((o.seen & P_SMWB) && o.smwb < sb)
            sb = o.smwb;
        a.server_max_window_bits = sb;
        int cb = 15, send_cb = 0;
        if (o.seen & P_CMWB) {
            cb = cfg_bits(cfg->client_max_window_bits);
            if (o.cmwb && o.cmwb < cb)
                cb = o.cmwb;
            send_cb = cb < 15;
        }
        a.client_max_window_bits = cb;

        sb_t b = {resp, cap, 0, 0};
        sb_add(&b, "permessage-deflate");
        if (a.server_no_context_takeover)
            sb_add(&b, "; server_no_context_takeover");
        if (a.client_no_context_takeover)
            sb_add(&b, "; client_no_context_takeover");
        if ((o.seen & P_SMWB) || sb < 15)
            sb_bits(&b, "server_max_window_bits", sb);
        if (send_cb)
            sb_bits(&b, "client_max_window_bits", cb);
        if (b.err)
            return -ENOBUFS;
        *agreed = a;
        return (int)b.len;
    }
    return 0;
}

NF__EXPORT int nf_ws_pmd_offer(const nf_ws_pmd_config_t *cfg, char *out, size_t cap)
{
    static const nf_ws_pmd_config_t defaults;
    if (!NF_HAVE_DEFLATE) /* nothing to offer without zlib */
        return -ENOTSUP;
    sb_t b = {out, cap, 0, 0};
    if (!cfg)
        cfg = &defaults;
    sb_add(&b, "permessage-deflate");
    if (cfg->server_no_context_takeover)
        sb_add(&b, "; server_no_context_takeover");
    if (cfg->client_no_context_takeover)
        sb_add(&b, "; client_no_context_takeover");
    if (cfg->server_max_window_bits)
        sb_bits(&b, "server_max_window_bits", cfg_bits(cfg->server_max_window_bits));
    if (cfg->client_max_window_bits)
        sb_bits(&b, "client_max_window_bits", cfg_bits(cfg->client_max_window_bits));
    else
        sb_add(&b, "; client_max_window_bits");
    if (b.err)
        return -ENOBUFS;
    return (int)b.len;
}

NF__EXPORT int nf_ws_pmd_accept(const nf_ws_pmd_config_t *cfg, const char *resp, size_t len, nf_ws_pmd_params_t *agreed)
{
    static const nf_ws_pmd_config_t defaults;
    if (!NF_HAVE_DEFLATE) /* nothing was offered: an extension in the answer is invalid */
        return len ? NF_EWS_EXTENSION : 0;
    lex_t l = {resp, len, 0};
    ext_t e, extra;
    pmd_offer_t o;
    if (!cfg)
        cfg = &defaults;
    int rc = next_ext(&l, &e);
    if (rc == 0)
        return 0;
    if (rc < 0 || !ieq(e.name, e.name_len, "permessage-deflate"))
        return NF_EWS_EXTENSION; /* garbage, or an extension we never offered */
    if (next_ext(&l, &extra) != 0)
        return NF_EWS_EXTENSION; /* we offered one extension, once */
    if (read_params(&e, &o, 1) < 0)
        return NF_EWS_EXTENSION;
    int offered_sb = cfg->server_max_window_bits ? cfg_bits(cfg->server_max_window_bits) : 0;
    int offered_cb = cfg->client_max_window_bits ? cfg_bits(cfg->client_max_window_bits) : 15;
    /* RFC 7692 7.1.1.1 / 7.1.2.1: what the client asked of the server must be
     * confirmed in the response. */
    if (cfg->server_no_context_takeover && !(o.seen & P_SNCT))
        return NF_EWS_EXTENSION;
    if (offered_sb && (!(o.seen & P_SMWB) || o.smwb > offered_sb))
        return NF_EWS_EXTENSION;
    /* 7.1.2.2: the server may lower the client's window, never raise it. */
    if ((o.seen & P_CMWB) && o.cmwb > offered_cb)
        return NF_EWS_EXTENSION;
    agreed->server_no_context_takeover = (o.seen & P_SNCT) != 0;
    agreed->client_no_context_takeover = (o.seen & P_CNCT) || cfg->client_no_context_takeover;
    agreed->server_max_window_bits = (o.seen & P_SMWB) ? o.smwb : 15;
    agreed->client_max_window_bits = (o.seen & P_CMWB) ? o.cmwb : offered_cb;
    return 1;
}

/* ------------------------------------------------------------------------ */
/* Compression contexts */

#if !NF_HAVE_DEFLATE
/* No zlib in this build: no context can be made, so nothing is compressed. */
NF__EXPORT nf_ws_pmd_t *nf_ws_pmd_new(int role, const nf_ws_pmd_params_t *agreed, const nf_ws_pmd_config_t *cfg)
{
    (void)role, (void)agreed, (void)cfg;
    errno = ENOTSUP;
    return NULL;
}
NF__EXPORT void nf_ws_pmd_free(nf_ws_pmd_t *p) { (void)p; }
void nf__ws_pmd_tx(const nf_ws_pmd_t *p, int *reset, int *bits)
{
    (void)p;
    *reset = 1, *bits = 0; /* never reached: no context exists without zlib */
}
NF__EXPORT int nf_ws_pmd_should_compress(const nf_ws_pmd_t *p, size_t len) { return (void)p, (void)len, 0; }
NF__EXPORT int nf_ws_pmd_compress(nf_ws_pmd_t *p, const void *in, size_t len, const uint8_t **out, size_t *out_len)
{
    (void)p, (void)in, (void)len, (void)out, (void)out_len;
    return -ENOTSUP;
}
NF__EXPORT int nf_ws_pmd_inflate(nf_ws_pmd_t *p, const uint8_t *in, size_t len, int fin, uint64_t limit,
                                 nf_ws_pmd_sink_fn sink, void *arg)
{
    (void)p, (void)in, (void)len, (void)fin, (void)limit, (void)sink, (void)arg;
    return -ENOTSUP;
}
#else
static int valid_bits(int b) { return b >= 8 && b <= 15; }

NF__EXPORT nf_ws_pmd_t *nf_ws_pmd_new(int role, const nf_ws_pmd_params_t *agreed, const nf_ws_pmd_config_t *cfg)
{
    if ((role != NF_WS_SERVER && role != NF_WS_CLIENT) || !agreed || !valid_bits(agreed->server_max_window_bits) ||
        !valid_bits(agreed->client_max_window_bits))
        return NULL;
    nf_ws_pmd_t *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->role = role;
    p->prm = *agreed;
    p->level = (cfg && cfg->level >= 1 && cfg->level <= 9) ? cfg->level : 6;
    p->mem_level = (cfg && cfg->mem_level >= 1 && cfg->mem_level <= 9) ? cfg->mem_level : 8;
    p->threshold = (cfg && cfg->threshold) ? cfg->threshold : 32;
    if (role == NF_WS_SERVER) {
        p->tx_bits = agreed->server_max_window_bits;
        p->rx_bits = agreed->client_max_window_bits;
        p->tx_reset = agreed->server_no_context_takeover;
        p->rx_reset = agreed->client_no_context_takeover;
    } else {
        p->tx_bits = agreed->client_max_window_bits;
        p->rx_bits = agreed->server_max_window_bits;
        p->tx_reset = agreed->client_no_context_takeover;
        p->rx_reset = agreed->server_no_context_takeover;
    }
    /* Also honour our own wish to reset even when not agreed. */
    if (cfg && ((role == NF_WS_SERVER && cfg->server_no_context_takeover) ||
                (role == NF_WS_CLIENT && cfg->client_no_context_takeover)))
        p->tx_reset = 1;
    return p;
}

/* For the WebSocket layer (conn.c): how our compressor works. */
void nf__ws_pmd_tx(const nf_ws_pmd_t *p, int *reset, int *bits)
{
    *reset = p->tx_reset;
    *bits = p->tx_bits;
}

NF__EXPORT void nf_ws_pmd_free(nf_ws_pmd_t *p)
{
    if (!p)
        return;
    if (p->tx_ready)
        deflateEnd(&p->tx);
    if (p->rx_ready)
        inflateEnd(&p->rx);
    free(p->cbuf);
    free(p);
}

NF__EXPORT int nf_ws_pmd_should_compress(const nf_ws_pmd_t *p, size_t len)
{
    return p && p->tx_bits >= 9 && len >= p->threshold;
}

static int grow(nf_ws_pmd_t *p, size_t need)
{
    if (need <= p->ccap)
        return 0;
    size_t cap = p->ccap ? p->ccap : 256;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    uint8_t *b = realloc(p->cbuf, cap);
    if (!b)
        return -ENOMEM;
    p->cbuf = b;
    p->ccap = cap;
    return 0;
}

NF__EXPORT int nf_ws_pmd_compress(nf_ws_pmd_t *p, const void *in, size_t len, const uint8_t **out, size_t *out_len)
{
    if (p->tx_bits < 9)
        return -EINVAL;
    if (!p->tx_ready) {
        int zr = deflateInit2(&p->tx, p->level, Z_DEFLATED, -p->tx_bits, p->mem_level, Z_DEFAULT_STRATEGY);
        if (zr != Z_OK)
            return zr == Z_MEM_ERROR ? -ENOMEM : NF_EWS_INFLATE;
        p->tx_ready = 1;
    }
    /* Room for the usual case; grown if deflate fills it. */
    if (grow(p, len + (len >> 3) + 64) < 0)
        return -ENOMEM;
    size_t olen = 0;
    const uint8_t *src = in;
    size_t left = len;
    for (;;) {
        /* avail_in is a uInt: feed huge messages in slices. */
        uInt slice = left > 0x40000000u ? 0x40000000u : (uInt)left;
        p->tx.next_in = (Bytef *)(uintptr_t)src;
        p->tx.avail_in = slice;
        int flush = slice == left ? Z_SYNC_FLUSH : Z_NO_FLUSH;
        do {
            if (p->ccap - olen < 64 && grow(p, p->ccap + 64) < 0)
                return -ENOMEM;
            size_t room = p->ccap - olen;
            if (room > 0x40000000u)
                room = 0x40000000u;
            p->tx.next_out = p->cbuf + olen;
            p->tx.avail_out = (uInt)room;
            int zr = deflate(&p->tx, flush);
            if (zr != Z_OK && zr != Z_BUF_ERROR)
                return NF_EWS_INFLATE;
            olen += room - p->tx.avail_out;
            if (p->tx.avail_out == 0 && grow(p, p->ccap * 2) < 0)
                return -ENOMEM;
        } while (p->tx.avail_out == 0 || p->tx.avail_in != 0);
        src += slice;
        left -= slice;
        if (flush == Z_SYNC_FLUSH)
            break;
    }
    /* RFC 7692 7.2.1: remove the 00 00 ff ff of the empty stored block. */
    if (olen >= 4 && memcmp(p->cbuf + olen - 4, "\x00\x00\xff\xff", 4) == 0)
        olen -= 4;
    if (p->tx_reset)
        deflateReset(&p->tx);
    *out = p->cbuf;
    *out_len = olen;
    return 0;
}

/* Window bits of our inflater: a zlib peer told to use 8 compresses with 9. */
static int rx_window_bits(const nf_ws_pmd_t *p) { return p->rx_bits < 9 ? 9 : p->rx_bits; }

/* Bytes of a message after its BFINAL block (RFC 7692 7.2.3.4): a single
 * 0x00 octet may follow the final block (the header of an empty non-final
 * stored block, so that a receiver appending 00 00 ff ff reads an empty
 * stored block), nothing else. */
static int after_final(nf_ws_pmd_t *p, const uint8_t *in, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (p->rx_ended != 1 || in[i] != 0x00)
            return NF_EWS_INFLATE; /* data after the final block */
        p->rx_ended = 2;
    }
    return 0;
}

/* The peer's deflate stream ended (a BFINAL block): zlib has nothing more
 * to read in it, so the next message is a new stream and the inflater must
 * be reset (inflateReset) for it.
 *
 * Which window does the next message see? A zlib peer that ends a message
 * with Z_FINISH must deflateReset before its next message, which empties
 * its LZ77 window: its next stream never refers back into this message.
 * But RFC 7692 7.2.2 says that, unless the peer agreed to
 * *_no_context_takeover, the receiver MUST inflate each message with the
 * window of the previous one, and nothing forbids a compressor that ends
 * with BFINAL from keeping its window (as a preset dictionary, say). So with
 * context takeover the window survives the reset (inflateGetDictionary,
 * then inflateSetDictionary, which raw inflate allows at any time): a
 * stream that does not refer back decodes the same, one that does decodes
 * correctly instead of failing. Without context takeover the window is
 * dropped, as after any message. The copy (at most 2^15 bytes) is paid only
 * by peers that end messages with BFINAL and keep the context. */
static int end_of_stream(nf_ws_pmd_t *p)
{
    if (p->rx_reset) {
        inflateReset(&p->rx);
        return 0;
    }
    uInt n = 0;
    uint8_t *win = malloc((size_t)1 << rx_window_bits(p));
    if (!win)
        return -ENOMEM;
    int zr = inflateGetDictionary(&p->rx, win, &n);
    inflateReset(&p->rx);
    if (zr == Z_OK && n)
        zr = inflateSetDictionary(&p->rx, win, n);
    free(win);
    return zr == Z_OK ? 0 : NF_EWS_INFLATE;
}

static int inflate_some(nf_ws_pmd_t *p, const uint8_t *in, size_t len, uint64_t limit, nf_ws_pmd_sink_fn sink,
                        void *arg)
{
    if (p->rx_ended)
        return after_final(p, in, len);
    while (len) {
        uInt slice = len > 0x40000000u ? 0x40000000u : (uInt)len;
        p->rx.next_in = (Bytef *)(uintptr_t)in;
        p->rx.avail_in = slice;
        for (;;) {
            uInt before = p->rx.avail_in;
            p->rx.next_out = p->chunk;
            p->rx.avail_out = NF__PMD_CHUNK;
            int zr = inflate(&p->rx, Z_SYNC_FLUSH);
            size_t got = NF__PMD_CHUNK - p->rx.avail_out;
            if (zr == Z_DATA_ERROR || zr == Z_NEED_DICT || zr == Z_STREAM_ERROR)
                return NF_EWS_INFLATE;
            if (zr == Z_MEM_ERROR)
                return -ENOMEM;
            if (got) {
                if (got > limit || p->rx_total > limit - got)
                    return NF_EWS_TOOBIG;
                p->rx_total += got;
                if (sink) {
                    int rc = sink(arg, p->chunk, got);
                    if (rc)
                        return rc;
                }
            }
            if (zr == Z_STREAM_END) {
                /* The peer ended its stream with a BFINAL block (RFC 7692
                 * 7.2.3.4): the message must end here (but for one 0x00
                 * octet), the appended tail is not needed, and the next
                 * message starts a new stream. */
                const uint8_t *rest = p->rx.next_in;
                size_t rest_len = p->rx.avail_in + (len - slice);
                int rc = end_of_stream(p);
                if (rc)
                    return rc;
                p->rx_ended = 1;
                return after_final(p, rest, rest_len);
            }
            if (p->rx.avail_out != 0 && p->rx.avail_in == 0)
                break;
            if (got == 0 && p->rx.avail_in == before)
                return NF_EWS_INFLATE; /* no progress possible */
        }
        in += slice;
        len -= slice;
    }
    return 0;
}

NF__EXPORT int nf_ws_pmd_inflate(nf_ws_pmd_t *p, const uint8_t *in, size_t len, int fin, uint64_t limit,
                                 nf_ws_pmd_sink_fn sink, void *arg)
{
    static const uint8_t tail[4] = {0x00, 0x00, 0xff, 0xff};
    if (!p->rx_ready) {
        int zr = inflateInit2(&p->rx, -rx_window_bits(p));
        if (zr != Z_OK)
            return zr == Z_MEM_ERROR ? -ENOMEM : NF_EWS_INFLATE;
        p->rx_ready = 1;
    }
    int rc = inflate_some(p, in, len, limit, sink, arg);
    if (rc)
        return rc;
    p->rx_fed += len;
    if (fin) {
        /* An empty payload with RSV1 is an empty message: nothing to
         * inflate, and the tail alone would open a stored block. */
        if (!p->rx_ended && p->rx_fed) {
            rc = inflate_some(p, tail, 4, limit, sink, arg);
            if (rc)
                return rc;
        }
        p->rx_ended = 0;
        p->rx_total = 0;
        p->rx_fed = 0;
        if (p->rx_reset)
            inflateReset(&p->rx);
    }
    return 0;
}
#endif /* NF_HAVE_DEFLATE */
