/* soak_server — the server side of the soak test (tests/soak/README.md).
 *
 * One loop (backend from NF_BACKEND) serving at once:
 *   - a TCP echo listener under flow control (slow readers are closed with
 *     NF_ESLOW past 256 KiB held) and an idle timeout (4 s);
 *   - a WebSocket echo server on /echo (handshake timeout 1 s, frames up to
 *     64 KiB, messages up to 256 KiB, idle timeout 5 s), under flow control
 *     too; GET /stats answers with its counters as "name value" lines
 *     (after malloc_trim, so the driver's RSS readings mean something);
 *   - with --tls-cert F --tls-key F, a TLS echo listener: the same echo
 *     under {flow, TLS (handshake timeout 1 s), idle timeout}.
 * Prints "ports echo=N ws=N tls=N" on stdout once all listen (port 0: chosen
 * by the kernel; tls=0 without a certificate). On SIGTERM it closes the listeners and every connection,
 * frees everything and exits 0: under ASan, a leak fails the run. */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <netframe/netframe.h>
#include <netframe/tls.h>
#include <netframe/ws.h>

static struct {
    uint64_t echo_opened, echo_eof, echo_reset, echo_slow, echo_timeout, echo_local, echo_other;
    uint64_t ws_opened, ws_msgs, ws_code[16]; /* closes by code - 1000, [15]: other */
    uint64_t http_requests;
    uint64_t tls_opened, tls_clean, tls_failed, tls_timeout, tls_reset, tls_slow, tls_other;
} st;

static nf_loop_t *loop;
static nf_listener_t *echo_l;
static nf_ws_server_t *ws_srv;
static volatile sig_atomic_t stop_requested;

/* ---- TCP echo --------------------------------------------------------------- */

static void echo_open(nf_conn_t *c)
{
    (void)c;
    st.echo_opened++;
}

static void echo_read(nf_conn_t *c, const char *data, size_t len) { (void)nf_conn_write(c, data, len); }

static void echo_close(nf_conn_t *c, int reason)
{
    (void)c;
    if (reason == NF_EOF)
        st.echo_eof++;
    else if (reason == -ECONNRESET || reason == -EPIPE)
        st.echo_reset++;
    else if (reason == NF_ESLOW)
        st.echo_slow++;
    else if (reason == -ETIMEDOUT)
        st.echo_timeout++;
    else if (reason == NF_CLOSE_LOCAL)
        st.echo_local++;
    else
        st.echo_other++;
}

static const nf_conn_handler_t echo_handler = {.on_open = echo_open, .on_read = echo_read, .on_close = echo_close};

/* ---- TLS echo (on_open comes after the handshake) ------------------------------- */

static void tls_open(nf_conn_t *c)
{
    (void)c;
    st.tls_opened++;
}

static void tls_close(nf_conn_t *c, int reason)
{
    (void)c;
    if (reason == NF_EOF || reason == NF_CLOSE_LOCAL)
        st.tls_clean++;
    else if (reason == NF_ETLS)
        st.tls_failed++;
    else if (reason == -ETIMEDOUT)
        st.tls_timeout++;
    else if (reason == -ECONNRESET || reason == -EPIPE)
        st.tls_reset++;
    else if (reason == NF_ESLOW)
        st.tls_slow++;
    else
        st.tls_other++;
}

static const nf_conn_handler_t tls_handler = {.on_open = tls_open, .on_read = echo_read, .on_close = tls_close};

/* ---- WebSocket echo ------------------------------------------------------------ */

static void ws_open(nf_ws_conn_t *ws)
{
    (void)ws;
    st.ws_opened++;
}

static void ws_message(nf_ws_conn_t *ws, unsigned opcode, const char *data, size_t len)
{
    st.ws_msgs++;
    (void)nf_ws_send(ws, opcode, data, len);
}

static void ws_close(nf_ws_conn_t *ws, unsigned code, const char *reason, size_t reason_len)
{
    (void)ws, (void)reason, (void)reason_len;
    st.ws_code[code >= 1000 && code < 1015 ? code - 1000 : 15]++;
}

static const nf_ws_handler_t ws_handler = {.on_open = ws_open, .on_message = ws_message, .on_close = ws_close};
static const nf_ws_route_t routes[] = {{.path = "/echo", .handler = &ws_handler}};

static long rss_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "VmRSS:", 6) == 0)
            v = strtol(line + 6, NULL, 10);
    if (f)
        fclose(f);
    return v;
}

static void on_http(nf_ws_server_t *s, nf_ws_request_t *req)
{
    (void)s;
    st.http_requests++;
    if (req->path_len != 6 || memcmp(req->target, "/stats", 6) != 0)
        return; /* 404 */
    malloc_trim(0);
    nf_loop_stats_t ls;
    nf_loop_stats(loop, &ls);
    char body[2048];
    int n = snprintf(
        body, sizeof body,
        "conns_open %llu\nconns_accepted %llu\nconns_closed %llu\nconns_closed_slow %llu\n"
        "accept_errors %llu\nbufs_in_use %llu\nflow_bytes_held %llu\nrss_kib %ld\n"
        "echo_opened %llu\necho_eof %llu\necho_reset %llu\necho_slow %llu\necho_timeout %llu\n"
        "echo_local %llu\necho_other %llu\nws_opened %llu\nws_msgs %llu\nws_conns %u\n"
        "tls_opened %llu\ntls_clean %llu\ntls_failed %llu\ntls_timeout %llu\ntls_reset %llu\n"
        "tls_slow %llu\ntls_other %llu\n",
        (unsigned long long)ls.conns_open, (unsigned long long)ls.conns_accepted, (unsigned long long)ls.conns_closed,
        (unsigned long long)ls.conns_closed_slow, (unsigned long long)ls.accept_errors,
        (unsigned long long)ls.bufs_in_use, (unsigned long long)ls.flow_bytes_held, rss_kib(),
        (unsigned long long)st.echo_opened, (unsigned long long)st.echo_eof, (unsigned long long)st.echo_reset,
        (unsigned long long)st.echo_slow, (unsigned long long)st.echo_timeout, (unsigned long long)st.echo_local,
        (unsigned long long)st.echo_other, (unsigned long long)st.ws_opened, (unsigned long long)st.ws_msgs,
        nf_ws_server_conns(ws_srv), (unsigned long long)st.tls_opened, (unsigned long long)st.tls_clean,
        (unsigned long long)st.tls_failed, (unsigned long long)st.tls_timeout, (unsigned long long)st.tls_reset,
        (unsigned long long)st.tls_slow, (unsigned long long)st.tls_other);
    for (int i = 0; i < 16 && n > 0 && (size_t)n < sizeof body; i++)
        n += snprintf(body + n, sizeof body - (size_t)n, "ws_close_%d %llu\n", i < 15 ? 1000 + i : 0,
                      (unsigned long long)st.ws_code[i]);
    static const nf_http_header_t ct[] = {{"Content-Type", 12, "text/plain", 10}};
    nf_ws_http_respond(req, 200, ct, 1, body, (size_t)n);
}

/* ---- lifecycle --------------------------------------------------------------------- */

static void on_signal(int sig) { (void)sig, stop_requested = 1; }

static void shut_done(nf_loop_t *l, unsigned forced, void *arg)
{
    (void)l, (void)arg;
    fprintf(stderr, "soak_server: stopped (%u connections closed at the deadline)\n", forced);
}

static void poll_stop(nf_timer_t *t)
{
    if (!stop_requested)
        return;
    nf_timer_stop(t);
    nf_ws_server_close(ws_srv, NF_WS_CLOSE_GOING_AWAY, NULL);
    nf_loop_shutdown(loop, 2000, shut_done, NULL);
}

int main(int argc, char **argv)
{
    const char *cert = NULL, *key = NULL;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--tls-cert") == 0)
            cert = argv[i + 1];
        else if (strcmp(argv[i], "--tls-key") == 0)
            key = argv[i + 1];
    }
    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    if (nf_loop_new(&loop, NULL) != 0)
        return 1;

    static nf_flow_config_t flow = {
        .max_inflight_bytes = 128 * 1024, .max_held_bytes = 256 * 1024, .policy = NF_FLOW_CLOSE};
    static nf_timeout_config_t idle = {.timeout_ms = 4000};
    static nf_filter_spec_t echo_stack[2];
    echo_stack[0] = (nf_filter_spec_t){.ops = &nf_flow_filter, .config = &flow};
    echo_stack[1] = (nf_filter_spec_t){.ops = &nf_idle_timeout_filter, .config = &idle};
    nf_listen_config_t lc;
    memset(&lc, 0, sizeof lc);
    lc.host = "127.0.0.1";
    lc.handler = &echo_handler;
    lc.filters = echo_stack;
    lc.nfilters = 2;
    lc.backlog = 4096;
    if (nf_listen(loop, &lc, &echo_l) != 0)
        return 1;

    static nf_filter_spec_t ws_stack[1];
    ws_stack[0] = (nf_filter_spec_t){.ops = &nf_flow_filter, .config = &flow};
    nf_ws_server_config_t wc;
    memset(&wc, 0, sizeof wc);
    wc.listen.host = "127.0.0.1";
    wc.listen.backlog = 4096;
    wc.listen.filters = ws_stack;
    wc.listen.nfilters = 1;
    wc.routes = routes;
    wc.nroutes = 1;
    wc.on_http = on_http;
    wc.opts.handshake_timeout_ms = 1000;
    wc.opts.close_timeout_ms = 1000;
    wc.opts.idle_timeout_ms = 5000;
    wc.opts.max_frame = 64 * 1024;
    wc.opts.max_message = 256 * 1024;
    if (nf_ws_listen(loop, &wc, &ws_srv) != 0)
        return 1;

    nf_tls_ctx_t *tls = NULL;
    nf_listener_t *tls_l = NULL;
    if (cert && key) {
        char why[256];
        nf_tls_config_t tc = {.server = 1, .cert_file = cert, .key_file = key, .handshake_timeout_ms = 1000};
        if (nf_tls_ctx_new(&tls, &tc, why, sizeof why) != 0) {
            fprintf(stderr, "soak_server: TLS: %s\n", why);
            return 1;
        }
        static nf_filter_spec_t tls_stack[3];
        tls_stack[0] = (nf_filter_spec_t){.ops = &nf_flow_filter, .config = &flow};
        tls_stack[1] = (nf_filter_spec_t){.ops = &nf_tls_filter, .config = tls};
        tls_stack[2] = (nf_filter_spec_t){.ops = &nf_idle_timeout_filter, .config = &idle};
        nf_listen_config_t tl = lc;
        tl.handler = &tls_handler;
        tl.filters = tls_stack;
        tl.nfilters = 3;
        if (nf_listen(loop, &tl, &tls_l) != 0)
            return 1;
    }

    nf_addr_t ea, wa, ta;
    nf_listener_addr(echo_l, &ea);
    nf_ws_server_addr(ws_srv, &wa);
    if (tls_l)
        nf_listener_addr(tls_l, &ta);
    printf("ports echo=%u ws=%u tls=%u\n", nf_addr_port(&ea), nf_addr_port(&wa), tls_l ? nf_addr_port(&ta) : 0);
    fflush(stdout);

    nf_timer_t stop_timer;
    nf_timer_init(loop, &stop_timer);
    nf_timer_start(&stop_timer, poll_stop, 50, 50);
    nf_loop_run(loop, NF_RUN_DEFAULT);
    nf_timer_stop(&stop_timer);
    int rc = nf_loop_free(loop);
    nf_tls_ctx_free(tls);
    if (rc != 0) {
        fprintf(stderr, "soak_server: nf_loop_free = %d\n", rc);
        return 1;
    }
    return 0;
}
