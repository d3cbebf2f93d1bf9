/*
 * remote_stranding: memory that one thread allocates and others free must come back to
 * use (and, past the retain limit, to the OS) whatever its owner does meanwhile, without
 * malloc_trim.  Four patterns, each the reproduction of a defect that lite-malloc had:
 *
 *  A. producer/consumer rounds: the producer allocates a batch of 64-byte blocks, the
 *     consumer frees half, the producer the other half; nothing is live at the end of a
 *     round.  RSS must stay flat (it grew by ~2 MB a round: the consumer took over full
 *     superblocks it never allocated from, and nobody collected what the producer then
 *     freed into them).
 *  B. exited owners: 4 threads allocate 16-112 B blocks and exit; 4 new threads free every
 *     block (half of each owner's blocks by one thread, half by another) and exit.  RSS
 *     must fall back under the retain limit, and bytes_in_use to what it was.
 *  C. an idle live owner: a thread allocates a working set and blocks on a barrier while
 *     two others free all of it.  RSS must fall and bytes_in_use must be exact while it
 *     still sleeps, and the memory must serve another thread's allocations.
 *  D. an idle freer: a thread frees the last blocks of a detached superblock and then
 *     sleeps; the blocks it holds back (its queue and outbox) must count as free at once
 *     (bytes_in_use exact while it sleeps) and reach the pools through other threads'
 *     ordinary allocation work.
 * Pointer arrays come from mmap, so they do not depend on the allocator under test.
 */
#include "check.h"

#include <pthread.h>
#include <sys/mman.h>

#define RETAIN ((long)LITE_MALLOC_RETAIN_MB * MiB) /* the default retain bound (lite-malloc.h) */

static void *map_array(size_t bytes)
{
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(p != MAP_FAILED, "mmap(%zu)", bytes);
    return p;
}

static long mib(size_t b) { return (long)(b >> 20); }

/* ---- A: producer/consumer rounds ------------------------------------------------------ */
enum { A_ROUNDS = 150, A_BATCH = 20000 };
static void **a_blocks;
static pthread_barrier_t a_bar;

static void *a_consumer(void *arg)
{
    (void)arg;
    void *volatile own = malloc(1000); /* a heap of its own, never a 64-byte block */
    CHECK(own != NULL, "malloc(1000)");
    for (int r = 0; r < A_ROUNDS; r++) {
        pthread_barrier_wait(&a_bar); /* batch ready */
        for (int i = 0; i < A_BATCH; i += 2) free(a_blocks[i]);
        pthread_barrier_wait(&a_bar); /* half freed */
    }
    free(own);
    return NULL;
}

static void pattern_a(void)
{
    a_blocks = map_array(A_BATCH * sizeof(void *));
    pthread_barrier_init(&a_bar, NULL, 2);
    pthread_t t;
    CHECK(pthread_create(&t, NULL, a_consumer, NULL) == 0, "pthread_create");
    size_t rss_early = 0;
    for (int r = 0; r < A_ROUNDS; r++) {
        for (int i = 0; i < A_BATCH; i++) {
            a_blocks[i] = malloc(64);
            CHECK(a_blocks[i] != NULL, "malloc(64)");
        }
        CHECK(lite_owns(a_blocks[0]), "malloc(64) = %p is not lite-malloc's", a_blocks[0]);
        pthread_barrier_wait(&a_bar);
        pthread_barrier_wait(&a_bar);
        for (int i = 1; i < A_BATCH; i += 2) free(a_blocks[i]);
        if (r == 10) rss_early = rss_bytes();
    }
    pthread_join(t, NULL);
    size_t rss_end = rss_bytes();
    note("A: RSS %ld MiB after 10 rounds, %ld MiB after %d", mib(rss_early), mib(rss_end), A_ROUNDS);
    CHECK(rss_end < rss_early + 16 * MiB, "A: RSS grew from %ld MiB to %ld MiB over %d rounds with nothing live",
          mib(rss_early), mib(rss_end), A_ROUNDS - 10);
    munmap(a_blocks, A_BATCH * sizeof(void *));
}

/* ---- B: exited owners, frees split between two other threads ----------------------------- */
enum { B_THREADS = 4 };
#define B_BYTES (96 * MiB) /* per owner */
#define B_MAX (B_BYTES / 16)
static void **b_set[B_THREADS];
static size_t b_count[B_THREADS];

static void *b_owner(void *arg)
{
    long k = (long)arg;
    uint64_t rng = 77 + (uint64_t)k;
    size_t bytes = 0, n = 0;
    while (bytes < B_BYTES && n < B_MAX) {
        size_t size = 16 + 16 * (size_t)rng_below(&rng, 7); /* 16..112 */
        void *p = malloc(size);
        CHECK(p != NULL, "malloc(%zu)", size);
        b_set[k][n++] = p;
        bytes += size;
    }
    b_count[k] = n;
    return NULL;
}

static void *b_freer(void *arg)
{
    long k = (long)arg, other = (k + 1) % B_THREADS;
    for (size_t i = 0; i < b_count[k] / 2; i++) free(b_set[k][i]);
    for (size_t i = b_count[other] / 2; i < b_count[other]; i++) free(b_set[other][i]);
    return NULL;
}

static void run_threads(void *(*fn)(void *), int n)
{
    pthread_t t[B_THREADS];
    for (long k = 0; k < n; k++) CHECK(pthread_create(&t[k], NULL, fn, (void *)k) == 0, "pthread_create");
    for (int k = 0; k < n; k++) pthread_join(t[k], NULL);
}

static void *nothing(void *arg) { return arg; }

static void pattern_b(void)
{
    size_t in_use0 = get_stats().bytes_in_use, rss0 = rss_bytes();
    for (int k = 0; k < B_THREADS; k++) b_set[k] = map_array(B_MAX * sizeof(void *));
    run_threads(b_owner, B_THREADS);
    CHECK(lite_owns(b_set[0][0]), "%s", "B: the blocks are not lite-malloc's");
    size_t rss_full = rss_bytes();
    run_threads(b_freer, B_THREADS);
    for (int k = 0; k < B_THREADS; k++) munmap(b_set[k], B_MAX * sizeof(void *));
    size_t rss_after = rss_bytes(), in_use = get_stats().bytes_in_use;
    note("B: RSS %ld MiB before, %ld MiB with %d x %ld MiB live, %ld MiB after all were freed; in use %zu -> %zu",
         mib(rss0), mib(rss_full), B_THREADS, mib(B_BYTES), mib(rss_after), in_use0, in_use);
    CHECK(rss_full > rss0 + B_THREADS * B_BYTES / 2, "B: RSS %ld MiB with the blocks live: were they touched?",
          mib(rss_full));
    CHECK(rss_after < rss0 + RETAIN + 32 * MiB, "B: RSS %ld MiB after every block was freed (start %ld MiB, retain %ld)",
          mib(rss_after), mib(rss0), mib(RETAIN));
    CHECK(in_use == in_use0, "B: bytes_in_use %zu after every block was freed, %zu before", in_use, in_use0);
}

/* ---- C: a live owner sleeps while others free its blocks ------------------------------- */
#define C_BYTES (128 * MiB)
#define C_N (C_BYTES / 64)
static void **c_blocks;
static pthread_barrier_t c_allocated, c_done;

static void *c_owner(void *arg)
{
    (void)arg;
    for (size_t i = 0; i < C_N; i++) {
        c_blocks[i] = malloc(64);
        CHECK(c_blocks[i] != NULL, "malloc(64)");
        memset(c_blocks[i], 1, 64);
    }
    pthread_barrier_wait(&c_allocated);
    pthread_barrier_wait(&c_done); /* sleeps until the main thread has checked */
    return NULL;
}

static void *c_freer(void *arg)
{
    long k = (long)arg;
    for (size_t i = (size_t)k; i < C_N; i += 2) free(c_blocks[i]);
    return NULL;
}

static void pattern_c(void)
{
    c_blocks = map_array(C_N * sizeof(void *));
    pthread_barrier_init(&c_allocated, NULL, 2);
    pthread_barrier_init(&c_done, NULL, 2);
    size_t in_use0 = get_stats().bytes_in_use, rss0 = rss_bytes();
    pthread_t owner;
    CHECK(pthread_create(&owner, NULL, c_owner, NULL) == 0, "pthread_create");
    pthread_barrier_wait(&c_allocated);
    CHECK(lite_owns(c_blocks[C_N / 2]), "%s", "C: the blocks are not lite-malloc's");
    size_t in_use_full = get_stats().bytes_in_use;
    run_threads(c_freer, 2);
    munmap(c_blocks, C_N * sizeof(void *));
    size_t rss_after = rss_bytes(), in_use = get_stats().bytes_in_use;
    note("C: owner asleep; in use %zu -> %zu -> %zu, RSS %ld -> %ld MiB", in_use0, in_use_full, in_use, mib(rss0),
         mib(rss_after));
    CHECK(in_use_full >= in_use0 + C_BYTES, "C: bytes_in_use %zu with %ld MiB live", in_use_full, mib(C_BYTES));
    /* The owner keeps one superblock of the class (256 KiB) it allocates from. */
    CHECK(in_use <= in_use0 + 256 * KiB, "C: bytes_in_use %zu after the others freed everything (start %zu)", in_use,
          in_use0);
    CHECK(rss_after < rss0 + RETAIN + 32 * MiB, "C: RSS %ld MiB with the owner asleep after all was freed (start %ld)",
          mib(rss_after), mib(rss0));
    /* The freed memory serves this thread: allocating as much again does not grow RSS by it. */
    void **again = map_array(C_N * sizeof(void *));
    for (size_t i = 0; i < C_N; i++) {
        again[i] = malloc(64);
        CHECK(again[i] != NULL, "malloc(64)");
        memset(again[i], 2, 64);
    }
    size_t rss_again = rss_bytes();
    note("C: RSS %ld MiB after allocating %ld MiB again", mib(rss_again), mib(C_BYTES));
    CHECK(rss_again < rss0 + C_BYTES + RETAIN + 32 * MiB, "C: RSS %ld MiB: the freed memory was not reused",
          mib(rss_again));
    for (size_t i = 0; i < C_N; i++) free(again[i]);
    munmap(again, C_N * sizeof(void *));
    pthread_barrier_wait(&c_done);
    pthread_join(owner, NULL);
}

/* ---- D: the freeing thread goes idle holding blocks back ------------------------------ */
static void **d_blocks;
static size_t d_n;
static pthread_barrier_t d_ready, d_go, d_freed, d_done;

static void *d_freer(void *arg)
{
    (void)arg;
    /* A heap of its own (a thread without one holds nothing back); volatile, or the
     * compiler drops the malloc/free pair. */
    void *volatile own = malloc(1000);
    pthread_barrier_wait(&d_ready);
    pthread_barrier_wait(&d_go); /* the main thread has taken bytes_in_use */
    for (size_t i = 0; i < d_n; i++) free(d_blocks[i]);
    pthread_barrier_wait(&d_freed);
    pthread_barrier_wait(&d_done); /* idle until the main thread has checked */
    free(own);
    return NULL;
}

/* Ordinary work in other size classes: every superblock change looks at one heap.  (A
 * thread of its own, which sends its own outbox when it exits.) */
static void *d_worker(void *arg)
{
    for (int round = 0; round < 64; round++) {
        enum { N = 2000 };
        static void *tmp[N];
        for (int i = 0; i < N; i++) tmp[i] = malloc(16 + 16 * (size_t)(round % 24));
        for (int i = 0; i < N; i++) free(tmp[i]);
    }
    return arg;
}

static void pattern_d(void)
{
    /* 64-byte blocks: more than four superblocks' worth, so the first ones detach full;
     * the freer gives back the first 15990, emptying at least three of them.  Their last
     * blocks sit in its outbox (batches of up to 64) when it goes idle. */
    d_n = 15990; /* not a multiple of the batch size */
    d_blocks = map_array(20000 * sizeof(void *));
    for (size_t i = 0; i < 20000; i++) CHECK((d_blocks[i] = malloc(64)) != NULL, "malloc(64)");
    pthread_barrier_init(&d_ready, NULL, 2);
    pthread_barrier_init(&d_go, NULL, 2);
    pthread_barrier_init(&d_freed, NULL, 2);
    pthread_barrier_init(&d_done, NULL, 2);
    pthread_t t;
    CHECK(pthread_create(&t, NULL, d_freer, NULL) == 0, "pthread_create");
    pthread_barrier_wait(&d_ready);
    size_t in_use_live = get_stats().bytes_in_use;
    pthread_barrier_wait(&d_go);
    pthread_barrier_wait(&d_freed);
    struct lite_malloc_stats held = get_stats();
    size_t pending1 = held.bytes_pending;
    note("D: bytes_in_use %zu with all live, %zu after the freer freed %zu x 64 B (%zu held back)", in_use_live,
         held.bytes_in_use, d_n, pending1);
    /* What the freer holds back was freed: the figure is exact while it sleeps. */
    CHECK(held.bytes_in_use == in_use_live - d_n * 64, "D: bytes_in_use %zu, want %zu (%zu before %zu frees)",
          held.bytes_in_use, in_use_live - d_n * 64, in_use_live, d_n);
    run_threads(d_worker, 1);
    size_t pending2 = get_stats().bytes_pending;
    note("D: %zu bytes held back by the idle freer, %zu after other threads' work", pending1, pending2);
    CHECK(pending1 > 0, "D: the freer holds nothing back (%zu): the test shows nothing", pending1);
    CHECK(pending2 == 0, "D: %zu bytes still held back by the idle thread after other threads' work", pending2);
    pthread_barrier_wait(&d_done);
    pthread_join(t, NULL);
    for (size_t i = d_n; i < 20000; i++) free(d_blocks[i]);
    munmap(d_blocks, 20000 * sizeof(void *));
}

int main(void)
{
    watchdog(240);
    const char *retain = getenv("LITE_MALLOC_RETAIN_MB");
    CHECK(!retain, "run with the default retain limit (LITE_MALLOC_RETAIN_MB=%s set)", retain);
    /* glibc keeps a small block for each thread stack it caches: have those made first,
     * so that bytes_in_use compares like with like. */
    run_threads(nothing, B_THREADS);
    void *probe = malloc(32);
    CHECK(lite_owns(probe), "malloc(32) = %p is not lite-malloc's", probe);
    free(probe);
    pattern_a();
    pattern_b();
    pattern_c();
    pattern_d();
    return 0;
}
