#!/usr/bin/python3
"""eureka_fake.py - a Eureka server for tests, written from ../shared/protocols.md §2 and §12
(Netflix/eureka's ApplicationResource, InstanceResource and the Java client's behaviour).

Usage: eureka_fake.py [--base /eureka] [--requests-log FILE] [--user U --password P]
                      [common options]   (common options and request rules: fakelib.py)

Routes under the base path (default /eureka; Netflix's native /eureka/v2 with --base):
  POST   apps/{APP}                  register {"instance": {...}}: 204; 400 with the exact
                                     plain-text reason of the real server, checked in its order
  PUT    apps/{APP}/{id}?status=&lastDirtyTimestamp=   heartbeat: 200; 404 when the lease is
                                     unknown (never registered, deleted, expired or forgotten)
                                     or when the client's lastDirtyTimestamp is newer than the
                                     registry copy's ("register again now")
  DELETE apps/{APP}/{id}             200; 404 when absent
  PUT    apps/{APP}/{id}/status?value=S  status override: 200; 404 unknown instance
  DELETE apps/{APP}/{id}/status      removes the override: 200; 404
  GET    apps, apps/{APP}, apps/{APP}/{id}, instances/{id}   JSON (Accept is not required)
App names are upper-cased, as the server does. A lease expires durationInSecs (from the
instance's leaseInfo, default 90) after its last renewal; an expired instance is gone from
GET and its heartbeat gets 404, so tests can use a 2 s lease. GET answers straight from the
registry (no 30 s response cache: tests would only wait longer).

With --user/--password every request needs that basic auth (401 otherwise).

Control (not recorded): POST /_fake/forget?app=APP&id=ID drops an instance (both optional:
all of an app, everything); POST /_fake/script (fakelib.py) for 5xx, delays, dropped
connections; GET /_fake/stats; GET /_fake/requests returns every request recorded so far
as a JSON list of {"t","method","path","query","status","body"} (body parsed when JSON);
--requests-log FILE gets the same, one line each.

Standard library only (runs under Debian's /usr/bin/python3).
"""
import base64
import json
import sys
import threading
import time
import urllib.parse

import fakelib

STATUSES = ("UP", "DOWN", "STARTING", "OUT_OF_SERVICE", "UNKNOWN")


class EurekaFake(fakelib.Fake):
    def __init__(self, args):
        super().__init__("eureka_fake", args)
        self.base = "/" + args.base.strip("/")
        self.reqlog = fakelib.Recorder(args.requests_log)
        self.requests = []
        self.lock = threading.Lock()
        self.apps = {}  # APP -> {id: record}; record: {"instance", "renewed", "override"}
        self.auth = None
        if args.user:
            tok = base64.b64encode(("%s:%s" % (args.user, args.password or "")).encode()).decode()
            self.auth = "Basic " + tok

    def expire(self, now):
        """Drops instances whose lease ran out (caller holds the lock)."""
        for app in list(self.apps):
            insts = self.apps[app]
            for iid in list(insts):
                rec = insts[iid]
                dur = rec["instance"].get("leaseInfo", {}).get("durationInSecs", 90)
                if now - rec["renewed"] > float(dur):
                    del insts[iid]
                    self.stats.add("expired")
            if not insts:
                del self.apps[app]

    def view(self, rec):
        """The instance as GET shows it: the registered JSON with the server's fields."""
        inst = json.loads(json.dumps(rec["instance"]))
        if rec["override"]:
            inst["overriddenStatus"] = rec["override"]
            inst["status"] = rec["override"]
        lease = inst.setdefault("leaseInfo", {})
        lease["registrationTimestamp"] = int(rec["registered"] * 1000)
        lease["lastRenewalTimestamp"] = int(rec["renewed"] * 1000)
        lease["evictionTimestamp"] = 0
        lease["serviceUpTimestamp"] = int(rec["registered"] * 1000)
        inst["actionType"] = rec["action"]
        return inst


def register_error(app, inst):
    """The first validation failure, as Eureka's ApplicationResource.addInstance words it."""
    if not isinstance(inst, dict):
        return "Missing instanceId"
    if not inst.get("instanceId"):
        return "Missing instanceId"
    if not inst.get("hostName"):
        return "Missing hostname"
    if not inst.get("ipAddr"):
        return "Missing ip address"
    if not inst.get("app"):
        return "Missing appName"
    if str(inst["app"]).upper() != app:
        return "Mismatched appName, expecting %s but was %s" % (app, inst["app"])
    dc = inst.get("dataCenterInfo")
    if not dc:
        return "Missing dataCenterInfo"
    if not isinstance(dc, dict) or not dc.get("name"):
        return "Missing dataCenterInfo Name"
    return None


class Handler(fakelib.BaseHandler):
    def record(self, status, wire):
        try:
            body = json.loads(wire) if wire else None
        except ValueError:
            body = wire.decode("utf-8", "replace")
        u = urllib.parse.urlsplit(self.path)
        rec = {"t": time.time(), "method": self.command, "path": u.path,
               "query": dict(urllib.parse.parse_qsl(u.query)), "status": status, "body": body,
               "accept": self.headers.get("Accept", ""),
               "content_type": self.headers.get("Content-Type", "")}
        with self.fake.lock:
            self.fake.requests.append(rec)
        self.fake.reqlog.write(rec)
        self.fake.stats.add("%s_%d" % (self.command.lower(), status))

    def answer(self, status, wire, body=b"", ctype="application/json"):
        self.record(status, wire)
        self.reply(status, body, ctype)

    def control(self, wire):
        u = urllib.parse.urlsplit(self.path)
        q = dict(urllib.parse.parse_qsl(u.query))
        if self.command == "POST" and u.path == "/_fake/forget":
            app, iid = q.get("app", "").upper(), q.get("id")
            n = 0
            with self.fake.lock:
                for a in list(self.fake.apps):
                    if app and a != app:
                        continue
                    for i in list(self.fake.apps[a]):
                        if iid is None or i == iid:
                            del self.fake.apps[a][i]
                            n += 1
                    if not self.fake.apps[a]:
                        del self.fake.apps[a]
            self.reply(200, {"forgotten": n})
        elif self.command == "GET" and u.path == "/_fake/requests":
            with self.fake.lock:
                self.reply(200, list(self.fake.requests))
        else:
            super().control(wire)

    def handle_request(self, path, headers, wire):
        f = self.fake
        if f.auth and headers.get("Authorization") != f.auth:
            self.answer(401, wire, b"Unauthorized", "text/plain")
            return
        u = urllib.parse.urlsplit(path)
        q = dict(urllib.parse.parse_qsl(u.query))
        if not u.path.startswith(f.base + "/"):
            self.answer(404, wire, b"not found", "text/plain")
            return
        parts = [urllib.parse.unquote(p) for p in u.path[len(f.base) + 1:].split("/") if p]
        now = time.time()
        with f.lock:
            f.expire(now)
            status, body, ctype = self.route(parts, q, wire, now)
        self.answer(status, wire, body, ctype)

    def route(self, parts, q, wire, now):
        m = self.command
        f = self.fake
        n = len(parts)
        if m == "GET" and parts == ["apps"]:
            return 200, self.applications(sorted(f.apps)), "application/json"
        if m == "GET" and n == 2 and parts[0] == "instances":
            for insts in f.apps.values():
                if parts[1] in insts:
                    return 200, {"instance": f.view(insts[parts[1]])}, "application/json"
            return 404, b"", "text/plain"
        if not parts or parts[0] != "apps" or n < 2:
            return 404, b"not found", "text/plain"
        app = parts[1].upper()
        insts = f.apps.get(app, {})
        if n == 2 and m == "GET":
            if not insts:
                return 404, b"", "text/plain"
            return 200, {"application": self.application(app)}, "application/json"
        if n == 2 and m == "POST":
            try:
                doc = json.loads(wire or b"null")
            except ValueError:
                return 400, b"body is not JSON", "text/plain"
            inst = doc.get("instance") if isinstance(doc, dict) else None
            err = register_error(app, inst)
            if err:
                return 400, err.encode(), "text/plain"
            inst["app"] = app  # the server keeps app names upper-cased
            old = insts.get(inst["instanceId"])
            rec = {"instance": inst, "renewed": now, "override": old["override"] if old else None,
                   "registered": old["registered"] if old else now,
                   "action": "MODIFIED" if old else "ADDED"}
            f.apps.setdefault(app, {})[inst["instanceId"]] = rec
            return 204, b"", "text/plain"
        if n < 3:
            return 405, b"", "text/plain"
        iid = parts[2]
        rec = insts.get(iid)
        if n == 3 and m == "GET":
            if not rec:
                return 404, b"", "text/plain"
            return 200, {"instance": f.view(rec)}, "application/json"
        if n == 3 and m == "PUT":
            if not rec:
                return 404, b"", "text/plain"
            dirty = q.get("lastDirtyTimestamp")
            mine = int(rec["instance"].get("lastDirtyTimestamp", "0") or 0)
            if dirty and dirty.isdigit() and int(dirty) > mine:
                return 404, b"", "text/plain"
            rec["renewed"] = now
            return 200, b"", "text/plain"
        if n == 3 and m == "DELETE":
            if not rec:
                return 404, b"", "text/plain"
            del insts[iid]
            if not insts:
                del f.apps[app]
            return 200, b"", "text/plain"
        if n == 4 and parts[3] == "status":
            if not rec:
                return 404, b"", "text/plain"
            if m == "PUT":
                value = q.get("value", "")
                if value not in STATUSES:
                    return 500, b"", "text/plain"
                rec["override"] = value
                return 200, b"", "text/plain"
            if m == "DELETE":
                rec["override"] = None
                return 200, b"", "text/plain"
        return 405, b"", "text/plain"

    def application(self, app):
        insts = self.fake.apps.get(app, {})
        return {"name": app, "instance": [self.fake.view(insts[i]) for i in sorted(insts)]}

    def applications(self, names):
        counts = {}
        for a in names:
            for rec in self.fake.apps[a].values():
                st = self.fake.view(rec)["status"]
                counts[st] = counts.get(st, 0) + 1
        code = "".join("%s_%d_" % (s, counts[s]) for s in sorted(counts))
        return {"applications": {"versions__delta": "1", "apps__hashcode": code,
                                 "application": [self.application(a) for a in names]}}

    do_DELETE = fakelib.BaseHandler.do_any


def main():
    ap = fakelib.common_args("fake Eureka server")
    ap.add_argument("--base", default="/eureka", help="base path (/eureka or /eureka/v2)")
    ap.add_argument("--requests-log", help="append every request here, one JSON line each")
    ap.add_argument("--user", help="require basic auth with this user")
    ap.add_argument("--password", help="and this password")
    args = ap.parse_args()
    fakelib.serve(EurekaFake(args), Handler, args)


if __name__ == "__main__":
    sys.exit(main())
