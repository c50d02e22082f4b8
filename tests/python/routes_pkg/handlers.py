"""Handlers referenced by routes.yaml in test_app.py."""

from wirecore import WebSocket, WebSocketConnection, websocket


async def upper(message: str) -> str:
    return message.upper()


@websocket("/ignored-path")
async def lower(message: str) -> str:
    return message.lower()


class Counter(WebSocket):
    def receive(self, n: int) -> int:
        return n + 1


async def stream(ws: WebSocketConnection) -> None:
    async for m in ws:
        await ws.send_text(f"stream:{m}")
