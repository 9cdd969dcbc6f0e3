/*
 * nf_tls_epoll_echo - the floor of the TLS echo benchmark: OpenSSL straight
 * on the socket (SSL_set_fd, OpenSSL's own socket BIO) under plain
 * level-triggered epoll, one thread, no event library.
 *
 * Per readable connection: SSL_read into a 16 KiB buffer (one record's
 * plaintext) until it would block, each piece written back at once with
 * SSL_write.  A write that would block keeps the rest in a per-connection
 * buffer and stops reading until it has gone (EPOLLOUT).  The handshake
 * happens inside the first SSL_read.  Context as bench/uv_tls_echo.c:
 * TLS 1.2-1.3, SSL_MODE_RELEASE_BUFFERS, no renegotiation, one ticket, no
 * session cache.  TCP_NODELAY.  No close_notify on the way out.
 *
 * Usage: nf_tls_epoll_echo [--host H] --port P --cert PEM --key PEM
 * Prints "listening on H:P backend=tls-epoll-floor"; exits 0 on SIGINT/SIGTERM.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "floor_common.h"

#define MAXCONN 65536
#define RBUF    16384

struct conn {
    int fd;
    SSL *ssl;
    unsigned char *obuf; /* plaintext SSL_write has not taken yet */
    size_t olen, ooff, ocap;
    uint32_t events; /* what epoll waits for on fd */
};

static struct conn *conns[MAXCONN];
static int ep;
static SSL_CTX *ctx;

static void conn_free(struct conn *c)
{
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    SSL_free(c->ssl);
    close(c->fd);
    conns[c->fd] = NULL;
    free(c->obuf);
    free(c);
}

static void set_ev(struct conn *c, uint32_t e)
{
    if (c->events == e)
        return;
    c->events = e;
    struct epoll_event ev = {.events = e, .data.fd = c->fd};
    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
}

/* Write pending plaintext.  1 all gone, 0 would block, -1 failed. */
static int flush_out(struct conn *c)
{
    while (c->ooff < c->olen) {
        int n = SSL_write(c->ssl, c->obuf + c->ooff, (int)(c->olen - c->ooff));
        if (n > 0) {
            c->ooff += (size_t)n;
            continue;
        }
        int e = SSL_get_error(c->ssl, n);
        if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ)
            return 0;
        return -1;
    }
    c->olen = c->ooff = 0;
    return 1;
}

/* 0 ok, -1 close */
static int on_ready(struct conn *c)
{
    if (c->olen > c->ooff) {
        int r = flush_out(c);
        if (r < 0)
            return -1;
        if (r == 0)
            return 0;
        set_ev(c, EPOLLIN);
    }
    unsigned char buf[RBUF];
    for (;;) {
        int n = SSL_read(c->ssl, buf, sizeof buf);
        if (n <= 0) {
            int e = SSL_get_error(c->ssl, n);
            if (e == SSL_ERROR_WANT_READ) {
                set_ev(c, EPOLLIN);
                return 0;
            }
            if (e == SSL_ERROR_WANT_WRITE) {
                set_ev(c, EPOLLIN | EPOLLOUT);
                return 0;
            }
            return -1; /* close_notify, EOF or an error */
        }
        int off = 0;
        while (off < n) {
            int w = SSL_write(c->ssl, buf + off, n - off);
            if (w > 0) {
                off += w;
                continue;
            }
            int e = SSL_get_error(c->ssl, w);
            if (e != SSL_ERROR_WANT_WRITE && e != SSL_ERROR_WANT_READ)
                return -1;
            /* keep the rest (SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER: retried from obuf) */
            size_t rest = (size_t)(n - off);
            if (c->ocap < rest) {
                unsigned char *q = realloc(c->obuf, rest);
                if (q == NULL)
                    return -1;
                c->obuf = q, c->ocap = rest;
            }
            memcpy(c->obuf, buf + off, rest);
            c->olen = rest, c->ooff = 0;
            set_ev(c, EPOLLOUT);
            return 0;
        }
    }
}

int main(int argc, char **argv)
{
    const char *host = "127.0.0.1", *cert = NULL, *key = NULL;
    int port = -1;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--host") == 0)
            host = argv[i + 1];
        else if (strcmp(argv[i], "--port") == 0)
            port = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--cert") == 0)
            cert = argv[i + 1];
        else if (strcmp(argv[i], "--key") == 0)
            key = argv[i + 1];
    }
    if (port < 0 || cert == NULL || key == NULL) {
        fprintf(stderr, "usage: nf_tls_epoll_echo [--host H] --port P --cert PEM --key PEM\n");
        return 2;
    }
    ctx = SSL_CTX_new(TLS_server_method());
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_num_tickets(ctx, 1);
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
        fprintf(stderr, "nf_tls_epoll_echo: cannot load %s / %s\n", cert, key);
        return 1;
    }
    int one = 1, bound = 0;
    int lfd = floor_socket(host, port, SOCK_STREAM | SOCK_NONBLOCK, &bound);
    if (lfd < 0) {
        perror("nf_tls_epoll_echo: listen");
        return 1;
    }
    ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = lfd};
    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
    floor_signals();
    signal(SIGPIPE, SIG_IGN);
    printf("listening on %s:%d backend=tls-epoll-floor\n", host, bound);
    fflush(stdout);

    struct epoll_event evs[256];
    while (!stop) {
        int n = epoll_wait(ep, evs, 256, -1);
        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd;
            if (fd == lfd) {
                int cfd;
                while ((cfd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
                    struct conn *c = calloc(1, sizeof *c);
                    SSL *ssl = SSL_new(ctx);
                    if (cfd >= MAXCONN || c == NULL || ssl == NULL || SSL_set_fd(ssl, cfd) != 1) {
                        free(c);
                        SSL_free(ssl);
                        close(cfd);
                        continue;
                    }
                    SSL_set_accept_state(ssl);
                    setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    c->fd = cfd;
                    c->ssl = ssl;
                    c->events = EPOLLIN;
                    conns[cfd] = c;
                    struct epoll_event cev = {.events = EPOLLIN, .data.fd = cfd};
                    epoll_ctl(ep, EPOLL_CTL_ADD, cfd, &cev);
                }
                continue;
            }
            struct conn *c = conns[fd];
            if (c != NULL && on_ready(c) != 0)
                conn_free(c);
        }
    }
    close(ep);
    close(lfd);
    SSL_CTX_free(ctx);
    return 0;
}
