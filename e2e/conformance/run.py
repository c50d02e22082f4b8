#!/usr/bin/env python3
"""RFC 6455 conformance runner for WebSocket echo servers.

Reads the cases in e2e/conformance/cases/*.json (see README.md for the
format), starts each server given with --server NAME=CMD, plays every case on
a fresh TCP connection with frames built byte by byte here (so invalid ones
can be sent), and prints one table case x server and a final line
"N passed, M failed". Exits 1 when anything failed.

--tls plays the same cases over wss://: the runner makes a throwaway CA and a
certificate for 127.0.0.1 with the `openssl` command, starts each server with
{tls} replaced by "--cert FILE --key FILE", and wraps every connection in TLS
(verified against that CA). Without --tls, {tls} is replaced by nothing.

Standard library only: no WebSocket library is involved on the client side.
"""
from __future__ import annotations

import argparse
import atexit
import base64
import hashlib
import json
import os
import re
import select
import shlex
import signal
import socket
import ssl
import struct
import shutil
import subprocess
import sys
import tempfile
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
OPCODES = {"cont": 0, "text": 1, "binary": 2, "close": 8, "ping": 9, "pong": 10}
OPNAMES = {v: k for k, v in OPCODES.items()}
MAX_MESSAGE = 16 * 1024 * 1024  # the size every server under test is started with
DEFAULT_TIMEOUT = 5.0
APP_GROUP = "app"  # cases of application endpoints (/app/...), not of the protocol
TLS: ssl.SSLContext | None = None  # set by --tls: every connection is wrapped in it


class CaseFailure(Exception):
    """The server did something the case does not allow."""


# ---- payloads and frames ---------------------------------------------------


def payload_bytes(spec: Any) -> bytes:
    """A payload spec: a str (UTF-8), {"hex"}, {"fill", "len"} / {"fill_hex", "len"},
    or a list of specs concatenated."""
    if spec is None:
        return b""
    if isinstance(spec, str):
        return spec.encode("utf-8")
    if isinstance(spec, list):
        return b"".join(payload_bytes(s) for s in spec)
    if "hex" in spec:
        return bytes.fromhex(spec["hex"])
    if "deflate" in spec:  # permessage-deflate: the payload compressed, maybe one slice of it
        data = deflate_message(payload_bytes(spec["deflate"]))
        k, n = spec.get("part", [0, 1])
        return data[len(data) * k // n : len(data) * (k + 1) // n]
    if "fill" in spec or "fill_hex" in spec:
        unit = spec["fill"].encode() if "fill" in spec else bytes.fromhex(spec["fill_hex"])
        n = int(spec["len"])
        return (unit * (n // len(unit) + 1))[:n]
    raise ValueError(f"bad payload spec {spec!r}")


def deflate_message(data: bytes) -> bytes:
    """One message as RFC 7692 sends it: raw deflate, sync flush, the trailing
    00 00 ff ff removed (no context kept between messages)."""
    z = zlib.compressobj(6, zlib.DEFLATED, -15)
    out = z.compress(data) + z.flush(zlib.Z_SYNC_FLUSH)
    return out[:-4]


def mask_bytes(data: bytes, key: bytes) -> bytes:
    """XOR with the 4-byte key, fast enough for 16 MiB (one big-int XOR)."""
    if not data:
        return data
    n = len(data)
    keystream = (key * (n // 4 + 1))[:n]
    x = int.from_bytes(data, "little") ^ int.from_bytes(keystream, "little")
    return x.to_bytes(n, "little")


def close_payload(spec: dict) -> bytes:
    if "payload" in spec:
        return payload_bytes(spec["payload"])
    if spec.get("code") is None:
        return b""
    return struct.pack("!H", int(spec["code"])) + payload_bytes(spec.get("reason"))


def build_frame(spec: dict) -> bytes:
    """Frame bytes for a spec: op, fin (true), rsv (0), mask (true), payload;
    for op "close": code and reason, or a raw payload. "payload_sent": N
    sends only the first N payload bytes (the frame stays incomplete)."""
    op = spec.get("op", "text")
    opcode = OPCODES[op] if isinstance(op, str) else int(op)
    data = close_payload(spec) if opcode == 8 else payload_bytes(spec.get("payload"))
    fin = 0x80 if spec.get("fin", True) else 0
    b0 = fin | (int(spec.get("rsv", 0)) & 7) << 4 | opcode
    masked = spec.get("mask", True)
    n = len(data)
    mbit = 0x80 if masked else 0
    if n < 126:
        head = struct.pack("!BB", b0, mbit | n)
    elif n < 65536:
        head = struct.pack("!BBH", b0, mbit | 126, n)
    else:
        head = struct.pack("!BBQ", b0, mbit | 127, n)
    cut = int(spec.get("payload_sent", n))
    if not masked:
        return head + data[:cut]
    key = os.urandom(4)
    return head + key + mask_bytes(data, key)[:cut]


@dataclass
class Frame:
    fin: bool
    rsv: int
    opcode: int
    payload: bytes


def describe(op: int, payload: bytes) -> str:
    name = OPNAMES.get(op, str(op))
    if op == 8 and len(payload) >= 2:
        return f"close {struct.unpack('!H', payload[:2])[0]} {payload[2:52]!r}"
    if len(payload) > 40:
        return f"{name} ({len(payload)} bytes, {payload[:20]!r}...)"
    return f"{name} {payload!r}"


# ---- the connection ----------------------------------------------------------


class Conn:
    """A client connection: raw socket, buffered reader of server frames."""

    def __init__(self, port: int, timeout: float):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if TLS is not None:
            self.sock = TLS.wrap_socket(self.sock, server_hostname="127.0.0.1")
        self.buf = bytearray()
        self.timeout = timeout
        self.eof = False

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def send(self, data: bytes, chunk: int = 0) -> None:
        """Write data; with chunk > 0, in pieces of that size with short pauses
        (the server must reassemble frames split across reads)."""
        try:
            if chunk <= 0:
                self.sock.sendall(data)
                return
            for i in range(0, len(data), chunk):
                self.sock.sendall(data[i : i + chunk])
                time.sleep(0.001)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            # The server may already have failed the connection; what it sent
            # before that is still read and judged.
            pass

    def _fill(self, deadline: float) -> bool:
        """Read more bytes; False on EOF. Raises TimeoutError past deadline."""
        if self.eof:
            return False
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        self.sock.settimeout(left)
        try:
            chunk = self.sock.recv(1 << 20)
        except socket.timeout:
            raise TimeoutError from None
        except (ConnectionResetError, ssl.SSLError):
            chunk = b""  # over TLS: a TCP close without close_notify is an EOF too
        if not chunk:
            self.eof = True
            return False
        self.buf += chunk
        return True

    def read_exact(self, n: int, deadline: float) -> bytes | None:
        while len(self.buf) < n:
            if not self._fill(deadline):
                return None
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def read_frame(self, deadline: float) -> Frame | None:
        """The next server frame, None on EOF (TimeoutError past deadline)."""
        head = self.read_exact(2, deadline)
        if head is None:
            return None
        b0, b1 = head
        if b1 & 0x80:
            raise CaseFailure("server sent a masked frame")
        n = b1 & 0x7F
        if n == 126:
            ext = self.read_exact(2, deadline)
            n = struct.unpack("!H", ext)[0] if ext else 0
        elif n == 127:
            ext = self.read_exact(8, deadline)
            n = struct.unpack("!Q", ext)[0] if ext else 0
        payload = self.read_exact(n, deadline) if n else b""
        if payload is None:
            raise CaseFailure("connection closed in the middle of a frame")
        return Frame(bool(b0 & 0x80), (b0 >> 4) & 7, b0 & 0x0F, payload)

    def wait_eof(self, deadline: float) -> bool:
        """True once the server closes TCP (bytes before that are dropped)."""
        try:
            while self._fill(deadline):
                self.buf.clear()
            return True
        except TimeoutError:
            return False


def handshake(conn: Conn, path: str = "/", extra: str = "", early: bytes = b"") -> dict[str, str]:
    """Upgrade; `early` (frames) goes out in the same write as the request.
    Returns the 101's headers."""
    key = base64.b64encode(os.urandom(16)).decode()
    req = (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
        f"Sec-WebSocket-Version: 13\r\n{extra}\r\n"
    )
    conn.send(req.encode() + early)
    status, headers = read_response_head(conn, time.monotonic() + conn.timeout)
    if status != 101:
        raise CaseFailure(f"handshake answered {status}, not 101")
    want = base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()
    if headers.get("sec-websocket-accept") != want:
        raise CaseFailure(f"bad Sec-WebSocket-Accept {headers.get('sec-websocket-accept')!r}")
    if "websocket" not in headers.get("upgrade", "").lower():
        raise CaseFailure("101 without Upgrade: websocket")
    if "upgrade" not in headers.get("connection", "").lower():
        raise CaseFailure("101 without Connection: Upgrade")
    return headers


def read_response_head(conn: Conn, deadline: float) -> tuple[int, dict[str, str]]:
    while b"\r\n\r\n" not in conn.buf:
        if not conn._fill(deadline):
            raise CaseFailure("connection closed before a response head")
    end = conn.buf.index(b"\r\n\r\n")
    head = bytes(conn.buf[:end]).decode("latin-1")
    del conn.buf[: end + 4]
    lines = head.split("\r\n")
    m = re.match(r"HTTP/1\.1 (\d{3}) ", lines[0] + " ")
    if not m:
        raise CaseFailure(f"bad status line {lines[0]!r}")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        key = name.strip().lower()
        headers[key] = (headers[key] + ", " if key in headers else "") + value.strip()
    return int(m.group(1)), headers


# ---- playing a case ----------------------------------------------------------


@dataclass
class Reader:
    """Reassembles server messages; answers nothing by itself."""

    conn: Conn
    partial_op: int | None = None
    partial: bytearray = field(default_factory=bytearray)
    # permessage-deflate: None when not negotiated; else the server's
    # inflater, kept between messages unless it answered no context takeover
    deflate: bool = False
    takeover: bool = False
    inflater: Any = None
    partial_z: bool = False
    compressed: bool = False  # the last message came compressed

    def next_event(self, deadline: float) -> tuple[str, Any]:
        """("text"|"binary", bytes), ("ping"|"pong", bytes), ("close", (code, reason)),
        or ("eof", None)."""
        while True:
            f = self.conn.read_frame(deadline)
            if f is None:
                return ("eof", None)
            if f.rsv and not (f.rsv == 4 and self.deflate and f.opcode in (1, 2)):
                raise CaseFailure(f"server frame with RSV bits {f.rsv}")
            if f.opcode >= 8:
                if not f.fin or len(f.payload) > 125:
                    raise CaseFailure("server sent an invalid control frame")
                if f.opcode == 8:
                    return ("close", parse_close(f.payload))
                if f.opcode in (9, 10):
                    return (OPNAMES[f.opcode], f.payload)
                raise CaseFailure(f"server sent opcode {f.opcode}")
            if f.opcode == 0:
                if self.partial_op is None:
                    raise CaseFailure("server sent a continuation without a start")
                self.partial += f.payload
            elif f.opcode in (1, 2):
                if self.partial_op is not None:
                    raise CaseFailure("server started a message inside another")
                self.partial_op, self.partial = f.opcode, bytearray(f.payload)
                self.partial_z = f.rsv == 4
            else:
                raise CaseFailure(f"server sent opcode {f.opcode}")
            if f.fin:
                op, data = self.partial_op, bytes(self.partial)
                self.partial_op, self.partial = None, bytearray()
                self.compressed = self.partial_z
                if self.partial_z:
                    data = self.inflate(data)
                return (OPNAMES[op], data)

    def inflate(self, data: bytes) -> bytes:
        if self.inflater is None or not self.takeover:
            self.inflater = zlib.decompressobj(-15)
        try:
            return self.inflater.decompress(data + b"\x00\x00\xff\xff")
        except zlib.error as e:
            raise CaseFailure(f"server sent a compressed message that does not inflate: {e}") from None


def parse_close(payload: bytes) -> tuple[int | None, bytes]:
    if len(payload) == 0:
        return (None, b"")
    if len(payload) == 1:
        raise CaseFailure("server close frame with a 1-byte payload")
    return (struct.unpack("!H", payload[:2])[0], payload[2:])


class Player:
    """Plays one case's steps on one connection."""

    def __init__(self, conn: Conn, timeout: float, pid: int | None = None):
        self.conn = conn
        self.reader = Reader(conn)
        self.timeout = timeout
        self.sent_close = False
        self.pid = pid

    def event(self) -> tuple[str, Any]:
        """The next event, answering the server's pings on the way."""
        while True:
            kind, data = self.reader.next_event(time.monotonic() + self.timeout)
            if kind != "ping":
                return kind, data
            if not self.sent_close:
                self.conn.send(build_frame({"op": "pong", "payload": {"hex": data.hex()}}))

    def send(self, spec: Any, chunk: int = 0) -> None:
        specs = spec if isinstance(spec, list) else [spec]
        data = b"".join(build_frame(s) for s in specs)
        if any(s.get("op") == "close" for s in specs):
            self.sent_close = True
        self.conn.send(data, chunk)

    @staticmethod
    def wanted(spec: dict) -> tuple[str, bytes]:
        if "message" in spec:
            return spec["message"], payload_bytes(spec.get("payload"))
        if "pong" in spec:
            return "pong", payload_bytes(spec["pong"])
        raise ValueError(f"bad expect {spec!r}")

    def expect_any_order(self, specs: list) -> None:
        """The next len(specs) events are these, pongs and messages in any
        relative order (messages still in their own order)."""
        wants = [self.wanted(s) for s in specs]
        while wants:
            try:
                kind, data = self.event()
            except TimeoutError:
                raise CaseFailure(f"timed out waiting for {len(wants)} more events") from None
            if kind in ("close", "eof"):
                raise CaseFailure(f"expected {len(wants)} more events, got {kind}")
            firsts = [w for i, w in enumerate(wants)
                      if w[0] == "pong" or all(v[0] == "pong" for v in wants[:i])]
            if (kind, data) not in firsts:
                raise CaseFailure(f"unexpected {describe(OPCODES[kind], data)}")
            wants.remove((kind, data))

    def expect(self, spec: dict) -> None:
        want_kind, want = self.wanted(spec)
        try:
            kind, data = self.event()
        except TimeoutError:
            raise CaseFailure(f"timed out waiting for {want_kind}") from None
        if kind == "close":
            raise CaseFailure(f"expected {want_kind}, got close {data[0]}")
        if kind == "eof":
            raise CaseFailure(f"expected {want_kind}, connection closed")
        if "compressed" in spec and kind == want_kind and self.reader.compressed != spec["compressed"]:
            raise CaseFailure(f"expected a {'' if spec['compressed'] else 'un'}compressed message")
        if "json" in spec and kind == want_kind:
            json_subset(spec["json"], data)
            return
        if kind != want_kind or data != want:
            raise CaseFailure(
                f"expected {describe(OPCODES[want_kind], want)}, got "
                f"{describe(OPCODES[kind], data)}"
            )

    def expect_close(self, codes: list) -> None:
        """The server fails or closes the connection with one of codes (None: a
        close frame without a code); then it must close TCP."""
        try:
            kind, data = self.event()
            while kind == "pong" and self.sent_close:
                kind, data = self.event()
        except TimeoutError:
            raise CaseFailure(f"timed out waiting for close {codes}") from None
        if kind == "eof":
            raise CaseFailure(f"connection dropped without a close frame (wanted {codes})")
        if kind != "close":
            raise CaseFailure(f"expected close {codes}, got {describe(OPCODES[kind], data)}")
        code, reason = data
        if code not in codes:
            raise CaseFailure(f"expected close {codes}, got close {code} {reason[:60]!r}")
        if not self.sent_close:
            reply = {"op": "close", "code": code} if code is not None else {"op": "close"}
            self.send(reply)
        if not self.conn.wait_eof(time.monotonic() + self.timeout):
            raise CaseFailure("server did not close the TCP connection after the close")

    def step(self, step: dict) -> bool:
        """Play one step on this connection; False once it ended (expect_close)."""
        if "send" in step:
            self.send(step["send"], int(step.get("chunk", 0)))
        elif "send_raw" in step:
            self.conn.send(payload_bytes(step["send_raw"]), int(step.get("chunk", 0)))
        elif "sleep" in step:
            time.sleep(step["sleep"] / 1000)
        elif "expect" in step:
            self.expect(step["expect"])
        elif "expect_any_order" in step:
            self.expect_any_order(step["expect_any_order"])
        elif "expect_close" in step:
            self.expect_close(step["expect_close"])
            return False
        elif "flood" in step:
            self.flood(step["flood"])
        else:
            raise ValueError(f"bad step {step!r}")
        return True

    def finish(self) -> None:
        """No failure expected: close cleanly, the server must echo 1000."""
        self.send({"op": "close", "code": 1000})
        self.expect_close([1000])

    def flood(self, spec: dict) -> None:
        """`count` text messages, each a zero-padded `digits`-digit number then
        `fill` up to `len` bytes, written `batch` frames at a time. With
        `rss_growth_below_mib`, the server's RSS (sampled from /proc while
        writing and at the end) may grow by less than that."""
        count, digits, size = int(spec["count"]), int(spec.get("digits", 6)), int(spec["len"])
        fill, batch = spec.get("fill", "f"), int(spec.get("batch", 64))
        limit = spec.get("rss_growth_below_mib")
        base = peak = server_rss(self.pid) if limit is not None else 0
        filler = (fill * size)[: max(0, size - digits)].encode()
        for start in range(0, count, batch):
            frames = b"".join(
                build_frame({"op": "text", "payload": {"hex": (f"{i:0{digits}d}".encode() + filler).hex()}})
                for i in range(start, min(count, start + batch)))
            self.conn.sock.settimeout(self.timeout)
            self.conn.sock.sendall(frames)
            if limit is not None and start % (batch * 32) == 0:
                peak = max(peak, server_rss(self.pid))
        if limit is not None:
            peak = max(peak, server_rss(self.pid))
            if peak - base >= limit * 1024 * 1024:
                raise CaseFailure(f"server RSS grew by {(peak - base) >> 20} MiB (limit {limit} MiB)")


def server_rss(pid: int | None) -> int:
    """The server's resident set size in bytes, from /proc."""
    if pid is None:
        raise CaseFailure("no server process to measure")
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise CaseFailure(f"no VmRSS in /proc/{pid}/status")


def json_subset(want: Any, data: bytes) -> None:
    """The message is JSON text and holds every key of `want` with its value."""
    try:
        got = json.loads(data)
    except ValueError:
        raise CaseFailure(f"expected JSON, got {describe(1, data)}") from None
    if isinstance(want, dict) and isinstance(got, dict):
        wrong = {k: got.get(k) for k, v in want.items() if got.get(k) != v}
        if wrong:
            raise CaseFailure(f"expected JSON with {want}, got {got}")
    elif got != want:
        raise CaseFailure(f"expected JSON {want}, got {got}")


def run_handshake_case(port: int, spec: dict, timeout: float) -> None:
    conn = Conn(port, timeout)
    try:
        request = spec["request"].replace("{host}", f"127.0.0.1:{port}")
        conn.send(request.encode("latin-1"))
        status, headers = read_response_head(conn, time.monotonic() + timeout)
        if status != spec["status"]:
            raise CaseFailure(f"expected status {spec['status']}, got {status}")
        for name, want in spec.get("headers", {}).items():
            got = headers.get(name.lower())
            if got is None or got.lower() != want.lower():
                raise CaseFailure(f"expected header {name}: {want}, got {got!r}")
        if status != 101 and not conn.wait_eof(time.monotonic() + timeout):
            raise CaseFailure("server kept the connection open after refusing the handshake")
    finally:
        conn.close()


def run_case(port: int, case: dict, pid: int | None = None) -> None:
    """Plays a case. Steps run on connection "a" (opened at the start on the
    case's path) unless they say `"on": NAME`; `{"connect": NAME, "path": P}`
    opens another. Connections not ended by expect_close close cleanly."""
    timeout = float(case.get("timeout", DEFAULT_TIMEOUT))
    if "handshake" in case:
        run_handshake_case(port, case["handshake"], timeout)
        return
    players: dict[str, Player] = {}
    live: list[str] = []

    def connect(name: str, path: str, early: Any = None, ext: dict | None = None) -> None:
        conn = Conn(port, timeout)
        players[name] = Player(conn, timeout, pid)
        live.append(name)
        early = [] if early is None else early if isinstance(early, list) else [early]
        ext = ext or {}
        offer = ext.get("extensions")
        extra = f"Sec-WebSocket-Extensions: {offer}\r\n" if offer else ""
        headers = handshake(conn, path, extra, early=b"".join(build_frame(f) for f in early))
        answer = headers.get("sec-websocket-extensions")
        if "expect_extensions" in ext and answer != ext["expect_extensions"]:
            raise CaseFailure(f"expected Sec-WebSocket-Extensions {ext['expect_extensions']!r}, got {answer!r}")
        if answer is not None and answer.split(";")[0].strip() == "permessage-deflate":
            players[name].reader.deflate = True
            players[name].reader.takeover = "server_no_context_takeover" not in answer

    try:
        connect("a", case.get("path", "/"), case.get("with_handshake", []), case)
        for step in case["steps"]:
            if "connect" in step:
                connect(step["connect"], step.get("path", "/"))
                continue
            name = step.get("on", "a")
            if name not in live:
                raise ValueError(f"step on a connection that is not open: {step!r}")
            if not players[name].step(step):
                live.remove(name)
        for name in list(live):
            players[name].finish()
    finally:
        for p in players.values():
            p.conn.close()


# ---- loading cases -----------------------------------------------------------


def expand(case: dict) -> list[dict]:
    """A case with "each": {"var": [values...]} stands for one case per value,
    with "${var}" replaced in its text (whole-string numbers become numbers)."""
    if "each" not in case:
        return [case]
    (var, values), = case["each"].items()
    base = {k: v for k, v in case.items() if k != "each"}
    text = json.dumps(base)
    out = []
    for value in values:
        filled = text.replace(f'"${{{var}}}"', json.dumps(value)).replace(f"${{{var}}}", str(value))
        out.append(json.loads(filled))
    return out


def load_cases(directory: Path, pattern: str | None) -> list[dict]:
    cases = []
    for path in sorted(directory.glob("*.json")):
        doc = json.loads(path.read_text())
        for case in doc["cases"]:
            for c in expand(case):
                c["group"] = doc["group"]
                if pattern and not re.search(pattern, c["id"]):
                    continue
                cases.append(c)
    ids = [c["id"] for c in cases]
    dup = {i for i in ids if ids.count(i) > 1}
    if dup:
        raise SystemExit(f"duplicate case ids: {sorted(dup)}")
    return cases


# ---- servers -------------------------------------------------------------------


def make_tls(directory: Path) -> tuple[ssl.SSLContext, str]:
    """A throwaway CA and a certificate for 127.0.0.1 (made with the openssl
    command) in directory; the client context trusting that CA, and the
    "--cert FILE --key FILE" a server is started with."""
    def openssl(*argv: str) -> None:
        subprocess.run(["openssl", *argv], cwd=directory, check=True, capture_output=True)

    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
            "-subj", "/CN=conformance CA")
    openssl("req", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1")
    (directory / "server.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "server.ext")
    ctx = ssl.create_default_context(cafile=str(directory / "ca.pem"))
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx, f"--cert {directory / 'server.pem'} --key {directory / 'server.key'}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A server under test, started from a command line with {port} and
    {max_message} substituted; ready once "listening on" is printed or the
    port accepts connections."""

    def __init__(self, name: str, command: str, tls_args: str = ""):
        self.name, self.command, self.tls_args = name, command, tls_args
        self.proc: subprocess.Popen | None = None
        self.port = 0
        self.restarts = 0

    def start(self) -> None:
        self.port = free_port()
        cmd = self.command.replace("{port}", str(self.port))
        cmd = cmd.replace("{max_message}", str(MAX_MESSAGE)).replace("{tls}", self.tls_args)
        self.proc = subprocess.Popen(
            shlex.split(cmd), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )
        deadline = time.monotonic() + 20
        out = b""
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name}: exited with {self.proc.returncode} on start")
            ready, _, _ = select.select([self.proc.stdout], [], [], 0.1)
            if ready:
                out += os.read(self.proc.stdout.fileno(), 4096)
                if b"listening on" in out:
                    return
            if self._accepts():
                return
        self.stop()
        raise RuntimeError(f"{self.name}: not ready after 20 s")

    def _accepts(self) -> bool:
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
            return True
        except OSError:
            return False

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        if not self.proc:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=8)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()
        self.proc = None


def run_server(server: Server, cases: list[dict], verbose: bool) -> dict[str, str | None]:
    """Plays every case; returns id -> None (passed) or a failure message."""
    results: dict[str, str | None] = {}
    server.start()
    try:
        for case in cases:
            if not server.alive():
                server.restarts += 1
                results[case["id"]] = f"server had died (exit {server.proc.returncode})"
                server.stop()
                server.start()
                continue
            t0 = time.monotonic()
            try:
                run_case(server.port, case, server.proc.pid if server.proc else None)
                results[case["id"]] = None
            except CaseFailure as e:
                results[case["id"]] = str(e)
            except (OSError, TimeoutError) as e:
                results[case["id"]] = f"{type(e).__name__}: {e}"
            if verbose:
                state = "ok" if results[case["id"]] is None else "FAIL"
                print(f"  {server.name} {case['id']}: {state} ({time.monotonic() - t0:.2f}s)",
                      file=sys.stderr)
    finally:
        server.stop()
    return results


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--server", action="append", default=[], metavar="NAME=CMD",
                    help="a server command line with {port} (and optionally {max_message})")
    ap.add_argument("--echo-server", action="append", default=[], metavar="NAME=CMD",
                    help="a server that only echoes: it plays every case but the app group")
    ap.add_argument("--app-server", action="append", default=[], metavar="NAME=CMD",
                    help="a server that plays only the app group")
    ap.add_argument("--cases", default=str(HERE / "cases"), help="directory of case files")
    ap.add_argument("-k", dest="pattern", help="only cases whose id matches this regex")
    ap.add_argument("--list", action="store_true", help="list the cases and exit")
    ap.add_argument("--known-failures", default=str(HERE / "known-failures.json"),
                    help="JSON of known failures per server (see README.md)")
    ap.add_argument("--strict", action="store_true", help="count known failures as failures")
    ap.add_argument("--tls", action="store_true",
                    help="over wss://: servers get {tls} = --cert FILE --key FILE of a throwaway CA")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()

    cases = load_cases(Path(args.cases), args.pattern)
    if args.list:
        for c in cases:
            print(f"{c['id']:40} {c['title']}")
        return 0
    global TLS
    tls_args = ""
    if args.tls:
        tls_dir = Path(tempfile.mkdtemp(prefix="wire-conformance-tls-"))
        atexit.register(shutil.rmtree, tls_dir, True)
        TLS, tls_args = make_tls(tls_dir)
    servers = []
    plays = {}  # server name -> which cases it plays
    for flag, specs, wants in (("--server", args.server, lambda c: True),
                               ("--echo-server", args.echo_server, lambda c: c["group"] != APP_GROUP),
                               ("--app-server", args.app_server, lambda c: c["group"] == APP_GROUP)):
        for spec in specs:
            name, sep, cmd = spec.partition("=")
            if not sep or not name or not cmd:
                ap.error(f"{flag} wants NAME=CMD, got {spec!r}")
            if args.tls and "{tls}" not in cmd:
                ap.error(f"--tls: the command of {name} has no {{tls}}")
            servers.append(Server(name, cmd, tls_args))
            plays[name] = wants
    if not servers:
        ap.error("give at least one --server NAME=CMD")

    table: dict[str, dict[str, str | None]] = {}
    for server in servers:
        mine = [c for c in cases if plays[server.name](c)]
        t0 = time.monotonic()
        try:
            table[server.name] = run_server(server, mine, args.verbose) if mine else {}
        except RuntimeError as e:
            table[server.name] = {c["id"]: f"server did not start: {e}" for c in mine}
        print(f"{server.name}: {len(mine)} cases in {time.monotonic() - t0:.1f}s",
              file=sys.stderr)
    known = {} if args.strict else load_known(Path(args.known_failures))
    return report(cases, servers, table, known)


def load_known(path: Path) -> dict[str, dict[str, str]]:
    if not path.exists():
        return {}
    doc = json.loads(path.read_text())
    return {k: v for k, v in doc.items() if isinstance(v, dict)}


def report(cases: list[dict], servers: list[Server], table: dict, known: dict) -> int:
    """Prints the table and the failures; returns the exit status."""
    width = max(len(c["id"]) for c in cases)
    cols = [max(len(s.name), 5) for s in servers]
    print(f"{'case':{width}}  " + "  ".join(f"{s.name:{w}}" for s, w in zip(servers, cols)))
    print("-" * (width + sum(w + 2 for w in cols)))
    passed = failed = 0
    failures, xfails, xpasses = [], [], []
    for c in cases:
        cells = []
        for s, w in zip(servers, cols):
            if c["id"] not in table[s.name]:
                cells.append(f"{'-':{w}}")  # not a case this server plays
                continue
            why = table[s.name][c["id"]]
            reason = known.get(s.name, {}).get(c["id"]) or known.get("*", {}).get(c["id"])
            if why is None:
                passed += 1
                cell = "XPASS" if reason else "pass"
                if reason:
                    xpasses.append((s.name, c))
            elif reason:
                cell = "xfail"
                xfails.append((s.name, c, why, reason))
            else:
                failed += 1
                cell = "FAIL"
                failures.append((s.name, c, why))
            cells.append(f"{cell:{w}}")
        print(f"{c['id']:{width}}  " + "  ".join(cells))
    if xfails:
        print("\nKnown failures (known-failures.json; not counted):")
        for name, c, why, reason in xfails:
            print(f"  [{name}] {c['id']}: {why}\n      known: {reason}")
    if xpasses:
        print("\nKnown failures that now pass (remove them from known-failures.json):")
        for name, c in xpasses:
            print(f"  [{name}] {c['id']}")
    if failures:
        print("\nFailures:")
        for name, c, why in failures:
            print(f"  [{name}] {c['id']} ({c['title']}): {why}")
    over = " over TLS" if TLS is not None else ""
    print(f"\n{len(cases)} cases x {len(servers)} server(s){over}; {len(xfails)} known failures")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
