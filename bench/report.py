#!/usr/bin/env python3
"""Tables, CSV files and chart data from the raw results of bench/run.sh.

Usage: report.py RESULTS_DIR   (reads meta.txt, raw.txt, density_raw.txt, callgrind_raw.txt
written by run.sh; writes results.csv, summary.csv, density.csv, callgrind.csv and the
gnuplot data files speed.dat and density.dat; prints the tables).  Standard library only.
"""
import csv
import math
import os
import statistics
import sys

LITE = "lite"
UNIT_SCALE = {"Mops/s": 1e6, "kops/s": 1e3, "ops/s": 1.0}  # "ms" is a time, see show()


def kv(line):
    """key=value tokens of a line as a dict (values stay strings)."""
    return dict(tok.split("=", 1) for tok in line.split() if "=" in tok)


def num(x):
    try:
        return float(x)
    except (TypeError, ValueError):
        return None


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def fmt(x, digits=3):
    """A number in about `digits` significant figures, '-' for nothing."""
    if x is None:
        return "-"
    if x == 0:
        return "0"
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(x))))
    return f"{x:.{decimals}f}"


def table(headers, rows, left_cols=()):
    """Plain text table: numbers right-aligned; the first column and those whose indexes
    are in `left_cols` left-aligned."""
    widths = [max(len(str(r[i])) for r in [headers] + rows) for i in range(len(headers))]
    left = {0, *left_cols}
    def line(r):
        return "  ".join(str(c).ljust(w) if i in left else str(c).rjust(w)
                         for i, (c, w) in enumerate(zip(r, widths))).rstrip()
    out = [line(headers), line(["-" * w for w in widths])]
    out += [line(r) for r in rows]
    return "\n".join(out)


def read_meta(path):
    meta = {"allocators": [], "skipped": [], "workloads": []}
    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if line.startswith("allocators="):
                meta["allocators"] = line.split("=", 1)[1].split()
            elif line.startswith("skipped="):
                meta["skipped"].append(line.split("=", 1)[1])
            elif line.startswith("load="):
                meta.setdefault("loads", []).append(line.split("=", 1)[1])
            elif line.startswith("workload="):
                d = kv(line)
                meta["workloads"].append((d["workload"], d["unit"]))
            else:
                meta.update(kv(line))
    return meta


def read_lines(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [kv(line) for line in f if line.strip()]


class Workloads:
    """Per-run results of the timed workloads, grouped by (workload, allocator)."""

    def __init__(self, rows):
        self.runs = {}
        for r in rows:
            ok = r.get("status") != "fail" and num(r.get("seconds")) and num(r.get("ops"))
            r["ok"] = bool(ok)
            r["tput"] = float(r["ops"]) / float(r["seconds"]) if ok else None
            self.runs.setdefault((r["workload"], r["alloc"]), []).append(r)

    def get(self, w, a):
        return [r for r in self.runs.get((w, a), []) if r["ok"]]

    def failed(self, w, a):
        return any(not r["ok"] for r in self.runs.get((w, a), []))

    def med(self, w, a, key):
        return median(num(r.get(key)) if key != "tput" else r["tput"] for r in self.get(w, a))

    def by_run(self, w, a):
        return {r["run"]: r for r in self.get(w, a)}

    def threads(self, w):
        """Threads of a workload (1 when its programs do not say)."""
        counts = [int(r["threads"]) for (ww, _), rs in self.runs.items() if ww == w
                  for r in rs if "threads" in r]
        return max(counts, default=1)


def show(tput, seconds, unit):
    """The figure a table cell shows: throughput in the unit, or time in ms."""
    if unit == "ms":
        return fmt(seconds * 1e3 if seconds is not None else None)
    return fmt(tput / UNIT_SCALE[unit] if tput is not None else None)


def speed_report(W, meta, allocs, peers):
    print(f"SPEED  median of {meta.get('runs')} run(s); cell = median throughput (or time in ms: lower is "
          "better)\n       (x.xx) = lite's speed / that allocator's speed: >1.00 means lite is faster")
    headers = ["workload", "threads", "unit"] + allocs + ["lite/best peer, min..max over runs", "notes"]
    rows, chart = [], []
    for w, unit in meta["workloads"]:
        th = W.threads(w)
        lite_t = W.med(w, LITE, "tput")
        row = [w, f"{th} MT" if th > 1 else "1", unit]
        ratios = {}
        for a in allocs:
            t, s = W.med(w, a, "tput"), W.med(w, a, "seconds")
            cell = show(t, s, unit) if t is not None else ("FAIL" if W.failed(w, a) else "-")
            if a != LITE and t and lite_t:
                ratios[a] = lite_t / t
                cell += f" ({ratios[a]:.2f})"
            row.append(cell)
        notes, span = [], "-"
        ok_peers = [a for a in peers if W.med(w, a, "tput")]
        if lite_t and ok_peers:
            best = max(ok_peers, key=lambda a: W.med(w, a, "tput"))
            lr, br = W.by_run(w, LITE), W.by_run(w, best)
            per_run = [lr[k]["tput"] / br[k]["tput"] for k in lr if k in br]
            if per_run:
                span = f"{min(per_run):.2f}..{max(per_run):.2f} ({best})"
            if ratios[best] < 1.0:
                tie = per_run and max(per_run) >= 1.0
                notes.append(f"<< lite not fastest: {best} x{1 / ratios[best]:.2f}"
                             + (" (runs overlap: maybe noise)" if tie else ""))
        if th > 1 and "glibc" in ratios:
            notes.append(f"MT: lite vs glibc {ratios['glibc']:.2f}")
        row += [span, "; ".join(notes)]
        rows.append(row)
        chart.append((w, [ratios.get(p) for p in peers]))
    print(table(headers, rows, left_cols={len(headers) - 2, len(headers) - 1}))
    side_line(W, allocs, "false_sharing", "shared_lines", "{:.0f}",
              "cache lines holding words written by different threads (exact, noise-free; 0 is right)")
    for w in ("larson", "larson_touch"):
        side_line(W, allocs, w, "remote_pct", "{:.0f}%",
                  "share of frees that were remote (lower when the machine was loaded)")
    return chart


def side_line(W, allocs, w, key, form, what):
    """One line under the speed table: a workload's extra figure, median per allocator."""
    vals = [f"{a} {form.format(W.med(w, a, key))}" for a in allocs if W.med(w, a, key) is not None]
    if vals:
        print(f"  {w}: {what}: " + ", ".join(vals))


def rss_report(W, meta, allocs, peers, density_max):
    print("\nPEAK RSS  median, MiB; (x.xx) = lite's RSS / that allocator's: <1.00 means lite uses less")
    headers = ["workload"] + allocs + ["notes"]
    rows = []
    for w, _ in meta["workloads"]:
        lite_r = W.med(w, LITE, "peak_rss_kb")
        row, others = [w], []
        for a in allocs:
            r = W.med(w, a, "peak_rss_kb")
            cell = fmt(r / 1024 if r else None)
            if a != LITE and r and lite_r:
                cell += f" ({lite_r / r:.2f})"
                others.append((r, a))
            row.append(cell)
        note = ""
        if lite_r and others:
            least, who = min(others)
            if lite_r > 1.10 * least:
                note = f"<< lite uses more: x{lite_r / least:.2f} of {who}"
        rows.append(row + [note])
    for label, worst in density_max or []:
        if not worst:
            continue
        row = [f"density max, {label}"]
        lite_d = worst.get(LITE, (None, None))[0]
        for a in allocs:
            d, size = worst.get(a, (None, None))
            cell = f"{d:.2f}@{size}" if d else "-"
            if a != LITE and d and lite_d:
                cell += f" ({lite_d / d:.2f})"
            row.append(cell)
        rows.append(row + ["RSS per requested byte (rounded to 16), worst size"])
    print(table(headers, rows, left_cols={len(headers) - 1}))


def fragmentation_report(W, allocs):
    w = "fragmentation"
    if not any(W.get(w, a) for a in allocs):
        return
    print("\nFRAGMENTATION  fill with small blocks, free 90% at random, then allocate 1-4 KiB and 64 KiB"
          "\n  blocks totalling what was freed; MiB (medians).  final/live = (final RSS - base RSS) / live"
          "\n  bytes: 1.00 = no memory lost to fragmentation; ~2 = the freed holes were not reused")
    headers = ["allocator", "peak", "after fill", "after free", "final", "live", "final/live",
               "lite final / this"]
    rows = []
    lite_final = W.med(w, LITE, "final_rss_kb")
    for a in allocs:
        m = {k: W.med(w, a, k) for k in ("peak_rss_kb", "filled_rss_kb", "holes_rss_kb",
                                         "final_rss_kb", "live_kb", "base_rss_kb")}
        if m["final_rss_kb"] is None:
            rows.append([a] + ["-"] * 7)
            continue
        mib = lambda k: fmt(m[k] / 1024) if m[k] is not None else "-"
        over = (m["final_rss_kb"] - m["base_rss_kb"]) / m["live_kb"] if m["live_kb"] else None
        rows.append([a, mib("peak_rss_kb"), mib("filled_rss_kb"), mib("holes_rss_kb"),
                     mib("final_rss_kb"), mib("live_kb"), fmt(over),
                     fmt(lite_final / m["final_rss_kb"]) if lite_final else "-"])
    print(table(headers, rows))


def load_density(rows, allocs, out):
    """density.csv and density.dat from the sweep; returns {(size, alloc): density}."""
    data = {}
    with open(os.path.join(out, "density.csv"), "w", newline="") as f:
        wr = csv.writer(f)
        wr.writerow(["size", "allocator", "count", "rss_delta_kb", "density", "density_raw", "status"])
        for r in rows:
            ok = r.get("status") != "fail" and "size" in r
            wr.writerow([r.get("size", ""), r["alloc"], r.get("count", ""), r.get("rss_delta_kb", ""),
                         r.get("density", ""), r.get("density_raw", ""), "ok" if ok else "fail"])
            if ok:
                data[(int(r["size"]), r["alloc"])] = float(r["density"])
    sizes = sorted({s for s, _ in data})
    with open(os.path.join(out, "density.dat"), "w") as f:
        f.write("size " + " ".join(allocs) + "\n")
        for s in sizes:
            f.write(f"{s} " + " ".join(f"{data[(s, a)]:.4f}" if (s, a) in data else "-"
                                      for a in allocs) + "\n")
    return data


def density_max(data, allocs, lo=16, hi=8192):
    """{alloc: (worst density, size)} over sizes lo..hi."""
    result = {}
    for a in allocs:
        pts = [(d, s) for (s, aa), d in data.items() if aa == a and lo <= s <= hi]
        if pts:
            result[a] = max(pts)
    return result


def density_report(data, allocs):
    if not data:
        return
    print("\nDENSITY  RSS growth / (blocks x size rounded up to 16), one process per size; 1.00 is"
          "\n  perfect, 1.25 = a quarter wasted.  Raw-size ratios are in density.csv."
          "\n  lite/best = lite's density / the densest peer's (<=1.00: lite is the densest)")
    headers = ["size"] + allocs + ["lite/best"]
    rows = []
    for s in sorted({s for s, _ in data}):
        vals = {a: data.get((s, a)) for a in allocs}
        peers = [v for a, v in vals.items() if a != LITE and v]
        ratio = vals.get(LITE) / min(peers) if vals.get(LITE) and peers else None
        flag = " <<" if ratio and ratio > 1.10 else ""
        rows.append([str(s)] + [fmt(vals[a]) for a in allocs] + [fmt(ratio) + flag])
    print(table(headers, rows))


def callgrind_report(rows, out):
    if not rows:
        return
    print("\nINSTRUCTIONS per malloc+free pair (callgrind; churn workload: random 8..512 B, live set 4096)"
          "\n  toggle = instructions inside malloc and free, inclusive (--toggle-collect); the figure to use"
          "\n  loop   = churn loop calling malloc/free minus the same loop calling a stand-in; cross-check")
    headers = ["allocator", "toggle", "loop", "loop/toggle"]
    trows = []
    with open(os.path.join(out, "callgrind.csv"), "w", newline="") as f:
        wr = csv.writer(f)
        wr.writerow(["allocator", "method", "instructions_per_pair"])
        for r in rows:
            tg = int(r["toggle_instr"]) / int(r["toggle_pairs"]) if int(r["toggle_instr"]) else None
            lp = None
            if int(r["loop_instr"]) and int(r["base_instr"]):
                lp = (int(r["loop_instr"]) - int(r["base_instr"])) / int(r["loop_pairs"]) \
                    + int(r["stub_instr"])
            wr.writerow([r["alloc"], "toggle", f"{tg:.1f}" if tg else ""])
            wr.writerow([r["alloc"], "loop", f"{lp:.1f}" if lp else ""])
            trows.append([r["alloc"], fmt(tg), fmt(lp), f"{lp / tg:.2f}" if tg and lp else "-"])
    print(table(headers, trows))


def write_csvs(W, meta, allocs, out):
    cols = ["workload", "allocator", "run", "threads", "ops", "seconds", "ops_per_sec",
            "cpu_seconds", "peak_rss_kb", "final_rss_kb", "status", "extra"]
    known = set(cols) | {"alloc", "ok", "tput"}
    with open(os.path.join(out, "results.csv"), "w", newline="") as f:
        wr = csv.writer(f)
        wr.writerow(cols)
        for (w, a), rs in W.runs.items():
            for r in rs:
                extra = ";".join(f"{k}={v}" for k, v in r.items() if k not in known)
                wr.writerow([w, a, r["run"], r.get("threads", 1), r.get("ops", ""), r.get("seconds", ""),
                             f"{r['tput']:.1f}" if r["tput"] else "", r.get("cpu_seconds", ""),
                             r.get("peak_rss_kb", ""), r.get("final_rss_kb", ""),
                             "ok" if r["ok"] else "fail", extra])
    with open(os.path.join(out, "summary.csv"), "w", newline="") as f:
        wr = csv.writer(f)
        wr.writerow(["workload", "allocator", "runs_ok", "threads", "median_ops_per_sec",
                     "median_seconds", "median_cpu_seconds", "median_peak_rss_kb",
                     "median_final_rss_kb", "lite_speed_ratio", "lite_rss_ratio"])
        for w, _ in meta["workloads"]:
            lt, lr = W.med(w, LITE, "tput"), W.med(w, LITE, "peak_rss_kb")
            for a in allocs:
                t, r = W.med(w, a, "tput"), W.med(w, a, "peak_rss_kb")
                wr.writerow([w, a, len(W.get(w, a)), W.threads(w), fmt(t, 6), W.med(w, a, "seconds"),
                             W.med(w, a, "cpu_seconds"), r, W.med(w, a, "final_rss_kb"),
                             f"{lt / t:.3f}" if lt and t else "", f"{lr / r:.3f}" if lr and r else ""])


def main():
    out = sys.argv[1]
    meta = read_meta(os.path.join(out, "meta.txt"))
    allocs = meta["allocators"]
    peers = [a for a in allocs if a != LITE]
    W = Workloads(read_lines(os.path.join(out, "raw.txt")))

    print(f"lite-malloc benchmarks  ({meta.get('date')}, commit {meta.get('commit')}, "
          f"{meta.get('cores')} cores, {'QUICK, ' if meta.get('quick') == '1' else ''}"
          f"{meta.get('runs')} run(s) per row, allocators interleaved)")
    for s in meta["skipped"]:
        print(f"  skipped peer: {s}")
    if meta.get("loads"):
        print(f"  machine load (1-minute average) as each round started: {' '.join(meta['loads'])}"
              f"\n  (above {meta.get('cores')}, other jobs were competing for the cores: expect noise)")
    print(f"  NOTE: this machine has {meta.get('cores')} cores: multi-thread scaling is shown only up to "
          f"{meta.get('cores')} threads.\n  The oversub rows (64, 256, 1024 threads) test heavy "
          "oversubscription, not scaling.  'MT' marks multi-threaded rows.\n")

    density = load_density(read_lines(os.path.join(out, "density_raw.txt")), allocs, out)
    chart = speed_report(W, meta, allocs, peers)
    rss_report(W, meta, allocs, peers, [("16 B-8 KiB", density_max(density, allocs)),
                                        ("8 KiB-1 MiB", density_max(density, allocs, 8193, 1 << 20))])
    fragmentation_report(W, allocs)
    density_report(density, allocs)
    callgrind_report(read_lines(os.path.join(out, "callgrind_raw.txt")), out)
    write_csvs(W, meta, allocs, out)
    with open(os.path.join(out, "speed.dat"), "w") as f:
        f.write("workload " + " ".join(peers) + "\n")
        for w, ratios in chart:
            f.write(w + " " + " ".join(f"{x:.4f}" if x else "-" for x in ratios) + "\n")


if __name__ == "__main__":
    main()
