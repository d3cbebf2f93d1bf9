/*
 * churn: one thread replaces random slots of a live set of `live` blocks with new blocks
 * of random size in [min, max] (default 8..512 B): every small size class is in play and
 * the free lists are stirred, unlike the fixed-size fast path.
 *
 * It is also the program behind the callgrind instruction counts (see run.sh):
 *   mode=0  malloc/free, the real thing;
 *   mode=1  baseline: the same loop, RNG and stores, but calling a stand-in that hands
 *           back one static buffer and frees nothing.
 * Both modes call through the same function pointers, so the loop compiles to the same
 * code (register spills around the calls included), and
 *   instructions(mode=0) - instructions(mode=1) + 3 (the stand-in's own instructions)
 * is what malloc+free cost.
 * Only churn_loop() is counted (callgrind --toggle-collect=churn_loop), after `warmup`
 * pairs have brought the allocator to its steady state.
 * ops = malloc+free pairs in the timed loop.  Arguments: ops, warmup, live, min, max, mode.
 */
#include "bench.h"

static char stub_block[64];
static void *stub_malloc(size_t n) { (void)n; return stub_block; }
static void stub_free(void *p) { (void)p; }

#ifdef __clang__
#define NO_IPA __attribute__((noinline))
#else
#define NO_IPA __attribute__((noipa)) /* no inlining, no cloning for constant arguments */
#endif

/* Not static: callgrind finds it by name to count only this loop. */
NO_IPA void churn_loop(void **slot, long live, long ops, size_t min, size_t max,
                       void *(*alloc)(size_t), void (*release)(void *), rng_t *rng)
{
    for (long i = 0; i < ops; i++) {
        uint64_t r = rng_next(rng);
        /* Low bits pick the slot (live is a power of two), high bits the size: no
         * division, so the loop itself stays a handful of instructions. */
        long idx = (long)(r & (uint64_t)(live - 1));
        size_t size = min + (size_t)(((r >> 32) * (max - min + 1)) >> 32);
        release(slot[idx]);
        slot[idx] = alloc(size);
        *(char *)slot[idx] = (char)size; /* use the block, as a program would */
    }
}

int main(int argc, char **argv)
{
    long ops = arg_long(argc, argv, "ops", 20000000);
    long warmup = arg_long(argc, argv, "warmup", 100000);
    long live = arg_long(argc, argv, "live", 4096);
    size_t min = (size_t)arg_long(argc, argv, "min", 8);
    size_t max = (size_t)arg_long(argc, argv, "max", 512);
    int baseline = (int)arg_long(argc, argv, "mode", 0);
    CHECK(live > 0 && (live & (live - 1)) == 0 && min >= 1 && max >= min, "a benchmark's own check");
    void *(*alloc)(size_t) = baseline ? stub_malloc : malloc;
    void (*release)(void *) = baseline ? stub_free : free;

    void **slot = (void **)bench_array(sizeof(void *) * (size_t)live);
    rng_t rng = rng_seed(1);
    for (long i = 0; i < live; i++) slot[i] = alloc(rng_range(&rng, min, max));

    churn_loop(slot, live, warmup, min, max, alloc, release, &rng);
    bench_time_t t0 = bench_now();
    churn_loop(slot, live, ops, min, max, alloc, release, &rng);
    bench_time_t t = bench_since(t0);

    for (long i = 0; i < live; i++) release(slot[i]);
    bench_result(ops, t, "");
    return 0;
}
