#!/usr/bin/env python3
"""apm_client.py - replays what PHP APM extensions write to mars's apm_socket source.

The byte sequences are those of shared/protocols.md §14:
  SkyAPM-php-sdk 3.x: a new connection per record; a register request `0{...}\\n` is followed
  by ONE read of up to 4 KiB with a 100 ms timeout (the reply has no terminator).
  The seed agent: newline-delimited records, several per connection.

Usage:
  apm_client.py SOCK register APP PID VERSION [URL]   prints the reply (or "<empty>")
  apm_client.py SOCK fresh FILE [TIMES]                one connection per line of FILE
  apm_client.py SOCK one FILE                          every line of FILE on one connection
  apm_client.py SOCK storm N FILE                      N connections open at once, each sends
                                                       one line of FILE (cycling), then all close
  apm_client.py SOCK loop SECS FILE                    both of the above, over and over, for SECS
  apm_client.py SOCK abuse                             garbage, a 1 MiB line and a half record,
                                                       then the connection stays open 1 s
Every command exits 0 on success and prints what it did on stdout.
"""
import json
import socket
import sys
import time


def connect(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    for _ in range(500):  # a full accept queue answers EAGAIN on unix sockets: back off
        try:
            s.connect(path)
            return s
        except BlockingIOError:
            time.sleep(0.01)
    s.connect(path)
    return s


def register(path, app, pid, version, url=None):
    rec = {"app_code": app, "pid": int(pid), "version": int(version)}
    if url:
        rec["url"] = url
    s = connect(path)
    s.sendall(b"0" + json.dumps(rec, separators=(",", ":")).encode() + b"\n")
    s.settimeout(0.1)  # the extension waits 100 ms, no more
    try:
        reply = s.recv(4096)
    except socket.timeout:
        reply = b""
    s.close()
    print(reply.decode() if reply else "<empty>")


def lines(path):
    with open(path, "rb") as f:
        return [l if l.endswith(b"\n") else l + b"\n" for l in f.read().splitlines(True) if l.strip()]


def fresh(path, file, times=1):
    n = 0
    for l in lines(file) * int(times):
        s = connect(path)
        s.sendall(l)
        s.close()
        n += 1
    print(f"sent {n} records on {n} connections")


def one(path, file):
    s = connect(path)
    ls = lines(file)
    s.sendall(b"".join(ls))
    s.close()
    print(f"sent {len(ls)} records on one connection")


def storm(path, n, file):
    ls = lines(file)
    socks = [connect(path) for _ in range(int(n))]
    for i, s in enumerate(socks):
        s.sendall(ls[i % len(ls)])
    for s in socks:
        s.close()
    print(f"sent {n} records on {n} concurrent connections")


def loop(path, seconds, file):
    """Alternates one connection with every record and a fresh connection per record."""
    end, n = time.time() + float(seconds), 0
    ls = lines(file)
    while time.time() < end:
        s = connect(path)
        s.sendall(b"".join(ls))
        s.close()
        for l in ls:
            s = connect(path)
            s.sendall(l)
            s.close()
        n += 2 * len(ls)
    print(f"sent {n} records in {seconds} s")


def abuse(path):
    s = connect(path)
    s.sendall(b"\x00\xff garbage that is no record\n9{}\n1{not json\n2[RIG:BIZ]={\"name\":1}\n")
    s.sendall(b"1" + b"x" * (1 << 20) + b"\n")
    s.sendall(b'1{"isEntry":true,"body":{"url":"/half')
    time.sleep(1)
    s.close()
    print("sent garbage, a 1 MiB line and half a record")


def main(argv):
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    path, cmd, args = argv[1], argv[2], argv[3:]
    {"register": register, "fresh": fresh, "one": one, "storm": storm, "loop": loop, "abuse": abuse}[cmd](path, *args)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
