/* netframe — error names and messages, from the one list in error.h: the
 * core names every layer's codes without including any layer's header. */
#include <string.h>

#include "base/export.h"
#include "netframe/error.h"

NF__EXPORT const char *nf_strerror(int err)
{
#define MSG(code, value, text)                                                                                         \
    case code: return text;
    switch (err) {
    case 0: return "ok"; NF_ERRNO_MAP(MSG)
    }
#undef MSG
    if (err < 0 && err > -4096)
        return strerror(-err); /* glibc: static strings for known codes */
    return "unknown error";
}

NF__EXPORT const char *nf_err_name(int err)
{
#define NAME(code, value, text)                                                                                        \
    case code: return #code;
    switch (err) {
    case 0: return "ok"; NF_ERRNO_MAP(NAME)
    }
#undef NAME
    if (err < 0 && err > -4096) {
        const char *n = strerrorname_np(-err);
        if (n)
            return n;
    }
    return "unknown";
}
