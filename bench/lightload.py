#!/usr/bin/env python3
"""lightload.py - one light-load measurement: a writer appends stamped lines to a file at a
fixed rate, as many small appends or as few large ones, while a running mars tails it; mars's
CPU (user+sys from /proc/PID/stat, over the writing window only, so startup is left out) and
peak RSS are read, and optionally its system calls are counted with `strace -c -f` attached
for the window.

    bench/lightload.py --pid PID --file LOG --rate 10000 --writes 870 --seconds 10 [--strace]

Prints one line of key=value figures: cpu_s, vcpu (CPU-s per second of wall), lines,
writes, rss_kb, and with --strace syscalls (total), per_write, and the top calls. With
--rate 0 it writes nothing and measures idle. Used by scenarios.py's light-load rows;
runnable by hand against any mars (the file must be in its include).
"""
import argparse
import os
import re
import signal
import subprocess
import sys
import time

PAD = b" " + b"x" * 180 + b"\n"


def cpu_ticks(pid):
    with open("/proc/%d/stat" % pid) as f:
        st = f.read().rsplit(")", 1)[1].split()
    return int(st[11]) + int(st[12])  # utime + stime (fields 14, 15)


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def parse_strace(text):
    calls, total = {}, 0
    for line in text.splitlines():
        m = re.match(r"\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?(\w+)\s*$", line)
        if m:
            calls[m.group(2)] = int(m.group(1))
        m = re.match(r"\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?total\s*$", line)
        if m:
            total = int(m.group(1))
    return calls, total


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--file", required=True)
    ap.add_argument("--rate", type=int, default=10000, help="lines per second (0: idle)")
    ap.add_argument("--writes", type=int, default=870, help="write() calls per second")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--strace", action="store_true")
    a = ap.parse_args()

    hz = os.sysconf("SC_CLK_TCK")
    st = None
    if a.strace:
        st = subprocess.Popen(["strace", "-c", "-f", "-q", "-p", str(a.pid)], stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)
        time.sleep(0.5)
    fd = os.open(a.file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    c0, t0 = cpu_ticks(a.pid), time.monotonic()
    lines = writes = 0
    if a.rate > 0:
        per = max(1, a.rate // max(1, a.writes))
        step = per / a.rate
        total = int(a.rate * a.seconds)
        nxt = t0
        while lines < total:
            n = min(per, total - lines)
            os.write(fd, b"".join(b"%d" % time.time_ns() + PAD for _ in range(n)))
            lines += n
            writes += 1
            nxt += step
            d = nxt - time.monotonic()
            if d > 0:
                time.sleep(d)
    else:
        time.sleep(a.seconds)
    time.sleep(0.2)  # the last lines' delivery
    t1, c1 = time.monotonic(), cpu_ticks(a.pid)
    os.close(fd)
    out = {"cpu_s": (c1 - c0) / hz, "vcpu": (c1 - c0) / hz / (t1 - t0), "lines": lines, "writes": writes,
           "rss_kb": rss_kb(a.pid)}
    if st:
        st.send_signal(signal.SIGINT)
        _, err = st.communicate(timeout=30)
        calls, total = parse_strace(err)
        out["syscalls"] = total
        out["per_write"] = round(total / writes, 2) if writes else total
        top = sorted(((k, v) for k, v in calls.items() if k != "total"), key=lambda kv: -kv[1])[:6]
        out["top"] = ",".join("%s:%s" % (k, round(v / writes, 2) if writes else v) for k, v in top)
    print(" ".join("%s=%s" % (k, ("%.4f" % v) if isinstance(v, float) else v) for k, v in out.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
