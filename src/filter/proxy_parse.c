/* netframe — PROXY protocol header parser (sans-I/O; see proxy.h).
 *
 * The parser reads the bytes left to right and stops at the first thing that
 * decides the outcome: a byte that cannot belong to a header (an error), the
 * end of the header (parse it whole), or the end of the input (incomplete).
 * So the answer for a prefix of the input is either NF_EPROXY_INCOMPLETE or
 * the answer for the whole input: how the bytes were cut never matters.
 * Work per call is bounded: a v1 line is scanned up to 107 bytes; a v2 block
 * is looked at (16 bytes) until all of it is there, then parsed once. */
#include <arpa/inet.h>
#include "base/export.h"
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "netframe/error.h"
#include "netframe/proxy.h"

static const unsigned char v2sig[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};
static const char v1sig[6] = "PROXY ";

/* ---- v1 ----------------------------------------------------------------- */

/* Next field of the line [*p, end): up to a single space (or the end). Returns
 * its length, advances *p past the space. Empty fields are an error (-1). */
static int field(const char **p, const char *end, const char **f, int last)
{
    const char *s = *p, *q = s;
    while (q < end && *q != ' ')
        q++;
    if (q == s || (last ? q != end : q == end))
        return -1;
    *f = s;
    *p = q < end ? q + 1 : q;
    return (int)(q - s);
}

static int port_of(const char *s, int n, uint16_t *out)
{
    if (n < 1 || n > 5 || (n > 1 && s[0] == '0'))
        return -1;
    unsigned v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    if (v > 65535)
        return -1;
    *out = (uint16_t)v;
    return 0;
}

static int ip_of(int family, const char *s, int n, nf_addr_t *a, uint16_t port)
{
    char tmp[INET6_ADDRSTRLEN + 1];
    if (n <= 0 || (size_t)n >= sizeof(tmp))
        return -1;
    memcpy(tmp, s, (size_t)n);
    tmp[n] = '\0';
    memset(a, 0, sizeof(*a));
    if (family == AF_INET) {
        if (inet_pton(AF_INET, tmp, &a->u.in4.sin_addr) != 1)
            return -1;
        a->u.in4.sin_family = AF_INET;
        a->u.in4.sin_port = htons(port);
        a->len = sizeof(a->u.in4);
    } else {
        if (inet_pton(AF_INET6, tmp, &a->u.in6.sin6_addr) != 1)
            return -1;
        a->u.in6.sin6_family = AF_INET6;
        a->u.in6.sin6_port = htons(port);
        a->len = sizeof(a->u.in6);
    }
    return 0;
}

/* The line [b, b + n), CRLF excluded, "PROXY " included. */
static int v1_line(const char *b, size_t n, nf_proxy_header_t *out)
{
    const char *p = b + sizeof(v1sig), *end = b + n, *f;
    int l;
    nf_proxy_header_t h;
    memset(&h, 0, sizeof(h));
    h.version = 1;
    h.command = NF_PROXY_CMD_PROXY;
    h.transport = NF_PROXY_TRANSPORT_STREAM;
    /* "UNKNOWN", then optionally a space and anything: the receiver ignores it */
    if ((size_t)(end - p) >= 7 && memcmp(p, "UNKNOWN", 7) == 0 && (end - p == 7 || p[7] == ' ')) {
        h.family = AF_UNSPEC;
        *out = h;
        return 0;
    }
    if ((l = field(&p, end, &f, 0)) != 4)
        return NF_EPROXY;
    if (memcmp(f, "TCP4", 4) == 0)
        h.family = AF_INET;
    else if (memcmp(f, "TCP6", 4) == 0)
        h.family = AF_INET6;
    else
        return NF_EPROXY;
    const char *src, *dst, *sp, *dp;
    int srcn, dstn, spn, dpn;
    uint16_t sport, dport;
    if ((srcn = field(&p, end, &src, 0)) < 0 || (dstn = field(&p, end, &dst, 0)) < 0 ||
        (spn = field(&p, end, &sp, 0)) < 0 || (dpn = field(&p, end, &dp, 1)) < 0)
        return NF_EPROXY;
    if (port_of(sp, spn, &sport) || port_of(dp, dpn, &dport))
        return NF_EPROXY;
    if (ip_of(h.family, src, srcn, &h.src, sport) || ip_of(h.family, dst, dstn, &h.dst, dport))
        return NF_EPROXY;
    *out = h;
    return 0;
}

static int parse_v1(const char *b, size_t len, unsigned versions, nf_proxy_header_t *out)
{
    if (!(versions & NF_PROXY_V1))
        return NF_EPROXY_VERSION;
    size_t lim = len < NF_PROXY_V1_MAX ? len : NF_PROXY_V1_MAX;
    for (size_t i = sizeof(v1sig); i < lim; i++) {
        unsigned char ch = (unsigned char)b[i];
        if (ch == '\r') {
            if (i + 1 >= lim)
                break; /* the LF is not here yet (or past the limit) */
            if (b[i + 1] != '\n')
                return NF_EPROXY;
            int err = v1_line(b, i, out);
            if (err)
                return err;
            out->header_len = i + 2;
            return (int)(i + 2);
        }
        if (ch < 0x20 || ch > 0x7e)
            return NF_EPROXY;
    }
    return len >= NF_PROXY_V1_MAX ? NF_EPROXY_TOOLARGE : NF_EPROXY_INCOMPLETE;
}

/* ---- v2 ----------------------------------------------------------------- */

static size_t v2_addr_len(int fam)
{
    switch (fam) {
    case 1: return 12;  /* AF_INET: 4 + 4 + 2 + 2 */
    case 2: return 36;  /* AF_INET6: 16 + 16 + 2 + 2 */
    case 3: return 216; /* AF_UNIX: 108 + 108 */
    default: return 0;  /* UNSPEC */
    }
}

static int parse_v2(const unsigned char *b, size_t len, unsigned versions, size_t max, nf_proxy_header_t *out)
{
    if (!(versions & NF_PROXY_V2))
        return NF_EPROXY_VERSION;
    if (len < 13)
        return NF_EPROXY_INCOMPLETE;
    unsigned ver = b[12] >> 4, cmd = b[12] & 0x0f;
    if (ver != 2 || cmd > 1)
        return NF_EPROXY;
    if (len < 14)
        return NF_EPROXY_INCOMPLETE;
    unsigned fam = b[13] >> 4, proto = b[13] & 0x0f;
    /* LOCAL: the family and the block are ignored (the spec says so) */
    if (cmd == NF_PROXY_CMD_PROXY && (fam > 3 || proto > 2))
        return NF_EPROXY;
    if (len < 16)
        return NF_EPROXY_INCOMPLETE;
    size_t blen = ((size_t)b[14] << 8) | b[15], total = NF_PROXY_V2_MIN + blen;
    if (total > max)
        return NF_EPROXY_TOOLARGE;
    size_t alen = cmd == NF_PROXY_CMD_PROXY ? v2_addr_len((int)fam) : 0;
    if (blen < alen)
        return NF_EPROXY; /* too short for the family's addresses */
    if (len < total)
        return NF_EPROXY_INCOMPLETE;

    nf_proxy_header_t h;
    memset(&h, 0, sizeof(h));
    h.version = 2;
    h.command = (int)cmd;
    h.family = AF_UNSPEC;
    h.transport = cmd == NF_PROXY_CMD_PROXY ? (int)proto : NF_PROXY_TRANSPORT_UNSPEC;
    const unsigned char *a = b + NF_PROXY_V2_MIN;
    if (cmd == NF_PROXY_CMD_PROXY) {
        switch (fam) {
        case 1:
            h.family = AF_INET;
            h.src.u.in4.sin_family = h.dst.u.in4.sin_family = AF_INET;
            memcpy(&h.src.u.in4.sin_addr, a, 4);
            memcpy(&h.dst.u.in4.sin_addr, a + 4, 4);
            memcpy(&h.src.u.in4.sin_port, a + 8, 2); /* both in network order */
            memcpy(&h.dst.u.in4.sin_port, a + 10, 2);
            h.src.len = h.dst.len = sizeof(struct sockaddr_in);
            break;
        case 2:
            h.family = AF_INET6;
            h.src.u.in6.sin6_family = h.dst.u.in6.sin6_family = AF_INET6;
            memcpy(&h.src.u.in6.sin6_addr, a, 16);
            memcpy(&h.dst.u.in6.sin6_addr, a + 16, 16);
            memcpy(&h.src.u.in6.sin6_port, a + 32, 2);
            memcpy(&h.dst.u.in6.sin6_port, a + 34, 2);
            h.src.len = h.dst.len = sizeof(struct sockaddr_in6);
            break;
        case 3:
            h.family = AF_UNIX;
            memcpy(h.src_path, a, NF_PROXY_UNIX_PATH);
            memcpy(h.dst_path, a + NF_PROXY_UNIX_PATH, NF_PROXY_UNIX_PATH);
            break;
        default: break;
        }
        /* TLVs: type (1), length (2, big endian), value; each inside the block */
        size_t off = NF_PROXY_V2_MIN + alen;
        h.tlv_off = off;
        h.tlv_len = total - off;
        while (off < total) {
            if (total - off < 3)
                return NF_EPROXY;
            size_t vlen = ((size_t)b[off + 1] << 8) | b[off + 2];
            if (vlen > total - off - 3)
                return NF_EPROXY;
            off += 3 + vlen;
        }
    }
    h.header_len = total;
    *out = h;
    return (int)total;
}

NF__EXPORT int nf_proxy_parse(const void *buf, size_t len, unsigned versions, size_t max_header, nf_proxy_header_t *out)
{
    const unsigned char *b = buf;
    if (!versions)
        versions = NF_PROXY_BOTH;
    if (!max_header)
        max_header = NF_PROXY_MAX_HEADER;
    if (max_header > NF_PROXY_V2_MIN + 65535)
        max_header = NF_PROXY_V2_MIN + 65535;
    if (len == 0)
        return NF_EPROXY_INCOMPLETE;
    if (b[0] == 'P') {
        size_t n = len < sizeof(v1sig) ? len : sizeof(v1sig);
        if (memcmp(b, v1sig, n) != 0)
            return NF_EPROXY_NOHEADER;
        if (len < sizeof(v1sig))
            return NF_EPROXY_INCOMPLETE;
        return parse_v1(buf, len, versions, out);
    }
    size_t n = len < sizeof(v2sig) ? len : sizeof(v2sig);
    if (memcmp(b, v2sig, n) != 0)
        return NF_EPROXY_NOHEADER;
    if (len < sizeof(v2sig))
        return NF_EPROXY_INCOMPLETE;
    return parse_v2(b, len, versions, max_header, out);
}
