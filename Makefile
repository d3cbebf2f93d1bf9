# lite-malloc build.  `make` builds both libraries; `make test` runs the test suite;
# `make bench` compares lite-malloc with the other allocators installed (bench/README.md),
# `make bench-real` real programs under each (bench/real.sh).
# Longer checks: `make check-real` (real programs preloaded), `make fuzz` (libFuzzer,
# FUZZ_SECONDS), `make soak` (multi-threaded random workload, SOAK_SECONDS).
# CONFIG passes configuration defines, e.g. make CONFIG="-DLITE_MALLOC_ENGINES_COUNT=4".
CXX      ?= g++
CC       ?= gcc
OPT      ?= -O2
CONFIG   ?=
PREFIX   ?= /usr/local
LIBDIR   ?= $(PREFIX)/lib
INCDIR   ?= $(PREFIX)/include
BINDIR   ?= $(PREFIX)/bin

# The allocator is C++ without exceptions or RTTI: nothing in it throws, and the shared
# library must not drag libstdc++ into every process it is preloaded into (the one
# try/catch, in nothrow operator new, reaches the C++ runtime through weak references).
LIBFLAGS = -std=c++17 $(OPT) -g -fPIC -fno-exceptions -fno-rtti -fno-plt \
           -fvisibility=hidden -ftls-model=initial-exec -Wall -Wextra $(CONFIG)

# The -Wl,--wrap flags of way 1 (README), for lite-malloc-static.pc and (as a CMake list)
# lite-malloc::static.
WRAPPED = malloc free calloc realloc reallocarray memalign valloc pvalloc posix_memalign \
          aligned_alloc malloc_usable_size malloc_trim mallinfo2 mallinfo malloc_stats \
          malloc_info free_sized free_aligned_sized
WRAP_LDFLAGS = $(patsubst %,-Wl$(comma)--wrap$(comma)%,$(WRAPPED))
WRAP_FLAGS = $(subst $(eval) ,;,$(WRAP_LDFLAGS))
comma := ,

LIBS = liblite-malloc-static.a liblite-malloc-shared.so
TOOLS = lite-malloc-stat lite-malloc-run

all: $(LIBS) $(TOOLS)

# Shared library: defines malloc & co. (and operator new) so it interposes the C library.
# -z nodelete: dlclose leaves it loaded (its thread-exit hook and its memory outlive any
# dlclose; see tests/scripts/dlopen_cycle.sh).
liblite-malloc-shared.so: lite-malloc.cpp lite-malloc.h
	$(CXX) $(LIBFLAGS) -fexceptions -DLITE_MALLOC_BUILD=1 -c lite-malloc.cpp -o lite-malloc-shared.o
	$(CC) -shared -Wl,-soname,liblite-malloc-shared.so -Wl,-z,now -Wl,-z,nodelete -o $@ lite-malloc-shared.o

# Static library: defines __wrap_malloc & co. for -Wl,--wrap (and --defsym).  operator new
# lives in its own member so that C programs linking the archive never need libstdc++.
liblite-malloc-static.a: lite-malloc.cpp lite-malloc.h
	$(CXX) $(LIBFLAGS) -DLITE_MALLOC_BUILD=2 -c lite-malloc.cpp -o lite-malloc-wrap.o
	$(CXX) $(LIBFLAGS) -fexceptions -DLITE_MALLOC_BUILD=3 -c lite-malloc.cpp -o lite-malloc-cxx.o
	rm -f $@ && ar rcs $@ lite-malloc-wrap.o lite-malloc-cxx.o

# Debug build: debug/liblite-malloc-shared.so (same soname: run a program against it with
# LD_LIBRARY_PATH=debug, or LD_PRELOAD it), with LITE_MALLOC_DEBUG=1: the allocator checks
# its own invariants (free and remote lists, slot and run maps, superblock states) and
# aborts naming the broken one.  make test runs unit tests against it.
debug: debug/liblite-malloc-shared.so

debug/liblite-malloc-shared.so: lite-malloc.cpp lite-malloc.h
	mkdir -p debug
	$(CXX) $(LIBFLAGS) -O1 -fexceptions -DLITE_MALLOC_BUILD=1 -DLITE_MALLOC_DEBUG=1 -c lite-malloc.cpp -o debug/lite-malloc-shared.o
	$(CC) -shared -Wl,-soname,liblite-malloc-shared.so -Wl,-z,now -Wl,-z,nodelete -o $@ debug/lite-malloc-shared.o

# lite-malloc-stat PID: a running process's statistics, read from outside (tools/).
lite-malloc-stat: tools/lite-malloc-stat.c
	$(CC) -O2 -g -Wall -Wextra -o $@ tools/lite-malloc-stat.c

# lite-malloc-run CMD...: CMD with the shared library preloaded (the installed one once
# installed, this directory's before).
lite-malloc-run: tools/lite-malloc-run.in
	sed 's|@LIBDIR@|$(CURDIR)|' tools/lite-malloc-run.in > $@ && chmod 755 $@

test: all debug
	bash tests/run.sh

bench: all
	bash bench/run.sh

bench-real: all
	bash bench/real.sh

check-real: all
	bash tests/real/run.sh

fuzz: all
	bash tests/fuzz/run.sh $(FUZZ_SECONDS)

soak: all
	bash tests/soak/run.sh $(SOAK_SECONDS)

install: all
	install -d $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(INCDIR)
	install -m 644 liblite-malloc-static.a $(DESTDIR)$(LIBDIR)/
	install -m 755 liblite-malloc-shared.so $(DESTDIR)$(LIBDIR)/
	install -m 644 lite-malloc.h lite-hooks.h lite-malloc.cpp $(DESTDIR)$(INCDIR)/
	install -d $(DESTDIR)$(BINDIR)
	install -m 755 lite-malloc-stat $(DESTDIR)$(BINDIR)/
	sed 's|@LIBDIR@|$(LIBDIR)|' tools/lite-malloc-run.in > $(DESTDIR)$(BINDIR)/lite-malloc-run
	chmod 755 $(DESTDIR)$(BINDIR)/lite-malloc-run
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' -e 's|@INCDIR@|$(INCDIR)|' \
	    lite-malloc.pc.in > $(DESTDIR)$(LIBDIR)/pkgconfig/lite-malloc.pc
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' -e 's|@INCDIR@|$(INCDIR)|' \
	    -e 's|@WRAP_LDFLAGS@|$(WRAP_LDFLAGS)|' tools/lite-malloc-static.pc.in > $(DESTDIR)$(LIBDIR)/pkgconfig/lite-malloc-static.pc
	install -d $(DESTDIR)$(LIBDIR)/cmake/lite-malloc
	sed -e 's|@LIBDIR@|$(LIBDIR)|' -e 's|@INCDIR@|$(INCDIR)|' -e 's|@WRAP_FLAGS@|$(WRAP_FLAGS)|' \
	    tools/lite-malloc-config.cmake.in > $(DESTDIR)$(LIBDIR)/cmake/lite-malloc/lite-malloc-config.cmake

clean:
	rm -rf *.o $(LIBS) $(TOOLS) debug tests/build bench/build

.PHONY: all debug test bench bench-real check-real fuzz soak install clean
