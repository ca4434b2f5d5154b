#!/usr/bin/python3
"""file_model.py - a randomized, model-based test of the file source (issue 24).

    file_model.py MARS_BIN WORKDIR SEED OPS

From SEED it draws OPS random operations on log files under WORKDIR/logs (the include
pattern is WORKDIR/logs/*.log) while one mars tails them into WORKDIR/out.<run>:
create a file, append numbered lines (to files at their path and to files that left it,
through the descriptor their writer still holds), rotate by rename (out of the pattern),
copytruncate (the copy outside the pattern), truncate, delete, retarget the symlink
link.log, restart mars (SIGTERM) and kill -9 it. Lines are those of tools/file_writer.c
(KEY:SEQ:PAYLOAD), one key per file incarnation.

The model records every line written and whether it was written while its file was
reachable through the pattern. The oracle, after the last operation and a wait for
delivery: every output line is a whole line that was written (nothing garbled, torn or
invented); every line written while its file was reachable arrives at least once; no line
arrives twice unless mars was killed with -9 (then duplicates are counted and bounded by
what was written). Before an operation that takes a file away from the pattern or
rewrites it, the model waits until mars has delivered what the file holds (an operation
on a file mars never saw could not be followed by any tailer); everything else runs at
full speed. Exit 0 when the oracle holds, 1 with the reasons otherwise. Prints one
summary line.
"""
import os
import random
import shutil
import signal
import subprocess
import sys
import time

ALPHA = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
WAIT = float(os.environ.get("MODEL_WAIT", "30"))  # seconds for any one wait


def line(key, seq):
    return "%s:%09d:%s\n" % (key, seq, ALPHA[: 10 + seq % 40])


class Model:
    def __init__(self, mars, work, seed):
        self.mars, self.work, self.rnd = mars, work, random.Random(seed)
        self.logs = os.path.join(work, "logs")
        self.aside = os.path.join(work, "aside")  # outside the pattern
        for d in (self.logs, self.aside):
            os.makedirs(d, exist_ok=True)
        self.seed = seed
        self.nkeys = 0
        self.files = []  # dicts: key, path (where its writer writes), fd, seq, reach
        self.link_target = None
        self.required = {}  # key -> set of seqs that must arrive
        self.written = {}  # key -> number of lines written
        self.runs = 0
        self.kills = 0
        self.proc = None
        self.conf = os.path.join(work, "mars.yaml")
        with open(self.conf, "w") as f:
            f.write("data_dir: %s/data\nruntime: {workers: 2}\nsources:\n"
                    "  in: {type: file, include: [%s/*.log], glob_interval: 500ms, "
                    "rotate_wait: 30s, line_timeout: 60s}\nsinks:\n"
                    "  out: {type: file, inputs: [in], path: \"%s/out.${MODEL_RUN}\"}\n"
                    % (work, self.logs, work))

    # ---- mars ----
    def start(self):
        self.runs += 1
        env = dict(os.environ, MODEL_RUN=str(self.runs), MARS_API_ADDRESS="127.0.0.1:0")
        err = open(os.path.join(self.work, "err.%d" % self.runs), "w")
        self.proc = subprocess.Popen([self.mars, "-c", self.conf], env=env, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=err)
        err.close()
        self.wait_for(lambda: "running:" in self.read(os.path.join(self.work, "err.%d" % self.runs)),
                      "mars to start")

    def stop(self, sig):
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout=WAIT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            self.fail("mars did not stop within %ds after signal %d" % (WAIT, sig))
        if sig == signal.SIGTERM and self.proc.returncode != 0:
            self.fail("mars exited with %d after SIGTERM" % self.proc.returncode)
        self.proc = None

    # ---- helpers ----
    @staticmethod
    def read(path):
        try:
            with open(path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def fail(self, msg):
        if self.proc:
            self.proc.kill()
            self.proc.wait()
        print("model seed %d: FAIL %s" % (self.seed, msg))
        sys.exit(1)

    def wait_for(self, cond, what):
        deadline = time.monotonic() + WAIT
        while not cond():
            if self.proc and self.proc.poll() is not None:
                self.fail("mars exited (%s) while waiting for %s" % (self.proc.returncode, what))
            if time.monotonic() > deadline:
                self.fail("timed out after %ds waiting for %s" % (WAIT, what))
            time.sleep(0.02)

    def delivered(self):
        got = {}
        for r in range(1, self.runs + 1):
            for ln in self.read(os.path.join(self.work, "out.%d" % r)).splitlines():
                key, _, rest = ln.partition(":")
                if rest[:9].isdigit():
                    got.setdefault(key, set()).add(int(rest[:9]))
        return got

    def wait_delivered(self, keys, what):
        def done():
            got = self.delivered()
            return all(self.required.get(k, set()) <= got.get(k, set()) for k in keys)
        self.wait_for(done, what)

    # ---- files ----
    def new_file(self, path, reach=True):
        self.nkeys += 1
        key = "s%dk%d" % (self.seed, self.nkeys)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        f = {"key": key, "path": path, "fd": fd, "seq": 0, "reach": reach}
        self.files.append(f)
        self.required[key] = set()
        return f

    def append(self, f, n):
        buf = "".join(line(f["key"], f["seq"] + i) for i in range(n))
        os.write(f["fd"], buf.encode())
        if f["reach"]:
            self.required[f["key"]].update(range(f["seq"], f["seq"] + n))
        f["seq"] += n
        self.written[f["key"]] = f["seq"]

    def at_path(self):
        return [f for f in self.files if f["reach"]]

    def leave(self, f):
        # before a file is taken away, mars must have seen it: its lines so far delivered
        if self.proc:
            self.wait_delivered([f["key"]], "%s delivered before it leaves" % f["key"])
        f["reach"] = False

    # ---- operations ----
    def op(self):
        r = self.rnd.random()
        live = self.at_path()
        if not live or r < 0.08:
            name = os.path.join(self.logs, "f%d.log" % self.nkeys)
            if not os.path.exists(name):
                self.append(self.new_file(name), self.rnd.randint(1, 50))
            return "create"
        f = self.rnd.choice(live)
        if r < 0.55:
            self.append(f, self.rnd.randint(1, 300))
            return "append"
        if r < 0.62:
            gone = [g for g in self.files if not g["reach"] and g["fd"] is not None]
            if gone:
                self.append(self.rnd.choice(gone), self.rnd.randint(1, 20))
            return "append-departed"
        if not self.proc and r < 0.90:
            return "skip"  # files leave only while mars runs (see leave)
        if r < 0.68:
            if f["path"].endswith(".log") and "link" not in f["path"]:
                self.leave(f)
                os.rename(f["path"], f["path"] + ".%d" % self.nkeys)
                f["path"] += ".%d" % self.nkeys
                self.append(self.new_file(os.path.join(self.logs, "f%d.log" % self.nkeys)), 5)
            return "rotate"
        if r < 0.72:
            if self.proc and "link" not in f["path"]:
                self.wait_delivered([f["key"]], "%s delivered before copytruncate" % f["key"])
                shutil.copyfile(f["path"], os.path.join(self.aside, "copy%d" % self.nkeys))
                os.truncate(f["path"], 0)
            return "copytruncate"
        if r < 0.76:
            if self.proc:
                self.wait_delivered([f["key"]], "%s delivered before truncation" % f["key"])
                os.truncate(f["path"], 0)
                self.append(f, self.rnd.randint(1, 30))
            return "truncate"
        if r < 0.80:
            if "link" not in f["path"]:
                self.leave(f)
                os.unlink(f["path"])
            return "delete"
        if r < 0.85:
            if self.proc:
                self.retarget()
            return "retarget"
        if r < 0.88 and self.proc:
            self.stop(signal.SIGTERM)
            self.start()
            return "restart"
        if r < 0.90 and self.proc:
            self.kills += 1
            self.stop(signal.SIGKILL)
            self.start()
            return "kill -9"
        return "idle"

    def retarget(self):
        link = os.path.join(self.logs, "link.log")
        old = self.link_target
        if old:
            self.leave(old)
        target = os.path.join(self.aside, "t%d.txt" % self.nkeys)
        t = self.new_file(target)
        self.append(t, self.rnd.randint(1, 20))
        tmp = os.path.join(self.logs, ".next")
        os.symlink(target, tmp)
        os.rename(tmp, link)
        t["path"] = target
        self.link_target = t

    # ---- the oracle ----
    def check(self):
        keys = list(self.required)
        self.wait_delivered(keys, "every required line")
        self.stop(signal.SIGTERM)
        got, bad, dups = {}, [], 0
        for r in range(1, self.runs + 1):
            text = self.read(os.path.join(self.work, "out.%d" % r))
            lines = text.split("\n")
            if lines and lines[-1] == "":
                lines.pop()
            elif lines and r < self.runs:
                lines.pop()  # torn by kill -9 (the file sink cuts it back at its next start)
            for ln in lines:
                key, _, rest = ln.partition(":")
                try:
                    seq = int(rest[:9])
                except ValueError:
                    seq = -1
                if key not in self.written or not 0 <= seq < self.written[key] or \
                        ln + "\n" != line(key, seq):
                    bad.append(ln[:80])
                    continue
                s = got.setdefault(key, set())
                if seq in s:
                    dups += 1
                s.add(seq)
        missing = sum(len(self.required[k] - got.get(k, set())) for k in keys)
        nreq = sum(len(v) for v in self.required.values())
        nwritten = sum(self.written.values())
        summary = ("seed %d: %d lines written, %d required, %d missing, %d garbled, "
                   "%d duplicates, %d runs, %d kill -9"
                   % (self.seed, nwritten, nreq, missing, len(bad), dups, self.runs, self.kills))
        problems = []
        if missing:
            ex = [(k, sorted(self.required[k] - got.get(k, set()))[:3]) for k in keys
                  if self.required[k] - got.get(k, set())][:5]
            problems.append("missing %s" % ex)
        if bad:
            problems.append("garbled %s" % bad[:3])
        if dups and not self.kills:
            problems.append("duplicates without a kill -9")
        if dups > nwritten:
            problems.append("more duplicates than lines written")
        if problems:
            print("model " + summary)
            self.fail("; ".join(problems))
        print("model ok " + summary)


def main():
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    m = Model(sys.argv[1], sys.argv[2], int(sys.argv[3]))
    m.start()
    ops = {}
    for _ in range(int(sys.argv[4])):
        name = m.op()
        ops[name] = ops.get(name, 0) + 1
        time.sleep(m.rnd.uniform(0, 0.03))
    print("model seed %d ops: %s" % (m.seed, ", ".join("%s %d" % kv for kv in sorted(ops.items()))))
    m.check()


if __name__ == "__main__":
    main()
