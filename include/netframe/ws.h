/* netframe — WebSocket server and client (RFC 6455, HyBi-07/08) over
 * netframe's TCP connections.
 *
 * The WebSocket layer is a connection filter (filter.h): the top filter of a
 * TCP connection's stack. Below it go whatever filters the program lists in
 * the listen / connect config (flow control, timeouts, later TLS): received
 * bytes reach it after them, and frames it writes pass through them, so
 * nf_ws_send reports what flow control did (NF_WRITE_OK / HELD / DROPPED).
 *
 *     nf_ws_handler_t (on_open, on_message, on_close ...)   the program
 *     websocket filter: handshake, codec (ws_codec.h), keep-alive, close
 *     filters[n-1] ... filters[0]   (e.g. nf_flow_filter)
 *     transport (nf_conn_t)
 *
 * Server: nf_ws_listen() makes a TCP listener; each request is parsed
 * (http.h), routed by path, checked (version, key, Origin), answered with 101
 * and the connection becomes an nf_ws_conn_t. Requests that are not upgrades
 * reach on_http, which may answer with nf_ws_http_respond (else 404).
 * Client: nf_ws_connect(loop, "ws://host:port/path", ...).
 *
 * Every nf_ws_conn_t the program has seen in on_open (server) or got from
 * nf_ws_connect (client) ends with exactly one on_close(ws, code, reason);
 * after it returns the object is gone. Callbacks get the object first; every
 * object carries a user pointer. Loop thread only, like everything else. */
#ifndef NETFRAME_WS_H
#define NETFRAME_WS_H

#include <stddef.h>
#include <stdint.h>

#include "netframe.h"
#include "http.h"
#include "ws_codec.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The opening handshake failed (client: bad status, Accept, extension or
 * subprotocol answer; see nf_ws_conn_http_status). Next to NF_EWS_*. */
/* NF_EWS_HANDSHAKE (-5208) is in error.h with every other code. */

typedef struct nf_ws_conn nf_ws_conn_t;
typedef struct nf_ws_server nf_ws_server_t;

/* What the program is told. `on_close` is required; the rest optional. */
typedef struct nf_ws_handler {
    /* The handshake completed: messages may be sent. */
    void (*on_open)(nf_ws_conn_t *ws);
    /* A whole message (fragments joined, inflated, text checked as UTF-8).
     * opcode is NF_WS_OP_TEXT or NF_WS_OP_BINARY; data is valid during the
     * call only. */
    void (*on_message)(nf_ws_conn_t *ws, unsigned opcode, const char *data, size_t len);
    /* Streaming instead (used when on_message is NULL): the pieces of each
     * message as they arrive, already unmasked, inflated and UTF-8 checked up
     * to there; fin is 1 on the last piece (which may be empty). A message
     * found invalid later is ended by on_close, not by fin. */
    void (*on_fragment)(nf_ws_conn_t *ws, unsigned opcode, const char *data, size_t len, int fin);
    /* A ping arrived (the pong is sent automatically) / a pong arrived. */
    void (*on_ping)(nf_ws_conn_t *ws, const char *data, size_t len);
    void (*on_pong)(nf_ws_conn_t *ws, const char *data, size_t len);
    /* Writes held by a flow-control filter below have drained (see flow.h). */
    void (*on_drain)(nf_ws_conn_t *ws);
    /* Exactly once. code: the peer's close code after a close handshake
     * (1005 when its close frame had none), the code we sent when we failed
     * the connection (1002, 1007, 1009, 1001 idle timeout...), or 1006 when
     * the TCP connection ended without a close frame. nf_ws_conn_error(ws)
     * says why on our side. reason is valid during the call only. */
    void (*on_close)(nf_ws_conn_t *ws, unsigned code, const char *reason, size_t reason_len);
} nf_ws_handler_t;

/* Settings shared by servers and clients. Zero members take the default. */
typedef struct nf_ws_options {
    uint64_t max_frame;            /* largest frame payload; 0: 16 MiB (1009 beyond) */
    uint64_t max_message;          /* largest message after inflation; 0: 16 MiB */
    size_t max_header;             /* handshake head; 0: 16 KiB (server: 431 beyond) */
    size_t fragment_size;          /* outgoing messages are cut into frames of at
                                      most this payload; 0: one frame */
    uint64_t handshake_timeout_ms; /* 0: 10 s */
    uint64_t close_timeout_ms;     /* close handshake and lingering; 0: 5 s */
    uint64_t ping_interval_ms;     /* ping when nothing was received for this
                                      long; 0: never */
    uint64_t idle_timeout_ms;      /* nothing received for this long: close 1001
                                      with error -ETIMEDOUT; 0: never */
    int deflate;                   /* 1: permessage-deflate (offer / accept) */
    nf_ws_pmd_config_t pmd;        /* its parameters (ws_codec.h) */
    int reject_nonminimal;         /* 1: a length in a longer form than needed is 1002 */
} nf_ws_options_t;

/* ---- server ----------------------------------------------------------- */

/* One path served by WebSocket. */
typedef struct nf_ws_route {
    const char *path;                /* exact match on the path (the target up
                                        to '?'); "*" or NULL: any path */
    const nf_ws_handler_t *handler;  /* required */
    const char *const *subprotocols; /* NULL-terminated, our preference
                                        order; NULL: no subprotocol */
    void *data;                      /* the route's pointer (nf_ws_conn_route) */
} nf_ws_route_t;

/* A parsed request, as seen by the server's hooks. Valid during the call
 * only; strings are not NUL-terminated. */
typedef struct nf_ws_request {
    nf_ws_server_t *server;
    nf_conn_t *tcp; /* the TCP connection (addresses) */
    const char *method;
    size_t method_len;
    const char *target; /* as sent: path?query */
    size_t target_len;
    size_t path_len; /* target[0..path_len) is the path */
    const nf_http_header_t *headers;
    size_t num_headers;
    const char *origin; /* Origin (Sec-WebSocket-Origin for
                           versions 7/8), NULL when absent */
    size_t origin_len;
    int version;                /* Sec-WebSocket-Version; 0: not an upgrade */
    const nf_ws_route_t *route; /* upgrade: the route matched */
    /* upgrade: the answer, which on_upgrade may change */
    const char *subprotocol;               /* chosen (from route->subprotocols) or NULL */
    const nf_http_header_t *extra_headers; /* added to this 101 answer; must live
                                          until on_upgrade returns */
    size_t num_extra;
    void *conn_data; /* becomes the connection's user pointer */
    /* private */
    nf_ws_conn_t *ws_;
    int responded_;
} nf_ws_request_t;

typedef struct nf_ws_server_config {
    /* host, port, backlog, reuseport, max_conns, on_limit, nodelay,
     * keepalive_s, the write-queue limits (write_high_water...: an echo
     * whose peer never reads stops reading, a broadcast to it fails past
     * the ceiling) and filters (the stack below the WebSocket filter, e.g.
     * nf_flow_filter) are used; handler and data are ignored. */
    nf_listen_config_t listen;
    const nf_ws_route_t *routes; /* required: tried in order */
    unsigned nroutes;
    const nf_http_header_t *headers; /* added to every 101 answer */
    size_t nheaders;
    /* Optional. 0 accepts; an HTTP status (403...) refuses the upgrade. */
    int (*check_origin)(nf_ws_server_t *s, const nf_ws_request_t *req);
    /* Optional, after routing, Origin, subprotocol and extension checks:
     * may change req->subprotocol, extra_headers, conn_data. 0 accepts; an
     * HTTP status refuses. Once it accepted, on_open and on_close follow. */
    int (*on_upgrade)(nf_ws_server_t *s, nf_ws_request_t *req);
    /* Optional: a request that is not a WebSocket upgrade. Answer with
     * nf_ws_http_respond from inside the call; without an answer: 404. */
    void (*on_http)(nf_ws_server_t *s, nf_ws_request_t *req);
    nf_ws_options_t opts;
    int legacy_hybi;    /* 1: also accept versions 8 and 7 (HyBi
                           drafts: same framing) */
    int legacy_hixie76; /* 1: also accept Hixie-76 (draft-hixie-
                           thewebsocketprotocol-76): Key1/Key2 challenge,
                           0x00 text 0xFF frames; text only, no ping, no
                           close codes. Off by default: without it such a
                           request gets 426. */
    void *data;         /* the server's pointer */
} nf_ws_server_config_t;

/* Listens for WebSocket (and small HTTP) requests. Everything cfg points to
 * (routes, handlers, strings, filter specs) must stay valid until the
 * server's close callback has run; cfg itself is copied. Returns 0 and sets
 * *out, or -EINVAL (no routes, a route without handler/on_close), -ENOMEM, or
 * nf_listen's errors; nothing to close then. */
int nf_ws_listen(nf_loop_t *loop, const nf_ws_server_config_t *cfg, nf_ws_server_t **out);

/* Stops accepting. With code != 0 every open WebSocket connection of the
 * server is sent a close frame with that code (1001: going away) and
 * connections still in their handshake are closed; with 0 they are left
 * alone. cb (may be NULL) runs from the loop once the listener is closed and
 * every connection of the server has closed; then the server is freed. */
void nf_ws_server_close(nf_ws_server_t *s, unsigned code, void (*cb)(nf_ws_server_t *s));

/* The bound address (with the kernel's port when port 0 was asked). */
int nf_ws_server_addr(const nf_ws_server_t *s, nf_addr_t *out);
/* Connections of this server not yet closed (handshaking ones included). */
unsigned nf_ws_server_conns(const nf_ws_server_t *s);
nf_loop_t *nf_ws_server_loop(const nf_ws_server_t *s);
void *nf_ws_server_get_data(const nf_ws_server_t *s);
void nf_ws_server_set_data(nf_ws_server_t *s, void *data);

/* From on_http only: answers the request with `status`, the headers (names
 * and values checked, no CR/LF), Content-Length and Connection: close, then
 * body[0..len) (not sent for HEAD), and ends the connection. Returns
 * NF_WRITE_OK / HELD / DROPPED, -EALREADY (answered already), NF_EHTTP_INVALID
 * (bad status or header), -ENOMEM, NF_ECLOSED. */
int nf_ws_http_respond(nf_ws_request_t *req, int status, const nf_http_header_t *headers, size_t n, const void *body,
                       size_t len);

/* ---- client ----------------------------------------------------------- */

typedef struct nf_ws_client_config {
    /* timeout_ms (connect), nodelay, keepalive_s, the write-queue limits
     * and filters are used; host and port come from the URL; handler and
     * data are ignored. */
    nf_connect_config_t connect;
    const nf_ws_handler_t *handler;  /* required */
    void *data;                      /* the connection's user pointer */
    const char *const *subprotocols; /* offered, NULL-terminated, or NULL */
    const char *origin;              /* Origin header, or NULL */
    const nf_http_header_t *headers; /* added to the request */
    size_t nheaders;
    int version; /* 13 (0 means 13), 8 or 7 (HyBi drafts: Sec-WebSocket-
                    Origin instead of Origin), or 76 (Hixie-76: Key1/Key2/
                    key3 challenge, text frames only) */
    nf_ws_options_t opts;
    /* wss:// URLs: the TLS client context (tls.h; required for wss://). Its
     * filter goes right under the WebSocket filter, above `filters`; the
     * URL's host is the server name sent and verified. */
    struct nf_tls_ctx *tls;
} nf_ws_client_config_t;

/* Connects to url ("ws://host[:port][/path[?query]]", IPv6 as [::1]; port
 * 80 by default) and runs the opening handshake: Sec-WebSocket-Key from
 * getrandom(2), the answer's Accept, subprotocol and extensions checked.
 * Everything cfg points to must stay valid until on_close. Returns 0 and sets
 * *out (may be NULL): on_open follows on success, on_close(ws, 1006, ...) on
 * failure (nf_ws_conn_error: -ECONNREFUSED, -ETIMEDOUT, NF_EWS_HANDSHAKE...),
 * never from inside this call. Returns -EINVAL (bad URL or config, or
 * wss:// without cfg->tls) or -ENOMEM: no callback then. "wss://..." runs
 * over TLS with cfg->tls (port 443 by default); a TLS failure closes with
 * 1006, nf_ws_conn_error NF_ETLS (nf_tls_conn_error on nf_ws_conn_tcp says
 * why). */
int nf_ws_connect(nf_loop_t *loop, const char *url, const nf_ws_client_config_t *cfg, nf_ws_conn_t **out);

/* ---- connections ------------------------------------------------------ */

/* Sends one message (NF_WS_OP_TEXT, NF_WS_OP_BINARY), compressed when
 * permessage-deflate was agreed and it is long enough, cut into frames of
 * opts.fragment_size. Text must be UTF-8 (not checked: the peer will).
 * The bytes are copied. Returns NF_WRITE_OK, NF_WRITE_HELD, NF_WRITE_DROPPED
 * (from a flow-control filter below), -ENOTCONN (handshake not done),
 * NF_ECLOSED (closing), -EINVAL (bad opcode), -ENOMEM, NF_EWQFULL (the
 * TCP connection's write queue would pass its ceiling, tcp.h: the
 * connection is closing, on_close gets 1006 and nf_ws_conn_error
 * NF_EWQFULL). */
int nf_ws_send(nf_ws_conn_t *ws, unsigned opcode, const void *data, size_t len);

/* Sends one frame of a message the program streams out: the first call gives
 * the opcode (TEXT or BINARY), later ones NF_WS_OP_CONT; fin = 1 ends the
 * message. Never compressed. Must not be interleaved with nf_ws_send while a
 * message is open. Returns as nf_ws_send, and -EINVAL for an opcode out of
 * sequence. */
int nf_ws_send_fragment(nf_ws_conn_t *ws, unsigned opcode, const void *data, size_t len, int fin);

/* Sends a ping (len <= 125). Returns as nf_ws_send. */
int nf_ws_ping(nf_ws_conn_t *ws, const void *data, size_t len);

/* Starts the close handshake: sends a close frame (code 0: no code; else a
 * valid close code, reason up to 123 bytes of UTF-8), then waits up to
 * close_timeout_ms for the peer's close frame; no message is delivered after
 * this. on_close follows. Returns 0, -EINVAL (bad code or reason),
 * NF_ECLOSED (already closing), or a write error. Before the handshake is
 * done it closes the TCP connection. */
int nf_ws_close(nf_ws_conn_t *ws, unsigned code, const char *reason, size_t reason_len);

/* Closes the TCP connection at once, no close frame (on_close: 1006). */
void nf_ws_abort(nf_ws_conn_t *ws);

/* 0 after a clean close handshake (or while open); else why the connection
 * ended: NF_EWS_PROTOCOL / UTF8 / TOOBIG / INFLATE (the peer broke a rule),
 * NF_EWS_HANDSHAKE, -ETIMEDOUT (handshake, idle or close timeout), or the
 * TCP reason when it ended without a close frame (NF_EOF, -ECONNRESET,
 * -ECONNREFUSED...). */
int nf_ws_conn_error(const nf_ws_conn_t *ws);
/* The HTTP status of the handshake answer (101 when it succeeded), 0 before. */
int nf_ws_conn_http_status(const nf_ws_conn_t *ws);

void *nf_ws_conn_get_data(const nf_ws_conn_t *ws);
void nf_ws_conn_set_data(nf_ws_conn_t *ws, void *data);
/* The TCP connection below (addresses, nf_flow_stats...). Its data pointer
 * belongs to the WebSocket layer: do not change it, nor write to it. */
nf_conn_t *nf_ws_conn_tcp(const nf_ws_conn_t *ws);
nf_loop_t *nf_ws_conn_loop(const nf_ws_conn_t *ws);
/* The server that accepted ws, or NULL for a client connection. */
nf_ws_server_t *nf_ws_conn_server(const nf_ws_conn_t *ws);
/* Server: the route that matched, NULL for a client connection. */
const nf_ws_route_t *nf_ws_conn_route(const nf_ws_conn_t *ws);
/* The request target (path?query), NUL-terminated, or "" before the
 * handshake. */
const char *nf_ws_conn_path(const nf_ws_conn_t *ws);
/* The agreed subprotocol, NUL-terminated, or NULL. */
const char *nf_ws_conn_subprotocol(const nf_ws_conn_t *ws);
/* 1 when permessage-deflate was agreed. */
int nf_ws_conn_deflate(const nf_ws_conn_t *ws);
/* The protocol version spoken: 13, 8, 7 or 76 (Hixie-76). */
int nf_ws_conn_version(const nf_ws_conn_t *ws);
/* 1 while open (handshake done, no close frame sent or received). */
int nf_ws_conn_is_open(const nf_ws_conn_t *ws);

/* The filter ops of the WebSocket layer, to find it on a connection
 * (nf_conn_filter). It is set up by nf_ws_listen / nf_ws_connect: do not
 * list it in a stack by hand. */
extern const nf_filter_ops_t nf_ws_filter;

/* ---- for layers above: shared frames, one attachment ------------------- */

/* Sends one frame the caller encoded already (an unmasked RFC 6455 frame:
 * header and payload in b->base[0 .. b->len)), without a copy: the pub/sub
 * hub frames a message once and hands the same buffer to every subscriber.
 * Takes over the caller's reference to b in every case. Server connections
 * of versions 13, 8 and 7 only (a client must mask each frame; Hixie-76
 * frames differ). Returns as nf_ws_send: NF_WRITE_OK / HELD / DROPPED,
 * -ENOTCONN, NF_ECLOSED, -EINVAL (a client or Hixie-76 connection, or a
 * fragmented message of nf_ws_send_fragment is open), NF_EWQFULL. */
int nf_ws_send_buf(nf_ws_conn_t *ws, nf_buf_t *b);

/* One attachment per connection for a layer above (the pub/sub hub): a
 * struct that begins with nf_ws_attach_t, whose ops' on_close runs when the
 * connection closes, before the handler's on_close, and is then detached.
 * The WebSocket layer knows nothing else of it. */
typedef struct nf_ws_attach nf_ws_attach_t;
typedef struct nf_ws_attach_ops {
    size_t size; /* sizeof(nf_ws_attach_ops_t) */
    void (*on_close)(nf_ws_conn_t *ws, nf_ws_attach_t *a);
} nf_ws_attach_ops_t;
struct nf_ws_attach {
    const nf_ws_attach_ops_t *ops;
};

/* Attaches a (NULL detaches, at any time; on_close is not called then).
 * Returns 0, -EBUSY when another attachment is set, NF_ECLOSED (attaching)
 * once the connection's on_close has begun. */
int nf_ws_conn_attach(nf_ws_conn_t *ws, nf_ws_attach_t *a);
/* The attachment, or NULL. */
nf_ws_attach_t *nf_ws_conn_attached(const nf_ws_conn_t *ws);

/* 1 when a message compressed once, alone (raw deflate, a 15-bit window, no
 * earlier context, the 00 00 ff ff tail removed), may be sent to ws as a
 * compressed frame (RSV1) with nf_ws_send_buf: permessage-deflate was agreed
 * and our side resets its compressor after every message (no context
 * takeover: the server config's pmd.server_no_context_takeover, or the
 * client asked) with a 15-bit window. Else 0: send such a message
 * uncompressed. */
int nf_ws_conn_deflate_shareable(const nf_ws_conn_t *ws);

#ifdef __cplusplus
}
#endif
#endif
