"""Cross-language scaling: a Python package server, a Node package server and
a `wire_chat --workers 2` supervisor on one real redis-server. A message
published in any of them reaches the room's members in every process, once,
and so does a plain `redis-cli PUBLISH`."""

import asyncio
import os
import socket
import subprocess
import time
from pathlib import Path

import pytest
import websockets
from test_scaling import Chat, Redis, free_port, members, nothing_more, recv, wait_numsub

ROOT = Path(__file__).resolve().parents[2]
SERVERS = Path(__file__).resolve().parent / "servers"
PY = ROOT / "build" / "py-venv" / "bin" / "python"
NODE_PACKAGE = Path(os.environ.get("WIRECORE_PACKAGE", ROOT / "packages" / "node"))


class PackageServer:
    """A package's chat server process, waited for until it accepts."""

    def __init__(self, argv):
        self.port = free_port()
        self.log = open(f"/tmp/wirecore_xlang_{self.port}.log", "w+")
        self.proc = subprocess.Popen([*argv(self.port)], stdout=self.log, stderr=self.log)
        deadline = time.time() + 20
        while time.time() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"{argv(self.port)[0]} exited: {self.read_log()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        pytest.fail(f"server did not start: {self.read_log()}")

    def read_log(self):
        self.log.flush()
        with open(self.log.name) as f:
            return f.read()

    def url(self, room):
        return f"ws://127.0.0.1:{self.port}/chat/{room}"

    def stop(self):
        self.proc.terminate()
        try:
            return self.proc.wait(timeout=20)
        finally:
            self.log.close()


def python_server(redis):
    if not PY.exists():
        pytest.fail(f"{PY} missing: run scripts/test.d/20-python.sh first")
    return PackageServer(lambda port: [str(PY), str(SERVERS / "py_chat.py"), str(port), redis.url])


def node_server(redis):
    if not list((NODE_PACKAGE / "build").glob("**/wirecore.node")):
        pytest.fail(f"the Node addon is not built in {NODE_PACKAGE}: run scripts/test.d/30-node.sh")
    return PackageServer(lambda port: ["node", str(SERVERS / "node_chat.mjs"), str(NODE_PACKAGE),
                                       str(port), redis.url])


def test_python_node_and_workers_share_rooms_through_redis(redis_server):
    redis = redis_server
    py = python_server(redis)
    node = node_server(redis)
    chat = Chat(redis, workers=2)

    async def main():
        a = await websockets.connect(py.url("lobby"))
        b = await websockets.connect(node.url("lobby"))
        await wait_numsub(redis, "wirecore:lobby", 2)
        cs = await members(redis, chat, "lobby", "wirecore:lobby", want=4)
        everyone = [a, b, *cs]
        for sender, text in [(a, "from python"), (b, "from node"), (cs[0], "from a worker")]:
            await sender.send(text)
            for ws in everyone:
                assert await recv(ws) == text
        assert redis.cli("PUBLISH", "wirecore:lobby", "from redis-cli") == "4"
        for ws in everyone:
            assert await recv(ws) == "from redis-cli"
        for ws in everyone:
            await nothing_more(ws, 0.1)
            await ws.close()

    try:
        asyncio.run(main())
    finally:
        codes = (py.stop(), node.stop(), chat.stop())
    assert codes == (0, 0, 0)


@pytest.fixture
def redis_server():
    r = Redis()
    yield r
    r.kill()
