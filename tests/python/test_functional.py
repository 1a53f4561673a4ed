"""msbnb.functional: quantizers with the design's names and return shapes, half-precision inputs,
error statistics (checked against numpy in float64), info, nibble packing, configs, zero copy."""
import math

import ml_dtypes
import numpy as np
import pytest

import msbnb
from msbnb import functional as F


def numpy_error_stats(x, xh):
    x, xh = x.astype(np.float64).ravel(), xh.astype(np.float64).ravel()
    d = x - xh
    return {"mse": np.mean(d * d), "max_abs_error": np.abs(d).max(),
            "relative_error_pct": 100 * math.sqrt((d * d).sum() / (x * x).sum()),
            "snr_db": 10 * math.log10((x * x).sum() / (d * d).sum())}


@pytest.mark.parametrize("kw", [dict(quant_type="int8"), dict(quant_type="int4", group_size=32),
                                dict(quant_type="nf4", double_quant=True), dict(quant_type="fp4")])
def test_error_statistics_equal_the_c_api_and_numpy(rng, kw):
    w = rng.standard_normal((64, 96)).astype(np.float32)
    q = F.quantize_tensor(w, **kw)
    e = F.estimate_quantization_error(w, q)  # msbnb_estimate_quantization_error
    e2 = F.estimate_quantization_error(w, q.dequantize())  # msbnb_error_stats_compute on arrays
    assert e == e2
    ref = numpy_error_stats(w, q.dequantize())
    for k, v in ref.items():
        assert e[k] == pytest.approx(v, rel=1e-9), k
    assert set(e) == {"mse", "max_abs_error", "relative_error_pct", "snr_db"}


def test_quantize_8bit_tuple_and_exact_inverse(rng):
    w = rng.standard_normal((9, 50)).astype(np.float32)
    c, s, o = F.quantize_8bit(w)
    assert c.dtype == np.int8 and c.shape == (9, 50) and s.shape == (9,) and not o.any()
    assert np.array_equal(s, np.abs(w).max(axis=1))  # absmax per row (bitsandbytes SCB)
    q = F.quantize_tensor(w, msbnb.Int8Config(threshold=0.0))
    assert np.array_equal(c, q.data) and np.array_equal(F.dequantize_8bit(c, s, o), q.dequantize())
    ca, sa, oa = F.quantize_8bit(w, symmetric=False, per_channel=False)
    assert ca.dtype == np.uint8 and sa.shape == (1,) and oa.shape == (1,) and 0 <= oa[0] <= 255
    back = F.dequantize_8bit(ca, sa, oa)
    assert np.all(np.abs(back - w) <= 0.5 * sa[0] * (1 + 1e-6) + 1e-7)
    assert np.array_equal(F.compute_scale_offset(w, 8, False, False)[1], oa)
    scales, off = F.compute_scale_offset(w[:, :48], bits=4, group_size=16)
    assert scales.shape == (3, 9) and not off.any()
    assert np.array_equal(scales, F.quantize_4bit(w[:, :48], 16).stats)


@pytest.mark.parametrize("kind", ["int4", "nf4", "fp4"])
def test_half_precision_weights_quantize_like_their_widening(rng, kind):
    w = (rng.standard_normal((24, 128)) * 0.1).astype(np.float32)
    w16, wb = w.astype(np.float16), w.astype(ml_dtypes.bfloat16)
    for half, wide in ((w16, w16.astype(np.float32)), (wb, wb.astype(np.float32)), (wb.view(np.uint16), wb.astype(np.float32))):
        a, b = F.quantize_4bit(half, 64, quant_type=kind), F.quantize_4bit(wide, 64, quant_type=kind)
        assert np.array_equal(a.data, b.data) and np.array_equal(a.stats, b.stats)
    assert F.quantize_4bit(w16, 64, quant_type=kind).orig_dtype == "float16"
    e16 = F.estimate_quantization_error(w16, F.quantize_4bit(w16, 64, quant_type=kind))
    assert e16 == F.estimate_quantization_error(w16.astype(np.float32), F.quantize_4bit(w16, 64, quant_type=kind))


def test_info_figures(rng):
    w = rng.standard_normal((128, 1024)).astype(np.float32)
    i = F.get_quantization_info(F.quantize_4bit(w, 64, quant_type="nf4"))
    assert i["bits_per_weight"] == 4.5 and i["data_bytes"] == 128 * 1024 // 2
    i = F.get_quantization_info(F.quantize_4bit(w, 64, True, "nf4"))
    assert i["bits_per_weight"] == pytest.approx(4 + 8 / 64 + 32 / (64 * 256) + 32 / (128 * 1024))
    i = F.get_quantization_info(F.quantize_tensor(w, msbnb.Int8Config()))
    assert i["bits_per_weight"] == 8 + 32 / 1024 and i["quant_type"] == "int8"


def test_pack_unpack_int4(rng):
    c = rng.integers(-8, 8, size=(5, 6)).astype(np.int8)
    p = F.pack_int4_to_qint4x2(c)
    assert p.shape == (5, 3) and p.dtype == np.uint8
    assert p[0, 0] == ((int(c[0, 0]) & 15) << 4 | (int(c[0, 1]) & 15))  # first element high nibble
    assert np.array_equal(F.unpack_qint4x2_to_int8(p), c)
    odd = c[:, :5]
    po = F.pack_int4_to_qint4x2(odd)
    assert po.shape == (5, 3) and np.array_equal(F.unpack_qint4x2_to_int8(po, 5), odd)
    with pytest.raises(ValueError):
        F.pack_int4_to_qint4x2(np.array([9], np.int32))
    # the packed rows of an INT4 tensor unpack to codes that reproduce its dequantization
    w = rng.standard_normal((4, 32)).astype(np.float32)
    q = F.quantize_4bit(w, group_size=32)
    codes = F.unpack_qint4x2_to_int8(q.data)
    assert codes.min() >= -8 and codes.max() <= 7
    assert np.array_equal(codes * q.stats[0][:, None], q.dequantize())


def test_configs_defaults_and_errors():
    assert msbnb.QuantConfig() == msbnb.QuantConfig(bits=8, symmetric=True, per_channel=True)
    assert msbnb.Int8Config().threshold == 6.0 and msbnb.Int8Config().has_fp16_weights is False
    c = msbnb.Int4Config()
    assert (c.group_size, c.compress_statistics, c.quant_type) == (128, False, "int4")
    for bad in (lambda: msbnb.QuantConfig(bits=3), lambda: msbnb.QuantConfig(bits=4, symmetric=False),
                lambda: msbnb.Int8Config(threshold=-1), lambda: msbnb.Int8Config(threshold=float("nan")),
                lambda: msbnb.Int4Config(group_size=7), lambda: msbnb.Int4Config(quant_type="nf5"),
                lambda: msbnb.Int4Config(group_size=100, quant_type="nf4"),
                lambda: msbnb.Int4Config(compress_statistics=2)):
        with pytest.raises(ValueError) as e:
            bad()
        assert "Config" in str(e.value)


def test_qtensor_borrows_its_arrays(rng):
    """The C handle reads the numpy arrays in place: a change to them shows in the next call."""
    w = rng.standard_normal((8, 64)).astype(np.float32)
    q = F.quantize_4bit(w, group_size=64, quant_type="nf4")
    before = q.dequantize()
    q.stats[0] *= 2
    after = q.dequantize()
    assert np.array_equal(after[0], before[0] * 2) and np.array_equal(after[1:], before[1:])
    parts = msbnb.QTensor("nf4", q.shape, q.data, q.stats, blocksize=64)
    assert np.array_equal(parts.dequantize(), after)
    assert repr(parts) == "QTensor(nf4, shape=(8, 64), blocksize=64)"
