"""ondemand-stage runs as root: everything it imports runs as root, so it may import only the
standard library and jinja2 (with markupsafe, jinja2's own dependency)."""

import json
import subprocess
import sys

ALLOWED_THIRD_PARTY = {"jinja2", "markupsafe"}

PROBE = """
import json, sys
before = set(sys.modules)
import ondemand_hub.stage.cli, ondemand_hub.stage.pun
print(json.dumps(sorted({m.split('.')[0] for m in set(sys.modules) - before})))
"""


def test_stage_imports_only_stdlib_and_jinja2():
    out = subprocess.run(
        [sys.executable, "-I", "-c", PROBE], capture_output=True, text=True, check=True
    ).stdout
    top_level = set(json.loads(out))
    outside = {
        name
        for name in top_level
        if name not in sys.stdlib_module_names and not name.startswith("_")
    }
    # the package itself is imported, but nothing of it outside ondemand_hub.stage
    assert outside - ALLOWED_THIRD_PARTY == {"ondemand_hub"}
    project = subprocess.run(
        [sys.executable, "-I", "-c", PROBE.replace("m.split('.')[0]", "m")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    ours = {m for m in json.loads(project) if m.startswith("ondemand_hub")}
    assert all(m == "ondemand_hub" or m.startswith("ondemand_hub.stage") for m in ours), ours
