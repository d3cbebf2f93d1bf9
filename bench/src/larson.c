/*
 * larson: a server simulation in the style of Larson & Krishnan's benchmark.  `threads`
 * threads repeatedly replace random blocks (random 16..1000 B) in one SHARED array, so
 * blocks are freed by threads other than the one that allocated them, as when a server's
 * connection objects outlive the thread that made them.
 *
 * Most frees are remote by construction: the array's slots carry the allocating thread in
 * the low 4 bits of the pointer (blocks are 16-byte aligned), and a thread that swaps out
 * a block of its own swaps it into another random slot instead, up to `tries` times,
 * before freeing it.  With 2 threads running at once that makes ~95% of frees remote.
 * When the machine is loaded and the threads run by turns, a thread can only free the
 * other's blocks that are in the array: the array is large (32768 slots, ~16 MiB live) to
 * keep that share high, and the share achieved is reported (remote_pct).
 * With touch=1 every new block is written in full and every freed block read first, so
 * the cost of cache misses on memory the allocator hands out counts too.
 * ops = malloc+free pairs.  Arguments: ops (pairs per thread), threads (<= 16), slots,
 * min, max, touch, tries.
 */
#include <stdatomic.h>
#include "bench.h"

#define TAG 15 /* low pointer bits holding the allocating thread */

typedef struct {
    int id, touch, tries;
    long ops, slots;
    size_t min, max;
    _Atomic uintptr_t *array; /* shared by all threads: tagged block pointers */
    long remote, frees;
    uint64_t sink;
    char pad[64]; /* keep the threads' counters off each other's cache lines */
} worker_t;

static void *worker(void *arg)
{
    worker_t *w = (worker_t *)arg;
    rng_t rng = rng_seed((uint64_t)w->id + 7);
    long remote = 0, frees = 0;
    uint64_t sink = 0;
    for (long i = 0; i < w->ops; i++) {
        size_t n = rng_range(&rng, w->min, w->max);
        unsigned char *p = (unsigned char *)malloc(n);
        CHECK(((uintptr_t)p & TAG) == 0, "a benchmark's own check");
        if (w->touch) memset(p, (int)n, n);
        else p[0] = (unsigned char)n;
        uintptr_t old = (uintptr_t)p | (uintptr_t)w->id;
        int t = 0;
        do /* put the block in, take one out; until the one taken out is someone else's */
            old = atomic_exchange_explicit(&w->array[rng_below(&rng, (uint64_t)w->slots)], old,
                                           memory_order_acq_rel);
        while (old && (int)(old & TAG) == w->id && ++t < w->tries);
        if (old) {
            unsigned char *q = (unsigned char *)(old & ~(uintptr_t)TAG);
            if (w->touch) sink += (uint64_t)q[0] + q[w->min - 1];
            remote += (int)(old & TAG) != w->id;
            frees++;
            free(q);
        }
    }
    w->remote = remote;
    w->frees = frees;
    w->sink = sink;
    return NULL;
}

int main(int argc, char **argv)
{
    int nthreads = (int)arg_long(argc, argv, "threads", 2);
    long ops = arg_long(argc, argv, "ops", 2000000);
    long slots = arg_long(argc, argv, "slots", 32768);
    size_t min = (size_t)arg_long(argc, argv, "min", 16);
    size_t max = (size_t)arg_long(argc, argv, "max", 1000);
    int touch = (int)arg_long(argc, argv, "touch", 0);
    int tries = (int)arg_long(argc, argv, "tries", 4);
    CHECK(nthreads >= 1 && nthreads <= TAG + 1 && slots >= 2 && min >= 16 && max >= min, "a benchmark's own check");

    _Atomic uintptr_t *array = (_Atomic uintptr_t *)bench_array(sizeof(uintptr_t) * (size_t)slots);
    worker_t *w = (worker_t *)bench_array(sizeof(worker_t) * (size_t)nthreads);
    for (int i = 0; i < nthreads; i++)
        w[i] = (worker_t){ .id = i, .touch = touch, .tries = tries, .ops = ops, .slots = slots,
                           .min = min, .max = max, .array = array };
    bench_time_t t0 = bench_now();
    bench_run_threads(nthreads, worker, w, sizeof(worker_t));
    bench_time_t t = bench_since(t0);
    long remote = 0, frees = 0;
    for (int i = 0; i < nthreads; i++) remote += w[i].remote, frees += w[i].frees;
    char extra[64];
    snprintf(extra, sizeof extra, "threads=%d remote_pct=%.1f", nthreads,
             frees ? 100.0 * (double)remote / (double)frees : 0.0);
    bench_result((long long)nthreads * ops, t, extra);
    return 0;
}
