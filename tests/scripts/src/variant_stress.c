/*
 * Stress and configuration probe for config_variants.sh, linked with liblite-malloc-shared.so.
 *
 *   variant_stress --lib PATH [--align A] [--small-max S] [--medium-pages N] [--dense8]
 *
 *   --lib PATH         the liblite-malloc-shared.so this process must have mapped (the variant)
 *   --align A          every block of >= A bytes must be A-aligned (16, or 8 for MIN_ALIGN=8)
 *   --small-max S      the small/medium boundary (MINIBLOCK_CACHE_SIZE * 8): a request of S
 *                      bytes is a small block (tight size class), S+1 a page-granular span
 *   --medium-pages N   the medium/large boundary (SUPERBLOCK_CACHE_SIZE pages): a request of
 *                      N-1 pages does not raise lite_stats().large_in_use, N+1 pages does
 *   --dense8           MIN_ALIGN=8: 24-byte blocks are packed 8 bytes apart, so some of them
 *                      are not 16-aligned (proves the define reached the build)
 * Then 4 threads do random malloc/calloc/realloc/aligned/free with patterns verified before
 * every realloc and free, blocks handed between threads, every block checked with lite_owns();
 * after everything is freed lite_stats().bytes_in_use must be back near its start.
 */
#define _GNU_SOURCE
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lite-malloc.h"

#include "soft_check.h"

static size_t opt_align = 16;

static void fill(unsigned char *p, size_t n, unsigned seed) {
    for (size_t i = 0; i < n; i++) p[i] = (unsigned char)(seed * 31 + i);
}
static int verify(const unsigned char *p, size_t n, unsigned seed) {
    for (size_t i = 0; i < n; i++)
        if (p[i] != (unsigned char)(seed * 31 + i)) return 0;
    return 1;
}

enum { NT = 4, SLOTS = 512, XSLOTS = 64, OPS = 80000 };
static pthread_mutex_t xmu = PTHREAD_MUTEX_INITIALIZER;
static unsigned char *xptr[XSLOTS];
static size_t xlen[XSLOTS];
static unsigned xseed[XSLOTS];

struct targ { unsigned seed; int bad; };

static size_t pick_size(unsigned x) {
    switch (x % 400) {
    case 0: return 1 + (x >> 8) % (1u << 20);                   /* large */
    case 1: case 2: case 3: case 4: case 5: case 6: case 7: case 8:
        return 1 + (x >> 8) % 150000;                           /* medium */
    default: return 1 + (x >> 8) % 1100;                        /* small */
    }
}

static int block_ok(const unsigned char *p, size_t n) {
    if (lite_owns(p) != 1) return 0;
    if (n >= opt_align && ((uintptr_t)p & (opt_align - 1))) return 0;
    return lite_usable_size(p) >= n;
}

static void *worker(void *ap) {
    struct targ *a = ap;
    unsigned x = a->seed | 1;
    unsigned char *p[SLOTS] = {0};
    size_t len[SLOTS] = {0};
    unsigned seed[SLOTS] = {0};
    for (int op = 0; op < OPS; op++) {
        x ^= x << 13; x ^= x >> 17; x ^= x << 5;
        int i = (int)(x % SLOTS);
        unsigned r = x >> 9;
        if (!p[i]) {
            size_t n = pick_size(x * 2654435761u);
            switch (r % 4) {
            case 0: p[i] = calloc(1, n); break;
            case 1: {
                size_t al = (size_t)64 << (r / 4 % 7); /* 64 .. 4096 */
                p[i] = aligned_alloc(al, (n + al - 1) / al * al);
                if (p[i] && ((uintptr_t)p[i] & (al - 1))) a->bad++;
                break;
            }
            default: p[i] = malloc(n);
            }
            if (!p[i]) { a->bad++; continue; }
            if (r % 4 == 0) {
                size_t step = n / 97 + 1;
                for (size_t k = 0; k < n; k += step)
                    if (p[i][k]) { a->bad++; break; }
            }
            if (!block_ok(p[i], n)) a->bad++;
            len[i] = n, seed[i] = r;
            fill(p[i], n, seed[i]);
        } else {
            if (!verify(p[i], len[i], seed[i])) a->bad++;
            if (r % 5 == 0) {
                size_t n = pick_size(r * 2246822519u);
                unsigned char *q = realloc(p[i], n);
                if (!q) { a->bad++; continue; }
                size_t keep = n < len[i] ? n : len[i];
                if (!verify(q, keep, seed[i]) || !block_ok(q, n)) a->bad++;
                p[i] = q, len[i] = n;
                fill(q, n, seed[i]);
            } else if (r % 5 == 1) { /* swap with the exchange table */
                int j = (int)(r / 5 % XSLOTS);
                pthread_mutex_lock(&xmu);
                unsigned char *op_ = xptr[j];
                size_t ol = xlen[j];
                unsigned os = xseed[j];
                xptr[j] = p[i], xlen[j] = len[i], xseed[j] = seed[i];
                pthread_mutex_unlock(&xmu);
                p[i] = op_, len[i] = ol, seed[i] = os;
                if (p[i] && !verify(p[i], len[i], seed[i])) a->bad++;
            } else {
                free(p[i]);
                p[i] = NULL;
            }
        }
    }
    for (int i = 0; i < SLOTS; i++) {
        if (p[i] && !verify(p[i], len[i], seed[i])) a->bad++;
        free(p[i]);
    }
    return NULL;
}

static int maps_contain(const char *path) {
    FILE *f = fopen("/proc/self/maps", "r");
    if (!f) return 0;
    char line[4096];
    int found = 0;
    while (fgets(line, sizeof line, f))
        if (strstr(line, path)) found = 1;
    fclose(f);
    return found;
}

int main(int argc, char **argv) {
    const char *lib = NULL;
    size_t small_max = 0, medium_pages = 0;
    int dense8 = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--lib") && i + 1 < argc) lib = argv[++i];
        else if (!strcmp(argv[i], "--align") && i + 1 < argc) opt_align = strtoul(argv[++i], 0, 0);
        else if (!strcmp(argv[i], "--small-max") && i + 1 < argc) small_max = strtoul(argv[++i], 0, 0);
        else if (!strcmp(argv[i], "--medium-pages") && i + 1 < argc) medium_pages = strtoul(argv[++i], 0, 0);
        else if (!strcmp(argv[i], "--dense8")) dense8 = 1;
        else { fprintf(stderr, "bad argument %s\n", argv[i]); return 2; }
    }
    if (!lib) { fprintf(stderr, "--lib is required\n"); return 2; }
    CHECK(maps_contain(lib), "%s is not mapped into this process", lib);

    struct lite_malloc_stats s0, s1;
    lite_stats(&s0);

    if (small_max) {
        void *a = malloc(small_max), *b = malloc(small_max + 1);
        size_t ua = malloc_usable_size(a), ub = malloc_usable_size(b);
        printf("usable(%zu) = %zu, usable(%zu) = %zu\n", small_max, ua, small_max + 1, ub);
        CHECK(lite_owns(a) && lite_owns(b), "boundary blocks not lite-malloc's");
        CHECK(ua >= small_max && ua <= small_max + small_max / 8,
              "a %zu-byte request should be a small block with a tight size class (usable %zu)",
              small_max, ua);
        CHECK(ub > small_max && ub % 4096 == 0,
              "a %zu-byte request should be a page-granular span (usable %zu)", small_max + 1, ub);
        free(a);
        free(b);
    }
    if (medium_pages) {
        struct lite_malloc_stats a0, a1, a2;
        lite_stats(&a0);
        void *m = malloc((medium_pages - 1) * 4096);
        CHECK(lite_owns(m) == 1, "medium block not lite-malloc's"); /* (also keeps the call) */
        lite_stats(&a1);
        void *l = malloc((medium_pages + 1) * 4096);
        CHECK(lite_owns(l) == 1, "large block not lite-malloc's");
        lite_stats(&a2);
        printf("large_in_use: %zu -> %zu (medium %zu pages) -> %zu (large %zu pages)\n",
               a0.large_in_use, a1.large_in_use, medium_pages - 1, a2.large_in_use, medium_pages + 1);
        CHECK(a1.large_in_use == a0.large_in_use,
              "a %zu-page request went to a direct mapping (medium limit should be %zu pages)",
              medium_pages - 1, medium_pages);
        CHECK(a2.large_in_use >= a1.large_in_use + (medium_pages + 1) * 4096,
              "a %zu-page request did not go to a direct mapping (medium limit should be %zu pages)",
              medium_pages + 1, medium_pages);
        free(m);
        free(l);
    }
    if (dense8) {
        enum { N = 1000 };
        void *b[N];
        int not16 = 0;
        for (int i = 0; i < N; i++) {
            b[i] = malloc(24);
            CHECK(((uintptr_t)b[i] & 7) == 0, "malloc(24) = %p not 8-aligned", b[i]);
            not16 += ((uintptr_t)b[i] & 15) != 0;
        }
        printf("MIN_ALIGN=8: %d of %d 24-byte blocks are not 16-aligned\n", not16, N);
        CHECK(not16 > N / 4, "24-byte blocks are not packed 8 bytes apart (%d of %d off 16)", not16, N);
        for (int i = 0; i < N; i++) free(b[i]);
    }

    pthread_t th[NT];
    struct targ args[NT];
    for (int t = 0; t < NT; t++) {
        args[t] = (struct targ){.seed = 0x51ed270bu * (unsigned)(t + 3)};
        CHECK(pthread_create(&th[t], NULL, worker, &args[t]) == 0, "pthread_create failed");
    }
    int bad = 0;
    for (int t = 0; t < NT; t++) {
        pthread_join(th[t], NULL);
        bad += args[t].bad;
    }
    for (int j = 0; j < XSLOTS; j++) {
        if (xptr[j] && (!verify(xptr[j], xlen[j], xseed[j]) || lite_owns(xptr[j]) != 1)) bad++;
        free(xptr[j]);
    }
    CHECK(bad == 0, "%d bad blocks (corrupted, misaligned, foreign, or failed) in the stress", bad);
    lite_stats(&s1);
    printf("stats after: mapped=%zu in_use=%zu (start %zu) cached=%zu superblocks=%zu threads=%zu\n",
           s1.bytes_mapped, s1.bytes_in_use, s0.bytes_in_use, s1.bytes_cached, s1.superblocks,
           s1.threads);
    CHECK(s1.bytes_in_use <= s0.bytes_in_use + (1u << 20),
          "bytes_in_use %zu after freeing everything (was %zu at start)", s1.bytes_in_use,
          s0.bytes_in_use);
    CHECK(s1.threads >= NT, "only %zu heaps for %d threads", s1.threads, NT);
    if (failures) {
        fprintf(stderr, "variant_stress: %d checks FAILED\n", failures);
        return 1;
    }
    printf("variant_stress: passed\n");
    return 0;
}
