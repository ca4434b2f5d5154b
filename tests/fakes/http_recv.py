#!/usr/bin/python3
"""http_recv.py - a plain HTTP receiver for sink tests (the bench has its own counting
receiver, bench/http_recv.py, which stops at a line count; this one records).

Usage: http_recv.py [--bodies FILE] [--requests-log FILE] [--status N] [common options]
(common options, TLS and request rules: fakelib.py).

Any POST or PUT is answered --status (200 by default) unless a request rule says
otherwise. Bodies are decompressed when their Content-Encoding is gzip or deflate (and
zstd on a python that has compression.zstd; lz4 never): the decoded bytes are appended
to --bodies. A body that cannot be decoded here is not appended; its request line says
"decoded": false and carries the size, so a test can still count requests. One line per
request goes to --requests-log: {"t","method","path","status","wire_bytes","bytes",
"encoding","decoded","headers"} (headers: Content-Type, Content-Length, Transfer-Encoding,
Authorization, and any X-*).
"""
import sys
import threading
import time

import fakelib


class Recv(fakelib.Fake):
    def __init__(self, args):
        super().__init__("http_recv", args)
        self.reqlog = fakelib.Recorder(args.requests_log)
        self.bodies = open(args.bodies, "ab") if args.bodies else None
        self.status = args.status
        self.lock = threading.Lock()


class Handler(fakelib.BaseHandler):
    def handle_request(self, path, headers, wire):
        fake = self.fake
        enc = headers.get("Content-Encoding", "")
        log = {"t": time.time(), "method": self.command, "path": path, "wire_bytes": len(wire),
               "encoding": enc,
               "headers": {k: v for k, v in headers.items()
                           if k.lower() in ("content-type", "content-length", "transfer-encoding", "authorization")
                           or k.lower().startswith("x-")}}
        try:
            body, decoded = fakelib.decode_body(wire, enc)
        except ValueError as e:
            log.update(status=400, decoded=False, error=str(e))
            fake.reqlog.write(log)
            self.reply(400, {"error": str(e)})
            return
        status = fake.status
        log.update(status=status, decoded=decoded, bytes=len(body))
        if decoded and fake.bodies and 200 <= status < 300:
            with fake.lock:
                fake.bodies.write(body)
                fake.bodies.flush()
        fake.stats.add("bytes", len(body))
        fake.stats.add("status_%d" % status)
        fake.reqlog.write(log)
        self.reply(status, {} if status != 204 else b"")


def main():
    ap = fakelib.common_args("plain HTTP receiver")
    ap.add_argument("--bodies", help="append decoded bodies of 2xx requests here")
    ap.add_argument("--requests-log", help="append one line per request here")
    ap.add_argument("--status", type=int, default=200, help="answer this status")
    args = ap.parse_args()
    fakelib.serve(Recv(args), Handler, args)


if __name__ == "__main__":
    sys.exit(main())
