"""Conformance echo server on Wirecore's Python package.

Usage: python python_echo.py --port P [--host H] [--max-message BYTES]
                              [--cert FILE --key FILE]   (wss://)
Every text or binary message on any path goes back as it came, except on the
/app/... endpoints of the app cases (cases/10-app.json). Prints
"listening on H:P" once the listener is up; SIGTERM/SIGINT stop it.
"""
import argparse
import asyncio
import signal

from wirecore import App, WebSocketConnection, WebSocketMessage, WebSocketResponse

NUMBERED = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}


def app_endpoints(app: App) -> None:
    """The endpoints of the app cases; the same in every conformance server."""

    @app.websocket("/app/json", message_schema=NUMBERED)
    def json_echo(message: dict) -> dict:
        return message

    @app.websocket("/app/json-close", message_schema=NUMBERED, invalid="close")
    def json_echo_strict(message: dict) -> dict:
        return message

    def crash_or_echo(msg: WebSocketMessage) -> WebSocketMessage:
        if msg.data == "crash":
            raise RuntimeError("the handler failed")
        return msg

    @app.websocket("/app/crash")
    def crash(request) -> WebSocketResponse:
        return WebSocketResponse(on_message=crash_or_echo)

    async def delayed_echo(msg: WebSocketMessage) -> WebSocketMessage:
        await asyncio.sleep(int(msg.as_text()) % 3 / 1000)
        return msg

    @app.websocket("/app/order")
    def order(request) -> WebSocketResponse:
        return WebSocketResponse(on_message=delayed_echo)

    @app.websocket("/app/slow")
    async def slow(ws: WebSocketConnection) -> None:
        await asyncio.sleep(1)  # starts late: the peer floods meanwhile
        n, broken = 0, False
        async for message in ws:
            if message == "end":
                await ws.send_text(f"out of order at {n}" if broken else f"got {n} in order")
                continue
            if not broken and int(message[:6]) != n:
                broken = True
            n += 0 if broken else 1
            if n % 1000 == 0:
                await asyncio.sleep(0.005)


async def main(host: str, port: int, max_message: int, tls: dict | None) -> None:
    app = App()
    app_endpoints(app)

    async def on_message(msg: WebSocketMessage) -> WebSocketMessage:
        return msg

    for path in ("/", "/{path:path}"):
        @app.websocket(path, max_message_size=max_message)
        async def echo(request) -> WebSocketResponse:
            return WebSocketResponse(on_message=on_message)

    running = await app.start(host, port, ssl=tls)
    print(f"listening on {host}:{port}", flush=True)
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, lambda: stop.done() or stop.set_result(None))
    await asyncio.wait([stop, asyncio.ensure_future(running.wait_closed())],
                       return_when=asyncio.FIRST_COMPLETED)
    await running.stop(2.0)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--max-message", type=int, default=1 << 20)
    ap.add_argument("--cert")
    ap.add_argument("--key")
    args = ap.parse_args()
    tls = {"certfile": args.cert, "keyfile": args.key} if args.cert else None
    asyncio.run(main(args.host, args.port, args.max_message, tls))
