"""App(broker=...) against a real redis-server, and app.run(workers=N) as a
real supervisor with worker processes (docs/scaling.md)."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time

import pytest
import websockets
from websockets.exceptions import InvalidMessage

from wirecore import App, WirecoreError

from conftest import workers_echo


async def test_broker_connects_and_logs_each_state_change_once(redis_url, caplog):
    caplog.set_level(logging.INFO, logger="wirecore")
    app = App(broker=redis_url)

    @app.websocket("/echo")
    async def echo(message: str) -> str:
        return message

    async with app.test_server() as server:
        for _ in range(200):
            if server.broker_stats()["state"] == "up":
                break
            await asyncio.sleep(0.01)
        stats = server.broker_stats()
        assert stats["state"] == "up"
        assert stats["dropped"] == 0
    lines = [r.getMessage() for r in caplog.records if "broker" in r.getMessage()]
    assert lines == [f"wirecore: broker: connected to Redis at 127.0.0.1:{redis_url[18:-2]}"]


async def test_a_bad_broker_url_is_refused_with_the_reason():
    app = App(broker="http://127.0.0.1:6379")
    with pytest.raises(WirecoreError, match="redis://"):
        async with app.test_server():
            pass
    assert App().broker is None


async def test_no_broker_has_no_stats():
    async with App().test_server() as server:
        assert server.broker_stats() is None


def children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except FileNotFoundError:
        return []


async def echo_once(port: int) -> str:
    """One echo through the shared port. A connection the kernel queued on a
    worker's listening socket in the instant that worker closes it is reset
    (SO_REUSEPORT does not move it to the other listeners unless the machine
    sets net.ipv4.tcp_migrate_req): a client retries that once, as this does."""
    try:
        return await echo_attempt(port)
    except (ConnectionResetError, InvalidMessage):
        return await echo_attempt(port)


async def echo_attempt(port: int) -> str:
    async with websockets.connect(f"ws://127.0.0.1:{port}/echo") as ws:
        await ws.send('"hi"')  # a JSON string
        return await asyncio.wait_for(ws.recv(), 5)


async def test_run_with_workers_supervises_processes_that_share_the_port(tmp_path):
    with workers_echo(tmp_path) as (port, proc, log):
        deadline = time.time() + 15
        while time.time() < deadline and (len(children(proc.pid)) != 2 or
                                          log.read_text().count("started") < 2):
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)  # both workers listen
        before = children(proc.pid)
        assert len(before) == 2, log.read_text()
        for _ in range(10):
            assert await echo_once(port) == '"hi"'
        os.kill(before[0], signal.SIGKILL)  # replaced
        while time.time() < deadline and (len(children(proc.pid)) != 2 or
                                          before[0] in children(proc.pid)):
            await asyncio.sleep(0.05)
        assert before[1] in children(proc.pid)
        proc.send_signal(signal.SIGHUP)  # every worker replaced, one at a time
        while time.time() < deadline + 10 and "all 2 workers replaced" not in log.read_text():
            assert await echo_once(port) == '"hi"'
        while time.time() < deadline + 15 and len(children(proc.pid)) != 2:
            await asyncio.sleep(0.05)
        after = children(proc.pid)
        assert len(after) == 2 and not set(after) & set(before), log.read_text()
        assert await echo_once(port) == '"hi"'
    text = log.read_text()
    assert "was killed by signal 9; restarting" in text
    assert "all workers stopped" in text
