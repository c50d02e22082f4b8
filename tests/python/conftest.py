"""Shared helpers: every test talks to a real server on 127.0.0.1 and an
ephemeral port, through the package's test client or the `websockets` client."""

from __future__ import annotations

import asyncio
import contextlib
import pathlib
import signal
import socket
import subprocess
import sys
import textwrap
import time

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture
def repo_root() -> pathlib.Path:
    return REPO


async def eventually(predicate, timeout: float = 3.0, interval: float = 0.01) -> None:
    """Wait (bounded) until predicate() is true."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not predicate():
        if loop.time() > end:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(interval)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (for servers the
    test starts as processes; in-process servers bind port 0 themselves)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def redis_server():
    """A real redis-server on a free port, without persistence: yields
    (process, "redis://127.0.0.1:PORT/0"); killed after the test."""
    port = free_port()
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--daemonize", "no"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 5
    while time.time() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.02)
    yield proc, f"redis://127.0.0.1:{port}/0"
    proc.kill()
    proc.wait()


@pytest.fixture
def redis_url(redis_server):
    """The URL of a real redis-server (the redis_server fixture)."""
    return redis_server[1]


@contextlib.contextmanager
def workers_echo(tmp_path: pathlib.Path, **options):
    """An echo App(**options) (/echo) run with app.run(workers=2) in a Python
    process of its own: yields (port, process, log file); then stops it with
    SIGTERM and asserts it exited 0."""
    port = free_port()
    script = tmp_path / "served.py"
    script.write_text(textwrap.dedent(f"""
        import sys
        from wirecore import App

        app = App(**{options!r})

        @app.websocket("/echo")
        async def echo(message: str) -> str:
            return message

        app.run(port=int(sys.argv[1]), workers=2)
    """))
    log = tmp_path / "log"
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, str(script), str(port)], stdout=out, stderr=out)
    try:
        yield port, proc, log
    finally:
        proc.send_signal(signal.SIGTERM)
        status = proc.wait(20)
    assert status == 0, log.read_text()
