/* Positive control for tsan_units.sh, built exactly like the unit tests (forced include of
 * tsan_prefix.h, lite-malloc.cpp compiled in): two threads write the same word of a block
 * from lite_malloc (through the malloc macro) without synchronisation.  ThreadSanitizer must
 * report the race, which also shows it watches memory lite-malloc hands out. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

static long *shared;

static void *writer(void *arg)
{
    for (int i = 0; i < 1000; i++) shared[1] += (long)(size_t)arg;
    return NULL;
}

int main(void)
{
    shared = malloc(64);
    if (!shared || !lite_owns(shared)) return 2;
    pthread_t a, b;
    pthread_create(&a, NULL, writer, (void *)1);
    pthread_create(&b, NULL, writer, (void *)2);
    pthread_join(a, NULL);
    pthread_join(b, NULL);
    printf("%ld\n", shared[1]);
    free(shared);
    return 0;
}
