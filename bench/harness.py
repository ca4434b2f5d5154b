"""harness.py - the machinery of the mars benchmark: tools, data, measuring, checking, reporting.

bench/run starts bench/scenarios.py (the list of scenarios), which hands its list to main()
here. This file knows nothing about particular scenarios; it gives them:

- Ctx: options, the work dir, the helper programs (bench/*.c built with `cc -O2` into
  <results>/bin), the mars binary and what it was built with (Mars), lazily generated data
  sets (Ctx.data()), and measure(): one command run under bench/measure (wall, user+sys CPU,
  peak RSS, optional RSS sampling and SIGTERM after a delay).
- Run and Row: the raw figures of one run and the rows of the table (median, min-max).
- parse_summary(): the per-component summary lines mars prints on exit, used to check that a
  sink counted exactly the expected events (completion is exact, never a sleep).
- main(): options, selection, running each scenario, then report.py for the table, the JSON
  and the chart.

Runs are sequential: one measured process (or pipeline) at a time on the machine.
Python: Debian's /usr/bin/python3 (3.9 or later), standard library only.
"""
import argparse
import datetime
import fnmatch
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
GiB = 1 << 30
MiB = 1 << 20
TOOLS = ("gen", "linecount", "measure", "recv")


# ---- small helpers --------------------------------------------------------------------

def parse_size(s):
    """'1GiB', '64MiB', '512K', '1000000' -> bytes."""
    m = re.fullmatch(r"\s*([0-9.]+)\s*([KMGT]?)(i?B)?\s*", s, re.I)
    if not m:
        raise argparse.ArgumentTypeError("not a size: %r (use e.g. 64MiB, 1GiB)" % s)
    mult = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}[m.group(2).upper()]
    return int(float(m.group(1)) * mult)


def fmt_size(n):
    for unit, div in (("GiB", GiB), ("MiB", MiB), ("KiB", 1024)):
        if n >= div:
            v = n / div
            return ("%d%s" % (v, unit)) if v == int(v) else ("%.1f%s" % (v, unit))
    return "%dB" % n


def fmt_num(v):
    """3 significant digits, with k/M/G for large numbers."""
    if v is None:
        return "-"
    a = abs(v)
    for suf, div in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if a >= div * 0.9995:
            return _sig(v / div) + suf
    return _sig(v)


def _sig(v):
    a = abs(v)
    if a >= 100:
        return "%.0f" % v
    if a >= 10:
        return "%.1f" % v
    if a >= 1:
        return "%.2f" % v
    if a >= 0.01:
        return "%.3f" % v
    return "%.2g" % v


def sh(cmd, **kw):
    """Runs a short helper command; returns (rc, stdout, stderr) as text."""
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)
    return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_for_file(path, timeout=10.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if os.path.exists(path):
            with open(path) as f:
                return f.read().strip()
        time.sleep(0.02)
    raise RuntimeError("%s did not appear within %.0f s" % (path, timeout))


def yaml_dump(obj, indent=0):
    """Block-style YAML for the configs the bench writes (dicts, lists of scalars, scalars).
    Strings are JSON-quoted (valid YAML) unless they are plain words."""
    pad = "  " * indent
    out = []
    for k, v in obj.items():
        if isinstance(v, dict):
            out.append("%s%s:" % (pad, k))
            out.append(yaml_dump(v, indent + 1))
        else:
            out.append("%s%s: %s" % (pad, k, _yaml_scalar(v)))
    return "\n".join(out)


def _yaml_scalar(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_yaml_scalar(x) for x in v) + "]"
    s = str(v)
    return s if re.fullmatch(r"[A-Za-z0-9_.\-/]+", s) and s not in ("true", "false", "null", "yes", "no", "on", "off") else json.dumps(s)


SUMMARY_RE = re.compile(
    r"\[(?P<id>[^\]]+)\] (?P<type>\S+) (?P<kind>source|transform|sink): received (?P<received>\d+) "
    r"events, sent (?P<sent>\d+) events \((?P<bytes>\d+) bytes\)(?:, (?P<acked>\d+) acknowledged)?, "
    r"discarded (?P<disc_int>\d+) intentionally and (?P<disc_unint>\d+) not, (?P<errors>\d+) errors")
BACKEND_RE = re.compile(r"running: \d+ workers?, \d+ components?, io backend (\S+)")


def parse_summary(text):
    """mars's exit summary: {component id: {type, kind, received, sent, bytes, acked, ...}}."""
    out = {}
    for m in SUMMARY_RE.finditer(text):
        d = m.groupdict()
        out[d["id"]] = {k: (int(v) if v is not None and v.isdigit() else v) for k, v in d.items()}
    return out


def backend_of(text):
    m = BACKEND_RE.search(text)
    return m.group(1) if m else None


def tail(text, n=12):
    lines = text.rstrip("\n").split("\n")
    return "\n".join(lines[-n:])


# ---- the mars binary ------------------------------------------------------------------

class Mars:
    """What the mars binary under test offers: version, compiled backends, component types."""

    KINDS = {"sources": "source", "transforms": "transform", "sinks": "sink"}

    def __init__(self, path):
        self.path = path
        rc, out, err = sh([path, "--version"])
        if rc != 0:
            raise SystemExit("bench: %s --version failed (%d): %s" % (path, rc, err.strip()))
        self.version_line = out.strip()
        m = re.search(r"\(io backends: ([^)]*)\)", out)
        self.backends = [b for b in re.split(r"[,\s]+", m.group(1)) if b] if m else []
        self.components = {"source": set(), "transform": set(), "sink": set()}
        rc, out, _ = sh([path, "describe"])
        kind = None
        for line in out.splitlines():
            s = line.strip()
            if s in ("sources:", "transforms:", "sinks:"):
                kind = self.KINDS[s[:-1]]
                continue
            m = re.match(r"^\s+(\S+)(\s|$)", line)  # long names get one space
            if not m:
                kind = None  # a line outside the lists ends them
            elif kind:
                self.components[kind].add(m.group(1))
        self._options = {}
        self._describes = {}

    def has(self, kind, typ):
        """True when `mars describe TYPE` exits 0 and the listing shows TYPE as that kind."""
        if typ not in self.components[kind]:
            return False
        if typ not in self._describes:
            self._describes[typ] = sh([self.path, "describe", typ])[0] == 0
        return self._describes[typ]

    def options(self, kind, typ):
        """{option: type text} of one component kind+type, from `mars describe TYPE`."""
        key = (kind, typ)
        if key not in self._options:
            rc, out, _ = sh([self.path, "describe", typ])
            opts, cur = {}, None
            for line in out.splitlines():
                m = re.match(r"^(source|transform|sink) (\S+):", line)
                if m:
                    cur = m.group(1) == kind
                    continue
                if cur and re.match(r"^[a-z_][a-z0-9_.]*\s{2,}", line):
                    parts = re.split(r"\s{2,}", line.strip())
                    if parts[0] != "OPTION" and len(parts) >= 2:
                        opts[parts[0]] = parts[1]
            self._options[key] = opts
        return self._options[key]

    def pick(self, kind, typ, *candidates):
        """The first candidate option name that the component has (else the first one, so that
        `mars validate` names the problem)."""
        opts = self.options(kind, typ)
        for c in candidates:
            if c in opts:
                return c
        return candidates[0]

    def pick_value(self, kind, typ, option, *candidates):
        """The first candidate value listed in the option's enum(...) type, else the first."""
        t = self.options(kind, typ).get(option, "")
        m = re.search(r"enum\(([^)]*)\)", t)
        if m:
            choices = m.group(1).split("|")
            for c in candidates:
                if c in choices:
                    return c
        return candidates[0]

    def backend_unusable(self, backend, work):
        """None when `mars --once` runs a one-event pipeline on this io backend; otherwise why
        not. Only exit code 3 (could not start: the backend is unavailable here, e.g. io_uring
        blocked by seccomp) counts as unusable; any other failure is left to the scenario,
        which then fails loudly."""
        if not hasattr(self, "_probed"):
            self._probed = {}
        if backend not in self._probed:
            conf = os.path.join(work, "probe-%s.yaml" % backend)
            with open(conf, "w") as f:
                f.write(yaml_dump({**self.common_config(work),
                               "data_dir": os.path.join(work, "probe-state-" + backend),
                                   "sources": {"one": {"type": "demo", "rate": 0, "count": 1}},
                                   "sinks": {"b": {"type": "blackhole", "inputs": ["one"]}}}) + "\n")
            env = dict(os.environ, MARS_IO_BACKEND=backend)
            p = subprocess.run([self.path, "--once", "-c", conf], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, env=env, timeout=60)
            msg = None
            if p.returncode == 3:
                err = [l for l in p.stderr.decode(errors="replace").splitlines() if "ERROR" in l or "WARN" in l]
                msg = "compiled in but unusable here: %s" % (err[0].split("] ", 1)[-1] if err else "exit 3")
            self._probed[backend] = msg
        return self._probed[backend]

    def common_config(self, work):
        """Top-level settings every bench config gets: the admin API switched off when this mars
        has one (it listens on a fixed port by default, so two mars processes, or a mars run
        by someone else on the machine, would collide; the bench measures pipelines)."""
        if not hasattr(self, "_common"):
            self._common = {}
            probe = {"api": {"enabled": False}, "data_dir": os.path.join(work, "probe-state"),
                     "sources": {"one": {"type": "demo", "count": 1}},
                     "sinks": {"b": {"type": "blackhole", "inputs": ["one"]}}}
            conf = os.path.join(work, "probe-api.yaml")
            with open(conf, "w") as f:
                f.write(yaml_dump(probe) + "\n")
            if self.validate(conf)[0]:
                self._common = {"api": {"enabled": False}}
        return self._common

    def validate(self, config):
        rc, out, err = sh([self.path, "validate", "-c", config])
        return rc == 0, (out + err).strip()


# ---- runs and rows --------------------------------------------------------------------

class Run:
    """The raw figures of one run. lines/bytes are what the run moved (for rates); ok=False
    with errors when a check failed."""

    def __init__(self, m, lines=0, nbytes=0):
        self.wall_s = m["wall_s"]
        self.cpu_s = m["user_s"] + m["sys_s"]
        self.user_s = m["user_s"]
        self.sys_s = m["sys_s"]
        self.maxrss_kib = m["maxrss_kib"]
        self.lines = lines
        self.bytes = nbytes
        self.ok = True
        self.errors = []
        self.extra = {}

    def fail(self, msg):
        self.ok = False
        self.errors.append(msg)

    def metrics(self):
        w = max(self.wall_s, 1e-9)
        gib = self.bytes / GiB if self.bytes else None
        return {
            "wall_s": self.wall_s,
            "cpu_s": self.cpu_s,
            "lines_per_s": self.lines / w if self.lines else None,
            "mb_per_s": self.bytes / 1e6 / w if self.bytes else None,
            "cpu_s_per_gib": self.cpu_s / gib if gib else None,
            "wall_s_per_gib": self.wall_s / gib if gib else None,
            "peak_rss_mib": self.maxrss_kib / 1024.0,
        }

    def to_json(self):
        d = {"ok": self.ok, "errors": self.errors, "wall_s": self.wall_s, "user_s": self.user_s,
             "sys_s": self.sys_s, "cpu_s": self.cpu_s, "maxrss_kib": self.maxrss_kib,
             "lines": self.lines, "bytes": self.bytes}
        d.update(self.extra)
        return d


class Row:
    """One line of the table: a baseline, a mars scenario or a peer (fluent-bit, vector)."""

    def __init__(self, rid, title, kind, baseline=None, rated=True):
        self.id = rid
        self.title = title
        self.kind = kind          # baseline | mars | peer
        self.baseline = baseline  # id of the baseline row the ratios divide by
        self.rated = rated        # False: throughput is set by the scenario (rate-limited)
        self.runs = []
        self.warmup = []          # checked like runs, left out of the figures
        self.status = "ok"
        self.reason = ""
        self.notes = []
        self.info = {}

    def skip(self, reason):
        self.status = "skipped"
        self.reason = reason
        return self

    def failed(self):
        return self.status == "FAIL" or any(not r.ok for r in self.runs + self.warmup)

    def stat(self, key):
        vals = [r.metrics()[key] for r in self.runs if r.ok and r.metrics()[key] is not None]
        if not vals:
            return None
        return {"median": statistics.median(vals), "min": min(vals), "max": max(vals), "n": len(vals)}

    def summary(self):
        return {k: self.stat(k) for k in ("wall_s", "cpu_s", "lines_per_s", "mb_per_s",
                                           "cpu_s_per_gib", "wall_s_per_gib", "peak_rss_mib")}


# ---- context --------------------------------------------------------------------------

class Ctx:
    def __init__(self, args):
        self.args = args
        self.quick = args.quick
        self.runs = args.runs
        self.size = args.size
        self.results = os.path.abspath(args.results)
        os.makedirs(self.results, exist_ok=True)
        self.stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        work_root = os.path.abspath(args.work)
        self.work = os.path.join(work_root, "run-" + self.stamp + "-%d" % os.getpid())
        os.makedirs(self.work)
        self.bin = os.path.join(self.results, "bin")
        self.mars_path = os.path.abspath(args.mars)
        self.mars = None
        self._data = {}
        self.rows = []
        self.log_lines = []

    # -- helper programs
    def build_tools(self):
        os.makedirs(self.bin, exist_ok=True)
        cc = os.environ.get("CC", "cc")
        for t in TOOLS:
            src = os.path.join(HERE, t + ".c")
            exe = os.path.join(self.bin, t)
            if os.path.exists(exe) and os.path.getmtime(exe) >= os.path.getmtime(src):
                continue
            rc, out, err = sh([cc, "-O2", "-std=c11", "-Wall", "-Wextra", "-o", exe, src])
            if rc != 0:
                raise SystemExit("bench: building %s failed:\n%s%s" % (src, out, err))

    def tool(self, name):
        return os.path.join(self.bin, name)

    def core_tool(self, name, extra_libs=(), cxx=False):
        """bench/NAME.c (or .cc with cxx) linked with the core library next to the mars
        under test. Returns (path, None), or (None, why) when it cannot be built."""
        exe = os.path.join(self.bin, name)
        lib = os.path.join(os.path.dirname(self.mars_path), "libmars_core.a")
        src = os.path.join(HERE, name + (".cc" if cxx else ".c"))
        if not cxx and not os.path.exists(lib):
            return None, "no %s next to the mars binary (a CMake build dir has it)" % lib
        deps = [src] if cxx else [src, lib]
        if os.path.exists(exe) and os.path.getmtime(exe) >= max(os.path.getmtime(p) for p in deps):
            return exe, None
        if cxx:
            cmd = [os.environ.get("CXX", "c++"), "-O2", "-std=c++17", "-Wall", "-o", exe, src]
        else:
            cmd = [os.environ.get("CC", "cc"), "-O2", "-std=c11", "-Wall", "-Wextra", "-D_GNU_SOURCE",
                   "-I" + os.path.join(REPO, "src"), "-o", exe, src, lib]
        rc, out, err = sh(cmd + list(extra_libs))
        if rc != 0:
            return None, "building %s failed: %s%s" % (name, out, err)
        return exe, None

    def ev_read_tool(self):
        """bench/ev_read.c with the ev backends of the mars under test."""
        rc, libs, err = sh(["pkg-config", "--libs", "libevent", "liburing"])
        if rc != 0:
            return None, "pkg-config --libs libevent liburing failed: %s" % err.strip()
        return self.core_tool("ev_read", libs.split() + ["-lpthread", "-lm"])

    def path(self, *parts):
        p = os.path.join(self.work, *parts)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        return p

    def dir(self, *parts):
        p = os.path.join(self.work, *parts)
        os.makedirs(p, exist_ok=True)
        return p

    def say(self, msg):
        print(msg, flush=True)
        self.log_lines.append(msg)

    # -- data sets, generated once per run on first use
    def data(self, name, maker):
        """Returns the data set `name`, calling maker(ctx) -> dict the first time. A data set
        is {'path' or 'paths', 'lines', 'bytes', ...}."""
        if name not in self._data:
            t0 = time.monotonic()
            d = maker(self)
            subprocess.run(["sync"])  # writeback now, not during the first measured runs
            d["generate_s"] = round(time.monotonic() - t0, 3)
            self._data[name] = d
            self.say("  data %-10s %s, %d lines in %s (%.1f s)" % (
                name, fmt_size(d["bytes"]), d["lines"],
                d.get("path") or "%d files" % len(d.get("paths", [])), d["generate_s"]))
        return self._data[name]

    def has_data(self, name):
        return name in self._data

    def gen(self, out_path, *opts):
        """Runs bench/gen into out_path; returns (lines, bytes) from its summary."""
        with open(out_path, "wb") as f:
            p = subprocess.run([self.tool("gen")] + [str(o) for o in opts], stdout=f,
                               stderr=subprocess.PIPE)
        err = p.stderr.decode()
        m = re.search(r"lines=(\d+) bytes=(\d+)", err)
        if p.returncode != 0 or not m:
            raise RuntimeError("gen %s failed: %s" % (" ".join(map(str, opts)), err.strip()))
        return int(m.group(1)), int(m.group(2))

    # -- measuring
    def measure(self, cmd, stdin=None, stdout=None, stderr=None, env=None, sample_ms=None,
                rss_file=None, term_after=None, kill_grace=None, hard_limit=None, wait=True):
        """Runs cmd under bench/measure. Returns the measure JSON (dict), or the Popen of the
        measure process when wait=False (then call finish_measure on it)."""
        m = [self.tool("measure")]
        if stdin:
            m += ["-i", stdin]
        if stdout:
            m += ["-o", stdout]
        if stderr:
            m += ["-e", stderr]
        if sample_ms:
            m += ["-s", str(sample_ms), "-r", rss_file]
        if term_after:
            m += ["-t", str(term_after)]
        if kill_grace:
            m += ["-k", str(kill_grace)]
        if hard_limit:
            m += ["-T", str(hard_limit)]
        m += ["--"] + [str(c) for c in cmd]
        full_env = dict(os.environ)
        full_env.update(env or {})
        p = subprocess.Popen(m, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=full_env)
        if not wait:
            return p
        return finish_measure(p)

    def hard_limit(self, nbytes=0):
        """Seconds after which a run that should have finished is killed (and failed)."""
        return 30 + 120 * (nbytes / GiB)

    def add(self, row):
        self.rows.append(row)
        return row


def finish_measure(p):
    out, err = p.communicate()
    try:
        return json.loads(out.decode().strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise RuntimeError("measure failed: %s" % err.decode().strip())


def read(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def check_exit(run, m, what="mars"):
    """Fails the run unless the process exited 0 on its own (or after the SIGTERM it was sent)."""
    if m.get("killed"):
        run.fail("%s did not finish in time and was killed" % what)
    elif m.get("signal") is not None:
        run.fail("%s died of signal %s" % (what, m["signal"]))
    elif m.get("exit") != 0:
        run.fail("%s exited %s" % (what, m.get("exit")))


def check_counts(run, text, expect):
    """expect: {component id: expected events}. A sink must have received and sent exactly
    that many, with no errors and nothing discarded."""
    summ = parse_summary(text)
    run.extra["summary"] = summ
    for cid, n in expect.items():
        s = summ.get(cid)
        if s is None:
            run.fail("no summary line for [%s] on stderr (did mars finish?)" % cid)
            continue
        bad = []
        if s["received"] != n:
            bad.append("received %d" % s["received"])
        if s["kind"] == "sink" and s["sent"] != n:
            bad.append("sent %d" % s["sent"])
        if s["errors"]:
            bad.append("%d errors" % s["errors"])
        if s["disc_unint"]:
            bad.append("%d discarded unintentionally" % s["disc_unint"])
        if bad:
            run.fail("[%s] expected exactly %d events: %s" % (cid, n, ", ".join(bad)))
    return summ


# ---- command line ---------------------------------------------------------------------

def parse_args(argv, defaults):
    ap = argparse.ArgumentParser(
        prog="bench/run", description="The mars benchmark harness (see bench/README.md).")
    ap.add_argument("--quick", action="store_true",
                    help="smoke run: small sizes, %d runs, under 2 minutes" % defaults["quick_runs"])
    ap.add_argument("--runs", type=int, help="runs per scenario (default %d, quick %d)" % (
        defaults["runs"], defaults["quick_runs"]))
    ap.add_argument("--only", action="append", default=[], metavar="SCENARIO",
                    help="run only these scenarios (ids or globs, comma-separated or repeated; "
                         "an id without @ also matches its @backend variants)")
    ap.add_argument("--size", type=parse_size, help="size of the large data file (default %s, quick %s)"
                    % (fmt_size(defaults["size"]), fmt_size(defaults["quick_size"])))
    ap.add_argument("--blocked-seconds", type=float,
                    help="length of the blocked-sink run (default %g, quick %g)" % (
                        defaults["blocked_s"], defaults["quick_blocked_s"]))
    ap.add_argument("--list", action="store_true", help="list the scenarios and whether they can run")
    ap.add_argument("--keep", action="store_true", help="keep the generated data and configs")
    ap.add_argument("--mars", default=os.environ.get("MARS_BIN", os.path.join(REPO, "build", "mars")),
                    help="the mars binary (default $MARS_BIN or build/mars)")
    ap.add_argument("--results", default=os.environ.get("BENCH_RESULTS", os.path.join(HERE, "results")),
                    help="where the JSON, chart and tables go (default $BENCH_RESULTS or bench/results)")
    ap.add_argument("--work", default=os.environ.get("BENCH_WORK"),
                    help="where data is generated (default $BENCH_WORK or <results>/work)")
    a = ap.parse_args(argv)
    if a.runs is None:
        a.runs = defaults["quick_runs"] if a.quick else defaults["runs"]
    if a.runs < 1:
        ap.error("--runs must be at least 1")
    if a.size is None:
        a.size = defaults["quick_size"] if a.quick else defaults["size"]
    if a.blocked_seconds is None:
        a.blocked_seconds = defaults["quick_blocked_s"] if a.quick else defaults["blocked_s"]
    if a.work is None:
        a.work = os.path.join(a.results, "work")
    a.only = [p for o in a.only for p in o.split(",") if p]
    return a


def selected(sid, patterns):
    if not patterns:
        return True
    for p in patterns:
        if fnmatch.fnmatchcase(sid, p) or ("@" not in p and fnmatch.fnmatchcase(sid.split("@")[0], p)):
            return True
    return False


def main(argv, scenarios, defaults):
    """scenarios: list of objects with .id, .title, .missing(ctx) -> reason or None,
    .run(ctx) -> list of Rows (see scenarios.py)."""
    from report import (link_latest, machine_info, machine_line, notes_and_skips, render_markdown,
                        render_text, table_rows, write_chart, write_json)
    args = parse_args(argv, defaults)
    if not os.access(args.mars, os.X_OK):
        print("bench: no mars binary at %s: run `make build` or set MARS_BIN" % args.mars, file=sys.stderr)
        return 2
    ctx = Ctx(args)
    ctx.mars = Mars(ctx.mars_path)
    unknown = [p for p in args.only if not any(selected(s.id, [p]) for s in scenarios)]
    if unknown:
        print("bench: no scenario matches %s (bench/run --list shows them)" % ", ".join(unknown),
              file=sys.stderr)
        shutil.rmtree(ctx.work, ignore_errors=True)
        return 2
    if args.list:
        for s in scenarios:
            why = s.missing(ctx)
            print("%-30s %-50s %s" % (s.id, s.title, "runs" if not why else "skipped (%s)" % why))
        shutil.rmtree(ctx.work, ignore_errors=True)
        return 0

    t_start = time.monotonic()
    ctx.build_tools()
    mi = machine_info(ctx.work)
    ctx.say("mars bench %s%s: %s" % (ctx.stamp, " (quick)" if ctx.quick else "", ctx.mars.version_line))
    ctx.say("  binary  %s" % ctx.mars_path)
    ctx.say("  machine %s" % machine_line(mi))
    ctx.say("  runs %d per scenario, large data %s, work dir %s" % (ctx.runs, fmt_size(ctx.size), ctx.work))
    if mi["loadavg_start"][0] > 0.5:
        ctx.say("  note: load average %.2f before the run: other processes share the machine, figures "
                "are noisier (the JSON records the load at start and end)" % mi["loadavg_start"][0])
    failures = 0
    try:
        for s in scenarios:
            if not selected(s.id, args.only):
                continue
            why = s.missing(ctx)
            if why:
                ctx.add(Row(s.id, s.title, "mars").skip(why))
                continue
            t0 = time.monotonic()
            try:
                rows = s.run(ctx)
            except Exception as e:  # a broken scenario is a failed row, not a crashed bench
                row = ctx.add(Row(s.id, s.title, "mars"))
                row.status, row.reason = "FAIL", "%s: %s" % (type(e).__name__, e)
                rows = [row]
            for r in rows:
                ctx.say("  %-44s %s (%.1f s)" % (r.title, "FAIL" if r.failed() else r.status,
                                                 time.monotonic() - t0))
    finally:
        total_s = time.monotonic() - t_start
        rows = table_rows(ctx)
        notes, skips = notes_and_skips(ctx)
        text = render_text(rows)
        print()
        print(text)
        for n in notes:
            print("  * " + n)
        if skips:
            print("\nSkipped:")
            for s in skips:
                print("  - " + s)
        base = os.path.join(ctx.results, ctx.stamp)
        header = "mars bench %s: %s\nmachine: %s\n" % (ctx.stamp, ctx.mars.version_line, machine_line(mi))
        with open(base + ".txt", "w") as f:
            f.write(header + "\n" + text + "\n" + "".join("  * %s\n" % n for n in notes)
                    + ("\nSkipped:\n" + "".join("  - %s\n" % s for s in skips) if skips else ""))
        with open(base + ".md", "w") as f:
            f.write(render_markdown(rows) + "\n\n" + "".join("- %s\n" % n for n in notes)
                    + ("\nSkipped:\n\n" + "".join("- %s\n" % s for s in skips) if skips else ""))
        failures = sum(1 for r in ctx.rows if r.failed())
        mi["loadavg_end"] = os.getloadavg()
        write_json(ctx, base + ".json", mi, {"total_wall_s": round(total_s, 1), "failures": failures,
                                             "log": ctx.log_lines})
        why = write_chart(ctx, base + ".png")
        if why:
            with open(base + ".txt", "a") as f:
                f.write("\nchart skipped: %s\n" % why)
        link_latest(ctx.results, ctx.stamp, ("json", "png", "txt", "md"))
        print("\nresults: %s.{json,txt,md}%s" % (base, ", chart " + base + ".png" if not why else
                                                   " (chart skipped: %s)" % why))
        if args.keep:
            print("kept: %s" % ctx.work)
        else:
            shutil.rmtree(ctx.work, ignore_errors=True)
        print("total %.0f s, %d failed" % (total_s, failures))
    return 1 if failures else 0
