#!/usr/bin/python3
"""A fake node for the kubernetes_logs tests: writes /var/log/pods the way kubelet and the
runtimes do, registers pods with the fake API server (k8s_api.py), and checks mars's
output against what was written (stdlib only).

  k8s_node.py pod API NS NAME UID NODE [CONTAINER IMAGE]       add/modify a pod in the API
  k8s_node.py delete API NS NAME                                delete it
  k8s_node.py write ROOT NS NAME UID CTR RESTART FMT N TAG [LONG] [EXPECT [META]]
        appends N lines (FMT cri|docker; a line of LONG bytes split into 16 KiB pieces,
        P..F for CRI, pieces without newline for Docker, as containerd and dockerd do) and
        appends the events mars must produce to EXPECT (META: json of kubernetes fields
        the API adds, or "-" for none)
  k8s_node.py rotate ROOT NS NAME UID CTR RESTART              0.log -> 0.log.<stamp>, older
        rotated files gzipped (.gz must never be read: its bytes are not log lines)
  k8s_node.py many API ROOT NODE COUNT LINES EXPECT             COUNT pods with LINES each
  k8s_node.py check OUT EXPECT [HOST]                           exact multiset comparison
        (every field but `file`; with HOST, every event's `host` must be HOST), prints
        what differs
"""
import gzip
import json
import os
import sys
import time
import urllib.request

SPLIT = 16 * 1024
seq = [int(time.time()) - 3600]


def api(url, method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url + path, data=data, method=method)
    urllib.request.urlopen(req, timeout=10).read()


def pod_obj(ns, name, uid, node, ctr="app", image="busybox:1.36"):
    return {"kind": "Pod", "metadata": {
        "name": name, "namespace": ns, "uid": uid,
        "labels": {"app": name.split("-")[0]}, "annotations": {"team": "obs"},
        "ownerReferences": [{"kind": "ReplicaSet", "name": name.split("-")[0] + "-5d78c9869d",
                             "controller": True}]},
        "spec": {"nodeName": node, "containers": [{"name": ctr, "image": image}]},
        "status": {"podIP": "10.1.0.%d" % (sum(map(ord, uid)) % 250 + 1)}}


def meta_of(pod, ctr):
    md = pod["metadata"]
    return {"node": pod["spec"]["nodeName"], "pod_ip": pod["status"]["podIP"],
            "container_image": pod["spec"]["containers"][0]["image"],
            "owner": {"kind": "Deployment", "name": md["name"].split("-")[0]},
            "labels": md["labels"], "annotations": md["annotations"],
            "namespace_labels": {"env": "test"}}


def stamp():
    seq[0] += 1
    t = time.gmtime(seq[0])
    return time.strftime("%Y-%m-%dT%H:%M:%S", t) + ".%09dZ" % (seq[0] % 7 * 1000), seq[0]


def path_of(root, ns, name, uid, ctr, restart):
    d = os.path.join(root, "%s_%s_%s" % (ns, name, uid), ctr)
    os.makedirs(d, exist_ok=True)
    return os.path.join(d, "%s.log" % restart)


def write(root, ns, name, uid, ctr, restart, fmt, n, tag, long=0, expect=None, meta="-"):
    long = int(long)
    p = path_of(root, ns, name, uid, ctr, restart)
    out, exp = [], []
    for i in range(int(n)):
        ts, _ = stamp()
        stream = "stderr" if i % 3 == 2 else "stdout"
        msg = "%s line %d \"q\" \\ é" % (tag, i)
        if long and i == 0:
            msg = (msg + " ") + "x" * (int(long) - len(msg) - 1)
        pieces = [msg[j:j + SPLIT] for j in range(0, len(msg), SPLIT)] or [""]
        for k, piece in enumerate(pieces):
            last = k == len(pieces) - 1
            if fmt == "cri":
                out.append("%s %s %s %s\n" % (ts, stream, "F" if last else "P", piece))
            else:
                out.append(json.dumps({"log": piece + ("\n" if last else ""), "stream": stream,
                                       "time": ts}) + "\n")
        k8s = {"namespace": ns, "pod": name, "pod_uid": uid, "container": ctr,
               "restart_count": int(restart)}
        if meta != "-":
            k8s.update(json.loads(meta))
        exp.append({"timestamp": ts, "message": msg, "kubernetes": k8s, "stream": stream})
    with open(p, "a") as f:
        f.write("".join(out))
    if expect:
        with open(expect, "a") as f:
            for e in exp:
                f.write(json.dumps(e, sort_keys=True) + "\n")


def rotate(root, ns, name, uid, ctr, restart):
    p = path_of(root, ns, name, uid, ctr, restart)
    d = os.path.dirname(p)
    for old in os.listdir(d):   # the next rotation gzips the older ones, via .tmp
        if ".log." in old and not old.endswith((".gz", ".tmp")):
            src = os.path.join(d, old)
            with open(src, "rb") as f, gzip.open(src + ".tmp", "wb") as g:
                g.write(f.read())
            os.rename(src + ".tmp", src + ".gz")
            os.unlink(src)
    _, t = stamp()
    os.rename(p, p + "." + time.strftime("%Y%m%d-%H%M%S", time.gmtime(t)))
    open(p, "a").close()


def many(url, root, node, count, lines, expect):
    for i in range(int(count)):
        name, uid = "bulk%d-x" % i, "uid-bulk-%d" % i
        pod = pod_obj("default", name, uid, node)
        api(url, "POST", "/control/pod", pod)
        write(root, "default", name, uid, "app", 0, "cri" if i % 2 else "docker", lines,
              "bulk%d" % i, 0, expect, json.dumps(meta_of(pod, "app")))


def check(out, expect, host=None):
    def load(path, host):
        got = []
        with open(path) as f:
            for line in f:
                if line.strip():
                    o = json.loads(line)
                    o.pop("file", None)
                    if host is not None and o.pop("host", None) != host:
                        o["host"] = "<not %s>" % host
                    got.append(json.dumps(o, sort_keys=True))
        return sorted(got)
    a, b = load(out, host), load(expect, None)
    if a == b:
        print("ok: %d events" % len(a))
        return 0
    sa, sb = set(a), set(b)
    print("got %d events, expected %d" % (len(a), len(b)))
    for x in sorted(sb - sa)[:5]:
        print("missing:", x)
    for x in sorted(sa - sb)[:5]:
        print("unexpected:", x)
    if sa == sb:
        print("duplicates in the output")
    return 1


def main():
    cmd, a = sys.argv[1], sys.argv[2:]
    if cmd == "pod":
        pod = pod_obj(*a[1:])
        api(a[0], "POST", "/control/pod", pod)
        print(json.dumps(meta_of(pod, "app")))
    elif cmd == "delete":
        api(a[0], "DELETE", "/control/pod/%s/%s" % (a[1], a[2]))
    elif cmd == "namespace":
        api(a[0], "POST", "/control/namespace", {"metadata": {"name": a[1], "labels": {"env": "test"}}})
    elif cmd == "write":
        write(*a)
    elif cmd == "rotate":
        rotate(*a)
    elif cmd == "many":
        many(*a)
    elif cmd == "check":
        sys.exit(check(*a))
    else:
        sys.exit("unknown command " + cmd)


if __name__ == "__main__":
    main()
