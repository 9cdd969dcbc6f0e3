/* netframe — streaming WebSocket decoder (RFC 6455 5, 7692 6).
 *
 * Bytes go through two states: HEADER (a header is being read; only when it
 * is split across feeds are its bytes copied, into d->hdr) and PAYLOAD (the
 * payload is unmasked in place and passed on as it arrives). Control frame
 * payloads (<= 125 bytes) are gathered in d->ctl so their callbacks see them
 * whole. */
#include "netframe/ws_codec.h"
#include "base/export.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define NF__WS_DEF_LIMIT (16u * 1024 * 1024)
#define NF__WS_KEEP_BUF  (1u * 1024 * 1024)

enum { ST_HEADER, ST_PAYLOAD, ST_CLOSED, ST_FAILED };

static int why(nf_ws_decoder_t *d, int err, const char *reason)
{
    if (!d->reason)
        d->reason = reason;
    return err;
}

static int fail(nf_ws_decoder_t *d, int err)
{
    if (err > 0)
        err = NF_EWS_POLICY;
    d->state = ST_FAILED;
    d->error = err;
    d->close_code = nf_ws_close_code_for(err);
    if (!d->reason)
        d->reason = "rejected by callback";
    return err;
}

NF__EXPORT int nf_ws_decoder_init(nf_ws_decoder_t *d, const nf_ws_decoder_config_t *cfg, const nf_ws_decoder_cbs_t *cbs)
{
    void *data = d->data;
    if (!cfg || (cfg->role != NF_WS_SERVER && cfg->role != NF_WS_CLIENT) || (cfg->rsv_allowed & ~0x70u))
        return -EINVAL;
    memset(d, 0, sizeof *d);
    d->data = data;
    if (cbs)
        d->cb = *cbs;
    d->pmd = cfg->pmd;
    d->role = (uint8_t)cfg->role;
    d->max_frame = cfg->max_frame ? cfg->max_frame : NF__WS_DEF_LIMIT;
    d->max_message = cfg->max_message ? cfg->max_message : NF__WS_DEF_LIMIT;
    d->rsv_allowed = (uint8_t)(cfg->rsv_allowed | (cfg->pmd ? NF_WS_RSV1 : 0));
    d->reject_nonminimal = cfg->reject_nonminimal != 0;
    d->state = ST_HEADER;
    nf_ws_utf8_init(&d->utf8);
    return 0;
}

NF__EXPORT void nf_ws_decoder_free(nf_ws_decoder_t *d)
{
    free(d->buf);
    d->buf = NULL;
    d->buf_len = d->buf_cap = 0;
}

NF__EXPORT unsigned nf_ws_decoder_close_code(const nf_ws_decoder_t *d)
{
    return d->state == ST_FAILED ? d->close_code : 0;
}

NF__EXPORT const char *nf_ws_decoder_reason(const nf_ws_decoder_t *d)
{
    return d->state == ST_FAILED && d->reason ? d->reason : "";
}

NF__EXPORT int nf_ws_decoder_closed(const nf_ws_decoder_t *d) { return d->state == ST_CLOSED; }

static int whole_mode(const nf_ws_decoder_t *d) { return d->cb.on_message != NULL; }

static int append(nf_ws_decoder_t *d, const uint8_t *p, size_t n)
{
    if (n == 0)
        return 0;
    if (n > d->max_message - d->buf_len)
        return why(d, NF_EWS_TOOBIG, "message too big");
    size_t need = d->buf_len + n;
    if (need > d->buf_cap) {
        size_t cap = d->buf_cap ? d->buf_cap : 4096;
        while (cap < need)
            cap = cap > SIZE_MAX / 2 ? need : cap * 2;
        if (cap > d->max_message)
            cap = (size_t)d->max_message;
        uint8_t *b = realloc(d->buf, cap);
        if (!b)
            return why(d, -ENOMEM, "out of memory");
        d->buf = b;
        d->buf_cap = cap;
    }
    memcpy(d->buf + d->buf_len, p, n);
    d->buf_len += n;
    return 0;
}

/* Message bytes after unmasking and inflation. */
static int deliver(nf_ws_decoder_t *d, const uint8_t *p, size_t n)
{
    if (d->msg_opcode == NF_WS_OP_TEXT && nf_ws_utf8_feed(&d->utf8, p, n))
        return why(d, NF_EWS_UTF8, "invalid UTF-8 in text message");
    d->msg_len += n;
    if (whole_mode(d))
        return append(d, p, n);
    if (d->cb.on_data)
        return d->cb.on_data(d, p, n);
    return 0;
}

static int inflate_sink(void *arg, const uint8_t *p, size_t n) { return deliver(arg, p, n); }

static int inflate_error(nf_ws_decoder_t *d, int rc)
{
    if (rc == NF_EWS_TOOBIG)
        return why(d, rc, "message too big");
    if (rc == NF_EWS_INFLATE)
        return why(d, rc, "corrupt compressed data");
    return rc;
}

static int begin_frame(nf_ws_decoder_t *d)
{
    nf_ws_frame_header_t *h = &d->fh;
    unsigned op = h->opcode;
    if (h->rsv & ~d->rsv_allowed)
        return why(d, NF_EWS_PROTOCOL, "reserved bit set");
    if (h->nonminimal && d->reject_nonminimal)
        return why(d, NF_EWS_PROTOCOL, "length not in minimal form");
    if (d->role == NF_WS_SERVER && !h->masked)
        return why(d, NF_EWS_PROTOCOL, "unmasked frame from client");
    if (d->role == NF_WS_CLIENT && h->masked)
        return why(d, NF_EWS_PROTOCOL, "masked frame from server");
    if (op >= 8) {
        if (op > NF_WS_OP_PONG)
            return why(d, NF_EWS_PROTOCOL, "unknown control opcode");
        if (!h->fin)
            return why(d, NF_EWS_PROTOCOL, "fragmented control frame");
        if (h->len > 125)
            return why(d, NF_EWS_PROTOCOL, "control frame over 125 bytes");
        if ((h->rsv & NF_WS_RSV1) && d->pmd)
            return why(d, NF_EWS_PROTOCOL, "RSV1 on a control frame");
        d->ctl_len = 0;
    } else {
        if (op > NF_WS_OP_BINARY)
            return why(d, NF_EWS_PROTOCOL, "unknown data opcode");
        if (op == NF_WS_OP_CONT) {
            if (!d->in_message)
                return why(d, NF_EWS_PROTOCOL, "continuation without a message");
            if ((h->rsv & NF_WS_RSV1) && d->pmd)
                return why(d, NF_EWS_PROTOCOL, "RSV1 on a continuation frame");
        } else if (d->in_message) {
            return why(d, NF_EWS_PROTOCOL, "new message inside a fragmented one");
        }
        if (h->len > d->max_frame)
            return why(d, NF_EWS_TOOBIG, "frame too big");
        if (op != NF_WS_OP_CONT) {
            d->in_message = 1;
            d->msg_opcode = (uint8_t)op;
            d->msg_compressed = (h->rsv & NF_WS_RSV1) && d->pmd;
            d->msg_wire = 0;
            d->msg_len = 0;
            d->buf_len = 0;
            nf_ws_utf8_init(&d->utf8);
        }
        /* Bound the wire size early; a compressed message may be slightly
         * larger on the wire than inflated (stored blocks). */
        uint64_t wire_max = d->max_message;
        if (d->msg_compressed)
            wire_max += (wire_max >> 3) + 64;
        if (h->len > wire_max - d->msg_wire)
            return why(d, NF_EWS_TOOBIG, "message too big");
        d->msg_wire += h->len;
        if (op != NF_WS_OP_CONT && !whole_mode(d) && d->cb.on_message_begin) {
            int rc = d->cb.on_message_begin(d, op, d->msg_compressed);
            if (rc)
                return rc;
        }
    }
    d->frame_pos = 0;
    d->state = ST_PAYLOAD;
    return 0;
}

static int end_message(nf_ws_decoder_t *d)
{
    int rc;
    if (d->msg_compressed) {
        rc = nf_ws_pmd_inflate(d->pmd, NULL, 0, 1, d->max_message, inflate_sink, d);
        if (rc)
            return inflate_error(d, rc);
    }
    if (d->msg_opcode == NF_WS_OP_TEXT && nf_ws_utf8_finish(&d->utf8))
        return why(d, NF_EWS_UTF8, "text message ends inside a UTF-8 sequence");
    d->in_message = 0;
    if (whole_mode(d)) {
        rc = d->cb.on_message(d, d->msg_opcode, d->buf, d->buf_len);
        if (d->buf_cap > NF__WS_KEEP_BUF) {
            free(d->buf);
            d->buf = NULL;
            d->buf_cap = 0;
        }
        d->buf_len = 0;
        return rc;
    }
    return d->cb.on_message_end ? d->cb.on_message_end(d) : 0;
}

static int end_frame(nf_ws_decoder_t *d)
{
    nf_ws_frame_header_t *h = &d->fh;
    d->state = ST_HEADER;
    switch (h->opcode) {
    case NF_WS_OP_CLOSE: {
        unsigned code;
        const char *reason;
        size_t rl;
        int rc = nf_ws_parse_close(d->ctl, d->ctl_len, &code, &reason, &rl);
        if (rc)
            return why(d, rc, rc == NF_EWS_UTF8 ? "close reason not UTF-8" : "bad close frame payload");
        d->state = ST_CLOSED;
        return d->cb.on_close ? d->cb.on_close(d, code, reason, rl) : 0;
    }
    case NF_WS_OP_PING: return d->cb.on_ping ? d->cb.on_ping(d, d->ctl, d->ctl_len) : 0;
    case NF_WS_OP_PONG: return d->cb.on_pong ? d->cb.on_pong(d, d->ctl, d->ctl_len) : 0;
    default: return h->fin ? end_message(d) : 0;
    }
}

/* n payload bytes of the current frame at p (n <= what is left of it). */
static int payload(nf_ws_decoder_t *d, uint8_t *p, size_t n)
{
    nf_ws_frame_header_t *h = &d->fh;
    if (h->masked)
        nf_ws_mask(p, n, h->mask, d->frame_pos);
    d->frame_pos += n;
    if (h->opcode >= 8) {
        memcpy(d->ctl + d->ctl_len, p, n);
        d->ctl_len = (uint8_t)(d->ctl_len + n);
        return 0;
    }
    if (d->msg_compressed) {
        int rc = nf_ws_pmd_inflate(d->pmd, p, n, 0, d->max_message, inflate_sink, d);
        return inflate_error(d, rc);
    }
    return deliver(d, p, n);
}

NF__EXPORT int nf_ws_decoder_feed(nf_ws_decoder_t *d, uint8_t *buf, size_t len)
{
    size_t i = 0;
    int rc;
    if (d->state == ST_FAILED)
        return NF_EWS_CLOSED;
    while (i < len && d->state != ST_CLOSED) {
        if (d->state == ST_HEADER) {
            int hl;
            if (d->hdr_have == 0) {
                hl = nf_ws_parse_header(buf + i, len - i, &d->fh);
                if (hl == 0) {
                    d->hdr_have = (uint8_t)(len - i);
                    memcpy(d->hdr, buf + i, len - i);
                    return 0;
                }
                if (hl < 0)
                    return fail(d, why(d, hl, "64-bit length with MSB set"));
                i += (size_t)hl;
            } else {
                size_t have = d->hdr_have;
                size_t take = sizeof d->hdr - have;
                if (take > len - i)
                    take = len - i;
                memcpy(d->hdr + have, buf + i, take);
                hl = nf_ws_parse_header(d->hdr, have + take, &d->fh);
                if (hl == 0) {
                    d->hdr_have = (uint8_t)(have + take);
                    return 0;
                }
                if (hl < 0)
                    return fail(d, why(d, hl, "64-bit length with MSB set"));
                i += (size_t)hl - have;
                d->hdr_have = 0;
            }
            if ((rc = begin_frame(d)) != 0)
                return fail(d, rc);
            nf_ws_frame_header_t *h = &d->fh;
            /* Whole-message mode, one-frame message entirely here: validate
             * and hand it over without a copy. */
            if (h->fin && h->opcode <= NF_WS_OP_BINARY && h->opcode != NF_WS_OP_CONT && !d->msg_compressed &&
                whole_mode(d) && h->len <= len - i) {
                size_t n = (size_t)h->len;
                uint8_t *p = buf + i;
                if (h->masked)
                    nf_ws_mask(p, n, h->mask, 0);
                i += n;
                d->state = ST_HEADER;
                d->in_message = 0;
                if (h->opcode == NF_WS_OP_TEXT && !nf_ws_utf8_valid(p, n))
                    return fail(d, why(d, NF_EWS_UTF8, "invalid UTF-8 in text message"));
                d->msg_len = n;
                if ((rc = d->cb.on_message(d, h->opcode, p, n)) != 0)
                    return fail(d, rc);
                continue;
            }
            if (h->len == 0 && (rc = end_frame(d)) != 0)
                return fail(d, rc);
            continue;
        }
        /* ST_PAYLOAD */
        uint64_t left = d->fh.len - d->frame_pos;
        size_t n = len - i;
        if (n > left)
            n = (size_t)left;
        rc = payload(d, buf + i, n);
        i += n;
        if (rc)
            return fail(d, rc);
        if (d->frame_pos == d->fh.len && (rc = end_frame(d)) != 0)
            return fail(d, rc);
    }
    return 0;
}

NF__EXPORT int nf_ws_decoder_at_rest(const nf_ws_decoder_t *d)
{
    return d->state == ST_HEADER && d->hdr_have == 0 && !d->in_message;
}
