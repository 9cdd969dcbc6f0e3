/* ws_client — a WebSocket client on netframe.
 *
 *   ws_client [--deflate] [--binary] [--wait MS] [--protocol NAME]
 *             [--origin URL] [--backend uring|epoll] [--ca FILE] [--insecure]
 *             ws[s]://HOST:PORT/PATH [MESSAGE...]
 *
 * Connects, sends each MESSAGE (or, with none, each line of standard input,
 * read to its end first) as a text message (binary with --binary), prints
 * every message that comes back (text as is, binary as "[binary N bytes]"),
 * and once as many replies as messages arrived (or after --wait ms, default
 * 5000) closes with 1000. Exit status 0 when the close handshake completed
 * normally and every message got a reply, else 1.
 *
 * wss:// runs over TLS (tls.h): the server is verified against the system
 * CA store, or --ca FILE, with the URL's host as the name; --insecure skips
 * verification (self-signed test servers only). */
#define _POSIX_C_SOURCE 200809L
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <netframe/ws.h>
#include <netframe/tls.h>

static char **msgs;
static size_t nmsgs, received;
static unsigned opcode = NF_WS_OP_TEXT;
static unsigned long wait_ms = 5000;
static nf_timer_t waiter;
static int close_code = -1, ok_close;

static void finish(nf_ws_conn_t *ws)
{
    nf_timer_stop(&waiter);
    nf_ws_close(ws, NF_WS_CLOSE_NORMAL, "bye", 3);
}

static void on_wait(nf_timer_t *t) { finish(t->data); }

static void on_open(nf_ws_conn_t *ws)
{
    fprintf(stderr, "connected%s%s%s\n", nf_ws_conn_deflate(ws) ? " (permessage-deflate)" : "",
            nf_ws_conn_subprotocol(ws) ? " subprotocol=" : "",
            nf_ws_conn_subprotocol(ws) ? nf_ws_conn_subprotocol(ws) : "");
    for (size_t i = 0; i < nmsgs; i++) {
        int rc = nf_ws_send(ws, opcode, msgs[i], strlen(msgs[i]));
        if (rc < 0)
            fprintf(stderr, "send: %s\n", nf_strerror(rc));
    }
    if (received >= nmsgs) {
        finish(ws);
        return;
    }
    waiter.data = ws;
    nf_timer_start(&waiter, on_wait, wait_ms, 0);
}

static void on_message(nf_ws_conn_t *ws, unsigned op, const char *data, size_t len)
{
    if (op == NF_WS_OP_TEXT)
        printf("%.*s\n", (int)len, data);
    else
        printf("[binary %zu bytes]\n", len);
    fflush(stdout);
    if (++received == nmsgs)
        finish(ws);
}

static void on_close(nf_ws_conn_t *ws, unsigned code, const char *reason, size_t reason_len)
{
    nf_timer_stop(&waiter);
    close_code = (int)code;
    ok_close = code == NF_WS_CLOSE_NORMAL && nf_ws_conn_error(ws) == 0;
    fprintf(stderr, "closed %u%s%.*s", code, reason_len ? " " : "", (int)reason_len, reason);
    if (nf_ws_conn_error(ws))
        fprintf(stderr, " (%s)", nf_strerror(nf_ws_conn_error(ws)));
    const char *tls_err = nf_tls_conn_error(nf_ws_conn_tcp(ws));
    if (tls_err)
        fprintf(stderr, " (TLS: %s)", tls_err);
    if (nf_ws_conn_http_status(ws) && nf_ws_conn_http_status(ws) != 101)
        fprintf(stderr, " (HTTP %d)", nf_ws_conn_http_status(ws));
    fprintf(stderr, "\n");
}

static void usage(void)
{
    fprintf(
        stderr,
        "usage: ws_client [--deflate] [--binary] [--wait MS] [--protocol NAME] [--origin URL] [--version 13|8|7|76]\n"
        "                 [--backend uring|epoll] [--ca FILE] [--insecure] ws[s]://HOST:PORT/PATH [MESSAGE...]\n");
    exit(2);
}

static void read_stdin(void)
{
    size_t cap = 0;
    char *line = NULL;
    size_t lcap = 0;
    ssize_t n;
    while ((n = getline(&line, &lcap, stdin)) >= 0) {
        if (n > 0 && line[n - 1] == '\n')
            line[--n] = 0;
        if (nmsgs == cap) {
            cap = cap ? cap * 2 : 16;
            msgs = realloc(msgs, cap * sizeof *msgs);
            if (!msgs)
                exit(1);
        }
        msgs[nmsgs++] = strdup(line);
    }
    free(line);
}

int main(int argc, char **argv)
{
    const char *url = NULL, *backend = NULL, *origin = NULL;
    const char *protos[2] = {NULL, NULL};
    const char *ca = NULL;
    int deflate = 0, i = 1, from_stdin = 0, insecure = 0, version = 13;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "--deflate") == 0)
            deflate = 1;
        else if (strcmp(argv[i], "--binary") == 0)
            opcode = NF_WS_OP_BINARY;
        else if (i + 1 < argc && strcmp(argv[i], "--wait") == 0)
            wait_ms = strtoul(argv[++i], NULL, 10);
        else if (i + 1 < argc && strcmp(argv[i], "--protocol") == 0)
            protos[0] = argv[++i];
        else if (i + 1 < argc && strcmp(argv[i], "--origin") == 0)
            origin = argv[++i];
        else if (i + 1 < argc && strcmp(argv[i], "--version") == 0) /* 13, 8, 7 or 76 (Hixie-76) */
            version = atoi(argv[++i]);
        else if (i + 1 < argc && strcmp(argv[i], "--backend") == 0)
            backend = argv[++i];
        else if (i + 1 < argc && strcmp(argv[i], "--ca") == 0)
            ca = argv[++i];
        else if (strcmp(argv[i], "--insecure") == 0)
            insecure = 1;
        else
            usage();
    }
    if (i >= argc)
        usage();
    url = argv[i++];
    if (i < argc) {
        msgs = argv + i;
        nmsgs = (size_t)(argc - i);
    } else {
        read_stdin();
        from_stdin = 1;
    }
    signal(SIGPIPE, SIG_IGN);

    nf_loop_config_t lcfg;
    nf_loop_config_init(&lcfg);
    if (backend && strcmp(backend, "uring") == 0)
        lcfg.backend = NF_BACKEND_URING;
    else if (backend && strcmp(backend, "epoll") == 0)
        lcfg.backend = NF_BACKEND_EPOLL;
    nf_loop_t *loop;
    int err = nf_loop_new(&loop, &lcfg);
    if (err) {
        fprintf(stderr, "ws_client: loop: %s\n", nf_strerror(err));
        return 1;
    }
    nf_timer_init(loop, &waiter);
    static const nf_ws_handler_t h = {.on_open = on_open, .on_message = on_message, .on_close = on_close};
    nf_ws_client_config_t cfg = {
        .connect = {.timeout_ms = 10000},
        .handler = &h,
        .subprotocols = protos[0] ? protos : NULL,
        .origin = origin,
        .version = version,
        .opts = {.deflate = deflate, .max_message = 64u << 20, .max_frame = 64u << 20},
    };
    nf_tls_ctx_t *tls = NULL;
    if (strncasecmp(url, "wss://", 6) == 0) {
        char why[256];
        nf_tls_config_t tc = {.ca_file = ca, .insecure = insecure};
        if (nf_tls_ctx_new(&tls, &tc, why, sizeof why) != 0) {
            fprintf(stderr, "ws_client: TLS: %s\n", why);
            nf_loop_free(loop);
            return 1;
        }
        cfg.tls = tls;
    }
    err = nf_ws_connect(loop, url, &cfg, NULL);
    if (err) {
        fprintf(stderr, "ws_client: %s: %s\n", url, nf_strerror(err));
        nf_loop_free(loop);
        nf_tls_ctx_free(tls);
        return 1;
    }
    err = nf_loop_run(loop, NF_RUN_DEFAULT);
    nf_loop_free(loop);
    nf_tls_ctx_free(tls);
    if (from_stdin) {
        for (size_t k = 0; k < nmsgs; k++)
            free(msgs[k]);
        free(msgs);
    }
    return err >= 0 && ok_close && received >= nmsgs ? 0 : 1;
}
