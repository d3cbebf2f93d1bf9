/*
 * medium_realloc: realloc grows a medium block (a run of pages in a host) in place when
 * the pages after it are free, and moves it, content intact, when they are not.
 *
 * The first medium blocks of a process come from a fresh host, carved lowest page first,
 * so the layout is known: p (64 KiB) takes the first pages and the rest of the host is
 * free.  realloc(p, 96 KiB) must return p (its usable size grown to 96 KiB) without
 * copying; a medium block r allocated next lies right after it, so realloc(p, 160 KiB) must move.
 * Freeing everything brings bytes_in_use back to where it was.
 */
#include "check.h"

#define KB 1024

static void fill(unsigned char *p, size_t n, unsigned char salt)
{
    for (size_t i = 0; i < n; i += 512) p[i] = (unsigned char)(i / 512 * 7 + salt);
}
static void verify(const unsigned char *p, size_t n, unsigned char salt, const char *when)
{
    for (size_t i = 0; i < n; i += 512)
        CHECK(p[i] == (unsigned char)(i / 512 * 7 + salt), "%s: byte %zu lost", when, i);
}

int main(void)
{
    watchdog(60);
    size_t in_use0 = get_stats().bytes_in_use;
    unsigned char *p = malloc(64 * KB);
    expect_lite(p, "malloc(64 KiB)");
    fill(p, 64 * KB, 3);

    unsigned char *q = realloc(p, 96 * KB);
    CHECK(q != NULL, "realloc to 96 KiB");
    note("64 KiB block %p, realloc to 96 KiB: %p (usable %zu)", (void *)p, (void *)q, malloc_usable_size(q));
    CHECK(q == p, "realloc to 96 KiB moved the block (%p -> %p) although the pages after it are free", (void *)p,
          (void *)q);
    CHECK(malloc_usable_size(q) == 96 * KB, "usable size %zu after growing in place to 96 KiB",
          malloc_usable_size(q));
    verify(q, 64 * KB, 3, "grown in place");
    fill(q, 96 * KB, 5);

    unsigned char *r = malloc(56 * KB); /* right after q: q cannot grow in place again */
    expect_lite(r, "malloc(56 KiB)");
    note("next block %p", (void *)r);
    CHECK(r == q + 96 * KB, "the next block is at %p, not right after the grown one (%p): the layout "
          "this test relies on does not hold", (void *)r, (void *)(q + 96 * KB));
    fill(r, 56 * KB, 9);
    unsigned char *m = realloc(q, 160 * KB);
    CHECK(m != NULL && m != q, "realloc to 160 KiB over a live block: %p (was %p)", (void *)m, (void *)q);
    verify(m, 96 * KB, 5, "moved");
    verify(r, 56 * KB, 9, "the neighbour, after the move");
    CHECK(malloc_usable_size(m) >= 160 * KB, "usable size %zu after realloc to 160 KiB", malloc_usable_size(m));

    free(r);
    free(m);
    size_t in_use1 = get_stats().bytes_in_use;
    CHECK(in_use1 == in_use0, "bytes in use %zu before, %zu after freeing everything", in_use0, in_use1);
    note("medium_realloc: all checks passed");
    return 0;
}
