#!/usr/bin/env bash
# Docs: every fenced code block in docs/*.md, README.md and packages/*/README.md
# is compiled, parsed or run according to its language (tests/docs/test_docs.py,
# pytest): C with cc -fsyntax-only against core/include, Python compiled and run
# in order per file, JavaScript with node --check, Ruby with ruby -c, YAML/JSON
# parsed, shell with bash -n. Runs after 20-python: the Python blocks use the
# wirecore package installed in build/py-venv.
set -euo pipefail
cd "$(dirname "$0")/../.."
vpy=build/py-venv/bin/python
if ! "$vpy" -c 'import wirecore, yaml, pytest' 2>/dev/null; then
  echo "65-docs: build/py-venv has no wirecore (run scripts/test.d/20-python.sh first)" >&2
  exit 1
fi
"$vpy" tests/docs/test_docs.py --count
"$vpy" -m pytest -q -p no:cacheprovider -p no:asyncio tests/docs "$@"
