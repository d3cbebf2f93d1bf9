/*
 * api: conformance of the whole C API (glibc-compatible semantics, x86_64) and of the
 * prefixed lite_* API, with edge cases and errno values.
 */
#include "check.h"

#include <pthread.h>
#include <stdint.h>
#include <sys/mman.h>

/* glibc's own allocator, to obtain a "foreign" pointer (exported by glibc since 2.2.5). */
extern void *__libc_malloc(size_t);
extern void __libc_free(void *);

static const size_t huge_sizes[] = {
    SIZE_MAX, SIZE_MAX - 15, SIZE_MAX - 4096, (size_t)PTRDIFF_MAX + 1, (size_t)PTRDIFF_MAX,
    (size_t)1 << 62, (size_t)1 << 61 | 12345,
};
#define NHUGE (sizeof huge_sizes / sizeof huge_sizes[0])

static int cmp_ptr(const void *a, const void *b)
{
    uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
    return x < y ? -1 : x > y;
}

/* Checks a fresh block of n requested bytes: non-NULL, aligned, usable >= n, owned, and
 * that its whole usable size can be written. */
static void check_block(const char *what, void *p, size_t n, size_t align)
{
    CHECK(p != NULL, "%s(%zu) returned NULL", what, n);
    CHECK(is_aligned(p, required_align(n)), "%s(%zu) = %p not %zu-aligned", what, n, p,
          required_align(n));
    if (align) CHECK(is_aligned(p, align), "%s(%zu) = %p not %zu-aligned", what, n, p, align);
    size_t u = malloc_usable_size(p);
    CHECK(u >= n, "%s(%zu): malloc_usable_size %zu < requested", what, n, u);
    CHECK(lite_usable_size(p) == u, "%s(%zu): lite_usable_size %zu != malloc_usable_size %zu",
          what, n, lite_usable_size(p), u);
    CHECK(lite_owns(p) == 1, "%s(%zu) = %p: lite_owns(p) != 1", what, n, p);
    if (u) {
        CHECK(lite_owns((char *)p + u - 1) == 1, "%s(%zu): lite_owns(last usable byte) != 1", what, n);
        CHECK(lite_owns((char *)p + u / 2) == 1, "%s(%zu): lite_owns(middle byte) != 1", what, n);
        if (u <= 4 * MiB) {
            fill_pattern(p, u, (uintptr_t)p);
            CHECK(check_pattern(p, u, (uintptr_t)p) == (size_t)-1, "%s(%zu): pattern lost", what, n);
        } else {
            memset(p, 0x5a, 4096);
            ((volatile char *)p)[u - 1] = 1;
        }
    }
}

/* ------------------------------------------------------------------ malloc(0), free(NULL) */
static void test_malloc0(void)
{
    enum { N = 1000 };
    static void *ptrs[N];
    free(NULL);
    lite_free(NULL);
    for (int i = 0; i < N; i++) {
        ptrs[i] = malloc(0);
        CHECK(ptrs[i] != NULL, "malloc(0) returned NULL (iteration %d)", i);
        CHECK(lite_owns(ptrs[i]) == 1, "lite_owns(malloc(0)) != 1");
    }
    qsort(ptrs, N, sizeof ptrs[0], cmp_ptr);
    for (int i = 1; i < N; i++)
        CHECK(ptrs[i] != ptrs[i - 1], "malloc(0) returned the same pointer %p twice", ptrs[i]);
    for (int i = 0; i < N; i++) free(ptrs[i]);

    void *z = calloc(0, 10);
    CHECK(z != NULL, "calloc(0, 10) returned NULL");
    free(z);
    z = calloc(10, 0);
    CHECK(z != NULL, "calloc(10, 0) returned NULL");
    free(z);
    z = realloc(NULL, 0);
    CHECK(z != NULL, "realloc(NULL, 0) returned NULL");
    free(z);
    z = lite_malloc(0);
    CHECK(z != NULL, "lite_malloc(0) returned NULL");
    lite_free(z);
    CHECK(malloc_usable_size(NULL) == 0, "malloc_usable_size(NULL) = %zu", malloc_usable_size(NULL));
    CHECK(lite_usable_size(NULL) == 0, "lite_usable_size(NULL) = %zu", lite_usable_size(NULL));

    /* realloc(p, 0): glibc frees p and returns NULL; either result must be safe. */
    void *p = malloc(100);
    CHECK(p != NULL, "malloc(100)");
    void *q = realloc(p, 0);
    if (q) free(q);
}

/* ------------------------------------------------------------------ sizes & alignment */
static void test_basic_sizes(void)
{
    static const size_t sizes[] = {1, 2, 3, 4, 7, 8, 9, 15, 16, 17, 24, 31, 32, 33, 48, 63, 64,
                                   65, 100, 127, 128, 129, 255, 256, 257, 511, 512, 513, 1000,
                                   1024, 2047, 2048, 4095, 4096, 4097, 8000, 8184, 8191, 8192,
                                   8193, 8200, 12288, 16384, 65535, 65536, 65537, 131071,
                                   131072, 131073, 135168, 200000, 1 << 20, (1 << 20) + 1,
                                   8 << 20, 64 << 20};
    const size_t n = sizeof sizes / sizeof sizes[0];
    void *ptrs[sizeof sizes / sizeof sizes[0]];
    for (size_t i = 0; i < n; i++) {
        ptrs[i] = malloc(sizes[i]);
        check_block("malloc", ptrs[i], sizes[i], 0);
    }
    /* All live at once: re-fill with a per-block seed and verify nothing overlapped. */
    for (size_t i = 0; i < n; i++) {
        size_t u = malloc_usable_size(ptrs[i]);
        fill_pattern(ptrs[i], u < 4 * MiB ? u : 4 * MiB, i * 7919 + 1);
    }
    for (size_t i = 0; i < n; i++) {
        size_t u = malloc_usable_size(ptrs[i]);
        size_t bad = check_pattern(ptrs[i], u < 4 * MiB ? u : 4 * MiB, i * 7919 + 1);
        CHECK(bad == (size_t)-1, "block of %zu bytes corrupted at offset %zu", sizes[i], bad);
    }
    for (size_t i = 0; i < n; i++) free(ptrs[i]);
}

/* ------------------------------------------------------------------ huge requests */
static void test_huge(void)
{
    for (size_t i = 0; i < NHUGE; i++) {
        size_t n = huge_sizes[i];
        errno = 0;
        void *p = malloc(n);
        CHECK(p == NULL, "malloc(%#zx) succeeded", n);
        CHECK(errno == ENOMEM, "malloc(%#zx): errno %d, want ENOMEM", n, errno);
        errno = 0;
        p = lite_malloc(n);
        CHECK(p == NULL && errno == ENOMEM, "lite_malloc(%#zx): %p errno %d", n, p, errno);
        errno = 0;
        p = realloc(NULL, n);
        CHECK(p == NULL && errno == ENOMEM, "realloc(NULL, %#zx): %p errno %d", n, p, errno);
        errno = 0;
        p = calloc(1, n);
        CHECK(p == NULL && errno == ENOMEM, "calloc(1, %#zx): %p errno %d", n, p, errno);
        errno = 0;
        p = valloc(n);
        CHECK(p == NULL && errno == ENOMEM, "valloc(%#zx): %p errno %d", n, p, errno);
        errno = 0;
        p = pvalloc(n);
        CHECK(p == NULL && errno == ENOMEM, "pvalloc(%#zx): %p errno %d", n, p, errno);
        errno = 0;
        p = memalign(64, n);
        CHECK(p == NULL && errno == ENOMEM, "memalign(64, %#zx): %p errno %d", n, p, errno);
        errno = 0;
        p = aligned_alloc(4096, n);
        CHECK(p == NULL && errno == ENOMEM, "aligned_alloc(4096, %#zx): %p errno %d", n, p, errno);
        void *out = (void *)0x1234;
        int rc = posix_memalign(&out, 16, n);
        CHECK(rc == ENOMEM, "posix_memalign(16, %#zx) returned %d, want ENOMEM", n, rc);
        CHECK(out == (void *)0x1234, "posix_memalign(16, %#zx) changed *out on failure", n);
        out = (void *)0x1234;
        rc = lite_posix_memalign(&out, 1 << 20, n);
        CHECK(rc == ENOMEM && out == (void *)0x1234,
              "lite_posix_memalign(1M, %#zx) returned %d out %p", n, rc, out);
    }

    /* realloc to a huge size fails and leaves the block intact, for every size class. */
    static const size_t base[] = {1, 100, 5000, 50000, 131072, 1 << 20};
    for (size_t b = 0; b < sizeof base / sizeof base[0]; b++) {
        size_t n = base[b];
        char *p = malloc(n);
        CHECK(p != NULL, "malloc(%zu)", n);
        fill_pattern(p, n, 0xabc + n);
        size_t u = malloc_usable_size(p);
        for (size_t i = 0; i < NHUGE; i++) {
            errno = 0;
            void *q = realloc(p, huge_sizes[i]);
            CHECK(q == NULL, "realloc(%zu-byte block, %#zx) succeeded", n, huge_sizes[i]);
            CHECK(errno == ENOMEM, "realloc(%zu-byte block, %#zx): errno %d, want ENOMEM", n,
                  huge_sizes[i], errno);
            errno = 0;
            q = lite_realloc(p, huge_sizes[i]);
            CHECK(q == NULL && errno == ENOMEM, "lite_realloc(%zu-byte block, %#zx): %p errno %d",
                  n, huge_sizes[i], q, errno);
            errno = 0;
            q = reallocarray(p, 1, huge_sizes[i]);
            CHECK(q == NULL && errno == ENOMEM, "reallocarray(%zu-byte block, 1, %#zx): %p errno %d",
                  n, huge_sizes[i], q, errno);
            size_t bad = check_pattern(p, n, 0xabc + n);
            CHECK(bad == (size_t)-1, "failed realloc of a %zu-byte block changed byte %zu", n, bad);
            CHECK(malloc_usable_size(p) == u, "failed realloc changed the usable size");
            CHECK(lite_owns(p) == 1, "block not owned after failed realloc");
        }
        /* still a live, working block */
        char *q = realloc(p, n + 10);
        CHECK(q != NULL, "realloc after a failed realloc");
        CHECK(check_pattern(q, n, 0xabc + n) == (size_t)-1, "content lost after failed realloc");
        free(q);
    }
}

/* ------------------------------------------------------------------ calloc */
static void test_calloc(void)
{
    /* overflow */
    static const size_t ovf[][2] = {
        {SIZE_MAX, 2}, {2, SIZE_MAX}, {SIZE_MAX / 2 + 1, 2}, {(size_t)1 << 32, (size_t)1 << 32},
        {(size_t)1 << 33, (size_t)1 << 31}, {SIZE_MAX, SIZE_MAX}, {3, SIZE_MAX / 3 + 1},
        {(size_t)1 << 31, (size_t)1 << 31}, /* no overflow, but 4 EiB */
    };
    for (size_t i = 0; i < sizeof ovf / sizeof ovf[0]; i++) {
        errno = 0;
        void *p = calloc(ovf[i][0], ovf[i][1]);
        CHECK(p == NULL, "calloc(%#zx, %#zx) succeeded", ovf[i][0], ovf[i][1]);
        CHECK(errno == ENOMEM, "calloc(%#zx, %#zx): errno %d, want ENOMEM", ovf[i][0], ovf[i][1],
              errno);
        errno = 0;
        p = lite_calloc(ovf[i][0], ovf[i][1]);
        CHECK(p == NULL && errno == ENOMEM, "lite_calloc(%#zx, %#zx): %p errno %d", ovf[i][0],
              ovf[i][1], p, errno);
        errno = 0;
        p = reallocarray(NULL, ovf[i][0], ovf[i][1]);
        CHECK(p == NULL && errno == ENOMEM, "reallocarray(NULL, %#zx, %#zx): %p errno %d",
              ovf[i][0], ovf[i][1], p, errno);
    }

    /* zeroing, also after the same memory was used dirty (small, medium, large, mapped) */
    static const size_t sizes[] = {1, 8, 16, 24, 100, 500, 1000, 4000, 8000, 8192, 8200, 20000,
                                   65536, 100000, 131072, 131073, 500000, 1 << 20, 16 << 20,
                                   64 << 20};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        size_t n = sizes[s];
        int count = n <= 8192 ? 300 : n <= 131072 ? 40 : n <= (1 << 20) ? 6 : n <= (16 << 20) ? 2 : 1;
        void *ptrs[300];
        for (int round = 0; round < 3; round++) {
            for (int i = 0; i < count; i++) {
                ptrs[i] = malloc(n);
                CHECK(ptrs[i] != NULL, "malloc(%zu)", n);
                memset(ptrs[i], 0xA5, malloc_usable_size(ptrs[i]));
            }
            for (int i = 0; i < count; i++) free(ptrs[i]);
            for (int i = 0; i < count; i++) {
                ptrs[i] = (round & 1) ? lite_calloc(n, 1) : calloc(1, n);
                CHECK(ptrs[i] != NULL, "calloc(1, %zu)", n);
                CHECK(is_aligned(ptrs[i], required_align(n)), "calloc(1, %zu) misaligned", n);
                CHECK(malloc_usable_size(ptrs[i]) >= n, "calloc usable size < %zu", n);
                size_t nz = first_nonzero(ptrs[i], n);
                CHECK(nz == (size_t)-1, "calloc(1, %zu) round %d block %d: byte %zu is not zero "
                      "(reused dirty memory)", n, round, i, nz);
                memset(ptrs[i], 0x5A, malloc_usable_size(ptrs[i]));
            }
            for (int i = 0; i < count; i++) free(ptrs[i]);
        }
    }
    /* calloc(n, size) with a product computed right */
    int *arr = calloc(1000, sizeof(int));
    CHECK(arr != NULL && malloc_usable_size(arr) >= 4000, "calloc(1000, 4)");
    CHECK(first_nonzero(arr, 4000) == (size_t)-1, "calloc(1000, 4) not zero");
    free(arr);
}

/* ------------------------------------------------------------------ realloc */
static const size_t rsizes[] = {0, 1, 8, 15, 16, 17, 100, 1000, 4096, 8184, 8192, 8193, 12000,
                                65536, 100000, 131072, 131073, 200000, 1 << 20, 4 << 20, 64 << 20};
#define NRS (sizeof rsizes / sizeof rsizes[0])

/* Pattern over [from, to) that stays cheap for blocks of many MiB: every byte below 1 MiB,
 * then the first 64 bytes of every 4 KiB.  The written positions do not depend on the block
 * size, so a prefix check after realloc sees exactly what was written. */
static void fill_sparse(void *p, size_t from, size_t to, uint64_t seed)
{
    size_t k = from;
    if (k < MiB) {
        size_t e = to < MiB ? to : MiB;
        fill_pattern_range(p, k, e, seed);
        k = e;
    }
    while (k < to) {
        size_t pg = k & ~(size_t)4095, e = pg + 64 < to ? pg + 64 : to;
        if (k < e) fill_pattern_range(p, k, e, seed);
        k = pg + 4096;
    }
}

static size_t check_sparse(const void *p, size_t from, size_t to, uint64_t seed)
{
    size_t k = from;
    if (k < MiB) {
        size_t e = to < MiB ? to : MiB;
        size_t bad = check_pattern_range(p, k, e, seed);
        if (bad != (size_t)-1) return bad;
        k = e;
    }
    while (k < to) {
        size_t pg = k & ~(size_t)4095, e = pg + 64 < to ? pg + 64 : to;
        if (k < e) {
            size_t bad = check_pattern_range(p, k, e, seed);
            if (bad != (size_t)-1) return bad;
        }
        k = pg + 4096;
    }
    return (size_t)-1;
}

static void test_realloc(void)
{
    /* realloc(NULL, n) is malloc(n) */
    for (size_t i = 0; i < NRS; i++) {
        void *p = realloc(NULL, rsizes[i]);
        check_block("realloc(NULL)", p, rsizes[i], 0);
        free(p);
        p = lite_realloc(NULL, rsizes[i]);
        check_block("lite_realloc(NULL)", p, rsizes[i], 0);
        lite_free(p);
    }
    /* every pair of sizes: contents preserved up to the smaller size (pairs with 64 MiB only
     * against a few representatives: page faults are slow on a VM) */
    for (size_t a = 0; a < NRS; a++) {
        for (size_t b = 0; b < NRS; b++) {
            size_t na = rsizes[a], nb = rsizes[b];
            if ((na == 64 << 20 || nb == 64 << 20) && a + b != 2 * (NRS - 1)) {
                size_t other = na == 64 << 20 ? nb : na;
                if (other != 100 && other != 8193 && other != 131073 && other != (1 << 20) &&
                    other != (4 << 20))
                    continue;
            }
            uint64_t seed = na * 31 + nb;
            char *p = malloc(na);
            CHECK(p != NULL, "malloc(%zu)", na);
            fill_sparse(p, 0, na, seed);
            char *q = ((a + b) & 1) ? lite_realloc(p, nb) : realloc(p, nb);
            if (nb == 0 && q == NULL) continue; /* glibc: realloc(p, 0) frees p */
            CHECK(q != NULL, "realloc(%zu -> %zu) returned NULL", na, nb);
            CHECK(is_aligned(q, required_align(nb)), "realloc(%zu -> %zu) = %p misaligned", na, nb, q);
            CHECK(malloc_usable_size(q) >= nb, "realloc(%zu -> %zu): usable %zu", na, nb,
                  malloc_usable_size(q));
            size_t keep = na < nb ? na : nb;
            size_t bad = check_sparse(q, 0, keep, seed);
            CHECK(bad == (size_t)-1, "realloc(%zu -> %zu) lost content at byte %zu", na, nb, bad);
            CHECK(lite_owns(q) == 1, "realloc(%zu -> %zu): result not owned", na, nb);
            /* the new part is writable */
            fill_sparse(q, keep, malloc_usable_size(q), seed);
            free(q);
        }
    }
    /* growth chain through every class, then shrink back */
    uint64_t seed = 0x1234567;
    char *p = NULL;
    size_t cur = 0;
    for (int dir = 0; dir < 2; dir++) {
        for (size_t k = 0; k < NRS; k++) {
            size_t n = dir == 0 ? rsizes[k] : rsizes[NRS - 1 - k];
            char *q = realloc(p, n);
            if (n == 0 && q == NULL) { p = NULL; cur = 0; continue; } /* realloc(p, 0) freed p */
            CHECK(q != NULL, "realloc chain %zu -> %zu", cur, n);
            size_t keep = cur < n ? cur : n;
            size_t bad = check_sparse(q, 0, keep, seed);
            CHECK(bad == (size_t)-1, "realloc chain %zu -> %zu lost byte %zu", cur, n, bad);
            fill_sparse(q, keep, n, seed);
            p = q;
            cur = n;
        }
    }
    free(p);

    /* small step growth (typical string builder): 1 byte at a time up to 20 KiB, then by 4 KiB
     * up to 300 KiB, verifying the whole content each time it is cheap. */
    p = NULL;
    cur = 0;
    for (size_t n = 1; n <= 300 * KiB; n += n < 20 * KiB ? 1 : 4 * KiB) {
        char *q = realloc(p, n);
        CHECK(q != NULL, "realloc step %zu", n);
        if (n < 20 * KiB ? (n % 97 == 0) : 1) {
            size_t bad = check_pattern(q, cur, seed);
            CHECK(bad == (size_t)-1, "step realloc to %zu lost byte %zu", n, bad);
        }
        fill_pattern_range(q, cur, n, seed);
        p = q;
        cur = n;
    }
    CHECK(check_pattern(p, cur, seed) == (size_t)-1, "step realloc final content lost");
    free(p);

    /* reallocarray */
    int *a = reallocarray(NULL, 10, sizeof(int));
    CHECK(a != NULL && malloc_usable_size(a) >= 40, "reallocarray(NULL, 10, 4)");
    for (int i = 0; i < 10; i++) a[i] = i * 3;
    int *b = reallocarray(a, 100000, sizeof(int));
    CHECK(b != NULL && malloc_usable_size(b) >= 400000, "reallocarray(a, 100000, 4)");
    CHECK(lite_owns(b) == 1, "reallocarray result not owned by lite-malloc");
    for (int i = 0; i < 10; i++) CHECK(b[i] == i * 3, "reallocarray lost element %d", i);
    errno = 0;
    volatile size_t half = SIZE_MAX / 2;
    int *c = reallocarray(b, half, 4);
    CHECK(c == NULL && errno == ENOMEM, "reallocarray overflow: %p errno %d", (void *)c, errno);
    for (int i = 0; i < 10; i++) CHECK(b[i] == i * 3, "failed reallocarray changed element %d", i);
    free(b);
}

/* ------------------------------------------------------------------ aligned allocation */
static void test_posix_memalign(void)
{
    static const size_t bad_align[] = {0, 1, 2, 3, 4, 6, 12, 24, 40, 48, 96, 100, 4097, 65535,
                                       (1 << 20) + 8, SIZE_MAX, SIZE_MAX / 2};
    for (size_t i = 0; i < sizeof bad_align / sizeof bad_align[0]; i++) {
        void *out = (void *)0x4321;
        int rc = posix_memalign(&out, bad_align[i], 64);
        CHECK(rc == EINVAL, "posix_memalign(align %zu) returned %d, want EINVAL", bad_align[i], rc);
        CHECK(out == (void *)0x4321, "posix_memalign(align %zu) changed *out on EINVAL", bad_align[i]);
        out = (void *)0x4321;
        rc = lite_posix_memalign(&out, bad_align[i], 64);
        CHECK(rc == EINVAL && out == (void *)0x4321, "lite_posix_memalign(align %zu): %d %p",
              bad_align[i], rc, out);
    }
    /* alignment 2^63 is valid but cannot be served */
    void *out = (void *)0x4321;
    int rc = posix_memalign(&out, (size_t)1 << 63, 1);
    CHECK(rc == ENOMEM && out == (void *)0x4321, "posix_memalign(2^63, 1): %d %p", rc, out);

    for (int shift = 3; shift <= 30; shift++) {
        size_t al = (size_t)1 << shift;
        static const size_t sz[] = {0, 1, 8, 16, 100, 4096, 10000, 200000};
        for (size_t k = 0; k < sizeof sz / sizeof sz[0]; k++) {
            if (shift >= 24 && sz[k] > 100) continue; /* keep the address space use modest */
            void *p = NULL;
            rc = (k & 1) ? lite_posix_memalign(&p, al, sz[k]) : posix_memalign(&p, al, sz[k]);
            CHECK(rc == 0, "posix_memalign(%zu, %zu) returned %d", al, sz[k], rc);
            check_block("posix_memalign", p, sz[k], al);
            free(p);
        }
    }
}

static void test_aligned_alloc_memalign(void)
{
    static const size_t bad_align[] = {0, 3, 5, 6, 12, 24, 48, 96, 100, 1000, 4097, (1 << 20) + 8,
                                       SIZE_MAX};
    for (size_t i = 0; i < sizeof bad_align / sizeof bad_align[0]; i++) {
        errno = 0;
        void *p = aligned_alloc(bad_align[i], 64);
        CHECK(p == NULL, "aligned_alloc(align %zu) succeeded", bad_align[i]);
        CHECK(errno == EINVAL, "aligned_alloc(align %zu): errno %d, want EINVAL", bad_align[i], errno);
        errno = 0;
        p = lite_aligned_alloc(bad_align[i], 64);
        CHECK(p == NULL && errno == EINVAL, "lite_aligned_alloc(align %zu): %p errno %d",
              bad_align[i], p, errno);
    }
    errno = 0;
    void *p0 = aligned_alloc((size_t)1 << 63, 1);
    CHECK(p0 == NULL && errno == ENOMEM, "aligned_alloc(2^63, 1): %p errno %d", p0, errno);

    for (int shift = 0; shift <= 30; shift++) {
        size_t al = (size_t)1 << shift;
        static const size_t sz[] = {0, 1, 7, 16, 100, 4096, 10000, 200000};
        for (size_t k = 0; k < sizeof sz / sizeof sz[0]; k++) {
            if (shift >= 24 && sz[k] > 100) continue;
            void *p = (k & 1) ? lite_aligned_alloc(al, sz[k]) : aligned_alloc(al, sz[k]);
            check_block("aligned_alloc", p, sz[k], al);
            free(p);
            p = memalign(al, sz[k]);
            check_block("memalign", p, sz[k], al);
            free(p);
        }
    }
    /* glibc's memalign rounds a non-power-of-two alignment up */
    static const size_t odd[][2] = {{3, 4}, {24, 32}, {48, 64}, {100, 128}, {3000, 4096},
                                    {4097, 8192}, {100000, 131072}, {(1 << 20) + 8, 2 << 20}};
    for (size_t i = 0; i < sizeof odd / sizeof odd[0]; i++) {
        for (size_t n = 1; n <= 100001; n += 50000) {
            void *p = memalign(odd[i][0], n);
            check_block("memalign(odd alignment)", p, n, odd[i][1]);
            free(p);
        }
    }
    void *p = memalign(0, 10);
    check_block("memalign(0, ...)", p, 10, 1);
    free(p);
}

static void test_valloc_pvalloc(void)
{
    const size_t page = (size_t)sysconf(_SC_PAGESIZE);
    static const size_t sz[] = {0, 1, 100, 4095, 4096, 4097, 10000, 100000, 200000, 1 << 20};
    for (size_t k = 0; k < sizeof sz / sizeof sz[0]; k++) {
        void *p = valloc(sz[k]);
        check_block("valloc", p, sz[k], page);
        free(p);
        size_t rounded = sz[k] == 0 ? page : (sz[k] + page - 1) / page * page;
        p = pvalloc(sz[k]);
        check_block("pvalloc", p, rounded, page);
        CHECK(malloc_usable_size(p) >= rounded, "pvalloc(%zu): usable %zu < %zu", sz[k],
              malloc_usable_size(p), rounded);
        free(p);
    }
}

/* ------------------------------------------------------------------ trim */
static void test_trim(void)
{
    int r = malloc_trim(0);
    CHECK(r == 0 || r == 1, "malloc_trim(0) returned %d", r);
    enum { N = 20000 };
    static void *ptrs[N];
    for (int i = 0; i < N; i++) {
        ptrs[i] = malloc(i % 14 == 0 ? 60000 : 1000);
        CHECK(ptrs[i] != NULL, "malloc");
        memset(ptrs[i], 1, 1000);
    }
    r = malloc_trim(0); /* with live blocks */
    CHECK(r == 0 || r == 1, "malloc_trim(0) returned %d", r);
    for (int i = 0; i < N; i++)
        CHECK(((unsigned char *)ptrs[i])[999] == 1, "block %d damaged by malloc_trim", i);
    for (int i = 0; i < N; i += 2) free(ptrs[i]);
    /* 10000 blocks freed, among them 715 medium runs of 60000 bytes: their pages are kept
     * (cached) until decay or a trim gives them back, which it says by returning 1 */
    struct lite_malloc_stats before = get_stats();
    r = malloc_trim(0);
    struct lite_malloc_stats after = get_stats();
    note("malloc_trim(0) with half the blocks freed: returned %d, cached %zu -> %zu, released %zu -> %zu",
         r, before.bytes_cached, after.bytes_cached, before.bytes_released, after.bytes_released);
    CHECK(before.bytes_cached >= 715 * 58 * KiB, "only %zu bytes cached after freeing 715 medium "
          "blocks of 60000 bytes", before.bytes_cached);
    CHECK(r == 1, "malloc_trim(0) returned %d with %zu bytes cached", r, before.bytes_cached);
    CHECK(after.bytes_cached == 0, "%zu bytes still cached after malloc_trim(0)", after.bytes_cached);
    CHECK(after.bytes_released >= before.bytes_released + before.bytes_cached,
          "bytes_released %zu -> %zu: the %zu cached bytes were not given back", before.bytes_released,
          after.bytes_released, before.bytes_cached);
    /* nothing is left to give back */
    r = malloc_trim(1 << 20);
    CHECK(r == 0, "malloc_trim(1M) right after malloc_trim(0) returned %d", r);
    r = lite_trim(0);
    CHECK(r == 0, "lite_trim(0) right after malloc_trim(0) returned %d", r);
    for (int i = 1; i < N; i += 2) {
        CHECK(((unsigned char *)ptrs[i])[0] == 1 && ((unsigned char *)ptrs[i])[999] == 1,
              "block %d damaged by trim", i);
        free(ptrs[i]);
    }
    r = lite_trim(0);
    CHECK(r == 1 && get_stats().bytes_cached == 0, "lite_trim(0) returned %d after the other half "
          "was freed; %zu bytes still cached", r, get_stats().bytes_cached);
    /* the heap works after trimming */
    for (int i = 0; i < N; i++) {
        ptrs[i] = malloc(i % 14 == 0 ? 60000 : 1000);
        CHECK(ptrs[i] != NULL, "malloc after trim");
        fill_pattern(ptrs[i], 1000, i);
    }
    for (int i = 0; i < N; i++) {
        CHECK(check_pattern(ptrs[i], 1000, i) == (size_t)-1, "block %d corrupted after trim", i);
        free(ptrs[i]);
    }
}

/* ------------------------------------------------------------------ prefixed API */
static int static_var;
static void *thread_alloc(void *arg)
{
    (void)arg;
    void *p = malloc(100);
    CHECK(p != NULL, "malloc in thread");
    return p;
}

static void test_prefixed(void)
{
    int stack_var = 0;
    static const char literal[] = "hello";
    CHECK(lite_owns(NULL) == 0, "lite_owns(NULL) != 0");
    CHECK(lite_owns(&stack_var) == 0, "lite_owns(stack) != 0");
    CHECK(lite_owns(&static_var) == 0, "lite_owns(static) != 0");
    CHECK(lite_owns(literal) == 0, "lite_owns(rodata) != 0");
    CHECK(lite_owns((const void *)(uintptr_t)&test_prefixed) == 0, "lite_owns(code) != 0");
    CHECK(lite_owns((void *)(uintptr_t)16) == 0, "lite_owns(16) != 0");
    CHECK(lite_owns((void *)(uintptr_t)-16) == 0, "lite_owns(-16) != 0");
    char *m = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(m != MAP_FAILED, "mmap");
    CHECK(lite_owns(m) == 0 && lite_owns(m + 4096 + 16) == 0, "lite_owns(foreign mmap) != 0");
    munmap(m, 1 << 20);
    void *g = __libc_malloc(100);
    CHECK(g != NULL, "__libc_malloc");
    CHECK(lite_owns(g) == 0, "lite_owns(glibc's own malloc block %p) != 0", g);
    __libc_free(g);

    /* each lite_* function, and interchangeability with the plain names */
    for (size_t n = 0; n <= 300000; n = n ? n * 3 : 1) {
        void *p = lite_malloc(n);
        check_block("lite_malloc", p, n, 0);
        free(p);
        p = malloc(n);
        check_block("malloc", p, n, 0);
        lite_free(p);
        p = lite_calloc(n, 1);
        check_block("lite_calloc", p, n, 0);
        p = lite_realloc(p, n + 5000);
        check_block("lite_realloc", p, n + 5000, 0);
        lite_free(p);
        p = lite_aligned_alloc(256, n);
        check_block("lite_aligned_alloc", p, n, 256);
        lite_free(p);
        p = NULL;
        CHECK(lite_posix_memalign(&p, 8192, n) == 0, "lite_posix_memalign(8192, %zu)", n);
        check_block("lite_posix_memalign", p, n, 8192);
        free(p);
    }
    int t = lite_trim(0);
    CHECK(t == 0 || t == 1, "lite_trim returned %d", t);

    /* stats */
    struct lite_malloc_stats s0 = get_stats();
    CHECK(s0.bytes_mapped >= s0.bytes_in_use, "bytes_mapped %zu < bytes_in_use %zu",
          s0.bytes_mapped, s0.bytes_in_use);
    CHECK(s0.threads >= 1, "stats.threads = %zu after allocating", s0.threads);
    CHECK(s0.superblocks >= 1, "stats.superblocks = %zu after allocating", s0.superblocks);
    enum { NS = 2000, NM = 100, NL = 10 };
    static void *sm[NS], *md[NM], *lg[NL];
    size_t sum = 0, large_sum = 0;
    for (int i = 0; i < NS; i++) {
        size_t n = 16 + (size_t)(i % 50) * 40;
        sm[i] = malloc(n);
        CHECK(sm[i] != NULL, "malloc");
        memset(sm[i], 1, n);
        sum += n;
    }
    for (int i = 0; i < NM; i++) {
        size_t n = 10000 + (size_t)i * 1000;
        md[i] = malloc(n);
        CHECK(md[i] != NULL, "malloc");
        memset(md[i], 1, n);
        sum += n;
    }
    for (int i = 0; i < NL; i++) {
        size_t n = 200000 + (size_t)i * 100000;
        lg[i] = malloc(n);
        CHECK(lg[i] != NULL, "malloc");
        memset(lg[i], 1, n);
        sum += n;
        if (n > 127 * 4096) large_sum += n;  /* (up to 127 pages: a medium block) */
    }
    void *big = malloc(64 * MiB);
    CHECK(big != NULL, "malloc(64 MiB)");
    memset(big, 1, 1 << 20);
    sum += 64 * MiB;
    large_sum += 64 * MiB;
    struct lite_malloc_stats s1 = get_stats();
    note("stats: in_use %zu -> %zu (allocated %zu), mapped %zu -> %zu, large %zu -> %zu",
         s0.bytes_in_use, s1.bytes_in_use, sum, s0.bytes_mapped, s1.bytes_mapped,
         s0.large_in_use, s1.large_in_use);
    CHECK(s1.bytes_in_use >= s0.bytes_in_use + sum,
          "bytes_in_use grew by %zd, less than the %zu bytes allocated",
          (ssize_t)(s1.bytes_in_use - s0.bytes_in_use), sum);
    CHECK(s1.bytes_mapped >= s1.bytes_in_use, "bytes_mapped %zu < bytes_in_use %zu",
          s1.bytes_mapped, s1.bytes_in_use);
    CHECK(s1.large_in_use >= s0.large_in_use + large_sum,
          "large_in_use grew by %zd, less than the %zu bytes of large blocks",
          (ssize_t)(s1.large_in_use - s0.large_in_use), large_sum);
    CHECK(s1.large_in_use <= s1.bytes_in_use, "large_in_use > bytes_in_use");
    for (int i = 0; i < NS; i++) free(sm[i]);
    for (int i = 0; i < NM; i++) free(md[i]);
    for (int i = 0; i < NL; i++) free(lg[i]);
    free(big);
    struct lite_malloc_stats s2 = get_stats();
    note("stats after free: in_use %zu, mapped %zu, cached %zu, released %zu, large %zu",
         s2.bytes_in_use, s2.bytes_mapped, s2.bytes_cached, s2.bytes_released, s2.large_in_use);
    CHECK(s2.bytes_in_use <= s0.bytes_in_use + sum / 100,
          "bytes_in_use did not drop back after freeing: before %zu, after free %zu",
          s0.bytes_in_use, s2.bytes_in_use);
    CHECK(s2.large_in_use <= s0.large_in_use, "large_in_use did not drop back: %zu -> %zu",
          s0.large_in_use, s2.large_in_use);
    CHECK(s2.bytes_mapped >= s2.bytes_in_use, "bytes_mapped < bytes_in_use after free");

    /* a new thread that allocates gets a heap of its own */
    pthread_t th;
    CHECK(pthread_create(&th, NULL, thread_alloc, NULL) == 0, "pthread_create");
    void *tp;
    pthread_join(th, &tp);
    struct lite_malloc_stats s3 = get_stats();
    CHECK(s3.threads >= s2.threads + 1, "stats.threads did not grow after a new thread allocated: "
          "%zu -> %zu", s2.threads, s3.threads);
    CHECK(lite_owns(tp) == 1, "block of an exited thread not owned");
    free(tp);
}

#include <time.h>
static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}
#define RUN(f) do { double t0_ = now(); f(); note("%-30s ok (%.2fs)", #f, now() - t0_); } while (0)

int main(void)
{
    watchdog(200);
    RUN(test_malloc0);
    RUN(test_basic_sizes);
    RUN(test_huge);
    RUN(test_calloc);
    RUN(test_realloc);
    RUN(test_posix_memalign);
    RUN(test_aligned_alloc_memalign);
    RUN(test_valloc_pvalloc);
    RUN(test_trim);
    RUN(test_prefixed);
    note("api: all checks passed");
    return 0;
}
