"""A chat room server on the Python package with a Redis broker, shaped like
wire_chat: /chat/{room}, every text message is published to the room's topic
(the sender included). Usage: py_chat.py PORT REDIS_URL"""

import sys

from wirecore import App, WebSocketConnection

app = App(broker=sys.argv[2])


@app.websocket("/chat/{room}")
async def chat(ws: WebSocketConnection) -> None:
    room = ws.path_params["room"]
    ws.subscribe(room)
    async for text in ws:
        app.publish(room, text)


app.run("127.0.0.1", int(sys.argv[1]), on_ready=lambda server: print("listening", flush=True))
