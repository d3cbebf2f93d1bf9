/*
 * colour_heads: a small superblock's header sits colour * (4096 + 128) bytes into its
 * 512 KiB slot, the colour being the slot number's low three bits (the library's layout,
 * README "Address space"), so that the busy pages of a thread's classes spread over the
 * TLB's sets.  The slot's part below the header (its head) must not be lost: once the
 * blocks above the header are all handed out, the next ones come from the head.
 *  1. For 1024-byte blocks, one thread takes blocks until it has filled a superblock of
 *     colour 2 or more: every block of that slot is on the class's grid (from the slot's
 *     start in the head, from past the header above it), none overlaps the header, and
 *     the slot holds as many as fit in it but for the header and at most two partial
 *     blocks (one at the slot's end, one below the header).  Before the heads, the slot
 *     held (512 KiB - header - colour) / 1024 blocks: up to 30 fewer.
 *  2. The head's blocks are ordinary blocks: usable size, lite_owns, written and read
 *     back whole, realloc'ed, freed (bytes_in_use falls by a block), and freed by another
 *     thread (the remote path); then everything is freed.
 */
#include "check.h"
#include <pthread.h>

enum { SLOT = 512 * 1024, BS = 1024, HDR = 128, STEP = 4096 + 128, MAX = 8 * SLOT / BS };

static uintptr_t slot_of(const void *p) { return (uintptr_t)p & ~(uintptr_t)(SLOT - 1); }
static unsigned colour_of(uintptr_t slot) { return (unsigned)((slot / SLOT) % 8); }
static char *blocks[MAX];

static void *free_it(void *p) { free(p); return NULL; }

int main(void)
{
    watchdog(60);
    /* 1. Blocks until a slot of colour >= 2 is full: the first block of a slot after it. */
    int n = 0, first_of_slot = 0, found = -1;
    uintptr_t slot = 0;
    while (n < MAX && found < 0) {
        char *p = blocks[n] = malloc(BS);
        CHECK(p != NULL, "malloc(%d) #%d", BS, n);
        expect_lite(p, "a 1024-byte block");
        if (slot_of(p) != slot) {
            if (slot && colour_of(slot) >= 2) found = first_of_slot;
            slot = slot_of(p);
            first_of_slot = n;
        }
        n++;
    }
    CHECK(found >= 0, "%d blocks of %d bytes filled no slot of colour 2 or more", n, BS);
    slot = slot_of(blocks[found]);
    unsigned colour = colour_of(slot);
    uintptr_t header = slot + colour * STEP;
    int in_slot = 0, in_head = 0;
    for (int i = found; i < n; i++) {
        uintptr_t b = (uintptr_t)blocks[i];
        if (slot_of(blocks[i]) != slot) continue;
        in_slot++;
        CHECK(b + BS <= header || b >= header + HDR, "block %p overlaps the header at %p", (void *)b, (void *)header);
        if (b < header) {
            in_head++;
            CHECK((b - slot) % BS == 0, "head block %p is off the grid from the slot's start %p", (void *)b,
                  (void *)slot);
        }
    }
    size_t fit = (SLOT - HDR) / BS - 2; /* every whole block but two partial ones */
    note("slot %p, colour %u: %d blocks, %d of them in the head below the header at %p (at least %zu expected)",
         (void *)slot, colour, in_slot, in_head, (void *)header, fit);
    CHECK(in_head > 0, "no block of the full slot %p (colour %u) is below its header: the head is lost",
          (void *)slot, colour);
    CHECK((size_t)in_slot >= fit, "the full slot %p holds %d blocks of %d bytes, fewer than %zu", (void *)slot,
          in_slot, BS, fit);

    /* 2. A head block, used as any block. */
    char *h = NULL;
    for (int i = found; i < n && !h; i++)
        if (slot_of(blocks[i]) == slot && (uintptr_t)blocks[i] < header) h = blocks[i];
    CHECK(malloc_usable_size(h) >= BS, "malloc_usable_size(%p) = %zu", (void *)h, malloc_usable_size(h));
    CHECK(lite_owns(h) && lite_owns(h + BS - 1), "lite_owns(head block %p)", (void *)h);
    fill_pattern(h, BS, 7);
    CHECK(check_pattern(h, BS, 7) == (size_t)-1, "head block %p lost what was written", (void *)h);
    char *grown = realloc(h, 3 * BS);
    CHECK(grown != NULL && check_pattern(grown, BS, 7) == (size_t)-1, "realloc of head block %p", (void *)h);
    free(grown);
    char *g = NULL;
    for (int i = found; i < n && !g; i++)
        if (slot_of(blocks[i]) == slot && (uintptr_t)blocks[i] < header && blocks[i] != h) g = blocks[i];
    struct lite_malloc_stats before = get_stats();
    free(g);
    struct lite_malloc_stats after = get_stats();
    CHECK(before.bytes_in_use >= after.bytes_in_use + BS, "bytes_in_use %zu -> %zu after freeing head block %p",
          before.bytes_in_use, after.bytes_in_use, (void *)g);
    for (int i = 0; i < n; i++)
        if (blocks[i] == h || blocks[i] == g) blocks[i] = NULL;
    /* another head block, freed by another thread */
    char *r = NULL;
    for (int i = n - 1; i >= found && !r; i--)
        if (blocks[i] && slot_of(blocks[i]) == slot && (uintptr_t)blocks[i] < header) r = blocks[i];
    if (r) {  /* (h and g are out of the array: r is neither) */
        pthread_t t;
        CHECK(pthread_create(&t, NULL, free_it, r) == 0, "pthread_create");
        pthread_join(t, NULL);
        for (int i = 0; i < n; i++)
            if (blocks[i] == r) blocks[i] = NULL;
    }
    for (int i = 0; i < n; i++) free(blocks[i]);
    note("colour_heads: all checks passed");
    return 0;
}
