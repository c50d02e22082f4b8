"""A small WebSocket client for tests: real sockets, an ephemeral port.

    async with app.test_client() as client:
        async with client.websocket("/chat/1") as ws:
            await ws.send_json({"text": "hi"})
            assert await ws.receive_json() == {...}
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import struct
from typing import Any

from . import _native
from ._types import to_plain

__all__ = ["TestClient", "TestWebSocket", "HandshakeRejected", "ConnectionClosedByServer"]

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class HandshakeRejected(Exception):
    """The server answered the upgrade with an HTTP status other than 101."""

    def __init__(self, status: int, body: bytes) -> None:
        super().__init__(f"handshake rejected with HTTP {status}")
        self.status = status
        self.body = body


class ConnectionClosedByServer(Exception):
    """The connection closed; `.code` and `.reason` are what the server sent."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"connection closed: {code} {reason}".strip())
        self.code = code
        self.reason = reason


class TestWebSocket:
    """One client connection (masking, fragmentation, ping/pong, close)."""

    __test__ = False  # not a pytest class

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, timeout: float,
                 subprotocol: str | None, headers: dict[str, str]) -> None:
        self._r = reader
        self._w = writer
        self.timeout = timeout
        self.subprotocol = subprotocol
        self.response_headers = headers
        self.close_code: int | None = None
        self.close_reason = ""

    @classmethod
    async def connect(cls, host: str, port: int, path: str, *, subprotocols: list[str] | None = None,
                      headers: dict[str, str] | None = None, timeout: float = 5.0) -> TestWebSocket:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [
            f"GET {path} HTTP/1.1",
            f"Host: {host}:{port}",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {key}",
            "Sec-WebSocket-Version: 13",
        ]
        if subprotocols:
            lines.append("Sec-WebSocket-Protocol: " + ", ".join(subprotocols))
        for k, v in (headers or {}).items():
            lines.append(f"{k}: {v}")
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
        except asyncio.IncompleteReadError as e:
            writer.close()
            raise HandshakeRejected(0, e.partial) from None
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        status = int(status_line.split()[1])
        resp = {}
        for line in header_lines:
            if ":" in line:
                k, v = line.split(":", 1)
                resp[k.strip().lower()] = v.strip()
        if status != 101:
            body = b""
            try:
                body = await asyncio.wait_for(reader.read(65536), 1.0)
            except Exception:
                pass
            writer.close()
            raise HandshakeRejected(status, body)
        expect = base64.b64encode(hashlib.sha1(key.encode() + _GUID).digest()).decode()
        if resp.get("sec-websocket-accept") != expect:
            writer.close()
            raise HandshakeRejected(status, b"bad Sec-WebSocket-Accept")
        return cls(reader, writer, timeout, resp.get("sec-websocket-protocol"), resp)

    # -- frames
    def _frame(self, opcode: int, payload: bytes, fin: bool = True) -> bytes:
        head = bytearray([(0x80 if fin else 0) | opcode])
        n = len(payload)
        if n < 126:
            head.append(0x80 | n)
        elif n < 65536:
            head.append(0x80 | 126)
            head += struct.pack("!H", n)
        else:
            head.append(0x80 | 127)
            head += struct.pack("!Q", n)
        mask = os.urandom(4)
        head += mask
        if n:
            # XOR with the mask through int arithmetic: fast enough for tests
            m = (mask * (n // 4 + 1))[:n]
            payload = (int.from_bytes(payload, "big") ^ int.from_bytes(m, "big")).to_bytes(n, "big")
        return bytes(head) + payload

    def send_frame(self, opcode: int, payload: bytes, fin: bool = True) -> None:
        """Send one raw frame (tests of fragmentation and protocol errors)."""
        self._w.write(self._frame(opcode, payload, fin))

    async def send_text(self, text: str) -> None:
        self._w.write(self._frame(0x1, text.encode("utf-8")))
        await self._w.drain()

    async def send_bytes(self, data: bytes) -> None:
        self._w.write(self._frame(0x2, bytes(data)))
        await self._w.drain()

    async def send_json(self, obj: Any) -> None:
        await self.send_text(_native.encode(obj, _native.CODEC_JSON, to_plain).decode())

    async def send_msgpack(self, obj: Any) -> None:
        await self.send_bytes(_native.encode(obj, _native.CODEC_MSGPACK, to_plain))

    async def send(self, data: str | bytes) -> None:
        await (self.send_text(data) if isinstance(data, str) else self.send_bytes(data))

    async def _read_frame(self) -> tuple[bool, int, bytes]:
        b0, b1 = await self._r.readexactly(2)
        n = b1 & 0x7F
        if n == 126:
            (n,) = struct.unpack("!H", await self._r.readexactly(2))
        elif n == 127:
            (n,) = struct.unpack("!Q", await self._r.readexactly(8))
        if b1 & 0x80:
            raise ConnectionError("server sent a masked frame")
        return bool(b0 & 0x80), b0 & 0x0F, await self._r.readexactly(n) if n else b""

    async def receive(self, timeout: float | None = None) -> str | bytes:
        """The next message: str (text) or bytes (binary). Raises
        ConnectionClosedByServer once the server closed."""
        return await asyncio.wait_for(self._receive(), timeout or self.timeout)

    async def _receive(self) -> str | bytes:
        if self.close_code is not None:
            raise ConnectionClosedByServer(self.close_code, self.close_reason)
        parts: list[bytes] = []
        kind = 0
        while True:
            try:
                fin, op, payload = await self._read_frame()
            except (asyncio.IncompleteReadError, ConnectionError):
                self.close_code = 1006
                raise ConnectionClosedByServer(1006, "") from None
            if op == 0x9:
                self._w.write(self._frame(0xA, payload))
                continue
            if op == 0xA:
                continue
            if op == 0x8:
                code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
                self.close_code = code
                self.close_reason = payload[2:].decode("utf-8", "replace")
                try:
                    self._w.write(self._frame(0x8, payload[:2]))
                    await self._w.drain()
                except Exception:
                    pass
                raise ConnectionClosedByServer(code, self.close_reason)
            if op in (0x1, 0x2):
                kind = op
            parts.append(payload)
            if fin:
                data = b"".join(parts)
                return data.decode("utf-8") if kind == 0x1 else data

    async def receive_text(self, timeout: float | None = None) -> str:
        data = await self.receive(timeout)
        assert isinstance(data, str), f"expected a text message, got {data!r}"
        return data

    async def receive_bytes(self, timeout: float | None = None) -> bytes:
        data = await self.receive(timeout)
        assert isinstance(data, bytes), f"expected a binary message, got {data!r}"
        return data

    async def receive_json(self, timeout: float | None = None) -> Any:
        return _native.decode(await self.receive_text(timeout), _native.CODEC_JSON)

    async def receive_msgpack(self, timeout: float | None = None) -> Any:
        return _native.decode(await self.receive_bytes(timeout), _native.CODEC_MSGPACK)

    async def wait_closed(self, timeout: float | None = None) -> int:
        """Read until the server closes; returns the close code."""
        try:
            while True:
                await self.receive(timeout)
        except ConnectionClosedByServer as e:
            return e.code

    async def close(self, code: int = 1000, reason: str = "") -> None:
        if self.close_code is None:
            try:
                self._w.write(self._frame(0x8, struct.pack("!H", code) + reason.encode()))
                await self._w.drain()
                await self.wait_closed(2.0)
            except (Exception, asyncio.TimeoutError):
                pass
        self._w.close()
        try:
            await self._w.wait_closed()
        except Exception:
            pass

    async def __aenter__(self) -> TestWebSocket:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()


class _Connect:
    def __init__(self, client: TestClient, path: str, kw: dict[str, Any]) -> None:
        self.client, self.path, self.kw = client, path, kw
        self.ws: TestWebSocket | None = None

    def __await__(self):  # type: ignore[no-untyped-def]
        return self._open().__await__()

    async def _open(self) -> TestWebSocket:
        s = self.client.server
        assert s is not None, "use `async with app.test_client() as client`"
        self.ws = await TestWebSocket.connect(s.host, s.port, self.path, **self.kw)
        return self.ws

    async def __aenter__(self) -> TestWebSocket:
        return await self._open()

    async def __aexit__(self, *exc: Any) -> None:
        if self.ws is not None:
            await self.ws.close()


class TestClient:
    """Starts the app on 127.0.0.1 and an ephemeral port for its `async with` block."""

    __test__ = False

    def __init__(self, app: Any) -> None:
        self.app = app
        self.server: Any = None
        self._cm: Any = None

    async def __aenter__(self) -> TestClient:
        self._cm = self.app.test_server()
        self.server = await self._cm.__aenter__()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self._cm.__aexit__(*exc)

    def websocket(self, path: str, *, subprotocols: list[str] | None = None,
                  headers: dict[str, str] | None = None, timeout: float = 5.0) -> _Connect:
        """Connect to `path`: use with `async with` or `await`."""
        return _Connect(self, path, {"subprotocols": subprotocols, "headers": headers, "timeout": timeout})
