/* netframe — io_uring: the ring's plumbing the other uring files build on:
 * submission entries, starting the ring on its thread, the registered file
 * table and the loop's ring of provided read buffers.
 *
 * Registered files (when fixed_files > 0): a sparse table of that many slots.
 * Each connection's socket is installed in a free slot at its first request
 * (io_uring_register_files_update), its receives and sends then name the
 * slot (IOSQE_FIXED_FILE: no fget/fput per request), and the slot is emptied
 * when the connection is released, before the net layer close()s the fd. The
 * plain fd stays open: socket options, getpeername, urgent data and shutdown
 * use it. A full table (or a refused update) leaves that connection on its
 * plain fd. */
#include <poll.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "backend/uring/uring.h"

/* A process-unique id for the calling thread (pthread_t values are reused by
 * new threads, and a ring's issuer must not be mistaken for its successor). */
uint64_t nf__uring_thread_id(void)
{
    static atomic_uint_fast64_t next = 1;
    static _Thread_local uint64_t id;
    if (NF__UNLIKELY(!id))
        id = atomic_fetch_add_explicit(&next, 1, memory_order_relaxed);
    return id;
}

/* On the running thread, before its first wait: enable a ring created
 * disabled (this thread becomes its single issuer) and register the ring fd
 * with this thread (io_uring_enter then skips the fd lookup). */
void nf__uring_start(nf__uring_t *u)
{
    u->started = true;
    u->issuer = nf__uring_thread_id();
    if (u->disabled) {
        /* io_uring_enable_rings() is declared but not exported by liburing 2.3 */
        syscall(__NR_io_uring_register, u->ring.ring_fd, IORING_REGISTER_ENABLE_RINGS, NULL, 0);
        u->disabled = false;
    }
    if (u->want_reg_fd && !u->reg_fd)
        u->reg_fd = io_uring_register_ring_fd(&u->ring) == 1;
}

/* The submission queue is full: make room. A ring still disabled (nothing
 * ran yet) is enabled here, by the thread that filled it. */
struct io_uring_sqe *nf__uring_sqe_full(nf__uring_t *u)
{
    if (!u->started)
        nf__uring_start(u);
    io_uring_submit(&u->ring);
    return io_uring_get_sqe(&u->ring);
}

/* ---- registered files ----------------------------------------------------------- */

/* Installs c's socket in a free slot of the fixed file table; with none free
 * (or the kernel refusing), c keeps its plain fd for life. */
void nf__uring_file_install(nf__uring_t *u, nf__io_t *c)
{
    if (u->nffree == 0 || c->fd < 0) {
        c->be_flags |= B_NOFIX;
        return;
    }
    unsigned slot = u->ffree[--u->nffree];
    if (io_uring_register_files_update(&u->ring, slot, &c->fd, 1) != 1) {
        u->ffree[u->nffree++] = slot;
        c->be_flags |= B_NOFIX;
        return;
    }
    c->be_slot = slot + 1;
    u->loop->stats.conns_fixed_file++;
}

/* Empties c's slot (nothing is in flight on it any more); the net layer then
 * close()s the plain fd, and the socket goes with its last reference. */
void nf__uring_file_release(nf__uring_t *u, nf__io_t *c)
{
    int none = -1;
    unsigned slot = c->be_slot - 1;
    io_uring_register_files_update(&u->ring, slot, &none, 1);
    u->ffree[u->nffree++] = slot;
    c->be_slot = 0;
    u->loop->stats.conns_fixed_file--;
}

int nf__uring_files_setup(nf_loop_t *loop, nf__uring_t *u)
{
    unsigned n = loop->cfg.fixed_files;
    u->ffree = malloc(n * sizeof(*u->ffree));
    if (!u->ffree)
        return -ENOMEM;
    int r = io_uring_register_files_sparse(&u->ring, n);
    if (r < 0) {
        free(u->ffree);
        u->ffree = NULL;
        return r;
    }
    for (unsigned i = 0; i < n; i++)
        u->ffree[i] = n - 1 - i; /* slot 0 first */
    u->nffree = u->nfiles = n;
    u->files = true;
    return 0;
}

/* ---- buffer ring ------------------------------------------------------------ */

void nf__uring_slot_add(nf__uring_t *u, unsigned bid)
{
    io_uring_buf_ring_add(u->br, u->slots[bid]->base, (unsigned)u->slots[bid]->cap, (unsigned short)bid, u->mask, 0);
    io_uring_buf_ring_advance(u->br, 1);
}

int nf__uring_bufring_setup(nf_loop_t *loop, nf__uring_t *u)
{
    unsigned n = loop->cfg.buf_count;
    u->br_bytes = n * sizeof(struct io_uring_buf);
    void *mem = mmap(NULL, u->br_bytes, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
    if (mem == MAP_FAILED)
        return -errno;
    struct io_uring_buf_reg reg = {.ring_addr = (uintptr_t)mem, .ring_entries = n, .bgid = BGID};
    int r = io_uring_register_buf_ring(&u->ring, &reg, 0);
    if (r < 0) {
        munmap(mem, u->br_bytes);
        return r;
    }
    u->br = mem;
    io_uring_buf_ring_init(u->br);
    u->slots = calloc(n, sizeof(*u->slots));
    if (!u->slots)
        return -ENOMEM;
    u->nslots = n;
    u->mask = io_uring_buf_ring_mask(n);
    for (unsigned i = 0; i < n; i++) {
        u->slots[i] = nf__rbuf_new(loop, loop->cfg.buf_size);
        if (!u->slots[i])
            return -ENOMEM;
        nf__uring_slot_add(u, i);
    }
    return 0;
}

void nf__uring_bufring_teardown(nf__uring_t *u)
{
    if (u->br) {
        io_uring_unregister_buf_ring(&u->ring, BGID);
        munmap(u->br, u->br_bytes);
        u->br = NULL;
    }
    if (u->slots) {
        for (unsigned i = 0; i < u->nslots; i++)
            nf_buf_unref(u->slots[i]);
        free(u->slots);
        u->slots = NULL;
    }
}

/* ---- the loop's own polls: the wake eventfd, the timerfd (event mode) ---------- */

void nf__uring_arm_wake(nf_loop_t *loop)
{
    nf__uring_t *u = U(loop);
    struct io_uring_sqe *sqe = nf__uring_sqe(u);
    io_uring_prep_poll_add(sqe, loop->wake_fd, POLLIN);
    io_uring_sqe_set_data64(sqe, nf__be_tag(NULL, OP_WAKE));
    u->wake_armed = true;
}

void nf__uring_arm_timerfd(nf_loop_t *loop)
{
    struct io_uring_sqe *sqe = nf__uring_sqe(U(loop));
    io_uring_prep_poll_add(sqe, loop->timer_fd, POLLIN);
    io_uring_sqe_set_data64(sqe, nf__be_tag(NULL, OP_TIMERFD));
}
