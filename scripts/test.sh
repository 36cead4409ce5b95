#!/usr/bin/env bash
# The test command: lint, type-check and run every test. `.ci/run` calls exactly this.
# Works from a clean checkout: creates .venv and installs the package with its test extras.
# Extra arguments go to pytest, e.g. `scripts/test.sh -k redis -x`.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
VENV="${SUPPORTFLOW_VENV:-.venv}"
PY="$VENV/bin/python"

if [[ ! -x "$PY" ]]; then
    echo "==> creating $VENV"
    python3 -m venv "$VENV"
fi

echo "==> installing supportflow with test extras"
"$PY" -m pip install --quiet --disable-pip-version-check -e '.[test]'

# The browser tests (tests/e2e/test_pages.py) drive Debian's Chromium with Playwright.
if ! command -v chromium >/dev/null 2>&1; then
    echo "==> installing Chromium for the browser tests (apt-get install chromium)"
    if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } >/dev/null; then
        echo "could not install chromium; the browser tests will fail" >&2
    fi
fi

echo "==> ruff"
"$PY" -m ruff check supportflow workers tests

echo "==> mypy"
"$PY" -m mypy

echo "==> pytest"
status=0
"$PY" -m pytest -q "$@" || status=$?
if [[ $status -eq 5 ]]; then
    echo "pytest collected no tests: that is a failure" >&2
    exit 1
fi
exit "$status"
