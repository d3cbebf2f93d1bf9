/*
 * Stress and configuration probe for config_variants.sh, linked with liblite-malloc-shared.so.
 *
 *   variant_stress --lib PATH [--align A] [--small-max S] [--medium-pages N] [--dense8]
 *                  [--links plain|encoded] [--retain-mib R] [--engines-probe A,B]
 *
 *   --lib PATH         the liblite-malloc-shared.so this process must have mapped (the variant)
 *   --align A          every block of >= A bytes must be A-aligned (16, or 8 for MIN_ALIGN=8)
 *   --small-max S      the small/medium boundary (MINIBLOCK_CACHE_SIZE * 8): a request of S
 *                      bytes is a small block (tight size class), S+1 a page-granular run
 *   --medium-pages N   the medium/large boundary (SUPERBLOCK_CACHE_SIZE pages): a request of
 *                      N-1 pages does not raise lite_stats().large_in_use, N+1 pages does
 *   --dense8           MIN_ALIGN=8: 24-byte blocks are packed 8 bytes apart, so some of them
 *                      are not 16-aligned (proves the define reached the build)
 *   --links plain|encoded  ENCODE_LINKS: after free(a) then free(b) (same size, same thread),
 *                      b's first word is its free-list link to a: equal to a's address when
 *                      links are plain (ENCODE_LINKS=0), anything else when they are encoded
 *   --retain-mib R     the retain limit in force (RETAIN_MB, or the environment variable):
 *                      96 MiB of small blocks allocated and freed by one thread leave
 *                      lite_stats().bytes_cached under the limit: 0 for 0, R/4..R MiB for a
 *                      positive R below 96, at least 90 MiB for -1 (keep everything)
 *   --engines-probe A,B  ENGINES_COUNT and USE_PERTHREAD_ENGINES, seen from which listed
 *                      superblock a heap adopts (see engines_probe).  Run first, before any
 *                      other thread (heap i of the process is made by the i-th thread to
 *                      allocate and uses engine i % ENGINES_COUNT).
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
#include <sys/mman.h>
#include <sys/wait.h>

#include "lite-malloc.h"

#define CHECK_KEEP_GOING 1
#include "../../harness.h"

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

/* ---- --links ---- */
/* The word at an address (a freed block's: the compiler is not to know it is one). */
__attribute__((noinline)) static uintptr_t peek(uintptr_t addr) {
    uintptr_t w;
    memcpy(&w, (const void *)addr, sizeof w);
    return w;
}

static void links_probe(const char *want) {
    enum { N = 64 };
    void *v[N];
    for (int i = 0; i < N; i++) v[i] = malloc(48); /* a run of fresh blocks of one class */
    uintptr_t a = (uintptr_t)v[N - 2], b = (uintptr_t)v[N - 1];
    free(v[N - 2]);
    free(v[N - 1]); /* b's link now points at a */
    uintptr_t word = peek(b); /* reading a freed block: that is the probe */
    int plain = word == a;
    printf("links: freed block %#lx holds %#lx; the block freed before it is %#lx: %s\n",
           (unsigned long)b, (unsigned long)word, (unsigned long)a, plain ? "plain" : "encoded");
    CHECK(plain == !strcmp(want, "plain"), "free-list links are %s, expected %s",
          plain ? "plain" : "encoded", want);
    for (int i = 0; i < N - 2; i++) free(v[i]);
}

/* ---- --retain-mib ---- */
static void retain_probe(long retain_mib) {
    enum { BLOCK = 1008 };
    size_t n = (96u << 20) / BLOCK;
    /* The limit in force is the option's or, if less, the program's peak footprint (at
     * least 64 MiB): a footprint of 360 MiB first, in runs of slots never touched, so
     * that the option decides for every limit up to 180 MiB (and beyond, up to 360). */
    void *run[12];
    for (int i = 0; i < 12; i++) CHECK((run[i] = malloc(30u << 20)) != NULL, "malloc(30 MiB)");
    for (int i = 0; i < 12; i++) free(run[i]);
    lite_trim(0); /* nothing cached before: what is cached after is what the limit kept */
    char json[8192];
    lite_stats_json(json, sizeof json);
    const char *at = strstr(json, "\"retain_limit\":");
    long in_force = at ? atol(at + strlen("\"retain_limit\":")) : -2;
    long want = retain_mib < 0 ? -1 : retain_mib <= 180 ? retain_mib << 20 : -3;
    CHECK(in_force == want || (want == -3 && in_force >= (180l << 20) && in_force <= retain_mib << 20),
          "retain limit %ld MiB after a 360 MiB footprint: %ld bytes in force", retain_mib, in_force);
    void **v = mmap(NULL, n * sizeof *v, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(v != MAP_FAILED, "mmap");
    if (v == MAP_FAILED) return;
    for (size_t i = 0; i < n; i++) v[i] = malloc(BLOCK);
    struct lite_malloc_stats before, after;
    lite_stats(&before);
    for (size_t i = 0; i < n; i++) free(v[i]);
    lite_stats(&after);
    munmap(v, n * sizeof *v);
    size_t cached = after.bytes_cached - before.bytes_cached;
    printf("retain limit %ld MiB: 96 MiB freed, %.1f MiB cached (%.1f MiB before, %.1f after)\n", retain_mib,
           (double)cached / (1 << 20), (double)before.bytes_cached / (1 << 20), (double)after.bytes_cached / (1 << 20));
    if (retain_mib < 0)
        CHECK(cached >= (90u << 20), "retain limit -1 (keep all): only %zu bytes cached", cached);
    else if (retain_mib == 0)
        CHECK(cached == 0, "retain limit 0: %zu bytes cached", cached);
    else if (retain_mib >= 96 && getenv("LITE_MALLOC_DECAY_MS") && atol(getenv("LITE_MALLOC_DECAY_MS")) >= 60000)
        /* under the limit, and decay an hour away: what was freed stays cached.  The whole
         * cache is checked, not its growth: memory cached beside the probe's (another
         * engine's, given back after the trim above) can take the total past the limit,
         * which then purges down to three quarters of it, 96 MiB at 128 (seen once). */
        CHECK(after.bytes_cached >= (90u << 20) && after.bytes_cached <= (size_t)retain_mib << 20,
              "retain limit %ld MiB, decay delay %s ms: %zu bytes cached after 96 MiB were freed", retain_mib,
              getenv("LITE_MALLOC_DECAY_MS"), (size_t)after.bytes_cached);
    else  /* an upper bound: past it, down to three quarters (decay may take more) */
        CHECK(cached >= ((size_t)retain_mib << 20) / 4 && cached <= (size_t)retain_mib << 20,
              "retain limit %ld MiB: %zu bytes cached", retain_mib, cached);
}

/* ---- --engines-probe ---- */
#define PROBE_SB ((uintptr_t)512 << 10) /* the superblock size */
static uintptr_t sb_of(const void *p) { return ((uintptr_t)p - 1) & ~(PROBE_SB - 1); }

struct probe_thread {
    size_t size;
    uintptr_t sb;
    void *keep[10];               /* left live: the superblock is listed, not emptied, at exit */
    pthread_barrier_t have, go;   /* after allocating; before exiting */
};

/* Allocate ten blocks of a class of its own and keep them; tell the main thread, and exit
 * (letting go of that superblock, which has room: it is listed for adoption in the engine
 * of this thread's heap) only when it says so. */
static void *probe_thread(void *arg) {
    struct probe_thread *t = arg;
    for (int i = 0; i < 10; i++) t->keep[i] = malloc(t->size);
    t->sb = sb_of(t->keep[0]);
    pthread_barrier_wait(&t->have);
    pthread_barrier_wait(&t->go);
    return NULL;
}

/* Two threads on heaps of their own, alive at once; the first exits first. */
static void probe_pair(struct probe_thread *x, struct probe_thread *y) {
    pthread_t hx, hy;
    pthread_barrier_init(&x->have, NULL, 2);
    pthread_barrier_init(&x->go, NULL, 2);
    pthread_barrier_init(&y->have, NULL, 2);
    pthread_barrier_init(&y->go, NULL, 2);
    CHECK(pthread_create(&hx, NULL, probe_thread, x) == 0, "pthread_create");
    pthread_barrier_wait(&x->have);
    CHECK(pthread_create(&hy, NULL, probe_thread, y) == 0, "pthread_create");
    pthread_barrier_wait(&y->have);
    pthread_barrier_wait(&x->go);
    pthread_join(hx, NULL); /* x's superblock listed */
    pthread_barrier_wait(&y->go);
    pthread_join(hy, NULL); /* then y's */
}

static void *adopt_thread(void *arg) {
    uintptr_t *got = arg;
    *got = sb_of(malloc(got[1]));
    return NULL;
}

static void engines_probe(const char *want) {
    char a[16] = "", b[16] = "";
    CHECK(sscanf(want, "%15[a-z],%15[a-z]", a, b) == 2, "--engines-probe %s: want A,B", want);
    static const size_t x_size = 2600, y_size = 3600; /* two classes nobody has used */
    CHECK(malloc_usable_size(malloc(1)) > 0, "the main thread's heap (heap 0, engine 0)");
    /* A thread's exit must let go of its heap's superblocks (listing them), not keep the
     * heap whole for the next thread (dormant) */
    long dormant_heaps;
    CHECK(lite_option_get("dormant_heaps", &dormant_heaps) == 0 && lite_option_set("dormant_heaps", 0) == 0,
          "lite_option_set(dormant_heaps, 0)");

    /* A: T1 (heap 1) lists S1, then T2 (heap 2) lists S2, both of class X; heap 0 adopts.
     * Several engines: it looks at its own (0, empty), then at 1: S1, "scan".  One engine:
     * one stack, the last listed first: S2, "shared". */
    static struct probe_thread t1, t2;
    t1.size = t2.size = x_size;
    probe_pair(&t1, &t2);
    uintptr_t got = sb_of(malloc(x_size));
    const char *seen = got == t1.sb ? "scan" : got == t2.sb ? "shared" : "neither";
    printf("engines probe A: S1 %#lx (heap 1), S2 %#lx (heap 2, listed last); heap 0 adopted %#lx: %s\n",
           (unsigned long)t1.sb, (unsigned long)t2.sb, (unsigned long)got, seen);
    CHECK(!strcmp(seen, a), "engines probe A: %s, expected %s", seen, a);

    /* B: two more threads take the heaps back (T3 heap 2, T4 heap 1: the last released is
     * reused first) and list S3, then S4, of class Y; then a thread on heap 1 adopts.
     * USE_PERTHREAD_ENGINES=1: each listed into its heap's engine, and heap 1 finds S4 in
     * its own: "own".  0: listings went to engines 2 and 3 in turn (A's took 0 and 1), and
     * heap 1, looking from engine 1 on, finds S3 first: "rr". */
    static struct probe_thread t3, t4;
    t3.size = t4.size = y_size;
    probe_pair(&t3, &t4);
    uintptr_t adopted[2] = {0, y_size};
    pthread_t h;
    CHECK(pthread_create(&h, NULL, adopt_thread, adopted) == 0, "pthread_create");
    pthread_join(h, NULL);
    seen = adopted[0] == t4.sb ? "own" : adopted[0] == t3.sb ? "rr" : "neither";
    printf("engines probe B: S3 %#lx, S4 %#lx (listed last); the next thread adopted %#lx: %s\n",
           (unsigned long)t3.sb, (unsigned long)t4.sb, (unsigned long)adopted[0], seen);
    CHECK(!strcmp(seen, b), "engines probe B: %s, expected %s", seen, b);
    CHECK(lite_option_set("dormant_heaps", dormant_heaps) == 0, "lite_option_set(dormant_heaps)");
}

static int maps_contain(const char *path) {
    static char maps[1 << 20];  /* (the harness's reader: no stdio, no malloc) */
    return proc_read("/proc/self/maps", maps, sizeof maps, NULL) > 0 && strstr(maps, path) != NULL;
}

int main(int argc, char **argv) {
    const char *lib = NULL;
    size_t small_max = 0, medium_pages = 0;
    int dense8 = 0, retain_set = 0;
    long retain_mib = 0;
    const char *links = NULL, *engines = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--lib") && i + 1 < argc) lib = argv[++i];
        else if (!strcmp(argv[i], "--align") && i + 1 < argc) opt_align = strtoul(argv[++i], 0, 0);
        else if (!strcmp(argv[i], "--small-max") && i + 1 < argc) small_max = strtoul(argv[++i], 0, 0);
        else if (!strcmp(argv[i], "--medium-pages") && i + 1 < argc) medium_pages = strtoul(argv[++i], 0, 0);
        else if (!strcmp(argv[i], "--dense8")) dense8 = 1;
        else if (!strcmp(argv[i], "--links") && i + 1 < argc) links = argv[++i];
        else if (!strcmp(argv[i], "--retain-mib") && i + 1 < argc) retain_mib = strtol(argv[++i], 0, 0), retain_set = 1;
        else if (!strcmp(argv[i], "--engines-probe") && i + 1 < argc) engines = argv[++i];
        else { fprintf(stderr, "bad argument %s\n", argv[i]); return 2; }
    }
    if (!lib) { fprintf(stderr, "--lib is required\n"); return 2; }
    CHECK(maps_contain(lib), "%s is not mapped into this process", lib);
    if (engines) engines_probe(engines); /* first: no other thread has allocated yet */
    if (links) links_probe(links);
    if (retain_set) retain_probe(retain_mib);

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
              "a %zu-byte request should be a page-granular run (usable %zu)", small_max + 1, ub);
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
              "a %zu-page request is a large block (medium limit should be %zu pages)",
              medium_pages - 1, medium_pages);
        CHECK(a2.large_in_use >= a1.large_in_use + (medium_pages + 1) * 4096,
              "a %zu-page request is not a large block (medium limit should be %zu pages)",
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
    if (check_failures) {
        fprintf(stderr, "variant_stress: %d checks FAILED\n", check_failures);
        return 1;
    }
    printf("variant_stress: passed\n");
    return 0;
}
