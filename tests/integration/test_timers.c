/* Integration: timers fire in due order (ties in arming order), stop means
 * never, repeat/restart work, and 100,000 timers keep exact order. */
#include "helpers.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct tt {
    nf_timer_t t;
    int id;
    uint64_t timeout;
    int fired;
    uint64_t fired_at; /* nf_loop_now() in the callback */
} tt_t;

static int g_order[64];
static int g_nfired;
static uint64_t g_t0;

static void record_cb(nf_timer_t *t)
{
    tt_t *x = t->data;
    x->fired++;
    x->fired_at = nf_loop_now(t->loop);
    if (g_nfired < 64)
        g_order[g_nfired] = x->id;
    g_nfired++;
}

static void arm(nf_loop_t *loop, tt_t *x, int id, uint64_t timeout, uint64_t repeat, nf_timer_cb cb)
{
    memset(x, 0, sizeof *x);
    nf_timer_init(loop, &x->t);
    x->t.data = x;
    x->id = id;
    x->timeout = timeout;
    H_ASSERT_ERR(nf_timer_start(&x->t, cb, timeout, repeat), 0);
    assert_true(nf_timer_active(&x->t));
}

static void test_timer_order(void **state)
{
    (void)state;
    nf_loop_t *loop = h_loop_new();
    g_nfired = 0;
    nf_loop_update_time(loop);
    g_t0 = nf_loop_now(loop);
    static const uint64_t timeouts[] = {50, 10, 30, 20, 40, 25, 25, 25, 25, 25};
    enum { N = sizeof timeouts / sizeof timeouts[0] };
    tt_t tt[N];
    for (int i = 0; i < N; i++)
        arm(loop, &tt[i], i, timeouts[i], 0, record_cb);
    assert_int_equal(nf_loop_alive(loop), N);
    assert_int_equal(h_stats(loop).timers_active, N);
    H_RUN_UNTIL(loop, g_nfired == N, 5000);
    static const int want[] = {1, 3, 5, 6, 7, 8, 9, 2, 4, 0};
    for (int i = 0; i < N; i++) {
        if (g_order[i] != want[i])
            fail_msg("fire #%d was timer %d (%llu ms), expected timer %d (%llu ms)", i, g_order[i],
                     (unsigned long long)timeouts[g_order[i]], want[i], (unsigned long long)timeouts[want[i]]);
    }
    for (int i = 0; i < N; i++) {
        assert_int_equal(tt[i].fired, 1);
        assert_false(nf_timer_active(&tt[i].t));
        if (tt[i].fired_at < g_t0 + tt[i].timeout)
            fail_msg("timer %d (%llu ms) fired early, after %llu ms", i, (unsigned long long)tt[i].timeout,
                     (unsigned long long)(tt[i].fired_at - g_t0));
    }
    assert_int_equal(nf_loop_alive(loop), 0);
    assert_int_equal(h_stats(loop).timers_active, 0);
    h_loop_finish(loop, 1000);
}

/* A timer armed with 0 ms fires on a later iteration, not inside start. */
static void test_timer_zero_not_inline(void **state)
{
    (void)state;
    nf_loop_t *loop = h_loop_new();
    g_nfired = 0;
    tt_t x;
    arm(loop, &x, 0, 0, 0, record_cb);
    assert_int_equal(x.fired, 0);
    H_RUN_UNTIL(loop, x.fired == 1, 2000);
    h_run_for(loop, 20);
    assert_int_equal(x.fired, 1);
    h_loop_finish(loop, 1000);
}

/* Stopped timers never fire: stopped before the loop runs, stopped from
 * another timer's callback, stopped twice, never started. */
static tt_t g_stop_tt[4];

static void stop_other_cb(nf_timer_t *t)
{
    record_cb(t);
    nf_timer_stop(&g_stop_tt[2].t);
    assert_false(nf_timer_active(&g_stop_tt[2].t));
}

static void test_timer_stop(void **state)
{
    (void)state;
    nf_loop_t *loop = h_loop_new();
    g_nfired = 0;
    tt_t *tt = g_stop_tt;
    arm(loop, &tt[0], 0, 10, 0, record_cb);
    arm(loop, &tt[1], 1, 20, 0, stop_other_cb);
    arm(loop, &tt[2], 2, 30, 0, record_cb);
    arm(loop, &tt[3], 3, 40, 0, record_cb);
    nf_timer_stop(&tt[0].t);
    assert_false(nf_timer_active(&tt[0].t));
    nf_timer_stop(&tt[0].t); /* twice is fine */
    nf_timer_t never;
    nf_timer_init(loop, &never);
    nf_timer_stop(&never); /* never armed: fine */
    assert_false(nf_timer_active(&never));
    assert_int_equal(nf_loop_alive(loop), 3);

    H_RUN_UNTIL(loop, tt[3].fired == 1, 5000);
    h_run_for(loop, 40);
    assert_int_equal(tt[0].fired, 0);
    assert_int_equal(tt[1].fired, 1);
    assert_int_equal(tt[2].fired, 0);
    assert_int_equal(tt[3].fired, 1);
    assert_int_equal(nf_loop_alive(loop), 0);
    h_loop_finish(loop, 1000);
}

/* A repeating timer stops itself from its callback after N fires; a one-shot
 * re-arms itself from its callback a few times. */
#define N_REPEAT 10
static uint64_t g_rep_times[N_REPEAT + 5];

static void repeat_cb(nf_timer_t *t)
{
    tt_t *x = t->data;
    if (x->fired < N_REPEAT + 5)
        g_rep_times[x->fired] = nf_loop_now(t->loop);
    x->fired++;
    if (x->fired == N_REPEAT) {
        nf_timer_stop(t);
        if (nf_timer_active(t))
            x->id = -1; /* reported below */
    }
}

static void rearm_cb(nf_timer_t *t)
{
    tt_t *x = t->data;
    x->fired++;
    if (x->fired < 3 && nf_timer_start(t, rearm_cb, 5, 0) != 0)
        x->id = -1;
}

static void test_timer_repeat(void **state)
{
    (void)state;
    nf_loop_t *loop = h_loop_new();
    nf_loop_update_time(loop);
    uint64_t t0 = nf_loop_now(loop);
    tt_t rep, re;
    arm(loop, &rep, 1, 5, 5, repeat_cb);
    arm(loop, &re, 2, 5, 0, rearm_cb);
    if (!h_run_until_idle(loop, 5000))
        fail_msg("timers still alive: repeat fired %d, rearm fired %d", rep.fired, re.fired);
    h_run_for(loop, 30);
    assert_int_equal(rep.fired, N_REPEAT);
    assert_int_equal(rep.id, 1); /* inactive after stopping itself */
    assert_false(nf_timer_active(&rep.t));
    assert_int_equal(re.fired, 3);
    assert_int_equal(re.id, 2);
    for (int i = 1; i < N_REPEAT; i++)
        assert_true(g_rep_times[i] >= g_rep_times[i - 1]);
    /* 10 fires every 5 ms starting at 5 ms: at least 50 ms. */
    if (g_rep_times[N_REPEAT - 1] < t0 + 50)
        fail_msg("10th repeat after %llu ms, expected >= 50", (unsigned long long)(g_rep_times[N_REPEAT - 1] - t0));
    h_loop_finish(loop, 1000);
}

/* Restarting moves the deadline, earlier or later. */
static tt_t g_rs[4];

static void restart_other_cb(nf_timer_t *t)
{
    record_cb(t);
    nf_timer_start(&g_rs[0].t, record_cb, 30, 0); /* 3000 ms -> now + 30 ms */
}

static void test_timer_restart(void **state)
{
    (void)state;
    nf_loop_t *loop = h_loop_new();
    g_nfired = 0;
    nf_loop_update_time(loop);
    uint64_t t0 = nf_loop_now(loop);
    /* Timing: every instant is the loop's clock; the timer moved earlier
     * starts at 3 s (not 300 ms) so that "fired at its new deadline, not the
     * old one" holds even when a loaded machine stalls this thread for
     * hundreds of ms. */
    arm(loop, &g_rs[0], 0, 3000, 0, record_cb);
    arm(loop, &g_rs[1], 1, 20, 0, restart_other_cb);
    arm(loop, &g_rs[2], 2, 20, 0, record_cb);
    H_ASSERT_ERR(nf_timer_start(&g_rs[2].t, record_cb, 100, 0), 0); /* later */
    arm(loop, &g_rs[3], 3, 10, 10, record_cb);
    H_ASSERT_ERR(nf_timer_start(&g_rs[3].t, record_cb, 70, 0), 0); /* repeat -> one-shot */
    assert_int_equal(nf_loop_alive(loop), 4);
    if (!h_run_until_idle(loop, 5000))
        fail_msg("timers still alive after 5 s");
    h_run_for(loop, 20);
    for (int i = 0; i < 4; i++)
        assert_int_equal(g_rs[i].fired, 1);
    uint64_t a0 = g_rs[0].fired_at - t0, a1 = g_rs[1].fired_at - t0;
    uint64_t a2 = g_rs[2].fired_at - t0, a3 = g_rs[3].fired_at - t0;
    if (a0 < a1 + 30 || a0 >= 3000)
        fail_msg("timer moved from 3000 ms to (%llu + 30) ms fired after %llu ms", (unsigned long long)a1,
                 (unsigned long long)a0);
    if (a2 < 100)
        fail_msg("timer restarted to 100 ms fired after %llu ms", (unsigned long long)a2);
    if (a3 < 70)
        fail_msg("timer restarted to 70 ms fired after %llu ms", (unsigned long long)a3);
    assert_int_equal(g_order[0], 1);
    h_loop_finish(loop, 1000);
}

/* 100,000 timers, random timeouts 0..200 ms. */
#define N_MANY 100000

typedef struct mt {
    nf_timer_t t;
    uint32_t timeout;
    uint32_t idx;
    uint64_t due; /* the loop time it was armed at + timeout */
} mt_t;

static struct {
    uint64_t fired;
    uint64_t last_due;
    uint32_t last_idx;
    int have_last;
    uint64_t order_errors, early;
    char first_error[200];
} g_many;

/* Due order: by due time, ties in arming order. */
static void many_cb(nf_timer_t *t)
{
    mt_t *m = t->data;
    if (g_many.have_last && (m->due < g_many.last_due || (m->due == g_many.last_due && m->idx < g_many.last_idx))) {
        if (!g_many.order_errors)
            snprintf(g_many.first_error, sizeof g_many.first_error,
                     "timer #%u (due %llu) fired after timer #%u (due %llu)", m->idx,
                     (unsigned long long)(m->due - g_t0), g_many.last_idx,
                     (unsigned long long)(g_many.last_due - g_t0));
        g_many.order_errors++;
    }
    if (nf_loop_now(t->loop) < m->due)
        g_many.early++;
    g_many.have_last = 1;
    g_many.last_due = m->due;
    g_many.last_idx = m->idx;
    g_many.fired++;
}

static void test_timer_100k(void **state)
{
    (void)state;
    nf_loop_t *loop = h_loop_new();
    memset(&g_many, 0, sizeof g_many);
    mt_t *ms = calloc(N_MANY, sizeof *ms);
    assert_non_null(ms);
    uint64_t rng = 0x9E3779B97F4A7C15ull;
    nf_loop_update_time(loop);
    g_t0 = nf_loop_now(loop);
    for (uint32_t i = 0; i < N_MANY; i++) {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        ms[i].timeout = (uint32_t)(rng % 201);
        ms[i].idx = i;
        nf_timer_init(loop, &ms[i].t);
        ms[i].t.data = &ms[i];
        int rc = nf_timer_start(&ms[i].t, many_cb, ms[i].timeout, 0);
        if (rc != 0)
            fail_msg("nf_timer_start #%u = %d", i, rc);
        /* The timer counts from the loop's time as of arming (which the
         * library may refresh while arming from outside the loop). */
        ms[i].due = nf_loop_now(loop) + ms[i].timeout;
    }
    assert_int_equal(h_stats(loop).timers_active, N_MANY);
    assert_int_equal(nf_loop_alive(loop), N_MANY);
    uint64_t start = h_now_ms();
    if (!h_run_until_idle(loop, 15000))
        fail_msg("only %llu of %d timers fired in 15 s", (unsigned long long)g_many.fired, N_MANY);
    print_message("[ info     ] 100k timers done in %llu ms\n", (unsigned long long)(h_now_ms() - start));
    if (g_many.order_errors)
        fail_msg("%llu out-of-order fires; first: %s", (unsigned long long)g_many.order_errors, g_many.first_error);
    assert_int_equal(g_many.fired, N_MANY);
    assert_int_equal(g_many.early, 0);
    assert_int_equal(nf_loop_alive(loop), 0);
    assert_int_equal(h_stats(loop).timers_active, 0);
    for (uint32_t i = 0; i < N_MANY; i += 997)
        assert_false(nf_timer_active(&ms[i].t));
    h_loop_finish(loop, 1000);
    free(ms);
}

/* NF_RUN_DEFAULT returns 0 once the last timer has fired. */
static void test_timer_run_default(void **state)
{
    (void)state;
    nf_loop_t *loop = h_loop_new();
    g_nfired = 0;
    tt_t tt[3];
    nf_loop_update_time(loop); /* timers count from the loop's cached time */
    uint64_t t0 = nf_loop_now(loop);
    for (int i = 0; i < 3; i++)
        arm(loop, &tt[i], i, 10u * (unsigned)(i + 1), 0, record_cb);
    alarm(20); /* a hang here would otherwise last until ctest's timeout */
    int rc = nf_loop_run(loop, NF_RUN_DEFAULT);
    alarm(0);
    H_ASSERT_ERR(rc, 0);
    assert_int_equal(g_nfired, 3);
    /* Timing: on the loop's own clock (the one the timers run on) the last
     * timer cannot fire before 30 ms: no slack for a loaded machine needed. */
    assert_true(tt[2].fired_at - t0 >= 30);
    assert_int_equal(nf_loop_alive(loop), 0);
    assert_int_equal(nf_loop_free(loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_timer_order),       cmocka_unit_test(test_timer_zero_not_inline),
        cmocka_unit_test(test_timer_stop),        cmocka_unit_test(test_timer_repeat),
        cmocka_unit_test(test_timer_restart),     cmocka_unit_test(test_timer_100k),
        cmocka_unit_test(test_timer_run_default),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
