#!/usr/bin/python3
"""loki_fake.py - a Loki push endpoint for tests, written from Loki's HTTP API docs.

Usage: loki_fake.py [--entries FILE] [--requests-log FILE] [common options]
(common options and request rules: fakelib.py).

POST /loki/api/v1/push with Content-Type application/json (optionally Content-Encoding
gzip) answers 204. The body must be {"streams": [{"stream": {label: value, ...},
"values": [["<unix ns as a decimal string>", "<line>"(, {metadata})], ...]}, ...]}:
at least one label per stream, label names [a-zA-Z_][a-zA-Z0-9_]*, string values. A body
of any other shape gets 400 with a reason. Protobuf bodies get 415 (not modelled here).

Ordering is enforced per stream as Loki did before 2.4: an entry older than the newest
one already accepted for the same label set is rejected ("entry out of order"); the
other entries of the request are kept and the answer is 400 naming the rejected ones.
Every accepted entry is appended to --entries as {"stream","labels","ts","line",
"tenant","meta"} where labels is the canonical `{a="x", b="y"}` text and tenant the
X-Scope-OrgID header ("" when absent). --requests-log gets one line per push:
{"t","status","streams","entries","wire_bytes","bytes","encoding","tenant"}.
"""
import json
import re
import sys
import threading
import time

import fakelib

LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
NS = re.compile(r"^[0-9]{1,19}$")


class LokiFake(fakelib.Fake):
    def __init__(self, args):
        super().__init__("loki_fake", args)
        self.entries = fakelib.Recorder(args.entries)
        self.reqlog = fakelib.Recorder(args.requests_log)
        self.last = {}  # (tenant, canonical labels) -> newest accepted ns
        self.lock = threading.Lock()


def canonical(labels):
    return "{" + ", ".join('%s="%s"' % (k, labels[k].replace("\\", "\\\\").replace('"', '\\"'))
                           for k in sorted(labels)) + "}"


def validate(doc):
    """Raises ValueError naming the first problem."""
    if not isinstance(doc, dict) or not isinstance(doc.get("streams"), list):
        raise ValueError("body must be an object with a streams array")
    for si, s in enumerate(doc["streams"]):
        if not isinstance(s, dict) or not isinstance(s.get("stream"), dict):
            raise ValueError("streams[%d]: stream must be an object of labels" % si)
        if not s["stream"]:
            raise ValueError("streams[%d]: at least one label pair is required per stream" % si)
        for k, v in s["stream"].items():
            if not LABEL_NAME.match(k) or not isinstance(v, str):
                raise ValueError("streams[%d]: invalid label %r=%r" % (si, k, v))
        if not isinstance(s.get("values"), list):
            raise ValueError("streams[%d]: values must be an array" % si)
        for vi, e in enumerate(s["values"]):
            if not isinstance(e, list) or len(e) not in (2, 3) or not isinstance(e[0], str) \
                    or not NS.match(e[0]) or not isinstance(e[1], str) \
                    or (len(e) == 3 and not isinstance(e[2], dict)):
                raise ValueError("streams[%d].values[%d]: want [\"<ns>\", \"<line>\"(, {})]" % (si, vi))


class Handler(fakelib.BaseHandler):
    def handle_request(self, path, headers, wire):
        fake = self.fake
        tenant = headers.get("X-Scope-OrgID", "")
        log = {"t": time.time(), "path": path, "wire_bytes": len(wire),
               "encoding": headers.get("Content-Encoding", ""), "tenant": tenant}

        def finish(status, msg=""):
            log["status"] = status
            fake.reqlog.write(log)
            fake.stats.add("status_%d" % status)
            self.reply(status, msg + "\n" if msg else b"", ctype="text/plain")

        if self.command != "POST" or path.split("?")[0] != "/loki/api/v1/push":
            finish(404, "not found")
            return
        ctype = headers.get("Content-Type", "").split(";")[0].strip()
        if ctype != "application/json":
            finish(415, "only application/json pushes are modelled (got %s)" % ctype)
            return
        try:
            body, decoded = fakelib.decode_body(wire, headers.get("Content-Encoding"))
            if not decoded:
                raise ValueError("unsupported Content-Encoding")
            log["bytes"] = len(body)
            doc = json.loads(body)
            validate(doc)
        except ValueError as e:
            finish(400, "error parsing push request: %s" % e)
            return
        rejected = []
        accepted = 0
        with fake.lock:
            for s in doc["streams"]:
                labels = canonical(s["stream"])
                key = (tenant, labels)
                for e in s["values"]:
                    ts = int(e[0])
                    if ts < fake.last.get(key, 0):
                        rejected.append("entry with timestamp %s ignored, reason: 'entry out of "
                                        "order' for stream: %s" % (e[0], labels))
                        continue
                    fake.last[key] = ts
                    accepted += 1
                    fake.entries.write({"stream": s["stream"], "labels": labels, "ts": e[0],
                                        "line": e[1], "tenant": tenant,
                                        "meta": e[2] if len(e) == 3 else None})
        fake.stats.add("entries", accepted)
        fake.stats.add("out_of_order", len(rejected))
        log.update(streams=len(doc["streams"]), entries=accepted, rejected=len(rejected))
        if rejected:
            finish(400, "\n".join(rejected[:10]) + ("\ntotal ignored: %d out of %d" % (
                len(rejected), accepted + len(rejected))))
        else:
            finish(204)


def main():
    ap = fakelib.common_args("Loki push fake")
    ap.add_argument("--entries", help="append accepted entries here (JSON lines)")
    ap.add_argument("--requests-log", help="append one line per push here")
    args = ap.parse_args()
    fakelib.serve(LokiFake(args), Handler, args)


if __name__ == "__main__":
    sys.exit(main())
