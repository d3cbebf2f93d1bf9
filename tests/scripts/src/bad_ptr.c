/*
 * Misuse cases for bad_pointer.sh.  argv[1] picks one; the program prints "PTR 0x..." (the
 * pointer it is about to misuse) on stdout, flushes, then misuses it.  If it survives it
 * prints "SURVIVED" and exits 0; the script decides whether that is right.
 *   stack      free() of a stack address
 *   interior1  free() of p+1, p a 64-byte block
 *   interior8  free() of p+8, p a 64-byte block
 *   double     free(p) twice in a row, p a 32-byte block
 *   double_med free(p) twice, p a 20000-byte block
 *   double_big free(p) twice, p a 4 MiB block
 *   realloc_stack  realloc() of a stack address
 *   foreign    free() of a __libc_malloc() block (then realloc() of another one)
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    } else if (!strncmp(m, "double", 6)) {
        size_t n = !strcmp(m, "double") ? 32 : !strcmp(m, "double_med") ? 20000 : 4u << 20;
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
