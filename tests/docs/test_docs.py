"""Every fenced code block in the docs is checked by its language.

Files: docs/*.md, README.md and packages/*/README.md. Each block is one test,
named after its file, line and language:

- c: compiled as a translation unit against core/include
  (cc -fsyntax-only -Wall -Wextra -Werror), so it includes what it uses;
- python: compiled (top-level await allowed, as in a notebook or the asyncio
  REPL); then the blocks of one file run in order in one namespace, like a
  reader pasting them into one session, unless marked otherwise;
- js / javascript / mjs: node --check on an ES module;
- ruby: ruby -c;
- yaml: parsed with PyYAML; json: parsed;
- sh / bash: bash -n;
- text: a diagram or a usage synopsis, not checked.

A block without a language, or in a language not listed, fails.

An HTML comment on the line right above a fence says more about the block:

- ``<!-- docs-test: same as PATH -->``: the block is the file PATH (relative to
  the repository root), byte for byte; a C block is then compiled with PATH's
  directory on the include path;
- ``<!-- docs-test: skip fragment -->``: a deliberately incomplete fragment
  (``...`` standing for code); only for those, and only when making the block
  complete would hide what it shows;
- ``<!-- docs-test: no run -->``: a Python block that is compiled but not run
  (it blocks forever, or needs names the reader brings along).
"""

from __future__ import annotations

import ast
import asyncio
import inspect
import json
import re
import shutil
import subprocess
import sys
import types
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})(?P<info>[^`]*)$")
MARKER = re.compile(r"^\s*<!--\s*docs-test:\s*(?P<what>.*?)\s*-->\s*$")
LANGUAGES = {"c", "python", "js", "javascript", "mjs", "ruby", "yaml", "json", "sh", "bash", "text"}


@dataclass
class Block:
    path: Path
    line: int  # of the opening fence, 1-based
    lang: str
    code: str
    marker: str = ""
    session: list["Block"] = field(default_factory=list, repr=False)

    @property
    def name(self) -> str:
        return f"{self.path.relative_to(REPO)}:{self.line}:{self.lang or 'none'}"


def doc_files() -> list[Path]:
    files = sorted((REPO / "docs").glob("*.md")) + [REPO / "README.md"]
    return files + sorted((REPO / "packages").glob("*/README.md"))


def blocks_of(path: Path) -> list[Block]:
    """The fenced blocks of one Markdown file, with the marker above each."""
    lines = path.read_text(encoding="utf-8").split("\n")
    found: list[Block] = []
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        indent, fence = m["indent"], m["fence"]
        close = re.compile(rf"^[ \t]*{re.escape(fence[0])}{{{len(fence)},}}\s*$")
        j = i + 1
        while j < len(lines) and not close.match(lines[j]):
            j += 1
        assert j < len(lines), f"{path}:{i + 1}: unclosed code fence"
        body = [ln[len(indent):] if ln.startswith(indent) else ln for ln in lines[i + 1 : j]]
        above = MARKER.match(lines[i - 1]) if i > 0 else None
        found.append(
            Block(path, i + 1, m["info"].strip().split(" ")[0].lower(), "\n".join(body) + "\n",
                  above["what"] if above else "")
        )
        i = j + 1
    python = [b for b in found if b.lang == "python"]
    for b in python:
        b.session = python
    return found


ALL = [b for f in doc_files() for b in blocks_of(f)]


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, **kw)


def tool(name: str) -> str:
    found = shutil.which(name)
    assert found, f"{name} is needed to check the docs' code blocks"
    return found


def check_c(block: Block, tmp_path: Path) -> None:
    src = tmp_path / "block.c"
    src.write_text(block.code)
    includes = ["-I", str(REPO / "core" / "include")]
    if block.marker.startswith("same as "):
        includes += ["-I", str((REPO / block.marker[len("same as "):]).parent)]
    cc = shutil.which("cc") or tool("gcc")
    r = run([cc, "-std=gnu11", "-fsyntax-only", "-Wall", "-Wextra", "-Werror",
             "-Wno-unused-parameter", "-Wno-unused-function", *includes, str(src)])
    assert r.returncode == 0, r.stderr


def check_python(block: Block, tmp_path: Path) -> None:
    compile(block.code, block.name, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)


def check_js(block: Block, tmp_path: Path) -> None:
    src = tmp_path / "block.mjs"
    src.write_text(block.code)
    r = run([tool("node"), "--check", str(src)])
    assert r.returncode == 0, r.stderr


def check_ruby(block: Block, tmp_path: Path) -> None:
    src = tmp_path / "block.rb"
    src.write_text(block.code)
    r = run([tool("ruby"), "-c", str(src)])
    assert r.returncode == 0, r.stderr


def check_sh(block: Block, tmp_path: Path) -> None:
    r = run([tool("bash"), "-n"], input=block.code)
    assert r.returncode == 0, r.stderr


CHECKS = {
    "c": check_c,
    "python": check_python,
    "js": check_js,
    "javascript": check_js,
    "mjs": check_js,
    "ruby": check_ruby,
    "yaml": lambda b, _: yaml.safe_load(b.code),
    "json": lambda b, _: json.loads(b.code),
    "sh": check_sh,
    "bash": check_sh,
    "text": lambda b, _: None,
}


@pytest.mark.parametrize("block", ALL, ids=[b.name for b in ALL])
def test_block(block: Block, tmp_path: Path) -> None:
    assert block.lang in LANGUAGES, (
        f"{block.name}: say the block's language after the fence "
        f"(one of {', '.join(sorted(LANGUAGES))})"
    )
    if block.marker == "skip fragment":
        return
    assert block.marker in ("", "no run") or block.marker.startswith("same as "), (
        f"unknown docs-test marker: {block.marker!r}"
    )
    if block.marker.startswith("same as "):
        original = REPO / block.marker[len("same as "):]
        assert block.code == original.read_text(encoding="utf-8"), (
            f"{block.name} differs from {original.relative_to(REPO)}"
        )
    CHECKS[block.lang](block, tmp_path)


SESSIONS = sorted({b.path for b in ALL if b.lang == "python"})


def run_session(path: Path) -> None:
    """Run the Python blocks of one file in order in one namespace (in this
    process: the caller gives it a process of its own)."""
    session = types.ModuleType("docs_session")  # dataclasses and type hints look it up
    sys.modules[session.__name__] = session
    ns = session.__dict__
    for b in blocks_of(path):
        if b.lang != "python" or b.marker in ("no run", "skip fragment"):
            continue
        print(f"--> {b.name}", flush=True)
        code = compile(b.code, b.name, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
        result = eval(code, ns)  # a block with top-level await gives a coroutine
        if inspect.iscoroutine(result):
            asyncio.run(result)
    # the tests the docs show (test_* functions) run too, as pytest would
    for name, fn in list(ns.items()):
        if name.startswith("test_") and inspect.iscoroutinefunction(fn):
            print(f"--> {path.name}: {name}()", flush=True)
            asyncio.run(asyncio.wait_for(fn(), 30))


@pytest.mark.parametrize("path", SESSIONS, ids=[str(p.relative_to(REPO)) for p in SESSIONS])
def test_python_blocks_run_in_order(path: Path, tmp_path: Path) -> None:
    r = run([sys.executable, __file__, "--session", str(path)], cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr


def test_the_docs_have_blocks_in_every_language() -> None:
    """Guards the extraction itself: a parser that found nothing would pass."""
    langs = {b.lang for b in ALL}
    assert {"c", "python", "js", "ruby", "yaml", "sh"} <= langs, langs
    assert len(ALL) >= 30


def count() -> str:
    """How many blocks each language has, and how many are marked."""
    langs: dict[str, int] = {}
    for b in ALL:
        langs[b.lang or "none"] = langs.get(b.lang or "none", 0) + 1
    marks: dict[str, int] = {}
    for b in ALL:
        if b.marker:
            key = "same as" if b.marker.startswith("same as ") else b.marker
            marks[key] = marks.get(key, 0) + 1
    by_lang = ", ".join(f"{k} {v}" for k, v in sorted(langs.items()))
    by_mark = ", ".join(f"{k} {v}" for k, v in sorted(marks.items())) or "none"
    return f"{len(ALL)} code blocks: {by_lang}; marked: {by_mark}"


if __name__ == "__main__":
    if sys.argv[1:2] == ["--session"]:
        run_session(Path(sys.argv[2]))
    elif sys.argv[1:2] == ["--count"]:
        print(count())
