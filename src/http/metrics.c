/* netframe — the HTTP server's counters and its loop's in the Prometheus
 * text exposition format (version 0.0.4), and a handler that serves them. */
#include <stdarg.h>
#include "base/export.h"
#include <stdio.h>
#include <string.h>

#include "netframe/http_server.h"

typedef struct {
    char *out;
    size_t cap, len;
    int over;
} mw_t;

static void mw(mw_t *w, const char *fmt, ...)
{
    if (w->over)
        return;
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(w->out + w->len, w->cap - w->len, fmt, ap);
    va_end(ap);
    if (k < 0 || (size_t)k >= w->cap - w->len) {
        w->over = 1;
        return;
    }
    w->len += (size_t)k;
}

static void metric(mw_t *w, const char *name, const char *type, const char *help, uint64_t v)
{
    mw(w, "# HELP %s %s\n# TYPE %s %s\n%s %llu\n", name, help, name, type, name, (unsigned long long)v);
}

NF__EXPORT int nf_http_metrics_format(const nf_http_server_t *s, const nf_loop_t *loop, char *out, size_t cap)
{
    mw_t w = {out, cap, 0, 0};
    if (!cap)
        return NF_EHTTP_NOSPACE;
    out[0] = 0;
    if (s) {
        nf_http_server_stats_t st;
        nf_http_server_stats(s, &st);
        metric(&w, "netframe_http_connections", "gauge", "HTTP connections open.", st.conns_open);
        metric(&w, "netframe_http_requests_total", "counter", "HTTP request heads read.", st.requests);
        metric(&w, "netframe_http_responses_total", "counter", "HTTP responses finished.", st.responses);
        metric(&w, "netframe_http_errors_total", "counter", "Answers the server made for bad input or timeouts.",
               st.errors_4xx_5xx);
        mw(&w, "# HELP netframe_http_timeouts_total Connections timed out, by what they waited for.\n"
               "# TYPE netframe_http_timeouts_total counter\n");
        mw(&w, "netframe_http_timeouts_total{phase=\"head\"} %llu\n", (unsigned long long)st.timeouts_head);
        mw(&w, "netframe_http_timeouts_total{phase=\"body\"} %llu\n", (unsigned long long)st.timeouts_body);
        mw(&w, "netframe_http_timeouts_total{phase=\"idle\"} %llu\n", (unsigned long long)st.timeouts_idle);
        mw(&w, "netframe_http_timeouts_total{phase=\"write\"} %llu\n", (unsigned long long)st.timeouts_write);
        metric(&w, "netframe_http_upgrades_total", "counter", "Connections handed to an upgrade route.", st.upgrades);
    }
    if (loop) {
        nf_loop_stats_t ls;
        nf_loop_stats(loop, &ls);
        metric(&w, "netframe_loop_connections", "gauge", "Connections alive on this loop.", ls.conns_open);
        metric(&w, "netframe_loop_accepted_total", "counter", "Connections accepted by this loop.", ls.conns_accepted);
        metric(&w, "netframe_loop_closed_total", "counter", "Connections closed on this loop.", ls.conns_closed);
        metric(&w, "netframe_loop_refused_total", "counter", "Connections refused by a listener limit.",
               ls.conns_refused);
        metric(&w, "netframe_loop_received_bytes_total", "counter", "Bytes read on this loop.", ls.bytes_in);
        metric(&w, "netframe_loop_sent_bytes_total", "counter", "Bytes sent on this loop.", ls.bytes_out);
        metric(&w, "netframe_loop_read_buffers_in_use", "gauge", "Read buffers held now.", ls.bufs_in_use);
        metric(&w, "netframe_loop_timers", "gauge", "Timers armed now.", ls.timers_active);
        metric(&w, "netframe_loop_iterations_total", "counter", "Loop iterations.", ls.iterations);
        metric(&w, "netframe_flow_held_bytes", "gauge", "Bytes held by flow-control filters now.", ls.flow_bytes_held);
        metric(&w, "netframe_flow_dropped_writes_total", "counter", "Writes dropped by flow-control policy.",
               ls.flow_writes_dropped);
        metric(&w, "netframe_closed_slow_total", "counter", "Connections closed as slow consumers.",
               ls.conns_closed_slow);
    }
    if (w.over)
        return NF_EHTTP_NOSPACE;
    return (int)w.len;
}

NF__EXPORT void nf_http_metrics_handler(nf_http_req_t *r)
{
    char buf[8192];
    int n = nf_http_metrics_format(r->server, r->conn ? nf_conn_loop(r->conn) : NULL, buf, sizeof buf);
    static const nf_http_header_t ct = {"Content-Type", 12, "text/plain; version=0.0.4; charset=utf-8", 40};
    if (n < 0)
        nf_http_respond(r, 500, NULL, 0, NULL, 0);
    else
        nf_http_respond(r, 200, &ct, 1, buf, (size_t)n);
}
