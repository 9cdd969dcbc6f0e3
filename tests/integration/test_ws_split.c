/* Integration test (issue 13 part 5b): the bytes that follow the opening
 * handshake's head in the same read are the connection's first frames, and
 * must reach the decoder intact however the head was cut into reads.
 *
 * The peer is a plain or TLS socket driven from the test's own thread, so
 * that each cut is a real cut: the first piece is written, the loop runs
 * (the server or client reads it alone), then the rest of the head and the
 * frames go in one write: a 20,000-byte binary message and ten small text
 * messages, all checked byte for byte.
 *
 * - server (RFC 6455, HyBi-8, Hixie-76 with key3 after the head): a raw
 *   client cuts its request at every byte; the echoes must come back intact;
 * - client (RFC 6455, Hixie-76 with the 16-byte answer after the head): a
 *   raw server cuts its 101 + frames at every byte of the head; the client
 *   must receive every message intact;
 * - both over TLS (certificates from tls_certs.c);
 * - a head over max_header is refused (431 / NF_EWS_HANDSHAKE) however it
 *   is cut, and one of exactly max_header is not. */
#include "helpers.h"
#include "tls_certs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <openssl/ssl.h>

#include <netframe/tls.h>
#include <netframe/ws.h>
#include <netframe/ws_codec.h>

#define BIG    20000
#define SMALLS 10

static tc_certs_t certs;

/* ---- the peer: a socket (plain or TLS) driven from the loop's thread --- */

typedef struct peer {
    nf_loop_t *loop;
    int fd;
    SSL *ssl;
} peer_t;

/* Runs the loop without blocking: whatever the peer just wrote is read by
 * netframe (loopback delivers it before send() returns, and a non-blocking
 * step still collects io_uring's deferred completions). A few steps, so that
 * a read handed up through TLS is handled too. */
static void pump(nf_loop_t *loop)
{
    for (int i = 0; i < 3; i++)
        nf_loop_run(loop, NF_RUN_NOWAIT);
}

/* Waits for the peer's socket (at most 1 ms), running the loop. */
static void pump_wait(peer_t *p, short events)
{
    pump(p->loop);
    struct pollfd pf = {.fd = p->fd, .events = events};
    poll(&pf, 1, 1);
}

/* 1 when the operation may be retried after running the loop. */
static int retry(peer_t *p, int r)
{
    if (p->ssl) {
        int e = SSL_get_error(p->ssl, r);
        return e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE;
    }
    return r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR);
}

static int peer_send(peer_t *p, const void *buf, size_t len)
{
    const char *b = buf;
    uint64_t until = h_now_ms() + 10000;
    while (len) {
        int r = p->ssl ? SSL_write(p->ssl, b, (int)len) : (int)send(p->fd, b, len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (r > 0) {
            b += r;
            len -= (size_t)r;
            continue;
        }
        if (!retry(p, r) || h_now_ms() > until)
            return -1;
        pump_wait(p, POLLOUT);
    }
    return 0;
}

/* Reads exactly len bytes; -1 on EOF, error or timeout. */
static int peer_recv(peer_t *p, void *buf, size_t len)
{
    char *b = buf;
    uint64_t until = h_now_ms() + 10000;
    while (len) {
        int r = p->ssl ? SSL_read(p->ssl, b, (int)len) : (int)recv(p->fd, b, len, MSG_DONTWAIT);
        if (r > 0) {
            b += r;
            len -= (size_t)r;
            continue;
        }
        if ((!p->ssl && r == 0) || !retry(p, r) || h_now_ms() > until)
            return -1;
        pump_wait(p, POLLIN);
    }
    return 0;
}

/* Reads up to and including the empty line; returns its length or -1. */
static int peer_recv_head(peer_t *p, char *buf, size_t cap)
{
    size_t n = 0;
    while (n + 1 < cap) {
        if (peer_recv(p, buf + n, 1) != 0)
            return -1;
        n++;
        if (n >= 4 && memcmp(buf + n - 4, "\r\n\r\n", 4) == 0) {
            buf[n] = 0;
            return (int)n;
        }
    }
    return -1;
}

/* Each piece goes out at once (no Nagle delay between the two). */
static void peer_nodelay(int fd)
{
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

static void peer_tls(peer_t *p, SSL_CTX *ctx, int server)
{
    p->ssl = SSL_new(ctx);
    assert_non_null(p->ssl);
    SSL_set_fd(p->ssl, p->fd);
    SSL_set_mode(p->ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    if (!server)
        SSL_set_tlsext_host_name(p->ssl, "localhost");
    uint64_t until = h_now_ms() + 10000;
    for (;;) {
        int r = server ? SSL_accept(p->ssl) : SSL_connect(p->ssl);
        if (r == 1)
            return;
        if (!retry(p, r) || h_now_ms() > until)
            fail_msg("TLS handshake of the raw peer failed");
        pump_wait(p, SSL_get_error(p->ssl, r) == SSL_ERROR_WANT_WRITE ? POLLOUT : POLLIN);
    }
}

static void peer_close(peer_t *p)
{
    if (p->ssl)
        SSL_free(p->ssl);
    p->ssl = NULL;
    if (p->fd >= 0)
        close(p->fd);
    p->fd = -1;
}

static SSL_CTX *raw_tls_ctx(int server)
{
    SSL_CTX *c = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
    assert_non_null(c);
    if (server) {
        assert_int_equal(SSL_CTX_use_certificate_chain_file(c, tc_path(&certs, "server.pem")), 1);
        assert_int_equal(SSL_CTX_use_PrivateKey_file(c, tc_path(&certs, "server.key"), SSL_FILETYPE_PEM), 1);
    } else {
        SSL_CTX_set_verify(c, SSL_VERIFY_NONE, NULL); /* we test framing, not certificates */
    }
    return c;
}

static nf_tls_ctx_t *nf_tls(int server)
{
    char err[256];
    nf_tls_ctx_t *c = NULL;
    nf_tls_config_t cfg = {.server = server};
    if (server) {
        cfg.cert_file = tc_path(&certs, "server.pem");
        cfg.key_file = tc_path(&certs, "server.key");
    } else {
        cfg.ca_file = tc_path(&certs, "ca.pem");
    }
    if (nf_tls_ctx_new(&c, &cfg, err, sizeof err) != 0)
        fail_msg("nf_tls_ctx_new: %s", err);
    return c;
}

/* ---- the messages ------------------------------------------------------ */

static void fill(uint8_t *p, size_t n, uint32_t seed, int text)
{
    h_pattern_fill(p, n, 0, seed);
    if (text)
        for (size_t i = 0; i < n; i++)
            p[i] = (uint8_t)(0x20 + p[i] % 95); /* printable ASCII: valid UTF-8, no 0xFF */
}

static uint8_t big[BIG];
static uint8_t smalls[SMALLS][40];
static size_t small_len(int i) { return (size_t)(1 + i * 3); }

static void make_messages(int text_big)
{
    fill(big, BIG, 7, text_big);
    for (int i = 0; i < SMALLS; i++)
        fill(smalls[i], small_len(i), 100u + (uint32_t)i, 1);
}

/* RFC 6455 frames of the messages: masked (from a client) or not. */
static size_t rfc_frames(uint8_t *out, size_t cap, int masked)
{
    static const uint8_t key[4] = {0x9a, 0x3c, 0x51, 0xe7};
    size_t n = 0;
    int w = nf_ws_write_frame(out, cap, NF_WS_FIN, NF_WS_OP_BINARY, big, BIG, masked ? key : NULL);
    assert_true(w > 0);
    n += (size_t)w;
    for (int i = 0; i < SMALLS; i++) {
        w = nf_ws_write_frame(out + n, cap - n, NF_WS_FIN, NF_WS_OP_TEXT, smalls[i], small_len(i), masked ? key : NULL);
        assert_true(w > 0);
        n += (size_t)w;
    }
    return n;
}

/* Hixie-76 frames: 0x00 text 0xFF (the big message as text). */
static size_t hixie_frames(uint8_t *out)
{
    size_t n = 0;
    out[n++] = 0x00;
    memcpy(out + n, big, BIG);
    n += BIG;
    out[n++] = 0xff;
    for (int i = 0; i < SMALLS; i++) {
        out[n++] = 0x00;
        memcpy(out + n, smalls[i], small_len(i));
        n += small_len(i);
        out[n++] = 0xff;
    }
    return n;
}

/* Reads the server's echoes from the peer and checks them. */
static void expect_rfc_echoes(peer_t *p, const char *what, size_t cut)
{
    uint8_t h[4];
    if (peer_recv(p, h, 4) != 0 || h[0] != 0x82 || h[1] != 126 || ((size_t)h[2] << 8 | h[3]) != BIG)
        fail_msg("%s, cut %zu: no 20,000-byte echo (%02x %02x)", what, cut, h[0], h[1]);
    static uint8_t got[BIG];
    if (peer_recv(p, got, BIG) != 0 || memcmp(got, big, BIG) != 0)
        fail_msg("%s, cut %zu: the 20,000-byte echo differs", what, cut);
    for (int i = 0; i < SMALLS; i++) {
        uint8_t s[2 + 40];
        if (peer_recv(p, s, 2 + small_len(i)) != 0 || s[0] != 0x81 || s[1] != small_len(i) ||
            memcmp(s + 2, smalls[i], small_len(i)) != 0)
            fail_msg("%s, cut %zu: small echo %d differs", what, cut, i);
    }
}

static void expect_hixie_echoes(peer_t *p, const char *what, size_t cut)
{
    static uint8_t want[BIG + 2 + SMALLS * 42], got[sizeof want];
    size_t n = hixie_frames(want);
    if (peer_recv(p, got, n) != 0 || memcmp(got, want, n) != 0)
        fail_msg("%s, cut %zu: the echoes differ", what, cut);
}

/* ---- server side ------------------------------------------------------- */

static int s_opened, s_msgs;
static void s_open(nf_ws_conn_t *ws)
{
    (void)ws;
    s_opened++;
}
static void s_message(nf_ws_conn_t *ws, unsigned op, const char *data, size_t len)
{
    s_msgs++;
    nf_ws_send(ws, op, data, len);
}
static void s_close(nf_ws_conn_t *ws, unsigned code, const char *reason, size_t rlen)
{
    (void)ws, (void)code, (void)reason, (void)rlen;
}
static const nf_ws_handler_t s_echo = {.on_open = s_open, .on_message = s_message, .on_close = s_close};
static const nf_ws_route_t s_routes[] = {{.path = "*", .handler = &s_echo}};

static nf_ws_server_t *start_server(nf_loop_t *loop, nf_tls_ctx_t *tls, size_t max_header, nf_filter_spec_t *spec,
                                    uint16_t *port)
{
    nf_ws_server_config_t cfg = {
        .listen = {.host = "127.0.0.1", .port = 0},
        .routes = s_routes,
        .nroutes = 1,
        .opts = {.max_header = max_header, .close_timeout_ms = 1000},
        .legacy_hybi = 1,
        .legacy_hixie76 = 1,
    };
    if (tls) {
        spec[0] = (nf_filter_spec_t){&nf_tls_filter, tls};
        cfg.listen.filters = spec;
        cfg.listen.nfilters = 1;
    }
    nf_ws_server_t *s;
    *port = h_ws_listen(loop, &cfg, &s);
    return s;
}

static peer_t connect_peer(nf_loop_t *loop, uint16_t port, SSL_CTX *tls)
{
    peer_t p = {.loop = loop, .fd = h_tcp_connect("127.0.0.1", port)};
    if (p.fd < 0)
        fail_msg("connect: %s", strerror(-p.fd));
    h_set_nonblock(p.fd, 1);
    peer_nodelay(p.fd);
    if (tls)
        peer_tls(&p, tls, 0);
    return p;
}

static const char k_req13[] = "GET /split?x=1 HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                              "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                              "Sec-WebSocket-Version: 13\r\n\r\n";
static const char k_req8[] = "GET /split HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                             "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                             "Sec-WebSocket-Origin: http://127.0.0.1\r\nSec-WebSocket-Version: 8\r\n\r\n";
/* draft 76's worked example (key3 follows the head) */
static const char k_key1[] = "18x 6]8vM;54 *(5:  {   U1]8  z [  8";
static const char k_key2[] = "1_ tx7X d  <  nw  334J702) 7]o}` 0";
static const char k_req76[] = "GET /demo HTTP/1.1\r\nHost: example.com\r\nConnection: Upgrade\r\n"
                              "Sec-WebSocket-Key2: 1_ tx7X d  <  nw  334J702) 7]o}` 0\r\n"
                              "Upgrade: WebSocket\r\nSec-WebSocket-Key1: 18x 6]8vM;54 *(5:  {   U1]8  z [  8\r\n"
                              "Origin: http://example.com\r\n\r\nTm[K T2u";

/* Every cut of the request (the head, and key3 for Hixie-76), each followed
 * in the same write by the rest and all the frames; every echo checked. */
static void server_cuts(int version, int tls)
{
    nf_loop_t *loop = h_loop_new();
    nf_tls_ctx_t *stls = tls ? nf_tls(1) : NULL;
    SSL_CTX *ctls = tls ? raw_tls_ctx(0) : NULL;
    nf_filter_spec_t spec[1];
    uint16_t port;
    nf_ws_server_t *s = start_server(loop, stls, 0, spec, &port);
    make_messages(version == 76);
    const char *req = version == 76 ? k_req76 : version == 8 ? k_req8 : k_req13;
    size_t rl = strlen(req);
    static uint8_t msg[sizeof k_req76 + BIG + 64 + SMALLS * 64];
    memcpy(msg, req, rl);
    size_t n = rl + (version == 76 ? hixie_frames(msg + rl) : rfc_frames(msg + rl, sizeof msg - rl, 1));
    uint8_t answer76[16];
    if (version == 76)
        assert_int_equal(nf_ws_hixie76_answer(k_key1, strlen(k_key1), k_key2, strlen(k_key2),
                                              (const uint8_t *)req + rl - 8, answer76),
                         0);
    char what[64];
    snprintf(what, sizeof what, "server v%d%s", version, tls ? " TLS" : "");
    for (size_t cut = 1; cut <= rl; cut++) {
        s_opened = s_msgs = 0;
        peer_t p = connect_peer(loop, port, ctls);
        if (peer_send(&p, msg, cut) != 0)
            fail_msg("%s, cut %zu: send", what, cut);
        pump(loop);
        if (peer_send(&p, msg + cut, n - cut) != 0)
            fail_msg("%s, cut %zu: send the rest", what, cut);
        char head[1024];
        int hl = peer_recv_head(&p, head, sizeof head);
        if (hl < 0 || strncmp(head, "HTTP/1.1 101 ", 13) != 0)
            fail_msg("%s, cut %zu: answer %s", what, cut, hl < 0 ? "missing" : head);
        if (version == 76) {
            uint8_t a[16];
            if (peer_recv(&p, a, 16) != 0 || memcmp(a, answer76, 16) != 0)
                fail_msg("%s, cut %zu: wrong challenge answer", what, cut);
            expect_hixie_echoes(&p, what, cut);
        } else {
            expect_rfc_echoes(&p, what, cut);
        }
        if (s_opened != 1 || s_msgs != 1 + SMALLS)
            fail_msg("%s, cut %zu: %d opened, %d messages", what, cut, s_opened, s_msgs);
        peer_close(&p);
    }
    nf_ws_server_close(s, 1001, NULL);
    h_loop_finish(loop, 5000);
    nf_tls_ctx_free(stls);
    SSL_CTX_free(ctls);
}

static void test_server_cuts(void **state)
{
    (void)state;
    server_cuts(13, 0);
}
static void test_server_cuts_hybi8(void **state)
{
    (void)state;
    server_cuts(8, 0);
}
static void test_server_cuts_hixie76(void **state)
{
    (void)state;
    server_cuts(76, 0);
}
static void test_server_cuts_tls(void **state)
{
    (void)state;
    server_cuts(13, 1);
}
static void test_server_cuts_hixie76_tls(void **state)
{
    (void)state;
    server_cuts(76, 1);
}

/* A request head of max_header bytes is answered 101, one of max_header + 1
 * is refused with 431, wherever it is cut (frames follow in both cases). */
static void test_server_too_large(void **state)
{
    (void)state;
    enum { MAXH = 512 };
    nf_loop_t *loop = h_loop_new();
    uint16_t port;
    nf_filter_spec_t spec[1];
    nf_ws_server_t *s = start_server(loop, NULL, MAXH, spec, &port);
    make_messages(0);
    static uint8_t msg[MAXH + 1 + BIG + 64 + SMALLS * 64];
    for (size_t size = MAXH; size <= MAXH + 1; size++) {
        /* k_req13 with a padding field making the head `size` bytes */
        size_t base = strlen(k_req13) - 2, pad = size - base - strlen("X-Pad: \r\n") - 2;
        memcpy(msg, k_req13, base);
        size_t o = base;
        memcpy(msg + o, "X-Pad: ", 7);
        o += 7;
        memset(msg + o, 'p', pad);
        o += pad;
        memcpy(msg + o, "\r\n\r\n", 4);
        o += 4;
        assert_int_equal(o, size);
        size_t n = o + rfc_frames(msg + o, sizeof msg - o, 1);
        for (size_t cut = 1; cut <= size; cut += size == MAXH ? 7 : 1) {
            peer_t p = connect_peer(loop, port, NULL);
            if (peer_send(&p, msg, cut) != 0)
                fail_msg("head of %zu, cut %zu: send", size, cut);
            pump(loop);
            peer_send(&p, msg + cut, n - cut); /* may fail: the server closes */
            char head[1024];
            int hl = peer_recv_head(&p, head, sizeof head);
            if (size == MAXH) {
                if (hl < 0 || strncmp(head, "HTTP/1.1 101 ", 13) != 0)
                    fail_msg("head of %zu, cut %zu: answer %s", size, cut, hl < 0 ? "missing" : head);
                expect_rfc_echoes(&p, "exactly max_header", cut);
            } else {
                if (hl < 0 || strncmp(head, "HTTP/1.1 431 ", 13) != 0)
                    fail_msg("head of %zu, cut %zu: answer %s", size, cut, hl < 0 ? "missing" : head);
            }
            peer_close(&p);
        }
    }
    nf_ws_server_close(s, 1001, NULL);
    h_loop_finish(loop, 5000);
}

/* ---- client side ------------------------------------------------------- */

typedef struct cli {
    h_ws_end_t end; /* first: h_ws_end_open/close record here */
    int msgs, bad;
} cli_t;

static void c_message(nf_ws_conn_t *ws, unsigned op, const char *data, size_t len)
{
    cli_t *c = nf_ws_conn_get_data(ws);
    int i = c->msgs++;
    if (i == 0) {
        if (len != BIG || memcmp(data, big, BIG) != 0 || (op != NF_WS_OP_BINARY && op != NF_WS_OP_TEXT))
            c->bad++;
    } else if (i > SMALLS || op != NF_WS_OP_TEXT || len != small_len(i - 1) || memcmp(data, smalls[i - 1], len) != 0) {
        c->bad++;
    }
}
static const nf_ws_handler_t c_handler = {
    .on_open = h_ws_end_open, .on_message = c_message, .on_close = h_ws_end_close};

static int listen_raw(uint16_t *port)
{
    int fd = h_tcp_listen(16, port);
    h_set_nonblock(fd, 1);
    return fd;
}

static const char *field(const char *head, const char *name, size_t *len)
{
    const char *p = strcasestr(head, name);
    if (!p)
        return NULL;
    p += strlen(name);
    while (*p == ' ')
        p++;
    *len = strcspn(p, "\r");
    return p;
}

/* The 101 a server writes for this request (RFC 6455 or Hixie-76). */
static size_t answer_for(const char *req, int version, char *out, size_t cap)
{
    size_t kl = 0;
    if (version == 76) {
        size_t l1 = 0, l2 = 0;
        const char *k1 = field(req, "\r\nSec-WebSocket-Key1:", &l1);
        const char *k2 = field(req, "\r\nSec-WebSocket-Key2:", &l2);
        assert_non_null(k1);
        assert_non_null(k2);
        int n = snprintf(out, cap,
                         "HTTP/1.1 101 WebSocket Protocol Handshake\r\nUpgrade: WebSocket\r\nConnection: Upgrade\r\n"
                         "Sec-WebSocket-Origin: http://localhost\r\nSec-WebSocket-Location: ws://localhost/x\r\n\r\n");
        const char *key3 = strstr(req, "\r\n\r\n") + 4;
        assert_int_equal(nf_ws_hixie76_answer(k1, l1, k2, l2, (const uint8_t *)key3, (uint8_t *)out + n), 0);
        return (size_t)n + 16;
    }
    const char *k = field(req, "\r\nSec-WebSocket-Key:", &kl);
    assert_non_null(k);
    char cat[128];
    assert_true(kl + 36 < sizeof cat);
    memcpy(cat, k, kl);
    memcpy(cat + kl, "258EAFA5-E914-47DA-95CA-C5AB0DC85B11", 36);
    unsigned char sha[SHA_DIGEST_LENGTH];
    SHA1((const unsigned char *)cat, kl + 36, sha);
    char acc[64];
    EVP_EncodeBlock((unsigned char *)acc, sha, SHA_DIGEST_LENGTH);
    return (size_t)snprintf(out, cap,
                            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                            "Sec-WebSocket-Accept: %s\r\n\r\n",
                            acc);
}

/* A raw server writes its 101 (and, for Hixie-76, the 16-byte answer) and
 * the frames in two pieces, cut at every byte of what precedes the frames
 * (every 5th when padded and accepted). pad_to (0: none) adds a field that
 * makes the head that long; expect_ok: all messages arrive intact, else the
 * handshake fails (NF_EWS_HANDSHAKE, 1006) and nothing arrives. */
static void client_cuts(int version, int tls, size_t max_header, size_t pad_to, int expect_ok)
{
    nf_loop_t *loop = h_loop_new();
    nf_tls_ctx_t *ctls = tls ? nf_tls(0) : NULL;
    SSL_CTX *stls = tls ? raw_tls_ctx(1) : NULL;
    uint16_t port;
    int lfd = listen_raw(&port);
    make_messages(version == 76);
    char url[64];
    snprintf(url, sizeof url, "%s://localhost:%u/x", tls ? "wss" : "ws", port);
    char what[64];
    snprintf(what, sizeof what, "client v%d%s head %zu", version, tls ? " TLS" : "", pad_to);
    static uint8_t msg[20000 + BIG + 64 + SMALLS * 64];
    size_t head_len = 0;
    for (size_t cut = 1; !head_len || cut <= head_len; cut += pad_to && expect_ok ? 5 : 1) {
        cli_t c = {0};
        nf_ws_client_config_t cfg = {.handler = &c_handler,
                                     .data = &c,
                                     .version = version,
                                     .tls = ctls,
                                     .opts = {.max_header = max_header, .close_timeout_ms = 500}};
        H_ASSERT_ERR(nf_ws_connect(loop, url, &cfg, NULL), 0);
        peer_t p = {.loop = loop, .fd = -1};
        uint64_t until = h_now_ms() + 10000;
        while ((p.fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK)) < 0 && h_now_ms() < until) {
            pump(loop);
            struct pollfd pf = {.fd = lfd, .events = POLLIN};
            poll(&pf, 1, 1);
        }
        if (p.fd < 0)
            fail_msg("%s: no connection", what);
        peer_nodelay(p.fd);
        if (tls)
            peer_tls(&p, stls, 1);
        char req[2048];
        int rl = peer_recv_head(&p, req, sizeof req - 8);
        if (rl < 0)
            fail_msg("%s, cut %zu: no request", what, cut);
        if (version == 76 && peer_recv(&p, req + rl, 8) != 0) /* key3 */
            fail_msg("%s, cut %zu: no key3", what, cut);
        req[rl + (version == 76 ? 8 : 0)] = 0;
        char ans[512];
        size_t al = answer_for(req, version, ans, sizeof ans);
        size_t hl = version == 76 ? al - 16 : al; /* the head proper */
        size_t o = 0;
        if (pad_to) {
            /* a padding field after the status line, making the head pad_to bytes */
            const char *eol = strstr(ans, "\r\n") + 2;
            size_t first = (size_t)(eol - ans), extra = pad_to - hl;
            assert_true(extra > 12);
            memcpy(msg, ans, first);
            o = first;
            memcpy(msg + o, "X-Pad: ", 7);
            memset(msg + o + 7, 'p', extra - 9);
            memcpy(msg + o + extra - 2, "\r\n", 2);
            o += extra;
            memcpy(msg + o, eol, al - first);
            o += al - first;
            hl = pad_to;
        } else {
            memcpy(msg, ans, al);
            o = al;
        }
        head_len = version == 76 ? hl + 16 : hl; /* Hixie-76: cut the 16-byte answer too */
        size_t n = o + (version == 76 ? hixie_frames(msg + o) : rfc_frames(msg + o, sizeof msg - o, 0));
        if (peer_send(&p, msg, cut) != 0)
            fail_msg("%s, cut %zu: send", what, cut);
        pump(loop);
        peer_send(&p, msg + cut, n - cut); /* may fail when the client refuses */
        if (expect_ok) {
            H_RUN_UNTIL(loop, c.msgs == 1 + SMALLS || c.end.closed, 10000);
            if (c.end.opened != 1 || c.msgs != 1 + SMALLS || c.bad || c.end.closed)
                fail_msg("%s, cut %zu: opened %d, %d messages, %d bad, closed %d (%u, %s)", what, cut, c.end.opened,
                         c.msgs, c.bad, c.end.closed, c.end.code, nf_err_name(c.end.error));
        } else {
            H_RUN_UNTIL(loop, c.end.closed, 10000);
            if (c.end.opened || c.msgs || c.end.code != 1006 || c.end.error != NF_EWS_HANDSHAKE)
                fail_msg("%s, cut %zu: opened %d, %d messages, close %u (%s)", what, cut, c.end.opened, c.msgs,
                         c.end.code, nf_err_name(c.end.error));
        }
        peer_close(&p); /* the client sees EOF (or its close goes unanswered) */
        H_RUN_UNTIL(loop, c.end.closed, 10000);
    }
    close(lfd);
    h_loop_finish(loop, 5000);
    nf_tls_ctx_free(ctls);
    SSL_CTX_free(stls);
}

static void test_client_cuts(void **state)
{
    (void)state;
    client_cuts(13, 0, 0, 0, 1);
}
static void test_client_cuts_hybi8(void **state)
{
    (void)state;
    client_cuts(8, 0, 0, 0, 1);
}
static void test_client_cuts_hixie76(void **state)
{
    (void)state;
    client_cuts(76, 0, 0, 0, 1);
}
static void test_client_cuts_tls(void **state)
{
    (void)state;
    client_cuts(13, 1, 0, 0, 1);
}
/* One read larger than max_header + 1 holding the head and the frames. */
static void test_client_small_max_header(void **state)
{
    (void)state;
    client_cuts(13, 0, 256, 0, 1);
    client_cuts(76, 0, 256, 0, 1);
}
/* A head of exactly max_header passes; one byte more fails the handshake. */
static void test_client_too_large(void **state)
{
    (void)state;
    client_cuts(13, 0, 512, 512, 1);
    client_cuts(13, 0, 512, 513, 0);
}

/* the certificates, made once for the group */
static int setup(void **state) { return (void)state, tc_make(&certs); }
static int teardown(void **state) { return (void)state, tc_cleanup(&certs), 0; }

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_server_cuts),
        cmocka_unit_test(test_server_cuts_hybi8),
        cmocka_unit_test(test_server_cuts_hixie76),
        cmocka_unit_test(test_server_cuts_tls),
        cmocka_unit_test(test_server_cuts_hixie76_tls),
        cmocka_unit_test(test_server_too_large),
        cmocka_unit_test(test_client_cuts),
        cmocka_unit_test(test_client_cuts_hybi8),
        cmocka_unit_test(test_client_cuts_hixie76),
        cmocka_unit_test(test_client_cuts_tls),
        cmocka_unit_test(test_client_small_max_header),
        cmocka_unit_test(test_client_too_large),
    };
    return cmocka_run_group_tests_name("ws_split", tests, setup, teardown);
}
