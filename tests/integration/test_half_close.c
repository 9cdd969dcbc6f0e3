/* Integration: half-close in both directions.
 *  - The client shuts down its write side; the server (with on_eof) still
 *    writes a reply after EOF and ends; the client reads all of it, then EOF.
 *  - Without on_eof, queued writes are still flushed before the close.
 *  - nf_conn_shutdown: the client reads EOF while the server can still read.
 *  - Both ends netframe: the client shuts down after its request, reads the
 *    reply; the server's EOF then ends the client's connection. */
#include "helpers.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define REQ_SIZE   (100u * 1024)
#define REPLY_SIZE (3u << 20)

static struct {
    int opened, closed, reason, eofs, eof_reads_after;
    size_t got;
    int bad_bytes;
    int write_rc_after_eof;
    int write_rc_after_shutdown;
    int shutdown_rc;
    nf_conn_t *c;
    char small[64];
} g;

static void reset_g(void)
{
    memset(&g, 0, sizeof g);
    g.reason = 12345;
    g.write_rc_after_eof = 12345;
    g.write_rc_after_shutdown = 12345;
    g.shutdown_rc = 12345;
}

static void srv_on_open(nf_conn_t *c)
{
    g.opened++;
    g.c = c;
}

static void srv_on_read(nf_conn_t *c, const char *data, size_t len)
{
    (void)c;
    if (g.eofs)
        g.eof_reads_after++;
    if (h_pattern_check(data, len, g.got, 11) != SIZE_MAX)
        g.bad_bytes++;
    g.got += len;
}

/* After EOF: reply with REPLY_SIZE bytes in pieces, then a graceful end. */
static void srv_on_eof(nf_conn_t *c)
{
    g.eofs++;
    char *p = malloc(REPLY_SIZE);
    h_pattern_fill(p, REPLY_SIZE, 0, 12);
    int rc = 0;
    for (size_t off = 0; off < REPLY_SIZE && rc == 0; off += 256 * 1024)
        rc = nf_conn_write(c, p + off, 256 * 1024);
    free(p);
    g.write_rc_after_eof = rc;
    nf_conn_end(c);
}

static void srv_on_close(nf_conn_t *c, int reason)
{
    (void)c;
    g.closed++;
    g.reason = reason;
    g.c = NULL;
}

static const nf_conn_handler_t eof_handler = {
    .on_open = srv_on_open,
    .on_read = srv_on_read,
    .on_eof = srv_on_eof,
    .on_close = srv_on_close,
};

typedef struct client {
    uint16_t port;
    size_t req, reply;
    uint32_t reply_seed;
    h_result_t res;
} client_t;

/* Sends req pattern bytes (seed 11), shuts down writing, reads `reply`
 * pattern bytes of reply_seed, then expects EOF. */
static void *half_close_client(void *arg)
{
    client_t *cl = arg;
    int fd = h_peer_connect(&cl->res, "127.0.0.1", cl->port);
    if (fd < 0)
        return h_peer_done(&cl->res);
    char *req = malloc(cl->req);
    h_pattern_fill(req, cl->req, 0, 11);
    int rc = h_send_all(fd, req, cl->req, 10000);
    free(req);
    if (rc != 0) {
        h_result_fail(&cl->res, "send: %s", strerror(-rc));
        goto out_close;
    }
    if (shutdown(fd, SHUT_WR) != 0) {
        h_result_fail(&cl->res, "shutdown: %s", strerror(errno));
        goto out_close;
    }
    char *reply = malloc(cl->reply);
    ssize_t n = h_recv_full(fd, reply, cl->reply, 15000);
    if (n != (ssize_t)cl->reply) {
        h_result_fail(&cl->res, "reply: got %zd of %zu bytes (%s)", n, cl->reply, n < 0 ? strerror((int)-n) : "EOF");
    } else {
        size_t bad = h_pattern_check(reply, cl->reply, 0, cl->reply_seed);
        if (bad != SIZE_MAX)
            h_result_fail(&cl->res, "reply byte %zu differs", bad);
        rc = h_recv_eof(fd, 10000);
        if (rc != 0)
            h_result_fail(&cl->res, "after the reply: expected EOF, got %d", rc);
    }
    free(reply);
out_close:
    close(fd);
    return h_peer_done(&cl->res);
}

static void test_write_after_peer_eof(void **state)
{
    (void)state;
    reset_g();
    nf_loop_t *loop = h_loop_new();
    nf_listener_t *l;
    static client_t cl;
    memset(&cl, 0, sizeof cl);
    cl.port = h_listen(loop, NULL, &eof_handler, NULL, &l);
    cl.req = REQ_SIZE;
    cl.reply = REPLY_SIZE;
    cl.reply_seed = 12;
    pthread_t t = h_thread_start(half_close_client, &cl);
    H_RUN_UNTIL(loop, atomic_load(&cl.res.done) && g.closed == 1, 20000);
    h_thread_join(t, 5000);
    H_ASSERT_PEER_OK(&cl.res);
    h_run_for(loop, 20);
    assert_int_equal(g.opened, 1);
    assert_int_equal(g.eofs, 1);
    assert_int_equal(g.got, REQ_SIZE);
    assert_int_equal(g.bad_bytes, 0);
    assert_int_equal(g.eof_reads_after, 0);
    H_ASSERT_ERR(g.write_rc_after_eof, 0);
    assert_int_equal(g.closed, 1);
    H_ASSERT_ERR(g.reason, NF_CLOSE_LOCAL);
    nf_loop_stats_t s = h_stats(loop);
    assert_int_equal(s.bytes_out, REPLY_SIZE);
    assert_int_equal(s.bytes_in, REQ_SIZE);
    h_listener_finish(loop, l, 5000);
}

/* Without on_eof: an echo server whose queue still holds megabytes when EOF
 * arrives must send them all before closing with NF_EOF. The client sends
 * all 8 MiB before it reads: the write-queue pause is turned off, else the
 * server would stop reading at 1 MiB queued (issue 13) and the client's
 * send would wait for a read that never comes (test_write_limits covers
 * EOF during that pause). */
static void test_eof_flushes_queue(void **state)
{
    (void)state;
    nf_loop_t *loop = h_loop_new();
    h_echo_reset();
    nf_listener_t *l;
    static client_t cl;
    memset(&cl, 0, sizeof cl);
    nf_listen_config_t lc = {.handler = &h_echo_handler, .write_high_water = NF_WRITE_LIMIT_OFF};
    cl.port = h_listen_cfg(loop, &lc, &l);
    cl.req = 8u << 20;
    cl.reply = 8u << 20;
    cl.reply_seed = 11; /* the echo of the request */
    pthread_t t = h_thread_start(half_close_client, &cl);
    H_RUN_UNTIL(loop, atomic_load(&cl.res.done) && h_echo.closed == 1, 20000);
    h_thread_join(t, 5000);
    H_ASSERT_PEER_OK(&cl.res);
    assert_int_equal(h_echo.closed, 1);
    H_ASSERT_ERR(h_echo.last_reason, NF_EOF);
    assert_int_equal(h_echo.bytes, 8u << 20);
    h_listener_finish(loop, l, 5000);
}

/* nf_conn_shutdown on the server: the client reads the greeting and EOF,
 * then still sends; the server still reads. Writing after shutdown fails. */
static void shut_on_open(nf_conn_t *c)
{
    g.opened++;
    g.c = c;
    nf_conn_write(c, "greeting", 8);
    g.shutdown_rc = nf_conn_shutdown(c);
    g.write_rc_after_shutdown = nf_conn_write(c, "late", 4);
}

static void shut_on_read(nf_conn_t *c, const char *data, size_t len)
{
    (void)c;
    if (g.got + len <= sizeof g.small)
        memcpy(g.small + g.got, data, len);
    g.got += len;
}

static const nf_conn_handler_t shut_handler = {
    .on_open = shut_on_open,
    .on_read = shut_on_read,
    .on_close = srv_on_close,
};

static void test_server_shutdown(void **state)
{
    (void)state;
    reset_g();
    h_fixture_t f;
    h_fixture_start(&f, &shut_handler, NULL);
    nf_loop_t *loop = f.loop;
    int fd = f.fd;
    H_RUN_UNTIL(loop, g.opened == 1, 5000);
    H_ASSERT_ERR(g.shutdown_rc, 0);
    H_ASSERT_ERR(g.write_rc_after_shutdown, NF_ECLOSED);

    /* The client reads "greeting" then EOF (run the loop meanwhile). */
    char buf[16];
    size_t got = 0;
    int eof = 0;
    uint64_t deadline = h_now_ms() + 5000;
    while (!eof && h_now_ms() < deadline) {
        h_run_for(loop, 5);
        ssize_t n = recv(fd, buf + got, sizeof buf - got, MSG_DONTWAIT);
        if (n > 0)
            got += (size_t)n;
        else if (n == 0)
            eof = 1;
        else if (errno != EAGAIN && errno != EWOULDBLOCK)
            fail_msg("client recv: %s", strerror(errno));
    }
    assert_true(eof);
    assert_int_equal(got, 8);
    assert_memory_equal(buf, "greeting", 8);
    assert_int_equal(g.closed, 0); /* still open for reading */

    assert_int_equal(h_send_all(fd, "still here", 10, 5000), 0);
    H_RUN_UNTIL(loop, g.got == 10, 5000);
    assert_memory_equal(g.small, "still here", 10);
    assert_int_equal(g.closed, 0);

    close(fd);
    H_RUN_UNTIL(loop, g.closed == 1, 5000);
    H_ASSERT_ERR(g.reason, NF_EOF);
    h_fixture_finish(&f, 5000);
}

/* Both ends netframe: the client writes a request and shuts down; the server
 * replies after on_eof and ends; the client reads the reply and sees on_eof. */
static struct {
    int opened, closed, reason, eofs, bad;
    size_t got;
} gc;

static void cl_on_open(nf_conn_t *c)
{
    gc.opened++;
    char *p = malloc(REQ_SIZE);
    h_pattern_fill(p, REQ_SIZE, 0, 11);
    nf_conn_write(c, p, REQ_SIZE);
    free(p);
    if (nf_conn_shutdown(c) != 0)
        gc.bad++;
}

static void cl_on_read(nf_conn_t *c, const char *data, size_t len)
{
    (void)c;
    if (h_pattern_check(data, len, gc.got, 12) != SIZE_MAX)
        gc.bad++;
    gc.got += len;
}

static void cl_on_eof(nf_conn_t *c)
{
    gc.eofs++;
    nf_conn_close(c);
}

static void cl_on_close(nf_conn_t *c, int reason)
{
    (void)c;
    gc.closed++;
    gc.reason = reason;
}

static const nf_conn_handler_t cl_handler = {
    .on_open = cl_on_open,
    .on_read = cl_on_read,
    .on_eof = cl_on_eof,
    .on_close = cl_on_close,
};

static void test_nf_both_ends(void **state)
{
    (void)state;
    reset_g();
    memset(&gc, 0, sizeof gc);
    nf_loop_t *loop = h_loop_new();
    nf_listener_t *l;
    uint16_t port = h_listen(loop, NULL, &eof_handler, NULL, &l);
    h_connect(loop, "127.0.0.1", port, &cl_handler, NULL);
    H_RUN_UNTIL(loop, gc.closed == 1 && g.closed == 1, 20000);
    h_run_for(loop, 20);
    assert_int_equal(gc.bad, 0);
    assert_int_equal(g.got, REQ_SIZE);
    assert_int_equal(g.bad_bytes, 0);
    assert_int_equal(g.eofs, 1);
    H_ASSERT_ERR(g.reason, NF_CLOSE_LOCAL);
    assert_int_equal(gc.got, REPLY_SIZE);
    assert_int_equal(gc.closed, 1);
    /* The client's write side was already shut down, so the peer's EOF ends
     * the connection: either on_close(NF_EOF) directly, or on_eof first (our
     * on_eof closes, NF_CLOSE_LOCAL). */
    assert_true(gc.eofs <= 1);
    H_ASSERT_ERR(gc.reason, gc.eofs ? NF_CLOSE_LOCAL : NF_EOF);
    h_listener_finish(loop, l, 5000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_write_after_peer_eof),
        cmocka_unit_test(test_eof_flushes_queue),
        cmocka_unit_test(test_server_shutdown),
        cmocka_unit_test(test_nf_both_ends),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
