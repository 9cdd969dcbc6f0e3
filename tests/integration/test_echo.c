/* Integration: echo over loopback, plain-socket and netframe clients, sizes
 * from 1 byte to 16 MiB, every byte verified. */
#include "helpers.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const size_t k_sizes[] = {1, 100, 4096, 65536, 1u << 20, 16u << 20};
#define N_SIZES (sizeof k_sizes / sizeof k_sizes[0])

static uint64_t total_sizes(void)
{
    uint64_t t = 0;
    for (size_t i = 0; i < N_SIZES; i++)
        t += k_sizes[i];
    return t;
}

static void run_plain_echo(nf_loop_t *loop, int nclients, const size_t *sizes, size_t nsizes)
{
    h_echo_reset();
    nf_listener_t *l;
    uint16_t port = h_listen(loop, "127.0.0.1", &h_echo_handler, NULL, &l);

    h_echo_client_t *pcs = calloc((size_t)nclients, sizeof *pcs);
    pthread_t *th = calloc((size_t)nclients, sizeof *th);
    assert_non_null(pcs);
    assert_non_null(th);
    uint64_t total = 0;
    for (size_t i = 0; i < nsizes; i++)
        total += sizes[i];
    total *= (uint64_t)nclients;

    for (int i = 0; i < nclients; i++) {
        pcs[i].ip = "127.0.0.1";
        pcs[i].port = port;
        pcs[i].sizes = sizes;
        pcs[i].nsizes = nsizes;
        pcs[i].seed = 1000u * (uint32_t)i + 7;
        th[i] = h_thread_start(h_echo_client_thread, &pcs[i]);
    }
    int ok;
    H_RUN_WAIT(ok, loop, h_echo_clients_done(pcs, nclients) && h_echo.closed >= nclients, 12000);
    if (!ok) {
        for (int i = 0; i < nclients; i++)
            if (pcs[i].res.failed)
                fail_msg("client %d: %s", i, pcs[i].res.msg);
        nf_loop_stats_t st = h_stats(loop);
        fail_msg("echo not finished after 12 s: server echoed %llu bytes, bytes_out %llu, "
                 "closed %d of %d",
                 (unsigned long long)h_echo.bytes, (unsigned long long)st.bytes_out, h_echo.closed, nclients);
    }
    for (int i = 0; i < nclients; i++) {
        h_thread_join(th[i], 5000);
        H_ASSERT_PEER_OK(&pcs[i].res);
    }
    /* A few more iterations: a duplicate close callback would show here. */
    h_run_for(loop, 20);

    assert_int_equal(h_echo.opened, nclients);
    assert_int_equal(h_echo.closed, nclients);
    assert_int_equal(h_echo.close_eof, nclients);
    assert_int_equal(h_echo.write_errors, 0);
    assert_int_equal(h_echo.bytes, total);

    nf_loop_stats_t s = h_stats(loop);
    assert_int_equal(s.conns_accepted, nclients);
    assert_int_equal(s.conns_open, 0);
    assert_int_equal(s.conns_closed, nclients);
    assert_int_equal(s.bytes_in, total);
    assert_int_equal(s.bytes_out, total);
    assert_int_equal(s.bufs_kept, 0);
    print_message("[ info     ] reads=%llu writes=%llu bufs_starved=%llu iterations=%llu\n",
                  (unsigned long long)s.reads, (unsigned long long)s.writes, (unsigned long long)s.bufs_starved,
                  (unsigned long long)s.iterations);

    nf_listener_close(l, NULL);
    free(pcs);
    free(th);
}

static void test_echo_plain_client(void **state)
{
    (void)state;
    nf_loop_t *loop = h_loop_new();
    run_plain_echo(loop, 1, k_sizes, N_SIZES);
    h_loop_finish(loop, 5000);
}

/* The io_uring fallback read path (poll + read) must behave the same. */
static void test_echo_plain_client_no_bufring(void **state)
{
    (void)state;
    nf_loop_config_t cfg;
    nf_loop_config_init(&cfg);
    cfg.uring_no_bufring = 1;
    nf_loop_t *loop = h_loop_new_cfg(&cfg);
    run_plain_echo(loop, 1, k_sizes, N_SIZES);
    h_loop_finish(loop, 5000);
}

/* A tiny read-buffer ring runs dry under 4 concurrent streams: every byte
 * must still arrive, in order. */
static void test_echo_tiny_bufring(void **state)
{
    (void)state;
    nf_loop_config_t cfg;
    nf_loop_config_init(&cfg);
    cfg.buf_count = 2;
    cfg.buf_size = 1024;
    nf_loop_t *loop = h_loop_new_cfg(&cfg);
    static const size_t sizes[] = {1, 5000, 1u << 20};
    run_plain_echo(loop, 4, sizes, 3);
    h_loop_finish(loop, 5000);
}

/* ---- netframe client ---------------------------------------------------- */

typedef struct nf_client {
    size_t idx; /* message being echoed */
    size_t got; /* bytes of it echoed so far */
    int opened, closed, reason;
    int errors;
    char msg[256];
    uint64_t bytes;
} nf_client_t;

static nf_client_t g_ncl;

static void ncl_fail(nf_conn_t *c, const char *what)
{
    if (!g_ncl.errors)
        snprintf(g_ncl.msg, sizeof g_ncl.msg, "%s", what);
    g_ncl.errors++;
    nf_conn_close(c);
}

static void ncl_send_current(nf_conn_t *c)
{
    size_t size = k_sizes[g_ncl.idx];
    char *p = malloc(size);
    if (!p) {
        ncl_fail(c, "malloc");
        return;
    }
    h_pattern_fill(p, size, 0, 500u + (uint32_t)g_ncl.idx);
    int rc = nf_conn_write(c, p, size);
    free(p); /* nf_conn_write copies */
    if (rc != 0)
        ncl_fail(c, "nf_conn_write failed");
}

static void ncl_on_open(nf_conn_t *c)
{
    g_ncl.opened++;
    if (nf_conn_get_data(c) != &g_ncl) {
        ncl_fail(c, "nf_conn_get_data != cfg.data");
        return;
    }
    ncl_send_current(c);
}

static void ncl_on_read(nf_conn_t *c, const char *data, size_t len)
{
    if (g_ncl.idx >= N_SIZES) {
        ncl_fail(c, "bytes after the last echo");
        return;
    }
    size_t size = k_sizes[g_ncl.idx];
    if (g_ncl.got + len > size) {
        snprintf(g_ncl.msg, sizeof g_ncl.msg, "message %zu: %zu bytes echoed, expected %zu", g_ncl.idx, g_ncl.got + len,
                 size);
        g_ncl.errors++;
        nf_conn_close(c);
        return;
    }
    size_t bad = h_pattern_check(data, len, g_ncl.got, 500u + (uint32_t)g_ncl.idx);
    if (bad != SIZE_MAX) {
        snprintf(g_ncl.msg, sizeof g_ncl.msg, "message %zu (size %zu): byte %zu differs", g_ncl.idx, size,
                 g_ncl.got + bad);
        g_ncl.errors++;
        nf_conn_close(c);
        return;
    }
    g_ncl.got += len;
    g_ncl.bytes += len;
    if (g_ncl.got == size) {
        g_ncl.idx++;
        g_ncl.got = 0;
        if (g_ncl.idx == N_SIZES)
            nf_conn_close(c);
        else
            ncl_send_current(c);
    }
}

static void ncl_on_close(nf_conn_t *c, int reason)
{
    (void)c;
    g_ncl.closed++;
    g_ncl.reason = reason;
}

static const nf_conn_handler_t ncl_handler = {
    .on_open = ncl_on_open,
    .on_read = ncl_on_read,
    .on_close = ncl_on_close,
};

static void test_echo_nf_client(void **state)
{
    (void)state;
    nf_loop_t *loop = h_loop_new();
    h_echo_reset();
    memset(&g_ncl, 0, sizeof g_ncl);
    nf_listener_t *l;
    uint16_t port = h_listen(loop, NULL, &h_echo_handler, NULL, &l);

    h_connect(loop, "127.0.0.1", port, &ncl_handler, &g_ncl);
    int ok;
    H_RUN_WAIT(ok, loop, g_ncl.closed == 1 && h_echo.closed == 1, 12000);
    if (!ok)
        fail_msg("netframe client stuck at message %zu (size %zu): %zu bytes echoed; errors %d "
                 "(%s); server echoed %llu bytes",
                 g_ncl.idx, g_ncl.idx < N_SIZES ? k_sizes[g_ncl.idx] : 0, g_ncl.got, g_ncl.errors, g_ncl.msg,
                 (unsigned long long)h_echo.bytes);
    h_run_for(loop, 20);

    if (g_ncl.errors)
        fail_msg("netframe client: %s", g_ncl.msg);
    uint64_t total = total_sizes();
    assert_int_equal(g_ncl.opened, 1);
    assert_int_equal(g_ncl.closed, 1);
    H_ASSERT_ERR(g_ncl.reason, NF_CLOSE_LOCAL);
    assert_int_equal(g_ncl.idx, N_SIZES);
    assert_int_equal(g_ncl.bytes, total);
    assert_int_equal(h_echo.opened, 1);
    assert_int_equal(h_echo.closed, 1);
    H_ASSERT_ERR(h_echo.last_reason, NF_EOF);
    assert_int_equal(h_echo.bytes, total);

    nf_loop_stats_t s = h_stats(loop);
    assert_int_equal(s.conns_accepted, 1);
    assert_int_equal(s.conns_connected, 1);
    assert_int_equal(s.conns_open, 0);
    assert_int_equal(s.conns_closed, 2);
    /* Both directions of both connections ran through this loop. */
    assert_int_equal(s.bytes_in, 2 * total);
    assert_int_equal(s.bytes_out, 2 * total);

    h_listener_finish(loop, l, 5000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_echo_plain_client),
        cmocka_unit_test(test_echo_nf_client),
        cmocka_unit_test(test_echo_plain_client_no_bufring),
        cmocka_unit_test(test_echo_tiny_bufring),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
