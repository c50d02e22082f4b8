"""Typed function handlers: schema from the annotation, validated by the core."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Literal, TypedDict

import pydantic
import pytest
import websockets

from wirecore import App, Reject, Request, ValidationError
from wirecore.testing import HandshakeRejected

from conftest import eventually


class ChatMessage(TypedDict):
    text: str
    user: str


@dataclasses.dataclass
class Move:
    x: int
    y: int
    piece: Literal["pawn", "king"] = "pawn"


@dataclasses.dataclass
class Moved:
    ok: bool
    piece: str


def make_app() -> tuple[App, dict]:
    app = App()
    seen: dict = {"joined": [], "left": [], "order": []}

    @app.websocket("/chat/{room}")
    async def chat(message: ChatMessage, room: str) -> dict:
        return {"echo": message["text"], "from": message["user"], "room": room}

    @chat.on_connect
    async def joined(request: Request) -> None:
        if request.query_params.get("token") == "bad":
            raise Reject(403)
        seen["joined"].append(request.path_params["room"])

    @chat.on_disconnect
    async def left(room: str) -> None:
        seen["left"].append(room)

    @app.websocket("/move")
    async def move(m: Move) -> Moved:
        assert isinstance(m, Move)
        return Moved(ok=True, piece=m.piece)

    @app.websocket("/numbers/{n:int}")
    def numbers(value: int, n: int, scale: int = 1) -> int:
        return value * n * scale

    @app.websocket("/silent")
    async def silent(message: dict) -> None:
        seen["order"].append(message["i"])

    @app.websocket("/slow")
    async def slow(message: dict) -> dict:
        # the next message of this connection waits for this one
        await asyncio.sleep(0.01 if message["i"] % 2 == 0 else 0)
        seen["order"].append(message["i"])
        return {"i": message["i"]}

    @app.websocket("/bad-return")
    async def bad_return(message: dict) -> Moved:
        return {"ok": "not a bool"}  # type: ignore[return-value]

    @app.websocket("/raises")
    async def raises(message: dict) -> dict:
        if message.get("boom"):
            raise RuntimeError("boom")
        return message

    @app.websocket("/handled")
    async def handled(message: dict) -> dict:
        if message.get("key"):
            raise KeyError(message["key"])
        raise ValueError("bad value")

    @handled.on_error
    async def on_value_error(exc: ValueError) -> dict:
        return {"error": "value", "detail": str(exc)}

    @handled.on_error
    def on_validation(exc: ValidationError) -> dict:
        return {"error": "invalid", "path": exc.path, "keyword": exc.keyword}

    @app.websocket("/raw-schema", message_schema={"type": "integer", "minimum": 10})
    async def raw_schema(message) -> dict:
        return {"got": message}

    return app, seen


async def test_typed_handler_replies_with_return_value_over_websockets():
    app, seen = make_app()
    async with app.test_server() as server:
        async with websockets.connect(server.url("/chat/lobby")) as c:
            await c.send('{"text": "hi", "user": "ann"}')
            assert await c.recv() == '{"echo":"hi","from":"ann","room":"lobby"}'
    await eventually(lambda: seen["left"] == ["lobby"])
    assert seen["joined"] == ["lobby"]


async def test_invalid_message_gets_the_core_error_reply_and_connection_stays_open():
    app, _ = make_app()
    async with app.test_client() as client:
        async with client.websocket("/chat/a") as ws:
            await ws.send_json({"text": 5, "user": "ann"})
            reply = await ws.receive_json()
            assert reply["type"] == "error"
            assert (reply["error"], reply["path"], reply["keyword"]) == ("validation_failed", "/text", "type")
            await ws.send_text("not json")
            assert (await ws.receive_json())["type"] == "error"
            await ws.send_json({"text": "ok", "user": "bob"})
            assert (await ws.receive_json())["echo"] == "ok"


async def test_on_connect_reject_refuses_the_upgrade():
    app, seen = make_app()
    async with app.test_client() as client:
        with pytest.raises(HandshakeRejected) as info:
            await client.websocket("/chat/a?token=bad")
        assert info.value.status == 403
    assert seen["joined"] == []


async def test_reject_is_seen_by_the_websockets_client():
    app, _ = make_app()
    async with app.test_server() as server:
        with pytest.raises(websockets.InvalidStatus) as info:
            async with websockets.connect(server.url("/chat/a?token=bad")):
                pass
        assert info.value.response.status_code == 403


async def test_dataclass_argument_and_return_are_converted():
    app, _ = make_app()
    async with app.test_client() as client:
        async with client.websocket("/move") as ws:
            await ws.send_json({"x": 1, "y": 2, "piece": "king"})
            assert await ws.receive_json() == {"ok": True, "piece": "king"}
            await ws.send_json({"x": 1, "y": 2, "piece": "queen"})
            assert (await ws.receive_json())["type"] == "error"


async def test_path_and_query_parameters_are_injected_and_converted():
    app, _ = make_app()
    async with app.test_client() as client:
        async with client.websocket("/numbers/3?scale=2") as ws:
            await ws.send_json(7)
            assert await ws.receive_json() == 42


async def test_none_return_sends_nothing_and_order_is_preserved():
    app, seen = make_app()
    async with app.test_client() as client:
        async with client.websocket("/silent") as ws:
            for i in range(20):
                await ws.send_json({"i": i})
        await eventually(lambda: seen["order"] == list(range(20)))


async def test_async_handlers_keep_per_connection_order():
    app, seen = make_app()
    async with app.test_client() as client:
        async with client.websocket("/slow") as ws:
            for i in range(10):
                await ws.send_json({"i": i})
            got = [(await ws.receive_json())["i"] for _ in range(10)]
    assert got == list(range(10))
    assert seen["order"] == list(range(10))


async def test_handler_that_does_not_suspend_creates_no_task(monkeypatch):
    app, _ = make_app()
    async with app.test_client() as client:
        async with client.websocket("/chat/x") as ws:
            loop = asyncio.get_running_loop()
            created = []
            original = loop.create_task

            def spy(coro, **kw):
                if getattr(coro, "__qualname__", "") == "_finish":  # wirecore's slow path
                    created.append(coro)
                return original(coro, **kw)

            monkeypatch.setattr(loop, "create_task", spy)
            await ws.send_json({"text": "t", "user": "u"})
            await ws.receive_json()
            monkeypatch.undo()
    assert created == []


async def test_return_value_failing_its_annotation_closes_with_1011():
    app, _ = make_app()
    async with app.test_client() as client:
        async with client.websocket("/bad-return") as ws:
            await ws.send_json({})
            assert await ws.wait_closed() == 1011


async def test_unhandled_exception_closes_1011_while_other_connections_carry_on():
    app, _ = make_app()
    async with app.test_client() as client:
        async with client.websocket("/raises") as bad, client.websocket("/raises") as good:
            await bad.send_json({"boom": True})
            assert await bad.wait_closed() == 1011
            await good.send_json({"fine": 1})
            assert await good.receive_json() == {"fine": 1}


async def test_error_handlers_are_chosen_by_exception_type():
    app, _ = make_app()
    async with app.test_client() as client:
        async with client.websocket("/handled") as ws:
            await ws.send_json({})
            assert await ws.receive_json() == {"error": "value", "detail": "bad value"}
            await ws.send_json({"key": "k"})  # KeyError: no handler -> 1011
            assert await ws.wait_closed() == 1011


async def test_validation_errors_reach_user_handlers_with_path_and_keyword():
    app, _ = make_app()
    async with app.test_client() as client:
        async with client.websocket("/handled") as ws:
            await ws.send_json(5)  # not an object: ValidationError -> on_validation
            assert await ws.receive_json() == {"error": "invalid", "path": "", "keyword": "type"}
            await ws.send_text("[1,")  # not JSON: DeserializationError, no handler -> core reply
            reply = await ws.receive_json()
            assert reply["type"] == "error" and reply["error"] == "invalid_message"


async def test_raw_message_schema_replaces_the_annotation():
    app, _ = make_app()
    async with app.test_client() as client:
        async with client.websocket("/raw-schema") as ws:
            await ws.send_json(12)
            assert await ws.receive_json() == {"got": 12}
            await ws.send_json(3)
            assert (await ws.receive_json())["type"] == "error"


async def test_deferred_on_connect_accepts_after_awaiting():
    app = App()

    @app.websocket("/deferred")
    async def deferred(message: dict) -> dict:
        return message

    @deferred.on_connect
    async def check(request: Request) -> None:
        await asyncio.sleep(0.01)
        if request.query_params.get("deny"):
            raise Reject(401)

    async with app.test_client() as client:
        async with client.websocket("/deferred") as ws:
            await ws.send_json({"a": 1})
            assert await ws.receive_json() == {"a": 1}
        with pytest.raises(HandshakeRejected) as info:
            await client.websocket("/deferred?deny=1")
        assert info.value.status == 401


class Order(pydantic.BaseModel):
    item: str
    qty: int = 1


async def test_pydantic_models_are_validated_and_built():
    app = App()

    @app.websocket("/order")
    async def order(o: Order) -> Order:
        assert isinstance(o, Order)
        return Order(item=o.item.upper(), qty=o.qty * 2)

    async with app.test_client() as client:
        async with client.websocket("/order") as ws:
            await ws.send_json({"item": "tea"})
            assert await ws.receive_json() == {"item": "TEA", "qty": 2}
            await ws.send_json({"qty": 2})
            assert (await ws.receive_json())["type"] == "error"


def make_policy_app() -> App:
    app = App()

    @app.websocket("/close", invalid="close")
    async def closing(message: ChatMessage) -> dict:
        return {"ok": True}

    @app.websocket("/ignore", invalid="ignore")
    async def ignoring(message: ChatMessage) -> dict:
        return {"ok": True}

    return app


@pytest.mark.parametrize("data, code", [("not json", 1007), ('{"text": 1}', 1008)])
async def test_invalid_close_policy_closes_with_1007_or_1008(data, code):
    async with make_policy_app().test_client() as client:
        async with client.websocket("/close") as ws:
            await ws.send_text(data)
            assert await ws.wait_closed() == code


async def test_invalid_ignore_policy_drops_the_message_and_stays_open():
    async with make_policy_app().test_client() as client:
        async with client.websocket("/ignore") as ws:
            await ws.send_text('{"text": 1}')
            await ws.send_json({"text": "a", "user": "b"})
            assert await ws.receive_json() == {"ok": True}
