/* Flow control by count of writes in flight: max_inflight_writes; the cap on
 * held priority writes (max_priority_bytes) and the read hold on held output
 * (issue 13). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "net/transport.h" /* NF__C_RHOLD_FILTER: the read hold, seen from the test */
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
    static const nf_conn_handler_t h = {.on_open = on_open, .on_read = h_ignore_read, .on_close = on_close};
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
    h_listener_finish(loop, l, 5000);
}

/* 100 priority writes of 1000 bytes at once to a peer that does not read
 * yet: one goes down (max_inflight_bytes 1), 10 are held (max_priority_bytes
 * 10000), then the policy: drop-newest and drop-oldest drop the newest,
 * NF_FLOW_CLOSE closes with NF_ESLOW. Held output over high_water (4000)
 * holds reading until it drained to low_water. */
static int prio_ok, prio_held, prio_dropped, prio_slow, prio_closed, prio_reason;
static nf_conn_t *prio_conn;
static nf_flow_stats_t prio_st; /* right after the writes, before the loop sent anything */
static int prio_rhold;

static void p_open(nf_conn_t *c)
{
    prio_conn = c;
    for (int i = 0; i < 100; i++) {
        nf_buf_t *b = nf_buf_new(1000);
        assert_non_null(b);
        memset(b->base, 'A' + i % 26, 1000);
        b->len = 1000;
        b->flags = NF_BUF_PRIORITY;
        int r = nf_conn_write_buf(c, b);
        prio_ok += r == NF_WRITE_OK;
        prio_held += r == NF_WRITE_HELD;
        prio_dropped += r == NF_WRITE_DROPPED;
        if (r == NF_ESLOW) {
            prio_slow++;
            return;
        }
    }
    nf_flow_stats(c, &prio_st);
    prio_rhold = (c->flags & NF__C_RHOLD_FILTER) != 0;
}
static void p_close(nf_conn_t *c, int reason)
{
    (void)c;
    prio_reason = reason;
    prio_closed++;
    prio_conn = NULL;
}

/* Reads what is there without blocking (the loop runs in between); true
 * once `cap` bytes came. */
static int recv_some(int fd, char *buf, size_t cap, size_t *n)
{
    ssize_t r = recv(fd, buf + *n, cap - *n, MSG_DONTWAIT);
    if (r > 0)
        *n += (size_t)r;
    return *n == cap;
}

static void run_priority(nf_flow_policy_t policy)
{
    nf_loop_t *loop = h_loop_new();
    static const nf_conn_handler_t h = {.on_open = p_open, .on_read = h_ignore_read, .on_close = p_close};
    nf_flow_config_t fc = {.max_inflight_bytes = 1,
                           .max_held_bytes = 1000,
                           .high_water = 4000,
                           .low_water = 2000,
                           .max_priority_bytes = 10000,
                           .policy = policy};
    nf_filter_spec_t fs[] = {{&nf_flow_filter, &fc}};
    nf_listen_config_t cfg = {.handler = &h, .filters = fs, .nfilters = 1};
    nf_listener_t *l;
    uint16_t port = h_listen_cfg(loop, &cfg, &l);
    prio_ok = prio_held = prio_dropped = prio_slow = prio_closed = prio_reason = 0;
    prio_conn = NULL;
    int fd = h_tcp_connect("127.0.0.1", port);
    H_RUN_UNTIL(loop, prio_conn || prio_closed, 5000);
    assert_int_equal(prio_ok, 1);
    assert_int_equal(prio_held, 10);
    if (policy == NF_FLOW_CLOSE) {
        assert_int_equal(prio_slow, 1);
        H_RUN_UNTIL(loop, prio_closed == 1, 5000);
        H_ASSERT_ERR(prio_reason, NF_ESLOW);
    } else {
        assert_int_equal(prio_dropped, 89);
        assert_int_equal(prio_st.held_bytes, 10000);
        assert_int_equal(prio_st.writes_dropped, 89);
        assert_true(prio_rhold); /* 10000 held > high_water: reading held */
        static char got[11000];
        size_t n = 0;
        H_RUN_UNTIL(loop, recv_some(fd, got, sizeof got, &n), 5000);
        for (size_t i = 0; i < sizeof got; i++)
            assert_int_equal(got[i], 'A' + (int)(i / 1000));               /* the first 11, in order */
        H_RUN_UNTIL(loop, !(prio_conn->flags & NF__C_RHOLD_FILTER), 5000); /* drained: reading again */
        nf_flow_stats_t st;
        H_ASSERT_ERR(nf_flow_stats(prio_conn, &st), 0);
        assert_int_equal(st.held_bytes, 0);
        nf_conn_close(prio_conn);
        H_RUN_UNTIL(loop, prio_closed == 1, 5000);
    }
    close(fd);
    h_listener_finish(loop, l, 5000);
}

static void test_priority_cap_drop_newest(void **state) { (void)state, run_priority(NF_FLOW_DROP_NEWEST); }
static void test_priority_cap_drop_oldest(void **state) { (void)state, run_priority(NF_FLOW_DROP_OLDEST); }
static void test_priority_cap_close(void **state) { (void)state, run_priority(NF_FLOW_CLOSE); }

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_inflight_writes), cmocka_unit_test(test_priority_cap_drop_newest),
        cmocka_unit_test(test_priority_cap_drop_oldest), cmocka_unit_test(test_priority_cap_close)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
