"""Topics: ws.subscribe / ws.unsubscribe / ws.topics and app.publish /
app.subscriber_count, against real `websockets` clients on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import socket

import msgpack
import pytest
import websockets

from wirecore import App, ConfigError, WebSocket, WebSocketConnection, WebSocketResponse, websocket_route
from wirecore.serializers import JSONSerializer, MessagePackSerializer, PacketSerializer

from conftest import eventually


def room_app() -> App:
    """/room/{name}: subscribes, then 'say:<text>' publishes to the others and
    'me:<text>' publishes to everyone; 'leave' unsubscribes."""
    app = App()

    @app.websocket("/room/{name}")
    async def room(ws: WebSocketConnection, name: str) -> None:
        ws.subscribe(name)
        await ws.send_text(f"joined:{','.join(ws.topics)}")
        async for msg in ws:
            if msg.startswith("say:"):
                n = app.publish(name, msg[4:], exclude=ws)
                await ws.send_text(f"sent:{n}")
            elif msg.startswith("me:"):
                app.publish(name, msg[3:])
            elif msg.startswith("order:"):
                # direct sends and publishes keep the order they were made in
                for i in range(5):
                    await ws.send_text(f"direct{i}")
                    app.publish(name, f"pub{i}")
            elif msg == "leave":
                await ws.send_text(f"left:{ws.unsubscribe(name)}:{ws.unsubscribe(name)}:{ws.topics}")

    return app


async def joined(url: str) -> websockets.ClientConnection:
    c = await websockets.connect(url)
    assert (await asyncio.wait_for(c.recv(), 5)).startswith("joined:")
    return c


async def test_publish_reaches_every_subscriber_but_the_excluded_one():
    app = room_app()
    async with app.test_server() as server:
        a = await joined(server.url("/room/lobby"))
        b = await joined(server.url("/room/lobby"))
        c = await joined(server.url("/room/other"))
        assert app.subscriber_count("lobby") == 2
        await a.send("say:hello")
        assert await asyncio.wait_for(a.recv(), 5) == "sent:1"
        assert await asyncio.wait_for(b.recv(), 5) == "hello"
        await a.send("me:all")
        assert await asyncio.wait_for(a.recv(), 5) == "all"
        assert await asyncio.wait_for(b.recv(), 5) == "all"
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(c.recv(), 0.2)  # another topic gets nothing
        for ws in (a, b, c):
            await ws.close()


async def test_order_between_publishes_and_direct_sends():
    app = room_app()
    async with app.test_server() as server:
        a = await joined(server.url("/room/o"))
        await a.send("order:")
        got = [await asyncio.wait_for(a.recv(), 5) for _ in range(10)]
        assert got == [x for i in range(5) for x in (f"direct{i}", f"pub{i}")]
        await a.close()


async def test_unsubscribe_and_close_end_subscriptions():
    app = room_app()
    async with app.test_server() as server:
        a = await joined(server.url("/room/u"))
        b = await joined(server.url("/room/u"))
        await a.send("leave")
        assert await asyncio.wait_for(a.recv(), 5) == "left:True:False:[]"
        assert app.subscriber_count("u") == 1
        assert app.publish("u", "after") == 1
        assert await asyncio.wait_for(b.recv(), 5) == "after"
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(a.recv(), 0.2)
        await b.close()
        await eventually(lambda: app.subscriber_count("u") == 0)
        assert app.publish("u", "nobody") == 0
        await a.close()


async def test_publish_to_no_subscribers_and_bad_topics():
    app = room_app()
    assert app.publish("x", "before start") == 0
    with pytest.raises(ConfigError):
        app.publish("", "x")
    async with app.test_server() as server:
        assert app.publish("nobody", "hi") == 0
        assert app.publish("nobody", {"a": 1}) == 0
        assert app.subscriber_count("nobody") == 0
        with pytest.raises(ConfigError):
            app.publish("", "x")
        with pytest.raises(ConfigError):
            app.publish("t" * 257, "x")
        with pytest.raises(ConfigError):
            app.subscriber_count("")
        with pytest.raises(TypeError):
            app.publish(b"bytes-topic", "x")
        assert server.connection_count == 0


async def on_a_connection(app: App, work) -> None:
    """Serve /s, where work(ws) runs on the connection, then "done" goes out;
    returns once a real client got it."""

    @app.websocket("/s")
    async def s(ws: WebSocketConnection) -> None:
        work(ws)
        await ws.send_text("done")
        async for _ in ws:
            pass

    async with app.test_server() as server:
        async with websockets.connect(server.url("/s")) as c:
            assert await asyncio.wait_for(c.recv(), 5) == "done"


async def test_bad_topics_raise_on_subscribe_and_the_topic_limit_holds():
    results: list = []

    def work(ws: WebSocketConnection) -> None:
        for topic in ("", "x" * 257):
            try:
                ws.subscribe(topic)
            except ConfigError as exc:
                results.append(type(exc).__name__)
        ws.subscribe("x" * 256)  # the longest topic is fine
        ws.subscribe("x" * 256)  # twice is one subscription
        try:
            for i in range(2000):
                ws.subscribe(f"t{i}")
        except ConfigError as exc:
            results.append(("too many", len(ws.topics), "too many topics" in str(exc)))

    await on_a_connection(App(), work)
    assert results == ["ConfigError", "ConfigError", ("too many", 1024, True)]


async def test_max_topics_per_conn_sets_the_topic_limit():
    results: list = []

    def work(ws: WebSocketConnection) -> None:
        for topic in ("a", "b", "c", "a"):  # a second "a" is the same subscription
            ws.subscribe(topic)
        try:
            ws.subscribe("d")
        except ConfigError as exc:
            results.append((len(ws.topics), "too many topics" in str(exc)))
        ws.unsubscribe("a")
        ws.subscribe("d")  # room again
        results.append(sorted(ws.topics))

    await on_a_connection(App(max_topics_per_conn=3), work)
    assert results == [(3, True), ["b", "c", "d"]]
    for bad in (-1, 2**32, 1.5, True):
        with pytest.raises(ConfigError, match="max_topics_per_conn"):
            App(max_topics_per_conn=bad)


async def test_publish_from_a_timer_outside_any_handler():
    app = App()

    @app.websocket("/tick")
    def tick() -> WebSocketResponse:
        return WebSocketResponse(lambda m: None, on_connect=lambda ws: ws.subscribe("ticks"))

    async with app.test_server() as server:
        async with websockets.connect(server.url("/tick")) as c:
            await eventually(lambda: app.subscriber_count("ticks") == 1)
            loop = asyncio.get_running_loop()
            sent: list[int] = []
            for i in range(3):
                loop.call_later(0.01 * (i + 1), lambda i=i: sent.append(app.publish("ticks", f"t{i}")))
            for i in range(3):
                assert await asyncio.wait_for(c.recv(), 5) == f"t{i}"
            assert sent == [1, 1, 1]


async def test_json_and_msgpack_endpoints_each_get_their_encoding():
    app = App()

    @websocket_route("/mp")
    class MP(WebSocket, using=MessagePackSerializer):
        async def on_connect(self, request) -> None:
            self.subscribe("news")

        async def receive_any(self, message: dict) -> None:
            pass

    @websocket_route("/js")
    class JS(WebSocket):
        async def on_connect(self, request) -> None:
            self.subscribe("news")
            assert self.topics == ["news"]

        async def receive_any(self, message: dict) -> None:
            pass

    app.include(MP, JS)

    @app.websocket("/stream")
    async def stream(ws: WebSocketConnection) -> None:
        ws.subscribe("news")
        async for _ in ws:
            pass

    value = {"headline": "topics", "n": [1, 2.5, None, True]}
    async with app.test_server() as server:
        mp = await websockets.connect(server.url("/mp"))
        js = await websockets.connect(server.url("/js"))
        st = await websockets.connect(server.url("/stream"))
        await eventually(lambda: app.subscriber_count("news") == 3)
        assert app.publish("news", value) == 3
        got_mp = await asyncio.wait_for(mp.recv(), 5)
        assert isinstance(got_mp, bytes) and msgpack.unpackb(got_mp) == value
        got_js = await asyncio.wait_for(js.recv(), 5)
        assert isinstance(got_js, str) and json.loads(got_js) == value
        assert json.loads(await asyncio.wait_for(st.recv(), 5)) == value
        assert app.publish("news", b"\x00\x01") == 3  # bytes: binary to everyone
        for c in (mp, js, st):
            assert await asyncio.wait_for(c.recv(), 5) == b"\x00\x01"
        for c in (mp, js, st):
            await c.close()


async def test_a_thousand_subscribers_each_get_every_message():
    app = App()

    @app.websocket("/all")
    async def all_(ws: WebSocketConnection) -> None:
        ws.subscribe("all")
        async for _ in ws:
            pass

    n, messages = 1000, 20
    async with app.test_server() as server:
        clients = []
        for i in range(0, n, 100):
            clients += await asyncio.gather(*(websockets.connect(server.url("/all")) for _ in range(100)))
        await eventually(lambda: app.subscriber_count("all") == n, timeout=20)
        for i in range(messages):
            assert app.publish("all", f"m{i}") == n

        async def read(c) -> list:
            return [await c.recv() for _ in range(messages)]

        got = await asyncio.wait_for(asyncio.gather(*(read(c) for c in clients)), 60)
        assert all(g == [f"m{i}" for i in range(messages)] for g in got)
        await asyncio.gather(*(c.close() for c in clients))


async def test_a_subscriber_that_never_reads_is_closed_and_the_others_get_everything():
    app = App()

    @app.websocket("/feed", max_backpressure=256 * 1024)
    async def feed(ws: WebSocketConnection) -> None:
        ws.subscribe("feed")
        async for _ in ws:
            pass

    payload = "p" * 16384
    total = 400  # 6.5 MB: far over the stalled reader's limit and socket buffers
    async with app.test_server() as server:
        # the stalled peer: a raw socket that completes the handshake, then never reads
        stalled = socket.create_connection(("127.0.0.1", server.port))
        stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stalled.sendall(
            b"GET /feed HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        reader = await websockets.connect(server.url("/feed"), max_size=None)
        await eventually(lambda: app.subscriber_count("feed") == 2)
        received = 0

        async def read_all() -> None:
            nonlocal received
            while received < total:
                assert await reader.recv() == payload
                received += 1

        task = asyncio.ensure_future(read_all())
        counts = []
        for _ in range(total):
            counts.append(app.publish("feed", payload))
            await asyncio.sleep(0)
        await asyncio.wait_for(task, 30)
        assert received == total
        assert counts[0] == 2 and counts[-1] == 1  # the stalled one was closed on the way
        stalled.close()  # its closing handshake cannot finish while it never reads
        await eventually(lambda: app.subscriber_count("feed") == 1)
        assert server.connection_count == 1
        await reader.close()


class Upper(PacketSerializer):
    """A custom format: JSON with upper-cased keys, counting its encodings."""

    encodes = 0

    @classmethod
    def encode(cls, obj):
        cls.encodes += 1
        if obj.get("fail"):
            raise ValueError("cannot encode this")
        return json.dumps({k.upper(): v for k, v in obj.items()})

    @classmethod
    def decode(cls, data):
        return json.loads(data)


class Packed(PacketSerializer):
    binary = True

    @classmethod
    def encode(cls, obj):
        return b"P" + msgpack.packb(obj)

    @classmethod
    def decode(cls, data):
        return msgpack.unpackb(data[1:])


async def test_a_packet_serializer_encodes_once_per_publish_not_per_subscriber():
    app = App()

    def room(path: str, serializer: type) -> type:
        @websocket_route(path)
        class Room(WebSocket, using=serializer):
            async def on_connect(self, request) -> None:
                self.subscribe("t")

            async def receive_any(self, message: dict) -> None:
                pass

        return Room

    app.include(room("/upper", Upper), room("/packed", Packed), room("/json", JSONSerializer))
    value = {"k": 1}
    async with app.test_server() as server:
        up = [await websockets.connect(server.url("/upper")) for _ in range(3)]
        pk = await websockets.connect(server.url("/packed"))
        js = await websockets.connect(server.url("/json"))
        await eventually(lambda: app.subscriber_count("t") == 5)
        Upper.encodes = 0
        assert app.publish("t", value) == 5
        assert Upper.encodes == 1
        for c in up:
            assert json.loads(await asyncio.wait_for(c.recv(), 5)) == {"K": 1}
        got = await asyncio.wait_for(pk.recv(), 5)
        assert isinstance(got, bytes) and msgpack.unpackb(got[1:]) == value
        assert json.loads(await asyncio.wait_for(js.recv(), 5)) == value
        # excluded or unsubscribed: no encoding for nobody
        Upper.encodes = 0
        assert app.publish("json-only", value) == 0
        assert Upper.encodes == 0
        # the serializer raises: its exception, and nothing is sent to anyone
        with pytest.raises(ValueError, match="cannot encode"):
            app.publish("t", {"fail": True})
        assert app.publish("t", "after") == 5
        for c in [*up, pk, js]:
            assert await asyncio.wait_for(c.recv(), 5) == "after"
        for c in [*up, pk, js]:
            await c.close()
