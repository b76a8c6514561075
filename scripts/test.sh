#!/usr/bin/env bash
# The whole suite under coverage (including the processes that end-to-end tests start), then the
# coverage report, which fails under the gate in pyproject.toml ([tool.coverage.report] fail_under).
set -uo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin

rm -rf var/coverage && mkdir -p var/coverage
$BIN/coverage run -m pytest "$@"
status=$?
$BIN/coverage combine --quiet >/dev/null 2>&1
$BIN/coverage report || status=${status/#0/1}
exit "$status"
