/* echo_server — a TCP echo server on netframe.
 *
 *   echo_server [--host 127.0.0.1] [--port 7000] [--backend uring|epoll]
 *
 * Prints "listening on HOST:PORT backend=NAME" once it accepts connections.
 * On SIGINT or SIGTERM it stops accepting, closes every connection, frees
 * everything and exits 0. */
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

static volatile sig_atomic_t stopping;
static nf_listener_t *listener;

static void close_one(nf_conn_t *c, void *arg) { (void)arg, nf_conn_close(c); }

static void on_signal(nf_timer_t *t)
{
    /* Polled from a timer so the example uses only the public API; a real
     * program could also watch a signalfd with its own loop (see docs). */
    if (!stopping)
        return;
    nf_timer_stop(t);
    nf_loop_t *loop = t->loop;
    nf_listener_close(listener, NULL);
    nf_conn_walk(loop, close_one, NULL);
}

static void handle_signal(int sig) { (void)sig, stopping = 1; }

static void usage(void)
{
    fprintf(stderr, "usage: echo_server [--host ADDR] [--port N] [--backend uring|epoll]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    const char *host = "127.0.0.1", *backend = NULL;
    int port = 7000;
    for (int i = 1; i < argc; i++) {
        if (i + 1 >= argc)
            usage();
        if (strcmp(argv[i], "--host") == 0)
            host = argv[++i];
        else if (strcmp(argv[i], "--port") == 0)
            port = atoi(argv[++i]);
        else if (strcmp(argv[i], "--backend") == 0)
            backend = argv[++i];
        else
            usage();
    }
    nf_loop_config_t cfg;
    nf_loop_config_init(&cfg);
    if (backend && strcmp(backend, "uring") == 0)
        cfg.backend = NF_BACKEND_URING;
    else if (backend && strcmp(backend, "epoll") == 0)
        cfg.backend = NF_BACKEND_EPOLL;
    else if (backend && strcmp(backend, "auto") != 0)
        usage();

    nf_loop_t *loop;
    int err = nf_loop_new(&loop, &cfg);
    if (err) {
        fprintf(stderr, "echo_server: loop: %s\n", nf_strerror(err));
        return 1;
    }
    nf_listen_config_t lc = {.host = host, .port = (uint16_t)port, .handler = &echo};
    err = nf_listen(loop, &lc, &listener);
    if (err) {
        fprintf(stderr, "echo_server: listen on %s:%d: %s\n", host, port, nf_strerror(err));
        nf_loop_free(loop);
        return 1;
    }
    struct sigaction sa = {.sa_handler = handle_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    nf_timer_t sigpoll;
    nf_timer_init(loop, &sigpoll);
    nf_timer_start(&sigpoll, on_signal, 50, 50);

    nf_addr_t a;
    char name[64];
    nf_listener_addr(listener, &a);
    fprintf(stderr, "%s\n", nf_loop_features(loop));
    printf("listening on %s backend=%s\n", nf_addr_format(&a, name, sizeof(name)), nf_loop_backend_name(loop));
    fflush(stdout);

    err = nf_loop_run(loop, NF_RUN_DEFAULT);
    if (err < 0)
        fprintf(stderr, "echo_server: loop: %s\n", nf_strerror(err));
    nf_loop_stats_t st;
    nf_loop_stats(loop, &st);
    fprintf(stderr, "echo_server: accepted=%llu closed=%llu bytes_in=%llu bytes_out=%llu\n",
            (unsigned long long)st.conns_accepted, (unsigned long long)st.conns_closed,
            (unsigned long long)st.bytes_in, (unsigned long long)st.bytes_out);
    return nf_loop_free(loop) == 0 && err >= 0 ? 0 : 1;
}
