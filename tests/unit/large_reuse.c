/*
 * large_reuse: a program that frees and reallocates the same large sizes in a loop must not
 * fault every page in again on each cycle: freed memory stays resident until decay (or the
 * retain limit) gives it back.  We count minor page faults (getrusage) over 100 cycles of
 * malloc, fill, free for sizes from 256 KiB to 48 MiB: without reuse that is 100 x the
 * pages each time (32 MiB and 48 MiB: blocks longer than one 64-slot group of the slot
 * store, which were mappings of their own, mapped and faulted in anew at every cycle).  Also: the freed memory kept is counted as cached, and malloc_trim(0)
 * gives it all back: it says so (returns 1), nothing stays cached, it is counted as
 * released (the address space stays), and a second trim has nothing left to do (returns 0).
 */
#include "check.h"

#define minflt minor_faults

int main(void) {
    watchdog(120);
    static const size_t sizes[] = {256 * KiB, 1 * MiB, 3 * MiB + 12345, 16 * MiB, 32 * MiB, 48 * MiB + 1};
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
        size_t n = sizes[s], pages = n / 4096;
        long before = minflt();
        for (int cycle = 0; cycle < 100; cycle++) {
            char *p = malloc(n);
            CHECK(p != NULL, "malloc(%zu)", n);
            CHECK(lite_owns(p), "large block not lite-malloc's");
            memset(p, cycle, n);
            CHECK(p[n - 1] == (char)cycle, "contents");
            free(p);
        }
        long faults = minflt() - before;
        note("%8zu bytes x 100 cycles: %ld minor faults (%zu pages per block)", n, faults, pages);
        /* the first cycle faults the block in (and, for the first size, the cache's pages);
         * reuse means the other 99 fault nothing: under 1.1 x pages seen */
        CHECK(faults < (long)(pages * 2), "%ld page faults for 100 cycles of a %zu-page block: "
              "freed large blocks are not reused", faults, pages);
    }
    /* Two sizes alternating (a buffer that grows and shrinks) are both kept. */
    long before = minflt();
    for (int cycle = 0; cycle < 100; cycle++) {
        char *a = malloc(2 * MiB), *b = malloc(5 * MiB);
        CHECK(a && b, "malloc");
        memset(a, 1, 2 * MiB);
        memset(b, 2, 5 * MiB);
        free(a);
        free(b);
    }
    long faults = minflt() - before;
    note("2 MiB + 5 MiB x 100 cycles: %ld minor faults", faults);
    /* 1792 pages per cycle without reuse; none seen (the blocks fit memory freed above) */
    CHECK(faults < 1792, "%ld page faults: alternating large blocks are not reused", faults);

    struct lite_malloc_stats kept = get_stats();
    CHECK(kept.large_in_use == 0, "large_in_use %zu after freeing everything", kept.large_in_use);
    CHECK(kept.bytes_cached >= 7 * MiB, "%zu bytes cached: the freed large blocks were not kept",
          kept.bytes_cached);
    int r = malloc_trim(0);
    struct lite_malloc_stats st = get_stats();
    note("malloc_trim(0) returned %d: cached %zu -> %zu bytes, released %zu -> %zu", r,
         kept.bytes_cached, st.bytes_cached, kept.bytes_released, st.bytes_released);
    CHECK(r == 1, "malloc_trim(0) returned %d with %zu bytes cached", r, kept.bytes_cached);
    CHECK(st.bytes_cached == 0, "%zu bytes still cached after malloc_trim(0)", st.bytes_cached);
    CHECK(st.bytes_released >= kept.bytes_released + 7 * MiB, "bytes_released %zu -> %zu: the "
          "cached memory was not given back", kept.bytes_released, st.bytes_released);
    r = malloc_trim(0);
    CHECK(r == 0, "a second malloc_trim(0) returned %d: there was nothing left to release", r);
    note("large_reuse: all checks passed");
    return 0;
}
