/*
 * lite-hooks.h: put lite-malloc into a C++ program without linking anything.
 *
 * Include this header as the first line of exactly ONE translation unit of your program:
 *
 *     #include "lite-hooks.h"
 *
 * glibc removed __malloc_hook in 2.34, so instead of hooking, this header compiles the
 * whole allocator into that translation unit and defines malloc, free, calloc, realloc,
 * reallocarray, memalign, posix_memalign, aligned_alloc, valloc, pvalloc,
 * malloc_usable_size, malloc_trim, mallinfo2, mallinfo, malloc_stats, malloc_info,
 * free_sized, free_aligned_sized, every operator new/delete, and the calls that must be
 * lite-malloc's beside them (setrlimit, setrlimit64, prlimit, prlimit64, dlopen) there.  A definition in
 * the executable takes precedence over the C library's for the whole process, including
 * the C library's own internal allocations.  Needs C++14 or later.
 *
 * Copyright (C) 2026 the lite-malloc authors.
 * SPDX-License-Identifier: LGPL-3.0-or-later
 */
#ifndef LITE_HOOKS_H
#define LITE_HOOKS_H
#ifndef __cplusplus
#error "lite-hooks.h compiles lite-malloc into a C++ translation unit; link liblite-malloc-shared.so from C"
#endif
#define LITE_MALLOC_BUILD 4
#include "lite-malloc.cpp"
#endif
