/* A library for deepbind.sh, opened with RTLD_DEEPBIND: its malloc & co. bind to the C
 * library's allocator unless lite-malloc rebinds them.  Its constructor allocates during
 * dlopen, before any rebinding can happen. */
#include <malloc.h>
#include <stdlib.h>
#include <string.h>

void *deep_ctor_block;
__attribute__((constructor)) static void deep_init(void)
{
    deep_ctor_block = malloc(200);
    if (deep_ctor_block) memset(deep_ctor_block, 0x5a, 200);
}
void *deep_alloc(size_t n) { return malloc(n); }
void *deep_calloc(size_t n, size_t s) { return calloc(n, s); }
void *deep_realloc(void *p, size_t n) { return realloc(p, n); }
void deep_free(void *p) { free(p); }
size_t deep_usable(void *p) { return malloc_usable_size(p); }
