#!/usr/bin/python3
"""A misbehaving mars sender for tests/integration/mars_transport.sh.

Usage: mars_badpeer.py PORT TOKEN CASE
Connects to a mars source on 127.0.0.1:PORT, sends the frames of CASE, reads until the
source closes the connection (10 s at most), and prints the frames it got back as
"TYPE SEQ [ERRCODE]" lines, then "closed". Frames are built by hand from
docs/mars-protocol.md (24-byte header, protobuf payloads), so this also checks the spec.
"""
import socket
import struct
import sys

HELLO, BATCH, ACK, ERROR, PING, PONG = 1, 2, 3, 4, 5, 6


def varint(n):
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def field_bytes(num, data):
    return varint(num << 3 | 2) + varint(len(data)) + data


def field_varint(num, v):
    return varint(num << 3) + varint(v)


def frame(ftype, seq, payload=b"", flags=0, raw_len=None):
    raw = len(payload) if raw_len is None else raw_len
    return b"MR" + bytes([1, ftype]) + struct.pack(">HHQII", flags, 0, seq, len(payload), raw) + payload


def hello(token):
    return frame(HELLO, 0, field_varint(1, 1) + field_bytes(2, token.encode()))


def batch_payload(message, fields=()):
    ev = field_bytes(1, message.encode())
    for key, kind, value in fields:
        ev += field_bytes(5, field_bytes(1, key.encode()) + field_varint(2, kind) + field_bytes(3, value.encode()))
    return field_bytes(1, ev)


CASES = {
    # not the protocol at all
    "garbage": lambda tok: b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    # a batch before HELLO
    "no_hello": lambda tok: frame(BATCH, 1, batch_payload("x")),
    # a payload that is not a protobuf Batch
    "bad_protobuf": lambda tok: hello(tok) + frame(BATCH, 1, b"\xff\xff\xff\xff"),
    # a frame announcing more than max_frame_bytes
    "too_large": lambda tok: hello(tok) + frame(BATCH, 1, b"", flags=1, raw_len=1 << 30),
    # lz4 flag on bytes that are not lz4
    "bad_lz4": lambda tok: hello(tok) + frame(BATCH, 1, b"\x00\x01\x02\x03\x04", flags=1, raw_len=100),
    # a NUMBER field that is not a number
    "bad_number": lambda tok: hello(tok) + frame(BATCH, 1, batch_payload("x", [("k", 1, "abc")])),
    # sequence numbers must start at 1 and go up by one
    "bad_seq": lambda tok: hello(tok) + frame(BATCH, 7, batch_payload("x")),
    # wrong token
    "bad_token": lambda tok: hello(tok + "-wrong"),
    # a good batch, acknowledged: the control case
    "good": lambda tok: hello(tok) + frame(BATCH, 1, batch_payload("badpeer good line")) + frame(PING, 42),
}


def main():
    port, token, case = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(CASES[case](token))
    buf = b""
    got = []
    try:
        while True:
            while len(buf) >= 24:
                ftype = buf[3]
                seq, length = struct.unpack(">Q", buf[8:16])[0], struct.unpack(">I", buf[16:20])[0]
                if len(buf) < 24 + length:
                    break
                payload = buf[24:24 + length]
                buf = buf[24 + length:]
                line = "%d %d" % (ftype, seq)
                if ftype == ERROR:
                    code = payload[1] if payload[:1] == b"\x08" else 0
                    line += " %d" % code
                got.append(line)
                print(line, flush=True)
                if case == "good" and "3 1" in got and "6 42" in got:
                    s.close()
                    print("done")
                    return
            data = s.recv(65536)
            if not data:
                break
            buf += data
    except (ConnectionResetError, socket.timeout) as e:
        print("error %s" % e.__class__.__name__)
    print("closed")


main()
