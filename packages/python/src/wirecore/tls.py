"""TLS (wss://) for App.run/serve/start: certificate and key files.

The core does TLS in C with OpenSSL, so a Python ``ssl.SSLContext`` (whose
certificates live inside Python's own OpenSSL objects and cannot be read
back) cannot be handed to it; a description of the files is what it takes.
"""

from __future__ import annotations

import ssl as _ssl
from dataclasses import dataclass, field
from typing import Any, Mapping, Union

__all__ = ["TLSConfig"]


@dataclass(frozen=True)
class TLSConfig:
    """PEM files for wss://. keyfile defaults to certfile (one combined file);
    password unlocks an encrypted key; cafile makes clients present a
    certificate signed by those CAs; sni maps extra host names to their own
    (certfile, keyfile[, password]) or TLSConfig, chosen by the client's SNI."""

    certfile: str
    keyfile: str | None = None
    password: str | None = None
    cafile: str | None = None
    sni: Mapping[str, Any] = field(default_factory=dict)


TLSLike = Union[TLSConfig, Mapping[str, Any]]


def coerce(value: TLSLike) -> TLSConfig:
    """A TLSConfig from a TLSConfig or a dict of its fields."""
    if isinstance(value, TLSConfig):
        return value
    if isinstance(value, _ssl.SSLContext):
        raise TypeError(
            "wirecore does TLS in its C core and cannot use an ssl.SSLContext: "
            "pass ssl=TLSConfig(certfile=..., keyfile=...) or a dict with those keys"
        )
    if isinstance(value, Mapping):
        unknown = set(value) - {"certfile", "keyfile", "password", "cafile", "sni"}
        if unknown:
            raise TypeError(f"unknown TLS option(s): {', '.join(sorted(unknown))}")
        if "certfile" not in value:
            raise TypeError("TLS needs certfile")
        return TLSConfig(**value)
    raise TypeError("ssl must be a TLSConfig or a dict of certfile, keyfile, password, cafile, sni")


def native_args(value: TLSLike) -> tuple[list[tuple[str | None, str, str, str | None]], str | None]:
    """(certs, cafile) for the native listen_tls / tls_reload."""
    cfg = coerce(value)
    certs: list[tuple[str | None, str, str, str | None]] = [
        (None, str(cfg.certfile), str(cfg.keyfile or cfg.certfile), cfg.password)
    ]
    for name, entry in cfg.sni.items():
        if isinstance(entry, (TLSConfig, Mapping)):
            e = coerce(entry)
            certs.append((name, str(e.certfile), str(e.keyfile or e.certfile), e.password))
        else:
            parts = tuple(entry)
            if len(parts) not in (2, 3):
                raise TypeError(f"sni[{name!r}] must be (certfile, keyfile[, password])")
            certs.append((name, str(parts[0]), str(parts[1]), parts[2] if len(parts) == 3 else None))
    return certs, (str(cfg.cafile) if cfg.cafile else None)
