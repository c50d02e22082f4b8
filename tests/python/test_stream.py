"""Connection (stream) style: the handler owns the connection."""

from __future__ import annotations

import asyncio

import pytest
import websockets

from wirecore import App, ConnectionClosed, WebSocketConnection

from conftest import eventually


def make_app() -> tuple[App, dict]:
    app = App()
    seen: dict = {"closed": [], "disconnects": 0}

    @app.websocket("/feed")
    async def feed(ws: WebSocketConnection) -> None:
        await ws.send_json({"hello": ws.query_params.get("user")})
        async for message in ws:
            if message == "json":
                await ws.send_json(await ws.receive_json())
            elif message == "boom":
                raise RuntimeError("handler failure")
            elif message == "bye":
                await ws.close(4000, "bye now")
            elif isinstance(message, bytes):
                await ws.send_bytes(message[::-1])
            else:
                await ws.send_text(message.upper())
        seen["closed"].append(ws.close_code)

    @feed.on_disconnect
    async def gone() -> None:
        seen["disconnects"] += 1

    @app.websocket("/push/{name}")
    async def push(ws: WebSocketConnection, name: str) -> None:
        for i in range(3):
            await ws.send_text(f"{name}-{i}")
            await asyncio.sleep(0.01)
        # returning closes the connection normally

    @app.websocket("/count")
    async def count(ws: WebSocketConnection) -> None:
        expected = 0
        async for message in ws:
            if message == "end":
                await ws.send_text(str(expected))
                continue
            if message != str(expected):
                await ws.send_text(f"out of order: {message} != {expected}")
            expected += 1
            if expected % 50 == 0:
                await asyncio.sleep(0.001)  # a slow consumer: the connection is paused meanwhile

    return app, seen


async def test_stream_handler_pushes_and_echoes_over_websockets_client():
    app, _ = make_app()
    async with app.test_server() as server:
        async with websockets.connect(server.url("/feed?user=ann")) as c:
            assert await c.recv() == '{"hello":"ann"}'
            await c.send("abc")
            assert await c.recv() == "ABC"
            await c.send(b"\x01\x02\x03")
            assert await c.recv() == b"\x03\x02\x01"


async def test_receive_json_decodes_with_the_core():
    app, _ = make_app()
    async with app.test_client() as client:
        async with client.websocket("/feed") as ws:
            await ws.receive_json()
            await ws.send_text("json")
            await ws.send_json({"a": [1, 2.5, None]})
            assert await ws.receive_json() == {"a": [1, 2.5, None]}


async def test_handler_exception_closes_with_1011_and_others_carry_on():
    app, _ = make_app()
    async with app.test_client() as client:
        async with client.websocket("/feed") as bad, client.websocket("/feed") as good:
            await bad.receive_json()
            await good.receive_json()
            await bad.send_text("boom")
            assert await bad.wait_closed() == 1011
            await good.send_text("still here")
            assert await good.receive_text() == "STILL HERE"


async def test_close_from_handler_sends_code_and_reason():
    app, _ = make_app()
    async with app.test_server() as server:
        async with websockets.connect(server.url("/feed")) as c:
            await c.recv()
            await c.send("bye")
            with pytest.raises(websockets.ConnectionClosed) as info:
                await c.recv()
            assert info.value.rcvd.code == 4000
            assert info.value.rcvd.reason == "bye now"


async def test_iteration_ends_when_the_client_closes_and_on_disconnect_runs():
    app, seen = make_app()
    async with app.test_client() as client:
        ws = await client.websocket("/feed")
        await ws.receive_json()
        await ws.close(1000)
        await eventually(lambda: seen["closed"] == [1000] and seen["disconnects"] == 1)


async def test_returning_from_the_handler_closes_normally():
    app, _ = make_app()
    async with app.test_client() as client:
        async with client.websocket("/push/x") as ws:
            assert [await ws.receive_text() for _ in range(3)] == ["x-0", "x-1", "x-2"]
            assert await ws.wait_closed() == 1000


async def test_many_queued_messages_arrive_in_order_to_a_slow_consumer():
    app, seen = make_app()
    async with app.test_client() as client:
        async with client.websocket("/count") as ws:
            for i in range(500):
                await ws.send_text(str(i))
            await ws.send_text("end")
            assert await ws.receive_text() == "500"


async def test_receive_after_close_raises_connection_closed():
    app = App()
    result: dict = {}

    @app.websocket("/once")
    async def once(ws: WebSocketConnection) -> None:
        await ws.receive()
        await ws.close()
        await asyncio.sleep(0.05)
        try:
            await ws.receive()
        except ConnectionClosed:
            result["raised"] = True

    async with app.test_client() as client:
        async with client.websocket("/once") as ws:
            await ws.send_text("x")
            await ws.wait_closed()
        await eventually(lambda: result.get("raised"))
