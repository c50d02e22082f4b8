"""App composition, options and running."""

from __future__ import annotations

import asyncio
import sys
import textwrap

import pytest
import websockets

from wirecore import App, WebSocket, WebSocketConnection, websocket, websocket_route
from wirecore.testing import HandshakeRejected


@websocket("/standalone/{x}")
async def standalone(message: dict, x: str) -> dict:
    return {"x": x, **message}


@websocket_route("/counter")
class Counter(WebSocket):
    def receive(self, n: int) -> int:
        return n + 1


async def test_include_standalone_routes_classes_and_other_apps():
    sub = App()

    @sub.websocket("/ping")
    async def ping(message: str) -> str:
        return "pong:" + message

    app = App()
    app.include(standalone, Counter)
    app.include(sub, prefix="/sub")
    assert app.routes == ["/standalone/{x}", "/counter", "/sub/ping"]
    async with app.test_client() as client:
        async with client.websocket("/standalone/7") as ws:
            await ws.send_json({"a": 1})
            assert await ws.receive_json() == {"x": "7", "a": 1}
        async with client.websocket("/counter") as ws:
            await ws.send_json(41)
            assert await ws.receive_json() == 42
        async with client.websocket("/sub/ping") as ws:
            await ws.send_json("x")
            assert await ws.receive_json() == "pong:x"


def test_include_refuses_a_class_without_path():
    class NoPath(WebSocket):
        def receive(self, m: dict) -> None: ...

    with pytest.raises(ValueError):
        App().include(NoPath)


def test_unknown_options_are_refused():
    with pytest.raises(TypeError, match="max_mesage_size"):
        App().websocket("/x", max_mesage_size=10)(lambda m: m)


async def test_load_routes_from_yaml(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path.parent))
    sys.path.insert(0, __import__("os").path.dirname(__file__))
    routes = tmp_path / "routes.yaml"
    routes.write_text(textwrap.dedent("""
        routers:
          - name: api
            mount: /api
            routes:
              - {path: /upper, handler: "routes_pkg.handlers:upper", websocket: true}
              - {path: /lower, handler: "routes_pkg.handlers:lower", websocket: true}
              - {path: /count, handler: "routes_pkg.handlers:Counter", websocket: true}
              - {path: /stream, handler: "routes_pkg.handlers:stream", websocket: true}
              - {path: /skip, handler: "routes_pkg.handlers:upper", websocket: false}
    """))
    app = App()
    app.load_routes(str(routes))
    assert app.routes == ["/api/upper", "/api/lower", "/api/count", "/api/stream"]
    async with app.test_client() as client:
        async with client.websocket("/api/upper") as ws:
            await ws.send_json("abc")
            assert await ws.receive_json() == "ABC"
        async with client.websocket("/api/lower") as ws:
            await ws.send_json("ABC")
            assert await ws.receive_json() == "abc"
        async with client.websocket("/api/count") as ws:
            await ws.send_json(1)
            assert await ws.receive_json() == 2
        async with client.websocket("/api/stream") as ws:
            await ws.send_text("s")
            assert await ws.receive_text() == "stream:s"


async def test_unknown_path_is_refused_with_404():
    app = App()
    app.include(Counter)
    async with app.test_client() as client:
        with pytest.raises(HandshakeRejected) as info:
            await client.websocket("/nowhere")
        assert info.value.status == 404


def make_options_app() -> App:
    app = App()

    @app.websocket("/small", max_message_size=64)
    async def small(ws: WebSocketConnection) -> None:
        async for m in ws:
            await ws.send(m)

    @app.websocket("/origin", allowed_origins=["https://good.example"])
    async def origin(ws: WebSocketConnection) -> None:
        async for m in ws:
            await ws.send(m)

    @app.websocket("/proto", subprotocols=["v2.chat", "v1.chat"])
    async def proto(ws: WebSocketConnection) -> None:
        await ws.send_text(ws.subprotocol or "none")
        async for _ in ws:
            pass

    @app.websocket("/idle", idle_timeout=0.1, pong_timeout=0.1)
    async def idle(ws: WebSocketConnection) -> None:
        async for _ in ws:
            pass

    return app


async def test_max_message_size_closes_with_1009():
    app = make_options_app()
    async with app.test_client() as client:
        async with client.websocket("/small") as ws:
            await ws.send_text("x" * 64)
            assert await ws.receive_text() == "x" * 64
            await ws.send_text("x" * 65)
            assert await ws.wait_closed() == 1009


async def test_allowed_origins_refuse_others_with_403():
    app = make_options_app()
    async with app.test_client() as client:
        async with client.websocket("/origin", headers={"Origin": "https://good.example"}) as ws:
            await ws.send_text("ok")
            assert await ws.receive_text() == "ok"
        with pytest.raises(HandshakeRejected) as info:
            await client.websocket("/origin", headers={"Origin": "https://evil.example"})
        assert info.value.status == 403


async def test_subprotocol_is_negotiated_in_server_preference_order():
    app = make_options_app()
    async with app.test_server() as server:
        async with websockets.connect(server.url("/proto"), subprotocols=["v1.chat", "v2.chat"]) as c:
            assert c.subprotocol == "v2.chat"
            assert await c.recv() == "v2.chat"


async def test_idle_connection_that_never_answers_pings_is_closed():
    app = make_options_app()
    async with app.test_client() as client:
        ws = await client.websocket("/idle")
        await asyncio.sleep(0.6)  # not reading: pings go unanswered
        code = await ws.wait_closed(3.0)
        assert code != 1000
        await ws.close()


async def test_serve_runs_until_cancelled_and_stops_gracefully():
    app = App()
    app.include(Counter)
    task = asyncio.create_task(app.serve("127.0.0.1", 0))
    for _ in range(100):
        if app.server is not None:
            break
        await asyncio.sleep(0.01)
    async with websockets.connect(app.server.url("/counter")) as c:
        await c.send("1")
        assert await c.recv() == "2"
        task.cancel()
        with pytest.raises(websockets.ConnectionClosed) as info:
            await asyncio.wait_for(c.recv(), 5)
        assert info.value.rcvd.code == 1001
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_stop_closes_connections_with_1001():
    app = App()
    app.include(Counter)
    running = await app.start("127.0.0.1", 0)
    async with websockets.connect(running.url("/counter")) as c:
        assert running.connection_count == 1
        await running.stop()
        with pytest.raises(websockets.ConnectionClosed) as info:
            await asyncio.wait_for(c.recv(), 5)
        assert info.value.rcvd.code == 1001


async def test_request_exposes_path_query_headers_and_client():
    app = App()
    seen = {}

    @app.websocket("/req/{a}/{rest:path}")
    async def req(ws: WebSocketConnection) -> None:
        r = ws.request
        seen.update(path=r.path, params=r.path_params, q=r.query_params.getlist("k"),
                    first=r.query_params.get("k"), ua=r.headers.get("x-test"),
                    client=r.client[0], target=r.target, qs=r.query_string)
        await ws.send_text("ok")

    async with app.test_client() as client:
        async with client.websocket("/req/one/two/three?k=1&k=2&e=%20x", headers={"X-Test": "yes"}) as ws:
            assert await ws.receive_text() == "ok"
    assert seen["path"] == "/req/one/two/three"
    assert seen["params"] == {"a": "one", "rest": "two/three"}
    assert seen["q"] == ["1", "2"] and seen["first"] == "1"
    assert seen["ua"] == "yes"
    assert seen["client"] == "127.0.0.1"
    assert seen["target"] == "/req/one/two/three?k=1&k=2&e=%20x"
    assert seen["qs"] == "k=1&k=2&e=%20x"


async def test_slow_reader_over_max_backpressure_is_closed():
    app = App()
    outcome = {}

    @app.websocket("/firehose", max_backpressure=64 * 1024)
    async def firehose(ws: WebSocketConnection) -> None:
        chunk = b"x" * 16384
        try:
            for _ in range(10000):  # the client never reads
                ws.send_bytes(chunk)  # not awaited: an awaited send would wait for the reader
                await asyncio.sleep(0)
        except Exception as exc:  # the core refuses the send and closes
            outcome["error"] = type(exc).__name__

    async with app.test_client() as client:
        ws = await client.websocket("/firehose")
        for _ in range(300):
            if outcome:
                break
            await asyncio.sleep(0.01)
        assert outcome.get("error") in ("BackpressureError", "ConnectionClosedError")
        await ws.close()
