"""Serializers: the C codecs, and PacketSerializer subclasses written in Python
(decoded in Python, then validated and dispatched by the core's validator)."""

from __future__ import annotations

import json
from typing import Literal, TypedDict

import msgpack
import pytest

from wirecore import (
    App,
    DeserializationError,
    UnknownMessageError,
    ValidationError,
    WebSocket,
    _native,
)
from wirecore.serializers import JSONSerializer, MessagePackSerializer, PacketSerializer


class PyJSON(PacketSerializer):
    binary = False

    @classmethod
    def encode(cls, obj):
        return json.dumps(obj, separators=(",", ":"))

    @classmethod
    def decode(cls, data):
        return json.loads(data)


class PyMsgpack(PacketSerializer):
    binary = True

    @classmethod
    def encode(cls, obj):
        return msgpack.packb(obj)

    @classmethod
    def decode(cls, data):
        return msgpack.unpackb(data)


class Add(TypedDict):
    op: Literal["add"]
    a: int
    b: int


class Neg(TypedDict):
    op: Literal["neg"]
    a: int


class Calc(WebSocket, using=PyJSON):
    def receive_add(self, m: Add) -> int:
        return m["a"] + m["b"]

    def receive_neg(self, m: Neg) -> int:
        return -m["a"]


class CalcHandled(WebSocket, using=PyMsgpack):
    def receive_add(self, m: Add) -> int:
        return m["a"] + m["b"]

    def receive_neg(self, m: Neg) -> str:
        return -m["a"]  # type: ignore[return-value]  # breaks its own annotation

    def on_bad_error(self, exc: ValidationError | DeserializationError) -> dict:
        return {"error": exc.__class__.__name__, "path": exc.path}

    def on_unknown_error(self, exc: UnknownMessageError) -> dict:
        return {"error": "unknown"}


def make_app() -> App:
    app = App()
    app.websocket("/calc")(Calc)
    app.websocket("/calc2")(CalcHandled)

    @app.websocket("/fn", using=PyJSON)
    async def fn(m: Add) -> dict:
        return {"sum": m["a"] + m["b"]}

    return app


async def test_python_serializer_dispatches_with_the_core_dispatcher():
    app = make_app()
    async with app.test_client() as client:
        async with client.websocket("/calc") as ws:
            await ws.send_text('{"op": "add", "a": 2, "b": 3}')
            assert await ws.receive_text() == "5"
            await ws.send_text('{"op": "neg", "a": 2}')
            assert await ws.receive_text() == "-2"


async def test_python_serializer_default_error_reply_keeps_connection_open():
    app = make_app()
    async with app.test_client() as client:
        async with client.websocket("/calc") as ws:
            await ws.send_text("{oops")
            reply = json.loads(await ws.receive_text())
            assert reply["type"] == "error"
            await ws.send_text('{"op": "mul", "a": 1}')
            assert json.loads(await ws.receive_text())["type"] == "error"
            await ws.send_text('{"op": "add", "a": 1, "b": 1}')
            assert await ws.receive_text() == "2"


async def test_python_serializer_errors_go_to_user_handlers():
    app = make_app()
    async with app.test_client() as client:
        async with client.websocket("/calc2") as ws:
            await ws.send_bytes(msgpack.packb({"op": "add", "a": 1, "b": 2}))
            assert msgpack.unpackb(await ws.receive_bytes()) == 3
            await ws.send_bytes(b"\xc1")  # never used in MessagePack
            assert msgpack.unpackb(await ws.receive_bytes())["error"] == "DeserializationError"
            await ws.send_bytes(msgpack.packb({"op": "add", "a": "x", "b": 2}))
            reply = msgpack.unpackb(await ws.receive_bytes())
            assert reply == {"error": "ValidationError", "path": "/a"}
            await ws.send_bytes(msgpack.packb({"op": "zzz"}))
            assert msgpack.unpackb(await ws.receive_bytes()) == {"error": "unknown"}


async def test_python_serializer_return_value_is_checked():
    app = make_app()
    async with app.test_client() as client:
        async with client.websocket("/calc2") as ws:
            await ws.send_bytes(msgpack.packb({"op": "neg", "a": 1}))
            # -1 breaks `-> str`: nothing is sent, the ValidationError goes to on_bad_error
            assert msgpack.unpackb(await ws.receive_bytes()) == {"error": "ValidationError", "path": ""}


async def test_python_serializer_on_function_endpoint():
    app = make_app()
    async with app.test_client() as client:
        async with client.websocket("/fn") as ws:
            await ws.send_text('{"op": "add", "a": 1, "b": 2}')
            assert json.loads(await ws.receive_text()) == {"sum": 3}
            await ws.send_text('{"op": "add", "a": 1}')
            assert json.loads(await ws.receive_text())["type"] == "error"


def test_builtin_serializers_round_trip():
    assert JSONSerializer.decode(JSONSerializer.encode({"a": [1]})) == {"a": [1]}
    assert MessagePackSerializer.decode(MessagePackSerializer.encode({"a": b"x"})) == {"a": b"x"}
    assert isinstance(JSONSerializer.encode(1), str)
    assert isinstance(MessagePackSerializer.encode(1), bytes)


def test_schema_object_validates_with_path_and_keyword():
    s = _native.Schema('{"type": "object", "properties": {"a": {"type": "integer"}}}')
    s.validate({"a": 1})
    assert s.is_valid({"a": 1}) and not s.is_valid({"a": "x"})
    with pytest.raises(ValidationError) as info:
        s.validate({"a": "x"})
    assert info.value.path == "/a"
    assert info.value.keyword == "type"


def test_invalid_schema_is_reported():
    with pytest.raises(_native.WirecoreError):
        _native.Schema('{"type": 5}')


def test_dispatcher_uses_a_discriminator_when_every_schema_pins_one():
    add = _native.Schema(json.dumps({"properties": {"op": {"const": "add"}}, "required": ["op"]}))
    neg = _native.Schema(json.dumps({"properties": {"op": {"const": "neg"}}, "required": ["op"]}))
    d = _native.Dispatcher([add, neg])
    assert d.discriminator == "op"
    assert d.dispatch({"op": "neg"}) == 1
    with pytest.raises(UnknownMessageError):
        d.dispatch({"op": "mul"})
