/* ws_idle_mem — user-space memory per idle WebSocket connection.
 *
 *   nf_ws_idle_mem [--connections 10000] [--backend uring|epoll] [--flow]
 *                  [--active] [--any-route]
 *
 * A child process opens N loopback connections (spread over 127.0.0.x
 * source addresses), sends each a WebSocket upgrade request, reads the 101
 * answer and holds the connection, idle. This process runs a netframe
 * WebSocket echo server (nf_ws_listen; with --flow, a flow-control filter
 * below it) on one loop and measures itself before the connections and once
 * all of them are open and idle: the RSS delta (VmRSS) and the malloc'd
 * bytes delta (mallinfo2), each divided by N. With --active every client
 * also sends one 5-byte message and reads its echo (so every connection has
 * used its codec); the figures are then taken once more after the codec's
 * rest period (NF__WS_REST_MS) has passed, and again after malloc_trim(0)
 * (glibc keeps freed memory for reuse: RSS stays at its high-water mark
 * until trimmed). Kernel memory is not counted.
 * Prints one line per measurement. */
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
#include <netframe/flow.h>
#include <netframe/ws.h>

#include "idle_common.h"
#include "net/transport.h" /* sizeof(nf_conn_t) */
#include "ws/conn.h"       /* sizeof(nf_ws_conn_t), NF__WS_REST_MS */

static int opened, echoed, g_any;
static void on_open(nf_ws_conn_t *ws)
{
    (void)ws;
    opened++;
}
static void on_message(nf_ws_conn_t *ws, unsigned op, const char *d, size_t n)
{
    echoed++;
    nf_ws_send(ws, op, d, n);
}
static void on_close(nf_ws_conn_t *ws, unsigned code, const char *r, size_t rl)
{
    (void)ws, (void)code, (void)r, (void)rl;
}
static const nf_ws_handler_t handler = {.on_open = on_open, .on_message = on_message, .on_close = on_close};
/* "/idle" matches the clients' target exactly (the connection borrows the
 * route's path); with --any-route the route is "*" and each connection
 * keeps a copy of its target. */
static const nf_ws_route_t routes[] = {{.path = "/idle", .handler = &handler}, {.path = "*", .handler = &handler}};

static const char k_req[] = "GET /idle HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
/* "hello", masked with the key 1 2 3 4 */
static const unsigned char k_msg[] = {0x81, 0x85, 1, 2, 3, 4, 'h' ^ 1, 'e' ^ 2, 'l' ^ 3, 'l' ^ 4, 'o' ^ 1};

static int read_until(int fd, const char *end, size_t endlen)
{
    char win[8] = {0};
    for (;;) {
        char c;
        if (read(fd, &c, 1) != 1)
            return -1;
        memmove(win, win + 1, endlen - 1);
        win[endlen - 1] = c;
        if (memcmp(win, end, endlen) == 0)
            return 0;
    }
}

/* The child: N WebSocket clients, held until the hold pipe closes. */
static int clients(uint16_t port, int n, int active, int ready_fd, int hold_fd)
{
    int *fds = calloc((size_t)n, sizeof *fds);
    for (int i = 0; i < n; i++) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            perror("ws_idle_mem: client socket");
            return 1;
        }
        struct sockaddr_in src = {.sin_family = AF_INET};
        src.sin_addr.s_addr = htonl(0x7f000001u + (uint32_t)(i / 20000));
        bind(fd, (struct sockaddr *)&src, sizeof src);
        struct sockaddr_in dst = {.sin_family = AF_INET, .sin_port = htons(port)};
        dst.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (connect(fd, (struct sockaddr *)&dst, sizeof dst) < 0 || write(fd, k_req, sizeof k_req - 1) < 0) {
            perror("ws_idle_mem: connect");
            return 1;
        }
        fds[i] = fd;
    }
    for (int i = 0; i < n; i++) {
        if (read_until(fds[i], "\r\n\r\n", 4) != 0) {
            fprintf(stderr, "ws_idle_mem: no 101 on connection %d\n", i);
            return 1;
        }
        if (active) {
            char echo[7];
            if (write(fds[i], k_msg, sizeof k_msg) != (ssize_t)sizeof k_msg || read(fds[i], echo, 7) != 7) {
                fprintf(stderr, "ws_idle_mem: no echo on connection %d\n", i);
                return 1;
            }
        }
    }
    char c = 1;
    if (write(ready_fd, &c, 1) != 1)
        return 1;
    while (read(hold_fd, &c, 1) > 0) {
    }
    /* go with a reset: no TIME_WAIT left on the machine's ephemeral ports */
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    for (int i = 0; i < n; i++) {
        setsockopt(fds[i], SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        close(fds[i]);
    }
    free(fds);
    return 0;
}

static void report(const char *what, int n, nf_loop_t *loop, long rss0, const struct mallinfo2 *m0, int flow)
{
    long rss1 = rss_kib();
    struct mallinfo2 m1 = mallinfo2();
    size_t filt = ((size_t)(flow ? 2 : 1) * sizeof(nf_filter_t) + 15) / 16 * 16 + (sizeof(nf_ws_conn_t) + 15) / 16 * 16;
    printf("%s conns=%d backend=%s route=%s flow=%d sizeof_conn=%zu sizeof_ws_conn=%zu ws_filter_block=%zu%s "
           "rss_per_conn=%.0f heap_per_conn=%.0f\n",
           what, n, nf_loop_backend_name(loop), g_any ? "any" : "exact", flow, sizeof(nf_conn_t), sizeof(nf_ws_conn_t),
           filt, flow ? "+flow_state" : "", (double)(rss1 - rss0) * 1024.0 / n,
           (double)((long long)m1.uordblks - (long long)m0->uordblks) / n);
    if (getenv("NF_MALLINFO"))
        printf("  arena %+lld free %+lld mmap %+lld\n", (long long)m1.arena - (long long)m0->arena,
               (long long)m1.fordblks - (long long)m0->fordblks, (long long)m1.hblkhd - (long long)m0->hblkhd);
    fflush(stdout);
}

static void tick(nf_timer_t *t) { (void)t; }

/* Warm-up: one client connection through the whole path (OpenSSL's SHA-1
 * and its provider, the codec, the library's code pages) before the
 * baseline is taken, so that one-time costs do not count per connection. */
static int warm_done;
static void w_open(nf_ws_conn_t *ws) { nf_ws_send(ws, NF_WS_OP_TEXT, "warm", 4); }
static void w_message(nf_ws_conn_t *ws, unsigned op, const char *d, size_t n)
{
    (void)op, (void)d, (void)n;
    nf_ws_close(ws, NF_WS_CLOSE_NORMAL, NULL, 0);
}
static void w_close(nf_ws_conn_t *ws, unsigned code, const char *r, size_t rl)
{
    (void)ws, (void)code, (void)r, (void)rl;
    warm_done = 1;
}
static const nf_ws_handler_t warm_h = {.on_open = w_open, .on_message = w_message, .on_close = w_close};
static void done_cb(nf_ws_server_t *s) { (void)s; }

int main(int argc, char **argv)
{
    int n = 10000, flow = 0, active = 0, any = 0;
    nf_loop_config_t cfg;
    nf_loop_config_init(&cfg);
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--flow") == 0)
            flow = 1;
        else if (strcmp(argv[i], "--active") == 0)
            active = 1;
        else if (strcmp(argv[i], "--any-route") == 0)
            any = 1;
        else if (i + 1 < argc && strcmp(argv[i], "--connections") == 0)
            n = atoi(argv[++i]);
        else if (i + 1 < argc && strcmp(argv[i], "--backend") == 0)
            cfg.backend = strcmp(argv[++i], "epoll") == 0 ? NF_BACKEND_EPOLL : NF_BACKEND_URING;
        else {
            fprintf(
                stderr,
                "usage: nf_ws_idle_mem [--connections N] [--backend uring|epoll] [--flow] [--active] [--any-route]\n");
            return 2;
        }
    }
    g_any = any;
    if (raise_nofile(n + 100L, "ws_idle_mem") != 0)
        return 2;
    signal(SIGPIPE, SIG_IGN);

    nf_loop_t *loop;
    if (nf_loop_new(&loop, &cfg) != 0)
        return 1;
    static const nf_flow_config_t fc = {0};
    static const nf_filter_spec_t fs[] = {{&nf_flow_filter, &fc}};
    nf_ws_server_config_t sc = {
        .listen = {.host = "127.0.0.1", .backlog = 4096, .filters = flow ? fs : NULL, .nfilters = flow ? 1u : 0u},
        .routes = any ? routes + 1 : routes,
        .nroutes = 1,
        .opts = {.handshake_timeout_ms = 60000},
    };
    nf_ws_server_t *s;
    if (nf_ws_listen(loop, &sc, &s) != 0)
        return 1;
    nf_addr_t a;
    nf_ws_server_addr(s, &a);
    nf_timer_t t;
    nf_timer_init(loop, &t);
    nf_timer_start(&t, tick, 10, 10);
    char url[64];
    snprintf(url, sizeof url, "ws://127.0.0.1:%u/idle", nf_addr_port(&a));
    nf_ws_client_config_t wc = {.handler = &warm_h};
    if (nf_ws_connect(loop, url, &wc, NULL) != 0)
        return 1;
    while (!warm_done || nf_ws_server_conns(s) > 0)
        nf_loop_run(loop, NF_RUN_ONCE);
    opened = echoed = 0;
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
        _exit(clients(nf_addr_port(&a), n, active, ready[1], hold[0]));
    }
    close(ready[1]);
    close(hold[0]);
    while (opened < n || (active && echoed < n))
        nf_loop_run(loop, NF_RUN_ONCE);
    char c;
    if (read(ready[0], &c, 1) != 1)
        return 1;
    for (int i = 0; i < 20; i++) /* idle iterations: nothing more comes */
        nf_loop_run(loop, NF_RUN_ONCE);
    report(active ? "after_echo" : "after_handshake", n, loop, rss0, &m0, flow);
    if (active) { /* past the codec's rest period */
        uint64_t until = nf_loop_now(loop) + NF__WS_REST_MS + 500;
        while (nf_loop_now(loop) < until)
            nf_loop_run(loop, NF_RUN_ONCE);
        report("after_rest", n, loop, rss0, &m0, flow);
        malloc_trim(0); /* what the allocator kept of the freed codecs */
        report("after_rest_trim", n, loop, rss0, &m0, flow);
    }
    close(hold[1]); /* the child lets go */
    waitpid(pid, NULL, 0);
    nf_timer_stop(&t);
    nf_ws_server_close(s, 0, done_cb);
    while (nf_loop_alive(loop) > 0)
        nf_loop_run(loop, NF_RUN_ONCE);
    return nf_loop_free(loop) == 0 ? 0 : 1;
}
