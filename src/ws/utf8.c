/* netframe — incremental UTF-8 validator (RFC 3629).
 *
 * A deterministic automaton over byte classes. States are stored multiplied
 * by the number of classes so a transition is one table load. An ASCII fast
 * path skips 64 (SSE2) or 16 bytes at a time while no sequence is open. */
#include "netframe/ws_codec.h"
#include "base/export.h"

#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

enum { NCLASS = 12 };

/* Byte classes:
 *  0: 00..7F   1: 80..8F   2: 90..9F   3: A0..BF
 *  4: C0 C1 F5..FF (never valid)   5: C2..DF (2-byte lead)
 *  6: E0   7: E1..EC EE EF   8: ED   9: F0   10: F1..F3   11: F4 */
#define X16(c) c, c, c, c, c, c, c, c, c, c, c, c, c, c, c, c
static const uint8_t byte_class[256] = {
    X16(0), X16(0), X16(0), X16(0), X16(0), X16(0), X16(0), X16(0), X16(1), X16(2), X16(3), X16(3), 4,      4, 5,  5,
    5,      5,      5,      5,      5,      5,      5,      5,      5,      5,      5,      5,      X16(5), 6, 7,  7,
    7,      7,      7,      7,      7,      7,      7,      7,      7,      7,      8,      7,      7,      9, 10, 10,
    10,     11,     4,      4,      4,      4,      4,      4,      4,      4,      4,      4,      4,
};
#undef X16

/* States: A accept; C1/C2/C3 need 1/2/3 continuation bytes 80..BF;
 * E0 needs A0..BF (no overlong 3-byte form); ED needs 80..9F (no
 * surrogates); F0 needs 90..BF (no overlong 4-byte form); F4 needs 80..8F
 * (nothing above U+10FFFF); R rejected (sticky). */
enum {
    A = 0 * NCLASS,
    C1 = 1 * NCLASS,
    C2 = 2 * NCLASS,
    C3 = 3 * NCLASS,
    SE0 = 4 * NCLASS,
    SED = 5 * NCLASS,
    SF0 = 6 * NCLASS,
    SF4 = 7 * NCLASS,
    R = 8 * NCLASS,
};

static const uint8_t next_state[9 * NCLASS] = {
    /*        00  80  90  A0  bad C2  E0   E1   ED   F0   F1  F4 */
    /* A   */ A, R,  R,  R,  R, C1, SE0, C2, SED, SF0, C3, SF4,
    /* C1  */ R, A,  A,  A,  R, R,  R,   R,  R,   R,   R,  R,
    /* C2  */ R, C1, C1, C1, R, R,  R,   R,  R,   R,   R,  R,
    /* C3  */ R, C2, C2, C2, R, R,  R,   R,  R,   R,   R,  R,
    /* SE0 */ R, R,  R,  C1, R, R,  R,   R,  R,   R,   R,  R,
    /* SED */ R, C1, C1, R,  R, R,  R,   R,  R,   R,   R,  R,
    /* SF0 */ R, R,  C2, C2, R, R,  R,   R,  R,   R,   R,  R,
    /* SF4 */ R, C2, R,  R,  R, R,  R,   R,  R,   R,   R,  R,
    /* R   */ R, R,  R,  R,  R, R,  R,   R,  R,   R,   R,  R,
};

#define HIGH_BITS 0x8080808080808080ull

NF__EXPORT void nf_ws_utf8_init(nf_ws_utf8_t *u) { u->state = A; }

NF__EXPORT int nf_ws_utf8_feed(nf_ws_utf8_t *u, const uint8_t *p, size_t n)
{
    uint32_t s = u->state;
    size_t i = 0;
    if (s == R)
        return NF_EWS_UTF8;
    while (i < n) {
        if (s == A) {
            /* ASCII fast path: 64 bytes at a time with SSE2 (one movemask
             * of the OR of four vectors: a high bit anywhere), then 16,
             * then 8 bytes at a time. */
#if defined(__SSE2__)
            while (n - i >= 64) {
                __m128i a = _mm_loadu_si128((const __m128i *)(const void *)(p + i));
                __m128i b = _mm_loadu_si128((const __m128i *)(const void *)(p + i + 16));
                __m128i c = _mm_loadu_si128((const __m128i *)(const void *)(p + i + 32));
                __m128i d = _mm_loadu_si128((const __m128i *)(const void *)(p + i + 48));
                if (_mm_movemask_epi8(_mm_or_si128(_mm_or_si128(a, b), _mm_or_si128(c, d))))
                    break;
                i += 64;
            }
#endif
            while (n - i >= 16) {
                uint64_t a, b;
                memcpy(&a, p + i, 8);
                memcpy(&b, p + i + 8, 8);
                if ((a | b) & HIGH_BITS)
                    break;
                i += 16;
            }
            if (n - i >= 8) {
                uint64_t a;
                memcpy(&a, p + i, 8);
                if (!(a & HIGH_BITS))
                    i += 8;
            }
            while (i < n && p[i] < 0x80)
                i++;
            if (i == n)
                break;
        }
        s = next_state[s + byte_class[p[i++]]];
        if (s == R) {
            u->state = R;
            return NF_EWS_UTF8;
        }
    }
    u->state = s;
    return 0;
}

NF__EXPORT int nf_ws_utf8_finish(nf_ws_utf8_t *u)
{
    uint32_t s = u->state;
    u->state = A;
    return s == A ? 0 : NF_EWS_UTF8;
}

NF__EXPORT int nf_ws_utf8_valid(const uint8_t *p, size_t n)
{
    nf_ws_utf8_t u = {A};
    if (nf_ws_utf8_feed(&u, p, n) != 0)
        return 0;
    return nf_ws_utf8_finish(&u) == 0;
}
