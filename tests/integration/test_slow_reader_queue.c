/* Integration: a peer that never reads. The server keeps writing 1 MiB
 * chunks from a timer; writes keep succeeding, nf_conn_queued() grows far
 * beyond what the kernel buffers hold, and when the peer finally closes the
 * connection ends once, with its queue freed. */
#include "helpers.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CHUNK    (1u << 20)
#define N_CHUNKS 40
#define MiB      (1024.0 * 1024.0)

static struct {
    nf_conn_t *c;
    int opened, closed, reason;
    int chunks, write_errors, first_write_error;
    size_t queued[N_CHUNKS];
    int drains;
    nf_timer_t timer;
    char *chunk;
} g;

static void write_tick(nf_timer_t *t)
{
    if (!g.c) {
        nf_timer_stop(t);
        return;
    }
    int rc = nf_conn_write(g.c, g.chunk, CHUNK);
    if (rc != 0) {
        if (!g.write_errors)
            g.first_write_error = rc;
        g.write_errors++;
    }
    g.queued[g.chunks] = nf_conn_queued(g.c);
    g.chunks++;
    if (g.chunks == N_CHUNKS)
        nf_timer_stop(t);
}

static void on_open(nf_conn_t *c)
{
    g.opened++;
    g.c = c;
    nf_timer_init(nf_conn_loop(c), &g.timer);
    nf_timer_start(&g.timer, write_tick, 1, 3);
}

static void on_drain(nf_conn_t *c)
{
    (void)c;
    g.drains++;
}

static void on_close(nf_conn_t *c, int reason)
{
    (void)c;
    g.closed++;
    g.reason = reason;
    g.c = NULL;
    nf_timer_stop(&g.timer);
}

static const nf_conn_handler_t handler = {
    .on_open = on_open,
    .on_read = h_ignore_read,
    .on_drain = on_drain,
    .on_close = on_close,
};

static void test_slow_reader_queue(void **state)
{
    (void)state;
    char *chunk = malloc(CHUNK);
    assert_non_null(chunk);
    memset(&g, 0, sizeof g);
    g.chunk = chunk;
    h_pattern_fill(chunk, CHUNK, 0, 3);
    h_fixture_t f;
    h_fixture_start(&f, &handler, NULL);
    nf_loop_t *loop = f.loop;
    int fd = f.fd;
    H_RUN_UNTIL(loop, g.chunks == N_CHUNKS || g.closed, 20000);
    h_run_for(loop, 50); /* let the kernel take what it will */
    assert_int_equal(g.closed, 0);
    if (g.write_errors)
        fail_msg("%d nf_conn_write calls failed, first with %s", g.write_errors, nf_err_name(g.first_write_error));

    size_t q = nf_conn_queued(g.c);
    nf_loop_stats_t s = h_stats(loop);
    print_message("[ info     ] queued %.1f MiB after 10 chunks, %.1f MiB after %d, %.1f MiB "
                  "now; kernel took %.1f MiB\n",
                  g.queued[9] / MiB, g.queued[N_CHUNKS - 1] / MiB, N_CHUNKS, q / MiB, s.bytes_out / MiB);
    /* The kernel buffers a few MiB at most; the rest waits in the queue. */
    uint64_t written = (uint64_t)N_CHUNKS * CHUNK;
    assert_true(q + s.bytes_out == written);
    assert_true(q > 24u * CHUNK);
    assert_true(g.queued[N_CHUNKS - 1] > g.queued[9] + 25u * CHUNK);
    for (int i = 10; i < N_CHUNKS; i++)
        assert_true(g.queued[i] > g.queued[i - 1]);

    close(fd); /* unread data: the peer's kernel answers with a reset */
    H_RUN_UNTIL(loop, g.closed >= 1, 10000);
    h_run_for(loop, 30);
    assert_int_equal(g.closed, 1);
    if (g.reason != -ECONNRESET && g.reason != -EPIPE && g.reason != NF_EOF)
        fail_msg("on_close reason %d (%s)", g.reason, nf_err_name(g.reason));
    assert_false(nf_timer_active(&g.timer));
    assert_int_equal(h_stats(loop).conns_open, 0);

    h_fixture_finish(&f, 5000);
    free(chunk);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_slow_reader_queue),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
