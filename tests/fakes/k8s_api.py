#!/usr/bin/python3
"""A fake Kubernetes API server for the kubernetes_logs tests (stdlib only).

Serves what mars uses, as documented for the real one:
  GET /api/v1/pods?fieldSelector=spec.nodeName%3D<node>     PodList of that node's pods
  GET /api/v1/namespaces                                     NamespaceList
  ...&watch=1&resourceVersion=<rv>&allowWatchBookmarks=true  chunked stream of watch events
      (one JSON object a line), BOOKMARK every --bookmark seconds; an rv older than the
      kept history gets an ERROR event with code 410 (or HTTP 410 with --gone-status).
Control (for the tests): POST /control/pod (a Pod JSON: added or modified), DELETE
/control/pod/<ns>/<name>, POST /control/namespace, POST /control/compact (forget history:
open watches get 410), POST /control/break (cut every watch without ending the chunks),
POST /control/slow?seconds=N (delay every API response), GET /control/stats (request
counts by kind, the current rv and sent_rv_<kind>: the newest rv written to a
watch). Prints its port on stdout when it listens.
"""
import argparse
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

lock = threading.Condition()
state = {"rv": 100, "oldest": 100, "pods": {}, "nss": {}, "events": [], "epoch": 0, "compactions": 0,
         "slow": 0.0, "stats": {"list_pods": 0, "list_namespaces": 0, "watch_pods": 0,
                                "watch_namespaces": 0, "other": 0}}
args = None


def bump(kind, etype, obj):
    state["rv"] += 1
    obj = json.loads(json.dumps(obj))
    obj.setdefault("metadata", {})["resourceVersion"] = str(state["rv"])
    state["events"].append((state["rv"], kind, {"type": etype, "object": obj}))
    lock.notify_all()
    return obj


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def send_json(self, code, obj):
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def body(self):
        n = int(self.headers.get("Content-Length", "0"))
        return json.loads(self.rfile.read(n) or b"{}")

    def do_GET(self):
        u = urlparse(self.path)
        q = parse_qs(u.query)
        if u.path == "/control/stats":
            with lock:
                return self.send_json(200, dict(state["stats"], rv=state["rv"]))
        kind = {"/api/v1/pods": "pods", "/api/v1/namespaces": "namespaces"}.get(u.path)
        if kind is None:
            with lock:
                state["stats"]["other"] += 1
            return self.send_json(404, {"kind": "Status", "code": 404})
        if args.token and self.headers.get("Authorization") != "Bearer " + open(args.token).read().strip():
            return self.send_json(401, {"kind": "Status", "code": 401})
        node = None
        if kind == "pods":
            sel = q.get("fieldSelector", [""])[0]
            if not sel.startswith("spec.nodeName="):
                return self.send_json(400, {"kind": "Status", "code": 400, "message": "node-scoped only"})
            node = sel.split("=", 1)[1]
        watch = q.get("watch", ["0"])[0] in ("1", "true")
        with lock:
            state["stats"][("watch_" if watch else "list_") + kind] += 1
            slow = state["slow"]
        if slow:
            time.sleep(slow)
        if not watch:
            with lock:
                src = state["pods"] if kind == "pods" else state["nss"]
                items = [o for o in src.values()
                         if node is None or o.get("spec", {}).get("nodeName") == node]
                state["stats"]["sent_rv_" + kind] = state["rv"]
                return self.send_json(200, {"kind": "PodList" if kind == "pods" else "NamespaceList",
                                            "apiVersion": "v1",
                                            "metadata": {"resourceVersion": str(state["rv"])},
                                            "items": items})
        self.watch(kind, node, int(q.get("resourceVersion", ["0"])[0] or 0),
                   int(q.get("timeoutSeconds", ["300"])[0]))

    def chunk(self, obj):
        data = (json.dumps(obj) + "\n").encode()
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def watch(self, kind, node, rv, timeout):
        with lock:
            gone = rv < state["oldest"]
            epoch = state["epoch"]
            compactions = state["compactions"]
        if gone and args.gone_status:
            return self.send_json(410, {"kind": "Status", "code": 410, "reason": "Expired"})
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        if gone:
            self.chunk({"type": "ERROR", "object": {"kind": "Status", "code": 410, "reason": "Expired"}})
            self.wfile.write(b"0\r\n\r\n")
            return
        end = time.time() + timeout
        last_bookmark = time.time()
        sent = rv
        try:
            while time.time() < end:
                out = []
                with lock:
                    if state["epoch"] != epoch:
                        if state["compactions"] != compactions:   # compacted: tell the client
                            self.chunk({"type": "ERROR", "object": {"kind": "Status", "code": 410}})
                            self.wfile.write(b"0\r\n\r\n")
                            return
                        self.close_connection = True  # broken: cut without the last chunk
                        return
                    for (erv, ekind, ev) in state["events"]:
                        if erv > sent and ekind == kind:
                            o = ev["object"]
                            if node is None or o.get("spec", {}).get("nodeName") == node:
                                out.append(ev)
                    if state["events"]:
                        sent = max(sent, state["events"][-1][0])
                    if not out:
                        lock.wait(0.2)
                for ev in out:
                    self.chunk(ev)
                if out:
                    with lock:  # what the client has been sent, for tests to wait on
                        key = "sent_rv_" + kind
                        state["stats"][key] = max(state["stats"].get(key, 0), sent)
                if time.time() - last_bookmark >= args.bookmark:
                    last_bookmark = time.time()
                    with lock:
                        brv = state["rv"]
                    self.chunk({"type": "BOOKMARK", "object": {"kind": "Pod" if kind == "pods" else "Namespace",
                                                               "metadata": {"resourceVersion": str(brv)}}})
            self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass

    def do_POST(self):
        u = urlparse(self.path)
        with lock:
            if u.path == "/control/pod":
                o = self.body()
                key = o["metadata"]["namespace"] + "/" + o["metadata"]["name"]
                et = "MODIFIED" if key in state["pods"] else "ADDED"
                state["pods"][key] = bump("pods", et, o)
            elif u.path == "/control/namespace":
                o = self.body()
                key = o["metadata"]["name"]
                et = "MODIFIED" if key in state["nss"] else "ADDED"
                state["nss"][key] = bump("namespaces", et, o)
            elif u.path == "/control/compact":
                state["events"] = []
                state["oldest"] = state["rv"]  # the current version stays valid
                state["epoch"] += 1
                state["compactions"] += 1
                lock.notify_all()
            elif u.path == "/control/break":
                state["epoch"] += 1
                lock.notify_all()
            elif u.path == "/control/slow":
                state["slow"] = float(parse_qs(u.query).get("seconds", ["0"])[0])
            else:
                return self.send_json(404, {})
        self.send_json(200, {"ok": True})

    def do_DELETE(self):
        u = urlparse(self.path)
        parts = u.path.split("/")
        if len(parts) == 5 and parts[2] == "pod":
            with lock:
                o = state["pods"].pop(parts[3] + "/" + parts[4], None)
                if o:
                    bump("pods", "DELETED", o)
            return self.send_json(200 if o else 404, {})
        self.send_json(404, {})


def main():
    global args
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--bookmark", type=float, default=1.0)
    ap.add_argument("--gone-status", action="store_true")
    ap.add_argument("--token", help="require this file's content as the bearer token")
    args = ap.parse_args()
    srv = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    srv.daemon_threads = True
    print(srv.server_address[1], flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
