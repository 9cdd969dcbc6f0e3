/* Integration: nf_connect to a host name, resolved on the loop by c-ares
 * (issue 13): hosts-file entries, DNS answers through the loop's watched
 * sockets, a name that does not exist, a server that never answers (the
 * connect's timeout covers the resolution), a close while resolving, IPv6
 * first then IPv4 when IPv6 refuses, and the socket options on connections
 * made by name. No helper thread is started for any of it. */
#include "helpers.h"
#include "resolve_peer.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static const char g_hosts[] = "# netframe test hosts file (CARES_HOSTS)\n"
                              "::1        nf-dual.test\n"
                              "127.0.0.1  nf-dual.test\n"
                              "127.0.0.1  nf-one.test nf-alias.test\n";
static const char *g_hosts_path;
static rp_dns_t g_dns;

typedef struct cl {
    int opened, closed, reason;
    int closed_inside_connect;
    int family;    /* the peer's address family at on_open */
    uint16_t port; /* the peer's port at on_open */
    int nodelay;   /* getsockopt at on_open */
    int keepalive; /* SO_KEEPALIVE */
    int keepidle;  /* TCP_KEEPIDLE */
    int oobinline; /* SO_OOBINLINE */
    int max_threads;
    uint64_t closed_at_ms;
} cl_t;

static int g_in_connect;

static int sockopt_int(int fd, int level, int name)
{
    int v = -1;
    socklen_t len = sizeof v;
    if (getsockopt(fd, level, name, &v, &len) != 0)
        return -1;
    return v;
}

static void cl_on_open(nf_conn_t *c)
{
    cl_t *s = nf_conn_get_data(c);
    s->opened++;
    nf_addr_t pa;
    if (nf_conn_peer_addr(c, &pa) == 0) {
        s->family = pa.u.sa.sa_family;
        s->port = nf_addr_port(&pa);
    }
    int fd = nf_conn_fd(c);
    s->nodelay = sockopt_int(fd, IPPROTO_TCP, TCP_NODELAY);
    s->keepalive = sockopt_int(fd, SOL_SOCKET, SO_KEEPALIVE);
    s->keepidle = sockopt_int(fd, IPPROTO_TCP, TCP_KEEPIDLE);
    s->oobinline = sockopt_int(fd, SOL_SOCKET, SO_OOBINLINE);
}

static void cl_on_close(nf_conn_t *c, int reason)
{
    cl_t *s = nf_conn_get_data(c);
    s->closed++;
    s->reason = reason;
    s->closed_at_ms = h_now_ms();
    if (g_in_connect)
        s->closed_inside_connect++;
}

static const nf_conn_handler_t cl_handler = {
    .on_open = cl_on_open,
    .on_read = h_ignore_read,
    .on_close = cl_on_close,
};

/* nf_connect with cfg's options, host, port, handler and data filled in. */
static nf_conn_t *by_name(nf_loop_t *loop, nf_connect_config_t *cfg, const char *host, uint16_t port, cl_t *s)
{
    cfg->host = host;
    cfg->port = port;
    cfg->handler = &cl_handler;
    cfg->data = s;
    nf_conn_t *c = NULL;
    g_in_connect = 1;
    int rc = nf_connect(loop, cfg, &c);
    g_in_connect = 0;
    H_ASSERT_ERR(rc, 0);
    assert_non_null(c);
    return c;
}

static nf_conn_t *by_name_simple(nf_loop_t *loop, const char *host, uint16_t port, uint64_t timeout_ms, cl_t *s)
{
    nf_connect_config_t cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.timeout_ms = timeout_ms;
    return by_name(loop, &cfg, host, port, s);
}

static nf_loop_t *loop_with_servers(const char *servers)
{
    nf_loop_config_t lc;
    nf_loop_config_init(&lc);
    lc.dns_servers = servers;
    return h_loop_new_cfg(&lc);
}

static void assert_one_thread(void)
{
    int n = rp_threads();
    if (n != 1)
        fail_msg("the process has %d threads, expected 1 (no resolver thread)", n);
}

/* ---- hosts file ----------------------------------------------------------- */

static void test_hosts_entry(void **state)
{
    (void)state;
    nf_loop_t *loop = h_loop_new();
    h_echo_reset();
    nf_listener_t *l;
    uint16_t port = h_listen(loop, "127.0.0.1", &h_echo_handler, NULL, &l);
    cl_t s[2];
    memset(s, 0, sizeof s);
    nf_conn_t *c0 = by_name_simple(loop, "nf-one.test", port, 5000, &s[0]);
    nf_conn_t *c1 = by_name_simple(loop, "NF-ALIAS.test", port, 5000, &s[1]); /* names are case-blind */
    assert_one_thread();
    H_RUN_UNTIL(loop, s[0].opened + s[0].closed == 1 && s[1].opened + s[1].closed == 1, 5000);
    for (int i = 0; i < 2; i++) {
        if (s[i].opened != 1)
            fail_msg("connect %d closed with %d (%s)", i, s[i].reason, nf_err_name(s[i].reason));
        assert_int_equal(s[i].family, AF_INET);
        assert_int_equal(s[i].port, port);
        assert_int_equal(s[i].closed_inside_connect, 0);
    }
    assert_one_thread();
    nf_conn_close(c0);
    nf_conn_close(c1);
    H_RUN_UNTIL(loop, s[0].closed == 1 && s[1].closed == 1, 5000);
    h_listener_finish(loop, l, 5000);
}

/* ---- DNS, through the loop's watch on c-ares's socket -------------------------- */

static void test_dns_answer(void **state)
{
    (void)state;
    nf_loop_t *loop = loop_with_servers(g_dns.servers);
    h_echo_reset();
    nf_listener_t *l;
    uint16_t port = h_listen(loop, "127.0.0.1", &h_echo_handler, NULL, &l);
    cl_t s;
    memset(&s, 0, sizeof s);
    nf_conn_t *c = by_name_simple(loop, RP_DNS_NAME, port, 5000, &s);
    H_RUN_UNTIL(loop, s.opened + s.closed == 1, 5000);
    if (s.opened != 1)
        fail_msg("closed with %d (%s)", s.reason, nf_err_name(s.reason));
    assert_int_equal(s.family, AF_INET);
    assert_int_equal(s.port, port);
    assert_one_thread();
    nf_conn_close(c);
    H_RUN_UNTIL(loop, s.closed == 1, 5000);
    h_listener_finish(loop, l, 5000);
}

static void test_name_not_found(void **state)
{
    (void)state;
    int fds0 = h_count_fds();
    nf_loop_t *loop = loop_with_servers(g_dns.servers);
    cl_t s;
    memset(&s, 0, sizeof s);
    by_name_simple(loop, "nf-nothere.test", 80, 5000, &s);
    H_RUN_UNTIL(loop, s.closed == 1, 5000);
    h_run_for(loop, 20);
    assert_int_equal(s.opened, 0);
    assert_int_equal(s.closed, 1);
    assert_int_equal(s.closed_inside_connect, 0);
    H_ASSERT_ERR(s.reason, NF_EADDR);
    h_loop_finish(loop, 5000);
    assert_int_equal(h_count_fds(), fds0); /* the channel's sockets went with the loop */
}

/* A server that never answers: the connect's timeout_ms ends the wait, and the
 * abandoned query does not keep the loop alive. */
static void test_resolve_timeout(void **state)
{
    (void)state;
    char servers[32];
    int sfd = rp_dns_silent(servers, sizeof servers);
    assert_true(sfd >= 0);
    nf_loop_t *loop = loop_with_servers(servers);
    cl_t s;
    memset(&s, 0, sizeof s);
    nf_loop_update_time(loop);
    uint64_t t0 = h_now_ms();
    by_name_simple(loop, "nf-silent.test", 80, 300, &s);
    H_RUN_UNTIL(loop, s.closed == 1, 5000);
    uint64_t took = s.closed_at_ms - t0;
    assert_int_equal(s.opened, 0);
    assert_int_equal(s.closed_inside_connect, 0);
    H_ASSERT_ERR(s.reason, -ETIMEDOUT);
    if (took < 295 || took > 2000)
        fail_msg("a timeout of 300 ms fired after %llu ms", (unsigned long long)took);
    assert_one_thread();
    uint64_t t1 = h_now_ms();
    h_loop_finish(loop, 5000);
    if (h_now_ms() - t1 > 1000) /* c-ares alone would retry for seconds */
        fail_msg("the loop took %llu ms to run out after the timeout", (unsigned long long)(h_now_ms() - t1));
    close(sfd);
}

/* Closing connections while their names resolve: each ends once, with
 * NF_CLOSE_LOCAL, and an answer that comes later is dropped (under ASan: no
 * callback into freed memory). */
static void test_cancel_while_resolving(void **state)
{
    (void)state;
    char servers[32];
    int sfd = rp_dns_silent(servers, sizeof servers);
    assert_true(sfd >= 0);
    nf_loop_t *loop = loop_with_servers(servers);
    cl_t s[3];
    memset(s, 0, sizeof s);
    nf_conn_t *c0 = by_name_simple(loop, "nf-silent-a.test", 80, 0, &s[0]);
    nf_conn_t *c1 = by_name_simple(loop, "nf-silent-b.test", 80, 0, &s[1]);
    by_name_simple(loop, "nf-silent-c.test", 80, 200, &s[2]);
    nf_conn_close(c0); /* before the loop ran at all */
    h_run_for(loop, 30);
    assert_int_equal(s[0].closed, 1);
    assert_int_equal(s[1].closed, 0);
    nf_conn_close(c1); /* queries sent, waiting */
    H_RUN_UNTIL(loop, s[1].closed == 1 && s[2].closed == 1, 5000);
    h_run_for(loop, 20);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(s[i].opened, 0);
        assert_int_equal(s[i].closed, 1);
        assert_int_equal(s[i].closed_inside_connect, 0);
    }
    H_ASSERT_ERR(s[0].reason, NF_CLOSE_LOCAL);
    H_ASSERT_ERR(s[1].reason, NF_CLOSE_LOCAL);
    H_ASSERT_ERR(s[2].reason, -ETIMEDOUT);
    h_loop_finish(loop, 1000);
    close(sfd);

    /* An answer that arrives after its connection closed, while another
     * connection still waits for its own. */
    loop = loop_with_servers(g_dns.servers);
    h_echo_reset();
    nf_listener_t *l;
    uint16_t port = h_listen(loop, "127.0.0.1", &h_echo_handler, NULL, &l);
    memset(s, 0, sizeof s);
    c0 = by_name_simple(loop, RP_DNS_SLOW_NAME, port, 5000, &s[0]);
    c1 = by_name_simple(loop, RP_DNS_SLOW_NAME, port, 5000, &s[1]);
    h_run_for(loop, 20);
    nf_conn_close(c0);
    H_RUN_UNTIL(loop, s[1].opened + s[1].closed == 1, 5000);
    if (s[1].opened != 1)
        fail_msg("closed with %d (%s)", s[1].reason, nf_err_name(s[1].reason));
    assert_int_equal(s[0].opened, 0);
    assert_int_equal(s[0].closed, 1);
    H_ASSERT_ERR(s[0].reason, NF_CLOSE_LOCAL);
    nf_conn_close(c1);
    h_listener_finish(loop, l, 5000);
    assert_int_equal(s[0].closed, 1);
}

/* ---- several addresses ------------------------------------------------------- */

static void test_v6_first_then_v4(void **state)
{
    (void)state;
    nf_loop_t *loop = h_loop_new();
    h_echo_reset();
    nf_listener_t *l4, *l6;
    uint16_t port = h_listen(loop, "127.0.0.1", &h_echo_handler, NULL, &l4);
    nf_listen_config_t lc = h_listen_config(&h_echo_handler, NULL);
    lc.port = port;
    lc.host = "::1";
    lc.ipv6_only = 1;
    int rc = nf_listen(loop, &lc, &l6);
    if (rc != 0)
        fail_msg("listen on [::1]:%u: %s", port, nf_err_name(rc));

    /* Both listen: the first address the resolver gives (IPv6) is used. */
    cl_t s;
    memset(&s, 0, sizeof s);
    nf_conn_t *c = by_name_simple(loop, "nf-dual.test", port, 5000, &s);
    H_RUN_UNTIL(loop, s.opened + s.closed == 1, 5000);
    if (s.opened != 1)
        fail_msg("closed with %d (%s)", s.reason, nf_err_name(s.reason));
    assert_int_equal(s.family, AF_INET6);
    nf_conn_close(c);
    nf_listener_close(l6, NULL);
    H_RUN_UNTIL(loop, s.closed == 1, 5000);

    /* IPv6 refuses now: the next address (IPv4) is tried and connects. */
    memset(&s, 0, sizeof s);
    c = by_name_simple(loop, "nf-dual.test", port, 5000, &s);
    H_RUN_UNTIL(loop, s.opened + s.closed == 1, 5000);
    if (s.opened != 1)
        fail_msg("closed with %d (%s)", s.reason, nf_err_name(s.reason));
    assert_int_equal(s.family, AF_INET);
    assert_int_equal(s.port, port);
    nf_conn_close(c);
    H_RUN_UNTIL(loop, s.closed == 1, 5000);

    /* Nothing listens on either: the last refusal is the reason. */
    nf_listener_close(l4, NULL);
    h_run_for(loop, 20);
    memset(&s, 0, sizeof s);
    by_name_simple(loop, "nf-dual.test", port, 5000, &s);
    H_RUN_UNTIL(loop, s.closed == 1, 5000);
    assert_int_equal(s.opened, 0);
    H_ASSERT_ERR(s.reason, -ECONNREFUSED);
    h_loop_finish(loop, 5000);
}

/* ---- socket options on connections made by name -------------------------------- */

/* Connects to "nf-dual.test" with only IPv4 listening, so the socket that
 * opens is the second one the connect made (after IPv6 refused). */
static void open_by_name(nf_connect_config_t *cfg, cl_t *s)
{
    nf_loop_t *loop = h_loop_new();
    h_echo_reset();
    nf_listener_t *l;
    uint16_t port = h_listen(loop, "127.0.0.1", &h_echo_handler, NULL, &l);
    memset(s, 0, sizeof *s);
    nf_conn_t *c = by_name(loop, cfg, "nf-dual.test", port, s);
    H_RUN_UNTIL(loop, s->opened + s->closed == 1, 5000);
    if (s->opened != 1)
        fail_msg("closed with %d (%s)", s->reason, nf_err_name(s->reason));
    assert_int_equal(s->family, AF_INET);
    nf_conn_close(c);
    H_RUN_UNTIL(loop, s->closed == 1, 5000);
    h_listener_finish(loop, l, 5000);
}

/* What open_by_name's callers start from: a 5 s connect timeout. */
static nf_connect_config_t open_cfg(void)
{
    nf_connect_config_t cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.timeout_ms = 5000;
    return cfg;
}

static void test_option_nodelay(void **state)
{
    (void)state;
    nf_connect_config_t cfg = open_cfg();
    cl_t s;
    cfg.nodelay = 0; /* on */
    open_by_name(&cfg, &s);
    assert_int_equal(s.nodelay, 1);
    cfg.nodelay = -1; /* off */
    open_by_name(&cfg, &s);
    assert_int_equal(s.nodelay, 0);
}

static void test_option_keepalive(void **state)
{
    (void)state;
    nf_connect_config_t cfg = open_cfg();
    cl_t s;
    cfg.keepalive_s = 17;
    open_by_name(&cfg, &s);
    assert_int_equal(s.keepalive, 1);
    assert_int_equal(s.keepidle, 17);
    cfg.keepalive_s = 0;
    open_by_name(&cfg, &s);
    assert_int_equal(s.keepalive, 0);
}

static void test_option_oob_inline(void **state)
{
    (void)state;
    nf_connect_config_t cfg = open_cfg();
    cl_t s;
    cfg.oob_inline = 1;
    open_by_name(&cfg, &s);
    assert_int_equal(s.oobinline, 1);
    cfg.oob_inline = 0;
    open_by_name(&cfg, &s);
    assert_int_equal(s.oobinline, 0);
}

static int group_setup(void **state) { return (void)state, rp_group_start(g_hosts, &g_hosts_path, &g_dns); }
static int group_teardown(void **state) { return (void)state, rp_group_stop(g_hosts_path, &g_dns), 0; }

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hosts_entry),
        cmocka_unit_test(test_dns_answer),
        cmocka_unit_test(test_name_not_found),
        cmocka_unit_test(test_resolve_timeout),
        cmocka_unit_test(test_cancel_while_resolving),
        cmocka_unit_test(test_v6_first_then_v4),
        cmocka_unit_test(test_option_nodelay),
        cmocka_unit_test(test_option_keepalive),
        cmocka_unit_test(test_option_oob_inline),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
