"""apollo_fake.py - a faithful fake of an Apollo config service and meta server, written
from shared/protocols.md §1 and §11 (the client HTTP API), for tests of the `apollo`
source and of mars's own configuration from Apollo.

Served (all GET):
  /services/config?appId=&ip=           meta server: [{"appName":"APOLLO-CONFIGSERVICE",
                                        "instanceId":..,"homepageUrl":..}] for each URL of
                                        --services (default: this fake itself)
  /configs/{app}/{cluster}/{ns}?releaseKey=&messages=&label=&ip=&dataCenter=
                                        200 {"appId","cluster","namespaceName",
                                        "configurations","releaseKey"[,"configSyncType",
                                        "configurationChanges"]}; 304 when releaseKey is the
                                        current one; 404 for an unknown app/cluster/namespace
  /configfiles/json/{app}/{cluster}/{ns}  the flat map
  /notifications/v2?appId=&cluster=&notifications=[{"namespaceName","notificationId"}]
                                        200 at once with every namespace whose id is newer
                                        than the client's (with "messages":{"details":
                                        {"app+cluster+ns":id}}); otherwise held up to
                                        `hold` seconds (default 60) and then 304, or 200 as
                                        soon as one of them is published
Namespaces named with a suffix (.json .yaml .yml .xml .txt) hold one key, `content`.

Access keys: an app with secrets requires `Authorization: Apollo {app}:{sig}` and
`Timestamp: {ms}`, sig = Base64(HMAC-SHA1(secret, ts + "\n" + raw path?query)), with
|now - ts| < tolerance (default 60 s); otherwise 401.

Incremental sync (when "incremental" is on): a /configs request whose releaseKey names an
older release of the namespace gets "configSyncType":"IncrementalSync" and the changes
from that release to the current one.

Control (POST, JSON body; not counted):
  /_fake/publish {"app","cluster"?,"ns","configs"?:{..},"content"?:".."}  new release
  /_fake/settings {"hold"?,"incremental"?,"tolerance"?,"services"?,"bad_incremental"?}
  /_fake/secret {"app","secrets":[..]}
  /_fake/script  fault rules of fakelib.py (status, delay = hang, close = reset)
  GET /_fake/stats   counters: requests, configs_200, configs_304, polls_200, polls_304,
                     unauthorized, meta, incremental; polls_held: polls waiting now
Initial state: --state FILE, {"apps":{"APP":{"secrets":[..],"clusters":{"default":
{"NS":{...map...} or "content text"}}}}}. --log FILE records each request as a JSON line
{"t","path","status","messages"}.

Standard library only (runs under Debian's /usr/bin/python3).
"""
import base64
import hashlib
import hmac
import json
import os
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fakelib  # noqa: E402

SUFFIXES = (".json", ".yaml", ".yml", ".xml", ".txt")


class Apollo(fakelib.Fake):
    def __init__(self, args):
        super().__init__("apollo_fake", args)
        self.cond = threading.Condition()
        self.seq = 100
        self.ns = {}  # (app, cluster, ns) -> {"id", "rk", "configs", "history": {rk: configs}}
        self.secrets = {}
        self.hold = args.hold
        self.tolerance = 60.0
        self.incremental = False
        self.bad_incremental = False
        self.services = args.services.split(",") if args.services else []
        self.reqlog = fakelib.Recorder(args.log)
        if args.state:
            with open(args.state, encoding="utf-8") as f:
                st = json.load(f)
            for app, a in st.get("apps", {}).items():
                if a.get("secrets"):
                    self.secrets[app] = list(a["secrets"])
                for cluster, nss in a.get("clusters", {}).items():
                    for ns, v in nss.items():
                        self.publish(app, cluster, ns, v)

    def publish(self, app, cluster, ns, value):
        if ns.endswith(SUFFIXES):
            configs = {"content": value if isinstance(value, str) else value.get("content", "")}
        else:
            configs = {str(k): str(v) for k, v in dict(value).items()}
        with self.cond:
            self.seq += 1
            rk = time.strftime("%Y%m%d%H%M%S") + "-%08x" % self.seq
            cur = self.ns.setdefault((app, cluster, ns), {"history": {}})
            cur.update(id=self.seq, rk=rk, configs=configs)
            cur["history"][rk] = configs
            self.cond.notify_all()
            return rk

    def lookup(self, app, cluster, ns):
        with self.cond:
            cur = self.ns.get((app, cluster, ns))
            return dict(cur) if cur else None


class Handler(fakelib.BaseHandler):
    def control(self, wire):
        f = self.fake
        if self.command == "POST" and self.path.startswith("/_fake/publish"):
            b = json.loads(wire)
            value = b["configs"] if "configs" in b else {"content": b.get("content", "")}
            rk = f.publish(b["app"], b.get("cluster", "default"), b["ns"], value)
            self.reply(200, {"releaseKey": rk})
        elif self.command == "POST" and self.path.startswith("/_fake/settings"):
            b = json.loads(wire)
            with f.cond:
                f.hold = float(b.get("hold", f.hold))
                f.tolerance = float(b.get("tolerance", f.tolerance))
                f.incremental = bool(b.get("incremental", f.incremental))
                f.bad_incremental = bool(b.get("bad_incremental", f.bad_incremental))
                if "services" in b:
                    f.services = list(b["services"])
            self.reply(200, {"ok": True})
        elif self.command == "POST" and self.path.startswith("/_fake/secret"):
            b = json.loads(wire)
            f.secrets[b["app"]] = list(b.get("secrets", []))
            self.reply(200, {"ok": True})
        else:
            super().control(wire)

    def log_req(self, status, **extra):
        rec = {"t": time.time(), "path": self.path, "status": status}
        rec.update(extra)
        self.fake.reqlog.write(rec)

    def authorized(self, app):
        secrets = self.fake.secrets.get(app)
        if not secrets:
            return True
        auth = self.headers.get("Authorization", "")
        ts = self.headers.get("Timestamp", "")
        prefix = "Apollo %s:" % app
        if not auth.startswith(prefix) or not ts.isdigit():
            return False
        if abs(time.time() * 1000 - int(ts)) >= self.fake.tolerance * 1000:
            return False
        msg = (ts + "\n" + self.path).encode()  # the raw path and query, as sent
        for s in secrets:
            sig = base64.b64encode(hmac.new(s.encode(), msg, hashlib.sha1).digest()).decode()
            if hmac.compare_digest(sig, auth[len(prefix):]):
                return True
        return False

    def handle_request(self, path, headers, wire):
        u = urllib.parse.urlsplit(path)
        q = urllib.parse.parse_qs(u.query)
        parts = [urllib.parse.unquote(p) for p in u.path.split("/") if p]
        arg = lambda k, d="": q.get(k, [d])[0]  # noqa: E731
        f = self.fake
        if parts[:2] == ["services", "config"]:
            f.stats.add("meta")
            port = self.server.server_address[1]
            urls = f.services or ["http://127.0.0.1:%d/" % port]
            self.log_req(200)
            self.reply(200, [{"appName": "APOLLO-CONFIGSERVICE", "instanceId": "fake:%d" % i,
                              "homepageUrl": x} for i, x in enumerate(urls)])
            return
        app = parts[1] if parts and parts[0] == "configs" and len(parts) == 4 else arg("appId")
        if parts[:1] == ["configfiles"] and len(parts) >= 4:
            app = parts[-3]
        if not app:
            self.log_req(400)
            self.reply(400, {"message": "appId is required"})
            return
        if not self.authorized(app):
            f.stats.add("unauthorized")
            self.log_req(401)
            self.reply(401, {"message": "Unauthorized"})
            return
        if parts and parts[0] == "configs" and len(parts) == 4:
            self.configs(parts[1], parts[2], parts[3], arg)
        elif parts[:2] == ["configfiles", "json"] and len(parts) == 5:
            cur = f.lookup(parts[2], parts[3], parts[4])
            self.log_req(200 if cur else 404)
            self.reply(200 if cur else 404, cur["configs"] if cur else {})
        elif parts == ["notifications", "v2"]:
            self.notifications(app, arg("cluster", "default"), arg("notifications", "[]"))
        else:
            self.log_req(404)
            self.reply(404, {"message": "not found"})

    def configs(self, app, cluster, ns, arg):
        f = self.fake
        cur = f.lookup(app, cluster, ns)
        messages = arg("messages")
        if messages:
            json.loads(messages)  # must be JSON; a 500 (exception) otherwise
        if not cur:
            self.log_req(404, messages=messages)
            self.reply(404, {"message": "not found"})
            return
        rk = arg("releaseKey")
        if rk == cur["rk"]:
            f.stats.add("configs_304")
            self.log_req(304, messages=messages)
            self.reply(304)
            return
        body = {"appId": app, "cluster": cluster, "namespaceName": ns, "releaseKey": cur["rk"]}
        old = cur["history"].get(rk) if rk else None
        if f.incremental and old is not None:
            new = cur["configs"]
            ch = []
            for k in new:
                if k not in old:
                    ch.append({"key": k, "newValue": new[k], "configurationChangeType": "ADDED"})
                elif old[k] != new[k]:
                    ch.append({"key": k, "oldValue": old[k], "newValue": new[k],
                               "configurationChangeType": "MODIFIED"})
            for k in old:
                if k not in new:
                    ch.append({"key": k, "oldValue": old[k], "configurationChangeType": "DELETED"})
            if f.bad_incremental:  # a change the client cannot apply: it must refetch in full
                ch.append({"key": "no-such-key-%d" % cur["id"], "newValue": "x",
                           "configurationChangeType": "MODIFIED"})
            body.update(configSyncType="IncrementalSync", configurationChanges=ch)
            f.stats.add("incremental")
        else:
            body.update(configurations=cur["configs"])
            if f.incremental:
                body["configSyncType"] = "FullSync"
        f.stats.add("configs_200")
        self.log_req(200, messages=messages, incremental=old is not None and f.incremental)
        self.reply(200, body)

    def notifications(self, app, cluster, raw):
        f = self.fake
        try:
            want = json.loads(raw)
        except ValueError:
            self.log_req(400)
            self.reply(400, {"message": "bad notifications"})
            return

        def newer():
            out = []
            for n in want:
                name = n.get("namespaceName", "")
                if name.endswith(".properties"):
                    name = name[: -len(".properties")]
                cur = f.ns.get((app, cluster, name))
                if cur and cur["id"] > int(n.get("notificationId", -1)):
                    key = "%s+%s+%s" % (app, cluster, name)
                    out.append({"namespaceName": n.get("namespaceName"), "notificationId": cur["id"],
                                "messages": {"details": {key: cur["id"]}}})
            return out

        deadline = time.time() + f.hold
        held = False
        with f.cond:
            out = newer()
            if not out:
                held = True
                f.stats.add("polls_held")  # polls waiting right now (a gauge)
            while not out and time.time() < deadline:
                f.cond.wait(deadline - time.time())
                out = newer()
        if held:
            f.stats.add("polls_held", -1)
        if out:
            f.stats.add("polls_200")
            self.log_req(200)
            self.reply(200, out)
        else:
            f.stats.add("polls_304")
            self.log_req(304)
            self.reply(304)


def main():
    ap = fakelib.common_args(__doc__.splitlines()[0])
    ap.add_argument("--state", help="initial apps and namespaces (JSON, see above)")
    ap.add_argument("--hold", type=float, default=60.0, help="long-poll hold in seconds")
    ap.add_argument("--services", help="comma-separated homepageUrls the meta server lists")
    ap.add_argument("--log", help="record requests here (JSON lines)")
    args = ap.parse_args()
    fakelib.serve(Apollo(args), Handler, args)


if __name__ == "__main__":
    main()
