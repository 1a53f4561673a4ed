"""The converter: skip lists, failures reported with msbnb's message, deferred quantization, size
reports, LoRA helpers — in PyNative and GRAPH_MODE."""

import numpy as np
import pytest

ms = pytest.importorskip("mindspore")
from mindspore import Tensor, nn  # noqa: E402

from msbnb import Int4Config, Int8Config  # noqa: E402
from msbnb.mindspore import (Linear4bit, Linear4bitWithLoRA, Linear8bit, LoRALinear, apply_lora,  # noqa: E402
                             compare_model_sizes, convert_to_quantized_model, freeze_model_except_lora,
                             get_model_size, print_lora_info, print_quantization_summary, quantize_model_weights)

class Block(nn.Cell):
    def __init__(self):
        super().__init__()
        self.q_proj = nn.Dense(64, 64, has_bias=False)
        self.v_proj = nn.Dense(64, 64, has_bias=False)
        self.down_proj = nn.Dense(64, 86)  # 86 columns out, 64 in

    def construct(self, x):
        return self.down_proj(self.q_proj(x) + self.v_proj(x))


class Toy(nn.Cell):
    def __init__(self):
        super().__init__()
        self.block = Block()
        self.odd = nn.Dense(86, 32)  # 86 input columns: no INT4 group of 64 divides it
        self.lm_head = nn.Dense(32, 10, has_bias=False)

    def construct(self, x):
        return self.lm_head(self.odd(self.block(x)))


def _dense_outputs(model, x):
    return model(Tensor(x)).asnumpy()


def test_convert_skip_list_and_sizes(mode, capsys):
    model = Toy()
    before = get_model_size(model)
    assert before["quantized_bytes"] == 0 and before["float_bytes"] == 4 * before["n_weights"]
    x = np.random.default_rng(0).standard_normal((3, 64)).astype(np.float32)
    convert_to_quantized_model(model, Int4Config(quant_type="nf4", group_size=64, compress_statistics=True),
                               modules_to_not_convert=["lm_head"])
    rep = model.msbnb_conversion_report
    assert sorted(rep["converted"]) == ["block.down_proj", "block.q_proj", "block.v_proj", "odd"]
    assert rep["skipped"] == ["lm_head"] and rep["failed"] == {}
    assert isinstance(model.block.q_proj, Linear4bit) and isinstance(model.lm_head, nn.Dense)
    assert model.block.q_proj.weight.name == "block.q_proj.weight"  # full paths after replacement
    after = get_model_size(model)
    assert after["n_weights"] == before["n_weights"]
    quant = sum(c.parts().info()["total_bytes"] for _, c in model.cells_and_names() if isinstance(c, Linear4bit))
    assert after["quantized_bytes"] == quant
    cmp = compare_model_sizes(before["total_bytes"], model)
    assert cmp["ratio"] > 3.0  # NF4 + double quant: ~4.13 bits for the converted weights
    rows = print_quantization_summary(model)
    out = capsys.readouterr().out
    assert "block.q_proj" in out and "Linear4bit[nf4]" in out and "lm_head" in out
    nf4_bits = [r["bits_per_weight"] for r in rows if "nf4" in r["kind"]]
    assert all(4.0 < b < 4.6 for b in nf4_bits)
    # the converted model computes with the dequantized weights
    y = model(Tensor(x)).asnumpy()
    h = x
    b = model.block
    h = (h @ b.q_proj.dequantize().T + h @ b.v_proj.dequantize().T) @ b.down_proj.dequantize().T + b.down_proj.bias.asnumpy()
    h = h @ model.odd.dequantize().T + model.odd.bias.asnumpy()
    h = h @ model.lm_head.weight.asnumpy().T
    assert np.allclose(y, h, rtol=1e-4, atol=1e-4)


def test_int4_group_not_dividing_is_reported():
    model = Toy()
    convert_to_quantized_model(model, Int4Config(quant_type="int4", group_size=64))
    rep = model.msbnb_conversion_report
    assert "odd" in rep["failed"] and "group_size 64 does not divide cols 86" in rep["failed"]["odd"]
    assert isinstance(model.odd, nn.Dense) and isinstance(model.block.q_proj, Linear4bit)


def test_deferred_quantization(mode):
    model = Toy()
    convert_to_quantized_model(model, Int8Config(has_fp16_weights=True, threshold=0.0),
                               modules_to_not_convert=["block.down_proj", "lm_head"])
    layers = [model.block.q_proj, model.block.v_proj, model.odd]
    assert all(isinstance(l, Linear8bit) and not l.is_quantized and l.weight.requires_grad for l in layers)
    x = Tensor(np.random.default_rng(1).standard_normal((8, 64)).astype(np.float32))
    t = Tensor(np.zeros((8, 10), np.float32))
    step = nn.TrainOneStepCell(nn.WithLossCell(model, nn.MSELoss()), nn.SGD(model.trainable_params(), 0.1))
    w0 = model.odd.weight.asnumpy().copy()
    step(x, t)
    w1 = model.odd.weight.asnumpy().copy()
    assert not np.array_equal(w0, w1)  # trained in full precision
    assert sorted(quantize_model_weights(model)) == ["block.q_proj", "block.v_proj", "odd"]
    assert model.odd.is_quantized and model.odd.weight.dtype == ms.int8
    assert np.abs(model.odd.dequantize() - w1).max() <= np.abs(w1).max() / 127  # INT8 rounding
    assert quantize_model_weights(model) == []


def test_apply_lora_freeze_and_info(mode, capsys):
    model = Toy()
    convert_to_quantized_model(model, "nf4", modules_to_not_convert=["lm_head", "odd"])
    codes = model.block.q_proj.weight.asnumpy().copy()
    changed = apply_lora(model, r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "lm_head"])
    assert sorted(changed) == ["block.q_proj", "block.v_proj", "lm_head"]
    assert isinstance(model.block.q_proj, Linear4bitWithLoRA) and isinstance(model.lm_head, LoRALinear)
    assert np.array_equal(model.block.q_proj.weight.asnumpy(), codes)
    trainable, frozen = freeze_model_except_lora(model)
    assert trainable == 6 and frozen > 0
    names = sorted(p.name for p in model.trainable_params())
    assert names[0] == "block.q_proj.lora_adapters.default.lora_A" and len(names) == 6
    t, total = print_lora_info(model)
    out = capsys.readouterr().out
    assert "block.q_proj: Linear4bitWithLoRA [64x64] default(r=4, alpha=8, active)" in out
    assert t == 2 * (4 * 64 + 64 * 4) + (4 * 32 + 10 * 4) and total > t
    # trains in either mode
    x = Tensor(np.random.default_rng(2).standard_normal((8, 64)).astype(np.float32))
    tgt = Tensor(np.random.default_rng(3).standard_normal((8, 10)).astype(np.float32))
    step = nn.TrainOneStepCell(nn.WithLossCell(model, nn.MSELoss()), nn.Adam(model.trainable_params(), 0.01))
    losses = [float(step(x, tgt).asnumpy()) for _ in range(15)]
    assert losses[-1] < losses[0]
    assert np.array_equal(model.block.q_proj.weight.asnumpy(), codes)
