/* Integration: peers that make the server answer and never read the answers
 * (issue 13, part 5a). Each case runs one flooding peer and one well-behaved
 * peer against one server loop for FLOOD_MS, and checks that
 *
 *   - the server's live heap grows by less than HEAP_LIMIT while the flood
 *     runs (heap accounting in-process: glibc's mallinfo2, or ASan's
 *     allocator; VmRSS is printed beside it),
 *   - the flooding connection is closed (NF_ESLOW) or paused (its sends
 *     stall: the server stopped reading it), as the case expects,
 *   - the well-behaved peer keeps exchanging messages, every byte verified.
 *
 * WebSocket: masked pings sent non-stop (empty ones, and 125-byte ones),
 * never reading, against a server configured like chat_server (flow filter
 * below the WebSocket filter: 64 KiB in flight, 256 KiB held), drop-oldest
 * and NF_FLOW_CLOSE. The server also pushes a 4 KiB message to every
 * connection every 4 ms, as chat_server pushes its broadcasts: the flooder
 * does not read those either (and its connection has a small kernel send
 * buffer, as if it were far away), so its held output rises above
 * high_water. The same over TLS ({tls, flow, ws}, chat_server's stack with a
 * certificate): pongs then go down as TLS records.
 * Before issue 13 every ping queued a pong held past every limit: 2 GB of
 * RSS in seconds.
 *
 * TLS 1.3: an OpenSSL client sends KeyUpdate(update_requested) non-stop and
 * never reads; each one makes the server's OpenSSL write a KeyUpdate of its
 * own that no flow filter above TLS sees. Stacks {flow (NF_FLOW_CLOSE), tls}
 * and {tls, flow (drop-oldest)} (chat_server's TLS order), plus {tls} alone. */
#include "helpers.h"
#include "tls_certs.h"

#include <errno.h>
#include <malloc.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <netframe/flow.h>
#include <netframe/tls.h>
#include <netframe/ws.h>

#define FLOOD_MS   2500
#define HEAP_LIMIT (4u << 20)

#ifdef __SANITIZE_ADDRESS__
size_t __sanitizer_get_current_allocated_bytes(void);
static size_t heap_now(void) { return __sanitizer_get_current_allocated_bytes(); }
#else
static size_t heap_now(void)
{
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
}
#endif

static long rss_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld", &v) == 1)
            break;
    if (f)
        fclose(f);
    return v;
}

static tc_certs_t certs;

/* the certificates, made once for the group */
static int setup(void **state) { return (void)state, tc_make(&certs); }
static int teardown(void **state) { return (void)state, tc_cleanup(&certs), 0; }

/* ---- what the server saw -------------------------------------------------- */

typedef struct srv {
    int opened, closed;
    void *conns[4];        /* nf_ws_conn_t * or nf_conn_t *, in opening order: [0] floods */
    int flood_reason;      /* its close reason (0: still open) */
    int good_reason;       /* the good peer's close reason */
    atomic_int good_round; /* the good peer's rounds so far */
    size_t heap0, heap_max;
    long rss0, rss_max;
    nf_timer_t sampler, pusher;
} srv_t;
static srv_t srv;

static void sample(nf_timer_t *t)
{
    (void)t;
    if (!srv.heap0) {
        if (atomic_load(&srv.good_round) < 1)
            return;
        srv.heap0 = srv.heap_max = heap_now(); /* both peers connected and served */
        srv.rss0 = srv.rss_max = rss_kib();
        return;
    }
    size_t h = heap_now();
    long r = rss_kib();
    if (h > srv.heap_max)
        srv.heap_max = h;
    if (r > srv.rss_max)
        srv.rss_max = r;
}

static void conn_closed(void *conn, int reason)
{
    srv.closed++;
    if (conn == srv.conns[0])
        srv.flood_reason = reason ? reason : 1;
    else
        srv.good_reason = reason;
    for (int i = 0; i < 4; i++) /* gone: push() must not reach it */
        if (srv.conns[i] == conn)
            srv.conns[i] = NULL;
}

static void conn_opened(void *conn)
{
    if (srv.opened < 4)
        srv.conns[srv.opened] = conn;
    srv.opened++;
}

/* ---- peers ----------------------------------------------------------------- */

typedef struct peer {
    uint16_t port;
    size_t ping_len; /* WebSocket flooder: the pings' payload */
    atomic_int stop; /* good peers: the flood is over */
    uint64_t sent;   /* flooder: bytes sent */
    unsigned stalled_ms;
    int closed; /* flooder: the server closed it */
    int rounds; /* good peer */
    int tls;    /* WebSocket peers: over TLS */
    h_result_t res;
} peer_t;

/* A peer's connection: a socket, or TLS over it (OpenSSL, blocking). */
typedef struct io {
    int fd;
    SSL *ssl;
    SSL_CTX *ctx;
} io_t;

static SSL *tls_client(SSL_CTX **ctxp, int fd);

static ssize_t io_send(io_t *io, const void *buf, size_t len)
{
    if (!io->ssl)
        return send(io->fd, buf, len, MSG_NOSIGNAL);
    size_t n;
    if (SSL_write_ex(io->ssl, buf, len, &n))
        return (ssize_t)n;
    int e = SSL_get_error(io->ssl, 0);
    ERR_clear_error();
    errno = e == SSL_ERROR_WANT_WRITE ? EAGAIN : EPIPE;
    return -1;
}

static int io_send_all(io_t *io, const void *buf, size_t len)
{
    if (!io->ssl)
        return h_send_all(io->fd, buf, len, 5000);
    size_t n;
    return SSL_write_ex(io->ssl, buf, len, &n) == 1 && n == len ? 0 : -1;
}

static ssize_t io_recv_full(io_t *io, void *buf, size_t len)
{
    if (!io->ssl)
        return h_recv_full(io->fd, buf, len, 5000);
    size_t got = 0, n;
    while (got < len && SSL_read_ex(io->ssl, (char *)buf + got, len - got, &n) == 1)
        got += n;
    ERR_clear_error();
    return (ssize_t)got;
}

static void io_close(io_t *io)
{
    SSL_free(io->ssl);
    SSL_CTX_free(io->ctx);
    if (io->fd >= 0)
        close(io->fd);
}

static int tcp_small_rcvbuf(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int small = 4096;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small); /* before connect: a small window */
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(0x7f000001)};
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    struct timeval tv = {0, 100 * 1000};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    return fd;
}

/* Sends all of buf until `deadline`; counts time spent blocked. Returns 0,
 * 1 when the deadline passed, -1 when the server closed the connection. */
static int flood_send(peer_t *p, io_t *io, const void *buf, size_t len, uint64_t deadline)
{
    size_t off = 0;
    while (off < len) {
        if (h_now_ms() >= deadline)
            return 1;
        ssize_t n = io_send(io, (const char *)buf + off, len - off);
        if (n > 0) {
            off += (size_t)n;
            p->sent += (uint64_t)n;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            p->stalled_ms += 100;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else {
            p->closed = 1;
            return -1;
        }
    }
    return 0;
}

static const char k_req[] = "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

static int read_head(io_t *io)
{
    char c[4] = {0};
    while (memcmp(c, "\r\n\r\n", 4) != 0) {
        char b;
        if (io_recv_full(io, &b, 1) != 1)
            return -1;
        memmove(c, c + 1, 3);
        c[3] = b;
    }
    return 0;
}

/* A masked client frame into out; returns its size (payload <= 65535). */
static size_t ws_frame(uint8_t *out, unsigned op, const uint8_t *p, size_t n)
{
    static const uint8_t key[4] = {0x11, 0x22, 0x33, 0x44};
    size_t h = 2;
    out[0] = (uint8_t)(0x80 | op);
    if (n < 126) {
        out[1] = (uint8_t)(0x80 | n);
    } else {
        out[1] = 0x80 | 126;
        out[2] = (uint8_t)(n >> 8);
        out[3] = (uint8_t)n;
        h = 4;
    }
    memcpy(out + h, key, 4);
    for (size_t i = 0; i < n; i++)
        out[h + 4 + i] = p[i] ^ key[i & 3];
    return h + 4 + n;
}

static void *ws_flooder(void *arg)
{
    peer_t *p = arg;
    io_t io = {.fd = tcp_small_rcvbuf(p->port)};
    if (io.fd >= 0 && p->tls) {
        struct timeval tv = {5, 0}; /* blocking for the handshakes */
        setsockopt(io.fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        setsockopt(io.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        io.ssl = tls_client(&io.ctx, io.fd);
    }
    if (io.fd < 0 || (p->tls && !io.ssl) || io_send_all(&io, k_req, sizeof k_req - 1) != 0 || read_head(&io) != 0) {
        h_result_fail(&p->res, "flooder: handshake");
        goto out;
    }
    struct timeval tv = {0, 100 * 1000};
    setsockopt(io.fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    static uint8_t buf[65536];
    uint8_t pay[125];
    memset(pay, 'p', sizeof pay);
    size_t n = 0, one = 6 + p->ping_len;
    while (n + one <= sizeof buf)
        n += ws_frame(buf + n, 0x9, pay, p->ping_len);
    uint64_t deadline = h_now_ms() + FLOOD_MS;
    while (flood_send(p, &io, buf, n, deadline) == 0) { /* never reads */
    }
out:
    io_close(&io);
    return h_peer_done(&p->res);
}

/* Reads one server frame (unmasked); returns its opcode and payload size, or -1. */
static int ws_read_frame(io_t *io, uint8_t *pay, size_t cap, size_t *len)
{
    uint8_t h[4];
    if (io_recv_full(io, h, 2) != 2)
        return -1;
    size_t n = h[1] & 0x7f;
    if (n == 127)
        return -1;
    if (n == 126) {
        if (io_recv_full(io, h + 2, 2) != 2)
            return -1;
        n = (size_t)h[2] << 8 | h[3];
    }
    if (n > cap || io_recv_full(io, pay, n) != (ssize_t)n)
        return -1;
    *len = n;
    return h[0] & 0xf;
}

static void *ws_good(void *arg)
{
    peer_t *p = arg;
    io_t io = {.fd = h_tcp_connect("127.0.0.1", p->port)};
    if (io.fd >= 0 && p->tls)
        io.ssl = tls_client(&io.ctx, io.fd);
    if (io.fd < 0 || (p->tls && !io.ssl) || io_send_all(&io, k_req, sizeof k_req - 1) != 0 || read_head(&io) != 0) {
        h_result_fail(&p->res, "good: handshake");
        goto out;
    }
    while (!atomic_load(&p->stop)) {
        uint8_t msg[200], frame[256], pay[65536];
        h_pattern_fill(msg, sizeof msg, (uint64_t)p->rounds * sizeof msg, 7);
        size_t n = ws_frame(frame, 0x2, msg, sizeof msg), len;
        if (io_send_all(&io, frame, n) != 0) {
            h_result_fail(&p->res, "good: send in round %d", p->rounds);
            break;
        }
        for (;;) { /* broadcasts (text) come in between */
            int op = ws_read_frame(&io, pay, sizeof pay, &len);
            if (op == 0x1)
                continue;
            if (op != 0x2 || len != sizeof msg || memcmp(pay, msg, len) != 0) {
                h_result_fail(&p->res, "good: bad echo in round %d (op %d)", p->rounds, op);
                goto out;
            }
            break;
        }
        p->rounds++;
        atomic_store(&srv.good_round, p->rounds);
    }
out:
    io_close(&io);
    return h_peer_done(&p->res);
}

/* ---- WebSocket server ------------------------------------------------------ */

/* The flooder (the first to open) gets a small kernel send buffer, as if it
 * were far away: what it does not read backs up in the server at once. */
static void small_sndbuf(nf_conn_t *c)
{
    int small = 4096;
    if (srv.opened == 0)
        setsockopt(nf_conn_fd(c), SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
}

static void w_open(nf_ws_conn_t *ws)
{
    small_sndbuf(nf_ws_conn_tcp(ws));
    conn_opened(ws);
}
static void w_message(nf_ws_conn_t *ws, unsigned op, const char *d, size_t n) { nf_ws_send(ws, op, d, n); }
static void w_close(nf_ws_conn_t *ws, unsigned code, const char *r, size_t rl)
{
    (void)code, (void)r, (void)rl;
    conn_closed(ws, nf_ws_conn_error(ws));
}
static const nf_ws_handler_t w_h = {.on_open = w_open, .on_message = w_message, .on_close = w_close};
static const nf_ws_route_t w_routes[] = {{.path = "*", .handler = &w_h}};

/* chat_server's broadcasts: 4 KiB to every open connection. */
static void push(nf_timer_t *t)
{
    (void)t;
    static char blob[4096];
    for (int i = 0; i < srv.opened && i < 4; i++)
        if (srv.conns[i] && nf_ws_conn_is_open(srv.conns[i]))
            nf_ws_send(srv.conns[i], NF_WS_OP_TEXT, blob, sizeof blob);
}

static void forget_ws(void)
{
    for (int i = 0; i < 4; i++)
        srv.conns[i] = NULL;
}

static nf_tls_ctx_t *server_tls(void)
{
    nf_tls_config_t tc = {.server = 1, .min_version = NF_TLS_1_3};
    tc.cert_file = tc_path(&certs, "server.pem");
    tc.key_file = tc_path(&certs, "server.key");
    if (getenv("FLOOD_NOCAP"))
        tc.max_self_bytes = (size_t)1 << 40;
    char err[256];
    nf_tls_ctx_t *tls = NULL;
    H_ASSERT_ERR(nf_tls_ctx_new(&tls, &tc, err, sizeof err), 0);
    return tls;
}

/* One flood against the server on loop: the flooder connects first, then
 * the good peer; the good peer runs FLOOD_MS, whatever happens to the
 * flooder, while the server samples its memory (and, with pushing, writes
 * to its connections); then the good peer stops, neither peer may have
 * failed, and the server sees both connections close. */
static void run_flood(nf_loop_t *loop, void *(*flooder)(void *), peer_t *bad, void *(*good_fn)(void *), peer_t *good,
                      int pushing)
{
    pthread_t tb = h_thread_start(flooder, bad);
    H_RUN_UNTIL(loop, srv.opened == 1, 5000);
    pthread_t tg = h_thread_start(good_fn, good);
    nf_timer_init(loop, &srv.sampler);
    nf_timer_start(&srv.sampler, sample, 10, 10);
    if (pushing) {
        nf_timer_init(loop, &srv.pusher);
        nf_timer_start(&srv.pusher, push, 4, 4);
    }
    uint64_t end = h_now_ms() + FLOOD_MS;
    H_RUN_UNTIL(loop, atomic_load(&bad->res.done) && h_now_ms() >= end, FLOOD_MS + 10000);
    atomic_store(&good->stop, 1);
    H_RUN_UNTIL(loop, atomic_load(&good->res.done), 10000);
    if (pushing)
        nf_timer_stop(&srv.pusher);
    nf_timer_stop(&srv.sampler);
    h_thread_join(tb, 5000);
    h_thread_join(tg, 5000);
    H_ASSERT_PEER_OK(&bad->res);
    H_ASSERT_PEER_OK(&good->res);
    H_RUN_UNTIL(loop, srv.closed == 2, 10000);
}

static void ws_flood(size_t ping_len, nf_flow_policy_t policy, int tls_on)
{
    nf_loop_t *loop = h_loop_new();
    memset(&srv, 0, sizeof srv);
    nf_flow_config_t fc = {.max_inflight_bytes = 64 * 1024, .max_held_bytes = 256 * 1024, .policy = policy};
    /* chat_server's stacks: {flow, ws}, and with a certificate {tls, flow, ws} */
    nf_tls_ctx_t *tls = tls_on ? server_tls() : NULL;
    nf_filter_spec_t flow[2] = {{&nf_flow_filter, &fc}};
    if (tls) {
        flow[0] = (nf_filter_spec_t){&nf_tls_filter, tls};
        flow[1] = (nf_filter_spec_t){&nf_flow_filter, &fc};
    }
    nf_ws_server_config_t cfg = {
        .listen = {.host = "127.0.0.1", .filters = flow, .nfilters = tls ? 2 : 1},
        .routes = w_routes,
        .nroutes = 1,
        .opts = {.max_frame = 4096, .max_message = 4096},
    };
    nf_ws_server_t *s;
    uint16_t ws_port = h_ws_listen(loop, &cfg, &s);
    peer_t bad = {.port = ws_port, .ping_len = ping_len, .tls = tls_on}, good = {.port = bad.port, .tls = tls_on};
    run_flood(loop, ws_flooder, &bad, ws_good, &good, 1);
    print_message("  ws%s %zu-byte pings, %s: flooder sent %.1f MiB (%u ms stalled, %s, reason %s), good peer %d "
                  "rounds; server heap %+.2f MiB, VmRSS %ld -> max %ld KiB\n",
                  tls_on ? " over TLS" : "", ping_len, policy == NF_FLOW_CLOSE ? "close" : "drop-oldest",
                  (double)bad.sent / (1 << 20), bad.stalled_ms, bad.closed ? "closed" : "open",
                  nf_err_name(srv.flood_reason), good.rounds, ((double)srv.heap_max - (double)srv.heap0) / (1 << 20),
                  srv.rss0, srv.rss_max);
    assert_true(srv.heap0 != 0);
    assert_true(srv.heap_max - srv.heap0 < HEAP_LIMIT);
    assert_true(good.rounds >= 20);
    if (policy == NF_FLOW_CLOSE) /* held output passed 256 KiB: a slow consumer */
        H_ASSERT_ERR(srv.flood_reason, NF_ESLOW);
    else /* held output above high_water: the server stopped reading it */
        assert_true(bad.stalled_ms >= 300 || srv.flood_reason == NF_ESLOW);
    forget_ws();
    nf_ws_server_close(s, 0, NULL);
    h_loop_finish(loop, 5000);
    nf_tls_ctx_free(tls);
}

static void test_ws_empty_pings_drop_oldest(void **state) { (void)state, ws_flood(0, NF_FLOW_DROP_OLDEST, 0); }
static void test_ws_empty_pings_close(void **state) { (void)state, ws_flood(0, NF_FLOW_CLOSE, 0); }
static void test_ws_125_pings_drop_oldest(void **state) { (void)state, ws_flood(125, NF_FLOW_DROP_OLDEST, 0); }
static void test_ws_125_pings_close(void **state) { (void)state, ws_flood(125, NF_FLOW_CLOSE, 0); }
static void test_wss_empty_pings_drop_oldest(void **state) { (void)state, ws_flood(0, NF_FLOW_DROP_OLDEST, 1); }
static void test_wss_125_pings_close(void **state) { (void)state, ws_flood(125, NF_FLOW_CLOSE, 1); }

/* ---- TLS: a KeyUpdate flood -------------------------------------------------- */

static SSL *tls_client(SSL_CTX **ctxp, int fd)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    *ctxp = ctx;
    if (!ctx)
        return NULL;
    SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    if (SSL_CTX_load_verify_locations(ctx, tc_path(&certs, "ca.pem"), NULL) != 1)
        return NULL;
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    SSL *ssl = SSL_new(ctx);
    if (!ssl)
        return NULL;
    SSL_set_fd(ssl, fd);
    SSL_set_tlsext_host_name(ssl, "localhost");
    SSL_set1_host(ssl, "localhost");
    if (SSL_connect(ssl) != 1) {
        SSL_free(ssl);
        return NULL;
    }
    return ssl;
}

static void *tls_flooder(void *arg)
{
    peer_t *p = arg;
    SSL_CTX *ctx = NULL;
    SSL *ssl = NULL;
    int fd = tcp_small_rcvbuf(p->port);
    if (fd >= 0) {
        struct timeval tv = {5, 0}; /* blocking for the handshake */
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    }
    if (fd < 0 || !(ssl = tls_client(&ctx, fd))) {
        h_result_fail(&p->res, "flooder: TLS handshake");
        goto out;
    }
    struct timeval tv = {0, 100 * 1000};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    /* records go to memory and out in batches: the flood is not limited by
     * one send per 27-byte record */
    BIO *mem = BIO_new(BIO_s_mem());
    SSL_set0_wbio(ssl, mem);
    uint64_t deadline = h_now_ms() + FLOOD_MS;
    for (;;) {
        for (int i = 0; i < 512; i++) {
            if (SSL_key_update(ssl, SSL_KEY_UPDATE_REQUESTED) != 1 || SSL_do_handshake(ssl) != 1) {
                h_result_fail(&p->res, "flooder: SSL_key_update");
                goto out;
            }
        }
        char *data;
        long n = BIO_get_mem_data(mem, &data);
        io_t raw = {.fd = fd}; /* the records are made: they go out as they are */
        if (flood_send(p, &raw, data, (size_t)n, deadline) != 0)
            break;
        (void)BIO_reset(mem);
    }
out:
    ERR_clear_error();
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    if (fd >= 0)
        close(fd);
    return h_peer_done(&p->res);
}

static void *tls_good(void *arg)
{
    peer_t *p = arg;
    SSL_CTX *ctx = NULL;
    SSL *ssl = NULL;
    int fd = h_tcp_connect("127.0.0.1", p->port);
    if (fd < 0 || !(ssl = tls_client(&ctx, fd))) {
        h_result_fail(&p->res, "good: TLS handshake");
        goto out;
    }
    while (!atomic_load(&p->stop)) {
        uint8_t msg[1000], back[1000];
        h_pattern_fill(msg, sizeof msg, (uint64_t)p->rounds * sizeof msg, 9);
        size_t got = 0, n;
        if (SSL_write_ex(ssl, msg, sizeof msg, &n) != 1) {
            h_result_fail(&p->res, "good: SSL_write in round %d", p->rounds);
            break;
        }
        while (got < sizeof back && SSL_read_ex(ssl, back + got, sizeof back - got, &n) == 1)
            got += n;
        if (got != sizeof back || memcmp(msg, back, sizeof msg) != 0) {
            h_result_fail(&p->res, "good: bad echo in round %d (%zu bytes)", p->rounds, got);
            break;
        }
        p->rounds++;
        atomic_store(&srv.good_round, p->rounds);
    }
out:
    ERR_clear_error();
    if (ssl)
        SSL_shutdown(ssl);
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    if (fd >= 0)
        close(fd);
    return h_peer_done(&p->res);
}

static void e_open(nf_conn_t *c)
{
    small_sndbuf(c);
    conn_opened(c);
}
static void e_read(nf_conn_t *c, const char *d, size_t n) { nf_conn_write(c, d, n); }
static char tls_why[128];
static void e_close(nf_conn_t *c, int reason)
{
    if (c == srv.conns[0])
        snprintf(tls_why, sizeof tls_why, "%s", nf_tls_conn_error(c) ? nf_tls_conn_error(c) : "");
    conn_closed(c, reason);
}
static const nf_conn_handler_t e_h = {.on_open = e_open, .on_read = e_read, .on_close = e_close};

typedef enum { FLOW_BELOW, FLOW_ABOVE, NO_FLOW } stack_kind_t;

static void tls_flood(stack_kind_t stack)
{
    nf_loop_t *loop = h_loop_new();
    memset(&srv, 0, sizeof srv);
    nf_tls_ctx_t *tls = server_tls();
    nf_flow_config_t fc = {.max_inflight_bytes = 64 * 1024,
                           .max_held_bytes = 256 * 1024,
                           .policy = stack == FLOW_BELOW ? NF_FLOW_CLOSE : NF_FLOW_DROP_OLDEST};
    nf_filter_spec_t filters[2];
    unsigned nf = 2;
    if (stack == FLOW_BELOW) {
        filters[0] = (nf_filter_spec_t){&nf_flow_filter, &fc};
        filters[1] = (nf_filter_spec_t){&nf_tls_filter, tls};
    } else if (stack == FLOW_ABOVE) {
        filters[0] = (nf_filter_spec_t){&nf_tls_filter, tls};
        filters[1] = (nf_filter_spec_t){&nf_flow_filter, &fc};
    } else {
        filters[0] = (nf_filter_spec_t){&nf_tls_filter, tls};
        nf = 1;
    }
    nf_listen_config_t lc = {.host = "127.0.0.1", .handler = &e_h, .filters = filters, .nfilters = nf};
    nf_listener_t *l;
    uint16_t port = h_listen_cfg(loop, &lc, &l);
    peer_t bad = {.port = port}, good = {.port = port};
    run_flood(loop, tls_flooder, &bad, tls_good, &good, 0);
    static const char *const names[] = {"{flow close, tls}", "{tls, flow drop-oldest}", "{tls}"};
    print_message("  TLS KeyUpdate flood, %s: flooder sent %.1f MiB (%u ms stalled, %s, reason %s: %s), good peer "
                  "%d rounds; server heap %+.2f MiB, VmRSS %ld -> max %ld KiB\n",
                  names[stack], (double)bad.sent / (1 << 20), bad.stalled_ms, bad.closed ? "closed" : "open",
                  nf_err_name(srv.flood_reason), tls_why, good.rounds,
                  ((double)srv.heap_max - (double)srv.heap0) / (1 << 20), srv.rss0, srv.rss_max);
    assert_true(srv.heap0 != 0);
    assert_true(srv.heap_max - srv.heap0 < HEAP_LIMIT);
    assert_true(good.rounds >= 20);
    H_ASSERT_ERR(srv.flood_reason, NF_ESLOW); /* it asked for more than it read */
    assert_true(bad.closed);
    forget_ws();
    h_listener_finish(loop, l, 5000);
    nf_tls_ctx_free(tls);
}

static void test_tls_keyupdate_flow_below(void **state) { (void)state, tls_flood(FLOW_BELOW); }
static void test_tls_keyupdate_flow_above(void **state) { (void)state, tls_flood(FLOW_ABOVE); }
static void test_tls_keyupdate_no_flow(void **state) { (void)state, tls_flood(NO_FLOW); }

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ws_empty_pings_drop_oldest),  cmocka_unit_test(test_ws_empty_pings_close),
        cmocka_unit_test(test_ws_125_pings_drop_oldest),    cmocka_unit_test(test_ws_125_pings_close),
        cmocka_unit_test(test_wss_empty_pings_drop_oldest), cmocka_unit_test(test_wss_125_pings_close),
        cmocka_unit_test(test_tls_keyupdate_flow_below),    cmocka_unit_test(test_tls_keyupdate_flow_above),
        cmocka_unit_test(test_tls_keyupdate_no_flow),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
