/* Integration: netframe UDP against Python's socket module (a peer written by
 * nobody here). A Python echo server (tests/interop/udp_interop.py server)
 * answers a netframe socket: datagrams of 0 to 65,507 bytes from one socket
 * and from a connected one, every byte checked. The other direction (Python
 * client, netframe's udp_echo_server) is the udp_interop_py_client test. */
#include "helpers.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef NF_UDP_INTEROP_PY
#error "NF_UDP_INTEROP_PY must name tests/interop/udp_interop.py"
#endif

static const size_t k_sizes[] = {0, 1, 100, 1400, 9000, 65507};
#define NS (sizeof k_sizes / sizeof k_sizes[0])

typedef struct st {
    int got[NS];
    int bad;
    int total;
} st_t;

static void on_recv(nf_udp_t *u, const char *data, size_t len, const nf_addr_t *from, unsigned flags, nf_udp_peer_t *p)
{
    (void)from, (void)p;
    st_t *s = nf_udp_get_data(u);
    s->total++;
    for (size_t i = 0; i < NS; i++) {
        if (k_sizes[i] == len && !(flags & NF_UDP_TRUNC)) {
            if (h_pattern_check(data, len, 0, (uint32_t)i) != SIZE_MAX)
                s->bad++;
            s->got[i]++;
            return;
        }
    }
    s->bad++;
}

static const nf_udp_handler_t k_h = {.on_recv = on_recv};

static void test_python_echo_server(void **state)
{
    (void)state;
    FILE *py = popen("/usr/bin/python3 " NF_UDP_INTEROP_PY " server", "r");
    assert_non_null(py);
    int port = 0;
    if (fscanf(py, "port %d", &port) != 1 || port <= 0) {
        pclose(py);
        fail_msg("python echo server did not print its port");
    }
    nf_loop_t *loop = h_loop_new();
    nf_addr_t to;
    H_ASSERT_ERR(nf_addr_parse(&to, "127.0.0.1", (uint16_t)port), 0);
    st_t s = {0}, sc = {0};
    nf_udp_config_t cfg;
    nf_udp_config_init(&cfg);
    cfg.recv_size = NF_UDP_MAX_DGRAM4;
    cfg.recv_count = 16;
    cfg.rcvbuf = cfg.sndbuf = 1 << 20;
    cfg.handler = &k_h;
    cfg.data = &s;
    nf_udp_t *u, *uc;
    H_ASSERT_ERR(nf_udp_open(loop, &cfg, &u), 0);
    cfg.data = &sc;
    cfg.connect_to = &to;
    H_ASSERT_ERR(nf_udp_open(loop, &cfg, &uc), 0);
    char *buf = malloc(NF_UDP_MAX_DGRAM4);
    for (size_t i = 0; i < NS; i++) {
        h_pattern_fill(buf, k_sizes[i], 0, (uint32_t)i);
        H_ASSERT_ERR(nf_udp_send(u, buf, k_sizes[i], &to), 0);
        nf_buf_t *b = nf_buf_new(k_sizes[i] ? k_sizes[i] : 1);
        memcpy(b->base, buf, k_sizes[i]);
        b->len = k_sizes[i];
        H_ASSERT_ERR(nf_udp_send_buf(uc, b, NULL), 0);
    }
    free(buf);
    H_RUN_UNTIL(loop, s.total == (int)NS && sc.total == (int)NS, 10000);
    assert_int_equal(s.bad, 0);
    assert_int_equal(sc.bad, 0);
    for (size_t i = 0; i < NS; i++) {
        assert_int_equal(s.got[i], 1);
        assert_int_equal(sc.got[i], 1);
    }
    H_ASSERT_ERR(nf_udp_send(u, "quit", 4, &to), 0);
    H_RUN_UNTIL(loop, ({
                    nf_udp_stats_t st_;
                    nf_udp_stats(u, &st_);
                    st_.dgrams_out == NS + 1;
                }),
                5000);
    char line[64] = {0};
    int echoed = -1;
    if (fgets(line, sizeof line, py))
        sscanf(line, " echoed %d", &echoed);
    if (echoed < 0 && fgets(line, sizeof line, py))
        sscanf(line, " echoed %d", &echoed);
    int rc = pclose(py);
    assert_int_equal(echoed, 2 * (int)NS);
    assert_true(WIFEXITED(rc) && WEXITSTATUS(rc) == 0);
    nf_udp_close(u);
    nf_udp_close(uc);
    h_loop_finish(loop, 5000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_python_echo_server)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
