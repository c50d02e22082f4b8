"""Echo server on Wirecore's Python package.

Usage: python3 py_wirecore.py [--host H] [--port P] [--typed | --chat]
Raw (/echo, any path works for the load generator's default /): every message
goes back as it came. Typed (/chat/{room}): a TypedDict handler, so the schema
check happens in C, and the returned dict is encoded in C. Chat (--chat,
/chat/{room}): the fan-out server; each connection subscribes to its room and
a text message is published to the room (the sender included) with
app.publish, as build/wire_chat does.
"""
import argparse
from typing import Literal, TypedDict

from wirecore import App, Request, WebSocketMessage, WebSocketResponse


class Chat(TypedDict):
    type: Literal["chat"]
    user: str
    text: str


def make_app(typed: bool, chat: bool = False) -> App:
    app = App()
    if chat:
        @app.websocket("/chat/{room}")
        def room(request: Request) -> WebSocketResponse:
            topic = request.path_params["room"]

            def on_message(msg: WebSocketMessage) -> None:
                if msg.is_text():
                    app.publish(topic, msg.data)

            return WebSocketResponse(on_message, on_connect=lambda ws: ws.subscribe(topic))
    elif typed:
        @app.websocket("/chat/{room}")
        async def chat(message: Chat, room: str) -> Chat:
            return {"type": "chat", "user": message["user"], "text": message["text"]}
    else:
        async def on_message(msg: WebSocketMessage) -> WebSocketMessage:
            return msg

        @app.websocket("/")
        async def echo(request: Request) -> WebSocketResponse:
            return WebSocketResponse(on_message=on_message)
    return app


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=9011)
    ap.add_argument("--typed", action="store_true")
    ap.add_argument("--chat", action="store_true")
    args = ap.parse_args()
    print(f"listening on {args.host}:{args.port}", flush=True)
    make_app(args.typed, args.chat).run(host=args.host, port=args.port)
