"""Echo server on Python `websockets` (asyncio), the Python peer of the benchmark.

Usage: python3 py_websockets.py [--host H] [--port P] [--typed | --chat] [--deflate]
Raw: every text or binary message is sent back unchanged. Typed (--typed): each
message is parsed as JSON, checked to be a chat message ({"type": "chat",
"user": str, "text": str}) and sent back re-encoded, which is what an
application on `websockets` writes by hand for what Wirecore's typed endpoints
do. Chat (--chat, /chat/<room>): the fan-out peer; a text message goes to
every connection of the room (the sender included) with
`websockets.broadcast()`, the library's own fan-out. Compression is off so the
comparison measures the WebSocket stack; --deflate turns on the library's
default permessage-deflate (for deflate_bench.py).
"""
import argparse
import asyncio
import json

from websockets.asyncio.server import broadcast, serve

ROOMS: dict[str, set] = {}


async def echo(ws):
    async for message in ws:
        await ws.send(message)


def check_chat(value):
    if not (isinstance(value, dict) and value.get("type") == "chat"
            and isinstance(value.get("user"), str) and isinstance(value.get("text"), str)):
        raise ValueError("not a chat message")
    return value


async def typed_echo(ws):
    async for message in ws:
        try:
            chat = check_chat(json.loads(message))
        except ValueError as exc:
            await ws.send(json.dumps({"type": "error", "error": str(exc)}))
            continue
        await ws.send(json.dumps({"type": "chat", "user": chat["user"], "text": chat["text"]},
                                 separators=(",", ":")))


async def chat(ws):
    room = ws.request.path.removeprefix("/chat/")
    members = ROOMS.setdefault(room, set())
    members.add(ws)
    try:
        async for message in ws:
            if isinstance(message, str):
                broadcast(members, message)
    finally:
        members.discard(ws)
        if not members:
            ROOMS.pop(room, None)


async def main(host: str, port: int, typed: bool, chat_mode: bool = False,
               deflate: bool = False) -> None:
    handler = chat if chat_mode else typed_echo if typed else echo
    async with serve(handler, host, port, compression="deflate" if deflate else None,
                     max_size=None, ping_interval=None, backlog=4096) as server:
        print(f"listening on {host}:{port}", flush=True)
        await server.serve_forever()


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=9001)
    ap.add_argument("--typed", action="store_true")
    ap.add_argument("--chat", action="store_true")
    ap.add_argument("--deflate", action="store_true")
    args = ap.parse_args()
    try:
        asyncio.run(main(args.host, args.port, args.typed, args.chat, args.deflate))
    except KeyboardInterrupt:
        pass
