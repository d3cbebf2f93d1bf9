/*
 * host_search: a medium request that does not fit the thread's own host goes to a listed
 * host with the room, not to a fresh slot.
 *
 * One thread makes three hosts (slots of medium runs: after the header, 127 pages, one of
 * the first 7 its colour's, so 16-page runs fit only past them, 120 pages):
 *   H1: seven 16-page blocks, then the first four freed: one 64-page hole, listed;
 *   H2: the same, then every other block freed: holes of 16 pages, listed after H1;
 *   H3: the same as H2, but it stays the thread's own host.
 * A 32-page request fits neither H3 nor H2, only H1, so it must come from H1, and the
 * number of slots in use (lite_stats' superblocks) must not grow.  lite-malloc used to let
 * go of its own host first, which listed it on top of the adoption stack, then popped
 * that same host again twice before taking a fresh slot: every request that did not fit
 * the own host took a fresh slot whenever that host had 32 free pages or more, and the
 * medium pages freed elsewhere stayed resident and unused (mixed_realloc, make bench).
 * Then H1's last hole is filled and six 16-page blocks are asked for: they fit the holes
 * of H3 and H2 exactly, so H2, which the first search passed over, must be listed again,
 * and still no fresh slot may be taken.
 * The run cache is turned off (run_cache_kb 0), so that every free gives its run back to
 * its host at once.  Nothing else allocates between the first block and the last check.
 */
#include "check.h"

enum { PAGE = 4096, SLOT = 512 * 1024, RUN = 16, PER_HOST = 7, MORE = PER_HOST / 2 * 2 };

static uintptr_t slot_of(const void *p) { return (uintptr_t)p & ~(uintptr_t)(SLOT - 1); }
static size_t superblocks(void)
{
    struct lite_malloc_stats st;
    lite_stats(&st);
    return st.superblocks;
}

/* PER_HOST RUN-page blocks in one fresh host; returns that host's slot. */
static uintptr_t fill_host(char *b[PER_HOST], const char *name)
{
    for (int i = 0; i < PER_HOST; i++) {
        b[i] = malloc(RUN * PAGE);
        CHECK(b[i] != NULL, "malloc(%d) for %s", RUN * PAGE, name);
        expect_lite(b[i], "a medium block");
        CHECK(slot_of(b[i]) == slot_of(b[0]), "%s: block %d at %p is not in the slot of block 0 (%p): this "
              "test's picture of hosts (120 pages past the first 8) is out of date", name, i, (void *)b[i],
              (void *)b[0]);
    }
    return slot_of(b[0]);
}

int main(void)
{
    watchdog(60);
    CHECK(lite_option_set("run_cache_kb", 0) == 0, "lite_option_set(run_cache_kb, 0)");
    char *h1[PER_HOST], *h2[PER_HOST], *h3[PER_HOST], *z, *a, *more[MORE];

    uintptr_t s1 = fill_host(h1, "H1");
    uintptr_t s2 = fill_host(h2, "H2"); /* H1 has at most 15 free pages: let go of, not listed */
    uintptr_t s3 = fill_host(h3, "H3");
    CHECK(s2 != s1 && s3 != s1 && s3 != s2, "two of the three hosts share a slot");
    for (int i = 0; i < 4; i++) free(h1[i]); /* H1: a 64-page hole, listed */
    for (int i = 1; i < PER_HOST; i += 2) free(h2[i]); /* H2: three 16-page holes, listed */
    for (int i = 1; i < PER_HOST; i += 2) free(h3[i]); /* H3: the same, still the own host */
    size_t before = superblocks();

    z = malloc(2 * RUN * PAGE);
    size_t after_z = superblocks();
    CHECK(z != NULL, "malloc(%d)", 2 * RUN * PAGE);
    a = malloc(2 * RUN * PAGE); /* H1's other 32 pages */
    CHECK(a != NULL, "malloc(%d)", 2 * RUN * PAGE);
    for (int i = 0; i < MORE; i++) {
        more[i] = malloc(RUN * PAGE);
        CHECK(more[i] != NULL, "malloc(%d)", RUN * PAGE);
    }
    size_t after_more = superblocks();

    CHECK(after_z == before, "a 32-page block took a fresh slot (slots in use %zu -> %zu) though host %p, listed, "
          "had a 64-page hole: it landed at %p", before, after_z, (void *)s1, (void *)z);
    CHECK(slot_of(z) == s1, "the 32-page block is at %p, not in host %p, the one with room", (void *)z, (void *)s1);
    CHECK(slot_of(a) == s1, "the second 32-page block is at %p, not in host %p", (void *)a, (void *)s1);
    int in_h2 = 0, in_h3 = 0;
    for (int i = 0; i < MORE; i++) {
        expect_lite(more[i], "a medium block");
        in_h2 += slot_of(more[i]) == s2;
        in_h3 += slot_of(more[i]) == s3;
    }
    CHECK(after_more == before, "%d 16-page blocks took fresh slots (slots in use %zu -> %zu) though hosts %p "
          "and %p had exactly their room (%d and %d of them landed there): a host passed over by a search was "
          "not listed again", MORE, before, after_more, (void *)s2, (void *)s3, in_h2, in_h3);
    CHECK(in_h2 == MORE / 2 && in_h3 == MORE / 2, "of %d 16-page blocks, %d landed in H2 and %d in H3 (%d and %d "
          "expected)", MORE, in_h2, in_h3, MORE / 2, MORE / 2);

    free(z);
    free(a);
    for (int i = 0; i < MORE; i++) free(more[i]);
    for (int i = 4; i < PER_HOST; i++) free(h1[i]);
    for (int i = 0; i < PER_HOST; i += 2) free(h2[i]), free(h3[i]);
    note("slots in use %zu before, %zu after (H1 %p, H2 %p, H3 %p)", before, after_more, (void *)s1, (void *)s2,
         (void *)s3);
    return 0;
}
