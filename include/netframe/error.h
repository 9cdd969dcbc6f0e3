/* netframe — error codes: every NF_E... code of every layer, in one place.
 *
 * Every function that can fail returns an int: 0 (or a count) on success, a
 * negative errno value (-ECONNREFUSED, -ETIMEDOUT, ...) or one of the NF_E...
 * codes below on failure. The NF_E... codes lie outside errno's range, so one
 * int carries both kinds.
 *
 * Ranges (a new layer takes the next free hundred and adds its codes here):
 *   -5001..-5099  core and transport (and the flow-control filter's NF_ESLOW)
 *   -5101..-5199  HTTP head parser / writer            (netframe/http.h)
 *   -5201..-5299  WebSocket codec and connections      (netframe/ws_codec.h, ws.h)
 *   -5301..-5399  TLS filter                           (netframe/tls.h)
 *   -5401..-5499  PROXY protocol parser and filter     (netframe/proxy.h)
 *
 * The headers named on the right include this one, so code that includes
 * only them keeps compiling. */
#ifndef NETFRAME_ERROR_H
#define NETFRAME_ERROR_H

#ifdef __cplusplus
extern "C" {
#endif

/* Each code: X(name, value, message). nf_strerror / nf_err_name are built
 * from this list, so a code added here is named at once. */
#define NF_ERRNO_MAP(X)                                                                                                \
    /* core and transport */                                                                                           \
    X(NF_EOF, -5001, "connection closed by peer")                                                                      \
    X(NF_ECLOSED, -5002, "closing or closed")                                                                          \
    X(NF_ELIMIT, -5003, "limit reached")                                                                               \
    X(NF_EBACKEND, -5004, "backend not available")                                                                     \
    X(NF_EADDR, -5005, "bad or unresolvable address")                                                                  \
    X(NF_EWQFULL, -5006, "write queue over its limit")                                                                 \
    X(NF_ESLOW, -5010, "closed as a slow consumer")                                                                    \
    /* HTTP */                                                                                                         \
    X(NF_EHTTP_INCOMPLETE, -5101, "HTTP head incomplete")                                                              \
    X(NF_EHTTP_BAD, -5102, "malformed HTTP head (400)")                                                                \
    X(NF_EHTTP_TOOLARGE, -5103, "HTTP header too large (431)")                                                         \
    X(NF_EHTTP_VERSION, -5104, "HTTP version not supported (505)")                                                     \
    X(NF_EHTTP_URITOOLONG, -5105, "HTTP request line too long (414)")                                                  \
    X(NF_EHTTP_NOSPACE, -5106, "output buffer too small")                                                              \
    X(NF_EHTTP_INVALID, -5107, "invalid HTTP head argument")                                                           \
    /* WebSocket */                                                                                                    \
    X(NF_EWS_PROTOCOL, -5201, "WebSocket protocol error (1002)")                                                       \
    X(NF_EWS_UTF8, -5202, "WebSocket invalid UTF-8 (1007)")                                                            \
    X(NF_EWS_TOOBIG, -5203, "WebSocket message too big (1009)")                                                        \
    X(NF_EWS_POLICY, -5204, "WebSocket policy violation (1008)")                                                       \
    X(NF_EWS_INFLATE, -5205, "WebSocket corrupt compressed data (1007)")                                               \
    X(NF_EWS_CLOSED, -5206, "WebSocket closed")                                                                        \
    X(NF_EWS_EXTENSION, -5207, "WebSocket extension negotiation failed (1010)")                                        \
    X(NF_EWS_HANDSHAKE, -5208, "WebSocket handshake failed")                                                           \
    /* TLS */                                                                                                          \
    X(NF_ETLS, -5301, "TLS failure (see nf_tls_conn_error)")                                                           \
    /* PROXY protocol */                                                                                               \
    X(NF_EPROXY_INCOMPLETE, -5401, "PROXY protocol header incomplete")                                                 \
    X(NF_EPROXY, -5402, "malformed PROXY protocol header")                                                             \
    X(NF_EPROXY_TOOLARGE, -5403, "PROXY protocol header too large")                                                    \
    X(NF_EPROXY_VERSION, -5404, "PROXY protocol version not accepted")                                                 \
    X(NF_EPROXY_TIMEOUT, -5405, "no complete PROXY protocol header in time")                                           \
    X(NF_EPROXY_NOHEADER, -5406, "connection does not begin with a PROXY protocol header")

/* What the codes mean to a caller:
 *   NF_EOF       the peer closed its side of the stream (FIN)
 *   NF_ECLOSED   the object is closing or closed
 *   NF_ELIMIT    a configured limit was reached (connections, sizes)
 *   NF_EBACKEND  the requested backend is not available here
 *   NF_EADDR     an address could not be parsed or resolved
 *   NF_EWQFULL   a write would take the transport write queue past its
 *                ceiling (nf_conn_set_write_limits): the write is refused
 *                and the connection closes with it
 *   NF_ESLOW     closed as a slow consumer (flow control, on_close reason)
 *   NF_EHTTP_*, NF_EWS_*, NF_ETLS, NF_EPROXY_*: see the header of the layer
 *   that returns them (listed above). */
enum {
#define NF__ERR_ENUM(name, value, text) name = (value),
    NF_ERRNO_MAP(NF__ERR_ENUM)
#undef NF__ERR_ENUM
};

/* Returns a static, human-readable string for an error code: a negative
 * errno, an NF_E... code, or 0 ("ok"). Never returns NULL. */
const char *nf_strerror(int err);

/* Returns a short symbolic name for a code ("ECONNRESET", "NF_EOF", "ok"). */
const char *nf_err_name(int err);

#ifdef __cplusplus
}
#endif
#endif
