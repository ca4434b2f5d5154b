#!/usr/bin/python3
"""scenarios.py - what the mars benchmark runs: baselines, mars scenarios, peers. Entry point of
bench/run (which only checks for /usr/bin/python3 and starts this file).

Each entry of SCENARIOS has an id (for --only), a title, `needs` (component kinds and types
the mars binary must have: `mars describe TYPE` exits 0 and the listing shows the type under
that kind), an optional io `backend`, and a function that runs it `ctx.runs` times and returns
its table rows. A scenario whose needs are missing is listed as "skipped (needs ...)" and
switches on by itself when the component lands. Configs for components that do not exist
yet pick option names from `mars describe` (Mars.pick) and are checked with `mars validate`
first: if the component landed with other option names, the scenario FAILS with mars's own
message rather than measuring nothing. To add a scenario, see bench/README.md.

Checks that make a run count (any failure makes bench/run exit 1):
- mars exits 0 by itself (--once) or after the SIGTERM the scenario sends;
- the sink's summary line shows exactly the expected events, no errors, nothing dropped;
- receivers (tcp, http, a downstream mars) counted exactly the expected lines;
- blocked sink: RSS from 25% to 100% of the run grows by at most 10%.
"""
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import GiB, MiB, Row, Run, check_counts, check_exit, read, tail  # noqa: E402

DEFAULTS = {"runs": 5, "quick_runs": 2, "size": 1 * GiB, "quick_size": 64 * MiB,
            "blocked_s": 30.0, "quick_blocked_s": 5.0}
SEED = 42
RSS_FLAT_LIMIT = 0.10     # blocked sink: allowed RSS growth from 25% to 100% of the run
SLOW_SINK_RATE = 1000     # events/s the blocked sink accepts
LATENCY_RATE = 10000      # lines/s of the fixed-rate writer


class ConfigRejected(Exception):
    pass


# ---- data sets ------------------------------------------------------------------------

def data_big(ctx):
    p = ctx.path("data", "mixed.log")
    lines, nbytes = ctx.gen(p, "--format", "mixed", "--bytes", ctx.size, "--seed", SEED)
    return {"path": p, "lines": lines, "bytes": nbytes, "format": "mixed"}


def data_json(ctx):
    p = ctx.path("data", "app-json.log")
    lines, nbytes = ctx.gen(p, "--format", "json", "--bytes", ctx.size, "--seed", SEED + 1,
                            "--invalid-permille", 0)  # valid JSON: parse must report 0 errors
    debug = int(subprocess.run(["grep", "-c", "-F", '"level":"debug"', p],
                               stdout=subprocess.PIPE).stdout.decode().strip() or 0)
    return {"path": p, "lines": lines, "bytes": nbytes, "format": "json", "debug_lines": debug}


def data_nginx(ctx):
    p = ctx.path("data", "nginx.log")
    lines, nbytes = ctx.gen(p, "--format", "nginx", "--bytes", ctx.size, "--seed", SEED + 2,
                            "--invalid-permille", 0)
    return {"path": p, "lines": lines, "bytes": nbytes, "format": "nginx"}


def data_many(ctx):
    n = 64 if ctx.quick else 1000
    d = ctx.dir("data", "many")
    paths, lines, nbytes = [], 0, 0
    for i in range(n):
        p = os.path.join(d, "app-%04d.log" % i)
        l, b = ctx.gen(p, "--format", "mixed", "--bytes", MiB, "--seed", SEED + 1000 + i)
        paths.append(p)
        lines += l
        nbytes += b
    return {"paths": paths, "glob": os.path.join(d, "*.log"), "dir": d, "lines": lines, "bytes": nbytes}


def data_pods(ctx):
    """200 pods' CRI logs in the kubelet layout /var/log/pods/<ns>_<pod>_<uid>/<container>/0.log."""
    root = ctx.dir("data", "pods")
    per = max(ctx.size // 200, 64 * 1024)
    paths, lines, nbytes, full = [], 0, 0, 0
    for i in range(200):
        d = os.path.join(root, "bench_app-%03d_%08x-0000-4000-8000-%012x" % (i, i, i), "app")
        os.makedirs(d, exist_ok=True)
        p = os.path.join(d, "0.log")
        l, b = ctx.gen(p, "--format", "cri", "--bytes", per, "--seed", SEED + 5000 + i)
        full += int(subprocess.run(["grep", "-c", "-E", "^[^ ]+ (stdout|stderr) F ", p],
                                   stdout=subprocess.PIPE).stdout.decode().strip() or 0)
        paths.append(p)
        lines += l
        nbytes += b
    return {"paths": paths, "dir": root, "lines": lines, "bytes": nbytes, "full_lines": full}


# ---- configs --------------------------------------------------------------------------

def write_config(ctx, name, cfg, validate=True):
    p = ctx.path("configs", name + ".yaml")
    cfg = dict(ctx.mars.common_config(ctx.work), **cfg)
    with open(p, "w") as f:
        f.write("# written by bench/scenarios.py\n" + harness.yaml_dump(cfg) + "\n")
    if validate:
        ok, msg = ctx.mars.validate(p)
        if not ok:
            raise ConfigRejected("mars validate rejected the bench config %s (update bench/scenarios.py "
                                 "for the component's options): %s" % (p, tail(msg, 6)))
    return p


def fresh_state(ctx, name):
    d = ctx.dir("state", name)
    subprocess.run(["rm", "-rf", d])
    os.makedirs(d)
    return d


def file_source(ctx, paths):
    """A `file` source reading `paths` (a list of files or globs) from the beginning."""
    m = ctx.mars
    opt = m.pick("source", "file", "include", "paths", "path")
    t = m.options("source", "file").get(opt, "list")
    src = {"type": "file", opt: paths if ("list" in t or len(paths) > 1) else paths[0]}
    start = m.pick("source", "file", "read_from", "start_at", "start_position")
    if start in m.options("source", "file"):
        src[start] = m.pick_value("source", "file", start, "beginning", "start", "head", "oldest")
    return src


def reader(ctx, data):
    """The source for a single-file scenario: the file source when mars has one, else stdin
    with the file redirected (a regular file). Returns (source config, stdin path, label)."""
    if ctx.mars.has("source", "file"):
        return file_source(ctx, [data["path"]]), None, "file"
    return {"type": "stdin"}, data["path"], "file (via stdin)"


# ---- running mars ---------------------------------------------------------------------

def once(ctx, name, cfg, expect, lines, nbytes, stdin=None, env=None, limit=None):
    """One `mars --once` run: exit 0 by itself and exact counts, or a failed Run. limit: seconds
    before the run is killed as hung (default from the bytes it moves)."""
    cfg = dict(cfg, data_dir=fresh_state(ctx, name))
    conf = write_config(ctx, name, cfg)
    err = ctx.path("logs", name + ".err")
    m = ctx.measure([ctx.mars.path, "--once", "-c", conf], stdin=stdin, stderr=err, env=env,
                    hard_limit=limit or ctx.hard_limit(nbytes))
    run = Run(m, lines, nbytes)
    check_exit(run, m)
    text = read(err)
    check_counts(run, text, expect)
    run.extra["backend"] = harness.backend_of(text)
    if not run.ok:
        run.extra["stderr_tail"] = tail(text)
    return run


def backend_env(ctx, backend):
    return {"MARS_IO_BACKEND": backend} if backend else None


def check_backend(run, backend):
    if backend and run.extra.get("backend") not in (None, backend):
        run.fail("asked for io backend %s, mars ran %s" % (backend, run.extra.get("backend")))


def repeat(ctx, row, fn, warmup=True):
    """ctx.runs measured runs of fn(i), after one warm-up run (fn(-1)) that is checked like the
    others but left out of the figures: on a VM the first touch of fresh memory or page cache
    can cost several times a steady run, which would measure the hypervisor, not the program.
    The first failed run ends the scenario (it has failed; a hang would cost its time limit
    on every further run)."""
    for i in range(-1 if warmup else 0, ctx.runs):
        subprocess.run(["sync"])  # untimed: no earlier run's writeback lands in this one
        r = fn(i)
        (row.warmup if i < 0 else row.runs).append(r)
        if not r.ok:
            if i + 1 < ctx.runs:
                row.notes.append("stopped after the first failed run")
            break
    return row


# ---- baselines ------------------------------------------------------------------------

def run_cat(ctx, sc):
    d = ctx.data("big", data_big)
    row = ctx.add(Row("cat", "cat DATA > /dev/null", "baseline", baseline="cat"))
    row.info["short"] = "cat"

    def one(i):
        m = ctx.measure(["cat", d["path"]], hard_limit=ctx.hard_limit(d["bytes"]))
        r = Run(m, d["lines"], d["bytes"])
        check_exit(r, m, "cat")
        return r
    return [repeat(ctx, row, one)]


def run_linecount(ctx, sc):
    d = ctx.data("big", data_big)
    row = ctx.add(Row("linecount", "linecount (memchr, 256 KiB reads)", "baseline", baseline="cat"))

    def one(i):
        out = ctx.path("logs", "linecount.out")
        m = ctx.measure([ctx.tool("linecount"), d["path"]], stdout=out, hard_limit=ctx.hard_limit(d["bytes"]))
        r = Run(m, d["lines"], d["bytes"])
        check_exit(r, m, "linecount")
        got = re.search(r"lines=(\d+)", read(out))
        if not got or int(got.group(1)) != d["lines"]:
            r.fail("linecount counted %s lines, gen wrote %d" % (got and got.group(1), d["lines"]))
        return r
    return [repeat(ctx, row, one)]


def run_ev_read(ctx, sc):
    """The ev-level read benchmark (issue 4): bench/ev_read reads the big file through one
    backend into 256 KiB buffers, four reads in flight, and finds its lines as mars's line
    cutter does; compared with cat of the same file in this run. The +fixed variant reads into
    one registered region (fixed reads), as mars's chunk pool does."""
    d = ctx.data("big", data_big)
    fixed = sc.id.endswith("+fixed")
    row = ctx.add(Row(sc.id, "ev_read: file → %s loop%s → line index"
                      % (sc.backend, ", fixed reads" if fixed else ""), "mars", baseline="cat"))
    exe, why = ctx.ev_read_tool()
    if not exe:
        row.skip(why)
        return [row]

    def one(i):
        out = ctx.path("logs", "ev_read.out")
        m = ctx.measure([exe, d["path"], "-r", "1", "-b", sc.backend, "--no-cat"] +
                        (["--fixed-only"] if fixed else []), stdout=out,
                        hard_limit=ctx.hard_limit(d["bytes"]))
        r = Run(m, d["lines"], d["bytes"])
        check_exit(r, m, "ev_read")
        got = re.search(r"^lines (\d+)$", read(out), re.M)
        if not got or int(got.group(1)) != d["lines"]:
            r.fail("ev_read counted %s lines, gen wrote %d" % (got and got.group(1), d["lines"]))
        return r
    return [repeat(ctx, row, one)]


def run_cat_write(ctx, sc):
    d = ctx.data("big", data_big)
    row = ctx.add(Row("cat-write", "cat DATA > FILE (write baseline)", "baseline", baseline="cat-write"))
    row.info["short"] = "cat>file"
    out = ctx.path("out", "cat-write.txt")

    def one(i):
        m = ctx.measure(["cat", d["path"]], stdout=out, hard_limit=ctx.hard_limit(d["bytes"]))
        r = Run(m, d["lines"], d["bytes"])
        check_exit(r, m, "cat")
        if os.path.getsize(out) != d["bytes"]:
            r.fail("wrote %d bytes, expected %d" % (os.path.getsize(out), d["bytes"]))
        os.remove(out)  # unlinked before writeback: the next runs do not pay for it
        return r
    return [repeat(ctx, row, one)]


# ---- mars scenarios: available today --------------------------------------------------

def run_file_blackhole(ctx, sc):
    d = ctx.data("big", data_big)
    src, stdin, label = reader(ctx, d)
    title = "%s → blackhole [%s]" % (label, sc.backend)
    row = ctx.add(Row(sc.id, title, "mars", baseline="cat"))
    cfg = {"sources": {"in": src}, "sinks": {"b": {"type": "blackhole", "inputs": ["in"]}}}

    def one(i):
        r = once(ctx, sc.id, cfg, {"b": d["lines"]}, d["lines"], d["bytes"], stdin=stdin,
                 env=backend_env(ctx, sc.backend))
        check_backend(r, sc.backend)
        return r
    return [repeat(ctx, row, one)]


def run_disk_blackhole(ctx, sc):
    """One large file → blackhole through a disk buffer (buffer.type: disk, `mars --once`
    drains it before exiting): every batch is written to a segment file, read back and
    decoded; beside file-blackhole it is what the disk buffer costs."""
    d = ctx.data("big", data_big)
    src, stdin, label = reader(ctx, d)
    comp = sc.extra.get("compression", "none")
    row = ctx.add(Row(sc.id, "%s → disk buffer (%s) → blackhole" % (label, comp), "mars",
                      baseline="cat"))
    cfg = {"sources": {"in": src},
           "sinks": {"b": {"type": "blackhole", "inputs": ["in"],
                           "buffer": {"type": "disk", "max_size": "8GiB", "compression": comp}}}}

    def one(i):
        return once(ctx, sc.id, cfg, {"b": d["lines"]}, d["lines"], d["bytes"], stdin=stdin)
    return [repeat(ctx, row, one)]


def run_until(ctx, name, cfg, done, limit):
    """A long-running mars (not --once) with its admin API on 127.0.0.1 (a unix socket path
    under the work dir can exceed the 108 bytes sun_path allows), stopped with SIGTERM once
    done(address, seconds since start) returns (True, value), polled every 0.1 s, or after
    `limit` seconds (measure kills it 30 s later). Returns (measure JSON, seconds from start
    to done or None, the last value, stderr text)."""
    sock = "127.0.0.1:%d" % harness.free_port()
    conf = write_config(ctx, name, dict(cfg, api={"enabled": True, "address": sock}))
    err = ctx.path("logs", name + ".err")
    t0 = time.monotonic()
    p = ctx.measure([ctx.mars.path, "-c", conf], stderr=err, kill_grace=20, hard_limit=limit + 30, wait=False)
    at, last = None, None
    try:
        while time.monotonic() - t0 < limit and p.poll() is None:
            ok, last = done(sock, time.monotonic() - t0)
            if ok:
                at = time.monotonic() - t0
                break
            time.sleep(0.1)
    finally:
        p.send_signal(signal.SIGTERM)  # measure forwards it to mars
    return harness.finish_measure(p), at, last, read(err)


def run_disk_blocked(ctx, sc):
    """The disk buffer as it is meant to be used (issue 19): the sink is down, the file is
    spooled to disk, then the sink comes back and the backlog is replayed, on the same data
    as file-disk-blackhole. Spool: mars reads the big file into sink `b`, a tcp sink to a port
    where nothing listens (it keeps failing, retry backoff 1-5 s), behind `buffer: {type:
    disk}`; once the admin API shows every line in mars_buffer_disk_events, SIGTERM (a failing
    sink leaves its records on disk). Replay: mars on the same data_dir with `b` now a
    blackhole and the same file source (its checkpoint is at the end: nothing is read again),
    stopped with SIGTERM once the API shows every line sent. The replay is not `mars --once`:
    --once exits as soon as its sources finish and does not wait for a backlog a previous run
    left on disk (it drains only what it wrote itself). One row for both phases (what an
    outage costs per GiB, beside file-disk-blackhole and file-blackhole), one per phase."""
    d = ctx.data("big", data_big)
    n, nbytes = d["lines"], d["bytes"]
    src = file_source(ctx, [d["path"]])
    buf = {"type": "disk", "max_size": "8GiB"}
    sync = sc.extra.get("sync")  # unset: the default, interval
    if sync:
        buf["sync"] = sync
    tag = " (sync: %s)" % sync if sync else ""
    row = ctx.add(Row(sc.id, "file → disk buffer%s, sink blocked then released → blackhole" % tag, "mars",
                      baseline="cat"))
    spool_row = ctx.add(Row(sc.id + "-spool", "  … spool: file → disk buffer, tcp sink down", "mars",
                            baseline="cat"))
    replay_row = ctx.add(Row(sc.id + "-replay", "  … replay: disk buffer → blackhole", "mars", baseline="cat"))
    limit = ctx.hard_limit(nbytes)
    metric = lambda sock, name: api_metric(sock, name, "b")

    def phase(what, name, cfg, done, check):
        m, at, last, text = run_until(ctx, name, cfg, done, limit)
        r = Run(m, n, nbytes)
        check_exit(r, m, "mars (%s)" % what)
        if not m.get("term_sent"):
            r.fail("%s: mars exited before it was stopped" % what)
        summ = harness.parse_summary(text)
        r.extra.update({"summary": summ, "process_wall_s": m["wall_s"], "stop_s": m.get("term_to_exit_s")})
        if at is None:
            r.fail("%s: %s %s (the API showed %s)" % (
                what, check, "before mars exited" if not m.get("term_sent") else "within %.0f s" % limit, last))
        else:
            r.wall_s = at  # start to the moment the API showed it done; the stop is in process_wall_s
        return r, summ, text

    def one(i):
        state = fresh_state(ctx, sc.id)
        dead = "127.0.0.1:%d" % harness.free_port()  # nothing listens there
        sp, summ, text = phase(
            "spool", sc.id + "-spool",
            {"runtime": {"shutdown_timeout": "10s"}, "data_dir": state, "sources": {"in": src},
             "sinks": {"b": {"type": "tcp", "inputs": ["in"], "address": dead, "buffer": buf,
                             "retry": {"initial_backoff": "1s", "max_backoff": "5s"}}}},
            lambda sock, t: (lambda v: (v is not None and v >= n, v))(metric(sock, "mars_buffer_disk_events")),
            "mars_buffer_disk_events of [b] did not reach the %d lines" % n)
        s, b = summ.get("in"), summ.get("b")
        if not s or s["received"] != n or s["disc_unint"]:
            sp.fail("spool: the file source read %s lines, expected exactly %d" % (s and s["received"], n))
        if not b or b["received"] != n or b["sent"] or b["disc_unint"]:
            sp.fail("spool: [b] (tcp to a closed port) should have received %d and sent 0: %s" % (n, b))
        (spool_row.warmup if i < 0 else spool_row.runs).append(sp)
        r = Run({"wall_s": sp.wall_s, "user_s": sp.user_s, "sys_s": sp.sys_s, "maxrss_kib": sp.maxrss_kib}, n, nbytes)
        r.errors, r.ok = list(sp.errors), sp.ok
        if not sp.ok:
            sp.extra["stderr_tail"] = tail(text)
            return r
        first = []

        def delivered(sock, t):
            v = metric(sock, "mars_component_sent_events_total")
            if v and not first:
                first.append(t)
            return (v is not None and v >= n, v)
        rp, summ, text = phase(
            "replay", sc.id + "-replay",
            {"runtime": {"shutdown_timeout": "10s"}, "data_dir": state, "sources": {"in": src},
             "sinks": {"b": {"type": "blackhole", "inputs": ["in"], "buffer": buf}}},
            delivered, "the blackhole [b] did not count the %d lines" % n)
        check_counts(rp, text, {"in": 0})  # nothing read again: the checkpoint was at the end
        b = summ.get("b")  # received counts what came from its inputs (none); sent, what it delivered
        if not b or b["received"] or b["sent"] != n or b["errors"] or b["disc_unint"]:
            rp.fail("[b] should have sent exactly the %d spooled lines and received none: %s" % (n, b))
        on_disk = sum(int(x) for x in re.findall(r"\[b\] disk buffer \S+: (\d+) events in \d+ segments", text))
        if on_disk != n:
            rp.fail("mars found %d events on disk at start, expected %d" % (on_disk, n))
        if first:
            rp.extra["first_sent_s"] = first[0]
        rp.errors = ["replay: " + e for e in rp.errors]
        if not rp.ok:
            rp.extra["stderr_tail"] = tail(text)
        (replay_row.warmup if i < 0 else replay_row.runs).append(rp)
        r.wall_s += rp.wall_s
        r.user_s += rp.user_s
        r.sys_s += rp.sys_s
        r.cpu_s = r.user_s + r.sys_s
        r.maxrss_kib = max(sp.maxrss_kib, rp.maxrss_kib)
        r.extra.update({"spool_cpu_s": sp.cpu_s, "spool_wall_s": sp.wall_s, "replay_cpu_s": rp.cpu_s,
                        "replay_wall_s": rp.wall_s})
        if not rp.ok:
            r.ok = False
            r.errors += rp.errors
        return r
    repeat(ctx, row, one)
    ok = [(a, b) for a, b in zip(spool_row.runs, replay_row.runs) if a.ok and b.ok]
    if ok:
        med = lambda f: statistics.median(f(a, b) for a, b in ok)
        gib = nbytes / GiB
        row.notes.append(
            "medians: CPU-s/GiB spool %.2f + replay %.2f; write %.0f MB/s, replay %.0f MB/s (%.0f MB/s from "
            "the first event sent); peak RSS spool %.1f MiB, replay %.1f MiB. Wall is to the moment the API "
            "showed every line on disk (spool) or sent (replay), polled every 0.1 s; the replay's includes "
            "its start and the wait for the disk buffer's first 1 s tick, which starts the read-back of a "
            "backlog found at start (first event sent after %s s); CPU is each whole process's, start to "
            "exit after SIGTERM (spool stop %s s)" % (
                med(lambda a, b: a.cpu_s) / gib, med(lambda a, b: b.cpu_s) / gib,
                med(lambda a, b: nbytes / 1e6 / a.wall_s), med(lambda a, b: nbytes / 1e6 / b.wall_s),
                med(lambda a, b: nbytes / 1e6 / max(b.wall_s - b.extra.get("first_sent_s", 0), 0.1)),
                med(lambda a, b: a.maxrss_kib) / 1024, med(lambda a, b: b.maxrss_kib) / 1024,
                "/".join("%.2f" % b.extra.get("first_sent_s", 0) for _, b in ok),
                "/".join("%.1f" % (a.extra.get("stop_s") or 0) for a, _ in ok)))
    a = row.stat("cpu_s_per_gib")
    for base in ("file-blackhole@", "file-disk-blackhole"):
        other = next((x for x in ctx.rows if x.id.startswith(base) and not x.failed() and x.stat("cpu_s_per_gib")),
                     None)
        if a and other:
            extra = a["median"] - other.stat("cpu_s_per_gib")["median"]
            row.notes.append("%+.2f CPU-s/GiB over %s (same run)%s" % (
                extra, other.title, ": target < 1.0 over the memory path %s" % ("met" if extra < 1.0 else "NOT met")
                if base == "file-blackhole@" else ""))
    return [row, spool_row, replay_row]


def run_stdin_blackhole(ctx, sc):
    """The same file through the stdin source: beside the file source's row it shows what the
    file source costs on top of reading lines."""
    d = ctx.data("big", data_big)
    row = ctx.add(Row(sc.id, "stdin (< FILE) → blackhole", "mars", baseline="cat"))
    cfg = {"sources": {"in": {"type": "stdin"}}, "sinks": {"b": {"type": "blackhole", "inputs": ["in"]}}}
    return [repeat(ctx, row, lambda i: once(ctx, sc.id, cfg, {"b": d["lines"]}, d["lines"], d["bytes"],
                                             stdin=d["path"]))]


def run_many_files(ctx, sc):
    d = ctx.data("many", data_many)
    row = ctx.add(Row(sc.id, "%d files of 1 MiB → blackhole [%s]" % (len(d["paths"]), sc.backend),
                      "mars", baseline="cat"))
    cfg = {"sources": {"in": file_source(ctx, [d["glob"]])},
           "sinks": {"b": {"type": "blackhole", "inputs": ["in"]}}}

    def one(i):
        r = once(ctx, sc.id, cfg, {"b": d["lines"]}, d["lines"], d["bytes"],
                 env=backend_env(ctx, sc.backend))
        check_backend(r, sc.backend)
        return r
    row.notes.append("ratios against cat of the single large file (same bytes per GiB)")
    return [repeat(ctx, row, one)]


def run_demo(ctx, sc):
    count = max(200000, int(10_000_000 * ctx.size / GiB))
    row = ctx.add(Row(sc.id, "demo (%s lines) → blackhole" % harness.fmt_num(count), "mars", baseline="cat"))
    cfg = {"sources": {"gen": {"type": "demo", "rate": 0, "count": count, "format": "mixed", "seed": 1}},
           "sinks": {"b": {"type": "blackhole", "inputs": ["gen"]}}}

    def one(i):
        r = once(ctx, sc.id, cfg, {"b": count}, count, 0, limit=60 + count * 2e-5)
        s = r.extra.get("summary", {}).get("b")
        r.bytes = s["bytes"] if s else 0  # message bytes generated: no input file here
        return r
    row.notes.append("generator throughput; MB/s and ratios use the bytes of the generated "
                     "messages (no input file)")
    return [repeat(ctx, row, one)]


def run_stdin_file(ctx, sc):
    d = ctx.data("big", data_big)
    row = ctx.add(Row(sc.id, "stdin → file sink (text)", "mars", baseline="cat-write"))
    out = ctx.path("out", "mars-file-sink.txt")
    cfg = {"sources": {"in": {"type": "stdin"}},
           "sinks": {"out": {"type": "file", "inputs": ["in"], "path": out, "encoding": "text"}}}

    def one(i):
        if os.path.exists(out):
            os.remove(out)  # the file sink appends
        r = once(ctx, sc.id, cfg, {"out": d["lines"]}, d["lines"], d["bytes"], stdin=d["path"])
        size = os.path.getsize(out) if os.path.exists(out) else -1
        if size != d["bytes"]:
            r.fail("output file has %d bytes, input %d (text encoding writes each line as it was)"
                   % (size, d["bytes"]))
        if os.path.exists(out):
            os.remove(out)
        return r
    return [repeat(ctx, row, one)]


def rss_flatness(samples, duration):
    """(rss at 25% of the run, max rss from 25% to 100%, growth) over samples before the stop."""
    window = [(t, k) for t, k in samples if t <= duration + 0.01]
    if len(window) < 4:
        return None
    t25 = 0.25 * duration
    at25 = min(window, key=lambda s: abs(s[0] - t25))[1]
    later = [k for t, k in window if t >= t25]
    peak = max(later)
    return at25, peak, (peak - at25) / at25 if at25 else 0.0


def run_blocked(ctx, sc):
    dur = ctx.args.blocked_seconds
    row = ctx.add(Row(sc.id, "blocked sink %gs (demo → blackhole rate %d/s)" % (dur, SLOW_SINK_RATE),
                      "mars", rated=False))
    cfg = {"runtime": {"shutdown_timeout": "10s"},
           "sources": {"gen": {"type": "demo", "rate": 0, "count": 0, "format": "mixed", "batch_events": 100}},
           "sinks": {"slow": {"type": "blackhole", "inputs": ["gen"], "rate": SLOW_SINK_RATE,
                              "buffer": {"max_events": 2000, "max_bytes": "1MiB", "when_full": "block"},
                              "batch": {"max_events": 100}}}}
    verdicts = []

    def one(i):
        name = "%s-%d" % (sc.id, i)
        c = dict(cfg, data_dir=fresh_state(ctx, sc.id))
        conf = write_config(ctx, sc.id, c)
        err, rssf = ctx.path("logs", name + ".err"), ctx.path("logs", name + ".rss")
        m = ctx.measure([ctx.mars.path, "-c", conf], stderr=err, sample_ms=500, rss_file=rssf,
                        term_after=dur, kill_grace=20, hard_limit=dur + 60)
        text = read(err)
        summ = harness.parse_summary(text)
        s = summ.get("slow")
        sent = s["sent"] if s else 0
        r = Run(m, sent, s["bytes"] if s else 0)
        r.extra["summary"] = summ
        r.extra["backend"] = harness.backend_of(text)
        check_exit(r, m)
        if not m.get("term_sent"):
            r.fail("mars exited before it was stopped")
        r.extra["stop_s"] = m.get("term_to_exit_s")
        if not s:
            r.fail("no summary line for [slow] on stderr")
        else:
            if s["errors"] or s["disc_unint"]:
                r.fail("[slow] %d errors, %d discarded unintentionally" % (s["errors"], s["disc_unint"]))
            if sent < 0.5 * SLOW_SINK_RATE * dur:
                r.fail("the slow sink accepted only %d events in %.0f s (rate %d/s)" % (sent, dur, SLOW_SINK_RATE))
        samples = []
        for line in read(rssf).splitlines():
            t, k = line.split()
            samples.append((float(t), int(k)))
        r.extra["rss_samples"] = samples
        flat = rss_flatness(samples, dur)
        if flat is None:
            r.fail("too few RSS samples (%d)" % len(samples))
        else:
            at25, peak, growth = flat
            r.extra.update({"rss_at_25pct_kib": at25, "rss_max_after_25pct_kib": peak,
                            "rss_growth": growth, "rss_flat": growth <= RSS_FLAT_LIMIT})
            verdicts.append((growth, at25, peak))
            if growth > RSS_FLAT_LIMIT:
                r.fail("RSS grew %.1f%% from 25%% to 100%% of the run (%d → %d KiB), limit %d%%"
                       % (growth * 100, at25, peak, RSS_FLAT_LIMIT * 100))
        if not r.ok:
            r.extra["stderr_tail"] = tail(text)
        return r
    repeat(ctx, row, one, warmup=False)  # 30 s runs: a warm-up would cost more than it tells
    if verdicts:
        g = max(v[0] for v in verdicts)
        row.notes.append("RSS flat within %d%%: %s (worst growth from 25%% to 100%% of the run %+.1f%%, "
                         "%.1f → %.1f MiB); stop SIGTERM → exit 0 in %s s" % (
                             RSS_FLAT_LIMIT * 100, "PASS" if g <= RSS_FLAT_LIMIT else "FAIL", g * 100,
                             max(verdicts)[1] / 1024, max(verdicts)[2] / 1024,
                             "/".join("%.1f" % r.extra.get("stop_s", 0) for r in row.runs)))
    return [row]


# ---- mars scenarios: waiting for their components ------------------------------------

def run_k8s(ctx, sc):
    d = ctx.data("pods", data_pods)
    m = ctx.mars
    src = {"type": "kubernetes_logs", m.pick("source", "kubernetes_logs", "pods_root", "pods_dir", "log_dir", "path", "root"): d["dir"]}
    if "metadata" in m.options("source", "kubernetes_logs"):
        src["metadata"] = False
    row = ctx.add(Row(sc.id, "kubernetes_logs (200 pods, CRI JSON) → parse → blackhole", "mars", baseline="cat"))
    cfg = {"sources": {"pods": src},
           "transforms": {"app": {"type": "parse", "inputs": ["pods"], "format": "json", "field": "message"}},
           "sinks": {"b": {"type": "blackhole", "inputs": ["app"]}}}
    row.notes.append("expects one event per CRI `F` line (partial `P` lines joined); %d files" % len(d["paths"]))
    n = k8s_events(d)
    return [repeat(ctx, row, lambda i: once(ctx, sc.id, cfg, {"b": n}, n, d["bytes"]))]


def k8s_events(d):
    """Events kubernetes_logs --once makes of the pods data: one per `F` line, plus one per
    file that ends inside a partial (`P`) line (emitted as it is at the end, never lost)."""
    if "k8s_events" not in d:
        open_runs = 0
        for p in d["paths"]:
            with open(p, "rb") as f:
                f.seek(max(0, os.path.getsize(p) - 65536))
                last = f.read().rstrip(b"\n").rsplit(b"\n", 1)[-1]
            open_runs += last.split(b" ", 3)[2:3] == [b"P"]
        d["k8s_events"] = d["full_lines"] + open_runs
    return d["k8s_events"]


def k8s_fake_api(ctx, d):
    """tests/fakes/k8s_api.py with the 200 bench pods on node bench-node; returns (process, url)."""
    api = subprocess.Popen(["/usr/bin/python3", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fakes", "k8s_api.py")],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    url = "http://127.0.0.1:%s" % api.stdout.readline().decode().strip()

    def post(path, obj):
        req = urllib.request.Request(url + path, json.dumps(obj).encode(), method="POST")
        urllib.request.urlopen(req, timeout=10).read()
    post("/control/namespace", {"metadata": {"name": "bench", "labels": {"env": "bench"}}})
    for p in d["paths"]:
        ns, pod, uid = os.path.basename(os.path.dirname(os.path.dirname(p))).split("_")
        post("/control/pod", {"metadata": {"name": pod, "namespace": ns, "uid": uid,
                                           "labels": {"app": "bench", "pod": pod},
                                           "annotations": {"team": "bench"},
                                           "ownerReferences": [{"kind": "ReplicaSet", "name": "app-5d78c9869d",
                                                                "controller": True}]},
                              "spec": {"nodeName": "bench-node", "containers": [{"name": "app", "image": "app:1"}]},
                              "status": {"podIP": "10.0.0.1"}})
    return api, url


def run_k8s_blackhole(ctx, sc):
    """kubernetes_logs → blackhole, without metadata and with it (from the fake API server):
    what decoding, merging and the pod fields cost, and how many API requests one run makes
    (one list and one watch per resource, not one per pod or line)."""
    d = ctx.data("pods", data_pods)
    meta = sc.id.endswith("-meta")
    src = {"type": "kubernetes_logs", "pods_root": d["dir"], "metadata": meta}
    api = None
    if meta:
        api, url = k8s_fake_api(ctx, d)
        src.update({"api_url": url, "node_name": "bench-node"})
    title = "kubernetes_logs (200 pods, CRI JSON) → blackhole, metadata %s" % ("on" if meta else "off")
    row = ctx.add(Row(sc.id, title, "mars", baseline="cat"))
    cfg = {"sources": {"pods": src}, "sinks": {"b": {"type": "blackhole", "inputs": ["pods"]}}}
    try:
        n = k8s_events(d)
        repeat(ctx, row, lambda i: once(ctx, sc.id, cfg, {"b": n}, n, d["bytes"]))
        if api:
            stats = json.load(urllib.request.urlopen(url + "/control/stats", timeout=10))
            runs = len(row.runs) + len(row.warmup)
            row.notes.append("API requests over %d runs: %s (per run: %s)" % (
                runs, json.dumps(stats), ", ".join("%s %.1f" % (k, v / max(runs, 1)) for k, v in stats.items() if v)))
    finally:
        if api:
            api.kill()
            api.wait()
    return [row]


def passthrough(ctx, sc, d, label):
    """file → blackhole on a scenario's own data set: the transforms' rows are compared with it
    (the same bytes, the same source), as well as with cat."""
    src, stdin, how = reader(ctx, d)
    row = ctx.add(Row(sc.id + "-passthrough", "%s → blackhole (%s data)" % (how, label), "mars", baseline="cat"))
    cfg = {"sources": {"in": src}, "sinks": {"out": {"type": "blackhole", "inputs": ["in"]}}}
    return repeat(ctx, row, lambda i: once(ctx, sc.id + "-pt", cfg, {"out": d["lines"]}, d["lines"], d["bytes"],
                                            stdin=stdin))


def vs_passthrough(row, base, target=None):
    a, b = row.stat("cpu_s_per_gib"), base.stat("cpu_s_per_gib")
    if a and b and b["median"] > 0:
        x = a["median"] / b["median"]
        row.notes.append("CPU-s/GiB %.2f× the passthrough on the same data%s" % (
            x, "" if target is None else " (target ≤ %g×: %s)" % (target, "met" if x <= target else "NOT met")))


def run_parse_chain(ctx, sc):
    """JSON app logs → parse json → filter → modify → blackhole (issue 6)."""
    d = ctx.data("json", data_json)
    src, stdin, label = reader(ctx, d)
    keep = d["lines"] - d["debug_lines"]
    base = passthrough(ctx, sc, d, "JSON")
    row = ctx.add(Row(sc.id, "%s → parse json → filter → modify → blackhole" % label, "mars", baseline="cat"))
    cfg = {"sources": {"in": src},
           "transforms": {
               "p": {"type": "parse", "inputs": ["in"], "format": "json"},
               "f": {"type": "filter", "inputs": ["p"], "condition": 'level != "debug" && http.status >= 200'},
               "m": {"type": "modify", "inputs": ["f"],
                     "set": {"env": "prod", "route": "{{ http.method }} {{ http.path }}"},
                     "rename": {"msg": "message"}, "remove": ["tags"], "uppercase": ["level"]}},
           "sinks": {"out": {"type": "blackhole", "inputs": ["m"]}}}
    repeat(ctx, row, lambda i: once(ctx, sc.id, cfg, {"p": d["lines"], "out": keep}, d["lines"], d["bytes"],
                                     stdin=stdin))
    row.notes.append("JSON app logs; the filter drops the %d debug lines (%d of %d reach the sink); "
                     "parse must report 0 errors" % (d["debug_lines"], keep, d["lines"]))
    vs_passthrough(row, base, target=2)
    # the same chain with template functions in modify (issue 22: within 10% of the row above)
    fn = ctx.add(Row(sc.id + "-functions", "%s → parse json → filter → modify with template functions → blackhole"
                     % label, "mars", baseline=sc.id))
    fcfg = json.loads(json.dumps(cfg))
    fcfg["transforms"]["m"]["set"].update({
        "env": "{{ lower(default(env, 'PROD')) }}",
        "route": "{{ upper(http.method) }} {{ replace(http.path, '[0-9]+', ':id') }}"})
    repeat(ctx, fn, lambda i: once(ctx, sc.id, fcfg, {"p": d["lines"], "out": keep}, d["lines"], d["bytes"],
                                    stdin=stdin))
    a, b = fn.stat("cpu_s_per_gib"), row.stat("cpu_s_per_gib")
    if a and b and b["median"] > 0:
        x = a["median"] / b["median"]
        fn.notes.append("CPU-s/GiB %.2f× the chain without functions, same run (target ≤ 1.10×: %s): the same "
                        "two set values computed with lower, default, upper and a regex replace"
                        % (x, "met" if x <= 1.10 else "NOT met"))
    return [base, row, fn]


JSON_SCAN_MIB = 256  # in-memory scans read at most this much of the JSON data (jansson is slow)


def run_json_scanner(ctx, sc):
    """The JSON scanner alone, in memory (issue 6): mars_json_validate and mars_json_parse
    against jansson (json_loadb) and, when libsimdjson-dev is installed, simdjson's DOM
    parser, over the same lines; only the loop over the lines is timed (bench/json_scan.c)."""
    d = ctx.data("json", data_json)
    mib = min(JSON_SCAN_MIB, max(1, d["bytes"] >> 20))
    contenders = [("json-jansson", "jansson: json_loadb + json_decref", "baseline", "json_scan", ["jansson"]),
                  ("json-validate", "mars_json_validate", "mars", "json_scan", ["validate"]),
                  ("json-parse", "mars_json_parse into fields", "mars", "json_scan", ["parse"]),
                  ("json-parse-utf8", "mars_json_parse, text known valid UTF-8 (as after a file source)",
                   "mars", "json_scan", ["parse-utf8"]),
                  ("json-simdjson", "simdjson DOM parse (reference)", "peer", "json_simdjson", [])]
    rows = []
    for rid, title, kind, tool, args in contenders:
        row = ctx.add(Row(rid, "JSON scanner, in memory: " + title, kind, baseline="json-jansson"))
        rows.append(row)
        if tool == "json_simdjson":
            exe, why = ctx.core_tool(tool, ["-lsimdjson"], cxx=True) if os.path.exists(
                "/usr/include/simdjson.h") else (None, "libsimdjson-dev is not installed (optional)")
        else:
            exe, why = ctx.core_tool(tool, ["-ljansson", "-lm"])
        if not exe:
            row.skip(why)
            continue

        def one(i, exe=exe, args=args):
            out = ctx.path("logs", "json_scan.out")
            m = ctx.measure([exe, d["path"]] + args + ["-m", str(mib)], stdout=out,
                            hard_limit=ctx.hard_limit(d["bytes"]) * 4)
            got = dict(re.findall(r"(\w+) ([0-9.]+)", read(out)))
            if "lines" in got:  # the tool's own timing of the loop, not the file's loading
                m = dict(m, wall_s=float(got["wall_s"]), user_s=float(got["user_s"]),
                         sys_s=float(got["sys_s"]))
            r = Run(m, int(got.get("lines", 0)), int(got.get("bytes", 0)))
            check_exit(r, m, os.path.basename(exe))
            if "lines" not in got or got.get("errors") != "0":
                r.fail("rejected %s of %s lines (or printed no figures)" % (got.get("errors"), got.get("lines")))
            return r
        repeat(ctx, row, one)
        row.notes.append("the first %d MiB of the JSON app logs, in memory; CPU of the loop alone" % mib)
    return rows


def run_parse_nginx(ctx, sc):
    d = ctx.data("nginx", data_nginx)
    src, stdin, label = reader(ctx, d)
    base = passthrough(ctx, sc, d, "nginx")
    row = ctx.add(Row(sc.id, "%s → parse nginx → blackhole" % label, "mars", baseline="cat"))
    cfg = {"sources": {"in": src},
           "transforms": {"p": {"type": "parse", "inputs": ["in"], "format": "nginx"}},
           "sinks": {"out": {"type": "blackhole", "inputs": ["p"]}}}
    repeat(ctx, row, lambda i: once(ctx, sc.id, cfg, {"p": d["lines"], "out": d["lines"]}, d["lines"], d["bytes"],
                                     stdin=stdin))
    row.notes.append("nginx combined access lines; parse must report 0 errors")
    vs_passthrough(row, base)
    return [base, row]


def start_recv(ctx, name, expect, latency=False, timeout=None):
    pf = ctx.path("logs", name + ".port")
    if os.path.exists(pf):
        os.remove(pf)
    out = ctx.path("logs", name + ".recv")
    args = [ctx.tool("recv"), "--port-file", pf, "--expect", str(expect),
            "--timeout", str(timeout or ctx.hard_limit(0) * 3)] + (["--latency"] if latency else [])
    p = subprocess.Popen(args, stdout=open(out, "w"), stderr=subprocess.STDOUT)
    return p, int(harness.wait_for_file(pf)), out


def finish_recv(run, p, out, expect, nbytes=None, wait=30):
    try:
        p.wait(timeout=wait)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
    if p.returncode == -signal.SIGKILL:
        run.fail("the receiver did not get all %d lines in time (killed)" % expect)
        return {}
    text = read(out)
    got = dict(re.findall(r"(\w+)=([0-9.]+)", text))
    run.extra["receiver"] = got
    if p.returncode != 0 or int(got.get("lines", -1)) != expect:
        run.fail("receiver got %s lines, expected exactly %d (%s)" % (got.get("lines"), expect, text.strip()))
    elif nbytes is not None and int(got.get("bytes", -1)) != nbytes:
        run.fail("receiver got %s bytes, expected %d" % (got.get("bytes"), nbytes))
    return got


def run_cat_tcp(ctx, sc):
    d = ctx.data("big", data_big)
    row = ctx.add(Row("cat-tcp", "cat DATA > tcp (same receiver)", "baseline", baseline="cat-tcp"))
    row.info["short"] = "cat>tcp"

    def one(i):
        p, port, out = start_recv(ctx, "cat-tcp", d["lines"])
        m = ctx.measure(["bash", "-c", 'exec cat "$1" > /dev/tcp/127.0.0.1/%d' % port, "cat-tcp", d["path"]],
                        hard_limit=ctx.hard_limit(d["bytes"]))
        r = Run(m, d["lines"], d["bytes"])
        check_exit(r, m, "cat")
        finish_recv(r, p, out, d["lines"], d["bytes"])
        return r
    return [repeat(ctx, row, one)]


def run_file_tcp(ctx, sc):
    # file-tcp: the mixed logs as text (the bytes arrive as written); file-tcp-ndjson: the
    # JSON logs as ndjson, what the http rows send, without HTTP
    ndjson = sc.id.endswith("-ndjson")
    d = ctx.data("json", data_json) if ndjson else ctx.data("big", data_big)
    src, stdin, label = reader(ctx, d)
    row = ctx.add(Row(sc.id, "%s → tcp%s" % (label, " (JSON logs as ndjson)" if ndjson else ""), "mars",
                      baseline="cat" if ndjson else "cat-tcp"))
    m = ctx.mars

    def one(i):
        p, port, out = start_recv(ctx, sc.id, d["lines"])
        sink = {"type": "tcp", "inputs": ["in"], m.pick("sink", "tcp", "address", "endpoint", "host"): "127.0.0.1:%d" % port}
        if "encoding" in m.options("sink", "tcp"):
            sink["encoding"] = (m.pick_value("sink", "tcp", "encoding", "ndjson", "json") if ndjson
                                else m.pick_value("sink", "tcp", "encoding", "text", "raw"))
        try:
            r = once(ctx, sc.id, {"sources": {"in": src}, "sinks": {"t": sink}}, {"t": d["lines"]},
                     d["lines"], d["bytes"], stdin=stdin)
        except Exception:
            p.kill()
            p.wait()
            raise
        finish_recv(r, p, out, d["lines"], None if ndjson else d["bytes"])
        return r
    row.notes.append("CPU is mars's alone; the receiver (bench/recv) shares the machine")
    return [repeat(ctx, row, one)]


def run_file_http(ctx, sc):
    d = ctx.data("json", data_json)
    src, stdin, label = reader(ctx, d)
    codec = "none" if sc.id.endswith("-none") else "gzip"
    row = ctx.add(Row(sc.id, "%s → http (JSON logs as ndjson, %s)" % (label, codec), "mars",
                      baseline="cat"))
    m = ctx.mars

    def one(i):
        pf = ctx.path("logs", sc.id + ".port")
        if os.path.exists(pf):
            os.remove(pf)
        out = ctx.path("logs", sc.id + ".recv")
        p = subprocess.Popen(["/usr/bin/python3", os.path.join(harness.HERE, "http_recv.py"), "--port-file", pf,
                              "--expect", str(d["lines"]), "--timeout", str(ctx.hard_limit(d["bytes"]) * 2)],
                             stdout=open(out, "w"), stderr=subprocess.STDOUT)
        port = int(harness.wait_for_file(pf))
        sink = {"type": "http", "inputs": ["in"],
                m.pick("sink", "http", "uri", "endpoint", "url"): "http://127.0.0.1:%d/ingest" % port,
                "encoding": m.pick_value("sink", "http", "encoding", "ndjson", "json"),
                m.pick("sink", "http", "compression", "compress"): m.pick_value("sink", "http", "compression", codec)}
        try:
            r = once(ctx, sc.id, {"sources": {"in": src}, "sinks": {"h": sink}}, {"h": d["lines"]},
                     d["lines"], d["bytes"], stdin=stdin)
        except Exception:
            p.kill()
            p.wait()
            raise
        finish_recv(r, p, out, d["lines"])
        return r
    row.notes.append("CPU is mars's alone; the Python receiver (bench/http_recv.py) parses (and gunzips) "
                     "on the same cores")
    return [repeat(ctx, row, one)]


def wait_listening(port, proc, timeout=15):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            return False
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


def run_mars_mars(ctx, sc):
    d = ctx.data("big", data_big)
    src, stdin, label = reader(ctx, d)
    row = ctx.add(Row(sc.id, "%s → mars → mars → blackhole" % label, "mars", baseline="cat"))
    m = ctx.mars

    def one(i):
        port = harness.free_port()
        down_cfg = {"data_dir": fresh_state(ctx, sc.id + "-down"),
                    "sources": {"up": {"type": "mars", m.pick("source", "mars", "address", "listen"): "127.0.0.1:%d" % port}},
                    "sinks": {"b": {"type": "blackhole", "inputs": ["up"]}}}
        conf = write_config(ctx, sc.id + "-down", down_cfg)
        derr = ctx.path("logs", sc.id + "-down.err")
        dp = ctx.measure([m.path, "-c", conf], stderr=derr, kill_grace=20, hard_limit=ctx.hard_limit(d["bytes"]) + 60,
                         wait=False)
        try:
            if not wait_listening(port, dp):
                raise RuntimeError("the downstream mars did not listen on %d: %s" % (port, tail(read(derr), 5)))
            sink = {"type": "mars", "inputs": ["in"], m.pick("sink", "mars", "address", "endpoint"): "127.0.0.1:%d" % port}
            r = once(ctx, sc.id + "-up", {"sources": {"in": src}, "sinks": {"m": sink}}, {"m": d["lines"]},
                     d["lines"], d["bytes"], stdin=stdin)
        finally:
            dp.send_signal(signal.SIGTERM)  # measure forwards it to the downstream mars
        dm = harness.finish_measure(dp)
        check_exit(r, dm, "downstream mars")
        check_counts(r, read(derr), {"b": d["lines"]})
        r.extra["upstream_cpu_s"] = r.cpu_s
        r.extra["downstream_cpu_s"] = dm["user_s"] + dm["sys_s"]
        r.cpu_s += dm["user_s"] + dm["sys_s"]
        r.maxrss_kib = max(r.maxrss_kib, dm["maxrss_kib"])
        r.extra["downstream"] = dm
        return r
    row.notes.append("CPU is both mars processes together; peak RSS the larger of the two")
    repeat(ctx, row, one)
    ok = [r for r in row.runs if r.ok]
    if ok and d["bytes"]:
        def med(k):
            v = sorted(r.extra[k] for r in ok)
            return v[len(v) // 2] / (d["bytes"] / GiB)
        row.notes.append("CPU-s per GiB by process (median): sender %.2f, receiver %.2f"
                         % (med("upstream_cpu_s"), med("downstream_cpu_s")))
    return [row]


def run_latency(ctx, sc):
    dur = 5.0 if ctx.quick else 30.0
    total = int(LATENCY_RATE * dur)
    row = ctx.add(Row(sc.id, "writer %d lines/s → file → tcp (latency)" % LATENCY_RATE, "mars", rated=False))
    m = ctx.mars

    def one(i):
        logf = ctx.path("data", "latency", "app.log")
        open(logf, "w").close()
        p, port, out = start_recv(ctx, sc.id, total, latency=True, timeout=dur + 120)
        sink = {"type": "tcp", "inputs": ["in"], m.pick("sink", "tcp", "address", "endpoint", "host"): "127.0.0.1:%d" % port}
        cfg = {"data_dir": fresh_state(ctx, sc.id), "sources": {"in": file_source(ctx, [logf])}, "sinks": {"t": sink}}
        conf = write_config(ctx, sc.id, cfg)
        err = ctx.path("logs", sc.id + ".err")
        mp = ctx.measure([m.path, "-c", conf], stderr=err, kill_grace=20, hard_limit=dur + 120, wait=False)
        try:
            time.sleep(1.0)  # startup; the writer's stamps measure delivery, not mars's start
            pad = b" " + b"x" * 180 + b"\n"
            fd = os.open(logf, os.O_WRONLY | os.O_APPEND)
            t0, sent = time.monotonic(), 0
            while sent < total:
                due = min(total, int((time.monotonic() - t0) * LATENCY_RATE) + 1)
                if due > sent:
                    os.write(fd, b"".join(b"%d" % time.time_ns() + pad for _ in range(due - sent)))
                    sent = due
                time.sleep(0.001)
            os.close(fd)
            try:
                p.wait(timeout=60)  # every line delivered, or the receiver is killed below
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        finally:
            mp.send_signal(signal.SIGTERM)
        mm = harness.finish_measure(mp)
        r = Run(mm, total, total * (len(pad) + 19))
        check_exit(r, mm)
        got = finish_recv(r, p, out, total)
        r.extra.update({k: float(v) for k, v in got.items() if k.endswith("_ms")})
        return r
    repeat(ctx, row, one, warmup=False)
    ok = [r for r in row.runs if r.ok and "p99_ms" in r.extra]
    if ok:
        row.notes.append("write → receive latency p50 %s ms, p99 %s ms, max %s ms (per run)" % (
            "/".join("%.1f" % r.extra["p50_ms"] for r in ok), "/".join("%.1f" % r.extra["p99_ms"] for r in ok),
            "/".join("%.1f" % r.extra["max_ms"] for r in ok)))
    return [row]


# ---- light load: a writer's small appends, the way nodes really live ------------------

LIGHT_RATES = (1000, 10000, 50000)
LIGHT_SMALL = 0.087   # writes per line of the "many small appends" rows (870 writes/s at 10k)
LIGHT_LARGE_WPS = 10  # writes per second of the "few large appends" rows


def mars_pid(mp):
    """The pid of the program bench/measure (Popen mp) runs."""
    for _ in range(200):
        try:
            with open("/proc/%d/task/%d/children" % (mp.pid, mp.pid)) as f:
                kids = f.read().split()
            if kids:
                return int(kids[0])
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError("no child of bench/measure")


def light_run(ctx, sid, sink_kind, rate, wps, secs, strace=False):
    """One light-load run: mars tails a file the writer (bench/lightload.py) appends to at
    `rate` lines/s in `wps` writes/s; returns a Run whose cpu_s and wall_s cover the writing
    window only (startup and shutdown left out) and whose extra holds the writer's figures."""
    logf = ctx.path("data", "light", sid + ".log")
    os.makedirs(os.path.dirname(logf), exist_ok=True)
    open(logf, "w").close()
    total = int(rate * secs)
    src = file_source(ctx, [logf])
    p = None
    if sink_kind == "tcp":
        p, port, out = start_recv(ctx, sid, total, latency=True, timeout=secs + 120)
        m = ctx.mars
        sink = {"type": "tcp", "inputs": ["in"], m.pick("sink", "tcp", "address", "endpoint", "host"):
                "127.0.0.1:%d" % port}
    else:
        sink = {"type": "blackhole", "inputs": ["in"]}
    cfg = {"data_dir": fresh_state(ctx, sid), "sources": {"in": src}, "sinks": {"out": sink}}
    conf = write_config(ctx, sid, cfg)
    err = ctx.path("logs", sid + ".err")
    mp = ctx.measure([ctx.mars.path, "-c", conf], stderr=err, kill_grace=20, hard_limit=secs + 120, wait=False)
    try:
        time.sleep(1.0)  # startup and the first scan stay out of the window
        cmd = [sys.executable, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lightload.py"),
               "--pid", str(mars_pid(mp)), "--file", logf, "--rate", str(rate), "--writes", str(wps),
               "--seconds", str(secs)] + (["--strace"] if strace else [])
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=secs + 120)
        got = dict(kv.split("=", 1) for kv in res.stdout.split() if "=" in kv)
        if p is not None:
            try:
                p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
    finally:
        mp.send_signal(signal.SIGTERM)
    mm = harness.finish_measure(mp)
    r = Run(mm, total, total * 200)
    check_exit(r, mm)
    if res.returncode != 0 or "cpu_s" not in got:
        r.fail("lightload.py failed: %s" % tail(res.stderr, 4))
        return r
    r.cpu_s = float(got["cpu_s"])
    r.wall_s = secs
    r.extra.update({"vcpu": float(got["vcpu"]), "writes": int(got["writes"])})
    for k in ("per_write", "syscalls"):
        if k in got:
            r.extra[k] = float(got[k])
    if "top" in got:
        r.extra["top"] = got["top"]
    if p is not None:
        rg = finish_recv(r, p, out, total)
        r.extra.update({k: float(v) for k, v in rg.items() if k.endswith("_ms")})
    return r


def run_light_load(ctx, sc):
    """Rows of the light-load family: idle, then each rate as many small and as few large
    appends, into a blackhole and (with write-to-receive latency) into tcp."""
    secs = 3.0 if ctx.quick else 10.0
    runs = min(ctx.runs, 3)
    cases = [("idle", "blackhole", 0, 0)]
    for rate in LIGHT_RATES:
        for kind, wps in (("small", max(1, int(rate * LIGHT_SMALL))), ("large", LIGHT_LARGE_WPS)):
            for sink in ("blackhole", "tcp"):
                cases.append(("%dk-%s-%s" % (rate // 1000, kind, sink), sink, rate, wps))
    rows = []
    for name, sink, rate, wps in cases:
        rid = "light-load-" + name
        title = ("idle: file source, nothing written" if rate == 0 else
                 "writer %s lines/s in %d writes/s → file → %s" % (harness.fmt_num(rate), wps, sink))
        row = ctx.add(Row(rid, title, "mars", rated=False))
        rows.append(row)
        for i in range(runs):
            r = light_run(ctx, rid, sink, rate, wps, secs)
            row.runs.append(r)
            if not r.ok:
                break
        ok = [r for r in row.runs if r.ok]
        if not ok:
            continue
        med = lambda k: statistics.median(r.extra[k] for r in ok if k in r.extra)
        note = "vCPU %.4f (%s)" % (med("vcpu"), "/".join("%.4f" % r.extra["vcpu"] for r in ok))
        if any("p99_ms" in r.extra for r in ok):
            note += "; write → receive p50 %.1f ms, p99 %.1f ms" % (med("p50_ms"), med("p99_ms"))
        if rate and "small" in name:  # one more run under strace: syscalls per append
            st = light_run(ctx, rid, sink, rate, wps, secs, strace=True)
            if st.ok and "per_write" in st.extra:
                note += "; %.2f syscalls per append under strace (%s)" % (st.extra["per_write"], st.extra.get("top", ""))
        row.notes.append(note)
    return rows


# ---- Kafka and SkyWalking: peers from tests/ ------------------------------------------

KAFKA_PARTITIONS = 3
KAFKA_FILL_PARTITIONS = 16  # kafka-blackhole: the mock keeps ~5 MiB per partition


def mock_kafka_path(ctx):
    """tests/tools/mock_kafka.c, built next to the mars binary (librdkafka's mock cluster)."""
    return os.path.join(os.path.dirname(os.path.abspath(ctx.mars.path)), "mock-kafka")


def start_mock_kafka(ctx, name, topic, partitions=KAFKA_PARTITIONS):
    """A 3-broker mock cluster with the topic; returns (Popen, bootstrap list). It exits when
    its stdin closes (stop_mock_kafka). The mock keeps at most ~5 MiB (100,000 messages) per
    partition and drops older message sets, like a broker's retention."""
    p = subprocess.Popen([mock_kafka_path(ctx), "-t", "%s:%d" % (topic, partitions)],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=open(ctx.path("logs", name + ".mock-kafka.err"), "w"))
    brokers = p.stdout.readline().decode().strip()
    if not brokers:
        stop_mock_kafka(p)
        raise RuntimeError("mock-kafka printed no bootstrap list: %s"
                           % tail(read(ctx.path("logs", name + ".mock-kafka.err")), 5))
    return p, brokers


def stop_mock_kafka(p):
    try:
        p.stdin.close()
        p.wait(timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        p.kill()
        p.wait()


def kafka_offsets(brokers, topic, partitions, when):
    """Per-partition offsets from kcat -Q: when -1 the end (high watermark), -2 the start (what
    the brokers still keep). None when kcat is missing or fails."""
    spec = []
    for i in range(partitions):
        spec += ["-t", "%s:%d:%d" % (topic, i, when)]
    try:
        p = subprocess.run(["kcat", "-Q", "-b", brokers] + spec, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    offs = re.findall(r"\[\d+\] offset (\d+)", p.stdout.decode())
    if p.returncode != 0 or len(offs) != partitions:
        return None
    return [int(o) for o in offs]


def kafka_produced(brokers, topic, partitions=KAFKA_PARTITIONS):
    """Messages ever produced to topic: the sum of the partitions' end offsets (the producer
    is idempotent, so this is exactly what was delivered)."""
    hi = kafka_offsets(brokers, topic, partitions, -1)
    return sum(hi) if hi is not None else None


def kafka_held(brokers, topic, partitions):
    """Messages the brokers still hold (end minus start offsets): what a consumer from the
    earliest offset reads."""
    hi, lo = kafka_offsets(brokers, topic, partitions, -1), kafka_offsets(brokers, topic, partitions, -2)
    return sum(h - l for h, l in zip(hi, lo)) if hi is not None and lo is not None else None


def kafka_sink(brokers, topic, inputs):
    return {"type": "kafka", "inputs": inputs, "brokers": brokers.split(","), "topic": topic,
            "encoding": "text", "compression": "lz4"}


def run_file_kafka(ctx, sc):
    d = ctx.data("big", data_big)
    src, stdin, label = reader(ctx, d)
    row = ctx.add(Row(sc.id, "%s → kafka (mock cluster, 3 brokers, lz4)" % label, "mars", baseline="cat"))
    if not os.access(mock_kafka_path(ctx), os.X_OK):
        row.skip("no mock-kafka next to %s (built with the tests)" % ctx.mars.path)
        return [row]

    def one(i):
        mk, brokers = start_mock_kafka(ctx, sc.id, "bench")
        try:
            cfg = {"sources": {"in": src}, "sinks": {"k": kafka_sink(brokers, "bench", ["in"])}}
            r = once(ctx, sc.id, cfg, {"k": d["lines"]}, d["lines"], d["bytes"], stdin=stdin)
            got = kafka_produced(brokers, "bench")
            if got != d["lines"]:
                r.fail("the brokers hold %s messages, expected exactly %d" % (got, d["lines"]))
        finally:
            stop_mock_kafka(mk)
        return r
    row.notes.append("CPU is mars's alone; the mock brokers (librdkafka's mock cluster, its own process) "
                     "share the cores; each run's count is checked at the brokers (end offsets)")
    return [repeat(ctx, row, one)]


def api_metric(sock, name, component):
    """The value of metric name{component_id="component"} from mars's admin API on a unix
    socket (a path) or at 127.0.0.1:PORT, or None."""
    try:
        tcp = not sock.startswith("/")
        s = socket.socket(socket.AF_INET if tcp else socket.AF_UNIX)
        s.settimeout(5)
        s.connect(("127.0.0.1", int(sock.rsplit(":", 1)[1])) if tcp else sock)
        s.sendall(b"GET /metrics HTTP/1.0\r\nHost: mars\r\n\r\n")
        data = b""
        while True:
            c = s.recv(65536)
            if not c:
                break
            data += c
        s.close()
    except OSError:
        return None
    m = re.search(r'^%s\{[^}]*component_id="%s"[^}]*\} (\S+)$' % (re.escape(name), re.escape(component)),
                  data.decode(errors="replace"), re.M)
    return float(m.group(1)) if m else None


def run_kafka_blackhole(ctx, sc):
    d = ctx.data("big", data_big)
    row = ctx.add(Row(sc.id, "kafka (mock cluster, topic pre-filled) → blackhole", "mars", baseline="cat"))
    if not os.access(mock_kafka_path(ctx), os.X_OK):
        row.skip("no mock-kafka next to %s (built with the tests)" % ctx.mars.path)
        return [row]
    parts = KAFKA_FILL_PARTITIONS
    mk, brokers = start_mock_kafka(ctx, sc.id, "bench", parts)
    try:
        src, stdin, _ = reader(ctx, d)
        fill = once(ctx, sc.id + "-fill", {"sources": {"in": src}, "sinks": {"k": kafka_sink(brokers, "bench", ["in"])}},
                    {"k": d["lines"]}, d["lines"], d["bytes"], stdin=stdin)
        got, held = kafka_produced(brokers, "bench", parts), kafka_held(brokers, "bench", parts)
        if not fill.ok or got != d["lines"] or not held:
            raise RuntimeError("pre-filling the topic failed (%s messages at the brokers): %s"
                               % (got, "; ".join(fill.errors)))
        starts = []

        def one(i):
            sock = ctx.path("state", sc.id + ".api.sock")
            if os.path.exists(sock):
                os.remove(sock)
            cfg = {"data_dir": fresh_state(ctx, sc.id), "api": {"enabled": True, "address": sock},
                   "sources": {"in": {"type": "kafka", "brokers": brokers.split(","), "topics": ["bench"],
                                      "group_id": "bench-%d-%d" % (os.getpid(), i + 1), "start_from": "earliest"}},
                   "sinks": {"b": {"type": "blackhole", "inputs": ["in"]}}}
            conf = write_config(ctx, sc.id, cfg)
            err = ctx.path("logs", sc.id + ".err")
            limit = ctx.hard_limit(d["bytes"]) + 30
            t0 = time.monotonic()
            p = ctx.measure([ctx.mars.path, "-c", conf], stderr=err, kill_grace=20, hard_limit=limit, wait=False)
            first, done = None, False
            try:
                while time.monotonic() - t0 < limit - 5 and p.poll() is None:
                    n = api_metric(sock, "mars_component_sent_events_total", "b") or 0
                    if n > 0 and first is None:
                        first = time.monotonic()
                    if n >= held:
                        done = True
                        break
                    time.sleep(0.1)
            finally:
                p.send_signal(signal.SIGTERM)  # measure forwards it to mars
            m = harness.finish_measure(p)
            r = Run(m, held, 0)
            check_exit(r, m)
            text = read(err)
            summ = check_counts(r, text, {"b": held})
            r.bytes = summ["b"]["bytes"] if "b" in summ else 0
            if not done:
                r.fail("the blackhole did not count %d events before the time limit" % held)
            if first is not None and done:
                r.extra["first_event_s"] = first - t0
                starts.append(first - t0)
            if not r.ok:
                r.extra["stderr_tail"] = tail(text)
            return r
        repeat(ctx, row, one)
        row.notes.append("the mock keeps ~5 MiB of compressed batches per partition: the %d-partition topic held "
                         "%d of the %d lines produced; each run reads exactly those (checked in the summary) "
                         "as a new consumer group from the earliest offset, stopped by SIGTERM once the blackhole "
                         "counted them; bytes are the messages' own" % (parts, held, d["lines"]))
        row.notes.append("wall includes starting and joining the group: first event after %s s"
                         % "/".join("%.1f" % s for s in starts))
    finally:
        stop_mock_kafka(mk)
    return [row]


def run_file_skywalking(ctx, sc):
    d = ctx.data("json", data_json)
    src, stdin, label = reader(ctx, d)
    row = ctx.add(Row(sc.id, "%s → skywalking (gRPC, fake OAP)" % label, "mars", baseline="cat"))
    fake = os.path.join(harness.HERE, "..", "tests", "fakes", "oap_fake.py")
    probe = subprocess.run(["/usr/bin/python3", "-c", "import grpc, google.protobuf"], stderr=subprocess.DEVNULL)
    if probe.returncode != 0 or not shutil.which("protoc"):
        row.skip("the fake OAP needs python3-grpcio and protoc (scripts/deps.sh test)")
        return [row]

    def one(i):
        pf = ctx.path("logs", sc.id + ".port")
        if os.path.exists(pf):
            os.remove(pf)
        out = ctx.path("logs", sc.id + ".oap")
        p = subprocess.Popen(["/usr/bin/python3", fake, "--count-only", "--port-file", pf],
                             stdout=open(out, "w"), stderr=subprocess.STDOUT)
        try:
            port = int(harness.wait_for_file(pf, timeout=60))
            sink = {"type": "skywalking", "inputs": ["in"], "address": "127.0.0.1:%d" % port,
                    "service": "bench", "instance": "bench-1"}
            r = once(ctx, sc.id, {"sources": {"in": src}, "sinks": {"sw": sink}}, {"sw": d["lines"]},
                     d["lines"], d["bytes"], stdin=stdin)
        finally:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        got = re.search(r"^logs=(\d+)$", read(out), re.M)
        if not got or int(got.group(1)) != d["lines"]:
            r.fail("the fake OAP counted %s logs, expected exactly %d" % (got and got.group(1), d["lines"]))
        return r
    row.notes.append("CPU is mars's alone; the fake OAP (Python grpcio, tests/fakes/oap_fake.py --count-only) "
                     "decodes every LogData on the same cores")
    return [repeat(ctx, row, one)]

# ---- peers ----------------------------------------------------------------------------

def fluent_bit_counts(text):
    """The counter output plugin's flushes as [(ts, cumulative total)]: before v5 a line
    "TS,N (total = T)", from v5.1 a JSON object per flush {"ts": TS, "total": N} whose total
    is that flush's (so it is summed here). TS in seconds since the epoch (a number of ms or
    ns is scaled down)."""
    flushes, total = [], 0
    for line in text.splitlines():
        line = line.strip()
        m = re.match(r"^\[?(\d+(?:\.\d+)?),\s*(\d+)\]? \(total = (\d+)\)$", line)
        if m:
            total = int(m.group(3))
            flushes.append((float(m.group(1)), total))
            continue
        if line.startswith("{"):
            try:
                o = json.loads(line)
            except ValueError:
                continue
            if isinstance(o, dict) and "total" in o:
                total += int(o["total"])
                ts = float(o.get("ts", 0) or 0)
                while ts > 1e11:  # ms or ns since the epoch
                    ts /= 1000.0
                flushes.append((ts, total))
    return flushes


def run_fluent_bit(ctx, sc):
    d = ctx.data("big", data_big)
    fb = os.environ["FLUENT_BIT"]
    row = ctx.add(Row(sc.id, "fluent-bit: tail → counter", "peer", baseline="cat"))
    conf = ctx.path("configs", "fluent-bit.conf")
    with open(conf, "w") as f:
        f.write("[SERVICE]\n    Flush 1\n    Grace 1\n    Log_Level warn\n"
                "[INPUT]\n    Name tail\n    Path %s\n    Read_from_Head true\n    Exit_On_Eof true\n"
                "    Buffer_Chunk_Size 256k\n    Buffer_Max_Size 1M\n    File_Cache_Advise Off\n"
                "[OUTPUT]\n    Name counter\n    Match *\n" % d["path"])

    def one(i):
        out, err = ctx.path("logs", "fluent-bit.out"), ctx.path("logs", "fluent-bit.err")
        t0 = time.time()
        mm = ctx.measure([fb, "-c", conf], stdout=out, stderr=err, hard_limit=ctx.hard_limit(d["bytes"]))
        r = Run(mm, d["lines"], d["bytes"])
        check_exit(r, mm, "fluent-bit")
        flushes = fluent_bit_counts(read(out))
        total = flushes[-1][1] if flushes else None
        if total != d["lines"]:
            r.fail("fluent-bit counted %s records, expected %d" % (total if flushes else "no", d["lines"]))
            return r
        # time to the flush that counted the last line, not the process's wall: its shutdown
        # waits on 1-second ticks (Grace) after everything was delivered
        last = next(ts for ts, t in flushes if t >= d["lines"])
        if last > t0:
            r.extra["process_wall_s"] = r.wall_s
            r.wall_s = min(r.wall_s, max(last - t0, 1e-3))
        return r
    repeat(ctx, row, one)
    row.notes.append("File_Cache_Advise Off (Fluent Bit would otherwise drop the file from the page cache "
                     "and read from disk while mars reads from cache); wall is the time to the counter "
                     "flush that saw the last line (1-second flush resolution), not process exit")
    peer_note(ctx, row)
    return [row]


def run_vector(ctx, sc):
    d = ctx.data("big", data_big)
    vec = os.environ["VECTOR"]
    row = ctx.add(Row(sc.id, "vector: stdin → blackhole", "peer", baseline="cat"))
    conf = ctx.path("configs", "vector.yaml")
    with open(conf, "w") as f:
        f.write(harness.yaml_dump({
            "data_dir": fresh_state(ctx, "vector"),
            "sources": {"in": {"type": "stdin", "max_length": 1048576}},
            "sinks": {"out": {"type": "blackhole", "inputs": ["in"], "print_interval_secs": 1}}}) + "\n")

    def one(i):
        err = ctx.path("logs", "vector.err")
        mm = ctx.measure([vec, "--quiet", "--config", conf], stdin=d["path"], stderr=err,
                         hard_limit=ctx.hard_limit(d["bytes"]))
        r = Run(mm, d["lines"], d["bytes"])
        check_exit(r, mm, "vector")
        return r
    repeat(ctx, row, one)
    row.notes.append("count not checked: vector's blackhole prints no final total; exit 0 after stdin EOF")
    peer_note(ctx, row)
    return [row]


def peer_note(ctx, row):
    """One note: mars's file → blackhole row divided by this peer's, per figure."""
    mars_row = next((r for r in ctx.rows if r.id.startswith("file-blackhole@") and r.status == "ok"
                     and not r.failed()), None)
    if not mars_row:
        return
    parts = []
    for key, what in (("cpu_s_per_gib", "CPU-s/GiB"), ("wall_s", "wall"), ("peak_rss_mib", "peak RSS")):
        a, b = mars_row.stat(key), row.stat(key)
        if a and b and b["median"] > 0:
            parts.append("%s %.2f×" % (what, a["median"] / b["median"]))
    if parts:
        row.notes.append("mars ÷ this (mars row: %s): %s" % (mars_row.title, ", ".join(parts)))


# ---- the list -------------------------------------------------------------------------

class Scenario:
    def __init__(self, sid, title, fn, needs=(), backend=None, env=None, baseline_for=None,
                 skip_reason=None, extra=None):
        self.id, self.title, self.fn = sid, title, fn
        self.extra = extra or {}  # scenario-specific settings for fn
        self.skip_reason = skip_reason  # said instead of "needs ..." when needs are missing
        self.needs, self.backend, self.env = needs, backend, env
        self.baseline_for = baseline_for  # baselines: run when a scenario with these ids runs

    def missing(self, ctx):
        why = []
        for kind, typ in self.needs:
            if not ctx.mars.has(kind, typ):
                why.append("the %s %s" % (typ, kind))
        if self.backend and self.backend not in ctx.mars.backends:
            why.append("the %s io backend, which this mars was built without (mars --version: %s)"
                       % (self.backend, ", ".join(ctx.mars.backends) or "none"))
        elif self.backend and not why:
            bad = ctx.mars.backend_unusable(self.backend, ctx.work)
            if bad:
                return "the %s io backend is %s" % (self.backend, bad)
        if self.env and not os.environ.get(self.env):
            return "set %s=/path/to/binary to compare; nothing is downloaded" % self.env
        if why and self.skip_reason:
            return self.skip_reason
        return "needs " + ", ".join(why) if why else None

    def run(self, ctx):
        return self.fn(ctx, self)


FILE_SRC = (("source", "file"),)
BIG_USERS = ["ev-read*", "file-blackhole*", "file-disk*", "stdin-blackhole", "files1000*", "stdin-file", "file-tcp*", "file-http*", "file-mars-mars",
             "file-kafka", "kafka-blackhole", "file-skywalking",
             "fluent-bit", "vector"]
SCENARIOS = [
    Scenario("cat", "cat DATA > /dev/null", run_cat,
             baseline_for=BIG_USERS + ["demo-blackhole", "file-parse*", "k8s-*"]),
    Scenario("linecount", "linecount (memchr)", run_linecount, baseline_for=BIG_USERS),
    Scenario("ev-read@libevent", "ev_read: file → libevent loop → line index", run_ev_read, backend="libevent"),
    Scenario("ev-read@io_uring", "ev_read: file → io_uring loop → line index", run_ev_read, backend="io_uring"),
    Scenario("ev-read@io_uring+fixed", "ev_read: file → io_uring loop, registered buffers → line index",
             run_ev_read, backend="io_uring"),
    Scenario("cat-write", "cat DATA > FILE", run_cat_write, baseline_for=["stdin-file"]),
    Scenario("cat-tcp", "cat DATA > tcp (same receiver)", run_cat_tcp, needs=(("sink", "tcp"),),
             baseline_for=["file-tcp"]),
    Scenario("file-blackhole@libevent", "one large file → blackhole [libevent]", run_file_blackhole,
             needs=(("sink", "blackhole"),), backend="libevent"),
    Scenario("file-blackhole@io_uring", "one large file → blackhole [io_uring]", run_file_blackhole,
             needs=(("sink", "blackhole"),), backend="io_uring"),
    Scenario("file-disk-blackhole", "one large file → disk buffer → blackhole", run_disk_blackhole,
             needs=(("sink", "blackhole"),)),
    Scenario("file-disk-lz4-blackhole", "one large file → disk buffer (lz4) → blackhole",
             run_disk_blackhole, needs=(("sink", "blackhole"),), extra={"compression": "lz4"}),
    Scenario("file-disk-blocked-blackhole", "file → disk buffer, sink blocked then released → blackhole",
             run_disk_blocked, needs=(("source", "file"), ("sink", "tcp"), ("sink", "blackhole"))),
    Scenario("file-disk-blocked-nosync-blackhole",
             "the same with sync: none (writeback left to the kernel's flusher, as Fluent Bit's storage does)",
             run_disk_blocked, needs=(("source", "file"), ("sink", "tcp"), ("sink", "blackhole")),
             extra={"sync": "none"}),
    Scenario("stdin-blackhole", "stdin (< FILE) → blackhole, beside the file source", run_stdin_blackhole,
             needs=(("source", "file"), ("source", "stdin"), ("sink", "blackhole")),
             skip_reason="no file source yet: the file → blackhole row above is this pipeline"),
    Scenario("files1000-blackhole@libevent", "1,000 files of 1 MiB → blackhole [libevent]", run_many_files,
             needs=FILE_SRC, backend="libevent"),
    Scenario("files1000-blackhole@io_uring", "1,000 files of 1 MiB → blackhole [io_uring]", run_many_files,
             needs=FILE_SRC, backend="io_uring"),
    Scenario("demo-blackhole", "demo → blackhole (generator throughput)", run_demo,
             needs=(("source", "demo"), ("sink", "blackhole"))),
    Scenario("stdin-file", "stdin → file sink (text)", run_stdin_file,
             needs=(("source", "stdin"), ("sink", "file"))),
    Scenario("blocked-sink", "blocked sink: RSS must stay flat", run_blocked,
             needs=(("source", "demo"), ("sink", "blackhole"))),
    Scenario("k8s-parse-blackhole", "kubernetes_logs (CRI JSON, 200 pods) → parse → blackhole", run_k8s,
             needs=(("source", "kubernetes_logs"), ("transform", "parse"))),
    Scenario("k8s-blackhole", "kubernetes_logs (CRI JSON, 200 pods) → blackhole, no metadata", run_k8s_blackhole,
             needs=(("source", "kubernetes_logs"),)),
    Scenario("k8s-blackhole-meta", "kubernetes_logs (CRI JSON, 200 pods) → blackhole, metadata from a fake API server",
             run_k8s_blackhole, needs=(("source", "kubernetes_logs"),)),
    Scenario("file-parse-filter-modify", "file → parse json → filter → modify → blackhole", run_parse_chain,
             needs=(("transform", "parse"), ("transform", "filter"), ("transform", "modify"))),
    Scenario("json-scanner", "JSON scanner in memory: mars vs jansson (and simdjson)", run_json_scanner),
    Scenario("file-parse-nginx", "file → parse nginx → blackhole", run_parse_nginx,
             needs=(("transform", "parse"),)),
    Scenario("file-tcp", "file → tcp", run_file_tcp, needs=(("sink", "tcp"),)),
    Scenario("file-tcp-ndjson", "file → tcp (ndjson, the http rows' data)", run_file_tcp, needs=(("sink", "tcp"),)),
    Scenario("file-http", "file → http (ndjson, gzip)", run_file_http, needs=(("sink", "http"),)),
    Scenario("file-http-none", "file → http (ndjson, no compression)", run_file_http, needs=(("sink", "http"),)),
    Scenario("file-kafka", "file → kafka (mock cluster, lz4)", run_file_kafka, needs=(("sink", "kafka"),)),
    Scenario("kafka-blackhole", "kafka (pre-filled topic) → blackhole", run_kafka_blackhole,
             needs=(("source", "kafka"), ("sink", "kafka"))),
    Scenario("file-skywalking", "file → skywalking (fake OAP)", run_file_skywalking,
             needs=(("sink", "skywalking"),)),
    Scenario("file-mars-mars", "file → mars → mars → blackhole", run_mars_mars,
             needs=(("sink", "mars"), ("source", "mars"))),
    Scenario("latency-file-tcp", "fixed-rate 10k lines/s writer → file → tcp: latency p50/p99/max", run_latency,
             needs=(("source", "file"), ("sink", "tcp"))),
    Scenario("light-load", "light load: writer appends at 1k/10k/50k lines/s, small and large writes, idle",
             run_light_load, needs=(("source", "file"), ("sink", "tcp"))),
    Scenario("fluent-bit", "fluent-bit: file → null (side by side)", run_fluent_bit, env="FLUENT_BIT"),
    Scenario("vector", "vector: file → blackhole (side by side)", run_vector, env="VECTOR"),
]


def select_baselines(argv):
    """With --only, add the baselines the chosen scenarios are compared against."""
    a = harness.parse_args(argv, DEFAULTS)
    if not a.only:
        return argv
    extra = []
    for s in SCENARIOS:
        if s.baseline_for and not harness.selected(s.id, a.only):
            if any(harness.selected(t.id, a.only) and any(harness.selected(t.id, [p]) for p in s.baseline_for)
                   for t in SCENARIOS if not t.baseline_for):
                extra += ["--only", s.id]
    return argv + extra


if __name__ == "__main__":
    argv = sys.argv[1:]
    if "--list" not in argv and "-h" not in argv and "--help" not in argv:
        argv = select_baselines(argv)
    sys.exit(harness.main(argv, SCENARIOS, DEFAULTS))
