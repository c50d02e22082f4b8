"""Hardening options through the package: max_message_fragments (1009 past
it) and send_timeout (1008 for a client that stops reading), against a real
server on 127.0.0.1 and the `websockets` client."""

from __future__ import annotations

import asyncio
import socket

import pytest
import websockets

from wirecore import App


async def test_max_message_fragments_closes_with_1009_past_it():
    app = App()

    @app.websocket("/f", max_message_fragments=4)
    async def f(message: str) -> str:
        return message

    async with app.test_server() as running:
        async with websockets.connect(running.url("/f")) as c:
            # websockets ends a fragmented message with an empty final frame
            await c.send(iter(['"a', "b", 'c"']))  # four frames: fine
            assert await c.recv() == '"abc"'
            await c.send(iter(['"a', "b", "c", 'd"']))  # five frames
            with pytest.raises(websockets.ConnectionClosed):
                await asyncio.wait_for(c.recv(), 5)
        assert c.close_code == 1009


async def test_send_timeout_closes_a_client_that_stops_reading_with_1008():
    app = App()

    @app.websocket("/s", send_timeout=0.3, pong_timeout=0.3, max_message_size=8 << 20)
    async def s(message: str) -> str:
        return message

    async with app.test_server() as running:
        port = running.port
        async with websockets.connect(running.url("/s"), max_size=None) as probe:
            await probe.send('"ok"')
            assert await probe.recv() == '"ok"'
        # a raw client with a tiny receive window that never reads
        raw = socket.socket()
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        await asyncio.get_running_loop().run_in_executor(None, raw.connect, ("127.0.0.1", port))
        raw.sendall(
            b"GET /s HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        raw.settimeout(5)
        loop = asyncio.get_running_loop()
        assert await loop.run_in_executor(None, raw.recv, 12) == b"HTTP/1.1 101"
        payload = b'"' + b"x" * (6 << 20) + b'"'
        head = bytes([0x81, 0xFF]) + len(payload).to_bytes(8, "big") + b"\0\0\0\0"
        await loop.run_in_executor(None, raw.sendall, head + payload)
        # the echo fills the socket buffers; the send deadline (0.3 s), then the
        # close deadline (0.3 s) drop it while this client still holds it open
        try:
            for _ in range(100):
                if running.connection_count == 0:
                    break
                await asyncio.sleep(0.05)
            assert running.connection_count == 0
        finally:
            raw.close()


def test_hardening_options_are_app_options():
    app = App()
    app.websocket("/a", send_timeout=10, max_message_fragments=100)(lambda m: m)
    with pytest.raises(TypeError):
        app.websocket("/b", send_timout=10)(lambda m: m)
