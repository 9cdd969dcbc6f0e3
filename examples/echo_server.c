/* echo_server — a TCP echo server on netframe.
 *
 *   echo_server [--host 127.0.0.1] [--port 7000] [--backend uring|epoll]
 *               [--threads N] [--mode block|poll|event] [--sqpoll]
 *               [--spread reuseport|acceptor] [--proxy[=v1|v2]]
 *               [--tls-cert FILE --tls-key FILE [--tls-alpn NAME]]
 *               [--no-write-bound]
 *
 * Runs N loops on N threads (nf_server; default 1). --mode picks how each
 * loop collects completions: block (sleep in the kernel), poll (spin, never
 * sleep; --sqpoll adds io_uring's kernel submission thread) or event (each
 * thread polls the loop's fd and runs non-blocking steps, as a program
 * embedding netframe would). Prints the loop's features on stderr, then
 * "listening on HOST:PORT backend=NAME" once it accepts connections. On
 * SIGINT or SIGTERM it stops accepting, closes every connection, frees
 * everything and exits 0.
 *
 * --proxy: the listener expects a PROXY protocol header (v1 or v2; `=v1`,
 * `=v2` accept only that one) from a load balancer in front of it, and
 * prints one line per connection on stdout:
 *   "proxy: peer=CLIENT transport=BALANCER version=N command=proxy|local"
 * A connection without a valid header is closed (reason on stderr). Not with
 * --spread acceptor (sockets handed over by the acceptor get no filters).
 *
 * With --tls-cert/--tls-key every connection runs TLS 1.2/1.3 (the TLS
 * filter, tls.h) under the same echo handler; the TLS features are printed
 * with the loop's. TLS needs --spread reuseport (the acceptor hand-over
 * carries no filters). With both, PROXY sits below TLS.
 *
 * Every connection's write queue has netframe's default bound (tcp.h): past
 * 1 MiB queued (a peer that sends and never reads) the connection stops
 * reading until the peer has read it down to 256 KiB, so the server does not
 * grow. --no-write-bound turns the bound off (write_high_water and write_max
 * NF_WRITE_LIMIT_OFF), to measure what it costs (bench/run.sh with
 * NF_BENCH_NOBOUND=1).
 *
 * io_uring's registered I/O is off by default: NF_FIXED_FILES=<slots> and
 * NF_ZC_SEND_MIN=<bytes> in the environment turn on the fixed file table and
 * zero-copy sends (docs/modes.md). */
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

static int proxy_mode; /* --proxy: log each connection's real peer */

static void on_open(nf_conn_t *c)
{
    if (!proxy_mode)
        return;
    nf_addr_t peer, tr;
    char p[80] = "?", t[80] = "?";
    if (nf_conn_peer_addr(c, &peer) == 0)
        nf_addr_format(&peer, p, sizeof(p));
    if (nf_conn_transport_peer_addr(c, &tr) == 0)
        nf_addr_format(&tr, t, sizeof(t));
    const nf_proxy_header_t *h;
    int version = 0, local = 0;
    if (nf_proxy_get(c, &h) == 0) {
        version = h->version;
        local = h->command == NF_PROXY_CMD_LOCAL;
    }
    printf("proxy: peer=%s transport=%s version=%d command=%s\n", p, t, version, local ? "local" : "proxy");
    fflush(stdout);
}

static void on_close(nf_conn_t *c, int reason)
{
    (void)c;
    if (proxy_mode && reason <= -5400 && reason > -5500)
        fprintf(stderr, "echo_server: closed: %s\n", nf_strerror(reason));
}

static const nf_conn_handler_t echo = {.on_open = on_open, .on_read = on_read, .on_close = on_close};
static nf_proxy_config_t proxy_cfg;
static const nf_filter_spec_t proxy_stack[] = {{.ops = &nf_proxy_filter, .config = &proxy_cfg}};

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
                    "                   [--mode block|poll|event] [--sqpoll] [--spread reuseport|acceptor]\n"
                    "                   [--proxy[=v1|v2]] [--tls-cert FILE --tls-key FILE [--tls-alpn NAME]]\n"
                    "                   [--no-write-bound]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    const char *host = "127.0.0.1", *backend = NULL, *mode = "block", *spread = "reuseport";
    const char *tls_cert = NULL, *tls_key = NULL, *tls_alpn = NULL;
    int port = 7000, threads = 1, sqpoll = 0, no_bound = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--sqpoll") == 0) {
            sqpoll = 1;
            continue;
        }
        if (strcmp(argv[i], "--no-write-bound") == 0) {
            no_bound = 1;
            continue;
        }
        if (strncmp(argv[i], "--proxy", 7) == 0) {
            const char *v = argv[i] + 7;
            proxy_mode = 1;
            if (strcmp(v, "=v1") == 0)
                proxy_cfg.versions = NF_PROXY_V1;
            else if (strcmp(v, "=v2") == 0)
                proxy_cfg.versions = NF_PROXY_V2;
            else if (*v)
                usage();
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
        else if (strcmp(argv[i], "--tls-cert") == 0)
            tls_cert = argv[++i];
        else if (strcmp(argv[i], "--tls-key") == 0)
            tls_key = argv[++i];
        else if (strcmp(argv[i], "--tls-alpn") == 0)
            tls_alpn = argv[++i];
        else
            usage();
    }
    if (!tls_cert != !tls_key)
        usage();
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
    if (proxy_mode && cfg.spread == NF_SERVER_ACCEPTOR)
        usage();
    cfg.loop.sqpoll = sqpoll;
    cfg.threads = (unsigned)threads;
    cfg.listen.host = host;
    cfg.listen.port = (uint16_t)port;
    cfg.listen.handler = &echo;
    if (no_bound)
        cfg.listen.write_high_water = cfg.listen.write_max = NF_WRITE_LIMIT_OFF;
    /* The stack from the wire up: PROXY header (in the clear), then TLS. */
    nf_filter_spec_t stack[2];
    unsigned nstack = 0;
    if (proxy_mode)
        stack[nstack++] = proxy_stack[0];

    nf_tls_ctx_t *tls = NULL;
    const char *alpn[2] = {tls_alpn, NULL};
    if (tls_cert) {
        char why[256];
        nf_tls_config_t tc = {.server = 1, .cert_file = tls_cert, .key_file = tls_key, .alpn = tls_alpn ? alpn : NULL};
        int terr = nf_tls_ctx_new(&tls, &tc, why, sizeof why);
        if (terr) {
            fprintf(stderr, "echo_server: TLS: %s\n", why);
            return 1;
        }
        if (cfg.spread != NF_SERVER_REUSEPORT) {
            fprintf(stderr, "echo_server: TLS needs --spread reuseport\n");
            return 2;
        }
        stack[nstack++] = (nf_filter_spec_t){.ops = &nf_tls_filter, .config = tls};
    }
    if (nstack) {
        cfg.listen.filters = stack;
        cfg.listen.nfilters = nstack;
    }

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
    if (tls)
        fprintf(stderr, "tls: TLSv1.2-TLSv1.3 cert=%s alpn=%s tickets=on handshake_timeout=10s\n", tls_cert,
                tls_alpn ? tls_alpn : "-");
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
    nf_tls_ctx_free(tls);
    return err >= 0 ? 0 : 1;
}
