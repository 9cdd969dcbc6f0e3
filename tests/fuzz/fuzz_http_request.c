/* libFuzzer target: the HTTP/1.1 request head parser (src/http).
 * Build: tests/fuzz/fuzz.cmake (clang only); run: make fuzz. */
#include "fuzz_http_head.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int parse(const char *buf, size_t len, size_t last, head_t *hd, const nf_http_limits_t *lim)
{
    int rc = nf_http_parse_request(buf, len, last, &hd->rq, hd->h, MAXH, lim);
    if (rc > 0 && (hd->rq.method + hd->rq.method_len > buf + rc || hd->rq.target + hd->rq.target_len > buf + rc ||
                   hd->rq.method_len == 0 || hd->rq.target_len == 0))
        abort();
    if (rc > 0) {
        (void)nf_http_headers_have_token(hd->h, hd->rq.num_headers, "connection", "upgrade");
        for (size_t i = 0; i < hd->rq.num_headers; i++)
            (void)nf_http_list_has_token(hd->h[i].value, hd->h[i].value_len, "upgrade");
    }
    return rc;
}

static size_t nheaders(const head_t *hd) { return hd->rq.num_headers; }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) { return fuzz_head(parse, nheaders, data, size); }
