/*
 * fragmentation: can memory freed as small blocks serve other sizes later?
 *   1. fill: `fill_mb` MiB of small blocks (16..256 B), all written;
 *   2. free a random (100 - keep_pct)% of them, so the survivors are scattered over all
 *      the pages the fill used;
 *   3. allocate 1..4 KiB blocks totalling half of what was freed, then 64 KiB blocks
 *      totalling the other half, all written; the survivors of 1. stay live.
 * Live bytes at the end are about what they were after 1.  An allocator that reuses the
 * holes of 2. for other sizes (or gives the emptied pages back) ends near the RSS of
 * phase 1; one that cannot ends near twice that.
 * Reports peak RSS (VmHWM), RSS at the end of each phase, base RSS (the process and its
 * bookkeeping arrays, before any allocation) and live bytes at the end.
 * ops = allocator calls.  Arguments: fill_mb, keep_pct.
 */
#include "bench.h"

/* Allocate and write blocks of sizes in [lo, hi] until at least `total` bytes; returns
 * the count and adds the bytes to *live. */
static size_t fill_with(unsigned char **blk, size_t total, size_t lo, size_t hi, rng_t *rng,
                        size_t *live)
{
    size_t n = 0, bytes = 0;
    for (; bytes < total; n++) {
        size_t sz = rng_range(rng, lo, hi);
        blk[n] = (unsigned char *)malloc(sz);
        memset(blk[n], 1, sz);
        bytes += sz;
    }
    *live += bytes;
    return n;
}

int main(int argc, char **argv)
{
    size_t fill = (size_t)arg_long(argc, argv, "fill_mb", 200) << 20;
    long keep_pct = arg_long(argc, argv, "keep_pct", 10);
    CHECK(keep_pct >= 0 && keep_pct <= 100, "a benchmark's own check");

    /* Blocks average 136 B; room for 1/96 of the fill in pointers is plenty (checked),
     * and keeps the bookkeeping arrays, which are resident from the start, small. */
    size_t max_small = fill / 96 + 1;
    unsigned char **small = (unsigned char **)bench_array(sizeof(void *) * max_small);
    uint16_t *small_len = (uint16_t *)bench_array(sizeof(uint16_t) * max_small);
    unsigned char **mid = (unsigned char **)bench_array(sizeof(void *) * (fill / 1024 + 1));
    unsigned char **big = (unsigned char **)bench_array(sizeof(void *) * (fill / 65536 + 1));
    rng_t rng = rng_seed(5);
    long base_kb = bench_rss_kb();

    bench_time_t t0 = bench_now();
    /* 1. fill */
    size_t nsmall = 0;
    for (size_t bytes = 0; bytes < fill; nsmall++) {
        CHECK(nsmall < max_small, "a benchmark's own check");
        size_t sz = rng_range(&rng, 16, 256);
        small[nsmall] = (unsigned char *)malloc(sz);
        memset(small[nsmall], 1, sz);
        small_len[nsmall] = (uint16_t)sz;
        bytes += sz;
    }
    long filled_kb = bench_rss_kb();

    /* 2. free most, at random */
    size_t freed = 0, nfreed = 0;
    for (size_t i = 0; i < nsmall; i++)
        if ((long)rng_below(&rng, 100) >= keep_pct) {
            free(small[i]);
            small[i] = NULL;
            freed += small_len[i];
            nfreed++;
        }
    long holes_kb = bench_rss_kb();

    /* 3. other sizes, as much as was freed */
    size_t live = 0;
    for (size_t i = 0; i < nsmall; i++) live += small[i] ? small_len[i] : 0;
    size_t nmid = fill_with(mid, freed / 2, 1024, 4096, &rng, &live);
    size_t nbig = fill_with(big, freed - freed / 2, 65536, 65536, &rng, &live);
    bench_time_t t = bench_since(t0);

    char extra[256];
    snprintf(extra, sizeof extra,
             "base_rss_kb=%ld filled_rss_kb=%ld holes_rss_kb=%ld live_kb=%zu",
             base_kb, filled_kb, holes_kb, live >> 10);
    bench_result((long long)(nsmall + nfreed + nmid + nbig), t, extra);
    return 0;
}
