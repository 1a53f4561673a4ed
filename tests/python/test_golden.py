"""Byte-exact round trips against the vectors made with bitsandbytes itself (../shared/golden/bnb):
codes, statistics, dequantized values in float32 / float16 / bfloat16, double quantization, the
8-bit blockwise format, and the quant-state JSON of saved files read back by the safetensors
package (an independent reader)."""
import json
import os

import ml_dtypes
import numpy as np
import pytest
from safetensors.numpy import load_file

import msbnb
from msbnb import functional as F
from conftest import golden


def same_values(a, b):
    """Equal as numbers (±0 compare equal), same shape after flattening."""
    a, b = np.asarray(a).reshape(-1), np.asarray(b).reshape(-1)
    return a.shape == b.shape and bool(np.all(a == b))


@pytest.mark.parametrize("kind", ["nf4", "fp4"])
def test_4bit_codes_stats_and_dequantize(kind):
    x = golden("input_n4096.f32", np.float32)
    q = F.quantize_4bit(x.reshape(64, 64), group_size=64, quant_type=kind)
    assert np.array_equal(q.data, golden(f"q4_{kind}_bs64_n4096.packed_cuda.u8", np.uint8))
    assert np.array_equal(q.stats, golden(f"q4_{kind}_bs64_n4096.absmax_cpu.f32", np.float32))
    assert same_values(q.dequantize(), golden(f"q4_{kind}_bs64_n4096.dequant_cuda.f32", np.float32))


@pytest.mark.parametrize("kind", ["nf4", "fp4"])
def test_wrapped_bitsandbytes_cpu_parts_dequantize_exactly(kind):
    """bitsandbytes' own packed codes and absmax, wrapped without a copy, dequantize to its values
    in every output dtype."""
    packed = golden(f"q4_{kind}_bs64_n4096.packed_cpu.u8", np.uint8)
    absmax = golden(f"q4_{kind}_bs64_n4096.absmax_cpu.f32", np.float32)
    q = msbnb.QTensor(kind, (64, 64), packed, absmax, blocksize=64)
    assert q.data.ctypes.data == packed.ctypes.data  # borrowed, not copied
    assert same_values(q.dequantize(), golden(f"q4_{kind}_bs64_n4096.dequant_cpu.f32", np.float32))
    f16 = golden(f"q4_{kind}_bs64_n4096.dequant_cpu.f16", np.uint16).view(np.float16)
    assert same_values(q.dequantize("float16"), f16)
    bf16 = golden(f"q4_{kind}_bs64_n4096.dequant_cpu.bf16", np.uint16).view(ml_dtypes.bfloat16)
    got = q.dequantize("bfloat16")
    assert got.dtype == ml_dtypes.bfloat16
    assert same_values(got.astype(np.float32), bf16.astype(np.float32))


def test_nf4_double_quant():
    x = golden("input_n20000.f32", np.float32).reshape(100, 200)
    q = F.quantize_4bit(x, group_size=64, compress_statistics=True, quant_type="nf4")
    assert q.stats is None and q.double_quant
    assert np.array_equal(q.data, golden("dq_nf4_bs64_n20000.packed.u8", np.uint8))
    assert np.array_equal(q.stats_q, golden("dq_nf4_bs64_n20000.absmax_q_cuda.u8", np.uint8))
    assert np.array_equal(q.nested_absmax, golden("dq_nf4_bs64_n20000.nested_absmax.f32", np.float32))
    assert np.float32(q.nested_offset) == golden("dq_nf4_bs64_n20000.nested_offset.f32", np.float32)[0]
    assert same_values(q.dequantize(), golden("dq_nf4_bs64_n20000.dequant_cuda.f32", np.float32))


def test_bitsandbytes_cpulib_double_quant_parts_wrap_and_dequantize():
    q = msbnb.QTensor("nf4", (100, 200), golden("dq_nf4_bs64_n20000.packed.u8", np.uint8), blocksize=64,
                      stats_q=golden("dq_nf4_bs64_n20000.absmax_q_cpulib.u8", np.uint8),
                      nested_absmax=golden("dq_nf4_bs64_n20000.nested_absmax.f32", np.float32),
                      nested_offset=golden("dq_nf4_bs64_n20000.nested_offset.f32", np.float32)[0])
    assert same_values(q.dequantize(), golden("dq_nf4_bs64_n20000.dequant_cpulib.f32", np.float32))


def test_blockwise8_dynamic_map():
    x = golden("input_n4096.f32", np.float32).reshape(16, 256)
    q = F.quantize_tensor(x, quant_type="blockwise8", blocksize=256)
    assert np.array_equal(q.data, golden("q8_dyn_bs256_n4096.q_cuda.u8", np.uint8))
    assert np.array_equal(q.stats, golden("q8_dyn_bs256_n4096.absmax.f32", np.float32))
    assert same_values(q.dequantize(), golden("q8_dyn_bs256_n4096.dequant_cuda.f32", np.float32))
    assert np.array_equal(q.code, golden("map_dynamic_signed.f32", np.float32))


@pytest.mark.parametrize("dq,golden_json", [
    (True, "dq_nf4_bs64_n20000.quant_state_bitsandbytes__nf4.u8"),
    (False, "q4_nf4_bs64_shape100x200_nonnested.quant_state_bitsandbytes__nf4.u8"),
])
def test_saved_file_is_bitsandbytes_layout(tmp_path, dq, golden_json):
    """save_quantized writes bitsandbytes' entries; the safetensors package reads them back equal to
    the tensor's parts, and the quant-state JSON equals the bytes bitsandbytes writes."""
    x = golden("input_n20000.f32", np.float32).reshape(100, 200)
    q = F.quantize_4bit(x, group_size=64, compress_statistics=dq, quant_type="nf4")
    path = tmp_path / "w.safetensors"
    msbnb.save_quantized(path, {"layer.weight": q})
    sd = load_file(str(path))
    assert np.array_equal(sd["layer.weight"].reshape(-1), q.data)
    assert np.array_equal(sd["layer.weight.quant_map"], golden("map_nf4.f32", np.float32))
    want = golden(golden_json, np.uint8)
    assert np.array_equal(sd["layer.weight.quant_state.bitsandbytes__nf4"], want), \
        bytes(sd["layer.weight.quant_state.bitsandbytes__nf4"]).decode()
    if dq:
        assert np.array_equal(sd["layer.weight.absmax"], q.stats_q)
        assert np.array_equal(sd["layer.weight.nested_absmax"], q.nested_absmax)
    else:
        assert np.array_equal(sd["layer.weight.absmax"], q.stats)
    back = msbnb.load_quantized(path)["layer.weight"]
    for part in ("data", "stats", "stats_q", "nested_absmax"):
        a, b = getattr(q, part), getattr(back, part)
        assert (a is None and b is None) or np.array_equal(a, b), part
    assert back.nested_offset == q.nested_offset
    assert json.loads(bytes(want))["shape"] == [100, 200]


@pytest.mark.parametrize("kw", [
    dict(quant_type="int8"), dict(quant_type="int8", asymmetric=True), dict(quant_type="int8", per_row=False),
    dict(quant_type="int4", group_size=40), dict(quant_type="int4", group_size=40, double_quant=True),
    dict(quant_type="fp4", blocksize=128, double_quant=True),
])
def test_every_layout_round_trips_through_a_file(tmp_path, rng, kw):
    w = rng.standard_normal((70, 120)).astype(np.float32)
    q = F.quantize_tensor(w, **kw)
    msbnb.save_quantized(tmp_path / "f.safetensors", {"m.weight": q})
    back = msbnb.load_quantized(tmp_path / "f.safetensors")["m.weight"]
    assert back.quant_type == q.quant_type and back.shape == q.shape
    assert np.array_equal(back.dequantize(), q.dequantize())
    for part in ("data", "stats", "zero_point", "stats_q", "nested_absmax"):
        a, b = getattr(q, part), getattr(back, part)
        assert (a is None and b is None) or np.array_equal(a.reshape(-1), b.reshape(-1)), part
    assert os.path.getsize(tmp_path / "f.safetensors") > q.info()["total_bytes"]


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_original_dtype_survives_save_and_load(tmp_path, rng, dtype):
    """A half-precision weight's quant state records its dtype (bitsandbytes' "dtype"), and a
    loaded tensor keeps it, so saving it again writes the same bytes."""
    w = rng.standard_normal((32, 128)).astype(np.float32)
    half = w.astype(np.float16) if dtype == "float16" else w.astype(ml_dtypes.bfloat16)
    q = F.quantize_4bit(half, group_size=64, compress_statistics=True, quant_type="nf4")
    assert q.orig_dtype == dtype
    msbnb.save_quantized(tmp_path / "a.safetensors", {"l.weight": q})
    state = json.loads(bytes(load_file(str(tmp_path / "a.safetensors"))["l.weight.quant_state.bitsandbytes__nf4"]))
    assert state["dtype"] == dtype
    back = msbnb.load_quantized(tmp_path / "a.safetensors")["l.weight"]
    assert back.orig_dtype == dtype
    msbnb.save_quantized(tmp_path / "b.safetensors", {"l.weight": back})
    a, b = load_file(str(tmp_path / "a.safetensors")), load_file(str(tmp_path / "b.safetensors"))
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
