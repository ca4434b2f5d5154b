"""report.py - what the mars benchmark prints and writes: the machine description, the table
(text and Markdown), <results>/<stamp>.json with every run's raw figures, and the PNG chart
(gnuplot). Called by harness.main() once the scenarios have run; reads Ctx.rows only.

Ratios: a row's median CPU-s/GiB (wall s/GiB) divided by its baseline row's (Row.baseline:
cat, cat>file, cat>tcp). Rows whose throughput the scenario sets (rated=False) get none.
"""
import json
import os
import shutil
import sys

from harness import GiB, fmt_num, read, sh


# ---- machine --------------------------------------------------------------------------

def machine_info(work):
    info = {"nproc": len(os.sched_getaffinity(0)), "uname": " ".join(os.uname()),
            "loadavg_start": os.getloadavg()}
    rc, out, _ = sh(["lscpu"])
    info["lscpu"] = out.strip()
    for line in out.splitlines():
        k, _, v = line.partition(":")
        if k.strip() in ("Model name", "Architecture", "CPU family", "Model", "Thread(s) per core",
                         "Hypervisor vendor", "L2 cache", "L3 cache", "CPU max MHz"):
            key = k.strip().lower().replace(" ", "_").replace("(s)", "s")
            info[key if key.startswith("cpu_") else "cpu_" + key] = v.strip()
    for line in read("/proc/meminfo").splitlines():
        if line.startswith("MemTotal:"):
            info["mem_total_bytes"] = int(line.split()[1]) * 1024
    rc, out, _ = sh(["free", "-b"])
    info["free"] = out.strip()
    for line in read("/etc/os-release").splitlines():
        if line.startswith("PRETTY_NAME="):
            info["os"] = line.split("=", 1)[1].strip('"')
    rc, out, _ = sh(["findmnt", "-no", "SOURCE,FSTYPE", "-T", work])
    if rc == 0 and out.strip():
        src, _, fstype = out.strip().partition(" ")
        info["disk_source"], info["disk_fstype"] = src, fstype.strip()
        dev = os.path.basename(src)
        rc, out, _ = sh(["lsblk", "-dno", "NAME,SIZE,ROTA,MODEL", "/dev/" + dev])
        if rc == 0:
            info["disk"] = " ".join(out.split())
            parts = out.split()
            if len(parts) >= 3:
                info["disk_rotational"] = parts[2] == "1"
    return info


def machine_line(mi):
    return "%s CPUs (%s%s), %.1f GiB RAM, %s, kernel %s, disk %s (%s%s)" % (
        mi.get("nproc"), mi.get("cpu_model_name", "?"),
        ", " + mi["cpu_hypervisor_vendor"] + " VM" if mi.get("cpu_hypervisor_vendor") else "",
        mi.get("mem_total_bytes", 0) / GiB, mi.get("os", "?"), os.uname().release,
        mi.get("disk_source", "?"), mi.get("disk_fstype", "?"),
        ", " + ("rotational" if mi.get("disk_rotational") else "non-rotational")
        if "disk_rotational" in mi else "")


# ---- report ---------------------------------------------------------------------------

COLUMNS = ("scenario", "runs", "lines/s", "MB/s", "CPU-s/GiB", "peak RSS MiB", "wall s",
           "CPU ×base", "wall ×base", "status")


def _cell(st, show_range=True):
    if not st:
        return "-"
    if not show_range or st["n"] == 1 or fmt_num(st["min"]) == fmt_num(st["max"]):
        return fmt_num(st["median"])
    return "%s (%s–%s)" % (fmt_num(st["median"]), fmt_num(st["min"]), fmt_num(st["max"]))


def ratios(row, rows_by_id):
    base = rows_by_id.get(row.baseline) if row.baseline else None
    if not base or not row.rated or base.status != "ok":
        return None, None
    out = []
    for key in ("cpu_s_per_gib", "wall_s_per_gib"):
        a, b = row.stat(key), base.stat(key)
        out.append(a["median"] / b["median"] if a and b and b["median"] > 0 else None)
    return tuple(out)


def table_rows(ctx):
    by_id = {r.id: r for r in ctx.rows}
    out = []
    for r in ctx.rows:
        if r.status == "skipped":
            continue
        cr, wr = ratios(r, by_id)
        status = "FAIL" if r.failed() else r.status
        rated = r.rated
        out.append([
            r.title, "%d" % len(r.runs),
            _cell(r.stat("lines_per_s")), _cell(r.stat("mb_per_s")) if rated else "-",
            _cell(r.stat("cpu_s_per_gib")) if rated else "-", _cell(r.stat("peak_rss_mib")),
            _cell(r.stat("wall_s")),
            ("%.2f× %s" % (cr, by_id[r.baseline].info.get("short", ""))).strip() if cr else "-",
            "%.2f×" % wr if wr else "-", status])
    return out


def render_text(rows):
    widths = [max(len(COLUMNS[i]), *(len(r[i]) for r in rows)) if rows else len(COLUMNS[i])
              for i in range(len(COLUMNS))]
    def line(cells):
        return "  ".join(c.ljust(widths[i]) if i in (0, 9) else c.rjust(widths[i])
                         for i, c in enumerate(cells)).rstrip()
    return "\n".join([line(COLUMNS), line(["-" * w for w in widths])] + [line(r) for r in rows])


def render_markdown(rows):
    out = ["| " + " | ".join(COLUMNS) + " |",
           "| " + " | ".join(["---"] + ["---:"] * 8 + ["---"]) + " |"]
    for r in rows:
        out.append("| " + " | ".join(c.replace("|", "\\|") for c in r) + " |")
    return "\n".join(out)


def notes_and_skips(ctx):
    notes, skips = [], []
    for r in ctx.rows:
        if r.status == "skipped":
            skips.append("%s: skipped (%s)" % (r.title, r.reason))
            continue
        for n in r.notes:
            notes.append("%s: %s" % (r.title, n))
        if r.failed():
            errs = [e for run in r.warmup + r.runs for e in run.errors] or [r.reason]
            for e in dict.fromkeys(errs):
                notes.append("%s: FAIL: %s" % (r.title, e))
    return notes, skips


def write_json(ctx, path, mi, extra):
    by_id = {r.id: r for r in ctx.rows}
    doc = {
        "schema": 1,
        "stamp": ctx.stamp,
        "command": [sys.argv[0]] + sys.argv[1:],
        "options": {"quick": ctx.quick, "runs": ctx.runs, "size_bytes": ctx.size},
        "machine": mi,
        "mars": {"path": ctx.mars_path, "version": ctx.mars.version_line,
                 "io_backends_compiled": ctx.mars.backends,
                 "components": {k: sorted(v) for k, v in ctx.mars.components.items()}},
        "data": {k: {kk: vv for kk, vv in v.items() if kk != "paths"} for k, v in ctx._data.items()},
        "rows": [],
    }
    doc.update(extra)
    for r in ctx.rows:
        cr, wr = ratios(r, by_id)
        doc["rows"].append({
            "id": r.id, "title": r.title, "kind": r.kind, "status": "FAIL" if r.failed() else r.status,
            "reason": r.reason, "baseline": r.baseline, "cpu_ratio": cr, "wall_ratio": wr,
            "info": r.info, "notes": r.notes, "summary": r.summary(),
            "warmup_runs": [x.to_json() for x in r.warmup], "runs": [x.to_json() for x in r.runs]})
    with open(path, "w") as f:
        json.dump(doc, f, indent=1)


def write_chart(ctx, png):
    """CPU-s/GiB per row (log scale, min-max bars) and, when present, RSS over time of the
    blocked-sink runs. Needs gnuplot (Debian gnuplot-nox); returns a reason when skipped."""
    gp = shutil.which("gnuplot")
    if not gp:
        return "gnuplot not installed (scripts/deps.sh test installs gnuplot-nox)"
    d = ctx.dir("chart")
    bars = []
    for r in ctx.rows:
        st = r.stat("cpu_s_per_gib")
        if r.status != "skipped" and r.rated and st:
            bars.append((r.title, st["median"], st["min"], st["max"]))
    series = [(r.title, i, run.extra["rss_samples"]) for r in ctx.rows
              for i, run in enumerate(r.runs) if run.extra.get("rss_samples")]
    if not bars and not series:
        return "nothing to draw"
    panels = (1 if bars else 0) + (1 if series else 0)
    script = ['set terminal pngcairo size 1100,%d font "sans,9"' % (450 * panels + 20),
              'set output "%s"' % png]
    if panels == 2:
        script.append("set multiplot layout 2,1")
    if bars:
        cpu = os.path.join(d, "cpu.dat")
        with open(cpu, "w") as f:
            for i, (t, med, lo, hi) in enumerate(bars):
                f.write('%d "%s" %g %g %g\n' % (i, t.replace('"', "'"), med, lo, hi))
        script += ['set title "mars bench %s: CPU-seconds per GiB (median, min-max; lower is better)"' % ctx.stamp,
                   "set style fill solid 0.6", "set boxwidth 0.6", "set logscale y", "set grid ytics",
                   'set ylabel "CPU-s per GiB (log)"', "set xtics rotate by -25 left noenhanced",
                   "set bmargin 9", "unset key", "set xrange [-0.5:%g]" % (len(bars) - 0.5),
                   'plot "%s" using 1:3:xtic(2) with boxes lc rgb "#4477aa", '
                   '"" using 1:3:4:5 with yerrorbars lc rgb "black" pt 0' % cpu]
    if series:
        plots = []
        for title, i, samples in series:
            fn = os.path.join(d, "rss%d.dat" % len(plots))
            with open(fn, "w") as f:
                for t, kib in samples:
                    f.write("%g %g\n" % (t, kib / 1024.0))
            plots.append('"%s" using 1:2 with lines lw 2 title "run %d"' % (fn, i + 1))
        stop = ctx.args.blocked_seconds
        top = 1.3 * max(k for _, _, ss in series for _, k in ss) / 1024.0
        script += ["unset logscale y", "set xrange [0:*]", "set bmargin 4", "set xtics norotate",
                   "set key bottom left horizontal noenhanced",
                   'set title "%s: RSS over time (must stay flat)"' % series[0][0].replace('"', "'"),
                   'set xlabel "seconds"', 'set ylabel "RSS MiB"', "set yrange [0:%g]" % top,
                   'set arrow from %g, graph 0 to %g, graph 1 nohead dt 2 lc rgb "gray40"' % (stop, stop),
                   'set label "SIGTERM" at %g, graph 0.5 right offset -0.5,0 tc rgb "gray40"' % stop,
                   "plot " + ", ".join(plots)]
    if panels == 2:
        script.append("unset multiplot")
    sp = os.path.join(d, "chart.gp")
    with open(sp, "w") as f:
        f.write("\n".join(script) + "\n")
    rc, out, err = sh([gp, sp])
    if rc != 0:
        return "gnuplot failed: %s" % err.strip()[:300]
    return None


def link_latest(results, stamp, exts):
    for ext in exts:
        src = "%s.%s" % (stamp, ext)
        if not os.path.exists(os.path.join(results, src)):
            continue
        dst = os.path.join(results, "latest.%s" % ext)
        try:
            if os.path.islink(dst) or os.path.exists(dst):
                os.remove(dst)
            os.symlink(src, dst)
        except OSError:
            pass
