"""make bench-real's python4 case: python3 (PYTHONMALLOC=malloc) running the allocation-heavy
workload of tests/scripts/src/py_alloc_heavy.py in 4 threads at once.  Loading that file runs
the workload once in the main thread; then 4 threads run it again, each keeping its result,
and the main thread drops them all at the end, so objects made by one thread are freed by
another.  The GIL lets one thread run at a time: this measures an allocator under threads
that take turns, not parallel speed."""
import importlib.util
import os
import threading

here = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location(
    "py_alloc_heavy", os.path.join(here, "..", "..", "tests", "scripts", "src", "py_alloc_heavy.py"))
heavy = importlib.util.module_from_spec(spec)
spec.loader.exec_module(heavy)

results = [None] * 4


def run(i):
    results[i] = heavy.workload()


threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
for t in threads:
    t.start()
for t in threads:
    t.join()
assert all(r[0] == heavy.digest for r in results), "a thread's checksum differs"
print("checksum", heavy.digest, "threads", len(results))
results = None
