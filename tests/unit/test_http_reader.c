/* Unit tests: the HTTP/1.1 request stream reader (src/http/reader.c):
 * bodies, chunked coding, trailers, pipelining, keep-alive, the framing
 * rules of RFC 9112 6.3 and the limits. Every input is fed whole, cut in two
 * at every byte, and byte by byte: the transcript of events must be the
 * same each way. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "netframe/http.h"

typedef struct {
    char out[8192];
    size_t n;
    char body[4096];
    size_t blen;
} tr_t;

static void emit(tr_t *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(t->out + t->n, sizeof(t->out) - t->n, fmt, ap);
    va_end(ap);
    if (k > 0)
        t->n += (size_t)k;
    if (t->n >= sizeof(t->out))
        t->n = sizeof(t->out) - 1;
}

/* Feeds s[0..len) in pieces ending at the offsets in cuts (then the rest),
 * writing a transcript: H(method target minor cl|chunked ka ex up) for a
 * head, B(body) + T(name=value...) + E for a message, X(status) for an
 * error (feeding stops there). */
static void run(const char *s, size_t len, const size_t *cuts, size_t ncuts, const nf_http_reader_config_t *cfg,
                tr_t *t)
{
    nf_http_reader_t r;
    assert_int_equal(nf_http_reader_init(&r, cfg), 0);
    memset(t, 0, sizeof(*t));
    size_t from = 0;
    for (size_t k = 0; k <= ncuts; k++) {
        size_t to = k < ncuts ? cuts[k] : len;
        const char *p = s + from;
        size_t n = to - from;
        for (;;) {
            nf_http_event_t ev;
            size_t used = nf_http_reader_next(&r, p, n, &ev);
            assert_true(used <= n);
            p += used;
            n -= used;
            if (ev.type == NF_HTTP_EV_MORE) {
                assert_int_equal(n, 0);
                break;
            }
            if (ev.type == NF_HTTP_EV_ERROR) {
                emit(t, "X(%d)", ev.status);
                nf_http_reader_free(&r);
                return;
            }
            if (ev.type == NF_HTTP_EV_HEAD) {
                emit(t, "H(%.*s %.*s 1.%d %s%llu ka=%d ex=%d up=%d)", (int)r.req.method_len, r.req.method,
                     (int)r.req.target_len, r.req.target, r.req.minor_version, r.chunked ? "chunked" : "",
                     (unsigned long long)r.content_length, r.keep_alive, r.expect_continue, r.upgrade);
            } else if (ev.type == NF_HTTP_EV_BODY) {
                assert_true(ev.len > 0);
                assert_true(t->blen + ev.len < sizeof(t->body));
                memcpy(t->body + t->blen, ev.data, ev.len);
                t->blen += ev.len;
            } else if (ev.type == NF_HTTP_EV_END) {
                emit(t, "B(%.*s)", (int)t->blen, t->body);
                assert_int_equal(r.body_read, t->blen);
                for (size_t i = 0; i < r.num_trailers; i++)
                    emit(t, "T(%.*s=%.*s)", (int)r.trailers[i].name_len, r.trailers[i].name,
                         (int)r.trailers[i].value_len, r.trailers[i].value);
                emit(t, "E");
                t->blen = 0;
            }
            if (n == 0 && ev.type != NF_HTTP_EV_HEAD && ev.type != NF_HTTP_EV_BODY)
                break;
        }
        from = to;
    }
    /* a message with no body ends without more input */
    nf_http_event_t ev;
    while (nf_http_reader_next(&r, "", 0, &ev) == 0 && ev.type == NF_HTTP_EV_END) {
        emit(t, "B(%.*s)", (int)t->blen, t->body);
        emit(t, "E");
        t->blen = 0;
    }
    if (ev.type == NF_HTTP_EV_ERROR)
        emit(t, "X(%d)", ev.status);
    nf_http_reader_free(&r);
}

/* Whole, every two-piece cut, three-piece cuts around the middle, and
 * byte by byte: all must give `want`. */
static void check_cfg(const char *s, const char *want, const nf_http_reader_config_t *cfg)
{
    size_t len = strlen(s);
    tr_t t;
    run(s, len, NULL, 0, cfg, &t);
    if (strcmp(t.out, want) != 0)
        fail_msg("whole: got\n  %s\nwant\n  %s\nfor %s", t.out, want, s);
    for (size_t c = 0; c <= len; c++) {
        run(s, len, &c, 1, cfg, &t);
        if (strcmp(t.out, want) != 0)
            fail_msg("cut at %zu: got\n  %s\nwant\n  %s", c, t.out, want);
    }
    for (size_t c = 1; c + 1 < len; c += 3) {
        size_t cuts[2] = {c, c + 1 + (len - c) / 2};
        if (cuts[1] > len)
            cuts[1] = len;
        run(s, len, cuts, 2, cfg, &t);
        if (strcmp(t.out, want) != 0)
            fail_msg("cuts at %zu,%zu: got\n  %s\nwant\n  %s", cuts[0], cuts[1], t.out, want);
    }
    size_t *all = malloc((len + 1) * sizeof(size_t));
    for (size_t c = 0; c < len; c++)
        all[c] = c + 1;
    run(s, len, all, len, cfg, &t);
    free(all);
    if (strcmp(t.out, want) != 0)
        fail_msg("byte by byte: got\n  %s\nwant\n  %s", t.out, want);
}

static void check(const char *s, const char *want) { check_cfg(s, want, NULL); }

#define H11 "Host: a\r\n"

static void test_no_body(void **st)
{
    (void)st;
    check("GET / HTTP/1.1\r\n" H11 "\r\n", "H(GET / 1.1 0 ka=1 ex=0 up=0)B()E");
    check("GET /x HTTP/1.0\r\n\r\n", "H(GET /x 1.0 0 ka=0 ex=0 up=0)B()E");
}

static void test_content_length(void **st)
{
    (void)st;
    check("POST /p HTTP/1.1\r\n" H11 "Content-Length: 5\r\n\r\nhello", "H(POST /p 1.1 5 ka=1 ex=0 up=0)B(hello)E");
    check("POST /p HTTP/1.1\r\n" H11 "Content-Length: 0\r\n\r\n", "H(POST /p 1.1 0 ka=1 ex=0 up=0)B()E");
    /* the same length twice, as a list or as two fields (RFC 9112 6.3) */
    check("POST / HTTP/1.1\r\n" H11 "Content-Length: 3, 3\r\n\r\nabc", "H(POST / 1.1 3 ka=1 ex=0 up=0)B(abc)E");
    check("POST / HTTP/1.1\r\n" H11 "Content-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
          "H(POST / 1.1 3 ka=1 ex=0 up=0)B(abc)E");
    /* an incomplete body is not an end */
    check("POST / HTTP/1.1\r\n" H11 "Content-Length: 10\r\n\r\nabc", "H(POST / 1.1 10 ka=1 ex=0 up=0)");
}

static void test_chunked(void **st)
{
    (void)st;
    check("POST / HTTP/1.1\r\n" H11 "Transfer-Encoding: chunked\r\n\r\n"
          "5\r\nhello\r\n6;name=value;x\r\n world\r\nA \t; ext\r\n0123456789\r\n0\r\n\r\n",
          "H(POST / 1.1 chunked0 ka=1 ex=0 up=0)B(hello world0123456789)E");
    /* upper-case hex, leading zeros */
    check("POST / HTTP/1.1\r\n" H11 "Transfer-Encoding: chunked\r\n\r\n000B\r\nhello world\r\n00\r\n\r\n",
          "H(POST / 1.1 chunked0 ka=1 ex=0 up=0)B(hello world)E");
    /* a list naming chunked last, case-insensitive */
    check("POST / HTTP/1.1\r\n" H11 "Transfer-Encoding: , CHUNKED\r\n\r\n0\r\n\r\n",
          "H(POST / 1.1 chunked0 ka=1 ex=0 up=0)B()E");
}

static void test_trailers(void **st)
{
    (void)st;
    check("POST / HTTP/1.1\r\n" H11 "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-Sum: 42\r\nY:  b \r\n\r\n",
          "H(POST / 1.1 chunked0 ka=1 ex=0 up=0)B(abc)T(X-Sum=42)T(Y=b)E");
    /* malformed trailers: obs-fold, bare LF, bare CR, no colon */
    const char *pre = "POST / HTTP/1.1\r\n" H11 "Transfer-Encoding: chunked\r\n\r\n0\r\n";
    const char *bad[] = {"X: a\r\n b\r\n\r\n", "X: a\n\r\n", "X: a\rb\r\n\r\n", "X a\r\n\r\n", "\n"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char s[512];
        snprintf(s, sizeof s, "%s%s", pre, bad[i]);
        check(s, "H(POST / 1.1 chunked0 ka=1 ex=0 up=0)X(400)");
    }
    /* bounded: a trailer section over max_trailer is 431 */
    nf_http_reader_config_t cfg = {.max_trailer = 32};
    check_cfg("POST / HTTP/1.1\r\n" H11
              "Transfer-Encoding: chunked\r\n\r\n0\r\nX: 0123456789012345678901234567\r\n\r\n",
              "H(POST / 1.1 chunked0 ka=1 ex=0 up=0)X(431)", &cfg);
    check_cfg("POST / HTTP/1.1\r\n" H11 "Transfer-Encoding: chunked\r\n\r\n0\r\nX: 01234567890123456789012\r\n\r\n",
              "H(POST / 1.1 chunked0 ka=1 ex=0 up=0)B()T(X=01234567890123456789012)E", &cfg);
    /* and by the field count */
    nf_http_reader_config_t cfg2 = {.max_headers = 2};
    check_cfg("POST / HTTP/1.1\r\n" H11 "Transfer-Encoding: chunked\r\n\r\n0\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n",
              "H(POST / 1.1 chunked0 ka=1 ex=0 up=0)X(431)", &cfg2);
}

static void test_pipelined(void **st)
{
    (void)st;
    check("GET /1 HTTP/1.1\r\n" H11 "\r\n"
          "POST /2 HTTP/1.1\r\n" H11 "Content-Length: 2\r\n\r\nab"
          "POST /3 HTTP/1.1\r\n" H11 "Transfer-Encoding: chunked\r\n\r\n1\r\nc\r\n0\r\nT: t\r\n\r\n"
          "\r\nGET /4 HTTP/1.1\r\n" H11 "Connection: close\r\n\r\n",
          "H(GET /1 1.1 0 ka=1 ex=0 up=0)B()E"
          "H(POST /2 1.1 2 ka=1 ex=0 up=0)B(ab)E"
          "H(POST /3 1.1 chunked0 ka=1 ex=0 up=0)B(c)T(T=t)E"
          "H(GET /4 1.1 0 ka=0 ex=0 up=0)B()E");
}

static void test_keep_alive(void **st)
{
    (void)st;
    check("GET / HTTP/1.1\r\n" H11 "Connection: close\r\n\r\n", "H(GET / 1.1 0 ka=0 ex=0 up=0)B()E");
    check("GET / HTTP/1.1\r\n" H11 "Connection: foo, Close\r\n\r\n", "H(GET / 1.1 0 ka=0 ex=0 up=0)B()E");
    check("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", "H(GET / 1.0 0 ka=1 ex=0 up=0)B()E");
    check("GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n", "H(GET / 1.0 0 ka=0 ex=0 up=0)B()E");
    check("GET / HTTP/1.0\r\n\r\n", "H(GET / 1.0 0 ka=0 ex=0 up=0)B()E");
    /* Expect and Upgrade */
    check("PUT / HTTP/1.1\r\n" H11 "Expect: 100-Continue\r\nContent-Length: 1\r\n\r\nx",
          "H(PUT / 1.1 1 ka=1 ex=1 up=0)B(x)E");
    check("PUT / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\nx", "H(PUT / 1.0 1 ka=0 ex=0 up=0)B(x)E");
    check("GET /ws HTTP/1.1\r\n" H11 "Connection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\r\n",
          "H(GET /ws 1.1 0 ka=1 ex=0 up=1)B()E");
}

/* RFC 9112 6.3 and 6.1: framing that could be read two ways is refused. */
static void test_smuggling(void **st)
{
    (void)st;
    const char *x400[] = {
        /* both Content-Length and Transfer-Encoding, either order */
        "POST / HTTP/1.1\r\n" H11 "Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
        "POST / HTTP/1.1\r\n" H11 "Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
        /* two different lengths */
        "POST / HTTP/1.1\r\n" H11 "Content-Length: 3\r\nContent-Length: 4\r\n\r\n",
        "POST / HTTP/1.1\r\n" H11 "Content-Length: 3, 4\r\n\r\n",
        /* lengths that are not 1*DIGIT */
        "POST / HTTP/1.1\r\n" H11 "Content-Length: -1\r\n\r\n",
        "POST / HTTP/1.1\r\n" H11 "Content-Length: +3\r\n\r\n",
        "POST / HTTP/1.1\r\n" H11 "Content-Length: 0x3\r\n\r\n",
        "POST / HTTP/1.1\r\n" H11 "Content-Length:\r\n\r\n",
        "POST / HTTP/1.1\r\n" H11 "Content-Length: 3,\r\n\r\n",
        "POST / HTTP/1.1\r\n" H11 "Content-Length: 99999999999999999999999\r\n\r\n",
        /* Transfer-Encoding whose last coding is not chunked, or chunked twice */
        "POST / HTTP/1.1\r\n" H11 "Transfer-Encoding: chunked, gzip\r\n\r\n",
        "POST / HTTP/1.1\r\n" H11 "Transfer-Encoding: gzip\r\n\r\n",
        "POST / HTTP/1.1\r\n" H11 "Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n",
        "POST / HTTP/1.1\r\n" H11 "Transfer-Encoding: chunked, chunked\r\n\r\n",
        "POST / HTTP/1.1\r\n" H11 "Transfer-Encoding: \r\n\r\n",
        "POST / HTTP/1.1\r\n" H11 "Transfer-Encoding: xchunked\r\n\r\n",
        /* Transfer-Encoding in HTTP/1.0 */
        "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
        /* obs-fold, bare LF, bare CR, space before the colon */
        "POST / HTTP/1.1\r\n" H11 "Transfer-Encoding:\r\n chunked\r\n\r\n",
        "POST / HTTP/1.1\r\n" H11 "Content-Length: 1\n\r\n",
        "POST / HTTP/1.1\n" H11 "\r\n",
        "POST / HTTP/1.1\r\n" H11 "X: a\rContent-Length: 1\r\n\r\n",
        "POST / HTTP/1.1\r\n" H11 "Content-Length : 1\r\n\r\n",
        /* no Host in 1.1, two Hosts */
        "GET / HTTP/1.1\r\n\r\n",
        "GET / HTTP/1.1\r\n" H11 H11 "\r\n",
    };
    for (size_t i = 0; i < sizeof(x400) / sizeof(x400[0]); i++)
        check(x400[i], "X(400)");
    /* a coding we do not implement before chunked: 501 */
    check("POST / HTTP/1.1\r\n" H11 "Transfer-Encoding: gzip, chunked\r\n\r\n", "X(501)");
    check("POST / HTTP/1.1\r\n" H11 "Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n", "X(501)");
}

static void test_chunk_errors(void **st)
{
    (void)st;
    const char *pre = "POST / HTTP/1.1\r\n" H11 "Transfer-Encoding: chunked\r\n\r\n";
    const char *bad[] = {
        "\r\n",                  /* no size */
        "x\r\n",                 /* not hex */
        "-1\r\n",                /* sign */
        "1 2\r\n",               /* junk after BWS */
        "1\n",                   /* bare LF after the size */
        "1\rx",                  /* bare CR */
        "1;a\nb\r\n",            /* LF in an extension */
        "1;a\x01\r\n",           /* control in an extension */
        "1\r\nab\r\n",           /* data longer than the size */
        "1\r\na\n",              /* data not followed by CRLF */
        "1\r\na\rx",             /* data not followed by CRLF */
        "10000000000000000\r\n", /* 2^64: overflow */
        "fffffffffffffffff\r\n", /* 17 digits */
        "0\r\n\n",               /* bare LF ending the trailers */
    };
    char want[128];
    snprintf(want, sizeof want, "H(POST / 1.1 chunked0 ka=1 ex=0 up=0)X(400)");
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char s[512];
        snprintf(s, sizeof s, "%s%s", pre, bad[i]);
        nf_http_reader_config_t cfg = {.max_body = NF_HTTP_UNLIMITED};
        check_cfg(s, want, &cfg);
    }
    /* the chunk-size line is bounded (leading zeros, long extensions) */
    char s[4096];
    int n = snprintf(s, sizeof s, "%s", pre);
    memset(s + n, '0', 1100);
    strcpy(s + n + 1100, "1\r\na\r\n0\r\n\r\n");
    tr_t t;
    run(s, strlen(s), NULL, 0, NULL, &t);
    assert_string_equal(t.out, want);
}

static void test_limits(void **st)
{
    (void)st;
    nf_http_reader_config_t cfg = {.max_body = 4};
    /* Content-Length over max_body: 413 right after the head */
    check_cfg("POST / HTTP/1.1\r\n" H11 "Content-Length: 5\r\n\r\nhello", "H(POST / 1.1 5 ka=1 ex=0 up=0)X(413)", &cfg);
    check_cfg("POST / HTTP/1.1\r\n" H11 "Content-Length: 4\r\n\r\nhell", "H(POST / 1.1 4 ka=1 ex=0 up=0)B(hell)E",
              &cfg);
    /* chunked: the sum of the chunks */
    check_cfg("POST / HTTP/1.1\r\n" H11 "Transfer-Encoding: chunked\r\n\r\n2\r\nab\r\n3\r\ncde\r\n0\r\n\r\n",
              "H(POST / 1.1 chunked0 ka=1 ex=0 up=0)X(413)", &cfg);
    check_cfg("POST / HTTP/1.1\r\n" H11 "Transfer-Encoding: chunked\r\n\r\n2\r\nab\r\n2\r\ncd\r\n0\r\n\r\n",
              "H(POST / 1.1 chunked0 ka=1 ex=0 up=0)B(abcd)E", &cfg);
    /* head limits: 414 (request line), 431 (a field, the head, the count), 505 */
    nf_http_reader_config_t lim = {.head = {.max_line = 32, .max_field = 32, .max_head = 96}, .max_headers = 3};
    check_cfg("GET /0123456789012345678901234567890 HTTP/1.1\r\n" H11 "\r\n", "X(414)", &lim);
    check_cfg("GET / HTTP/1.1\r\n" H11 "X-Long: 01234567890123456789012345\r\n\r\n", "X(431)", &lim);
    check_cfg("GET / HTTP/1.1\r\n" H11 "A: 1\r\nB: 2\r\nC: 3\r\n\r\n", "X(431)", &lim);
    check_cfg("GET / HTTP/1.1\r\n" H11 "A: 0123456789012345678\r\nB: 0123456789012345678\r\nC: 0123\r\n\r\n", "X(431)",
              &lim);
    /* a head that never ends is 431 at max_head, whatever the cuts */
    check_cfg("GET / HTTP/1.1\r\nA: 0123456789012345678\r\nB: 0123456789012345678\r\nC: 01234567890123456789012345678",
              "X(431)", &lim);
    /* a bare CR where the line would end over the limit: 431 whether or not
     * the byte after it has arrived (found by fuzz_http_stream) */
    check_cfg("GET / HTTP/1.1\r\n" H11 "X: aaaaaaaaaaaaaaaaaaaaaaaaaaaa\rZ\r\n\r\n", "X(431)", &lim);
    check("GET / HTTP/2.0\r\n" H11 "\r\n", "X(505)");
    check("GET / HTTP/1.1\r\n" H11 "\r\n", "H(GET / 1.1 0 ka=1 ex=0 up=0)B()E");
    /* max_body may be raised between the head and the body */
    nf_http_reader_t r;
    assert_int_equal(nf_http_reader_init(&r, &cfg), 0);
    const char *s = "POST / HTTP/1.1\r\n" H11 "Content-Length: 6\r\n\r\nabcdef";
    nf_http_event_t ev;
    size_t used = nf_http_reader_next(&r, s, strlen(s), &ev);
    assert_int_equal(ev.type, NF_HTTP_EV_HEAD);
    r.max_body = 100;
    size_t u2 = nf_http_reader_next(&r, s + used, strlen(s) - used, &ev);
    assert_int_equal(ev.type, NF_HTTP_EV_BODY);
    assert_int_equal(u2, 6);
    assert_int_equal(nf_http_reader_next(&r, "", 0, &ev), 0);
    assert_int_equal(ev.type, NF_HTTP_EV_END);
    /* errors stick */
    assert_int_equal(nf_http_reader_next(&r, "x\r\n", 3, &ev), 0);
    assert_int_equal(ev.type, NF_HTTP_EV_ERROR);
    assert_int_equal(ev.status, 400);
    assert_int_equal(nf_http_reader_next(&r, "GET", 3, &ev), 0);
    assert_int_equal(ev.type, NF_HTTP_EV_ERROR);
    nf_http_reader_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_body),   cmocka_unit_test(test_content_length), cmocka_unit_test(test_chunked),
        cmocka_unit_test(test_trailers),  cmocka_unit_test(test_pipelined),      cmocka_unit_test(test_keep_alive),
        cmocka_unit_test(test_smuggling), cmocka_unit_test(test_chunk_errors),   cmocka_unit_test(test_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
