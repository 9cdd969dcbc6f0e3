/* netframe — the HTTP/1.1 server's responses: the per-connection queue that
 * keeps them in request order, the answers the server makes itself, and the
 * program's calls (nf_http_respond, nf_http_response_*, nf_http_req_*). */
#include "http/server_private.h"

/* ---- the response queue ------------------------------------------------- */

void nf__http_req_free(hreq_t *r)
{
    free(r->head);
    free(r->out);
    free(r->body);
    free(r);
}

/* Bytes of r: to the connection when r is at the head, else kept. */
static int emit(hreq_t *r, const void *p, size_t n)
{
    hconn_t *hc = r->hc;
    if (!hc)
        return NF_ECLOSED;
    if (hc->qhead == r && !r->out_len) {
        int rc = nf_conn_write(hc->c, p, n);
        return rc < 0 ? rc : 0;
    }
    return nf__http_append(&r->out, &r->out_len, &r->out_cap, p, n);
}

void nf__http_advance(hconn_t *hc);

/* Reading stops for good (an error, Connection: close, an upgrade). */
static void stop_reading(hconn_t *hc)
{
    hc->stopped = 1;
    free(hc->stash);
    hc->stash = NULL;
    hc->stash_len = 0;
    if (!hc->reading_stopped) {
        hc->reading_stopped = 1;
        nf_conn_read_stop(hc->c);
    }
}

void nf__http_unlink_req(hconn_t *hc, hreq_t *r)
{
    hreq_t **pp = &hc->qhead;
    hreq_t *prev = NULL;
    while (*pp && *pp != r) {
        prev = *pp;
        pp = &(*pp)->next;
    }
    if (!*pp)
        return;
    *pp = r->next;
    if (hc->qtail == r)
        hc->qtail = prev;
    hc->nq--;
    if (hc->cur == r)
        hc->cur = NULL;
}

/* Sends what the head requests have ready, frees the finished ones. */
void nf__http_advance(hconn_t *hc)
{
    if (hc->in_advance) {
        hc->again = 1;
        return;
    }
    hc->in_advance = 1;
    do {
        hc->again = 0;
        hreq_t *r;
        while ((r = hc->qhead)) {
            if (r->out_len) {
                nf_conn_write(hc->c, r->out, r->out_len);
                r->out_len = 0;
            }
            if (r->resp != R_DONE || !r->req_done) {
                if (r->waiting && nf_conn_queued(hc->c) <= hc->srv->cfg.stream_high_water) {
                    r->waiting = 0;
                    if (r->ops && r->ops->on_drain)
                        r->ops->on_drain(&r->pub);
                }
                break;
            }
            hc->qhead = r->next;
            if (!hc->qhead)
                hc->qtail = NULL;
            hc->nq--;
            if (hc->cur == r)
                hc->cur = NULL;
            if (!r->keep_alive)
                hc->close_after = 1;
            nf__http_req_free(r);
        }
    } while (hc->again);
    hc->in_advance = 0;
    if (!hc->qhead && hc->close_after) {
        if (!hc->lingering) {
            /* Lingering close: shut the write side once the answer is
             * sent and drop what the peer still sends until its EOF, so
             * that unread bytes do not make the kernel reset the
             * connection before the peer has read the answer. Bounded
             * by write_timeout_ms and 1 MiB. */
            stop_reading(hc);
            hc->lingering = 1;
            hc->reading_stopped = 0;
            nf_conn_read_start(hc->c);
            nf_conn_shutdown(hc->c);
            nf__http_arm(hc, T_LINGER);
        }
        return;
    }
    if (hc->paused_pipe && hc->nq < hc->srv->cfg.max_pipeline)
        nf__http_kick(hc);
    nf__http_rearm(hc);
}

/* ---- answers the server makes ------------------------------------------ */

static int write_head(hreq_t *r, int status, const nf_http_header_t *h, size_t n, int64_t length)
{
    hconn_t *hc = r->hc;
    char buf[1024];
    nf_http_header_t ext[4];
    size_t ne = 0;
    for (size_t i = 0; i < n; i++) {
        static const char *const own[] = {"content-length", "transfer-encoding", "connection", "date"};
        for (size_t k = 0; k < 4; k++)
            if (nf_http_find_header(&h[i], 1, own[k]))
                return NF_EHTTP_INVALID;
    }
    ext[ne++] = (nf_http_header_t){"Date", 4, nf__http_date(), 29};
    if (hc && hc->srv->cfg.server_name)
        ext[ne++] = (nf_http_header_t){"Server", 6, hc->srv->cfg.server_name, strlen(hc->srv->cfg.server_name)};
    int close = !r->keep_alive || (hc && hc->close_after);
    r->no_body = r->is_head || status < 200 || status == 204 || status == 304;
    char lenbuf[24];
    r->chunked = 0;
    r->has_len = 0;
    if (status >= 200 && status != 204 && status != 304) {
        if (length >= 0) {
            int k = snprintf(lenbuf, sizeof lenbuf, "%lld", (long long)length);
            ext[ne++] = (nf_http_header_t){"Content-Length", 14, lenbuf, (size_t)k};
            r->has_len = 1;
            r->left = r->is_head ? 0 : (uint64_t)length;
        } else if (r->pub.minor_version >= 1) {
            ext[ne++] = (nf_http_header_t){"Transfer-Encoding", 17, "chunked", 7};
            r->chunked = !r->is_head;
        } else {
            close = 1; /* HTTP/1.0, length unknown: the close ends the body */
        }
    }
    if (close) {
        r->keep_alive = 0;
        ext[ne++] = (nf_http_header_t){"Connection", 10, "close", 5};
    } else if (r->pub.minor_version == 0) {
        ext[ne++] = (nf_http_header_t){"Connection", 10, "keep-alive", 10};
    }
    /* status line + program's headers, then ours */
    int k = nf_http_write_response(buf, sizeof buf, status, NULL, h, n);
    char *big = NULL;
    size_t cap = sizeof buf;
    while (k == NF_EHTTP_NOSPACE && cap < (1u << 20)) {
        cap *= 4;
        free(big);
        big = malloc(cap + 512);
        if (!big)
            return -ENOMEM;
        k = nf_http_write_response(big, cap, status, NULL, h, n);
    }
    if (k < 0) {
        free(big);
        return k;
    }
    char *p = big ? big : buf;
    size_t room = (big ? cap + 512 : sizeof buf) - ((size_t)k - 2);
    /* replace the final CRLF with our headers and a CRLF */
    size_t len = (size_t)k - 2;
    for (size_t i = 0; i < ne; i++) {
        size_t need = ext[i].name_len + 2 + ext[i].value_len + 2;
        if (need + 2 > room) {
            free(big);
            return NF_EHTTP_NOSPACE;
        }
        memcpy(p + len, ext[i].name, ext[i].name_len);
        len += ext[i].name_len;
        memcpy(p + len, ": ", 2);
        len += 2;
        memcpy(p + len, ext[i].value, ext[i].value_len);
        len += ext[i].value_len;
        memcpy(p + len, "\r\n", 2);
        len += 2;
        room -= need;
    }
    memcpy(p + len, "\r\n", 2);
    len += 2;
    int rc = emit(r, p, len);
    free(big);
    return rc;
}

hreq_t *nf__http_new_req(hconn_t *hc)
{
    hreq_t *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->hc = hc;
    r->pub.server = hc->srv;
    r->pub.conn = hc->c;
    r->pub.minor_version = 1;
    if (hc->qtail)
        hc->qtail->next = r;
    else
        hc->qhead = r;
    hc->qtail = r;
    hc->nq++;
    return r;
}

static void finish(hreq_t *r)
{
    r->resp = R_DONE;
    if (r->hc) {
        s_add(&r->hc->srv->responses, 1);
        nf__http_advance(r->hc);
    } else {
        nf__http_req_free(r);
    }
}

/* An answer of the server's own (errors, timeouts), in order, then close. */
void nf__http_answer(hconn_t *hc, int status, int reason)
{
    s_add(&hc->srv->errors, 1);
    hreq_t *cur = hc->cur;
    if (cur && !cur->req_done) {
        /* the request being read dies with its framing */
        nf__http_unlink_req(hc, cur);
        if (cur->called && cur->resp != R_DONE) {
            cur->hc = NULL;
            cur->pub.conn = NULL;
            if (cur->ops && cur->ops->on_abort)
                cur->ops->on_abort(&cur->pub, reason);
        } else {
            nf__http_req_free(cur);
        }
    }
    hc->cur = NULL;
    stop_reading(hc);
    hc->close_after = 1;
    hreq_t *r = nf__http_new_req(hc);
    if (!r) {
        nf_conn_close(hc->c);
        return;
    }
    r->req_done = 1;
    r->keep_alive = 0;
    r->called = 1;
    const char *phrase = nf_http_reason(status);
    nf_http_header_t ct = {"Content-Type", 12, "text/plain", 10};
    char body[64];
    int bl = snprintf(body, sizeof body, "%d %s\n", status, phrase);
    write_head(r, status, &ct, 1, bl);
    emit(r, body, (size_t)bl);
    finish(r);
}

/* ---- the program's calls ------------------------------------------------ */

static hreq_t *R(nf_http_req_t *p) { return (hreq_t *)(void *)p; }

NF__EXPORT void nf_http_req_set_ops(nf_http_req_t *r, const nf_http_req_ops_t *ops) { R(r)->ops = ops; }

NF__EXPORT const char *nf_http_req_param(const nf_http_req_t *r, const char *name, size_t *len)
{
    size_t nl = strlen(name);
    for (unsigned i = 0; i < r->num_params; i++)
        if (r->params[i].name_len == nl && memcmp(r->params[i].name, name, nl) == 0) {
            if (len)
                *len = r->params[i].value_len;
            return r->params[i].value;
        }
    return NULL;
}

NF__EXPORT int nf_http_req_pause(nf_http_req_t *pr)
{
    hreq_t *r = R(pr);
    if (!r->hc)
        return NF_ECLOSED;
    if (r->hc->cur == r && !r->req_done) {
        r->hc->paused_body = 1;
        if (!r->hc->reading_stopped) {
            r->hc->reading_stopped = 1;
            nf_conn_read_stop(r->hc->c);
        }
        nf_timer_stop(&r->hc->timer); /* the program holds the body, not the peer */
        r->hc->tstate = T_NONE;
    }
    return 0;
}

NF__EXPORT int nf_http_req_resume(nf_http_req_t *pr)
{
    hreq_t *r = R(pr);
    if (!r->hc)
        return NF_ECLOSED;
    if (r->hc->paused_body) {
        r->hc->paused_body = 0;
        nf__http_kick(r->hc);
    }
    return 0;
}

NF__EXPORT int nf_http_response_start(nf_http_req_t *pr, int status, const nf_http_header_t *headers, size_t n,
                                      int64_t length)
{
    hreq_t *r = R(pr);
    if (r->resp != R_NONE)
        return NF_EHTTP_INVALID;
    if (!r->hc) {
        r->resp = R_STREAM;
        return NF_ECLOSED;
    }
    int rc = write_head(r, status, headers, n, length);
    if (rc == NF_EHTTP_INVALID || rc == NF_EHTTP_NOSPACE)
        return NF_EHTTP_INVALID;
    r->resp = R_STREAM;
    return rc < 0 ? NF_ECLOSED : 0;
}

NF__EXPORT int nf_http_response_write(nf_http_req_t *pr, const void *data, size_t len)
{
    hreq_t *r = R(pr);
    if (!r->hc)
        return NF_ECLOSED;
    if (r->resp != R_STREAM)
        return NF_EHTTP_INVALID;
    if (r->no_body || !len)
        return 0;
    if (r->has_len) {
        if (len > r->left)
            return NF_EHTTP_INVALID;
        r->left -= len;
    }
    int rc;
    if (r->chunked) {
        char sz[20];
        int k = snprintf(sz, sizeof sz, "%zx\r\n", len);
        rc = emit(r, sz, (size_t)k);
        if (!rc)
            rc = emit(r, data, len);
        if (!rc)
            rc = emit(r, "\r\n", 2);
    } else {
        rc = emit(r, data, len);
    }
    if (rc < 0)
        return NF_ECLOSED;
    hconn_t *hc = r->hc;
    size_t q = hc->qhead == r ? nf_conn_queued(hc->c) : r->out_len;
    if (q > hc->srv->cfg.stream_high_water) {
        r->waiting = 1;
        if (hc->qhead == r)
            nf__http_arm(hc, T_WRITE);
        return NF_HTTP_WAIT;
    }
    return NF_HTTP_WRITE_OK;
}

NF__EXPORT int nf_http_response_end(nf_http_req_t *pr)
{
    hreq_t *r = R(pr);
    if (!r->hc) {
        nf__http_req_free(r);
        return NF_ECLOSED;
    }
    if (r->resp != R_STREAM)
        return NF_EHTTP_INVALID;
    if (r->chunked)
        emit(r, "0\r\n\r\n", 5);
    else if (r->has_len && r->left)
        r->keep_alive = 0, r->hc->close_after = 1; /* short body: the framing is broken */
    if (!r->req_done) {
        /* answered before the body was read: close after it */
        r->keep_alive = 0;
        r->hc->close_after = 1;
        if (r->hc->cur == r) {
            r->hc->cur = NULL;
            r->req_done = 1;
            stop_reading(r->hc);
        }
    }
    r->waiting = 0;
    finish(r);
    return 0;
}

NF__EXPORT int nf_http_respond(nf_http_req_t *pr, int status, const nf_http_header_t *headers, size_t n,
                               const void *body, size_t len)
{
    hreq_t *r = R(pr);
    if (!r->hc) {
        nf__http_req_free(r);
        return NF_ECLOSED;
    }
    int rc = nf_http_response_start(pr, status, headers, n,
                                    (status >= 200 && status != 204 && status != 304) ? (int64_t)len : -1);
    if (rc == NF_EHTTP_INVALID)
        return rc;
    if (rc == 0 && !r->no_body && len)
        rc = emit(r, body, len) < 0 ? NF_ECLOSED : 0;
    if (r->has_len)
        r->left = 0;
    int e = nf_http_response_end(pr);
    return rc ? rc : e;
}
