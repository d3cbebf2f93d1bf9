/*
 * full_head_trim: trimming a superblock whose head is carved to the header's edge must not
 * purge its blocks.
 *
 * The defect (found by g++ -O1 compiling tests/real/templates.cpp under LD_PRELOAD: an
 * internal compiler error, a free list whose link read as the link key, that is, a zeroed
 * page): the owner purges its current superblock's tail, the resident pages above the
 * bump pointer.  Carving the head, the bump pointer is below the header, and there is no
 * tail; but once the head's last block ends exactly at the header (64-byte blocks do so
 * under every colour), the bump pointer *is* the header's address, and the test "below
 * the header" said no: the tail was taken to start 16 KiB past the header, and the whole
 * body above it, live blocks and free list alike, was purged (read back as zeros).
 *   1. Dirty slots: 12 superblocks' worth of 256-byte blocks, all freed.
 *   2. 64-byte blocks until a slot of colour 1-7 starts, then that slot's 8188 blocks
 *      (body and head: every block of it), each filled with its own pattern; one is freed,
 *      so the superblock stays the thread's current one with a free block.
 *   3. malloc_trim(0), which purges the current superblocks' tails: every live block of
 *      the slot must still hold its pattern, and the next two mallocs must work.
 *   4. The same by the decay path, with no malloc_trim: the decay delay set to 50 ms, a
 *      slot filled as in 2, then, 700 ms later, a refill of another class (the owner
 *      purges its tails at a refill, once per quarter of the delay): the patterns again.
 *      (Huge pages off throughout: the decay pass leaves a huge region's tails alone.)
 * Also, after 2: lite_stats' bytes_in_use counts the full superblock's blocks (the
 * statistics made the same compare: it counted none of them).
 * Fails before the fix (2: bytes_in_use short by the slot's 8188 blocks; 3 and 4: blocks
 * of the body read as zeros).
 */
#include "check.h"

#include <time.h>

enum { SLOT = 512 * 1024, BS = 64, PER_SLOT = (SLOT - 2 * 128) / BS, BIG = 256, DIRTY = 12 * (SLOT / BIG) };

static uintptr_t slot_of(const void *p) { return (uintptr_t)p & ~(uintptr_t)(SLOT - 1); }
static unsigned colour_of(uintptr_t slot) { return (unsigned)((slot / SLOT) % 8); }
static void *dirty[DIRTY];
static char *blocks[2 * PER_SLOT + 16 * PER_SLOT];

static void sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };
    while (nanosleep(&ts, &ts) != 0) {}
}

static void fill(char *b, long i) { for (int k = 0; k < BS; k += 8) *(long *)(b + k) = i * 131 + k + 1; }
static int intact(const char *b, long i)
{
    for (int k = 0; k < BS; k += 8)
        if (*(const long *)(b + k) != i * 131 + k + 1) return 0;
    return 1;
}

/* Fill a whole 64-byte superblock of colour 1-7 (its first block starts a new slot):
 * returns the index of its first block in blocks[], its blocks being [*first, *first +
 * PER_SLOT); blocks before it are left allocated. */
static int fill_slot(int *n_out)
{
    int n = 0;
    uintptr_t slot = 0;
    for (;;) {  /* until a block is a fresh superblock's first: just past a header of colour 1-7 */
        CHECK(n < (int)(sizeof blocks / sizeof *blocks) - PER_SLOT, "no slot of colour 1-7 within %d blocks", n);
        char *p = blocks[n] = malloc(BS);
        CHECK(p != NULL, "malloc(%d) #%d", BS, n);
        uintptr_t s = slot_of(p);
        if (s != slot && colour_of(s) != 0 && (uintptr_t)p == s + colour_of(s) * (4096 + 128) + 128) break;
        slot = s;
        n++;
    }
    expect_lite(blocks[n], "a 64-byte block");
    int first = n;
    for (n++; n < first + PER_SLOT; n++) {
        blocks[n] = malloc(BS);
        CHECK(blocks[n] != NULL, "malloc(%d) #%d", BS, n);
        CHECK(slot_of(blocks[n]) == slot_of(blocks[first]), "block #%d of the slot (%p) is in another slot (%p)",
              n - first, (void *)slot_of(blocks[first]), (void *)blocks[n]);
    }
    for (int i = first; i < n; i++) fill(blocks[i], i);
    *n_out = n;
    return first;
}

/* Slots whose pages are resident: 12 superblocks' worth of 256-byte blocks, written, freed. */
static void dirty_slots(void)
{
    for (int i = 0; i < DIRTY; i++) {
        dirty[i] = malloc(BIG);
        CHECK(dirty[i] != NULL, "malloc(%d) #%d", BIG, i);
        memset(dirty[i], 0x5a, BIG);
    }
    for (int i = 0; i < DIRTY; i++) free(dirty[i]);
}

static void check_slot(int first, int n, int freed, const char *after)
{
    int bad = 0, first_bad = -1;
    for (int i = first; i < n; i++)
        if (i != freed && !intact(blocks[i], i)) {
            if (first_bad < 0) first_bad = i;
            bad++;
        }
    CHECK(bad == 0, "after %s, %d of the %d live 64-byte blocks of the full slot %p (colour %u) lost their contents "
                    "(the first: %p, offset %#lx in the slot)",
          after, bad, n - first - 1, (void *)slot_of(blocks[first]), colour_of(slot_of(blocks[first])),
          first_bad >= 0 ? (void *)blocks[first_bad] : NULL,
          first_bad >= 0 ? (unsigned long)((uintptr_t)blocks[first_bad] - slot_of(blocks[first])) : 0ul);
    void *a = malloc(BS), *b = malloc(BS);  /* the freed block, then one from a fresh superblock */
    CHECK(a != NULL && b != NULL, "malloc(%d) after %s", BS, after);
    memset(a, 1, BS);
    memset(b, 2, BS);
    free(a);
    free(b);
}

int main(void)
{
    watchdog(60);
    /* No huge pages: the owner's decay pass leaves a huge region's tails alone (4 would
     * then see nothing), and full 64-byte slots are dense enough to make one. */
    CHECK(lite_option_set("huge_pages", 0) == 0, "%s", "lite_option_set(huge_pages, 0)");
    dirty_slots();  /* 1. */

    /* 2, 3. A full superblock, then malloc_trim. */
    int n, first = fill_slot(&n);
    struct lite_malloc_stats st;
    lite_stats(&st);
    CHECK(st.bytes_in_use >= (size_t)n * BS, "bytes_in_use %zu with %d blocks of %d bytes live (a full superblock "
          "whose head ends at its header counted as none in use?)", st.bytes_in_use, n, BS);
    int freed = first + PER_SLOT / 2;
    free(blocks[freed]);
    malloc_trim(0);
    check_slot(first, n, freed, "malloc_trim(0)");
    for (int i = 0; i < n; i++) if (i != freed) free(blocks[i]);

    /* 4. The decay path. */
    CHECK(lite_option_set("decay_ms", 50) == 0, "%s", "lite_option_set(decay_ms, 50)");
    dirty_slots();
    first = fill_slot(&n);
    freed = first + PER_SLOT / 3;
    free(blocks[freed]);
    /* (The pass is due a quarter of the former delay, 250 ms, after the last one, as the
     * clock counts before it has measured the TSC's rate: up to 1.5x slow.) */
    sleep_ms(700);
    /* Sizes nothing else here asked for (stdio's buffers have classes of 1-4 KiB): the
     * first refill runs the owner's tail pass. */
    for (int size = 9000; size <= 30000; size += 3000) {
        void *volatile p = malloc(size);  /* (volatile: the compiler may drop a malloc freed unused) */
        CHECK(p != NULL, "malloc(%d)", size);
        free(p);
    }
    check_slot(first, n, freed, "the decay delay and a refill");
    for (int i = 0; i < n; i++) if (i != freed) free(blocks[i]);
    note("two full 64-byte superblocks (colours %u and more) kept their blocks through malloc_trim and decay", 1u);
    return 0;
}
