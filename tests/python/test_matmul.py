"""QTensor.matmul (msbnb's fused products) against numpy: dequantize + a float64 product, within
the kernel's stated bound (include/msbnb/kernels.h, EXACT):
    |Y - Σ x·ŵ - b| <= (in + 3)·2^-24·(Σ|x·ŵ| + |b|)
on odd shapes and batch sizes; FAST within its documented accuracy; half-precision activations
equal to their float32 widening; results independent of the thread count."""
import ml_dtypes
import numpy as np
import pytest

import msbnb
from msbnb import functional as F

CONFIGS = [
    ("int8", (37, 131), dict(quant_type="int8")),
    ("int8 asym", (33, 77), dict(quant_type="int8", asymmetric=True)),
    ("int4 g26", (37, 130), dict(quant_type="int4", group_size=26)),
    ("int4 g10 dq", (19, 130), dict(quant_type="int4", group_size=10, double_quant=True)),
    ("nf4", (37, 133), dict(quant_type="nf4", blocksize=64)),
    ("nf4 dq", (65, 301), dict(quant_type="nf4", blocksize=64, double_quant=True)),
    ("fp4 bs128", (17, 96), dict(quant_type="fp4", blocksize=128)),
]


def exact_bound_ok(x, q, b, y):
    wd = q.dequantize().astype(np.float64)
    x64 = x.reshape(-1, q.cols).astype(np.float64)
    ref = x64 @ wd.T + b
    bound = (q.cols + 3) * 2.0 ** -24 * (np.abs(x64) @ np.abs(wd).T + np.abs(b))
    err = np.abs(y.reshape(ref.shape) - ref)
    return bool(np.all(err <= bound)), float((err / np.maximum(bound, 1e-300)).max())


@pytest.mark.parametrize("name,shape,kw", CONFIGS, ids=[c[0] for c in CONFIGS])
@pytest.mark.parametrize("n", [1, 3, 17, 40])
def test_exact_within_bound(rng, name, shape, kw, n):
    w = rng.standard_normal(shape).astype(np.float32)
    q = F.quantize_tensor(w, **kw)
    x = rng.standard_normal((n, shape[1])).astype(np.float32)
    b = rng.standard_normal(shape[0]).astype(np.float32)
    y = q.matmul(x, bias=b)
    assert y.shape == (n, shape[0]) and y.dtype == np.float32
    ok, worst = exact_bound_ok(x, q, b, y)
    assert ok, f"{name} n={n}: error {worst:.3g} x the bound"


@pytest.mark.parametrize("name,shape,kw", CONFIGS, ids=[c[0] for c in CONFIGS])
def test_fast_close_to_exact(rng, name, shape, kw):
    """FAST rounds activations to int8 (~1 % relative, docs/kernels.md) or bf16 (~0.2 %)."""
    w = rng.standard_normal(shape).astype(np.float32)
    q = F.quantize_tensor(w, **kw)
    for n in (1, 5, 33):
        x = rng.standard_normal((n, shape[1])).astype(np.float32)
        ye, yf = q.matmul(x), q.matmul(x, precision="fast")
        rel = np.linalg.norm(yf - ye) / np.linalg.norm(ye)
        assert rel < 0.03, f"{name} n={n}: FAST {rel:.4f} relative to EXACT"


def test_leading_dims_vectors_and_transposed(rng):
    w = rng.standard_normal((40, 72)).astype(np.float32)
    q = F.quantize_4bit(w, group_size=64, quant_type="nf4")
    x = rng.standard_normal((2, 3, 72)).astype(np.float32)
    y = q.matmul(x)
    assert y.shape == (2, 3, 40)
    assert np.array_equal(y.reshape(6, 40), q.matmul(x.reshape(6, 72)))
    assert np.array_equal(q.matmul(x[0, 0]), y[0, 0])  # a vector gives a vector
    assert F.matmul(x[0], q).shape == (3, 40)
    dy = rng.standard_normal((5, 40)).astype(np.float32)
    dx = q.matmul_t(dy)
    ref = dy.astype(np.float64) @ q.dequantize().astype(np.float64)
    bound = (40 + 3) * 2.0 ** -24 * (np.abs(dy) @ np.abs(q.dequantize()))
    assert np.all(np.abs(dx - ref) <= bound)
    acc = np.ones((5, 72), np.float32)
    q.matmul_t(dy, accumulate_into=acc)
    assert np.allclose(acc, dx + 1, rtol=0, atol=1e-5)


def test_half_precision_activations_equal_their_widening(rng):
    w = rng.standard_normal((48, 256)).astype(np.float32)
    q = F.quantize_4bit(w, group_size=64, compress_statistics=True, quant_type="nf4")
    x = rng.standard_normal((9, 256)).astype(np.float32)
    x16 = x.astype(np.float16)
    assert np.array_equal(q.matmul(x16), q.matmul(x16.astype(np.float32)))
    xb = x.astype(ml_dtypes.bfloat16)
    yb = q.matmul(xb)
    assert np.array_equal(yb, q.matmul(xb.astype(np.float32)))
    assert np.array_equal(yb, q.matmul(xb.view(np.uint16)))  # raw bfloat16 bits


def test_non_contiguous_and_other_dtypes_are_converted(rng):
    w = rng.standard_normal((32, 128)).astype(np.float32)
    q = F.quantize_tensor(w, quant_type="int8")
    x = rng.standard_normal((128, 6)).astype(np.float32).T  # Fortran order
    assert not x.flags.c_contiguous
    assert np.array_equal(q.matmul(x), q.matmul(np.ascontiguousarray(x)))
    assert np.array_equal(q.matmul(x.astype(np.float64)), q.matmul(x))
    assert np.array_equal(q.matmul(x.tolist()), q.matmul(x))


def test_results_do_not_depend_on_threads(rng):
    w = rng.standard_normal((300, 512)).astype(np.float32)
    q = F.quantize_4bit(w, group_size=64, quant_type="nf4", compress_statistics=True)
    x = rng.standard_normal((20, 512)).astype(np.float32)
    before = msbnb.get_num_threads()
    try:
        outs = []
        for t in (1, 2, 3):
            msbnb.set_num_threads(t)
            assert msbnb.get_num_threads() == t
            outs.append((q.matmul(x), F.quantize_4bit(w, 64, True, "nf4").data))
        for y, d in outs[1:]:
            assert np.array_equal(y, outs[0][0]) and np.array_equal(d, outs[0][1])
    finally:
        msbnb.set_num_threads(None)
    assert msbnb.get_num_threads() == before
    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(ValueError):
            msbnb.set_num_threads(bad)


def test_llm_int8_decomposition_keeps_outlier_columns_exact(rng):
    """LLM.int8(): with an outlier activation column (|x| = 40 >= threshold 6) the decomposed product
    is far closer to the fp32 product with the dequantized weights than plain int8 activations."""
    w = (rng.standard_normal((48, 96)) * 0.05).astype(np.float32)
    q = F.quantize_tensor(w, msbnb.Int8Config())
    assert q.threshold == 6.0
    x = rng.standard_normal((7, 96)).astype(np.float32)
    x[:, 5] = 40.0
    ref = x.astype(np.float64) @ q.dequantize().astype(np.float64).T
    err_lt = np.abs(q.matmul_llm_int8(x) - ref).max()
    err_plain = np.abs(q.matmul_llm_int8(x, threshold=0.0) - ref).max()
    assert err_lt < err_plain / 4, (err_lt, err_plain)
    with pytest.raises(msbnb.InvalidArgumentError, match="threshold"):
        q.matmul_llm_int8(x, threshold=-1.0)
    with pytest.raises(msbnb.InvalidArgumentError, match="int8 tensor"):
        F.quantize_4bit(w, 32).matmul_llm_int8(x)
