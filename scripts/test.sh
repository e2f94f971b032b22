#!/usr/bin/env bash
# README command 2: create or reuse .venv, install everything the tests need, lint, run the tests.
# Extra arguments go to pytest, e.g. `bash scripts/test.sh tests/proto -x`.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
# setuptools >= 77 builds the wheel the packaging test inspects (PEP 639 licence fields).
.venv/bin/python -m pip install --quiet --upgrade pip 'setuptools>=77'
# torch/torchvision are pinned in pyproject (2.14.1 / 0.29.1): nothing may pull another build in.
.venv/bin/python -m pip install --quiet -e ".[dev]"
# The released trainers (verl, OpenRLHF) whose own code tests/integrations runs: without their
# declared GPU stacks, which would replace the torch above (the file says why and what it pins).
.venv/bin/python -m pip install --quiet --no-deps -r tests/requirements-trainers.txt
.venv/bin/python -m proto.schema --check
.venv/bin/ruff check .
exec .venv/bin/python -m pytest "$@"
