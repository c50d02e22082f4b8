"""A feed server on the Python package with topic history, for the history
fault tests. Usage: py_history.py PORT [REDIS_URL|-] [WORKERS]

/feed?since=P  subscribes to "feed" with the position (replay first), then
               sends {"pid": <worker pid>}
/pub           each text message "n" is published to "feed" as {"n": n};
               on connect it sends {"pid": <worker pid>}
"""

import os
import sys

from wirecore import App, Request, WebSocket

broker = sys.argv[2] if len(sys.argv) > 2 and sys.argv[2] != "-" else None
app = App(broker=broker)
app.topic("feed", history=20000, ttl=120)


@app.websocket("/feed")
class Feed(WebSocket):
    async def on_connect(self, request: Request) -> None:
        self.subscribe("feed", since=request.query_params.get("since", ""))
        await self.send({"pid": os.getpid()})

    async def receive_any(self, message: dict) -> None:
        pass


@app.websocket("/pub")
class Pub(WebSocket):
    async def on_connect(self, request: Request) -> None:
        await self.send({"pid": os.getpid()})

    async def receive_any(self, message: int) -> None:
        app.publish("feed", {"n": message})


workers = int(sys.argv[3]) if len(sys.argv) > 3 else 1
app.run("127.0.0.1", int(sys.argv[1]), workers=workers,
        on_ready=lambda server: print("listening", flush=True))
