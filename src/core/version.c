/* netframe — the library's version (the headers' is in netframe/config.h). */
#include "base/export.h"
#include "netframe/version.h"

NF__EXPORT const char *nf_version(void) { return NF_VERSION_STRING; }

NF__EXPORT unsigned nf_version_hex(void) { return NF_VERSION_HEX; }
