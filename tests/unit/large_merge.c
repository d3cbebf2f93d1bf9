/*
 * large_merge: the page store coalesces.  Memory freed as one size serves any other, from
 * the same address and without faulting its pages in again, and neighbouring free runs
 * merge back into one:
 *   1. A 24 MiB block is written and freed: its slots stay resident (decay gives them back
 *      only after a delay; malloc_trim beforehand leaves no other resident free memory).
 *   2. A 4 MiB block takes the start of that run: same address, (almost) no page faults.
 *   3. It is freed; a 20 MiB block needs the whole merged run: same address again, and
 *      writing it faults (almost) nothing.  Unmerged, it would go elsewhere, onto fresh pages.
 *   4. It is freed; 16 MiB of 64-byte blocks reuse those resident slots: almost no faults.
 */
#include "check.h"

static void touch(char *p, size_t n, int v)
{
    for (size_t off = 0; off < n; off += 4096) p[off] = (char)v;
}

int main(void)
{
    watchdog(60);
    /* decay must not give the freed run back between the steps, however slowly a loaded
     * machine runs them (1 s by default: a run in a busy clang build faulted 3969 pages) */
    CHECK(lite_option_set("decay_ms", 3600000) == 0, "lite_option_set(decay_ms)");
    char *warm = malloc(1000); /* this thread's heap exists before the first measure */
    expect_lite(warm, "malloc(1000) block");
    CHECK(malloc_trim(0) >= 0, "malloc_trim"); /* no resident free memory from before */
    char *a = malloc(24 * MiB);
    CHECK(a != NULL, "malloc(24 MiB)");
    expect_lite(a, "malloc(24 MiB) block");
    touch(a, 24 * MiB, 1);
    uintptr_t where = (uintptr_t)a; /* (a is not used after the free) */
    free(a);

    long f0 = minor_faults();
    char *b = malloc(4 * MiB);
    CHECK(b != NULL, "malloc(4 MiB)");
    touch(b, 4 * MiB, 2);
    long fb = minor_faults() - f0;
    note("4 MiB block at %p (the 24 MiB block was at %p): %ld page faults", (void *)b, (void *)where, fb);
    CHECK((uintptr_t)b == where, "the 4 MiB block (%p) does not reuse the freed 24 MiB run (%p)", (void *)b,
          (void *)where);
    CHECK(fb < 64, "%ld page faults writing a 4 MiB block in resident freed memory", fb);
    free(b);

    f0 = minor_faults();
    char *c = malloc(20 * MiB);
    CHECK(c != NULL, "malloc(20 MiB)");
    touch(c, 20 * MiB, 3);
    long fc = minor_faults() - f0;
    note("20 MiB block at %p: %ld page faults (5120 pages)", (void *)c, fc);
    CHECK((uintptr_t)c == where, "the 20 MiB block (%p) does not start where the merged run does (%p): "
          "the freed runs were not merged", (void *)c, (void *)where);
    CHECK(fc < 64, "%ld page faults writing 20 MiB of resident freed memory: its pages are new", fc);
    free(c);

    enum { N = 16 * 1024 * 1024 / 64 };
    static char *small[N];
    memset(small, 0, sizeof small); /* the table's own pages are faulted in before measuring */
    f0 = minor_faults();
    for (int i = 0; i < N; i++) {
        small[i] = malloc(64);
        CHECK(small[i] != NULL, "malloc(64)");
        small[i][0] = 1;
    }
    long fs = minor_faults() - f0;
    note("16 MiB of 64-byte blocks: %ld page faults (4096 pages)", fs);
    CHECK(fs < 256, "%ld page faults for 16 MiB of small blocks: the memory freed by the large block "
          "did not serve them", fs);
    for (int i = 0; i < N; i++) free(small[i]);
    free(warm);
    note("large_merge: all checks passed");
    return 0;
}
