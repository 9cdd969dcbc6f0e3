/* netframe — the TLS filter (see tls.h for the contract).
 *
 * One SSL object per connection, attached to a BIO of our own: reading from
 * it takes bytes from the ciphertext handed up by the filter below (valid
 * for that call only: OpenSSL's record layer keeps a partial record in its
 * own buffer), writing to it appends to one nf_buf_t that goes down after
 * each OpenSSL call. Decrypted bytes go up from a per-thread scratch buffer.
 * SSL_MODE_RELEASE_BUFFERS lets an idle connection hold no record buffers.
 *
 * Records OpenSSL makes by itself while reading (answers to a KeyUpdate
 * with update_requested, alerts, tickets) are not the program's writes: no
 * flow filter above sees them. The filter keeps a reference to each such
 * buffer it sent down and counts the bytes still held below (a filter or
 * the transport's queue: the kernel has not taken them); past
 * max_self_bytes the peer is asking for more than it reads, and the
 * connection closes with NF_ESLOW.
 *
 * Public filter API only; conns_closed_slow is counted in the filter's own
 * per-loop record (nf__loop_ext), added to nf_loop_stats. */
#include <arpa/inet.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "base/export.h"
#include "core/internal.h"
#include "filter/tls_private.h"
#include "netframe/filter.h"

/* ---- the loop's counters ------------------------------------------------------ */

struct tls_loop {
    nf__loop_ext_t x;
    uint64_t closed_slow; /* conns_closed_slow, with the flow filter's */
};

static void tls_loop_stats(const nf__loop_ext_t *x, nf_loop_stats_t *out)
{
    out->conns_closed_slow += ((const tls_loop_t *)x)->closed_slow;
}

static const nf__loop_ext_ops_t tls_loop_ops = {.name = "tls", .stats = tls_loop_stats};

/* ---- per connection -------------------------------------------------------- */

static size_t out_room(const tls_t *st) { return st->out ? st->out->cap - st->out->len : 0; }

static int out_reserve(tls_t *st, size_t need)
{
    if (out_room(st) >= need)
        return 0;
    size_t have = st->out ? st->out->len : 0;
    size_t cap = st->out ? st->out->cap * 2 : 4096;
    if (cap < have + need)
        cap = have + need;
    nf_buf_t *b = nf_buf_new(cap);
    if (!b)
        return -ENOMEM;
    if (have)
        memcpy(b->base, st->out->base, have);
    b->len = have;
    nf_buf_unref(st->out);
    st->out = b;
    return 0;
}

int nf__tls_bio_write(BIO *b, const char *data, int len)
{
    tls_t *st = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    if (len <= 0)
        return 0;
    if (out_reserve(st, (size_t)len) != 0)
        return -1;
    memcpy(st->out->base + st->out->len, data, (size_t)len);
    st->out->len += (size_t)len;
    return len;
}

int nf__tls_bio_read(BIO *b, char *buf, int len)
{
    tls_t *st = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    if (st->in_len == 0) {
        BIO_set_retry_read(b);
        return -1;
    }
    size_t n = (size_t)len < st->in_len ? (size_t)len : st->in_len;
    memcpy(buf, st->in, n);
    st->in += n;
    st->in_len -= n;
    return (int)n;
}

long nf__tls_bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    (void)b;
    (void)num;
    (void)ptr;
    return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

static void set_err(tls_t *st, const char *fmt, const char *a, const char *b)
{
    if (st->err[0])
        return; /* the first reason is the one that counts */
    char tmp[400];
    int n = snprintf(tmp, sizeof tmp, fmt, a ? a : "", b ? b : "");
    size_t len = n < 0 ? 0 : (size_t)n;
    if (len >= sizeof st->err)
        len = sizeof st->err - 1;
    memcpy(st->err, tmp, len);
    st->err[len] = 0;
}

/* The reason OpenSSL gave, with the certificate check's result. */
static void set_ssl_err(tls_t *st, int sslerr)
{
    unsigned long e = ERR_peek_last_error();
    if (e) {
        const char *r = ERR_reason_error_string(e);
        long v = SSL_get_verify_result(st->ssl);
        if (v != X509_V_OK && ERR_GET_REASON(e) == SSL_R_CERTIFICATE_VERIFY_FAILED)
            set_err(st, "certificate verify failed: %s%s", X509_verify_cert_error_string(v), NULL);
        else
            set_err(st, "%s%s", r ? r : "TLS error", NULL);
    } else if (sslerr == SSL_ERROR_SYSCALL || sslerr == SSL_ERROR_ZERO_RETURN) {
        set_err(st, "peer closed the connection%s%s", st->established ? "" : " during the handshake", NULL);
    } else {
        char n[16];
        snprintf(n, sizeof n, "%d", sslerr);
        set_err(st, "TLS error %s%s", n, NULL);
    }
    ERR_clear_error();
}

static int flush_out(tls_t *st);

/* Ends the connection after a TLS failure: sends what OpenSSL queued (the
 * alert), then closes with `reason`. */
static void fail(tls_t *st, int reason)
{
    if (st->failed || nf_filter_closing(st->f))
        return;
    st->failed = true;
    nf_timer_stop(&st->timer);
    if (flush_out(st) < 0 || reason == -ETIMEDOUT || nf_filter_closing(st->f)) {
        nf_filter_fail(st->f, reason);
        return;
    }
    nf_filter_end(st->f, reason); /* the alert goes out first */
}

/* Sends the ciphertext OpenSSL produced. Returns the write's result. */
static int flush_out(tls_t *st)
{
    nf_buf_t *b = st->out;
    if (!b || b->len == 0)
        return NF_WRITE_OK;
    st->out = NULL;
    int r = nf_filter_write_down(st->f, b);
    if (r == NF_WRITE_DROPPED) { /* a record is missing: the stream is broken */
        set_err(st, "a flow filter below dropped a TLS record%s%s", NULL, NULL);
        nf_filter_fail(st->f, NF_ESLOW);
        return NF_ESLOW;
    }
    return r;
}

/* Bytes of our own records still held below; forgets the ones released. */
static size_t self_below(tls_t *st)
{
    nf__fifo_node_t **pp = &st->self.head;
    while (*pp) {
        if ((*pp)->buf->refs > 1) { /* a filter or the transport still has it */
            pp = &(*pp)->next;
            continue;
        }
        nf_buf_unref(nf__fifo_unlink(&st->self, pp));
    }
    return st->self.bytes;
}

/* Sends what OpenSSL wrote while reading (the peer's messages asked for
 * it), remembering it; closes with NF_ESLOW past max_self_bytes below. */
static int flush_self(tls_t *st)
{
    nf_buf_t *b = st->out;
    if (!b || b->len == 0)
        return NF_WRITE_OK;
    if (nf__fifo_push(&st->self, nf_buf_ref(b)) != 0)
        nf_buf_unref(b); /* out of memory: not watched */
    int r = flush_out(st);
    if (r < 0)
        return r;
    const nf_tls_ctx_t *ctx = st->f->config;
    if (self_below(st) > ctx->max_self_bytes) {
        set_err(st, "the peer does not read what its messages ask for (%s%s)", "KeyUpdate flood?", NULL);
        st->lx->closed_slow++;
        nf_filter_fail(st->f, NF_ESLOW);
        return NF_ESLOW;
    }
    return r;
}

/* Plaintext whose life is tied to the record that carries it. */
static void plain_release(void *base, void *arg)
{
    (void)base;
    nf_buf_unref(arg);
}

static int encrypt(tls_t *st, nf_buf_t *b)
{
    size_t len = b->len;
    /* room for the records of this write, so it goes down as one buffer;
     * sized to the write (a 2-byte pong must not cost a 4 KiB record buffer
     * while the flow filter and the transport count 24 bytes) */
    size_t need = len + (len / 16384 + 1) * 64;
    if (!st->out)
        st->out = nf_buf_new(need);
    if (!st->out || out_reserve(st, need) != 0) {
        nf_buf_unref(b);
        return -ENOMEM;
    }
    ERR_clear_error();
    size_t done = 0;
    int ok = len ? SSL_write_ex(st->ssl, b->base, len, &done) : 1;
    if (ok && (b->flags & NF_BUF_PRIORITY) && st->out && st->out->len && !st->out->free_cb) {
        /* a control message (pong, close frame): its records are too, and
         * the plaintext lives until they have left, so that the writer
         * above can tell whether it is still queued (WebSocket pongs) */
        st->out->flags |= NF_BUF_PRIORITY;
        st->out->free_cb = plain_release;
        st->out->free_arg = b;
    } else {
        nf_buf_unref(b);
    }
    if (!ok) {
        set_ssl_err(st, SSL_get_error(st->ssl, 0));
        fail(st, NF_ETLS);
        return NF_ECLOSED;
    }
    return flush_out(st);
}

static void send_notify(tls_t *st)
{
    if (st->sent_notify || !st->established)
        return;
    st->sent_notify = true;
    ERR_clear_error();
    SSL_shutdown(st->ssl); /* writes close_notify; the answer is not awaited here */
    ERR_clear_error();
    flush_out(st);
}

static void deliver(tls_t *st);

static void established(tls_t *st)
{
    st->established = true;
    nf_timer_stop(&st->timer);
    if (flush_out(st) < 0 || nf_filter_closing(st->f))
        return;
    /* writes made before the handshake completed, in order */
    while (!nf__fifo_empty(&st->held) && !nf_filter_closing(st->f)) {
        if (encrypt(st, nf__fifo_pop(&st->held)) < 0)
            return;
    }
    if (st->end_pending) {
        send_notify(st);
        nf_filter_close_down(st->f, NF_HOW_END);
        return;
    }
    if (st->shut_pending) {
        send_notify(st);
        nf_filter_shutdown_down(st->f);
    }
    st->opened_up = true;
    nf_filter_open_up(st->f);
}

static void handshake(tls_t *st)
{
    ERR_clear_error();
    int r = SSL_do_handshake(st->ssl);
    if (r == 1) {
        established(st);
        return;
    }
    int e = SSL_get_error(st->ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        flush_out(st);
        return;
    }
    set_ssl_err(st, e);
    fail(st, NF_ETLS);
}

static _Thread_local char scratch[16384];

/* Decrypts what the input holds and hands it up. */
static void deliver(tls_t *st)
{
    nf_conn_t *c = st->f->conn;
    /* nf_conn_keep_read would keep ciphertext: refuse it */
    nf_buf_t *cur = nf_filter_set_read_buf(st->f, NULL);
    for (;;) {
        if (nf_conn_is_closing(c) || st->failed)
            break;
        size_t n = 0;
        ERR_clear_error();
        if (SSL_read_ex(st->ssl, scratch, sizeof scratch, &n)) {
            nf_filter_read_up(st->f, scratch, n);
            continue;
        }
        int e = SSL_get_error(st->ssl, 0);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
            break;
        if (e == SSL_ERROR_ZERO_RETURN) { /* close_notify */
            ERR_clear_error();
            flush_out(st);
            if (!st->eof_up) {
                st->eof_up = true;
                nf_filter_eof_up(st->f);
            }
            break;
        }
        set_ssl_err(st, e);
        fail(st, NF_ETLS);
        break;
    }
    if (!nf_filter_closing(st->f) && !st->failed)
        flush_self(st); /* post-handshake messages, key updates, alerts */
    nf_filter_set_read_buf(st->f, cur);
}

static void fire(nf_timer_t *t)
{
    tls_t *st = t->data;
    if (st->established)
        return;
    set_err(st, "handshake timeout%s%s", NULL, NULL);
    fail(st, -ETIMEDOUT);
}

static bool is_ip(const char *s)
{
    unsigned char tmp[16];
    return inet_pton(AF_INET, s, tmp) == 1 || inet_pton(AF_INET6, s, tmp) == 1;
}

static int f_init(nf_filter_t *f)
{
    tls_t *st = f->state;
    nf_tls_ctx_t *ctx = (nf_tls_ctx_t *)f->config;
    st->f = f;
    nf_loop_t *loop = nf_conn_loop(f->conn);
    nf_timer_init(loop, &st->timer);
    st->timer.data = st;
    if (!ctx)
        return -EINVAL;
    st->lx = (tls_loop_t *)nf__loop_ext(loop, &tls_loop_ops, sizeof(tls_loop_t));
    if (!st->lx)
        return -ENOMEM;
    st->ssl = SSL_new(ctx->ssl);
    BIO *bio = st->ssl ? BIO_new(nf__tls_bio_method) : NULL;
    if (!bio) {
        ERR_clear_error();
        return -ENOMEM;
    }
    BIO_set_data(bio, st);
    SSL_set_bio(st->ssl, bio, bio);
    SSL_set_ex_data(st->ssl, nf__tls_ex_index, st);
    if (ctx->server) {
        SSL_set_accept_state(st->ssl);
        return 0;
    }
    SSL_set_connect_state(st->ssl);
    const char *host = st->host ? st->host : ctx->server_name;
    if (host) {
        bool ip = is_ip(host);
        if (!ip)
            SSL_set_tlsext_host_name(st->ssl, host);
        if (!ctx->insecure) {
            int ok = ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(st->ssl), host) : SSL_set1_host(st->ssl, host);
            if (ok != 1) {
                ERR_clear_error();
                return -ENOMEM;
            }
        }
        if (ctx->cache) {
            pthread_mutex_lock(&ctx->mu);
            for (unsigned i = 0; i < SESS_SLOTS; i++) {
                if (ctx->slots[i].host && strcmp(ctx->slots[i].host, host) == 0) {
                    SSL_set_session(st->ssl, ctx->slots[i].sess);
                    break;
                }
            }
            pthread_mutex_unlock(&ctx->mu);
        }
    } else if (!ctx->insecure) {
        set_err(st, "no server name to verify (nf_tls_set_server_name or server_name)%s%s", NULL, NULL);
        return NF_ETLS;
    }
    return 0;
}

/* Client: a ticket arrived; keep it for the next connection to this name. */
int nf__tls_new_session_cb(SSL *ssl, SSL_SESSION *sess)
{
    tls_t *st = SSL_get_ex_data(ssl, nf__tls_ex_index);
    if (!st)
        return 0;
    nf_tls_ctx_t *ctx = (nf_tls_ctx_t *)st->f->config;
    const char *host = st->host ? st->host : ctx->server_name;
    if (!host || !SSL_SESSION_is_resumable(sess))
        return 0;
    pthread_mutex_lock(&ctx->mu);
    sess_slot_t *slot = NULL;
    for (unsigned i = 0; i < SESS_SLOTS && !slot; i++)
        if (ctx->slots[i].host && strcmp(ctx->slots[i].host, host) == 0)
            slot = &ctx->slots[i];
    if (!slot) {
        slot = &ctx->slots[ctx->next_slot];
        ctx->next_slot = (ctx->next_slot + 1) % SESS_SLOTS;
        free(slot->host);
        slot->host = strdup(host);
    }
    SSL_SESSION_free(slot->sess);
    slot->sess = slot->host ? sess : NULL;
    pthread_mutex_unlock(&ctx->mu);
    return slot->host ? 1 : 0; /* 1: we keep the reference */
}

static void f_open(nf_filter_t *f)
{
    tls_t *st = f->state;
    nf_tls_ctx_t *ctx = (nf_tls_ctx_t *)f->config;
    nf_timer_start(&st->timer, fire, ctx->hs_timeout_ms, 0);
    if (!ctx->server)
        handshake(st); /* the ClientHello */
}

static void f_read(nf_filter_t *f, const char *data, size_t len)
{
    tls_t *st = f->state;
    if (st->failed)
        return;
    st->in = data;
    st->in_len = len;
    if (!st->established) {
        handshake(st);
        if (!st->established) {
            st->in_len = 0;
            return;
        }
    }
    deliver(st);
    st->in = NULL;
    st->in_len = 0;
}

static void f_eof(nf_filter_t *f)
{
    tls_t *st = f->state;
    if (st->failed)
        return;
    if (!st->established) {
        set_err(st, "peer closed the connection during the handshake%s%s", NULL, NULL);
        fail(st, NF_ETLS);
        return;
    }
    if (st->eof_up)
        return; /* close_notify was already passed up */
    set_err(st, "EOF without close_notify%s%s", NULL, NULL);
    st->eof_up = true;
    nf_filter_eof_up(f);
}

static int f_write(nf_filter_t *f, nf_buf_t *b)
{
    tls_t *st = f->state;
    if (st->failed || st->sent_notify || st->end_pending || st->shut_pending) {
        nf_buf_unref(b);
        return NF_ECLOSED;
    }
    if (st->established)
        return encrypt(st, b);
    if (nf__fifo_push(&st->held, b) != 0) {
        nf_buf_unref(b);
        return -ENOMEM;
    }
    return NF_WRITE_OK;
}

static int f_shutdown(nf_filter_t *f)
{
    tls_t *st = f->state;
    if (st->failed)
        return NF_ECLOSED;
    if (!st->established) {
        st->shut_pending = true;
        return 0;
    }
    send_notify(st);
    return nf_filter_shutdown_down(f);
}

static void f_close_req(nf_filter_t *f, nf_close_how_t how)
{
    tls_t *st = f->state;
    if (how == NF_HOW_END && !st->failed) {
        if (!st->established && !nf__fifo_empty(&st->held)) {
            st->end_pending = true; /* finish the handshake, send, then end */
            return;
        }
        send_notify(st);
    }
    nf_filter_close_down(f, how);
}

static void f_close(nf_filter_t *f, int reason)
{
    tls_t *st = f->state;
    nf_timer_stop(&st->timer);
    nf__fifo_clear(&st->held);
    nf__fifo_clear(&st->self);
    nf_buf_unref(st->out);
    st->out = NULL;
    if (st->ssl) {
        /* OpenSSL marks the session of a connection freed without close_notify
         * not resumable (RFC 5246 7.2.1). A close the program asked for
         * (nf_conn_close / _abort) is no TLS failure: keep it resumable. */
        if (st->established && !st->failed && (reason == NF_CLOSE_LOCAL || reason == NF_EOF))
            SSL_set_shutdown(st->ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
        SSL_set_ex_data(st->ssl, nf__tls_ex_index, NULL);
        SSL_free(st->ssl);
        st->ssl = NULL;
    }
    free(st->host);
    st->host = NULL;
}

NF__EXPORT const nf_filter_ops_t nf_tls_filter = {
    .size = sizeof(nf_filter_ops_t),
    .name = "tls",
    .state_size = sizeof(tls_t),
    .init = f_init,
    .on_open = f_open,
    .on_read = f_read,
    .on_eof = f_eof,
    .write = f_write,
    .shutdown = f_shutdown,
    .close = f_close_req,
    .on_close = f_close,
};

/* ---- getters ---------------------------------------------------------------- */

static tls_t *state_of(const nf_conn_t *c)
{
    nf_filter_t *f = c ? nf_conn_filter(c, &nf_tls_filter) : NULL;
    return f ? f->state : NULL;
}

NF__EXPORT int nf_tls_set_server_name(nf_conn_t *c, const char *name)
{
    tls_t *st = state_of(c);
    if (!st)
        return -ENOENT;
    if (st->ssl)
        return -EALREADY;
    char *dup = strdup(name);
    if (!dup)
        return -ENOMEM;
    free(st->host);
    st->host = dup;
    return 0;
}

NF__EXPORT int nf_tls_conn_established(const nf_conn_t *c)
{
    tls_t *st = state_of(c);
    return st && st->established;
}

NF__EXPORT const char *nf_tls_conn_error(const nf_conn_t *c)
{
    tls_t *st = state_of(c);
    return st && st->err[0] ? st->err : NULL;
}

NF__EXPORT const char *nf_tls_conn_version(const nf_conn_t *c)
{
    tls_t *st = state_of(c);
    return st && st->ssl ? SSL_get_version(st->ssl) : NULL;
}

NF__EXPORT const char *nf_tls_conn_cipher(const nf_conn_t *c)
{
    tls_t *st = state_of(c);
    return st && st->ssl ? SSL_get_cipher_name(st->ssl) : NULL;
}

NF__EXPORT const char *nf_tls_conn_alpn(const nf_conn_t *c, size_t *len)
{
    tls_t *st = state_of(c);
    const unsigned char *p = NULL;
    unsigned n = 0;
    if (st && st->ssl)
        SSL_get0_alpn_selected(st->ssl, &p, &n);
    if (len)
        *len = n;
    return n ? (const char *)p : NULL;
}

NF__EXPORT const char *nf_tls_conn_server_name(const nf_conn_t *c)
{
    tls_t *st = state_of(c);
    return st && st->ssl ? SSL_get_servername(st->ssl, TLSEXT_NAMETYPE_host_name) : NULL;
}

NF__EXPORT int nf_tls_conn_resumed(const nf_conn_t *c)
{
    tls_t *st = state_of(c);
    return st && st->ssl && SSL_session_reused(st->ssl);
}

NF__EXPORT int nf_tls_conn_peer_subject(const nf_conn_t *c, char *buf, size_t size)
{
    tls_t *st = state_of(c);
    if (!st)
        return -ENOENT;
    if (size)
        buf[0] = 0;
    X509 *x = st->ssl ? SSL_get0_peer_certificate(st->ssl) : NULL;
    if (!x || SSL_get_verify_result(st->ssl) != X509_V_OK)
        return 0;
    BIO *m = BIO_new(BIO_s_mem());
    if (m) {
        X509_NAME_print_ex(m, X509_get_subject_name(x), 0, XN_FLAG_ONELINE & ~ASN1_STRFLGS_ESC_MSB);
        int n = BIO_read(m, buf, size ? (int)size - 1 : 0);
        if (n > 0 && size)
            buf[n] = 0;
        BIO_free(m);
    }
    return 1;
}
