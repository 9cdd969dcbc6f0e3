/* Integration: Hixie-76 (draft-hixie-thewebsocketprotocol-76) on the server
 * (legacy_hixie76) and the client (version 76), over loopback:
 *  - netframe client <-> netframe server echo, the closing handshake;
 *  - the draft's own handshake example from a raw socket: the exact 16-byte
 *    answer, Sec-WebSocket-Origin / -Location, frames both ways;
 *  - bad input, each closing only its connection while a good Hixie-76
 *    connection goes on echoing: missing key3 body (handshake timeout),
 *    bad keys, truncated frame, oversized frame / no 0xFF within the limit,
 *    invalid UTF-8, length-prefixed frames skipped, Hixie-76 disabled (426);
 *  - our client against a raw server that checks its keys: the right answer
 *    opens (frames, a skipped length-prefixed frame, the closing handshake),
 *    a wrong answer fails the handshake, a missing one times out. */
#include "helpers.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <netframe/ws.h>

/* ---- server: echo --------------------------------------------------------- */

typedef struct srv_stats {
    int opened, closed, version;
    unsigned last_code;
    int last_error;
} srv_stats_t;

static srv_stats_t srv;

static void s_open(nf_ws_conn_t *ws)
{
    srv.opened++;
    srv.version = nf_ws_conn_version(ws);
}

static void s_message(nf_ws_conn_t *ws, unsigned op, const char *data, size_t len)
{
    assert_int_equal(op, NF_WS_OP_TEXT);
    nf_ws_send(ws, op, data, len);
}

static void s_close(nf_ws_conn_t *ws, unsigned code, const char *reason, size_t rlen)
{
    (void)reason, (void)rlen;
    srv.closed++;
    srv.last_code = code;
    srv.last_error = nf_ws_conn_error(ws);
}

static const nf_ws_handler_t s_echo = {.on_open = s_open, .on_message = s_message, .on_close = s_close};
static const char *const s_protos[] = {"chat", "sample", NULL};
static const nf_ws_route_t s_routes[] = {{.path = "*", .handler = &s_echo, .subprotocols = s_protos}};

static nf_ws_server_t *start_server(nf_loop_t *loop, int hixie, uint64_t max_frame, uint64_t hs_timeout, uint16_t *port)
{
    memset(&srv, 0, sizeof srv);
    nf_ws_server_config_t cfg = {
        .listen = {.host = "127.0.0.1", .port = 0},
        .routes = s_routes,
        .nroutes = 1,
        .opts = {.max_frame = max_frame, .handshake_timeout_ms = hs_timeout, .close_timeout_ms = 2000},
        .legacy_hixie76 = hixie,
    };
    nf_ws_server_t *s;
    *port = h_ws_listen(loop, &cfg, &s);
    return s;
}

static void stop_server(nf_loop_t *loop, nf_ws_server_t *s)
{
    h_ws_server_stop(loop, s, NF_WS_CLOSE_GOING_AWAY);
    h_loop_finish(loop, 5000);
}

/* ---- client ------------------------------------------------------------------ */

typedef struct cli {
    h_ws_end_t end; /* first: h_ws_end_open/close record here */
    int got, http_status;
    char last[80000];
    size_t last_len;
} cli_t;

static void c_message(nf_ws_conn_t *ws, unsigned op, const char *data, size_t len)
{
    cli_t *c = nf_ws_conn_get_data(ws);
    assert_int_equal(op, NF_WS_OP_TEXT);
    assert_true(len <= sizeof c->last);
    memcpy(c->last, data, len);
    c->last_len = len;
    c->got++;
}

static void c_close(nf_ws_conn_t *ws, unsigned code, const char *reason, size_t rlen)
{
    cli_t *c = nf_ws_conn_get_data(ws);
    c->http_status = nf_ws_conn_http_status(ws); /* ws is gone after this call */
    h_ws_end_close(ws, code, reason, rlen);
}

static const nf_ws_handler_t c_handler = {.on_open = h_ws_end_open, .on_message = c_message, .on_close = c_close};

static nf_ws_conn_t *connect_hixie(nf_loop_t *loop, uint16_t port, cli_t *c, const char *const *protos)
{
    char url[128];
    snprintf(url, sizeof url, "ws://127.0.0.1:%u/chat?room=1", port);
    nf_ws_client_config_t cfg = {
        .connect = {.timeout_ms = 5000},
        .handler = &c_handler,
        .data = c,
        .version = 76,
        .subprotocols = protos,
    };
    nf_ws_conn_t *ws = NULL;
    H_ASSERT_ERR(nf_ws_connect(loop, url, &cfg, &ws), 0);
    return ws;
}

static void echo_one(nf_loop_t *loop, nf_ws_conn_t *ws, cli_t *c, const char *text, size_t len)
{
    int before = c->got;
    H_ASSERT_ERR(nf_ws_send(ws, NF_WS_OP_TEXT, text, len), NF_WRITE_OK);
    H_RUN_UNTIL(loop, c->got == before + 1 || c->end.closed, 5000);
    assert_int_equal(c->got, before + 1);
    assert_int_equal(c->last_len, len);
    assert_memory_equal(c->last, text, len);
}

static void test_client_server(void **state)
{
    (void)state;
    nf_loop_t *loop = h_loop_new();
    uint16_t port;
    nf_ws_server_t *s = start_server(loop, 1, 0, 0, &port);
    static cli_t c;
    memset(&c, 0, sizeof c);
    static const char *const protos[] = {"sample", NULL};
    nf_ws_conn_t *ws = connect_hixie(loop, port, &c, protos);
    H_RUN_UNTIL(loop, c.end.opened || c.end.closed, 5000);
    assert_int_equal(c.end.opened, 1);
    assert_int_equal(nf_ws_conn_version(ws), 76);
    assert_int_equal(srv.version, 76);
    assert_string_equal(nf_ws_conn_subprotocol(ws), "sample");
    assert_string_equal(nf_ws_conn_path(ws), "/chat?room=1");
    echo_one(loop, ws, &c, "", 0);
    echo_one(loop, ws, &c, "hello", 5);
    echo_one(loop, ws, &c, "w\xc3\xb6rld \xf0\x9f\x98\x80", 11);
    static char big[70000];
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (char)('a' + i % 26);
    echo_one(loop, ws, &c, big, sizeof big);
    /* what Hixie-76 cannot carry */
    H_ASSERT_ERR(nf_ws_send(ws, NF_WS_OP_BINARY, "x", 1), -EINVAL);
    H_ASSERT_ERR(nf_ws_ping(ws, "x", 1), -EINVAL);
    H_ASSERT_ERR(nf_ws_send_fragment(ws, NF_WS_OP_TEXT, "x", 1, 0), -EINVAL);
    /* the closing handshake: 0xFF 0x00 both ways; no codes in draft 76 */
    H_ASSERT_ERR(nf_ws_close(ws, NF_WS_CLOSE_NORMAL, NULL, 0), 0);
    H_RUN_UNTIL(loop, c.end.closed && srv.closed, 5000);
    assert_int_equal(c.end.code, NF_WS_CLOSE_NO_STATUS);
    assert_int_equal(c.end.error, 0);
    assert_int_equal(srv.last_code, NF_WS_CLOSE_NO_STATUS);
    assert_int_equal(srv.last_error, 0);
    H_RUN_UNTIL(loop, nf_ws_server_conns(s) == 0, 5000);

    /* a Hixie-76 client against a server without the option: 426, the
     * client fails the handshake */
    stop_server(loop, s);
    loop = h_loop_new();
    s = start_server(loop, 0, 0, 0, &port);
    memset(&c, 0, sizeof c);
    ws = connect_hixie(loop, port, &c, NULL);
    H_RUN_UNTIL(loop, c.end.closed, 5000);
    assert_int_equal(c.end.opened, 0);
    assert_int_equal(c.end.code, NF_WS_CLOSE_ABNORMAL);
    H_ASSERT_ERR(c.end.error, NF_EWS_HANDSHAKE);
    assert_int_equal(c.http_status, 426);
    stop_server(loop, s);
}

/* ---- raw peers ------------------------------------------------------------------ */

typedef struct raw {
    const char *name;
    uint16_t port;
    const void *req; /* sent first (head and maybe key3) */
    size_t req_len;
    const void *after; /* sent once the answer's head arrived */
    size_t after_len;
    int shut;                /* shutdown(SHUT_WR): 1 once the answer's head came, 2 right after req */
    unsigned char got[8192]; /* everything received until EOF */
    size_t got_len;
    int eof;
    h_result_t res;
} raw_t;

static void *raw_peer(void *arg)
{
    raw_t *r = arg;
    int fd = h_tcp_connect("127.0.0.1", r->port);
    if (fd < 0) {
        h_result_fail(&r->res, "%s: connect %d", r->name, fd);
        goto done;
    }
    if (r->req_len && h_send_all(fd, r->req, r->req_len, 5000) != 0)
        h_result_fail(&r->res, "%s: send", r->name);
    if (r->shut == 2)
        shutdown(fd, SHUT_WR);
    int head = 0;
    for (;;) {
        if (r->got_len == sizeof r->got) {
            h_result_fail(&r->res, "%s: too much", r->name);
            break;
        }
        ssize_t n = h_recv_full(fd, r->got + r->got_len, 1, 5000);
        if (n == 0) {
            r->eof = 1;
            break;
        }
        if (n < 0) /* timeout or reset: recorded as no EOF */
            break;
        r->got_len++;
        if (!head && r->got_len >= 4 && memcmp(r->got + r->got_len - 4, "\r\n\r\n", 4) == 0) {
            head = 1;
            if (r->after_len && h_send_all(fd, r->after, r->after_len, 5000) != 0)
                h_result_fail(&r->res, "%s: send after", r->name);
            if (r->shut == 1)
                shutdown(fd, SHUT_WR);
        }
    }
    close(fd);
done:
    return h_peer_done(&r->res);
}

static void run_raw(nf_loop_t *loop, raw_t *r)
{
    pthread_t t = h_thread_start(raw_peer, r);
    H_RUN_UNTIL(loop, atomic_load(&r->res.done), 10000);
    h_thread_join(t, 5000);
    H_ASSERT_PEER_OK(&r->res);
}

/* Offset of the body after the head in got, or fails. */
static size_t body_of(const raw_t *r, int status)
{
    char line[32];
    snprintf(line, sizeof line, "HTTP/1.1 %d ", status);
    if (r->got_len < strlen(line) || memcmp(r->got, line, strlen(line)) != 0)
        fail_msg("%s: answer %.*s, expected %d", r->name, (int)(r->got_len < 40 ? r->got_len : 40), r->got, status);
    const unsigned char *e = memmem(r->got, r->got_len, "\r\n\r\n", 4);
    assert_non_null(e);
    return (size_t)(e + 4 - r->got);
}

static int has(const raw_t *r, const char *s) { return memmem(r->got, r->got_len, s, strlen(s)) != NULL; }

#define DRAFT_HEAD                                                                                                     \
    "GET /demo HTTP/1.1\r\nHost: example.com\r\nConnection: Upgrade\r\n"                                               \
    "Sec-WebSocket-Key2: 12998 5 Y3 1  .P00\r\nSec-WebSocket-Protocol: sample\r\nUpgrade: WebSocket\r\n"               \
    "Sec-WebSocket-Key1: 4 @1  46546xW%0l 1 5\r\nOrigin: http://example.com\r\n\r\n"
#define DRAFT_KEY3   "^n:ds[4U"
#define DRAFT_ANSWER "8jKS'y:G*Co,Wxa-"

static void test_draft_handshake_raw(void **state)
{
    (void)state;
    nf_loop_t *loop = h_loop_new();
    uint16_t port;
    nf_ws_server_t *s = start_server(loop, 1, 0, 0, &port);
    /* the example of draft 76 section 1.2 with key3, then a text frame, a
     * length-prefixed frame (skipped), another text frame and the closing
     * frame, all in one write */
    static const unsigned char frames[] = "\x00hello\xff\x80\x02zz\x00\xc3\xa9\xff\xff\x00";
    static char whole[512];
    size_t wl = sizeof DRAFT_HEAD - 1 + 8;
    memcpy(whole, DRAFT_HEAD DRAFT_KEY3, wl);
    memcpy(whole + wl, frames, sizeof frames - 1);
    wl += sizeof frames - 1;
    raw_t r = {.name = "draft example", .port = port, .req = whole, .req_len = wl};
    run_raw(loop, &r);
    size_t b = body_of(&r, 101);
    assert_true(has(&r, "HTTP/1.1 101 WebSocket Protocol Handshake\r\n"));
    assert_true(has(&r, "\r\nUpgrade: WebSocket\r\n"));
    assert_true(has(&r, "\r\nConnection: Upgrade\r\n"));
    assert_true(has(&r, "\r\nSec-WebSocket-Origin: http://example.com\r\n"));
    assert_true(has(&r, "\r\nSec-WebSocket-Location: ws://example.com/demo\r\n"));
    assert_true(has(&r, "\r\nSec-WebSocket-Protocol: sample\r\n"));
    static const unsigned char want[] = DRAFT_ANSWER "\x00hello\xff\x00\xc3\xa9\xff\xff\x00";
    assert_int_equal(r.got_len - b, sizeof want - 1);
    assert_memory_equal(r.got + b, want, sizeof want - 1);
    assert_true(r.eof);
    H_RUN_UNTIL(loop, srv.closed == 1, 5000);
    assert_int_equal(srv.last_code, NF_WS_CLOSE_NO_STATUS);
    assert_int_equal(srv.last_error, 0);

    /* key3 in pieces: the head and 3 bytes, then the 5 others later; no
     * answer before all 8 */
    int fd = h_tcp_connect("127.0.0.1", port);
    assert_true(fd >= 0);
    assert_int_equal(h_send_all(fd, DRAFT_HEAD "^n:", sizeof DRAFT_HEAD - 1 + 3, 1000), 0);
    h_run_for(loop, 50);
    assert_int_equal(srv.opened, 1); /* not yet */
    assert_int_equal(h_send_all(fd, "ds[4U\x00x\xff", 8, 1000), 0);
    H_RUN_UNTIL(loop, srv.opened == 2, 5000);
    char ans[256];
    h_run_for(loop, 20);
    ssize_t n = recv(fd, ans, sizeof ans, MSG_DONTWAIT);
    assert_true(n > 0);
    const char *e = memmem(ans, (size_t)n, "\r\n\r\n", 4);
    assert_non_null(e);
    assert_true((size_t)n - (size_t)(e + 4 - ans) >= 16);
    assert_memory_equal(e + 4, DRAFT_ANSWER, 16);
    close(fd);
    H_RUN_UNTIL(loop, srv.closed == 2, 5000);
    stop_server(loop, s);
}

static void test_bad_input(void **state)
{
    (void)state;
    nf_loop_t *loop = h_loop_new();
    uint16_t port;
    nf_ws_server_t *s = start_server(loop, 1, 1000, 300, &port);
    static cli_t good;
    memset(&good, 0, sizeof good);
    nf_ws_conn_t *gws = connect_hixie(loop, port, &good, NULL);
    H_RUN_UNTIL(loop, good.end.opened, 5000);

    static unsigned char oversized[2000], noterm[2000];
    size_t ol = 0;
    memcpy(oversized, DRAFT_HEAD DRAFT_KEY3, sizeof DRAFT_HEAD - 1 + 8);
    ol = sizeof DRAFT_HEAD - 1 + 8;
    oversized[ol++] = 0x00;
    memset(oversized + ol, 'a', 1500);
    ol += 1500;
    oversized[ol++] = 0xff;
    size_t nl = 0;
    memcpy(noterm, DRAFT_HEAD DRAFT_KEY3, sizeof DRAFT_HEAD - 1 + 8);
    nl = sizeof DRAFT_HEAD - 1 + 8;
    noterm[nl++] = 0x00;
    memset(noterm + nl, 'b', 1001); /* the limit is 1000: no 0xFF within it */
    nl += 1001;
    static const char bigprefix[] = DRAFT_HEAD DRAFT_KEY3 "\x80\x88\x00"; /* 1024 > 1000 */
    static const char badutf8[] = DRAFT_HEAD DRAFT_KEY3 "\x00\xc3(\xff";
    static const char truncated[] = DRAFT_HEAD DRAFT_KEY3 "\x00"
                                                          "abc";
    static const char nokey3[] = DRAFT_HEAD;
    static const char shortkey3[] = DRAFT_HEAD "1234";
    static const char nospace[] = "GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: WebSocket\r\n"
                                  "Sec-WebSocket-Key1: 1234\r\nSec-WebSocket-Key2: 1 2 \r\n\r\n12345678";
    static const char notdiv[] = "GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: WebSocket\r\n"
                                 "Sec-WebSocket-Key1: 1 2 3\r\nSec-WebSocket-Key2: 1 2 \r\n\r\n12345678";
    static const char twokeys[] = "GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: WebSocket\r\n"
                                  "Sec-WebSocket-Key1: 1 2 \r\nSec-WebSocket-Key1: 1 2 \r\n"
                                  "Sec-WebSocket-Key2: 1 2 \r\n\r\n12345678";
    struct {
        raw_t r;
        int status;         /* HTTP status expected; 0: none (closed) */
        const char *frames; /* after the 16-byte answer */
        size_t frames_len;
        unsigned close_code; /* the server's on_close code; 0: not opened */
    } cases[] = {
        {{.name = "oversized frame", .req = oversized, .req_len = ol}, 101, "\xff\x00", 2, 1009},
        {{.name = "no 0xFF within the limit", .req = noterm, .req_len = nl}, 101, "\xff\x00", 2, 1009},
        {{.name = "length prefix over the limit", .req = bigprefix, .req_len = sizeof bigprefix - 1},
         101,
         "\xff\x00",
         2,
         1009},
        {{.name = "invalid UTF-8", .req = badutf8, .req_len = sizeof badutf8 - 1}, 101, "\xff\x00", 2, 1007},
        {{.name = "truncated frame then EOF", .req = truncated, .req_len = sizeof truncated - 1, .shut = 1},
         101,
         "",
         0,
         1006},
        {{.name = "missing key3 (handshake timeout)", .req = nokey3, .req_len = sizeof nokey3 - 1}, 0, NULL, 0, 0},
        {{.name = "short key3 then EOF", .req = shortkey3, .req_len = sizeof shortkey3 - 1, .shut = 2}, 0, NULL, 0, 0},
        {{.name = "key without spaces", .req = nospace, .req_len = sizeof nospace - 1}, 400, NULL, 0, 0},
        {{.name = "key not divisible", .req = notdiv, .req_len = sizeof notdiv - 1}, 400, NULL, 0, 0},
        {{.name = "two Key1", .req = twokeys, .req_len = sizeof twokeys - 1}, 400, NULL, 0, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        raw_t *r = &cases[i].r;
        r->port = port;
        int opened = srv.opened, closed = srv.closed;
        {
            run_raw(loop, r);
            if (!r->eof)
                fail_msg("%s: no EOF from the server", r->name);
            if (cases[i].status) {
                size_t b = body_of(r, cases[i].status);
                if (cases[i].status == 101) {
                    assert_true(r->got_len - b >= 16);
                    assert_memory_equal(r->got + b, DRAFT_ANSWER, 16);
                    if (r->got_len - b - 16 != cases[i].frames_len ||
                        memcmp(r->got + b + 16, cases[i].frames, cases[i].frames_len) != 0)
                        fail_msg("%s: %zu bytes after the answer", r->name, r->got_len - b - 16);
                }
            } else if (r->got_len) {
                fail_msg("%s: got an answer %.*s", r->name, (int)r->got_len, r->got);
            }
        }
        if (cases[i].close_code) {
            H_RUN_UNTIL(loop, srv.closed == closed + 1, 5000);
            if (srv.last_code != cases[i].close_code)
                fail_msg("%s: close code %u, expected %u", r->name, srv.last_code, cases[i].close_code);
        } else {
            assert_int_equal(srv.opened, opened);
        }
        /* only that connection went: the good one still echoes */
        H_RUN_UNTIL(loop, nf_ws_server_conns(s) == 1, 5000);
        char msg[32];
        int ml = snprintf(msg, sizeof msg, "still here %zu", i);
        echo_one(loop, gws, &good, msg, (size_t)ml);
    }
    assert_int_equal(good.end.closed, 0);
    stop_server(loop, s);
    assert_int_equal(good.end.closed, 1);
}

/* Hixie-76 off (the default): a Hixie-76 request is answered 426 listing
 * the versions spoken, and the connection ends. */
static void test_disabled(void **state)
{
    (void)state;
    nf_loop_t *loop = h_loop_new();
    uint16_t port;
    nf_ws_server_t *s = start_server(loop, 0, 0, 0, &port);
    raw_t r = {.name = "hixie off", .port = port, .req = DRAFT_HEAD DRAFT_KEY3, .req_len = sizeof DRAFT_HEAD - 1 + 8};
    run_raw(loop, &r);
    body_of(&r, 426);
    assert_true(has(&r, "\r\nSec-WebSocket-Version: 13\r\n"));
    assert_true(r.eof);
    assert_int_equal(srv.opened, 0);
    H_RUN_UNTIL(loop, nf_ws_server_conns(s) == 0, 5000);
    stop_server(loop, s);
}

/* ---- our client against a raw Hixie-76 server ------------------------------- */

typedef struct rawsrv {
    int lfd, mode; /* 0: right answer, frames, closing frame; 1: wrong answer;
                      2: the answer's head only (no 16 bytes) */
    char key1[80], key2[80];
    int closing_seen;
    h_result_t res;
} rawsrv_t;

static const char *header_value(const char *req, const char *name, char *out, size_t cap)
{
    const char *p = strstr(req, name);
    if (!p)
        return NULL;
    p += strlen(name);
    const char *e = strstr(p, "\r\n");
    size_t n = (size_t)(e - p) < cap - 1 ? (size_t)(e - p) : cap - 1;
    memcpy(out, p, n);
    out[n] = 0;
    return out;
}

static void *rawsrv_main(void *arg)
{
    rawsrv_t *r = arg;
    int fd = accept(r->lfd, NULL, NULL);
    char req[4096];
    size_t n = 0;
    while (fd >= 0 && (n < 4 || memcmp(req + n - 4, "\r\n\r\n", 4) != 0) && n + 1 < sizeof req &&
           h_recv_full(fd, req + n, 1, 5000) == 1)
        n++;
    req[n] = 0;
    uint8_t key3[8], ans[16];
    if (fd < 0 || h_recv_full(fd, key3, 8, 5000) != 8 || !header_value(req, "Sec-WebSocket-Key1: ", r->key1, 80) ||
        !header_value(req, "Sec-WebSocket-Key2: ", r->key2, 80) ||
        nf_ws_hixie76_answer(r->key1, strlen(r->key1), r->key2, strlen(r->key2), key3, ans) != 0 ||
        !strstr(req, "\r\nOrigin: http://127.0.0.1:") || !strstr(req, "\r\nUpgrade: WebSocket\r\n")) {
        h_result_fail(&r->res, "request: %s", req);
        goto out;
    }
    static const char head[] = "HTTP/1.1 101 WebSocket Protocol Handshake\r\nUpgrade: WebSocket\r\n"
                               "Connection: Upgrade\r\nSec-WebSocket-Location: ws://127.0.0.1/\r\n\r\n";
    if (r->mode == 1)
        ans[5] ^= 1;
    /* the answer, a text frame, a length-prefixed frame to skip, the closing frame */
    static const uint8_t frames[] = {0x00, 'h', 'i', 0xff, 0x80, 0x03, 'x', 'y', 'z', 0xff, 0x00};
    h_send_all(fd, head, sizeof head - 1, 5000);
    if (r->mode != 2)
        h_send_all(fd, ans, 16, 5000);
    if (r->mode == 0) {
        h_send_all(fd, frames, sizeof frames, 5000);
        uint8_t cf[2];
        r->closing_seen = h_recv_full(fd, cf, 2, 5000) == 2 && cf[0] == 0xff && cf[1] == 0x00;
    }
    h_recv_eof(fd, 5000); /* the client ends the connection */
out:
    if (fd >= 0)
        close(fd);
    return h_peer_done(&r->res);
}

static void client_vs_raw(int mode)
{
    nf_loop_t *loop = h_loop_new();
    rawsrv_t r = {.mode = mode};
    uint16_t rport;
    r.lfd = h_tcp_listen(4, &rport);
    pthread_t t = h_thread_start(rawsrv_main, &r);
    static cli_t c;
    memset(&c, 0, sizeof c);
    char url[64];
    snprintf(url, sizeof url, "ws://127.0.0.1:%u/", rport);
    nf_ws_client_config_t cfg = {
        .handler = &c_handler, .data = &c, .version = 76, .opts = {.handshake_timeout_ms = 300}};
    H_ASSERT_ERR(nf_ws_connect(loop, url, &cfg, NULL), 0);
    H_RUN_UNTIL(loop, c.end.closed && atomic_load(&r.res.done), 10000);
    h_thread_join(t, 5000);
    H_ASSERT_PEER_OK(&r.res);
    if (mode == 0) {
        assert_int_equal(c.end.opened, 1);
        assert_int_equal(c.got, 1);
        assert_int_equal(c.last_len, 2);
        assert_memory_equal(c.last, "hi", 2);
        assert_int_equal(c.end.code, NF_WS_CLOSE_NO_STATUS);
        assert_int_equal(c.end.error, 0);
        assert_true(r.closing_seen);
    } else {
        assert_int_equal(c.end.opened, 0);
        assert_int_equal(c.end.code, NF_WS_CLOSE_ABNORMAL);
        H_ASSERT_ERR(c.end.error, mode == 1 ? NF_EWS_HANDSHAKE : -ETIMEDOUT);
    }
    close(r.lfd);
    h_loop_finish(loop, 5000);
}

/* Our client's keys, checked by a raw server with the codec's answer
 * function: the right answer opens; a wrong one, or none, fails. */
static void test_client_vs_raw_server(void **state)
{
    (void)state;
    client_vs_raw(0);
    client_vs_raw(1);
    client_vs_raw(2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_client_server),
        cmocka_unit_test(test_draft_handshake_raw),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_disabled),
        cmocka_unit_test(test_client_vs_raw_server),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
