"""Every supported model family and RoPE type against transformers (+ bitsandbytes, PEFT), on the
tiny random checkpoints of make_family_fixtures.py (run by scripts/interop.sh).

- fp32 logits: msbnb's public C API (libmsbnb.so through ctypes: msbnb_model_load +
  msbnb_model_forward, no logic here) equals transformers' eager forward within 1e-4 relative
  (max |difference| / max |logit|) on 80 positions, past original_max_position_embeddings (32)
  for the scaled RoPE types and past the sliding window (16) for Mistral.
- NF4 (+ double quant) and INT8 checkpoints made by transformers + bitsandbytes load in msbnb and
  give transformers' logits; `msbnb quantize` output loads in transformers + bitsandbytes.
- Per family: `msbnb finetune` 20 steps, `msbnb merge`, and PEFT loads the adapter onto
  transformers' model and gives the logits of msbnb's merged checkpoint.
"""
import ctypes
import json
import logging
import os
import re
import sys

import numpy as np
import torch

from interop_common import MSBNB, SHARED, msbnb, run_tests, workdir
import make_family_fixtures as fx

logging.getLogger("bitsandbytes").setLevel(logging.ERROR)
TMP = workdir()
LIB = os.environ.get("MSBNB_LIB", os.path.join(os.path.dirname(MSBNB), "libmsbnb.so"))
N_POS = 80
TEXT = os.path.join(SHARED, "data", "tinystories_valid_head.txt")
SMALL_TEXT = os.path.join(SHARED, "data", "tinystories_sample.txt")
IDS = np.random.default_rng(1).integers(3, 512, N_POS).astype(np.int32)
FIXTURE_DIR = os.path.join(TMP, "fixtures")
os.makedirs(FIXTURE_DIR)
for _name in fx.FIXTURES:
    fx.build(_name, FIXTURE_DIR)


class ModelParams(ctypes.Structure):  # include/msbnb/model.h msbnb_model_params
    _fields_ = [("quant", ctypes.c_int), ("double_quant", ctypes.c_int), ("blocksize", ctypes.c_int),
                ("group_size", ctypes.c_int), ("int8_threshold", ctypes.c_float), ("max_seq_len", ctypes.c_int),
                ("max_batch", ctypes.c_int), ("head_quant", ctypes.c_int)]


_lib = ctypes.CDLL(LIB)
_lib.msbnb_model_params_default.restype = ModelParams
_lib.msbnb_last_error.restype = ctypes.c_char_p


def msbnb_logits(path, ids=IDS):
    """Logits [n, vocab] of msbnb's forward over ids at positions 0.. (one chunk: dynamic NTK
    frequencies follow the whole sequence, as transformers' forward over it)."""
    p = _lib.msbnb_model_params_default()
    p.max_seq_len = len(ids)
    p.max_batch = len(ids)
    m = ctypes.c_void_p()
    if _lib.msbnb_model_load(path.encode(), ctypes.byref(p), ctypes.byref(m)) != 0:
        raise AssertionError(f"msbnb_model_load({path}): {_lib.msbnb_last_error().decode()}")
    try:
        vocab = _lib.msbnb_model_vocab_size(m)
        out = np.zeros((len(ids), vocab), dtype=np.float32)
        ids = np.ascontiguousarray(ids, dtype=np.int32)
        st = _lib.msbnb_model_forward(m, ids.ctypes.data_as(ctypes.c_void_p), len(ids), 0,
                                      out.ctypes.data_as(ctypes.c_void_p), 1)
        assert st == 0, _lib.msbnb_last_error().decode()
        return out
    finally:
        _lib.msbnb_model_free(m)


def hf_model(path, **kw):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(path, device_map="cpu", attn_implementation="eager", **kw)
    return model.eval()


def hf_logits(model, ids=IDS):
    import bitsandbytes as bnb

    for mod in model.modules():
        if isinstance(mod, bnb.nn.Linear4bit):
            mod.support_avx512bf16_for_cpu = False
    with torch.no_grad():
        return model(torch.tensor(ids[None, :].astype(np.int64))).logits[0].float().numpy()


def rel_err(ours, theirs):
    return float(np.abs(ours - theirs).max() / np.abs(theirs).max())


def fixture(name):
    return os.path.join(FIXTURE_DIR, name)


def make_logits_test(name):
    def test():
        d = fixture(name)
        theirs = hf_logits(hf_model(d, dtype=torch.float32))
        ours = msbnb_logits(d)
        err = rel_err(ours, theirs)
        # the check must be able to fail: the same weights with the RoPE type / window / norms
        # taken away differ by orders of magnitude more (printed for the record)
        print(f"  {name}: fp32 logits max rel err {err:.2e} over {N_POS} positions")
        assert err <= 1e-4, f"{name}: {err}"
        if name.startswith("llama_") or name in ("mistral", "qwen2_window"):
            # same weights (same seed and shapes) with plain RoPE and full attention: what msbnb
            # computed before it read rope types / sliding_window. The check is far from it.
            plain = rel_err(msbnb_logits(fixture("qwen2_untied" if name.startswith("qwen") else "llama")), theirs)
            print(f"  {name}: the same weights without its RoPE type / window would be off by {plain:.2e}")
            assert plain > 1e-2, f"{name}: fixture does not exercise its feature ({plain})"
    test.__name__ = f"test_fp32_logits_{name}"
    return test


def make_bnb_test(name):
    def test():
        from transformers import BitsAndBytesConfig

        d = fixture(name)
        cfgs = {
            "nf4": (BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                                       bnb_4bit_compute_dtype=torch.float32), 1e-3),
            # LLM.int8(): bnb's CPU path and msbnb round activations alike but split outliers differently
            "int8": (BitsAndBytesConfig(load_in_8bit=True), 3e-2),
        }
        for kind, (qcfg, tol) in cfgs.items():
            out = os.path.join(TMP, f"{name}_bnb_{kind}")
            hf_model(d, dtype=torch.float32, quantization_config=qcfg).save_pretrained(out)
            theirs = hf_logits(hf_model(out))
            ours = msbnb_logits(out)
            err = rel_err(ours, theirs)
            print(f"  {name}: bitsandbytes {kind} checkpoint, msbnb vs transformers+bnb logits rel err {err:.2e}")
            assert err <= tol, f"{name} {kind}: {err}"
        # and msbnb's own NF4 and INT8 files open in transformers + bitsandbytes with the same logits
        for kind, args in (("nf4", ["--type", "nf4", "--double-quant"]), ("int8", ["--type", "int8"])):
            out = os.path.join(TMP, f"{name}_msbnb_{kind}")
            msbnb("quantize", d, out, *args, "--quiet")
            theirs = hf_logits(hf_model(out, dtype=torch.float32))  # the file's config says bf16
            err = rel_err(msbnb_logits(out), theirs)
            print(f"  {name}: msbnb quantize {kind} loaded by transformers+bnb, logits rel err {err:.2e}")
            # NF4: the quant_state records the source's bf16, so bitsandbytes dequantizes to bf16;
            # INT8: LLM.int8() outlier handling differs as above
            assert err <= (1e-2 if kind == "nf4" else 3e-2), f"{name} msbnb {kind}: {err}"
    test.__name__ = f"test_bnb_nf4_int8_{name}"
    return test


def make_train_test(name):
    def test():
        from peft import PeftModel

        d = fixture(name)
        ad = os.path.join(TMP, f"{name}_adapter")
        out = msbnb("finetune", d, TEXT, "--out", ad, "--steps", "20", "--batch", "2", "--seq", "48", "--lr", "5e-3",
                    "--eval-every", "0", "--val-windows", "4", "--quant", "nf4", "--quiet", "--threads", "2").stdout
        m = re.search(r"validation loss ([0-9.]+) -> ([0-9.]+)", out)
        assert m, out
        before, after = float(m.group(1)), float(m.group(2))
        print(f"  {name}: finetune 20 steps NF4, validation loss {before:.4f} -> {after:.4f}")
        assert after < before, out
        with open(os.path.join(ad, "adapter_config.json")) as f:
            targets = set(json.load(f)["target_modules"])
        assert targets <= {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}, targets
        # PEFT puts the adapter on transformers' fp32 model: its logits equal those of msbnb's
        # merge written in fp32
        merged32 = os.path.join(TMP, f"{name}_merged_f32")
        msbnb("merge", d, ad, merged32, "--dtype", "f32")
        base = hf_model(d, dtype=torch.float32)
        peft_model = PeftModel.from_pretrained(base, ad).eval()
        with torch.no_grad():
            theirs = peft_model(torch.tensor(IDS[None, :64].astype(np.int64))).logits[0].float().numpy()
        err = rel_err(msbnb_logits(merged32, IDS[:64]), theirs)
        print(f"  {name}: PEFT adapter on transformers vs msbnb merge (f32), logits rel err {err:.2e}")
        assert err <= 1e-4, f"{name}: {err}"
        # perplexity with the adapter applied unmerged = perplexity of the f32 merge
        def nll(model, *extra):
            out = msbnb("perplexity", model, SMALL_TEXT, "--max-tokens", "300", "--threads", "2", *extra).stdout
            return float(re.search(r"nll/token ([0-9.]+)", out).group(1))
        with_adapter, merged_nll, base_nll = nll(d, "--adapter", ad), nll(merged32), nll(d)
        print(f"  {name}: perplexity --adapter nll/token {with_adapter:.6f}, merged {merged_nll:.6f}, "
              f"base {base_nll:.6f}")
        assert abs(with_adapter - merged_nll) <= 1e-4 * merged_nll and abs(with_adapter - base_nll) > 1e-3
        # the default merge keeps the base's bf16 and is a complete model transformers opens
        merged = os.path.join(TMP, f"{name}_merged")
        msbnb("merge", d, ad, merged)
        with open(os.path.join(merged, "model.safetensors"), "rb") as f:
            header = json.loads(f.read(int.from_bytes(f.read(8), "little")))
        dtypes = {v["dtype"] for k, v in header.items() if k != "__metadata__"}
        assert dtypes == {"BF16"}, dtypes
        assert os.path.exists(os.path.join(merged, "tokenizer.bin")), os.listdir(merged)
        with open(os.path.join(merged, "config.json")) as f:
            mc = json.load(f)
        assert mc["model_type"] == fx.FIXTURES[name][0], mc["model_type"]
        rope = mc.get("rope_parameters") or mc.get("rope_scaling") or {}
        assert all(isinstance(rope[k], float) for k in ("factor", "rope_theta") if k in rope), rope  # 8.0, not 8
        err = rel_err(hf_logits(hf_model(merged, dtype=torch.float32), IDS[:64]), theirs)
        print(f"  {name}: bf16 merged checkpoint in transformers vs PEFT, logits rel err {err:.2e}")
        assert err <= 1e-2, f"{name}: {err}"
    test.__name__ = f"test_finetune_merge_peft_{name}"
    return test


class SamplerParams(ctypes.Structure):  # include/msbnb/model.h msbnb_sampler_params
    _fields_ = [("temperature", ctypes.c_float), ("top_p", ctypes.c_float), ("seed", ctypes.c_uint64),
                ("stop_ids", ctypes.c_void_p), ("n_stop", ctypes.c_int)]


_lib.msbnb_sampler_params_default.restype = SamplerParams


def make_generate_test(name):
    def test():
        # greedy generation with the KV cache, token by token past original_max_position_embeddings
        # (dynamic NTK: frequencies grow with each new position, earlier keys stay as cached) and
        # past the sliding window, against transformers' generate
        d = fixture(name)
        prompt = IDS[:24]
        with torch.no_grad():
            hf = hf_model(d, dtype=torch.float32).generate(
                torch.tensor(prompt[None, :].astype(np.int64)), max_new_tokens=40, do_sample=False,
                eos_token_id=None, pad_token_id=0)[0, 24:].tolist()
        p = _lib.msbnb_model_params_default()
        p.max_seq_len = 64
        m = ctypes.c_void_p()
        assert _lib.msbnb_model_load(d.encode(), ctypes.byref(p), ctypes.byref(m)) == 0
        sp = _lib.msbnb_sampler_params_default()
        out = np.zeros(64, dtype=np.int32)
        n_out = ctypes.c_int()
        prompt = np.ascontiguousarray(prompt, dtype=np.int32)
        st = _lib.msbnb_model_generate(m, prompt.ctypes.data_as(ctypes.c_void_p), 24, 40, ctypes.byref(sp), None, None,
                                       out.ctypes.data_as(ctypes.c_void_p), 64, ctypes.byref(n_out))
        _lib.msbnb_model_free(m)
        assert st == 0
        ours = out[24:n_out.value].tolist()
        # no stop ids: all 40 tokens, as transformers' generate without an EOS
        print(f"  {name}: greedy generate, {len(ours)} tokens from position 24, msbnb == transformers: "
              f"{ours == hf[:len(ours)]}")
        assert len(ours) == 40 and ours == hf, (ours, hf)
    test.__name__ = f"test_generate_{name}"
    return test


def test_refusals_name_what_is_supported():
    for mt in ("gemma", "gemma2", "phi3"):
        d = os.path.join(TMP, f"refuse_{mt}")
        os.makedirs(d)
        with open(os.path.join(fixture("llama"), "config.json")) as f:
            c = json.load(f)
        c["model_type"] = mt
        with open(os.path.join(d, "config.json"), "w") as f:
            json.dump(c, f)
        os.symlink(os.path.join(fixture("llama"), "model.safetensors"), os.path.join(d, "model.safetensors"))
        p = msbnb("generate", d, "--tokenizer", os.path.join(fixture("llama"), "tokenizer.bin"), check=False)
        err = p.stderr.strip()
        print(f"  {mt}: {err}")
        assert p.returncode != 0 and len(err.splitlines()) == 1, err
        assert mt in err and "llama, mistral, qwen2, qwen3" in err and "msbnb__" not in err, err
        assert "config_from_json" not in err and "_json:" not in err, err
    d = os.path.join(TMP, "refuse_rope")
    os.makedirs(d)
    with open(os.path.join(fixture("llama"), "config.json")) as f:
        c = json.load(f)
    c["rope_parameters"] = {"rope_type": "longrope", "rope_theta": 10000.0}
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(c, f)
    os.symlink(os.path.join(fixture("llama"), "model.safetensors"), os.path.join(d, "model.safetensors"))
    p = msbnb("generate", d, "--tokenizer", os.path.join(fixture("llama"), "tokenizer.bin"), check=False)
    err = p.stderr.strip()
    print(f"  longrope: {err}")
    assert p.returncode != 0 and "longrope" in err and "llama3" in err and "yarn" in err, err


if __name__ == "__main__":
    names = list(fx.FIXTURES)
    only = os.environ.get("MSBNB_FAMILIES")  # e.g. MSBNB_FAMILIES=qwen3,mistral while debugging
    if only:
        names = [n for n in names if n in only.split(",")]
    tests = [make_logits_test(n) for n in names]
    tests += [make_bnb_test(n) for n in ("llama", "mistral", "qwen2_untied", "qwen3") if n in names]
    tests += [make_train_test(n) for n in ("llama_llama3", "mistral", "qwen2_tied", "qwen2_untied", "qwen2_window",
                                           "qwen3") if n in names]
    tests += [make_generate_test(n) for n in ("llama_dynamic", "llama_yarn", "mistral", "qwen2_window", "qwen3")
              if n in names]
    tests.append(test_refusals_name_what_is_supported)
    sys.exit(run_tests(tests))
