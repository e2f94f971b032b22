#!/usr/bin/env bash
# README command 1: the main job on an embedded default. No GPU, Docker or network beyond installs.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".[services,math,trainer]"
exec .venv/bin/rewardstack demo "$@"
