"""Errors of msbnb's custom operators raise msbnb's exception with msbnb's message, in PyNative and
GRAPH_MODE: a wrong activation (checked by the kernel's own checks before the launch: at the
call in PyNative, while compiling in GRAPH_MODE) and a corrupted quantized state that only the
kernel sees (MindSpore's generic RuntimeError turned back into msbnb's exception, chained)."""

import numpy as np
import pytest

ms = pytest.importorskip("mindspore")
from mindspore import Tensor, nn  # noqa: E402

import msbnb  # noqa: E402
from msbnb.mindspore import (Linear4bit, Linear4bitWithLoRA, Linear8bit, LlamaConfig, LlamaForCausalLM,  # noqa: E402
                             convert_to_quantized_model, load_hf_weights, op_errors, save_hf_weights)
from msbnb.mindspore._ops import last_op_error  # noqa: E402

@pytest.fixture(autouse=True)
def _in_tmp_dir(tmp_path, monkeypatch):
    """MindSpore writes ./rank_0/om/analyze_fail.ir when a graph fails to compile (these tests make
    it fail on purpose): keep it out of the checkout."""
    monkeypatch.chdir(tmp_path)


class _UserNet(nn.Cell):
    """A user's network around a quantized layer: compiled whole in GRAPH_MODE, so the layer's
    own __call__ does not run."""

    def __init__(self, layer):
        super().__init__()
        self.layer = layer

    def construct(self, x):
        return self.layer(x) * 2.0


WIDTH = r"^msbnb_ms_matmul: x \[2, 63\]: the last dimension must be in_features = 64$"


def test_wrong_activation_raises_msbnb_message(mode):
    layer = Linear4bit(64, 3)
    with pytest.raises(msbnb.ShapeError, match=WIDTH):
        layer(Tensor(np.ones((2, 63), np.float32)))
    with pytest.raises(msbnb.InvalidArgumentError, match=r"x \[2, 64\] is int32; it must be float32, float16 or"):
        layer(Tensor(np.ones((2, 64), np.int32)))
    l8 = Linear8bit(64, 4, has_fp16_weights=False, compute="llm_int8")
    with pytest.raises(msbnb.InvalidArgumentError, match=r"msbnb_ms_matmul_int8_lt: LLM.int8\(\) takes float32 x"):
        l8(Tensor(np.ones((1, 64), np.float16)))
    lora = Linear4bitWithLoRA.from_linear(nn.Dense(64, 5), r=4, lora_alpha=8)
    with pytest.raises(msbnb.ShapeError, match=r"x \[3, 65\]: the last dimension must be in_features = 64"):
        lora(Tensor(np.ones((3, 65), np.float32)))
    # inside a user's network: the same message (GRAPH_MODE: as MindSpore's ValueError, raised while
    # compiling); op_errors() gives msbnb's exception type
    net = _UserNet(layer)
    with pytest.raises(ValueError, match="msbnb_ms_matmul: x \\[2, 63\\]: the last dimension must be in_features"):
        net(Tensor(np.ones((2, 63), np.float32)))
    with pytest.raises(msbnb.ShapeError, match=WIDTH):
        with op_errors():
            net(Tensor(np.ones((2, 63), np.float32)))
    assert net(Tensor(np.ones((2, 64), np.float32))).shape == (2, 3)  # and the right width still runs


def _corrupt_meta(layer, index, value):
    m = layer.quant_meta.asnumpy().copy()
    m[index] = value
    layer.quant_meta.set_data(Tensor(m))


def test_corrupted_state_raises_msbnb_message(mode):
    """States only the kernel sees: a block size the format does not allow, a code buffer that
    does not fit the recorded shape."""
    x = Tensor(np.ones((2, 64), np.float32))
    layer = Linear4bit(64, 3)
    _corrupt_meta(layer, 3, 48)  # NF4 blocksize
    msg = r"^msbnb_ms_matmul: msbnb_qtensor_wrap: blocksize 48 is not a power of two"
    with pytest.raises(msbnb.InvalidArgumentError, match=msg) as e:
        with op_errors():  # PyNative runs operators asynchronously: the failure surfaces at asnumpy
            layer(x).asnumpy()
    assert isinstance(e.value.__cause__, RuntimeError) and "AOT kernel" in str(e.value.__cause__)
    assert last_op_error().startswith("msbnb_ms_matmul: msbnb_qtensor_wrap: blocksize 48")
    if mode == "graph":
        # MindSpore never runs a compiled network again after a failed step: the same message, said so
        with pytest.raises(msbnb.InvalidArgumentError, match=msg + ".*does not run a compiled network again"):
            layer(x)
        layer = Linear4bit(64, 3)  # a new one, called at top level, converts by itself
        _corrupt_meta(layer, 3, 48)
        with pytest.raises(msbnb.InvalidArgumentError, match=msg):
            layer(x)
    layer = Linear4bit(64, 3, quant_type="int4", group_size=32, compress_statistics=False)
    _corrupt_meta(layer, 1, 4)  # rows: the codes [3, 32] no longer fit
    with pytest.raises(msbnb.ShapeError, match=r"msbnb_qtensor_wrap: data_bytes 96, expected 128"):
        with op_errors():
            _UserNet(layer)(x).asnumpy()


def test_bad_quant_state_in_files(mode, tmp_path):
    """A MindSpore checkpoint whose quantized state was corrupted loads (MindSpore does not look
    inside) and the first call raises msbnb's message; a safetensors file with a corrupted
    bitsandbytes quant state is refused while loading, with msbnb's message."""
    layer = Linear4bit(64, 3)
    ck = str(tmp_path / "layer.ckpt")
    ms.save_checkpoint(layer, ck)
    saved = ms.load_checkpoint(ck)
    meta = saved["quant_meta"].asnumpy().copy()
    meta[0] = 9  # no such msbnb_qtype
    saved["quant_meta"] = ms.Parameter(Tensor(meta), name="quant_meta")
    ms.save_checkpoint([{"name": k, "data": v} for k, v in saved.items()], ck)
    fresh = Linear4bit(64, 3)
    ms.load_param_into_net(fresh, ms.load_checkpoint(ck))
    with pytest.raises(msbnb.MsbnbError, match=r"^msbnb_ms_matmul: msbnb_qtensor_wrap: .*type"):
        with op_errors():
            fresh(Tensor(np.ones((1, 64), np.float32))).asnumpy()

    cfg = LlamaConfig(vocab_size=32, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                      num_attention_heads=2, max_position_embeddings=16)
    model = LlamaForCausalLM(cfg)
    convert_to_quantized_model(model, "nf4", modules_to_not_convert=["lm_head"])
    d = tmp_path / "hf"
    save_hf_weights(model, str(d))
    f = d / "model.safetensors"
    raw = f.read_bytes()
    assert raw.count(b'"quant_type": "nf4"') >= 1
    f.write_bytes(raw.replace(b'"quant_type": "nf4"', b'"quant_type": "nf5"'))
    with pytest.raises(msbnb.FormatError, match=r"^msbnb_bnb_read: .*model.safetensors: tensor 'model.layers.0.*': quant state needs"):
        load_hf_weights(LlamaForCausalLM(cfg), str(d))


def test_llama_helpers_raise_msbnb_message(mode):
    """The LLaMA's helpers (compiled graphs inside) and its loss raise msbnb's exception too."""
    cfg = LlamaConfig(vocab_size=32, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                      num_attention_heads=2, max_position_embeddings=16)
    model = LlamaForCausalLM(cfg)
    convert_to_quantized_model(model, "nf4", modules_to_not_convert=["lm_head"])
    # corrupted before the helpers compile their graphs (in PyNative an ms.jit graph keeps the
    # Parameter values it was first run with, whatever set_data does later)
    _corrupt_meta(model.model.layers[0].mlp.up_proj, 3, 48)
    msg = r"^msbnb_ms_matmul: msbnb_qtensor_wrap: blocksize 48 is not a power of two"
    with pytest.raises(msbnb.InvalidArgumentError, match=msg):
        model.sequence_logits([1, 2, 3])
    with pytest.raises(msbnb.InvalidArgumentError, match=msg):
        model.generate([1], 2)
