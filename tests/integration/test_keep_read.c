/* Integration: keeping read buffers past the callback (nf_conn_keep_read),
 * zero-copy writes (nf_conn_write_buf) and buffer accounting. */
#include "helpers.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define KEEP_TOTAL (8u << 20) /* more than the read ring holds (256 x 16 KiB) */
#define MAX_KEPT   65536

static struct {
    nf_loop_t *loop;
    int opened, closed, reason;
    nf_buf_t *kept[MAX_KEPT];
    int nkept;
    size_t got;
    int null_keeps, mismatch, kept_count_wrong;
    int keep_outside_ok; /* nf_conn_keep_read outside on_read returned NULL */
    uint64_t max_bufs_kept;
} g;

static void on_open(nf_conn_t *c)
{
    g.opened++;
    nf_buf_t *b = nf_conn_keep_read(c);
    g.keep_outside_ok = (b == NULL);
    if (b)
        nf_buf_unref(b);
}

static void keep_on_read(nf_conn_t *c, const char *data, size_t len)
{
    nf_buf_t *b = nf_conn_keep_read(c);
    if (!b) {
        g.null_keeps++;
        return;
    }
    if (b->base != data || b->len != len || b->refs < 1)
        g.mismatch++;
    if (g.nkept < MAX_KEPT)
        g.kept[g.nkept++] = b;
    else
        nf_buf_unref(b);
    g.got += len;
    nf_loop_stats_t s = h_stats(g.loop);
    if (s.bufs_kept != (uint64_t)g.nkept)
        g.kept_count_wrong++;
    if (s.bufs_kept > g.max_bufs_kept)
        g.max_bufs_kept = s.bufs_kept;
}

static void on_close(nf_conn_t *c, int reason)
{
    (void)c;
    g.closed++;
    g.reason = reason;
}

static const nf_conn_handler_t keep_handler = {
    .on_open = on_open,
    .on_read = keep_on_read,
    .on_close = on_close,
};

static void test_keep_read_buffers(void **state)
{
    (void)state;
    memset(&g, 0, sizeof g);
    nf_loop_t *loop = h_loop_new();
    g.loop = loop;
    nf_listener_t *l;
    uint16_t port = h_listen(loop, NULL, &keep_handler, NULL, &l);
    h_run_for(loop, 20);
    nf_loop_stats_t s0 = h_stats(loop);
    assert_int_equal(s0.bufs_kept, 0);

    int fd = h_tcp_connect("127.0.0.1", port);
    assert_true(fd >= 0);
    char *data = malloc(KEEP_TOTAL);
    h_pattern_fill(data, KEEP_TOTAL, 0, 21);
    /* send from the main thread in slices while the loop runs */
    h_set_nonblock(fd, 1);
    size_t sent = 0;
    uint64_t deadline = h_now_ms() + 20000;
    while ((sent < KEEP_TOTAL || g.got < KEEP_TOTAL) && h_now_ms() < deadline) {
        if (sent < KEEP_TOTAL) {
            ssize_t n = send(fd, data + sent, KEEP_TOTAL - sent, MSG_DONTWAIT | MSG_NOSIGNAL);
            if (n > 0)
                sent += (size_t)n;
        }
        h_run_for(loop, 2);
    }
    assert_int_equal(g.got, KEEP_TOTAL);
    assert_true(g.keep_outside_ok);
    assert_int_equal(g.null_keeps, 0);
    assert_int_equal(g.mismatch, 0);
    assert_int_equal(g.kept_count_wrong, 0);

    /* The kept buffers still hold exactly the bytes that were read: none of
     * them was handed back to the kernel and overwritten. */
    h_run_for(loop, 20);
    nf_loop_stats_t s1 = h_stats(loop);
    assert_int_equal(s1.bufs_kept, g.nkept);
    if (strcmp(nf_loop_backend_name(loop), "io_uring") == 0)
        assert_true(g.nkept > 256); /* more than the provided-buffer ring holds */
    size_t off = 0;
    for (int i = 0; i < g.nkept; i++) {
        nf_buf_t *b = g.kept[i];
        size_t bad = h_pattern_check(b->base, b->len, off, 21);
        if (bad != SIZE_MAX)
            fail_msg("kept buffer %d of %d: byte %zu (stream offset %zu) was overwritten", i, g.nkept, bad, off + bad);
        off += b->len;
    }
    assert_int_equal(off, KEEP_TOTAL);

    /* An extra reference keeps a buffer alive across one unref. */
    nf_buf_t *b0 = nf_buf_ref(g.kept[0]);
    assert_ptr_equal(b0, g.kept[0]);
    assert_int_equal(b0->refs, 2);
    nf_buf_unref(b0);
    assert_int_equal(g.kept[0]->refs, 1);

    for (int i = 0; i < g.nkept; i++)
        nf_buf_unref(g.kept[i]);
    int nkept = g.nkept;
    g.nkept = 0;
    h_run_for(loop, 20);
    nf_loop_stats_t s2 = h_stats(loop);
    print_message("[ info     ] kept %d buffers (max bufs_kept %llu); bufs_in_use %llu -> %llu -> "
                  "%llu\n",
                  nkept, (unsigned long long)g.max_bufs_kept, (unsigned long long)s0.bufs_in_use,
                  (unsigned long long)s1.bufs_in_use, (unsigned long long)s2.bufs_in_use);
    assert_int_equal(s2.bufs_kept, 0);
    assert_int_equal(s2.bufs_in_use, s0.bufs_in_use);

    close(fd);
    H_RUN_UNTIL(loop, g.closed == 1, 5000);
    H_ASSERT_ERR(g.reason, NF_EOF);
    free(data);
    h_listener_finish(loop, l, 5000);
}

/* A buffer kept until after the connection closed is still valid, and the
 * loop frees cleanly once it is dropped. */
static nf_buf_t *g_late;

static void late_on_read(nf_conn_t *c, const char *data, size_t len)
{
    (void)data;
    (void)len;
    if (!g_late)
        g_late = nf_conn_keep_read(c);
}

static const nf_conn_handler_t late_handler = {
    .on_open = on_open,
    .on_read = late_on_read,
    .on_close = on_close,
};

static void test_keep_past_close(void **state)
{
    (void)state;
    memset(&g, 0, sizeof g);
    g_late = NULL;
    h_fixture_t f;
    h_fixture_start(&f, &late_handler, NULL);
    nf_loop_t *loop = f.loop;
    int fd = f.fd;
    assert_int_equal(h_send_all(fd, "keep me", 7, 5000), 0);
    H_RUN_UNTIL(loop, g_late != NULL, 5000);
    close(fd);
    H_RUN_UNTIL(loop, g.closed == 1, 5000);
    nf_listener_close(f.l, NULL);
    h_run_for(loop, 20);
    assert_int_equal(g_late->len, 7);
    assert_memory_equal(g_late->base, "keep me", 7);
    assert_int_equal(h_stats(loop).bufs_kept, 1);
    nf_buf_unref(g_late);
    assert_int_equal(h_stats(loop).bufs_kept, 0);
    h_loop_finish(loop, 5000);
}

/* Zero-copy echo: keep each read and hand it straight to nf_conn_write_buf. */
static void zc_on_read(nf_conn_t *c, const char *data, size_t len)
{
    (void)data;
    (void)len;
    nf_buf_t *b = nf_conn_keep_read(c);
    if (!b) {
        g.null_keeps++;
        return;
    }
    if (nf_conn_write_buf(c, b) != 0) /* takes our reference */
        g.mismatch++;
}

static const nf_conn_handler_t zc_handler = {
    .on_open = on_open,
    .on_read = zc_on_read,
    .on_close = on_close,
};

static void test_zero_copy_echo(void **state)
{
    (void)state;
    memset(&g, 0, sizeof g);
    nf_loop_t *loop = h_loop_new();
    nf_listener_t *l;
    static h_echo_client_t z;
    memset(&z, 0, sizeof z);
    z.port = h_listen(loop, NULL, &zc_handler, NULL, &l);
    z.size = 4u << 20, z.rounds = 1, z.seed = 33, z.timeout_ms = 15000;
    h_run_for(loop, 10);
    nf_loop_stats_t s0 = h_stats(loop);
    pthread_t t = h_thread_start(h_echo_client_thread, &z);
    H_RUN_UNTIL(loop, atomic_load(&z.res.done) && g.closed == 1, 20000);
    h_thread_join(t, 5000);
    H_ASSERT_PEER_OK(&z.res);
    h_run_for(loop, 20);
    assert_int_equal(g.null_keeps, 0);
    assert_int_equal(g.mismatch, 0);
    nf_loop_stats_t s = h_stats(loop);
    assert_int_equal(s.bufs_kept, 0); /* every write_buf reference was dropped */
    assert_int_equal(s.bufs_in_use, s0.bufs_in_use);
    assert_int_equal(s.bytes_out, 4u << 20);
    h_listener_finish(loop, l, 5000);
}

/* nf_buf_wrap: the free callback runs exactly once, after the bytes left. */
static int g_wrap_freed;
static void wrap_free(void *base, void *arg)
{
    g_wrap_freed++;
    if (arg != (void *)&g_wrap_freed)
        g_wrap_freed += 1000;
    free(base);
}

static void wrap_on_open(nf_conn_t *c)
{
    g.opened++;
    size_t n = 1u << 20;
    char *p = malloc(n);
    h_pattern_fill(p, n, 0, 44);
    nf_buf_t *b = nf_buf_wrap(p, n, wrap_free, &g_wrap_freed);
    if (!b || b->base != p || b->len != n || b->cap != n || b->refs != 1) {
        g.mismatch++;
        return;
    }
    if (nf_conn_write_buf(c, b) != 0)
        g.mismatch++;
    nf_conn_end(c);
}

static const nf_conn_handler_t wrap_handler = {
    .on_open = wrap_on_open,
    .on_read = keep_on_read,
    .on_close = on_close,
};

static void test_write_buf_wrap(void **state)
{
    (void)state;
    memset(&g, 0, sizeof g);
    g_wrap_freed = 0;
    h_fixture_t f;
    h_fixture_start(&f, &wrap_handler, NULL);
    nf_loop_t *loop = f.loop;
    g.loop = f.loop;
    int fd = f.fd;
    h_set_nonblock(fd, 1);
    char *buf = malloc(1u << 20);
    size_t got = 0;
    uint64_t deadline = h_now_ms() + 10000;
    while (got < (1u << 20) && h_now_ms() < deadline) {
        h_run_for(loop, 2);
        ssize_t n = recv(fd, buf + got, (1u << 20) - got, MSG_DONTWAIT);
        if (n > 0)
            got += (size_t)n;
        else if (n == 0)
            break;
    }
    assert_int_equal(got, 1u << 20);
    assert_true(h_pattern_check(buf, got, 0, 44) == SIZE_MAX);
    free(buf);
    H_RUN_UNTIL(loop, g.closed == 1, 5000);
    H_ASSERT_ERR(g.reason, NF_CLOSE_LOCAL);
    assert_int_equal(g.mismatch, 0);
    assert_int_equal(g_wrap_freed, 1);
    assert_int_equal(h_recv_eof(fd, 5000), 0);
    close(fd);

    /* Plain buffers: new / ref / unref. */
    nf_buf_t *b = nf_buf_new(100);
    assert_non_null(b);
    assert_int_equal(b->len, 0);
    assert_true(b->cap >= 100);
    assert_int_equal(b->refs, 1);
    nf_buf_unref(nf_buf_ref(b));
    assert_int_equal(b->refs, 1);
    nf_buf_unref(b);
    nf_buf_unref(NULL);

    h_fixture_finish(&f, 5000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keep_read_buffers),
        cmocka_unit_test(test_keep_past_close),
        cmocka_unit_test(test_zero_copy_echo),
        cmocka_unit_test(test_write_buf_wrap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
