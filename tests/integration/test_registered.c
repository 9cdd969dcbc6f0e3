/* Integration: io_uring registered I/O and the read-buffer ring under load,
 * run on both backends (on epoll the same traffic must pass). On io_uring
 * each feature is required whenever the kernel has it, asked of the kernel
 * directly (helpers.c's h_kernel_has_*), not of the library's own report.
 *
 *  - a fixed-file table smaller than the number of connections: the first
 *    connections get slots, the others fall back to their plain fd, every
 *    byte echoes, slots are given back at close and reused;
 *  - zero-copy sends (zc_send_min) to a slow reader: the bytes arrive intact
 *    although each written buffer is scribbled over by its free callback,
 *    which therefore must not run before the kernel's notification; a reader
 *    that leaves mid-stream: no leak, every free callback runs once;
 *  - a read-buffer ring of 2 buffers under 24 concurrent streams: it runs
 *    dry (counted) and no byte is lost or reordered. */
#include "helpers.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int has_feature(nf_loop_t *loop, const char *what) { return strstr(nf_loop_features(loop), what) != NULL; }

static int is_uring(nf_loop_t *loop) { return strcmp(nf_loop_backend_name(loop), "io_uring") == 0; }

/* On io_uring with a kernel that has the feature, the loop must report it. */
static int require_feature(nf_loop_t *loop, int kernel_has, const char *what)
{
    int want = is_uring(loop) && kernel_has;
    if (want && !has_feature(loop, what))
        fail_msg("the kernel has it, but the loop does not report \"%s\": %s", what, nf_loop_features(loop));
    if (!want && has_feature(loop, what))
        fail_msg("the loop reports \"%s\" where it cannot be on: %s", what, nf_loop_features(loop));
    return want;
}

/* ---- the fixed file table runs full ------------------------------------- */

static void test_fixed_table_full(void **state)
{
    (void)state;
    enum { SLOTS = 4, N = 12 };
    nf_loop_config_t cfg;
    nf_loop_config_init(&cfg);
    cfg.fixed_files = SLOTS;
    nf_loop_t *loop = h_loop_new_cfg(&cfg);
    int fixed = require_feature(loop, h_kernel_has_fixed_files(), "files=fixed:4 ");
    if (is_uring(loop) && !fixed)
        print_message("[ info     ] this kernel refuses a fixed file table: plain fds\n");
    h_echo_reset();
    nf_listener_t *l;
    uint16_t port = h_listen(loop, "127.0.0.1", &h_echo_handler, NULL, &l);

    for (int phase = 0; phase < 2; phase++) { /* the second phase reuses the slots */
        atomic_int ready = 0, release = 0;
        h_echo_client_t cl[N];
        pthread_t th[N];
        memset(cl, 0, sizeof cl);
        for (int i = 0; i < N; i++) {
            cl[i].port = port;
            cl[i].size = 1 + (size_t)i * 7000;
            cl[i].rounds = 3;
            cl[i].seed = 100u * (uint32_t)phase + (uint32_t)i;
            cl[i].ready = &ready;
            cl[i].release = &release;
            th[i] = h_thread_start(h_echo_client_thread, &cl[i]);
        }
        H_RUN_UNTIL(loop, atomic_load(&ready) == N || h_echo_clients_done(cl, N), 12000);
        nf_loop_stats_t s = h_stats(loop);
        print_message("[ info     ] phase %d: %llu of %d connections on fixed slots\n", phase,
                      (unsigned long long)s.conns_fixed_file, N);
        assert_int_equal(s.conns_open, N);
        assert_int_equal(s.conns_fixed_file, fixed ? SLOTS : 0); /* the rest: plain fds */
        atomic_store(&release, 1);
        H_RUN_UNTIL(loop, h_echo_clients_done(cl, N) && h_echo.closed == (phase + 1) * N, 12000);
        for (int i = 0; i < N; i++) {
            h_thread_join(th[i], 5000);
            H_ASSERT_PEER_OK(&cl[i].res);
        }
        s = h_stats(loop);
        assert_int_equal(s.conns_fixed_file, 0); /* every slot given back */
        assert_int_equal(s.conns_open, 0);
    }
    assert_int_equal(h_echo.close_eof, 2 * N);
    assert_int_equal(h_echo.write_errors, 0);
    h_listener_finish(loop, l, 5000);
}

/* Urgent data needs the plain fd (recv MSG_OOB) while reads go through a
 * fixed slot: both work on one connection. */
static int g_urgent_byte = -1;
static void urg_on_read(nf_conn_t *c, const char *d, size_t n) { nf_conn_write(c, d, n); }
static void urg_on_urgent(nf_conn_t *c, unsigned char b)
{
    (void)c;
    g_urgent_byte = b;
}
static int g_urg_closed;
static void urg_on_close(nf_conn_t *c, int r) { (void)c, (void)r, g_urg_closed++; }
static const nf_conn_handler_t urg_handler = {
    .on_read = urg_on_read, .on_urgent = urg_on_urgent, .on_close = urg_on_close};

static void test_fixed_file_plain_fd_uses(void **state)
{
    (void)state;
    nf_loop_config_t cfg;
    nf_loop_config_init(&cfg);
    cfg.fixed_files = 16;
    nf_loop_t *loop = h_loop_new_cfg(&cfg);
    nf_listener_t *l;
    uint16_t port = h_listen(loop, "127.0.0.1", &urg_handler, NULL, &l);
    int fd = h_tcp_connect("127.0.0.1", port);
    assert_true(fd >= 0);
    H_RUN_UNTIL(loop, h_stats(loop).conns_open == 1, 5000);
    assert_int_equal(send(fd, "ab", 2, 0), 2);
    assert_int_equal(send(fd, "!", 1, MSG_OOB), 1);
    assert_int_equal(send(fd, "cd", 2, 0), 2);
    H_RUN_UNTIL(loop, g_urgent_byte == '!' && h_stats(loop).bytes_out >= 4, 5000);
    char buf[8];
    h_set_nonblock(fd, 1);
    assert_int_equal(h_recv_full(fd, buf, 4, 5000), 4);
    assert_memory_equal(buf, "abcd", 4);
    close(fd);
    H_RUN_UNTIL(loop, g_urg_closed == 1, 5000);
    assert_int_equal(h_stats(loop).conns_fixed_file, 0);
    h_listener_finish(loop, l, 5000);
}

/* ---- zero-copy sends ----------------------------------------------------- */

enum { ZC_TOTAL = 6 << 20 };

typedef struct zc_server {
    int freed;   /* free callbacks run */
    int wrapped; /* buffers handed over */
    int closed;
    int reason;
    uint64_t sent;   /* bytes queued */
    int leave_early; /* the reader leaves mid-stream */
} zc_server_t;

static zc_server_t g_zc;

/* The buffer's free callback scribbles over it first: if the kernel still
 * read it (a zero-copy send not yet notified), the reader would see it. */
static void zc_free(void *base, void *arg)
{
    memset(base, 0xEE, (size_t)(uintptr_t)arg);
    free(base);
    g_zc.freed++;
}

static void zc_on_open(nf_conn_t *c)
{
    /* Sizes above and below the threshold, handed over and copied. */
    static const size_t sizes[] = {300000, 4096, 100, 65536, 1 << 20, 20000, 3000, 131072};
    uint64_t off = 0;
    for (unsigned i = 0; off < ZC_TOTAL; i++) {
        size_t n = sizes[i % (sizeof sizes / sizeof sizes[0])];
        if (off + n > ZC_TOTAL)
            n = ZC_TOTAL - off;
        char *p = malloc(n);
        assert_non_null(p);
        h_pattern_fill(p, n, off, 77);
        if (i % 3 == 2) {
            assert_int_equal(nf_conn_write(c, p, n), 0);
            free(p);
        } else {
            nf_buf_t *b = nf_buf_wrap(p, n, zc_free, (void *)(uintptr_t)n);
            assert_non_null(b);
            g_zc.wrapped++;
            assert_int_equal(nf_conn_write_buf(c, b), 0);
        }
        off += n;
    }
    g_zc.sent = off;
    nf_conn_end(c);
}
static void zc_on_close(nf_conn_t *c, int reason)
{
    (void)c;
    g_zc.closed++;
    g_zc.reason = reason;
}
static const nf_conn_handler_t zc_handler = {.on_open = zc_on_open, .on_read = h_ignore_read, .on_close = zc_on_close};

typedef struct zc_reader {
    uint16_t port;
    int leave_early;
    uint64_t got;
    h_result_t res;
} zc_reader_t;

static void *zc_reader_thread(void *arg)
{
    zc_reader_t *r = arg;
    int fd = h_peer_connect(&r->res, "127.0.0.1", r->port);
    if (fd < 0)
        return h_peer_done(&r->res);
    h_sleep_ms(100); /* the server's queue fills up first */
    static char buf[65536];
    for (;;) {
        ssize_t n = recv(fd, buf, r->got < 1000000 ? 4096 : sizeof buf, 0);
        if (n < 0) {
            h_result_fail(&r->res, "recv after %llu bytes: %s", (unsigned long long)r->got, strerror(errno));
            break;
        }
        if (n == 0)
            break;
        size_t bad = h_pattern_check(buf, (size_t)n, r->got, 77);
        if (bad != SIZE_MAX) {
            h_result_fail(&r->res, "byte %llu differs (0x%02x)", (unsigned long long)(r->got + bad),
                          (unsigned char)buf[bad]);
            break;
        }
        r->got += (uint64_t)n;
        if (r->got < 1000000 && r->got % 65536 < 4096)
            h_sleep_ms(2); /* slow at first */
        if (r->leave_early && r->got >= 500000)
            break;
    }
    if (r->leave_early)
        h_close_reset(fd);
    else
        close(fd);
    return h_peer_done(&r->res);
}

static void zc_run(int leave_early)
{
    memset(&g_zc, 0, sizeof g_zc);
    nf_loop_config_t cfg;
    nf_loop_config_init(&cfg);
    cfg.zc_send_min = 4096;
    nf_loop_t *loop = h_loop_new_cfg(&cfg);
    int zc = require_feature(loop, h_kernel_has_send_zc(), "send_zc=on>=4096");
    nf_listener_t *l;
    uint16_t port = h_listen(loop, "127.0.0.1", &zc_handler, NULL, &l);
    zc_reader_t r = {.port = port, .leave_early = leave_early};
    pthread_t th = h_thread_start(zc_reader_thread, &r);
    int ok;
    H_RUN_WAIT(ok, loop, atomic_load(&r.res.done) && g_zc.closed == 1, 15000);
    if (!ok) {
        nf_loop_stats_t s = h_stats(loop);
        fail_msg("not finished: reader got %llu bytes (done %d: %s), server closed %d, bytes_out %llu, zc %llu",
                 (unsigned long long)r.got, atomic_load(&r.res.done), r.res.msg, g_zc.closed,
                 (unsigned long long)s.bytes_out, (unsigned long long)s.zc_sends);
    }
    h_thread_join(th, 5000);
    H_ASSERT_PEER_OK(&r.res);
    nf_loop_stats_t s = h_stats(loop);
    print_message("[ info     ] zero-copy sends %llu (copied by the kernel: %llu), %d buffers freed of %d\n",
                  (unsigned long long)s.zc_sends, (unsigned long long)s.zc_copied, g_zc.freed, g_zc.wrapped);
    if (!leave_early) {
        assert_int_equal(r.got, ZC_TOTAL);
        assert_int_equal(s.bytes_out, ZC_TOTAL);
        if (zc)
            assert_true(s.zc_sends > 0);
    } else {
        /* The reader reset the connection with unread bytes: the server
         * cannot have sent everything, and its connection ends in an error,
         * not a clean close. */
        print_message("[ info     ] the server's connection closed with %s after %llu of %d bytes\n",
                      nf_err_name(g_zc.reason), (unsigned long long)s.bytes_out, ZC_TOTAL);
        assert_true(s.bytes_out < ZC_TOTAL);
        if (g_zc.reason != -ECONNRESET && g_zc.reason != -EPIPE)
            fail_msg("the server's connection closed with %s, expected -ECONNRESET or -EPIPE",
                     nf_err_name(g_zc.reason));
    }
    if (!zc)
        assert_int_equal(s.zc_sends, 0);
    assert_int_equal(g_zc.freed, g_zc.wrapped); /* each handed-over buffer released once */
    h_listener_finish(loop, l, 5000);
}

static void test_zc_send_slow_reader(void **state) { (void)state, zc_run(0); }
static void test_zc_send_reader_leaves(void **state) { (void)state, zc_run(1); }

/* ---- a read-buffer ring of 2 under 24 streams ----------------------------- */

static void test_ring_dry_many_conns(void **state)
{
    (void)state;
    enum { N = 24 };
    nf_loop_config_t cfg;
    nf_loop_config_init(&cfg);
    cfg.buf_count = 2;
    cfg.buf_size = 512;
    nf_loop_t *loop = h_loop_new_cfg(&cfg);
    int ring = require_feature(loop, h_kernel_has_multishot_recv(), "recv=multishot");
    h_echo_reset();
    nf_listener_t *l;
    uint16_t port = h_listen(loop, "127.0.0.1", &h_echo_handler, NULL, &l);
    h_echo_client_t cl[N];
    pthread_t th[N];
    memset(cl, 0, sizeof cl);
    uint64_t total = 0;
    for (int i = 0; i < N; i++) {
        cl[i].port = port;
        cl[i].size = 30000 + (size_t)i * 1111;
        cl[i].rounds = 2;
        cl[i].seed = 900u + (uint32_t)i;
        total += 2 * cl[i].size;
        th[i] = h_thread_start(h_echo_client_thread, &cl[i]);
    }
    H_RUN_UNTIL(loop, h_echo_clients_done(cl, N) && h_echo.closed == N, 15000);
    for (int i = 0; i < N; i++) {
        h_thread_join(th[i], 5000);
        H_ASSERT_PEER_OK(&cl[i].res); /* every byte checked by the client */
    }
    nf_loop_stats_t s = h_stats(loop);
    print_message("[ info     ] ring ran dry %llu times\n", (unsigned long long)s.bufs_starved);
    assert_int_equal(s.bytes_in, total);
    assert_int_equal(s.bytes_out, total);
    if (ring)
        assert_true(s.bufs_starved > 0);
    assert_int_equal(h_echo.close_eof, N);
    h_listener_finish(loop, l, 5000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixed_table_full),    cmocka_unit_test(test_fixed_file_plain_fd_uses),
        cmocka_unit_test(test_zc_send_slow_reader), cmocka_unit_test(test_zc_send_reader_leaves),
        cmocka_unit_test(test_ring_dry_many_conns),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
