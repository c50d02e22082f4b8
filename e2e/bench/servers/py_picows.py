"""Echo server on picows (Cython, asyncio), the fast Python peer of the benchmark.

Usage: python3 py_picows.py [--host H] [--port P]
picows hands frames, not messages: the load generator never fragments, so a
frame is a message here. Close frames are answered by closing.
"""
import argparse
import asyncio

from picows import WSFrame, WSListener, WSMsgType, WSTransport, ws_create_server


class Echo(WSListener):
    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type == WSMsgType.CLOSE:
            transport.send_close(frame.get_close_code(), frame.get_close_message())
            transport.disconnect()
        elif frame.msg_type in (WSMsgType.TEXT, WSMsgType.BINARY):
            transport.send(frame.msg_type, frame.get_payload_as_memoryview())


async def main(host: str, port: int) -> None:
    server = await ws_create_server(lambda request: Echo(), host, port,
                                    max_frame_size=64 * 1024 * 1024, backlog=4096)
    print(f"listening on {host}:{port}", flush=True)
    await server.serve_forever()


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=9002)
    args = ap.parse_args()
    try:
        asyncio.run(main(args.host, args.port))
    except KeyboardInterrupt:
        pass
