/* PROXY protocol test vectors shared by the parser unit test and the
 * filter's integration test: builders for v2 headers and a few v1 lines. */
#ifndef NF_TEST_PROXY_VECTORS_H
#define NF_TEST_PROXY_VECTORS_H

#include <arpa/inet.h>
#include <stdint.h>
#include <string.h>

static const unsigned char pv_sig[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

/* Writes the 16-byte v2 prefix; returns 16. */
static inline size_t pv_v2_prefix(unsigned char *out, unsigned ver_cmd, unsigned fam, unsigned len)
{
    memcpy(out, pv_sig, 12);
    out[12] = (unsigned char)ver_cmd;
    out[13] = (unsigned char)fam;
    out[14] = (unsigned char)(len >> 8);
    out[15] = (unsigned char)len;
    return 16;
}

/* v2 PROXY, TCP over IPv4, with `tlv_len` bytes of TLVs appended from tlv. */
static inline size_t pv_v2_ipv4(unsigned char *out, const char *src, uint16_t sport, const char *dst, uint16_t dport,
                                const unsigned char *tlv, size_t tlv_len)
{
    size_t n = pv_v2_prefix(out, 0x21, 0x11, (unsigned)(12 + tlv_len));
    inet_pton(AF_INET, src, out + n);
    inet_pton(AF_INET, dst, out + n + 4);
    out[n + 8] = (unsigned char)(sport >> 8);
    out[n + 9] = (unsigned char)sport;
    out[n + 10] = (unsigned char)(dport >> 8);
    out[n + 11] = (unsigned char)dport;
    n += 12;
    if (tlv_len)
        memcpy(out + n, tlv, tlv_len);
    return n + tlv_len;
}

/* v2 PROXY, TCP over IPv6. */
static inline size_t pv_v2_ipv6(unsigned char *out, const char *src, uint16_t sport, const char *dst, uint16_t dport)
{
    size_t n = pv_v2_prefix(out, 0x21, 0x21, 36);
    inet_pton(AF_INET6, src, out + n);
    inet_pton(AF_INET6, dst, out + n + 16);
    out[n + 32] = (unsigned char)(sport >> 8);
    out[n + 33] = (unsigned char)sport;
    out[n + 34] = (unsigned char)(dport >> 8);
    out[n + 35] = (unsigned char)dport;
    return n + 36;
}

/* Three TLVs: ALPN "h2", AUTHORITY "example.com", NOOP of 5 bytes. */
static const unsigned char pv_tlvs[] = {0x01, 0x00, 0x02, 'h', '2', 0x02, 0x00, 0x0b, 'e', 'x', 'a', 'm', 'p', 'l',
                                        'e',  '.',  'c',  'o', 'm', 0x04, 0x00, 0x05, 0,   0,   0,   0,   0};

#endif
