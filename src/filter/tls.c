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
 * connection closes with NF_ESLOW. */
#include <arpa/inet.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "net/transport.h"
#include "netframe/tls.h"

/* ---- the context ----------------------------------------------------------- */

typedef struct sni_entry {
    char *name;
    SSL_CTX *ssl;
} sni_entry_t;

#define SESS_SLOTS 64

typedef struct sess_slot {
    char *host;
    SSL_SESSION *sess;
} sess_slot_t;

struct nf_tls_ctx {
    SSL_CTX *ssl;
    int server;
    int insecure;
    char *server_name;
    uint64_t hs_timeout_ms;
    size_t max_self_bytes;
    unsigned char *alpn; /* wire format */
    unsigned alpn_len;
    sni_entry_t *sni;
    unsigned nsni;
    bool cache;
    pthread_mutex_t mu; /* the session cache: contexts are shared by loops */
    sess_slot_t slots[SESS_SLOTS];
    unsigned next_slot;
};

static int ex_index = -1; /* SSL ex_data slot: the connection's state */
static BIO_METHOD *bio_method;
static pthread_once_t once = PTHREAD_ONCE_INIT;

typedef struct tls tls_t;
static int bio_write(BIO *b, const char *data, int len);
static int bio_read(BIO *b, char *buf, int len);
static long bio_ctrl(BIO *b, int cmd, long num, void *ptr);
static int bio_create(BIO *b)
{
    BIO_set_init(b, 1);
    return 1;
}
static int bio_destroy(BIO *b)
{
    (void)b;
    return 1;
}

static void global_init(void)
{
    ex_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
    BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "netframe");
    if (m) {
        BIO_meth_set_write(m, bio_write);
        BIO_meth_set_read(m, bio_read);
        BIO_meth_set_ctrl(m, bio_ctrl);
        BIO_meth_set_create(m, bio_create);
        BIO_meth_set_destroy(m, bio_destroy);
    }
    bio_method = m;
}

static void err_text(char *err, size_t errlen, const char *what, const char *file)
{
    if (!err || !errlen)
        return;
    unsigned long e = ERR_peek_last_error();
    char ebuf[200] = "";
    if (e)
        ERR_error_string_n(e, ebuf, sizeof ebuf);
    snprintf(err, errlen, "%s%s%s%s%s", what, file ? " " : "", file ? file : "", e ? ": " : "", ebuf);
}

static int load_cert(SSL_CTX *s, const char *cert, const char *key, char *err, size_t errlen)
{
    if (SSL_CTX_use_certificate_chain_file(s, cert) != 1) {
        err_text(err, errlen, "cannot load certificate", cert);
        return NF_ETLS;
    }
    if (SSL_CTX_use_PrivateKey_file(s, key ? key : cert, SSL_FILETYPE_PEM) != 1) {
        err_text(err, errlen, "cannot load key", key ? key : cert);
        return NF_ETLS;
    }
    if (SSL_CTX_check_private_key(s) != 1) {
        err_text(err, errlen, "key does not match certificate", cert);
        return NF_ETLS;
    }
    return 0;
}

static bool name_match(const char *pattern, const char *name)
{
    if (pattern[0] == '*' && pattern[1] == '.') {
        const char *dot = strchr(name, '.');
        return dot && dot != name && strcasecmp(dot, pattern + 1) == 0;
    }
    return strcasecmp(pattern, name) == 0;
}

static int sni_cb(SSL *ssl, int *alert, void *arg)
{
    (void)alert;
    nf_tls_ctx_t *ctx = arg;
    const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    if (!name)
        return SSL_TLSEXT_ERR_NOACK;
    for (unsigned i = 0; i < ctx->nsni; i++) {
        if (name_match(ctx->sni[i].name, name)) {
            SSL_set_SSL_CTX(ssl, ctx->sni[i].ssl);
            /* SSL_set_SSL_CTX copies the certificate, not the verify mode */
            SSL_set_verify(ssl, SSL_CTX_get_verify_mode(ctx->ssl), NULL);
            return SSL_TLSEXT_ERR_OK;
        }
    }
    return SSL_TLSEXT_ERR_OK; /* the default certificate */
}

static int alpn_cb(SSL *ssl, const unsigned char **out, unsigned char *outlen, const unsigned char *in,
                   unsigned int inlen, void *arg)
{
    (void)ssl;
    nf_tls_ctx_t *ctx = arg;
    unsigned char *sel;
    if (SSL_select_next_proto(&sel, outlen, ctx->alpn, ctx->alpn_len, in, inlen) != OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_ALERT_FATAL; /* RFC 7301: no_application_protocol */
    *out = sel;
    return SSL_TLSEXT_ERR_OK;
}

static int new_session_cb(SSL *ssl, SSL_SESSION *sess);

static int apply_common(nf_tls_ctx_t *ctx, SSL_CTX *s, const nf_tls_config_t *cfg, char *err, size_t errlen)
{
    int minv = cfg->min_version ? cfg->min_version : TLS1_2_VERSION;
    int maxv = cfg->max_version ? cfg->max_version : TLS1_3_VERSION;
    if (!SSL_CTX_set_min_proto_version(s, minv) || !SSL_CTX_set_max_proto_version(s, maxv)) {
        err_text(err, errlen, "bad TLS version range", NULL);
        return -EINVAL;
    }
    SSL_CTX_set_mode(s, SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_options(s, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
    if (cfg->ciphers && SSL_CTX_set_cipher_list(s, cfg->ciphers) != 1) {
        err_text(err, errlen, "bad cipher list", cfg->ciphers);
        return -EINVAL;
    }
    if (cfg->ciphersuites && SSL_CTX_set_ciphersuites(s, cfg->ciphersuites) != 1) {
        err_text(err, errlen, "bad ciphersuites", cfg->ciphersuites);
        return -EINVAL;
    }
    if (ctx->server) {
        static const unsigned char sid[] = "netframe";
        SSL_CTX_set_session_id_context(s, sid, sizeof sid - 1);
        /* resumption by stateless tickets; no server-side session cache */
        SSL_CTX_set_session_cache_mode(s, SSL_SESS_CACHE_OFF);
        SSL_CTX_set_num_tickets(s, 1);
        if (ctx->alpn)
            SSL_CTX_set_alpn_select_cb(s, alpn_cb, ctx);
    }
    return 0;
}

NF__EXPORT void nf_tls_ctx_free(nf_tls_ctx_t *ctx)
{
    if (!ctx)
        return;
    SSL_CTX_free(ctx->ssl);
    for (unsigned i = 0; i < ctx->nsni; i++) {
        free(ctx->sni[i].name);
        SSL_CTX_free(ctx->sni[i].ssl);
    }
    free(ctx->sni);
    for (unsigned i = 0; i < SESS_SLOTS; i++) {
        free(ctx->slots[i].host);
        SSL_SESSION_free(ctx->slots[i].sess);
    }
    pthread_mutex_destroy(&ctx->mu);
    free(ctx->alpn);
    free(ctx->server_name);
    free(ctx);
}

/* Over 100 lines on purpose: one linear set-up of an SSL_CTX, option by
 * option in the order OpenSSL needs them, each failing to the same cleanup
 * (the fail: label, nf_tls_ctx_free); split up, the half-made context
 * would travel between functions that each need all of it. */
NF__EXPORT int nf_tls_ctx_new(nf_tls_ctx_t **out, const nf_tls_config_t *cfg, char *err, size_t errlen)
{
    if (err && errlen)
        err[0] = 0;
    if (!out || !cfg) {
        if (err && errlen)
            snprintf(err, errlen, "no config");
        return -EINVAL;
    }
    pthread_once(&once, global_init);
    if (ex_index < 0 || !bio_method)
        return -ENOMEM;
    ERR_clear_error();
    nf_tls_ctx_t *ctx = calloc(1, sizeof *ctx);
    if (!ctx)
        return -ENOMEM;
    pthread_mutex_init(&ctx->mu, NULL);
    ctx->server = cfg->server != 0;
    ctx->insecure = cfg->insecure != 0;
    ctx->hs_timeout_ms = cfg->handshake_timeout_ms ? cfg->handshake_timeout_ms : 10000;
    ctx->max_self_bytes = cfg->max_self_bytes ? cfg->max_self_bytes : 64 * 1024;
    ctx->cache = !ctx->server && cfg->session_cache >= 0;
    int rc = -ENOMEM;
    if (cfg->server_name && !(ctx->server_name = strdup(cfg->server_name)))
        goto fail;
    if (cfg->alpn) {
        size_t total = 0;
        for (const char *const *p = cfg->alpn; *p; p++) {
            size_t n = strlen(*p);
            if (n == 0 || n > 255) {
                rc = -EINVAL;
                if (err && errlen)
                    snprintf(err, errlen, "bad ALPN name");
                goto fail;
            }
            total += n + 1;
        }
        if (total) {
            if (!(ctx->alpn = malloc(total)))
                goto fail;
            for (const char *const *p = cfg->alpn; *p; p++) {
                size_t n = strlen(*p);
                ctx->alpn[ctx->alpn_len++] = (unsigned char)n;
                memcpy(ctx->alpn + ctx->alpn_len, *p, n);
                ctx->alpn_len += (unsigned)n;
            }
        }
    }
    ctx->ssl = SSL_CTX_new(ctx->server ? TLS_server_method() : TLS_client_method());
    if (!ctx->ssl)
        goto fail;
    if ((rc = apply_common(ctx, ctx->ssl, cfg, err, errlen)) != 0)
        goto fail;
    rc = NF_ETLS;
    if (ctx->server) {
        if (!cfg->cert_file) {
            rc = -EINVAL;
            if (err && errlen)
                snprintf(err, errlen, "a server needs cert_file");
            goto fail;
        }
        if (load_cert(ctx->ssl, cfg->cert_file, cfg->key_file, err, errlen))
            goto fail;
        if (cfg->verify_client) {
            int mode = SSL_VERIFY_PEER;
            if (cfg->verify_client == NF_TLS_VERIFY_REQUIRE)
                mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
            if (cfg->ca_file || cfg->ca_path) {
                if (SSL_CTX_load_verify_locations(ctx->ssl, cfg->ca_file, cfg->ca_path) != 1) {
                    err_text(err, errlen, "cannot load CA", cfg->ca_file ? cfg->ca_file : cfg->ca_path);
                    goto fail;
                }
                if (cfg->ca_file) {
                    STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(cfg->ca_file);
                    if (names)
                        SSL_CTX_set_client_CA_list(ctx->ssl, names);
                }
            } else if (SSL_CTX_set_default_verify_paths(ctx->ssl) != 1) {
                err_text(err, errlen, "cannot load the system CA store", NULL);
                goto fail;
            }
            SSL_CTX_set_verify(ctx->ssl, mode, NULL);
        }
        if (cfg->nsni_certs) {
            if (!(ctx->sni = calloc(cfg->nsni_certs, sizeof *ctx->sni))) {
                rc = -ENOMEM;
                goto fail;
            }
            for (unsigned i = 0; i < cfg->nsni_certs; i++) {
                const nf_tls_cert_t *c = &cfg->sni_certs[i];
                if (!c->name || !c->cert_file) {
                    rc = -EINVAL;
                    if (err && errlen)
                        snprintf(err, errlen, "an SNI certificate needs name and cert_file");
                    goto fail;
                }
                sni_entry_t *e = &ctx->sni[ctx->nsni];
                e->name = strdup(c->name);
                e->ssl = SSL_CTX_new(TLS_server_method());
                ctx->nsni++;
                if (!e->name || !e->ssl) {
                    rc = -ENOMEM;
                    goto fail;
                }
                if ((rc = apply_common(ctx, e->ssl, cfg, err, errlen)) != 0)
                    goto fail;
                rc = NF_ETLS;
                if (load_cert(e->ssl, c->cert_file, c->key_file, err, errlen))
                    goto fail;
                /* client certificates are checked against the same CAs */
                SSL_CTX_set1_cert_store(e->ssl, SSL_CTX_get_cert_store(ctx->ssl));
                SSL_CTX_set_verify(e->ssl, SSL_CTX_get_verify_mode(ctx->ssl), NULL);
            }
            SSL_CTX_set_tlsext_servername_callback(ctx->ssl, sni_cb);
            SSL_CTX_set_tlsext_servername_arg(ctx->ssl, ctx);
        }
    } else {
        if (cfg->cert_file && load_cert(ctx->ssl, cfg->cert_file, cfg->key_file, err, errlen))
            goto fail;
        if (!ctx->insecure) {
            if (cfg->ca_file || cfg->ca_path) {
                if (SSL_CTX_load_verify_locations(ctx->ssl, cfg->ca_file, cfg->ca_path) != 1) {
                    err_text(err, errlen, "cannot load CA", cfg->ca_file ? cfg->ca_file : cfg->ca_path);
                    goto fail;
                }
            } else if (SSL_CTX_set_default_verify_paths(ctx->ssl) != 1) {
                err_text(err, errlen, "cannot load the system CA store", NULL);
                goto fail;
            }
            SSL_CTX_set_verify(ctx->ssl, SSL_VERIFY_PEER, NULL);
        }
        if (ctx->alpn && SSL_CTX_set_alpn_protos(ctx->ssl, ctx->alpn, ctx->alpn_len) != 0)
            goto fail;
        if (ctx->cache) {
            SSL_CTX_set_session_cache_mode(ctx->ssl, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
            SSL_CTX_sess_set_new_cb(ctx->ssl, new_session_cb);
        }
    }
    *out = ctx;
    return 0;
fail:
    if (rc == -ENOMEM && err && errlen && !err[0])
        snprintf(err, errlen, "out of memory");
    nf_tls_ctx_free(ctx);
    ERR_clear_error();
    return rc;
}

/* ---- per connection -------------------------------------------------------- */

typedef struct held {
    struct held *next;
    nf_buf_t *buf;
} held_t;

struct tls {
    nf_filter_t *f;
    SSL *ssl;
    nf_timer_t timer;
    const char *in; /* ciphertext not yet taken by OpenSSL (this on_read) */
    size_t in_len;
    nf_buf_t *out;       /* ciphertext OpenSSL wrote, not yet sent down */
    held_t *head, *tail; /* plaintext written before the handshake completed */
    held_t *self_head;   /* our references to records we made by ourselves, sent down */
    size_t self_bytes;   /* their bytes */
    char *host;          /* client: server name for this connection */
    char err[128];       /* why it failed, "" if it did not */
    bool established;
    bool opened_up;
    bool eof_up;       /* on_eof passed up */
    bool sent_notify;  /* our close_notify went out */
    bool end_pending;  /* nf_conn_end during the handshake, with writes held */
    bool shut_pending; /* nf_conn_shutdown during the handshake */
    bool failed;
};

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

static int bio_write(BIO *b, const char *data, int len)
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

static int bio_read(BIO *b, char *buf, int len)
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

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr)
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
    held_t **pp = &st->self_head;
    while (*pp) {
        held_t *h = *pp;
        if (h->buf->refs > 1) { /* a filter or the transport still has it */
            pp = &h->next;
            continue;
        }
        *pp = h->next;
        st->self_bytes -= h->buf->len;
        nf_buf_unref(h->buf);
        free(h);
    }
    return st->self_bytes;
}

static void self_free(tls_t *st)
{
    while (st->self_head) {
        held_t *h = st->self_head;
        st->self_head = h->next;
        nf_buf_unref(h->buf);
        free(h);
    }
    st->self_bytes = 0;
}

/* Sends what OpenSSL wrote while reading (the peer's messages asked for
 * it), remembering it; closes with NF_ESLOW past max_self_bytes below. */
static int flush_self(tls_t *st)
{
    nf_buf_t *b = st->out;
    if (!b || b->len == 0)
        return NF_WRITE_OK;
    held_t *h = malloc(sizeof *h);
    if (h) {
        h->buf = nf_buf_ref(b);
        h->next = st->self_head;
        st->self_head = h;
        st->self_bytes += b->len;
    }
    int r = flush_out(st);
    if (r < 0)
        return r;
    const nf_tls_ctx_t *ctx = st->f->config;
    if (self_below(st) > ctx->max_self_bytes) {
        set_err(st, "the peer does not read what its messages ask for (%s%s)", "KeyUpdate flood?", NULL);
        st->f->conn->loop->stats.conns_closed_slow++;
        nf_filter_fail(st->f, NF_ESLOW);
        return NF_ESLOW;
    }
    return r;
}

static void held_free(tls_t *st)
{
    while (st->head) {
        held_t *h = st->head;
        st->head = h->next;
        nf_buf_unref(h->buf);
        free(h);
    }
    st->tail = NULL;
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
    while (st->head && !nf_filter_closing(st->f)) {
        held_t *h = st->head;
        st->head = h->next;
        if (!st->head)
            st->tail = NULL;
        nf_buf_t *b = h->buf;
        free(h);
        if (encrypt(st, b) < 0)
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
    nf_timer_init(f->conn->loop, &st->timer);
    st->timer.data = st;
    if (!ctx)
        return -EINVAL;
    st->ssl = SSL_new(ctx->ssl);
    BIO *bio = st->ssl ? BIO_new(bio_method) : NULL;
    if (!bio) {
        ERR_clear_error();
        return -ENOMEM;
    }
    BIO_set_data(bio, st);
    SSL_set_bio(st->ssl, bio, bio);
    SSL_set_ex_data(st->ssl, ex_index, st);
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
static int new_session_cb(SSL *ssl, SSL_SESSION *sess)
{
    tls_t *st = SSL_get_ex_data(ssl, ex_index);
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
    held_t *h = malloc(sizeof *h);
    if (!h) {
        nf_buf_unref(b);
        return -ENOMEM;
    }
    h->next = NULL;
    h->buf = b;
    if (st->tail)
        st->tail->next = h;
    else
        st->head = h;
    st->tail = h;
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
        if (!st->established && st->head) {
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
    held_free(st);
    self_free(st);
    nf_buf_unref(st->out);
    st->out = NULL;
    if (st->ssl) {
        /* OpenSSL marks the session of a connection freed without close_notify
         * not resumable (RFC 5246 7.2.1). A close the program asked for
         * (nf_conn_close / _abort) is no TLS failure: keep it resumable. */
        if (st->established && !st->failed && (reason == NF_CLOSE_LOCAL || reason == NF_EOF))
            SSL_set_shutdown(st->ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
        SSL_set_ex_data(st->ssl, ex_index, NULL);
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
