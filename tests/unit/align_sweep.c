/*
 * align_sweep: alignment and usable-size sweeps with many blocks live at once.
 *  - malloc/calloc of every size 0..4096, then stepped sizes up to ~300 KiB (plus every size
 *    around the small/medium/large boundaries): 16-byte alignment for >= 16 bytes,
 *    usable size >= request, no two live blocks overlap (checked by sorting the
 *    [p, p + usable) intervals), and a pattern written over each whole usable size survives
 *    until the block is freed (also after punching holes and refilling them).
 *  - posix_memalign / aligned_alloc / memalign / lite_posix_memalign / lite_aligned_alloc
 *    with every power-of-two alignment up to 1 MiB and sizes across all classes, all live
 *    together with the blocks above; realloc of aligned blocks keeps their content.
 */
#include "check.h"

struct blk {
    char *p;
    size_t req, usable;
    uint64_t seed;
    const char *how;
    size_t align;
};

static struct blk *blocks;
static size_t nblocks, capblocks;

static void add_block(char *p, size_t req, size_t align, const char *how)
{
    CHECK(p != NULL, "%s(size %zu, align %zu) returned NULL", how, req, align);
    size_t need = align > required_align(req) ? align : required_align(req);
    CHECK(is_aligned(p, need), "%s(size %zu, align %zu) = %p is not %zu-aligned", how, req, align,
          (void *)p, need);
    size_t u = malloc_usable_size(p);
    CHECK(u >= req, "%s(size %zu, align %zu): usable size %zu < request", how, req, align, u);
    CHECK(lite_usable_size(p) == u, "lite_usable_size != malloc_usable_size");
    if (nblocks == capblocks) {
        capblocks = capblocks ? capblocks * 2 : 4096;
        blocks = realloc(blocks, capblocks * sizeof *blocks);
        CHECK(blocks != NULL, "realloc of the block table");
    }
    struct blk *b = &blocks[nblocks];
    b->p = p;
    b->req = req;
    b->usable = u;
    b->seed = ((uint64_t)nblocks << 32) ^ (uintptr_t)p ^ 0x5bd1e995;
    b->how = how;
    b->align = align;
    fill_pattern(p, u, b->seed);
    nblocks++;
}

static void verify_block(const struct blk *b, const char *when)
{
    size_t bad = check_pattern(b->p, b->usable, b->seed);
    CHECK(bad == (size_t)-1,
          "%s: block %p from %s(size %zu, align %zu, usable %zu) corrupted at offset %zu",
          when, (void *)b->p, b->how, b->req, b->align, b->usable, bad);
}

static int cmp_blk(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t)((const struct blk *)a)->p, y = (uintptr_t)((const struct blk *)b)->p;
    return x < y ? -1 : x > y;
}

static void verify_all(const char *when)
{
    for (size_t i = 0; i < nblocks; i++) verify_block(&blocks[i], when);
    /* no overlap between live blocks (sorting reorders the table; seeds travel along) */
    qsort(blocks, nblocks, sizeof *blocks, cmp_blk);
    for (size_t i = 1; i < nblocks; i++) {
        const struct blk *a = &blocks[i - 1], *b = &blocks[i];
        CHECK(a->p + a->usable <= b->p,
              "%s: blocks overlap: %p+%zu (%s size %zu) and %p (%s size %zu)", when,
              (void *)a->p, a->usable, a->how, a->req, (void *)b->p, b->how, b->req);
    }
}

static void free_all_shuffled(uint64_t *rng)
{
    for (size_t i = nblocks; i > 1; i--) {
        size_t j = (size_t)rng_below(rng, i);
        struct blk t = blocks[i - 1];
        blocks[i - 1] = blocks[j];
        blocks[j] = t;
    }
    for (size_t i = 0; i < nblocks; i++) {
        verify_block(&blocks[i], "before free");
        free(blocks[i].p);
    }
    nblocks = 0;
}

/* sizes of the malloc sweep */
static size_t *sweep_sizes(size_t *count)
{
    size_t cap = 8192, n = 0;
    size_t *s = malloc(cap * sizeof *s);
    CHECK(s != NULL, "malloc");
    for (size_t k = 0; k <= 4096; k++) s[n++] = k;
    for (size_t k = 4096; k <= 300 * KiB; k += k / 32 > 16 ? k / 32 : 16) s[n++] = k + 8;
    static const size_t edges[] = {8 * KiB, 16 * KiB, 64 * KiB, 128 * KiB, 132 * KiB, 256 * KiB};
    for (size_t e = 0; e < sizeof edges / sizeof edges[0]; e++)
        for (size_t d = 0; d <= 32; d++) {
            s[n++] = edges[e] - 16 + d;
        }
    *count = n;
    return s;
}

static void malloc_sweep(uint64_t *rng, int use_calloc)
{
    size_t n;
    size_t *sizes = sweep_sizes(&n);
    const char *how = use_calloc ? "calloc" : "malloc";
    for (size_t i = 0; i < n; i++) {
        char *p = use_calloc ? calloc(1, sizes[i]) : malloc(sizes[i]);
        if (use_calloc && p) {
            size_t nz = first_nonzero(p, sizes[i]);
            CHECK(nz == (size_t)-1, "calloc(1, %zu): byte %zu not zero", sizes[i], nz);
        }
        add_block(p, sizes[i], 0, how);
    }
    verify_all(use_calloc ? "calloc sweep" : "malloc sweep");

    /* punch holes (every third block) and refill them with other sizes */
    size_t keep = 0;
    for (size_t i = 0; i < nblocks; i++) {
        if (i % 3 == 1) {
            verify_block(&blocks[i], "before free (holes)");
            free(blocks[i].p);
        } else {
            blocks[keep++] = blocks[i];
        }
    }
    nblocks = keep;
    for (size_t i = 0; i < n / 3; i++) {
        size_t sz = sizes[rng_below(rng, n)];
        add_block(malloc(sz), sz, 0, "malloc (refill)");
    }
    verify_all("after refilling holes");
    free(sizes);
}

static void aligned_sweep(void)
{
    static const size_t sizes[] = {0, 1, 7, 8, 15, 16, 17, 31, 33, 64, 100, 255, 256, 257, 1000,
                                   4095, 4096, 4097, 8191, 8192, 8193, 10000, 65536, 131071,
                                   131072, 131073, 200000, 300000};
    const size_t ns = sizeof sizes / sizeof sizes[0];
    for (int fn = 0; fn < 5; fn++) {
        for (int shift = fn == 1 || fn == 2 || fn == 4 ? 0 : 3; shift <= 20; shift++) {
            size_t al = (size_t)1 << shift;
            for (size_t k = 0; k < ns; k++) {
                size_t sz = sizes[k];
                void *p = NULL;
                const char *how = "?";
                int rc;
                switch (fn) {
                case 0:
                    how = "posix_memalign";
                    rc = posix_memalign(&p, al, sz);
                    CHECK(rc == 0, "posix_memalign(%zu, %zu) = %d", al, sz, rc);
                    break;
                case 1:
                    how = "aligned_alloc";
                    p = aligned_alloc(al, sz);
                    break;
                case 2:
                    how = "memalign";
                    p = memalign(al, sz);
                    break;
                case 3:
                    how = "lite_posix_memalign";
                    rc = lite_posix_memalign(&p, al, sz);
                    CHECK(rc == 0, "lite_posix_memalign(%zu, %zu) = %d", al, sz, rc);
                    break;
                default:
                    how = "lite_aligned_alloc";
                    p = lite_aligned_alloc(al, sz);
                    break;
                }
                add_block(p, sz, al, how);
            }
        }
    }
    verify_all("aligned sweep");

    /* realloc keeps the content of live blocks, aligned ones included (every 7th block,
     * growing and shrinking) */
    for (size_t i = 0; i < nblocks; i += 7) {
        struct blk *b = &blocks[i];
        size_t nsz = (i / 7) % 2 ? b->req * 2 + 100 : b->req / 2 + 1;
        size_t keep = nsz < b->usable ? nsz : b->usable;
        char *q = realloc(b->p, nsz);
        CHECK(q != NULL, "realloc of a %s block %zu -> %zu", b->how, b->req, nsz);
        size_t bad = check_pattern(q, keep, b->seed);
        CHECK(bad == (size_t)-1, "realloc of a %s(align %zu) block %zu -> %zu lost byte %zu",
              b->how, b->align, b->req, nsz, bad);
        size_t u = malloc_usable_size(q);
        CHECK(u >= nsz, "realloc usable size %zu < %zu", u, nsz);
        CHECK(is_aligned(q, required_align(nsz)), "realloc result misaligned");
        fill_pattern_range(q, keep, u, b->seed);
        b->p = q;
        b->req = nsz;
        b->usable = u;
        b->align = 0;
    }
    verify_all("after realloc of aligned blocks");
}

int main(void)
{
    watchdog(200);
    uint64_t rng = 42;
    malloc_sweep(&rng, 0);
    note("malloc sweep: %zu blocks live, ok", nblocks);
    free_all_shuffled(&rng);
    malloc_sweep(&rng, 1);
    note("calloc sweep: %zu blocks live, ok", nblocks);
    /* aligned blocks live together with the calloc sweep's blocks */
    aligned_sweep();
    note("aligned sweep: %zu blocks live, ok", nblocks);
    free_all_shuffled(&rng);
    /* once more with everything freed (reuse of freed aligned memory) */
    aligned_sweep();
    malloc_sweep(&rng, 0);
    verify_all("final");
    note("second pass: %zu blocks live, ok", nblocks);
    free_all_shuffled(&rng);
    free(blocks);
    note("align_sweep: all checks passed");
    return 0;
}
