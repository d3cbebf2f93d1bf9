#include "lite-hooks.h"
// Way 3: this translation unit's first line pulls lite-malloc into the program; nothing else
// of lite-malloc is linked.  The other translation units (own_checks_cxx.cpp, own_checks.c)
// allocate with plain malloc/new and must get lite-malloc blocks as well.
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "lite-malloc.h"

extern "C" int run_cxx_checks();
extern "C" int run_c_checks(int flags);

int main() {
    int rc = 0;
    std::vector<std::string> here(100, std::string(100, 'h'));
    void *m = std::malloc(1000);
    if (lite_owns(m) != 1 || lite_owns(here.data()) != 1 || lite_owns(here[50].data()) != 1) {
        std::fprintf(stderr, "CHECK FAILED: allocations in the hooks translation unit are not lite-malloc's\n");
        rc = 1;
    }
    int local = 0;
    if (lite_owns(&local) != 0) {
        std::fprintf(stderr, "CHECK FAILED: lite_owns claims a stack address\n");
        rc = 1;
    }
    std::free(m);
    rc |= run_cxx_checks();
    std::fflush(stdout);
    rc |= run_c_checks(0);
    if (rc == 0) std::printf("hooks program: all passed\n");
    return rc;
}
