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
