"""The abuse suite's Python server: the package's callback-style echo on
/echo, with the short deadlines the suite uses for wire_echo too
(send_timeout 1.5 s, pong_timeout 1 s, which is also the close deadline),
and /hang, whose handler never returns unless its connection ends (then its
task is cancelled).

    python py_echo.py --port 8000 [--max-buffered BYTES]
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from wirecore import App, Request, WebSocketMessage, WebSocketResponse

p = argparse.ArgumentParser(description=__doc__)
p.add_argument("--port", type=int, default=8000)
p.add_argument("--max-buffered", type=int, default=0)
args = p.parse_args()
app = App(max_buffered_bytes=args.max_buffered)


@app.websocket("/echo", send_timeout=1.5, pong_timeout=1.0)
async def echo(request: Request) -> WebSocketResponse:
    async def on_message(msg: WebSocketMessage) -> WebSocketMessage:
        return msg

    return WebSocketResponse(on_message=on_message)


@app.websocket("/hang", send_timeout=1.5, pong_timeout=1.0)
async def hang(request: Request) -> WebSocketResponse:
    async def on_message(msg: WebSocketMessage) -> None:
        await asyncio.Event().wait()  # never set: cancelled when the connection ends

    return WebSocketResponse(on_message=on_message)


def ready(server) -> None:
    print(f"listening on {server.url()}", flush=True)
    sys.stdout.flush()


if __name__ == "__main__":
    app.run("127.0.0.1", args.port, on_ready=ready)
