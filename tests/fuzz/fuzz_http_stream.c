/* libFuzzer target: the whole HTTP/1.1 request stream (src/http/reader.c):
 * pipelined requests with Content-Length and chunked bodies, trailers, and
 * every framing rule; the answer must not depend on how the bytes are cut
 * (fuzz_http_stream.h). Build: tests/fuzz/fuzz.cmake; run: make fuzz. */
#include "fuzz_http_stream.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    unsigned sel;
    char *buf = fz_split(&data, &size, &sel);
    if (!buf)
        return 0;
    fz_stream(buf, size, sel);
    free(buf);
    return 0;
}
