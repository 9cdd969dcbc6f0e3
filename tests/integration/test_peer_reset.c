/* Integration: the peer resets the connection (SO_LINGER {1, 0}). A server
 * that is reading must see -ECONNRESET; one that is writing sees a reset-like
 * reason; nf_conn_abort produces a reset on the other side. */
#include "helpers.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct srv {
    int blast; /* write BLAST bytes on open */
    int opened, closed, reason;
    size_t got;
    nf_conn_t *conn;
} srv_t;

static srv_t g_srv;
#define BLAST (8u << 20)

static void srv_on_open(nf_conn_t *c)
{
    g_srv.opened++;
    g_srv.conn = c;
    if (g_srv.blast) {
        char *p = malloc(BLAST);
        memset(p, 'x', BLAST);
        nf_conn_write(c, p, BLAST);
        free(p);
    }
}

static void srv_on_read(nf_conn_t *c, const char *data, size_t len)
{
    (void)c;
    (void)data;
    g_srv.got += len;
}

static void srv_on_close(nf_conn_t *c, int reason)
{
    (void)c;
    g_srv.closed++;
    g_srv.reason = reason;
    g_srv.conn = NULL;
}

static const nf_conn_handler_t srv_handler = {
    .on_open = srv_on_open,
    .on_read = srv_on_read,
    .on_close = srv_on_close,
};

static void reset_srv(int blast)
{
    memset(&g_srv, 0, sizeof g_srv);
    g_srv.blast = blast;
    g_srv.reason = 12345;
}

/* The server has read the client's bytes and waits for more; the client
 * resets. Deterministic: the pending read fails with ECONNRESET. */
static void test_reset_while_reading(void **state)
{
    (void)state;
    reset_srv(0);
    h_fixture_t f;
    h_fixture_start(&f, &srv_handler, NULL);
    nf_loop_t *loop = f.loop;
    int fd = f.fd;
    char msg[1000];
    h_pattern_fill(msg, sizeof msg, 0, 1);
    assert_int_equal(h_send_all(fd, msg, sizeof msg, 5000), 0);
    H_RUN_UNTIL(loop, g_srv.got == sizeof msg, 5000);
    h_run_for(loop, 10);
    assert_int_equal(g_srv.closed, 0);

    h_close_reset(fd);
    H_RUN_UNTIL(loop, g_srv.closed >= 1, 5000);
    h_run_for(loop, 30);
    assert_int_equal(g_srv.closed, 1);
    H_ASSERT_ERR(g_srv.reason, -ECONNRESET);

    nf_loop_stats_t s = h_stats(loop);
    assert_int_equal(s.conns_open, 0);
    assert_int_equal(s.conns_closed, 1);
    h_fixture_finish(&f, 5000);
}

/* An idle connection (nothing ever read) that is reset. */
static void test_reset_idle(void **state)
{
    (void)state;
    reset_srv(0);
    h_fixture_t f;
    h_fixture_start(&f, &srv_handler, NULL);
    nf_loop_t *loop = f.loop;
    int fd = f.fd;
    H_RUN_UNTIL(loop, g_srv.opened == 1, 5000);
    h_run_for(loop, 10);
    h_close_reset(fd);
    H_RUN_UNTIL(loop, g_srv.closed >= 1, 5000);
    h_run_for(loop, 30);
    assert_int_equal(g_srv.closed, 1);
    H_ASSERT_ERR(g_srv.reason, -ECONNRESET);
    assert_int_equal(g_srv.got, 0);

    h_fixture_finish(&f, 5000);
}

/* The server has megabytes in flight when the reset comes. Whichever of the
 * pending send and receive sees the reset first gets ECONNRESET, the other
 * EPIPE or EOF; over several tries ECONNRESET must be seen. */
static void test_reset_while_writing(void **state)
{
    (void)state;
    nf_loop_t *loop = h_loop_new();
    nf_listener_t *l;
    uint16_t port = h_listen(loop, NULL, &srv_handler, NULL, &l);
    int n_reset = 0, n_pipe = 0, n_eof = 0;
    for (int attempt = 0; attempt < 5; attempt++) {
        reset_srv(1);
        int fd = h_tcp_connect("127.0.0.1", port);
        assert_true(fd >= 0);
        H_RUN_UNTIL(loop, g_srv.opened == 1 && h_stats(loop).bytes_out > 0, 5000);
        h_run_for(loop, 5);
        assert_int_equal(g_srv.closed, 0);
        assert_true(nf_conn_queued(g_srv.conn) > 0); /* still writing */
        h_close_reset(fd);
        H_RUN_UNTIL(loop, g_srv.closed >= 1, 5000);
        h_run_for(loop, 20);
        assert_int_equal(g_srv.closed, 1);
        switch (g_srv.reason) {
        case -ECONNRESET: n_reset++; break;
        case -EPIPE: n_pipe++; break;
        case NF_EOF: n_eof++; break;
        default:
            fail_msg("attempt %d: on_close reason %d (%s), expected -ECONNRESET/-EPIPE/NF_EOF", attempt, g_srv.reason,
                     nf_err_name(g_srv.reason));
        }
    }
    print_message("[ info     ] reasons over 5 tries: ECONNRESET=%d EPIPE=%d NF_EOF=%d\n", n_reset, n_pipe, n_eof);
    assert_true(n_reset >= 1);
    assert_int_equal(h_stats(loop).conns_open, 0);
    h_listener_finish(loop, l, 5000);
}

/* nf_conn_abort on a netframe client: the server side sees -ECONNRESET, the
 * aborting side closes with NF_CLOSE_LOCAL. */
static int g_cl_opened, g_cl_closed, g_cl_reason;

static void cl_on_open(nf_conn_t *c)
{
    g_cl_opened++;
    nf_conn_write(c, "0123456789", 10);
}

static void cl_on_close(nf_conn_t *c, int reason)
{
    (void)c;
    g_cl_closed++;
    g_cl_reason = reason;
}

static const nf_conn_handler_t cl_handler = {
    .on_open = cl_on_open,
    .on_read = h_ignore_read,
    .on_close = cl_on_close,
};

static void test_nf_abort_client(void **state)
{
    (void)state;
    reset_srv(0);
    g_cl_opened = g_cl_closed = 0;
    g_cl_reason = 12345;
    nf_loop_t *loop = h_loop_new();
    nf_listener_t *l;
    uint16_t port = h_listen(loop, NULL, &srv_handler, NULL, &l);

    nf_conn_t *c = h_connect(loop, "127.0.0.1", port, &cl_handler, NULL);
    H_RUN_UNTIL(loop, g_srv.got == 10, 5000);
    assert_int_equal(g_cl_opened, 1);
    nf_conn_abort(c);
    assert_true(g_cl_closed == 1 || nf_conn_is_closing(c));
    H_RUN_UNTIL(loop, g_cl_closed >= 1 && g_srv.closed >= 1, 5000);
    h_run_for(loop, 30);
    assert_int_equal(g_cl_closed, 1);
    H_ASSERT_ERR(g_cl_reason, NF_CLOSE_LOCAL);
    assert_int_equal(g_srv.closed, 1);
    H_ASSERT_ERR(g_srv.reason, -ECONNRESET);

    h_listener_finish(loop, l, 5000);
}

/* nf_conn_abort on the server: a plain client reading sees ECONNRESET. */
static void srv_abort_on_open(nf_conn_t *c)
{
    g_srv.opened++;
    g_srv.conn = c;
}

static void srv_abort_on_read(nf_conn_t *c, const char *data, size_t len)
{
    (void)data;
    g_srv.got += len;
    nf_conn_abort(c);
}

static const nf_conn_handler_t srv_abort_handler = {
    .on_open = srv_abort_on_open,
    .on_read = srv_abort_on_read,
    .on_close = srv_on_close,
};

static void test_nf_abort_server(void **state)
{
    (void)state;
    reset_srv(0);
    h_fixture_t f;
    h_fixture_start(&f, &srv_abort_handler, NULL);
    nf_loop_t *loop = f.loop;
    int fd = f.fd;
    assert_int_equal(h_send_all(fd, "x", 1, 5000), 0);
    H_RUN_UNTIL(loop, g_srv.closed >= 1, 5000);
    H_ASSERT_ERR(g_srv.reason, NF_CLOSE_LOCAL);
    int rc = h_recv_eof(fd, 5000);
    close(fd);
    H_ASSERT_ERR(rc, -ECONNRESET);

    h_fixture_finish(&f, 5000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reset_while_reading), cmocka_unit_test(test_reset_idle),
        cmocka_unit_test(test_reset_while_writing), cmocka_unit_test(test_nf_abort_client),
        cmocka_unit_test(test_nf_abort_server),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
