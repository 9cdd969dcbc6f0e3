/* netframe — WebSocket connections: what conn.c, handshake_server.c and handshake_client.c share.
 * Nothing here is public API. */
#ifndef NF_WS_CONN_H
#define NF_WS_CONN_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/export.h"
#include "base/list.h"
#include "netframe/filter.h"
#include "netframe/loop.h"
#include "netframe/timer.h"
#include "netframe/ws.h"

/* States of one connection. */
enum {
    NF__WS_HANDSHAKE = 0, /* server: reading the request; client: the answer */
    NF__WS_OPEN,          /* messages flow */
    NF__WS_CLOSING,       /* we sent a close frame; waiting for the peer's */
    NF__WS_LINGER,        /* done: write side shut, input discarded until EOF */
    NF__WS_DONE,          /* on_close is running / ran */
};

/* What differs between the two ends during the opening handshake: set in
 * the context by handshake_server.c / handshake_client.c, so that conn.c calls through it and
 * names neither (no circle between conn.c and the handshake files). */
typedef struct nf__ws_role {
    void (*open)(nf_ws_conn_t *ws);                         /* the TCP connection opened */
    void (*read)(nf_ws_conn_t *ws, char *data, size_t len); /* handshake bytes arrived */
} nf__ws_role_t;

/* What the filter's config points to: a server (shared by its connections,
 * reference counted) or one client connection's context. */
typedef struct nf__ws_ctx {
    int role;                 /* NF_WS_SERVER / NF_WS_CLIENT */
    const nf__ws_role_t *ops; /* the handshake of that role */
    unsigned refs;
    nf_loop_t *loop;
    nf_ws_options_t opts;    /* defaults filled in */
    nf_filter_spec_t *specs; /* program's filters + the ws filter */
    unsigned nspecs;
    nf__list_t conns; /* nf_ws_conn_t.node */
    unsigned nconns;
    void (*free_fn)(struct nf__ws_ctx *ctx);
} nf__ws_ctx_t;

struct nf_ws_server {
    nf__ws_ctx_t ctx;
    nf_ws_server_config_t cfg;
    nf_listener_t *l;
    void *data;
    bool closing;
    void (*close_cb)(nf_ws_server_t *s);
};

typedef struct nf__ws_client {
    nf__ws_ctx_t ctx;
    nf_ws_client_config_t cfg;
    char *request; /* the request head, written at open, then freed */
    size_t request_len;
    char accept[32]; /* the Sec-WebSocket-Accept expected (Hixie-76: the 16
                        bytes expected after the answer's head) */
    char *path;
} nf__ws_client_t;

/* The codec of an open connection, allocated on its first byte in or out
 * and released after NF__WS_REST_MS without input at a frame boundary: an
 * idle connection holds none (see docs/websocket.md, memory). */
typedef struct nf__ws_codec {
    nf_ws_decoder_t dec;
    nf_ws_encoder_t enc;
    /* Pongs (RFC 6455 5.5.3: answering only the latest ping is allowed): at
     * most one of ours is below at a time. pong_below is its memory while a
     * filter or the transport holds it (cleared by the buffer's free
     * callback, once the kernel took it, or it was dropped); a ping that
     * comes meanwhile only records its payload here (pong_owed), replacing
     * any older one, and is answered once pong_below is gone. The codec is
     * not released at rest while either is set. */
    const void *pong_below;
    uint8_t pong_owed, pong_len;
    uint8_t pong[125];
} nf__ws_codec_t;

#define NF__WS_REST_MS 2000

/* Handshake bytes received so far (server: the request; client: the
 * answer), freed once the handshake is done. */
typedef struct nf__ws_hs {
    size_t len, cap, last;
    char buf[];
} nf__ws_hs_t;

/* Kept small (200 bytes on 64-bit): every connection has one, as the
 * filter's state; what only the handshake, a busy connection or a legacy
 * draft needs lives in blocks allocated on demand. */
struct nf_ws_conn {
    nf_filter_t *f;
    nf__ws_ctx_t *ctx;
    const nf_ws_handler_t *h;
    const nf_ws_route_t *route;
    void *data;
    nf__list_t node;
    union {
        nf__ws_codec_t *cx;        /* RFC 6455 / HyBi: lazily, see above */
        nf_ws_hixie_decoder_t *hx; /* version 76 */
    };
    nf_ws_pmd_t *pmd;       /* permessage-deflate agreed */
    nf_ws_attach_t *attach; /* a layer above (pub/sub), nf_ws_conn_attach */
    nf__ws_hs_t *hs;        /* during the handshake only */
    char *path;
    const char *subprotocol;
    char *close_reason;
    int error;
    uint16_t close_code, http_status;
    uint64_t last_rx, last_ping;
    nf_timer_t timer;
    uint8_t role, state, version, frag_opcode;
    uint8_t opened : 1, close_rcvd : 1, failed : 1, frag_out : 1;
    uint8_t path_borrowed : 1; /* path is route->path (not ours to free) */
    uint8_t close_reason_len;  /* at most 123 */
};

static inline size_t nf__ws_hs_len(const nf_ws_conn_t *ws) { return ws->hs ? ws->hs->len : 0; }

/* conn.c */
extern const nf_conn_handler_t nf__ws_tcp_handler;
void nf__ws_opts_normalize(nf_ws_options_t *o);
void nf__ws_client_setup(nf_filter_t *f, const nf_ws_handler_t *h, void *data);
void nf__ws_ctx_unref(nf__ws_ctx_t *ctx);
/* base64(SHA-1(key + GUID)) into out (29 bytes with the NUL). 0 or -ENOMEM. */
int nf__ws_accept_key(const char *key, size_t len, char out[29]);
/* Room kept in ws->hs after a head of max_header bytes: the Hixie-76 bytes
 * that follow the head (key3: 8, the server's answer: 16). */
#define NF__WS_HS_AFTER 16
/* Appends received handshake bytes to ws->hs, bounded by max_header + 1 +
 * NF__WS_HS_AFTER: a head of up to max_header bytes and the Hixie-76 bytes
 * after it, or one byte over the limit, enough for the parser to say "too
 * large". The copy is only for parsing the head: what follows the head is
 * fed to the decoder from the read itself (nf__ws_hs_after), as the copy
 * may have cut it. 0 or -ENOMEM. */
int nf__ws_hs_append(nf_ws_conn_t *ws, const char *data, size_t len);
void nf__ws_hs_free(nf_ws_conn_t *ws);
/* The handshake stream so far is `have` bytes of earlier reads (in ws->hs)
 * then this read's data[0..len): returns where the stream's byte `off` (the
 * end of the head, or of the Hixie-76 bytes after it) lies in data, and in
 * *n how many bytes of data follow it, for the decoder. The head always ends
 * in the read being handled (had it ended in an earlier one, it would have
 * been handled then), so off >= have. */
static inline uint8_t *nf__ws_hs_after(char *data, size_t len, size_t have, size_t off, size_t *n)
{
    *n = len - (off - have);
    return (uint8_t *)data + (off - have);
}
/* Writes raw bytes down (a copy). Returns NF_WRITE_* or an error. */
int nf__ws_write_raw(nf_ws_conn_t *ws, const void *data, size_t len);
/* The handshake succeeded: set up the codec, go OPEN, arm keep-alive, call
 * on_open, then feed rest[0..len) (bytes that followed the head). */
void nf__ws_opened(nf_ws_conn_t *ws, const nf_ws_pmd_params_t *agreed, uint8_t *rest, size_t len);
/* Lingering close: shut the write side once sent, discard input, close on
 * EOF or after close_timeout. */
/* One read during the opening handshake. The stream so far is `have`
 * earlier bytes (kept in ws->hs) then data[0..len). The head is parsed from
 * buf[0..blen), from `last` on: data itself, or ws->hs's copy when the head
 * began in an earlier read. The copy is capped near max_header
 * (nf__ws_hs_append) and holds the head and, for Hixie-76, the 8 bytes of
 * key3 after it, but not necessarily what follows: that is fed to the
 * decoder from data (nf__ws_hs_after). head: set once the head is parsed. */
typedef struct nf__ws_hs_read {
    char *buf;
    size_t head;
    char *data;
    size_t len, have;
    size_t blen, last;
} nf__ws_hs_read_t;
/* Begins one handshake read: fills rd (appending data to ws->hs when the
 * head began in an earlier read) and the HTTP limits of ws's options.
 * Returns 0, or -1 after dropping the connection (no memory). */
int nf__ws_hs_read_begin(nf_ws_conn_t *ws, char *data, size_t len, nf__ws_hs_read_t *rd, nf_http_limits_t *lim);
void nf__ws_linger(nf_ws_conn_t *ws);
/* Fails the handshake or connection with error err (no close frame). */
void nf__ws_drop(nf_ws_conn_t *ws, int err);
void nf__ws_arm(nf_ws_conn_t *ws, uint64_t ms);
/* The codec of an open connection, made on its first byte in or out after
 * the handshake (or after it was released at rest); NULL: no memory. */
nf__ws_codec_t *nf__ws_codec_new(nf_ws_conn_t *ws);
static inline nf__ws_codec_t *nf__ws_codec(nf_ws_conn_t *ws) { return ws->cx ? ws->cx : nf__ws_codec_new(ws); }

/* pmd.c: our compressor's reset-after-each-message flag and window bits. */
void nf__ws_pmd_tx(const nf_ws_pmd_t *p, int *reset, int *bits);

/* send.c: the send path. */
/* A masking key for a client frame (the encoder's mask_key). */
void nf__ws_rand_key(void *arg, uint8_t key[4]);
/* Encodes one message (or a ping) and writes it down: NF_WRITE_* or an error. */
int nf__ws_write_msg(nf_ws_conn_t *ws, unsigned opcode, const void *data, size_t len);
/* Answers a ping (one pong below at a time, see nf__ws_codec_t). */
int nf__ws_send_pong(nf_ws_conn_t *ws, const void *data, size_t len);
/* Sends a close frame (code 0: none); NF_ESLOW after dropping the connection
 * when a flow-control policy below dropped the frame. */
int nf__ws_send_close(nf_ws_conn_t *ws, unsigned code, const char *reason, size_t rlen);

#endif
