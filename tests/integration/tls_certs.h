/* Test certificates made at test time (see tls_certs.c). Files in dir:
 *   ca.pem/.key       the test CA
 *   server.pem/.key   CN=localhost, SAN DNS:localhost, IP:127.0.0.1 (CA-signed)
 *   other.pem/.key    SAN DNS:other.test (CA-signed; the second SNI name)
 *   expired.pem/.key  like server, expired yesterday
 *   self.pem/.key     like server, self-signed
 *   client.pem/.key   CN=netframe test client (CA-signed) */
#ifndef NF_TLS_CERTS_H
#define NF_TLS_CERTS_H

typedef struct tc_certs {
    char dir[256];
} tc_certs_t;

int tc_make(tc_certs_t *out); /* 0 or -1 */
/* dir/file, in one of 8 rotating static buffers. */
const char *tc_path(const tc_certs_t *c, const char *file);
void tc_cleanup(tc_certs_t *c);

#endif
