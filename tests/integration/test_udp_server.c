/* Integration: UDP on an nf_server thread pool. No TCP listener; each loop's
 * on_loop_start opens a UDP socket on the same address (SO_REUSEPORT, loop
 * 0's kernel port shared through the server's data), the kernel spreads the
 * senders over them, every datagram is echoed by the loop that got it, and
 * on_loop_stop closes the socket and records its counters. */
#include "helpers.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define THREADS 2
typedef struct app {
    uint16_t port;
    nf_udp_t *u[THREADS];
    nf_udp_stats_t st[THREADS];
    int started, stopped;
} app_t;

static void on_recv(nf_udp_t *u, const char *data, size_t len, const nf_addr_t *from, unsigned flags, nf_udp_peer_t *p)
{
    (void)flags, (void)p;
    nf_udp_send(u, data, len, from);
}
static const nf_udp_handler_t k_h = {.on_recv = on_recv};

static int loop_start(nf_server_t *s, nf_loop_t *loop, unsigned i)
{
    app_t *app = nf_server_get_data(s);
    nf_udp_config_t cfg;
    nf_udp_config_init(&cfg);
    cfg.port = app->port;
    cfg.reuseport = 1;
    cfg.rcvbuf = 1 << 20;
    cfg.handler = &k_h;
    int err = nf_udp_open(loop, &cfg, &app->u[i]);
    if (err)
        return err;
    if (i == 0) {
        nf_addr_t a;
        nf_udp_local_addr(app->u[0], &a);
        app->port = nf_addr_port(&a);
    }
    __atomic_add_fetch(&app->started, 1, __ATOMIC_SEQ_CST);
    return 0;
}

static void loop_stop(nf_server_t *s, nf_loop_t *loop, unsigned i)
{
    (void)loop;
    app_t *app = nf_server_get_data(s);
    nf_udp_stats(app->u[i], &app->st[i]);
    nf_udp_close(app->u[i]);
    __atomic_add_fetch(&app->stopped, 1, __ATOMIC_SEQ_CST);
}

static void test_udp_pool(void **state)
{
    (void)state;
    static app_t app;
    memset(&app, 0, sizeof app);
    nf_server_config_t cfg;
    nf_server_config_init(&cfg);
    cfg.threads = THREADS;
    cfg.on_loop_start = loop_start;
    cfg.on_loop_stop = loop_stop;
    cfg.data = &app;
    nf_server_t *s;
    int err = nf_server_start(&s, &cfg);
    h_skip_if_uring_refused(err); /* any other NF_EBACKEND fails below */
    H_ASSERT_ERR(err, 0);
    assert_int_equal(app.started, THREADS);
    assert_true(app.port != 0);
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(app.port)};
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    enum { P = 64 };
    int fds[P];
    for (int i = 0; i < P; i++) {
        fds[i] = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        struct timeval tv = {.tv_sec = 5};
        setsockopt(fds[i], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        char b[16];
        int n = snprintf(b, sizeof b, "p%d", i);
        assert_int_equal(sendto(fds[i], b, (size_t)n, 0, (struct sockaddr *)&to, sizeof to), n);
    }
    for (int i = 0; i < P; i++) {
        char want[16], b[16];
        int n = snprintf(want, sizeof want, "p%d", i);
        struct sockaddr_in from;
        socklen_t fl = sizeof from;
        ssize_t r = recvfrom(fds[i], b, sizeof b, 0, (struct sockaddr *)&from, &fl);
        if (r != n || memcmp(b, want, (size_t)n) != 0)
            fail_msg("sender %d: echo missing or wrong (%zd)", i, r);
        assert_int_equal(ntohs(from.sin_port), app.port); /* answered from the shared port */
        close(fds[i]);
    }
    nf_server_stop(s);
    H_ASSERT_ERR(nf_server_wait(s), 0);
    nf_server_free(s);
    assert_int_equal(app.stopped, THREADS);
    uint64_t in = 0;
    for (int i = 0; i < THREADS; i++) {
        print_message("[ info     ] loop %d: %llu datagrams\n", i, (unsigned long long)app.st[i].dgrams_in);
        assert_true(app.st[i].dgrams_in > 0); /* 64 senders: all on one socket has odds 2^-63 */
        assert_int_equal(app.st[i].dgrams_out, app.st[i].dgrams_in);
        in += app.st[i].dgrams_in;
    }
    assert_int_equal(in, P);

    /* without a listener handler, on_loop_start is required */
    cfg.on_loop_start = NULL;
    H_ASSERT_ERR(nf_server_start(&s, &cfg), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_udp_pool)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
