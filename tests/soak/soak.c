/*
 * soak: long-running multi-threaded random allocation workload with corruption checks and
 * an "RSS stays flat after warm-up" verdict.  Works with any malloc: run it with
 * LD_PRELOAD=liblite-malloc-shared.so for lite-malloc (lite_stats() is found with dlsym
 * and reported), or plainly for the C library's malloc (the lite figures print as n/a).
 *
 *   soak [options] [SECONDS]        exit 0: "soak: PASS"; 1: "soak: FAIL (reason)"; 2: usage
 *
 * Options (each also settable by the environment variable shown; the option wins):
 *   SECONDS / SOAK_SECONDS          duration of the workload                      (600)
 *   -t N  / SOAK_THREADS            long-lived worker threads                     (4)
 *   -i S  / SOAK_INTERVAL           seconds between report lines                  (30)
 *   -m M  / SOAK_MAX_LIVE_MB        bound on the bytes the harness holds, MiB     (256)
 *   -w S  / SOAK_WARMUP             warm-up excluded from the RSS verdict, seconds
 *                                   (default max(20% of the run, min(60 s, 40% of the run)))
 *   -l S  / SOAK_WORKER_LIFE        a worker thread exits after a random 1..S seconds and is
 *                                   replaced by a new thread that inherits its blocks; 0 = never
 *                                                                                 (10)
 *   -c MS / SOAK_CHURN_MS           pause between short-lived churn threads; -1 = no churn (20)
 *   -s N  / SOAK_SEED               random seed (default: from the clock; printed)
 *   -e A  / SOAK_EXPECT_ALLOC       "lite": fail unless malloc is lite-malloc's;
 *                                   "system": fail if it is
 *   -C N  / SOAK_CORRUPT_AFTER      test flag (positive control): after worker 0 has made N
 *                                   allocator calls, flip one byte of one of its live blocks;
 *                                   the run must then fail with a corruption report
 *   -F F  / SOAK_RSS_FACTOR         RSS verdict: second-half max <= F * first-half max + S (1.15)
 *   -S S  / SOAK_RSS_SLACK_MB       (see judge_rss)                                   (16)
 *           SOAK_RSS_LESS_CACHED=1  the RSS verdict judges RSS minus lite-malloc's own
 *                                   bytes_cached (free memory it keeps resident for reuse, which
 *                                   its decay gives back and its retain limit bounds): what is
 *                                   left is memory in use or lost; needs lite_stats
 *   -L R  / SOAK_LEAK_MB_PER_S      test flag (positive control of the RSS verdict): the main
 *                                   thread leaks R MiB per second (malloc'ed, written, never
 *                                   freed) from the end of the warm-up on; the RSS verdict
 *                                   must then fail
 *
 * Workload.  T workers each own a table of block slots (header-less: the pointer, size, seed,
 * required alignment and provenance live in the slot, not in the block).  Each step picks at
 * random: a short-lived temporary block (allocated, filled, verified, freed at once), or a
 * random slot, which is then allocated if empty (malloc, calloc, realloc(NULL), posix_memalign,
 * aligned_alloc; sometimes a block adopted from the exchange instead) or, if full, freed,
 * reallocated (grow or shrink, possibly across the small/medium/large limits), handed to the
 * exchange for another thread to free or adopt, checked in place, or left while a block is
 * taken from the exchange and freed.  Rarely a run of consecutive slots is freed at once.
 * Sizes: small 8 B..1 KiB (~90% of allocations), medium 1..128 KiB (~10%), large
 * 128 KiB..8 MiB (~0.05%), each log-uniform, with exact powers of two (+-1) mixed in; with
 * realloc growth and big alignments about 1 result in 500 is over 128 KiB.
 *
 * The live set is bounded: each worker may hold (max_live - exchange - churn) / T bytes, the
 * exchange max_live/8 and the churn thread max_live/16; an allocation that does not fit
 * first evicts (verifies and frees) random blocks of its owner.  The slot tables have more
 * slots than the budget can fill, so the workers' budgets saturate within seconds; the
 * exchange is rarely full, so in the steady state the harness holds about 80% of max_live.
 *
 * Cross-thread frees: the exchange is a fixed array of entries (empty / busy / full, moved with
 * one compare-and-swap) where any thread leaves a block for any other to adopt or free.
 * Thread churn: workers retire after a random lifetime and a fresh thread inherits their slot
 * table (so blocks of an exited thread are freed and reallocated by another); a churn driver
 * starts short-lived threads one after another, each of which does a few thousand steps and
 * leaves about half of what it holds in the exchange when it exits.
 *
 * Checks.  Every block carries a pattern derived from its seed and the byte offset (word at
 * offset o = seed + o * K).  Blocks up to 64 KiB are patterned entirely; bigger ones in their
 * first and last 4 KiB and in one 64-byte window of every 4 KiB (which also touches every
 * page, as a real program would).  The pattern is verified before every free and realloc,
 * when a block is adopted from the exchange, when checked in place, and in a final sweep that
 * frees everything; after a realloc the preserved prefix is verified on the new block.  Also:
 * alignment of every block (16 bytes for 16+ byte malloc-family blocks, the requested
 * alignment for posix_memalign/aligned_alloc), malloc_usable_size() >= requested size,
 * calloc memory entirely zero, no NULL from any allocation.  Any failure prints a precise
 * message and the process exits 1 at once, as it does when a worker makes no allocator
 * call for 60 s or a thread does not stop within 60 s of the end.  A fatal signal (a crash,
 * or the allocator's own abort on a bad pointer) prints "soak: FAIL (fatal signal ...)" and
 * the process then dies of that signal.
 *
 * Report line (every interval, and at the end): t = seconds since the start; rss = VmRSS;
 * ops = allocator calls (malloc, calloc, realloc, posix_memalign, aligned_alloc, free) in the
 * interval and ops/s; cpu = process CPU time in the interval as a share of one core (the
 * machine's other load shows here); faults/s = minor page faults; live = bytes the harness
 * holds (requested sizes); lite_* = lite_stats() (n/a under another malloc); threads =
 * threads started so far.  At the end: totals, CPU and faults per call, the final sweep,
 * RSS after freeing everything and after malloc_trim(0), the RSS verdict (see judge_rss())
 * and "soak: PASS" or "soak: FAIL (reason)".
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "lite-malloc.h"
#include "../harness.h"

#define KiB ((size_t)1024)
#define MiB (1024 * KiB)

/* ---- configuration ------------------------------------------------------------------ */
static double cfg_seconds = 600;
static int cfg_threads = 4;
static double cfg_interval = 30;
static size_t cfg_max_live = 256 * MiB;
static double cfg_warmup = -1;       /* < 0: derived from the duration */
static double cfg_worker_life = 10;
static long cfg_churn_ms = 20;
static uint64_t cfg_seed;
static const char *cfg_expect;
static uint64_t cfg_corrupt_after;  /* 0: off */
static double cfg_rss_factor = 1.15, cfg_rss_slack_mb = 16;
static double cfg_leak_mb_per_s;     /* 0: off */

/* ---- block metadata ----------------------------------------------------------------- */
enum fn { F_MALLOC, F_CALLOC, F_REALLOC_NULL, F_POSIX_MEMALIGN, F_ALIGNED_ALLOC, F_REALLOC };
static const char *const fn_name[] = {"malloc", "calloc", "realloc(NULL)", "posix_memalign",
                                      "aligned_alloc", "realloc"};

struct blk {
    char *p;
    size_t size;
    uint64_t seed;
    uint64_t birth;   /* the allocating thread's call count at the time */
    uint32_t align;   /* alignment the block must have */
    uint16_t origin;  /* worker index, or CHURN_ID */
    uint8_t fn;       /* how the current block was obtained */
    uint32_t gen;     /* generation (thread incarnation) of the allocating thread */
};

/* Published per-thread figures, read by the main thread (one writer each). */
struct pub {
    _Atomic uint64_t ops;   /* allocator calls */
    _Atomic size_t live;    /* bytes held in the slots */
} __attribute__((aligned(64)));

struct ctx {
    struct blk *slots;
    size_t nslots;
    size_t budget;
    size_t live;
    uint64_t ops;
    uint64_t rng;
    struct pub *pub;
    int id;
    uint32_t gen;
    /* counts by operation, merged into the totals when the thread ends */
    uint64_t n[16];
};
enum { N_MALLOC, N_CALLOC, N_REALLOC_NULL, N_POSIX_MEMALIGN, N_ALIGNED_ALLOC, N_REALLOC,
       N_FREE, N_TEMP, N_XPUT, N_XTAKE_FREE, N_XADOPT, N_EVICT, N_BULK, N_CHECK, N_LARGE, N_COUNT };
static const char *const n_name[] = {"malloc", "calloc", "realloc(NULL)", "posix_memalign",
    "aligned_alloc", "realloc", "free", "temporary", "exchange-put", "exchange-take+free",
    "exchange-adopt", "evictions", "bulk-frees", "in-place checks", "results>128KiB"};
static _Atomic uint64_t g_totals[N_COUNT];

#define CHURN_ID 0xffff

/* "0".."T-1" for workers, "churn" for a short-lived churn thread, "main" for the main thread. */
struct tname { char s[16]; };
static struct tname thread_name(int id)
{
    struct tname t;
    if (id == CHURN_ID) snprintf(t.s, sizeof t.s, "churn");
    else if (id < 0) snprintf(t.s, sizeof t.s, "main");
    else snprintf(t.s, sizeof t.s, "%d", id);
    return t;
}

static _Atomic int g_stop;
static _Atomic int g_failing;
static double g_t0;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static inline uint64_t rnd(struct ctx *c) { return rng_next(&c->rng); }

/* ---- output that does not allocate (usable from failing threads and signal handlers) -- */
static void out_raw(const char *s, size_t n)
{
    while (n) {
        ssize_t w = write(1, s, n);
        if (w <= 0) { if (w < 0 && errno == EINTR) continue; return; }
        s += w;
        n -= (size_t)w;
    }
}
static void outf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void outf(const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    out_raw(buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
}

/* Print the reason and end the process with status 1 (only the first failing thread
 * reports; any other waits for the exit). */
static void fail_now(const char *reason, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));
static void fail_now(const char *reason, const char *fmt, ...)
{
    if (atomic_exchange(&g_failing, 1)) for (;;) pause();
    fflush(stdout);
    char buf[2048];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n > 0) out_raw(buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
    outf("soak: FAIL (%s) at t=%.1fs\n", reason, now_s() - g_t0);
    _exit(1);
}

static void on_fatal_signal(int sig)
{
    if (!atomic_exchange(&g_failing, 1)) {
        char buf[160];
        int n = snprintf(buf, sizeof buf, "soak: FAIL (fatal signal %d, %s) at t=%.1fs\n", sig,
                         sig == SIGSEGV ? "SIGSEGV" : sig == SIGBUS ? "SIGBUS"
                         : sig == SIGABRT ? "SIGABRT" : sig == SIGILL ? "SIGILL" : "signal",
                         now_s() - g_t0);
        if (n > 0) out_raw(buf, (size_t)n);
    }
    signal(sig, SIG_DFL);
    raise(sig);
}

/* ---- the pattern ----------------------------------------------------------------------
 * Word at byte offset o (o a multiple of 8) is seed + o * K; a partial last word holds the
 * leading bytes of that value.  Blocks up to FULL_LIMIT are patterned entirely; bigger ones
 * in [0, EDGE), in [size - EDGE rounded down to 8, size), and in a 64-byte window of every
 * 4 KiB chunk k >= 1 at k * 4096 + win_off(k) (clipped to the block).  The positions depend
 * only on the size, so after a realloc the preserved prefix is checked with the old size's
 * positions clipped to the new size. */
#define PAT_K 0x9E3779B97F4A7C15ull
#define FULL_LIMIT (64 * KiB)
#define EDGE (4 * KiB)
#define CHUNK (4 * KiB)
#define WIN 64

typedef uint64_t u64a __attribute__((may_alias, aligned(8)));

static inline size_t win_off(size_t k) { return (size_t)(((k * 2654435761u) >> 9) % (CHUNK / WIN)) * WIN; }

static void fill_range(char *p, uint64_t seed, size_t lo, size_t hi)
{
    size_t hw = hi & ~(size_t)7;
    uint64_t v = seed + lo * PAT_K;
    for (size_t o = lo; o < hw; o += 8, v += 8 * PAT_K) *(u64a *)(p + o) = v;
    if (hw < hi && hw >= lo) memcpy(p + hw, &v, hi - hw);
}

/* First differing byte offset in [lo, hi), or SIZE_MAX. */
static size_t check_range(const char *p, uint64_t seed, size_t lo, size_t hi)
{
    size_t hw = hi & ~(size_t)7, o = lo;
    uint64_t v = seed + lo * PAT_K;
    while (o + 64 <= hw) {
        const u64a *w = (const u64a *)(p + o);
        uint64_t d = 0;
        for (int k = 0; k < 8; k++) d |= w[k] ^ (v + (uint64_t)k * 8 * PAT_K);
        if (d) break;
        o += 64;
        v += 64 * PAT_K;
    }
    for (; o < hw; o += 8, v += 8 * PAT_K) {
        uint64_t d = *(const u64a *)(p + o) ^ v;
        if (d) return o + (size_t)(__builtin_ctzll(d) / 8);
    }
    if (hw < hi && hw >= lo) {
        const unsigned char *e = (const unsigned char *)&v;
        for (size_t i = 0; i < hi - hw; i++)
            if ((unsigned char)p[hw + i] != e[i]) return hw + i;
    }
    return SIZE_MAX;
}

static size_t count_range(const char *p, uint64_t seed, size_t lo, size_t hi, size_t *last)
{
    size_t bad = 0;
    for (size_t o = lo; o < hi; o++) {
        uint64_t v = seed + (o & ~(size_t)7) * PAT_K;
        if ((unsigned char)p[o] != (unsigned char)(v >> (8 * (o & 7)))) { bad++; *last = o; }
    }
    return bad;
}

enum scheme_op { S_FILL, S_CHECK, S_COUNT };
struct scheme_res { size_t first, bad, last; };

/* Apply op to the pattern positions of a block of `size` bytes that lie below `limit`. */
static void scheme(enum scheme_op op, char *p, uint64_t seed, size_t size, size_t limit,
                   struct scheme_res *r)
{
    if (limit > size) limit = size;
#define RANGE(lo_, hi_)                                                                 \
    do {                                                                                \
        size_t lo = (lo_), hi = (hi_);                                                  \
        if (hi > limit) hi = limit;                                                     \
        if (lo < hi) {                                                                  \
            if (op == S_FILL) fill_range(p, seed, lo, hi);                              \
            else if (op == S_CHECK) {                                                   \
                size_t f = check_range(p, seed, lo, hi);                                \
                if (f != SIZE_MAX) { r->first = f; return; }                            \
            } else r->bad += count_range(p, seed, lo, hi, &r->last);                    \
        }                                                                               \
    } while (0)
    if (size <= FULL_LIMIT) {
        RANGE(0, size);
        return;
    }
    RANGE(0, EDGE);
    for (size_t k = 1; k * CHUNK < limit; k++) RANGE(k * CHUNK + win_off(k), k * CHUNK + win_off(k) + WIN);
    RANGE((size - EDGE) & ~(size_t)7, size);
#undef RANGE
}

static void fill_blk(const struct blk *b) { scheme(S_FILL, b->p, b->seed, b->size, b->size, NULL); }

static void describe_and_fail(struct ctx *c, const struct blk *b, const char *p, size_t checked,
                              size_t first, const char *when)
{
    struct scheme_res r = {SIZE_MAX, 0, 0};
    scheme(S_COUNT, (char *)p, b->seed, b->size, checked, &r);
    size_t wo = first & ~(size_t)7;
    uint64_t exp = b->seed + wo * PAT_K;
    char got[40] = "", want[40] = "";
    for (size_t i = 0; i < 8 && wo + i < checked; i++) {
        snprintf(got + 3 * i, 4, " %02x", (unsigned char)p[wo + i]);
        snprintf(want + 3 * i, 4, " %02x", (unsigned char)(exp >> (8 * i)));
    }
    fail_now("corruption detected",
             "soak: CORRUPTION in block %p at offset %zu (%s by thread %s gen %u at its call %llu)\n"
             "soak:   block: size %zu, align %u, seed %016llx, obtained by %s in thread %s gen %u at its call %llu\n"
             "soak:   word at offset %zu: got%s, expected%s; %zu byte(s) differ in the %zu checked bytes, last at offset %zu\n",
             (void *)p, first, when, thread_name(c->id).s, c->gen, (unsigned long long)c->ops, b->size, b->align,
             (unsigned long long)b->seed, fn_name[b->fn], thread_name(b->origin).s,
             b->gen, (unsigned long long)b->birth, wo, got, want, r.bad, checked, r.last);
}

/* Verify the pattern of b (at b->p) before the block is freed / reallocated / adopted. */
static void verify_blk(struct ctx *c, const struct blk *b, const char *when)
{
    struct scheme_res r = {SIZE_MAX, 0, 0};
    scheme(S_CHECK, b->p, b->seed, b->size, b->size, &r);
    if (r.first != SIZE_MAX) describe_and_fail(c, b, b->p, b->size, r.first, when);
}

static size_t malloc_align(size_t size) { return size >= 16 ? 16 : 8; }

/* Checks on a block just obtained: not NULL, aligned, usable size, calloc zero. */
static void check_new(struct ctx *c, const struct blk *b, int zeroed, const char *call)
{
    if (!b->p)
        fail_now("allocation failed", "soak: %s of %zu bytes (align %u) returned NULL (errno %d) in thread %s gen %u\n",
                 call, b->size, b->align, errno, thread_name(c->id).s, c->gen);
    if ((uintptr_t)b->p % b->align)
        fail_now("misaligned block", "soak: %s of %zu bytes returned %p, not aligned to %u (thread %s gen %u)\n",
                 call, b->size, (void *)b->p, b->align, thread_name(c->id).s, c->gen);
    if (b->size > 128 * KiB) c->n[N_LARGE]++;
    size_t u = malloc_usable_size(b->p);
    if (u < b->size)
        fail_now("usable size too small", "soak: %s of %zu bytes returned %p with malloc_usable_size %zu (thread %s gen %u)\n",
                 call, b->size, (void *)b->p, u, thread_name(c->id).s, c->gen);
    if (zeroed) {
        const char *p = b->p;
        size_t n = b->size, o = 0;
        for (; o + 64 <= n; o += 64) {
            const u64a *w = (const u64a *)(p + o);
            if (w[0] | w[1] | w[2] | w[3] | w[4] | w[5] | w[6] | w[7]) break;
        }
        for (; o < n; o++)
            if (p[o])
                fail_now("calloc memory not zero", "soak: %s of %zu bytes returned %p whose byte at offset %zu is 0x%02x (thread %s gen %u)\n",
                         call, b->size, (void *)p, o, (unsigned char)p[o], thread_name(c->id).s, c->gen);
    }
}

/* ---- sizes ---------------------------------------------------------------------------- */
static size_t log_uniform(struct ctx *c, unsigned lo_log2, unsigned hi_log2)
{
    uint64_t r = rnd(c);
    unsigned e = lo_log2 + (unsigned)(r % (hi_log2 - lo_log2));
    size_t base = (size_t)1 << e;
    if ((r >> 20) % 16 == 0) return base - 1 + (size_t)((r >> 24) % 3); /* 2^e - 1, 2^e, 2^e + 1 */
    return base + (size_t)((r >> 24) % base);
}

static size_t pick_size(struct ctx *c)
{
    unsigned r = (unsigned)(rnd(c) % 100000);
    if (r < 50) return log_uniform(c, 17, 23);                        /* 128 KiB .. 8 MiB */
    if (r < 10050) return log_uniform(c, 10, 17);                     /* 1 KiB .. 128 KiB */
    return log_uniform(c, 3, 10);                                     /* 8 B .. 1 KiB */
}

static size_t pick_align(struct ctx *c)
{
    uint64_t r = rnd(c);
    if (r % 100 == 0) return (size_t)1 << (16 + (r >> 8) % 6); /* 64 KiB .. 2 MiB */
    return (size_t)1 << (3 + (r >> 8) % 10);                    /* 8 .. 4096 */
}

/* ---- the exchange --------------------------------------------------------------------- */
#define XN 4096
enum { X_EMPTY, X_BUSY, X_FULL };
struct xent {
    _Atomic uint32_t state;
    struct blk b;
} __attribute__((aligned(64)));
static struct xent g_x[XN];
static _Atomic size_t g_x_bytes;
static size_t g_x_budget;

static int xput(struct ctx *c, struct blk *b)
{
    if (atomic_fetch_add_explicit(&g_x_bytes, b->size, memory_order_relaxed) + b->size > g_x_budget) {
        atomic_fetch_sub_explicit(&g_x_bytes, b->size, memory_order_relaxed);
        return 0;
    }
    for (int t = 0; t < 4; t++) {
        struct xent *e = &g_x[rnd(c) % XN];
        uint32_t s = X_EMPTY;
        if (atomic_load_explicit(&e->state, memory_order_relaxed) != X_EMPTY ||
            !atomic_compare_exchange_strong_explicit(&e->state, &s, X_BUSY, memory_order_acquire,
                                                     memory_order_relaxed))
            continue;
        e->b = *b;
        atomic_store_explicit(&e->state, X_FULL, memory_order_release);
        c->live -= b->size;
        b->p = NULL;
        c->n[N_XPUT]++;
        return 1;
    }
    atomic_fetch_sub_explicit(&g_x_bytes, b->size, memory_order_relaxed);
    return 0;
}

static int xtake(struct ctx *c, struct blk *out)
{
    for (int t = 0; t < 4; t++) {
        struct xent *e = &g_x[rnd(c) % XN];
        uint32_t s = X_FULL;
        if (atomic_load_explicit(&e->state, memory_order_relaxed) != X_FULL ||
            !atomic_compare_exchange_strong_explicit(&e->state, &s, X_BUSY, memory_order_acquire,
                                                     memory_order_relaxed))
            continue;
        *out = e->b;
        atomic_store_explicit(&e->state, X_EMPTY, memory_order_release);
        atomic_fetch_sub_explicit(&g_x_bytes, out->size, memory_order_relaxed);
        return 1;
    }
    return 0;
}

/* ---- operations ----------------------------------------------------------------------- */
static inline void publish(struct ctx *c)
{
    atomic_store_explicit(&c->pub->ops, c->ops, memory_order_relaxed);
    atomic_store_explicit(&c->pub->live, c->live, memory_order_relaxed);
}

static void free_blk(struct ctx *c, struct blk *b, const char *when, int owned)
{
    verify_blk(c, b, when);
    free(b->p);
    c->ops++;
    c->n[N_FREE]++;
    if (owned) c->live -= b->size;
    b->p = NULL;
}

/* Obtain a block of a random kind into b (which is empty). */
static void obtain(struct ctx *c, struct blk *b, size_t size)
{
    unsigned r = (unsigned)(rnd(c) % 100);
    int zeroed = 0;
    const char *call;
    b->seed = rnd(c);
    b->origin = (uint16_t)c->id;
    b->gen = c->gen;
    b->birth = c->ops;
    if (r < 55) {
        b->fn = F_MALLOC; call = "malloc"; c->n[N_MALLOC]++;
        b->size = size; b->align = (uint32_t)malloc_align(size);
        b->p = malloc(size);
    } else if (r < 70) {
        static const size_t els[] = {1, 2, 4, 8, 12, 16, 24, 40, 64};
        size_t el = els[rnd(c) % (sizeof els / sizeof els[0])];
        size_t n = (size + el - 1) / el;
        b->fn = F_CALLOC; call = "calloc"; c->n[N_CALLOC]++;
        b->size = n * el; b->align = (uint32_t)malloc_align(b->size);
        b->p = calloc(n, el);
        zeroed = 1;
    } else if (r < 75) {
        b->fn = F_REALLOC_NULL; call = "realloc(NULL)"; c->n[N_REALLOC_NULL]++;
        b->size = size; b->align = (uint32_t)malloc_align(size);
        b->p = realloc(NULL, size);
    } else if (r < 88) {
        size_t a = pick_align(c);
        void *p = NULL;
        b->fn = F_POSIX_MEMALIGN; call = "posix_memalign"; c->n[N_POSIX_MEMALIGN]++;
        b->size = size; b->align = (uint32_t)a;
        int rc = posix_memalign(&p, a, size);
        if (rc) { errno = rc; p = NULL; }
        b->p = p;
    } else {
        size_t a = pick_align(c);
        if (a < 16) a = 16;
        b->fn = F_ALIGNED_ALLOC; call = "aligned_alloc"; c->n[N_ALIGNED_ALLOC]++;
        b->size = (size + a - 1) & ~(a - 1); /* C11: size a multiple of the alignment */
        b->align = (uint32_t)a;
        b->p = aligned_alloc(a, b->size);
    }
    c->ops++;
    check_new(c, b, zeroed, call);
    fill_blk(b);
}

/* Make room for `need` more bytes in c's budget by freeing random blocks; 1 if it fits. */
static int make_room(struct ctx *c, size_t need)
{
    if (need > c->budget) return 0;
    for (int t = 0; t < 64 && c->live + need > c->budget; t++) {
        struct blk *v = &c->slots[rnd(c) % c->nslots];
        if (!v->p) continue;
        free_blk(c, v, "before free (eviction)", 1);
        c->n[N_EVICT]++;
    }
    return c->live + need <= c->budget;
}

static void alloc_slot(struct ctx *c, struct blk *b)
{
    size_t size = pick_size(c);
    if (!make_room(c, size)) return;
    obtain(c, b, size);
    c->live += b->size;
    /* aligned_alloc rounds the size up to its alignment: evict more if that went over */
    if (c->live > c->budget && !make_room(c, 0) && b->p) free_blk(c, b, "before free (over budget)", 1);
}

static void realloc_slot(struct ctx *c, struct blk *b)
{
    uint64_t r = rnd(c);
    size_t old = b->size, ns;
    unsigned k = (unsigned)(r % 100);
    if (k < 40) ns = old + 1 + (size_t)((r >> 8) % (old * 2 + 16));          /* grow up to 3x */
    else if (k < 80) ns = 1 + (size_t)(((r >> 8) % 100) * old / 100);         /* shrink */
    else ns = pick_size(c);                                                    /* anything */
    if (ns > 8 * MiB) ns = 8 * MiB;
    if (ns > old && c->live - old + ns > c->budget && !make_room(c, ns - old)) ns = old / 2 + 1;
    if (!b->p) return; /* make_room evicted this very block */
    verify_blk(c, b, "before realloc");
    struct blk prev = *b;
    uintptr_t oldp = (uintptr_t)b->p; /* for messages only: the old block is gone */
    __asm__("" : "+r"(oldp));          /* (and GCC need not track it through realloc) */
    char *np = realloc(b->p, ns);
    c->ops++;
    c->n[N_REALLOC]++;
    if (!np)
        fail_now("allocation failed", "soak: realloc(%p, %zu) (from %zu bytes) returned NULL (errno %d) in thread %s gen %u\n",
                 (void *)oldp, ns, old, errno, thread_name(c->id).s, c->gen);
    size_t keep = old < ns ? old : ns;
    struct scheme_res res = {SIZE_MAX, 0, 0};
    scheme(S_CHECK, np, prev.seed, old, keep, &res);
    if (res.first != SIZE_MAX) {
        char when[160];
        snprintf(when, sizeof when, "after realloc from %p (%zu -> %zu bytes): content not preserved", (void *)oldp, old, ns);
        describe_and_fail(c, &prev, np, keep, res.first, when);
    }
    b->p = np;
    b->size = ns;
    b->align = (uint32_t)malloc_align(ns);
    b->fn = F_REALLOC;
    check_new(c, b, 0, "realloc");
    fill_blk(b);
    c->live = c->live - old + ns;
}

static void temp_op(struct ctx *c)
{
    struct blk t;
    size_t size = rnd(c) % 8 ? log_uniform(c, 3, 10) : log_uniform(c, 10, 17);
    obtain(c, &t, size);
    free_blk(c, &t, "before free (temporary block)", 0);
    c->n[N_TEMP]++;
}

static void inject_corruption(struct ctx *c)
{
    size_t i = rnd(c) % c->nslots;
    for (size_t t = 0; t < c->nslots; t++, i = (i + 1) % c->nslots) {
        struct blk *b = &c->slots[i];
        if (!b->p) continue;
        size_t lim = b->size < EDGE ? b->size : EDGE;
        size_t off = rnd(c) % lim;
        b->p[off] ^= 0x5a;
        outf("soak: test flag: injected corruption into block %p at offset %zu (size %zu, thread %s gen %u, call %llu)\n",
             (void *)b->p, off, b->size, thread_name(c->id).s, c->gen, (unsigned long long)c->ops);
        return;
    }
}

static void step(struct ctx *c)
{
    uint64_t r = rnd(c);
    unsigned pick = (unsigned)(r % 1000);
    if (pick < 120) { temp_op(c); return; }
    if (pick == 999 && (r >> 10) % 20 == 0) { /* bulk free of a run of slots */
        size_t start = (size_t)(r >> 20) % c->nslots, n = 64 + (size_t)((r >> 40) % 960);
        for (size_t k = 0; k < n && start + k < c->nslots; k++)
            if (c->slots[start + k].p) free_blk(c, &c->slots[start + k], "before free (bulk)", 1);
        c->n[N_BULK]++;
        return;
    }
    struct blk *b = &c->slots[(size_t)(r >> 10) % c->nslots];
    if (!b->p) {
        if (pick < 220) {
            struct blk t;
            if (xtake(c, &t)) {
                verify_blk(c, &t, "on adoption from the exchange");
                if (c->live + t.size <= c->budget) {
                    *b = t;
                    c->live += t.size;
                    c->n[N_XADOPT]++;
                } else {
                    free_blk(c, &t, "before free (taken from the exchange)", 0);
                    c->n[N_XTAKE_FREE]++;
                }
                return;
            }
        }
        alloc_slot(c, b);
        return;
    }
    unsigned q = (unsigned)((r >> 40) % 100);
    if (q < 40) {
        free_blk(c, b, "before free", 1);
    } else if (q < 62) {
        realloc_slot(c, b);
    } else if (q < 74) {
        if (!xput(c, b)) free_blk(c, b, "before free", 1);
    } else if (q < 82) {
        struct blk t;
        if (xtake(c, &t)) {
            free_blk(c, &t, "before free (taken from the exchange)", 0);
            c->n[N_XTAKE_FREE]++;
        }
    } else {
        verify_blk(c, b, "in-place check");
        c->n[N_CHECK]++;
    }
}

static void merge_counts(struct ctx *c)
{
    for (int i = 0; i < N_COUNT; i++) {
        atomic_fetch_add_explicit(&g_totals[i], c->n[i], memory_order_relaxed);
        c->n[i] = 0;
    }
}

/* ---- workers -------------------------------------------------------------------------- */
struct worker {
    struct ctx c;
    struct pub pub;
    pthread_t th;
    _Atomic int done;
    double deadline;        /* absolute, monotonic; 0 = none */
    uint64_t last_ops;      /* stall detection (main thread) */
    double last_progress;
};
static struct worker *g_workers;
static _Atomic uint64_t g_threads_started;
static _Atomic int g_corrupt_armed;

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct ctx *c = &w->c;
    while (!atomic_load_explicit(&g_stop, memory_order_relaxed)) {
        for (int k = 0; k < 64; k++) {
            step(c);
            publish(c);
        }
        if (c->id == 0 && cfg_corrupt_after && c->ops >= cfg_corrupt_after &&
            atomic_exchange(&g_corrupt_armed, 0))
            inject_corruption(c);
        if (w->deadline > 0 && now_s() >= w->deadline) break;
    }
    merge_counts(c);
    atomic_store_explicit(&w->done, 1, memory_order_release);
    return NULL;
}

static void start_worker(struct worker *w)
{
    w->c.gen++;
    w->c.rng = cfg_seed ^ ((uint64_t)w->c.id << 48) ^ ((uint64_t)w->c.gen << 24) ^ 0x1234567;
    double life = 0;
    if (cfg_worker_life > 0) life = 1.0 + (double)(rng_next(&w->c.rng) % 1000) / 1000.0 * (cfg_worker_life - 1.0);
    w->deadline = life > 0 ? now_s() + life : 0;
    atomic_store(&w->done, 0);
    atomic_fetch_add(&g_threads_started, 1);
    int rc = pthread_create(&w->th, NULL, worker_main, w);
    if (rc) fail_now("pthread_create failed", "soak: pthread_create for worker %d: %s\n", w->c.id, strerror(rc));
}

/* ---- churn: short-lived threads one after another ------------------------------------- */
#define CHURN_SLOTS 256
static struct pub g_churn_pub;
static size_t g_churn_budget;
static uint32_t g_churn_gen;

static void *churn_child(void *arg)
{
    (void)arg;
    struct blk slots[CHURN_SLOTS];
    memset(slots, 0, sizeof slots);
    struct ctx c = {.slots = slots, .nslots = CHURN_SLOTS, .budget = g_churn_budget,
                    .pub = &g_churn_pub, .id = CHURN_ID, .gen = ++g_churn_gen};
    c.ops = atomic_load_explicit(&g_churn_pub.ops, memory_order_relaxed);
    c.rng = cfg_seed ^ 0xC0FFEEull ^ ((uint64_t)c.gen << 20);
    long steps = 500 + (long)(rnd(&c) % 4000);
    for (long i = 0; i < steps && !atomic_load_explicit(&g_stop, memory_order_relaxed); i++) {
        step(&c);
        publish(&c);
    }
    /* leave about half of what is held for the other threads, free the rest */
    for (int i = 0; i < CHURN_SLOTS; i++) {
        if (!slots[i].p) continue;
        if (!(rnd(&c) & 1) || !xput(&c, &slots[i])) free_blk(&c, &slots[i], "before free (churn thread exit)", 1);
    }
    publish(&c);
    merge_counts(&c);
    return NULL;
}

static void *churn_driver(void *arg)
{
    (void)arg;
    while (!atomic_load_explicit(&g_stop, memory_order_relaxed)) {
        pthread_t th;
        atomic_fetch_add(&g_threads_started, 1);
        int rc = pthread_create(&th, NULL, churn_child, NULL);
        if (rc) fail_now("pthread_create failed", "soak: pthread_create for a churn thread: %s\n", strerror(rc));
        pthread_join(th, NULL);
        if (cfg_churn_ms > 0) {
            struct timespec ts = {cfg_churn_ms / 1000, (cfg_churn_ms % 1000) * 1000000L};
            nanosleep(&ts, NULL);
        }
    }
    return NULL;
}

/* ---- measurements ---------------------------------------------------------------------- */
typedef void (*stats_fn)(struct lite_malloc_stats *);
static stats_fn g_lite_stats;

static long rss_kib(void) { return proc_kb("/proc/self/status", "VmRSS"); }

static size_t live_bytes(void)
{
    size_t t = atomic_load_explicit(&g_x_bytes, memory_order_relaxed) +
               atomic_load_explicit(&g_churn_pub.live, memory_order_relaxed);
    for (int i = 0; i < cfg_threads; i++) t += atomic_load_explicit(&g_workers[i].pub.live, memory_order_relaxed);
    return t;
}

static uint64_t total_ops(void)
{
    uint64_t t = atomic_load_explicit(&g_churn_pub.ops, memory_order_relaxed);
    for (int i = 0; i < cfg_threads; i++) t += atomic_load_explicit(&g_workers[i].pub.ops, memory_order_relaxed);
    return t;
}

static long g_minflt; /* minor page faults so far, updated by cpu_seconds() */

static double cpu_seconds(double *user, double *sys)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    g_minflt = ru.ru_minflt;
    double u = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6;
    double s = (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6;
    if (user) *user = u;
    if (sys) *sys = s;
    return u + s;
}

static double mib(double bytes) { return bytes / (double)MiB; }

static void lite_fields(char *out, size_t n)
{
    if (!g_lite_stats) {
        snprintf(out, n, "lite_mapped=n/a lite_in_use=n/a lite_cached=n/a");
        return;
    }
    struct lite_malloc_stats s;
    g_lite_stats(&s);
    snprintf(out, n, "lite_mapped=%.1fMiB lite_in_use=%.1fMiB lite_cached=%.1fMiB lite_released=%.1fMiB lite_heaps=%zu",
             mib((double)s.bytes_mapped), mib((double)s.bytes_in_use), mib((double)s.bytes_cached),
             mib((double)s.bytes_released), s.threads);
}

struct sample { double t; double rss_mib; };
static int cfg_rss_less_cached;

/* What the RSS verdict judges: RSS, or (SOAK_RSS_LESS_CACHED) RSS less lite-malloc's cache. */
static double rss_for_verdict_mib(void)
{
    double rss = rss_kib() / 1024.0;
    if (cfg_rss_less_cached && g_lite_stats) {
        struct lite_malloc_stats s;
        g_lite_stats(&s);
        rss -= mib((double)s.bytes_cached);
    }
    return rss;
}
static struct sample *g_samples;
static size_t g_nsamples, g_cap_samples;

/*
 * RSS verdict.  Warm-up W = max(20% of the run, min(60 s, 40% of the run)) unless given:
 * 120 s of a 600 s run, 48 s of 2 minutes, 24 s of 1 minute, 8 s of 20 s.  In that time every
 * slot table fills to its budget, every size class and large size has been seen and the
 * allocator's caches have reached their working size.  The 1-second RSS samples after W are
 * split into a first half A = [W, mid) and a second half B = [mid, end].  The run passes when
 *     max(B) <= 1.15 * max(A) + 16 MiB
 * (1.15 and 16 are the defaults of SOAK_RSS_FACTOR and SOAK_RSS_SLACK_MB; a short run uses
 * tighter ones, see tests/scripts/soak_short.sh).
 * Since the harness's live set is bounded (and saturated) from early on, a leak or fragmentation
 * that grows without bound raises the later maxima above the earlier ones, while a healthy
 * allocator's RSS just fluctuates around a plateau.  Comparing maxima (not means) makes the rule
 * insensitive to the dips of a bulk free; the 15% absorbs the noise of a few 8 MiB blocks more or
 * less in the live set and allocator caches; the 16 MiB absorbs thread stacks and per-thread
 * caches of the churn threads and matters only for small live sets.  A steady leak of r MiB/s is
 * caught when r * (end - W) / 2 exceeds that margin: about 0.25 MiB/s in a 600 s run at 256 MiB.
 * The least-squares slope after W is printed for information.
 * Returns 1 for flat; *why gets the reason otherwise.
 */
static int judge_rss(double duration, char *why, size_t whylen)
{
    double W = cfg_warmup >= 0 ? cfg_warmup : fmax(0.2 * duration, fmin(60.0, 0.4 * duration));
    double mid = W + (duration - W) / 2;
    double maxA = 0, maxB = 0, minA = 1e300;
    size_t nA = 0, nB = 0;
    double sx = 0, sy = 0, sxx = 0, sxy = 0;
    for (size_t i = 0; i < g_nsamples; i++) {
        struct sample s = g_samples[i];
        if (s.t < W) continue;
        if (s.t < mid) { nA++; maxA = fmax(maxA, s.rss_mib); minA = fmin(minA, s.rss_mib); }
        else { nB++; maxB = fmax(maxB, s.rss_mib); }
        sx += s.t; sy += s.rss_mib; sxx += s.t * s.t; sxy += s.t * s.rss_mib;
    }
    double n = (double)(nA + nB);
    double slope = n >= 2 && n * sxx - sx * sx > 0 ? (n * sxy - sx * sy) / (n * sxx - sx * sx) : 0;
    double limit = cfg_rss_factor * maxA + cfg_rss_slack_mb;
    printf("soak: RSS%s after warm-up %.0fs: first half [%.0fs,%.0fs) %zu samples max %.1f MiB (min %.1f); "
           "second half [%.0fs,%.0fs] %zu samples max %.1f MiB; limit %.2f*%.1f+%.0f = %.1f MiB; slope %+.2f MiB/min\n",
           cfg_rss_less_cached ? " less lite_cached" : "", W, W, mid, nA, maxA, nA ? minA : 0.0, mid, duration, nB, maxB, cfg_rss_factor, maxA,
           cfg_rss_slack_mb, limit, slope * 60);
    if (nA < 2 || nB < 2) {
        snprintf(why, whylen, "run too short to judge RSS: %zu and %zu samples after a %.0fs warm-up", nA, nB, W);
        return 0;
    }
    if (maxB > limit) {
        snprintf(why, whylen, "RSS grew after warm-up: second-half max %.1f MiB > %.1f MiB = %.2f * first-half max %.1f + %.0f",
                 maxB, limit, cfg_rss_factor, maxA, cfg_rss_slack_mb);
        return 0;
    }
    return 1;
}

/* ---- main ---------------------------------------------------------------------------- */
static double env_num(const char *name, double def)
{
    const char *s = getenv(name);
    if (!s || !*s) return def;
    char *e;
    double v = strtod(s, &e);
    if (*e) { fprintf(stderr, "soak: bad %s=%s\n", name, s); exit(2); }
    return v;
}

static double arg_num(const char *opt, const char *s)
{
    char *e;
    double v = strtod(s, &e);
    if (!*s || *e) { fprintf(stderr, "soak: bad value for -%s: %s\n", opt, s); exit(2); }
    return v;
}

static void usage(void)
{
    fprintf(stderr, "usage: soak [-t threads] [-i interval_s] [-m max_live_mib] [-w warmup_s] [-l worker_life_s]\n"
                    "            [-c churn_pause_ms] [-s seed] [-e lite|system] [-C corrupt_after_calls]\n"
                    "            [-F rss_factor] [-S rss_slack_mib] [-L leak_mib_per_s] [SECONDS]\n"
                    "(see the comment at the top of tests/soak/soak.c; SOAK_* environment variables set the defaults)\n");
    exit(2);
}

/* Test flag -L: memory allocated, written and never freed (the pointers are dropped on
 * purpose), 64 KiB at a time. */
static void leak_some(double bytes)
{
    for (double done = 0; done < bytes; done += 64 << 10) {
        char *p = malloc(64 << 10);
        if (!p) fail_now("leak", "soak: test flag: malloc of a leaked block failed\n");
        for (size_t off = 0; off < (64 << 10); off += 4096) p[off] = 1;
    }
}

static int join_within(pthread_t th, double secs)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += (time_t)secs;
    return pthread_timedjoin_np(th, NULL, &ts) == 0;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    g_t0 = now_s();
    cfg_seconds = env_num("SOAK_SECONDS", cfg_seconds);
    cfg_threads = (int)env_num("SOAK_THREADS", cfg_threads);
    cfg_interval = env_num("SOAK_INTERVAL", cfg_interval);
    cfg_max_live = (size_t)(env_num("SOAK_MAX_LIVE_MB", (double)(cfg_max_live / MiB)) * (double)MiB);
    cfg_warmup = env_num("SOAK_WARMUP", cfg_warmup);
    cfg_worker_life = env_num("SOAK_WORKER_LIFE", cfg_worker_life);
    cfg_churn_ms = (long)env_num("SOAK_CHURN_MS", (double)cfg_churn_ms);
    cfg_seed = (uint64_t)env_num("SOAK_SEED", 0);
    cfg_corrupt_after = (uint64_t)env_num("SOAK_CORRUPT_AFTER", 0);
    cfg_expect = getenv("SOAK_EXPECT_ALLOC");
    cfg_rss_factor = env_num("SOAK_RSS_FACTOR", cfg_rss_factor);
    cfg_rss_slack_mb = env_num("SOAK_RSS_SLACK_MB", cfg_rss_slack_mb);
    cfg_leak_mb_per_s = env_num("SOAK_LEAK_MB_PER_S", 0);
    cfg_rss_less_cached = env_num("SOAK_RSS_LESS_CACHED", 0) != 0;
    int opt;
    while ((opt = getopt(argc, argv, "t:i:m:w:l:c:s:e:C:F:S:L:h")) != -1) {
        char o[2] = {(char)opt, 0};
        switch (opt) {
        case 't': cfg_threads = (int)arg_num(o, optarg); break;
        case 'i': cfg_interval = arg_num(o, optarg); break;
        case 'm': cfg_max_live = (size_t)(arg_num(o, optarg) * (double)MiB); break;
        case 'w': cfg_warmup = arg_num(o, optarg); break;
        case 'l': cfg_worker_life = arg_num(o, optarg); break;
        case 'c': cfg_churn_ms = (long)arg_num(o, optarg); break;
        case 's': cfg_seed = (uint64_t)arg_num(o, optarg); break;
        case 'e': cfg_expect = optarg; break;
        case 'C': cfg_corrupt_after = (uint64_t)arg_num(o, optarg); break;
        case 'F': cfg_rss_factor = arg_num(o, optarg); break;
        case 'S': cfg_rss_slack_mb = arg_num(o, optarg); break;
        case 'L': cfg_leak_mb_per_s = arg_num(o, optarg); break;
        default: usage();
        }
    }
    if (optind < argc) cfg_seconds = arg_num("SECONDS", argv[optind++]);
    if (optind < argc) usage();
    if (cfg_seconds <= 0 || cfg_threads < 1 || cfg_threads > 1000 || cfg_interval <= 0 ||
        cfg_max_live < 16 * MiB || (cfg_worker_life > 0 && cfg_worker_life < 1) || cfg_rss_factor < 1 ||
        cfg_rss_slack_mb < 0 || cfg_leak_mb_per_s < 0)
        usage();
    if (!cfg_seed) cfg_seed = (uint64_t)time(NULL) * 1000003u ^ (uint64_t)getpid();
    atomic_store(&g_corrupt_armed, cfg_corrupt_after ? 1 : 0);

    static const int sigs[] = {SIGSEGV, SIGBUS, SIGABRT, SIGILL, SIGFPE};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) signal(sigs[i], on_fatal_signal);

    /* Which malloc is this? */
    g_lite_stats = (stats_fn)dlsym(RTLD_DEFAULT, "lite_stats");
    int (*lite_owns)(const void *) = (int (*)(const void *))dlsym(RTLD_DEFAULT, "lite_owns");
    void *probe = malloc(64);
    int is_lite = lite_owns && probe && lite_owns(probe) == 1;
    free(probe);
    printf("soak: allocator: %s\n", is_lite ? "lite-malloc (lite_stats found, malloc blocks are lite-malloc's)"
                                   : g_lite_stats ? "lite_stats found but malloc is not lite-malloc's"
                                                  : "system malloc (no lite_stats)");
    if (cfg_expect && !strcmp(cfg_expect, "lite") && !is_lite) {
        printf("soak: FAIL (malloc is not lite-malloc: LD_PRELOAD missing?)\n");
        return 1;
    }
    if (cfg_expect && !strcmp(cfg_expect, "system") && is_lite) {
        printf("soak: FAIL (malloc is lite-malloc but the system malloc was expected)\n");
        return 1;
    }
    if (!is_lite) g_lite_stats = NULL;
    if (cfg_rss_less_cached && !g_lite_stats) {
        printf("soak: FAIL (SOAK_RSS_LESS_CACHED needs lite-malloc's lite_stats)\n");
        return 2;
    }

    /* Budgets and tables (the harness's own tables are mmapped, not malloc'ed). */
    g_x_budget = cfg_max_live / 8;
    g_churn_budget = cfg_churn_ms >= 0 ? cfg_max_live / 16 : 0;
    size_t wbudget = (cfg_max_live - g_x_budget - g_churn_budget) / (size_t)cfg_threads;
    size_t nslots = wbudget / (2 * KiB);
    if (nslots < 1024) nslots = 1024;
    if (nslots > (1u << 20)) nslots = 1u << 20;
    size_t wbytes = sizeof(struct worker) * (size_t)cfg_threads;
    g_workers = mmap(NULL, wbytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    g_cap_samples = (size_t)cfg_seconds + 64;
    g_samples = mmap(NULL, g_cap_samples * sizeof *g_samples, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (g_workers == MAP_FAILED || g_samples == MAP_FAILED) { perror("mmap"); return 2; }
    for (int i = 0; i < cfg_threads; i++) {
        struct worker *w = &g_workers[i];
        w->c.slots = mmap(NULL, nslots * sizeof(struct blk), PROT_READ | PROT_WRITE,
                          MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (w->c.slots == MAP_FAILED) { perror("mmap"); return 2; }
        w->c.nslots = nslots;
        w->c.budget = wbudget;
        w->c.pub = &w->pub;
        w->c.id = i;
    }
    double warm = cfg_warmup >= 0 ? cfg_warmup : fmax(0.2 * cfg_seconds, fmin(60.0, 0.4 * cfg_seconds));
    printf("soak: %.0fs, %d workers (%zu slots, %.1f MiB each; retire after 1..%.0fs), exchange %d entries / %.1f MiB, "
           "churn %s, max live %.1f MiB, report every %.0fs, warm-up %.0fs, seed %llu%s\n",
           cfg_seconds, cfg_threads, nslots, mib((double)wbudget), cfg_worker_life, XN, mib((double)g_x_budget),
           cfg_churn_ms >= 0 ? "on" : "off", mib((double)cfg_max_live), cfg_interval, warm,
           (unsigned long long)cfg_seed, cfg_corrupt_after ? " [corruption test flag set]" : "");
    if (cfg_leak_mb_per_s > 0)
        printf("soak: test flag: leaking %.1f MiB per second after the warm-up\n", cfg_leak_mb_per_s);
    printf("soak: RSS at start %.1f MiB\n", rss_kib() / 1024.0);

    g_t0 = now_s();
    for (int i = 0; i < cfg_threads; i++) {
        start_worker(&g_workers[i]);
        g_workers[i].last_progress = g_t0;
    }
    pthread_t churn;
    if (cfg_churn_ms >= 0) {
        int rc = pthread_create(&churn, NULL, churn_driver, NULL);
        if (rc) fail_now("pthread_create failed", "soak: churn driver: %s\n", strerror(rc));
    }

    double next_sample = 1, next_report = cfg_interval, last_report_t = 0, last_cpu = cpu_seconds(NULL, NULL);
    long last_flt = g_minflt;
    uint64_t last_report_ops = 0;
    const double stall_limit = 60;
    for (;;) {
        struct timespec ts = {0, 50 * 1000000L};
        nanosleep(&ts, NULL);
        double t = now_s() - g_t0;
        int finished = t >= cfg_seconds;
        if (!finished) {
            for (int i = 0; i < cfg_threads; i++) {
                struct worker *w = &g_workers[i];
                if (atomic_load_explicit(&w->done, memory_order_acquire)) {
                    pthread_join(w->th, NULL);
                    start_worker(w);
                }
                uint64_t o = atomic_load_explicit(&w->pub.ops, memory_order_relaxed);
                if (o != w->last_ops) { w->last_ops = o; w->last_progress = t + g_t0; }
                else if (t + g_t0 - w->last_progress > stall_limit)
                    fail_now("stall", "soak: worker %d made no allocator call for %.0fs (hang or livelock in the allocator?)\n",
                             i, stall_limit);
            }
        }
        if (t >= next_sample || finished) {
            if (g_nsamples < g_cap_samples) g_samples[g_nsamples++] = (struct sample){t, rss_for_verdict_mib()};
            next_sample += 1;
            if (cfg_leak_mb_per_s > 0 && !finished && t >= warm) leak_some(cfg_leak_mb_per_s * MiB);
        }
        if (t >= next_report || (finished && t - last_report_t > 0.5)) {
            uint64_t ops = total_ops();
            char lf[256];
            lite_fields(lf, sizeof lf);
            double dt = t - last_report_t, cpu = cpu_seconds(NULL, NULL);
            printf("soak: t=%.0fs rss=%.1fMiB ops=%llu ops/s=%.0f cpu=%.0f%% faults/s=%.0f live=%.1fMiB %s threads=%llu\n", t,
                   rss_kib() / 1024.0, (unsigned long long)(ops - last_report_ops),
                   (double)(ops - last_report_ops) / dt, 100 * (cpu - last_cpu) / dt,
                   (double)(g_minflt - last_flt) / dt, mib((double)live_bytes()), lf,
                   (unsigned long long)atomic_load(&g_threads_started));
            last_cpu = cpu;
            last_flt = g_minflt;
            last_report_ops = ops;
            last_report_t = t;
            next_report += cfg_interval;
        }
        if (finished) break;
    }
    double run_time = now_s() - g_t0, run_user, run_sys;
    cpu_seconds(&run_user, &run_sys);
    long run_flt = g_minflt;

    atomic_store(&g_stop, 1);
    for (int i = 0; i < cfg_threads; i++)
        if (!join_within(g_workers[i].th, 60))
            fail_now("hang", "soak: worker %d did not stop within 60 s of the end\n", i);
    if (cfg_churn_ms >= 0 && !join_within(churn, 60))
        fail_now("hang", "soak: the churn threads did not stop within 60 s of the end\n");

    /* Final sweep: verify and free everything (from the main thread: every block's allocating
     * thread has exited by now). */
    uint64_t ops_total = total_ops();
    size_t live_end = live_bytes(), swept = 0;
    double sweep_t0 = now_s();
    struct ctx mc = {.id = -1, .pub = &g_churn_pub};
    for (int i = 0; i < cfg_threads; i++) {
        struct ctx *c = &g_workers[i].c;
        for (size_t k = 0; k < c->nslots; k++)
            if (c->slots[k].p) { free_blk(&mc, &c->slots[k], "before free (final sweep)", 0); swept++; }
    }
    for (int k = 0; k < XN; k++)
        if (atomic_load(&g_x[k].state) == X_FULL) { free_blk(&mc, &g_x[k].b, "before free (final sweep of the exchange)", 0); swept++; }
    merge_counts(&mc);
    ops_total += mc.ops;
    double sweep_secs = now_s() - sweep_t0;

    printf("soak: done after %.1fs: %llu allocator calls (%.0f/s), %llu threads started, %.1f MiB live at the end, "
           "%zu blocks verified and freed in the final sweep (%.2fs)\n",
           run_time, (unsigned long long)ops_total, (double)ops_total / run_time,
           (unsigned long long)atomic_load(&g_threads_started), mib((double)live_end), swept, sweep_secs);
    printf("soak: CPU during the run: user %.1fs sys %.1fs = %.2f us of CPU per allocator call, %.1f minor page faults "
           "per 1000 calls (cpu%% above = share of one core; ops/s depends on what else the machine runs)\n",
           run_user, run_sys, 1e6 * (run_user + run_sys) / (double)(ops_total - mc.ops),
           1000.0 * (double)run_flt / (double)(ops_total - mc.ops));
    printf("soak: calls:");
    for (int i = 0; i < N_COUNT; i++) printf(" %s=%llu", n_name[i], (unsigned long long)atomic_load(&g_totals[i]));
    printf("\n");
    char lf[256];
    lite_fields(lf, sizeof lf);
    printf("soak: after freeing everything: rss=%.1fMiB %s\n", rss_kib() / 1024.0, lf);
    double trim_t0 = now_s();
    malloc_trim(0);
    double trim_secs = now_s() - trim_t0;
    lite_fields(lf, sizeof lf);
    printf("soak: after malloc_trim(0) (%.2fs): rss=%.1fMiB %s\n", trim_secs, rss_kib() / 1024.0, lf);

    char why[256] = "";
    int flat = judge_rss(cfg_seconds, why, sizeof why);
    if (cfg_corrupt_after) {
        printf("soak: FAIL (corruption test flag set but nothing was detected)\n");
        return 1;
    }
    if (!flat) {
        printf("soak: FAIL (%s)\n", why);
        return 1;
    }
    printf("soak: PASS (no corruption; RSS flat after warm-up)\n");
    return 0;
}
