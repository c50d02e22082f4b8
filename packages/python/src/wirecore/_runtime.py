"""asyncio <-> core plumbing: the host-driven loop and the coroutine fast path.

The core runs on its own libuv loop. asyncio watches that loop's backend fd
(`add_reader`) and calls `process()` when it is readable; after every call it
asks for the timeout again (0: process again at once, -1: fd only, N ms: a
timer), because libuv finishes some work one iteration later without the fd
becoming readable.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Callable

from . import _native

log = logging.getLogger("wirecore")

__all__ = ["Driver", "drive"]


class Driver:
    """Drives one native server from an asyncio loop."""

    def __init__(self, server: _native.Server, loop: asyncio.AbstractEventLoop) -> None:
        self.server = server
        self.loop = loop
        self._handle: asyncio.Handle | None = None
        self._soon = False
        self._fd = server.fd()
        self._stopped = False
        self.done = loop.create_future()
        loop.add_reader(self._fd, self.process)
        self.kick()

    def process(self) -> None:
        if self._stopped:
            return
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self._soon = False
        try:
            alive = self.server.process()
        except Exception:  # a callback bug must not kill the loop integration
            log.exception("wirecore: error while processing the server loop")
            alive = not self.server.closed
        if not alive:
            self.stop()
            return
        timeout = self.server.timeout()
        if timeout == 0:
            self._soon = True
            self._handle = self.loop.call_soon(self.process)
        elif timeout > 0:
            self._handle = self.loop.call_later(timeout / 1000.0, self.process)

    def kick(self) -> None:
        """Something changed outside process() (a resume, a send): process soon."""
        if self._soon or self._stopped:
            return
        if self._handle is not None:
            self._handle.cancel()
        self._soon = True
        self._handle = self.loop.call_soon(self.process)

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        try:
            self.loop.remove_reader(self._fd)
        except Exception:  # the loop may already be closing
            pass
        if not self.done.done():
            self.done.set_result(None)


class _Resume:
    """Awaitable that finishes a coroutine already advanced by one send().

    The coroutine yielded `first` (a future, or None for a bare yield); the
    task that awaits this object waits on it, then keeps driving the
    coroutine, forwarding exceptions (cancellation) into it.
    """

    __slots__ = ("coro", "first")

    def __init__(self, coro: Any, first: Any) -> None:
        self.coro = coro
        self.first = first

    def __await__(self):  # type: ignore[no-untyped-def]
        coro, pending = self.coro, self.first
        self.coro = self.first = None
        while True:
            try:
                yield pending
            except BaseException as exc:  # noqa: BLE001 - forwarded into the coroutine
                try:
                    pending = coro.throw(exc)
                except StopIteration as stop:
                    return stop.value
                continue
            try:
                pending = coro.send(None)
            except StopIteration as stop:
                return stop.value


async def _finish(coro: Any, first: Any, done: Callable[[Any, BaseException | None], None]) -> None:
    try:
        result = await _Resume(coro, first)
    except BaseException as exc:  # noqa: BLE001 - handed to `done`
        done(None, exc)
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        return
    done(result, None)


def drive(
    loop: asyncio.AbstractEventLoop,
    result: Any,
    done: Callable[[Any, BaseException | None], None],
) -> asyncio.Task | None:
    """Complete a handler's result and call done(value, exc).

    `result` is what the handler returned: a plain value, or a coroutine that
    is run one step here. When it finishes without suspending, `done` runs now
    and no Task is created (returns None); otherwise the rest runs in a Task.
    """
    if not asyncio.iscoroutine(result):
        if hasattr(result, "__await__"):
            result = _await_any(result)
        else:
            done(result, None)
            return None
    try:
        first = result.send(None)
    except StopIteration as stop:
        done(stop.value, None)
        return None
    except BaseException as exc:  # noqa: BLE001 - handed to `done`
        done(None, exc)
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        return None
    return loop.create_task(_finish(result, first, done))


async def _await_any(awaitable: Any) -> Any:
    return await awaitable
