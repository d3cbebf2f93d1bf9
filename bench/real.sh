#!/usr/bin/env bash
# make bench-real: real programs under lite-malloc and every peer allocator installed,
# timed, with their peak RSS.  Rounds are interleaved (each round runs every program under
# every allocator once, the allocator order rotating), and the tables give medians with
# min..max, and ratios to glibc.
#   sqlite    sqlite3 builds an indexed in-memory table (BENCH_REAL_ROWS rows, 400000),
#             queries, deletes a third, updates, vacuums
#   python    python3 running an allocation-heavy script, PYTHONMALLOC=malloc
#             (every object from the allocator under test)
#   python4   the same script's workload in 4 threads at once (bench/src/py_alloc_threads.py)
#   g++       cc1plus compiling tests/real/templates.cpp at -O1 (C++20 templates, constexpr)
#   redis     redis-server with the allocator preloaded, under redis-benchmark (SET/GET,
#             pipelined; requests per second), then the memory case: 300,000 keys of 16 B
#             to 4 KiB, two thirds deleted, 200,000 loaded again; the server's RSS against
#             its own used_memory.  (Debian's redis-server links jemalloc: under "glibc",
#             with nothing preloaded, jemalloc serves it; preloaded, the allocator under
#             test serves malloc and free: see make check-real.)
# Knobs: BENCH_RUNS (3), BENCH_ALLOCATORS, BENCH_PEERS (as make bench), BENCH_REAL="sqlite
# python python4 g++ redis" (a subset).  Results: bench/results/real.csv and a table on stdout.
# Exits 0 whenever it ran: timings are reported, never asserted.
set -uo pipefail
BENCH=$(cd "$(dirname "$0")" && pwd)
TOP=$(dirname "$BENCH")
OUT=$BENCH/results
RUNS=${BENCH_RUNS:-3}
ROWS=${BENCH_REAL_ROWS:-400000}
WORK=$(mktemp -d /tmp/lite-bench-real.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
source "$BENCH/allocators.bash"
make -s -C "$TOP" all >/dev/null || { echo "bench-real: building lite-malloc failed" >&2; exit 1; }
mkdir -p "$OUT"
find_allocators
CASES=(${BENCH_REAL:-sqlite python python4 g++ redis})
need() { command -v "$1" >/dev/null || { echo "   skipped: $2 (apt-get install $3)"; return 1; }; }
have=()
for c in "${CASES[@]}"; do
    case $c in
        sqlite) need sqlite3 sqlite sqlite3 && have+=(sqlite) ;;
        python) need python3 python python3 && have+=(python) ;;
        python4) need python3 python python3 && have+=(python4) ;;
        g++) need g++ g++ g++ && have+=(g++) ;;
        redis) need redis-server redis "redis-server redis-tools" && need redis-benchmark redis redis-tools && have+=(redis) ;;
    esac
done
[ -x /usr/bin/time ] || { echo "bench-real: /usr/bin/time is missing (apt-get install time)" >&2; exit 1; }

cat >"$WORK/q.sql" <<EOF
CREATE TABLE t(id INTEGER PRIMARY KEY, grp INTEGER NOT NULL, name TEXT NOT NULL, val INTEGER NOT NULL);
WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < $ROWS)
INSERT INTO t SELECT i, i % 1000, printf('name-%07d-%s', i, substr('abcdefghij', 1 + i % 10, 1 + i % 7)),
    (i * 7919) % 100003 FROM seq;
CREATE INDEX t_grp ON t(grp);
CREATE INDEX t_name ON t(name);
CREATE INDEX t_val ON t(val, id);
SELECT count(*), sum(val) FROM (SELECT grp, count(*) AS c, sum(val) AS val FROM t GROUP BY grp);
SELECT count(*) FROM (SELECT name FROM t ORDER BY substr(name, 14), id);
DELETE FROM t WHERE id % 3 = 0;
UPDATE t SET name = upper(name) || '/' || id WHERE id % 5 = 1;
VACUUM;
SELECT count(*), sum(grp) FROM t;
EOF
# the redis memory case's commands (RESP would be faster to load; inline commands are plenty)
"${PY:-python3}" - "$WORK" <<'PYEOF'
import random, sys
w = sys.argv[1]
r = random.Random(7)
def val(n): return "v" * n
with open(w + "/load1.txt", "w") as f:
    for i in range(300000): f.write("SET k:%d %s\r\n" % (i, val(r.choice([16, 40, 100, 300, 700, 1500, 4000]))))
with open(w + "/del.txt", "w") as f:
    for i in range(300000):
        if i % 3: f.write("DEL k:%d\r\n" % i)
with open(w + "/load2.txt", "w") as f:
    for i in range(300000, 500000): f.write("SET k:%d %s\r\n" % (i, val(r.choice([24, 64, 200, 500, 1000, 3000]))))
PYEOF

# run_case CASE ALLOC: prints "seconds peak_kib [extra...]" or "fail"
run_timed() { # preload, command...: "seconds peak_kib"
    local pre=$1; shift
    LD_PRELOAD=$pre /usr/bin/time -f "%e %M" -o "$WORK/time" "$@" >"$WORK/out" 2>"$WORK/err" || return 1
    cat "$WORK/time"
}
redis_case() { # preload -> "rps rss_kib used_kib hwm_kib"
    local pre=$1 port=$((20000 + RANDOM % 20000)) pid rps used rss hwm
    LD_PRELOAD=$pre redis-server --port $port --save "" --appendonly no --daemonize no >"$WORK/redis.log" 2>&1 &
    pid=$!
    for _ in $(seq 100); do redis-cli -p $port ping >/dev/null 2>&1 && break; sleep 0.1; done
    rps=$(redis-benchmark -p $port -q -n 200000 -P 16 -t set,get -d 64 2>/dev/null |
          awk '/requests per second/ { for (i = 1; i <= NF; i++) if ($i ~ /^[0-9.]+$/) { s += $i; n++; break } }
               END { if (n) printf "%.0f", s / n }')
    for f in load1 del load2; do redis-cli -p $port --pipe <"$WORK/$f.txt" >/dev/null 2>&1 || true; done
    used=$(redis-cli -p $port info memory | awk -F: '/^used_memory:/ { printf "%d", $2 / 1024 }')
    rss=$(awk '/^VmRSS:/ { print $2 }' /proc/$pid/status)
    hwm=$(awk '/^VmHWM:/ { print $2 }' /proc/$pid/status)
    redis-cli -p $port shutdown nosave >/dev/null 2>&1 || kill $pid
    wait $pid 2>/dev/null
    [ -n "$rps" ] && [ -n "$used" ] && echo "$rps $rss $used $hwm"
}
run_case() {
    local c=$1 pre=${LIB[$2]}
    case $c in
        sqlite) run_timed "$pre" sqlite3 -batch :memory: <"$WORK/q.sql" ;;
        python) PYTHONMALLOC=malloc run_timed "$pre" python3 "$TOP/tests/scripts/src/py_alloc_heavy.py" ;;
        python4) PYTHONMALLOC=malloc run_timed "$pre" python3 "$BENCH/src/py_alloc_threads.py" ;;
        g++) run_timed "$pre" g++ -std=c++20 -O1 -c "$TOP/tests/real/templates.cpp" -o "$WORK/t.o" ;;
        redis) redis_case "$pre" ;;
    esac
}

RAW=$OUT/real_raw.txt
: >"$RAW"
n=${#NAMES[@]}
for ((round = 1; round <= RUNS; round++)); do
    printf '== round %d/%d ...' "$round" "$RUNS"
    for c in "${have[@]}"; do
        for ((i = 0; i < n; i++)); do
            a=${NAMES[(i + round - 1) % n]}
            r=$(run_case "$c" "$a") || r=fail
            echo "$c $a $round ${r:-fail}" >>"$RAW"
        done
    done
    echo " done (${SECONDS}s)"
done

# tables: medians (min..max) and ratios to glibc
"${PY:-python3}" - "$RAW" "$OUT/real.csv" "${NAMES[@]}" <<'PYEOF'
import sys, statistics
raw, csv, names = sys.argv[1], sys.argv[2], sys.argv[3:]
data = {}
for line in open(raw):
    f = line.split()
    if len(f) < 4 or f[3] == "fail": continue
    data.setdefault((f[0], f[1]), []).append([float(x) for x in f[3:]])
cases = []
for line in open(raw):
    c = line.split()[0]
    if c not in cases: cases.append(c)
cols = {"redis": [("requests/s", 0, "higher"), ("RSS after reload KiB", 1, "lower"), ("RSS / used_memory", None, "lower")]}
out = open(csv, "w")
out.write("case,allocator,metric,median,min,max,ratio_to_glibc\n")
for c in cases:
    metrics = cols.get(c, [("seconds", 0, "lower"), ("peak RSS KiB", 1, "lower")])
    print("\n%s" % c)
    print("  %-10s" % "allocator" + "".join("  %-28s" % m[0] for m in metrics))
    def values(a, m, idx):
        return [r[idx] if idx is not None else r[1] / r[2] for r in data.get((c, a), [])]
    med = {(a, m): statistics.median(values(a, m, idx)) for a in names for m, idx, _ in metrics
           if values(a, m, idx)}
    for a in names:
        cells = []
        for m, idx, _ in metrics:
            vals = values(a, m, idx)
            if not vals:
                cells.append("  %-28s" % "failed"); continue
            cells.append((med[(a, m)], min(vals), max(vals)))
        row = "  %-10s" % a
        for (m, idx, _), cell in zip(metrics, cells):
            if isinstance(cell, str): row += cell; continue
            md, lo, hi = cell
            g = med.get(("glibc", m))
            ratio = md / g if g else float("nan")
            fmt = "%.2f" if md < 100 else "%.0f"
            row += "  %-28s" % ((fmt + " (" + fmt + ".." + fmt + ") %.2fx") % (md, lo, hi, ratio))
            out.write("%s,%s,%s,%g,%g,%g,%.3f\n" % (c, a, m, md, lo, hi, ratio))
        print(row)
print("\n(medians of %s interleaved rounds, min..max, and the ratio to glibc's median)" % max(
    [len(v) for v in data.values()] or [0]))
PYEOF
echo "bench-real: $OUT/real.csv"
