"""App, routes and running a server on asyncio."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import logging
import signal
from typing import Any, AsyncIterator, Callable, Iterable, TypeVar

from . import _native
from ._endpoints import (
    CallbackEndpoint,
    ClassEndpoint,
    Endpoint,
    FunctionEndpoint,
    StreamEndpoint,
    _hints,
)
from . import tls as _tls
from ._runtime import Driver
from ._types import to_plain
from .connection import WebSocket, WebSocketConnection, WebSocketMessage, WebSocketResponse
from .errors import ConfigError

log = logging.getLogger("wirecore")

__all__ = ["App", "Route", "websocket", "websocket_route", "RunningServer"]

F = TypeVar("F", bound=Callable[..., Any])
C = TypeVar("C", bound=type)

_OPTION_NAMES = {
    "max_message_size",
    "idle_timeout",
    "pong_timeout",
    "max_backpressure",
    "max_queued_messages",
    "send_timeout",
    "max_message_fragments",
    "compression",
    "compression_threshold",
    "compression_window_bits",
    "message_timeout",
    "allowed_origins",
    "subprotocols",
    "message_schema",
    "response_schema",
    "using",
    "invalid",
    "format_assert",
    "message_rate",
    "message_burst",
    "byte_rate",
    "byte_burst",
    "rate_limit_action",
}


def _count(name: str, value: Any) -> int:
    """A limit: a whole number from 0 (off) to 2**32 - 1."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**32:
        raise ConfigError(f"{name} must be an int from 0 to 2**32 - 1, not {value!r}")
    return value


def _check_options(options: dict[str, Any]) -> dict[str, Any]:
    unknown = set(options) - _OPTION_NAMES
    if unknown:
        raise TypeError(f"unknown websocket option(s): {', '.join(sorted(unknown))}")
    return options


class Route:
    """A function endpoint: the decorated handler plus its hooks.

    Calling the route calls the handler. `@route.on_connect`,
    `@route.on_disconnect` and `@route.on_error` register hooks.
    """

    def __init__(self, path: str, fn: Callable[..., Any], options: dict[str, Any]) -> None:
        self.path = path
        self.fn = fn
        self.options = _check_options(dict(options))
        self.connect_fn: Callable[..., Any] | None = None
        self.disconnect_fn: Callable[..., Any] | None = None
        self.error_fns: list[Callable[..., Any]] = []
        self.__wrapped__ = fn
        self.__name__ = getattr(fn, "__name__", "route")
        self.__doc__ = getattr(fn, "__doc__", None)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)

    def on_connect(self, fn: F) -> F:
        """Runs before the upgrade; raise Reject(status) to refuse it."""
        self.connect_fn = fn
        return fn

    def on_disconnect(self, fn: F) -> F:
        self.disconnect_fn = fn
        return fn

    def on_error(self, fn: F) -> F:
        """Handles the exceptions its first parameter is annotated with; its return value is sent."""
        self.error_fns.append(fn)
        return fn

    def with_path(self, path: str) -> Route:
        r = Route(path, self.fn, self.options)
        r.connect_fn, r.disconnect_fn, r.error_fns = self.connect_fn, self.disconnect_fn, list(self.error_fns)
        return r

    def build(self) -> Endpoint:
        hints = _hints(self.fn)
        if any(h is WebSocketConnection for h in hints.values()):
            return StreamEndpoint(self)
        ret = hints.get("return")
        if ret is WebSocketResponse:
            return CallbackEndpoint(self)
        return FunctionEndpoint(self)

    def __repr__(self) -> str:
        return f"<Route {self.path!r} -> {self.__name__}>"


def websocket(path: str, **options: Any) -> Callable[[F], Route]:
    """Standalone decorator: make a route to `app.include()` later."""

    def deco(fn: F) -> Route:
        return Route(path, fn, options)

    return deco


def websocket_route(path: str, **options: Any) -> Callable[[C], C]:
    """Class decorator: give a WebSocket subclass its path (and options)."""

    def deco(cls: C) -> C:
        if not (isinstance(cls, type) and issubclass(cls, WebSocket)):
            raise TypeError("websocket_route decorates WebSocket subclasses")
        cls.path = path
        cls.options = {**getattr(cls, "options", {}), **_check_options(dict(options))}
        return cls

    return deco


class RunningServer:
    """A started server: its address, and a graceful stop."""

    def __init__(self, server: _native.Server, driver: Driver, host: str,
                 tls: bool = False) -> None:
        self._server = server
        self._driver = driver
        self.host = host
        self.port = server.port()
        self.tls = tls

    @property
    def connection_count(self) -> int:
        return self._server.connection_count()

    def broker_stats(self) -> dict[str, Any] | None:
        """The broker's counters (state, published, dropped, received, invalid,
        reconnects, channels, pending_bytes), or None without a broker."""
        return self._server.broker_stats()

    def url(self, path: str = "/") -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'wss' if self.tls else 'ws'}://{host}:{self.port}{path}"

    def reload_tls(self, ssl: _tls.TLSLike) -> None:
        """Load new certificate/key files: new connections use them, open ones keep
        theirs. On error (raised) the old ones stay."""
        self._server.tls_reload(*_tls.native_args(ssl))

    @property
    def metrics_port(self) -> int | None:
        """The port of the metrics listener (App(metrics_port=...)), or None."""
        port = self._server.metrics_port()
        return port if port >= 0 else None

    def stats(self) -> dict[str, Any]:
        """Every counter as a dict (docs/operations.md); with workers, summed over all."""
        return json.loads(self._server.metrics(1))

    def metrics(self) -> str:
        """The Prometheus text /metrics answers."""
        return self._server.metrics(0)

    async def stop(self, timeout: float = 5.0) -> None:
        """Stop accepting, close every connection with 1001, wait for them (up to timeout)."""
        if not self._server.closed:
            with contextlib.suppress(_native.WirecoreError):
                self._server.shutdown(max(1, int(timeout * 1000)))
            self._driver.kick()
        await self.wait_closed()

    async def wait_closed(self) -> None:
        await asyncio.shield(self._driver.done)


class App:
    """A set of WebSocket endpoints served by one Wirecore server."""

    def __init__(self, *, max_handshake_size: int = 0, handshake_timeout: float = 0,
                 max_connections: int = 0, broker: str | None = None,
                 max_connections_per_address: int = 0, handshake_rate: int = 0,
                 handshake_burst: int = 0, trusted_proxies: Iterable[str] | None = None,
                 metrics_path: str | None = None, health_path: str | None = None,
                 metrics_port: int | None = None, max_buffered_bytes: int | None = 0,
                 max_topics_per_conn: int = 0) -> None:
        """broker: a backplane URL (``redis://[[user]:password@]host[:port][/db]``) so
        publishes reach subscribers in every process attached to it (docs/scaling.md).

        max_buffered_bytes: the memory budget over all connections (0: 256 MiB, or a
        quarter of the memory available when less; None: unlimited; docs/limits.md).

        max_topics_per_conn: topics one connection may subscribe to (0: 1024);
        ws.subscribe past it raises ConfigError.

        Per-client limits (docs/security.md; 0 = off): max_connections_per_address,
        handshake_rate (upgrade requests per second per address) and handshake_burst
        answer 429; trusted_proxies (addresses or CIDRs) whose X-Forwarded-For or
        Forwarded header names the client.

        metrics_path / health_path: answer plain GETs on these paths on the
        WebSocket port (Prometheus text; a JSON health check, 503 while
        draining or with the broker down). metrics_port: serve both (at
        /metrics and /health unless set) on a port of their own instead
        (0 picks one). See docs/operations.md."""
        if max_buffered_bytes is not None and max_buffered_bytes < 0:
            raise ConfigError("max_buffered_bytes must not be negative")
        self._routes: list[Route | tuple[type[WebSocket], str, dict[str, Any]]] = []
        self.broker = broker
        self.metrics_path = metrics_path
        self.health_path = health_path
        self.metrics_port = metrics_port
        if isinstance(trusted_proxies, (str, bytes)):
            raise ConfigError("trusted_proxies is a list of addresses or CIDRs, not one string")
        proxies = None if trusted_proxies is None else [str(p) for p in trusted_proxies]
        self._server_options = {
            "max_handshake_size": int(max_handshake_size),
            "handshake_timeout_ms": int(handshake_timeout * 1000),
            "max_connections": int(max_connections),
            "max_connections_per_address": _count("max_connections_per_address",
                                                  max_connections_per_address),
            "handshake_rate": _count("handshake_rate", handshake_rate),
            "handshake_burst": _count("handshake_burst", handshake_burst),
            "trusted_proxies": proxies,
            "max_buffered_bytes": (2**64 - 1 if max_buffered_bytes is None
                                   else int(max_buffered_bytes)),
            "max_topics_per_conn": _count("max_topics_per_conn", max_topics_per_conn),
        }
        self.server: RunningServer | None = None
        self._histories: list[tuple[str, int, int]] = []

    # -- registration
    def websocket(self, path: str, **options: Any) -> Callable[[Any], Any]:
        """Decorate a handler function (or a WebSocket subclass) to serve `path`.

        Options: max_message_size (bytes), idle_timeout (seconds; 0 = never
        ping), pong_timeout, max_backpressure (bytes), max_queued_messages
        (received messages waiting before the core stops reading; default
        64), send_timeout (seconds a connection with output in flight may go
        without a completed write before it is closed with 1008; default 30),
        max_message_fragments (frames per message; default 4096), message_timeout
        (seconds a fragmented message may take from its first frame to its last
        before the connection is closed with 1008; default 60; 0 = never), compression
        ("shared" (default), "dedicated" or "off": permessage-deflate, see
        docs/compression.md), compression_threshold (bytes; shorter messages
        go out uncompressed; default 1024), compression_window_bits (9..15,
        dedicated mode; default 15), allowed_origins,
        message_rate / message_burst (messages per second per connection),
        byte_rate / byte_burst (payload bytes per second), rate_limit_action
        ("drop", the default, or "close": 1008) -- see docs/security.md,
        subprotocols, message_schema / response_schema (JSON Schema dicts that
        replace the annotations), using (a serializer), invalid ("reply",
        "close" or "ignore": what the core does with an invalid message that
        no error handler takes).
        """

        def deco(target: Any) -> Any:
            if isinstance(target, type) and issubclass(target, WebSocket):
                self._routes.append((target, path, _check_options(dict(options))))
                return target
            if isinstance(target, Route):  # a @websocket route mounted here
                route = target.with_path(path)
                route.options.update(_check_options(dict(options)))
            else:
                route = Route(path, target, options)
            self._routes.append(route)
            return route

        return deco

    def include(self, *items: Any, prefix: str = "") -> None:
        """Add routes made elsewhere: WebSocket subclasses (with a path),
        @websocket functions, or another App's routes."""
        for item in items:
            if isinstance(item, App):
                for r in item._routes:
                    self._routes.append(_prefixed(r, prefix))
            elif isinstance(item, Route):
                self._routes.append(item.with_path(prefix + item.path) if prefix else item)
            elif isinstance(item, type) and issubclass(item, WebSocket):
                if not item.path:
                    raise ValueError(f"{item.__name__} has no path: use @websocket_route(path)")
                self._routes.append((item, prefix + item.path, {}))
            else:
                raise TypeError(f"cannot include {item!r}")

    def load_routes(self, path: str) -> None:
        """Add routes from a YAML file:

        routers: [{name, mount, routes: [{path, handler: "module:attr", websocket: true}]}]

        Needs PyYAML (the ``yaml`` extra: ``pip install 'wirecore[yaml]'``);
        without it, raises ImportError saying so.
        """
        try:
            import yaml  # PyYAML, an optional dependency
        except ImportError as err:
            raise ImportError(
                "App.load_routes reads YAML with PyYAML, which is not installed: "
                "pip install 'wirecore[yaml]' (or pip install pyyaml)",
                name="yaml",
            ) from err

        with open(path, encoding="utf-8") as f:
            doc = yaml.safe_load(f) or {}
        for router in doc.get("routers", []) or []:
            mount = (router.get("mount") or "").rstrip("/")
            for r in router.get("routes", []) or []:
                if r.get("websocket", True) is False:
                    continue
                target = _import(r["handler"])
                full = mount + r["path"]
                options = dict(r.get("options") or {})
                if isinstance(target, type) and issubclass(target, WebSocket):
                    self._routes.append((target, full, _check_options(options)))
                elif isinstance(target, Route):
                    route = target.with_path(full)
                    route.options.update(_check_options(options))
                    self._routes.append(route)
                elif callable(target):
                    self._routes.append(Route(full, target, options))
                else:
                    raise TypeError(f"{r['handler']} is not a handler")

    @property
    def routes(self) -> list[str]:
        return [r.path if isinstance(r, Route) else r[1] for r in self._routes]

    # -- topics
    def publish(self, topic: str, message: Any, *, exclude: Any = None) -> int:
        """Send `message` to every connection subscribed to `topic` but `exclude`.

        str goes as a text frame, bytes-like as a binary frame; any other value
        is encoded once per codec, each subscriber getting its endpoint's
        encoding (JSON text, MessagePack binary; stream and callback endpoints
        get JSON; a PacketSerializer's encode runs once per publish).
        Callable from handlers and from anywhere else on
        the server's loop. Returns the number of connections it was queued
        for (0 when nobody is subscribed or the server is not running).
        ConfigError for a bad topic, SerializationError when the value
        cannot be encoded (then nothing is sent)."""
        if isinstance(message, WebSocketMessage):
            message = message.data
        native = self._native()
        if native is None:
            _check_topic(topic)
            return 0
        return native.publish(topic, message, _native_conn(exclude), to_plain)

    def stats(self) -> dict[str, Any] | None:
        """The running server's counters as a dict (RunningServer.stats), or None
        when it is not running."""
        running = self.server
        if running is None or running._server.closed:
            return None
        return running.stats()

    def topic(self, pattern: str, *, history: int, ttl: float | None = None) -> None:
        """Keep the last `history` publications of the topic `pattern`, or of
        every topic starting with it when it ends in "*" ("room:*"), each for
        at most `ttl` seconds (None: no time limit; a topic's history is also
        freed after ttl without publications). Publications on these topics
        reach subscribers as {"topic", "offset", "data"}, and
        ws.subscribe(topic, since=offset) recovers what a client missed
        (docs/scaling.md). ConfigError for a bad pattern, history outside
        1..1,000,000, a ttl that is not positive, or a pattern set twice."""
        _check_topic(pattern)
        if isinstance(history, bool) or not isinstance(history, int) or not 1 <= history <= 1_000_000:
            raise ConfigError(f"history must be an int in 1..1000000, not {history!r}")
        if ttl is not None and (isinstance(ttl, bool) or not isinstance(ttl, (int, float)) or not ttl > 0):
            raise ConfigError(f"ttl must be a positive number of seconds or None, not {ttl!r}")
        if any(p == pattern for p, _, _ in self._histories):
            raise ConfigError(f"{pattern} has history already")
        ttl_ms = 0 if ttl is None else max(1, round(ttl * 1000))
        native = self._native()
        if native is not None:
            native.topic_history(pattern, history, ttl_ms)
        self._histories.append((pattern, history, ttl_ms))

    def subscriber_count(self, topic: str) -> int:
        """How many connections are subscribed to `topic` (0 when not running)."""
        native = self._native()
        if native is None:
            _check_topic(topic)
            return 0
        return native.subscriber_count(topic)

    def _native(self) -> _native.Server | None:
        running = self.server
        if running is None or running._server.closed:
            return None
        return running._server

    # -- running
    def _build(self) -> tuple[_native.Server, list[Endpoint]]:
        server = _native.Server(**self._server_options)
        if self.metrics_path or self.health_path:
            server.set_metrics(self.metrics_path, self.health_path)
        # Core events go to the `wirecore` logger when it takes INFO (read at
        # start); otherwise none is built at all.
        if log.isEnabledFor(logging.INFO):
            server.set_log(_log_event, log.getEffectiveLevel())
        for pattern, keep, ttl_ms in self._histories:
            server.topic_history(pattern, keep, ttl_ms)
        if self.broker is not None:  # one log line per broker state change
            server.use_redis(self.broker, on_state=_log_broker_state)
        endpoints: list[Endpoint] = []
        for r in self._routes:
            ep = r.build() if isinstance(r, Route) else ClassEndpoint(r[0], r[1], r[2])
            server.add_endpoint(ep.pattern, ep, **ep.native_options())
            endpoints.append(ep)
        return server, endpoints

    async def start(self, host: str = "127.0.0.1", port: int = 8000, *,
                    ssl: _tls.TLSLike | None = None) -> RunningServer:
        """Listen and return at once; the server runs on the current asyncio loop.
        ssl (a TLSConfig or a dict of its fields) serves wss:// instead of ws://."""
        loop = asyncio.get_running_loop()
        tls_args = _tls.native_args(ssl) if ssl is not None else None
        server, endpoints = self._build()
        if self.metrics_port is not None:
            server.listen_metrics(host, self.metrics_port)
        if tls_args is not None:
            server.listen_tls(host, port, *tls_args)
        else:
            server.listen(host, port)
        driver = Driver(server, loop)
        for ep in endpoints:
            ep.bind(loop, driver)
        running = RunningServer(server, driver, host, tls=tls_args is not None)
        self.server = running
        return running

    async def serve(self, host: str = "127.0.0.1", port: int = 8000, *,
                    shutdown_timeout: float = 5.0, ssl: _tls.TLSLike | None = None) -> None:
        """Serve until cancelled (or until the server is stopped); stops gracefully."""
        running = await self.start(host, port, ssl=ssl)
        try:
            await running.wait_closed()
        finally:
            await asyncio.shield(running.stop(shutdown_timeout))

    def run(self, host: str = "127.0.0.1", port: int = 8000, *, shutdown_timeout: float = 5.0,
            on_ready: Callable[[RunningServer], Any] | None = None,
            ssl: _tls.TLSLike | None = None, workers: int = 1) -> None:
        """Block serving until SIGINT or SIGTERM, then shut down gracefully.

        on_ready(server) runs once listening (e.g. to print the port when port=0).
        ssl serves wss://; then SIGHUP reloads its certificate files (in a lone
        process). workers > 1 serves from that many processes sharing the port
        under a supervisor (the calling process): a worker that dies is
        restarted, SIGHUP replaces them one at a time. Call it before starting
        threads."""
        if workers > 1:
            if port == 0:
                raise ValueError("workers need a fixed port (each worker would pick its own)")
            status = _native.supervise(
                workers, lambda index: self.run(host, port, shutdown_timeout=shutdown_timeout,
                                                on_ready=on_ready, ssl=ssl))
            if status:
                raise SystemExit(status)
            return

        async def main() -> None:
            running = await self.start(host, port, ssl=ssl)
            log.info("wirecore: listening on %s", running.url())
            if on_ready is not None:
                on_ready(running)
            loop = asyncio.get_running_loop()
            stop = loop.create_future()
            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.add_signal_handler(sig, lambda: stop.done() or stop.set_result(None))
            if _native.worker_index() >= 0:  # the supervisor's rolling replace: drain
                loop.add_signal_handler(signal.SIGHUP, lambda: _drain(running))
            elif ssl is not None:
                with contextlib.suppress(NotImplementedError, RuntimeError, AttributeError):
                    loop.add_signal_handler(signal.SIGHUP, _reload_on_hup, running, ssl)
            waiter = asyncio.ensure_future(running.wait_closed())
            await asyncio.wait([stop, waiter], return_when=asyncio.FIRST_COMPLETED)
            await running.stop(shutdown_timeout)

        asyncio.run(main())

    # -- testing
    @contextlib.asynccontextmanager
    async def test_server(self, host: str = "127.0.0.1") -> AsyncIterator[RunningServer]:
        """Serve on an ephemeral port for the duration of the block."""
        running = await self.start(host, 0)
        try:
            yield running
        finally:
            await running.stop(2.0)

    def test_client(self) -> Any:
        """`async with app.test_client() as client: async with client.websocket(path) as ws: ...`"""
        from .testing import TestClient

        return TestClient(self)


def _reload_on_hup(running: RunningServer, ssl: _tls.TLSLike) -> None:
    try:
        running.reload_tls(ssl)
        log.info("wirecore: TLS certificate reloaded")
    except Exception as err:  # keep serving with the old certificate
        log.error("wirecore: TLS reload failed: %s", err)


def _native_conn(ws: Any) -> _native.Conn | None:
    """The native Conn of a connection object (WebSocketConnection, WebSocket) or None."""
    if ws is None or isinstance(ws, _native.Conn):
        return ws
    if isinstance(ws, WebSocketConnection):
        return ws._conn
    if isinstance(ws, WebSocket):
        return ws._state.conn
    raise TypeError(f"exclude must be a connection object, not {type(ws).__name__}")


def _check_topic(topic: Any) -> None:
    if not isinstance(topic, str):
        raise TypeError(f"topic must be str, not {type(topic).__name__}")
    if not 1 <= len(topic.encode("utf-8", "surrogateescape")) <= 256:
        raise ConfigError("a topic is 1..256 bytes of UTF-8")


def _log_event(level: int, event: str, f: dict[str, Any]) -> None:
    """One core event (open, close, reject, error) as a record of the
    `wirecore` logger; the fields ride along as record.wirecore."""
    where = f"{f['remote']}:{f['port']} {f['path']}"
    if event == "close":
        text = (f"close {where} code={f['code']} duration={f['duration']:.3f}s "
                f"in={f['bytes_in']}B out={f['bytes_out']}B")
    elif event == "reject":
        text = f"reject {where} status={f['status']} {f['message']}"
    elif event == "error":
        text = f"error {where} {f['error']}: {f['message']}"
    else:
        text = f"{event} {where}"
    log.log(level, "wirecore: %s", text, extra={"wirecore": {"event": event, **f}})


def _log_broker_state(state: int, message: str) -> None:
    (log.warning if state == 2 else log.info)("wirecore: broker: %s", message)


def _drain(running: RunningServer) -> None:
    """Stop accepting (the backlog is served), finish, then shut down."""
    with contextlib.suppress(_native.WirecoreError):
        running._server.drain(30000)
    running._driver.kick()


def _prefixed(r: Any, prefix: str) -> Any:
    if not prefix:
        return r
    if isinstance(r, Route):
        return r.with_path(prefix + r.path)
    cls, path, options = r
    return (cls, prefix + path, options)


def _import(spec: str) -> Any:
    module, _, attr = spec.partition(":")
    obj: Any = importlib.import_module(module)
    for part in attr.split(".") if attr else []:
        obj = getattr(obj, part)
    return obj

