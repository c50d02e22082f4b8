"""The handshake request of a connection, as the core parsed it."""

from __future__ import annotations

from typing import Any, Iterator, Mapping


class QueryParams(Mapping[str, str]):
    """Query parameters: `params["k"]` is the first value, `getlist("k")` all of them."""

    __slots__ = ("_pairs", "_first")

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self._pairs = pairs
        first: dict[str, str] = {}
        for k, v in pairs:
            first.setdefault(k, v)
        self._first = first

    def __getitem__(self, key: str) -> str:
        return self._first[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._first)

    def __len__(self) -> int:
        return len(self._first)

    def getlist(self, key: str) -> list[str]:
        return [v for k, v in self._pairs if k == key]

    def items_all(self) -> list[tuple[str, str]]:
        return list(self._pairs)

    def __repr__(self) -> str:
        return f"QueryParams({self._pairs!r})"


class Headers(Mapping[str, str]):
    """Request headers; lookup is case-insensitive, `getlist` returns repeats."""

    __slots__ = ("_pairs", "_map")

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self._pairs = pairs
        m: dict[str, str] = {}
        for k, v in pairs:
            key = k.lower()
            m[key] = f"{m[key]}, {v}" if key in m else v
        self._map = m

    def __getitem__(self, key: str) -> str:
        return self._map[key.lower()]

    def __iter__(self) -> Iterator[str]:
        return iter(self._map)

    def __len__(self) -> int:
        return len(self._map)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key.lower() in self._map

    def getlist(self, key: str) -> list[str]:
        key = key.lower()
        return [v for k, v in self._pairs if k.lower() == key]

    def raw(self) -> list[tuple[str, str]]:
        return list(self._pairs)

    def __repr__(self) -> str:
        return f"Headers({self._pairs!r})"


class Request:
    """The upgrade request: path, path and query parameters, headers, peer address."""

    __slots__ = (
        "path",
        "target",
        "path_params",
        "query_params",
        "headers",
        "client",
        "subprotocol",
        "state",
    )

    def __init__(self, info: tuple) -> None:
        path, target, params, query, headers, addr, port, subprotocol = info
        self.path: str = path
        self.target: str = target
        self.path_params: dict[str, str] = dict(params)
        self.query_params = QueryParams(query)
        self.headers = Headers(headers)
        self.client: tuple[str, int] = (addr or "", port)
        self.subprotocol: str | None = subprotocol
        self.state: dict[str, Any] = {}

    @property
    def query_string(self) -> str:
        return self.target.partition("?")[2]

    def __repr__(self) -> str:
        return f"<Request {self.target!r} from {self.client[0]}:{self.client[1]}>"
