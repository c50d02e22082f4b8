"""Value conversion between Python objects and the core's value model."""

from __future__ import annotations

import dataclasses
import enum
import math

import pytest

from wirecore import DeserializationError, SerializationError, _native
from wirecore._types import to_plain

JSON, MSGPACK = _native.CODEC_JSON, _native.CODEC_MSGPACK

SAMPLES = [
    None,
    True,
    False,
    0,
    -1,
    2**63 - 1,
    -(2**63),
    2**64 - 1,
    1.5,
    -0.25,
    "",
    "héllo ✓ 𝄞",
    "nul\x00inside",
    [],
    {},
    [1, [2, [3, {"a": None}]]],
    {"x": {"y": [True, 1.25, "z"]}, "": 0},
]


@pytest.mark.parametrize("value", SAMPLES, ids=repr)
@pytest.mark.parametrize("codec", [JSON, MSGPACK], ids=["json", "msgpack"])
def test_round_trips_plain_values(value, codec):
    assert _native.decode(_native.encode(value, codec), codec) == value


def test_tuples_encode_as_arrays():
    assert _native.encode((1, "a"), JSON) == b'[1,"a"]'


def test_bytes_round_trip_through_msgpack_bin():
    data = bytes(range(256))
    assert _native.decode(_native.encode({"b": data}, MSGPACK), MSGPACK) == {"b": data}


def test_bytes_cannot_be_json():
    with pytest.raises(SerializationError):
        _native.encode(b"raw", JSON)


def test_nan_cannot_be_json():
    with pytest.raises(SerializationError):
        _native.encode(math.nan, JSON)


def test_non_string_keys_are_refused():
    with pytest.raises(SerializationError, match="keys must be str"):
        _native.encode({1: "x"}, JSON)


def test_integers_beyond_64_bits_are_refused():
    with pytest.raises(SerializationError, match="out of range"):
        _native.encode(2**64, JSON)


def test_unknown_objects_are_refused_without_default():
    with pytest.raises(SerializationError, match="object"):
        _native.encode(object(), JSON)


def test_lone_surrogates_are_refused():
    with pytest.raises(SerializationError):
        _native.encode("\ud800", JSON)


def test_cycles_are_refused():
    a: list = []
    a.append(a)
    with pytest.raises(SerializationError, match="deep"):
        _native.encode(a, JSON)


class Color(enum.Enum):
    RED = "red"


@dataclasses.dataclass
class Point:
    x: int
    y: int
    color: Color = Color.RED


def test_default_hook_converts_dataclasses_and_enums():
    out = _native.decode(_native.encode([Point(1, 2)], JSON, to_plain), JSON)
    assert out == [{"x": 1, "y": 2, "color": "red"}]


def test_default_hook_converts_pydantic_models():
    import pydantic

    class M(pydantic.BaseModel):
        a: int
        tags: list[str] = []

    assert _native.decode(_native.encode(M(a=1), JSON, to_plain), JSON) == {"a": 1, "tags": []}


def test_default_hook_converts_msgspec_structs():
    import msgspec

    class S(msgspec.Struct):
        a: int

    assert _native.decode(_native.encode(S(a=3), JSON, to_plain), JSON) == {"a": 3}


def test_decode_errors_carry_the_offset():
    with pytest.raises(DeserializationError) as info:
        _native.decode(b'{"a": tru}', JSON)
    assert info.value.offset > 0
    assert info.value.name == "EDESERIALIZE"


def test_decode_refuses_trailing_commas():
    with pytest.raises(DeserializationError):
        _native.decode("[1,]", JSON)


def test_repeated_keys_keep_the_last_value():
    assert _native.decode('{"a":1,"a":2}', JSON) == {"a": 2}


def test_deep_nesting_is_refused_on_decode():
    with pytest.raises(DeserializationError):
        _native.decode("[" * 10000 + "]" * 10000, JSON)


def test_msgpack_non_string_keys_are_refused_on_decode():
    with pytest.raises(DeserializationError):
        _native.decode(b"\x81\x01\x02", MSGPACK)  # {1: 2}


def test_large_integers_decode_exactly():
    assert _native.decode("18446744073709551615", JSON) == 2**64 - 1
    assert _native.decode("-9223372036854775808", JSON) == -(2**63)
