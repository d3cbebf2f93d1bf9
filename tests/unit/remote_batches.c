/*
 * remote_batches: frees into superblocks the freeing thread does not own go back in
 * batches, one CAS per batch, even when they are scattered over several superblocks of
 * one class in random order (a working set larger than a superblock, freed as a server
 * frees its long-lived objects).
 *
 * A thread allocates 32,768 blocks of 64 bytes (2 MiB: at least four superblocks) and
 * exits, so that every one of them is detached.  Another thread frees them all in random
 * order and gives back what it holds (lite_trim).  The statistics' batches_sent and
 * blocks_sent (engines.small in the JSON) must have counted every block, in batches of 16
 * blocks or more on average: with one outbox bin per size class, as lite-malloc had,
 * almost every free found the slot holding another superblock's blocks, and the average
 * batch was about 1.3 blocks.  And once the other thread has freed them all, before
 * anything is given back on purpose, the superblocks they filled must be back in the slot
 * store: a bin holding the last blocks of a detached superblock is sent at once.  (The
 * thread then frees 4 blocks of another class, the main thread's, which take the places
 * of the queue, the last 4 blocks a thread freed into superblocks it does not own, not
 * looked at yet: what may stay is one of the thread's own (it may have taken the exited
 * thread's heap whole, dormant, with its last superblock) and one for the C library's
 * own blocks (pthread_create's), so lite_stats' superblocks may be at most two above
 * what it was before the blocks were made.)  (With
 * bins by superblock and no such rule, the partial bins kept four or five superblocks
 * from emptying until the thread's next sweep, claim or exit: unit/thread_churn's main
 * thread, which only frees, failed its bound on superblocks in use.)  Then a thread
 * whose own superblocks of a class it frees into at random: batches as well (the freeing
 * thread owns one of them at most).
 * The pointer array comes from mmap, so it does not depend on the allocator under test.
 */
#include "check.h"

#include <pthread.h>
#include <sys/mman.h>

enum { N = 32768, SIZE = 64, QUEUE = 4, OTHER_SIZE = 256 };
static void **blocks;
static void *others[QUEUE]; /* blocks of another class, freed last */
static size_t superblocks_before; /* lite_stats' superblocks before the blocks were made */

static void sent(unsigned long *batches, unsigned long *nblocks)
{
    static char buf[1 << 16];
    size_t len = lite_stats_json(buf, sizeof buf);
    CHECK(len > 0 && len < sizeof buf, "lite_stats_json: %zu bytes", len);
    *batches = json_number(buf, "\"batches_sent\":");
    *nblocks = json_number(buf, "\"blocks_sent\":");
}

static void *allocate(void *arg)
{
    (void)arg;
    for (int i = 0; i < N; i++) {
        blocks[i] = malloc(SIZE);
        CHECK(blocks[i], "malloc(%d)", SIZE);
        memset(blocks[i], 0x5a, SIZE);
    }
    expect_lite(blocks[0], "a 64-byte block");
    return NULL;
}

/* The blocks freed last are the main thread's: another heap's for the freeing thread,
 * whichever heap that thread runs on (it may take the exited thread's whole: dormancy). */
static void make_others(void)
{
    for (int i = 0; i < QUEUE; i++) CHECK((others[i] = malloc(OTHER_SIZE)), "malloc(%d)", OTHER_SIZE);
}

static void shuffle(uint64_t seed)
{
    rng_t rng = rng_seed(seed);
    for (int i = N - 1; i > 0; i--) {
        int j = (int)rng_below(&rng, (uint64_t)i + 1);
        void *t = blocks[i];
        blocks[i] = blocks[j];
        blocks[j] = t;
    }
}

/* Free every block in random order, give back what this thread holds, and check what the
 * outboxes sent meanwhile. */
static void free_all_checked(const char *what, unsigned long least_blocks, int emptied)
{
    unsigned long b0, n0, b1, n1;
    sent(&b0, &n0);
    for (int i = 0; i < N; i++) free(blocks[i]);
    for (int i = 0; i < QUEUE; i++) free(others[i]);
    if (emptied) {
        struct lite_malloc_stats st;
        lite_stats(&st);
        note("%s: %zu superblocks in use before the blocks were made, %zu once they are freed", what,
             superblocks_before, st.superblocks);
        CHECK(st.superblocks <= superblocks_before + 2,
              "%s: %zu superblocks in use after every block was freed, %zu before they were made: "
              "the freeing thread's outbox keeps emptied superblocks from the slot store",
              what, st.superblocks, superblocks_before);
    }
    lite_trim(0);
    sent(&b1, &n1);
    unsigned long batches = b1 - b0, nblocks = n1 - n0;
    note("%s: %lu blocks sent in %lu batches (%.1f a batch)", what, nblocks, batches,
         batches ? (double)nblocks / (double)batches : 0.0);
    CHECK(nblocks >= least_blocks, "%s: the outboxes sent %lu blocks, expected at least %lu", what, nblocks,
          least_blocks);
    CHECK(batches > 0 && nblocks >= 16 * batches, "%s: %lu blocks in %lu batches: the remote frees were not batched",
          what, nblocks, batches);
    struct lite_malloc_stats st;
    lite_stats(&st);
    CHECK(st.bytes_pending == 0, "%s: %zu bytes still pending after lite_trim", what, st.bytes_pending);
}

static void *free_others(void *arg)
{
    (void)arg;
    /* (all but those of one superblock at most: this thread may have taken the exited
     * one's heap whole, with its last superblock) */
    free_all_checked("another thread's blocks", 3 * N / 4, 1);
    return NULL;
}

static void *free_own(void *arg)
{
    (void)arg;
    allocate(NULL);
    shuffle(2);
    /* At most one superblock of the class is this heap's: the rest (three quarters of
     * the blocks, at least) go through the outbox. */
    free_all_checked("this thread's own blocks", N / 2, 0);
    return NULL;
}

int main(void)
{
    watchdog(120);
    long v;
    CHECK(lite_option_get("outbox_blocks", &v) == 0, "lite_option_get(outbox_blocks)");
    if (v < 16) CHECK(lite_option_set("outbox_blocks", 64) == 0, "lite_option_set(outbox_blocks, 64)");
    blocks = mmap(NULL, N * sizeof *blocks, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(blocks != MAP_FAILED, "mmap");

    make_others(); /* (their superblock counts in the figure before) */
    struct lite_malloc_stats st;
    lite_stats(&st);
    superblocks_before = st.superblocks;
    pthread_t t;
    CHECK(pthread_create(&t, NULL, allocate, NULL) == 0, "pthread_create");
    pthread_join(t, NULL);
    shuffle(1);
    CHECK(pthread_create(&t, NULL, free_others, NULL) == 0, "pthread_create");
    pthread_join(t, NULL);

    make_others();
    CHECK(pthread_create(&t, NULL, free_own, NULL) == 0, "pthread_create");
    pthread_join(t, NULL);
    printf("PASS\n");
    return 0;
}
