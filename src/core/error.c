/* netframe — error names and messages. */
#include <string.h>

#include "core/internal.h"
#include "netframe/http.h"
#include "netframe/ws_codec.h"
#include "netframe/ws.h"
#include "netframe/flow.h"
#include "netframe/proxy.h"
#include "netframe/tls.h"

#define CODES(X)                                                                                                       \
    X(NF_EOF, "connection closed by peer")                                                                             \
    X(NF_ECLOSED, "closing or closed")                                                                                 \
    X(NF_ELIMIT, "limit reached")                                                                                      \
    X(NF_EBACKEND, "backend not available")                                                                            \
    X(NF_EADDR, "bad or unresolvable address")                                                                         \
    X(NF_EWQFULL, "write queue over its limit")                                                                        \
    X(NF_ESLOW, "closed as a slow consumer")                                                                           \
    X(NF_EPROXY_INCOMPLETE, "PROXY protocol header incomplete")                                                        \
    X(NF_EPROXY, "malformed PROXY protocol header")                                                                    \
    X(NF_EPROXY_TOOLARGE, "PROXY protocol header too large")                                                           \
    X(NF_EPROXY_VERSION, "PROXY protocol version not accepted")                                                        \
    X(NF_EPROXY_TIMEOUT, "no complete PROXY protocol header in time")                                                  \
    X(NF_EPROXY_NOHEADER, "connection does not begin with a PROXY protocol header")                                    \
    X(NF_ETLS, "TLS failure (see nf_tls_conn_error)")                                                                  \
    X(NF_EWS_HANDSHAKE, "WebSocket handshake failed")                                                                  \
    X(NF_EHTTP_INCOMPLETE, "HTTP head incomplete")                                                                     \
    X(NF_EHTTP_BAD, "malformed HTTP head (400)")                                                                       \
    X(NF_EHTTP_TOOLARGE, "HTTP header too large (431)")                                                                \
    X(NF_EHTTP_VERSION, "HTTP version not supported (505)")                                                            \
    X(NF_EHTTP_URITOOLONG, "HTTP request line too long (414)")                                                         \
    X(NF_EHTTP_NOSPACE, "output buffer too small")                                                                     \
    X(NF_EHTTP_INVALID, "invalid HTTP head argument")                                                                  \
    X(NF_EWS_PROTOCOL, "WebSocket protocol error (1002)")                                                              \
    X(NF_EWS_UTF8, "WebSocket invalid UTF-8 (1007)")                                                                   \
    X(NF_EWS_TOOBIG, "WebSocket message too big (1009)")                                                               \
    X(NF_EWS_POLICY, "WebSocket policy violation (1008)")                                                              \
    X(NF_EWS_INFLATE, "WebSocket corrupt compressed data (1007)")                                                      \
    X(NF_EWS_CLOSED, "WebSocket closed")                                                                               \
    X(NF_EWS_EXTENSION, "WebSocket extension negotiation failed (1010)")

NF__EXPORT const char *nf_strerror(int err)
{
#define MSG(code, text)                                                                                                \
    case code: return text;
    switch (err) {
    case 0: return "ok"; CODES(MSG)
    }
    if (err < 0 && err > -4096)
        return strerror(-err); /* glibc: static strings for known codes */
    return "unknown error";
}

NF__EXPORT const char *nf_err_name(int err)
{
#define NAME(code, text)                                                                                               \
    case code: return #code;
    switch (err) {
    case 0: return "ok"; CODES(NAME)
    }
    if (err < 0 && err > -4096) {
        const char *n = strerrorname_np(-err);
        if (n)
            return n;
    }
    return "unknown";
}
