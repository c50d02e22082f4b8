"""A handler that never returns is cancelled when its connection ends: the
client floods it, then resets the connection or closes it (the core stops
reading a paused connection, yet notices its peer leave), against a real
server on 127.0.0.1 with raw sockets and the `websockets` client. Also the
message_timeout and max_buffered_bytes options."""

from __future__ import annotations

import asyncio
import socket
import struct

import pytest
import websockets

from wirecore import App
from wirecore.errors import ConfigError

UPGRADE = (
    b"GET /hang HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)


def frame(payload: bytes, opcode: int = 0x1, fin: bool = True) -> bytes:
    """A masked client frame (mask of zeros keeps the payload as is)."""
    head = bytes([(0x80 if fin else 0) | opcode])
    n = len(payload)
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 65536:
        head += bytes([0x80 | 126]) + struct.pack(">H", n)
    else:
        head += bytes([0x80 | 127]) + struct.pack(">Q", n)
    return head + b"\0\0\0\0" + payload


def hung_app(**options: object) -> tuple[App, list[str], asyncio.Event]:
    app = App()
    events: list[str] = []
    started = asyncio.Event()

    @app.websocket("/hang", **options)
    async def hang(message: str) -> str:
        started.set()
        try:
            await asyncio.Event().wait()  # never set: a hung handler
        except asyncio.CancelledError:
            events.append("cancelled")
            raise
        return message

    return app, events, started


async def raw_client(port: int) -> socket.socket:
    loop = asyncio.get_running_loop()
    raw = socket.socket()
    raw.setblocking(False)
    await loop.sock_connect(raw, ("127.0.0.1", port))
    await loop.sock_sendall(raw, UPGRADE)
    head = b""
    while b"\r\n\r\n" not in head:
        head += await asyncio.wait_for(loop.sock_recv(raw, 4096), 5)
    assert head.startswith(b"HTTP/1.1 101")
    return raw


async def test_a_hung_handler_is_cancelled_when_its_client_resets_after_a_flood():
    app, events, started = hung_app()
    async with app.test_server() as running:
        raw = await raw_client(running.port)
        loop = asyncio.get_running_loop()
        await loop.sock_sendall(raw, frame(b'"first"'))
        await asyncio.wait_for(started.wait(), 5)
        # 200 messages of 64 KiB: the core parks them and stops reading
        msg = frame(b'"' + b"x" * (64 * 1024 - 2) + b'"')
        sent = 0
        for _ in range(200):
            try:
                sent += raw.send(msg)
            except BlockingIOError:
                break  # the server no longer reads: the socket buffers are full
        assert sent > 0
        await asyncio.sleep(0.2)
        assert events == []
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        raw.close()  # RST
        for _ in range(100):
            if events:
                break
            await asyncio.sleep(0.05)
        assert events == ["cancelled"], "the reset went unnoticed"


async def test_a_hung_handler_is_cancelled_when_its_client_closes():
    app, events, started = hung_app(pong_timeout=0.5)
    async with app.test_server() as running:
        ws = await websockets.connect(running.url("/hang"), close_timeout=0.5)
        await ws.send('"first"')
        await asyncio.wait_for(started.wait(), 5)
        await ws.send('"second"')  # waits in the core behind the hung handler
        await asyncio.sleep(0.1)
        await ws.close()
        for _ in range(100):
            if events:
                break
            await asyncio.sleep(0.05)
        assert events == ["cancelled"]


async def test_a_handler_that_finishes_is_not_cancelled():
    app = App()
    events: list[str] = []

    @app.websocket("/slow")
    async def slow(message: str) -> str:
        try:
            await asyncio.sleep(0.05)
        except asyncio.CancelledError:
            events.append("cancelled")
            raise
        return message

    async with app.test_server() as running:
        async with websockets.connect(running.url("/slow")) as ws:
            for i in range(3):
                await ws.send(f'"m{i}"')
            assert [await ws.recv() for _ in range(3)] == ['"m0"', '"m1"', '"m2"']
    assert events == []


async def test_message_timeout_closes_a_message_kept_open_with_1008():
    app = App()

    @app.websocket("/m", message_timeout=0.2)
    async def m(message: str) -> str:
        return message

    async with app.test_server() as running:
        raw = socket.create_connection(("127.0.0.1", running.port))
        loop = asyncio.get_running_loop()
        raw.setblocking(False)
        await loop.sock_sendall(raw, UPGRADE.replace(b"/hang", b"/m"))
        head = b""
        while b"\r\n\r\n" not in head:
            head += await asyncio.wait_for(loop.sock_recv(raw, 4096), 5)
        rest = head.split(b"\r\n\r\n", 1)[1]
        await loop.sock_sendall(raw, frame(b'"ab', fin=False))
        await asyncio.sleep(0.4)
        await loop.sock_sendall(raw, frame(b'c"', opcode=0x0))
        while len(rest) < 4:
            rest += await asyncio.wait_for(loop.sock_recv(raw, 4096), 5)
        assert rest[0] == 0x88
        assert struct.unpack(">H", rest[2:4])[0] == 1008
        raw.close()


async def test_max_buffered_bytes_is_an_app_option():
    for budget in (1 << 20, None):  # None: no budget
        app = App(max_buffered_bytes=budget)

        @app.websocket("/e")
        async def e(message: str) -> str:
            return message

        async with app.test_server() as running:
            async with websockets.connect(running.url("/e")) as ws:
                await ws.send('"x"')
                assert await ws.recv() == '"x"'
    with pytest.raises(ConfigError):
        App(max_buffered_bytes=-1)
