"""load_quantized on checkpoints written by others: by `msbnb quantize` (the CLI, built beside the
package) and by transformers + bitsandbytes (made by `make interop`: python/make_py_fixture.py,
directory in MSBNB_PY_FIXTURE). Values are compared with independent readers: `msbnb dequantize`
output read by the safetensors package, and bitsandbytes' own dequantization."""
import os

import numpy as np
import pytest
from safetensors.numpy import load_file

import msbnb
from conftest import STORIES, run_cli

FIXTURE = os.environ.get("MSBNB_PY_FIXTURE", "")
# make interop sets it: there a missing fixture is a failure, not a skip
FIXTURE_REQUIRED = os.environ.get("MSBNB_PY_FIXTURE_REQUIRED") == "1"


@pytest.mark.parametrize("args", [["--type", "nf4", "--double-quant"], ["--type", "int8"],
                                  ["--type", "int4", "--group-size", "64"], ["--type", "fp4", "--blocksize", "128"]],
                         ids=["nf4-dq", "int8", "int4", "fp4"])
def test_file_written_by_msbnb_quantize(tmp_path, args):
    q, d = tmp_path / "q", tmp_path / "d"
    run_cli("quantize", STORIES, str(q), *args, "--quiet")
    run_cli("dequantize", str(q), str(d), "--quiet")
    ours = msbnb.load_quantized(q)
    theirs = load_file(str(d / "model.safetensors"))
    original = load_file(os.path.join(STORIES, "model.safetensors"))
    quantized = {k: v for k, v in ours.items() if isinstance(v, msbnb.QTensor)}
    assert len(quantized) >= 28, sorted(quantized)  # every linear layer of stories260K
    assert set(ours) == set(theirs)
    for name, v in ours.items():
        if isinstance(v, msbnb.QTensor):
            assert v.quant_type == args[1]
            assert np.array_equal(v.dequantize(), theirs[name].reshape(v.shape)), name
        else:
            assert np.array_equal(v, original[name]), name


def _fixture(kind):
    d = os.path.join(FIXTURE, kind)
    if not FIXTURE or not os.path.isdir(d):
        if FIXTURE_REQUIRED:
            pytest.fail(f"fixture {d} missing")
        pytest.skip("no transformers + bitsandbytes checkpoint: made by `make interop` "
                    "(python/make_py_fixture.py, MSBNB_PY_FIXTURE)")
    return d, dict(np.load(os.path.join(FIXTURE, f"{kind}.reference.npz")))


@pytest.mark.parametrize("kind", ["nf4_dq", "fp4", "int8"])
def test_file_written_by_transformers_and_bitsandbytes(kind):
    d, ref = _fixture(kind)
    ours = msbnb.load_quantized(d)
    raw = load_file(os.path.join(d, "model.safetensors"))
    quantized = {k: v for k, v in ours.items() if isinstance(v, msbnb.QTensor)}
    assert sorted(quantized) == sorted(ref)
    for name, q in quantized.items():
        assert q.quant_type == {"nf4_dq": "nf4", "fp4": "fp4", "int8": "int8"}[kind]
        assert q.double_quant == (kind == "nf4_dq")
        got, want = q.dequantize(), ref[name].reshape(q.shape)
        if kind == "int8":  # bitsandbytes computes code·SCB/127 in another order: within 1 ulp
            assert np.allclose(got, want, rtol=2e-7, atol=0), name
        else:
            assert np.array_equal(got, want), name
    for name, v in ours.items():
        if not isinstance(v, msbnb.QTensor):
            assert np.array_equal(v, raw[name]), name
