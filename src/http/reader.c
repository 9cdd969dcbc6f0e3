/* netframe — sans-I/O request stream reader: heads, bodies by Content-Length
 * or chunked coding, trailers, pipelining (see netframe/http.h).
 *
 * A head is parsed in place when one input holds all of it; otherwise the
 * bytes are gathered in the reader's buffer (bounded by max_head) and the
 * head parser runs again on the longer buffer with its last_len fast path.
 * Bodies are never copied. The chunked decoder is a byte state machine, so
 * a chunk-size line or a trailer cut anywhere gives the same answer. */
#include <errno.h>
#include "base/export.h"
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "netframe/http.h"

#define DEF_MAX_HEADERS 64
#define DEF_MAX_BODY    ((uint64_t)1024 * 1024)
#define DEF_MAX_TRAILER 8192
#define DEF_CHUNK_LINE  1024
#define DEF_MAX_HEAD    65536

enum { ST_HEAD, ST_BODY_CL, ST_CHUNKED, ST_END, ST_ERROR };
enum { CS_SIZE, CS_BWS, CS_EXT, CS_SIZE_LF, CS_DATA, CS_DATA_CR, CS_DATA_LF, CS_TRAILER };

static unsigned char lc(unsigned char c) { return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c; }

static int ieqn(const char *a, size_t n, const char *lit)
{
    if (strlen(lit) != n)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (lc((unsigned char)a[i]) != (unsigned char)lit[i])
            return 0;
    return 1;
}

NF__EXPORT int nf_http_reader_init(nf_http_reader_t *r, const nf_http_reader_config_t *cfg)
{
    memset(r, 0, sizeof(*r));
    if (cfg)
        r->priv.cfg = *cfg;
    nf_http_reader_config_t *c = &r->priv.cfg;
    if (!c->max_headers)
        c->max_headers = DEF_MAX_HEADERS;
    if (!c->max_body)
        c->max_body = DEF_MAX_BODY;
    if (!c->max_trailer)
        c->max_trailer = DEF_MAX_TRAILER;
    if (!c->max_chunk_line)
        c->max_chunk_line = DEF_CHUNK_LINE;
    if (!c->head.max_head)
        c->head.max_head = DEF_MAX_HEAD;
    r->priv.headers = calloc(2 * c->max_headers, sizeof(nf_http_header_t));
    if (!r->priv.headers)
        return -ENOMEM;
    r->max_body = c->max_body;
    r->priv.state = ST_HEAD;
    return 0;
}

NF__EXPORT void nf_http_reader_free(nf_http_reader_t *r)
{
    free(r->priv.headers);
    free(r->priv.hbuf);
    free(r->priv.tbuf);
    r->priv.headers = NULL;
    r->priv.hbuf = r->priv.tbuf = NULL;
}

static size_t fail(nf_http_reader_t *r, nf_http_event_t *ev, int status, int code, size_t used)
{
    r->priv.state = ST_ERROR;
    r->priv.err_status = status;
    r->priv.err_code = code;
    ev->type = NF_HTTP_EV_ERROR;
    ev->status = status;
    ev->error = code;
    return used;
}

/* Content-Length: every element of every field must be 1*DIGIT and all
 * must be equal (RFC 9112 6.3 item 5: "42, 42" is one length). */
static int content_length(const nf_http_request_t *q, int *present, uint64_t *out)
{
    *present = 0;
    for (size_t i = 0; i < q->num_headers; i++) {
        const nf_http_header_t *h = &q->headers[i];
        if (!ieqn(h->name, h->name_len, "content-length"))
            continue;
        size_t k = 0;
        int elems = 0;
        while (k <= h->value_len) {
            while (k < h->value_len && (h->value[k] == ' ' || h->value[k] == '\t'))
                k++;
            uint64_t v = 0;
            int nd = 0;
            while (k < h->value_len && h->value[k] >= '0' && h->value[k] <= '9') {
                if (v > (UINT64_MAX >> 2) / 10)
                    return -1; /* overflow: past 2^62 */
                v = v * 10 + (uint64_t)(h->value[k] - '0');
                k++;
                nd++;
            }
            while (k < h->value_len && (h->value[k] == ' ' || h->value[k] == '\t'))
                k++;
            if (!nd || (k < h->value_len && h->value[k] != ','))
                return -1;
            if (*present && v != *out)
                return -1;
            *present = 1;
            *out = v;
            elems++;
            k++; /* the comma, or past the end */
        }
        if (!elems)
            return -1;
    }
    return 0;
}

/* Transfer-Encoding: 0 chunked last and once; else the status to answer. */
static int transfer_encoding(const nf_http_request_t *q)
{
    int nchunked = 0, other = 0, last_chunked = 0, any = 0;
    for (size_t i = 0; i < q->num_headers; i++) {
        const nf_http_header_t *h = &q->headers[i];
        if (!ieqn(h->name, h->name_len, "transfer-encoding"))
            continue;
        size_t k = 0;
        while (k < h->value_len) {
            while (k < h->value_len && (h->value[k] == ' ' || h->value[k] == '\t'))
                k++;
            size_t s = k;
            while (k < h->value_len && h->value[k] != ',')
                k++;
            size_t e = k;
            while (e > s && (h->value[e - 1] == ' ' || h->value[e - 1] == '\t'))
                e--;
            k++;
            if (e == s)
                continue;
            any = 1;
            if (ieqn(h->value + s, e - s, "chunked")) {
                nchunked++;
                last_chunked = 1;
            } else {
                other = 1;
                last_chunked = 0;
            }
        }
    }
    if (!any || !last_chunked || nchunked > 1)
        return 400;
    return other ? 501 : 0;
}

/* The framing of a parsed head (RFC 9112 6.1-6.3), connection options. */
static int on_head(nf_http_reader_t *r)
{
    nf_http_request_t *q = &r->req;
    size_t nte = nf_http_count_headers(q->headers, q->num_headers, "transfer-encoding");
    int has_cl = 0;
    uint64_t cl = 0;
    if (content_length(q, &has_cl, &cl) < 0)
        return 400;
    r->chunked = 0;
    r->content_length = 0;
    if (nte) {
        if (has_cl || q->minor_version == 0)
            return 400;
        int st = transfer_encoding(q);
        if (st)
            return st;
        r->chunked = 1;
    } else if (has_cl) {
        r->content_length = cl;
    }
    int close = nf_http_headers_have_token(q->headers, q->num_headers, "connection", "close");
    if (q->minor_version >= 1)
        r->keep_alive = !close;
    else
        r->keep_alive = !close && nf_http_headers_have_token(q->headers, q->num_headers, "connection", "keep-alive");
    const nf_http_header_t *ex = nf_http_find_header(q->headers, q->num_headers, "expect");
    r->expect_continue = q->minor_version >= 1 && ex && ieqn(ex->value, ex->value_len, "100-continue");
    r->upgrade = nf_http_find_header(q->headers, q->num_headers, "upgrade") &&
                 nf_http_headers_have_token(q->headers, q->num_headers, "connection", "upgrade");
    return 0;
}

static int grow(char **buf, size_t *cap, size_t need, size_t max)
{
    if (need <= *cap)
        return 0;
    size_t n = *cap ? *cap : 1024;
    while (n < need)
        n *= 2;
    if (n > max)
        n = max;
    char *p = realloc(*buf, n);
    if (!p)
        return -ENOMEM;
    *buf = p;
    *cap = n;
    return 0;
}

/* The head: parsed in place when the input holds all of it, else gathered
 * in hbuf. Either way the parser sees at most the first max_head bytes, so
 * the answer does not depend on the cut; a head still incomplete at
 * max_head bytes is 431. */
static size_t read_head(nf_http_reader_t *r, const char *data, size_t len, nf_http_event_t *ev)
{
    nf_http_reader_config_t *c = &r->priv.cfg;
    size_t max = c->head.max_head;
    size_t old = r->priv.hlen;
    if (!old) {
        /* A new head: the views of the last one (into hbuf, tbuf) are no
         * longer promised, so an idle keep-alive connection does not keep
         * a large head buffer or a trailer buffer. */
        if (r->priv.hcap > 4096) {
            free(r->priv.hbuf);
            r->priv.hbuf = NULL;
            r->priv.hcap = 0;
        }
        free(r->priv.tbuf);
        r->priv.tbuf = NULL;
    }
    size_t room = max - old;
    size_t used = len < room ? len : room;
    const char *buf = data;
    size_t blen = used;
    if (old) {
        if (grow(&r->priv.hbuf, &r->priv.hcap, old + used, max) < 0)
            return fail(r, ev, 500, -ENOMEM, 0);
        memcpy(r->priv.hbuf + old, data, used);
        buf = r->priv.hbuf;
        blen = old + used;
    }
    int rc = nf_http_parse_request(buf, blen, old, &r->req, r->priv.headers, c->max_headers, &c->head);
    if (rc == NF_EHTTP_INCOMPLETE && blen >= max)
        rc = NF_EHTTP_TOOLARGE;
    if (rc == NF_EHTTP_INCOMPLETE) {
        if (!old) {
            if (grow(&r->priv.hbuf, &r->priv.hcap, used, max) < 0)
                return fail(r, ev, 500, -ENOMEM, 0);
            memcpy(r->priv.hbuf, data, used);
        }
        r->priv.hlen = blen;
        ev->type = NF_HTTP_EV_MORE;
        return used;
    }
    if (rc < 0)
        return fail(r, ev, nf_http_error_status(rc), rc, 0);
    r->priv.hlen = 0;
    r->head_len = (size_t)rc;
    r->body_read = 0;
    r->trailers = NULL;
    r->num_trailers = 0;
    r->max_body = c->max_body;
    int st = on_head(r);
    if (st)
        return fail(r, ev, st, NF_EHTTP_BAD, 0);
    if (r->chunked) {
        r->priv.state = ST_CHUNKED;
        r->priv.cstate = CS_SIZE;
        r->priv.csize = 0;
        r->priv.ndig = 0;
        r->priv.line_len = 0;
    } else if (r->content_length) {
        r->priv.state = ST_BODY_CL;
        r->priv.left = UINT64_MAX; /* the limit is checked at the next call */
    } else {
        r->priv.state = ST_END;
    }
    ev->type = NF_HTTP_EV_HEAD;
    return (size_t)rc - old;
}

static int hexval(unsigned char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    ch = lc(ch);
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    return -1;
}

static size_t end_message(nf_http_reader_t *r, nf_http_event_t *ev, size_t used)
{
    r->priv.state = ST_HEAD;
    ev->type = NF_HTTP_EV_END;
    return used;
}

/* The chunked body, byte by byte outside chunk data. The trailer section is
 * gathered (bounded by max_trailer), its line ends checked as they arrive,
 * and parsed whole at its empty line. Over 100 lines on purpose: one state
 * machine over RFC 9112 section 7.1's grammar, a case per state, where a cut
 * may fall between any two bytes; split into functions, every piece would
 * need the whole state and the same early returns. */
static size_t read_chunked(nf_http_reader_t *r, const char *data, size_t len, nf_http_event_t *ev)
{
    nf_http_reader_config_t *c = &r->priv.cfg;
    size_t i = 0;
    while (i < len) {
        unsigned char ch = (unsigned char)data[i];
        switch (r->priv.cstate) {
        case CS_DATA: {
            uint64_t n = len - i;
            if (n > r->priv.left)
                n = r->priv.left;
            r->priv.left -= n;
            r->body_read += n;
            if (!r->priv.left)
                r->priv.cstate = CS_DATA_CR;
            ev->type = NF_HTTP_EV_BODY;
            ev->data = data + i;
            ev->len = (size_t)n;
            return i + (size_t)n;
        }
        case CS_DATA_CR:
            if (ch != '\r')
                return fail(r, ev, 400, NF_EHTTP_BAD, i);
            r->priv.cstate = CS_DATA_LF;
            i++;
            continue;
        case CS_DATA_LF:
            if (ch != '\n')
                return fail(r, ev, 400, NF_EHTTP_BAD, i);
            r->priv.cstate = CS_SIZE;
            r->priv.csize = 0;
            r->priv.ndig = 0;
            r->priv.line_len = 0;
            i++;
            continue;
        case CS_TRAILER: {
            if (!r->priv.tbuf && !(r->priv.tbuf = malloc(c->max_trailer)))
                return fail(r, ev, 500, -ENOMEM, i);
            if (r->priv.tlen >= c->max_trailer)
                return fail(r, ev, 431, NF_EHTTP_TOOLARGE, i);
            r->priv.tbuf[r->priv.tlen++] = (char)ch;
            i++;
            if (r->priv.prev_cr) {
                if (ch != '\n')
                    return fail(r, ev, 400, NF_EHTTP_BAD, i);
                r->priv.prev_cr = 0;
                if (r->priv.line_len == 0) {
                    size_t num = 0;
                    nf_http_limits_t lim = {0, c->head.max_field, c->max_trailer};
                    int rc = nf__http_parse_fields(r->priv.tbuf, r->priv.tlen, &lim, r->priv.headers + c->max_headers,
                                                   c->max_headers, &num);
                    if (rc < 0)
                        return fail(r, ev, rc == NF_EHTTP_TOOLARGE ? 431 : 400,
                                    rc == NF_EHTTP_TOOLARGE ? NF_EHTTP_TOOLARGE : NF_EHTTP_BAD, i);
                    r->trailers = num ? r->priv.headers + c->max_headers : NULL;
                    r->num_trailers = num;
                    return end_message(r, ev, i);
                }
                r->priv.line_len = 0;
            } else if (ch == '\r') {
                r->priv.prev_cr = 1;
            } else if (ch == '\n') {
                return fail(r, ev, 400, NF_EHTTP_BAD, i);
            } else {
                r->priv.line_len++;
            }
            continue;
        }
        default: break;
        }
        /* the chunk-size line: 1*HEXDIG [BWS ; ext] CRLF */
        if (++r->priv.line_len > c->max_chunk_line)
            return fail(r, ev, 400, NF_EHTTP_BAD, i);
        i++;
        switch (r->priv.cstate) {
        case CS_SIZE: {
            int d = hexval(ch);
            if (d >= 0) {
                if (r->priv.csize >> 60)
                    return fail(r, ev, 400, NF_EHTTP_BAD, i); /* overflow */
                r->priv.csize = r->priv.csize * 16 + (uint64_t)d;
                r->priv.ndig = 1;
            } else if (!r->priv.ndig) {
                return fail(r, ev, 400, NF_EHTTP_BAD, i);
            } else if (ch == ' ' || ch == '\t') {
                r->priv.cstate = CS_BWS;
            } else if (ch == ';') {
                r->priv.cstate = CS_EXT;
            } else if (ch == '\r') {
                r->priv.cstate = CS_SIZE_LF;
            } else {
                return fail(r, ev, 400, NF_EHTTP_BAD, i);
            }
            break;
        }
        case CS_BWS:
            if (ch == ';')
                r->priv.cstate = CS_EXT;
            else if (ch == '\r')
                r->priv.cstate = CS_SIZE_LF;
            else if (ch != ' ' && ch != '\t')
                return fail(r, ev, 400, NF_EHTTP_BAD, i);
            break;
        case CS_EXT:
            if (ch == '\r')
                r->priv.cstate = CS_SIZE_LF;
            else if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
                return fail(r, ev, 400, NF_EHTTP_BAD, i);
            break;
        case CS_SIZE_LF:
            if (ch != '\n')
                return fail(r, ev, 400, NF_EHTTP_BAD, i);
            if (r->priv.csize == 0) {
                r->priv.cstate = CS_TRAILER;
                r->priv.tlen = 0;
                r->priv.line_len = 0;
                r->priv.prev_cr = 0;
                break;
            }
            if (r->max_body != NF_HTTP_UNLIMITED &&
                (r->priv.csize > r->max_body || r->body_read > r->max_body - r->priv.csize))
                return fail(r, ev, 413, NF_EHTTP_TOOLARGE, i);
            r->priv.left = r->priv.csize;
            r->priv.cstate = CS_DATA;
            break;
        default: break;
        }
    }
    ev->type = NF_HTTP_EV_MORE;
    return len;
}

NF__EXPORT size_t nf_http_reader_next(nf_http_reader_t *r, const char *data, size_t len, nf_http_event_t *ev)
{
    ev->data = NULL;
    ev->len = 0;
    ev->status = 0;
    ev->error = 0;
    switch (r->priv.state) {
    case ST_ERROR:
        ev->type = NF_HTTP_EV_ERROR;
        ev->status = r->priv.err_status;
        ev->error = r->priv.err_code;
        return 0;
    case ST_END: return end_message(r, ev, 0);
    case ST_BODY_CL: {
        if (r->priv.left == UINT64_MAX) {
            if (r->max_body != NF_HTTP_UNLIMITED && r->content_length > r->max_body)
                return fail(r, ev, 413, NF_EHTTP_TOOLARGE, 0);
            r->priv.left = r->content_length;
        }
        if (!len) {
            ev->type = NF_HTTP_EV_MORE;
            return 0;
        }
        uint64_t n = len;
        if (n > r->priv.left)
            n = r->priv.left;
        r->priv.left -= n;
        r->body_read += n;
        if (!r->priv.left)
            r->priv.state = ST_END;
        ev->type = NF_HTTP_EV_BODY;
        ev->data = data;
        ev->len = (size_t)n;
        return (size_t)n;
    }
    case ST_CHUNKED: return read_chunked(r, data, len, ev);
    default: break;
    }
    if (!len) {
        ev->type = NF_HTTP_EV_MORE;
        return 0;
    }
    return read_head(r, data, len, ev);
}
