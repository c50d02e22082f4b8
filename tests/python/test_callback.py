"""Callback style: the handler returns a WebSocketResponse."""

from __future__ import annotations

import websockets

from wirecore import App, Request, WebSocketConnection, WebSocketMessage, WebSocketResponse

from conftest import eventually


def make_app() -> tuple[App, list]:
    app = App()
    events: list = []

    @app.websocket("/echo")
    async def echo(request: Request) -> WebSocketResponse:
        async def on_message(msg: WebSocketMessage):
            if msg.is_text() and msg.as_text() == "json":
                return {"kind": "json"}
            if msg.is_text() and msg.as_text().startswith("{"):
                return msg.as_json()
            if msg.is_text() and msg.as_text() == "fail":
                raise ValueError("bad input")
            if msg.is_text() and msg.as_text() == "none":
                return None
            return msg

        async def on_connect(ws: WebSocketConnection):
            events.append(("connect", request.path))
            await ws.send_text("welcome")

        def on_close(code: int, reason: str):
            events.append(("close", code))

        async def on_error(exc: Exception):
            return f"error: {exc}"

        return WebSocketResponse(on_message=on_message, on_connect=on_connect, on_close=on_close,
                                 on_error=on_error)

    @app.websocket("/plain")
    def plain(request: Request) -> WebSocketResponse:
        return WebSocketResponse(on_message=lambda m: m.as_binary() if m.is_binary() else m.as_text() + "!")

    @app.websocket("/no-error-handler")
    async def strict(request: Request) -> WebSocketResponse:
        def on_message(msg):
            raise RuntimeError("nobody handles this")

        return WebSocketResponse(on_message=on_message)

    return app, events


async def test_echoes_text_and_binary_with_websockets_client():
    app, events = make_app()
    async with app.test_server() as server:
        async with websockets.connect(server.url("/echo")) as c:
            assert await c.recv() == "welcome"
            await c.send("hello")
            assert await c.recv() == "hello"
            await c.send(b"\x00\xff")
            assert await c.recv() == b"\x00\xff"
        await eventually(lambda: ("close", 1000) in events)
    assert events[0] == ("connect", "/echo")


async def test_returned_objects_are_sent_as_json_and_none_sends_nothing():
    app, _ = make_app()
    async with app.test_client() as client:
        async with client.websocket("/echo") as ws:
            await ws.receive_text()
            await ws.send_text("none")
            await ws.send_text("json")
            assert await ws.receive_json() == {"kind": "json"}
            await ws.send_text('{"a": 1}')
            assert await ws.receive_json() == {"a": 1}


async def test_on_error_reply_is_sent_and_connection_stays_open():
    app, _ = make_app()
    async with app.test_client() as client:
        async with client.websocket("/echo") as ws:
            await ws.receive_text()
            await ws.send_text("fail")
            assert await ws.receive_text() == "error: bad input"
            await ws.send_text("after")
            assert await ws.receive_text() == "after"


async def test_sync_handlers_work_too():
    app, _ = make_app()
    async with app.test_client() as client:
        async with client.websocket("/plain") as ws:
            await ws.send_text("hi")
            assert await ws.receive_text() == "hi!"
            await ws.send_bytes(b"b")
            assert await ws.receive_bytes() == b"b"


async def test_unhandled_exception_closes_with_1011():
    app, _ = make_app()
    async with app.test_client() as client:
        async with client.websocket("/no-error-handler") as ws:
            await ws.send_text("x")
            assert await ws.wait_closed() == 1011


async def test_message_helpers():
    m = WebSocketMessage('{"x": [1]}')
    assert m.is_text() and not m.is_binary()
    assert m.as_json() == {"x": [1]}
    assert m.as_binary() == b'{"x": [1]}'
    b = WebSocketMessage(b"\xc3\xa9")
    assert b.is_binary() and b.as_text() == "é"
