/*
 * claim_race: the owner of an outbox and the threads that claim it, racing.
 *
 * Freer threads free blocks a producer thread allocated, so their outboxes fill with
 * them, and pause at random so that they look idle.  Churner threads use up superblocks
 * all the time; at each superblock change a heap looks at another, idle one and gives
 * what it holds back on its owner's behalf (held_claim).  An owner entering its outbox
 * and a claimer must never be inside it at once (held_enter: an exchange, or a plain
 * store and the claimer's membarrier).  If they were, a batch would be given back twice
 * or lost: a block given back twice is handed out again while still live, which shows as
 * a live block whose pattern changed under the freer checking it; a lost one shows in
 * bytes_in_use at the end.
 */
#include "check.h"

#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

enum { FREERS = 4, CHURNERS = 2, ROUNDS = 1000, BLOCKS = 4096 };

static char *block[BLOCKS];
static size_t size_of_block[BLOCKS];
static uint64_t seed_of_block[BLOCKS];
static pthread_barrier_t filled, emptied;
static atomic_int stop;
static atomic_long claims_seen; /* rounds in which a freer slept (its outbox was claimable) */

static void *producer(void *arg)
{
    (void)arg;
    uint64_t rng = 1;
    for (int r = 0; r < ROUNDS; r++) {
        for (int i = 0; i < BLOCKS; i++) {
            size_t n = 16 + rng_below(&rng, 241);
            block[i] = malloc(n);
            CHECK(block[i] != NULL, "malloc(%zu)", n);
            size_of_block[i] = n;
            seed_of_block[i] = (uint64_t)r << 32 | (uint64_t)i;
            fill_pattern(block[i], n, seed_of_block[i]);
        }
        pthread_barrier_wait(&filled);
        pthread_barrier_wait(&emptied);
    }
    return NULL;
}

static void *freer(void *arg)
{
    int k = (int)(intptr_t)arg;
    uint64_t rng = 100 + (uint64_t)k;
    for (int r = 0; r < ROUNDS; r++) {
        pthread_barrier_wait(&filled);
        for (int i = k; i < BLOCKS; i += FREERS) {
            size_t bad = check_pattern(block[i], size_of_block[i], seed_of_block[i]);
            CHECK(bad == (size_t)-1, "round %d: live block %p (%zu bytes) changed at byte %zu: handed "
                  "out twice", r, (void *)block[i], size_of_block[i], bad);
            free(block[i]);
            if (i % 256 == k && rng_below(&rng, 4) == 0) { /* idle for a moment, outbox full */
                struct timespec ts = {0, (long)(20000 + rng_below(&rng, 200000))};
                nanosleep(&ts, NULL);
                atomic_fetch_add(&claims_seen, 1);
            }
        }
        pthread_barrier_wait(&emptied);
    }
    return NULL;
}

static void *churner(void *arg)
{
    uint64_t rng = 1000 + (uint64_t)(intptr_t)arg;
    enum { N = 2048 };
    static _Thread_local void *v[N];
    while (!atomic_load(&stop)) {
        size_t n = 16 + 16 * rng_below(&rng, 64); /* 16 .. 1024: used up superblocks, often */
        for (int i = 0; i < N; i++) CHECK((v[i] = malloc(n)) != NULL, "churner malloc(%zu)", n);
        for (int i = 0; i < N; i++) free(v[i]);
    }
    return NULL;
}

int main(void)
{
    watchdog(240);
    void *probe = malloc(64);
    expect_lite(probe, "malloc(64)");
    free(probe);
    size_t in_use_before = get_stats().bytes_in_use;

    pthread_barrier_init(&filled, NULL, 1 + FREERS);
    pthread_barrier_init(&emptied, NULL, 1 + FREERS);
    pthread_t p, f[FREERS], c[CHURNERS];
    for (int i = 0; i < CHURNERS; i++) pthread_create(&c[i], NULL, churner, (void *)(intptr_t)i);
    pthread_create(&p, NULL, producer, NULL);
    for (int i = 0; i < FREERS; i++) pthread_create(&f[i], NULL, freer, (void *)(intptr_t)i);
    pthread_join(p, NULL);
    for (int i = 0; i < FREERS; i++) pthread_join(f[i], NULL);
    atomic_store(&stop, 1);
    for (int i = 0; i < CHURNERS; i++) pthread_join(c[i], NULL);

    size_t in_use_after = get_stats().bytes_in_use;
    printf("%d rounds of %d blocks, %ld idle pauses with a full outbox; bytes in use %zu -> %zu\n",
           ROUNDS, BLOCKS, atomic_load(&claims_seen), in_use_before, in_use_after);
    CHECK(in_use_after <= in_use_before + 64 * KiB, "bytes in use %zu -> %zu after every thread exited: "
          "blocks given back were lost", in_use_before, in_use_after);
    printf("claim_race: all checks passed\n");
    return 0;
}
