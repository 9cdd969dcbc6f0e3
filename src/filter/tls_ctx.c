/* netframe — the TLS filter's contexts (see tls.h for the contract; the
 * filter itself is in tls_conn.c).
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

#include "base/export.h"
#include "filter/tls_private.h"

/* ---- the context ----------------------------------------------------------- */

int nf__tls_ex_index = -1; /* SSL ex_data slot: the connection's state */
BIO_METHOD *nf__tls_bio_method;
static pthread_once_t once = PTHREAD_ONCE_INIT;

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
    nf__tls_ex_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
    BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "netframe");
    if (m) {
        BIO_meth_set_write(m, nf__tls_bio_write);
        BIO_meth_set_read(m, nf__tls_bio_read);
        BIO_meth_set_ctrl(m, nf__tls_bio_ctrl);
        BIO_meth_set_create(m, bio_create);
        BIO_meth_set_destroy(m, bio_destroy);
    }
    nf__tls_bio_method = m;
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
    if (nf__tls_ex_index < 0 || !nf__tls_bio_method)
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
            SSL_CTX_sess_set_new_cb(ctx->ssl, nf__tls_new_session_cb);
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
