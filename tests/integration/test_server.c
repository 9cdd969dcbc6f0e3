/* Integration: nf_server, N loops on N threads. Both spreads (SO_REUSEPORT,
 * one acceptor) in every mode: echo through many connections, connections
 * spread over the loops, posts to each loop, stopping while connections are
 * busy (and from a signal handler), a read-buffer ring that runs dry under
 * load. ASan runs catch leaks of loops, connections and hand-overs. */
#include "helpers.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* A thread-safe echo handler: the loops run on several threads. */
static atomic_int g_open, g_closed, g_close_local, g_close_timeout;
static atomic_ullong g_bytes;

static void srv_open(nf_conn_t *c) { (void)c, atomic_fetch_add(&g_open, 1); }
static void srv_read(nf_conn_t *c, const char *data, size_t len)
{
    nf_buf_t *b = nf_conn_keep_read(c);
    if (b)
        nf_conn_write_buf(c, b);
    else
        nf_conn_write(c, data, len);
    atomic_fetch_add(&g_bytes, len);
}
static void srv_close(nf_conn_t *c, int reason)
{
    (void)c;
    atomic_fetch_add(&g_closed, 1);
    if (reason == NF_CLOSE_LOCAL)
        atomic_fetch_add(&g_close_local, 1);
    if (reason == -ETIMEDOUT)
        atomic_fetch_add(&g_close_timeout, 1);
}
static const nf_conn_handler_t srv_handler = {.on_open = srv_open, .on_read = srv_read, .on_close = srv_close};

static void reset(void)
{
    atomic_store(&g_open, 0);
    atomic_store(&g_closed, 0);
    atomic_store(&g_close_local, 0);
    atomic_store(&g_close_timeout, 0);
    atomic_store(&g_bytes, 0);
}

static nf_server_t *start(nf_server_spread_t spread, int mode, unsigned threads, unsigned buf_count, unsigned buf_size)
{
    nf_server_config_t cfg;
    nf_server_config_init(&cfg);
    cfg.threads = threads;
    cfg.spread = spread;
    cfg.loop.mode = mode;
    cfg.loop.buf_count = buf_count;
    cfg.loop.buf_size = buf_size;
    cfg.listen.port = 0;
    cfg.listen.handler = &srv_handler;
    nf_server_t *s = NULL;
    int rc = nf_server_start(&s, &cfg);
    h_skip_if_uring_refused(rc); /* any other NF_EBACKEND fails below */
    H_ASSERT_ERR(rc, 0);
    assert_int_equal(nf_server_threads(s), threads);
    return s;
}

static uint16_t port_of(nf_server_t *s)
{
    nf_addr_t a;
    nf_server_addr(s, &a);
    return nf_addr_port(&a);
}

static void wait_until(atomic_int *v, int want, unsigned ms)
{
    uint64_t dl = h_now_ms() + ms;
    while (atomic_load(v) < want && h_now_ms() < dl)
        h_sleep_ms(1);
    if (atomic_load(v) < want)
        fail_msg("timed out: %d of %d", atomic_load(v), want);
}

/* buf_count != 0 asks for a ring that must run dry: on io_uring, wherever the
 * kernel has a multishot receive on a buffer ring (asked of the kernel, not
 * the library), the loops must count starvation. */
static void echo_pool(nf_server_spread_t spread, int mode, unsigned buf_count, unsigned buf_size)
{
    enum { THREADS = 2, N = 16 };
    reset();
    nf_server_t *s = start(spread, mode, THREADS, buf_count, buf_size);
    h_echo_client_t cl[N];
    pthread_t th[N];
    memset(cl, 0, sizeof cl);
    for (int i = 0; i < N; i++) {
        cl[i].port = port_of(s);
        cl[i].size = i % 4 == 0 ? 300000 : 1 + (size_t)i * 500;
        cl[i].rounds = 3;
        cl[i].seed = 11u * (uint32_t)i;
        cl[i].timeout_ms = 8000;
        th[i] = h_thread_start(h_echo_client_thread, &cl[i]);
    }
    for (int i = 0; i < N; i++) {
        h_thread_join(th[i], 9000);
        H_ASSERT_PEER_OK(&cl[i].res);
    }
    wait_until(&g_closed, N, 3000);

    nf_loop_stats_t sum, per[THREADS];
    H_ASSERT_ERR(nf_server_stats(s, &sum, per), 0);
    print_message("[ info     ] %s: loop 0 accepted %llu, loop 1 accepted %llu, starved %llu\n",
                  spread == NF_SERVER_ACCEPTOR ? "acceptor" : "reuseport", (unsigned long long)per[0].conns_accepted,
                  (unsigned long long)per[1].conns_accepted, (unsigned long long)sum.bufs_starved);
    assert_int_equal(sum.conns_accepted, N);
    assert_int_equal(sum.conns_closed, N);
    assert_int_equal(sum.conns_open, 0);
    for (int i = 0; i < THREADS; i++)
        assert_true(per[i].conns_accepted > 0); /* both loops got connections */
    if (spread == NF_SERVER_ACCEPTOR)
        assert_int_equal(per[0].conns_accepted, N / THREADS); /* round robin */
    assert_int_equal(sum.bytes_in, atomic_load(&g_bytes));
    assert_int_equal(sum.bytes_out, sum.bytes_in);
    const char *be = getenv("NF_BACKEND");
    if (buf_count && be && strcmp(be, "uring") == 0 && h_kernel_has_multishot_recv() && sum.bufs_starved == 0)
        fail_msg("%u read buffers of %u bytes per loop under %d streams, yet the ring never ran dry", buf_count,
                 buf_size, N);

    nf_server_stop(s);
    H_ASSERT_ERR(nf_server_wait(s), 0);
    H_ASSERT_ERR(nf_server_stats(s, &sum, NULL), 0); /* the final counters */
    assert_int_equal(sum.conns_closed, N);
    nf_server_free(s);
}

static void test_reuseport_block(void **st) { (void)st, echo_pool(NF_SERVER_REUSEPORT, NF_MODE_BLOCK, 0, 0); }
static void test_reuseport_poll(void **st) { (void)st, echo_pool(NF_SERVER_REUSEPORT, NF_MODE_POLL, 0, 0); }
static void test_reuseport_event(void **st) { (void)st, echo_pool(NF_SERVER_REUSEPORT, NF_MODE_EVENT, 0, 0); }
static void test_acceptor_block(void **st) { (void)st, echo_pool(NF_SERVER_ACCEPTOR, NF_MODE_BLOCK, 0, 0); }
static void test_acceptor_poll(void **st) { (void)st, echo_pool(NF_SERVER_ACCEPTOR, NF_MODE_POLL, 0, 0); }
static void test_acceptor_event(void **st) { (void)st, echo_pool(NF_SERVER_ACCEPTOR, NF_MODE_EVENT, 0, 0); }
/* 2 read buffers of 1 KiB per loop under 16 streams: the ring runs dry
 * (bufs_starved > 0, required on io_uring; echo_pool) */
static void test_tiny_ring(void **st) { (void)st, echo_pool(NF_SERVER_REUSEPORT, NF_MODE_BLOCK, 2, 1024); }

/* ---- stopping while connections are busy ------------------------------------------ */

typedef struct streamer {
    uint16_t port;
    atomic_int connected;
    atomic_int ended; /* saw EOF or reset */
    h_result_t res;
} streamer_t;

/* Sends without end (and reads the echo) until the server goes away. */
static void *streamer_thread(void *arg)
{
    streamer_t *sm = arg;
    int fd = h_peer_connect(&sm->res, "127.0.0.1", sm->port);
    if (fd < 0)
        return h_peer_done(&sm->res);
    h_set_nonblock(fd, 1);
    atomic_fetch_add(&sm->connected, 1);
    static char buf[65536];
    uint64_t dl = h_now_ms() + 8000;
    while (h_now_ms() < dl) {
        struct pollfd p = {.fd = fd, .events = POLLIN | POLLOUT};
        if (poll(&p, 1, 100) <= 0)
            continue;
        if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
            if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
                atomic_fetch_add(&sm->ended, 1);
                break;
            }
        }
        if (p.revents & POLLOUT) {
            ssize_t n = send(fd, buf, sizeof buf, MSG_DONTWAIT | MSG_NOSIGNAL);
            if (n < 0 && errno != EAGAIN && errno != EINTR) {
                atomic_fetch_add(&sm->ended, 1);
                break;
            }
        }
    }
    close(fd);
    return h_peer_done(&sm->res);
}

static void stop_busy(nf_server_spread_t spread, int mode)
{
    enum { N = 8 };
    reset();
    nf_server_t *s = start(spread, mode, 2, 0, 0);
    streamer_t sm;
    memset(&sm, 0, sizeof sm);
    sm.port = port_of(s);
    pthread_t th[N];
    for (int i = 0; i < N; i++)
        th[i] = h_thread_start(streamer_thread, &sm);
    wait_until(&g_open, N, 5000);
    /* Timing: wait until every stream has moved bytes (at least 64 KiB each
     * on average) instead of sleeping 100 ms and hoping: on a loaded 2-CPU
     * machine 100 ms could pass with nothing echoed. */
    uint64_t dl = h_now_ms() + 5000;
    while (atomic_load(&g_bytes) < (unsigned long long)N * 65536 && h_now_ms() < dl)
        h_sleep_ms(1);
    if (atomic_load(&g_bytes) < (unsigned long long)N * 65536)
        fail_msg("the streams moved only %llu bytes in 5 s", (unsigned long long)atomic_load(&g_bytes));
    uint64_t t0 = h_now_ms();
    nf_server_stop(s);
    H_ASSERT_ERR(nf_server_wait(s), 0);
    print_message("[ info     ] stopped with %d busy connections in %llu ms (%llu bytes echoed)\n", N,
                  (unsigned long long)(h_now_ms() - t0), (unsigned long long)atomic_load(&g_bytes));
    assert_int_equal(atomic_load(&g_closed), N);
    assert_int_equal(atomic_load(&g_close_local), N);
    nf_loop_stats_t sum;
    nf_server_stats(s, &sum, NULL);
    assert_int_equal(sum.conns_open, 0);
    assert_int_equal(sum.conns_closed, N);
    nf_server_free(s);
    for (int i = 0; i < N; i++)
        h_thread_join(th[i], 9000);
    assert_int_equal(atomic_load(&sm.ended), N); /* every client saw the end */
}

static void test_stop_busy_reuseport(void **st) { (void)st, stop_busy(NF_SERVER_REUSEPORT, NF_MODE_BLOCK); }
static void test_stop_busy_acceptor(void **st) { (void)st, stop_busy(NF_SERVER_ACCEPTOR, NF_MODE_BLOCK); }
static void test_stop_busy_event(void **st) { (void)st, stop_busy(NF_SERVER_REUSEPORT, NF_MODE_EVENT); }
static void test_stop_busy_poll(void **st) { (void)st, stop_busy(NF_SERVER_ACCEPTOR, NF_MODE_POLL); }

/* ---- posts to each loop; stop from a signal handler ---------------------------------- */

static atomic_int g_posts;
static pthread_t g_post_thread[2];

static void count_post(nf_loop_t *loop, void *arg)
{
    (void)loop;
    g_post_thread[(uintptr_t)arg] = pthread_self();
    atomic_fetch_add(&g_posts, 1);
}

static nf_server_t *g_sig_server;
static void on_usr1(int sig) { (void)sig, nf_server_stop(g_sig_server); }

static void test_posts_and_signal_stop(void **st)
{
    (void)st;
    reset();
    atomic_store(&g_posts, 0);
    nf_server_t *s = start(NF_SERVER_REUSEPORT, NF_MODE_BLOCK, 2, 0, 0);
    for (int round = 0; round < 50; round++)
        for (uintptr_t i = 0; i < 2; i++)
            H_ASSERT_ERR(nf_loop_post(nf_server_loop(s, (unsigned)i), count_post, (void *)i), 0);
    wait_until(&g_posts, 100, 3000);
    assert_false(pthread_equal(g_post_thread[0], g_post_thread[1])); /* two threads */
    assert_false(pthread_equal(g_post_thread[0], pthread_self()));

    g_sig_server = s;
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    sigaction(SIGUSR1, &sa, &old);
    raise(SIGUSR1);
    H_ASSERT_ERR(nf_server_wait(s), 0);
    sigaction(SIGUSR1, &old, NULL);
    nf_server_free(s);
}

/* ---- ACCEPTOR applies listen.filters and max_conns (issue 13 part 5c) ---------- */

static nf_server_t *start_acceptor(const nf_filter_spec_t *filters, unsigned nfilters, unsigned max_conns,
                                   nf_limit_policy_t on_limit)
{
    nf_server_config_t cfg;
    nf_server_config_init(&cfg);
    cfg.threads = 2;
    cfg.spread = NF_SERVER_ACCEPTOR;
    cfg.listen.port = 0;
    cfg.listen.handler = &srv_handler;
    cfg.listen.filters = filters;
    cfg.listen.nfilters = nfilters;
    cfg.listen.max_conns = max_conns;
    cfg.listen.on_limit = on_limit;
    nf_server_t *s = NULL;
    int rc = nf_server_start(&s, &cfg);
    h_skip_if_uring_refused(rc); /* any other NF_EBACKEND fails below */
    H_ASSERT_ERR(rc, 0);
    return s;
}

/* The read-timeout filter runs on handed-over connections: a silent client
 * is closed with -ETIMEDOUT, one that talks is echoed through the filter. */
static void test_acceptor_filters(void **st)
{
    (void)st;
    reset();
    static const nf_timeout_config_t to = {.timeout_ms = 200};
    static const nf_filter_spec_t spec[] = {{&nf_read_timeout_filter, &to}};
    nf_server_t *s = start_acceptor(spec, 1, 0, NF_LIMIT_PAUSE);
    int quiet[2], talk = h_tcp_connect("127.0.0.1", port_of(s));
    for (int i = 0; i < 2; i++) /* one per loop (round robin) */
        quiet[i] = h_tcp_connect("127.0.0.1", port_of(s));
    assert_true(talk >= 0 && quiet[0] >= 0 && quiet[1] >= 0);
    wait_until(&g_open, 3, 3000);
    char err[256];
    h_set_nonblock(talk, 1);
    uint64_t t0 = h_now_ms();
    for (int i = 0; i < 6; i++) { /* 300 ms of traffic every 50 ms: never 200 ms quiet */
        if (h_echo_roundtrip(talk, 1000, (uint32_t)i, 3000, err, sizeof err) != 0)
            fail_msg("echo through the filter: %s", err);
        h_sleep_ms(50);
    }
    for (int i = 0; i < 2; i++)
        H_ASSERT_ERR(h_recv_eof(quiet[i], 3000), 0);
    uint64_t waited = h_now_ms() - t0;
    assert_int_equal(atomic_load(&g_close_timeout), 2);
    assert_true(waited >= 150);
    assert_int_equal(atomic_load(&g_closed), 2); /* the talker is still open */
    nf_server_stop(s);
    H_ASSERT_ERR(nf_server_wait(s), 0);
    assert_int_equal(atomic_load(&g_closed), 3);
    for (int i = 0; i < 2; i++)
        close(quiet[i]);
    close(talk);
    nf_server_free(s);
}

/* max_conns counts across the loops. PAUSE: the third connection waits in
 * the backlog until one of the first two is gone, then is adopted. CLOSE:
 * it is reset at once and counted in conns_refused. */
static void max_conns(nf_limit_policy_t policy)
{
    enum { MAX = 2 };
    reset();
    nf_server_t *s = start_acceptor(NULL, 0, MAX, policy);
    int fd[MAX + 2];
    for (int i = 0; i < MAX; i++)
        fd[i] = h_tcp_connect("127.0.0.1", port_of(s));
    wait_until(&g_open, MAX, 3000);
    fd[MAX] = h_tcp_connect("127.0.0.1", port_of(s)); /* the kernel completes it (backlog) */
    assert_true(fd[MAX] >= 0);
    h_sleep_ms(300);
    assert_int_equal(atomic_load(&g_open), MAX);
    nf_loop_stats_t sum;
    char err[256];
    if (policy == NF_LIMIT_CLOSE) {
        int rc = h_recv_eof(fd[MAX], 3000); /* reset: -ECONNRESET (or EOF) */
        assert_true(rc == -ECONNRESET || rc == 0);
        H_ASSERT_ERR(nf_server_stats(s, &sum, NULL), 0);
        assert_int_equal(sum.conns_refused, 1);
        close(fd[MAX]);
    } else {
        H_ASSERT_ERR(nf_server_stats(s, &sum, NULL), 0);
        assert_int_equal(sum.conns_refused, 0);
    }
    close(fd[0]); /* frees a slot */
    wait_until(&g_closed, 1, 3000);
    if (policy == NF_LIMIT_CLOSE)
        fd[MAX] = h_tcp_connect("127.0.0.1", port_of(s));
    wait_until(&g_open, MAX + 1, 3000); /* adopted now */
    h_set_nonblock(fd[MAX], 1);
    if (h_echo_roundtrip(fd[MAX], 5000, 7, 3000, err, sizeof err) != 0)
        fail_msg("echo on the connection adopted after a slot came free: %s", err);
    /* at the limit again: one more waits (PAUSE) or is refused (CLOSE) */
    fd[MAX + 1] = h_tcp_connect("127.0.0.1", port_of(s));
    h_sleep_ms(200);
    assert_int_equal(atomic_load(&g_open), MAX + 1);
    H_ASSERT_ERR(nf_server_stats(s, &sum, NULL), 0);
    assert_int_equal(sum.conns_open, MAX);
    assert_int_equal(sum.conns_refused, policy == NF_LIMIT_CLOSE ? 2 : 0);
    nf_server_stop(s);
    H_ASSERT_ERR(nf_server_wait(s), 0);
    for (int i = 1; i < MAX + 2; i++)
        close(fd[i]);
    nf_server_free(s);
}

static void test_acceptor_max_conns_pause(void **st) { (void)st, max_conns(NF_LIMIT_PAUSE); }
static void test_acceptor_max_conns_close(void **st) { (void)st, max_conns(NF_LIMIT_CLOSE); }

/* A port in use: start fails and leaves nothing running. */
static void test_start_fails_cleanly(void **st)
{
    (void)st;
    nf_server_t *s1 = start(NF_SERVER_ACCEPTOR, NF_MODE_BLOCK, 2, 0, 0);
    nf_server_config_t cfg;
    nf_server_config_init(&cfg);
    cfg.threads = 2;
    cfg.listen.port = port_of(s1);
    cfg.listen.handler = &srv_handler;
    nf_server_t *s2 = NULL;
    int fds = h_count_fds();
    H_ASSERT_ERR(nf_server_start(&s2, &cfg), -EADDRINUSE); /* s1 has no SO_REUSEPORT */
    assert_null(s2);
    assert_int_equal(h_count_fds(), fds);
    nf_server_free(s1); /* stops and waits */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reuseport_block),
        cmocka_unit_test(test_reuseport_poll),
        cmocka_unit_test(test_reuseport_event),
        cmocka_unit_test(test_acceptor_block),
        cmocka_unit_test(test_acceptor_poll),
        cmocka_unit_test(test_acceptor_event),
        cmocka_unit_test(test_tiny_ring),
        cmocka_unit_test(test_stop_busy_reuseport),
        cmocka_unit_test(test_stop_busy_acceptor),
        cmocka_unit_test(test_stop_busy_event),
        cmocka_unit_test(test_stop_busy_poll),
        cmocka_unit_test(test_posts_and_signal_stop),
        cmocka_unit_test(test_start_fails_cleanly),
        cmocka_unit_test(test_acceptor_filters),
        cmocka_unit_test(test_acceptor_max_conns_pause),
        cmocka_unit_test(test_acceptor_max_conns_close),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
