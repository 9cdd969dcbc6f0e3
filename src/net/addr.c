/* netframe — socket addresses (numeric only: never blocks). */
#include <arpa/inet.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>

#include "net/transport.h"

NF__EXPORT int nf_addr_parse(nf_addr_t *out, const char *host, uint16_t port)
{
    memset(out, 0, sizeof(*out));
    if (!host || !*host || strcmp(host, "localhost") == 0)
        host = "127.0.0.1";
    char tmp[64];
    size_t n = strlen(host);
    if (host[0] == '[' && n >= 2 && host[n - 1] == ']') { /* "[::1]" */
        if (n - 2 >= sizeof(tmp))
            return NF_EADDR;
        memcpy(tmp, host + 1, n - 2);
        tmp[n - 2] = '\0';
        host = tmp;
    }
    if (inet_pton(AF_INET, host, &out->u.in4.sin_addr) == 1) {
        out->u.in4.sin_family = AF_INET;
        out->u.in4.sin_port = htons(port);
        out->len = sizeof(out->u.in4);
        return 0;
    }
    if (inet_pton(AF_INET6, host, &out->u.in6.sin6_addr) == 1) {
        out->u.in6.sin6_family = AF_INET6;
        out->u.in6.sin6_port = htons(port);
        out->len = sizeof(out->u.in6);
        return 0;
    }
    return NF_EADDR;
}

NF__EXPORT char *nf_addr_format(const nf_addr_t *a, char *buf, size_t size)
{
    char host[INET6_ADDRSTRLEN];
    if (size == 0)
        return buf;
    if (a->u.sa.sa_family == AF_INET) {
        inet_ntop(AF_INET, &a->u.in4.sin_addr, host, sizeof(host));
        snprintf(buf, size, "%s:%u", host, ntohs(a->u.in4.sin_port));
    } else if (a->u.sa.sa_family == AF_INET6) {
        inet_ntop(AF_INET6, &a->u.in6.sin6_addr, host, sizeof(host));
        snprintf(buf, size, "[%s]:%u", host, ntohs(a->u.in6.sin6_port));
    } else {
        snprintf(buf, size, "?");
    }
    return buf;
}

NF__EXPORT uint16_t nf_addr_port(const nf_addr_t *a)
{
    if (a->u.sa.sa_family == AF_INET)
        return ntohs(a->u.in4.sin_port);
    if (a->u.sa.sa_family == AF_INET6)
        return ntohs(a->u.in6.sin6_port);
    return 0;
}
