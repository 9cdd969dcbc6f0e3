/* netframe — a server on N loops, one per thread.
 *
 * Each loop is created on its own thread (io_uring's SINGLE_ISSUER rings
 * belong to the thread that runs them) and every connection stays on the
 * loop that got it, for life: the hot path has no locks. Connections are
 * spread one of two ways:
 *
 *   NF_SERVER_REUSEPORT  one listener per loop on the same address with
 *                        SO_REUSEPORT; the kernel spreads connections by a
 *                        hash of their addresses. No hand-over cost.
 *   NF_SERVER_ACCEPTOR   one acceptor thread accepts and hands each socket to
 *                        the loops in turn (nf_loop_post + nf_conn_adopt):
 *                        an even spread whatever the addresses, at the cost
 *                        of a post per connection.
 *
 * nf_server_stop() is safe from any thread and from a signal handler; the
 * loops then close their listeners, close every connection (on_close runs,
 * with NF_CLOSE_LOCAL), run out and are freed by their own threads. */
#ifndef NETFRAME_SERVER_H
#define NETFRAME_SERVER_H

#include "loop.h"
#include "tcp.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct nf_server nf_server_t;

typedef enum nf_server_spread {
    NF_SERVER_REUSEPORT = 0,
    NF_SERVER_ACCEPTOR,
} nf_server_spread_t;

typedef struct nf_server_config {
    unsigned threads;          /* loops (and threads); 0: one per online CPU */
    nf_server_spread_t spread; /* how connections reach the loops */
    /* Every loop's configuration (mode, backend, buffers...). In NF_MODE_EVENT
     * each thread drives its loop from poll() on nf_loop_fd(), as a program
     * embedding netframe would. */
    nf_loop_config_t loop;
    /* Where to listen and what to run: host, port (0: the kernel picks one,
     * shared by all loops: see nf_server_addr), backlog, nodelay, keepalive,
     * handler, data (the listener's pointer; for NF_SERVER_ACCEPTOR it is
     * each connection's data). reuseport is set as the spread needs.
     * NF_SERVER_ACCEPTOR ignores filters, max_conns and oob_inline; the
     * write-queue limits (write_high_water, ...) apply in both spreads
     * (ACCEPTOR: set on each adopted connection after its on_open).
     * listen.handler NULL (NF_SERVER_REUSEPORT with on_loop_start only): no
     * TCP listener; the loops run what on_loop_start creates on each, e.g.
     * one SO_REUSEPORT UDP socket per loop (nf_udp_open, udp.h), closed in
     * on_loop_stop. Loop 0's on_loop_start returns before the others start,
     * so a port the kernel gave loop 0 can be shared through data. */
    nf_listen_config_t listen;
    /* Optional: called on each loop's thread once its loop exists, before it
     * runs (index 0 .. threads-1), e.g. to set nf_loop_set_data or start
     * timers. A non-zero return fails nf_server_start with that error. */
    int (*on_loop_start)(nf_server_t *s, nf_loop_t *loop, unsigned index);
    /* Optional: called on each loop's thread when the server stops, before
     * connections are closed; timers started in on_loop_start must be
     * stopped here. */
    void (*on_loop_stop)(nf_server_t *s, nf_loop_t *loop, unsigned index);
    void *data; /* the server's user pointer */
} nf_server_config_t;

/* Fills *cfg with the defaults: threads 0 (CPUs), reuseport, default loops,
 * host 127.0.0.1. */
void nf_server_config_init(nf_server_config_t *cfg);

/* Starts the threads, creates a loop and (REUSEPORT) a listener on each, and
 * returns once all are accepting. Returns 0 and sets *out, or the first
 * error (-EADDRINUSE, NF_EBACKEND, -ENOMEM, -EINVAL without a handler...);
 * nothing is left running then. */
int nf_server_start(nf_server_t **out, const nf_server_config_t *cfg);

/* Asks every loop to stop. Safe from any thread, from a loop callback and
 * from a signal handler (atomic stores and eventfd writes only); idempotent.
 * Returns at once: nf_server_wait() waits for the end. */
void nf_server_stop(nf_server_t *s);

/* Waits until every thread has finished (after nf_server_stop, or after
 * every loop failed). Returns 0, or the first error a loop returned. Not
 * from a loop thread of this server (-EDEADLK). Call once. */
int nf_server_wait(nf_server_t *s);

/* Frees the server after nf_server_wait. NULL is ignored. */
void nf_server_free(nf_server_t *s);

/* The address the loops listen on (with the kernel's port if port 0). */
int nf_server_addr(const nf_server_t *s, nf_addr_t *out);

unsigned nf_server_threads(const nf_server_t *s);

/* Loop `index` (0 .. threads-1), valid between nf_server_start and the end
 * of nf_server_wait; other threads may only nf_loop_post to it. */
nf_loop_t *nf_server_loop(const nf_server_t *s, unsigned index);

/* The sum of every loop's counters (conns_open, bytes_in, ...; the high-water
 * marks are maxima). While the server runs, each loop is asked for a
 * snapshot through its post queue and the caller waits for the answers (up
 * to 1 s), so do not call it from a loop thread of this server (-EDEADLK);
 * after nf_server_wait it reads the final counters. Optional per_loop
 * (threads entries) receives each loop's own. Returns 0 or -errno. */
int nf_server_stats(nf_server_t *s, nf_loop_stats_t *out, nf_loop_stats_t *per_loop);

void *nf_server_get_data(const nf_server_t *s);

#ifdef __cplusplus
}
#endif
#endif
