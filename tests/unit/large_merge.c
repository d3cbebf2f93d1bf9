/*
 * large_merge: pieces cut from one kept large mapping merge again when both come back
 * (README: "pieces cut from one mapping merge again when both are kept").
 *   1. A 32 MiB block is freed: its mapping (pages still backed) is kept.
 *   2. A 4 MiB request takes that mapping and cuts it (it is more than twice too big): the
 *      block starts where the 32 MiB block did, and the rest is kept as a piece of its own.
 *   3. The 4 MiB block is freed: the two pieces are neighbours and must merge.
 *   4. A 30 MiB request fits only the merged mapping: it must start where the 32 MiB block
 *      did, and writing all of it must fault (almost) no page in: the pages are the old
 *      ones.  Unmerged, neither piece fits: the bigger one would be grown (another address)
 *      or a new mapping made (7680 fresh pages).
 */
#include "check.h"

static void touch(char *p, size_t n, int v)
{
    for (size_t off = 0; off < n; off += 4096) p[off] = (char)v;
}

int main(void)
{
    watchdog(60);
    CHECK(malloc_trim(0) >= 0, "malloc_trim"); /* nothing kept from before */
    char *a = malloc(32 * MiB);
    CHECK(a != NULL, "malloc(32 MiB)");
    expect_lite(a, "malloc(32 MiB) block");
    touch(a, 32 * MiB, 1);
    uintptr_t where = (uintptr_t)a; /* (a is not used after the free) */
    free(a);

    long f0 = minor_faults();
    char *b = malloc(4 * MiB);
    CHECK(b != NULL, "malloc(4 MiB)");
    expect_lite(b, "malloc(4 MiB) block");
    touch(b, 4 * MiB, 2);
    long fb = minor_faults() - f0;
    note("4 MiB block at %p (the 32 MiB block was at %p): %ld page faults", (void *)b, (void *)where, fb);
    CHECK((uintptr_t)b == where, "the 4 MiB block (%p) was not cut from the kept 32 MiB mapping (%p)",
          (void *)b, (void *)where);
    CHECK(fb < 64, "%ld page faults writing a 4 MiB block cut from a kept mapping", fb);
    free(b);

    f0 = minor_faults();
    char *c = malloc(30 * MiB);
    CHECK(c != NULL, "malloc(30 MiB)");
    expect_lite(c, "malloc(30 MiB) block");
    touch(c, 30 * MiB, 3);
    long fc = minor_faults() - f0;
    note("30 MiB block at %p: %ld page faults (7680 pages)", (void *)c, fc);
    CHECK((uintptr_t)c == where, "the 30 MiB block (%p) does not start where the merged mapping "
          "does (%p): the cut pieces were not merged", (void *)c, (void *)where);
    CHECK(fc < 64, "%ld page faults writing 30 MiB of a kept mapping: its pages are new", fc);
    free(c);
    note("large_merge: all checks passed");
    return 0;
}
