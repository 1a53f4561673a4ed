"""Writes the INT8 fixtures of tests/quant/test_int8.c with bitsandbytes itself (never run by CI).

    ~/.cache/msbnb-venv/bin/python tests/quant/golden/make_int8_bnb.py tests/quant/golden

Input: 48 x 96 float32 = N(0, 1) * per-row scale (seed 7), with rows of exact ties (k/2 * absmax/127
for integer k) and a zero row; bitsandbytes' int8_vectorwise_quant on CPU gives CB (int8) and SCB
(float32), int8_vectorwise_dequant gives the float32 round trip; the same input rounded to fp16
gives CB/SCB of the fp16 path (*_from_f16). Files are raw little-endian.
"""
import os
import sys

import numpy as np
import torch
import bitsandbytes.functional as F

out = sys.argv[1] if len(sys.argv) > 1 else "."
rows, cols = 48, 96
rng = np.random.default_rng(7)
x = rng.standard_normal((rows, cols)).astype(np.float32)
x *= np.float32(2.0) ** rng.integers(-8, 8, size=(rows, 1)).astype(np.float32)
for r in range(4, 12):  # ties: x = (k + 0.5) * absmax / 127 for a few absmax values
    a = np.float32([0.234375, 0.140625, 1.0, 3.0, 0.1, 7.0, 127.0, 0.01][r - 4])
    k = np.arange(cols, dtype=np.float32) - cols / 2
    x[r] = ((k + np.float32(0.5)) * a / np.float32(127.0)).astype(np.float32)
    x[r, 0] = a
x[12] = 0.0
A = torch.from_numpy(x.copy())
cb, scb, _ = F.int8_vectorwise_quant(A)
deq = F.int8_vectorwise_dequant(cb, scb)
x.tofile(os.path.join(out, "int8_bnb_48x96.input.f32"))
cb.numpy().astype(np.int8).tofile(os.path.join(out, "int8_bnb_48x96.cb.i8"))
scb.numpy().astype(np.float32).tofile(os.path.join(out, "int8_bnb_48x96.scb.f32"))
deq.numpy().astype(np.float32).tofile(os.path.join(out, "int8_bnb_48x96.dequant.f32"))
# fp16 weights (what Linear8bitLt quantizes): same input rounded to fp16
A16 = torch.from_numpy(x.copy()).half()
cb16, scb16, _ = F.int8_vectorwise_quant(A16)
A16.view(torch.int16).numpy().tofile(os.path.join(out, "int8_bnb_48x96.input.f16"))
cb16.numpy().astype(np.int8).tofile(os.path.join(out, "int8_bnb_48x96.cb_from_f16.i8"))
scb16.numpy().astype(np.float32).tofile(os.path.join(out, "int8_bnb_48x96.scb_from_f16.f32"))
print("bitsandbytes", __import__("bitsandbytes").__version__, "torch", torch.__version__)
