"""Wirecore: a WebSocket server runtime with a C core and an asyncio API.

    from wirecore import App

    app = App()

    @app.websocket("/echo")
    async def echo(message: dict) -> dict:
        return message

    app.run(port=8000)
"""

from __future__ import annotations

from . import serializers
from ._native import version as core_version
from .app import App, Route, RunningServer, websocket, websocket_route
from .connection import (
    Recovery,
    WebSocket,
    WebSocketConnection,
    WebSocketMessage,
    WebSocketResponse,
)
from .errors import (
    BackpressureError,
    ConfigError,
    ConnectionClosed,
    ConnectionClosedError,
    DeserializationError,
    HandlerError,
    InternalError,
    MessageTooBigError,
    ProtocolError,
    Reject,
    SerializationError,
    UnknownMessageError,
    ValidationError,
    WirecoreError,
)
from .request import Headers, QueryParams, Request
from .tls import TLSConfig
from ._types import schema_for

__version__ = "0.2.0"

__all__ = [
    "App",
    "Route",
    "RunningServer",
    "TLSConfig",
    "Request",
    "Headers",
    "QueryParams",
    "WebSocket",
    "WebSocketConnection",
    "WebSocketMessage",
    "WebSocketResponse",
    "Recovery",
    "websocket",
    "websocket_route",
    "serializers",
    "schema_for",
    "core_version",
    "WirecoreError",
    "InternalError",
    "ConfigError",
    "ProtocolError",
    "MessageTooBigError",
    "SerializationError",
    "DeserializationError",
    "UnknownMessageError",
    "ValidationError",
    "ConnectionClosedError",
    "ConnectionClosed",
    "BackpressureError",
    "HandlerError",
    "Reject",
]
