/*
 * dormant_heaps: a thread's heap, handed back at its exit, keeps what it owns for the next
 * thread (it is dormant), but never for long and never against the others' needs:
 *  1. one thread allocates, frees some of its blocks, keeps others live and exits: its
 *     heap is dormant (lite_stats_json's heaps_dormant), and the next thread takes it
 *     whole: its first block of the class comes from the superblock the first one used;
 *  2. 12 threads exit at once: at most 4 heaps stay dormant (the rest let go);
 *  3. blocks of dormant heaps freed by another thread: bytes_in_use exact at once; and
 *     once the heaps have been dormant for the decay delay (decay_ms: a minute, then 0),
 *     the other threads' ordinary work (superblock changes) lets them go, so that their
 *     superblocks, empty now, go back to the slot store (lite_stats' superblocks back
 *     near where they were) without malloc_trim; not before the delay;
 *  4. malloc_trim lets every dormant heap go;
 *  5. memory exhausted: in a child under RLIMIT_AS, with 4 dormant heaps each owning an
 *     empty superblock of each of 40 classes (80 MiB of slots, committed), a program
 *     that needs those slots for 1 MiB blocks, or for 1000-byte blocks, gets them: the
 *     allocator lets the dormant heaps go before it reports ENOMEM (not under
 *     ThreadSanitizer: it forks a threaded process and starts threads in the child);
 *  6. the option dormant_heaps 0: a thread's exit lets go of everything at once;
 *  7. a heap too big to stay dormant: a thread that filled 12 superblocks (one per class)
 *     about half-way (3 MiB of pages, all resident; the bound is 2 MiB) and freed
 *     everything is let go at its exit.
 * Pointer arrays come from mmap, so they do not depend on the allocator under test.
 */
#include "check.h"

#include <pthread.h>
#include <sys/mman.h>
#include <sys/wait.h>

enum { MOST_DORMANT = 4, MANY = 12, PER = 2000, SIZE = 48, CLASSES = 40 };

static long dormant(void)
{
    static char buf[1 << 16];
    lite_stats_json(buf, sizeof buf);
    return (long)json_number(buf, "\"heaps_dormant\":");
}

static void *map_array(size_t bytes)
{
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(p != MAP_FAILED, "mmap(%zu)", bytes);
    return p;
}

/* Runs n threads of fn at once; fn waits on `kept` (all n of them) before it returns. */
static pthread_barrier_t kept;
static void run_threads(void *(*fn)(void *), int n, void **args)
{
    pthread_barrier_init(&kept, NULL, (unsigned)n);
    pthread_t t[64];
    for (int i = 0; i < n; i++) CHECK(pthread_create(&t[i], NULL, fn, args ? args[i] : NULL) == 0, "pthread_create");
    for (int i = 0; i < n; i++) pthread_join(t[i], NULL);
    pthread_barrier_destroy(&kept);
}

static uintptr_t slot(const void *p) { return (uintptr_t)p & ~(uintptr_t)(512 * 1024 - 1); }

/* Allocates PER blocks of SIZE into arg (a pointer array), frees every other one, and
 * exits with the rest live, once every keeper started with it has done the same (so
 * that each has a heap of its own). */
static void *keeper(void *arg)
{
    void **mine = arg;
    for (int i = 0; i < PER; i++) {
        mine[i] = malloc(SIZE);
        CHECK(mine[i] != NULL, "malloc(%d)", SIZE);
        memset(mine[i], 7, SIZE);
    }
    for (int i = 0; i < PER; i += 2) free(mine[i]), mine[i] = NULL;
    pthread_barrier_wait(&kept);
    return NULL;
}

static void *first_block;
static void *taker(void *arg)
{
    (void)arg;
    first_block = malloc(SIZE);
    CHECK(dormant() == 0, "a thread running on the only dormant heap: heaps_dormant %ld", dormant());
    free(first_block);
    pthread_barrier_wait(&kept);
    return NULL;
}

/* Part 7: about 256 KiB of blocks of each of 12 classes, all freed before the exit. */
static void *big_heap(void *arg)
{
    (void)arg;
    enum { N = 4096 };
    static void *v[N];
    for (int c = 0; c < 12; c++) {
        size_t size = 64 + (size_t)c * 64, n = (256 << 10) / size;
        for (size_t i = 0; i < n; i++) {
            CHECK((v[i] = malloc(size)) != NULL, "malloc");
            memset(v[i], 3, size);
        }
        for (size_t i = 0; i < n; i++) free(v[i]);
    }
    pthread_barrier_wait(&kept);
    return NULL;
}

/* Part 3's ordinary work: fill and empty superblocks of one class, again and again. */
static void superblock_changes(int rounds)
{
    enum { N = 12000 };
    void **v = map_array(N * sizeof(void *));
    for (int r = 0; r < rounds && dormant() > 0; r++) {
        for (int i = 0; i < N; i++) CHECK((v[i] = malloc(64 + 16 * (r % 8))) != NULL, "malloc");
        for (int i = 0; i < N; i++) free(v[i]);
    }
    munmap(v, N * sizeof(void *));
}

/* Part 5: one block of each of 40 classes, freed at once (empty superblocks, owned);
 * the threads wait for each other, so that each has a heap of its own. */
static void *sampler(void *arg)
{
    (void)arg;
    for (int c = 0; c < CLASSES; c++) {
        void *p = malloc(16 + (size_t)c * 96);
        CHECK(p != NULL, "malloc");
        memset(p, 1, 16);
        free(p);
    }
    pthread_barrier_wait(&kept);
    return NULL;
}

/* size: 1 MiB (large blocks) or 1000 B (small blocks, from the main thread's heap) */
static void exhausted_child(size_t size)
{
    run_threads(sampler, MOST_DORMANT, NULL);
    long d = dormant();
    struct lite_malloc_stats st = get_stats();
    note("5: %ld dormant heaps, %zu superblocks in use", d, st.superblocks);
    CHECK(d >= 2, "5: only %ld dormant heaps", d);
    /* Room for the blocks only if the dormant heaps' slots come back. */
    size_t want = (size_t)d * CLASSES / 2 * 512 * 1024;
    /* (lite-malloc counts against the limit what it has made read-write, not what it
     * only reserved) */
    struct rlimit lim = {vm_bytes() - st.bytes_reserved + want / 2, RLIM_INFINITY};
    lim.rlim_max = lim.rlim_cur;
    CHECK(setrlimit(RLIMIT_AS, &lim) == 0, "setrlimit");
    size_t got = 0;
    size_t most = want / size + 1;
    void **blocks = map_array(most * sizeof(void *));
    size_t n = 0;
    while (got < want && n < most) {
        void *p = malloc(size);
        if (!p) break;
        memset(p, 2, size);
        blocks[n++] = p;
        got += size;
    }
    note("5: %zu of %zu MiB as %zu-byte blocks under RLIMIT_AS; %ld dormant heaps left", got >> 20, want >> 20, size,
         dormant());
    CHECK(got >= want, "5: %zu MiB of %zu-byte blocks, %zu MiB wanted: the dormant heaps' slots never came back",
          got >> 20, size, want >> 20);
    for (size_t i = 0; i < n; i++) free(blocks[i]);
    _exit(check_failures ? 1 : 0);
}

int main(void)
{
    CHECK(dormant() == 0, "%ld dormant heaps before any thread exited", dormant());

    /* 1 */
    void **one = map_array(PER * sizeof(void *));
    void *args[MANY];
    args[0] = one;
    run_threads(keeper, 1, args);
    CHECK(dormant() == 1, "1: %ld dormant heaps after one thread exited", dormant());
    run_threads(taker, 1, NULL);
    CHECK(slot(first_block) == slot(one[1]), "1: the next thread's block %p is not in the exited thread's superblock (%p)",
          first_block, one[1]);
    CHECK(dormant() == 1, "1: %ld dormant heaps after the second thread exited", dormant());

    /* 2 */
    size_t superblocks0 = get_stats().superblocks;
    void **many = map_array(MANY * PER * sizeof(void *));
    for (int i = 0; i < MANY; i++) args[i] = many + i * PER;
    run_threads(keeper, MANY, args);
    size_t in_use0 = get_stats().bytes_in_use;
    long d = dormant();
    note("2: %d threads exited, %ld dormant heaps; %zu superblocks in use", MANY, d, get_stats().superblocks);
    CHECK(d >= 1 && d <= MOST_DORMANT, "2: %ld dormant heaps after %d threads exited (at most %d)", d, MANY, MOST_DORMANT);

    /* 3 */
    for (int i = 0; i < MANY * PER; i++) free(many[i]);
    for (int i = 0; i < PER; i++) free(one[i]);
    size_t in_use = get_stats().bytes_in_use;
    size_t freed = (size_t)(MANY + 1) * (PER / 2) * SIZE;
    CHECK(in_use == in_use0 - freed, "3: bytes_in_use %zu after %zu bytes were freed, %zu before", in_use, freed,
          in_use0);
    CHECK(lite_option_set("decay_ms", 60000) == 0, "lite_option_set(decay_ms)");
    long before = dormant();
    superblock_changes(50);
    CHECK(dormant() == before, "3: %ld dormant heaps after 50 rounds of superblock changes, %ld before: let go before "
          "the decay delay", dormant(), before);
    CHECK(lite_option_set("decay_ms", 0) == 0, "lite_option_set(decay_ms)"); /* (the delay has passed) */
    superblock_changes(400);
    CHECK(lite_option_set("decay_ms", 1000) == 0, "lite_option_set(decay_ms)");
    struct lite_malloc_stats st = get_stats();
    note("3: %ld dormant heaps after the main thread's superblock changes; superblocks %zu (%zu before)", dormant(),
         st.superblocks, superblocks0);
    CHECK(dormant() == 0, "3: %ld heaps still dormant after 400 rounds of superblock changes", dormant());
    CHECK(st.superblocks <= superblocks0 + 10, /* the main thread's own 8, and 2 for what it holds back */ "3: %zu superblocks in use, %zu before the threads", st.superblocks,
          superblocks0);

    /* 4 */
    run_threads(keeper, 1, args);
    CHECK(dormant() == 1, "4: %ld dormant heaps after one thread exited", dormant());
    malloc_trim(0);
    CHECK(dormant() == 0, "4: %ld dormant heaps after malloc_trim", dormant());
    for (int i = 0; i < PER; i++) free(many[i]);

    /* 5 */
    for (int k = 0; k < 2 && !UNDER_TSAN; k++) {
        pid_t pid = fork();
        CHECK(pid >= 0, "fork");
        if (pid == 0) exhausted_child(k ? 1000 : 1 << 20);
        int status;
        CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "5: the child failed (%d)", status);
    }

    /* 6 */
    CHECK(lite_option_set("dormant_heaps", 0) == 0, "lite_option_set(dormant_heaps, 0)");
    run_threads(keeper, 1, args);
    CHECK(dormant() == 0, "6: %ld dormant heaps with dormant_heaps 0", dormant());
    for (int i = 0; i < PER; i++) free(many[i]);
    CHECK(lite_option_set("dormant_heaps", MOST_DORMANT) == 0, "lite_option_set(dormant_heaps)");

    /* 7 */
    malloc_trim(0);
    run_threads(big_heap, 1, NULL);
    CHECK(dormant() == 0, "7: %ld dormant heaps after a thread with 3 MiB in its superblocks exited", dormant());
    return check_failures ? 1 : 0;
}
