/* netframe — error names and messages. */
#include <string.h>

#include "core/internal.h"

NF__EXPORT const char *nf_strerror(int err)
{
    switch (err) {
    case 0: return "ok";
    case NF_EOF: return "connection closed by peer";
    case NF_ECLOSED: return "closing or closed";
    case NF_ELIMIT: return "limit reached";
    case NF_EBACKEND: return "backend not available";
    case NF_EADDR: return "bad or unresolvable address";
    }
    if (err < 0 && err > -4096)
        return strerror(-err); /* glibc: static strings for known codes */
    return "unknown error";
}

NF__EXPORT const char *nf_err_name(int err)
{
    switch (err) {
    case 0: return "ok";
    case NF_EOF: return "NF_EOF";
    case NF_ECLOSED: return "NF_ECLOSED";
    case NF_ELIMIT: return "NF_ELIMIT";
    case NF_EBACKEND: return "NF_EBACKEND";
    case NF_EADDR: return "NF_EADDR";
    }
    if (err < 0 && err > -4096) {
        const char *n = strerrorname_np(-err);
        if (n)
            return n;
    }
    return "unknown";
}
