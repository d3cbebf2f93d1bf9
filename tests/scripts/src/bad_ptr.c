/*
 * Misuse cases for bad_pointer.sh.  argv[1] picks one; the program prints "PTR 0x..." (the
 * pointer it is about to misuse) on stdout, flushes, then misuses it.  If it survives it
 * prints "SURVIVED" and exits 0; the script decides whether that is right.
 *   stack      free() of a stack address
 *   interior1  free() of p+1, p a 64-byte block
 *   interior8  free() of p+8, p a 64-byte block
 *   double     free(p) twice in a row, p a 32-byte block
 *   double8    free(p) twice in a row, p an 8-byte block
 *   double_med free(p) twice, p a 20000-byte block
 *   double_big free(p) twice, p a 4 MiB block
 *   double_later  free(a), free(b), free(a): the block is no longer the last one freed
 *   double_many   100 blocks freed, then one of the middle ones again
 *   double_remote a block freed by one thread, then again by another (the remote path)
 *   double_queued a block freed twice in a row by a thread that does not own it (the
 *                 second free finds the first still in the thread's queue, not checked yet)
 *   realloc_stack  realloc() of a stack address
 *   header     free() of an address inside the header of a 64-byte block's superblock (its
 *              remote word, 64 bytes in; superblocks are 512 KiB, aligned to their size, and
 *              a small superblock's header is coloured: 4224 * (slot number % 8) bytes
 *              into its slot)
 *   unhanded   free() of a 64-byte-grid address 64 KiB past a fresh 64-byte block: inside
 *              its superblock, never handed out
 *   head_unhanded  free() of the first address a head block of 1024 bytes would have (the
 *              slot's start + 128), in a superblock of colour 1 or more whose blocks above
 *              the header are not all handed out: nothing there is handed out yet
 *   head_double  free(p) twice, p a 1024-byte block in the head (below the header, handed
 *              out once every block above it is)
 *   realloc_freed  realloc() of a 48-byte block freed already (it would be handed out twice)
 *   foreign    free() of a __libc_malloc() block (then realloc() of another one)
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>

static void *free_it(void *p) { free(p); return NULL; }
static void *free_it_twice(void *p) { free(p); free(p); return NULL; }
static void free_in_thread(void *p) {
    pthread_t t;
    if (pthread_create(&t, NULL, free_it, p) != 0) exit(3);
    pthread_join(t, NULL);
}

extern void *__libc_malloc(size_t);

static void show(const void *p) {
    printf("PTR %p\n", p);
    fflush(stdout);
}

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    const char *m = argv[1];
    volatile char stack_buf[64];
    stack_buf[0] = 1;
    if (!strcmp(m, "stack")) {
        void *p = (void *)&stack_buf[16];
        show(p);
        free(p);
    } else if (!strcmp(m, "interior1") || !strcmp(m, "interior8")) {
        char *p = malloc(64);
        memset(p, 1, 64);
        char *q = p + (m[8] == '1' ? 1 : 8);
        show(q);
        free(q);
    } else if (!strcmp(m, "double_later")) {
        char *a = malloc(48), *b = malloc(48);
        memset(a, 1, 48);
        memset(b, 2, 48);
        show(a);
        free(a);
        free(b);
        free(a);
    } else if (!strcmp(m, "double_many")) {
        char *v[100];
        for (int i = 0; i < 100; i++) memset(v[i] = malloc(80), i, 80);
        for (int i = 0; i < 100; i++) free(v[i]);
        show(v[37]);
        free(v[37]);
    } else if (!strcmp(m, "double_remote")) {
        char *p = malloc(64), *keep = malloc(64);  /* keep: the superblock stays in use */
        memset(p, 1, 64);
        show(p);
        free_in_thread(p);
        free_in_thread(p);
        free(keep);
    } else if (!strcmp(m, "double_queued")) {
        char *p = malloc(64), *keep = malloc(64);
        memset(p, 1, 64);
        show(p);
        pthread_t t;
        if (pthread_create(&t, NULL, free_it_twice, p) != 0) exit(3);
        pthread_join(t, NULL);
        free(keep);
    } else if (!strncmp(m, "double", 6)) {
        size_t n = !strcmp(m, "double") ? 32 : !strcmp(m, "double8") ? 8
                 : !strcmp(m, "double_med") ? 20000 : 4u << 20;
        char *p = malloc(n);
        memset(p, 1, n);
        show(p);
        free(p);
        free(p);
    } else if (!strcmp(m, "realloc_stack")) {
        void *p = (void *)&stack_buf[0];
        show(p);
        p = realloc(p, 100);
        printf("realloc returned %p\n", p);
    } else if (!strcmp(m, "header") || !strcmp(m, "unhanded")) {
        char *p = malloc(64);
        memset(p, 1, 64);
        uintptr_t slot = (uintptr_t)p & ~(uintptr_t)((512 << 10) - 1);
        uintptr_t header = slot + 4224 * ((slot >> 19) % 8);
        char *q = m[0] == 'h' ? (char *)(header + 64) : p + (64 << 10);
        show(q);
        free(q);
        char *r = malloc(64); /* had the free been taken, r would be q */
        printf("malloc after the bad free: %p\n", (void *)r);
    } else if (!strcmp(m, "head_unhanded") || !strcmp(m, "head_double")) {
        /* 1024-byte blocks until one is in a slot of colour 1 or more, under its header
         * (head_double) or the first of such a slot (head_unhanded) */
        enum { SLOT = 512 << 10 };
        char *p = NULL;
        for (int i = 0; i < 8 * (SLOT / 1024) && !p; i++) {
            char *b = malloc(1024);
            uintptr_t slot = (uintptr_t)b & ~(uintptr_t)(SLOT - 1), colour = (slot / SLOT) % 8;
            if (!colour) continue;
            if (m[5] == 'u') p = (char *)slot + 128;
            else if ((uintptr_t)b < slot + colour * 4224) p = b;
        }
        if (!p) return 3;
        show(p);
        free(p);
        if (m[5] == 'd') free(p);
        char *r = malloc(1024); /* had the free been taken, r might be p */
        printf("malloc after the bad free: %p\n", (void *)r);
    } else if (!strcmp(m, "realloc_freed")) {
        char *p = malloc(48), *keep = malloc(48);
        memset(p, 1, 48);
        show(p);
        free(p);
        p = realloc(p, 40);
        char *q = malloc(48);
        printf("realloc returned %p, then malloc %p\n", p, q);
        free(keep);
    } else if (!strcmp(m, "foreign")) {
        char *p = __libc_malloc(100);
        strcpy(p, "glibc");
        show(p);
        free(p);
        char *q = __libc_malloc(200);
        strcpy(q, "glibc block");
        q = realloc(q, 100000);
        if (!q || strcmp(q, "glibc block") != 0) {
            printf("realloc of a glibc block lost its contents\n");
            return 1;
        }
        free(q);
    } else {
        return 2;
    }
    printf("SURVIVED\n");
    return 0;
}
