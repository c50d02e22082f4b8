"""Topic history: app.topic(pattern, history=N, ttl=s), envelopes with positions,
and ws.subscribe(topic, since=position), against real `websockets` clients on
127.0.0.1: recovery from on_connect (before the upgrade) and from an open
connection, truncation reports, MessagePack endpoints, limits, and a client
reconnecting 20 times while publications keep coming."""

from __future__ import annotations

import asyncio
import json
import re

import msgpack
import pytest
import websockets

from wirecore import App, ConfigError, Request, SerializationError, WebSocket, WebSocketConnection
from wirecore.serializers import MessagePackSerializer

POSITION = re.compile(r"^[0-9a-f]{16}:[0-9]+$")


def history_app(history: int = 1000, ttl: float | None = None, broker: str | None = None) -> App:
    """/room/{name}?since=P subscribes in on_connect and sends what the
    subscribe found first; /late/{name} subscribes once open, when the client
    sends its position; /mp/{name}?since=P is a MessagePack endpoint."""
    app = App(broker=broker)
    app.topic("room:*", history=history, ttl=ttl)

    @app.websocket("/room/{name}")
    class Room(WebSocket):
        async def on_connect(self, request: Request) -> None:
            since = request.query_params.get("since", "")
            rec = self.subscribe(self.path_params["name"], since=since)
            await self.send({"type": "recovery", **rec})

        async def receive_any(self, message: dict) -> None:
            pass

    @app.websocket("/late/{name}")
    async def late(ws: WebSocketConnection, name: str) -> None:
        since = await ws.receive_text()
        rec = ws.subscribe(name, since=since)
        await ws.send_json({"type": "recovery", **rec})
        async for _ in ws:
            pass

    @app.websocket("/mp/{name}")
    class MP(WebSocket, using=MessagePackSerializer):
        async def on_connect(self, request: Request) -> None:
            self.subscribe(self.path_params["name"], since=request.query_params.get("since", ""))

        async def receive_any(self, message: dict) -> None:
            pass

    return app


async def recv(c: websockets.ClientConnection) -> dict:
    return json.loads(await asyncio.wait_for(c.recv(), 5))


async def join(url: str) -> tuple[websockets.ClientConnection, dict, list[dict]]:
    """Connect to /room/...: the replay (or the truncated report) leaves at
    the upgrade, before what on_connect sent; returns the client, the
    recovery on_connect sent and the messages before it."""
    c = await websockets.connect(url)
    before = []
    while (m := await recv(c)).get("type") != "recovery":
        before.append(m)
    return c, m, before


async def test_publications_reach_subscribers_in_an_envelope_with_their_position():
    app = history_app()
    async with app.test_server() as server:
        c, rec, before = await join(server.url("/room/room:1"))
        assert before == []
        assert rec["type"] == "recovery" and rec["recovered"] is True and rec["reason"] is None
        assert POSITION.match(rec["position"]) and rec["position"].endswith(":0")
        epoch = rec["position"].split(":")[0]
        app.publish("room:1", {"hello": "world"})
        app.publish("room:1", "text is a string")
        assert await recv(c) == {"topic": "room:1", "offset": f"{epoch}:1", "data": {"hello": "world"}}
        assert await recv(c) == {"topic": "room:1", "offset": f"{epoch}:2", "data": "text is a string"}
        await c.close()


async def test_a_client_coming_back_gets_exactly_what_it_missed_then_live_ones():
    app = history_app()
    async with app.test_server() as server:
        c, _, _ = await join(server.url("/room/room:a"))
        for i in range(1, 6):
            app.publish("room:a", {"n": i})
        got = [await recv(c) for _ in range(5)]
        last = got[2]["offset"]  # the client saw 1..3, then went away
        await c.close()
        for i in range(6, 9):
            app.publish("room:a", {"n": i})  # published while it was away
        c, rec, before = await join(server.url(f"/room/room:a?since={last}"))
        assert rec["recovered"] is True and rec["replayed"] == 5
        app.publish("room:a", {"n": 9})
        assert [m["data"]["n"] for m in before] + [(await recv(c))["data"]["n"]] == [4, 5, 6, 7, 8, 9]
        await c.close()


async def test_with_redis_a_client_recovers_on_another_server_from_the_shared_history(redis_url):
    a, b = history_app(broker=redis_url), history_app(broker=redis_url)
    async with a.test_server() as sa, b.test_server() as sb:
        c, _, _ = await join(sa.url("/room/room:x"))
        for i in range(1, 4):
            a.publish("room:x", {"n": i})  # delivered when Redis announces it
        got = [await recv(c) for _ in range(3)]
        assert [m["offset"].split(":")[1] for m in got] == ["1", "2", "3"]
        await c.close()
        b.publish("room:x", {"n": 4})  # the same sequence from the other server
        d, rec, before = await join(sb.url(f"/room/room:x?since={got[0]['offset']}"))
        assert rec["recovered"] is True and rec["replayed"] == 3, rec
        assert [(m["offset"], m["data"]["n"]) for m in before] == [
            (got[0]["offset"].split(":")[0] + f":{n}", n) for n in (2, 3, 4)]
        a.publish("room:x", {"n": 5})
        assert (await recv(d))["data"]["n"] == 5
        await d.close()


async def test_subscribing_on_an_open_connection_replays_before_live():
    app = history_app()
    async with app.test_server() as server:
        for i in range(1, 4):
            app.publish("room:l", {"n": i})
        c, rec, _ = await join(server.url("/room/room:l"))
        first = rec["position"]
        epoch = first.split(":")[0]
        late = await websockets.connect(server.url("/late/room:l"))
        await late.send(f"{epoch}:1")
        got = [await recv(late) for _ in range(3)]  # replayed as it subscribes, then its send
        assert [m["data"]["n"] for m in got[:2]] == [2, 3]
        assert got[2]["recovered"] is True and got[2]["replayed"] == 2
        await c.close()
        await late.close()


async def test_lost_positions_are_reported_to_the_handler_and_to_the_client():
    app = history_app(history=3)
    async with app.test_server() as server:
        for i in range(1, 11):
            app.publish("room:t", {"n": i})  # keeps 8, 9, 10
        c, rec, _ = await join(server.url("/room/room:t"))
        current = rec["position"]
        epoch = current.split(":")[0]
        await c.close()
        cases = [(f"{epoch}:5", "too_old"), ("0123456789abcdef:5", "epoch"), ("nonsense", "invalid")]
        for seq, (since, reason) in enumerate(cases, start=10):
            current = f"{epoch}:{seq}"
            c, rec, before = await join(server.url(f"/room/room:t?since={since}"))
            assert rec["recovered"] is False and rec["reason"] == reason and rec["position"] == current
            assert before == [{"topic": "room:t", "type": "truncated", "offset": current}]
            app.publish("room:t", {"n": "live"})  # the subscription started all the same
            assert (await recv(c))["data"] == {"n": "live"}
            await c.close()


async def test_msgpack_subscribers_get_the_envelope_in_msgpack():
    app = history_app()
    async with app.test_server() as server:
        app.publish("room:m", {"n": 1})
        app.publish("room:m", {"n": 2})
        c, rec, _ = await join(server.url("/room/room:m"))
        epoch = rec["position"].split(":")[0]
        await c.close()
        m = await websockets.connect(server.url(f"/mp/room:m?since={epoch}:1"))
        app.publish("room:m", {"n": 3})
        got = [msgpack.unpackb(await asyncio.wait_for(m.recv(), 5)) for _ in range(2)]
        assert got == [
            {"topic": "room:m", "offset": f"{epoch}:2", "data": {"n": 2}},
            {"topic": "room:m", "offset": f"{epoch}:3", "data": {"n": 3}},
        ]
        await m.close()


async def test_bad_configuration_and_topics_without_history_are_config_errors():
    app = App()
    for bad in (0, -1, 1_000_001, 2.5, True):
        with pytest.raises(ConfigError):
            app.topic("x", history=bad)
    for bad in (0, -1, "1", True):
        with pytest.raises(ConfigError):
            app.topic("x", history=1, ttl=bad)
    with pytest.raises(ConfigError):
        app.topic("", history=1)
    app.topic("x", history=1)
    with pytest.raises(ConfigError):
        app.topic("x", history=2)
    errors: list[str] = []

    @app.websocket("/s")
    async def s(ws: WebSocketConnection) -> None:
        try:
            ws.subscribe("no-history", since="")
        except ConfigError as err:
            errors.append(str(err))
        try:
            ws.subscribe("x", since=5)  # type: ignore[arg-type]
        except TypeError as err:
            errors.append(str(err))
        await ws.send_text("done")

    async with app.test_server() as server:
        app.topic("y*", history=1)  # while running: applies at once
        async with websockets.connect(server.url("/s")) as c:
            assert await asyncio.wait_for(c.recv(), 5) == "done"
        assert len(errors) == 2 and "no history" in errors[0] and "since must be str" in errors[1]
        with pytest.raises(SerializationError):
            app.publish("y1", b"\x00")  # binary cannot be kept as JSON


async def test_ttl_drops_old_publications():
    app = history_app(ttl=0.1)
    async with app.test_server() as server:
        c, _, _ = await join(server.url("/room/room:e"))
        app.publish("room:e", {"n": 1})
        first = (await recv(c))["offset"]
        await asyncio.sleep(0.2)
        app.publish("room:e", {"n": 2})
        assert (await recv(c))["data"] == {"n": 2}
        await c.close()
        c, rec, before = await join(server.url(f"/room/room:e?since={first}"))
        assert rec["recovered"] is True  # 2 is still kept
        assert [m["data"] for m in before] == [{"n": 2}]
        await c.close()
        epoch = first.split(":")[0]
        c, rec, before = await join(server.url(f"/room/room:e?since={epoch}:0"))
        assert rec["recovered"] is False and rec["reason"] == "too_old"  # 1 expired
        assert before[0]["type"] == "truncated"
        await c.close()


async def test_a_client_reconnecting_20_times_during_steady_publishing_sees_each_once_in_order():
    app = history_app(history=10_000)
    total = 2000
    async with app.test_server() as server:
        async def publisher() -> None:
            for i in range(1, total + 1):
                app.publish("room:s", {"n": i})
                if i % 10 == 0:
                    await asyncio.sleep(0.005)  # a steady 2,000 per second

        seen: list[int] = []
        truncated = 0
        position = ""
        task = asyncio.create_task(publisher())
        for round_ in range(21):
            c, rec, before = await join(server.url(f"/room/room:s?since={position}"))
            if round_ > 0:
                assert rec["recovered"] is True, rec
            pending = list(before)
            got = 0
            while (round_ == 20 or got < 80) and not (seen and seen[-1] == total):
                m = pending.pop(0) if pending else await recv(c)
                if m.get("type") == "truncated":
                    truncated += 1
                    continue
                seen.append(m["data"]["n"])
                position = m["offset"]
                got += 1
            await c.close()
        reconnected_during_publishing = not task.done()
        await task
        assert reconnected_during_publishing
        first = seen[0]
        assert seen == list(range(first, total + 1)), "gap, duplicate or reordering"
        assert truncated == 0
