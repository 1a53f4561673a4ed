"""Shared bits of the interop tests (python/test_*.py, run by scripts/interop.sh).

A minimal harness: each test is a function; run_tests() runs them, prints "ok"/"FAIL" lines and
the "N passed, N failed" summary that CI reads, and returns the process exit code.
"""
import atexit
import os
import shutil
import subprocess
import sys
import tempfile
import traceback

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.environ.get("MSBNB_SHARED_DIR", os.path.join(os.path.dirname(ROOT), "shared"))
STORIES = os.path.join(SHARED, "models", "stories260K", "hf")
MSBNB = os.environ.get("MSBNB_BIN", os.path.join(ROOT, "build", "msbnb"))


def msbnb(*args, check=True):
    """Run the msbnb CLI; returns CompletedProcess (stdout/stderr as text)."""
    p = subprocess.run([MSBNB, *args], capture_output=True, text=True)
    if check and p.returncode != 0:
        raise AssertionError(f"msbnb {' '.join(args)} exited {p.returncode}: {p.stderr.strip()}")
    return p


def workdir():
    """A fresh temporary directory, removed when the process exits."""
    d = tempfile.mkdtemp(prefix="msbnb-interop-")
    atexit.register(shutil.rmtree, d, ignore_errors=True)
    return d


def run_tests(tests):
    passed = failed = 0
    for fn in tests:
        try:
            fn()
            passed += 1
            print(f"ok   {fn.__name__}", flush=True)
        except Exception:  # report every kind of failure the same way
            failed += 1
            print(f"FAIL {fn.__name__}", flush=True)
            traceback.print_exc(file=sys.stdout)
    print(f"{passed} passed, {failed} failed", flush=True)
    return 1 if failed else 0
