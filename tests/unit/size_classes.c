/*
 * size_classes: the density promises.
 *  - Every request from 1 byte to 8 KiB gets a lite-malloc block whose usable size is within
 *    6% of the request rounded up to 16 (the size-class rounding; alignment wins below 16),
 *    and from 8 KiB to 48 KiB (the largest size class) within 10%.
 *  - Small blocks carry no header: blocks of one size taken from a fresh superblock sit
 *    exactly one block size apart.
 *  - The README's promise itself: a block's share of its superblock (class rounding plus the
 *    superblock's header and tail) is within 6% of the request rounded up to 16 up to
 *    8 KiB, 10% above.  Measured for a spread of sizes, the worst of the table among them,
 *    in a fresh process per size holding 256 MiB of that size: superblocks in use x
 *    512 KiB (the superblock size the README gives) per requested byte, and the memory the
 *    allocator committed must agree with that count (nothing else grows).
 *  - Above the size classes (page runs, large blocks) up to 1 MiB: resident memory per
 *    requested byte, every page of every block written, at most 1.10.
 */
#include "check.h"
#include <sys/wait.h>

#define SUPERBLOCK (512 * KiB) /* README: "512 KiB superblocks" */
#define SMALL_MAX (48 * KiB)   /* README: the largest size class */

static size_t round16(size_t n) { return n < 16 ? 16 : (n + 15) & ~(size_t)15; }

static void *live[1 << 22];

static double limit_of(size_t n) { return n <= 8192 ? 1.06 : 1.10; }

/* Above the size classes: resident memory per requested byte, every page written. */
static int rss_density_of(size_t n) {
    size_t count = (size_t)256 * MiB / round16(n);
    size_t rss0 = rss_bytes();
    for (size_t i = 0; i < count; i++) {
        char *p = live[i] = malloc(n);
        CHECK(p != NULL, "malloc(%zu) #%zu", n, i);
        for (size_t off = 0; off < n; off += 4096) p[off] = 1;
        p[n - 1] = 1;
    }
    expect_lite(live[0], "first block");
    double per_byte = (double)(rss_bytes() - rss0) / ((double)count * (double)round16(n));
    note("size %7zu: %5zu blocks: %.4f resident bytes per requested byte (limit 1.10)", n, count, per_byte);
    CHECK(per_byte <= 1.10, "size %zu: %.4f resident bytes per requested byte: more than 10%% over the "
          "request rounded up to 16", n, per_byte);
    return 0;
}

static int density_of(size_t n) {  /* one size, in a fresh process */
    if (n > SMALL_MAX) return rss_density_of(n);
    size_t count = (size_t)256 * MiB / round16(n);
    if (count > sizeof live / sizeof *live) count = sizeof live / sizeof *live;
    struct lite_malloc_stats before = get_stats();
    for (size_t i = 0; i < count; i++) {
        live[i] = malloc(n);
        CHECK(live[i] != NULL, "malloc(%zu) #%zu", n, i);
    }
    struct lite_malloc_stats after = get_stats();
    expect_lite(live[0], "first block");
    expect_lite(live[count - 1], "last block");
    double requested = (double)count * (double)round16(n);
    size_t sbs = after.superblocks - before.superblocks;
    double share = (double)sbs * (double)SUPERBLOCK / requested;
    size_t committed = after.bytes_mapped - before.bytes_mapped;
    note("size %5zu: %7zu blocks in %5zu superblocks: %.4f bytes of superblock per requested byte "
         "(limit %.2f); %zu KiB committed for %zu KiB of superblocks", n, count, sbs, share, limit_of(n),
         committed / KiB, sbs * SUPERBLOCK / KiB);
    /* (the last superblock of the class is partly used: it is not counted against the limit) */
    double full = (double)(sbs - 1) * (double)SUPERBLOCK / requested;
    CHECK(full <= limit_of(n), "size %zu: %zu blocks take %zu superblocks, %.4f bytes per requested byte "
          "(%.4f without the last): over the limit %.2f", n, count, sbs, share, full, limit_of(n));
    /* Committed memory grows in steps of 4 MiB or more (and metadata in 1 MiB steps), the
     * first of which may have been committed before, and runs ahead of the need by up to an
     * eighth of what is committed (at most 64 MiB; README "Arenas and slots"): the
     * superblocks must be all of it but that, or the count above measures nothing. */
    size_t ahead = after.bytes_mapped / 8 < 64 * MiB ? after.bytes_mapped / 8 : 64 * MiB;
    CHECK(committed + 4 * MiB >= sbs * SUPERBLOCK && committed <= sbs * SUPERBLOCK + 8 * MiB + ahead,
          "size %zu: %zu KiB committed for %zu superblocks (%zu KiB): the measure is broken", n,
          committed / KiB, sbs, sbs * SUPERBLOCK / KiB);
    return 0;
}

int main(int argc, char **argv) {
    if (argc > 1) return density_of((size_t)strtoul(argv[1], NULL, 10));
    watchdog(200);
    for (size_t n = 1; n <= SMALL_MAX; n++) {
        void *p = malloc(n);
        CHECK(p != NULL, "malloc(%zu)", n);
        expect_lite(p, "malloc block");
        size_t u = malloc_usable_size(p);
        CHECK(u >= n, "usable %zu < %zu", u, n);
        CHECK((double)u <= limit_of(n) * (double)round16(n), "malloc(%zu): usable %zu is more than %.2f x %zu",
              n, u, limit_of(n), round16(n));
        free(p);
    }

    /* No header: 64 consecutive 48-byte blocks from a fresh superblock are 48 bytes apart. */
    enum { K = 2000 };
    static char *b[K];
    size_t adjacent = 0;
    for (int i = 0; i < K; i++) b[i] = malloc(48);
    for (int i = 1; i < K; i++) adjacent += b[i] - b[i - 1] == 48 || b[i - 1] - b[i] == 48;
    CHECK(adjacent > K * 9 / 10, "only %zu of %d consecutive 48-byte blocks are 48 bytes apart", adjacent, K);
    for (int i = 0; i < K; i++) free(b[i]);

    /* Memory per live byte, one size at a time, each in a freshly exec'd copy of this
     * program whose heap holds nothing else.  The sizes include the worst cases of the class
     * table (just above a class boundary), of page rounding (just above a page) and powers
     * of two. */
    static const size_t sizes[] = {16,    48,    100,   272,   304,   520,    545,    1040,   2064,   3000,
                                   4100,  5000,  7000,  8192,  8193,  9800,   16385,  24577,  32769,  40961,
                                   49152, 49153, 53249, 65537, 98305, 131073, 262145, 520193, 700000, 1048576};
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
        char arg[32];
        snprintf(arg, sizeof arg, "%zu", sizes[s]);
        fflush(stdout);
        pid_t pid = fork();
        CHECK(pid >= 0, "fork");
        if (pid == 0) {
            execl("/proc/self/exe", "size_classes", arg, (char *)NULL);
            _exit(127);
        }
        int status;
        CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "size %zu: child failed", sizes[s]);
    }
    note("size_classes: all checks passed");
    return 0;
}
