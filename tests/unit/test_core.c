/* Unit tests of the core pieces that need no peer: errors, addresses,
 * buffers, the timer heap's order, loop run modes and lifetime. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <netframe/netframe.h>

static void test_strerror(void **state)
{
    (void)state;
    assert_string_equal(nf_strerror(0), "ok");
    assert_string_equal(nf_err_name(NF_EOF), "NF_EOF");
    assert_string_equal(nf_err_name(-ECONNRESET), "ECONNRESET");
    assert_string_equal(nf_strerror(-ECONNREFUSED), "Connection refused");
    assert_non_null(nf_strerror(-99999));
}

static void test_addr(void **state)
{
    (void)state;
    nf_addr_t a;
    char buf[64];
    assert_int_equal(nf_addr_parse(&a, "127.0.0.1", 80), 0);
    assert_string_equal(nf_addr_format(&a, buf, sizeof(buf)), "127.0.0.1:80");
    assert_int_equal(nf_addr_parse(&a, "[::1]", 443), 0);
    assert_string_equal(nf_addr_format(&a, buf, sizeof(buf)), "[::1]:443");
    assert_int_equal(nf_addr_port(&a), 443);
    assert_int_equal(nf_addr_parse(&a, "localhost", 1), 0);
    assert_string_equal(nf_addr_format(&a, buf, sizeof(buf)), "127.0.0.1:1");
    assert_int_equal(nf_addr_parse(&a, "example.com", 1), NF_EADDR); /* never DNS */
    assert_int_equal(nf_addr_parse(&a, "300.1.1.1", 1), NF_EADDR);
    assert_int_equal(nf_addr_parse(&a, "[::1", 1), NF_EADDR);
}

static int freed;
static void count_free(void *base, void *arg)
{
    (void)base;
    (void)arg;
    freed++;
}

static void test_buf(void **state)
{
    (void)state;
    nf_buf_t *b = nf_buf_new(100);
    assert_non_null(b);
    assert_int_equal(b->cap, 100);
    assert_int_equal(b->len, 0);
    memset(b->base, 'x', 100); /* the whole capacity is usable (ASan checks) */
    nf_buf_ref(b);
    nf_buf_unref(b);
    nf_buf_unref(b);
    static char mem[10];
    freed = 0;
    b = nf_buf_wrap(mem, sizeof(mem), count_free, NULL);
    assert_int_equal(b->len, 10);
    nf_buf_ref(b);
    nf_buf_unref(b);
    assert_int_equal(freed, 0);
    nf_buf_unref(b);
    assert_int_equal(freed, 1);
    nf_buf_unref(NULL);
}

/* ---- timers: order under random arming and cancelling, as a unit ---------- */

struct rec {
    nf_timer_t t;
    uint64_t due;
    int fired;
    int stopped;
};
static uint64_t last_due;
static int order_ok = 1, fired_count;

static void on_timer(nf_timer_t *t)
{
    struct rec *r = t->data;
    if (r->due < last_due)
        order_ok = 0;
    last_due = r->due;
    r->fired++;
    fired_count++;
}

static void test_timer_heap_order(void **state)
{
    (void)state;
    nf_loop_t *loop;
    assert_int_equal(nf_loop_new(&loop, NULL), 0);
    enum { N = 20000 };
    struct rec *recs = calloc(N, sizeof(*recs));
    srand(7);
    for (int i = 0; i < N; i++) {
        nf_timer_init(loop, &recs[i].t);
        recs[i].t.data = &recs[i];
        uint64_t ms = (uint64_t)(rand() % 60);
        assert_int_equal(nf_timer_start(&recs[i].t, on_timer, ms, 0), 0);
        recs[i].due = recs[i].t.due;
    }
    for (int i = 0; i < N; i += 3) { /* cancel a third, from the middle of the heap */
        nf_timer_stop(&recs[i].t);
        recs[i].stopped = 1;
        assert_false(nf_timer_active(&recs[i].t));
    }
    nf_loop_stats_t st;
    nf_loop_stats(loop, &st);
    assert_int_equal(st.timers_active, N - (N + 2) / 3);
    last_due = 0;
    fired_count = 0;
    int guard = 0;
    while (nf_loop_alive(loop) > 0 && guard++ < 100000)
        nf_loop_run(loop, NF_RUN_ONCE);
    assert_true(order_ok);
    for (int i = 0; i < N; i++)
        assert_int_equal(recs[i].fired, recs[i].stopped ? 0 : 1);
    assert_int_equal(fired_count, N - (N + 2) / 3);
    assert_int_equal(nf_loop_free(loop), 0);
    free(recs);
}

/* ---- loop run modes ---------------------------------------------------------- */

static int ticks;
static void tick(nf_timer_t *t)
{
    if (++ticks == 3)
        nf_timer_stop(t); /* a repeating timer stops itself */
}

static void stop_loop(nf_loop_t *loop, void *arg)
{
    (void)arg;
    nf_loop_stop(loop);
}

static void test_run_modes(void **state)
{
    (void)state;
    nf_loop_t *loop;
    assert_int_equal(nf_loop_new(&loop, NULL), 0);
    /* nothing to do: every mode returns at once with 0 live handles */
    assert_int_equal(nf_loop_run(loop, NF_RUN_DEFAULT), 0);
    assert_int_equal(nf_loop_run(loop, NF_RUN_ONCE), 0);
    assert_int_equal(nf_loop_run(loop, NF_RUN_NOWAIT), 0);

    nf_timer_t t;
    nf_timer_init(loop, &t);
    ticks = 0;
    assert_int_equal(nf_timer_start(&t, tick, 5, 5), 0);
    assert_int_equal(nf_loop_run(loop, NF_RUN_NOWAIT), 1); /* not due yet */
    assert_int_equal(ticks, 0);
    assert_int_equal(nf_loop_run(loop, NF_RUN_DEFAULT), 0); /* runs until the timer stopped itself */
    assert_int_equal(ticks, 3);

    /* a post can stop a loop that still has work */
    assert_int_equal(nf_timer_start(&t, tick, 60000, 0), 0);
    assert_int_equal(nf_loop_post(loop, stop_loop, NULL), 0);
    assert_int_equal(nf_loop_run(loop, NF_RUN_DEFAULT), 1);
    nf_timer_stop(&t);
    assert_int_equal(nf_loop_alive(loop), 0);
    assert_string_not_equal(nf_loop_features(loop), "");
    assert_int_equal(nf_loop_free(loop), 0);
}

static void on_rd(nf_conn_t *c, const char *d, size_t n) { (void)c, (void)d, (void)n; }
static void on_cl(nf_conn_t *c, int r) { (void)c, (void)r; }
static const nf_conn_handler_t h = {.on_read = on_rd, .on_close = on_cl};
static int lclosed;
static void on_lclose(nf_listener_t *l) { (void)l, lclosed++; }

static void test_free_busy(void **state)
{
    (void)state;
    nf_loop_t *loop;
    assert_int_equal(nf_loop_new(&loop, NULL), 0);
    nf_listener_t *l;
    nf_listen_config_t lc = {.port = 0, .handler = &h};
    assert_int_equal(nf_listen(loop, &lc, &l), 0);
    nf_addr_t a;
    nf_listener_addr(l, &a);
    assert_true(nf_addr_port(&a) > 0);
    assert_int_equal(nf_loop_free(loop), -EBUSY); /* a listener is open */
    lclosed = 0;
    nf_listener_close(l, on_lclose);
    assert_int_equal(lclosed, 0); /* never from inside the call */
    for (int i = 0; i < 100 && nf_loop_alive(loop); i++)
        nf_loop_run(loop, NF_RUN_ONCE);
    assert_int_equal(lclosed, 1);
    assert_int_equal(nf_loop_free(loop), 0);

    /* same port twice without SO_REUSEPORT: the second listen fails cleanly */
    assert_int_equal(nf_loop_new(&loop, NULL), 0);
    assert_int_equal(nf_listen(loop, &lc, &l), 0);
    nf_listener_addr(l, &a);
    nf_listen_config_t lc2 = {.port = nf_addr_port(&a), .handler = &h};
    nf_listener_t *l2;
    assert_int_equal(nf_listen(loop, &lc2, &l2), -EADDRINUSE);
    nf_listen_config_t bad = {.host = "not-an-ip", .handler = &h};
    assert_int_equal(nf_listen(loop, &bad, &l2), NF_EADDR);
    nf_listener_close(l, NULL);
    while (nf_loop_alive(loop))
        nf_loop_run(loop, NF_RUN_ONCE);
    assert_int_equal(nf_loop_free(loop), 0);
}

static void test_backend_choice(void **state)
{
    (void)state;
    nf_loop_t *loop;
    nf_loop_config_t cfg;
    nf_loop_config_init(&cfg);
    cfg.backend = NF_BACKEND_EPOLL;
    assert_int_equal(nf_loop_new(&loop, &cfg), 0);
    assert_string_equal(nf_loop_backend_name(loop), "epoll");
    nf_loop_free(loop);
    const char *env = getenv("NF_BACKEND");
    assert_int_equal(nf_loop_new(&loop, NULL), 0);
    if (env && strcmp(env, "epoll") == 0)
        assert_string_equal(nf_loop_backend_name(loop), "epoll");
    if (env && strcmp(env, "uring") == 0)
        assert_string_equal(nf_loop_backend_name(loop), "io_uring");
    nf_loop_free(loop);
}

/* What the build has (netframe/config.h) is what a loop says it has, and
 * a build without io_uring refuses a loop that asks for it. */
static void test_build_features(void **state)
{
    (void)state;
    nf_loop_t *loop;
    assert_int_equal(nf_loop_new(&loop, NULL), 0);
    const char *f = strstr(nf_loop_features(loop), " build=");
    assert_non_null(f);
    assert_int_equal(strstr(f, "io_uring") != NULL, NF_HAVE_URING);
    assert_int_equal(strstr(f, "deflate") != NULL, NF_HAVE_DEFLATE);
    nf_loop_free(loop);
    nf_loop_config_t cfg;
    nf_loop_config_init(&cfg);
    cfg.backend = NF_BACKEND_URING;
    int err = nf_loop_new(&loop, &cfg);
    if (!NF_HAVE_URING)
        assert_int_equal(err, NF_EBACKEND);
    else if (err == 0)
        nf_loop_free(loop);
    assert_string_equal(nf_version(), NF_VERSION_STRING);
    assert_int_equal(nf_version_hex(), NF_VERSION_HEX);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_strerror),
        cmocka_unit_test(test_addr),
        cmocka_unit_test(test_buf),
        cmocka_unit_test(test_timer_heap_order),
        cmocka_unit_test(test_run_modes),
        cmocka_unit_test(test_free_busy),
        cmocka_unit_test(test_backend_choice),
        cmocka_unit_test(test_build_features),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
