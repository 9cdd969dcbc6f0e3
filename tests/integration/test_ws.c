/* Integration: the WebSocket server and client over loopback.
 *  - netframe client <-> netframe server echo: text and binary, every
 *    length form, auto-fragmented and streamed fragments, with and without
 *    permessage-deflate, and the close handshake;
 *  - bad input from a raw-socket peer: each case gets the right close code
 *    (or HTTP status) and a clean close of that one connection, while
 *    another WebSocket connection goes on working. */
#include "helpers.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <netframe/ws.h>

/* ---- patterned messages --------------------------------------------------- */

static void fill_msg(char *p, size_t len, unsigned op, uint32_t seed)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char b = h_pattern_byte(i, seed);
        p[i] = op == NF_WS_OP_TEXT ? (char)('a' + b % 26) : (char)b;
    }
}

static int check_msg(const char *p, size_t len, unsigned op, uint32_t seed)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char b = h_pattern_byte(i, seed);
        char want = op == NF_WS_OP_TEXT ? (char)('a' + b % 26) : (char)b;
        if (p[i] != want)
            return 0;
    }
    return 1;
}

/* ---- server: /echo (whole messages), /stream (fragments echoed as they come) */

typedef struct srv_stats {
    int opened, closed;
    unsigned last_code;
    int last_error;
    unsigned codes[32];
    int ncodes;
} srv_stats_t;

static srv_stats_t srv;

static void s_open(nf_ws_conn_t *ws)
{
    (void)ws;
    srv.opened++;
}

static void s_message(nf_ws_conn_t *ws, unsigned op, const char *data, size_t len) { nf_ws_send(ws, op, data, len); }

static void s_fragment(nf_ws_conn_t *ws, unsigned op, const char *data, size_t len, int fin)
{
    int started = nf_ws_conn_get_data(ws) != NULL;
    nf_ws_send_fragment(ws, started ? NF_WS_OP_CONT : op, data, len, fin);
    nf_ws_conn_set_data(ws, fin ? NULL : (void *)1);
}

static void s_close(nf_ws_conn_t *ws, unsigned code, const char *reason, size_t rlen)
{
    (void)reason, (void)rlen;
    srv.closed++;
    srv.last_code = code;
    srv.last_error = nf_ws_conn_error(ws);
    if (srv.ncodes < 32)
        srv.codes[srv.ncodes++] = code;
}

static const nf_ws_handler_t s_echo = {.on_open = s_open, .on_message = s_message, .on_close = s_close};
static const nf_ws_handler_t s_stream = {.on_open = s_open, .on_fragment = s_fragment, .on_close = s_close};
static const nf_ws_route_t s_routes[] = {
    {.path = "/echo", .handler = &s_echo},
    {.path = "/stream", .handler = &s_stream},
};

static nf_ws_server_t *start_server(nf_loop_t *loop, int deflate, uint64_t max_message, uint16_t *port)
{
    memset(&srv, 0, sizeof srv);
    nf_ws_server_config_t cfg = {
        .listen = {.host = "127.0.0.1", .port = 0},
        .routes = s_routes,
        .nroutes = 2,
        .opts = {.deflate = deflate,
                 .max_message = max_message,
                 .max_frame = max_message,
                 .max_header = 4096,
                 .close_timeout_ms = 2000},
    };
    nf_ws_server_t *s;
    *port = h_ws_listen(loop, &cfg, &s);
    return s;
}

static int server_closed;
static void on_server_closed(nf_ws_server_t *s)
{
    (void)s;
    server_closed = 1;
}

/* ---- client ------------------------------------------------------------------ */

typedef struct expect {
    unsigned op;
    size_t len;
    uint32_t seed;
} expect_t;

typedef struct cli {
    h_ws_end_t end; /* first: h_ws_end_open/close record here */
    expect_t exp[64];
    int nexp, got;
    char fail[256];
} cli_t;

static void c_message(nf_ws_conn_t *ws, unsigned op, const char *data, size_t len)
{
    cli_t *c = nf_ws_conn_get_data(ws);
    if (c->got >= c->nexp) {
        snprintf(c->fail, sizeof c->fail, "unexpected message %u/%zu", op, len);
        return;
    }
    expect_t *e = &c->exp[c->got++];
    if (!c->fail[0] && (e->op != op || e->len != len || !check_msg(data, len, op, e->seed)))
        snprintf(c->fail, sizeof c->fail, "message %d: op %u len %zu, expected op %u len %zu%s", c->got - 1, op, len,
                 e->op, e->len, e->len == len ? " (content differs)" : "");
}

static const nf_ws_handler_t c_handler = {
    .on_open = h_ws_end_open, .on_message = c_message, .on_close = h_ws_end_close};

static nf_ws_conn_t *connect_client(nf_loop_t *loop, uint16_t port, const char *path, int deflate, size_t fragment,
                                    cli_t *c)
{
    char url[128];
    snprintf(url, sizeof url, "ws://127.0.0.1:%u%s", port, path);
    nf_ws_client_config_t cfg = {
        .connect = {.timeout_ms = 5000},
        .handler = &c_handler,
        .data = c,
        .opts = {.deflate = deflate, .fragment_size = fragment, .max_message = 8u << 20, .max_frame = 8u << 20},
    };
    nf_ws_conn_t *ws = NULL;
    H_ASSERT_ERR(nf_ws_connect(loop, url, &cfg, &ws), 0);
    assert_non_null(ws);
    return ws;
}

static void send_expect(nf_ws_conn_t *ws, cli_t *c, unsigned op, size_t len, uint32_t seed)
{
    char *p = malloc(len ? len : 1);
    assert_non_null(p);
    fill_msg(p, len, op, seed);
    int rc = nf_ws_send(ws, op, p, len);
    free(p);
    H_ASSERT_ERR(rc, NF_WRITE_OK);
    c->exp[c->nexp++] = (expect_t){op, len, seed};
}

static const size_t k_lens[] = {0, 1, 125, 126, 127, 1000, 65535, 65536, 70000, 300000};
#define N_LENS (sizeof k_lens / sizeof k_lens[0])

static void run_echo(const char *path, int deflate, size_t fragment)
{
    nf_loop_t *loop = h_loop_new();
    uint16_t port;
    nf_ws_server_t *s = start_server(loop, deflate, 8u << 20, &port);
    cli_t c;
    memset(&c, 0, sizeof c);
    nf_ws_conn_t *ws = connect_client(loop, port, path, deflate, fragment, &c);
    H_RUN_UNTIL(loop, c.end.opened == 1 || c.end.closed, 5000);
    assert_int_equal(c.end.opened, 1);
    assert_int_equal(nf_ws_conn_deflate(ws), deflate);
    assert_string_equal(nf_ws_conn_path(ws), path);
    for (size_t i = 0; i < N_LENS; i++) {
        send_expect(ws, &c, NF_WS_OP_TEXT, k_lens[i], (uint32_t)i);
        send_expect(ws, &c, NF_WS_OP_BINARY, k_lens[i], (uint32_t)(100 + i));
    }
    /* one message sent as three frames by hand */
    char part[3000];
    fill_msg(part, sizeof part, NF_WS_OP_BINARY, 77);
    H_ASSERT_ERR(nf_ws_send_fragment(ws, NF_WS_OP_BINARY, part, 1000, 0), NF_WRITE_OK);
    H_ASSERT_ERR(nf_ws_send(ws, NF_WS_OP_TEXT, "x", 1), -EINVAL); /* a message is open */
    H_ASSERT_ERR(nf_ws_ping(ws, "p", 1), NF_WRITE_OK);            /* control frames may interleave */
    H_ASSERT_ERR(nf_ws_send_fragment(ws, NF_WS_OP_CONT, part + 1000, 1000, 0), NF_WRITE_OK);
    H_ASSERT_ERR(nf_ws_send_fragment(ws, NF_WS_OP_CONT, part + 2000, 1000, 1), NF_WRITE_OK);
    c.exp[c.nexp++] = (expect_t){NF_WS_OP_BINARY, sizeof part, 77};

    H_RUN_UNTIL(loop, c.got == c.nexp || c.end.closed || c.fail[0], 20000);
    if (c.fail[0])
        fail_msg("%s", c.fail);
    assert_int_equal(c.end.closed, 0);

    H_ASSERT_ERR(nf_ws_close(ws, NF_WS_CLOSE_NORMAL, "done", 4), 0);
    H_ASSERT_ERR(nf_ws_send(ws, NF_WS_OP_TEXT, "late", 4), NF_ECLOSED);
    H_RUN_UNTIL(loop, c.end.closed == 1 && srv.closed == 1, 5000);
    assert_int_equal(c.end.code, 1000);
    H_ASSERT_ERR(c.end.error, 0);
    assert_int_equal(srv.last_code, 1000);
    H_ASSERT_ERR(srv.last_error, 0);
    h_ws_server_stop(loop, s, NF_WS_CLOSE_GOING_AWAY);
    h_loop_finish(loop, 5000);
}

static void test_echo_plain(void **state) { (void)state, run_echo("/echo", 0, 0); }
static void test_echo_deflate(void **state) { (void)state, run_echo("/echo", 1, 0); }
static void test_echo_fragmented(void **state) { (void)state, run_echo("/echo", 0, 1000); }
static void test_echo_fragmented_deflate(void **state) { (void)state, run_echo("/echo", 1, 777); }
static void test_stream_plain(void **state) { (void)state, run_echo("/stream", 0, 4096); }
static void test_stream_deflate(void **state) { (void)state, run_echo("/stream", 1, 0); }

/* The server closing with 1001 closes its open connections with a handshake. */
static void test_server_close_going_away(void **state)
{
    (void)state;
    nf_loop_t *loop = h_loop_new();
    uint16_t port;
    nf_ws_server_t *s = start_server(loop, 0, 0, &port);
    cli_t c[3];
    memset(c, 0, sizeof c);
    for (int i = 0; i < 3; i++)
        connect_client(loop, port, "/echo", 0, 0, &c[i]);
    H_RUN_UNTIL(loop, c[0].end.opened && c[1].end.opened && c[2].end.opened, 5000);
    assert_int_equal(nf_ws_server_conns(s), 3);
    server_closed = 0;
    nf_ws_server_close(s, NF_WS_CLOSE_GOING_AWAY, on_server_closed);
    H_RUN_UNTIL(loop, server_closed && c[0].end.closed && c[1].end.closed && c[2].end.closed, 5000);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(c[i].end.closed, 1);
        assert_int_equal(c[i].end.code, 1001);
        H_ASSERT_ERR(c[i].end.error, 0);
    }
    h_loop_finish(loop, 5000);
}

/* Connect failures and handshake failures reach on_close with 1006. */
static void test_client_failures(void **state)
{
    (void)state;
    nf_loop_t *loop = h_loop_new();
    uint16_t port;
    nf_ws_server_t *s = start_server(loop, 0, 0, &port);
    cli_t c1, c2;
    memset(&c1, 0, sizeof c1);
    memset(&c2, 0, sizeof c2);
    connect_client(loop, h_closed_port(), "/echo", 0, 0, &c1);
    connect_client(loop, port, "/nowhere", 0, 0, &c2); /* 404 */
    H_RUN_UNTIL(loop, c1.end.closed && c2.end.closed, 5000);
    assert_int_equal(c1.end.opened, 0);
    assert_int_equal(c1.end.code, 1006);
    H_ASSERT_ERR(c1.end.error, -ECONNREFUSED);
    assert_int_equal(c2.end.opened, 0);
    assert_int_equal(c2.end.code, 1006);
    H_ASSERT_ERR(c2.end.error, NF_EWS_HANDSHAKE);
    nf_ws_client_config_t bad = {.handler = &c_handler};
    nf_ws_conn_t *ws;
    H_ASSERT_ERR(nf_ws_connect(loop, "http://127.0.0.1/", &bad, &ws), -EINVAL);
    H_ASSERT_ERR(nf_ws_connect(loop, "wss://127.0.0.1/", &bad, &ws), -EINVAL); /* wss:// needs cfg.tls */
    H_ASSERT_ERR(nf_ws_connect(loop, "ws://127.0.0.1:99999/", &bad, &ws), -EINVAL);
    H_ASSERT_ERR(nf_ws_connect(loop, "ws:///x", &bad, &ws), -EINVAL);
    h_ws_server_stop(loop, s, 0);
    h_loop_finish(loop, 5000);
}

/* ---- bad input from a raw peer ------------------------------------------------ */

static const char k_req[] = "GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

typedef struct rawcase {
    const char *name;
    const char *request;   /* NULL: k_req */
    int status;            /* expected HTTP status */
    const uint8_t *frames; /* sent after the 101 (already masked as needed) */
    size_t len;
    int close_code; /* expected close code from the server; 0: none (EOF) */
    int shut_after; /* shutdown(SHUT_WR) after sending */
    uint16_t port;
    h_result_t res;
} rawcase_t;

static ssize_t read_head(int fd, char *buf, size_t cap)
{
    size_t n = 0;
    while (n + 1 < cap) {
        ssize_t r = h_recv_full(fd, buf + n, 1, 5000);
        if (r <= 0)
            return r < 0 ? r : -EPIPE;
        n++;
        if (n >= 4 && memcmp(buf + n - 4, "\r\n\r\n", 4) == 0) {
            buf[n] = 0;
            return (ssize_t)n;
        }
    }
    return -E2BIG;
}

static void *raw_peer(void *arg)
{
    rawcase_t *rc = arg;
    char head[8192];
    int fd = h_tcp_connect("127.0.0.1", rc->port);
    if (fd < 0) {
        h_result_fail(&rc->res, "%s: connect: %s", rc->name, strerror(-fd));
        goto done;
    }
    const char *req = rc->request ? rc->request : k_req;
    if (h_send_all(fd, req, strlen(req), 5000) != 0) {
        h_result_fail(&rc->res, "%s: send request", rc->name);
        goto out;
    }
    ssize_t hl = read_head(fd, head, sizeof head);
    int status = 0;
    if (hl < 0 || sscanf(head, "HTTP/1.1 %d", &status) != 1 || status != rc->status) {
        h_result_fail(&rc->res, "%s: status %d, expected %d (%s)", rc->name, status, rc->status,
                      hl < 0 ? strerror((int)-hl) : head);
        goto out;
    }
    if (status != 101) {
        /* the body, then EOF */
        char body[512];
        ssize_t r;
        while ((r = h_recv_full(fd, body, 1, 5000)) == 1) {
        }
        if (r != 0)
            h_result_fail(&rc->res, "%s: no clean EOF after the answer: %zd", rc->name, r);
        goto out;
    }
    if (rc->len && h_send_all(fd, rc->frames, rc->len, 5000) != 0) {
        h_result_fail(&rc->res, "%s: send frames", rc->name);
        goto out;
    }
    if (rc->shut_after)
        shutdown(fd, SHUT_WR);
    if (rc->close_code) {
        uint8_t fh[4];
        ssize_t r = h_recv_full(fd, fh, 4, 5000);
        if (r != 4 || fh[0] != 0x88 || fh[1] < 2 || fh[1] > 125) {
            h_result_fail(&rc->res, "%s: no close frame (%zd: %02x %02x)", rc->name, r, fh[0], fh[1]);
            goto out;
        }
        unsigned code = (unsigned)fh[2] << 8 | fh[3];
        uint8_t rest[125];
        if (fh[1] > 2 && h_recv_full(fd, rest, fh[1] - 2u, 5000) != fh[1] - 2) {
            h_result_fail(&rc->res, "%s: short close frame", rc->name);
            goto out;
        }
        if ((int)code != rc->close_code) {
            h_result_fail(&rc->res, "%s: close code %u, expected %d", rc->name, code, rc->close_code);
            goto out;
        }
    }
    int e = h_recv_eof(fd, 5000); /* the server shuts its side: a clean end */
    if (e != 0)
        h_result_fail(&rc->res, "%s: expected EOF, got %d", rc->name, e);
out:
    close(fd);
done:
    return h_peer_done(&rc->res);
}

/* Frames a client would send: masked with a zero key, so payload bytes go
 * as they are. */
#define M 0x80, 0, 0, 0, 0

static const uint8_t f_unmasked[] = {0x81, 0x05, 'h', 'e', 'l', 'l', 'o'};
static const uint8_t f_truncated[] = {0x82, 0x80 | 10, 0, 0, 0, 0, 1, 2, 3};
static const uint8_t f_utf8_frag[] = {0x01, 0x80 | 2, 0, 0, 0, 0, 'a', 0xce, 0x80, 0x80 | 1, 0, 0, 0, 0, 'A'};
static const uint8_t f_bad_close[] = {0x88, 0x80 | 2, 0, 0, 0, 0, 0x03, 0xe7}; /* 999 */
static const uint8_t f_1005_close[] = {0x88, 0x80 | 2, 0, 0, 0, 0, 0x03, 0xed};
static const uint8_t f_huge[] = {0x82, 0x80 | 127, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0}; /* 2^40 */
static const uint8_t f_len63[] = {0x82, 0x80 | 127, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
static const uint8_t f_rsv[] = {0xc1, 0x80 | 1, 0, 0, 0, 0, 'a'};
static const uint8_t f_opcode[] = {0x83, 0x80, 0, 0, 0, 0};
static const uint8_t f_ping_big[] = {0x89, 0x80 | 126, 0, 126, 0, 0, 0, 0};
static const uint8_t f_clean_close[] = {0x88, 0x80 | 2, 0, 0, 0, 0, 0x03, 0xe8};
static uint8_t f_oversize[3 * (8 + 600)]; /* 1800 bytes in 3 frames over a 1000-byte limit */

static size_t make_oversize(void)
{
    size_t n = 0;
    for (int i = 0; i < 3; i++) {
        f_oversize[n++] = (uint8_t)((i == 2 ? 0x80 : 0) | (i == 0 ? 0x2 : 0x0));
        f_oversize[n++] = 0x80 | 126;
        f_oversize[n++] = 600 >> 8;
        f_oversize[n++] = 600 & 0xff;
        memset(f_oversize + n, 0, 4);
        n += 4;
        memset(f_oversize + n, 'z', 600);
        n += 600;
    }
    return n;
}

#define REQ(extra) "GET /echo HTTP/1.1\r\nHost: x\r\n" extra "\r\n"

static void test_bad_input(void **state)
{
    (void)state;
    nf_loop_t *loop = h_loop_new();
    uint16_t port;
    nf_ws_server_t *s = start_server(loop, 0, 1000, &port);
    /* a good connection that must keep working throughout */
    cli_t good;
    memset(&good, 0, sizeof good);
    nf_ws_conn_t *gws = connect_client(loop, port, "/echo", 0, 0, &good);
    H_RUN_UNTIL(loop, good.end.opened == 1, 5000);

    static char big_req[12000];
    snprintf(big_req, sizeof big_req,
             REQ("Upgrade: websocket\r\nConnection: Upgrade\r\nX-Big: %06000d\r\n"
                 "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                 "Sec-WebSocket-Version: 13\r\n"),
             0);
    static char many_req[12000];
    {
        size_t off = (size_t)snprintf(many_req, sizeof many_req, "GET /echo HTTP/1.1\r\nHost: x\r\n");
        for (int i = 0; i < 100; i++)
            off += (size_t)snprintf(many_req + off, sizeof many_req - off, "X-%d: y\r\n", i);
        snprintf(many_req + off, sizeof many_req - off, "\r\n");
    }
    rawcase_t cases[] = {
        {.name = "unmasked client frame",
         .status = 101,
         .frames = f_unmasked,
         .len = sizeof f_unmasked,
         .close_code = 1002},
        {.name = "truncated frame then EOF",
         .status = 101,
         .frames = f_truncated,
         .len = sizeof f_truncated,
         .shut_after = 1},
        {.name = "invalid UTF-8 across fragments",
         .status = 101,
         .frames = f_utf8_frag,
         .len = sizeof f_utf8_frag,
         .close_code = 1007},
        {.name = "oversized message", .status = 101, .frames = f_oversize, .len = make_oversize(), .close_code = 1009},
        {.name = "2^40-byte frame header", .status = 101, .frames = f_huge, .len = sizeof f_huge, .close_code = 1009},
        {.name = "2^63 length", .status = 101, .frames = f_len63, .len = sizeof f_len63, .close_code = 1002},
        {.name = "bad close code 999",
         .status = 101,
         .frames = f_bad_close,
         .len = sizeof f_bad_close,
         .close_code = 1002},
        {.name = "close code 1005 on the wire",
         .status = 101,
         .frames = f_1005_close,
         .len = sizeof f_1005_close,
         .close_code = 1002},
        {.name = "RSV1 without deflate", .status = 101, .frames = f_rsv, .len = sizeof f_rsv, .close_code = 1002},
        {.name = "reserved opcode", .status = 101, .frames = f_opcode, .len = sizeof f_opcode, .close_code = 1002},
        {.name = "ping over 125", .status = 101, .frames = f_ping_big, .len = sizeof f_ping_big, .close_code = 1002},
        {.name = "clean close",
         .status = 101,
         .frames = f_clean_close,
         .len = sizeof f_clean_close,
         .close_code = 1000},
        {.name = "no version",
         .status = 426,
         .request = REQ("Upgrade: websocket\r\nConnection: Upgrade\r\n"
                        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n")},
        {.name = "version 12",
         .status = 426,
         .request = REQ("Upgrade: websocket\r\nConnection: Upgrade\r\n"
                        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 12\r\n")},
        {.name = "bad key",
         .status = 400,
         .request = REQ("Upgrade: websocket\r\nConnection: Upgrade\r\n"
                        "Sec-WebSocket-Key: short==\r\nSec-WebSocket-Version: 13\r\n")},
        {.name = "two keys",
         .status = 400,
         .request = REQ("Upgrade: websocket\r\nConnection: Upgrade\r\n"
                        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n")},
        {.name = "no Connection: Upgrade",
         .status = 400,
         .request = REQ("Upgrade: websocket\r\n"
                        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n")},
        {.name = "POST upgrade",
         .status = 400,
         .request = "POST /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"},
        {.name = "no Host",
         .status = 400,
         .request = "GET /echo HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"},
        {.name = "bare LF", .status = 400, .request = "GET /echo HTTP/1.1\nHost: x\n\n"},
        {.name = "header too large", .status = 431, .request = big_req},
        {.name = "too many headers", .status = 431, .request = many_req},
        {.name = "unknown path",
         .status = 404,
         .request = "GET /nope HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"},
        {.name = "plain HTTP", .status = 404, .request = "GET / HTTP/1.1\r\nHost: x\r\n\r\n"},
    };
    size_t ncases = sizeof cases / sizeof cases[0];
    int opened_before = srv.opened;
    for (size_t i = 0; i < ncases; i++) {
        rawcase_t *rc = &cases[i];
        rc->port = port;
        int closed_before = srv.closed;
        pthread_t t = h_thread_start(raw_peer, rc);
        H_RUN_UNTIL(loop, atomic_load(&rc->res.done), 10000);
        h_thread_join(t, 5000);
        H_ASSERT_PEER_OK(&rc->res);
        if (rc->status == 101) {
            /* the server side saw the same code (1006 for the truncated frame) */
            H_RUN_UNTIL(loop, srv.closed == closed_before + 1, 5000);
            unsigned want = rc->close_code ? (unsigned)rc->close_code : 1006;
            if (srv.last_code != want)
                fail_msg("%s: server on_close code %u, expected %u", rc->name, srv.last_code, want);
        }
        /* the good connection still echoes */
        send_expect(gws, &good, NF_WS_OP_TEXT, 100 + i, (uint32_t)(1000 + i));
        H_RUN_UNTIL(loop, good.got == good.nexp || good.end.closed, 5000);
        if (good.fail[0])
            fail_msg("%s", good.fail);
        assert_int_equal(good.end.closed, 0);
    }
    assert_int_equal(srv.opened - opened_before, 12);
    H_RUN_UNTIL(loop, nf_ws_server_conns(s) == 1, 5000);
    nf_ws_close(gws, NF_WS_CLOSE_NORMAL, NULL, 0);
    H_RUN_UNTIL(loop, good.end.closed, 5000);
    assert_int_equal(good.end.code, 1000);
    h_ws_server_stop(loop, s, 0);
    h_loop_finish(loop, 5000);
}

/* The TCP connection under the WebSocket layer, seen by a filter below it:
 * when it opened and when and why it closed, on the loop's clock. */
static struct {
    int opened, closed, reason;
    uint64_t t_open, t_close;
} g_under;
static void under_open(nf_filter_t *f)
{
    g_under.opened++;
    g_under.t_open = nf_loop_now(nf_conn_loop(f->conn));
    nf_filter_open_up(f);
}
static void under_close(nf_filter_t *f, int reason)
{
    g_under.closed++;
    g_under.reason = reason;
    g_under.t_close = nf_loop_now(nf_conn_loop(f->conn));
}
static const nf_filter_ops_t under_ops = {
    .size = sizeof(nf_filter_ops_t), .name = "under", .on_open = under_open, .on_close = under_close};
static const nf_filter_spec_t under_stack[] = {{.ops = &under_ops}};

/* A peer that stops mid-handshake is closed after the handshake timeout:
 * with -ETIMEDOUT, not before the 200 ms (on the loop's clock, the one the
 * timer runs on; 1 ms of rounding), soon after (2 s: a loaded machine), and
 * the peer sees the end. */
static void test_handshake_timeout(void **state)
{
    (void)state;
    nf_loop_t *loop = h_loop_new();
    memset(&srv, 0, sizeof srv);
    memset(&g_under, 0, sizeof g_under);
    nf_ws_server_config_t cfg = {
        .listen = {.host = "127.0.0.1", .filters = under_stack, .nfilters = 1},
        .routes = s_routes,
        .nroutes = 1,
        .opts = {.handshake_timeout_ms = 200},
    };
    nf_ws_server_t *s;
    uint16_t ws_port = h_ws_listen(loop, &cfg, &s);
    int fd = h_tcp_connect("127.0.0.1", ws_port);
    assert_true(fd >= 0);
    assert_int_equal(h_send_all(fd, "GET /echo HTTP/1.1\r\nHost:", 25, 1000), 0);
    H_RUN_UNTIL(loop, nf_ws_server_conns(s) == 1, 2000);
    H_RUN_UNTIL(loop, nf_ws_server_conns(s) == 0, 3000);
    assert_int_equal(srv.opened, 0);
    assert_int_equal(srv.closed, 0);
    assert_int_equal(g_under.opened, 1);
    assert_int_equal(g_under.closed, 1);
    H_ASSERT_ERR(g_under.reason, -ETIMEDOUT);
    uint64_t took = g_under.t_close - g_under.t_open;
    print_message("[ info     ] closed %llu ms after the connection opened (timeout 200 ms)\n",
                  (unsigned long long)took);
    if (took < 199 || took > 2200)
        fail_msg("handshake timeout of 200 ms closed the connection after %llu ms", (unsigned long long)took);
    int r = h_recv_eof(fd, 2000);
    if (r != 0 && r != -ECONNRESET)
        fail_msg("the peer did not see the end: h_recv_eof = %d", r);
    close(fd);
    h_ws_server_stop(loop, s, 0);
    h_loop_finish(loop, 5000);
}

/* Keep-alive: pings go out while idle; a peer that never answers is closed
 * after the idle timeout with 1001. */
static int pongs;
static void k_pong(nf_ws_conn_t *ws, const char *d, size_t n)
{
    (void)ws, (void)d, (void)n;
    pongs++;
}

static void test_keepalive(void **state)
{
    (void)state;
    nf_loop_t *loop = h_loop_new();
    uint16_t port;
    nf_ws_server_t *s = start_server(loop, 0, 0, &port);
    cli_t c;
    memset(&c, 0, sizeof c);
    static const nf_ws_handler_t kh = {.on_open = h_ws_end_open, .on_pong = k_pong, .on_close = h_ws_end_close};
    nf_ws_client_config_t cfg = {.handler = &kh, .data = &c, .opts = {.ping_interval_ms = 50, .idle_timeout_ms = 2000}};
    char url[64];
    snprintf(url, sizeof url, "ws://127.0.0.1:%u/echo", port);
    pongs = 0;
    H_ASSERT_ERR(nf_ws_connect(loop, url, &cfg, NULL), 0);
    H_RUN_UNTIL(loop, pongs >= 3, 3000);
    assert_int_equal(c.end.closed, 0);
    server_closed = 0;
    nf_ws_server_close(s, NF_WS_CLOSE_GOING_AWAY, on_server_closed);
    H_RUN_UNTIL(loop, c.end.closed == 1 && server_closed, 5000);
    assert_int_equal(c.end.code, 1001);
    h_loop_finish(loop, 5000);

    /* idle timeout on the server side */
    loop = h_loop_new();
    memset(&srv, 0, sizeof srv);
    nf_ws_server_config_t scfg = {
        .listen = {.host = "127.0.0.1"},
        .routes = s_routes,
        .nroutes = 1,
        .opts = {.idle_timeout_ms = 200},
    };
    H_ASSERT_ERR(nf_ws_listen(loop, &scfg, &s), 0);
    nf_addr_t a;
    nf_ws_server_addr(s, &a);
    rawcase_t rc = {.name = "idle", .status = 101, .close_code = 1001, .port = nf_addr_port(&a)};
    pthread_t t = h_thread_start(raw_peer, &rc);
    H_RUN_UNTIL(loop, atomic_load(&rc.res.done), 5000);
    h_thread_join(t, 5000);
    H_ASSERT_PEER_OK(&rc.res);
    H_RUN_UNTIL(loop, srv.closed == 1, 5000);
    assert_int_equal(srv.last_code, 1001);
    H_ASSERT_ERR(srv.last_error, -ETIMEDOUT);
    h_ws_server_stop(loop, s, 0);
    h_loop_finish(loop, 5000);
}

/* Flow control below the WebSocket filter: sends report HELD / DROPPED. */
static void test_flow_below(void **state)
{
    (void)state;
    nf_loop_t *loop = h_loop_new();
    memset(&srv, 0, sizeof srv);
    static const nf_flow_config_t fc = {.max_inflight_bytes = 1, .max_held_bytes = 64 * 1024};
    static const nf_filter_spec_t flow[] = {{&nf_flow_filter, &fc}};
    nf_ws_server_config_t cfg = {.listen = {.host = "127.0.0.1"}, .routes = s_routes, .nroutes = 1};
    nf_ws_server_t *s;
    uint16_t ws_port = h_ws_listen(loop, &cfg, &s);
    cli_t c;
    memset(&c, 0, sizeof c);
    char url[64];
    snprintf(url, sizeof url, "ws://127.0.0.1:%u/echo", ws_port);
    nf_ws_client_config_t ccfg = {.connect = {.filters = flow, .nfilters = 1}, .handler = &c_handler, .data = &c};
    nf_ws_conn_t *ws;
    H_ASSERT_ERR(nf_ws_connect(loop, url, &ccfg, &ws), 0);
    H_RUN_UNTIL(loop, c.end.opened, 5000);
    assert_non_null(nf_conn_filter(nf_ws_conn_tcp(ws), &nf_flow_filter));
    static char blob[20000];
    int held = 0, dropped = 0;
    for (int i = 0; i < 20; i++) {
        int rc = nf_ws_send(ws, NF_WS_OP_BINARY, blob, sizeof blob);
        assert_true(rc >= 0);
        held += rc == NF_WRITE_HELD;
        dropped += rc == NF_WRITE_DROPPED;
    }
    assert_true(held > 0);
    assert_true(dropped > 0);
    nf_ws_abort(ws);
    H_RUN_UNTIL(loop, c.end.closed, 5000);
    assert_int_equal(c.end.code, 1006);
    h_ws_server_stop(loop, s, NF_WS_CLOSE_GOING_AWAY);
    h_loop_finish(loop, 5000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_echo_plain),
        cmocka_unit_test(test_echo_deflate),
        cmocka_unit_test(test_echo_fragmented),
        cmocka_unit_test(test_echo_fragmented_deflate),
        cmocka_unit_test(test_stream_plain),
        cmocka_unit_test(test_stream_deflate),
        cmocka_unit_test(test_server_close_going_away),
        cmocka_unit_test(test_client_failures),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_handshake_timeout),
        cmocka_unit_test(test_keepalive),
        cmocka_unit_test(test_flow_below),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
