"""The session rules of docs/sessions.md, against real `websockets` clients:
flow control of awaited sends, the backpressure limit of sends that are not
awaited, and the bounded inbox of a stream handler."""

from __future__ import annotations

import asyncio
import json
import os

import pytest
import websockets

from wirecore import App, ValidationError, WebSocketConnection

MESSAGES = 2000
SIZE = 4096


def rss_bytes() -> int:
    """This process's resident set size, from /proc."""
    with open(f"/proc/{os.getpid()}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS in /proc/self/status")


def push_app(**options: int) -> App:
    app = App()

    @app.websocket("/push", **options)
    async def push(ws: WebSocketConnection) -> None:
        await ws.receive()
        filler = "x" * (SIZE - 5)
        for i in range(MESSAGES):
            await ws.send_text(f"{i:05d}{filler}")
        await ws.send_text("done")
        async for _ in ws:
            pass

    @app.websocket("/flood")
    async def flood(ws: WebSocketConnection) -> None:
        await ws.receive()
        filler = "y" * SIZE
        for _ in range(MESSAGES * 4):
            ws.send_text(filler)  # not awaited: nothing waits for the peer

    return app


@pytest.mark.parametrize("options", [{}, {"max_backpressure": 64 << 20}], ids=["default", "large-limit"])
async def test_awaited_sends_reach_a_slow_reader_in_full(options):
    async with push_app(**options).test_server() as server:
        async with websockets.connect(server.url("/push"), max_size=None) as c:
            await c.send("go")
            for i in range(MESSAGES):
                message = await asyncio.wait_for(c.recv(), 10)
                assert message[:5] == f"{i:05d}" and len(message) == SIZE
                if i % 20 == 0:
                    await asyncio.sleep(0.002)  # a reader a little slower than the sender
            assert await asyncio.wait_for(c.recv(), 10) == "done"


async def test_sends_not_awaited_past_max_backpressure_close_with_1008():
    async with push_app().test_server() as server:
        # uncompressed, so the repetitive messages fill the socket as sent
        async with websockets.connect(server.url("/flood"), max_size=None, compression=None) as c:
            await c.send("go")
            await asyncio.sleep(0.5)  # not reading: the server's queue fills up
            received = 0
            try:
                while True:
                    await asyncio.wait_for(c.recv(), 10)
                    received += 1
            except websockets.ConnectionClosed as closed:
                assert closed.rcvd is not None and closed.rcvd.code == 1008
            assert received < MESSAGES * 4


async def test_a_flooded_slow_stream_handler_stays_bounded_and_gets_everything_in_order():
    app = App()
    total = 100_000
    got: list[int] = []

    @app.websocket("/slow")
    async def slow(ws: WebSocketConnection) -> None:
        await asyncio.sleep(1)  # the peer floods meanwhile
        async for message in ws:
            got.append(int(message[:6]))
            if len(got) % 1000 == 0:
                await asyncio.sleep(0.005)  # a consumer slower than its peer
            if len(got) == total:
                await ws.send_text("all")

    async with app.test_server() as server:
        async with websockets.connect(server.url("/slow")) as c:
            base = rss_bytes()
            peak = base
            filler = "f" * 1018
            for i in range(total):
                await c.send(f"{i:06d}{filler}")  # 1 KiB each
                if i % 5000 == 0:
                    peak = max(peak, rss_bytes())
            assert await asyncio.wait_for(c.recv(), 60) == "all"
            peak = max(peak, rss_bytes())
    assert got == list(range(total))
    assert peak - base < 64 * 1024 * 1024, f"RSS grew by {(peak - base) >> 20} MiB"


def error_app() -> App:
    app = App()

    async def echo_until_boom(ws: WebSocketConnection) -> None:
        async for message in ws:
            if message == "boom":
                raise ValueError("boom")
            await ws.send_text(message)

    handled = app.websocket("/handled")(echo_until_boom)
    app.websocket("/bare")(echo_until_boom)

    @handled.on_error
    def on_value_error(exc: ValueError) -> str:
        return f"handled {exc}"

    @app.websocket("/typed")
    def typed(message: dict) -> dict:
        return message

    @typed.on_error
    def broken(exc: ValidationError) -> None:
        raise RuntimeError("the error handler itself fails")

    return app


async def test_a_stream_exception_goes_to_the_error_handler_then_closes_with_1000():
    async with error_app().test_server() as server:
        async with websockets.connect(server.url("/handled")) as c:
            await c.send("a")
            assert await c.recv() == "a"
            await c.send("boom")
            assert await c.recv() == "handled boom"
            await asyncio.wait_for(c.wait_closed(), 5)
            assert c.close_code == 1000


async def test_an_unhandled_exception_closes_only_its_connection_with_1011():
    async with error_app().test_server() as server:
        async with websockets.connect(server.url("/bare")) as a, \
                websockets.connect(server.url("/bare")) as b:
            await a.send("boom")
            await asyncio.wait_for(a.wait_closed(), 5)
            assert a.close_code == 1011
            await b.send("still here")
            assert await b.recv() == "still here"


async def test_an_error_handler_that_raises_leaves_the_invalid_message_to_the_policy():
    async with error_app().test_server() as server:
        async with websockets.connect(server.url("/typed")) as c:
            await c.send("5")
            reply = json.loads(await c.recv())
            assert reply["type"] == "error" and reply["error"] == "validation_failed"
            await c.send('{"n": 1}')
            assert json.loads(await c.recv()) == {"n": 1}


async def test_sends_and_close_made_before_the_upgrade_leave_right_after_it():
    app = App()

    @app.websocket("/early")
    async def early(ws: WebSocketConnection) -> None:
        async for _ in ws:
            pass

    @early.on_connect
    def connect(ws: WebSocketConnection) -> None:
        ws.send_text("first")
        ws.send_json({"second": 2})
        ws.close(4000, "done early")

    async with app.test_server() as server:
        async with websockets.connect(server.url("/early")) as c:
            assert await c.recv() == "first"
            assert json.loads(await c.recv()) == {"second": 2}
            await asyncio.wait_for(c.wait_closed(), 5)
            assert (c.close_code, c.close_reason) == (4000, "done early")
