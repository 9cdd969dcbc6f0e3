/* Integration: the peer closes while the server is in the middle of writing
 * 64 MiB. The server's connection closes exactly once with an error (or EOF)
 * reason, nothing crashes (no SIGPIPE), and the loop goes on serving. */
#include "helpers.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BLAST_CHUNK  (1u << 20)
#define BLAST_CHUNKS 64
#define BLAST_TOTAL  ((uint64_t)BLAST_CHUNK * BLAST_CHUNKS)
#define PEER_READS   (64u * 1024)

/* Server: the first connection gets 64 MiB; later connections echo. */
typedef struct srv {
    int opened;
    int blast_closed;
    int blast_reason;
    int blast_write_errors;
    int echo_closed;
    int echo_reason;
} srv_t;

static srv_t g_srv;
static char *g_chunk;

static void srv_on_open(nf_conn_t *c)
{
    g_srv.opened++;
    if (g_srv.opened == 1) {
        nf_conn_set_data(c, &g_srv.blast_closed);
        for (unsigned i = 0; i < BLAST_CHUNKS; i++)
            if (nf_conn_write(c, g_chunk, BLAST_CHUNK) != 0)
                g_srv.blast_write_errors++;
    } else {
        nf_conn_set_data(c, &g_srv.echo_closed);
    }
}

static void srv_on_read(nf_conn_t *c, const char *data, size_t len)
{
    if (nf_conn_get_data(c) == &g_srv.echo_closed)
        nf_conn_write(c, data, len);
}

static void srv_on_close(nf_conn_t *c, int reason)
{
    if (nf_conn_get_data(c) == &g_srv.blast_closed) {
        g_srv.blast_closed++;
        g_srv.blast_reason = reason;
    } else {
        g_srv.echo_closed++;
        g_srv.echo_reason = reason;
    }
}

static const nf_conn_handler_t srv_handler = {
    .on_open = srv_on_open,
    .on_read = srv_on_read,
    .on_close = srv_on_close,
};

static int is_peer_gone_reason(int r) { return r == -EPIPE || r == -ECONNRESET || r == NF_EOF; }

/* ---- peers --------------------------------------------------------------- */

typedef struct peer {
    uint16_t port;
    h_result_t res;
} peer_t;

static void *reader_then_close_thread(void *arg)
{
    peer_t *p = arg;
    int fd = h_peer_connect(&p->res, "127.0.0.1", p->port);
    if (fd >= 0) {
        char *buf = malloc(PEER_READS);
        ssize_t n = h_recv_full(fd, buf, PEER_READS, 10000);
        if (n != (ssize_t)PEER_READS)
            h_result_fail(&p->res, "read %zd of %u bytes", n, PEER_READS);
        else if (h_pattern_check(buf, PEER_READS, 0, 42) != SIZE_MAX)
            h_result_fail(&p->res, "wrong bytes in the first 64 KiB");
        free(buf);
        close(fd); /* unread data in the receive queue: the kernel sends a RST */
    }
    return h_peer_done(&p->res);
}

static void check_second_client(nf_loop_t *loop, uint16_t port)
{
    static h_echo_client_t p2;
    memset(&p2, 0, sizeof p2);
    p2.port = port;
    p2.size = 4096, p2.rounds = 1, p2.seed = 9, p2.timeout_ms = 10000;
    pthread_t t2 = h_thread_start(h_echo_client_thread, &p2);
    H_RUN_UNTIL(loop, atomic_load(&p2.res.done) && g_srv.echo_closed == 1, 15000);
    h_thread_join(t2, 5000);
    H_ASSERT_PEER_OK(&p2.res);
    H_ASSERT_ERR(g_srv.echo_reason, NF_EOF);
}

static void test_peer_close_mid_write(void **state)
{
    (void)state;
    memset(&g_srv, 0, sizeof g_srv);
    nf_loop_t *loop = h_loop_new();
    nf_listener_t *l;
    uint16_t port = h_listen(loop, NULL, &srv_handler, NULL, &l);

    static peer_t p1;
    memset(&p1, 0, sizeof p1);
    p1.port = port;
    pthread_t t1 = h_thread_start(reader_then_close_thread, &p1);
    H_RUN_UNTIL(loop, atomic_load(&p1.res.done) && g_srv.blast_closed >= 1, 15000);
    h_thread_join(t1, 5000);
    H_ASSERT_PEER_OK(&p1.res);
    h_run_for(loop, 50); /* a second close callback would show up here */

    assert_int_equal(g_srv.blast_write_errors, 0);
    assert_int_equal(g_srv.blast_closed, 1);
    if (!is_peer_gone_reason(g_srv.blast_reason))
        fail_msg("on_close reason %d (%s), expected -EPIPE, -ECONNRESET or NF_EOF", g_srv.blast_reason,
                 nf_err_name(g_srv.blast_reason));
    nf_loop_stats_t s = h_stats(loop);
    /* The peer really did leave mid-write. */
    assert_true(s.bytes_out < BLAST_TOTAL);
    assert_int_equal(s.conns_open, 0);
    print_message("[ info     ] reason=%s bytes_out=%llu of %llu\n", nf_err_name(g_srv.blast_reason),
                  (unsigned long long)s.bytes_out, (unsigned long long)BLAST_TOTAL);

    check_second_client(loop, port);

    h_listener_finish(loop, l, 5000);
}

/* The same with a netframe peer on the same loop that reads 64 KiB and then
 * closes with data still arriving. */
static int g_cl_closed, g_cl_reason;
static size_t g_cl_got;

static void cl_on_open(nf_conn_t *c) { (void)c; }

static void cl_on_read(nf_conn_t *c, const char *data, size_t len)
{
    (void)data;
    g_cl_got += len;
    if (g_cl_got >= PEER_READS && !nf_conn_is_closing(c))
        nf_conn_close(c);
}

static void cl_on_close(nf_conn_t *c, int reason)
{
    (void)c;
    g_cl_closed++;
    g_cl_reason = reason;
}

static const nf_conn_handler_t cl_handler = {
    .on_open = cl_on_open,
    .on_read = cl_on_read,
    .on_close = cl_on_close,
};

static void test_nf_peer_close_mid_write(void **state)
{
    (void)state;
    memset(&g_srv, 0, sizeof g_srv);
    g_cl_closed = 0;
    g_cl_reason = 12345;
    g_cl_got = 0;
    nf_loop_t *loop = h_loop_new();
    nf_listener_t *l;
    uint16_t port = h_listen(loop, NULL, &srv_handler, NULL, &l);

    h_connect(loop, "127.0.0.1", port, &cl_handler, NULL);
    H_RUN_UNTIL(loop, g_cl_closed >= 1 && g_srv.blast_closed >= 1, 15000);
    h_run_for(loop, 50);

    assert_int_equal(g_cl_closed, 1);
    H_ASSERT_ERR(g_cl_reason, NF_CLOSE_LOCAL);
    assert_true(g_cl_got >= PEER_READS);
    assert_int_equal(g_srv.blast_closed, 1);
    if (!is_peer_gone_reason(g_srv.blast_reason))
        fail_msg("on_close reason %d (%s), expected -EPIPE, -ECONNRESET or NF_EOF", g_srv.blast_reason,
                 nf_err_name(g_srv.blast_reason));
    nf_loop_stats_t s = h_stats(loop);
    assert_int_equal(s.conns_open, 0);
    assert_int_equal(s.conns_closed, 2);

    check_second_client(loop, port);

    h_listener_finish(loop, l, 5000);
}

static int setup(void **state)
{
    (void)state;
    g_chunk = malloc(BLAST_CHUNK);
    if (!g_chunk)
        return -1;
    h_pattern_fill(g_chunk, BLAST_CHUNK, 0, 42);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    free(g_chunk);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_peer_close_mid_write),
        cmocka_unit_test(test_nf_peer_close_mid_write),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
