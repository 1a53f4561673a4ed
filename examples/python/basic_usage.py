"""Basic usage: one linear layer y = x · Wᵀ + b kept in fp32, INT8 and 4-bit (NF4 + double quant,
INT4), run through msbnb's fused products on the same input (EXACT and FAST), saved to a
safetensors file and loaded back. Prints each output's error against fp32 and the bytes held.

Runs in ctest twice: against the build tree (example_py_basic_usage) and against the package
installed by `pip install .` (python_pip_install). Exits non-zero on a failed check.

    python examples/python/basic_usage.py
"""
import os
import tempfile

import numpy as np

import msbnb
from msbnb import functional as F

rng = np.random.default_rng(7)
out_features, in_features, tokens = 384, 768, 5
w = (rng.standard_normal((out_features, in_features)) / np.sqrt(in_features)).astype(np.float32)
b = (rng.standard_normal(out_features) * 0.1).astype(np.float32)
x = rng.standard_normal((tokens, in_features)).astype(np.float32)
y_ref = x @ w.T + b

layers = {
    "int8": F.quantize_tensor(w, msbnb.Int8Config(threshold=0.0)),
    "nf4+dq": F.quantize_4bit(w, group_size=64, compress_statistics=True, quant_type="nf4"),
    "int4 g128": F.quantize_4bit(w, group_size=128, quant_type="int4"),
}
print(f"fp32           {w.nbytes:9d} bytes")
for name, q in layers.items():
    for precision in ("exact", "fast"):
        y = q.matmul(x, bias=b, precision=precision)
        rel = np.linalg.norm(y - y_ref) / np.linalg.norm(y_ref)
        print(f"{name:<10} {precision:<5} {q.info()['total_bytes']:7d} bytes  output rel. error {rel:.4f}")
        assert y.shape == (tokens, out_features) and rel < 0.15, (name, precision, rel)

# save every layer in the bitsandbytes / msbnb layouts, load them back: the same products
with tempfile.TemporaryDirectory() as d:
    path = os.path.join(d, "layers.safetensors")
    msbnb.save_quantized(path, {f"{k}.weight": q for k, q in layers.items()} | {"bias": b})
    loaded = msbnb.load_quantized(path)
    assert np.array_equal(loaded["bias"], b)
    for name, q in layers.items():
        assert np.array_equal(loaded[f"{name}.weight"].matmul(x), q.matmul(x)), name
    print(f"saved and reloaded {len(loaded)} tensors from {os.path.getsize(path)} bytes")
print("ok")
