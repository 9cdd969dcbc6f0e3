/* Integration: the HTTP/1.1 server (src/http/server.c) against raw sockets
 * on loopback, on the backend NF_BACKEND names. The server runs on its own
 * loop thread; the test is a blocking client. Keep-alive (1.1, 1.0 with and
 * without), pipelining order with a slow first answer, HEAD, Connection:
 * close, 100-continue, routes and parameters, 404/405, chunked uploads with
 * trailers, streamed bodies with backpressure, streamed and chunked
 * responses, every framing rule (one of them cut at every byte), every limit,
 * and the peers that misbehave: slow-loris heads and bodies, an idle
 * connection, an upload that never ends, a client that never reads; each is
 * timed out, counted, and a good client is served meanwhile. */
#include "helpers.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "netframe/http_server.h"

static nf_loop_t *g_loop;
static nf_http_server_t *g_srv;
static uint16_t g_port;
static pthread_t g_thr;
static atomic_int g_ready;
static atomic_ullong g_stream_bytes;
static atomic_int g_pauses;

/* ---- handlers (loop thread) ---- */

static const nf_http_header_t ct_text = {"Content-Type", 12, "text/plain", 10};

static void hd_hello(nf_http_req_t *r) { nf_http_respond(r, 200, &ct_text, 1, "Hello, World!", 13); }

static void hd_echo(nf_http_req_t *r)
{
    char t[64];
    int k = snprintf(t, sizeof t, "%zu", r->num_trailers);
    nf_http_header_t h[2] = {ct_text, {"X-Trailers", 10, t, (size_t)k}};
    nf_http_respond(r, 200, h, 2, r->body, r->body_len);
}

static void hd_room(nf_http_req_t *r)
{
    size_t n;
    const char *id = nf_http_req_param(r, "id", &n);
    char b[128];
    int k = snprintf(b, sizeof b, "room=%.*s q=%.*s", (int)n, id, (int)r->query_len, r->query ? r->query : "");
    nf_http_respond(r, 200, &ct_text, 1, b, (size_t)k);
}

static void hd_static(nf_http_req_t *r)
{
    size_t n;
    const char *p = nf_http_req_param(r, "*", &n);
    char b[128];
    int k = snprintf(b, sizeof b, "file=%.*s", (int)n, p);
    nf_http_respond(r, 200, &ct_text, 1, b, (size_t)k);
}

/* GET /slow/:ms answers later, from a timer (an asynchronous handler) */
typedef struct {
    nf_timer_t t;
    nf_http_req_t *r;
} later_t;

static void later_cb(nf_timer_t *t)
{
    later_t *l = t->data;
    nf_http_respond(l->r, 200, &ct_text, 1, "slow", 4);
    free(l);
}

static void hd_slow(nf_http_req_t *r)
{
    later_t *l = calloc(1, sizeof(*l));
    l->r = r;
    nf_timer_init(g_loop, &l->t);
    l->t.data = l;
    nf_timer_start(&l->t, later_cb, (uint64_t)atoi(nf_http_req_param(r, "ms", NULL)), 0);
}

/* POST /stream: a streamed body consumed slowly: pause after each piece,
 * resume 2 ms later. */
typedef struct {
    nf_timer_t t;
    nf_http_req_t *r;
    uint64_t bytes;
} strm_t;

static void strm_resume(nf_timer_t *t)
{
    strm_t *s = t->data;
    nf_http_req_resume(s->r);
}

static void strm_body(nf_http_req_t *r, const char *data, size_t len)
{
    strm_t *s = r->data;
    (void)data;
    s->bytes += len;
    atomic_fetch_add(&g_stream_bytes, len);
    if (s->bytes / 65536 != (s->bytes - len) / 65536) {
        atomic_fetch_add(&g_pauses, 1);
        nf_http_req_pause(r);
        nf_timer_start(&s->t, strm_resume, 2, 0);
    }
}

static void strm_end(nf_http_req_t *r)
{
    strm_t *s = r->data;
    char b[64];
    int k = snprintf(b, sizeof b, "got %llu", (unsigned long long)s->bytes);
    nf_timer_stop(&s->t);
    free(s);
    nf_http_respond(r, 200, &ct_text, 1, b, (size_t)k);
}

static void strm_abort(nf_http_req_t *r, int reason)
{
    strm_t *s = r->data;
    (void)reason;
    nf_timer_stop(&s->t);
    free(s);
    nf_http_respond(r, 500, NULL, 0, NULL, 0); /* returns NF_ECLOSED and frees r */
}

static const nf_http_req_ops_t strm_ops = {.on_body = strm_body, .on_body_end = strm_end, .on_abort = strm_abort};

static void hd_stream(nf_http_req_t *r)
{
    strm_t *s = calloc(1, sizeof(*s));
    s->r = r;
    nf_timer_init(g_loop, &s->t);
    s->t.data = s;
    r->data = s;
    nf_http_req_set_ops(r, &strm_ops);
}

/* GET /chunked: a chunked response in three writes */
static void hd_chunked(nf_http_req_t *r)
{
    nf_http_response_start(r, 200, &ct_text, 1, -1);
    nf_http_response_write(r, "one,", 4);
    nf_http_response_write(r, "two,", 4);
    nf_http_response_write(r, "three", 5);
    nf_http_response_end(r);
}

/* GET /big/:kib: a streamed response with a length, written as on_drain
 * allows */
typedef struct {
    nf_http_req_t *r;
    uint64_t left;
} big_t;

static char g_kib[1024];

static void big_pump(nf_http_req_t *r)
{
    big_t *b = r->data;
    while (b->left) {
        b->left--;
        int rc = nf_http_response_write(r, g_kib, sizeof g_kib);
        if (rc == NF_HTTP_WAIT)
            return;
        if (rc < 0)
            break;
    }
    free(b);
    nf_http_response_end(r);
}

static void big_abort(nf_http_req_t *r, int reason)
{
    (void)reason;
    free(r->data);
    nf_http_response_end(r);
}

static const nf_http_req_ops_t big_ops = {.on_drain = big_pump, .on_abort = big_abort};

static void hd_big(nf_http_req_t *r)
{
    big_t *b = calloc(1, sizeof(*b));
    b->r = r;
    b->left = (uint64_t)atoi(nf_http_req_param(r, "kib", NULL));
    r->data = b;
    nf_http_req_set_ops(r, &big_ops);
    nf_http_response_start(r, 200, &ct_text, 1, (int64_t)(b->left * 1024));
    big_pump(r);
}

/* GET /up with Upgrade: echo: an upper layer takes the connection over
 * (what the ws layer will do for WebSocket) and echoes from then on. */
static void echo_read(nf_conn_t *c, const char *data, size_t len) { nf_conn_write(c, data, len); }
static void echo_close(nf_conn_t *c, int reason) { (void)c, (void)reason; }
static const nf_conn_handler_t echo_proto = {.on_read = echo_read, .on_close = echo_close};

static int up_take(void *arg, nf_http_req_t *r, nf_conn_t *c, const char *rest, size_t rest_len)
{
    (void)arg;
    if (!nf_http_headers_have_token(r->headers, r->num_headers, "upgrade", "echo"))
        return -1;
    nf_conn_set_handler(c, &echo_proto);
    nf_conn_set_data(c, NULL);
    static const char ok[] = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n";
    nf_conn_write(c, ok, sizeof ok - 1);
    if (rest_len)
        nf_conn_write(c, rest, rest_len);
    return 0;
}

static const nf_http_upgrade_ops_t up_ops = {.size = sizeof(nf_http_upgrade_ops_t), .take = up_take};

static const nf_http_route_t routes[] = {
    {.method = "GET", .pattern = "/up", .upgrade = &up_ops},
    {.method = "GET", .pattern = "/", .handler = hd_hello},
    {.method = "POST", .pattern = "/echo", .handler = hd_echo, .max_body = 65536},
    {.method = "GET", .pattern = "/rooms/:id", .handler = hd_room},
    {.method = "GET", .pattern = "/static/*", .handler = hd_static},
    {.method = "GET", .pattern = "/slow/:ms", .handler = hd_slow},
    {.method = "POST",
     .pattern = "/stream",
     .handler = hd_stream,
     .flags = NF_HTTP_ROUTE_STREAM_BODY,
     .max_body = 8 * 1024 * 1024},
    {.method = "GET", .pattern = "/chunked", .handler = hd_chunked},
    {.method = "GET", .pattern = "/big/:kib", .handler = hd_big},
    {.method = "GET", .pattern = "/metrics", .handler = nf_http_metrics_handler},
};

static void *server_main(void *arg)
{
    (void)arg;
    nf_loop_config_t lc;
    nf_loop_config_init(&lc);
    if (nf_loop_new(&g_loop, &lc) < 0) {
        atomic_store(&g_ready, -1);
        return NULL;
    }
    nf_http_server_config_t cfg;
    nf_http_server_config_init(&cfg);
    cfg.routes = routes;
    cfg.nroutes = sizeof routes / sizeof routes[0];
    cfg.server_name = "netframe-test";
    cfg.head_timeout_ms = 400;
    cfg.body_timeout_ms = 600;
    cfg.idle_timeout_ms = 800;
    cfg.write_timeout_ms = 800;
    cfg.limits.head.max_line = 1024;
    cfg.limits.head.max_field = 1024;
    cfg.limits.head.max_head = 4096;
    if (nf_http_server_new(&g_srv, &cfg) < 0) {
        atomic_store(&g_ready, -1);
        return NULL;
    }
    nf_listen_config_t l = {.host = "127.0.0.1"};
    nf_listener_t *lis;
    if (nf_http_listen(g_loop, g_srv, &l, &lis) < 0) {
        atomic_store(&g_ready, -1);
        return NULL;
    }
    nf_addr_t a;
    nf_listener_addr(lis, &a);
    g_port = nf_addr_port(&a);
    atomic_store(&g_ready, 1);
    nf_loop_run(g_loop, NF_RUN_DEFAULT);
    nf_listener_close(lis, NULL);
    nf_loop_shutdown(g_loop, 100, NULL, NULL);
    nf_loop_run(g_loop, NF_RUN_DEFAULT);
    nf_loop_free(g_loop);
    return NULL;
}

static int setup(void **st)
{
    (void)st;
    memset(g_kib, 'k', sizeof g_kib);
    if (getenv("NF_BACKEND") && strcmp(getenv("NF_BACKEND"), "uring") == 0 && !h_kernel_has_uring())
        h_skip("io_uring refused by the kernel");
    pthread_create(&g_thr, NULL, server_main, NULL);
    while (atomic_load(&g_ready) == 0)
        h_sleep_ms(1);
    return atomic_load(&g_ready) == 1 ? 0 : -1;
}

static int teardown(void **st)
{
    (void)st;
    nf_loop_stop_async(g_loop);
    pthread_join(g_thr, NULL);
    nf_http_server_free(g_srv);
    return 0;
}

/* ---- the client ---- */

static int dial(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(g_port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    while (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        if (errno == EISCONN)
            break;
        /* interrupted (io_uring's task work can signal this thread): the
         * connect goes on; wait for it */
        assert_true(errno == EINTR || errno == EALREADY);
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        poll(&p, 1, 1000);
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

static void send_all(int fd, const char *s, size_t n)
{
    while (n) {
        ssize_t k = send(fd, s, n, MSG_NOSIGNAL);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return;
        s += k;
        n -= (size_t)k;
    }
}

/* Reads until EOF (returns 1) or until `want` responses are complete
 * (returns 0), by counting bodies with Content-Length or chunked framing
 * well enough for these tests. */
static size_t read_until_close(int fd, char *out, size_t cap, int *closed)
{
    size_t n = 0;
    *closed = 0;
    for (;;) {
        ssize_t k = recv(fd, out + n, cap - 1 - n, 0);
        if (k < 0 && errno == EINTR)
            continue;
        if (k == 0) {
            *closed = 1;
            break;
        }
        if (k < 0)
            break;
        n += (size_t)k;
        if (n >= cap - 1)
            break;
    }
    out[n] = 0;
    return n;
}

/* Bytes read past the end of a response, kept for the next read on the
 * same socket. */
static char g_carry[1 << 16];
static size_t g_carry_len;
static int g_carry_fd = -1;

/* Reads exactly one response (head + Content-Length or chunked body). */
static size_t read_response(int fd, char *out, size_t cap, int is_head)
{
    size_t n = 0;
    if (g_carry_fd == fd && g_carry_len) {
        memcpy(out, g_carry, g_carry_len);
        n = g_carry_len;
    }
    g_carry_len = 0;
    g_carry_fd = fd;
    size_t resp = 0;
    for (;;) {
        out[n] = 0;
        char *e = strstr(out, "\r\n\r\n");
        if (e) {
            size_t hl = (size_t)(e + 4 - out);
            const char *cl = strcasestr(out, "\r\nContent-Length: ");
            if (is_head || strncmp(out, "HTTP/1.1 100", 12) == 0) {
                resp = hl;
                break;
            }
            if (cl && cl < e) {
                size_t want = hl + strtoul(cl + 18, NULL, 10);
                if (n >= want) {
                    resp = want;
                    break;
                }
            } else if (strcasestr(out, "Transfer-Encoding: chunked")) {
                char *z = strstr(e + 4, "0\r\n\r\n");
                if (z) {
                    resp = (size_t)(z + 5 - out);
                    break;
                }
            } else {
                resp = hl;
                break;
            }
        }
        ssize_t k = recv(fd, out + n, cap - 1 - n, 0);
        if (k < 0 && errno == EINTR)
            continue; /* io_uring's task work may interrupt this thread */
        if (k <= 0)
            return n;
        n += (size_t)k;
    }
    g_carry_len = n - resp;
    memcpy(g_carry, out + resp, g_carry_len);
    out[resp] = 0;
    return resp;
}

static const char *body_of(const char *resp)
{
    const char *e = strstr(resp, "\r\n\r\n");
    return e ? e + 4 : "";
}

static void test_keep_alive(void **st)
{
    (void)st;
    int fd = dial();
    char buf[4096];
    for (int i = 0; i < 3; i++) {
        send_all(fd, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 27);
        size_t n = read_response(fd, buf, sizeof buf, 0);
        buf[n] = 0;
        assert_true(strncmp(buf, "HTTP/1.1 200 OK\r\n", 17) == 0);
        assert_non_null(strstr(buf, "\r\nContent-Length: 13\r\n"));
        assert_non_null(strstr(buf, "\r\nDate: "));
        assert_non_null(strstr(buf, " GMT\r\n"));
        assert_non_null(strstr(buf, "\r\nServer: netframe-test\r\n"));
        assert_null(strstr(buf, "Connection:"));
        assert_string_equal(body_of(buf), "Hello, World!");
    }
    /* HEAD: the same headers, no body */
    send_all(fd, "HEAD / HTTP/1.1\r\nHost: x\r\n\r\n", 28);
    size_t n = read_response(fd, buf, sizeof buf, 1);
    buf[n] = 0;
    assert_non_null(strstr(buf, "\r\nContent-Length: 13\r\n"));
    /* routes, parameters, query, wildcard, 404, 405 */
    send_all(fd, "GET /rooms/42?a=b HTTP/1.1\r\nHost: x\r\n\r\n", 39);
    n = read_response(fd, buf, sizeof buf, 0);
    buf[n] = 0;
    assert_string_equal(body_of(buf), "room=42 q=a=b");
    send_all(fd, "GET /static/css/a.css HTTP/1.1\r\nHost: x\r\n\r\n", 43);
    n = read_response(fd, buf, sizeof buf, 0);
    buf[n] = 0;
    assert_string_equal(body_of(buf), "file=css/a.css");
    send_all(fd, "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n", 31);
    n = read_response(fd, buf, sizeof buf, 0);
    buf[n] = 0;
    assert_true(strncmp(buf, "HTTP/1.1 404 ", 13) == 0);
    send_all(fd, "DELETE /echo HTTP/1.1\r\nHost: x\r\n\r\n", 34);
    n = read_response(fd, buf, sizeof buf, 0);
    buf[n] = 0;
    assert_true(strncmp(buf, "HTTP/1.1 405 ", 13) == 0);
    assert_non_null(strstr(buf, "\r\nAllow: POST\r\n"));
    /* Connection: close: answered with close, then EOF */
    send_all(fd, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 46);
    int closed;
    read_until_close(fd, buf, sizeof buf, &closed);
    assert_true(closed);
    assert_non_null(strstr(buf, "\r\nConnection: close\r\n"));
    assert_string_equal(body_of(buf), "Hello, World!");
    close(fd);
}

static void test_metrics(void **st)
{
    (void)st;
    int fd = dial();
    char buf[16384];
    send_all(fd, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", 34);
    size_t n = read_response(fd, buf, sizeof buf, 0);
    buf[n] = 0;
    assert_true(strncmp(buf, "HTTP/1.1 200 OK", 15) == 0);
    assert_non_null(strstr(buf, "\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"));
    const char *b = body_of(buf);
    assert_non_null(strstr(b, "# TYPE netframe_http_requests_total counter\nnetframe_http_requests_total "));
    assert_non_null(strstr(b, "netframe_http_timeouts_total{phase=\"head\"} "));
    assert_non_null(strstr(b, "# TYPE netframe_loop_connections gauge\nnetframe_loop_connections "));
    /* this very connection is open on the loop */
    const char *c = strstr(b, "\nnetframe_http_connections ");
    assert_non_null(c);
    assert_true(strtoull(c + 27, NULL, 10) >= 1);
    close(fd);
}

static void test_http10(void **st)
{
    (void)st;
    char buf[4096];
    int closed;
    int fd = dial();
    send_all(fd, "GET / HTTP/1.0\r\n\r\n", 18);
    read_until_close(fd, buf, sizeof buf, &closed);
    assert_true(closed);
    assert_string_equal(body_of(buf), "Hello, World!");
    close(fd);
    fd = dial();
    for (int i = 0; i < 2; i++) {
        send_all(fd, "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", 42);
        size_t n = read_response(fd, buf, sizeof buf, 0);
        buf[n] = 0;
        assert_non_null(strstr(buf, "\r\nConnection: keep-alive\r\n"));
        assert_string_equal(body_of(buf), "Hello, World!");
    }
    /* a chunked response to 1.0: delimited by the close */
    send_all(fd, "GET /chunked HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", 49);
    read_until_close(fd, buf, sizeof buf, &closed);
    assert_true(closed);
    assert_null(strstr(buf, "chunked"));
    assert_string_equal(body_of(buf), "one,two,three");
    close(fd);
}

static void test_pipelining(void **st)
{
    (void)st;
    int fd = dial();
    const char *req = "GET /slow/150 HTTP/1.1\r\nHost: x\r\n\r\n"
                      "GET /rooms/1 HTTP/1.1\r\nHost: x\r\n\r\n"
                      "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
                      "GET /chunked HTTP/1.1\r\nHost: x\r\n\r\n"
                      "GET /slow/10 HTTP/1.1\r\nHost: x\r\n\r\n";
    send_all(fd, req, strlen(req));
    const char *want[] = {"slow", "room=1 q=", "abc", NULL, "slow"};
    char buf[4096];
    for (int i = 0; i < 5; i++) {
        size_t n = read_response(fd, buf, sizeof buf, 0);
        buf[n] = 0;
        if (strncmp(buf, "HTTP/1.1 200 OK", 15) != 0)
            fail_msg("response %d: [%s] errno %d", i, buf, errno);
        if (want[i])
            assert_string_equal(body_of(buf), want[i]);
        else
            assert_string_equal(body_of(buf), "4\r\none,\r\n4\r\ntwo,\r\n5\r\nthree\r\n0\r\n\r\n");
    }
    /* more requests than max_pipeline (16) in one write: all answered, in order */
    char big[64 * 64];
    size_t bl = 0;
    for (int i = 0; i < 40; i++)
        bl += (size_t)snprintf(big + bl, sizeof big - bl, "GET /rooms/%d HTTP/1.1\r\nHost: x\r\n\r\n", i);
    send_all(fd, big, bl);
    for (int i = 0; i < 40; i++) {
        size_t n = read_response(fd, buf, sizeof buf, 0);
        buf[n] = 0;
        char w[32];
        snprintf(w, sizeof w, "room=%d q=", i);
        if (strcmp(body_of(buf), w))
            fail_msg("pipelined %d: [%s] errno %d", i, buf, errno);
        assert_string_equal(body_of(buf), w);
    }
    close(fd);
}

static void test_bodies(void **st)
{
    (void)st;
    char buf[8192];
    int fd = dial();
    /* chunked upload with extensions and trailers */
    const char *req = "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                      "5;x=y\r\nhello\r\n1\r\n \r\n5\r\nworld\r\n0\r\nX-A: 1\r\nX-B: 2\r\n\r\n";
    send_all(fd, req, strlen(req));
    size_t n = read_response(fd, buf, sizeof buf, 0);
    buf[n] = 0;
    assert_non_null(strstr(buf, "\r\nX-Trailers: 2\r\n"));
    assert_string_equal(body_of(buf), "hello world");
    /* Expect: 100-continue */
    send_all(fd, "POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n", 73);
    n = read_response(fd, buf, sizeof buf, 0);
    buf[n] = 0;
    assert_string_equal(buf, "HTTP/1.1 100 Continue\r\n\r\n");
    send_all(fd, "ping", 4);
    n = read_response(fd, buf, sizeof buf, 0);
    buf[n] = 0;
    if (strcmp(body_of(buf), "ping"))
        fail_msg("got [%s]", buf);
    /* a streamed upload of 2 MiB, consumed with pauses */
    unsigned long long before = atomic_load(&g_stream_bytes);
    int pauses = atomic_load(&g_pauses);
    size_t total = 2u << 20;
    char head[128];
    int hl = snprintf(head, sizeof head, "POST /stream HTTP/1.1\r\nHost: x\r\nContent-Length: %zu\r\n\r\n", total);
    send_all(fd, head, (size_t)hl);
    char *blob = malloc(total);
    memset(blob, 'u', total);
    send_all(fd, blob, total);
    free(blob);
    n = read_response(fd, buf, sizeof buf, 0);
    buf[n] = 0;
    assert_string_equal(body_of(buf), "got 2097152");
    assert_int_equal(atomic_load(&g_stream_bytes) - before, total);
    assert_true(atomic_load(&g_pauses) - pauses >= 30);
    /* a streamed response with a length, paced by on_drain: 4 MiB */
    send_all(fd, "GET /big/4096 HTTP/1.1\r\nHost: x\r\n\r\n", 35);
    size_t got = 0;
    char *rb = malloc(5u << 20);
    for (;;) {
        ssize_t k = recv(fd, rb + got, (5u << 20) - got, 0);
        if (k < 0 && errno == EINTR)
            continue;
        assert_true(k > 0);
        got += (size_t)k;
        rb[got] = 0;
        char *e = strstr(rb, "\r\n\r\n");
        if (e && got - (size_t)(e + 4 - rb) >= (4u << 20))
            break;
    }
    assert_non_null(strstr(rb, "Content-Length: 4194304\r\n"));
    free(rb);
    /* still usable */
    send_all(fd, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 27);
    n = read_response(fd, buf, sizeof buf, 0);
    buf[n] = 0;
    assert_string_equal(body_of(buf), "Hello, World!");
    close(fd);
}

/* One bad request: the status line of the answer, and the close after it. */
static void bad(const char *req, size_t len, const char *status, int bytewise)
{
    int fd = dial();
    if (bytewise) {
        for (size_t i = 0; i < len; i++)
            send_all(fd, req + i, 1);
    } else {
        send_all(fd, req, len);
    }
    char buf[4096];
    int closed;
    read_until_close(fd, buf, sizeof buf, &closed);
    if (strncmp(buf, status, strlen(status)) != 0 || !closed)
        fail_msg("for %s: got %s (closed %d), want %s", req, buf, closed, status);
    assert_non_null(strstr(buf, "\r\nConnection: close\r\n"));
    close(fd);
}

static void test_framing(void **st)
{
    (void)st;
    const char *x400[] = {
        "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
        "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n",
        "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n",
        "POST /echo HTTP/1.1\nHost: x\r\n\r\n",
        "POST /echo HTTP/1.1\r\nHost: x\rContent-Length: 1\r\n\r\n",
        "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffff\r\n",
        "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n",
        "POST /echo HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "GET / HTTP/1.1\r\n\r\n",
    };
    /* whole, then one byte per send: the same answer */
    for (int bytewise = 0; bytewise < 2; bytewise++)
        for (size_t i = 0; i < sizeof x400 / sizeof x400[0]; i++)
            bad(x400[i], strlen(x400[i]), "HTTP/1.1 400 ", bytewise);
    /* the limits */
    bad("POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 66, "HTTP/1.1 501 ", 0);
    bad("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 70000\r\n\r\n", 55, "HTTP/1.1 413 ", 0);
    bad("GET / HTTP/2.0\r\nHost: x\r\n\r\n", 27, "HTTP/1.1 505 ", 0);
    char big[3000];
    memset(big, 'a', sizeof big);
    memcpy(big, "GET /", 5);
    memcpy(big + 2000, " HTTP/1.1\r\nHost: x\r\n\r\n", 22);
    bad(big, 2022, "HTTP/1.1 414 ", 0);
    memcpy(big, "GET / HTTP/1.1\r\nX: ", 19);
    memcpy(big + 2000, "\r\nHost: x\r\n\r\n", 13);
    bad(big, 2013, "HTTP/1.1 431 ", 0);
    /* an error behind a good request: the good answer first, in order */
    int fd = dial();
    const char *two = "GET /slow/50 HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\n\r\n";
    send_all(fd, two, strlen(two));
    char buf[4096];
    int closed;
    read_until_close(fd, buf, sizeof buf, &closed);
    assert_true(closed);
    assert_true(strncmp(buf, "HTTP/1.1 200 OK", 15) == 0);
    assert_non_null(strstr(buf, "slowHTTP/1.1 400 "));
    close(fd);
}

/* A good client is served while the bad ones wait for their timeouts. */
static void good_client(void)
{
    int fd = dial();
    char buf[4096];
    send_all(fd, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 27);
    size_t n = read_response(fd, buf, sizeof buf, 0);
    buf[n] = 0;
    assert_string_equal(body_of(buf), "Hello, World!");
    close(fd);
}

static void test_timeouts(void **st)
{
    (void)st;
    nf_http_server_stats_t s0, s1;
    nf_http_server_stats(g_srv, &s0);
    char buf[4096];
    int closed;
    /* slow-loris head: a byte every 100 ms never completes within 400 ms */
    int loris = dial();
    /* slow body */
    int slowb = dial();
    send_all(slowb, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nab", 55);
    /* idle keep-alive */
    int idle = dial();
    /* an upload that never ends (streamed route: only the body deadline stops it) */
    int up = dial();
    send_all(up, "POST /stream HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", 62);
    /* a client that never reads: 32 MiB it will not take */
    int deaf = dial();
    int small = 4096;
    setsockopt(deaf, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    send_all(deaf, "GET /big/32768 HTTP/1.1\r\nHost: x\r\n\r\n", 36);
    const char *head = "GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ";
    uint64_t t0 = h_now_ms();
    size_t i = 0;
    while (h_now_ms() - t0 < 1500) {
        if (i < strlen(head))
            send_all(loris, head + i++, 1);
        send_all(up, "1\r\nu\r\n", 6);
        good_client();
        h_sleep_ms(50);
    }
    read_until_close(loris, buf, sizeof buf, &closed);
    assert_true(closed);
    assert_true(strncmp(buf, "HTTP/1.1 408 ", 13) == 0);
    read_until_close(slowb, buf, sizeof buf, &closed);
    assert_true(closed);
    assert_true(strncmp(buf, "HTTP/1.1 408 ", 13) == 0);
    read_until_close(idle, buf, sizeof buf, &closed);
    assert_true(closed);
    assert_int_equal(strlen(buf), 0);
    read_until_close(up, buf, sizeof buf, &closed);
    assert_true(closed);
    assert_true(strncmp(buf, "HTTP/1.1 408 ", 13) == 0);
    /* the deaf client: closed by the server (reset or EOF once we read) */
    uint64_t t1 = h_now_ms();
    for (;;) {
        nf_http_server_stats(g_srv, &s1);
        if (s1.timeouts_write > s0.timeouts_write || h_now_ms() - t1 > 5000)
            break;
        h_sleep_ms(20);
    }
    nf_http_server_stats(g_srv, &s1);
    fprintf(stderr, "timeouts: head %llu body %llu idle %llu write %llu\n",
            (unsigned long long)(s1.timeouts_head - s0.timeouts_head),
            (unsigned long long)(s1.timeouts_body - s0.timeouts_body),
            (unsigned long long)(s1.timeouts_idle - s0.timeouts_idle),
            (unsigned long long)(s1.timeouts_write - s0.timeouts_write));
    assert_int_equal(s1.timeouts_head - s0.timeouts_head, 1);
    assert_int_equal(s1.timeouts_body - s0.timeouts_body, 2);
    assert_true(s1.timeouts_idle - s0.timeouts_idle >= 1);
    assert_int_equal(s1.timeouts_write - s0.timeouts_write, 1);
    close(loris);
    close(slowb);
    close(idle);
    close(up);
    close(deaf);
    good_client();
}

static void test_upgrade(void **st)
{
    (void)st;
    nf_http_server_stats_t s0, s1;
    nf_http_server_stats(g_srv, &s0);
    int fd = dial();
    char buf[4096];
    /* a request first, then the upgrade with protocol bytes right behind it */
    const char *req = "GET / HTTP/1.1\r\nHost: x\r\n\r\n"
                      "GET /up HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\nhello";
    send_all(fd, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 27);
    size_t n = read_response(fd, buf, sizeof buf, 0);
    buf[n] = 0;
    assert_string_equal(body_of(buf), "Hello, World!");
    send_all(fd, req + 27, strlen(req + 27));
    n = read_response(fd, buf, sizeof buf, 1);
    buf[n] = 0;
    assert_true(strncmp(buf, "HTTP/1.1 101 ", 13) == 0);
    n = g_carry_len; /* bytes read behind the 101 */
    memcpy(buf, g_carry, n);
    g_carry_len = 0;
    while (n < 5) {
        ssize_t k = recv(fd, buf + n, sizeof buf - n, 0);
        if (k < 0 && errno == EINTR)
            continue;
        assert_true(k > 0);
        n += (size_t)k;
    }
    assert_memory_equal(buf, "hello", 5);
    send_all(fd, "abc", 3);
    n = 0;
    while (n < 3) {
        ssize_t k = recv(fd, buf + n, sizeof buf - n, 0);
        if (k < 0 && errno == EINTR)
            continue;
        assert_true(k > 0);
        n += (size_t)k;
    }
    assert_memory_equal(buf, "abc", 3);
    close(fd);
    /* not an upgrade: the route has no handler: 426; a refused upgrade: 400 */
    fd = dial();
    send_all(fd, "GET /up HTTP/1.1\r\nHost: x\r\n\r\n", 29);
    n = read_response(fd, buf, sizeof buf, 0);
    buf[n] = 0;
    assert_true(strncmp(buf, "HTTP/1.1 426 ", 13) == 0);
    close(fd);
    bad("GET /up HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: other\r\n\r\n", 66, "HTTP/1.1 400 ", 0);
    nf_http_server_stats(g_srv, &s1);
    assert_int_equal(s1.upgrades - s0.upgrades, 2);
}

/* The peer goes away while handlers still hold its requests: an async
 * handler finishes later (NF_ECLOSED, freed), a streamed body's on_abort
 * runs; ASan checks that nothing leaks or is used after free. */
static void test_abandoned(void **st)
{
    (void)st;
    nf_http_server_stats_t s0, s1;
    nf_http_server_stats(g_srv, &s0);
    int a = dial();
    send_all(a, "GET /slow/200 HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n", 62);
    int b = dial();
    send_all(b, "POST /stream HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\nabc", 61);
    h_sleep_ms(50);
    close(a);
    close(b);
    h_sleep_ms(400);
    good_client();
    uint64_t t0 = h_now_ms();
    do {
        h_sleep_ms(10);
        nf_http_server_stats(g_srv, &s1);
    } while (s1.conns_open && h_now_ms() - t0 < 3000);
    assert_int_equal(s1.conns_open, 0);
    assert_true(s1.requests - s0.requests >= 4);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keep_alive), cmocka_unit_test(test_http10),    cmocka_unit_test(test_pipelining),
        cmocka_unit_test(test_bodies),     cmocka_unit_test(test_framing),   cmocka_unit_test(test_timeouts),
        cmocka_unit_test(test_upgrade),    cmocka_unit_test(test_abandoned), cmocka_unit_test(test_metrics),
    };
    return h_group_result(cmocka_run_group_tests(tests, setup, teardown));
}
