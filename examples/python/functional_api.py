"""The functional API on numpy in one page: quantize one weight matrix in every format, print what
each costs (bits per weight, compression) and what it loses (relative error, SNR, MSE, max |error|).

The weight is synthetic and documented: 512 x 1024, entries N(0, 0.02) (an LLM linear layer at
initialisation) from a fixed seed, with 8 outliers of magnitude 0.5. Runs in ctest
(example_py_functional_api); exits non-zero if a round trip breaks a format's bound.

    python examples/python/functional_api.py
"""
import numpy as np

import msbnb
from msbnb import functional as F

rng = np.random.default_rng(2024)
w = (rng.standard_normal((512, 1024)) * 0.02).astype(np.float32)
w.flat[rng.choice(w.size, 8, replace=False)] = 0.5

print(f"msbnb {msbnb.__version__} ({msbnb.isa()}, {msbnb.get_num_threads()} threads), weight {w.shape}")
print(f"{'format':<22} {'bits/w':>7} {'vs fp32':>8} {'rel err %':>10} {'SNR dB':>7} {'MSE':>10} {'max |err|':>10}")


def row(name, q):
    info, err = F.get_quantization_info(q), F.estimate_quantization_error(w, q)
    print(f"{name:<22} {info['bits_per_weight']:7.3f} {info['compression_vs_f32']:7.2f}x "
          f"{err['relative_error_pct']:10.3f} {err['snr_db']:7.2f} {err['mse']:10.3e} {err['max_abs_error']:10.4f}")
    return err


errs = {
    "int8 (Int8Config)": row("int8 (Int8Config)", F.quantize_tensor(w, msbnb.Int8Config())),
    "int8 asym per tensor": row("int8 asym per tensor",
                                F.quantize_tensor(w, msbnb.QuantConfig(bits=8, symmetric=False, per_channel=False))),
    "int4 g128": row("int4 g128", F.quantize_4bit(w, group_size=128, quant_type="int4")),
    "nf4 bs64": row("nf4 bs64", F.quantize_4bit(w, group_size=64, quant_type="nf4")),
    "nf4 bs64 + dq": row("nf4 bs64 + dq", F.quantize_4bit(w, 64, compress_statistics=True, quant_type="nf4")),
    "fp4 bs64": row("fp4 bs64", F.quantize_4bit(w, group_size=64, quant_type="fp4")),
}

# the tuple form of INT8 and its exact inverse
codes, scale, offset = F.quantize_8bit(w, symmetric=True, per_channel=True)
back = F.dequantize_8bit(codes, scale, offset)
step = np.abs(w).max(axis=1, keepdims=True) / 127
assert np.all(np.abs(back - w) <= 0.5 * step * (1 + 1e-5)), "INT8 round trip beyond half a step"

# the same statistics from compute_scale_offset, and nibble packing
s2, _ = F.compute_scale_offset(w, bits=8)
assert np.array_equal(s2, scale)
nib = rng.integers(-8, 8, size=(3, 7)).astype(np.int8)
packed = F.pack_int4_to_qint4x2(nib)
assert packed.shape == (3, 4) and np.array_equal(F.unpack_qint4x2_to_int8(packed, 7), nib)

assert errs["int8 (Int8Config)"]["relative_error_pct"] < errs["nf4 bs64"]["relative_error_pct"]
assert errs["nf4 bs64"]["relative_error_pct"] < errs["fp4 bs64"]["relative_error_pct"]
print("ok")
