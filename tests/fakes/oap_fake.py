"""oap_fake.py - a fake SkyWalking OAP for the skywalking sink's tests.

gRPC (Debian's python3-grpcio, /usr/bin/python3): ManagementService, LogReportService,
MeterReportService, TraceSegmentReportService (package skywalking.v3) and the v6 Register
and ServiceInstancePing services (no package). The message classes are generated at start
by protoc --python_out from mars's own proto/skywalking/*.proto, so the fake and mars read
the same field numbers. Every call is recorded as one JSON line in --calls:
    {"t": 1712.5, "method": "/skywalking.v3.LogReportService/collect", "code": "OK",
     "metadata": {"authentication": "..."}, "messages": [{...proto3 JSON, field names...}]}
A call refused by a fault or the token check is recorded with its code.

Optional HTTP JSON API (--http-port-file): POST /v3/logs, /v3/management/reportProperties,
/v3/management/keepAlive, recorded the same way with "method" = the path.

--token T: every call must carry metadata `authentication: T`, else UNAUTHENTICATED
(HTTP: 401). --faults FILE: a JSON list of rules, re-read when the file changes; a call
takes the first rule whose `method` (substring, default any) matches and whose `times`
(default 1, -1 forever) is not used up:
    {"code": "UNAVAILABLE"}       refused after reading the request (Trailers-Only)
    {"code": "INTERNAL", "trailers": true}
                                  answered with headers and a message first, the status
                                  only in the trailers
    {"hang": 3}                   answer 3 s late
    {"reset": true}               the process dies mid-call (the connection is reset);
                                  the test restarts it on the same --port
--v6-pending N: the first N v6 register calls of each service name and of each instance
UUID answer an empty mapping (the OAP registers asynchronously), default 1. v6 ids are
given in order of first registration: services 17, 18, ..., instances 42, 43, ...

Trace segments: /skywalking.v3.TraceSegmentReportService/collect (SegmentObject) and the
v6/7 /TraceSegmentReportService/collect (V6UpstreamSegment); a v6 message is recorded with
its packed segment decoded as "segmentObject".

--count-only: record nothing per call; count the LogData messages of OK LogReportService
calls and print "logs=N" at exit (the bench's receiver: parsing every call into JSON would
cost more than mars).

Prints "port=N" and writes N to --port-file once serving; SIGTERM exits 0.
"""
import argparse
import http.server
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent import futures

import grpc

HERE = os.path.dirname(os.path.abspath(__file__))
PROTO_DIR = os.path.join(HERE, "..", "..", "proto")


def build_stubs():
    out = tempfile.mkdtemp(prefix="oap_fake_pb")
    files = sorted(os.path.join("skywalking", f) for f in os.listdir(os.path.join(PROTO_DIR, "skywalking"))
                   if f.endswith(".proto"))
    subprocess.run(["protoc", "--python_out=" + out, "-I" + PROTO_DIR] + files, check=True)
    sys.path.insert(0, out)


build_stubs()
from google.protobuf import json_format  # noqa: E402
from skywalking import common_pb2, logging_pb2, management_pb2, meter_pb2, register_v6_pb2, tracing_pb2, tracing_v6_pb2  # noqa: E402,F401,E501


class Recorder:
    def __init__(self, path):
        self.f = open(path, "a", buffering=1) if path else None
        self.lock = threading.Lock()

    def write(self, obj):
        if self.f:
            with self.lock:
                self.f.write(json.dumps(obj) + "\n")


class Faults:
    def __init__(self, path):
        self.path, self.mtime, self.rules, self.lock = path, None, [], threading.Lock()

    def take(self, method):
        with self.lock:
            if self.path and os.path.exists(self.path):
                m = os.stat(self.path).st_mtime_ns
                if m != self.mtime:
                    self.mtime = m
                    with open(self.path) as f:
                        self.rules = json.load(f)
            for r in self.rules:
                if r.get("method", "") not in method:
                    continue
                t = r.get("times", 1)
                if t == 0:
                    continue
                if t > 0:
                    r["times"] = t - 1
                return r
        return None


def to_dict(m):
    return json_format.MessageToDict(m, preserving_proto_field_name=True, including_default_value_fields=False)


class Oap:
    def __init__(self, args):
        self.args = args
        self.rec = Recorder(args.calls)
        self.faults = Faults(args.faults)
        self.pending = {}  # service name or instance uuid -> empty answers still to give
        self.service_ids, self.instance_ids = {}, {}
        self.lock = threading.Lock()
        self.logs = 0

    def handle(self, method, msgs, context, reply):
        if self.args.count_only:
            if method.endswith("LogReportService/collect"):
                with self.lock:
                    self.logs += len(msgs)
            return reply
        md = {k: v for k, v in context.invocation_metadata()}
        entry = {"t": time.time(), "method": method, "metadata": md, "peer": context.peer(),
                 "messages": [to_dict(m) for m in msgs]}
        if method == "/TraceSegmentReportService/collect":
            for d, m in zip(entry["messages"], msgs):
                d["segmentObject"] = to_dict(tracing_v6_pb2.V6SegmentObject.FromString(m.segment))
        if self.args.token and md.get("authentication") != self.args.token:
            entry["code"] = "UNAUTHENTICATED"
            self.rec.write(entry)
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "wrong authentication token")
        rule = self.faults.take(method)
        if rule:
            if rule.get("reset"):
                entry["code"] = "RESET"
                self.rec.write(entry)
                os.kill(os.getpid(), signal.SIGKILL)
            if rule.get("hang"):
                time.sleep(rule["hang"])
            if rule.get("code"):
                code = getattr(grpc.StatusCode, rule["code"])
                entry["code"] = rule["code"]
                self.rec.write(entry)
                if rule.get("trailers"):
                    context.set_code(code)
                    context.set_details("injected " + rule["code"])
                    return reply
                context.abort(code, "injected " + rule["code"])
        entry["code"] = "OK"
        self.rec.write(entry)
        return reply

    # ---- v3 ----
    def unary(self, method, resp):
        def fn(req, context):
            return self.handle(method, [req], context, resp())
        return fn

    def stream(self, method, resp):
        def fn(it, context):
            msgs = list(it)
            return self.handle(method, msgs, context, resp())
        return fn

    # ---- v6 ----
    def answered(self, key):
        """False for the first --v6-pending calls naming key (callers hold the lock)."""
        left = self.pending.setdefault(key, self.args.v6_pending)
        self.pending[key] = left - 1
        return left <= 0

    def service_register(self, req, context):
        out = register_v6_pb2.V6ServiceRegisterMapping()
        with self.lock:
            for s in req.services:
                if self.answered("svc:" + s.serviceName):
                    sid = self.service_ids.setdefault(s.serviceName, 17 + len(self.service_ids))
                    out.services.add(key=s.serviceName, value=sid)
        return self.handle("/Register/doServiceRegister", [req], context, out)

    def instance_register(self, req, context):
        out = register_v6_pb2.V6ServiceInstanceRegisterMapping()
        with self.lock:
            for i in req.instances:
                if i.serviceId in self.service_ids.values() and self.answered("inst:%d:%s" % (i.serviceId, i.instanceUUID)):
                    key = (i.serviceId, i.instanceUUID)  # the OAP keys instances by both
                    iid = self.instance_ids.setdefault(key, 42 + len(self.instance_ids))
                    out.serviceInstances.add(key=i.instanceUUID, value=iid)
        return self.handle("/Register/doServiceInstanceRegister", [req], context, out)

    def handlers(self):
        C = common_pb2.Commands
        u, s = grpc.unary_unary_rpc_method_handler, grpc.stream_unary_rpc_method_handler
        M = "/skywalking.v3."
        return [
            grpc.method_handlers_generic_handler("skywalking.v3.ManagementService", {
                "reportInstanceProperties": u(self.unary(M + "ManagementService/reportInstanceProperties", C),
                                              request_deserializer=management_pb2.InstanceProperties.FromString,
                                              response_serializer=C.SerializeToString),
                "keepAlive": u(self.unary(M + "ManagementService/keepAlive", C),
                               request_deserializer=management_pb2.InstancePingPkg.FromString,
                               response_serializer=C.SerializeToString)}),
            grpc.method_handlers_generic_handler("skywalking.v3.LogReportService", {
                "collect": s(self.stream(M + "LogReportService/collect", C),
                             request_deserializer=logging_pb2.LogData.FromString,
                             response_serializer=C.SerializeToString)}),
            grpc.method_handlers_generic_handler("skywalking.v3.MeterReportService", {
                "collect": s(self.stream(M + "MeterReportService/collect", C),
                             request_deserializer=meter_pb2.MeterData.FromString,
                             response_serializer=C.SerializeToString),
                "collectBatch": s(self.stream(M + "MeterReportService/collectBatch", C),
                                  request_deserializer=meter_pb2.MeterDataCollection.FromString,
                                  response_serializer=C.SerializeToString)}),
            grpc.method_handlers_generic_handler("skywalking.v3.TraceSegmentReportService", {
                "collect": s(self.stream(M + "TraceSegmentReportService/collect", C),
                             request_deserializer=tracing_pb2.SegmentObject.FromString,
                             response_serializer=C.SerializeToString)}),
            grpc.method_handlers_generic_handler("TraceSegmentReportService", {
                "collect": s(self.stream("/TraceSegmentReportService/collect", register_v6_pb2.V6Commands),
                             request_deserializer=tracing_v6_pb2.V6UpstreamSegment.FromString,
                             response_serializer=register_v6_pb2.V6Commands.SerializeToString)}),
            grpc.method_handlers_generic_handler("Register", {
                "doServiceRegister": u(self.service_register,
                                       request_deserializer=register_v6_pb2.V6Services.FromString,
                                       response_serializer=register_v6_pb2.V6ServiceRegisterMapping.SerializeToString),
                "doServiceInstanceRegister": u(
                    self.instance_register,
                    request_deserializer=register_v6_pb2.V6ServiceInstances.FromString,
                    response_serializer=register_v6_pb2.V6ServiceInstanceRegisterMapping.SerializeToString)}),
            grpc.method_handlers_generic_handler("ServiceInstancePing", {
                "doPing": u(self.unary("/ServiceInstancePing/doPing", register_v6_pb2.V6Commands),
                            request_deserializer=register_v6_pb2.V6ServiceInstancePingPkg.FromString,
                            response_serializer=register_v6_pb2.V6Commands.SerializeToString)}),
        ]


def http_api(oap, args):
    """The OAP's JSON API on its own port: what transport: http talks to."""
    paths = {"/v3/logs", "/v3/management/reportProperties", "/v3/management/keepAlive"}

    class H(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *a):
            pass

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", "0") or "0"))
            entry = {"t": time.time(), "method": self.path,
                     "metadata": {k.lower(): v for k, v in self.headers.items()}}
            status = 200
            try:
                doc = json.loads(body)
                entry["messages"] = doc if isinstance(doc, list) else [doc]
            except ValueError:
                status, entry["messages"] = 400, []
            if self.path not in paths:
                status = 404
            if args.token and self.headers.get("authentication") != args.token:
                status = 401
            rule = oap.faults.take(self.path)
            if rule and rule.get("code"):
                status = 503
            entry["code"] = "OK" if status == 200 else "HTTP %d" % status
            oap.rec.write(entry)
            out = b"{}" if status == 200 else b'{"error":"refused"}'
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", args.http_port), H)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv.server_address[1]


def write_port(path, port):
    if path:
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            f.write(str(port))
        os.rename(tmp, path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    ap.add_argument("--calls", help="record every call here (JSON lines)")
    ap.add_argument("--token")
    ap.add_argument("--faults")
    ap.add_argument("--v6-pending", type=int, default=1)
    ap.add_argument("--tls-cert")
    ap.add_argument("--tls-key")
    ap.add_argument("--http-port", type=int, default=0)
    ap.add_argument("--http-port-file", help="serve the JSON API too; its port goes here")
    ap.add_argument("--count-only", action="store_true", help="count logs, record nothing")
    args = ap.parse_args()

    oap = Oap(args)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    for h in oap.handlers():
        server.add_generic_rpc_handlers((h,))
    addr = "127.0.0.1:%d" % args.port
    if args.tls_cert:
        with open(args.tls_key, "rb") as k, open(args.tls_cert, "rb") as c:
            creds = grpc.ssl_server_credentials([(k.read(), c.read())])
        port = server.add_secure_port(addr, creds)
    else:
        port = server.add_insecure_port(addr)
    if not port:
        sys.exit("cannot listen on " + addr)
    server.start()
    if args.http_port_file:
        write_port(args.http_port_file, http_api(oap, args))
    print("port=%d" % port, flush=True)
    write_port(args.port_file, port)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: done.set())
    signal.signal(signal.SIGINT, lambda *a: done.set())
    done.wait()
    server.stop(0)
    if args.count_only:
        print("logs=%d" % oap.logs, flush=True)


if __name__ == "__main__":
    main()
