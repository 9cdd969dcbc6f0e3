/* netframe — the WebSocket send path: frames out (messages, fragments,
 * pings, pongs, close frames), the masking keys of a client, and the public
 * sending and closing calls. The state machine and the reading side are in
 * conn.c. */
#include "ws/conn.h"

#include "netframe/flow.h" /* NF_ESLOW */

#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

/* Masking keys for client frames: getrandom(2), 256 bytes at a time, one
 * buffer per thread (each loop is one thread). */
void nf__ws_rand_key(void *arg, uint8_t key[4])
{
    static _Thread_local uint8_t pool[256];
    static _Thread_local unsigned pos = sizeof pool;
    (void)arg;
    if (pos + 4 > sizeof pool) {
        if (getrandom(pool, sizeof pool, 0) != (ssize_t)sizeof pool) {
            /* no getrandom: vary per frame anyway (masking protects
             * intermediaries from cache poisoning, not confidentiality) */
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            uint64_t x = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 29) ^ (uint64_t)(uintptr_t)key;
            for (size_t i = 0; i < sizeof pool; i++) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                pool[i] = (uint8_t)x;
            }
        }
        pos = 0;
    }
    memcpy(key, pool + pos, 4);
    pos += 4;
}

int nf__ws_write_raw(nf_ws_conn_t *ws, const void *data, size_t len)
{
    nf_buf_t *b = nf_buf_new(len);
    if (!b)
        return -ENOMEM;
    memcpy(b->base, data, len);
    b->len = len;
    return nf_filter_write_down(ws->f, b);
}

/* Encodes one message (or control frame) into a fresh buffer with `flags`
 * (nf_buf_t) and writes it down. */
static int write_frame(nf_ws_conn_t *ws, unsigned opcode, const void *data, size_t len, unsigned flags)
{
    size_t need, done;
    nf__ws_codec_t *cx = nf__ws_codec(ws);
    if (!cx)
        return -ENOMEM;
    int rc = nf_ws_encode_prepare(&cx->enc, opcode, data, len, &need);
    if (rc)
        return rc;
    nf_buf_t *b = nf_buf_new(need);
    if (!b)
        return -ENOMEM;
    rc = nf_ws_encode_write(&cx->enc, (uint8_t *)b->base, need, &done);
    if (rc) {
        nf_buf_unref(b);
        return rc;
    }
    b->len = done;
    b->flags = flags;
    return nf_filter_write_down(ws->f, b);
}

int nf__ws_write_msg(nf_ws_conn_t *ws, unsigned opcode, const void *data, size_t len)
{
    return write_frame(ws, opcode, data, len, 0);
}

/* A close frame: marked NF_BUF_PRIORITY so that a flow-control policy
 * below holds it instead of dropping it (up to the flow filter's
 * max_priority_bytes). */
static int write_ctl(nf_ws_conn_t *ws, unsigned opcode, const void *data, size_t len)
{
    return write_frame(ws, opcode, data, len, NF_BUF_PRIORITY);
}

/* The last reference to one of our pongs went (the kernel took it, a filter
 * dropped it, or the connection closed): the next ping may be answered at
 * once, and one that came meanwhile is answered from the timer (never from
 * here: this runs inside a filter's or the transport's queue walk). Every
 * buffer below is released before the WebSocket filter's on_close, so ws is
 * alive here. */
static void pong_gone(void *base, void *arg)
{
    nf_ws_conn_t *ws = arg;
    nf__ws_codec_t *cx = ws->version != 76 ? ws->cx : NULL;
    bool ours = cx && cx->pong_below == base;
    free(base);
    if (!ours)
        return;
    cx->pong_below = NULL;
    if (cx->pong_owed && ws->state == NF__WS_OPEN && !nf_conn_is_closing(ws->f->conn))
        nf__ws_arm(ws, 0);
}

/* Answers a ping: one pong in memory of its own (so that pong_gone learns
 * when it has left), marked NF_BUF_PRIORITY like the close frame. */
int nf__ws_send_pong(nf_ws_conn_t *ws, const void *data, size_t len)
{
    nf__ws_codec_t *cx = nf__ws_codec(ws);
    size_t need, done;
    if (!cx)
        return -ENOMEM;
    cx->pong_owed = 0;
    int rc = nf_ws_encode_prepare(&cx->enc, NF_WS_OP_PONG, data, len, &need);
    if (rc)
        return rc;
    uint8_t *mem = malloc(need);
    nf_buf_t *b = mem ? nf_buf_wrap(mem, need, pong_gone, ws) : NULL;
    if (!b) {
        free(mem);
        return -ENOMEM;
    }
    rc = nf_ws_encode_write(&cx->enc, mem, need, &done);
    if (rc) {
        nf_buf_unref(b);
        return rc;
    }
    b->len = done;
    b->flags = NF_BUF_PRIORITY;
    cx->pong_below = mem; /* before the write: a filter may release it inside */
    return nf_filter_write_down(ws->f, b);
}

static int send_close_frame(nf_ws_conn_t *ws, unsigned code, const char *reason, size_t rlen)
{
    if (ws->version == 76) { /* Hixie-76: the closing frame has no code */
        nf_buf_t *b = nf_buf_new(2);
        if (!b)
            return -ENOMEM;
        b->base[0] = (char)0xff;
        b->base[1] = 0x00;
        b->len = 2;
        b->flags = NF_BUF_PRIORITY;
        return nf_filter_write_down(ws->f, b);
    }
    uint8_t p[125];
    size_t n = 0;
    if (code) {
        if (rlen > 123)
            rlen = 123;
        p[0] = (uint8_t)(code >> 8);
        p[1] = (uint8_t)code;
        if (rlen)
            memcpy(p + 2, reason, rlen);
        n = 2 + rlen;
    }
    return write_ctl(ws, NF_WS_OP_CLOSE, p, n);
}

/* Sends the close frame; if a flow-control policy below dropped it (priority
 * writes past max_priority_bytes), the peer will never see it: close the TCP
 * connection now as a slow consumer instead of waiting for the close timer. */
int nf__ws_send_close(nf_ws_conn_t *ws, unsigned code, const char *reason, size_t rlen)
{
    int rc = send_close_frame(ws, code, reason, rlen);
    if (rc == NF_WRITE_DROPPED) {
        nf__ws_drop(ws, NF_ESLOW);
        return NF_ESLOW;
    }
    return rc;
}

/* ---- public: sending, closing --------------------------------------------- */

static int send_check(const nf_ws_conn_t *ws)
{
    if (ws->state == NF__WS_HANDSHAKE)
        return -ENOTCONN;
    if (ws->state != NF__WS_OPEN || nf_conn_is_closing(ws->f->conn))
        return NF_ECLOSED;
    return 0;
}

/* Hixie-76: 0x00 <text> 0xFF; there is no binary frame to send. */
static int send_hixie(nf_ws_conn_t *ws, unsigned opcode, const void *data, size_t len)
{
    if (opcode != NF_WS_OP_TEXT || (len && !data))
        return -EINVAL;
    nf_buf_t *b = nf_buf_new(nf_ws_hixie_frame_size(len));
    if (!b)
        return -ENOMEM;
    b->len = nf_ws_hixie_write_text((uint8_t *)b->base, data, len);
    return nf_filter_write_down(ws->f, b);
}

NF__EXPORT int nf_ws_send(nf_ws_conn_t *ws, unsigned opcode, const void *data, size_t len)
{
    int err = send_check(ws);
    if (err)
        return err;
    if ((opcode != NF_WS_OP_TEXT && opcode != NF_WS_OP_BINARY) || ws->frag_out)
        return -EINVAL;
    if (ws->version == 76)
        return send_hixie(ws, opcode, data, len);
    return nf__ws_write_msg(ws, opcode, data, len);
}

NF__EXPORT int nf_ws_send_buf(nf_ws_conn_t *ws, nf_buf_t *b)
{
    int err = send_check(ws);
    if (!err && (ws->role != NF_WS_SERVER || ws->version == 76 || ws->frag_out))
        err = -EINVAL;
    if (err) {
        nf_buf_unref(b);
        return err;
    }
    return nf_filter_write_down(ws->f, b);
}

NF__EXPORT int nf_ws_send_fragment(nf_ws_conn_t *ws, unsigned opcode, const void *data, size_t len, int fin)
{
    int err = send_check(ws);
    if (err)
        return err;
    if (ws->frag_out ? opcode != NF_WS_OP_CONT : (opcode != NF_WS_OP_TEXT && opcode != NF_WS_OP_BINARY))
        return -EINVAL;
    if (ws->version == 76) /* no fragments in Hixie-76 */
        return -EINVAL;
    if (len && !data)
        return -EINVAL;
    int masked = ws->role == NF_WS_CLIENT;
    uint8_t key[4];
    if (masked)
        nf__ws_rand_key(NULL, key);
    size_t hl = nf_ws_header_size(len, masked);
    nf_buf_t *b = nf_buf_new(hl + len);
    if (!b)
        return -ENOMEM;
    nf_ws_write_header((uint8_t *)b->base, hl, fin ? NF_WS_FIN : 0, opcode, len, masked ? key : NULL);
    if (len) {
        if (masked)
            nf_ws_mask_copy((uint8_t *)b->base + hl, data, len, key, 0);
        else
            memcpy(b->base + hl, data, len);
    }
    b->len = hl + len;
    ws->frag_out = !fin;
    return nf_filter_write_down(ws->f, b);
}

NF__EXPORT int nf_ws_ping(nf_ws_conn_t *ws, const void *data, size_t len)
{
    int err = send_check(ws);
    if (err)
        return err;
    if (len > 125 || ws->version == 76) /* no ping in Hixie-76 */
        return -EINVAL;
    return nf__ws_write_msg(ws, NF_WS_OP_PING, data, len);
}

NF__EXPORT int nf_ws_close(nf_ws_conn_t *ws, unsigned code, const char *reason, size_t reason_len)
{
    if (ws->state == NF__WS_HANDSHAKE) {
        nf__ws_drop(ws, NF_CLOSE_LOCAL);
        return 0;
    }
    if (ws->state != NF__WS_OPEN || nf_conn_is_closing(ws->f->conn))
        return NF_ECLOSED;
    if (code ? !nf_ws_close_code_valid(code) : reason_len != 0)
        return -EINVAL;
    if (reason_len > 123 || (reason_len && !nf_ws_utf8_valid((const uint8_t *)reason, reason_len)))
        return -EINVAL;
    int rc = nf__ws_send_close(ws, code, reason, reason_len);
    if (rc < 0)
        return rc;
    ws->state = NF__WS_CLOSING;
    nf__ws_arm(ws, ws->ctx->opts.close_timeout_ms);
    return 0;
}

NF__EXPORT void nf_ws_abort(nf_ws_conn_t *ws)
{
    if (ws->state < NF__WS_DONE)
        nf_filter_close_down(ws->f, NF_HOW_CLOSE);
}
