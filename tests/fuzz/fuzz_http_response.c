/* libFuzzer target: the HTTP/1.1 response head parser (src/http), as the
 * WebSocket client uses it, and the writer/parser agreement.
 * Build: tests/fuzz/fuzz.cmake (clang only); run: make fuzz. */
#include "fuzz_http_head.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int parse(const char *buf, size_t len, size_t last, head_t *hd, const nf_http_limits_t *lim)
{
    int rc = nf_http_parse_response(buf, len, last, &hd->rs, hd->h, MAXH, lim);
    if (rc > 0 && (hd->rs.status < 100 || hd->rs.status > 999))
        abort();
    return rc;
}

static size_t nheaders(const head_t *hd) { return hd->rs.num_headers; }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_head(parse, nheaders, data, size);
    /* The writer refuses what the parser would refuse: a header value made
     * of the input either fails to write or parses back whole. */
    if (size < 200) {
        nf_http_header_t wh = {"X-Fuzz", 6, (const char *)data, size};
        char out[512];
        int w = nf_http_write_response(out, sizeof out, 101, NULL, &wh, 1);
        if (w > 0) {
            head_t hd;
            if (nf_http_parse_response(out, (size_t)w, 0, &hd.rs, hd.h, MAXH, NULL) != w)
                abort();
        }
    }
    return 0;
}
