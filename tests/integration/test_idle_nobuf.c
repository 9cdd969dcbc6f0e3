/* Integration: idle connections hold no read buffer. 100 connections that
 * send nothing leave bufs_in_use where it was with no connection at all;
 * then one of them sends and the bytes arrive. */
#include "helpers.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define N_IDLE 100

static struct {
    int opened, closed, reads;
    nf_conn_t *reader; /* the connection that delivered data */
    int readers;       /* distinct connections that delivered data */
    char buf[256];
    size_t got;
} g;

static void on_open(nf_conn_t *c)
{
    (void)c;
    g.opened++;
}

static void on_read(nf_conn_t *c, const char *data, size_t len)
{
    g.reads++;
    if (g.reader != c) {
        g.reader = c;
        g.readers++;
    }
    if (g.got + len <= sizeof g.buf)
        memcpy(g.buf + g.got, data, len);
    g.got += len;
}

static void on_close(nf_conn_t *c, int reason)
{
    (void)c;
    (void)reason;
    g.closed++;
}

static const nf_conn_handler_t handler = {
    .on_open = on_open,
    .on_read = on_read,
    .on_close = on_close,
};

static void run_idle(nf_loop_t *loop)
{
    memset(&g, 0, sizeof g);
    nf_listener_t *l;
    uint16_t port = h_listen(loop, NULL, &handler, NULL, &l);
    h_run_for(loop, 30);
    nf_loop_stats_t s0 = h_stats(loop);
    assert_int_equal(s0.bufs_kept, 0);

    int fds[N_IDLE];
    for (int i = 0; i < N_IDLE; i++) {
        fds[i] = h_tcp_connect("127.0.0.1", port);
        assert_true(fds[i] >= 0);
    }
    H_RUN_UNTIL(loop, g.opened == N_IDLE, 10000);
    h_run_for(loop, 50); /* let every connection arm its read */

    nf_loop_stats_t s1 = h_stats(loop);
    print_message("[ info     ] bufs_in_use: %llu with no connection, %llu with %d idle\n",
                  (unsigned long long)s0.bufs_in_use, (unsigned long long)s1.bufs_in_use, N_IDLE);
    assert_int_equal(s1.conns_open, N_IDLE);
    assert_int_equal(s1.bufs_kept, 0);
    assert_int_equal(s1.bufs_in_use, s0.bufs_in_use);
    assert_int_equal(s1.bytes_in, 0);
    assert_int_equal(g.reads, 0);

    static const char msg[] = "bytes from one idle connection";
    assert_int_equal(h_send_all(fds[N_IDLE / 3], msg, sizeof msg - 1, 5000), 0);
    H_RUN_UNTIL(loop, g.got >= sizeof msg - 1, 5000);
    h_run_for(loop, 20);
    assert_int_equal(g.got, sizeof msg - 1);
    assert_memory_equal(g.buf, msg, sizeof msg - 1);
    assert_int_equal(g.readers, 1);

    nf_loop_stats_t s2 = h_stats(loop);
    assert_int_equal(s2.bufs_kept, 0);
    assert_int_equal(s2.bufs_in_use, s0.bufs_in_use); /* the read buffer went back */
    assert_int_equal(s2.bytes_in, sizeof msg - 1);

    for (int i = 0; i < N_IDLE; i++)
        close(fds[i]);
    H_RUN_UNTIL(loop, g.closed == N_IDLE, 10000);
    nf_loop_stats_t s3 = h_stats(loop);
    assert_int_equal(s3.conns_open, 0);
    assert_int_equal(s3.bufs_in_use, s0.bufs_in_use);
    nf_listener_close(l, NULL);
}

static void test_idle_no_buffers(void **state)
{
    (void)state;
    nf_loop_t *loop = h_loop_new();
    run_idle(loop);
    h_loop_finish(loop, 5000);
}

static void test_idle_no_buffers_no_bufring(void **state)
{
    (void)state;
    nf_loop_config_t cfg;
    nf_loop_config_init(&cfg);
    cfg.uring_no_bufring = 1;
    nf_loop_t *loop = h_loop_new_cfg(&cfg);
    run_idle(loop);
    h_loop_finish(loop, 5000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_idle_no_buffers),
        cmocka_unit_test(test_idle_no_buffers_no_bufring),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
