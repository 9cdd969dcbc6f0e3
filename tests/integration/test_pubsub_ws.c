/* Pub/sub with WebSocket subscribers: netframe's own clients on one loop
 * (one send per subscriber per iteration, except-sender, unsubscribe, a
 * closed subscriber's topics released, client connections subscribing to a
 * hub of their own: the per-subscriber copy path), a subscriber that never
 * reads (RSS and the others unaffected), and nf_server with 3 loops: a
 * publish on any loop, or from a thread that is no loop, reaches every
 * loop's subscribers once, in each publisher's order. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "integration/helpers.h"
#include "netframe/pubsub.h"
#include "netframe/server.h"

#define T(s) (s), strlen(s)

/* ---- one loop ------------------------------------------------------------ */

static nf_pubsub_t *g_hub;
static nf_ws_conn_t *g_srv[8];
static int g_nsrv;
static char g_srv_got[4096]; /* what the server received (client hub path) */
static size_t g_srv_len;

/* Path /TOPIC?INDEX: the client's index in the test. */
static void srv_open(nf_ws_conn_t *ws)
{
    const char *p = nf_ws_conn_path(ws) + 1;
    size_t n = strcspn(p, "?");
    g_srv[p[n] ? atoi(p + n + 1) : 0] = ws;
    g_nsrv++;
    assert_int_equal(nf_pubsub_subscribe(g_hub, ws, p, n), 0);
    assert_int_equal(nf_pubsub_subscribe(g_hub, ws, p, n), -EALREADY);
}
static void srv_msg(nf_ws_conn_t *ws, unsigned op, const char *data, size_t len)
{
    (void)ws, (void)op;
    memcpy(g_srv_got + g_srv_len, data, len);
    g_srv_len += len;
}
static void srv_close(nf_ws_conn_t *ws, unsigned code, const char *r, size_t n)
{
    (void)ws, (void)code, (void)r, (void)n;
}
static const nf_ws_handler_t srv_h = {.on_open = srv_open, .on_message = srv_msg, .on_close = srv_close};

typedef struct cli {
    h_ws_end_t end;
    char got[1 << 16];
    size_t len;
    unsigned msgs;
    unsigned last_op;
} cli_t;

static void cli_msg(nf_ws_conn_t *ws, unsigned op, const char *data, size_t len)
{
    cli_t *c = nf_ws_conn_get_data(ws);
    if (c->len + len <= sizeof c->got) {
        memcpy(c->got + c->len, data, len);
        c->len += len;
    }
    c->msgs++;
    c->last_op = op;
}
static const nf_ws_handler_t cli_h = {.on_open = h_ws_end_open, .on_message = cli_msg, .on_close = h_ws_end_close};

static nf_ws_conn_t *cli_connect(nf_loop_t *loop, uint16_t port, const char *path, cli_t *c)
{
    static nf_ws_client_config_t cc;
    cc.handler = &cli_h;
    cc.data = c;
    char url[64];
    snprintf(url, sizeof url, "ws://127.0.0.1:%u%s", (unsigned)port, path);
    nf_ws_conn_t *ws;
    assert_int_equal(nf_ws_connect(loop, url, &cc, &ws), 0);
    return ws;
}

static void test_ws_one_loop(void **state)
{
    (void)state;
    nf_loop_t *loop = h_loop_new();
    assert_int_equal(nf_pubsub_new(loop, NULL, &g_hub), 0);
    g_nsrv = 0;
    g_srv_len = 0;
    nf_ws_route_t routes[] = {{.path = "*", .handler = &srv_h}};
    nf_ws_server_config_t sc = {.routes = routes, .nroutes = 1};
    nf_ws_server_t *srv;
    uint16_t port = h_ws_listen(loop, &sc, &srv);
    static cli_t c[4];
    memset(c, 0, sizeof c);
    nf_ws_conn_t *ws[4];
    const char *paths[] = {"/room?0", "/room?1", "/room?2", "/other?3"};
    for (int i = 0; i < 4; i++)
        ws[i] = cli_connect(loop, port, paths[i], &c[i]);
    H_RUN_UNTIL(loop, g_nsrv == 4 && c[0].end.opened && c[1].end.opened && c[2].end.opened && c[3].end.opened, 5000);
    assert_int_equal(nf_pubsub_count(g_hub, T("room")), 3);
    assert_int_equal(nf_pubsub_count(g_hub, T("other")), 1);

    /* five publishes in one go: one send per subscriber (the transport
     * sends what an iteration queued at once) */
    nf_loop_stats_t s0 = h_stats(loop);
    for (int k = 0; k < 5; k++)
        assert_int_equal(nf_pubsub_publish(g_hub, T("room"), NF_WS_OP_TEXT, "abcde" + k, 1), 3);
    H_RUN_UNTIL(loop, c[0].msgs == 5 && c[1].msgs == 5 && c[2].msgs == 5, 5000);
    nf_loop_stats_t s1 = h_stats(loop);
    assert_int_equal(s1.writes - s0.writes, 3);
    for (int i = 0; i < 3; i++)
        assert_memory_equal(c[i].got, "abcde", 5);

    /* except the sender (0); binary stays binary; 1 unsubscribes */
    assert_int_equal(nf_pubsub_publish_except(g_hub, T("room"), NF_WS_OP_BINARY, "X", 1, g_srv[0]), 2);
    assert_int_equal(nf_pubsub_unsubscribe(g_hub, g_srv[1], T("room")), 0);
    assert_int_equal(nf_pubsub_unsubscribe(g_hub, g_srv[1], T("room")), -ENOENT);
    assert_int_equal(nf_pubsub_count(g_hub, T("room")), 2);
    assert_int_equal(nf_pubsub_publish(g_hub, T("room"), NF_WS_OP_TEXT, "Y", 1), 2);
    H_RUN_UNTIL(loop, c[0].msgs == 6 && c[2].msgs == 7, 5000);
    h_run_for(loop, 30);
    assert_memory_equal(c[0].got, "abcdeY", 6);
    assert_int_equal(c[1].msgs, 6);
    assert_memory_equal(c[1].got, "abcdeX", 6);
    assert_int_equal(c[1].last_op, NF_WS_OP_BINARY);
    assert_memory_equal(c[2].got, "abcdeXY", 7);
    assert_int_equal(c[3].msgs, 0); /* the other room */

    /* client 2 closes: its subscription goes with it */
    nf_ws_close(ws[2], 1000, NULL, 0);
    H_RUN_UNTIL(loop, c[2].end.closed && nf_pubsub_count(g_hub, T("room")) == 1, 5000);
    assert_int_equal(nf_pubsub_publish(g_hub, T("room"), NF_WS_OP_TEXT, "Z", 1), 1);
    H_RUN_UNTIL(loop, c[0].msgs == 7, 5000);
    assert_memory_equal(c[0].got, "abcdeYZ", 7);
    assert_int_equal(c[1].msgs, 6);

    /* clients subscribe to a hub of their own: each gets a masked copy */
    nf_pubsub_t *ch;
    assert_int_equal(nf_pubsub_new(loop, NULL, &ch), 0);
    assert_int_equal(nf_pubsub_subscribe(ch, ws[3], T("up")), 0);
    assert_int_equal(nf_pubsub_subscribe(ch, ws[1], T("up")), 0);
    assert_int_equal(nf_pubsub_subscribe(g_hub, ws[3], T("up")), -EBUSY); /* one hub each */
    assert_int_equal(nf_pubsub_publish(ch, T("up"), NF_WS_OP_TEXT, "UP", 2), 2);
    H_RUN_UNTIL(loop, g_srv_len == 4, 5000);
    assert_memory_equal(g_srv_got, "UPUP", 4);
    nf_pubsub_free(ch); /* detaches from the client connections */
    assert_null(nf_ws_conn_attached(ws[3]));

    nf_pubsub_free(g_hub);
    h_ws_server_stop(loop, srv, 1001);
    h_loop_finish(loop, 5000);
}

/* ---- permessage-deflate: compressed once --------------------------------- */

static void test_ws_deflate_once(void **state)
{
    (void)state;
    nf_loop_t *loop = h_loop_new();
    assert_int_equal(nf_pubsub_new(loop, NULL, &g_hub), 0);
    g_nsrv = 0;
    nf_ws_route_t routes[] = {{.path = "*", .handler = &srv_h}};
    nf_ws_server_config_t sc = {.routes = routes, .nroutes = 1};
    sc.opts.deflate = 1;
    sc.opts.pmd.server_no_context_takeover = 1;
    nf_ws_server_t *srv;
    uint16_t port = h_ws_listen(loop, &sc, &srv);
    static cli_t c[3];
    memset(c, 0, sizeof c);
    static nf_ws_client_config_t cc[3];
    nf_ws_conn_t *ws[3];
    for (int i = 0; i < 3; i++) {
        memset(&cc[i], 0, sizeof cc[i]);
        cc[i].handler = &cli_h;
        cc[i].data = &c[i];
        cc[i].opts.deflate = i < 2; /* client 2: no permessage-deflate */
        char url[64];
        snprintf(url, sizeof url, "ws://127.0.0.1:%u/z?%d", (unsigned)port, i);
        assert_int_equal(nf_ws_connect(loop, url, &cc[i], &ws[i]), 0);
    }
    H_RUN_UNTIL(loop, g_nsrv == 3 && c[0].end.opened && c[1].end.opened && c[2].end.opened, 5000);
    assert_true(nf_ws_conn_deflate_shareable(g_srv[0]));
    assert_false(nf_ws_conn_deflate_shareable(g_srv[2]));
    static char big[20000];
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = "pubsub "[i % 7];
    nf_loop_stats_t s0 = h_stats(loop);
    assert_int_equal(nf_pubsub_publish(g_hub, T("z"), NF_WS_OP_TEXT, big, sizeof big), 3);
    assert_int_equal(nf_pubsub_publish(g_hub, T("z"), NF_WS_OP_TEXT, "short", 5), 3); /* not compressed */
    assert_int_equal(nf_pubsub_publish(g_hub, T("z"), NF_WS_OP_BINARY, big, sizeof big), 3);
    H_RUN_UNTIL(loop, c[0].msgs == 3 && c[1].msgs == 3 && c[2].msgs == 3, 5000);
    nf_loop_stats_t s1 = h_stats(loop);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(c[i].len, 2 * sizeof big + 5);
        assert_memory_equal(c[i].got, big, sizeof big);
        assert_memory_equal(c[i].got + sizeof big, "short", 5);
        assert_memory_equal(c[i].got + sizeof big + 5, big, sizeof big);
        assert_int_equal(c[i].last_op, NF_WS_OP_BINARY);
    }
    /* the plain client's 40 KB, the compressed ones a few hundred bytes */
    uint64_t out = s1.bytes_out - s0.bytes_out;
    print_message("bytes out for 3 subscribers x 40 KB: %llu\n", (unsigned long long)out);
    assert_true(out > 2 * sizeof big && out < 2 * sizeof big + 4096);
    nf_pubsub_free(g_hub);
    h_ws_server_stop(loop, srv, 1001);
    h_loop_finish(loop, 5000);
}

/* ---- a subscriber that never reads -------------------------------------- */

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

static void test_ws_never_reads(void **state)
{
    (void)state;
    nf_loop_t *loop = h_loop_new();
    assert_int_equal(nf_pubsub_new(loop, NULL, &g_hub), 0);
    g_nsrv = 0;
    nf_ws_route_t routes[] = {{.path = "*", .handler = &srv_h}};
    nf_ws_server_config_t sc = {.routes = routes, .nroutes = 1};
    nf_ws_server_t *srv;
    uint16_t port = h_ws_listen(loop, &sc, &srv);
    /* a raw client: the handshake, then never a read again */
    int fd = h_tcp_connect("127.0.0.1", port);
    int small = 4096;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    const char req[] = "GET /feed?0 HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                       "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
    assert_int_equal(h_send_all(fd, req, sizeof req - 1, 2000), 0);
    H_RUN_UNTIL(loop, g_nsrv == 1, 5000);
    char head[129];
    assert_true(h_recv_full(fd, head, 129, 2000) == 129); /* the 101 answer's length */
    assert_memory_equal(head, "HTTP/1.1 101", 12);
    static cli_t reader;
    memset(&reader, 0, sizeof reader);
    cli_connect(loop, port, "/feed?1", &reader);
    H_RUN_UNTIL(loop, g_nsrv == 2 && reader.end.opened, 5000);

    static char msg[4096];
    long rss0 = rss_kib(), rss_max = rss0;
    size_t q_max = 0;
    const unsigned N = 20000; /* 80 MB published */
    for (unsigned i = 0; i < N; i++) {
        memset(msg, 'a' + i % 26, sizeof msg);
        nf_pubsub_publish(g_hub, T("feed"), NF_WS_OP_BINARY, msg, sizeof msg);
        while (reader.msgs + 64 < i + 1) /* the reader keeps up */
            nf_loop_run(loop, NF_RUN_ONCE);
        nf_loop_run(loop, NF_RUN_NOWAIT);
        size_t q = nf_conn_queued(nf_ws_conn_tcp(g_srv[0]));
        q_max = q > q_max ? q : q_max;
        if (i % 1000 == 0 && rss_kib() > rss_max)
            rss_max = rss_kib();
    }
    H_RUN_UNTIL(loop, reader.msgs == N, 10000);
    assert_int_equal(reader.last_op, NF_WS_OP_BINARY);
    nf_pubsub_topic_stats_t st;
    assert_int_equal(nf_pubsub_topic_stats(g_hub, T("feed"), &st), 0);
    print_message("never-reader: %llu of %u messages dropped for it, queue max %zu B; RSS %ld -> max %ld KiB\n",
                  (unsigned long long)st.dropped, N, q_max, rss0, rss_max);
    assert_int_equal(st.subscribers, 2);
    assert_true(st.dropped > N / 2);
    assert_int_equal(st.delivered + st.dropped, 2 * N);
    /* the hub's bound (1 MiB by default) plus one message */
    assert_true(q_max <= NF_WRITE_HIGH_DEFAULT + sizeof msg + 4);
#ifndef __SANITIZE_ADDRESS__                 /* ASan keeps freed memory in quarantine */
    assert_true(rss_max - rss0 < 16 * 1024); /* 80 MB went through */
#endif
    close(fd);
    nf_pubsub_free(g_hub);
    h_ws_server_stop(loop, srv, 1001);
    h_loop_finish(loop, 5000);
}

/* ---- nf_server with 3 loops ---------------------------------------------- */

#define LOOPS   3
#define CLIENTS 12
#define PER     30

static nf_pubsub_group_t *sv_group;
static nf_pubsub_t *sv_hub[LOOPS];
static nf_ws_server_t *sv_ws[LOOPS];
static _Atomic uint16_t sv_port;
static atomic_int sv_subs[LOOPS];

static void sv_open(nf_ws_conn_t *ws)
{
    nf_pubsub_t *ps = nf_ws_server_get_data(nf_ws_conn_server(ws));
    assert_int_equal(nf_pubsub_subscribe(ps, ws, T("all")), 0);
    for (int i = 0; i < LOOPS; i++)
        if (sv_hub[i] == ps)
            atomic_fetch_add(&sv_subs[i], 1);
}
static void sv_msg(nf_ws_conn_t *ws, unsigned op, const char *data, size_t len)
{
    nf_pubsub_publish(nf_ws_server_get_data(nf_ws_conn_server(ws)), T("all"), op, data, len);
}
static const nf_ws_handler_t sv_h = {.on_open = sv_open, .on_message = sv_msg, .on_close = srv_close};
static const nf_ws_route_t sv_routes[] = {{.path = "*", .handler = &sv_h}};

static int sv_start(nf_server_t *s, nf_loop_t *loop, unsigned index)
{
    (void)s;
    nf_pubsub_config_t pc = {.group = sv_group, .index = index};
    int rc = nf_pubsub_new(loop, &pc, &sv_hub[index]);
    if (rc)
        return rc;
    nf_ws_server_config_t cfg = {.routes = sv_routes, .nroutes = 1, .data = sv_hub[index]};
    cfg.listen.reuseport = 1;
    cfg.listen.port = atomic_load(&sv_port);
    rc = nf_ws_listen(loop, &cfg, &sv_ws[index]);
    if (rc)
        return rc;
    nf_ws_server_set_data(sv_ws[index], sv_hub[index]);
    if (index == 0) {
        nf_addr_t a;
        nf_ws_server_addr(sv_ws[0], &a);
        atomic_store(&sv_port, nf_addr_port(&a));
    }
    return 0;
}
static void sv_stop(nf_server_t *s, nf_loop_t *loop, unsigned index)
{
    (void)s, (void)loop;
    nf_ws_server_close(sv_ws[index], 1001, NULL);
    nf_pubsub_free(sv_hub[index]);
    sv_hub[index] = NULL;
}

/* Each client checks that every sender's numbers come in order, once. */
typedef struct mcli {
    h_ws_end_t end;
    int next[CLIENTS + 1]; /* next number expected from sender i (CLIENTS: the outside thread) */
    unsigned msgs;
    int bad;
} mcli_t;

static void m_msg(nf_ws_conn_t *ws, unsigned op, const char *data, size_t len)
{
    (void)op;
    mcli_t *c = nf_ws_conn_get_data(ws);
    int s, k;
    char tmp[32];
    memcpy(tmp, data, len < 31 ? len : 31);
    tmp[len < 31 ? len : 31] = 0;
    if (sscanf(tmp, "%d:%d", &s, &k) != 2 || s < 0 || s > CLIENTS || c->next[s] != k)
        c->bad++;
    else
        c->next[s]++;
    c->msgs++;
}
static const nf_ws_handler_t m_h = {.on_open = h_ws_end_open, .on_message = m_msg, .on_close = h_ws_end_close};

static void *outside(void *arg)
{
    char m[32];
    for (int k = 0; k < PER; k++) {
        int n = snprintf(m, sizeof m, "%d:%d", CLIENTS, k);
        if (nf_pubsub_group_publish(arg, T("all"), NF_WS_OP_TEXT, m, (size_t)n) != LOOPS)
            return (void *)1;
    }
    return NULL;
}

static void test_server_loops(void **state)
{
    (void)state;
    assert_int_equal(nf_pubsub_group_new(LOOPS, &sv_group), 0);
    atomic_store(&sv_port, 0);
    for (int i = 0; i < LOOPS; i++)
        atomic_store(&sv_subs[i], 0);
    nf_server_config_t cfg;
    nf_server_config_init(&cfg);
    cfg.threads = LOOPS;
    cfg.listen.handler = NULL;
    cfg.on_loop_start = sv_start;
    cfg.on_loop_stop = sv_stop;
    nf_server_t *server;
    int rc = nf_server_start(&server, &cfg);
    h_skip_if_uring_refused(rc);
    assert_int_equal(rc, 0);

    nf_loop_t *loop = h_loop_new();
    static mcli_t c[CLIENTS];
    memset(c, 0, sizeof c);
    nf_ws_conn_t *ws[CLIENTS];
    static nf_ws_client_config_t cc = {.handler = &m_h};
    char url[64];
    snprintf(url, sizeof url, "ws://127.0.0.1:%u/all", (unsigned)atomic_load(&sv_port));
    for (int i = 0; i < CLIENTS; i++) {
        cc.data = &c[i];
        assert_int_equal(nf_ws_connect(loop, url, &cc, &ws[i]), 0);
    }
    int subs = 0, opened = 0;
    for (uint64_t end = h_now_ms() + 5000; (subs < CLIENTS || opened < CLIENTS) && h_now_ms() < end;) {
        nf_loop_run(loop, NF_RUN_NOWAIT);
        subs = opened = 0;
        for (int i = 0; i < LOOPS; i++)
            subs += atomic_load(&sv_subs[i]);
        for (int i = 0; i < CLIENTS; i++)
            opened += c[i].end.opened;
    }
    assert_int_equal(opened, CLIENTS);
    assert_int_equal(subs, CLIENTS);
    int loops_used = 0;
    for (int i = 0; i < LOOPS; i++)
        loops_used += atomic_load(&sv_subs[i]) > 0;
    print_message("subscribers per loop: %d %d %d\n", atomic_load(&sv_subs[0]), atomic_load(&sv_subs[1]),
                  atomic_load(&sv_subs[2]));
    assert_true(loops_used >= 2);

    pthread_t t = h_thread_start(outside, sv_group);
    char m[32];
    for (int k = 0; k < PER; k++)
        for (int i = 0; i < CLIENTS; i++) {
            int n = snprintf(m, sizeof m, "%d:%d", i, k);
            assert_true(nf_ws_send(ws[i], NF_WS_OP_TEXT, m, (size_t)n) >= 0);
        }
    void *tr;
    pthread_join(t, &tr);
    assert_null(tr);
    const unsigned want = (CLIENTS + 1) * PER;
    uint64_t end = h_now_ms() + 10000;
    for (;;) {
        unsigned done = 0;
        for (int i = 0; i < CLIENTS; i++)
            done += c[i].msgs >= want;
        if (done == CLIENTS || h_now_ms() > end)
            break;
        nf_loop_run(loop, NF_RUN_NOWAIT);
        h_sleep_ms(1);
    }
    h_run_for(loop, 200); /* nothing more may come */
    for (int i = 0; i < CLIENTS; i++) {
        assert_int_equal(c[i].bad, 0);
        assert_int_equal(c[i].msgs, want);
        for (int s = 0; s <= CLIENTS; s++)
            assert_int_equal(c[i].next[s], PER);
    }
    for (int i = 0; i < CLIENTS; i++)
        nf_ws_close(ws[i], 1000, NULL, 0);
    H_RUN_UNTIL(loop, nf_loop_alive(loop) == 0, 5000);
    h_loop_finish(loop, 5000);
    nf_server_stop(server);
    assert_int_equal(nf_server_wait(server), 0);
    nf_server_free(server);
    nf_pubsub_group_free(sv_group);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ws_one_loop),
        cmocka_unit_test(test_ws_deflate_once),
        cmocka_unit_test(test_ws_never_reads),
        cmocka_unit_test(test_server_loops),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
