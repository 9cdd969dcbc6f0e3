/* netframe — TLS 1.2 / 1.3 as a connection filter (OpenSSL 3).
 *
 * A TLS context (nf_tls_ctx_t) holds what every connection of a listener or
 * connector shares: certificates and keys, trusted CAs, ALPN, the session
 * cache. The filter nf_tls_filter, with the context as its config, makes one
 * OpenSSL session per connection and drives it through an in-memory BIO:
 * ciphertext comes from the filter below (or the transport) and goes back
 * down as nf_buf_t writes, so TLS works on every backend and completion mode.
 *
 *     program / ws filter          plaintext
 *     nf_tls_filter                encrypt / decrypt, handshake, close_notify
 *     [nf_flow_filter]             counts ciphertext (bytes on the wire)
 *     transport
 *
 * Life of a TLS connection:
 *   - on_open reaches the filters above and the program only once the
 *     handshake has completed (ALPN, peer certificate, version are readable
 *     from on_open on). Writes made before are held and sent after it.
 *   - A handshake that fails (bad certificate, wrong name, garbage, timeout)
 *     closes the connection: on_close gets NF_ETLS (or -ETIMEDOUT for the
 *     handshake timeout) and nf_tls_conn_error() the reason in words (the
 *     OpenSSL error, with the certificate verification result). The program
 *     never saw on_open for it; other connections are not affected.
 *   - nf_conn_end sends close_notify, then flushes and closes the TCP
 *     connection. nf_conn_close / nf_conn_abort do not (they drop what is
 *     queued). nf_conn_shutdown is TLS half-close: close_notify, then TCP
 *     FIN; reading goes on. The peer's close_notify reaches the program as
 *     on_eof; a TCP FIN without close_notify after the handshake also does
 *     (and nf_tls_conn_error says "EOF without close_notify").
 *   - Under TLS nf_conn_keep_read() returns NULL: the decrypted bytes lie in
 *     a scratch buffer; copy what you keep. */
#ifndef NETFRAME_TLS_H
#define NETFRAME_TLS_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "filter.h"

#ifdef __cplusplus
extern "C" {
#endif

/* on_close reason of a connection that failed in TLS (handshake or a record
 * error); the text is in nf_tls_conn_error(). */
/* NF_ETLS (-5301) is in error.h with every other code. */

typedef struct nf_tls_ctx nf_tls_ctx_t;

/* One certificate of a server, chosen by the name the client asks for (SNI). */
typedef struct nf_tls_cert {
    const char *name;      /* "host.example" or "*.example" (one label); case-insensitive */
    const char *cert_file; /* PEM: certificate, then its chain */
    const char *key_file;  /* PEM private key */
} nf_tls_cert_t;

/* Client certificates on a server: */
#define NF_TLS_VERIFY_NONE    0 /* do not ask (default) */
#define NF_TLS_VERIFY_REQUEST 1 /* ask; a client without one is accepted */
#define NF_TLS_VERIFY_REQUIRE 2 /* ask; a client without a valid one fails */

/* TLS versions for min_version / max_version: */
#define NF_TLS_1_2 0x0303
#define NF_TLS_1_3 0x0304

typedef struct nf_tls_config {
    int server; /* 1: the accepting side; 0: the client side */
    /* Server: the default certificate (required). Client: a client
     * certificate to present when the server asks (optional). */
    const char *cert_file;
    const char *key_file;
    /* Server: more certificates, picked by SNI; a name that matches none
     * (or no SNI) gets the default certificate. Copied. */
    const nf_tls_cert_t *sni_certs;
    unsigned nsni_certs;
    /* ALPN protocol names, NULL-terminated. Server: the ones it speaks, in
     * its order of preference (the first it shares with the client wins; no
     * overlap fails the handshake with no_application_protocol). Client:
     * offered. NULL: no ALPN. Copied. */
    const char *const *alpn;
    /* Trust anchors to verify the peer with (PEM file / hashed directory).
     * Client: when both are NULL the system store is used
     * (SSL_CTX_set_default_verify_paths). Server: the CAs client
     * certificates must chain to. */
    const char *ca_file;
    const char *ca_path;
    /* Client: do not verify the server at all (tests with self-signed
     * certificates only). Verification is ON by default: chain to a trusted
     * CA, validity dates, and the host name (see nf_tls_set_server_name). */
    int insecure;
    /* Client: the name sent as SNI and checked against the certificate when
     * the connection does not set its own (nf_tls_set_server_name). An IP
     * address literal is checked against the certificate's IP entries and
     * not sent as SNI. */
    const char *server_name;
    /* Server: NF_TLS_VERIFY_NONE / _REQUEST / _REQUIRE client certificates. */
    int verify_client;
    int min_version; /* 0: TLS 1.2 */
    int max_version; /* 0: TLS 1.3 */
    /* 0: 10 s. A handshake that takes longer closes with -ETIMEDOUT. */
    uint64_t handshake_timeout_ms;
    /* Client: remember sessions (tickets) per server name and offer them on
     * the next connection to that name (resumption). 0: on, -1: off. */
    int session_cache;
    /* OpenSSL cipher strings; NULL: OpenSSL's defaults. */
    const char *ciphers;      /* TLS 1.2 */
    const char *ciphersuites; /* TLS 1.3 */
    /* Records the filter makes by itself while reading, because the peer's
     * messages ask for them (the answer to a TLS 1.3 KeyUpdate with
     * update_requested, alerts, tickets), that may wait below at once (in a
     * flow filter below, or in the transport's queue: not yet taken by the
     * kernel), in bytes. No flow filter above sees them; past this the peer
     * asks for more than it reads, and the connection closes with NF_ESLOW
     * (nf_tls_conn_error says so). 0: 64 KiB. */
    size_t max_self_bytes;
} nf_tls_config_t;

/* Builds a context. Returns 0 and sets *out, or NF_ETLS (a file could not be
 * read, a key does not match its certificate, ...), -EINVAL or -ENOMEM; the
 * reason in words goes to err (may be NULL) when it is not. A context may
 * be shared by listeners and connectors on any number of loops and threads;
 * it must outlive them (free it after their connections have closed). */
int nf_tls_ctx_new(nf_tls_ctx_t **out, const nf_tls_config_t *cfg, char *err, size_t errlen);
void nf_tls_ctx_free(nf_tls_ctx_t *ctx);

/* The filter. Its config is an nf_tls_ctx_t *. Put it below the protocol
 * filters (WebSocket) and above a flow filter: {flow, tls, ...} means the
 * flow filter counts bytes as they go on the wire. A flow filter below TLS
 * must not drop writes (a dropped record breaks the stream: the TLS filter
 * then closes the connection with NF_ESLOW); use NF_FLOW_CLOSE. */
extern const nf_filter_ops_t nf_tls_filter;

/* Client: the server name for this connection (SNI and the name verified),
 * overriding the context's server_name. Call it right after nf_connect,
 * before the connection opens. Returns 0, -ENOENT (no TLS filter on c),
 * -EALREADY (the handshake started) or -ENOMEM. */
int nf_tls_set_server_name(nf_conn_t *c, const char *name);

/* ---- what a connection negotiated (valid from on_open to on_close) ----- */

/* Non-zero once the handshake has completed. */
int nf_tls_conn_established(const nf_conn_t *c);
/* The reason the connection failed in TLS ("certificate verify failed:
 * self-signed certificate", "handshake timeout", ...), or NULL. Readable in
 * on_close. */
const char *nf_tls_conn_error(const nf_conn_t *c);
/* "TLSv1.3", "TLSv1.2"; NULL without a TLS filter. */
const char *nf_tls_conn_version(const nf_conn_t *c);
/* The cipher suite name, e.g. "TLS_AES_256_GCM_SHA384". */
const char *nf_tls_conn_cipher(const nf_conn_t *c);
/* The protocol ALPN agreed on (not NUL-terminated; *len set), or NULL. */
const char *nf_tls_conn_alpn(const nf_conn_t *c, size_t *len);
/* Server: the name the client asked for by SNI, or NULL. */
const char *nf_tls_conn_server_name(const nf_conn_t *c);
/* Non-zero if the session was resumed (abbreviated handshake). */
int nf_tls_conn_resumed(const nf_conn_t *c);
/* The peer certificate's subject in OpenSSL's one-line form ("O = Org, CN =
 * name"), written to buf; returns 1 if the peer presented a verified
 * certificate, 0 if none, -ENOENT without a TLS filter. */
int nf_tls_conn_peer_subject(const nf_conn_t *c, char *buf, size_t size);

#ifdef __cplusplus
}
#endif
#endif
