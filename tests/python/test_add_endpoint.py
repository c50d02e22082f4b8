"""_native.Server.add_endpoint's keyword options: each reaches the core, and
a bad one is refused with a clear error before anything is registered."""

from __future__ import annotations

import asyncio

import pytest
import websockets

from wirecore import _native
from wirecore._runtime import Driver


class Echo:
    def _on_message(self, conn, payload, index, binary):
        conn.send_message(payload)


@pytest.mark.parametrize(
    ("options", "error", "text"),
    [
        ({"bogus": 1}, TypeError, "unexpected keyword argument 'bogus'"),
        ({"codec": "json"}, TypeError, "integer"),
        ({"idle_timeout_ms": 1.5}, TypeError, "integer"),
        ({"max_message_size": 2**70}, OverflowError, "int"),
        ({"codec": 2**40}, OverflowError, "codec"),
        ({"response_schema": 5}, TypeError, "response_schema must be str or None"),
        ({"response_schema": "{}\0"}, ValueError, "embedded null"),
        ({"subprotocols": [1]}, TypeError, "sequence of str"),
    ],
)
def test_bad_options_are_refused(options, error, text):
    server = _native.Server()
    with pytest.raises(error, match=text):
        server.add_endpoint("/x", Echo(), **options)


def test_pattern_and_handler_are_required():
    with pytest.raises(TypeError):
        _native.Server().add_endpoint("/x")  # type: ignore[call-arg]


async def test_options_reach_the_core():
    server = _native.Server()
    server.add_endpoint("/r", Echo(), max_message_size=8, subprotocols=["a", "b"],
                        idle_timeout_ms=0xFFFFFFFF, response_schema=None, message_schemas=None)
    server.listen("127.0.0.1", 0)
    driver = Driver(server, asyncio.get_running_loop())
    try:
        url = f"ws://127.0.0.1:{server.port()}/r"
        async with websockets.connect(url, subprotocols=["b"]) as c:
            assert c.subprotocol == "b"
            await c.send("short")
            assert await c.recv() == "short"
            await c.send("longer than eight")
            with pytest.raises(websockets.ConnectionClosed) as e:
                await c.recv()
            assert e.value.rcvd.code == 1009
    finally:
        server.shutdown(200)
        driver.kick()
        await asyncio.wait_for(driver.done, 5)
