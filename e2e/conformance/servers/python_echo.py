"""Conformance echo server on Wirecore's Python package.

Usage: python python_echo.py --port P [--host H] [--max-message BYTES]
Every text or binary message on any path goes back as it came. Prints
"listening on H:P" once the listener is up; SIGTERM/SIGINT stop it.
"""
import argparse
import asyncio
import signal

from wirecore import App, WebSocketMessage, WebSocketResponse


async def main(host: str, port: int, max_message: int) -> None:
    app = App()

    async def on_message(msg: WebSocketMessage) -> WebSocketMessage:
        return msg

    for path in ("/", "/{path:path}"):
        @app.websocket(path, max_message_size=max_message)
        async def echo(request) -> WebSocketResponse:
            return WebSocketResponse(on_message=on_message)

    running = await app.start(host, port)
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
    args = ap.parse_args()
    asyncio.run(main(args.host, args.port, args.max_message))
