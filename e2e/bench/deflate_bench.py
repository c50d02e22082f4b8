#!/usr/bin/env python3
"""permessage-deflate benchmark: Wirecore's C core (build/wire_echo, the
default shared mode) against Node `ws` (perMessageDeflate: true) and Python
`websockets` (compression="deflate"), in one run.

For chat-like JSON messages of about 200 B, 2 KiB and 16 KiB it measures, per
echoed message: the bytes on the wire each way (frame headers included), and
the server's CPU time (utime + stime from /proc, the whole process tree). Then
the idle memory per connection with compression negotiated: N connections
each exchange one compressed 2 KiB message, then idle; the server's RSS
growth divided by N.

The client is written here (raw sockets, zlib, the standard library only):
it offers "permessage-deflate; client_max_window_bits", follows the answer
(context takeover on either side when the server allows it, the window the
server asks for), checks every echo byte for byte, and runs the connections
in ping-pong (one message in flight each). The server is pinned to CPU 0 and
this client to CPU 1 when the machine has two.

Usage: build/e2e-venv/bin/python e2e/bench/deflate_bench.py [--messages N]
       [--connections C] [--idle N] [--only wire_echo,ws,websockets] [--out FILE]
Needs build/wire_echo (scripts/build.sh), ws in e2e/bench/servers/node_modules
(cd e2e/bench/servers && npm ci) and websockets in the running Python.
"""
from __future__ import annotations

import argparse
import base64
import json
import os
import random
import selectors
import socket
import struct
import sys
import time
import zlib
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(HERE))
from run import ServerProcess, cpu_seconds, free_port, raise_nofile, rss_bytes  # noqa: E402

SIZES = [200, 2048, 16384]
OFFER = "permessage-deflate; client_max_window_bits"
WORDS = ("hello there how are you doing today the weather is nice we should meet for lunch "
         "tomorrow at noon near the station bring the documents and the laptop please thanks "
         "see you soon ok great deal sounds good meeting moved to friday afternoon").split()


def chat_message(rng: random.Random, size: int, i: int) -> bytes:
    """A chat-like JSON array of messages, about `size` bytes."""
    items, out = [], b"[]"
    while True:
        text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 14)))
        items.append({"type": "chat", "id": i * 1000 + len(items), "user": f"user{rng.randint(1, 40)}",
                      "room": "lobby", "ts": 1733300000 + rng.randint(0, 99999), "text": text})
        nxt = json.dumps(items, separators=(",", ":")).encode()
        if len(nxt) >= size:  # whichever is nearer the size
            return out if len(out) > 2 and size - len(out) < len(nxt) - size else nxt
        out = nxt


def servers(py: str) -> dict[str, list[str]]:
    return {
        "wire_echo": [str(ROOT / "build" / "wire_echo"), "--port", "{port}", "--max-message",
                      str(1 << 20)],
        "ws": ["node", str(HERE / "servers" / "node_ws.js"), "--port", "{port}", "--deflate"],
        "websockets": [py, str(HERE / "servers" / "py_websockets.py"), "--port", "{port}",
                       "--deflate"],
    }


class Client:
    """One WebSocket client connection with permessage-deflate."""

    def __init__(self, port: int):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                           f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                           f"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Extensions: {OFFER}\r\n\r\n")
                          .encode())
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise RuntimeError("closed during the handshake")
            buf += chunk
        head, self.buf = buf.split(b"\r\n\r\n", 1)
        if not head.startswith(b"HTTP/1.1 101"):
            raise RuntimeError(head.decode(errors="replace"))
        answer = ""
        for line in head.decode().split("\r\n")[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "sec-websocket-extensions":
                answer = value.strip()
        if not answer.startswith("permessage-deflate"):
            raise RuntimeError(f"permessage-deflate not negotiated: {answer!r}")
        self.answer = answer
        params = [p.strip() for p in answer.split(";")[1:]]
        cwb = 15
        for p in params:
            if p.startswith("client_max_window_bits="):
                cwb = int(p.split("=", 1)[1])
        self.client_takeover = "client_no_context_takeover" not in params
        self.server_takeover = "server_no_context_takeover" not in params
        self.cwb = max(cwb, 9)
        self.comp = zlib.compressobj(6, zlib.DEFLATED, -self.cwb)
        self.decomp = zlib.decompressobj(-15)
        self.sent = self.received = 0
        self.expect: bytes | None = None

    def frame(self, text: bytes) -> bytes:
        if not self.client_takeover:
            self.comp = zlib.compressobj(6, zlib.DEFLATED, -self.cwb)
        body = (self.comp.compress(text) + self.comp.flush(zlib.Z_SYNC_FLUSH))[:-4]
        n = len(body)
        head = (struct.pack("!BB", 0xC1, 0x80 | n) if n < 126 else
                struct.pack("!BBH", 0xC1, 0xFE, n) if n < 65536 else struct.pack("!BBQ", 0xC1, 0xFF, n))
        mask = os.urandom(4)
        x = int.from_bytes(body, "little") ^ int.from_bytes((mask * (n // 4 + 1))[:n], "little")
        return head + mask + (x.to_bytes(n, "little") if n else b"")

    def send(self, text: bytes) -> None:
        data = self.frame(text)
        self.sent += len(data)
        self.expect = text
        self.sock.sendall(data)

    def feed(self) -> bool:
        """Read what arrived; True once the whole echo is here (checked)."""
        chunk = self.sock.recv(1 << 20)
        if not chunk:
            raise RuntimeError("server closed")
        self.buf += chunk
        if len(self.buf) < 2:
            return False
        b0, b1 = self.buf[0], self.buf[1]
        n, hl = b1 & 0x7F, 2
        if n == 126:
            if len(self.buf) < 4:
                return False
            n, hl = struct.unpack("!H", self.buf[2:4])[0], 4
        elif n == 127:
            if len(self.buf) < 10:
                return False
            n, hl = struct.unpack("!Q", self.buf[2:10])[0], 10
        if len(self.buf) < hl + n:
            return False
        body, self.buf = self.buf[hl:hl + n], self.buf[hl + n:]
        self.received += hl + n
        if b0 & 0x40:
            if not self.server_takeover:
                self.decomp = zlib.decompressobj(-15)
            body = self.decomp.decompress(body + b"\x00\x00\xff\xff")
        if body != self.expect:
            raise RuntimeError("echo differs from the message")
        return True


def pingpong(port: int, pid: int, conns: int, per_conn: int, msgs: list[bytes]) -> dict:
    clients = [Client(port) for _ in range(conns)]
    sel = selectors.DefaultSelector()
    for c in clients:
        c.sock.setblocking(False)
        sel.register(c.sock, selectors.EVENT_READ, c)
    for c in clients:  # one warm-up message each
        c.sock.setblocking(True)
        c.send(msgs[0])
        c.sock.setblocking(False)
    done = 0
    while done < conns:
        for key, _ in sel.select(10):
            if key.data.feed():
                done += 1
    for c in clients:
        c.sent = c.received = 0
    u0, s0 = cpu_seconds(pid)
    t0 = time.monotonic()
    left = {id(c): per_conn for c in clients}
    k = 0
    for c in clients:
        c.sock.setblocking(True)
        c.send(msgs[k % len(msgs)])
        c.sock.setblocking(False)
        k += 1
    active = conns
    while active:
        events = sel.select(30)
        if not events:
            raise RuntimeError("no echo within 30 s")
        for key, _ in events:
            c = key.data
            if not c.feed():
                continue
            left[id(c)] -= 1
            if left[id(c)] == 0:
                active -= 1
                continue
            c.sock.setblocking(True)
            c.send(msgs[k % len(msgs)])
            c.sock.setblocking(False)
            k += 1
    elapsed = time.monotonic() - t0
    u1, s1 = cpu_seconds(pid)
    total = conns * per_conn
    out = {
        "messages": total,
        "raw_bytes": sum(len(m) for m in msgs) / len(msgs),
        "client_to_server_bytes": sum(c.sent for c in clients) / total,
        "server_to_client_bytes": sum(c.received for c in clients) / total,
        "server_cpu_us": (u1 - u0 + s1 - s0) * 1e6 / total,
        "server_user_us": (u1 - u0) * 1e6 / total,
        "msgs_per_s": total / elapsed,
        "answer": clients[0].answer,
    }
    for c in clients:
        sel.unregister(c.sock)
        c.sock.close()
    return out


def idle_memory(port: int, pid: int, n: int, msg: bytes) -> float:
    warm = min(50, n // 10)
    clients, base = [], 0
    for i in range(n):
        if i == warm:
            time.sleep(0.3)
            base = rss_bytes(pid)
        c = Client(port)
        c.send(msg)
        while not c.feed():
            pass
        clients.append(c)
    time.sleep(1.0)
    per = (rss_bytes(pid) - base) / (n - warm)
    for c in clients:
        c.sock.close()
    return per


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=4000, help="messages per size and server")
    ap.add_argument("--connections", type=int, default=20)
    ap.add_argument("--idle", type=int, default=1000, help="connections for the idle memory")
    ap.add_argument("--only", default="wire_echo,ws,websockets")
    ap.add_argument("--out", default=str(HERE / "results" / "deflate.md"))
    args = ap.parse_args()
    raise_nofile()
    two = os.cpu_count() and os.cpu_count() >= 2
    if two:
        os.sched_setaffinity(0, {1})
    rng = random.Random(7)
    # distinct messages, more of them than a 32 KiB window holds, so context
    # takeover earns only what real traffic would give it
    pools = {size: [chat_message(rng, size, i) for i in range(max(64, (256 << 10) // size))]
             for size in SIZES}
    logdir = ROOT / "build" / "bench-logs"
    logdir.mkdir(parents=True, exist_ok=True)
    results: dict[str, dict] = {}
    for name, argv in servers(sys.executable).items():
        if name not in args.only.split(","):
            continue
        row: dict = {}
        for scenario in [*SIZES, "idle"]:
            port = free_port()
            sp = ServerProcess([a.replace("{port}", str(port)) for a in argv], port,
                               "0" if two else None, logdir / f"deflate-{name}.log", dict(os.environ))
            why = sp.wait_ready(20)
            if why:
                sp.stop()
                print(f"{name}: {why}: {sp.log_tail()}", file=sys.stderr)
                return 1
            try:
                if scenario == "idle":
                    row["idle_bytes"] = idle_memory(port, sp.proc.pid, args.idle, pools[2048][0])
                else:
                    row[str(scenario)] = pingpong(port, sp.proc.pid, args.connections,
                                                  max(1, args.messages // args.connections),
                                                  pools[scenario])
            finally:
                sp.stop()
            print(f"{name} {scenario}: done", file=sys.stderr)
        results[name] = row
    write(Path(args.out), results, args)
    print(Path(args.out).read_text())
    return 0


def write(path: Path, results: dict, args: argparse.Namespace) -> None:
    names = list(results)
    lines = [
        "# permessage-deflate: Wirecore vs ws vs websockets",
        "",
        f"`{' '.join(['build/e2e-venv/bin/python', 'e2e/bench/deflate_bench.py'] + sys.argv[1:])}` "
        f"({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} CPUs; server on "
        "CPU 0, client on CPU 1). Chat-like JSON, "
        f"{args.connections} connections in ping-pong, {args.messages} messages per size; the "
        "client follows each server's answer (context takeover where allowed).",
        "",
        "Answers: " + "; ".join(f"{n}: `{results[n]['2048']['answer']}`" for n in names),
        "",
        "| size | server | wire bytes/msg server→client | client→server | server CPU µs/msg | vs ws | user µs/msg |",
        "|---|---|---|---|---|---|---|",
    ]
    for size in SIZES:
        ws = results.get("ws", {}).get(str(size), {}).get("server_cpu_us")
        for n in names:
            r = results[n][str(size)]
            ratio = f"{r['server_cpu_us'] / ws:.2f}x" if ws else "-"
            lines.append(f"| {int(r['raw_bytes'])} B | {n} | {r['server_to_client_bytes']:.0f} | "
                         f"{r['client_to_server_bytes']:.0f} | {r['server_cpu_us']:.1f} | {ratio} | "
                         f"{r['server_user_us']:.1f} |")
    lines += ["", f"Idle memory per connection with compression negotiated ({args.idle} connections, "
              "each after one compressed 2 KiB message; RSS growth ÷ connections):", "",
              "| server | bytes per idle connection |", "|---|---|"]
    for n in names:
        lines.append(f"| {n} | {results[n]['idle_bytes']:.0f} |")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    path.with_suffix(".json").write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    sys.exit(main())
