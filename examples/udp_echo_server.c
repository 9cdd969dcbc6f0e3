/* udp_echo_server — a UDP echo server on netframe.
 *
 *   udp_echo_server [--host 127.0.0.1] [--port 7001] [--threads N]
 *                   [--mode block|poll|event] [--backend uring|epoll]
 *                   [--rcvbuf BYTES] [--recv-size BYTES] [--recv-count N]
 *                   [--max-queued N]
 *
 * Runs N loops on N threads (nf_server without a TCP listener), each with
 * its own UDP socket on the same address (SO_REUSEPORT: the kernel spreads
 * datagrams by the sender's address). Every datagram goes back to its
 * sender, whole: by default each socket receives datagrams of up to 65,527
 * bytes (NF_UDP_MAX_DGRAM6, any UDP payload over IPv4 or IPv6) into 64
 * buffers, about 4 MiB per socket once they have all been used (the
 * library's own default, 2,048 bytes, is sized for small datagrams: see
 * recv_size in netframe/udp.h). With a smaller --recv-size, a longer
 * datagram arrives truncated (NF_UDP_TRUNC): it is not echoed, it is
 * counted (truncated= in the final line) and the first ones are logged on
 * stderr, since echoing its first bytes would answer something the peer
 * never sent.
 *
 * Prints the loop's and the socket's features on stderr, then
 * "listening on HOST:PORT udp backend=NAME" once every socket is bound. On
 * SIGINT or SIGTERM it closes the sockets, prints the counters and exits 0. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <netframe/netframe.h>

typedef struct app {
    const char *host;
    uint16_t port; /* loop 0's, once bound: the others share it */
    int rcvbuf;
    unsigned recv_size, recv_count, max_queued;
    nf_udp_t *socks[1024];
    pthread_mutex_t mu;
    nf_udp_stats_t total;
    char features[128];
} app_t;

#define LOG_TRUNCATED 10 /* log the first ones; all are counted */
static atomic_uint g_truncated_logged;

static void on_recv(nf_udp_t *u, const char *data, size_t len, const nf_addr_t *from, unsigned flags,
                    nf_udp_peer_t *peer)
{
    (void)peer;
    if (flags & NF_UDP_TRUNC) { /* only its first len bytes are here: never echo a part as the whole */
        unsigned n = atomic_fetch_add(&g_truncated_logged, 1);
        if (n < LOG_TRUNCATED) {
            char name[64];
            fprintf(stderr, "udp_echo_server: datagram from %s longer than --recv-size %zu: truncated, not echoed%s\n",
                    nf_addr_format(from, name, sizeof(name)), len,
                    n + 1 == LOG_TRUNCATED ? " (no more of these logged)" : "");
        }
        return;
    }
    nf_udp_send(u, data, len, from); /* a copy; dropped by policy if the queue is full */
}

static const nf_udp_handler_t echo = {.on_recv = on_recv};

static int loop_start(nf_server_t *s, nf_loop_t *loop, unsigned index)
{
    app_t *app = nf_server_get_data(s);
    nf_udp_config_t cfg;
    nf_udp_config_init(&cfg);
    cfg.host = app->host;
    cfg.port = app->port;
    cfg.reuseport = 1;
    cfg.rcvbuf = app->rcvbuf;
    cfg.sndbuf = app->rcvbuf;
    cfg.recv_size = app->recv_size;
    cfg.recv_count = app->recv_count;
    cfg.max_queued_dgrams = app->max_queued;
    cfg.handler = &echo;
    int err = nf_udp_open(loop, &cfg, &app->socks[index]);
    if (err)
        return err;
    if (index == 0) {
        nf_addr_t a;
        nf_udp_local_addr(app->socks[0], &a);
        app->port = nf_addr_port(&a);
        snprintf(app->features, sizeof(app->features), "%s", nf_udp_features(app->socks[0]));
    }
    return 0;
}

static void loop_stop(nf_server_t *s, nf_loop_t *loop, unsigned index)
{
    (void)loop;
    app_t *app = nf_server_get_data(s);
    nf_udp_stats_t st;
    nf_udp_stats(app->socks[index], &st);
    pthread_mutex_lock(&app->mu);
    app->total.dgrams_in += st.dgrams_in;
    app->total.dgrams_out += st.dgrams_out;
    app->total.bytes_in += st.bytes_in;
    app->total.bytes_out += st.bytes_out;
    app->total.dropped += st.dropped;
    app->total.send_errors += st.send_errors;
    app->total.truncated += st.truncated;
    pthread_mutex_unlock(&app->mu);
    nf_udp_close(app->socks[index]);
}

static nf_server_t *server;

static void handle_signal(int sig)
{
    (void)sig;
    if (server)
        nf_server_stop(server);
}

static void usage(void)
{
    fprintf(stderr, "usage: udp_echo_server [--host ADDR] [--port N] [--threads N] [--mode block|poll|event]\n"
                    "                       [--backend uring|epoll] [--rcvbuf BYTES] [--recv-size BYTES]\n"
                    "                       [--recv-count N] [--max-queued N]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    static app_t app = {.host = "127.0.0.1",
                        .port = 7001,
                        .recv_size = NF_UDP_MAX_DGRAM6,
                        .recv_count = 64,
                        .mu = PTHREAD_MUTEX_INITIALIZER};
    const char *backend = NULL, *mode = "block";
    int port = 7001, threads = 1;
    for (int i = 1; i < argc; i++) {
        if (i + 1 >= argc)
            usage();
        if (strcmp(argv[i], "--host") == 0)
            app.host = argv[++i];
        else if (strcmp(argv[i], "--port") == 0)
            port = atoi(argv[++i]);
        else if (strcmp(argv[i], "--backend") == 0)
            backend = argv[++i];
        else if (strcmp(argv[i], "--threads") == 0)
            threads = atoi(argv[++i]);
        else if (strcmp(argv[i], "--mode") == 0)
            mode = argv[++i];
        else if (strcmp(argv[i], "--rcvbuf") == 0)
            app.rcvbuf = atoi(argv[++i]);
        else if (strcmp(argv[i], "--recv-size") == 0)
            app.recv_size = (unsigned)atoi(argv[++i]);
        else if (strcmp(argv[i], "--recv-count") == 0)
            app.recv_count = (unsigned)atoi(argv[++i]);
        else if (strcmp(argv[i], "--max-queued") == 0)
            app.max_queued = (unsigned)atoi(argv[++i]);
        else
            usage();
    }
    if (threads < 1 || threads > 1024 || port < 0 || port > 65535)
        usage();
    app.port = (uint16_t)port;
    nf_server_config_t cfg;
    nf_server_config_init(&cfg);
    if (backend && strcmp(backend, "uring") == 0)
        cfg.loop.backend = NF_BACKEND_URING;
    else if (backend && strcmp(backend, "epoll") == 0)
        cfg.loop.backend = NF_BACKEND_EPOLL;
    else if (backend && strcmp(backend, "auto") != 0)
        usage();
    if (strcmp(mode, "block") == 0)
        cfg.loop.mode = NF_MODE_BLOCK;
    else if (strcmp(mode, "poll") == 0)
        cfg.loop.mode = NF_MODE_POLL;
    else if (strcmp(mode, "event") == 0)
        cfg.loop.mode = NF_MODE_EVENT;
    else
        usage();
    cfg.threads = (unsigned)threads;
    cfg.listen.handler = NULL; /* no TCP listener: UDP sockets from on_loop_start */
    cfg.on_loop_start = loop_start;
    cfg.on_loop_stop = loop_stop;
    cfg.data = &app;

    struct sigaction sa = {.sa_handler = handle_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &block, &old); /* loop threads never take them */
    int err = nf_server_start(&server, &cfg);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (err) {
        fprintf(stderr, "udp_echo_server: bind %s:%d: %s\n", app.host, port, nf_strerror(err));
        return 1;
    }
    nf_loop_t *loop0 = nf_server_loop(server, 0);
    nf_addr_t a;
    char name[64];
    nf_udp_local_addr(app.socks[0], &a);
    fprintf(stderr, "%s\nudp: %s threads=%d\n", nf_loop_features(loop0), app.features, threads);
    printf("listening on %s udp backend=%s\n", nf_addr_format(&a, name, sizeof(name)), nf_loop_backend_name(loop0));
    fflush(stdout);

    err = nf_server_wait(server);
    if (err < 0)
        fprintf(stderr, "udp_echo_server: loop: %s\n", nf_strerror(err));
    fprintf(stderr,
            "udp_echo_server: dgrams_in=%llu dgrams_out=%llu bytes_in=%llu dropped=%llu send_errors=%llu "
            "truncated=%llu (not echoed)\n",
            (unsigned long long)app.total.dgrams_in, (unsigned long long)app.total.dgrams_out,
            (unsigned long long)app.total.bytes_in, (unsigned long long)app.total.dropped,
            (unsigned long long)app.total.send_errors, (unsigned long long)app.total.truncated);
    nf_server_free(server);
    return err >= 0 ? 0 : 1;
}
