/*
 * oversub: `threads` threads (64, 256, 1024 in the suite) on a 2-core machine, each doing
 * small malloc/free work: it replaces random blocks (16..256 B) of its own small live set,
 * and every `remote`-th operation swaps a fresh block into a shared mailbox and frees what
 * it took out, usually a block of another thread.  With so many more threads than cores,
 * threads are preempted mid-operation all the time: an allocator that spins on a lock, or
 * whose per-thread state is costly to create or hold, shows it here (time and RSS).
 * The total work is fixed (ops are split over the threads), so rows with different thread
 * counts compare directly.  Time includes creating and joining the threads.
 * ops = malloc+free pairs.  Arguments: ops (total), threads, live (per thread), remote,
 * mailbox (slots).
 */
#include <stdatomic.h>
#include "bench.h"

#define MAXLIVE 256

typedef struct {
    int id;
    long ops, live, remote, mailbox_slots;
    _Atomic(void *) *mailbox;
} worker_t;

static void *worker(void *arg)
{
    worker_t *w = (worker_t *)arg;
    rng_t rng = rng_seed((uint64_t)w->id + 11);
    void *mine[MAXLIVE] = { 0 };
    for (long i = 0; i < w->ops; i++) {
        long k = (long)rng_below(&rng, (uint64_t)w->live);
        free(mine[k]);
        mine[k] = malloc(rng_range(&rng, 16, 256));
        *(char *)mine[k] = (char)i;
        if (i % w->remote == 0) {
            void *p = malloc(rng_range(&rng, 16, 256));
            *(char *)p = (char)i;
            void *old = atomic_exchange_explicit(
                &w->mailbox[rng_below(&rng, (uint64_t)w->mailbox_slots)], p, memory_order_acq_rel);
            free(old);
        }
    }
    for (long k = 0; k < w->live; k++) free(mine[k]);
    return NULL;
}

int main(int argc, char **argv)
{
    int nthreads = (int)arg_long(argc, argv, "threads", 64);
    long ops = arg_long(argc, argv, "ops", 4000000);
    long live = arg_long(argc, argv, "live", 32);
    long remote = arg_long(argc, argv, "remote", 8);
    long slots = arg_long(argc, argv, "mailbox", 1024);
    CHECK(nthreads >= 1 && live >= 1 && live <= MAXLIVE && remote >= 1 && slots >= 1, "a benchmark's own check");

    _Atomic(void *) *mailbox = (_Atomic(void *) *)bench_array(sizeof(void *) * (size_t)slots);
    worker_t *w = (worker_t *)bench_array(sizeof(worker_t) * (size_t)nthreads);
    long per_thread = ops / nthreads;
    for (int i = 0; i < nthreads; i++)
        w[i] = (worker_t){ .id = i, .ops = per_thread, .live = live, .remote = remote,
                           .mailbox_slots = slots, .mailbox = mailbox };
    bench_time_t t0 = bench_now();
    bench_run_threads(nthreads, worker, w, sizeof(worker_t));
    bench_time_t t = bench_since(t0);
    for (long i = 0; i < slots; i++) free(atomic_load(&mailbox[i]));
    char extra[64];
    snprintf(extra, sizeof extra, "threads=%d", nthreads);
    /* pairs: the live-set replacements plus the mailbox swaps */
    bench_result((long long)nthreads * (per_thread + (per_thread + remote - 1) / remote), t, extra);
    return 0;
}
