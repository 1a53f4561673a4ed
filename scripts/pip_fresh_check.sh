#!/usr/bin/env bash
# `pip install .` exactly as a new user runs it, for CI: a fresh clone of this checkout's HEAD, a
# fresh venv, default build isolation (pip fetches scikit-build-core from the package index, or
# its cache ~/.cache/pip), then examples/python/basic_usage.py against the installed package.
# Needs only the Debian packages of scripts/bootstrap.sh. Takes a full library build (minutes).
set -euo pipefail
cd "$(dirname "$0")/.."
export PIP_CACHE_DIR=${PIP_CACHE_DIR:-$HOME/.cache/pip}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
git clone -q --no-local . "$tmp/msbnb"
python3 -m venv "$tmp/venv"
"$tmp/venv/bin/pip" install --disable-pip-version-check -q "$tmp/msbnb"
cd "$tmp"
OMP_WAIT_POLICY=passive "$tmp/venv/bin/python" -c "import msbnb; print('pip install . ->', msbnb.__file__, msbnb.__version__)"
OMP_WAIT_POLICY=passive "$tmp/venv/bin/python" "$tmp/msbnb/examples/python/basic_usage.py"
