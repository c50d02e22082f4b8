"""Shared helpers of the end-to-end tests in e2e/ (pytest puts this folder on
sys.path for the test modules beside it)."""

import socket


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago, for a server the
    test starts as a process."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
