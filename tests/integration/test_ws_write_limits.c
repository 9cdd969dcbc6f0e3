/* Integration: the write-queue bound under the WebSocket filter (issue 13).
 *
 *  - echo: a peer completes the handshake, then pushes frames and never
 *    reads. The server stops reading once its transport queue is over the
 *    high-water mark (the peer's sends block for good); when the peer reads,
 *    every message comes back, in order.
 *  - broadcast: the server sends to a peer that never reads; past the
 *    ceiling nf_ws_send fails with NF_EWQFULL, on_close gets 1006 and
 *    nf_ws_conn_error says NF_EWQFULL. */
#include "helpers.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <netframe/ws.h>

#define HIGH    (64 * 1024)
#define MSG     4000
#define NMSG    2000
#define CEILING (1024 * 1024)

static struct {
    nf_ws_conn_t *ws;
    int opened, closed, messages;
    unsigned close_code;
    int error;
    int send_err;
    size_t max_queued;
    size_t max_queued_at_msg;
    int broadcast;
    uint64_t sent;
    nf_timer_t timer;
} g;

static void tick(nf_timer_t *t)
{
    static char buf[65536];
    for (int i = 0; i < 4 && g.ws; i++) {
        int rc = nf_ws_send(g.ws, NF_WS_OP_BINARY, buf, sizeof buf);
        if (rc < 0) {
            if (!g.send_err)
                g.send_err = rc;
            nf_timer_stop(t);
            return;
        }
        g.sent += sizeof buf;
        size_t q = nf_conn_queued(nf_ws_conn_tcp(g.ws));
        if (q > g.max_queued)
            g.max_queued = q;
    }
}

static void on_open(nf_ws_conn_t *ws)
{
    g.opened++;
    g.ws = ws;
    int sz = 8192;
    setsockopt(nf_conn_fd(nf_ws_conn_tcp(ws)), SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
    if (g.broadcast) {
        nf_timer_init(nf_conn_loop(nf_ws_conn_tcp(ws)), &g.timer);
        nf_timer_start(&g.timer, tick, 1, 1);
    }
}

static void on_message(nf_ws_conn_t *ws, unsigned opcode, const char *data, size_t len)
{
    g.messages++;
    nf_conn_t *c = nf_ws_conn_tcp(ws);
    if (nf_conn_queued(c) > g.max_queued_at_msg)
        g.max_queued_at_msg = nf_conn_queued(c);
    int rc = nf_ws_send(ws, opcode, data, len);
    if (rc < 0 && !g.send_err)
        g.send_err = rc;
    if (nf_conn_queued(c) > g.max_queued)
        g.max_queued = nf_conn_queued(c);
}

static void on_close(nf_ws_conn_t *ws, unsigned code, const char *reason, size_t rlen)
{
    (void)reason, (void)rlen;
    g.closed++;
    g.close_code = code;
    g.error = nf_ws_conn_error(ws);
    if (g.broadcast)
        nf_timer_stop(&g.timer);
    g.ws = NULL;
}

static const nf_ws_handler_t handler = {.on_open = on_open, .on_message = on_message, .on_close = on_close};
static const nf_ws_route_t routes[] = {{.path = "*", .handler = &handler}};

static nf_ws_server_t *start(nf_loop_t *loop, size_t high, size_t max, uint16_t *port)
{
    nf_ws_server_config_t cfg = {0};
    cfg.listen.write_high_water = high;
    cfg.listen.write_low_water = high ? high / 4 : 0;
    cfg.listen.write_max = max;
    cfg.routes = routes;
    cfg.nroutes = 1;
    nf_ws_server_t *s;
    *port = h_ws_listen(loop, &cfg, &s);
    return s;
}

static int peer(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    int sz = 8192;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(0x7f000001)};
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    static const char req[] = "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                              "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
    assert_int_equal(send(fd, req, sizeof req - 1, 0), (ssize_t)(sizeof req - 1));
    return fd;
}

/* Reads the 101 answer's head (the loop must run meanwhile). */
static void read_101(nf_loop_t *loop, int fd)
{
    char head[1024];
    size_t n = 0;
    h_set_nonblock(fd, 1);
    uint64_t end = h_now_ms() + 3000;
    while (h_now_ms() < end) {
        h_run_for(loop, 5);
        ssize_t r = recv(fd, head + n, 1, 0); /* byte by byte: stop at the head's end */
        while (r == 1) {
            n++;
            if (n >= 4 && memcmp(head + n - 4, "\r\n\r\n", 4) == 0) {
                assert_memory_equal(head, "HTTP/1.1 101", 12);
                return;
            }
            assert_true(n < sizeof head);
            r = recv(fd, head + n, 1, 0);
        }
    }
    fail_msg("no 101 answer");
}

/* One masked binary frame (zero key) of MSG bytes: message i's pattern. */
static size_t frame(unsigned char *out, unsigned i)
{
    out[0] = 0x82;
    out[1] = 0x80 | 126;
    out[2] = MSG >> 8;
    out[3] = MSG & 0xff;
    memset(out + 4, 0, 4);
    h_pattern_fill(out + 8, MSG, (uint64_t)i * MSG, 99u);
    return 8 + MSG;
}

/* The peer's messages 0..NMSG-1, sent as far as the kernel takes them. */
typedef struct sender {
    unsigned char fr[8 + MSG]; /* the frame being sent */
    size_t off, len;           /* bytes of it sent, and its length */
    unsigned sent;             /* whole messages sent */
} sender_t;

/* Sends until the kernel takes no more (or every message went). */
static void send_frames(int fd, sender_t *o)
{
    while (o->sent < NMSG) {
        ssize_t r = send(fd, o->fr + o->off, o->len - o->off, MSG_NOSIGNAL);
        if (r <= 0)
            break;
        o->off += (size_t)r;
        if (o->off == o->len) {
            o->sent++;
            o->off = 0;
            o->len = frame(o->fr, o->sent);
        }
    }
}

static void test_ws_echo_paused(void **state)
{
    (void)state;
    memset(&g, 0, sizeof g);
    nf_loop_t *loop = h_loop_new();
    uint16_t port;
    nf_ws_server_t *s = start(loop, HIGH, 0, &port);
    int fd = peer(port);
    read_101(loop, fd);
    H_RUN_UNTIL(loop, g.opened == 1, 3000);

    /* push without reading until the server stops reading */
    sender_t out = {0};
    out.len = frame(out.fr, 0);
    int last = -1;
    uint64_t still = h_now_ms(), end = h_now_ms() + 8000;
    while (h_now_ms() < end) {
        send_frames(fd, &out);
        h_run_for(loop, 5);
        if (g.messages != last) {
            last = g.messages;
            still = h_now_ms();
        } else if (h_now_ms() - still > 150) {
            break;
        }
    }
    /* it went over the high-water mark and has not drained to the low one */
    if (out.sent >= NMSG || g.max_queued <= HIGH || nf_conn_queued(nf_ws_conn_tcp(g.ws)) <= HIGH / 4)
        fail_msg("not paused: sent %u messages, server got %d, queued %zu", out.sent, g.messages,
                 nf_conn_queued(nf_ws_conn_tcp(g.ws)));
    assert_true(g.max_queued <= HIGH + 65536);

    /* now read everything back, sending the rest */
    unsigned char in[1 << 16];
    size_t have = 0;
    unsigned got = 0;
    end = h_now_ms() + 20000;
    while (got < NMSG && h_now_ms() < end) {
        send_frames(fd, &out);
        ssize_t r = recv(fd, in + have, sizeof in - have, 0);
        if (r > 0)
            have += (size_t)r;
        while (have >= 4 + MSG) { /* server frames: 0x82 126 len16, unmasked */
            assert_int_equal(in[0], 0x82);
            assert_int_equal(in[1], 126);
            assert_int_equal((in[2] << 8) | in[3], MSG);
            if (h_pattern_check(in + 4, MSG, (uint64_t)got * MSG, 99u) != SIZE_MAX)
                fail_msg("message %u differs", got);
            got++;
            memmove(in, in + 4 + MSG, have - (4 + MSG));
            have -= 4 + MSG;
        }
        h_run_for(loop, 2);
    }
    assert_int_equal(got, NMSG);
    H_ASSERT_ERR(g.send_err, 0);
    assert_true(g.max_queued_at_msg <= HIGH + 65536); /* a read may carry several messages */
    close(fd);
    H_RUN_UNTIL(loop, g.closed == 1, 5000);
    nf_ws_server_close(s, 0, NULL);
    h_loop_finish(loop, 5000);
}

static void test_ws_broadcast_ceiling(void **state)
{
    (void)state;
    memset(&g, 0, sizeof g);
    g.broadcast = 1;
    nf_loop_t *loop = h_loop_new();
    uint16_t port;
    nf_ws_server_t *s = start(loop, 0, CEILING, &port);
    int fd = peer(port);
    read_101(loop, fd);
    H_RUN_UNTIL(loop, g.closed == 1, 10000);
    H_ASSERT_ERR(g.send_err, NF_EWQFULL);
    H_ASSERT_ERR(g.error, NF_EWQFULL);
    assert_int_equal(g.close_code, 1006);
    assert_true(g.max_queued <= CEILING);
    close(fd);
    nf_ws_server_close(s, 0, NULL);
    h_loop_finish(loop, 5000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ws_echo_paused),
        cmocka_unit_test(test_ws_broadcast_ceiling),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
