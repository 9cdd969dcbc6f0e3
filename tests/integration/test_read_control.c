/* Integration: reading control — nf_conn_read_stop / read_start / read_once.
 *
 *  - read_stop inside on_read: a plain, non-blocking peer keeps sending until
 *    its send would block for good (TCP's window closed on it); no on_read
 *    while stopped; read_start from a timer: every byte arrives, in order,
 *    exactly once.
 *  - read_stop from on_open: nothing is delivered until read_start, and
 *    read_start does not deliver from inside itself.
 *  - read_once: exactly one on_read per call, even with much data waiting;
 *    the bytes are complete and in order across calls.
 *  - EOF while paused: delivered only after resume, after the stashed bytes
 *    (with on_eof, and without it as a close with NF_EOF). */
#include "helpers.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define SEED 77u

static struct {
    nf_conn_t *c;
    int opened, closed, reason;
    int stop_in_open; /* read_stop from on_open */
    int stop_in_read; /* read_stop from the first on_read */
    int end_on_eof;   /* on_eof: nf_conn_end */
    int paused;       /* the program believes reading is stopped */
    int in_start;     /* inside nf_conn_read_start / read_once */
    int reads, reads_while_paused, reads_inside_start;
    int once_in_read; /* on_read: nf_conn_read_once again (read on demand) */
    int once_rc;      /* first non-zero read_once result from on_read */
    int stop_rc, start_rc;
    uint64_t got;
    int bad; /* first pattern mismatch recorded */
    uint64_t bad_at;
    int eofs;
    uint64_t got_at_eof, got_at_close;
    int reads_after_eof;
    nf_timer_t timer;
} g;

static void reset_g(void)
{
    memset(&g, 0, sizeof g);
    g.reason = 12345;
    g.stop_rc = 12345;
    g.start_rc = 12345;
}

static void on_open(nf_conn_t *c)
{
    g.opened++;
    g.c = c;
    if (g.stop_in_open) {
        g.stop_rc = nf_conn_read_stop(c);
        g.paused = 1;
    }
}

static void on_read(nf_conn_t *c, const char *data, size_t len)
{
    g.reads++;
    if (g.paused)
        g.reads_while_paused++;
    if (g.in_start)
        g.reads_inside_start++;
    if (g.eofs)
        g.reads_after_eof++;
    size_t bad = h_pattern_check(data, len, g.got, SEED);
    if (bad != SIZE_MAX && !g.bad) {
        g.bad = 1;
        g.bad_at = g.got + bad;
    }
    g.got += len;
    if (g.once_in_read) {
        int rc = nf_conn_read_once(c);
        if (rc != 0 && g.once_rc == 0)
            g.once_rc = rc;
    }
    if (g.stop_in_read && g.reads == 1) {
        g.stop_rc = nf_conn_read_stop(c);
        g.paused = 1;
    }
}

static void on_eof(nf_conn_t *c)
{
    g.eofs++;
    g.got_at_eof = g.got;
    if (g.end_on_eof)
        nf_conn_end(c);
}

static void on_close(nf_conn_t *c, int reason)
{
    (void)c;
    g.closed++;
    g.reason = reason;
    g.got_at_close = g.got;
    g.c = NULL;
    nf_timer_stop(&g.timer);
}

static const nf_conn_handler_t handler = {
    .on_open = on_open,
    .on_read = on_read,
    .on_close = on_close,
};

static const nf_conn_handler_t eof_handler = {
    .on_open = on_open,
    .on_read = on_read,
    .on_eof = on_eof,
    .on_close = on_close,
};

static void restart_cb(nf_timer_t *t)
{
    (void)t;
    g.paused = 0;
    g.in_start = 1;
    g.start_rc = g.c ? nf_conn_read_start(g.c) : -1;
    g.in_start = 0;
}

/* Sends pattern bytes [*sent, limit) without blocking; returns how many went. */
static size_t send_some(int fd, uint64_t *sent, uint64_t limit)
{
    static char buf[64 * 1024];
    size_t total = 0;
    while (*sent < limit) {
        size_t n = limit - *sent < sizeof buf ? (size_t)(limit - *sent) : sizeof buf;
        h_pattern_fill(buf, n, *sent, SEED);
        ssize_t w = send(fd, buf, n, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            fail_msg("peer send: %s", strerror(errno));
        }
        *sent += (uint64_t)w;
        total += (size_t)w;
        if ((size_t)w < n)
            break;
    }
    return total;
}

/* A server with handler h (g's flags set beforehand) and one accepted plain
 * peer, non-blocking if asked. */
static h_fixture_t fx_open(const nf_conn_handler_t *h, int nonblock)
{
    nf_listen_config_t cfg = h_listen_config(h, NULL);
    h_fixture_t f;
    h_fixture_open(&f, &cfg);
    nf_timer_init(f.loop, &g.timer);
    if (nonblock)
        assert_int_equal(h_set_nonblock(f.fd, 1), 0);
    H_RUN_UNTIL(f.loop, g.opened == 1, 3000);
    return f;
}

/* n bytes of the peer's pattern (SEED from 0), malloc'd: the caller frees. */
static char *pattern_buf(size_t n)
{
    char *buf = malloc(n);
    assert_non_null(buf);
    h_pattern_fill(buf, n, 0, SEED);
    return buf;
}

/* The bytes delivered so far were the pattern, in order. */
static void check_order(void)
{
    if (g.bad)
        fail_msg("byte %llu out of order or corrupt", (unsigned long long)g.bad_at);
}

/* The peer closes; the server's connection closes with NF_EOF. */
static void peer_close_expect_eof(h_fixture_t *f)
{
    close(f->fd);
    H_RUN_UNTIL(f->loop, g.closed == 1, 3000);
    H_ASSERT_ERR(g.reason, NF_EOF);
}

/* ---- read_stop in on_read; the peer's window closes; restart from a timer --- */

static void test_stop_in_read_window_closes(void **state)
{
    (void)state;
    reset_g();
    g.stop_in_read = 1;
    h_fixture_t f = fx_open(&handler, 1);
    nf_loop_t *loop = f.loop;
    int fd = f.fd;

    /* Send until the peer's send would block, and stays blocked while the
     * loop runs: the server's receive window is closed. */
    uint64_t sent = 0, limit = 256ull << 20;
    int blocked = 0;
    uint64_t deadline = h_now_ms() + 8000;
    while (blocked < 4) {
        if (h_now_ms() > deadline)
            fail_msg("the peer could still send after %llu bytes: the window never closed "
                     "(server reads %d, got %llu)",
                     (unsigned long long)sent, g.reads, (unsigned long long)g.got);
        size_t n = send_some(fd, &sent, limit);
        if (sent >= limit)
            fail_msg("sent %llu bytes without blocking", (unsigned long long)sent);
        blocked = n == 0 && g.reads >= 1 ? blocked + 1 : 0;
        h_run_for(loop, n == 0 ? 25 : 2);
    }
    H_ASSERT_ERR(g.stop_rc, 0);
    assert_int_equal(g.reads, 1);
    assert_int_equal(g.reads_while_paused, 0);
    assert_true(g.got < sent);
    uint64_t got_stopped = g.got;
    print_message("[ info     ] window closed after %llu bytes; %llu delivered before the stop\n",
                  (unsigned long long)sent, (unsigned long long)got_stopped);
    /* Still nothing while stopped. */
    h_run_for(loop, 100);
    assert_int_equal(g.reads, 1);
    assert_int_equal(g.got, got_stopped);
    assert_int_equal(g.closed, 0);

    /* Restart from a timer; the peer sends 1 MiB more. */
    assert_int_equal(nf_timer_start(&g.timer, restart_cb, 10, 0), 0);
    limit = sent + (1u << 20);
    deadline = h_now_ms() + 8000;
    while (sent < limit || g.got < limit) {
        if (h_now_ms() > deadline)
            fail_msg("after read_start: sent %llu of %llu, got %llu", (unsigned long long)sent,
                     (unsigned long long)limit, (unsigned long long)g.got);
        send_some(fd, &sent, limit);
        h_run_for(loop, 2);
    }
    H_ASSERT_ERR(g.start_rc, 0);
    assert_int_equal(g.reads_inside_start, 0);
    assert_int_equal(g.reads_while_paused, 0);
    check_order();
    assert_int_equal(g.got, limit);

    peer_close_expect_eof(&f);
    assert_int_equal(g.got_at_close, limit);
    nf_loop_stats_t s = h_stats(loop);
    assert_int_equal(s.bytes_in, limit);
    assert_int_equal(s.bufs_kept, 0);
    h_fixture_end(&f);
}

/* ---- read_stop from on_open ------------------------------------------------------ */

static void test_stop_in_open(void **state)
{
    (void)state;
    reset_g();
    g.stop_in_open = 1;
    h_fixture_t f = fx_open(&handler, 0);
    nf_loop_t *loop = f.loop;
    int fd = f.fd;
    H_ASSERT_ERR(g.stop_rc, 0);
    enum { N = 60000 };
    char *buf = pattern_buf(N);
    assert_int_equal(h_send_all(fd, buf, N, 3000), 0);
    h_run_for(loop, 200);
    assert_int_equal(g.reads, 0);
    assert_int_equal(g.got, 0);

    /* read_start from outside a callback: delivery comes from the loop. */
    g.paused = 0;
    g.in_start = 1;
    H_ASSERT_ERR(nf_conn_read_start(g.c), 0);
    g.in_start = 0;
    H_RUN_UNTIL(loop, g.got >= N, 3000);
    assert_int_equal(g.reads_inside_start, 0);
    assert_int_equal(g.got, N);
    check_order();
    /* a second read_start is harmless */
    H_ASSERT_ERR(nf_conn_read_start(g.c), 0);
    peer_close_expect_eof(&f);
    free(buf);
    h_fixture_end(&f);
}

/* ---- read_once ------------------------------------------------------------------- */

static void test_read_once(void **state)
{
    (void)state;
    reset_g();
    g.stop_in_open = 1;
    h_fixture_t f = fx_open(&handler, 1);
    nf_loop_t *loop = f.loop;
    int fd = f.fd;
    g.paused = 0; /* reads are expected from here on, one per read_once */

    const uint64_t total = 512u * 1024;
    uint64_t sent = 0;
    /* much data waiting before the first read_once */
    send_some(fd, &sent, total);
    h_run_for(loop, 50);
    assert_int_equal(g.reads, 0);
    assert_true(sent >= 32 * 1024);

    int calls = 0, max_backlog_reads = 0;
    uint64_t deadline = h_now_ms() + 8000;
    while (g.got < total) {
        if (h_now_ms() > deadline)
            fail_msg("read_once: %d calls, %d reads, got %llu of %llu", calls, g.reads, (unsigned long long)g.got,
                     (unsigned long long)total);
        send_some(fd, &sent, total);
        int before = g.reads;
        g.in_start = 1;
        H_ASSERT_ERR(nf_conn_read_once(g.c), 0);
        g.in_start = 0;
        calls++;
        H_RUN_UNTIL(loop, g.reads > before, 3000);
        /* and no second one, although more is waiting */
        h_run_for(loop, 8);
        if (g.reads != before + 1)
            fail_msg("read_once call %d: %d on_read calls instead of one (got %llu of %llu sent)", calls,
                     g.reads - before, (unsigned long long)g.got, (unsigned long long)sent);
        if (sent - g.got > 0)
            max_backlog_reads++;
    }
    assert_int_equal(g.reads, calls);
    assert_int_equal(g.reads_inside_start, 0);
    assert_int_equal(g.got, total);
    check_order();
    assert_true(max_backlog_reads > 0);
    print_message("[ info     ] %d read_once calls for %llu bytes\n", calls, (unsigned long long)total);
    close(fd);
    /* EOF is pending behind a stopped read: resume to let it through */
    h_run_for(loop, 20);
    H_ASSERT_ERR(nf_conn_read_start(g.c), 0);
    H_RUN_UNTIL(loop, g.closed == 1, 3000);
    H_ASSERT_ERR(g.reason, NF_EOF);
    h_fixture_end(&f);
}

/* ---- EOF while paused ------------------------------------------------------------- */

/* With on_eof: the peer sends, then shuts down; nothing reaches the program
 * while paused; after read_start all bytes, then on_eof. */
static void test_eof_while_paused(void **state)
{
    (void)state;
    reset_g();
    g.stop_in_open = 1;
    g.end_on_eof = 1;
    h_fixture_t f = fx_open(&eof_handler, 0);
    nf_loop_t *loop = f.loop;
    int fd = f.fd;
    enum { N = 50000 };
    char *buf = pattern_buf(N);
    assert_int_equal(h_send_all(fd, buf, N, 3000), 0);
    assert_int_equal(shutdown(fd, SHUT_WR), 0);
    h_run_for(loop, 200);
    assert_int_equal(g.reads, 0);
    assert_int_equal(g.eofs, 0);
    assert_int_equal(g.closed, 0);

    g.paused = 0;
    H_ASSERT_ERR(nf_conn_read_start(g.c), 0);
    H_RUN_UNTIL(loop, g.closed == 1, 3000);
    assert_int_equal(g.eofs, 1);
    assert_int_equal(g.got_at_eof, N);
    assert_int_equal(g.reads_after_eof, 0);
    assert_int_equal(g.got, N);
    H_ASSERT_ERR(g.reason, NF_CLOSE_LOCAL);
    check_order();
    assert_int_equal(h_recv_eof(fd, 3000), 0);
    close(fd);
    free(buf);
    h_fixture_end(&f);
}

/* Without on_eof: stopped in the first on_read, the peer sends more and
 * closes; the close (NF_EOF) comes only after resume and after every byte. */
static void test_eof_while_paused_no_handler(void **state)
{
    (void)state;
    reset_g();
    g.stop_in_read = 1;
    h_fixture_t f = fx_open(&handler, 0);
    nf_loop_t *loop = f.loop;
    int fd = f.fd;
    enum { N = 50000 };
    char *buf = pattern_buf(N);
    assert_int_equal(h_send_all(fd, buf, 1000, 3000), 0);
    H_RUN_UNTIL(loop, g.reads == 1, 3000);
    assert_true(g.paused);
    assert_int_equal(h_send_all(fd, buf + g.got, N - g.got, 3000), 0);
    close(fd);
    h_run_for(loop, 200);
    assert_int_equal(g.reads, 1);
    assert_int_equal(g.closed, 0);

    assert_int_equal(nf_timer_start(&g.timer, restart_cb, 1, 0), 0);
    H_RUN_UNTIL(loop, g.closed == 1, 3000);
    H_ASSERT_ERR(g.start_rc, 0);
    H_ASSERT_ERR(g.reason, NF_EOF);
    assert_int_equal(g.got_at_close, N);
    assert_int_equal(g.reads_while_paused, 0);
    check_order();
    free(buf);
    h_fixture_end(&f);
}

/* Read on demand: each on_read asks for the next one with read_once. */
static void test_read_once_chained(void **state)
{
    (void)state;
    reset_g();
    g.stop_in_open = 1;
    h_fixture_t f = fx_open(&handler, 1);
    nf_loop_t *loop = f.loop;
    int fd = f.fd;
    g.paused = 0;
    g.once_in_read = 1;
    H_ASSERT_ERR(nf_conn_read_once(g.c), 0);
    const uint64_t total = 2u << 20;
    uint64_t sent = 0;
    uint64_t deadline = h_now_ms() + 8000;
    while (g.got < total) {
        if (h_now_ms() > deadline)
            fail_msg("chained read_once: %d reads, got %llu of %llu (sent %llu)", g.reads, (unsigned long long)g.got,
                     (unsigned long long)total, (unsigned long long)sent);
        send_some(fd, &sent, total);
        h_run_for(loop, 1);
    }
    H_ASSERT_ERR(g.once_rc, 0);
    assert_int_equal(g.got, total);
    check_order();
    peer_close_expect_eof(&f);
    h_fixture_end(&f);
}

/* Closing while stopped, with bytes stashed (or waiting in the kernel):
 * one on_close, no on_read, every read buffer back (ASan: nothing leaks). */
static void test_close_while_paused(void **state)
{
    (void)state;
    reset_g();
    g.stop_in_read = 1;
    h_fixture_t f = fx_open(&handler, 1);
    nf_loop_t *loop = f.loop;
    int fd = f.fd;
    uint64_t sent = 0;
    for (int i = 0; i < 40; i++) {
        send_some(fd, &sent, 8u << 20);
        h_run_for(loop, 3);
    }
    assert_int_equal(g.reads, 1);
    assert_true(sent > g.got);
    nf_loop_stats_t s = h_stats(loop);
    print_message("[ info     ] paused with %llu bytes sent, %llu delivered, %llu read buffers "
                  "in use\n",
                  (unsigned long long)sent, (unsigned long long)g.got, (unsigned long long)s.bufs_in_use);
    nf_conn_close(g.c);
    H_RUN_UNTIL(loop, g.closed == 1, 3000);
    h_run_for(loop, 30);
    assert_int_equal(g.closed, 1);
    assert_int_equal(g.reads, 1);
    H_ASSERT_ERR(g.reason, NF_CLOSE_LOCAL);
    s = h_stats(loop);
    assert_int_equal(s.bufs_kept, 0);
    assert_int_equal(s.conns_open, 0);
    close(fd);
    h_fixture_end(&f); /* nf_loop_free refuses while buffers are kept */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stop_in_read_window_closes),
        cmocka_unit_test(test_stop_in_open),
        cmocka_unit_test(test_read_once),
        cmocka_unit_test(test_eof_while_paused),
        cmocka_unit_test(test_eof_while_paused_no_handler),
        cmocka_unit_test(test_read_once_chained),
        cmocka_unit_test(test_close_while_paused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
