#!/usr/bin/env bash
# Runs every test layer against the installed venv (`make test` runs scripts/setup.sh --test
# first). Two pytest sessions, because pytest-jupyter (tests/extensions) must not share a session
# with pytest-asyncio (the rest). The last line sums both up for CI.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=/opt/ondemand-hub/venv/bin/python
out=$(mktemp -d)
status=0

echo "=== lint ==="
"$PY" -m ruff check . || status=1
"$PY" -m ruff format --check . || status=1

echo "=== unit, integration and browser tests ==="
"$PY" -m pytest -p no:cacheprovider --junitxml="$out/main.xml" tests/unit tests/integration tests/e2e || status=1

echo "=== jupyter-server extension tests ==="
"$PY" -m pytest -p no:cacheprovider --junitxml="$out/extensions.xml" tests/extensions || status=1

"$PY" - "$out"/*.xml <<'PYEOF'
import sys
import xml.etree.ElementTree as ET

totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
for path in sys.argv[1:]:
    root = ET.parse(path).getroot()
    for suite in root.iter("testsuite"):
        for key in totals:
            totals[key] += int(suite.get(key, 0))
failed = totals["failures"] + totals["errors"]
passed = totals["tests"] - failed - totals["skipped"]
print(f"{passed} passed, {failed} failed, {totals['skipped']} skipped")
PYEOF
[ -s "$out/main.xml" ] && [ -s "$out/extensions.xml" ] || status=1
rm -rf "$out"
exit $status
