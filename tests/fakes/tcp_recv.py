#!/usr/bin/python3
"""tcp_recv.py - a TCP (or TLS) line receiver for the tcp sink tests; stdlib only.

Records exactly what it received: every complete line of every connection is appended to
--out in arrival order (whole lines, so lines of two connections never mix); bytes left
after the last newline when a connection ends (a torn line) go to --out.torn instead.
Status goes to stderr, one line per event ("conn 1 open", "conn 1 closed: ...").

Faults, for the tests:
  --listen-when FILE   bind at once (so the port is known) but listen only once FILE exists:
                       until then connects are refused, like a peer that starts late
  --close-after N      on each of the first --faults connections, once N bytes arrived,
                       close gracefully: shutdown(SHUT_WR) so the sender sees EOF, keep
                       reading until the sender closes (nothing in flight is lost), close
  --reset-after N      like --close-after, but reset the connection at once (SO_LINGER 0):
                       what sits unread in the socket buffers is lost, as when a peer dies
  --rate BYTES         read at most BYTES per second (a slow peer)
  --tls CERT KEY       TLS server with that certificate chain and key
  --client-ca FILE     with --tls: require a client certificate signed by a CA in FILE

Usage: tcp_recv.py --port-file F --out F [options]; runs until killed (SIGTERM/SIGKILL).
"""
import argparse
import os
import signal
import socket
import ssl
import sys
import threading
import time

LOCK = threading.Lock()
COUNT = {"conns": 0, "faults": 0}


def log(msg):
    sys.stderr.write("tcp_recv: %s\n" % msg)
    sys.stderr.flush()


def record(fd, data):
    with LOCK:
        while data:
            n = os.write(fd, data)
            data = data[n:]


def serve(conn, n, args, out_fd, torn_fd):
    fault = None
    with LOCK:
        if args.faults > COUNT["faults"] and (args.close_after or args.reset_after):
            COUNT["faults"] += 1
            fault = "close" if args.close_after else "reset"
    limit = args.close_after or args.reset_after
    carry = b""
    total = 0
    started = time.monotonic()
    why = "peer closed"
    try:
        if args.tls:
            conn = args.tls_ctx.wrap_socket(conn, server_side=True)
            peer = conn.getpeercert()
            if peer:
                log("conn %d client certificate %s" % (n, dict(x[0] for x in peer["subject"])))
        while True:
            want = 65536
            if args.rate:
                # stay under rate bytes/s since the connection started
                allowed = int((time.monotonic() - started) * args.rate) - total
                if allowed <= 0:
                    time.sleep(0.01)
                    continue
                want = min(want, allowed)
            data = conn.recv(want)
            if not data:
                break
            total += len(data)
            buf = carry + data
            cut = buf.rfind(b"\n") + 1
            if cut:
                record(out_fd, buf[:cut])
            carry = buf[cut:]
            if fault and total >= limit:
                if fault == "reset":
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                    why = "reset by us after %d bytes" % total
                    break
                conn.shutdown(socket.SHUT_WR)
                fault = None
                why = "closed by us after %d bytes" % total
    except (ssl.SSLError, OSError) as e:
        why = "error: %s" % e
    if carry:
        record(torn_fd, carry)
    try:
        conn.close()
    except OSError:
        pass
    log("conn %d closed: %s (%d bytes, %d torn)" % (n, why, total, len(carry)))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port-file", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--listen-when")
    p.add_argument("--close-after", type=int, default=0)
    p.add_argument("--reset-after", type=int, default=0)
    p.add_argument("--faults", type=int, default=1)
    p.add_argument("--rate", type=int, default=0)
    p.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
    p.add_argument("--client-ca")
    p.add_argument("--port", type=int, default=0)
    args = p.parse_args()
    signal.signal(signal.SIGTERM, lambda *a: os._exit(0))

    if args.tls:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.tls[0], args.tls[1])
        if args.client_ca:
            ctx.verify_mode = ssl.CERT_REQUIRED
            ctx.load_verify_locations(args.client_ca)
        args.tls_ctx = ctx
    out_fd = os.open(args.out, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    torn_fd = os.open(args.out + ".torn", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", args.port))
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % ls.getsockname()[1])
    os.rename(tmp, args.port_file)
    if args.listen_when:
        while not os.path.exists(args.listen_when):
            time.sleep(0.02)
    ls.listen(16)
    log("listening on 127.0.0.1:%d%s" % (ls.getsockname()[1], " (tls)" if args.tls else ""))
    while True:
        conn, addr = ls.accept()
        COUNT["conns"] += 1
        n = COUNT["conns"]
        log("conn %d open from %s:%d" % (n, addr[0], addr[1]))
        threading.Thread(target=serve, args=(conn, n, args, out_fd, torn_fd), daemon=True).start()


if __name__ == "__main__":
    main()
