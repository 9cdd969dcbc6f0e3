/* Integration: a listener out of file descriptors (EMFILE) backs off and
 * recovers.
 *
 * Six peers connect (they wait in the backlog); RLIMIT_NOFILE is then
 * lowered so that the server can accept only two of them. Accepting the
 * third fails with EMFILE: the listener must count it (accept_errors), pause
 * instead of retrying at once (a level-triggered listener or a re-armed
 * accept would spin the loop: the test counts loop iterations), keep serving
 * the two it has, and accept the others once descriptors are available
 * again, each of them served. */
#include "helpers.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define NPEERS 6

/* An RLIMIT_NOFILE under which exactly `room` more descriptors can be
 * opened: the (room+1)-th free descriptor number (accept takes the lowest
 * free number, below the limit). */
static rlim_t limit_with_room(int room)
{
    int free_seen = 0;
    for (int fd = 0; fd < 65536; fd++) {
        if (fcntl(fd, F_GETFD) >= 0)
            continue;
        if (free_seen++ == room)
            return (rlim_t)fd;
    }
    fail_msg("no free descriptor numbers");
    return 0;
}

static void test_emfile_backoff(void **state)
{
    (void)state;
    h_echo_reset();
    nf_loop_t *loop = h_loop_new();
    nf_listener_t *l;
    uint16_t port = h_listen(loop, NULL, &h_echo_handler, NULL, &l);
    int fds[NPEERS];
    for (int i = 0; i < NPEERS; i++) {
        fds[i] = h_tcp_connect("127.0.0.1", port);
        assert_true(fds[i] >= 0);
    }
    struct rlimit orig;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &orig), 0);
    /* room for exactly two more descriptors */
    struct rlimit low = orig;
    low.rlim_cur = limit_with_room(2);
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);

    uint64_t it0 = h_stats(loop).iterations;
    h_run_for(loop, 400);
    nf_loop_stats_t s = h_stats(loop);
    uint64_t iters = s.iterations - it0;
    print_message("[ info     ] with the limit: accepted %llu, accept errors %llu, %llu loop iterations in 400 ms\n",
                  (unsigned long long)s.conns_accepted, (unsigned long long)s.accept_errors, (unsigned long long)iters);
    /* restore before asserting, so a failure does not starve the runner */
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &orig), 0);
    assert_int_equal(s.conns_accepted, 2);
    assert_true(s.accept_errors >= 1);
    /* backing off 100 ms at a time: a handful of wake-ups (the helper's 5 ms
     * tick adds about 80), not the thousands of a spinning loop */
    if (iters > 400)
        fail_msg("%llu loop iterations in 400 ms while out of descriptors: the listener spins",
                 (unsigned long long)iters);
    assert_true(s.accept_errors < 40);

    /* descriptors are back: every peer is accepted and served */
    H_RUN_UNTIL(loop, h_stats(loop).conns_accepted == NPEERS, 3000);
    for (int i = 0; i < NPEERS; i++) {
        /* 1 KiB through the echo, the loop run from this thread */
        char out[1024], in[1024];
        h_pattern_fill(out, sizeof out, 0, (uint32_t)i);
        assert_int_equal(h_send_all(fds[i], out, sizeof out, 2000), 0);
        size_t got = 0;
        uint64_t deadline = h_now_ms() + 3000;
        while (got < sizeof in && h_now_ms() < deadline) {
            h_run_for(loop, 2);
            ssize_t n = recv(fds[i], in + got, sizeof in - got, MSG_DONTWAIT);
            if (n > 0)
                got += (size_t)n;
        }
        if (got != sizeof in || h_pattern_check(in, sizeof in, 0, (uint32_t)i) != SIZE_MAX)
            fail_msg("peer %d: %zu of %zu bytes echoed intact", i, got, sizeof in);
    }
    for (int i = 0; i < NPEERS; i++)
        close(fds[i]);
    H_RUN_UNTIL(loop, h_stats(loop).conns_open == 0, 3000);
    h_listener_finish(loop, l, 3000);
}

/* Closing the listener while it backs off cancels the back-off timer. */
static void test_close_during_backoff(void **state)
{
    (void)state;
    h_echo_reset();
    h_fixture_t f;
    h_fixture_start(&f, &h_echo_handler, NULL);
    nf_loop_t *loop = f.loop;
    int fd = f.fd;
    struct rlimit orig, low;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &orig), 0);
    low = orig;
    low.rlim_cur = limit_with_room(0);
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
    h_run_for(loop, 30);
    nf_loop_stats_t s = h_stats(loop);
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &orig), 0);
    assert_int_equal(s.conns_accepted, 0);
    assert_true(s.accept_errors >= 1);
    h_fixture_finish(&f, 3000); /* would time out with the timer still armed */
    close(fd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_emfile_backoff),
        cmocka_unit_test(test_close_during_backoff),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
