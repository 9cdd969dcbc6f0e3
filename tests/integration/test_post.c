/* Integration: the cross-thread post queue. Posts from each thread run in
 * order, none is lost, a post wakes a sleeping loop, and a pending post keeps
 * the loop alive. */
#include "helpers.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define N_THREADS 4
#define N_ITEMS   10000

typedef struct item {
    int thread;
    int seq;
} item_t;

static item_t g_items[N_THREADS][N_ITEMS];
static int g_next[N_THREADS];
static int g_total, g_order_errors;
static char g_first_error[200];
static int g_guard_fired;
static pthread_t g_loop_thread;
static int g_wrong_thread;

typedef struct poster {
    nf_loop_t *loop;
    int thread;
    atomic_int *go;
    h_result_t res;
} poster_t;

static void item_fn(nf_loop_t *loop, void *arg)
{
    item_t *it = arg;
    if (!pthread_equal(pthread_self(), g_loop_thread))
        g_wrong_thread++;
    if (it->seq != g_next[it->thread]) {
        if (!g_order_errors)
            snprintf(g_first_error, sizeof g_first_error, "thread %d: item %d ran when %d was expected", it->thread,
                     it->seq, g_next[it->thread]);
        g_order_errors++;
    }
    g_next[it->thread] = it->seq + 1;
    g_total++;
    if (g_total == N_THREADS * N_ITEMS)
        nf_loop_stop(loop);
}

static void *poster_thread(void *arg)
{
    poster_t *p = arg;
    while (!atomic_load(p->go))
        ; /* start together */
    for (int i = 0; i < N_ITEMS; i++) {
        item_t *it = &g_items[p->thread][i];
        it->thread = p->thread;
        it->seq = i;
        int rc = nf_loop_post(p->loop, item_fn, it);
        if (rc != 0) {
            h_result_fail(&p->res, "thread %d: nf_loop_post #%d = %d", p->thread, i, rc);
            break;
        }
    }
    return h_peer_done(&p->res);
}

static void guard_cb(nf_timer_t *t)
{
    g_guard_fired = 1;
    nf_loop_stop(t->loop);
}

static void test_post_from_threads(void **state)
{
    (void)state;
    nf_loop_t *loop = h_loop_new();
    memset(g_next, 0, sizeof g_next);
    g_total = g_order_errors = g_guard_fired = g_wrong_thread = 0;
    g_loop_thread = pthread_self();

    /* The guard keeps the loop alive (and blocked in the kernel) while the
     * threads post, and ends the run if posts are lost or never wake it. */
    nf_timer_t guard;
    nf_timer_init(loop, &guard);
    H_ASSERT_ERR(nf_timer_start(&guard, guard_cb, 15000, 0), 0);

    static poster_t ps[N_THREADS];
    atomic_int go = 0;
    pthread_t th[N_THREADS];
    for (int i = 0; i < N_THREADS; i++) {
        memset(&ps[i], 0, sizeof ps[i]);
        ps[i].loop = loop;
        ps[i].thread = i;
        ps[i].go = &go;
        th[i] = h_thread_start(poster_thread, &ps[i]);
    }
    atomic_store(&go, 1);
    uint64_t t0 = h_now_ms();
    int rc = nf_loop_run(loop, NF_RUN_DEFAULT); /* returns on the last item's nf_loop_stop */
    uint64_t took = h_now_ms() - t0;
    assert_true(rc >= 0);
    for (int i = 0; i < N_THREADS; i++) {
        h_thread_join(th[i], 5000);
        H_ASSERT_PEER_OK(&ps[i].res);
    }
    if (g_guard_fired)
        fail_msg("guard fired after %llu ms: only %d of %d posts ran", (unsigned long long)took, g_total,
                 N_THREADS * N_ITEMS);
    nf_timer_stop(&guard);
    if (g_order_errors)
        fail_msg("%d posts out of order; first: %s", g_order_errors, g_first_error);
    assert_int_equal(g_total, N_THREADS * N_ITEMS);
    for (int i = 0; i < N_THREADS; i++)
        assert_int_equal(g_next[i], N_ITEMS);
    assert_int_equal(g_wrong_thread, 0);
    print_message("[ info     ] %d posts in %llu ms\n", g_total, (unsigned long long)took);
    h_loop_finish(loop, 2000);
}

/* A loop asleep with nothing due for 10 s is woken by a post. */
typedef struct waker {
    nf_loop_t *loop;
    h_result_t res;
} waker_t;

static int g_woken;

static void wake_fn(nf_loop_t *loop, void *arg)
{
    nf_timer_t *guard = arg;
    g_woken++;
    nf_timer_stop(guard);
    nf_loop_stop(loop);
}

static nf_timer_t g_wake_guard;

static void *waker_thread(void *arg)
{
    waker_t *w = arg;
    h_sleep_ms(100);
    int rc = nf_loop_post(w->loop, wake_fn, &g_wake_guard);
    if (rc != 0)
        h_result_fail(&w->res, "nf_loop_post = %d", rc);
    return h_peer_done(&w->res);
}

static void test_post_wakes_loop(void **state)
{
    (void)state;
    nf_loop_t *loop = h_loop_new();
    g_woken = g_guard_fired = 0;
    nf_timer_init(loop, &g_wake_guard);
    H_ASSERT_ERR(nf_timer_start(&g_wake_guard, guard_cb, 10000, 0), 0);
    static waker_t w;
    memset(&w, 0, sizeof w);
    w.loop = loop;
    pthread_t t = h_thread_start(waker_thread, &w);
    uint64_t t0 = h_now_ms();
    int rc = nf_loop_run(loop, NF_RUN_DEFAULT);
    uint64_t took = h_now_ms() - t0;
    h_thread_join(t, 5000);
    H_ASSERT_PEER_OK(&w.res);
    assert_true(rc >= 0);
    assert_int_equal(g_guard_fired, 0);
    assert_int_equal(g_woken, 1);
    if (took > 3000)
        fail_msg("the post took %llu ms to wake the loop", (unsigned long long)took);
    h_loop_finish(loop, 2000);
}

/* A post keeps the loop alive until it ran; posts made from a post callback
 * run later, in order, never inline. */
static int g_chain[8], g_nchain, g_inline_violation, g_in_fn;

static void chain_fn(nf_loop_t *loop, void *arg)
{
    int v = (int)(intptr_t)arg;
    if (g_in_fn)
        g_inline_violation++;
    g_in_fn = 1;
    if (g_nchain < 8)
        g_chain[g_nchain] = v;
    g_nchain++;
    if (v == 1) {
        nf_loop_post(loop, chain_fn, (void *)(intptr_t)3);
        nf_loop_post(loop, chain_fn, (void *)(intptr_t)4);
    }
    g_in_fn = 0;
}

static void test_post_keeps_alive(void **state)
{
    (void)state;
    nf_loop_t *loop = h_loop_new();
    g_nchain = g_inline_violation = g_in_fn = 0;
    assert_int_equal(nf_loop_alive(loop), 0);
    H_ASSERT_ERR(nf_loop_post(loop, chain_fn, (void *)(intptr_t)1), 0);
    H_ASSERT_ERR(nf_loop_post(loop, chain_fn, (void *)(intptr_t)2), 0);
    assert_int_equal(g_nchain, 0); /* not run inline */
    assert_true(nf_loop_alive(loop) >= 1);
    alarm(20); /* a hang here would otherwise last until ctest's timeout */
    int rc = nf_loop_run(loop, NF_RUN_DEFAULT);
    alarm(0);
    H_ASSERT_ERR(rc, 0);
    assert_int_equal(g_nchain, 4);
    assert_int_equal(g_inline_violation, 0);
    assert_int_equal(g_chain[0], 1);
    assert_int_equal(g_chain[1], 2);
    assert_int_equal(g_chain[2], 3);
    assert_int_equal(g_chain[3], 4);
    assert_int_equal(nf_loop_alive(loop), 0);
    assert_int_equal(nf_loop_free(loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_post_from_threads),
        cmocka_unit_test(test_post_wakes_loop),
        cmocka_unit_test(test_post_keeps_alive),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
