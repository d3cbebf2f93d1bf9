#include <stdio.h>
#include <stdlib.h>
#include <string.h>
int main(void) {
    void *p[4096];
    for (int round = 0; round < 4; round++) {
        for (int i = 0; i < 4096; i++) memset(p[i] = malloc(40), i, 40);
        for (int i = 0; i < 4096; i++) free(p[i]);
    }
    puts("ok");
    return 0;
}
