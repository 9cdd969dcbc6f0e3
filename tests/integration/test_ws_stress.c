/* Integration: bad WebSocket input that the other tests do not cover.
 *  - a server that masks its frames, and one that sends a 2^63-length frame
 *    header: our client fails with 1002 (close frame sent, on_close 1002,
 *    NF_EWS_PROTOCOL);
 *  - 10,000 connections opened and dropped mid-handshake against one server
 *    (right after connect, mid request line, mid headers, right after the
 *    whole request; closed with a reset, a FIN, or left to the server's
 *    handshake timeout), in batches from a thread,
 *    while a well-behaved client keeps echoing patterned messages and checks
 *    every byte. Each bad connection closes only itself; the server's
 *    connection count comes back to the good one, then to 0 (and ASan sees
 *    no leak in the ASan run of the suite). */
#include "helpers.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <netframe/ws.h>

/* ---- a raw server that breaks the rules ------------------------------------ */

typedef struct rawsrv {
    int lfd;
    uint16_t port;
    const uint8_t *frame; /* sent after the 101 */
    size_t frame_len;
    unsigned close_code; /* from the client's close frame */
    int eof;
    h_result_t res;
} rawsrv_t;

static void *rawsrv_main(void *arg)
{
    rawsrv_t *r = arg;
    int fd = accept(r->lfd, NULL, NULL);
    if (fd < 0) {
        h_result_fail(&r->res, "accept");
        goto done;
    }
    char req[4096];
    size_t n = 0;
    while (n < 4 || memcmp(req + n - 4, "\r\n\r\n", 4) != 0) {
        if (n + 1 >= sizeof req || h_recv_full(fd, req + n, 1, 5000) != 1) {
            h_result_fail(&r->res, "request");
            goto out;
        }
        n++;
    }
    req[n] = 0;
    const char *k = strstr(req, "Sec-WebSocket-Key: ");
    if (!k) {
        h_result_fail(&r->res, "no key");
        goto out;
    }
    char buf[128];
    memcpy(buf, k + 19, 24);
    memcpy(buf + 24, "258EAFA5-E914-47DA-95CA-C5AB0DC85B11", 36);
    unsigned char md[20];
    unsigned mdlen = 0;
    char acc[40];
    EVP_Digest(buf, 60, md, &mdlen, EVP_sha1(), NULL);
    EVP_EncodeBlock((unsigned char *)acc, md, 20);
    char ans[256];
    int al = snprintf(ans, sizeof ans,
                      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      "Sec-WebSocket-Accept: %s\r\n\r\n",
                      acc);
    if (h_send_all(fd, ans, (size_t)al, 5000) != 0 || h_send_all(fd, r->frame, r->frame_len, 5000) != 0) {
        h_result_fail(&r->res, "send");
        goto out;
    }
    uint8_t cf[6 + 125]; /* the client's close frame: masked, code + reason */
    if (h_recv_full(fd, cf, 6, 5000) != 6 || cf[0] != 0x88 || (cf[1] & 0x80) == 0 || (cf[1] & 0x7f) < 2 ||
        (cf[1] & 0x7f) > 125 || h_recv_full(fd, cf + 6, cf[1] & 0x7fu, 5000) != (cf[1] & 0x7f)) {
        h_result_fail(&r->res, "no close frame from the client");
        goto out;
    }
    r->close_code = (unsigned)(cf[6] ^ cf[2]) << 8 | (unsigned)(cf[7] ^ cf[3]);
    r->eof = h_recv_eof(fd, 5000) == 0;
out:
    close(fd);
done:
    return h_peer_done(&r->res);
}

static const nf_ws_handler_t c_h = {.on_open = h_ws_end_open, .on_close = h_ws_end_close};

static void client_vs_bad_server(const uint8_t *frame, size_t len)
{
    nf_loop_t *loop = h_loop_new();
    rawsrv_t r = {.frame = frame, .frame_len = len};
    r.lfd = h_tcp_listen(4, &r.port);
    pthread_t t = h_thread_start(rawsrv_main, &r);
    h_ws_end_t c = {0};
    char url[64];
    snprintf(url, sizeof url, "ws://127.0.0.1:%u/", r.port);
    nf_ws_client_config_t cfg = {.handler = &c_h, .data = &c, .opts = {.close_timeout_ms = 2000}};
    H_ASSERT_ERR(nf_ws_connect(loop, url, &cfg, NULL), 0);
    H_RUN_UNTIL(loop, c.closed && atomic_load(&r.res.done), 10000);
    h_thread_join(t, 5000);
    H_ASSERT_PEER_OK(&r.res);
    assert_int_equal(c.opened, 1);
    assert_int_equal(c.code, 1002);
    H_ASSERT_ERR(c.error, NF_EWS_PROTOCOL);
    assert_int_equal(r.close_code, 1002);
    assert_true(r.eof);
    close(r.lfd);
    h_loop_finish(loop, 5000);
}

static void test_masked_server_frame(void **state)
{
    (void)state;
    static const uint8_t f[] = {0x81, 0x80 | 5, 1, 2, 3, 4, 'h' ^ 1, 'e' ^ 2, 'l' ^ 3, 'l' ^ 4, 'o' ^ 1};
    client_vs_bad_server(f, sizeof f);
}

static void test_len63_server_frame(void **state)
{
    (void)state;
    static const uint8_t f[] = {0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 0};
    client_vs_bad_server(f, sizeof f);
}

/* ---- 10,000 connections dropped mid-handshake ------------------------------- */

#define N_BAD 10000
#define BATCH 1000

static atomic_uint g_server_conns; /* published by the loop thread */
static int s_opened, s_closed;

static void s_open(nf_ws_conn_t *ws)
{
    (void)ws;
    s_opened++;
}
static void s_message(nf_ws_conn_t *ws, unsigned op, const char *d, size_t n) { nf_ws_send(ws, op, d, n); }
static void s_close(nf_ws_conn_t *ws, unsigned code, const char *r, size_t rl)
{
    (void)ws, (void)code, (void)r, (void)rl;
    s_closed++;
}
static const nf_ws_handler_t s_h = {.on_open = s_open, .on_message = s_message, .on_close = s_close};
static const nf_ws_route_t s_routes[] = {{.path = "/echo", .handler = &s_h}};

static const char k_full[] = "GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                             "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

typedef struct churn {
    uint16_t port;
    int connected, refused, timed_out;
    h_result_t res;
} churn_t;

/* How much of the request connection i sends before it goes (0: nothing). */
static size_t cut_of(int i)
{
    switch (i % 5) {
    case 0: return 0;                  /* right after connect */
    case 1: return 7;                  /* mid request line: "GET /ec" */
    case 2: return 48;                 /* mid headers */
    case 3: return sizeof k_full - 2;  /* all but the last LF */
    default: return sizeof k_full - 1; /* the whole request */
    }
}

static void *churn_main(void *arg)
{
    churn_t *ch = arg;
    static int fds[BATCH];
    for (int base = 0; base < N_BAD; base += BATCH) {
        int nb = N_BAD - base < BATCH ? N_BAD - base : BATCH;
        for (int k = 0; k < nb; k++) {
            int i = base + k;
            int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
            int one = 1;
            struct timeval tv = {.tv_sec = 10};
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
            /* spread over 127.0.0.2-65 */
            setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
            struct sockaddr_in src = {.sin_family = AF_INET};
            src.sin_addr.s_addr = htonl(0x7f000002u + (uint32_t)(i % 64));
            bind(fd, (struct sockaddr *)&src, sizeof src);
            struct sockaddr_in dst = {.sin_family = AF_INET, .sin_port = htons(ch->port)};
            dst.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            if (connect(fd, (struct sockaddr *)&dst, sizeof dst) != 0) {
                ch->refused++;
                close(fd);
                fds[k] = -1;
                continue;
            }
            ch->connected++;
            size_t cut = cut_of(i);
            if (cut && send(fd, k_full, cut, MSG_NOSIGNAL) != (ssize_t)cut)
                h_result_fail(&ch->res, "send %d", i);
            fds[k] = fd;
        }
        /* How each one goes: most with a reset, or by stopping (the
         * server's handshake timeout closes it first, then we read EOF);
         * one in 50 with a FIN of ours. Few FINs of ours: each leaves a
         * TIME_WAIT on an ephemeral port that other tests on the machine
         * need. */
        for (int k = 0; k < nb; k++) {
            int i = base + k;
            if (fds[k] < 0)
                continue;
            if (i % 50 == 7) {
                close(fds[k]);
                fds[k] = -1;
            } else if (i / 5 % 2 || cut_of(i) == sizeof k_full - 1) {
                h_close_reset(fds[k]);
                fds[k] = -1;
            }
        }
        for (int k = 0; k < nb; k++) {
            if (fds[k] < 0)
                continue;
            char sink[512];
            ssize_t r;
            while ((r = recv(fds[k], sink, sizeof sink, 0)) > 0) {
            }
            /* the server's close: a FIN, or a reset when it closed with
             * bytes of ours not yet read (a loaded machine) */
            if (r < 0 && errno != ECONNRESET)
                h_result_fail(&ch->res, "connection %d: no end from the server (%d)", base + k, errno);
            else
                ch->timed_out++;
            close(fds[k]);
        }
        /* let the server catch up: bounded fds on both sides */
        uint64_t deadline = h_now_ms() + 10000;
        while (atomic_load(&g_server_conns) > 1 + BATCH / 2 && h_now_ms() < deadline)
            h_sleep_ms(1);
    }
    return h_peer_done(&ch->res);
}

/* the good client: echoes patterned messages and checks every byte */
typedef struct good {
    nf_ws_conn_t *ws;
    nf_timer_t pace; /* one echo per millisecond: checks, without hogging a core */
    int opened, closed;
    unsigned code;
    uint64_t sent, got, bytes;
    uint32_t seq;
    char fail[128];
} good_t;

static const size_t g_sizes[] = {1, 100, 126, 1000, 5000, 20000};

static void good_send(good_t *g)
{
    static char buf[20000];
    size_t len = g_sizes[g->seq % 6];
    h_pattern_fill(buf, len, 0, g->seq);
    if (nf_ws_send(g->ws, NF_WS_OP_BINARY, buf, len) != NF_WRITE_OK)
        snprintf(g->fail, sizeof g->fail, "send %u failed", g->seq);
    g->sent++;
}

static void g_open(nf_ws_conn_t *ws)
{
    good_t *g = nf_ws_conn_get_data(ws);
    g->opened = 1;
    good_send(g);
}

static void g_message(nf_ws_conn_t *ws, unsigned op, const char *d, size_t n)
{
    good_t *g = nf_ws_conn_get_data(ws);
    size_t want = g_sizes[g->seq % 6];
    if (op != NF_WS_OP_BINARY || n != want || h_pattern_check(d, n, 0, g->seq) != SIZE_MAX)
        snprintf(g->fail, sizeof g->fail, "echo %u: op %u len %zu (want %zu) or content differs", g->seq, op, n, want);
    g->got++;
    g->bytes += n;
    g->seq++;
    if (!g->fail[0])
        nf_timer_start(&g->pace, g->pace.cb, 1, 0);
}

static void pace_fire(nf_timer_t *t)
{
    good_t *g = t->data;
    if (g->ws && !g->closed)
        good_send(g);
}

static void g_close(nf_ws_conn_t *ws, unsigned code, const char *r, size_t rl)
{
    (void)r, (void)rl;
    good_t *g = nf_ws_conn_get_data(ws);
    g->closed = 1;
    g->code = code;
    nf_timer_stop(&g->pace);
}
static const nf_ws_handler_t g_h = {.on_open = g_open, .on_message = g_message, .on_close = g_close};

static void test_churn_mid_handshake(void **state)
{
    (void)state;
    h_raise_nofile(8192);
    nf_loop_t *loop = h_loop_new();
    s_opened = s_closed = 0;
    nf_ws_server_config_t cfg = {
        .listen = {.host = "127.0.0.1", .backlog = 4096},
        .routes = s_routes,
        .nroutes = 1,
        .opts = {.handshake_timeout_ms = 200},
    };
    nf_ws_server_t *s;
    uint16_t port = h_ws_listen(loop, &cfg, &s);

    static good_t g;
    memset(&g, 0, sizeof g);
    nf_timer_init(loop, &g.pace);
    g.pace.data = &g;
    g.pace.cb = pace_fire;
    char url[64];
    snprintf(url, sizeof url, "ws://127.0.0.1:%u/echo", port);
    nf_ws_client_config_t ccfg = {.handler = &g_h, .data = &g};
    H_ASSERT_ERR(nf_ws_connect(loop, url, &ccfg, &g.ws), 0);
    H_RUN_UNTIL(loop, g.opened, 5000);
    assert_int_equal(nf_ws_server_conns(s), 1);

    churn_t ch = {.port = port};
    atomic_store(&g_server_conns, 1);
    pthread_t t = h_thread_start(churn_main, &ch);
    H_RUN_UNTIL(
        loop,
        (atomic_store(&g_server_conns, nf_ws_server_conns(s)), atomic_load(&ch.res.done) || g.fail[0] || g.closed),
        60000);
    h_thread_join(t, 5000);
    H_ASSERT_PEER_OK(&ch.res);
    if (g.fail[0])
        fail_msg("good client: %s", g.fail);
    assert_int_equal(g.closed, 0);
    assert_int_equal(ch.connected, N_BAD);
    /* every bad connection goes; the good one stays and keeps echoing */
    H_RUN_UNTIL(loop, nf_ws_server_conns(s) == 1, 20000);
    uint64_t got = g.got;
    H_RUN_UNTIL(loop, g.got >= got + 10 || g.fail[0], 5000);
    if (g.fail[0])
        fail_msg("good client: %s", g.fail);
    assert_int_equal(g.closed, 0);
    /* the bad ones that sent the whole request were upgraded, then saw EOF */
    assert_int_equal(s_opened - s_closed, 1);
    assert_true(ch.timed_out > N_BAD / 4); /* the server closed those first */
    print_message("bad connections: %d (server upgraded %d, timed out %d of them), good echoes: %llu (%llu bytes)\n",
                  ch.connected, s_opened - 1, ch.timed_out, (unsigned long long)g.got, (unsigned long long)g.bytes);
    H_ASSERT_ERR(nf_ws_close(g.ws, NF_WS_CLOSE_NORMAL, NULL, 0), 0);
    H_RUN_UNTIL(loop, g.closed && nf_ws_server_conns(s) == 0, 5000);
    assert_int_equal(g.code, 1000);
    assert_int_equal(s_opened, s_closed);
    nf_ws_server_close(s, 0, NULL);
    h_loop_finish(loop, 5000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_masked_server_frame),
        cmocka_unit_test(test_len63_server_frame),
        cmocka_unit_test(test_churn_mid_handshake),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
