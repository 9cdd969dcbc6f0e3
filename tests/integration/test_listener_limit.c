/* Integration: a listener's connection limit (max_conns) with both policies.
 *  NF_LIMIT_CLOSE: a connection over the limit is accepted and closed at
 *    once (the peer sees EOF/reset), counted in conns_refused.
 *  NF_LIMIT_PAUSE: it waits in the kernel's backlog, unserved, until one of
 *    the open connections closes; then it is served. */
#include "helpers.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static nf_listener_t *limited_listener(nf_loop_t *loop, nf_limit_policy_t policy, uint16_t *port)
{
    nf_listen_config_t cfg = h_listen_config(&h_echo_handler, NULL);
    cfg.max_conns = 2;
    cfg.on_limit = policy;
    nf_listener_t *l;
    *port = h_listen_cfg(loop, &cfg, &l);
    return l;
}

/* Runs the loop while reading from fd (non-blocking) until `len` bytes came
 * back; returns the count, or -errno / 0 on EOF before that. */
static ssize_t run_and_recv(nf_loop_t *loop, int fd, char *buf, size_t len, unsigned timeout_ms)
{
    size_t got = 0;
    uint64_t deadline = h_now_ms() + timeout_ms;
    while (got < len && h_now_ms() < deadline) {
        h_run_for(loop, 2);
        ssize_t n = recv(fd, buf + got, len - got, MSG_DONTWAIT);
        if (n > 0)
            got += (size_t)n;
        else if (n == 0)
            return (ssize_t)got;
        else if (errno != EAGAIN && errno != EWOULDBLOCK)
            return -errno;
    }
    return (ssize_t)got;
}

static void expect_echo(nf_loop_t *loop, int fd, const char *msg)
{
    size_t len = strlen(msg);
    assert_int_equal(h_send_all(fd, msg, len, 5000), 0);
    char buf[64];
    ssize_t n = run_and_recv(loop, fd, buf, len, 5000);
    if (n != (ssize_t)len)
        fail_msg("echo of \"%s\": got %zd bytes", msg, n);
    assert_memory_equal(buf, msg, len);
}

/* Waits for EOF or reset on fd while running the loop: 0 = EOF, -ECONNRESET,
 * -ETIMEDOUT, or 1 if data arrived. */
static int run_until_peer_closed(nf_loop_t *loop, int fd, unsigned timeout_ms)
{
    uint64_t deadline = h_now_ms() + timeout_ms;
    char c;
    while (h_now_ms() < deadline) {
        h_run_for(loop, 2);
        ssize_t n = recv(fd, &c, 1, MSG_DONTWAIT);
        if (n == 0)
            return 0;
        if (n > 0)
            return 1;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return -errno;
    }
    return -ETIMEDOUT;
}

static void test_limit_close(void **state)
{
    (void)state;
    h_echo_reset();
    nf_loop_t *loop = h_loop_new();
    uint16_t port;
    nf_listener_t *l = limited_listener(loop, NF_LIMIT_CLOSE, &port);

    int c1 = h_tcp_connect("127.0.0.1", port);
    int c2 = h_tcp_connect("127.0.0.1", port);
    assert_true(c1 >= 0 && c2 >= 0);
    H_RUN_UNTIL(loop, h_echo.opened == 2, 5000);

    int c3 = h_tcp_connect("127.0.0.1", port); /* the kernel completes the handshake */
    assert_true(c3 >= 0);
    uint64_t t0 = h_now_ms();
    int rc = run_until_peer_closed(loop, c3, 3000);
    uint64_t took = h_now_ms() - t0;
    if (rc != 0 && rc != -ECONNRESET)
        fail_msg("connection over the limit: expected EOF or reset, got %d (%s)", rc, rc < 0 ? strerror(-rc) : "data");
    print_message("[ info     ] over-limit connection %s after %llu ms\n", rc == 0 ? "closed" : "reset",
                  (unsigned long long)took);
    h_run_for(loop, 20);

    nf_loop_stats_t s = h_stats(loop);
    assert_int_equal(s.conns_refused, 1);
    assert_int_equal(h_echo.opened, 2);
    assert_int_equal(nf_listener_conns(l), 2);
    assert_int_equal(s.conns_open, 2);
    /* If the turned-away connection gets a close callback, its reason says
     * why; the two served connections are untouched. */
    assert_int_equal(h_echo.closed, h_echo.close_limit);
    assert_true(h_echo.close_limit <= 1);

    expect_echo(loop, c1, "one");
    expect_echo(loop, c2, "two");

    /* One closes: a new connection is served again. */
    close(c1);
    H_RUN_UNTIL(loop, h_echo.close_eof == 1, 5000);
    int c4 = h_tcp_connect("127.0.0.1", port);
    assert_true(c4 >= 0);
    H_RUN_UNTIL(loop, h_echo.opened == 3, 5000);
    expect_echo(loop, c4, "four");
    assert_int_equal(h_stats(loop).conns_refused, 1);

    close(c2);
    close(c3);
    close(c4);
    H_RUN_UNTIL(loop, h_echo.close_eof == 3, 5000);
    assert_int_equal(h_stats(loop).conns_open, 0);
    h_listener_finish(loop, l, 5000);
}

static void test_limit_pause(void **state)
{
    (void)state;
    h_echo_reset();
    nf_loop_t *loop = h_loop_new();
    uint16_t port;
    nf_listener_t *l = limited_listener(loop, NF_LIMIT_PAUSE, &port);

    int c1 = h_tcp_connect("127.0.0.1", port);
    int c2 = h_tcp_connect("127.0.0.1", port);
    assert_true(c1 >= 0 && c2 >= 0);
    H_RUN_UNTIL(loop, h_echo.opened == 2, 5000);
    expect_echo(loop, c1, "one");

    int c3 = h_tcp_connect("127.0.0.1", port); /* waits in the backlog */
    assert_true(c3 >= 0);
    assert_int_equal(h_send_all(c3, "three", 5, 5000), 0);
    char buf[16];
    ssize_t n = run_and_recv(loop, c3, buf, 5, 300);
    if (n != 0)
        fail_msg("connection over the limit was served while paused (recv -> %zd)", n);
    assert_int_equal(h_echo.opened, 2);
    assert_int_equal(nf_listener_conns(l), 2);
    nf_loop_stats_t s = h_stats(loop);
    assert_int_equal(s.conns_refused, 0);
    assert_int_equal(s.conns_accepted, 2);

    close(c1);
    n = run_and_recv(loop, c3, buf, 5, 5000);
    if (n != 5)
        fail_msg("paused connection not served after a slot freed (recv -> %zd)", n);
    assert_memory_equal(buf, "three", 5);
    assert_int_equal(h_echo.opened, 3);
    assert_int_equal(h_echo.close_eof, 1);
    expect_echo(loop, c2, "two");
    assert_int_equal(h_stats(loop).conns_refused, 0);

    close(c2);
    close(c3);
    H_RUN_UNTIL(loop, h_echo.closed == 3, 5000);
    assert_int_equal(h_echo.close_eof, 3);
    assert_int_equal(h_stats(loop).conns_open, 0);
    h_listener_finish(loop, l, 5000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_limit_close),
        cmocka_unit_test(test_limit_pause),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
