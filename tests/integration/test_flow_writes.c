/* Flow control by count of writes in flight: max_inflight_writes. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "integration/helpers.h"

static int results[5];
static int closed;

static void on_open(nf_conn_t *c)
{
    /* Written before the loop flushed anything: the transport queue holds
     * the first two as two buffers, the others wait in the filter. */
    for (int i = 0; i < 5; i++) {
        char msg[8];
        memset(msg, 'a' + i, sizeof(msg));
        results[i] = nf_conn_write(c, msg, sizeof(msg));
    }
    nf_conn_end(c); /* graceful: held writes still go out, then FIN */
}
static void on_read(nf_conn_t *c, const char *d, size_t n) { (void)c, (void)d, (void)n; }
static void on_close(nf_conn_t *c, int reason)
{
    (void)c;
    assert_int_equal(reason, NF_CLOSE_LOCAL);
    closed++;
}

static void test_inflight_writes(void **state)
{
    (void)state;
    nf_loop_t *loop = h_loop_new();
    static const nf_conn_handler_t h = {.on_open = on_open, .on_read = on_read, .on_close = on_close};
    static const nf_flow_config_t fc = {.max_inflight_bytes = 1 << 20, .max_inflight_writes = 2};
    static const nf_filter_spec_t fs[] = {{&nf_flow_filter, &fc}};
    nf_listen_config_t cfg = {.handler = &h, .filters = fs, .nfilters = 1};
    nf_listener_t *l;
    uint16_t port = h_listen_cfg(loop, &cfg, &l);
    int fd = h_tcp_connect("127.0.0.1", port);
    closed = 0;
    H_RUN_UNTIL(loop, closed == 1, 5000);
    assert_int_equal(results[0], NF_WRITE_OK);
    assert_int_equal(results[1], NF_WRITE_OK);
    for (int i = 2; i < 5; i++)
        assert_int_equal(results[i], NF_WRITE_HELD);
    char got[40];
    assert_int_equal(h_recv_full(fd, got, sizeof(got), 5000), (ssize_t)sizeof(got));
    for (int i = 0; i < 40; i++)
        assert_int_equal(got[i], 'a' + i / 8); /* all five, in order */
    assert_int_equal(h_recv_eof(fd, 5000), 0);
    close(fd);
    nf_listener_close(l, NULL);
    h_loop_finish(loop, 5000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_inflight_writes)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
