"""Bench: msbnb's Linear4bit (NF4 + double quant, EXACT and FAST) against MindSpore's nn.Dense
fp32 on a 4096 x 4096 layer at batch 1 and 512, in GRAPH_MODE, plus the per-call framework
overhead (a MindSpore call of the custom operator against the same C product called directly).

Every figure is a ratio measured in this run (medians of repeated calls, same input, same
thread count); the CPU, the ISA level msbnb dispatched to and MindSpore's version are printed.
Batch 1 is memory-bound: the 4-bit layer reads ~8.3 MiB per call against 64 MiB of fp32 weights.

    scripts/pytest.sh --run build bench/ms_linear.py [--dim 4096] [--reps 15]
"""
import argparse
import platform
import time

import numpy as np

import mindspore as ms
from mindspore import Tensor, nn

import msbnb
from msbnb import _native
from msbnb.mindspore import Linear4bit

ap = argparse.ArgumentParser()
ap.add_argument("--dim", type=int, default=4096)
ap.add_argument("--reps", type=int, default=15)
args = ap.parse_args()
ms.set_context(mode=ms.GRAPH_MODE, device_target="CPU")


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def median_time(fn, reps):
    fn()  # compile / warm up
    ts = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return float(np.median(ts))


d = args.dim
print(f"CPU: {cpu_name()}; msbnb ISA: {msbnb.isa()}, threads {msbnb.get_num_threads()}; "
      f"MindSpore {ms.__version__} (CPU, GRAPH_MODE)")
dense = nn.Dense(d, d, has_bias=False)
q = Linear4bit.from_linear(dense, quant_type="nf4", compress_statistics=True)
qf = Linear4bit.from_linear(dense, quant_type="nf4", compress_statistics=True, compute="fast")
rng = np.random.default_rng(0)
print(f"{'layer':<28} {'batch':>5} {'ms/call':>10} {'vs nn.Dense':>12}")
for n in (1, 512):
    x = Tensor(rng.standard_normal((n, d)).astype(np.float32))
    reps = args.reps if n == 1 else max(3, args.reps // 5)
    t_dense = median_time(lambda: dense(x).asnumpy(), reps)
    print(f"{'nn.Dense fp32':<28} {n:>5} {t_dense * 1e3:>10.3f} {1.0:>11.2f}x")
    for name, layer in (("Linear4bit nf4+dq EXACT", q), ("Linear4bit nf4+dq FAST", qf)):
        t = median_time(lambda: layer(x).asnumpy(), reps)
        print(f"{name:<28} {n:>5} {t * 1e3:>10.3f} {t_dense / t:>11.2f}x faster")

# framework overhead: the custom operator through MindSpore vs the C product called directly
small = Linear4bit(64, 64, quant_type="nf4")
xs = np.ones((1, 64), np.float32)
xt = Tensor(xs)
w = small.parts()
y = np.empty((1, 64), np.float32)
zero = np.zeros(64, np.float32)


def direct():
    _native.check(_native.lib.msbnb_py_matmul(w.handle, xs.ctypes.data, 0, 1, zero.ctypes.data, y.ctypes.data, 0))


t_ms = median_time(lambda: small(xt).asnumpy(), 200)
t_c = median_time(direct, 200)
print(f"per-call overhead (64x64, batch 1): MindSpore call {t_ms * 1e6:.1f} us, direct C call "
      f"{t_c * 1e6:.1f} us: framework overhead {(t_ms - t_c) * 1e6:.1f} us per call")
