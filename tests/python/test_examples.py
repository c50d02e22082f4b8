"""Each example in packages/python/examples runs, answers, and stops on SIGTERM."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys

import msgpack
import pytest
import websockets

from conftest import REPO

EXAMPLES = REPO / "packages" / "python" / "examples"


class Example:
    def __init__(self, name: str, *args: str, stop: signal.Signals = signal.SIGTERM) -> None:
        self.name, self.args, self.stop = name, args, stop
        self.proc: asyncio.subprocess.Process | None = None
        self.url = ""
        self.lines: list[str] = []
        self.signalled = False

    async def __aenter__(self) -> "Example":
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, str(EXAMPLES / self.name), "--port", "0", *self.args,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, cwd=str(EXAMPLES),
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        while True:
            line = (await asyncio.wait_for(self.proc.stdout.readline(), 20)).decode()
            if not line:
                raise AssertionError(f"{self.name} exited early: {''.join(self.lines)}")
            self.lines.append(line)
            if line.startswith("listening on "):
                self.url = line.split()[-1].rstrip("/")
                break
        return self

    async def next_line(self) -> str:
        return (await asyncio.wait_for(self.proc.stdout.readline(), 10)).decode()

    async def __aexit__(self, *exc) -> None:
        proc = self.proc
        if proc.returncode is None:
            if not self.signalled:
                proc.send_signal(self.stop)
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except asyncio.TimeoutError:
                proc.kill()
                await proc.wait()
                raise AssertionError(f"{self.name} did not stop on {self.stop.name}")
        assert proc.returncode == 0, f"{self.name} exited with {proc.returncode}"


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=["sigterm", "sigint"])
async def test_echo_example(stop):
    async with Example("echo.py", stop=stop) as ex:
        async with websockets.connect(ex.url + "/echo") as c:
            await c.send("hi")
            assert await c.recv() == "hi"
        async with websockets.connect(ex.url + "/stream") as c:
            await c.send("hi")
            assert await c.recv() == "HI"
        async with websockets.connect(ex.url + "/json") as c:
            await c.send('{"text": "x"}')
            assert json.loads(await c.recv()) == {"text": "x"}
        # a connection still open at shutdown is closed with 1001 (going away)
        async with websockets.connect(ex.url + "/stream") as held:
            ex.proc.send_signal(stop)
            ex.signalled = True
            with pytest.raises(websockets.ConnectionClosed) as info:
                await asyncio.wait_for(held.recv(), 10)
            assert info.value.rcvd.code == 1001


async def test_chat_example_with_rooms_and_static_page():
    async with Example("chat.py", "--http-port", "0") as ex:
        http = (await ex.next_line()).split()[-1]
        host, port = http.split("//")[1].rstrip("/").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        page = await asyncio.wait_for(reader.read(), 5)
        writer.close()
        assert page.startswith(b"HTTP/1.1 200") and b"<title>Wirecore chat</title>" in page
        def event(raw):  # room events come in the history envelope, typing notices do not
            m = json.loads(raw)
            return m["data"] if "offset" in m else m

        async with websockets.connect(ex.url + "/chat/r1?user=ann") as ann:
            assert event(await ann.recv())["type"] == "join"
            async with websockets.connect(ex.url + "/chat/r1?user=bob") as bob, \
                    websockets.connect(ex.url + "/chat/other?user=eve") as eve:
                joined = json.loads(await ann.recv())
                assert joined["topic"] == "room:r1" and joined["offset"]
                assert joined["data"] == {"type": "join", "user": "bob", "members": ["ann", "bob"]}
                await bob.recv()
                await eve.recv()
                await bob.send(json.dumps({"type": "chat", "user": "bob", "text": "hello"}))
                for c in (ann, bob):
                    assert event(await c.recv()) == {"type": "chat", "user": "bob", "text": "hello"}
                await bob.send(json.dumps({"type": "typing"}))
                assert json.loads(await ann.recv()) == {"type": "typing", "user": "bob"}
                await bob.send(json.dumps({"type": "chat"}))
                assert json.loads(await bob.recv())["type"] == "error"
                with pytest.raises(asyncio.TimeoutError):
                    await asyncio.wait_for(eve.recv(), 0.2)  # other rooms hear nothing
            leave = json.loads(await ann.recv())
            assert leave["data"]["type"] == "leave"
        # ann comes back with her last position: the chat she missed, then her join
        async with websockets.connect(ex.url + "/chat/r1?user=bob") as bob:
            await bob.recv()
            await bob.send(json.dumps({"type": "chat", "user": "bob", "text": "missed"}))
            await bob.recv()
            async with websockets.connect(ex.url + f"/chat/r1?user=ann&since={leave['offset']}") as ann:
                missed = [event(await ann.recv()) for _ in range(4)]
                assert [m["type"] for m in missed] == ["leave", "join", "chat", "join"]
                assert missed[0]["user"] == "ann" and missed[1]["user"] == "bob"  # her leave, his join
                assert missed[2] == {"type": "chat", "user": "bob", "text": "missed"}
                assert missed[3] == {"type": "join", "user": "ann", "members": ["ann", "bob"]}
            async with websockets.connect(ex.url + "/chat/r1?user=cy&since=0123456789abcdef:1") as cy:
                kept, offsets = [], []
                while "offset" in (m := json.loads(await cy.recv())):  # all the room keeps, then notes
                    kept.append(m["data"])
                    offsets.append(int(m["offset"].split(":")[1]))
                assert m == {"type": "history", "recovered": False, "reason": "epoch"}
                assert json.loads(await cy.recv()) == {"type": "join", "user": "cy", "members": ["bob", "cy"]}
                assert [k["text"] for k in kept if k["type"] == "chat"] == ["hello", "missed"]
                assert offsets == list(range(1, len(offsets) + 1))


async def test_jsonrpc_example():
    async with Example("jsonrpc.py") as ex:
        async with websockets.connect(ex.url + "/rpc") as c:
            async def call(obj):
                await c.send(json.dumps(obj) if not isinstance(obj, str) else obj)
                return json.loads(await c.recv())

            assert await call({"jsonrpc": "2.0", "method": "add", "params": [1, 2], "id": 1}) == {
                "jsonrpc": "2.0", "result": 3, "id": 1}
            assert (await call({"jsonrpc": "2.0", "method": "nope", "params": [], "id": 2}))["error"]["code"] in (
                -32601, -32602)
            assert (await call({"jsonrpc": "2.0", "method": "add", "params": "x", "id": 3}))["error"]["code"] == -32602
            assert (await call("{bad"))["error"]["code"] == -32700
            assert (await call({"jsonrpc": "2.0", "method": "divide", "params": [1, 0], "id": 4}))["error"]["code"] == -32000
            assert (await call({"jsonrpc": "2.0", "method": "echo", "params": {"a": 1}, "id": 5}))["result"] == {"a": 1}


async def test_msgpack_example():
    async with Example("msgpack_room.py") as ex:
        async with websockets.connect(ex.url + "/game/t1") as c:
            assert msgpack.unpackb(await c.recv()) == {"type": "hello", "table": "t1"}
            await c.send(msgpack.packb({"type": "move", "x": 1, "y": 2}))
            assert msgpack.unpackb(await c.recv()) == {"ok": True, "moves": 1}
            await c.send(msgpack.packb({"type": "move", "x": "a", "y": 2}))
            assert msgpack.unpackb(await c.recv()) == {"ok": False, "path": "/x", "keyword": "type"}
