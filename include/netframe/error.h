/* netframe — error codes.
 *
 * Every function that can fail returns an int: 0 (or a count) on success, a
 * negative errno value (-ECONNREFUSED, -ETIMEDOUT, ...) or one of the NF_E...
 * codes below on failure. The NF_E... codes lie outside errno's range, so one
 * int carries both kinds. */
#ifndef NETFRAME_ERROR_H
#define NETFRAME_ERROR_H

#ifdef __cplusplus
extern "C" {
#endif

enum {
    NF_EOF = -5001,      /* the peer closed its side of the stream (FIN) */
    NF_ECLOSED = -5002,  /* the object is closing or closed */
    NF_ELIMIT = -5003,   /* a configured limit was reached (connections, sizes) */
    NF_EBACKEND = -5004, /* the requested backend is not available here */
    NF_EADDR = -5005,    /* an address could not be parsed or resolved */
    NF_EWQFULL = -5006,  /* a write would take the transport write queue past
                          * its ceiling (nf_conn_set_write_limits): the write
                          * is refused and the connection closes with it */
};

/* Returns a static, human-readable string for an error code: a negative
 * errno, an NF_E... code, or 0 ("ok"). Never returns NULL. */
const char *nf_strerror(int err);

/* Returns a short symbolic name for a code ("ECONNRESET", "NF_EOF", "ok"). */
const char *nf_err_name(int err);

#ifdef __cplusplus
}
#endif
#endif
