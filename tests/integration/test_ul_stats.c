/* netframe integration test — the filters' loop counters (issue 14).
 *
 * The flow-control, TLS and PROXY filters keep their counters in per-loop
 * records of their own; nf_loop_stats adds them up. test_flow and
 * test_proxy check flow_* and conns_closed_proxy; this test checks what
 * nothing else did:
 *   - a TLS connection closed because the peer asks for records it does not
 *     read (max_self_bytes) counts in conns_closed_slow;
 *   - the flow filter's and the TLS filter's slow closes on one loop add up
 *     in conns_closed_slow, and another loop's counters stay at zero. */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "helpers.h"
#include "tls_certs.h"

static tc_certs_t certs;

static int setup(void **state) { return (void)state, tc_make(&certs); }
static int teardown(void **state) { return (void)state, tc_cleanup(&certs), 0; }

/* ---- the server side ------------------------------------------------------ */

static struct {
    int opened, closed;
    int reasons[4];
    char why[160]; /* nf_tls_conn_error of the last TLS connection closed */
} srv;

static void s_open(nf_conn_t *c)
{
    (void)c;
    srv.opened++;
}

static void s_close(nf_conn_t *c, int reason)
{
    const char *e = nf_tls_conn_error(c);
    if (e)
        snprintf(srv.why, sizeof srv.why, "%s", e);
    if (srv.closed < 4)
        srv.reasons[srv.closed] = reason;
    srv.closed++;
}

static const nf_conn_handler_t s_handler = {.on_open = s_open, .on_read = h_ignore_read, .on_close = s_close};

/* Writes more than the flow filter may hold at once: the first write goes
 * down, the second finds the transport's queue full and cannot be held
 * (NF_FLOW_CLOSE), so the connection closes as a slow consumer. */
static void flood_open(nf_conn_t *c)
{
    static char big[64 * 1024];
    srv.opened++;
    nf_conn_write(c, big, sizeof big);
    nf_conn_write(c, big, sizeof big);
}

static const nf_conn_handler_t flood_handler = {.on_open = flood_open, .on_read = h_ignore_read, .on_close = s_close};

static nf_tls_ctx_t *server_tls(size_t max_self_bytes)
{
    nf_tls_config_t tc = {.server = 1, .min_version = NF_TLS_1_3, .max_self_bytes = max_self_bytes};
    tc.cert_file = tc_path(&certs, "server.pem");
    tc.key_file = tc_path(&certs, "server.key");
    char err[256];
    nf_tls_ctx_t *tls = NULL;
    H_ASSERT_ERR(nf_tls_ctx_new(&tls, &tc, err, sizeof err), 0);
    return tls;
}

/* ---- the peer: OpenSSL, blocking, on a thread ------------------------------ */

typedef struct peer {
    uint16_t port;
    int key_update;  /* ask for a KeyUpdate (the server must answer with a record of its own) */
    int close_after; /* close after writing, instead of reading until the server closes */
    h_result_t res;
} peer_t;

static void *tls_peer(void *arg)
{
    peer_t *p = arg;
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    SSL *ssl = NULL;
    int fd = h_tcp_connect("127.0.0.1", p->port);
    if (!ctx || fd < 0) {
        h_result_fail(&p->res, "peer: set-up");
        goto out;
    }
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
    if (SSL_CTX_load_verify_locations(ctx, tc_path(&certs, "ca.pem"), NULL) != 1) {
        h_result_fail(&p->res, "peer: CA");
        goto out;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    ssl = SSL_new(ctx);
    SSL_set_fd(ssl, fd);
    SSL_set_tlsext_host_name(ssl, "localhost");
    SSL_set1_host(ssl, "localhost");
    if (SSL_connect(ssl) != 1) {
        h_result_fail(&p->res, "peer: TLS handshake");
        goto out;
    }
    /* Past the handshake the server may close at any time (that is the
     * point): a write that fails ends the peer's part, it is no failure. */
    size_t n;
    int ok = 1;
    for (int i = 0; i < p->key_update && ok; i++)
        ok = SSL_key_update(ssl, SSL_KEY_UPDATE_REQUESTED) == 1 && SSL_do_handshake(ssl) == 1;
    if (ok)
        ok = SSL_write_ex(ssl, "hello", 5, &n) == 1;
    if (ok && p->close_after) {
        SSL_shutdown(ssl);
    } else if (ok) {
        char buf[256];
        while (SSL_read_ex(ssl, buf, sizeof buf, &n) == 1) { /* until the server closes */
        }
    }
out:
    ERR_clear_error();
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    if (fd >= 0)
        close(fd);
    atomic_store(&p->res.done, 1);
    return NULL;
}

/* One TLS connection from the peer, which asks for KeyUpdates, to a server
 * whose TLS filter allows max_self_bytes (0: the default); runs until the
 * server closed it (close_after: the peer closes once it wrote). */
static void tls_round(nf_loop_t *loop, size_t max_self_bytes, int close_after)
{
    nf_tls_ctx_t *tls = server_tls(max_self_bytes);
    nf_filter_spec_t filters[] = {{&nf_tls_filter, tls}};
    nf_listen_config_t lc = {.host = "127.0.0.1", .handler = &s_handler, .filters = filters, .nfilters = 1};
    nf_listener_t *l;
    peer_t p = {.port = h_listen_cfg(loop, &lc, &l), .key_update = 8, .close_after = close_after};
    int closed = srv.closed;
    pthread_t t = h_thread_start(tls_peer, &p);
    H_RUN_UNTIL(loop, srv.closed == closed + 1, 10000);
    h_thread_join(t, 10000);
    H_ASSERT_PEER_OK(&p.res);
    nf_listener_close(l, NULL);
    assert_true(h_run_until_idle(loop, 5000));
    nf_tls_ctx_free(tls);
}

/* ---- tests ------------------------------------------------------------------ */

/* The peer asks for KeyUpdates; the answers are records the TLS filter made
 * by itself, still in the transport's queue when they are counted: over a
 * max_self_bytes of 1, the connection closes with NF_ESLOW, counted once in
 * conns_closed_slow. */
static void test_tls_self_records_slow_counted(void **state)
{
    (void)state;
    memset(&srv, 0, sizeof srv);
    nf_loop_t *loop = h_loop_new();
    tls_round(loop, 1, 0);
    H_ASSERT_ERR(srv.reasons[0], NF_ESLOW);
    assert_non_null(strstr(srv.why, "does not read"));
    nf_loop_stats_t ls = h_stats(loop);
    assert_int_equal(ls.conns_closed_slow, 1);
    assert_int_equal(ls.flow_writes_dropped, 0);
    assert_int_equal(ls.conns_closed_proxy, 0);
    h_loop_finish(loop, 5000);
}

/* The default allowance (64 KiB) takes a few KeyUpdate answers: no slow
 * close, nothing counted. */
static void test_tls_self_records_within_allowance(void **state)
{
    (void)state;
    memset(&srv, 0, sizeof srv);
    nf_loop_t *loop = h_loop_new();
    tls_round(loop, 0, 1);
    assert_int_not_equal(srv.reasons[0], NF_ESLOW);
    assert_int_equal(h_stats(loop).conns_closed_slow, 0);
    h_loop_finish(loop, 5000);
}

/* A flow-control slow close and a TLS one on the same loop: each filter
 * counts in its own record, nf_loop_stats adds them; a second loop has its
 * own records and counts nothing. */
static void test_slow_closes_add_up_per_loop(void **state)
{
    (void)state;
    memset(&srv, 0, sizeof srv);
    nf_loop_t *loop = h_loop_new(), *other = h_loop_new();
    nf_flow_config_t fc = {.max_inflight_bytes = 4096, .max_held_bytes = 4096, .policy = NF_FLOW_CLOSE};
    nf_filter_spec_t filters[] = {{&nf_flow_filter, &fc}};
    nf_listen_config_t lc = {.host = "127.0.0.1", .handler = &flood_handler, .filters = filters, .nfilters = 1};
    nf_listener_t *l;
    uint16_t port = h_listen_cfg(loop, &lc, &l);
    int fd = h_tcp_connect("127.0.0.1", port); /* never reads */
    assert_true(fd >= 0);
    H_RUN_UNTIL(loop, srv.closed == 1, 5000);
    H_ASSERT_ERR(srv.reasons[0], NF_ESLOW);
    assert_int_equal(h_stats(loop).conns_closed_slow, 1);
    close(fd);
    nf_listener_close(l, NULL);
    assert_true(h_run_until_idle(loop, 5000));

    tls_round(loop, 1, 0);
    H_ASSERT_ERR(srv.reasons[1], NF_ESLOW);
    nf_loop_stats_t ls = h_stats(loop);
    assert_int_equal(ls.conns_closed_slow, 2);
    assert_int_equal(ls.flow_bytes_held, 0); /* what was held went with its connection */

    nf_loop_stats_t os = h_stats(other);
    assert_int_equal(os.conns_closed_slow, 0);
    assert_int_equal(os.flow_bytes_held, 0);
    assert_int_equal(os.flow_held_hwm, 0);
    assert_int_equal(os.flow_writes_dropped, 0);
    assert_int_equal(os.conns_closed_proxy, 0);
    h_loop_finish(other, 5000);
    h_loop_finish(loop, 5000);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN); /* the peer writes while the server closes */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tls_self_records_slow_counted),
        cmocka_unit_test(test_tls_self_records_within_allowance),
        cmocka_unit_test(test_slow_closes_add_up_per_loop),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
