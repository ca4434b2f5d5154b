#!/usr/bin/env bash
# SIGTERM right after mars starts, before its engine runs, must stop it cleanly (exit 0,
# "mars stopped"), not kill it by the signal's default action (issue 24, 7b: 34 of 370
# quick restarts died).
#  1. Deterministic: the config is a FIFO, so mars sits in main() reading it; SIGTERM then,
#     the config written after: mars must start, see the pending signal and exit 0.
#  2. 200 rounds of start + SIGTERM after 0-30 ms, once mars's main() has blocked the
#     signal (SigBlk in /proc, so the dynamic loader's time before main() is not tested).
set -euo pipefail
source "$(dirname "$0")/lib/common.bash"

cat >"$TMP/mars.yaml" <<EOF
data_dir: $TMP/data
sources:
  gen: {type: demo, rate: 1000, count: 0}
sinks:
  out: {type: blackhole, inputs: [gen], print_interval: 1h}
EOF
mkfifo "$TMP/fifo.yaml"

say "SIGTERM while the config is being read, 200 quick start+SIGTERM rounds"
/usr/bin/python3 - "$MARS_BIN" "$TMP" <<'PY'
import os, random, signal, subprocess, sys, time

mars, tmp = sys.argv[1], sys.argv[2]
procs = []

def fail(msg):
    print("FAIL sigterm_early: " + msg, file=sys.stderr)
    sys.exit(1)

def start(config, err):
    p = subprocess.Popen([mars, "-c", config], stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=err)
    procs.append(p)
    return p

def finish(p, errpath, what):
    try:
        rc = p.wait(timeout=60)
    except subprocess.TimeoutExpired:
        fail(what + ": mars did not exit within 60 s")
    log = open(errpath).read()
    if rc != 0:
        fail("%s: exit %d (negative: killed by that signal), expected 0\n%s" % (what, rc, log))
    if "SIGTERM: stopping" not in log or "mars stopped" not in log:
        fail("%s: no 'SIGTERM: stopping' and 'mars stopped' in the log\n%s" % (what, log))

def main():
    fifo = os.path.join(tmp, "fifo.yaml")
    errpath = os.path.join(tmp, "fifo.log")
    with open(errpath, "w") as err:
        p = start(fifo, err)
    # open() returns once mars has opened the FIFO for reading: it is in main()
    try:
        with open(fifo, "w") as f:
            p.send_signal(signal.SIGTERM)
            time.sleep(0.2)  # the signal is delivered before mars reads the config
            f.write(open(os.path.join(tmp, "mars.yaml")).read())
    except BrokenPipeError:
        pass  # mars is gone: finish() says how
    finish(p, errpath, "SIGTERM while reading the config")
    print("== sigterm_early: SIGTERM while reading the config: exit 0")

    config = os.path.join(tmp, "mars.yaml")
    rnd = random.Random(24)
    for i in range(200):
        errpath = os.path.join(tmp, "round.log")
        with open(errpath, "w") as err:
            p = start(config, err)
        deadline = time.monotonic() + 30
        while True:
            try:
                status = open("/proc/%d/status" % p.pid).read()
            except OSError:
                status = ""
            blk = [l for l in status.splitlines() if l.startswith("SigBlk:")]
            if blk and int(blk[0].split()[1], 16) & (1 << (signal.SIGTERM - 1)):
                break
            if p.poll() is not None or time.monotonic() > deadline:
                fail("round %d: mars never blocked SIGTERM (exit %s)\n%s"
                     % (i, p.poll(), open(errpath).read()))
            time.sleep(0.0005)
        time.sleep(rnd.uniform(0, 0.03))
        p.send_signal(signal.SIGTERM)
        finish(p, errpath, "round %d" % i)
        procs.remove(p)
    print("== sigterm_early: 200 rounds: every exit 0")

try:
    main()
finally:
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait()
PY
pass "an early SIGTERM stops mars cleanly"
