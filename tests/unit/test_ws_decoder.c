/* Unit tests: streaming WebSocket decoder and encoder (src/ws/decoder.c,
 * src/ws/encoder.c). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "netframe/ws_codec.h"

/* ---- recorder ---------------------------------------------------------- */

typedef struct {
    char log[2048]; /* events except data pieces */
    size_t loglen;
    uint8_t *data; /* concatenated message bytes */
    size_t dlen, dcap;
    size_t pieces;
    unsigned code;
    char reason[128];
    const uint8_t *last_ptr; /* on_message's data pointer */
    int reject;              /* return this from on_message / on_message_end */
} rec_t;

static void logf_(rec_t *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(r->log + r->loglen, sizeof r->log - r->loglen, fmt, ap);
    va_end(ap);
    if (n > 0 && (size_t)n < sizeof r->log - r->loglen)
        r->loglen += (size_t)n;
}

static void add_data(rec_t *r, const uint8_t *p, size_t n)
{
    if (r->dlen + n > r->dcap) {
        r->dcap = (r->dlen + n) * 2 + 64;
        r->data = realloc(r->data, r->dcap);
    }
    if (n)
        memcpy(r->data + r->dlen, p, n);
    r->dlen += n;
}

static int cb_begin(nf_ws_decoder_t *d, unsigned op, int compressed)
{
    logf_(d->data, "B%u%s ", op, compressed ? "z" : "");
    return 0;
}
static int cb_data(nf_ws_decoder_t *d, const uint8_t *p, size_t n)
{
    rec_t *r = d->data;
    r->pieces++;
    add_data(r, p, n);
    return 0;
}
static int cb_end(nf_ws_decoder_t *d)
{
    rec_t *r = d->data;
    logf_(r, "E ");
    return r->reject;
}
static int cb_message(nf_ws_decoder_t *d, unsigned op, const uint8_t *p, size_t n)
{
    rec_t *r = d->data;
    logf_(r, "M%u:%zu ", op, n);
    add_data(r, p, n);
    r->last_ptr = p;
    return r->reject;
}
static int cb_ping(nf_ws_decoder_t *d, const uint8_t *p, size_t n)
{
    logf_(d->data, "P:%.*s ", (int)n, (const char *)p);
    return 0;
}
static int cb_pong(nf_ws_decoder_t *d, const uint8_t *p, size_t n)
{
    logf_(d->data, "O:%.*s ", (int)n, (const char *)p);
    return 0;
}
static int cb_close(nf_ws_decoder_t *d, unsigned code, const char *reason, size_t n)
{
    rec_t *r = d->data;
    logf_(r, "C%u ", code);
    r->code = code;
    snprintf(r->reason, sizeof r->reason, "%.*s", (int)n, reason);
    return 0;
}

static const nf_ws_decoder_cbs_t stream_cbs = {
    cb_begin, cb_data, cb_end, NULL, cb_ping, cb_pong, cb_close,
};
static const nf_ws_decoder_cbs_t whole_cbs = {
    NULL, NULL, NULL, cb_message, cb_ping, cb_pong, cb_close,
};

static void rec_reset(rec_t *r)
{
    free(r->data);
    memset(r, 0, sizeof *r);
}

/* ---- frame building ---------------------------------------------------- */

static const uint8_t KEY[4] = {0x37, 0xfa, 0x21, 0x3d};

typedef struct {
    uint8_t *p;
    size_t len, cap;
} bytes_t;

static void put(bytes_t *b, const void *p, size_t n)
{
    if (b->len + n > b->cap) {
        b->cap = (b->len + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
    }
    memcpy(b->p + b->len, p, n);
    b->len += n;
}

/* Appends a frame; masked frames use KEY. */
static void frame(bytes_t *b, unsigned flags, unsigned op, int masked, const void *payload, size_t len)
{
    uint8_t *tmp = malloc(len + 14);
    int n = nf_ws_write_frame(tmp, len + 14, flags, op, payload, len, masked ? KEY : NULL);
    assert_true(n > 0);
    put(b, tmp, (size_t)n);
    free(tmp);
}

/* Feeds a copy of b in pieces of `step` bytes (0: all at once; SIZE_MAX:
 * a pseudo-random mix). Returns the first non-zero result. */
static int feed(nf_ws_decoder_t *d, const bytes_t *b, size_t step)
{
    uint8_t *copy = malloc(b->len + 1);
    memcpy(copy, b->p, b->len);
    size_t pos = 0;
    uint32_t r = 7;
    int rc = 0;
    while (pos < b->len) {
        size_t n = step == 0 ? b->len : step;
        if (step == SIZE_MAX) {
            r = r * 1103515245u + 12345u;
            n = 1 + (r >> 16) % 23;
        }
        if (n > b->len - pos)
            n = b->len - pos;
        rc = nf_ws_decoder_feed(d, copy + pos, n);
        if (rc)
            break;
        pos += n;
    }
    free(copy);
    return rc;
}

static const size_t STEPS[] = {0, 1, 2, 3, 5, 13, 64, SIZE_MAX};
#define NSTEPS (sizeof STEPS / sizeof STEPS[0])

/* Decodes b with every split in the given role and mode. Returns the result
 * (same for every split, asserted), fills r from the last run. */
static int decode_all(const bytes_t *b, int role, int whole, rec_t *r, const nf_ws_decoder_config_t *base)
{
    int first_rc = 0;
    char first_log[2048] = "";
    unsigned first_code = 0;
    for (size_t s = 0; s < NSTEPS; s++) {
        nf_ws_decoder_config_t cfg = {0};
        if (base)
            cfg = *base;
        cfg.role = role;
        nf_ws_decoder_t d;
        rec_reset(r);
        d.data = r;
        assert_int_equal(nf_ws_decoder_init(&d, &cfg, whole ? &whole_cbs : &stream_cbs), 0);
        assert_ptr_equal(d.data, r);
        int rc = feed(&d, b, STEPS[s]);
        unsigned code = nf_ws_decoder_close_code(&d);
        if (rc) {
            assert_true(code != 0);
            assert_true(nf_ws_decoder_reason(&d)[0] != 0);
            assert_int_equal(nf_ws_decoder_feed(&d, (uint8_t *)"x", 1), NF_EWS_CLOSED);
        } else {
            assert_int_equal(code, 0);
        }
        nf_ws_decoder_free(&d);
        if (s == 0) {
            first_rc = rc;
            first_code = code;
            memcpy(first_log, r->log, sizeof first_log);
        } else {
            if (rc != first_rc || code != first_code)
                fail_msg("step %zu: rc %d code %u vs %d %u", STEPS[s], rc, code, first_rc, first_code);
            if (strcmp(first_log, r->log) != 0)
                fail_msg("step %zu: log '%s' vs '%s'", STEPS[s], r->log, first_log);
        }
    }
    return first_rc;
}

/* ---- tests ------------------------------------------------------------- */

static void test_every_length_form(void **state)
{
    (void)state;
    static const size_t lens[] = {0, 1, 125, 126, 127, 1000, 65535, 65536, 70001};
    rec_t r = {0};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        size_t len = lens[i];
        uint8_t *pl = malloc(len + 1);
        for (size_t k = 0; k < len; k++)
            pl[k] = (uint8_t)('a' + k % 26);
        for (int role = 0; role < 2; role++)
            for (int whole = 0; whole < 2; whole++)
                for (unsigned op = 1; op <= 2; op++) {
                    bytes_t b = {0};
                    frame(&b, NF_WS_FIN, op, role == NF_WS_SERVER, pl, len);
                    assert_int_equal(decode_all(&b, role, whole, &r, NULL), 0);
                    char want[64];
                    if (whole)
                        snprintf(want, sizeof want, "M%u:%zu ", op, len);
                    else
                        snprintf(want, sizeof want, "B%u E ", op);
                    assert_string_equal(r.log, want);
                    assert_int_equal(r.dlen, len);
                    if (len)
                        assert_memory_equal(r.data, pl, len);
                    free(b.p);
                }
        free(pl);
    }
    rec_reset(&r);
}

static void test_fragments_and_controls(void **state)
{
    (void)state;
    rec_t r = {0};
    for (int role = 0; role < 2; role++) {
        int m = role == NF_WS_SERVER;
        bytes_t b = {0};
        frame(&b, 0, NF_WS_OP_TEXT, m, "Hel", 3);
        frame(&b, NF_WS_FIN, NF_WS_OP_PING, m, "p1", 2);
        frame(&b, 0, NF_WS_OP_CONT, m, "", 0);
        frame(&b, NF_WS_FIN, NF_WS_OP_PONG, m, "", 0);
        frame(&b, 0, NF_WS_OP_CONT, m, "lo, ", 4);
        frame(&b, NF_WS_FIN, NF_WS_OP_PING, m, "p2", 2);
        frame(&b, NF_WS_FIN, NF_WS_OP_CONT, m, "world", 5);
        frame(&b, NF_WS_FIN, NF_WS_OP_BINARY, m, "\x00\xff", 2);
        frame(&b, NF_WS_FIN, NF_WS_OP_CLOSE, m,
              "\x03\xe8"
              "bye",
              5);
        frame(&b, NF_WS_FIN, NF_WS_OP_TEXT, m, "ignored after close", 19);
        assert_int_equal(decode_all(&b, role, 0, &r, NULL), 0);
        assert_string_equal(r.log, "B1 P:p1 O: P:p2 E B2 E C1000 ");
        assert_int_equal(r.dlen, 14);
        assert_memory_equal(r.data, "Hello, world\x00\xff", 14);
        assert_string_equal(r.reason, "bye");
        assert_int_equal(decode_all(&b, role, 1, &r, NULL), 0);
        assert_string_equal(r.log, "P:p1 O: P:p2 M1:12 M2:2 C1000 ");
        assert_memory_equal(r.data, "Hello, world\x00\xff", 14);
        free(b.p);
    }
    rec_reset(&r);
}

static void test_close_frames(void **state)
{
    (void)state;
    rec_t r = {0};
    bytes_t b = {0};
    frame(&b, NF_WS_FIN, NF_WS_OP_CLOSE, 1, "", 0);
    assert_int_equal(decode_all(&b, NF_WS_SERVER, 0, &r, NULL), 0);
    assert_string_equal(r.log, "C1005 ");
    free(b.p);
    /* every code 0..5000: valid ones accepted, others 1002 */
    for (unsigned code = 0; code <= 5000; code += (code < 1100 || code > 2990) ? 1 : 97) {
        uint8_t p[2] = {(uint8_t)(code >> 8), (uint8_t)code};
        nf_ws_decoder_t d;
        nf_ws_decoder_config_t cfg = {.role = NF_WS_CLIENT};
        memset(&r, 0, sizeof r);
        d.data = &r;
        nf_ws_decoder_init(&d, &cfg, &stream_cbs);
        uint8_t f[4] = {0x88, 2, p[0], p[1]};
        int rc = nf_ws_decoder_feed(&d, f, 4);
        if (nf_ws_close_code_valid(code)) {
            assert_int_equal(rc, 0);
            assert_int_equal(r.code, code);
            assert_true(nf_ws_decoder_closed(&d));
        } else {
            assert_int_equal(rc, NF_EWS_PROTOCOL);
            assert_int_equal(nf_ws_decoder_close_code(&d), 1002);
        }
        nf_ws_decoder_free(&d);
    }
    /* one-byte payload */
    b = (bytes_t){0};
    frame(&b, NF_WS_FIN, NF_WS_OP_CLOSE, 1, "\x03", 1);
    assert_int_equal(decode_all(&b, NF_WS_SERVER, 0, &r, NULL), NF_EWS_PROTOCOL);
    free(b.p);
    /* reason: invalid UTF-8 -> 1007; valid multibyte ok */
    b = (bytes_t){0};
    frame(&b, NF_WS_FIN, NF_WS_OP_CLOSE, 1, "\x03\xe8\xce\xba\xc0\xaf", 6);
    assert_int_equal(decode_all(&b, NF_WS_SERVER, 0, &r, NULL), NF_EWS_UTF8);
    free(b.p);
    b = (bytes_t){0};
    frame(&b, NF_WS_FIN, NF_WS_OP_CLOSE, 1, "\x0f\xa0\xce\xba\xe1\xbd\xb9", 7);
    assert_int_equal(decode_all(&b, NF_WS_SERVER, 1, &r, NULL), 0);
    assert_string_equal(r.log, "C4000 ");
    assert_string_equal(r.reason, "\xce\xba\xe1\xbd\xb9");
    free(b.p);
    rec_reset(&r);
}

typedef struct {
    const char *name;
    const char *bytes; /* raw frame bytes */
    size_t len;
    int role;
    int want;
} raw_case_t;

#define RAW(n, s, role, want)                                                                                          \
    {                                                                                                                  \
        n, s, sizeof(s) - 1, role, want                                                                                \
    }

static void test_protocol_errors(void **state)
{
    (void)state;
    static const raw_case_t cases[] = {
        RAW("unmasked to server", "\x81\x02hi", NF_WS_SERVER, NF_EWS_PROTOCOL),
        RAW("masked to client", "\x81\x82\0\0\0\0hi", NF_WS_CLIENT, NF_EWS_PROTOCOL),
        RAW("rsv1 no ext", "\xc1\x00", NF_WS_CLIENT, NF_EWS_PROTOCOL),
        RAW("rsv2", "\xa1\x00", NF_WS_CLIENT, NF_EWS_PROTOCOL),
        RAW("rsv3", "\x91\x00", NF_WS_CLIENT, NF_EWS_PROTOCOL),
        RAW("op 3", "\x83\x00", NF_WS_CLIENT, NF_EWS_PROTOCOL),
        RAW("op 7", "\x87\x00", NF_WS_CLIENT, NF_EWS_PROTOCOL),
        RAW("op 11", "\x8b\x00", NF_WS_CLIENT, NF_EWS_PROTOCOL),
        RAW("op 15", "\x8f\x00", NF_WS_CLIENT, NF_EWS_PROTOCOL),
        RAW("ping no fin", "\x09\x00", NF_WS_CLIENT, NF_EWS_PROTOCOL),
        RAW("close no fin", "\x08\x00", NF_WS_CLIENT, NF_EWS_PROTOCOL),
        RAW("ping 126", "\x89\x7e\x00\x7e", NF_WS_CLIENT, NF_EWS_PROTOCOL),
        RAW("pong 64-bit 126", "\x8a\x7f\0\0\0\0\0\0\0\x7e", NF_WS_CLIENT, NF_EWS_PROTOCOL),
        RAW("cont first", "\x80\x00", NF_WS_CLIENT, NF_EWS_PROTOCOL),
        RAW("cont nofin first", "\x00\x00", NF_WS_CLIENT, NF_EWS_PROTOCOL),
        RAW("text in text",
            "\x01\x01"
            "a\x81\x01"
            "b",
            NF_WS_CLIENT, NF_EWS_PROTOCOL),
        RAW("binary in text",
            "\x01\x01"
            "a\x82\x01"
            "b",
            NF_WS_CLIENT, NF_EWS_PROTOCOL),
        RAW("cont after end",
            "\x81\x01"
            "a\x80\x01"
            "b",
            NF_WS_CLIENT, NF_EWS_PROTOCOL),
        RAW("64-bit msb", "\x82\x7f\x80\0\0\0\0\0\0\0", NF_WS_CLIENT, NF_EWS_PROTOCOL),
        RAW("bad utf8 text", "\x81\x02\xc0\xaf", NF_WS_CLIENT, NF_EWS_UTF8),
        RAW("truncated utf8", "\x81\x01\xce", NF_WS_CLIENT, NF_EWS_UTF8),
        RAW("truncated utf8 frag", "\x01\x01\xce\x00\x01\xba\x80\x01\xce", NF_WS_CLIENT, NF_EWS_UTF8),
        RAW("surrogate split", "\x01\x01\xed\x80\x02\xa0\x80", NF_WS_CLIENT, NF_EWS_UTF8),
        RAW("close 1 byte", "\x88\x01\x03", NF_WS_CLIENT, NF_EWS_PROTOCOL),
        RAW("close 1005", "\x88\x02\x03\xed", NF_WS_CLIENT, NF_EWS_PROTOCOL),
        RAW("close 999", "\x88\x02\x03\xe7", NF_WS_CLIENT, NF_EWS_PROTOCOL),
        RAW("close bad reason", "\x88\x03\x03\xe8\xff", NF_WS_CLIENT, NF_EWS_UTF8),
    };
    rec_t r = {0};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        bytes_t b = {0};
        put(&b, cases[i].bytes, cases[i].len);
        for (int whole = 0; whole < 2; whole++) {
            int rc = decode_all(&b, cases[i].role, whole, &r, NULL);
            if (rc != cases[i].want)
                fail_msg("%s: got %d want %d", cases[i].name, rc, cases[i].want);
        }
        free(b.p);
    }
    /* valid UTF-8 split across fragments, with a ping in the middle */
    bytes_t b = {0};
    put(&b, "\x01\x01\xf0\x89\x00\x00\x01\x9f\x80\x02\x98\x80", 12);
    assert_int_equal(decode_all(&b, NF_WS_CLIENT, 0, &r, NULL), 0);
    assert_string_equal(r.log, "B1 P: E ");
    assert_int_equal(decode_all(&b, NF_WS_CLIENT, 1, &r, NULL), 0);
    assert_string_equal(r.log, "P: M1:4 ");
    free(b.p);
    rec_reset(&r);
}

/* Invalid UTF-8 fails when the bad byte arrives, before the frame ends. */
static void test_utf8_fail_fast(void **state)
{
    (void)state;
    rec_t r = {0};
    nf_ws_decoder_t d;
    nf_ws_decoder_config_t cfg = {.role = NF_WS_CLIENT};
    d.data = &r;
    nf_ws_decoder_init(&d, &cfg, &stream_cbs);
    uint8_t hdr[4] = {0x81, 0x7e, 0x03, 0xe8}; /* 1000-byte text frame */
    assert_int_equal(nf_ws_decoder_feed(&d, hdr, 4), 0);
    uint8_t good[10] = "abcdefghij";
    assert_int_equal(nf_ws_decoder_feed(&d, good, 10), 0);
    uint8_t bad[3] = {'x', 0xf5, 'y'};
    assert_int_equal(nf_ws_decoder_feed(&d, bad, 3), NF_EWS_UTF8);
    assert_int_equal(nf_ws_decoder_close_code(&d), 1007);
    assert_int_equal(r.dlen, 10); /* nothing of the bad piece was delivered */
    assert_string_equal(r.log, "B1 ");
    nf_ws_decoder_free(&d);
    rec_reset(&r);
}

static void test_nonminimal(void **state)
{
    (void)state;
    rec_t r = {0};
    bytes_t b = {0};
    put(&b,
        "\x82\x7e\x00\x03"
        "abc",
        7);
    put(&b,
        "\x82\x7f\0\0\0\0\0\0\0\x02"
        "de",
        12);
    assert_int_equal(decode_all(&b, NF_WS_CLIENT, 1, &r, NULL), 0);
    assert_string_equal(r.log, "M2:3 M2:2 ");
    nf_ws_decoder_config_t strict = {.reject_nonminimal = 1};
    assert_int_equal(decode_all(&b, NF_WS_CLIENT, 1, &r, &strict), NF_EWS_PROTOCOL);
    free(b.p);
    rec_reset(&r);
}

static void test_limits(void **state)
{
    (void)state;
    rec_t r = {0};
    uint8_t pl[300];
    memset(pl, 'x', sizeof pl);
    nf_ws_decoder_config_t lim = {.max_frame = 100, .max_message = 250};
    for (int whole = 0; whole < 2; whole++) {
        /* a frame at the limit, then one byte over */
        bytes_t b = {0};
        frame(&b, NF_WS_FIN, NF_WS_OP_BINARY, 1, pl, 100);
        assert_int_equal(decode_all(&b, NF_WS_SERVER, whole, &r, &lim), 0);
        frame(&b, NF_WS_FIN, NF_WS_OP_BINARY, 1, pl, 101);
        assert_int_equal(decode_all(&b, NF_WS_SERVER, whole, &r, &lim), NF_EWS_TOOBIG);
        /* rejected at the header: the 101-byte payload never reached us */
        assert_int_equal(r.dlen, 100);
        free(b.p);
        /* message limit over fragments: 100 + 100 + 50 ok, + 51 not */
        b = (bytes_t){0};
        frame(&b, 0, NF_WS_OP_TEXT, 1, pl, 100);
        frame(&b, 0, NF_WS_OP_CONT, 1, pl, 100);
        frame(&b, NF_WS_FIN, NF_WS_OP_CONT, 1, pl, 50);
        assert_int_equal(decode_all(&b, NF_WS_SERVER, whole, &r, &lim), 0);
        assert_int_equal(r.dlen, 250);
        free(b.p);
        b = (bytes_t){0};
        frame(&b, 0, NF_WS_OP_TEXT, 1, pl, 100);
        frame(&b, 0, NF_WS_OP_CONT, 1, pl, 100);
        frame(&b, NF_WS_FIN, NF_WS_OP_CONT, 1, pl, 51);
        assert_int_equal(decode_all(&b, NF_WS_SERVER, whole, &r, &lim), NF_EWS_TOOBIG);
        assert_int_equal(nf_ws_close_code_for(NF_EWS_TOOBIG), 1009);
        free(b.p);
        /* control frames do not count towards the limits */
        b = (bytes_t){0};
        frame(&b, 0, NF_WS_OP_TEXT, 1, pl, 100);
        frame(&b, NF_WS_FIN, NF_WS_OP_PING, 1, pl, 125);
        frame(&b, NF_WS_FIN, NF_WS_OP_CONT, 1, pl, 100);
        assert_int_equal(decode_all(&b, NF_WS_SERVER, whole, &r, &lim), 0);
        free(b.p);
    }
    /* a huge declared length is refused at once (default limits) */
    bytes_t b = {0};
    put(&b, "\x82\x7f\x00\x00\x01\x00\x00\x00\x00\x00", 10);
    assert_int_equal(decode_all(&b, NF_WS_CLIENT, 1, &r, NULL), NF_EWS_TOOBIG);
    free(b.p);
    rec_reset(&r);
}

static void test_callback_reject_and_zero_copy(void **state)
{
    (void)state;
    rec_t r = {0};
    nf_ws_decoder_t d;
    nf_ws_decoder_config_t cfg = {.role = NF_WS_SERVER};
    d.data = &r;
    nf_ws_decoder_init(&d, &cfg, &whole_cbs);
    bytes_t b = {0};
    frame(&b, NF_WS_FIN, NF_WS_OP_TEXT, 1, "hello", 5);
    frame(&b, NF_WS_FIN, NF_WS_OP_TEXT, 1, "again", 5);
    assert_int_equal(nf_ws_decoder_feed(&d, b.p, b.len), 0);
    /* one-frame messages come straight from the fed buffer, unmasked */
    assert_ptr_equal(r.last_ptr, b.p + b.len - 5);
    assert_memory_equal(r.last_ptr, "again", 5);
    r.reject = NF_EWS_POLICY;
    b.len = 0;
    frame(&b, NF_WS_FIN, NF_WS_OP_TEXT, 1, "nope", 4);
    assert_int_equal(nf_ws_decoder_feed(&d, b.p, b.len), NF_EWS_POLICY);
    assert_int_equal(nf_ws_decoder_close_code(&d), 1008);
    assert_int_equal(nf_ws_decoder_feed(&d, b.p, b.len), NF_EWS_CLOSED);
    nf_ws_decoder_free(&d);
    /* streaming mode: on_message_end's verdict counts too */
    rec_reset(&r);
    r.reject = NF_EWS_POLICY;
    nf_ws_decoder_init(&d, &cfg, &stream_cbs);
    b.len = 0;
    frame(&b, NF_WS_FIN, NF_WS_OP_BINARY, 1, "x", 1);
    assert_int_equal(nf_ws_decoder_feed(&d, b.p, b.len), NF_EWS_POLICY);
    nf_ws_decoder_free(&d);
    assert_int_equal(nf_ws_decoder_init(&d, &(nf_ws_decoder_config_t){.role = 7}, NULL), -EINVAL);
    assert_int_equal(nf_ws_decoder_init(&d, NULL, NULL), -EINVAL);
    free(b.p);
    rec_reset(&r);
}

/* ---- encoder ----------------------------------------------------------- */

static void counter_key(void *arg, uint8_t key[4])
{
    unsigned *n = arg;
    (*n)++;
    key[0] = (uint8_t)*n;
    key[1] = 0x5a;
    key[2] = (uint8_t)(*n >> 8);
    key[3] = 0xa5;
}

static void test_encoder_round_trip(void **state)
{
    (void)state;
    static const size_t lens[] = {0, 1, 125, 126, 1000, 65535, 65536, 100000};
    static const size_t frags[] = {0, 1, 7, 125, 126, 4096, 65536};
    rec_t r = {0};
    uint8_t *msg = malloc(100000);
    for (size_t i = 0; i < 100000; i++)
        msg[i] = (uint8_t)('A' + i % 50);
    for (int role = 0; role < 2; role++)
        for (size_t f = 0; f < sizeof frags / sizeof frags[0]; f++)
            for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++) {
                size_t len = lens[li];
                if (frags[f] == 1 && len > 1000)
                    continue;
                unsigned nkeys = 0;
                nf_ws_encoder_t e;
                nf_ws_encoder_config_t ec = {
                    .role = role, .fragment_size = frags[f], .mask_key = counter_key, .mask_arg = &nkeys};
                assert_int_equal(nf_ws_encoder_init(&e, &ec), 0);
                size_t need = 0, wrote = 0;
                assert_int_equal(nf_ws_encode_prepare(&e, NF_WS_OP_TEXT, msg, len, &need), 0);
                uint8_t *out = malloc(need + 1);
                /* too small: ENOBUFS, stays prepared */
                if (need) {
                    assert_int_equal(nf_ws_encode_write(&e, out, need - 1, &wrote), -ENOBUFS);
                    assert_int_equal(wrote, need);
                }
                assert_int_equal(nf_ws_encode_write(&e, out, need, &wrote), 0);
                assert_int_equal(wrote, need);
                assert_int_equal(nf_ws_encode_write(&e, out, need, &wrote), -EINVAL);
                size_t nframes = frags[f] && len ? (len + frags[f] - 1) / frags[f] : 1;
                assert_int_equal(nkeys, role == NF_WS_CLIENT ? nframes : 0);
                /* the peer decodes it (peer role is the opposite one) */
                bytes_t b = {out, wrote, need + 1};
                nf_ws_decoder_config_t dc = {.reject_nonminimal = 1};
                int peer = role == NF_WS_CLIENT ? NF_WS_SERVER : NF_WS_CLIENT;
                if (len <= 1000 || frags[f] == 0 || frags[f] >= 4096) {
                    assert_int_equal(decode_all(&b, peer, 1, &r, &dc), 0);
                    assert_int_equal(r.dlen, len);
                    if (len)
                        assert_memory_equal(r.data, msg, len);
                }
                free(out);
                nf_ws_encoder_free(&e);
            }
    free(msg);
    rec_reset(&r);
}

static void test_encoder_misc(void **state)
{
    (void)state;
    nf_ws_encoder_t e;
    nf_ws_encoder_config_t ec = {.role = NF_WS_CLIENT, .fragment_size = 2};
    assert_int_equal(nf_ws_encoder_init(&e, &ec), 0);
    uint8_t out[300];
    size_t n = 0;
    /* control frames are never fragmented; over 125 bytes is refused */
    assert_int_equal(nf_ws_encode(&e, NF_WS_OP_PING, "hello", 5, out, sizeof out, &n), 0);
    assert_int_equal(n, 2 + 4 + 5);
    assert_int_equal(out[0], 0x89);
    assert_int_equal(out[1], 0x85);
    uint8_t big[126] = {0};
    assert_int_equal(nf_ws_encode(&e, NF_WS_OP_PONG, big, 126, out, sizeof out, &n), -EINVAL);
    assert_int_equal(nf_ws_encode(&e, NF_WS_OP_CONT, "a", 1, out, sizeof out, &n), -EINVAL);
    assert_int_equal(nf_ws_encode(&e, 3, "a", 1, out, sizeof out, &n), -EINVAL);
    /* getrandom keys differ from frame to frame */
    assert_int_equal(nf_ws_encode(&e, NF_WS_OP_BINARY, "abcdef", 6, out, sizeof out, &n), 0);
    assert_int_equal(n, 3 * (2 + 4 + 2));
    assert_int_equal(out[0], 0x02);
    assert_int_equal(out[8], 0x00);
    assert_int_equal(out[16], 0x80);
    int same = memcmp(out + 2, out + 10, 4) == 0 && memcmp(out + 10, out + 18, 4) == 0;
    assert_false(same);
    /* ENOBUFS via nf_ws_encode reports the size and keeps the message */
    assert_int_equal(nf_ws_encode(&e, NF_WS_OP_TEXT, "xyz", 3, out, 5, &n), -ENOBUFS);
    assert_int_equal(n, 2 * 6 + 3);
    assert_int_equal(nf_ws_encode_write(&e, out, sizeof out, &n), 0);
    assert_int_equal(n, 15);
    assert_int_equal(nf_ws_encoder_init(&e, &(nf_ws_encoder_config_t){.role = 3}), -EINVAL);
    /* server frames are unmasked */
    nf_ws_encoder_config_t sc = {.role = NF_WS_SERVER};
    nf_ws_encoder_init(&e, &sc);
    assert_int_equal(nf_ws_encode(&e, NF_WS_OP_TEXT, "hi", 2, out, sizeof out, &n), 0);
    assert_int_equal(n, 4);
    assert_memory_equal(out, "\x81\x02hi", 4);
    assert_int_equal(nf_ws_encode(&e, NF_WS_OP_CLOSE, "\x03\xe8", 2, out, sizeof out, &n), 0);
    assert_memory_equal(out, "\x88\x02\x03\xe8", 4);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_length_form),
        cmocka_unit_test(test_fragments_and_controls),
        cmocka_unit_test(test_close_frames),
        cmocka_unit_test(test_protocol_errors),
        cmocka_unit_test(test_utf8_fail_fast),
        cmocka_unit_test(test_nonminimal),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_callback_reject_and_zero_copy),
        cmocka_unit_test(test_encoder_round_trip),
        cmocka_unit_test(test_encoder_misc),
    };
    return cmocka_run_group_tests_name("ws_decoder", tests, NULL, NULL);
}
