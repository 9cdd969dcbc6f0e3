/* Test certificates, made at test time with libcrypto (EC P-256 keys, so it
 * takes milliseconds): a CA, leaf certificates it signs, an expired one and
 * a self-signed one, written as PEM files into a fresh temporary directory.
 * Nothing is checked in and nothing touches the network. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "tls_certs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

static EVP_PKEY *key_new(void) { return EVP_EC_gen("P-256"); }

static int write_pem(const char *dir, const char *name, X509 *x, EVP_PKEY *k)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s.pem", dir, name);
    FILE *f = fopen(path, "w");
    if (!f || !PEM_write_X509(f, x))
        return -1;
    fclose(f);
    snprintf(path, sizeof path, "%s/%s.key", dir, name);
    f = fopen(path, "w");
    if (!f || !PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL))
        return -1;
    fclose(f);
    return 0;
}

static void add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX v3;
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, issuer, x, NULL, NULL, 0);
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
    if (e) {
        X509_add_ext(x, e, -1);
        X509_EXTENSION_free(e);
    }
}

/* Makes a certificate for `cn` with subjectAltName `san` (may be NULL),
 * valid from now+from_days to now+to_days, signed by ca/cakey (or itself). */
static X509 *cert_new(EVP_PKEY *k, const char *cn, const char *san, long from_days, long to_days, X509 *ca,
                      EVP_PKEY *cakey, int is_ca, long serial)
{
    X509 *x = X509_new();
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
    X509_gmtime_adj(X509_getm_notBefore(x), from_days * 86400);
    X509_gmtime_adj(X509_getm_notAfter(x), to_days * 86400);
    X509_set_pubkey(x, k);
    X509_NAME *n = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(n, "O", MBSTRING_ASC, (const unsigned char *)"netframe tests", -1, -1, 0);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, ca ? X509_get_subject_name(ca) : n);
    add_ext(x, ca ? ca : x, NID_basic_constraints, is_ca ? "critical,CA:TRUE" : "CA:FALSE");
    if (is_ca)
        add_ext(x, x, NID_key_usage, "critical,keyCertSign,cRLSign");
    if (san)
        add_ext(x, ca ? ca : x, NID_subject_alt_name, san);
    X509_sign(x, ca ? cakey : k, EVP_sha256());
    return x;
}

int tc_make(tc_certs_t *out)
{
    memset(out, 0, sizeof *out);
    snprintf(out->dir, sizeof out->dir, "/tmp/nf_tls_XXXXXX");
    if (!mkdtemp(out->dir))
        return -1;
    EVP_PKEY *cak = key_new();
    X509 *ca = cert_new(cak, "netframe test CA", NULL, -1, 30, NULL, NULL, 1, 1);
    int rc = write_pem(out->dir, "ca", ca, cak);
    struct {
        const char *name, *cn, *san;
        long from, to;
        int self;
    } leaves[] = {
        {"server", "localhost", "DNS:localhost,IP:127.0.0.1", -1, 30, 0},
        {"other", "other.test", "DNS:other.test", -1, 30, 0},
        {"expired", "localhost", "DNS:localhost,IP:127.0.0.1", -10, -1, 0},
        {"self", "localhost", "DNS:localhost,IP:127.0.0.1", -1, 30, 1},
        {"client", "netframe test client", NULL, -1, 30, 0},
    };
    for (size_t i = 0; i < sizeof leaves / sizeof leaves[0] && rc == 0; i++) {
        EVP_PKEY *k = key_new();
        X509 *x = cert_new(k, leaves[i].cn, leaves[i].san, leaves[i].from, leaves[i].to, leaves[i].self ? NULL : ca,
                           leaves[i].self ? NULL : cak, 0, (long)(10 + i));
        rc = write_pem(out->dir, leaves[i].name, x, k);
        X509_free(x);
        EVP_PKEY_free(k);
    }
    X509_free(ca);
    EVP_PKEY_free(cak);
    return rc;
}

const char *tc_path(const tc_certs_t *c, const char *file)
{
    static char buf[8][600];
    static int i;
    char *p = buf[i++ % 8];
    snprintf(p, sizeof buf[0], "%s/%s", c->dir, file);
    return p;
}

void tc_cleanup(tc_certs_t *c)
{
    if (!c->dir[0])
        return;
    const char *names[] = {"ca", "server", "other", "expired", "self", "client"};
    char path[600];
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(path, sizeof path, "%s/%s.pem", c->dir, names[i]);
        unlink(path);
        snprintf(path, sizeof path, "%s/%s.key", c->dir, names[i]);
        unlink(path);
    }
    rmdir(c->dir);
    c->dir[0] = 0;
}
