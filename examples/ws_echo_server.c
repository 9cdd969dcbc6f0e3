/* ws_echo_server — a WebSocket echo server on netframe.
 *
 *   ws_echo_server [--host 127.0.0.1] [--port 9001] [--deflate]
 *                  [--backend uring|epoll] [--tls-cert FILE --tls-key FILE]
 *                  [--read-buffer BYTES]
 *
 * Echoes every message back with its opcode (text stays text, binary stays
 * binary), on any path. A plain HTTP request gets a one-line page. Prints
 * "listening on HOST:PORT backend=NAME" once it accepts connections (port 0
 * picks a free one). On SIGINT or SIGTERM it stops accepting, closes every
 * connection with 1001 (going away), waits for the close handshakes (at most
 * the close timeout), frees everything and exits 0. With --tls-cert and
 * --tls-key it serves wss:// (the TLS filter under the WebSocket filter).
 * --read-buffer sets the size of the loop's read buffers (default 16 KiB): a
 * frame that fits in one is echoed without being copied together first
 * (bench/ws.sh uses 64 KiB). */
#define _POSIX_C_SOURCE 200809L
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <netframe/ws.h>
#include <netframe/tls.h>

static void on_message(nf_ws_conn_t *ws, unsigned opcode, const char *data, size_t len)
{
    nf_ws_send(ws, opcode, data, len);
}

static void on_close(nf_ws_conn_t *ws, unsigned code, const char *reason, size_t reason_len)
{
    (void)ws, (void)code, (void)reason, (void)reason_len;
}

static const nf_ws_handler_t echo = {.on_message = on_message, .on_close = on_close};
static const nf_ws_route_t routes[] = {{.path = "*", .handler = &echo}};

static void on_http(nf_ws_server_t *s, nf_ws_request_t *req)
{
    static const char page[] = "ws_echo_server: connect with WebSocket\n";
    static const nf_http_header_t ct[] = {{"Content-Type", 12, "text/plain; charset=utf-8", 25}};
    (void)s;
    nf_ws_http_respond(req, 200, ct, 1, page, sizeof page - 1);
}

static volatile sig_atomic_t stopping;
static nf_ws_server_t *server;

static void on_signal(nf_timer_t *t)
{
    /* Polled from a timer so the example uses only the public API. */
    if (!stopping)
        return;
    nf_timer_stop(t);
    nf_ws_server_close(server, NF_WS_CLOSE_GOING_AWAY, NULL);
}

static void handle_signal(int sig) { (void)sig, stopping = 1; }

static void usage(void)
{
    fprintf(stderr, "usage: ws_echo_server [--host ADDR] [--port N] [--deflate] [--legacy] [--backend uring|epoll]\n"
                    "                      [--tls-cert FILE --tls-key FILE] [--read-buffer BYTES]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    const char *host = "127.0.0.1", *backend = NULL, *tls_cert = NULL, *tls_key = NULL;
    int port = 9001, deflate = 0, legacy = 0;
    unsigned read_buffer = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--deflate") == 0) {
            deflate = 1;
            continue;
        }
        if (strcmp(argv[i], "--legacy") == 0) { /* HyBi-07/08 and Hixie-76 too */
            legacy = 1;
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
        else if (strcmp(argv[i], "--tls-cert") == 0)
            tls_cert = argv[++i];
        else if (strcmp(argv[i], "--tls-key") == 0)
            tls_key = argv[++i];
        else if (strcmp(argv[i], "--read-buffer") == 0)
            read_buffer = (unsigned)strtoul(argv[++i], NULL, 10);
        else
            usage();
    }
    if (!tls_cert != !tls_key)
        usage();
    nf_loop_config_t lcfg;
    nf_loop_config_init(&lcfg);
    lcfg.buf_size = read_buffer;
    if (backend && strcmp(backend, "uring") == 0)
        lcfg.backend = NF_BACKEND_URING;
    else if (backend && strcmp(backend, "epoll") == 0)
        lcfg.backend = NF_BACKEND_EPOLL;
    else if (backend && strcmp(backend, "auto") != 0)
        usage();

    nf_loop_t *loop;
    int err = nf_loop_new(&loop, &lcfg);
    if (err) {
        fprintf(stderr, "ws_echo_server: loop: %s\n", nf_strerror(err));
        return 1;
    }
    nf_ws_server_config_t cfg = {
        .listen = {.host = host, .port = (uint16_t)port},
        .routes = routes,
        .nroutes = 1,
        .on_http = on_http,
        .opts = {.deflate = deflate, .max_message = 64u << 20, .max_frame = 64u << 20},
        .legacy_hybi = legacy,
        .legacy_hixie76 = legacy,
    };
    nf_tls_ctx_t *tls = NULL;
    nf_filter_spec_t tls_spec[1];
    if (tls_cert) {
        char why[256];
        nf_tls_config_t tc = {.server = 1, .cert_file = tls_cert, .key_file = tls_key};
        if (nf_tls_ctx_new(&tls, &tc, why, sizeof why) != 0) {
            fprintf(stderr, "ws_echo_server: TLS: %s\n", why);
            nf_loop_free(loop);
            return 1;
        }
        tls_spec[0] = (nf_filter_spec_t){&nf_tls_filter, tls};
        cfg.listen.filters = tls_spec;
        cfg.listen.nfilters = 1;
        fprintf(stderr, "ws_echo_server: wss:// (TLS 1.2-1.3, cert %s)\n", tls_cert);
    }
    err = nf_ws_listen(loop, &cfg, &server);
    if (err) {
        fprintf(stderr, "ws_echo_server: listen on %s:%d: %s\n", host, port, nf_strerror(err));
        nf_loop_free(loop);
        nf_tls_ctx_free(tls);
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
    nf_ws_server_addr(server, &a);
    printf("listening on %s backend=%s\n", nf_addr_format(&a, name, sizeof(name)), nf_loop_backend_name(loop));
    fflush(stdout);

    err = nf_loop_run(loop, NF_RUN_DEFAULT);
    if (err < 0)
        fprintf(stderr, "ws_echo_server: loop: %s\n", nf_strerror(err));
    int freed = nf_loop_free(loop);
    nf_tls_ctx_free(tls);
    return freed == 0 && err >= 0 ? 0 : 1;
}
