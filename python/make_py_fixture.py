"""Checkpoints written by transformers + bitsandbytes themselves, for the Python package's tests
(tests/python/test_bnb_files.py), with bitsandbytes' own dequantization of every weight.

Run by scripts/interop.sh (`make interop`) in the interop venv:
    python make_py_fixture.py OUT_DIR
writes OUT_DIR/<kind>/ (save_pretrained of stories260K quantized on load: nf4_dq, fp4, int8) and
OUT_DIR/<kind>.reference.npz (weight name -> float32 values bitsandbytes dequantizes them to).
"""
import os
import sys
import warnings

warnings.filterwarnings("ignore")
import numpy as np  # noqa: E402
import torch  # noqa: E402
import bitsandbytes.functional as F  # noqa: E402
from safetensors.torch import load_file  # noqa: E402
from transformers import AutoModelForCausalLM, BitsAndBytesConfig  # noqa: E402

from interop_common import STORIES  # noqa: E402
from test_bnb_interop import quant_states  # noqa: E402

KINDS = {
    "nf4_dq": BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                                 bnb_4bit_compute_dtype=torch.float32),
    "fp4": BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="fp4", bnb_4bit_compute_dtype=torch.float32),
    "int8": BitsAndBytesConfig(load_in_8bit=True),
}


def reference(sd):
    """bitsandbytes' dequantization of every quantized weight of a saved state dict."""
    out = {w: F.dequantize_4bit(sd[w], qs).float().numpy() for w, qs in quant_states(sd).items()}
    for k in sd:
        if k.endswith(".SCB"):
            w = k[:-3] + "weight"
            out[w] = F.int8_vectorwise_dequant(sd[w], sd[k]).float().numpy()
    return out


def main(dst):
    os.makedirs(dst, exist_ok=True)
    for kind, cfg in KINDS.items():
        d = os.path.join(dst, kind)
        model = AutoModelForCausalLM.from_pretrained(STORIES, quantization_config=cfg, device_map="cpu")
        model.save_pretrained(d)
        ref = reference(load_file(os.path.join(d, "model.safetensors")))
        assert len(ref) == 35, f"{kind}: {len(ref)} quantized weights, expected 35"
        np.savez(os.path.join(dst, f"{kind}.reference.npz"), **ref)
        print(f"fixture: {d} ({len(ref)} quantized weights)")


if __name__ == "__main__":
    main(sys.argv[1])
