/* netframe — versions: of the headers a program was built with (the
 * NF_VERSION_* macros of the generated <netframe/config.h>) and of the
 * library it runs with (nf_version). Semantic versioning: README.md. */
#ifndef NETFRAME_VERSION_H
#define NETFRAME_VERSION_H

#include <netframe/config.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The library's version as "MAJOR.MINOR.PATCH" (static storage). */
const char *nf_version(void);
/* The library's version as one number, NF_VERSION_HEX's form: compare it
 * with the NF_VERSION_HEX a program was built with. */
unsigned nf_version_hex(void);

#ifdef __cplusplus
}
#endif

#endif
