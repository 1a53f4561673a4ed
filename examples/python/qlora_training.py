"""QLoRA with msbnb's MindSpore Cells: the stories260K HF checkpoint quantized to NF4 + double
quant, LoRA adapters on every projection, fine-tuned on Jane Austen (../shared/data/austen.txt)
in GRAPH_MODE with AdamWeightDecay; the loss falls, the adapter is saved in PEFT format and
`msbnb generate --adapter` uses it (its greedy text equals the MindSpore model's). Also prints the
parameter efficiency and recommended configurations. Exits non-zero on a failed check.

    python examples/python/qlora_training.py [--steps 80] [--out DIR] [--msbnb build/msbnb]
                                             [--train-chars 400000] [--require-cli]

The default is the full run (80 steps on 400,000 characters of Austen). ctest runs a short one
(example_py_qlora_training: --steps 30 --train-chars 40000 --require-cli, well under a minute):
the held-out loss falls, the PEFT adapter files are written, and `msbnb generate --adapter` reads
them and writes the MindSpore model's text.
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

import mindspore as ms
from mindspore import Tensor, nn

from msbnb import Int4Config
from msbnb.mindspore import (CausalLMLoss, LlamaForCausalLM, Tokenizer, apply_lora, convert_to_quantized_model,
                             freeze_model_except_lora, get_model_size, print_lora_info, save_peft_adapter)

here = os.path.dirname(os.path.abspath(__file__))
ap = argparse.ArgumentParser()
ap.add_argument("--shared", default=os.environ.get("MSBNB_SHARED_DIR", os.path.join(here, "..", "..", "..", "shared")))
ap.add_argument("--steps", type=int, default=80)
ap.add_argument("--out", default=None, help="adapter directory (default: a temporary one)")
ap.add_argument("--msbnb", default=os.environ.get("MSBNB_BIN", os.path.join(here, "..", "..", "build", "msbnb")))
ap.add_argument("--train-chars", type=int, default=400000, help="characters of the training split to encode")
ap.add_argument("--require-cli", action="store_true", help="fail (instead of skipping) without the msbnb CLI")
args = ap.parse_args()
if args.steps < 10:
    ap.error("--steps must be at least 10 (the loss is compared over the first and last 10 steps)")
hf = os.path.join(args.shared, "models", "stories260K", "hf")
tok_path = os.path.join(args.shared, "models", "stories260K", "tok512.bin")
tok = Tokenizer(tok_path, 512)

ms.set_context(mode=ms.GRAPH_MODE)
ms.set_seed(0)

# ---- the QLoRA model: NF4 + double quant base, LoRA r=8 on the 7 projections ----------------
model = LlamaForCausalLM.from_pretrained(hf)
fp32_bytes = get_model_size(model)["total_bytes"]
convert_to_quantized_model(model, Int4Config(quant_type="nf4", group_size=64, compress_statistics=True),
                           modules_to_not_convert=["lm_head"])
targets = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
apply_lora(model, r=8, lora_alpha=16, lora_dropout=0.0, target_modules=targets)
freeze_model_except_lora(model)
print("== parameter efficiency")
trainable, total = print_lora_info(model)
print(f"model bytes: fp32 {fp32_bytes:,} -> NF4 base + adapters {get_model_size(model)['total_bytes']:,}")

# ---- data: Austen, 90 % train / 10 % held out ------------------------------------------------
with open(os.path.join(args.shared, "data", "austen.txt"), encoding="utf-8") as f:
    text = f.read()
cut = int(len(text) * 0.9)
train = np.array(tok.encode(text[:cut][:args.train_chars]), np.int32)
val = np.array(tok.encode(text[cut:][:20000]), np.int32)
seq, batch = 64, 8
rng = np.random.default_rng(0)


def batch_of(data):
    starts = rng.integers(0, len(data) - seq - 1, batch)
    return Tensor(np.stack([data[s:s + seq + 1] for s in starts]))


val_batches = [batch_of(val) for _ in range(4)]
loss_cell = CausalLMLoss(model)


def val_loss():
    return float(np.mean([loss_cell(b).asnumpy() for b in val_batches]))


opt = nn.AdamWeightDecay(model.trainable_params(), learning_rate=3e-3, weight_decay=0.0)
step = nn.TrainOneStepCell(loss_cell, opt)
v0 = val_loss()
print(f"\n== training ({args.steps} steps, batch {batch} x {seq} tokens)\nheld-out loss before: {v0:.3f}")
t0 = time.time()
losses = []
for i in range(args.steps):
    losses.append(float(step(batch_of(train)).asnumpy()))
    if (i + 1) % 10 == 0:
        print(f"step {i + 1:4d}  train loss {np.mean(losses[-10:]):.3f}", flush=True)
v1 = val_loss()
print(f"held-out loss after: {v1:.3f}  ({time.time() - t0:.1f} s)")

# ---- the adapter in PEFT format, used by the msbnb CLI ---------------------------------------
out = args.out or tempfile.mkdtemp(prefix="msbnb-qlora-")
save_peft_adapter(model, out, base_model_name_or_path=hf)
files = sorted(os.listdir(out))
print(f"\nadapter saved: {out} ({', '.join(files)})")
ok = {"adapter_config.json", "adapter_model.safetensors"} <= set(files)
prompt = "It is a truth universally acknowledged"
ids = model.generate(tok.encode(prompt), 40)
ms_text = tok.decode(ids[1:]).strip()
print("MindSpore:      " + ms_text)
if os.path.exists(args.msbnb):
    p = subprocess.run([args.msbnb, "generate", hf, "--quant", "nf4", "--double-quant", "--adapter", out,
                        "--prompt", prompt, "--steps", "40", "--tokenizer", tok_path], capture_output=True, text=True)
    print("msbnb generate: " + p.stdout.strip())
    if p.returncode != 0:
        print("msbnb generate failed: " + p.stderr.strip())
    # the same NF4 codes (quantized in place here, at load there) and the same adapter: the same text
    ok &= p.returncode == 0 and p.stdout.strip() == ms_text
else:
    print(f"(msbnb CLI not found at {args.msbnb}: skipping `msbnb generate --adapter`)")
    ok &= not args.require_cli

print("\n== recommended configurations")
print("  small models / this example: NF4 + double quant, r 8, alpha 16, all 7 projections, lr 3e-3")
print("  7B-class on CPU: NF4 + double quant (blocksize 64), r 16, alpha 32, dropout 0.05, q/k/v/o + MLP, lr 2e-4")
print("  tight memory: r 4 on q_proj/v_proj only; quality first: INT8 base (Int8Config) with r 16")

fell = v1 < v0 - 0.2 and np.mean(losses[-10:]) < np.mean(losses[:10])
print(f"\nheld-out loss {v0:.3f} -> {v1:.3f}, train loss {np.mean(losses[:10]):.3f} -> {np.mean(losses[-10:]):.3f}: "
      + ("fell" if fell else "did NOT fall enough"))
ok &= fell
print("ok: loss fell and the adapter was used by msbnb" if ok else "FAIL")
sys.exit(0 if ok else 1)
