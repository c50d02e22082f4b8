"""Errors raised and handled by Wirecore.

The exception classes live in the C module's state (`wirecore._native`) and are
generated from the core's one list of error categories, so the same core error
raises the same class name in Python, Node and Ruby:

| category        | class                  | core codes                                   |
|-----------------|------------------------|----------------------------------------------|
| internal        | InternalError          | ENOMEM, EBUSY, ESTATE, ENOTFOUND, EUV        |
| config          | ConfigError            | EINVAL, EADDRINUSE, ELISTEN, ESCHEMA, EROUTE |
| protocol        | ProtocolError          | EPROTOCOL, EUTF8                             |
| too_big         | MessageTooBigError     | ETOOBIG                                      |
| deserialize     | DeserializationError   | EDESERIALIZE, EDEPTH, ECODEC                 |
| serialize       | SerializationError     | ESERIALIZE                                   |
| validation      | ValidationError        | EVALIDATION                                  |
| unknown_message | UnknownMessageError    | EUNKNOWN_MESSAGE                             |
| closed          | ConnectionClosedError  | ECLOSED                                      |
| backpressure    | BackpressureError      | EBACKPRESSURE                                |
| handler         | HandlerError           | EHANDLER                                     |

All derive from `WirecoreError`; `ConnectionClosed` is the same class as
`ConnectionClosedError` (its earlier name). `Reject` is not a core error: a
handler raises it to refuse a connection before the upgrade.
"""

from __future__ import annotations

from ._native import (
    BackpressureError,
    ConfigError,
    ConnectionClosed,
    ConnectionClosedError,
    DeserializationError,
    HandlerError,
    InternalError,
    MessageTooBigError,
    ProtocolError,
    SerializationError,
    UnknownMessageError,
    ValidationError,
    WirecoreError,
)

__all__ = [
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


class Reject(Exception):
    """Raise in an on_connect handler to refuse the upgrade with an HTTP status."""

    def __init__(self, status: int = 403, reason: str | None = None) -> None:
        if not 400 <= int(status) <= 599:
            raise ValueError("Reject status must be an HTTP error status (400..599)")
        super().__init__(status, reason)
        self.status = int(status)
        self.reason = reason
