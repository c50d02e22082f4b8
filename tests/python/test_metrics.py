"""Metrics, health and logs (docs/operations.md): /metrics parsed with the
official Prometheus parser and checked against the traffic made here,
app.stats(), /health during a drain and with a real redis-server killed,
the merged view of app.run(workers=2), and the core's events in `logging`."""

from __future__ import annotations

import asyncio
import json
import logging
import time

import pytest
import websockets
from prometheus_client.parser import text_string_to_metric_families

from wirecore import App

from conftest import eventually, workers_echo


async def http_get(port: int, path: str) -> tuple[int, dict[str, str], str]:
    """A plain HTTP/1.1 GET over a real socket; the server closes after answering."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    await writer.drain()
    data = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    head, _, body = data.decode().partition("\r\n\r\n")
    lines = head.split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    assert int(headers["Content-Length"]) == len(body.encode())
    return int(lines[0].split()[1]), headers, body


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of an exposition, keyed by (name, sorted labels)."""
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def echo_app(**options) -> App:
    app = App(**options)

    @app.websocket("/echo")
    async def echo(message: str) -> str:
        return message

    return app


async def test_metrics_count_the_traffic_exactly():
    app = echo_app(metrics_path="/metrics", health_path="/health")
    async with app.test_server() as server:
        for i in range(3):
            async with websockets.connect(server.url("/echo")) as ws:
                for _ in range(4):
                    await ws.send('"hello"')  # 7 bytes
                    assert await ws.recv() == '"hello"'
                if i == 2:
                    await ws.close(4001, "bye")
        await eventually(lambda: app.stats()["connections"] == 0)
        status, headers, body = await http_get(server.port, "/metrics")
        assert status == 200
        assert headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
        m = samples(body)
        ep = (("path", "/echo"),)
        assert m[("wirecore_connections_total", ep)] == 3
        assert m[("wirecore_connections_open", ep)] == 0
        assert m[("wirecore_messages_received_total", ep)] == 12
        assert m[("wirecore_received_bytes_total", ep)] == 12 * 7
        assert m[("wirecore_messages_sent_total", ep)] == 12
        assert m[("wirecore_sent_bytes_total", ep)] == 12 * 7
        assert m[("wirecore_connections_closed_total", (("code", "1000"), ("path", "/echo")))] == 2
        assert m[("wirecore_connections_closed_total", (("code", "app"), ("path", "/echo")))] == 1
        assert m[("wirecore_handshakes_total", (("status", "101"),))] == 3
        assert m[("wirecore_handler_duration_seconds_count", ep)] == 12
        assert m[("wirecore_handler_duration_seconds_bucket", (("le", "+Inf"), ("path", "/echo")))] == 12
        assert m[("wirecore_workers", ())] == 1

        stats = app.stats()
        assert stats == server.stats()
        assert stats["connections_total"] == 3
        assert stats["messages_in"] == 12 and stats["bytes_out"] == 84
        assert stats["handshakes"] == {"101": 3}
        assert stats["endpoints"]["/echo"]["close_codes"] == {"1000": 2, "app": 1}
        assert stats["endpoints"]["/echo"]["handler_count"] == 12
        assert stats["broker"] is None

        status, headers, body = await http_get(server.port, "/health")
        assert status == 200 and headers["Content-Type"] == "application/json"
        assert json.loads(body) == {"status": "ok", "connections": 0, "broker": "none"}
    assert app.stats() is None  # stopped


async def test_invalid_messages_are_counted_by_kind():
    app = App(metrics_path="/metrics")

    @app.websocket("/typed")
    async def typed(message: int) -> int:
        return message

    async with app.test_server() as server:
        async with websockets.connect(server.url("/typed")) as ws:
            await ws.send('"not an int"')
            await ws.recv()  # the error reply
            await ws.send("{bad json")
            await ws.recv()
        _, _, body = await http_get(server.port, "/metrics")
        m = samples(body)
        errors = {labels: v for (name, labels), v in m.items() if name == "wirecore_errors_total"}
        assert errors == {(("error", "validation"), ("path", "/typed")): 1,
                          (("error", "deserialize"), ("path", "/typed")): 1}


async def test_without_paths_the_port_answers_plain_gets_as_before():
    async with echo_app().test_server() as server:
        status, _, _ = await http_get(server.port, "/metrics")
        assert status == 400  # not an upgrade


async def test_health_is_503_while_draining_on_the_metrics_port():
    app = echo_app(metrics_port=0)
    async with app.test_server() as server:
        port = server.metrics_port
        assert port and port != server.port
        async with websockets.connect(server.url("/echo")) as ws:
            status, _, body = await http_get(port, "/health")
            assert status == 200 and json.loads(body)["connections"] == 1
            assert (await http_get(port, "/echo"))[0] == 404
            server._server.drain(30000)  # what SIGHUP does in a worker
            status, _, body = await http_get(port, "/health")
            assert status == 503
            assert json.loads(body) == {"status": "draining", "connections": 1, "broker": "none"}
            await ws.send('"still served"')
            assert await ws.recv() == '"still served"'


async def test_health_follows_the_broker(redis_server):
    proc, url = redis_server
    app = echo_app(broker=url, health_path="/health", metrics_path="/metrics")
    async with app.test_server() as server:
        await eventually(lambda: server.broker_stats()["state"] == "up", 5)
        status, _, body = await http_get(server.port, "/health")
        assert (status, json.loads(body)["broker"]) == (200, "up")
        m = samples((await http_get(server.port, "/metrics"))[2])
        assert m[("wirecore_broker_up", ())] == 1
        proc.kill()
        proc.wait()
        await eventually(lambda: server.broker_stats()["state"] == "down", 5)
        status, _, body = await http_get(server.port, "/health")
        assert status == 503
        assert json.loads(body) == {"status": "broker_down", "connections": 0, "broker": "down"}
        m = samples((await http_get(server.port, "/metrics"))[2])
        assert m[("wirecore_broker_up", ())] == 0


async def test_connection_events_reach_the_wirecore_logger(caplog):
    caplog.set_level(logging.INFO, logger="wirecore")
    app = echo_app()
    async with app.test_server() as server:
        async with websockets.connect(server.url("/echo")) as ws:
            await ws.send('"abc"')
            await ws.recv()
            await ws.send("{nope")
            await ws.recv()
        async with websockets.connect(server.url("/echo")):
            pass
        await eventually(lambda: sum(getattr(r, "wirecore", {}).get("event") == "close"
                                     for r in caplog.records) == 2)
        with pytest.raises(websockets.InvalidStatus):
            await websockets.connect(server.url("/missing"))
        await eventually(lambda: any(getattr(r, "wirecore", {}).get("event") == "reject"
                                     for r in caplog.records))
    events = [r.wirecore for r in caplog.records if hasattr(r, "wirecore")]
    kinds = [e["event"] for e in events]
    assert kinds.count("open") == 2 and kinds.count("close") == 2
    first_close = next(e for e in events if e["event"] == "close")
    assert first_close["code"] == 1000 and first_close["path"] == "/echo"
    assert first_close["bytes_in"] == 5 + 5 and first_close["remote"] == "127.0.0.1"
    error = next(e for e in events if e["event"] == "error")
    assert error["error"] == "EDESERIALIZE"
    reject = next(e for e in events if e["event"] == "reject")
    assert reject["status"] == 404
    messages = [r.getMessage() for r in caplog.records if hasattr(r, "wirecore")]
    assert any(m.startswith("wirecore: close 127.0.0.1:") and "code=1000" in m for m in messages)


async def test_no_events_are_built_when_the_logger_is_quiet(caplog):
    caplog.set_level(logging.WARNING, logger="wirecore")
    async with echo_app().test_server() as server:
        async with websockets.connect(server.url("/echo")) as ws:
            await ws.send('"x"')
            await ws.recv()
    assert not [r for r in caplog.records if hasattr(r, "wirecore")]


async def test_workers_report_one_merged_view(tmp_path):
    with workers_echo(tmp_path, metrics_path="/metrics") as (port, _, log):
        deadline = time.time() + 15
        while time.time() < deadline and log.read_text().count("started") < 2:
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)
        n = 20
        for _ in range(n):  # SO_REUSEPORT spreads these over both workers
            async with websockets.connect(f"ws://127.0.0.1:{port}/echo") as ws:
                await ws.send('"hi"')
                assert await ws.recv() == '"hi"'
        for _ in range(6):  # whichever worker answers sums both
            status, _, body = await http_get(port, "/metrics")
            assert status == 200
            m = samples(body)
            assert m[("wirecore_workers", ())] == 2
            assert m[("wirecore_connections_total", (("path", "/echo"),))] == n
            assert m[("wirecore_messages_received_total", (("path", "/echo"),))] == n
            assert m[("wirecore_handler_duration_seconds_count", (("path", "/echo"),))] == n
