/* Integration: the reconnecting connector (reconnect.h) against loopback
 * servers on the same loop.
 *
 *  - the server goes away (listener and its connections closed) and comes
 *    back on the same port: DOWN(NF_EOF), failed attempts, then UP again and
 *    data flows through the same handle;
 *  - backoff: the delays reported with BACKOFF grow by the multiplier and
 *    stop at the cap (no jitter); with full jitter each lies in [0, base];
 *    with decorrelated jitter in [initial, min(max, previous * multiplier)]
 *    (the reported values are checked, never the wall clock);
 *  - writes made while down are held and reach the server in order, before
 *    what the program writes on UP; counted;
 *  - refuse mode: -ENOTCONN while down, counted; normal writes once up;
 *  - the hold limits (bytes, writes): NF_WRITE_DROPPED past them, counted,
 *    and held writes dropped (counted) on stop;
 *  - stop during backoff (a long timer is cancelled: the loop empties),
 *    during a connect, and while up (graceful: what was written arrives);
 *  - filters are re-applied to each connection: a read-timeout filter
 *    closes each silent connection with -ETIMEDOUT, and the connector
 *    comes back each time. */
#include "helpers.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#define MAXEV 256

typedef struct ev {
    nf_reconnect_state_t state;
    int reason;
    uint64_t delay;
} ev_t;

static struct {
    ev_t ev[MAXEV];
    int nev;
    int ups, downs, backoffs, stopped, connecting;
    char got[4096];
    size_t got_len;
    int stop_after_backoffs; /* > 0: nf_reconnect_stop on that BACKOFF */
    const char *write_on_up; /* written from the UP callback */
    int stop_on_connecting;  /* nf_reconnect_stop from the CONNECTING callback */
} g;

static void on_state(nf_reconnect_t *rc, nf_reconnect_state_t s, int reason, uint64_t delay)
{
    if (g.nev < MAXEV)
        g.ev[g.nev++] = (ev_t){s, reason, delay};
    switch (s) {
    case NF_RC_CONNECTING:
        g.connecting++;
        if (g.stop_on_connecting)
            nf_reconnect_stop(rc);
        break;
    case NF_RC_UP:
        g.ups++;
        assert_non_null(nf_reconnect_conn(rc));
        if (g.write_on_up)
            nf_reconnect_write(rc, g.write_on_up, strlen(g.write_on_up));
        break;
    case NF_RC_DOWN: g.downs++; break;
    case NF_RC_BACKOFF:
        g.backoffs++;
        if (g.stop_after_backoffs && g.backoffs == g.stop_after_backoffs)
            nf_reconnect_stop(rc);
        break;
    case NF_RC_STOPPED: g.stopped++; break;
    }
}

static void on_read(nf_reconnect_t *rc, const char *data, size_t len)
{
    (void)rc;
    if (g.got_len + len <= sizeof g.got) {
        memcpy(g.got + g.got_len, data, len);
        g.got_len += len;
    }
}

static void reset(void)
{
    memset(&g, 0, sizeof g);
    h_echo_reset();
}

static nf_reconnect_config_t base_cfg(uint16_t port)
{
    nf_reconnect_config_t c;
    memset(&c, 0, sizeof c);
    c.connect.host = "127.0.0.1";
    c.connect.port = port;
    c.connect.timeout_ms = 2000;
    c.initial_ms = 10;
    c.max_ms = 40;
    c.jitter = NF_RC_JITTER_NONE;
    c.on_state = on_state;
    c.on_read = on_read;
    return c;
}

/* An echo listener on exactly `port` (SO_REUSEADDR: the port comes back). */
static nf_listener_t *listen_on(nf_loop_t *loop, uint16_t port)
{
    nf_listen_config_t lc = h_listen_config(&h_echo_handler, NULL);
    lc.port = port;
    nf_listener_t *l = NULL;
    int err = nf_listen(loop, &lc, &l);
    H_ASSERT_ERR(err, 0);
    return l;
}

/* Binds 127.0.0.1:port (0: any) without listening: connects there are
 * refused, and the kernel never picks a bound port as a connect's source
 * port, so no attempt can connect to itself (which a merely unused port
 * allows after enough attempts). SO_REUSEADDR: TIME_WAIT leftovers of a
 * server that was on the port do not stand in the way. */
static int block_port(uint16_t *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa = {
        .sin_family = AF_INET, .sin_port = htons(*port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0)
        fail_msg("bind 127.0.0.1:%u: %s", *port, strerror(errno));
    socklen_t len = sizeof sa;
    getsockname(fd, (struct sockaddr *)&sa, &len);
    *port = ntohs(sa.sin_port);
    return fd;
}

static int g_blocker = -1;

/* A refusing port for the whole test (closed by unblock()). */
static uint16_t refusing_port(void)
{
    uint16_t port = 0;
    g_blocker = block_port(&port);
    return port;
}

static void unblock(void)
{
    if (g_blocker >= 0)
        close(g_blocker);
    g_blocker = -1;
}

static int listener_gone;
static void on_listener_closed(nf_listener_t *l) { (void)l, listener_gone = 1; }

static void close_accepted(nf_conn_t *c, void *arg)
{
    if (nf_conn_listener(c) == arg)
        nf_conn_close(c);
}

/* The server goes away: its connections and its listener. */
static void server_down(nf_loop_t *loop, nf_listener_t *l)
{
    nf_conn_walk(loop, close_accepted, l);
    listener_gone = 0;
    nf_listener_close(l, on_listener_closed);
}

static void stop_and_finish(nf_loop_t *loop, nf_reconnect_t *rc)
{
    nf_reconnect_stop(rc);
    H_RUN_UNTIL(loop, g.stopped == 1, 5000);
    assert_int_equal(g.ev[g.nev - 1].state, NF_RC_STOPPED);
    h_loop_finish(loop, 5000);
}

static void test_server_comes_back(void **state)
{
    (void)state;
    reset();
    nf_loop_t *loop = h_loop_new();
    nf_listener_t *l = NULL;
    uint16_t port = h_listen(loop, NULL, &h_echo_handler, NULL, &l);
    nf_reconnect_config_t cfg = base_cfg(port);
    nf_reconnect_t *rc;
    H_ASSERT_ERR(nf_reconnect_start(loop, &cfg, &rc), 0);
    H_RUN_UNTIL(loop, g.ups == 1, 5000);
    H_ASSERT_ERR(nf_reconnect_write(rc, "one", 3), NF_WRITE_OK);
    H_RUN_UNTIL(loop, g.got_len == 3, 5000);

    server_down(loop, l);
    H_RUN_UNTIL(loop, listener_gone, 5000);
    g_blocker = block_port(&port);               /* the port refuses, and cannot be a source port */
    H_RUN_UNTIL(loop, g.downs >= 3, 5000);       /* the close, then refused attempts */
    assert_int_equal(g.ev[2].state, NF_RC_DOWN); /* CONNECTING, UP, DOWN */
    H_ASSERT_ERR(g.ev[2].reason, NF_EOF);
    int refused = 0;
    for (int i = 3; i < g.nev; i++)
        if (g.ev[i].state == NF_RC_DOWN && g.ev[i].reason == -ECONNREFUSED)
            refused++;
    assert_true(refused >= 2);
    assert_null(nf_reconnect_conn(rc));

    unblock();
    l = listen_on(loop, port); /* back on the same port */
    H_RUN_UNTIL(loop, g.ups == 2, 5000);
    H_ASSERT_ERR(nf_reconnect_write(rc, "two", 3), NF_WRITE_OK);
    H_RUN_UNTIL(loop, g.got_len == 6, 5000);
    assert_memory_equal(g.got, "onetwo", 6);
    nf_reconnect_stats_t st;
    nf_reconnect_stats(rc, &st);
    print_message("[ info     ] connects=%llu ups=%llu downs=%llu failures=%llu\n", (unsigned long long)st.connects,
                  (unsigned long long)st.ups, (unsigned long long)st.downs, (unsigned long long)st.failures);
    assert_int_equal(st.ups, 2);
    assert_int_equal(st.downs, 1);
    assert_true(st.failures >= 2);
    assert_int_equal(st.connects, st.ups + st.failures);
    assert_int_equal(st.attempt, 0);
    nf_listener_close(l, NULL);
    stop_and_finish(loop, rc);
    assert_int_equal(h_echo.closed, 2); /* both server-side connections ended */
}

/* Collects the BACKOFF delays of a connector to a closed port. */
static int run_backoffs(nf_reconnect_config_t *cfg, int n, uint64_t *out)
{
    reset();
    g.stop_after_backoffs = n;
    nf_loop_t *loop = h_loop_new();
    nf_reconnect_t *rc;
    H_ASSERT_ERR(nf_reconnect_start(loop, cfg, &rc), 0);
    H_RUN_UNTIL(loop, g.stopped == 1, 10000);
    int k = 0;
    for (int i = 0; i < g.nev; i++) {
        if (g.ev[i].state == NF_RC_DOWN && g.ev[i].reason != -ECONNREFUSED)
            fail_msg("down with %s", nf_err_name(g.ev[i].reason));
        if (g.ev[i].state == NF_RC_BACKOFF)
            out[k++] = g.ev[i].delay;
    }
    /* CONNECTING, DOWN, BACKOFF repeated, then STOPPED */
    static const nf_reconnect_state_t cycle[3] = {NF_RC_CONNECTING, NF_RC_DOWN, NF_RC_BACKOFF};
    for (int i = 0; i + 1 < g.nev; i++)
        assert_int_equal(g.ev[i].state, cycle[i % 3]);
    assert_int_equal(g.ev[g.nev - 1].state, NF_RC_STOPPED);
    h_loop_finish(loop, 5000);
    return k;
}

static void test_backoff_grows_and_caps(void **state)
{
    (void)state;
    uint16_t port = refusing_port();
    nf_reconnect_config_t cfg = base_cfg(port);
    cfg.initial_ms = 5;
    cfg.multiplier = 2.0;
    cfg.max_ms = 40;
    uint64_t d[16];
    int n = run_backoffs(&cfg, 7, d);
    assert_int_equal(n, 7);
    const uint64_t want[7] = {5, 10, 20, 40, 40, 40, 40};
    for (int i = 0; i < n; i++)
        if (d[i] != want[i])
            fail_msg("backoff %d: %llu ms, expected %llu", i, (unsigned long long)d[i], (unsigned long long)want[i]);

    cfg.multiplier = 3.0;
    cfg.max_ms = 100;
    n = run_backoffs(&cfg, 5, d);
    const uint64_t want3[5] = {5, 15, 45, 100, 100};
    for (int i = 0; i < n; i++)
        assert_int_equal(d[i], want3[i]);
}

static void test_backoff_jitter(void **state)
{
    (void)state;
    uint16_t port = refusing_port();
    nf_reconnect_config_t cfg = base_cfg(port);
    cfg.initial_ms = 4;
    cfg.multiplier = 2.0;
    cfg.max_ms = 32;
    cfg.seed = 12345;
    cfg.jitter = NF_RC_JITTER_FULL;
    uint64_t d[16];
    int n = run_backoffs(&cfg, 10, d);
    uint64_t base = 4, distinct = 0;
    for (int i = 0; i < n; i++) {
        if (d[i] > base)
            fail_msg("full jitter %d: %llu > base %llu", i, (unsigned long long)d[i], (unsigned long long)base);
        if (i && d[i] != d[i - 1])
            distinct++;
        base = base * 2 > 32 ? 32 : base * 2;
    }
    assert_true(distinct > 0); /* a fixed seed: deterministic, and not constant */

    cfg.jitter = NF_RC_JITTER_DECORRELATED;
    cfg.multiplier = 3.0;
    n = run_backoffs(&cfg, 10, d);
    uint64_t prev = 4;
    for (int i = 0; i < n; i++) {
        uint64_t hi = prev * 3 > 32 ? 32 : prev * 3;
        if (d[i] < 4 || d[i] > hi)
            fail_msg("decorrelated %d: %llu not in [4, %llu]", i, (unsigned long long)d[i], (unsigned long long)hi);
        prev = d[i];
    }
    /* the same seed gives the same delays */
    uint64_t again[16];
    run_backoffs(&cfg, 10, again);
    assert_memory_equal(d, again, sizeof(uint64_t) * 10);
}

static void test_held_writes_in_order(void **state)
{
    (void)state;
    reset();
    nf_loop_t *loop = h_loop_new();
    uint16_t port = refusing_port();
    nf_reconnect_config_t cfg = base_cfg(port);
    nf_reconnect_t *rc;
    H_ASSERT_ERR(nf_reconnect_start(loop, &cfg, &rc), 0);
    H_ASSERT_ERR(nf_reconnect_write(rc, "first,", 6), NF_WRITE_HELD); /* before even connecting */
    H_RUN_UNTIL(loop, g.downs >= 2, 5000);
    H_ASSERT_ERR(nf_reconnect_write(rc, "second,", 7), NF_WRITE_HELD);
    H_ASSERT_ERR(nf_reconnect_write(rc, "third,", 6), NF_WRITE_HELD);
    nf_reconnect_stats_t st;
    nf_reconnect_stats(rc, &st);
    assert_int_equal(st.held_writes, 3);
    assert_int_equal(st.held_bytes, 19);
    g.write_on_up = "after-up";
    unblock();
    nf_listener_t *l = listen_on(loop, port);
    H_RUN_UNTIL(loop, g.got_len == 27, 5000);
    assert_memory_equal(g.got, "first,second,third,after-up", 27);
    nf_reconnect_stats(rc, &st);
    assert_int_equal(st.writes_held, 3);
    assert_int_equal(st.writes_flushed, 3);
    assert_int_equal(st.held_writes, 0);
    assert_int_equal(st.writes_dropped, 0);
    nf_listener_close(l, NULL);
    stop_and_finish(loop, rc);
}

static void test_refuse_mode(void **state)
{
    (void)state;
    reset();
    nf_loop_t *loop = h_loop_new();
    uint16_t port = refusing_port();
    nf_reconnect_config_t cfg = base_cfg(port);
    cfg.down_policy = NF_RC_REFUSE;
    nf_reconnect_t *rc;
    H_ASSERT_ERR(nf_reconnect_start(loop, &cfg, &rc), 0);
    H_RUN_UNTIL(loop, g.downs >= 1, 5000);
    H_ASSERT_ERR(nf_reconnect_write(rc, "x", 1), -ENOTCONN);
    H_ASSERT_ERR(nf_reconnect_write(rc, "y", 1), -ENOTCONN);
    nf_reconnect_stats_t st;
    nf_reconnect_stats(rc, &st);
    assert_int_equal(st.writes_refused, 2);
    assert_int_equal(st.held_writes, 0);
    unblock();
    nf_listener_t *l = listen_on(loop, port);
    H_RUN_UNTIL(loop, g.ups == 1, 5000);
    H_ASSERT_ERR(nf_reconnect_write(rc, "z", 1), NF_WRITE_OK);
    H_RUN_UNTIL(loop, g.got_len == 1, 5000);
    assert_memory_equal(g.got, "z", 1); /* the refused ones never went */
    nf_listener_close(l, NULL);
    stop_and_finish(loop, rc);
}

static void test_hold_limits(void **state)
{
    (void)state;
    reset();
    nf_loop_t *loop = h_loop_new();
    nf_reconnect_config_t cfg = base_cfg(refusing_port());
    cfg.max_held_bytes = 10;
    nf_reconnect_t *rc;
    H_ASSERT_ERR(nf_reconnect_start(loop, &cfg, &rc), 0);
    H_ASSERT_ERR(nf_reconnect_write(rc, "aaaa", 4), NF_WRITE_HELD);
    H_ASSERT_ERR(nf_reconnect_write(rc, "bbbb", 4), NF_WRITE_HELD);
    H_ASSERT_ERR(nf_reconnect_write(rc, "cccc", 4), NF_WRITE_DROPPED); /* 12 > 10 */
    H_ASSERT_ERR(nf_reconnect_write(rc, "dd", 2), NF_WRITE_HELD);      /* 10 fits */
    H_ASSERT_ERR(nf_reconnect_write(rc, "e", 1), NF_WRITE_DROPPED);
    nf_reconnect_stats_t st;
    nf_reconnect_stats(rc, &st);
    assert_int_equal(st.held_bytes, 10);
    assert_int_equal(st.held_writes, 3);
    assert_int_equal(st.writes_dropped, 2);
    assert_int_equal(st.bytes_dropped, 5);
    /* stop drops what is held, counted; later writes are refused */
    nf_reconnect_stop(rc);
    nf_reconnect_stats(rc, &st);
    assert_int_equal(st.writes_dropped, 5);
    assert_int_equal(st.bytes_dropped, 15);
    assert_int_equal(st.held_bytes, 0);
    H_ASSERT_ERR(nf_reconnect_write(rc, "f", 1), NF_ECLOSED);
    H_RUN_UNTIL(loop, g.stopped == 1, 5000);
    h_loop_finish(loop, 5000);

    /* the count limit */
    reset();
    loop = h_loop_new();
    cfg.max_held_bytes = 0;
    cfg.max_held_writes = 2;
    H_ASSERT_ERR(nf_reconnect_start(loop, &cfg, &rc), 0);
    H_ASSERT_ERR(nf_reconnect_write(rc, "1", 1), NF_WRITE_HELD);
    H_ASSERT_ERR(nf_reconnect_write(rc, "2", 1), NF_WRITE_HELD);
    H_ASSERT_ERR(nf_reconnect_write(rc, "3", 1), NF_WRITE_DROPPED);
    nf_reconnect_stats(rc, &st);
    assert_int_equal(st.held_writes, 2);
    assert_int_equal(st.writes_dropped, 1);
    stop_and_finish(loop, rc);
}

static void test_stop_during_backoff(void **state)
{
    (void)state;
    reset();
    nf_loop_t *loop = h_loop_new();
    nf_reconnect_config_t cfg = base_cfg(refusing_port());
    cfg.initial_ms = 60000; /* a backoff far longer than the test */
    cfg.max_ms = 60000;
    nf_reconnect_t *rc;
    H_ASSERT_ERR(nf_reconnect_start(loop, &cfg, &rc), 0);
    H_RUN_UNTIL(loop, g.backoffs == 1, 5000);
    assert_int_equal(g.ev[g.nev - 1].delay, 60000);
    assert_int_equal(nf_reconnect_state(rc), NF_RC_BACKOFF);
    stop_and_finish(loop, rc); /* h_loop_finish: nothing left armed */
    assert_int_equal(g.connecting, 1);
}

/* A port whose accept queue is full (listen backlog 0, never accepted,
 * filled by two connects): the kernel drops further SYNs, so a connect to it
 * stays in progress. */
/* A listener nobody accepts from, filled until a connect to it stays in
 * flight (the accept queue is full, the kernel drops further SYNs): proved
 * by a filler that is still not connected 100 ms later. fill[] gets the
 * fillers, -1 past the last. Fails when no connect would stay in flight. */
enum { FILLERS = 8 };
static int stalled_listener(uint16_t *port, int fill[FILLERS])
{
    int fd = h_tcp_listen(0, port);
    for (int i = 0; i < FILLERS; i++)
        fill[i] = -1;
    for (int i = 0; i < FILLERS; i++) {
        fill[i] = h_tcp_connect_nb("127.0.0.1", *port);
        assert_true(fill[i] >= 0);
        struct pollfd p = {.fd = fill[i], .events = POLLOUT};
        if (poll(&p, 1, 100) == 0)
            return fd; /* this one stays in flight: so will the next */
    }
    fail_msg("%d connects to a listener that never accepts all completed", FILLERS);
    return -1;
}

static void test_stop_while_connecting_and_up(void **state)
{
    (void)state;
    /* stop while a connect is in flight: it is cancelled, no UP, no DOWN */
    reset();
    nf_loop_t *loop = h_loop_new();
    uint16_t sport;
    int fill[FILLERS];
    int lfd = stalled_listener(&sport, fill);
    nf_reconnect_config_t cfg = base_cfg(sport);
    cfg.connect.timeout_ms = 0;
    nf_reconnect_t *rc;
    H_ASSERT_ERR(nf_reconnect_start(loop, &cfg, &rc), 0);
    H_RUN_UNTIL(loop, g.connecting == 1, 5000);
    h_run_for(loop, 100);
    /* the listener was proved stalled: the connect must still be in flight */
    assert_int_equal(g.ups, 0);
    assert_int_equal(nf_reconnect_state(rc), NF_RC_CONNECTING);
    nf_reconnect_stop(rc);
    H_RUN_UNTIL(loop, g.stopped == 1, 5000);
    assert_int_equal(g.ups, 0);
    assert_int_equal(g.downs, 0);
    for (int i = 0; i < FILLERS && fill[i] >= 0; i++)
        close(fill[i]);
    close(lfd);

    /* stop from the CONNECTING callback: the connect is never started */
    reset();
    nf_listener_t *l = NULL;
    uint16_t port = h_listen(loop, NULL, &h_echo_handler, NULL, &l);
    cfg = base_cfg(port);
    g.stop_on_connecting = 1;
    H_ASSERT_ERR(nf_reconnect_start(loop, &cfg, &rc), 0);
    H_RUN_UNTIL(loop, g.stopped == 1, 5000);
    assert_int_equal(g.ups, 0);
    nf_reconnect_stats_t st;
    assert_int_equal(g.nev, 2); /* CONNECTING, STOPPED */

    /* stop while up: graceful, what was written is echoed before the end */
    reset();
    H_ASSERT_ERR(nf_reconnect_start(loop, &cfg, &rc), 0);
    H_RUN_UNTIL(loop, g.ups == 1, 5000);
    char big[3000];
    memset(big, 'q', sizeof big);
    H_ASSERT_ERR(nf_reconnect_write(rc, big, sizeof big), NF_WRITE_OK);
    nf_reconnect_stats(rc, &st);
    assert_int_equal(st.ups, 1);
    nf_reconnect_stop(rc);
    H_RUN_UNTIL(loop, g.stopped == 1, 5000);
    H_RUN_UNTIL(loop, h_echo.bytes == sizeof big, 5000); /* the server got all of it */
    assert_int_equal(g.downs, 0);                        /* no DOWN: STOPPED is the end */
    h_listener_finish(loop, l, 5000);
}

/* A server that accepts and never answers. */
static int silent_opened;
static void silent_open(nf_conn_t *c) { (void)c, silent_opened++; }
static void silent_close(nf_conn_t *c, int r) { (void)c, (void)r; }
static const nf_conn_handler_t k_silent = {.on_open = silent_open, .on_read = h_ignore_read, .on_close = silent_close};

static void test_filters_each_connection(void **state)
{
    (void)state;
    reset();
    silent_opened = 0;
    nf_loop_t *loop = h_loop_new();
    nf_listener_t *l = NULL;
    uint16_t port = h_listen(loop, NULL, &k_silent, NULL, &l);
    static const nf_timeout_config_t tcfg = {.timeout_ms = 60};
    static const nf_filter_spec_t stack[] = {{.ops = &nf_read_timeout_filter, .config = &tcfg}};
    nf_reconnect_config_t cfg = base_cfg(port);
    cfg.connect.filters = stack;
    cfg.connect.nfilters = 1;
    nf_reconnect_t *rc;
    H_ASSERT_ERR(nf_reconnect_start(loop, &cfg, &rc), 0);
    H_RUN_UNTIL(loop, g.ups == 3 && g.downs == 2, 10000);
    for (int i = 0; i < g.nev; i++)
        if (g.ev[i].state == NF_RC_DOWN)
            H_ASSERT_ERR(g.ev[i].reason, -ETIMEDOUT);
    assert_true(silent_opened >= 3);
    nf_listener_close(l, NULL);
    nf_reconnect_stop(rc);
    H_RUN_UNTIL(loop, g.stopped == 1, 5000);
    nf_conn_walk(loop, close_accepted, NULL); /* the silent server's, if any is left */
    h_loop_finish(loop, 5000);
}

static int teardown(void **state)
{
    (void)state;
    unblock();
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_server_comes_back, teardown),
        cmocka_unit_test_teardown(test_backoff_grows_and_caps, teardown),
        cmocka_unit_test_teardown(test_backoff_jitter, teardown),
        cmocka_unit_test_teardown(test_held_writes_in_order, teardown),
        cmocka_unit_test_teardown(test_refuse_mode, teardown),
        cmocka_unit_test_teardown(test_hold_limits, teardown),
        cmocka_unit_test_teardown(test_stop_during_backoff, teardown),
        cmocka_unit_test_teardown(test_stop_while_connecting_and_up, teardown),
        cmocka_unit_test_teardown(test_filters_each_connection, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
