"""Chat relay on socketify (uWebSockets for Python): the fan-out peer with
topics of its own.

Usage: python3 py_socketify_chat.py [--host H] [--port P]
/chat/<room>: each connection subscribes to its room in `open`; a text message
is published to the room with app.publish (the sender included), as
build/wire_chat does. Compression is off.
"""
import argparse

from socketify import App, CompressOptions, OpCode


def main(host: str, port: int) -> None:
    app = App()

    def upgrade(res, req, socket_context):
        room = req.get_url().removeprefix("/chat/")
        res.upgrade(req.get_header("sec-websocket-key"), req.get_header("sec-websocket-protocol"),
                    req.get_header("sec-websocket-extensions"), socket_context, room)

    def message(ws, msg, opcode):
        if opcode == OpCode.TEXT:
            app.publish(ws.get_user_data(), msg, OpCode.TEXT)

    app.ws("/chat/*", {
        "compression": CompressOptions.DISABLED,
        "max_payload_length": 16 * 1024 * 1024,
        "max_backpressure": 64 * 1024 * 1024,
        "idle_timeout": 0,
        "upgrade": upgrade,
        "open": lambda ws: ws.subscribe(ws.get_user_data()),
        "message": message,
    })
    app.listen({"host": host, "port": port},
               lambda config: print(f"listening on {host}:{port}", flush=True))
    app.run()


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=9012)
    args = ap.parse_args()
    main(args.host, args.port)
