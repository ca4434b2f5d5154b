#!/usr/bin/python3
"""es_fake.py - an Elasticsearch `_bulk` endpoint for tests, written from the bulk API docs.

Usage: es_fake.py [--docs FILE] [--requests-log FILE] [--max-body BYTES] [common options]
(common options and request rules: fakelib.py).

POST /_bulk and /<index>/_bulk (Content-Type application/x-ndjson or application/json,
optional Content-Encoding gzip). The body is parsed strictly: it must end with a newline
and every line must be JSON; an action line is an object with exactly one of index,
create, update, delete; all but delete are followed by a source line. A malformed body
gets 400, a missing index 400, a body longer than --max-body (or the script's "max_body")
413, an unknown content type 406.

Documents. `index` stores (replacing an id that exists: result "updated"), `create`
with an id already stored answers 409 version_conflict_engine_exception, a document
without _id gets a generated one. Every stored document is appended to --docs as
{"index","id","action","result","source","t"}; ids already in that file at start are
known, so a fake restarted on the same file keeps ES's id semantics.

Per-document failures come from the script's "items" list, first live rule whose "match"
substring occurs in the source line:
    {"match": "seq=000042", "status": 429, "times": 1}   es_rejected_execution_exception
    {"match": "bad", "status": 400, "times": -1}          mapper_parsing_exception
(500 gives an internal error; "type" overrides the error type). The document is then
not stored. The response honours ?filter_path= (comma separated dotted paths, `*`
matches any key, arrays are looked through). --requests-log gets one line per bulk
request: {"t","path","status","items","statuses" (count per item status),"wire_bytes",
"bytes","encoding","pipeline","headers"}; GET /_fake/stats counts requests, items by status, and docs.
"""
import json
import sys
import threading
import time
import urllib.parse

import fakelib

ERROR_TYPES = {
    400: "mapper_parsing_exception",
    409: "version_conflict_engine_exception",
    429: "es_rejected_execution_exception",
    500: "internal_server_error",
    503: "unavailable_shards_exception",
}


class BadRequest(Exception):
    def __init__(self, status, etype, reason):
        super().__init__(reason)
        self.status, self.etype, self.reason = status, etype, reason


class EsFake(fakelib.Fake):
    def __init__(self, args):
        super().__init__("es_fake", args)
        self.docs = fakelib.Recorder(args.docs)
        self.reqlog = fakelib.Recorder(args.requests_log)
        self.max_body = args.max_body
        self.ids = set()
        self.auto = 0
        self.lock = threading.Lock()
        self.item_rules = None  # built from the script on first use
        if args.docs:
            try:
                with open(args.docs, encoding="utf-8") as f:
                    for line in f:
                        d = json.loads(line)
                        self.ids.add((d["index"], d["id"]))
            except FileNotFoundError:
                pass

    def item_status(self, source_line):
        """Scripted status for one document, or None."""
        with self.script.lock:
            rules = self.script.obj.setdefault("items", [])
            for r in rules:
                r.setdefault("times", 1)
                if r["times"] != 0 and r["match"] in source_line:
                    if r["times"] > 0:
                        r["times"] -= 1
                    return int(r["status"]), r.get("type")
        return None


def filter_paths(obj, paths):
    """Elasticsearch's filter_path: keeps the members on the given paths."""
    if any(len(p) == 0 for p in paths):
        return obj
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            sub = [p[1:] for p in paths if p[0] in ("*", k)]
            if sub:
                r = filter_paths(v, sub)
                if r is not None:
                    out[k] = r
        return out or None
    if isinstance(obj, list):
        out = [x for x in (filter_paths(v, paths) for v in obj) if x is not None]
        return out or None
    return None


def parse_bulk(body, default_index):
    """[(action, meta, source_line or None)]; raises BadRequest."""
    if not body:
        raise BadRequest(400, "parse_exception", "request body is required")
    if not body.endswith(b"\n"):
        raise BadRequest(400, "illegal_argument_exception",
                         "The bulk request must be terminated by a newline [\\n]")
    lines = body[:-1].split(b"\n")
    ops = []
    i = 0
    while i < len(lines):
        try:
            act = json.loads(lines[i])
        except ValueError as e:
            raise BadRequest(400, "x_content_parse_exception", "line %d: %s" % (i + 1, e))
        if not isinstance(act, dict) or len(act) != 1:
            raise BadRequest(400, "illegal_argument_exception",
                             "line %d: malformed action/metadata line" % (i + 1))
        (name, meta), = act.items()
        if name not in ("index", "create", "update", "delete") or not isinstance(meta, dict):
            raise BadRequest(400, "illegal_argument_exception",
                             "line %d: unknown action [%s]" % (i + 1, name))
        meta = dict(meta)
        meta.setdefault("_index", default_index)
        if not meta["_index"]:
            raise BadRequest(400, "action_request_validation_exception",
                             "Validation Failed: 1: index is missing;")
        src = None
        if name != "delete":
            if i + 1 >= len(lines):
                raise BadRequest(400, "illegal_argument_exception",
                                 "line %d: action [%s] needs a source line" % (i + 1, name))
            src = lines[i + 1].decode("utf-8", "replace")
            i += 1
        ops.append((name, meta, src))
        i += 1
    return ops


def bad_index_name(name):
    return (name != name.lower() or name.startswith(("_", "-", "+")) or
            any(c in name for c in ' "*\\<|,>/?'))


class Handler(fakelib.BaseHandler):
    def handle_request(self, path, headers, wire):
        fake = self.fake
        url = urllib.parse.urlsplit(path)
        query = urllib.parse.parse_qs(url.query)
        parts = [p for p in url.path.split("/") if p]
        if self.command != "POST" and self.command != "PUT" or not parts or parts[-1] != "_bulk" \
                or len(parts) > 2:
            self.reply(404 if self.command != "GET" else 200,
                       {"name": "es_fake", "version": {"number": "8.11.0"}})
            return
        default_index = parts[0] if len(parts) == 2 else None
        max_body = fake.script.get("max_body", fake.max_body)
        log = {"t": time.time(), "path": path, "wire_bytes": len(wire),
               "encoding": headers.get("Content-Encoding", ""),
               "pipeline": query.get("pipeline", [None])[0],
               "headers": {k: headers.get(k) for k in ("Content-Type", "Authorization", "X-Test")
                           if headers.get(k)}}
        try:
            if max_body and len(wire) > max_body:
                raise BadRequest(413, "content_too_long", "body of %d bytes > %d" % (len(wire), max_body))
            ctype = headers.get("Content-Type", "").split(";")[0].strip()
            if ctype not in ("application/x-ndjson", "application/json"):
                raise BadRequest(406, "media_type", "Content-Type [%s] is not supported" % ctype)
            try:
                body, decoded = fakelib.decode_body(wire, headers.get("Content-Encoding"))
            except ValueError as e:
                raise BadRequest(400, "parse_exception", str(e))
            if not decoded:
                raise BadRequest(400, "parse_exception", "unsupported Content-Encoding")
            log["bytes"] = len(body)
            ops = parse_bulk(body, default_index)
        except BadRequest as e:
            log.update(status=e.status, items=0, statuses={})
            fake.reqlog.write(log)
            fake.stats.add("status_%d" % e.status)
            self.reply(e.status, {"error": {"type": e.etype, "reason": e.reason}, "status": e.status})
            return
        items = [self.apply(name, meta, src) for name, meta, src in ops]
        statuses = [next(iter(it.values()))["status"] for it in items]
        resp = {"took": 1, "errors": any(s >= 300 for s in statuses), "items": items}
        if "filter_path" in query:
            fp = [p.split(".") for q in query["filter_path"] for p in q.split(",") if p]
            resp = filter_paths(resp, fp) or {}
        counts = {}
        for st in statuses:
            counts[str(st)] = counts.get(str(st), 0) + 1
        log.update(status=200, items=len(items), statuses=counts)
        fake.reqlog.write(log)
        fake.stats.add("status_200")
        self.reply(200, resp)

    def apply(self, name, meta, src):
        """Runs one bulk item; returns its response item."""
        fake = self.fake
        index, doc_id = meta["_index"], meta.get("_id")
        res = {"_index": index}
        scripted = fake.item_status(src) if src is not None else None
        status, result, etype = 0, None, None
        if bad_index_name(index):
            status, etype = 400, "invalid_index_name_exception"
        elif scripted:
            status, etype = scripted[0], scripted[1] or ERROR_TYPES.get(scripted[0], "scripted")
        elif name in ("index", "create"):
            try:
                source = json.loads(src)
                if not isinstance(source, dict):
                    raise ValueError("source is not an object")
            except ValueError:
                status, etype = 400, "mapper_parsing_exception"
            else:
                with fake.lock:
                    if doc_id is None:
                        fake.auto += 1
                        doc_id = "auto-%d" % fake.auto
                    key = (index, doc_id)
                    if name == "create" and key in fake.ids:
                        status, etype = 409, "version_conflict_engine_exception"
                    else:
                        result = "updated" if key in fake.ids else "created"
                        status = 200 if result == "updated" else 201
                        fake.ids.add(key)
                        fake.docs.write({"index": index, "id": doc_id, "action": name,
                                         "result": result, "source": source, "t": time.time()})
                        fake.stats.add("docs")
        else:
            status, etype = 400, "illegal_argument_exception"  # update/delete: not kept here
        if doc_id is not None:
            res["_id"] = doc_id
        res["status"] = status
        if result:
            res["result"] = result
        else:
            res["error"] = {"type": etype, "reason": "%s (es_fake)" % etype}
        fake.stats.add("item_%d" % status)
        return {name: res}


def main():
    ap = fakelib.common_args("Elasticsearch _bulk fake")
    ap.add_argument("--docs", help="append stored documents here (JSON lines)")
    ap.add_argument("--requests-log", help="append one line per bulk request here")
    ap.add_argument("--max-body", type=int, default=0, help="413 above this many wire bytes")
    args = ap.parse_args()
    fakelib.serve(EsFake(args), Handler, args)


if __name__ == "__main__":
    sys.exit(main())
