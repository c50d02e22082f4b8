"""Echo server: the three handler styles on one app.

    python echo.py --port 8000
    # ws://127.0.0.1:8000/echo   any frame back as it came (callback style)
    # ws://127.0.0.1:8000/stream text upper-cased (connection style)
    # ws://127.0.0.1:8000/json   a JSON object back, validated ({"text": str})
"""

from __future__ import annotations

from typing import TypedDict

from _cli import parse, ready

from wirecore import App, Request, WebSocketConnection, WebSocketMessage, WebSocketResponse

app = App()


@app.websocket("/echo")
async def echo(request: Request) -> WebSocketResponse:
    async def on_message(msg: WebSocketMessage) -> WebSocketMessage:
        return msg

    return WebSocketResponse(on_message=on_message)


@app.websocket("/stream")
async def stream(ws: WebSocketConnection) -> None:
    async for message in ws:
        await ws.send(message.upper() if isinstance(message, str) else message)


class Text(TypedDict):
    text: str


@app.websocket("/json")
async def json_echo(message: Text) -> Text:
    return message


if __name__ == "__main__":
    args = parse(__doc__)
    app.run(args.host, args.port, on_ready=ready)
