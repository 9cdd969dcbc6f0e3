/* echo_server — a TCP echo server on netframe.
 *
 *   echo_server [--host 127.0.0.1] [--port 7000] [--backend uring|epoll]
 *               [--threads N] [--mode block|poll|event] [--sqpoll]
 *               [--spread reuseport|acceptor]
 *
 * Runs N loops on N threads (nf_server; default 1). --mode picks how each
 * loop collects completions: block (sleep in the kernel), poll (spin, never
 * sleep; --sqpoll adds io_uring's kernel submission thread) or event (each
 * thread polls the loop's fd and runs non-blocking steps, as a program
 * embedding netframe would). Prints the loop's features on stderr, then
 * "listening on HOST:PORT backend=NAME" once it accepts connections. On
 * SIGINT or SIGTERM it stops accepting, closes every connection, frees
 * everything and exits 0. io_uring's registered I/O is off by default:
 * NF_FIXED_FILES=<slots> and NF_ZC_SEND_MIN=<bytes> in the environment turn
 * on the fixed file table and zero-copy sends (docs/modes.md). */
#define _POSIX_C_SOURCE 200809L
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <netframe/netframe.h>

static void on_read(nf_conn_t *c, const char *data, size_t len)
{
    /* Zero-copy echo: keep the received buffer and hand it to the write. */
    nf_buf_t *b = nf_conn_keep_read(c);
    if (b)
        nf_conn_write_buf(c, b);
    else
        nf_conn_write(c, data, len);
}

static void on_close(nf_conn_t *c, int reason) { (void)c, (void)reason; }

static const nf_conn_handler_t echo = {.on_read = on_read, .on_close = on_close};

static nf_server_t *server;

/* nf_server_stop is async-signal-safe: atomic stores and eventfd writes. */
static void handle_signal(int sig)
{
    (void)sig;
    if (server)
        nf_server_stop(server);
}

static void usage(void)
{
    fprintf(stderr, "usage: echo_server [--host ADDR] [--port N] [--backend uring|epoll] [--threads N]\n"
                    "                   [--mode block|poll|event] [--sqpoll] [--spread reuseport|acceptor]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    const char *host = "127.0.0.1", *backend = NULL, *mode = "block", *spread = "reuseport";
    int port = 7000, threads = 1, sqpoll = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--sqpoll") == 0) {
            sqpoll = 1;
            continue;
        }
        if (i + 1 >= argc)
            usage();
        if (strcmp(argv[i], "--host") == 0)
            host = argv[++i];
        else if (strcmp(argv[i], "--port") == 0)
            port = atoi(argv[++i]);
        else if (strcmp(argv[i], "--backend") == 0)
            backend = argv[++i];
        else if (strcmp(argv[i], "--threads") == 0)
            threads = atoi(argv[++i]);
        else if (strcmp(argv[i], "--mode") == 0)
            mode = argv[++i];
        else if (strcmp(argv[i], "--spread") == 0)
            spread = argv[++i];
        else
            usage();
    }
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
    if (strcmp(spread, "reuseport") == 0)
        cfg.spread = NF_SERVER_REUSEPORT;
    else if (strcmp(spread, "acceptor") == 0)
        cfg.spread = NF_SERVER_ACCEPTOR;
    else
        usage();
    if (threads < 1 || threads > 1024 || port < 0 || port > 65535)
        usage();
    cfg.loop.sqpoll = sqpoll;
    cfg.threads = (unsigned)threads;
    cfg.listen.host = host;
    cfg.listen.port = (uint16_t)port;
    cfg.listen.handler = &echo;

    /* Signals first: the server threads inherit the mask, the handler only
     * stores atomics and writes eventfds. */
    struct sigaction sa = {.sa_handler = handle_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &block, &old); /* loop threads never take them */
    int err = nf_server_start(&server, &cfg);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (err) {
        fprintf(stderr, "echo_server: listen on %s:%d: %s\n", host, port, nf_strerror(err));
        return 1;
    }
    nf_addr_t a;
    char name[64];
    nf_server_addr(server, &a);
    nf_loop_t *loop0 = nf_server_loop(server, 0);
    fprintf(stderr, "%s threads=%d spread=%s\n", nf_loop_features(loop0), threads, spread);
    printf("listening on %s backend=%s\n", nf_addr_format(&a, name, sizeof(name)), nf_loop_backend_name(loop0));
    fflush(stdout);

    err = nf_server_wait(server);
    if (err < 0)
        fprintf(stderr, "echo_server: loop: %s\n", nf_strerror(err));
    nf_loop_stats_t st;
    nf_server_stats(server, &st, NULL);
    fprintf(stderr, "echo_server: accepted=%llu closed=%llu bytes_in=%llu bytes_out=%llu\n",
            (unsigned long long)st.conns_accepted, (unsigned long long)st.conns_closed, (unsigned long long)st.bytes_in,
            (unsigned long long)st.bytes_out);
    nf_server_free(server);
    return err >= 0 ? 0 : 1;
}
