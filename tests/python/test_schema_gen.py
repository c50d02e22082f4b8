"""Type annotations -> JSON Schema, and validated values -> annotated types."""

from __future__ import annotations

import dataclasses
import enum
from typing import Any, Literal, NotRequired, Optional, TypedDict, Union

import pytest

from wirecore import schema_for
from wirecore._types import loader_for


class Kind(enum.Enum):
    A = "a"
    B = "b"


class Msg(TypedDict):
    type: Literal["msg"]
    text: str
    tags: NotRequired[list[str]]


@dataclasses.dataclass
class Inner:
    n: int


@dataclasses.dataclass
class Outer:
    inner: Inner
    items: list[Inner]
    label: str = "x"


@dataclasses.dataclass
class Tree:
    value: int
    children: list["Tree"] = dataclasses.field(default_factory=list)


@pytest.mark.parametrize(
    "tp, schema",
    [
        (int, {"type": "integer"}),
        (float, {"type": "number"}),
        (str, {"type": "string"}),
        (bool, {"type": "boolean"}),
        (type(None), {"type": "null"}),
        (Any, {}),
        (Literal["a"], {"const": "a"}),
        (Literal["a", 1], {"enum": ["a", 1]}),
        (Kind, {"enum": ["a", "b"]}),
        (Optional[int], {"anyOf": [{"type": "integer"}, {"type": "null"}]}),
        (int | str, {"anyOf": [{"type": "integer"}, {"type": "string"}]}),
        (Union[int, str], {"anyOf": [{"type": "integer"}, {"type": "string"}]}),
        (list[int], {"type": "array", "items": {"type": "integer"}}),
        (list, {"type": "array"}),
        (set[str], {"type": "array", "items": {"type": "string"}, "uniqueItems": True}),
        (tuple[int, ...], {"type": "array", "items": {"type": "integer"}}),
        (
            tuple[int, str],
            {
                "type": "array",
                "prefixItems": [{"type": "integer"}, {"type": "string"}],
                "items": False,
                "minItems": 2,
            },
        ),
        (dict[str, int], {"type": "object", "additionalProperties": {"type": "integer"}}),
        (dict, {"type": "object"}),
    ],
    ids=repr,
)
def test_maps_annotation_to_schema(tp, schema):
    assert schema_for(tp) == schema


def test_typed_dict_is_inlined_with_required_keys():
    s = schema_for(Msg)
    assert s["type"] == "object"
    assert s["properties"]["type"] == {"const": "msg"}
    assert s["properties"]["tags"] == {"type": "array", "items": {"type": "string"}}
    assert s["required"] == ["type", "text"]


def test_dataclass_fields_with_defaults_are_optional():
    s = schema_for(Outer)
    assert s["required"] == ["inner", "items"]
    assert s["properties"]["inner"] == {"$ref": "#/$defs/Inner"}
    assert s["properties"]["items"] == {"type": "array", "items": {"$ref": "#/$defs/Inner"}}
    assert s["$defs"]["Inner"] == {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}


def test_recursive_dataclass_refers_to_itself():
    s = schema_for(Tree)
    assert s["properties"]["children"] == {"type": "array", "items": {"$ref": "#/$defs/Tree"}}
    assert "Tree" in s["$defs"]


def test_pydantic_model_schema_and_loader():
    import pydantic

    class Point(pydantic.BaseModel):
        x: int
        y: int = 0

    class Shape(pydantic.BaseModel):
        points: list[Point]

    s = schema_for(Shape)
    assert s["type"] == "object"
    assert s["properties"]["points"]["items"] == {"$ref": "#/$defs/Point"}
    assert "Point" in s["$defs"]
    shape = loader_for(Shape)({"points": [{"x": 1}]})
    assert isinstance(shape, Shape) and shape.points[0].y == 0


def test_msgspec_struct_schema_and_loader():
    import msgspec

    class P(msgspec.Struct):
        x: int
        y: str = "a"

    s = schema_for(P)
    assert s["type"] == "object"
    assert s["properties"]["x"] == {"type": "integer"}
    assert s["required"] == ["x"]
    p = loader_for(P)({"x": 2})
    assert isinstance(p, P) and p.y == "a"


def test_unsupported_annotation_is_a_type_error():
    with pytest.raises(TypeError):
        schema_for(complex)


def test_plain_types_need_no_loader():
    assert loader_for(int) is None
    assert loader_for(dict[str, int]) is None
    assert loader_for(list[str]) is None
    assert loader_for(Msg) is None


def test_loader_builds_nested_dataclasses():
    out = loader_for(Outer)({"inner": {"n": 1}, "items": [{"n": 2}], "label": "y"})
    assert out == Outer(Inner(1), [Inner(2)], "y")


def test_loader_builds_recursive_dataclasses():
    out = loader_for(Tree)({"value": 1, "children": [{"value": 2}]})
    assert out == Tree(1, [Tree(2)])


def test_loader_converts_enums_and_tuples():
    assert loader_for(Kind)("a") is Kind.A
    assert loader_for(tuple[int, str])([1, "x"]) == (1, "x")
    assert loader_for(list[Kind])(["a", "b"]) == [Kind.A, Kind.B]
    assert loader_for(dict[str, Inner])({"k": {"n": 1}}) == {"k": Inner(1)}


@dataclasses.dataclass
class Cat:
    kind: Literal["cat"]
    lives: int


@dataclasses.dataclass
class Dog:
    kind: Literal["dog"]
    good: bool = True


def test_union_loader_picks_the_member_whose_schema_matches():
    load = loader_for(Cat | Dog)
    assert load({"kind": "dog"}) == Dog("dog", True)
    assert load({"kind": "cat", "lives": 9}) == Cat("cat", 9)
    assert loader_for(Optional[Cat])(None) is None
