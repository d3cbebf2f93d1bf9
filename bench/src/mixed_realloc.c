/*
 * mixed_realloc: one thread keeps a live set of `live` blocks of log-uniform sizes from
 * 8 B to 1 MiB (each power-of-two octave equally likely) and churns it: a random slot is
 * either replaced by a fresh block or grown step by step with realloc (x1.5 per step, a
 * few steps, as a growing string or vector does).  Small, medium and large paths and
 * realloc's in-place growth / move / mremap are all exercised.  Each block carries a tag
 * in its first and last byte; the first is checked after every realloc (contents must
 * move with the block).
 * ops = allocator calls (malloc + realloc + free).  Arguments: ops, live, max.
 */
#include "bench.h"

int main(int argc, char **argv)
{
    long ops = arg_long(argc, argv, "ops", 1000000);
    long live = arg_long(argc, argv, "live", 256);
    size_t max = (size_t)arg_long(argc, argv, "max", 1 << 20);
    CHECK(live >= 1 && max >= 16, "a benchmark's own check");

    unsigned char **slot = (unsigned char **)bench_array(sizeof(void *) * (size_t)live);
    size_t *len = (size_t *)bench_array(sizeof(size_t) * (size_t)live);
    rng_t rng = rng_seed(3);
    long calls = 0;

    bench_time_t t0 = bench_now();
    while (calls < ops) {
        long i = (long)rng_below(&rng, (uint64_t)live);
        unsigned char tag = (unsigned char)(i * 37 + 1);
        if (slot[i] && rng_below(&rng, 4) == 0) {
            /* growth chain: 2..6 reallocs, each 1.5x (+16) the previous size */
            long steps = (long)rng_range(&rng, 2, 6);
            for (long s = 0; s < steps && len[i] < max; s++) {
                size_t n = len[i] + len[i] / 2 + 16;
                if (n > max) n = max;
                slot[i] = (unsigned char *)realloc(slot[i], n);
                calls++;
                CHECK(slot[i] && slot[i][0] == tag, "a benchmark's own check");
                slot[i][n - 1] = tag;
                len[i] = n;
            }
        } else {
            free(slot[i]); /* free(NULL) on the first visit: counted, it is a call too */
            size_t n = rng_log_range(&rng, 8, max);
            slot[i] = (unsigned char *)malloc(n);
            calls += 2;
            slot[i][0] = tag;
            slot[i][n - 1] = tag;
            len[i] = n;
        }
    }
    bench_time_t t = bench_since(t0);
    for (long i = 0; i < live; i++) free(slot[i]);
    bench_result(calls, t, "");
    return 0;
}
