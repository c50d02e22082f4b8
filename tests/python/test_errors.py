"""One error taxonomy: the core's categories become the same exception classes
in every language; the connection rules (fail, invalid, the queued-message
bound, drain) through the binding, with real clients on 127.0.0.1."""

from __future__ import annotations

import asyncio

import pytest
import websockets

import wirecore
from wirecore import App, WirecoreError, _native
from wirecore._runtime import Driver

from conftest import eventually

CLASSES = {
    "internal": "InternalError",
    "config": "ConfigError",
    "protocol": "ProtocolError",
    "too_big": "MessageTooBigError",
    "deserialize": "DeserializationError",
    "serialize": "SerializationError",
    "validation": "ValidationError",
    "unknown_message": "UnknownMessageError",
    "closed": "ConnectionClosedError",
    "backpressure": "BackpressureError",
    "handler": "HandlerError",
}


def test_generated_constants_and_classes_match_the_core_list():
    rows = _native.errors()
    assert len(rows) == 23
    for name, code, category, cls in rows:
        assert getattr(_native, name) == code
        assert CLASSES[category] == cls
        klass = getattr(wirecore, cls)
        assert klass is getattr(_native, cls)
        assert issubclass(klass, WirecoreError)
        assert _native.strerror(code)[0] == name
    assert {r[3] for r in rows} == set(CLASSES.values())
    for retired in ("EHANDSHAKE", "ETIMEDOUT", "ESEND"):
        assert not hasattr(_native, retired)
    assert _native.ETOOBIG == -9 and _native.ECODEC == -25  # numbering is stable


def test_connection_closed_is_an_alias_of_connection_closed_error():
    assert wirecore.ConnectionClosed is wirecore.ConnectionClosedError


def test_serialize_and_deserialize_classes_from_the_codecs():
    with pytest.raises(wirecore.SerializationError) as e:
        _native.encode(float("nan"))
    assert e.value.code == _native.ESERIALIZE and e.value.name == "ESERIALIZE"
    with pytest.raises(wirecore.DeserializationError):
        _native.decode(b"{", _native.CODEC_JSON)


def test_config_errors_for_routes_and_schemas():
    server = _native.Server()
    with pytest.raises(wirecore.ConfigError) as e:
        server.add_endpoint("/a/{x", object())
    assert e.value.name == "EROUTE"
    with pytest.raises(wirecore.ConfigError) as e:
        server.add_endpoint("/b", object(), codec=_native.CODEC_JSON, message_schemas=['{"type": 5}'])
    assert e.value.name == "ESCHEMA"


def _recording_app(**options):
    app = App()
    seen: list[tuple[str, str]] = []

    @app.websocket("/m", message_schema={"type": "integer"}, **options)
    async def numbers(message) -> dict:
        return {"got": message}

    @numbers.on_error
    def record(exc: WirecoreError) -> dict:
        seen.append((type(exc).__name__, exc.name))
        return {"class": type(exc).__name__}

    return app, seen


async def test_message_errors_raise_their_category_class_through_a_real_client():
    app, seen = _recording_app(max_message_size=64)
    async with app.test_server() as server:
        async with websockets.connect(server.url("/m")) as c:
            await c.send('"text"')
            assert await c.recv() == '{"class":"ValidationError"}'
            await c.send("not json")
            assert await c.recv() == '{"class":"DeserializationError"}'
            await c.send(b"\x01")
            assert await c.recv() == '{"class":"DeserializationError"}'
            await c.send("1" * 100)
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await c.recv()
            assert closed.value.rcvd.code == 1009
    assert seen == [
        ("ValidationError", "EVALIDATION"),
        ("DeserializationError", "EDESERIALIZE"),
        ("DeserializationError", "ECODEC"),
        ("MessageTooBigError", "ETOOBIG"),
    ]


# ---- the binding's rule calls on a bare native server ------------------------


class Handler:
    """A native endpoint handler that records what the core calls."""

    def __init__(self, on_message=None, error_verdict=False):
        self.conns: list = []
        self.messages: list = []
        self.errors: list = []
        self.drains = 0
        self.closes: list = []
        self.on_message = on_message
        self.error_verdict = error_verdict

    def _on_connect(self, conn):
        self.conns.append(conn)
        return 0

    def _on_message(self, conn, payload, index, binary):
        self.messages.append(payload)
        if self.on_message is not None:
            self.on_message(conn, payload)

    def _on_close(self, conn, code, reason):
        self.closes.append(code)

    def _on_error(self, conn, exc):
        self.errors.append(exc)
        return self.error_verdict

    def _on_drain(self, conn):
        self.drains += 1


class Native:
    def __init__(self, handler, **options):
        self.server = _native.Server()
        self.server.add_endpoint("/r", handler, **options)
        self.server.listen("127.0.0.1", 0)
        self.driver = Driver(self.server, asyncio.get_running_loop())
        self.url = f"ws://127.0.0.1:{self.server.port()}/r"

    async def stop(self):
        self.server.shutdown(200)
        self.driver.kick()
        await asyncio.wait_for(self.driver.done, 5)


async def test_fail_reports_the_exception_itself_then_closes_1011():
    boom = RuntimeError("boom")
    h = Handler(on_message=lambda conn, p: h.results.append(conn.fail(boom)))
    h.results = []
    srv = Native(h)
    try:
        async with websockets.connect(srv.url) as c:
            await c.send("go")
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await c.recv()
            assert closed.value.rcvd.code == 1011
            assert closed.value.rcvd.reason == "internal error"
        assert h.errors == [boom] and h.results == [False]
    finally:
        await srv.stop()


async def test_fail_handled_by_on_error_keeps_the_connection_open():
    h = Handler(on_message=lambda conn, p: (h.results.append(conn.fail(ValueError(p))),
                                            conn.send_text("still here")),
                error_verdict=True)
    h.results = []
    srv = Native(h)
    try:
        async with websockets.connect(srv.url) as c:
            await c.send("x")
            assert await c.recv() == "still here"
        assert h.results == [True]
        assert h.conns[0].fail() is False  # closed: nothing to do
    finally:
        await srv.stop()


async def test_exception_escaping_the_message_callback_goes_through_fail():
    def raise_it(conn, p):
        raise KeyError(p)

    h = Handler(on_message=raise_it)
    srv = Native(h)
    try:
        async with websockets.connect(srv.url) as c:
            await c.send("k")
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await c.recv()
            assert closed.value.rcvd.code == 1011
        assert [type(e) for e in h.errors] == [KeyError]
    finally:
        await srv.stop()


async def test_invalid_applies_the_endpoint_policy_for_a_host_codec():
    def refuse(conn, p):
        exc = wirecore.ValidationError("must be a number")
        exc.path, exc.keyword = "/n", "type"
        h.results.append(conn.invalid(exc))

    h = Handler(on_message=refuse)
    h.results = []
    srv = Native(h)  # a RAW endpoint: the reply is JSON text
    try:
        async with websockets.connect(srv.url) as c:
            await c.send("x")
            assert await c.recv() == (
                '{"type":"error","error":"validation_failed","path":"/n","keyword":"type",'
                '"message":"must be a number"}'
            )
        assert h.results == [False]
        assert type(h.errors[0]) is wirecore.ValidationError
        with pytest.raises(TypeError):
            h.conns[0].invalid(RuntimeError("not a message error"))
    finally:
        await srv.stop()


async def test_held_messages_stop_reading_at_max_queued_messages():
    h = Handler(on_message=lambda conn, p: conn.hold())
    srv = Native(h, max_queued_messages=2)
    try:
        async with websockets.connect(srv.url) as c:
            await c.send("1")
            await eventually(lambda: len(h.messages) == 1)
            await c.send("2")
            await eventually(lambda: len(h.messages) == 2)
            for i in range(3, 8):
                await c.send(str(i))
            await asyncio.sleep(0.2)
            assert len(h.messages) == 2  # the core stopped reading at the bound
            conn = h.conns[0]
            assert conn.queued == 2
            conn.consumed(1)  # 1 = half of 2: reading resumes
            srv.driver.kick()
            await eventually(lambda: len(h.messages) > 2)
            conn.consumed(conn.queued)
            srv.driver.kick()
            await eventually(lambda: len(h.messages) == 7)
            with pytest.raises(ValueError):
                conn.consumed(conn.queued + 1)
        assert h.messages == [str(i) for i in range(1, 8)]
    finally:
        await srv.stop()


async def test_drain_follows_a_false_writable():
    chunk = b"x" * 65536

    def flood(conn, p):
        for _ in range(64):
            conn.send_bytes(chunk)
            if not conn.writable():
                h.results.append("waiting")
                return

    h = Handler(on_message=flood)
    h.results = []
    srv = Native(h, send_high_water=16384, max_backpressure=64 << 20)
    try:
        # uncompressed, so the repetitive chunks fill the socket as sent
        async with websockets.connect(srv.url, max_size=None, compression=None) as c:
            await c.send("go")
            await eventually(lambda: h.results == ["waiting"])
            await eventually(lambda: h.drains == 1, timeout=5)
            assert h.conns[0].writable()
        assert h.drains == 1
    finally:
        await srv.stop()


def test_max_queued_messages_is_an_app_option():
    app = App()

    @app.websocket("/q", max_queued_messages=8)
    async def q(message: str) -> str:
        return message

    with pytest.raises(TypeError):
        app.websocket("/bad", max_queue=8)(lambda m: m)
    assert _native.DEFAULT_MAX_QUEUED == 64


async def test_a_send_after_close_raises_connection_closed_error():
    h = Handler()
    srv = Native(h)
    try:
        async with websockets.connect(srv.url) as c:
            await eventually(lambda: len(h.conns) == 1)
            await c.close()
        await eventually(lambda: h.closes == [1000])
        with pytest.raises(wirecore.ConnectionClosedError) as e:
            h.conns[0].send_text("late")
        assert type(e.value).__name__ == "ConnectionClosedError" and e.value.name == "ECLOSED"
    finally:
        await srv.stop()
