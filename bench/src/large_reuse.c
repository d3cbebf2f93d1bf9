/*
 * large_reuse: one thread mallocs a large block (log-uniform 64 KiB .. 32 MiB), writes
 * one byte in every page, frees it, and again.  An allocator that hands such blocks
 * straight back to the OS and maps them anew pays a page fault (and the kernel's zeroing)
 * for every page of every cycle; one that keeps and reuses them does not.
 * ops = malloc+touch+free cycles.  Arguments: ops, min, max.
 */
#include "bench.h"

int main(int argc, char **argv)
{
    long ops = arg_long(argc, argv, "ops", 2000);
    size_t min = (size_t)arg_long(argc, argv, "min", 64 << 10);
    size_t max = (size_t)arg_long(argc, argv, "max", 32 << 20);
    rng_t rng = rng_seed(4);
    size_t bytes = 0;

    bench_time_t t0 = bench_now();
    for (long i = 0; i < ops; i++) {
        size_t n = rng_log_range(&rng, min, max);
        unsigned char *p = (unsigned char *)malloc(n);
        CHECK(p, "a benchmark's own check");
        bench_touch(p, n, (unsigned char)i);
        free(p);
        bytes += n;
    }
    bench_time_t t = bench_since(t0);
    char extra[64];
    snprintf(extra, sizeof extra, "mib_touched=%zu", bytes >> 20);
    bench_result(ops, t, extra);
    return 0;
}
