"""A stand-in for the Python package's chat example, on `websockets`.

It speaks the same protocol as packages/python/examples/chat.py, so the page
and its test can be developed and run before (or without) Wirecore's Python
package: connect to /chat/{room}?user=NAME; {"type":"chat","text"} goes to the
whole room as {"type":"chat","user","text"}; {"type":"typing"} goes to the
others as {"type":"typing","user"}; joins and leaves are announced as
{"type":"join"|"leave","user","members"}; anything else gets
{"type":"error","error":{...}} and the connection stays open.

The browser test uses it only when the chat example cannot run, and says so.
Usage: python3 dev_chat_server.py [--host H] [--port P]
"""
import argparse
import asyncio
import json
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import broadcast, serve

rooms: dict[str, dict] = {}  # room -> {connection: user}


def announce(room: str, kind: str, user: str) -> None:
    members = rooms.get(room, {})
    event = {"type": kind, "user": user, "members": sorted(members.values())}
    broadcast(list(members), json.dumps(event))


async def chat(ws):
    target = urlsplit(ws.request.path)
    if not target.path.startswith("/chat/") or len(target.path) <= len("/chat/"):
        await ws.close(1008, "use /chat/{room}")
        return
    room = target.path[len("/chat/"):]
    user = (parse_qs(target.query).get("user", [""])[0].strip() or f"guest{id(ws) % 1000}")[:32]
    members = rooms.setdefault(room, {})
    members[ws] = user
    announce(room, "join", user)
    try:
        async for raw in ws:
            try:
                msg = json.loads(raw)
                kind = msg.get("type") if isinstance(msg, dict) else None
            except ValueError:
                kind = None
            if kind == "chat" and isinstance(msg.get("text"), str):
                broadcast(list(members), json.dumps({"type": "chat", "user": user,
                                                     "text": msg["text"]}))
            elif kind == "typing":
                broadcast([c for c in members if c is not ws],
                          json.dumps({"type": "typing", "user": user}))
            else:
                await ws.send(json.dumps({"type": "error", "error": {
                    "code": "EUNKNOWN_MESSAGE", "message": "expected chat or typing"}}))
    finally:
        del members[ws]
        if not members:
            del rooms[room]
        announce(room, "leave", user)


async def main(host: str, port: int) -> None:
    async with serve(chat, host, port) as server:
        print(f"listening on ws://{host}:{port}", flush=True)
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
