/* Integration: the completion modes (block, poll, event), nf_loop_stop_async,
 * and a loop created on one thread and run on another (io_uring's
 * SINGLE_ISSUER rings are bound to the thread that first runs them).
 *
 * Event mode is driven only by poll() on nf_loop_fd() and NF_RUN_NOWAIT steps,
 * never by a ticking timer: a lost wake-up shows up as a timeout. */
#include "helpers.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static nf_loop_t *mode_loop(int mode, int sqpoll, unsigned max_events)
{
    nf_loop_config_t cfg;
    nf_loop_config_init(&cfg);
    cfg.mode = mode;
    cfg.sqpoll = sqpoll;
    cfg.max_events = max_events;
    nf_loop_t *loop = h_loop_new_cfg(&cfg);
    assert_int_equal(nf_loop_mode(loop), mode);
    static const char *const names[] = {"mode=block", "mode=poll", "mode=event"};
    if (!strstr(nf_loop_features(loop), names[mode]))
        fail_msg("features do not say %s: %s", names[mode], nf_loop_features(loop));
    if (mode == NF_MODE_EVENT)
        assert_true(nf_loop_fd(loop) >= 0);
    else
        assert_int_equal(nf_loop_fd(loop), -EINVAL);
    return loop;
}

/* ---- event-mode driving ---------------------------------------------------- */

static int fd_readable(int fd, int timeout_ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int r;
    do
        r = poll(&p, 1, timeout_ms);
    while (r < 0 && errno == EINTR);
    return r > 0;
}

/* One wake-up: waits for the loop's fd, runs one NOWAIT step. 1 if it ran. */
static int ev_step(nf_loop_t *loop, int timeout_ms)
{
    if (!fd_readable(nf_loop_fd(loop), timeout_ms))
        return 0;
    int r = nf_loop_run(loop, NF_RUN_NOWAIT);
    if (r < 0)
        fail_msg("nf_loop_run(NOWAIT) = %d (%s)", r, nf_err_name(r));
    return 1;
}

#define EV_RUN_UNTIL(loop, cond, timeout_ms)                                                                           \
    do {                                                                                                               \
        uint64_t dl_ = h_now_ms() + (timeout_ms);                                                                      \
        while (!(cond) && h_now_ms() < dl_)                                                                            \
            ev_step((loop), 50);                                                                                       \
        if (!(cond))                                                                                                   \
            fail_msg("event mode: timed out after %u ms waiting for: %s", (unsigned)(timeout_ms), #cond);              \
    } while (0)

static void ev_finish(nf_loop_t *loop)
{
    EV_RUN_UNTIL(loop, nf_loop_alive(loop) == 0, 5000);
    assert_int_equal(nf_loop_free(loop), 0);
}

/* ---- echo through threads, in every mode ------------------------------------- */

static void echo_in_mode(int mode, int sqpoll)
{
    enum { N = 4 };
    static const size_t sizes[] = {1, 100, 4096, 65536, 1u << 20};
    nf_loop_t *loop = mode_loop(mode, sqpoll, 0);
    h_echo_reset();
    nf_listener_t *l;
    uint16_t port = h_listen(loop, NULL, &h_echo_handler, NULL, &l);
    if (mode == NF_MODE_EVENT)
        nf_loop_run(loop, NF_RUN_NOWAIT); /* hand the accept to the kernel */
    h_echo_client_t cl[N];
    pthread_t th[N];
    memset(cl, 0, sizeof cl);
    for (int i = 0; i < N; i++) {
        cl[i].port = port;
        cl[i].sizes = sizes;
        cl[i].nsizes = sizeof sizes / sizeof sizes[0];
        cl[i].seed = 77u * (uint32_t)i + 3;
        cl[i].timeout_ms = 8000;
        th[i] = h_thread_start(h_echo_client_thread, &cl[i]);
    }
    if (mode == NF_MODE_EVENT) {
        EV_RUN_UNTIL(loop, h_echo_clients_done(cl, N) && h_echo.closed == N, 9000);
    } else {
        H_RUN_UNTIL(loop, h_echo_clients_done(cl, N) && h_echo.closed == N, 9000);
    }
    for (int i = 0; i < N; i++) {
        h_thread_join(th[i], 2000);
        H_ASSERT_PEER_OK(&cl[i].res);
    }
    assert_int_equal(h_echo.opened, N);
    assert_int_equal(h_echo.close_eof, N);
    assert_int_equal(h_echo.write_errors, 0);
    nf_listener_close(l, NULL);
    if (mode == NF_MODE_EVENT)
        ev_finish(loop);
    else
        h_loop_finish(loop, 5000);
}

static void test_echo_block(void **state) { (void)state, echo_in_mode(NF_MODE_BLOCK, 0); }
static void test_echo_poll(void **state) { (void)state, echo_in_mode(NF_MODE_POLL, 0); }
static void test_echo_poll_sqpoll(void **state) { (void)state, echo_in_mode(NF_MODE_POLL, 1); }
static void test_echo_event(void **state) { (void)state, echo_in_mode(NF_MODE_EVENT, 0); }

/* ---- event mode: nothing lost, nothing late ------------------------------------ */

/* Single-threaded: the test is the peer and the host loop. After each message
 * the loop's fd must become readable (else the completion was lost), and after
 * the steps that follow, whenever the fd is not readable, the whole echo must
 * already be on its way: it arrives with no further step. */
static void test_event_one_wakeup(void **state)
{
    (void)state;
    nf_loop_t *loop = mode_loop(NF_MODE_EVENT, 0, 0);
    int efd = nf_loop_fd(loop);
    h_echo_reset();
    nf_listener_t *l;
    uint16_t port = h_listen(loop, NULL, &h_echo_handler, NULL, &l);
    nf_loop_run(loop, NF_RUN_NOWAIT);
    assert_false(fd_readable(efd, 0)); /* nothing to do yet */

    int fd = h_tcp_connect_nb("127.0.0.1", port);
    assert_true(fd >= 0);
    EV_RUN_UNTIL(loop, h_echo.opened == 1, 3000);
    h_set_nonblock(fd, 1);

    char out[3000], in[3000];
    unsigned extra_steps = 0;
    for (int i = 0; i < 300; i++) {
        size_t len = 1 + (size_t)(i * 37) % sizeof out;
        h_pattern_fill(out, len, (uint64_t)i * 4096, 9);
        assert_int_equal(h_send_all(fd, out, len, 2000), 0);
        /* the read completion must wake us */
        if (!fd_readable(efd, 2000))
            fail_msg("message %d: the loop's fd never became readable", i);
        nf_loop_run(loop, NF_RUN_NOWAIT);
        /* steps while the fd says so (e.g. the bytes came in two reads) */
        while (fd_readable(efd, 0)) {
            nf_loop_run(loop, NF_RUN_NOWAIT);
            if (++extra_steps > 100000)
                fail_msg("the loop's fd stays readable");
        }
        /* not readable: the echo must arrive with no further step */
        ssize_t got = h_recv_full(fd, in, len, 2000);
        if (got != (ssize_t)len) {
            /* is the loop sitting on it? */
            int pending = fd_readable(efd, 0);
            fail_msg("message %d: echoed %zd of %zu bytes with the loop's fd %s", i, got, len,
                     pending ? "readable" : "idle");
        }
        assert_int_equal(h_pattern_check(in, len, (uint64_t)i * 4096, 9), SIZE_MAX);
    }
    print_message("[ info     ] 300 messages, %u extra steps\n", extra_steps);

    close(fd);
    EV_RUN_UNTIL(loop, h_echo.closed == 1, 3000);
    nf_listener_close(l, NULL);
    ev_finish(loop);
}

/* A due timer makes the fd readable: not before, and not much later. */
static int g_fired;
static void on_timer(nf_timer_t *t) { (void)t, g_fired++; }

static void test_event_timer(void **state)
{
    (void)state;
    nf_loop_t *loop = mode_loop(NF_MODE_EVENT, 0, 0);
    int efd = nf_loop_fd(loop);
    nf_timer_t t;
    nf_timer_init(loop, &t);
    g_fired = 0;
    for (int round = 0; round < 3; round++) {
        uint64_t t0 = h_now_ms();
        nf_timer_start(&t, on_timer, 60, 0);
        nf_loop_run(loop, NF_RUN_NOWAIT); /* arms the timerfd */
        int next = nf_loop_next_timeout(loop);
        assert_true(next >= 0 && next <= 60);
        /* Not readable before the deadline (measured from before arming, so
         * a descheduled test thread cannot make it look early), readable
         * after it. */
        int early = fd_readable(efd, 30);
        uint64_t at = h_now_ms() - t0;
        if (early && at < 59)
            fail_msg("round %d: the fd was readable %llu ms after arming a 60 ms timer", round, (unsigned long long)at);
        assert_true(fd_readable(efd, 2000));
        uint64_t waited = h_now_ms() - t0;
        nf_loop_run(loop, NF_RUN_NOWAIT);
        assert_int_equal(g_fired, round + 1);
        if (waited < 59 || waited > 1500) /* never early; late only by a loaded machine's scheduling */
            fail_msg("round %d: the timer woke the fd after %llu ms, armed for 60", round, (unsigned long long)waited);
        assert_false(fd_readable(efd, 0));
        assert_int_equal(nf_loop_next_timeout(loop), -1);
    }
    /* a repeating timer, stopped from its 5th call */
    nf_timer_start(&t, on_timer, 10, 10);
    g_fired = 0;
    EV_RUN_UNTIL(loop, g_fired >= 5, 3000);
    nf_timer_stop(&t);
    ev_finish(loop);
}

/* A post from another thread makes the fd readable. */
static atomic_int g_posted;
static void on_post(nf_loop_t *loop, void *arg) { (void)loop, (void)arg, atomic_fetch_add(&g_posted, 1); }

static void *poster(void *arg)
{
    nf_loop_t *loop = arg;
    for (int i = 0; i < 100; i++) {
        nf_loop_post(loop, on_post, NULL);
        if (i % 10 == 0)
            h_sleep_ms(2);
    }
    return NULL;
}

static void test_event_post(void **state)
{
    (void)state;
    nf_loop_t *loop = mode_loop(NF_MODE_EVENT, 0, 0);
    atomic_store(&g_posted, 0);
    pthread_t th = h_thread_start(poster, loop);
    EV_RUN_UNTIL(loop, atomic_load(&g_posted) == 100, 5000);
    h_thread_join(th, 2000);
    assert_false(fd_readable(nf_loop_fd(loop), 0));
    ev_finish(loop);
}

/* Many connections at once, with a tiny per-step bound (4 completions): the
 * work a step leaves behind must keep the fd readable until it is done. */
static void test_event_bounded_steps(void **state)
{
    (void)state;
    enum { N = 24 };
    nf_loop_t *loop = mode_loop(NF_MODE_EVENT, 0, 1);
    h_echo_reset();
    nf_listener_t *l;
    uint16_t port = h_listen(loop, NULL, &h_echo_handler, NULL, &l);
    nf_loop_run(loop, NF_RUN_NOWAIT);
    int fds[N];
    for (int i = 0; i < N; i++) {
        fds[i] = h_tcp_connect_nb("127.0.0.1", port);
        assert_true(fds[i] >= 0);
    }
    EV_RUN_UNTIL(loop, h_echo.opened == N, 5000);
    char msg[512], in[512];
    for (int round = 0; round < 20; round++) {
        for (int i = 0; i < N; i++) {
            h_pattern_fill(msg, sizeof msg, (uint64_t)round * 512, (uint32_t)i);
            assert_int_equal(h_send_all(fds[i], msg, sizeof msg, 2000), 0);
        }
        /* serve until idle, then every echo must be complete */
        unsigned steps = 0;
        if (!fd_readable(nf_loop_fd(loop), 2000))
            fail_msg("round %d: no wake-up", round);
        while (fd_readable(nf_loop_fd(loop), 0) && steps < 100000) {
            nf_loop_run(loop, NF_RUN_NOWAIT);
            steps++;
        }
        for (int i = 0; i < N; i++) {
            ssize_t got = h_recv_full(fds[i], in, sizeof in, 2000);
            if (got != (ssize_t)sizeof in)
                fail_msg("round %d conn %d: %zd of %zu bytes echoed after %u steps", round, i, got, sizeof in, steps);
            assert_int_equal(h_pattern_check(in, sizeof in, (uint64_t)round * 512, (uint32_t)i), SIZE_MAX);
        }
    }
    for (int i = 0; i < N; i++)
        close(fds[i]);
    EV_RUN_UNTIL(loop, h_echo.closed == N, 5000);
    nf_listener_close(l, NULL);
    ev_finish(loop);
}

/* ---- stop from another thread; run on another thread ------------------------- */

typedef struct runner {
    nf_loop_t *loop;
    nf_listener_t *l;
    int rc, rc2;
    atomic_int stopped; /* the first run returned */
    atomic_int finish;  /* go on: close the listener and run out */
} runner_t;

/* Runs until stopped, waits for the word, then finishes the loop: all on the
 * one thread that ran it first. */
static void *run_thread(void *arg)
{
    runner_t *r = arg;
    r->rc = nf_loop_run(r->loop, NF_RUN_DEFAULT);
    atomic_store(&r->stopped, 1);
    uint64_t dl = h_now_ms() + 8000;
    while (!atomic_load(&r->finish) && h_now_ms() < dl)
        h_sleep_ms(1);
    nf_listener_close(r->l, NULL);
    while (nf_loop_alive(r->loop) > 0 && h_now_ms() < dl) {
        int rc = nf_loop_run(r->loop, NF_RUN_DEFAULT);
        if (rc < 0) {
            r->rc2 = rc;
            break;
        }
    }
    return NULL;
}

/* The loop is created (with a listener) on this thread and runs on another:
 * with io_uring that thread becomes the ring's single issuer. The echo works,
 * nf_loop_stop_async stops it from here, and running it from a third thread
 * afterwards fails loudly on io_uring (-EEXIST) instead of misbehaving. */
static void test_run_on_other_thread(void **state)
{
    (void)state;
    nf_loop_t *loop = h_loop_new();
    h_echo_reset();
    nf_listener_t *l;
    uint16_t port = h_listen(loop, NULL, &h_echo_handler, NULL, &l);
    runner_t r = {.loop = loop, .l = l};
    pthread_t th = h_thread_start(run_thread, &r);
    int fd = h_tcp_connect("127.0.0.1", port);
    assert_true(fd >= 0);
    h_set_nonblock(fd, 1);
    char err[256];
    if (h_echo_roundtrip(fd, 200000, 5, 5000, err, sizeof err) != 0)
        fail_msg("%s", err);
    close(fd);
    nf_loop_stop_async(loop);
    uint64_t dl = h_now_ms() + 3000;
    while (!atomic_load(&r.stopped) && h_now_ms() < dl)
        h_sleep_ms(1);
    assert_true(atomic_load(&r.stopped));
    assert_true(r.rc >= 1); /* the listener is still open */

    int single = strstr(nf_loop_features(loop), "single_issuer") != NULL;
    int rc = nf_loop_run(loop, NF_RUN_NOWAIT); /* from the wrong thread */
    if (single)
        H_ASSERT_ERR(rc, -EEXIST);
    else
        assert_true(rc >= 0);
    print_message("[ info     ] run from a third thread: %d (%s)\n", rc, nf_err_name(rc));

    /* finish on the thread that ran it; free here */
    atomic_store(&r.finish, 1);
    h_thread_join(th, 9000);
    assert_int_equal(r.rc2, 0);
    assert_int_equal(nf_loop_alive(loop), 0);
    assert_int_equal(h_echo.closed, 1);
    assert_int_equal(nf_loop_free(loop), 0);
}

/* nf_loop_stop_async before nf_loop_run: the run returns at once. */
static void test_stop_async_early(void **state)
{
    (void)state;
    nf_loop_t *loop = h_loop_new();
    nf_listener_t *l;
    h_listen(loop, NULL, &h_echo_handler, NULL, &l);
    nf_loop_stop_async(loop);
    uint64_t t0 = h_now_ms();
    int rc = nf_loop_run(loop, NF_RUN_DEFAULT);
    assert_int_equal(rc, 1);
    assert_true(h_now_ms() - t0 < 1000);
    h_listener_finish(loop, l, 3000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_echo_block),          cmocka_unit_test(test_echo_poll),
        cmocka_unit_test(test_echo_poll_sqpoll),    cmocka_unit_test(test_echo_event),
        cmocka_unit_test(test_event_one_wakeup),    cmocka_unit_test(test_event_timer),
        cmocka_unit_test(test_event_post),          cmocka_unit_test(test_event_bounded_steps),
        cmocka_unit_test(test_run_on_other_thread), cmocka_unit_test(test_stop_async_early),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
