#!/usr/bin/env python3
"""apm_socket.py - records per second and CPU per million records of the apm_socket source,
seed HTTP spans -> prometheus_exporter, on one worker.

Run:  python3 bench/apm_socket.py build/mars [N]
It starts mars (runtime.workers 1) in a temp dir, sends N (default 200000) seed entry spans
(50 distinct uris) on one connection, twice, waits until the exporter's
http_server_requests_seconds_count adds up to them, and prints wall rate and mars's
CPU-seconds (utime+stime of the whole process, exporter included) per million records.
"""
import os, re, socket, subprocess, sys, tempfile, time, urllib.request

mars, N = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 200000
d = tempfile.mkdtemp(prefix="mars-bench-apm.")
with socket.socket() as s:
    s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]
open(f"{d}/m.yaml", "w").write(f"""data_dir: {d}/data
api: {{address: "127.0.0.1:0"}}
runtime: {{workers: 1}}
sources: {{apm: {{type: apm_socket, path: {d}/apm.sock}}}}
sinks: {{prom: {{type: prometheus_exporter, inputs: [apm], address: "127.0.0.1:{port}"}}}}
""")
p = subprocess.Popen([mars, "-c", f"{d}/m.yaml"], stdout=subprocess.DEVNULL, stderr=open(f"{d}/err", "w"))
try:
    for _ in range(200):
        if os.path.exists(f"{d}/apm.sock"): break
        time.sleep(0.05)
    def cpu():
        f = open(f"/proc/{p.pid}/stat").read().rsplit(")", 1)[1].split()
        return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")
    def count():
        m = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics").read().decode()
        return sum(int(float(x)) for x in re.findall(r'^http_server_requests_seconds_count\{.*\} (\S+)$', m, re.M))
    rec = (b'1{"application_instance":1,"pid":1,"application_id":1,"version":1,"isEntry":true,"body":'
           b'{"url":"http://shop/orders/%d?x=1","startTime":1000,"endTime":1040,"peer":"","responseCode":200,'
           b'"responseSize":1500,"method":"GET","exception":"","component":""}}\n')
    buf = b"".join(rec % (i % 50) for i in range(N))
    total = 0
    for _ in range(2):
        c0, t0 = cpu(), time.time()
        s = socket.socket(socket.AF_UNIX); s.connect(f"{d}/apm.sock"); s.sendall(buf); s.close()
        total += N
        while count() < total: time.sleep(0.05)
        t, c = time.time() - t0, cpu() - c0
        print(f"{N} records ({len(buf) / 1e6:.1f} MB), 1 worker: {N / t:.0f} records/s, "
              f"{c / N * 1e6:.2f} CPU-s per million records")
finally:
    p.terminate(); p.wait()
