/* tls_mkcerts — makes the test certificates (tls_certs.h) in a fresh
 * temporary directory and prints its path. For the interop scripts and the
 * TLS benchmark; the caller removes the directory. */
#include <stdio.h>

#include "tls_certs.h"

int main(void)
{
    tc_certs_t c;
    if (tc_make(&c) != 0) {
        fprintf(stderr, "tls_mkcerts: failed\n");
        return 1;
    }
    printf("%s\n", c.dir);
    return 0;
}
