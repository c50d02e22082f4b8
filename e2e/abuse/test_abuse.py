"""Abuse suite: hostile clients on raw sockets against real servers.

Each attack runs against build/wire_echo (WIRE_ECHO overrides the binary)
and the Python package's echo (py_echo.py); the attacks that reach the
packages' own code (fragments, stalled readers, the memory budget; a hung
handler, which wire_echo cannot have) also against the Node and Ruby packages' echo (node_echo.mjs,
rb_echo.rb). WIRE_ABUSE_SERVERS picks the servers. On 127.0.0.1 only,
bounded in count and time. Each one samples the server's RSS (/proc/PID/status) before,
at its peak and after, while a bystander client (the `websockets` package)
keeps echoing; the bystander's worst round trip must stay under
BYSTANDER_MS and memory under each attack's bound. Results are appended to
build/abuse-results.jsonl (the suite script prints them as a table).
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import websockets

ROOT = Path(__file__).resolve().parent.parent.parent
BUILD = Path(os.environ.get("WIRE_BUILD_DIR", ROOT / "build"))
ECHO = Path(os.environ.get("WIRE_ECHO", BUILD / "wire_echo"))
PY_ECHO = Path(__file__).resolve().parent / "py_echo.py"
NODE_ECHO = Path(__file__).resolve().parent / "node_echo.mjs"
RB_ECHO = Path(__file__).resolve().parent / "rb_echo.rb"
RESULTS = BUILD / "abuse-results.jsonl"
BYSTANDER_MS = 500.0
MIB = 1 << 20
ALL_SERVERS = os.environ.get("WIRE_ABUSE_SERVERS", "wire_echo,python,node,ruby").split(",")
# the attacks only the core can answer run against wire_echo and Python
SERVERS = [k for k in ALL_SERVERS if k in ("wire_echo", "python")]
PACKAGES = [k for k in ALL_SERVERS if k != "wire_echo"]

REQUEST = (
    "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
    "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    "Sec-WebSocket-Version: 13\r\n{extra}\r\n"
)


# ---- servers -------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A server process on a free port; `path` is its echo endpoint."""

    def __init__(self, kind: str, nofile: int | None = None, budget: int | None = None):
        self.kind = kind
        self.port = free_port()
        if kind == "wire_echo":
            if not ECHO.exists():
                pytest.fail(f"{ECHO} not built (run scripts/build.sh first)")
            cmd = [str(ECHO), "--port", str(self.port)]
            # Short deadlines keep the suite fast; a binary from before they
            # existed runs with its defaults (that is the "before" case).
            if b"--send-timeout" in subprocess.run([str(ECHO), "--x"], capture_output=True).stderr:
                cmd += ["--send-timeout", "1500", "--pong-timeout", "1000"]
            self.path = "/"
        elif kind == "node":
            cmd = ["node", str(NODE_ECHO), "--port", str(self.port)]
            self.path = "/echo"
        elif kind == "ruby":
            cmd = ["ruby", "-I", str(ROOT / "packages" / "ruby" / "lib"), str(RB_ECHO),
                   "--port", str(self.port)]
            self.path = "/echo"
        else:
            cmd = [sys.executable, str(PY_ECHO), "--port", str(self.port)]
            self.path = "/echo"
        if budget is not None:
            cmd += ["--max-buffered", str(budget)]

        def limit():
            if nofile is not None:
                resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

        self.proc = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=limit,
            cwd=str(PY_ECHO.parent),
        )
        line = self.proc.stdout.readline()
        if "listening on" not in line:
            self.proc.kill()
            pytest.fail(f"{kind} did not start: {line!r} {self.proc.stderr.read()}")

    def rss(self) -> int:
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        return 0

    def fds(self) -> int:
        return len(os.listdir(f"/proc/{self.proc.pid}/fd"))

    def holding(self, client_ports: set[int]) -> int:
        """How many of the connections from these client ports the server
        still holds a socket for (/proc/net/tcp* matched to its descriptors):
        exact, whatever other descriptors the runtime opens or closes."""
        inodes = set()
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            with open(table) as f:
                for line in f.readlines()[1:]:
                    cols = line.split()
                    local, remote, inode = cols[1], cols[2], cols[9]
                    if (int(local.rsplit(":", 1)[1], 16) == self.port
                            and int(remote.rsplit(":", 1)[1], 16) in client_ports):
                        inodes.add(inode)
        held = 0
        for fd in os.listdir(f"/proc/{self.proc.pid}/fd"):
            try:
                link = os.readlink(f"/proc/{self.proc.pid}/fd/{fd}")
            except OSError:
                continue  # closed meanwhile
            if link.startswith("socket:[") and link[8:-1] in inodes:
                held += 1
        return held

    def cpu(self) -> float:
        with open(f"/proc/{self.proc.pid}/stat") as f:
            parts = f.read().rsplit(")", 1)[1].split()
        return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)


@pytest.fixture(params=SERVERS)
def server_kind(request):
    return request.param


@pytest.fixture(params=ALL_SERVERS)
def any_kind(request):
    return request.param


@pytest.fixture(params=PACKAGES)
def package_kind(request):
    return request.param


# ---- measuring -------------------------------------------------------------


class Watch:
    """RSS sampled every 50 ms and a bystander echoing every 50 ms, both in a
    thread, for the duration of a `with` block."""

    def __init__(self, srv: Server):
        self.srv = srv
        self.before = srv.rss()
        self.peak = self.before
        self.worst_ms = 0.0
        self.echoes = 0
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._ready = threading.Event()

    def _sample(self):
        while not self._stop.is_set():
            try:
                self.peak = max(self.peak, self.srv.rss())
            except OSError:
                return
            time.sleep(0.05)

    async def _bystander(self):
        url = f"ws://127.0.0.1:{self.srv.port}{self.srv.path}"
        try:
            async with websockets.connect(url, open_timeout=5, ping_interval=None) as ws:
                self._ready.set()
                i = 0
                while not self._stop.is_set():
                    t0 = time.perf_counter()
                    await ws.send(f"bystander {i}")
                    reply = await asyncio.wait_for(ws.recv(), timeout=5)
                    assert reply == f"bystander {i}", reply
                    self.worst_ms = max(self.worst_ms, (time.perf_counter() - t0) * 1000)
                    self.echoes += 1
                    i += 1
                    await asyncio.sleep(0.05)
        except Exception as e:  # recorded; the test fails on it
            self.errors.append(repr(e))
            self._ready.set()

    def __enter__(self):
        self._threads = [
            threading.Thread(target=self._sample, daemon=True),
            threading.Thread(target=lambda: asyncio.run(self._bystander()), daemon=True),
        ]
        for t in self._threads:
            t.start()
        assert self._ready.wait(10), "bystander could not connect"
        return self

    def __exit__(self, *exc):
        self._stop.set()
        for t in self._threads:
            t.join(10)
        self.after = self.srv.rss()
        self.peak = max(self.peak, self.after)

    def record(self, attack: str, kind: str, **extra):
        row = {
            "attack": attack,
            "server": kind,
            "binary": str(ECHO) if kind == "wire_echo" else kind,
            "rss_before_mib": round(self.before / MIB, 1),
            "rss_peak_mib": round(self.peak / MIB, 1),
            "rss_after_mib": round(self.after / MIB, 1),
            "bystander_worst_ms": round(self.worst_ms, 1),
            "bystander_echoes": self.echoes,
            **extra,
        }
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        with open(RESULTS, "a") as f:
            f.write(json.dumps(row) + "\n")
        return row

    def check(self, peak_bound: int):
        assert not self.errors, f"bystander failed: {self.errors}"
        assert self.echoes > 0, "bystander never echoed"
        assert self.worst_ms < BYSTANDER_MS, f"bystander worst {self.worst_ms:.0f} ms"
        grown = self.peak - self.before
        assert grown < peak_bound, f"RSS grew {grown / MIB:.1f} MiB (bound {peak_bound / MIB:.0f})"


# ---- raw client --------------------------------------------------------------


def frame(opcode: int, payload: bytes = b"", fin: bool = True) -> bytes:
    head = bytes([(0x80 if fin else 0) | opcode])
    n = len(payload)
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 65536:
        head += bytes([0x80 | 126]) + struct.pack("!H", n)
    else:
        head += bytes([0x80 | 127]) + struct.pack("!Q", n)
    mask = b"\x11\x22\x33\x44"
    if payload:
        m = (mask * (n // 4 + 1))[:n]
        payload = (int.from_bytes(payload, "big") ^ int.from_bytes(m, "big")).to_bytes(n, "big")
    return head + mask + payload


def read_head(s: socket.socket, timeout: float = 5) -> bytes:
    s.settimeout(timeout)
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(4096)
        if not chunk:
            break
        buf += chunk
    return buf


def raw_open(srv: Server, rcvbuf: int | None = None, path: str | None = None) -> socket.socket:
    s = socket.socket()
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.connect(("127.0.0.1", srv.port))
    s.sendall(REQUEST.format(path=path or srv.path, extra="").encode())
    head = read_head(s)
    assert head.startswith(b"HTTP/1.1 101"), head[:80]
    return s


def closed_by_peer(s: socket.socket) -> bool:
    """True once the server closed s (EOF or reset), reading what is left."""
    s.settimeout(0.5)
    try:
        while True:
            chunk = s.recv(1 << 20)
            if not chunk:
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except (socket.timeout, BlockingIOError):
        return False


# ---- attacks -------------------------------------------------------------------


def test_fragment_amplification(any_kind):
    """Five connections each open a message of 100,000 one-byte fragments."""
    server_kind = any_kind
    srv = Server(server_kind)
    socks = []
    try:
        with Watch(srv) as w:
            burst = frame(0x2, b"x", fin=False) + frame(0x0, b"x", fin=False) * 99_999
            for _ in range(5):
                s = raw_open(srv)
                s.settimeout(5)
                try:
                    s.sendall(burst)
                except OSError:
                    pass  # refused mid-way: the fix
                socks.append(s)
            time.sleep(2)
        row = w.record("fragments 5x100k", server_kind)
        assert srv.alive()
        w.check(16 * MIB)
        print(row)
    finally:
        for s in socks:
            s.close()
        srv.stop()


def test_deflate_bombs(server_kind):
    """Twenty connections negotiate permessage-deflate, each sends 16 MiB of
    zeros compressed to ~16 KiB: inflating stops at max_message_size (1009)."""
    import zlib

    z = zlib.compressobj(9, zlib.DEFLATED, -15)
    bomb = (z.compress(bytes(16 << 20)) + z.flush(zlib.Z_SYNC_FLUSH))[:-4]
    head = bytes([0xC2, 0x80 | 126]) + struct.pack("!H", len(bomb))
    mask = b"\0\0\0\0"
    extra = "Sec-WebSocket-Extensions: permessage-deflate\r\n"
    srv = Server(server_kind)
    closed = 0
    try:
        with Watch(srv) as w:
            for _ in range(20):
                s = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
                s.sendall(REQUEST.format(path=srv.path, extra=extra).encode())
                reply = read_head(s)
                assert b"permessage-deflate" in reply, reply[:200]
                s.sendall(head + mask + bomb)
                data = reply.split(b"\r\n\r\n", 1)[1]
                s.settimeout(5)
                while len(data) < 4:
                    chunk = s.recv(64)
                    if not chunk:
                        break
                    data += chunk
                if data[:4] == bytes([0x88, 0x02, 0x03, 0xF1]):  # close 1009
                    closed += 1
                s.close()
        row = w.record("deflate bombs 20x16MiB", server_kind, closed_1009=closed)
        assert srv.alive()
        assert closed == 20
        w.check(16 * MIB)
        print(row)
    finally:
        srv.stop()


def test_stalled_readers_are_closed(any_kind):
    """Twenty clients send 6 MiB each to echo and never read."""
    server_kind = any_kind
    srv = Server(server_kind)
    socks = []
    try:
        with Watch(srv) as w:
            msg = frame(0x2, b"\0" * (512 * 1024))
            for _ in range(20):
                s = raw_open(srv, rcvbuf=4096)
                s.settimeout(1)
                try:
                    for _ in range(12):
                        s.sendall(msg)
                except OSError:
                    pass  # the server stopped reading: the attack's goal
                socks.append(s)
            ports = {s.getsockname()[1] for s in socks}
            peak_conns = srv.holding(ports)
            deadline = time.time() + 8
            while time.time() < deadline and srv.holding(ports) > 0:
                time.sleep(0.2)
            time.sleep(0.5)
        open_fds = srv.holding(ports)
        row = w.record("stalled readers 20x6MiB", server_kind, still_open=open_fds,
                       peak_conns=peak_conns)
        print(row)
        assert open_fds <= 0, f"{open_fds} stalled connections still open after 8 s"
        if server_kind in ("wire_echo", "python"):
            # Node's and Ruby's heaps keep the echoed strings' pages once
            # grown: all connections closed is what the core can promise there
            assert w.after - w.before < 16 * MIB, "memory not given back"
        w.check(512 * MIB)  # the peak is the backpressure limits; the bound is the drop
    finally:
        for s in socks:
            s.close()
        srv.stop()


def test_partial_frame_headers(server_kind):
    """A thousand open connections, then 8 bytes of a frame header on each:
    what those bytes add per connection (before the fix: a wslay context and
    its buffers, ~9 KiB)."""
    srv = Server(server_kind)
    socks = []
    try:
        with Watch(srv) as w:
            for _ in range(1000):
                socks.append(raw_open(srv))
            time.sleep(0.5)
            idle = srv.rss()
            for s in socks:
                s.sendall(frame(0x2, b"x" * 70000)[:8])  # 2 + 8-byte length: 8 of 14
            time.sleep(1)
            extra = (srv.rss() - idle) / 1000
        row = w.record("partial headers 1000x8B", server_kind,
                       idle_bytes_per_conn=round((idle - w.before) / 1000),
                       header_bytes_per_conn=round(extra))
        print(row)
        assert extra < 1024, f"8 header bytes cost {extra:.0f} bytes per connection"
        w.check(64 * MIB)
    finally:
        for s in socks:
            s.close()
        srv.stop()


def test_slowloris(server_kind):
    """Two hundred handshakes trickling a byte every 200 ms for 3 s."""
    srv = Server(server_kind)
    socks = []
    try:
        with Watch(srv) as w:
            for _ in range(200):
                s = socket.create_connection(("127.0.0.1", srv.port))
                s.sendall(b"GET / HTTP/1.1\r\n")
                socks.append(s)
            for _ in range(15):
                for s in socks:
                    try:
                        s.send(b"X")
                    except OSError:
                        pass
                time.sleep(0.2)
        row = w.record("slowloris 200", server_kind)
        print(row)
        w.check(16 * MIB)
    finally:
        for s in socks:
            s.close()
        srv.stop()


def test_ping_flood(server_kind):
    """One connection sends 20,000 pings of 125 bytes and reads the pongs."""
    srv = Server(server_kind)
    try:
        with Watch(srv) as w:
            s = raw_open(srv)
            got = [0]

            def drain():
                s.settimeout(10)
                try:
                    while got[0] < 20_000 * 127:
                        chunk = s.recv(1 << 16)
                        if not chunk:
                            return
                        got[0] += len(chunk)
                except OSError:
                    return

            t = threading.Thread(target=drain, daemon=True)
            t.start()
            s.sendall(frame(0x9, b"p" * 125) * 20_000)
            t.join(15)
            s.close()
        row = w.record("ping flood 20k", server_kind, pong_bytes=got[0])
        print(row)
        assert got[0] >= 20_000 * 127, f"pongs: {got[0]} bytes"
        w.check(16 * MIB)
    finally:
        srv.stop()


def test_handshake_abuse(server_kind):
    """A pipelined request, a body, and an 8 KiB head one byte per send."""
    srv = Server(server_kind)
    try:
        with Watch(srv) as w:
            answers = {}
            for name, extra, tail in [
                ("pipelined", "", REQUEST.format(path=srv.path, extra="")),
                ("body", "Content-Length: 5\r\n", "hello"),
            ]:
                s = socket.create_connection(("127.0.0.1", srv.port))
                s.sendall((REQUEST.format(path=srv.path, extra=extra) + tail).encode())
                answers[name] = read_head(s)[:12].decode(errors="replace")
                s.close()
            pad = "".join(f"X-Pad-{i}: {'a' * 80}\r\n" for i in range(85))
            head = REQUEST.format(path=srv.path, extra=pad).encode()
            s = socket.create_connection(("127.0.0.1", srv.port))
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            cpu0 = srv.cpu()
            for i in range(len(head)):
                s.send(head[i : i + 1])
                if i % 64 == 0:
                    time.sleep(0.001)
            answers["bytewise"] = read_head(s)[:12].decode(errors="replace")
            cpu_ms = (srv.cpu() - cpu0) * 1000
            s.close()
        row = w.record("handshake abuse", server_kind, head_bytes=len(head),
                       bytewise_cpu_ms=round(cpu_ms), **answers)
        print(row)
        assert answers["pipelined"] == "HTTP/1.1 400", answers
        assert answers["body"] == "HTTP/1.1 400", answers
        assert answers["bytewise"] == "HTTP/1.1 101", answers
        w.check(16 * MIB)
    finally:
        srv.stop()


def test_connection_flood_at_the_descriptor_limit(server_kind):
    """RLIMIT_NOFILE 256 and 400 connections: 503 past the limit, no spin, recovery after."""
    srv = Server(server_kind, nofile=256)
    socks = []
    try:
        with Watch(srv) as w:
            cpu0 = srv.cpu()
            for _ in range(400):
                try:
                    socks.append(socket.create_connection(("127.0.0.1", srv.port), timeout=2))
                except OSError:
                    break
            time.sleep(2)
            cpu_ms = (srv.cpu() - cpu0) * 1000
            got_503 = 0
            for s in socks:
                s.settimeout(0.01)
                try:
                    got_503 += s.recv(64).startswith(b"HTTP/1.1 503")
                except OSError:
                    pass
            for s in socks:
                s.close()
            socks = []
            time.sleep(0.5)
        s = raw_open(srv)  # recovered: a new client is served
        s.sendall(frame(0x1, b"after"))
        s.settimeout(5)
        reply = s.recv(64)
        s.close()
        row = w.record("connection flood 400 @ nofile 256", server_kind, flood_cpu_ms=round(cpu_ms),
                       got_503=got_503)
        print(row)
        assert got_503 > 0, "no client past the descriptor limit was told 503"
        assert reply[2:] == b"after", reply
        assert cpu_ms < 1500, f"accept loop spun: {cpu_ms:.0f} ms of CPU in 2 s"
        w.check(32 * MIB)
    finally:
        for s in socks:
            s.close()
        srv.stop()


def test_hung_handler(package_kind):
    """Twenty connections whose handler never returns: each sends a message,
    then 200 messages of 64 KiB (as much as the socket takes), then resets.
    The server must notice every reset although it stopped reading those
    connections, close them and cancel their handlers."""
    srv = Server(package_kind)
    socks = []
    try:
        with Watch(srv) as w:
            big = frame(0x1, b"x" * (64 * 1024))
            for _ in range(20):
                s = raw_open(srv, path="/hang")
                s.sendall(frame(0x1, b"first"))
                s.setblocking(False)
                for _ in range(200):
                    try:
                        s.send(big)
                    except BlockingIOError:
                        break  # no longer read: the attack's goal
                socks.append(s)
            time.sleep(0.5)
            ports = {s.getsockname()[1] for s in socks}
            held = srv.holding(ports)
            t0 = time.time()
            for s in socks:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                s.close()  # RST
            socks = []
            while time.time() < t0 + 5 and srv.holding(ports) > 0:
                time.sleep(0.05)
            notice_ms = (time.time() - t0) * 1000
            open_left = srv.holding(ports)
        row = w.record("hung handler 20x(200x64KiB)+RST", package_kind, held_conns=held,
                       still_open=max(open_left, 0), closed_within_ms=round(notice_ms))
        print(row)
        assert held >= 20, f"only {held} hung connections were open"
        assert open_left <= 0, f"{open_left} reset connections still open after 5 s"
        # the peak is what the hung handlers held (max_queued_messages of 64 KiB
        # each); the runtimes keep their freed heap, so "after" is not checked
        w.check(256 * MIB)
    finally:
        for s in socks:
            s.close()
        srv.stop()


def test_memory_budget(any_kind):
    """Thirty slow consumers that never read, each sending 6 MiB to echo, on
    a server with a 16 MiB memory budget: each stays under its own limits,
    together they are far over it. The heaviest are paused, then closed;
    RSS stays bounded and the bystander is served."""
    package_kind = any_kind
    budget = int(os.environ.get("WIRE_ABUSE_BUDGET", 16 * MIB))
    srv = Server(package_kind, budget=budget)
    socks = []
    try:
        with Watch(srv) as w:
            msg = frame(0x2, b"\0" * (512 * 1024))
            for _ in range(30):
                s = raw_open(srv, rcvbuf=4096)
                s.settimeout(0.3)
                try:
                    for _ in range(12):
                        s.sendall(msg)
                except OSError:
                    pass  # paused or closed: the budget at work
                socks.append(s)
            time.sleep(2)
            closed = sum(closed_by_peer(s) for s in socks)
        row = w.record("memory budget 16MiB, 30x6MiB", package_kind, closed_conns=closed)
        print(row)
        assert closed > 0, "no connection was closed over the budget"
        # without a budget: about +107 MiB (Python), +143 (Node), +177 (Ruby).
        # Node and Ruby also hold each echoed message as a string until their
        # GC runs, which the core's count cannot see: a wider bound.
        w.check((64 if package_kind in ("wire_echo", "python") else 128) * MIB)
    finally:
        for s in socks:
            s.close()
        srv.stop()
