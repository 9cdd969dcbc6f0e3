/* libFuzzer target: the PROXY protocol header parser (proxy.h).
 * Build: see tests/fuzz/fuzz.cmake (clang only). Seeds: tests/fuzz/corpus/fuzz_proxy.
 *
 * The first input byte picks the accepted versions and the v2 size limit;
 * the rest is the stream. Checked beyond "no crash, no out-of-bounds read":
 * a header length lies within the input and the TLV range within the header;
 * the answer on every prefix cut at a byte chosen by the input is either
 * "incomplete" or the answer on the whole input, with the same header. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_input.h"
#include "netframe/proxy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    unsigned sel;
    unsigned char *buf = fz_split(&data, &size, &sel);
    if (!buf)
        return 0;
    unsigned versions = sel & 3;
    size_t max = (sel & 4) ? 16 + (sel >> 3) * 8 : 0;

    nf_proxy_header_t h, p;
    int r = nf_proxy_parse(buf, size, versions, max, &h);
    if (r > 0) {
        if ((size_t)r > size || h.header_len != (size_t)r)
            abort();
        if (h.version == 2 && h.tlv_off + h.tlv_len > h.header_len)
            abort();
        if (h.version == 1 && r > NF_PROXY_V1_MAX)
            abort();
    } else if (r != NF_EPROXY_INCOMPLETE && r != NF_EPROXY && r != NF_EPROXY_TOOLARGE && r != NF_EPROXY_VERSION &&
               r != NF_EPROXY_NOHEADER) {
        abort();
    }
    /* Cut anywhere: incomplete, or the same answer. */
    for (size_t k = 0; k < 3 && size; k++) {
        size_t cut = k == 0 ? size / 2 : k == 1 ? (sel * 7u) % size : size - 1;
        unsigned char *part = malloc(cut ? cut : 1);
        memcpy(part, buf, cut);
        int q = nf_proxy_parse(part, cut, versions, max, &p);
        if (q != NF_EPROXY_INCOMPLETE && q != r)
            abort();
        if (q > 0 && (p.header_len != h.header_len || p.family != h.family ||
                      memcmp(&p.src, &h.src, sizeof p.src) != 0 || memcmp(&p.dst, &h.dst, sizeof p.dst) != 0))
            abort();
        free(part);
    }
    free(buf);
    return 0;
}
