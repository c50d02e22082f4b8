"""A stand-in chat server for developing the page without Wirecore built.

It behaves like core/examples/wire_chat: every text message on /chat/{room}
goes to every connection in that room, the sender included. The browser test
uses it only when neither the Python package's chat example nor wire_chat is
available, and says so.

Usage: python3 dev_chat_server.py [--host H] [--port P]   (needs `websockets`)
"""
import argparse
import asyncio

from websockets.asyncio.server import broadcast, serve

rooms: dict[str, set] = {}


async def chat(ws):
    path = ws.request.path.split("?", 1)[0]
    if not path.startswith("/chat/") or len(path) <= len("/chat/"):
        await ws.close(1008, "use /chat/{room}")
        return
    room = rooms.setdefault(path[len("/chat/"):], set())
    room.add(ws)
    try:
        async for message in ws:
            if isinstance(message, str):
                broadcast(room, message)
    finally:
        room.discard(ws)


async def main(host: str, port: int) -> None:
    async with serve(chat, host, port) as server:
        print(f"listening on {host}:{port}", flush=True)
        await server.serve_forever()


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8000)
    args = ap.parse_args()
    try:
        asyncio.run(main(args.host, args.port))
    except KeyboardInterrupt:
        pass
