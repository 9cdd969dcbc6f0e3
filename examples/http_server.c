/* http_server — an HTTP/1.1 server on netframe (netframe/http_server.h).
 *
 *   http_server [--host 127.0.0.1] [--port 8080] [--backend uring|epoll]
 *               [--threads N] [--tls-cert FILE --tls-key FILE]
 *
 * GET / answers "Hello, World!" (text/plain), the usual plaintext benchmark;
 * POST /echo answers the request body; GET /metrics the server's and the
 * loop's counters in the Prometheus text format; anything else is 404. Keep-alive,
 * pipelining, HEAD, 100-continue and every limit are the server's defaults
 * (docs/http.md, docs/security.md). Runs N loops on N threads (nf_server,
 * SO_REUSEPORT; default 1), all served by one nf_http_server_t. With
 * --tls-cert/--tls-key every connection runs TLS (the TLS filter). Prints
 * "listening on HOST:PORT" once it accepts connections; on SIGINT or
 * SIGTERM it stops, frees everything and exits 0. */
#define _POSIX_C_SOURCE 200809L
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <netframe/http_server.h>
#include <netframe/netframe.h>

static const nf_http_header_t text_plain = {"Content-Type", 12, "text/plain", 10};

static void hello(nf_http_req_t *r) { nf_http_respond(r, 200, &text_plain, 1, "Hello, World!", 13); }

static void echo(nf_http_req_t *r) { nf_http_respond(r, 200, &text_plain, 1, r->body, r->body_len); }

static const nf_http_route_t routes[] = {
    {.method = "GET", .pattern = "/", .handler = hello},
    {.method = "POST", .pattern = "/echo", .handler = echo},
    {.method = "GET", .pattern = "/metrics", .handler = nf_http_metrics_handler},
};

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
    fprintf(stderr, "usage: http_server [--host ADDR] [--port N] [--backend uring|epoll] [--threads N]\n"
                    "                   [--tls-cert FILE --tls-key FILE]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    const char *host = "127.0.0.1", *backend = NULL, *tls_cert = NULL, *tls_key = NULL;
    int port = 8080, threads = 1;
    for (int i = 1; i < argc; i++) {
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
        else if (strcmp(argv[i], "--tls-cert") == 0)
            tls_cert = argv[++i];
        else if (strcmp(argv[i], "--tls-key") == 0)
            tls_key = argv[++i];
        else
            usage();
    }
    if (!tls_cert != !tls_key || threads < 1 || threads > 1024 || port < 0 || port > 65535)
        usage();

    nf_http_server_config_t hc;
    nf_http_server_config_init(&hc);
    hc.routes = routes;
    hc.nroutes = sizeof routes / sizeof routes[0];
    hc.server_name = "netframe";
    nf_http_server_t *http;
    int err = nf_http_server_new(&http, &hc);
    if (err) {
        fprintf(stderr, "http_server: %s\n", nf_strerror(err));
        return 1;
    }

    nf_server_config_t cfg;
    nf_server_config_init(&cfg);
    if (backend && strcmp(backend, "uring") == 0)
        cfg.loop.backend = NF_BACKEND_URING;
    else if (backend && strcmp(backend, "epoll") == 0)
        cfg.loop.backend = NF_BACKEND_EPOLL;
    else if (backend && strcmp(backend, "auto") != 0)
        usage();
    cfg.threads = (unsigned)threads;
    cfg.listen.host = host;
    cfg.listen.port = (uint16_t)port;
    nf_http_server_listen_config(http, &cfg.listen);

    nf_tls_ctx_t *tls = NULL;
    nf_filter_spec_t stack[1];
    if (tls_cert) {
        char why[256];
        nf_tls_config_t tc = {.server = 1, .cert_file = tls_cert, .key_file = tls_key};
        if (nf_tls_ctx_new(&tls, &tc, why, sizeof why)) {
            fprintf(stderr, "http_server: TLS: %s\n", why);
            nf_http_server_free(http);
            return 1;
        }
        stack[0] = (nf_filter_spec_t){.ops = &nf_tls_filter, .config = tls};
        cfg.listen.filters = stack;
        cfg.listen.nfilters = 1;
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
    err = nf_server_start(&server, &cfg);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (err) {
        fprintf(stderr, "http_server: listen on %s:%d: %s\n", host, port, nf_strerror(err));
        nf_http_server_free(http);
        nf_tls_ctx_free(tls);
        return 1;
    }
    nf_addr_t a;
    char name[64];
    nf_server_addr(server, &a);
    printf("listening on %s\n", nf_addr_format(&a, name, sizeof name));
    fflush(stdout);

    err = nf_server_wait(server);
    nf_http_server_stats_t st;
    nf_http_server_stats(http, &st);
    fprintf(stderr, "http_server: requests=%llu responses=%llu errors=%llu timeouts=%llu\n",
            (unsigned long long)st.requests, (unsigned long long)st.responses, (unsigned long long)st.errors_4xx_5xx,
            (unsigned long long)(st.timeouts_head + st.timeouts_body + st.timeouts_idle + st.timeouts_write));
    nf_server_free(server);
    nf_http_server_free(http);
    nf_tls_ctx_free(tls);
    return err >= 0 ? 0 : 1;
}
