"""fakelib.py - what the HTTP fakes of tests/fakes/ share.

Each fake (es_fake.py, loki_fake.py, http_recv.py) is a ThreadingHTTPServer on 127.0.0.1
(port 0 by default, so tests get a free port; --port to come back on the same port after
a kill). At start it prints "port=N" on stdout and, with --port-file, writes N to that
file (via a temporary file and a rename, so a reader never sees half a number). SIGTERM
and SIGINT make it exit 0 at once; everything recorded was flushed line by line.

Scripted behaviour. A fake keeps a list of request rules; each request that arrives takes
the first rule whose `times` is not used up (and whose optional `path` substring matches)
and answers as it says:
    {"status": 429, "retry_after": "2", "times": 1}     whole request refused
    {"delay": 1.5, "times": 3}                          answer late (then normally)
    {"status": 503, "times": -1}                        forever (until the script changes)
    {"close": true, "times": 1}                         drop the connection, no answer
`times` defaults to 1; -1 means unlimited. A scripted answer is logged to the fake's
requests log (when it has one) as {"t","path","status","scripted":true}. Rules come from --script FILE (a JSON object
{"requests": [...], ...} that fakes may extend with their own keys) and can be replaced
while running with `POST /_fake/script` (same JSON). `GET /_fake/stats` returns counters
as JSON; control requests are not counted or recorded.

Standard library only (runs under Debian's /usr/bin/python3).
"""
import argparse
import gzip
import http.server
import json
import os
import signal
import ssl
import sys
import threading
import time
import zlib


def read_body(rfile, headers):
    """The request body, de-chunked."""
    if headers.get("Transfer-Encoding", "").lower() == "chunked":
        parts = []
        while True:
            size = int(rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(parts)
            parts.append(rfile.read(size))
            rfile.readline()
    return rfile.read(int(headers.get("Content-Length", "0") or "0"))


def decode_body(wire, encoding):
    """(body, decoded): decompresses gzip/deflate (and zstd where this python has it).
    Raises ValueError for a body that does not decompress. Unknown encodings come back
    as they are with decoded False."""
    enc = (encoding or "").lower().strip()
    if enc in ("", "identity"):
        return wire, True
    try:
        if enc == "gzip":
            return gzip.decompress(wire), True
        if enc == "deflate":
            return zlib.decompress(wire), True
        if enc == "zstd":
            try:
                from compression import zstd  # python >= 3.14
            except ImportError:
                return wire, False
            return zstd.decompress(wire), True
    except (OSError, EOFError, zlib.error) as e:
        raise ValueError("bad %s body: %s" % (enc, e))
    return wire, False


class Recorder:
    """Appends JSON lines to a file (or nowhere), one write and flush per record."""

    def __init__(self, path):
        self.f = open(path, "a", encoding="utf-8") if path else None
        self.lock = threading.Lock()

    def write(self, obj):
        if not self.f:
            return
        line = json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n"
        with self.lock:
            self.f.write(line)
            self.f.flush()


class Script:
    """Request rules (see the module comment) plus whatever else a fake keeps in its
    script object; thread-safe."""

    def __init__(self, obj=None):
        self.lock = threading.Lock()
        self.set(obj or {})

    def set(self, obj):
        with self.lock:
            self.obj = obj
            self.rules = [dict(r) for r in obj.get("requests", [])]
            for r in self.rules:
                r.setdefault("times", 1)

    def take(self, path):
        """The first live rule for path (its use counted), or None."""
        with self.lock:
            for r in self.rules:
                if r["times"] == 0 or r.get("path", "") not in path:
                    continue
                if r["times"] > 0:
                    r["times"] -= 1
                return dict(r)
        return None

    def get(self, key, default=None):
        with self.lock:
            return self.obj.get(key, default)


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.c = {"requests": 0}

    def add(self, key, n=1):
        with self.lock:
            self.c[key] = self.c.get(key, 0) + n

    def snapshot(self):
        with self.lock:
            return dict(self.c)


class Fake:
    """State every fake has; a fake's own state class derives from it."""

    def __init__(self, name, args):
        self.name = name
        self.script = load_script(args.script)
        self.stats = Stats()
        self.delay = args.delay


class BaseHandler(http.server.BaseHTTPRequestHandler):
    """Handles /_fake/ control requests and scripted request rules; a fake subclasses it
    and implements handle_request(path, headers, wire_body)."""

    protocol_version = "HTTP/1.1"
    server_version = "fake/1"
    # headers and body go out in separate writes: without TCP_NODELAY the body waits for
    # the client's delayed ACK (40 ms a request)
    disable_nagle_algorithm = True
    fake = None  # the fake's state object (has .script, .stats), set by serve()

    def log_message(self, fmt, *args):
        if os.environ.get("FAKE_DEBUG"):
            sys.stderr.write("%s: %s\n" % (self.fake.name, fmt % args))

    def reply(self, status, body=b"", ctype="application/json", headers=None):
        if isinstance(body, (dict, list)):
            body = json.dumps(body, separators=(",", ":")).encode()
        elif isinstance(body, str):
            body = body.encode()
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, str(v))
        if status != 204:
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if status != 204 and body:
            self.wfile.write(body)

    def control(self, wire):
        if self.command == "GET" and self.path.startswith("/_fake/stats"):
            self.reply(200, self.fake.stats.snapshot())
        elif self.command == "POST" and self.path.startswith("/_fake/script"):
            self.fake.script.set(json.loads(wire or b"{}"))
            self.reply(200, {"ok": True})
        else:
            self.reply(404, {"error": "unknown control request"})

    def do_any(self):
        wire = read_body(self.rfile, self.headers)
        if self.path.startswith("/_fake/"):
            self.control(wire)
            return
        self.fake.stats.add("requests")
        if self.fake.delay:
            time.sleep(self.fake.delay)
        rule = self.fake.script.take(self.path)
        if rule:
            if rule.get("delay"):
                time.sleep(float(rule["delay"]))
            if rule.get("close"):
                self.fake.stats.add("closed")
                self.close_connection = True
                self.connection.shutdown(2)
                return
            if rule.get("status"):
                st = int(rule["status"])
                self.fake.stats.add("scripted_%d" % st)
                if getattr(self.fake, "reqlog", None):
                    self.fake.reqlog.write({"t": time.time(), "path": self.path, "status": st,
                                            "scripted": True, "wire_bytes": len(wire), "items": 0})
                hdrs = {}
                if "retry_after" in rule:
                    hdrs["Retry-After"] = rule["retry_after"]
                self.reply(st, rule.get("body", {"error": {"type": "scripted", "reason": "scripted %d" % st},
                                                 "status": st}), headers=hdrs)
                return
        self.handle_request(self.path, self.headers, wire)

    do_POST = do_PUT = do_GET = do_any


def common_args(desc):
    ap = argparse.ArgumentParser(description=desc)
    ap.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: a free one)")
    ap.add_argument("--port-file", help="write the port here too")
    ap.add_argument("--script", help="JSON script file (see fakelib.py)")
    ap.add_argument("--tls-cert", help="serve HTTPS with this PEM certificate")
    ap.add_argument("--tls-key", help="its key")
    ap.add_argument("--delay", type=float, default=0.0, help="answer every request this late (s)")
    return ap


def load_script(path):
    if not path:
        return Script()
    with open(path, encoding="utf-8") as f:
        return Script(json.load(f))


def serve(fake, handler_cls, args):
    """Binds, announces the port, serves until SIGTERM/SIGINT, then exits 0."""
    handler_cls.fake = fake

    class Server(http.server.ThreadingHTTPServer):
        daemon_threads = True
        allow_reuse_address = True
        request_queue_size = 64

    srv = Server(("127.0.0.1", args.port), handler_cls)
    if args.tls_cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.tls_cert, args.tls_key)
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    port = srv.server_address[1]
    if args.port_file:
        with open(args.port_file + ".tmp", "w") as f:
            f.write("%d\n" % port)
        os.rename(args.port_file + ".tmp", args.port_file)
    print("port=%d" % port, flush=True)

    def bye(signum, frame):
        os._exit(0)

    signal.signal(signal.SIGTERM, bye)
    signal.signal(signal.SIGINT, bye)
    srv.serve_forever()
