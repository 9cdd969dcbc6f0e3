/* libFuzzer target: HTTP head parsers, token lists, extension negotiation.
 * Build: see tests/fuzz/fuzz.cmake (clang only). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "netframe/http.h"
#include "netframe/ws_codec.h"

#define MAXH 16

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    unsigned sel = data[0];
    data++;
    size--;
    /* An exact-size heap copy so ASan sees any read past the end. */
    char *buf = malloc(size ? size : 1);
    memcpy(buf, data, size);
    nf_http_header_t h[MAXH];
    nf_http_limits_t lim = {(sel & 1) ? 64 : 0, (sel & 2) ? 32 : 0, (sel & 4) ? 256 : 0};
    nf_http_request_t rq;
    nf_http_response_t rs;

    int a = nf_http_parse_request(buf, size, 0, &rq, h, MAXH, &lim);
    if (a > 0) {
        if ((size_t)a > size)
            abort();
        if (rq.method + rq.method_len > buf + a || rq.target + rq.target_len > buf + a)
            abort();
        for (size_t i = 0; i < rq.num_headers; i++) {
            if (h[i].name < buf || h[i].value + h[i].value_len > buf + a)
                abort();
            (void)nf_http_list_has_token(h[i].value, h[i].value_len, "upgrade");
        }
        (void)nf_http_headers_have_token(h, rq.num_headers, "connection", "upgrade");
        /* The same bytes fed in two parts give the same answer. */
        size_t cut = size / 2;
        int inc = nf_http_parse_request(buf, cut, 0, &rq, h, MAXH, &lim);
        if (inc > 0 && inc != a)
            abort();
        if (inc == NF_EHTTP_INCOMPLETE) {
            int b = nf_http_parse_request(buf, size, cut, &rq, h, MAXH, &lim);
            if (b != a)
                abort();
        }
    } else {
        (void)nf_http_error_status(a);
    }
    int r = nf_http_parse_response(buf, size, (sel & 8) ? size / 3 : 0, &rs, h, MAXH, &lim);
    if (r > 0 && (size_t)r > size)
        abort();

    /* Sec-WebSocket-Extensions parsing, both ends. */
    nf_ws_pmd_params_t pa;
    char resp[128];
    nf_ws_pmd_config_t cfg = {.server_max_window_bits = (int)(sel >> 4),
                              .client_max_window_bits = (int)(sel & 15),
                              .server_no_context_takeover = sel & 16,
                              .client_no_context_takeover = sel & 32};
    int n = nf_ws_pmd_negotiate(&cfg, buf, size, &pa, resp, sizeof resp);
    if (n > 0) {
        /* What the server answers, a client accepts (when it offered every
         * parameter the answer may carry). */
        nf_ws_pmd_params_t pb;
        if (pa.server_max_window_bits < 8 || pa.server_max_window_bits > 15 || pa.client_max_window_bits < 8 ||
            pa.client_max_window_bits > 15)
            abort();
        if (nf_ws_pmd_accept(NULL, resp, (size_t)n, &pb) < 0)
            abort();
    }
    (void)nf_ws_pmd_accept(&cfg, buf, size, &pa);

    /* The writer refuses what the parser would refuse. */
    if (size < 200) {
        nf_http_header_t wh = {"X-Fuzz", 6, buf, size};
        char out[512];
        int w = nf_http_write_response(out, sizeof out, 101, NULL, &wh, 1);
        if (w > 0) {
            int p = nf_http_parse_response(out, (size_t)w, 0, &rs, h, MAXH, NULL);
            if (p != w)
                abort();
        }
    }
    free(buf);
    return 0;
}
