"""Callback style, every way a message's result is finished: the replies the
C message path sends itself (None, str, bytes, a WebSocketMessage), the ones it
hands back to Python (other values, awaitables, exceptions, a coroutine that
suspends), and the WebSocketMessage type those handlers receive."""

from __future__ import annotations

import asyncio

import pytest

from wirecore import App, Request, WebSocketConnection, WebSocketMessage, WebSocketResponse
from wirecore import _native


class Shout(str):
    """A str subclass: sent as text like any str."""


class Later:
    """An awaitable that is not a coroutine."""

    def __init__(self, value):
        self.value = value

    def __await__(self):
        yield from asyncio.sleep(0).__await__()
        return self.value


def replies_app() -> tuple[App, list]:
    app = App()
    seen: list = []

    async def on_message(msg: WebSocketMessage):
        seen.append(type(msg))
        t = msg.data if msg.is_text() else ""
        if msg.is_binary():
            return msg  # binary echo, as it came
        if t == "none":
            return None
        if t == "str":
            return "text"
        if t == "shout":
            return Shout("loud")
        if t == "bytes":
            return b"\x01\x02"
        if t == "bytearray":
            return bytearray(b"ba")
        if t == "memoryview":
            return memoryview(b"mv")
        if t == "dict":
            return {"a": [1, 2]}
        if t == "list":
            return [1, "x"]
        if t == "text-msg":
            return WebSocketMessage("as message")
        if t == "bin-msg":
            return WebSocketMessage(b"\x00")
        if t == "slow":
            await asyncio.sleep(0.02)
            return "slow done"
        if t == "slow-fail":
            await asyncio.sleep(0.01)
            raise KeyError("late")
        if t == "fail":
            raise ValueError("early")
        if t == "unsendable":
            return object()
        return msg

    async def on_error(exc: Exception):
        return f"error: {type(exc).__name__}"

    @app.websocket("/replies")
    async def replies(request: Request) -> WebSocketResponse:
        return WebSocketResponse(on_message=on_message, on_error=on_error)

    @app.websocket("/sync")
    def sync(request: Request) -> WebSocketResponse:
        def handle(msg: WebSocketMessage):
            if msg.data == "later":
                return Later("awaited")
            if msg.data == "future":
                fut = asyncio.get_running_loop().create_future()
                asyncio.get_running_loop().call_later(0.01, fut.set_result, "from future")
                return fut
            if msg.data == "fail":
                raise RuntimeError("sync")
            return msg.data.upper()

        return WebSocketResponse(on_message=handle, on_error=lambda exc: f"sync {exc}")

    @app.websocket("/swap")
    def swap(request: Request) -> WebSocketResponse:
        response = WebSocketResponse()

        def first(msg: WebSocketMessage):
            if msg.data == "swap":
                response.on_message = second
                return "swapped"
            if msg.data == "off":
                response.on_message = None
                return "off"
            return "first"

        def second(msg: WebSocketMessage):
            return "second"

        response.on_message = first
        return response

    return app, seen


async def exchange(ws, *steps) -> None:
    """Each step sends its first item (text, or bytes as binary) and, unless
    the second is None, checks that the next message received equals it."""
    for sent, expected in steps:
        await (ws.send_bytes(sent) if isinstance(sent, bytes) else ws.send_text(sent))
        if expected is not None:
            assert await ws.receive() == expected


async def test_each_reply_kind_is_sent_as_documented():
    app, seen = replies_app()
    async with app.test_client() as client:
        async with client.websocket("/replies") as ws:
            # "none": nothing comes back, the next reply is the next message's
            await exchange(ws, ("none", None), ("str", "text"), ("shout", "loud"),
                           ("bytes", b"\x01\x02"), ("bytearray", b"ba"), ("memoryview", b"mv"),
                           ("dict", '{"a":[1,2]}'))
            await ws.send_text("list")
            assert await ws.receive_json() == [1, "x"]
            await exchange(ws, ("text-msg", "as message"), ("bin-msg", b"\x00"),
                           (b"\xff\x00", b"\xff\x00"), ("echo", "echo"))
    assert seen and all(t is WebSocketMessage for t in seen)


async def test_replies_keep_message_order_when_a_handler_suspends():
    app, _ = replies_app()
    async with app.test_client() as client:
        async with client.websocket("/replies") as ws:
            for m in ("a", "slow", "b", "slow", "c"):
                await ws.send_text(m)
            got = [await ws.receive_text() for _ in range(5)]
            assert got == ["a", "slow done", "b", "slow done", "c"]


async def test_exceptions_before_and_after_a_suspension_reach_on_error():
    app, _ = replies_app()
    async with app.test_client() as client:
        async with client.websocket("/replies") as ws:
            # "unsendable": a SerializationError from the send
            await exchange(ws, ("fail", "error: ValueError"), ("slow-fail", "error: KeyError"),
                           ("unsendable", "error: SerializationError"),
                           ("still open", "still open"))


async def test_sync_handler_returning_awaitables_and_raising():
    app, _ = replies_app()
    async with app.test_client() as client:
        async with client.websocket("/sync") as ws:
            await exchange(ws, ("later", "awaited"), ("future", None), ("next", "from future"))
            assert await ws.receive_text() == "NEXT"
            await exchange(ws, ("fail", "sync sync"))


async def test_on_message_is_read_from_the_response_for_every_message():
    app, _ = replies_app()
    async with app.test_client() as client:
        async with client.websocket("/swap") as ws:
            await exchange(ws, ("x", "first"), ("swap", "swapped"), ("y", "second"))
        async with client.websocket("/swap") as ws:
            await exchange(ws, ("off", "off"), ("ignored", None))
            with pytest.raises(asyncio.TimeoutError):
                await ws.receive(timeout=0.2)


async def test_stream_send_takes_messages_str_bytes_and_json():
    app = App()

    @app.websocket("/stream")
    async def stream(ws: WebSocketConnection):
        async for msg in ws:
            await ws.send(WebSocketMessage(msg))
            await ws.send({"len": len(msg)})

    async with app.test_client() as client:
        async with client.websocket("/stream") as ws:
            await ws.send_bytes(b"ab")
            assert await ws.receive() == b"ab"
            assert await ws.receive_json() == {"len": 2}
            await ws.send_text("xyz")
            assert await ws.receive() == "xyz"
            assert await ws.receive_json() == {"len": 3}


def test_websocket_message_type():
    m = WebSocketMessage(data="t")
    assert isinstance(m, _native.Message) and m.is_text() and not m.is_binary()
    m.data = b"b"
    assert m.is_binary() and m.as_text() == "b" and repr(m) == "WebSocketMessage(b'b')"
    assert WebSocketMessage(bytearray(b"x")).as_binary() == b"x"
    with pytest.raises(TypeError):
        WebSocketMessage()  # type: ignore[call-arg]
    with pytest.raises(AttributeError):
        m.other = 1  # type: ignore[attr-defined]
    del m.data
    with pytest.raises(AttributeError):
        m.data
    with pytest.raises(TypeError):
        _native.set_message_class(str)
