/* Integration: 1,000 concurrent connections, each echoing a distinct message;
 * the loop's connection counters must match what happened. */
#include "helpers.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NCONN 1000

static size_t msg_len(int i) { return 16 + (size_t)(i % 113); }

/* ---- plain-socket peers ------------------------------------------------- */

typedef struct many_plain {
    uint16_t port;
    int fds[NCONN];
    atomic_int echoed;   /* all echoes verified, all sockets still open */
    atomic_int go_close; /* main thread: close them now */
    h_result_t res;
} many_plain_t;

static void *many_plain_thread(void *arg)
{
    many_plain_t *m = arg;
    int n = 0;
    for (; n < NCONN; n++) {
        m->fds[n] = h_tcp_connect("127.0.0.1", m->port);
        if (m->fds[n] < 0) {
            h_result_fail(&m->res, "connect #%d: %s", n, strerror(-m->fds[n]));
            goto out;
        }
    }
    char buf[256], got[256];
    for (int i = 0; i < NCONN; i++) {
        h_pattern_fill(buf, msg_len(i), 0, (uint32_t)i);
        int rc = h_send_all(m->fds[i], buf, msg_len(i), 10000);
        if (rc < 0) {
            h_result_fail(&m->res, "send #%d: %s", i, strerror(-rc));
            goto out;
        }
    }
    for (int i = 0; i < NCONN; i++) {
        ssize_t r = h_recv_full(m->fds[i], got, msg_len(i), 10000);
        if (r != (ssize_t)msg_len(i)) {
            h_result_fail(&m->res, "echo #%d: got %zd of %zu bytes (%s)", i, r, msg_len(i),
                          r < 0 ? strerror((int)-r) : "short");
            goto out;
        }
        if (h_pattern_check(got, msg_len(i), 0, (uint32_t)i) != SIZE_MAX) {
            h_result_fail(&m->res, "echo #%d: wrong bytes (another connection's message?)", i);
            goto out;
        }
    }
    atomic_store(&m->echoed, 1);
    uint64_t deadline = h_now_ms() + 30000;
    while (!atomic_load(&m->go_close) && h_now_ms() < deadline)
        h_sleep_ms(1);
out:
    for (int i = 0; i < n; i++)
        close(m->fds[i]);
    return h_peer_done(&m->res);
}

static void test_many_plain_clients(void **state)
{
    (void)state;
    h_raise_nofile(4 * NCONN + 256);
    nf_loop_t *loop = h_loop_new();
    h_echo_reset();
    nf_listener_t *l;
    static many_plain_t m;
    memset(&m, 0, sizeof m);
    m.port = h_listen(loop, NULL, &h_echo_handler, NULL, &l);

    pthread_t th = h_thread_start(many_plain_thread, &m);
    H_RUN_UNTIL(loop, atomic_load(&m.echoed) || atomic_load(&m.res.done), 30000);
    H_ASSERT_PEER_OK(&m.res);

    /* All NCONN connections are open at once now. */
    nf_loop_stats_t s = h_stats(loop);
    assert_int_equal(h_echo.opened, NCONN);
    assert_int_equal(h_echo.closed, 0);
    assert_int_equal(nf_listener_conns(l), NCONN);
    assert_int_equal(s.conns_accepted, NCONN);
    assert_int_equal(s.conns_open, NCONN);
    assert_int_equal(s.conns_closed, 0);
    uint64_t total = 0;
    for (int i = 0; i < NCONN; i++)
        total += msg_len(i);
    assert_int_equal(h_echo.bytes, total);
    assert_int_equal(s.bytes_in, total);
    /* bytes_out counts send completions: the peer may hold every echo
     * before the loop has seen the last completion (poll/event modes). */
    H_RUN_UNTIL(loop, h_stats(loop).bytes_out == total, 5000);

    atomic_store(&m.go_close, 1);
    H_RUN_UNTIL(loop, atomic_load(&m.res.done) && h_echo.closed == NCONN, 20000);
    h_thread_join(th, 5000);
    H_ASSERT_PEER_OK(&m.res);
    h_run_for(loop, 20);

    s = h_stats(loop);
    assert_int_equal(h_echo.closed, NCONN);
    assert_int_equal(h_echo.close_eof, NCONN);
    assert_int_equal(nf_listener_conns(l), 0);
    assert_int_equal(s.conns_accepted, NCONN);
    assert_int_equal(s.conns_open, 0);
    assert_int_equal(s.conns_closed, NCONN);
    assert_int_equal(s.conns_refused, 0);

    h_listener_finish(loop, l, 5000);
}

/* ---- netframe peers on the same loop ------------------------------------ */

typedef struct peer {
    int idx;
    nf_conn_t *c;
    size_t got;
    int opened, closed, reason;
} peer_t;

static peer_t g_peers[NCONN];
static int g_echoed, g_peer_closed, g_peer_errors;

static void peer_on_open(nf_conn_t *c)
{
    peer_t *p = nf_conn_get_data(c);
    p->opened++;
    char buf[256];
    h_pattern_fill(buf, msg_len(p->idx), 0, 7777u + (uint32_t)p->idx);
    if (nf_conn_write(c, buf, msg_len(p->idx)) != 0)
        g_peer_errors++;
}

static void peer_on_read(nf_conn_t *c, const char *data, size_t len)
{
    peer_t *p = nf_conn_get_data(c);
    if (p->got + len > msg_len(p->idx) || h_pattern_check(data, len, p->got, 7777u + (uint32_t)p->idx) != SIZE_MAX) {
        g_peer_errors++;
        nf_conn_close(c);
        return;
    }
    p->got += len;
    if (p->got == msg_len(p->idx))
        g_echoed++;
}

static void peer_on_close(nf_conn_t *c, int reason)
{
    peer_t *p = nf_conn_get_data(c);
    p->closed++;
    p->reason = reason;
    p->c = NULL;
    g_peer_closed++;
}

static const nf_conn_handler_t peer_handler = {
    .on_open = peer_on_open,
    .on_read = peer_on_read,
    .on_close = peer_on_close,
};

static void test_many_nf_clients(void **state)
{
    (void)state;
    h_raise_nofile(4 * NCONN + 256);
    nf_loop_t *loop = h_loop_new();
    h_echo_reset();
    memset(g_peers, 0, sizeof g_peers);
    g_echoed = g_peer_closed = g_peer_errors = 0;
    nf_listener_t *l;
    uint16_t port = h_listen(loop, NULL, &h_echo_handler, NULL, &l);

    for (int i = 0; i < NCONN; i++) {
        g_peers[i].idx = i;
        g_peers[i].c = h_connect(loop, "127.0.0.1", port, &peer_handler, &g_peers[i]);
    }
    H_RUN_UNTIL(loop, g_echoed + g_peer_errors + g_peer_closed >= NCONN, 30000);
    assert_int_equal(g_peer_errors, 0);
    assert_int_equal(g_peer_closed, 0);
    assert_int_equal(g_echoed, NCONN);

    nf_loop_stats_t s = h_stats(loop);
    assert_int_equal(h_echo.opened, NCONN);
    assert_int_equal(s.conns_accepted, NCONN);
    assert_int_equal(s.conns_connected, NCONN);
    assert_int_equal(s.conns_open, 2 * NCONN);
    assert_int_equal(s.conns_closed, 0);
    assert_int_equal(nf_listener_conns(l), NCONN);

    for (int i = 0; i < NCONN; i++)
        nf_conn_close(g_peers[i].c);
    H_RUN_UNTIL(loop, g_peer_closed == NCONN && h_echo.closed == NCONN, 20000);
    h_run_for(loop, 20);

    for (int i = 0; i < NCONN; i++) {
        assert_int_equal(g_peers[i].opened, 1);
        assert_int_equal(g_peers[i].closed, 1);
        H_ASSERT_ERR(g_peers[i].reason, NF_CLOSE_LOCAL);
    }
    assert_int_equal(h_echo.closed, NCONN);
    assert_int_equal(h_echo.close_eof, NCONN);
    s = h_stats(loop);
    assert_int_equal(s.conns_open, 0);
    assert_int_equal(s.conns_closed, 2 * NCONN);

    h_listener_finish(loop, l, 5000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_many_plain_clients),
        cmocka_unit_test(test_many_nf_clients),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
