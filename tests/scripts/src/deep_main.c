/* deepbind.sh's program: opens deep_lib.so with RTLD_DEEPBIND and passes blocks both ways.
 *   argv[1]: the library; argv[2]: "run" (the checks) or "wild" (free a stack address:
 *   must still abort with lite-malloc's message).
 * lite_owns is looked up at run time, so that the same program serves the preload way. */
#define _GNU_SOURCE 1
#include <dlfcn.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../harness.h"

int main(int argc, char **argv)
{
    if (argc < 3) return 2;
    int (*owns)(const void *) = (int (*)(const void *))dlsym(RTLD_DEFAULT, "lite_owns");
    CHECK(owns, "lite-malloc is not in the process");
    void *before = malloc(64);
    CHECK(owns(before) == 1, "malloc is not lite-malloc's");
    free(before);
    void *h = dlopen(argv[1], RTLD_NOW | RTLD_DEEPBIND);
    CHECK(h, "dlopen: %s", dlerror());
    void *(*deep_alloc)(size_t) = (void *(*)(size_t))dlsym(h, "deep_alloc");
    void *(*deep_calloc)(size_t, size_t) = (void *(*)(size_t, size_t))dlsym(h, "deep_calloc");
    void *(*deep_realloc)(void *, size_t) = (void *(*)(void *, size_t))dlsym(h, "deep_realloc");
    void (*deep_free)(void *) = (void (*)(void *))dlsym(h, "deep_free");
    size_t (*deep_usable)(void *) = (size_t (*)(void *))dlsym(h, "deep_usable");
    void **ctor_block = (void **)dlsym(h, "deep_ctor_block");
    CHECK(deep_alloc && deep_calloc && deep_realloc && deep_free && deep_usable && ctor_block, "dlsym");

    if (!strcmp(argv[2], "wild")) {
        char on_stack[64];
        free(on_stack + 16); /* neither lite-malloc's nor the C library's */
        printf("wild free returned\n");
        return 0;
    }

    /* 6: after the dlopen, the library's malloc & co. are lite-malloc's both ways */
    char *p = deep_alloc(100);
    CHECK(p && owns(p) == 1, "a block the deep-bound library allocated is not lite-malloc's");
    CHECK(deep_usable(p) == malloc_usable_size(p), "malloc_usable_size differs inside the library");
    free(p);
    char *q = malloc(300);
    memset(q, 1, 300);
    q = deep_realloc(q, 5000);
    CHECK(q && owns(q) == 1 && q[299] == 1, "realloc inside the library of the program's block");
    deep_free(q); /* glibc's free would abort on it */
    int *z = deep_calloc(1000, sizeof(int));
    CHECK(z && owns(z) == 1 && z[999] == 0, "calloc inside the library");
    free(z);
    for (int i = 0; i < 10000; i++) deep_free(malloc(16 + i % 2000)); /* many, to be sure */

    /* 5: what the library's constructor allocated during dlopen is the C library's */
    char *c = *ctor_block;
    CHECK(c && owns(c) == 0, "the constructor's block: lite_owns %d (expected a C library block)", owns(c));
    CHECK(malloc_usable_size(c) >= 200, "malloc_usable_size of the C library's block: %zu", malloc_usable_size(c));
    c = realloc(c, 100000); /* to the C library's realloc, which may move it to an mmapped chunk */
    CHECK(c && c[0] == 0x5a && c[199] == 0x5a, "realloc of the C library's block lost its contents");
    CHECK(malloc_usable_size(c) >= 100000, "malloc_usable_size after realloc: %zu", malloc_usable_size(c));
    free(c);
    printf("deepbind: all checks passed\n");
    return 0;
}
