/* netframe — the WebSocket connection filter: state machine, codec glue,
 * the close handshake, keep-alive (the send path is in send.c). The handshakes are in handshake_server.c
 * and handshake_client.c, reached through the role table (nf__ws_role_t).
 *
 * The filter's state is the nf_ws_conn_t itself (allocated with the TCP
 * connection's filter instances, freed after its on_close), so a WebSocket
 * connection costs no allocation of its own once open.
 *
 * Received payloads are unmasked in place in the read buffer handed up by
 * the filter below (the transport's read buffer): the filters below must
 * hand up writable memory, which the transport and the built-in filters do. */
#include "netframe/config.h"
#include "ws/conn.h"

#include "netframe/flow.h" /* NF_ESLOW */

#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

/* The per-connection state is part of the idle-memory budget (under 512
 * bytes per idle connection with nf_conn_t and the filter instance; see
 * docs/websocket.md): grow it only with a reason. 192 -> 200 for the
 * attachment pointer (pub/sub's close hook): the filter block (48 B of
 * nf_filter_t + this) stays at 248 B, in the same 256-byte malloc chunk. */
_Static_assert(sizeof(void *) != 8 || sizeof(nf_ws_conn_t) <= 200, "nf_ws_conn_t over its 200-byte budget");

/* ---- helpers ------------------------------------------------------------ */

void nf__ws_ctx_unref(nf__ws_ctx_t *ctx)
{
    if (--ctx->refs == 0)
        ctx->free_fn(ctx);
}

int nf__ws_accept_key(const char *key, size_t len, char out[29])
{
    static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    char buf[128];
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    if (len > sizeof buf - (sizeof guid - 1))
        return -EINVAL;
    memcpy(buf, key, len);
    memcpy(buf + len, guid, sizeof guid - 1);
    if (!EVP_Digest(buf, len + sizeof guid - 1, md, &mdlen, EVP_sha1(), NULL) || mdlen != 20)
        return -ENOMEM;
    EVP_EncodeBlock((unsigned char *)out, md, 20); /* 28 chars + NUL */
    return 0;
}

int nf__ws_hs_append(nf_ws_conn_t *ws, const char *data, size_t len)
{
    size_t limit = ws->ctx->opts.max_header + 1 + NF__WS_HS_AFTER, have = nf__ws_hs_len(ws);
    if (have + len > limit)
        len = limit - have; /* the head, or enough to say "too large" */
    if (!ws->hs || have + len > ws->hs->cap) {
        size_t cap = ws->hs ? ws->hs->cap : 1024;
        while (cap < have + len)
            cap *= 2;
        if (cap > limit)
            cap = limit;
        nf__ws_hs_t *p = realloc(ws->hs, sizeof *p + cap);
        if (!p)
            return -ENOMEM;
        if (!ws->hs)
            p->len = p->last = 0;
        p->cap = cap;
        ws->hs = p;
    }
    memcpy(ws->hs->buf + have, data, len);
    ws->hs->len += len;
    return 0;
}

int nf__ws_hs_read_begin(nf_ws_conn_t *ws, char *data, size_t len, nf__ws_hs_read_t *rd, nf_http_limits_t *lim)
{
    const nf_ws_options_t *o = &ws->ctx->opts;
    *rd = (nf__ws_hs_read_t){.buf = data, .data = data, .len = len, .have = nf__ws_hs_len(ws), .blen = len};
    if (rd->have) { /* the head began in an earlier read: parse the copy */
        if (nf__ws_hs_append(ws, data, len) != 0) {
            nf__ws_drop(ws, -ENOMEM);
            return -1;
        }
        rd->buf = ws->hs->buf;
        rd->blen = ws->hs->len;
        rd->last = ws->hs->last;
    }
    size_t field = o->max_header < 8192 ? o->max_header : 8192;
    *lim = (nf_http_limits_t){.max_line = field, .max_field = field, .max_head = o->max_header};
    return 0;
}

void nf__ws_hs_free(nf_ws_conn_t *ws)
{
    free(ws->hs);
    ws->hs = NULL;
}

static void set_reason(nf_ws_conn_t *ws, const char *reason, size_t len)
{
    free(ws->close_reason);
    ws->close_reason = NULL;
    ws->close_reason_len = 0;
    if (!len)
        return;
    if (len > 123)
        len = 123;
    ws->close_reason = malloc(len);
    if (ws->close_reason) {
        memcpy(ws->close_reason, reason, len);
        ws->close_reason_len = (uint8_t)len;
    }
}

void nf__ws_arm(nf_ws_conn_t *ws, uint64_t ms) { nf_timer_start(&ws->timer, ws->timer.cb, ms ? ms : 1, 0); }

void nf__ws_linger(nf_ws_conn_t *ws)
{
    if (ws->state >= NF__WS_LINGER)
        return;
    ws->state = NF__WS_LINGER;
    nf__ws_arm(ws, ws->ctx->opts.close_timeout_ms);
    /* A flow-control filter below defers the shutdown until what it holds
     * (the close frame included: it is never dropped) went down; the timer
     * is the fallback for a peer that never reads. */
    nf_filter_shutdown_down(ws->f);
}

void nf__ws_opts_normalize(nf_ws_options_t *o)
{
    if (!o->max_header)
        o->max_header = 16384;
    if (!o->handshake_timeout_ms)
        o->handshake_timeout_ms = 10000;
    if (!o->close_timeout_ms)
        o->close_timeout_ms = 5000;
    if (!NF_HAVE_DEFLATE) /* a build without zlib declines permessage-deflate */
        o->deflate = 0;
}

void nf__ws_drop(nf_ws_conn_t *ws, int err)
{
    if (nf_conn_is_closing(ws->f->conn))
        return;
    if (!ws->error)
        ws->error = err;
    if (err && err != NF_CLOSE_LOCAL)
        nf_filter_fail(ws->f, err);
    else
        nf_filter_close_down(ws->f, NF_HOW_CLOSE);
}

/* We fail the connection: a close frame with `code` (when open), then a
 * lingering close. */
static void fail(nf_ws_conn_t *ws, unsigned code, const char *why, int err)
{
    if (ws->state >= NF__WS_LINGER)
        return;
    ws->failed = 1;
    ws->error = err;
    ws->close_code = (uint16_t)code;
    set_reason(ws, why, strlen(why));
    if (ws->state == NF__WS_OPEN && nf__ws_send_close(ws, code, why, strlen(why)) == NF_ESLOW)
        return;
    nf__ws_linger(ws);
}

/* ---- decoder callbacks ---------------------------------------------------- */

static int gone(const nf_ws_conn_t *ws)
{
    return ws->state >= NF__WS_LINGER || nf_conn_is_closing(ws->f->conn) ? NF_EWS_CLOSED : 0;
}

static int d_message(nf_ws_decoder_t *d, unsigned op, const uint8_t *p, size_t n)
{
    nf_ws_conn_t *ws = d->data;
    if (ws->state == NF__WS_OPEN)
        ws->h->on_message(ws, op, (const char *)p, n);
    return gone(ws);
}

static int d_begin(nf_ws_decoder_t *d, unsigned op, int compressed)
{
    nf_ws_conn_t *ws = d->data;
    (void)compressed;
    ws->frag_opcode = (uint8_t)op;
    return 0;
}

static int d_data(nf_ws_decoder_t *d, const uint8_t *p, size_t n)
{
    nf_ws_conn_t *ws = d->data;
    if (n && ws->state == NF__WS_OPEN && ws->h->on_fragment)
        ws->h->on_fragment(ws, ws->frag_opcode, (const char *)p, n, 0);
    return gone(ws);
}

static int d_end(nf_ws_decoder_t *d)
{
    nf_ws_conn_t *ws = d->data;
    if (ws->state == NF__WS_OPEN && ws->h->on_fragment)
        ws->h->on_fragment(ws, ws->frag_opcode, "", 0, 1);
    return gone(ws);
}

static int d_ping(nf_ws_decoder_t *d, const uint8_t *p, size_t n)
{
    nf_ws_conn_t *ws = d->data;
    if (ws->state != NF__WS_OPEN)
        return gone(ws);
    nf__ws_codec_t *cx = ws->cx;
    if (cx->pong_below) { /* our last pong has not left: answer only the latest ping */
        if (n)
            memcpy(cx->pong, p, n);
        cx->pong_len = (uint8_t)n;
        cx->pong_owed = 1;
    } else {
        nf__ws_send_pong(ws, p, n);
    }
    if (ws->h->on_ping && ws->state == NF__WS_OPEN)
        ws->h->on_ping(ws, (const char *)p, n);
    return gone(ws);
}

static int d_pong(nf_ws_decoder_t *d, const uint8_t *p, size_t n)
{
    nf_ws_conn_t *ws = d->data;
    if (ws->h->on_pong && ws->state == NF__WS_OPEN)
        ws->h->on_pong(ws, (const char *)p, n);
    return gone(ws);
}

static int d_close(nf_ws_decoder_t *d, unsigned code, const char *reason, size_t rlen)
{
    nf_ws_conn_t *ws = d->data;
    ws->close_rcvd = 1;
    if (!ws->failed) {
        ws->close_code = (uint16_t)code;
        set_reason(ws, reason, rlen);
    }
    if (ws->state == NF__WS_OPEN && /* echo the code (none when none came) */
        nf__ws_send_close(ws, code == NF_WS_CLOSE_NO_STATUS ? 0 : code, NULL, 0) == NF_ESLOW)
        return NF_EWS_CLOSED;
    nf__ws_linger(ws);
    return 0;
}

/* Hixie-76: text messages and the closing frame. */
static int hx_text(nf_ws_hixie_decoder_t *d, const uint8_t *p, size_t n)
{
    nf_ws_conn_t *ws = d->data;
    if (ws->state != NF__WS_OPEN)
        return gone(ws);
    if (ws->h->on_message) {
        ws->h->on_message(ws, NF_WS_OP_TEXT, (const char *)p, n);
    } else if (ws->h->on_fragment) {
        if (n)
            ws->h->on_fragment(ws, NF_WS_OP_TEXT, (const char *)p, n, 0);
        if (ws->state == NF__WS_OPEN)
            ws->h->on_fragment(ws, NF_WS_OP_TEXT, "", 0, 1);
    }
    return gone(ws);
}

static int hx_close(nf_ws_hixie_decoder_t *d)
{
    nf_ws_conn_t *ws = d->data;
    ws->close_rcvd = 1;
    if (!ws->failed)
        ws->close_code = NF_WS_CLOSE_NO_STATUS;
    if (ws->state == NF__WS_OPEN && nf__ws_send_close(ws, 0, NULL, 0) == NF_ESLOW)
        return NF_EWS_CLOSED;
    nf__ws_linger(ws);
    return 0;
}

static void feed_hixie(nf_ws_conn_t *ws, const uint8_t *p, size_t n)
{
    int rc = nf_ws_hixie_decoder_feed(ws->hx, p, n);
    if (rc == 0 || ws->state >= NF__WS_LINGER || nf_conn_is_closing(ws->f->conn))
        return;
    static const char *const why[] = {"frame too big", "invalid UTF-8", "out of memory"};
    const char *w = rc == NF_EWS_TOOBIG ? why[0] : rc == NF_EWS_UTF8 ? why[1] : why[2];
    fail(ws, nf_ws_close_code_for(rc), w, rc);
}

static void feed(nf_ws_conn_t *ws, uint8_t *p, size_t n)
{
    if (ws->version == 76) {
        feed_hixie(ws, p, n);
        return;
    }
    nf__ws_codec_t *cx = nf__ws_codec(ws);
    if (!cx) {
        fail(ws, NF_WS_CLOSE_INTERNAL, "out of memory", -ENOMEM);
        return;
    }
    int rc = nf_ws_decoder_feed(&cx->dec, p, n);
    if (rc == 0 || ws->state >= NF__WS_LINGER || nf_conn_is_closing(ws->f->conn))
        return;
    unsigned code = nf_ws_decoder_close_code(&cx->dec);
    fail(ws, code ? code : NF_WS_CLOSE_INTERNAL, nf_ws_decoder_reason(&cx->dec), rc);
}

/* ---- the codec: allocated on use, released at rest ------------------------- */

static const nf_ws_decoder_cbs_t k_cbs_whole = {
    .on_message = d_message,
    .on_ping = d_ping,
    .on_pong = d_pong,
    .on_close = d_close,
};
static const nf_ws_decoder_cbs_t k_cbs_stream = {
    .on_message_begin = d_begin,
    .on_data = d_data,
    .on_message_end = d_end,
    .on_ping = d_ping,
    .on_pong = d_pong,
    .on_close = d_close,
};

/* Cold path: the first byte in or out since the handshake or since the
 * codec was released. Between messages the decoder and encoder hold nothing
 * a fresh pair lacks (permessage-deflate's context lives in ws->pmd). */
nf__ws_codec_t *nf__ws_codec_new(nf_ws_conn_t *ws)
{
    const nf_ws_options_t *o = &ws->ctx->opts;
    nf__ws_codec_t *cx = malloc(sizeof *cx);
    if (!cx)
        return NULL;
    nf_ws_decoder_config_t dc = {
        .role = ws->role,
        .max_frame = o->max_frame,
        .max_message = o->max_message,
        .pmd = ws->pmd,
        .reject_nonminimal = o->reject_nonminimal,
    };
    nf_ws_encoder_config_t ec = {
        .role = ws->role,
        .fragment_size = o->fragment_size,
        .pmd = ws->pmd,
        .mask_key = nf__ws_rand_key,
    };
    cx->dec.data = cx->enc.data = ws;
    cx->pong_below = NULL;
    cx->pong_owed = cx->pong_len = 0;
    if (nf_ws_decoder_init(&cx->dec, &dc, ws->h->on_message ? &k_cbs_whole : &k_cbs_stream) != 0 ||
        nf_ws_encoder_init(&cx->enc, &ec) != 0) {
        free(cx);
        return NULL;
    }
    ws->cx = cx;
    /* the keep-alive timer, when armed, checks for rest too */
    if (ws->state == NF__WS_OPEN && !nf_timer_active(&ws->timer))
        nf__ws_arm(ws, NF__WS_REST_MS);
    return cx;
}

static void codec_free(nf_ws_conn_t *ws)
{
    if (ws->version == 76 || !ws->cx)
        return;
    nf_ws_decoder_free(&ws->cx->dec);
    nf_ws_encoder_free(&ws->cx->enc);
    free(ws->cx);
    ws->cx = NULL;
}

/* ---- timer: handshake, keep-alive, close ------------------------------------ */

static void keepalive(nf_ws_conn_t *ws)
{
    const nf_ws_options_t *o = &ws->ctx->opts;
    uint64_t now = nf_loop_now(ws->ctx->loop), quiet = now - ws->last_rx;
    if (ws->version != 76 && ws->cx && ws->cx->pong_owed && !ws->cx->pong_below) {
        nf__ws_send_pong(ws, ws->cx->pong, ws->cx->pong_len); /* armed by pong_gone */
        if (ws->state != NF__WS_OPEN || nf_conn_is_closing(ws->f->conn))
            return;
    }
    if (o->idle_timeout_ms && quiet >= o->idle_timeout_ms) {
        fail(ws, NF_WS_CLOSE_GOING_AWAY, "idle timeout", -ETIMEDOUT);
        return;
    }
    if (o->ping_interval_ms && ws->version != 76 && quiet >= o->ping_interval_ms &&
        now - ws->last_ping >= o->ping_interval_ms) {
        ws->last_ping = now;
        nf__ws_write_msg(ws, NF_WS_OP_PING, NULL, 0);
        if (ws->state != NF__WS_OPEN)
            return;
    }
    uint64_t next = o->ping_interval_ms ? o->ping_interval_ms : UINT64_MAX;
    if (o->idle_timeout_ms && o->idle_timeout_ms - quiet < next)
        next = o->idle_timeout_ms - quiet;
    if (ws->version != 76 && ws->cx) { /* nothing received for a while, between frames: release */
        if (quiet >= NF__WS_REST_MS && nf_ws_decoder_at_rest(&ws->cx->dec) && !ws->cx->pong_below && !ws->cx->pong_owed)
            codec_free(ws);
        else if (NF__WS_REST_MS - (quiet < NF__WS_REST_MS ? quiet : 0) < next)
            next = NF__WS_REST_MS - (quiet < NF__WS_REST_MS ? quiet : 0);
    }
    if (next != UINT64_MAX)
        nf__ws_arm(ws, next);
}

static void fire(nf_timer_t *t)
{
    nf_ws_conn_t *ws = t->data;
    switch (ws->state) {
    case NF__WS_HANDSHAKE: nf__ws_drop(ws, -ETIMEDOUT); break;
    case NF__WS_OPEN: keepalive(ws); break;
    case NF__WS_CLOSING: /* no close frame came back */ nf__ws_drop(ws, -ETIMEDOUT); break;
    case NF__WS_LINGER: /* the peer did not close its side */ nf_filter_close_down(ws->f, NF_HOW_CLOSE); break;
    default: break;
    }
}

/* ---- opening ------------------------------------------------------------- */

void nf__ws_opened(nf_ws_conn_t *ws, const nf_ws_pmd_params_t *agreed, uint8_t *rest, size_t len)
{
    const nf_ws_options_t *o = &ws->ctx->opts;
    int err = 0;
    if (agreed) {
        ws->pmd = nf_ws_pmd_new(ws->role, agreed, &o->pmd);
        if (!ws->pmd)
            err = -ENOMEM;
    }
    if (!err && ws->version == 76) {
        static const nf_ws_hixie_cbs_t hcbs = {.on_text = hx_text, .on_close = hx_close};
        ws->hx = malloc(sizeof *ws->hx);
        if (ws->hx) {
            uint64_t max = o->max_frame ? o->max_frame : 16u << 20;
            if (o->max_message && o->max_message < max)
                max = o->max_message;
            ws->hx->data = ws;
            nf_ws_hixie_decoder_init(ws->hx, max, &hcbs);
        } else {
            err = -ENOMEM;
        }
    }
    ws->state = NF__WS_OPEN;
    ws->opened = 1;
    ws->http_status = 101;
    ws->last_rx = ws->last_ping = nf_loop_now(ws->ctx->loop);
    nf_timer_stop(&ws->timer);
    if (o->ping_interval_ms || o->idle_timeout_ms)
        nf__ws_arm(ws, o->ping_interval_ms && (!o->idle_timeout_ms || o->ping_interval_ms < o->idle_timeout_ms)
                           ? o->ping_interval_ms
                           : o->idle_timeout_ms);
    if (err) {
        fail(ws, NF_WS_CLOSE_INTERNAL, "out of memory", err);
        return;
    }
    if (ws->h->on_open)
        ws->h->on_open(ws);
    if (len && !gone(ws))
        feed(ws, rest, len);
}

/* ---- filter ops ------------------------------------------------------------ */

static int w_init(nf_filter_t *f)
{
    nf_ws_conn_t *ws = f->state;
    if (ws->ctx) /* client: set up by nf_ws_connect already */
        return 0;
    nf__ws_ctx_t *ctx = (nf__ws_ctx_t *)f->config;
    ws->f = f;
    ws->ctx = ctx;
    ws->role = (uint8_t)ctx->role;
    ws->version = 13;
    ctx->refs++;
    ctx->nconns++;
    nf__list_push_back(&ctx->conns, &ws->node);
    nf_timer_init(ctx->loop, &ws->timer);
    ws->timer.data = ws;
    ws->timer.cb = fire;
    nf_conn_set_data(f->conn, ws);
    return 0;
}

/* For nf_ws_connect: the state exists before the connection opens. */
void nf__ws_client_setup(nf_filter_t *f, const nf_ws_handler_t *h, void *data)
{
    nf_ws_conn_t *ws = f->state;
    w_init(f);
    ws->h = h;
    ws->data = data;
}

static void w_open(nf_filter_t *f)
{
    nf_ws_conn_t *ws = f->state;
    ws->last_rx = nf_loop_now(ws->ctx->loop);
    nf__ws_arm(ws, ws->ctx->opts.handshake_timeout_ms);
    ws->ctx->ops->open(ws);
}

static void w_read(nf_filter_t *f, const char *data, size_t len)
{
    nf_ws_conn_t *ws = f->state;
    ws->last_rx = nf_loop_now(ws->ctx->loop);
    /* the read buffer is the transport's (or a filter's): writable memory */
    char *p = (char *)(uintptr_t)data;
    switch (ws->state) {
    case NF__WS_HANDSHAKE: ws->ctx->ops->read(ws, p, len); break;
    case NF__WS_OPEN:
    case NF__WS_CLOSING: feed(ws, (uint8_t *)p, len); break;
    default: /* lingering: discard */ break;
    }
}

static void w_eof(nf_filter_t *f)
{
    nf_ws_conn_t *ws = f->state;
    if (!ws->close_rcvd && !ws->error)
        ws->error = NF_EOF;
    nf_filter_eof_up(f); /* no on_eof above: the transport closes with NF_EOF */
}

static void w_drain(nf_filter_t *f)
{
    nf_ws_conn_t *ws = f->state;
    if ((ws->state == NF__WS_OPEN || ws->state == NF__WS_CLOSING) && ws->h && ws->h->on_drain)
        ws->h->on_drain(ws);
}

static void w_close(nf_filter_t *f, int reason)
{
    nf_ws_conn_t *ws = f->state;
    nf__ws_ctx_t *ctx = ws->ctx;
    if (!ctx)
        return; /* a filter below failed its init: we never started */
    nf_timer_stop(&ws->timer);
    ws->state = NF__WS_DONE;
    if (!ws->error && !ws->close_rcvd)
        ws->error = reason;
    unsigned code = ws->failed || ws->close_rcvd ? ws->close_code : NF_WS_CLOSE_ABNORMAL;
    nf_ws_attach_t *att = ws->attach;
    ws->attach = NULL;
    if (att && att->ops->on_close)
        att->ops->on_close(ws, att);
    if (ws->h && (ws->opened || ws->role == NF_WS_CLIENT))
        ws->h->on_close(ws, code, ws->close_reason ? ws->close_reason : "", ws->close_reason_len);
    codec_free(ws);
    nf_ws_pmd_free(ws->pmd);
    ws->pmd = NULL;
    if (ws->version == 76 && ws->hx) {
        nf_ws_hixie_decoder_free(ws->hx);
        free(ws->hx);
        ws->hx = NULL;
    }
    nf__ws_hs_free(ws);
    if (!ws->path_borrowed)
        free(ws->path);
    ws->path = NULL;
    free(ws->close_reason);
    ws->close_reason = NULL;
    nf__list_remove(&ws->node);
    ctx->nconns--;
    ws->ctx = NULL;
    nf__ws_ctx_unref(ctx);
}

static void w_noop_read(nf_conn_t *c, const char *data, size_t len) { (void)c, (void)data, (void)len; }
static void w_noop_close(nf_conn_t *c, int reason) { (void)c, (void)reason; }

/* The TCP connection's handler: everything stops at the filter. */
const nf_conn_handler_t nf__ws_tcp_handler = {.on_read = w_noop_read, .on_close = w_noop_close};

NF__EXPORT const nf_filter_ops_t nf_ws_filter = {
    .size = sizeof(nf_filter_ops_t),
    .name = "websocket",
    .state_size = sizeof(nf_ws_conn_t),
    .init = w_init,
    .on_open = w_open,
    .on_read = w_read,
    .on_eof = w_eof,
    .on_drain = w_drain,
    .on_close = w_close,
};

/* ---- accessors --------------------------------------------------------------- */

NF__EXPORT int nf_ws_conn_error(const nf_ws_conn_t *ws) { return ws->error; }
NF__EXPORT int nf_ws_conn_http_status(const nf_ws_conn_t *ws) { return ws->http_status; }
NF__EXPORT void *nf_ws_conn_get_data(const nf_ws_conn_t *ws) { return ws->data; }
NF__EXPORT void nf_ws_conn_set_data(nf_ws_conn_t *ws, void *data) { ws->data = data; }
NF__EXPORT nf_conn_t *nf_ws_conn_tcp(const nf_ws_conn_t *ws) { return ws->f->conn; }
NF__EXPORT nf_loop_t *nf_ws_conn_loop(const nf_ws_conn_t *ws) { return nf_conn_loop(ws->f->conn); }
NF__EXPORT nf_ws_server_t *nf_ws_conn_server(const nf_ws_conn_t *ws)
{
    return ws->role == NF_WS_SERVER && ws->ctx ? (nf_ws_server_t *)(void *)ws->ctx : NULL;
}
NF__EXPORT const nf_ws_route_t *nf_ws_conn_route(const nf_ws_conn_t *ws) { return ws->route; }
NF__EXPORT const char *nf_ws_conn_path(const nf_ws_conn_t *ws) { return ws->path ? ws->path : ""; }
NF__EXPORT const char *nf_ws_conn_subprotocol(const nf_ws_conn_t *ws) { return ws->subprotocol; }
NF__EXPORT int nf_ws_conn_deflate(const nf_ws_conn_t *ws) { return ws->pmd != NULL; }
NF__EXPORT int nf_ws_conn_version(const nf_ws_conn_t *ws) { return ws->version; }
NF__EXPORT int nf_ws_conn_is_open(const nf_ws_conn_t *ws) { return ws->state == NF__WS_OPEN; }
NF__EXPORT int nf_ws_conn_attach(nf_ws_conn_t *ws, nf_ws_attach_t *a)
{
    if (a && ws->state == NF__WS_DONE)
        return NF_ECLOSED;
    if (a && ws->attach && ws->attach != a)
        return -EBUSY;
    ws->attach = a;
    return 0;
}
NF__EXPORT nf_ws_attach_t *nf_ws_conn_attached(const nf_ws_conn_t *ws) { return ws->attach; }
NF__EXPORT int nf_ws_conn_deflate_shareable(const nf_ws_conn_t *ws)
{
    int reset, bits;
    if (!ws->pmd || ws->version == 76)
        return 0;
    nf__ws_pmd_tx(ws->pmd, &reset, &bits);
    return reset && bits == 15;
}
