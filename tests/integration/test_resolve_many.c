/* Integration: 10,000 concurrent nf_connect calls by name on one loop (issue
 * 13). Before, each started a getaddrinfo thread; now the loop's c-ares
 * channel answers them all. The process's thread count (/proc/self/status)
 * is sampled while the connects are started and every few milliseconds
 * while they resolve and connect, and must stay at the main thread. Every
 * connection either opens or closes with a reason; both are counted and sum
 * to the number started. Two runs: 10,000 names from a hosts file, and 1,000
 * from a DNS server (a child process) through the loop's watch on c-ares's
 * socket. */
#include "helpers.h"
#include "resolve_peer.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define N_CONNS 10000
/* By DNS, fewer: every query leaves inside nf_connect before the loop reads
 * an answer, so a burst larger than the UDP socket's buffer loses answers and
 * waits for c-ares's retransmit (5 s): 2,000 took 5 s, 4,000 took 15 s. */
#define N_DNS       1000
#define MAX_THREADS 1 /* the test's own thread; the DNS server is a process */

static const char g_hosts[] = "127.0.0.1 nf-many.test\n";
static const char *g_hosts_path;
static rp_dns_t g_dns;

typedef struct many {
    nf_conn_t *conns[N_CONNS];
    unsigned char state[N_CONNS]; /* 0 connecting, 1 open, 2 closed */
    int opened, failed, closed;
    int max_threads;
    int reasons[8]; /* the first distinct failure reasons */
    int reason_count[8];
} many_t;

static many_t *g;

static void sample_threads(void)
{
    int n = rp_threads();
    if (n > g->max_threads)
        g->max_threads = n;
}

static void m_on_open(nf_conn_t *c)
{
    unsigned char *st = nf_conn_get_data(c);
    *st = 1;
    g->opened++;
}

static void m_on_close(nf_conn_t *c, int reason)
{
    unsigned char *st = nf_conn_get_data(c);
    if (*st == 0) {
        g->failed++;
        for (int i = 0; i < 8; i++) {
            if (g->reason_count[i] == 0 || g->reasons[i] == reason) {
                g->reasons[i] = reason;
                g->reason_count[i]++;
                break;
            }
        }
    }
    *st = 2;
    g->closed++;
}

static const nf_conn_handler_t m_handler = {
    .on_open = m_on_open,
    .on_read = h_ignore_read,
    .on_close = m_on_close,
};

static void on_sample(nf_timer_t *t)
{
    (void)t;
    sample_threads();
}

static void run_many(const char *name, const char *servers, int n)
{
    h_raise_nofile(3 * N_CONNS + 1024);
    g = calloc(1, sizeof(*g));
    assert_non_null(g);
    nf_loop_config_t lc;
    nf_loop_config_init(&lc);
    lc.dns_servers = servers;
    nf_loop_t *loop = h_loop_new_cfg(&lc);
    h_echo_reset();
    nf_listen_config_t cfg = h_listen_config(&h_echo_handler, NULL);
    cfg.host = "127.0.0.1";
    cfg.backlog = 4096;
    nf_listener_t *l;
    uint16_t port = h_listen_cfg(loop, &cfg, &l);
    nf_timer_t sampler;
    nf_timer_init(loop, &sampler);
    nf_timer_start(&sampler, on_sample, 5, 5);

    uint64_t t0 = h_now_ms();
    sample_threads();
    for (int i = 0; i < n; i++) {
        nf_connect_config_t cc = h_connect_config(name, port, &m_handler, &g->state[i]);
        cc.timeout_ms = 60000;
        H_ASSERT_ERR(nf_connect(loop, &cc, &g->conns[i]), 0);
        if (i % 500 == 0)
            sample_threads();
    }
    sample_threads();
    uint64_t t_started = h_now_ms();
    H_RUN_UNTIL(loop, g->opened + g->failed == n, 150000);
    uint64_t t_done = h_now_ms();
    sample_threads();
    print_message("[ info     ] %s (%s): %d opened, %d closed before opening, in %llu ms (starting them: %llu ms); "
                  "threads at most %d\n",
                  name, servers ? "DNS" : "hosts file", g->opened, g->failed, (unsigned long long)(t_done - t0),
                  (unsigned long long)(t_started - t0), g->max_threads);
    for (int i = 0; i < 8 && g->reason_count[i]; i++)
        print_message("[ info     ]   %d closed with %s\n", g->reason_count[i], nf_err_name(g->reasons[i]));

    assert_int_equal(g->opened + g->failed, n);
    if (g->max_threads > MAX_THREADS)
        fail_msg("the process had %d threads (at most %d expected)", g->max_threads, MAX_THREADS);
    /* Loopback with a backlog of 4096 and a 60 s timeout: all of them open. */
    assert_int_equal(g->opened, n);

    for (int i = 0; i < n; i++)
        if (g->state[i] == 1)
            nf_conn_close(g->conns[i]);
    nf_timer_stop(&sampler);
    H_RUN_UNTIL(loop, g->closed == n && h_echo.closed == g->opened, 60000);
    h_listener_finish(loop, l, 10000);
    free(g);
    g = NULL;
}

static void test_many_by_hosts_file(void **state)
{
    (void)state;
    run_many("nf-many.test", NULL, N_CONNS);
}

static void test_many_by_dns(void **state)
{
    (void)state;
    run_many(RP_DNS_NAME, g_dns.servers, N_DNS);
}

static int group_setup(void **state) { return (void)state, rp_group_start(g_hosts, &g_hosts_path, &g_dns); }
static int group_teardown(void **state) { return (void)state, rp_group_stop(g_hosts_path, &g_dns), 0; }

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_many_by_hosts_file),
        cmocka_unit_test(test_many_by_dns),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
