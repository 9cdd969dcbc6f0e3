/* idle_mem — user-space memory per idle, established connection.
 *
 *   nf_idle_mem [--connections 10000] [--backend uring|epoll]
 *
 * A child process opens N loopback connections (spread over 127.0.0.x source
 * addresses) and holds them, idle. This process runs a netframe echo server
 * on one loop and measures itself before and after accepting them: the RSS
 * delta (VmRSS, what the process really touches) and the malloc'd bytes
 * delta (mallinfo2: what netframe allocated), each divided by N. Kernel
 * memory (socket buffers, the fd table) is not user space and not counted.
 * Prints one line:
 *   conns=N backend=... sizeof_conn=... rss_per_conn=... heap_per_conn=... */
#include <arpa/inet.h>
#include <malloc.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <netframe/netframe.h>

#include "idle_common.h"
#include "net/transport.h" /* sizeof(nf_conn_t) */

static void on_read(nf_conn_t *c, const char *d, size_t n) { nf_conn_write(c, d, n); }
static void on_close(nf_conn_t *c, int r) { (void)c, (void)r; }
static const nf_conn_handler_t h = {.on_read = on_read, .on_close = on_close};
static void tick(nf_timer_t *t) { (void)t; }
static void close_one(nf_conn_t *c, void *arg) { (void)arg, nf_conn_close(c); }

/* The child: N connections from 127.0.0.(1 + i / 20000), held until stdin closes. */
static int clients(uint16_t port, int n, int ready_fd, int hold_fd)
{
    for (int i = 0; i < n; i++) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            perror("idle_mem: client socket");
            return 1;
        }
        struct sockaddr_in src = {.sin_family = AF_INET};
        src.sin_addr.s_addr = htonl(0x7f000001u + (uint32_t)(i / 20000));
        bind(fd, (struct sockaddr *)&src, sizeof src);
        struct sockaddr_in dst = {.sin_family = AF_INET, .sin_port = htons(port)};
        dst.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (connect(fd, (struct sockaddr *)&dst, sizeof dst) < 0) {
            perror("idle_mem: connect");
            return 1;
        }
    }
    char c = 1;
    if (write(ready_fd, &c, 1) != 1)
        return 1;
    while (read(hold_fd, &c, 1) > 0) {
    }
    return 0;
}

int main(int argc, char **argv)
{
    int n = 10000;
    nf_loop_config_t cfg;
    nf_loop_config_init(&cfg);
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--connections") == 0)
            n = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--backend") == 0)
            cfg.backend = strcmp(argv[i + 1], "epoll") == 0 ? NF_BACKEND_EPOLL : NF_BACKEND_URING;
    }
    if (raise_nofile(n + 100L, "idle_mem") != 0)
        return 2;
    signal(SIGPIPE, SIG_IGN);

    nf_loop_t *loop;
    if (nf_loop_new(&loop, &cfg) != 0)
        return 1;
    nf_listener_t *l;
    nf_listen_config_t lc = {.host = "127.0.0.1", .port = 0, .backlog = 4096, .handler = &h};
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
        _exit(clients(nf_addr_port(&a), n, ready[1], hold[0]));
    }
    close(ready[1]);
    close(hold[0]);
    nf_loop_stats_t st;
    do {
        nf_loop_run(loop, NF_RUN_ONCE);
        nf_loop_stats(loop, &st);
    } while ((int)st.conns_open < n);
    char c;
    if (read(ready[0], &c, 1) != 1)
        return 1;
    for (int i = 0; i < 20; i++) /* idle iterations: nothing more comes */
        nf_loop_run(loop, NF_RUN_ONCE);
    long rss1 = rss_kib();
    struct mallinfo2 m1 = mallinfo2();
    nf_loop_stats(loop, &st);
    printf("conns=%d backend=%s sizeof_conn=%zu malloc_chunk=%zu rss_per_conn=%.0f heap_per_conn=%.0f "
           "bufs_in_use=%llu\n",
           n, nf_loop_backend_name(loop), sizeof(nf_conn_t), (sizeof(nf_conn_t) + 8 + 15) / 16 * 16,
           (double)(rss1 - rss0) * 1024.0 / n, (double)(m1.uordblks - m0.uordblks) / n,
           (unsigned long long)st.bufs_in_use);
    close(hold[1]); /* the child lets go */
    waitpid(pid, NULL, 0);
    nf_timer_stop(&t);
    nf_listener_close(l, NULL);
    nf_conn_walk(loop, close_one, NULL);
    while (nf_loop_alive(loop) > 0)
        nf_loop_run(loop, NF_RUN_ONCE);
    return nf_loop_free(loop) == 0 ? 0 : 1;
}
