/* Integration: IPv6 loopback. Listen on ::1, echo with plain and netframe
 * clients; dual-stack and v6-only listeners on ::. */
#include "helpers.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int ipv6_available(void)
{
    int fd = socket(AF_INET6, SOCK_STREAM, 0);
    if (fd < 0)
        return 0;
    struct sockaddr_in6 a;
    memset(&a, 0, sizeof a);
    a.sin6_family = AF_INET6;
    a.sin6_addr = in6addr_loopback;
    int ok = bind(fd, (struct sockaddr *)&a, sizeof a) == 0;
    close(fd);
    return ok;
}

static struct {
    int opened, closed, reason;
    size_t got;
    char buf[32];
    int family, peer_port_ok;
} g;

static void cl_on_open(nf_conn_t *c)
{
    g.opened++;
    nf_addr_t pa;
    if (nf_conn_peer_addr(c, &pa) == 0) {
        g.family = pa.u.sa.sa_family;
        g.peer_port_ok = nf_addr_port(&pa) == (uint16_t)(uintptr_t)nf_conn_get_data(c);
    }
    nf_conn_write(c, "hello v6", 8);
}

static void cl_on_read(nf_conn_t *c, const char *data, size_t len)
{
    if (g.got + len <= sizeof g.buf)
        memcpy(g.buf + g.got, data, len);
    g.got += len;
    if (g.got >= 8)
        nf_conn_close(c);
}

static void cl_on_close(nf_conn_t *c, int reason)
{
    (void)c;
    g.closed++;
    g.reason = reason;
}

static const nf_conn_handler_t cl_handler = {
    .on_open = cl_on_open,
    .on_read = cl_on_read,
    .on_close = cl_on_close,
};

static void nf_echo_once(nf_loop_t *loop, const char *host, uint16_t port, int want_family)
{
    memset(&g, 0, sizeof g);
    int closed_before = h_echo.closed;
    h_connect(loop, host, port, &cl_handler, (void *)(uintptr_t)port);
    H_RUN_UNTIL(loop, g.closed == 1 && h_echo.closed == closed_before + 1, 5000);
    assert_int_equal(g.opened, 1);
    H_ASSERT_ERR(g.reason, NF_CLOSE_LOCAL);
    assert_int_equal(g.got, 8);
    assert_memory_equal(g.buf, "hello v6", 8);
    assert_int_equal(g.family, want_family);
    assert_true(g.peer_port_ok);
}

static void test_ipv6_loopback(void **state)
{
    (void)state;
    if (!ipv6_available())
        h_skip("no IPv6 loopback here");
    h_echo_reset();
    nf_loop_t *loop = h_loop_new();
    nf_listener_t *l;
    uint16_t port = h_listen(loop, "::1", &h_echo_handler, NULL, &l);
    nf_addr_t la;
    assert_int_equal(nf_listener_addr(l, &la), 0);
    assert_int_equal(la.u.sa.sa_family, AF_INET6);
    assert_memory_equal(&la.u.in6.sin6_addr, &in6addr_loopback, sizeof(struct in6_addr));
    char text[64], want[64];
    snprintf(want, sizeof want, "[::1]:%u", port);
    assert_string_equal(nf_addr_format(&la, text, sizeof text), want);

    static h_echo_client_t v;
    memset(&v, 0, sizeof v);
    v.port = port;
    v.ip = "::1";
    v.size = 1u << 20, v.rounds = 1, v.seed = 66, v.timeout_ms = 15000;
    pthread_t t = h_thread_start(h_echo_client_thread, &v);
    H_RUN_UNTIL(loop, atomic_load(&v.res.done) && h_echo.closed == 1, 15000);
    h_thread_join(t, 5000);
    H_ASSERT_PEER_OK(&v.res);
    assert_int_equal(h_echo.bytes, 1u << 20);
    H_ASSERT_ERR(h_echo.last_reason, NF_EOF);

    nf_echo_once(loop, "::1", port, AF_INET6);
    nf_echo_once(loop, "[::1]", port, AF_INET6);

    h_listener_finish(loop, l, 5000);
}

/* On "::" with ipv6_only = 0 an IPv4 client gets in (v4-mapped); with
 * ipv6_only = 1 it is refused. */
static void test_ipv6_dual_stack(void **state)
{
    (void)state;
    if (!ipv6_available())
        h_skip("no IPv6 loopback here");
    h_echo_reset();
    nf_loop_t *loop = h_loop_new();
    nf_listen_config_t cfg = h_listen_config(&h_echo_handler, NULL);
    cfg.host = "::";
    cfg.ipv6_only = 0;
    nf_listener_t *dual, *only;
    uint16_t dport = h_listen_cfg(loop, &cfg, &dual);
    nf_echo_once(loop, "127.0.0.1", dport, AF_INET);
    nf_echo_once(loop, "::1", dport, AF_INET6);

    cfg.ipv6_only = 1;
    uint16_t oport = h_listen_cfg(loop, &cfg, &only);
    nf_echo_once(loop, "::1", oport, AF_INET6);
    int fd = h_tcp_connect("127.0.0.1", oport);
    if (fd >= 0)
        close(fd);
    H_ASSERT_ERR(fd, -ECONNREFUSED);

    nf_listener_close(dual, NULL);
    h_listener_finish(loop, only, 5000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ipv6_loopback),
        cmocka_unit_test(test_ipv6_dual_stack),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
