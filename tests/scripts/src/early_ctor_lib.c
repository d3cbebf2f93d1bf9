/* A library whose constructor allocates and frees before lite-malloc's own constructor
 * has run (as libgpg-error does inside redis-server): the free lists made then must stay
 * valid afterwards. */
#include <stdlib.h>
static void *early[8];
__attribute__((constructor)) static void allocate_early(void) {
    for (int i = 0; i < 8; i++) early[i] = malloc(40);
    for (int i = 0; i < 8; i += 2) free(early[i]);
}
