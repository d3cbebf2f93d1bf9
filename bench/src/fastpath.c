/*
 * fastpath: the cheapest thing an allocator does, one thread, small fixed sizes.
 *   phase 1: malloc + immediate free of 16, 64 and 256 bytes (a block is reused at once);
 *   phase 2: batches of `batch` blocks allocated, then all freed (free-list push/pop runs,
 *            the pattern of a request handler building and dropping a small structure).
 * With big=1 the sizes are 2 KiB, 4 KiB and 8000 B, the largest small blocks, of which a
 * superblock threads only one or two at a time onto its free list (a malloc/free loop of
 * 4 KiB blocks once cost lite-malloc 42 ns a pair against 8 for 16 B: a prefetch of null).
 * ops = malloc+free pairs.  Arguments: ops (pairs, split over the phases), batch, big.
 */
#include "bench.h"

static const size_t small_sizes[] = { 16, 64, 256 }, big_sizes[] = { 2048, 4096, 8000 };
#define NSIZES (sizeof small_sizes / sizeof small_sizes[0])

int main(int argc, char **argv)
{
    long ops = arg_long(argc, argv, "ops", 30000000);
    long batch = arg_long(argc, argv, "batch", 100);
    const size_t *sizes = arg_long(argc, argv, "big", 0) ? big_sizes : small_sizes;
    void **blocks = (void **)bench_array(sizeof(void *) * (size_t)batch);
    long per_phase = ops / (2 * NSIZES); /* pairs per (phase, size) */
    long rounds = per_phase / batch;

    bench_time_t t0 = bench_now();
    for (size_t s = 0; s < NSIZES; s++)
        for (long i = 0; i < per_phase; i++) {
            void *p = malloc(sizes[s]);
            bench_escape(p);
            free(p);
        }
    for (size_t s = 0; s < NSIZES; s++)
        for (long r = 0; r < rounds; r++) {
            for (long i = 0; i < batch; i++) {
                blocks[i] = malloc(sizes[s]);
                *(char *)blocks[i] = (char)i;
            }
            for (long i = 0; i < batch; i++) free(blocks[i]);
        }
    bench_time_t t = bench_since(t0);
    bench_result((long long)NSIZES * (per_phase + rounds * batch), t, "");
    return 0;
}
