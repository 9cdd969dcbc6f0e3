/* netframe — sans-I/O HTTP/1.1 head parser and writer.
 *
 * Only what a WebSocket upgrade and tiny responses need: the request line or
 * status line plus the header fields, up to and including the empty line that
 * ends the head. Bodies, chunked coding and trailers are out of scope.
 *
 * Parsing is zero-copy and stateless: the caller keeps the received bytes in
 * one contiguous buffer and calls the parser again with the longer buffer when
 * it returns NF_EHTTP_INCOMPLETE. Every string the parser returns is a view
 * (pointer + length) into that buffer, valid as long as the buffer is.
 *
 * The parser is strict (RFC 9112): lines end in CRLF (a bare LF or CR is an
 * error), obs-fold is rejected, field names are tokens with no space before
 * the colon, field values hold no control characters except HTAB, an HTTP/1.1
 * request must carry exactly one Host field. See docs/websocket-codec.md. */
#ifndef NETFRAME_HTTP_H
#define NETFRAME_HTTP_H

#include <stddef.h>

#include "error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Results of the parsers (NF_EHTTP_*, -5101..-5107) are in error.h, with
 * every other code:
 *   NF_EHTTP_INCOMPLETE  not an error: the head is not complete yet
 *   NF_EHTTP_BAD         malformed head: answer 400
 *   NF_EHTTP_TOOLARGE    a header line, the head or the field count is over
 *                        its limit: answer 431
 *   NF_EHTTP_VERSION     well-formed HTTP version other than 1.x: answer 505
 *   NF_EHTTP_URITOOLONG  request line over its limit: answer 414
 *   NF_EHTTP_NOSPACE     writer: the output buffer is too small
 *   NF_EHTTP_INVALID     writer: an argument would produce a bad head
 *                        (CR/LF in a value, bad token, bad status) */

/* One header field: views into the parsed buffer. The value has its leading
 * and trailing whitespace removed; it may be empty. */
typedef struct nf_http_header {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
} nf_http_header_t;

/* Limits applied while parsing. A zero member takes its default. */
typedef struct nf_http_limits {
    size_t max_line;  /* request line / status line, CRLF included (8192) */
    size_t max_field; /* one header line, CRLF included (8192) */
    size_t max_head;  /* whole head, final empty line included (65536) */
} nf_http_limits_t;

typedef struct nf_http_request {
    const char *method;
    size_t method_len;
    const char *target; /* request-target as sent, not decoded */
    size_t target_len;
    int minor_version;         /* 0 or 1: HTTP/1.0 or HTTP/1.1 */
    nf_http_header_t *headers; /* the caller's array passed to the parser */
    size_t num_headers;        /* fields stored in headers */
} nf_http_request_t;

typedef struct nf_http_response {
    int minor_version;  /* 0 or 1 */
    int status;         /* 100..999 */
    const char *reason; /* reason phrase, may be empty */
    size_t reason_len;
    nf_http_header_t *headers;
    size_t num_headers;
} nf_http_response_t;

/* Parses a request head from buf[0..len).
 * `headers` is an array of `max_headers` entries the parser fills; more fields
 * than that is NF_EHTTP_TOOLARGE. `limits` may be NULL (defaults).
 * `last_len` is the length of the buffer at the previous call that returned
 * NF_EHTTP_INCOMPLETE (0 on the first call): when non-zero and the new bytes
 * end no line (no CR or LF) and stay within the limits, the parser answers
 * NF_EHTTP_INCOMPLETE without parsing again, so feeding a head byte by byte
 * costs O(n) per line and not O(n^2). The answer never depends on how the
 * bytes were cut.
 * Empty lines (CRLF) before the request line are skipped (RFC 9112 2.2).
 * Returns the number of bytes of the head (the body, if any, starts there),
 * NF_EHTTP_INCOMPLETE, or NF_EHTTP_BAD / TOOLARGE / VERSION / URITOOLONG.
 * On error *req is unspecified. Never reads outside buf[0..len). */
int nf_http_parse_request(const char *buf, size_t len, size_t last_len, nf_http_request_t *req,
                          nf_http_header_t *headers, size_t max_headers, const nf_http_limits_t *limits);

/* Parses a response head, like nf_http_parse_request. The status line is
 * "HTTP/1.x SP 3DIGIT SP reason CRLF"; a missing " reason" is accepted
 * ("HTTP/1.1 101\r\n"). Returns bytes of the head, NF_EHTTP_INCOMPLETE,
 * NF_EHTTP_BAD, NF_EHTTP_TOOLARGE (a status line over max_line too) or
 * NF_EHTTP_VERSION. */
int nf_http_parse_response(const char *buf, size_t len, size_t last_len, nf_http_response_t *res,
                           nf_http_header_t *headers, size_t max_headers, const nf_http_limits_t *limits);

/* Maps a parser result to the status code to answer with: 400, 414, 431 or
 * 505; 0 for a non-error (a count, or NF_EHTTP_INCOMPLETE); 500 otherwise. */
int nf_http_error_status(int err);

/* Returns the first header whose name equals `name` (NUL-terminated) ignoring
 * ASCII case, or NULL. */
const nf_http_header_t *nf_http_find_header(const nf_http_header_t *headers, size_t n, const char *name);

/* Counts the headers named `name` (ASCII case-insensitive). */
size_t nf_http_count_headers(const nf_http_header_t *headers, size_t n, const char *name);

/* Returns 1 when the comma-separated list value[0..len) has an element equal
 * to `token` (NUL-terminated) ignoring ASCII case, 0 otherwise. Elements are
 * trimmed of spaces and tabs; empty elements are skipped. Quoted strings are
 * not interpreted (the lists this is for - Connection, Upgrade - hold
 * tokens). Example: ("keep-alive, Upgrade", "upgrade") -> 1. */
int nf_http_list_has_token(const char *value, size_t len, const char *token);

/* nf_http_list_has_token over every header named `name`: 1 when any of them
 * contains `token`, else 0. */
int nf_http_headers_have_token(const nf_http_header_t *headers, size_t n, const char *name, const char *token);

/* Returns the standard reason phrase for a status code ("Switching
 * Protocols"), or "Unknown" (never NULL). */
const char *nf_http_reason(int status);

/* Writes "HTTP/1.1 <status> <reason>\r\n", the headers and the final "\r\n"
 * into out[0..cap). reason NULL uses nf_http_reason(status). Names must be
 * tokens; reason and values must not hold CR, LF or other control characters
 * except HTAB (no header injection). Returns the number of bytes written (no
 * NUL is added), NF_EHTTP_NOSPACE when cap is too small, NF_EHTTP_INVALID for
 * bad arguments (status outside 100..999); out is then unspecified. */
int nf_http_write_response(char *out, size_t cap, int status, const char *reason, const nf_http_header_t *headers,
                           size_t n);

/* Writes "<method> <target> HTTP/1.1\r\n", the headers and "\r\n". The method
 * must be a token, the target visible ASCII. Returns as
 * nf_http_write_response. */
int nf_http_write_request(char *out, size_t cap, const char *method, const char *target,
                          const nf_http_header_t *headers, size_t n);

#ifdef __cplusplus
}
#endif
#endif
