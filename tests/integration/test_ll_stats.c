/* Integration: nf_loop_stats after a real echo exchange on one loop (an
 * nf_connect client and an echo server), counter by counter. The net layer
 * keeps its counters in its per-loop record and nf_loop_stats adds them to
 * the loop's own: the numbers a program reads are the same as before. */
#include "helpers.h"

#include <stdio.h>
#include <string.h>

#define MSG_LEN  1000u
#define MSG_N    20u
#define ECHO_LEN (MSG_LEN * MSG_N)

typedef struct client {
    uint64_t got;
    int opened, closed, reads;
    char buf[MSG_LEN];
} client_t;

static void cl_open(nf_conn_t *c)
{
    client_t *cl = nf_conn_get_data(c);
    cl->opened++;
    for (unsigned i = 0; i < MSG_N; i++) {
        h_pattern_fill(cl->buf, MSG_LEN, (uint64_t)i * MSG_LEN, 7);
        assert_int_equal(nf_conn_write(c, cl->buf, MSG_LEN), 0);
    }
}

static void cl_read(nf_conn_t *c, const char *data, size_t len)
{
    client_t *cl = nf_conn_get_data(c);
    cl->reads++;
    assert_int_equal(h_pattern_check(data, len, cl->got, 7), SIZE_MAX);
    cl->got += len;
    if (cl->got == ECHO_LEN)
        nf_conn_end(c);
}

static void cl_close(nf_conn_t *c, int reason)
{
    (void)reason;
    client_t *cl = nf_conn_get_data(c);
    cl->closed++;
}

static const nf_conn_handler_t client_handler = {.on_open = cl_open, .on_read = cl_read, .on_close = cl_close};

static void idle_open(nf_conn_t *c)
{
    client_t *cl = nf_conn_get_data(c);
    cl->opened++;
}
/* a client that only connects, and counts */
static const nf_conn_handler_t idle_handler = {.on_open = idle_open, .on_read = h_ignore_read, .on_close = cl_close};

static void test_stats_echo(void **state)
{
    (void)state;
    nf_loop_t *loop = h_loop_new();
    nf_loop_stats_t s = h_stats(loop);
    /* a fresh loop: no counter of any layer moved */
    assert_int_equal(s.conns_open + s.conns_accepted + s.conns_connected + s.conns_closed + s.conns_refused, 0);
    assert_int_equal(s.bytes_in + s.bytes_out + s.reads + s.writes + s.accept_errors, 0);

    h_echo_reset();
    nf_listener_t *l;
    uint16_t port = h_listen(loop, "127.0.0.1", &h_echo_handler, NULL, &l);
    client_t cl;
    memset(&cl, 0, sizeof(cl));
    h_connect(loop, "127.0.0.1", port, &client_handler, &cl);
    H_RUN_UNTIL(loop, cl.opened == 1 && h_echo.opened == 1, 5000);
    s = h_stats(loop);
    assert_int_equal(s.conns_open, 2);
    assert_int_equal(s.conns_accepted, 1);
    assert_int_equal(s.conns_connected, 1);

    H_RUN_UNTIL(loop, cl.closed == 1 && h_echo.closed == 1, 5000);
    s = h_stats(loop);
    assert_int_equal(cl.got, ECHO_LEN);
    assert_int_equal(h_echo.bytes, ECHO_LEN);
    assert_int_equal(s.conns_open, 0);
    assert_int_equal(s.conns_accepted, 1);
    assert_int_equal(s.conns_connected, 1);
    assert_int_equal(s.conns_closed, 2);
    assert_int_equal(s.conns_refused, 0);
    assert_int_equal(s.accept_errors, 0);
    /* both ends read and wrote every byte once: the client's requests and
     * the server's echoes */
    assert_int_equal(s.bytes_in, 2u * ECHO_LEN);
    assert_int_equal(s.bytes_out, 2u * ECHO_LEN);
    /* each on_read is one read, each completed send one write */
    assert_int_equal(s.reads, (uint64_t)h_echo.reads + (uint64_t)cl.reads);
    assert_true(s.writes >= 2 && s.writes <= 2u * MSG_N);
    assert_int_equal(s.bufs_kept, 0);

    /* nf_loop_stats is a read: asking twice gives the same numbers */
    nf_loop_stats_t again = h_stats(loop);
    assert_memory_equal(&s, &again, offsetof(nf_loop_stats_t, iterations));

    nf_listener_close(l, NULL);
    h_loop_finish(loop, 2000);
}

/* A listener at its connection limit with NF_LIMIT_CLOSE resets the next
 * connection: counted in conns_refused, not in conns_accepted. */
static void test_stats_refused(void **state)
{
    (void)state;
    nf_loop_t *loop = h_loop_new();
    h_echo_reset();
    nf_listen_config_t lc;
    memset(&lc, 0, sizeof(lc));
    lc.host = "127.0.0.1";
    lc.handler = &h_echo_handler;
    lc.max_conns = 1;
    lc.on_limit = NF_LIMIT_CLOSE;
    nf_listener_t *l;
    uint16_t port = h_listen_cfg(loop, &lc, &l);
    client_t a, b;
    memset(&a, 0, sizeof(a));
    memset(&b, 0, sizeof(b));
    nf_conn_t *ca = h_connect(loop, "127.0.0.1", port, &idle_handler, &a);
    H_RUN_UNTIL(loop, a.opened == 1 && h_echo.opened == 1, 5000);
    h_connect(loop, "127.0.0.1", port, &idle_handler, &b);
    H_RUN_UNTIL(loop, h_stats(loop).conns_refused == 1, 5000);
    nf_loop_stats_t s = h_stats(loop);
    assert_int_equal(s.conns_accepted, 1);
    assert_int_equal(s.conns_refused, 1);
    nf_conn_close(ca);
    H_RUN_UNTIL(loop, a.closed == 1 && b.closed == 1 && h_echo.closed == 1, 5000);
    s = h_stats(loop);
    assert_int_equal(s.conns_open, 0);
    assert_int_equal(s.conns_closed, 3); /* two clients and the one accepted */
    nf_listener_close(l, NULL);
    h_loop_finish(loop, 2000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stats_echo),
        cmocka_unit_test(test_stats_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
