"""Errors raised and handled by Wirecore.

The exception types live in the C module's state (`wirecore._native`); this
module re-exports them next to `Reject`, which a handler raises to refuse a
connection before the upgrade.
"""

from __future__ import annotations

from ._native import (
    ConnectionClosed,
    DeserializationError,
    SerializationError,
    UnknownMessageError,
    ValidationError,
    WirecoreError,
)

__all__ = [
    "WirecoreError",
    "SerializationError",
    "DeserializationError",
    "UnknownMessageError",
    "ValidationError",
    "ConnectionClosed",
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
