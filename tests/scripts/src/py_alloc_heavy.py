"""Allocation-heavy python workload for way4_preload.sh.

Prints one line "checksum <hex> items <n>" that must be the same with and without lite-malloc.
With --expect-lite it also proves, through ctypes, that lite-malloc serves this process:
lite_owns() on blocks python got from malloc (bytearray / bytes buffers, a ctypes malloc call,
every sampled object when PYTHONMALLOC=malloc), lite_owns() == 0 on static objects, and the
library mapped into /proc/self/maps.
"""
import ctypes
import hashlib
import sys

expect_lite = "--expect-lite" in sys.argv


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def workload():
    h = hashlib.sha256()
    d = {}
    for i in range(250000):
        k = "key-%d" % (i * 7919 % 100003)
        d.setdefault(k, []).append(str(i) * (i % 7 + 1))
    for k in sorted(d):
        h.update(k.encode())
        h.update(("|".join(d[k])).encode())
    rows = [[j * i for j in range(i % 60)] for i in range(60000)]
    h.update(str(sum(map(sum, rows))).encode())
    words = {}
    text = " ".join("w%d" % ((i * i) % 5003) for i in range(300000))
    for w in text.split():
        words[w] = words.get(w, 0) + 1
    h.update(repr(sorted(words.items())).encode())
    blobs = [bytes([i % 256]) * (i % 5000 + 1) for i in range(20000)]
    h.update(b"".join(blobs[::37]))
    s = set()
    for i in range(200000):
        s.add((i % 1000, str(i % 777)))
    h.update(str(len(s)).encode())
    return h.hexdigest(), len(d) + len(rows) + len(words) + len(blobs) + len(s), d


digest, items, d = workload()

if expect_lite:
    lib = ctypes.CDLL(None)
    try:
        owns = lib.lite_owns
    except AttributeError:
        fail("lite_owns is not defined in this process: lite-malloc is not loaded")
    owns.argtypes = [ctypes.c_void_p]
    owns.restype = ctypes.c_int
    lib.malloc.restype = ctypes.c_void_p
    lib.malloc.argtypes = [ctypes.c_size_t]
    lib.free.argtypes = [ctypes.c_void_p]

    p = lib.malloc(100)
    if owns(p) != 1:
        fail("malloc() called through ctypes returned %#x, not a lite-malloc block" % p)
    lib.free(p)

    ba = bytearray(1 << 20)  # large: PyMem_Malloc forwards it to malloc() in every PYTHONMALLOC mode
    view = (ctypes.c_char * len(ba)).from_buffer(ba)
    addr = ctypes.addressof(view)
    if owns(addr) != 1:
        fail("bytearray buffer at %#x is not a lite-malloc block" % addr)
    del view
    big = b"y" * (1 << 20)
    if owns(id(big)) != 1:
        fail("1 MiB bytes object at %#x is not a lite-malloc block" % id(big))
    for static in (None, True, int, str):
        if owns(id(static)) != 0:
            fail("static object %r at %#x claimed by lite_owns" % (static, id(static)))

    import os
    if os.environ.get("PYTHONMALLOC") == "malloc":
        # every object is a malloc() block: check a sample of live ones
        sample = []
        for k in list(d)[:2000]:
            sample.append(k)
            sample.append(d[k])
            sample.extend(d[k][:2])
        bad = [hex(id(o)) for o in sample if owns(id(o)) != 1]
        if bad:
            fail("%d of %d sampled objects are not lite-malloc blocks, e.g. %s" % (len(bad), len(sample), bad[:5]))
        print("sampled %d objects, all lite-malloc blocks" % len(sample))

    with open("/proc/self/maps") as f:
        if "liblite-malloc-shared.so" not in f.read():
            fail("liblite-malloc-shared.so is not mapped into this process")
    print("lite-malloc serves this python process")

print("checksum %s items %d" % (digest, items))
