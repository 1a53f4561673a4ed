"""Interop of msbnb's LLaMA inference with transformers + bitsandbytes (run by scripts/interop.sh).

- fp32: `msbnb perplexity` on the HF directory equals transformers' cross-entropy on the same ids.
- Checkpoints quantized by bitsandbytes itself (transformers quantizes on load and save_pretrained):
  NF4 + double quant and 8-bit (Linear8bitLt, SCB). `msbnb perplexity` loads them as stored and its
  nll/token matches transformers' on the same quantized model.
"""
import os
import re
import logging
import sys

import torch

from interop_common import SHARED, STORIES, msbnb, run_tests, workdir

logging.getLogger("bitsandbytes").setLevel(logging.ERROR)  # one "inputs will be cast" line per product
TMP = workdir()
TOK = os.path.join(SHARED, "models", "stories260K", "tok512.bin")
TEXT = "Once upon a time, there was a little dog named Max."
# golden.json's encode of TEXT (BOS + dummy prefix), which test_llama_golden checks in C
IDS = [1, 403, 407, 261, 378, 432, 383, 286, 261, 376, 400, 428, 395, 392, 412, 444, 426]


def msbnb_nll(model_dir, *extra):
    path = os.path.join(TMP, "text.txt")
    with open(path, "w") as f:
        f.write(TEXT)
    out = msbnb("perplexity", model_dir, path, "--separator", "", "--tokenizer", TOK, "--threads", "1", *extra).stdout
    m = re.search(r"tokens (\d+) .*nll/token ([0-9.]+)", out)
    assert m and int(m.group(1)) == len(IDS) - 1, out
    return float(m.group(2))


def hf_nll(model):
    import bitsandbytes as bnb

    for mod in model.modules():  # stories260K's 172-wide MLP does not fit bnb's AVX512-BF16 repacking
        if isinstance(mod, bnb.nn.Linear4bit):
            mod.support_avx512bf16_for_cpu = False
    ids = torch.tensor([IDS])
    with torch.no_grad():
        logits = model.eval()(ids).logits[0, :-1].float()
    return torch.nn.functional.cross_entropy(logits, ids[0, 1:]).item()


def bnb_made(name, cfg):
    from transformers import AutoModelForCausalLM

    d = os.path.join(TMP, name)
    AutoModelForCausalLM.from_pretrained(STORIES, quantization_config=cfg, device_map="cpu").save_pretrained(d)
    return d, AutoModelForCausalLM.from_pretrained(d, device_map="cpu")


def test_fp32_nll_equals_transformers():
    from transformers import AutoModelForCausalLM

    theirs = hf_nll(AutoModelForCausalLM.from_pretrained(STORIES, device_map="cpu", dtype=torch.float32))
    ours = msbnb_nll(STORIES)
    print(f"  fp32 nll/token: msbnb {ours:.6f}, transformers {theirs:.6f}")
    assert abs(ours - theirs) <= 2e-6 * max(1.0, theirs) + 1e-6, f"msbnb {ours} vs transformers {theirs}"


def test_bnb_made_nf4_dq_checkpoint():
    from transformers import BitsAndBytesConfig

    cfg = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                             bnb_4bit_compute_dtype=torch.float32)
    d, model = bnb_made("bnb_nf4", cfg)
    theirs, ours = hf_nll(model), msbnb_nll(d)
    print(f"  bnb nf4+dq nll/token: msbnb {ours:.6f}, transformers+bitsandbytes {theirs:.6f}")
    assert abs(ours - theirs) <= 1e-4 * max(1.0, theirs), f"msbnb {ours} vs transformers+bnb {theirs}"
    # and re-quantizing that file to INT8 at load still runs (dequantize -> int8)
    assert abs(msbnb_nll(d, "--quant", "int8") - ours) < 0.05


def test_bnb_made_int8_checkpoint():
    from transformers import BitsAndBytesConfig

    d, model = bnb_made("bnb_int8", BitsAndBytesConfig(load_in_8bit=True))
    theirs, ours = hf_nll(model), msbnb_nll(d)
    # LLM.int8() rounds activations per row as bitsandbytes does, but the outlier split and the
    # fp16 parts of bnb's CPU path differ: agree to 1 %.
    print(f"  bnb int8 nll/token: msbnb {ours:.6f}, transformers+bitsandbytes {theirs:.6f}")
    assert abs(ours - theirs) <= 1e-2 * theirs, f"msbnb {ours} vs transformers+bnb {theirs}"


if __name__ == "__main__":
    sys.exit(run_tests([
        test_fp32_nll_equals_transformers,
        test_bnb_made_nf4_dq_checkpoint,
        test_bnb_made_int8_checkpoint,
    ]))
