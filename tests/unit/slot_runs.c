/*
 * slot_runs: a run of slots (a large block) may cross the end of a 64-slot group of the
 * slot store, so that large blocks pack as tightly as the free slots allow.
 *   1. In a fresh process with nothing cached (malloc_trim), a block A is placed so that
 *      its run ends inside a group with free slots above it; a block B a few slots longer
 *      than that free top must start right where A ends, across the group's end.  Runs
 *      confined to one group put B at the next group's start instead: the test fails.
 *      (A slot is 512 KiB and a group 32 MiB, 32 MiB-aligned: the library's layout.)
 *   2. Two threads churn large blocks of 1 to 64 slots, each writing a marker into every
 *      slot of its blocks and checking them all before the free: two live runs that
 *      overlap (a lost race between the two CASes of a crossing take, or a give that
 *      frees the wrong group's bits) overwrite each other's markers.
 *   3. Everything freed, bytes_in_use is back where it started.
 */
#include "check.h"

#define SLOT (512u * 1024u)
#define GROUP (64u * SLOT)

/* The run's first slot: the block starts it (its record is in the side table).  A
 * block a page short of its slots, so that it takes them in any layout that keeps a
 * header of up to a page. */
static uintptr_t run_of(const void *p) { return (uintptr_t)p; }
static size_t bytes_for(unsigned slots) { return (size_t)slots * SLOT - 4096; }

static void mark(char *p, size_t n, uint64_t seed)
{
    for (size_t off = 0; off < n; off += SLOT) memcpy(p + off, &seed, 8), seed = seed * 31 + 7;
    memcpy(p + n - 8, &seed, 8);
}
static int marks_hold(const char *p, size_t n, uint64_t seed)
{
    uint64_t w;
    for (size_t off = 0; off < n; off += SLOT) {
        memcpy(&w, p + off, 8);
        if (w != seed) return 0;
        seed = seed * 31 + 7;
    }
    memcpy(&w, p + n - 8, 8);
    return w == seed;
}

enum { LIVE = 6, ROUNDS = 1500 };
static void *churn(void *arg)
{
    rng_t rng = rng_seed((uint64_t)(uintptr_t)arg);
    char *blk[LIVE] = {0};
    size_t len[LIVE] = {0};
    uint64_t seed[LIVE] = {0};
    for (int r = 0; r < ROUNDS; r++) {
        int i = (int)rng_below(&rng, LIVE);
        if (blk[i]) {
            CHECK(marks_hold(blk[i], len[i], seed[i]), "the markers of a %zu-byte block at %p were overwritten: "
                  "two live runs overlap", len[i], (void *)blk[i]);
            free(blk[i]);
        }
        len[i] = bytes_for((unsigned)rng_range(&rng, 1, 64));
        blk[i] = malloc(len[i]);
        CHECK(blk[i] != NULL, "malloc(%zu)", len[i]);
        expect_lite(blk[i], "large block");
        seed[i] = rng_next(&rng);
        mark(blk[i], len[i], seed[i]);
    }
    for (int i = 0; i < LIVE; i++)
        if (blk[i]) {
            CHECK(marks_hold(blk[i], len[i], seed[i]), "markers overwritten at %p", (void *)blk[i]);
            free(blk[i]);
        }
    return NULL;
}

int main(void)
{
    watchdog(120);
    CHECK(lite_option_set("decay_ms", 3600000) == 0, "lite_option_set(decay_ms)");
    char *warm = malloc(100); /* this thread's heap exists before the measure */
    expect_lite(warm, "malloc(100) block");
    struct lite_malloc_stats s0, s1;
    lite_stats(&s0);

    /* 1. A, then B across the end of A's group. */
    CHECK(malloc_trim(0) >= 0, "malloc_trim");
    unsigned a_slots = 40;
    char *a = NULL;
    unsigned end = 0;
    for (; a_slots >= 8; a_slots--) { /* A must leave free slots above it in its group */
        a = malloc(bytes_for(a_slots));
        CHECK(a != NULL, "malloc(%u slots)", a_slots);
        expect_lite(a, "block A");
        end = (unsigned)(run_of(a) % GROUP / SLOT) + a_slots;
        if (end < 64 && end > 64 - 48) break;
        free(a);
        a = NULL;
    }
    CHECK(a != NULL, "no place for block A ending inside a group");
    CHECK(malloc_trim(0) >= 0, "malloc_trim"); /* nothing resident to prefer elsewhere */
    unsigned top = 64 - end, b_slots = top + 8;
    char *b = malloc(bytes_for(b_slots));
    CHECK(b != NULL, "malloc(%u slots)", b_slots);
    expect_lite(b, "block B");
    note("A: %u slots at %p, ending at slot %u of its group; B: %u slots at %p", a_slots, (void *)run_of(a), end,
         b_slots, (void *)run_of(b));
    CHECK(run_of(b) == run_of(a) + (uintptr_t)a_slots * SLOT,
          "B (%u slots) starts at %p, not where A ends (%p): %u free slots at the top of A's group were "
          "not joined to the next group's", b_slots, (void *)run_of(b), (void *)(run_of(a) + (uintptr_t)a_slots * SLOT), top);
    CHECK((run_of(b) + (uintptr_t)b_slots * SLOT) / GROUP != run_of(b) / GROUP, "B does not cross a group's end");
    size_t b_len = bytes_for(b_slots);
    fill_pattern_range(b, 0, b_len, 11);
    CHECK(check_pattern_range(b, 0, b_len, 11) == (size_t)-1, "B's contents");
    free(a);
    /* B's first part freed, its second part still taken: a block of A's size fits A's run only */
    char *c = malloc(bytes_for(a_slots));
    CHECK(c != NULL && run_of(c) + (uintptr_t)a_slots * SLOT <= run_of(b), "C overlaps B");
    CHECK(check_pattern_range(b, 0, b_len, 11) == (size_t)-1, "B's contents after C");
    free(b);
    free(c);

    /* 2. Two threads churn runs of 1 to 64 slots. */
    pthread_t t[2];
    for (int i = 0; i < 2; i++) CHECK(pthread_create(&t[i], NULL, churn, (void *)(uintptr_t)(i + 1)) == 0, "pthread_create");
    for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);

    /* 3. All of it freed. */
    lite_stats(&s1);
    note("bytes in use: %zu before, %zu after; mapped peak %zu MiB", s0.bytes_in_use, s1.bytes_in_use,
         s1.bytes_mapped_peak >> 20);
    CHECK(s1.bytes_in_use <= s0.bytes_in_use + (1u << 20), "bytes in use %zu after freeing everything (%zu before)",
          s1.bytes_in_use, s0.bytes_in_use);
    free(warm);
    note("PASS");
    return 0;
}
