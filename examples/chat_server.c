/* chat_server — a broadcast room on netframe's WebSocket server: the shape
 * of a game or pub/sub server, with its own web page.
 *
 *   chat_server [--host 127.0.0.1] [--port 8080] [--backend uring|epoll]
 *               [--deflate] [--stats-ms 1000] [--max-held-kb 256]
 *               [--tls-cert FILE --tls-key FILE]     (https:// and wss://)
 *
 *   GET /     the chat page (HTML + JS, no external resources)
 *   GET /ws   WebSocket: every text message a client sends is broadcast to
 *             every open client (the sender included) as
 *             {"type":"chat","from":ID,"text":"..."}
 *   other     404 (405 for methods other than GET/HEAD on /)
 *
 * Each client is told {"type":"hello","id":ID} on open; {"type":"join"} and
 * {"type":"leave"} go to everyone. Every --stats-ms the server pushes one
 * {"type":"stats",...} message to all: connections, messages and bytes in
 * and out (totals and per second), flow-control held/dropped writes, and
 * the loop's counters (one entry per loop in "loops").
 *
 * Slow clients: every connection has a flow-control filter (flow.h) with
 * policy DROP_OLDEST: up to 64 KiB wait in the kernel's send path, up to
 * --max-held-kb more are held in user space, and past that the OLDEST held
 * messages are discarded to make room. A browser that cannot keep up misses
 * old broadcasts but stays connected, and the server's memory per client is
 * bounded. Frames are never split (one held write is one whole frame), and
 * with --deflate the server compresses each message on its own
 * (server_no_context_takeover), so a dropped message never breaks the
 * client's inflater.
 *
 * Browsers' cross-site WebSocket requests are refused: an Origin header, when
 * present, must be http://HOST or https://HOST for the request's Host (403).
 *
 * Prints "listening on HOST:PORT backend=NAME", then "open http://...".
 * SIGINT/SIGTERM: stop accepting, close clients with 1001, exit 0 once they
 * are gone. */
#define _POSIX_C_SOURCE 200809L
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <netframe/flow.h>
#include <netframe/tls.h>
#include <netframe/ws.h>

#include "chat_page.h" /* generated from chat_page.html: chat_page[], chat_page_len */

#define MAX_TEXT 4096 /* longest chat line accepted (bytes) */

typedef struct client {
    nf_ws_conn_t *ws;
    unsigned id;
    size_t idx; /* in clients[] */
} client_t;

static client_t **clients;
static size_t nclients, cap_clients;
static unsigned next_id = 1;

static nf_loop_t *loop;
static nf_ws_server_t *server;
static nf_timer_t stats_timer, sig_timer;
static uint64_t stats_ms = 1000;
static int use_deflate;
static volatile sig_atomic_t stopping;

/* Counters. Held / dropped of closed connections are folded in at close. */
static struct {
    uint64_t msgs_in, msgs_out, sends_held, sends_failed;
    uint64_t closed_held, closed_dropped, closed_bytes_dropped;
    /* the previous stats tick, for the per-second rates */
    uint64_t t, msgs_in0, msgs_out0, bytes_in0, bytes_out0, iter0;
} st;

/* ---- sending -------------------------------------------------------------- */

static void send_to(client_t *c, const char *msg, size_t len)
{
    int rc = nf_ws_send(c->ws, NF_WS_OP_TEXT, msg, len);
    if (rc == NF_WRITE_OK || rc == NF_WRITE_HELD)
        st.msgs_out++;
    if (rc == NF_WRITE_HELD)
        st.sends_held++;
    else if (rc < 0)
        st.sends_failed++; /* closing, or out of memory */
}

static void broadcast(const char *msg, size_t len)
{
    /* Sends never close a connection from inside the call (drop-oldest
     * discards, it does not close), so clients[] is stable here. */
    for (size_t i = 0; i < nclients; i++)
        send_to(clients[i], msg, len);
}

/* JSON string body of s[0..n) (valid UTF-8, checked by the WebSocket layer)
 * into out; returns the length written. out needs 6 * n bytes. */
static size_t json_escape(char *out, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '"' || ch == '\\') {
            out[o++] = '\\';
            out[o++] = (char)ch;
        } else if (ch < 0x20 || ch == 0x7f) {
            out[o++] = '\\';
            out[o++] = 'u';
            out[o++] = '0';
            out[o++] = '0';
            out[o++] = hex[ch >> 4];
            out[o++] = hex[ch & 15];
        } else if (ch == '<') { /* harmless in JSON; keeps "</script>" inert if ever inlined */
            memcpy(out + o, "\\u003c", 6);
            o += 6;
        } else {
            out[o++] = (char)ch;
        }
    }
    return o;
}

/* ---- WebSocket handler ------------------------------------------------------ */

static void on_open(nf_ws_conn_t *ws)
{
    client_t *c = malloc(sizeof *c);
    if (c && nclients == cap_clients) {
        size_t ncap = cap_clients ? cap_clients * 2 : 64;
        client_t **p = realloc(clients, ncap * sizeof *p);
        if (p) {
            clients = p;
            cap_clients = ncap;
        }
    }
    if (!c || nclients == cap_clients) {
        free(c);
        nf_ws_close(ws, NF_WS_CLOSE_INTERNAL, "out of memory", 13);
        return;
    }
    c->ws = ws;
    c->id = next_id++;
    c->idx = nclients;
    clients[nclients++] = c;
    nf_ws_conn_set_data(ws, c);
    char msg[64];
    int n = snprintf(msg, sizeof msg, "{\"type\":\"hello\",\"id\":%u}", c->id);
    send_to(c, msg, (size_t)n);
    n = snprintf(msg, sizeof msg, "{\"type\":\"join\",\"id\":%u}", c->id);
    broadcast(msg, (size_t)n);
}

static void on_message(nf_ws_conn_t *ws, unsigned opcode, const char *data, size_t len)
{
    client_t *c = nf_ws_conn_get_data(ws);
    if (!c)
        return;
    if (opcode != NF_WS_OP_TEXT) {
        nf_ws_close(ws, NF_WS_CLOSE_UNSUPPORTED, "text only", 9);
        return;
    }
    st.msgs_in++;
    static char out[64 + 6 * MAX_TEXT];
    int n = snprintf(out, 64, "{\"type\":\"chat\",\"from\":%u,\"text\":\"", c->id);
    size_t o = (size_t)n + json_escape(out + n, data, len);
    out[o++] = '"';
    out[o++] = '}';
    broadcast(out, o);
}

static void on_close(nf_ws_conn_t *ws, unsigned code, const char *reason, size_t reason_len)
{
    (void)code, (void)reason, (void)reason_len;
    client_t *c = nf_ws_conn_get_data(ws);
    if (!c)
        return;
    nf_flow_stats_t fs;
    if (nf_flow_stats(nf_ws_conn_tcp(ws), &fs) == 0) {
        st.closed_held += fs.writes_held;
        st.closed_dropped += fs.writes_dropped;
        st.closed_bytes_dropped += fs.bytes_dropped;
    }
    clients[c->idx] = clients[--nclients];
    clients[c->idx]->idx = c->idx;
    nf_ws_conn_set_data(ws, NULL);
    unsigned id = c->id;
    free(c);
    if (stopping)
        return; /* everyone is being closed */
    char msg[64];
    int n = snprintf(msg, sizeof msg, "{\"type\":\"leave\",\"id\":%u}", id);
    broadcast(msg, (size_t)n);
}

static const nf_ws_handler_t chat = {.on_open = on_open, .on_message = on_message, .on_close = on_close};
static const nf_ws_route_t routes[] = {{.path = "/ws", .handler = &chat}};

/* ---- HTTP: the page ------------------------------------------------------------ */

static int is(const char *s, size_t n, const char *lit) { return n == strlen(lit) && memcmp(s, lit, n) == 0; }

static void on_http(nf_ws_server_t *s, nf_ws_request_t *req)
{
    (void)s;
    static const nf_http_header_t html[] = {
        {"Content-Type", 12, "text/html; charset=utf-8", 24},
        {"Cache-Control", 13, "no-store", 8},
        {"X-Content-Type-Options", 22, "nosniff", 7},
    };
    static const nf_http_header_t text[] = {{"Content-Type", 12, "text/plain; charset=utf-8", 25}};
    static const nf_http_header_t allow[] = {{"Content-Type", 12, "text/plain; charset=utf-8", 25},
                                             {"Allow", 5, "GET, HEAD", 9}};
    if (!is(req->target, req->path_len, "/") && !is(req->target, req->path_len, "/index.html")) {
        static const char nf[] = "not found\n";
        nf_ws_http_respond(req, 404, text, 1, nf, sizeof nf - 1);
        return;
    }
    if (!is(req->method, req->method_len, "GET") && !is(req->method, req->method_len, "HEAD")) {
        static const char na[] = "method not allowed\n";
        nf_ws_http_respond(req, 405, allow, 2, na, sizeof na - 1);
        return;
    }
    nf_ws_http_respond(req, 200, html, 3, chat_page, chat_page_len);
}

/* An Origin, when present, must name the host the request was sent to. */
static int check_origin(nf_ws_server_t *s, const nf_ws_request_t *req)
{
    (void)s;
    if (!req->origin)
        return 0; /* not a browser */
    const char *host = NULL;
    size_t hlen = 0;
    for (size_t i = 0; i < req->num_headers; i++)
        if (req->headers[i].name_len == 4 && strncasecmp(req->headers[i].name, "host", 4) == 0) {
            host = req->headers[i].value;
            hlen = req->headers[i].value_len;
        }
    if (!host)
        return 403;
    const char *o = req->origin;
    size_t olen = req->origin_len;
    for (int i = 0; i < 2; i++) {
        const char *scheme = i ? "https://" : "http://";
        size_t sl = strlen(scheme);
        if (olen == sl + hlen && strncasecmp(o, scheme, sl) == 0 && strncasecmp(o + sl, host, hlen) == 0)
            return 0;
    }
    return 403;
}

/* ---- statistics ------------------------------------------------------------------- */

static void on_stats(nf_timer_t *t)
{
    (void)t;
    nf_loop_stats_t ls;
    nf_loop_stats(loop, &ls);
    uint64_t now = nf_loop_now(loop);
    double dt = (double)(now - st.t) / 1000.0;
    if (dt <= 0)
        dt = 1e-3;
    uint64_t held = st.closed_held, dropped = st.closed_dropped, bdropped = st.closed_bytes_dropped;
    for (size_t i = 0; i < nclients; i++) {
        nf_flow_stats_t fs;
        if (nf_flow_stats(nf_ws_conn_tcp(clients[i]->ws), &fs) == 0) {
            held += fs.writes_held;
            dropped += fs.writes_dropped;
            bdropped += fs.bytes_dropped;
        }
    }
    char msg[1536];
    int n = snprintf(
        msg, sizeof msg,
        "{\"type\":\"stats\",\"uptime_ms\":%llu,\"connections\":%zu,"
        "\"msgs_in\":%llu,\"msgs_out\":%llu,\"msgs_in_per_s\":%.1f,\"msgs_out_per_s\":%.1f,"
        "\"bytes_in\":%llu,\"bytes_out\":%llu,\"bytes_in_per_s\":%.0f,\"bytes_out_per_s\":%.0f,"
        "\"writes_held\":%llu,\"writes_dropped\":%llu,\"bytes_dropped\":%llu,"
        "\"held_bytes\":%llu,\"held_bytes_hwm\":%llu,\"closed_slow\":%llu,\"send_errors\":%llu,"
        "\"policy\":\"drop-oldest\",\"deflate\":%s,"
        "\"loops\":[{\"backend\":\"%s\",\"conns_open\":%llu,\"conns_accepted\":%llu,"
        "\"iterations\":%llu,\"iterations_per_s\":%.0f,\"reads\":%llu,\"writes\":%llu,"
        "\"bufs_in_use\":%llu,\"bufs_starved\":%llu,\"timers\":%llu}]}",
        (unsigned long long)now, nclients, (unsigned long long)st.msgs_in, (unsigned long long)st.msgs_out,
        (double)(st.msgs_in - st.msgs_in0) / dt, (double)(st.msgs_out - st.msgs_out0) / dt,
        (unsigned long long)ls.bytes_in, (unsigned long long)ls.bytes_out, (double)(ls.bytes_in - st.bytes_in0) / dt,
        (double)(ls.bytes_out - st.bytes_out0) / dt, (unsigned long long)held, (unsigned long long)dropped,
        (unsigned long long)bdropped, (unsigned long long)ls.flow_bytes_held, (unsigned long long)ls.flow_held_hwm,
        (unsigned long long)ls.conns_closed_slow, (unsigned long long)st.sends_failed, use_deflate ? "true" : "false",
        nf_loop_backend_name(loop), (unsigned long long)ls.conns_open, (unsigned long long)ls.conns_accepted,
        (unsigned long long)ls.iterations, (double)(ls.iterations - st.iter0) / dt, (unsigned long long)ls.reads,
        (unsigned long long)ls.writes, (unsigned long long)ls.bufs_in_use, (unsigned long long)ls.bufs_starved,
        (unsigned long long)ls.timers_active);
    st.t = now;
    st.msgs_in0 = st.msgs_in;
    st.msgs_out0 = st.msgs_out;
    st.bytes_in0 = ls.bytes_in;
    st.bytes_out0 = ls.bytes_out;
    st.iter0 = ls.iterations;
    if (n > 0 && (size_t)n < sizeof msg)
        broadcast(msg, (size_t)n);
}

/* ---- main ------------------------------------------------------------------------- */

static void handle_signal(int sig) { (void)sig, stopping = 1; }

static void on_server_closed(nf_ws_server_t *s)
{
    (void)s;
    free(clients);
    clients = NULL;
}

static void on_sigpoll(nf_timer_t *t)
{
    if (!stopping)
        return;
    nf_timer_stop(t);
    nf_timer_stop(&stats_timer);
    nf_ws_server_close(server, NF_WS_CLOSE_GOING_AWAY, on_server_closed);
}

static void usage(void)
{
    fprintf(stderr, "usage: chat_server [--host ADDR] [--port N] [--backend uring|epoll] [--deflate]\n"
                    "                   [--stats-ms MS] [--max-held-kb KB] [--tls-cert FILE --tls-key FILE]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    const char *host = "127.0.0.1", *backend = NULL, *tls_cert = NULL, *tls_key = NULL;
    int port = 8080;
    long max_held_kb = 256;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--deflate") == 0) {
            use_deflate = 1;
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
        else if (strcmp(argv[i], "--stats-ms") == 0)
            stats_ms = strtoull(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--max-held-kb") == 0)
            max_held_kb = atol(argv[++i]);
        else if (strcmp(argv[i], "--tls-cert") == 0)
            tls_cert = argv[++i];
        else if (strcmp(argv[i], "--tls-key") == 0)
            tls_key = argv[++i];
        else
            usage();
    }
    if (port < 0 || port > 65535 || stats_ms == 0 || max_held_kb <= 0 || !tls_cert != !tls_key)
        usage();
    nf_loop_config_t lcfg;
    nf_loop_config_init(&lcfg);
    if (backend && strcmp(backend, "uring") == 0)
        lcfg.backend = NF_BACKEND_URING;
    else if (backend && strcmp(backend, "epoll") == 0)
        lcfg.backend = NF_BACKEND_EPOLL;
    else if (backend && strcmp(backend, "auto") != 0)
        usage();

    int err = nf_loop_new(&loop, &lcfg);
    if (err) {
        fprintf(stderr, "chat_server: loop: %s\n", nf_strerror(err));
        return 1;
    }

    /* Flow control per connection: see the comment at the top. */
    static nf_flow_config_t flow;
    flow = (nf_flow_config_t){
        .max_inflight_bytes = 64 * 1024,
        .max_held_bytes = (size_t)max_held_kb * 1024,
        .policy = NF_FLOW_DROP_OLDEST,
    };
    /* With a certificate: https and wss:// on the same port. TLS goes below
     * the flow filter here: drop-oldest discards whole WebSocket frames
     * before they are encrypted (dropping a TLS record would break the
     * stream), and held bytes are counted as plaintext. */
    nf_tls_ctx_t *tls = NULL;
    if (tls_cert) {
        char why[256];
        nf_tls_config_t tc = {.server = 1, .cert_file = tls_cert, .key_file = tls_key};
        if (nf_tls_ctx_new(&tls, &tc, why, sizeof why) != 0) {
            fprintf(stderr, "chat_server: TLS: %s\n", why);
            nf_loop_free(loop);
            return 1;
        }
    }
    nf_filter_spec_t filters[2] = {{&nf_flow_filter, &flow}};
    if (tls) {
        filters[0] = (nf_filter_spec_t){&nf_tls_filter, tls};
        filters[1] = (nf_filter_spec_t){&nf_flow_filter, &flow};
    }
    nf_ws_server_config_t cfg = {
        .listen = {.host = host, .port = (uint16_t)port, .filters = filters, .nfilters = tls ? 2 : 1},
        .routes = routes,
        .nroutes = 1,
        .on_http = on_http,
        .check_origin = check_origin,
        .opts =
            {
                .deflate = use_deflate,
                .pmd = {.server_no_context_takeover = 1},
                .max_message = MAX_TEXT,
                .max_frame = MAX_TEXT,
                .ping_interval_ms = 30000,
                .idle_timeout_ms = 120000,
            },
    };
    err = nf_ws_listen(loop, &cfg, &server);
    if (err) {
        fprintf(stderr, "chat_server: listen on %s:%d: %s\n", host, port, nf_strerror(err));
        nf_loop_free(loop);
        nf_tls_ctx_free(tls);
        return 1;
    }
    struct sigaction sa = {.sa_handler = handle_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    nf_timer_init(loop, &sig_timer);
    nf_timer_start(&sig_timer, on_sigpoll, 50, 50);
    nf_timer_init(loop, &stats_timer);
    nf_timer_start(&stats_timer, on_stats, stats_ms, stats_ms);
    st.t = nf_loop_now(loop);

    nf_addr_t a;
    char name[64];
    nf_ws_server_addr(server, &a);
    nf_addr_format(&a, name, sizeof(name));
    printf("listening on %s backend=%s\n", name, nf_loop_backend_name(loop));
    printf("open %s://%s/ in a browser (WebSocket on /ws%s); Ctrl-C stops\n", tls ? "https" : "http", name,
           use_deflate ? ", permessage-deflate" : "");
    fflush(stdout);

    err = nf_loop_run(loop, NF_RUN_DEFAULT);
    if (err < 0)
        fprintf(stderr, "chat_server: loop: %s\n", nf_strerror(err));
    free(clients);
    int freed = nf_loop_free(loop);
    nf_tls_ctx_free(tls); /* after every connection that used it */
    return freed == 0 && err >= 0 ? 0 : 1;
}
