#include "lite-hooks.h"
// Built by install.sh with only `pkg-config --cflags lite-malloc`: the installed lite-hooks.h
// must find the installed lite-malloc.cpp and lite-malloc.h.
#include <cstdio>
#include <cstdlib>
#include <string>
int main() {
    std::string s(1000, 'x');
    void *p = std::malloc(10);
    int ok = lite_owns(p) == 1 && lite_owns(s.data()) == 1;
    std::free(p);
    if (!ok) { std::fprintf(stderr, "FAIL: blocks are not lite-malloc's\n"); return 1; }
    std::puts("installed lite-hooks.h works");
    return 0;
}
