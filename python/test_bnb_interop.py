"""Cross-checks of msbnb's checkpoints against bitsandbytes and transformers themselves (CPU).

- NF4/FP4 written by `msbnb quantize` load through bitsandbytes' own QuantState.from_dict and
  dequantize_4bit to exactly the values `msbnb dequantize` produces (nested and not, two
  block sizes); NF4 packed codes equal bitsandbytes' quantize_4bit.
- Linear8bitLt layout: transformers loads it; bitsandbytes' int8 dequantization matches ours.
- transformers loads our NF4 directory on CPU; its logits equal transformers' logits on our
  dequantized checkpoint, and its loss equals `msbnb perplexity` on the same files.
- A checkpoint made by bitsandbytes/transformers (quantized on load, save_pretrained) reads back
  through `msbnb dequantize` to exactly bitsandbytes' dequantized values.

Run by scripts/interop.sh (`make interop`); MSBNB_BIN points at the built CLI.
"""
import json
import os
import re
import sys
import warnings

warnings.filterwarnings("ignore")
import torch  # noqa: E402
import bitsandbytes as bnb  # noqa: E402
import bitsandbytes.functional as F  # noqa: E402
from safetensors.torch import load_file  # noqa: E402

from interop_common import STORIES, SHARED, msbnb, run_tests, workdir  # noqa: E402

torch.manual_seed(0)
TMP = workdir()
GOLDEN_IDS = json.load(open(os.path.join(SHARED, "models", "stories260K", "golden.json")))["encode"]["ids"]


def quantized(kind, *extra):
    """Quantize stories260K with msbnb (cached per argument list); returns (qdir, deqdir)."""
    tag = "_".join([kind, *[a.strip("-") for a in extra]])
    q, d = os.path.join(TMP, tag), os.path.join(TMP, tag + "_deq")
    if not os.path.exists(q):
        msbnb("quantize", STORIES, q, "--type", kind, "--quiet", *extra)
        msbnb("dequantize", q, d, "--quiet")
    return q, d


def quant_states(sd):
    """{weight name: QuantState} for every bnb 4-bit weight of a state dict."""
    out = {}
    for k in sd:
        m = re.match(r"(.*)\.quant_state\.bitsandbytes__(nf4|fp4)$", k)
        if m:
            w = m.group(1)
            parts = {n[len(w) + 1:]: v for n, v in sd.items() if n.startswith(w + ".")}
            out[w] = F.QuantState.from_dict(parts, device=torch.device("cpu"))
    return out


def bnb_dequantize_4bit(packed, qs):
    """bitsandbytes' dequantize_4bit. Its native CPU kernel (0.50.2) is wrong when a block spans
    rows (blocksize > columns: its own quantize/dequantize round trip then has 2x the error), so
    there we use bitsandbytes' reference torch implementation, which its other backends run."""
    if qs.blocksize <= qs.shape[-1]:
        return F.dequantize_4bit(packed, qs)
    from bitsandbytes.backends.default.ops import _dequantize_4bit_compute
    from bitsandbytes.backends.utils import _get_4bit_code

    absmax = qs.absmax
    if qs.nested:
        absmax = F.dequantize_blockwise(qs.absmax, qs.state2) + qs.offset
    code = _get_4bit_code(qs.quant_type, packed.device)
    return _dequantize_4bit_compute(packed.reshape(-1), absmax.float(), code, qs.blocksize, qs.shape, torch.float32)


def check_4bit_exact(kind, *extra):
    q, d = quantized(kind, *extra)
    sd, ours = load_file(os.path.join(q, "model.safetensors")), load_file(os.path.join(d, "model.safetensors"))
    states = quant_states(sd)
    assert len(states) == 35, f"expected 35 quantized projections, found {len(states)}"
    for w, qs in states.items():
        assert sd[w].dtype == torch.uint8 and sd[w].shape[1] == 1, f"{w}: packed weight {sd[w].dtype} {sd[w].shape}"
        theirs = bnb_dequantize_4bit(sd[w], qs)
        assert theirs.shape == ours[w].shape, f"{w}: {theirs.shape} vs {ours[w].shape}"
        diff = (theirs != ours[w]).sum().item()  # == treats +0 and -0 as equal
        assert diff == 0, f"{w}: {diff} of {theirs.numel()} values differ from bitsandbytes' dequantize_4bit"
        # the quant-state bytes are what bitsandbytes itself would write for this state
        key = f"quant_state.bitsandbytes__{qs.quant_type}"
        assert torch.equal(qs.as_dict(packed=True)[key], sd[f"{w}.{key}"]), f"{w}: quant state bytes differ"


def test_nf4_dequantize_4bit_exact():
    check_4bit_exact("nf4")


def test_nf4_double_quant_exact():
    check_4bit_exact("nf4", "--double-quant")


def test_fp4_exact():
    check_4bit_exact("fp4")


def test_fp4_double_quant_blocksize128_exact():
    check_4bit_exact("fp4", "--double-quant", "--blocksize", "128")


def test_packed_codes_equal_bitsandbytes_quantize_4bit():
    """Our NF4 codes are bitsandbytes' CPU quantize_4bit codes; FP4 may differ only between its
    two zero codes (0 and 8), as the golden README documents for bnb's CPU path."""
    orig = load_file(os.path.join(STORIES, "model.safetensors"))
    for kind in ("nf4", "fp4"):
        q, _ = quantized(kind)
        sd = load_file(os.path.join(q, "model.safetensors"))
        for w in quant_states(sd):
            packed, state = F.quantize_4bit(orig[w], blocksize=64, quant_type=kind)
            assert torch.equal(state.absmax, sd[w + ".absmax"]), f"{w}: absmax differs"
            a, b = packed.flatten(), sd[w].flatten()
            if kind == "nf4":
                assert torch.equal(a, b), f"{w}: {(a != b).sum().item()} packed bytes differ"
            else:
                codes = lambda p: torch.stack([p >> 4, p & 15], 1).flatten()  # noqa: E731
                ca, cb = codes(a), codes(b)
                bad = (ca != cb) & ~(((ca == 0) | (ca == 8)) & ((cb == 0) | (cb == 8)))
                assert bad.sum().item() == 0, f"{w}: {bad.sum().item()} FP4 codes differ beyond the zero sign"


def load_hf(path):
    from transformers import AutoModelForCausalLM

    m = AutoModelForCausalLM.from_pretrained(path, device_map="cpu", dtype=torch.float32)
    # bitsandbytes' AVX512-BF16 CPU fast path repacks weights and requires out_features % 32 == 0
    # (stories260K's MLP has 172); use its generic dequantize + matmul path instead.
    for mod in m.modules():
        if isinstance(mod, bnb.nn.Linear4bit):
            mod.support_avx512bf16_for_cpu = False
    return m.eval()


def test_transformers_loads_nf4_dir_and_matches_our_dequantized_weights():
    q, d = quantized("nf4", "--double-quant")
    mq = load_hf(q)
    assert isinstance(mq.model.layers[0].mlp.down_proj, bnb.nn.Linear4bit), "projections not loaded as Linear4bit"
    ids = torch.tensor([GOLDEN_IDS])
    with torch.no_grad():
        lq = mq(ids).logits
        ld = load_hf(d)(ids).logits
        lf = load_hf(STORIES)(ids).logits
    err = (lq - ld).abs().max().item()
    assert err <= 1e-4, f"Linear4bit logits differ from the dequantized checkpoint's by {err}"
    # quantization error itself stays moderate: same argmax at most positions
    agree = (lq.argmax(-1) == lf.argmax(-1)).float().mean().item()
    assert agree >= 0.75, f"NF4 top-1 agrees with f32 at only {agree:.2f} of positions"


def test_transformers_loss_equals_msbnb_perplexity():
    """Same NF4 files, two implementations: transformers+bitsandbytes vs msbnb's C inference."""
    q, _ = quantized("nf4", "--double-quant")
    text = os.path.join(TMP, "max.txt")
    with open(text, "w") as f:
        f.write("Once upon a time, there was a little dog named Max.")
    tok = os.path.join(SHARED, "models", "stories260K", "tok512.bin")
    out = msbnb("perplexity", q, text, "--separator", "", "--tokenizer", tok, "--threads", "1").stdout
    ours = float(re.search(r"nll/token ([0-9.]+)", out).group(1))
    ids = torch.tensor([GOLDEN_IDS])
    with torch.no_grad():
        logits = load_hf(q)(ids).logits[0, :-1]
    theirs = torch.nn.functional.cross_entropy(logits, ids[0, 1:]).item()
    assert abs(ours - theirs) <= 1e-4 * max(1.0, theirs), f"msbnb nll/token {ours} vs transformers {theirs}"


def test_int8_linear8bitlt_layout():
    q, d = quantized("int8")
    sd, ours = load_file(os.path.join(q, "model.safetensors")), load_file(os.path.join(d, "model.safetensors"))
    n = 0
    for k in sd:
        if k.endswith(".SCB"):
            w = k[:-3] + "weight"
            assert sd[w].dtype == torch.int8 and sd[k].dtype == torch.float32
            assert sd[k[:-3] + "weight_format"].item() == 0
            theirs = F.int8_vectorwise_dequant(sd[w], sd[k])
            assert torch.allclose(theirs, ours[w], rtol=2e-7, atol=0), f"{w}: int8 dequantization differs"
            n += 1
    assert n == 35, f"expected 35 Linear8bitLt weights, found {n}"
    from transformers import AutoModelForCausalLM

    m = AutoModelForCausalLM.from_pretrained(q, device_map="cpu")
    lin = m.model.layers[0].self_attn.q_proj
    assert isinstance(lin, bnb.nn.Linear8bitLt), type(lin)
    assert torch.equal(lin.weight.data.cpu(), sd["model.layers.0.self_attn.q_proj.weight"])


def test_bitsandbytes_made_checkpoint_reads_exactly():
    """transformers quantizes on load with bitsandbytes (CPU) and saves; we dequantize that."""
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    src = os.path.join(TMP, "bnb_made")
    cfg = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                             bnb_4bit_compute_dtype=torch.float32)
    AutoModelForCausalLM.from_pretrained(STORIES, quantization_config=cfg, device_map="cpu").save_pretrained(src)
    out = os.path.join(TMP, "bnb_made_deq")
    msbnb("dequantize", src, out, "--quiet")
    sd, ours = load_file(os.path.join(src, "model.safetensors")), load_file(os.path.join(out, "model.safetensors"))
    states = quant_states(sd)
    assert len(states) == 35
    for w, qs in states.items():
        theirs = F.dequantize_4bit(sd[w], qs)
        assert (theirs != ours[w]).sum().item() == 0, f"{w}: our reading of bitsandbytes' file differs"
    assert "quantization_config" not in json.load(open(os.path.join(out, "config.json")))


if __name__ == "__main__":
    sys.exit(run_tests([
        test_nf4_dequantize_4bit_exact,
        test_nf4_double_quant_exact,
        test_fp4_exact,
        test_fp4_double_quant_blocksize128_exact,
        test_packed_codes_equal_bitsandbytes_quantize_4bit,
        test_transformers_loads_nf4_dir_and_matches_our_dequantized_weights,
        test_transformers_loss_equals_msbnb_perplexity,
        test_int8_linear8bitlt_layout,
        test_bitsandbytes_made_checkpoint_reads_exactly,
    ]))
