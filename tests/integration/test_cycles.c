/* Integration: many connect/close cycles leak no file descriptors and leave
 * the connection counters balanced. */
#include "helpers.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define N_PLAIN 10000
#define N_NF    2000

/* Server: even-numbered accepted connections are closed by the server right
 * away; odd ones wait for the client to close. */
static struct {
    int opened, closed, eof, local, other, other_reason;
} g_srv;

static void srv_on_open(nf_conn_t *c)
{
    int n = g_srv.opened++;
    if (n % 2 == 0)
        nf_conn_close(c);
}

static void srv_on_close(nf_conn_t *c, int reason)
{
    (void)c;
    g_srv.closed++;
    if (reason == NF_EOF)
        g_srv.eof++;
    else if (reason == NF_CLOSE_LOCAL)
        g_srv.local++;
    else if (reason == -ECONNRESET) /* the client's close raced our close */
        g_srv.eof++;
    else {
        g_srv.other++;
        g_srv.other_reason = reason;
    }
}

static const nf_conn_handler_t srv_handler = {
    .on_open = srv_on_open,
    .on_read = h_ignore_read,
    .on_close = srv_on_close,
};

typedef struct cycler {
    uint16_t port;
    int n;
    h_result_t res;
} cycler_t;

/* Connections are accepted in connect order (one at a time here), so the
 * client knows which ones the server closes. */
static void *cycler_thread(void *arg)
{
    cycler_t *cy = arg;
    for (int i = 0; i < cy->n; i++) {
        int fd = h_tcp_connect("127.0.0.1", cy->port);
        if (fd < 0) {
            h_result_fail(&cy->res, "cycle %d: connect: %s", i, strerror(-fd));
            break;
        }
        if (i % 2 == 0) {
            int rc = h_recv_eof(fd, 10000); /* the server closes */
            if (rc != 0) {
                h_result_fail(&cy->res, "cycle %d: expected EOF from the server, got %d", i, rc);
                close(fd);
                break;
            }
        }
        close(fd);
    }
    return h_peer_done(&cy->res);
}

static void test_cycles_plain(void **state)
{
    (void)state;
    memset(&g_srv, 0, sizeof g_srv);
    int fds_before_loop = h_count_fds();
    nf_loop_t *loop = h_loop_new();
    nf_listener_t *l;
    uint16_t port = h_listen(loop, NULL, &srv_handler, NULL, &l);

    /* Warm up: one cycle, so lazily created descriptors exist already. */
    static cycler_t cy;
    memset(&cy, 0, sizeof cy);
    cy.port = port;
    cy.n = 1;
    pthread_t t = h_thread_start(cycler_thread, &cy);
    H_RUN_UNTIL(loop, atomic_load(&cy.res.done) && g_srv.closed == 1, 5000);
    h_thread_join(t, 5000);
    H_ASSERT_PEER_OK(&cy.res);
    h_run_for(loop, 10);
    int fds_before = h_count_fds();

    memset(&g_srv, 0, sizeof g_srv);
    memset(&cy, 0, sizeof cy);
    cy.port = port;
    cy.n = N_PLAIN;
    uint64_t t0 = h_now_ms();
    t = h_thread_start(cycler_thread, &cy);
    H_RUN_UNTIL(loop, atomic_load(&cy.res.done) && g_srv.closed == g_srv.opened, 45000);
    h_thread_join(t, 5000);
    H_ASSERT_PEER_OK(&cy.res);
    H_RUN_UNTIL(loop, g_srv.closed == N_PLAIN, 5000);
    h_run_for(loop, 20);
    print_message("[ info     ] %d cycles in %llu ms\n", N_PLAIN, (unsigned long long)(h_now_ms() - t0));

    assert_int_equal(g_srv.opened, N_PLAIN);
    assert_int_equal(g_srv.closed, N_PLAIN);
    if (g_srv.other)
        fail_msg("%d closes with reason %s", g_srv.other, nf_err_name(g_srv.other_reason));
    assert_int_equal(g_srv.local, N_PLAIN / 2);
    assert_int_equal(g_srv.eof, N_PLAIN / 2);
    nf_loop_stats_t s = h_stats(loop);
    assert_int_equal(s.conns_open, 0);
    assert_int_equal(s.conns_accepted, N_PLAIN + 1);
    assert_int_equal(s.conns_closed, N_PLAIN + 1);
    assert_int_equal(nf_listener_conns(l), 0);
    int fds_after = h_count_fds();
    if (fds_after != fds_before)
        fail_msg("%d descriptors before the cycles, %d after", fds_before, fds_after);

    h_listener_finish(loop, l, 5000);
    assert_int_equal(h_count_fds(), fds_before_loop);
}

/* netframe clients on the same loop, one after the other: connect, close
 * from on_open; each client's close callback starts the next connect. */
static struct {
    nf_loop_t *loop;
    uint16_t port;
    int started, opened, closed, eof, local, other, other_reason;
} g_cl;

static void cl_start_next(void);

static void cl_on_open(nf_conn_t *c)
{
    g_cl.opened++;
    nf_conn_close(c);
}

static void cl_on_close(nf_conn_t *c, int reason)
{
    (void)c;
    g_cl.closed++;
    if (reason == NF_CLOSE_LOCAL)
        g_cl.local++;
    else {
        g_cl.other++;
        g_cl.other_reason = reason;
    }
    cl_start_next();
}

static const nf_conn_handler_t cl_handler = {
    .on_open = cl_on_open,
    .on_read = h_ignore_read,
    .on_close = cl_on_close,
};

static void cl_start_next(void)
{
    if (g_cl.started >= N_NF)
        return;
    g_cl.started++;
    nf_connect_config_t cfg = h_connect_config("127.0.0.1", g_cl.port, &cl_handler, NULL);
    nf_conn_t *c;
    int rc = nf_connect(g_cl.loop, &cfg, &c);
    if (rc != 0) {
        g_cl.other++;
        g_cl.other_reason = rc;
    }
}

/* Server for this part: never closes first. */
static void srv2_on_open(nf_conn_t *c)
{
    (void)c;
    g_srv.opened++;
}

static const nf_conn_handler_t srv2_handler = {
    .on_open = srv2_on_open,
    .on_read = h_ignore_read,
    .on_close = srv_on_close,
};

static void test_cycles_nf(void **state)
{
    (void)state;
    memset(&g_srv, 0, sizeof g_srv);
    memset(&g_cl, 0, sizeof g_cl);
    int fds_before_loop = h_count_fds();
    nf_loop_t *loop = h_loop_new();
    nf_listener_t *l;
    g_cl.loop = loop;
    g_cl.port = h_listen(loop, NULL, &srv2_handler, NULL, &l);

    cl_start_next(); /* each close starts the next connect */
    H_RUN_UNTIL(loop, (g_cl.closed == N_NF && g_srv.closed == N_NF) || g_cl.other, 45000);
    h_run_for(loop, 20);
    if (g_cl.other)
        fail_msg("client closed with %s", nf_err_name(g_cl.other_reason));
    assert_int_equal(g_cl.opened, N_NF);
    assert_int_equal(g_cl.closed, N_NF);
    assert_int_equal(g_cl.local, N_NF);
    assert_int_equal(g_srv.opened, N_NF);
    assert_int_equal(g_srv.closed, N_NF);
    assert_int_equal(g_srv.eof, N_NF);
    nf_loop_stats_t s = h_stats(loop);
    assert_int_equal(s.conns_open, 0);
    assert_int_equal(s.conns_connected, N_NF);
    assert_int_equal(s.conns_accepted, N_NF);
    assert_int_equal(s.conns_closed, 2 * N_NF);

    h_listener_finish(loop, l, 5000);
    int fds_after = h_count_fds();
    if (fds_after != fds_before_loop)
        fail_msg("%d descriptors before the loop, %d after it was freed", fds_before_loop, fds_after);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cycles_plain),
        cmocka_unit_test(test_cycles_nf),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
