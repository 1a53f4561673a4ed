"""Checkpoints written by the error-minimising methods (`msbnb quantize --method gptq|awq+gptq|search`,
docs/quantization.md) are ordinary bitsandbytes files:

- bitsandbytes' own QuantState.from_dict + dequantize_4bit give exactly `msbnb dequantize`'s values
  (the searched scales and GPTQ codes are just other absmax values and codes, nested or not);
- transformers loads the AWQ+GPTQ directory (its changed RMSNorm weights are plain tensors) with
  Linear4bit layers; its logits equal those of transformers on our dequantized checkpoint (1e-4,
  the tolerance of test_bnb_interop) and its loss equals `msbnb perplexity` on the same files.

Run by scripts/interop.sh (`make interop`); MSBNB_BIN points at the built CLI.
"""
import os
import re
import sys
import warnings

warnings.filterwarnings("ignore")
import torch  # noqa: E402
import bitsandbytes as bnb  # noqa: E402
from safetensors.torch import load_file  # noqa: E402

from interop_common import SHARED, STORIES, msbnb, run_tests, workdir  # noqa: E402
from test_bnb_interop import GOLDEN_IDS, bnb_dequantize_4bit, load_hf, quant_states  # noqa: E402

TMP = workdir()
CALIB = os.path.join(SHARED, "data", "tinystories_sample.txt")
TOK = os.path.join(SHARED, "models", "stories260K", "tok512.bin")


def quantized(tag, *args):
    q, d = os.path.join(TMP, tag), os.path.join(TMP, tag + "_deq")
    if not os.path.exists(q):
        msbnb("quantize", STORIES, q, "--quiet", *args)
        msbnb("dequantize", q, d, "--quiet")
    return q, d


def check_bnb_dequantizes_exactly(q, d):
    sd, ours = load_file(os.path.join(q, "model.safetensors")), load_file(os.path.join(d, "model.safetensors"))
    states = quant_states(sd)
    assert len(states) == 35, f"expected 35 quantized projections, found {len(states)}"
    for w, qs in states.items():
        theirs = bnb_dequantize_4bit(sd[w], qs)
        diff = (theirs.float() != ours[w]).sum().item()
        assert diff == 0, f"{w}: {diff} values differ from bitsandbytes' dequantize_4bit"


def test_gptq_nf4_dq_dequantizes_exactly_in_bitsandbytes():
    check_bnb_dequantizes_exactly(*quantized("gptq_nf4_dq", "--type", "nf4", "--double-quant", "--method", "gptq",
                                             "--calibrate", CALIB))


def test_search_fp4_dequantizes_exactly_in_bitsandbytes():
    check_bnb_dequantizes_exactly(*quantized("search_fp4", "--type", "fp4", "--method", "search"))


def test_transformers_loads_awq_gptq_and_matches_msbnb():
    q, d = quantized("awq_gptq_nf4", "--type", "nf4", "--method", "awq+gptq", "--calibrate", CALIB)
    sd = load_file(os.path.join(q, "model.safetensors"))
    orig = load_file(os.path.join(STORIES, "model.safetensors"))
    changed = [k for k in sd if k.endswith("layernorm.weight") and not torch.equal(sd[k], orig[k])]
    assert changed, "AWQ changed no norm weight (the test would not cover the fold)"
    mq = load_hf(q)
    assert isinstance(mq.model.layers[0].mlp.down_proj, bnb.nn.Linear4bit), "projections not loaded as Linear4bit"
    ids = torch.tensor([GOLDEN_IDS])
    with torch.no_grad():
        lq = mq(ids).logits
        ld = load_hf(d)(ids).logits
    err = (lq - ld).abs().max().item()
    print(f"  awq+gptq: Linear4bit vs dequantized logits max |diff| {err:.2e}; {len(changed)} norms changed")
    assert err <= 1e-4, f"Linear4bit logits differ from the dequantized checkpoint's by {err}"
    text = os.path.join(TMP, "max.txt")
    with open(text, "w") as f:
        f.write("Once upon a time, there was a little dog named Max.")
    out = msbnb("perplexity", q, text, "--separator", "", "--tokenizer", TOK, "--threads", "1").stdout
    ours = float(re.search(r"nll/token ([0-9.]+)", out).group(1))
    theirs = torch.nn.functional.cross_entropy(lq[0, :-1], ids[0, 1:]).item()
    print(f"  awq+gptq nll/token: msbnb {ours:.6f}, transformers+bitsandbytes {theirs:.6f}")
    assert abs(ours - theirs) <= 1e-4 * max(1.0, theirs), f"msbnb nll/token {ours} vs transformers {theirs}"


if __name__ == "__main__":
    sys.exit(run_tests([
        test_gptq_nf4_dq_dequantizes_exactly_in_bitsandbytes,
        test_search_fp4_dequantizes_exactly_in_bitsandbytes,
        test_transformers_loads_awq_gptq_and_matches_msbnb,
    ]))
