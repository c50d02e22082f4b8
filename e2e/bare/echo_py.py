"""Inside the bare root: an echo round trip through the installed wheel, with
the `websockets` client over a real socket on 127.0.0.1."""

import asyncio

import websockets

from wirecore import App, Request, WebSocketMessage, WebSocketResponse, __version__, core_version

app = App()


@app.websocket("/echo")
async def echo(request: Request) -> WebSocketResponse:
    async def on_message(msg: WebSocketMessage) -> WebSocketMessage:
        return msg

    return WebSocketResponse(on_message=on_message)


async def main() -> None:
    server = await app.start("127.0.0.1", 0)
    async with websockets.connect(server.url("/echo")) as ws:
        await ws.send("hello from python")
        got = await ws.recv()
    await server.stop()
    assert got == "hello from python", got
    print(f"python: wirecore {__version__} (core {core_version()}) echoed {got!r}"
          f" through websockets {websockets.__version__}")


asyncio.run(main())
