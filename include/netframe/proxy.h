/* netframe — the PROXY protocol (HAProxy's, versions 1 and 2), server side.
 *
 * A load balancer in front of a server (HAProxy `send-proxy` /
 * `send-proxy-v2`, nginx `proxy_protocol on`, AWS NLB, ...) opens a TCP
 * connection to the server and sends, before the client's first byte, a
 * header that names the real client: a text line (v1, at most 107 bytes,
 * "PROXY TCP4 SRC DST SPORT DPORT\r\n") or a binary block (v2: a 12-byte
 * signature, version/command, family, length, addresses, then optional
 * TLVs). This file has two parts:
 *
 *  - a sans-I/O parser, nf_proxy_parse(), usable alone (and fuzzed);
 *  - nf_proxy_filter, a connection filter that holds the program's on_open
 *    and reads until the header is complete, then makes nf_conn_peer_addr()
 *    return the client named in it. A connection that does not begin with a
 *    valid header is closed with one of the NF_EPROXY... reasons below.
 *
 * The filter must be filters[0] (next to the transport): the header is the
 * first thing on the wire, before TLS. */
#ifndef NETFRAME_PROXY_H
#define NETFRAME_PROXY_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "filter.h"
#include "tcp.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Result codes (in error.h, -5401..-5406; nf_strerror names them):
 *   NF_EPROXY_INCOMPLETE  parser: need more bytes (not an error); close
 *                         reason: the peer closed inside the header
 *   NF_EPROXY             malformed header
 *   NF_EPROXY_TOOLARGE    v1 line over 107 bytes, or v2 over max_header
 *   NF_EPROXY_VERSION     a well-formed header of a version not accepted
 *   NF_EPROXY_TIMEOUT     close reason: no complete header within timeout_ms
 *   NF_EPROXY_NOHEADER    the stream does not begin with a PROXY header */

/* Versions accepted (bits). */
#define NF_PROXY_V1   1u
#define NF_PROXY_V2   2u
#define NF_PROXY_BOTH (NF_PROXY_V1 | NF_PROXY_V2)

/* Commands. v1 headers are NF_PROXY_CMD_PROXY. */
#define NF_PROXY_CMD_LOCAL 0 /* the proxy's own connection (health check): use the transport's addresses */
#define NF_PROXY_CMD_PROXY 1 /* relayed on behalf of the client named in the header */

/* v2 transport protocol (the low nibble of the family byte). */
#define NF_PROXY_TRANSPORT_UNSPEC 0
#define NF_PROXY_TRANSPORT_STREAM 1
#define NF_PROXY_TRANSPORT_DGRAM  2

#define NF_PROXY_V1_MAX     107 /* the longest v1 line, CRLF included */
#define NF_PROXY_V2_MIN     16  /* signature + ver_cmd + fam + len */
#define NF_PROXY_UNIX_PATH  108 /* bytes of an AF_UNIX address in v2 */
#define NF_PROXY_MAX_HEADER 4096

/* A parsed header. */
typedef struct nf_proxy_header {
    int version;   /* 1 or 2 */
    int command;   /* NF_PROXY_CMD_LOCAL or NF_PROXY_CMD_PROXY */
    int family;    /* AF_INET, AF_INET6, AF_UNIX or AF_UNSPEC (v1 UNKNOWN, v2 UNSPEC, and LOCAL) */
    int transport; /* NF_PROXY_TRANSPORT_...; v1: STREAM */
    /* AF_INET / AF_INET6: the client (src) and the address it connected to (dst) */
    nf_addr_t src, dst;
    /* AF_UNIX (v2 only): the raw 108-byte paths, NUL-padded (an abstract
     * name starts with a NUL byte) */
    unsigned char src_path[NF_PROXY_UNIX_PATH], dst_path[NF_PROXY_UNIX_PATH];
    size_t header_len; /* bytes the header took on the wire */
    size_t tlv_off;    /* v2: where the TLVs begin in the header, and their bytes; */
    size_t tlv_len;    /* each TLV was checked to lie inside the header (not interpreted) */
} nf_proxy_header_t;

/* Parses the header at the start of buf[0..len). Returns the header's length
 * (> 0) and fills *out; NF_EPROXY_INCOMPLETE when buf is a valid beginning
 * of a header (call again with more bytes: the result never depends on how
 * the bytes were cut); or NF_EPROXY_NOHEADER, NF_EPROXY, NF_EPROXY_TOOLARGE,
 * NF_EPROXY_VERSION, decided as early as the bytes allow. `versions`: a mask
 * of NF_PROXY_V1 / NF_PROXY_V2 (0: both). `max_header`: the largest v2
 * header (16 + its length field) accepted (0: NF_PROXY_MAX_HEADER; at most
 * 16 + 65535). Strict: single spaces, CRLF, decimal ports without leading
 * zeros, numeric addresses of the family named, known v2 version, command
 * and family, an address block of the family's size, well-formed TLVs.
 * Never reads past buf[len - 1]; *out is untouched unless a length is
 * returned. */
int nf_proxy_parse(const void *buf, size_t len, unsigned versions, size_t max_header, nf_proxy_header_t *out);

/* ---- the filter --------------------------------------------------------- */

typedef struct nf_proxy_config {
    unsigned versions;   /* NF_PROXY_V1 / NF_PROXY_V2 / NF_PROXY_BOTH; 0: both */
    uint64_t timeout_ms; /* the whole header must arrive within; 0: 5000 */
    size_t max_header;   /* largest v2 header accepted; 0: NF_PROXY_MAX_HEADER */
    /* Accept connections that do not begin with a PROXY header (they keep
     * the transport's address). Off by default and unsafe: see
     * docs/proxy.md. The decision waits for enough bytes to tell (up to 12),
     * so a protocol where the server speaks first stalls until the timeout. */
    int optional;
} nf_proxy_config_t;

/* The filter. Config: nf_proxy_config_t (NULL: defaults). Must be
 * filters[0]; init fails with -EINVAL otherwise. Until the header is
 * complete, filters above and the program see nothing (no on_open, no
 * on_read); bytes after the header in the same read are delivered right
 * after on_open. Close reasons: NF_EPROXY..., NF_EPROXY_TIMEOUT,
 * NF_EPROXY_INCOMPLETE (EOF inside the header). */
extern const nf_filter_ops_t nf_proxy_filter;

/* The header received on c. Returns 0 and sets *out (valid until c's
 * on_close returns); -ENOENT without the filter; NF_EPROXY_INCOMPLETE before
 * the header completed; NF_EPROXY_NOHEADER in optional mode when the
 * connection had none. */
int nf_proxy_get(const nf_conn_t *c, const nf_proxy_header_t **out);

/* With the filter, nf_conn_peer_addr(c) returns the header's source address
 * (command PROXY, family AF_INET or AF_INET6); otherwise (LOCAL, UNSPEC,
 * UNKNOWN, AF_UNIX, no header) the transport's. The transport's peer is
 * always available through nf_conn_transport_peer_addr (tcp.h). */

#ifdef __cplusplus
}
#endif
#endif
