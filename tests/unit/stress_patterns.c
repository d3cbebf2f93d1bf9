/*
 * stress_patterns: single-threaded random churn.
 *  1. 4 million operations on a live set of 4000 slots of 8..512-byte blocks (malloc, some
 *     calloc): each block's whole usable size carries a pattern, checked before it is freed;
 *     every 250k operations all live blocks are verified and checked for overlap.
 *  2. 2 million operations of realloc growth sequences: blocks start at 8..64 bytes and grow
 *     by small steps or by half (sometimes shrink) up to 20 KiB, crossing the small/medium
 *     boundary; the preserved prefix is checked after every realloc.
 * Every block is checked to be lite-malloc's (lite_owns), and lite_stats must account for
 * the live blocks while they are live and come back to its start value at the end (this is
 * single-threaded: nothing is freed remotely, so nothing may stay counted).
 */
#include "check.h"

struct slot {
    char *p;
    size_t req, usable;
    uint64_t seed;
};

static int cmp_slot(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t)((const struct slot *)a)->p, y = (uintptr_t)((const struct slot *)b)->p;
    return x < y ? -1 : x > y;
}

static void verify(const struct slot *s, const char *when, long op)
{
    size_t bad = check_pattern(s->p, s->usable, s->seed);
    CHECK(bad == (size_t)-1, "%s (op %ld): block %p (req %zu, usable %zu) corrupted at offset %zu",
          when, op, (void *)s->p, s->req, s->usable, bad);
}

static void sweep(struct slot *slots, int n, long op)
{
    static struct slot copy[4000];
    int k = 0;
    for (int i = 0; i < n; i++) {
        if (!slots[i].p) continue;
        verify(&slots[i], "sweep", op);
        copy[k++] = slots[i];
    }
    qsort(copy, (size_t)k, sizeof copy[0], cmp_slot);
    for (int i = 1; i < k; i++)
        CHECK(copy[i - 1].p + copy[i - 1].usable <= copy[i].p,
              "op %ld: live blocks overlap: %p+%zu and %p", op, (void *)copy[i - 1].p,
              copy[i - 1].usable, (void *)copy[i].p);
}

/* The last full check, then every live block freed. */
static void release_all(struct slot *slots, int n, long ops)
{
    sweep(slots, n, ops);
    for (int i = 0; i < n; i++) {
        if (slots[i].p) {
            verify(&slots[i], "final", ops);
            free(slots[i].p);
            slots[i].p = NULL;
        }
    }
}

static void churn(void)
{
    enum { N = 4000 };
    const long OPS = 4000000;
    static struct slot slots[N];
    uint64_t rng = 2024, seed = 0;
    for (long op = 0; op < OPS; op++) {
        struct slot *s = &slots[rng_below(&rng, N)];
        if (s->p) {
            verify(s, "before free", op);
            free(s->p);
            s->p = NULL;
        } else {
            size_t n = 8 + (size_t)rng_below(&rng, 505);
            int use_calloc = rng_below(&rng, 8) == 0;
            char *p = use_calloc ? calloc(1, n) : malloc(n);
            CHECK(p != NULL, "malloc(%zu)", n);
            expect_lite(p, use_calloc ? "calloc block" : "malloc block");
            CHECK(is_aligned(p, required_align(n)), "malloc(%zu) = %p misaligned", n, (void *)p);
            if (use_calloc) {
                size_t nz = first_nonzero(p, n);
                CHECK(nz == (size_t)-1, "calloc(1, %zu) (op %ld): byte %zu not zero", n, op, nz);
            }
            s->p = p;
            s->req = n;
            s->usable = malloc_usable_size(p);
            CHECK(s->usable >= n, "usable %zu < %zu", s->usable, n);
            s->seed = ++seed;
            fill_pattern(p, s->usable, s->seed);
        }
        if (op % 250000 == 0) sweep(slots, N, op);
    }
    /* the live blocks are counted as in use */
    size_t live = 0;
    for (int i = 0; i < N; i++) live += slots[i].p ? slots[i].usable : 0;
    struct lite_malloc_stats st = get_stats();
    note("churn: %zu bytes live in blocks, bytes_in_use %zu", live, st.bytes_in_use);
    CHECK(st.bytes_in_use >= live, "bytes_in_use %zu does not cover the %zu bytes of live blocks",
          st.bytes_in_use, live);
    release_all(slots, N, OPS);
}

static void realloc_growth(void)
{
    enum { N = 2000 };
    const long OPS = 2000000;
    const size_t MAXSZ = 20 * KiB;
    static struct slot slots[N];
    uint64_t rng = 77, seed = 1 << 30;
    long crossings = 0;
    for (long op = 0; op < OPS; op++) {
        struct slot *s = &slots[rng_below(&rng, N)];
        if (!s->p) {
            size_t n = 8 + (size_t)rng_below(&rng, 57);
            s->p = malloc(n);
            CHECK(s->p != NULL, "malloc(%zu)", n);
            expect_lite(s->p, "malloc block");
            s->req = n;
            s->usable = malloc_usable_size(s->p);
            CHECK(s->usable >= n, "usable");
            s->seed = ++seed;
            fill_pattern(s->p, s->usable, s->seed);
            continue;
        }
        if (s->req >= MAXSZ) {
            verify(s, "before free (grown)", op);
            free(s->p);
            s->p = NULL;
            continue;
        }
        uint64_t r = rng_below(&rng, 10);
        size_t n = r < 6 ? s->req + 1 + (size_t)rng_below(&rng, 64)
                 : r < 9 ? s->req + s->req / 2 + 1
                         : s->req / 2 + 1;
        if (n > MAXSZ) n = MAXSZ;
        /* the whole old usable size carried the pattern; only the old request is promised */
        size_t keep = n < s->req ? n : s->req;
        char *q = realloc(s->p, n);
        CHECK(q != NULL, "realloc(%zu -> %zu)", s->req, n);
        expect_lite(q, "realloc'ed block");
        CHECK(is_aligned(q, required_align(n)), "realloc(%zu -> %zu) misaligned", s->req, n);
        size_t bad = check_pattern(q, keep, s->seed);
        CHECK(bad == (size_t)-1, "realloc(%zu -> %zu) (op %ld) lost byte %zu", s->req, n, op, bad);
        if ((s->req <= 8 * KiB) != (n <= 8 * KiB)) crossings++;
        size_t u = malloc_usable_size(q);
        CHECK(u >= n, "realloc usable %zu < %zu", u, n);
        fill_pattern_range(q, keep, u, s->seed);
        s->p = q;
        s->req = n;
        s->usable = u;
        if (op % 250000 == 0) sweep(slots, N, op);
    }
    release_all(slots, N, OPS);
    CHECK(crossings > 1000, "only %ld reallocs crossed the 8 KiB boundary: test broken", crossings);
    note("realloc growth: %ld reallocs crossed the small/medium boundary", crossings);
}

int main(void)
{
    watchdog(200);
    struct lite_malloc_stats s0 = get_stats();
    churn();
    note("churn ok");
    realloc_growth();
    struct lite_malloc_stats s1 = get_stats();
    note("in_use %zu -> %zu", s0.bytes_in_use, s1.bytes_in_use);
    /* Single-threaded: every free is a local free, so the count is exact (4 KiB of slack for
     * whatever the C library may hold on to). */
    CHECK(s1.bytes_in_use <= s0.bytes_in_use + 4 * KiB, "bytes_in_use %zu after freeing everything "
          "(start %zu)", s1.bytes_in_use, s0.bytes_in_use);
    note("stress_patterns: all checks passed");
    return 0;
}
