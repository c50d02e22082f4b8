"""End-to-end: the Python `websockets` client (PyPI) against build/wire_echo.

Runs the real example program on 127.0.0.1 and checks what a client nobody
here wrote sees: echoes with their kind, a 1 MiB message, a fragmented
message, ping/pong, close codes, a rejected handshake, graceful shutdown.
"""

import asyncio
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatus

from helpers import free_port

ROOT = Path(__file__).resolve().parent.parent
BUILD = Path(os.environ.get("WIRE_BUILD_DIR", ROOT / "build"))
ECHO = BUILD / "wire_echo"


@pytest.fixture
def echo_server():
    """Start wire_echo and wait for its 'listening on' line."""
    if not ECHO.exists():
        pytest.fail(f"{ECHO} not built (run scripts/build.sh first)")
    procs = []

    def start(*extra):
        port = free_port()
        proc = subprocess.Popen(
            [str(ECHO), "--port", str(port), *extra],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        procs.append(proc)
        line = proc.stdout.readline()
        assert line.strip() == f"listening on 127.0.0.1:{port}", line
        return proc, f"ws://127.0.0.1:{port}"

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5)


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, timeout=20))


def test_echoes_text_as_text_and_binary_as_binary(echo_server):
    _, url = echo_server()

    async def go():
        async with websockets.connect(url + "/any/path?x=1") as ws:
            await ws.send("héllo wörld")
            assert await ws.recv() == "héllo wörld"
            await ws.send(b"\x00\x01\xfe\xff")
            got = await ws.recv()
            assert isinstance(got, bytes) and got == b"\x00\x01\xfe\xff"
            await ws.send("")
            assert await ws.recv() == ""

    run(go())


def test_echoes_a_1_mib_message(echo_server):
    _, url = echo_server()
    payload = os.urandom(1 << 20)

    async def go():
        async with websockets.connect(url, max_size=None) as ws:
            await ws.send(payload)
            assert await ws.recv() == payload

    run(go())


def test_echoes_a_fragmented_message_whole(echo_server):
    _, url = echo_server()

    async def go():
        async with websockets.connect(url) as ws:
            await ws.send(["frag", "men", "ted ", "text"])
            assert await ws.recv() == "fragmented text"
            await ws.send([b"\x01", b"\x02\x03"])
            assert await ws.recv() == b"\x01\x02\x03"

    run(go())


def test_answers_ping_with_pong(echo_server):
    _, url = echo_server()

    async def go():
        async with websockets.connect(url) as ws:
            pong = await ws.ping(b"are you there")
            latency = await asyncio.wait_for(pong, 5)
            assert latency >= 0

    run(go())


def test_close_handshake_echoes_the_code(echo_server):
    _, url = echo_server()

    async def go():
        ws = await websockets.connect(url)
        await ws.close(code=4000, reason="done")
        assert ws.close_code == 4000
        assert ws.close_reason == "done"

    run(go())


def test_message_over_the_limit_closes_with_1009(echo_server):
    _, url = echo_server("--max-message", "1000")

    async def go():
        async with websockets.connect(url) as ws:
            await ws.send("a" * 1000)
            assert await ws.recv() == "a" * 1000
            await ws.send("a" * 1001)
            with pytest.raises(ConnectionClosed) as info:
                await ws.recv()
            assert info.value.rcvd.code == 1009

    run(go())


def test_invalid_utf8_closes_with_1007(echo_server):
    _, url = echo_server()

    async def go():
        async with websockets.connect(url) as ws:
            # the client library refuses to send bad text, so write a raw frame
            from websockets.frames import Frame, Opcode

            ws.protocol.send_frame(Frame(Opcode.TEXT, b"\xc3\x28"))
            ws.send_data()  # noqa: internal flush in websockets >= 14
            with pytest.raises(ConnectionClosed) as info:
                await ws.recv()
            assert info.value.rcvd.code == 1007

    try:
        run(go())
    except AttributeError:
        pytest.skip("this websockets version has no raw frame API")


def test_rejected_handshake_gets_an_http_error_status(echo_server):
    _, url = echo_server()
    port = int(url.rsplit(":", 1)[1])

    # a request without Sec-WebSocket-Key is refused with 400
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(
            b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        assert data.startswith(b"HTTP/1.1 400 "), data

    # and the client library sees a wrong version as 426
    async def go():
        with pytest.raises(InvalidStatus) as info:
            async with websockets.connect(
                url, additional_headers={"Sec-WebSocket-Version": "12"}
            ):
                pass
        assert info.value.response.status_code in (400, 426)

    try:
        run(go())
    except TypeError:
        pytest.skip("this websockets version cannot override the version header")


def test_sigterm_closes_clients_with_1001_and_exits_0(echo_server):
    proc, url = echo_server()

    async def go():
        async with websockets.connect(url) as ws:
            await ws.send("still here")
            assert await ws.recv() == "still here"
            proc.send_signal(signal.SIGTERM)
            with pytest.raises(ConnectionClosed) as info:
                await ws.recv()
            assert info.value.rcvd.code == 1001

    run(go())
    assert proc.wait(timeout=10) == 0


def test_many_concurrent_clients_each_get_their_own_echo(echo_server):
    _, url = echo_server()

    async def client(i):
        async with websockets.connect(url) as ws:
            for j in range(20):
                msg = f"{i}:{j}"
                await ws.send(msg)
                assert await ws.recv() == msg

    async def go():
        await asyncio.gather(*(client(i) for i in range(50)))

    run(go())


def test_wire_chat_relays_text_within_a_room_only():
    chat_bin = BUILD / "wire_chat"
    port = free_port()
    proc = subprocess.Popen(
        [str(chat_bin), "--port", str(port)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout.readline().strip() == f"listening on 127.0.0.1:{port}"
        base = f"ws://127.0.0.1:{port}/chat/"

        async def go():
            async with websockets.connect(base + "blue") as a, websockets.connect(
                base + "blue"
            ) as b, websockets.connect(base + "red") as c:
                await a.send('{"type":"chat","text":"hi"}')
                assert await b.recv() == '{"type":"chat","text":"hi"}'
                assert await a.recv() == '{"type":"chat","text":"hi"}'
                with pytest.raises(asyncio.TimeoutError):
                    await asyncio.wait_for(c.recv(), 0.3)
            with pytest.raises(InvalidStatus) as info:
                async with websockets.connect(f"ws://127.0.0.1:{port}/elsewhere"):
                    pass
            assert info.value.response.status_code == 404

        run(go())
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
