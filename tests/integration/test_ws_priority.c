/* Integration: control frames go past a flow-control drop policy.
 *
 * The server's stack has a flow filter with a tiny in-flight allowance and
 * a held queue of at most 3 writes (64 KiB), policy drop-newest or
 * drop-oldest, so that the queue is full when the pong comes. A raw client sends,
 * in one write: "fill" (the server sends 20 KB messages until one is
 * dropped), a ping, "fill" again, then "bye" (the server starts the close
 * handshake). The pong and the close frame must not be dropped: they are
 * held behind the data (still counted as held) and go out in order; the
 * shutdown after the close frame waits for them. The client then reads the
 * whole stream: data frames, the pong with the ping's payload, the close
 * frame with 1001, then EOF once it answered the close.
 *
 * Second case: a client that sends a close frame and never reads while the
 * server's queue is full: the close timer ends the connection. */
#include "helpers.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <netframe/flow.h>
#include <netframe/ws.h>

typedef struct srv {
    int opened, closed;
    unsigned code;
    int ping_held, ping_dropped; /* flow stats right after the pong was written */
    int fill_dropped;
    nf_flow_stats_t at_close;
} srv_t;
static srv_t srv;

/* Sends 20 KB messages until the policy drops one (the newest, or the
 * oldest held), then 3 more: a full queue is turned over once. */
static void fill(nf_ws_conn_t *ws)
{
    static char blob[20000];
    nf_flow_stats_t st;
    nf_flow_stats(nf_ws_conn_tcp(ws), &st);
    uint64_t before = st.writes_dropped;
    for (int i = 0; i < 64; i++) {
        int rc = nf_ws_send(ws, NF_WS_OP_BINARY, blob, sizeof blob);
        assert_true(rc >= 0);
        nf_flow_stats(nf_ws_conn_tcp(ws), &st);
        if (st.writes_dropped > before) {
            srv.fill_dropped++;
            for (int k = 0; k < 3; k++)
                assert_true(nf_ws_send(ws, NF_WS_OP_BINARY, blob, sizeof blob) >= 0);
            return;
        }
    }
}

static void s_open(nf_ws_conn_t *ws)
{
    (void)ws;
    srv.opened++;
}

static void s_message(nf_ws_conn_t *ws, unsigned op, const char *data, size_t len)
{
    (void)op;
    if (len == 4 && memcmp(data, "fill", 4) == 0)
        fill(ws);
    else if (len == 3 && memcmp(data, "bye", 3) == 0)
        H_ASSERT_ERR(nf_ws_close(ws, NF_WS_CLOSE_GOING_AWAY, "bye", 3), 0);
}

static void s_ping(nf_ws_conn_t *ws, const char *d, size_t n)
{
    (void)d, (void)n;
    nf_flow_stats_t st;
    H_ASSERT_ERR(nf_flow_stats(nf_ws_conn_tcp(ws), &st), 0);
    srv.ping_held = (int)st.held_writes;
    srv.ping_dropped = (int)st.writes_dropped;
}

static void s_close(nf_ws_conn_t *ws, unsigned code, const char *r, size_t rl)
{
    (void)r, (void)rl;
    srv.closed++;
    srv.code = code;
    nf_flow_stats(nf_ws_conn_tcp(ws), &srv.at_close);
}

static const nf_ws_handler_t s_h = {.on_open = s_open, .on_message = s_message, .on_ping = s_ping, .on_close = s_close};
static const nf_ws_route_t s_routes[] = {{.path = "*", .handler = &s_h}};

static const char k_req[] = "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

/* A masked client frame (zero key) into out; returns its size. */
static size_t frame(uint8_t *out, unsigned op, const char *p, size_t n)
{
    out[0] = (uint8_t)(0x80 | op);
    out[1] = (uint8_t)(0x80 | n);
    memset(out + 2, 0, 4);
    memcpy(out + 6, p, n);
    return 6 + n;
}

typedef struct peer {
    uint16_t port;
    int read_all; /* 0: send a close and never read */
    int data_frames, pong_ok, close_code, eof;
    h_result_t res;
} peer_t;

static ssize_t read_head(int fd)
{
    char c[4] = {0};
    size_t n = 0;
    while (memcmp(c, "\r\n\r\n", 4) != 0) {
        char b;
        if (h_recv_full(fd, &b, 1, 5000) != 1)
            return -1;
        memmove(c, c + 1, 3);
        c[3] = b;
        n++;
    }
    return (ssize_t)n;
}

static void *peer_main(void *arg)
{
    peer_t *p = arg;
    int fd = h_tcp_connect("127.0.0.1", p->port);
    if (fd < 0 || h_send_all(fd, k_req, sizeof k_req - 1, 5000) != 0 || read_head(fd) < 0) {
        h_result_fail(&p->res, "handshake");
        goto done;
    }
    uint8_t out[256];
    size_t n = 0;
    if (p->read_all) {
        n += frame(out + n, 0x1, "fill", 4);
        n += frame(out + n, 0x9, "pp", 2);
        n += frame(out + n, 0x1, "fill", 4);
        n += frame(out + n, 0x1, "bye", 3);
    } else {
        n += frame(out + n, 0x1, "fill", 4);
        n += frame(out + n, 0x8, "\x03\xe8", 2);
    }
    if (h_send_all(fd, out, n, 5000) != 0) {
        h_result_fail(&p->res, "send");
        goto out;
    }
    if (!p->read_all) {              /* never read: the server's close timer ends it */
        int e = h_recv_eof(fd, 100); /* reads nothing useful: times out or sees data */
        (void)e;
        goto out;
    }
    h_sleep_ms(50); /* the server queues everything before we read */
    for (;;) {
        uint8_t h[10];
        if (h_recv_full(fd, h, 2, 5000) != 2) {
            h_result_fail(&p->res, "stream ended before the close frame");
            goto out;
        }
        uint64_t len = h[1] & 0x7f;
        if (len == 126) {
            if (h_recv_full(fd, h + 2, 2, 5000) != 2)
                break;
            len = (uint64_t)h[2] << 8 | h[3];
        } else if (len == 127) {
            if (h_recv_full(fd, h + 2, 8, 5000) != 8)
                break;
            len = 0;
            for (int i = 2; i < 10; i++)
                len = len << 8 | h[i];
        }
        static uint8_t pay[65536];
        if (len > sizeof pay || h_recv_full(fd, pay, (size_t)len, 5000) != (ssize_t)len) {
            h_result_fail(&p->res, "bad frame");
            goto out;
        }
        unsigned op = h[0] & 0xf;
        if (op == 0x2)
            p->data_frames++;
        else if (op == 0xA)
            p->pong_ok = len == 2 && memcmp(pay, "pp", 2) == 0;
        else if (op == 0x8) {
            p->close_code = len >= 2 ? pay[0] << 8 | pay[1] : 1005;
            break;
        } else {
            h_result_fail(&p->res, "unexpected opcode %u", op);
            goto out;
        }
    }
    n = frame(out, 0x8, "\x03\xe9", 2); /* answer 1001 */
    h_send_all(fd, out, n, 5000);
    p->eof = h_recv_eof(fd, 5000) == 0;
out:
    close(fd);
done:
    return h_peer_done(&p->res);
}

static void run_policy(nf_flow_policy_t policy)
{
    nf_loop_t *loop = h_loop_new();
    memset(&srv, 0, sizeof srv);
    nf_flow_config_t fc = {
        .max_inflight_bytes = 1, .max_held_bytes = 64 * 1024, .max_held_writes = 3, .policy = policy};
    nf_filter_spec_t flow[] = {{&nf_flow_filter, &fc}};
    nf_ws_server_config_t cfg = {
        .listen = {.host = "127.0.0.1", .filters = flow, .nfilters = 1},
        .routes = s_routes,
        .nroutes = 1,
        .opts = {.close_timeout_ms = 5000},
    };
    nf_ws_server_t *s;
    uint16_t ws_port = h_ws_listen(loop, &cfg, &s);
    peer_t p = {.port = ws_port, .read_all = 1};
    pthread_t t = h_thread_start(peer_main, &p);
    H_RUN_UNTIL(loop, atomic_load(&p.res.done) && srv.closed, 10000);
    h_thread_join(t, 5000);
    H_ASSERT_PEER_OK(&p.res);
    assert_true(srv.fill_dropped >= 1);   /* the policy did drop data */
    assert_true(srv.ping_dropped >= 1);   /* before the pong was written */
    assert_true(srv.ping_held >= 1);      /* the pong was held, not dropped */
    assert_true(p.pong_ok);               /* and it arrived */
    assert_int_equal(p.close_code, 1001); /* so did the close frame, last */
    assert_true(p.data_frames >= 1);
    assert_true(p.eof);
    assert_int_equal(srv.code, 1001);
    assert_int_equal(srv.at_close.held_writes, 0); /* everything went out */
    nf_ws_server_close(s, 0, NULL);
    h_loop_finish(loop, 5000);
}

static void test_drop_newest(void **state) { (void)state, run_policy(NF_FLOW_DROP_NEWEST); }
static void test_drop_oldest(void **state) { (void)state, run_policy(NF_FLOW_DROP_OLDEST); }

/* A peer that closes and never reads: the close frame stays held; the
 * close timer ends the connection. */
static void test_close_timer_fallback(void **state)
{
    (void)state;
    nf_loop_t *loop = h_loop_new();
    memset(&srv, 0, sizeof srv);
    nf_flow_config_t fc = {.max_inflight_bytes = 1, .max_held_bytes = 64 * 1024, .max_held_writes = 3};
    nf_filter_spec_t flow[] = {{&nf_flow_filter, &fc}};
    nf_ws_server_config_t cfg = {
        .listen = {.host = "127.0.0.1", .filters = flow, .nfilters = 1},
        .routes = s_routes,
        .nroutes = 1,
        .opts = {.close_timeout_ms = 300},
    };
    nf_ws_server_t *s;
    uint16_t ws_port = h_ws_listen(loop, &cfg, &s);
    peer_t p = {.port = ws_port, .read_all = 0};
    pthread_t t = h_thread_start(peer_main, &p);
    H_RUN_UNTIL(loop, srv.closed, 10000);
    assert_int_equal(srv.code, 1000);
    assert_int_equal(nf_ws_server_conns(s), 0);
    H_RUN_UNTIL(loop, atomic_load(&p.res.done), 5000);
    h_thread_join(t, 5000);
    H_ASSERT_PEER_OK(&p.res);
    nf_ws_server_close(s, 0, NULL);
    h_loop_finish(loop, 5000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_drop_newest),
        cmocka_unit_test(test_drop_oldest),
        cmocka_unit_test(test_close_timer_fallback),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
