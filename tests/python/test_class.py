"""Class endpoints: receive_* chosen by the core's dispatcher, on_*_error by exception type."""

from __future__ import annotations

import dataclasses
from typing import Literal, TypedDict

import msgpack
import pytest
import websockets

from wirecore import App, Reject, Request, UnknownMessageError, ValidationError, WebSocket, websocket_route
from wirecore.serializers import MessagePackSerializer
from wirecore.testing import HandshakeRejected

from conftest import eventually


EVENTS: list = []


class Message(TypedDict):
    type: Literal["message"]
    text: str


class Reaction(TypedDict):
    type: Literal["reaction"]
    emoji: str


class Emoji(TypedDict):
    type: Literal["emoji"]
    code: int


class Ack(TypedDict):
    ok: bool
    kind: str


@dataclasses.dataclass
class ErrorReply:
    error: str
    detail: str


@websocket_route("/rooms/{room}")
class Room(WebSocket, using=MessagePackSerializer):
    async def on_connect(self, request: Request) -> None:
        if request.query_params.get("ban"):
            raise Reject(403)
        EVENTS.append(("connect", self.path_params["room"]))
        await self.send({"type": "welcome", "room": self.path_params["room"]})

    async def receive_a_message(self, message: Message) -> Ack:
        if message["text"] == "value-error":
            raise ValueError("bad text")
        if message["text"] == "key-error":
            raise KeyError("k")
        if message["text"] == "crash":
            raise RuntimeError("crash")
        if message["text"] == "close":
            await self.close(4001, "asked")
            return None  # type: ignore[return-value]
        return {"ok": True, "kind": "message"}

    async def receive_a_reaction(self, reaction: Reaction | Emoji) -> Ack:
        return {"ok": True, "kind": reaction["type"]}

    async def on_value_error(self, exc: ValueError | KeyError) -> ErrorReply:
        return ErrorReply(error=type(exc).__name__, detail=str(exc))

    async def on_unknown_message_error(self, exc: UnknownMessageError) -> dict:
        return {"error": "unknown"}

    async def on_disconnect(self) -> None:
        EVENTS.append(("disconnect", self.path_params["room"]))


class Strict(WebSocket):
    def receive_message(self, message: Message) -> Ack:
        return {"ok": "yes"}  # type: ignore[typeddict-item]  # breaks the Ack schema

    def receive_reaction(self, r: Reaction) -> None:
        return None

    def on_validation_error(self, exc: ValidationError) -> dict:
        return {"invalid": exc.path, "keyword": exc.keyword}


class Plain(WebSocket):
    """JSON, no error handlers: the core's default error reply."""

    def receive_message(self, message: Message) -> dict:
        return {"text": message["text"]}

    def receive_reaction(self, r: Reaction) -> dict:
        return {"emoji": r["emoji"]}


def make_app() -> App:
    app = App()
    app.include(Room)
    app.websocket("/strict")(Strict)
    app.websocket("/plain")(Plain)
    return app


def pack(obj) -> bytes:
    return msgpack.packb(obj)


async def test_receive_handlers_are_dispatched_by_message_type_over_msgpack():
    EVENTS.clear()
    app = make_app()
    async with app.test_server() as server:
        async with websockets.connect(server.url("/rooms/r1")) as c:
            assert msgpack.unpackb(await c.recv()) == {"type": "welcome", "room": "r1"}
            await c.send(pack({"type": "message", "text": "hi"}))
            assert msgpack.unpackb(await c.recv()) == {"ok": True, "kind": "message"}
            await c.send(pack({"type": "reaction", "emoji": ":)"}))
            assert msgpack.unpackb(await c.recv()) == {"ok": True, "kind": "reaction"}
            await c.send(pack({"type": "emoji", "code": 42}))
            assert msgpack.unpackb(await c.recv()) == {"ok": True, "kind": "emoji"}
    await eventually(lambda: ("disconnect", "r1") in EVENTS)
    assert ("connect", "r1") in EVENTS


async def test_error_handlers_are_chosen_by_exception_type_in_class():
    app = make_app()
    async with app.test_client() as client:
        async with client.websocket("/rooms/r2") as ws:
            await ws.receive_msgpack()
            await ws.send_msgpack({"type": "message", "text": "value-error"})
            assert await ws.receive_msgpack() == {"error": "ValueError", "detail": "bad text"}
            await ws.send_msgpack({"type": "message", "text": "key-error"})
            assert await ws.receive_msgpack() == {"error": "KeyError", "detail": "'k'"}
            await ws.send_msgpack({"type": "nope"})
            assert await ws.receive_msgpack() == {"error": "unknown"}
            await ws.send_msgpack({"type": "message", "text": "crash"})
            assert await ws.wait_closed() == 1011


async def test_on_connect_reject_in_class():
    app = make_app()
    async with app.test_client() as client:
        with pytest.raises(HandshakeRejected) as info:
            await client.websocket("/rooms/r3?ban=1")
        assert info.value.status == 403


async def test_close_from_a_class_handler():
    app = make_app()
    async with app.test_client() as client:
        async with client.websocket("/rooms/r4") as ws:
            await ws.receive_msgpack()
            await ws.send_msgpack({"type": "message", "text": "close"})
            assert await ws.wait_closed() == 4001


async def test_return_value_is_checked_against_the_handler_annotation():
    app = make_app()
    async with app.test_client() as client:
        async with client.websocket("/strict") as ws:
            await ws.send_json({"type": "message", "text": "x"})
            reply = await ws.receive_json()
            assert reply["keyword"] == "type"
            assert reply["invalid"] == "/ok"


async def test_validation_error_reaches_on_validation_error_with_path():
    app = make_app()
    async with app.test_client() as client:
        async with client.websocket("/strict") as ws:
            await ws.send_json({"type": "reaction", "emoji": 5})
            reply = await ws.receive_json()
            assert reply == {"invalid": "/emoji", "keyword": "type"}


async def test_class_without_error_handlers_gets_core_reply_and_stays_open():
    app = make_app()
    async with app.test_client() as client:
        async with client.websocket("/plain") as ws:
            await ws.send_json({"type": "other"})
            assert (await ws.receive_json())["type"] == "error"
            await ws.send_json({"type": "message", "text": "still open"})
            assert await ws.receive_json() == {"text": "still open"}


async def test_class_needs_a_receive_handler():
    class Empty(WebSocket):
        pass

    app = App()
    app.websocket("/empty")(Empty)
    with pytest.raises(TypeError, match="receive_"):
        async with app.test_server():
            pass
