/* netframe — sans-I/O WebSocket codec (RFC 6455) with permessage-deflate
 * (RFC 7692).
 *
 * Four layers, each usable alone:
 *  - frame primitives: header parse / write, masking, close payloads, UTF-8;
 *  - nf_ws_decoder_t: a streaming decoder fed with bytes split anywhere, which
 *    validates everything RFC 6455 asks a receiver to validate and reports
 *    messages, fragments and control frames through callbacks;
 *  - nf_ws_encoder_t: turns a message into frames (masking, compression,
 *    fragmentation at a configured size) in a caller buffer;
 *  - nf_ws_pmd_t: permessage-deflate negotiation and the zlib streams.
 * Nothing here touches a socket. See docs/websocket-codec.md. */
#ifndef NETFRAME_WS_CODEC_H
#define NETFRAME_WS_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Opcodes (RFC 6455 5.2). */
enum {
    NF_WS_OP_CONT = 0x0,
    NF_WS_OP_TEXT = 0x1,
    NF_WS_OP_BINARY = 0x2,
    NF_WS_OP_CLOSE = 0x8,
    NF_WS_OP_PING = 0x9,
    NF_WS_OP_PONG = 0xA,
};

/* Bits of the first header byte. */
enum {
    NF_WS_FIN = 0x80,
    NF_WS_RSV1 = 0x40, /* "per-message compressed" under permessage-deflate */
    NF_WS_RSV2 = 0x20,
    NF_WS_RSV3 = 0x10,
};

/* Which end of the connection this codec is. A server receives masked frames
 * and sends unmasked ones; a client the opposite. */
enum { NF_WS_SERVER = 0, NF_WS_CLIENT = 1 };

/* Close status codes (RFC 6455 7.4.1). */
enum {
    NF_WS_CLOSE_NORMAL = 1000,
    NF_WS_CLOSE_GOING_AWAY = 1001,
    NF_WS_CLOSE_PROTOCOL = 1002,
    NF_WS_CLOSE_UNSUPPORTED = 1003,
    NF_WS_CLOSE_NO_STATUS = 1005, /* never on the wire: "no code received" */
    NF_WS_CLOSE_ABNORMAL = 1006,  /* never on the wire: "no close frame" */
    NF_WS_CLOSE_INVALID_DATA = 1007,
    NF_WS_CLOSE_POLICY = 1008,
    NF_WS_CLOSE_TOO_BIG = 1009,
    NF_WS_CLOSE_EXTENSION = 1010,
    NF_WS_CLOSE_INTERNAL = 1011,
};

/* Error codes (in error.h, -5201..-5207). Functions also return -EINVAL (bad
 * argument), -ENOBUFS (output buffer too small) and -ENOMEM.
 *   NF_EWS_PROTOCOL   protocol violation by the peer: close 1002
 *   NF_EWS_UTF8       invalid UTF-8 in a text message or close reason: 1007
 *   NF_EWS_TOOBIG     frame or message over its limit: close 1009
 *   NF_EWS_POLICY     for callbacks to reject a message: close 1008
 *   NF_EWS_INFLATE    corrupt compressed data: close 1007
 *   NF_EWS_CLOSED     the decoder has failed or has seen a close
 *   NF_EWS_EXTENSION  client: the server's extension response is invalid;
 *                     fail the connection (1010) */

/* Maps an error code to the close code to send: NF_EWS_PROTOCOL 1002,
 * NF_EWS_UTF8 and NF_EWS_INFLATE 1007, NF_EWS_POLICY 1008, NF_EWS_TOOBIG 1009,
 * NF_EWS_EXTENSION 1010, anything else negative 1011; 0 for err >= 0. */
unsigned nf_ws_close_code_for(int err);

/* ------------------------------------------------------------------------ */
/* Frame primitives                                                          */

/* A parsed frame header. */
typedef struct nf_ws_frame_header {
    uint8_t fin;        /* 1 or 0 */
    uint8_t rsv;        /* the RSV bits as in the first byte (NF_WS_RSV1...) */
    uint8_t opcode;     /* 0..15, not validated here */
    uint8_t masked;     /* 1 or 0 */
    uint8_t mask[4];    /* masking key when masked */
    uint8_t nonminimal; /* 1 when the length used a longer form than needed */
    uint64_t len;       /* payload length, < 2^63 */
} nf_ws_frame_header_t;

/* Parses a frame header from buf[0..len): any of the three length forms
 * (7-bit, 16-bit, 64-bit). Returns the header size (2..14), 0 when more bytes
 * are needed, or NF_EWS_PROTOCOL when a 64-bit length has its most significant
 * bit set. Opcode, RSV, mask and size policies are the decoder's. */
int nf_ws_parse_header(const uint8_t *buf, size_t len, nf_ws_frame_header_t *h);

/* Returns the size of a frame header for a payload of `len` bytes: 2, 4 or
 * 10, plus 4 when masked. */
size_t nf_ws_header_size(uint64_t len, int masked);

/* Writes a frame header with the minimal length form. `flags` is NF_WS_FIN
 * and/or RSV bits; `mask_key` NULL writes an unmasked header, otherwise the 4
 * key bytes are written and the MASK bit set (the payload is not touched).
 * Returns the header size, -ENOBUFS when cap is too small, -EINVAL when opcode
 * > 15, flags has other bits or len >= 2^63. */
int nf_ws_write_header(uint8_t *out, size_t cap, unsigned flags, unsigned opcode, uint64_t len,
                       const uint8_t *mask_key);

/* Writes a whole frame (header and payload, masked with mask_key when not
 * NULL) into out. Returns the frame size, -ENOBUFS, or -EINVAL (as
 * nf_ws_write_header, and when the frame would exceed INT32_MAX bytes). */
int nf_ws_write_frame(uint8_t *out, size_t cap, unsigned flags, unsigned opcode, const void *payload, size_t len,
                      const uint8_t *mask_key);

/* XORs data[0..len) in place with the masking key, starting at key byte
 * (offset & 3) - the offset of data within the frame payload, so a payload
 * may be unmasked in pieces. Works 8 bytes at a time on any alignment.
 * Masking and unmasking are the same operation. */
void nf_ws_mask(uint8_t *data, size_t len, const uint8_t key[4], uint64_t offset);

/* nf_ws_mask from src into dst (which may equal src but must not otherwise
 * overlap it). */
void nf_ws_mask_copy(uint8_t *dst, const uint8_t *src, size_t len, const uint8_t key[4], uint64_t offset);

/* Returns 1 when `code` may be sent in a close frame (RFC 6455 7.4):
 * 1000-1003, 1007-1011, 3000-4999; 0 otherwise (including 1004-1006, 1012+
 * registered-later codes up to 2999, 1015 and anything below 1000). */
int nf_ws_close_code_valid(unsigned code);

/* Validates a received close payload. An empty payload gives code 1005 and an
 * empty reason. Returns 0, NF_EWS_PROTOCOL (1-byte payload, invalid code,
 * payload over 125 bytes) or NF_EWS_UTF8 (reason not UTF-8). *reason points
 * into payload. */
int nf_ws_parse_close(const uint8_t *payload, size_t len, unsigned *code, const char **reason, size_t *reason_len);

/* Writes a close frame. code 0 writes an empty payload (reason must then be
 * empty). Returns the frame size, -ENOBUFS, or -EINVAL (code not valid per
 * nf_ws_close_code_valid, reason over 123 bytes or not UTF-8). */
int nf_ws_write_close(uint8_t *out, size_t cap, unsigned code, const char *reason, size_t reason_len,
                      const uint8_t *mask_key);

/* ------------------------------------------------------------------------ */
/* UTF-8 validation (RFC 3629): incremental, fail-fast                      */

/* Validator state; copyable; zero-initialised is the initial state. */
typedef struct nf_ws_utf8 {
    uint32_t state;
} nf_ws_utf8_t;

/* Resets to the initial state. */
void nf_ws_utf8_init(nf_ws_utf8_t *u);

/* Validates the next bytes of a stream split anywhere (across frames and
 * reads). Returns 0 while valid, NF_EWS_UTF8 at the first byte that cannot
 * start or continue a sequence: overlong forms, surrogates (U+D800-DFFF) and
 * code points above U+10FFFF are invalid. The failure is sticky. */
int nf_ws_utf8_feed(nf_ws_utf8_t *u, const uint8_t *p, size_t n);

/* Ends the stream: returns 0 when it ended on a character boundary,
 * NF_EWS_UTF8 when invalid or a sequence is truncated. Resets the state. */
int nf_ws_utf8_finish(nf_ws_utf8_t *u);

/* Returns 1 when p[0..n) is complete valid UTF-8, else 0. */
int nf_ws_utf8_valid(const uint8_t *p, size_t n);

/* ------------------------------------------------------------------------ */
/* permessage-deflate (RFC 7692)                                             */

typedef struct nf_ws_pmd nf_ws_pmd_t;

/* Local preferences. Zero members take defaults. Window bits are 9..15 (0 =
 * 15); 8 is raised to 9, because zlib's raw deflate cannot use a 256-byte
 * window. */
typedef struct nf_ws_pmd_config {
    int server_no_context_takeover; /* server: always reset its compressor;
                                       client: ask the server to */
    int client_no_context_takeover; /* server: ask the client to reset;
                                       client: always offer to reset */
    int server_max_window_bits;     /* server: window it compresses with at
                                       most; client: window to ask for */
    int client_max_window_bits;     /* server: window to impose on the client
                                       (when the client allows it); client:
                                       window it compresses with at most */
    int level;                      /* zlib level 1..9; 0 = 6 (ws' default) */
    int mem_level;                  /* zlib memLevel 1..9; 0 = 8 */
    size_t threshold;               /* encoder: messages shorter than this go
                                       uncompressed; 0 = 32 bytes */
} nf_ws_pmd_config_t;

/* Parameters agreed in the handshake. Window bits are 8..15. */
typedef struct nf_ws_pmd_params {
    int server_no_context_takeover;
    int client_no_context_takeover;
    int server_max_window_bits;
    int client_max_window_bits;
} nf_ws_pmd_params_t;

/* Server: walks the Sec-WebSocket-Extensions value offers[0..len) (several
 * extensions and several permessage-deflate offers, comma-separated, in the
 * client's order of preference) and accepts the first permessage-deflate
 * offer that is valid: known parameters only, none twice, values in range
 * (server_max_window_bits=8..15 required value; client_max_window_bits with
 * or without value; *_no_context_takeover without value). An invalid offer is
 * declined and the next one tried. On success fills *agreed and writes the
 * response extension (for the Sec-WebSocket-Extensions response header,
 * without NUL) into resp. cfg may be NULL (defaults).
 * Returns the response length (> 0), 0 when no offer is acceptable (or the
 * header cannot be parsed): answer without the extension, -ENOBUFS. */
int nf_ws_pmd_negotiate(const nf_ws_pmd_config_t *cfg, const char *offers, size_t len, nf_ws_pmd_params_t *agreed,
                        char *resp, size_t cap);

/* Client: writes the offer for the Sec-WebSocket-Extensions request header.
 * Returns its length, or -ENOBUFS. */
int nf_ws_pmd_offer(const nf_ws_pmd_config_t *cfg, char *out, size_t cap);

/* Client: validates the server's Sec-WebSocket-Extensions value against the
 * offer nf_ws_pmd_offer made from the same cfg. len 0 means the server did
 * not accept the extension. Returns 1 (accepted, *agreed filled), 0 (not
 * accepted: no compression) or NF_EWS_EXTENSION (the response is invalid:
 * the client must fail the connection). */
int nf_ws_pmd_accept(const nf_ws_pmd_config_t *cfg, const char *resp, size_t len, nf_ws_pmd_params_t *agreed);

/* Creates the compression context of one connection for `role`. cfg supplies
 * level, mem_level and threshold (may be NULL). zlib streams are allocated
 * lazily: the deflater on the first compressed message, the inflater on the
 * first compressed message received. Returns NULL on -ENOMEM or bad params. */
nf_ws_pmd_t *nf_ws_pmd_new(int role, const nf_ws_pmd_params_t *agreed, const nf_ws_pmd_config_t *cfg);

/* Frees the context and its zlib streams. NULL is ignored. */
void nf_ws_pmd_free(nf_ws_pmd_t *p);

/* Returns 1 when outgoing messages of `len` bytes should be compressed: the
 * length reaches the threshold and the agreed window for our compressor is
 * not 8 bits (zlib cannot honour it: such messages go uncompressed, which
 * RFC 7692 allows). */
int nf_ws_pmd_should_compress(const nf_ws_pmd_t *p, size_t len);

/* Compresses one whole message: raw deflate, sync flush, trailing
 * 00 00 ff ff removed; the compressor is reset afterwards when our side has
 * no_context_takeover. *out points to a buffer owned by p, valid until the
 * next call on p. Returns 0, -ENOMEM, or NF_EWS_INFLATE (zlib error). */
int nf_ws_pmd_compress(nf_ws_pmd_t *p, const void *in, size_t len, const uint8_t **out, size_t *out_len);

/* Receives inflated bytes; a non-zero return stops inflation and is
 * returned by nf_ws_pmd_inflate. */
typedef int (*nf_ws_pmd_sink_fn)(void *arg, const uint8_t *data, size_t len);

/* Inflates the next piece in[0..len) of a compressed message; `fin` marks
 * the last piece (the 00 00 ff ff tail is then appended and the message ends;
 * the inflater is reset when the peer has no_context_takeover). Inflated
 * bytes go to sink in chunks of at most 16 KiB from one fixed buffer, so
 * memory stays bounded whatever the compression ratio. When the message
 * inflates to more than `limit` bytes, inflation stops at once and
 * NF_EWS_TOOBIG is returned. Returns 0, NF_EWS_TOOBIG, NF_EWS_INFLATE
 * (corrupt data), -ENOMEM, or the sink's non-zero value. After an error the
 * context must not be used for inflation again. */
int nf_ws_pmd_inflate(nf_ws_pmd_t *p, const uint8_t *in, size_t len, int fin, uint64_t limit, nf_ws_pmd_sink_fn sink,
                      void *arg);

/* ------------------------------------------------------------------------ */
/* Streaming decoder                                                         */

typedef struct nf_ws_decoder nf_ws_decoder_t;

/* Callbacks. Each returns 0 to go on; a negative value (e.g. NF_EWS_POLICY)
 * stops decoding: nf_ws_decoder_feed returns it and the decoder fails with
 * close code nf_ws_close_code_for(value). Data pointers are valid only
 * during the call. Any callback may be NULL.
 * Streaming mode (on_message NULL): on_message_begin, then on_data for every
 * piece (unmasked, inflated, UTF-8 checked so far; pieces follow frame and
 * read boundaries, a piece may be empty), then on_message_end once the whole
 * message is valid.
 * Whole-message mode (on_message set): fragments are accumulated up to
 * max_message and on_message gets the whole message; a one-frame message that
 * lies whole in one fed buffer is passed without a copy. */
typedef struct nf_ws_decoder_cbs {
    int (*on_message_begin)(nf_ws_decoder_t *d, unsigned opcode, int compressed);
    int (*on_data)(nf_ws_decoder_t *d, const uint8_t *data, size_t len);
    int (*on_message_end)(nf_ws_decoder_t *d);
    int (*on_message)(nf_ws_decoder_t *d, unsigned opcode, const uint8_t *data, size_t len);
    int (*on_ping)(nf_ws_decoder_t *d, const uint8_t *data, size_t len);
    int (*on_pong)(nf_ws_decoder_t *d, const uint8_t *data, size_t len);
    /* code 1005 when the close frame had no payload. After it the decoder
     * ignores every further byte. */
    int (*on_close)(nf_ws_decoder_t *d, unsigned code, const char *reason, size_t reason_len);
} nf_ws_decoder_cbs_t;

typedef struct nf_ws_decoder_config {
    int role;              /* NF_WS_SERVER or NF_WS_CLIENT */
    uint64_t max_frame;    /* largest frame payload; 0 = 16 MiB */
    uint64_t max_message;  /* largest message, after inflation; 0 = 16 MiB */
    nf_ws_pmd_t *pmd;      /* agreed permessage-deflate (borrowed) or NULL */
    unsigned rsv_allowed;  /* RSV bits other extensions negotiated; RSV1 is
                              allowed by pmd */
    int reject_nonminimal; /* 1: a length in a longer form than needed is a
                              protocol error (default: accepted) */
} nf_ws_decoder_config_t;

/* The decoder. Embed it anywhere; `data` is the user's, the rest private. */
struct nf_ws_decoder {
    void *data;
    /* private */
    nf_ws_decoder_cbs_t cb;
    nf_ws_pmd_t *pmd;
    uint64_t max_frame, max_message;
    uint8_t role, rsv_allowed, reject_nonminimal, state;
    uint8_t hdr_have, hdr_need, msg_opcode, msg_compressed;
    uint8_t in_message, ctl_len;
    uint8_t hdr[14];
    nf_ws_frame_header_t fh;
    uint64_t frame_pos; /* payload bytes of the frame seen so far */
    uint64_t msg_wire;  /* payload bytes of the message on the wire */
    uint64_t msg_len;   /* message bytes delivered (after inflation) */
    nf_ws_utf8_t utf8;
    int error;
    unsigned close_code;
    const char *reason;
    uint8_t *buf; /* whole-message accumulator */
    size_t buf_len, buf_cap;
    uint8_t ctl[125];
};

/* Initialises d for cfg (may not be NULL) and cbs (copied); d->data is kept,
 * so it may be set before or after. Returns 0 or -EINVAL (bad role or
 * rsv_allowed). Allocates nothing; whole-message mode allocates its
 * accumulator on the first fragmented or compressed message and reuses it. */
int nf_ws_decoder_init(nf_ws_decoder_t *d, const nf_ws_decoder_config_t *cfg, const nf_ws_decoder_cbs_t *cbs);

/* Frees what the decoder allocated. Does not free d or the pmd. Not to be
 * called from one of its callbacks. */
void nf_ws_decoder_free(nf_ws_decoder_t *d);

/* Decodes buf[0..len), which may end anywhere. Payload bytes are unmasked IN
 * PLACE in buf. Returns 0 when every byte was used (or ignored after a close
 * frame), or a negative code: NF_EWS_PROTOCOL, NF_EWS_UTF8, NF_EWS_TOOBIG,
 * NF_EWS_INFLATE, -ENOMEM, a callback's value. After an error the decoder is
 * failed: later calls return NF_EWS_CLOSED; send a close frame with
 * nf_ws_decoder_close_code(d) and close the connection. */
int nf_ws_decoder_feed(nf_ws_decoder_t *d, uint8_t *buf, size_t len);

/* The close code to send after a failure (1002, 1007, 1008, 1009, 1011...),
 * 0 when the decoder has not failed. */
unsigned nf_ws_decoder_close_code(const nf_ws_decoder_t *d);

/* A short static text saying why the decoder failed ("" when it has not). */
const char *nf_ws_decoder_reason(const nf_ws_decoder_t *d);

/* Returns 1 once a close frame has been received, else 0. */
int nf_ws_decoder_closed(const nf_ws_decoder_t *d);

/* Returns 1 when d is between frames and outside any message (no partial
 * header, no fragmented message open): a fresh decoder with the same
 * configuration would go on identically (a permessage-deflate context lives
 * in the pmd, not here). Else 0. */
int nf_ws_decoder_at_rest(const nf_ws_decoder_t *d);

/* ------------------------------------------------------------------------ */
/* Encoder                                                                   */

/* Fills key with a fresh masking key. */
typedef void (*nf_ws_mask_key_fn)(void *arg, uint8_t key[4]);

typedef struct nf_ws_encoder_config {
    int role;                   /* NF_WS_CLIENT masks every frame */
    size_t fragment_size;       /* largest payload per frame; 0 = no
                                   fragmentation. Applies to data messages. */
    nf_ws_pmd_t *pmd;           /* agreed permessage-deflate (borrowed) or NULL */
    nf_ws_mask_key_fn mask_key; /* client: key source; NULL = getrandom(2) */
    void *mask_arg;
} nf_ws_encoder_config_t;

typedef struct nf_ws_encoder {
    void *data;
    /* private */
    nf_ws_encoder_config_t cfg;
    const uint8_t *payload; /* pending message */
    size_t plen, out_size;
    uint8_t opcode, compressed, pending;
    uint8_t rnd_pos;
    uint8_t rnd[64];
} nf_ws_encoder_t;

/* Initialises e (e->data is kept). Returns 0 or -EINVAL (bad role).
 * Allocates nothing. */
int nf_ws_encoder_init(nf_ws_encoder_t *e, const nf_ws_encoder_config_t *cfg);

/* Prepares one message (text, binary, or a control frame of at most 125
 * bytes) and stores in *out_size the exact number of bytes its frames take.
 * Compresses data messages when a pmd is configured and
 * nf_ws_pmd_should_compress says so (the compressed bytes live in the pmd
 * until the next message). `data` must stay valid until nf_ws_encode_write.
 * Replaces a message prepared and not written. Returns 0, -EINVAL (bad
 * opcode, control payload over 125 bytes), -ENOMEM. */
int nf_ws_encode_prepare(nf_ws_encoder_t *e, unsigned opcode, const void *data, size_t len, size_t *out_size);

/* Writes the prepared message's frames into out: the first frame carries the
 * opcode (and RSV1 when compressed), the others NF_WS_OP_CONT, the last FIN;
 * client frames are masked with fresh keys. Returns 0 and sets *written,
 * -ENOBUFS (cap < size: the message stays prepared), or -EINVAL (nothing
 * prepared). */
int nf_ws_encode_write(nf_ws_encoder_t *e, uint8_t *out, size_t cap, size_t *written);

/* nf_ws_encode_prepare then nf_ws_encode_write. On -ENOBUFS *written holds
 * the size needed and the message stays prepared for nf_ws_encode_write. */
int nf_ws_encode(nf_ws_encoder_t *e, unsigned opcode, const void *data, size_t len, uint8_t *out, size_t cap,
                 size_t *written);

/* Nothing to free today; call it anyway. */
void nf_ws_encoder_free(nf_ws_encoder_t *e);

/* ------------------------------------------------------------------------ */
/* Hixie-76 (draft-hixie-thewebsocketprotocol-76): the legacy handshake      */
/* challenge and framing, for old clients. No masking, no binary, no ping.   */

/* The value of a Sec-WebSocket-Key1/Key2: its digits as one number divided
 * by its count of spaces. Returns 0 and sets *out, or -EINVAL: no digit, no
 * space, a number over 4294967295 or not a multiple of the spaces. */
int nf_ws_hixie76_key_value(const char *key, size_t len, uint32_t *out);

/* The 16-byte answer: MD5 of value(key1) and value(key2) as big-endian
 * 32-bit numbers followed by key3 (the 8 bytes after the request head).
 * Returns 0, -EINVAL (a bad key) or -ENOMEM. */
int nf_ws_hixie76_answer(const char *key1, size_t len1, const char *key2, size_t len2, const uint8_t key3[8],
                         uint8_t out[16]);
int nf_ws_hixie76_answer_values(uint32_t v1, uint32_t v2, const uint8_t key3[8], uint8_t out[16]);

typedef struct nf_ws_hixie_decoder nf_ws_hixie_decoder_t;

typedef struct nf_ws_hixie_cbs {
    /* A 0x00 frame: its text, checked as UTF-8, valid during the call. */
    int (*on_text)(nf_ws_hixie_decoder_t *d, const uint8_t *data, size_t len);
    /* The closing frame 0xFF 0x00; every later byte is ignored. */
    int (*on_close)(nf_ws_hixie_decoder_t *d);
} nf_ws_hixie_cbs_t;

/* Frames: a type byte; with its high bit clear, bytes up to a 0xFF
 * sentinel (type 0x00 is text; other types are read and discarded); with
 * its high bit set, a length in 7-bit groups (high bit: more follow) and
 * that many bytes, discarded, except 0xFF 0x00 which closes. */
struct nf_ws_hixie_decoder {
    void *data;
    /* private */
    nf_ws_hixie_cbs_t cb;
    uint64_t max;   /* largest frame */
    uint64_t frame; /* sentinel frame: bytes so far; length-prefixed: its
                       length, then the bytes left to skip */
    uint8_t *buf;   /* a text frame split across reads */
    size_t len, cap;
    uint8_t state, type;
    int error;
};

/* Initialises d (d->data is kept); max_frame 0: 16 MiB. Allocates nothing. */
void nf_ws_hixie_decoder_init(nf_ws_hixie_decoder_t *d, uint64_t max_frame, const nf_ws_hixie_cbs_t *cbs);
void nf_ws_hixie_decoder_free(nf_ws_hixie_decoder_t *d);

/* Decodes p[0..n), which may end anywhere. Returns 0, or NF_EWS_TOOBIG (a
 * frame over max_frame, before it is buffered: a missing 0xFF is caught at
 * the limit), NF_EWS_UTF8 (a text frame that is not UTF-8), -ENOMEM, a
 * callback's value; after an error, NF_EWS_CLOSED. */
int nf_ws_hixie_decoder_feed(nf_ws_hixie_decoder_t *d, const uint8_t *p, size_t n);

/* A text frame: nf_ws_hixie_frame_size(len) bytes (len + 2) written to out
 * by nf_ws_hixie_write_text, which returns that count. */
size_t nf_ws_hixie_frame_size(size_t len);
size_t nf_ws_hixie_write_text(uint8_t *out, const void *data, size_t len);

#ifdef __cplusplus
}
#endif
#endif
