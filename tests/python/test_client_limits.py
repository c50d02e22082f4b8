"""Per-client limits through the package, against a real server on 127.0.0.1
and the `websockets` client bound to other loopback addresses (127.0.0.x):
connections and upgrades per address (429 + Retry-After), message and byte
rates (drop or close 1008, exact counts), X-Forwarded-For only from trusted
proxies, and the Origin allow-list (403)."""

from __future__ import annotations

import asyncio

import pytest
import websockets

from wirecore import App, ConfigError, Request


def connect(running, path: str, host: str = "127.0.0.2", **kw):
    """A websockets client whose socket is bound to `host`."""
    return websockets.connect(running.url(path), local_addr=(host, 0), **kw)


async def refused(running, path: str, host: str, **kw):
    """The status and headers of a refused upgrade."""
    with pytest.raises(websockets.InvalidStatus) as info:
        async with connect(running, path, host, **kw):
            pass
    return info.value.response.status_code, info.value.response.headers


def echo_app(**server) -> App:
    app = App(**server)

    @app.websocket("/echo")
    async def echo(message: str) -> str:
        return message

    return app


async def test_per_address_limit_refuses_the_next_with_429_while_others_connect():
    app = echo_app(max_connections_per_address=2)
    async with app.test_server() as running:
        async with connect(running, "/echo") as a, connect(running, "/echo"):
            status, headers = await refused(running, "/echo", "127.0.0.2")
            assert status == 429
            assert headers["Retry-After"] == "1"
            async with connect(running, "/echo", "127.0.0.3") as c:
                await c.send('"other address"')
                assert await c.recv() == '"other address"'
            await a.send('"a"')
            assert await a.recv() == '"a"'
        # both closed: the address has its places back
        async with connect(running, "/echo") as again:
            await again.send('"back"')
            assert await again.recv() == '"back"'


async def test_handshake_rate_allows_the_burst_then_429():
    app = echo_app(handshake_rate=1, handshake_burst=2)
    async with app.test_server() as running:
        for _ in range(2):
            async with connect(running, "/echo", "127.0.0.4"):
                pass
        status, _ = await refused(running, "/echo", "127.0.0.4")
        assert status == 429
        async with connect(running, "/echo", "127.0.0.5"):
            pass


async def test_message_rate_drops_exactly_the_excess():
    app = App()
    seen: list[str] = []

    @app.websocket("/r", message_rate=1, message_burst=3)
    async def r(message: str) -> str:
        seen.append(message)
        return message

    async with app.test_server() as running:
        async with connect(running, "/r") as c:
            for m in "abcdef":
                await c.send(f'"{m}"')
            await asyncio.sleep(1.1)  # one token back
            await c.send('"z"')
            got = [await asyncio.wait_for(c.recv(), 5) for _ in range(4)]
            assert got == ['"a"', '"b"', '"c"', '"z"']
    assert seen == ["a", "b", "c", "z"]


async def test_message_rate_close_sends_1008_rate_limit():
    app = App()

    @app.websocket("/r", message_rate=1, message_burst=2, rate_limit_action="close")
    async def r(message: str) -> str:
        return message

    async with app.test_server() as running:
        async with connect(running, "/r") as c:
            for m in "abcd":
                await c.send(f'"{m}"')
            assert [await c.recv(), await c.recv()] == ['"a"', '"b"']
            with pytest.raises(websockets.ConnectionClosed):
                await asyncio.wait_for(c.recv(), 5)
        assert c.close_code == 1008
        assert c.close_reason == "rate limit"


async def test_byte_rate_counts_payload_bytes():
    app = App()

    @app.websocket("/b", byte_rate=10)
    async def b(message: str) -> str:
        return message

    async with app.test_server() as running:
        async with connect(running, "/b") as c:
            await c.send('"1234"')  # 6 bytes
            await c.send('"12"')  # 4: the bucket is empty
            await c.send('"1"')  # 3: dropped
            await c.send('"' + "x" * 20 + '"')  # over the burst: never passes
            await asyncio.sleep(0.4)  # 4 bytes back
            await c.send('"2"')
            got = [await asyncio.wait_for(c.recv(), 5) for _ in range(3)]
            assert got == ['"1234"', '"12"', '"2"']


async def test_forwarded_for_is_honoured_only_from_trusted_proxies():
    app = App(trusted_proxies=["127.0.0.6", "10.0.0.0/8"], max_connections_per_address=1)
    clients: list[str] = []

    @app.websocket("/who")
    async def who(message: str) -> str:
        return message

    @who.on_connect
    async def joined(request: Request) -> None:
        clients.append(request.client[0])

    async with app.test_server() as running:
        xff = {"X-Forwarded-For": "198.51.100.1, 203.0.113.9, 10.1.2.3"}
        async with connect(running, "/who", "127.0.0.6", additional_headers=xff):
            # the same forwarded client again: over its limit
            status, _ = await refused(running, "/who", "127.0.0.6", additional_headers=xff)
            assert status == 429
            # an untrusted peer's header is ignored
            async with connect(running, "/who", "127.0.0.7", additional_headers=xff):
                pass
            fwd = {"Forwarded": 'for="[2001:db8::1]:4711";proto=https'}
            async with connect(running, "/who", "127.0.0.6", additional_headers=fwd):
                pass
    assert clients == ["203.0.113.9", "127.0.0.7", "2001:db8::1"]


async def test_origin_allow_list_answers_403():
    app = App()

    @app.websocket("/o", allowed_origins=["https://app.example"])
    async def o(message: str) -> str:
        return message

    async with app.test_server() as running:
        status, _ = await refused(running, "/o", "127.0.0.2", origin="https://evil.example")
        assert status == 403
        async with connect(running, "/o", origin="https://app.example") as c:
            await c.send('"ok"')
            assert await c.recv() == '"ok"'


def test_bad_limits_are_config_errors():
    with pytest.raises(ConfigError):
        App(max_connections_per_address=-1)
    with pytest.raises(ConfigError):
        App(handshake_rate=1.5)
    with pytest.raises(ConfigError):
        App(trusted_proxies="10.0.0.1")
    with pytest.raises(ConfigError):
        App(trusted_proxies=["not-an-address"])._build()
    for opts in ({"message_rate": -1}, {"rate_limit_action": "ignore"}, {"byte_burst": "10"}):
        app = App()
        app.websocket("/x", **opts)(lambda m: m)
        with pytest.raises(ConfigError):
            app._build()
