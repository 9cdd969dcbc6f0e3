/* Integration: the WebSocket codec is allocated on use and released at rest
 * (src/ws/conn.c, NF__WS_REST_MS), without changing what goes over the wire.
 *
 * With permessage-deflate and context takeover (the compression context
 * lives in the pmd and must survive a release): after an echo both sides
 * hold a codec; the client then sends the first fragment of a message and
 * goes quiet past the rest period. The server, mid-message, keeps its codec;
 * the client, between frames, drops its own. The rest of the message goes,
 * the echo comes back compressed with the context of the first message, and
 * a compressed message from the client's new codec is echoed too. Peeks at
 * the private state through src/ws/conn.h; "compressed" is checked on the
 * wire: a filter under the client's WebSocket layer parses the frames the
 * server sends and records RSV1 (RFC 7692's "per-message compressed") of
 * each data message's first frame. */
#include "helpers.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <netframe/ws.h>

#include "ws/conn.h"

static nf_ws_conn_t *g_srv_ws;
static int s_closed;

static void s_open(nf_ws_conn_t *ws) { g_srv_ws = ws; }
static void s_message(nf_ws_conn_t *ws, unsigned op, const char *d, size_t n) { nf_ws_send(ws, op, d, n); }
static void s_close(nf_ws_conn_t *ws, unsigned code, const char *r, size_t rl)
{
    (void)ws, (void)code, (void)r, (void)rl;
    s_closed++;
}
static const nf_ws_handler_t s_h = {.on_open = s_open, .on_message = s_message, .on_close = s_close};
static const nf_ws_route_t s_routes[] = {{.path = "/rest", .handler = &s_h}};

/* ---- a tap under the client's WebSocket filter: the server's frames ------- */

static struct {
    int head_done;      /* the HTTP answer's head has gone by */
    char hold[16];      /* a frame header cut by a read */
    size_t held;        /* bytes in hold */
    uint64_t skip;      /* payload bytes of the current frame still to pass */
    int in_message;     /* a data message's first frame was seen, not its last */
    int data_messages;  /* data messages started */
    int last_rsv1;      /* RSV1 of the last data message's first frame */
    unsigned head_tail; /* matches of "\r\n\r\n" so far */
} g_tap;

static void tap_bytes(const unsigned char *p, size_t n)
{
    static const char crlf2[] = "\r\n\r\n";
    while (n > 0) {
        if (!g_tap.head_done) {
            g_tap.head_tail = *p == (unsigned char)crlf2[g_tap.head_tail] ? g_tap.head_tail + 1 : (*p == '\r');
            g_tap.head_done = g_tap.head_tail == 4;
            p++, n--;
            continue;
        }
        if (g_tap.skip > 0) {
            size_t k = n < g_tap.skip ? n : (size_t)g_tap.skip;
            g_tap.skip -= k;
            p += k, n -= k;
            continue;
        }
        g_tap.hold[g_tap.held++] = (char)*p++, n--;
        const unsigned char *h = (const unsigned char *)g_tap.hold;
        if (g_tap.held < 2)
            continue;
        size_t len7 = h[1] & 0x7f, need = 2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0);
        assert_int_equal(h[1] & 0x80, 0); /* server frames are not masked */
        if (g_tap.held < need)
            continue;
        uint64_t len = len7;
        if (len7 >= 126) {
            len = 0;
            for (size_t i = 2; i < need; i++)
                len = len << 8 | h[i];
        }
        unsigned op = h[0] & 0x0f;
        if (op == NF_WS_OP_TEXT || op == NF_WS_OP_BINARY) {
            g_tap.data_messages++;
            g_tap.last_rsv1 = (h[0] & 0x40) != 0;
            g_tap.in_message = !(h[0] & 0x80);
        } else if (op == NF_WS_OP_CONT) {
            assert_int_equal(h[0] & 0x40, 0); /* RSV1 only on a message's first frame */
            g_tap.in_message = !(h[0] & 0x80);
        }
        g_tap.skip = len;
        g_tap.held = 0;
    }
}

static void tap_on_read(nf_filter_t *f, const char *data, size_t len)
{
    tap_bytes((const unsigned char *)data, len);
    nf_filter_read_up(f, data, len);
}
static const nf_filter_ops_t tap_ops = {.size = sizeof(nf_filter_ops_t), .name = "tap", .on_read = tap_on_read};
static const nf_filter_spec_t tap_stack[] = {{.ops = &tap_ops}};

/* The echo that just arrived came as a compressed message (RSV1 set). */
static void assert_came_compressed(int messages)
{
    assert_int_equal(g_tap.data_messages, messages);
    assert_int_equal(g_tap.in_message, 0);
    if (!g_tap.last_rsv1)
        fail_msg("echo %d came back without RSV1: not compressed", messages);
}

typedef struct cli {
    int opened, closed, got;
    char last[4096];
    size_t last_len;
} cli_t;

static void c_open(nf_ws_conn_t *ws) { ((cli_t *)nf_ws_conn_get_data(ws))->opened = 1; }
static void c_message(nf_ws_conn_t *ws, unsigned op, const char *d, size_t n)
{
    (void)op;
    cli_t *c = nf_ws_conn_get_data(ws);
    assert_true(n <= sizeof c->last);
    memcpy(c->last, d, n);
    c->last_len = n;
    c->got++;
}
static void c_close(nf_ws_conn_t *ws, unsigned code, const char *r, size_t rl)
{
    (void)code, (void)r, (void)rl;
    ((cli_t *)nf_ws_conn_get_data(ws))->closed = 1;
}
static const nf_ws_handler_t c_h = {.on_open = c_open, .on_message = c_message, .on_close = c_close};

static void expect_echo(nf_loop_t *loop, cli_t *c, int before, const char *want, size_t len)
{
    H_RUN_UNTIL(loop, c->got == before + 1 || c->closed, 5000);
    assert_int_equal(c->got, before + 1);
    assert_int_equal(c->last_len, len);
    assert_memory_equal(c->last, want, len);
}

static void test_codec_rest(void **state)
{
    (void)state;
    nf_loop_t *loop = h_loop_new();
    nf_ws_server_config_t cfg = {
        .listen = {.host = "127.0.0.1"},
        .routes = s_routes,
        .nroutes = 1,
        .opts = {.deflate = 1, .pmd = {.threshold = 1}},
    };
    nf_ws_server_t *s;
    uint16_t ws_port = h_ws_listen(loop, &cfg, &s);
    char url[64];
    snprintf(url, sizeof url, "ws://127.0.0.1:%u/rest", ws_port);
    static cli_t c;
    memset(&c, 0, sizeof c);
    memset(&g_tap, 0, sizeof g_tap);
    nf_ws_client_config_t ccfg = {.connect = {.filters = tap_stack, .nfilters = 1},
                                  .handler = &c_h,
                                  .data = &c,
                                  .opts = {.deflate = 1, .pmd = {.threshold = 1}}};
    nf_ws_conn_t *ws;
    H_ASSERT_ERR(nf_ws_connect(loop, url, &ccfg, &ws), 0);
    H_RUN_UNTIL(loop, c.opened && g_srv_ws, 5000);
    assert_int_equal(nf_ws_conn_deflate(ws), 1);
    /* open, nothing exchanged: no codec on either side */
    assert_null(ws->cx);
    assert_null(g_srv_ws->cx);
    assert_string_equal(nf_ws_conn_path(g_srv_ws), "/rest");
    assert_int_equal(g_srv_ws->path_borrowed, 1);

    static const char m1[] = "the same words, the same words, the same words";
    H_ASSERT_ERR(nf_ws_send(ws, NF_WS_OP_TEXT, m1, sizeof m1 - 1), NF_WRITE_OK);
    expect_echo(loop, &c, 0, m1, sizeof m1 - 1);
    assert_came_compressed(1);
    assert_non_null(ws->cx);
    assert_non_null(g_srv_ws->cx);

    /* half a message, then quiet past the rest period */
    H_ASSERT_ERR(nf_ws_send_fragment(ws, NF_WS_OP_TEXT, "the same ", 9, 0), NF_WRITE_OK);
    h_run_for(loop, NF__WS_REST_MS + 700);
    assert_null(ws->cx);           /* the client is between frames */
    assert_non_null(g_srv_ws->cx); /* the server is inside a message */
    H_ASSERT_ERR(nf_ws_send_fragment(ws, NF_WS_OP_CONT, "words, the same words", 21, 1), NF_WRITE_OK);
    expect_echo(loop, &c, 1, "the same words, the same words", 30);
    assert_came_compressed(2); /* with the context of the first message */
    assert_non_null(ws->cx);   /* allocated again for the echo */
    static const char m3[] = "the same words once more, the same words";
    H_ASSERT_ERR(nf_ws_send(ws, NF_WS_OP_TEXT, m3, sizeof m3 - 1), NF_WRITE_OK);
    expect_echo(loop, &c, 2, m3, sizeof m3 - 1);
    assert_came_compressed(3);

    H_ASSERT_ERR(nf_ws_close(ws, NF_WS_CLOSE_NORMAL, NULL, 0), 0);
    H_RUN_UNTIL(loop, c.closed && s_closed, 5000);
    nf_ws_server_close(s, 0, NULL);
    h_loop_finish(loop, 5000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_codec_rest),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
