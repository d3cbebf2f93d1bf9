/*
 * canary_values: whatever a program stores in a live block, freeing it once is never taken
 * for a double free.  A free small block carries a canary in its second word; a live block
 * whose second word holds the canary by chance would abort in free() with "double free".
 * Found by check-real: gcc 12 (cc1plus, -O1, in ipa_fn_summary) aborted with
 * "lite-malloc: free(): double free of 0x7f..000023de0".  The canary was the address of the
 * block's superblock header, and gcc's block held {int 0, 4 bytes of padding holding the
 * upper half of an arena address}: the address of a superblock on a 4 GiB boundary.
 * Against that library each part failed on its own (part 2 in 5 of 5 runs).
 *   1. Live blocks of every small size get, in their second word, the address rounded
 *      down to every power of two from 4 KiB to 64 GiB, and the upper half of their own
 *      address (the gcc pattern), and are freed.
 *   2. Stale memory: one thread fills superblocks with 16-byte blocks and frees them all
 *      (their canaries stay in the memory), then takes blocks of other classes, which may
 *      cover that memory, copies each uninitialised word of each into its second word
 *      (as a program copying an uninitialised structure, padding and all, does) and frees it.
 */
#include "check.h"

#include <pthread.h>

static void free_with_second_word(char *p, uint64_t v)
{
    memcpy(p + 8, &v, sizeof v);
    __asm__ volatile("" : : "r"(p) : "memory");  // (a store just before free() is dead to the compiler)
    free(p);
}

static void part1(void)
{
    long freed = 0;
    for (size_t size = 16; size <= 1024; size += 16) {
        for (int shift = 12; shift <= 36; shift++) {
            char *p = malloc(size);
            CHECK(p != NULL, "malloc(%zu)", size);
            expect_lite(p, "block");
            free_with_second_word(p, (uint64_t)(uintptr_t)p & ~(((uint64_t)1 << shift) - 1));
            freed++;
        }
        char *p = malloc(size);
        CHECK(p != NULL, "malloc(%zu)", size);
        free_with_second_word(p, (uint64_t)(uintptr_t)p >> 32 << 32);  // {int 0, upper half}
        freed++;
    }
    printf("part 1: %ld blocks freed with address-like second words\n", freed);
}

enum { SMALL = 16, COUNT = 40000 };
static void *part2(void *arg)
{
    (void)arg;
    static char *blocks[COUNT];
    for (int i = 0; i < COUNT; i++) {
        blocks[i] = malloc(SMALL);
        CHECK(blocks[i] != NULL, "malloc(%d)", SMALL);
        expect_lite(blocks[i], "block");
    }
    for (int i = 0; i < COUNT; i++) free(blocks[i]);
    long words = 0;
    static const size_t sizes[] = {48, 64, 80, 112, 160, 256};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        size_t n = COUNT * SMALL / sizes[k] / 2;
        for (size_t i = 0; i < n; i++) {
            char *p = malloc(sizes[k]);
            CHECK(p != NULL, "malloc(%zu)", sizes[k]);
            for (size_t off = 16; off + 8 <= sizes[k]; off += 8) {
                char *q = malloc(sizes[k]);  // a second block, freed with the word of the first
                CHECK(q != NULL, "malloc(%zu)", sizes[k]);
                uint64_t v;
                memcpy(&v, p + off, sizeof v);
                free_with_second_word(q, v);
                words++;
            }
            uint64_t v;
            memcpy(&v, p + 24 < p + sizes[k] ? p + 24 : p, sizeof v);
            free_with_second_word(p, v);
        }
    }
    printf("part 2: %ld blocks freed with stale words of recycled memory\n", words);
    return NULL;
}

int main(void)
{
    part1();
    pthread_t t;
    CHECK(pthread_create(&t, NULL, part2, NULL) == 0, "pthread_create");
    pthread_join(t, NULL);
    return 0;
}
