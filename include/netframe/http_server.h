/* netframe — an HTTP/1.1 server on the request stream reader (http.h).
 *
 * Routes by method and path ("/rooms/:id", and a trailing wildcard: "/static/" then "*"), tried in the order
 * of the route array; keep-alive by default, HTTP/1.0 with and without
 * keep-alive, pipelining (responses leave in request order whatever order
 * the handlers finish in), Connection: close, Expect: 100-continue, HEAD
 * (same headers, no body), a Date header formatted once per second, an
 * optional Server header. Responses in one call, or streamed (with a length
 * or chunked) with flow control; a handler may finish its response later
 * (asynchronous). Request bodies whole (up to max_body) or streamed with
 * backpressure. Every limit has a default and an answer (docs/security.md).
 *
 * One nf_http_server_t holds the routes, limits and counters; it may serve
 * listeners on several loops (nf_server threads: see
 * nf_http_server_listen_config). Each connection belongs to one loop, and
 * every call on a request is made on that loop's thread. */
#ifndef NETFRAME_HTTP_SERVER_H
#define NETFRAME_HTTP_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "http.h"
#include "tcp.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct nf_http_server nf_http_server_t;
typedef struct nf_http_req nf_http_req_t;
typedef struct nf_http_route nf_http_route_t;

/* A handler: called once per request, with the whole body (a buffered
 * route) or at the head (NF_HTTP_ROUTE_STREAM_BODY). It must finish the
 * response exactly once, now or later: nf_http_respond, or
 * nf_http_response_start ... nf_http_response_end. After that call r is
 * gone. */
typedef void (*nf_http_handler_fn)(nf_http_req_t *r);

/* Callbacks a handler may set on its request (nf_http_req_set_ops). */
typedef struct nf_http_req_ops {
    /* NF_HTTP_ROUTE_STREAM_BODY: a piece of the decoded body, valid during
     * the call. nf_http_req_pause stops the pieces (the connection stops
     * reading) until nf_http_req_resume. */
    void (*on_body)(nf_http_req_t *r, const char *data, size_t len);
    /* NF_HTTP_ROUTE_STREAM_BODY: the body is complete (trailers set). */
    void (*on_body_end)(nf_http_req_t *r);
    /* A streamed response that got NF_HTTP_WAIT may write again. */
    void (*on_drain)(nf_http_req_t *r);
    /* The connection is gone before the response was finished: reason as
     * on_close, or the request's body failed (its NF_EHTTP_* error, or
     * -ETIMEDOUT for the body deadline). The handler must still
     * finish r; the response calls then return NF_ECLOSED and free it. */
    void (*on_abort)(nf_http_req_t *r, int reason);
} nf_http_req_ops_t;

/* A path parameter: ":id" of the pattern, or "*" for the trailing
 * wildcard; value is a view into the request's path (not decoded). */
typedef struct nf_http_param {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
} nf_http_param_t;

#define NF_HTTP_MAX_PARAMS 8

/* One request. The members are read-only except data. The views (method,
 * path, headers...) are valid until the response is finished; body and
 * trailers as said below. */
struct nf_http_req {
    const char *method;
    size_t method_len;
    const char *path; /* the request-target up to '?', not decoded */
    size_t path_len;
    const char *query; /* after '?', or NULL */
    size_t query_len;
    int minor_version; /* 0 or 1 */
    const nf_http_header_t *headers;
    size_t num_headers;
    /* A buffered route: the whole body (NULL and 0 if none), valid until
     * the response is finished. */
    const char *body;
    size_t body_len;
    /* Trailer fields of a chunked body: during the handler call (buffered)
     * or on_body_end (streamed) only. */
    const nf_http_header_t *trailers;
    size_t num_trailers;
    nf_http_param_t params[NF_HTTP_MAX_PARAMS];
    unsigned num_params;
    const nf_http_route_t *route; /* NULL: the default handler */
    nf_http_server_t *server;
    nf_conn_t *conn; /* NULL once the connection is gone */
    void *data;      /* the program's */
};

/* Taking over a connection for another protocol (a WebSocket upgrade): an
 * upper layer registers a route with these ops. When a request matching the
 * route asks for an upgrade (Connection: upgrade and an Upgrade field) and
 * no earlier response is pending, the server calls take() from inside its
 * read, with the bytes that followed the head. take() returns 0 once it owns
 * the connection (it has set the connection's handler and data with
 * nf_conn_set_handler / nf_conn_set_data and written its answer, 101); the
 * server then forgets the connection and r. A negative return: the server
 * answers 400 and closes. A request on the route that is not an upgrade
 * goes to the route's handler (426 if it has none). */
typedef struct nf_http_upgrade_ops {
    size_t size; /* sizeof(nf_http_upgrade_ops_t) */
    int (*take)(void *arg, nf_http_req_t *r, nf_conn_t *c, const char *rest, size_t rest_len);
} nf_http_upgrade_ops_t;

enum {
    /* Call the handler at the head and deliver the body through
     * nf_http_req_ops_t.on_body (with backpressure) instead of buffering
     * it. */
    NF_HTTP_ROUTE_STREAM_BODY = 1u << 0,
};

struct nf_http_route {
    const char *method;  /* "GET", "POST"...; NULL: any. A GET route answers HEAD too */
    const char *pattern; /* "/", "/rooms/:id"; a final "*" after a '/' matches the rest */
    nf_http_handler_fn handler;
    unsigned flags;                       /* NF_HTTP_ROUTE_* */
    uint64_t max_body;                    /* 0: the server's max_body (buffered) or max_stream_body (streamed) */
    const nf_http_upgrade_ops_t *upgrade; /* optional (above) */
    void *upgrade_arg;
    void *data; /* the route's, for the handler (r->route->data) */
};

typedef struct nf_http_server_config {
    /* Tried in this order; the first whose method and pattern match wins.
     * A path some route matches with another method: 405 with Allow. None:
     * default_handler, or 404. The array must outlive the server. */
    const nf_http_route_t *routes;
    size_t nroutes;
    nf_http_handler_fn default_handler;
    const char *server_name; /* the Server header's value; NULL: none */
    /* Head and body limits (nf_http_reader_config_t; zero: the defaults:
     * line 8 KiB (414), field 8 KiB, head 64 KiB, 64 fields (431), body
     * 1 MiB (413), trailers 8 KiB (431), chunk line 1 KiB (400)). */
    nf_http_reader_config_t limits;
    uint64_t max_stream_body;  /* a streamed body (0: 64 MiB; NF_HTTP_UNLIMITED: none): 413 */
    unsigned max_pipeline;     /* requests read ahead of their responses (0: 16); then reading pauses */
    uint64_t head_timeout_ms;  /* first byte of a head to its end (0: 10 s): 408, close */
    uint64_t body_timeout_ms;  /* end of the head to the end of the body (0: 60 s): 408, close */
    uint64_t idle_timeout_ms;  /* keep-alive: no request for this long (0: 30 s): close */
    uint64_t write_timeout_ms; /* responses queued and not all sent for this long (0: 30 s): close */
    size_t stream_high_water;  /* a streamed write returns NF_HTTP_WAIT past this many queued bytes (0: 256 KiB) */
    void *data;                /* the server's user pointer */
} nf_http_server_config_t;

/* Counters, summed over every loop the server runs on. */
typedef struct nf_http_server_stats {
    uint64_t conns_open;
    uint64_t requests;       /* heads read */
    uint64_t responses;      /* responses finished (errors included) */
    uint64_t errors_4xx_5xx; /* answers the server made for bad input (400, 408, 413, 414, 431, 501, 505) */
    uint64_t timeouts_head;  /* 408 */
    uint64_t timeouts_body;  /* 408 */
    uint64_t timeouts_idle;  /* keep-alive closes */
    uint64_t timeouts_write; /* a peer that did not read its responses */
    uint64_t upgrades;       /* connections taken over by an upgrade route */
} nf_http_server_stats_t;

/* Fills *cfg with the defaults (zeros: every limit at its default). */
void nf_http_server_config_init(nf_http_server_config_t *cfg);

/* Makes a server (routes, limits, counters) with no listener yet. Returns 0
 * and *out, -EINVAL (a bad pattern, a route with neither handler nor
 * upgrade) or -ENOMEM. */
int nf_http_server_new(nf_http_server_t **out, const nf_http_server_config_t *cfg);

/* Frees the server. Only once no connection or listener uses it. */
void nf_http_server_free(nf_http_server_t *s);

/* Listens on `loop` with the address, filters (TLS, PROXY) and limits of
 * `lcfg` (its handler and data are replaced). Returns as nf_listen. The
 * listener is the caller's to close (nf_listener_close). */
int nf_http_listen(nf_loop_t *loop, nf_http_server_t *s, const nf_listen_config_t *lcfg, nf_listener_t **out);

/* Sets the handler and data of a listen config so that its connections are
 * served by s: for nf_server (server.h), in either spread. */
void nf_http_server_listen_config(nf_http_server_t *s, nf_listen_config_t *lcfg);

/* Copies the counters into *out. */
void nf_http_server_stats(const nf_http_server_t *s, nf_http_server_stats_t *out);

/* The config's data pointer. */
void *nf_http_server_get_data(const nf_http_server_t *s);

/* ---- on a request (its loop's thread only) ---------------------------- */

/* Results of the streamed writes: */
#define NF_HTTP_WRITE_OK 0
#define NF_HTTP_WAIT     1 /* taken; wait for on_drain before writing more */

/* The whole response in one call: status (reason: nf_http_reason), the
 * program's headers (not Content-Length, Transfer-Encoding, Date, Server,
 * Connection: the server writes those), and the body (copied). A HEAD
 * request gets the same headers and no body; 1xx, 204 and 304 no body and no
 * Content-Length. Finishes r. Returns 0, NF_ECLOSED (the connection is gone;
 * r is freed anyway) or NF_EHTTP_INVALID (a bad header; nothing was sent, r
 * stays). */
int nf_http_respond(nf_http_req_t *r, int status, const nf_http_header_t *headers, size_t n, const void *body,
                    size_t len);

/* Starts a streamed response: with Content-Length `length`, or chunked
 * when length is -1 (HTTP/1.0: delimited by closing the connection). Returns
 * 0, NF_ECLOSED or NF_EHTTP_INVALID. */
int nf_http_response_start(nf_http_req_t *r, int status, const nf_http_header_t *headers, size_t n, int64_t length);

/* Writes body bytes (copied) of a started response: NF_HTTP_WRITE_OK, or
 * NF_HTTP_WAIT once the connection's queue (or, while earlier responses are
 * pending, this response's own buffer) holds more than stream_high_water
 * (the bytes are taken; write more after on_drain), NF_ECLOSED, or
 * NF_EHTTP_INVALID (more bytes than the length said). */
int nf_http_response_write(nf_http_req_t *r, const void *data, size_t len);

/* Finishes a started response (the last chunk of a chunked one). Fewer
 * bytes than the length said: the connection closes after it (the framing
 * is broken). Returns 0 or NF_ECLOSED; r is gone in both cases. */
int nf_http_response_end(nf_http_req_t *r);

/* Sets the request's callbacks (ops must outlive the request). */
void nf_http_req_set_ops(nf_http_req_t *r, const nf_http_req_ops_t *ops);

/* A streamed body: stop delivering on_body (the connection stops reading;
 * the peer's window closes) / start again. Return 0 or NF_ECLOSED. */
int nf_http_req_pause(nf_http_req_t *r);
int nf_http_req_resume(nf_http_req_t *r);

/* The value of path parameter `name` (":id" is "id", the wildcard "*"),
 * its length in *len; NULL if the route has no such parameter. */
const char *nf_http_req_param(const nf_http_req_t *r, const char *name, size_t *len);

/* ---- metrics (Prometheus text exposition format 0.0.4) ----------------- */

/* Writes the server's counters (s, may be NULL) and those of `loop` (may be
 * NULL: connections, bytes, buffers, timers, flow control) as Prometheus
 * text into out[0..cap), NUL-terminated. Returns the length (without the
 * NUL) or NF_EHTTP_NOSPACE. */
int nf_http_metrics_format(const nf_http_server_t *s, const nf_loop_t *loop, char *out, size_t cap);

/* A handler to put in a route ({"GET", "/metrics", nf_http_metrics_handler}):
 * answers nf_http_metrics_format for the request's server and the loop
 * that serves the connection (with nf_server threads, each scrape sees one
 * loop's counters; the server's are summed over all). */
void nf_http_metrics_handler(nf_http_req_t *r);

#ifdef __cplusplus
}
#endif
#endif
