/*
 * density: memory cost of live blocks of one size.  Allocates `count` blocks of `size`
 * bytes (default min(1,000,000, 64 MiB / size): enough to swamp fixed costs, few enough
 * that page faults do not dominate the run), writes the first bytes of each and one byte
 * in each further page so that every page a block covers is resident, and reports
 *     density     = RSS growth / (count * size rounded up to 16)
 *     density_raw = RSS growth / (count * size)
 * The 16-byte rounding is what any allocator honouring the x86_64 ABI's 16-byte alignment
 * must spend at least, so density 1.00 is perfect and 1.25 means a quarter wasted.
 * The allocator is warmed up (one malloc/free of the size) before the first RSS reading,
 * and the pointer array comes from mmap, already resident, so neither is counted.
 * ops = blocks.  Arguments: size, count.
 */
#include "bench.h"

int main(int argc, char **argv)
{
    size_t size = (size_t)arg_long(argc, argv, "size", 64);
    long def = (64L << 20) / (long)size;
    long count = arg_long(argc, argv, "count", def < 1000000 ? def : 1000000);
    CHECK(size >= 1 && count >= 1, "a benchmark's own check");
    unsigned char **blk = (unsigned char **)bench_array(sizeof(void *) * (size_t)count);

    free(malloc(size));
    long before = bench_rss_kb();
    bench_time_t t0 = bench_now();
    for (long i = 0; i < count; i++) {
        blk[i] = (unsigned char *)malloc(size);
        blk[i][0] = (unsigned char)i;
        bench_touch(blk[i], size, (unsigned char)i);
    }
    bench_time_t t = bench_since(t0);
    long after = bench_rss_kb();

    double grown = (double)(after - before) * 1024.0;
    double want16 = (double)count * (double)((size + 15) & ~(size_t)15);
    char extra[160];
    snprintf(extra, sizeof extra, "size=%zu count=%ld rss_delta_kb=%ld density=%.4f density_raw=%.4f",
             size, count, after - before, grown / want16, grown / ((double)count * (double)size));
    bench_result(count, t, extra);
    for (long i = 0; i < count; i++) free(blk[i]);
    return 0;
}
