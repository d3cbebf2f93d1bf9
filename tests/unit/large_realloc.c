/*
 * large_realloc: realloc of a large block moves its pages with mremap instead of copying
 * them (README, "How it works").  A copy writes every page of the new block, and each of
 * those first writes is a minor page fault; moving the pages faults none.  So: an 80 MiB
 * block (20480 pages, all touched; above the 64 MiB a run of slots holds, so a mapping
 * of its own) is grown to 160 MiB, first where it cannot grow in
 * place (a page is mapped right after it: the block must move, and does), then in place,
 * then shrunk to 40 MiB; each realloc must cost fewer than 256 page faults (1/64 of the
 * pages a copy would fault) and keep the content (a marker in every page).
 * A large block's usable size is its request rounded up to pages, not the rest of its
 * run of 512 KiB slots (a 520,193-byte block once reported 1 MiB less a page): realloc
 * copies the usable size when it moves a block, so a larger one wrote (and made
 * resident) pages the program never asked for.  Checked over large sizes, with
 * lite_good_size agreeing, and after a realloc that grows a block within its run.
 */
#include "check.h"
#include <sys/mman.h>

#define PAGE 4096

static void mark_pages(char *p, size_t n, unsigned salt)
{
    for (size_t off = 0; off < n; off += PAGE) {
        uint64_t v = off * 0x9E3779B97F4A7C15ull ^ salt;
        memcpy(p + off, &v, sizeof v);
    }
}

static void check_pages(const char *p, size_t n, unsigned salt, const char *when)
{
    for (size_t off = 0; off < n; off += PAGE) {
        uint64_t v;
        memcpy(&v, p + off, sizeof v);
        CHECK(v == (off * 0x9E3779B97F4A7C15ull ^ salt), "%s: page at offset %zu lost its content",
              when, off);
    }
}

/* realloc(p, n) that must not copy; returns the new block */
static char *realloc_without_copy(char *p, size_t old_n, size_t n, const char *what)
{
    long f0 = minor_faults();
    char *q = realloc(p, n);
    long faults = minor_faults() - f0;
    CHECK(q != NULL, "%s: realloc(%zu MiB -> %zu MiB) failed", what, old_n / MiB, n / MiB);
    note("%s: realloc %zu MiB -> %zu MiB: %s, %ld page faults", what, old_n / MiB, n / MiB,
         q == p ? "same address" : "moved", faults);
    expect_lite(q, what);
    CHECK(malloc_usable_size(q) >= n, "%s: usable %zu < %zu", what, malloc_usable_size(q), n);
    size_t copied = old_n < n ? old_n : n;
    CHECK(faults < (long)(copied / PAGE / 64), "%s: realloc %zu MiB -> %zu MiB took %ld page faults: "
          "the %zu pages were copied, not moved", what, old_n / MiB, n / MiB, faults, copied / PAGE);
    check_pages(q, copied, 7, what);
    return q;
}

/* usable(malloc(n)) is n rounded up to pages */
static void check_usable_is_request(void)
{
    static const size_t sizes[] = {520193, 524288, 700000, 1048577, 1572865, 3 * MiB + 1, 63 * MiB + 5};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t n = sizes[i], want = (n + PAGE - 1) & ~(size_t)(PAGE - 1);
        char *p = malloc(n);
        CHECK(p != NULL, "malloc(%zu)", n);
        expect_lite(p, "a large block");
        CHECK(malloc_usable_size(p) == want, "malloc(%zu): usable size %zu, not the request rounded to pages (%zu)",
              n, malloc_usable_size(p), want);
        CHECK(lite_good_size(n) == want, "lite_good_size(%zu) = %zu, not %zu", n, lite_good_size(n), want);
        char *q = realloc(p, n + 3 * PAGE);  /* within the same run of slots (or moved) */
        CHECK(q != NULL, "realloc(%zu -> %zu)", n, n + 3 * PAGE);
        CHECK(malloc_usable_size(q) == want + 3 * PAGE, "realloc(%zu -> %zu): usable size %zu", n, n + 3 * PAGE,
              malloc_usable_size(q));
        free(q);
    }
    note("large_realloc: usable sizes are requests rounded to pages");
}

int main(void)
{
    watchdog(60);
    check_usable_is_request();
    const size_t n = 80 * MiB;
    char *p = malloc(n);
    CHECK(p != NULL, "malloc(80 MiB)");
    expect_lite(p, "malloc(80 MiB) block");
    mark_pages(p, n, 7);

    /* Something right after the block: growing in place is impossible, the block must move.
     * (Its mapping is [p, p + n): the block starts it, its record is elsewhere.) */
    char *end = (char *)(((uintptr_t)p + n + PAGE - 1) & ~(uintptr_t)(PAGE - 1));
    void *guard = mmap(end, PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    CHECK(guard != MAP_FAILED || errno == EEXIST, "mmap of a guard page at %p: errno %d", (void *)end, errno);
    char *q = realloc_without_copy(p, n, 2 * n, "grow where it cannot grow in place");
    CHECK(q != p, "realloc returned the same address %p although the next page is taken", (void *)p);
    if (guard != MAP_FAILED) munmap(guard, PAGE);
    mark_pages(q, 2 * n, 7);

    /* Again, in place where the address space after it is free, else moved: no copy either way. */
    char *r = realloc_without_copy(q, 2 * n, 3 * n, "grow");
    mark_pages(r, 3 * n, 7);

    char *s = realloc_without_copy(r, 3 * n, n / 2, "shrink");
    CHECK(s == r, "shrinking moved the block from %p to %p", (void *)r, (void *)s);
    free(s);
    note("large_realloc: all checks passed");
    return 0;
}
