/* libFuzzer target: Sec-WebSocket-Extensions (permessage-deflate) offers and
 * answers, both ends (src/ws/pmd.c). Build: tests/fuzz/fuzz.cmake. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_input.h"
#include "netframe/ws_codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    unsigned sel;
    char *buf = fz_split(&data, &size, &sel);
    if (!buf)
        return 0;
    nf_ws_pmd_params_t pa;
    char resp[128];
    nf_ws_pmd_config_t cfg = {.server_max_window_bits = (int)(sel >> 4),
                              .client_max_window_bits = (int)(sel & 15),
                              .server_no_context_takeover = sel & 16,
                              .client_no_context_takeover = sel & 32};
    int n = nf_ws_pmd_negotiate(&cfg, buf, size, &pa, resp, sizeof resp);
    if (n > 0) {
        /* What the server answers, a client accepts, with the same values. */
        nf_ws_pmd_params_t pb;
        if (pa.server_max_window_bits < 8 || pa.server_max_window_bits > 15 || pa.client_max_window_bits < 8 ||
            pa.client_max_window_bits > 15)
            abort();
        if (nf_ws_pmd_accept(NULL, resp, (size_t)n, &pb) < 0)
            abort();
        if (pb.server_no_context_takeover != pa.server_no_context_takeover ||
            pb.client_no_context_takeover != pa.client_no_context_takeover)
            abort();
    }
    (void)nf_ws_pmd_accept(&cfg, buf, size, &pa);
    free(buf);
    return 0;
}
