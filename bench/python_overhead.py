"""Per-call overhead of QTensor.matmul from Python, above the C call it makes.

For each shape, three timings of the same product on the same buffers, interleaved in rounds:
  C       msbnb_matmul_ex called `iters` times in a loop inside C (msbnb_py_time_matmul)
  ctypes  the shim's function called directly through ctypes with prepared pointers
  Python  QTensor.matmul(x) as a user calls it (checks, output allocation, ctypes call)
overhead = Python - C per call, from the best round of each (timeit's convention: the minimum
filters out preemption by other processes, which on a shared machine dominates µs-scale
timings), and from the medians. Target: <= 20 µs.
One kernel thread (the Python side does not depend on it; OpenMP wake-ups on a shared machine
would only add noise to both). Names the CPU, the ISA level (engine) and the thread count.

    make bench-python          (or: bash scripts/pytest.sh --run build bench/python_overhead.py)
"""
import ctypes
import platform
import statistics
import sys
import time

import numpy as np

import msbnb
from msbnb import _native
from msbnb import functional as F


def cpu_name():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def per_call(fn, iters):
    t = time.perf_counter()
    for _ in range(iters):
        fn()
    return (time.perf_counter() - t) / iters


def bench(rows, cols, n, kind, rounds, iters):
    rng = np.random.default_rng(0)
    q = F.quantize_tensor(rng.standard_normal((rows, cols)).astype(np.float32), quant_type=kind)
    x = rng.standard_normal((n, cols)).astype(np.float32)
    y = np.empty((n, rows), np.float32)
    lib, h, xp, yp = _native.lib, q.handle, x.ctypes.data, y.ctypes.data
    secs = ctypes.c_double()

    def c_loop():
        _native.check(lib.msbnb_py_time_matmul(h, xp, 0, n, yp, 0, iters, ctypes.byref(secs)))
        return secs.value / iters

    raw = lib.msbnb_py_matmul
    c, ct, py = [], [], []
    q.matmul(x)
    for _ in range(rounds):
        c.append(c_loop())
        ct.append(per_call(lambda: raw(h, xp, 0, n, None, yp, 0), iters))
        py.append(per_call(lambda: q.matmul(x), iters))
    us = 1e6
    med = [statistics.median(v) * us for v in (c, ct, py)]
    best = [min(v) * us for v in (c, ct, py)]
    over_med, over_best = med[2] - med[0], best[2] - best[0]
    line = f"{kind:<5} {rows:>5} x {cols:<5} n={n:<3} C {med[0]:9.2f} µs   ctypes {med[1]:9.2f}   Python {med[2]:9.2f}"
    if rows * cols > 65536:
        # a long call: the difference drowns in the call's own run-to-run noise; the ratio is the figure
        print(f"{line}   Python / C {med[2] / med[0]:.3f} (difference below this shape's noise)")
        return None
    print(f"{line}   overhead {over_best:6.2f} µs best rounds ({over_best / 20:.2f} x the 20 µs limit), "
          f"{over_med:6.2f} medians")
    return over_best


def main():
    quick = "--quick" in sys.argv
    msbnb.set_num_threads(1)
    print(f"msbnb {msbnb.__version__} Python overhead bench: CPU {cpu_name()}, ISA {msbnb.isa()}, "
          f"{msbnb.get_num_threads()} threads, Python {platform.python_version()}, numpy {np.__version__}")
    rounds, iters = (5, 200) if quick else (25, 300)
    worst = 0.0
    for rows, cols, n, kind in ((64, 64, 1, "nf4"), (64, 64, 1, "int8"), (128, 128, 4, "int4"),
                                (256, 256, 1, "nf4"), (1024, 1024, 1, "nf4"), (4096, 4096, 1, "nf4")):
        # large shapes: the overhead is the difference of two long calls, so only small shapes
        # measure it precisely; the large ones show it stays a small fraction
        o = bench(rows, cols, n, kind, rounds, max(10, iters // (1 + rows * cols // 65536)))
        worst = worst if o is None else max(worst, o)
    print(f"worst overhead (best rounds) {worst:.2f} µs per call: {'within' if worst <= 20 else 'ABOVE'} the 20 µs target")


if __name__ == "__main__":
    main()
