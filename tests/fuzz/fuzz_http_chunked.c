/* libFuzzer target: the chunked-body decoder (src/http/reader.c). The input
 * follows a fixed chunked request head, so every byte the fuzzer mutates is
 * chunk sizes, extensions, data, CRLFs and trailers; then a second request,
 * to check that the decoder ends exactly where its body ends. The answer
 * must not depend on the cuts (fuzz_http_stream.h). */
#include "fuzz_http_stream.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char head[] = "POST /c HTTP/1.1\r\nHost: f\r\nTransfer-Encoding: chunked\r\n\r\n";
static const char next[] = "GET /n HTTP/1.1\r\nHost: f\r\n\r\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    unsigned sel;
    char *in = fz_split(&data, &size, &sel);
    if (!in)
        return 0;
    size_t n = sizeof head - 1 + size + sizeof next - 1;
    char *buf = malloc(n);
    memcpy(buf, head, sizeof head - 1);
    memcpy(buf + sizeof head - 1, in, size);
    memcpy(buf + sizeof head - 1 + size, next, sizeof next - 1);
    fz_stream(buf, n, sel & ~2u); /* the default head limits: the head above must pass */
    free(buf);
    free(in);
    return 0;
}
