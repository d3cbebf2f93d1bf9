// The header-only way (way 3) in its smallest form: this translation unit is lite-malloc,
// and it is linked with C programs' objects (bad_pointer.sh: src/bad_ptr.c) that know
// nothing of it.
#include "lite-hooks.h"
