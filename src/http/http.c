/* netframe — sans-I/O HTTP/1.1 head parser and writer (see netframe/http.h).
 *
 * Each line is first delimited (CR LF, with bare CR / bare LF rejected and the
 * length checked against its limit before the line is complete), then its
 * content is parsed knowing it holds no CR or LF. */
#include "netframe/http.h"
#include "base/export.h"

#include "internal.h"

#include <stdint.h>
#include <string.h>

#define NF__HTTP_DEF_LINE  8192
#define NF__HTTP_DEF_FIELD 8192
#define NF__HTTP_DEF_HEAD  65536

/* RFC 9110 5.6.2: tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" /
 * "-" / "." / "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA */
static int is_tchar(unsigned char c)
{
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
        return 1;
    switch (c) {
    case '!':
    case '#':
    case '$':
    case '%':
    case '&':
    case '\'':
    case '*':
    case '+':
    case '-':
    case '.':
    case '^':
    case '_':
    case '`':
    case '|':
    case '~': return 1;
    default: return 0;
    }
}

/* field-vchar / SP / HTAB: VCHAR, obs-text, SP, HTAB; no other controls. */
static int is_field_char(unsigned char c) { return c == '\t' || (c >= 0x20 && c != 0x7f); }

static unsigned char lower(unsigned char c) { return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c; }

static int ieq(const char *a, size_t alen, const char *b, size_t blen)
{
    if (alen != blen)
        return 0;
    for (size_t i = 0; i < alen; i++)
        if (lower((unsigned char)a[i]) != lower((unsigned char)b[i]))
            return 0;
    return 1;
}

typedef struct {
    size_t max_line, max_field, max_head;
} lim_t;

static void get_limits(lim_t *l, const nf_http_limits_t *in)
{
    l->max_line = (in && in->max_line) ? in->max_line : NF__HTTP_DEF_LINE;
    l->max_field = (in && in->max_field) ? in->max_field : NF__HTTP_DEF_FIELD;
    l->max_head = (in && in->max_head) ? in->max_head : NF__HTTP_DEF_HEAD;
}

/* Delimits the line starting at `start`. On success stores the offset of its
 * CR in *cr and returns 0. Returns NF_EHTTP_INCOMPLETE, NF_EHTTP_BAD (bare CR
 * or LF) or `too_long` when the line (CRLF included) exceeds `max`, as soon as
 * that is known. */
static int find_line(const char *buf, size_t len, size_t start, size_t max, int too_long, size_t *cr)
{
    size_t p = start;
    size_t end = len;
    /* Never look further than the longest allowed line. */
    if (end - start > max)
        end = start + max;
    while (p < end && buf[p] != '\r' && buf[p] != '\n')
        p++;
    if (p == end)
        return (end - start >= max) ? too_long : NF_EHTTP_INCOMPLETE;
    if (buf[p] == '\n')
        return NF_EHTTP_BAD;
    /* A CR whose line (with its LF) would be over the limit: too long,
     * whatever follows it, so the answer does not depend on whether the
     * next byte has arrived (a bare CR there was BAD with it, TOOLARGE
     * without; found by fuzz_http_stream). */
    if (p + 2 - start > max)
        return too_long;
    if (p + 1 >= len)
        return NF_EHTTP_INCOMPLETE;
    if (buf[p + 1] != '\n')
        return NF_EHTTP_BAD;
    *cr = p;
    return 0;
}

/* "HTTP/" DIGIT "." DIGIT at s[0..8). Returns the minor version (clamped to 1)
 * or an error. */
static int parse_version(const char *s, size_t n)
{
    if (n != 8 || memcmp(s, "HTTP/", 5) != 0 || s[6] != '.')
        return NF_EHTTP_BAD;
    if (s[5] < '0' || s[5] > '9' || s[7] < '0' || s[7] > '9')
        return NF_EHTTP_BAD;
    if (s[5] != '1')
        return NF_EHTTP_VERSION;
    /* RFC 9110 2.5: treat a higher minor version as the highest we speak. */
    return s[7] == '0' ? 0 : 1;
}

/* The fast path for a head fed in pieces (last_len: the length at the call
 * that returned NF_EHTTP_INCOMPLETE). True when the bytes added since cannot
 * change that answer: they hold no CR or LF (no line ended, no bare CR), the
 * line in progress is still under every line limit and the head, with the
 * CR LF that must still end that line, under its limit. Otherwise the
 * caller parses from the start, so the answer never depends on how the
 * bytes were cut; lines end at most max_headers + 2 times, so feeding a head byte by byte stays O(n * lines), not
 * O(n^2). */
static int still_incomplete(const char *buf, size_t len, size_t last_len, const lim_t *l)
{
    /* Near max_head the full parse decides: a line in progress that cannot
     * end (CR LF) within max_head is TOOLARGE there, whatever the cut. */
    if (last_len == 0 || last_len > len || len + 2 > l->max_head)
        return 0;
    size_t from = last_len - 1; /* a CR that ended the previous piece */
    const char *p = buf + from;
    for (size_t i = from; i < len; i++, p++)
        if (*p == '\r' || *p == '\n')
            return 0;
    size_t limit = l->max_line < l->max_field ? l->max_line : l->max_field;
    size_t back = len < limit ? len : limit;
    const char *nl = NULL;
    for (const char *q = buf + len; q > buf + len - back; q--)
        if (q[-1] == '\n') {
            nl = q - 1;
            break;
        }
    size_t line = nl ? (size_t)(buf + len - (nl + 1)) : len;
    /* room for the CRLF still to come; a longer line is judged in full */
    return nl || len < limit ? line + 2 <= limit : 0;
}

/* Parses header lines from `p` to the empty line. Returns the head length or
 * an error. */
static int parse_fields(const char *buf, size_t len, size_t p, const lim_t *l, nf_http_header_t *headers,
                        size_t max_headers, size_t *num)
{
    size_t n = 0;
    for (;;) {
        size_t cr;
        if (p >= len)
            return len > l->max_head ? NF_EHTTP_TOOLARGE : NF_EHTTP_INCOMPLETE;
        /* The head limit also bounds this line. */
        size_t room = p < l->max_head ? l->max_head - p : 0;
        size_t max = l->max_field < room ? l->max_field : room;
        if (max < 2)
            return NF_EHTTP_TOOLARGE;
        int rc = find_line(buf, len, p, max, NF_EHTTP_TOOLARGE, &cr);
        if (rc)
            return rc;
        if (cr == p) { /* empty line: end of head */
            *num = n;
            size_t total = cr + 2;
            if (total > l->max_head || total > INT32_MAX)
                return NF_EHTTP_TOOLARGE;
            return (int)total;
        }
        const char *s = buf + p;
        size_t sl = cr - p;
        if (s[0] == ' ' || s[0] == '\t')
            return NF_EHTTP_BAD; /* obs-fold, or whitespace before the name */
        size_t i = 0;
        while (i < sl && is_tchar((unsigned char)s[i]))
            i++;
        if (i == 0 || i == sl || s[i] != ':')
            return NF_EHTTP_BAD; /* no name, no colon, or bad name char */
        size_t name_len = i++;
        while (i < sl && (s[i] == ' ' || s[i] == '\t'))
            i++;
        size_t vstart = i;
        size_t vend = sl;
        for (size_t k = vstart; k < sl; k++)
            if (!is_field_char((unsigned char)s[k]))
                return NF_EHTTP_BAD;
        while (vend > vstart && (s[vend - 1] == ' ' || s[vend - 1] == '\t'))
            vend--;
        if (n >= max_headers)
            return NF_EHTTP_TOOLARGE;
        headers[n].name = s;
        headers[n].name_len = name_len;
        headers[n].value = s + vstart;
        headers[n].value_len = vend - vstart;
        n++;
        p = cr + 2;
    }
}

/* The request line s[0..sl) (RFC 9112 3): method SP target SP version. */
static int request_line(const char *s, size_t sl, nf_http_request_t *req)
{
    size_t i = 0;
    while (i < sl && is_tchar((unsigned char)s[i]))
        i++;
    if (i == 0 || i == sl || s[i] != ' ')
        return NF_EHTTP_BAD;
    req->method = s;
    req->method_len = i++;
    size_t t = i;
    while (i < sl && (unsigned char)s[i] > 0x20 && (unsigned char)s[i] < 0x7f)
        i++;
    if (i == t || i == sl || s[i] != ' ')
        return NF_EHTTP_BAD;
    req->target = s + t;
    req->target_len = i - t;
    i++;
    int rc = parse_version(s + i, sl - i);
    if (rc < 0)
        return rc;
    req->minor_version = rc;
    return 0;
}

/* The status line s[0..sl) (RFC 9112 4): version SP 3DIGIT SP [reason]. */
static int status_line(const char *s, size_t sl, nf_http_response_t *res)
{
    if (sl < 12 || s[8] != ' ')
        return NF_EHTTP_BAD;
    int rc = parse_version(s, 8);
    if (rc < 0)
        return rc;
    res->minor_version = rc;
    if (s[9] < '1' || s[9] > '9' || s[10] < '0' || s[10] > '9' || s[11] < '0' || s[11] > '9')
        return NF_EHTTP_BAD;
    res->status = (s[9] - '0') * 100 + (s[10] - '0') * 10 + (s[11] - '0');
    if (sl == 12) {
        res->reason = s + 12;
        res->reason_len = 0;
        return 0;
    }
    if (s[12] != ' ')
        return NF_EHTTP_BAD;
    for (size_t k = 13; k < sl; k++)
        if (!is_field_char((unsigned char)s[k]))
            return NF_EHTTP_BAD;
    res->reason = s + 13;
    res->reason_len = sl - 13;
    return 0;
}

/* One head, a request's (req set) or a response's (res set): the limits,
 * NF_EHTTP_INCOMPLETE at once when the bytes added since last_len cannot
 * have completed it, the first line, then the fields. A request skips
 * empty lines before its request line (RFC 9112 2.2), says URITOOLONG for a
 * line over max_line and must name its Host once (3.2); a response starts
 * at byte 0 and says TOOLARGE. */
static int parse_head(const char *buf, size_t len, size_t last_len, const nf_http_limits_t *limits,
                      nf_http_request_t *req, nf_http_response_t *res, nf_http_header_t *headers, size_t max_headers)
{
    lim_t l;
    get_limits(&l, limits);
    if (still_incomplete(buf, len, last_len, &l))
        return NF_EHTTP_INCOMPLETE;
    size_t p = 0;
    while (req && p < len && buf[p] == '\r') {
        if (p + 1 >= len)
            return NF_EHTTP_INCOMPLETE;
        if (buf[p + 1] != '\n')
            return NF_EHTTP_BAD;
        p += 2;
        if (p > l.max_head)
            return NF_EHTTP_TOOLARGE;
    }
    if (req && p < len && buf[p] == '\n')
        return NF_EHTTP_BAD;
    size_t cr;
    int rc = find_line(buf, len, p, l.max_line, req ? NF_EHTTP_URITOOLONG : NF_EHTTP_TOOLARGE, &cr);
    if (rc)
        return rc;
    rc = req ? request_line(buf + p, cr - p, req) : status_line(buf + p, cr - p, res);
    if (rc < 0)
        return rc;
    size_t *num = req ? &req->num_headers : &res->num_headers;
    if (req)
        req->headers = headers;
    else
        res->headers = headers;
    *num = 0;
    rc = parse_fields(buf, len, cr + 2, &l, headers, max_headers, num);
    if (rc < 0 || !req)
        return rc;
    /* RFC 9112 3.2: exactly one Host in HTTP/1.1; never more than one. */
    size_t hosts = nf_http_count_headers(headers, req->num_headers, "host");
    if (hosts > 1 || (req->minor_version == 1 && hosts == 0))
        return NF_EHTTP_BAD;
    return rc;
}

NF__EXPORT int nf_http_parse_request(const char *buf, size_t len, size_t last_len, nf_http_request_t *req,
                                     nf_http_header_t *headers, size_t max_headers, const nf_http_limits_t *limits)
{
    return parse_head(buf, len, last_len, limits, req, NULL, headers, max_headers);
}

NF__EXPORT int nf_http_parse_response(const char *buf, size_t len, size_t last_len, nf_http_response_t *res,
                                      nf_http_header_t *headers, size_t max_headers, const nf_http_limits_t *limits)
{
    return parse_head(buf, len, last_len, limits, NULL, res, headers, max_headers);
}

int nf__http_parse_fields(const char *buf, size_t len, const nf_http_limits_t *limits, nf_http_header_t *headers,
                          size_t max_headers, size_t *num)
{
    lim_t l;
    get_limits(&l, limits);
    *num = 0;
    return parse_fields(buf, len, 0, &l, headers, max_headers, num);
}

NF__EXPORT int nf_http_error_status(int err)
{
    switch (err) {
    case NF_EHTTP_BAD: return 400;
    case NF_EHTTP_URITOOLONG: return 414;
    case NF_EHTTP_TOOLARGE: return 431;
    case NF_EHTTP_VERSION: return 505;
    default: return (err >= 0 || err == NF_EHTTP_INCOMPLETE) ? 0 : 500;
    }
}

NF__EXPORT const nf_http_header_t *nf_http_find_header(const nf_http_header_t *headers, size_t n, const char *name)
{
    size_t nl = strlen(name);
    for (size_t i = 0; i < n; i++)
        if (ieq(headers[i].name, headers[i].name_len, name, nl))
            return &headers[i];
    return NULL;
}

NF__EXPORT size_t nf_http_count_headers(const nf_http_header_t *headers, size_t n, const char *name)
{
    size_t nl = strlen(name), c = 0;
    for (size_t i = 0; i < n; i++)
        if (ieq(headers[i].name, headers[i].name_len, name, nl))
            c++;
    return c;
}

NF__EXPORT int nf_http_list_has_token(const char *value, size_t len, const char *token)
{
    size_t tl = strlen(token);
    size_t i = 0;
    while (i < len) {
        size_t start, end;
        while (i < len && (value[i] == ' ' || value[i] == '\t'))
            i++;
        start = i;
        while (i < len && value[i] != ',')
            i++;
        end = i;
        while (end > start && (value[end - 1] == ' ' || value[end - 1] == '\t'))
            end--;
        if (end > start && ieq(value + start, end - start, token, tl))
            return 1;
        i++; /* skip the comma */
    }
    return 0;
}

NF__EXPORT int nf_http_headers_have_token(const nf_http_header_t *headers, size_t n, const char *name,
                                          const char *token)
{
    size_t nl = strlen(name);
    for (size_t i = 0; i < n; i++)
        if (ieq(headers[i].name, headers[i].name_len, name, nl) &&
            nf_http_list_has_token(headers[i].value, headers[i].value_len, token))
            return 1;
    return 0;
}

NF__EXPORT const char *nf_http_reason(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 426: return "Upgrade Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
    }
}

/* --- writer --- */

typedef struct {
    char *out;
    size_t cap, len;
    int err;
} wr_t;

static void put(wr_t *w, const char *s, size_t n)
{
    if (w->err)
        return;
    if (w->cap - w->len < n) {
        w->err = NF_EHTTP_NOSPACE;
        return;
    }
    memcpy(w->out + w->len, s, n);
    w->len += n;
}

static void puts_(wr_t *w, const char *s) { put(w, s, strlen(s)); }

static int valid_token(const char *s, size_t n)
{
    if (n == 0)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!is_tchar((unsigned char)s[i]))
            return 0;
    return 1;
}

static int valid_text(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!is_field_char((unsigned char)s[i]))
            return 0;
    return 1;
}

static int write_fields(wr_t *w, const nf_http_header_t *headers, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const nf_http_header_t *h = &headers[i];
        if (!valid_token(h->name, h->name_len) || !valid_text(h->value, h->value_len))
            return NF_EHTTP_INVALID;
        put(w, h->name, h->name_len);
        put(w, ": ", 2);
        put(w, h->value, h->value_len);
        put(w, "\r\n", 2);
    }
    put(w, "\r\n", 2);
    if (w->err)
        return w->err;
    if (w->len > INT32_MAX)
        return NF_EHTTP_NOSPACE;
    return (int)w->len;
}

NF__EXPORT int nf_http_write_response(char *out, size_t cap, int status, const char *reason,
                                      const nf_http_header_t *headers, size_t n)
{
    wr_t w = {out, cap, 0, 0};
    char code[5];
    if (status < 100 || status > 999)
        return NF_EHTTP_INVALID;
    if (!reason)
        reason = nf_http_reason(status);
    if (!valid_text(reason, strlen(reason)))
        return NF_EHTTP_INVALID;
    code[0] = ' ';
    code[1] = (char)('0' + status / 100);
    code[2] = (char)('0' + status / 10 % 10);
    code[3] = (char)('0' + status % 10);
    code[4] = ' ';
    puts_(&w, "HTTP/1.1");
    put(&w, code, 5);
    puts_(&w, reason);
    put(&w, "\r\n", 2);
    return write_fields(&w, headers, n);
}

NF__EXPORT int nf_http_write_request(char *out, size_t cap, const char *method, const char *target,
                                     const nf_http_header_t *headers, size_t n)
{
    wr_t w = {out, cap, 0, 0};
    size_t tl = strlen(target);
    if (!valid_token(method, strlen(method)) || tl == 0)
        return NF_EHTTP_INVALID;
    for (size_t i = 0; i < tl; i++)
        if ((unsigned char)target[i] <= 0x20 || (unsigned char)target[i] >= 0x7f)
            return NF_EHTTP_INVALID;
    puts_(&w, method);
    put(&w, " ", 1);
    put(&w, target, tl);
    puts_(&w, " HTTP/1.1\r\n");
    return write_fields(&w, headers, n);
}
