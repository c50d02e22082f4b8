"""A MessagePack class endpoint: binary frames decoded, validated and
dispatched in C; dataclasses in, dataclasses out.

    python msgpack_room.py --port 8000
    -> msgpack {"type": "move", "x": 1, "y": 2}   <- msgpack {"ok": true, "moves": 1}
    -> msgpack {"type": "chat", "text": "gg"}     <- msgpack {"ok": true, "moves": 1}
"""

from __future__ import annotations

import dataclasses
from typing import Literal

from _cli import parse, ready

from wirecore import App, Request, ValidationError, WebSocket
from wirecore.serializers import MessagePackSerializer

app = App()


@dataclasses.dataclass
class Move:
    type: Literal["move"]
    x: int
    y: int


@dataclasses.dataclass
class Chat:
    type: Literal["chat"]
    text: str


@dataclasses.dataclass
class Ack:
    ok: bool
    moves: int


@app.websocket("/game/{table}")
class Table(WebSocket, using=MessagePackSerializer):
    async def on_connect(self, request: Request) -> None:
        self.moves: list[Move] = []
        self.send({"type": "hello", "table": self.path_params["table"]})

    async def receive_move(self, move: Move) -> Ack:
        self.moves.append(move)
        return Ack(ok=True, moves=len(self.moves))

    async def receive_chat(self, chat: Chat) -> Ack:
        return Ack(ok=True, moves=len(self.moves))

    async def on_validation_error(self, exc: ValidationError) -> dict:
        return {"ok": False, "path": exc.path, "keyword": exc.keyword}


if __name__ == "__main__":
    args = parse(__doc__)
    app.run(args.host, args.port, on_ready=ready)
