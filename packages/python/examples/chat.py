"""Chat with rooms: a JSON class endpoint, messages dispatched by their "type".

    python chat.py --port 8000 [--http-port 8080 [--static DIR]]

Connect to ws://127.0.0.1:8000/chat/<room>?user=<name>[&since=<position>] and send
    {"type": "chat", "text": "hello"}      -> everyone in the room (sender included)
                                              gets {"type": "chat", "user": ..., "text": ...}
    {"type": "typing"}                     -> the others get {"type": "typing", "user": ...}
Joins and leaves are announced as {"type": "join"|"leave", "user": ..., "members": [...]}.
Invalid messages get the core's error reply; the connection stays open.

Rooms keep a history (app.topic, docs/scaling.md): chat, join and leave events
arrive as {"topic": "room:<room>", "offset": <position>, "data": <event>}. A
client that reconnects with since=<the last offset it saw> gets what it missed,
then the live events. When that is not possible (the server restarted, or
more was published than the room keeps), it gets everything the room still
has and then {"type": "history", "recovered": false, "reason": ...}. Typing
notices are not kept.

This is the protocol of the browser page in e2e/browser (scripts/demo.sh runs
this example behind it). With --http-port, a tiny HTTP server on that second
port serves the files of --static (default: the repository's e2e/browser) so
one command runs both; open http://HOST:HTTP_PORT/?port=PORT. The WebSocket
server itself speaks only WebSocket.
"""

from __future__ import annotations

import asyncio
import mimetypes
import pathlib
from collections import defaultdict
from typing import Literal, NotRequired, TypedDict

from _cli import parse, ready

from wirecore import App, Reject, Request, WebSocket

app = App()
app.topic("room:*", history=500, ttl=3600)  # chat, join, leave: kept for reconnecting clients
members: dict[str, dict[int, str]] = defaultdict(dict)  # room -> connection id -> user name


class Chat(TypedDict):
    type: Literal["chat"]
    text: str
    user: NotRequired[str]  # the page sends it; the server uses the name it joined with


class Typing(TypedDict):
    type: Literal["typing"]


@app.websocket("/chat/{room}", max_message_size=64 * 1024, idle_timeout=60)
class ChatRoom(WebSocket):
    """Each room is a topic: app.publish encodes an event once for the whole room."""

    user: str

    async def on_connect(self, request: Request) -> None:
        user = request.query_params.get("user", "").strip()
        if len(user) > 32:
            raise Reject(400)
        self.user = user or f"guest{self.connection_id}"
        room = self.path_params["room"]
        topic = f"room:{room}"
        rec = self.subscribe(topic, since=request.query_params.get("since", ""))
        if not rec["recovered"]:
            # It cannot resume where it was: say so, then give it all the room has.
            self.unsubscribe(topic)
            self.subscribe(topic, since=rec["position"].split(":")[0] + ":0")
            await self.send({"type": "history", "recovered": False, "reason": rec["reason"]})
        self.subscribe(f"typing:{room}")
        members[room][self.connection_id] = self.user
        event = {"type": "join", "user": self.user, "members": sorted(members[room].values())}
        app.publish(topic, event, exclude=self)
        await self.send(event)  # leaves right after the upgrade (and the replay)

    async def receive_chat(self, message: Chat) -> None:
        event = {"type": "chat", "user": self.user, "text": message["text"]}
        app.publish(f"room:{self.path_params['room']}", event)

    async def receive_typing(self, message: Typing) -> None:
        app.publish(f"typing:{self.path_params['room']}", {"type": "typing", "user": self.user},
                    exclude=self)

    async def on_disconnect(self) -> None:
        room = self.path_params["room"]
        members[room].pop(self.connection_id, None)
        names = sorted(members[room].values())
        if not names:
            del members[room]
        app.publish(f"room:{room}", {"type": "leave", "user": self.user, "members": names})


async def serve_static(host: str, port: int, root: pathlib.Path) -> asyncio.Server:
    """GET-only file server for the browser page (no directory listing)."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            method, target, _ = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ", 2)
            path = target.split("?", 1)[0]
            rel = "index.html" if path in ("/", "") else path.lstrip("/")
            file = (root / rel).resolve()
            if method != "GET" or root.resolve() not in file.parents or not file.is_file():
                writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            else:
                body = file.read_bytes()
                ctype = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
                writer.write(
                    f"HTTP/1.1 200 OK\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n"
                    f"Connection: close\r\n\r\n".encode() + body
                )
            await writer.drain()
        except Exception:
            pass
        finally:
            writer.close()

    return await asyncio.start_server(handle, host, port)


async def main(args) -> None:  # noqa: ANN001
    import signal

    running = await app.start(args.host, args.port)
    ready(running)
    static = None
    if args.http_port is not None:
        static = await serve_static(args.host, args.http_port, pathlib.Path(args.static))
        port = static.sockets[0].getsockname()[1]
        print(f"static files on http://{args.host}:{port}/", flush=True)
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, lambda: stop.done() or stop.set_result(None))
    await stop
    if static is not None:
        static.close()
    await running.stop()


if __name__ == "__main__":
    def extra(p):  # noqa: ANN001, ANN202
        p.add_argument("--http-port", type=int, default=None, help="serve --static over HTTP here")
        here = pathlib.Path(__file__).resolve()
        p.add_argument("--static", default=str(here.parents[3] / "e2e" / "browser"))

    asyncio.run(main(parse(__doc__, extra)))
