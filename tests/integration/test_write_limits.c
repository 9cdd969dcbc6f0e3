/* Integration: the default bound on a connection's write queue (issue 13).
 *
 *  - backpressure: an echo server whose peer sends and never reads stops
 *    reading once its queue is over the high-water mark (the peer's sends
 *    block for good), and reads again by itself once the peer has read the
 *    queue down to the low-water mark; every byte comes back, in order.
 *    No on_read ever starts with the queue over the high-water mark.
 *  - the ceiling: a writer whose peer never reads gets NF_EWQFULL and the
 *    connection closes with that reason.
 *  - 0 / NF_WRITE_LIMIT_OFF turn each level off; limits per listener, per
 *    connector and per connection (nf_conn_set_write_limits).
 *  - the program's read control and the automatic pause do not fight:
 *    read_stop during a pause keeps reading stopped after the drain,
 *    read_start / read_once during a pause do not resume before it.
 *  - a flow-control filter below keeps deciding as before: its policy holds
 *    and drops, the transport's limits never fire under it. */
#include "helpers.h"

#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define SEED  1313u
#define HIGH  (64 * 1024)
#define LOW   (16 * 1024)
#define TOTAL (4u * 1024 * 1024)

static struct {
    nf_conn_t *c;
    int opened, closed, reason;
    int reads;
    size_t max_queued_at_read; /* nf_conn_queued at the start of on_read */
    size_t max_queued;         /* after a write */
    uint64_t echoed;
    int write_err; /* first non-zero write result */
    /* broadcaster */
    int broadcast; /* on_open writes `chunk` bytes per timer tick */
    size_t chunk;
    uint64_t written;
    int writes_held, writes_dropped;
    nf_timer_t timer;
    /* limits set in on_open with the setter (set_limits != 0) */
    int set_limits;
    size_t sl_high, sl_low, sl_max;
    int set_rc;
} g;

static void reset_g(void)
{
    memset(&g, 0, sizeof g);
    g.reason = 12345;
}

static void bcast_tick(nf_timer_t *t)
{
    nf_conn_t *c = t->data;
    char *p = malloc(g.chunk);
    assert_non_null(p);
    for (int i = 0; i < 8 && !nf_conn_is_closing(c); i++) {
        h_pattern_fill(p, g.chunk, g.written, SEED);
        int rc = nf_conn_write(c, p, g.chunk);
        if (rc < 0) {
            if (!g.write_err)
                g.write_err = rc;
            break;
        }
        if (rc == NF_WRITE_HELD)
            g.writes_held++;
        if (rc == NF_WRITE_DROPPED)
            g.writes_dropped++;
        g.written += g.chunk;
        if (nf_conn_queued(c) > g.max_queued)
            g.max_queued = nf_conn_queued(c);
    }
    free(p);
    if (nf_conn_is_closing(c))
        nf_timer_stop(t);
}

static void on_open(nf_conn_t *c)
{
    g.opened++;
    g.c = c;
    /* small kernel buffers: the user-space queue is what grows */
    int sz = 8192;
    setsockopt(nf_conn_fd(c), SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
    if (g.set_limits)
        g.set_rc = nf_conn_set_write_limits(c, g.sl_high, g.sl_low, g.sl_max);
    if (g.broadcast) {
        nf_timer_init(nf_conn_loop(c), &g.timer);
        g.timer.data = c;
        nf_timer_start(&g.timer, bcast_tick, 1, 1);
    }
}

static void on_read(nf_conn_t *c, const char *data, size_t len)
{
    g.reads++;
    if (nf_conn_queued(c) > g.max_queued_at_read)
        g.max_queued_at_read = nf_conn_queued(c);
    int rc = nf_conn_write(c, data, len);
    if (rc < 0 && !g.write_err)
        g.write_err = rc;
    g.echoed += len;
    if (nf_conn_queued(c) > g.max_queued)
        g.max_queued = nf_conn_queued(c);
}

static void on_close(nf_conn_t *c, int reason)
{
    (void)c;
    g.closed++;
    g.reason = reason;
    if (g.broadcast)
        nf_timer_stop(&g.timer);
    g.c = NULL;
}

static const nf_conn_handler_t handler = {.on_open = on_open, .on_read = on_read, .on_close = on_close};

/* ---- the peer: a plain non-blocking socket with a small receive buffer ---- */

typedef struct peer {
    int fd;
    uint64_t sent, got;
    int bad;
    int eof, err;
} peer_t;

static void peer_connect(peer_t *p, uint16_t port)
{
    memset(p, 0, sizeof *p);
    p->fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(p->fd >= 0);
    int sz = 8192;
    setsockopt(p->fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
    setsockopt(p->fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(0x7f000001)};
    assert_int_equal(connect(p->fd, (struct sockaddr *)&a, sizeof a), 0);
    h_set_nonblock(p->fd, 1);
}

/* Sends pattern bytes up to `upto`; returns whether the last send blocked. */
static int peer_send(peer_t *p, uint64_t upto)
{
    char buf[16384];
    while (p->sent < upto) {
        size_t n = upto - p->sent < sizeof buf ? (size_t)(upto - p->sent) : sizeof buf;
        h_pattern_fill(buf, n, p->sent, SEED);
        ssize_t r = send(p->fd, buf, n, MSG_NOSIGNAL);
        if (r < 0)
            return errno == EAGAIN || errno == EWOULDBLOCK;
        p->sent += (uint64_t)r;
    }
    return 0;
}

static void peer_recv(peer_t *p)
{
    char buf[65536];
    for (;;) {
        ssize_t r = recv(p->fd, buf, sizeof buf, 0);
        if (r == 0) {
            p->eof = 1;
            return;
        }
        if (r < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                p->err = errno;
            return;
        }
        if (!p->bad && h_pattern_check(buf, (size_t)r, p->got, SEED) != SIZE_MAX)
            p->bad = 1;
        p->got += (uint64_t)r;
    }
}

/* Runs the loop for ms, the peer sending up to `upto` (0: not sending) and
 * reading (if `reading`) between steps. */
static void pump(nf_loop_t *loop, peer_t *p, unsigned ms, uint64_t upto, int reading)
{
    uint64_t end = h_now_ms() + ms;
    while (h_now_ms() < end) {
        if (upto)
            peer_send(p, upto);
        if (reading)
            peer_recv(p);
        h_run_for(loop, 2);
    }
}

/* Pushes without reading until the server stops reading: the peer's sends
 * block and on_read stops being called for 150 ms. */
static void flood_until_paused(nf_loop_t *loop, peer_t *p)
{
    uint64_t deadline = h_now_ms() + 8000;
    int last = -1;
    uint64_t still_since = h_now_ms();
    while (h_now_ms() < deadline) {
        peer_send(p, TOTAL);
        h_run_for(loop, 5);
        if (g.reads != last) {
            last = g.reads;
            still_since = h_now_ms();
        } else if (h_now_ms() - still_since > 150) {
            return;
        }
    }
    fail_msg("the server kept reading: reads %d, queued %zu, peer sent %llu", g.reads, g.c ? nf_conn_queued(g.c) : 0,
             (unsigned long long)p->sent);
}

/* A new loop, a listener with cfg and the test's handler, and the peer p
 * connected to it (not yet accepted). */
static nf_loop_t *server(nf_listen_config_t *cfg, nf_listener_t **l, peer_t *p)
{
    nf_loop_t *loop = h_loop_new();
    cfg->handler = &handler;
    peer_connect(p, h_listen_cfg(loop, cfg, l));
    return loop;
}

static void finish(nf_loop_t *loop, nf_listener_t *l, peer_t *p)
{
    if (p->fd >= 0)
        close(p->fd);
    H_RUN_UNTIL(loop, g.closed == 1, 5000);
    h_listener_finish(loop, l, 5000);
}

/* ---- backpressure --------------------------------------------------------- */

static void check_all_back(nf_loop_t *loop, peer_t *p)
{
    /* fails on a stall (5 s without a byte back), not on a slow machine */
    uint64_t last = h_now_ms(), got = p->got;
    while (p->got < TOTAL && h_now_ms() - last < 5000 && !p->eof && !p->err) {
        pump(loop, p, 5, TOTAL, 1);
        if (p->got != got) {
            got = p->got;
            last = h_now_ms();
        }
    }
    if (p->got != TOTAL)
        fail_msg("echoed %llu of %u bytes (sent %llu, eof %d, err %d)", (unsigned long long)p->got, TOTAL,
                 (unsigned long long)p->sent, p->eof, p->err);
    assert_int_equal(p->bad, 0);
    H_ASSERT_ERR(g.write_err, 0);
}

static void test_pause_and_resume(void **state)
{
    (void)state;
    reset_g();
    nf_listen_config_t cfg = {.write_high_water = HIGH, .write_low_water = LOW};
    nf_listener_t *l;
    peer_t p;
    nf_loop_t *loop = server(&cfg, &l, &p);
    H_RUN_UNTIL(loop, g.opened == 1, 3000);

    flood_until_paused(loop, &p);
    /* paused over the high-water mark, by at most one read's echo */
    assert_true(g.max_queued > HIGH);       /* it went over the high-water mark */
    assert_true(nf_conn_queued(g.c) > LOW); /* and has not drained to the low one */
    assert_true(g.max_queued <= HIGH + 65536);
    assert_true(p.sent < TOTAL);
    int reads = g.reads;
    pump(loop, &p, 200, TOTAL, 0);
    assert_int_equal(g.reads, reads); /* still paused */

    /* the peer reads: the queue drains, the server reads again by itself */
    check_all_back(loop, &p);
    assert_true(g.reads > reads);
    assert_true(g.max_queued_at_read <= HIGH);
    assert_int_equal(g.echoed, TOTAL);
    assert_int_equal(g.closed, 0);
    finish(loop, l, &p);
    H_ASSERT_ERR(g.reason, NF_EOF);
}

/* The defaults alone bound an echo server: no config, no code. */
static void test_default_bound(void **state)
{
    (void)state;
    reset_g();
    nf_listen_config_t cfg = {0};
    nf_listener_t *l;
    peer_t p;
    nf_loop_t *loop = server(&cfg, &l, &p);
    H_RUN_UNTIL(loop, g.opened == 1, 3000);
    flood_until_paused(loop, &p);
    assert_true(g.max_queued > NF_WRITE_HIGH_DEFAULT);
    assert_true(nf_conn_queued(g.c) > NF_WRITE_LOW_DEFAULT);
    assert_true(g.max_queued <= NF_WRITE_HIGH_DEFAULT + 65536);
    check_all_back(loop, &p);
    assert_true(g.max_queued_at_read <= NF_WRITE_HIGH_DEFAULT);
    finish(loop, l, &p);
}

/* High water off (listener config): the server reads on, the queue grows. */
static void test_pause_off(void **state)
{
    (void)state;
    reset_g();
    nf_listen_config_t cfg = {.write_high_water = NF_WRITE_LIMIT_OFF};
    nf_listener_t *l;
    peer_t p;
    nf_loop_t *loop = server(&cfg, &l, &p);
    H_RUN_UNTIL(loop, g.opened == 1, 3000);
    uint64_t deadline = h_now_ms() + 10000;
    while (g.echoed < TOTAL && h_now_ms() < deadline)
        pump(loop, &p, 5, TOTAL, 0);
    assert_int_equal(g.echoed, TOTAL); /* everything read while the peer read nothing */
    assert_true(nf_conn_queued(g.c) > 2 * NF_WRITE_HIGH_DEFAULT);
    check_all_back(loop, &p);
    finish(loop, l, &p);
}

/* ---- the ceiling ------------------------------------------------------------- */

static void ceiling_run(nf_listen_config_t *cfg, size_t expect_max)
{
    reset_g();
    g.broadcast = 1;
    g.chunk = 16384;
    nf_listener_t *l;
    peer_t p;
    nf_loop_t *loop = server(cfg, &l, &p);
    H_RUN_UNTIL(loop, g.closed == 1, 10000);
    H_ASSERT_ERR(g.write_err, NF_EWQFULL);
    H_ASSERT_ERR(g.reason, NF_EWQFULL);
    assert_string_equal(nf_strerror(NF_EWQFULL), "write queue over its limit");
    assert_string_equal(nf_err_name(NF_EWQFULL), "NF_EWQFULL");
    assert_true(g.max_queued <= expect_max);
    assert_true(g.max_queued + g.chunk > expect_max); /* it was the limit that stopped it */
    /* the peer sees the connection end */
    uint64_t deadline = h_now_ms() + 5000;
    while (!p.eof && !p.err && h_now_ms() < deadline)
        pump(loop, &p, 5, 0, 1);
    assert_true(p.eof || p.err);
    finish(loop, l, &p);
}

static void test_ceiling_listener(void **state)
{
    (void)state;
    nf_listen_config_t cfg = {.write_max = 1024 * 1024};
    ceiling_run(&cfg, 1024 * 1024);
}

static void test_ceiling_default(void **state)
{
    (void)state;
    nf_listen_config_t cfg = {0};
    ceiling_run(&cfg, NF_WRITE_MAX_DEFAULT);
}

/* Ceiling 0 with the setter: a broadcaster goes past the default ceiling. */
static void test_ceiling_off_setter(void **state)
{
    (void)state;
    reset_g();
    g.broadcast = 1;
    g.chunk = 65536;
    g.set_limits = 1; /* everything off */
    nf_listen_config_t cfg = {0};
    nf_listener_t *l;
    peer_t p;
    nf_loop_t *loop = server(&cfg, &l, &p);
    H_RUN_UNTIL(loop, g.written > NF_WRITE_MAX_DEFAULT + 4 * 1024 * 1024, 20000);
    assert_int_equal(g.set_rc, 0);
    assert_int_equal(g.closed, 0);
    H_ASSERT_ERR(g.write_err, 0);
    nf_conn_close(g.c);
    finish(loop, l, &p);
    H_ASSERT_ERR(g.reason, NF_CLOSE_LOCAL);
}

/* The setter: its own pause levels, and -EINVAL for low >= high. */
static void test_setter(void **state)
{
    (void)state;
    reset_g();
    g.set_limits = 1;
    g.sl_high = 32 * 1024;
    g.sl_low = 0; /* resume only once empty */
    g.sl_max = 0;
    nf_listen_config_t cfg = {0};
    nf_listener_t *l;
    peer_t p;
    nf_loop_t *loop = server(&cfg, &l, &p);
    H_RUN_UNTIL(loop, g.opened == 1, 3000);
    assert_int_equal(g.set_rc, 0);
    H_ASSERT_ERR(nf_conn_set_write_limits(g.c, 1000, 1000, 0), -EINVAL);
    H_ASSERT_ERR(nf_conn_set_write_limits(g.c, 1000, 2000, 0), -EINVAL);
    assert_int_equal(nf_conn_set_write_limits(g.c, 32 * 1024, 0, 0), 0);
    flood_until_paused(loop, &p);
    assert_true(g.max_queued <= 32 * 1024 + 65536);
    check_all_back(loop, &p);
    assert_true(g.max_queued_at_read <= 32 * 1024);
    finish(loop, l, &p);
}

static void rc_state(nf_reconnect_t *rc, nf_reconnect_state_t st, int err, uint64_t delay)
{
    (void)rc, (void)st, (void)err, (void)delay;
}
static void rc_read(nf_reconnect_t *rc, const char *d, size_t n) { (void)rc, (void)d, (void)n; }

/* Bad configs are refused before anything is made. */
static void test_bad_config(void **state)
{
    (void)state;
    nf_loop_t *loop = h_loop_new();
    nf_listener_t *l;
    nf_listen_config_t cfg = {.handler = &handler, .write_high_water = 1000, .write_low_water = 1000};
    H_ASSERT_ERR(nf_listen(loop, &cfg, &l), -EINVAL);
    nf_conn_t *c;
    nf_connect_config_t cc = {
        .host = "127.0.0.1", .port = 1, .handler = &handler, .write_high_water = 10, .write_low_water = 20};
    H_ASSERT_ERR(nf_connect(loop, &cc, &c), -EINVAL);
    nf_reconnect_config_t rcc = {.connect = cc, .on_state = rc_state, .on_read = rc_read};
    nf_reconnect_t *rc;
    H_ASSERT_ERR(nf_reconnect_start(loop, &rcc, &rc), -EINVAL);
    nf_server_config_t sc;
    nf_server_config_init(&sc);
    sc.listen.handler = &handler;
    sc.listen.write_high_water = 4096;
    sc.listen.write_low_water = 8192;
    nf_server_t *srv;
    H_ASSERT_ERR(nf_server_start(&srv, &sc), -EINVAL);
    h_loop_finish(loop, 2000);
}

/* ---- the program's read control and the automatic pause ----------------------- */

static nf_loop_t *paused_server(nf_listener_t **l, peer_t *p)
{
    reset_g();
    nf_listen_config_t cfg = {.write_high_water = HIGH, .write_low_water = LOW};
    nf_loop_t *loop = server(&cfg, l, p);
    H_RUN_UNTIL(loop, g.opened == 1, 3000);
    flood_until_paused(loop, p);
    return loop;
}

/* Drains the server's queue (the peer reads) without sending. */
static void drain(nf_loop_t *loop, peer_t *p)
{
    uint64_t deadline = h_now_ms() + 5000;
    while (nf_conn_queued(g.c) > 0 && h_now_ms() < deadline)
        pump(loop, p, 5, 0, 1);
    assert_int_equal(nf_conn_queued(g.c), 0);
}

static void test_read_stop_during_pause(void **state)
{
    (void)state;
    nf_listener_t *l;
    peer_t p;
    nf_loop_t *loop = paused_server(&l, &p);
    assert_int_equal(nf_conn_read_stop(g.c), 0);
    int reads = g.reads;
    drain(loop, &p);
    pump(loop, &p, 200, 0, 1);
    assert_int_equal(g.reads, reads); /* the program's stop holds after the drain */
    assert_int_equal(nf_conn_read_start(g.c), 0);
    check_all_back(loop, &p);
    assert_true(g.max_queued_at_read <= HIGH);
    finish(loop, l, &p);
}

static void test_read_start_during_pause(void **state)
{
    (void)state;
    nf_listener_t *l;
    peer_t p;
    nf_loop_t *loop = paused_server(&l, &p);
    int reads = g.reads;
    assert_int_equal(nf_conn_read_start(g.c), 0); /* the program holds nothing */
    pump(loop, &p, 200, TOTAL, 0);
    assert_int_equal(g.reads, reads); /* the queue still holds reading */
    /* a stop and a start while paused change nothing either */
    assert_int_equal(nf_conn_read_stop(g.c), 0);
    assert_int_equal(nf_conn_read_start(g.c), 0);
    pump(loop, &p, 100, TOTAL, 0);
    assert_int_equal(g.reads, reads);
    check_all_back(loop, &p); /* the drain resumes it */
    assert_true(g.reads > reads);
    finish(loop, l, &p);
}

static void test_read_once_during_pause(void **state)
{
    (void)state;
    nf_listener_t *l;
    peer_t p;
    nf_loop_t *loop = paused_server(&l, &p);
    assert_int_equal(nf_conn_read_stop(g.c), 0);
    int reads = g.reads;
    assert_int_equal(nf_conn_read_once(g.c), 0);
    pump(loop, &p, 150, 0, 0);
    assert_int_equal(g.reads, reads); /* not before the drain */
    drain(loop, &p);
    pump(loop, &p, 200, 0, 1);
    assert_int_equal(g.reads, reads + 1); /* exactly one, then stopped again */
    assert_int_equal(nf_conn_read_start(g.c), 0);
    check_all_back(loop, &p);
    finish(loop, l, &p);
}

/* EOF while the queue holds reading: delivered after the drain, after every
 * byte (no on_eof: the connection closes with NF_EOF once all is echoed). */
static void test_eof_during_pause(void **state)
{
    (void)state;
    nf_listener_t *l;
    peer_t p;
    nf_loop_t *loop = paused_server(&l, &p);
    uint64_t sent = p.sent;
    shutdown(p.fd, SHUT_WR);
    pump(loop, &p, 100, 0, 0);
    assert_int_equal(g.closed, 0);
    uint64_t deadline = h_now_ms() + 10000;
    while (!p.eof && !p.err && h_now_ms() < deadline)
        pump(loop, &p, 5, 0, 1);
    assert_int_equal(p.got, sent);
    assert_int_equal(p.bad, 0);
    assert_int_equal(p.eof, 1);
    H_RUN_UNTIL(loop, g.closed == 1, 3000);
    H_ASSERT_ERR(g.reason, NF_EOF);
    finish(loop, l, &p);
}

/* ---- a flow-control filter below decides as before ---------------------------- */

static void test_flow_filter_unchanged(void **state)
{
    (void)state;
    reset_g();
    g.broadcast = 1;
    g.chunk = 16384;
    static const nf_flow_config_t fc = {.policy = NF_FLOW_DROP_OLDEST};
    nf_filter_spec_t filters[] = {{&nf_flow_filter, &fc}};
    nf_listen_config_t cfg = {.filters = filters, .nfilters = 1, .write_max = 2 * 1024 * 1024};
    nf_listener_t *l;
    peer_t p;
    nf_loop_t *loop = server(&cfg, &l, &p);
    /* far past the transport's ceiling: the flow filter holds and drops */
    H_RUN_UNTIL(loop, g.written > 16u * 1024 * 1024, 20000);
    assert_int_equal(g.closed, 0);
    H_ASSERT_ERR(g.write_err, 0);
    assert_true(g.writes_held > 0);
    nf_flow_stats_t st;
    assert_int_equal(nf_flow_stats(g.c, &st), 0);
    assert_true(st.writes_dropped > 0); /* drop-oldest did its work */
    assert_true(g.max_queued <= 256 * 1024 + g.chunk);
    nf_conn_close(g.c);
    finish(loop, l, &p);
}

/* ---- outbound connections ------------------------------------------------------ */

/* A connector has the ceiling by default but no pause; its config sets both. */
static struct {
    int opened, closed, reason, write_err;
    uint64_t written;
} k;

static void k_open(nf_conn_t *c)
{
    k.opened++;
    char buf[65536];
    memset(buf, 'k', sizeof buf);
    for (;;) {
        int rc = nf_conn_write(c, buf, sizeof buf);
        if (rc) {
            k.write_err = rc;
            return;
        }
        k.written += sizeof buf;
    }
}
static void k_close(nf_conn_t *c, int reason)
{
    (void)c;
    k.closed++;
    k.reason = reason;
}
static const nf_conn_handler_t k_handler = {.on_open = k_open, .on_read = h_ignore_read, .on_close = k_close};

static void test_connector_ceiling(void **state)
{
    (void)state;
    nf_loop_t *loop = h_loop_new();
    uint16_t lport;
    int lfd = h_tcp_listen(4, &lport);
    memset(&k, 0, sizeof k);
    nf_connect_config_t cc = {.host = "127.0.0.1", .port = lport, .handler = &k_handler, .write_max = 1 << 20};
    nf_conn_t *c;
    assert_int_equal(nf_connect(loop, &cc, &c), 0);
    H_RUN_UNTIL(loop, k.closed == 1, 5000);
    H_ASSERT_ERR(k.write_err, NF_EWQFULL);
    H_ASSERT_ERR(k.reason, NF_EWQFULL);
    assert_true(k.written <= 1 << 20);
    assert_true(k.written + 65536 > 1 << 20);
    close(lfd);
    h_loop_finish(loop, 3000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pause_and_resume),
        cmocka_unit_test(test_default_bound),
        cmocka_unit_test(test_pause_off),
        cmocka_unit_test(test_ceiling_listener),
        cmocka_unit_test(test_ceiling_default),
        cmocka_unit_test(test_ceiling_off_setter),
        cmocka_unit_test(test_setter),
        cmocka_unit_test(test_bad_config),
        cmocka_unit_test(test_read_stop_during_pause),
        cmocka_unit_test(test_read_start_during_pause),
        cmocka_unit_test(test_read_once_during_pause),
        cmocka_unit_test(test_eof_during_pause),
        cmocka_unit_test(test_flow_filter_unchanged),
        cmocka_unit_test(test_connector_ceiling),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
