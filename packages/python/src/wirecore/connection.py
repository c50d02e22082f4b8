"""User-facing connection objects: WebSocketConnection (stream style),
WebSocketMessage and WebSocketResponse (callback style), and the WebSocket
base class of class endpoints.

Sends copy the bytes and write them at once. Send methods return an object
that may be awaited or not: awaited, it waits while the connection's queue is
over its send_high_water (flow control, docs/sessions.md); not awaited,
nothing waits and a peer too slow for the sender is closed by
max_backpressure (1008).
"""

from __future__ import annotations

import asyncio
import collections
from typing import TYPE_CHECKING, Any, AsyncIterator, Awaitable, Callable, ClassVar, TypedDict

from . import _native
from ._types import to_plain
from .errors import ConnectionClosed
from .request import QueryParams, Request
from .serializers import JSONSerializer, Serializer

if TYPE_CHECKING:
    from ._endpoints import ConnState

__all__ = ["WebSocketConnection", "WebSocketMessage", "WebSocketResponse", "WebSocket"]


class Recovery(TypedDict):
    """What ``ws.subscribe(topic, since=position)`` found (docs/scaling.md)."""

    recovered: bool  # every retained publication after `since` follows, then live ones
    reason: str | None  # None, "too_old", "epoch", "invalid" or "unavailable" (got "truncated")
    position: str  # the topic's current position
    replayed: int  # publications replayed from the history


def _subscribe(conn: _native.Conn, topic: str, since: str | None) -> Recovery | None:
    if since is None:
        conn.subscribe(topic)
        return None
    if not isinstance(since, str):
        raise TypeError(f"since must be str, not {type(since).__name__}")
    recovered, reason, position, replayed = conn.subscribe_since(topic, since)
    return {"recovered": recovered, "reason": reason, "position": position, "replayed": replayed}


class _Done:
    """An already finished awaitable: `ws.send_text(x)` works with or without await."""

    __slots__ = ()

    def __await__(self):  # type: ignore[no-untyped-def]
        return None
        yield  # pragma: no cover - makes this a generator


_DONE = _Done()

def _early(state: ConnState, fn: Callable[..., Any], *args: Any) -> Awaitable[None]:
    """A send or close made before the upgrade completed: run right after the
    101 (or at once after the close, where it raises ConnectionClosed)."""
    if state.closed:
        fn(*args)
    else:
        if state.early is None:
            state.early = []
        state.early.append((fn, args))
    return _DONE


def _flow(state: ConnState) -> Awaitable[None]:
    """What an awaited send waits for after queueing its message: nothing
    while the connection is writable (at or below its send_high_water), else
    the core's drain notification (Endpoint._on_drain) or the close."""
    conn = state.conn
    if conn.writable():
        return _DONE
    if not conn.is_open:
        return _DONE  # the next send raises ConnectionClosed
    fut = state.drain
    if fut is None:
        fut = state.drain = asyncio.get_running_loop().create_future()
    return fut


def _send_any(conn: _native.Conn, obj: Any) -> None:
    """A WebSocketMessage as it came, str as text, bytes-like as binary,
    anything else as JSON text."""
    conn.send_message(obj, to_plain)


class WebSocketMessage(_native.Message):
    """One received message: text (`str`) or binary (`bytes`).

    `data` holds the payload; is_text() and is_binary() come from the C base
    (the package creates one per received message)."""

    __slots__ = ()

    def as_text(self) -> str:
        d = self.data
        return d if isinstance(d, str) else bytes(d).decode("utf-8")

    def as_binary(self) -> bytes:
        d = self.data
        return d.encode("utf-8") if isinstance(d, str) else bytes(d)

    def as_json(self) -> Any:
        """Decode as JSON with the core's decoder (DeserializationError if not JSON)."""
        return _native.decode(self.data, _native.CODEC_JSON)

    def as_msgpack(self) -> Any:
        return _native.decode(self.as_binary(), _native.CODEC_MSGPACK)

    def __repr__(self) -> str:
        return f"WebSocketMessage({self.data!r})"


_native.set_message_class(WebSocketMessage)  # what callback-style handlers receive


class WebSocketResponse:
    """What a callback-style handler returns: the callbacks of one connection.

    on_connect(ws) runs after the upgrade; on_message(msg) returns a reply
    (WebSocketMessage, str, bytes, a JSON-able object, or None for no reply);
    on_error(exc) handles an exception raised by on_message and returns a
    reply; on_close(code, reason) runs once. Each may be sync or async and may
    take fewer arguments than listed.
    """

    __slots__ = ("on_connect", "on_message", "on_close", "on_error")

    def __init__(
        self,
        on_message: Callable[..., Any] | None = None,
        *,
        on_connect: Callable[..., Any] | None = None,
        on_close: Callable[..., Any] | None = None,
        on_error: Callable[..., Any] | None = None,
    ) -> None:
        self.on_message = on_message
        self.on_connect = on_connect
        self.on_close = on_close
        self.on_error = on_error


class WebSocketConnection:
    """A connection the handler owns (stream style), also the send handle of
    callback-style handlers.

    `async for message in ws` yields str (text) or bytes (binary) until the
    peer closes; `receive()` raises ConnectionClosed then. Unread messages
    count against the endpoint's max_queued_messages.
    """

    def __init__(self, state: ConnState) -> None:
        self._state = state
        self._conn = state.conn
        self._queue: collections.deque[str | bytes] = collections.deque()
        self._waiter: asyncio.Future[None] | None = None
        self.close_code: int | None = None
        self.close_reason: str = ""

    # -- information
    @property
    def request(self) -> Request:
        return self._state.request

    @property
    def path_params(self) -> dict[str, str]:
        return self._state.request.path_params

    @property
    def query_params(self) -> QueryParams:
        return self._state.request.query_params

    @property
    def closed(self) -> bool:
        return self.close_code is not None

    @property
    def id(self) -> int:
        return self._conn.id

    @property
    def buffered_amount(self) -> int:
        return self._conn.buffered_amount

    @property
    def subprotocol(self) -> str | None:
        return self._state.request.subprotocol

    # -- sending
    def send_text(self, text: str) -> Awaitable[None]:
        if not self._state.opened:
            return _early(self._state, self._conn.send_text, text)
        self._conn.send_text(text)
        return _flow(self._state)

    def send_bytes(self, data: bytes | bytearray | memoryview) -> Awaitable[None]:
        if not self._state.opened:
            return _early(self._state, self._conn.send_bytes, data)
        self._conn.send_bytes(data)
        return _flow(self._state)

    def send_json(self, obj: Any) -> Awaitable[None]:
        if not self._state.opened:
            return _early(self._state, self._conn.send_encoded, obj, _native.CODEC_JSON, to_plain)
        self._conn.send_encoded(obj, _native.CODEC_JSON, to_plain)
        return _flow(self._state)

    def send_msgpack(self, obj: Any) -> Awaitable[None]:
        if not self._state.opened:
            return _early(self._state, self._conn.send_encoded, obj, _native.CODEC_MSGPACK, to_plain)
        self._conn.send_encoded(obj, _native.CODEC_MSGPACK, to_plain)
        return _flow(self._state)

    def send(self, obj: Any) -> Awaitable[None]:
        """str -> text, bytes -> binary, WebSocketMessage as is, anything else -> JSON text."""
        if not self._state.opened:
            return _early(self._state, _send_any, self._conn, obj)
        _send_any(self._conn, obj)
        return _flow(self._state)

    def close(self, code: int = 1000, reason: str = "") -> Awaitable[None]:
        if not self._state.opened:
            return _early(self._state, self._conn.close, code, reason)
        self._conn.close(code, reason)
        return _DONE

    # -- topics
    def subscribe(self, topic: str, since: str | None = None) -> Recovery | None:
        """Receive every `app.publish(topic, ...)` until unsubscribed or closed.

        Subscribing twice is one subscription. ConfigError for a bad topic
        (empty, over 256 UTF-8 bytes) or too many topics on this connection.
        since: on a topic with history (app.topic), a position ("" for none):
        every retained publication after it is delivered first, then the live
        ones; returns a Recovery saying whether that was possible (when not,
        the client also gets {"topic", "type": "truncated", "offset"})."""
        return _subscribe(self._conn, topic, since)

    def unsubscribe(self, topic: str) -> bool:
        """End a subscription; False when the connection was not subscribed."""
        return self._conn.unsubscribe(topic)

    @property
    def topics(self) -> list[str]:
        """The topics this connection is subscribed to (in no particular order)."""
        return self._conn.topics

    # -- receiving
    def _push(self, data: str | bytes) -> None:
        self._queue.append(data)
        self._conn.hold()  # the core bounds what is held (max_queued_messages)
        self._wake()

    def _closed(self, code: int, reason: str) -> None:
        self.close_code = code
        self.close_reason = reason
        self._wake()

    def _wake(self) -> None:
        w = self._waiter
        if w is not None and not w.done():
            w.set_result(None)

    async def receive(self) -> str | bytes:
        while not self._queue:
            if self.close_code is not None:
                raise ConnectionClosed(f"connection closed with {self.close_code}")
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        data = self._queue.popleft()
        self._conn.consumed(1)
        self._state.endpoint.kick()  # the core may read again: let the loop see it
        return data

    async def receive_text(self) -> str:
        data = await self.receive()
        return data if isinstance(data, str) else data.decode("utf-8")

    async def receive_bytes(self) -> bytes:
        data = await self.receive()
        return data.encode("utf-8") if isinstance(data, str) else data

    async def receive_json(self) -> Any:
        return _native.decode(await self.receive(), _native.CODEC_JSON)

    async def receive_msgpack(self) -> Any:
        return _native.decode(await self.receive_bytes(), _native.CODEC_MSGPACK)

    def __aiter__(self) -> AsyncIterator[str | bytes]:
        return self._iter()

    async def _iter(self) -> AsyncIterator[str | bytes]:
        while True:
            try:
                yield await self.receive()
            except ConnectionClosed:
                return

    def __repr__(self) -> str:
        return f"<WebSocketConnection {self._conn.id} {self._state.request.path!r}>"


class WebSocket:
    """Base class of class endpoints.

    Subclass with `using=` a serializer (JSON by default), define
    `receive_<name>(self, message: T)` handlers (the core picks one by the
    message's schema), `on_<name>_error(self, exc: E)` handlers (picked by
    exception type), and optionally `on_connect(self, request)` and
    `on_disconnect(self)`. One instance serves one connection.
    """

    serializer: ClassVar[type[Serializer]] = JSONSerializer
    path: ClassVar[str | None] = None
    options: ClassVar[dict[str, Any]] = {}

    def __init_subclass__(cls, using: type[Serializer] | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if using is not None:
            cls.serializer = using

    _state: ConnState

    @property
    def request(self) -> Request:
        return self._state.request

    @property
    def path_params(self) -> dict[str, str]:
        return self._state.request.path_params

    @property
    def query_params(self) -> QueryParams:
        return self._state.request.query_params

    @property
    def connection_id(self) -> int:
        return self._state.conn.id

    def send(self, obj: Any) -> Awaitable[None]:
        """Send obj with the endpoint's serializer (no response-schema check).

        Sends made in on_connect, before the upgrade completed, leave right
        after the 101 response."""
        st = self._state
        if not st.opened:
            return _early(st, st.endpoint.send_plain, st, obj)
        st.endpoint.send_plain(st, obj)
        return _flow(st)

    def close(self, code: int = 1000, reason: str = "") -> Awaitable[None]:
        st = self._state
        if not st.opened:
            return _early(st, st.conn.close, code, reason)
        st.conn.close(code, reason)
        return _DONE

    def subscribe(self, topic: str, since: str | None = None) -> Recovery | None:
        """Receive every `app.publish(topic, ...)` until unsubscribed or closed.
        since: a position on a history topic (see WebSocket.subscribe)."""
        return _subscribe(self._state.conn, topic, since)

    def unsubscribe(self, topic: str) -> bool:
        """End a subscription; False when the connection was not subscribed."""
        return self._state.conn.unsubscribe(topic)

    @property
    def topics(self) -> list[str]:
        """The topics this connection is subscribed to (in no particular order)."""
        return self._state.conn.topics
