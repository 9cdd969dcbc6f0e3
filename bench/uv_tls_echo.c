/*
 * nf_uv_tls_echo - a TLS echo server on libuv + OpenSSL memory BIOs, written
 * the way a typical libuv program adds TLS. Baseline for bench/tls.sh.
 *
 * Each connection owns an SSL with two memory BIOs: bytes read from the
 * socket go into the read BIO; SSL_read decrypts into a 16 KiB buffer, which
 * SSL_write encrypts straight back; whatever lands in the write BIO is copied
 * into one uv_write request. Same settings as netframe's filter:
 * SSL_MODE_RELEASE_BUFFERS, no renegotiation, TLS 1.2-1.3, tickets.
 *
 * Usage: nf_uv_tls_echo [--host H] --port P --cert F --key F
 * Prints "listening on H:P backend=libuv+openssl" once ready; exits 0 on
 * SIGINT/SIGTERM.
 */
#define _GNU_SOURCE
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#define READ_BUF_SIZE (64 * 1024)

struct conn {
    uv_tcp_t tcp; /* first: handle pointers are cast to struct conn */
    SSL *ssl;
    BIO *rbio, *wbio;
    char buf[READ_BUF_SIZE];
};

struct write_req {
    uv_write_t req;
    uv_buf_t buf;
    char data[];
};

static SSL_CTX *g_ctx;
static uv_tcp_t g_server;
static uv_signal_t g_sigint, g_sigterm;
static char g_plain[16384];

static void on_close_free(uv_handle_t *h)
{
    struct conn *c = (struct conn *)h;
    SSL_free(c->ssl); /* frees both BIOs */
    free(c);
}

static void on_close_noop(uv_handle_t *h) { (void)h; }

static void conn_close(struct conn *c)
{
    if (!uv_is_closing((uv_handle_t *)c))
        uv_close((uv_handle_t *)c, on_close_free);
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct conn *c = (struct conn *)h;
    (void)suggested;
    *buf = uv_buf_init(c->buf, sizeof c->buf);
}

static void write_cb(uv_write_t *req, int status)
{
    struct conn *c = (struct conn *)req->handle;
    free(req);
    if (status < 0)
        conn_close(c);
}

/* Sends what OpenSSL wrote into the write BIO. */
static int flush(struct conn *c)
{
    size_t n = BIO_ctrl_pending(c->wbio);
    if (n == 0)
        return 0;
    struct write_req *wr = malloc(sizeof *wr + n);
    if (!wr)
        return -1;
    int got = BIO_read(c->wbio, wr->data, (int)n);
    wr->buf = uv_buf_init(wr->data, (unsigned)got);
    if (uv_write(&wr->req, (uv_stream_t *)c, &wr->buf, 1, write_cb) < 0) {
        free(wr);
        return -1;
    }
    return 0;
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct conn *c = (struct conn *)s;
    if (nread < 0) {
        conn_close(c);
        return;
    }
    if (nread == 0)
        return;
    BIO_write(c->rbio, buf->base, (int)nread);
    if (!SSL_is_init_finished(c->ssl)) {
        int r = SSL_do_handshake(c->ssl);
        if (r != 1) {
            int e = SSL_get_error(c->ssl, r);
            if (flush(c) < 0 || (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)) {
                ERR_clear_error();
                conn_close(c);
            }
            return;
        }
    }
    for (;;) {
        int n = SSL_read(c->ssl, g_plain, sizeof g_plain);
        if (n <= 0) {
            int e = SSL_get_error(c->ssl, n);
            if (e == SSL_ERROR_ZERO_RETURN)
                SSL_shutdown(c->ssl);
            else if (e != SSL_ERROR_WANT_READ) {
                ERR_clear_error();
                flush(c);
                conn_close(c);
                return;
            }
            break;
        }
        if (SSL_write(c->ssl, g_plain, n) <= 0) {
            ERR_clear_error();
            conn_close(c);
            return;
        }
    }
    if (flush(c) < 0)
        conn_close(c);
}

static void on_connection(uv_stream_t *server, int status)
{
    if (status < 0)
        return;
    struct conn *c = calloc(1, sizeof *c);
    if (c == NULL)
        return;
    uv_tcp_init(server->loop, &c->tcp);
    c->ssl = SSL_new(g_ctx);
    c->rbio = BIO_new(BIO_s_mem());
    c->wbio = BIO_new(BIO_s_mem());
    SSL_set_bio(c->ssl, c->rbio, c->wbio);
    SSL_set_accept_state(c->ssl);
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
        conn_close(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    if (uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb) != 0)
        conn_close(c);
}

static void close_walk_cb(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (uv_is_closing(h))
        return;
    if (h == (uv_handle_t *)&g_server || h == (uv_handle_t *)&g_sigint || h == (uv_handle_t *)&g_sigterm)
        uv_close(h, on_close_noop);
    else
        uv_close(h, on_close_free);
}

static void on_signal(uv_signal_t *sig, int signum)
{
    (void)signum;
    uv_walk(sig->loop, close_walk_cb, NULL);
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"host", required_argument, NULL, 'h'},
        {"port", required_argument, NULL, 'p'},
        {"cert", required_argument, NULL, 'c'},
        {"key", required_argument, NULL, 'k'},
        {NULL, 0, NULL, 0},
    };
    const char *host = "127.0.0.1", *cert = NULL, *key = NULL;
    long port = -1;
    int opt;
    while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (opt) {
        case 'h': host = optarg; break;
        case 'p': port = strtol(optarg, NULL, 10); break;
        case 'c': cert = optarg; break;
        case 'k': key = optarg; break;
        default: fprintf(stderr, "usage: %s [--host H] --port P --cert F --key F\n", argv[0]); return 2;
        }
    }
    if (port < 0 || port > 65535 || !cert || !key) {
        fprintf(stderr, "usage: %s [--host H] --port P --cert F --key F\n", argv[0]);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    g_ctx = SSL_CTX_new(TLS_server_method());
    SSL_CTX_set_min_proto_version(g_ctx, TLS1_2_VERSION);
    SSL_CTX_set_mode(g_ctx, SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_options(g_ctx, SSL_OP_NO_RENEGOTIATION);
    SSL_CTX_set_session_cache_mode(g_ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_num_tickets(g_ctx, 1);
    if (SSL_CTX_use_certificate_chain_file(g_ctx, cert) != 1 ||
        SSL_CTX_use_PrivateKey_file(g_ctx, key, SSL_FILETYPE_PEM) != 1) {
        fprintf(stderr, "uv_tls_echo: cannot load %s / %s\n", cert, key);
        return 1;
    }

    uv_loop_t *loop = uv_default_loop();
    struct sockaddr_in addr;
    if (uv_ip4_addr(host, (int)port, &addr) != 0) {
        fprintf(stderr, "uv_tls_echo: bad --host '%s' (numeric IPv4)\n", host);
        return 2;
    }
    uv_tcp_init(loop, &g_server);
    int r = uv_tcp_bind(&g_server, (const struct sockaddr *)&addr, 0);
    if (r == 0)
        r = uv_listen((uv_stream_t *)&g_server, SOMAXCONN, on_connection);
    if (r != 0) {
        fprintf(stderr, "uv_tls_echo: cannot listen on %s:%ld: %s\n", host, port, uv_strerror(r));
        return 1;
    }
    uv_signal_init(loop, &g_sigint);
    uv_signal_init(loop, &g_sigterm);
    uv_signal_start(&g_sigint, on_signal, SIGINT);
    uv_signal_start(&g_sigterm, on_signal, SIGTERM);
    struct sockaddr_in bound;
    int blen = sizeof bound;
    uv_tcp_getsockname(&g_server, (struct sockaddr *)&bound, &blen);
    printf("listening on %s:%d backend=libuv+openssl\n", host, ntohs(bound.sin_port));
    fflush(stdout);
    uv_run(loop, UV_RUN_DEFAULT);
    uv_loop_close(loop);
    SSL_CTX_free(g_ctx);
    return 0;
}
