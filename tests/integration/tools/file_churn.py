#!/usr/bin/python3
"""file_churn.py - short-lived files for the file source tests (tests/integration/file_*.sh).

Lines are those of tools/file_writer.c: KEY:SEQ:PAYLOAD, SEQ 9 digits from 0 per KEY,
PAYLOAD the first 10 + SEQ % 40 characters of ALPHA. Each mode prints, when done, one
"KEY COUNT" line per key it wrote (the expectation of lib/file_source.bash).

  recreate PATH GENS LINES MIN_MS MAX_MS SEED
      generation g (key r<g>): creates PATH, writes LINES lines in two halves MIN_MS..MAX_MS
      apart (random), then deletes it and, 0..MAX_MS later, creates it again.
  renameout PATH GENS LINES WRITES SEED
      generation g (key m<g>): creates PATH, writes LINES lines in WRITES writes with a
      random 0..2 ms pause between them, closes it and at once renames it to PATH.<g>.out
      (outside the include pattern).
  many DIR SECONDS RATE LINES AGE
      RATE files a second for SECONDS (key n<i>, DIR/n<i>.log, LINES lines in one write),
      each deleted AGE seconds after it was created; every file has the same size, so a
      reused inode is not told apart by its size.
"""
import os
import random
import sys
import time

ALPHA = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


def lines(key, start, count):
    return "".join("%s:%09d:%s\n" % (key, s, ALPHA[: 10 + s % 40])
                   for s in range(start, start + count)).encode()


def recreate(path, gens, nlines, min_ms, max_ms, seed):
    rnd = random.Random(seed)
    for g in range(gens):
        key = "r%d" % g
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        half = nlines // 2
        os.write(fd, lines(key, 0, half))
        time.sleep(rnd.uniform(min_ms, max_ms) / 2000.0)
        os.write(fd, lines(key, half, nlines - half))
        time.sleep(rnd.uniform(min_ms, max_ms) / 2000.0)
        os.close(fd)
        os.unlink(path)
        print("%s %d" % (key, nlines))
        time.sleep(rnd.uniform(0, max_ms) / 1000.0)


def renameout(path, gens, nlines, writes, seed):
    rnd = random.Random(seed)
    per = nlines // writes
    for g in range(gens):
        key = "m%d" % g
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        for w in range(writes):
            n = per if w + 1 < writes else nlines - per * (writes - 1)
            os.write(fd, lines(key, w * per, n))
            time.sleep(rnd.uniform(0, 0.002))
        os.close(fd)
        os.rename(path, "%s.%d.out" % (path, g))
        print("%s %d" % (key, nlines))


def many(d, seconds, rate, nlines, age):
    t0 = time.monotonic()
    total = int(seconds * rate)
    live = []  # (delete at, path)
    for i in range(total):
        due = t0 + i / rate
        while True:
            now = time.monotonic()
            while live and live[0][0] <= now:
                os.unlink(live.pop(0)[1])
            if now >= due:
                break
            time.sleep(min(due - now, 0.002))
        key = "n%d" % i
        path = os.path.join(d, key + ".log")
        # one size for all: pad the key to 7 characters
        key = "n%06d" % i
        with open(path, "wb") as f:
            f.write(lines(key, 0, nlines))
        live.append((time.monotonic() + age, path))
        print("%s %d" % (key, nlines))
    for when, path in live:
        time.sleep(max(0.0, when - time.monotonic()))
        os.unlink(path)


def main():
    a = sys.argv
    if len(a) == 8 and a[1] == "recreate":
        recreate(a[2], int(a[3]), int(a[4]), float(a[5]), float(a[6]), int(a[7]))
    elif len(a) == 7 and a[1] == "renameout":
        renameout(a[2], int(a[3]), int(a[4]), int(a[5]), int(a[6]))
    elif len(a) == 7 and a[1] == "many":
        many(a[2], float(a[3]), float(a[4]), int(a[5]), float(a[6]))
    else:
        sys.exit(__doc__)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
