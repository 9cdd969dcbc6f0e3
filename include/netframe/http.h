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
#include <stdint.h>

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

/* ---- the request stream reader (message framing, RFC 9112 6) ----------
 *
 * A sans-I/O reader of one connection's request stream: heads (through
 * nf_http_parse_request), bodies by Content-Length or chunked coding
 * (extensions ignored, trailers parsed and bounded), one message after the
 * other (pipelining). The caller feeds bytes as they arrive, in pieces of any
 * size; every answer is the same whatever the cut. Bodies are not copied:
 * NF_HTTP_EV_BODY hands a view into the input. A head split over several
 * inputs is copied into the reader's own buffer (at most max_head bytes).
 *
 * Framing safety (request smuggling): a request with both Content-Length
 * and Transfer-Encoding, Content-Length values that differ or are not
 * digits, a Transfer-Encoding whose last coding is not chunked or that names
 * chunked twice, a Transfer-Encoding in HTTP/1.0, a bad chunk-size line
 * (no digits, a size that does not fit in 64 bits, a bare CR or LF, a control character), a
 * chunk not followed by CRLF, a malformed trailer field: 400. A coding other
 * than chunked before it (gzip, chunked): 501. A body over max_body: 413.
 * Head errors: 400, 414, 431, 505 (nf_http_error_status). After an error
 * the stream has no defined framing: the reader stays in error and the
 * connection must close after the answer. */

/* Limits of the reader. A zero member takes its default. */
typedef struct nf_http_reader_config {
    nf_http_limits_t head; /* request line, field line, head (8 KiB, 8 KiB, 64 KiB) */
    size_t max_headers;    /* fields per head, and per trailer section (64): 431 */
    uint64_t max_body;     /* body bytes, decoded (1 MiB): 413; NF_HTTP_UNLIMITED: none */
    size_t max_trailer;    /* trailer section bytes, final CRLF included (8 KiB): 431 */
    size_t max_chunk_line; /* chunk-size line, extensions and CRLF included (1 KiB): 400 */
} nf_http_reader_config_t;

#define NF_HTTP_UNLIMITED UINT64_MAX

/* What nf_http_reader_next found. */
typedef enum nf_http_event_type {
    NF_HTTP_EV_MORE = 0, /* every byte given was used: feed more */
    NF_HTTP_EV_HEAD,     /* a request head: the reader's req, framing fields */
    NF_HTTP_EV_BODY,     /* body bytes (decoded): data, len; never empty */
    NF_HTTP_EV_END,      /* the message is complete (trailers, if any, set) */
    NF_HTTP_EV_ERROR,    /* status and error set; the stream is dead */
} nf_http_event_type_t;

typedef struct nf_http_event {
    nf_http_event_type_t type;
    const char *data; /* NF_HTTP_EV_BODY: a view into the input */
    size_t len;
    int status; /* NF_HTTP_EV_ERROR: the status to answer (400, 413, 414, 431, 501, 505) */
    int error;  /* NF_HTTP_EV_ERROR: NF_EHTTP_BAD, NF_EHTTP_TOOLARGE (413 and 431),
                   NF_EHTTP_URITOOLONG or NF_EHTTP_VERSION */
} nf_http_event_t;

/* The reader. Members above `priv` may be read (max_body also written);
 * the others are private. */
typedef struct nf_http_reader {
    /* Set at NF_HTTP_EV_HEAD. The views in req (and req.headers) point into
     * the input of the call that returned the head, or into the reader's
     * buffer: valid until the next call of nf_http_reader_next. */
    nf_http_request_t req;
    size_t head_len;         /* bytes of the head as sent (leading CRLFs included) */
    int chunked;             /* Transfer-Encoding: chunked */
    uint64_t content_length; /* Content-Length (0 if none or chunked) */
    int keep_alive;          /* the connection may carry another request after this one */
    int expect_continue;     /* HTTP/1.1 with Expect: 100-continue */
    int upgrade;             /* Connection: upgrade with an Upgrade field */
    uint64_t body_read;      /* decoded body bytes delivered so far */
    /* Set at NF_HTTP_EV_END of a chunked body with a trailer section: views
     * into the reader's buffer, valid until the next call. */
    nf_http_header_t *trailers;
    size_t num_trailers;
    /* The body limit; may be changed after NF_HTTP_EV_HEAD, before the next
     * call (a streamed body may allow more than a buffered one). Reset from
     * the config at every head. */
    uint64_t max_body;
    struct {
        nf_http_reader_config_t cfg;
        int state, cstate, err_status, err_code;
        char *hbuf, *tbuf;
        size_t hlen, hcap, tlen, line_len;
        uint64_t left, csize;
        int ndig, prev_cr;
        nf_http_header_t *headers;
    } priv;
} nf_http_reader_t;

/* Sets up a reader; cfg may be NULL (defaults). Allocates the field arrays
 * (2 x max_headers entries); the head and trailer buffers grow on demand up
 * to their limits. Returns 0 or -ENOMEM (nothing to free then). */
int nf_http_reader_init(nf_http_reader_t *r, const nf_http_reader_config_t *cfg);

/* Frees what the reader holds; r itself is the caller's. */
void nf_http_reader_free(nf_http_reader_t *r);

/* Reads from data[0..len) up to the next event, stores it in *ev and returns
 * the number of bytes used (0..len); the caller passes the rest again.
 * NF_HTTP_EV_MORE: all len bytes were used. NF_HTTP_EV_END and the first
 * NF_HTTP_EV_ERROR may use none; after END the reader starts the next
 * request. Once in error every call returns the same NF_HTTP_EV_ERROR and 0.
 * len 0 returns NF_HTTP_EV_MORE unless an END or ERROR is due. */
size_t nf_http_reader_next(nf_http_reader_t *r, const char *data, size_t len, nf_http_event_t *ev);

#ifdef __cplusplus
}
#endif
#endif
