"""docs/security.md names the test that performs each attack: every test it names exists, so
the threat model cannot drift from the tests that back it."""

import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "security.md"
#: `module.py::test_name` or `module.py::test_name[param]` (module relative to tests/ or bare);
#: a bare `::test_name` refers to the module named last before it in the same section.
REFERENCE = re.compile(r"`(?:([\w/]+\.py))?::(test_\w+)(?:\[[^\]]*\])?")


def functions_of_test_modules() -> dict[str, set[str]]:
    """File name → names of its test functions, for every test module of the repository."""
    found: dict[str, set[str]] = {}
    for path in (REPO / "tests").rglob("test_*.py"):
        tree = ast.parse(path.read_text())
        names = {
            node.name
            for node in ast.walk(tree)
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        }
        found.setdefault(path.name, set()).update(names)
    return found


def test_every_test_the_threat_model_names_exists():
    known = functions_of_test_modules()
    named = []
    module = None
    for line in DOC.read_text().splitlines():
        if line.startswith("#"):
            module = None
        for match in REFERENCE.finditer(line):
            module = Path(match.group(1)).name if match.group(1) else module
            assert module, f"{match.group(0)} names no module: {line}"
            named.append((module, match.group(2)))
    assert len(named) >= 20, named
    missing = [f"{m}::{t}" for m, t in named if t not in known.get(m, set())]
    assert missing == []


def test_every_attack_module_is_in_the_threat_model():
    text = DOC.read_text()
    for path in sorted((REPO / "tests").rglob("test_hostile_*.py")):
        assert path.name in text, path
