/* netframe — private declarations shared by the files of src/http. */
#ifndef NF_HTTP_INTERNAL_H
#define NF_HTTP_INTERNAL_H

#include <stddef.h>

#include "netframe/http.h"

/* Parses header fields from buf[0..len) up to and including the empty line
 * that ends them (a trailer section), with the head parser's rules (tokens,
 * no obs-fold, no controls; lines end in CRLF). Lines are bounded by
 * limits->max_field and the whole by limits->max_head. Returns the bytes of
 * the section, NF_EHTTP_INCOMPLETE, NF_EHTTP_BAD or NF_EHTTP_TOOLARGE. */
int nf__http_parse_fields(const char *buf, size_t len, const nf_http_limits_t *limits, nf_http_header_t *headers,
                          size_t max_headers, size_t *num);

#endif
