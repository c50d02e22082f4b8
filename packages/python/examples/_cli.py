"""Command-line options shared by the examples: --host, --port (0 = any free
port); the examples print `listening on ws://HOST:PORT` once ready."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def parse(description: str, extra: Any = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    if extra is not None:
        extra(p)
    return p.parse_args()


def ready(server: Any) -> None:
    print(f"listening on {server.url()}", flush=True)
    sys.stdout.flush()
