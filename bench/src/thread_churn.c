/*
 * thread_churn: thousands of short-lived threads, `concurrent` of them alive at a time
 * (the main thread joins the oldest and starts a new one).  Each thread allocates
 * `blocks` blocks (mostly 16..1024 B, one in 16 of 1..16 KiB), frees three quarters of
 * them, and leaves the rest in a shared array of slots, freeing whatever it displaces
 * there: blocks that threads long dead allocated.  This is the life of a worker thread
 * in a thread-per-request server; it costs a heap's set-up and tear-down per thread, and
 * peak RSS shows whether memory that dead threads owned is reused.
 * ops = threads run.  Arguments: ops (threads), concurrent, blocks, slots.
 */
#include <stdatomic.h>
#include "bench.h"

#define MAXBLOCKS 1024

static long nblocks, nslots;
static _Atomic(void *) *shared;
static _Atomic long thread_seq;

static void *worker(void *arg)
{
    (void)arg;
    rng_t rng = rng_seed((uint64_t)atomic_fetch_add(&thread_seq, 1) + 13);
    void *mine[MAXBLOCKS];
    for (long i = 0; i < nblocks; i++) {
        size_t n = rng_below(&rng, 16) ? rng_range(&rng, 16, 1024) : rng_range(&rng, 1024, 16384);
        mine[i] = malloc(n);
        *(char *)mine[i] = (char)n;
    }
    for (long i = 0; i < nblocks; i++) {
        if (i % 4 != 0) {
            free(mine[i]);
        } else {
            void *old = atomic_exchange(&shared[rng_below(&rng, (uint64_t)nslots)], mine[i]);
            free(old);
        }
    }
    return NULL;
}

int main(int argc, char **argv)
{
    long nthreads = arg_long(argc, argv, "ops", 4000);
    int concurrent = (int)arg_long(argc, argv, "concurrent", 4);
    nblocks = arg_long(argc, argv, "blocks", 200);
    nslots = arg_long(argc, argv, "slots", 4096);
    CHECK(concurrent >= 1 && concurrent <= 64 && nblocks >= 1 && nblocks <= MAXBLOCKS, "a benchmark's own check");

    shared = (_Atomic(void *) *)bench_array(sizeof(void *) * (size_t)nslots);
    pthread_t ring[64];
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256 * 1024);

    bench_time_t t0 = bench_now();
    for (long i = 0; i < nthreads; i++) {
        if (i >= concurrent) pthread_join(ring[i % concurrent], NULL);
        CHECK(pthread_create(&ring[i % concurrent], &attr, worker, NULL) == 0, "a benchmark's own check");
    }
    for (long i = nthreads > concurrent ? nthreads - concurrent : 0; i < nthreads; i++)
        pthread_join(ring[i % concurrent], NULL);
    bench_time_t t = bench_since(t0);

    for (long i = 0; i < nslots; i++) free(atomic_load(&shared[i]));
    char extra[64];
    snprintf(extra, sizeof extra, "threads=%d", concurrent);
    bench_result(nthreads, t, extra);
    return 0;
}
