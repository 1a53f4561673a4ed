"""Tiny random-weight checkpoints of every model family and RoPE type msbnb supports, built by
transformers itself in each family's real configuration (run from the interop venv).

    ~/.cache/msbnb-venv/bin/python python/make_family_fixtures.py OUT_DIR [NAME ...]

Each OUT_DIR/NAME is a Hugging Face directory (config.json, model.safetensors in bf16, and
stories260K's 512-token llama2.c tokenizer as tokenizer.bin, so `msbnb finetune` can read text).
Sizes: hidden 64, 2 layers, 4 query heads over 2 key/value heads (GQA), vocab 512. Weights are
drawn wider than transformers' init (std 0.08, norms 1 ± 0.2, embeddings std 1) so that the
position encoding, the masks and every optional tensor move the logits measurably.

qwen2_window turns Qwen's use_sliding_window on for the layers from max_window_layers (1) on.
Scaled RoPE types use original_max_position_embeddings 32 (dynamic: max_position_embeddings 32),
so a test over 80 positions covers positions past it. linear and dynamic are written with the
older spelling `rope_scaling: {"type": ...}` (what the issue found silently ignored).
"""
import json
import os
import shutil
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
SHARED = os.environ.get("MSBNB_SHARED_DIR", os.path.join(os.path.dirname(HERE), "..", "shared"))
TOK = os.path.join(SHARED, "models", "stories260K", "tok512.bin")

BASE = dict(vocab_size=512, hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, max_position_embeddings=128, rms_norm_eps=1e-5, hidden_act="silu",
            bos_token_id=1, eos_token_id=2, tie_word_embeddings=False)

# name -> (model_type, config overrides, rope spelled the old way {"type": ...} or None)
FIXTURES = {
    "llama": ("llama", dict(rope_parameters={"rope_type": "default", "rope_theta": 10000.0}), None),
    "llama_llama3": ("llama", dict(rope_parameters={"rope_type": "llama3", "rope_theta": 10000.0, "factor": 4.0,
                                                    "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                                    "original_max_position_embeddings": 32}), None),
    "llama_linear": ("llama", dict(rope_parameters={"rope_type": "linear", "rope_theta": 10000.0, "factor": 4.0}),
                     {"type": "linear", "factor": 4.0}),
    "llama_dynamic": ("llama", dict(max_position_embeddings=32,
                                    rope_parameters={"rope_type": "dynamic", "rope_theta": 10000.0, "factor": 2.0}),
                      {"type": "dynamic", "factor": 2.0}),
    "llama_yarn": ("llama", dict(rope_parameters={"rope_type": "yarn", "rope_theta": 10000.0, "factor": 4.0,
                                                  "original_max_position_embeddings": 32}), None),
    "mistral": ("mistral", dict(sliding_window=16, rope_parameters={"rope_type": "default", "rope_theta": 10000.0}),
                None),
    "qwen2_tied": ("qwen2", dict(tie_word_embeddings=True,
                                 rope_parameters={"rope_type": "default", "rope_theta": 1000000.0}), None),
    "qwen2_untied": ("qwen2", dict(rope_parameters={"rope_type": "default", "rope_theta": 1000000.0}), None),
    "qwen2_window": ("qwen2", dict(use_sliding_window=True, sliding_window=16, max_window_layers=1,
                                   rope_parameters={"rope_type": "default", "rope_theta": 1000000.0}), None),
    "qwen3": ("qwen3", dict(head_dim=32, tie_word_embeddings=True,
                            rope_parameters={"rope_type": "default", "rope_theta": 1000000.0}), None),
}


def build(name, out_dir, seed=0):
    from transformers import AutoConfig, AutoModelForCausalLM

    model_type, over, old_rope = FIXTURES[name]
    kw = dict(BASE)
    kw.update(over)
    cfg = AutoConfig.for_model(model_type, **kw)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(cfg, dtype=torch.float32)
    with torch.no_grad():
        for pname, p in model.named_parameters():
            if "norm" in pname:
                p.copy_(1.0 + 0.2 * torch.randn_like(p))
            elif "embed_tokens" in pname:
                p.normal_(0.0, 1.0)
            elif pname.endswith(".bias"):
                p.normal_(0.0, 0.1)
            else:
                p.normal_(0.0, 0.08)
    d = os.path.join(out_dir, name)
    if os.path.isdir(d):
        shutil.rmtree(d)
    model.to(torch.bfloat16).save_pretrained(d)
    if old_rope is not None:  # the older spelling, as pre-5 checkpoints store it
        path = os.path.join(d, "config.json")
        with open(path) as f:
            c = json.load(f)
        theta = c.pop("rope_parameters")["rope_theta"]
        c["rope_scaling"] = old_rope
        c["rope_theta"] = theta
        with open(path, "w") as f:
            json.dump(c, f, indent=2)
    shutil.copy(TOK, os.path.join(d, "tokenizer.bin"))
    return d


def main(argv):
    if len(argv) < 2:
        print(__doc__)
        return 2
    names = argv[2:] or list(FIXTURES)
    for n in names:
        print(build(n, argv[1]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
