"""Shared helpers: every test talks to a real server on 127.0.0.1 and an
ephemeral port, through the package's test client or the `websockets` client."""

from __future__ import annotations

import asyncio
import pathlib

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


def _core_has_pipeline() -> bool:
    """True when the core decodes, validates and encodes values for endpoints
    (the typed handler styles need it); probed once with a real connection."""
    from wirecore import App

    app = App()

    @app.websocket("/probe")
    def probe(message: int) -> int:
        return message + 1

    async def run() -> bool:
        try:
            async with app.test_client() as client:
                async with client.websocket("/probe") as ws:
                    await ws.send_text("1")
                    return await ws.receive(timeout=2) == "2"
        except Exception:
            return False

    return asyncio.run(run())


_PIPELINE: list[bool] = []


@pytest.fixture
def pipeline() -> None:
    if not _PIPELINE:
        _PIPELINE.append(_core_has_pipeline())
    if not _PIPELINE[0]:
        pytest.skip("the core has no decode/validate/dispatch pipeline yet (core/src/pipeline.c)")
