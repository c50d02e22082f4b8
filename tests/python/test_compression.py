"""permessage-deflate through the Python package: the `websockets` client
(compression on by default) negotiates it with each mode, large messages
round-trip, the server's frames carry RSV1 and are smaller than the message,
and bad option values are refused. Real server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import zlib

import pytest
import websockets

import wirecore
from wirecore import App

SHARED = "permessage-deflate; server_no_context_takeover; client_no_context_takeover"


def chat(n: int) -> str:
    """A chat-like JSON message of about n bytes."""
    items = []
    while len(json.dumps(items)) < n:
        i = len(items)
        items.append({"user": f"user{i % 7}", "room": "lobby", "text": f"message number {i} here"})
    return json.dumps(items)


def echo_app(**options) -> App:
    app = App()

    @app.websocket("/e", **options)
    async def e(message: str) -> str:
        return message

    return app


async def test_shared_mode_is_negotiated_by_default_and_round_trips():
    async with echo_app().test_server() as running:
        async with websockets.connect(running.url("/e"), max_size=None) as c:
            assert c.response.headers["Sec-WebSocket-Extensions"] == SHARED
            assert [type(x).__name__ for x in c.protocol.extensions] == ["PerMessageDeflate"]
            for n in (10, 2000, 200_000):
                msg = json.dumps(chat(n))
                await c.send(msg)
                assert await asyncio.wait_for(c.recv(), 10) == msg


async def test_dedicated_mode_keeps_context_takeover():
    async with echo_app(compression="dedicated", compression_window_bits=12).test_server() as running:
        async with websockets.connect(running.url("/e")) as c:
            ext = c.response.headers["Sec-WebSocket-Extensions"]
            assert ext.startswith("permessage-deflate")
            assert "no_context_takeover" not in ext
            assert "client_max_window_bits=12" in ext
            for _ in range(5):
                msg = json.dumps(chat(3000))
                await c.send(msg)
                assert await asyncio.wait_for(c.recv(), 10) == msg


async def test_off_declines_the_offer():
    async with echo_app(compression="off").test_server() as running:
        async with websockets.connect(running.url("/e")) as c:
            assert "Sec-WebSocket-Extensions" not in c.response.headers
            assert c.protocol.extensions == []
            await c.send('"plain"')
            assert await c.recv() == '"plain"'


def raw_exchange(port: int, offer: str, payload: bytes) -> tuple[bytes, bytes]:
    """Handshake with `offer`, send one masked uncompressed text frame, return
    the 101 head and the first byte + payload of the server's reply frame."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    with s:
        s.sendall(
            b"GET /e HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
            + f"Sec-WebSocket-Extensions: {offer}\r\n\r\n".encode()
        )
        buf = b""
        while b"\r\n\r\n" not in buf:
            buf += s.recv(4096)
        head, buf = buf.split(b"\r\n\r\n", 1)
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        s.sendall(bytes([0x81, 0xFE]) + len(payload).to_bytes(2, "big") + mask + masked)
        while len(buf) < 4:
            buf += s.recv(65536)
        n = buf[1] & 0x7F
        hl = 2
        if n == 126:
            n, hl = int.from_bytes(buf[2:4], "big"), 4
        while len(buf) < hl + n:
            buf += s.recv(65536)
        return head, bytes([buf[0]]) + buf[hl : hl + n]


async def test_the_server_frame_is_compressed_on_the_wire():
    async with echo_app().test_server() as running:
        msg = json.dumps(chat(4000)).encode()
        loop = asyncio.get_running_loop()
        head, frame = await loop.run_in_executor(
            None, raw_exchange, running.port, "permessage-deflate; client_max_window_bits", msg
        )
        assert SHARED.encode() in head
        assert frame[0] == 0xC1  # FIN, RSV1, text
        body = frame[1:]
        assert len(body) < len(msg) // 3
        assert zlib.decompressobj(-15).decompress(body + b"\x00\x00\xff\xff") == msg


async def test_short_messages_stay_plain_under_the_threshold():
    async with echo_app(compression_threshold=100_000).test_server() as running:
        msg = json.dumps(chat(4000)).encode()
        loop = asyncio.get_running_loop()
        _, frame = await loop.run_in_executor(
            None, raw_exchange, running.port, "permessage-deflate", msg
        )
        assert frame[0] == 0x81
        assert frame[1:] == msg


async def test_bad_compression_options_are_refused():
    with pytest.raises(ValueError, match="compression must be"):
        async with echo_app(compression="fast").test_server():
            pass
    with pytest.raises(wirecore.ConfigError, match="compression_window_bits"):
        async with echo_app(compression="dedicated", compression_window_bits=20).test_server():
            pass
