"""End-to-end: the C examples (build/wire_echo, build/wire_chat) stop on
SIGTERM/SIGINT without losing the signal, wherever it lands: right after a
client closes (while the server is busy with that close), right after the
"listening on" line, and before the program has even started listening.

Every stop is graceful: exit status 0, and clients still connected get 1001.
"""

import asyncio
import os
import signal
import subprocess
from pathlib import Path

import pytest
import websockets
from websockets.exceptions import ConnectionClosed

from helpers import free_port

ROOT = Path(__file__).resolve().parent.parent
BUILD = Path(os.environ.get("WIRE_BUILD_DIR", ROOT / "build"))
ROUNDS = 20


def start(program, port, blocked=()):
    """Start an example; with `blocked`, it starts with those signals blocked
    (the mask is inherited across exec), so a signal sent at once is pending
    from before its main() runs."""
    path = BUILD / program
    if not path.exists():
        pytest.fail(f"{path} not built (run scripts/build.sh first)")
    old = signal.pthread_sigmask(signal.SIG_BLOCK, blocked)
    try:
        return subprocess.Popen(
            [str(path), "--port", str(port)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def stop(proc):
    """The exit status, killing the process if it did not stop by itself."""
    try:
        return proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return "still running 10 s after the signal"
    finally:
        proc.stdout.close()
        proc.stderr.close()


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, timeout=30))


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_right_after_the_last_client_closes_is_never_lost(sig):
    statuses = []
    for _ in range(ROUNDS):
        port = free_port()
        proc = start("wire_echo", port)
        assert proc.stdout.readline().strip() == f"listening on 127.0.0.1:{port}"

        async def go():
            async with websockets.connect(f"ws://127.0.0.1:{port}/") as ws:
                await ws.send("bye")
                assert await ws.recv() == "bye"
            # the server may be handling that close right now, with no timer
            proc.send_signal(sig)

        run(go())
        statuses.append(stop(proc))
    assert statuses == [0] * ROUNDS


def test_a_signal_right_after_a_client_closes_closes_the_others_with_1001():
    statuses = []
    for _ in range(ROUNDS):
        port = free_port()
        proc = start("wire_echo", port)
        assert proc.stdout.readline().strip() == f"listening on 127.0.0.1:{port}"
        url = f"ws://127.0.0.1:{port}/"

        async def go():
            async with websockets.connect(url) as stays:
                async with websockets.connect(url) as leaves:
                    await leaves.send("bye")
                    assert await leaves.recv() == "bye"
                proc.send_signal(signal.SIGTERM)
                with pytest.raises(ConnectionClosed) as info:
                    await stays.recv()
                return info.value.rcvd.code

        assert run(go()) == 1001
        statuses.append(stop(proc))
    assert statuses == [0] * ROUNDS


def test_sigterm_right_after_the_listening_line_exits_0():
    statuses = []
    for _ in range(ROUNDS):
        port = free_port()
        proc = start("wire_echo", port)
        assert proc.stdout.readline().strip() == f"listening on 127.0.0.1:{port}"
        proc.send_signal(signal.SIGTERM)
        statuses.append(stop(proc))
    assert statuses == [0] * ROUNDS


@pytest.mark.parametrize("program", ["wire_echo", "wire_chat"])
def test_sigterm_pending_before_main_exits_0(program):
    for _ in range(5):
        proc = start(program, free_port(), blocked=[signal.SIGTERM])
        proc.send_signal(signal.SIGTERM)
        assert stop(proc) == 0
