"""Message serializers.

`JSONSerializer` (text frames) and `MessagePackSerializer` (binary frames) are
markers: the core decodes, validates, dispatches and encodes in C.
Subclass `PacketSerializer` to use any other format from Python: the core then
hands over raw frames, your `decode`/`encode` run in Python, and validation
and dispatch still run in C on the decoded value (the slower path).
"""

from __future__ import annotations

from typing import Any, ClassVar

from . import _native
from ._types import to_plain

__all__ = ["Serializer", "JSONSerializer", "MessagePackSerializer", "PacketSerializer"]


class Serializer:
    """Base of every serializer. `codec` is the core codec used on the wire."""

    codec: ClassVar[int] = _native.CODEC_RAW
    binary: ClassVar[bool] = False

    @classmethod
    def encode(cls, obj: Any) -> str | bytes:
        raise NotImplementedError

    @classmethod
    def decode(cls, data: str | bytes) -> Any:
        raise NotImplementedError


class JSONSerializer(Serializer):
    """JSON in text frames, decoded and encoded by the core."""

    codec = _native.CODEC_JSON
    binary = False

    @classmethod
    def encode(cls, obj: Any) -> str:
        return _native.encode(obj, _native.CODEC_JSON, to_plain).decode("utf-8")

    @classmethod
    def decode(cls, data: str | bytes) -> Any:
        return _native.decode(data, _native.CODEC_JSON)


class MessagePackSerializer(Serializer):
    """MessagePack in binary frames, decoded and encoded by the core."""

    codec = _native.CODEC_MSGPACK
    binary = True

    @classmethod
    def encode(cls, obj: Any) -> bytes:
        return _native.encode(obj, _native.CODEC_MSGPACK, to_plain)

    @classmethod
    def decode(cls, data: str | bytes) -> Any:
        return _native.decode(data, _native.CODEC_MSGPACK)


class PacketSerializer(Serializer):
    """Subclass and implement `encode`/`decode` (and set `binary`) for a custom format.

    `decode` receives the frame's payload (str for text frames, bytes for
    binary ones) and raises any exception for bad input (reported as
    DeserializationError); `encode` returns str (sent as text) or bytes
    (sent as binary).
    """

    codec = _native.CODEC_RAW
