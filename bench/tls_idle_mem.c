/* tls_idle_mem — user-space memory per idle TLS connection.
 *
 *   nf_tls_idle_mem --cert F --key F [--connections 1000] [--backend uring|epoll] [--plain]
 *
 * This process runs an echo server with the TLS filter (--plain: without);
 * a forked child opens N netframe TLS client connections to it, waits until
 * every handshake (and one 64 B echo) is done, and holds them idle. Both
 * sides measure their heap (mallinfo2 uordblks) before and after and divide
 * by N: what one idle TLS connection costs the server and the client in
 * malloc'd bytes (netframe's connection + filter state + OpenSSL's SSL
 * object, session and buffers left after the handshake). Prints:
 *   side=server conns=N heap_per_conn=B rss_per_conn=B
 *   side=client conns=N heap_per_conn=B */
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <netframe/netframe.h>

#include "idle_common.h"

static int opened, echoed;
static void s_open(nf_conn_t *c) { (void)c, opened++; }
static void s_read(nf_conn_t *c, const char *d, size_t n) { nf_conn_write(c, d, n); }
static void on_close(nf_conn_t *c, int r) { (void)c, (void)r; }
static const nf_conn_handler_t sh = {.on_open = s_open, .on_read = s_read, .on_close = on_close};
static void c_open(nf_conn_t *c)
{
    static const char msg[64] = "idle";
    nf_conn_write(c, msg, sizeof msg);
}
static void c_read(nf_conn_t *c, const char *d, size_t n) { (void)c, (void)d, echoed += (int)n; }
static const nf_conn_handler_t ch = {.on_open = c_open, .on_read = c_read, .on_close = on_close};
static void tick(nf_timer_t *t) { (void)t; }
static void close_one(nf_conn_t *c, void *arg) { (void)arg, nf_conn_close(c); }

static void drain(nf_loop_t *loop, nf_timer_t *t)
{
    nf_timer_stop(t);
    nf_conn_walk(loop, close_one, NULL);
    while (nf_loop_alive(loop) > 0)
        nf_loop_run(loop, NF_RUN_ONCE);
    nf_loop_free(loop);
}

static int clients(const nf_loop_config_t *cfg, uint16_t port, int n, int plain, int ready_fd, int hold_fd)
{
    nf_loop_t *loop;
    if (nf_loop_new(&loop, cfg) != 0)
        return 1;
    nf_tls_config_t tc = {.insecure = 1};
    nf_tls_ctx_t *ctx;
    if (nf_tls_ctx_new(&ctx, &tc, NULL, 0) != 0)
        return 1;
    nf_filter_spec_t spec[1] = {{&nf_tls_filter, ctx}};
    nf_timer_t t;
    nf_timer_init(loop, &t);
    nf_timer_start(&t, tick, 10, 10);
    struct mallinfo2 m0 = mallinfo2();
    for (int i = 0; i < n; i++) {
        nf_connect_config_t cc = {.host = "127.0.0.1", .port = port, .handler = &ch};
        cc.filters = plain ? NULL : spec;
        cc.nfilters = plain ? 0 : 1;
        nf_conn_t *c;
        if (nf_connect(loop, &cc, &c) != 0)
            return 1;
        if (i % 64 == 63) /* keep the backlog short */
            for (int k = 0; k < 4; k++)
                nf_loop_run(loop, NF_RUN_NOWAIT);
    }
    while (echoed < n * 64)
        nf_loop_run(loop, NF_RUN_ONCE);
    for (int i = 0; i < 20; i++)
        nf_loop_run(loop, NF_RUN_ONCE);
    struct mallinfo2 m1 = mallinfo2();
    printf("side=client conns=%d tls=%s heap_per_conn=%.0f\n", n, plain ? "no" : "yes",
           (double)(m1.uordblks - m0.uordblks) / n);
    fflush(stdout);
    char c = 1;
    if (write(ready_fd, &c, 1) != 1)
        return 1;
    while (read(hold_fd, &c, 1) > 0) {
    }
    drain(loop, &t);
    nf_tls_ctx_free(ctx);
    return 0;
}

int main(int argc, char **argv)
{
    int n = 1000, plain = 0;
    const char *cert = NULL, *key = NULL;
    nf_loop_config_t cfg;
    nf_loop_config_init(&cfg);
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--plain") == 0)
            plain = 1;
        else if (i + 1 < argc && strcmp(argv[i], "--connections") == 0)
            n = atoi(argv[++i]);
        else if (i + 1 < argc && strcmp(argv[i], "--cert") == 0)
            cert = argv[++i];
        else if (i + 1 < argc && strcmp(argv[i], "--key") == 0)
            key = argv[++i];
        else if (i + 1 < argc && strcmp(argv[i], "--backend") == 0)
            cfg.backend = strcmp(argv[++i], "epoll") == 0 ? NF_BACKEND_EPOLL : NF_BACKEND_URING;
        else {
            fprintf(stderr, "usage: nf_tls_idle_mem --cert F --key F [--connections N] [--backend B] [--plain]\n");
            return 2;
        }
    }
    if (!cert || !key || n < 1)
        return 2;
    (void)raise_nofile(0, "tls_idle_mem");
    signal(SIGPIPE, SIG_IGN);
    char why[256];
    nf_tls_ctx_t *ctx;
    nf_tls_config_t tc = {.server = 1, .cert_file = cert, .key_file = key};
    if (nf_tls_ctx_new(&ctx, &tc, why, sizeof why) != 0) {
        fprintf(stderr, "nf_tls_idle_mem: %s\n", why);
        return 1;
    }
    /* the listener's port first, then fork: the child makes its own loop */
    nf_loop_t *loop;
    if (nf_loop_new(&loop, &cfg) != 0)
        return 1;
    nf_filter_spec_t spec[1] = {{&nf_tls_filter, ctx}};
    nf_listen_config_t lc = {.host = "127.0.0.1", .backlog = 4096, .handler = &sh};
    lc.filters = plain ? NULL : spec;
    lc.nfilters = plain ? 0 : 1;
    nf_listener_t *l;
    if (nf_listen(loop, &lc, &l) != 0)
        return 1;
    nf_addr_t a;
    nf_listener_addr(l, &a);
    nf_timer_t t;
    nf_timer_init(loop, &t);
    nf_timer_start(&t, tick, 10, 10);
    for (int i = 0; i < 10; i++)
        nf_loop_run(loop, NF_RUN_ONCE);
    int ready[2], hold[2];
    if (pipe(ready) || pipe(hold))
        return 1;
    long rss0 = rss_kib();
    struct mallinfo2 m0 = mallinfo2();
    pid_t pid = fork();
    if (pid == 0) {
        close(ready[0]);
        close(hold[1]);
        _exit(clients(&cfg, nf_addr_port(&a), n, plain, ready[1], hold[0]));
    }
    close(ready[1]);
    close(hold[0]);
    /* until the child says every echo came back */
    struct timeval tv = {0, 0};
    for (;;) {
        nf_loop_run(loop, NF_RUN_ONCE);
        fd_set rs;
        FD_ZERO(&rs);
        FD_SET(ready[0], &rs);
        if (select(ready[0] + 1, &rs, NULL, NULL, &tv) > 0)
            break;
    }
    char c;
    if (read(ready[0], &c, 1) != 1)
        return 1;
    for (int i = 0; i < 20; i++)
        nf_loop_run(loop, NF_RUN_ONCE);
    long rss1 = rss_kib();
    struct mallinfo2 m1 = mallinfo2();
    printf("side=server conns=%d tls=%s opened=%d backend=%s heap_per_conn=%.0f rss_per_conn=%.0f\n", n,
           plain ? "no" : "yes", opened, nf_loop_backend_name(loop), (double)(m1.uordblks - m0.uordblks) / n,
           (double)(rss1 - rss0) * 1024.0 / n);
    fflush(stdout);
    close(hold[1]);
    waitpid(pid, NULL, 0);
    nf_listener_close(l, NULL);
    drain(loop, &t);
    nf_tls_ctx_free(ctx);
    return opened == n ? 0 : 1;
}
