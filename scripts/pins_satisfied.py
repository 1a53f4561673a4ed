"""Exit 0 when every `name==version` pin of a requirements file is installed at that version in
the running interpreter, else print the differences and exit 1. The fast path of the cached venvs
(scripts/interop.sh, scripts/pyvenv.sh): no pip run when nothing changed.

    python scripts/pins_satisfied.py python/requirements-test.txt [prefix]
"""
import sys
from importlib import metadata

ok = True
prefix = sys.argv[2] if len(sys.argv) > 2 else "pins"
for line in open(sys.argv[1]):
    line = line.split("#")[0].strip()
    if not line:
        continue
    name, want = line.split("==")
    try:
        have = metadata.version(name)
    except metadata.PackageNotFoundError:
        have = None
    if have is None or have.split("+")[0] != want:
        print(f"{prefix}: {name} {have} != {want}")
        ok = False
sys.exit(0 if ok else 1)
