/* netframe — the TLS filter's two files (tls_ctx.c: contexts, shared by
 * loops; tls_conn.c: the filter, one SSL per connection): what they share.
 * Private to src/filter/. */
#ifndef NF_FILTER_TLS_PRIVATE_H
#define NF_FILTER_TLS_PRIVATE_H

#include <pthread.h>
#include <stdbool.h>

#include <openssl/ssl.h>

#include "base/fifo.h"
#include "netframe/timer.h"
#include "netframe/tls.h"

typedef struct sni_entry {
    char *name;
    SSL_CTX *ssl;
} sni_entry_t;

#define SESS_SLOTS 64

typedef struct sess_slot {
    char *host;
    SSL_SESSION *sess;
} sess_slot_t;

struct nf_tls_ctx {
    SSL_CTX *ssl;
    int server;
    int insecure;
    char *server_name;
    uint64_t hs_timeout_ms;
    size_t max_self_bytes;
    unsigned char *alpn; /* wire format */
    unsigned alpn_len;
    sni_entry_t *sni;
    unsigned nsni;
    bool cache;
    pthread_mutex_t mu; /* the session cache: contexts are shared by loops */
    sess_slot_t slots[SESS_SLOTS];
    unsigned next_slot;
};

/* One connection's state (tls_conn.c): the filter's state_size. */
typedef struct tls tls_t;
typedef struct tls_loop tls_loop_t; /* the loop's TLS counters (tls_conn.c) */

struct tls {
    nf_filter_t *f;
    SSL *ssl;
    nf_timer_t timer;
    const char *in; /* ciphertext not yet taken by OpenSSL (this on_read) */
    size_t in_len;
    nf_buf_t *out;   /* ciphertext OpenSSL wrote, not yet sent down */
    nf__fifo_t held; /* plaintext written before the handshake completed */
    nf__fifo_t self; /* our references to records we made by ourselves, sent down */
    tls_loop_t *lx;  /* the loop's counters */
    char *host;      /* client: server name for this connection */
    char err[128];   /* why it failed, "" if it did not */
    bool established;
    bool opened_up;
    bool eof_up;       /* on_eof passed up */
    bool sent_notify;  /* our close_notify went out */
    bool end_pending;  /* nf_conn_end during the handshake, with writes held */
    bool shut_pending; /* nf_conn_shutdown during the handshake */
    bool failed;
};

/* tls_ctx.c: made once per process (by the first nf_tls_ctx_new). */
extern int nf__tls_ex_index;           /* SSL ex_data slot: the connection's state */
extern BIO_METHOD *nf__tls_bio_method; /* our BIO over the filter's buffers */

/* tls_conn.c: the BIO's methods and the session cache's callback. */
int nf__tls_bio_write(BIO *b, const char *data, int len);
int nf__tls_bio_read(BIO *b, char *buf, int len);
long nf__tls_bio_ctrl(BIO *b, int cmd, long num, void *ptr);
int nf__tls_new_session_cb(SSL *ssl, SSL_SESSION *sess);

#endif
