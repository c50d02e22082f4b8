"""JSON-RPC 2.0 over WebSocket: one receive_* handler per method, chosen by the
core's dispatcher from the "method" constant in each request's schema.

    python jsonrpc.py --port 8000
    -> {"jsonrpc": "2.0", "method": "add", "params": [1, 2], "id": 1}
    <- {"jsonrpc": "2.0", "result": 3, "id": 1}
"""

from __future__ import annotations

from typing import Any, Literal, TypedDict

from _cli import parse, ready

from wirecore import (
    App,
    DeserializationError,
    UnknownMessageError,
    ValidationError,
    WebSocket,
)

app = App()


class Add(TypedDict):
    jsonrpc: Literal["2.0"]
    method: Literal["add"]
    params: list[float]
    id: int | str


class Echo(TypedDict):
    jsonrpc: Literal["2.0"]
    method: Literal["echo"]
    params: dict[str, Any]
    id: int | str


class Divide(TypedDict):
    jsonrpc: Literal["2.0"]
    method: Literal["divide"]
    params: tuple[float, float]
    id: int | str


class Result(TypedDict):
    jsonrpc: Literal["2.0"]
    result: Any
    id: int | str


def error(code: int, message: str, data: Any = None, id: Any = None) -> dict:
    err: dict = {"code": code, "message": message}
    if data is not None:
        err["data"] = data
    return {"jsonrpc": "2.0", "error": err, "id": id}


@app.websocket("/rpc")
class Rpc(WebSocket):
    def receive_add(self, req: Add) -> Result:
        return {"jsonrpc": "2.0", "result": sum(req["params"]), "id": req["id"]}

    def receive_echo(self, req: Echo) -> Result:
        return {"jsonrpc": "2.0", "result": req["params"], "id": req["id"]}

    def receive_divide(self, req: Divide) -> Result:
        self.current_id = req["id"]
        a, b = req["params"]
        return {"jsonrpc": "2.0", "result": a / b, "id": req["id"]}

    def on_zero_division_error(self, exc: ZeroDivisionError) -> dict:
        return error(-32000, "division by zero", id=getattr(self, "current_id", None))

    def on_parse_error(self, exc: DeserializationError) -> dict:
        return error(-32700, "parse error", str(exc))

    def on_method_error(self, exc: UnknownMessageError) -> dict:
        return error(-32601, "method not found or invalid request")

    def on_params_error(self, exc: ValidationError) -> dict:
        return error(-32602, "invalid params", {"path": exc.path, "keyword": exc.keyword})


if __name__ == "__main__":
    args = parse(__doc__)
    app.run(args.host, args.port, on_ready=ready)
