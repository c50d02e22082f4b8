"""Echo server on socketify (uWebSockets under Python, through cffi): the
uWebSockets peer of the Python table.

Usage: python3 py_socketify.py [--host H] [--port P]
Every message goes back as it came (text stays text). Compression off, no
idle timeout, backpressure limit 4 MiB like Wirecore's default.
"""
import argparse

from socketify import App, AppListenOptions, CompressOptions


def on_message(ws, message, opcode) -> None:
    ws.send(message, opcode)


def main(host: str, port: int) -> None:
    app = App()
    app.ws("/*", {
        "compression": CompressOptions.DISABLED,
        "max_payload_length": 64 * 1024 * 1024,
        "max_backpressure": 4 * 1024 * 1024,
        "idle_timeout": 0,
        "message": on_message,
    })

    def listening(config) -> None:
        print(f"listening on {host}:{port}", flush=True)

    app.listen(AppListenOptions(port=port, host=host), listening)
    app.run()


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=9011)
    args = ap.parse_args()
    try:
        main(args.host, args.port)
    except KeyboardInterrupt:
        pass
