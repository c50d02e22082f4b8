"""End-to-end: the C examples' --metrics, --metrics-port and --log-json
(docs/operations.md). build/wire_echo prints one JSON line per connection
event on stderr, and with --workers 2 whichever worker answers /metrics sums
both workers' traffic (parsed with the official Prometheus parser)."""

import asyncio
import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
import websockets
from prometheus_client.parser import text_string_to_metric_families

from helpers import free_port

ROOT = Path(__file__).resolve().parent.parent
BUILD = Path(os.environ.get("WIRE_BUILD_DIR", ROOT / "build"))


def start(*args):
    path = BUILD / "wire_echo"
    if not path.exists():
        pytest.fail(f"{path} not built (run scripts/build.sh first)")
    return subprocess.Popen([str(path), *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def wait_port(port, timeout=10):
    end = time.time() + timeout
    while time.time() < end:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.02)
    raise AssertionError(f"port {port} never accepted")


def http_get(port, path):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.decode().partition("\r\n\r\n")
    return int(head.split()[1]), body


def samples(text):
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for f in text_string_to_metric_families(text) for s in f.samples}


def stop(proc):
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    return out, err


async def echo(port, path, text, close_code=1000):
    async with websockets.connect(f"ws://127.0.0.1:{port}{path}") as ws:
        await ws.send(text)
        assert await ws.recv() == text
        await ws.close(close_code)


def test_log_json_prints_one_line_per_event_and_metrics_count_them():
    port = free_port()
    proc = start("--port", str(port), "--metrics", "--log-json")
    try:
        wait_port(port)
        asyncio.run(echo(port, "/room", "hello"))
        asyncio.run(echo(port, "/room", "bye!", 4000))
        status, body = http_get(port, "/metrics")
        assert status == 200
        m = samples(body)
        ep = (("path", "/{path:path}"),)
        assert m[("wirecore_connections_total", ep)] == 2
        assert m[("wirecore_received_bytes_total", ep)] == 9
        assert m[("wirecore_connections_closed_total", (("code", "app"),) + ep)] == 1
        assert http_get(port, "/health") == (200, '{"status":"ok","connections":0,"broker":"none"}\n')
    finally:
        _, err = stop(proc)
    events = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    opens = [e for e in events if e["event"] == "open"]
    closes = [e for e in events if e["event"] == "close"]
    assert len(opens) == 2 and all(e["path"] == "/room" and e["remote"] == "127.0.0.1" for e in opens)
    assert [(e["code"], e["bytes_in"], e["bytes_out"]) for e in closes] == [(1000, 5, 5), (4000, 4, 4)]
    assert all(e["level"] == "info" and e["duration"] >= 0 for e in closes)


def test_workers_sum_both_workers_on_the_metrics_port():
    port, mport = free_port(), free_port()
    proc = start("--port", str(port), "--workers", "2", "--metrics-port", str(mport))
    try:
        wait_port(port)
        wait_port(mport)
        time.sleep(0.3)  # both workers listen

        async def traffic():
            for i in range(20):  # SO_REUSEPORT spreads them over both workers
                await echo(port, "/w", f"m{i:02d}")

        asyncio.run(traffic())
        for _ in range(6):  # whichever worker answers sums both
            status, body = http_get(mport, "/metrics")
            assert status == 200
            m = samples(body)
            ep = (("path", "/{path:path}"),)
            assert m[("wirecore_workers", ())] == 2
            assert m[("wirecore_connections_total", ep)] == 20
            assert m[("wirecore_messages_received_total", ep)] == 20
            assert m[("wirecore_received_bytes_total", ep)] == 60
        assert http_get(mport, "/w")[0] == 404
    finally:
        stop(proc)
