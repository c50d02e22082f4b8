"""Endpoint adapters: the objects the core calls (_on_connect, _on_message,
_on_close, _on_error) for each handler style, and the per-connection state.

What happens here is plumbing between the core and user code: turning
validated values into annotated types, running handlers (with the coroutine
fast path), sending results, and routing exceptions to the user's error
handlers. Decoding, validation, dispatch and the default error reply are the
core's (except for Python-written PacketSerializer formats, whose decode and
encode necessarily run in Python; validation and dispatch still run in C).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import logging
import re
import types
import typing
from typing import Any, Callable, Iterable

from . import _native
from ._runtime import _await_any, _finish, drive
from ._types import loader_for, schema_for, to_plain
from .connection import (
    WebSocket,
    WebSocketConnection,
    WebSocketMessage,
    WebSocketResponse,
    _send_any,
)
from .errors import (
    ConfigError,
    ConnectionClosed,
    DeserializationError,
    Reject,
    ValidationError,
)
from .request import Request
from .serializers import JSONSerializer, PacketSerializer, Serializer

log = logging.getLogger("wirecore")

_EMPTY = inspect.Parameter.empty
_ERROR_METHOD = re.compile(r"^on_(?:[a-z0-9_]+_)?error$")
_CoroutineType = types.CoroutineType
_step = _native.step
_NO_RESPONSE = (None, type(None), Any, _EMPTY, inspect.Signature.empty)


class ConnState:
    """Per-connection state, kept in the native Conn's `data` slot."""

    __slots__ = (
        "conn",
        "endpoint",
        "_request",
        "opening",
        "opened",
        "closed",
        "instance",
        "ws",
        "response",
        "kwargs",
        "early",
        "check",
        "drain",
        "failing",
        "task",
    )

    def __init__(self, conn: _native.Conn, endpoint: Endpoint) -> None:
        self.conn = conn
        self.endpoint = endpoint
        self._request: Request | None = None
        self.opening = False
        self.opened = False
        self.closed = False
        self.instance: Any = None
        self.ws: WebSocketConnection | None = None
        self.response: WebSocketResponse | None = None
        self.kwargs: dict[str, Any] | None = None
        self.early: list[Any] | None = None  # (fn, args) of sends and closes made before the upgrade
        self.check: Any = None  # class endpoints: the running handler's response schema
        self.drain: Any = None  # the future awaited sends wait on (connection._flow)
        self.failing = False  # Endpoint.fail: the error handlers are not asked again
        self.task: asyncio.Task | None = None  # the handler running while the connection is paused

    @property
    def request(self) -> Request:
        r = self._request
        if r is None:
            r = self._request = Request(self.conn.request())
        return r


# ---- injection of handler arguments by name and annotation -----------------


def _hints(fn: Callable[..., Any]) -> dict[str, Any]:
    try:
        return typing.get_type_hints(fn, include_extras=True)
    except Exception:  # unresolvable forward references: fall back to raw annotations
        return dict(getattr(fn, "__annotations__", {}))


def _path_param_names(pattern: str) -> set[str]:
    return {m.split(":", 1)[0] for m in re.findall(r"\{([^}]+)\}", pattern)}


def _convert_param(ann: Any) -> Callable[[str], Any] | None:
    if ann in (int, float, bool):
        return (lambda s: s.lower() in ("1", "true", "yes", "on")) if ann is bool else ann
    return None


class _Injector:
    """Builds keyword arguments for a hook from a connection (request, path
    and query parameters, the connection object, close code/reason)."""

    def __init__(self, fn: Callable[..., Any], pattern: str, skip: Iterable[str] = ()) -> None:
        self.fn = fn
        hints = _hints(fn)
        params = _path_param_names(pattern)
        self.plan: list[tuple[str, str, Any]] = []
        skip = set(skip)
        for p in inspect.signature(fn).parameters.values():
            if p.name in skip or p.name == "self" or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                continue
            ann = hints.get(p.name, _EMPTY)
            if ann is Request or p.name == "request":
                self.plan.append((p.name, "request", None))
            elif ann is WebSocketConnection or p.name in ("ws", "websocket"):
                self.plan.append((p.name, "ws", None))
            elif p.name in params:
                self.plan.append((p.name, "path", _convert_param(ann)))
            elif p.name in ("code", "reason", "exc", "error", "message"):
                self.plan.append((p.name, p.name, None))
            else:
                self.plan.append((p.name, "query", (_convert_param(ann), p.default)))

    def kwargs(self, st: ConnState, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, kind, conv in self.plan:
            if kind == "request":
                out[name] = st.request
            elif kind == "ws":
                out[name] = st.ws
            elif kind == "path":
                v = st.request.path_params.get(name)
                out[name] = conv(v) if conv is not None and v is not None else v
            elif kind == "query":
                c, default = conv
                v = st.request.query_params.get(name)
                if v is None:
                    if default is _EMPTY:
                        out[name] = None
                    continue
                out[name] = c(v) if c is not None else v
            elif extra is not None and kind in extra:
                out[name] = extra[kind]
        return out

    def call(self, st: ConnState, extra: dict[str, Any] | None = None) -> Any:
        return self.fn(**self.kwargs(st, extra))


def _exception_types(fn: Callable[..., Any], skip_self: bool) -> tuple[type, ...]:
    """The exception classes an error handler's first parameter is annotated with."""
    hints = _hints(fn)
    params = [p for p in inspect.signature(fn).parameters.values() if p.name != "self" or not skip_self]
    if not params:
        return (Exception,)
    ann = hints.get(params[0].name, _EMPTY)
    if ann is _EMPTY or ann is Any:
        return (Exception,)
    origin = typing.get_origin(ann)
    members = typing.get_args(ann) if origin in (typing.Union, types.UnionType) else (ann,)
    return tuple(m for m in members if isinstance(m, type) and issubclass(m, BaseException))


class _ErrorHandlers:
    """Picks a handler by the raised exception's class (most specific first)."""

    def __init__(self) -> None:
        self.by_type: dict[type, Callable[..., Any]] = {}

    def add(self, types: tuple[type, ...], fn: Callable[..., Any]) -> None:
        for t in types:
            self.by_type.setdefault(t, fn)

    def find(self, exc: BaseException) -> Callable[..., Any] | None:
        if not self.by_type:
            return None
        for cls in type(exc).__mro__:
            fn = self.by_type.get(cls)
            if fn is not None:
                return fn
        return None

    def __bool__(self) -> bool:
        return bool(self.by_type)


def _arity(fn: Callable[..., Any]) -> int:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return 1
    if any(p.kind == p.VAR_POSITIONAL for p in params):
        return 99
    return sum(1 for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD))


def _call_flex(fn: Callable[..., Any], *args: Any) -> Any:
    return fn(*args[: _arity(fn)])


def _schema_text(schema: Any) -> str | None:
    if schema is None:
        return None
    if isinstance(schema, str):
        return schema
    return json.dumps(schema, separators=(",", ":"))


# ---- the common part of every endpoint -------------------------------------

_RATE_ACTIONS = {"drop": 0, "close": 1}


def _limit(name: str, value: Any, bound: int) -> int:
    """A client limit: a whole number from 0 (off) below bound."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < bound:
        raise ConfigError(f"{name} must be a non-negative int, not {value!r}")
    return value


_POLICIES = {"reply": _native.INVALID_REPLY, "close": _native.INVALID_CLOSE, "ignore": _native.INVALID_IGNORE}

_COMPRESSION = {
    "shared": _native.COMPRESSION_SHARED,
    "off": _native.COMPRESSION_OFF,
    "dedicated": _native.COMPRESSION_DEDICATED,
}


def _compression_mode(mode: Any) -> int:
    """The permessage-deflate mode: "shared", "dedicated" or "off" (False too)."""
    if mode is False:
        return _native.COMPRESSION_OFF
    if mode is True:
        return _native.COMPRESSION_SHARED
    if isinstance(mode, str) and mode in _COMPRESSION:
        return _COMPRESSION[mode]
    raise ValueError(f"compression must be 'shared', 'dedicated' or 'off', not {mode!r}")


class Endpoint:
    """Base adapter. Subclasses define the style-specific hooks."""

    codec: int = _native.CODEC_RAW
    serializer: type[Serializer] | None = None

    def __init__(self, pattern: str, options: dict[str, Any]) -> None:
        self.pattern = pattern
        self.options = dict(options)
        self.loop: Any = None
        self.driver: Any = None
        self.message_schemas: list[str] | None = None
        self.response_schema: str | None = None
        self.errors = _ErrorHandlers()
        self.on_disconnect_hook: _Injector | None = None

    # -- registration
    def native_options(self) -> dict[str, Any]:
        o = self.options
        out: dict[str, Any] = {"codec": self.codec}
        if self.message_schemas:
            out["message_schemas"] = self.message_schemas
        if self.response_schema is not None:
            out["response_schema"] = self.response_schema
        policy = o.get("invalid", "reply")
        out["invalid_policy"] = _POLICIES[policy] if isinstance(policy, str) else int(policy)
        if o.get("max_message_size"):
            out["max_message_size"] = int(o["max_message_size"])
        if o.get("max_backpressure"):
            out["max_backpressure"] = int(o["max_backpressure"])
        if o.get("max_queued_messages"):
            out["max_queued_messages"] = int(o["max_queued_messages"])
        if o.get("idle_timeout") is not None:
            t = o["idle_timeout"]
            out["idle_timeout_ms"] = 0xFFFFFFFF if t in (0, float("inf")) else max(1, int(t * 1000))
        if o.get("pong_timeout"):
            out["pong_timeout_ms"] = max(1, int(o["pong_timeout"] * 1000))
        if o.get("send_timeout") is not None:
            t = o["send_timeout"]
            out["send_timeout_ms"] = 0xFFFFFFFF if t in (0, float("inf")) else max(1, int(t * 1000))
        if o.get("max_message_fragments"):
            out["max_message_fragments"] = int(o["max_message_fragments"])
        if o.get("compression") is not None:
            out["compression"] = _compression_mode(o["compression"])
        if o.get("compression_threshold"):
            out["compression_threshold"] = int(o["compression_threshold"])
        if o.get("compression_window_bits"):
            out["compression_window_bits"] = int(o["compression_window_bits"])
        if o.get("message_timeout") is not None:
            t = o["message_timeout"]
            out["message_timeout_ms"] = (0xFFFFFFFF if t in (0, float("inf"))
                                         else max(1, int(t * 1000)))
        if o.get("subprotocols"):
            out["subprotocols"] = list(o["subprotocols"])
        if o.get("allowed_origins"):
            out["allowed_origins"] = list(o["allowed_origins"])
        for name in ("message_rate", "message_burst", "byte_rate", "byte_burst"):
            if o.get(name) is not None:  # client limits
                out[name] = _limit(name, o[name], 2**32 if name.startswith("message") else 2**63)
        action = o.get("rate_limit_action", "drop")
        if action not in _RATE_ACTIONS:
            raise ConfigError(f'rate_limit_action must be "drop" or "close", not {action!r}')
        out["rate_limit_action"] = _RATE_ACTIONS[action]
        if o.get("format_assert"):
            out["schema_flags"] = _native.SCHEMA_FORMAT_ASSERT
        return out

    def bind(self, loop: Any, driver: Any) -> None:
        self.loop = loop
        self.driver = driver

    def kick(self) -> None:
        if self.driver is not None:
            self.driver.kick()

    # -- style hooks (overridden)
    def connect_hook(self, st: ConnState) -> Any:
        return None

    def on_open(self, st: ConnState) -> None:
        pass

    def call_message(self, st: ConnState, payload: Any, index: int, binary: bool) -> Any:
        raise NotImplementedError

    def reply(self, st: ConnState, value: Any) -> None:
        if value is not None:
            st.conn.send(value, to_plain)

    def send_plain(self, st: ConnState, obj: Any) -> None:
        """Send without the response-schema check (pushes and error replies)."""
        ser = self.serializer
        if ser is not None and issubclass(ser, PacketSerializer):
            data = ser.encode(obj)
            if isinstance(data, str):
                st.conn.send_text(data)
            else:
                st.conn.send_bytes(data)
        elif self.codec == _native.CODEC_RAW:
            _send_any(st.conn, obj)
        else:
            st.conn.send_encoded(obj, self.codec, to_plain)

    def find_error_handler(self, st: ConnState, exc: BaseException) -> Callable[[], Any] | None:
        fn = self.errors.find(exc)
        if fn is None:
            return None
        return lambda: fn(exc)

    def closed_hook(self, st: ConnState, code: int, reason: str) -> Any:
        if self.on_disconnect_hook is not None:
            return self.on_disconnect_hook.call(st, {"code": code, "reason": reason})
        return None

    # -- called by the core ------------------------------------------------
    def _on_connect(self, conn: _native.Conn) -> int:
        st = ConnState(conn, self)
        conn.data = st
        try:
            result = self.connect_hook(st)
        except Reject as r:
            return r.status
        except Exception:
            log.exception("wirecore: on_connect failed for %s", self.pattern)
            return 500
        box: dict[str, Any] = {}

        def done(value: Any, exc: BaseException | None) -> None:
            status = 0
            if isinstance(exc, Reject):
                status = exc.status
            elif exc is not None:
                if not isinstance(exc, Exception):
                    status = 500
                else:
                    log.error("wirecore: on_connect failed for %s", self.pattern, exc_info=exc)
                    status = 500
            if "deferred" not in box:
                box["status"] = status
                return
            # the handshake waited for us
            if status:
                conn.reject(status)
            elif conn.accept():
                self._open(st)
            self.kick()

        task = drive(self.loop, result, done)
        if task is not None:
            box["deferred"] = True
            return _native.CONNECT_DEFER
        status = box["status"]
        if status == 0:
            st.opening = True
            self.loop.call_soon(self._open, st)
        return status

    def _open(self, st: ConnState) -> None:
        if st.opened or st.closed:
            return
        st.opening = False
        st.opened = True
        try:
            early, st.early = st.early, None
            for fn, args in early or ():
                fn(*args)
            self.on_open(st)
        except Exception as exc:
            self.handle_exception(st, exc)

    def _on_message(self, conn: _native.Conn, payload: Any, index: int, binary: bool) -> None:
        """One message: call the handler and send its reply. This is run()
        and _complete() inlined (one Python frame per message besides the
        handler's) for a plain value or a coroutine that finishes in one step."""
        st: ConnState = conn.data
        if st.opening:
            self._open(st)
        try:
            result = self.call_message(st, payload, index, binary)
            if type(result) is _CoroutineType:
                finished, value = _step(result)
                if not finished:
                    self._suspend(st, result, value, self.reply)
                    return
                result = value
            elif result is not None and hasattr(result, "__await__"):
                self.run(st, result, self.reply)
                return
            if result is not None:
                self.reply(st, result)
        except BaseException as exc:  # noqa: BLE001 - routed to the user's handlers
            self.handle_exception(st, exc)

    def run(self, st: ConnState, result: Any, reply: Callable[[ConnState, Any], None]) -> None:
        """Complete a handler result; pause the connection while it is pending.

        The fast path (a plain value, or a coroutine that finishes in one
        step) allocates no closure and creates no task."""
        if type(result) is not _CoroutineType and result is not None and hasattr(result, "__await__"):
            result = _await_any(result)
        if type(result) is _CoroutineType:
            try:
                finished, first = _step(result)
            except BaseException as exc:  # noqa: BLE001 - routed to the error handlers
                self._complete(st, None, exc, reply)
                if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                    raise
                return
            if finished:
                self._complete(st, first, None, reply)
                return
            self._suspend(st, result, first, reply)
        else:
            self._complete(st, result, None, reply)

    def _message_result(self, conn: _native.Conn, kind: int, a: Any, b: Any) -> None:
        """What the C message path (conn.set_direct) leaves to Python: kind 0,
        the handler raised a; 1, its coroutine a awaits b; 2, a is a result
        other than None, str, bytes-like or a WebSocketMessage."""
        st: ConnState = conn.data
        if kind == 0:
            self.handle_exception(st, a)
        elif kind == 1:
            try:
                self._suspend(st, a, b, self.reply)
            except BaseException as exc:  # noqa: BLE001 - routed to the user's handlers
                self.handle_exception(st, exc)
        else:
            self.run(st, a, self.reply)

    def _suspend(self, st: ConnState, coro: Any, first: Any,
                 reply: Callable[[ConnState, Any], None]) -> None:
        """The handler's coroutine awaits `first`: finish it in a task. The core
        holds this connection's next messages until done() resumes it; the task
        is cancelled if the connection ends first (_on_close)."""
        st.task = self.loop.create_task(_finish(coro, first, self._done_cb(st, reply)))
        with contextlib.suppress(ConnectionClosed):
            st.conn.pause()

    def _done_cb(self, st: ConnState, reply: Callable[[ConnState, Any], None]) -> Callable[..., None]:
        def done(value: Any, exc: BaseException | None) -> None:
            st.task = None
            if st.closed and isinstance(exc, asyncio.CancelledError):
                return  # cancelled because its connection ended: nothing to answer
            self._complete(st, value, exc, reply)
            self._release(st)

        return done

    def _complete(self, st: ConnState, value: Any, exc: BaseException | None,
                  reply: Callable[[ConnState, Any], None]) -> None:
        if exc is None:
            try:
                reply(st, value)
                return
            except BaseException as e:  # noqa: BLE001
                exc = e
        if reply == self.reply_error:
            self.fail(st, exc)  # the error handler itself failed
        else:
            self.handle_exception(st, exc)

    def _release(self, st: ConnState) -> None:
        with contextlib.suppress(ConnectionClosed):
            st.conn.resume()
        self.kick()

    def reply_error(self, st: ConnState, value: Any) -> None:
        if value is not None:
            self.send_plain(st, value)

    def handle_exception(self, st: ConnState, exc: BaseException) -> None:
        """A handler raised: conn.fail asks the error handlers (_on_error),
        and unless one takes it the core closes with 1011."""
        if isinstance(exc, ConnectionClosed) and (st.closed or not st.conn.is_open):
            return
        if not isinstance(exc, Exception):
            self.fail(st, exc)
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise exc
            return
        if not st.conn.fail(exc) and not st.closed:
            log.error("wirecore: unhandled error on %s; closing with 1011", self.pattern, exc_info=exc)

    def fail(self, st: ConnState, exc: BaseException) -> None:
        """Close with 1011 without asking the error handlers (one of them failed)."""
        if isinstance(exc, ConnectionClosed) and (st.closed or not st.conn.is_open):
            return
        if not isinstance(exc, asyncio.CancelledError):
            log.error("wirecore: unhandled error on %s; closing with 1011", self.pattern, exc_info=exc)
        st.failing = True
        try:
            st.conn.fail(exc)
        finally:
            st.failing = False

    def _on_error(self, conn: _native.Conn, exc: BaseException) -> bool:
        """An invalid message, a protocol error or a failed handler (conn.fail):
        True when a user error handler takes it (its reply is sent)."""
        st: ConnState = conn.data
        handler = None if st.failing else self.find_error_handler(st, exc)
        if handler is None:
            return False
        try:
            result = handler()
        except Exception as e:  # the endpoint's invalid-message policy answers instead
            if e is not exc:
                log.error("wirecore: error handler failed on %s", self.pattern, exc_info=e)
            return False
        self.run(st, result, self.reply_error)
        return True

    def _on_drain(self, conn: _native.Conn) -> None:
        """The connection is writable again: wake the sends awaiting it."""
        st: ConnState = conn.data
        fut, st.drain = st.drain, None
        if fut is not None and not fut.done():
            fut.set_result(None)

    def _on_close(self, conn: _native.Conn, code: int, reason: str) -> None:
        st: ConnState = conn.data
        st.closed = True
        self._on_drain(conn)  # a close ends the wait of awaited sends
        task, st.task = st.task, None
        if task is not None and not task.done():
            task.cancel()  # the handler's client is gone: CancelledError at its await
        try:
            result = self.closed_hook(st, code, reason)
        except Exception:
            log.exception("wirecore: on_disconnect failed for %s", self.pattern)
            return

        def done(value: Any, exc: BaseException | None) -> None:
            if exc is not None and isinstance(exc, Exception):
                log.error("wirecore: on_disconnect failed for %s", self.pattern, exc_info=exc)

        drive(self.loop, result, done)


# ---- typed messages (function and class endpoints) --------------------------


class _Typed:
    """One message handler's types: schema, loader, response check."""

    def __init__(self, ann: Any, ret: Any, serializer: type[Serializer] | None) -> None:
        self.ann = ann
        self.loader = loader_for(ann) if ann is not _EMPTY else None
        self.schema = schema_for(ann) if ann is not _EMPTY else None
        self.response = None if ret in _NO_RESPONSE or _is_any_return(ret) else schema_for(ret)
        self.response_check: _native.Schema | None = None


def _is_any_return(ret: Any) -> bool:
    return ret is WebSocketResponse or (isinstance(ret, type) and issubclass(ret, WebSocketResponse))


class _PythonCodec:
    """The PacketSerializer path: decode in Python, validate and dispatch in C."""

    def __init__(self, serializer: type[PacketSerializer], schemas: list[str] | None) -> None:
        self.serializer = serializer
        self.checks = [_native.Schema(s) for s in schemas] if schemas else []
        self.dispatcher = _native.Dispatcher(self.checks) if len(self.checks) > 1 else None

    def decode(self, payload: Any) -> tuple[Any, int]:
        try:
            value = self.serializer.decode(payload)
        except Exception as exc:
            raise DeserializationError(str(exc) or "message could not be decoded") from exc
        if self.dispatcher is not None:
            return value, self.dispatcher.dispatch(value)
        if self.checks:
            self.checks[0].validate(value)
            return value, 0
        return value, -1

class _TypedEndpoint(Endpoint):
    """Shared by function and class endpoints: codec choice and the Python-codec path."""

    pycodec: _PythonCodec | None = None

    def setup_codec(self, serializer: type[Serializer]) -> None:
        self.serializer = serializer
        if issubclass(serializer, PacketSerializer):
            self.codec = _native.CODEC_RAW
            self.pycodec = _PythonCodec(serializer, self.message_schemas)
            self.message_schemas = None  # the core sees raw frames only
            # app.publish(topic, value): the core asks this once per publish
            # for this endpoint's subscribers (py_topics.c)
            self.encode_published = serializer.encode
            # decode in Python first; the other codecs keep the base class's
            # _on_message (no extra frame per message)
            self._on_message = self._on_packet  # type: ignore[method-assign]
        else:
            self.codec = serializer.codec

    def _on_packet(self, conn: _native.Conn, payload: Any, index: int, binary: bool) -> None:
        """_on_message of a PacketSerializer endpoint: decode, validate and
        dispatch, then the common path."""
        pc = self.pycodec
        assert pc is not None
        try:
            value, index = pc.decode(payload)
        except (DeserializationError, ValidationError, _native.UnknownMessageError) as exc:
            conn.invalid(exc)  # the error handlers, else the endpoint's policy
            return
        Endpoint._on_message(self, conn, value, index, binary)


class FunctionEndpoint(_TypedEndpoint):
    """`@app.websocket(path)` on `async def f(message: T, room: str) -> R`."""

    def __init__(self, route: Any) -> None:
        super().__init__(route.path, route.options)
        fn = route.fn
        self.fn = fn
        hints = _hints(fn)
        pattern_params = _path_param_names(route.path)
        self.message_param: str | None = None
        ann: Any = _EMPTY
        for p in inspect.signature(fn).parameters.values():
            a = hints.get(p.name, _EMPTY)
            if a is Request or p.name == "request" or p.name in pattern_params:
                continue
            if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                continue
            if p.default is not _EMPTY and self.message_param is not None:
                continue
            if self.message_param is None:
                self.message_param = p.name
                ann = a
        self.injector = _Injector(fn, route.path, skip=[self.message_param] if self.message_param else [])
        params = list(inspect.signature(fn).parameters.values())
        self.keyword_only = not (params and params[0].name == self.message_param
                                 and params[0].kind in (params[0].POSITIONAL_ONLY,
                                                        params[0].POSITIONAL_OR_KEYWORD))
        typed = _Typed(ann, hints.get("return", _EMPTY), None)
        self.loader = typed.loader
        ms = route.options.get("message_schema")
        rs = route.options.get("response_schema")
        schema = ms if ms is not None else typed.schema
        self.message_schemas = [_schema_text(schema)] if schema is not None else None  # type: ignore[list-item]
        self.response_schema = _schema_text(rs if rs is not None else typed.response)
        self.setup_codec(route.options.get("using") or JSONSerializer)
        if self.pycodec is not None and self.response_schema is not None:
            self.response_check = _native.Schema(self.response_schema)
            self.response_schema = None
        else:
            self.response_check = None
        self.connect_injector = _Injector(route.connect_fn, route.path) if route.connect_fn else None
        if route.disconnect_fn:
            self.on_disconnect_hook = _Injector(route.disconnect_fn, route.path)
        for fn_err in route.error_fns:
            self.errors.add(_exception_types(fn_err, skip_self=False), fn_err)

    def connect_hook(self, st: ConnState) -> Any:
        if self.connect_injector is not None:
            return self.connect_injector.call(st)
        return None

    def call_message(self, st: ConnState, payload: Any, index: int, binary: bool) -> Any:
        kw = st.kwargs
        if kw is None:
            kw = st.kwargs = self.injector.kwargs(st)
        if self.message_param is None:
            return self.fn(**kw)
        loader = self.loader
        value = loader(payload) if loader else payload
        if not kw:
            return self.fn(**{self.message_param: value}) if self.keyword_only else self.fn(value)
        kw = dict(kw)
        kw[self.message_param] = value
        return self.fn(**kw)

    def reply(self, st: ConnState, value: Any) -> None:
        if value is None:
            return
        if self.pycodec is None:
            st.conn.send(value, to_plain)
            return
        if self.response_check is not None:
            self.response_check.validate(_plain_deep(value))
        self.send_plain(st, value)


class ClassEndpoint(_TypedEndpoint):
    """A WebSocket subclass: receive_* by message schema, on_*_error by exception type."""

    def __init__(self, cls: type[WebSocket], path: str, options: dict[str, Any]) -> None:
        super().__init__(path, {**cls.options, **options})
        self.cls = cls
        self.handlers: list[tuple[str, Callable[[Any], Any] | None, _native.Schema | None]] = []
        schemas: list[Any] = []
        for name, fn in _ordered_methods(cls):
            if name.startswith("receive_") or name == "receive":
                hints = _hints(fn)
                params = [p for p in inspect.signature(fn).parameters.values() if p.name != "self"]
                ann = hints.get(params[0].name, _EMPTY) if params else _EMPTY
                typed = _Typed(ann, hints.get("return", _EMPTY), None)
                check = _native.Schema(_schema_text(typed.response)) if typed.response is not None else None
                self.handlers.append((name, typed.loader, check))
                schemas.append(typed.schema if typed.schema is not None else {})
            elif _ERROR_METHOD.match(name):
                self.errors.add(_exception_types(fn, skip_self=True), name)  # type: ignore[arg-type]
        if not self.handlers:
            raise TypeError(f"{cls.__name__} defines no receive_* handler")
        if len(self.handlers) == 1 and schemas[0] == {}:
            self.message_schemas = None
        else:
            self.message_schemas = [_schema_text(s) for s in schemas]  # type: ignore[misc]
        self.setup_codec(cls.serializer)
        self.has_connect = callable(getattr(cls, "on_connect", None))
        self.has_disconnect = callable(getattr(cls, "on_disconnect", None))
        if self.has_connect:
            self.connect_injector = _Injector(cls.on_connect, path)  # type: ignore[attr-defined]
        if self.has_disconnect:
            self.disconnect_injector = _Injector(cls.on_disconnect, path)  # type: ignore[attr-defined]

    def find_error_handler(self, st: ConnState, exc: BaseException) -> Callable[[], Any] | None:
        name = self.errors.find(exc)
        if name is None:
            return None
        method = getattr(st.instance, name)  # type: ignore[arg-type]
        return lambda: method(exc)

    def connect_hook(self, st: ConnState) -> Any:
        inst = self.cls()
        inst._state = st
        st.instance = inst
        if self.has_connect:
            kw = self.connect_injector.kwargs(st)
            return inst.on_connect(**kw)  # type: ignore[attr-defined]
        return None

    def closed_hook(self, st: ConnState, code: int, reason: str) -> Any:
        if self.has_disconnect and st.instance is not None:
            kw = self.disconnect_injector.kwargs(st, {"code": code, "reason": reason})
            return st.instance.on_disconnect(**kw)  # type: ignore[attr-defined]
        return None

    def call_message(self, st: ConnState, payload: Any, index: int, binary: bool) -> Any:
        name, loader, check = self.handlers[index if index >= 0 else 0]
        st.check = check
        return getattr(st.instance, name)(loader(payload) if loader else payload)

    def reply(self, st: ConnState, value: Any) -> None:
        if value is None:
            return
        check = st.check  # the response schema of the handler that produced value
        if check is not None:
            check.validate(_plain_deep(value))
        self.send_plain(st, value)


def _plain_deep(value: Any) -> Any:
    """value as plain dicts/lists/scalars (dataclasses, models... converted),
    for validating a return value against its annotation's schema."""
    if value is None or type(value) in (str, int, float, bool):
        return value
    return _native.decode(_native.encode(value, _native.CODEC_MSGPACK, to_plain), _native.CODEC_MSGPACK)


def _ordered_methods(cls: type) -> list[tuple[str, Callable[..., Any]]]:
    """Methods in definition order, base classes first, overrides keeping their slot."""
    order: dict[str, Callable[..., Any]] = {}
    for klass in reversed(cls.__mro__):
        if klass in (object, WebSocket):
            continue
        for name, value in vars(klass).items():
            if callable(value) and not name.startswith("__"):
                order[name] = value
    return list(order.items())


# ---- stream and callback styles (raw frames) -------------------------------


class StreamEndpoint(Endpoint):
    """`async def f(ws: WebSocketConnection)`: the handler owns the connection."""

    codec = _native.CODEC_RAW

    def __init__(self, route: Any) -> None:
        super().__init__(route.path, route.options)
        self.injector = _Injector(route.fn, route.path)
        self.connect_injector = _Injector(route.connect_fn, route.path) if route.connect_fn else None
        if route.disconnect_fn:
            self.on_disconnect_hook = _Injector(route.disconnect_fn, route.path)
        for fn_err in route.error_fns:
            self.errors.add(_exception_types(fn_err, skip_self=False), fn_err)

    def connect_hook(self, st: ConnState) -> Any:
        st.ws = WebSocketConnection(st)
        if self.connect_injector is not None:
            return self.connect_injector.call(st)
        return None

    def on_open(self, st: ConnState) -> None:
        coro = self.injector.call(st)

        async def run() -> None:
            try:
                await coro
            except ConnectionClosed:
                pass
            except Exception as exc:
                if not await self.rescue(st, exc):
                    self.kick()
                    return
            if not st.closed:
                try:
                    st.conn.close(1000, "")
                except Exception:
                    pass
                self.kick()

        self.loop.create_task(run())

    async def rescue(self, st: ConnState, exc: Exception) -> bool:
        """The handler raised: True when an error handler took exc (its reply
        is sent and the connection then closes with 1000), else close 1011."""
        handler = self.find_error_handler(st, exc)
        try:
            if handler is None:
                raise exc
            result = handler()
            if inspect.isawaitable(result):
                result = await result
            if result is not None:
                self.send_plain(st, result)
            return True
        except ConnectionClosed:
            return True
        except Exception as e:  # noqa: BLE001 - the handler (or its reply) failed
            self.fail(st, e)
            return False

    def _on_message(self, conn: _native.Conn, payload: Any, index: int, binary: bool) -> None:
        st: ConnState = conn.data
        if st.opening:
            self._open(st)
        st.ws._push(payload)  # type: ignore[union-attr]

    def _on_close(self, conn: _native.Conn, code: int, reason: str) -> None:
        st: ConnState = conn.data
        if st.ws is not None:
            st.ws._closed(code, reason)
        Endpoint._on_close(self, conn, code, reason)


class CallbackEndpoint(Endpoint):
    """`async def f(request) -> WebSocketResponse`: callbacks per connection."""

    codec = _native.CODEC_RAW

    def __init__(self, route: Any) -> None:
        super().__init__(route.path, route.options)
        self.injector = _Injector(route.fn, route.path)

    def connect_hook(self, st: ConnState) -> Any:
        st.ws = WebSocketConnection(st)
        result = self.injector.call(st)

        async def resolve() -> None:
            value = await result if inspect.isawaitable(result) else result
            if not isinstance(value, WebSocketResponse):
                raise TypeError("a callback-style handler must return a WebSocketResponse")
            st.response = value

        return resolve()

    def on_open(self, st: ConnState) -> None:
        r = st.response
        if r is not None:
            # from now on the core's messages go to r.on_message from C (py_direct.c);
            # what that path does not finish comes back in _message_result
            st.conn.set_direct(r)
        if r is not None and r.on_connect is not None:
            self.run(st, _call_flex(r.on_connect, st.ws), self.reply_error)

    def call_message(self, st: ConnState, payload: Any, index: int, binary: bool) -> Any:
        r = st.response
        if r is None or r.on_message is None:
            return None
        return r.on_message(WebSocketMessage(payload))

    def reply(self, st: ConnState, value: Any) -> None:
        if value is not None:
            _send_any(st.conn, value)

    def find_error_handler(self, st: ConnState, exc: BaseException) -> Callable[[], Any] | None:
        r = st.response
        if r is None or r.on_error is None:
            return None
        return lambda: _call_flex(r.on_error, exc)  # type: ignore[union-attr]

    def closed_hook(self, st: ConnState, code: int, reason: str) -> Any:
        if st.ws is not None:
            st.ws._closed(code, reason)
        r = st.response
        if r is not None and r.on_close is not None and st.opened:
            return _call_flex(r.on_close, code, reason)
        return None
