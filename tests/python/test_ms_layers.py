"""Linear4bit / Linear8bit Cells on msbnb's kernels, in PyNative and GRAPH_MODE.

Forward against numpy's product of the weights msbnb_dequantize gives (the EXACT kernel's bound,
a derived bound for FAST), dX against MindSpore's autodiff of a dense layer holding the same
dequantized weight and against finite differences, and the shared-bprop regression: a
GRAPH_MODE network of quantized layers of different widths, trained.
"""

import numpy as np
import pytest

ms = pytest.importorskip("mindspore")
from mindspore import Parameter, Tensor, mint, nn, ops  # noqa: E402

import msbnb  # noqa: E402
from msbnb.mindspore import Linear4bit, Linear8bit  # noqa: E402

def exact_bound(x, w, b):
    """kernels.h EXACT: |Y - Σ x·ŵ - b| <= (in + 3)·2^-24·(Σ|x·ŵ| + |b|), plus the reference's own
    float64 rounding (negligible)."""
    mag = np.abs(x.astype(np.float64)) @ np.abs(w.astype(np.float64)).T + np.abs(b)
    return (x.shape[-1] + 3) * 2.0 ** -24 * mag + 1e-30


def fast_bound(x, w, b):
    """FAST: activations rounded to int8 per chunk (error <= max|x|/254 per element), 4-bit code
    values to 1/254 of the block scale (<= max|ŵ|/254), or bf16 for both (2^-8 relative each):
    per term <= 3·max|x|·max|ŵ|/254, summed over `in`, plus the EXACT bound."""
    xm = np.abs(x).max(axis=-1, keepdims=True).astype(np.float64)
    wm = np.abs(w).max(axis=-1).astype(np.float64)
    return x.shape[-1] * 3.0 * xm * wm[None, :] / 254.0 + 2 * exact_bound(x, w, b)


def reference(x, w, b):
    return x.astype(np.float64) @ w.astype(np.float64).T + b


CASES = [
    # (cell factory, in, out) — odd shapes: partial NF4 blocks, out of 1, INT4 group == cols
    ("nf4_dq", lambda i, o: Linear4bit(i, o, quant_type="nf4", compress_statistics=True), 130, 7),
    ("nf4", lambda i, o: Linear4bit(i, o, quant_type="nf4", compress_statistics=False), 64, 33),
    ("fp4", lambda i, o: Linear4bit(i, o, quant_type="fp4", compress_statistics=False), 50, 1),
    ("int4", lambda i, o: Linear4bit(i, o, quant_type="int4", group_size=26, compress_statistics=False), 78, 9),
    ("int4_dq", lambda i, o: Linear4bit(i, o, quant_type="int4", group_size=64, compress_statistics=True), 128, 5),
    ("int8", lambda i, o: Linear8bit(i, o, has_fp16_weights=False), 67, 11),
]


@pytest.mark.parametrize("name,make,fin,fout", CASES, ids=[c[0] for c in CASES])
def test_forward_within_kernel_bound(mode, name, make, fin, fout):
    rng = np.random.default_rng(1)
    layer = make(fin, fout)
    w = layer.dequantize()
    b = layer.bias.asnumpy().astype(np.float64)
    for n in (1, 3, 19):
        x = rng.standard_normal((n, fin)).astype(np.float32)
        y = layer(Tensor(x)).asnumpy()
        assert y.shape == (n, fout) and y.dtype == np.float32
        err = np.abs(y - reference(x, w, b))
        assert (err <= exact_bound(x, w, b)).all(), f"{name} n={n}: max excess {(err - exact_bound(x, w, b)).max()}"
    # leading batch dimensions are flattened: [2, 3, in]
    x3 = rng.standard_normal((2, 3, fin)).astype(np.float32)
    y3 = layer(Tensor(x3)).asnumpy()
    assert y3.shape == (2, 3, fout)
    assert (np.abs(y3 - reference(x3, w, b)) <= exact_bound(x3, w, b)).all()


@pytest.mark.parametrize("name,make,fin,fout", CASES, ids=[c[0] for c in CASES])
def test_fast_mode_within_derived_bound(mode, name, make, fin, fout):
    rng = np.random.default_rng(2)
    layer = make(fin, fout)
    layer.set_compute("fast")
    w = layer.dequantize()
    b = layer.bias.asnumpy().astype(np.float64)
    for n in (1, 5, 20):
        x = rng.standard_normal((n, fin)).astype(np.float32)
        y = layer(Tensor(x)).asnumpy()
        assert (np.abs(y - reference(x, w, b)) <= fast_bound(x, w, b)).all(), name


def test_half_activations(mode):
    """fp16 / bf16 activations: the kernel widens them exactly; the float32 result is rounded to
    the activation dtype (one rounding of 2^-11 / 2^-8 relative)."""
    rng = np.random.default_rng(3)
    layer = Linear4bit(96, 24, quant_type="nf4")
    w = layer.dequantize()
    b = layer.bias.asnumpy().astype(np.float64)
    x = rng.standard_normal((4, 96)).astype(np.float32)
    for dt, rel in ((ms.float16, 2.0 ** -11), (ms.bfloat16, 2.0 ** -8)):
        xt = Tensor(x).astype(dt)
        xw = xt.float().asnumpy()  # the values the kernel sees
        y = layer(xt)
        assert y.dtype == dt
        ref = reference(xw, w, b)
        err = np.abs(y.float().asnumpy() - ref)
        assert (err <= exact_bound(xw, w, b) * 2 + rel * np.abs(ref) * 1.01).all(), str(dt)


class _Loss(nn.Cell):
    """L = Σ layer(x) · r — dL/dx = r · W (the layer is linear in x)."""

    def __init__(self, layer, r):
        super().__init__()
        self.layer = layer
        self.r = Tensor(r)

    def construct(self, x):
        return (self.layer(x) * self.r).sum()


class _GradX(nn.Cell):
    def __init__(self, net):
        super().__init__()
        self.net = net
        self.grad = ops.GradOperation()

    def construct(self, x):
        return self.grad(self.net)(x)


class _Dense(nn.Cell):
    def __init__(self, w, b):
        super().__init__()
        self.weight = Parameter(Tensor(w), name="weight")
        self.bias = Parameter(Tensor(b.astype(np.float32)), name="bias")

    def construct(self, x):
        return mint.nn.functional.linear(x, self.weight, self.bias)


@pytest.mark.parametrize("name,make,fin,fout", CASES, ids=[c[0] for c in CASES])
def test_dx_matches_autodiff_and_finite_differences(mode, name, make, fin, fout):
    rng = np.random.default_rng(4)
    layer = make(fin, fout)
    w = layer.dequantize()
    b = layer.bias.asnumpy()
    x = rng.standard_normal((3, fin)).astype(np.float32)
    r = rng.standard_normal((3, fout)).astype(np.float32)
    dx = _GradX(_Loss(layer, r))(Tensor(x)).asnumpy()
    dx_dense = _GradX(_Loss(_Dense(w, b), r))(Tensor(x)).asnumpy()
    # both are r·W in float32, summed in different orders: bound (out + 3)·2^-24·Σ|r·ŵ|
    mag = np.abs(r).astype(np.float64) @ np.abs(w).astype(np.float64)
    assert (np.abs(dx - dx_dense) <= 2 * (fout + 3) * 2.0 ** -24 * mag + 1e-30).all()
    # central differences of L on the quantized Cell (exactly linear: only float32 rounding of L)
    loss = _Loss(layer, r)
    eps = 0.25
    for k in (0, fin // 2, fin - 1):
        xp, xm = x.copy(), x.copy()
        xp[1, k] += eps
        xm[1, k] -= eps
        fd = (float(loss(Tensor(xp)).asnumpy()) - float(loss(Tensor(xm)).asnumpy())) / (2 * eps)
        scale = float(np.abs(layer(Tensor(x)).asnumpy() * r).sum()) + 1.0
        assert abs(fd - dx[1, k]) <= 1e-5 * scale / eps, (k, fd, dx[1, k])


class _TwoWidths(nn.Cell):
    """Dense(12→16) → Linear4bit(16→40) → relu → Linear4bit(40→8): the quantized layers' dX of
    different widths flow back into the trainable Dense."""

    def __init__(self, q1, q2, d):
        super().__init__()
        self.d, self.q1, self.q2 = d, q1, q2
        self.relu = nn.ReLU()

    def construct(self, x):
        return self.q2(self.relu(self.q1(self.d(x))))


def _mse(net):
    return nn.WithLossCell(net, nn.MSELoss())


def test_graph_two_widths_trains_like_dense_copy():
    """Regression for the shared-bprop trap: in GRAPH_MODE one parsed bprop serves both layers;
    taking dX's shape from a closure mixed the two widths. The gradients of the network must equal
    those of a copy whose quantized layers are dense layers holding the dequantized weights, and
    training must lower the loss."""
    ms.set_context(mode=ms.GRAPH_MODE, device_target="CPU")
    try:
        rng = np.random.default_rng(5)
        q1 = Linear4bit(16, 40, quant_type="nf4")
        q2 = Linear4bit(40, 8, quant_type="int4", group_size=20)
        d = nn.Dense(12, 16)
        d2 = nn.Dense(12, 16)
        d2.weight.set_data(d.weight.value().copy())
        d2.bias.set_data(d.bias.value().copy())
        net = _TwoWidths(q1, q2, d)
        ref = _TwoWidths(_Dense(q1.dequantize(), q1.bias.asnumpy()), _Dense(q2.dequantize(), q2.bias.asnumpy()), d2)
        x = Tensor(rng.standard_normal((32, 12)).astype(np.float32))
        t = Tensor(rng.standard_normal((32, 8)).astype(np.float32))
        codes = (q1.weight.asnumpy().copy(), q2.weight.asnumpy().copy())

        def grads(n):
            params = [n.d.weight, n.d.bias, n.q1.bias, n.q2.bias]
            g = ms.value_and_grad(_mse(n), None, params)
            return [a.asnumpy() for a in g(x, t)[1]]

        for ga, gb in zip(grads(net), grads(ref)):
            assert np.allclose(ga, gb, rtol=1e-4, atol=1e-6)
        opt = nn.Adam(net.trainable_params(), learning_rate=0.01)
        step = nn.TrainOneStepCell(_mse(net), opt)
        losses = [float(step(x, t).asnumpy()) for _ in range(40)]
        assert losses[-1] < 0.85 * losses[0], losses
        # the optimizer never saw the codes
        assert np.array_equal(codes[0], q1.weight.asnumpy()) and np.array_equal(codes[1], q2.weight.asnumpy())
        assert all(not p.requires_grad for p in (q1.weight, q1.weight_stats_q, q2.weight, q2.weight_stats))
    finally:
        ms.set_context(mode=ms.PYNATIVE_MODE)


def test_linear8bit_training_then_quantize(mode):
    """has_fp16_weights=True trains as a dense layer; quantize_weights() switches to INT8 codes
    equal to msbnb's quantization of the trained weights."""
    layer = Linear8bit(20, 6, has_fp16_weights=True, threshold=6.0)
    assert layer.weight.requires_grad and layer.weight.dtype == ms.float32
    w = layer.weight.asnumpy().copy()
    layer.quantize_weights()
    q = msbnb.qtensor.quantize(w, "int8", threshold=6.0)
    assert layer.weight.dtype == ms.int8 and not layer.weight.requires_grad
    assert np.array_equal(layer.weight.asnumpy(), q.data)
    assert np.array_equal(layer.weight_stats.asnumpy(), q.stats)
    x = np.random.default_rng(6).standard_normal((2, 20)).astype(np.float32)
    y = layer(Tensor(x)).asnumpy()
    b = layer.bias.asnumpy()
    assert (np.abs(y - reference(x, q.dequantize(), b)) <= exact_bound(x, q.dequantize(), b)).all()


def test_llm_int8_compute_matches_library(mode):
    """compute='llm_int8' runs msbnb_matmul_int8_lt: same bits as the Python package's call."""
    layer = Linear8bit(64, 16, has_fp16_weights=False, threshold=2.0, compute="llm_int8")
    x = np.random.default_rng(7).standard_normal((5, 64)).astype(np.float32)
    x[:, 3] *= 10  # an outlier column
    y = layer(Tensor(x)).asnumpy()
    q = layer.parts()
    b = layer.bias.asnumpy()
    yl = np.empty((5, 16), np.float32)
    msbnb._native.check(msbnb._native.lib.msbnb_py_matmul_int8_lt(q.handle, x.ctypes.data, 5, b.ctypes.data,
                                                                  2.0, yl.ctypes.data))
    assert np.array_equal(y, yl)


def test_errors_carry_msbnb_message():
    with pytest.raises(ValueError, match="group_size 7 must be positive and even"):
        Linear4bit(14, 3, quant_type="int4", group_size=7)
    with pytest.raises(ValueError, match="quant_type 'nf5'"):
        Linear4bit(14, 3, quant_type="nf5")
    with pytest.raises(ValueError, match="compute precision 'turbo'"):
        Linear4bit(64, 3, compute="turbo")
    layer = Linear4bit(64, 3, quant_type="int4", group_size=32, compress_statistics=False)
    bad = layer.weight_stats.asnumpy().copy()
    bad[0, 1] = np.nan
    layer.weight_stats.set_data(Tensor(bad))
    with pytest.raises(msbnb.FormatError, match="not a finite non-negative scale"):
        layer.parts()
    # the operators' errors, in both modes: test_ms_errors.py


def test_top_level_names_and_half_gradients(mode):
    """`from msbnb import Linear4bit` works with MindSpore installed; dX of bf16 / fp16 activations
    has the activation's dtype and equals the float32 dX rounded."""
    from msbnb import Linear4bit as L4, convert_to_quantized_model as conv
    assert L4 is Linear4bit and callable(conv)
    layer = Linear4bit(40, 12, quant_type="nf4")
    rng = np.random.default_rng(8)
    x = rng.standard_normal((2, 40)).astype(np.float32)
    r = rng.standard_normal((2, 12)).astype(np.float32)
    dx32 = _GradX(_Loss(layer, r))(Tensor(x)).asnumpy()
    for dt in (ms.float16, ms.bfloat16):
        xt = Tensor(x).astype(dt)
        dx = _GradX(_Loss(layer, Tensor(r).astype(dt).float().asnumpy()))(xt)
        assert dx.dtype == dt
        ref = Tensor(dx32).astype(dt).float().asnumpy()
        assert np.allclose(dx.float().asnumpy(), ref, rtol=2e-2, atol=2e-2), str(dt)


_THREADS_RUN = r"""
import sys
import numpy as np
import mindspore as ms
from mindspore import Tensor
from mindspore._c_expression import RuntimeConf
import msbnb
from msbnb.mindspore import Linear4bit, configure_threads
n = int(sys.argv[1])
configure_threads(n)  # before any operator runs
assert msbnb.get_num_threads() == n and RuntimeConf.get_instance().is_op_threads_num_configured()
ms.set_seed(3)
layer = Linear4bit(256, 96, quant_type="nf4", weight=np.random.default_rng(3).standard_normal((96, 256)))
x = np.random.default_rng(4).standard_normal((33, 256)).astype(np.float32)
np.save(sys.argv[2], layer(Tensor(x)).asnumpy())
"""


def test_configure_threads_sets_both_pools_results_unchanged(tmp_path):
    """configure_threads(n) sets msbnb's team and MindSpore's operator pool (each process may set
    MindSpore's once, before its first operator: a fresh process per setting); the outputs are
    bit-identical for 1 and 2 threads."""
    import os
    import subprocess
    import sys
    outs = []
    for n in (1, 2):
        out = str(tmp_path / f"y{n}.npy")
        env = {k: v for k, v in os.environ.items() if k not in ("MSBNB_THREADS", "OMP_NUM_THREADS")}
        p = subprocess.run([sys.executable, "-c", _THREADS_RUN, str(n), out], capture_output=True, text=True, env=env)
        assert p.returncode == 0, p.stderr[-2000:]
        outs.append(np.load(out))
    assert outs[0].shape == (33, 96) and np.array_equal(outs[0], outs[1])
