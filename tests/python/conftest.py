"""Shared fixtures of the Python package's tests (run by scripts/pytest.sh, ctest python_pytest).

MSBNB_SHARED_DIR: ../shared (bitsandbytes golden vectors, stories260K); MSBNB_BIN: the CLI.
"""
import os
import subprocess

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHARED = os.environ.get("MSBNB_SHARED_DIR", os.path.join(os.path.dirname(ROOT), "shared"))
GOLDEN = os.path.join(SHARED, "golden", "bnb")
STORIES = os.path.join(SHARED, "models", "stories260K", "hf")
MSBNB_BIN = os.environ.get("MSBNB_BIN", os.path.join(ROOT, "build", "msbnb"))

# ctest runs the suite as two tests that can run side by side (MSBNB_PYTEST_PART): "core" (the
# numpy-only package) and "mindspore" (tests/python/test_ms_*.py). Unset: everything.
_PART = os.environ.get("MSBNB_PYTEST_PART")
_HERE = os.path.dirname(os.path.abspath(__file__))
if _PART == "core":
    collect_ignore_glob = ["test_ms_*.py"]
elif _PART == "mindspore":
    collect_ignore = [f for f in os.listdir(_HERE) if f.startswith("test_") and not f.startswith("test_ms_")]


def golden(name, dtype):
    """A raw little-endian array of ../shared/golden/bnb."""
    path = os.path.join(GOLDEN, name)
    if not os.path.exists(path):
        pytest.fail(f"missing golden file {path} (../shared must be beside the checkout)")
    return np.fromfile(path, dtype=dtype)


def run_cli(*args):
    if not os.path.exists(MSBNB_BIN):
        pytest.fail(f"the msbnb CLI {MSBNB_BIN} is not built")
    p = subprocess.run([MSBNB_BIN, *args], capture_output=True, text=True)
    assert p.returncode == 0, f"msbnb {' '.join(args)}: {p.stderr}"
    return p


@pytest.fixture
def rng():
    return np.random.default_rng(12)


@pytest.fixture(params=["pynative", "graph"])
def mode(request):
    """Every MindSpore test that takes it runs in PyNative and in GRAPH_MODE (CPU)."""
    ms = pytest.importorskip("mindspore")
    ms.set_context(mode={"pynative": ms.PYNATIVE_MODE, "graph": ms.GRAPH_MODE}[request.param], device_target="CPU")
    yield request.param
    ms.set_context(mode=ms.PYNATIVE_MODE)
