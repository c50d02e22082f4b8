"""App.load_routes: the routes.yaml shown in docs/python.md loads as written,
and without PyYAML the call says how to install it."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap

from conftest import REPO
from wirecore import App, WebSocket


def documented_routes_yaml() -> str:
    """The ```yaml block that follows "`routes.yaml`:" in docs/python.md."""
    text = (REPO / "docs" / "python.md").read_text(encoding="utf-8")
    found = re.search(r"`routes\.yaml`:\s*\n\s*```yaml\n(.*?)```", text, re.S)
    assert found, "docs/python.md has no routes.yaml example"
    return found.group(1)


def test_the_documented_routes_yaml_loads(tmp_path, monkeypatch):
    pkg = tmp_path / "myapp"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "handlers.py").write_text(
        "async def upper(message: str) -> str:\n    return message.upper()\n"
    )
    (pkg / "rooms.py").write_text(
        textwrap.dedent(
            """
            from wirecore import WebSocket

            class Room(WebSocket):
                def receive(self, message: str) -> str:
                    return self.path_params["room"] + ":" + message
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    routes = tmp_path / "routes.yaml"
    routes.write_text(documented_routes_yaml(), encoding="utf-8")
    app = App()
    app.load_routes(str(routes))
    assert app.routes == ["/api/upper", "/api/rooms/{room}"]
    room = sys.modules["myapp.rooms"].Room
    assert issubclass(room, WebSocket)


def test_without_pyyaml_load_routes_says_how_to_install_it(tmp_path):
    routes = tmp_path / "routes.yaml"
    routes.write_text("routers: []\n")
    program = textwrap.dedent(
        f"""
        import sys
        sys.modules["yaml"] = None  # as if PyYAML were not installed
        from wirecore import App
        try:
            App().load_routes({str(routes)!r})
        except ImportError as err:
            print(type(err).__name__, err.name, err, sep="|")
        else:
            print("no error")
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=60, check=True
    ).stdout.strip()
    kind, name, message = out.split("|", 2)
    assert (kind, name) == ("ImportError", "yaml")
    assert "pip install 'wirecore[yaml]'" in message
    assert "PyYAML" in message
