"""LoRA Cells (LoRALinear, Linear4bitWithLoRA, Linear8bitWithLoRA), in PyNative and GRAPH_MODE:
gradients against a dense copy, training (loss falls, codes untouched), several adapters
(switch, disable, merge, unmerge) and checkpoint round trips in both MindSpore formats."""

import numpy as np
import pytest

ms = pytest.importorskip("mindspore")
from mindspore import Tensor, nn  # noqa: E402

from msbnb.mindspore import Linear4bitWithLoRA, Linear8bitWithLoRA, LoRALinear  # noqa: E402

def _randomize_b(layer, name="default", seed=0):
    a = layer.lora_adapters[name]
    a.lora_B.set_data(Tensor(np.random.default_rng(seed).standard_normal(a.lora_B.shape).astype(np.float32) * 0.1))


def _copy_adapter(src, dst, name="default"):
    for k in ("lora_A", "lora_B"):
        getattr(dst.lora_adapters[name], k).set_data(getattr(src.lora_adapters[name], k).value().copy())


class _Net(nn.Cell):
    def __init__(self, layer, r):
        super().__init__()
        self.layer = layer
        self.r = Tensor(r)

    def construct(self, x):
        return (self.layer(x) * self.r).sum()


QUANT = [
    ("nf4", lambda i, o, **k: Linear4bitWithLoRA(i, o, r=4, lora_alpha=8, quant_type="nf4", **k)),
    ("int4", lambda i, o, **k: Linear4bitWithLoRA(i, o, r=4, lora_alpha=8, quant_type="int4", group_size=32,
                                                   compress_statistics=False, **k)),
    ("int8", lambda i, o, **k: Linear8bitWithLoRA(i, o, r=4, lora_alpha=8, **k)),
]


@pytest.mark.parametrize("name,make", QUANT, ids=[q[0] for q in QUANT])
def test_gradients_equal_dense_copy(mode, name, make):
    """dL/dA, dL/dB and dL/dx of a quantized LoRA layer equal those of LoRALinear holding the
    dequantized weight and the same adapter (both products sum in float32, different orders)."""
    rng = np.random.default_rng(1)
    q = make(64, 24)
    _randomize_b(q)
    d = LoRALinear(64, 24, r=4, lora_alpha=8, weight=q.dequantize())
    d.bias.set_data(q.bias.value().copy())
    _copy_adapter(q, d)
    x = Tensor(rng.standard_normal((5, 64)).astype(np.float32))
    r = rng.standard_normal((5, 24)).astype(np.float32)
    outs = []
    for layer in (q, d):
        net = _Net(layer, r)
        params = [layer.lora_adapters["default"].lora_A, layer.lora_adapters["default"].lora_B]
        gfn = ms.value_and_grad(net, 0, params)
        loss, (gx, (ga, gb)) = gfn(x)
        outs.append((loss.asnumpy(), gx.asnumpy(), ga.asnumpy(), gb.asnumpy()))
    for a, b in zip(outs[0], outs[1]):
        assert np.allclose(a, b, rtol=1e-4, atol=1e-5), name
    assert np.abs(outs[0][2]).max() > 0 and np.abs(outs[0][3]).max() > 0


def test_qlora_trains_codes_unchanged(mode):
    """AdamWeightDecay on the adapters: the loss falls; codes and statistics stay byte-identical."""
    rng = np.random.default_rng(2)
    layer = Linear4bitWithLoRA(32, 16, r=8, lora_alpha=16, quant_type="nf4")
    target_w = rng.standard_normal((16, 32)).astype(np.float32) * 0.05
    x = rng.standard_normal((64, 32)).astype(np.float32)
    t = Tensor(x @ (layer.dequantize() + target_w).T + layer.bias.asnumpy())
    before = {p.name: p.asnumpy().copy() for p in layer.get_parameters() if not p.requires_grad}
    trainable = layer.trainable_params()
    assert sorted(p.name.split(".")[-1] for p in trainable) == ["lora_A", "lora_B"]
    opt = nn.AdamWeightDecay(trainable, learning_rate=0.02)
    step = nn.TrainOneStepCell(nn.WithLossCell(layer, nn.MSELoss()), opt)
    losses = [float(step(Tensor(x), t).asnumpy()) for _ in range(60)]
    assert losses[-1] < 0.3 * losses[0], losses[::10]
    for p in layer.get_parameters():
        if p.name in before and "lora_gate" not in p.name:
            assert np.array_equal(before[p.name], p.asnumpy()), p.name


def test_multi_adapter_switch_merge_unmerge(mode):
    rng = np.random.default_rng(3)
    layer = Linear4bitWithLoRA(48, 20, r=4, lora_alpha=8, quant_type="nf4", adapter_name="a")
    layer.add_adapter("b", r=2, lora_alpha=4, activate=False)
    _randomize_b(layer, "a", 1)
    _randomize_b(layer, "b", 2)
    x = rng.standard_normal((3, 48)).astype(np.float32)
    base_w, bias = layer.dequantize(), layer.bias.asnumpy()
    da, db = layer.lora_adapters["a"].delta(), layer.lora_adapters["b"].delta()

    def expect(w):
        return x.astype(np.float64) @ w.astype(np.float64).T + bias

    def run():
        return layer(Tensor(x)).asnumpy()

    tol = 1e-4
    assert np.allclose(run(), expect(base_w + da), atol=tol)  # 'a' active
    layer.set_adapter("b")  # the same compiled graph follows: only gate values change
    assert np.allclose(run(), expect(base_w + db), atol=tol)
    layer.set_adapter(["a", "b"])
    assert np.allclose(run(), expect(base_w + da + db), atol=tol)
    layer.disable_adapters()
    assert np.allclose(run(), expect(base_w), atol=tol)
    layer.enable_adapters()
    layer.set_adapter("a")
    assert layer.lora_adapters["a"].lora_A.requires_grad and not layer.lora_adapters["b"].lora_A.requires_grad

    codes = layer.weight.asnumpy().copy(), layer.weight_stats_q.asnumpy().copy()
    merged_w = layer.get_merged_weight()
    assert np.allclose(merged_w, base_w + da, atol=1e-6)
    assert layer.merge_adapter() == ["a"]
    # merged: the base now holds quantize(W + ΔA); the adapter no longer adds
    assert not np.array_equal(codes[0], layer.weight.asnumpy())
    assert np.allclose(run(), expect(layer.dequantize()), atol=tol)
    # the re-quantized weight is within NF4's rounding of W + ΔA (half a code step of each block)
    assert np.abs(layer.dequantize() - merged_w).max() <= 0.5 * np.abs(merged_w).max()
    layer.unmerge_adapter()
    assert np.array_equal(codes[0], layer.weight.asnumpy()) and np.array_equal(codes[1], layer.weight_stats_q.asnumpy())
    assert np.allclose(run(), expect(base_w + da), atol=tol)
    with pytest.raises(KeyError, match="no adapter 'c'"):
        layer.set_adapter("c")
    layer.delete_adapter("b")
    assert list(layer.lora_adapters.keys()) == ["a"]


def test_lora_linear_merged_weight(mode):
    layer = LoRALinear(10, 6, r=2, lora_alpha=4)
    _randomize_b(layer)
    a = layer.lora_adapters["default"]
    w = layer.weight.asnumpy()
    expected = w + a.lora_B.asnumpy() @ a.lora_A.asnumpy() * 2.0
    assert np.allclose(layer.get_merged_weight(), expected, atol=1e-6)
    x = np.random.default_rng(4).standard_normal((2, 10)).astype(np.float32)
    y = layer(Tensor(x)).asnumpy()
    layer.merge_adapter()
    assert np.allclose(layer(Tensor(x)).asnumpy(), y, atol=1e-5)
    layer.unmerge_adapter()
    assert np.array_equal(layer.weight.asnumpy(), w)


class _Two(nn.Cell):
    def __init__(self, seed):
        super().__init__()
        self.a = Linear4bitWithLoRA(32, 24, r=4, quant_type="nf4")
        self.b = Linear8bitWithLoRA(24, 8, r=2)

    def construct(self, x):
        return self.b(self.a(x))


@pytest.mark.parametrize("fmt", ["ckpt", "safetensors"])
def test_checkpoint_round_trip(mode, tmp_path, fmt):
    """ms.save_checkpoint / load_checkpoint keep the uint8/int8 codes and every statistic byte for
    byte; a freshly built network loading the file computes the same outputs."""
    src = _Two(0)
    _randomize_b(src.a)
    _randomize_b(src.b)
    path = str(tmp_path / f"net.{fmt}")
    ms.save_checkpoint(src, path, format=fmt)
    dst = _Two(1)
    assert not np.array_equal(dst.a.weight.asnumpy(), src.a.weight.asnumpy())
    not_loaded = ms.load_param_into_net(dst, ms.load_checkpoint(path, format=fmt))
    assert not any(not_loaded) if isinstance(not_loaded, tuple) else not not_loaded
    ps = dict(src.parameters_and_names())
    for name, p in dst.parameters_and_names():
        assert p.dtype == ps[name].dtype and np.array_equal(p.asnumpy(), ps[name].asnumpy()), name
    assert dst.a.weight.dtype == ms.uint8 and dst.b.weight.dtype == ms.int8
    x = Tensor(np.random.default_rng(5).standard_normal((3, 32)).astype(np.float32))
    assert np.array_equal(src(x).asnumpy(), dst(x).asnumpy())
