#!/usr/bin/env bash
# The test command: lint, type-check and run every test. `.ci/run` calls exactly this.
# Works from a clean checkout: creates .venv and installs the package with its test extras.
# Extra arguments go to pytest, e.g. `scripts/test.sh -k redis -x`.
# pytest runs on SUPPORTFLOW_TEST_WORKERS xdist workers (default 4; 0 = one process), each with
# its own session stack; with -x, -k, -n or --pdb among the arguments it runs as they say.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
VENV="${SUPPORTFLOW_VENV:-.venv}"
PY="$VENV/bin/python"
# Each stage's time goes to the log, so CI shows where the minutes go.
stage_start=$SECONDS
stage() {
    echo "    ($((SECONDS - stage_start)) s)"
    stage_start=$SECONDS
    echo "==> $1"
}

if [[ ! -x "$PY" ]]; then
    echo "==> creating $VENV"
    python3 -m venv "$VENV"
fi

stage "installing supportflow with test extras"
"$PY" -m pip install --quiet --disable-pip-version-check -e '.[test]'

# The browser tests (tests/e2e/test_pages.py) drive Debian's Chromium with Playwright.
if ! command -v chromium >/dev/null 2>&1; then
    stage "installing Chromium for the browser tests (apt-get install chromium)"
    if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } >/dev/null; then
        echo "could not install chromium; the browser tests will fail" >&2
    fi
fi

stage "ruff"
"$PY" -m ruff check supportflow workers tests

stage "mypy"
"$PY" -m mypy

stage "pytest"
workers="${SUPPORTFLOW_TEST_WORKERS:-4}"
for arg in "$@"; do
    case "$arg" in
        -x|--exitfirst|-k|-k*|-n|-n*|--numprocesses*|--pdb|-p) workers=0 ;;
    esac
done
parallel=()
if [[ "$workers" != 0 ]]; then
    parallel=(-n "$workers" --dist loadgroup)
fi
status=0
"$PY" -m pytest -q "${parallel[@]}" "$@" || status=$?
echo "    ($((SECONDS - stage_start)) s)"
if [[ $status -eq 5 ]]; then
    echo "pytest collected no tests: that is a failure" >&2
    exit 1
fi
exit "$status"
