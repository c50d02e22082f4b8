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


async def test_each_reply_kind_is_sent_as_documented():
    app, seen = replies_app()
    async with app.test_client() as client:
        async with client.websocket("/replies") as ws:
            await ws.send_text("none")  # nothing comes back: the next reply is the next message's
            await ws.send_text("str")
            assert await ws.receive() == "text"
            await ws.send_text("shout")
            assert await ws.receive() == "loud"
            await ws.send_text("bytes")
            assert await ws.receive() == b"\x01\x02"
            await ws.send_text("bytearray")
            assert await ws.receive() == b"ba"
            await ws.send_text("memoryview")
            assert await ws.receive() == b"mv"
            await ws.send_text("dict")
            assert await ws.receive() == '{"a":[1,2]}'
            await ws.send_text("list")
            assert await ws.receive_json() == [1, "x"]
            await ws.send_text("text-msg")
            assert await ws.receive() == "as message"
            await ws.send_text("bin-msg")
            assert await ws.receive() == b"\x00"
            await ws.send_bytes(b"\xff\x00")
            assert await ws.receive() == b"\xff\x00"
            await ws.send_text("echo")
            assert await ws.receive() == "echo"
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
            await ws.send_text("fail")
            assert await ws.receive_text() == "error: ValueError"
            await ws.send_text("slow-fail")
            assert await ws.receive_text() == "error: KeyError"
            await ws.send_text("unsendable")  # SerializationError from the send
            assert await ws.receive_text() == "error: SerializationError"
            await ws.send_text("still open")
            assert await ws.receive_text() == "still open"


async def test_sync_handler_returning_awaitables_and_raising():
    app, _ = replies_app()
    async with app.test_client() as client:
        async with client.websocket("/sync") as ws:
            await ws.send_text("later")
            assert await ws.receive_text() == "awaited"
            await ws.send_text("future")
            await ws.send_text("next")
            assert await ws.receive_text() == "from future"
            assert await ws.receive_text() == "NEXT"
            await ws.send_text("fail")
            assert await ws.receive_text() == "sync sync"


async def test_on_message_is_read_from_the_response_for_every_message():
    app, _ = replies_app()
    async with app.test_client() as client:
        async with client.websocket("/swap") as ws:
            await ws.send_text("x")
            assert await ws.receive_text() == "first"
            await ws.send_text("swap")
            assert await ws.receive_text() == "swapped"
            await ws.send_text("y")
            assert await ws.receive_text() == "second"
        async with client.websocket("/swap") as ws:
            await ws.send_text("off")
            assert await ws.receive_text() == "off"
            await ws.send_text("ignored")
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
