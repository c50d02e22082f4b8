"""Type annotations -> JSON Schema, and the conversions around validation.

`schema_for(tp)` turns an annotation into a JSON Schema 2020-12 document that
the core compiles and checks in C. `loader_for(tp)` makes a function turning
an already validated plain value (dict, list, ...) into the annotated type
(dataclass instance, pydantic model, Enum member...); it returns None when the
plain value already is the right thing, so the hot path does no work.
`to_plain` is the `default` hook the C encoder calls for objects it does not
know (dataclasses, models, Enums, sets).
"""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from typing import Any, Callable, Literal, Union, get_args, get_origin

try:  # optional integrations
    import pydantic as _pydantic
except ImportError:  # pragma: no cover - depends on the environment
    _pydantic = None

try:
    import msgspec as _msgspec
except ImportError:  # pragma: no cover
    _msgspec = None

_NoneType = type(None)

__all__ = ["schema_for", "loader_for", "to_plain", "is_typed_dict"]


def is_typed_dict(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, dict) and hasattr(tp, "__required_keys__")


def _is_pydantic_model(tp: Any) -> bool:
    return _pydantic is not None and isinstance(tp, type) and issubclass(tp, _pydantic.BaseModel)


def _is_msgspec_struct(tp: Any) -> bool:
    return _msgspec is not None and isinstance(tp, type) and issubclass(tp, _msgspec.Struct)


def _strip_annotated(tp: Any) -> Any:
    while get_origin(tp) is typing.Annotated:
        tp = get_args(tp)[0]
    return tp


def _is_union(tp: Any) -> bool:
    origin = get_origin(tp)
    return origin is Union or origin is types.UnionType


class _SchemaBuilder:
    """Builds one schema document; named classes go to $defs once each."""

    def __init__(self) -> None:
        self.defs: dict[str, Any] = {}
        self._names: dict[Any, str] = {}

    def ref(self, tp: Any, body: Callable[[], dict]) -> dict:
        name = self._names.get(tp)
        if name is None:
            base = getattr(tp, "__name__", "T")
            name = base
            n = 2
            while name in self.defs:
                name = f"{base}{n}"
                n += 1
            self._names[tp] = name
            self.defs[name] = {}  # placeholder: recursive types see the ref
            self.defs[name] = body()
        return {"$ref": f"#/$defs/{name}"}

    def build(self, tp: Any, inline: bool = False) -> dict:
        tp = _strip_annotated(tp)
        if tp is Any or tp is object:
            return {}
        if tp is None or tp is _NoneType:
            return {"type": "null"}
        if tp is bool:
            return {"type": "boolean"}
        if tp is int:
            return {"type": "integer"}
        if tp is float:
            return {"type": "number"}
        if tp is str:
            return {"type": "string"}
        if tp in (bytes, bytearray, memoryview):
            return {}  # MessagePack bin: JSON Schema has no binary type
        if isinstance(tp, typing.TypeVar):
            return {}
        origin = get_origin(tp)
        args = get_args(tp)
        if origin is Literal:
            values = [a.value if isinstance(a, enum.Enum) else a for a in args]
            return {"const": values[0]} if len(values) == 1 else {"enum": values}
        if _is_union(tp):
            return {"anyOf": [self.build(a) for a in args]}
        if origin in (list, set, frozenset) or tp in (list, set, frozenset):
            out: dict = {"type": "array"}
            if args:
                out["items"] = self.build(args[0])
            if origin in (set, frozenset):
                out["uniqueItems"] = True
            return out
        if origin is tuple or tp is tuple:
            if not args or (len(args) == 2 and args[1] is Ellipsis):
                out = {"type": "array"}
                if args:
                    out["items"] = self.build(args[0])
                return out
            if args == ((),):
                return {"type": "array", "maxItems": 0}
            return {
                "type": "array",
                "prefixItems": [self.build(a) for a in args],
                "items": False,
                "minItems": len(args),
            }
        if origin is dict or tp is dict:
            out = {"type": "object"}
            if args:
                out["additionalProperties"] = self.build(args[1])
            return out
        if origin is not None and isinstance(origin, type):
            # other generics (collections.abc.Sequence[int], Mapping[str, T])
            import collections.abc as cabc

            if issubclass(origin, cabc.Mapping):
                return {"type": "object", "additionalProperties": self.build(args[1]) if args else {}}
            if issubclass(origin, cabc.Sequence):
                return {"type": "array", "items": self.build(args[0]) if args else {}}
        if isinstance(tp, type) and issubclass(tp, enum.Enum):
            return {"enum": [m.value for m in tp]}
        if is_typed_dict(tp):
            return self._named(tp, self._typed_dict, inline)
        if dataclasses.is_dataclass(tp) and isinstance(tp, type):
            return self._named(tp, self._dataclass, inline)
        if _is_pydantic_model(tp):
            return self._named(tp, self._pydantic, inline)
        if _is_msgspec_struct(tp):
            return self._named(tp, self._msgspec, inline)
        raise TypeError(f"wirecore: cannot make a JSON Schema for {tp!r}")

    def _named(self, tp: Any, make: Callable[[Any], dict], inline: bool) -> dict:
        if inline:
            # The top level stays inline so the core's dispatcher can see a
            # discriminator ("type": {"const": ...}) without following $ref.
            ref = self.ref(tp, lambda: make(tp))
            return dict(self.defs[ref["$ref"].rsplit("/", 1)[1]])
        return self.ref(tp, lambda: make(tp))

    def _hints(self, tp: Any) -> dict[str, Any]:
        return typing.get_type_hints(tp, include_extras=True)

    def _typed_dict(self, tp: Any) -> dict:
        hints = self._hints(tp)
        props = {k: self.build(_unwrap_required(v)) for k, v in hints.items()}
        # With string annotations (PEP 563) Python 3.11 cannot see NotRequired
        # when it computes __required_keys__: look at the resolved hints too.
        required = [
            k
            for k, v in hints.items()
            if get_origin(v) is typing.Required
            or (k in tp.__required_keys__ and get_origin(v) is not typing.NotRequired)
        ]
        out = {"type": "object", "properties": props}
        if required:
            out["required"] = required
        return out

    def _dataclass(self, tp: Any) -> dict:
        hints = self._hints(tp)
        props, required = {}, []
        for f in dataclasses.fields(tp):
            if not f.init:
                continue
            props[f.name] = self.build(hints.get(f.name, Any))
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                required.append(f.name)
        out = {"type": "object", "properties": props}
        if required:
            out["required"] = required
        return out

    def _pydantic(self, tp: Any) -> dict:
        schema = tp.model_json_schema(ref_template="#/$defs/{model}", mode="validation")
        for name, sub in schema.pop("$defs", {}).items():
            self.defs.setdefault(name, sub)
        return schema

    def _msgspec(self, tp: Any) -> dict:
        (schema,), defs = _msgspec.json.schema_components((tp,), ref_template="#/$defs/{name}")
        for name, sub in defs.items():
            self.defs.setdefault(name, sub)
        if "$ref" in schema:
            schema = dict(defs[schema["$ref"].rsplit("/", 1)[1]])
        return schema


def _unwrap_required(tp: Any) -> Any:
    origin = get_origin(tp)
    if origin in (typing.Required, typing.NotRequired):
        return get_args(tp)[0]
    return tp


def schema_for(tp: Any) -> dict:
    """A JSON Schema 2020-12 document for an annotation (named classes under $defs)."""
    b = _SchemaBuilder()
    root = b.build(tp, inline=True)
    if b.defs:
        root = dict(root)
        root["$defs"] = b.defs
    return root


# ---- after validation: plain value -> annotated type -------------------------

Loader = Callable[[Any], Any]


def loader_for(tp: Any) -> Loader | None:
    """A converter from a validated plain value to `tp`, or None (identity)."""
    return _loader(tp, {})


def _loader(tp: Any, seen: dict) -> Loader | None:
    tp = _strip_annotated(tp)
    if tp in seen:
        return seen[tp]  # a recursive type: the box is filled once built
    origin, args = get_origin(tp), get_args(tp)
    if _is_union(tp):
        return _union_loader([a for a in args], seen)
    if origin is Literal or tp in (Any, object, None, _NoneType, bool, int, str):
        return None
    if tp is float:
        return None  # int is acceptable where float is annotated
    if tp in (bytes, bytearray):
        return lambda v: v if isinstance(v, bytes) else v.encode()
    if origin in (list, set, frozenset) or origin is tuple:
        if not args:
            return None if origin is list else origin
        if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis):
            items = [_loader(a, seen) for a in args]
            if all(i is None for i in items):
                return tuple
            return lambda v: tuple(f(x) if f else x for f, x in zip(items, v))
        item = _loader(args[0], seen)
        if origin is list:
            return None if item is None else (lambda v: [item(x) for x in v])
        return (lambda v: origin(v)) if item is None else (lambda v: origin(item(x) for x in v))
    if origin is dict:
        if len(args) < 2:
            return None
        val = _loader(args[1], seen)
        return None if val is None else (lambda v: {k: val(x) for k, x in v.items()})
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return tp
    if is_typed_dict(tp):
        hints = typing.get_type_hints(tp)
        seen[tp] = lambda v: v
        fields = {k: _loader(_unwrap_required(h), seen) for k, h in hints.items()}
        fields = {k: f for k, f in fields.items() if f is not None}
        del seen[tp]
        if not fields:
            return None

        def load_td(v: dict) -> dict:
            for k, f in fields.items():
                if k in v:
                    v[k] = f(v[k])
            return v

        return load_td
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return _dataclass_loader(tp, seen)
    if _is_pydantic_model(tp):
        return tp.model_validate
    if _is_msgspec_struct(tp):
        return lambda v: _msgspec.convert(v, tp)
    return None


def _dataclass_loader(tp: type, seen: dict) -> Loader:
    hints = typing.get_type_hints(tp)
    box: list[Loader] = []
    seen[tp] = lambda v: box[0](v)
    fields = [(f.name, _loader(hints.get(f.name, Any), seen)) for f in dataclasses.fields(tp) if f.init]
    del seen[tp]
    names = {n for n, _ in fields}
    conv = [(n, f) for n, f in fields if f is not None]

    def load(v: dict) -> Any:
        kw = {k: x for k, x in v.items() if k in names}
        for n, f in conv:
            if n in kw:
                kw[n] = f(kw[n])
        return tp(**kw)

    box.append(load)
    return load


def _union_loader(members: list, seen: dict) -> Loader | None:
    loaders = [_loader(m, seen) for m in members]
    if all(f is None for f in loaders):
        return None
    # Pick the member whose schema the value satisfies, checked by the core.
    from . import _native

    import json

    checks = [_native.Schema(json.dumps(schema_for(m))) for m in members]

    def load(v: Any) -> Any:
        for check, f in zip(checks, loaders):
            if check.is_valid(v):
                return f(v) if f is not None else v
        return v

    return load


# ---- before encoding: objects the C encoder does not know -> plain values ----


def to_plain(obj: Any) -> Any:
    """The `default` hook of the C encoder: return a plain replacement, or obj itself."""
    if isinstance(obj, enum.Enum):
        return obj.value
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
    if _pydantic is not None and isinstance(obj, _pydantic.BaseModel):
        return obj.model_dump(mode="json")
    if _msgspec is not None and isinstance(obj, _msgspec.Struct):
        return _msgspec.to_builtins(obj)
    if isinstance(obj, (set, frozenset)):
        return list(obj)
    if isinstance(obj, (str, int, float, dict, list, tuple)):
        return obj
    from ._native import SerializationError

    raise SerializationError(f"cannot encode an object of type {type(obj).__name__}")
