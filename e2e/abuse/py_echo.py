"""The abuse suite's Python server: the package's callback-style echo on
/echo, with the short deadlines the suite uses for wire_echo too
(send_timeout 1.5 s, pong_timeout 1 s, which is also the close deadline).

    python py_echo.py --port 8000
"""

from __future__ import annotations

import argparse
import sys

from wirecore import App, Request, WebSocketMessage, WebSocketResponse

app = App()


@app.websocket("/echo", send_timeout=1.5, pong_timeout=1.0)
async def echo(request: Request) -> WebSocketResponse:
    async def on_message(msg: WebSocketMessage) -> WebSocketMessage:
        return msg

    return WebSocketResponse(on_message=on_message)


def ready(server) -> None:
    print(f"listening on {server.url()}", flush=True)
    sys.stdout.flush()


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--port", type=int, default=8000)
    app.run("127.0.0.1", p.parse_args().port, on_ready=ready)
