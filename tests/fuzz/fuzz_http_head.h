/* Shared body of the two HTTP head fuzz targets (request and response): the
 * parse must stay inside the input, and the answer must not depend on how
 * the bytes were cut (fed in two parts with last_len: at every cut for short
 * inputs, at a few chosen ones for longer ones), both for the whole input
 * and for its first max_head - 1, max_head and max_head + 1 bytes. */
#ifndef NF_FUZZ_HTTP_HEAD_H
#define NF_FUZZ_HTTP_HEAD_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_input.h"
#include "netframe/http.h"

#define MAXH 16

typedef struct {
    nf_http_request_t rq;
    nf_http_response_t rs;
    nf_http_header_t h[MAXH];
} head_t;

/* PARSE(buf, len, last, head, limits): one of the two parsers. */
typedef int (*parse_fn)(const char *buf, size_t len, size_t last, head_t *hd, const nf_http_limits_t *lim);

static void check_views(const char *buf, int a, const head_t *hd, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const nf_http_header_t *x = &hd->h[i];
        if (x->name < buf || x->name + x->name_len > buf + a || x->value < buf || x->value + x->value_len > buf + a)
            abort();
        if (x->name_len == 0)
            abort();
    }
}

/* Feeds buf[0..cut) then buf[0..size) with last_len = cut: the final answer
 * must equal the one-shot answer `whole`; the prefix must be INCOMPLETE
 * when the head ends past the cut. */
static void check_cut(parse_fn parse, const char *buf, size_t size, size_t cut, int whole, const nf_http_limits_t *lim)
{
    head_t hd;
    int p = parse(buf, cut, 0, &hd, lim);
    if (whole > 0 && (size_t)whole > cut && p != NF_EHTTP_INCOMPLETE)
        abort();
    if (whole > 0 && (size_t)whole <= cut && p != whole)
        abort();
    if (p == NF_EHTTP_INCOMPLETE) {
        int q = parse(buf, size, cut, &hd, lim);
        if (q != whole)
            abort();
    }
}

/* Every cut of buf[0..end) for short ones; for longer ones a cut chosen by
 * the input, three around the end of the head, and one just after the last
 * CR or LF (the longest stretch the parser's fast path may skip). Returns
 * the one-shot answer for buf[0..end). */
static int check_end(parse_fn parse, const char *buf, size_t end, unsigned sel, const nf_http_limits_t *lim)
{
    head_t hd;
    int whole = parse(buf, end, 0, &hd, lim);
    if (end <= 64) {
        for (size_t cut = 0; cut <= end; cut++)
            check_cut(parse, buf, end, cut, whole, lim);
        return whole;
    }
    check_cut(parse, buf, end, (size_t)sel * end / 255, whole, lim);
    check_cut(parse, buf, end, end - 1, whole, lim);
    if (whole > 0) {
        check_cut(parse, buf, end, (size_t)whole - 1, whole, lim);
        check_cut(parse, buf, end, (size_t)whole / 2, whole, lim);
    }
    size_t last = end;
    while (last > 0 && buf[last - 1] != '\r' && buf[last - 1] != '\n')
        last--;
    check_cut(parse, buf, end, last, whole, lim);
    return whole;
}

static int fuzz_head(parse_fn parse, size_t (*nheaders)(const head_t *), const uint8_t *data, size_t size)
{
    unsigned sel;
    char *buf = fz_split(&data, &size, &sel);
    if (!buf)
        return 0;
    size_t max_head = (sel & 4) ? 256 : (sel & 8) ? 48 : 0;
    nf_http_limits_t lim = {(sel & 1) ? 64 : 0, (sel & 2) ? 32 : 0, max_head};
    head_t hd;
    int whole = parse(buf, size, 0, &hd, &lim);
    if (whole > 0) {
        if ((size_t)whole > size)
            abort();
        check_views(buf, whole, &hd, nheaders(&hd));
    } else if (whole != NF_EHTTP_INCOMPLETE && nf_http_error_status(whole) < 400) {
        abort(); /* every error maps to a 4xx/5xx answer */
    }
    check_end(parse, buf, size, sel, &lim);
    /* the same bytes ending at max_head - 1, max_head and max_head + 1: the
     * boundary where a line in progress can no longer end within the head */
    for (size_t end = max_head ? max_head - 1 : 0; max_head && end <= max_head + 1 && end < size; end++)
        check_end(parse, buf, end, sel, &lim);
    free(buf);
    return 0;
}

#endif
