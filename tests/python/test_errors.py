"""Every failure of the C library raises with msbnb's own message; bad shapes, dtypes and parts
raise, never crash; the message of a failure stays with the thread that made it."""
import threading

import numpy as np
import pytest

import msbnb
from msbnb import functional as F


def test_c_errors_carry_msbnb_messages(rng):
    w = rng.standard_normal((4, 130)).astype(np.float32)
    with pytest.raises(msbnb.ShapeError, match=r"^msbnb_quantize: group_size 100 does not divide cols 130$") as e:
        F.quantize_tensor(w, quant_type="int4", group_size=100)
    assert e.value.status == -5 and isinstance(e.value, ValueError)
    with pytest.raises(msbnb.InvalidArgumentError, match=r"msbnb_quantize: blocksize 48 is not a power of two"):
        F.quantize_tensor(w, quant_type="nf4", blocksize=48)
    with pytest.raises(msbnb.InvalidArgumentError, match="threshold"):
        F.quantize_tensor(w, quant_type="int8", threshold=float("inf"))


def test_bad_shapes_and_dtypes_are_refused(rng):
    q = F.quantize_4bit(rng.standard_normal((16, 64)).astype(np.float32), 64, quant_type="nf4")
    with pytest.raises(msbnb.InvalidArgumentError, match=r"expected \[\.\.\., 64\]"):
        q.matmul(np.ones((2, 63), np.float32))
    with pytest.raises(msbnb.InvalidArgumentError, match="bias"):
        q.matmul(np.ones(64, np.float32), bias=np.ones(15, np.float32))
    with pytest.raises(msbnb.InvalidArgumentError, match="precision"):
        q.matmul(np.ones(64, np.float32), precision="turbo")
    with pytest.raises(msbnb.InvalidArgumentError, match="dtype complex"):
        q.matmul(np.ones(64, np.complex64))
    with pytest.raises(msbnb.InvalidArgumentError, match="2-D"):
        F.quantize_4bit(np.ones((2, 2, 64), np.float32))
    with pytest.raises(msbnb.InvalidArgumentError, match="empty"):
        F.quantize_4bit(np.ones((0, 64), np.float32))
    with pytest.raises(msbnb.InvalidArgumentError, match="dtype"):
        q.dequantize("int8")
    assert q.matmul(np.ones((0, 64), np.float32)).shape == (0, 16)


def test_bad_parts_raise_from_wrap_and_validate(rng):
    w = rng.standard_normal((8, 64)).astype(np.float32)
    q = F.quantize_tensor(w, quant_type="int8", asymmetric=True)
    with pytest.raises(msbnb.ShapeError, match="msbnb_qtensor_wrap: data_bytes 504, expected 512"):
        msbnb.QTensor("int8", (8, 64), q.data.ravel()[:504], q.stats, zero_point=q.zero_point, asymmetric=True)
    zp = q.zero_point.copy()
    zp[3] = 400
    with pytest.raises(msbnb.FormatError, match=r"msbnb_qtensor_validate: zero_point\[3\] = 400 outside 0..255"):
        msbnb.QTensor("int8", (8, 64), q.data, q.stats, zero_point=zp, asymmetric=True)
    s = q.stats.copy()
    s[5] = -1
    with pytest.raises(msbnb.FormatError, match=r"stats\[5\] = -1"):
        msbnb.QTensor("int8", (8, 64), q.data, s, zero_point=q.zero_point, asymmetric=True)
    with pytest.raises(msbnb.InvalidArgumentError, match="part 'stats' is required"):
        msbnb.QTensor("nf4", (8, 64), np.zeros(256, np.uint8))
    with pytest.raises(msbnb.InvalidArgumentError, match="quant_type"):
        msbnb.QTensor("int3", (8, 64), q.data, q.stats)
    with pytest.raises(msbnb.FormatError, match="code table differs"):
        msbnb.QTensor("nf4", (8, 64), np.zeros(256, np.uint8), np.ones(8, np.float32), code=np.zeros(16, np.float32))


def test_file_errors_name_the_file(tmp_path):
    missing = tmp_path / "nope.safetensors"
    with pytest.raises(msbnb.MsbnbIOError, match="nope.safetensors") as e:
        msbnb.load_quantized(missing)
    assert isinstance(e.value, OSError)
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{\"a\": 1}       ")
    with pytest.raises(msbnb.FormatError, match="bad.safetensors"):
        msbnb.load_quantized(bad)
    with pytest.raises(msbnb.MsbnbIOError):
        msbnb.save_quantized(tmp_path / "no" / "dir" / "x.safetensors", {"a": np.ones(2, np.float32)})
    with pytest.raises(msbnb.InvalidArgumentError, match="cannot be stored"):
        msbnb.save_quantized(tmp_path / "x.safetensors", {"a": np.ones(2, np.complex64)})
    assert not (tmp_path / "x.safetensors").exists()  # nothing left behind on failure


def test_messages_stay_with_their_thread(rng):
    """Threads fail at the same time with different messages; each exception carries its own."""
    w = rng.standard_normal((4, 130)).astype(np.float32)
    barrier, seen = threading.Barrier(4), {}

    def worker(g):
        barrier.wait()
        msgs = set()
        for _ in range(200):
            try:
                F.quantize_tensor(w, quant_type="int4", group_size=g)
            except msbnb.ShapeError as e:
                msgs.add(str(e))
        seen[g] = msgs

    ts = [threading.Thread(target=worker, args=(g,)) for g in (4, 6, 8, 12)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    for g, msgs in seen.items():
        assert msgs == {f"msbnb_quantize: group_size {g} does not divide cols 130"}, msgs
