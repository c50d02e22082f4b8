#!/usr/bin/env python3
"""Measure the memory an idle WebSocket connection costs in build/wire_echo.

Starts wire_echo, opens N connections from this process (raw sockets, a
minimal valid upgrade request each, 101 checked), sends one message on each
so every connection has been through the framing path once, lets them idle,
then reads the server's VmRSS from /proc. The baseline is taken after the
first 100 connections, so code pages and buffers that are touched once (not
per connection) do not count; the growth from there, divided by the
connections opened since, is the cost of one idle connection.

With --tls the connections are wss:// (TLS 1.3, a throwaway P-256
certificate made with the `openssl` command): the figure then includes
OpenSSL's per-connection state.

With --compression every connection negotiates permessage-deflate (the
server's default shared mode) and its one message is a 2 KiB JSON text sent
compressed, echoed compressed (RSV1 checked): both zlib paths have run once,
and what an idle compressing connection keeps is what is measured.

Usage: python3 e2e/measure_idle_rss.py [--connections N] [--build DIR] [--tls] [--compression]
Needs N + a few file descriptors in both processes (RLIMIT_NOFILE is raised
to its hard limit here and inherited by the server).
"""

import argparse
import os
import resource
import selectors
import socket
import ssl
import subprocess
import sys
import json
import tempfile
import time
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

REQUEST = (
    b"GET /idle HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
    b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    b"Sec-WebSocket-Version: 13\r\n\r\n"
)
# a masked text frame "hi" (mask key 0)
FRAME = bytes([0x81, 0x82, 0, 0, 0, 0]) + b"hi"
OFFER = b"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n"


def compressed_frame():
    """A 2 KiB chat-like JSON text, deflated, as a masked RSV1 frame (mask key 0)."""
    text = json.dumps([{"user": f"u{i % 7}", "text": f"message {i} in the lobby"} for i in range(48)])
    text = text.encode()[:2048]
    z = zlib.compressobj(6, zlib.DEFLATED, -15)
    body = z.compress(text) + z.flush(zlib.Z_SYNC_FLUSH)
    assert body.endswith(b"\x00\x00\xff\xff")
    body = body[:-4]
    return bytes([0xC1, 0x80 | len(body)]) + bytes(4) + body if len(body) < 126 else (
        bytes([0xC1, 0xFE]) + len(body).to_bytes(2, "big") + bytes(4) + body)


def read_frame(sock):
    """One unmasked server frame: (first byte, payload)."""
    data = b""
    while len(data) < 2:
        data += sock.recv(4096)
    n, hl = data[1] & 0x7F, 2
    if n == 126:
        while len(data) < 4:
            data += sock.recv(4096)
        n, hl = int.from_bytes(data[2:4], "big"), 4
    while len(data) < hl + n:
        data += sock.recv(4096)
    return data[0], data[hl : hl + n]


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def read_until(sock, marker, limit=4096):
    data = b""
    while marker not in data:
        chunk = sock.recv(limit)
        if not chunk:
            raise RuntimeError("server closed")
        data += chunk
    return data


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--connections", type=int, default=10000)
    ap.add_argument("--build", default=str(ROOT / "build"))
    ap.add_argument("--tls", action="store_true", help="wss:// instead of ws://")
    ap.add_argument("--compression", action="store_true", help="negotiate permessage-deflate")
    args = ap.parse_args()
    request = REQUEST[:-2] + OFFER if args.compression else REQUEST
    frame = compressed_frame() if args.compression else FRAME
    n = args.connections

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = n + 100
    if hard != resource.RLIM_INFINITY and hard < need:
        sys.exit(f"RLIMIT_NOFILE hard limit {hard} < {need}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, need), hard))

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [os.path.join(args.build, "wire_echo"), "--port", str(port)]
    tmp = tempfile.TemporaryDirectory()
    ctx = None
    if args.tls:
        cert, key = os.path.join(tmp.name, "cert.pem"), os.path.join(tmp.name, "key.pem")
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-nodes", "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=localhost"],
            check=True, capture_output=True)
        cmd += ["--cert", cert, "--key", key]
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    server = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout.readline().startswith("listening on")
        warm = min(100, n // 10)
        socks = []
        base = None
        for i in range(n):
            if i == warm:
                time.sleep(0.2)
                base = rss_kib(server.pid)
            c = socket.create_connection(("127.0.0.1", port), timeout=10)
            if ctx is not None:
                c = ctx.wrap_socket(c, server_hostname="localhost")
            c.sendall(request)
            head = read_until(c, b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 101"), head
            c.sendall(frame)
            if args.compression:
                assert b"permessage-deflate" in head, head
                assert read_frame(c)[0] == 0xC1  # echoed compressed
            else:
                assert read_until(c, b"hi") == bytes([0x81, 0x02]) + b"hi"
            socks.append(c)
        time.sleep(1.0)
        after = rss_kib(server.pid)
        per = (after - base) * 1024 / (n - warm)
        print(f"connections: {n}{' (TLS ' + socks[0].version() + ')' if ctx else ''}"
              + (" (permessage-deflate)" if args.compression else ""))
        print(f"server RSS after {warm} connections: {base} KiB, with {n}: {after} KiB")
        print(f"bytes per idle connection: {per:.0f}")
        for c in socks:
            c.close()
    finally:
        server.terminate()
        server.wait(timeout=10)
        tmp.cleanup()


if __name__ == "__main__":
    main()
