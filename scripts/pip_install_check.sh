#!/usr/bin/env bash
# `pip install .` as a user runs it, checked in make test: builds the wheel from this checkout with
# scikit-build-core (the venv of scripts/pyvenv.sh provides it: no build isolation, so no network),
# installs it into BUILD/pip-target (not into the shared venv), then runs
# examples/python/basic_usage.py against the installed package only.
#   scripts/pip_install_check.sh BUILD
# The CMake build of the wheel is kept in BUILD/pip-build, so later runs are incremental.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=$(cd "${1:-build}" && pwd)
PY=$(bash scripts/pyvenv.sh --print)
TARGET=$BUILD/pip-target
rm -rf "$TARGET"
"$PY" -m pip install --disable-pip-version-check -q --no-build-isolation --no-deps --target "$TARGET" \
    -C build-dir="$BUILD/pip-build" .
test -f "$TARGET/msbnb/_msbnb_native.so"
cd "$BUILD" # away from the source tree: `import msbnb` must find the installed copy
env -u MSBNB_NATIVE_LIB PYTHONPATH="$TARGET" OMP_WAIT_POLICY=passive "$PY" - <<'PY'
import msbnb, os
assert os.path.dirname(msbnb.__file__).endswith("pip-target/msbnb"), msbnb.__file__
print("installed:", msbnb.__file__, msbnb.__version__, msbnb.isa())
PY
env -u MSBNB_NATIVE_LIB PYTHONPATH="$TARGET" OMP_WAIT_POLICY=passive "$PY" "$OLDPWD/examples/python/basic_usage.py"
