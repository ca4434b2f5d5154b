#!/usr/bin/python3
"""http_recv.py - the HTTP receiver of the `file -> http` scenario.

Usage: http_recv.py --port-file FILE --expect N [--timeout SEC]

Listens on 127.0.0.1 on a free port (written to FILE via FILE.tmp + rename), accepts POST and
PUT requests with ndjson bodies (plain, or `Content-Encoding: gzip`; Content-Length or chunked),
counts the lines (events) and answers 200. Exits 0 as soon as N lines arrived (completion is
exact), 1 on timeout. Prints "lines=N bytes=B requests=R wire_bytes=W" on stdout, where
bytes are decompressed body bytes and wire_bytes what came over the socket.

Runs under /usr/bin/python3 with the standard library only; one thread per connection
(ThreadingHTTPServer), counters under a lock.
"""
import argparse
import gzip
import http.server
import os
import sys
import threading
import zlib

# the request body reader the test fakes use (de-chunking included)
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fakes"))
from fakelib import read_body  # noqa: E402


class State:
    def __init__(self, expect):
        self.expect = expect
        self.lines = self.bytes = self.requests = self.wire = 0
        self.lock = threading.Lock()
        self.done = threading.Event()


def make_handler(st):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # the answer's header and body are two writes: with Nagle the second waited for
        # the client's delayed ACK, ~40 ms per request, which no real server costs (and
        # which made the row measure request count, not mars)
        disable_nagle_algorithm = True

        def log_message(self, fmt, *args):  # quiet: the bench reads stdout
            pass

        def do_POST(self):
            wire = read_body(self.rfile, self.headers)
            body = wire
            enc = self.headers.get("Content-Encoding", "").lower()
            try:
                if enc == "gzip":
                    body = gzip.decompress(wire)
                elif enc == "deflate":
                    body = zlib.decompress(wire)
            except (OSError, zlib.error) as e:
                self.send_error(400, "bad %s body: %s" % (enc, e))
                return
            n = body.count(b"\n") + (1 if body and not body.endswith(b"\n") else 0)
            with st.lock:
                st.lines += n
                st.bytes += len(body)
                st.wire += len(wire)
                st.requests += 1
                complete = st.lines >= st.expect
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")
            self.wfile.flush()
            if complete:  # only once the answer is out: mars must see its last request acked
                st.done.set()

        do_PUT = do_POST

    return Handler


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--expect", type=int, required=True)
    ap.add_argument("--timeout", type=float, default=600)
    a = ap.parse_args()
    st = State(a.expect)
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), make_handler(st))
    srv.daemon_threads = True
    with open(a.port_file + ".tmp", "w") as f:
        f.write("%d\n" % srv.server_address[1])
    os.rename(a.port_file + ".tmp", a.port_file)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    ok = st.done.wait(a.timeout)
    print("lines=%d bytes=%d requests=%d wire_bytes=%d" % (st.lines, st.bytes, st.requests, st.wire))
    sys.stdout.flush()
    os._exit(0 if ok else 1)


if __name__ == "__main__":
    main()
