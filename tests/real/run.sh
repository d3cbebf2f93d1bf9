#!/usr/bin/env bash
# make check-real: real programs from Debian packages, run with
# LD_PRELOAD=$TOP/liblite-malloc-shared.so, judged by their results.
#
#   python3  Debian's /usr/bin/python3 runs allocation-heavy modules of its own test suite
#            (regrtest, 2 worker processes, PYTHONMALLOC=malloc so that every Python object is
#            a malloc block).  Modules that do not pass under glibc on this machine are dropped
#            (and named); every remaining one must pass under lite-malloc.
#   redis    redis-server on 127.0.0.1 (free port, no persistence, lazy freeing in its
#            background thread): redis-benchmark, then a deterministic load through
#            redis-cli --pipe, Lua-verified values, deletes, SHUTDOWN NOSAVE and a clean exit.
#            Debian's redis-server links the shared libjemalloc.so.2 and calls the plain
#            malloc/calloc/realloc/free/malloc_usable_size, so the preload replaces them;
#            jemalloc is then only asked for statistics (mallctl), and INFO still says
#            mem_allocator:jemalloc-x.  The run shows it: jemalloc's own count
#            (allocator_allocated) stays near zero while redis's used_memory grows.
#   sqlite   sqlite3 builds an indexed in-memory table of 1,000,000 rows with a recursive CTE
#            and runs aggregates, indexed lookups, a join, sorts, a window function, deletes,
#            updates, VACUUM and integrity checks.
#   g++      g++ (and cc1plus, as, collect2, ld: LD_PRELOAD is inherited) compiles
#            tests/real/templates.cpp (C++20, template- and constexpr-heavy); the program is run
#            under lite-malloc too and must print tests/real/templates.expected.
#   git      a repository of a few hundred files: commits, a branch, a merge, a rename,
#            gc --aggressive, fsck --full --strict, log/show/blame/archive.
# Each program first runs the same work under plain glibc; the outputs that do not depend on
# timing must be identical, and they are also checked against values known in advance.
#
# Proof that lite-malloc really served each program: ld.so must not have refused the preload
# ("cannot be preloaded"), and tests/real/probe.c, preloaded after lite-malloc, makes every
# process that exits normally append one line (pid, executable, which object `malloc` binds
# to, whether malloc/realloc/calloc blocks are lite_owns(), lite_stats() at exit).  Each case
# requires such lines for its program's processes, all with owns=1 and superblocks > 0.
# For redis-server the running server's /proc/PID/maps must also contain liblite-malloc-shared.so.
#
# Debian packages this script needs (apt-get install --no-install-recommends ...):
#   python3 libpython3.11-testsuite redis-server redis-tools sqlite3 gcc g++ libc6-dev git
# (gcc + libc6-dev build the probe; coreutils' timeout, mktemp, etc. are Essential.)
#
# Usage: bash tests/real/run.sh [CASE...]      CASE: python3 redis sqlite g++ git (default all)
#   CHECK_REAL_QUICK=1  smaller runs (fewer python modules, 200k sqlite rows, smaller redis
#                       load and benchmark, -O1, fewer git files/commits) for CI: ~1-2 minutes.
#   CHECK_REAL_KEEP=1   keep the temporary directory (logs) instead of removing it.
# Output: one PASS/FAIL line per program and a final line "N passed, M failed"; exit status 1
# when anything failed.
set -u
REAL_PACKAGES="python3 libpython3.11-testsuite redis-server redis-tools sqlite3 gcc g++ libc6-dev git"

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TOP=$(cd "$HERE/../.." && pwd)
LITE=$TOP/liblite-malloc-shared.so
QUICK=${CHECK_REAL_QUICK:-0}
[ "$QUICK" = 0 ] || QUICK=1
PY=/usr/bin/python3   # Debian's python, never a pyenv/venv python3 found first on PATH
ALL_CASES=(python3 redis sqlite g++ git)

# Debian packages of each case.
case_packages() {
    case $1 in
        python3) echo "python3 libpython3.11-testsuite" ;;
        redis) echo "redis-server redis-tools" ;;
        sqlite) echo "sqlite3" ;;
        g++) echo "g++" ;;
        git) echo "git" ;;
    esac
}
# Seconds a whole case may take (every command inside also has its own timeout).
case_limit() {
    case $1 in
        python3) echo $((QUICK ? 420 : 900)) ;;
        redis) echo $((QUICK ? 240 : 420)) ;;
        sqlite) echo $((QUICK ? 240 : 420)) ;;
        g++) echo $((QUICK ? 300 : 480)) ;;
        git) echo $((QUICK ? 240 : 420)) ;;
    esac
}

########################################################################################
# Helpers for the cases (run as `bash run.sh --case NAME` with WORK, PROBE exported).
########################################################################################
die() { echo "FAIL: $*" >&2; exit 1; }
note() { echo "NOTE: $*"; }
result() { echo "RESULT: $*"; }

# The environment prefixes: plain glibc, and lite-malloc + probe.
setup_envs() {
    PROBE_OUT=$D/probe.txt
    : >"$PROBE_OUT"
    GLIBC=(env -u LD_PRELOAD)
    LITEENV=(env LD_PRELOAD="$LITE $PROBE" LITE_REAL_PROBE_OUT="$PROBE_OUT")
}

# no_preload_error FILE...: ld.so prints "ERROR: ld.so: object ... cannot be preloaded" when it
# cannot load a preloaded object (and then runs the program without it).
no_preload_error() {
    local f
    for f in "$@"; do
        [ -e "$f" ] || continue
        if grep -a -m 1 'cannot be preloaded' "$f" >&2; then
            die "ld.so refused the preload (see $f): the program did not run with lite-malloc"
        fi
    done
}

# check_probe LABEL EXE_REGEX MIN: at least MIN probe lines from executables matching
# EXE_REGEX, each with owns=1 and superblocks > 0; no line anywhere without lite-malloc.
# Sets PROBE_SUMMARY.
check_probe() {
    local label=$1 re=$2 min=$3
    [ -s "$PROBE_OUT" ] || die "$label: the probe wrote nothing: no process ran with lite-malloc"
    if grep -a 'lite-malloc-not-found' "$PROBE_OUT" >&2; then
        die "$label: a preloaded process could not find lite-malloc's symbols"
    fi
    if grep -a ' owns=0 ' "$PROBE_OUT" >&2; then
        die "$label: in a preloaded process malloc/realloc/calloc blocks were not lite-malloc's"
    fi
    local stats
    stats=$(awk -v re="$re" '
        { exe = ""; mal = ""; sb = -1
          for (i = 1; i <= NF; i++) {
              split($i, kv, "=")
              if (kv[1] == "exe") exe = kv[2]; else if (kv[1] == "malloc") mal = kv[2]
              else if (kv[1] == "superblocks") sb = kv[2] + 0
          }
          all++; n = split(exe, parts, "/"); names[parts[n]]++
          if (exe ~ re) { match_n++; if (sb > 0 && (mal == "lite" || mal == "exe")) good++
                          if (sb > maxsb) maxsb = sb } }
        END { list = ""; for (k in names) list = list (list == "" ? "" : ",") k "x" names[k]
              printf "%d %d %d %d %s\n", all, match_n, good, maxsb, list }' "$PROBE_OUT")
    local all matched good maxsb list
    read -r all matched good maxsb list <<<"$stats"
    [ "$matched" -ge "$min" ] \
        || die "$label: $matched probe line(s) from /$re/ (need $min); probe saw: $list"
    [ "$good" -eq "$matched" ] || { grep -aE "exe=[^ ]*($re)" "$PROBE_OUT" >&2
        die "$label: a /$re/ process shows no lite-malloc superblocks or malloc not bound to it"; }
    PROBE_SUMMARY="lite-malloc in $all processes ($list), $matched of /$re/ all owns=1, max superblocks $maxsb"
    note "probe: $PROBE_SUMMARY"
}

# same_output LABEL GLIBC_FILE LITE_FILE
same_output() {
    if ! cmp -s "$2" "$3"; then
        diff -u "$2" "$3" | head -n 40 >&2
        die "$1: output under lite-malloc differs from glibc ($2 vs $3)"
    fi
}

# expect_line FILE LINE: FILE must contain exactly this line.
expect_line() {
    grep -qxF -- "$2" "$1" || { echo "---- $1 ----" >&2; head -n 40 "$1" >&2
        die "expected the line '$2' in $1"; }
}

########################################################################################
# python3: its own test suite
########################################################################################
case_python3() {
    local mods
    if [ "$QUICK" = 1 ]; then
        mods=(test_dict test_list test_set test_re test_json test_bytes test_collections test_gc)
    else
        mods=(test_ast test_bytes test_collections test_decimal test_dict test_gc test_itertools
              test_json test_list test_long test_pickle test_re test_set test_threading
              test_unicode)
    fi
    local ver
    ver=$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])') || die "$PY does not run"
    note "$PY is Python $ver"
    [ -e "/usr/lib/python$ver/test/libregrtest/__init__.py" ] \
        || die "/usr/lib/python$ver/test/libregrtest missing: install libpython$ver-testsuite"

    # regrtest LABEL ENV... -- MODULES...: run them, 2 workers; writes $D/LABEL.log,
    # LABEL.err and LABEL.status ("module status" per line).
    regrtest() {
        local label=$1; shift
        local pre=()
        while [ "$1" != -- ]; do pre+=("$1"); shift; done
        shift
        mkdir -p "$D/$label/tmp"
        local rc=0
        (cd "$D/$label" && timeout -k 10 $((QUICK ? 300 : 420)) "${pre[@]}" \
            env -u PYTHONPATH -u PYTHONHOME -u PYTHONSTARTUP -u PYTHONUSERBASE -u PYTHONWARNINGS \
            PYTHONMALLOC=malloc TMPDIR="$D/$label/tmp" \
            "$PY" -s -m test -j2 --timeout 300 "$@") >"$D/$label.log" 2>"$D/$label.err" || rc=$?
        sed -nE 's/.*\[ *[0-9]+\/[0-9]+(\/[0-9]+)?\] (test_[A-Za-z0-9_]+) (.*)$/\2 \3/p' \
            "$D/$label.log" >"$D/$label.status"
        echo "$rc" >"$D/$label.rc"
    }

    note "glibc: ${mods[*]}"
    local t0=$SECONDS
    regrtest glibc "${GLIBC[@]}" -- "${mods[@]}"
    local ok=() dropped=() m
    for m in "${mods[@]}"; do
        if grep -qE "^$m passed" "$D/glibc.status"; then ok+=("$m"); else dropped+=("$m"); fi
    done
    note "glibc: ${#ok[@]} of ${#mods[@]} modules passed in $((SECONDS - t0))s"
    if [ ${#dropped[@]} -gt 0 ]; then
        note "dropped (do not pass under glibc here): ${dropped[*]}"
        grep -E "^($(IFS='|'; echo "${dropped[*]}")) " "$D/glibc.status" | sed 's/^/    glibc: /'
    fi
    [ ${#ok[@]} -ge $(( (${#mods[@]} + 1) / 2 )) ] || { tail -n 30 "$D/glibc.log"
        die "fewer than half of the modules pass under glibc: the python test suite is broken here"; }

    t0=$SECONDS
    regrtest lite "${LITEENV[@]}" -- "${ok[@]}"
    no_preload_error "$D/lite.err" "$D/lite.log"
    local bad=()
    for m in "${ok[@]}"; do grep -qE "^$m passed" "$D/lite.status" || bad+=("$m"); done
    if [ ${#bad[@]} -gt 0 ] || [ "$(cat "$D/lite.rc")" != 0 ] \
            || ! grep -q '^Tests result: SUCCESS' "$D/lite.log"; then
        tail -n 40 "$D/lite.log" >&2
        tail -n 20 "$D/lite.err" >&2
        die "under lite-malloc: ${bad[*]:-regrtest} failed (exit $(cat "$D/lite.rc")), passed under glibc; repro:" \
            "cd /tmp && LD_PRELOAD=$LITE PYTHONMALLOC=malloc $PY -s -m test -j2 ${bad[*]:-${ok[*]}}"
    fi
    expect_line "$D/lite.log" "All ${#ok[@]} tests OK."
    note "lite-malloc: ${#ok[@]} modules passed in $((SECONDS - t0))s"
    check_probe python3 'python3' 3
    result "${#ok[@]} test modules pass under glibc and lite-malloc${dropped[*]:+ (dropped: ${dropped[*]})}"
}

########################################################################################
# redis
########################################################################################
port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

redis_pid=
redis_cleanup() {
    if [ -n "$redis_pid" ] && kill -0 "$redis_pid" 2>/dev/null; then
        kill -TERM "$redis_pid" 2>/dev/null; sleep 1; kill -KILL "$redis_pid" 2>/dev/null
    fi
}

# redis_scenario MODE: MODE glibc or lite.  Writes $D/MODE.results (deterministic part).
redis_scenario() {
    local mode=$1 dir=$D/$1 pre
    mkdir -p "$dir"
    if [ "$mode" = lite ]; then pre=("${LITEENV[@]}"); else pre=("${GLIBC[@]}"); fi
    local n=$((QUICK ? 50000 : 200000)) bn=$((QUICK ? 50000 : 200000))

    # start on a free port (retry if another process takes it first)
    local port started=0
    for _ in 1 2 3 4 5 6 7 8; do
        port=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
        port_in_use "$port" && continue
        "${pre[@]}" redis-server --port "$port" --bind 127.0.0.1 --protected-mode yes \
            --save '' --appendonly no --daemonize no --dir "$dir" --logfile "$dir/redis.log" \
            --lazyfree-lazy-user-del yes --lazyfree-lazy-user-flush yes \
            2>"$dir/redis.err" &
        redis_pid=$!
        echo "$redis_pid" >>"$WORK/servers.pids"
        for _ in $(seq 1 100); do
            kill -0 "$redis_pid" 2>/dev/null || break
            [ "$(timeout 5 redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null)" = PONG ] \
                && { started=1; break; }
            sleep 0.1
        done
        [ $started = 1 ] && break
        redis_cleanup
        local rc=0
        wait "$redis_pid" 2>/dev/null || rc=$?
        redis_pid=
        grep -q 'Address already in use' "$dir/redis.log" 2>/dev/null && continue
        cat "$dir/redis.err" "$dir/redis.log" 2>/dev/null | tail -n 30 >&2
        local how="exit status $rc"
        [ $rc -gt 128 ] && how="killed by signal $((rc - 128)) ($(kill -l $((rc - 128)) 2>/dev/null))"
        if [ "$mode" = lite ]; then
            die "lite: redis-server did not start: $how; it starts under glibc; repro:" \
                "LD_PRELOAD=$LITE redis-server --port $port --save ''"
        fi
        die "$mode: redis-server did not start: $how"
    done
    [ $started = 1 ] || die "$mode: no free port found for redis-server"
    note "$mode: redis-server pid $redis_pid on 127.0.0.1:$port"
    no_preload_error "$dir/redis.err"
    if [ "$mode" = lite ]; then
        grep -qF "$LITE" "/proc/$redis_pid/maps" \
            || die "liblite-malloc-shared.so is not mapped in redis-server (/proc/$redis_pid/maps)"
        note "lite: /proc/$redis_pid/maps maps $LITE"
    fi
    grep -q 'libjemalloc' "/proc/$redis_pid/maps" && note "$mode: libjemalloc.so is mapped too"

    cli() { timeout 60 "${pre[@]}" redis-cli -h 127.0.0.1 -p "$port" "$@"; }
    info_field() { cli info memory | tr -d '\r' | sed -n "s/^$1://p"; }

    # 1. benchmark (random keys: not compared, but every test must report a rate)
    timeout 240 "${pre[@]}" redis-benchmark -h 127.0.0.1 -p "$port" -n "$bn" -c 50 -P 16 \
        -r 100000 --csv -t set,get,lpush,lpop,incr,sadd,hset >"$dir/bench.csv" 2>"$dir/bench.err" \
        || { cat "$dir/bench.err" >&2; die "$mode: redis-benchmark failed"; }
    no_preload_error "$dir/bench.err"
    local t rps rates=""
    for t in SET GET LPUSH LPOP INCR SADD HSET; do
        rps=$(awk -F, -v t="\"$t\"" '$1 == t { gsub(/"/, "", $2); print $2 }' "$dir/bench.csv")
        awk -v r="${rps:-0}" 'BEGIN { exit !(r > 0) }' \
            || { cat "$dir/bench.csv" >&2; die "$mode: redis-benchmark gave no rate for $t"; }
        rates+=" $t=${rps%.*}"
    done
    note "$mode: redis-benchmark -n $bn -c 50 -P 16 (requests/s):$rates"
    local after_bench
    after_bench=$(cli dbsize)
    [ "${after_bench:-0}" -gt 0 ] || die "$mode: DBSIZE after the benchmark is '$after_bench'"
    [ "$(cli flushall)" = OK ] || die "$mode: FLUSHALL failed"

    # 2. deterministic load through --pipe: n strings of 6..300 bytes (every 1000th 100 kB),
    #    100 lists, 1000 hashes, 50 sets, 10 counters
    awk -v n="$n" 'function cmd(a, b, c,   s) {
            s = "*3\r\n$" length(a) "\r\n" a "\r\n$" length(b) "\r\n" b "\r\n$" length(c) "\r\n" c "\r\n"
            printf "%s", s }
        BEGIN { big = "x"; while (length(big) < 100000) big = big big
            for (i = 1; i <= n; i++) {
                len = (i % 1000 == 0) ? 100000 : i % 300
                cmd("SET", "k:" i, "v" i ":" substr(big, 1, len))
                cmd("RPUSH", "l:" (i % 100), i)
                printf "*4\r\n$4\r\nHSET\r\n$%d\r\nh:%d\r\n$%d\r\nf:%d\r\n$%d\r\n%d\r\n",
                    length("h:" (i % 1000)), i % 1000, length("f:" i), i, length(i * 3 ""), i * 3
                cmd("SADD", "s:" (i % 50), i % 5000)
                cmd("INCRBY", "c:" (i % 10), i)
            } }' >"$dir/load.resp"
    cli --pipe <"$dir/load.resp" >"$dir/pipe.out" 2>&1 || { cat "$dir/pipe.out" >&2; die "$mode: --pipe load failed"; }
    grep -q "errors: 0, replies: $((5 * n))" "$dir/pipe.out" \
        || { cat "$dir/pipe.out" >&2; die "$mode: --pipe load: expected 0 errors and $((5 * n)) replies"; }
    # memory after the load: redis's own count vs jemalloc's
    local used alloc_alloc allocator
    used=$(info_field used_memory)
    alloc_alloc=$(info_field allocator_allocated)
    allocator=$(info_field mem_allocator)
    echo "$used $alloc_alloc $allocator" >"$dir/memory"
    note "$mode: INFO memory after the load: used_memory=$used allocator_allocated=$alloc_alloc mem_allocator=$allocator"
    [ "${used:-0}" -gt $((n * 100)) ] || die "$mode: used_memory '$used' is implausibly small"

    local verify='local n = tonumber(ARGV[1]) local step = tonumber(ARGV[2]) local bad, bytes, missing = 0, 0, 0
        for i = 1, n do
            local v = redis.call("GET", "k:" .. i)
            if i % step == 0 then
                if v then bad = bad + 1 else missing = missing + 1 end
            else
                local len = (i % 1000 == 0) and 100000 or (i % 300)
                if v ~= ("v" .. i .. ":" .. string.rep("x", len)) then bad = bad + 1 end
                if v then bytes = bytes + #v end
            end
        end
        return {bad, bytes, missing}'
    local grow='for i = 1, 3000 do redis.call("APPEND", KEYS[1], i .. ",") end
        local s = 0 for i = 1, 200 do s = s + #redis.call("GETRANGE", KEYS[1], i * 10, i * 10 + 40) end
        return {redis.call("STRLEN", KEYS[1]), s}'
    {
        echo "dbsize $(cli dbsize)"
        echo "llen l:7 $(cli llen l:7)"
        echo "hlen h:123 $(cli hlen h:123)"
        echo "hget h:123 f:123 $(cli hget h:123 f:123)"
        echo "scard s:7 $(cli scard s:7)"
        echo "get c:3 $(cli get c:3)"
        echo "strlen k:1000 $(cli strlen k:1000)"
        echo "get k:4242 $(cli get k:4242)"
        echo "lrange l:51 $(cli lrange l:51 0 4 | tr '\n' ' ')"
        echo "sort l:51 $(cli sort l:51 desc limit 0 3 | tr '\n' ' ')"
        echo "verify $(cli eval "$verify" 0 "$n" "$((n + 1))" | tr '\n' ' ')"
        echo "append $(cli eval "$grow" 1 grow | tr '\n' ' ')"
    } >"$dir/results"
    # 3. delete half of the strings, 50 lists and 500 hashes (big ones are freed by redis's
    #    lazyfree background thread), check again
    awk -v n="$n" 'function del(k) { printf "*2\r\n$3\r\nDEL\r\n$%d\r\n%s\r\n", length(k), k }
        BEGIN { for (i = 2; i <= n; i += 2) del("k:" i)
                for (i = 0; i < 50; i++) del("l:" i)
                for (i = 0; i < 500; i++) del("h:" i) }' >"$dir/del.resp"
    cli --pipe <"$dir/del.resp" >"$dir/pipe2.out" 2>&1 || { cat "$dir/pipe2.out" >&2; die "$mode: --pipe delete failed"; }
    grep -q "errors: 0, replies: $((n / 2 + 550))" "$dir/pipe2.out" \
        || { cat "$dir/pipe2.out" >&2; die "$mode: --pipe delete: unexpected reply count"; }
    {
        echo "dbsize-after-del $(cli dbsize)"
        echo "verify-after-del $(cli eval "$verify" 0 "$n" 2 | tr '\n' ' ')"
        echo "llen l:51 $(cli llen l:51) exists l:7 $(cli exists l:7) hlen h:777 $(cli hlen h:777)"
    } >>"$dir/results"
    # 4. shutdown
    cli shutdown nosave >"$dir/shutdown.out" 2>&1
    for _ in $(seq 1 300); do kill -0 "$redis_pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$redis_pid" 2>/dev/null && die "$mode: redis-server still running 30s after SHUTDOWN NOSAVE"
    local rc=0
    wait "$redis_pid" || rc=$?
    redis_pid=
    [ $rc = 0 ] || { tail -n 30 "$dir/redis.log" >&2; die "$mode: redis-server exited with status $rc"; }
    grep -q 'ready to exit, bye bye' "$dir/redis.log" \
        || { tail -n 30 "$dir/redis.log" >&2; die "$mode: redis-server did not log a clean shutdown"; }
    ! grep -qE 'BUG REPORT|crashed by signal|Guru Meditation' "$dir/redis.log" \
        || { tail -n 60 "$dir/redis.log" >&2; die "$mode: redis-server crashed"; }
    no_preload_error "$dir/redis.err" "$dir/shutdown.out"
    note "$mode: SHUTDOWN NOSAVE: exit status 0, clean shutdown logged"
}

case_redis() {
    trap redis_cleanup EXIT
    trap 'redis_cleanup; exit 143' TERM INT
    local n=$((QUICK ? 50000 : 200000))
    redis_scenario glibc
    redis_scenario lite
    same_output redis "$D/glibc/results" "$D/lite/results"
    # values known in advance
    local r=$D/lite/results
    local sumc3 bytes
    sumc3=$(awk -v n="$n" 'BEGIN { for (i = 3; i <= n; i += 10) s += i; printf "%.0f", s }')
    bytes=$(awk -v n="$n" -v step="$((n + 1))" 'BEGIN { for (i = 1; i <= n; i++) if (i % step)
        b += length("v" i ":") + ((i % 1000 == 0) ? 100000 : i % 300); printf "%.0f", b }')
    local bytes_odd
    bytes_odd=$(awk -v n="$n" 'BEGIN { for (i = 1; i <= n; i += 2)
        b += length("v" i ":") + ((i % 1000 == 0) ? 100000 : i % 300); printf "%.0f", b }')
    expect_line "$r" "dbsize $((n + 100 + 1000 + 50 + 10))"
    expect_line "$r" "llen l:7 $((n / 100))"
    expect_line "$r" "hlen h:123 $((n / 1000))"
    expect_line "$r" "hget h:123 f:123 369"
    expect_line "$r" "scard s:7 100"
    expect_line "$r" "get c:3 $sumc3"
    expect_line "$r" "strlen k:1000 100006"
    expect_line "$r" "get k:4242 v4242:$(printf 'x%.0s' $(seq 1 $((4242 % 300))))"
    expect_line "$r" "lrange l:51 51 151 251 351 451 "
    expect_line "$r" "sort l:51 $((n - 49)) $((n - 149)) $((n - 249)) "
    expect_line "$r" "verify 0 $bytes 0 "
    local applen
    applen=$(awk 'BEGIN { for (i = 1; i <= 3000; i++) s += length(i ",") ; print s }')
    grep -qE "^append $applen [0-9]+ $" "$r" || { cat "$r" >&2; die "redis: APPEND length != $applen"; }
    expect_line "$r" "dbsize-after-del $((n / 2 + 50 + 500 + 50 + 10 + 1))"  # + "grow"
    expect_line "$r" "verify-after-del 0 $bytes_odd $((n / 2)) "
    expect_line "$r" "llen l:51 $((n / 100)) exists l:7 0 hlen h:777 $((n / 1000))"

    # who served redis's memory: jemalloc's own counter vs redis's used_memory
    local gu ga lu la alloc
    read -r gu ga alloc <"$D/glibc/memory"
    read -r lu la _ <"$D/lite/memory"
    note "allocator: redis-server reports mem_allocator:$alloc (Debian links the shared libjemalloc.so.2)"
    note "  without preload: used_memory=$gu, jemalloc's allocator_allocated=$ga (jemalloc serves redis)"
    note "  with lite-malloc: used_memory=$lu, jemalloc's allocator_allocated=$la (jemalloc serves ~nothing)"
    [ $((la * 10)) -lt "$lu" ] \
        || die "redis: with lite-malloc preloaded jemalloc still counts $la of $lu bytes: redis is not using lite-malloc"
    check_probe redis 'redis-(server|check-rdb)' 1
    local probe_server
    probe_server=$(grep -aE 'exe=[^ ]*redis-(server|check-rdb) ' "$PROBE_OUT" | head -n 1)
    note "redis-server at exit: $probe_server"
    check_probe redis 'redis-(server|check-rdb|benchmark|cli)' 10
    result "load of $n keys verified, identical to glibc; mem_allocator:$alloc is reported, but malloc/free are lite-malloc's (jemalloc counts $la of $lu bytes)"
}

########################################################################################
# sqlite3
########################################################################################
case_sqlite() {
    local n=$((QUICK ? 200000 : 1000000))
    local sql=$D/query.sql
    cat >"$sql" <<EOF
.bail on
CREATE TABLE t(id INTEGER PRIMARY KEY, grp INTEGER NOT NULL, name TEXT NOT NULL, val INTEGER NOT NULL);
WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < $n)
INSERT INTO t SELECT i, i % 1000,
    printf('name-%07d-%s', i, substr('abcdefghij', 1 + i % 10, 1 + i % 7)), (i * 7919) % 100003
FROM seq;
CREATE INDEX t_grp ON t(grp);
CREATE INDEX t_name ON t(name);
CREATE INDEX t_val ON t(val, id);
CREATE TABLE g(grp INTEGER PRIMARY KEY, label TEXT NOT NULL);
WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i < 999)
INSERT INTO g SELECT i, 'group-' || (i % 37) FROM s;
SELECT 'q1', count(*), sum(id), sum(grp), sum(val), sum(length(name)) FROM t;
SELECT 'q2', count(*) FROM t WHERE grp = 777;
SELECT 'q3', id, name, val FROM t WHERE name = 'name-0123457-hij';
SELECT 'q4', sum(id) FROM t WHERE grp BETWEEN 100 AND 199;
SELECT 'q5', count(*), sum(c), sum(s) FROM (SELECT grp, count(*) AS c, sum(val) AS s FROM t GROUP BY grp);
SELECT 'q6', g.label, count(*), sum(t.val), max(t.id) FROM t JOIN g USING (grp)
    WHERE t.id % 13 = 0 GROUP BY g.label ORDER BY 4 DESC, 2 LIMIT 5;
SELECT 'q7', id, val FROM t ORDER BY val DESC, id LIMIT 5;
SELECT 'q8', id, name FROM t ORDER BY name DESC LIMIT 3;
SELECT 'q9', count(DISTINCT val) FROM t;
SELECT 'q10', length(group_concat(name, ',')) FROM t WHERE grp = 5;
SELECT 'q11', sum(rn), count(*) FROM (SELECT id, row_number() OVER (ORDER BY (val * 31) % 1000, id) AS rn FROM t)
    WHERE id % 1000 = 1;
SELECT 'q12', count(*) FROM (SELECT name FROM t ORDER BY substr(name, 14), id);
DELETE FROM t WHERE id % 3 = 0;
SELECT 'q13', count(*), sum(id) FROM t;
UPDATE t SET name = upper(name) || '/' || id WHERE id % 5 = 1;
SELECT 'q14', count(*), sum(length(name)) FROM t WHERE name GLOB '*/*';
SELECT 'q15', integrity_check FROM pragma_integrity_check;
VACUUM;
SELECT 'q16', count(*), sum(grp) FROM t;
SELECT 'q17', integrity_check FROM pragma_integrity_check;
EOF
    # expected values, computed independently of sqlite
    awk -v n="$n" 'BEGIN {
        for (i = 1; i <= n; i++) {
            g = i % 1000; v = (i * 7919) % 100003
            tail = 10 - i % 10; if (1 + i % 7 < tail) tail = 1 + i % 7
            len = 13 + tail
            c++; sid += i; sg += g; sv += v; sl += len
            if (g == 777) c777++
            if (g >= 100 && g <= 199) s100 += i
            if (!(v in seen)) { seen[v] = 1; distinct++ }
            if (i % 3) { kept++; skept += i; gkept += g
                if (i % 5 == 1) { upd++; ul += len + 1 + length(i "") } }
        }
        printf "q1|%.0f|%.0f|%.0f|%.0f|%.0f\n", c, sid, sg, sv, sl
        printf "q2|%.0f\n", c777
        printf "q4|%.0f\n", s100
        printf "q5|1000|%.0f|%.0f\n", c, sv
        printf "q9|%d\n", distinct
        printf "q12|%d\n", c
        printf "q13|%.0f|%.0f\n", kept, skept
        printf "q14|%.0f|%.0f\n", upd, ul
        printf "q15|ok\nq16|%.0f|%.0f\nq17|ok\n", kept, gkept
        if (n >= 123457) print "q3|123457|name-0123457-hij|" (123457 * 7919) % 100003
        if (n >= 1000) printf "q11|%d|%d\n", -1, int(n / 1000)
    }' >"$D/expected.txt"

    local mode pre t0
    for mode in glibc lite; do
        if [ "$mode" = lite ]; then pre=("${LITEENV[@]}"); else pre=("${GLIBC[@]}"); fi
        t0=$SECONDS
        local rc=0
        timeout -k 10 300 "${pre[@]}" sqlite3 -batch -bail :memory: <"$sql" \
            >"$D/$mode.out" 2>"$D/$mode.err" || rc=$?
        [ $rc = 0 ] || { cat "$D/$mode.err" >&2; die "$mode: sqlite3 failed (exit $rc)"; }
        [ ! -s "$D/$mode.err" ] || { cat "$D/$mode.err" >&2; [ "$mode" = lite ] && no_preload_error "$D/$mode.err"; die "$mode: sqlite3 wrote to stderr"; }
        note "$mode: $n rows, 17 queries in $((SECONDS - t0))s"
    done
    same_output sqlite "$D/glibc.out" "$D/lite.out"
    local line
    while IFS= read -r line; do
        case $line in
            q11\|-1\|*) grep -qE "^q11\|[0-9]+\|${line##*|}\$" "$D/lite.out" \
                            || die "sqlite: q11 count should be ${line##*|}" ;;
            *) expect_line "$D/lite.out" "$line" ;;
        esac
    done <"$D/expected.txt"
    note "$(wc -l <"$D/expected.txt") result lines match values computed with awk"
    check_probe sqlite 'sqlite3' 1
    result "$n-row table: 17 query results identical to glibc and to the expected values"
}

########################################################################################
# g++
########################################################################################
case_gxx() {
    local expected=$HERE/templates.expected
    local opt=-O2
    [ "$QUICK" = 1 ] && opt=-O1
    local mode pre t0
    for mode in glibc lite; do
        if [ "$mode" = lite ]; then pre=("${LITEENV[@]}"); else pre=("${GLIBC[@]}"); fi
        mkdir -p "$D/$mode"
        t0=$SECONDS
        # the same source path in both runs, so the objects can be compared byte for byte
        (cd "$HERE" && timeout -k 10 300 "${pre[@]}" g++ -std=c++20 "$opt" -Wall -frandom-seed=lite \
            -c templates.cpp -o "$D/$mode/templates.o") >"$D/$mode/compile.log" 2>&1 \
            || { cat "$D/$mode/compile.log" >&2; die "$mode: g++ failed to compile templates.cpp"; }
        timeout -k 10 120 "${pre[@]}" g++ "$D/$mode/templates.o" -o "$D/$mode/templates" \
            >"$D/$mode/link.log" 2>&1 || { cat "$D/$mode/link.log" >&2; die "$mode: link failed"; }
        [ "$mode" = lite ] && no_preload_error "$D/$mode/compile.log" "$D/$mode/link.log"
        [ ! -s "$D/$mode/compile.log" ] || { cat "$D/$mode/compile.log" >&2; die "$mode: g++ printed diagnostics"; }
        note "$mode: g++ -std=c++20 $opt compiled and linked in $((SECONDS - t0))s"
        timeout -k 10 60 "${pre[@]}" "$D/$mode/templates" >"$D/$mode/run.out" 2>"$D/$mode/run.err" \
            || { cat "$D/$mode/run.err" >&2; die "$mode: the compiled program failed"; }
        [ "$mode" = lite ] && no_preload_error "$D/$mode/run.err"
        cmp -s "$expected" "$D/$mode/run.out" \
            || { diff -u "$expected" "$D/$mode/run.out" >&2; die "$mode: the program's output is not templates.expected"; }
    done
    same_output "g++ object code" "$D/glibc/templates.o" "$D/lite/templates.o"
    note "templates.o compiled under lite-malloc is byte-identical to the one compiled under glibc"
    check_probe g++ 'cc1plus$' 1
    # the two g++ drivers, cc1plus, as, collect2, ld and the compiled program itself
    check_probe g++ '(cc1plus|as|collect2|ld|ld\.bfd|g\+\+|g\+\+-[0-9]+|/templates)$' 6
    result "cc1plus $opt output identical to glibc's; the program prints templates.expected"
}

########################################################################################
# git
########################################################################################
case_git() {
    local nfiles=$((QUICK ? 150 : 400)) ncommits=$((QUICK ? 5 : 12))
    local gen=$D/gen.awk
    # gen.awk: write the content of each file numbered in FILES for revision REV (0: initial)
    cat >"$gen" <<'EOF'
BEGIN {
    nf = split(files, list, " ")
    for (k = 1; k <= nf; k++) {
        f = list[k] + 0
        path = sprintf("%s/d%d/file%04d.txt", dir, f % 10, f)
        lines = 40 + f % 60
        printf "" > path
        for (j = 1; j <= lines; j++) {
            v = (f * 7919 + j * 104729) % 1000003
            if (rev > 0 && (j % 9 == rev % 9)) v = v + rev * 1000
            printf "file %d line %d value %d %s\n", f, j, v, (j % 5 ? "alpha beta" : "gamma delta epsilon") > path
        }
        if (rev > 0) printf "revision %d note for file %d\n", rev, f > path
        close(path)
    }
}
EOF
    git_scenario() {
        local mode=$1 pre
        if [ "$mode" = lite ]; then pre=("${LITEENV[@]}"); else pre=("${GLIBC[@]}"); fi
        local repo=$D/$mode/repo
        mkdir -p "$repo" "$D/$mode/home"
        local date=1700000000
        g() { HOME="$D/$mode/home" GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null \
              GIT_AUTHOR_NAME=Lite GIT_AUTHOR_EMAIL=lite@example.invalid \
              GIT_COMMITTER_NAME=Lite GIT_COMMITTER_EMAIL=lite@example.invalid \
              GIT_AUTHOR_DATE="@$date +0000" GIT_COMMITTER_DATE="@$date +0000" \
              timeout -k 5 120 "${pre[@]}" git -C "$repo" "$@"; }
        commit() { date=$((date + 3600)); g add -A && g commit -q -m "$1"; }
        set -e
        g init -q -b main
        g config pack.threads 2
        for d in 0 1 2 3 4 5 6 7 8 9; do mkdir -p "$repo/d$d"; done
        awk -v dir="$repo" -v files="$(seq -s ' ' 1 "$nfiles")" -v rev=0 -f "$gen"
        commit "initial: $nfiles files"
        cp "$repo/d3/file0013.txt" "$D/$mode/initial-file0013.txt"
        local c
        for c in $(seq 1 "$ncommits"); do
            # rewrite every file f with f % ncommits == c - 1
            awk -v dir="$repo" -v files="$(seq -s ' ' "$c" "$ncommits" "$nfiles")" -v rev="$c" -f "$gen"
            commit "change $c"
        done
        g checkout -q -b feature
        for c in 1 2 3 4; do
            # files in d1..d4 only
            awk -v dir="$repo" -v files="$(seq -s ' ' $((10 + c)) 10 "$nfiles")" -v rev=$((100 + c)) -f "$gen"
            printf 'new file %d on feature\n' "$c" >"$repo/d1/feature$c.txt"
            commit "feature $c"
        done
        g mv d2/file0002.txt d2/renamed0002.txt
        g rm -q d4/file0004.txt
        commit "feature: rename and delete"
        g checkout -q main
        for c in 1 2 3; do
            # files in d6..d8 only
            awk -v dir="$repo" -v files="$(seq -s ' ' $((15 + c)) 10 "$nfiles")" -v rev=$((200 + c)) -f "$gen"
            commit "main $c"
        done
        date=$((date + 3600))
        g merge -q --no-ff -m "merge feature" feature
        g tag -a -m "release" v1
        if [ "$QUICK" = 1 ]; then g gc -q --prune=now; else g gc -q --aggressive --prune=now; fi
        g fsck --full --strict >"$D/$mode/fsck.out" 2>&1
        set +e
        local out=$D/$mode/results
        {
            echo "commits $(g rev-list --count HEAD)"
            echo "head $(g rev-parse HEAD) tree $(g rev-parse 'HEAD^{tree}')"
            echo "files $(g ls-files | wc -l)"
            g log --format='%H %P %s' --topo-order
            echo "count-objects $(g count-objects -v | grep -E '^(count|in-pack|packs):' | tr '\n' ' ')"
            echo "initial-file0013 $(g show "HEAD~$((ncommits + 4)):d3/file0013.txt" | md5sum | cut -c1-32)"
            echo "head-file0013 $(g show HEAD:d3/file0013.txt | md5sum | cut -c1-32)"
            echo "renamed $(g log --follow --format=%s -- d2/renamed0002.txt | tr '\n' '|')"
            echo "log-p $(g log -p --stat | md5sum | cut -c1-32)"
            echo "blame $(g blame -s HEAD -- d7/file0017.txt | md5sum | cut -c1-32)"
            echo "archive $(g archive --format=tar v1 | md5sum | cut -c1-32)"
            echo "grep $(g grep -c gamma v1 | wc -l) $(g grep -h -c gamma v1 | awk '{ s += $1 } END { print s }')"
            echo "diff $(g diff --shortstat main~1 main)"
        } >"$out"
        g show "HEAD~$((ncommits + 4)):d3/file0013.txt" >"$D/$mode/show-initial.txt"
    }
    local mode t0 rc
    for mode in glibc lite; do
        t0=$SECONDS
        # not in an || list: set -e inside the subshell must stay in force
        (git_scenario "$mode") >"$D/$mode.log" 2>&1
        rc=$?
        [ $rc = 0 ] || { tail -n 30 "$D/$mode.log" >&2; die "$mode: a git command failed (exit $rc)"; }
        [ "$mode" = lite ] && no_preload_error "$D/$mode.log"
        [ ! -s "$D/$mode/fsck.out" ] || { cat "$D/$mode/fsck.out" >&2; die "$mode: git fsck --full --strict is not clean"; }
        note "$mode: $nfiles files, $((ncommits + 10)) commits, gc, fsck --full clean in $((SECONDS - t0))s"
    done
    same_output git "$D/glibc/results" "$D/lite/results"
    local r=$D/lite/results
    expect_line "$r" "commits $((1 + ncommits + 5 + 3 + 1))"
    expect_line "$r" "files $((nfiles + 4 - 1))"
    expect_line "$r" "renamed feature: rename and delete|change 2|initial: $nfiles files|"
    cmp -s "$D/lite/initial-file0013.txt" "$D/lite/show-initial.txt" \
        || die "git show of the initial d3/file0013.txt differs from the file that was committed"
    grep -qE '^count-objects count: 0 in-pack: [0-9]+ packs: 1 $' "$r" \
        || { grep count-objects "$r" >&2; die "git: after gc expected no loose objects and one pack"; }
    note "commit count, file count, rename history and initial content match; results identical to glibc"
    check_probe git '/git$' 20
    result "$((ncommits + 10)) commits incl. merge, gc, fsck --full --strict clean; identical hashes to glibc"
}

########################################################################################
# Case mode: bash run.sh --case NAME (WORK, PROBE, LITE exported by the main run)
########################################################################################
if [ "${1:-}" = --case ]; then
    name=$2
    D=$WORK/$name
    mkdir -p "$D"
    setup_envs
    case $name in
        python3) case_python3 ;;
        redis) case_redis ;;
        sqlite) case_sqlite ;;
        g++) case_gxx ;;
        git) case_git ;;
        *) die "unknown case $name" ;;
    esac
    exit 0
fi

########################################################################################
# Main
########################################################################################
cases=("$@")
[ ${#cases[@]} -gt 0 ] || cases=("${ALL_CASES[@]}")
for c in "${cases[@]}"; do
    case " ${ALL_CASES[*]} " in *" $c "*) ;; *) echo "unknown case '$c' (known: ${ALL_CASES[*]})"; exit 2 ;; esac
done

pkg_installed() { [ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null)" = installed ]; }

echo "check-real: LD_PRELOAD=$LITE$([ "$QUICK" = 1 ] && echo ' (CHECK_REAL_QUICK=1)')"
pass=0 fail=0
if [ ! -f "$LITE" ]; then
    echo "check-real: $LITE is missing: run make first"
    echo "0 passed, ${#cases[@]} failed"
    exit 1
fi
missing_all=""
command -v dpkg-query >/dev/null || { echo "check-real: dpkg-query not found: this script expects Debian"; exit 2; }
for p in gcc libc6-dev; do pkg_installed "$p" || missing_all+=" $p"; done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/lite-check-real.XXXXXX") || { echo "mktemp failed"; exit 1; }
PROBE=$WORK/probe.so
export WORK PROBE LITE TOP HERE QUICK
cleanup() {
    local pid
    if [ -f "$WORK/servers.pids" ]; then
        while read -r pid; do kill -KILL "$pid" 2>/dev/null; done <"$WORK/servers.pids"
    fi
    if [ "${CHECK_REAL_KEEP:-0}" != 0 ]; then echo "check-real: logs kept in $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [ -z "$missing_all" ]; then
    gcc -std=gnu11 -O1 -Wall -shared -fPIC -I"$TOP" "$HERE/probe.c" -o "$PROBE" -ldl \
        >"$WORK/probe.build.log" 2>&1 || { cat "$WORK/probe.build.log"; probe_broken=1; }
fi

total_start=$SECONDS
for c in "${cases[@]}"; do
    missing=$missing_all
    for p in $(case_packages "$c"); do pkg_installed "$p" || missing+=" $p"; done
    if [ -n "$missing" ]; then
        fail=$((fail + 1))
        printf 'FAIL %-8s missing Debian package(s):%s -- apt-get install --no-install-recommends%s\n' \
            "$c" "$missing" "$missing"
        any_missing=1
        continue
    fi
    if [ -n "${probe_broken:-}" ]; then
        fail=$((fail + 1))
        printf 'FAIL %-8s tests/real/probe.c does not build (compiler output above)\n' "$c"
        continue
    fi
    start=$SECONDS
    log=$WORK/$c.log
    rc=0
    timeout -k 15 "$(case_limit "$c")" bash "$HERE/run.sh" --case "$c" >"$log" 2>&1 || rc=$?
    secs=$((SECONDS - start))
    summary=$(sed -n 's/^RESULT: //p' "$log" | tail -n 1)
    if [ $rc = 0 ] && [ -n "$summary" ]; then
        pass=$((pass + 1))
        printf 'PASS %-8s %4ss  %s\n' "$c" "$secs" "$summary"
        grep -E '^NOTE: (allocator|  with|  without|dropped|lite: /proc|redis-server at exit)' "$log" \
            | sed 's/^NOTE: /         /'
        grep -E '^NOTE: probe: ' "$log" | tail -n 1 | sed 's/^NOTE: /         /'
    else
        fail=$((fail + 1))
        why=$(sed -n 's/^FAIL: //p' "$log" | tail -n 1)
        [ $rc = 124 ] || [ $rc = 137 ] && why="timed out after $(case_limit "$c")s${why:+; $why}"
        printf 'FAIL %-8s %4ss  %s\n' "$c" "$secs" "${why:-exit status $rc}"
        tail -n 40 "$log" | sed 's/^/    | /'
    fi
done
[ -z "${any_missing:-}" ] \
    || echo "check-real needs these Debian packages: $REAL_PACKAGES"
echo "check-real: total $((SECONDS - total_start))s"
echo "$pass passed, $fail failed"
[ $fail = 0 ]
