/*
 * large_slots: a large block takes no slot more than its size needs.
 *   1. A block of a whole number of 512 KiB slots (512 KiB, 1 MiB, 1.5 MiB, 4 MiB, 32 MiB),
 *      plain or aligned up to its run (aligned_alloc(1 MiB, 1 MiB), (2 MiB, 4 MiB),
 *      (64 KiB, 1 MiB)), adds exactly that many slots to lite_stats' `superblocks`, and
 *      starts a slot.  When a large block kept a header page before its data, each of
 *      these took one slot more (1 MiB took three), and the freed runs of odd lengths
 *      were seldom reusable: mixed_realloc's blocks growing to 1 MiB faulted in fresh
 *      memory at every move.
 *   2. realloc of a 700,000-byte block to 1 MiB stays where it is, also when the slot
 *      after it is taken: both sizes fit its two slots.
 *   3. A large block starts its slot, so the word at the place where a small superblock
 *      of that slot would keep its owner is the program's.  The test writes there the
 *      owner word of one of this thread's own superblocks (read from beside one of its
 *      small blocks) and frees the block: free must take it for the large block it is
 *      (the free fast path never looks at a slot's first byte), not for a small block of
 *      this thread's (which aborts with "invalid pointer", or worse).
 *   4. Everything freed, bytes_in_use is back where it started.
 */
#include "check.h"

#define SLOT ((size_t)512 * 1024)

static size_t slots_now(void) { return get_stats().superblocks; }

/* malloc (align 0) or aligned_alloc of n bytes must add `want` slots and start a slot */
static void *take(size_t align, size_t n, size_t want)
{
    size_t before = slots_now();
    void *p = align ? aligned_alloc(align, n) : malloc(n);
    size_t added = slots_now() - before;
    CHECK(p != NULL, "alloc(align %zu, %zu) failed", align, n);
    expect_lite(p, "a large block");
    note("align %7zu, %8zu bytes: %zu slots at %p", align, n, added, p);
    CHECK(added == want, "a %zu-byte block (align %zu) took %zu slots, not %zu", n, align, added, want);
    CHECK(is_aligned(p, SLOT), "a %zu-byte block (align %zu) at %p does not start a slot", n, align, p);
    CHECK(malloc_usable_size(p) == n, "a %zu-byte block: usable size %zu", n, malloc_usable_size(p));
    return p;
}

int main(void)
{
    watchdog(60);
    CHECK(lite_option_set("decay_ms", 3600000) == 0, "lite_option_set(decay_ms)");
    char *warm = malloc(100); /* this thread's heap and its superblock of 112-byte blocks */
    expect_lite(warm, "malloc(100) block");
    size_t in_use0 = get_stats().bytes_in_use;

    /* 1. */
    static const struct { size_t align, n, slots; } cases[] = {
        {0, SLOT, 1},       {0, 2 * SLOT, 2},          {0, 3 * SLOT, 3},           {0, 8 * SLOT, 8},
        {0, 64 * SLOT, 64}, {SLOT * 2, SLOT * 2, 2},   {4 * SLOT, 8 * SLOT, 8},    {64 * 1024, 2 * SLOT, 2},
    };
    void *keep[sizeof cases / sizeof cases[0]];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) keep[i] = take(cases[i].align, cases[i].n, cases[i].slots);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) free(keep[i]);

    /* 2. */
    char *p = malloc(700000);
    CHECK(p != NULL, "malloc(700000)");
    expect_lite(p, "a 700,000-byte block");
    void *next = NULL, *tries[64];
    int n_tries = 0;
    while (n_tries < 64 && !next) { /* a block in the slot right after p's two */
        void *q = malloc(SLOT);
        CHECK(q != NULL, "malloc(512 KiB)");
        if ((char *)q == p + 2 * SLOT) next = q;
        else tries[n_tries++] = q; /* (kept until the end, so that the next try lands further) */
    }
    note("the slot after the 700,000-byte block at %p is %s", (void *)p, next ? "taken" : "not taken (checked anyway)");
    memset(p, 0x5a, 700000);
    char *r = realloc(p, 2 * SLOT);
    CHECK(r == p, "realloc(700000 -> 1 MiB) moved the block from %p to %p: it fits its two slots", (void *)p,
          (void *)r);
    CHECK(r[0] == 0x5a && r[699999] == 0x5a, "realloc lost the content");
    free(r);
    free(next);
    for (int i = 0; i < n_tries; i++) free(tries[i]);

    /* 3. The owner word of warm's superblock: slots are 512 KiB-aligned, and a small
     *    superblock's header sits at colour * (4096 + 128) bytes into its slot, the colour
     *    being the slot number's low three bits (the library's layout). */
    uintptr_t slot = (uintptr_t)warm & ~(uintptr_t)(SLOT - 1);
    uint64_t owner;
    memcpy(&owner, (const void *)(slot + ((slot / SLOT) & 7) * 4224), sizeof owner);
    CHECK(owner != 0, "the owner word of this thread's superblock at %p reads 0: the test's picture of the "
          "layout is out of date", (void *)slot);
    for (int i = 0; i < 16; i++) {
        char *big = malloc(2 * SLOT);
        CHECK(big != NULL && is_aligned(big, SLOT), "malloc(1 MiB)");
        memset(big, 0, 8 * 4224);
        memcpy(big + (((uintptr_t)big / SLOT) & 7) * 4224, &owner, sizeof owner);
        free(big); /* aborts, or pushes the block onto a list in its own memory, if misread */
    }
    void *again = malloc(2 * SLOT); /* the slots came back: the last block's run is free */
    CHECK(again != NULL, "malloc(1 MiB) after the frees");
    free(again);

    /* 4. */
    free(warm);
    size_t in_use1 = get_stats().bytes_in_use;
    note("bytes in use: %zu before, %zu after", in_use0, in_use1);
    CHECK(in_use1 + 112 <= in_use0 + 4096, "bytes_in_use %zu after everything was freed (%zu before)", in_use1,
          in_use0);
    note("large_slots: all checks passed");
    return 0;
}
