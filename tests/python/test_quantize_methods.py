"""The quantization methods through the Python package (docs/quantization.md):
msbnb.quantize_checkpoint calls the library's msbnb_quantize_model, which `msbnb quantize` runs too,
so its files must be the CLI's bytes for
the same options (and the same for every thread count); functional.quantize_4bit(method=...)
must keep the C library's properties — the scale search never increases a block's error over
bitsandbytes' rule, GPTQ lowers the output error on the statistics it is given — and bad
options raise with msbnb's one-line message, leaving nothing behind."""
import os

import numpy as np
import pytest

import msbnb
from msbnb import functional as F
from conftest import SHARED, STORIES, run_cli

CALIB = os.path.join(SHARED, "data", "tinystories_sample.txt")


def _same_dir(a, b):
    names = sorted(os.listdir(a))
    assert names == sorted(os.listdir(b))
    for n in names:
        with open(os.path.join(a, n), "rb") as fa, open(os.path.join(b, n), "rb") as fb:
            assert fa.read() == fb.read(), n


@pytest.mark.parametrize("kwargs,args", [
    ({"quant_type": "nf4", "double_quant": True}, ["--type", "nf4", "--double-quant"]),
    ({"quant_type": "int4", "group_size": 64, "method": "search"},
     ["--type", "int4", "--group-size", "64", "--method", "search"]),
    ({"quant_type": "nf4", "method": "gptq", "calibrate": CALIB, "calib_tokens": 512},
     ["--type", "nf4", "--method", "gptq", "--calibrate", CALIB, "--calib-tokens", "512"]),
    ({"quant_type": "fp4", "block_size": 128, "method": "awq+gptq", "calibrate": CALIB, "double_quant": True},
     ["--type", "fp4", "--blocksize", "128", "--method", "awq+gptq", "--calibrate", CALIB, "--double-quant"]),
], ids=["nf4-dq-rtn", "int4-search", "nf4-gptq", "fp4-dq-awq-gptq"])
def test_quantize_checkpoint_writes_the_cli_bytes(tmp_path, kwargs, args):
    run_cli("quantize", STORIES, str(tmp_path / "cli"), *args, "--quiet")
    msbnb.quantize_checkpoint(STORIES, tmp_path / "py", **kwargs)
    _same_dir(tmp_path / "cli", tmp_path / "py")


def test_quantize_checkpoint_same_bytes_for_every_thread_count(tmp_path):
    for t in (1, 2, 3):
        msbnb.quantize_checkpoint(STORIES, tmp_path / f"t{t}", "nf4", method="gptq", calibrate=CALIB,
                                  calib_tokens=512, threads=t)
    _same_dir(tmp_path / "t1", tmp_path / "t2")
    _same_dir(tmp_path / "t1", tmp_path / "t3")


def test_quantize_checkpoint_single_file(tmp_path):
    src = os.path.join(STORIES, "model.safetensors")
    run_cli("quantize", src, str(tmp_path / "cli.safetensors"), "--type", "nf4", "--method", "search", "--quiet")
    msbnb.quantize_checkpoint(src, tmp_path / "py.safetensors", "nf4", method="search")
    assert (tmp_path / "cli.safetensors").read_bytes() == (tmp_path / "py.safetensors").read_bytes()
    q = msbnb.load_quantized(tmp_path / "py.safetensors")
    assert sum(isinstance(v, msbnb.QTensor) for v in q.values()) >= 28


@pytest.mark.parametrize("kwargs,words", [
    ({"method": "bogus"}, "method must be rtn, search"),
    ({"method": "gptq"}, "needs a calibration text"),
    ({"quant_type": "int8", "method": "search"}, "applies to nf4, fp4 and int4"),
    ({"block_size": 48}, "power of two"),
    ({"calibrate": CALIB}, "calibration text .* needs method search, gptq or awq"),
    ({"method": "gptq", "calibrate": "/nonexistent/calib.txt"}, "cannot open calibration text"),
])
def test_quantize_checkpoint_bad_options_raise(tmp_path, kwargs, words):
    args = {"quant_type": "nf4", **kwargs}
    with pytest.raises(msbnb.MsbnbError, match=words):
        msbnb.quantize_checkpoint(STORIES, tmp_path / "out", **args)
    assert not os.path.exists(tmp_path / "out")
    assert os.listdir(tmp_path) == []  # no temporary left either


def test_quantize_checkpoint_argument_types(tmp_path):
    with pytest.raises(msbnb.InvalidArgumentError, match="quant_type"):
        msbnb.quantize_checkpoint(STORIES, tmp_path / "o", "nf5")
    with pytest.raises(msbnb.InvalidArgumentError, match="block_size must be an int"):
        msbnb.quantize_checkpoint(STORIES, tmp_path / "o", "nf4", block_size=True)
    with pytest.raises(msbnb.InvalidArgumentError, match="threads"):
        msbnb.quantize_checkpoint(STORIES, tmp_path / "o", "nf4", threads=0)
    with pytest.raises(msbnb.InvalidArgumentError, match="skip"):
        msbnb.quantize_checkpoint(STORIES, tmp_path / "o", "nf4", skip=["a,b"])
    with pytest.raises(msbnb.MsbnbIOError, match="no such file"):
        msbnb.quantize_checkpoint(tmp_path / "missing", tmp_path / "o", "nf4")
    assert os.listdir(tmp_path) == []


def _block_errors(w, q, blocksize, weights=None):
    """Squared error per block of blocksize consecutive elements (row-major, blocks may straddle rows)."""
    d2 = (q.dequantize().astype(np.float64) - w.astype(np.float64)) ** 2
    if weights is not None:
        d2 = d2 * weights[None, :]
    return d2.reshape(-1, blocksize).sum(axis=1)


@pytest.mark.parametrize("quant_type,dq", [("nf4", False), ("nf4", True), ("fp4", False), ("int4", True)])
def test_search_never_increases_a_block_error(rng, quant_type, dq):
    w = (rng.standard_normal((48, 320)) * rng.uniform(0.2, 3.0, (48, 1))).astype(np.float32)
    w[5, 17] = 9.0  # an outlier: the search clips it for the rest of its block
    imp = rng.uniform(0.1, 10.0, 320)
    for importance in (None, imp):
        rtn = F.quantize_4bit(w, 64, dq, quant_type)
        srch = F.quantize_4bit(w, 64, dq, quant_type, method="search", importance=importance)
        assert srch.quant_type == quant_type and srch.shape == w.shape
        e_rtn = _block_errors(w, rtn, 64, importance)
        e_srch = _block_errors(w, srch, 64, importance)
        assert np.all(e_srch <= e_rtn * (1 + 1e-12)), np.max(e_srch - e_rtn)
        assert e_srch.sum() < 0.95 * e_rtn.sum()  # and lowers it overall


def test_rtn_method_is_bitsandbytes_rule(rng):
    w = rng.standard_normal((32, 256)).astype(np.float32)
    a = F.quantize_4bit(w, 64, True, "nf4")
    b = F.quantize_4bit(w, 64, True, "nf4", method="rtn", importance=None)
    for k in ("data", "stats_q", "nested_absmax"):
        assert np.array_equal(getattr(a, k), getattr(b, k)), k


def test_gptq_lowers_the_output_error(rng):
    cols = 256
    z = rng.standard_normal((2048, cols))
    x = z @ (0.2 * np.eye(cols) + rng.standard_normal((cols, cols)) / np.sqrt(cols))  # correlated inputs
    h = x.T @ x
    w = rng.standard_normal((96, cols)).astype(np.float32)

    def out_err(q):
        d = q.dequantize().astype(np.float64) - w
        return float(np.einsum("ri,ij,rj->", d, h, d))

    rtn = out_err(F.quantize_4bit(w, 64, False, "nf4"))
    gptq = out_err(F.quantize_4bit(w, 64, False, "nf4", method="gptq", importance=h))
    assert gptq < 0.6 * rtn, (gptq, rtn)


def test_quantize_4bit_bad_method_or_importance(rng):
    w = rng.standard_normal((8, 64)).astype(np.float32)
    with pytest.raises(msbnb.InvalidArgumentError, match="method"):
        F.quantize_4bit(w, 64, quant_type="nf4", method="awq")
    with pytest.raises(msbnb.InvalidArgumentError, match="importance has shape"):
        F.quantize_4bit(w, 64, quant_type="nf4", method="search", importance=np.ones(63))
    with pytest.raises(msbnb.InvalidArgumentError):  # the library refuses a negative diagonal
        F.quantize_4bit(w, 64, quant_type="nf4", method="search", importance=-np.ones(64))
    with pytest.raises(msbnb.MsbnbError):  # no method but RTN for INT8
        msbnb.qtensor.quantize(w, "int8", method="search")


def test_quantize_checkpoint_report_matches_the_file(tmp_path):
    rep = msbnb.quantize_checkpoint(STORIES, tmp_path / "q", "nf4", skip=["layers.4"])
    q = msbnb.load_quantized(tmp_path / "q")
    quantized = {r["name"] for r in rep["layers"] if not r["kept"]}
    assert quantized == {k for k, v in q.items() if isinstance(v, msbnb.QTensor)}
    assert rep["n_quantized"] == len(quantized) == 28 and rep["n_kept"] == 7
    assert all(r["kept"] == "in the skip list" for r in rep["layers"] if "layers.4." in r["name"])
    for r in rep["layers"]:
        if not r["kept"]:  # NF4 of a Gaussian-like weight: ~9-10 % relative error, 4.5 bits of 32
            assert 5 < r["rel_err_pct"] < 15 and r["bytes_after"] < r["bytes_before"] / 6, r
    assert rep["bytes_after"] < os.path.getsize(tmp_path / "q" / "model.safetensors") < rep["bytes_before"]
