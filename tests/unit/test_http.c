/* Unit tests: HTTP/1.1 head parser and writer (src/http). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "netframe/http.h"

#define MAXH 32

static int req(const char *s, nf_http_request_t *r, nf_http_header_t *h)
{
    return nf_http_parse_request(s, strlen(s), 0, r, h, MAXH, NULL);
}

static int res(const char *s, nf_http_response_t *r, nf_http_header_t *h)
{
    return nf_http_parse_response(s, strlen(s), 0, r, h, MAXH, NULL);
}

static int req_status(const char *s)
{
    nf_http_request_t r;
    nf_http_header_t h[MAXH];
    return nf_http_error_status(req(s, &r, h));
}

static int eqs(const char *p, size_t n, const char *lit) { return n == strlen(lit) && memcmp(p, lit, n) == 0; }

static void test_upgrade_request(void **state)
{
    (void)state;
    const char *s = "GET /chat?x=1 HTTP/1.1\r\n"
                    "Host: example.com\r\n"
                    "Upgrade: websocket\r\n"
                    "Connection: keep-alive, Upgrade\r\n"
                    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                    "Sec-WebSocket-Version: 13\r\n"
                    "X-Empty:\r\n"
                    "X-Spaces: \t value with  inner  spaces \t \r\n"
                    "\r\nBODY";
    nf_http_request_t r;
    nf_http_header_t h[MAXH];
    int n = req(s, &r, h);
    assert_int_equal(n, (int)(strstr(s, "BODY") - s));
    assert_true(eqs(r.method, r.method_len, "GET"));
    assert_true(eqs(r.target, r.target_len, "/chat?x=1"));
    assert_int_equal(r.minor_version, 1);
    assert_int_equal(r.num_headers, 7);
    assert_ptr_equal(r.headers, h);
    const nf_http_header_t *k = nf_http_find_header(h, r.num_headers, "sec-websocket-KEY");
    assert_non_null(k);
    assert_true(eqs(k->value, k->value_len, "dGhlIHNhbXBsZSBub25jZQ=="));
    /* zero-copy: views into the input */
    assert_true(k->value > s && k->value < s + strlen(s));
    const nf_http_header_t *e = nf_http_find_header(h, r.num_headers, "x-empty");
    assert_non_null(e);
    assert_int_equal(e->value_len, 0);
    const nf_http_header_t *sp = nf_http_find_header(h, r.num_headers, "X-SPACES");
    assert_true(eqs(sp->value, sp->value_len, "value with  inner  spaces"));
    assert_null(nf_http_find_header(h, r.num_headers, "cookie"));
    assert_true(nf_http_headers_have_token(h, r.num_headers, "connection", "upgrade"));
    assert_true(nf_http_headers_have_token(h, r.num_headers, "CONNECTION", "Keep-Alive"));
    assert_false(nf_http_headers_have_token(h, r.num_headers, "connection", "close"));
    assert_true(nf_http_headers_have_token(h, r.num_headers, "upgrade", "WebSocket"));
}

static void test_list_tokens(void **state)
{
    (void)state;
    const char *v = " , keep-alive ,,\tUpgrade\t, upgrade-insecure ,";
    assert_true(nf_http_list_has_token(v, strlen(v), "upgrade"));
    assert_true(nf_http_list_has_token(v, strlen(v), "KEEP-ALIVE"));
    assert_true(nf_http_list_has_token(v, strlen(v), "Upgrade-Insecure"));
    assert_false(nf_http_list_has_token(v, strlen(v), "upgrad"));
    assert_false(nf_http_list_has_token(v, strlen(v), "keep"));
    assert_false(nf_http_list_has_token(v, strlen(v), ""));
    assert_false(nf_http_list_has_token("", 0, "upgrade"));
    assert_true(nf_http_list_has_token("Upgrade", 7, "upgrade"));
    /* only the given length is read */
    assert_false(nf_http_list_has_token("Upgrade", 6, "upgrade"));
}

static void test_incremental(void **state)
{
    (void)state;
    const char *s = "GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n";
    size_t len = strlen(s);
    nf_http_request_t r;
    nf_http_header_t h[MAXH];
    /* every prefix is incomplete, with and without last_len */
    size_t last = 0;
    for (size_t i = 0; i < len; i++) {
        assert_int_equal(nf_http_parse_request(s, i, 0, &r, h, MAXH, NULL), NF_EHTTP_INCOMPLETE);
        int rc = nf_http_parse_request(s, i, last, &r, h, MAXH, NULL);
        assert_int_equal(rc, NF_EHTTP_INCOMPLETE);
        last = i;
    }
    assert_int_equal(nf_http_parse_request(s, len, last, &r, h, MAXH, NULL), (int)len);
    assert_int_equal(r.num_headers, 2);
    /* the same for a response */
    const char *t = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n";
    nf_http_response_t rs;
    last = 0;
    for (size_t i = 0; i < strlen(t); i++) {
        assert_int_equal(nf_http_parse_response(t, i, last, &rs, h, MAXH, NULL), NF_EHTTP_INCOMPLETE);
        last = i;
    }
    assert_int_equal(nf_http_parse_response(t, strlen(t), last, &rs, h, MAXH, NULL), (int)strlen(t));
}

/* Feeds s byte by byte with last_len; returns the first answer that is not
 * NF_EHTTP_INCOMPLETE (or INCOMPLETE at the end). */
static int feed_bytewise(const char *s, size_t len, const nf_http_limits_t *lim)
{
    nf_http_request_t r;
    nf_http_header_t h[MAXH];
    size_t last = 0;
    for (size_t i = 1; i <= len; i++) {
        int rc = nf_http_parse_request(s, i, last, &r, h, MAXH, lim);
        if (rc != NF_EHTTP_INCOMPLETE)
            return rc;
        last = i;
    }
    return NF_EHTTP_INCOMPLETE;
}

/* The answer does not depend on how the bytes were cut: errors inside lines
 * that end before the head does are found as soon as the line ends, not
 * deferred to a head that never completes (found by fuzz_http_request). */
static void test_incremental_errors(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        size_t len;
        int want;
    } cases[] = {
        {"GET / HTTP/1.1\nHost: a\n\n", 24, NF_EHTTP_BAD},              /* bare LF */
        {"GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n", 29, NF_EHTTP_BAD},     /* bare CR */
        {"GET / HTTP/1.1\r\nX: a\0b\r\nHost: a\r\n", 33, NF_EHTTP_BAD}, /* NUL, head not complete */
        {"GET / HTTP/2.0\r\nHost: a\r\n", 25, NF_EHTTP_VERSION},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        nf_http_request_t r;
        nf_http_header_t h[MAXH];
        int whole = nf_http_parse_request(cases[i].s, cases[i].len, 0, &r, h, MAXH, NULL);
        int pieces = feed_bytewise(cases[i].s, cases[i].len, NULL);
        if (whole != cases[i].want || pieces != cases[i].want)
            fail_msg("case %zu: whole %d, byte by byte %d, want %d", i, whole, pieces, cases[i].want);
    }
    /* a request line past max_line: 414 at the same byte either way */
    char line[200];
    memset(line, 'a', sizeof line);
    memcpy(line, "GET /", 5);
    nf_http_limits_t lim = {64, 0, 0};
    assert_int_equal(feed_bytewise(line, sizeof line, &lim), NF_EHTTP_URITOOLONG);
    nf_http_request_t r;
    nf_http_header_t h[MAXH];
    assert_int_equal(nf_http_parse_request(line, 64, 0, &r, h, MAXH, &lim), NF_EHTTP_URITOOLONG);
    assert_int_equal(nf_http_parse_request(line, 63, 0, &r, h, MAXH, &lim), NF_EHTTP_INCOMPLETE);
}

/* max_head at the boundary (issue 13 part 5c): heads of max_head - 1,
 * max_head and max_head + 1 bytes, and the same bytes without their final
 * empty line, give one answer at every length whatever the earlier cut: the
 * answer for buf[0..len) with last_len = cut (after an INCOMPLETE at cut)
 * equals the one-shot answer, and so does feeding byte by byte. */
static int parse_any(int response, const char *b, size_t len, size_t last, const nf_http_limits_t *lim)
{
    nf_http_request_t rq;
    nf_http_response_t rs;
    nf_http_header_t h[MAXH];
    return response ? nf_http_parse_response(b, len, last, &rs, h, MAXH, lim)
                    : nf_http_parse_request(b, len, last, &rq, h, MAXH, lim);
}

static void check_every_cut(int response, const char *b, size_t total, const nf_http_limits_t *lim, int want)
{
    for (size_t len = 0; len <= total; len++) {
        int one = parse_any(response, b, len, 0, lim);
        for (size_t cut = 1; cut < len; cut++) {
            if (parse_any(response, b, cut, 0, lim) != NF_EHTTP_INCOMPLETE)
                continue;
            int two = parse_any(response, b, len, cut, lim);
            if (two != one)
                fail_msg("%s of %zu bytes: at %zu bytes after a cut at %zu: %d, one-shot %d",
                         response ? "response" : "request", total, len, cut, two, one);
        }
        /* byte by byte, last_len following along while INCOMPLETE */
        int rc = NF_EHTTP_INCOMPLETE;
        size_t last = 0;
        for (size_t i = 1; i <= len && rc == NF_EHTTP_INCOMPLETE; i++) {
            rc = parse_any(response, b, i, last, lim);
            last = i;
        }
        int direct = len ? parse_any(response, b, len, 0, lim) : NF_EHTTP_INCOMPLETE;
        if (len && rc == NF_EHTTP_INCOMPLETE && direct != NF_EHTTP_INCOMPLETE)
            fail_msg("byte by byte to %zu of %zu: INCOMPLETE, one-shot %d", len, total, direct);
    }
    assert_int_equal(parse_any(response, b, total, 0, lim), want);
}

static void test_max_head_boundary(void **state)
{
    (void)state;
    enum { MH = 128 };
    const nf_http_limits_t lim = {0, 0, MH};
    for (int response = 0; response <= 1; response++) {
        const char *start = response ? "HTTP/1.1 200 OK\r\nServer: a\r\nX: " : "GET / HTTP/1.1\r\nHost: a\r\nX: ";
        size_t sl = strlen(start);
        for (size_t total = MH - 1; total <= MH + 1; total++) {
            char b[MH + 8];
            memcpy(b, start, sl);
            memset(b + sl, 'v', total - sl - 4);
            memcpy(b + total - 4, "\r\n\r\n", 4);
            int want = total <= MH ? (int)total : NF_EHTTP_TOOLARGE;
            check_every_cut(response, b, total, &lim, want);
            /* the same head cut just before its final CR LF, and its last
             * field line grown to end exactly at total without a CR LF */
            check_every_cut(response, b, total - 2, &lim, NF_EHTTP_INCOMPLETE);
            memset(b + total - 4, 'v', 4);
            check_every_cut(response, b, total, &lim, total < MH ? NF_EHTTP_INCOMPLETE : NF_EHTTP_TOOLARGE);
        }
    }
}

static void test_request_errors(void **state)
{
    (void)state;
    /* 400s */
    const char *bad[] = {
        "GET / HTTP/1.1\nHost: a\r\n\r\n",                 /* bare LF */
        "GET / HTTP/1.1\r\nHost: a\n\r\n",                 /* bare LF in field */
        "GET / HTTP/1.1\r\nHost: a\r\r\n\r\n",             /* bare CR */
        "GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n",            /* bare CR in value */
        "GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n 2\r\n\r\n", /* obs-fold */
        "GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n\t2\r\n\r\n",
        "GET / HTTP/1.1\r\n Host: a\r\n\r\n",           /* leading space */
        "GET / HTTP/1.1\r\nHost : a\r\n\r\n",           /* space before colon */
        "GET / HTTP/1.1\r\nHo\x01st: a\r\n\r\n",        /* control in name */
        "GET / HTTP/1.1\r\nHo(st: a\r\n\r\n",           /* separator in name */
        "GET / HTTP/1.1\r\nHost: a\x7f\r\n\r\n",        /* DEL in value */
        "GET / HTTP/1.1\r\nHost: a\x01\r\n\r\n",        /* control in value */
        "GET / HTTP/1.1\r\n: a\r\nHost: a\r\n\r\n",     /* empty name */
        "GET / HTTP/1.1\r\nHost\r\n\r\n",               /* no colon */
        "GET / HTTP/1.1\r\n\r\n",                       /* no Host in 1.1 */
        "GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n", /* two Hosts */
        "GET / HTTP/1.0\r\nHost: a\r\nHOST: a\r\n\r\n",
        "GET  / HTTP/1.1\r\nHost: a\r\n\r\n", /* double space */
        "GET / HTTP/1.1 \r\nHost: a\r\n\r\n", /* trailing space */
        "GET /a b HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET /\x80 HTTP/1.1\r\nHost: a\r\n\r\n", /* non-ASCII target */
        "G@T / HTTP/1.1\r\nHost: a\r\n\r\n",
        " GET / HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET / HTTP/1.x\r\nHost: a\r\n\r\n",
        "GET / HTTP/11\r\nHost: a\r\n\r\n",
        "GET / http/1.1\r\nHost: a\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\n\r\r\n",
        "GET /\r\nHost: a\r\n\r\n", /* HTTP/0.9 style */
        "\n GET / HTTP/1.1\r\nHost: a\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (req_status(bad[i]) != 400)
            fail_msg("case %zu: expected 400, got %d", i, req_status(bad[i]));
    }
    assert_int_equal(req_status("GET / HTTP/2.0\r\nHost: a\r\n\r\n"), 505);
    assert_int_equal(req_status("GET / HTTP/0.9\r\nHost: a\r\n\r\n"), 505);
    /* accepted variants */
    nf_http_request_t r;
    nf_http_header_t h[MAXH];
    assert_true(req("GET / HTTP/1.0\r\n\r\n", &r, h) > 0); /* Host optional in 1.0 */
    assert_int_equal(r.minor_version, 0);
    assert_true(req("GET / HTTP/1.2\r\nHost: a\r\n\r\n", &r, h) > 0);
    assert_int_equal(r.minor_version, 1);
    const char *lead = "\r\n\r\nGET * HTTP/1.1\r\nHost: a\r\n\r\n";
    assert_int_equal(req(lead, &r, h), (int)strlen(lead));
    assert_true(eqs(r.target, r.target_len, "*"));
    assert_true(req("GET / HTTP/1.1\r\nHost: caf\xc3\xa9\r\n\r\n", &r, h) > 0); /* obs-text */
    assert_int_equal(req_status("GET / HTTP/1.1\r\nHost: a\r\n\r\n"), 0);
}

static void test_limits(void **state)
{
    (void)state;
    nf_http_request_t r;
    nf_http_header_t h[4];
    nf_http_limits_t lim = {64, 40, 200};
    char buf[1024];
    /* request line exactly at the limit (64 with CRLF), then one over */
    char target[80];
    memset(target, 'a', sizeof target);
    target[0] = '/';
    snprintf(buf, sizeof buf, "GET %.*s HTTP/1.1\r\nHost: a\r\n\r\n", 64 - 15, target);
    assert_true(nf_http_parse_request(buf, strlen(buf), 0, &r, h, 4, &lim) > 0);
    snprintf(buf, sizeof buf, "GET %.*s HTTP/1.1\r\nHost: a\r\n\r\n", 64 - 14, target);
    assert_int_equal(nf_http_parse_request(buf, strlen(buf), 0, &r, h, 4, &lim), NF_EHTTP_URITOOLONG);
    assert_int_equal(nf_http_error_status(NF_EHTTP_URITOOLONG), 414);
    /* too long is known before the line ends */
    snprintf(buf, sizeof buf, "GET %.*s", 70, target);
    assert_int_equal(nf_http_parse_request(buf, strlen(buf), 0, &r, h, 4, &lim), NF_EHTTP_URITOOLONG);
    /* a field line at the limit (40), then over */
    snprintf(buf, sizeof buf, "GET / HTTP/1.1\r\nHost: %.*s\r\n\r\n", 40 - 8, target);
    assert_true(nf_http_parse_request(buf, strlen(buf), 0, &r, h, 4, &lim) > 0);
    snprintf(buf, sizeof buf, "GET / HTTP/1.1\r\nHost: %.*s\r\n\r\n", 40 - 7, target);
    assert_int_equal(nf_http_parse_request(buf, strlen(buf), 0, &r, h, 4, &lim), NF_EHTTP_TOOLARGE);
    assert_int_equal(nf_http_error_status(NF_EHTTP_TOOLARGE), 431);
    snprintf(buf, sizeof buf, "GET / HTTP/1.1\r\nHost: %.*s", 50, target);
    assert_int_equal(nf_http_parse_request(buf, strlen(buf), 0, &r, h, 4, &lim), NF_EHTTP_TOOLARGE);
    /* too many fields for the array */
    const char *many = "GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n";
    assert_int_equal(nf_http_parse_request(many, strlen(many), 0, &r, h, 4, NULL), NF_EHTTP_TOOLARGE);
    nf_http_header_t h5[5];
    assert_int_equal(nf_http_parse_request(many, strlen(many), 0, &r, h5, 5, NULL) > 0, 1);
    /* whole head over max_head (with lines each under their limit) */
    size_t n = (size_t)snprintf(buf, sizeof buf, "GET / HTTP/1.1\r\nHost: a\r\n");
    while (n < 260)
        n += (size_t)snprintf(buf + n, sizeof buf - n, "X: 0123456789\r\n");
    nf_http_header_t hh[64];
    assert_int_equal(nf_http_parse_request(buf, n, 0, &r, hh, 64, &lim), NF_EHTTP_TOOLARGE);
    /* and the incomplete path with last_len reports it too */
    assert_int_equal(nf_http_parse_request(buf, n, n - 1, &r, hh, 64, &lim), NF_EHTTP_TOOLARGE);
    /* default limits: an 8 KiB line is fine, 9 KiB is not */
    char *big = malloc(20000);
    memset(big, 'x', 20000);
    memcpy(big, "GET /", 5);
    memcpy(big + 9000, " HTTP/1.1\r\nHost: a\r\n\r\n", 22);
    assert_int_equal(nf_http_parse_request(big, 9022, 0, &r, hh, 64, NULL), NF_EHTTP_URITOOLONG);
    memcpy(big + 8000, " HTTP/1.1\r\nHost: a\r\n\r\n", 22);
    assert_int_equal(nf_http_parse_request(big, 8022, 0, &r, hh, 64, NULL), 8022);
    free(big);
}

static void test_response(void **state)
{
    (void)state;
    nf_http_response_t r;
    nf_http_header_t h[MAXH];
    const char *s = "HTTP/1.1 101 Switching Protocols\r\n"
                    "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                    "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
    assert_int_equal(res(s, &r, h), (int)strlen(s));
    assert_int_equal(r.status, 101);
    assert_int_equal(r.minor_version, 1);
    assert_true(eqs(r.reason, r.reason_len, "Switching Protocols"));
    assert_int_equal(r.num_headers, 3);
    assert_int_equal(res("HTTP/1.1 101\r\n\r\n", &r, h), 16);
    assert_int_equal(r.reason_len, 0);
    assert_int_equal(res("HTTP/1.0 404 \r\n\r\n", &r, h), 17);
    assert_int_equal(res("HTTP/1.1 99 x\r\n\r\n", &r, h), NF_EHTTP_BAD);
    assert_int_equal(res("HTTP/1.1 1011 x\r\n\r\n", &r, h), NF_EHTTP_BAD);
    assert_int_equal(res("HTTP/1.1 200 O\x01K\r\n\r\n", &r, h), NF_EHTTP_BAD);
    assert_int_equal(res("HTTP/1.1 200 OK\r\nA: b\r\n c\r\n\r\n", &r, h), NF_EHTTP_BAD);
    assert_int_equal(res("HTTP/1.1 200 OK\nA: b\r\n\r\n", &r, h), NF_EHTTP_BAD);
    assert_int_equal(res("HTTP/2.0 200 OK\r\n\r\n", &r, h), NF_EHTTP_VERSION);
    assert_int_equal(res("HTTX/1.1 200 OK\r\n\r\n", &r, h), NF_EHTTP_BAD);
    assert_int_equal(res("HTTP/1.1 200 OK\r\n", &r, h), NF_EHTTP_INCOMPLETE);
    assert_int_equal(res("", &r, h), NF_EHTTP_INCOMPLETE);
}

static void test_writer(void **state)
{
    (void)state;
    char out[256];
    nf_http_header_t h[] = {
        {"Upgrade", 7, "websocket", 9},
        {"Connection", 10, "Upgrade", 7},
    };
    int n = nf_http_write_response(out, sizeof out, 101, NULL, h, 2);
    const char *want = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                       "Connection: Upgrade\r\n\r\n";
    assert_int_equal(n, (int)strlen(want));
    assert_memory_equal(out, want, strlen(want));
    /* round trip through the parser */
    nf_http_response_t r;
    nf_http_header_t hh[MAXH];
    assert_int_equal(nf_http_parse_response(out, (size_t)n, 0, &r, hh, MAXH, NULL), n);
    assert_int_equal(r.status, 101);
    /* every size below the needed one fails cleanly */
    for (size_t cap = 0; cap < strlen(want); cap++)
        assert_int_equal(nf_http_write_response(out, cap, 101, NULL, h, 2), NF_EHTTP_NOSPACE);
    n = nf_http_write_response(out, sizeof out, 400, "Nope", NULL, 0);
    assert_int_equal(n, (int)strlen("HTTP/1.1 400 Nope\r\n\r\n"));
    assert_memory_equal(out, "HTTP/1.1 400 Nope\r\n\r\n", (size_t)n);
    nf_http_header_t inj[] = {{"X", 1, "a\r\nSet-Cookie: x", 16}};
    assert_int_equal(nf_http_write_response(out, sizeof out, 200, NULL, inj, 1), NF_EHTTP_INVALID);
    nf_http_header_t badname[] = {{"X Y", 3, "a", 1}};
    assert_int_equal(nf_http_write_response(out, sizeof out, 200, NULL, badname, 1), NF_EHTTP_INVALID);
    assert_int_equal(nf_http_write_response(out, sizeof out, 200, "O\nK", NULL, 0), NF_EHTTP_INVALID);
    assert_int_equal(nf_http_write_response(out, sizeof out, 99, NULL, NULL, 0), NF_EHTTP_INVALID);
    assert_int_equal(nf_http_write_response(out, sizeof out, 1000, NULL, NULL, 0), NF_EHTTP_INVALID);
    n = nf_http_write_response(out, sizeof out, 799, NULL, NULL, 0);
    assert_memory_equal(out, "HTTP/1.1 799 Unknown\r\n\r\n", (size_t)n);
    /* request writer */
    nf_http_header_t rh[] = {{"Host", 4, "example.com", 11}};
    n = nf_http_write_request(out, sizeof out, "GET", "/chat", rh, 1);
    const char *wr = "GET /chat HTTP/1.1\r\nHost: example.com\r\n\r\n";
    assert_int_equal(n, (int)strlen(wr));
    assert_memory_equal(out, wr, strlen(wr));
    nf_http_request_t rq;
    assert_int_equal(nf_http_parse_request(out, (size_t)n, 0, &rq, hh, MAXH, NULL), n);
    assert_int_equal(nf_http_write_request(out, sizeof out, "G T", "/", NULL, 0), NF_EHTTP_INVALID);
    assert_int_equal(nf_http_write_request(out, sizeof out, "GET", "/a b", NULL, 0), NF_EHTTP_INVALID);
    assert_int_equal(nf_http_write_request(out, sizeof out, "GET", "", NULL, 0), NF_EHTTP_INVALID);
    assert_int_equal(nf_http_write_request(out, 10, "GET", "/", rh, 1), NF_EHTTP_NOSPACE);
    assert_string_equal(nf_http_reason(101), "Switching Protocols");
    assert_string_equal(nf_http_reason(431), "Request Header Fields Too Large");
}

static void test_error_status(void **state)
{
    (void)state;
    assert_int_equal(nf_http_error_status(NF_EHTTP_BAD), 400);
    assert_int_equal(nf_http_error_status(NF_EHTTP_VERSION), 505);
    assert_int_equal(nf_http_error_status(NF_EHTTP_INCOMPLETE), 0);
    assert_int_equal(nf_http_error_status(42), 0);
    assert_int_equal(nf_http_error_status(-12), 500);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_upgrade_request),
        cmocka_unit_test(test_list_tokens),
        cmocka_unit_test(test_incremental),
        cmocka_unit_test(test_incremental_errors),
        cmocka_unit_test(test_max_head_boundary),
        cmocka_unit_test(test_request_errors),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_response),
        cmocka_unit_test(test_writer),
        cmocka_unit_test(test_error_status),
    };
    return cmocka_run_group_tests_name("http", tests, NULL, NULL);
}
